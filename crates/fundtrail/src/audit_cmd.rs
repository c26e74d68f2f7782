//! `fundtrail verify` and `fundtrail verify-receipt`: thin wiring around
//! `fundtrail-audit`, with human output (amounts as ¥1,234.56) or `--json`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use fundtrail_audit::{
    format_yuan, open_source, verify_donor_receipt, verify_ledger_with, verify_nats_with, FundReport, LedgerSource,
    Progress, ReceiptInput, ReceiptReport, Report, StateFile, Threads, VerifyFailure, VerifyOptions,
};
use fundtrail_ledger::LogVerifier;

/// Largest receipt or entry file read, in bytes.
const INPUT_FILE_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Args)]
pub struct VerifyArgs {
    /// The ledger: the URL of its prefix (https://host/ledger) or a directory mirror.
    #[arg(long, value_name = "URL|DIR", required_unless_present = "nats")]
    ledger: Option<String>,
    /// Replay the FUNDTRAIL stream from this NATS server (read-only) and compare it with
    /// the checkpoint of --ledger, or else the latest in FUNDTRAIL_CHECKPOINTS.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// The log's verifier key (<name>+<id>+<key>), or a file containing it.
    #[arg(long, value_name = "VKEY")]
    vkey: String,
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
    /// The log's verifier key (<name>+<id>+<key>), or a file containing it.
    #[arg(long, value_name = "VKEY")]
    vkey: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `--vkey`: the key text itself, or a file holding it.
fn log_verifier(vkey: &str) -> Result<LogVerifier> {
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
    let log = log_verifier(&args.vkey)?;
    let source: Option<Box<dyn LedgerSource>> = match &args.ledger {
        Some(ledger) => Some(open_source(ledger).context("--ledger")?),
        None => None,
    };
    let previous = match &args.state {
        Some(path) => StateFile::load(path, &log)?,
        None => None,
    };
    let bar = progress_bar();
    let mut progress = on_progress(&bar);
    let options = VerifyOptions { previous: previous.clone(), progress: Some(&mut progress) };
    let threads = args.threads.unwrap_or_else(Threads::available);
    let started = std::time::Instant::now();
    let outcome: Result<Report, VerifyFailure> = match (&args.nats, &source) {
        (Some(url), source) => verify_nats_with(url, source.as_deref(), &log, options, threads),
        (None, Some(source)) => verify_ledger_with(source.as_ref(), &log, options, threads),
        (None, None) => bail!("give --ledger URL|DIR or --nats URL"),
    };
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = outcome.map_err(|f| failed(args.json, &f, f.index))?;
    if let Some(path) = &args.state {
        let checkpoint = log.verify_checkpoint(report.note.as_bytes()).expect("the report's note verified");
        StateFile::of(&checkpoint, &report.note).save(path)?;
    }
    let rate_per_s = (report.entries as f64 / elapsed.as_secs_f64().max(1e-6)).round();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = true.into();
        value["threads"] = threads.get().into();
        value["entries_per_s"] = rate_per_s.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(&report, args.nats.is_some());
        println!("  checked in   {:.2} s: {rate_per_s} entries/s on {} threads", elapsed.as_secs_f64(), threads.get());
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
    for fund in &report.funds {
        println!();
        print_fund(fund);
    }
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
    let log = log_verifier(&args.vkey)?;
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
    let outcome = verify_donor_receipt(&input, &log, Some(&mut progress));
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = outcome.map_err(|e| {
        let index = match &e {
            fundtrail_audit::ReceiptFailure::Ledger(f) => f.index,
            _ => None,
        };
        failed(args.json, &e, index)
    })?;
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = true.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_receipt(&report);
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
            if let Some(fund) = &ledger.fund {
                println!();
                println!("what the fund did with its money:");
                print_fund(fund);
            }
        }
    }
}
