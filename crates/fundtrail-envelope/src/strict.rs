//! Strict JSON: what serde_json accepts silently and FundTrail refuses.
//!
//! serde_json keeps the last of two equal keys, reads `1.0` and `1e3` as
//! floats, and reads integers beyond 2^53 as imprecise floats. A signed
//! event must mean one thing to every reader, so before anything is parsed
//! the bytes are walked once and refused if any object repeats a key, any
//! number is not an integer, or any integer is outside ±(2^53 − 1).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// The largest integer magnitude allowed anywhere in an event.
pub const JSON_INTEGER_MAX: u64 = (1 << 53) - 1;
/// Deepest nesting of arrays and objects.
pub const JSON_DEPTH_MAX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("duplicate JSON key {0:?}")]
    DuplicateKey(String),
    #[error("number {0} is not an integer: amounts are integers in fen, never floats")]
    Float(String),
    #[error("integer {0} is outside ±(2^53−1)")]
    IntegerRange(String),
    #[error("JSON nested deeper than {JSON_DEPTH_MAX}")]
    TooDeep,
}

/// Checks `bytes` is one strict JSON value (see the module doc).
pub fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let outcome = Strict { depth: 0 }.deserialize_from(&mut de);
    match outcome {
        Ok(()) => de.end().map_err(|e| StrictJsonError::Malformed(e.to_string())),
        Err(e) => Err(decode_error(e)),
    }
}

// Our own errors travel through serde_json's error as a tagged message.
const TAG: &str = "\u{1}strict:";

fn decode_error(e: serde_json::Error) -> StrictJsonError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix(TAG) {
        let (kind, value) = rest.split_once(':').unwrap_or((rest, ""));
        let value = value.rsplit_once(" at line ").map_or(value, |(v, _)| v).to_owned();
        return match kind {
            "dup" => StrictJsonError::DuplicateKey(value),
            "float" => StrictJsonError::Float(value),
            "range" => StrictJsonError::IntegerRange(value),
            _ => StrictJsonError::TooDeep,
        };
    }
    StrictJsonError::Malformed(msg)
}

fn fail<E: de::Error>(kind: &str, value: impl fmt::Display) -> E {
    E::custom(format_args!("{TAG}{kind}:{value}"))
}

#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn deserialize_from<'de, D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn nested<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= JSON_DEPTH_MAX {
            return Err(fail("deep", ""));
        }
        Ok(Strict { depth: self.depth + 1 })
    }
}

impl<'de> de::DeserializeSeed<'de> for Strict {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        if v > JSON_INTEGER_MAX {
            return Err(fail("range", v));
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        if v.unsigned_abs() > JSON_INTEGER_MAX {
            return Err(fail("range", v));
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // Integers beyond u64/i64 also arrive here.
        if v.fract() == 0.0 && v.abs() > JSON_INTEGER_MAX as f64 {
            return Err(fail("range", v));
        }
        Err(fail("float", v))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(fail("dup", key));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_json() {
        assert_eq!(check(br#"{"a":[1,-2,{"b":"x"}],"c":null,"d":true}"#), Ok(()));
        assert_eq!(check(b"9007199254740991"), Ok(()));
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        assert_eq!(check(br#"{"a":1,"a":2}"#), Err(StrictJsonError::DuplicateKey("a".into())));
        assert_eq!(check(br#"{"x":{"b":1,"b":1}}"#), Err(StrictJsonError::DuplicateKey("b".into())));
    }

    #[test]
    fn refuses_floats_and_big_integers() {
        assert!(matches!(check(br#"{"amount_fen":1.0}"#), Err(StrictJsonError::Float(_))));
        assert!(matches!(check(br#"{"amount_fen":1e3}"#), Err(StrictJsonError::Float(_))));
        assert!(matches!(check(b"9007199254740992"), Err(StrictJsonError::IntegerRange(_))));
        assert!(matches!(check(b"-9007199254740992"), Err(StrictJsonError::IntegerRange(_))));
        assert!(matches!(check(b"123456789012345678901234567890"), Err(StrictJsonError::IntegerRange(_))));
    }

    #[test]
    fn refuses_malformed_and_trailing_bytes() {
        assert!(matches!(check(b"{"), Err(StrictJsonError::Malformed(_))));
        assert!(matches!(check(b"{} {}"), Err(StrictJsonError::Malformed(_))));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(check(deep.as_bytes()), Err(StrictJsonError::TooDeep));
    }
}
