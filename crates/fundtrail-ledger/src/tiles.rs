//! C2SP tlog-tiles: tile paths, tile contents and entry bundles, and a hash reader that
//! serves a verifier from tiles alone (e.g. fetched from a static mirror).
//!
//! Tiles have height 8: a full tile is 256 hashes (8,192 bytes). The tile at level `L`,
//! number `N`, lists the stored hashes at tree level `8·L` with indexes
//! `N·256 .. N·256 + W`. Paths are `tile/<L>/<N>[.p/<W>]` and
//! `tile/entries/<N>[.p/<W>]`, relative to the log prefix (FundTrail serves them under
//! `/ledger/`).

use crate::entry::ENTRY_SIZE_MAX;
use crate::hash::{leaf_hash, Hash, HASH_SIZE};
use crate::tree::{HashReadError, HashReader, NodeId, TreeError};
use std::cell::RefCell;
use thiserror::Error;

/// Tile height: each tile spans 8 tree levels.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u16 = 256;
/// Bytes in a full hash tile.
pub const TILE_BYTES_MAX: usize = TILE_WIDTH as usize * HASH_SIZE;
/// Highest tile level a path may name (C2SP tlog-tiles).
pub const TILE_PATH_LEVEL_MAX: u8 = 63;
/// Highest tile level that can hold hashes of a tree with a u64 size: 8·7 = 56 ≤ 63.
pub const TILE_LEVEL_MAX: u8 = 7;
/// Longest tile path accepted: `tile/entries/` + 7 × `x000/` + `000.p/255`.
pub const TILE_PATH_LEN_MAX: usize = 64;
/// Largest entry bundle: 256 entries of the largest size with their 2-byte prefixes.
pub const ENTRY_BUNDLE_BYTES_MAX: usize = TILE_WIDTH as usize * (2 + ENTRY_SIZE_MAX);

/// What a tile holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Merkle tree hashes at tree level `8 · level`.
    Hashes { level: u8 },
    /// The entries themselves: the data behind the level-0 tile of the same number.
    Entries,
}

/// One tile or entry bundle: its kind, its number `n` within the level and its width
/// (1..=256; 256 is a full tile, anything less a partial one).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub kind: TileKind,
    pub n: u64,
    pub width: u16,
}

/// Why a tile path was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TilePathError {
    #[error("tile path {path:?}: longer than {TILE_PATH_LEN_MAX} bytes")]
    TooLong { path: String },
    #[error("tile path {path:?}: must start with \"tile/\"")]
    NotATile { path: String },
    #[error(
        "tile path {path:?}: level must be \"entries\" or a decimal 0..={TILE_PATH_LEVEL_MAX} without leading zeros"
    )]
    BadLevel { path: String },
    #[error("tile path {path:?}: index must be 3-digit elements, all but the last prefixed with \"x\"")]
    BadIndex { path: String },
    #[error("tile path {path:?}: partial width must be a decimal 1..=255 without leading zeros")]
    BadWidth { path: String },
    #[error("tile path {path:?}: not in canonical form")]
    NotCanonical { path: String },
}

/// Errors building or reading tiles and entry bundles.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TileError {
    #[error("tile {path}: level {level} is above {TILE_LEVEL_MAX}, no tree of u64 size has it")]
    LevelTooHigh { path: String, level: u8 },
    #[error("tile {path}: {found} bytes, expected {expected}")]
    WrongSize { path: String, found: usize, expected: usize },
    #[error("tile {path}: is not a hash tile")]
    NotHashTile { path: String },
    #[error("entry bundle {path}: entry {position} truncated")]
    BundleTruncated { path: String, position: usize },
    #[error("entry bundle {path}: {found} entries, expected {expected}")]
    BundleCount { path: String, found: usize, expected: usize },
    #[error("entry bundle {path}: {extra} trailing bytes after the last entry")]
    BundleTrailing { path: String, extra: usize },
    #[error("entry bundle: entry {position} of {size} bytes exceeds the maximum of {ENTRY_SIZE_MAX}")]
    BundleEntryOversize { position: usize, size: usize },
    #[error("entry bundle: {count} entries exceeds the maximum of {TILE_WIDTH}")]
    BundleTooMany { count: usize },
    #[error("entry bundle {path}: entry {position} does not hash to the level-0 tile's hash")]
    BundleHashMismatch { path: String, position: usize },
    #[error("tile {path}: index overflow")]
    Overflow { path: String },
    #[error(transparent)]
    Tree(#[from] TreeError),
}

