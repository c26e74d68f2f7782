//! `fundtrail`: the command line. Thin: parses arguments, wires libraries,
//! prints results. Every rule lives in the library crates.

mod keys_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Keys(cmd) => keys_cmd::keys(cmd),
        Command::Sign(args) => keys_cmd::sign(args),
        Command::Check(args) => keys_cmd::check(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
