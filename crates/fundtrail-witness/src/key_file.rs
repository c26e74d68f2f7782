//! The witness's private key file: one line in the shape of a Go `note` signer key,
//! with the cosignature signature type (C2SP tlog-cosignature, 0x04):
//!
//! ```text
//! PRIVATE+KEY+<name>+<key ID, 8 hex digits>+<base64(0x04 ‖ 32-byte Ed25519 seed)>
//! ```
//!
//! Generated from the OS random number generator and written with mode 0600, never over
//! an existing file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::prelude::*;
use fundtrail_ledger::note::SIGNATURE_TYPE_COSIGNATURE_V1;
use fundtrail_ledger::{KeyError, WitnessSigner};
use thiserror::Error;

const PREFIX: &str = "PRIVATE+KEY+";
/// Largest key file read, in bytes.
pub const KEY_FILE_SIZE_MAX: u64 = 1024;

/// Why a witness key file could not be made or read. Never shows the key.
#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("witness key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("witness key file {path}: larger than {KEY_FILE_SIZE_MAX} bytes")]
    TooLarge { path: String },
    #[error("witness key file {path}: not of the form PRIVATE+KEY+<name>+<id>+<base64(0x04 ‖ seed)>")]
    Malformed { path: String },
    #[error("witness key file {path}: key ID {found:08x} does not match the key ({expected:08x})")]
    KeyIdMismatch { path: String, found: u32, expected: u32 },
    #[error("witness key file {path}: {source}")]
    Key {
        path: String,
        #[source]
        source: KeyError,
    },
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// A new witness key named `name`, from the OS random number generator.
pub fn generate(name: &str) -> Result<(WitnessSigner, [u8; 32]), KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
    let signer =
        WitnessSigner::from_seed(name, &seed).map_err(|source| KeyFileError::Key { path: "-".into(), source })?;
    Ok((signer, seed))
}

/// The key file's text for `seed` under `name`.
pub fn to_text(signer: &WitnessSigner, seed: &[u8; 32]) -> String {
    let mut raw = vec![SIGNATURE_TYPE_COSIGNATURE_V1];
    raw.extend_from_slice(seed);
    format!("{PREFIX}{}+{:08x}+{}\n", signer.name(), signer.key_id(), BASE64_STANDARD.encode(raw))
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing file.
pub fn write_new(path: &Path, signer: &WitnessSigner, seed: &[u8; 32]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.display().to_string(), source };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    file.write_all(to_text(signer, seed).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a witness key file.
pub fn read(path: &Path) -> Result<WitnessSigner, KeyFileError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io { path: shown.clone(), source };
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(io)?;
    file.take(KEY_FILE_SIZE_MAX + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > KEY_FILE_SIZE_MAX {
        return Err(KeyFileError::TooLarge { path: shown });
    }
    parse(text.trim_end_matches('\n'), &shown)
}

fn parse(text: &str, path: &str) -> Result<WitnessSigner, KeyFileError> {
    let malformed = || KeyFileError::Malformed { path: path.to_string() };
    let rest = text.strip_prefix(PREFIX).ok_or_else(malformed)?;
    // The base64 may contain '+': take the name and the ID from the left.
    let (name, rest) = rest.split_once('+').ok_or_else(malformed)?;
    let (id_hex, b64) = rest.split_once('+').ok_or_else(malformed)?;
    let id_ok = id_hex.len() == 8 && id_hex.bytes().all(|b| b.is_ascii_hexdigit());
    let found = u32::from_str_radix(id_hex, 16).ok().filter(|_| id_ok).ok_or_else(malformed)?;
    let raw = BASE64_STANDARD.decode(b64).map_err(|_| malformed())?;
    let seed: [u8; 32] = match raw.split_first() {
        Some((&SIGNATURE_TYPE_COSIGNATURE_V1, seed)) => seed.try_into().map_err(|_| malformed())?,
        _ => return Err(malformed()),
    };
    let signer =
        WitnessSigner::from_seed(name, &seed).map_err(|source| KeyFileError::Key { path: path.into(), source })?;
    if signer.key_id() != found {
        return Err(KeyFileError::KeyIdMismatch { path: path.into(), found, expected: signer.key_id() });
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.key");
        let (signer, seed) = generate("witness.example/w1").unwrap();
        write_new(&path, &signer, &seed).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&path).unwrap().vkey(), signer.vkey());
        assert!(matches!(write_new(&path, &signer, &seed), Err(KeyFileError::Io { .. })), "never overwrites");
        let (other, _) = generate("witness.example/w1").unwrap();
        assert_ne!(other.vkey(), signer.vkey());
    }

    #[test]
    fn bad_key_files_are_refused_without_showing_the_key() {
        let (signer, seed) = generate("w.example").unwrap();
        let text = to_text(&signer, &seed);
        assert!(parse(text.trim_end(), "k").is_ok());
        let wrong_id = text.replacen(&format!("{:08x}", signer.key_id()), "00000000", 1);
        assert!(matches!(parse(wrong_id.trim_end(), "k"), Err(KeyFileError::KeyIdMismatch { found: 0, .. })));
        let err = parse("PRIVATE+KEY+w.example+00000000+AQID", "k").unwrap_err();
        assert!(matches!(err, KeyFileError::Malformed { .. }));
        assert!(!err.to_string().contains("AQID"));
        assert!(matches!(parse("hello", "k"), Err(KeyFileError::Malformed { .. })));
    }
}
