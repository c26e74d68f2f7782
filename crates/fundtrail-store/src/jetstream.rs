//! [`JetStreamLog`]: the event log on NATS JetStream (the production path).
//!
//! - One stream, [`EVENT_STREAM`], subjects [`EVENT_SUBJECTS`]; checkpoints in their own
//!   stream, [`CHECKPOINT_STREAM`] ([`CHECKPOINT_SUBJECT`]). Both: file storage,
//!   `deny_delete`, `deny_purge`, `discard: new`, no limits, no rollups, no TTLs. On
//!   connect, a missing stream is created and an existing one is checked: any weaker
//!   setting is refused, each one named ([`stream_weaknesses`]).
//! - One message: a plain JetStream publish with `Nats-Msg-Id` (and the expectation
//!   headers `Nats-Expected-Last-Subject-Sequence` + `…-Subject`, the filter).
//! - Several: an atomic batch (ADR-50, server 2.12+, stream `allow_atomic`): headers
//!   `Nats-Batch-Id`, `Nats-Batch-Sequence` (1..n), `Nats-Batch-Commit: 1` on the last.
//!   The first message is a request the server answers empty (batch started), the middle
//!   ones are plain publishes, the last is a request answered by a pub ack carrying the
//!   last sequence and the count. Expectations are checked at commit against the stream
//!   before the batch.
//! - A chain ([`EventLog::append_chain`]): plain publishes back to back on one
//!   connection, each with `Nats-Msg-Id`; the first with `Nats-Expected-Last-Sequence`
//!   (the chain's start), each later one with `Nats-Expected-Last-Msg-Id` (the message
//!   before it: it lands only if that one is the stream's last message). Replies come
//!   to one inbox subscription, one per message. The server checks both in O(1) and
//!   stores each message at once; an atomic batch on a single-replica file stream is
//!   first staged in a file store of its own (created, written and synced per batch).
//!   A message after one that did not land is refused "wrong last msg ID" (10070).
//!   A chain is sent again only while none of it can have been sent; once one of its
//!   messages may have landed and an answer is missing, what landed is looked up by id
//!   among the messages after its start, never sent again (a resend's first message
//!   would be refused as stale by the first send's messages that did land).
//!   With `sync_interval: always` the server syncs each of them where it syncs a
//!   batch once, so a chain goes whichever way, these publishes or one atomic batch
//!   expecting its start, has cost less per message lately (`chain_ways.rs`).
//! - Verified on 2.15.1: a stale expectation (literal or wildcard filter) answers error
//!   10071 "wrong last sequence: N"; a single duplicate answers the original sequence with
//!   `duplicate: true`; a batch containing a stored id answers error 10201 (no sequence),
//!   and an expectation is checked *before* the duplicate check. So on 10201 or 10071 the
//!   log looks the batch's ids up among the recent messages (the duplicate window) to
//!   report duplicates with their original sequences, as the contract says.
//!
//! An append waits for its answer at most [`REQUEST_TIMEOUT`], and no longer than the
//! client's connection lasts: a reply goes to the connection that asked, so once the
//! client lost it (the node was killed, cut off) the answer can no longer come, and the
//! append resends (a batch, by its msg ids) or looks its chain up at once, through the
//! server the client reconnected to.
//!
//! Durability: the server must run JetStream with `sync_interval: always` for an
//! acknowledged append to survive a power cut (the default syncs every 2 minutes; an
//! acknowledged message then survives a process crash of nats-server but not an OS crash
//! or power loss of a single node). A 3-node cluster with replicas 3 acknowledges only
//! after a quorum stored the message.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap};
use async_trait::async_trait;
use base64::Engine as _;
use futures::stream::BoxStream;
use futures::StreamExt as _;
use serde::Deserialize;

use crate::chain_ways::{ChainWays, Way};
use crate::follower;
use crate::nats_connect::{ConnectError, NatsConnect};
use crate::{
    chain_as_batch, chain_error, check_appended, covers_every_event, subject, validate_batch, validate_chain,
    validate_checkpoint, version, AppendError, AppendRequest, Appended, CheckpointLog, EventLog, LogError,
    StoredMessage, APPEND_ATTEMPTS_MAX, CHECKPOINT_SIZE_MAX, CHECKPOINT_SUBJECT, EVENT_SUBJECTS, MESSAGE_SIZE_MAX,
    PING_INTERVAL, READ_MESSAGES_MAX, REQUEST_TIMEOUT,
};

/// The events stream.
pub const EVENT_STREAM: &str = "FUNDTRAIL";
/// The checkpoints stream.
pub const CHECKPOINT_STREAM: &str = "FUNDTRAIL_CHECKPOINTS";

/// How long connecting to one server may take (TCP, the server's INFO, TLS, CONNECT)
/// before it counts as unreachable and the next server is tried. A server that hangs
/// accepts TCP connections and says nothing: a reconnect that picks it loses this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before the first resend of an append; doubled after each further one.
pub const RETRY_BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Most recent messages scanned when looking ids up after a duplicate or a conflict.
pub const DEDUP_SCAN_MESSAGES_MAX: u64 = 100_000;
/// First (smallest) chunk of that backward scan; chunks grow ×4 up to the max below.
const DEDUP_SCAN_CHUNK_INITIAL: u64 = 64;
const DEDUP_SCAN_CHUNK_MAX: u64 = 4_096;
/// Margin added to the duplicate window when deciding that a scanned message is too old
/// to be a duplicate candidate (server clock only: message timestamps are compared with
/// each other, not with the local clock).
const DEDUP_WINDOW_SLACK: Duration = Duration::from_secs(30);
/// Headroom over [`MESSAGE_SIZE_MAX`] for headers, in the stream's max message size.
const HEADERS_SIZE_MAX: usize = 4 * 1024;

/// JetStream error codes this log acts on.
mod err_code {
    /// "wrong last sequence: N": a stale expectation (a single server; a cluster
    /// when its store checked it).
    pub const WRONG_LAST_SEQUENCE: u64 = 10071;
    /// "wrong last sequence" without a number: a stale expectation refused before
    /// the store knew the sequence (a replicated stream, or another append to the
    /// same subject in flight).
    pub const WRONG_LAST_SEQUENCE_CONSTANT: u64 = 10164;
    /// "expected last sequence per subject temporarily unavailable" (a stream
    /// leader that has not caught up yet): the expectation could not be checked.
    pub const EXPECTED_LAST_SEQ_NOT_READY: u64 = 10163;

    /// The answers that mean: the expectation did not hold, or could not be
    /// checked now; nothing was stored. A lost race, never an outage.
    pub fn is_lost_race(err_code: u64) -> bool {
        matches!(err_code, WRONG_LAST_SEQUENCE | WRONG_LAST_SEQUENCE_CONSTANT | EXPECTED_LAST_SEQ_NOT_READY)
    }
    /// "wrong last msg ID": the message before one of a chain is not the stream's last.
    pub const WRONG_LAST_MSG_ID: u64 = 10070;
    /// "no message found" (message get).
    pub const NO_MESSAGE_FOUND: u64 = 10037;
    /// "stream not found".
    pub const STREAM_NOT_FOUND: u64 = 10059;
    /// "atomic publish batch contains duplicate message id".
    pub const BATCH_DUPLICATE_MSG_ID: u64 = 10201;
}

