//! The sequencer: the one fold of a service process.
//!
//! It owns the only [`Fold`]. It follows the log, decides queued commands
//! between messages, and after an append lands hands every applied message —
//! `(sequence, event, fold)` in order — to the projections, which are sinks
//! (views, ledger, live feed) and never evolve anything themselves. So each
//! event this process accepts is parsed once (by its submitter, which also
//! verifies the signature on its own task), hashed once (its payload, for the
//! id record), and run through the rules once (`decide`, then `evolve` as the
//! fold applies it); and the log is replayed once at start, from the
//! snapshot's position on.
//!
//! decide against the fold at the log's end → append with the expected last
//! sequence of the history that decides the invariant → the append landed
//! exactly where the fold expected: hand the batch over and answer; it landed
//! elsewhere, or lost a race: put the fold back, read the log's end and decide
//! again (bounded, then [`SubmitError::Busy`]). An unknown outcome is resent
//! by the log with the same `Nats-Msg-Id`.
//!
//! Commands queue to the sequencer, which takes whatever is queued (up to
//! [`BATCH_COMMANDS_MAX`]) and decides it as one batch, applying each
//! accepted event to the fold before deciding the next, then appends the
//! batch atomically: group commit. Any number of processes may write to one
//! log; the expectations make every lost race visible.
//!
//! Before deciding, the sequencer reads whatever the log holds beyond its
//! fold, except right after its own append landed exactly where it expected:
//! then the next batch is decided at once, what another replica appended since
//! is caught by the expectations, and no refusal is answered before the
//! sequencer has read the log's end and decided again.
//!
//! Which history decides an event: an event a fund role authors in fund F is
//! decided by F's history alone (its roles, committee, money) plus key
//! enrolments, which only ever add; it expects the last sequence of
//! `fundtrail.*.F.>` (every version of the subject contract: a stream written
//! by an older release holds v1 subjects, this one appends v2). Everything else — host-scope events and whatever a
//! host-wide role authors, such as opening a fund or granting a role — may
//! depend on any history, and expects the last sequence of the whole stream.
//!
//! Those per-fund expectations are only needed while another writer is
//! active (so that writers on different funds do not make each other lose
//! races). A sequencer that has seen no other writer for
//! [`CONTENDED_BATCHES`] batches appends its batch as a chain instead
//! ([`EventLog::append_chain`]): the first message expects the whole stream's
//! last sequence to be the fold's position, each later one that the message
//! before it is the stream's last. It is stronger (nothing at all lands
//! between the fold's position and the batch), the server checks it in O(1)
//! where a fund's wildcard walks every subject of the fund, and JetStream
//! stores a chain without staging it. A chain lands whole or as a prefix: the
//! commands of the prefix are answered, the rest decided again on the log as
//! it is (read back with the prefix applied as opened).
//!
//! While the sequencer writes back to back as the only writer (its last
//! [`FOLLOW_PAUSE_BATCHES`] chains each landed exactly where the fold expected,
//! each within [`FOLLOW_RESUME_IDLE`] of the one before), it stops following the
//! log: the follow stream would only bring its own messages back, every one
//! delivered by the server and skipped here (`docs/performance.md`, fifteenth
//! session). Nothing can land unseen meanwhile: the next
//! chain expects the whole stream to end at the fold's position, so another
//! writer's message makes it fail and the log is read. Once no command has come
//! for [`FOLLOW_RESUME_IDLE`], it follows the log again from the fold's position.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use fundtrail_domain::admission::{Admission, AdmissionPolicy, IdRecord};
use fundtrail_domain::{decide, subject, EventId, FundId, KeyId, Refusal, Role};
use fundtrail_envelope::{EnvelopeError, Fold, FoldError, Folded, VerifiedEvent};
use fundtrail_store::{AppendError, AppendRequest, Appended, EventLog, Expectation, LogError, StoredMessage};
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;

/// Most commands decided and appended as one batch (the log's batch cap).
pub const BATCH_COMMANDS_MAX: usize = fundtrail_store::BATCH_MESSAGES_MAX;
/// How many times a batch is decided again after losing a race.
pub const DECIDE_ATTEMPTS_MAX: u32 = 16;
/// Commands waiting for the sequencer before submitters are told to back off.
pub const QUEUE_COMMANDS_MAX: usize = 8_192;
/// Most messages handed to the projections at once while catching up (fewer when
/// the projections write smaller chunks: see [`Writer::start`]).
pub const CATCH_UP_READ_MAX: usize = 1_000;
/// How long a catch-up waits for the next message the log says it holds.
pub const CATCH_UP_WAIT_MAX: Duration = Duration::from_secs(10);
/// Hand-overs waiting for the projections before the sequencer waits for them.
pub const HANDOFF_QUEUE_MAX: usize = 64;
/// Pause before a catch-up follows the log again after a failed start.
pub const CATCH_UP_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Wait before following the log again after an error.
pub const FOLLOW_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Chains landed back to back exactly where the fold expected after which the
/// sequencer stops following the log while it writes (see the module docs).
pub const FOLLOW_PAUSE_BATCHES: u32 = 8;
/// Two chains this close land back to back; with the follow stream paused, no
/// command for this long and the log is followed again.
pub const FOLLOW_RESUME_IDLE: Duration = Duration::from_millis(100);

