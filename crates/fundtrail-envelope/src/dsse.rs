//! DSSE envelopes (in-toto / Sigstore "Dead Simple Signing Envelope", protocol v1).
//!
//! `sig` is Ed25519 over `PAE(payloadType, payload)` where
//! `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`
//! and LEN is the byte length as ASCII decimal. The envelope's bytes are kept
//! exactly as signed and submitted: nothing is re-serialised before it is
//! hashed, verified, stored or published.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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

/// An envelope's fields, borrowed from its bytes (owned where JSON escapes them).
///
/// `EnvelopeFields::from_slice` is the quick reader of the common case: it accepts an
/// object with exactly the three DSSE fields, each once, strings where strings belong,
/// and signatures that are objects with exactly `keyid` and `sig` — a subset of what
/// the strict reader ([`crate::strict::parse`], then [`WireEnvelope::from_json`])
/// accepts, read to the same strings. Anything else it refuses without saying why:
/// the strict reader then reads it and names the fault.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvelopeFields<'a> {
    pub payload: Cow<'a, str>,
    pub payload_type: Cow<'a, str>,
    pub signatures: Vec<SignatureFields<'a>>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct SignatureFields<'a> {
    pub keyid: Cow<'a, str>,
    pub sig: Cow<'a, str>,
}

impl<'a> EnvelopeFields<'a> {
    /// The fields of `bytes` if it is an envelope of the common shape (see the type).
    pub fn from_slice(bytes: &'a [u8]) -> Option<EnvelopeFields<'a>> {
        serde_json::from_slice(bytes).ok()
    }
}

impl From<WireEnvelope> for EnvelopeFields<'static> {
    fn from(wire: WireEnvelope) -> EnvelopeFields<'static> {
        EnvelopeFields {
            payload: Cow::Owned(wire.payload),
            payload_type: Cow::Owned(wire.payload_type),
            signatures: wire
                .signatures
                .into_iter()
                .map(|s| SignatureFields { keyid: Cow::Owned(s.keyid), sig: Cow::Owned(s.sig) })
                .collect(),
        }
    }
}

/// A JSON string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// Reads an object of exactly the fields `names`, each a string, each once; `N` of them.
fn string_fields<'de, A: MapAccess<'de>, const N: usize>(
    map: &mut A,
    names: [&str; N],
    mut other: impl FnMut(&mut A, &str) -> Result<bool, A::Error>,
) -> Result<[Option<Cow<'de, str>>; N], A::Error> {
    let mut values: [Option<Cow<'de, str>>; N] = std::array::from_fn(|_| None);
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        match names.iter().position(|name| *name == key) {
            Some(i) if values[i].is_none() => values[i] = Some(map.next_value::<Text<'de>>()?.0),
            Some(_) => return Err(de::Error::custom("a field given twice")),
            None if other(map, &key)? => {}
            None => return Err(de::Error::custom("not a field of this object")),
        }
    }
    Ok(values)
}

impl<'de> Deserialize<'de> for EnvelopeFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = EnvelopeFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DSSE envelope object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut signatures = None;
                let [payload, payload_type] = string_fields(&mut map, ["payload", "payloadType"], |map, key| {
                    if key != "signatures" || signatures.is_some() {
                        return Ok(false);
                    }
                    signatures = Some(map.next_value::<Vec<SignatureFields<'de>>>()?);
                    Ok(true)
                })?;
                let missing = || de::Error::custom("a field is missing");
                Ok(EnvelopeFields {
                    payload: payload.ok_or_else(missing)?,
                    payload_type: payload_type.ok_or_else(missing)?,
                    signatures: signatures.ok_or_else(missing)?,
                })
            }
        }
        d.deserialize_map(EnvelopeVisitor)
    }
}

impl<'de> Deserialize<'de> for SignatureFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SignatureVisitor;
        impl<'de> Visitor<'de> for SignatureVisitor {
            type Value = SignatureFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DSSE signature object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let [keyid, sig] = string_fields(&mut map, ["keyid", "sig"], |_, _| Ok(false))?;
                let missing = || de::Error::custom("a field is missing");
                Ok(SignatureFields { keyid: keyid.ok_or_else(missing)?, sig: sig.ok_or_else(missing)? })
            }
        }
        d.deserialize_map(SignatureVisitor)
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

    /// The quick reader accepts only what the strict reader accepts, with the same
    /// strings; everything else is left to the strict reader.
    #[test]
    fn the_quick_reader_reads_a_subset_of_the_strict_one() {
        let strict = |bytes: &[u8]| {
            let value = crate::strict::parse(bytes).ok()?;
            WireEnvelope::from_json(value).ok().map(EnvelopeFields::from)
        };
        let sig = r#"{"keyid":"k","sig":"s"}"#;
        let read = [
            format!(r#"{{"payload":"cA==","payloadType":"t","signatures":[{sig}]}}"#),
            format!(r#" {{ "signatures" : [ {sig} , {sig} ] , "payloadType":"t" , "payload":"c\/A\u003d\u003d" }} "#),
            r#"{"payload":"","payloadType":"t","signatures":[{"sig":"s","keyid":"k"}]}"#.to_owned(),
            r#"{"payload":"","payloadType":"t","signatures":[]}"#.to_owned(),
        ];
        for text in &read {
            let quick = EnvelopeFields::from_slice(text.as_bytes());
            assert!(quick.is_some(), "{text}");
            assert_eq!(quick, strict(text.as_bytes()), "{text}");
        }
        let left = [
            format!(r#"["cA==","t",[{sig}]]"#),
            r#"{"payload":"","payloadType":"t","signatures":[["k","s"]]}"#.to_owned(),
            format!(r#"{{"payload":"","payload":"","payloadType":"t","signatures":[{sig}]}}"#),
            format!(r#"{{"payload":"","payloadType":"t","signatures":[{sig}],"signatures":[]}}"#),
            format!(r#"{{"payload":"","payloadType":"t","signatures":[{sig}],"x":1}}"#),
            format!(r#"{{"payload":1,"payloadType":"t","signatures":[{sig}]}}"#),
            format!(r#"{{"payload":1.5,"payloadType":"t","signatures":[{sig}]}}"#),
            format!(r#"{{"payloadType":"t","signatures":[{sig}]}}"#),
            r#"{"payload":"","payloadType":"t","signatures":[{"keyid":"k","keyid":"k","sig":"s"}]}"#.to_owned(),
            r#"{"payload":"","payloadType":"t","signatures":[{"keyid":"k","sig":"s","x":"y"}]}"#.to_owned(),
            r#"{"payload":"","payloadType":"t","signatures":[{"keyid":"k"}]}"#.to_owned(),
            r#"{"payload":"","payloadType":"t","signatures":{}}"#.to_owned(),
            format!(r#"{{"payload":"","payloadType":"t","signatures":[{sig}]}} x"#),
            format!(r#"{{"payload":"","payloadType":"t","signatures":[{sig}]"#),
            "null".to_owned(),
        ];
        for text in &left {
            assert_eq!(EnvelopeFields::from_slice(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn pae_counts_bytes_not_chars() {
        assert_eq!(pae("t", "基金".as_bytes()), b"DSSEv1 1 t 6 \xe5\x9f\xba\xe9\x87\x91".to_vec());
    }
}