/// Stream settings left to the deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long JetStream remembers a msg id for deduplication.
    pub duplicate_window: Duration,
    /// Replicas of each stream (1 on a single server, 3 in the production cluster).
    pub replicas: usize,
    /// Which way chains go out: measured (the default), or always one way.
    pub chains: ChainWay,
}

/// Which way a chain ([`EventLog::append_chain`]) goes out (see `chain_ways.rs`);
/// read from `measured`, `publishes` or `batch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChainWay {
    /// Whichever has cost less per message lately, trying the other now and then.
    #[default]
    Measured,
    /// Always plain publishes (cheaper with the server's default sync).
    Publishes,
    /// Always one atomic batch (cheaper with `sync_interval: always`).
    Batch,
}

impl std::str::FromStr for ChainWay {
    type Err = String;

    fn from_str(text: &str) -> Result<ChainWay, String> {
        match text {
            "measured" => Ok(ChainWay::Measured),
            "publishes" => Ok(ChainWay::Publishes),
            "batch" => Ok(ChainWay::Batch),
            other => Err(format!("{other:?} is not a way to send chains: measured, publishes or batch")),
        }
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings { duplicate_window: Duration::from_secs(120), replicas: 1, chains: ChainWay::Measured }
    }
}

/// The event log on NATS JetStream. Cheap to clone; share it as `Arc<dyn EventLog>`.
#[derive(Clone, Debug)]
pub struct JetStreamLog {
    client: Client,
    context: jetstream::Context,
    settings: StreamSettings,
    /// Which way chains go out (see [`crate::chain_ways`]).
    chain_ways: std::sync::Arc<ChainWays>,
    /// How many times the client lost its connection: an append waiting for its
    /// answer stops waiting when it changes (see [`JetStreamLog::answer_or_disconnect`]).
    disconnects: tokio::sync::watch::Receiver<u64>,
    /// Waits for an answer cut short by a lost connection.
    answers_lost: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl JetStreamLog {
    /// Connects to one server without credentials (tests, a local server).
    pub async fn connect(url: &str, settings: StreamSettings) -> Result<JetStreamLog, LogError> {
        let options = NatsConnect::plain(url).map_err(|e| LogError::Invalid(e.to_string()))?;
        JetStreamLog::connect_with(&options, settings).await
    }

    /// Connects (to any of the servers; the client fails over between them and
    /// the ones the cluster announces), checks the server version (≥ 2.12) and the
    /// streams (creating them if absent, refusing weaker ones). The client
    /// reconnects by itself afterwards (with backoff); while NATS is unreachable,
    /// calls fail with [`LogError::Unavailable`] or, for appends,
    /// [`AppendError::UnknownOutcome`]. Refused credentials are
    /// [`LogError::Incompatible`] (waiting does not help); errors name the servers
    /// and the kind of credentials, never a secret.
    pub async fn connect_with(options: &NatsConnect, settings: StreamSettings) -> Result<JetStreamLog, LogError> {
        assert!(settings.replicas >= 1, "at least one replica");
        assert!(!settings.duplicate_window.is_zero(), "a duplicate window");
        let where_ = options.describe();
        let (disconnected, disconnects) = tokio::sync::watch::channel(0u64);
        let base = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .ping_interval(PING_INTERVAL)
            .name("fundtrail")
            .event_callback(move |event| {
                match &event {
                    async_nats::Event::Disconnected => {
                        disconnected.send_modify(|n| *n += 1);
                        tracing::warn!("lost the connection to the NATS server; reconnecting");
                    }
                    async_nats::Event::Connected => tracing::info!("connected to a NATS server"),
                    other => tracing::warn!(event = %other, "NATS client event"),
                }
                std::future::ready(())
            });
        let client = crate::nats_connect::connect(options, base).await.map_err(|e| match e {
            ConnectError::Server { .. } => LogError::Invalid(e.to_string()),
            ConnectError::Unreachable { .. } => LogError::Unavailable { cause: e.to_string() },
            _ => LogError::Incompatible(e.to_string()),
        })?;
        let info = client.server_info();
        version::check(&info.version).map_err(LogError::Incompatible)?;
        if !info.jetstream {
            return Err(LogError::Incompatible(format!("JetStream is not enabled on the NATS server at {where_}")));
        }
        let context = jetstream::ContextBuilder::new().timeout(REQUEST_TIMEOUT).build(client.clone());
        let log = JetStreamLog {
            client,
            context,
            settings,
            chain_ways: Default::default(),
            disconnects,
            answers_lost: Default::default(),
        };
        log.ensure_stream(event_stream_config(&log.settings)).await?;
        log.ensure_stream(checkpoint_stream_config(&log.settings)).await?;
        Ok(log)
    }

    /// Whether the client is connected to a server now (what the process knows,
    /// no network call).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The name of the server the client is connected to (`server_name`).
    pub fn server_name(&self) -> String {
        self.client.server_info().server_name
    }

    /// How many waits for an answer the client's lost connections cut short (see
    /// `JetStreamLog::answer_or_disconnect`).
    pub fn answers_lost(&self) -> u64 {
        self.answers_lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The connected server's version string.
    pub fn server_version(&self) -> String {
        self.client.server_info().version
    }

    /// Creates the stream if absent; refuses an existing one weaker than `wanted`.
    /// A stream that lacks only some of the wanted subjects (one created by an
    /// earlier release, with the v1 event subjects only) gets them added: adding
    /// subjects changes nothing stored and weakens nothing.
    async fn ensure_stream(&self, wanted: stream::Config) -> Result<(), LogError> {
        let name = wanted.name.clone();
        for _ in 0..3 {
            match self.stream_config(&name).await? {
                Some(found) => {
                    let weaknesses = stream_weaknesses(&found, &wanted);
                    if weaknesses.is_empty() {
                        return Ok(());
                    }
                    if let Some(updated) = with_missing_subjects(&found, &wanted) {
                        self.add_subjects(updated, &found.subjects).await?;
                        continue;
                    }
                    return Err(LogError::Incompatible(weaknesses.join("; ")));
                }
                None => match self.context.create_stream(wanted.clone()).await {
                    Ok(_) => return Ok(()),
                    // Created concurrently by another replica: check it on the next turn.
                    Err(e) if e.to_string().contains("already in use") => continue,
                    Err(e) => return Err(LogError::Unavailable { cause: format!("cannot create stream {name}: {e}") }),
                },
            }
        }
        Err(LogError::Unavailable { cause: format!("stream {name} neither found nor created") })
    }

    /// Updates the stream to `updated` (its found configuration with the wanted
    /// subjects added). Refused, e.g. where the deployment denies the service
    /// `$JS.API.STREAM.UPDATE` (`deploy/`): the operator adds them, as the error says.
    async fn add_subjects(&self, updated: stream::Config, found: &[String]) -> Result<(), LogError> {
        let name = updated.name.clone();
        let wanted = updated.subjects.clone();
        match self.context.update_stream(updated).await {
            Ok(_) => {
                tracing::warn!(stream = %name, from = ?found, to = ?wanted, "stream subjects updated for the v2 subject contract");
                Ok(())
            }
            Err(e) => Err(LogError::Incompatible(format!(
                "stream {name} has subjects {found:?}, not {wanted:?}, and adding the missing ones failed: {e}; \
                 add them as an operator (nats stream edit {name} --subjects '{}') and start again",
                wanted.join(",")
            ))),
        }
    }

    /// The stream's configuration, `None` if there is no such stream.
    async fn stream_config(&self, name: &str) -> Result<Option<stream::Config>, LogError> {
        let subject = format!("$JS.API.STREAM.INFO.{name}");
        let reply: ApiReply<StreamInfoReply> = self.api_request(&subject, b"").await?;
        match reply.into_result() {
            Ok(info) => Ok(Some(info.config)),
            Err(e) if e.err_code == err_code::STREAM_NOT_FOUND => Ok(None),
            Err(e) => Err(e.into_log_error()),
        }
    }

    /// A JetStream API request (a plain NATS request) with the request timeout; a read, so
    /// asked again (once, at once) if the connection was lost while it waited (see
    /// [`JetStreamLog::answer_or_disconnect`]).
    async fn api_request<T: for<'de> Deserialize<'de>>(&self, subject: &str, payload: &[u8]) -> Result<T, LogError> {
        let ask = || {
            let request = async_nats::Request::new()
                .payload(bytes::Bytes::copy_from_slice(payload))
                .timeout(Some(REQUEST_TIMEOUT));
            self.client.send_request(subject.to_string(), request)
        };
        let answer = match self.answer_or_disconnect(ask()).await {
            Some(answer) => answer,
            None => {
                tracing::debug!(%subject, "connection lost while waiting for an answer; asking again");
                ask().await
            }
        };
        let reply = answer.map_err(|e| LogError::Unavailable { cause: format!("{subject}: {e}") })?;
        serde_json::from_slice(&reply.payload)
            .map_err(|e| LogError::Unavailable { cause: format!("{subject}: unreadable answer: {e}") })
    }

    /// The last message whose subject matches `filter` in `stream`, if any.
    async fn last_by_subject(&self, stream: &str, filter: &str) -> Result<Option<RawStoredMessage>, LogError> {
        let subject = format!("$JS.API.STREAM.MSG.GET.{stream}");
        let request = serde_json::json!({ "last_by_subj": filter }).to_string();
        let reply: ApiReply<MsgGetReply> = self.api_request(&subject, request.as_bytes()).await?;
        match reply.into_result() {
            Ok(found) => Ok(Some(found.message)),
            Err(e) if e.err_code == err_code::NO_MESSAGE_FOUND => Ok(None),
            Err(e) => Err(e.into_log_error()),
        }
    }

    /// One send of a batch: a plain publish for one message, an atomic batch otherwise.
    async fn send_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Appended>, SendError> {
        if batch.len() == 1 {
            let ack = self.request_ack(&batch[0], message_headers(&batch[0], 0)).await?;
            let ack = ack.ok_or(SendError::Protocol("empty answer to a publish".into()))?;
            return Ok(vec![Appended { seq: ack.seq, duplicate: ack.duplicate }]);
        }
        let batch_id = new_batch_id();
        let last = batch.len() - 1;
        let headers = |index: usize| {
            let mut headers = message_headers(&batch[index], index);
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (index + 1).to_string().as_str());
            if index == last {
                headers.insert("Nats-Batch-Commit", "1");
            }
            headers
        };
        // The server answers the first message of a batch with an empty reply
        // (batch started) or an error, and the commit with the ack. Both are
        // awaited together: the messages go out back to back, in order (one
        // connection, one FIFO command queue), without a round trip between.
        let first = self.request_ack(&batch[0], headers(0));
        let rest = async {
            for (index, request) in batch.iter().enumerate().take(last).skip(1) {
                self.client
                    .publish_with_headers(
                        request.subject.clone(),
                        headers(index),
                        bytes::Bytes::copy_from_slice(&request.payload),
                    )
                    .await
                    .map_err(|e| SendError::MaybeLanded(e.to_string()))?;
            }
            self.request_ack(&batch[last], headers(last)).await
        };
        let (first, commit) = futures::join!(first, rest);
        if let Some(ack) = first? {
            return Err(SendError::Protocol(format!("unexpected ack {ack:?} to the first message of a batch")));
        }
        let ack = commit?.ok_or(SendError::Protocol("empty answer to a batch commit".into()))?;
        if ack.batch.as_deref() != Some(batch_id.as_str())
            || ack.count != Some(batch.len() as u64)
            || ack.seq < batch.len() as u64
        {
            return Err(SendError::Protocol(format!(
                "batch commit ack {ack:?} does not match batch {batch_id} of {}",
                batch.len()
            )));
        }
        let first = ack.seq + 1 - batch.len() as u64;
        Ok((first..=ack.seq).map(|seq| Appended { seq, duplicate: false }).collect())
    }

    /// Publishes a chain (see the module docs) and gathers one answer per message;
    /// [`ChainAnswer::Missing`] for those not answered within [`REQUEST_TIMEOUT`], or
    /// before the client lost its connection.
    async fn send_chain(&self, batch: &[AppendRequest], after: u64) -> Result<Vec<ChainAnswer>, SendError> {
        let inbox = self.client.new_inbox();
        let mut replies =
            self.client.subscribe(format!("{inbox}.*")).await.map_err(|e| SendError::Unavailable(e.to_string()))?;
        for (index, request) in batch.iter().enumerate() {
            let mut headers = message_headers(request, index);
            match index {
                0 => headers.insert("Nats-Expected-Last-Sequence", after.to_string().as_str()),
                _ => headers.insert("Nats-Expected-Last-Msg-Id", batch[index - 1].msg_id.as_str()),
            }
            let published = self
                .client
                .publish_with_reply_and_headers(
                    request.subject.clone(),
                    format!("{inbox}.{index}"),
                    headers,
                    bytes::Bytes::copy_from_slice(&request.payload),
                )
                .await;
            if let Err(e) = published {
                // Those before may be on their way; nothing from here on was handed to the client.
                return Err(if index == 0 {
                    SendError::Unavailable(e.to_string())
                } else {
                    SendError::MaybeLanded(e.to_string())
                });
            }
        }
        let mut answers: Vec<ChainAnswer> = (0..batch.len()).map(|_| ChainAnswer::Missing).collect();
        let mut answered = 0;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        while answered < batch.len() {
            // Missing answers are looked up (see `publish_chain`): at once if the connection was lost.
            let next = self.answer_or_disconnect(tokio::time::timeout_at(deadline, replies.next())).await;
            let Some(Ok(Some(reply))) = next else { break };
            let Some(index) = reply.subject.rsplit('.').next().and_then(|t| t.parse::<usize>().ok()) else { continue };
            let Some(slot) = answers.get_mut(index) else { continue };
            if !matches!(slot, ChainAnswer::Missing) {
                continue;
            }
            *slot = if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                ChainAnswer::NoResponders
            } else {
                let ack: ApiReply<PubAck> = serde_json::from_slice(&reply.payload)
                    .map_err(|e| SendError::Protocol(format!("unreadable pub ack: {e}")))?;
                match ack.into_result() {
                    Ok(ack) => ChainAnswer::Stored(Appended { seq: ack.seq, duplicate: ack.duplicate }),
                    Err(error) => ChainAnswer::Refused(error),
                }
            };
            answered += 1;
        }
        Ok(answers)
    }