/// After another writer is seen (a lost race, a message of theirs read),
/// this many batches expect per-fund histories, so that writers on other
/// funds do not make each other lose races; then the sequencer goes back to
/// one expectation on the whole stream, which the server checks in O(1).
pub const CONTENDED_BATCHES: u32 = 32;

/// The subject filter of the whole stream.
pub use fundtrail_domain::subject::ALL_EVENTS;

/// What the sequencer admits (pinned host key, clock window): the domain's
/// admission rules, [`fundtrail_domain::admit`], with this policy.
pub type WriterConfig = AdmissionPolicy;

/// An accepted command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub id: EventId,
    pub type_name: &'static str,
    pub fund: FundId,
    /// Stream sequence; the ledger index is `seq − 1`.
    pub seq: u64,
    /// The same event was accepted before: this is its original sequence.
    pub duplicate: bool,
}

/// Why a command was not accepted. Nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A rule refused it: an admission rule (id reused, clock window, pinned
    /// host key) or a fund rule.
    #[error("{0}")]
    Refused(Refusal),
    /// Other writers (replicas) appended to the history that decides the
    /// command every time it was decided: nothing was written. Not an outage.
    #[error(
        "the history deciding this command changed {attempts} times while it was decided (other replicas \
         writing to it); nothing was written; send it again"
    )]
    Busy { attempts: u32 },
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    #[error("too many commands queued; retry shortly")]
    Overloaded,
    #[error("the service is shutting down")]
    ShuttingDown,
}

/// One message the fold passed over, in stream order.
pub enum Step {
    /// Applied (or, for an id seen before, passed with no effect).
    Applied { seq: u64, folded: Folded },
    /// Refused by the fold: only a writer that bypassed FundTrail can put such
    /// a message in the stream. Every reader skips it the same way; the ledger
    /// still holds its bytes.
    Rejected { seq: u64, envelope: Vec<u8>, error: FoldError },
}

impl Step {
    pub fn seq(&self) -> u64 {
        match self {
            Step::Applied { seq, .. } | Step::Rejected { seq, .. } => *seq,
        }
    }

    /// The message's bytes, exactly as stored.
    pub fn envelope(&self) -> &[u8] {
        match self {
            Step::Applied { folded, .. } => &folded.event.envelope,
            Step::Rejected { envelope, .. } => envelope,
        }
    }
}

/// What the sequencer hands the projections: consecutive steps and the fold
/// right after the last of them (an O(1) snapshot).
pub struct Handoff {
    pub steps: Vec<Step>,
    pub fold: Fold,
}

struct Command {
    envelope: Vec<u8>,
    /// Opened (signature verified) by the submitter, when it knew the key.
    opened: Option<VerifiedEvent>,
    reply: oneshot::Sender<Result<Accepted, SubmitError>>,
}

/// Public keys the sequencer has seen enrolled. A key id is the hash of its
/// public key, so an entry never changes: submitters verify signatures with
/// it on their own tasks, in parallel, before the sequencer decides.
pub type KeyDirectory = Arc<std::sync::RwLock<HashMap<KeyId, VerifyingKey>>>;

/// A handle to the sequencer task: where commands go in.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
    counters: Arc<WriterCounters>,
    keys: KeyDirectory,
}

