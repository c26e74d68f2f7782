//! `fundtrail demo`: plays a realistic year (2026) of one community fund through
//! the public HTTP API, with real keys and signatures, then checks the result
//! the way a donor and an auditor would.
//!
//! Without `--server` it starts an embedded server in this process whose clock
//! the demo moves day by day through the year, and keeps serving afterwards.
//! With `--server` it plays against that server with today's times and exits.

#[path = "demo/cast.rs"]
mod cast;
#[path = "demo/play.rs"]
mod play;
#[path = "demo/year.rs"]
mod year;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, FromArgMatches};
use fundtrail_domain::event::Channel;
use fundtrail_domain::{Fen, FundId};
use fundtrail_service::ManualClock;
use serde_json::{json, Value};

use crate::actors_cmd::client::Client;
use crate::actors_cmd::{fetch_receipt, totals_from_view, verify_receipt_hint, ReceiptFiles};
use crate::audit_cmd;
use crate::serve_cmd::{start_server, ServerOptions};
use cast::Cast;
use play::Player;
use year::{bj, Outcome};

/// Marks a directory as made by the demo (only such a directory is ever wiped).
const DATA_MARKER: &str = ".fundtrail-demo";
/// How far back the embedded server accepts `occurred_at` (the demo books a whole year).
const BACKDATE_DAYS_MAX: i64 = 800;
/// How long to wait for a server to become ready.
const READY_WAIT_MS_MAX: u64 = 15_000;
const READY_POLL_MS: u64 = 100;
/// How long to wait for the views to show what was accepted.
const VIEWS_WAIT_MS_MAX: u64 = 5_000;
/// How long to wait for a checkpoint that covers every event the demo posted.
const CHECKPOINT_WAIT_MS_MAX: u64 = 10_000;

#[derive(Args)]
pub struct DemoArgs {
    /// Play against this running server (with today's times) instead of an embedded one.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Directory for the keys, donor files, receipts and (embedded) the server's data.
    #[arg(long, value_name = "DIR", default_value = ".fundtrail-demo")]
    data: PathBuf,
    /// Where the embedded server listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Wipe --data first (only a directory an earlier demo made).
    #[arg(long)]
    fresh: bool,
    /// Exit when the year is played instead of serving until Ctrl-C (embedded server).
    #[arg(long)]
    no_wait: bool,
    /// The fund's id.
    #[arg(long, value_name = "FUND", default_value = "xihu-jiedao")]
    fund: FundId,
    /// Print only the summary, not one line per day.
    #[arg(long)]
    quiet: bool,
}

pub fn demo(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    prepare_data_dir(&args.data, args.fresh)?;
    let cast = Cast::generate(&args.data.join("keys"))?;
    let donors_dir = args.data.join("receipts");
    let start = bj(1, 5, 9);
    match &args.server {
        Some(url) => {
            let client = Client::new(url)?;
            wait_ready(&client)?;
            let vkey = client.get_text("/ledger/vkey").context("reading the log's verifier key")?.trim().to_owned();
            println!("Playing 2026 of {} against {url} (times are now)…", cast::FUND_NAME);
            let mut player = Player::new(client, None, start, args.fund.clone(), donors_dir);
            player.verbose = !args.quiet;
            let outcome = play_year(&cast, &mut player)?;
            finish(&args, &player, &outcome, &vkey, started)
        }
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let clock = ManualClock::new(start);
            let options = ServerOptions {
                listen: args.listen,
                data_dir: args.data.join("server"),
                nats: None,
                log_key: None,
                host_key: Some(cast.host.key_id().to_string()),
                clock: Arc::new(clock.clone()),
                backdate_max: chrono::Duration::days(BACKDATE_DAYS_MAX),
            };
            // The server's tasks run on the runtime's workers; this thread plays the year.
            let server = runtime.block_on(start_server(options)).context("starting the embedded server")?;
            let client = Client::new(&server.url)?;
            wait_ready(&client)?;
            println!("Playing 2026 of {} on an embedded server at {} (simulated dates)…", cast::FUND_NAME, server.url);
            let mut player = Player::new(client, Some(clock), start, args.fund.clone(), donors_dir);
            player.verbose = !args.quiet;
            let outcome = play_year(&cast, &mut player)?;
            finish(&args, &player, &outcome, &server.vkey, started)?;
            if args.no_wait {
                return Ok(());
            }
            println!();
            println!("Serving {} — press Ctrl-C to stop.", server.url);
            runtime.block_on(tokio::signal::ctrl_c()).context("waiting for Ctrl-C")?;
            Ok(())
        }
    }
}

