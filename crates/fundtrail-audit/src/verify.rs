//! `verify_ledger`: a whole ledger, from its public files, trusting none of them.
//!
//! In order: the checkpoint's signature (C2SP signed-note, the log's key); consistency
//! with the last checkpoint this verifier saw, if any (RFC 9162 §2.1.4 proof from the
//! tiles); then, tile by tile, the level-0 hash tile authenticated against the signed
//! root (C2SP tlog-tiles, via the ledger crate's `TileHashReader`), its entry bundle
//! checked against it, each entry walked as a hash chain (index, prev), folded through
//! the one [`Fold`] (signature by a key holding the role, schema, every domain rule) and
//! appended to a tree of our own. Last, the root of that tree must be the signed root,
//! every upper tile fetched must equal ours, and the earlier checkpoint's root must be
//! the root of the first entries.
//!
//! Entries are read a window ahead and their envelopes opened on every core while the
//! previous window is applied in order ([`crate::parallel`]): the outcome, and the
//! first failure, are those of the one-by-one replay.

use fundtrail_domain::KeyId;
use fundtrail_envelope::{enrolled_key, Fold, FoldError};
use fundtrail_ledger::tiles::{read_tile, tile_hashes, verify_entry_bundle, TILE_WIDTH};
use fundtrail_ledger::{
    check_consistency, decode_entry, leaf_hash, prove_consistency, tree_hash, Chain, ChainError, Checkpoint,
    ConsistencyError, Hash, LogVerifier, MemoryHashStore, NoteError, Tile, TileError, TileHashReader, TileKind,
    HASH_SIZE,
};
use thiserror::Error;

use crate::parallel::{apply_window, Ahead, Openers, Threads, WINDOW_ENTRIES_MAX};
use crate::report::{fund_reports, CheckpointInfo, Report};
use crate::source::{LedgerSource, SourceError, TileCache};

/// How far a verification has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub entries_done: u64,
    pub entries_total: u64,
}

/// What to verify beyond the ledger itself.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// The last checkpoint this verifier accepted (from its state file, or a receipt's):
    /// the new one must extend it.
    pub previous: Option<Checkpoint>,
    /// Called after each entry bundle (and at the start).
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
}

/// Why a ledger was refused: the first bad entry, when the fault is in one, and why.
#[derive(Debug, Error)]
pub struct VerifyFailure {
    /// The index of the first bad entry; `None` when the fault is not in an entry (the
    /// checkpoint, a fork, a rollback, an upper hash tile).
    pub index: Option<u64>,
    pub cause: Cause,
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(index) => write!(f, "entry {index}: {}", self.cause),
            None => write!(f, "{}", self.cause),
        }
    }
}

/// The cause of a [`VerifyFailure`]. Each names the file, tile or numbers involved.
#[derive(Debug, Error)]
pub enum Cause {
    #[error("cannot read {source}")]
    Fetch { source: SourceError },
    #[error("checkpoint refused: {0}")]
    Checkpoint(NoteError),
    #[error("{0}")]
    Consistency(ConsistencyError),
    #[error(
        "the root of the first {old_size} entries is {computed}, but the last verified checkpoint says {expected}"
    )]
    OldRoot { old_size: u64, computed: Hash, expected: Hash },
    #[error("hash tile {path} is not consistent with the signed checkpoint: {detail}")]
    Tile { path: String, detail: String },
    #[error("hash tiles are not consistent with the signed checkpoint: {detail}")]
    Tiles { detail: String },
    #[error("entry bundle {path}: {detail}")]
    Bundle { path: String, detail: String },
    #[error("hash chain broken: {0}")]
    Chain(ChainError),
    #[error("replay refused the event: {0}")]
    Fold(FoldError),
    #[error("the root rebuilt from {size} entries is {computed}, but the checkpoint signs {signed}")]
    Root { size: u64, computed: Hash, signed: Hash },
    #[error("checkpoint of log {found:?}, but the earlier checkpoint is of {expected:?}")]
    OtherLog { found: String, expected: String },
    #[error("event stream: {detail}")]
    Stream { detail: String },
    #[error("cannot start {threads} verifying threads: {detail}")]
    Threads { threads: usize, detail: String },
}