impl Writer {
    /// Starts the sequencer over `log` with `fold` (empty, or read from a
    /// snapshot), handing what it applies to `projections`. What it reads from
    /// the log (a replay, a catch-up, another writer's messages) goes over in
    /// hand-overs of at most `chunk_messages_max` messages (and
    /// [`CATCH_UP_READ_MAX`]): the projections' chunk, which they never split.
    pub fn start(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        config: WriterConfig,
        fold: Fold,
        chunk_messages_max: usize,
        projections: mpsc::Sender<Handoff>,
        shutdown: watch::Receiver<bool>,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE_COMMANDS_MAX);
        let known: HashMap<KeyId, VerifyingKey> =
            fold.state.keys.keys().filter_map(|id| fold.key(id).map(|k| (id.clone(), k))).collect();
        let keys: KeyDirectory = Arc::new(std::sync::RwLock::new(known));
        let counters = Arc::new(WriterCounters::default());
        let task = Sequencer {
            log,
            clock,
            config,
            fold,
            fund_last: HashMap::new(),
            at_log_end: false,
            contended_batches: 0,
            read_handoff_max: chunk_messages_max.clamp(1, CATCH_UP_READ_MAX),
            counters: counters.clone(),
            keys: keys.clone(),
            projections,
            follow: None,
            follow_paused: false,
            landed_in_a_row: 0,
            last_landed: None,
        };
        tokio::spawn(task.run(rx, shutdown));
        Writer { tx, counters, keys }
    }

    /// Races this process's sequencer lost to other writers since it started.
    pub fn races(&self) -> Races {
        use std::sync::atomic::Ordering::Relaxed;
        Races { lost: self.counters.lost.load(Relaxed), chains_broken: self.counters.chains_broken.load(Relaxed) }
    }

    /// How many times this process's sequencer stopped following the log while
    /// it wrote back to back as the only writer (see the module docs).
    pub fn follow_pauses(&self) -> u64 {
        self.counters.follow_pauses.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Submits a signed envelope; answers once it is in the log (or refused).
    pub async fn submit(&self, envelope: Vec<u8>) -> Result<Accepted, SubmitError> {
        // Verify here, on the submitter's task, when the key is known: the
        // sequencer then only decides. Unknown keys go to the sequencer,
        // whose state is newer (or genesis, which names its own key).
        let opened = {
            let keys = self.keys.read().expect("key directory lock");
            fundtrail_envelope::open(&envelope, |id| keys.get(id).copied())
        };
        let opened = match opened {
            Ok(v) => Some(v),
            Err(EnvelopeError::UnknownKey(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(Command { envelope, opened, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SubmitError::ShuttingDown,
        })?;
        answer.await.map_err(|_| SubmitError::ShuttingDown)?
    }
}

/// Races the sequencer lost to other writers (see [`Writer::races`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Races {
    /// Batches that landed nothing because the history they expected had moved on.
    pub lost: u64,
    /// Chains that landed a prefix and stopped at another writer's message.
    pub chains_broken: u64,
}

#[derive(Default)]
struct WriterCounters {
    lost: std::sync::atomic::AtomicU64,
    chains_broken: std::sync::atomic::AtomicU64,
    follow_pauses: std::sync::atomic::AtomicU64,
}

impl WriterCounters {
    fn count(&self, landed: usize) {
        let counter = if landed == 0 { &self.lost } else { &self.chains_broken };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

struct Sequencer {
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    config: WriterConfig,
    fold: Fold,
    /// Last sequence of each fund's subjects (`fundtrail.*.<fund>.>`) seen
    /// since this process started. A fund missing here expects its last
    /// sequence as the log reports it (see [`Sequencer::fund_last_seq`]).
    fund_last: HashMap<FundId, u64>,
    /// The last append landed exactly at the fold's position: the fold was
    /// at the log's end a moment ago, so the next batch may skip asking.
    at_log_end: bool,
    /// Batches still to decide with per-fund expectations since another
    /// writer was last seen (see [`CONTENDED_BATCHES`]).
    contended_batches: u32,
    /// Most messages read from the log handed over at once.
    read_handoff_max: usize,
    counters: Arc<WriterCounters>,
    keys: KeyDirectory,
    projections: mpsc::Sender<Handoff>,
    /// The log, followed from the fold's position (see [`Sequencer::start_following`]).
    follow: Option<futures::stream::BoxStream<'static, Result<StoredMessage, LogError>>>,
    /// Not following the log while writing back to back as the only writer.
    follow_paused: bool,
    /// Chains landed back to back exactly where the fold expected.
    landed_in_a_row: u32,
    /// When the last of them landed.
    last_landed: Option<tokio::time::Instant>,
}

/// What deciding one command gave, before the batch is appended.
enum Decided {
    Answer(Result<Accepted, SubmitError>),
    /// Accepted into this batch at provisional sequence `accepted.seq`; its append
    /// request and its step are the next of the batch's (in order).
    New {
        accepted: Accepted,
    },
    /// The same event as an earlier command of this batch.
    SameAs(usize),
    /// Other content under the id of an earlier command of this batch.
    IdReusedIn(usize),
}

/// The sequencer's state before a batch, to put back when the batch does not
/// land where it expected.
struct Before {
    fold: Fold,
    fund_last: HashMap<FundId, u64>,
}

impl Sequencer {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut shutdown: watch::Receiver<bool>) {
        // Replay the log once (from the snapshot's position on) before the
        // first command is decided.
        while let Err(e) = self.catch_up().await {
            tracing::warn!(error = %e, "cannot read the log to replay it; retrying");
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_RETRY_DELAY) => {}
                _ = shutdown.changed() => return,
            }
        }
        loop {
            if self.follow.is_none() && self.follow_paused {
                // Writing back to back as the only writer: a command is decided at
                // once; after a pause without one, the log is followed again.
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => return,
                    first = rx.recv() => {
                        let Some(first) = first else { return };
                        self.take_batch(first, &mut rx).await;
                        continue;
                    }
                    _ = tokio::time::sleep(FOLLOW_RESUME_IDLE) => {}
                }
            }
            if self.follow.is_none() {
                if let Err(e) = self.start_following().await {
                    tracing::warn!(error = %e, "cannot follow the log; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(FOLLOW_RETRY_DELAY) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            }
            let follow = self.follow.as_mut().expect("following");
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                next = follow.next() => {
                    let Some(first) = self.followed(next) else { continue };
                    let mut steps = Vec::new();
                    self.apply_followed(first, &mut HashMap::new(), &mut steps);
                    // Whatever else has arrived, in one hand-over.
                    while steps.len() < self.read_handoff_max {
                        let Some(follow) = self.follow.as_mut() else { break };
                        let Some(next) = follow.next().now_or_never() else { break };
                        let Some(message) = self.followed(next) else { break };
                        self.apply_followed(message, &mut HashMap::new(), &mut steps);
                    }
                    self.hand_over(steps).await;
                }
                first = rx.recv() => {
                    let Some(first) = first else { return };
                    self.take_batch(first, &mut rx).await;
                }
            }
        }
    }

    /// Takes whatever else is queued after `first` (up to [`BATCH_COMMANDS_MAX`]),
    /// decides and appends it as one batch, and answers every command.
    async fn take_batch(&mut self, first: Command, rx: &mut mpsc::Receiver<Command>) {
        let mut batch = vec![first];
        while batch.len() < BATCH_COMMANDS_MAX {
            match rx.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let answers = self.process(&mut batch).await;
        assert_eq!(answers.len(), batch.len(), "one answer per command still waiting");
        for (command, answer) in batch.into_iter().zip(answers) {
            let _ = command.reply.send(answer);
        }
    }

    /// Follows the log from the fold's position on: the one consumer this
    /// process reads the log with, for its replay, its catch-ups and what
    /// other writers append.
    async fn start_following(&mut self) -> Result<(), LogError> {
        self.follow = Some(self.log.follow(self.fold.position() + 1).await?);
        self.follow_paused = false;
        Ok(())
    }

    /// A chain landed exactly where the fold expected: after
    /// [`FOLLOW_PAUSE_BATCHES`] of them back to back, stops following the log
    /// (the follow stream would bring only them back; see the module docs).
    fn landed_as_expected(&mut self, chain: bool) {
        let now = tokio::time::Instant::now();
        let back_to_back = self.last_landed.is_some_and(|t| now.duration_since(t) < FOLLOW_RESUME_IDLE);
        self.last_landed = Some(now);
        self.landed_in_a_row = match (chain, back_to_back) {
            (false, _) => 0,
            (true, true) => self.landed_in_a_row.saturating_add(1),
            (true, false) => 1,
        };
        if self.landed_in_a_row >= FOLLOW_PAUSE_BATCHES && self.follow.is_some() {
            // Whatever it delivered and was not read yet is ours: the chain
            // expected the stream to end where the fold was.
            self.follow = None;
            self.follow_paused = true;
            self.counters.follow_pauses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(
                position = self.fold.position(),
                "writing back to back as the only writer; not following the log"
            );
        }
    }

    /// A message from the follow stream; on its end or an error, stops
    /// following (it is started again from the fold's position).
    fn followed(&mut self, next: Option<Result<StoredMessage, LogError>>) -> Option<StoredMessage> {
        match next {
            Some(Ok(message)) => Some(message),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "following the log failed; following again");
                self.follow = None;
                None
            }
            None => {
                self.follow = None;
                None
            }
        }
    }

    /// Applies a followed message unless the fold has it already (our own
    /// appends arrive after the fold applied them). The stream is in order
    /// and never ahead of the fold's position + 1: it is only read while the
    /// fold holds nothing provisional, so what it delivered never gets put
    /// back (see [`Sequencer::put_back`]).
    fn apply_followed(
        &mut self,
        message: StoredMessage,
        ours: &mut HashMap<String, VerifiedEvent>,
        steps: &mut Vec<Step>,
    ) {
        if message.seq <= self.fold.position() {
            return;
        }
        // Someone else's message (or ours, read back after landing elsewhere).
        self.landed_in_a_row = 0;
        assert_eq!(message.seq, self.fold.position() + 1, "the log is followed in order, without gaps");
        steps.push(self.apply_stored(message, ours));
    }

    /// Hands applied steps, and the fold after them, to the projections.
    async fn hand_over(&mut self, steps: Vec<Step>) {
        if steps.is_empty() {
            return;
        }
        debug_assert_eq!(steps.last().map(Step::seq), Some(self.fold.position()));
        let handoff = Handoff { steps, fold: self.fold.clone() };
        if self.projections.send(handoff).await.is_err() {
            tracing::error!("the projections stopped; nothing more is projected");
        }
    }

    /// Decides and appends `batch`; answers the commands still in it when it returns,
    /// in order (a command answered on the way, its event landed as part of a chain
    /// that broke after it, is taken out and answered then).
    async fn process(&mut self, batch: &mut Vec<Command>) -> Vec<Result<Accepted, SubmitError>> {
        // Our own events of a batch that did not land where expected: when the
        // log is read again they are applied as opened, not verified again.
        let mut ours: HashMap<String, VerifiedEvent> = HashMap::new();
        for attempt in 0..DECIDE_ATTEMPTS_MAX {
            // Right after our own append landed where we expected, the batch is
            // decided without asking the log for its end: whatever another
            // replica appended since is caught by the expectations (a lost
            // race), and a refusal is only given after reading the log's end.
            let skipped_catch_up = attempt == 0 && std::mem::take(&mut self.at_log_end);
            if !skipped_catch_up {
                if let Err(e) = self.catch_up_with(&mut ours).await {
                    return batch.iter().map(|_| Err(SubmitError::Unavailable(e.to_string()))).collect();
                }
            }
            let stream_wide = self.contended_batches == 0;
            self.contended_batches = self.contended_batches.saturating_sub(1);
            let before = Before { fold: self.fold.clone(), fund_last: self.fund_last.clone() };
            let (decided, steps, requests) = self.decide_batch(batch, stream_wide, &before).await;
            let refused = |d: &Decided| matches!(d, Decided::Answer(Err(_)) | Decided::IdReusedIn(_));
            if skipped_catch_up && decided.iter().any(refused) {
                give_back(batch, &decided, 0, steps.into_iter().map(opened_event));
                self.put_back(before, false);
                continue;
            }
            if requests.is_empty() {
                return resolve(decided, &[]);
            }
            let appended = if stream_wide {
                self.log.append_chain(requests, before.fold.position()).await
            } else {
                self.log.append_batch(requests).await
            };
            match appended {
                Ok(appended) => {
                    let provisional: Vec<u64> = steps.iter().map(Step::seq).collect();
                    let actual: Vec<u64> = appended.iter().map(|a| a.seq).collect();
                    if actual == provisional && !appended.iter().any(|a| a.duplicate) {
                        self.at_log_end = true;
                        self.hand_over(steps).await;
                        self.landed_as_expected(stream_wide);
                    } else {
                        // Someone else's messages landed between our position and
                        // our batch (other funds), or the batch was a resend: put
                        // the fold back; the log is read as it really is next.
                        remember(&mut ours, steps);
                        self.put_back(before, true);
                        let last = actual.iter().copied().max().unwrap_or(0);
                        let mut caught = Vec::new();
                        if let Err(e) = self.follow_until(last, &mut ours, &mut caught).await {
                            tracing::debug!(error = %e, "catching up after the append; the follow stream will");
                        }
                        self.hand_over(caught).await;
                    }
                    let landed: Vec<(u64, bool)> = appended.iter().map(|a| (a.seq, a.duplicate)).collect();
                    return resolve(decided, &landed);
                }
                Err(AppendError::ChainBroken { landed, cause }) => {
                    // Another writer appended part way through the chain: the prefix
                    // that landed is answered now (and read back as ours), the rest is
                    // decided again on the log as it is.
                    tracing::debug!(landed = landed.len(), %cause, "lost a race part way through a chain; deciding the rest again");
                    self.counters.count(landed.len());
                    let answers = resolve_prefix(&decided, &landed);
                    let mut steps = steps.into_iter();
                    remember(&mut ours, steps.by_ref().take(landed.len()).collect());
                    give_back(batch, &decided, landed.len(), steps.map(opened_event));
                    self.put_back(before, true);
                    answer_final(batch, answers);
                    if batch.is_empty() {
                        return Vec::new();
                    }
                }
                Err(AppendError::Conflict { filter, expected, actual }) => {
                    tracing::debug!(%filter, expected, actual, "lost a race; deciding again");
                    self.counters.count(0);
                    give_back(batch, &decided, 0, steps.into_iter().map(opened_event));
                    self.put_back(before, true);
                }
                Err(AppendError::Contended { description }) => {
                    tracing::debug!(%description, "lost a race (the log did not say where); deciding again");
                    self.counters.count(0);
                    give_back(batch, &decided, 0, steps.into_iter().map(opened_event));
                    self.put_back(before, true);
                }
                Err(AppendError::PartialDuplicate { .. }) => {
                    // Some of the batch landed before: the log delivers those (as ours,
                    // not verified again); the commands keep a copy to decide again.
                    give_back(batch, &decided, 0, steps.iter().map(|step| opened_event_ref(step).clone()));
                    remember(&mut ours, steps);
                    self.put_back(before, true);
                }
                Err(e) => {
                    // An unknown outcome: the batch may have landed. The log is
                    // read as it is (by the follow stream, verifying in full)
                    // before anything is decided again.
                    self.put_back(before, false);
                    let message = e.to_string();
                    return batch.iter().map(|_| Err(SubmitError::Unavailable(message.clone()))).collect();
                }
            }
        }
        batch.iter().map(|_| Err(SubmitError::Busy { attempts: DECIDE_ATTEMPTS_MAX })).collect()
    }

    /// The log was not where the batch assumed (another writer, or a resend):
    /// puts the fold back to before the batch; with `contended`, expects
    /// per-fund histories for a while.
    fn put_back(&mut self, before: Before, contended: bool) {
        self.fold = before.fold;
        self.fund_last = before.fund_last;
        self.landed_in_a_row = 0;
        self.at_log_end = false;
        if contended {
            self.contended_batches = CONTENDED_BATCHES;
        }
    }

    async fn catch_up(&mut self) -> Result<(), LogError> {
        self.catch_up_with(&mut HashMap::new()).await
    }

    /// Applies whatever the log has beyond the fold's position, as the
    /// follow stream delivers it, handing it over in chunks.
    async fn catch_up_with(&mut self, ours: &mut HashMap<String, VerifiedEvent>) -> Result<(), LogError> {
        let last = self.log.last_seq().await?;
        let mut steps = Vec::new();
        let caught_up = self.follow_until(last, ours, &mut steps).await;
        self.hand_over(steps).await;
        caught_up
    }

    /// Follows the log until the fold reaches `last`. A failed read of the
    /// follow stream (a consumer lost, a connection blip) follows again from the
    /// fold's position; only when no message arrives for [`CATCH_UP_WAIT_MAX`],
    /// or the log is corrupt, is the error returned.
    async fn follow_until(
        &mut self,
        last: u64,
        ours: &mut HashMap<String, VerifiedEvent>,
        steps: &mut Vec<Step>,
    ) -> Result<(), LogError> {
        let mut deadline = tokio::time::Instant::now() + CATCH_UP_WAIT_MAX;
        let mut last_error: Option<LogError> = None;
        while self.fold.position() < last {
            let waited_out = |last_error: Option<LogError>, position: u64| {
                let cause = format!(
                    "the log's last sequence is {last}, but sequence {} did not arrive within {CATCH_UP_WAIT_MAX:?}{}",
                    position + 1,
                    last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                );
                LogError::Unavailable { cause }
            };
            if self.follow.is_none() {
                if let Err(e) = self.start_following().await {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(waited_out(Some(e), self.fold.position()));
                    }
                    last_error = Some(e);
                    tokio::time::sleep(CATCH_UP_RETRY_DELAY).await;
                    continue;
                }
            }
            let follow = self.follow.as_mut().expect("following");
            let Ok(next) = tokio::time::timeout_at(deadline, follow.next()).await else {
                self.follow = None;
                return Err(waited_out(last_error, self.fold.position()));
            };
            match next {
                Some(Ok(message)) => {
                    self.apply_followed(message, ours, steps);
                    deadline = tokio::time::Instant::now() + CATCH_UP_WAIT_MAX;
                    last_error = None;
                }
                Some(Err(e @ LogError::Corrupt(_))) => {
                    self.follow = None;
                    return Err(e);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "catching up: following the log again");
                    self.follow = None;
                    last_error = Some(e);
                }
                None => {
                    self.follow = None;
                    last_error = Some(LogError::Unavailable { cause: "the followed stream ended".into() });
                }
            }
            if steps.len() >= self.read_handoff_max {
                self.hand_over(std::mem::take(steps)).await;
            }
        }
        Ok(())
    }

    /// Applies one message read from the log: one of ours (its bytes equal an
    /// event we opened) without verifying again, anything else in full.
    fn apply_stored(&mut self, message: StoredMessage, ours: &mut HashMap<String, VerifiedEvent>) -> Step {
        let seq = message.seq;
        if let Ok(parts) = subject::parse(&message.subject) {
            self.fund_last.insert(parts.fund, seq);
        }
        let own = match ours.remove(&message.msg_id) {
            Some(opened) if opened.envelope == message.payload && opened.event.subject() == message.subject => {
                Some(opened)
            }
            _ => None,
        };
        let applied = match own {
            Some(opened) => self.fold.apply_verified(seq, opened),
            None => {
                self.contended_batches = CONTENDED_BATCHES; // another writer's message
                self.fold.apply(seq, Some(&message.subject), &message.payload)
            }
        };
        match applied {
            Ok(folded) => {
                self.learn_key(&folded.event.event);
                Step::Applied { seq, folded }
            }
            Err(error) => {
                tracing::error!(%error, "stream message rejected by the fold");
                Step::Rejected { seq, envelope: message.payload, error }
            }
        }
    }

    /// Decides a batch; with `stream_wide`, its one expectation is the whole
    /// stream's last sequence, on its first message. Returns the decisions, the
    /// steps the fold applied and their append requests (one each per new event,
    /// in order). Each command's opened event moves into its step: a batch decided
    /// again gets them back from [`give_back`].
    async fn decide_batch(
        &mut self,
        batch: &mut [Command],
        stream_wide: bool,
        before: &Before,
    ) -> (Vec<Decided>, Vec<Step>, Vec<AppendRequest>) {
        let mut decided: Vec<Decided> = Vec::with_capacity(batch.len());
        let mut steps: Vec<Step> = Vec::new();
        let mut requests: Vec<AppendRequest> = Vec::new();
        let mut in_batch: HashMap<EventId, usize> = HashMap::new();
        let mut expected: HashSet<String> = HashSet::new();
        for (i, command) in batch.iter_mut().enumerate() {
            let opened = match command.opened.take() {
                Some(v) => Ok(v),
                None => self.fold.open(&command.envelope),
            };
            let verified = match opened {
                Ok(v) => v,
                Err(e) => {
                    decided.push(Decided::Answer(Err(e.into())));
                    continue;
                }
            };
            if let Some(&j) = in_batch.get(&verified.event.id) {
                let same =
                    matches!(&steps_of(&steps, &decided, j), Some(earlier) if earlier.payload == verified.payload);
                decided.push(if same { Decided::SameAs(j) } else { Decided::IdReusedIn(j) });
                continue;
            }
            match self.decide_one(verified, before, &mut expected, stream_wide, &mut steps, &mut requests).await {
                Ok(d) => {
                    if let Decided::New { accepted, .. } = &d {
                        in_batch.insert(accepted.id.clone(), i);
                    }
                    decided.push(d);
                }
                Err(e) => decided.push(Decided::Answer(Err(e))),
            }
        }
        debug_assert_eq!(steps.len(), requests.len());
        (decided, steps, requests)
    }

    async fn decide_one(
        &mut self,
        verified: VerifiedEvent,
        before: &Before,
        expected: &mut HashSet<String>,
        stream_wide: bool,
        steps: &mut Vec<Step>,
        requests: &mut Vec<AppendRequest>,
    ) -> Result<Decided, SubmitError> {
        let event = &verified.event;
        // Only a command whose id the fold knows needs its payload hashed here
        // (a new one's is hashed once, as the fold records it).
        let earlier: Option<IdRecord> = self.fold.id_record(&event.id);
        let payload_sha256 = match &earlier {
            Some(_) => fundtrail_envelope::payload_digest(&verified.payload),
            None => [0; 32],
        };
        let admission =
            fundtrail_domain::admit(&self.config, event, &payload_sha256, self.clock.now(), earlier.as_ref())
                .map_err(SubmitError::Refused)?;
        if let Admission::Duplicate { seq } = admission {
            let accepted = Accepted {
                id: event.id.clone(),
                type_name: event.type_name(),
                fund: event.fund.clone(),
                seq,
                duplicate: true,
            };
            return Ok(Decided::Answer(Ok(accepted)));
        }
        let events = decide(&self.fold.state, event).map_err(SubmitError::Refused)?;
        assert_eq!(events.len(), 1, "a new command decides into exactly its own event");
        // Stream-wide, the batch is appended as a chain after the fold's position, which
        // is its expectation; otherwise each history deciding a command of it is expected.
        let filter = if stream_wide { None } else { Some(self.deciding_history(event)) };
        let expect = if let Some(filter) = filter.filter(|f| expected.insert(f.clone())) {
            let last_seq = if filter == ALL_EVENTS {
                before.fold.position()
            } else {
                self.fund_last_seq(&event.fund, &filter, before).await?
            };
            Some(Expectation { filter, last_seq })
        } else {
            None
        };
        let seq = self.fold.position() + 1;
        let accepted = Accepted {
            id: event.id.clone(),
            type_name: event.type_name(),
            fund: event.fund.clone(),
            seq,
            duplicate: false,
        };
        let request = AppendRequest {
            subject: event.subject(),
            msg_id: event.id.to_string(),
            payload: verified.envelope.clone(),
            expect,
        };
        let fund = event.fund.clone();
        self.learn_key(event);
        let folded = self.fold.apply_verified(seq, verified).expect("decide accepted it, so it applies");
        steps.push(Step::Applied { seq, folded });
        requests.push(request);
        self.fund_last.insert(fund, seq);
        Ok(Decided::New { accepted })
    }

    /// The last sequence of a fund's history as of `before`. A fund this
    /// process has not seen a message of since it started (its fold came from
    /// a snapshot) asks the log once.
    async fn fund_last_seq(&mut self, fund: &FundId, filter: &str, before: &Before) -> Result<u64, SubmitError> {
        if let Some(seq) = before.fund_last.get(fund) {
            return Ok(*seq);
        }
        let seq = self.log.last_subject_seq(filter).await.map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        // Only what the fold has seen may be expected: a newer message is
        // someone else's and the append then loses the race, as it should.
        Ok(seq.min(before.fold.position()))
    }

    /// Adds an enrolled key to the directory submitters verify with.
    fn learn_key(&self, event: &fundtrail_domain::Event) {
        if let Some((key, parsed)) = fundtrail_envelope::enrolled_key(event) {
            self.keys.write().expect("key directory lock").insert(key, parsed);
        }
    }

    /// The subject filter of the history that decides `event` (see the module doc).
    fn deciding_history(&self, event: &fundtrail_domain::Event) -> String {
        if event.fund.is_host() {
            return ALL_EVENTS.to_owned();
        }
        let fund_role = event
            .event_type()
            .roles()
            .iter()
            .filter(|r| !r.is_host_wide())
            .any(|r| self.fold.state.has_role(&event.fund, &event.author, *r));
        if fund_role {
            subject::fund_filter(&event.fund)
        } else {
            debug_assert!(self.fold.state.has_role(&FundId::host(), &event.author, Role::HostAdmin));
            ALL_EVENTS.to_owned()
        }
    }
}

