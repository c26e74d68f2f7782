//! The command pipeline: the one way anything is written.
//!
//! decode and verify the envelope → schema → authorisation and every rule
//! (`decide`, against the fold at the log's current position) → append with
//! the expected last sequence of the history that decides the invariant → on
//! a lost race, catch up and decide again (bounded, then [`SubmitError::Busy`])
//! → an unknown outcome is resent by the log with the same `Nats-Msg-Id`.
//!
//! Commands queue to a single writer task per process, which takes whatever
//! is queued (up to [`BATCH_COMMANDS_MAX`]) and decides it as one batch,
//! applying each accepted event to the fold before deciding the next, then
//! appends the batch atomically: group commit. Any number of processes may
//! write to one log; the expectations make every lost race visible.
//!
//! Before deciding, the writer reads whatever the log holds beyond its fold,
//! except right after its own append landed exactly where it expected: then
//! the next batch is decided at once, what another replica appended since is
//! caught by the expectations, and no refusal is answered before the writer
//! has read the log's end and decided again.
//!
//! Which history decides an event: an event a fund role authors in fund F is
//! decided by F's history alone (its roles, committee, money) plus key
//! enrolments, which only ever add; it expects the last sequence of
//! `fundtrail.v1.F.>`. Everything else — host-scope events and whatever a
//! host-wide role authors, such as opening a fund or granting a role — may
//! depend on any history, and expects the last sequence of the whole stream.
//!
//! Those per-fund expectations are only needed while another writer is
//! active (so that writers on different funds do not make each other lose
//! races). A writer that has seen no other writer for [`CONTENDED_BATCHES`]
//! batches gives its batch one expectation instead: the whole stream's last
//! sequence, on the first message. It is stronger (nothing at all landed
//! since the fold's position) and the server checks it in O(1), where a
//! fund's wildcard walks every subject of the fund — one per donation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use fundtrail_domain::admission::{self, Admission, AdmissionPolicy, IdRecord};
use fundtrail_domain::{decide, subject, EventId, FundId, KeyId, Refusal, Role};
use fundtrail_envelope::{EnvelopeError, Fold, VerifiedEvent};
use fundtrail_store::{AppendError, AppendRequest, EventLog, Expectation, LogError, StoredMessage};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::verified::{digest, VerifiedSet};

/// Most commands decided and appended as one batch (the log's batch cap).
pub const BATCH_COMMANDS_MAX: usize = fundtrail_store::BATCH_MESSAGES_MAX;
/// How many times a batch is decided again after losing a race.
pub const DECIDE_ATTEMPTS_MAX: u32 = 16;
/// Commands waiting for the writer before submitters are told to back off.
pub const QUEUE_COMMANDS_MAX: usize = 8_192;
/// Messages read per request while catching up.
pub const CATCH_UP_READ_MAX: usize = 1_000;

/// After another writer is seen (a lost race, a message of theirs read),
/// this many batches expect per-fund histories, so that writers on other
/// funds do not make each other lose races; then the writer goes back to one
/// expectation on the whole stream, which the server checks in O(1) where a
/// fund's wildcard walks every subject of the fund (one per donation).
pub const CONTENDED_BATCHES: u32 = 32;

/// The subject filter of the whole stream.
pub use fundtrail_domain::subject::ALL_EVENTS;

/// What the writer admits (pinned host key, clock window): the domain's
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
    #[error("the fund is busy: the command lost {attempts} races in a row; retry")]
    Busy { attempts: u32 },
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    #[error("too many commands queued; retry shortly")]
    Overloaded,
    #[error("the service is shutting down")]
    ShuttingDown,
}

struct Command {
    envelope: Vec<u8>,
    /// SHA-256 of `envelope`, computed once by the submitter.
    envelope_digest: [u8; 32],
    /// Opened (signature verified) by the submitter, when it knew the key.
    opened: Option<VerifiedEvent>,
    reply: oneshot::Sender<Result<Accepted, SubmitError>>,
}

