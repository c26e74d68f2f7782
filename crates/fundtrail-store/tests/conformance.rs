//! One conformance suite for the `EventLog` contract, run against both backends:
//! `jetstream::*` (a fresh nats-server per test, through the testkit) and `sled::*` (a
//! fresh temp dir per test).

use std::sync::Arc;
use std::time::Duration;

use fundtrail_store::{
    AppendError, AppendRequest, Appended, CheckpointLog, EventLog, Expectation, JetStreamLog, SledLog, StreamSettings,
    BATCH_MESSAGES_MAX, MESSAGE_SIZE_MAX,
};
use futures::StreamExt as _;

/// Generous: the suite runs on a loaded 2-core machine.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(30);

/// A log under test, with whatever must live as long as it (server, temp dir).
struct Backend {
    log: Arc<dyn EventLog>,
    /// The same log as another writer sees it: its own connection to the server.
    other_writer: Arc<dyn EventLog>,
    checkpoints: Arc<dyn CheckpointLog>,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn jetstream_backend() -> Backend {
    let server = fundtrail_testkit::NatsServer::start().expect("start nats-server");
    let log = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("connect");
    let other = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("connect again");
    Backend {
        log: Arc::new(log.clone()),
        other_writer: Arc::new(other),
        checkpoints: Arc::new(log),
        _guard: Box::new(server),
    }
}

async fn sled_backend() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = SledLog::open(dir.path().join("log")).expect("open sled log");
    Backend {
        log: Arc::new(log.clone()),
        other_writer: Arc::new(log.clone()),
        checkpoints: Arc::new(log),
        _guard: Box::new(dir),
    }
}

fn event(subject: &str, msg_id: &str) -> AppendRequest {
    AppendRequest {
        subject: subject.into(),
        msg_id: msg_id.into(),
        payload: format!("envelope of {msg_id}").into_bytes(),
        expect: None,
    }
}

fn expecting(mut request: AppendRequest, filter: &str, last_seq: u64) -> AppendRequest {
    request.expect = Some(Expectation { filter: filter.into(), last_seq });
    request
}

fn fresh(seq: u64) -> Appended {
    Appended { seq, duplicate: false }
}

fn duplicate(seq: u64) -> Appended {
    Appended { seq, duplicate: true }
}

const F1_P1: &str = "fundtrail.v1.f1.proposal.p1";
const F1_P2: &str = "fundtrail.v1.f1.proposal.p2";
const F1_D1: &str = "fundtrail.v1.f1.donation.d1";
const F2_P1: &str = "fundtrail.v1.f2.proposal.p1";

async fn sequences_start_at_one_and_are_contiguous(b: Backend) {
    let log = b.log;
    assert_eq!(log.last_seq().await.unwrap(), 0);
    assert!(log.read(1, 10).await.unwrap().is_empty());
    for i in 1..=5u64 {
        let appended = log.append(event(F1_P1, &format!("e{i}"))).await.unwrap();
        assert_eq!(appended, fresh(i));
    }
    let batch = vec![event(F1_P2, "b1"), event(F2_P1, "b2"), event(F1_D1, "b3")];
    assert_eq!(log.append_batch(batch).await.unwrap(), vec![fresh(6), fresh(7), fresh(8)]);
    assert_eq!(log.last_seq().await.unwrap(), 8);
    let all = log.read(1, 100).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    assert_eq!(all[6].subject, F2_P1);
    assert_eq!(all[6].msg_id, "b2");
    assert_eq!(all[6].payload, b"envelope of b2");
}

