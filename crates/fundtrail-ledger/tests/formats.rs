//! End-to-end: a projection publishes entries, tiles, checkpoints and receipts; a
//! verifier checks them from a static mirror and a receipt alone. Formats are
//! cross-checked against the pinned crates' independent code paths.

use fundtrail_ledger::tiles::{
    self, decode_entry_bundle, encode_entry_bundle, new_tiles, read_tile, tile_hashes, verify_entry_bundle,
};
use fundtrail_ledger::{
    add_cosignature, build_receipt, check_new_checkpoint, cosignature_message, leaf_hash, prove_consistency,
    prove_inclusion, tree_hash, verify_chain, verify_cosigned_checkpoint, verify_receipt, Chain, Checkpoint,
    ConsistencyError, Hash, LeafInput, LogSigner, LogVerifier, MemoryHashStore, NoteError, Receipt, ReceiptError, Tile,
    TileHashReader, TileKind, TileSource, WitnessVerifier,
};
use proptest::prelude::*;
use std::collections::HashMap;

const ORIGIN: &str = "fundtrail.example/ledger";

/// What the ledger projection keeps and what it publishes under `/ledger/`.
struct Projection {
    chain: Chain,
    store: MemoryHashStore,
    entries: Vec<Vec<u8>>,
    published: HashMap<String, Vec<u8>>,
    signer: LogSigner,
    checkpoints: Vec<(Checkpoint, Vec<u8>)>,
}

impl Projection {
    fn new() -> Self {
        Projection {
            chain: Chain::new(),
            store: MemoryHashStore::new(),
            entries: Vec::new(),
            published: HashMap::new(),
            signer: LogSigner::from_seed(ORIGIN, &[42; 32]).unwrap(),
            checkpoints: Vec::new(),
        }
    }

    fn apply(&mut self, envelope: &[u8]) {
        let (entry, leaf) = self.chain.append(envelope).unwrap();
        let size = self.store.append(leaf);
        assert_eq!(size, self.chain.next_index());
        self.entries.push(entry);
    }

    fn checkpoint(&mut self) -> Vec<u8> {
        let old_size = self.checkpoints.last().map_or(0, |(c, _)| c.size);
        let size = self.store.size();
        for tile in new_tiles(old_size, size) {
            let data = match tile.kind {
                TileKind::Hashes { .. } => read_tile(&tile, &self.store).unwrap(),
                TileKind::Entries => {
                    let start = (tile.n * 256) as usize;
                    let end = start + usize::from(tile.width);
                    encode_entry_bundle(&self.entries[start..end]).unwrap()
                }
            };
            self.published.insert(tile.path(), data);
        }
        let checkpoint = Checkpoint::new(ORIGIN, size, self.store.root()).unwrap();
        let note = self.signer.sign_checkpoint(&checkpoint).unwrap();
        self.checkpoints.push((checkpoint, note.clone()));
        note
    }
}

/// A static mirror: the published files. A partial tile that is gone is served from the
/// full tile that replaced it, cut to width.
struct Mirror<'a>(&'a HashMap<String, Vec<u8>>);

impl TileSource for Mirror<'_> {
    fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, String> {
        if let Some(data) = self.0.get(&tile.path()) {
            return Ok(data.clone());
        }
        let full = Tile { width: 256, ..*tile };
        let data = self.0.get(&full.path()).ok_or(format!("{} not found", tile.path()))?;
        Ok(data[..usize::from(tile.width) * 32].to_vec())
    }
}

fn projection_of(n: usize, checkpoint_every: usize) -> Projection {
    let mut p = Projection::new();
    for i in 0..n {
        p.apply(format!("{{\"event\":{i}}}").as_bytes());
        if (i + 1) % checkpoint_every == 0 {
            p.checkpoint();
        }
    }
    p.checkpoint();
    p
}

