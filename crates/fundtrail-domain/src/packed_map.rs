//! A persistent ordered map packed for keys that arrive mostly in ascending order.
//!
//! The maps that grow with the stream are keyed by what the stream makes in
//! order: event ids are UUIDv7 (time-ordered) and a fund's gifts are numbered
//! as they arrive. A B-tree that splits a full node in half leaves every node
//! behind an ascending run half full for good: `imbl::OrdMap` held about 139
//! bytes per 56-byte entry inserted in order (`docs/performance.md`, "Fold
//! memory"). [`PackedMap`] keeps its entries in chunks of up to
//! [`CHUNK_ENTRIES_MAX`]; a key past a full chunk's end starts a new chunk, so
//! an ascending run fills every chunk. A key *inside* a full chunk (an id that
//! arrives a little after later ones) moves an entry to a neighbouring chunk
//! with room; only when neither neighbour has room is the chunk split in half.
//! No chunk ever holds room for more than [`CHUNK_ENTRIES_MAX`] entries.
//!
//! It is persistent like the maps it replaces: a clone is O(1) (the chunks are
//! shared), and a change copies one chunk and one path of the index.
//!
//! It serialises as a map, entry by entry in key order, exactly as `OrdMap`
//! and `BTreeMap` do, so the state's bytes (JSON and snapshots) are the same.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use imbl::OrdMap;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most entries one chunk holds.
pub const CHUNK_ENTRIES_MAX: usize = 64;

/// One chunk: 1..=[`CHUNK_ENTRIES_MAX`] entries in ascending key order.
type Chunk<K, V> = Arc<Vec<(K, V)>>;

/// A persistent ordered map, packed for keys inserted mostly in ascending order.
///
/// Invariants (checked by [`PackedMap::check`] in tests): every chunk is
/// non-empty, at most [`CHUNK_ENTRIES_MAX`] long, sorted, strictly below the
/// next chunk's first key, and indexed by its own first key; `len` is the sum
/// of the chunks' lengths.
#[derive(Clone)]
pub struct PackedMap<K, V> {
    chunks: OrdMap<K, Chunk<K, V>>,
    len: usize,
}

impl<K, V> Default for PackedMap<K, V> {
    fn default() -> Self {
        PackedMap { chunks: OrdMap::new(), len: 0 }
    }
}

