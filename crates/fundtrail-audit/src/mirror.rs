//! A static copy of a published ledger (`fundtrail ledger mirror`): the checkpoint and
//! every hash tile and entry bundle it covers, in the C2SP tlog-tiles layout, so that
//! anyone can serve it from a plain web host and verify it with [`crate::verify`].
//!
//! The checkpoint is written last ([`Mirror::finish`]), so a mirror never names tiles it
//! lacks; every file is written atomically (a temporary file, then a rename), so a
//! reader never sees half a tile. What is copied is only checked as far as the
//! checkpoint's signature: verifying the copy is `fundtrail verify`'s job.

use std::path::{Path, PathBuf};

use fundtrail_ledger::note::NoteError;
use fundtrail_ledger::{tiles, Checkpoint, LogVerifier};
use thiserror::Error;

use crate::source::{fetch_tile, LedgerSource, SourceError};

/// Why a mirror could not be made.
#[derive(Debug, Error)]
pub enum MirrorError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the served checkpoint does not verify: {0}")]
    Checkpoint(NoteError),
    #[error("cannot write {path}: {cause}")]
    Write { path: PathBuf, cause: std::io::Error },
}

/// Tiles and bundles copied, the checkpoint not yet written.
#[derive(Debug)]
pub struct Mirror {
    root: PathBuf,
    note: Vec<u8>,
    /// The checkpoint the copied tiles cover (its signature checked).
    pub checkpoint: Checkpoint,
    /// How many hash tiles and entry bundles were written.
    pub tiles: usize,
}

impl Mirror {
    /// Copies every tile and bundle of `source`'s current checkpoint into `root`.
    pub fn copy(source: &dyn LedgerSource, verifier: &LogVerifier, root: &Path) -> Result<Mirror, MirrorError> {
        let note = source.checkpoint()?;
        let checkpoint = verifier.verify_checkpoint(&note).map_err(MirrorError::Checkpoint)?;
        let mut written = 0;
        for tile in tiles::new_tiles(0, checkpoint.size) {
            let bytes = fetch_tile(source, &tile)?;
            write_atomic(root, &tile.path(), &bytes)?;
            written += 1;
        }
        Ok(Mirror { root: root.to_owned(), note, checkpoint, tiles: written })
    }

    /// Writes the checkpoint, which makes the copied tiles the mirror's ledger.
    pub fn finish(self) -> Result<Checkpoint, MirrorError> {
        write_atomic(&self.root, "checkpoint", &self.note)?;
        Ok(self.checkpoint)
    }
}

/// Writes `bytes` to `root/relative` atomically (a temporary file of its own beside it,
/// then a rename, as [`crate::StateFile::save`] does), creating the directories on the way.
pub fn write_atomic(root: &Path, relative: &str, bytes: &[u8]) -> Result<(), MirrorError> {
    use std::io::Write;
    let path = root.join(relative);
    let failed = |cause| MirrorError::Write { path: path.clone(), cause };
    let parent = path.parent().expect("a path under the mirror's root has a parent");
    std::fs::create_dir_all(parent).map_err(failed)?;
    let mut temp = tempfile::NamedTempFile::new_in(parent).map_err(failed)?;
    temp.write_all(bytes).map_err(failed)?;
    temp.persist(&path).map(drop).map_err(|e| failed(e.error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DirSource;
    use crate::testing::LedgerBuilder;

    #[test]
    fn a_mirror_holds_what_the_source_serves_and_names_it_last() {
        let built = LedgerBuilder::realistic(300);
        let source_dir = tempfile::tempdir().unwrap();
        let published = built.publish(source_dir.path(), &[]);
        let to = tempfile::tempdir().unwrap();
        let source = DirSource::new(source_dir.path());
        let mirror = Mirror::copy(&source, &built.signer.verifier(), to.path()).unwrap();
        assert!(mirror.tiles > 0);
        assert!(!to.path().join("checkpoint").exists(), "no checkpoint before the tiles are all in");
        let checkpoint = mirror.finish().unwrap();
        assert_eq!(checkpoint, published.checkpoint);
        let copy = DirSource::new(to.path());
        assert_eq!(copy.checkpoint().unwrap(), source.checkpoint().unwrap());
        for tile in tiles::new_tiles(0, checkpoint.size) {
            assert_eq!(fetch_tile(&copy, &tile).unwrap(), fetch_tile(&source, &tile).unwrap(), "{}", tile.path());
        }
        let files = files_under(to.path());
        assert_eq!(
            files,
            tiles::new_tiles(0, checkpoint.size).len() + 1,
            "the tiles and the checkpoint, no temporary file"
        );
    }

    /// Files under `dir`, at any depth.
    fn files_under(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .map(|path| if path.is_dir() { files_under(&path) } else { 1 })
            .sum()
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused_and_nothing_is_written() {
        let built = LedgerBuilder::realistic(300);
        let other = fundtrail_ledger::LogSigner::from_seed(built.signer.name(), &[8; 32]).unwrap();
        let source_dir = tempfile::tempdir().unwrap();
        built.publish(source_dir.path(), &[]);
        let to = tempfile::tempdir().unwrap();
        let refused = Mirror::copy(&DirSource::new(source_dir.path()), &other.verifier(), to.path());
        assert!(matches!(refused, Err(MirrorError::Checkpoint(_))), "{refused:?}");
        assert_eq!(std::fs::read_dir(to.path()).unwrap().count(), 0);
    }
}