pub(crate) fn fail(index: Option<u64>, cause: Cause) -> VerifyFailure {
    VerifyFailure { index, cause }
}

/// The replay shared by the ledger and the stream modes: chain, fold, our own tree.
pub(crate) struct Replay {
    pub(crate) chain: Chain,
    pub(crate) fold: Fold,
    pub(crate) tree: MemoryHashStore,
    /// Disclosures the fold checked, for the report.
    pub(crate) disclosures: crate::report::DisclosureCheck,
}

impl Replay {
    pub(crate) fn new() -> Replay {
        Replay { chain: Chain::new(), fold: Fold::new(), tree: MemoryHashStore::new(), disclosures: Default::default() }
    }

    /// Entry bytes read from the ledger, with their leaf hash as authenticated against
    /// the signed tree: the next link of the chain, then its envelope through the fold
    /// (sequence = index + 1; the ledger carries no subject). `ahead` is what opening
    /// its envelope ahead gave. Returns the key the event enrolled, if any.
    pub(crate) fn push_entry(
        &mut self,
        entry: &[u8],
        leaf: Hash,
        ahead: Ahead,
    ) -> Result<Option<KeyId>, VerifyFailure> {
        let index = self.chain.next_index();
        let leaf = self.chain.push_hashed(entry, leaf).map_err(|e| fail(Some(index), Cause::Chain(e)))?;
        let decoded = decode_entry(entry).expect("the chain decoded it");
        let enrolled = self.fold_envelope(index, None, decoded.envelope, ahead)?;
        self.append(index, leaf);
        Ok(enrolled)
    }

    /// An envelope read from the stream (message `index + 1`, on `subject`): the entry
    /// is built here, exactly as the ledger projection builds it.
    pub(crate) fn push_envelope(
        &mut self,
        subject: &str,
        envelope: &[u8],
        ahead: Ahead,
    ) -> Result<Option<KeyId>, VerifyFailure> {
        let index = self.chain.next_index();
        let (_, leaf) = self
            .chain
            .append(envelope)
            .map_err(|e| fail(Some(index), Cause::Stream { detail: format!("message {}: {e}", index + 1) }))?;
        let enrolled = self.fold_envelope(index, Some(subject), envelope, ahead)?;
        self.append(index, leaf);
        Ok(enrolled)
    }

    /// Folds entry `index`'s envelope: the event opened ahead when the fold would open
    /// it to exactly that event now, else `Fold::apply`, which opens it (or refuses it)
    /// itself. Returns the key the event enrolled, if any.
    fn fold_envelope(
        &mut self,
        index: u64,
        subject: Option<&str>,
        envelope: &[u8],
        ahead: Ahead,
    ) -> Result<Option<KeyId>, VerifyFailure> {
        let seq = index + 1;
        assert_eq!(seq, self.fold.position() + 1, "entries are folded in order");
        let result = match ahead.usable(&self.fold, subject) {
            Some(verified) => {
                debug_assert_eq!(verified.envelope, envelope);
                self.fold.apply_verified(seq, verified)
            }
            None => self.fold.apply(seq, subject, envelope),
        };
        let folded = result.map_err(|e| fail(Some(index), Cause::Fold(e)))?;
        assert_eq!(self.fold.position(), seq);
        self.disclosures.count(&folded.event.event);
        Ok(enrolled_key(&folded.event.event).map(|(key, _)| key))
    }

    fn append(&mut self, index: u64, leaf: Hash) {
        let size = self.tree.append(leaf);
        assert_eq!(size, index + 1);
        assert_eq!(self.chain.next_index(), size);
    }

