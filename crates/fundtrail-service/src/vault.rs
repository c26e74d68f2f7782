//! The private donor vault: who stands behind a donor commitment (design
//! invariant 8, "The public ledger").
//!
//! The public stream and ledger name a donor only by a salted commitment,
//! `SHA-256(tag ‖ salt ‖ reference)` ([`donor_commitment`]). The vault is the one
//! place that can turn a commitment back into a person: it keeps the salt, the
//! reference the intake service knows the donor by (phone, customer number), and
//! optionally a name, a contact and the donor's consent to be thanked in public.
//!
//! It is its own sled database (`<data>/vault`, see [`VAULT_DIR`]), apart from the
//! log and the projections, because it is the only store that may forget: the log
//! is append-only and the projections are rebuilt from it.
//!
//! **Erasure.** [`DonorVault::erase`] removes the name, the contact, the reference
//! *and the salt*, and keeps only a tombstone ([`Erased`]: the commitment and when
//! it was erased) so that an erasure is provable and repeating it is harmless.
//! What survives is, by design, what the public ledger already holds: the
//! commitment and the amounts given under it. Without the salt and the reference
//! the commitment is a random-looking 256-bit value: after erasure nobody — not
//! the fund, not the host, not an attacker with the whole database — can link it
//! to the person again (short of the donor producing their own receipt file).
//!
//! What erasure does not reach: copies outside this database (the donor's own
//! receipt file, backups of `<data>/vault`), and bytes sled has not yet reclaimed
//! in its log-structured files (see [`DonorVault::erase`]).
//!
//! **Limits** (named constants): [`NAME_CHARS_MAX`], [`CONTACT_CHARS_MAX`],
//! [`REFERENCE_CHARS_MAX`], [`LIST_LIMIT_MAX`].
//!
//! **Durability:** every change is flushed before it is answered.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fundtrail_domain::{donor_commitment, Sha256Hex};
use serde::{Deserialize, Serialize};

use crate::Clock;

/// The vault's directory inside the service's data directory.
pub const VAULT_DIR: &str = "vault";
/// Size of the salt behind a commitment, in bytes.
pub const SALT_BYTES: usize = 32;
/// Longest donor name, in characters (Unicode scalar values).
pub const NAME_CHARS_MAX: usize = 200;
/// Longest contact (phone, e-mail, address), in characters.
pub const CONTACT_CHARS_MAX: usize = 200;
/// Longest donor reference, in characters.
pub const REFERENCE_CHARS_MAX: usize = 200;
/// Largest page [`DonorVault::list`] returns.
pub const LIST_LIMIT_MAX: usize = 500;

/// The sled tree holding one value per commitment: a record or a tombstone.
const DONORS_TREE: &[u8] = b"donors";

/// Who stands behind one commitment. `Debug` never prints the personal fields.
#[derive(Clone, PartialEq, Eq)]
pub struct DonorRecord {
    pub commitment: Sha256Hex,
    pub salt: [u8; SALT_BYTES],
    /// What identifies the donor to the intake service (phone, customer number).
    pub reference: String,
    pub name: Option<String>,
    pub contact: Option<String>,
    /// The donor agreed to be thanked by name in public.
    pub consent_public_thanks: bool,
}

impl fmt::Debug for DonorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data stays out of logs and panic messages.
        f.debug_struct("DonorRecord")
            .field("commitment", &self.commitment)
            .field("salt", &"<redacted>")
            .field("reference", &"<redacted>")
            .field("name", &self.name.as_ref().map(|_| "<redacted>"))
            .field("contact", &self.contact.as_ref().map(|_| "<redacted>"))
            .field("consent_public_thanks", &self.consent_public_thanks)
            .finish()
    }
}

/// The tombstone an erasure leaves: proof that the commitment's owner was forgotten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub commitment: Sha256Hex,
    pub erased_at: DateTime<Utc>,
}

/// What the vault holds for a commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultEntry {
    Held(DonorRecord),
    Erased(Erased),
}

impl VaultEntry {
    pub fn commitment(&self) -> &Sha256Hex {
        match self {
            VaultEntry::Held(r) => &r.commitment,
            VaultEntry::Erased(e) => &e.commitment,
        }
    }
}

/// One raw (key, value) pair of some tree, from [`DonorVault::raw_dump`].
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// The outcome of a [`DonorVault::put`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The record is new.
    Created,
    /// The same record was already held: nothing changed.
    Unchanged,
}

