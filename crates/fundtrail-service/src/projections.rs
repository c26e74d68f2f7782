//! The projection runner: follows the log, folds every message, and keeps the
//! read views and the public ledger in sled.
//!
//! Exactly once: each projection has its own position; a chunk of messages
//! is applied with one sled batch holding every projection's writes *and*
//! their new positions, and the batch is flushed before the positions count
//! as applied (before [`ReadModel::wait_applied`] sees them). A crash before
//! the flush loses the whole chunk and it is applied again; after the flush,
//! never again. A projection that is dropped (`fundtrail rebuild`) starts
//! again from position 0 while the others skip what they already have.
//!
//! The ledger projection turns stream message `seq` into ledger entry
//! `seq − 1`, appends its leaf hash to the RFC 6962 tree incrementally
//! (about two stored hashes per entry, never recomputing the tree), and signs
//! a checkpoint every [`LedgerConfig::checkpoint_entries`] entries or
//! [`LedgerConfig::checkpoint_interval`], whichever comes first — only after
//! proving the new tree consistent with the last checkpoint it signed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundtrail_domain::{EventBody, EventId, FundId, KeyId, ProposalId, State};
use fundtrail_envelope::{Fold, Folded};
use fundtrail_ledger::{
    append_leaf, encode_entry, leaf_hash, prove_consistency, tree_hash, verify_consistency, Checkpoint, Hash,
    HashReader, LogSigner,
};
use fundtrail_store::{CheckpointLog, EventLog, LogError, StoredMessage};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::ledger_store::{self, LedgerAppend, LedgerStoreError, StoredHashes};
use crate::views;

/// Every projection, by name.
pub const PROJECTIONS: [&str; 8] =
    ["keys", "funds", "proposals", "donations", "donors", "disclosures", "events", "ledger"];
/// Most messages applied in one sled batch.
pub const CHUNK_MESSAGES_MAX: usize = 2_000;
/// Wait before following the log again after an error.
pub const FOLLOW_RETRY_DELAY: Duration = Duration::from_millis(500);

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
    #[error("unknown projection {0:?}; known: {PROJECTIONS:?}")]
    Unknown(String),
}

