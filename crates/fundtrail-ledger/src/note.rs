//! C2SP signed-note with the log's Ed25519 key, signed checkpoints, and C2SP
//! tlog-cosignature (`cosignature/v1`) witness cosignatures.
//!
//! Note parsing, signature-line encoding and the verification rules (unknown keys are
//! ignored, a known key with a bad signature rejects the note, at least one known key
//! must verify) are the pinned `signed_note` crate's. This module adds key handling from
//! a 32-byte seed, named limits, stricter pre-checks with their own errors, the
//! checkpoint rules and cosignatures (type 0x04), which that crate does not know.

use crate::checkpoint::{Checkpoint, CheckpointError};
use base64::prelude::*;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Largest signed note accepted, in bytes (a checkpoint with dozens of cosignatures).
pub const NOTE_SIZE_MAX: usize = 16 * 1024;
/// Most signature lines accepted (C2SP signed-note: at least 16 must be accepted).
pub const NOTE_SIGNATURES_MAX: usize = 32;
/// Longest key name accepted, in bytes.
pub const KEY_NAME_LEN_MAX: usize = 256;
/// Signature type of Ed25519 note signatures (C2SP signed-note).
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;
/// Signature type of timestamped Ed25519 witness cosignatures (C2SP tlog-cosignature).
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// Largest cosignature timestamp (C2SP tlog-cosignature: at most 2^63 − 1).
pub const COSIGNATURE_TIMESTAMP_MAX: u64 = (1 << 63) - 1;

const ED25519_SIGNATURE_SIZE: usize = 64;
const COSIGNATURE_SIZE: usize = 8 + ED25519_SIGNATURE_SIZE;

/// Why a verifier key (vkey) or signing key was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("key name {name:?}: must be 1..={KEY_NAME_LEN_MAX} bytes without spaces or plus signs")]
    NameInvalid { name: String },
    #[error("verifier key {vkey:?}: not of the form <name>+<8 hex digits>+<base64 key>")]
    Malformed { vkey: String },
    #[error("verifier key for {name}: signature type {found:#04x}, expected {expected:#04x}")]
    WrongType { name: String, found: u8, expected: u8 },
    #[error("verifier key for {name}: key ID {found:08x} does not match the key ({expected:08x})")]
    KeyIdMismatch { name: String, found: u32, expected: u32 },
    #[error("verifier key for {name}: not a valid Ed25519 public key")]
    BadPublicKey { name: String },
}

/// Why a signed note (a checkpoint) was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NoteError {
    #[error("signed note: {size} bytes exceeds the maximum of {NOTE_SIZE_MAX}")]
    TooLarge { size: usize },
    #[error("signed note: not valid UTF-8")]
    NotUtf8,
    #[error("signed note: control character at byte {offset}")]
    ControlCharacter { offset: usize },
    #[error("signed note: no blank line before the signature lines")]
    NoSignatures,
    #[error("signed note: signature line {line} is malformed")]
    BadSignatureLine { line: usize },
    #[error("signed note: {found} signature lines exceeds the maximum of {NOTE_SIGNATURES_MAX}")]
    TooManySignatures { found: usize },
    #[error("signed note: not signed by the known key {name}+{key_id:08x}")]
    UnknownKey { name: String, key_id: u32 },
    #[error("signed note: signature by {name}+{key_id:08x} does not verify")]
    BadSignature { name: String, key_id: u32 },
    #[error("signed note: cosignature by {name}: timestamp {timestamp} exceeds 2^63 - 1")]
    TimestampTooLarge { name: String, timestamp: u64 },
    #[error("checkpoint origin {origin:?} is not the log's name {expected:?}")]
    OriginMismatch { origin: String, expected: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("signed note: {0}")]
    Malformed(String),
}

