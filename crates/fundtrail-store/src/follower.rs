//! Reading the events stream in order, from a sequence on, with one JetStream
//! consumer at a time — the reader behind [`crate::JetStreamLog`]'s `follow` and
//! bounded reads.
//!
//! Why not async-nats' ordered consumer: when it is recreated before its first
//! message arrives (a missed heartbeat, a slow server), it starts again from
//! sequence 1 (`DeliverPolicy::All`), which a strict reader can only report as a
//! gap; and the consumers it leaves behind live on the server until their
//! inactivity threshold. Here the reader keeps the next sequence it wants itself:
//!
//! - one ephemeral pull consumer (no acks, in memory, one replica) from `next`;
//! - a message below `next` (delivered again) is skipped; one above it means this
//!   consumer lost something in flight: the consumer is dropped and a new one
//!   starts at `next`. Only when two fresh consumers in a row skip `next` is the
//!   stream itself said to have a gap ([`LogError::Corrupt`]);
//! - an error (missed heartbeats, a lost connection) drops the consumer and
//!   starts a new one from `next` after a pause; after [`FOLLOW_FAILURES_MAX`]
//!   failures in a row the error is handed to the reader (which may keep
//!   reading: the next item tries again);
//! - every consumer it drops is deleted on the server at once (and would expire
//!   after [`CONSUMER_INACTIVE_THRESHOLD`] if the delete cannot reach it).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::stream::BoxStream;
use futures::StreamExt as _;

use crate::{LogError, StoredMessage, REQUEST_TIMEOUT};

/// A consumer nobody pulls from is removed by the server after this long.
pub const CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(30);
/// Failures in a row (consumer not created, stream errors) before one is reported.
pub const FOLLOW_FAILURES_MAX: u32 = 3;
/// Pause after the first failure; doubled after each further one, up to the max.
const FOLLOW_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
const FOLLOW_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Messages asked for in one pull request.
const FOLLOW_BATCH: usize = 1_000;
/// Heartbeat of a pull request (a dead connection shows after two missed ones).
const FOLLOW_HEARTBEAT: Duration = Duration::from_secs(2);
/// Lifetime of a pull request on the server.
const FOLLOW_EXPIRES: Duration = Duration::from_secs(10);

/// One message read, with its server timestamp in Unix milliseconds.
pub(crate) type Timed = (StoredMessage, i128);

/// The messages of `stream` from `from_seq` on, in order and without gaps, as
/// they are stored and as they land. The stream never ends; an item is an error
/// only after [`FOLLOW_FAILURES_MAX`] failures in a row (or a real gap).
pub(crate) fn follow(
    context: jetstream::Context,
    stream: &'static str,
    from_seq: u64,
) -> BoxStream<'static, Result<Timed, LogError>> {
    assert!(from_seq >= 1, "sequences start at 1");
    let follower = Follower { context, stream, next: from_seq, current: None, failures: 0, suspect_gap: false };
    futures::stream::unfold(follower, |mut f| async move {
        let item = f.next_item().await;
        Some((item, f))
    })
    .boxed()
}

struct Follower {
    context: jetstream::Context,
    stream: &'static str,
    /// The sequence the reader wants next.
    next: u64,
    current: Option<Current>,
    failures: u32,
    /// A fresh consumer just skipped `next`.
    suspect_gap: bool,
}

struct Current {
    _consumer: ConsumerGuard,
    messages: consumer::pull::Stream,
    delivered: bool,
}

/// Deletes its consumer on the server when dropped.
struct ConsumerGuard {
    context: jetstream::Context,
    stream: &'static str,
    name: String,
}

impl Drop for ConsumerGuard {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (context, stream, name) = (self.context.clone(), self.stream, std::mem::take(&mut self.name));
        runtime.spawn(async move {
            let deleted = tokio::time::timeout(REQUEST_TIMEOUT, context.delete_consumer_from_stream(&name, stream));
            if let Ok(Err(e)) = deleted.await {
                tracing::debug!(consumer = %name, error = %e, "could not delete a finished consumer; it expires");
            }
        });
    }
}

impl Follower {
    async fn next_item(&mut self) -> Result<Timed, LogError> {
        loop {
            if self.current.is_none() {
                match self.open().await {
                    Ok(current) => self.current = Some(current),
                    Err(e) => {
                        self.failed(e).await?;
                        continue;
                    }
                }
            }
            let current = self.current.as_mut().expect("a consumer");
            let failure = match current.messages.next().await {
                Some(Ok(message)) => {
                    let (stored, published) = decode_message(&message)?;
                    if stored.seq < self.next {
                        continue; // delivered again
                    }
                    if stored.seq > self.next {
                        let fresh = !current.delivered;
                        self.current = None;
                        if fresh && self.suspect_gap {
                            return Err(LogError::Corrupt(format!(
                                "stream {}: sequence {} is missing (two consumers started there delivered {} first)",
                                self.stream, self.next, stored.seq
                            )));
                        }
                        self.suspect_gap = fresh;
                        continue;
                    }
                    current.delivered = true;
                    self.suspect_gap = false;
                    self.failures = 0;
                    self.next += 1;
                    return Ok((stored, published));
                }
                Some(Err(e)) => format!("reading {} at {}: {e}", self.stream, self.next),
                None => format!("reading {} at {}: the consumer's stream ended", self.stream, self.next),
            };
            self.current = None;
            self.failed(LogError::Unavailable { cause: failure }).await?;
        }
    }

    /// Counts a failure: pauses, or hands the error over after too many in a row.
    async fn failed(&mut self, error: LogError) -> Result<(), LogError> {
        self.failures += 1;
        if self.failures >= FOLLOW_FAILURES_MAX {
            self.failures = 0;
            return Err(error);
        }
        tracing::debug!(%error, "following again");
        let pause = FOLLOW_BACKOFF_INITIAL.saturating_mul(1 << self.failures.min(8)).min(FOLLOW_BACKOFF_MAX);
        tokio::time::sleep(pause).await;
        Ok(())
    }

    async fn open(&self) -> Result<Current, LogError> {
        let unavailable = |e: &dyn std::fmt::Display| LogError::Unavailable {
            cause: format!("reading {} from {}: {e}", self.stream, self.next),
        };
        let stream = self.context.get_stream_no_info(self.stream).await.map_err(|e| unavailable(&e))?;
        let created = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: self.next },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: CONSUMER_INACTIVE_THRESHOLD,
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&e))?;
        let guard = ConsumerGuard {
            context: self.context.clone(),
            stream: self.stream,
            name: created.cached_info().name.clone(),
        };
        let messages = created
            .stream()
            .max_messages_per_batch(FOLLOW_BATCH)
            .heartbeat(FOLLOW_HEARTBEAT)
            .expires(FOLLOW_EXPIRES)
            .messages()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Current { _consumer: guard, messages, delivered: false })
    }
}

/// A stored message and its server timestamp (Unix milliseconds).
pub(crate) fn decode_message(message: &jetstream::Message) -> Result<Timed, LogError> {
    let info = message.info().map_err(|e| LogError::Corrupt(format!("message metadata: {e}")))?;
    let seq = info.stream_sequence;
    let published_ms = info.published.unix_timestamp_nanos() / 1_000_000;
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_string())
        .ok_or_else(|| LogError::Corrupt(format!("message {seq} has no Nats-Msg-Id")))?;
    let stored = StoredMessage { seq, subject: message.subject.to_string(), msg_id, payload: message.payload.to_vec() };
    Ok((stored, published_ms))
}
