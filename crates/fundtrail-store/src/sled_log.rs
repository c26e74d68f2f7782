//! [`SledLog`]: the event log embedded in the process, in a sled 0.34 database, for a
//! single machine with nothing installed.
//!
//! Trees: `messages` (seq → record), `msg_ids` (msg id → seq, forever: deduplication
//! never expires here), `subjects` (literal subject → its last seq), `meta`
//! (`last_seq`), `checkpoints` (seq → bytes). One writer at a time (a mutex): the
//! expectations and duplicates are decided on the trees as they are, then the batch is
//! written in one sled transaction over all trees, then flushed, then acknowledged.
//!
//! # What an acknowledged append survives
//!
//! Read from sled 0.34.7's source (`pagecache/iobuf.rs`, `flusher.rs`):
//! `Db::flush()` writes sled's log buffers with `pwrite` and, on Linux, calls
//! `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on the written range of the `db`
//! file: the data pages reach the device, but that is **not fsync**: it writes no file
//! metadata (size, newly allocated extents) and does not flush the drive's volatile
//! write cache. Sled's background flusher calls `sync_all()` (fsync) on the file every
//! `flush_every_ms` (500 ms by default). On other systems `flush()` calls `sync_all()`.
//!
//! So, with [`SledSync::SyncFileRange`] (sled's own `flush()` only):
//! - **process crash** (panic, SIGKILL, OOM kill): survives (the data is in the kernel,
//!   indeed on the device);
//! - **OS crash / power loss**: may lose appends acknowledged in the last ~500 ms (until
//!   the next background fsync), since metadata and the drive cache were not synced.
//!
//! With [`SledSync::Fsync`] (the default) the log also calls `fsync` (`File::sync_all`)
//! on the `db` file after `flush()`, before acknowledging: then an acknowledged append
//! survives process crash, OS crash and power loss, as far as the drive honours flushes
//! (as for any database). The crash test in `tests/sled_crash.rs` checks the process
//! crash case only (a child SIGKILLed mid-append, 20 times).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::{
    check_appended, covers_every_event, subject, validate_batch, validate_checkpoint, AppendError, AppendRequest,
    Appended, CheckpointLog, EventLog, LogError, StoredMessage, READ_MESSAGES_MAX,
};

/// How many messages `follow` reads per step while catching up.
const FOLLOW_READ_MESSAGES_MAX: usize = 1_000;
/// Capacity of the new-message notification channel (a lagging follower just rereads).
const NOTIFY_CAPACITY: usize = 4_096;
/// Key of the last sequence in the `meta` tree.
const META_LAST_SEQ: &[u8] = b"last_seq";

/// How hard the sled log syncs before acknowledging (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SledSync {
    /// `flush()` then `fsync` of the db file: survives power loss.
    #[default]
    Fsync,
    /// sled's `flush()` only (`sync_file_range` on Linux): survives a process crash; an
    /// OS crash or power loss may lose the last ~500 ms of acknowledged appends.
    SyncFileRange,
}

/// The event log in a sled database. Cheap to clone.
#[derive(Clone)]
pub struct SledLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    messages: sled::Tree,
    msg_ids: sled::Tree,
    subjects: sled::Tree,
    /// `prefix.>` filter → last seq of any subject under it: O(1) answers for the
    /// filters optimistic concurrency uses most (a whole fund, the whole stream).
    tails: sled::Tree,
    meta: sled::Tree,
    checkpoints: sled::Tree,
    sync: SledSync,
    db_file: PathBuf,
    /// One writer at a time: decisions and writes are not interleaved.
    writer: Mutex<()>,
    /// Tells followers the new last sequence.
    appended: tokio::sync::watch::Sender<u64>,
}

/// sled's page cache for the log (its default is 1 GiB): the log is read
/// mostly at its end.
pub const LOG_CACHE_BYTES: u64 = 64 << 20;

impl SledLog {
    /// Opens (or creates) the log in directory `path`, syncing with [`SledSync::Fsync`].
    pub fn open(path: impl AsRef<Path>) -> Result<SledLog, LogError> {
        SledLog::open_with(path, SledSync::default())
    }

