//! The RFC 6962 / RFC 9162 Merkle tree over ledger entries, stored Go-tlog style.
//!
//! Storage is a set of *stored hashes*, one per complete subtree, addressed by
//! [`NodeId`] `(level, index)`: the hash at level `L`, index `N` covers leaves
//! `[N·2^L, (N+1)·2^L)`. Level 0 holds the leaf hashes. A tree of `n` leaves has every
//! complete subtree stored and nothing else, so appending never rewrites a hash: the
//! appender returns the new hashes to persist and the projection writes them.
//!
//! The tree hash and both proofs need at most `O(log n)` stored hashes, fetched in one
//! [`HashReader::read_hashes`] call. The tree algorithms are those of the pinned
//! `tlog_tiles` crate (a port of Go's `golang.org/x/mod/sumdb/tlog`); this module adds
//! named limits, typed errors and the `(level, index)` addressing.

use crate::hash::{Hash, EMPTY_ROOT};
use std::cell::RefCell;
use std::collections::HashMap;
use thiserror::Error;

/// Longest inclusion proof accepted: one hash per level of a tree of up to 2^64 leaves.
pub const INCLUSION_PROOF_HASHES_MAX: usize = 64;
/// Longest consistency proof accepted (RFC 9162 §2.1.4: at most ⌈log₂ n⌉ + 1 hashes).
pub const CONSISTENCY_PROOF_HASHES_MAX: usize = 65;
/// Most leaves appended in one [`append_leaves`] call.
pub const APPEND_BATCH_LEAVES_MAX: usize = 1 << 20;
/// Highest level of a stored hash (a complete subtree of 2^63 leaves).
pub const LEVEL_MAX: u8 = 63;

/// The address of a stored hash: the complete subtree at `level` with position `index`
/// among the subtrees of that level, i.e. leaves `[index·2^level, (index+1)·2^level)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn new(level: u8, index: u64) -> NodeId {
        assert!(level <= LEVEL_MAX, "level {level} over {LEVEL_MAX}");
        NodeId { level, index }
    }

    /// The position of this hash in Go tlog's dense linear order (Crosby–Wallach §3.3).
    pub fn stored_hash_index(&self) -> u64 {
        tlog_tiles::stored_hash_index(self.level, self.index)
    }

    /// Inverse of [`NodeId::stored_hash_index`].
    pub fn from_stored_hash_index(index: u64) -> NodeId {
        let (level, n) = tlog_tiles::split_stored_hash_index(index);
        NodeId::new(level, n)
    }
}

/// Why stored hashes could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HashReadError {
    #[error("stored hash (level {level}, index {index}) not found")]
    Missing { level: u8, index: u64 },
    #[error("hash storage: {0}")]
    Storage(String),
}

/// Read access to stored hashes. An implementation returns exactly one hash per id, in
/// order, or an error.
pub trait HashReader {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, HashReadError>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, HashReadError> {
        (**self).read_hashes(ids)
    }
}

/// Errors of tree hashing, proving and proof checking.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TreeError {
    #[error("inclusion proof for index {index} in tree of size {size}: index out of range")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("consistency proof from size {old_size} to size {new_size}: old size is larger")]
    OldSizeLarger { old_size: u64, new_size: u64 },
    #[error("inclusion proof for index {index} in tree of size {size}: {found} hashes, expected {expected}")]
    InclusionProofLength { index: u64, size: u64, found: usize, expected: usize },
    #[error("{kind} proof: {found} hashes exceeds the maximum of {max}")]
    ProofTooLong { kind: &'static str, found: usize, max: usize },
    #[error("inclusion proof for index {index} in tree of size {size}: does not lead to the root")]
    InclusionMismatch { index: u64, size: u64 },
    #[error("consistency proof from size {old_size} to size {new_size}: does not match the roots")]
    ConsistencyMismatch { old_size: u64, new_size: u64 },
    #[error("consistency proof from size {size} to size {size}: roots differ")]
    SameSizeRootsDiffer { size: u64 },
    #[error("tree of size {size}: {source}")]
    Read {
        size: u64,
        #[source]
        source: HashReadError,
    },
    #[error("tree of size {size}: appending {count} leaves overflows or exceeds the batch maximum of {APPEND_BATCH_LEAVES_MAX}")]
    AppendTooMany { size: u64, count: usize },
    #[error("tree of size {size}: hash reader returned {found} hashes for {expected} ids")]
    BadReader { size: u64, found: usize, expected: usize },
}