impl<K: Ord + Clone, V: Clone> PackedMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk that holds `key` if the map does: the last chunk whose first
    /// key is at most `key`.
    fn chunk_of<Q>(&self, key: &Q) -> Option<&Chunk<K, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.chunks.get_prev(key).map(|(_, chunk)| chunk)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let chunk = self.chunk_of(key)?;
        let index = search(chunk, key).ok()?;
        Some(&chunk[index].1)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(key).is_some()
    }

    /// The value at `key`, to change in place (copies its chunk if shared).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (_, chunk) = self.chunks.get_prev_mut(key)?;
        let index = search(chunk, key).ok()?;
        Some(&mut entries_mut(chunk)[index].1)
    }

    /// The entry with the lowest key.
    pub fn get_min(&self) -> Option<&(K, V)> {
        self.chunks.get_min().map(|(_, chunk)| chunk.first().expect("chunks are never empty"))
    }

    /// Inserts `value` at `key`; answers the value it replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Some((first, chunk)) = self.chunks.get_prev_mut(&key) else {
            // Below every key (or the map is empty): into the first chunk if it has
            // room, which is then indexed by its new first key.
            match self.chunks.get_min().map(|(first, chunk)| (first.clone(), chunk.len())) {
                Some((first, len)) if len < CHUNK_ENTRIES_MAX => {
                    let mut chunk = self.chunks.remove(&first).expect("the first chunk exists");
                    entries_for_insert(&mut chunk).insert(0, (key.clone(), value));
                    self.chunks.insert(key, chunk);
                }
                _ => {
                    self.chunks.insert(key.clone(), Arc::new(chunk_with(key, value)));
                }
            }
            self.len += 1;
            return None;
        };
        let index = match search(chunk, &key) {
            Ok(index) => return Some(std::mem::replace(&mut entries_mut(chunk)[index].1, value)),
            Err(index) => index,
        };
        self.len += 1;
        if chunk.len() < CHUNK_ENTRIES_MAX {
            entries_for_insert(chunk).insert(index, (key, value));
            return None;
        }
        if index == chunk.len() {
            // Past the end of a full chunk (the ascending case): a chunk of its own.
            self.chunks.insert(key.clone(), Arc::new(chunk_with(key, value)));
            return None;
        }
        // Inside a full chunk. A key that arrives a little late (ids signed in
        // order, stored in a slightly different one) lands in the chunk before
        // the last: its last entry moves to the front of the next chunk when that
        // has room (or to a new chunk when there is none), so an almost
        // ascending run still fills every chunk. Elsewhere, split it in half.
        let first = first.clone();
        let next = self
            .chunks
            .range::<_, K>((std::ops::Bound::Excluded(&first), std::ops::Bound::Unbounded))
            .next()
            .map(|(next_first, next)| (next_first.clone(), next.len()));
        if next.as_ref().is_none_or(|(_, len)| *len < CHUNK_ENTRIES_MAX) {
            let chunk = self.chunks.get_mut(&first).expect("the chunk exists");
            let entries = entries_mut(chunk);
            let moved = entries.pop().expect("a full chunk has a last entry");
            entries.insert(index, (key, value));
            let mut next = match next {
                Some((next_first, _)) => self.chunks.remove(&next_first).expect("the next chunk exists"),
                None => Arc::new(Vec::with_capacity(CHUNK_ENTRIES_MAX)),
            };
            let moved_key = moved.0.clone();
            entries_for_insert(&mut next).insert(0, moved);
            self.chunks.insert(moved_key, next);
            return None;
        }
        // Or the chunk's first entry moves to the end of the previous chunk.
        let previous = self
            .chunks
            .range::<_, K>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(&first)))
            .next_back()
            .filter(|(_, previous)| previous.len() < CHUNK_ENTRIES_MAX)
            .map(|(previous_first, _)| previous_first.clone());
        if let Some(previous_first) = previous {
            let mut chunk = self.chunks.remove(&first).expect("the chunk exists");
            let entries = entries_mut(&mut chunk);
            // The chunk's first key is below `key` (it is the chunk's key), so index ≥ 1.
            assert!(index >= 1, "a key inside a chunk is above its first key");
            let moved = entries.remove(0);
            entries.insert(index - 1, (key, value));
            self.chunks.insert(entries[0].0.clone(), chunk);
            let previous = self.chunks.get_mut(&previous_first).expect("the previous chunk exists");
            entries_for_insert(previous).push(moved);
            return None;
        }
        let chunk = self.chunks.get_mut(&first).expect("the chunk exists");
        let entries = entries_mut(chunk);
        let mut upper = Vec::with_capacity(CHUNK_ENTRIES_MAX);
        upper.extend(entries.drain(CHUNK_ENTRIES_MAX / 2..));
        if index <= entries.len() {
            entries.insert(index, (key, value));
        } else {
            upper.insert(index - entries.len(), (key, value));
        }
        let upper_first = upper[0].0.clone();
        self.chunks.insert(upper_first, Arc::new(upper));
        None
    }

    /// Removes the entry at `key`; answers its value, if there was one.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (first, chunk) = self.chunks.get_prev_mut(key)?;
        let index = search(chunk, key).ok()?;
        let first = first.clone();
        let (_, value) = entries_mut(chunk).remove(index);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(&first);
        } else if index == 0 {
            // The chunk's first key changed: index it by the new one.
            let chunk = self.chunks.remove(&first).expect("the chunk exists");
            self.chunks.insert(chunk[0].0.clone(), chunk);
        }
        Some(value)
    }

    /// Entries in ascending key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter { chunks: self.chunks.values(), entries: [].iter(), left: self.len }
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Asserts the invariants of the type (for tests).
    pub fn check(&self) {
        let mut len = 0;
        let mut previous: Option<&K> = None;
        for (first, chunk) in self.chunks.iter() {
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK_ENTRIES_MAX, "chunk length {}", chunk.len());
            assert!(chunk[0].0 == *first, "a chunk is indexed by its first key");
            for (k, _) in chunk.iter() {
                assert!(previous.is_none_or(|p| p < k), "keys ascend strictly");
                previous = Some(k);
            }
            len += chunk.len();
        }
        assert_eq!(len, self.len, "len counts every entry");
    }
}

/// Where `key` is in `chunk` (`Ok`) or would go (`Err`), as
/// `binary_search_by` answers. A key past the chunk's last — every new id and
/// ordinal, which arrive in ascending order — is answered from the last entry
/// alone: a binary search touches half a dozen cache lines of a chunk that is
/// rarely in cache once the fold outgrows it (`docs/performance.md`, "Tenth
/// session").
fn search<K, V, Q>(chunk: &[(K, V)], key: &Q) -> Result<usize, usize>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    match chunk.last() {
        Some((last, _)) if last.borrow() < key => Err(chunk.len()),
        _ => chunk.binary_search_by(|(k, _)| k.borrow().cmp(key)),
    }
}