#[test]
fn a_verifier_rebuilds_everything_from_the_mirror() {
    let p = projection_of(1000, 300);
    let (checkpoint, note) = p.checkpoints.last().unwrap().clone();
    let log = LogVerifier::from_vkey(&p.signer.vkey()).unwrap();
    assert_eq!(log.verify_checkpoint(&note).unwrap(), checkpoint);

    // Hashes read through tiles are authenticated against the checkpoint's root.
    let mirror = Mirror(&p.published);
    let reader = TileHashReader::new(checkpoint.size, checkpoint.root, &mirror);
    assert_eq!(tree_hash(checkpoint.size, &reader).unwrap(), checkpoint.root);
    for index in [0, 1, 255, 256, 511, 777, 999] {
        assert_eq!(prove_inclusion(1000, index, &reader).unwrap(), prove_inclusion(1000, index, &p.store).unwrap());
    }
    for old in [1, 300, 600, 900, 999] {
        assert_eq!(prove_consistency(old, 1000, &reader).unwrap(), prove_consistency(old, 1000, &p.store).unwrap());
    }

    // Entry bundles check against level-0 tiles; the entries walk as a chain.
    let mut entries: Vec<Vec<u8>> = Vec::new();
    for n in 0..4u64 {
        let width = if n == 3 { 1000 - 768 } else { 256 };
        let bundle = Tile::entries(n, width);
        let level0 = bundle.twin().unwrap();
        let level0_data = reader.read_tile(&level0).unwrap();
        let bundle_data = &p.published[&bundle.path()];
        let got = verify_entry_bundle(&bundle, bundle_data, &level0_data).unwrap();
        entries.extend(got.into_iter().map(<[u8]>::to_vec));
    }
    let leaves = verify_chain(entries.iter().map(Vec::as_slice)).unwrap();
    let mut rebuilt = MemoryHashStore::new();
    rebuilt.append_many(&leaves).unwrap();
    assert_eq!(rebuilt.root(), checkpoint.root);
}

#[test]
fn a_tampered_mirror_is_refused() {
    let p = projection_of(600, 600);
    let (checkpoint, _) = p.checkpoints.last().unwrap().clone();
    let mut files = p.published.clone();
    files.get_mut("tile/0/001").unwrap()[5] ^= 1;
    let mirror = Mirror(&files);
    let reader = TileHashReader::new(checkpoint.size, checkpoint.root, &mirror);
    assert!(prove_inclusion(600, 300, &reader).is_err());
    // A wrong root makes every tile suspect.
    let honest = Mirror(&p.published);
    let reader = TileHashReader::new(600, leaf_hash(b"not the root"), &honest);
    assert!(tree_hash(600, &reader).is_err());
    // An entry changed in a bundle no longer matches its level-0 tile.
    let bundle = Tile::entries(0, 256);
    let mut data = p.published[&bundle.path()].clone();
    data[100] ^= 1;
    let level0 = &p.published["tile/0/000"];
    assert!(verify_entry_bundle(&bundle, &data, level0).is_err());
    // A level-0 tile forged to match the forged bundle is caught by its parent.
    let mut files = p.published.clone();
    let forged = decode_entry_bundle(&bundle, &data).unwrap();
    let position = (0..256).find(|&i| forged[i] != p.entries[i].as_slice()).unwrap();
    let leaf = leaf_hash(forged[position]);
    files.get_mut("tile/0/000").unwrap()[position * 32..][..32].copy_from_slice(&leaf.0);
    let level0_forged = &files["tile/0/000"];
    assert!(verify_entry_bundle(&bundle, &data, level0_forged).is_ok());
    let mirror = Mirror(&files);
    let reader = TileHashReader::new(600, checkpoint.root, &mirror);
    assert!(reader.read_tile(&Tile::hashes(0, 0, 256)).is_err());
}

#[test]
fn tile_hashes_are_the_stored_hashes() {
    let p = projection_of(70_000 / 100, 1000); // 700 entries
    let data = &p.published["tile/1/000.p/2"];
    let hashes = tile_hashes(&Tile::hashes(1, 0, 2), data).unwrap();
    assert_eq!(hashes[0], tree_hash(256, &p.store).unwrap());
    let full0 = &p.published["tile/0/000"];
    assert_eq!(tiles::tile_root(&Tile::hashes(0, 0, 256), full0).unwrap(), hashes[0]);
    let level0 = tile_hashes(&Tile::hashes(0, 2, 188), &p.published["tile/0/002.p/188"]);
    assert_eq!(level0.unwrap()[0], leaf_hash(&p.entries[512]));
    let bundle = decode_entry_bundle(&Tile::entries(2, 188), &p.published["tile/entries/002.p/188"]);
    assert_eq!(bundle.unwrap()[0], p.entries[512].as_slice());
}