/// Adapts a [`HashReader`] to `tlog_tiles::HashReader`, keeping our typed error (the
/// pinned crate's error type is stringly) and guarding its length assertion.
struct TlogReader<'a, R: ?Sized> {
    inner: &'a R,
    error: RefCell<Option<TreeError>>,
    size: u64,
}

impl<'a, R: HashReader + ?Sized> TlogReader<'a, R> {
    fn new(inner: &'a R, size: u64) -> Self {
        TlogReader { inner, error: RefCell::new(None), size }
    }

    /// Maps an error from `tlog_tiles`, preferring the typed one we saved.
    fn take_error(&self, err: tlog_tiles::Error) -> TreeError {
        let saved = self.error.borrow_mut().take();
        saved.unwrap_or_else(|| TreeError::Read { size: self.size, source: HashReadError::Storage(err.to_string()) })
    }
}

impl<R: HashReader + ?Sized> tlog_tiles::HashReader for TlogReader<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        let ids: Vec<NodeId> = indexes.iter().map(|&i| NodeId::from_stored_hash_index(i)).collect();
        let fail = |e: TreeError| {
            *self.error.borrow_mut() = Some(e);
            tlog_tiles::Error::InvalidInput("hash reader failed".into())
        };
        let hashes =
            self.inner.read_hashes(&ids).map_err(|source| fail(TreeError::Read { size: self.size, source }))?;
        if hashes.len() != ids.len() {
            return Err(fail(TreeError::BadReader { size: self.size, found: hashes.len(), expected: ids.len() }));
        }
        Ok(hashes.into_iter().map(Hash::to_tlog).collect())
    }
}

/// The stored hashes to persist when appending leaf number `size` (0-based) with leaf hash
/// `leaf` to a tree of `size` leaves: the leaf itself at `(0, size)` and one hash per
/// subtree the leaf completes. At most `1 + log₂ n` hashes, about two on average; reads
/// at most `log₂ n` earlier hashes.
pub fn append_leaf<R: HashReader + ?Sized>(
    size: u64,
    leaf: Hash,
    reader: &R,
) -> Result<Vec<(NodeId, Hash)>, TreeError> {
    if size == u64::MAX {
        return Err(TreeError::AppendTooMany { size, count: 1 });
    }
    let adapter = TlogReader::new(reader, size);
    let hashes =
        tlog_tiles::stored_hashes_for_record_hash(size, leaf.to_tlog(), &adapter).map_err(|e| adapter.take_error(e))?;
    // tlog returns the leaf, then the hash of each newly completed subtree, bottom-up.
    assert_eq!(hashes.len(), 1 + (size + 1).trailing_zeros() as usize);
    let out: Vec<(NodeId, Hash)> = hashes
        .into_iter()
        .enumerate()
        .map(|(level, h)| {
            let level = u8::try_from(level).expect("at most 64 levels");
            (NodeId::new(level, size >> level), Hash::from_tlog(h))
        })
        .collect();
    debug_assert_eq!(out[0], (NodeId::new(0, size), leaf));
    Ok(out)
}

/// Reads from an underlying store, then from the hashes added by the current batch.
struct Overlay<'a, R: ?Sized> {
    base: &'a R,
    added: HashMap<NodeId, Hash>,
    base_size: u64,
}

impl<R: HashReader + ?Sized> HashReader for Overlay<'_, R> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, HashReadError> {
        // A stored hash is in the base store when its subtree ends within the base size.
        let in_base = |id: &NodeId| {
            id.index
                .checked_add(1)
                .and_then(|end| end.checked_shl(u32::from(id.level)))
                .is_some_and(|end| end <= self.base_size)
        };
        let base_ids: Vec<NodeId> = ids.iter().copied().filter(in_base).collect();
        let mut base_hashes = self.base.read_hashes(&base_ids)?.into_iter();
        ids.iter()
            .map(|id| {
                if in_base(id) {
                    base_hashes.next().ok_or(HashReadError::Storage("hash reader returned too few hashes".into()))
                } else {
                    self.added.get(id).copied().ok_or(HashReadError::Missing { level: id.level, index: id.index })
                }
            })
            .collect()
    }
}

