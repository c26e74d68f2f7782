//! Ledger entries and the hash chain that links them.
//!
//! Entry *i* = `index` (u64 big-endian, 8 bytes) ‖ `prev` (32 bytes: the leaf hash of
//! entry *i − 1*, all zeros for entry 0) ‖ the envelope bytes exactly as published.

use crate::hash::{leaf_hash, Hash, HASH_SIZE, ZERO_HASH};
use thiserror::Error;

/// Largest entry, in bytes: the C2SP tlog-tiles entry bundle length prefix is a u16.
pub const ENTRY_SIZE_MAX: usize = 65_535;
/// Size of the fixed entry header: index (8) ‖ prev (32).
pub const ENTRY_HEADER_SIZE: usize = 8 + HASH_SIZE;
/// Largest envelope the ledger accepts, in bytes. The envelope crate caps signed events
/// with the same number, leaving room below [`ENTRY_SIZE_MAX`] for the header.
pub const ENVELOPE_SIZE_MAX: usize = 49_152;

const _: () = assert!(ENTRY_HEADER_SIZE + ENVELOPE_SIZE_MAX <= ENTRY_SIZE_MAX);

/// Why an entry could not be encoded or decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EntryError {
    #[error("entry: {size} bytes is shorter than the {ENTRY_HEADER_SIZE}-byte header")]
    Short { size: usize },
    #[error("entry: {size} bytes exceeds the maximum of {ENTRY_SIZE_MAX}")]
    Oversize { size: usize },
    #[error("entry {index}: envelope of {size} bytes exceeds the maximum of {ENVELOPE_SIZE_MAX}")]
    EnvelopeOversize { index: u64, size: usize },
    #[error("entry {index}: envelope is empty")]
    EnvelopeEmpty { index: u64 },
}

/// A decoded entry, borrowing the envelope from the entry bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Position of the entry in the ledger (= stream order, from 0).
    pub index: u64,
    /// Leaf hash of the previous entry; [`ZERO_HASH`] for entry 0.
    pub prev: Hash,
    /// The envelope bytes exactly as published; opaque to this crate.
    pub envelope: &'a [u8],
}

impl Entry<'_> {
    /// The entry's encoded bytes (see [`encode_entry`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_HEADER_SIZE + self.envelope.len());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.prev.0);
        out.extend_from_slice(self.envelope);
        out
    }
}

/// Encodes entry `index` with predecessor leaf hash `prev` around `envelope`.
///
/// Refuses an empty envelope or one over [`ENVELOPE_SIZE_MAX`].
pub fn encode_entry(index: u64, prev: &Hash, envelope: &[u8]) -> Result<Vec<u8>, EntryError> {
    if envelope.is_empty() {
        return Err(EntryError::EnvelopeEmpty { index });
    }
    if envelope.len() > ENVELOPE_SIZE_MAX {
        return Err(EntryError::EnvelopeOversize { index, size: envelope.len() });
    }
    let bytes = Entry { index, prev: *prev, envelope }.to_bytes();
    debug_assert!(bytes.len() <= ENTRY_SIZE_MAX);
    debug_assert_eq!(decode_entry(&bytes).map(|e| e.index), Ok(index));
    Ok(bytes)
}

/// Decodes an entry. The same size limits apply on the way in and on the way out.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry<'_>, EntryError> {
    if bytes.len() > ENTRY_SIZE_MAX {
        return Err(EntryError::Oversize { size: bytes.len() });
    }
    if bytes.len() < ENTRY_HEADER_SIZE {
        return Err(EntryError::Short { size: bytes.len() });
    }
    let (index_bytes, rest) = bytes.split_at(8);
    let (prev_bytes, envelope) = rest.split_at(HASH_SIZE);
    let index = u64::from_be_bytes(index_bytes.try_into().expect("8 bytes"));
    let prev = Hash(prev_bytes.try_into().expect("32 bytes"));
    if envelope.is_empty() {
        return Err(EntryError::EnvelopeEmpty { index });
    }
    if envelope.len() > ENVELOPE_SIZE_MAX {
        return Err(EntryError::EnvelopeOversize { index, size: envelope.len() });
    }
    Ok(Entry { index, prev, envelope })
}

