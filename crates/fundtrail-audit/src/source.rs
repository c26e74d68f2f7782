//! Where a ledger is read from: a static mirror in a directory, or a C2SP tlog-tiles
//! prefix over HTTP(S). Everything read here is untrusted: [`crate::verify`] checks it.
//!
//! Paths are the C2SP tlog-tiles ones, relative to the ledger prefix: `checkpoint`,
//! `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`. Every read has a size cap.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fundtrail_ledger::note::NOTE_SIZE_MAX;
use fundtrail_ledger::tiles::{ENTRY_BUNDLE_BYTES_MAX, TILE_BYTES_MAX, TILE_WIDTH};
use fundtrail_ledger::{Tile, TileKind, TileSource, HASH_SIZE};
use thiserror::Error;

/// Connect timeout of the HTTP source.
pub const HTTP_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Time allowed for one whole HTTP response (headers and body) once connected.
pub const HTTP_RESPONSE_TIMEOUT_MS: u64 = 60_000;
/// Redirects followed (a static host may redirect to a CDN).
pub const HTTP_REDIRECTS_MAX: u32 = 5;
/// Largest checkpoint read, in bytes: the largest signed note the ledger crate accepts.
pub const CHECKPOINT_BYTES_MAX: usize = NOTE_SIZE_MAX;

/// Why a file of the ledger could not be read. Each names the file or URL.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SourceError {
    #[error("{location}: not found")]
    NotFound { location: String },
    #[error("{location}: HTTP status {status}")]
    Status { location: String, status: u16 },
    #[error("{location}: larger than the maximum of {max} bytes")]
    TooLarge { location: String, max: usize },
    #[error("{location}: {cause}")]
    Io { location: String, cause: String },
    #[error("{location}: {cause}")]
    Invalid { location: String, cause: String },
}

/// Read access to a ledger published in the C2SP tlog-tiles layout.
pub trait LedgerSource {
    /// Where the ledger is, for messages (a directory or a URL).
    fn location(&self) -> String;

    /// The bytes at `path` (relative to the ledger prefix), at most `bytes_max` of them.
    fn read(&self, path: &str, bytes_max: usize) -> Result<Vec<u8>, SourceError>;

    /// The signed checkpoint, `<prefix>/checkpoint`.
    fn checkpoint(&self) -> Result<Vec<u8>, SourceError> {
        self.read("checkpoint", CHECKPOINT_BYTES_MAX)
    }

    /// A hash tile or entry bundle exactly at its path (no fallback; see [`fetch_tile`]).
    fn tile(&self, tile: &Tile) -> Result<Vec<u8>, SourceError> {
        self.read(&tile.path(), tile_bytes_max(tile))
    }
}

/// The size cap of a tile or bundle: hash tiles are `width · 32` bytes exactly; a
/// bundle is at most 256 entries of the largest size.
pub fn tile_bytes_max(tile: &Tile) -> usize {
    match tile.kind {
        TileKind::Hashes { .. } => usize::from(tile.width) * HASH_SIZE,
        TileKind::Entries => ENTRY_BUNDLE_BYTES_MAX,
    }
}

/// Reads a tile, falling back to the full tile when a partial one is gone.
///
/// C2SP tlog-tiles: a partial tile exists only while its tile is incomplete; once the
/// tree grows past it the log may delete it, and a client reads the full tile and uses
/// its first `W` hashes (or entries) instead: tiles only ever grow.
pub fn fetch_tile(source: &(impl LedgerSource + ?Sized), tile: &Tile) -> Result<Vec<u8>, SourceError> {
    match source.tile(tile) {
        Err(SourceError::NotFound { location }) if !tile.is_full() => {
            let full = Tile { width: TILE_WIDTH, ..*tile };
            let data = source.tile(&full).map_err(|e| match e {
                SourceError::NotFound { .. } => SourceError::NotFound { location: location.clone() },
                other => other,
            })?;
            cut_to_width(tile, &full.path(), data)
        }
        other => other,
    }
}

