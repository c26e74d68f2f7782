//! The donor's private side of a gift: the donor file (the salt behind the
//! donor's public commitment and the donor's own reference, mode 0600, never
//! sent to the server) and the receipts directory where `receipt` writes an
//! event's C2SP tlog-proof and ledger entry, with the salt as the proof's
//! `extra` line so the donor can prove the gift is theirs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use fundtrail_domain::{donor_commitment, Event, EventId, FundId, Sha256Hex};
use serde_json::{json, Value};

use crate::http::{Client, Problem};

/// Where donor files (salt and reference) go unless `--receipt-dir` says otherwise.
pub const RECEIPT_DIR_DEFAULT: &str = "fundtrail-receipts";
/// Size of the salt behind a donor commitment, in bytes.
pub const SALT_SIZE: usize = 32;
/// Largest key, donor or evidence file read, in bytes.
pub const INPUT_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// How long `receipt` waits for a checkpoint to cover a fresh event.
const RECEIPT_WAIT_MS_MAX: u64 = 5_000;
const RECEIPT_POLL_MS: u64 = 250;

/// What a donor needs to prove a donation is theirs: the salt and their reference.
/// Kept privately (mode 0600); never sent to the server.
#[derive(Clone, Debug)]
pub struct DonorRecord {
    pub event: EventId,
    pub fund: FundId,
    pub type_name: &'static str,
    pub donor_reference: String,
    pub salt: [u8; SALT_SIZE],
    pub commitment: Sha256Hex,
    pub server: String,
}

impl DonorRecord {
    pub fn of(event: &Event, donor_reference: &str, salt: [u8; SALT_SIZE], server: &str) -> DonorRecord {
        let commitment = donor_commitment(&salt, donor_reference);
        DonorRecord {
            event: event.id.clone(),
            fund: event.fund.clone(),
            type_name: event.type_name(),
            donor_reference: donor_reference.to_owned(),
            salt,
            commitment,
            server: server.to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "kind": "fundtrail-donor-file/v1",
            "event": self.event, "fund": self.fund, "type": self.type_name,
            "donor_reference": self.donor_reference,
            "salt": B64.encode(self.salt),
            "commitment": self.commitment,
            "server": self.server,
        })
    }
}

pub fn donor_file_path(dir: &Path, event: &EventId) -> PathBuf {
    dir.join(format!("{event}.donor.json"))
}

/// A new salt from the OS random number generator.
pub fn new_salt() -> Result<[u8; SALT_SIZE]> {
    let mut salt = [0u8; SALT_SIZE];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
    Ok(salt)
}

/// Writes the donor file (mode 0600 from creation, never overwritten); `durable`
/// syncs it to disk.
pub fn write_donor_file(dir: &Path, record: &DonorRecord, durable: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = donor_file_path(dir, &record.event);
    let text = serde_json::to_string_pretty(&record.to_json())? + "\n";
    crate::key_file::write_private(&path, &text, durable)?;
    Ok(path)
}

/// The salt and reference of a donation, if its donor file is in `dir`.
pub fn read_donor_file(dir: &Path, event: &EventId) -> Result<Option<([u8; SALT_SIZE], String)>> {
    let path = donor_file_path(dir, event);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_limited(&path)?;
    let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
    let bad = || format!("{} is not a FundTrail donor file", path.display());
    let salt = v.get("salt").and_then(Value::as_str).with_context(bad)?;
    let salt: [u8; SALT_SIZE] = B64
        .decode(salt)
        .ok()
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("{}: salt is not 32 bytes of base64", path.display()))?;
    let reference = v.get("donor_reference").and_then(Value::as_str).with_context(bad)?.to_owned();
    let commitment = v.get("commitment").and_then(Value::as_str).with_context(bad)?;
    if *donor_commitment(&salt, &reference).to_text() != *commitment {
        bail!("{}: salt and reference do not give its commitment", path.display());
    }
    Ok(Some((salt, reference)))
}

/// Reads a whole file of at most [`INPUT_FILE_BYTES_MAX`] bytes.
pub fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut data = Vec::new();
    file.take(INPUT_FILE_BYTES_MAX + 1).read_to_end(&mut data)?;
    if data.len() as u64 > INPUT_FILE_BYTES_MAX {
        bail!("{} is larger than {INPUT_FILE_BYTES_MAX} bytes", path.display());
    }
    Ok(data)
}

/// The files `receipt` wrote.
pub struct ReceiptFiles {
    pub event: EventId,
    pub index: u64,
    pub proof: PathBuf,
    pub entry: PathBuf,
    /// The donor reference, when the receipt carries the donor's salt.
    pub donor_reference: Option<String>,
    pub server: String,
}

