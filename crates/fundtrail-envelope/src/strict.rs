//! Strict JSON: what serde_json accepts silently and FundTrail refuses.
//!
//! serde_json keeps the last of two equal keys, reads `1.0` and `1e3` as
//! floats, and reads integers beyond 2^53 as imprecise floats. A signed
//! event must mean one thing to every reader, so before anything is parsed
//! the bytes are walked once and refused if any object repeats a key, any
//! number is not an integer, or any integer is outside ±(2^53 − 1).
//!
//! [`parse`] does that walk and builds the value in the same pass, so a payload is
//! read once.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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

/// Reads `bytes` as one strict JSON value (see the module doc): the value, or the
/// first thing in reading order that is not strict.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let outcome = de::DeserializeSeed::deserialize(Strict { depth: 0 }, &mut de);
    match outcome {
        Ok(value) => de.end().map(|()| value).map_err(|e| StrictJsonError::Malformed(e.to_string())),
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

/// The visitor that reads a value strictly, `depth` arrays and objects down.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn nested<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= JSON_DEPTH_MAX {
            return Err(fail("deep", ""));
        }
        Ok(Strict { depth: self.depth + 1 })
    }
}

impl<'de> de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > JSON_INTEGER_MAX {
            return Err(fail("range", v));
        }
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > JSON_INTEGER_MAX {
            return Err(fail("range", v));
        }
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Integers beyond u64/i64 also arrive here.
        if v.fract() == 0.0 && v.abs() > JSON_INTEGER_MAX as f64 {
            return Err(fail("range", v));
        }
        Err(fail("float", v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Refused at the key, before its value is read, as a reader meets it.
            if object.contains_key(&key) {
                return Err(fail("dup", key));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `bytes` is one strict JSON value, its value dropped.
    fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
        parse(bytes).map(drop)
    }

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
    fn parses_to_the_value_serde_json_reads() {
        let bytes = r#"{"a":[1,-2,{"b":"x\u00e9"}],"c":null,"d":true,"基金":"善款"}"#.as_bytes();
        let lenient: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(parse(bytes), Ok(lenient));
        assert_eq!(parse(br#"{"a":{"b":1,"b":2.5}}"#), Err(StrictJsonError::DuplicateKey("b".into())));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(check(deep.as_bytes()), Err(StrictJsonError::TooDeep));
    }
}
