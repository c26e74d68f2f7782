//! Cross-checks the ledger's tree (built on the pinned `tlog_tiles` crate) against an
//! independent implementation written from RFC 9162 §2.1 alone, plus the published
//! RFC 6962 test vectors of the Certificate Transparency project.

use fundtrail_ledger::tree::{inclusion_proof_len, CONSISTENCY_PROOF_HASHES_MAX};
use fundtrail_ledger::{
    append_leaves, leaf_hash, node_hash, prove_consistency, prove_inclusion, tree_hash, verify_consistency,
    verify_inclusion, Hash, MemoryHashStore, TreeError, EMPTY_ROOT,
};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// The independent implementation: MTH, PATH and PROOF as the recursive definitions of
/// RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, and the iterative verifiers of §2.1.3.2 and
/// §2.1.4.2. Subtree hashes are memoised by range.
struct Reference {
    leaves: Vec<Hash>,
    memo: RefCell<HashMap<(usize, usize), Hash>>,
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    assert!(n > 1);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

impl Reference {
    fn new(leaves: Vec<Hash>) -> Self {
        Reference { leaves, memo: RefCell::new(HashMap::new()) }
    }

    /// MTH(D[lo:hi]).
    fn mth(&self, lo: usize, hi: usize) -> Hash {
        let n = hi - lo;
        if n == 0 {
            return EMPTY_ROOT;
        }
        if n == 1 {
            return self.leaves[lo];
        }
        if let Some(h) = self.memo.borrow().get(&(lo, hi)) {
            return *h;
        }
        let k = split(n);
        let h = node_hash(&self.mth(lo, lo + k), &self.mth(lo + k, hi));
        self.memo.borrow_mut().insert((lo, hi), h);
        h
    }

    /// PATH(m, D[lo:hi]).
    fn path(&self, m: usize, lo: usize, hi: usize) -> Vec<Hash> {
        let n = hi - lo;
        if n == 1 {
            return vec![];
        }
        let k = split(n);
        if m < k {
            let mut p = self.path(m, lo, lo + k);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.path(m - k, lo + k, hi);
            p.push(self.mth(lo, lo + k));
            p
        }
    }

    /// PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true).
    fn proof(&self, m: usize, n: usize) -> Vec<Hash> {
        self.subproof(m, 0, n, true)
    }

