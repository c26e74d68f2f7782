//! `fundtrail verify` and `fundtrail verify-receipt`: thin wiring around
//! `fundtrail-audit`, with human output (amounts as ¥1,234.56) or `--json`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use fundtrail_audit::{
    audit, audit_receipt, format_yuan, open_source, AuditRequest, Audited, FundReport, LedgerSource, Progress,
    ReceiptAudited, ReceiptInput, ReceiptReport, Report, Threads, WitnessInfo,
};
use fundtrail_ledger::{LogVerifier, Policy};

/// Largest receipt or entry file read, in bytes.
const INPUT_FILE_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Args)]
pub struct VerifyArgs {
    /// The ledger: the URL of its prefix (https://host/ledger) or a directory mirror.
    #[arg(long, value_name = "URL|DIR", required_unless_present = "nats")]
    ledger: Option<String>,
    /// Replay the FUNDTRAIL stream from these NATS servers (comma-separated, read-only)
    /// and compare it with the checkpoint of --ledger, or else the latest in
    /// FUNDTRAIL_CHECKPOINTS. Credentials and TLS as for `serve` (the --nats-* flags).
    #[arg(long, value_name = "URLS")]
    nats: Option<String>,
    #[command(flatten)]
    nats_auth: crate::serve_cmd::NatsAuthArgs,
    /// The log's verifier key (<name>+<id>+<key>), or a file containing it; taken from
    /// --policy when the policy lists one log.
    #[arg(long, value_name = "VKEY", required_unless_present = "policy")]
    vkey: Option<String>,
    /// A witness policy (C2SP tlog-policy): the checkpoint must carry a quorum of its
    /// witnesses' cosignatures.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The last verified checkpoint: the ledger must extend it; updated on success.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Threads that check signatures (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    threads: Option<Threads>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_threads(text: &str) -> Result<Threads, String> {
    let n: usize = text.parse().map_err(|_| format!("{text:?} is not a number of threads"))?;
    Threads::new(n).ok_or_else(|| "at least 1 thread is needed".to_string())
}

#[derive(Args)]
pub struct VerifyReceiptArgs {
    /// The receipt file (C2SP tlog-proof).
    #[arg(value_name = "RECEIPT")]
    receipt: PathBuf,
    /// The entry's bytes (index ‖ prev ‖ envelope); read from --ledger when absent.
    #[arg(long, value_name = "FILE")]
    entry: Option<PathBuf>,
    /// Your donor reference (the phone or customer number you gave): checked against
    /// the donation's donor commitment with the receipt's salt.
    #[arg(long, value_name = "REF")]
    donor: Option<String>,
    /// Also check the ledger now (URL or directory): it must extend the receipt's
    /// checkpoint; prints what the fund did with its money.
    #[arg(long, value_name = "URL|DIR")]
    ledger: Option<String>,
    /// The log's verifier key (<name>+<id>+<key>), or a file containing it; taken from
    /// --policy when the policy lists one log.
    #[arg(long, value_name = "VKEY", required_unless_present = "policy")]
    vkey: Option<String>,
    /// A witness policy (C2SP tlog-policy): the receipt's checkpoint (and the ledger's,
    /// with --ledger) must carry a quorum of its witnesses' cosignatures.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `--policy FILE`, parsed.
fn read_policy(path: &Option<PathBuf>) -> Result<Option<Policy>> {
    let Some(path) = path else { return Ok(None) };
    let text = read_input(path, "policy")?;
    let policy = Policy::parse(&text).with_context(|| format!("--policy {}", path.display()))?;
    Ok(Some(policy))
}

/// The log key: `--vkey`, or the policy's only log.
fn log_key(vkey: &Option<String>, policy: &Option<Policy>) -> Result<LogVerifier> {
    match (vkey, policy) {
        (Some(vkey), _) => log_verifier(vkey),
        (None, Some(policy)) => match policy.logs() {
            [log] => Ok(log.verifier.clone()),
            logs => bail!("the policy lists {} logs: give --vkey to say which one", logs.len()),
        },
        (None, None) => bail!("give --vkey or --policy"),
    }
}

fn print_witnesses(info: &Option<WitnessInfo>) {
    let Some(info) = info else { return };
    let names: Vec<&str> = info.cosigned_by.iter().map(|c| c.witness.as_str()).collect();
    println!("  witnessed    quorum {} met: cosigned by {}", info.quorum, names.join(", "));
    if !info.missing.is_empty() {
        println!("               not (yet) cosigned by {}", info.missing.join(", "));
    }
}

/// `--vkey`: the key text itself, or a file holding it.
pub(crate) fn log_verifier(vkey: &str) -> Result<LogVerifier> {
    let path = std::path::Path::new(vkey);
    let text = if !vkey.contains('+') && path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading the vkey file {vkey}"))?
    } else {
        vkey.to_string()
    };
    LogVerifier::from_vkey(text.trim()).context("--vkey")
}

