//! # fundtrail-witness: independent cosigners for the public ledger
//!
//! The host runs the log, so the host could show donors one history and auditors
//! another. A witness (a street office, the civil-affairs bureau, a university, a
//! newspaper) cosigns a checkpoint only if it is consistent with everything it cosigned
//! before; verifiers demand a quorum of such cosignatures (a policy,
//! [`fundtrail_ledger::Policy`]).
//!
//! - [`protocol`]: the C2SP tlog-witness wire format (request body, 409 size body).
//! - [`witness`]: the witness's decision, [`Witness::add_checkpoint`]: body in,
//!   cosignature lines or a [`Refusal`] with the spec's HTTP status out.
//! - [`state`]: what it cosigned per log, persisted atomically and durably (temp file,
//!   fsync, rename, fsync of the directory) before any answer.
//! - [`server`]: the axum routes (`POST /add-checkpoint`, `GET /<origin hash>/checkpoint`).
//! - [`key_file`]: the witness's key file (OS RNG, mode 0600).
//! - [`client`]: the log's side, [`WitnessPool::request_cosignatures`]: every witness
//!   in parallel, proofs from each witness's last size, 409 handled, timeouts, bounded
//!   retries, every cosignature verified, per-witness reports for metrics.
//!
//! **Architecture invariant:** a witness never goes back: the size it stores for a log
//! only grows, it is durable before a cosignature leaves the process, and check and
//! store happen under one lock per log. The crate knows the ledger's formats only
//! through `fundtrail-ledger`; it knows nothing of events, NATS or sled.

pub mod client;
pub mod key_file;
pub mod protocol;
pub mod server;
pub mod state;
pub mod witness;

pub use client::{
    failure_reason, request_cosignatures, ConsistencyProver, CosignError, Cosigned, EndpointError, WitnessClientConfig,
    WitnessEndpoint, WitnessError, WitnessOutcome, WitnessPool, WitnessReport, WitnessStats,
};
pub use state::{origin_hash, StateError, TestPause};
pub use witness::{system_clock, Refusal, UnixClock, Witness, WitnessConfig};
