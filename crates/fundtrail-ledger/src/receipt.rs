//! C2SP tlog-proof receipts: an offline-verifiable proof that an entry is in the ledger.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>            (optional; FundTrail: the salt behind a donor commitment)
//! index <n>
//! <base64 hash>             (zero or more: the inclusion proof, leaf's sibling first)
//!
//! <the signed checkpoint, verbatim>
//! ```

use crate::checkpoint::Checkpoint;
use crate::entry::{decode_entry, EntryError};
use crate::hash::{leaf_hash, Hash};
use crate::note::{LogVerifier, NoteError, NOTE_SIZE_MAX};
use crate::tree::{verify_inclusion, TreeError, INCLUSION_PROOF_HASHES_MAX};
use base64::prelude::*;
use thiserror::Error;

/// First line of every receipt.
pub const RECEIPT_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Largest `extra` payload accepted, in decoded bytes.
pub const RECEIPT_EXTRA_SIZE_MAX: usize = 1024;
/// Largest receipt accepted: header, extra, index, a full proof and the largest note.
pub const RECEIPT_SIZE_MAX: usize =
    64 + 2 * RECEIPT_EXTRA_SIZE_MAX + 32 + 45 * INCLUSION_PROOF_HASHES_MAX + NOTE_SIZE_MAX;

/// A parsed (not yet verified) receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Opaque application data; not authenticated by the receipt.
    pub extra: Option<Vec<u8>>,
    /// Index of the entry in the ledger.
    pub index: u64,
    /// The inclusion proof of the entry in the checkpoint's tree.
    pub proof: Vec<Hash>,
    /// The signed checkpoint (a signed note, possibly cosigned), verbatim.
    pub checkpoint: Vec<u8>,
}

/// What the receipt is about: the entry bytes, or only its leaf hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafInput<'a> {
    Entry(&'a [u8]),
    LeafHash(Hash),
}

/// A receipt that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    pub checkpoint: Checkpoint,
    pub index: u64,
    pub leaf: Hash,
    /// Still unauthenticated: the caller checks it against what it commits to.
    pub extra: Option<Vec<u8>>,
}

/// Why a receipt was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("receipt: {size} bytes exceeds the maximum of {RECEIPT_SIZE_MAX}")]
    TooLarge { size: usize },
    #[error("receipt: not valid UTF-8")]
    NotUtf8,
    #[error("receipt: first line must be {RECEIPT_HEADER:?}")]
    BadHeader,
    #[error("receipt: extra line is not \"extra <standard base64>\"")]
    BadExtra,
    #[error("receipt: extra of {size} bytes exceeds the maximum of {RECEIPT_EXTRA_SIZE_MAX}")]
    ExtraTooLarge { size: usize },
    #[error("receipt: missing \"index <n>\" line")]
    MissingIndex,
    #[error("receipt: index {text:?} is not a decimal without leading zeros")]
    BadIndex { text: String },
    #[error("receipt: proof line {line} is not a base64 SHA-256 hash")]
    BadProofHash { line: usize },
    #[error("receipt: {found} proof hashes exceeds the maximum of {INCLUSION_PROOF_HASHES_MAX}")]
    TooManyProofHashes { found: usize },
    #[error("receipt: no empty line and checkpoint after the proof")]
    MissingCheckpoint,
    #[error("receipt for index {index}: {source}")]
    Checkpoint {
        index: u64,
        #[source]
        source: NoteError,
    },
    #[error("receipt for index {index}: {source}")]
    Inclusion {
        index: u64,
        #[source]
        source: TreeError,
    },
    #[error("receipt for index {receipt_index}: the entry given has index {entry_index}")]
    EntryIndexMismatch { receipt_index: u64, entry_index: u64 },
    #[error("receipt for index {index}: {source}")]
    Entry {
        index: u64,
        #[source]
        source: EntryError,
    },
}

impl Receipt {
    /// The receipt's text.
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.proof.len() <= INCLUSION_PROOF_HASHES_MAX);
        let mut out = format!("{RECEIPT_HEADER}\n");
        if let Some(extra) = &self.extra {
            assert!(extra.len() <= RECEIPT_EXTRA_SIZE_MAX);
            out.push_str(&format!("extra {}\n", BASE64_STANDARD.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            out.push_str(&hash.to_base64());
            out.push('\n');
        }
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        debug_assert_eq!(Receipt::parse(&out).as_ref(), Ok(self));
        out
    }

    /// Parses a receipt's text; verifies nothing.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        if bytes.len() > RECEIPT_SIZE_MAX {
            return Err(ReceiptError::TooLarge { size: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ReceiptError::NotUtf8)?;
        let (header, mut rest) = text.split_once('\n').ok_or(ReceiptError::BadHeader)?;
        if header != RECEIPT_HEADER {
            return Err(ReceiptError::BadHeader);
        }
        let mut line = next_line(&mut rest).ok_or(ReceiptError::MissingIndex)?;
        let mut extra = None;
        if line.starts_with("extra") {
            extra = Some(parse_extra(line)?);
            line = next_line(&mut rest).ok_or(ReceiptError::MissingIndex)?;
        }
        let index = parse_index(line)?;
        let mut proof = Vec::new();
        loop {
            let line = next_line(&mut rest).ok_or(ReceiptError::MissingCheckpoint)?;
            if line.is_empty() {
                break;
            }
            if proof.len() == INCLUSION_PROOF_HASHES_MAX {
                return Err(ReceiptError::TooManyProofHashes { found: proof.len() + 1 });
            }
            let hash = Hash::from_base64(line).ok_or(ReceiptError::BadProofHash { line: proof.len() + 1 })?;
            proof.push(hash);
        }
        if rest.is_empty() {
            return Err(ReceiptError::MissingCheckpoint);
        }
        Ok(Receipt { extra, index, proof, checkpoint: rest.as_bytes().to_vec() })
    }
}