const PATH_BASE: u64 = 1000;

impl Tile {
    /// A hash tile at `level`. Panics unless `level <= 63` and `1 <= width <= 256`.
    pub fn hashes(level: u8, n: u64, width: u16) -> Tile {
        assert!(level <= TILE_PATH_LEVEL_MAX, "tile level {level}");
        assert!((1..=TILE_WIDTH).contains(&width), "tile width {width}");
        Tile { kind: TileKind::Hashes { level }, n, width }
    }

    /// An entry bundle. Panics unless `1 <= width <= 256`.
    pub fn entries(n: u64, width: u16) -> Tile {
        assert!((1..=TILE_WIDTH).contains(&width), "bundle width {width}");
        Tile { kind: TileKind::Entries, n, width }
    }

    /// Whether this is a full (256-wide) tile.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tile path, `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut index = format!("{:03}", n % PATH_BASE);
        while n >= PATH_BASE {
            n /= PATH_BASE;
            index = format!("x{:03}/{index}", n % PATH_BASE);
        }
        let level = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let path = if self.is_full() {
            format!("tile/{level}/{index}")
        } else {
            format!("tile/{level}/{index}.p/{}", self.width)
        };
        debug_assert!(path.len() <= TILE_PATH_LEN_MAX);
        path
    }

    /// Parses a tile path (relative to the log prefix). Only the canonical form is
    /// accepted, so `Tile::parse(p)?.path() == p`.
    pub fn parse(path: &str) -> Result<Tile, TilePathError> {
        let owned = || path.to_string();
        if path.len() > TILE_PATH_LEN_MAX {
            return Err(TilePathError::TooLong { path: owned() });
        }
        let rest = path.strip_prefix("tile/").ok_or_else(|| TilePathError::NotATile { path: owned() })?;
        let (level, rest) = rest.split_once('/').ok_or_else(|| TilePathError::BadLevel { path: owned() })?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(level)
                .filter(|&l| l <= u64::from(TILE_PATH_LEVEL_MAX))
                .ok_or_else(|| TilePathError::BadLevel { path: owned() })?;
            TileKind::Hashes { level: level as u8 }
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = parse_decimal(width)
                    .filter(|w| (1..u64::from(TILE_WIDTH)).contains(w))
                    .ok_or_else(|| TilePathError::BadWidth { path: owned() })?;
                (index, width as u16)
            }
            None => (rest, TILE_WIDTH),
        };
        let n = parse_index(index).ok_or_else(|| TilePathError::BadIndex { path: owned() })?;
        let tile = Tile { kind, n, width };
        if tile.path() != path {
            return Err(TilePathError::NotCanonical { path: owned() });
        }
        Ok(tile)
    }

    /// For a level-0 hash tile, the entry bundle with the same coordinates, and back.
    pub fn twin(&self) -> Option<Tile> {
        match self.kind {
            TileKind::Hashes { level: 0 } => Some(Tile::entries(self.n, self.width)),
            TileKind::Entries => Some(Tile::hashes(0, self.n, self.width)),
            TileKind::Hashes { .. } => None,
        }
    }

    fn from_tlog(tile: &tlog_tiles::Tile) -> Tile {
        assert_eq!(tile.height(), TILE_HEIGHT);
        assert!(!tile.is_data());
        let width = u16::try_from(tile.width()).expect("tile width fits u16");
        Tile::hashes(tile.level(), tile.level_index(), width)
    }
}