/// Like [`append_leaf`] for a batch: the stored hashes to persist when appending
/// `leaves` to a tree of `size` leaves, in append order.
pub fn append_leaves<R: HashReader + ?Sized>(
    size: u64,
    leaves: &[Hash],
    reader: &R,
) -> Result<Vec<(NodeId, Hash)>, TreeError> {
    let too_many = TreeError::AppendTooMany { size, count: leaves.len() };
    if leaves.len() > APPEND_BATCH_LEAVES_MAX {
        return Err(too_many);
    }
    let end = size.checked_add(leaves.len() as u64).ok_or(too_many)?;
    let mut overlay = Overlay { base: reader, added: HashMap::new(), base_size: size };
    let mut out = Vec::with_capacity(2 * leaves.len());
    for (i, leaf) in leaves.iter().enumerate() {
        let new = append_leaf(size + i as u64, *leaf, &overlay)?;
        overlay.added.extend(new.iter().copied());
        out.extend(new);
    }
    debug_assert_eq!(out.len() as u64, tlog_tiles::stored_hash_count(end) - tlog_tiles::stored_hash_count(size));
    Ok(out)
}

/// The root hash of the tree of `size` leaves, MTH(D\[0:size\]) of RFC 9162 §2.1.1,
/// from at most `1 + log₂ size` stored hashes.
pub fn tree_hash<R: HashReader + ?Sized>(size: u64, reader: &R) -> Result<Hash, TreeError> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    let adapter = TlogReader::new(reader, size);
    tlog_tiles::tree_hash(size, &adapter).map(Hash::from_tlog).map_err(|e| adapter.take_error(e))
}

/// The inclusion proof (audit path) for leaf `index` in the tree of `size` leaves,
/// PATH(index, D\[0:size\]) of RFC 9162 §2.1.3.1: sibling hashes from the leaf up.
pub fn prove_inclusion<R: HashReader + ?Sized>(size: u64, index: u64, reader: &R) -> Result<Vec<Hash>, TreeError> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let adapter = TlogReader::new(reader, size);
    let proof = tlog_tiles::prove_record(size, index, &adapter).map_err(|e| adapter.take_error(e))?;
    debug_assert_eq!(proof.len(), inclusion_proof_len(index, size));
    Ok(proof.into_iter().map(Hash::from_tlog).collect())
}

/// The consistency proof from the tree of `old_size` leaves to the tree of `new_size`
/// leaves, PROOF(old_size, D\[0:new_size\]) of RFC 9162 §2.1.4.1. Empty when
/// `old_size` is 0 or equal to `new_size`.
pub fn prove_consistency<R: HashReader + ?Sized>(
    old_size: u64,
    new_size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    if old_size > new_size {
        return Err(TreeError::OldSizeLarger { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let adapter = TlogReader::new(reader, new_size);
    let proof = tlog_tiles::prove_tree(new_size, old_size, &adapter).map_err(|e| adapter.take_error(e))?;
    assert!(proof.len() <= CONSISTENCY_PROOF_HASHES_MAX);
    Ok(proof.into_iter().map(Hash::from_tlog).collect())
}

/// The length of the inclusion proof for `index` in a tree of `size` leaves
/// (RFC 9162 §2.1.3.2: the inner path plus the border path).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    assert!(index < size, "index {index} in tree of size {size}");
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    inner + border
}

/// Verifies that `proof` shows leaf hash `leaf` at `index` in the tree of `size` leaves
/// with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(proof: &[Hash], index: u64, size: u64, leaf: &Hash, root: &Hash) -> Result<(), TreeError> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    if proof.len() > INCLUSION_PROOF_HASHES_MAX {
        return Err(TreeError::ProofTooLong { kind: "inclusion", found: proof.len(), max: INCLUSION_PROOF_HASHES_MAX });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(TreeError::InclusionProofLength { index, size, found: proof.len(), expected });
    }
    let proof: Vec<tlog_tiles::Hash> = proof.iter().map(|h| h.to_tlog()).collect();
    tlog_tiles::check_record(&proof, size, root.to_tlog(), index, leaf.to_tlog())
        .map_err(|_| TreeError::InclusionMismatch { index, size })
}

