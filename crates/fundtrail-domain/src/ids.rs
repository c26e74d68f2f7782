//! Validated identifiers. Each is a string newtype whose constructor and
//! `Deserialize` refuse malformed input, so a value of the type is always valid.
//!
//! Fund, proposal and pledge ids become NATS subject tokens
//! (`fundtrail.<version>.<fund>.<aggregate>.<id>`), so they never contain `.`, `*`, `>`
//! or white space.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// An identifier was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

/// `FromStr` of an id: its text, through the checked constructor.
macro_rules! from_text {
    ($name:ident) => {
        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }
    };
}

/// `Deserialize` and `FromStr` of an id: its text, through the checked constructor.
macro_rules! parsed_from_text {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        from_text!($name);
    };
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        ///
        /// Shared, immutable text: a clone is a reference count, not a copy.
        /// The fold's persistent maps clone keys and values whenever a
        /// snapshot is shared, so ids are cloned far more often than made.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(Arc::from(value))),
                    Err(rule) => Err(InvalidId { kind: $kind, value, rule }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        parsed_from_text!($name);
    };
}

/// Ids whose text is a fixed layout of lowercase hex digits (and, for UUIDs,
/// dashes) are held as their bytes, inline: no heap, and a copy is a copy of
/// the bytes. The text is checked first, so it is always the canonical
/// (lowercase) form and converts back exactly; the bytes order as the text does
/// (hex digits in ASCII order, dashes at fixed places).
macro_rules! fixed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $bytes:literal, $check:expr) => {
        $(#[$doc])*
        ///
        /// `Clone` copies the bytes; it is deliberately not `Copy`, so that ids
        /// are passed as the text-backed ids are.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $bytes]);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                if let Err(rule) = check(&value) {
                    return Err(InvalidId { kind: $kind, value, rule });
                }
                let mut bytes = [0u8; $bytes];
                if value.len() == 2 * $bytes {
                    // Hex digits only (a key id, a hash).
                    hex::decode_to_slice(&value, &mut bytes).expect("checked: lowercase hex digits");
                } else {
                    // Hex digits and dashes (a UUID): the digits first.
                    let mut digits = [0u8; 2 * $bytes];
                    let mut len = 0;
                    for b in value.bytes().filter(|&b| b != b'-') {
                        digits[len] = b; // checked: exactly two hex digits per byte
                        len += 1;
                    }
                    assert_eq!(len, digits.len(), "checked: two hex digits per byte");
                    hex::decode_to_slice(digits, &mut bytes).expect("checked: lowercase hex digits");
                }
                Ok(Self(bytes))
            }

            /// The raw bytes the text spells.
            pub fn as_bytes(&self) -> &[u8; $bytes] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_text())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.to_text().as_str())
            }
        }

        /// Text in human-readable formats (JSON: the events, the views, the API);
        /// the raw bytes in binary ones (the fold's snapshot), which then need
        /// neither formatting nor parsing, nor an allocation to read.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_text())
                } else {
                    serializer.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let value = String::deserialize(deserializer)?;
                    return Self::new(value).map_err(serde::de::Error::custom);
                }
                struct Raw;
                impl<'de> serde::de::Visitor<'de> for Raw {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "the {} bytes of a {}", $bytes, $kind)
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<$name, E> {
                        let bytes: [u8; $bytes] = v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
                        let id = $name(bytes);
                        // The same rule as the text's (a UUIDv7's version and variant).
                        let check: fn(&str) -> Result<(), &'static str> = $check;
                        check(&id.to_text()).map_err(|rule| E::custom(format_args!("{}: {rule}", $kind)))?;
                        Ok(id)
                    }
                }
                // `byte_buf`, not `bytes`: nothing borrowed, so a streaming decoder
                // (the snapshot's) reads every id through the same scratch space.
                deserializer.deserialize_byte_buf(Raw)
            }
        }

        from_text!($name);
    };
}

/// The text of a fixed-size id, on the stack: derefs to `str`.
#[derive(Clone, Copy)]
pub struct IdText {
    bytes: [u8; 64],
    len: usize,
}

impl IdText {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("hex digits and dashes are ASCII")
    }
}

impl std::ops::Deref for IdText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl EventId {
    /// The canonical text: 8-4-4-4-12 lowercase hex digits.
    pub fn to_text(&self) -> IdText {
        let mut bytes = [0u8; 64];
        let mut at = 0;
        for (i, group) in [4usize, 2, 2, 2, 6]
            .into_iter()
            .scan(0, |start, n| {
                let range = *start..*start + n;
                *start += n;
                Some(range)
            })
            .enumerate()
        {
            if i > 0 {
                bytes[at] = b'-';
                at += 1;
            }
            let digits = 2 * group.len();
            hex::encode_to_slice(&self.0[group], &mut bytes[at..at + digits]).expect("room for the digits");
            at += digits;
        }
        debug_assert_eq!(at, 36);
        IdText { bytes, len: at }
    }
}

