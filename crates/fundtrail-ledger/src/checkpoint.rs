//! C2SP tlog-checkpoint note text: exactly three lines, origin, tree size, root.
//!
//! FundTrail checkpoints carry no extension lines (the spec does not recommend them and
//! a monitor cannot audit them), so a body with a fourth line is refused.

use crate::hash::Hash;
use thiserror::Error;

/// Longest origin accepted, in bytes.
pub const ORIGIN_LEN_MAX: usize = 256;
/// Longest checkpoint body: origin, a 20-digit size, a 44-character root, 3 newlines.
pub const CHECKPOINT_BODY_LEN_MAX: usize = ORIGIN_LEN_MAX + 20 + 44 + 3;

/// A tree head: the log's origin, the tree size and the root hash at that size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Why a checkpoint body was refused. Each rule of C2SP tlog-checkpoint has its own.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("checkpoint body: {size} bytes exceeds the maximum of {CHECKPOINT_BODY_LEN_MAX}")]
    TooLong { size: usize },
    #[error("checkpoint body: does not end with a newline")]
    NoFinalNewline,
    #[error("checkpoint body: {found} lines, expected origin, size and root")]
    TooFewLines { found: usize },
    #[error("checkpoint body: {found} lines; extension lines are not accepted (exactly 3)")]
    ExtraLines { found: usize },
    #[error("checkpoint origin: empty")]
    OriginEmpty,
    #[error("checkpoint origin {origin:?}: contains a space, a plus sign or a control character")]
    OriginInvalid { origin: String },
    #[error("checkpoint origin: {size} bytes exceeds the maximum of {ORIGIN_LEN_MAX}")]
    OriginTooLong { size: usize },
    #[error("checkpoint tree size {text:?}: not a decimal number")]
    SizeNotDecimal { text: String },
    #[error("checkpoint tree size {text:?}: leading zeros")]
    SizeLeadingZero { text: String },
    #[error("checkpoint tree size {text:?}: does not fit in 64 bits")]
    SizeOverflow { text: String },
    #[error("checkpoint root {text:?}: not the standard base64 of a 32-byte hash")]
    RootMalformed { text: String },
}

impl Checkpoint {
    /// A checkpoint, validating the origin.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Checkpoint, CheckpointError> {
        check_origin(origin)?;
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }

    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        let body = format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64());
        debug_assert_eq!(Checkpoint::parse_body(&body).as_ref(), Ok(self));
        body
    }

    /// Parses a note text as a checkpoint of exactly three lines.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        if text.len() > CHECKPOINT_BODY_LEN_MAX {
            return Err(CheckpointError::TooLong { size: text.len() });
        }
        let text = text.strip_suffix('\n').ok_or(CheckpointError::NoFinalNewline)?;
        let lines: Vec<&str> = text.split('\n').collect();
        match lines.len() {
            0..=2 => {
                return Err(CheckpointError::TooFewLines { found: lines.len() });
            }
            3 => {}
            found => return Err(CheckpointError::ExtraLines { found }),
        }
        let origin = lines[0];
        check_origin(origin)?;
        let size = parse_size(lines[1])?;
        let root =
            Hash::from_base64(lines[2]).ok_or_else(|| CheckpointError::RootMalformed { text: lines[2].to_string() })?;
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() {
        return Err(CheckpointError::OriginEmpty);
    }
    if origin.len() > ORIGIN_LEN_MAX {
        return Err(CheckpointError::OriginTooLong { size: origin.len() });
    }
    // The origin is also the log's key name: a signed-note key name has no Unicode
    // spaces and no plus sign.
    if origin.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(CheckpointError::OriginInvalid { origin: origin.to_string() });
    }
    Ok(())
}

fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    let owned = || text.to_string();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointError::SizeNotDecimal { text: owned() });
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(CheckpointError::SizeLeadingZero { text: owned() });
    }
    text.parse().map_err(|_| CheckpointError::SizeOverflow { text: owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckpointError as E;

    const ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    #[test]
    fn spec_example_parses() {
        // The C2SP tlog-checkpoint example body.
        let body = format!("example.com/behind-the-sofa\n20852163\n{ROOT}\n");
        let cp = Checkpoint::parse_body(&body).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20_852_163);
        assert_eq!(cp.root.to_base64(), ROOT);
        assert_eq!(cp.body(), body);
    }

    #[test]
    fn each_rule_has_its_error() {
        let parse = |s: String| Checkpoint::parse_body(&s);
        assert_eq!(parse(format!("o\n1\n{ROOT}")), Err(E::NoFinalNewline));
        assert_eq!(parse("o\n1\n".into()), Err(E::TooFewLines { found: 2 }));
        assert_eq!(parse(format!("o\n1\n{ROOT}\next\n")), Err(E::ExtraLines { found: 4 }));
        assert_eq!(parse(format!("o\n1\n{ROOT}\n\n")), Err(E::ExtraLines { found: 4 }));
        assert_eq!(parse(format!("\n1\n{ROOT}\n")), Err(E::OriginEmpty));
        assert!(matches!(parse(format!("a b\n1\n{ROOT}\n")), Err(E::OriginInvalid { .. })));
        assert!(matches!(parse(format!("a+b\n1\n{ROOT}\n")), Err(E::OriginInvalid { .. })));
        assert_eq!(parse(format!("o\n01\n{ROOT}\n")), Err(E::SizeLeadingZero { text: "01".into() }));
        assert_eq!(parse(format!("o\n-1\n{ROOT}\n")), Err(E::SizeNotDecimal { text: "-1".into() }));
        assert_eq!(parse(format!("o\n+1\n{ROOT}\n")), Err(E::SizeNotDecimal { text: "+1".into() }));
        assert_eq!(parse(format!("o\n\n{ROOT}\n")), Err(E::SizeNotDecimal { text: "".into() }));
        assert_eq!(
            parse(format!("o\n18446744073709551616\n{ROOT}\n")),
            Err(E::SizeOverflow { text: "18446744073709551616".into() })
        );
        assert!(matches!(parse("o\n1\nnot-base64\n".into()), Err(E::RootMalformed { .. })));
        assert!(matches!(parse(format!("o\n1\n{}\n", &ROOT[..40])), Err(E::RootMalformed { .. })));
        assert!(matches!(
            parse(format!("{}\n1\n{ROOT}\n", "o".repeat(ORIGIN_LEN_MAX + 1))),
            Err(E::TooLong { .. }) | Err(E::OriginTooLong { .. })
        ));
        assert_eq!(parse(format!("o\n0\n{ROOT}\n")).map(|c| c.size), Ok(0), "size 0 is written 0");
    }
}