fn read_input(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("opening the {what} {}", path.display()))?;
    let mut data = Vec::new();
    file.take(INPUT_FILE_BYTES_MAX + 1).read_to_end(&mut data)?;
    if data.len() as u64 > INPUT_FILE_BYTES_MAX {
        bail!("the {what} {} is larger than {INPUT_FILE_BYTES_MAX} bytes", path.display());
    }
    Ok(data)
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template("{spinner} verifying {pos}/{len} entries {wide_bar} {per_sec}")
        .expect("valid template");
    bar.set_style(style);
    Some(bar)
}

fn on_progress(bar: &Option<indicatif::ProgressBar>) -> impl FnMut(Progress) + '_ {
    move |p: Progress| {
        if let Some(bar) = bar {
            bar.set_length(p.entries_total);
            bar.set_position(p.entries_done);
        }
    }
}

/// Prints a failure for scripts too, then returns it as the command's error.
fn failed(json: bool, failure: impl std::fmt::Display, index: Option<u64>) -> anyhow::Error {
    if json {
        let out = serde_json::json!({"ok": false, "index": index, "cause": failure.to_string()});
        println!("{out}");
    }
    anyhow::anyhow!("verification FAILED: {failure}")
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let policy = read_policy(&args.policy)?;
    let log = log_key(&args.vkey, &policy)?;
    let source: Option<Box<dyn LedgerSource>> = match &args.ledger {
        Some(ledger) => Some(open_source(ledger).context("--ledger")?),
        None => None,
    };
    let nats = args.nats.as_deref().map(|servers| args.nats_auth.connect(servers)).transpose()?;
    let threads = args.threads.unwrap_or_else(Threads::available);
    let request = AuditRequest {
        log: &log,
        policy: policy.as_ref(),
        ledger: source.as_deref(),
        nats: nats.as_ref(),
        state: args.state.as_deref(),
        threads,
    };
    let bar = progress_bar();
    let mut progress = on_progress(&bar);
    let started = std::time::Instant::now();
    let outcome = audit(&request, Some(&mut progress));
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let Audited { report, witnesses } = match outcome {
        Ok(audited) => audited,
        Err(e) if e.is_verdict() => return Err(failed(args.json, &e, e.index())),
        Err(e) => return Err(e.into()),
    };
    let rate_per_s = (report.entries as f64 / elapsed.as_secs_f64().max(1e-6)).round();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = true.into();
        value["witnesses"] = serde_json::to_value(&witnesses)?;
        value["threads"] = threads.get().into();
        value["entries_per_s"] = rate_per_s.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(&report, args.nats.is_some());
        println!("  checked in   {:.2} s: {rate_per_s} entries/s on {} threads", elapsed.as_secs_f64(), threads.get());
        print_witnesses(&witnesses);
    }
    Ok(())
}

fn print_report(report: &Report, from_stream: bool) {
    let c = &report.checkpoint;
    println!("✓ ledger {} verified: {} entries", c.origin, report.entries);
    println!("  checkpoint   size {}, root {}", c.size, c.root);
    if from_stream {
        println!(
            "  stream       {} messages replayed; the checkpoint is the root of the first {}",
            report.entries, c.size
        );
    }
    if let Some(previous) = &report.consistent_with {
        println!("  consistent   with the checkpoint of size {} verified before: the ledger only grew", previous.size);
    }
    println!("  every entry  in the signed tree, chained, signed by a key holding its role, every rule replayed");
    let t = &report.traces;
    println!(
        "  traced       {} of {} cash gifts whole: every fen unspent, reserved, paid ({} in all) or refunded",
        t.whole,
        t.gifts,
        format_yuan(t.paid_fen)
    );
    println!(
        "  traced       {} of {} goods gifts whole: every unit in stock or handed out ({} units in all)",
        t.goods_whole, t.goods_gifts, t.goods_handed_out
    );
    let d = &report.disclosures;
    println!(
        "  disclosures  {} replayed, {} citing their year's accounts: every stated total and cited figure equals this replay's at its entry",
        d.published, d.citing_accounts
    );
    for fund in &report.funds {
        println!();
        print_fund(fund);
        for year in report.accounts.iter().filter(|a| a.fund.as_str() == fund.fund) {
            print_accounts(year);
        }
    }
}

