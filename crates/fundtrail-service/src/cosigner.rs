//! Witness cosignatures for the ledger's checkpoints (C2SP tlog-witness): the
//! cosigner task between the checkpoints the projections sign and the one that is
//! served.
//!
//! The projections sign a checkpoint and go on; they never wait for a witness. This
//! task takes the **newest** signed checkpoint only — a witness moves from the size it
//! last cosigned to any larger one with one consistency proof (tlog-witness
//! §add-checkpoint: `old N` and PROOF(N, size)), so a backlog of checkpoints signed
//! while witnesses were away is cosigned in one step — and sends it to every witness
//! at once ([`fundtrail_witness::WitnessPool`]). Once at least `quorum` verified
//! cosignatures are attached (signed-note: one signature line each), the note is
//! written to sled and flushed, and only then served: `/ledger/checkpoint`, tiles,
//! proofs and receipts all use it. A checkpoint without a quorum is never served;
//! the newest signed one stays visible as "pending".
//!
//! Without a quorum the task tries again after a pause that doubles up to
//! [`RETRY_PAUSE_MAX`], each time with the newest signed checkpoint.
//!
//! Invariant: the served size never decreases, and a served note always carries the
//! log's signature and at least `quorum` cosignatures that verified over it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fundtrail_ledger::prove_consistency;
use fundtrail_witness::{ConsistencyProver, CosignError, Cosigned, WitnessPool, WitnessStats};
use tokio::sync::watch;

use crate::ledger_store::StoredHashes;
use crate::projections::checkpoint_size;

/// The first pause after a round without a quorum.
pub const RETRY_PAUSE_MIN: Duration = Duration::from_millis(250);
/// The longest pause between rounds without a quorum.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Where the newest cosigned note is kept in the projections' sled tree (a
/// `cp\0` key: kept when views are rebuilt, like the signed checkpoints).
pub(crate) const CHECKPOINT_COSIGNED: &[u8] = b"cp\0cosigned";

/// The witnesses of a service and how many must cosign.
#[derive(Clone)]
pub struct Witnessing {
    pub pool: Arc<WitnessPool>,
    /// Cosignatures a checkpoint needs before it is served (1 ≤ quorum ≤ witnesses).
    pub quorum: usize,
}

/// The cosigner's counters: rounds here, per witness in the pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CosignStatus {
    pub quorum: usize,
    pub witnesses: Vec<WitnessStats>,
    /// Rounds that reached the quorum / did not.
    pub rounds_cosigned: u64,
    pub rounds_without_quorum: u64,
}

/// Rounds counted by the cosigner.
#[derive(Default)]
pub(crate) struct Rounds {
    cosigned: u64,
    without_quorum: u64,
}

impl Witnessing {
    /// The counters, now.
    pub(crate) fn status(&self, rounds: &Mutex<Rounds>) -> CosignStatus {
        let rounds = rounds.lock().expect("rounds");
        CosignStatus {
            quorum: self.quorum,
            witnesses: self.pool.stats(),
            rounds_cosigned: rounds.cosigned,
            rounds_without_quorum: rounds.without_quorum,
        }
    }
}

/// The cosigner task's inputs.
pub(crate) struct Cosigner {
    pub witnessing: Witnessing,
    pub db: sled::Db,
    pub views: sled::Tree,
    pub origin: String,
    /// The newest checkpoint the projections signed.
    pub signed: watch::Receiver<Option<Arc<Vec<u8>>>>,
    /// The served checkpoint: the newest with a quorum.
    pub served: watch::Sender<Option<Arc<Vec<u8>>>>,
    pub rounds: Arc<Mutex<Rounds>>,
    pub shutdown: watch::Receiver<bool>,
}

impl Cosigner {
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    fn size(&self, note: &Option<Arc<Vec<u8>>>) -> u64 {
        note.as_ref().and_then(|n| checkpoint_size(n, &self.origin)).unwrap_or(0)
    }

