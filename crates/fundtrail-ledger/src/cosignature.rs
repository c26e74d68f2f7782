//! C2SP tlog-cosignature `cosignature/v1` (Ed25519): a witness's signing key, the
//! signature lines a witness returns (C2SP tlog-witness §add-checkpoint, "200"), and
//! checking one such line against the checkpoint the log sent.
//!
//! A cosignature line is a signed-note signature line (C2SP signed-note §Signatures):
//!
//! ```text
//! — <witness name> base64(key ID (4) ‖ timestamp (8, big-endian) ‖ Ed25519 signature (64))
//! ```
//!
//! where key ID = SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)\[:4\] and the signature is over
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint body
//! ([`crate::note::cosignature_message`]). The vectors in the tests were made with an
//! independent implementation (the `aics-tlog` Python package).

use crate::checkpoint::Checkpoint;
use crate::note::{
    add_cosignature, check_key_name, cosignature_message, split_cosignature, Cosignature, KeyError, NoteError,
    WitnessVerifier, COSIGNATURE_TIMESTAMP_MAX, SIGNATURE_TYPE_COSIGNATURE_V1,
};
use base64::prelude::*;
use ed25519_dalek::{Signer as _, SigningKey};
use thiserror::Error;

/// Size of a `cosignature/v1` signature after the key ID: timestamp (8) ‖ Ed25519 (64).
pub const COSIGNATURE_V1_SIZE: usize = 8 + 64;
/// Most signature lines accepted in one witness answer.
pub const ANSWER_LINES_MAX: usize = 16;
/// Largest witness answer accepted, in bytes (16 lines of a long name and a signature).
pub const ANSWER_SIZE_MAX: usize = ANSWER_LINES_MAX * 512;

/// Why a witness's answer, or one cosignature in it, was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CosignatureError {
    #[error("witness answer: {size} bytes exceeds the maximum of {ANSWER_SIZE_MAX}")]
    AnswerTooLarge { size: usize },
    #[error("witness answer: empty, expected one or more signature lines")]
    AnswerEmpty,
    #[error("witness answer: not valid UTF-8")]
    AnswerNotUtf8,
    #[error("witness answer: does not end with a newline")]
    AnswerNoFinalNewline,
    #[error("witness answer: {found} lines exceeds the maximum of {ANSWER_LINES_MAX}")]
    AnswerTooManyLines { found: usize },
    #[error("witness answer line {line}: not a signature line (\"— <name> <base64>\"): {quoted:?}")]
    NotASignatureLine { line: usize, quoted: String },
    #[error("witness answer line {line}: the signature is not standard base64 of more than 4 bytes")]
    BadBase64 { line: usize },
    #[error("no cosignature by {name}+{key_id:08x} in the witness's answer (lines by: {found})")]
    NotFromWitness { name: String, key_id: u32, found: String },
    #[error("cosignature by {name}: {found} bytes after the key ID, expected {COSIGNATURE_V1_SIZE}")]
    WrongLength { name: String, found: usize },
    #[error("cosignature by {name}: timestamp 0 (a witness must date its cosignature)")]
    TimestampZero { name: String },
    #[error("cosignature by {name}: timestamp {timestamp} exceeds 2^63 - 1")]
    TimestampTooLarge { name: String, timestamp: u64 },
    #[error("cosignature by {name}+{key_id:08x} does not verify over checkpoint {origin} size {size} (forged, or made over another checkpoint)")]
    BadSignature { name: String, key_id: u32, origin: String, size: u64 },
}

/// One signed-note signature line: key name, key ID and the signature bytes after the ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    pub key_id: u32,
    pub signature: Vec<u8>,
}

impl SignatureLine {
    /// The line as written in a note or a witness answer, with its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("— {} {}\n", self.name, BASE64_STANDARD.encode(raw))
    }

    /// Parses one line (without its newline); `number` counts from 1, for errors.
    fn parse(line: &str, number: usize) -> Result<SignatureLine, CosignatureError> {
        let not_a_line = || CosignatureError::NotASignatureLine { line: number, quoted: quote(line) };
        let rest = line.strip_prefix("— ").ok_or_else(not_a_line)?;
        let (name, b64) = rest.split_once(' ').ok_or_else(not_a_line)?;
        if check_key_name(name).is_err() || b64.contains(' ') {
            return Err(not_a_line());
        }
        let raw = BASE64_STANDARD.decode(b64).map_err(|_| CosignatureError::BadBase64 { line: number })?;
        if raw.len() <= 4 {
            return Err(CosignatureError::BadBase64 { line: number });
        }
        let key_id = u32::from_be_bytes(raw[..4].try_into().expect("4 bytes"));
        Ok(SignatureLine { name: name.to_string(), key_id, signature: raw[4..].to_vec() })
    }
}

