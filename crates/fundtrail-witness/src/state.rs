//! The witness's memory: per log origin, the latest checkpoint it cosigned (the log's
//! note with the witness's cosignature attached), one file per origin named by the hex
//! SHA-256 of the origin (the C2SP tlog-witness monitoring path's "origin hash").
//!
//! A file is replaced atomically and durably: write `<name>.tmp`, fsync it, rename it
//! over `<name>`, fsync the directory. A crash at any point leaves either the old or the
//! new checkpoint, never a mix and never nothing; a leftover `.tmp` is removed at start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fundtrail_ledger::note::NOTE_SIZE_MAX;
use fundtrail_ledger::Checkpoint;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The directory inside the data directory that holds one file per log.
const CHECKPOINTS_DIR: &str = "checkpoints";
const TMP_SUFFIX: &str = ".tmp";

/// Test-only: the environment variable that makes a witness pause while it persists
/// (`before-rename:<ms>` or `after-persist:<ms>`), so a test can SIGKILL it there.
pub const TEST_PAUSE_ENV: &str = "FUNDTRAIL_WITNESS_TEST_PAUSE";

/// Where a test wants the witness to pause while persisting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPause {
    /// The new file is written and synced, not yet renamed into place.
    BeforeRename(Duration),
    /// The new state is durable; the answer is not yet sent.
    AfterPersist(Duration),
}

impl TestPause {
    /// Reads [`TEST_PAUSE_ENV`]; `None` when unset or malformed.
    pub fn from_env() -> Option<TestPause> {
        let value = std::env::var(TEST_PAUSE_ENV).ok()?;
        let (point, ms) = value.split_once(':')?;
        let pause = Duration::from_millis(ms.parse().ok()?);
        match point {
            "before-rename" => Some(TestPause::BeforeRename(pause)),
            "after-persist" => Some(TestPause::AfterPersist(pause)),
            _ => None,
        }
    }
}

/// Why the witness's state could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("witness state {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("witness state {path}: {detail}; refusing to start rather than forget what was cosigned")]
    Corrupt { path: String, detail: String },
}

/// The latest checkpoint cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    pub checkpoint: Checkpoint,
    /// The log's signed note with this witness's cosignature attached.
    pub note: Vec<u8>,
}

/// The state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

/// The hex SHA-256 of an origin: its file name here and its monitoring path.
pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

impl StateDir {
    /// Opens (creating) `<data>/checkpoints` and removes leftover temporary files.
    pub fn open(data: &Path) -> Result<StateDir, StateError> {
        let dir = data.join(CHECKPOINTS_DIR);
        let io = |source| StateError::Io { path: dir.display().to_string(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        sync_dir(data).map_err(io)?;
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.to_string_lossy().ends_with(TMP_SUFFIX) {
                std::fs::remove_file(&path).map_err(io)?;
            }
        }
        Ok(StateDir { dir })
    }

    fn path(&self, origin: &str) -> PathBuf {
        self.dir.join(origin_hash(origin))
    }

    /// The latest cosigned checkpoint of `origin`, if any.
    pub fn load(&self, origin: &str) -> Result<Option<LogState>, StateError> {
        let path = self.path(origin);
        let shown = path.display().to_string();
        let mut note = Vec::new();
        match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path: shown, source }),
            Ok(file) => file
                .take(NOTE_SIZE_MAX as u64 + 1)
                .read_to_end(&mut note)
                .map_err(|source| StateError::Io { path: shown.clone(), source })?,
        };
        let corrupt = |detail: String| StateError::Corrupt { path: shown.clone(), detail };
        let text = std::str::from_utf8(&note).map_err(|_| corrupt("not UTF-8".into()))?;
        let body_end = text.find("\n\n").ok_or_else(|| corrupt("no signed note".into()))?;
        let checkpoint = Checkpoint::parse_body(&text[..=body_end]).map_err(|e| corrupt(e.to_string()))?;
        if checkpoint.origin != origin {
            return Err(corrupt(format!("holds origin {:?}, expected {origin:?}", checkpoint.origin)));
        }
        Ok(Some(LogState { checkpoint, note }))
    }

    /// Replaces the state of the state's origin, durably, before returning.
    pub fn store(&self, state: &LogState, pause: Option<TestPause>) -> Result<(), StateError> {
        let path = self.path(&state.checkpoint.origin);
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
        let io = |source| StateError::Io { path: path.display().to_string(), source };
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io)?;
        file.write_all(&state.note).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        if let Some(TestPause::BeforeRename(pause)) = pause {
            std::thread::sleep(pause);
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        sync_dir(&self.dir).map_err(io)?;
        if let Some(TestPause::AfterPersist(pause)) = pause {
            std::thread::sleep(pause);
        }
        Ok(())
    }
}

/// fsync a directory, so that a rename or a new entry in it is durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundtrail_ledger::leaf_hash;

    #[test]
    fn state_round_trips_and_replaces() {
        let data = tempfile::tempdir().unwrap();
        let dir = StateDir::open(data.path()).unwrap();
        assert_eq!(dir.load("o.example/log").unwrap(), None);
        let checkpoint = Checkpoint::new("o.example/log", 3, leaf_hash(b"r")).unwrap();
        let note = format!("{}\n— o.example/log AAAAAAAA\n", checkpoint.body()).into_bytes();
        let state = LogState { checkpoint: checkpoint.clone(), note };
        dir.store(&state, None).unwrap();
        assert_eq!(dir.load("o.example/log").unwrap(), Some(state.clone()));
        // A leftover temporary file (a crash before the rename) is dropped at start.
        let tmp = format!("{}{TMP_SUFFIX}", dir.path("o.example/log").display());
        std::fs::write(&tmp, b"half").unwrap();
        let dir = StateDir::open(data.path()).unwrap();
        assert!(!Path::new(&tmp).exists());
        assert_eq!(dir.load("o.example/log").unwrap(), Some(state));
        // A damaged file stops the witness rather than letting it forget.
        std::fs::write(dir.path("o.example/log"), b"garbage").unwrap();
        assert!(matches!(dir.load("o.example/log"), Err(StateError::Corrupt { .. })));
        assert_eq!(origin_hash("o.example/log").len(), 64);
    }
}
