//! Admission: given a policy, the service's clock and what the log holds of an
//! id, when a command arrives, then it is new, a duplicate, or this refusal.

use chrono::{DateTime, Duration, Utc};
use fundtrail_domain::admission::*;
use fundtrail_domain::event::*;
use fundtrail_domain::ids::HOST_SCOPE;
use fundtrail_domain::testing::*;
use fundtrail_domain::{Event, Fen, Refusal, RefusalClass};

const PAYLOAD: [u8; 32] = [7; 32];
const OTHER_PAYLOAD: [u8; 32] = [8; 32];

/// A donation that occurred at `occurred_at`, and the service's `now`.
fn donation_at(w: &mut World, occurred_at: DateTime<Utc>) -> Event {
    let mut event = w.event("intake", FUND, donation(Fen::yuan(10), Channel::Direct));
    event.occurred_at = occurred_at;
    event
}

fn genesis_by(w: &mut World, name: &str) -> Event {
    let body = EventBody::HostEstablished(HostEstablished {
        host_name: "某市慈善总会".into(),
        host_key: w.key(name),
        public_key: b64(&World::public_key(name)),
    });
    w.event(name, HOST_SCOPE, body)
}

fn admit_new(policy: &AdmissionPolicy, event: &Event, now: DateTime<Utc>) -> Result<Admission, Refusal> {
    admit(policy, event, &PAYLOAD, now, None)
}

// --- the clock window on occurred_at ------------------------------------------

#[test]
fn an_event_within_the_window_is_admitted() {
    let mut w = World::with_fund();
    let now = w.now;
    let policy = AdmissionPolicy::default();
    for occurred_at in [now, now + Duration::minutes(5), now - Duration::days(7)] {
        let event = donation_at(&mut w, occurred_at);
        assert_eq!(admit_new(&policy, &event, now), Ok(Admission::New), "{occurred_at}");
    }
}

#[test]
fn an_event_from_the_future_is_refused_with_the_numbers() {
    let mut w = World::with_fund();
    let now = w.now;
    let occurred_at = now + Duration::minutes(5) + Duration::seconds(1);
    let event = donation_at(&mut w, occurred_at);
    let refusal = admit_new(&AdmissionPolicy::default(), &event, now).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::ClockWindow {
            occurred_at,
            now,
            future_skew_max: FUTURE_SKEW_MAX_DEFAULT,
            backdate_max: BACKDATE_MAX_DEFAULT
        }
    );
    let expected = format!(
        "occurred_at {} is too far from the service's clock ({}): at most 5 minutes ahead and 7 days behind",
        format_utc(&occurred_at),
        format_utc(&now)
    );
    assert_eq!(refusal.to_string(), expected);
    assert_eq!((refusal.code(), refusal.class()), ("clock", RefusalClass::Rule));
}

#[test]
fn an_event_backdated_beyond_the_window_is_refused() {
    let mut w = World::with_fund();
    let now = w.now;
    let event = donation_at(&mut w, now - Duration::days(7) - Duration::seconds(1));
    assert!(matches!(admit_new(&AdmissionPolicy::default(), &event, now), Err(Refusal::ClockWindow { .. })));
}

#[test]
fn the_window_is_the_operators_to_set() {
    let mut w = World::with_fund();
    let now = w.now;
    let policy = AdmissionPolicy { backdate_max: Duration::days(30), ..AdmissionPolicy::default() };
    let event = donation_at(&mut w, now - Duration::days(20));
    assert_eq!(admit_new(&policy, &event, now), Ok(Admission::New));
    let policy = AdmissionPolicy { future_skew_max: Duration::zero(), ..AdmissionPolicy::default() };
    let event = donation_at(&mut w, now + Duration::seconds(1));
    assert!(matches!(admit_new(&policy, &event, now), Err(Refusal::ClockWindow { .. })));
}

// --- the pinned host key --------------------------------------------------------

#[test]
fn with_a_pinned_host_key_only_it_signs_genesis() {
    let mut w = World::new();
    let now = w.now;
    let policy = AdmissionPolicy { host_key: Some(w.key("admin")), ..AdmissionPolicy::default() };
    let mallory = genesis_by(&mut w, "mallory");
    let refusal = admit_new(&policy, &mallory, now).unwrap_err();
    assert_eq!(refusal, Refusal::HostKeyPinned { expected: w.key("admin"), actual: w.key("mallory") });
    assert_eq!((refusal.code(), refusal.class()), ("host-key-pinned", RefusalClass::Forbidden));
    let admin = genesis_by(&mut w, "admin");
    assert_eq!(admit_new(&policy, &admin, now), Ok(Admission::New));
}

#[test]
fn without_a_pin_any_genesis_is_left_to_the_fund_rules() {
    let mut w = World::new();
    let now = w.now;
    let event = genesis_by(&mut w, "anyone");
    assert_eq!(admit_new(&AdmissionPolicy::default(), &event, now), Ok(Admission::New));
}

#[test]
fn the_pin_concerns_genesis_only() {
    let mut w = World::with_fund();
    let now = w.now;
    let policy = AdmissionPolicy { host_key: Some(w.key("admin")), ..AdmissionPolicy::default() };
    let event = donation_at(&mut w, now);
    assert_eq!(admit_new(&policy, &event, now), Ok(Admission::New));
}

// --- an id names one content ------------------------------------------------------

#[test]
fn the_same_event_again_is_a_duplicate_of_the_first() {
    let mut w = World::with_fund();
    let now = w.now;
    let event = donation_at(&mut w, now);
    let earlier = IdRecord { seq: 42, payload_sha256: PAYLOAD };
    let admitted = admit(&AdmissionPolicy::default(), &event, &PAYLOAD, now, Some(&earlier));
    assert_eq!(admitted, Ok(Admission::Duplicate { seq: 42 }));
}

#[test]
fn a_resend_is_a_duplicate_even_after_the_clock_window_passed() {
    let mut w = World::with_fund();
    let now = w.now;
    let event = donation_at(&mut w, now);
    let much_later = now + Duration::days(365);
    let earlier = IdRecord { seq: 42, payload_sha256: PAYLOAD };
    let admitted = admit(&AdmissionPolicy::default(), &event, &PAYLOAD, much_later, Some(&earlier));
    assert_eq!(admitted, Ok(Admission::Duplicate { seq: 42 }));
}

#[test]
fn an_id_reused_for_other_content_is_refused() {
    let mut w = World::with_fund();
    let now = w.now;
    let event = donation_at(&mut w, now);
    let earlier = IdRecord { seq: 42, payload_sha256: OTHER_PAYLOAD };
    let refusal = admit(&AdmissionPolicy::default(), &event, &PAYLOAD, now, Some(&earlier)).unwrap_err();
    assert_eq!(refusal, Refusal::IdReused { id: event.id.clone(), seq: 42 });
    assert_eq!(refusal.to_string(), format!("event id {} is already used by another event at sequence 42", event.id));
    assert_eq!((refusal.code(), refusal.class()), ("id-reused", RefusalClass::Conflict));
}

#[test]
fn admission_runs_no_fund_rule() {
    // A proposer may not record donations, but that is `decide`'s to say:
    // admission looks only at time, the pin and the id.
    let mut w = World::with_fund();
    let now = w.now;
    let event = w.event("proposer", FUND, donation(Fen::yuan(10), Channel::Direct));
    assert_eq!(admit_new(&AdmissionPolicy::default(), &event, now), Ok(Admission::New));
}
