//! Private files on disk: actor key files and donor files, created with mode 0600 from
//! the start (no window in which they are readable by others) and never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use fundtrail_envelope::ActorKey;

/// Creates `path` (which must not exist) with mode 0600 and writes `text`; `durable`
/// syncs it to disk before returning.
pub fn write_private(path: &Path, text: &str, durable: bool) -> Result<()> {
    let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("cannot create {}: it exists already (a private file is never overwritten)", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(text.as_bytes())?;
    if durable {
        file.sync_all()?;
    }
    Ok(())
}

/// Reads a key file (the text format of `fundtrail_envelope::keys`).
pub fn load(path: &Path) -> Result<ActorKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    ActorKey::from_file_text(&text).with_context(|| format!("{}", path.display()))
}

/// Writes a new key file, synced to disk.
pub fn write(path: &Path, key: &ActorKey) -> Result<()> {
    write_private(path, &key.to_file_text(), true)
}

/// Reads a key file, or creates one from the OS RNG when there is none.
pub fn load_or_create(path: &Path) -> Result<ActorKey> {
    if path.exists() {
        return load(path);
    }
    let key = ActorKey::generate()?;
    write(path, &key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_read_back_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&path).unwrap().key_id(), key.key_id());
        let again = ActorKey::generate().unwrap();
        let err = write(&path, &again).unwrap_err();
        assert!(format!("{err:#}").contains("exists already"), "{err:#}");
        assert_eq!(load(&path).unwrap().key_id(), key.key_id());
    }
}