/// A decimal with no leading zeros (except "0" itself).
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// `x001/x234/067` → 1234067.
fn parse_index(text: &str) -> Option<u64> {
    let elements: Vec<&str> = text.split('/').collect();
    let (last, init) = elements.split_last()?;
    let mut n: u64 = 0;
    let digits =
        |e: &str| -> Option<u64> { (e.len() == 3 && e.bytes().all(|b| b.is_ascii_digit())).then(|| e.parse().ok())? };
    for element in init {
        let d = digits(element.strip_prefix('x')?)?;
        n = n.checked_mul(PATH_BASE)?.checked_add(d)?;
    }
    n.checked_mul(PATH_BASE)?.checked_add(digits(last)?)
}

/// The tiles and entry bundles to publish when the tree grows from `old_size` to
/// `new_size` (every one of them is immutable once published; partial ones are
/// superseded by wider ones later). Each level-0 tile is followed by its entry bundle.
pub fn new_tiles(old_size: u64, new_size: u64) -> Vec<Tile> {
    assert!(old_size <= new_size, "tree sizes {old_size} > {new_size}");
    let mut tiles = Vec::new();
    for tile in tlog_tiles::Tile::new_tiles(TILE_HEIGHT, old_size, new_size) {
        let tile = Tile::from_tlog(&tile);
        tiles.push(tile);
        if let Some(bundle) = tile.twin() {
            tiles.push(bundle);
        }
    }
    tiles
}

/// The hash tiles a tree of `size` leaves consists of at its right edge: for each level,
/// the rightmost tile (partial or full). Level `l` holds `⌊size / 256^l⌋ mod 256`
/// hashes in its partial tile.
pub fn partial_tile_width(size: u64, level: u8) -> u16 {
    assert!(level <= TILE_LEVEL_MAX);
    let shifted = size >> (u32::from(TILE_HEIGHT) * u32::from(level));
    (shifted % u64::from(TILE_WIDTH)) as u16
}

/// The bytes of hash tile `tile`: its `width` stored hashes, concatenated, read from
/// `reader` (one read).
pub fn read_tile<R: HashReader + ?Sized>(tile: &Tile, reader: &R) -> Result<Vec<u8>, TileError> {
    let path = tile.path();
    let TileKind::Hashes { level } = tile.kind else {
        return Err(TileError::NotHashTile { path });
    };
    if level > TILE_LEVEL_MAX {
        return Err(TileError::LevelTooHigh { path, level });
    }
    let start = tile.n.checked_mul(u64::from(TILE_WIDTH)).ok_or(TileError::Overflow { path: path.clone() })?;
    let ids: Vec<NodeId> = (0..u64::from(tile.width)).map(|i| NodeId::new(level * TILE_HEIGHT, start + i)).collect();
    let size = start.saturating_add(u64::from(tile.width)) << (u32::from(level) * u32::from(TILE_HEIGHT));
    let hashes = reader.read_hashes(&ids).map_err(|source| TreeError::Read { size, source })?;
    if hashes.len() != ids.len() {
        return Err(TreeError::BadReader { size, found: hashes.len(), expected: ids.len() }.into());
    }
    let data: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
    debug_assert_eq!(data.len(), usize::from(tile.width) * HASH_SIZE);
    Ok(data)
}