/// The event an earlier command `j` of this batch was decided into.
fn steps_of<'a>(steps: &'a [Step], decided: &[Decided], j: usize) -> Option<&'a VerifiedEvent> {
    let index = decided[..j].iter().filter(|d| matches!(d, Decided::New { .. })).count();
    match steps.get(index)? {
        Step::Applied { folded, .. } => Some(&folded.event),
        Step::Rejected { .. } => None,
    }
}

/// What a chain that broke after `landed` of its requests settles: a command whose
/// event landed, and one answered by it (the same event again, its id reused), gets
/// its answer; a command refused or deduplicated against the state *before* the
/// batch keeps that answer only if it is a duplicate of the log (the state before the
/// batch is the log's); everything else (`None`) is decided again.
fn resolve_prefix(decided: &[Decided], landed: &[Appended]) -> Vec<Option<Result<Accepted, SubmitError>>> {
    let mut next = landed.iter();
    let mut answers: Vec<Option<Result<Accepted, SubmitError>>> = Vec::with_capacity(decided.len());
    for d in decided {
        let answer = match d {
            Decided::Answer(Ok(accepted)) => Some(Ok(accepted.clone())),
            Decided::Answer(Err(_)) => None,
            Decided::New { accepted } => {
                next.next().map(|a| Ok(Accepted { seq: a.seq, duplicate: a.duplicate, ..accepted.clone() }))
            }
            Decided::SameAs(j) => match &answers[*j] {
                Some(Ok(a)) => Some(Ok(Accepted { duplicate: true, ..a.clone() })),
                _ => None,
            },
            Decided::IdReusedIn(j) => match &answers[*j] {
                Some(Ok(a)) => Some(Err(SubmitError::Refused(Refusal::IdReused { id: a.id.clone(), seq: a.seq }))),
                _ => None,
            },
        };
        answers.push(answer);
    }
    answers
}