/// Public keys the writer has seen enrolled. A key id is the hash of its
/// public key, so an entry never changes: submitters verify signatures with
/// it on their own tasks, in parallel, before the single writer decides.
pub type KeyDirectory = Arc<std::sync::RwLock<HashMap<KeyId, VerifyingKey>>>;

/// A handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
    keys: KeyDirectory,
    verified: Arc<VerifiedSet>,
}

impl Writer {
    /// Starts the writer task over `log`.
    pub fn start(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        config: WriterConfig,
        verified: Arc<VerifiedSet>,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE_COMMANDS_MAX);
        let keys = KeyDirectory::default();
        let task = WriterTask {
            log,
            clock,
            config,
            fold: Fold::new(),
            fund_last: HashMap::new(),
            at_log_end: false,
            contended_batches: 0,
            keys: keys.clone(),
            verified: verified.clone(),
        };
        tokio::spawn(task.run(rx));
        Writer { tx, keys, verified }
    }

    /// Submits a signed envelope; answers once it is in the log (or refused).
    pub async fn submit(&self, envelope: Vec<u8>) -> Result<Accepted, SubmitError> {
        // Verify here, on the submitter's task, when the key is known: the
        // writer then only decides. Unknown keys go to the writer, whose
        // state is newer (or genesis, which names its own key).
        let opened = {
            let keys = self.keys.read().expect("key directory lock");
            fundtrail_envelope::open(&envelope, |id| keys.get(id).copied())
        };
        let envelope_digest = digest(&envelope);
        let opened = match opened {
            Ok(v) => {
                self.verified.insert(envelope_digest);
                Some(v)
            }
            Err(EnvelopeError::UnknownKey(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(Command { envelope, envelope_digest, opened, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SubmitError::ShuttingDown,
        })?;
        answer.await.map_err(|_| SubmitError::ShuttingDown)?
    }
}

struct WriterTask {
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    config: WriterConfig,
    fold: Fold,
    /// Last sequence of each fund's subjects (`fundtrail.v1.<fund>.>`).
    fund_last: HashMap<FundId, u64>,
    /// The last append landed exactly at the fold's position: the fold was
    /// at the log's end a moment ago, so the next batch may skip asking.
    at_log_end: bool,
    /// Batches still to decide with per-fund expectations since another
    /// writer was last seen (see [`CONTENDED_BATCHES`]).
    contended_batches: u32,
    keys: KeyDirectory,
    verified: Arc<VerifiedSet>,
}

/// SHA-256 of a command's payload (what an id record keeps) and envelope
/// (what the verified set is keyed by).
#[derive(Clone, Copy)]
struct Digests {
    payload: [u8; 32],
    envelope: [u8; 32],
}

/// What deciding one command gave, before the batch is appended.
enum Decided {
    Answer(Result<Accepted, SubmitError>),
    /// Accepted into this batch at provisional sequence `seq`.
    New {
        accepted: Accepted,
        request: AppendRequest,
    },
    /// The same event as an earlier command of this batch.
    SameAs(usize),
    /// Other content under the id of an earlier command of this batch.
    IdReusedIn(usize),
}

impl WriterTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH_COMMANDS_MAX {
                match rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let answers = self.process(&batch).await;
            assert_eq!(answers.len(), batch.len());
            for (command, answer) in batch.into_iter().zip(answers) {
                let _ = command.reply.send(answer);
            }
        }
    }

    async fn process(&mut self, batch: &[Command]) -> Vec<Result<Accepted, SubmitError>> {
        for attempt in 0..DECIDE_ATTEMPTS_MAX {
            // Under load, asking the log for its end before every batch costs a
            // round trip per batch. Right after our own append landed where we
            // expected, the batch is decided without asking: whatever another
            // replica appended since is caught by the expectations (a lost race),
            // and a refusal is only given after reading the log's end.
            let skipped_catch_up = attempt == 0 && std::mem::take(&mut self.at_log_end);
            if !skipped_catch_up {
                if let Err(e) = self.catch_up().await {
                    return batch.iter().map(|_| Err(SubmitError::Unavailable(e.to_string()))).collect();
                }
            }
            let stream_wide = self.contended_batches == 0;
            self.contended_batches = self.contended_batches.saturating_sub(1);
            let snapshot = (self.fold.clone(), self.fund_last.clone());
            let decided = self.decide_batch(batch, stream_wide);
            if skipped_catch_up && decided.iter().any(|d| matches!(d, Decided::Answer(Err(_)) | Decided::IdReusedIn(_)))
            {
                (self.fold, self.fund_last) = snapshot;
                continue;
            }
            let requests: Vec<AppendRequest> = decided
                .iter()
                .filter_map(|d| match d {
                    Decided::New { request, .. } => Some(request.clone()),
                    _ => None,
                })
                .collect();
            if requests.is_empty() {
                return resolve(decided, &[]);
            }
            match self.log.append_batch(requests).await {
                Ok(appended) => {
                    let provisional: Vec<u64> = decided
                        .iter()
                        .filter_map(|d| match d {
                            Decided::New { accepted, .. } => Some(accepted.seq),
                            _ => None,
                        })
                        .collect();
                    let actual: Vec<u64> = appended.iter().map(|a| a.seq).collect();
                    if actual != provisional || appended.iter().any(|a| a.duplicate) {
                        // Someone else's messages landed between our position and
                        // our batch (other funds), or the batch was a resend: put the
                        // fold back and read the log as it really is.
                        self.log_moved(snapshot);
                    } else {
                        self.at_log_end = true;
                    }
                    let duplicates: Vec<bool> = appended.iter().map(|a| a.duplicate).collect();
                    return resolve(decided, &actual.into_iter().zip(duplicates).collect::<Vec<_>>());
                }
                Err(AppendError::Conflict { filter, expected, actual }) => {
                    tracing::debug!(%filter, expected, actual, "lost a race; deciding again");
                    self.log_moved(snapshot);
                }
                Err(AppendError::PartialDuplicate { .. }) => self.log_moved(snapshot),
                Err(e) => {
                    (self.fold, self.fund_last) = snapshot;
                    let message = e.to_string();
                    return batch.iter().map(|_| Err(SubmitError::Unavailable(message.clone()))).collect();
                }
            }
        }
        batch.iter().map(|_| Err(SubmitError::Busy { attempts: DECIDE_ATTEMPTS_MAX })).collect()
    }

    /// The log was not where the batch assumed (another writer, or a resend):
    /// puts the fold back to before the batch and expects per-fund histories
    /// for a while.
    fn log_moved(&mut self, snapshot: (Fold, HashMap<FundId, u64>)) {
        (self.fold, self.fund_last) = snapshot;
        self.contended_batches = CONTENDED_BATCHES;
    }

    /// Reads whatever the log has beyond the fold's position.
    async fn catch_up(&mut self) -> Result<(), LogError> {
        let last = self.log.last_seq().await?;
        while self.fold.position() < last {
            let messages = self.log.read(self.fold.position() + 1, CATCH_UP_READ_MAX).await?;
            if messages.is_empty() {
                break;
            }
            for message in messages {
                self.apply_stored(&message);
            }
        }
        Ok(())
    }

    fn apply_stored(&mut self, message: &StoredMessage) {
        if let Ok(parts) = subject::parse(&message.subject) {
            self.fund_last.insert(parts.fund, message.seq);
        }
        let known = self.verified.contains(&digest(&message.payload));
        if !known {
            self.contended_batches = CONTENDED_BATCHES; // another writer's message
        }
        let applied = if known {
            self.fold.apply_reverified(message.seq, Some(&message.subject), &message.payload)
        } else {
            self.fold.apply(message.seq, Some(&message.subject), &message.payload)
        };
        if let Ok(folded) = &applied {
            self.learn_key(&folded.event.event);
        }
        if let Err(e) = applied {
            // Only a writer that bypassed FundTrail can put such a message in
            // the stream; every reader skips it the same way.
            tracing::error!(error = %e, "stream message rejected by the fold");
        }
    }

    /// Decides a batch; with `stream_wide`, its one expectation is the whole
    /// stream's last sequence, on its first message.
    fn decide_batch(&mut self, batch: &[Command], stream_wide: bool) -> Vec<Decided> {
        let mut decided: Vec<Decided> = Vec::with_capacity(batch.len());
        let mut in_batch: HashMap<EventId, (usize, IdRecord)> = HashMap::new();
        let mut expected: std::collections::HashSet<String> = std::collections::HashSet::new();
        let position_before = self.fold.position();
        let fund_last_before = self.fund_last.clone();
        for (i, command) in batch.iter().enumerate() {
            let opened = match &command.opened {
                Some(v) => Ok(v.clone()),
                None => self.fold.open(&command.envelope).inspect(|_| self.verified.insert(command.envelope_digest)),
            };
            let verified = match opened {
                Ok(v) => v,
                Err(e) => {
                    decided.push(Decided::Answer(Err(e.into())));
                    continue;
                }
            };
            let digests = Digests { payload: digest(&verified.payload), envelope: command.envelope_digest };
            if let Some((j, earlier)) = in_batch.get(&verified.event.id) {
                decided.push(match admission::id_not_reused(&verified.event, &digests.payload, earlier) {
                    Ok(_) => Decided::SameAs(*j),
                    Err(_) => Decided::IdReusedIn(*j),
                });
                continue;
            }
            match self.decide_one(verified, digests, position_before, &fund_last_before, &mut expected, stream_wide) {
                Ok(d) => {
                    if let Decided::New { accepted, .. } = &d {
                        let record = IdRecord { seq: accepted.seq, payload_sha256: digests.payload };
                        in_batch.insert(accepted.id.clone(), (i, record));
                    }
                    decided.push(d);
                }
                Err(e) => decided.push(Decided::Answer(Err(e))),
            }
        }
        decided
    }

    fn decide_one(
        &mut self,
        verified: VerifiedEvent,
        digests: Digests,
        position_before: u64,
        fund_last_before: &HashMap<FundId, u64>,
        expected: &mut std::collections::HashSet<String>,
        stream_wide: bool,
    ) -> Result<Decided, SubmitError> {
        let event = &verified.event;
        let earlier = self.fold.id_record(&event.id);
        let admission =
            fundtrail_domain::admit(&self.config, event, &digests.payload, self.clock.now(), earlier.as_ref())
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
        let filter = if stream_wide { ALL_EVENTS.to_owned() } else { self.deciding_history(event) };
        let expect = expected.insert(filter.clone()).then(|| {
            let last_seq = if filter == ALL_EVENTS {
                position_before
            } else {
                fund_last_before.get(&event.fund).copied().unwrap_or(0)
            };
            Expectation { filter, last_seq }
        });
        let seq = self.fold.position() + 1;
        let subject = event.subject();
        let accepted = Accepted {
            id: event.id.clone(),
            type_name: event.type_name(),
            fund: event.fund.clone(),
            seq,
            duplicate: false,
        };
        let request =
            AppendRequest { subject, msg_id: event.id.to_string(), payload: verified.envelope.clone(), expect };
        let fund = event.fund.clone();
        self.learn_key(event);
        let folded = self.fold.apply_verified(seq, verified).expect("decide accepted it, so it applies");
        // The projection runner will read these exact bytes back: hand it the parsed event.
        self.verified.hand_over(digests.envelope, folded.event);
        self.fund_last.insert(fund, seq);
        Ok(Decided::New { accepted, request })
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

/// How long a submitter waits for the writer's answer at most.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);