    /// The end of both modes: the earlier checkpoint (if any) must be the root of
    /// our first entries; then every fund's balances from the replayed state.
    pub(crate) fn into_report(
        self,
        checkpoint: Checkpoint,
        note: String,
        options: &VerifyOptions,
    ) -> Result<Report, VerifyFailure> {
        if let Some(previous) = &options.previous {
            self.check_previous_root(previous)?;
        }
        Ok(Report {
            checkpoint: CheckpointInfo::from(&checkpoint),
            note,
            entries: self.tree.size(),
            consistent_with: options.previous.as_ref().map(CheckpointInfo::from),
            funds: fund_reports(&self.fold.state),
            traces: crate::report::TraceCheck::of(&self.fold.state),
            disclosures: self.disclosures,
            accounts: fundtrail_domain::accounts::all_years(&self.fold.state)
                .expect("every figure of a replayed state is in range"),
            state: self.fold.state,
        })
    }

    /// Checks that the earlier checkpoint `previous` is the root of our first entries.
    pub(crate) fn check_previous_root(&self, previous: &Checkpoint) -> Result<(), VerifyFailure> {
        assert!(previous.size <= self.tree.size());
        let computed = tree_hash(previous.size, &self.tree).expect("our own tree has every hash");
        if computed != previous.root {
            let cause = Cause::OldRoot { old_size: previous.size, computed, expected: previous.root };
            return Err(fail(None, cause));
        }
        Ok(())
    }
}

/// Fork and rollback from the sizes and roots alone; for a larger new checkpoint, the
/// RFC 9162 consistency proof computed from the (authenticated) tiles.
pub(crate) fn check_previous(
    previous: &Checkpoint,
    new: &Checkpoint,
    reader: Option<&dyn fundtrail_ledger::HashReader>,
) -> Result<(), VerifyFailure> {
    if previous.origin != new.origin {
        let cause = Cause::OtherLog { found: new.origin.clone(), expected: previous.origin.clone() };
        return Err(fail(None, cause));
    }
    let proof = match reader {
        Some(reader) if previous.size > 0 && previous.size < new.size => {
            prove_consistency(previous.size, new.size, reader)
                .map_err(|e| fail(None, Cause::Tiles { detail: e.to_string() }))?
        }
        _ => Vec::new(),
    };
    let proven = reader.is_some() || previous.size == 0 || previous.size >= new.size;
    match check_consistency(previous.size, &previous.root, new, &proof) {
        Ok(()) => Ok(()),
        // Without tiles (stream mode, no --ledger) a larger checkpoint is checked later,
        // from the rebuilt tree: check_previous_root.
        Err(ConsistencyError::Inconsistent { .. }) if !proven => Ok(()),
        Err(e) => Err(fail(None, Cause::Consistency(e))),
    }
}

/// Verifies the whole ledger served by `source` against the log key `log`, opening
/// envelopes on every core.
pub fn verify_ledger(
    source: &dyn LedgerSource,
    log: &LogVerifier,
    options: VerifyOptions<'_>,
) -> Result<Report, VerifyFailure> {
    verify_ledger_with(source, log, options, Threads::available())
}