/// The key ID of a signed-note key: SHA-256(name ‖ "\n" ‖ type ‖ public key)\[:4\],
/// big-endian (C2SP signed-note §Signatures).
pub fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([signature_type]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    u32::from_be_bytes(digest[..4].try_into().expect("4 bytes"))
}

pub(crate) fn check_key_name(name: &str) -> Result<(), KeyError> {
    let valid = !name.is_empty()
        && name.len() <= KEY_NAME_LEN_MAX
        && signed_note::is_key_name_valid(name)
        && !name.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(KeyError::NameInvalid { name: name.to_string() })
    }
}

/// An Ed25519 verifier key of a given signature type: the log's (0x01) or a witness's
/// (0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ed25519Key {
    pub(crate) name: String,
    pub(crate) signature_type: u8,
    pub(crate) key: VerifyingKey,
    pub(crate) key_id: u32,
}

impl Ed25519Key {
    pub(crate) fn new(name: &str, signature_type: u8, public_key: &[u8; 32]) -> Result<Self, KeyError> {
        check_key_name(name)?;
        let key =
            VerifyingKey::from_bytes(public_key).map_err(|_| KeyError::BadPublicKey { name: name.to_string() })?;
        Ok(Ed25519Key { name: name.to_string(), signature_type, key, key_id: key_id(name, signature_type, public_key) })
    }

    /// Parses `<name>+<hex key ID>+<base64(type ‖ public key)>`.
    fn parse(vkey: &str, signature_type: u8) -> Result<Self, KeyError> {
        let malformed = || KeyError::Malformed { vkey: vkey.to_string() };
        // The base64 key may itself contain '+': split off the name and ID only.
        let (name, rest) = vkey.split_once('+').ok_or_else(malformed)?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(malformed)?;
        check_key_name(name)?;
        let id_ok = id_hex.len() == 8 && id_hex.bytes().all(|b| b.is_ascii_hexdigit());
        let found = u32::from_str_radix(id_hex, 16).ok().filter(|_| id_ok).ok_or_else(malformed)?;
        let bytes = BASE64_STANDARD.decode(key_b64).map_err(|_| malformed())?;
        let (&found_type, public_key) = bytes.split_first().ok_or_else(malformed)?;
        if found_type != signature_type {
            return Err(KeyError::WrongType { name: name.to_string(), found: found_type, expected: signature_type });
        }
        let public_key: &[u8; 32] = public_key.try_into().map_err(|_| malformed())?;
        let key = Ed25519Key::new(name, signature_type, public_key)?;
        if key.key_id != found {
            return Err(KeyError::KeyIdMismatch { name: name.to_string(), found, expected: key.key_id });
        }
        Ok(key)
    }

    fn vkey(&self) -> String {
        let mut bytes = vec![self.signature_type];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, BASE64_STANDARD.encode(bytes))
    }
}

/// The log's checkpoint-signing key: Ed25519, signed-note type 0x01. Its name is the
/// log's origin.
#[derive(Clone)]
pub struct LogSigner {
    key: SigningKey,
    public: Ed25519Key,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogSigner({})", self.public.vkey())
    }
}

impl LogSigner {
    /// The signer for `name` from a 32-byte Ed25519 secret key seed (RFC 8032).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<LogSigner, KeyError> {
        let key = SigningKey::from_bytes(seed);
        let public = Ed25519Key::new(name, SIGNATURE_TYPE_ED25519, key.verifying_key().as_bytes())?;
        Ok(LogSigner { key, public })
    }

    pub fn name(&self) -> &str {
        &self.public.name
    }

    pub fn key_id(&self) -> u32 {
        self.public.key_id
    }

    /// The verifier key text, `<name>+<key ID hex>+<base64(0x01 ‖ public key)>`.
    pub fn vkey(&self) -> String {
        self.public.vkey()
    }

    pub fn verifier(&self) -> LogVerifier {
        LogVerifier(self.public.clone())
    }

    /// Signs `checkpoint` and returns the signed note. The checkpoint's origin must be
    /// this key's name.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Vec<u8>, NoteError> {
        if checkpoint.origin != self.public.name {
            return Err(NoteError::OriginMismatch {
                origin: checkpoint.origin.clone(),
                expected: self.public.name.clone(),
            });
        }
        let note = self.sign_note(checkpoint.body().as_bytes())?;
        debug_assert_eq!(self.verifier().verify_checkpoint(&note).as_ref(), Ok(checkpoint));
        Ok(note)
    }

    /// Signs any note text (ending in a newline) and returns the signed note.
    pub fn sign_note(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        check_size(text.len())?;
        let mut note = signed_note::Note::new(text, &[]).map_err(map_note_error)?;
        note.add_sigs(&[self]).map_err(map_note_error)?;
        Ok(note.to_bytes())
    }
}