impl Sha256Hex {
    /// The canonical text: 64 lowercase hex digits.
    pub fn to_text(&self) -> IdText {
        let mut bytes = [0u8; 64];
        hex::encode_to_slice(self.0, &mut bytes).expect("64 digits for 32 bytes");
        IdText { bytes, len: 64 }
    }

    /// The digest of raw bytes.
    pub fn from_digest(digest: [u8; 32]) -> Sha256Hex {
        Sha256Hex(digest)
    }
}

/// The reserved fund id under which host-wide events live (genesis, key enrolment,
/// host roles, the host's annual report).
pub const HOST_SCOPE: &str = "host";

/// Longest fund, proposal or pledge id.
pub const TOKEN_ID_LENGTH_MAX: usize = 64;

fn check_fund(v: &str) -> Result<(), &'static str> {
    check_token(v, false)?;
    if v == "checkpoints" {
        return Err("\"checkpoints\" is reserved for the checkpoint subject");
    }
    Ok(())
}

fn check_token(v: &str, allow_upper: bool) -> Result<(), &'static str> {
    if v.is_empty() || v.len() > TOKEN_ID_LENGTH_MAX {
        return Err("must be 1 to 64 characters");
    }
    let ok = |c: char| {
        c.is_ascii_digit()
            || c.is_ascii_lowercase()
            || c == '-'
            || (allow_upper && (c.is_ascii_uppercase() || c == '_'))
    };
    if !v.chars().all(ok) {
        return Err(if allow_upper {
            "may contain only ASCII letters, digits, '-' and '_'"
        } else {
            "may contain only lowercase ASCII letters, digits and '-'"
        });
    }
    if !v.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit");
    }
    Ok(())
}

fn check_hex(v: &str, len: usize) -> Result<(), &'static str> {
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(if len == 64 { "must be 64 lowercase hex digits" } else { "must be 32 lowercase hex digits" });
    }
    Ok(())
}

fn check_uuid_v7(v: &str) -> Result<(), &'static str> {
    const RULE: &str = "must be a lowercase UUIDv7 (xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx)";
    let b = v.as_bytes();
    if b.len() != 36 {
        return Err(RULE);
    }
    for (i, &c) in b.iter().enumerate() {
        let dash = matches!(i, 8 | 13 | 18 | 23);
        let ok = if dash { c == b'-' } else { c.is_ascii_digit() || (b'a'..=b'f').contains(&c) };
        if !ok {
            return Err(RULE);
        }
    }
    if b[14] != b'7' || !matches!(b[19], b'8' | b'9' | b'a' | b'b') {
        return Err(RULE);
    }
    Ok(())
}

string_id!(
    /// A fund (or [`HOST_SCOPE`]): lowercase letters, digits and '-'.
    FundId, "fund id", check_fund
);
string_id!(
    /// A signing key: the first 16 bytes of SHA-256 of its raw 32-byte Ed25519
    /// public key, as 32 lowercase hex digits. See [`KeyId::of_public_key`].
    KeyId, "key id", |v| check_hex(v, 32)
);
fixed_id!(
    /// An event: a lowercase UUIDv7 (time-ordered, so ids sort by creation).
    ///
    /// Held as its 16 bytes: the state keeps one per gift, payout and id record,
    /// so text would cost 52 heap bytes each (`docs/performance.md`, "Fold memory").
    EventId, "event id", 16, check_uuid_v7
);
string_id!(
    /// A proposal, chosen by its proposer, e.g. `P-2026-07`.
    ProposalId, "proposal id", |v| check_token(v, true)
);
string_id!(
    /// A pledge, chosen by whoever records it, e.g. `PL-2026-03`.
    PledgeId, "pledge id", |v| check_token(v, true)
);
fixed_id!(
    /// A SHA-256 digest as 64 lowercase hex digits: evidence documents, reports,
    /// and donor commitments.
    ///
    /// Held as its 32 bytes: every gift keeps its donor commitment.
    Sha256Hex, "SHA-256 hex digest", 32, |v| check_hex(v, 64)
);

impl FundId {
    /// The host-wide scope.
    pub fn host() -> FundId {
        FundId(Arc::from(HOST_SCOPE))
    }

    pub fn is_host(&self) -> bool {
        &*self.0 == HOST_SCOPE
    }
}

impl KeyId {
    /// The key id of a raw Ed25519 public key.
    pub fn of_public_key(public_key: &[u8; 32]) -> KeyId {
        let digest = Sha256::digest(public_key);
        KeyId(Arc::from(hex::encode(&digest[..16])))
    }
}

/// The domain tag that starts every donor commitment preimage.
pub const COMMITMENT_TAG: &[u8] = b"fundtrail/donor-commitment/v1\0";

