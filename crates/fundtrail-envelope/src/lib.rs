//! Signed event envelopes: decoding untrusted bytes into a verified [`Event`].
//!
//! [`open`] takes envelope bytes exactly as submitted and either returns a
//! [`VerifiedEvent`] — the same bytes, the payload, the typed event, its
//! signer — or the one specific reason it refuses them:
//! oversize, malformed or non-strict JSON, a wrong payloadType, bad base64,
//! an unknown key, a signature not over these bytes, a payload that breaks
//! its schema, or an author who is not the signer.
//!
//! Architecture invariant: no I/O. Key lookup is a closure the caller passes
//! (the roles projection in the server, the replayed state in `verify`).

pub mod actor;
pub mod dsse;
pub mod ed25519;
pub mod fold;
pub mod keys;
pub mod schema;
pub mod strict;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use fundtrail_domain::event::EventParseError;
use fundtrail_domain::{Event, EventBody, KeyId};

pub use dsse::{pae, ENVELOPE_SIZE_MAX, PAYLOAD_TYPE};
pub use fold::{Fold, FoldError, Folded, IdRecord};
pub use keys::{enrolled_key, parse_public_key, ActorKey, KeyError};
pub use schema::{SchemaError, Schemas};
pub use strict::StrictJsonError;

/// Why an envelope was refused. Each variant is one distinct cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is {size} bytes, at most {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("envelope is not strict JSON: {0}")]
    EnvelopeJson(StrictJsonError),
    #[error("envelope does not have the DSSE shape: {0}")]
    Shape(String),
    #[error("payloadType is {0:?}, expected {PAYLOAD_TYPE:?}")]
    PayloadType(String),
    #[error("envelope has {0} signatures, exactly 1 is required (the author's)")]
    SignatureCount(usize),
    #[error("{field} is not standard base64")]
    Base64 { field: &'static str },
    #[error("signature is {0} bytes, an Ed25519 signature is 64")]
    SignatureLength(usize),
    #[error("keyid {0:?} is not a FundTrail key id (32 lowercase hex digits)")]
    KeyIdFormat(String),
    #[error("unknown key {0}: it is not enrolled")]
    UnknownKey(KeyId),
    #[error("signature by {0} does not verify over this payload")]
    BadSignature(KeyId),
    #[error("payload is not strict JSON: {0}")]
    PayloadJson(StrictJsonError),
    #[error("payload does not match its schema: {0}")]
    Schema(SchemaError),
    #[error("payload is not a valid event: {0}")]
    Event(EventParseError),
    #[error("event author {author} is not the signer {signer}")]
    AuthorMismatch { author: KeyId, signer: KeyId },
}

impl EnvelopeError {
    /// Refusals about the signature or the signer (HTTP 401).
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            EnvelopeError::UnknownKey(_) | EnvelopeError::BadSignature(_) | EnvelopeError::AuthorMismatch { .. }
        )
    }
}

/// An envelope whose signature verified and whose payload is a valid event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// The envelope exactly as submitted.
    pub envelope: Vec<u8>,
    /// The payload exactly as signed.
    pub payload: Vec<u8>,
    pub event: Event,
    pub signer: KeyId,
}

/// Decoded but not yet verified: the parts of a DSSE envelope.
struct Parts {
    payload: Vec<u8>,
    keyid: KeyId,
    signature: Signature,
}

