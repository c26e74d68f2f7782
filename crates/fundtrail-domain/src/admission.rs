//! Admission: the rules a command must pass when it arrives, before
//! [`crate::decide`] runs the fund's rules on it.
//!
//! They depend on the receiving service and its log, not on the fold's
//! state: the service's clock (an event's `occurred_at` must be near it), the
//! host key the operator pinned (only it may sign genesis), and which event
//! ids the log already holds (an id names one content forever). So they are
//! never run on replay: an event admitted yesterday replays the same today,
//! whatever the clock says. The clock and the log's id records come in as
//! arguments; nothing here reads them.

use chrono::{DateTime, TimeDelta, Utc};

use crate::event::{Event, EventBody};
use crate::ids::KeyId;
use crate::refusal::Refusal;

/// How far in the future of the service's clock `occurred_at` may be, by default.
pub const FUTURE_SKEW_MAX_DEFAULT: TimeDelta = TimeDelta::minutes(5);
/// How far in the past `occurred_at` may be, by default: late bookings are
/// normal, back-dating a year is not.
pub const BACKDATE_MAX_DEFAULT: TimeDelta = TimeDelta::days(7);

/// What a service admits: set by its operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// Only this key may sign the genesis event (the trust anchor); `None`
    /// leaves genesis to whichever key names itself first.
    pub host_key: Option<KeyId>,
    /// How far in the future of the service's clock `occurred_at` may be.
    pub future_skew_max: TimeDelta,
    /// How far in the past `occurred_at` may be.
    pub backdate_max: TimeDelta,
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        AdmissionPolicy { host_key: None, future_skew_max: FUTURE_SKEW_MAX_DEFAULT, backdate_max: BACKDATE_MAX_DEFAULT }
    }
}

/// Where an event id first appeared in the log and what it said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRecord {
    /// The stream sequence of the event that first used the id.
    pub seq: u64,
    /// SHA-256 of its signed payload: the same id with another payload is a reuse.
    pub payload_sha256: [u8; 32],
}

impl IdRecord {
    /// The record of an event applied without a log (no sequence, no payload).
    pub const UNRECORDED: IdRecord = IdRecord { seq: 0, payload_sha256: [0; 32] };
}

/// What admitting a command gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new event within the policy: decide it.
    New,
    /// The very same event (same id, same signed payload) is in the log at
    /// `seq`: answer with it and append nothing (invariant 5: the same event
    /// twice has one effect).
    Duplicate { seq: u64 },
}

/// Admits a command signed over `payload_sha256` at time `now`, given the
/// record of its id if the log holds it (`earlier`). An earlier use of the id
/// is decided first: a resend of an accepted event is answered as a
/// duplicate even once its `occurred_at` has left the clock window.
pub fn admit(
    policy: &AdmissionPolicy,
    event: &Event,
    payload_sha256: &[u8; 32],
    now: DateTime<Utc>,
    earlier: Option<&IdRecord>,
) -> Result<Admission, Refusal> {
    if let Some(earlier) = earlier {
        return id_not_reused(event, payload_sha256, earlier).map(|seq| Admission::Duplicate { seq });
    }
    occurred_near_now(policy, event.occurred_at, now)?;
    genesis_by_pinned_key(policy, event)?;
    Ok(Admission::New)
}

/// Rule: an event id names one content forever. Returns the sequence of the
/// earlier, identical event; refuses other content under the same id.
pub fn id_not_reused(event: &Event, payload_sha256: &[u8; 32], earlier: &IdRecord) -> Result<u64, Refusal> {
    if &earlier.payload_sha256 != payload_sha256 {
        return Err(Refusal::IdReused { id: event.id.clone(), seq: earlier.seq });
    }
    Ok(earlier.seq)
}

/// Rule: `occurred_at` lies within `[now − backdate_max, now + future_skew_max]`.
pub fn occurred_near_now(
    policy: &AdmissionPolicy,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let too_new = occurred_at > now + policy.future_skew_max;
    let too_old = occurred_at < now - policy.backdate_max;
    if too_new || too_old {
        return Err(Refusal::ClockWindow {
            occurred_at,
            now,
            future_skew_max: policy.future_skew_max,
            backdate_max: policy.backdate_max,
        });
    }
    Ok(())
}

/// Rule: with a pinned host key, genesis is signed by that key. (That genesis
/// is signed by the key it names is a fund rule, [`Refusal::GenesisAuthor`].)
pub fn genesis_by_pinned_key(policy: &AdmissionPolicy, event: &Event) -> Result<(), Refusal> {
    if let (Some(pinned), EventBody::HostEstablished(_)) = (&policy.host_key, &event.body) {
        if &event.author != pinned {
            return Err(Refusal::HostKeyPinned { expected: pinned.clone(), actual: event.author.clone() });
        }
    }
    Ok(())
}