/// A batch to decide again: each command decided into a request past the first
/// `landed` gets its event's opened form back (the steps of those requests, in
/// order), so it is not verified again. A command answered otherwise (refused, the
/// same as another) is opened again.
fn give_back(
    batch: &mut [Command],
    decided: &[Decided],
    landed: usize,
    mut opened: impl Iterator<Item = VerifiedEvent>,
) {
    let mut request = 0;
    for (command, d) in batch.iter_mut().zip(decided) {
        if let Decided::New { .. } = d {
            if request >= landed {
                command.opened = Some(opened.next().expect("one step per new event"));
            }
            request += 1;
        }
    }
    assert!(opened.next().is_none(), "no step without its new event");
}

/// Answers the commands whose answer is settled and takes them out of `batch`.
fn answer_final(batch: &mut Vec<Command>, answers: Vec<Option<Result<Accepted, SubmitError>>>) {
    assert_eq!(answers.len(), batch.len(), "one answer (or none yet) per command");
    let mut kept = Vec::with_capacity(batch.len());
    for (command, answer) in std::mem::take(batch).into_iter().zip(answers) {
        match answer {
            Some(answer) => {
                let _ = command.reply.send(answer);
            }
            None => kept.push(command),
        }
    }
    *batch = kept;
}

/// The event a step of a decided batch applied (decide only makes applied steps).
fn opened_event(step: Step) -> VerifiedEvent {
    match step {
        Step::Applied { folded, .. } => folded.event,
        Step::Rejected { seq, .. } => unreachable!("decide applied every new event; {seq} was rejected"),
    }
}