/// Takes the next newline-terminated line; `None` when no complete line is left.
fn next_line<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (line, tail) = rest.split_once('\n')?;
    *rest = tail;
    Some(line)
}

fn parse_extra(line: &str) -> Result<Vec<u8>, ReceiptError> {
    let b64 = line.strip_prefix("extra ").ok_or(ReceiptError::BadExtra)?;
    if b64.len() > 4 * RECEIPT_EXTRA_SIZE_MAX.div_ceil(3) {
        return Err(ReceiptError::ExtraTooLarge { size: b64.len() / 4 * 3 });
    }
    let extra = BASE64_STANDARD.decode(b64).map_err(|_| ReceiptError::BadExtra)?;
    if extra.len() > RECEIPT_EXTRA_SIZE_MAX {
        return Err(ReceiptError::ExtraTooLarge { size: extra.len() });
    }
    Ok(extra)
}

fn parse_index(line: &str) -> Result<u64, ReceiptError> {
    let text = line.strip_prefix("index ").ok_or(ReceiptError::MissingIndex)?;
    let bad = || ReceiptError::BadIndex { text: text.to_string() };
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// Builds the receipt for entry `index` from its inclusion proof in the tree of the
/// signed checkpoint `checkpoint_note`.
pub fn build_receipt(index: u64, proof: Vec<Hash>, checkpoint_note: &[u8], extra: Option<Vec<u8>>) -> Vec<u8> {
    Receipt { extra, index, proof, checkpoint: checkpoint_note.to_vec() }.to_bytes()
}

/// Verifies a receipt against the log's key: the checkpoint's log signature, then that
/// the entry (or leaf hash) sits at the receipt's index in the checkpoint's tree. Given
/// entry bytes, the entry's own index must be the receipt's.
pub fn verify_receipt(receipt: &[u8], leaf: LeafInput<'_>, log: &LogVerifier) -> Result<VerifiedReceipt, ReceiptError> {
    let receipt = Receipt::parse(receipt)?;
    let index = receipt.index;
    let leaf = match leaf {
        LeafInput::LeafHash(hash) => hash,
        LeafInput::Entry(entry) => {
            let decoded = decode_entry(entry).map_err(|source| ReceiptError::Entry { index, source })?;
            if decoded.index != index {
                return Err(ReceiptError::EntryIndexMismatch { receipt_index: index, entry_index: decoded.index });
            }
            leaf_hash(entry)
        }
    };
    let checkpoint =
        log.verify_checkpoint(&receipt.checkpoint).map_err(|source| ReceiptError::Checkpoint { index, source })?;
    verify_inclusion(&receipt.proof, index, checkpoint.size, &leaf, &checkpoint.root)
        .map_err(|source| ReceiptError::Inclusion { index, source })?;
    Ok(VerifiedReceipt { checkpoint, index, leaf, extra: receipt.extra })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_parses() {
        // The C2SP tlog-proof example, its elided ("[...]") signature shortened to a
        // well-formed line and its extra line cut to valid base64.
        let text = "c2sp.org/tlog-proof@v1\n\
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\n\
index 73894\n\
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n\
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n\
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n\
\n\
example.com/fancylog\n\
109482\n\
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\
\n\
— example.com/fancylog hI2DJw==\n";
        let receipt = Receipt::parse(text.as_bytes()).unwrap();
        assert_eq!(receipt.index, 73_894);
        assert_eq!(receipt.proof.len(), 5);
        assert_eq!(receipt.extra.as_deref(), Some(&b"age-v1.2.1-darwin-arm64.tar.gz"[..]));
        assert!(receipt.checkpoint.starts_with(b"example.com/fancylog\n109482\n"));
        assert_eq!(receipt.to_bytes(), text.as_bytes());
    }

    #[test]
    fn parse_errors() {
        use ReceiptError as E;
        let p = |s: &str| Receipt::parse(s.as_bytes());
        assert_eq!(p("c2sp.org/tlog-proof@v2\n"), Err(E::BadHeader));
        assert_eq!(p("c2sp.org/tlog-proof@v1\n"), Err(E::MissingIndex));
        assert_eq!(p("c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\nx"), Err(E::BadExtra));
        assert_eq!(p("c2sp.org/tlog-proof@v1\nextraAA\nindex 1\n\nx"), Err(E::BadExtra));
        assert_eq!(p("c2sp.org/tlog-proof@v1\nindex 01\n\nx"), Err(E::BadIndex { text: "01".into() }));
        assert_eq!(p("c2sp.org/tlog-proof@v1\nindex 1\nnot-a-hash\n\nx"), Err(E::BadProofHash { line: 1 }));
        assert_eq!(p("c2sp.org/tlog-proof@v1\nindex 1\n"), Err(E::MissingCheckpoint));
        assert_eq!(p("c2sp.org/tlog-proof@v1\nindex 1\n\n"), Err(E::MissingCheckpoint));
        let many = format!(
            "c2sp.org/tlog-proof@v1\nindex 1\n{}\nx",
            format!("{}\n", Hash::default()).repeat(INCLUSION_PROOF_HASHES_MAX + 1)
        );
        assert_eq!(p(&many), Err(E::TooManyProofHashes { found: INCLUSION_PROOF_HASHES_MAX + 1 }));
    }
}