    /// Sends a chain as plain publishes (see the module docs). It is sent again only
    /// while nothing of it can have been sent; once a message may have landed, what
    /// landed is read from the log (a resend's first message would be refused as
    /// stale by the messages of the first send that did land).
    async fn publish_chain(&self, batch: Vec<AppendRequest>, after: u64) -> Result<Vec<Appended>, AppendError> {
        let mut backoff = RETRY_BACKOFF_INITIAL;
        let mut last_cause = String::new();
        for attempt in 1..=APPEND_ATTEMPTS_MAX {
            let cause = match self.send_chain(&batch, after).await {
                Ok(answers) => match chain_outcome(&batch, after, answers) {
                    Ok(outcome) => return outcome,
                    Err(cause) => cause,
                },
                Err(SendError::Unavailable(cause)) => {
                    last_cause = cause;
                    if attempt < APPEND_ATTEMPTS_MAX {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                    continue;
                }
                Err(SendError::MaybeLanded(cause)) => cause,
                Err(SendError::Protocol(cause)) => return Err(AppendError::Log(LogError::Unavailable { cause })),
                Err(SendError::Api(error)) => return Err(AppendError::Log(error.into_log_error())),
            };
            return self.look_up_chain(&batch, after, cause).await;
        }
        Err(AppendError::Log(LogError::Unavailable {
            cause: format!("chain not sent in {APPEND_ATTEMPTS_MAX} attempts: {last_cause}"),
        }))
    }

    /// What landed of a chain not fully answered, read from the log: its ids looked up
    /// among the messages after its start (a message of the chain lands only right
    /// after the one before it, so one still on its way cannot land out of place later).
    async fn look_up_chain(
        &self,
        batch: &[AppendRequest],
        after: u64,
        cause: String,
    ) -> Result<Vec<Appended>, AppendError> {
        tracing::warn!(%cause, "chain not fully answered; looking its messages up");
        let ids: Vec<&str> = batch.iter().map(|r| r.msg_id.as_str()).collect();
        let mut backoff = RETRY_BACKOFF_INITIAL;
        let mut last_cause = cause.clone();
        for _ in 0..APPEND_ATTEMPTS_MAX {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            match self.find_msg_ids_after(&ids, after).await {
                Ok(found) => return chain_found(batch, after, &found, &cause),
                Err(e) => last_cause = format!("{cause}; looking the chain up: {e}"),
            }
        }
        tracing::warn!(cause = %last_cause, "chain outcome unknown");
        Err(AppendError::UnknownOutcome {
            msg_ids: batch.iter().map(|r| r.msg_id.clone()).collect(),
            attempts: APPEND_ATTEMPTS_MAX,
        })
    }

    /// Waits for `answer` unless the client loses its connection first (`None`): the
    /// server that took the request can no longer answer it (a reply goes to the
    /// connection that asked, and the client reconnects elsewhere), so the caller resends
    /// or looks up at once instead of waiting out [`REQUEST_TIMEOUT`] — the most of a
    /// node kill's outage for the replicas connected to that node (`docs/reliability.md`).
    async fn answer_or_disconnect<T>(&self, answer: impl std::future::Future<Output = T>) -> Option<T> {
        let mut disconnects = self.disconnects.clone();
        disconnects.borrow_and_update();
        tokio::select! {
            answer = answer => Some(answer),
            Ok(()) = disconnects.changed() => {
                self.answers_lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }

    /// Sends one message as a request; `None` for an empty (batch-started) answer.
    async fn request_ack(&self, request: &AppendRequest, headers: HeaderMap) -> Result<Option<PubAck>, SendError> {
        let nats_request = async_nats::Request::new()
            .headers(headers)
            .payload(bytes::Bytes::copy_from_slice(&request.payload))
            .timeout(Some(REQUEST_TIMEOUT));
        let answer = self.answer_or_disconnect(self.client.send_request(request.subject.clone(), nats_request)).await;
        let Some(answer) = answer else {
            return Err(SendError::MaybeLanded(CONNECTION_LOST.into()));
        };
        let reply = answer.map_err(|e| match e.kind() {
            // The server answered that nothing listens: JetStream did not take it.
            async_nats::RequestErrorKind::NoResponders => SendError::Unavailable(e.to_string()),
            // Anything else (a timeout, a connection lost while the client holds the
            // message to resend on reconnect) may still land.
            _ => SendError::MaybeLanded(e.to_string()),
        })?;
        if reply.payload.is_empty() {
            return Ok(None);
        }
        let ack: ApiReply<PubAck> = serde_json::from_slice(&reply.payload)
            .map_err(|e| SendError::Protocol(format!("unreadable pub ack: {e}")))?;
        ack.into_result().map(Some).map_err(SendError::Api)
    }

    /// After a duplicate or conflict answer: decides what the contract reports, by
    /// looking the batch's ids up among the messages that could hold them.
    ///
    /// After a lost race, a batch with expectations could only have landed after
    /// the lowest sequence it expected (an expectation that held at the first send
    /// put the batch beyond it), so only those messages are scanned: usually a
    /// handful, where a backward scan of the duplicate window could read
    /// thousands on every lost race.
    async fn resolve_refusal(&self, batch: &[AppendRequest], error: ApiError) -> Result<Vec<Appended>, AppendError> {
        let ids: Vec<&str> = batch.iter().map(|r| r.msg_id.as_str()).collect();
        let lowest_expected = batch.iter().filter_map(|r| r.expect.as_ref().map(|e| e.last_seq)).min();
        let found = match lowest_expected {
            Some(after) if err_code::is_lost_race(error.err_code) => self.find_msg_ids_after(&ids, after).await?,
            _ => self.find_recent_msg_ids(&ids).await?,
        };
        if found.len() == ids.len() {
            let appended: Vec<Appended> = ids.iter().map(|id| Appended { seq: found[*id], duplicate: true }).collect();
            check_appended(batch.len(), &appended);
            return Ok(appended);
        }
        if !found.is_empty() {
            let (stored, new) = ids.iter().map(|id| id.to_string()).partition(|id| found.contains_key(id));
            return Err(AppendError::PartialDuplicate { stored, new });
        }
        if err_code::is_lost_race(error.err_code) {
            return Err(self.conflict(batch, &error).await?);
        }
        Err(AppendError::Log(error.into_log_error()))
    }

    /// The error for a lost race: [`AppendError::Conflict`] naming the first
    /// expectation of the batch that no longer holds, or
    /// [`AppendError::Contended`] when every one holds again by the time it is
    /// looked at (the server refused while another append to the same history
    /// was in flight, or could not check yet).
    async fn conflict(&self, batch: &[AppendRequest], error: &ApiError) -> Result<AppendError, LogError> {
        for expect in batch.iter().filter_map(|r| r.expect.as_ref()) {
            let actual = self.last_subject_seq(&expect.filter).await?;
            if actual != expect.last_seq {
                return Ok(AppendError::Conflict { filter: expect.filter.clone(), expected: expect.last_seq, actual });
            }
        }
        Ok(AppendError::Contended { description: format!("{} (error code {})", error.description, error.err_code) })
    }

    /// Looks ids up among the messages after sequence `after` (at most the newest
    /// [`DEDUP_SCAN_MESSAGES_MAX`] of them), stopping when all are found.
    async fn find_msg_ids_after(&self, ids: &[&str], after: u64) -> Result<HashMap<String, u64>, LogError> {
        let mut found = HashMap::new();
        let last = self.last_seq().await?;
        if last <= after {
            return Ok(found);
        }
        let low = (after + 1).max(last.saturating_sub(DEDUP_SCAN_MESSAGES_MAX - 1));
        let mut messages = follower::follow(self.context.clone(), EVENT_STREAM, low);
        for seq in low..=last {
            let next = tokio::time::timeout(REQUEST_TIMEOUT, messages.next())
                .await
                .map_err(|_| LogError::Unavailable { cause: format!("reading sequence {seq}: timed out") })?;
            let (message, _) = next.ok_or_else(|| LogError::Unavailable { cause: "message stream ended".into() })??;
            if ids.contains(&message.msg_id.as_str()) {
                found.insert(message.msg_id.clone(), message.seq);
                if found.len() == ids.len() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Looks ids up among the most recent messages, newest first, stopping when all are
    /// found, at messages older than the duplicate window (by server timestamps), or after
    /// [`DEDUP_SCAN_MESSAGES_MAX`] messages. Answers id → sequence for those found.
    async fn find_recent_msg_ids(&self, ids: &[&str]) -> Result<HashMap<String, u64>, LogError> {
        let mut found = HashMap::new();
        let mut high = self.last_seq().await?;
        let mut chunk = DEDUP_SCAN_CHUNK_INITIAL;
        let mut scanned = 0;
        let mut newest_unix_ms: Option<i128> = None;
        let window_ms = (self.settings.duplicate_window + DEDUP_WINDOW_SLACK).as_millis() as i128;
        while high >= 1 && scanned < DEDUP_SCAN_MESSAGES_MAX {
            let low = high.saturating_sub(chunk - 1).max(1);
            let messages = self.read_timed(low, (high - low + 1) as usize).await?;
            scanned += messages.len() as u64;
            let newest = *newest_unix_ms.get_or_insert_with(|| messages.last().map(|(_, t)| *t).unwrap_or(i128::MAX));
            for (message, _) in &messages {
                if ids.contains(&message.msg_id.as_str()) {
                    found.insert(message.msg_id.clone(), message.seq);
                }
            }
            let oldest = messages.first().map(|(_, t)| *t).unwrap_or(i128::MIN);
            if found.len() == ids.len() || newest - oldest > window_ms {
                break;
            }
            high = low - 1;
            chunk = (chunk * 4).min(DEDUP_SCAN_CHUNK_MAX);
        }
        Ok(found)
    }

    /// `count` messages from `from_seq` on (all must exist), each with its server
    /// timestamp in Unix milliseconds. One consumer, deleted when done.
    async fn read_timed(&self, from_seq: u64, count: usize) -> Result<Vec<(StoredMessage, i128)>, LogError> {
        assert!(from_seq >= 1);
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut messages = follower::follow(self.context.clone(), EVENT_STREAM, from_seq);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let next = tokio::time::timeout(REQUEST_TIMEOUT, messages.next()).await.map_err(|_| {
                LogError::Unavailable { cause: format!("reading sequence {}: timed out", from_seq + out.len() as u64) }
            })?;
            let message = next.ok_or_else(|| LogError::Unavailable { cause: "message stream ended".into() })??;
            assert_eq!(message.0.seq, from_seq + out.len() as u64, "the follower reads in order, without gaps");
            out.push(message);
        }
        Ok(out)
    }
}

#[async_trait]
impl EventLog for JetStreamLog {
    async fn append_batch(&self, batch: Vec<AppendRequest>) -> Result<Vec<Appended>, AppendError> {
        validate_batch(&batch)?;
        let mut maybe_landed = false;
        let mut backoff = RETRY_BACKOFF_INITIAL;
        let mut last_cause = String::new();
        for attempt in 1..=APPEND_ATTEMPTS_MAX {
            match self.send_batch(&batch).await {
                Ok(appended) => {
                    check_appended(batch.len(), &appended);
                    return Ok(appended);
                }
                Err(SendError::Api(error))
                    if error.err_code == err_code::BATCH_DUPLICATE_MSG_ID || err_code::is_lost_race(error.err_code) =>
                {
                    return self.resolve_refusal(&batch, error).await;
                }
                Err(SendError::Api(error)) => return Err(AppendError::Log(error.into_log_error())),
                Err(SendError::Protocol(cause)) => {
                    // The server answered something we do not understand: the batch may
                    // have landed. Do not resend blindly.
                    return Err(AppendError::Log(LogError::Unavailable { cause }));
                }
                Err(SendError::MaybeLanded(cause)) => {
                    maybe_landed = true;
                    last_cause = cause;
                }
                Err(SendError::Unavailable(cause)) => last_cause = cause,
            }
            tracing::warn!(attempt, cause = %last_cause, "append not acknowledged; resending with the same msg ids");
            if attempt < APPEND_ATTEMPTS_MAX {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        if maybe_landed {
            return Err(AppendError::UnknownOutcome {
                msg_ids: batch.iter().map(|r| r.msg_id.clone()).collect(),
                attempts: APPEND_ATTEMPTS_MAX,
            });
        }
        Err(AppendError::Log(LogError::Unavailable {
            cause: format!("append failed {APPEND_ATTEMPTS_MAX} times: {last_cause}"),
        }))
    }

    async fn append_chain(&self, batch: Vec<AppendRequest>, after: u64) -> Result<Vec<Appended>, AppendError> {
        validate_chain(&batch)?;
        let way = match self.settings.chains {
            ChainWay::Measured => self.chain_ways.pick(batch.len()),
            ChainWay::Publishes => Way::Publishes,
            ChainWay::Batch => Way::Batch,
        };
        let (messages, started) = (batch.len(), std::time::Instant::now());
        let appended = match way {
            Way::Publishes => self.publish_chain(batch, after).await,
            Way::Batch => self.append_batch(chain_as_batch(batch, after)).await.map_err(chain_error),
        };
        if appended.is_ok() {
            self.chain_ways.record(way, messages, started.elapsed());
        }
        appended
    }

    async fn read(&self, from_seq: u64, max: usize) -> Result<Vec<StoredMessage>, LogError> {
        let from_seq = from_seq.max(1);
        let last = self.last_seq().await?;
        if from_seq > last || max == 0 {
            return Ok(Vec::new());
        }
        let count = (last - from_seq + 1).min(max.min(READ_MESSAGES_MAX) as u64) as usize;
        let messages = self.read_timed(from_seq, count).await?;
        Ok(messages.into_iter().map(|(m, _)| m).collect())
    }

    async fn follow(&self, from_seq: u64) -> Result<BoxStream<'static, Result<StoredMessage, LogError>>, LogError> {
        let messages = follower::follow(self.context.clone(), EVENT_STREAM, from_seq.max(1));
        Ok(messages.map(|item| item.map(|(message, _)| message)).boxed())
    }

    async fn last_seq(&self) -> Result<u64, LogError> {
        let subject = format!("$JS.API.STREAM.INFO.{EVENT_STREAM}");
        let reply: ApiReply<StreamInfoReply> = self.api_request(&subject, b"").await?;
        let info = reply.into_result().map_err(ApiError::into_log_error)?;
        Ok(info.state.last_seq)
    }

    async fn last_subject_seq(&self, filter: &str) -> Result<u64, LogError> {
        subject::validate_filter(filter).map_err(|e| LogError::Invalid(e.to_string()))?;
        if covers_every_event(filter) {
            return self.last_seq().await; // every message matches: O(1), not a walk of all subjects
        }
        let found = self.last_by_subject(EVENT_STREAM, filter).await?;
        Ok(found.map_or(0, |m| m.seq))
    }
}

#[async_trait]
impl CheckpointLog for JetStreamLog {
    async fn publish_checkpoint(&self, checkpoint: Vec<u8>) -> Result<u64, AppendError> {
        validate_checkpoint(&checkpoint)?;
        let ack = self
            .context
            .publish(CHECKPOINT_SUBJECT, checkpoint.into())
            .await
            .map_err(|e| LogError::Unavailable { cause: e.to_string() })?
            .await
            .map_err(|e| LogError::Unavailable { cause: e.to_string() })?;
        Ok(ack.sequence)
    }

    async fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, LogError> {
        let found = self.last_by_subject(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT).await?;
        found
            .map(|m| {
                base64::engine::general_purpose::STANDARD
                    .decode(m.data.unwrap_or_default())
                    .map_err(|e| LogError::Corrupt(format!("checkpoint {}: {e}", m.seq)))
            })
            .transpose()
    }
}

/// The events stream as FundTrail creates it.
pub fn event_stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: EVENT_STREAM.into(),
        description: Some("FundTrail events: signed DSSE envelopes, append-only".into()),
        subjects: EVENT_SUBJECTS.iter().map(|s| s.to_string()).collect(),
        max_message_size: (MESSAGE_SIZE_MAX + HEADERS_SIZE_MAX) as i32,
        ..durable_stream_config(settings)
    }
}

/// The checkpoints stream as FundTrail creates it.
pub fn checkpoint_stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: CHECKPOINT_STREAM.into(),
        description: Some("FundTrail signed ledger checkpoints, append-only".into()),
        subjects: vec![CHECKPOINT_SUBJECT.into()],
        max_message_size: (CHECKPOINT_SIZE_MAX + HEADERS_SIZE_MAX) as i32,
        ..durable_stream_config(settings)
    }
}

fn durable_stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        max_age: Duration::ZERO,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_atomic_publish: true,
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// Every way `found` is weaker than `wanted` (both FundTrail streams), as sentences
/// naming the stream: "stream FUNDTRAIL allows purge". Empty when `found` is as strong.
pub fn stream_weaknesses(found: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut weak = Vec::new();
    let name = &wanted.name;
    let mut say = |what: String| weak.push(format!("stream {name} {what}"));
    let sorted = |subjects: &[String]| {
        let mut subjects = subjects.to_vec();
        subjects.sort();
        subjects
    };
    if sorted(&found.subjects) != sorted(&wanted.subjects) {
        say(format!("has subjects {:?}, not {:?}", found.subjects, wanted.subjects));
    }
    if found.storage != stream::StorageType::File {
        say("is not file-backed (memory storage loses everything on restart)".into());
    }
    if found.retention != stream::RetentionPolicy::Limits {
        say(format!("has retention {:?}, which removes messages once consumed", found.retention));
    }
    if !found.deny_delete {
        say("allows deleting messages (deny_delete is off)".into());
    }
    if !found.deny_purge {
        say("allows purge (deny_purge is off)".into());
    }
    if found.allow_rollup {
        say("allows rollups, which purge history".into());
    }
    if found.discard != stream::DiscardPolicy::New {
        say("discards old messages when full (discard is not new)".into());
    }
    if found.max_messages > 0 {
        say(format!("limits messages to {}", found.max_messages));
    }
    if found.max_bytes > 0 {
        say(format!("limits bytes to {}", found.max_bytes));
    }
    if found.max_messages_per_subject > 0 {
        say(format!("limits messages per subject to {}", found.max_messages_per_subject));
    }
    if !found.max_age.is_zero() {
        say(format!("expires messages after {:?}", found.max_age));
    }
    if found.allow_message_ttl || found.subject_delete_marker_ttl.is_some() {
        say("allows per-message TTLs, which delete messages".into());
    }
    if found.allow_message_counter {
        say("is a counter stream".into());
    }
    if found.sealed {
        say("is sealed (refuses appends)".into());
    }
    if found.no_ack {
        say("does not acknowledge publishes (no_ack)".into());
    }
    if !found.allow_atomic_publish {
        say("does not allow atomic batch publish (allow_atomic is off)".into());
    }
    if found.num_replicas < wanted.num_replicas {
        say(format!("has {} replicas, fewer than {}", found.num_replicas, wanted.num_replicas));
    }
    if found.duplicate_window < wanted.duplicate_window {
        say(format!("remembers msg ids for {:?}, less than {:?}", found.duplicate_window, wanted.duplicate_window));
    }
    if found.max_message_size > 0 && found.max_message_size < wanted.max_message_size {
        say(format!(
            "refuses messages over {} bytes, below the {} needed",
            found.max_message_size, wanted.max_message_size
        ));
    }
    if found.mirror.is_some() || found.sources.is_some() {
        say("is a mirror or has sources".into());
    }
    weak
}

/// `found` with the subjects of `wanted` if that is all it lacks: every subject it
/// has is wanted, some wanted one is missing, and no other setting is weaker.
pub fn with_missing_subjects(found: &stream::Config, wanted: &stream::Config) -> Option<stream::Config> {
    let subset = found.subjects.iter().all(|s| wanted.subjects.contains(s));
    if !subset || found.subjects.len() >= wanted.subjects.len() {
        return None;
    }
    let updated = stream::Config { subjects: wanted.subjects.clone(), ..found.clone() };
    stream_weaknesses(&updated, wanted).is_empty().then_some(updated)
}

/// The headers of message `index` of a batch: its id and its expectation.
///
/// An expectation over the whole stream's subjects is the stream's last
/// sequence. On a batch's first message it is sent as
/// `Nats-Expected-Last-Sequence`, which the server answers in O(1); the
/// wildcard form makes it visit every subject of the stream, and a
/// fund's wildcard every subject of the fund (one per donation).
fn message_headers(request: &AppendRequest, index: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", request.msg_id.as_str());
    if let Some(expect) = &request.expect {
        if index == 0 && covers_every_event(&expect.filter) {
            headers.insert("Nats-Expected-Last-Sequence", expect.last_seq.to_string().as_str());
        } else {
            headers.insert("Nats-Expected-Last-Subject-Sequence", expect.last_seq.to_string().as_str());
            headers.insert("Nats-Expected-Last-Subject-Sequence-Subject", expect.filter.as_str());
        }
    }
    headers
}

/// Why an append stopped waiting for its answer before [`REQUEST_TIMEOUT`].
const CONNECTION_LOST: &str = "the connection to the NATS server was lost while waiting for the answer";

/// The server's answer to one message of a chain.
#[derive(Debug)]
enum ChainAnswer {
    Stored(Appended),
    Refused(ApiError),
    /// Nothing took the message (no stream listening on its subject, a leader change).
    NoResponders,
    /// No answer in time: it may or may not have landed.
    Missing,
}

/// What a fully answered chain did. `Err` (a cause) when an answer is missing or
/// no one took a message: then the log is read to know what landed.
fn chain_outcome(
    batch: &[AppendRequest],
    after: u64,
    answers: Vec<ChainAnswer>,
) -> Result<Result<Vec<Appended>, AppendError>, String> {
    let landed: Vec<Appended> =
        answers.iter().map_while(|a| if let ChainAnswer::Stored(a) = a { Some(*a) } else { None }).collect();
    if !in_chain_order(after, &landed) {
        return Ok(Err(AppendError::Log(LogError::Unavailable {
            cause: format!("a chain after sequence {after} was answered out of order: {landed:?}"),
        })));
    }
    if landed.len() == batch.len() {
        return Ok(Ok(landed));
    }
    let rest = &answers[landed.len()..];
    if rest.iter().any(|a| matches!(a, ChainAnswer::Missing | ChainAnswer::NoResponders)) {
        return Err(format!(
            "{} of {} messages answered",
            answers.iter().filter(|a| !matches!(a, ChainAnswer::Missing)).count(),
            answers.len()
        ));
    }
    if let Some(late) = rest.iter().position(|a| matches!(a, ChainAnswer::Stored(a) if !a.duplicate)) {
        // Only a message stored under the id of an earlier one of the chain, by another
        // writer, lets a later one land after an earlier one did not: report nothing
        // as landed; the log is read as it is.
        return Ok(Err(AppendError::Log(LogError::Unavailable {
            cause: format!(
                "message {} of a chain landed after message {} did not; another writer used its id",
                landed.len() + late + 1,
                landed.len() + 1
            ),
        })));
    }
    let ChainAnswer::Refused(error) = &rest[0] else { unreachable!("the first message not stored was refused") };
    let broken = err_code::is_lost_race(error.err_code) || error.err_code == err_code::WRONG_LAST_MSG_ID;
    if landed.is_empty() && !broken {
        return Ok(Err(AppendError::Log(error.clone().into_log_error())));
    }
    let cause = format!("{} (error code {})", error.description, error.err_code);
    Ok(Err(AppendError::ChainBroken { landed, cause }))
}

/// What landed of a chain, looked up in the log by id after its start.
fn chain_found(
    batch: &[AppendRequest],
    after: u64,
    found: &HashMap<String, u64>,
    cause: &str,
) -> Result<Vec<Appended>, AppendError> {
    let landed: Vec<Appended> = batch
        .iter()
        .zip(after + 1..)
        .map_while(|(r, seq)| (found.get(&r.msg_id) == Some(&seq)).then_some(Appended { seq, duplicate: false }))
        .collect();
    if found.len() > landed.len() {
        return Err(AppendError::Log(LogError::Unavailable {
            cause: format!("{cause}; the log holds messages of the chain out of its order"),
        }));
    }
    if landed.len() == batch.len() {
        return Ok(landed);
    }
    Err(AppendError::ChainBroken { landed, cause: format!("{cause}; the rest are not in the log") })
}

/// True if the new messages among a chain's answers are at consecutive sequences
/// from `after + 1`, in order (a duplicate was stored before and takes none).
fn in_chain_order(after: u64, landed: &[Appended]) -> bool {
    landed.iter().filter(|a| !a.duplicate).zip(after + 1..).all(|(a, expected)| a.seq == expected)
}

/// A batch id unique enough across processes and restarts (≤ 64 characters).
fn new_batch_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ft-{:x}-{nanos:x}-{count:x}", std::process::id())
}

/// The error part of a JetStream API answer.
#[derive(Clone, Debug, Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

impl ApiError {
    fn into_log_error(self) -> LogError {
        LogError::Refused { code: self.code, err_code: self.err_code, description: self.description }
    }
}

/// A JetStream API answer: the payload, or `error`.
#[derive(Debug, Deserialize)]
struct ApiReply<T> {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(flatten)]
    ok: Option<T>,
}