/// A chunk's entries to change in place: copied first if another version of
/// the map shares them. A copy holds what the chunk holds, with no room to
/// spare (a chunk that is changed in place is rarely grown).
fn entries_mut<K: Clone, V: Clone>(chunk: &mut Chunk<K, V>) -> &mut Vec<(K, V)> {
    if Arc::get_mut(chunk).is_none() {
        *chunk = Arc::new(chunk.as_slice().to_vec());
    }
    Arc::get_mut(chunk).expect("the chunk is this map's own")
}

/// A chunk's entries with room for one more, never beyond
/// [`CHUNK_ENTRIES_MAX`]: a chunk's memory is at most a full chunk's however
/// often it was copied. (A copy made with `Vec`'s growth would double a shared
/// chunk of 40 entries to room for 80, and keep it.)
fn entries_for_insert<K: Clone, V: Clone>(chunk: &mut Chunk<K, V>) -> &mut Vec<(K, V)> {
    let len = chunk.len();
    assert!(len < CHUNK_ENTRIES_MAX, "a chunk with room");
    let room = (len * 2).clamp(4, CHUNK_ENTRIES_MAX);
    match Arc::get_mut(chunk) {
        Some(entries) if entries.capacity() > len => {}
        Some(entries) => entries.reserve_exact(room - len),
        None => {
            let mut copy = Vec::with_capacity(room);
            copy.extend(chunk.iter().cloned());
            *chunk = Arc::new(copy);
        }
    }
    let entries = Arc::get_mut(chunk).expect("the chunk is this map's own");
    debug_assert!(entries.capacity() <= CHUNK_ENTRIES_MAX);
    entries
}

fn chunk_with<K, V>(key: K, value: V) -> Vec<(K, V)> {
    let mut chunk = Vec::with_capacity(CHUNK_ENTRIES_MAX);
    chunk.push((key, value));
    chunk
}

/// The entries of a [`PackedMap`] in ascending key order.
pub struct Iter<'a, K, V> {
    chunks: imbl::ordmap::Values<'a, K, Chunk<K, V>, imbl::shared_ptr::DefaultSharedPtr>,
    entries: std::slice::Iter<'a, (K, V)>,
    left: usize,
}

impl<'a, K: Ord + Clone, V: Clone> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((k, v)) = self.entries.next() {
                self.left -= 1;
                return Some((k, v));
            }
            self.entries = self.chunks.next()?.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<K: Ord + Clone, V: Clone> ExactSizeIterator for Iter<'_, K, V> {}

impl<'a, K: Ord + Clone, V: Clone> IntoIterator for &'a PackedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for PackedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = PackedMap::new();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> PartialEq for PackedMap<K, V> {
    /// Equal entries, however they are chunked.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Clone, V: Clone + Eq> Eq for PackedMap<K, V> {}

impl<K: Ord + Clone + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for PackedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Clone + Serialize, V: Clone + Serialize> Serialize for PackedMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K: Ord + Clone + Deserialize<'de>, V: Clone + Deserialize<'de>> Deserialize<'de> for PackedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(std::marker::PhantomData<(K, V)>);