fn print_accounts(a: &fundtrail_domain::accounts::YearReport) {
    let restricted: Vec<String> = a.net_assets_restricted.iter().map(|(p, v)| format!("{p} {v}")).collect();
    let spending: Vec<String> =
        a.spending.iter().map(|(p, v)| format!("{} {v}", if p.is_empty() { "unrestricted" } else { p })).collect();
    println!(
        "  {} accounts  income {} unrestricted, {} restricted; spent {}; net assets at year end {} unrestricted{}",
        a.year,
        a.income_unrestricted_fen,
        a.income_restricted_fen,
        if spending.is_empty() { "nothing".to_owned() } else { spending.join(", ") },
        a.net_assets_unrestricted_fen,
        if restricted.is_empty() { String::new() } else { format!(", restricted: {}", restricted.join(", ")) }
    );
}

fn print_fund(fund: &FundReport) {
    let cash = &fund.cash;
    println!("fund {}  {} ({})", fund.fund, fund.name, fund.community);
    println!("  received     {:>18}  ({} donations)", format_yuan(cash.received_fen), fund.donations);
    println!("  refunded     {:>18}", format_yuan(cash.refunded_fen));
    println!("  reserved     {:>18}  (approved, not yet paid)", format_yuan(cash.reserved_fen));
    println!("  paid out     {:>18}", format_yuan(cash.paid_fen));
    println!("  available    {:>18}", format_yuan(cash.available_fen));
    for ch in &fund.channels {
        println!(
            "    {:<22}{:>18} in {} gifts; goods {}",
            ch.channel,
            format_yuan(ch.received_fen),
            ch.donations,
            format_yuan(ch.goods_value_fen)
        );
    }
    let goods = &fund.goods;
    println!(
        "  goods        received {}, distributed {}",
        format_yuan(goods.received_value_fen),
        format_yuan(goods.distributed_value_fen)
    );
    let statuses: Vec<String> = fund.proposals.by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "  proposals    {} ({}), approved {}, paid {}",
        fund.proposals.count,
        statuses.join(", "),
        format_yuan(fund.proposals.approved_fen),
        format_yuan(fund.proposals.paid_fen)
    );
}

pub fn verify_receipt(args: VerifyReceiptArgs) -> Result<()> {
    let policy = read_policy(&args.policy)?;
    let log = log_key(&args.vkey, &policy)?;
    let receipt = read_input(&args.receipt, "receipt")?;
    let entry = match &args.entry {
        Some(path) => Some(read_input(path, "entry")?),
        None => None,
    };
    let source = match &args.ledger {
        Some(ledger) => Some(open_source(ledger).context("--ledger")?),
        None => None,
    };
    let input = ReceiptInput {
        receipt: &receipt,
        entry: entry.as_deref(),
        donor_reference: args.donor.as_deref(),
        ledger: source.as_deref(),
    };
    let bar = progress_bar();
    let mut progress = on_progress(&bar);
    let outcome = audit_receipt(&input, &log, policy.as_ref(), Some(&mut progress));
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let ReceiptAudited { report, witnesses: receipt_witnesses } = match outcome {
        Ok(audited) => audited,
        Err(e) if e.is_verdict() => return Err(failed(args.json, &e, e.index())),
        Err(e) => return Err(e.into()),
    };
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = true.into();
        value["witnesses"] = serde_json::to_value(&receipt_witnesses)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_receipt(&report);
        print_witnesses(&receipt_witnesses);
    }
    Ok(())
}

fn print_receipt(report: &ReceiptReport) {
    let d = &report.donation;
    let c = &report.checkpoint;
    println!(
        "✓ receipt verified: entry {} is in ledger {} (checkpoint of size {}, signed by the log key)",
        report.index, c.origin, c.size
    );
    let what = if d.kind == "goods.received" {
        format!("goods worth {} ({})", format_yuan(d.amount_fen), d.goods.join(", "))
    } else {
        format!("{} in cash", format_yuan(d.amount_fen))
    };
    println!("  donation     {what}, channel {}, at {}", d.channel, d.occurred_at);
    println!("  fund         {}, event {}", d.fund, d.event_id);
    if report.donor_matched {
        println!("  donor        your reference opens the donor commitment: this donation is yours");
    } else {
        println!("  donor        not checked (give --donor REF to check the commitment is yours)");
    }
    match &report.ledger {
        None => println!("  ledger       not checked (give --ledger URL|DIR to check it only grew since)"),
        Some(ledger) => {
            println!(
                "  ledger now   size {}, verified in full and consistent with your receipt's checkpoint: it only grew",
                ledger.checkpoint.size
            );
            if let Some(trace) = &ledger.trace {
                println!();
                println!("where your gift went (replayed from the ledger):");
                println!("  {}", trace.summary());
            }
            if let Some(fund) = &ledger.fund {
                println!();
                println!("what the fund did with its money:");
                print_fund(fund);
            }
        }
    }
}
