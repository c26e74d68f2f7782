//! The demo: a realistic year (2026) of one community fund played through the
//! public HTTP API with real keys and signatures, then checked the way a donor
//! and an auditor would. The command line (`fundtrail demo`) starts the embedded
//! server, prints, and runs `verify`; everything else is here.
//!
//! Modules depend one way: [`play`] (the player and its vocabulary) ← [`cast`]
//! (the people and the setup) ← [`year`] (the story) ← this file.

pub mod cast;
pub mod play;
pub mod year;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::actions::totals_from_view;
use crate::http::Client;
use crate::wallet::ReceiptFiles;
pub use cast::Cast;
pub use play::{Player, SetClock};
pub use year::{bj, Outcome};

/// Marks a directory as made by the demo (only such a directory is ever wiped).
pub const DATA_MARKER: &str = ".fundtrail-demo";
/// How far back the embedded server must accept `occurred_at` (the demo books a whole year).
pub const BACKDATE_DAYS_MAX: i64 = 800;
/// How long to wait for a server to become ready.
const READY_WAIT_MS_MAX: u64 = 15_000;
const READY_POLL_MS: u64 = 100;
/// How long to wait for the views to show what was accepted.
const VIEWS_WAIT_MS_MAX: u64 = 5_000;
/// How long to wait for a checkpoint that covers every event the demo posted.
const CHECKPOINT_WAIT_MS_MAX: u64 = 10_000;

/// The first day of the story (Beijing time): the host founds the ledger.
pub fn start() -> DateTime<Utc> {
    bj(1, 5, 9)
}

/// Refuses a non-empty directory unless `fresh`, and wipes only one a demo made.
pub fn prepare_data_dir(dir: &Path, fresh: bool) -> Result<()> {
    let non_empty = dir.exists() && std::fs::read_dir(dir)?.next().is_some();
    if non_empty {
        if !fresh {
            bail!(
                "{} is not empty: the demo needs fresh keys and a fresh log — pass --fresh to wipe it, or choose another --data",
                dir.display()
            );
        }
        if !dir.join(DATA_MARKER).exists() {
            bail!("refusing to wipe {}: it was not made by `fundtrail demo` (no {DATA_MARKER} file)", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(DATA_MARKER), "made by `fundtrail demo`; safe to delete\n")?;
    Ok(())
}

/// Waits until the server answers `/readyz`.
pub fn wait_ready(client: &Client) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(READY_WAIT_MS_MAX);
    loop {
        match client.get_bytes("/readyz") {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("{} was not ready within {READY_WAIT_MS_MAX} ms", client.base())))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(READY_POLL_MS)),
        }
    }
}

/// The whole year: the setup on its first day, then the story.
pub fn play_year(cast: &Cast, p: &mut Player) -> Result<Outcome> {
    p.day(start(), "慈善总会建立账本，开设西湖街道社区发展基金，选举管理委员会");
    cast.setup(p)?;
    year::play(cast, p)
}

/// The server's balances must equal the demo's own fold (a submission answered 202
/// is in the log but maybe not yet in the views: give them a moment).
pub fn check_balances(p: &Player) -> Result<()> {
    let folded = p.totals();
    let deadline = Instant::now() + Duration::from_millis(VIEWS_WAIT_MS_MAX);
    loop {
        let view = p.client.get_json(&format!("/v1/funds/{}", p.fund))?;
        let served = totals_from_view(&view).context("the server's fund view")?;
        if served == folded {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the server's balances differ from the demo's own fold:\n  server {served:?}\n  demo   {folded:?}");
        }
        std::thread::sleep(Duration::from_millis(READY_POLL_MS));
    }
}

/// Waits until a signed checkpoint covers the first `size` entries, so that a
/// verification and a receipt cover the whole year. Answers the size the latest
/// checkpoint covers (less than `size` if none covered it in time).
pub fn wait_checkpoint(client: &Client, size: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_millis(CHECKPOINT_WAIT_MS_MAX);
    loop {
        let note = client.get_text("/ledger/checkpoint")?;
        let signed: u64 =
            note.lines().nth(1).and_then(|l| l.parse().ok()).context("the checkpoint has no size line")?;
        if signed >= size || Instant::now() >= deadline {
            return Ok(signed);
        }
        std::thread::sleep(Duration::from_millis(READY_POLL_MS));
    }
}

/// The portal's "My donation" link for the example donor (see
/// [`crate::receipt_link`] for the format). The demo owns this donor, so the
/// link carries their reference too; it must fit a receipt's QR code.
pub fn example_receipt_link(url: &str, files: &ReceiptFiles, donors_dir: &Path) -> Result<String> {
    let link = crate::receipt_link::link_from_donor_file(url, &files.event, files.index, donors_dir, true)
        .with_context(|| format!("the demo's donor file for {}", files.event))?;
    crate::receipt_link::encode(&link).context("the demo's receipt link must fit a receipt's QR code")?;
    Ok(link)
}

/// What the year produced, as `summary.json` holds it; `link` is the example
/// donor's portal link ([`example_receipt_link`]).
pub fn summary(
    p: &Player,
    o: &Outcome,
    vkey: &str,
    receipt: Option<&ReceiptFiles>,
    link: Option<&str>,
) -> Result<Value> {
    let f = p.fund_state();
    let by_channel: serde_json::Map<String, Value> = f
        .by_channel
        .iter()
        .map(|(ch, t)| {
            let v = json!({
                "received_fen": t.received, "refunded_fen": t.refunded, "goods_value_fen": t.goods_value,
                "donations": t.donations, "pledged_fen": t.pledged,
            });
            (ch.as_str().to_owned(), v)
        })
        .collect();
    let proposals: serde_json::Map<String, Value> = f
        .proposals
        .iter()
        .map(|(id, x)| {
            (id.to_string(), json!({"status": x.status.as_str(), "paid_fen": x.paid, "released_fen": x.released}))
        })
        .collect();
    Ok(json!({
        "fund": p.fund, "name": cast::FUND_NAME, "server": p.client.base(), "vkey": vkey,
        "events": p.posted,
        "totals": serde_json::to_value(p.totals())?,
        "by_channel": by_channel,
        "proposals": proposals,
        "merchants": o.merchants.len(), "goods_lines": o.goods_lines,
        "receipts_issued": o.receipts_issued, "receipts_voided": o.receipts_voided,
        "disclosures": o.disclosures,
        "example_goods": o.example_goods,
        "example_receipt": receipt.map(|r| json!({
            "event": r.event, "index": r.index, "receipt": r.proof, "entry": r.entry, "donor": r.donor_reference,
            "portal_link": link,
        })),
    }))
}
