//! The projections: sinks of what the sequencer applied. They never fold or
//! evolve anything; each [`Handoff`] brings consecutive steps (sequence,
//! parsed event or the reason it was rejected) and the fold right after them.
//!
//! What the fold's state already is — funds, proposals, keys, disclosures —
//! is read from the published state itself (see [`ReadModel`]): a read sees
//! one state at one position. What the state does not keep is stored in sled
//! by [`Projection`]: the donations of each fund and donor in ledger order,
//! the rejected messages, and the public ledger.
//!
//! Exactly once: each projection has its own position; a chunk of steps is
//! applied with one sled batch holding every projection's writes *and* their
//! new positions, and the batch is flushed before the positions count as
//! applied (before [`ReadModel::wait_applied`] sees them). A crash before the
//! flush loses the whole chunk and it is applied again; after the flush,
//! never again. A projection that is dropped (`fundtrail rebuild`) starts
//! again from position 0 while the others skip what they already have.
//!
//! The ledger projection turns stream message `seq` into ledger entry
//! `seq − 1`, appends its leaf hash to the RFC 6962 tree incrementally
//! (about two stored hashes per entry, never recomputing the tree), and signs
//! a checkpoint every [`LedgerConfig::checkpoint_entries`] entries or
//! [`LedgerConfig::checkpoint_interval`], whichever comes first — only after
//! proving the new tree consistent with the last one it signed.
//!
//! With witnesses ([`LedgerConfig::witnesses`]) a signed checkpoint is not served
//! until a quorum cosigned it: the cosigner task ([`crate::cosigner`]) takes the
//! newest signed checkpoint to the witnesses while the projections go on, and the
//! read model's checkpoint is the newest cosigned one. Without witnesses it is the
//! newest signed one, as soon as it is signed.
//!
//! Every [`LedgerConfig::snapshot_events`] events the fold is saved
//! ([`crate::snapshot`]) at the position just flushed, so that a restart
//! replays only the tail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundtrail_domain::{EventBody, EventId, FundId, KeyId, ProposalId, Sha256Hex, State};
use fundtrail_envelope::{Fold, Folded};
use fundtrail_ledger::{
    append_leaf, encode_entry, leaf_hash, prove_consistency, tree_hash, verify_consistency, Checkpoint, Hash,
    HashReader, LogSigner,
};
use fundtrail_store::{CheckpointLog, LogError};
use futures::FutureExt;
use tokio::sync::{mpsc, watch};

use crate::cosigner::{CosignStatus, Cosigner, Rounds, Witnessing, CHECKPOINT_COSIGNED};
use crate::ledger_store::{self, LedgerAppend, LedgerStoreError, StoredHashes};
use crate::sequencer::{Handoff, Step};
use crate::snapshot;
use crate::views;

/// Most messages applied in one sled batch.
pub const CHUNK_MESSAGES_MAX: usize = 2_000;
/// A checkpoint that cannot be published to the log is said at warn once, then once
/// every this many failed attempts (at every tick, four a second by default).
const PUBLISH_FAILURES_SAID: u32 = 40;
/// Save the fold at most this often (events), by default.
pub const SNAPSHOT_EVENTS_DEFAULT: u64 = 100_000;

/// What is stored in sled beside the fold's state, each with its own position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Projection {
    /// Cash and goods donations of each fund, in ledger order.
    Donations,
    /// Goods donations by donor commitment (private: the vault's reads). A cash
    /// donation's donor is in the fold's state, where [`ReadModel::donor`] finds it.
    Donors,
    /// Messages the fold rejected, with the reason.
    Events,
    /// The public ledger: entries, stored tree hashes, the chain's last leaf.
    Ledger,
}

impl Projection {
    pub const ALL: [Projection; 4] =
        [Projection::Donations, Projection::Donors, Projection::Events, Projection::Ledger];

    pub fn as_str(self) -> &'static str {
        match self {
            Projection::Donations => "donations",
            Projection::Donors => "donors",
            Projection::Events => "events",
            Projection::Ledger => "ledger",
        }
    }

    /// The key prefixes it owns (what `rebuild` drops).
    fn prefixes(self) -> Vec<Vec<u8>> {
        let p = |s: &str| key(&[s.as_bytes(), b""]);
        match self {
            Projection::Donations => vec![p("donation")],
            Projection::Donors => vec![p("donor")],
            Projection::Events => vec![p("rejected")],
            Projection::Ledger => vec![p("h"), p("e"), LEDGER_PREV.to_vec()],
        }
    }
}

impl std::fmt::Display for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Projection {
    type Err = ProjectionError;