/// [`verify_ledger`] with envelopes opened on `threads` threads. The outcome does not
/// depend on `threads`.
pub fn verify_ledger_with(
    source: &dyn LedgerSource,
    log: &LogVerifier,
    mut options: VerifyOptions<'_>,
    threads: Threads,
) -> Result<Report, VerifyFailure> {
    let note = source.checkpoint().map_err(|e| fail(None, Cause::Fetch { source: e }))?;
    let checkpoint = log.verify_checkpoint(&note).map_err(|e| fail(None, Cause::Checkpoint(e)))?;
    let note = String::from_utf8(note).expect("a verified note is UTF-8");
    let tiles = TileCache::new(source);
    let reader = TileHashReader::new(checkpoint.size, checkpoint.root, &tiles);
    if let Some(previous) = &options.previous {
        check_previous(previous, &checkpoint, Some(&reader))?;
    }
    let openers = openers(threads)?;
    let mut replay = Replay::new();
    let mut progress = |done: u64| {
        if let Some(callback) = options.progress.as_mut() {
            callback(Progress { entries_done: done, entries_total: checkpoint.size });
        }
    };
    progress(0);
    let mut bundles = Bundles { next: 0, total: checkpoint.size.div_ceil(u64::from(TILE_WIDTH)) };
    // A pipeline of windows: while window w is applied here, window w + 1 is opened on
    // the workers (against the fold as it was before window w), and window w + 2 is
    // fetched here once window w is applied.
    let mut fetched = bundles.fetch_window(&checkpoint, &tiles, &reader);
    let mut opened: Option<(Window, Vec<Ahead>)> = None;
    while !(fetched.is_empty() && opened.is_none()) {
        if replay.fold.position() == 0 {
            // Nothing is folded yet, so no key is known and opening the next window
            // against this fold would fail on every envelope: fold the first first.
            if let Some((window, opened)) = opened.take() {
                window.apply(opened, &openers, &mut replay, &tiles, &mut progress)?;
            }
        }
        let snapshot = replay.fold.clone();
        let envelopes = fetched.envelopes();
        let (applied, opened_now) =
            openers.open_all_while(&snapshot, &envelopes, false, || -> Result<Window, VerifyFailure> {
                if let Some((window, opened)) = opened.take() {
                    window.apply(opened, &openers, &mut replay, &tiles, &mut progress)?;
                }
                Ok(bundles.fetch_window(&checkpoint, &tiles, &reader))
            });
        drop(envelopes);
        let next = applied?;
        opened = (!fetched.is_empty()).then_some((fetched, opened_now));
        fetched = next;
    }
    assert_eq!(replay.tree.size(), checkpoint.size);
    let computed = replay.tree.root();
    if computed != checkpoint.root {
        return Err(fail(None, Cause::Root { size: checkpoint.size, computed, signed: checkpoint.root }));
    }
    compare_upper_tiles(&tiles, &replay.tree)?;
    replay.into_report(checkpoint, note, &options)
}

pub(crate) fn openers(threads: Threads) -> Result<Openers, VerifyFailure> {
    Openers::new(threads).map_err(|e| fail(None, Cause::Threads { threads: threads.get(), detail: e.to_string() }))
}

/// The tile at position `n` of a level for a tree of `size` leaves (full or partial).
fn tile_width(n: u64, size: u64) -> u16 {
    let start = n * u64::from(TILE_WIDTH);
    assert!(start < size);
    (size - start).min(u64::from(TILE_WIDTH)) as u16
}

/// The entry bundles still to fetch.
struct Bundles {
    next: u64,
    total: u64,
}

/// Entry bundles fetched and checked against their authenticated level-0 tiles, in
/// order, then the failure that stopped the fetching, if one did: it is reported only
/// if every entry before it verifies, as the one-by-one replay would.
struct Window {
    bundles: Vec<Bundle>,
    failure: Option<VerifyFailure>,
}

/// An entry bundle checked against its level-0 tile: its bytes once, where each entry
/// lies in them, and each entry's leaf hash (the tile's hash, which it was checked to be).
struct Bundle {
    level0: Tile,
    data: Vec<u8>,
    entries: Vec<std::ops::Range<usize>>,
    leaves: Vec<Hash>,
}

impl Bundle {
    fn entries(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().map(|range| &self.data[range.clone()])
    }
}

impl Bundles {
    /// The next bundles, up to [`WINDOW_ENTRIES_MAX`] entries; none after a failure.
    fn fetch_window(
        &mut self,
        checkpoint: &Checkpoint,
        tiles: &TileCache<'_>,
        reader: &TileHashReader<'_, TileCache<'_>>,
    ) -> Window {
        let mut window = Window { bundles: Vec::new(), failure: None };
        let mut entries = 0;
        while self.next < self.total && entries < WINDOW_ENTRIES_MAX {
            match fetch_bundle(self.next, checkpoint, tiles, reader) {
                Ok(bundle) => {
                    entries += bundle.entries.len();
                    window.bundles.push(bundle);
                    self.next += 1;
                }
                Err(failure) => {
                    window.failure = Some(failure);
                    self.next = self.total;
                }
            }
        }
        window
    }
}

