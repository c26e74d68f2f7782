//! Two pipelines on one JetStream stream, as two service replicas would run,
//! race thousands of conflicting approvals and payouts on one fund. Every
//! accepted event is valid, available cash never goes negative, and no
//! accepted update is lost.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fundtrail_domain::Fen;
use fundtrail_envelope::{ActorKey, Fold};
use fundtrail_service::*;
use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::service::ServiceSetup;
use fundtrail_testkit::NatsServer;

async fn replica(url: &str, dir: &std::path::Path, name: &str, clock: &ManualClock, log_key: &ActorKey) -> Service {
    let mut setup = ServiceSetup::nats(url, dir);
    // Chains as plain publishes, so that another writer's message can land in the
    // middle of one (an atomic batch lands whole or not at all).
    if let LogBackend::Nats { settings, .. } = &mut setup.backend {
        settings.chains = fundtrail_store::ChainWay::Publishes;
    }
    setup.projections_dir = dir.join(name);
    setup.log_seed = log_key.seed();
    setup.checkpoint_entries = 1_000;
    setup.checkpoint_interval = Duration::from_millis(200);
    setup.start(Arc::new(clock.clone())).await.expect("replica starts")
}

/// Two replicas on one fresh stream, the fund set up through the first.
struct Replicas {
    a: Service,
    b: Service,
    cast: Cast,
    t0: chrono::DateTime<Utc>,
    _nats: NatsServer,
    _dir: tempfile::TempDir,
}

