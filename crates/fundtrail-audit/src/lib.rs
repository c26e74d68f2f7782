//! # fundtrail-audit: verify a FundTrail ledger, trusting nobody
//!
//! What a donor, an auditor or a journalist runs (through `fundtrail verify` and
//! `fundtrail verify-receipt`) to check a community fund's public ledger from its
//! published files and the log's public key alone:
//!
//! - [`source`]: where the ledger is read from: [`LedgerSource`], over a static mirror
//!   in a directory ([`DirSource`]) or a C2SP tlog-tiles prefix over HTTP(S)
//!   ([`HttpSource`], with timeouts and a size cap on every file). Partial tiles that
//!   are gone are read from the full tile, as C2SP tlog-tiles allows.
//! - [`verify`]: [`verify_ledger`]: the checkpoint's signature; consistency with the
//!   last checkpoint seen (fork, rollback, RFC 9162 proof from the tiles); every hash
//!   tile needed, authenticated against the signed root; every entry bundle checked
//!   against its tile; the hash chain (index, prev); every envelope through the one
//!   [`fundtrail_envelope::Fold`] (signature by a key holding the role, schema, every
//!   domain rule); the root rebuilt from the entries. It reports every fund's money, or
//!   the first bad entry and why ([`VerifyFailure`]).
//! - [`audit`](mod@audit): the whole procedures of `fundtrail verify` ([`audit()`]: the witness
//!   policy checked before the replay and after it, the ledger or the stream verified,
//!   the state file extended) and of `fundtrail verify-receipt` ([`audit_receipt`]).
//! - [`state_file`]: the verifier's memory between runs ([`StateFile`]), written
//!   atomically.
//! - [`receipt`]: [`verify_donor_receipt`]: a donor's C2SP tlog-proof receipt, offline
//!   and against the ledger now.
//! - [`nats`]: [`verify_nats`]: the `FUNDTRAIL` stream itself, read-only, against the
//!   published checkpoint.
//! - [`mirror`]: [`Mirror`]: a copy of a published ledger in a directory, the
//!   checkpoint written last.
//! - [`witnessed`]: [`check_policy`]: a checkpoint's cosignatures against a witness
//!   policy (C2SP tlog-policy): the quorum met, or who cosigned and who is missing.
//! - [`parallel`]: envelopes opened a window ahead on every core ([`Threads`]), with
//!   exactly the outcome of opening them one by one.
//! - [`report`]: what is reported, in fen for scripts and [`format_yuan`] for people.
//! - `testing` (feature `testing`): builds really signed ledgers and publishes them, for tests and benches.
//!
//! **Architecture invariant:** this crate reads a ledger only through the public
//! formats (C2SP tlog-checkpoint, signed-note, tlog-tiles, tlog-proof, the FundTrail
//! entry format and DSSE envelopes): anything it accepts, any C2SP verifier would; it
//! trusts nothing it fetched, and holds no key but the log's public one. It never
//! writes to the ledger or the stream: the files it writes are its own state file and a
//! mirror's copy of the published files.

pub mod audit;
pub mod mirror;
pub mod nats;
pub mod parallel;
pub mod receipt;
pub mod report;
pub mod source;
pub mod state_file;
/// Test fixtures; only with the `testing` feature (dev-dependencies turn it on).
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;
pub mod witnessed;

pub use audit::{audit, audit_receipt, AuditError, AuditRequest, Audited, ReceiptAuditError, ReceiptAudited};
pub use mirror::{Mirror, MirrorError};
pub use nats::{verify_nats, verify_nats_with};
pub use parallel::Threads;
pub use receipt::{verify_donor_receipt, DonationInfo, LedgerView, ReceiptFailure, ReceiptInput, ReceiptReport};
pub use report::{format_yuan, CheckpointInfo, FundReport, Report};
pub use source::{fetch_tile, open_source, DirSource, HttpSource, LedgerSource, SourceError};
pub use state_file::{StateError, StateFile};
pub use verify::{verify_ledger, verify_ledger_with, Cause, Progress, VerifyFailure, VerifyOptions};
pub use witnessed::{check_policy, CosignerInfo, WitnessInfo};
