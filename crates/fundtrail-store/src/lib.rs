//! The event log: FundTrail's only storage of record, and the only crate that talks to
//! JetStream.
//!
//! [`EventLog`] is the contract; [`JetStreamLog`] (production, NATS JetStream) and
//! [`SledLog`] (a single machine with nothing installed) serve it, and one conformance
//! suite (`tests/conformance.rs`) runs against both.
//!
//! # The contract
//!
//! - **Order.** Every message gets a sequence: 1 for the first, then contiguous (nothing
//!   is ever deleted). Sequence order is ledger order. [`EventLog::read`] returns
//!   messages in sequence order.
//! - **Atomic batches.** [`EventLog::append_batch`] stores all messages of a batch with
//!   consecutive sequences, or none of them (a conflict, a refusal, an error).
//! - **Deduplication.** `msg_id` is the event id. Appending an id that is already stored
//!   stores nothing and answers [`Appended`] with the original sequence and
//!   `duplicate: true`. A batch is deduplicated as a whole: either every id is new, or
//!   every id is already stored (a resend), else [`AppendError::PartialDuplicate`].
//!   JetStream remembers ids for its duplicate window ([`StreamSettings::duplicate_window`],
//!   2 minutes by default); sled remembers them forever. Deduplication is decided before
//!   expectations, so a resend whose expectation has since gone stale (because the
//!   first send landed) is still reported as a duplicate.
//! - **Optimistic concurrency.** An [`Expectation`] says: "the last message whose
//!   subject matches `filter` has sequence `last_seq`" (0: there is none). Every
//!   expectation of a batch is checked against the log as it was *before* the batch;
//!   if one is stale, nothing is stored and [`AppendError::Conflict`] names the filter
//!   and both numbers. A batch may carry at most one expectation per filter (JetStream
//!   refuses a second check on the same subject within one batch; put it on the first
//!   message for that filter); see [`validate_batch`].
//! - **Chains.** [`EventLog::append_chain`] appends a batch right after a given
//!   sequence without making it atomic: its first message lands only if that
//!   sequence is the log's last, each later one only if the one before it is the
//!   log's last message. All land, at consecutive sequences from that one on, or a
//!   prefix does ([`AppendError::ChainBroken`], naming it): a message of a chain never
//!   lands on a history the chain did not expect. On JetStream a chain is plain
//!   publishes with `Nats-Expected-Last-Sequence` on the first and
//!   `Nats-Expected-Last-Msg-Id` (the message before) on each later one, which the
//!   server checks in O(1) and stores without staging; an atomic batch on a
//!   single-replica file stream is staged in a store of its own first. But with
//!   `sync_interval: always` the server syncs each publish, and a batch once: so
//!   the JetStream log sends each chain the way that has cost it less per message
//!   lately, plain publishes or one atomic batch expecting the start (both keep
//!   the contract), trying the other now and then.
//! - **Unknown outcome.** When an append times out, [`AppendError::UnknownOutcome`]:
//!   the batch may or may not have landed. Resend the same requests (same `msg_id`s):
//!   the resend lands once or reports duplicates.
//! - **Limits.** [`MESSAGE_SIZE_MAX`] bytes of payload, [`BATCH_MESSAGES_MAX`]
//!   messages per batch, subjects of the form `fundtrail.<v1|v2>.<fund>.<aggregate>.<id>`
//!   ([`EVENT_SUBJECTS`]).
//!
//! Architecture invariant: this crate knows bytes, subjects and sequences, never event
//! types or JSON; it is the only code that writes the event log. Above it, sled is only
//! the projections' and the donor vault's own store (opened through [`open_sled`]), and
//! only the auditor (`fundtrail-audit`, `verify --nats`) reads NATS directly: it trusts
//! none of the writer's code.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub mod baseline;
mod chain_ways;
mod follower;
mod jetstream;
pub mod nats_connect;
mod sled_log;
pub mod sled_open;
pub mod subject;
pub mod version;

