//! `fundtrail`: the command line. Thin: parses arguments, wires libraries,
//! prints results. Every rule lives in the library crates.

// Doc comments here are clap's help texts, whose placeholders (`<NAME>`) are not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod actors_cmd;
mod audit_cmd;
mod demo_cmd;
mod keys_cmd;
mod qr_cmd;
mod serve_cmd;
mod witness_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not glibc malloc: the pipeline allocates many short-lived
/// buffers across threads, and glibc's arenas spent about a sixth of the
/// ingest profile in malloc, free and consolidation. Built with `no_thp`
/// (workspace Cargo.toml): mimalloc asking for transparent huge pages made a
/// replica's resident memory half as large again, at no gain in speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fundtrail",
    version,
    about = "Verifiable community funds: signed events, a public ledger, and the tools to check both."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and inspect actor keys.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Sign an event JSON file with a key file; prints the DSSE envelope.
    Sign(keys_cmd::SignArgs),
    /// Verify an envelope offline against public keys; says exactly what is wrong.
    Check(keys_cmd::CheckArgs),
    /// Verify a whole ledger (tiles, chain, signatures, roles, every rule) and print every fund's balances.
    Verify(audit_cmd::VerifyArgs),
    /// Verify a donor's receipt offline, and against a ledger's current checkpoint.
    VerifyReceipt(audit_cmd::VerifyReceiptArgs),
    /// Run the service: HTTP API and public ledger (embedded store unless --nats).
    Serve(serve_cmd::ServeArgs),
    /// Drop projections so the next `serve` rebuilds them from the log.
    Rebuild(serve_cmd::RebuildArgs),
    /// Ledger tools (static mirror).
    #[command(subcommand)]
    Ledger(serve_cmd::LedgerCommand),
    /// Play a realistic year of one community fund through the public API.
    Demo(demo_cmd::DemoArgs),
    /// Run a witness that cosigns consistent checkpoints (C2SP tlog-witness); witness keys.
    #[command(subcommand)]
    Witness(witness_cmd::WitnessCommand),
    #[command(flatten)]
    Actor(actors_cmd::ActorCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Keys(cmd) => keys_cmd::keys(cmd),
        Command::Sign(args) => keys_cmd::sign(args),
        Command::Check(args) => keys_cmd::check(args),
        Command::Verify(args) => audit_cmd::verify(args),
        Command::VerifyReceipt(args) => audit_cmd::verify_receipt(args),
        Command::Serve(args) => serve_cmd::serve(args),
        Command::Rebuild(args) => serve_cmd::rebuild(args),
        Command::Ledger(cmd) => serve_cmd::ledger(cmd),
        Command::Demo(args) => demo_cmd::demo(args),
        Command::Witness(cmd) => witness_cmd::run(cmd),
        Command::Actor(cmd) => actors_cmd::run(cmd),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