    fn from_str(name: &str) -> Result<Projection, ProjectionError> {
        Projection::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| ProjectionError::Unknown(name.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("projection storage: {0}")]
    Storage(#[from] sled::Error),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error(transparent)]
    LedgerStore(#[from] LedgerStoreError),
    #[error("unknown projection {0:?}; known: donations, donors, events, ledger")]
    Unknown(String),
}

/// How the ledger is signed and how often the fold is saved.
pub struct LedgerConfig {
    pub signer: LogSigner,
    /// Sign a checkpoint after this many new entries...
    pub checkpoint_entries: u64,
    /// ... or once this long has passed with any new entry.
    pub checkpoint_interval: Duration,
    /// Most messages applied in one sled batch.
    pub chunk_messages_max: usize,
    /// Save the fold after this many events (0: never).
    pub snapshot_events: u64,
    /// Witnesses that must cosign a checkpoint before it is served (none: every
    /// signed checkpoint is served at once).
    pub witnesses: Option<Witnessing>,
}

// ---------------------------------------------------------------------------
// keys in the one sled tree

fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(p);
    }
    out
}

/// Most donations one donor lookup answers.
const DONOR_DONATIONS_MAX: usize = 10_000;

fn position_key(projection: Projection) -> Vec<u8> {
    key(&[b"pos", projection.as_str().as_bytes()])
}

const LEDGER_PREV: &[u8] = b"meta\0ledger_prev";
const VIEWS_FORMAT_KEY: &[u8] = b"meta\0views_format";
/// The layout of the views tree. 2: the ledger stored by runs and groups
/// ([`crate::ledger_store`]). 3: funds, proposals, keys and disclosures are
/// read from the fold's state, no longer stored. 4: the donor index names the
/// donation's fund instead of holding a copy of its view. 5: only goods donations are
/// indexed by donor (a cash gift's donor is read from the fold's state). Views of a
/// layout in `VIEWS_FORMATS_KEPT` are kept as they are; views of any other layout are
/// dropped at start and rebuilt from the log; signed checkpoints are kept.
pub const VIEWS_FORMAT: u64 = 5;
/// Earlier layouts this one reads as they are: layout 4 indexed every gift by donor,
/// and each of those entries is still true. (A release of layout 4 finds 5 and
/// rebuilds, so a store never goes back to a reader that would miss cash gifts.)
const VIEWS_FORMATS_KEPT: [u64; 1] = [4];
const CHECKPOINT_LATEST: &[u8] = b"cp\0latest";

/// Where the fold's snapshot of a projection store lives.
pub fn snapshot_path(projections_dir: &std::path::Path) -> PathBuf {
    projections_dir.join("fundtrail-fold.snapshot")
}

/// Drops projections so that the next start rebuilds them from the log.
/// Signed checkpoints are kept: the rebuilt ledger must be consistent with them.
pub fn rebuild(db: &sled::Db, names: &[String]) -> Result<(), ProjectionError> {
    // Every name is checked before anything is dropped.
    let projections: Vec<Projection> = names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    let views = db.open_tree("views")?;
    for projection in projections {
        for prefix in projection.prefixes() {
            for item in views.scan_prefix(&prefix).keys() {
                views.remove(item?)?;
            }
        }
        views.insert(position_key(projection), &0u64.to_be_bytes())?;
    }
    db.flush()?;
    Ok(())
}

/// Drops views written in another layout (they are rebuilt from the log).
fn upgrade_format(db: &sled::Db, views: &sled::Tree) -> Result<(), ProjectionError> {
    let stored = read_u64(views, VIEWS_FORMAT_KEY)?;
    if stored == VIEWS_FORMAT {
        return Ok(());
    }
    if VIEWS_FORMATS_KEPT.contains(&stored) {
        tracing::info!(stored, current = VIEWS_FORMAT, "views of an earlier layout this one reads as they are");
    } else if !views.is_empty() {
        tracing::warn!(stored, current = VIEWS_FORMAT, "views are in an older layout; rebuilding them from the log");
        for k in views.iter().keys() {
            let k = k?;
            if !k.starts_with(b"cp\0") {
                views.remove(k)?;
            }
        }
    }
    views.insert(VIEWS_FORMAT_KEY, &VIEWS_FORMAT.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

fn read_u64(tree: &sled::Tree, k: &[u8]) -> Result<u64, ProjectionError> {
    Ok(tree.get(k)?.map(|v| u64::from_be_bytes(v.as_ref().try_into().expect("8-byte position"))).unwrap_or(0))
}

// ---------------------------------------------------------------------------
// what a chunk changes

#[derive(Default)]
struct Dirty {
    /// (fund, donation id, sequence of the donation)
    donations: BTreeSet<(FundId, EventId, u64)>,
    goods_donations: Vec<(fundtrail_domain::Event, u64)>,
}

// ---------------------------------------------------------------------------
// the projector

/// The projections' task: takes hand-overs in order and writes them.
pub struct Projector {
    checkpoints: Option<Arc<dyn CheckpointLog>>,
    db: sled::Db,
    views: sled::Tree,
    snapshot_path: PathBuf,
    positions: BTreeMap<Projection, u64>,
    /// The last position every projection has applied and flushed.
    applied: u64,
    ledger_size: u64,
    ledger_prev: Hash,
    ledger: LedgerConfig,
    last_signed: Option<Checkpoint>,
    last_signed_at: Instant,
    published_size: u64,
    /// Failed attempts in a row at publishing the newest checkpoint to the log.
    publish_failures: u32,
    snapshot_position: u64,
    snapshot_writing: Option<std::thread::JoinHandle<()>>,
    published_tx: watch::Sender<Arc<Published>>,
    /// The newest signed checkpoint note.
    signed_tx: watch::Sender<Option<Arc<Vec<u8>>>>,
    /// The served checkpoint note: the newest signed one, or with witnesses the
    /// newest one a quorum cosigned.
    checkpoint_tx: watch::Sender<Option<Arc<Vec<u8>>>>,
    rounds: Arc<std::sync::Mutex<Rounds>>,
}

/// The fold's state and position as the projections last flushed them: what
/// every read sees, one position at a time.
pub struct Published {
    /// Every projection has applied (and flushed) up to here.
    pub position: u64,
    pub fold: Fold,
}

/// What readers hold: the views, the published fold, the latest checkpoint.
#[derive(Clone)]
pub struct ReadModel {
    pub views: sled::Tree,
    published: watch::Receiver<Arc<Published>>,
    checkpoint: watch::Receiver<Option<Arc<Vec<u8>>>>,
    signed: watch::Receiver<Option<Arc<Vec<u8>>>>,
    witnesses: Option<Witnessing>,
    rounds: Arc<std::sync::Mutex<Rounds>>,
    /// The log's verifier key (C2SP vkey).
    pub vkey: String,
    pub origin: String,
}

/// Where the projections of a store stand, read at start: the fold the
/// sequencer starts from and what the projector then expects.
pub struct Opened {
    pub projector: Projector,
    /// The fold to start from: a valid snapshot at or before every
    /// projection's position, or an empty fold.
    pub fold: Fold,
}

impl Projector {
    /// Opens the projections in `db` (and the fold's snapshot in `dir`).
    pub fn open(
        db: sled::Db,
        dir: &std::path::Path,
        checkpoints: Option<Arc<dyn CheckpointLog>>,
        ledger: LedgerConfig,
    ) -> Result<Opened, ProjectionError> {
        if let Some(w) = &ledger.witnesses {
            let witnesses = w.pool.endpoints().len();
            if w.quorum == 0 || w.quorum > witnesses {
                return Err(ProjectionError::Ledger(format!(
                    "witness quorum {} must be between 1 and the {witnesses} witnesses configured",
                    w.quorum
                )));
            }
        }
        let views = db.open_tree("views")?;
        upgrade_format(&db, &views)?;
        let mut positions = BTreeMap::new();
        for projection in Projection::ALL {
            positions.insert(projection, read_u64(&views, &position_key(projection))?);
        }
        let ledger_size = positions[&Projection::Ledger];
        let ledger_prev = match views.get(LEDGER_PREV)? {
            Some(v) if ledger_size > 0 => {
                Hash(v.as_ref().try_into().map_err(|_| ProjectionError::Ledger("bad prev".into()))?)
            }
            _ => Hash([0; 32]),
        };
        let verifier = ledger.signer.verifier();
        let latest_note = views.get(CHECKPOINT_LATEST)?.map(|n| Arc::new(n.to_vec()));
        let last_signed = match &latest_note {
            Some(note) => Some(verifier.verify_checkpoint(note).map_err(|e| ProjectionError::Ledger(e.to_string()))?),
            None => None,
        };
        let snapshot_path = snapshot_path(dir);
        let lowest = positions.values().copied().min().unwrap_or(0);
        let fold = start_fold(&snapshot_path, &views, lowest, positions[&Projection::Ledger]);
        let start = fold.position();
        let published = Arc::new(Published { position: start, fold: fold.clone() });
        let (published_tx, _) = watch::channel(published);
        // With witnesses, what is served is the newest cosigned note (kept across
        // restarts); before any quorum, nothing.
        let served_note = match &ledger.witnesses {
            None => latest_note.clone(),
            Some(_) => match views.get(CHECKPOINT_COSIGNED)? {
                Some(note) => {
                    verifier
                        .verify_checkpoint(&note)
                        .map_err(|e| ProjectionError::Ledger(format!("cosigned checkpoint: {e}")))?;
                    Some(Arc::new(note.to_vec()))
                }
                None => None,
            },
        };
        let (signed_tx, _) = watch::channel(latest_note);
        let (checkpoint_tx, _) = watch::channel(served_note);
        let published_size = last_signed.as_ref().map_or(0, |c| c.size);
        let projector = Projector {
            checkpoints,
            db,
            views,
            snapshot_path,
            positions,
            applied: start,
            ledger_size,
            ledger_prev,
            ledger,
            last_signed,
            last_signed_at: Instant::now(),
            published_size,
            publish_failures: 0,
            snapshot_position: start,
            snapshot_writing: None,
            published_tx,
            signed_tx,
            checkpoint_tx,
            rounds: Arc::default(),
        };
        projector.check_last_checkpoint()?;
        Ok(Opened { projector, fold })
    }

    /// The read side of these projections.
    pub fn read_model(&self) -> ReadModel {
        ReadModel {
            views: self.views.clone(),
            published: self.published_tx.subscribe(),
            checkpoint: self.checkpoint_tx.subscribe(),
            signed: self.signed_tx.subscribe(),
            witnesses: self.ledger.witnesses.clone(),
            rounds: self.rounds.clone(),
            vkey: self.ledger.signer.vkey(),
            origin: self.ledger.signer.name().to_owned(),
        }
    }

    /// Runs until the sequencer stops handing over or `shutdown` says so.
    pub fn spawn(mut self, mut handoffs: mpsc::Receiver<Handoff>, mut shutdown: watch::Receiver<bool>) {
        if let Some(witnessing) = &self.ledger.witnesses {
            // Its own task: the projections never wait for a witness.
            Cosigner {
                witnessing: witnessing.clone(),
                db: self.db.clone(),
                views: self.views.clone(),
                origin: self.ledger.signer.name().to_owned(),
                signed: self.signed_tx.subscribe(),
                served: self.checkpoint_tx.clone(),
                rounds: self.rounds.clone(),
                shutdown: shutdown.clone(),
            }
            .spawn();
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.ledger.checkpoint_interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    next = handoffs.recv() => {
                        let Some(first) = next else { break };
                        let mut chunk = vec![first];
                        let mut messages = chunk[0].steps.len();
                        while messages < self.ledger.chunk_messages_max.clamp(1, CHUNK_MESSAGES_MAX) {
                            match handoffs.recv().now_or_never() {
                                Some(Some(h)) => {
                                    messages += h.steps.len();
                                    chunk.push(h);
                                }
                                _ => break,
                            }
                        }
                        if let Err(e) = self.process(chunk).await {
                            // Nothing of the chunk counts as applied; the sequencer's
                            // hand-overs cannot be asked for again, so stop: a restart
                            // replays from the last flushed position.
                            tracing::error!(error = %e, "projections stopped: a chunk could not be written");
                            break;
                        }
                        self.maybe_checkpoint().await;
                    }
                    _ = tick.tick() => self.maybe_checkpoint().await,
                    _ = shutdown.changed() => break,
                }
            }
            if let Some(writing) = self.snapshot_writing.take() {
                let _ = tokio::task::spawn_blocking(move || writing.join()).await;
            }
        });
    }