    fn subproof(&self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Hash> {
        let n = hi - lo;
        if m == n {
            return if b { vec![] } else { vec![self.mth(lo, hi)] };
        }
        let k = split(n);
        if m <= k {
            let mut p = self.subproof(m, lo, lo + k, b);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.subproof(m - k, lo + k, hi, false);
            p.push(self.mth(lo, lo + k));
            p
        }
    }
}

/// RFC 9162 §2.1.3.2.
fn ref_verify_inclusion(index: u64, size: u64, leaf: Hash, proof: &[Hash], root: Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == root
}

/// RFC 9162 §2.1.4.2 (for 0 < first < second).
fn ref_verify_consistency(first: u64, second: u64, h1: Hash, h2: Hash, proof: &[Hash]) -> bool {
    assert!(0 < first && first < second);
    if proof.is_empty() {
        return false;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, h1);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == h1 && sr == h2 && s == 0
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn flip(h: &Hash) -> Hash {
    let mut h = *h;
    h.0[0] ^= 1;
    h
}

fn h(hex_str: &str) -> Hash {
    Hash(hex::decode(hex_str).unwrap().try_into().unwrap())
}

#[test]
fn every_tree_size_to_300_agrees_with_the_reference() {
    const N: usize = 300;
    let all = leaves(N);
    let reference = Reference::new(all.clone());
    let mut store = MemoryHashStore::new();
    let mut roots = vec![EMPTY_ROOT];
    for n in 1..=N {
        store.append(all[n - 1]);
        let size = n as u64;
        let root = tree_hash(size, &store).unwrap();
        assert_eq!(root, reference.mth(0, n), "root of size {n}");
        roots.push(root);
        for m in 0..n {
            let proof = prove_inclusion(size, m as u64, &store).unwrap();
            assert_eq!(proof, reference.path(m, 0, n), "inclusion {m} in {n}");
            assert_eq!(proof.len(), inclusion_proof_len(m as u64, size));
            assert!(ref_verify_inclusion(m as u64, size, all[m], &proof, root));
            assert_eq!(verify_inclusion(&proof, m as u64, size, &all[m], &root), Ok(()));
            // A wrong leaf, root or sibling is refused by both implementations.
            let other = all[(m + 1) % n];
            if n > 1 {
                assert!(verify_inclusion(&proof, m as u64, size, &other, &root).is_err());
                assert!(!ref_verify_inclusion(m as u64, size, other, &proof, root));
                let mut bad = proof.clone();
                bad[0] = flip(&bad[0]);
                assert!(verify_inclusion(&bad, m as u64, size, &all[m], &root).is_err());
                assert!(!ref_verify_inclusion(m as u64, size, all[m], &bad, root));
            }
            assert!(verify_inclusion(&proof, m as u64, size, &all[m], &flip(&root)).is_err());
        }
        #[allow(clippy::needless_range_loop)] // m is a tree size, not only an index
        for m in 1..n {
            let proof = prove_consistency(m as u64, size, &store).unwrap();
            assert_eq!(proof, reference.proof(m, n), "consistency {m} to {n}");
            assert!(proof.len() <= CONSISTENCY_PROOF_HASHES_MAX);
            assert!(ref_verify_consistency(m as u64, size, roots[m], root, &proof));
            assert_eq!(verify_consistency(&proof, m as u64, &roots[m], size, &root), Ok(()));
            let wrong_old = flip(&roots[m]);
            assert!(verify_consistency(&proof, m as u64, &wrong_old, size, &root).is_err());
            assert!(!ref_verify_consistency(m as u64, size, wrong_old, root, &proof));
            let mut bad = proof.clone();
            let last = bad.len() - 1;
            bad[last] = flip(&bad[last]);
            assert!(verify_consistency(&bad, m as u64, &roots[m], size, &root).is_err());
            assert!(!ref_verify_consistency(m as u64, size, roots[m], root, &bad));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn larger_random_trees_agree_with_the_reference(
        size in 301usize..40_000,
        index_seed in any::<u64>(),
        old_seed in any::<u64>(),
        split_seed in any::<u64>(),
    ) {
        let all = leaves(size);
        let reference = Reference::new(all.clone());
        let mut store = MemoryHashStore::new();
        // Appended in two batches at a random point: batches must not change anything.
        let cut = (split_seed % size as u64) as usize;
        store.append_many(&all[..cut]).unwrap();
        store.append_many(&all[cut..]).unwrap();
        let n = size as u64;
        let root = store.root();
        prop_assert_eq!(root, reference.mth(0, size));
        let index = index_seed % n;
        let proof = prove_inclusion(n, index, &store).unwrap();
        prop_assert_eq!(&proof, &reference.path(index as usize, 0, size));
        prop_assert!(ref_verify_inclusion(index, n, all[index as usize], &proof, root));
        prop_assert_eq!(verify_inclusion(&proof, index, n, &all[index as usize], &root), Ok(()));
        let old = 1 + old_seed % (n - 1);
        let old_root = tree_hash(old, &store).unwrap();
        prop_assert_eq!(old_root, reference.mth(0, old as usize));
        let proof = prove_consistency(old, n, &store).unwrap();
        prop_assert_eq!(&proof, &reference.proof(old as usize, size));
        prop_assert!(ref_verify_consistency(old, n, old_root, root, &proof));
        prop_assert_eq!(verify_consistency(&proof, old, &old_root, n, &root), Ok(()));
    }

    #[test]
    fn random_proofs_never_verify(
        size in 2u64..1_000_000,
        index_seed in any::<u64>(),
        proof in proptest::collection::vec(any::<[u8; 32]>(), 0..24),
        root in any::<[u8; 32]>(),
        leaf in any::<[u8; 32]>(),
    ) {
        let index = index_seed % size;
        let proof: Vec<Hash> = proof.into_iter().map(Hash).collect();
        let ours = verify_inclusion(&proof, index, size, &Hash(leaf), &Hash(root)).is_ok();
        let theirs = ref_verify_inclusion(index, size, Hash(leaf), &proof, Hash(root));
        prop_assert!(!ours && !theirs);
        let old = 1 + index_seed % (size - 1);
        prop_assert!(verify_consistency(&proof, old, &Hash(leaf), size, &Hash(root)).is_err());
    }
}

/// RFC 6962 test vectors (Certificate Transparency's reference tree of 8 leaves, as in
/// transparency-dev/merkle's testonly constants).
const CT_LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn ct_store() -> MemoryHashStore {
    let mut store = MemoryHashStore::new();
    for leaf in CT_LEAVES {
        store.append(leaf_hash(&hex::decode(leaf).unwrap()));
    }
    store
}

#[test]
fn rfc6962_test_vector_roots() {
    let store = ct_store();
    assert_eq!(tree_hash(0, &store).unwrap(), EMPTY_ROOT);
    for (i, root) in CT_ROOTS.iter().enumerate() {
        assert_eq!(tree_hash(i as u64 + 1, &store).unwrap(), h(root), "size {}", i + 1);
    }
}

#[test]
fn rfc6962_test_vector_proofs() {
    let store = ct_store();
    let inclusion: &[(u64, u64, &[&str])] = &[
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (0, 1, &[]),
    ];
    for (index, size, want) in inclusion {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(prove_inclusion(*size, *index, &store).unwrap(), want, "{index} in {size}");
    }
    let consistency: &[(u64, u64, &[&str])] = &[
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, want) in consistency {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(prove_consistency(*old, *new, &store).unwrap(), want, "{old} to {new}");
        let old_root = h(CT_ROOTS[*old as usize - 1]);
        let new_root = h(CT_ROOTS[*new as usize - 1]);
        assert_eq!(verify_consistency(&want, *old, &old_root, *new, &new_root), Ok(()));
    }
}

#[test]
fn proof_errors_name_the_numbers() {
    let store = ct_store();
    let root = store.root();
    let err = verify_inclusion(&[], 12, 10, &root, &root).unwrap_err();
    assert_eq!(err.to_string(), "inclusion proof for index 12 in tree of size 10: index out of range");
    let err = verify_inclusion(&[root; 2], 0, 8, &root, &root).unwrap_err();
    assert_eq!(err, TreeError::InclusionProofLength { index: 0, size: 8, found: 2, expected: 3 });
    let err = verify_inclusion(&[root; 65], 0, 8, &root, &root).unwrap_err();
    assert!(matches!(err, TreeError::ProofTooLong { found: 65, .. }), "{err}");
    let err = verify_consistency(&[], 8, &root, 8, &flip(&root)).unwrap_err();
    assert_eq!(err, TreeError::SameSizeRootsDiffer { size: 8 });
    let err = prove_consistency(9, 8, &store).unwrap_err();
    assert_eq!(err.to_string(), "consistency proof from size 9 to size 8: old size is larger");
}

#[test]
fn appender_writes_each_stored_hash_once_and_in_order() {
    // The hashes returned by append_leaves, persisted one by one, are exactly the stored
    // hashes of the tree: the count Go's tlog predicts, and their (level, index) complete.
    let all = leaves(1000);
    let mut store = MemoryHashStore::new();
    let mut written = Vec::new();
    for chunk in all.chunks(77) {
        let new = append_leaves(store.size(), chunk, &store).unwrap();
        store.store(&new);
        written.extend(new);
    }
    assert_eq!(written.len() as u64, tlog_tiles::stored_hash_count(1000));
    for (id, hash) in &written {
        let span = 1u64 << id.level;
        let (lo, hi) = (id.index * span, (id.index + 1) * span);
        assert!(hi <= 1000);
        let reference = Reference::new(all.clone());
        assert_eq!(*hash, reference.mth(lo as usize, hi as usize));
    }
}
