//! The witness's decision (C2SP tlog-witness §add-checkpoint), apart from HTTP: a
//! request body in, the cosignature lines or a [`Refusal`] with its HTTP status out.
//!
//! Checks, in the spec's order: the body's form (400); the origin is a configured log
//! (404); a trusted key signed the note and no trusted key's signature fails (403); the
//! old size is at most the checkpoint's (400); the old size is the size last cosigned
//! (409, with that size); a size-0 checkpoint has the empty root, a proof from 0 is
//! empty, the proof verifies, and at the same size the root is the same (422). Then the
//! new state is persisted durably and only then cosigned lines are answered (200).
//!
//! Checking and persisting happen under the origin's lock, so two requests never both
//! pass the 409 check against the same old size (the race the spec describes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use fundtrail_ledger::{
    attach_cosignature, check_consistency, Checkpoint, ConsistencyError, Hash, LogVerifier, NoteError, WitnessSigner,
    EMPTY_ROOT,
};
use thiserror::Error;

use crate::protocol::{parse_request, RequestError};
use crate::state::{origin_hash, LogState, StateDir, StateError, TestPause};

/// The witness's clock: POSIX seconds, for cosignature timestamps.
pub type UnixClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock in POSIX seconds.
pub fn system_clock() -> UnixClock {
    Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

/// What a witness needs to run.
pub struct WitnessConfig {
    pub signer: WitnessSigner,
    /// The logs it witnesses: one or more keys per origin (the key's name is the origin).
    pub logs: Vec<LogVerifier>,
    /// Its data directory (the state lives in `<data>/checkpoints`).
    pub data_dir: PathBuf,
    pub clock: UnixClock,
    /// Test only: pause while persisting (see [`TestPause`]).
    pub test_pause: Option<TestPause>,
}

/// Why a checkpoint was not cosigned. [`Refusal::status`] is the HTTP status the spec
/// requires for it.
#[derive(Debug, Error)]
pub enum Refusal {
    #[error("{0}")]
    Malformed(#[from] RequestError),
    #[error("unknown log: this witness does not witness origin {origin:?}")]
    UnknownOrigin { origin: String },
    #[error("checkpoint of {origin}: {source}")]
    NotSigned {
        origin: String,
        #[source]
        source: NoteError,
    },
    #[error("checkpoint of {origin}: {source}")]
    BadCheckpoint {
        origin: String,
        #[source]
        source: NoteError,
    },
    #[error("old size {old_size} is larger than the checkpoint's size {size}")]
    OldSizeTooLarge { old_size: u64, size: u64 },
    #[error("old size {old_size} is not the size {latest} this witness last cosigned for {origin}")]
    Conflict { origin: String, old_size: u64, latest: u64 },
    #[error("checkpoint of size 0 with root {root}, not the empty tree's root")]
    EmptyTreeRoot { root: Hash },
    #[error("old size 0 with {found} proof lines: the proof from the empty tree is empty")]
    ProofFromEmptyTree { found: usize },
    #[error("checkpoint of {origin} refused: {source}")]
    Inconsistent {
        origin: String,
        #[source]
        source: ConsistencyError,
    },
    #[error("cosigned nothing: {0}")]
    Persist(#[from] StateError),
}

impl Refusal {
    /// The HTTP status of this refusal (C2SP tlog-witness §add-checkpoint).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::BadCheckpoint { .. } | Refusal::OldSizeTooLarge { .. } => 400,
            Refusal::NotSigned { .. } => 403,
            Refusal::UnknownOrigin { .. } => 404,
            Refusal::Conflict { .. } => 409,
            Refusal::EmptyTreeRoot { .. } | Refusal::ProofFromEmptyTree { .. } | Refusal::Inconsistent { .. } => 422,
            Refusal::Persist(_) => 500,
        }
    }
}

/// A running witness's state: its key, its logs and what it cosigned for each.
pub struct Witness {
    signer: WitnessSigner,
    logs: HashMap<String, Vec<LogVerifier>>,
    /// Per origin, the latest cosigned checkpoint; the lock spans check and persist.
    latest: HashMap<String, Mutex<Option<LogState>>>,
    by_hash: HashMap<String, String>,
    dir: StateDir,
    clock: UnixClock,
    test_pause: Option<TestPause>,
}

impl Witness {
    /// Opens the state directory and loads what was cosigned for each configured log.
    pub fn open(config: WitnessConfig) -> Result<Witness, StateError> {
        let dir = StateDir::open(&config.data_dir)?;
        let mut logs: HashMap<String, Vec<LogVerifier>> = HashMap::new();
        for log in config.logs {
            logs.entry(log.name().to_string()).or_default().push(log);
        }
        let mut latest = HashMap::new();
        let mut by_hash = HashMap::new();
        for origin in logs.keys() {
            latest.insert(origin.clone(), Mutex::new(dir.load(origin)?));
            by_hash.insert(origin_hash(origin), origin.clone());
        }
        Ok(Witness {
            signer: config.signer,
            logs,
            latest,
            by_hash,
            dir,
            clock: config.clock,
            test_pause: config.test_pause,
        })
    }

    pub fn signer(&self) -> &WitnessSigner {
        &self.signer
    }

    /// The latest checkpoint this witness cosigned for `origin`: size and root.
    pub fn latest(&self, origin: &str) -> Option<Checkpoint> {
        let state = self.latest.get(origin)?.lock().expect("witness state lock");
        state.as_ref().map(|s| s.checkpoint.clone())
    }

    /// The latest cosigned note for the origin whose hex SHA-256 is `hash` (C2SP
    /// tlog-witness §Monitor Retrieval Mechanism).
    pub fn latest_note(&self, hash: &str) -> Option<Vec<u8>> {
        let origin = self.by_hash.get(hash)?;
        let state = self.latest.get(origin)?.lock().expect("witness state lock");
        state.as_ref().map(|s| s.note.clone())
    }

    /// Handles one add-checkpoint request body. Blocking (it fsyncs): call it from a
    /// blocking thread.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let request = parse_request(body)?;
        let origin = origin_of(request.note);
        let (Some(keys), Some(latest)) = (self.logs.get(&origin), self.latest.get(&origin)) else {
            return Err(Refusal::UnknownOrigin { origin });
        };
        let checkpoint = verify_note(keys, request.note, &origin)?;
        if request.old_size > checkpoint.size {
            return Err(Refusal::OldSizeTooLarge { old_size: request.old_size, size: checkpoint.size });
        }
        let mut latest = latest.lock().expect("witness state lock");
        let (latest_size, latest_root) = match latest.as_ref() {
            Some(state) => (state.checkpoint.size, state.checkpoint.root),
            None => (0, EMPTY_ROOT),
        };
        if request.old_size != latest_size {
            return Err(Refusal::Conflict { origin, old_size: request.old_size, latest: latest_size });
        }
        if checkpoint.size == 0 && checkpoint.root != EMPTY_ROOT {
            return Err(Refusal::EmptyTreeRoot { root: checkpoint.root });
        }
        if request.old_size == 0 && !request.proof.is_empty() {
            return Err(Refusal::ProofFromEmptyTree { found: request.proof.len() });
        }
        if let Err(source) = check_consistency(latest_size, &latest_root, &checkpoint, &request.proof) {
            // The spec allows keeping such a request as evidence; the log line keeps it.
            tracing::warn!(%origin, latest_size, error = %source, note = %String::from_utf8_lossy(request.note), "refused an inconsistent checkpoint");
            return Err(Refusal::Inconsistent { origin, source });
        }
        let line = self.signer.cosign(&checkpoint, (self.clock)().max(1));
        let note = attach_cosignature(request.note, &line, self.signer.verifier())
            .map_err(|source| Refusal::BadCheckpoint { origin: origin.clone(), source })?;
        let state = LogState { checkpoint: checkpoint.clone(), note };
        self.dir.store(&state, self.test_pause)?;
        assert!(state.checkpoint.size >= latest_size, "a witness never goes back");
        *latest = Some(state);
        tracing::info!(%origin, size = checkpoint.size, "cosigned");
        Ok(line.to_line().into_bytes())
    }
}

/// The note's first line, the checkpoint's origin (lossy: an invalid one is unknown).
fn origin_of(note: &[u8]) -> String {
    let first = note.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(first).into_owned()
}

/// The checkpoint, if one of the origin's keys signed it. A note that no trusted key
/// signed, or where a trusted key's signature fails, is 403; a signed note that is not
/// a checkpoint is 400.
fn verify_note(keys: &[LogVerifier], note: &[u8], origin: &str) -> Result<Checkpoint, Refusal> {
    assert!(!keys.is_empty());
    let mut unsigned = None;
    for key in keys {
        match key.verify_checkpoint(note) {
            Ok(checkpoint) => return Ok(checkpoint),
            Err(source @ NoteError::UnknownKey { .. }) => unsigned = Some(source),
            Err(source @ (NoteError::BadSignature { .. } | NoteError::NoSignatures)) => {
                return Err(Refusal::NotSigned { origin: origin.to_string(), source });
            }
            Err(source) => return Err(Refusal::BadCheckpoint { origin: origin.to_string(), source }),
        }
    }
    Err(Refusal::NotSigned { origin: origin.to_string(), source: unsigned.expect("at least one key") })
}