/// The Go sumdb path tlog_tiles 0.2.0 writes for the same tile (height 8, "data" for
/// entries), translated to C2SP tlog-tiles.
fn tlog_path(tile: &Tile) -> String {
    let (level, data) = match tile.kind {
        TileKind::Hashes { level } => (level, false),
        TileKind::Entries => (0, true),
    };
    let go = tlog_tiles::Tile::new(8, level, tile.n, u32::from(tile.width), data).path();
    let rest = go.strip_prefix("tile/8/").unwrap();
    match rest.strip_prefix("data/") {
        Some(index) => format!("tile/entries/{index}"),
        None => format!("tile/{rest}"),
    }
}

proptest! {
    #[test]
    fn tile_paths_agree_with_the_pinned_crate(
        level in 0u8..=7,
        n in any::<u64>(),
        width in 1u16..=256,
        entries in any::<bool>(),
    ) {
        let tile = if entries { Tile::entries(n, width) } else { Tile::hashes(level, n, width) };
        let path = tile.path();
        prop_assert_eq!(&path, &tlog_path(&tile));
        prop_assert_eq!(Tile::parse(&path), Ok(tile));
    }

    #[test]
    fn tile_path_parser_agrees_with_the_pinned_crate(path in "tile/(entries|[0-5]?[0-9]|6[0-3]|0[0-9])/((x[0-9]{3}/){0,2}[0-9]{2,4})(\\.p/([1-9][0-9]{0,2}|0[1-9]))?") {
        // Translate to Go's form and let tlog_tiles judge it too. (Its parser panics on
        // levels 64..=99 and on width 0, so the generator keeps to inputs it survives.)
        let go = match path.strip_prefix("tile/entries/") {
            Some(rest) => format!("tile/8/data/{rest}"),
            None => format!("tile/8/{}", path.strip_prefix("tile/").unwrap()),
        };
        let theirs = tlog_tiles::Tile::from_path(&go).ok();
        let ours = Tile::parse(&path).ok();
        prop_assert_eq!(ours.is_some(), theirs.is_some(), "{} vs {}", path, go);
    }

    #[test]
    fn entry_bundles_round_trip(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..=256)) {
        let data = encode_entry_bundle(&entries).unwrap();
        let tile = Tile::entries(0, entries.len() as u16);
        let back = decode_entry_bundle(&tile, &data).unwrap();
        prop_assert_eq!(back, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
}

#[test]
fn checkpoints_cross_check_with_the_pinned_crates() {
    let p = projection_of(10, 100);
    let (checkpoint, note) = p.checkpoints.last().unwrap().clone();
    // signed_note's own verifier, from our vkey text, accepts our signature.
    let theirs = signed_note::StandardVerifier::new(&p.signer.vkey()).unwrap();
    let parsed = signed_note::Note::from_bytes(&note).unwrap();
    let list = signed_note::VerifierList::new(vec![Box::new(theirs)]);
    let (verified, _) = parsed.verify(&list).unwrap();
    assert_eq!(verified.len(), 1);
    // tlog_tiles' checkpoint parser reads our body the same way.
    let body = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    assert_eq!(body.origin(), checkpoint.origin);
    assert_eq!(body.size(), checkpoint.size);
    assert_eq!(body.hash().0, checkpoint.root.0);
    assert_eq!(body.extension(), "");
}

#[test]
fn a_donor_verifies_a_receipt() {
    let mut p = projection_of(57, 20);
    let note = p.checkpoint();
    let log = LogVerifier::from_vkey(&p.signer.vkey()).unwrap();
    let index = 41;
    let proof = prove_inclusion(57, index, &p.store).unwrap();
    let salt = b"donor salt 0123456789".to_vec();
    let receipt = build_receipt(index, proof.clone(), &note, Some(salt.clone()));
    let text = String::from_utf8(receipt.clone()).unwrap();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra ZG9ub3Igc2FsdCAwMTIzNDU2Nzg5\nindex 41\n"));
    assert!(text.ends_with(std::str::from_utf8(&note).unwrap()));

    let entry = &p.entries[41];
    let verified = verify_receipt(&receipt, LeafInput::Entry(entry), &log).unwrap();
    assert_eq!(verified.index, 41);
    assert_eq!(verified.checkpoint.size, 57);
    assert_eq!(verified.extra, Some(salt));
    let by_hash = verify_receipt(&receipt, LeafInput::LeafHash(leaf_hash(entry)), &log);
    assert_eq!(by_hash.unwrap().leaf, leaf_hash(entry));

    // Another entry, another key, or an edited index: refused, each for its reason.
    let other = verify_receipt(&receipt, LeafInput::Entry(&p.entries[40]), &log);
    assert_eq!(other, Err(ReceiptError::EntryIndexMismatch { receipt_index: 41, entry_index: 40 }));
    let other_hash = verify_receipt(&receipt, LeafInput::LeafHash(leaf_hash(&p.entries[40])), &log);
    assert!(matches!(other_hash, Err(ReceiptError::Inclusion { index: 41, .. })));
    let stranger = LogSigner::from_seed(ORIGIN, &[1; 32]).unwrap().verifier();
    let err = verify_receipt(&receipt, LeafInput::Entry(entry), &stranger).unwrap_err();
    assert!(matches!(err, ReceiptError::Checkpoint { index: 41, source: NoteError::UnknownKey { .. } }));
    let edited = text.replace("index 41\n", "index 42\n");
    let err = verify_receipt(edited.as_bytes(), LeafInput::LeafHash(leaf_hash(entry)), &log);
    assert!(matches!(err, Err(ReceiptError::Inclusion { index: 42, .. })));
    let parsed = Receipt::parse(&receipt).unwrap();
    assert_eq!(parsed.proof, proof);
    assert_eq!(parsed.to_bytes(), receipt);
}

#[test]
fn a_cosigned_checkpoint_in_a_receipt_still_verifies() {
    let p = projection_of(9, 100);
    let (_, note) = p.checkpoints.last().unwrap().clone();
    let witness_key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let witness =
        WitnessVerifier::from_public_key("witness.example/w1", witness_key.verifying_key().as_bytes()).unwrap();
    let log = p.signer.verifier();
    let body = log.verify_note(&note).unwrap().as_bytes().to_vec();
    let sig = ed25519_dalek::Signer::sign(&witness_key, &cosignature_message(&body, 1_700_000_000));
    let cosigned = add_cosignature(&note, &witness, 1_700_000_000, &sig.to_bytes()).unwrap();
    let (_, cosigs) = verify_cosigned_checkpoint(&cosigned, &log, &[witness]).unwrap();
    assert_eq!(cosigs[0].timestamp, 1_700_000_000);
    let proof = prove_inclusion(9, 3, &p.store).unwrap();
    let receipt = build_receipt(3, proof, &cosigned, None);
    assert!(verify_receipt(&receipt, LeafInput::Entry(&p.entries[3]), &log).is_ok());
}

#[test]
fn an_auditor_follows_checkpoints_and_catches_a_fork() {
    let mut p = projection_of(30, 1000);
    let log = p.signer.verifier();
    let (first, _) = p.checkpoints[0].clone();
    for i in 30..45 {
        p.apply(format!("later {i}").as_bytes());
    }
    let note = p.checkpoint();
    let proof = prove_consistency(first.size, 45, &p.store).unwrap();
    let second = check_new_checkpoint(first.size, &first.root, &note, &log, &proof).unwrap();
    assert_eq!(second.size, 45);

    // The log signs a different history of the same size: a fork, proven by two notes.
    let mut fork = MemoryHashStore::new();
    fork.append_many(&(0..45u8).map(|i| leaf_hash(&[i])).collect::<Vec<Hash>>()).unwrap();
    let forked = Checkpoint::new(ORIGIN, 45, fork.root()).unwrap();
    let forked_note = p.signer.sign_checkpoint(&forked).unwrap();
    let err = check_new_checkpoint(45, &second.root, &forked_note, &log, &[]).unwrap_err();
    assert!(matches!(err, ConsistencyError::Fork { size: 45, .. }), "{err}");
    let err = check_new_checkpoint(45, &second.root, &p.checkpoints[0].1, &log, &[]);
    assert!(matches!(err, Err(ConsistencyError::Rollback { old_size: 45, new_size: 30 })));
}