/// The hashes in hash tile `tile`'s bytes, checking the size against its width.
pub fn tile_hashes(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>, TileError> {
    let expected = usize::from(tile.width) * HASH_SIZE;
    if data.len() != expected {
        return Err(TileError::WrongSize { path: tile.path(), found: data.len(), expected });
    }
    Ok(data.chunks_exact(HASH_SIZE).map(|c| Hash(c.try_into().expect("chunk of 32"))).collect())
}

/// The root of a full tile's subtree: the stored hash one tile level up.
pub fn tile_root(tile: &Tile, data: &[u8]) -> Result<Hash, TileError> {
    let hashes = tile_hashes(tile, data)?;
    assert!(!hashes.is_empty());
    Ok(Hash::from_tlog(tlog_tiles::Tile::subtree_hash(data)))
}

/// Encodes an entry bundle: each entry as a big-endian u16 length, then its bytes.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    if entries.len() > usize::from(TILE_WIDTH) {
        return Err(TileError::BundleTooMany { count: entries.len() });
    }
    let mut out = Vec::new();
    for (position, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let len =
            u16::try_from(entry.len()).map_err(|_| TileError::BundleEntryOversize { position, size: entry.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    debug_assert!(out.len() <= ENTRY_BUNDLE_BYTES_MAX);
    Ok(out)
}

/// Decodes entry bundle `tile`: exactly `tile.width` entries, no trailing bytes.
pub fn decode_entry_bundle<'a>(tile: &Tile, data: &'a [u8]) -> Result<Vec<&'a [u8]>, TileError> {
    let path = tile.path();
    let expected = usize::from(tile.width);
    let mut entries = Vec::with_capacity(expected);
    let mut rest = data;
    while !rest.is_empty() && entries.len() < expected {
        let position = entries.len();
        let truncated = || TileError::BundleTruncated { path: path.clone(), position };
        let (len, tail) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(truncated());
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    if entries.len() != expected {
        return Err(TileError::BundleCount { path, found: entries.len(), expected });
    }
    if !rest.is_empty() {
        return Err(TileError::BundleTrailing { path, extra: rest.len() });
    }
    Ok(entries)
}

/// Checks an entry bundle against the level-0 hash tile with the same coordinates
/// (its data tile): each entry must hash to the tile's leaf hash at its position.
/// Returns the entries.
pub fn verify_entry_bundle<'a>(
    bundle: &Tile,
    bundle_data: &'a [u8],
    level0_data: &[u8],
) -> Result<Vec<&'a [u8]>, TileError> {
    let level0 = bundle.twin().ok_or_else(|| TileError::NotHashTile { path: bundle.path() })?;
    assert_eq!(bundle.kind, TileKind::Entries);
    let entries = decode_entry_bundle(bundle, bundle_data)?;
    let hashes = tile_hashes(&level0, level0_data)?;
    assert_eq!(entries.len(), hashes.len());
    for (position, (entry, hash)) in entries.iter().zip(&hashes).enumerate() {
        if leaf_hash(entry) != *hash {
            return Err(TileError::BundleHashMismatch { path: bundle.path(), position });
        }
    }
    Ok(entries)
}

/// A source of hash tiles, e.g. files fetched from a static mirror of `/ledger/`.
///
/// `read_tile` must return the bytes of exactly the tile asked for (width included). A
/// mirror that has already replaced a partial tile by the full one may return the first
/// `width · 32` bytes of the full tile: tiles only ever grow.
pub trait TileSource {
    fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, String>;
}

/// A [`HashReader`] that reads hashes out of tiles of the tree of `size` leaves with
/// root `root`, authenticating every tile it uses against that root first (the tiles
/// are untrusted: anything not consistent with the root is refused). With it, the tree
/// hash and any proof can be computed from a static mirror alone.
///
/// Tile planning and the tree-hash check are `tlog_tiles::TileHashReader`'s. Its check
/// of the remaining tiles against their parents starts at the wrong position when
/// several tree-hash subtrees share one tile (as in Go's `sumdb/tlog` code it ports),
/// leaving some fetched tiles unchecked; so every fetched tile is checked again here
/// (`authenticate`). The test `a_tampered_mirror_is_refused` covers the case.
pub struct TileHashReader<'a, S: TileSource + ?Sized> {
    size: u64,
    root: Hash,
    source: &'a S,
}

impl<'a, S: TileSource + ?Sized> TileHashReader<'a, S> {
    /// A reader for the tree of a verified checkpoint. Each `read_hashes` call fetches
    /// the tiles it needs afresh: give it a caching source when that matters.
    pub fn new(size: u64, root: Hash, source: &'a S) -> Self {
        TileHashReader { size, root, source }
    }

    /// The bytes of hash tile `tile` of this tree, authenticated against the root (for
    /// example the level-0 tile to check an entry bundle with [`verify_entry_bundle`]).
    pub fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, TileError> {
        read_tile(tile, self)
    }
}

/// Records what the pinned crate fetched, for [`authenticate`].
struct TlogTileSource<'a, S: ?Sized> {
    source: &'a S,
    error: RefCell<Option<String>>,
    fetched: RefCell<Vec<(tlog_tiles::Tile, Vec<u8>)>>,
}

