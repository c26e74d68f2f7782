//! `fundtrail-client`: what an actor does against a FundTrail server, as a
//! library behind the command line's actor commands, `ledger mirror --portal` and
//! `fundtrail demo` (whose year is [`demo`], here).
//!
//! - [`http`]: the blocking HTTP client (post a signed envelope, read JSON, turn
//!   `application/problem+json` into an error naming the server's `detail`).
//! - [`actions`]: sign an event with an actor's key and post it; gifts (a salted
//!   donor commitment, the donor file written first); disclosures stating the
//!   fund's current totals.
//! - [`wallet`]: the donor's private side: donor files (salt and reference, mode
//!   0600) and the receipts directory.
//! - [`key_file`]: key files and other private files (mode 0600 from creation).
//! - [`receipt_link`]: the portal's "My donation" link of one gift and its QR
//!   code (at most 41×41 modules at error correction M), as PNG or terminal text.
//! - [`static_api`]: the JSON the portal reads in static mode, fetched from a running
//!   service for `fundtrail ledger mirror --portal`.
//! - [`demo`]: the year 2026 of 西湖街道社区发展基金, played through the public API.
//!
//! Architecture invariant: no server code (no service, store or HTTP server crate);
//! everything goes through the public HTTP API, as any other client's would. Time
//! is an argument or `Utc::now()` at the edge; salts and keys come from the OS RNG.

pub mod actions;
pub mod demo;
pub mod http;
pub mod key_file;
pub mod receipt_link;
pub mod static_api;
pub mod wallet;

pub use actions::{post_signed, sha256_hex};
pub use http::{Client, Posted, Problem};
pub use wallet::{DonorRecord, ReceiptFiles};