    /// A restarted ledger must still hold the tree its last checkpoint signed.
    fn check_last_checkpoint(&self) -> Result<(), ProjectionError> {
        let Some(last) = &self.last_signed else { return Ok(()) };
        if last.size > self.ledger_size {
            // The ledger projection was dropped: it is checked again when it is rebuilt.
            return Ok(());
        }
        let root = tree_hash(last.size, &StoredHashes { tree: &self.views, pending: None })
            .map_err(|e| ProjectionError::Ledger(e.to_string()))?;
        if root != last.root {
            return Err(ProjectionError::Ledger(format!(
                "stored tree of size {} has root {root} but the signed checkpoint says {}",
                last.size, last.root
            )));
        }
        Ok(())
    }

    fn behind(&self, projection: Projection, seq: u64) -> bool {
        self.positions[&projection] < seq
    }

    async fn process(&mut self, chunk: Vec<Handoff>) -> Result<(), ProjectionError> {
        let start = self.applied;
        let (ledger_size, ledger_prev) = (self.ledger_size, self.ledger_prev);
        let mut batch = sled::Batch::default();
        let mut dirty = Dirty::default();
        let mut ledger = LedgerAppend::default();
        let mut last_fold = None;
        let mut applied = Ok(());
        for handoff in chunk {
            for step in &handoff.steps {
                applied = self.apply_step(step, &handoff.fold, &mut batch, &mut dirty, &mut ledger);
                if applied.is_err() {
                    break;
                }
            }
            last_fold = Some(handoff.fold);
        }
        let applied = applied.and_then(|()| ledger.write(&self.views, &mut batch).map_err(ProjectionError::from));
        if let Err(e) = applied {
            (self.applied, self.ledger_size, self.ledger_prev) = (start, ledger_size, ledger_prev);
            return Err(e);
        }
        let fold = last_fold.expect("a chunk has at least one hand-over");
        let last = self.applied;
        assert_eq!(fold.position(), last, "the hand-over's fold is at its last step");
        render(&fold.state, &dirty, &mut batch);
        for projection in Projection::ALL {
            let position = self.positions.get_mut(&projection).expect("known projection");
            if *position < last {
                *position = last;
                batch.insert(position_key(projection), &last.to_be_bytes());
            }
        }
        batch.insert(LEDGER_PREV, &self.ledger_prev.0);
        self.views.apply_batch(batch)?;
        self.db.flush_async().await?;
        assert!(self.ledger_size >= last, "one ledger entry per stream message");
        self.maybe_snapshot(&fold, last);
        self.published_tx.send_replace(Arc::new(Published { position: last, fold }));
        Ok(())
    }

