//! Checking that a new checkpoint extends what a verifier saw before: consistency,
//! rollback and fork detection.

use crate::checkpoint::Checkpoint;
use crate::hash::Hash;
use crate::note::{LogVerifier, NoteError};
use crate::tree::{verify_consistency, TreeError};
use thiserror::Error;

/// Why a new checkpoint does not extend the old tree head.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConsistencyError {
    /// Two tree heads of one size with different roots: the log showed two histories.
    /// Keep both signed checkpoints: together they prove the log misbehaved.
    #[error("fork: two checkpoints of size {size} with roots {old_root} and {new_root}")]
    Fork { size: u64, old_root: Hash, new_root: Hash },
    #[error("rollback: checkpoint of size {new_size} is older than the size {old_size} already seen")]
    Rollback { old_size: u64, new_size: u64 },
    #[error("checkpoint of size {new_size} is not consistent with size {old_size}: {source}")]
    Inconsistent {
        old_size: u64,
        new_size: u64,
        #[source]
        source: TreeError,
    },
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// Checks that checkpoint `new` extends the tree head (`old_size`, `old_root`) with the
/// consistency `proof` (RFC 9162 §2.1.4.2). Same size, other root: [`ConsistencyError::Fork`];
/// a smaller size: [`ConsistencyError::Rollback`].
pub fn check_consistency(
    old_size: u64,
    old_root: &Hash,
    new: &Checkpoint,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    if new.size < old_size {
        return Err(ConsistencyError::Rollback { old_size, new_size: new.size });
    }
    if new.size == old_size && new.root != *old_root {
        return Err(ConsistencyError::Fork { size: old_size, old_root: *old_root, new_root: new.root });
    }
    verify_consistency(proof, old_size, old_root, new.size, &new.root)
        .map_err(|source| ConsistencyError::Inconsistent { old_size, new_size: new.size, source })
}

/// Verifies a new signed checkpoint with the log's key, then its consistency with the
/// old tree head. Returns the new checkpoint, to remember as the next old tree head.
pub fn check_new_checkpoint(
    old_size: u64,
    old_root: &Hash,
    new_note: &[u8],
    log: &LogVerifier,
    proof: &[Hash],
) -> Result<Checkpoint, ConsistencyError> {
    let new = log.verify_checkpoint(new_note)?;
    check_consistency(old_size, old_root, &new, proof)?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{prove_consistency, MemoryHashStore};

    fn store(n: u32) -> MemoryHashStore {
        let mut s = MemoryHashStore::new();
        for i in 0..n {
            s.append(leaf_hash(&i.to_be_bytes()));
        }
        s
    }

    #[test]
    fn growth_rollback_and_fork() {
        let s = store(20);
        let old_root = crate::tree::tree_hash(7, &s).unwrap();
        let new = Checkpoint::new("o", 20, s.root()).unwrap();
        let proof = prove_consistency(7, 20, &s).unwrap();
        assert_eq!(check_consistency(7, &old_root, &new, &proof), Ok(()));
        assert!(matches!(
            check_consistency(7, &leaf_hash(b"other"), &new, &proof),
            Err(ConsistencyError::Inconsistent { old_size: 7, new_size: 20, .. })
        ));
        assert_eq!(
            check_consistency(21, &old_root, &new, &[]),
            Err(ConsistencyError::Rollback { old_size: 21, new_size: 20 })
        );
        let forked = store(19);
        let mut other = forked.clone();
        other.append(leaf_hash(b"a different event"));
        let err = check_consistency(20, &other.root(), &new, &[]).unwrap_err();
        assert!(matches!(err, ConsistencyError::Fork { size: 20, .. }), "{err}");
        assert!(err.to_string().starts_with("fork: two checkpoints of size 20"));
        assert_eq!(check_consistency(20, &s.root(), &new, &[]), Ok(()));
        assert_eq!(check_consistency(0, &crate::hash::EMPTY_ROOT, &new, &[]), Ok(()));
    }
}