async fn two_replicas() -> Replicas {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let log_key = ActorKey::generate().unwrap();
    let a = replica(&nats.url(), dir.path(), "a", &clock, &log_key).await;
    let b = replica(&nats.url(), dir.path(), "b", &clock, &log_key).await;
    let cast = Cast::new("xihu-01");
    for e in cast.setup(t0) {
        a.submit(e).await.unwrap();
    }
    Replicas { a, b, cast, t0, _nats: nats, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_overspend_and_lose_nothing() {
    let Replicas { _nats, _dir, a, b, cast, t0 } = two_replicas().await;
    // ¥5,000 in the fund; 20 proposals of ¥500 each: only 10 can be approved.
    a.submit(cast.donation(500_000, t0).1).await.unwrap();
    const PROPOSALS: usize = 20;
    for p in 0..PROPOSALS {
        for e in cast.endorsed_proposal(&format!("P-{p}"), 50_000, t0) {
            b.submit(e).await.unwrap();
        }
    }
    // Both replicas approve every proposal, then both pay out in many small
    // parts: about 2,400 commands, most of them conflicting.
    let mut commands = Vec::new();
    for p in 0..PROPOSALS {
        for replica in 0..2 {
            commands.push((replica, cast.approval(&format!("P-{p}"), 50_000, t0)));
        }
    }
    for round in 0..30 {
        for p in 0..PROPOSALS {
            for replica in 0..2 {
                commands.push((replica, cast.payout(&format!("P-{p}"), 1_000 + round, t0)));
            }
        }
    }
    let total = commands.len();
    let (ra, rb) = (&a, &b);
    let outcomes = futures::future::join_all(commands.into_iter().map(|(replica, envelope)| async move {
        let service = if replica == 0 { ra } else { rb };
        // A busy answer is an honest "retry": retry it like a client would.
        loop {
            match service.writer.submit(envelope.clone()).await {
                Err(SubmitError::Busy { .. }) => tokio::time::sleep(Duration::from_millis(5)).await,
                other => return other,
            }
        }
    }))
    .await;
    let mut accepted = HashSet::new();
    let mut refused = 0;
    for outcome in outcomes {
        match outcome {
            Ok(a) => {
                assert!(!a.duplicate);
                assert!(accepted.insert(a.seq), "two commands answered with one sequence");
            }
            Err(SubmitError::Refused(_)) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(accepted.len() + refused, total);
    assert!(
        accepted.len() > 100 && refused > 100,
        "{} accepted, {refused} refused: the race must bite",
        accepted.len()
    );

    // Replay the whole stream with a fresh fold: every message is valid, and
    // every accepted sequence is there.
    let last = a.log.last_seq().await.unwrap();
    let mut fold = Fold::new();
    let mut from = 1;
    while from <= last {
        let messages = a.log.read(from, 1_000).await.unwrap();
        for m in &messages {
            fold.apply(m.seq, Some(&m.subject), &m.payload)
                .unwrap_or_else(|e| panic!("invalid event in the stream: {e}"));
            fold.state.assert_invariants();
        }
        from += messages.len() as u64;
    }
    for seq in &accepted {
        assert!(*seq <= last);
    }
    let fund = &fold.state.funds[&cast.fund];
    let available = fund.cash.available().unwrap();
    assert!(!available.is_negative());
    let approved = fund.proposals.values().filter(|p| p.approved.is_positive()).count();
    assert_eq!(approved, 10, "exactly the affordable proposals were approved");
    // Both replicas' projections converge on the replayed state.
    for service in [&a, &b] {
        assert!(service.read.wait_applied(last, Duration::from_secs(30)).await);
        let view = service.read.fund(&cast.fund).unwrap();
        assert_eq!(view.cash.available_fen, available);
        assert_eq!(view.cash.paid_fen, fund.cash.paid);
    }
    assert_eq!(fund.cash.received, Fen::new(500_000).unwrap());
}

/// A replica whose last append just landed decides its next batch without
/// asking the log for its end; a command that depends on what another replica
/// accepted a moment ago must still be accepted, not refused on a stale view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_never_refuses_on_a_stale_view() {
    let Replicas { _nats, _dir, a, b, cast, t0 } = two_replicas().await;
    for round in 0..5 {
        // b's own append lands where b expected: b is "at the log's end".
        b.writer.submit(cast.donation(10_000, t0).1).await.unwrap();
        // a accepts a proposal and its approval that b has not read.
        let id = format!("P-{round}");
        for e in cast.endorsed_proposal(&id, 5_000, t0) {
            a.writer.submit(e).await.unwrap();
        }
        a.writer.submit(cast.approval(&id, 5_000, t0)).await.unwrap();
        // b pays it out at once.
        let paid = b.writer.submit(cast.payout(&id, 5_000, t0)).await;
        assert!(paid.is_ok(), "round {round}: a payout refused on a stale view: {paid:?}");
    }
}

/// While one replica's batch is on its way as a chain, the other appends to the same
/// fund: the chain stops at the other's message, the prefix that landed is answered and
/// the rest decided again. Every donation is accepted once, is in the log at the
/// sequence it was answered with, and is applied; nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_broken_part_way_answers_its_prefix_and_loses_nothing() {
    let Replicas { _nats, _dir, a, b, cast, t0 } = two_replicas().await;
    // The other replica gives to another fund: its expectation (that fund's history)
    // holds while the chain lands, so its message can land in the middle of the chain.
    let other_fund = fundtrail_domain::FundId::new("hubin-02").unwrap();
    for envelope in cast.open_fund(&other_fund, t0) {
        b.submit(envelope).await.unwrap();
    }
    const ROUNDS_MAX: usize = 100;
    const BURST: usize = 800;
    const INTERLOPERS: usize = 8;
    let mut answered: Vec<(u64, fundtrail_domain::EventId)> = Vec::new();
    let mut received: i64 = 0;
    let mut other_received: i64 = 0;
    let mut amount = 100i64;
    let mut next = |received: &mut i64| {
        amount += 1;
        *received += amount;
        cast.donation(amount, t0)
    };
    let start = a.writer.races();
    for round in 0..ROUNDS_MAX {
        if a.writer.races().chains_broken > start.chains_broken {
            break;
        }
        // Batches without another writer in sight put the sequencer back on chains.
        for _ in 0..sequencer::CONTENDED_BATCHES {
            let (id, envelope) = next(&mut received);
            answered.push((a.writer.submit(envelope).await.expect("accepted").seq, id));
        }
        let after = a.log.last_seq().await.unwrap();
        let burst: Vec<_> = (0..BURST).map(|_| next(&mut received)).collect();
        let interlopers: Vec<_> = (0..INTERLOPERS).map(|i| cast.donation_to(&other_fund, 10 + i as i64, t0)).collect();
        let (ra, rb) = (&a, &b);
        let on_a = futures::future::join_all(
            burst
                .into_iter()
                .map(|(id, envelope)| async move { (ra.writer.submit(envelope).await.expect("accepted"), id) }),
        );
        let on_b = async move {
            // Once the burst has begun to land, so that it lands in the middle of a chain.
            while rb.log.last_seq().await.unwrap() == after {
                tokio::task::yield_now().await;
            }
            let mut out = Vec::new();
            for (id, envelope) in interlopers {
                out.push((rb.writer.submit(envelope).await.expect("accepted"), id));
            }
            out
        };
        let (on_a, on_b) = futures::join!(on_a, on_b);
        other_received += on_b.len() as i64 * 10 + (0..INTERLOPERS as i64).sum::<i64>();
        for (accepted, id) in on_a.into_iter().chain(on_b) {
            assert!(!accepted.duplicate, "round {round}: a new donation answered as a duplicate");
            answered.push((accepted.seq, id));
        }
    }
    assert!(
        a.writer.races().chains_broken > start.chains_broken,
        "no chain broke part way in {ROUNDS_MAX} rounds: the test did not test it"
    );

    // Every answer names its own message; replayed with a fresh fold, every message
    // is valid and the fund holds exactly what was given.
    let sequences: HashSet<u64> = answered.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(sequences.len(), answered.len(), "two donations answered with one sequence");
    let last = a.log.last_seq().await.unwrap();
    let mut fold = Fold::new();
    let mut ids_at = std::collections::HashMap::new();
    let mut from = 1;
    while from <= last {
        let messages = a.log.read(from, 1_000).await.unwrap();
        for m in &messages {
            fold.apply(m.seq, Some(&m.subject), &m.payload).unwrap_or_else(|e| panic!("invalid event: {e}"));
            ids_at.insert(m.seq, m.msg_id.clone());
        }
        from += messages.len() as u64;
    }
    for (seq, id) in &answered {
        assert_eq!(ids_at.get(seq), Some(&id.to_string()), "the answer for {id} names another message");
    }
    let fund = &fold.state.funds[&cast.fund];
    assert_eq!(fund.cash.received, Fen::new(received).unwrap(), "every donation applied once");
    let other = &fold.state.funds[&other_fund];
    assert_eq!(other.cash.received, Fen::new(other_received).unwrap(), "every donation applied once");
    for service in [&a, &b] {
        assert!(service.read.wait_applied(last, Duration::from_secs(30)).await);
        assert_eq!(service.read.fund(&cast.fund).unwrap().cash.received_fen, fund.cash.received);
    }
}

/// A replica writing back to back as the only writer stops following the log (the
/// follow stream would bring back only its own messages); another replica's message,
/// appended right after, is still applied: once the first is idle it follows the log
/// again from its position. Its next donation then lands after the other's, and both
/// replicas hold every donation once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_stopped_following_still_applies_another_writers_message() {
    use futures::StreamExt as _;
    let Replicas { _nats, _dir, a, b, cast, t0 } = two_replicas().await;
    const DONATIONS: usize = 1_500;
    const SUBMITTERS: usize = 16;
    let mut received = 0i64;
    let donations: Vec<Vec<u8>> = (0..DONATIONS as i64)
        .map(|i| {
            received += 100 + i;
            cast.donation(100 + i, t0).1
        })
        .collect();
    let on_a = &a;
    let answers: Vec<_> = futures::stream::iter(donations)
        .map(|envelope| async move { on_a.writer.submit(envelope).await })
        .buffer_unordered(SUBMITTERS)
        .collect()
        .await;
    for answer in answers {
        answer.expect("accepted");
    }
    assert!(
        a.writer.follow_pauses() >= 1,
        "{DONATIONS} donations from {SUBMITTERS} submitters never paused the follow stream: the test did not test it"
    );

    // Right away, while the first replica is not following the log.
    let (_, envelope) = cast.donation(7, t0);
    let theirs = b.writer.submit(envelope).await.expect("accepted on the other replica");
    received += 7;
    assert!(
        a.read.wait_applied(theirs.seq, Duration::from_secs(10)).await,
        "the replica that stopped following never applied the other's message at {}",
        theirs.seq
    );
    let (_, envelope) = cast.donation(11, t0);
    let ours = a.writer.submit(envelope).await.expect("accepted after the other's message");
    received += 11;
    assert_eq!(ours.seq, theirs.seq + 1, "the next donation lands right after the other replica's");
    assert_eq!(a.writer.races().lost + a.writer.races().chains_broken, 0, "it had read the other's message: no race");
    for service in [&a, &b] {
        assert!(service.read.wait_applied(ours.seq, Duration::from_secs(10)).await);
        let fund = service.read.fund(&cast.fund).expect("the fund");
        assert_eq!(fund.cash.received_fen, Fen::new(received).unwrap(), "every donation applied once");
    }
}