/// How the ledger is signed.
pub struct LedgerConfig {
    pub signer: LogSigner,
    /// Sign a checkpoint after this many new entries...
    pub checkpoint_entries: u64,
    /// ... or once this long has passed with any new entry.
    pub checkpoint_interval: Duration,
    /// Most messages the runner applies in one sled batch.
    pub chunk_messages_max: usize,
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

fn position_key(name: &str) -> Vec<u8> {
    key(&[b"pos", name.as_bytes()])
}

const LEDGER_PREV: &[u8] = b"meta\0ledger_prev";
const VIEWS_FORMAT_KEY: &[u8] = b"meta\0views_format";
/// The layout of the views tree. 2: the ledger stored by runs and groups
/// ([`crate::ledger_store`]). Views of another layout are dropped at start
/// and rebuilt from the log; signed checkpoints are kept.
pub const VIEWS_FORMAT: u64 = 2;
const CHECKPOINT_LATEST: &[u8] = b"cp\0latest";

/// The key prefixes each projection owns (what `rebuild` drops).
fn prefixes(name: &str) -> Vec<Vec<u8>> {
    let p = |s: &str| key(&[s.as_bytes(), b""]);
    match name {
        "keys" => vec![p("key")],
        "funds" => vec![p("fund")],
        "proposals" => vec![p("proposal")],
        "donations" => vec![p("donation")],
        "donors" => vec![p("donor")],
        "disclosures" => vec![p("disclosure")],
        "events" => vec![p("event"), p("rejected")],
        "ledger" => vec![p("h"), p("e"), LEDGER_PREV.to_vec()],
        _ => vec![],
    }
}

/// Drops projections so that the next start rebuilds them from the log.
/// Signed checkpoints are kept: the rebuilt ledger must be consistent with them.
pub fn rebuild(db: &sled::Db, names: &[String]) -> Result<(), ProjectionError> {
    // Every name is checked before anything is dropped.
    if let Some(unknown) = names.iter().find(|n| !PROJECTIONS.contains(&n.as_str())) {
        return Err(ProjectionError::Unknown(unknown.clone()));
    }
    let views = db.open_tree("views")?;
    for name in names {
        for prefix in prefixes(name) {
            for item in views.scan_prefix(&prefix).keys() {
                views.remove(item?)?;
            }
        }
        views.insert(position_key(name), &0u64.to_be_bytes())?;
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
    if !views.is_empty() {
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
    keys: BTreeSet<KeyId>,
    funds: BTreeSet<FundId>,
    proposals: BTreeSet<(FundId, ProposalId)>,
    /// (fund, donation id, sequence of the donation)
    donations: BTreeSet<(FundId, EventId, u64)>,
    goods_donations: Vec<(fundtrail_domain::Event, u64)>,
    disclosures: BTreeSet<FundId>,
}

struct Positions(HashMap<&'static str, u64>);

impl Positions {
    fn behind(&self, name: &str, seq: u64) -> bool {
        self.0[name] < seq
    }
}

// ---------------------------------------------------------------------------
// the runner

pub struct Runner {
    log: Arc<dyn EventLog>,
    verified: Arc<crate::verified::VerifiedSet>,
    checkpoints: Option<Arc<dyn CheckpointLog>>,
    db: sled::Db,
    views: sled::Tree,
    fold: Fold,
    positions: Positions,
    ledger_size: u64,
    ledger_prev: Hash,
    ledger: LedgerConfig,
    last_signed: Option<Checkpoint>,
    last_signed_at: Instant,
    published_size: u64,
    applied_tx: watch::Sender<u64>,
    state_tx: watch::Sender<Arc<State>>,
    checkpoint_tx: watch::Sender<Option<Arc<Vec<u8>>>>,
}

/// What readers hold: the views, the applied position, the fold's state.
#[derive(Clone)]
pub struct ReadModel {
    pub views: sled::Tree,
    applied: watch::Receiver<u64>,
    state: watch::Receiver<Arc<State>>,
    checkpoint: watch::Receiver<Option<Arc<Vec<u8>>>>,
    /// The log's verifier key (C2SP vkey).
    pub vkey: String,
    pub origin: String,
}

impl Runner {
    /// Opens the projections in `db` and starts following `log`.
    pub async fn start(
        log: Arc<dyn EventLog>,
        checkpoints: Option<Arc<dyn CheckpointLog>>,
        db: sled::Db,
        ledger: LedgerConfig,
        verified: Arc<crate::verified::VerifiedSet>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ReadModel, ProjectionError> {
        let views = db.open_tree("views")?;
        upgrade_format(&db, &views)?;
        let mut positions = HashMap::new();
        for name in PROJECTIONS {
            positions.insert(name, read_u64(&views, &position_key(name))?);
        }
        let ledger_size = positions["ledger"];
        let ledger_prev = match views.get(LEDGER_PREV)? {
            Some(v) if ledger_size > 0 => {
                Hash(v.as_ref().try_into().map_err(|_| ProjectionError::Ledger("bad prev".into()))?)
            }
            _ => Hash([0; 32]),
        };
        let verifier = ledger.signer.verifier();
        let last_signed = match views.get(CHECKPOINT_LATEST)? {
            Some(note) => Some(verifier.verify_checkpoint(&note).map_err(|e| ProjectionError::Ledger(e.to_string()))?),
            None => None,
        };
        let vkey = ledger.signer.vkey();
        let origin = ledger.signer.name().to_owned();
        let latest_note = views.get(CHECKPOINT_LATEST)?.map(|n| Arc::new(n.to_vec()));
        let (applied_tx, applied) = watch::channel(0);
        let (state_tx, state) = watch::channel(Arc::new(State::default()));
        let (checkpoint_tx, checkpoint) = watch::channel(latest_note);
        let published_size = last_signed.as_ref().map_or(0, |c| c.size);
        let mut runner = Runner {
            log,
            verified,
            checkpoints,
            db,
            views: views.clone(),
            fold: Fold::new(),
            positions: Positions(positions),
            ledger_size,
            ledger_prev,
            ledger,
            last_signed,
            last_signed_at: Instant::now(),
            published_size,
            applied_tx,
            state_tx,
            checkpoint_tx,
        };
        runner.check_last_checkpoint()?;
        tokio::spawn(async move {
            if let Err(e) = runner.run(&mut shutdown).await {
                tracing::error!(error = %e, "projection runner stopped");
            }
        });
        Ok(ReadModel { views, applied, state, checkpoint, vkey, origin })
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

    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), ProjectionError> {
        let mut tick = tokio::time::interval(self.ledger.checkpoint_interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'follow: loop {
            let mut stream = match self.log.follow(self.fold.position() + 1).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow the log; retrying");
                    tokio::time::sleep(FOLLOW_RETRY_DELAY).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    next = stream.next() => {
                        let first = match next {
                            Some(Ok(m)) => m,
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "following the log failed; following again");
                                tokio::time::sleep(FOLLOW_RETRY_DELAY).await;
                                continue 'follow;
                            }
                            None => continue 'follow,
                        };
                        let mut chunk = vec![first];
                        while chunk.len() < self.ledger.chunk_messages_max.clamp(1, CHUNK_MESSAGES_MAX) {
                            match stream.next().now_or_never() {
                                Some(Some(Ok(m))) => chunk.push(m),
                                _ => break,
                            }
                        }
                        if let Err(e) = self.process(chunk).await {
                            tracing::error!(error = %e, "projection chunk failed; following again");
                            tokio::time::sleep(FOLLOW_RETRY_DELAY).await;
                            continue 'follow;
                        }
                        self.maybe_checkpoint().await;
                    }
                    _ = tick.tick() => self.maybe_checkpoint().await,
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    }

    async fn process(&mut self, chunk: Vec<StoredMessage>) -> Result<(), ProjectionError> {
        let before = (self.fold.clone(), self.ledger_size, self.ledger_prev);
        let start = self.fold.position();
        let mut batch = sled::Batch::default();
        let mut dirty = Dirty::default();
        let mut ledger = LedgerAppend::default();
        let applied = self
            .apply_chunk(&chunk, &mut batch, &mut dirty, &mut ledger)
            .and_then(|()| ledger.write(&self.views, &mut batch).map_err(ProjectionError::from));
        if let Err(e) = applied {
            (self.fold, self.ledger_size, self.ledger_prev) = before;
            return Err(e);
        }
        let last = self.fold.position();
        if last == start {
            return Ok(());
        }
        self.render(&dirty, &mut batch);
        for name in PROJECTIONS {
            let p = self.positions.0.get_mut(name).expect("known projection");
            if *p < last {
                *p = last;
                batch.insert(position_key(name), &last.to_be_bytes());
            }
        }
        batch.insert(LEDGER_PREV, &self.ledger_prev.0);
        let written = async {
            self.views.apply_batch(batch)?;
            self.db.flush_async().await?;
            Ok::<(), sled::Error>(())
        };
        if let Err(e) = written.await {
            (self.fold, self.ledger_size, self.ledger_prev) = before;
            for name in PROJECTIONS {
                let stored = read_u64(&self.views, &position_key(name)).unwrap_or(start);
                self.positions.0.insert(name, stored);
            }
            return Err(e.into());
        }
        assert!(self.ledger_size >= last, "one ledger entry per stream message");
        self.applied_tx.send_replace(last);
        self.state_tx.send_replace(Arc::new(self.fold.state.clone()));
        Ok(())
    }

    fn apply_chunk(
        &mut self,
        chunk: &[StoredMessage],
        batch: &mut sled::Batch,
        dirty: &mut Dirty,
        ledger: &mut LedgerAppend,
    ) -> Result<(), ProjectionError> {
        for message in chunk {
            if message.seq <= self.fold.position() {
                continue; // delivered again after following anew
            }
            if message.seq != self.fold.position() + 1 {
                return Err(ProjectionError::Ledger(format!(
                    "gap in the log: expected sequence {}, got {}",
                    self.fold.position() + 1,
                    message.seq
                )));
            }
            let seq = message.seq;
            if self.positions.behind("ledger", seq) {
                self.append_entry(seq, &message.payload, ledger)?;
            }
            let digest = crate::verified::digest(&message.payload);
            let applied = match self.verified.take(&digest) {
                Some(opened) => self.fold.apply_opened(seq, Some(&message.subject), opened),
                None if self.verified.contains(&digest) => {
                    self.fold.apply_reverified(seq, Some(&message.subject), &message.payload)
                }
                None => self.fold.apply(seq, Some(&message.subject), &message.payload),
            };
            match applied {
                Ok(folded) => self.mark(&folded, seq, dirty, batch),
                Err(e) => {
                    tracing::error!(error = %e, "message rejected by the fold");
                    if self.positions.behind("events", seq) {
                        batch.insert(key(&[b"rejected", &seq.to_be_bytes()]), e.to_string().into_bytes());
                    }
                }
            }
        }
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

    fn mark(&self, folded: &Folded, seq: u64, dirty: &mut Dirty, batch: &mut sled::Batch) {
        use EventBody as B;
        let event = &folded.event.event;
        let p = &self.positions;
        if p.behind("events", seq) && folded.applied == fundtrail_domain::Applied::Applied {
            batch.insert(key(&[b"event", event.id.as_str().as_bytes()]), &seq.to_be_bytes());
        }
        if p.behind("keys", seq) {
            match &event.body {
                B::HostEstablished(b) => drop(dirty.keys.insert(b.host_key.clone())),
                B::KeyEnrolled(b) => drop(dirty.keys.insert(b.key.clone())),
                B::RoleGranted(b) => drop(dirty.keys.insert(b.key.clone())),
                B::RoleRevoked(b) => drop(dirty.keys.insert(b.key.clone())),
                B::KeyRotated(b) => {
                    dirty.keys.insert(b.old_key.clone());
                    dirty.keys.insert(b.new_key.clone());
                }
                _ => {}
            }
        }
        if event.fund.is_host() {
            if let B::KeyEnrolled(_) = &event.body {
                // Labels appear in committee and vote views: refresh every fund.
                if p.behind("funds", seq) {
                    dirty.funds.extend(self.fold.state.funds.keys().cloned());
                }
            }
            return;
        }
        let fund = event.fund.clone();
        if p.behind("funds", seq) {
            dirty.funds.insert(fund.clone());
        }
        if p.behind("disclosures", seq) {
            dirty.disclosures.insert(fund.clone());
        }
        let proposal = match &event.body {
            B::ProposalSubmitted(b) => Some(&b.proposal),
            B::OpinionRecorded(b) => Some(&b.proposal),
            B::VoteCast(b) => Some(&b.proposal),
            B::ProposalEndorsed(b) => Some(&b.proposal),
            B::ProposalRejected(b) => Some(&b.proposal),
            B::ApplicationSubmitted(b) => Some(&b.proposal),
            B::ProposalApproved(b) => Some(&b.proposal),
            B::ProposalDeclined(b) => Some(&b.proposal),
            B::PayoutMade(b) => Some(&b.proposal),
            B::ProposalClosed(b) => Some(&b.proposal),
            B::GoodsDistributed(b) => b.proposal.as_ref(),
            _ => None,
        };
        if let (Some(pid), true) = (proposal, p.behind("proposals", seq)) {
            dirty.proposals.insert((fund.clone(), pid.clone()));
        }
        if matches!(event.body, B::CommitteeSeated(_) | B::KeyRotated(_)) && p.behind("proposals", seq) {
            // Tallies count only the seated committee: every proposal may change.
            if let Some(f) = self.fold.state.funds.get(&fund) {
                dirty.proposals.extend(f.proposals.keys().map(|id| (fund.clone(), id.clone())));
            }
        }
        let donation = match &event.body {
            B::DonationReceived(_) => Some((event.id.clone(), seq)),
            B::DonationReversed(b) => self.fold.id_record(&b.donation).map(|r| (b.donation.clone(), r.seq)),
            B::ReceiptIssued(b) => self.fold.id_record(&b.donation).map(|r| (b.donation.clone(), r.seq)),
            B::ReceiptVoided(b) => self.fold.id_record(&b.donation).map(|r| (b.donation.clone(), r.seq)),
            _ => None,
        };
        if let Some((id, dseq)) = donation {
            if p.behind("donations", seq) || p.behind("donors", seq) {
                dirty.donations.insert((fund.clone(), id, dseq));
            }
        }
        if let B::GoodsReceived(_) = &event.body {
            if p.behind("donations", seq) || p.behind("donors", seq) {
                dirty.goods_donations.push((event.clone(), seq));
            }
        }
    }

    fn render(&self, dirty: &Dirty, batch: &mut sled::Batch) {
        let state = &self.fold.state;
        let json = |v: &dyn erased::Json| v.to_json();
        for k in &dirty.keys {
            if let Some(v) = views::key_view(state, k) {
                batch.insert(key(&[b"key", k.as_str().as_bytes()]), json(&v));
            }
        }
        for f in &dirty.funds {
            if let Some(v) = views::fund_view(state, f) {
                batch.insert(key(&[b"fund", f.as_str().as_bytes()]), json(&v));
            }
        }
        for (f, p) in &dirty.proposals {
            if let Some(v) = views::proposal_view(state, f, p) {
                batch.insert(key(&[b"proposal", f.as_str().as_bytes(), p.as_str().as_bytes()]), json(&v));
            }
        }
        for f in &dirty.disclosures {
            if let Some(v) = views::disclosure_totals_view(state, f) {
                batch.insert(key(&[b"disclosure", f.as_str().as_bytes()]), json(&v));
            }
        }
        let cash = dirty.donations.iter().filter_map(|(f, id, seq)| views::donation_view(state, f, id, *seq, None));
        let goods = dirty
            .goods_donations
            .iter()
            .filter_map(|(e, seq)| views::donation_view(state, &e.fund, &e.id, *seq, Some(e)));
        for v in cash.chain(goods) {
            let bytes = json(&v);
            let seq = v.seq.to_be_bytes();
            batch.insert(key(&[b"donation", v.fund.as_str().as_bytes(), &seq]), bytes.clone());
            batch.insert(key(&[b"donor", v.donor.as_str().as_bytes(), &seq]), bytes);
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
                let note = self.checkpoint_tx.borrow().clone();
                if let Some(note) = note {
                    match log.publish_checkpoint(note.to_vec()).await {
                        Ok(_) => self.published_size = cp.size,
                        Err(e) => tracing::warn!(error = %e, "checkpoint not published yet; will retry"),
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
        self.checkpoint_tx.send_replace(Some(Arc::new(note)));
        Ok(())
    }
}

mod erased {
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("views serialise")
        }
    }
}

// ---------------------------------------------------------------------------
// reading

impl ReadModel {
    /// The last sequence every projection has applied (and flushed).
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the projections applied `seq` (read-your-writes).
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.clone();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= seq)).await.is_ok_and(|r| r.is_ok())
    }

    /// The fold's state after the last applied chunk (an O(1) snapshot).
    pub fn state(&self) -> Arc<State> {
        self.state.borrow().clone()
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&self) -> Option<Arc<Vec<u8>>> {
        self.checkpoint.borrow().clone()
    }

    /// Waits until a signed checkpoint covers `size` entries.
    pub async fn wait_checkpoint(&self, size: u64, timeout: Duration) -> Option<Arc<Vec<u8>>> {
        let mut rx = self.checkpoint.clone();
        let origin = self.origin.clone();
        let covers = move |note: &Option<Arc<Vec<u8>>>| {
            note.as_ref().is_some_and(|n| checkpoint_size(n, &origin).is_some_and(|s| s >= size))
        };
        let result = tokio::time::timeout(timeout, rx.wait_for(covers)).await;
        match result {
            Ok(Ok(note)) => note.clone(),
            _ => None,
        }
    }

    pub fn get_json<T: serde::de::DeserializeOwned>(&self, parts: &[&[u8]]) -> Option<T> {
        let value = self.views.get(key(parts)).ok()??;
        serde_json::from_slice(&value).ok()
    }

    pub fn list_json<T: serde::de::DeserializeOwned>(
        &self,
        parts: &[&[u8]],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<T> {
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
        self.get_json(&[b"fund", fund.as_str().as_bytes()])
    }

    pub fn funds(&self) -> Vec<views::FundView> {
        self.list_json(&[b"fund"], None, 10_000)
    }

    pub fn proposals(&self, fund: &FundId) -> Vec<views::ProposalView> {
        self.list_json(&[b"proposal", fund.as_str().as_bytes()], None, 10_000)
    }

    pub fn proposal(&self, fund: &FundId, id: &ProposalId) -> Option<views::ProposalView> {
        self.get_json(&[b"proposal", fund.as_str().as_bytes(), id.as_str().as_bytes()])
    }

    pub fn disclosure(&self, fund: &FundId) -> Option<views::DisclosureTotalsView> {
        self.get_json(&[b"disclosure", fund.as_str().as_bytes()])
    }

    pub fn key_view(&self, id: &KeyId) -> Option<views::KeyView> {
        self.get_json(&[b"key", id.as_str().as_bytes()])
    }

    pub fn keys(&self) -> Vec<views::KeyView> {
        self.list_json(&[b"key"], None, 10_000)
    }

    /// Donations of a fund in ledger order, after sequence `after_seq`.
    pub fn donations(&self, fund: &FundId, after_seq: u64, limit: usize) -> Vec<views::DonationView> {
        let after = after_seq.to_be_bytes();
        self.list_json(&[b"donation", fund.as_str().as_bytes()], (after_seq > 0).then_some(&after[..]), limit)
    }

    /// Private: every donation made under a donor commitment.
    pub fn donor(&self, commitment: &str) -> Vec<views::DonationView> {
        self.list_json(&[b"donor", commitment.as_bytes()], None, 10_000)
    }

    /// The sequence an event id was applied at.
    pub fn event_seq(&self, id: &EventId) -> Option<u64> {
        let v = self.views.get(key(&[b"event", id.as_str().as_bytes()])).ok()??;
        Some(u64::from_be_bytes(v.as_ref().try_into().ok()?))
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

    #[test]
    fn views_of_an_older_layout_are_dropped_but_checkpoints_kept() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = db.open_tree("views").unwrap();
        // Format 1 kept one key per stored hash and per entry, and positions.
        views.insert(key(&[b"h", &7u64.to_be_bytes()]), &[0u8; 32]).unwrap();
        views.insert(position_key("ledger"), &9u64.to_be_bytes()).unwrap();
        views.insert(CHECKPOINT_LATEST, b"note".to_vec()).unwrap();
        upgrade_format(&db, &views).unwrap();
        let keys: Vec<Vec<u8>> = views.iter().keys().map(|k| k.unwrap().to_vec()).collect();
        assert_eq!(keys, vec![CHECKPOINT_LATEST.to_vec(), VIEWS_FORMAT_KEY.to_vec()]);
        assert_eq!(read_u64(&views, &position_key("ledger")).unwrap(), 0, "the ledger is rebuilt from 0");

        // The current layout is left alone.
        views.insert(position_key("ledger"), &9u64.to_be_bytes()).unwrap();
        upgrade_format(&db, &views).unwrap();
        assert_eq!(read_u64(&views, &position_key("ledger")).unwrap(), 9);
    }
}
