//! The command pipeline and the projections, on both stores: every bad input
//! gets its own error and changes nothing; nothing accepted is lost or
//! applied twice; reads see your writes.

use std::time::Duration;

use fundtrail_domain::{EventBody, Fen, Refusal};
use fundtrail_envelope::{ActorKey, EnvelopeError};
use fundtrail_service::*;
use fundtrail_testkit::service::{t0, Store, TestService as Harness};

/// A service on a fresh log of its own, on the embedded store or NATS.
async fn start(nats: bool) -> Harness {
    Harness::start(Store::nats_if(nats)).await
}

trait FundView {
    fn available(&self) -> Fen;
}

impl FundView for Harness {
    fn available(&self) -> Fen {
        self.service.read.fund(&self.cast.fund).expect("fund view").cash.available_fen
    }
}

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(false).await } )*
        }
        mod nats {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(true).await } )*
        }
    };
}

both_stores!(
    accepts_and_reads_its_writes,
    duplicates_have_one_effect_and_the_same_answer,
    an_id_reused_for_other_content_is_refused,
    bad_input_is_refused_and_changes_nothing,
    overspend_is_refused_with_the_numbers,
    group_commit_keeps_every_command,
);

async fn accepts_and_reads_its_writes(nats: bool) {
    let h = start(nats).await;
    h.setup().await;
    let (id, envelope) = h.cast.donation(120_000, t0());
    let s = h.service.submit(envelope).await.unwrap();
    assert!(!s.accepted.duplicate);
    assert_eq!(s.ledger_index, s.accepted.seq - 1);
    assert_eq!(h.available(), Fen::new(120_000).unwrap());
    assert_eq!(h.service.read.event_seq(&id), Some(s.accepted.seq));
    let donations = h.service.read.donations(&h.cast.fund, 0, 100);
    assert_eq!(donations.len(), 1);
    assert_eq!(donations[0].amount_fen, Fen::new(120_000).unwrap());
    // The ledger has one entry per message and a signed checkpoint covers it.
    let note = h.service.read.wait_checkpoint(s.accepted.seq, Duration::from_secs(5)).await.expect("checkpoint");
    let verifier = fundtrail_ledger::LogVerifier::from_vkey(&h.service.read.vkey).unwrap();
    let cp = verifier.verify_checkpoint(&note).unwrap();
    assert!(cp.size >= s.accepted.seq);
    assert!(h.service.read.entry(s.ledger_index).unwrap().is_some());
    assert!(h.service.ready().await.unwrap());
}

async fn duplicates_have_one_effect_and_the_same_answer(nats: bool) {
    let h = start(nats).await;
    h.setup().await;
    let (_, envelope) = h.cast.donation(500, t0());
    let first = h.service.submit(envelope.clone()).await.unwrap();
    let again = h.service.submit(envelope.clone()).await.unwrap();
    assert!(again.accepted.duplicate);
    assert_eq!(again.accepted.seq, first.accepted.seq);
    // Concurrently, many times: still one effect.
    let submits = (0..20).map(|_| h.service.submit(envelope.clone()));
    for r in futures::future::join_all(submits).await {
        assert_eq!(r.unwrap().accepted.seq, first.accepted.seq);
    }
    assert_eq!(h.available(), Fen::new(500).unwrap());
    assert_eq!(h.service.log.last_seq().await.unwrap(), first.accepted.seq);
}

async fn an_id_reused_for_other_content_is_refused(nats: bool) {
    let h = start(nats).await;
    h.setup().await;
    let (event, envelope) = fundtrail_envelope::actor::sign_new(&h.cast.intake, &h.cast.fund, t0(), h_body(&h, 100));
    h.service.submit(envelope).await.unwrap();
    let mut other = event.clone();
    other.body = h_body(&h, 999);
    let err = h.service.submit(h.cast.intake.sign_event(&other)).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused(Refusal::IdReused { .. })), "{err}");
    assert_eq!(h.available(), Fen::new(100).unwrap());
}

fn h_body(h: &Harness, fen: i64) -> EventBody {
    let _ = h;
    EventBody::DonationReceived(fundtrail_domain::event::DonationReceived {
        amount_fen: Fen::new(fen).unwrap(),
        channel: fundtrail_domain::event::Channel::Direct,
        donor: fundtrail_testkit::cast::hash("d"),
        payment_ref: "WX-1".into(),
        pledge: None,
        restricted_purpose: None,
    })
}