impl signed_note::Signer for LogSigner {
    fn name(&self) -> &str {
        &self.public.name
    }

    fn key_id(&self) -> u32 {
        self.public.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// The log's verifier key (type 0x01), as a donor or auditor configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogVerifier(pub(crate) Ed25519Key);

impl LogVerifier {
    /// Parses a vkey, `<name>+<key ID hex>+<base64(0x01 ‖ public key)>`.
    pub fn from_vkey(vkey: &str) -> Result<LogVerifier, KeyError> {
        Ed25519Key::parse(vkey, SIGNATURE_TYPE_ED25519).map(LogVerifier)
    }

    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<LogVerifier, KeyError> {
        Ed25519Key::new(name, SIGNATURE_TYPE_ED25519, public_key).map(LogVerifier)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn key_id(&self) -> u32 {
        self.0.key_id
    }

    pub fn vkey(&self) -> String {
        self.0.vkey()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.0.key.as_bytes()
    }

    /// Verifies a signed note's log signature and returns the note text.
    pub fn verify_note<'a>(&self, note: &'a [u8]) -> Result<&'a str, NoteError> {
        let (text, _) = verify(note, self, &[])?;
        Ok(text)
    }

    /// Verifies a signed checkpoint: the log signature, then the three-line body, then
    /// that the origin is the key's name. Other signatures (cosignatures) are ignored.
    pub fn verify_checkpoint(&self, note: &[u8]) -> Result<Checkpoint, NoteError> {
        let text = self.verify_note(note)?;
        checkpoint_of(text, self)
    }
}

fn checkpoint_of(text: &str, log: &LogVerifier) -> Result<Checkpoint, NoteError> {
    let checkpoint = Checkpoint::parse_body(text)?;
    if checkpoint.origin != log.0.name {
        return Err(NoteError::OriginMismatch { origin: checkpoint.origin, expected: log.0.name.clone() });
    }
    Ok(checkpoint)
}

impl signed_note::Verifier for LogVerifier {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn key_id(&self) -> u32 {
        self.0.key_id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.0.key.verify_strict(msg, &sig).is_ok()
    }
}

/// A witness's cosigning key (type 0x04, C2SP tlog-cosignature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessVerifier(pub(crate) Ed25519Key);

impl WitnessVerifier {
    /// Parses a witness vkey, `<name>+<key ID hex>+<base64(0x04 ‖ public key)>`.
    pub fn from_vkey(vkey: &str) -> Result<WitnessVerifier, KeyError> {
        Ed25519Key::parse(vkey, SIGNATURE_TYPE_COSIGNATURE_V1).map(WitnessVerifier)
    }

    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<WitnessVerifier, KeyError> {
        Ed25519Key::new(name, SIGNATURE_TYPE_COSIGNATURE_V1, public_key).map(WitnessVerifier)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn key_id(&self) -> u32 {
        self.0.key_id
    }

    pub fn vkey(&self) -> String {
        self.0.vkey()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.0.key.as_bytes()
    }
}

impl signed_note::Verifier for WitnessVerifier {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn key_id(&self) -> u32 {
        self.0.key_id
    }

