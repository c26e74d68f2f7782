//! `--nats`: the stream itself, read with an ordered consumer, against the published
//! checkpoint.
//!
//! For an operator or an auditor with read access to NATS: every message of the
//! `FUNDTRAIL` stream, in sequence order, becomes entry `seq − 1` exactly as the
//! ledger projection derives it (index, prev, the payload bytes as published), is
//! folded (with its subject, which must be the event's own) and appended to a tree of
//! our own. The checkpoint (from `--ledger`, else the latest in
//! `FUNDTRAIL_CHECKPOINTS`) must verify with the log key, its size must be at most the
//! stream's length, and its root must be the root of that prefix of the stream.
//!
//! Messages are read a window at a time; each window's envelopes are opened on every
//! core while the previous window is folded in order ([`crate::parallel`]).
//!
//! Read-only: no stream is created or changed; the ordered consumer is an ephemeral,
//! server-side cursor that goes away with the connection. (This module talks to
//! JetStream directly rather than through the store crate, whose `JetStreamLog`
//! creates the streams on connect, which an auditor must never do.)

use std::time::Duration;

use fundtrail_ledger::{tree_hash, Checkpoint, LogVerifier, TileHashReader};
use fundtrail_store::{NatsConnect, CHECKPOINT_STREAM, CHECKPOINT_SUBJECT, EVENT_STREAM};
use futures::StreamExt;

use crate::parallel::{apply_window, Ahead, Openers, Threads, WINDOW_ENTRIES_MAX};
use crate::report::Report;
use crate::source::{LedgerSource, TileCache};
use crate::verify::{check_previous, fail, openers, Cause, Progress, Replay, VerifyFailure, VerifyOptions};

/// Time allowed to connect to NATS.
pub const NATS_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Time allowed for one JetStream request or for the next message to arrive.
pub const NATS_READ_TIMEOUT_MS: u64 = 30_000;

fn stream_failure(index: Option<u64>, detail: impl std::fmt::Display) -> VerifyFailure {
    fail(index, Cause::Stream { detail: detail.to_string() })
}

/// Verifies the `FUNDTRAIL` stream at `nats_url` (one server, no credentials)
/// against a checkpoint; see the module docs. The report's balances are those at the
/// end of the stream.
pub fn verify_nats(
    nats_url: &str,
    ledger: Option<&dyn LedgerSource>,
    log: &LogVerifier,
    options: VerifyOptions<'_>,
) -> Result<Report, VerifyFailure> {
    let nats = NatsConnect::plain(nats_url).map_err(|e| stream_failure(None, e))?;
    verify_nats_with(&nats, ledger, log, options, Threads::available())
}

/// [`verify_nats`] on any of `nats`'s servers with its credentials and TLS (the
/// options `serve` takes), envelopes opened on `threads` threads. The outcome does
/// not depend on `threads`.
pub fn verify_nats_with(
    nats: &NatsConnect,
    ledger: Option<&dyn LedgerSource>,
    log: &LogVerifier,
    options: VerifyOptions<'_>,
    threads: Threads,
) -> Result<Report, VerifyFailure> {
    let openers = openers(threads)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| stream_failure(None, format!("starting the async runtime: {e}")))?;
    runtime.block_on(verify_nats_async(nats, ledger, log, options, &openers))
}

async fn within<T, E: std::fmt::Display>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, VerifyFailure> {
    match tokio::time::timeout(Duration::from_millis(NATS_READ_TIMEOUT_MS), future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(stream_failure(None, format!("{what}: {e}"))),
        Err(_) => Err(stream_failure(None, format!("{what}: no answer within {NATS_READ_TIMEOUT_MS} ms"))),
    }
}

async fn verify_nats_async(
    nats: &NatsConnect,
    ledger: Option<&dyn LedgerSource>,
    log: &LogVerifier,
    mut options: VerifyOptions<'_>,
    openers: &Openers,
) -> Result<Report, VerifyFailure> {
    let base = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_millis(NATS_CONNECT_TIMEOUT_MS))
        .name("fundtrail-verify");
    let client = within("connecting", fundtrail_store::nats_connect::connect(nats, base)).await?;
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = within(&format!("stream {EVENT_STREAM}"), jetstream.get_stream(EVENT_STREAM)).await?;
    let stream_length = within(&format!("stream {EVENT_STREAM} info"), stream.info()).await?.state.last_sequence;

    let note = match ledger {
        Some(source) => source.checkpoint().map_err(|e| fail(None, Cause::Fetch { source: e }))?,
        None => {
            let checkpoints =
                within(&format!("stream {CHECKPOINT_STREAM}"), jetstream.get_stream_no_info(CHECKPOINT_STREAM)).await?;
            let message = within(
                &format!("latest checkpoint in {CHECKPOINT_STREAM}"),
                checkpoints.get_last_raw_message_by_subject(CHECKPOINT_SUBJECT),
            )
            .await?;
            message.payload.to_vec()
        }
    };
    let checkpoint = log.verify_checkpoint(&note).map_err(|e| fail(None, Cause::Checkpoint(e)))?;
    let note = String::from_utf8(note).expect("a verified note is UTF-8");
    if checkpoint.size > stream_length {
        let detail =
            format!("the checkpoint has {} entries, the stream only {stream_length} messages", checkpoint.size);
        return Err(stream_failure(Some(stream_length), detail));
    }
    if let Some(previous) = &options.previous {
        check_previous_with(previous, &checkpoint, ledger)?;
    }

    let consumer = within(
        "creating an ordered consumer",
        stream.create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default()),
    )
    .await?;
    let mut messages = within("reading messages", consumer.messages()).await?;
    let mut replay = Replay::new();
    let mut report_progress = |done: u64| {
        if let Some(callback) = options.progress.as_mut() {
            callback(Progress { entries_done: done, entries_total: stream_length });
        }
    };
    report_progress(0);
    // While window w is folded here, window w + 1 (read just before) is opened on the
    // workers against the fold as it was before window w.
    let mut next_seq = 1;
    let mut opened: Option<(Messages, Vec<Ahead>)> = None;
    loop {
        let read = read_window(&mut messages, &mut next_seq, stream_length).await;
        if read.is_empty() && opened.is_none() {
            break;
        }
        if replay.fold.position() == 0 {
            // Nothing is folded yet, so no key is known and opening the next window
            // against this fold would fail on every envelope: fold the first first.
            if let Some((window, aheads)) = opened.take() {
                window.apply(aheads, openers, &mut replay, &checkpoint, &mut report_progress)?;
            }
        }
        let snapshot = replay.fold.clone();
        let envelopes = read.envelopes();
        let (applied, opened_now) = openers.open_all_while(&snapshot, &envelopes, true, || match opened.take() {
            Some((window, aheads)) => window.apply(aheads, openers, &mut replay, &checkpoint, &mut report_progress),
            None => Ok(()),
        });
        drop(envelopes);
        applied?;
        opened = (!read.is_empty()).then_some((read, opened_now));
    }
    report_progress(stream_length);
    if checkpoint.size == 0 {
        check_prefix_root(&replay, &checkpoint)?;
    }
    replay.into_report(checkpoint, note, &options)
}

