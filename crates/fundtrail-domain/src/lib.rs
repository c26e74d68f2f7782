//! FundTrail's domain: the rules of a community fund as a pure fold.
//!
//! - [`event`]: the event catalogue (what can happen, who may author it,
//!   where, and which aggregate it belongs to).
//! - [`subject`]: the versioned subject format
//!   `fundtrail.<version>.<fund>.<aggregate>.<partition>`, built and parsed.
//! - [`admission`]: the rules a command passes when it arrives (clock window,
//!   pinned host key, id reuse), with the time given.
//! - [`rules`]: [`decide`] (command + state → events or a [`Refusal`]) and
//!   [`evolve`] (state + event → state, checking every rule again).
//! - [`state`]: what the fold builds.
//! - [`compliance`]: statutory disclosure dates and cost ratios.
//! - [`disclosure`]: the accounts a disclosure cites, and the rule checking them.
//!
//! Architecture invariant: this crate does no I/O, reads no clock and draws no
//! randomness. Time, ids and salts come in as arguments, so the same fold runs
//! in the server, in every projection and in an auditor's replay, and gives the
//! same bytes everywhere.

pub mod accounts;
pub mod admission;
pub mod compliance;
pub mod disclosure;
pub mod event;
pub mod goods_text;
pub mod ids;
pub mod money;
pub mod packed_map;
pub mod refusal;
pub mod rules;
pub mod state;
pub mod subject;
/// Test fixtures; only with the `testing` feature (dev-dependencies turn it on).
#[cfg(feature = "testing")]
pub mod testing;
pub mod timestamp;
pub mod trace;

pub use admission::{admit, Admission, AdmissionPolicy, IdRecord};
pub use event::{Event, EventBody, EventParseError, EventType, Role};
pub use ids::{donor_commitment, EventId, FundId, KeyId, PledgeId, ProposalId, Sha256Hex};
pub use money::Fen;
pub use refusal::{Refusal, RefusalClass};
pub use rules::{decide, evolve, evolve_recorded, replay, Applied};
pub use state::State;
pub use trace::{gift_trace, goods_trace, trace, GiftTrace, GoodsTrace, Trace};
