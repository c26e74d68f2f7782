//! `fundtrail demo`: plays a realistic year (2026) of one community fund through
//! the public HTTP API, with real keys and signatures, then checks the result
//! the way a donor and an auditor would.
//!
//! Without `--server` it starts an embedded server in this process whose clock
//! the demo moves day by day through the year, and keeps serving afterwards,
//! with three witnesses (`fundtrail_server::demo_witnesses`) of which two must cosign
//! every checkpoint it serves; the final checks use their policy.
//! With `--server` it plays against that server with today's times and exits.
//!
//! Arguments and output only: the year is `fundtrail_client::demo`, the embedded
//! server and its witnesses `fundtrail_server::demo_witnesses`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, FromArgMatches};
use fundtrail_client::demo::{self, cast, Cast, Outcome, Player, BACKDATE_DAYS_MAX};
use fundtrail_client::wallet::{fetch_receipt, verify_receipt_hint, ReceiptFiles};
use fundtrail_client::Client;
use fundtrail_domain::event::Channel;
use fundtrail_domain::{Fen, FundId};
use fundtrail_service::ManualClock;

use crate::audit_cmd;
use fundtrail_server::demo_witnesses::{start_witnessed, WitnessedDemo};
use fundtrail_server::{ServerOptions, LOG_KEY_FILE};

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
    demo::prepare_data_dir(&args.data, args.fresh)?;
    let cast = Cast::generate(&args.data.join("keys"))?;
    let donors_dir = args.data.join("receipts");
    let start = demo::start();
    match &args.server {
        Some(url) => {
            let client = Client::new(url)?;
            demo::wait_ready(&client)?;
            let vkey = client.get_text("/ledger/vkey").context("reading the log's verifier key")?.trim().to_owned();
            println!("Playing 2026 of {} against {url} (times are now)…", cast::FUND_NAME);
            let mut player = Player::new(client, None, start, args.fund.clone(), donors_dir);
            player.verbose = !args.quiet;
            let outcome = demo::play_year(&cast, &mut player)?;
            finish(&args, &player, &outcome, &vkey, None, started)
        }
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let clock = ManualClock::new(start);
            let data_dir = args.data.join("server");
            std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
            let options = ServerOptions {
                listen: args.listen,
                log_key: fundtrail_client::key_file::load_or_create(&data_dir.join(LOG_KEY_FILE))?,
                data_dir,
                nats: None,
                host_key: Some(cast.host.key_id().to_string()),
                clock: Arc::new(clock.clone()),
                backdate_max: chrono::Duration::days(BACKDATE_DAYS_MAX),
                witnesses: None,
            };
            // The server's tasks run on the runtime's workers; this thread plays the year.
            let WitnessedDemo { server, policy: policy_text, policy_path: policy } =
                runtime.block_on(start_witnessed(&args.data, options))?;
            println!(
                "Three witnesses cosign the ledger (two of three needed); the policy every check uses, {}:",
                policy.display()
            );
            for line in policy_text.lines() {
                println!("  {line}");
            }
            let client = Client::new(&server.url)?;
            demo::wait_ready(&client)?;
            println!("Playing 2026 of {} on an embedded server at {} (simulated dates)…", cast::FUND_NAME, server.url);
            let set_clock: demo::SetClock = Box::new(move |t| clock.set(t));
            let mut player = Player::new(client, Some(set_clock), start, args.fund.clone(), donors_dir);
            player.verbose = !args.quiet;
            let outcome = demo::play_year(&cast, &mut player)?;
            finish(&args, &player, &outcome, &server.vkey, Some(&policy), started)?;
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

/// Checks the server against the demo's own fold, prints the year and where to look,
/// fetches a donor's receipt and verifies the ledger and the receipt in-process.
/// With `policy`, the ledger and the receipt must carry its witnesses' quorum.
fn finish(
    args: &DemoArgs,
    p: &Player,
    outcome: &Outcome,
    vkey: &str,
    policy: Option<&std::path::Path>,
    started: Instant,
) -> Result<()> {
    let url = p.client.base().to_owned();
    let fund = &p.fund;
    demo::check_balances(p)?;
    print_year(p, outcome, started);
    println!("✓ the server's balances equal the demo's own fold of every event it signed, to the fen");

    let vkey_file = args.data.join("log.vkey");
    std::fs::write(&vkey_file, format!("{vkey}\n"))?;
    wait_checkpoint(&p.client, p.posted)?;
    let receipt = match &outcome.example_donation {
        Some(id) => Some(fetch_receipt(&p.client, id, &p.donors_dir, &p.donors_dir)?),
        None => None,
    };
    let link = receipt.as_ref().map(|files| demo::example_receipt_link(&url, files, &p.donors_dir)).transpose()?;
    write_summary(args, p, outcome, vkey, receipt.as_ref(), link.as_deref())?;

    println!();
    println!("Where to look:");
    println!("  portal       {url}/");
    println!("  the fund     {url}/v1/funds/{fund}");
    println!("  proposals    {url}/v1/funds/{fund}/proposals");
    println!("  donations    {url}/v1/funds/{fund}/donations");
    println!("  checkpoint   {url}/ledger/checkpoint");
    println!("  log vkey     {vkey}  (also in {})", vkey_file.display());
    if let Some(policy) = policy {
        println!("  policy       {} (the witnesses; two of three must cosign)", policy.display());
        println!("  pending      {url}/ledger/checkpoint/pending (signed, waiting for the witnesses)");
    }
    println!("  keys         {} (mode 0600)", args.data.join("keys").display());
    println!("  summary      {}", args.data.join("summary.json").display());
    if let Some(files) = &receipt {
        println!("  a donor's receipt (with the salt) {}", files.proof.display());
        println!("               entry {}", files.entry.display());
        let hint = verify_receipt_hint(files);
        let hint = match policy {
            // The policy names the log's key and the witnesses that must cosign.
            Some(policy) => format!("{} --policy {}", hint.split(" --vkey ").next().unwrap_or(&hint), policy.display()),
            None => hint,
        };
        println!("  check it:    {hint}");
    }
    if let Some(link) = &link {
        println!("  {}'s receipt in the portal (the link carries their salt and reference):", outcome.example_donor);
        println!("               {link}");
    }

    println!();
    wait_checkpoint(&p.client, p.posted)?;
    println!("Verifying the whole ledger as an auditor would (fundtrail verify)…");
    let ledger = format!("{url}/ledger");
    let policy_text = policy.map(|p| p.display().to_string());
    let trust: [&str; 2] = match &policy_text {
        Some(path) => ["--policy", path],
        None => ["--vkey", vkey],
    };
    audit_cmd::verify(parse_args::<audit_cmd::VerifyArgs>("verify", &["--ledger", &ledger, trust[0], trust[1]])?)?;
    if let Some(files) = &receipt {
        println!();
        println!("Checking {}'s receipt as the donor would (fundtrail verify-receipt)…", outcome.example_donor);
        let (proof, entry) = (files.proof.display().to_string(), files.entry.display().to_string());
        let donor = files.donor_reference.clone().unwrap_or_default();
        let argv = [proof.as_str(), "--entry", &entry, "--donor", &donor, "--ledger", &ledger, trust[0], trust[1]];
        audit_cmd::verify_receipt(parse_args::<audit_cmd::VerifyReceiptArgs>("verify-receipt", &argv)?)?;
    }
    if let Some(goods) = &outcome.example_goods {
        println!();
        println!("Where the elderly-care partner's goods (restricted to 助老) went (fundtrail trace {goods}):");
        crate::actors_cmd::print_trace(&p.client.trace(goods)?);
    }
    println!();
    println!("Done in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(())
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
        "  disclosures: {} quarterly, each stating totals and citing the year's accounts, equal to the fold; audit of 2026: unqualified",
        o.disclosures
    );
}

fn write_summary(
    args: &DemoArgs,
    p: &Player,
    o: &Outcome,
    vkey: &str,
    receipt: Option<&ReceiptFiles>,
    link: Option<&str>,
) -> Result<()> {
    let summary = demo::summary(p, o, vkey, receipt, link)?;
    let path = args.data.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Waits for a checkpoint covering `size` entries; says so when the latest covers fewer.
fn wait_checkpoint(client: &Client, size: u64) -> Result<()> {
    let signed = demo::wait_checkpoint(client, size)?;
    if signed < size {
        println!("(the latest checkpoint covers {signed} of {size} entries; verifying that)");
    }
    Ok(())
}