    fn apply_step(
        &mut self,
        step: &Step,
        fold: &Fold,
        batch: &mut sled::Batch,
        dirty: &mut Dirty,
        ledger: &mut LedgerAppend,
    ) -> Result<(), ProjectionError> {
        let seq = step.seq();
        assert_eq!(seq, self.applied + 1, "hand-overs come in order, without gaps");
        if self.behind(Projection::Ledger, seq) {
            self.append_entry(seq, step.envelope(), ledger)?;
        }
        match step {
            Step::Applied { folded, .. } => self.mark(folded, fold, seq, dirty),
            Step::Rejected { error, .. } => {
                if self.behind(Projection::Events, seq) {
                    batch.insert(key(&[b"rejected", &seq.to_be_bytes()]), error.to_string().into_bytes());
                }
            }
        }
        self.applied = seq;
        Ok(())
    }

    fn append_entry(&mut self, seq: u64, envelope: &[u8], ledger: &mut LedgerAppend) -> Result<(), ProjectionError> {
        let index = seq - 1;
        assert_eq!(index, self.ledger_size, "ledger index follows the stream sequence");
        let entry =
            encode_entry(index, &self.ledger_prev, envelope).map_err(|e| ProjectionError::Ledger(e.to_string()))?;
        let leaf = leaf_hash(&entry);
        let hashes = append_leaf(self.ledger_size, leaf, &StoredHashes { tree: &self.views, pending: Some(ledger) })
            .map_err(|e| ProjectionError::Ledger(e.to_string()))?;
        for (id, h) in hashes {
            ledger.push_hash(id, h);
        }
        ledger.push_entry(index, entry);
        self.ledger_size += 1;
        self.ledger_prev = leaf;
        Ok(())
    }

