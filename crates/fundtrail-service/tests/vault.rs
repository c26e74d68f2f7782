//! The private donor vault: given a record, when put / get / erase / list, then
//! what is held, what is refused, and what survives a restart.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use fundtrail_domain::{donor_commitment, Sha256Hex};
use fundtrail_service::vault::*;
use fundtrail_service::{Clock, ManualClock};

const NAME: &str = "Wang Xiuying the unmistakable";
const CONTACT: &str = "wang.xiuying@example.cn";
const REFERENCE: &str = "13800138000";

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
}

fn open(dir: &Path, clock: &ManualClock) -> DonorVault {
    DonorVault::open(&dir.join(VAULT_DIR), Arc::new(clock.clone())).expect("vault opens")
}

fn record(salt_byte: u8, reference: &str) -> DonorRecord {
    let salt = [salt_byte; SALT_BYTES];
    DonorRecord {
        commitment: donor_commitment(&salt, reference),
        salt,
        reference: reference.into(),
        name: Some(NAME.into()),
        contact: Some(CONTACT.into()),
        consent_public_thanks: false,
    }
}

#[test]
fn put_then_get_returns_the_record_and_a_second_put_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let r = record(1, REFERENCE);
    assert_eq!(vault.put(&r).unwrap(), Put::Created);
    assert_eq!(vault.get(&r.commitment).unwrap(), Some(VaultEntry::Held(r.clone())));
    assert_eq!(vault.put(&r).unwrap(), Put::Unchanged);
    assert_eq!(vault.len(), 1);
}

#[test]
fn an_unknown_commitment_is_absent() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let unknown = donor_commitment(&[9; 32], "nobody");
    assert_eq!(vault.get(&unknown).unwrap(), None);
    assert!(matches!(vault.erase(&unknown), Err(VaultError::Unknown { .. })));
}

#[test]
fn a_commitment_that_salt_and_reference_do_not_produce_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let mut r = record(1, REFERENCE);
    r.reference = "13900139000".into();
    let err = vault.put(&r).unwrap_err();
    assert!(matches!(&err, VaultError::CommitmentMismatch { commitment, .. } if *commitment == r.commitment));
    assert!(err.to_string().contains(&*r.commitment.to_text()), "{err}");
    let mut r = record(1, REFERENCE);
    r.salt[0] ^= 1;
    assert!(matches!(vault.put(&r), Err(VaultError::CommitmentMismatch { .. })));
    assert!(vault.is_empty());
}

#[test]
fn fields_over_their_limits_are_refused_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let mut r = record(1, REFERENCE);
    r.name = Some("王".repeat(NAME_CHARS_MAX));
    assert_eq!(vault.put(&r).unwrap(), Put::Created, "exactly the limit, in characters not bytes, is kept");

    let mut r = record(2, REFERENCE);
    r.name = Some("王".repeat(NAME_CHARS_MAX + 1));
    let err = vault.put(&r).unwrap_err();
    assert!(matches!(err, VaultError::FieldTooLong { field: "name", chars: 201, max: 200 }), "{err}");
    assert_eq!(err.to_string(), "donor name is 201 characters long; at most 200 are kept");

    let mut r = record(3, REFERENCE);
    r.contact = Some("x".repeat(CONTACT_CHARS_MAX + 1));
    assert!(matches!(vault.put(&r), Err(VaultError::FieldTooLong { field: "contact", .. })));

    let r = record(4, &"1".repeat(REFERENCE_CHARS_MAX + 1));
    assert!(matches!(vault.put(&r), Err(VaultError::FieldTooLong { field: "reference", .. })));

    let r = record(5, "");
    assert!(matches!(vault.put(&r), Err(VaultError::EmptyReference)));
    assert_eq!(vault.len(), 1);
}

#[test]
fn a_different_record_under_a_held_commitment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let r = record(1, REFERENCE);
    vault.put(&r).unwrap();
    let mut other = r.clone();
    other.name = Some("someone else".into());
    assert!(matches!(vault.put(&other), Err(VaultError::Conflict { .. })));
    assert_eq!(vault.get(&r.commitment).unwrap(), Some(VaultEntry::Held(r)));
}

#[test]
fn erasure_leaves_a_tombstone_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let vault = open(dir.path(), &clock);
    let r = record(1, REFERENCE);
    vault.put(&r).unwrap();
    clock.advance(Duration::days(3));
    let erased = vault.erase(&r.commitment).unwrap();
    assert_eq!(erased, Erased { commitment: r.commitment.clone(), erased_at: clock.now() });

    clock.advance(Duration::days(1));
    assert_eq!(vault.erase(&r.commitment).unwrap(), erased, "erasing again answers the first tombstone");
    assert_eq!(vault.get(&r.commitment).unwrap(), Some(VaultEntry::Erased(erased.clone())));

    let err = vault.put(&r).unwrap_err();
    assert!(matches!(err, VaultError::AlreadyErased { erased_at, .. } if erased_at == erased.erased_at));
}

