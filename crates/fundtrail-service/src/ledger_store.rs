//! How the public ledger lies in the projections' sled tree.
//!
//! A chunk of the projection runner appends many entries at once, so the
//! ledger is stored by the chunk, not by the entry: one sled insert per
//! *run* of entries and per *group* of hashes, rather than three inserts per
//! entry. sled's cost is per insert (each one copies a leaf node), so this
//! is most of what the ledger projection costs under load.
//!
//! - Entry runs: `e\0<run, u64 BE>` → the entries with indexes `run·16 …`,
//!   each as a u32 BE length and the entry bytes. A run grows as the ledger
//!   does; an entry bundle tile is 16 runs.
//! - Hash groups: `h\0<level, u8><group, u64 BE>` → the stored hashes of that
//!   tree level with indexes `group·256 …`, 32 bytes each, in order. A group
//!   grows as the tree does (a chunk rewrites the groups it extends); at tile
//!   levels (0, 8, 16, …) a group is exactly a C2SP hash tile.
//!
//! Invariants: the layout depends only on the ledger, not on how it was
//! chunked (a rebuild writes the same bytes under the same keys); runs and
//! groups are contiguous — every write continues exactly where the stored
//! data ends, and [`LedgerAppend::write`] refuses anything else rather than
//! leave a gap or an overlap in a signed tree.

use std::collections::BTreeMap;

use fundtrail_ledger::{Hash, HashReadError, HashReader, NodeId};

/// Hashes per group (the C2SP tile width).
pub const GROUP_WIDTH: u64 = 256;
/// Entries per run: small, because the newest run is rewritten as it grows
/// (under light load, once per entry); a bundle of 256 is 16 runs.
pub const RUN_WIDTH: u64 = 16;
/// Key prefix of the hash groups.
pub const HASH_PREFIX: &[u8] = b"h\0";
/// Key prefix of the entry runs.
pub const ENTRY_PREFIX: &[u8] = b"e\0";

const HASH_BYTES: usize = 32;

/// Why the stored ledger could not be read or extended.
#[derive(Debug, thiserror::Error)]
pub enum LedgerStoreError {
    #[error("ledger storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("ledger storage is corrupt: {0}")]
    Corrupt(String),
}

fn group_key(level: u8, group: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(HASH_PREFIX.len() + 9);
    k.extend_from_slice(HASH_PREFIX);
    k.push(level);
    k.extend_from_slice(&group.to_be_bytes());
    k
}

fn run_key(run: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(ENTRY_PREFIX.len() + 8);
    k.extend_from_slice(ENTRY_PREFIX);
    k.extend_from_slice(&run.to_be_bytes());
    k
}

fn run_of_key(key: &[u8]) -> Result<u64, LedgerStoreError> {
    let bytes = key
        .strip_prefix(ENTRY_PREFIX)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .ok_or_else(|| LedgerStoreError::Corrupt(format!("entry run key {key:?}")))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The entries of stored run `run`, in order.
fn run_entries(run: u64, value: &[u8]) -> Result<Vec<&[u8]>, LedgerStoreError> {
    let mut entries = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let corrupt = || LedgerStoreError::Corrupt(format!("entry run {run} is truncated"));
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt());
        }
        entries.push(&tail[..len]);
        rest = &tail[len..];
    }
    if entries.is_empty() || entries.len() as u64 > RUN_WIDTH {
        return Err(LedgerStoreError::Corrupt(format!("entry run {run} has {} entries", entries.len())));
    }
    Ok(entries)
}

/// What one chunk adds to the ledger; readable before it is written.
#[derive(Default)]
pub struct LedgerAppend {
    /// Index of `entries[0]`.
    first: u64,
    entries: Vec<Vec<u8>>,
    hashes: BTreeMap<NodeId, Hash>,
}

impl LedgerAppend {
    /// Adds entry `index`, which must follow the previous one.
    pub fn push_entry(&mut self, index: u64, entry: Vec<u8>) {
        if self.entries.is_empty() {
            self.first = index;
        }
        assert_eq!(index, self.first + self.entries.len() as u64, "entries are appended in order");
        self.entries.push(entry);
    }

    pub fn push_hash(&mut self, id: NodeId, hash: Hash) {
        let previous = self.hashes.insert(id, hash);
        assert!(previous.is_none(), "a stored hash is written once");
    }