    fn mark(&self, folded: &Folded, fold: &Fold, seq: u64, dirty: &mut Dirty) {
        use EventBody as B;
        let event = &folded.event.event;
        if !(self.behind(Projection::Donations, seq) || self.behind(Projection::Donors, seq)) {
            return;
        }
        let donation = match &event.body {
            B::DonationReceived(_) => Some((event.id.clone(), seq)),
            B::DonationReversed(b) => fold.id_record(&b.donation).map(|r| (b.donation.clone(), r.seq)),
            B::ReceiptIssued(b) => fold.id_record(&b.donation).map(|r| (b.donation.clone(), r.seq)),
            B::ReceiptVoided(b) => fold.id_record(&b.donation).map(|r| (b.donation.clone(), r.seq)),
            B::GoodsReceived(_) => {
                dirty.goods_donations.push((event.clone(), seq));
                None
            }
            _ => None,
        };
        if let Some((id, donation_seq)) = donation {
            dirty.donations.insert((event.fund.clone(), id, donation_seq));
        }
    }

    /// Saves the fold at `position` on a blocking thread, when due and no
    /// earlier save is still being written.
    fn maybe_snapshot(&mut self, fold: &Fold, position: u64) {
        let every = self.ledger.snapshot_events;
        if every == 0 || position < self.snapshot_position + every {
            return;
        }
        if self.snapshot_writing.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let (fold, path, leaf) = (fold.clone(), self.snapshot_path.clone(), self.ledger_prev);
        // A thread of its own at the lowest priority: saving is housekeeping, and its
        // cost grows with the fold (at 10^6 gifts a third of a second of a core every
        // 100,000 events), so it runs when submissions and reads leave a core idle
        // instead of taking a share from them (docs/performance.md, "Scale").
        let spawned = std::thread::Builder::new().name("fundtrail-snapshot".into()).spawn(move || {
            if let Err(e) = lowest_priority() {
                tracing::debug!(error = %e, "the snapshot thread keeps its priority");
            }
            let started = Instant::now();
            match snapshot::save(&path, &fold, leaf) {
                Ok(bytes) => tracing::info!(position, bytes, ms = started.elapsed().as_millis() as u64, "fold saved"),
                Err(e) => tracing::warn!(error = %e, position, "fold not saved; the next restart replays more"),
            }
        });
        match spawned {
            Ok(thread) => {
                self.snapshot_position = position;
                self.snapshot_writing = Some(thread);
            }
            Err(e) => tracing::warn!(error = %e, position, "fold not saved: no thread to save it on"),
        }
    }

    async fn maybe_checkpoint(&mut self) {
        let last_size = self.last_signed.as_ref().map_or(0, |c| c.size);
        let due = self.ledger_size.saturating_sub(last_size) >= self.ledger.checkpoint_entries
            || self.last_signed_at.elapsed() >= self.ledger.checkpoint_interval;
        if self.ledger_size > last_size && due {
            if let Err(e) = self.sign_checkpoint().await {
                tracing::error!(error = %e, "checkpoint not signed");
            }
        }
        if let (Some(cp), Some(log)) = (&self.last_signed, &self.checkpoints) {
            if cp.size > self.published_size {
                let note = self.signed_tx.borrow().clone();
                if let Some(note) = note {
                    match log.publish_checkpoint(note.to_vec()).await {
                        Ok(_) => {
                            self.published_size = cp.size;
                            if self.publish_failures > 0 {
                                tracing::info!(failures = self.publish_failures, "checkpoint published again");
                            }
                            self.publish_failures = 0;
                        }
                        Err(e) => {
                            // Tried again at every chunk and tick: said once, then every
                            // PUBLISH_FAILURES_SAID failures, while it lasts (an election).
                            if self.publish_failures.is_multiple_of(PUBLISH_FAILURES_SAID) {
                                tracing::warn!(error = %e, failures = self.publish_failures + 1, "checkpoint not published yet; will retry");
                            } else {
                                tracing::debug!(error = %e, "checkpoint not published yet; will retry");
                            }
                            self.publish_failures = self.publish_failures.saturating_add(1);
                        }
                    }
                }
            }
        }
    }

