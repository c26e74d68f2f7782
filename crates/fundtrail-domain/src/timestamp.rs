//! How the fold's state writes its timestamps: as chrono does (RFC 3339 text)
//! in human-readable formats such as JSON, and as seconds and nanoseconds
//! since the epoch in binary ones (the fold's snapshots).
//!
//! Text in a binary format would make a decoder reading from a stream keep
//! every timestamp's bytes until the end (chrono reads them as borrowed text),
//! so a snapshot of 10^6 gifts could not be decoded as it is read.

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        t.serialize(s)
    } else {
        (t.timestamp(), t.timestamp_subsec_nanos()).serialize(s)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    if d.is_human_readable() {
        DateTime::<Utc>::deserialize(d)
    } else {
        let (seconds, nanos) = <(i64, u32)>::deserialize(d)?;
        DateTime::from_timestamp(seconds, nanos).ok_or_else(|| D::Error::custom("timestamp out of range"))
    }
}

/// The same, for an optional timestamp.
pub mod option {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Stamp(#[serde(with = "super")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        t.map(Stamp).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Stamp>::deserialize(d)?.map(|Stamp(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct At {
        #[serde(with = "super")]
        at: DateTime<Utc>,
        #[serde(with = "super::option")]
        closed: Option<DateTime<Utc>>,
    }

    #[test]
    fn text_in_json_numbers_in_binary_and_both_read_back() {
        let at = DateTime::from_timestamp(1_780_000_000, 123_000_000).expect("in range");
        let value = At { at, closed: Some(at) };
        let json = serde_json::to_string(&value).expect("serialises");
        assert_eq!(json, serde_json::to_string(&serde_json::json!({"at": at, "closed": at})).expect("serialises"));
        assert_eq!(serde_json::from_str::<At>(&json).expect("reads"), value);
        let none = At { at, closed: None };
        assert_eq!(serde_json::from_str::<At>(&serde_json::to_string(&none).expect("ok")).expect("reads"), none);

        // In a binary format (the snapshots' postcard): seconds and nanoseconds, no text.
        let bytes = postcard::to_allocvec(&value).expect("serialises");
        let numbers =
            postcard::to_allocvec(&((1_780_000_000i64, 123_000_000u32), Some((1_780_000_000i64, 123_000_000u32))))
                .expect("serialises");
        assert_eq!(bytes, numbers);
        assert_eq!(postcard::from_bytes::<At>(&bytes).expect("reads"), value);
        let bytes = postcard::to_allocvec(&none).expect("serialises");
        assert_eq!(postcard::from_bytes::<At>(&bytes).expect("reads"), none);
    }
}