    /// Opens (or creates) the log with the given sync policy, and checks it: the last
    /// sequence matches the messages stored.
    pub fn open_with(path: impl AsRef<Path>, sync: SledSync) -> Result<SledLog, LogError> {
        let path = path.as_ref();
        let db = crate::open_sled(&sled::Config::new().path(path).cache_capacity(LOG_CACHE_BYTES)).map_err(storage)?;
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        let inner = Inner {
            messages: tree("messages")?,
            msg_ids: tree("msg_ids")?,
            subjects: tree("subjects")?,
            tails: tree("tails")?,
            meta: tree("meta")?,
            checkpoints: tree("checkpoints")?,
            // sled 0.34 keeps all its data in the file `db` under its directory.
            db_file: path.join("db"),
            db,
            sync,
            writer: Mutex::new(()),
            appended: tokio::sync::watch::channel(0).0,
        };
        let last = inner.last_seq()?;
        inner.check_tail(last)?;
        inner.appended.send_replace(last);
        Ok(SledLog { inner: Arc::new(inner) })
    }

    /// Checks the whole log: sequences 1..=last, each record decodable, every id and
    /// subject indexed. For tests and `fundtrail verify`; reads everything.
    pub fn check_integrity(&self) -> Result<u64, LogError> {
        let inner = &self.inner;
        let last = inner.last_seq()?;
        let mut expected = 1;
        let mut subjects_last: HashMap<String, u64> = HashMap::new();
        for item in inner.messages.iter() {
            let (key, value) = item.map_err(storage)?;
            let seq = decode_seq(&key)?;
            if seq != expected {
                return Err(LogError::Corrupt(format!("sequence {seq} where {expected} was expected")));
            }
            let message = decode_record(seq, &value)?;
            let indexed = inner.msg_ids.get(message.msg_id.as_bytes()).map_err(storage)?;
            if indexed.as_deref().map(decode_seq).transpose()? != Some(seq) {
                return Err(LogError::Corrupt(format!("msg id {} of {seq} not indexed", message.msg_id)));
            }
            subjects_last.insert(message.subject, seq);
            expected += 1;
        }
        if expected - 1 != last {
            return Err(LogError::Corrupt(format!("last_seq {last} but {} messages", expected - 1)));
        }
        if inner.msg_ids.len() as u64 != last {
            return Err(LogError::Corrupt(format!("{} ids indexed for {last} messages", inner.msg_ids.len())));
        }
        for (subject, seq) in subjects_last {
            let indexed = inner.subjects.get(subject.as_bytes()).map_err(storage)?;
            if indexed.as_deref().map(decode_seq).transpose()? != Some(seq) {
                return Err(LogError::Corrupt(format!("last seq of {subject} not {seq}")));
            }
        }
        Ok(last)
    }

    fn append_blocking(&self, batch: &[AppendRequest]) -> Result<Vec<Appended>, AppendError> {
        let inner = &self.inner;
        let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(duplicates) = inner.duplicates(batch)? {
            return Ok(duplicates);
        }
        for expect in batch.iter().filter_map(|r| r.expect.as_ref()) {
            let actual = inner.last_subject_seq(&expect.filter)?;
            if actual != expect.last_seq {
                return Err(AppendError::Conflict { filter: expect.filter.clone(), expected: expect.last_seq, actual });
            }
        }
        let last = inner.last_seq()?;
        let first = last + 1;
        inner.write_batch(first, batch)?;
        inner.make_durable()?;
        let new_last = last + batch.len() as u64;
        inner.appended.send_replace(new_last);
        Ok((first..=new_last).map(|seq| Appended { seq, duplicate: false }).collect())
    }
}

impl Inner {
    fn last_seq(&self) -> Result<u64, LogError> {
        match self.meta.get(META_LAST_SEQ).map_err(storage)? {
            Some(bytes) => decode_seq(&bytes),
            None => Ok(0),
        }
    }

    /// Checks that the last message is `last` and nothing follows it.
    fn check_tail(&self, last: u64) -> Result<(), LogError> {
        let stored_last = match self.messages.last().map_err(storage)? {
            Some((key, _)) => decode_seq(&key)?,
            None => 0,
        };
        if stored_last != last {
            return Err(LogError::Corrupt(format!("last_seq is {last} but the last message stored is {stored_last}")));
        }
        Ok(())
    }