    async fn sign_checkpoint(&mut self) -> Result<(), ProjectionError> {
        let size = self.ledger_size;
        let hashes = StoredHashes { tree: &self.views, pending: None };
        let ledger_err = |e: fundtrail_ledger::TreeError| ProjectionError::Ledger(e.to_string());
        let root = tree_hash(size, &hashes).map_err(ledger_err)?;
        if let Some(last) = &self.last_signed {
            // Never sign two inconsistent checkpoints.
            let proof = prove_consistency(last.size, size, &hashes).map_err(ledger_err)?;
            verify_consistency(&proof, last.size, &last.root, size, &root).map_err(|e| {
                ProjectionError::Ledger(format!(
                    "refusing to sign size {size}: not consistent with size {}: {e}",
                    last.size
                ))
            })?;
        }
        let checkpoint = Checkpoint::new(self.ledger.signer.name(), size, root)
            .map_err(|e| ProjectionError::Ledger(e.to_string()))?;
        let note =
            self.ledger.signer.sign_checkpoint(&checkpoint).map_err(|e| ProjectionError::Ledger(e.to_string()))?;
        let mut batch = sled::Batch::default();
        batch.insert(CHECKPOINT_LATEST, note.clone());
        batch.insert(key(&[b"cp", &size.to_be_bytes()]), note.clone());
        self.views.apply_batch(batch)?;
        self.db.flush_async().await?;
        self.last_signed = Some(checkpoint);
        self.last_signed_at = Instant::now();
        let note = Arc::new(note);
        self.signed_tx.send_replace(Some(note.clone()));
        if self.ledger.witnesses.is_none() {
            self.checkpoint_tx.send_replace(Some(note));
        }
        Ok(())
    }
}

/// Gives the calling thread the lowest scheduling priority (nice 19). On Linux
/// the nice value belongs to the thread, not the process (setpriority(2), "Notes").
fn lowest_priority() -> std::io::Result<()> {
    const NICE_LOWEST: i32 = 19;
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE_LOWEST).map_err(std::io::Error::from)
}

/// The fold a restart begins with: the snapshot, if it is valid, no newer than
/// any projection (a dropped one starts from 0) and of this ledger (its last
/// leaf hash is the one stored); otherwise an empty fold (replay everything).
fn start_fold(path: &std::path::Path, views: &sled::Tree, lowest: u64, ledger_position: u64) -> Fold {
    let loaded = match snapshot::load(path) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Fold::new(),
        Err(e) => {
            tracing::warn!(error = %e, "fold snapshot ignored; replaying the log from its start");
            return Fold::new();
        }
    };
    let position = loaded.fold.position();
    if position > lowest {
        tracing::info!(position, lowest, "fold snapshot is newer than a projection; replaying the log from its start");
        return Fold::new();
    }
    if position > 0 && position <= ledger_position {
        let stored = ledger_store::read_entry(views, position - 1).ok().flatten().map(|e| leaf_hash(&e));
        if stored != Some(loaded.last_leaf) {
            tracing::warn!(position, "fold snapshot is not of this ledger; replaying the log from its start");
            return Fold::new();
        }
    }
    tracing::info!(position, "fold read from its snapshot; replaying the tail");
    loaded.fold
}

fn render(state: &State, dirty: &Dirty, batch: &mut sled::Batch) {
    let cash = dirty.donations.iter().filter_map(|(f, id, seq)| views::donation_view(state, f, id, *seq, None));
    for v in cash {
        insert_donation_view(batch, &v);
    }
    let goods =
        dirty.goods_donations.iter().filter_map(|(e, seq)| views::donation_view(state, &e.fund, &e.id, *seq, Some(e)));
    for v in goods {
        insert_donation_view(batch, &v);
        // Only goods donations are indexed by donor: the state keeps no goods gift one
        // by one. A cash gift's donor is in the state, which `ReadModel::donor` scans:
        // a commitment is random, so an index of every gift was written all over its
        // range, one sled page per gift once the index outgrew the cache — about a
        // tenth of the ingest rate at 20,000 gifts and more as the log grew
        // (docs/performance.md, "Ninth session: the donor index").
        batch.insert(key(&[b"donor", v.donor.to_text().as_bytes(), &v.seq.to_be_bytes()]), v.fund.as_str().as_bytes());
    }
}

fn insert_donation_view(batch: &mut sled::Batch, v: &views::DonationView) {
    let bytes = serde_json::to_vec(v).expect("views serialise");
    batch.insert(key(&[b"donation", v.fund.as_str().as_bytes(), &v.seq.to_be_bytes()]), bytes);
}

// ---------------------------------------------------------------------------
// reading

/// The published state, held for one read: derefs to the domain [`State`].
pub struct StateAt(Arc<Published>);

impl StateAt {
    /// The position this state is at.
    pub fn position(&self) -> u64 {
        self.0.position
    }

    pub fn fold(&self) -> &Fold {
        &self.0.fold
    }
}

impl std::ops::Deref for StateAt {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0.fold.state
    }
}

impl ReadModel {
    /// The last sequence every projection has applied (and flushed).
    pub fn applied(&self) -> u64 {
        self.published.borrow().position
    }

