//! Envelopes this process has verified, by the SHA-256 of their exact bytes.
//!
//! The writer verifies every signature before deciding; the projection runner
//! then reads the same bytes back from the log. When the bytes are identical
//! (same digest), the runner need not verify the signature a second time.
//! Bytes from anywhere else — another replica, a restart — are verified in full.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Digests remembered at most (FIFO eviction): enough for the runner to catch
/// up with the writer under load, small enough to bound memory (~10 MiB).
pub const VERIFIED_DIGESTS_MAX: usize = 262_144;

#[derive(Default)]
pub struct VerifiedSet {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl VerifiedSet {
    pub fn insert(&self, digest: [u8; 32]) {
        let mut inner = self.inner.lock().expect("verified set lock");
        if inner.set.insert(digest) {
            inner.order.push_back(digest);
            if inner.order.len() > VERIFIED_DIGESTS_MAX {
                let oldest = inner.order.pop_front().expect("non-empty");
                inner.set.remove(&oldest);
            }
        }
        debug_assert_eq!(inner.set.len(), inner.order.len());
    }

    pub fn contains(&self, digest: &[u8; 32]) -> bool {
        self.inner.lock().expect("verified set lock").set.contains(digest)
    }
}