    /// `Some(original sequences)` if every id of the batch is stored; `None` if none is;
    /// an error if some are.
    fn duplicates(&self, batch: &[AppendRequest]) -> Result<Option<Vec<Appended>>, AppendError> {
        let mut found = Vec::new();
        for request in batch {
            let seq = self.msg_ids.get(request.msg_id.as_bytes()).map_err(storage)?;
            found.push(seq.as_deref().map(decode_seq).transpose()?);
        }
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        if found.iter().all(Option::is_some) {
            let appended: Vec<Appended> =
                found.into_iter().map(|seq| Appended { seq: seq.expect("all found"), duplicate: true }).collect();
            check_appended(batch.len(), &appended);
            return Ok(Some(appended));
        }
        let (stored, new): (Vec<_>, Vec<_>) = batch.iter().zip(&found).partition(|(_, seq)| seq.is_some());
        Err(AppendError::PartialDuplicate {
            stored: stored.into_iter().map(|(r, _)| r.msg_id.clone()).collect(),
            new: new.into_iter().map(|(r, _)| r.msg_id.clone()).collect(),
        })
    }

    /// The last sequence among subjects matching `filter`, as JetStream answers it:
    /// O(1) for a filter covering every event subject (the log's last sequence) and
    /// for `prefix.>` (the `tails` index); a `*` token is expanded into the distinct
    /// tokens stored at its place ([`Inner::tokens_at`]), so `fundtrail.*.f.>` costs
    /// one lookup per version, not a walk of the fund's subjects.
    fn last_subject_seq(&self, filter: &str) -> Result<u64, LogError> {
        if covers_every_event(filter) {
            return self.last_seq();
        }
        let tokens: Vec<&str> = filter.split('.').collect();
        self.last_matching(&mut String::new(), &tokens)
    }

    /// The last sequence among subjects that start with `prefix` (empty, or tokens
    /// each followed by `.`) and whose remaining tokens match `rest`.
    fn last_matching(&self, prefix: &mut String, rest: &[&str]) -> Result<u64, LogError> {
        let found = |value: Option<sled::IVec>| value.map_or(Ok(0), |v| decode_seq(&v));
        match rest {
            [] => {
                let subject = prefix.strip_suffix('.').expect("a filter has at least one token");
                found(self.subjects.get(subject.as_bytes()).map_err(storage)?)
            }
            [">"] if prefix.is_empty() => self.last_seq(),
            [">"] => found(self.tails.get(format!("{prefix}>").as_bytes()).map_err(storage)?),
            ["*", tail @ ..] => {
                let mut last = 0;
                for token in self.tokens_at(prefix)? {
                    let len = prefix.len();
                    prefix.push_str(&token);
                    prefix.push('.');
                    last = last.max(self.last_matching(prefix, tail)?);
                    prefix.truncate(len);
                }
                Ok(last)
            }
            [literal, tail @ ..] => {
                let len = prefix.len();
                prefix.push_str(literal);
                prefix.push('.');
                let last = self.last_matching(prefix, tail);
                prefix.truncate(len);
                last
            }
        }
    }

    /// The distinct tokens that stored subjects have right after `prefix`: a skip
    /// scan of the `subjects` index, one seek per token (past every subject that
    /// continues `prefix + token + "."`), not a read of every subject.
    fn tokens_at(&self, prefix: &str) -> Result<BTreeSet<String>, LogError> {
        let mut tokens = BTreeSet::new();
        let mut from = Bound::Included(prefix.as_bytes().to_vec());
        loop {
            let Some(item) = self.subjects.range::<Vec<u8>, _>((from, Bound::Unbounded)).next() else { break };
            let (key, _) = item.map_err(storage)?;
            let Some(rest) = key.strip_prefix(prefix.as_bytes()) else { break };
            let rest = std::str::from_utf8(rest).map_err(|_| LogError::Corrupt("subject not UTF-8".into()))?;
            let token = rest.split('.').next().unwrap_or_default().to_owned();
            from = if rest.len() > token.len() {
                // `prefix + token + "."…`: skip all of them ('/' follows '.').
                Bound::Included(format!("{prefix}{token}/").into_bytes())
            } else {
                Bound::Excluded(key.to_vec())
            };
            tokens.insert(token);
        }
        Ok(tokens)
    }