    /// `sig` is a `timestamped_signature`: u64 big-endian timestamp ‖ Ed25519 signature
    /// over [`cosignature_message`].
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((timestamp, sig)) = split_cosignature(sig) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        let message = cosignature_message(msg, timestamp);
        self.0.key.verify_strict(&message, &sig).is_ok()
    }
}

pub(crate) fn split_cosignature(sig: &[u8]) -> Option<(u64, &[u8])> {
    if sig.len() != COSIGNATURE_SIZE {
        return None;
    }
    let (timestamp, sig) = sig.split_at(8);
    let timestamp = u64::from_be_bytes(timestamp.try_into().ok()?);
    (timestamp <= COSIGNATURE_TIMESTAMP_MAX).then_some((timestamp, sig))
}

/// The message a witness signs for a `cosignature/v1` (C2SP tlog-cosignature §Ed25519
/// signed message): `cosignature/v1\ntime <timestamp>\n` then the checkpoint body.
pub fn cosignature_message(checkpoint_body: &[u8], timestamp: u64) -> Vec<u8> {
    assert!(timestamp <= COSIGNATURE_TIMESTAMP_MAX);
    let mut message = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    message.extend_from_slice(checkpoint_body);
    message
}

/// A verified witness cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    pub name: String,
    pub key_id: u32,
    /// POSIX seconds at which the witness cosigned.
    pub timestamp: u64,
}

/// Adds witness `witness`'s cosignature, made at `timestamp` over
/// [`cosignature_message`] of the note's body, to a signed checkpoint. The signature is
/// computed by the caller (the witness); it is verified before it is added. A previous
/// cosignature by the same key is replaced.
pub fn add_cosignature(
    note: &[u8],
    witness: &WitnessVerifier,
    timestamp: u64,
    signature: &[u8; 64],
) -> Result<Vec<u8>, NoteError> {
    if timestamp > COSIGNATURE_TIMESTAMP_MAX {
        return Err(NoteError::TimestampTooLarge { name: witness.0.name.clone(), timestamp });
    }
    let text = precheck(note)?;
    let mut sig = timestamp.to_be_bytes().to_vec();
    sig.extend_from_slice(signature);
    if !signed_note::Verifier::verify(witness, text.as_bytes(), &sig) {
        return Err(NoteError::BadSignature { name: witness.0.name.clone(), key_id: witness.0.key_id });
    }
    let mut parsed = signed_note::Note::from_bytes(note).map_err(map_note_error)?;
    let presigned = Presigned { name: &witness.0.name, key_id: witness.0.key_id, sig };
    parsed.add_sigs(&[&presigned]).map_err(map_note_error)?;
    let out = parsed.to_bytes();
    check_size(out.len())?;
    Ok(out)
}

/// A signer that hands back a signature made elsewhere.
struct Presigned<'a> {
    name: &'a str,
    key_id: u32,
    sig: Vec<u8>,
}

impl signed_note::Signer for Presigned<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.sig.clone())
    }
}

/// Verifies a signed checkpoint and the cosignatures of the given witnesses: the log
/// signature must verify; a cosignature by a listed witness must verify (else the note
/// is refused); others are ignored. Returns the checkpoint and the verified
/// cosignatures, for the caller's quorum policy.
pub fn verify_cosigned_checkpoint(
    note: &[u8],
    log: &LogVerifier,
    witnesses: &[WitnessVerifier],
) -> Result<(Checkpoint, Vec<Cosignature>), NoteError> {
    let (text, verified) = verify(note, log, witnesses)?;
    let checkpoint = checkpoint_of(text, log)?;
    let cosignatures = verified
        .iter()
        .filter(|s| !(s.name() == log.0.name && s.id() == log.0.key_id))
        .map(|s| {
            let (timestamp, _) = split_cosignature(s.signature()).expect("verified");
            Cosignature { name: s.name().to_string(), key_id: s.id(), timestamp }
        })
        .collect();
    Ok((checkpoint, cosignatures))
}