    async fn run(mut self) {
        let tree = self.views.clone();
        let prover: Arc<dyn ConsistencyProver> =
            Arc::new(move |old, new| prove_consistency(old, new, &StoredHashes { tree: &tree, pending: None }));
        let mut pause = RETRY_PAUSE_MIN;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let newest = self.signed.borrow_and_update().clone();
            let served_size = self.size(&self.served.borrow());
            let newest_size = self.size(&newest);
            let Some(note) = newest.filter(|_| newest_size > served_size) else {
                tokio::select! {
                    changed = self.signed.changed() => if changed.is_err() { return },
                    _ = self.shutdown.changed() => return,
                }
                continue;
            };
            let round = self.witnessing.pool.request_cosignatures(self.witnessing.quorum, &note, prover.clone());
            let outcome = tokio::select! {
                outcome = round => outcome,
                _ = self.shutdown.changed() => return,
            };
            match outcome {
                Ok(cosigned) => {
                    self.rounds.lock().expect("rounds").cosigned += 1;
                    if let Err(e) = self.serve(cosigned).await {
                        tracing::error!(error = %e, "cosigned checkpoint not stored; trying again");
                    } else {
                        pause = RETRY_PAUSE_MIN;
                        continue;
                    }
                }
                Err(error) => {
                    if let CosignError::NoQuorum { .. } = &error {
                        self.rounds.lock().expect("rounds").without_quorum += 1;
                        tracing::warn!(%error, "checkpoint not served yet");
                    } else {
                        tracing::error!(%error, "checkpoint not sent to the witnesses");
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown.changed() => return,
            }
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
        }
    }

    /// Stores the cosigned note durably, then serves it.
    async fn serve(&self, cosigned: Cosigned) -> Result<(), sled::Error> {
        let size = cosigned.checkpoint.size;
        assert!(cosigned.cosignatures >= self.witnessing.quorum, "only a quorum is served");
        if size <= self.size(&self.served.borrow()) {
            return Ok(()); // never go back
        }
        self.views.insert(CHECKPOINT_COSIGNED, cosigned.note.clone())?;
        self.db.flush_async().await?;
        tracing::debug!(size, cosignatures = cosigned.cosignatures, "checkpoint cosigned by a quorum");
        self.served.send_replace(Some(Arc::new(cosigned.note)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fundtrail_ledger::{Checkpoint, Hash, LogSigner};

    /// Replicas sharing a log key must never show a witness two notes of one size:
    /// the note is origin, size and root with a deterministic Ed25519 signature, and
    /// nothing else (no timestamp, no extension line).
    #[test]
    fn a_checkpoint_note_depends_only_on_the_key_and_the_tree() {
        let seed = [42u8; 32];
        let (a, b) = (
            LogSigner::from_seed("fundtrail.test/ledger", &seed).unwrap(),
            LogSigner::from_seed("fundtrail.test/ledger", &seed).unwrap(),
        );
        let checkpoint = Checkpoint::new("fundtrail.test/ledger", 1234, Hash([7; 32])).unwrap();
        let note_a = a.sign_checkpoint(&checkpoint).unwrap();
        let note_b = b.sign_checkpoint(&checkpoint).unwrap();
        assert_eq!(note_a, note_b);
        let text = String::from_utf8(note_a).unwrap();
        let (body, signatures) = text.split_once("\n\n").unwrap();
        assert_eq!(body, format!("fundtrail.test/ledger\n1234\n{}", Hash([7; 32]).to_base64()));
        assert_eq!(signatures.lines().count(), 1, "only the log's signature: {text}");
        // Another tree of the same size signs differently.
        let other = Checkpoint::new("fundtrail.test/ledger", 1234, Hash([8; 32])).unwrap();
        assert_ne!(a.sign_checkpoint(&other).unwrap(), b.sign_checkpoint(&checkpoint).unwrap());
    }
}