    /// Writes the batch at sequences `first..` in one transaction over all trees.
    fn write_batch(&self, first: u64, batch: &[AppendRequest]) -> Result<(), LogError> {
        let result = (&self.messages, &self.msg_ids, &self.subjects, &self.meta, &self.tails).transaction(
            |(messages, msg_ids, subjects, meta, tails)| {
                for (offset, request) in batch.iter().enumerate() {
                    let seq = first + offset as u64;
                    let key = seq.to_be_bytes();
                    messages.insert(&key, encode_record(request))?;
                    msg_ids.insert(request.msg_id.as_bytes(), &key)?;
                    subjects.insert(request.subject.as_bytes(), &key)?;
                    for (i, _) in request.subject.match_indices('.') {
                        let tail = format!("{}.>", &request.subject[..i]);
                        tails.insert(tail.as_bytes(), &key)?;
                    }
                }
                let last = first + batch.len() as u64 - 1;
                meta.insert(META_LAST_SEQ, &last.to_be_bytes())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            },
        );
        result.map_err(|e| match e {
            TransactionError::Storage(e) => storage(e),
            TransactionError::Abort(()) => LogError::Storage("transaction aborted".into()),
        })
    }

    /// Flushes before acknowledging; with [`SledSync::Fsync`] also fsyncs the db file.
    fn make_durable(&self) -> Result<(), LogError> {
        self.db.flush().map_err(storage)?;
        if self.sync == SledSync::Fsync {
            // fsync through our own descriptor syncs the same inode sled writes.
            let file = std::fs::File::open(&self.db_file)
                .map_err(|e| LogError::Storage(format!("opening {}: {e}", self.db_file.display())))?;
            file.sync_all().map_err(|e| LogError::Storage(format!("fsync {}: {e}", self.db_file.display())))?;
        }
        Ok(())
    }