/// Messages read in order, then the failure that stopped the reading, if one did: it
/// is reported only if every message before it verifies.
struct Messages {
    first_seq: u64,
    messages: Vec<async_nats::jetstream::Message>,
    failure: Option<VerifyFailure>,
}

/// Reads messages `next_seq..` up to [`WINDOW_ENTRIES_MAX`] of them and at most up to
/// `stream_length`; none after a failure.
async fn read_window(
    messages: &mut async_nats::jetstream::consumer::pull::Ordered,
    next_seq: &mut u64,
    stream_length: u64,
) -> Messages {
    let mut window = Messages { first_seq: *next_seq, messages: Vec::new(), failure: None };
    while *next_seq <= stream_length && window.messages.len() < WINDOW_ENTRIES_MAX {
        let seq = *next_seq;
        match read_message(messages, seq).await {
            Ok(message) => {
                window.messages.push(message);
                *next_seq += 1;
            }
            Err(failure) => {
                window.failure = Some(failure);
                *next_seq = stream_length + 1;
            }
        }
    }
    window
}

/// Message `seq`, which must come next.
async fn read_message(
    messages: &mut async_nats::jetstream::consumer::pull::Ordered,
    seq: u64,
) -> Result<async_nats::jetstream::Message, VerifyFailure> {
    let index = seq - 1;
    let message = match tokio::time::timeout(Duration::from_millis(NATS_READ_TIMEOUT_MS), messages.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(Some(Err(e))) => return Err(stream_failure(Some(index), format!("reading message {seq}: {e}"))),
        Ok(None) => return Err(stream_failure(Some(index), format!("the stream ended before message {seq}"))),
        Err(_) => return Err(stream_failure(Some(index), format!("message {seq}: no answer within the timeout"))),
    };
    let found = message.info().map_err(|e| stream_failure(Some(index), e))?.stream_sequence;
    if found != seq {
        return Err(stream_failure(Some(index), format!("message {found} arrived where {seq} was expected")));
    }
    Ok(message)
}

impl Messages {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.failure.is_none()
    }

    fn envelopes(&self) -> Vec<Option<&[u8]>> {
        self.messages.iter().map(|m| Some(&m.payload[..])).collect()
    }

    /// Folds every message in order (`aheads`: what opening each ahead gave), checking
    /// the checkpoint's root when its last entry is in; then the read failure, if any.
    fn apply(
        self,
        aheads: Vec<Ahead>,
        openers: &Openers,
        replay: &mut Replay,
        checkpoint: &Checkpoint,
        report_progress: &mut impl FnMut(u64),
    ) -> Result<(), VerifyFailure> {
        let envelopes = self.envelopes();
        apply_window(openers, replay, &envelopes, aheads, true, |replay, i, ahead| {
            let seq = self.first_seq + i as u64;
            let message = &self.messages[i];
            let enrolled = replay.push_envelope(message.subject.as_str(), &message.payload, ahead)?;
            if seq == checkpoint.size {
                check_prefix_root(replay, checkpoint)?;
            }
            if seq.is_multiple_of(256) {
                report_progress(seq);
            }
            Ok(enrolled)
        })?;
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// The root of the first `checkpoint.size` entries rebuilt from the stream must be the
/// signed root.
fn check_prefix_root(replay: &Replay, checkpoint: &Checkpoint) -> Result<(), VerifyFailure> {
    let computed = tree_hash(checkpoint.size, &replay.tree).expect("our own tree has every hash");
    if computed != checkpoint.root {
        return Err(fail(None, Cause::Root { size: checkpoint.size, computed, signed: checkpoint.root }));
    }
    Ok(())
}

/// Fork and rollback checks against the state; with a ledger, the consistency proof
/// from its tiles too (without one, the rebuilt tree proves it at the end).
fn check_previous_with(
    previous: &Checkpoint,
    checkpoint: &Checkpoint,
    ledger: Option<&dyn LedgerSource>,
) -> Result<(), VerifyFailure> {
    match ledger {
        Some(source) => {
            let tiles = TileCache::new(source);
            let reader = TileHashReader::new(checkpoint.size, checkpoint.root, &tiles);
            check_previous(previous, checkpoint, Some(&reader))
        }
        None => check_previous(previous, checkpoint, None),
    }
}