    /// Adds this chunk's runs and groups to `batch`, continuing what `tree` holds.
    pub fn write(self, tree: &sled::Tree, batch: &mut sled::Batch) -> Result<(), LedgerStoreError> {
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for (index, entry) in (self.first..).zip(self.entries) {
            let run = index / RUN_WIDTH;
            if runs.last().is_none_or(|(r, _)| *r != run) {
                // The first run may be partly stored already: continue it.
                let stored = if runs.is_empty() { tree.get(run_key(run))? } else { None };
                let stored_count = match &stored {
                    Some(v) => run_entries(run, v)?.len() as u64,
                    None => 0,
                };
                if run * RUN_WIDTH + stored_count != index {
                    return Err(LedgerStoreError::Corrupt(format!(
                        "entry {index} does not continue run {run}, which holds {stored_count} entries"
                    )));
                }
                runs.push((run, stored.map(|v| v.to_vec()).unwrap_or_default()));
            }
            let (_, value) = runs.last_mut().expect("a run is open");
            let len = u32::try_from(entry.len()).expect("an entry is far below 4 GiB");
            value.extend_from_slice(&len.to_be_bytes());
            value.extend_from_slice(&entry);
        }
        for (run, value) in runs {
            batch.insert(run_key(run), value);
        }

        let mut hashes = self.hashes.into_iter().peekable();
        while let Some((id, hash)) = hashes.next() {
            let group = id.index / GROUP_WIDTH;
            let key = group_key(id.level, group);
            let mut value = tree.get(&key)?.map(|v| v.to_vec()).unwrap_or_default();
            let stored = (value.len() / HASH_BYTES) as u64;
            if value.len() % HASH_BYTES != 0 || group * GROUP_WIDTH + stored != id.index {
                return Err(LedgerStoreError::Corrupt(format!(
                    "hash (level {}, index {}) does not continue group {group}, which holds {stored} hashes",
                    id.level, id.index
                )));
            }
            value.extend_from_slice(&hash.0);
            let mut next = id.index + 1;
            while let Some((more, _)) = hashes.peek() {
                if more.level != id.level || more.index / GROUP_WIDTH != group {
                    break;
                }
                assert_eq!(more.index, next, "a chunk's hashes of one level are contiguous");
                let (_, h) = hashes.next().expect("peeked");
                value.extend_from_slice(&h.0);
                next += 1;
            }
            debug_assert!(value.len() as u64 <= GROUP_WIDTH * HASH_BYTES as u64);
            batch.insert(key, value);
        }
        Ok(())
    }
}

/// The ledger's stored hashes: the chunk being applied first, then sled.
pub struct StoredHashes<'a> {
    pub tree: &'a sled::Tree,
    pub pending: Option<&'a LedgerAppend>,
}

impl HashReader for StoredHashes<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, HashReadError> {
        // Tiles and proofs ask for many hashes of a few groups: read each group once.
        let mut groups: Vec<((u8, u64), Option<sled::IVec>)> = Vec::new();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(h) = self.pending.and_then(|p| p.hashes.get(id)) {
                out.push(*h);
                continue;
            }
            let group = (id.level, id.index / GROUP_WIDTH);
            let value = match groups.iter().find(|(g, _)| *g == group) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = self
                        .tree
                        .get(group_key(group.0, group.1))
                        .map_err(|e| HashReadError::Storage(e.to_string()))?;
                    groups.push((group, v.clone()));
                    v
                }
            };
            let offset = (id.index % GROUP_WIDTH) as usize * HASH_BYTES;
            let bytes = value
                .as_ref()
                .and_then(|v| v.get(offset..offset + HASH_BYTES))
                .ok_or(HashReadError::Missing { level: id.level, index: id.index })?;
            out.push(Hash(bytes.try_into().expect("32 bytes")));
        }
        Ok(out)
    }
}

/// Ledger entry `index`, if stored.
pub fn read_entry(tree: &sled::Tree, index: u64) -> Result<Option<Vec<u8>>, LedgerStoreError> {
    Ok(read_entries(tree, index, 1)?.and_then(|mut v| v.pop()))
}