#[test]
fn erased_personal_data_is_in_no_tree_and_tombstones_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let kept = record(2, "13700137000");
    let gone = record(1, REFERENCE);
    let erased = {
        let vault = open(dir.path(), &clock);
        vault.put(&gone).unwrap();
        vault.put(&kept).unwrap();
        vault.erase(&gone.commitment).unwrap()
    };

    let vault = open(dir.path(), &clock);
    assert_eq!(vault.get(&gone.commitment).unwrap(), Some(VaultEntry::Erased(erased)));
    assert_eq!(vault.get(&kept.commitment).unwrap(), Some(VaultEntry::Held(kept.clone())));

    let salt_hex = hex::encode(gone.salt);
    let dump = vault.raw_dump().unwrap();
    assert!(!dump.is_empty());
    for needle in [NAME, CONTACT, REFERENCE, salt_hex.as_str()] {
        let found = dump.iter().any(|(k, v)| contains(k, needle.as_bytes()) || contains(v, needle.as_bytes()));
        if needle == NAME || needle == CONTACT {
            // The kept donor shares name and contact in this test: only its entry may hold them.
            let holders: Vec<_> =
                dump.iter().filter(|(_, v)| contains(v, needle.as_bytes())).map(|(k, _)| k.clone()).collect();
            assert_eq!(holders, vec![kept.commitment.to_text().as_bytes().to_vec()], "{needle:?}");
        } else {
            assert!(!found, "{needle:?} is still in a tree of the vault after erasure");
        }
    }
}

#[test]
fn erasure_of_the_only_donor_leaves_no_personal_byte_in_any_tree() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let r = record(1, REFERENCE);
    vault.put(&r).unwrap();
    vault.erase(&r.commitment).unwrap();
    let salt_hex = hex::encode(r.salt);
    for (k, v) in vault.raw_dump().unwrap() {
        for needle in [NAME, CONTACT, REFERENCE, salt_hex.as_str()] {
            assert!(!contains(&k, needle.as_bytes()) && !contains(&v, needle.as_bytes()), "{needle:?} survives");
        }
    }
}

#[test]
fn list_pages_in_commitment_order() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open(dir.path(), &clock());
    let mut commitments: Vec<Sha256Hex> = (0..7u8)
        .map(|i| {
            let r = record(i, &format!("ref-{i}"));
            vault.put(&r).unwrap();
            r.commitment
        })
        .collect();
    vault.erase(&commitments[3]).unwrap();
    commitments.sort();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = vault.list(after.as_ref(), 3).unwrap();
        assert!(page.entries.len() <= 3);
        seen.extend(page.entries.iter().map(|e| e.commitment().clone()));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, commitments);
    assert!(matches!(vault.list(None, 0), Err(VaultError::Limit { limit: 0 })));
    assert!(matches!(vault.list(None, LIST_LIMIT_MAX + 1), Err(VaultError::Limit { .. })));
}

#[test]
fn debug_output_never_shows_personal_data() {
    let r = record(1, REFERENCE);
    let text = format!("{r:?}");
    for needle in [NAME, CONTACT, REFERENCE] {
        assert!(!text.contains(needle), "{text}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of every file under `dir`.
fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if contains(&std::fs::read(&path).unwrap(), needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn erased_fields_leave_the_vault_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let vault = open(dir.path(), &clock);
    let mut keep = record(1, "13900000001");
    keep.name = Some("李四".into());
    vault.put(&keep).unwrap();
    let mut gone = record(2, "13900000002");
    gone.name = Some("独一无二的姓名张三丰".into());
    gone.contact = Some("zhangsanfeng@example.invalid".into());
    vault.put(&gone).unwrap();
    assert!(!files_contain(dir.path(), "独一无二的姓名张三丰".as_bytes()).is_empty(), "the name was written to disk");
    vault.erase(&gone.commitment).unwrap();
    for needle in ["独一无二的姓名张三丰".as_bytes(), b"zhangsanfeng@example.invalid", b"13900000002"] {
        let hits = files_contain(dir.path(), needle);
        assert!(hits.is_empty(), "{} still on disk in {hits:?}", String::from_utf8_lossy(needle));
    }
    // The vault still serves the other donor, and the tombstone, after the rewrite and a restart.
    assert!(matches!(vault.get(&keep.commitment).unwrap(), Some(VaultEntry::Held(r)) if r == keep));
    drop(vault);
    let vault = open(dir.path(), &clock);
    assert!(matches!(vault.get(&keep.commitment).unwrap(), Some(VaultEntry::Held(_))));
    assert!(matches!(vault.get(&gone.commitment).unwrap(), Some(VaultEntry::Erased(_))));
}

#[test]
fn an_interrupted_rewrite_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let vault_dir = dir.path().join(VAULT_DIR);
    let keep = record(1, "13900000001");
    open(dir.path(), &clock).put(&keep).unwrap();
    // A crash after the fresh copy was complete and the old vault moved aside.
    let (fresh, old) = (dir.path().join(format!("{VAULT_DIR}.rewrite")), dir.path().join(format!("{VAULT_DIR}.old")));
    std::fs::rename(&vault_dir, &fresh).unwrap();
    std::fs::create_dir(&old).unwrap();
    let vault = open(dir.path(), &clock);
    assert!(matches!(vault.get(&keep.commitment).unwrap(), Some(VaultEntry::Held(_))));
    assert!(!old.exists() && !fresh.exists());
}