        impl<'de, K: Ord + Clone + Deserialize<'de>, V: Clone + Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
            type Value = PackedMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = PackedMap::new();
                while let Some((k, v)) = access.next_entry()? {
                    if map.insert(k, v).is_some() {
                        return Err(serde::de::Error::custom("a key appears twice in the map"));
                    }
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A small deterministic generator (xorshift), so that the test needs no RNG.
    fn keys(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % modulo
            })
            .collect()
    }

    #[test]
    fn agrees_with_a_btree_map_under_any_mix_of_changes() {
        for seed in 1..=20u64 {
            let mut packed = PackedMap::new();
            let mut model = BTreeMap::new();
            let ops = keys(seed, 3_000, 1 << 20);
            let keyset = keys(seed * 7919, 3_000, 500);
            for (step, (&op, &key)) in ops.iter().zip(&keyset).enumerate() {
                // Mostly ascending inserts, with inserts anywhere, removals and changes.
                let ascending = step as u64 + 500;
                match op % 8 {
                    0..=2 => assert_eq!(packed.insert(ascending, op), model.insert(ascending, op)),
                    3 | 4 => assert_eq!(packed.insert(key, op), model.insert(key, op)),
                    5 => assert_eq!(packed.remove(&key), model.remove(&key)),
                    6 => {
                        let first = model.keys().next().copied();
                        if let Some(first) = first {
                            assert_eq!(packed.get_min().map(|(k, _)| *k), Some(first));
                            assert_eq!(packed.remove(&first), model.remove(&first));
                        }
                    }
                    _ => {
                        if let Some(v) = packed.get_mut(&key) {
                            *v += 1;
                        }
                        if let Some(v) = model.get_mut(&key) {
                            *v += 1;
                        }
                    }
                }
                assert_eq!(packed.get(&key), model.get(&key));
                assert_eq!(packed.contains_key(&ascending), model.contains_key(&ascending));
            }
            packed.check();
            assert_eq!(packed.len(), model.len());
            assert!(packed.iter().eq(model.iter()), "seed {seed}: the same entries in the same order");
        }
    }

    #[test]
    fn a_clone_is_unchanged_by_changes_to_the_original() {
        let mut a: PackedMap<u64, u64> = (0..1_000).map(|k| (k, k)).collect();
        let b = a.clone();
        for k in (0..1_000).step_by(3) {
            a.remove(&k);
            a.insert(k + 10_000, 0);
        }
        *a.get_mut(&1).expect("present") = 99;
        a.check();
        b.check();
        assert!(b.iter().eq((0..1_000).map(|k| (k, k)).collect::<BTreeMap<_, _>>().iter()));
    }

    #[test]
    fn an_ascending_run_fills_every_chunk() {
        let map: PackedMap<u64, ()> = (0..10 * CHUNK_ENTRIES_MAX as u64).map(|k| (k, ())).collect();
        map.check();
        assert_eq!(map.chunks.len(), 10);
        assert!(map.chunks.values().all(|c| c.len() == CHUNK_ENTRIES_MAX));
    }

    /// Keys in ascending order but each window of `window` of them shuffled,
    /// as ids signed in order arrive from concurrent clients.
    fn almost_ascending(n: u64, window: usize) -> Vec<u64> {
        let mut keys: Vec<u64> = (0..n).collect();
        for (i, block) in keys.chunks_mut(window).enumerate() {
            let order = super::tests::keys(i as u64 + 1, block.len(), u64::MAX);
            let mut indexed: Vec<(u64, u64)> = order.into_iter().zip(block.iter().copied()).collect();
            indexed.sort();
            for (slot, (_, k)) in block.iter_mut().zip(indexed) {
                *slot = k;
            }
        }
        keys
    }

    /// Entries held over entry slots allocated, in all chunks.
    fn fill(map: &PackedMap<u64, u64>) -> f64 {
        let slots: usize = map.chunks.values().map(|c| c.capacity()).sum();
        map.len() as f64 / slots as f64
    }

    #[test]
    fn an_almost_ascending_run_published_as_it_goes_stays_packed() {
        // The service's case: keys a little out of order, and the map cloned
        // (published to readers) between changes, so that chunks are shared.
        // Out of order within a chunk's width, every chunk ends full; within
        // eight chunks' width, still four fifths full.
        for (window, fill_min) in [(2, 0.99), (CHUNK_ENTRIES_MAX, 0.99), (8 * CHUNK_ENTRIES_MAX, 0.8)] {
            let keys = almost_ascending(50_000, window);
            let mut map = PackedMap::new();
            let mut published = std::collections::VecDeque::new();
            for (i, &k) in keys.iter().enumerate() {
                map.insert(k, k);
                if i % 7 == 0 {
                    published.push_back(map.clone());
                    if published.len() > 3 {
                        published.pop_front();
                    }
                }
            }
            drop(published);
            map.check();
            assert!(map.chunks.values().all(|c| c.capacity() <= CHUNK_ENTRIES_MAX), "no chunk over its size");
            let fill = fill(&map);
            assert!(fill > fill_min, "window {window}: chunks {fill:.3} full");
        }
    }

    #[test]
    fn random_inserts_keep_chunks_at_least_half_full() {
        let mut map = PackedMap::new();
        for k in keys(11, 20_000, u64::MAX) {
            map.insert(k, k);
            let _published = map.clone();
        }
        map.check();
        assert!(map.chunks.values().all(|c| c.capacity() <= CHUNK_ENTRIES_MAX));
        assert!(fill(&map) > 0.5, "fill {:.3}", fill(&map));
    }

    #[test]
    fn serialises_as_the_ordered_map_it_replaces() {
        let entries: Vec<(u64, String)> = keys(3, 300, 10_000).into_iter().map(|k| (k, format!("v{k}"))).collect();
        let packed: PackedMap<u64, String> = entries.iter().cloned().collect();
        let ordered: OrdMap<u64, String> = entries.iter().cloned().collect();
        let json = serde_json::to_string(&packed).expect("serialises");
        assert_eq!(json, serde_json::to_string(&ordered).expect("serialises"));
        let back: PackedMap<u64, String> = serde_json::from_str(&json).expect("reads back");
        back.check();
        assert_eq!(back, packed);
        assert!(serde_json::from_str::<PackedMap<u64, u64>>(r#"{"1": 2, "1": 3}"#).is_err());
    }
}
