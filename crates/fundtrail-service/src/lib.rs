//! The service core: everything between the HTTP edge and the event log.
//!
//! - [`sequencer`]: the one fold of the process — follows the log, decides
//!   commands (optimistic concurrency, group commit, re-decide on a lost
//!   race) and hands every applied event, in order, to the projections.
//! - [`projections`]: sinks of those hand-overs — the donations and the
//!   public ledger in sled, exactly once — and the read model.
//! - [`cosigner`]: with witnesses, gathers a quorum of cosignatures for the
//!   newest signed checkpoint (its own task) before it is served.
//! - [`snapshot`]: the fold saved every N events, so a restart replays only
//!   the tail.
//! - [`views`]: what the views contain.
//! - [`clock`]: the one clock.
//! - [`vault`]: the private, erasable donor vault (its own sled database).
//!
//! Architecture invariant: no rule lives here. Deciding is
//! `fundtrail_domain::decide`, folding is `fundtrail_envelope::Fold`, and a
//! process holds exactly one fold (the sequencer's); this crate only orders,
//! stores and waits.

pub mod clock;
pub mod cosigner;
pub mod health;
pub mod ledger_store;
pub mod projections;
pub mod sequencer;
pub mod snapshot;
pub mod vault;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fundtrail_ledger::LogSigner;
use fundtrail_store::{CheckpointLog, EventLog, JetStreamLog, LogError, NatsConnect, SledLog, StreamSettings};
use tokio::sync::{mpsc, watch};

pub use clock::{Clock, ManualClock, SystemClock};
pub use cosigner::{CosignStatus, Witnessing};
pub use fundtrail_witness::WitnessStats;
pub use projections::{LedgerConfig, Projection, ProjectionError, Projector, ReadModel};
pub use sequencer::{Accepted, Races, SubmitError, Writer, WriterConfig};

/// How long a submitter waits for its event to be applied by the projections.
pub const APPLY_WAIT_MAX: Duration = Duration::from_secs(10);

/// sled's page cache for the projections (its default is 1 GiB): reads are
/// of recent donations and of tiles, mostly the newest.
pub const PROJECTIONS_CACHE_BYTES: u64 = 64 << 20;

/// Where the events live.
#[derive(Clone, Debug)]
pub enum LogBackend {
    /// The embedded, durable sled log in this directory.
    Embedded(PathBuf),
    /// NATS JetStream: its servers, credentials and TLS.
    Nats { connect: NatsConnect, settings: StreamSettings },
}

pub struct ServiceConfig {
    pub backend: LogBackend,
    /// Projections (views and ledger) live here.
    pub projections_dir: PathBuf,
    pub writer: WriterConfig,
    /// The ledger's checkpoint signer (origin = its name).
    pub log_signer: LogSigner,
    pub checkpoint_entries: u64,
    pub checkpoint_interval: Duration,
    /// Most messages the projections apply in one sled batch.
    pub chunk_messages_max: usize,
    /// Save the fold every this many events (0: never); see [`snapshot`].
    pub snapshot_events: u64,
    /// Witnesses whose quorum must cosign a checkpoint before it is served
    /// (none: served as soon as signed); see [`cosigner`].
    pub witnesses: Option<Witnessing>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("projection storage: {0}")]
    Storage(#[from] sled::Error),
}

/// A running service: one sequencer (the fold), its projections.
pub struct Service {
    pub writer: Writer,
    pub read: ReadModel,
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<dyn Clock>,
    /// The log as the last probe found it (see [`health`]).
    pub log_reach: watch::Receiver<health::LogReach>,
    /// The position the fold started from: its snapshot's, or 0 (the whole
    /// log replayed).
    pub started_at: u64,
    shutdown: watch::Sender<bool>,
}

/// The answer to a submission that was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub accepted: Accepted,
    /// The ledger index of the event (`seq − 1`).
    pub ledger_index: u64,
    /// Whether the local projections applied it within [`APPLY_WAIT_MAX`].
    pub applied: bool,
}

impl Service {
    pub async fn start(config: ServiceConfig, clock: Arc<dyn Clock>) -> Result<Service, ServiceError> {
        let (log, checkpoints): (Arc<dyn EventLog>, Arc<dyn CheckpointLog>) = match &config.backend {
            LogBackend::Embedded(dir) => {
                let log = Arc::new(SledLog::open(dir)?);
                (log.clone(), log)
            }
            LogBackend::Nats { connect, settings } => {
                let log = Arc::new(JetStreamLog::connect_with(connect, settings.clone()).await?);
                (log.clone(), log)
            }
        };
        let db = fundtrail_store::open_sled(
            &sled::Config::new().path(&config.projections_dir).cache_capacity(PROJECTIONS_CACHE_BYTES),
        )?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ledger = LedgerConfig {
            signer: config.log_signer,
            checkpoint_entries: config.checkpoint_entries,
            checkpoint_interval: config.checkpoint_interval,
            chunk_messages_max: config.chunk_messages_max,
            snapshot_events: config.snapshot_events,
            witnesses: config.witnesses,
        };
        let opened = Projector::open(db, &config.projections_dir, Some(checkpoints), ledger)?;
        let read = opened.projector.read_model();
        let (handoff_tx, handoff_rx) = mpsc::channel(sequencer::HANDOFF_QUEUE_MAX);
        opened.projector.spawn(handoff_rx, shutdown_rx.clone());
        let log_reach = health::spawn_probe(log.clone(), shutdown_rx.clone());
        let started_at = opened.fold.position();
        let writer = Writer::start(
            log.clone(),
            clock.clone(),
            config.writer,
            opened.fold,
            config.chunk_messages_max,
            handoff_tx,
            shutdown_rx,
        );
        Ok(Service { writer, read, log, clock, log_reach, started_at, shutdown })
    }

    /// Submits a signed envelope and waits until the local projections applied
    /// it (read-your-writes).
    pub async fn submit(&self, envelope: Vec<u8>) -> Result<Submitted, SubmitError> {
        let accepted = self.writer.submit(envelope).await?;
        let applied = self.read.wait_applied(accepted.seq, APPLY_WAIT_MAX).await;
        Ok(Submitted { ledger_index: accepted.seq - 1, accepted, applied })
    }

    /// Whether the projections have caught up with the log.
    pub async fn ready(&self) -> Result<bool, LogError> {
        Ok(self.read.applied() >= self.log.last_seq().await?)
    }

    /// Whether to receive traffic, from what the process knows (no network
    /// call: answers at once).
    pub fn readiness(&self) -> health::Readiness {
        health::readiness(&self.log_reach.borrow(), self.read.applied())
    }

    /// The log's last sequence as last probed, if the probe reached it.
    pub fn known_last_seq(&self) -> Option<u64> {
        match &*self.log_reach.borrow() {
            health::LogReach::Reached { last_seq } => Some(*last_seq),
            _ => None,
        }
    }

    /// Stops the sequencer and the projections.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