/// Entries `start .. start + count`, if all are stored.
pub fn read_entries(tree: &sled::Tree, start: u64, count: u64) -> Result<Option<Vec<Vec<u8>>>, LedgerStoreError> {
    let Some(end) = start.checked_add(count) else { return Ok(None) };
    let mut out = Vec::with_capacity(count.min(GROUP_WIDTH) as usize);
    let first_run = start / RUN_WIDTH;
    for (expected_run, item) in (first_run..).zip(tree.range(run_key(first_run)..)) {
        let (key, value) = item?;
        if !key.starts_with(ENTRY_PREFIX) || expected_run * RUN_WIDTH >= end {
            break;
        }
        let run = run_of_key(&key)?;
        if run != expected_run {
            break; // not stored (yet)
        }
        for (i, entry) in run_entries(run, &value)?.into_iter().enumerate() {
            if (start..end).contains(&(run * RUN_WIDTH + i as u64)) {
                out.push(entry.to_vec());
            }
        }
    }
    Ok((out.len() as u64 == count).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundtrail_ledger::{append_leaf, leaf_hash, tree_hash, MemoryHashStore};

    /// Appends `sizes` chunks of entries, each written in its own batch.
    fn build(tree: &sled::Tree, sizes: &[u64]) -> (u64, MemoryHashStore) {
        let mut reference = MemoryHashStore::new();
        let mut size = 0u64;
        for &n in sizes {
            let mut append = LedgerAppend::default();
            for _ in 0..n {
                let entry = format!("entry {size}").into_bytes();
                let leaf = leaf_hash(&entry);
                let hashes = append_leaf(size, leaf, &StoredHashes { tree, pending: Some(&append) }).unwrap();
                reference.append(leaf);
                append.push_entry(size, entry);
                for (id, h) in hashes {
                    append.push_hash(id, h);
                }
                size += 1;
            }
            let mut batch = sled::Batch::default();
            append.write(tree, &mut batch).unwrap();
            tree.apply_batch(batch).unwrap();
        }
        (size, reference)
    }

    fn scratch() -> sled::Tree {
        sled::Config::new().temporary(true).open().unwrap().open_tree("views").unwrap()
    }

    #[test]
    fn chunks_of_every_shape_give_the_reference_tree_and_entries() {
        let tree = scratch();
        let (size, reference) = build(&tree, &[1, 1, 3, 255, 2, 256, 300, 1, 700, 17]);
        let stored = StoredHashes { tree: &tree, pending: None };
        for n in [1, 2, 3, 255, 256, 257, 511, 512, 1000, size] {
            assert_eq!(tree_hash(n, &stored).unwrap(), tree_hash(n, &reference).unwrap(), "size {n}");
        }
        for i in 0..size {
            assert_eq!(read_entry(&tree, i).unwrap().unwrap(), format!("entry {i}").into_bytes());
        }
        assert_eq!(read_entry(&tree, size).unwrap(), None);
        let bundle = read_entries(&tree, 256, 256).unwrap().unwrap();
        assert_eq!(bundle.len(), 256);
        assert_eq!(bundle[255], b"entry 511".to_vec());
        assert_eq!(read_entries(&tree, size - 3, 4).unwrap(), None, "past the end is not there");
        // The layout does not depend on the chunking.
        let other = scratch();
        build(&other, &[size]);
        let dump = |t: &sled::Tree| t.iter().map(|r| r.unwrap()).collect::<Vec<_>>();
        assert_eq!(dump(&tree), dump(&other));
    }

    #[test]
    fn a_gap_in_the_hashes_or_entries_is_refused() {
        let tree = scratch();
        build(&tree, &[3]);
        let mut append = LedgerAppend::default();
        append.push_hash(NodeId::new(0, 5), Hash([1; 32]));
        let err = append.write(&tree, &mut sled::Batch::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ledger storage is corrupt: hash (level 0, index 5) does not continue group 0, which holds 3 hashes"
        );
        let mut append = LedgerAppend::default();
        append.push_entry(4, b"entry 4".to_vec());
        let err = append.write(&tree, &mut sled::Batch::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ledger storage is corrupt: entry 4 does not continue run 0, which holds 3 entries"
        );
    }

    #[test]
    fn a_missing_hash_is_named() {
        let tree = scratch();
        build(&tree, &[2]);
        let err = StoredHashes { tree: &tree, pending: None }.read_hashes(&[NodeId::new(0, 2)]).unwrap_err();
        assert_eq!(err, HashReadError::Missing { level: 0, index: 2 });
    }
}