async fn bad_input_is_refused_and_changes_nothing(nats: bool) {
    let h = start(nats).await;
    h.setup().await;
    h.service.submit(h.cast.donation(1_000, t0()).1).await.unwrap();
    let last = h.service.log.last_seq().await.unwrap();
    let before = h.service.read.fund(&h.cast.fund).unwrap();

    // A forged signature: a valid envelope whose payload was changed.
    let (_, good) = h.cast.donation(2_000, t0());
    let mut wire: serde_json::Value = serde_json::from_slice(&good).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload =
        String::from_utf8(b64.decode(wire["payload"].as_str().unwrap()).unwrap()).unwrap().replace("2000", "9000");
    wire["payload"] = b64.encode(payload).into();
    let err = h.service.submit(serde_json::to_vec(&wire).unwrap()).await.unwrap_err();
    assert!(matches!(err, SubmitError::Envelope(EnvelopeError::BadSignature(_))), "{err}");

    // An unknown key.
    let stranger = ActorKey::generate().unwrap();
    let (_, env) = fundtrail_envelope::actor::sign_new(&stranger, &h.cast.fund, t0(), h_body(&h, 5));
    let err = h.service.submit(env).await.unwrap_err();
    assert!(matches!(err, SubmitError::Envelope(EnvelopeError::UnknownKey(_))), "{err}");

    // A wrong role: the proposer records a donation.
    let (_, env) = fundtrail_envelope::actor::sign_new(&h.cast.proposer, &h.cast.fund, t0(), h_body(&h, 5));
    let err = h.service.submit(env).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused(Refusal::NotAuthorised { .. })), "{err}");

    // A malformed body.
    let err = h.service.submit(b"{\"payload\":1}".to_vec()).await.unwrap_err();
    assert!(matches!(err, SubmitError::Envelope(EnvelopeError::Shape(_))), "{err}");

    // An oversize envelope.
    let err = h.service.submit(vec![b' '; 60_000]).await.unwrap_err();
    assert!(matches!(err, SubmitError::Envelope(EnvelopeError::TooLarge { .. })), "{err}");

    // occurred_at too far from the service's clock, both ways.
    let future = t0() + chrono::Duration::hours(1);
    let err = h.service.submit(h.cast.donation(7, future).1).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused(Refusal::ClockWindow { .. })), "{err}");
    let past = t0() - chrono::Duration::days(30);
    let err = h.service.submit(h.cast.donation(7, past).1).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused(Refusal::ClockWindow { .. })), "{err}");

    // An unknown fund.
    let nowhere = fundtrail_domain::FundId::new("nowhere").unwrap();
    let (_, env) = fundtrail_envelope::actor::sign_new(&h.cast.intake, &nowhere, t0(), h_body(&h, 5));
    let err = h.service.submit(env).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused(Refusal::UnknownFund { .. })), "{err}");

    // A revoked key signs nothing after its revocation.
    let revoke = EventBody::RoleRevoked(fundtrail_domain::event::RoleRevoked {
        key: h.cast.intake.key_id(),
        role: fundtrail_domain::Role::Intake,
        reason: "更换收款服务".into(),
    });
    h.service.submit(h.cast.in_fund(&h.cast.host, t0(), revoke)).await.unwrap();
    let err = h.service.submit(h.cast.donation(8, t0()).1).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused(Refusal::NotAuthorised { .. })), "{err}");

    // Nothing changed but the one revocation.
    assert_eq!(h.service.log.last_seq().await.unwrap(), last + 1);
    assert_eq!(h.service.read.fund(&h.cast.fund).unwrap().cash, before.cash);
}

async fn overspend_is_refused_with_the_numbers(nats: bool) {
    let h = start(nats).await;
    h.setup().await;
    h.service.submit(h.cast.donation(50_000, t0()).1).await.unwrap();
    for e in h.cast.endorsed_proposal("P-1", 80_000, t0()) {
        h.service.submit(e).await.unwrap();
    }
    let err = h.service.submit(h.cast.approval("P-1", 80_000, t0())).await.unwrap_err();
    assert_eq!(err.to_string(), "fund xihu-01 has ¥500.00 available, ¥800.00 needed");
    h.service.submit(h.cast.approval("P-1", 30_000, t0())).await.unwrap();
    h.service.submit(h.cast.payout("P-1", 20_000, t0())).await.unwrap();
    let err = h.service.submit(h.cast.payout("P-1", 20_000, t0())).await.unwrap_err();
    assert_eq!(err.to_string(), "payout ¥200.00 exceeds approved remainder ¥100.00 of proposal P-1");
    let p = h.service.read.proposal(&h.cast.fund, &fundtrail_testkit::cast::pid("P-1")).unwrap();
    assert_eq!(
        (p.approved_fen, p.paid_fen, p.remainder_fen),
        (Fen::new(30_000).unwrap(), Fen::new(20_000).unwrap(), Fen::new(10_000).unwrap())
    );
    assert_eq!(h.available(), Fen::new(20_000).unwrap());
}

async fn group_commit_keeps_every_command(nats: bool) {
    let h = start(nats).await;
    h.setup().await;
    let envelopes: Vec<Vec<u8>> = (1..=300).map(|i| h.cast.donation(i, t0()).1).collect();
    let results = futures::future::join_all(envelopes.into_iter().map(|e| h.service.submit(e))).await;
    let mut seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap().accepted.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 300);
    assert_eq!(h.available(), Fen::new((1..=300).sum()).unwrap());
    assert_eq!(h.service.read.donations(&h.cast.fund, 0, 1000).len(), 300);
}