/// Donor commitment = SHA-256(tag ‖ 32-byte salt ‖ donor reference).
///
/// The donor reference is whatever identifies the donor to the intake service
/// (a phone number, a customer number); with the salt the donor can prove the
/// commitment is theirs, without it nobody can guess who gave.
pub fn donor_commitment(salt: &[u8; 32], donor_reference: &str) -> Sha256Hex {
    let mut h = Sha256::new();
    h.update(COMMITMENT_TAG);
    h.update(salt);
    h.update(donor_reference.as_bytes());
    Sha256Hex(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fund_ids() {
        assert!(FundId::new("hz-xihu-01").is_ok());
        assert!(FundId::new("Host").is_err());
        assert!(FundId::new("a.b").is_err());
        assert!(FundId::new("-a").is_err());
        assert!(FundId::new("").is_err());
        assert!(FundId::new("checkpoints").is_err());
        assert!(FundId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn event_ids_are_uuid_v7() {
        assert!(EventId::new("01937b2e-4c1a-7d3e-9f00-123456789abc").is_ok());
        assert!(EventId::new("01937b2e-4c1a-4d3e-9f00-123456789abc").is_err());
        assert!(EventId::new("01937B2E-4c1a-7d3e-9f00-123456789abc").is_err());
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        let id = KeyId::of_public_key(&[0u8; 32]);
        // SHA-256 of 32 zero bytes starts 66687aadf862bd776c8fc18b8e9f8e20.
        assert_eq!(id.as_str(), "66687aadf862bd776c8fc18b8e9f8e20");
    }

    #[test]
    fn commitment_is_deterministic_and_salted() {
        let a = donor_commitment(&[1; 32], "13800000000");
        assert_eq!(a, donor_commitment(&[1; 32], "13800000000"));
        assert_ne!(a, donor_commitment(&[2; 32], "13800000000"));
    }

    #[test]
    fn fixed_ids_give_back_their_text_and_sort_as_it_does() {
        let texts = [
            "01890a5d-ac96-774b-bcce-b302099a8057",
            "01890a5d-ac96-774b-bcce-b302099a8058",
            "0190f000-0000-7000-8000-000000000000",
            "ffffffff-ffff-7fff-bfff-ffffffffffff",
        ];
        let ids: Vec<EventId> = texts.iter().map(|t| EventId::new(*t).expect("valid")).collect();
        for (id, text) in ids.iter().zip(texts) {
            assert_eq!(id.to_string(), text);
            assert_eq!(&*id.to_text(), text);
            assert_eq!(serde_json::to_string(id).expect("serialises"), format!("{text:?}"));
            assert_eq!(format!("{id:?}"), format!("EventId({text:?})"));
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "bytes order as the text does");
        assert!(EventId::new("01890A5D-AC96-774B-BCCE-B302099A8057").is_err(), "upper case is not canonical");
        let digest = Sha256Hex::new("ab".repeat(32)).expect("valid");
        assert_eq!(digest.to_string(), "ab".repeat(32));
        assert_eq!(digest.as_bytes(), &[0xab; 32]);
        assert!(Sha256Hex::new("AB".repeat(32)).is_err());
        assert!(std::mem::size_of::<EventId>() == 16 && std::mem::size_of::<Sha256Hex>() == 32);
    }

    #[test]
    fn fixed_ids_are_their_raw_bytes_in_a_binary_format_and_checked_on_the_way_back() {
        let id = EventId::new("01890a5d-ac96-774b-bcce-b302099a8057").expect("valid");
        let bytes = postcard::to_allocvec(&id).expect("serialises");
        assert_eq!(bytes.len(), 1 + 16, "a length and the 16 bytes, not 36 characters");
        assert_eq!(&bytes[1..], id.as_bytes());
        assert_eq!(postcard::from_bytes::<EventId>(&bytes).expect("reads"), id);
        let digest = Sha256Hex::new("ab".repeat(32)).expect("valid");
        let bytes = postcard::to_allocvec(&digest).expect("serialises");
        assert_eq!(bytes.len(), 1 + 32);
        assert_eq!(postcard::from_bytes::<Sha256Hex>(&bytes).expect("reads"), digest);

        // Sixteen bytes that are not a UUIDv7 (version nibble 4) are refused, as their text is.
        let mut not_v7 = postcard::to_allocvec(&id).expect("serialises");
        not_v7[1 + 6] = 0x47;
        postcard::from_bytes::<EventId>(&not_v7).expect_err("a UUIDv4 is not an event id");
        // A wrong length is refused, whatever follows.
        let mut short = vec![15u8];
        short.extend_from_slice(&id.as_bytes()[..15]);
        assert!(postcard::from_bytes::<EventId>(&short).is_err());
        assert!(postcard::from_bytes::<Sha256Hex>(&postcard::to_allocvec(&id).expect("serialises")).is_err());
    }
}