fn play_year(cast: &Cast, p: &mut Player) -> Result<Outcome> {
    p.day(bj(1, 5, 9), "慈善总会建立账本，开设西湖街道社区发展基金，选举管理委员会");
    cast.setup(p)?;
    year::play(cast, p)
}

/// Refuses a non-empty directory unless `--fresh`, and wipes only one a demo made.
fn prepare_data_dir(dir: &Path, fresh: bool) -> Result<()> {
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

fn wait_ready(client: &Client) -> Result<()> {
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

/// Checks the server against the demo's own fold, prints the year and where to look,
/// fetches a donor's receipt and verifies the ledger and the receipt in-process.
fn finish(args: &DemoArgs, p: &Player, outcome: &Outcome, vkey: &str, started: Instant) -> Result<()> {
    let url = p.client.base().to_owned();
    let fund = &p.fund;
    check_balances(p)?;
    print_year(p, outcome, started);
    println!("✓ the server's balances equal the demo's own fold of every event it signed, to the fen");

    let vkey_file = args.data.join("log.vkey");
    std::fs::write(&vkey_file, format!("{vkey}\n"))?;
    wait_checkpoint(&p.client, p.posted)?;
    let receipt = match &outcome.example_donation {
        Some(id) => Some(fetch_receipt(&p.client, id, &p.donors_dir, &p.donors_dir)?),
        None => None,
    };
    write_summary(args, p, outcome, vkey, receipt.as_ref())?;

    println!();
    println!("Where to look:");
    println!("  server       {url}/");
    println!("  the fund     {url}/v1/funds/{fund}");
    println!("  proposals    {url}/v1/funds/{fund}/proposals");
    println!("  donations    {url}/v1/funds/{fund}/donations");
    println!("  checkpoint   {url}/ledger/checkpoint");
    println!("  log vkey     {vkey}  (also in {})", vkey_file.display());
    println!("  keys         {} (mode 0600)", args.data.join("keys").display());
    println!("  summary      {}", args.data.join("summary.json").display());
    if let Some(files) = &receipt {
        println!("  a donor's receipt (with the salt) {}", files.proof.display());
        println!("               entry {}", files.entry.display());
        println!("  check it:    {}", verify_receipt_hint(files));
    }

    println!();
    wait_checkpoint(&p.client, p.posted)?;
    println!("Verifying the whole ledger as an auditor would (fundtrail verify)…");
    let ledger = format!("{url}/ledger");
    audit_cmd::verify(parse_args::<audit_cmd::VerifyArgs>("verify", &["--ledger", &ledger, "--vkey", vkey])?)?;
    if let Some(files) = &receipt {
        println!();
        println!("Checking {}'s receipt as the donor would (fundtrail verify-receipt)…", outcome.example_donor);
        let (proof, entry) = (files.proof.display().to_string(), files.entry.display().to_string());
        let donor = files.donor_reference.clone().unwrap_or_default();
        let argv = [proof.as_str(), "--entry", &entry, "--donor", &donor, "--ledger", &ledger, "--vkey", vkey];
        audit_cmd::verify_receipt(parse_args::<audit_cmd::VerifyReceiptArgs>("verify-receipt", &argv)?)?;
    }
    println!();
    println!("Done in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// The server's balances must equal the demo's own fold (a submission answered 202
/// is in the log but maybe not yet in the views: give them a moment).
fn check_balances(p: &Player) -> Result<()> {
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

/// Waits until a signed checkpoint covers the first `size` entries, so that the
/// verification and the receipt below cover the whole year.
fn wait_checkpoint(client: &Client, size: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(CHECKPOINT_WAIT_MS_MAX);
    loop {
        let note = client.get_text("/ledger/checkpoint")?;
        let signed: u64 =
            note.lines().nth(1).and_then(|l| l.parse().ok()).context("the checkpoint has no size line")?;
        if signed >= size {
            return Ok(());
        }
        if Instant::now() >= deadline {
            println!("(the latest checkpoint covers {signed} of {size} entries; verifying that)");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(READY_POLL_MS));
    }
}

/// Builds a command's arguments exactly as the command line would.
fn parse_args<A: Args + FromArgMatches>(name: &'static str, argv: &[&str]) -> Result<A> {
    let command = A::augment_args(clap::Command::new(name));
    let matches = command.try_get_matches_from(std::iter::once(name).chain(argv.iter().copied()))?;
    Ok(A::from_arg_matches(&matches)?)
}

fn channel_line(p: &Player, channel: Channel) -> (Fen, Fen, Fen, u64) {
    let t = p.fund_state().by_channel.get(&channel).cloned().unwrap_or_default();
    (t.received, t.refunded, t.goods_value, t.donations)
}

fn print_year(p: &Player, o: &Outcome, started: Instant) {
    let f = p.fund_state();
    let t = p.totals();
    let pledged: Fen = f
        .pledges
        .values()
        .filter(|x| x.channel == Channel::SpaceForService)
        .fold(Fen::ZERO, |a, x| a.checked_add(x.amount).expect("in range"));
    println!();
    println!(
        "{} ({}), 2026 — {} signed events in {:.1} s",
        cast::FUND_NAME,
        p.fund,
        p.posted,
        started.elapsed().as_secs_f64()
    );
    let (sfs, _, _, _) = channel_line(p, Channel::SpaceForService);
    let (market, _, goods, _) = channel_line(p, Channel::NeighbourhoodMarket);
    let (workshop, _, _, _) = channel_line(p, Channel::MicroWorkshop);
    let (direct, refunded, _, _) = channel_line(p, Channel::Direct);
    println!("  income received   {}", t.received_fen);
    println!("    space_for_service     {sfs:>14}  11 partners, {} payments (pledged {pledged})", o.partner_payments);
    println!(
        "    neighbourhood_market  {market:>14}  12 markets, {} gifts from {} merchants",
        o.market_gifts,
        o.merchants.len()
    );
    println!("                          goods worth {goods} ({} gifts, {} lines)", o.goods_gifts, o.goods_lines);
    println!("    micro_workshop        {workshop:>14}  巧手妈妈工坊, 12 monthly gifts");
    println!(
        "    direct                {direct:>14}  {} residents' gifts and one company's; {refunded} refunded",
        o.resident_gifts
    );
    println!("  paid out          {}", t.paid_fen);
    println!("  reserved          {}  (approved, not yet paid)", t.reserved_fen);
    println!("  available         {}", t.available_fen);
    println!(
        "  goods             received {}, handed out {} ({} distributions)",
        t.goods_received_value_fen, t.goods_distributed_value_fen, o.distributions
    );
    println!("  proposals");
    for (id, prop) in f.proposals.iter() {
        println!(
            "    {id}  {:<9} {:<24} requested {}, paid {}, released {}",
            prop.status.as_str(),
            prop.title,
            prop.requested,
            prop.paid,
            prop.released
        );
    }
    println!("  residents' opinions recorded: {}", o.opinions);
    println!("  official receipts: {} issued ({} voided and reissued)", o.receipts_issued, o.receipts_voided);
    println!(
        "  disclosures: {} quarterly, each stating totals equal to the fold; audit of 2026: unqualified",
        o.disclosures
    );
}

fn write_summary(args: &DemoArgs, p: &Player, o: &Outcome, vkey: &str, receipt: Option<&ReceiptFiles>) -> Result<()> {
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
    let summary = json!({
        "fund": p.fund, "name": cast::FUND_NAME, "server": p.client.base(), "vkey": vkey,
        "events": p.posted,
        "totals": serde_json::to_value(p.totals())?,
        "by_channel": by_channel,
        "proposals": proposals,
        "merchants": o.merchants.len(), "goods_lines": o.goods_lines,
        "receipts_issued": o.receipts_issued, "receipts_voided": o.receipts_voided,
        "disclosures": o.disclosures,
        "example_receipt": receipt.map(|r| json!({
            "event": r.event, "index": r.index, "receipt": r.proof, "entry": r.entry, "donor": r.donor_reference,
        })),
    });
    let path = args.data.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