impl<S: TileSource + ?Sized> tlog_tiles::TileReader for TlogTileSource<'_, S> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let mut out = Vec::with_capacity(tiles.len());
        for tile in tiles {
            let ours = Tile::from_tlog(tile);
            let data = self.source.read_tile(&ours).map_err(|e| {
                *self.error.borrow_mut() = Some(format!("tile {}: {e}", ours.path()));
                tlog_tiles::Error::InvalidTile
            })?;
            let expected = usize::from(ours.width) * HASH_SIZE;
            if data.len() != expected {
                *self.error.borrow_mut() =
                    Some(format!("tile {}: {} bytes, expected {expected}", ours.path(), data.len()));
                return Err(tlog_tiles::Error::InvalidTile);
            }
            self.fetched.borrow_mut().push((*tile, data.clone()));
            out.push(data);
        }
        Ok(out)
    }

    fn save_tiles(&self, _tiles: &[tlog_tiles::Tile], _data: &[Vec<u8>]) {}
}

/// Checks every fetched tile of the tree of `size` leaves: the tiles holding the
/// tree-hash subtrees were checked against the root by the pinned crate; every other
/// tile must hash to its entry in its parent tile, which was fetched too.
fn authenticate(size: u64, fetched: &[(tlog_tiles::Tile, Vec<u8>)]) -> Result<(), String> {
    let tree_tiles: std::collections::HashSet<tlog_tiles::Tile> = tlog_tiles::sub_tree_index(0, size, vec![])
        .into_iter()
        .filter_map(|x| tlog_tiles::Tile::from_index(TILE_HEIGHT, x).parent(0, size))
        .collect();
    let by_tile: std::collections::HashMap<tlog_tiles::Tile, &[u8]> =
        fetched.iter().map(|(t, d)| (*t, d.as_slice())).collect();
    for (tile, data) in fetched {
        if tree_tiles.contains(tile) {
            continue;
        }
        let path = Tile::from_tlog(tile).path();
        let parent = tile.parent(1, size).ok_or_else(|| format!("tile {path}: no parent in tree of size {size}"))?;
        let parent_data = by_tile.get(&parent).ok_or_else(|| format!("tile {path}: parent tile not fetched"))?;
        let index = tlog_tiles::stored_hash_index(parent.level() * TILE_HEIGHT, tile.level_index());
        let want = parent.hash_at_index(parent_data, index).map_err(|e| format!("tile {path}: {e}"))?;
        if tlog_tiles::Tile::subtree_hash(data) != want {
            return Err(format!("tile {path}: inconsistent with the tree of size {size}"));
        }
    }
    Ok(())
}

