//! The C2SP tlog-witness wire format (§add-checkpoint), shared by the witness and the
//! log's client. Pure: bytes in, values out.
//!
//! ```text
//! old <size>\n                  ASCII decimal, no leading zeros ("0" for zero)
//! <base64 hash>\n               0..=63 consistency proof lines
//! \n
//! <signed checkpoint note>
//! ```
//!
//! A 409 answer's body is `<size>\n` with `Content-Type: text/x.tlog.size`.

use fundtrail_ledger::note::NOTE_SIZE_MAX;
use fundtrail_ledger::Hash;
use thiserror::Error;

/// Most consistency proof lines in a request (C2SP tlog-witness: "MUST NOT send more
/// than 63").
pub const PROOF_LINES_MAX: usize = 63;
/// Largest request body: the old line, 63 proof lines of 45 bytes, the blank line and
/// the largest note.
pub const REQUEST_SIZE_MAX: usize = 32 + PROOF_LINES_MAX * 45 + 1 + NOTE_SIZE_MAX;
/// The media type of a 409 answer (C2SP tlog-witness).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// Longest `text/x.tlog.size` body: 20 digits and a newline.
pub const SIZE_BODY_LEN_MAX: usize = 21;

/// An add-checkpoint request body, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint<'a> {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub note: &'a [u8],
}

/// Why a request body is not an add-checkpoint request (answered 400).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("request body: {size} bytes exceeds the maximum of {REQUEST_SIZE_MAX}")]
    TooLarge { size: usize },
    #[error("request body: no empty line between the old size and proof lines and the checkpoint")]
    NoBlankLine,
    #[error("request body: the first line must be \"old <size>\"")]
    NoOldLine,
    #[error("request body: old size {text:?} is not a decimal without leading zeros")]
    BadOldSize { text: String },
    #[error("request body: proof line {line} is not the standard base64 of a 32-byte hash")]
    BadProofLine { line: usize },
    #[error("request body: {found} consistency proof lines exceeds the maximum of {PROOF_LINES_MAX}")]
    TooManyProofLines { found: usize },
    #[error("request body: no checkpoint after the empty line")]
    NoCheckpoint,
}

/// Why a 409 answer's body is not a `text/x.tlog.size`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SizeBodyError {
    #[error("409 answer: content type {found:?}, expected {SIZE_CONTENT_TYPE}")]
    ContentType { found: String },
    #[error("409 answer: body {quoted:?} is not a decimal tree size and a newline")]
    Body { quoted: String },
}

/// Parses an add-checkpoint request body. The header (old size and proof lines) has no
/// empty line, so the first `\n\n` ends it.
pub fn parse_request(body: &[u8]) -> Result<AddCheckpoint<'_>, RequestError> {
    if body.len() > REQUEST_SIZE_MAX {
        return Err(RequestError::TooLarge { size: body.len() });
    }
    let split = body.windows(2).position(|w| w == b"\n\n").ok_or(RequestError::NoBlankLine)?;
    let (head, note) = (&body[..split], &body[split + 2..]);
    let head = std::str::from_utf8(head).map_err(|_| RequestError::NoOldLine)?;
    let mut lines = head.split('\n');
    let old_line = lines.next().unwrap_or_default();
    let old_text = old_line.strip_prefix("old ").ok_or(RequestError::NoOldLine)?;
    let old_size = parse_decimal(old_text).ok_or_else(|| RequestError::BadOldSize { text: old_text.into() })?;
    let mut proof = Vec::new();
    for (i, line) in lines.enumerate() {
        if proof.len() == PROOF_LINES_MAX {
            return Err(RequestError::TooManyProofLines { found: head.split('\n').count() - 1 });
        }
        proof.push(Hash::from_base64(line).ok_or(RequestError::BadProofLine { line: i + 1 })?);
    }
    if note.is_empty() {
        return Err(RequestError::NoCheckpoint);
    }
    Ok(AddCheckpoint { old_size, proof, note })
}

