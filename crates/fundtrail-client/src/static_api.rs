//! The JSON a portal reads in static mode, fetched from a running service so that a
//! mirror can serve the portal from a plain web host: `api/funds.json`,
//! `api/keys.json`, and per fund `api/funds/<fund>.json`, `…/proposals.json` and
//! `…/donations.json` (every page of donations, joined).

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::http::Client;

/// Largest number of donation pages read per fund.
pub const DONATION_PAGES_MAX: usize = 100_000;
/// Donations asked for per page.
const DONATIONS_PAGE_LIMIT: u32 = 500;

/// Fetches the static API of `client`'s service and hands each file to `write` as
/// `(relative path, bytes)`. Returns how many files were written.
pub fn fetch(client: &Client, write: &mut dyn FnMut(&str, &[u8]) -> Result<()>) -> Result<usize> {
    let mut written = 0;
    let mut json = |path: &str, value: &Value| -> Result<()> {
        write(path, &serde_json::to_vec(value)?)?;
        written += 1;
        Ok(())
    };
    let funds = client.get_json("/v1/funds")?;
    json("api/funds.json", &funds)?;
    json("api/keys.json", &client.get_json("/v1/keys")?)?;
    let ids: Vec<&str> = funds["funds"]
        .as_array()
        .context("GET /v1/funds: no funds array")?
        .iter()
        .filter_map(|f| f["fund"].as_str())
        .collect();
    for fund in ids {
        // The server validates fund ids ([a-z0-9-]); checked again, as they become file names.
        if fund.is_empty() || !fund.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            bail!("fund id {fund:?} is not a safe file name");
        }
        json(&format!("api/funds/{fund}.json"), &client.get_json(&format!("/v1/funds/{fund}"))?)?;
        json(&format!("api/funds/{fund}/proposals.json"), &client.get_json(&format!("/v1/funds/{fund}/proposals"))?)?;
        let donations = donations(client, fund)?;
        json(&format!("api/funds/{fund}/donations.json"), &serde_json::json!({ "donations": donations }))?;
    }
    Ok(written)
}

/// Every donation of `fund`, page after page.
fn donations(client: &Client, fund: &str) -> Result<Vec<Value>> {
    let mut donations = Vec::new();
    let mut after = 0u64;
    for _ in 0..DONATION_PAGES_MAX {
        let path = format!("/v1/funds/{fund}/donations?limit={DONATIONS_PAGE_LIMIT}&after={after}");
        let answer = client.get_json(&path)?;
        donations.extend(answer["donations"].as_array().context("donations page without donations")?.iter().cloned());
        match answer["next_after"].as_u64() {
            Some(next) if next > after => after = next,
            Some(next) => bail!("{path}: next_after {next} does not move past {after}"),
            None => return Ok(donations),
        }
    }
    bail!("{fund}: more than {DONATION_PAGES_MAX} pages of donations")
}