impl Window {
    fn is_empty(&self) -> bool {
        self.bundles.is_empty() && self.failure.is_none()
    }

    /// Each entry's envelope, for opening ahead (`None` if the entry does not decode:
    /// the chain refuses it at its turn).
    fn envelopes(&self) -> Vec<Option<&[u8]>> {
        let entries = self.bundles.iter().flat_map(Bundle::entries);
        entries.map(|entry| decode_entry(entry).ok().map(|e| e.envelope)).collect()
    }

    /// Replays every entry in order (`aheads` holds what opening each entry's envelope
    /// ahead gave), reporting progress after each bundle; then the fetch failure, if any.
    fn apply(
        self,
        aheads: Vec<Ahead>,
        openers: &Openers,
        replay: &mut Replay,
        tiles: &TileCache<'_>,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), VerifyFailure> {
        let envelopes = self.envelopes();
        let entries: Vec<&[u8]> = self.bundles.iter().flat_map(Bundle::entries).collect();
        let leaves: Vec<Hash> = self.bundles.iter().flat_map(|b| &b.leaves).copied().collect();
        let mut bundle_ends = self.bundles.iter().scan(0, |end, b| {
            *end += b.entries.len();
            Some((*end, &b.level0))
        });
        let mut next_end = bundle_ends.next();
        apply_window(openers, replay, &envelopes, aheads, false, |replay, i, ahead| {
            let enrolled = replay.push_entry(entries[i], leaves[i], ahead)?;
            if let Some((end, level0)) = next_end.filter(|(end, _)| *end == i + 1) {
                assert_eq!(end, i + 1);
                tiles.forget(level0);
                progress(replay.tree.size());
                next_end = bundle_ends.next();
            }
            Ok(enrolled)
        })?;
        assert!(next_end.is_none(), "every bundle was replayed");
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// Entry bundle `n`: its level-0 tile authenticated, the bundle checked against it.
fn fetch_bundle(
    n: u64,
    checkpoint: &Checkpoint,
    tiles: &TileCache<'_>,
    reader: &TileHashReader<'_, TileCache<'_>>,
) -> Result<Bundle, VerifyFailure> {
    let first = n * u64::from(TILE_WIDTH);
    let width = tile_width(n, checkpoint.size);
    let level0 = Tile::hashes(0, n, width);
    let bundle = Tile::entries(n, width);
    let level0_data = match reader.read_tile(&level0) {
        Ok(data) => data,
        Err(e) => return Err(diagnose_tile(first, &level0, tiles, e)),
    };
    let bundle_data = tiles.get(&bundle).map_err(|e| fail(Some(first), Cause::Fetch { source: e }))?;
    let entries = match verify_entry_bundle(&bundle, &bundle_data, &level0_data) {
        Ok(entries) => entries,
        Err(e) => return Err(diagnose_bundle(first, &bundle, &bundle_data, &level0_data, e)),
    };
    assert_eq!(entries.len(), usize::from(width));
    // The entries are slices of `bundle_data`: where each starts in it.
    let start = |entry: &[u8]| entry.as_ptr() as usize - bundle_data.as_ptr() as usize;
    let entries = entries.iter().map(|entry| start(entry)..start(entry) + entry.len()).collect();
    let leaves = tile_hashes(&level0, &level0_data).expect("verify_entry_bundle read this tile");
    Ok(Bundle { level0, data: bundle_data, entries, leaves })
}

/// A level-0 tile failed authentication: find the first hash in it that is not the
/// leaf hash of its entry in the bundle, to name the entry it lies about.
fn diagnose_tile(first: u64, level0: &Tile, tiles: &TileCache<'_>, error: TileError) -> VerifyFailure {
    if let Some(source) = tiles.take_error() {
        return fail(Some(first), Cause::Fetch { source });
    }
    let detail = error.to_string();
    let (Ok(tile_data), Ok(bundle_data)) = (tiles.get(level0), tiles.get(&level0.twin().expect("level 0"))) else {
        return fail(None, Cause::Tiles { detail });
    };
    let Ok(hashes) = tile_hashes(level0, &tile_data) else {
        return fail(Some(first), Cause::Tile { path: level0.path(), detail });
    };
    for (position, entry) in lenient_entries(&bundle_data).into_iter().enumerate().take(hashes.len()) {
        if entry.is_some_and(|entry| leaf_hash(entry) != hashes[position]) {
            let index = first + position as u64;
            let detail = format!("its hash {position} is not the leaf hash of entry {index}; {detail}");
            return fail(Some(index), Cause::Tile { path: level0.path(), detail });
        }
    }
    // The level-0 tile agrees with its bundle: the fault is higher up.
    fail(None, Cause::Tiles { detail })
}

/// The entries of a bundle as far as they parse (`None` for a truncated last one).
fn lenient_entries(data: &[u8]) -> Vec<Option<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && out.len() < usize::from(TILE_WIDTH) {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            out.push(None);
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            out.push(None);
            break;
        }
        out.push(Some(&tail[..len]));
        rest = &tail[len..];
    }
    out
}

