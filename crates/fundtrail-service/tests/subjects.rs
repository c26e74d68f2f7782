//! The versioned subject contract (`fundtrail_domain::subject`): a log written by an
//! older release, every event on its v1 subject (`fundtrail.v1.<fund>.donation.<event
//! id>`), replays to exactly the state it had; this release appends on v2 after it,
//! with expectations that cover both versions; on NATS the stream the older release
//! created (v1 subjects only) gets the v2 subjects added at start.

use std::sync::Arc;
use std::time::Duration;

use fundtrail_domain::event::{DonationReversed, ReceiptIssued};
use fundtrail_domain::subject::SubjectVersion;
use fundtrail_domain::{EventBody, Fen, State};
use fundtrail_envelope::Fold;
use fundtrail_service::ManualClock;
use fundtrail_store::{AppendRequest, EventLog, SledLog, StreamSettings};
use fundtrail_testkit::service::{t0, ServiceSetup, Store, TestService as Harness};
use fundtrail_testkit::NatsServer;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_log_replays_as_it_did_embedded() {
    a_v1_log_replays_as_it_did(Store::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_log_replays_as_it_did_on_nats() {
    a_v1_log_replays_as_it_did(Store::Nats).await;
}

async fn a_v1_log_replays_as_it_did(store: Store) {
    // A history accepted by a service: setup, donations, a receipt.
    let older = Harness::start(Store::Embedded).await;
    older.setup().await;
    let mut donations = Vec::new();
    for i in 1..=12 {
        let (id, envelope) = older.cast.donation(10_000 * i, t0());
        older.service.submit(envelope).await.expect("donation accepted");
        donations.push(id);
    }
    let receipt =
        EventBody::ReceiptIssued(ReceiptIssued { donation: donations[3].clone(), receipt_no: "浙财0004".into() });
    older.service.submit(older.cast.in_fund(&older.cast.treasurer, t0(), receipt)).await.expect("receipt accepted");
    let stored = older.service.log.read(1, 1_000).await.unwrap();
    let expected: State = older.service.read.state().clone();

    // The same envelopes as an older release published them: on v1 subjects.
    let mut fold = Fold::new();
    let mut requests = Vec::new();
    for message in &stored {
        let folded = fold.apply(message.seq, None, &message.payload).expect("the history folds");
        let event = &folded.event.event;
        assert_eq!(message.subject, event.subject_in(SubjectVersion::V2), "this release publishes on v2");
        requests.push(AppendRequest {
            subject: event.subject_in(SubjectVersion::V1),
            msg_id: event.id.to_string(),
            payload: message.payload.clone(),
            expect: None,
        });
    }
    assert_eq!(fold.state, expected);
    assert!(requests.iter().any(|r| r.subject.ends_with(&format!(".donation.{}", donations[0]))));

    let dir = tempfile::tempdir().unwrap();
    let nats = (store == Store::Nats).then(|| NatsServer::start().expect("nats-server"));
    let setup = match &nats {
        Some(server) => {
            write_v1_stream(&server.url(), requests).await;
            ServiceSetup::nats(&server.url(), dir.path())
        }
        None => {
            let log = SledLog::open(dir.path().join("log")).unwrap();
            log.append_batch(requests).await.expect("the v1 history");
            drop(log);
            ServiceSetup::embedded(dir.path())
        }
    };
    let last = stored.len() as u64;

    // This release on that log: the same state, nothing rejected.
    let clock = ManualClock::new(t0());
    let service = setup.clone().start(Arc::new(clock.clone())).await.expect("starts on a v1 log");
    assert!(service.read.wait_applied(last, WAIT).await);
    assert_eq!(*service.read.state(), expected);
    assert_eq!(service.read.rejected(), Vec::new());

    // A new donation: appended on v2 after the v1 history, expecting the fund's
    // last sequence over both versions (the replayed messages were another
    // writer's, so the sequencer expects per fund).
    let (id, envelope) = older.cast.donation(777, t0());
    let submitted = service.submit(envelope).await.expect("accepted after a v1 history");
    assert_eq!(submitted.accepted.seq, last + 1);
    let message = service.log.read(last + 1, 1).await.unwrap().remove(0);
    let text = id.to_text();
    let digit = &text[35..];
    assert_eq!(message.subject, format!("fundtrail.v2.{}.donation.{digit}", older.cast.fund));
    // A refund of a v1-era donation lands on that donation's v2 subject.
    let refund = EventBody::DonationReversed(DonationReversed {
        donation: donations[0].clone(),
        amount_fen: Fen::new(1_000).unwrap(),
        reason: "重复付款".into(),
    });
    let refunded = service.submit(older.cast.in_fund(&older.cast.intake, t0(), refund)).await.expect("refund");
    let message = service.log.read(refunded.accepted.seq, 1).await.unwrap().remove(0);
    assert_eq!(message.subject, format!("fundtrail.v2.{}.donation.{}", older.cast.fund, &donations[0].to_text()[35..]));
    assert!(service.read.wait_applied(refunded.accepted.seq, WAIT).await);
    let after: State = service.read.state().clone();
    service.shutdown();
    drop(service);

    // A restart replays v1 and v2 alike, to the same state. (The embedded log is
    // free once the stopped tasks let go of it: only that refusal is retried.)
    let mut lock_refusals = 0;
    let again = loop {
        match setup.clone().start(Arc::new(clock.clone())).await {
            Ok(service) => break service,
            Err(e) if format!("{e:#}").contains("could not acquire lock") && lock_refusals < 100 => {
                lock_refusals += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart failed after {lock_refusals} lock refusals: {e:#}"),
        }
    };
    assert!(again.read.wait_applied(refunded.accepted.seq, WAIT).await);
    assert_eq!(*again.read.state(), after);
    assert_eq!(again.read.rejected(), Vec::new());
}

/// The events stream as an older release created it (v1 subjects only), holding
/// `requests`.
async fn write_v1_stream(url: &str, requests: Vec<AppendRequest>) {
    let client = async_nats::connect(url).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let config = async_nats::jetstream::stream::Config {
        subjects: vec!["fundtrail.v1.*.*.*".into()],
        ..fundtrail_store::event_stream_config(&StreamSettings::default())
    };
    context.create_stream(config).await.unwrap();
    for request in requests {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", request.msg_id.as_str());
        context.publish_with_headers(request.subject, headers, request.payload.into()).await.unwrap().await.unwrap();
    }
    // A v2 subject is not the older stream's: the service adds it at start.
    let info = context.get_stream(fundtrail_store::EVENT_STREAM).await.unwrap().info().await.unwrap().config.clone();
    assert_eq!(info.subjects, vec!["fundtrail.v1.*.*.*".to_string()]);
}