fn opened_event_ref(step: &Step) -> &VerifiedEvent {
    match step {
        Step::Applied { folded, .. } => &folded.event,
        Step::Rejected { seq, .. } => unreachable!("decide applied every new event; {seq} was rejected"),
    }
}

/// Keeps the events of a batch that did not land where expected, to apply
/// them as opened when the log is read again.
fn remember(ours: &mut HashMap<String, VerifiedEvent>, steps: Vec<Step>) {
    for step in steps {
        if let Step::Applied { folded, .. } = step {
            ours.insert(folded.event.event.id.to_string(), folded.event);
        }
    }
}

/// Turns decisions into answers, given (seq, duplicate) for each new request in order.
fn resolve(decided: Vec<Decided>, appended: &[(u64, bool)]) -> Vec<Result<Accepted, SubmitError>> {
    let mut next = appended.iter();
    let mut answers: Vec<Result<Accepted, SubmitError>> = Vec::with_capacity(decided.len());
    for d in decided {
        let answer = match d {
            Decided::Answer(a) => a,
            Decided::New { mut accepted, .. } => {
                let &(seq, duplicate) = next.next().expect("one answer per request");
                accepted.seq = seq;
                accepted.duplicate = duplicate;
                Ok(accepted)
            }
            Decided::SameAs(j) => match &answers[j] {
                Ok(a) => Ok(Accepted { duplicate: true, ..a.clone() }),
                Err(e) => Err(e.clone()),
            },
            // The refusal names the sequence the earlier command landed at.
            Decided::IdReusedIn(j) => match &answers[j] {
                Ok(a) => Err(SubmitError::Refused(Refusal::IdReused { id: a.id.clone(), seq: a.seq })),
                Err(e) => Err(e.clone()),
            },
        };
        answers.push(answer);
    }
    answers
}

/// How long a submitter waits for the sequencer's answer at most.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);
