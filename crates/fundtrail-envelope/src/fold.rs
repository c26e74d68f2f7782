//! The fold: stream messages, in order, into the domain [`State`].
//!
//! One implementation serves every reader of the stream: the server's writer
//! (to decide commands), the projection runner (to build views), and the
//! auditor's `fundtrail verify` (to replay a ledger). Each message is opened
//! (signature by a key the state knows, schema, strict JSON) and evolved
//! (every domain rule checked again). A message that fails is not applied;
//! the position still moves past it, so every reader skips the same message
//! and stays in step, and the caller decides whether that is fatal (`verify`)
//! or a logged, visible rejection (a projection).

use ed25519_dalek::VerifyingKey;
use fundtrail_domain::{evolve, Applied, EventId, KeyId, Refusal, State};
use imbl::HashMap;
use sha2::{Digest, Sha256};

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
/// beside it (position, where each id appeared, parsed keys). Every part is
/// a persistent map, so a clone is O(1): a writer snapshots the fold before
/// deciding a batch and puts the snapshot back if the batch loses a race.
#[derive(Clone, Default)]
pub struct Fold {
    pub state: State,
    position: u64,
    ids: HashMap<EventId, IdRecord>,
    keys: HashMap<KeyId, VerifyingKey>,
}

impl Fold {
    pub fn new() -> Fold {
        Fold::default()
    }

    /// The last sequence applied or skipped (0 before the first message).
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn id_record(&self, id: &EventId) -> Option<IdRecord> {
        self.ids.get(id).copied()
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
    /// message's subject must be the event's own.
    pub fn apply(&mut self, seq: u64, subject: Option<&str>, envelope: &[u8]) -> Result<Folded, FoldError> {
        assert_eq!(seq, self.position + 1, "the fold applies messages in order, without gaps");
        self.position = seq;
        let verified = self.open(envelope).map_err(|source| FoldError::Envelope { seq, source })?;
        if let Some(subject) = subject {
            let expected = verified.event.subject();
            if subject != expected {
                return Err(FoldError::Subject { seq, subject: subject.to_owned(), expected });
            }
        }
        self.apply_verified(seq, verified)
    }

    /// Applies message `seq` whose exact bytes this process verified before
    /// (see [`crate::reopen_verified`]): the signature is not checked again,
    /// the signer must still be a key the state knows, every rule is checked.
    pub fn apply_reverified(&mut self, seq: u64, subject: Option<&str>, envelope: &[u8]) -> Result<Folded, FoldError> {
        assert_eq!(seq, self.position + 1, "the fold applies messages in order, without gaps");
        match crate::reopen_verified(envelope) {
            Ok(opened) => self.apply_opened(seq, subject, opened),
            Err(source) => {
                self.position = seq;
                Err(FoldError::Envelope { seq, source })
            }
        }
    }

    /// Applies message `seq`, given the event this process opened from the
    /// message's exact bytes earlier (the writer hands its decided events to
    /// the projection runner this way): neither the signature nor the JSON is
    /// checked again; the signer must still be a key the state knows, the
    /// subject must be the event's own, and every rule is checked.
    pub fn apply_opened(
        &mut self,
        seq: u64,
        subject: Option<&str>,
        opened: VerifiedEvent,
    ) -> Result<Folded, FoldError> {
        assert_eq!(seq, self.position + 1, "the fold applies messages in order, without gaps");
        self.position = seq;
        let known = self.state.keys.contains_key(&opened.signer)
            || matches!(opened.event.body, fundtrail_domain::EventBody::HostEstablished(_));
        if !known {
            return Err(FoldError::Envelope { seq, source: EnvelopeError::UnknownKey(opened.signer) });
        }
        if let Some(subject) = subject {
            let expected = opened.event.subject();
            if subject != expected {
                return Err(FoldError::Subject { seq, subject: subject.to_owned(), expected });
            }
        }
        self.apply_verified(seq, opened)
    }

    /// Applies an event already opened against this fold's state (the writer
    /// opens before deciding; it need not verify the signature twice).
    pub fn apply_verified(&mut self, seq: u64, verified: VerifiedEvent) -> Result<Folded, FoldError> {
        self.position = self.position.max(seq);
        let event = &verified.event;
        let applied = evolve(&mut self.state, event).map_err(|source| FoldError::Rule {
            seq,
            id: event.id.clone(),
            type_name: event.type_name(),
            source: Box::new(source),
        })?;
        if applied == Applied::Applied {
            let record = IdRecord { seq, payload_sha256: Sha256::digest(&verified.payload).into() };
            self.ids.insert(event.id.clone(), record);
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