/// The first `tile.width` hashes or entries of a wider tile's bytes.
fn cut_to_width(tile: &Tile, full_path: &str, mut data: Vec<u8>) -> Result<Vec<u8>, SourceError> {
    let short = |cause: String| SourceError::Invalid { location: full_path.to_string(), cause };
    let keep = match tile.kind {
        TileKind::Hashes { .. } => usize::from(tile.width) * HASH_SIZE,
        TileKind::Entries => {
            let mut offset = 0usize;
            for position in 0..usize::from(tile.width) {
                let len = data
                    .get(offset..offset + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or_else(|| short(format!("entry {position} truncated")))?;
                offset += 2 + len;
            }
            offset
        }
    };
    if data.len() < keep {
        return Err(short(format!("{} bytes, fewer than the {keep} of the first {} items", data.len(), tile.width)));
    }
    data.truncate(keep);
    Ok(data)
}

/// A static mirror in a directory: `DIR/checkpoint`, `DIR/tile/...`.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> DirSource {
        DirSource { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl LedgerSource for DirSource {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, path: &str, bytes_max: usize) -> Result<Vec<u8>, SourceError> {
        use std::io::Read;
        // Paths come from Tile::path or are "checkpoint": never absolute, never "..".
        assert!(!path.starts_with('/') && !path.split('/').any(|p| p == ".."), "ledger path {path:?}");
        let file = self.root.join(path);
        let location = file.display().to_string();
        let handle = std::fs::File::open(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound { location: location.clone() },
            _ => SourceError::Io { location: location.clone(), cause: e.to_string() },
        })?;
        let mut data = Vec::new();
        handle
            .take(bytes_max as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| SourceError::Io { location: location.clone(), cause: e.to_string() })?;
        if data.len() > bytes_max {
            return Err(SourceError::TooLarge { location, max: bytes_max });
        }
        Ok(data)
    }
}

/// A ledger over HTTP(S): `GET <base>/checkpoint`, `GET <base>/tile/...`, with connect
/// and response timeouts and a size cap per file.
pub struct HttpSource {
    base: String,
    agent: ureq::Agent,
}

impl HttpSource {
    /// A source for the ledger prefix `base_url`, e.g. `https://fund.example/ledger`.
    pub fn new(base_url: &str) -> Result<HttpSource, SourceError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SourceError::Invalid { location: base, cause: "not an http:// or https:// URL".into() });
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_millis(HTTP_CONNECT_TIMEOUT_MS)))
            .timeout_global(Some(Duration::from_millis(HTTP_RESPONSE_TIMEOUT_MS)))
            .max_redirects(HTTP_REDIRECTS_MAX)
            .http_status_as_error(false)
            .build();
        Ok(HttpSource { base, agent: config.new_agent() })
    }
}

impl LedgerSource for HttpSource {
    fn location(&self) -> String {
        self.base.clone()
    }

    fn read(&self, path: &str, bytes_max: usize) -> Result<Vec<u8>, SourceError> {
        let location = format!("{}/{path}", self.base);
        let io = |e: ureq::Error| SourceError::Io { location: location.clone(), cause: e.to_string() };
        let mut response = self.agent.get(&location).call().map_err(io)?;
        let status = response.status().as_u16();
        if status == 404 || status == 410 {
            return Err(SourceError::NotFound { location });
        }
        if status != 200 {
            return Err(SourceError::Status { location, status });
        }
        response.body_mut().with_config().limit(bytes_max as u64).read_to_vec().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => SourceError::TooLarge { location: location.clone(), max: bytes_max },
            e => io(e),
        })
    }
}

/// Opens `--ledger` as given: an `http(s)://` URL or a directory.
pub fn open_source(ledger: &str) -> Result<Box<dyn LedgerSource>, SourceError> {
    if ledger.starts_with("http://") || ledger.starts_with("https://") {
        return Ok(Box::new(HttpSource::new(ledger)?));
    }
    let dir = PathBuf::from(ledger);
    if !dir.is_dir() {
        return Err(SourceError::NotFound { location: format!("{ledger} (not a directory nor an http(s) URL)") });
    }
    Ok(Box::new(DirSource::new(dir)))
}