pub use jetstream::{
    checkpoint_stream_config, event_stream_config, stream_weaknesses, ChainWay, JetStreamLog, StreamSettings,
    CHECKPOINT_STREAM, EVENT_STREAM,
};
pub use nats_connect::{NatsAuth, NatsConnect, Secret};
pub use sled_log::{SledLog, SledSync};
pub use sled_open::open_sled;

/// Subjects of event messages: `fundtrail.<version>.<fund>.<aggregate>.<id>`, one
/// pattern per version of the subject contract (`fundtrail_domain::subject`): v1,
/// which streams written by earlier releases hold, and v2. The events stream takes
/// all of them; a stream created with v1 only gets v2 added on connect
/// ([`JetStreamLog::connect`]).
pub const EVENT_SUBJECTS: &[&str] = &["fundtrail.v1.*.*.*", "fundtrail.v2.*.*.*"];
/// A filter that matches every event subject, of every version: its last sequence is
/// the log's.
pub const ALL_EVENTS_FILTER: &str = "fundtrail.*.*.*.*";
/// The subject checkpoints are published on (their own stream, not matched by
/// [`EVENT_SUBJECTS`]).
pub const CHECKPOINT_SUBJECT: &str = "fundtrail.v1.checkpoints";

/// Largest payload (a signed envelope) accepted, in bytes. Below the 65,535-byte cap on a
/// ledger entry (C2SP tlog-tiles) so that an entry (index, prev hash, envelope) fits.
pub const MESSAGE_SIZE_MAX: usize = 64 * 1024 - 1024;
/// Largest number of messages in one batch: JetStream's own cap for an atomic batch.
pub const BATCH_MESSAGES_MAX: usize = 1_000;
/// Longest `msg_id` (JetStream keeps ids in memory for the duplicate window).
pub const MSG_ID_SIZE_MAX: usize = 128;
/// Longest subject.
pub const SUBJECT_SIZE_MAX: usize = 256;
/// Largest number of messages one [`EventLog::read`] returns.
pub const READ_MESSAGES_MAX: usize = 10_000;
/// Largest checkpoint accepted, in bytes (a signed note is well under 1 KiB).
pub const CHECKPOINT_SIZE_MAX: usize = 16 * 1024;
/// How long one request to the log may take before its outcome is unknown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the NATS client pings its server. After three pings without an answer the
/// client gives the connection up and reconnects to another server, so a node that hangs
/// (stopped, or cut off without its connections being closed) is left within three
/// intervals (async-nats' default, 60 s, would take three minutes).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// How many times an append is sent (the same msg ids each time) before it is reported
/// as [`AppendError::UnknownOutcome`].
pub const APPEND_ATTEMPTS_MAX: u32 = 3;

/// One message to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// A literal subject matching [`EVENT_SUBJECTS`].
    pub subject: String,
    /// The event id: the deduplication key.
    pub msg_id: String,
    /// The signed envelope, exactly as signed.
    pub payload: Vec<u8>,
    /// Optimistic-concurrency check that must hold for the append to land.
    pub expect: Option<Expectation>,
}

/// Optimistic concurrency: the last message whose subject matches `filter` (a NATS
/// subject, may contain `*` (one token) or `>` (one or more trailing tokens)) must have
/// sequence `last_seq` (0 = no such message yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub filter: String,
    pub last_seq: u64,
}

