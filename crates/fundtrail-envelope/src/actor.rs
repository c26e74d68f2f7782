//! Writing events as an actor: fresh ids and signed envelopes.
//!
//! This is the client side (the CLI, the demo, tests): it draws randomness
//! for ids from the OS. The domain itself never does.

use chrono::{DateTime, Utc};
use fundtrail_domain::{Event, EventBody, EventId, FundId};

use crate::ActorKey;

/// A new UUIDv7 event id for an event at `at` (time-ordered, 74 random bits).
pub fn new_event_id(at: DateTime<Utc>) -> EventId {
    let millis = u64::try_from(at.timestamp_millis()).expect("event times are after 1970");
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, millis / 1000, ((millis % 1000) * 1_000_000) as u32);
    EventId::new(uuid::Uuid::new_v7(ts).to_string()).expect("uuid v7 text is a valid event id")
}

/// Builds an event by `key` and signs it.
pub fn sign_new(key: &ActorKey, fund: &FundId, at: DateTime<Utc>, body: EventBody) -> (Event, Vec<u8>) {
    let event = Event {
        id: new_event_id(at),
        fund: fund.clone(),
        occurred_at: at,
        author: key.key_id(),
        v: body.event_type().version(),
        body,
    };
    let envelope = key.sign_event(&event);
    (event, envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_and_ordered_by_time() {
        let a = new_event_id(DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc());
        let b = new_event_id(DateTime::parse_from_rfc3339("2026-01-01T00:00:01Z").unwrap().to_utc());
        assert!(a < b);
        let t = DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z").unwrap().to_utc();
        assert_ne!(new_event_id(t), new_event_id(t));
    }
}
