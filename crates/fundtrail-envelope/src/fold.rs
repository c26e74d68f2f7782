//! The fold: stream messages, in order, into the domain [`State`].
//!
//! One implementation serves every reader of the stream: the server's
//! sequencer (the one fold of a service process: it decides commands and
//! hands each applied event to the projections) and the auditor's
//! `fundtrail verify` (to replay a ledger). Two ways in: [`Fold::apply`] for
//! message bytes from anywhere (verified in full), and [`Fold::apply_verified`]
//! for an event this process opened itself a moment ago (the sequencer's own
//! decided events). Each message is opened
//! (signature by a key the state knows, schema, strict JSON) and evolved
//! (every domain rule checked again). A message that fails is not applied;
//! the position still moves past it, so every reader skips the same message
//! and stays in step, and the caller decides whether that is fatal (`verify`)
//! or a logged, visible rejection (a projection).

use ed25519_dalek::VerifyingKey;
use fundtrail_domain::{evolve_recorded, Applied, EventId, KeyId, Refusal, State};
use imbl::HashMap;
use serde::{Deserialize, Serialize};

use crate::{open, parse_public_key, EnvelopeError, VerifiedEvent};

/// Why a message could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("sequence {seq}: {source}")]
    Envelope { seq: u64, source: EnvelopeError },
    #[error("sequence {seq}: {type_name} {id} breaks a rule: {source}")]
    Rule { seq: u64, id: EventId, type_name: &'static str, source: Box<Refusal> },
    #[error("sequence {seq}: subject {subject} does not match the event's {expected}")]
    Subject { seq: u64, subject: String, expected: String },
}

/// Where an event id first appeared and what it said: the domain's type,
/// which [`fundtrail_domain::admit`] takes to refuse an id reused for other content.
pub use fundtrail_domain::IdRecord;

/// What applying one message did.
#[derive(Debug)]
pub struct Folded {
    pub event: VerifiedEvent,
    pub applied: Applied,
}

/// The fold's state: the domain state plus what readers of a stream need
/// beside it (position, parsed keys; where each id appeared is in the state). Every part is
/// a persistent map, so a clone is O(1): the sequencer keeps the fold from
/// before a batch and puts it back if the batch loses a race, and hands the
/// projections the fold after each batch.
///
/// It serialises (without the parsed-key cache, which [`Fold::restored`]
/// fills again) so that a service can snapshot it and replay only the tail.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Fold {
    pub state: State,
    position: u64,
    #[serde(skip)]
    keys: HashMap<KeyId, VerifyingKey>,
}

impl Fold {
    pub fn new() -> Fold {
        Fold::default()
    }

    /// A fold read back from a snapshot: parses the known keys again.
    pub fn restored(mut self) -> Fold {
        let keys: Vec<(KeyId, VerifyingKey)> = self
            .state
            .keys
            .iter()
            .filter_map(|(id, info)| parse_public_key(&info.public_key).ok().map(|k| (id.clone(), k)))
            .collect();
        self.keys = keys.into_iter().collect();
        self
    }

    /// The last sequence applied or skipped (0 before the first message).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Where event `id` appeared and what it said (the state's index of ids).
    pub fn id_record(&self, id: &EventId) -> Option<IdRecord> {
        self.state.event_ids.get(id).copied()
    }

    /// A verifying key the state knows, parsed once.
    pub fn key(&self, id: &KeyId) -> Option<VerifyingKey> {
        if let Some(key) = self.keys.get(id) {
            return Some(*key);
        }
        let info = self.state.keys.get(id)?;
        parse_public_key(&info.public_key).ok()
    }

    /// Opens an envelope against the keys of the current state.
    pub fn open(&self, envelope: &[u8]) -> Result<VerifiedEvent, EnvelopeError> {
        open(envelope, |id| self.key(id))
    }

    /// Applies message `seq` (which must be the next one). With `subject`, the
    /// message's subject must be the event's own, in the version of the subject
    /// contract it names (a stream written by an older release replays as it did).
    pub fn apply(&mut self, seq: u64, subject: Option<&str>, envelope: &[u8]) -> Result<Folded, FoldError> {
        assert_eq!(seq, self.position + 1, "the fold applies messages in order, without gaps");
        self.position = seq;
        let verified = self.open(envelope).map_err(|source| FoldError::Envelope { seq, source })?;
        if let Some(subject) = subject {
            let expected = verified.event.subject_like(subject);
            if subject != expected {
                return Err(FoldError::Subject { seq, subject: subject.to_owned(), expected });
            }
        }
        self.apply_verified(seq, verified)
    }

    /// Applies an event already opened against this fold's state (the writer
    /// opens before deciding; it need not verify the signature twice).
    pub fn apply_verified(&mut self, seq: u64, verified: VerifiedEvent) -> Result<Folded, FoldError> {
        self.position = self.position.max(seq);
        let event = &verified.event;
        let record = || IdRecord { seq, payload_sha256: crate::payload_digest(&verified.payload) };
        let applied = evolve_recorded(&mut self.state, event, record).map_err(|source| FoldError::Rule {
            seq,
            id: event.id.clone(),
            type_name: event.type_name(),
            source: Box::new(source),
        })?;
        if applied == Applied::Applied {
            self.cache_new_key(event);
        }
        Ok(Folded { event: verified, applied })
    }

    fn cache_new_key(&mut self, event: &fundtrail_domain::Event) {
        if let Some((key, parsed)) = crate::enrolled_key(event) {
            self.keys.insert(key, parsed);
        }
    }

    /// Marks `seq` as passed without applying anything (used when a caller
    /// already knows the message is a rejected one).
    pub fn skip(&mut self, seq: u64) {
        assert_eq!(seq, self.position + 1, "skips are in order too");
        self.position = seq;
    }
}