/// Where an appended message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence (for a duplicate: the sequence of the message stored first).
    pub seq: u64,
    /// True if the id was already stored and nothing new was stored.
    pub duplicate: bool,
}

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// Errors of reads and of the connection to the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be reached (server down, no route, JetStream not answering).
    #[error("event log unavailable: {cause}")]
    Unavailable { cause: String },
    /// The server refused the request.
    #[error("event log refused the request: {description} (status {code}, error code {err_code})")]
    Refused { code: u16, err_code: u64, description: String },
    /// The server or stream cannot be used safely (version too old, weak stream
    /// settings); the message lists every reason.
    #[error("event log not usable: {0}")]
    Incompatible(String),
    /// The local store failed (sled I/O).
    #[error("event log storage failed: {0}")]
    Storage(String),
    /// Stored data failed a consistency check (a gap in sequences, an undecodable
    /// record): never ignored.
    #[error("event log corrupt: {0}")]
    Corrupt(String),
    /// The arguments cannot be served (e.g. an invalid subject filter).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Errors of appends.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// An expectation was stale: the history it guards has moved on.
    #[error("conflict on {filter}: expected its last sequence to be {expected}, it is {actual}")]
    Conflict { filter: String, expected: u64, actual: u64 },
    /// The log refused the batch because of its expectations without saying
    /// which one is stale: another append to the same history was in flight, or
    /// the stream's leader could not check yet. Nothing was stored; like a
    /// [`AppendError::Conflict`], read the log's end and decide again.
    #[error("the history this batch expects was being appended to; nothing stored: {description}")]
    Contended { description: String },
    /// A payload over [`MESSAGE_SIZE_MAX`].
    #[error("message {msg_id} is {size} bytes, over the {max}-byte limit")]
    TooLarge { msg_id: String, size: usize, max: usize },
    /// A batch over [`BATCH_MESSAGES_MAX`].
    #[error("batch of {count} messages is over the {max}-message limit")]
    BatchTooLarge { count: usize, max: usize },
    /// A batch that breaks a rule of the contract (empty, bad subject or id, an id twice,
    /// two expectations on one filter).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// Some ids of the batch are stored already and some are not: not a resend of one
    /// earlier batch, so nothing was stored.
    #[error("batch mixes stored ids ({stored:?}) with new ones ({new:?}); nothing stored")]
    PartialDuplicate { stored: Vec<String>, new: Vec<String> },
    /// A chain ([`EventLog::append_chain`]) stopped part way: its first `landed.len()`
    /// messages landed (in order, from the sequence after the chain's start; a message
    /// found stored already is a duplicate), the rest did not, because the log's end
    /// was not where the chain expected it (another writer). Read the log's end and
    /// decide the rest again.
    #[error("a chain of appends stopped after {} message(s); the rest were not stored: {cause}", landed.len())]
    ChainBroken { landed: Vec<Appended>, cause: String },
    /// No answer after [`APPEND_ATTEMPTS_MAX`] sends: the batch may or may not have
    /// landed. Resend it with the same msg ids.
    #[error(
        "no answer after {attempts} attempts, the append may or may not have landed; \
         resend with the same msg ids {msg_ids:?}"
    )]
    UnknownOutcome { msg_ids: Vec<String>, attempts: u32 },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The event log contract (see the crate docs). Object safe: `Arc<dyn EventLog>` works.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends a batch atomically: all messages land with consecutive sequences, in
    /// order, or none do. Answers one [`Appended`] per request, in order. A batch
    /// whose every id is stored already lands nothing and answers each id's stored
    /// sequence, which need not be consecutive (its events may have been stored apart).
    async fn append_batch(&self, batch: Vec<AppendRequest>) -> Result<Vec<Appended>, AppendError>;

    /// Appends `batch` as a chain right after sequence `after` (see the crate docs):
    /// every message lands, at `after + 1`, `after + 2`, … in order, or a prefix does
    /// ([`AppendError::ChainBroken`]); a message is never stored on a history the chain
    /// did not expect. Its requests carry no expectations of their own (the chain is
    /// theirs). A chain whose start is no longer the log's last sequence lands nothing
    /// (`ChainBroken` with nothing landed). A chain is not resent: what did not land
    /// is decided again. This default appends one atomic batch expecting `after` as the whole
    /// log's last sequence: all or nothing, a prefix of its own kind.
    async fn append_chain(&self, batch: Vec<AppendRequest>, after: u64) -> Result<Vec<Appended>, AppendError> {
        validate_chain(&batch)?;
        self.append_batch(chain_as_batch(batch, after)).await.map_err(chain_error)
    }

    /// Appends one message (a batch of one).
    async fn append(&self, request: AppendRequest) -> Result<Appended, AppendError> {
        let mut appended = self.append_batch(vec![request]).await?;
        assert_eq!(appended.len(), 1, "one answer per request");
        Ok(appended.remove(0))
    }

    /// Up to `max` (at most [`READ_MESSAGES_MAX`]) messages from `from_seq` on, in
    /// order; fewer (or none) when the log ends sooner. `from_seq` 0 reads from 1.
    async fn read(&self, from_seq: u64, max: usize) -> Result<Vec<StoredMessage>, LogError>;

    /// Every message from `from_seq` on, in order: those stored now, then new ones as
    /// they land. The stream ends only with an error.
    async fn follow(&self, from_seq: u64) -> Result<BoxStream<'static, Result<StoredMessage, LogError>>, LogError>;

    /// The sequence of the last message (0 for an empty log).
    async fn last_seq(&self) -> Result<u64, LogError>;

    /// The sequence of the last message whose subject matches `filter` (wildcards
    /// allowed), 0 if none.
    async fn last_subject_seq(&self, filter: &str) -> Result<u64, LogError>;
}