impl<S: TileSource + ?Sized> HashReader for TileHashReader<'_, S> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, HashReadError> {
        use tlog_tiles::HashReader as _;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let indexes: Vec<u64> = ids.iter().map(NodeId::stored_hash_index).collect();
        let source =
            TlogTileSource { source: self.source, error: RefCell::new(None), fetched: RefCell::new(Vec::new()) };
        let reader = tlog_tiles::TileHashReader::new(self.size, self.root.to_tlog(), &source);
        let hashes = reader.read_hashes(&indexes).map_err(|e| {
            HashReadError::Storage(
                source
                    .error
                    .borrow_mut()
                    .take()
                    .unwrap_or_else(|| format!("tiles for tree of size {}: {e}", self.size)),
            )
        })?;
        authenticate(self.size, &source.fetched.borrow()).map_err(HashReadError::Storage)?;
        assert_eq!(hashes.len(), ids.len());
        Ok(hashes.into_iter().map(Hash::from_tlog).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_path_examples() {
        // C2SP tlog-tiles: index 1234067 is encoded as x001/x234/067.
        assert_eq!(Tile::hashes(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(Tile::entries(1_234_067, 7).path(), "tile/entries/x001/x234/067.p/7");
        assert_eq!(Tile::hashes(2, 0, 1).path(), "tile/2/000.p/1");
        assert_eq!(Tile::parse("tile/3/x001/x234/067.p/255"), Ok(Tile::hashes(3, 1_234_067, 255)));
        assert_eq!(Tile::parse("tile/entries/999"), Ok(Tile::entries(999, 256)));
        let max = Tile::entries(u64::MAX, 255).path();
        assert_eq!(max, "tile/entries/x018/x446/x744/x073/x709/x551/615.p/255");
        assert!(max.len() <= TILE_PATH_LEN_MAX);
        assert_eq!(Tile::parse(&max), Ok(Tile::entries(u64::MAX, 255)));
    }

    #[test]
    fn bad_paths_are_refused_with_a_reason() {
        use TilePathError as E;
        type Case = (&'static str, fn(String) -> E);
        let cases: &[Case] = &[
            ("tiles/0/000", |path| E::NotATile { path }),
            ("tile/00/000", |path| E::BadLevel { path }),
            ("tile/64/000", |path| E::BadLevel { path }),
            ("tile/data/000", |path| E::BadLevel { path }),
            ("tile/0/00", |path| E::BadIndex { path }),
            ("tile/0/x001", |path| E::BadIndex { path }),
            ("tile/0/001/002", |path| E::BadIndex { path }),
            ("tile/0/000.p/256", |path| E::BadWidth { path }),
            ("tile/0/000.p/0", |path| E::BadWidth { path }),
            ("tile/0/000.p/07", |path| E::BadWidth { path }),
            ("tile/0/x000/001", |path| E::NotCanonical { path }),
            ("tile/entries/x018/x446/x744/x073/x709/x551/616", |path| E::BadIndex { path }),
        ];
        for (path, want) in cases {
            assert_eq!(Tile::parse(path), Err(want(path.to_string())), "{path}");
        }
    }

    #[test]
    fn spec_partial_tiles_example() {
        // C2SP tlog-tiles: a tree of size 70,000 is 273 full level-0 tiles, a partial of
        // width 112, one full level-1 tile, a partial level-1 of width 17 and a partial
        // level-2 of width 1.
        let tiles: Vec<Tile> = new_tiles(0, 70_000).into_iter().filter(|t| t.kind != TileKind::Entries).collect();
        let level = |l: u8| -> Vec<Tile> {
            tiles.iter().copied().filter(|t| t.kind == TileKind::Hashes { level: l }).collect()
        };
        assert_eq!(level(0).len(), 274);
        assert_eq!(level(0).last(), Some(&Tile::hashes(0, 273, 112)));
        assert_eq!(level(1), vec![Tile::hashes(1, 0, 256), Tile::hashes(1, 1, 17)]);
        assert_eq!(level(2), vec![Tile::hashes(2, 0, 1)]);
        assert_eq!(tiles.len(), 277);
        assert_eq!(partial_tile_width(70_000, 0), 112);
        assert_eq!(partial_tile_width(70_000, 1), 17);
        assert_eq!(partial_tile_width(70_000, 2), 1);
        // A tree of size 256 is a full level-0 tile and a level-1 tile of width 1.
        let t256 = new_tiles(0, 256);
        assert_eq!(t256, vec![Tile::hashes(0, 0, 256), Tile::entries(0, 256), Tile::hashes(1, 0, 1)]);
    }

    #[test]
    fn entry_bundles_round_trip_and_are_strict() {
        let entries: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], vec![7; 300]];
        let data = encode_entry_bundle(&entries).unwrap();
        assert_eq!(&data[..3], &[0, 1, b'a']);
        let tile = Tile::entries(0, 3);
        let back = decode_entry_bundle(&tile, &data).unwrap();
        assert_eq!(back, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(matches!(
            decode_entry_bundle(&Tile::entries(0, 4), &data),
            Err(TileError::BundleCount { found: 3, expected: 4, .. })
        ));
        assert!(matches!(
            decode_entry_bundle(&Tile::entries(0, 2), &data),
            Err(TileError::BundleTrailing { extra: 302, .. })
        ));
        assert!(matches!(
            decode_entry_bundle(&tile, &data[..data.len() - 1]),
            Err(TileError::BundleTruncated { position: 2, .. })
        ));
        assert!(matches!(
            encode_entry_bundle(&[vec![0u8; ENTRY_SIZE_MAX + 1]]),
            Err(TileError::BundleEntryOversize { position: 0, .. })
        ));
    }
}