/// Verifies that `proof` shows the tree of `new_size` leaves with root `new_root` extends
/// the tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots; differing roots at one size are a
/// [`TreeError::SameSizeRootsDiffer`]. From the empty tree, any tree is consistent.
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
) -> Result<(), TreeError> {
    if old_size > new_size {
        return Err(TreeError::OldSizeLarger { old_size, new_size });
    }
    if proof.len() > CONSISTENCY_PROOF_HASHES_MAX {
        return Err(TreeError::ProofTooLong {
            kind: "consistency",
            found: proof.len(),
            max: CONSISTENCY_PROOF_HASHES_MAX,
        });
    }
    let mismatch = TreeError::ConsistencyMismatch { old_size, new_size };
    if old_size == new_size {
        if old_root != new_root {
            return Err(TreeError::SameSizeRootsDiffer { size: old_size });
        }
        return if proof.is_empty() { Ok(()) } else { Err(mismatch) };
    }
    if old_size == 0 {
        // Every tree extends the empty one; RFC 9162 §2.1.4 gives no proof for it.
        return if proof.is_empty() && *old_root == EMPTY_ROOT { Ok(()) } else { Err(mismatch) };
    }
    let proof: Vec<tlog_tiles::Hash> = proof.iter().map(|h| h.to_tlog()).collect();
    tlog_tiles::check_tree(&proof, new_size, new_root.to_tlog(), old_size, old_root.to_tlog()).map_err(|_| mismatch)
}

/// Stored hashes in memory, level by level: for tests, benchmarks, verifiers replaying a
/// ledger, and other small uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryHashStore {
    levels: Vec<Vec<Hash>>,
}

impl MemoryHashStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The stored hash at `id`, if stored.
    pub fn get(&self, id: NodeId) -> Option<Hash> {
        let level = self.levels.get(usize::from(id.level))?;
        level.get(usize::try_from(id.index).ok()?).copied()
    }

    /// Stores hashes returned by [`append_leaf`] / [`append_leaves`]. Each must be the
    /// next hash of its level: stored hashes are written once, in order.
    pub fn store(&mut self, hashes: &[(NodeId, Hash)]) {
        for (id, hash) in hashes {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.resize(level + 1, Vec::new());
            }
            assert_eq!(self.levels[level].len() as u64, id.index, "stored hashes are appended in order");
            self.levels[level].push(*hash);
        }
    }

    /// Appends one leaf hash; returns the new tree size.
    pub fn append(&mut self, leaf: Hash) -> u64 {
        let hashes = append_leaf(self.size(), leaf, self).expect("memory store has every hash");
        self.store(&hashes);
        self.size()
    }

    /// Appends many leaf hashes; returns the new tree size.
    pub fn append_many(&mut self, leaves: &[Hash]) -> Result<u64, TreeError> {
        let hashes = append_leaves(self.size(), leaves, self)?;
        self.store(&hashes);
        Ok(self.size())
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        tree_hash(self.size(), self).expect("memory store has every hash")
    }
}

impl HashReader for MemoryHashStore {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, HashReadError> {
        ids.iter().map(|&id| self.get(id).ok_or(HashReadError::Missing { level: id.level, index: id.index })).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn stored_hash_index_round_trips() {
        for i in 0..2000u64 {
            let id = NodeId::from_stored_hash_index(i);
            assert_eq!(id.stored_hash_index(), i);
        }
    }

    #[test]
    fn error_messages_name_the_numbers() {
        let store = MemoryHashStore::new();
        let err = prove_inclusion(10, 12, &store).unwrap_err();
        assert_eq!(err.to_string(), "inclusion proof for index 12 in tree of size 10: index out of range");
        let err = tree_hash(3, &store).unwrap_err();
        assert_eq!(err.to_string(), "tree of size 3: stored hash (level 1, index 0) not found");
    }

    #[test]
    fn batch_append_equals_one_by_one() {
        let leaves: Vec<Hash> = (0..100u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut one = MemoryHashStore::new();
        for leaf in &leaves {
            one.append(*leaf);
        }
        let mut many = MemoryHashStore::new();
        many.append_many(&leaves[..37]).unwrap();
        many.append_many(&leaves[37..]).unwrap();
        assert_eq!(one, many);
    }

    #[test]
    fn inclusion_proof_len_matches_rfc_examples() {
        // RFC 9162 §2.1.5: in the 7-leaf tree, the path for d0 has 3 hashes, for d6 two.
        assert_eq!(inclusion_proof_len(0, 7), 3);
        assert_eq!(inclusion_proof_len(3, 7), 3);
        assert_eq!(inclusion_proof_len(4, 7), 3);
        assert_eq!(inclusion_proof_len(6, 7), 2);
        assert_eq!(inclusion_proof_len(0, 1), 0);
    }
}