async fn reads_ranges(b: Backend) {
    let log = b.log;
    for i in 1..=10u64 {
        log.append(event(F1_P1, &format!("e{i}"))).await.unwrap();
    }
    let middle = log.read(4, 3).await.unwrap();
    assert_eq!(middle.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert_eq!(middle[0].msg_id, "e4");
    let tail = log.read(9, 100).await.unwrap();
    assert_eq!(tail.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![9, 10]);
    assert!(log.read(11, 5).await.unwrap().is_empty());
    assert!(log.read(3, 0).await.unwrap().is_empty());
    assert_eq!(log.read(0, 1).await.unwrap()[0].seq, 1, "0 reads from the start");
}

async fn same_id_twice_is_stored_once(b: Backend) {
    let log = b.log;
    assert_eq!(log.append(event(F1_P1, "a")).await.unwrap(), fresh(1));
    assert_eq!(log.append(event(F1_P1, "b")).await.unwrap(), fresh(2));
    assert_eq!(log.append(event(F1_P1, "a")).await.unwrap(), duplicate(1));
    // Even to another subject with another payload: the id decides.
    assert_eq!(log.append(event(F2_P1, "b")).await.unwrap(), duplicate(2));
    assert_eq!(log.last_seq().await.unwrap(), 2);
    assert_eq!(log.read(1, 10).await.unwrap().len(), 2);
}

async fn resent_batch_is_a_duplicate_as_a_whole(b: Backend) {
    let log = b.log;
    log.append(event(F1_P1, "x")).await.unwrap();
    let batch = vec![event(F1_P1, "a"), event(F1_P2, "b"), event(F1_D1, "c")];
    assert_eq!(log.append_batch(batch.clone()).await.unwrap(), vec![fresh(2), fresh(3), fresh(4)]);
    let resent = log.append_batch(batch).await.unwrap();
    assert_eq!(resent, vec![duplicate(2), duplicate(3), duplicate(4)]);
    assert_eq!(log.last_seq().await.unwrap(), 4);
}

/// A client whose post to one replica timed out resends the same envelopes to
/// another, which appends them in batches of its own, with others' messages between;
/// then the first replica's resend of its batch finds them stored apart.
async fn batch_whose_events_were_stored_apart_is_a_duplicate(b: Backend) {
    let log = b.log;
    assert_eq!(log.append(event(F1_P1, "a")).await.unwrap(), fresh(1));
    assert_eq!(log.append(event(F2_P1, "between")).await.unwrap(), fresh(2));
    assert_eq!(log.append(event(F1_P2, "b")).await.unwrap(), fresh(3));
    let plain = vec![event(F1_P1, "a"), event(F1_P2, "b")];
    assert_eq!(log.append_batch(plain).await.unwrap(), vec![duplicate(1), duplicate(3)]);
    // With the expectation the first send held: a lost race that is in truth a resend.
    let expecting_first = vec![expecting(event(F1_P1, "a"), F1_P1, 0), event(F1_P2, "b")];
    assert_eq!(log.append_batch(expecting_first).await.unwrap(), vec![duplicate(1), duplicate(3)]);
    assert_eq!(log.last_seq().await.unwrap(), 3);
}

async fn batch_mixing_stored_and_new_ids_is_refused(b: Backend) {
    let log = b.log;
    log.append(event(F1_P1, "a")).await.unwrap();
    let error = log.append_batch(vec![event(F1_P1, "a"), event(F1_P1, "new")]).await.unwrap_err();
    match error {
        AppendError::PartialDuplicate { stored, new } => {
            assert_eq!(stored, vec!["a".to_string()]);
            assert_eq!(new, vec!["new".to_string()]);
        }
        other => panic!("expected PartialDuplicate, got {other:?}"),
    }
    assert_eq!(log.last_seq().await.unwrap(), 1);
}

async fn literal_expectation_passes_or_conflicts(b: Backend) {
    let log = b.log;
    let first = expecting(event(F1_P1, "a"), F1_P1, 0);
    assert_eq!(log.append(first).await.unwrap(), fresh(1));
    log.append(event(F1_P2, "other")).await.unwrap();
    let second = expecting(event(F1_P1, "b"), F1_P1, 1);
    assert_eq!(log.append(second).await.unwrap(), fresh(3));
    let stale = expecting(event(F1_P1, "c"), F1_P1, 1);
    match log.append(stale).await.unwrap_err() {
        AppendError::Conflict { filter, expected, actual } => {
            assert_eq!((filter.as_str(), expected, actual), (F1_P1, 1, 3))
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(log.last_seq().await.unwrap(), 3);
}

async fn literal_expectation_may_guard_another_subject(b: Backend) {
    let log = b.log;
    log.append(event(F1_D1, "donation")).await.unwrap();
    // The proposal's append is guarded by the donation's history.
    let guarded = expecting(event(F1_P1, "a"), F1_D1, 1);
    assert_eq!(log.append(guarded).await.unwrap(), fresh(2));
    let stale = expecting(event(F1_P1, "b"), F1_D1, 0);
    assert!(matches!(log.append(stale).await.unwrap_err(), AppendError::Conflict { expected: 0, actual: 1, .. }));
}

async fn wildcard_expectation_passes_or_conflicts(b: Backend) {
    let log = b.log;
    let fund = "fundtrail.v1.f1.>";
    assert_eq!(log.append(expecting(event(F1_P1, "a"), fund, 0)).await.unwrap(), fresh(1));
    // Another fund does not move f1's history.
    log.append(event(F2_P1, "f2")).await.unwrap();
    assert_eq!(log.append(expecting(event(F1_D1, "b"), fund, 1)).await.unwrap(), fresh(3));
    match log.append(expecting(event(F1_P2, "c"), fund, 1)).await.unwrap_err() {
        AppendError::Conflict { filter, expected, actual } => {
            assert_eq!((filter.as_str(), expected, actual), (fund, 1, 3))
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // `*` wildcards: every proposal of any fund.
    let proposals = "fundtrail.v1.*.proposal.*";
    assert_eq!(log.append(expecting(event(F1_P2, "d"), proposals, 2)).await.unwrap(), fresh(4));
    assert!(matches!(
        log.append(expecting(event(F1_P2, "e"), proposals, 2)).await.unwrap_err(),
        AppendError::Conflict { expected: 2, actual: 4, .. }
    ));
    assert_eq!(log.last_seq().await.unwrap(), 4);
}

async fn batch_with_a_stale_expectation_lands_nothing(b: Backend) {
    let log = b.log;
    log.append(event(F1_P1, "a")).await.unwrap();
    log.append(event(F1_P2, "b")).await.unwrap();
    let batch = vec![
        expecting(event(F1_D1, "c"), F1_D1, 0),
        event(F1_P1, "d"),
        expecting(event(F1_P2, "e"), F1_P2, 1), // stale: F1_P2 is at 2
    ];
    match log.append_batch(batch).await.unwrap_err() {
        AppendError::Conflict { filter, expected, actual } => {
            assert_eq!((filter.as_str(), expected, actual), (F1_P2, 1, 2))
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(log.last_seq().await.unwrap(), 2);
    assert_eq!(log.read(1, 10).await.unwrap().len(), 2);
    assert_eq!(log.last_subject_seq(F1_D1).await.unwrap(), 0);
    // The same batch with the right expectation lands whole, consecutively.
    let batch = vec![expecting(event(F1_D1, "c"), F1_D1, 0), event(F1_P1, "d"), expecting(event(F1_P2, "e"), F1_P2, 2)];
    assert_eq!(log.append_batch(batch).await.unwrap(), vec![fresh(3), fresh(4), fresh(5)]);
}

async fn batch_expectations_see_the_log_before_the_batch(b: Backend) {
    let log = b.log;
    log.append(event(F1_P1, "a")).await.unwrap();
    let fund = "fundtrail.v1.f1.>";
    // One expectation on the fund, on the first message; later messages of the batch
    // do not count against it.
    let batch = vec![expecting(event(F1_P2, "b"), fund, 1), event(F1_D1, "c"), event(F1_P1, "d")];
    assert_eq!(log.append_batch(batch).await.unwrap(), vec![fresh(2), fresh(3), fresh(4)]);
    assert_eq!(log.last_subject_seq(fund).await.unwrap(), 4);
}

/// The whole stream's subjects as a filter: the stream's last sequence (the
/// JetStream log sends it as `Nats-Expected-Last-Sequence`, answered in O(1)).
async fn whole_stream_expectation_passes_or_conflicts(b: Backend) {
    let log = b.log;
    let all = "fundtrail.v1.>";
    assert_eq!(log.append(expecting(event(F1_P1, "a"), all, 0)).await.unwrap(), fresh(1));
    let batch = vec![expecting(event(F2_P1, "b"), all, 1), event(F1_D1, "c"), event(F1_P2, "d")];
    assert_eq!(log.append_batch(batch).await.unwrap(), vec![fresh(2), fresh(3), fresh(4)]);
    // Any message anywhere moves the whole stream.
    let stale = vec![expecting(event(F1_P1, "e"), all, 3), event(F2_P1, "f")];
    match log.append_batch(stale).await.unwrap_err() {
        AppendError::Conflict { filter, expected, actual } => {
            assert_eq!((filter.as_str(), expected, actual), (all, 3, 4))
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        log.append(expecting(event(F1_P1, "g"), all, 2)).await.unwrap_err(),
        AppendError::Conflict { expected: 2, actual: 4, .. }
    ));
    assert_eq!(log.last_subject_seq(all).await.unwrap(), 4);
    assert_eq!(log.last_seq().await.unwrap(), 4);
}

async fn two_expectations_on_one_filter_are_refused(b: Backend) {
    let log = b.log;
    let batch = vec![expecting(event(F1_P1, "a"), F1_P1, 0), expecting(event(F1_P1, "b"), F1_P1, 0)];
    assert!(matches!(log.append_batch(batch).await.unwrap_err(), AppendError::InvalidBatch(_)));
    assert_eq!(log.last_seq().await.unwrap(), 0);
}

async fn resend_after_landing_is_a_duplicate_not_a_conflict(b: Backend) {
    let log = b.log;
    let request = expecting(event(F1_P1, "a"), F1_P1, 0);
    assert_eq!(log.append(request.clone()).await.unwrap(), fresh(1));
    // The expectation is stale now, but this is a resend of the same event.
    assert_eq!(log.append(request).await.unwrap(), duplicate(1));
    let batch = vec![expecting(event(F1_P2, "b"), F1_P2, 0), event(F1_D1, "c")];
    log.append_batch(batch.clone()).await.unwrap();
    assert_eq!(log.append_batch(batch).await.unwrap(), vec![duplicate(2), duplicate(3)]);
}

async fn follow_sees_existing_then_live_messages(b: Backend) {
    let log = b.log;
    for i in 1..=3 {
        log.append(event(F1_P1, &format!("old{i}"))).await.unwrap();
    }
    let mut follow = log.follow(2).await.unwrap();
    for seq in 2..=3 {
        let message = tokio::time::timeout(FOLLOW_TIMEOUT, follow.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(message.seq, seq);
    }
    let writer = log.clone();
    let append = tokio::spawn(async move {
        writer.append(event(F1_P2, "live1")).await.unwrap();
        writer.append_batch(vec![event(F1_P1, "live2"), event(F1_D1, "live3")]).await.unwrap();
    });
    for (seq, id) in [(4, "live1"), (5, "live2"), (6, "live3")] {
        let message = tokio::time::timeout(FOLLOW_TIMEOUT, follow.next()).await.unwrap().unwrap().unwrap();
        assert_eq!((message.seq, message.msg_id.as_str()), (seq, id));
    }
    append.await.unwrap();
}

async fn follow_from_an_empty_log_waits(b: Backend) {
    let log = b.log;
    let mut follow = log.follow(1).await.unwrap();
    log.append(event(F1_P1, "first")).await.unwrap();
    let message = tokio::time::timeout(FOLLOW_TIMEOUT, follow.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((message.seq, message.msg_id.as_str()), (1, "first"));
}

async fn oversized_messages_and_batches_are_refused(b: Backend) {
    let log = b.log;
    let mut big = event(F1_P1, "big");
    big.payload = vec![b'x'; MESSAGE_SIZE_MAX + 1];
    match log.append(big).await.unwrap_err() {
        AppendError::TooLarge { size, max, .. } => assert_eq!((size, max), (MESSAGE_SIZE_MAX + 1, MESSAGE_SIZE_MAX)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let mut largest = event(F1_P1, "largest");
    largest.payload = vec![b'x'; MESSAGE_SIZE_MAX];
    assert_eq!(log.append(largest).await.unwrap(), fresh(1));
    let batch: Vec<_> = (0..=BATCH_MESSAGES_MAX).map(|i| event(F1_P1, &format!("m{i}"))).collect();
    assert!(matches!(log.append_batch(batch).await.unwrap_err(), AppendError::BatchTooLarge { .. }));
    assert!(matches!(log.append_batch(vec![]).await.unwrap_err(), AppendError::InvalidBatch(_)));
    let bad_subject = event("fundtrail.v1.checkpoints", "x");
    assert!(matches!(log.append(bad_subject).await.unwrap_err(), AppendError::InvalidBatch(_)));
    assert_eq!(log.last_seq().await.unwrap(), 1);
}

async fn largest_batch_lands_whole(b: Backend) {
    let log = b.log;
    let batch: Vec<_> = (0..BATCH_MESSAGES_MAX).map(|i| event(F1_P1, &format!("m{i}"))).collect();
    let appended = log.append_batch(batch).await.unwrap();
    assert_eq!(appended.len(), BATCH_MESSAGES_MAX);
    assert_eq!(appended.last().unwrap().seq, BATCH_MESSAGES_MAX as u64);
}

async fn last_subject_seq_on_literals_and_wildcards(b: Backend) {
    let log = b.log;
    log.append(event(F1_P1, "a")).await.unwrap(); // 1
    log.append(event(F2_P1, "b")).await.unwrap(); // 2
    log.append(event(F1_D1, "c")).await.unwrap(); // 3
    log.append(event(F1_P1, "d")).await.unwrap(); // 4
    log.append(event(F2_P1, "e")).await.unwrap(); // 5
    assert_eq!(log.last_subject_seq(F1_P1).await.unwrap(), 4);
    assert_eq!(log.last_subject_seq(F1_D1).await.unwrap(), 3);
    assert_eq!(log.last_subject_seq(F1_P2).await.unwrap(), 0);
    assert_eq!(log.last_subject_seq("fundtrail.v1.f1.>").await.unwrap(), 4);
    assert_eq!(log.last_subject_seq("fundtrail.v1.f2.>").await.unwrap(), 5);
    assert_eq!(log.last_subject_seq("fundtrail.v1.f1.donation.*").await.unwrap(), 3);
    assert_eq!(log.last_subject_seq("fundtrail.v1.*.proposal.p1").await.unwrap(), 5);
    assert_eq!(log.last_subject_seq("fundtrail.v1.f3.>").await.unwrap(), 0);
    assert!(log.last_subject_seq("fundtrail..>").await.is_err());
}

/// Subjects of both versions of the contract on one log (a stream written by an
/// older release, then by this one): filters over every version, the version token
/// a wildcard, are answered alike by both backends, and dedup ignores the subject.
async fn subjects_of_every_version(b: Backend) {
    let log = b.log;
    let fund = "fundtrail.*.f1.>";
    let all = "fundtrail.*.*.*.*";
    log.append(event(F1_D1, "a")).await.unwrap(); // 1, v1
    log.append(event("fundtrail.v1.f1-x.donation.d2", "b")).await.unwrap(); // 2, a fund whose id extends f1
    log.append(event("fundtrail.v1.f1.donation.d3", "c")).await.unwrap(); // 3
    log.append(event(F2_P1, "d")).await.unwrap(); // 4
    assert_eq!(log.last_subject_seq(fund).await.unwrap(), 3);
    // The first v2 message of f1 expects the history of both versions.
    let v2 = "fundtrail.v2.f1.donation.c";
    assert!(matches!(
        log.append(expecting(event(v2, "e"), fund, 1)).await,
        Err(AppendError::Conflict { expected: 1, actual: 3, .. })
    ));
    assert_eq!(log.append(expecting(event(v2, "e"), fund, 3)).await.unwrap(), fresh(5));
    log.append(event("fundtrail.v2.f2.donation.0", "f")).await.unwrap(); // 6
    assert_eq!(log.last_subject_seq(fund).await.unwrap(), 5);
    assert_eq!(log.last_subject_seq("fundtrail.*.f1-x.>").await.unwrap(), 2);
    assert_eq!(log.last_subject_seq("fundtrail.v1.f1.>").await.unwrap(), 3);
    assert_eq!(log.last_subject_seq("fundtrail.v2.f1.>").await.unwrap(), 5);
    assert_eq!(log.last_subject_seq("fundtrail.*.*.donation.*").await.unwrap(), 6);
    assert_eq!(log.last_subject_seq("fundtrail.*.f2.proposal.p1").await.unwrap(), 4);
    assert_eq!(log.last_subject_seq("fundtrail.*.f3.>").await.unwrap(), 0);
    assert_eq!(log.last_subject_seq(all).await.unwrap(), 6);
    assert_eq!(log.append(expecting(event("fundtrail.v2.f1.donation.1", "g"), all, 6)).await.unwrap(), fresh(7));
    assert_eq!(log.last_subject_seq(fund).await.unwrap(), 7);
    // The same msg id on the other version's subject: a duplicate, stored once.
    assert_eq!(log.append(event("fundtrail.v1.f1.donation.g", "g")).await.unwrap(), duplicate(7));
    // Neither a third version nor the checkpoint subject is an event subject.
    for subject in ["fundtrail.v3.f1.donation.c", "fundtrail.v2.checkpoints"] {
        assert!(matches!(log.append(event(subject, "h")).await, Err(AppendError::InvalidBatch(_))), "{subject}");
    }
    assert_eq!(log.last_seq().await.unwrap(), 7);
}

async fn checkpoints_are_kept_apart(b: Backend) {
    let (log, checkpoints) = (b.log, b.checkpoints);
    assert_eq!(checkpoints.latest_checkpoint().await.unwrap(), None);
    log.append(event(F1_P1, "a")).await.unwrap();
    assert_eq!(checkpoints.publish_checkpoint(b"cp one".to_vec()).await.unwrap(), 1);
    assert_eq!(checkpoints.publish_checkpoint(b"cp two".to_vec()).await.unwrap(), 2);
    assert_eq!(checkpoints.latest_checkpoint().await.unwrap(), Some(b"cp two".to_vec()));
    assert_eq!(log.last_seq().await.unwrap(), 1, "checkpoints are not events");
}

/// A chain lands right after its start, in order; one whose start is stale lands
/// nothing; a chain's requests carry no expectations of their own.
async fn chain_lands_after_its_start_or_not_at_all(b: Backend) {
    let log = b.log;
    assert_eq!(log.append_chain(vec![event(F1_P1, "a")], 0).await.unwrap(), vec![fresh(1)]);
    let chain = vec![event(F2_P1, "b"), event(F1_D1, "c"), event(F1_P2, "d")];
    assert_eq!(log.append_chain(chain, 1).await.unwrap(), vec![fresh(2), fresh(3), fresh(4)]);
    match log.append_chain(vec![event(F1_P1, "e"), event(F2_P1, "f")], 3).await.unwrap_err() {
        AppendError::ChainBroken { landed, .. } => assert!(landed.is_empty(), "{landed:?}"),
        other => panic!("expected ChainBroken, got {other:?}"),
    }
    let with_expectation = vec![event(F1_P1, "g"), expecting(event(F2_P1, "h"), F2_P1, 2)];
    assert!(matches!(log.append_chain(with_expectation, 4).await.unwrap_err(), AppendError::InvalidBatch(_)));
    assert_eq!(log.last_seq().await.unwrap(), 4);
    let ids: Vec<String> = log.read(1, 10).await.unwrap().into_iter().map(|m| m.msg_id).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
}

/// Another writer appending while a chain is on its way: whatever landed of the chain
/// is a prefix of it, right after its start and in order, and is what the answer says
/// landed; nothing of the chain lands after another writer's message.
async fn a_chain_never_lands_after_another_writers_message(b: Backend) {
    let (log, other_writer) = (b.log, b.other_writer);
    const CHAIN: usize = BATCH_MESSAGES_MAX;
    for round in 0..4u64 {
        let after = log.last_seq().await.unwrap();
        let chain: Vec<AppendRequest> = (0..CHAIN)
            .map(|i| event(&format!("fundtrail.v2.f1.donation.c{round}x{i}"), &format!("c{round}x{i}")))
            .collect();
        let writer = {
            let log = other_writer.clone();
            tokio::spawn(async move {
                // Starts once the chain has begun to land, so that it lands in the middle.
                let started = std::time::Instant::now();
                while log.last_seq().await.unwrap() == after && started.elapsed() < FOLLOW_TIMEOUT {
                    tokio::task::yield_now().await;
                }
                for i in 0..20 {
                    let id = format!("o{round}x{i}");
                    log.append(event(&format!("fundtrail.v2.f2.donation.{id}"), &id)).await.unwrap();
                }
            })
        };
        let answer = log.append_chain(chain, after).await;
        writer.await.unwrap();
        let landed = match answer {
            Ok(landed) => landed,
            Err(AppendError::ChainBroken { landed, .. }) => landed,
            Err(other) => panic!("unexpected {other:?}"),
        };
        assert!(landed.iter().zip(after + 1..).all(|(a, seq)| *a == fresh(seq)), "round {round}: {landed:?}");
        let messages = log.read(after + 1, CHAIN + 40).await.unwrap();
        let ours: Vec<(u64, String)> =
            messages.iter().filter(|m| m.msg_id.starts_with('c')).map(|m| (m.seq, m.msg_id.clone())).collect();
        let expected: Vec<(u64, String)> =
            (0..landed.len()).map(|i| (after + 1 + i as u64, format!("c{round}x{i}"))).collect();
        assert_eq!(ours, expected, "round {round}: the chain's messages in the log are the prefix it answered");
        assert_eq!(messages.len(), landed.len() + 20, "round {round}: every other message landed once");
    }
}

async fn concurrent_appends_with_expectations_never_double_spend(b: Backend) {
    let log = b.log;
    let fund = "fundtrail.v1.f1.>";
    // Eight writers race to append on top of the same history; exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(expecting(event(F1_P1, &format!("w{i}")), fund, 0)).await }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(appended) => {
                assert_eq!(appended, fresh(1));
                wins += 1;
            }
            Err(AppendError::Conflict { actual: 1, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(log.last_seq().await.unwrap(), 1);
}

macro_rules! conformance {
    ($backend:ident, $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = super::backend_for(stringify!($backend)).await;
                    super::$test(backend).await;
                }
            )*
        }
    };
}

async fn backend_for(name: &str) -> Backend {
    match name {
        "jetstream" => jetstream_backend().await,
        "sled" => sled_backend().await,
        other => panic!("unknown backend {other}"),
    }
}

macro_rules! suite {
    ($($backend:ident),*) => {
        $(
            conformance!(
                $backend,
                sequences_start_at_one_and_are_contiguous,
                reads_ranges,
                same_id_twice_is_stored_once,
                resent_batch_is_a_duplicate_as_a_whole,
                batch_whose_events_were_stored_apart_is_a_duplicate,
                batch_mixing_stored_and_new_ids_is_refused,
                literal_expectation_passes_or_conflicts,
                literal_expectation_may_guard_another_subject,
                wildcard_expectation_passes_or_conflicts,
                batch_with_a_stale_expectation_lands_nothing,
                batch_expectations_see_the_log_before_the_batch,
                two_expectations_on_one_filter_are_refused,
                whole_stream_expectation_passes_or_conflicts,
                resend_after_landing_is_a_duplicate_not_a_conflict,
                follow_sees_existing_then_live_messages,
                follow_from_an_empty_log_waits,
                oversized_messages_and_batches_are_refused,
                largest_batch_lands_whole,
                last_subject_seq_on_literals_and_wildcards,
                subjects_of_every_version,
                checkpoints_are_kept_apart,
                concurrent_appends_with_expectations_never_double_spend,
                chain_lands_after_its_start_or_not_at_all,
                a_chain_never_lands_after_another_writers_message,
            );
        )*
    };
}

suite!(jetstream, sled);
