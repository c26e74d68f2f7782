//! Each actor's actions against a server: sign an event with the actor's key,
//! post it, and check the server answered for that very event (or say exactly
//! why it refused). Gifts add the donor's side: a fresh salt from the OS RNG,
//! the salted commitment in the event, the donor file written before posting
//! (so an accepted gift never lacks its salt) and removed again only when the
//! server refused for certain. A disclosure states the fund's current totals and
//! cites the accounts of the year its period ends in, as the server shows them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use fundtrail_domain::accounts::YearReport;
use fundtrail_domain::disclosure::{citation, cited_year};
use fundtrail_domain::event::{DisclosureAccounts, DisclosurePublished, DisclosureTotals};
use fundtrail_domain::{donor_commitment, Event, EventBody, Fen, FundId, KeyId, Role, Sha256Hex};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::{parse_public_key, ActorKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::http::{Client, Posted, Problem};
use crate::wallet::{new_salt, read_limited, write_donor_file, DonorRecord};

/// Posts a signed event; a refusal names the event, and an answer for another
/// event is an error.
pub fn post_signed(client: &Client, event: &Event, envelope: &[u8]) -> Result<Posted> {
    let posted = client
        .post_envelope(envelope)
        .with_context(|| format!("{} {} was not recorded by {}", event.type_name(), event.id, client.base()))?;
    if posted.id != *event.id.to_text() {
        bail!("the server answered for event {} but {} was sent", posted.id, event.id);
    }
    Ok(posted)
}

/// Signs `body` in `fund` with `key` at `at` (a new UUIDv7 id) and posts it.
pub fn sign_and_post(
    client: &Client,
    key: &ActorKey,
    fund: &FundId,
    at: DateTime<Utc>,
    body: EventBody,
) -> Result<Posted> {
    let (event, envelope) = sign_new(key, fund, at, body);
    post_signed(client, &event, &envelope)
}

/// The scope a role is granted in: the fund given, or the host for a host-wide role.
pub fn role_scope(fund: Option<FundId>, role: Role) -> Result<FundId> {
    match (fund, role.is_host_wide()) {
        (Some(fund), _) => Ok(fund),
        (None, true) => Ok(FundId::host()),
        (None, false) => bail!("--fund is required: {role} is granted per fund"),
    }
}

/// Who gives: the donor's own reference (never sent), where the donor file goes,
/// and optionally the service's private donor vault.
pub struct Donor<'a> {
    pub reference: &'a str,
    pub receipt_dir: &'a Path,
    pub vault: Option<VaultDonor<'a>>,
}

/// The private vault (`serve --private-listen`) and what only it may hold.
pub struct VaultDonor<'a> {
    pub url: &'a str,
    /// The vault's bearer token (`serve --private-token-file`).
    pub token: &'a str,
    pub name: Option<&'a str>,
    pub contact: Option<&'a str>,
}

/// A recorded gift: the server's answer and the donor's private file.
pub struct Gift {
    pub posted: Posted,
    pub record: DonorRecord,
    pub donor_file: PathBuf,
    /// The vault's URL, when the donor was stored there too.
    pub vault: Option<String>,
}

/// A donation or pledge: `body` is built around the donor's salted commitment.
/// The donor file is written (and synced) before the event is posted and removed
/// again if the server refuses it; with a vault, salt, reference, name and contact
/// are stored there after the event was recorded.
pub fn give(
    client: &Client,
    key: &ActorKey,
    fund: &FundId,
    at: DateTime<Utc>,
    donor: &Donor<'_>,
    body: impl FnOnce(Sha256Hex) -> EventBody,
) -> Result<Gift> {
    let salt = new_salt()?;
    let (event, envelope) = sign_new(key, fund, at, body(donor_commitment(&salt, donor.reference)));
    let record = DonorRecord::of(&event, donor.reference, salt, client.base());
    let donor_file = write_donor_file(donor.receipt_dir, &record, true)?;
    let posted = match client.post_envelope(&envelope) {
        Ok(posted) => posted,
        Err(e) => {
            if e.downcast_ref::<Problem>().is_some() {
                // Refused for certain: nothing to prove later.
                let _ = std::fs::remove_file(&donor_file);
            }
            return Err(e.context(format!("{} {} was not recorded by {}", event.type_name(), event.id, client.base())));
        }
    };
    let vault = match &donor.vault {
        Some(v) => {
            let body = json!({
                "salt": B64.encode(salt),
                "reference": donor.reference,
                "name": v.name,
                "contact": v.contact,
                "consent_public_thanks": false,
            });
            let path = format!("/private/v1/donors/{}", record.commitment);
            Client::new(v.url)?.with_bearer(v.token).put_json(&path, &body).with_context(|| {
                format!(
                    "the donation was recorded, but the private vault at {} did not store the donor (retry the vault)",
                    v.url
                )
            })?;
            Some(v.url.to_owned())
        }
        None => None,
    };
    Ok(Gift { posted, record, donor_file, vault })
}

