//! The fold's snapshot: its state at one position, saved so that a restart
//! reads it and replays only the tail of the log.
//!
//! A snapshot is never trusted: one of another format, with a damaged body,
//! of another ledger or newer than the projections beside it is ignored and
//! the fold is rebuilt from the log (see `projections::start_fold`).
//!
//! File layout (all integers big-endian):
//!
//! ```text
//! magic "FTFOLD\n\0" (8) ‖ format u32 ‖ position u64 ‖ last leaf hash (32)
//!   ‖ body length u64 ‖ SHA-256(body) (32) ‖ body (postcard of the Fold)
//! ```
//!
//! Written atomically: to a temporary file, fsynced, renamed over the old
//! one, then the directory fsynced. A crash leaves the old snapshot or the
//! new one, never a torn one (and a torn one would fail its hash).

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use fundtrail_envelope::Fold;
use fundtrail_ledger::Hash;
use sha2::{Digest, Sha256};

/// The layout of a snapshot and of what it holds. Bump it whenever `Fold`
/// or the domain `State` changes shape: older snapshots are then ignored.
/// 2: the event ids are one index in the state (`State::event_ids`, id → record),
/// not a set in the state and a map in the fold.
/// 3: purposes, pools and the allocation (`Fund::{purposes, unrestricted, restricted}`, …).
/// 4: goods in kind traced lot by lot (`Fund::goods_lots`).
/// 5: timestamps as seconds and nanoseconds, not text (`fundtrail_domain::timestamp`),
/// so that a snapshot is decoded as it is read.
/// 6: event ids and SHA-256 digests as their raw bytes, not text
/// (`fundtrail_domain::ids`): two fifths smaller, and faster to save and load.
pub const SNAPSHOT_FORMAT: u32 = 6;
/// The largest snapshot read (a corrupt length must not allocate wildly).
pub const SNAPSHOT_BYTES_MAX: u64 = 4 << 30;

const MAGIC: &[u8; 8] = b"FTFOLD\n\0";
const HEADER_LEN: usize = 8 + 4 + 8 + 32 + 8 + 32;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("snapshot is not a FundTrail fold snapshot (bad magic)")]
    Magic,
    #[error("snapshot format {found}, this build reads format {SNAPSHOT_FORMAT}")]
    Format { found: u32 },
    #[error("snapshot body is {found} bytes, the header says {expected}")]
    Length { expected: u64, found: u64 },
    #[error("snapshot body fails its SHA-256 check")]
    Hash,
    #[error("snapshot body does not decode: {0}")]
    Decode(String),
    #[error("snapshot header says position {header}, its fold is at {fold}")]
    Position { header: u64, fold: u64 },
}

/// A snapshot read back and checked.
pub struct Loaded {
    pub fold: Fold,
    /// The leaf hash of ledger entry `position − 1` when it was saved.
    pub last_leaf: Hash,
}

/// Saves `fold` to `path` atomically; returns the bytes written.
///
/// The body is streamed to the file through its SHA-256, never held whole in
/// memory (at 10^6 gifts it is hundreds of MB); the header, which states the
/// body's length and digest, is written last, over a placeholder.
pub fn save(path: &Path, fold: &Fold, last_leaf: Hash) -> Result<u64, SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.display().to_string(), source };
    let tmp = path.with_extension("snapshot.tmp");
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(&[0; HEADER_LEN]).map_err(io)?;
    let hashing = Hashing { inner: file, sha256: Sha256::new(), bytes: 0 };
    let writer = BufWriter::with_capacity(STREAM_BUFFER_BYTES, hashing);
    let writer = postcard::to_io(fold, writer).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let Hashing { inner: mut file, sha256, bytes: length } = writer.into_inner().map_err(|e| io(e.into_error()))?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&SNAPSHOT_FORMAT.to_be_bytes());
    header.extend_from_slice(&fold.position().to_be_bytes());
    header.extend_from_slice(&last_leaf.0);
    header.extend_from_slice(&length.to_be_bytes());
    header.extend_from_slice(&sha256.finalize());
    assert_eq!(header.len(), HEADER_LEN);
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&header).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(HEADER_LEN as u64 + length)
}

