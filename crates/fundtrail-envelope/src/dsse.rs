//! DSSE envelopes (in-toto / Sigstore "Dead Simple Signing Envelope", protocol v1).
//!
//! `sig` is Ed25519 over `PAE(payloadType, payload)` where
//! `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`
//! and LEN is the byte length as ASCII decimal. The envelope's bytes are kept
//! exactly as signed and submitted: nothing is re-serialised before it is
//! hashed, verified, stored or published.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The payload type of every FundTrail envelope.
pub const PAYLOAD_TYPE: &str = "application/vnd.fundtrail.event+json";

/// Largest envelope accepted, in bytes. A ledger entry is the 40-byte header
/// plus the envelope and must stay within the tile format's 65,535 bytes; this
/// cap leaves room and keeps every message small.
pub const ENVELOPE_SIZE_MAX: usize = 49_152;

/// The DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// The envelope's JSON shape (field names per the DSSE spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEnvelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<WireSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSignature {
    pub keyid: String,
    pub sig: String,
}

impl WireEnvelope {
    /// The envelope in `value`, which must be a JSON object, as must each of its
    /// signatures (serde alone would also read a struct from an array of its fields,
    /// which no other DSSE reader accepts); the error says what is wrong.
    pub fn from_json(value: serde_json::Value) -> Result<WireEnvelope, String> {
        use serde_json::Value;
        let Value::Object(fields) = &value else { return Err(format!("expected an object, found {}", kind(&value))) };
        if let Some(Value::Array(signatures)) = fields.get("signatures") {
            if let Some(other) = signatures.iter().find(|s| !s.is_object()) {
                return Err(format!("signatures: expected objects, found {}", kind(other)));
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// What kind of JSON value `value` is, for an error.
fn kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds envelope bytes for a payload and its signature.
pub fn envelope_bytes(payload: &[u8], keyid: &str, signature: &[u8; 64]) -> Vec<u8> {
    let wire = WireEnvelope {
        payload: B64.encode(payload),
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: vec![WireSignature { keyid: keyid.to_owned(), sig: B64.encode(signature) }],
    };
    serde_json::to_vec(&wire).expect("envelopes always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PAE example from the DSSE specification (protocol.md).
    #[test]
    fn pae_matches_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn pae_counts_bytes_not_chars() {
        assert_eq!(pae("t", "基金".as_bytes()), b"DSSEv1 1 t 6 \xe5\x9f\xba\xe9\x87\x91".to_vec());
    }
}