/// Why a run of entries is not a valid chain.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChainError {
    #[error("chain: entry at position {position}: {source}")]
    Malformed {
        position: u64,
        #[source]
        source: EntryError,
    },
    #[error("chain: entry at position {position} has index {found}")]
    IndexGap { position: u64, found: u64 },
    #[error("chain: entry {index}: prev is {found:?}, but the leaf hash of entry {} is {expected:?}", index.wrapping_sub(1))]
    PrevMismatch { index: u64, expected: Hash, found: Hash },
    #[error("chain: entry 0: prev must be all zeros, found {found:?}")]
    FirstPrevNotZero { found: Hash },
}

/// Walks entries one by one, checking index continuity and `prev` links.
///
/// Start at the beginning with [`Chain::new`], or resume after a verified prefix with
/// [`Chain::resume`]. Each accepted entry yields its leaf hash, ready for the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    next_index: u64,
    prev: Hash,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// A chain expecting entry 0.
    pub fn new() -> Chain {
        Chain { next_index: 0, prev: ZERO_HASH }
    }

    /// A chain expecting entry `next_index`, whose predecessor has leaf hash `prev`.
    pub fn resume(next_index: u64, prev: Hash) -> Chain {
        assert!(next_index > 0 || prev == ZERO_HASH, "entry 0 has no predecessor");
        Chain { next_index, prev }
    }

    /// The index the next entry must carry (= entries accepted so far, from 0).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The leaf hash the next entry must name as `prev`.
    pub fn prev(&self) -> Hash {
        self.prev
    }

    /// Encodes the next entry around `envelope` and advances the chain.
    /// Returns the entry bytes and their leaf hash.
    pub fn append(&mut self, envelope: &[u8]) -> Result<(Vec<u8>, Hash), EntryError> {
        let bytes = encode_entry(self.next_index, &self.prev, envelope)?;
        let hash = self.push(&bytes).expect("a freshly encoded entry links");
        Ok((bytes, hash))
    }

    /// Checks that `entry` is the next link, then advances. Returns its leaf hash.
    pub fn push(&mut self, entry: &[u8]) -> Result<Hash, ChainError> {
        self.push_hashed(entry, leaf_hash(entry))
    }

    /// [`Chain::push`] of an entry whose leaf hash `leaf` the caller has already
    /// computed (a verifier that authenticated it against a hash tile); returns it.
    pub fn push_hashed(&mut self, entry: &[u8], leaf: Hash) -> Result<Hash, ChainError> {
        debug_assert_eq!(leaf, leaf_hash(entry), "the caller's leaf hash is the entry's");
        let position = self.next_index;
        let decoded = decode_entry(entry).map_err(|source| ChainError::Malformed { position, source })?;
        if decoded.index != position {
            return Err(ChainError::IndexGap { position, found: decoded.index });
        }
        if decoded.prev != self.prev {
            if position == 0 {
                return Err(ChainError::FirstPrevNotZero { found: decoded.prev });
            }
            return Err(ChainError::PrevMismatch { index: position, expected: self.prev, found: decoded.prev });
        }
        self.prev = leaf;
        self.next_index = position.checked_add(1).expect("ledger index overflow");
        Ok(leaf)
    }
}