/// Reads the snapshot at `path`: `None` if there is none, an error saying why
/// if it cannot be used.
///
/// The body is decoded as it is read, through its SHA-256, never held whole in
/// memory; the fold decoded is given back only if the body then has the
/// header's length and digest (a damaged body is never trusted, whatever it
/// decoded to). Timestamps are numbers in the body (`fundtrail_domain::timestamp`),
/// so the decoder needs scratch space only for the longest single string.
pub fn load(path: &Path) -> Result<Option<Loaded>, SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.display().to_string(), source };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header).map_err(|_| SnapshotError::Magic)?;
    if &header[..8] != MAGIC {
        return Err(SnapshotError::Magic);
    }
    let format = u32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
    if format != SNAPSHOT_FORMAT {
        return Err(SnapshotError::Format { found: format });
    }
    let position = u64::from_be_bytes(header[12..20].try_into().expect("8 bytes"));
    let last_leaf = Hash(header[20..52].try_into().expect("32 bytes"));
    let length = u64::from_be_bytes(header[52..60].try_into().expect("8 bytes"));
    let digest: [u8; 32] = header[60..92].try_into().expect("32 bytes");
    if length > SNAPSHOT_BYTES_MAX {
        return Err(SnapshotError::Length { expected: length, found: 0 });
    }
    let reader = BufReader::with_capacity(STREAM_BUFFER_BYTES, file.take(length + 1));
    let mut body = Hashing { inner: reader, sha256: Sha256::new(), bytes: 0 };
    let mut scratch = vec![0u8; DECODE_SCRATCH_BYTES];
    let decoded = postcard::from_io::<Fold, _>((&mut body, &mut scratch[..])).map(|(fold, _)| fold);
    // The rest of the body (none, unless the decoder stopped early), for its length and hash.
    std::io::copy(&mut body, &mut std::io::sink()).map_err(io)?;
    if body.bytes != length {
        return Err(SnapshotError::Length { expected: length, found: body.bytes });
    }
    if body.sha256.finalize().as_slice() != digest {
        return Err(SnapshotError::Hash);
    }
    let fold = decoded.map_err(|e| SnapshotError::Decode(e.to_string()))?;
    if fold.position() != position {
        return Err(SnapshotError::Position { header: position, fold: fold.position() });
    }
    Ok(Some(Loaded { fold: fold.restored(), last_leaf }))
}

/// Scratch space of the streaming decoder: room for the longest string in the
/// state (a text is at most `TEXT_CHARS_MAX` characters, 4 bytes each in UTF-8).
const DECODE_SCRATCH_BYTES: usize = 64 << 10;
const _: () = assert!(DECODE_SCRATCH_BYTES >= 4 * fundtrail_domain::event::TEXT_CHARS_MAX);

/// Bytes buffered between the serialiser and the hash while writing a body.
const STREAM_BUFFER_BYTES: usize = 1 << 20;

/// A writer (or reader) that hashes and counts the bytes passing through it.
struct Hashing<T> {
    inner: T,
    sha256: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha256.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> (tempfile::TempDir, std::path::PathBuf, Fold) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fold.snapshot");
        let mut fold = Fold::new();
        fold.skip(1);
        fold.skip(2);
        save(&path, &fold, Hash([7; 32])).unwrap();
        (dir, path, fold)
    }

    #[test]
    fn a_snapshot_reads_back_as_saved() {
        let (_dir, path, fold) = saved();
        let loaded = load(&path).unwrap().expect("a snapshot");
        assert_eq!(loaded.fold.position(), fold.position());
        assert_eq!(loaded.fold.state, fold.state);
        assert_eq!(loaded.last_leaf, Hash([7; 32]));
        assert!(load(&path.with_extension("none")).unwrap().is_none(), "no file: no snapshot");
    }

    #[test]
    fn a_large_fold_reads_back_as_saved() {
        // Tens of thousands of gifts, each with its timestamps and ids: several MB of
        // body, and far more text than the streaming decoder's scratch space would
        // hold if any of it were kept (as chrono's own timestamp text would be).
        let mut world = fundtrail_domain::testing::World::with_fund();
        for i in 0..30_000 {
            world.donate(1 + i % 500);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fold.snapshot");
        let mut fold = Fold::new();
        fold.state = world.state.clone();
        fold.skip(1);
        let bytes = save(&path, &fold, Hash([9; 32])).unwrap();
        assert!(bytes > 4 << 20, "a large body: {bytes} bytes");
        let loaded = load(&path).unwrap().expect("a snapshot");
        assert_eq!(loaded.fold.state, fold.state);
        assert_eq!(loaded.fold.position(), 1);
    }

    #[test]
    fn a_fold_of_every_event_type_reads_back_as_saved() {
        // Every kind of state the stream builds, through the streaming decoder:
        // a field it cannot decode from a stream (text read as borrowed) fails here.
        let world = fundtrail_domain::testing::World::every_event_type();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fold.snapshot");
        let mut fold = Fold::new();
        fold.state = world.state.clone();
        fold.skip(1);
        save(&path, &fold, Hash([5; 32])).unwrap();
        let loaded = load(&path).unwrap().expect("a snapshot");
        assert_eq!(loaded.fold.state, fold.state);
    }

    #[test]
    fn a_damaged_or_foreign_snapshot_is_refused_with_its_reason() {
        let (_dir, path, _) = saved();
        let good = fs::read(&path).unwrap();
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("bad magic", Box::new(|b: &mut Vec<u8>| b[0] ^= 1)),
            ("format 1", Box::new(|b: &mut Vec<u8>| b[11] = 1)), // the format before one id index
            ("fails its SHA-256", Box::new(|b: &mut Vec<u8>| *b.last_mut().unwrap() ^= 1)),
            ("header says 48", Box::new(|b: &mut Vec<u8>| b.truncate(HEADER_LEN + 1))),
            ("position", Box::new(|b: &mut Vec<u8>| b[19] = 9)),
        ];
        for (expected, damage) in cases {
            let mut bytes = good.clone();
            damage(&mut bytes);
            fs::write(&path, &bytes).unwrap();
            let error = load(&path).err().unwrap_or_else(|| panic!("{expected}: refused"));
            let message = error.to_string();
            let words = match expected {
                "header says 48" => "the header says",
                other => other.split(' ').next_back().unwrap(),
            };
            assert!(message.contains(words), "{expected}: {message}");
        }
    }
}