/// Fetches `/v1/receipts/{event}` and writes `<event>.tlog-proof` (with the donor's salt
/// as its `extra` line when the donor file is in `donor_dir`) and `<event>.entry`.
pub fn fetch_receipt(client: &Client, event: &EventId, donor_dir: &Path, out: &Path) -> Result<ReceiptFiles> {
    let answer = get_receipt_waiting(client, event)?;
    let index = answer.get("index").and_then(Value::as_u64).context("receipt answer has no index")?;
    let entry_b64 = answer.get("entry").and_then(Value::as_str).context("receipt answer has no entry")?;
    let entry = B64.decode(entry_b64).context("receipt answer's entry is not base64")?;
    let text = answer.get("receipt").and_then(Value::as_str).context("receipt answer has no receipt")?;
    let mut receipt = fundtrail_ledger::Receipt::parse(text.as_bytes()).context("the server's receipt")?;
    if receipt.index != index {
        bail!("the server's receipt is for entry {} but it says {index}", receipt.index);
    }
    let decoded = fundtrail_ledger::decode_entry(&entry).context("the server's entry")?;
    if decoded.index != index {
        bail!("the server's entry has index {} but the receipt is for {index}", decoded.index);
    }
    let donor = read_donor_file(donor_dir, event)?;
    receipt.extra = donor.as_ref().map(|(salt, _)| salt.to_vec());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let proof = out.join(format!("{event}.tlog-proof"));
    let entry_path = out.join(format!("{event}.entry"));
    std::fs::write(&proof, receipt.to_bytes()).with_context(|| format!("writing {}", proof.display()))?;
    std::fs::write(&entry_path, &entry).with_context(|| format!("writing {}", entry_path.display()))?;
    Ok(ReceiptFiles {
        event: event.clone(),
        index,
        proof,
        entry: entry_path,
        donor_reference: donor.map(|(_, r)| r),
        server: client.base().to_owned(),
    })
}

/// A fresh event may not be covered by a signed checkpoint yet: wait a little.
fn get_receipt_waiting(client: &Client, event: &EventId) -> Result<Value> {
    let path = format!("/v1/receipts/{event}");
    let deadline = Instant::now() + Duration::from_millis(RECEIPT_WAIT_MS_MAX);
    loop {
        match client.get_json(&path) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let waitable = e.downcast_ref::<Problem>().is_some_and(|p| matches!(p.status, 404 | 409 | 425 | 503));
                if !waitable || Instant::now() >= deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(RECEIPT_POLL_MS));
            }
        }
    }
}

/// The command a donor runs to check the receipt.
pub fn verify_receipt_hint(files: &ReceiptFiles) -> String {
    let donor = files.donor_reference.as_ref().map(|r| format!(" --donor {r}")).unwrap_or_default();
    format!(
        "fundtrail verify-receipt {} --entry {}{donor} --ledger {}/ledger --vkey \"$(curl -s {}/ledger/vkey)\"",
        files.proof.display(),
        files.entry.display(),
        files.server,
        files.server
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use fundtrail_domain::event::{ApplicationSubmitted, EventBody};
    use fundtrail_domain::ProposalId;
    use fundtrail_envelope::actor::sign_new;
    use fundtrail_envelope::ActorKey;

    #[test]
    fn donor_files_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = ActorKey::from_seed(&[1; 32]);
        let body = EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: ProposalId::new("P-1").unwrap() });
        let (event, _) = sign_new(&key, &FundId::new("f").unwrap(), Utc::now(), body);
        let salt = [9u8; SALT_SIZE];
        let record = DonorRecord::of(&event, "DEMO-R-001", salt, "http://x");
        let path = write_donor_file(dir.path(), &record, false).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_donor_file(dir.path(), &event.id).unwrap(), Some((salt, "DEMO-R-001".to_owned())));
        assert!(write_donor_file(dir.path(), &record, false).is_err(), "never overwritten");
    }

    #[test]
    fn a_donor_file_whose_salt_does_not_give_its_commitment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = ActorKey::from_seed(&[2; 32]);
        let body = EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: ProposalId::new("P-2").unwrap() });
        let (event, _) = sign_new(&key, &FundId::new("f").unwrap(), Utc::now(), body);
        let record = DonorRecord::of(&event, "DEMO-R-002", [3; SALT_SIZE], "http://x");
        let path = write_donor_file(dir.path(), &record, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap().replace("DEMO-R-002", "DEMO-R-003");
        std::fs::write(&path, text).unwrap();
        let err = read_donor_file(dir.path(), &event.id).unwrap_err();
        assert!(err.to_string().contains("do not give its commitment"), "{err}");
    }
}