/// The keys a note is checked against.
struct Known<'a> {
    log: &'a LogVerifier,
    witnesses: &'a [WitnessVerifier],
}

impl signed_note::Verifiers for Known<'_> {
    fn verifier(&self, name: &str, id: u32) -> Result<&dyn signed_note::Verifier, signed_note::VerificationError> {
        if name == self.log.0.name && id == self.log.0.key_id {
            return Ok(self.log);
        }
        self.witnesses
            .iter()
            .find(|w| w.0.name == name && w.0.key_id == id)
            .map(|w| w as &dyn signed_note::Verifier)
            .ok_or(signed_note::VerificationError::UnknownKey { name: name.to_string(), id })
    }
}

/// Checks the note's form, then its signatures; the log key must have signed.
fn verify<'a>(
    note: &'a [u8],
    log: &LogVerifier,
    witnesses: &[WitnessVerifier],
) -> Result<(&'a str, Vec<signed_note::Signature>), NoteError> {
    let text = precheck(note)?;
    let parsed = signed_note::Note::from_bytes(note).map_err(map_note_error)?;
    debug_assert_eq!(parsed.text(), text.as_bytes());
    let (verified, _unknown) =
        parsed.verify(&Known { log, witnesses }).map_err(map_note_error).map_err(|e| match e {
            NoteError::UnknownKey { .. } => NoteError::UnknownKey { name: log.0.name.clone(), key_id: log.0.key_id },
            other => other,
        })?;
    if !verified.iter().any(|s| s.name() == log.0.name && s.id() == log.0.key_id) {
        return Err(NoteError::UnknownKey { name: log.0.name.clone(), key_id: log.0.key_id });
    }
    Ok((text, verified))
}

fn check_size(size: usize) -> Result<(), NoteError> {
    if size > NOTE_SIZE_MAX {
        return Err(NoteError::TooLarge { size });
    }
    Ok(())
}

/// The C2SP signed-note format rules, each with its own error, before the note reaches
/// the `signed_note` parser (which reports every violation as one "malformed note").
/// Returns the note text (up to and including its final newline).
pub(crate) fn precheck(note: &[u8]) -> Result<&str, NoteError> {
    check_size(note.len())?;
    let note = std::str::from_utf8(note).map_err(|_| NoteError::NotUtf8)?;
    if let Some(offset) = note.bytes().position(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlCharacter { offset });
    }
    // The text is separated from the signatures by the last blank line.
    let split = note.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let sigs = sigs.strip_suffix('\n').ok_or(NoteError::NoSignatures)?;
    if sigs.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    let lines: Vec<&str> = sigs.split('\n').collect();
    if lines.len() > NOTE_SIGNATURES_MAX {
        return Err(NoteError::TooManySignatures { found: lines.len() });
    }
    for (i, line) in lines.iter().enumerate() {
        if !signature_line_ok(line) {
            return Err(NoteError::BadSignatureLine { line: i + 1 });
        }
    }
    Ok(text)
}

fn signature_line_ok(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("— ") else {
        return false;
    };
    let Some((name, sig)) = rest.split_once(' ') else {
        return false;
    };
    let sig_ok = BASE64_STANDARD.decode(sig).is_ok_and(|s| s.len() > 4);
    sig_ok && check_key_name(name).is_ok()
}