    /// Waits until the projections applied `seq` (read-your-writes).
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.published.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| p.position >= seq)).await.is_ok_and(|r| r.is_ok())
    }

    /// The fold's state as last published (an O(1) snapshot): every view
    /// rendered from one `StateAt` is of one position.
    pub fn state(&self) -> StateAt {
        StateAt(self.published.borrow().clone())
    }

    /// The served checkpoint note: the newest signed one, or, with witnesses, the
    /// newest one a quorum cosigned (with their cosignatures attached).
    pub fn checkpoint(&self) -> Option<Arc<Vec<u8>>> {
        self.checkpoint.borrow().clone()
    }

    /// The newest signed checkpoint note, cosigned or not (with witnesses it may be
    /// newer than [`ReadModel::checkpoint`]: waiting for a quorum).
    pub fn signed_checkpoint(&self) -> Option<Arc<Vec<u8>>> {
        self.signed.borrow().clone()
    }

    /// The witnesses' counters, when the service has witnesses.
    pub fn cosign_status(&self) -> Option<CosignStatus> {
        self.witnesses.as_ref().map(|w| w.status(&self.rounds))
    }

    /// Waits until the served checkpoint covers `size` entries.
    pub async fn wait_checkpoint(&self, size: u64, timeout: Duration) -> Option<Arc<Vec<u8>>> {
        Self::wait_covering(self.checkpoint.clone(), &self.origin, size, timeout).await
    }

    /// Waits until a signed checkpoint (cosigned or not) covers `size` entries.
    pub async fn wait_signed_checkpoint(&self, size: u64, timeout: Duration) -> Option<Arc<Vec<u8>>> {
        Self::wait_covering(self.signed.clone(), &self.origin, size, timeout).await
    }

    async fn wait_covering(
        mut rx: watch::Receiver<Option<Arc<Vec<u8>>>>,
        origin: &str,
        size: u64,
        timeout: Duration,
    ) -> Option<Arc<Vec<u8>>> {
        let origin = origin.to_owned();
        let covers = move |note: &Option<Arc<Vec<u8>>>| {
            note.as_ref().is_some_and(|n| checkpoint_size(n, &origin).is_some_and(|s| s >= size))
        };
        let result = tokio::time::timeout(timeout, rx.wait_for(covers)).await;
        match result {
            Ok(Ok(note)) => note.clone(),
            _ => None,
        }
    }

    fn list_json<T: serde::de::DeserializeOwned>(&self, parts: &[&[u8]], after: Option<&[u8]>, limit: usize) -> Vec<T> {
        let mut prefix = key(parts);
        prefix.push(0);
        let start = match after {
            Some(a) => {
                let mut k = prefix.clone();
                k.extend_from_slice(a);
                k.push(0xff);
                k
            }
            None => prefix.clone(),
        };
        self.views
            .range(start..)
            .take_while(|r| r.as_ref().is_ok_and(|(k, _)| k.starts_with(&prefix)))
            .filter_map(|r| r.ok())
            .take(limit)
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect()
    }

    pub fn fund(&self, fund: &FundId) -> Option<views::FundView> {
        views::fund_view(&self.state(), fund)
    }

    pub fn funds(&self) -> Vec<views::FundView> {
        let state = self.state();
        state.funds.keys().filter_map(|f| views::fund_view(&state, f)).collect()
    }

    pub fn proposals(&self, fund: &FundId) -> Vec<views::ProposalView> {
        let state = self.state();
        let Some(f) = state.funds.get(fund) else { return Vec::new() };
        f.proposals.keys().filter_map(|p| views::proposal_view(&state, fund, p)).collect()
    }

    pub fn proposal(&self, fund: &FundId, id: &ProposalId) -> Option<views::ProposalView> {
        views::proposal_view(&self.state(), fund, id)
    }

    pub fn disclosure(&self, fund: &FundId) -> Option<views::DisclosureTotalsView> {
        views::disclosure_totals_view(&self.state(), fund)
    }

    pub fn key_view(&self, id: &KeyId) -> Option<views::KeyView> {
        views::key_view(&self.state(), id)
    }

    pub fn keys(&self) -> Vec<views::KeyView> {
        let state = self.state();
        state.keys.keys().filter_map(|k| views::key_view(&state, k)).collect()
    }

    /// Donations of a fund in ledger order, after sequence `after_seq`.
    pub fn donations(&self, fund: &FundId, after_seq: u64, limit: usize) -> Vec<views::DonationView> {
        let after = after_seq.to_be_bytes();
        self.list_json(&[b"donation", fund.as_str().as_bytes()], (after_seq > 0).then_some(&after[..]), limit)
    }

    /// Private: every donation made under a donor commitment, in ledger order (at
    /// most `DONOR_DONATIONS_MAX`). Cash donations are found in the published state
    /// (a walk of every fund's gifts: milliseconds at 10^6, for a private, rare read),
    /// goods donations in the donor index (with the cash gifts of a store written
    /// before views format 5, which indexed every gift).
    pub fn donor(&self, commitment: &Sha256Hex) -> Vec<views::DonationView> {
        let state = self.state();
        let mut found: BTreeSet<(u64, FundId)> = BTreeSet::new();
        for (fund, f) in state.funds.iter() {
            for (id, donation) in f.donations.iter() {
                if donation.donor == *commitment {
                    if let Some(record) = state.fold().id_record(id) {
                        found.insert((record.seq, fund.clone()));
                    }
                }
            }
        }
        let prefix = key(&[b"donor", commitment.to_text().as_bytes(), b""]);
        for (k, fund) in self.views.scan_prefix(&prefix).filter_map(|r| r.ok()) {
            let seq = k.get(prefix.len()..).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
            let fund = std::str::from_utf8(&fund).ok().and_then(|f| FundId::new(f).ok());
            if let (Some(seq), Some(fund)) = (seq, fund) {
                found.insert((seq, fund));
            }
        }
        found
            .into_iter()
            .take(DONOR_DONATIONS_MAX)
            .filter_map(|(seq, fund)| {
                self.views.get(key(&[b"donation", fund.as_str().as_bytes(), &seq.to_be_bytes()])).ok().flatten()
            })
            .filter_map(|v| serde_json::from_slice::<views::DonationView>(&v).ok())
            .collect()
    }

    /// The sequence an event id was applied at.
    pub fn event_seq(&self, id: &EventId) -> Option<u64> {
        self.state().fold().id_record(id).map(|r| r.seq)
    }

    /// Ledger entry `index` (the entry bytes).
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LedgerStoreError> {
        ledger_store::read_entry(&self.views, index)
    }

    /// Ledger entries `start .. start + count`, if every one is stored.
    pub fn entries(&self, start: u64, count: u64) -> Result<Option<Vec<Vec<u8>>>, LedgerStoreError> {
        ledger_store::read_entries(&self.views, start, count)
    }

    /// Stored hashes of the ledger tree.
    pub fn hashes(&self) -> impl HashReader + '_ {
        StoredHashes { tree: &self.views, pending: None }
    }

    /// Messages the fold refused, with the reason.
    pub fn rejected(&self) -> Vec<(u64, String)> {
        let prefix = key(&[b"rejected", b""]);
        self.views
            .scan_prefix(&prefix)
            .filter_map(|r| r.ok())
            .map(|(k, v)| {
                let seq = u64::from_be_bytes(k[prefix.len()..].try_into().unwrap_or([0; 8]));
                (seq, String::from_utf8_lossy(&v).into_owned())
            })
            .collect()
    }
}