/// Writes an add-checkpoint request body.
pub fn format_request(old_size: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    assert!(proof.len() <= PROOF_LINES_MAX, "{} proof lines", proof.len());
    assert!(old_size > 0 || proof.is_empty(), "a proof from size 0");
    let mut out = format!("old {old_size}\n").into_bytes();
    for hash in proof {
        out.extend_from_slice(hash.to_base64().as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(note);
    debug_assert_eq!(parse_request(&out).map(|r| r.old_size), Ok(old_size));
    out
}

/// A 409 answer's body: the witness's latest cosigned size.
pub fn format_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Reads a 409 answer: its content type must be `text/x.tlog.size`.
pub fn parse_size_body(content_type: Option<&str>, body: &[u8]) -> Result<u64, SizeBodyError> {
    let found = content_type.unwrap_or_default();
    // Parameters (e.g. "; charset=utf-8") are tolerated; the media type is not.
    if found.split(';').next().unwrap_or_default().trim() != SIZE_CONTENT_TYPE {
        return Err(SizeBodyError::ContentType { found: found.chars().take(60).collect() });
    }
    let quoted = || SizeBodyError::Body { quoted: String::from_utf8_lossy(&body[..body.len().min(40)]).into() };
    if body.len() > SIZE_BODY_LEN_MAX {
        return Err(quoted());
    }
    let text = std::str::from_utf8(body).ok().and_then(|t| t.strip_suffix('\n')).ok_or_else(quoted)?;
    parse_decimal(text).ok_or_else(quoted)
}

/// An ASCII decimal without leading zeros ("0" for zero) that fits in 64 bits.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C2SP tlog-witness example request.
    const SPEC_REQUEST: &str = "old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
";

    #[test]
    fn spec_example_request() {
        let request = parse_request(SPEC_REQUEST.as_bytes()).unwrap();
        assert_eq!(request.old_size, 20_852_014);
        assert_eq!(request.proof.len(), 4);
        assert_eq!(request.proof[3].to_base64(), "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=");
        assert!(request.note.starts_with(b"example.com/behind-the-sofa\n20852163\n"));
        assert_eq!(format_request(request.old_size, &request.proof, request.note), SPEC_REQUEST.as_bytes());
    }

    #[test]
    fn each_malformation_has_its_error() {
        use RequestError as E;
        let note = "o\n1\nAAAA\n\n— o AAAA\n";
        let p = |s: String| parse_request(s.as_bytes()).map(|r| r.old_size);
        assert_eq!(p(format!("old 0\n\n{note}")), Ok(0));
        assert_eq!(p(format!("old 0\n{note}")), Err(E::BadProofLine { line: 1 }), "the note's own blank line");
        assert_eq!(p("old 0\n".into()), Err(E::NoBlankLine));
        assert_eq!(p("old 0\n\n".into()), Err(E::NoCheckpoint));
        assert_eq!(p(format!("new 0\n\n{note}")), Err(E::NoOldLine));
        assert_eq!(p(format!("old 01\n\n{note}")), Err(E::BadOldSize { text: "01".into() }));
        assert_eq!(p(format!("old -1\n\n{note}")), Err(E::BadOldSize { text: "-1".into() }));
        assert_eq!(p(format!("old  1\n\n{note}")), Err(E::BadOldSize { text: " 1".into() }));
        assert_eq!(
            p(format!("old 18446744073709551616\n\n{note}")),
            Err(E::BadOldSize { text: "18446744073709551616".into() })
        );
        assert_eq!(p(format!("old 5\nnot-a-hash\n\n{note}")), Err(E::BadProofLine { line: 1 }));
        let hash = format!("{}\n", Hash::default().to_base64());
        assert_eq!(p(format!("old 5\n{}\n{note}", hash.repeat(64))), Err(E::TooManyProofLines { found: 64 }));
        assert_eq!(p(format!("old 5\n{}\n{note}", hash.repeat(63))), Ok(5));
        assert!(matches!(parse_request(&vec![b'a'; REQUEST_SIZE_MAX + 1]), Err(E::TooLarge { .. })));
    }

    #[test]
    fn size_bodies() {
        assert_eq!(parse_size_body(Some("text/x.tlog.size"), b"42\n"), Ok(42));
        assert_eq!(parse_size_body(Some("text/x.tlog.size; charset=utf-8"), b"0\n"), Ok(0));
        assert!(matches!(parse_size_body(Some("text/plain"), b"42\n"), Err(SizeBodyError::ContentType { .. })));
        assert!(matches!(parse_size_body(None, b"42\n"), Err(SizeBodyError::ContentType { .. })));
        for bad in [&b"42"[..], b"042\n", b"x\n", b"\n", b"1 2\n", b"99999999999999999999999\n"] {
            assert!(matches!(parse_size_body(Some(SIZE_CONTENT_TYPE), bad), Err(SizeBodyError::Body { .. })));
        }
        assert_eq!(format_size_body(7), "7\n");
    }
}