    fn read(&self, from_seq: u64, max: usize) -> Result<Vec<StoredMessage>, LogError> {
        let from_seq = from_seq.max(1);
        let max = max.min(READ_MESSAGES_MAX);
        let mut out = Vec::with_capacity(max.min(1024));
        for item in self.messages.range(from_seq.to_be_bytes()..).take(max) {
            let (key, value) = item.map_err(storage)?;
            let seq = decode_seq(&key)?;
            let expected = from_seq + out.len() as u64;
            if seq != expected {
                return Err(LogError::Corrupt(format!("sequence {seq} where {expected} was expected")));
            }
            out.push(decode_record(seq, &value)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl EventLog for SledLog {
    async fn append_batch(&self, batch: Vec<AppendRequest>) -> Result<Vec<Appended>, AppendError> {
        validate_batch(&batch)?;
        let log = self.clone();
        let appended = tokio::task::spawn_blocking(move || {
            let appended = log.append_blocking(&batch)?;
            check_appended(batch.len(), &appended);
            Ok::<_, AppendError>(appended)
        })
        .await
        .map_err(|e| LogError::Storage(format!("append task failed: {e}")))??;
        Ok(appended)
    }

    async fn read(&self, from_seq: u64, max: usize) -> Result<Vec<StoredMessage>, LogError> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.inner.read(from_seq, max))
            .await
            .map_err(|e| LogError::Storage(format!("read task failed: {e}")))?
    }

    async fn follow(&self, from_seq: u64) -> Result<BoxStream<'static, Result<StoredMessage, LogError>>, LogError> {
        let (sender, receiver) = tokio::sync::mpsc::channel(NOTIFY_CAPACITY);
        let log = self.clone();
        let mut watch = self.inner.appended.subscribe();
        tokio::spawn(async move {
            let mut next_seq = from_seq.max(1);
            loop {
                let batch = log.read(next_seq, FOLLOW_READ_MESSAGES_MAX).await;
                let messages = match batch {
                    Ok(messages) => messages,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                let caught_up = messages.len() < FOLLOW_READ_MESSAGES_MAX;
                for message in messages {
                    next_seq = message.seq + 1;
                    if sender.send(Ok(message)).await.is_err() {
                        return; // The follower is gone.
                    }
                }
                if caught_up {
                    // Wait until something past what we read lands (or the log closes).
                    let wait = watch.wait_for(|last| *last >= next_seq);
                    tokio::select! {
                        changed = wait => if changed.is_err() { return },
                        () = sender.closed() => return,
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream_from(receiver)))
    }

    async fn last_seq(&self) -> Result<u64, LogError> {
        self.inner.last_seq()
    }

    async fn last_subject_seq(&self, filter: &str) -> Result<u64, LogError> {
        subject::validate_filter(filter).map_err(|e| LogError::Invalid(e.to_string()))?;
        let log = self.clone();
        let filter = filter.to_string();
        tokio::task::spawn_blocking(move || log.inner.last_subject_seq(&filter))
            .await
            .map_err(|e| LogError::Storage(format!("task failed: {e}")))?
    }
}

#[async_trait]
impl CheckpointLog for SledLog {
    async fn publish_checkpoint(&self, checkpoint: Vec<u8>) -> Result<u64, AppendError> {
        validate_checkpoint(&checkpoint)?;
        let log = self.clone();
        tokio::task::spawn_blocking(move || {
            let inner = &log.inner;
            let _writer = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let seq = match inner.checkpoints.last().map_err(storage)? {
                Some((key, _)) => decode_seq(&key)? + 1,
                None => 1,
            };
            inner.checkpoints.insert(seq.to_be_bytes(), checkpoint).map_err(storage)?;
            inner.make_durable()?;
            Ok(seq)
        })
        .await
        .map_err(|e| LogError::Storage(format!("task failed: {e}")))?
    }

    async fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, LogError> {
        let last = self.inner.checkpoints.last().map_err(storage)?;
        Ok(last.map(|(_, value)| value.to_vec()))
    }
}

/// Adapts an mpsc receiver to a `Stream`.
fn tokio_stream_from<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) })
}

fn storage(error: sled::Error) -> LogError {
    LogError::Storage(error.to_string())
}

fn decode_seq(bytes: &[u8]) -> Result<u64, LogError> {
    let array: [u8; 8] =
        bytes.try_into().map_err(|_| LogError::Corrupt(format!("a sequence of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// Record layout: subject length (u16 BE), subject, msg id length (u16 BE), msg id,
/// payload (the rest).
fn encode_record(request: &AppendRequest) -> Vec<u8> {
    let subject = request.subject.as_bytes();
    let msg_id = request.msg_id.as_bytes();
    let mut record = Vec::with_capacity(4 + subject.len() + msg_id.len() + request.payload.len());
    record.extend_from_slice(&u16::try_from(subject.len()).expect("validated subject").to_be_bytes());
    record.extend_from_slice(subject);
    record.extend_from_slice(&u16::try_from(msg_id.len()).expect("validated msg id").to_be_bytes());
    record.extend_from_slice(msg_id);
    record.extend_from_slice(&request.payload);
    record
}

fn decode_record(seq: u64, record: &[u8]) -> Result<StoredMessage, LogError> {
    let corrupt = || LogError::Corrupt(format!("record {seq} cannot be decoded"));
    let (subject, rest) = take_field(record).ok_or_else(corrupt)?;
    let (msg_id, payload) = take_field(rest).ok_or_else(corrupt)?;
    let subject = String::from_utf8(subject.to_vec()).map_err(|_| corrupt())?;
    let msg_id = String::from_utf8(msg_id.to_vec()).map_err(|_| corrupt())?;
    if !subject::is_literal(&subject) || msg_id.is_empty() {
        return Err(corrupt());
    }
    Ok(StoredMessage { seq, subject, msg_id, payload: payload.to_vec() })
}

fn take_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
    let field = bytes.get(2..2 + length)?;
    Some((field, &bytes[2 + length..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let request = AppendRequest {
            subject: "fundtrail.v1.f.p.1".into(),
            msg_id: "id-1".into(),
            payload: b"{\"x\":1}".to_vec(),
            expect: None,
        };
        let decoded = decode_record(7, &encode_record(&request)).unwrap();
        assert_eq!(decoded.seq, 7);
        assert_eq!(decoded.subject, request.subject);
        assert_eq!(decoded.msg_id, request.msg_id);
        assert_eq!(decoded.payload, request.payload);
        assert!(decode_record(1, &[0, 9, b'a']).is_err());
    }
}
