//! Actors' Ed25519 keys: generation from the OS RNG, the key file format, and
//! signing events into envelopes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use fundtrail_domain::{Event, EventBody, KeyId};

use crate::dsse::{envelope_bytes, pae, PAYLOAD_TYPE};

/// First line of a key file.
pub const KEY_FILE_HEADER: &str = "fundtrail-ed25519-secret-key-v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the OS random number generator failed: {0}")]
    Rng(String),
    #[error("not a FundTrail key file: the first line must be {KEY_FILE_HEADER:?}")]
    Header,
    #[error("key file's secret is not 32 bytes of standard base64")]
    Secret,
    #[error("public key is not 32 bytes of standard base64 encoding a valid Ed25519 point")]
    PublicKey,
}

/// An actor's signing key.
pub struct ActorKey {
    signing: SigningKey,
}

impl ActorKey {
    /// A new key from the OS random number generator.
    pub fn generate() -> Result<ActorKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(ActorKey { signing: SigningKey::from_bytes(&seed) })
    }

    pub fn from_seed(seed: &[u8; 32]) -> ActorKey {
        ActorKey { signing: SigningKey::from_bytes(seed) }
    }

    /// The 32-byte secret seed (for the log key's note signer).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn key_id(&self) -> KeyId {
        KeyId::of_public_key(self.signing.verifying_key().as_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Raw public key, standard base64 (as events carry it).
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.signing.verifying_key().as_bytes())
    }

    /// The key file text: a header line and the base64 seed.
    pub fn to_file_text(&self) -> String {
        format!("{KEY_FILE_HEADER}\n{}\n", B64.encode(self.signing.to_bytes()))
    }

    pub fn from_file_text(text: &str) -> Result<ActorKey, KeyError> {
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(KEY_FILE_HEADER) {
            return Err(KeyError::Header);
        }
        let secret = lines.next().ok_or(KeyError::Secret)?.trim();
        let bytes = B64.decode(secret).map_err(|_| KeyError::Secret)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Secret)?;
        Ok(ActorKey::from_seed(&seed))
    }

    /// Signs payload bytes into DSSE envelope bytes.
    pub fn sign_payload(&self, payload: &[u8]) -> Vec<u8> {
        let signature = self.signing.sign(&pae(PAYLOAD_TYPE, payload));
        envelope_bytes(payload, self.key_id().as_str(), &signature.to_bytes())
    }

    /// Signs an event (its canonical bytes) into envelope bytes. The event's
    /// author must be this key.
    pub fn sign_event(&self, event: &Event) -> Vec<u8> {
        assert_eq!(event.author, self.key_id(), "an event is signed by its author");
        self.sign_payload(&event.to_bytes())
    }
}

/// The key an event makes known (`host.established` enrols the host's own key,
/// `key.enrolled` any other), parsed; `None` for every other event or a key that
/// does not parse (the domain refuses such an event anyway).
pub fn enrolled_key(event: &Event) -> Option<(KeyId, VerifyingKey)> {
    let (key, b64) = match &event.body {
        EventBody::HostEstablished(b) => (&b.host_key, &b.public_key),
        EventBody::KeyEnrolled(b) => (&b.key, &b.public_key),
        _ => return None,
    };
    Some((key.clone(), parse_public_key(b64).ok()?))
}

/// Parses a base64 Ed25519 public key.
pub fn parse_public_key(b64: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = B64.decode(b64.trim()).map_err(|_| KeyError::PublicKey)?;
    let raw: [u8; 32] = bytes.try_into().map_err(|_| KeyError::PublicKey)?;
    VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::PublicKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips() {
        let key = ActorKey::generate().unwrap();
        let again = ActorKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(key.key_id(), again.key_id());
        assert!(matches!(ActorKey::from_file_text("nope\nAAAA"), Err(KeyError::Header)));
        assert!(matches!(ActorKey::from_file_text(&format!("{KEY_FILE_HEADER}\nAAAA\n")), Err(KeyError::Secret)));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(ActorKey::generate().unwrap().key_id(), ActorKey::generate().unwrap().key_id());
    }
}