/// Signed checkpoints of the public ledger, kept apart from the events (their own
/// JetStream stream, [`CHECKPOINT_SUBJECT`]); append-only like them.
#[async_trait]
pub trait CheckpointLog: Send + Sync {
    /// Stores a checkpoint (at most [`CHECKPOINT_SIZE_MAX`] bytes); answers its sequence
    /// in the checkpoint log.
    async fn publish_checkpoint(&self, checkpoint: Vec<u8>) -> Result<u64, AppendError>;

    /// The last checkpoint stored, if any.
    async fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, LogError>;
}

/// Refuses a checkpoint over [`CHECKPOINT_SIZE_MAX`], the same way in both logs.
pub fn validate_checkpoint(checkpoint: &[u8]) -> Result<(), AppendError> {
    if checkpoint.len() > CHECKPOINT_SIZE_MAX {
        return Err(AppendError::TooLarge {
            msg_id: "checkpoint".into(),
            size: checkpoint.len(),
            max: CHECKPOINT_SIZE_MAX,
        });
    }
    Ok(())
}

/// Checks a batch against the contract's rules before anything is sent or written, so
/// that both backends refuse the same batches the same way.
pub fn validate_batch(batch: &[AppendRequest]) -> Result<(), AppendError> {
    if batch.is_empty() {
        return Err(AppendError::InvalidBatch("empty batch".into()));
    }
    if batch.len() > BATCH_MESSAGES_MAX {
        return Err(AppendError::BatchTooLarge { count: batch.len(), max: BATCH_MESSAGES_MAX });
    }
    let mut ids = std::collections::HashSet::new();
    let mut filters = std::collections::HashSet::new();
    for request in batch {
        if request.payload.len() > MESSAGE_SIZE_MAX {
            return Err(AppendError::TooLarge {
                msg_id: request.msg_id.clone(),
                size: request.payload.len(),
                max: MESSAGE_SIZE_MAX,
            });
        }
        validate_msg_id(&request.msg_id)?;
        if !subject::is_literal(&request.subject)
            || !is_event_subject(&request.subject)
            || request.subject.len() > SUBJECT_SIZE_MAX
        {
            return Err(AppendError::InvalidBatch(format!(
                "subject {:?} is not a literal subject matching one of {EVENT_SUBJECTS:?}",
                request.subject
            )));
        }
        if !ids.insert(request.msg_id.as_str()) {
            return Err(AppendError::InvalidBatch(format!("msg id {:?} appears twice in the batch", request.msg_id)));
        }
        if let Some(expect) = &request.expect {
            subject::validate_filter(&expect.filter).map_err(|e| AppendError::InvalidBatch(e.to_string()))?;
            if !filters.insert(expect.filter.as_str()) {
                return Err(AppendError::InvalidBatch(format!(
                    "two expectations on {:?} in one batch; put one on the first message for it",
                    expect.filter
                )));
            }
        }
    }
    Ok(())
}

/// Checks a chain ([`EventLog::append_chain`]): a valid batch whose requests carry no
/// expectations (the chain is theirs).
pub fn validate_chain(batch: &[AppendRequest]) -> Result<(), AppendError> {
    validate_batch(batch)?;
    if let Some(request) = batch.iter().find(|r| r.expect.is_some()) {
        return Err(AppendError::InvalidBatch(format!(
            "message {:?} of a chain carries an expectation; a chain expects its own start and order",
            request.msg_id
        )));
    }
    Ok(())
}