/// One page of [`DonorVault::list`], in commitment order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultPage {
    pub entries: Vec<VaultEntry>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_after: Option<Sha256Hex>,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("donor commitment {commitment} does not match SHA-256(tag ‖ salt ‖ reference) = {computed}")]
    CommitmentMismatch { commitment: Sha256Hex, computed: Sha256Hex },
    #[error("donor {field} is {chars} characters long; at most {max} are kept")]
    FieldTooLong { field: &'static str, chars: usize, max: usize },
    #[error("donor reference is empty: the commitment must commit to what identifies the donor")]
    EmptyReference,
    #[error("donor commitment {commitment} is already held with different content")]
    Conflict { commitment: Sha256Hex },
    #[error("donor commitment {commitment} was erased at {erased_at}; an erased donor is never stored again")]
    AlreadyErased { commitment: Sha256Hex, erased_at: DateTime<Utc> },
    #[error("no donor record for commitment {commitment}")]
    Unknown { commitment: Sha256Hex },
    #[error("page limit {limit} is outside 1..={max}", max = LIST_LIMIT_MAX)]
    Limit { limit: usize },
    #[error("vault entry {key:?} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("vault storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("vault directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
}

/// The stored form of an entry; the commitment is the key.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
enum Stored {
    Held {
        salt_hex: String,
        reference: String,
        name: Option<String>,
        contact: Option<String>,
        consent_public_thanks: bool,
    },
    Erased {
        erased_at: DateTime<Utc>,
    },
}

impl Stored {
    fn of(record: &DonorRecord) -> Stored {
        Stored::Held {
            salt_hex: hex::encode(record.salt),
            reference: record.reference.clone(),
            name: record.name.clone(),
            contact: record.contact.clone(),
            consent_public_thanks: record.consent_public_thanks,
        }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a vault entry serialises")
    }
}

/// The private, erasable store of who stands behind each donor commitment.
/// Cheap to clone; every method blocks on disk I/O (call it off the async runtime).
#[derive(Clone)]
pub struct DonorVault {
    shared: Arc<Shared>,
}

struct Shared {
    dir: std::path::PathBuf,
    clock: Arc<dyn Clock>,
    /// Replaced whole when an erasure rewrites the vault into a fresh database.
    inner: std::sync::RwLock<Inner>,
}

struct Inner {
    db: sled::Db,
    donors: sled::Tree,
}

