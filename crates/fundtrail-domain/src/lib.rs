//! FundTrail's domain: the rules of a community fund as a pure fold.
//!
//! - [`event`]: the event catalogue (what can happen, who may author it).
//! - [`rules`]: [`decide`] (command + state → events or a [`Refusal`]) and
//!   [`evolve`] (state + event → state, checking every rule again).
//! - [`state`]: what the fold builds.
//! - [`compliance`]: statutory disclosure dates and cost ratios.
//!
//! Architecture invariant: this crate does no I/O, reads no clock and draws no
//! randomness. Time, ids and salts come in as arguments, so the same fold runs
//! in the server, in every projection and in an auditor's replay, and gives the
//! same bytes everywhere.

pub mod compliance;
pub mod event;
pub mod ids;
pub mod money;
pub mod refusal;
pub mod rules;
pub mod state;
/// Test fixtures; only with the `testing` feature (dev-dependencies turn it on).
#[cfg(feature = "testing")]
pub mod testing;

pub use event::{Event, EventBody, EventParseError, Role};
pub use ids::{donor_commitment, EventId, FundId, KeyId, PledgeId, ProposalId, Sha256Hex};
pub use money::Fen;
pub use refusal::Refusal;
pub use rules::{decide, evolve, replay, Applied};
pub use state::State;