fn decode(bytes: &[u8]) -> Result<Parts, EnvelopeError> {
    if bytes.len() > ENVELOPE_SIZE_MAX {
        return Err(EnvelopeError::TooLarge { size: bytes.len(), max: ENVELOPE_SIZE_MAX });
    }
    let wire = match dsse::EnvelopeFields::from_slice(bytes) {
        Some(fields) => fields,
        // Not the common shape: the strict reader reads it or says what is wrong.
        None => {
            let value = strict::parse(bytes).map_err(EnvelopeError::EnvelopeJson)?;
            dsse::WireEnvelope::from_json(value).map_err(EnvelopeError::Shape)?.into()
        }
    };
    if wire.payload_type != PAYLOAD_TYPE {
        return Err(EnvelopeError::PayloadType(wire.payload_type.into_owned()));
    }
    let [signature] = wire.signatures.as_slice() else {
        return Err(EnvelopeError::SignatureCount(wire.signatures.len()));
    };
    let payload = B64.decode(&*wire.payload).map_err(|_| EnvelopeError::Base64 { field: "payload" })?;
    let sig = B64.decode(&*signature.sig).map_err(|_| EnvelopeError::Base64 { field: "sig" })?;
    let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| EnvelopeError::SignatureLength(sig.len()))?;
    let keyid =
        KeyId::new(signature.keyid.to_string()).map_err(|_| EnvelopeError::KeyIdFormat(signature.keyid.to_string()))?;
    Ok(Parts { payload, keyid, signature: Signature::from_bytes(&sig) })
}

/// The public key a genesis payload names for itself, if `payload` is a
/// `host.established` event whose host key is `keyid`. Genesis is the one
/// event signed by a key not yet enrolled: it enrols its own signer.
fn genesis_key(payload: &[u8], keyid: &KeyId) -> Option<VerifyingKey> {
    let genesis = fundtrail_domain::EventType::HostEstablished.name();
    // Every envelope by a key not (yet) known asks; one is the genesis. A payload
    // without JSON escapes spells its type literally, so one that lacks the genesis's
    // type name is none, without parsing it.
    if memchr::memchr(b'\\', payload).is_none() && memchr::memmem::find(payload, genesis.as_bytes()).is_none() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if value["type"] != genesis || value["body"]["host_key"] != keyid.as_str() {
        return None;
    }
    let key = parse_public_key(value["body"]["public_key"].as_str()?).ok()?;
    (KeyId::of_public_key(key.as_bytes()) == *keyid).then_some(key)
}

/// Opens an envelope: decodes it, resolves the signer with `resolve_key`,
/// verifies the signature over PAE(payloadType, payload), then checks the
/// payload is strict JSON, matches its schema and is an event by the signer.
pub fn open(
    bytes: &[u8],
    resolve_key: impl Fn(&KeyId) -> Option<VerifyingKey>,
) -> Result<VerifiedEvent, EnvelopeError> {
    let parts = decode(bytes)?;
    let key = resolve_key(&parts.keyid)
        .or_else(|| genesis_key(&parts.payload, &parts.keyid))
        .ok_or_else(|| EnvelopeError::UnknownKey(parts.keyid.clone()))?;
    if !ed25519::verify_strict(&key, &pae(PAYLOAD_TYPE, &parts.payload), &parts.signature) {
        return Err(EnvelopeError::BadSignature(parts.keyid.clone()));
    }
    let event = read_payload(&parts.payload)?;
    if event.author != parts.keyid {
        return Err(EnvelopeError::AuthorMismatch { author: event.author, signer: parts.keyid });
    }
    if let EventBody::HostEstablished(b) = &event.body {
        debug_assert_eq!(b.host_key, parts.keyid);
    }
    Ok(VerifiedEvent { envelope: bytes.to_vec(), payload: parts.payload, event, signer: parts.keyid })
}

/// SHA-256 of a signed payload: what an id record keeps, so that the same id
/// with other content is recognised as a reuse.
pub fn payload_digest(payload: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(payload).into()
}

/// Reads an event payload strictly: strict JSON, schema, typed event.
/// `fundtrail sign` runs this on what it is asked to sign.
pub fn read_payload(payload: &[u8]) -> Result<Event, EnvelopeError> {
    let value = strict::parse(payload).map_err(EnvelopeError::PayloadJson)?;
    Schemas::get().validate_event(&value).map_err(EnvelopeError::Schema)?;
    Event::from_json(value).map_err(EnvelopeError::Event)
}
