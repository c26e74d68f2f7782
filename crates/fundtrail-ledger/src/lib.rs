//! # fundtrail-ledger: the public ledger, as formats and algorithms
//!
//! This crate owns everything a donor, an auditor or a mirror needs to check FundTrail's
//! public ledger without trusting FundTrail: the entry format and its hash chain, the
//! RFC 6962 / RFC 9162 Merkle tree with inclusion and consistency proofs, C2SP
//! checkpoints (signed notes) and witness cosignatures, C2SP tlog-tiles paths and
//! contents, C2SP tlog-proof receipts, and rollback/fork detection.
//!
//! **Architecture invariant:** no I/O, no clock, no randomness. The crate knows nothing
//! of NATS, HTTP or sled: storage is reached through [`tree::HashReader`] and
//! [`tiles::TileSource`], time (cosignature timestamps) and keys come in as arguments.
//! The same code runs in the ledger projection, in the CLI verifier and in a browser.
//!
//! ## Entry format (fixed; others depend on it)
//!
//! Entry *i* is derived, deterministically, from stream message *i*:
//!
//! | bytes     | field      | meaning                                                    |
//! |-----------|------------|------------------------------------------------------------|
//! | 0..8      | `index`    | *i*, u64 big-endian                                        |
//! | 8..40     | `prev`     | leaf hash of entry *i − 1*; 32 zero bytes for entry 0      |
//! | 40..      | `envelope` | the DSSE envelope bytes exactly as published (opaque here) |
//!
//! An entry is at most [`ENTRY_SIZE_MAX`] = 65,535 bytes (the tlog-tiles entry bundle
//! length prefix is a u16); envelopes are capped at [`ENVELOPE_SIZE_MAX`] = 49,152
//! bytes. The leaf hash is SHA-256(0x00 ‖ entry), an interior node SHA-256(0x01 ‖ left ‖
//! right). Because every entry names its predecessor's leaf hash, the entries form a
//! hash chain that anyone can walk ([`entry::Chain`], [`entry::verify_chain`]) as
//! well as a Merkle tree that proves inclusion and append-only growth.
//!
//! ## In one example
//!
//! ```
//! use fundtrail_ledger::*;
//!
//! // The projection: one entry per stream message, one checkpoint now and then.
//! let signer = LogSigner::from_seed("fundtrail.example/ledger", &[7; 32]).unwrap();
//! let (mut chain, mut tree) = (Chain::new(), MemoryHashStore::new());
//! let mut entries = Vec::new();
//! for envelope in [&b"{\"payloadType\":...}"[..], b"{...}", b"{...}"] {
//!     let (entry, leaf) = chain.append(envelope).unwrap();
//!     tree.append(leaf); // a real store persists append_leaf's hashes instead
//!     entries.push(entry);
//! }
//! let checkpoint = Checkpoint::new(signer.name(), tree.size(), tree.root()).unwrap();
//! let note = signer.sign_checkpoint(&checkpoint).unwrap();
//! let proof = prove_inclusion(tree.size(), 1, &tree).unwrap();
//! let receipt = build_receipt(1, proof, &note, Some(b"salt".to_vec()));
//!
//! // A donor, with the receipt, the entry and the log's public key only.
//! let log = LogVerifier::from_vkey(&signer.vkey()).unwrap();
//! let verified = verify_receipt(&receipt, LeafInput::Entry(&entries[1]), &log).unwrap();
//! assert_eq!(verified.checkpoint.size, 3);
//! ```
//!
//! ## Map
//!
//! - [`hash`]: [`struct@Hash`], [`leaf_hash`], [`node_hash`].
//! - [`entry`]: [`encode_entry`], [`decode_entry`], [`entry::Chain`].
//! - [`tree`]: stored hashes by [`tree::NodeId`] `(level, index)`, the appender
//!   ([`tree::append_leaf`], [`tree::append_leaves`]), [`tree::tree_hash`],
//!   [`tree::prove_inclusion`], [`tree::prove_consistency`], [`tree::verify_inclusion`],
//!   [`tree::verify_consistency`], [`tree::MemoryHashStore`].
//! - [`tiles`]: tile paths, tile bytes, entry bundles, [`tiles::TileHashReader`] (a
//!   verifier working from a static mirror's tiles).
//! - [`checkpoint`]: the three-line tree head; [`note`]: signing and verifying it, and
//!   witness cosignatures.
//! - [`cosignature`]: a witness's key ([`WitnessSigner`]) and its `cosignature/v1`
//!   lines (C2SP tlog-cosignature), checked one by one ([`verify_witness_answer`]).
//! - [`policy`]: witness policies in the C2SP tlog-policy (Sigsum) format: which logs
//!   and witnesses, and the quorum a checkpoint needs ([`Policy::verify_checkpoint`]).
//! - [`receipt`]: donors' tlog-proof receipts; [`consistency`]: rollback and forks.
//!
//! ## Format crates: what is pinned, what is ours, and why
//!
//! The Merkle tree algorithms (stored-hash appends, tree hash, proof generation and
//! checking), the tile arithmetic (which tiles a tree has, hashes inside tiles, and
//! authenticating tiles against a root) and signed-note parsing, encoding and
//! verification rules come from Cloudflare's `tlog_tiles` and `signed_note` crates,
//! pinned at `=0.2.0` (both ports of Go's `golang.org/x/mod/sumdb`). Their results are
//! cross-checked in `tests/reference.rs` against an independent, from-the-RFC
//! implementation for every tree size 1..=300 and random larger ones.
//!
//! Written here, because those crates do not fit:
//! - tile *paths*: `tlog_tiles` 0.2.0 writes Go sumdb paths (`tile/8/0/…`,
//!   `tile/8/data/…`), not C2SP tlog-tiles paths (`tile/0/…`, `tile/entries/…`); the
//!   tests check ours against a translation of theirs;
//! - the checkpoint body: their parser accepts extension lines and reports every
//!   violation as one "malformed checkpoint"; FundTrail accepts exactly three lines and
//!   names each rule broken ([`checkpoint::CheckpointError`]);
//! - witness cosignatures (type 0x04) and keys from a 32-byte seed, which `signed_note`
//!   0.2.0 does not offer; they plug into its `Verifier`/`Signer` traits;
//! - receipts (C2SP tlog-proof), which neither crate covers.
//!
//! Costs accepted: both crates bring `base64` 0.21 and `thiserror` 1 next to the
//! workspace's 0.22 and 2, and `tlog_tiles` brings `serde_json` and `url` (already in
//! the workspace through other crates). Their panics on inconsistent hash readers are
//! guarded: every reader goes through an adapter that checks lengths and keeps typed
//! errors.

