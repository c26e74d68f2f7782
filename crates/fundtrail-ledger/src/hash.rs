//! SHA-256 hashes and the two RFC 6962 / RFC 9162 §2.1.1 hashing rules.

use base64::prelude::*;
use sha2::{Digest, Sha256};
use std::fmt;

/// Size of every hash in the ledger, in bytes (SHA-256).
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
///
/// `Display` is standard base64 (the C2SP text formats); `Debug` is hex.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_SIZE]);

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// A zero hash: the `prev` field of entry 0.
pub const ZERO_HASH: Hash = Hash([0; HASH_SIZE]);

impl Hash {
    /// Parses a standard-base64 hash (padded, exactly 32 bytes), as used in checkpoints,
    /// receipts and proofs. Returns `None` for anything else.
    pub fn from_base64(text: &str) -> Option<Hash> {
        // 32 bytes encode to exactly 44 characters; refuse before decoding anything longer.
        if text.len() != 44 {
            return None;
        }
        let bytes = BASE64_STANDARD.decode(text).ok()?;
        let hash = Hash(bytes.try_into().ok()?);
        debug_assert_eq!(hash.to_base64(), text, "canonical base64 round-trip");
        Some(hash)
    }

    /// Standard base64 of the 32 bytes (44 characters).
    pub fn to_base64(&self) -> String {
        BASE64_STANDARD.encode(self.0)
    }

    /// Lower-case hex of the 32 bytes.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(2 * HASH_SIZE);
        for b in self.0 {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    pub(crate) fn to_tlog(self) -> tlog_tiles::Hash {
        tlog_tiles::Hash(self.0)
    }

    pub(crate) fn from_tlog(hash: tlog_tiles::Hash) -> Hash {
        Hash(hash.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl From<[u8; HASH_SIZE]> for Hash {
    fn from(bytes: [u8; HASH_SIZE]) -> Hash {
        Hash(bytes)
    }
}

/// The leaf hash of an entry: SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(Hash(Sha256::digest([]).into()), EMPTY_ROOT);
        assert_eq!(EMPTY_ROOT.to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn leaf_and_node_hashes_match_the_pinned_crate() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        assert_eq!(a.to_tlog(), tlog_tiles::record_hash(b"a"));
        assert_eq!(node_hash(&a, &b).to_tlog(), tlog_tiles::node_hash(a.to_tlog(), b.to_tlog()));
    }

    #[test]
    fn base64_is_strict() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_base64(&h.to_base64()), Some(h));
        assert_eq!(Hash::from_base64(""), None);
        assert_eq!(Hash::from_base64(&h.to_base64()[..43]), None);
        assert_eq!(Hash::from_base64(&format!("{}=", h.to_base64())), None);
        assert_eq!(Hash::from_base64(&"!".repeat(44)), None);
    }
}