fn quote(line: &str) -> String {
    const QUOTE_CHARS_MAX: usize = 60;
    line.chars().take(QUOTE_CHARS_MAX).collect()
}

/// Parses a witness's 200 answer: one or more signature lines, each ending in a newline
/// (C2SP tlog-witness §add-checkpoint).
pub fn parse_signature_lines(answer: &[u8]) -> Result<Vec<SignatureLine>, CosignatureError> {
    if answer.len() > ANSWER_SIZE_MAX {
        return Err(CosignatureError::AnswerTooLarge { size: answer.len() });
    }
    if answer.is_empty() {
        return Err(CosignatureError::AnswerEmpty);
    }
    let text = std::str::from_utf8(answer).map_err(|_| CosignatureError::AnswerNotUtf8)?;
    let text = text.strip_suffix('\n').ok_or(CosignatureError::AnswerNoFinalNewline)?;
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.len() > ANSWER_LINES_MAX {
        return Err(CosignatureError::AnswerTooManyLines { found: lines.len() });
    }
    lines.iter().enumerate().map(|(i, line)| SignatureLine::parse(line, i + 1)).collect()
}

/// Picks `witness`'s line from a witness's answer and verifies it over `checkpoint`.
/// Lines by other keys are ignored (C2SP tlog-witness: "the client MUST ignore any
/// cosignatures from unknown keys"); a line by this key that does not verify is refused.
pub fn verify_witness_answer(
    answer: &[u8],
    checkpoint: &Checkpoint,
    witness: &WitnessVerifier,
) -> Result<(SignatureLine, Cosignature), CosignatureError> {
    let lines = parse_signature_lines(answer)?;
    let ours = lines.iter().find(|l| l.name == witness.name() && l.key_id == witness.key_id()).ok_or_else(|| {
        let found: Vec<String> = lines.iter().map(|l| format!("{}+{:08x}", l.name, l.key_id)).collect();
        CosignatureError::NotFromWitness {
            name: witness.name().to_string(),
            key_id: witness.key_id(),
            found: found.join(", "),
        }
    })?;
    let cosignature = verify_cosignature(ours, checkpoint, witness)?;
    Ok((ours.clone(), cosignature))
}

/// Verifies one cosignature line by `witness` over `checkpoint`.
pub fn verify_cosignature(
    line: &SignatureLine,
    checkpoint: &Checkpoint,
    witness: &WitnessVerifier,
) -> Result<Cosignature, CosignatureError> {
    let name = witness.name().to_string();
    if line.name != witness.name() || line.key_id != witness.key_id() {
        let found = format!("{}+{:08x}", line.name, line.key_id);
        return Err(CosignatureError::NotFromWitness { name, key_id: witness.key_id(), found });
    }
    if line.signature.len() != COSIGNATURE_V1_SIZE {
        return Err(CosignatureError::WrongLength { name, found: line.signature.len() });
    }
    let timestamp = u64::from_be_bytes(line.signature[..8].try_into().expect("8 bytes"));
    if timestamp == 0 {
        return Err(CosignatureError::TimestampZero { name });
    }
    let Some((timestamp, _)) = split_cosignature(&line.signature) else {
        return Err(CosignatureError::TimestampTooLarge { name, timestamp });
    };
    let body = checkpoint.body();
    if !signed_note::Verifier::verify(witness, body.as_bytes(), &line.signature) {
        return Err(CosignatureError::BadSignature {
            name,
            key_id: witness.key_id(),
            origin: checkpoint.origin.clone(),
            size: checkpoint.size,
        });
    }
    Ok(Cosignature { name, key_id: witness.key_id(), timestamp })
}

/// Adds `witness`'s cosignature `line` to the signed checkpoint `note` as one more
/// signature line (replacing an earlier one by the same key). The line is verified
/// over the note's body first.
pub fn attach_cosignature(note: &[u8], line: &SignatureLine, witness: &WitnessVerifier) -> Result<Vec<u8>, NoteError> {
    let Some((timestamp, signature)) = split_cosignature(&line.signature) else {
        return Err(NoteError::BadSignature { name: line.name.clone(), key_id: line.key_id });
    };
    let signature: &[u8; 64] = signature.try_into().expect("split_cosignature checked the length");
    add_cosignature(note, witness, timestamp, signature)
}

/// A witness's cosigning key: Ed25519, signature type 0x04 (C2SP tlog-cosignature).
#[derive(Clone)]
pub struct WitnessSigner {
    key: SigningKey,
    verifier: WitnessVerifier,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessSigner({})", self.verifier.vkey())
    }
}

