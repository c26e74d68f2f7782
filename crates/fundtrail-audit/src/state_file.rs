//! The verifier's memory (`--state FILE`): the last checkpoint it verified, so that the
//! next run proves the ledger only grew (no rollback, no fork).
//!
//! JSON: `{"origin": …, "size": …, "root": "<base64>", "note": "<signed checkpoint>"}`.
//! Written atomically (a temporary file in the same directory, synced, then renamed).

use std::io::Write;
use std::path::Path;

use fundtrail_ledger::{Checkpoint, Hash, LogVerifier};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest state file read, in bytes (a checkpoint note and a few fields).
pub const STATE_FILE_BYTES_MAX: usize = 64 * 1024;

/// The last verified checkpoint, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// The signed checkpoint itself: with it, a fork can be proven to anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state file {path}: {cause}")]
    Io { path: String, cause: String },
    #[error("state file {path}: larger than {STATE_FILE_BYTES_MAX} bytes")]
    TooLarge { path: String },
    #[error("state file {path}: not a FundTrail verifier state: {cause}")]
    Malformed { path: String, cause: String },
    #[error("state file {path}: is for log {found:?}, not {expected:?}")]
    OtherLog { path: String, found: String, expected: String },
    #[error("state file {path}: its note does not match its fields or the log key: {cause}")]
    BadNote { path: String, cause: String },
}

impl StateFile {
    /// The state recording a verified checkpoint and its signed note.
    pub fn of(checkpoint: &Checkpoint, note: &str) -> StateFile {
        StateFile {
            origin: checkpoint.origin.clone(),
            size: checkpoint.size,
            root: checkpoint.root.to_base64(),
            note: Some(note.to_string()),
        }
    }

    /// Reads the state at `path`; `Ok(None)` when there is no file yet (a first run).
    /// The checkpoint must be `log`'s, and a stored note must verify and agree.
    pub fn load(path: &Path, log: &LogVerifier) -> Result<Option<Checkpoint>, StateError> {
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::Io { path: shown, cause: e.to_string() }),
        };
        if bytes.len() > STATE_FILE_BYTES_MAX {
            return Err(StateError::TooLarge { path: shown });
        }
        let state: StateFile = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Malformed { path: shown.clone(), cause: e.to_string() })?;
        let root = Hash::from_base64(&state.root)
            .ok_or_else(|| StateError::Malformed { path: shown.clone(), cause: "root is not a base64 hash".into() })?;
        if state.origin != log.name() {
            return Err(StateError::OtherLog { path: shown, found: state.origin, expected: log.name().into() });
        }
        let checkpoint = Checkpoint { origin: state.origin, size: state.size, root };
        if let Some(note) = &state.note {
            let signed = log
                .verify_checkpoint(note.as_bytes())
                .map_err(|e| StateError::BadNote { path: shown.clone(), cause: e.to_string() })?;
            if signed != checkpoint {
                return Err(StateError::BadNote { path: shown, cause: "size or root differ from the note's".into() });
            }
        }
        Ok(Some(checkpoint))
    }

    /// Writes the state atomically: a temporary file beside `path`, synced, renamed.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| StateError::Io { path: shown.clone(), cause: e.to_string() };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let mut text = serde_json::to_vec_pretty(self).expect("state serialises");
        text.push(b'\n');
        assert!(text.len() <= STATE_FILE_BYTES_MAX);
        file.write_all(&text).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}