/// A recorded disclosure and the totals and accounts it stated.
pub struct Disclosure {
    pub posted: Posted,
    pub totals: DisclosureTotals,
    pub accounts: DisclosureAccounts,
    pub period_end: DateTime<Utc>,
}

/// Publishes a disclosure of `from`–`to` (default: `at`) stating the fund's totals
/// and citing the accounts of the year the period ends in, as the server shows them
/// now, so a committee member types no figure. If they change before it lands, the
/// server refuses it (every figure must equal the fold's): run it again.
pub fn disclose(
    client: &Client,
    key: &ActorKey,
    fund: &FundId,
    at: DateTime<Utc>,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    report: Sha256Hex,
) -> Result<Disclosure> {
    let to = to.unwrap_or(at);
    let view = client.get_json(&format!("/v1/funds/{fund}"))?;
    let totals = totals_from_view(&view).context("reading the fund's current totals")?;
    let accounts = accounts_from_server(client, fund, cited_year(&to))?;
    let body = EventBody::DisclosurePublished(DisclosurePublished {
        period_start: from,
        period_end: to,
        totals: totals.clone(),
        report,
        accounts: Some(Box::new(accounts.clone())),
    });
    let posted = sign_and_post(client, key, fund, at, body)
        .context("the fund's figures may have changed since they were read: run disclose again")?;
    Ok(Disclosure { posted, totals, accounts, period_end: to })
}

/// The citation of `year`'s accounts from `GET /v1/funds/{fund}/accounts?year=`.
pub fn accounts_from_server(client: &Client, fund: &FundId, year: i32) -> Result<DisclosureAccounts> {
    let page = client.get_json(&format!("/v1/funds/{fund}/accounts?year={year}"))?;
    let report = page
        .pointer("/accounts/0")
        .cloned()
        .with_context(|| format!("the server gave no accounts of {year} for fund {fund}"))?;
    let report: YearReport =
        serde_json::from_value(report).with_context(|| format!("reading the accounts of {year} of fund {fund}"))?;
    if report.year != year || &report.fund != fund {
        bail!(
            "asked for the accounts of {fund} in {year}, the server answered those of {} in {}",
            report.fund,
            report.year
        );
    }
    Ok(citation(&report))
}

/// The disclosure totals from `GET /v1/funds/{fund}`.
pub fn totals_from_view(fund: &Value) -> Result<DisclosureTotals> {
    let fen = |v: &Value, path: &str| -> Result<Fen> {
        let n = v.pointer(path).and_then(Value::as_i64).with_context(|| format!("no integer at {path}"))?;
        Ok(Fen::new(n)?)
    };
    Ok(DisclosureTotals {
        received_fen: fen(fund, "/cash/received_fen")?,
        refunded_fen: fen(fund, "/cash/refunded_fen")?,
        reserved_fen: fen(fund, "/cash/reserved_fen")?,
        paid_fen: fen(fund, "/cash/paid_fen")?,
        available_fen: fen(fund, "/cash/available_fen")?,
        goods_received_value_fen: fen(fund, "/goods_received_value_fen")?,
        goods_distributed_value_fen: fen(fund, "/goods_distributed_value_fen")?,
    })
}

/// SHA-256 of bytes as a digest field.
pub fn sha256_hex(bytes: &[u8]) -> Sha256Hex {
    Sha256Hex::new(hex::encode(Sha256::digest(bytes))).expect("hex of a SHA-256 is a digest")
}

/// SHA-256 of a document file (at most [`crate::wallet::INPUT_FILE_BYTES_MAX`] bytes).
pub fn digest_of_file(path: &Path) -> Result<Sha256Hex> {
    Ok(sha256_hex(&read_limited(path)?))
}

/// The key id of a base64 public key.
pub fn key_id_of_b64(b64: &str) -> Result<KeyId> {
    let key = parse_public_key(b64)?;
    Ok(KeyId::of_public_key(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_wide_roles_need_no_fund() {
        assert_eq!(role_scope(None, Role::HostAdmin).unwrap(), FundId::host());
        let fund = FundId::new("xihu").unwrap();
        assert_eq!(role_scope(Some(fund.clone()), Role::Intake).unwrap(), fund);
        let err = role_scope(None, Role::Intake).unwrap_err();
        assert!(err.to_string().contains("--fund is required"), "{err}");
    }

    #[test]
    fn totals_are_read_from_the_fund_view() {
        let view = json!({
            "cash": {"received_fen": 500, "refunded_fen": 0, "reserved_fen": 100, "paid_fen": 50, "available_fen": 350},
            "goods_received_value_fen": 7, "goods_distributed_value_fen": 2,
        });
        let totals = totals_from_view(&view).unwrap();
        assert_eq!((totals.received_fen.fen(), totals.available_fen.fen()), (500, 350));
        let err = totals_from_view(&json!({"cash": {}})).unwrap_err();
        assert!(err.to_string().contains("/cash/received_fen"), "{err}");
    }
}