/// `<vault>.rewrite` and `<vault>.old`: the directories an erasure's rewrite uses.
fn sibling(dir: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Finishes or undoes a rewrite that a crash interrupted (see [`DonorVault::erase`]).
fn recover(dir: &Path) -> std::io::Result<()> {
    let (fresh, old) = (sibling(dir, "rewrite"), sibling(dir, "old"));
    if !dir.exists() && old.exists() && fresh.exists() {
        // The fresh copy was complete (flushed) before the first rename: finish.
        std::fs::rename(&fresh, dir)?;
    }
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?; // an unfinished copy
    }
    if old.exists() && dir.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// sled's page cache for the vault: the vault is read a record at a time, so
/// a small cache does (sled's default is 1 GB, which a large vault would fill).
pub const VAULT_CACHE_BYTES: u64 = 16 << 20;

fn vault_config(dir: &Path) -> sled::Config {
    sled::Config::new().path(dir).cache_capacity(VAULT_CACHE_BYTES)
}

impl DonorVault {
    /// Opens (or creates) the vault in `dir` — normally `<data>/vault` — readable
    /// by the owner only. Tombstones are stamped with `clock`.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<DonorVault, VaultError> {
        let io = |source| VaultError::Directory { path: dir.display().to_string(), source };
        recover(dir).map_err(io)?;
        std::fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let db = fundtrail_store::open_sled(&vault_config(dir))?;
        let donors = db.open_tree(DONORS_TREE)?;
        let inner = std::sync::RwLock::new(Inner { db, donors });
        Ok(DonorVault { shared: Arc::new(Shared { dir: dir.to_path_buf(), clock, inner }) })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.shared.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies what the vault holds now into a fresh database and swaps it in, so
    /// that the bytes of erased records, which sled's log keeps in superseded
    /// segments, leave the vault's files. Crash-safe: the copy is flushed before
    /// the first rename, and [`recover`] finishes or undoes an interrupted swap.
    fn rewrite(&self, inner: &mut Inner) -> Result<(), VaultError> {
        let dir = &self.shared.dir;
        let io = |source| VaultError::Directory { path: dir.display().to_string(), source };
        let (fresh_dir, old_dir) = (sibling(dir, "rewrite"), sibling(dir, "old"));
        if fresh_dir.exists() {
            std::fs::remove_dir_all(&fresh_dir).map_err(io)?;
        }
        {
            let fresh = fundtrail_store::open_sled(&vault_config(&fresh_dir))?;
            let donors = fresh.open_tree(DONORS_TREE)?;
            for item in inner.donors.iter() {
                let (key, value) = item?;
                donors.insert(key, value)?;
            }
            fresh.flush()?;
        }
        // Close the current database before moving its directory.
        let placeholder = sled::Config::new().temporary(true).open()?;
        inner.donors = placeholder.open_tree(DONORS_TREE)?;
        inner.db = placeholder;
        std::fs::rename(dir, &old_dir).map_err(io)?;
        std::fs::rename(&fresh_dir, dir).map_err(io)?;
        std::fs::remove_dir_all(&old_dir).map_err(io)?;
        inner.db = fundtrail_store::open_sled(&vault_config(dir))?;
        inner.donors = inner.db.open_tree(DONORS_TREE)?;
        Ok(())
    }

    /// Stores a record, after checking that its salt and reference really produce
    /// its commitment. Storing the same record again is [`Put::Unchanged`]; a
    /// different record under a held commitment, or any record under an erased one,
    /// is refused.
    pub fn put(&self, record: &DonorRecord) -> Result<Put, VaultError> {
        check_record(record)?;
        let key = record.commitment.to_text();
        let key = key.as_bytes();
        let new = Stored::of(record).encode();
        let inner = self.read();
        let outcome = match inner.donors.compare_and_swap(key, None::<&[u8]>, Some(new.clone()))? {
            Ok(()) => Put::Created,
            Err(cas) => {
                let current = cas.current.expect("a failed swap from absent found a value");
                match decode(key, &current)? {
                    Stored::Erased { erased_at } => {
                        return Err(VaultError::AlreadyErased { commitment: record.commitment.clone(), erased_at })
                    }
                    held if held == Stored::of(record) => Put::Unchanged,
                    _ => return Err(VaultError::Conflict { commitment: record.commitment.clone() }),
                }
            }
        };
        inner.db.flush()?;
        drop(inner);
        debug_assert!(matches!(self.get(&record.commitment), Ok(Some(VaultEntry::Held(r))) if r == *record));
        Ok(outcome)
    }

    /// What the vault holds for `commitment`, if anything.
    pub fn get(&self, commitment: &Sha256Hex) -> Result<Option<VaultEntry>, VaultError> {
        let key = commitment.to_text();
        let key = key.as_bytes();
        match self.read().donors.get(key)? {
            None => Ok(None),
            Some(bytes) => entry(key, &bytes).map(Some),
        }
    }

    /// Forgets the donor behind `commitment`: name, contact, reference and salt are
    /// removed and replaced by a tombstone stamped with the clock's `now`.
    /// Erasing again answers the first tombstone, unchanged.
    ///
    /// After this, the commitment on the public stream can never again be linked to
    /// the person by anything the service holds: the salt was the only way to test a
    /// guess of the reference against it. The public ledger keeps the commitment
    /// and the amounts — that is the design, and without salt and reference they are
    /// anonymous.
    ///
    /// sled is log-structured: a superseded value stays in its segment files
    /// until sled reuses the space. So after replacing the record by its
    /// tombstone, the erasure rewrites the whole vault into a fresh database and
    /// deletes the old files: once this returns, no file of `<data>/vault` holds
    /// the erased fields (backups taken before are the operator's to expire).
    /// Erasures are rare; the rewrite is O(vault size).
    pub fn erase(&self, commitment: &Sha256Hex) -> Result<Erased, VaultError> {
        let key = commitment.to_text();
        let key = key.as_bytes();
        let erased_at = self.shared.clock.now();
        let mut inner = self.shared.inner.write().unwrap_or_else(|e| e.into_inner());
        let tombstone = Stored::Erased { erased_at }.encode();
        // Swap from exactly what was read, so that a concurrent put or erase is
        // never overwritten unseen: retry on a lost race (bounded by the states a
        // commitment can pass through: absent → held → erased).
        for _ in 0..3 {
            let Some(current) = inner.donors.get(key)? else {
                return Err(VaultError::Unknown { commitment: commitment.clone() });
            };
            if let Stored::Erased { erased_at } = decode(key, &current)? {
                return Ok(Erased { commitment: commitment.clone(), erased_at });
            }
            if inner.donors.compare_and_swap(key, Some(current), Some(tombstone.clone()))?.is_ok() {
                inner.db.flush()?;
                self.rewrite(&mut inner)?;
                drop(inner);
                debug_assert!(matches!(self.get(commitment), Ok(Some(VaultEntry::Erased(_)))));
                return Ok(Erased { commitment: commitment.clone(), erased_at });
            }
        }
        unreachable!("a commitment changed state more than three times during one erasure")
    }

    /// Entries in commitment order, strictly after `after`, at most `limit`
    /// (1..=[`LIST_LIMIT_MAX`]).
    pub fn list(&self, after: Option<&Sha256Hex>, limit: usize) -> Result<VaultPage, VaultError> {
        if limit == 0 || limit > LIST_LIMIT_MAX {
            return Err(VaultError::Limit { limit });
        }
        let inner = self.read();
        let range = match after {
            // Commitments are fixed-length, so the next key after `a` starts at `a ‖ 0x00`.
            Some(a) => inner.donors.range([a.to_text().as_bytes(), &[0]].concat()..),
            None => inner.donors.iter(),
        };
        let mut entries = Vec::with_capacity(limit.min(64));
        for item in range.take(limit) {
            let (key, value) = item?;
            entries.push(entry(&key, &value)?);
        }
        assert!(entries.len() <= limit);
        debug_assert!(entries.windows(2).all(|w| w[0].commitment() < w[1].commitment()));
        let next_after = (entries.len() == limit).then(|| entries.last().map(|e| e.commitment().clone())).flatten();
        Ok(VaultPage { entries, next_after })
    }

    /// How many commitments the vault knows (held and erased).
    pub fn len(&self) -> usize {
        self.read().donors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().donors.is_empty()
    }

    /// Every tree of the vault's database with every key and value, raw: for
    /// tests and audits that prove erased data is gone from the store.
    pub fn raw_dump(&self) -> Result<Vec<RawEntry>, VaultError> {
        let mut out = Vec::new();
        let inner = self.read();
        for name in inner.db.tree_names() {
            for item in inner.db.open_tree(&name)?.iter() {
                let (k, v) = item?;
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}

fn check_record(record: &DonorRecord) -> Result<(), VaultError> {
    check_length("reference", Some(&record.reference), REFERENCE_CHARS_MAX)?;
    check_length("name", record.name.as_deref(), NAME_CHARS_MAX)?;
    check_length("contact", record.contact.as_deref(), CONTACT_CHARS_MAX)?;
    if record.reference.is_empty() {
        return Err(VaultError::EmptyReference);
    }
    let computed = donor_commitment(&record.salt, &record.reference);
    if computed != record.commitment {
        return Err(VaultError::CommitmentMismatch { commitment: record.commitment.clone(), computed });
    }
    Ok(())
}

fn check_length(field: &'static str, value: Option<&str>, max: usize) -> Result<(), VaultError> {
    // Bytes bound characters from above: count only when it could matter.
    match value {
        Some(v) if v.len() > max && v.chars().count() > max => {
            Err(VaultError::FieldTooLong { field, chars: v.chars().count(), max })
        }
        _ => Ok(()),
    }
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Stored, VaultError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))
}

fn corrupt(key: &[u8], reason: String) -> VaultError {
    VaultError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason }
}

/// Decodes a stored entry and checks it again on the way out: a held record's
/// salt and reference still produce its key.
fn entry(key: &[u8], bytes: &[u8]) -> Result<VaultEntry, VaultError> {
    let text = std::str::from_utf8(key).map_err(|e| corrupt(key, e.to_string()))?;
    let commitment = Sha256Hex::new(text).map_err(|e| corrupt(key, e.to_string()))?;
    match decode(key, bytes)? {
        Stored::Erased { erased_at } => Ok(VaultEntry::Erased(Erased { commitment, erased_at })),
        Stored::Held { salt_hex, reference, name, contact, consent_public_thanks } => {
            let salt: [u8; SALT_BYTES] = hex::decode(&salt_hex)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| corrupt(key, format!("salt is not {SALT_BYTES} bytes of hex")))?;
            let record = DonorRecord { commitment, salt, reference, name, contact, consent_public_thanks };
            check_record(&record).map_err(|e| corrupt(key, e.to_string()))?;
            Ok(VaultEntry::Held(record))
        }
    }
}