pub mod checkpoint;
pub mod consistency;
pub mod cosignature;
pub mod entry;
pub mod hash;
pub mod note;
pub mod policy;
pub mod receipt;
pub mod tiles;
pub mod tree;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use consistency::{check_consistency, check_new_checkpoint, ConsistencyError};
pub use cosignature::{
    attach_cosignature, parse_signature_lines, verify_cosignature, verify_witness_answer, CosignatureError,
    SignatureLine, WitnessSigner,
};
pub use entry::{
    decode_entry, encode_entry, verify_chain, Chain, ChainError, Entry, EntryError, ENTRY_SIZE_MAX, ENVELOPE_SIZE_MAX,
};
pub use hash::{leaf_hash, node_hash, Hash, EMPTY_ROOT, HASH_SIZE, ZERO_HASH};
pub use note::{
    add_cosignature, cosignature_message, verify_cosigned_checkpoint, Cosignature, KeyError, LogSigner, LogVerifier,
    NoteError, WitnessVerifier,
};
pub use policy::{Policy, PolicyCheckError, PolicyError, PolicyLog, PolicyWitness, Witnessed};
pub use receipt::{build_receipt, verify_receipt, LeafInput, Receipt, ReceiptError, VerifiedReceipt};
pub use tiles::{Tile, TileError, TileHashReader, TileKind, TilePathError, TileSource};
pub use tree::{
    append_leaf, append_leaves, prove_consistency, prove_inclusion, tree_hash, verify_consistency, verify_inclusion,
    HashReadError, HashReader, MemoryHashStore, NodeId, TreeError,
};