/// An entry bundle did not match its authenticated level-0 tile: name the first entry
/// that is missing, truncated or not the one the signed tree holds.
fn diagnose_bundle(first: u64, bundle: &Tile, data: &[u8], level0: &[u8], error: TileError) -> VerifyFailure {
    let path = bundle.path();
    let hashes: Vec<&[u8]> = level0.chunks_exact(HASH_SIZE).collect();
    let entries = lenient_entries(data);
    for (position, entry) in entries.iter().enumerate().take(hashes.len()) {
        let index = first + position as u64;
        let Some(entry) = entry else {
            let detail = format!("entry {index} is truncated (the bundle ends inside it)");
            return fail(Some(index), Cause::Bundle { path, detail });
        };
        if leaf_hash(entry).0 != hashes[position] {
            let carried = decode_entry(entry).map(|e| e.index);
            let hint = match carried {
                Ok(carried) if carried != index => {
                    format!(" (it carries index {carried}: entries reordered, dropped or inserted)")
                }
                Ok(_) => " (its bytes were altered)".to_string(),
                Err(e) => format!(" ({e})"),
            };
            let detail = format!("entry {index} is not the entry the signed tree holds{hint}");
            return fail(Some(index), Cause::Bundle { path, detail });
        }
    }
    if entries.len() < hashes.len() {
        let index = first + entries.len() as u64;
        let detail =
            format!("{} entries, {} expected: entry {index} and after are missing", entries.len(), hashes.len());
        return fail(Some(index), Cause::Bundle { path, detail });
    }
    let last = first + hashes.len() as u64 - 1;
    fail(Some(last), Cause::Bundle { path, detail: error.to_string() })
}

/// Every upper hash tile fetched must be exactly the tile of our own tree: a second,
/// independent check of what the tile reader authenticated.
fn compare_upper_tiles(tiles: &TileCache<'_>, tree: &MemoryHashStore) -> Result<(), VerifyFailure> {
    for (tile, data) in tiles.cached() {
        if matches!(tile.kind, TileKind::Hashes { level: 0 } | TileKind::Entries) {
            continue;
        }
        let ours =
            read_tile(&tile, tree).map_err(|e| fail(None, Cause::Tile { path: tile.path(), detail: e.to_string() }))?;
        if ours != data {
            let detail = "differs from the tile of the tree rebuilt from the entries".to_string();
            return Err(fail(None, Cause::Tile { path: tile.path(), detail }));
        }
    }
    Ok(())
}