impl WitnessSigner {
    /// The witness `name` (a schema-less URL, e.g. `witness.example.org/w1`) with the
    /// Ed25519 key of this 32-byte seed (RFC 8032).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<WitnessSigner, KeyError> {
        let key = SigningKey::from_bytes(seed);
        let verifier = WitnessVerifier::from_public_key(name, key.verifying_key().as_bytes())?;
        Ok(WitnessSigner { key, verifier })
    }

    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    pub fn key_id(&self) -> u32 {
        self.verifier.key_id()
    }

    /// The witness's vkey, `<name>+<key ID>+<base64(0x04 ‖ public key)>`, for policies.
    pub fn vkey(&self) -> String {
        self.verifier.vkey()
    }

    pub fn verifier(&self) -> &WitnessVerifier {
        &self.verifier
    }

    /// Cosigns `checkpoint` at `timestamp` (POSIX seconds, 1..=2^63 − 1: C2SP
    /// tlog-witness forbids a zero timestamp).
    pub fn cosign(&self, checkpoint: &Checkpoint, timestamp: u64) -> SignatureLine {
        assert!((1..=COSIGNATURE_TIMESTAMP_MAX).contains(&timestamp), "cosignature timestamp {timestamp}");
        let message = cosignature_message(checkpoint.body().as_bytes(), timestamp);
        let mut signature = timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&self.key.sign(&message).to_bytes());
        let line = SignatureLine { name: self.name().to_string(), key_id: self.key_id(), signature };
        debug_assert!(verify_cosignature(&line, checkpoint, &self.verifier).is_ok());
        debug_assert_eq!(line.key_id, crate::note::key_id(self.name(), SIGNATURE_TYPE_COSIGNATURE_V1, self.public()));
        line
    }

    fn public(&self) -> &[u8; 32] {
        self.verifier.public_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::note::{verify_cosigned_checkpoint, LogSigner};

    /// The C2SP tlog-checkpoint / tlog-cosignature example checkpoint.
    fn sofa() -> Checkpoint {
        let root = Hash::from_base64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=").unwrap();
        Checkpoint::new("example.com/behind-the-sofa", 20_852_163, root).unwrap()
    }

    fn seed() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    /// Made by the `aics-tlog` Python package (0.2.1), an implementation we did not
    /// write, from seed 00 01 … 1f, name witness.example.com/w1, time 1679315147:
    /// `sign_cosignature` and `format_signature_line`, `format_vkey(cosignature_vkey)`.
    const INDEPENDENT_VKEY: &str = "witness.example.com/w1+a0059f11+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
    const INDEPENDENT_LINE: &str = "— witness.example.com/w1 oAWfEQAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83rE1nFZsVE8YiWV6Ngr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n";

    #[test]
    fn cosignature_bytes_match_an_independent_implementation() {
        let signer = WitnessSigner::from_seed("witness.example.com/w1", &seed()).unwrap();
        assert_eq!(signer.vkey(), INDEPENDENT_VKEY);
        let line = signer.cosign(&sofa(), 1_679_315_147);
        assert_eq!(line.to_line(), INDEPENDENT_LINE);
        let parsed = parse_signature_lines(INDEPENDENT_LINE.as_bytes()).unwrap();
        let witness = WitnessVerifier::from_vkey(INDEPENDENT_VKEY).unwrap();
        let cosig = verify_cosignature(&parsed[0], &sofa(), &witness).unwrap();
        assert_eq!(cosig.timestamp, 1_679_315_147);
        // The signed message, byte for byte (C2SP tlog-cosignature §Ed25519 signed message).
        assert_eq!(
            cosignature_message(sofa().body().as_bytes(), 1_679_315_147),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    #[test]
    fn spec_example_line_has_the_cosignature_layout() {
        // C2SP tlog-cosignature's example: key ID, then time 1679315147 (0x6418_50cb),
        // then 64 signature bytes. Its key is not published, so only the layout is checked.
        let line = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
        let parsed = &parse_signature_lines(line.as_bytes()).unwrap()[0];
        assert_eq!(parsed.name, "witness.example.com/w1");
        assert_eq!(parsed.key_id, 0x8d66_cf3f);
        assert_eq!(parsed.signature.len(), COSIGNATURE_V1_SIZE);
        assert_eq!(u64::from_be_bytes(parsed.signature[..8].try_into().unwrap()), 1_679_315_147);
        assert_eq!(parsed.to_line(), line);
        // The tlog-witness example answer: three lines, two witnesses.
        let answer = "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\
— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\
— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";
        let lines = parse_signature_lines(answer.as_bytes()).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["witness.example/w1", "witness.example/w1", "witness.example/w2"]
        );
    }

    #[test]
    fn answers_are_checked_line_by_line() {
        use CosignatureError as E;
        let signer = WitnessSigner::from_seed("w.example/1", &[3; 32]).unwrap();
        let witness = signer.verifier().clone();
        let good = signer.cosign(&sofa(), 100).to_line();
        assert!(verify_witness_answer(good.as_bytes(), &sofa(), &witness).is_ok());
        // Unknown keys are ignored, but one of ours must be there.
        let stranger = WitnessSigner::from_seed("w.example/2", &[4; 32]).unwrap().cosign(&sofa(), 100).to_line();
        let both = format!("{stranger}{good}");
        assert_eq!(verify_witness_answer(both.as_bytes(), &sofa(), &witness).unwrap().1.timestamp, 100);
        assert!(matches!(
            verify_witness_answer(stranger.as_bytes(), &sofa(), &witness),
            Err(E::NotFromWitness { found, .. }) if found.starts_with("w.example/2+")
        ));
        // Same name, another key (a forger): its key ID differs, so it is not ours.
        let forger = WitnessSigner::from_seed("w.example/1", &[5; 32]).unwrap().cosign(&sofa(), 100).to_line();
        assert!(matches!(verify_witness_answer(forger.as_bytes(), &sofa(), &witness), Err(E::NotFromWitness { .. })));
        // Our key ID over another checkpoint.
        let other = Checkpoint::new(&sofa().origin, sofa().size + 1, sofa().root).unwrap();
        let over_other = signer.cosign(&other, 100).to_line();
        assert!(matches!(
            verify_witness_answer(over_other.as_bytes(), &sofa(), &witness),
            Err(E::BadSignature { size: 20_852_163, .. })
        ));
        // Our key ID, a forged signature.
        let mut forged = signer.cosign(&sofa(), 100);
        forged.signature[20] ^= 1;
        assert!(matches!(
            verify_witness_answer(forged.to_line().as_bytes(), &sofa(), &witness),
            Err(E::BadSignature { .. })
        ));
        let mut zero = signer.cosign(&sofa(), 100);
        zero.signature[..8].copy_from_slice(&[0; 8]);
        assert!(matches!(
            verify_witness_answer(zero.to_line().as_bytes(), &sofa(), &witness),
            Err(E::TimestampZero { .. })
        ));
        let mut short = signer.cosign(&sofa(), 100);
        short.signature.truncate(64);
        assert!(matches!(
            verify_witness_answer(short.to_line().as_bytes(), &sofa(), &witness),
            Err(E::WrongLength { found: 64, .. })
        ));
        // Garbage.
        assert_eq!(parse_signature_lines(b""), Err(E::AnswerEmpty));
        assert_eq!(parse_signature_lines(b"\xff\n"), Err(E::AnswerNotUtf8));
        assert_eq!(parse_signature_lines(good.trim_end().as_bytes()), Err(E::AnswerNoFinalNewline));
        assert!(matches!(parse_signature_lines(b"<html>oops</html>\n"), Err(E::NotASignatureLine { line: 1, .. })));
        assert_eq!(parse_signature_lines("— w.example/1 !!!!\n".as_bytes()), Err(E::BadBase64 { line: 1 }));
        assert_eq!(parse_signature_lines("— w.example/1 AAAA\n".as_bytes()), Err(E::BadBase64 { line: 1 }));
        assert!(matches!(parse_signature_lines(&vec![b'a'; ANSWER_SIZE_MAX + 1]), Err(E::AnswerTooLarge { .. })));
        let many = good.repeat(ANSWER_LINES_MAX + 1);
        assert!(matches!(parse_signature_lines(many.as_bytes()), Err(E::AnswerTooManyLines { .. })));
    }

    #[test]
    fn a_cosigned_note_verifies_with_the_witness_key() {
        let log = LogSigner::from_seed("example.com/behind-the-sofa", &[1; 32]).unwrap();
        let note = log.sign_checkpoint(&sofa()).unwrap();
        let signer = WitnessSigner::from_seed("w.example/1", &[3; 32]).unwrap();
        let line = signer.cosign(&sofa(), 1_700_000_000);
        let cosigned = attach_cosignature(&note, &line, signer.verifier()).unwrap();
        assert!(String::from_utf8(cosigned.clone()).unwrap().ends_with(&line.to_line()));
        let (_, cosigs) =
            verify_cosigned_checkpoint(&cosigned, &log.verifier(), std::slice::from_ref(signer.verifier())).unwrap();
        assert_eq!(cosigs.len(), 1);
    }
}
