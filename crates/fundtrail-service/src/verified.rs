//! Envelopes this process has verified, by the SHA-256 of their exact bytes.
//!
//! The writer verifies every signature before deciding; the projection runner
//! then reads the same bytes back from the log. When the bytes are identical
//! (same digest), the runner need not verify the signature a second time —
//! nor even parse the envelope again: the writer hands over the event it
//! opened and decided, and the runner takes it. Bytes from anywhere else —
//! another replica, a restart — are verified in full.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use fundtrail_envelope::VerifiedEvent;
use sha2::{Digest, Sha256};

/// Digests remembered at most (FIFO eviction): enough for the runner to catch
/// up with the writer under load, small enough to bound memory (~10 MiB).
pub const VERIFIED_DIGESTS_MAX: usize = 262_144;
/// Bytes of handed-over events (envelope and payload) held at most. An event
/// the runner never takes (its command lost a race and was refused on the
/// second try) is dropped oldest first; the runner then only parses again.
pub const HELD_BYTES_MAX: usize = 64 << 20;

#[derive(Default)]
pub struct VerifiedSet {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    held: HashMap<[u8; 32], VerifiedEvent>,
    held_order: VecDeque<[u8; 32]>,
    held_bytes: usize,
}

pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn held_size(event: &VerifiedEvent) -> usize {
    event.envelope.len() + event.payload.len()
}

impl VerifiedSet {
    /// Records that envelope bytes with this digest verified.
    pub fn insert(&self, digest: [u8; 32]) {
        let mut inner = self.inner.lock().expect("verified set lock");
        inner.insert(digest);
    }

    pub fn contains(&self, digest: &[u8; 32]) -> bool {
        self.inner.lock().expect("verified set lock").set.contains(digest)
    }

    /// The writer hands over an event it opened from envelope bytes with
    /// this digest and is appending; the runner [`take`](Self::take)s it.
    pub fn hand_over(&self, digest: [u8; 32], event: VerifiedEvent) {
        debug_assert_eq!(self::digest(&event.envelope), digest);
        let mut inner = self.inner.lock().expect("verified set lock");
        inner.insert(digest);
        inner.held_bytes += held_size(&event);
        if let Some(previous) = inner.held.insert(digest, event) {
            inner.held_bytes -= held_size(&previous);
        } else {
            inner.held_order.push_back(digest);
        }
        // The queue also holds digests already taken (dropped when they reach
        // its front): bound it by length as well as the events by bytes.
        while inner.held_bytes > HELD_BYTES_MAX || inner.held_order.len() > VERIFIED_DIGESTS_MAX {
            let oldest = inner.held_order.pop_front().expect("bytes are held, so events are");
            if let Some(dropped) = inner.held.remove(&oldest) {
                inner.held_bytes -= held_size(&dropped);
            }
        }
        debug_assert!(inner.held.len() <= inner.held_order.len());
    }

    /// The event opened from envelope bytes with this digest, if the writer
    /// handed it over (and nobody took it yet).
    pub fn take(&self, digest: &[u8; 32]) -> Option<VerifiedEvent> {
        let mut inner = self.inner.lock().expect("verified set lock");
        let event = inner.held.remove(digest)?;
        inner.held_bytes -= held_size(&event);
        // Events are taken in about the order they were handed over: drop
        // the taken digests at the front so the queue stays short.
        while let Some(front) = inner.held_order.front() {
            if inner.held.contains_key(front) {
                break;
            }
            inner.held_order.pop_front();
        }
        Some(event)
    }
}

impl Inner {
    fn insert(&mut self, digest: [u8; 32]) {
        if self.set.insert(digest) {
            self.order.push_back(digest);
            if self.order.len() > VERIFIED_DIGESTS_MAX {
                let oldest = self.order.pop_front().expect("non-empty");
                self.set.remove(&oldest);
            }
        }
        debug_assert_eq!(self.set.len(), self.order.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundtrail_domain::event::{EventBody, KeyEnrolled};
    use fundtrail_domain::FundId;
    use fundtrail_envelope::ActorKey;

    /// An opened event; `n` makes its envelope bytes (not its signature) distinct.
    fn opened(n: usize) -> VerifiedEvent {
        let key = ActorKey::generate().unwrap();
        let body = EventBody::KeyEnrolled(KeyEnrolled {
            key: key.key_id(),
            public_key: key.public_key_b64(),
            label: "收款服务".into(),
        });
        let (_, envelope) = fundtrail_envelope::actor::sign_new(&key, &FundId::host(), chrono::Utc::now(), body);
        let mut event = fundtrail_envelope::reopen_verified(&envelope).unwrap();
        event.envelope.extend_from_slice(format!(" {n}").as_bytes());
        event
    }

    #[test]
    fn a_handed_over_event_is_taken_once() {
        let set = VerifiedSet::default();
        let event = opened(0);
        let d = digest(&event.envelope);
        set.hand_over(d, event.clone());
        assert!(set.contains(&d));
        assert_eq!(set.take(&d), Some(event));
        assert_eq!(set.take(&d), None, "taken once");
        assert!(set.contains(&d), "the digest is still known to be verified");
    }

    #[test]
    fn an_event_never_taken_does_not_grow_the_queue_without_bound() {
        let set = VerifiedSet::default();
        let template = opened(0);
        // Handed over, never taken: its command was refused after a lost race.
        let stuck = template.clone();
        set.hand_over(digest(&stuck.envelope), stuck);
        for n in 0..VERIFIED_DIGESTS_MAX + 10 {
            let mut event = template.clone();
            event.envelope.extend_from_slice(format!(" {n:08}").as_bytes());
            let d = digest(&event.envelope);
            set.hand_over(d, event);
            assert!(set.take(&d).is_some());
        }
        let inner = set.inner.lock().unwrap();
        assert!(inner.held_order.len() <= VERIFIED_DIGESTS_MAX, "{} digests queued", inner.held_order.len());
        assert!(inner.held.is_empty(), "the stuck event was dropped once it reached the bound");
    }

    #[test]
    fn held_events_are_bounded_by_bytes() {
        let set = VerifiedSet::default();
        let template = opened(0);
        let count = HELD_BYTES_MAX / held_size(&template) + 10;
        let mut digests = Vec::new();
        for n in 0..count {
            let mut event = template.clone();
            event.envelope.extend_from_slice(format!(" {n:08}").as_bytes());
            let d = digest(&event.envelope);
            set.hand_over(d, event);
            digests.push(d);
        }
        let inner = set.inner.lock().unwrap();
        assert!(inner.held_bytes <= HELD_BYTES_MAX);
        assert!(!inner.held.contains_key(&digests[0]), "the oldest was dropped");
        assert!(inner.held.contains_key(digests.last().unwrap()));
        assert_eq!(inner.held_bytes, inner.held.values().map(held_size).sum::<usize>());
    }
}