fn map_note_error(e: signed_note::NoteError) -> NoteError {
    match e {
        signed_note::NoteError::InvalidSignature { name, id } => NoteError::BadSignature { name, key_id: id },
        signed_note::NoteError::UnverifiedNote => NoteError::UnknownKey { name: String::new(), key_id: 0 },
        other => NoteError::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    const ORIGIN: &str = "fundtrail.example/ledger";

    fn signer() -> LogSigner {
        LogSigner::from_seed(ORIGIN, &[7; 32]).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new(ORIGIN, 12, leaf_hash(b"root")).unwrap()
    }

    #[test]
    fn go_note_test_vector() {
        // Go's golang.org/x/mod/sumdb/note example (also in the signed_note crate docs).
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let msg = "If you think cryptography is the answer to your problem,\n\
                   then you don't know what your problem is.\n\
                   \n\
                   — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let verifier = LogVerifier::from_vkey(vkey).unwrap();
        assert_eq!(verifier.key_id(), 0xc74f20a3);
        assert_eq!(verifier.vkey(), vkey);
        let text = verifier.verify_note(msg.as_bytes()).unwrap();
        assert!(text.ends_with("what your problem is.\n"));
        // Its skey is PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz.
        let seed: [u8; 32] =
            BASE64_STANDARD.decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap()[1..].try_into().unwrap();
        let signer = LogSigner::from_seed("PeterNeumann", &seed).unwrap();
        assert_eq!(signer.vkey(), vkey);
        assert_eq!(signer.sign_note(text.as_bytes()).unwrap(), msg.as_bytes());
    }

    #[test]
    fn sign_and_verify_checkpoint() {
        let note = signer().sign_checkpoint(&checkpoint()).unwrap();
        let text = String::from_utf8(note.clone()).unwrap();
        assert!(text.starts_with(&checkpoint().body()));
        assert!(text.contains(&format!("\n\n— {ORIGIN} ")));
        let verifier = LogVerifier::from_vkey(&signer().vkey()).unwrap();
        assert_eq!(verifier.verify_checkpoint(&note), Ok(checkpoint()));
    }

    #[test]
    fn vkey_errors() {
        let vkey = signer().vkey();
        assert!(matches!(LogVerifier::from_vkey("nope"), Err(KeyError::Malformed { .. })));
        assert!(matches!(WitnessVerifier::from_vkey(&vkey), Err(KeyError::WrongType { found: 1, expected: 4, .. })));
        let (name, rest) = vkey.split_once('+').unwrap();
        let wrong_id = format!("{name}+00000000+{}", rest.split_once('+').unwrap().1);
        assert!(matches!(LogVerifier::from_vkey(&wrong_id), Err(KeyError::KeyIdMismatch { found: 0, .. })));
        assert!(matches!(LogSigner::from_seed("a b", &[1; 32]), Err(KeyError::NameInvalid { .. })));
    }

    #[test]
    fn refusals_each_have_their_error() {
        let log = signer().verifier();
        let note = signer().sign_checkpoint(&checkpoint()).unwrap();
        let other = LogSigner::from_seed(ORIGIN, &[8; 32]).unwrap();
        let foreign = other.sign_checkpoint(&checkpoint()).unwrap();
        assert!(matches!(log.verify_checkpoint(&foreign), Err(NoteError::UnknownKey { .. })));
        let mut tampered = note.clone();
        tampered[ORIGIN.len() + 1] = b'3'; // size 12 → 32
        assert!(matches!(log.verify_checkpoint(&tampered), Err(NoteError::BadSignature { .. })));
        let extra = signer().sign_note(format!("{}ext\n", checkpoint().body()).as_bytes());
        assert_eq!(
            log.verify_checkpoint(&extra.unwrap()),
            Err(NoteError::Checkpoint(CheckpointError::ExtraLines { found: 4 }))
        );
        let zeros = signer().sign_note(format!("{ORIGIN}\n012\n{}\n", checkpoint().root).as_bytes());
        assert_eq!(
            log.verify_checkpoint(&zeros.unwrap()),
            Err(NoteError::Checkpoint(CheckpointError::SizeLeadingZero { text: "012".into() }))
        );
        let text = String::from_utf8(note.clone()).unwrap();
        let body = checkpoint().body();
        assert_eq!(log.verify_checkpoint(body.as_bytes()), Err(NoteError::NoSignatures));
        assert_eq!(
            log.verify_checkpoint(format!("{body}\n- x AAAAAAAA\n").as_bytes()),
            Err(NoteError::BadSignatureLine { line: 1 })
        );
        assert_eq!(
            log.verify_checkpoint(text.replace('\n', "\r\n").as_bytes()),
            Err(NoteError::ControlCharacter { offset: ORIGIN.len() })
        );
        assert_eq!(log.verify_checkpoint(&[0xff]), Err(NoteError::NotUtf8));
        let signature_line = format!("{}\n", text.lines().last().unwrap());
        let many = format!("{text}{}", signature_line.repeat(NOTE_SIGNATURES_MAX));
        assert_eq!(
            log.verify_checkpoint(many.as_bytes()),
            Err(NoteError::TooManySignatures { found: NOTE_SIGNATURES_MAX + 1 })
        );
        assert!(matches!(log.verify_checkpoint(&vec![b'a'; NOTE_SIZE_MAX + 1]), Err(NoteError::TooLarge { .. })));
        let other_origin = LogSigner::from_seed("elsewhere.example/log", &[7; 32]).unwrap();
        let cp = Checkpoint::new("elsewhere.example/log", 1, leaf_hash(b"r")).unwrap();
        let elsewhere = other_origin.sign_checkpoint(&cp).unwrap();
        let log2 = LogVerifier::from_public_key(ORIGIN, signer().verifier().0.key.as_bytes());
        // Same key, other name: a different key ID, so unknown to this verifier.
        assert!(matches!(log2.unwrap().verify_checkpoint(&elsewhere), Err(NoteError::UnknownKey { .. })));
    }

    #[test]
    fn cosignatures() {
        let note = signer().sign_checkpoint(&checkpoint()).unwrap();
        let witness_key = SigningKey::from_bytes(&[9; 32]);
        let witness =
            WitnessVerifier::from_public_key("witness.example/w1", witness_key.verifying_key().as_bytes()).unwrap();
        assert_eq!(WitnessVerifier::from_vkey(&witness.vkey()).as_ref(), Ok(&witness));
        let timestamp = 1_679_315_147;
        let message = cosignature_message(checkpoint().body().as_bytes(), timestamp);
        assert!(message.starts_with(b"cosignature/v1\ntime 1679315147\nfundtrail.example/ledger\n12\n"));
        let sig = witness_key.sign(&message).to_bytes();
        let cosigned = add_cosignature(&note, &witness, timestamp, &sig).unwrap();
        let (cp, cosigs) =
            verify_cosigned_checkpoint(&cosigned, &signer().verifier(), std::slice::from_ref(&witness)).unwrap();
        assert_eq!(cp, checkpoint());
        assert_eq!(
            cosigs,
            vec![Cosignature { name: "witness.example/w1".into(), key_id: witness.key_id(), timestamp }]
        );
        // The log verifier alone ignores the cosignature.
        assert_eq!(signer().verifier().verify_checkpoint(&cosigned), Ok(checkpoint()));
        // A wrong timestamp does not verify, neither when adding nor when checking.
        assert!(matches!(add_cosignature(&note, &witness, timestamp + 1, &sig), Err(NoteError::BadSignature { .. })));
        let text = String::from_utf8(cosigned).unwrap();
        let line = text.lines().last().unwrap();
        let (prefix, b64) = line.rsplit_once(' ').unwrap();
        let mut raw = BASE64_STANDARD.decode(b64).unwrap();
        raw[4 + 7] ^= 1; // key ID (4) then the timestamp's last byte
        let forged = text.replace(line, &format!("{prefix} {}", BASE64_STANDARD.encode(raw)));
        assert!(matches!(
            verify_cosigned_checkpoint(forged.as_bytes(), &signer().verifier(), &[witness]),
            Err(NoteError::BadSignature { .. })
        ));
    }
}