/// A chain as one atomic batch: its first message expects the whole log's last
/// sequence to be `after` (all of it lands, or nothing: a prefix).
pub fn chain_as_batch(mut batch: Vec<AppendRequest>, after: u64) -> Vec<AppendRequest> {
    if let Some(first) = batch.first_mut() {
        first.expect = Some(Expectation { filter: ALL_EVENTS_FILTER.to_owned(), last_seq: after });
    }
    batch
}

/// A chain sent as one atomic batch ([`chain_as_batch`]) whose start was stale
/// landed nothing: [`AppendError::ChainBroken`], as any chain says it.
pub fn chain_error(error: AppendError) -> AppendError {
    match error {
        stale @ AppendError::Conflict { .. } => {
            AppendError::ChainBroken { landed: Vec::new(), cause: stale.to_string() }
        }
        other => other,
    }
}

/// True if the literal `subject` is an event subject (matches one of [`EVENT_SUBJECTS`]).
pub fn is_event_subject(subject: &str) -> bool {
    EVENT_SUBJECTS.iter().any(|pattern| subject::matches(pattern, subject))
}

/// True if `filter` matches every event subject (every one of [`EVENT_SUBJECTS`]):
/// its last sequence is the log's.
pub fn covers_every_event(filter: &str) -> bool {
    EVENT_SUBJECTS.iter().all(|pattern| subject::covers(filter, pattern))
}

fn validate_msg_id(msg_id: &str) -> Result<(), AppendError> {
    let printable = msg_id.bytes().all(|b| b.is_ascii_graphic());
    if msg_id.is_empty() || msg_id.len() > MSG_ID_SIZE_MAX || !printable {
        return Err(AppendError::InvalidBatch(format!(
            "msg id {msg_id:?} must be 1 to {MSG_ID_SIZE_MAX} printable ASCII characters"
        )));
    }
    Ok(())
}

/// Checks the answer to a batch against the batch: one answer per request, new or
/// duplicate as a whole, a new batch at consecutive sequences. A duplicate batch
/// answers each id at the sequence it was stored at: consecutive when one earlier
/// send of this batch stored it, anywhere when its events were stored apart (a client
/// resent them to another replica, which appended them in batches of its own), but
/// never two ids at one sequence.
fn check_appended(batch_len: usize, appended: &[Appended]) {
    assert_eq!(appended.len(), batch_len, "one answer per request");
    for pair in appended.windows(2) {
        assert_eq!(pair[1].duplicate, pair[0].duplicate, "a batch is a duplicate as a whole");
        if !pair[0].duplicate {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "a new batch's sequences are consecutive");
        }
    }
    let distinct: std::collections::HashSet<u64> = appended.iter().map(|a| a.seq).collect();
    assert_eq!(distinct.len(), appended.len(), "one message per id");
    assert!(appended.iter().all(|a| a.seq >= 1), "sequences start at 1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_events_filter_covers_every_event_subject() {
        assert!(covers_every_event(ALL_EVENTS_FILTER));
        assert!(subject::validate_filter(ALL_EVENTS_FILTER).is_ok());
        assert!(!subject::matches(ALL_EVENTS_FILTER, CHECKPOINT_SUBJECT));
    }

    #[test]
    fn a_chain_refuses_requests_with_expectations_of_their_own() {
        let request = |id: &str, expect| AppendRequest {
            subject: format!("fundtrail.v2.f.donation.{id}"),
            msg_id: id.into(),
            payload: b"{}".to_vec(),
            expect,
        };
        assert!(validate_chain(&[request("a", None), request("b", None)]).is_ok());
        let expect = Some(Expectation { filter: ALL_EVENTS_FILTER.into(), last_seq: 3 });
        let refused = validate_chain(&[request("a", None), request("b", expect)]);
        assert!(matches!(refused, Err(AppendError::InvalidBatch(ref m)) if m.contains("\"b\"")), "{refused:?}");
        assert!(matches!(validate_chain(&[]), Err(AppendError::InvalidBatch(_))));
    }
}