/// The tree size of a checkpoint note (no signature check: for our own notes).
pub fn checkpoint_size(note: &[u8], origin: &str) -> Option<u64> {
    let text = std::str::from_utf8(note).ok()?;
    let mut lines = text.lines();
    if lines.next()? != origin {
        return None;
    }
    lines.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of a thread of this process (proc(5): field 19 of its stat).
    fn nice_of(tid: rustix::process::Pid) -> i64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{}/stat", tid.as_raw_nonzero())).unwrap();
        let (_, fields) = stat.rsplit_once(')').unwrap();
        fields.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn the_snapshot_thread_alone_runs_at_the_lowest_priority() {
        let caller = rustix::thread::gettid();
        let before = nice_of(caller);
        let (thread, nice) = std::thread::spawn(|| {
            lowest_priority().expect("a thread may lower its own priority");
            let me = rustix::thread::gettid();
            (me, nice_of(me))
        })
        .join()
        .unwrap();
        assert_ne!(thread, caller);
        assert_eq!(nice, 19);
        assert_eq!(nice_of(caller), before, "the rest of the process keeps its priority");
    }

    #[test]
    fn views_of_an_older_layout_are_dropped_but_checkpoints_kept() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = db.open_tree("views").unwrap();
        // Format 2 kept funds and proposals in sled, and positions.
        views.insert(key(&[b"fund", b"xihu"]), b"{}".to_vec()).unwrap();
        views.insert(position_key(Projection::Ledger), &9u64.to_be_bytes()).unwrap();
        views.insert(CHECKPOINT_LATEST, b"note".to_vec()).unwrap();
        upgrade_format(&db, &views).unwrap();
        let keys: Vec<Vec<u8>> = views.iter().keys().map(|k| k.unwrap().to_vec()).collect();
        assert_eq!(keys, vec![CHECKPOINT_LATEST.to_vec(), VIEWS_FORMAT_KEY.to_vec()]);
        assert_eq!(read_u64(&views, &position_key(Projection::Ledger)).unwrap(), 0, "the ledger is rebuilt from 0");

        // The current layout is left alone.
        views.insert(position_key(Projection::Ledger), &9u64.to_be_bytes()).unwrap();
        upgrade_format(&db, &views).unwrap();
        assert_eq!(read_u64(&views, &position_key(Projection::Ledger)).unwrap(), 9);

        // Layout 4 (every gift indexed by donor) is read as it is: nothing dropped, and
        // the store says 5 from now on, so a release of layout 4 rebuilds it.
        views.insert(VIEWS_FORMAT_KEY, &4u64.to_be_bytes()).unwrap();
        let donor_entry = key(&[b"donor", "ab".repeat(32).as_bytes(), &7u64.to_be_bytes()]);
        views.insert(&donor_entry, b"xihu".to_vec()).unwrap();
        upgrade_format(&db, &views).unwrap();
        assert_eq!(read_u64(&views, VIEWS_FORMAT_KEY).unwrap(), VIEWS_FORMAT);
        assert_eq!(read_u64(&views, &position_key(Projection::Ledger)).unwrap(), 9);
        assert!(views.contains_key(&donor_entry).unwrap());
    }

    #[test]
    fn projection_names_parse_and_unknown_ones_are_refused() {
        for p in Projection::ALL {
            assert_eq!(p.as_str().parse::<Projection>().unwrap(), p);
        }
        let unknown = "funds".parse::<Projection>().unwrap_err();
        assert!(unknown.to_string().contains("unknown projection \"funds\""), "{unknown}");
    }
}