/// Hash tiles fetched once and kept, as the ledger crate's [`TileSource`]: the tile
/// hash reader asks for the same upper tiles again and again. Untrusted like the
/// source; only what the ledger crate authenticates is used.
pub(crate) struct TileCache<'a> {
    source: &'a dyn LedgerSource,
    tiles: RefCell<HashMap<Tile, Vec<u8>>>,
    /// The first fetch error, kept typed (the ledger crate sees a string).
    error: RefCell<Option<SourceError>>,
}

impl<'a> TileCache<'a> {
    pub(crate) fn new(source: &'a dyn LedgerSource) -> TileCache<'a> {
        TileCache { source, tiles: RefCell::new(HashMap::new()), error: RefCell::new(None) }
    }

    /// The bytes of a tile, fetched or cached (unauthenticated).
    pub(crate) fn get(&self, tile: &Tile) -> Result<Vec<u8>, SourceError> {
        if let Some(data) = self.tiles.borrow().get(tile) {
            return Ok(data.clone());
        }
        let data = fetch_tile(self.source, tile)?;
        if tile.kind != TileKind::Entries {
            // The bundle is used once; hash tiles are asked for again.
            self.tiles.borrow_mut().insert(*tile, data.clone());
        }
        Ok(data)
    }

    /// Drops a tile that will not be asked for again (a level-0 tile once checked).
    pub(crate) fn forget(&self, tile: &Tile) {
        self.tiles.borrow_mut().remove(tile);
    }

    /// Every hash tile still cached, with its bytes.
    pub(crate) fn cached(&self) -> Vec<(Tile, Vec<u8>)> {
        let mut all: Vec<(Tile, Vec<u8>)> = self.tiles.borrow().iter().map(|(t, d)| (*t, d.clone())).collect();
        all.sort_by_key(|(t, _)| *t);
        all
    }

    pub(crate) fn take_error(&self) -> Option<SourceError> {
        self.error.borrow_mut().take()
    }
}

impl TileSource for TileCache<'_> {
    fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, String> {
        debug_assert!(tile.width as usize * HASH_SIZE <= TILE_BYTES_MAX);
        self.get(tile).map_err(|e| {
            let message = e.to_string();
            self.error.borrow_mut().get_or_insert(e);
            message
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_partial_tile_is_read_from_the_full_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tile/0")).unwrap();
        std::fs::create_dir_all(dir.path().join("tile/entries")).unwrap();
        let full: Vec<u8> = (0..TILE_BYTES_MAX).map(|i| i as u8).collect();
        std::fs::write(dir.path().join("tile/0/000"), &full).unwrap();
        let entries: Vec<Vec<u8>> = (0..256u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let bundle = fundtrail_ledger::tiles::encode_entry_bundle(&entries).unwrap();
        std::fs::write(dir.path().join("tile/entries/000"), &bundle).unwrap();
        let source = DirSource::new(dir.path());
        assert_eq!(fetch_tile(&source, &Tile::hashes(0, 0, 3)).unwrap(), full[..96].to_vec());
        let three = fetch_tile(&source, &Tile::entries(0, 3)).unwrap();
        assert_eq!(three, fundtrail_ledger::tiles::encode_entry_bundle(&entries[..3]).unwrap());
        let err = fetch_tile(&source, &Tile::hashes(0, 1, 3)).unwrap_err();
        assert!(matches!(err, SourceError::NotFound { ref location } if location.ends_with("tile/0/001.p/3")), "{err}");
    }

    #[test]
    fn reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checkpoint"), vec![b'a'; CHECKPOINT_BYTES_MAX + 1]).unwrap();
        let err = DirSource::new(dir.path()).checkpoint().unwrap_err();
        assert!(matches!(err, SourceError::TooLarge { .. }), "{err}");
    }
}