impl<T> ApiReply<T> {
    fn into_result(self) -> Result<T, ApiError> {
        match (self.error, self.ok) {
            (Some(error), _) => Err(error),
            (None, Some(ok)) => Ok(ok),
            (None, None) => {
                Err(ApiError { code: 0, err_code: 0, description: "answer has neither a result nor an error".into() })
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct PubAck {
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct StreamInfoReply {
    config: stream::Config,
    state: StreamState,
}

#[derive(Debug, Deserialize)]
struct StreamState {
    last_seq: u64,
}

#[derive(Debug, Deserialize)]
struct MsgGetReply {
    message: RawStoredMessage,
}

#[derive(Debug, Deserialize)]
struct RawStoredMessage {
    seq: u64,
    #[serde(default)]
    data: Option<String>,
}

/// How one send of a batch failed.
#[derive(Debug)]
enum SendError {
    /// No answer (timed out, connection lost): the batch may have landed, now or later
    /// (the client resends what it buffered once it reconnects).
    MaybeLanded(String),
    /// No responder: JetStream did not take this send (an earlier one may have landed;
    /// the caller tracks that).
    Unavailable(String),
    /// The server refused it.
    Api(ApiError),
    /// An answer we cannot make sense of.
    Protocol(String),
}

impl From<ApiError> for SendError {
    fn from(error: ApiError) -> Self {
        SendError::Api(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_streams_have_no_weakness() {
        let settings = StreamSettings::default();
        for config in [event_stream_config(&settings), checkpoint_stream_config(&settings)] {
            assert_eq!(stream_weaknesses(&config, &config), Vec::<String>::new());
        }
    }

    #[test]
    fn each_weak_setting_is_named() {
        let wanted = event_stream_config(&StreamSettings::default());
        let found = stream::Config {
            deny_purge: false,
            deny_delete: false,
            max_age: Duration::from_secs(60),
            storage: stream::StorageType::Memory,
            ..wanted.clone()
        };
        let weak = stream_weaknesses(&found, &wanted);
        assert_eq!(weak.len(), 4, "{weak:?}");
        assert!(weak.iter().any(|w| w == "stream FUNDTRAIL allows purge (deny_purge is off)"));
    }

    #[test]
    fn only_a_stream_that_lacks_subjects_and_nothing_else_gets_them_added() {
        let wanted = event_stream_config(&StreamSettings::default());
        let v1_only = stream::Config { subjects: vec!["fundtrail.v1.*.*.*".into()], ..wanted.clone() };
        let updated = with_missing_subjects(&v1_only, &wanted).expect("v1 only: add v2");
        assert_eq!(updated.subjects, wanted.subjects);
        assert_eq!(stream_weaknesses(&updated, &wanted), Vec::<String>::new());
        // Weak in another way too: refused, not updated.
        let weak = stream::Config { deny_purge: false, ..v1_only.clone() };
        assert!(with_missing_subjects(&weak, &wanted).is_none());
        // Subjects FundTrail does not want, or none missing: not ours to change.
        let other = stream::Config { subjects: vec!["fundtrail.>".into()], ..wanted.clone() };
        assert!(with_missing_subjects(&other, &wanted).is_none());
        assert!(with_missing_subjects(&wanted, &wanted).is_none());
    }

    #[test]
    fn event_subjects_do_not_capture_checkpoints() {
        assert!(!crate::is_event_subject(CHECKPOINT_SUBJECT));
    }

    #[test]
    fn api_replies_parse() {
        let ok: ApiReply<PubAck> = serde_json::from_str(r#"{"stream":"T","seq":7,"batch":"B","count":3}"#).unwrap();
        let ack = ok.into_result().unwrap();
        assert_eq!((ack.seq, ack.count), (7, Some(3)));
        let err: ApiReply<PubAck> = serde_json::from_str(
            r#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"T","seq":0}"#,
        )
        .unwrap();
        assert_eq!(err.into_result().unwrap_err().err_code, 10071);
    }

    fn chain(n: usize) -> Vec<AppendRequest> {
        (0..n)
            .map(|i| AppendRequest {
                subject: format!("fundtrail.v2.f.donation.d{i}"),
                msg_id: format!("d{i}"),
                payload: b"{}".to_vec(),
                expect: None,
            })
            .collect()
    }

    fn stored(seq: u64) -> ChainAnswer {
        ChainAnswer::Stored(Appended { seq, duplicate: false })
    }

    fn refused(err_code: u64) -> ChainAnswer {
        ChainAnswer::Refused(ApiError { code: 400, err_code, description: format!("refused {err_code}") })
    }

    #[test]
    fn a_fully_answered_chain_is_what_its_answers_say() {
        let fresh = |seq| Appended { seq, duplicate: false };
        let landed = chain_outcome(&chain(3), 10, vec![stored(11), stored(12), stored(13)]).unwrap().unwrap();
        assert_eq!(landed, vec![fresh(11), fresh(12), fresh(13)]);
        // Broken after two: the next one's "wrong last msg ID", and the rest after it.
        let answers = vec![stored(11), stored(12), refused(10070), refused(10070)];
        match chain_outcome(&chain(4), 10, answers).unwrap() {
            Err(AppendError::ChainBroken { landed, cause }) => {
                assert_eq!(landed, vec![fresh(11), fresh(12)]);
                assert!(cause.contains("10070"), "{cause}");
            }
            other => panic!("expected ChainBroken, got {other:?}"),
        }
        // A stale start lands nothing.
        let answers = vec![refused(10071), refused(10070)];
        assert!(matches!(
            chain_outcome(&chain(2), 10, answers).unwrap(),
            Err(AppendError::ChainBroken { landed, .. }) if landed.is_empty()
        ));
        // Any other refusal of the first message is the log's error.
        assert!(matches!(
            chain_outcome(&chain(2), 10, vec![refused(10077), refused(10070)]).unwrap(),
            Err(AppendError::Log(LogError::Refused { err_code: 10077, .. }))
        ));
    }

    #[test]
    fn a_chain_answered_out_of_its_order_is_not_believed() {
        // Stored, but not right after the start.
        assert!(matches!(
            chain_outcome(&chain(2), 10, vec![stored(12), stored(13)]).unwrap(),
            Err(AppendError::Log(LogError::Unavailable { .. }))
        ));
        // A message stored after one that was refused: another writer used an id of ours.
        assert!(matches!(
            chain_outcome(&chain(3), 10, vec![stored(11), refused(10070), stored(13)]).unwrap(),
            Err(AppendError::Log(LogError::Unavailable { .. }))
        ));
    }

    #[test]
    fn a_chain_not_fully_answered_is_looked_up() {
        let cause = chain_outcome(&chain(3), 10, vec![stored(11), ChainAnswer::Missing, ChainAnswer::Missing]);
        assert!(cause.is_err(), "missing answers are looked up in the log");
        let cause = chain_outcome(&chain(2), 10, vec![ChainAnswer::NoResponders, refused(10070)]);
        assert!(cause.is_err(), "no responders: looked up");
        let found = |ids: &[(&str, u64)]| ids.iter().map(|(id, seq)| (id.to_string(), *seq)).collect();
        let fresh = |seq| Appended { seq, duplicate: false };
        assert_eq!(
            chain_found(&chain(2), 10, &found(&[("d0", 11), ("d1", 12)]), "timed out").unwrap(),
            vec![fresh(11), fresh(12)]
        );
        match chain_found(&chain(3), 10, &found(&[("d0", 11)]), "timed out") {
            Err(AppendError::ChainBroken { landed, .. }) => assert_eq!(landed, vec![fresh(11)]),
            other => panic!("expected ChainBroken, got {other:?}"),
        }
        assert!(matches!(
            chain_found(&chain(3), 10, &found(&[("d0", 11), ("d2", 12)]), "timed out"),
            Err(AppendError::Log(LogError::Unavailable { .. }))
        ));
        assert!(matches!(
            chain_found(&chain(2), 10, &found(&[]), "timed out"),
            Err(AppendError::ChainBroken { landed, .. }) if landed.is_empty()
        ));
    }
}