/// Verifies a whole chain from entry 0 and returns the leaf hashes, in order.
/// The error names the first bad entry and why.
pub fn verify_chain<'a, I>(entries: I) -> Result<Vec<Hash>, ChainError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut chain = Chain::new();
    let mut hashes = Vec::new();
    for entry in entries {
        hashes.push(chain.push(entry)?);
    }
    debug_assert_eq!(hashes.len() as u64, chain.next_index());
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn entry_round_trips() {
        let prev = leaf_hash(b"before");
        let bytes = encode_entry(7, &prev, b"{\"payload\":1}").unwrap();
        assert_eq!(&bytes[..8], &7u64.to_be_bytes());
        assert_eq!(&bytes[8..40], &prev.0);
        let entry = decode_entry(&bytes).unwrap();
        assert_eq!(entry.index, 7);
        assert_eq!(entry.prev, prev);
        assert_eq!(entry.envelope, b"{\"payload\":1}");
        assert_eq!(entry.to_bytes(), bytes);
    }

    #[test]
    fn golden_entry() {
        // Entry 1 after entry 0 = (0, zeros, "e0"): the bytes and leaf hash, from first
        // principles, so that a change of format cannot pass unnoticed.
        let entry0 = encode_entry(0, &ZERO_HASH, b"e0").unwrap();
        let mut want0 = vec![0u8; 40];
        want0.extend_from_slice(b"e0");
        assert_eq!(entry0, want0);
        let prev = leaf_hash(&entry0);
        let digest: [u8; 32] = sha2::Sha256::digest([&[0u8][..], &want0].concat()).into();
        assert_eq!(prev, Hash(digest));
        let entry1 = encode_entry(1, &prev, b"e1").unwrap();
        assert_eq!(&entry1[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&entry1[8..40], &digest);
        assert_eq!(&entry1[40..], b"e1");
    }

    #[test]
    fn entry_limits() {
        assert_eq!(decode_entry(&[0; 39]), Err(EntryError::Short { size: 39 }));
        assert_eq!(decode_entry(&[0; 40]), Err(EntryError::EnvelopeEmpty { index: 0 }));
        assert_eq!(decode_entry(&vec![0; ENTRY_SIZE_MAX + 1]), Err(EntryError::Oversize { size: ENTRY_SIZE_MAX + 1 }));
        assert_eq!(
            decode_entry(&vec![0; ENTRY_HEADER_SIZE + ENVELOPE_SIZE_MAX + 1]),
            Err(EntryError::EnvelopeOversize { index: 0, size: ENVELOPE_SIZE_MAX + 1 })
        );
        assert!(encode_entry(3, &ZERO_HASH, &vec![b'x'; ENVELOPE_SIZE_MAX]).is_ok());
        assert_eq!(
            encode_entry(3, &ZERO_HASH, &vec![b'x'; ENVELOPE_SIZE_MAX + 1]),
            Err(EntryError::EnvelopeOversize { index: 3, size: ENVELOPE_SIZE_MAX + 1 })
        );
        assert_eq!(encode_entry(3, &ZERO_HASH, b""), Err(EntryError::EnvelopeEmpty { index: 3 }));
    }

    fn chain_of(n: u64) -> Vec<Vec<u8>> {
        let mut chain = Chain::new();
        (0..n).map(|i| chain.append(format!("envelope {i}").as_bytes()).unwrap().0).collect()
    }

    #[test]
    fn chain_accepts_a_good_run() {
        let entries = chain_of(5);
        let hashes = verify_chain(entries.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(hashes.len(), 5);
        assert_eq!(hashes[4], leaf_hash(&entries[4]));
        assert_eq!(decode_entry(&entries[3]).unwrap().prev, hashes[2]);
    }

    #[test]
    fn chain_names_the_first_bad_entry() {
        let mut entries = chain_of(5);
        entries[3][45] ^= 1; // tamper with entry 3's envelope: entry 4's prev breaks
        let err = verify_chain(entries.iter().map(Vec::as_slice)).unwrap_err();
        assert!(matches!(err, ChainError::PrevMismatch { index: 4, .. }), "{err}");

        let mut entries = chain_of(5);
        entries.remove(2);
        let err = verify_chain(entries.iter().map(Vec::as_slice)).unwrap_err();
        assert_eq!(err, ChainError::IndexGap { position: 2, found: 3 });
        assert_eq!(err.to_string(), "chain: entry at position 2 has index 3");

        let bad_first = encode_entry(0, &leaf_hash(b"x"), b"e").unwrap();
        assert!(matches!(verify_chain([bad_first.as_slice()]), Err(ChainError::FirstPrevNotZero { .. })));

        let entries = chain_of(2);
        let err = verify_chain([entries[0].as_slice(), &entries[1][..10]]).unwrap_err();
        assert_eq!(err, ChainError::Malformed { position: 1, source: EntryError::Short { size: 10 } });
    }

    #[test]
    fn chain_resumes() {
        let entries = chain_of(4);
        let hashes = verify_chain(entries.iter().map(Vec::as_slice)).unwrap();
        let mut chain = Chain::resume(2, hashes[1]);
        assert_eq!(chain.push(&entries[2]), Ok(hashes[2]));
        assert_eq!(chain.push(&entries[3]), Ok(hashes[3]));
        assert_eq!(chain.next_index(), 4);
    }
}
