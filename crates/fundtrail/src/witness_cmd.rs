//! `fundtrail witness serve` and `fundtrail witness keys new`: a C2SP tlog-witness as
//! its own small process, thin wiring around `fundtrail-witness`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use fundtrail_ledger::LogVerifier;
use fundtrail_witness::{key_file, system_clock, TestPause, Witness, WitnessConfig};

#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Run a witness: cosign checkpoints of the given logs that are consistent with all
    /// it cosigned before (C2SP tlog-witness: POST /add-checkpoint).
    Serve {
        /// The witness's key file (from `fundtrail witness keys new`).
        #[arg(long, env = "FUNDTRAIL_WITNESS_KEY")]
        key: PathBuf,
        /// Where it remembers the latest checkpoint it cosigned for each log.
        #[arg(long, env = "FUNDTRAIL_WITNESS_DATA")]
        data: PathBuf,
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: SocketAddr,
        /// A log to witness, ORIGIN=VKEY (the log's verifier key, text or file); repeat
        /// for more logs or more keys of one log.
        #[arg(long = "log", value_name = "ORIGIN=VKEY", required = true)]
        logs: Vec<String>,
    },
    /// Witness keys.
    #[command(subcommand)]
    Keys(WitnessKeysCommand),
}

#[derive(Subcommand)]
pub enum WitnessKeysCommand {
    /// Make a new witness key from the OS random number generator; prints its vkey.
    New {
        /// The witness's name, a schema-less URL, e.g. witness.example.org/street-office.
        #[arg(long)]
        name: String,
        /// Where to write the private key (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the vkey of a witness key file.
    Show {
        #[arg(long)]
        key: PathBuf,
    },
}

pub fn run(cmd: WitnessCommand) -> Result<()> {
    match cmd {
        WitnessCommand::Keys(WitnessKeysCommand::New { name, out }) => {
            let (signer, seed) = key_file::generate(&name)?;
            key_file::write_new(&out, &signer, &seed)?;
            eprintln!("wrote {} (mode 0600); the witness's vkey, for policies and logs:", out.display());
            println!("{}", signer.vkey());
            Ok(())
        }
        WitnessCommand::Keys(WitnessKeysCommand::Show { key }) => {
            println!("{}", key_file::read(&key)?.vkey());
            Ok(())
        }
        WitnessCommand::Serve { key, data, listen, logs } => serve(key, data, listen, logs),
    }
}

/// `ORIGIN=VKEY`: the vkey's name must be the origin.
fn parse_log(text: &str) -> Result<LogVerifier> {
    let Some((origin, vkey)) = text.split_once('=') else { bail!("--log {text:?}: expected ORIGIN=VKEY") };
    let path = std::path::Path::new(vkey);
    let vkey = if !vkey.contains('+') && path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading the vkey file {vkey}"))?
    } else {
        vkey.to_string()
    };
    let log = LogVerifier::from_vkey(vkey.trim()).with_context(|| format!("--log {origin}"))?;
    if log.name() != origin {
        bail!("--log {origin}: the vkey is for {:?}; a log's key name is its origin", log.name());
    }
    Ok(log)
}

fn serve(key: PathBuf, data: PathBuf, listen: SocketAddr, logs: Vec<String>) -> Result<()> {
    let signer = key_file::read(&key)?;
    let logs = logs.iter().map(|l| parse_log(l)).collect::<Result<Vec<_>>>()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let test_pause = TestPause::from_env();
    if let Some(pause) = test_pause {
        tracing::warn!(?pause, "test pause while persisting is on: for tests only");
    }
    let vkey = signer.vkey();
    let origins: Vec<String> = logs.iter().map(|l| l.name().to_string()).collect();
    let config = WitnessConfig { signer, logs, data_dir: data.clone(), clock: system_clock(), test_pause };
    let witness = Arc::new(Witness::open(config)?);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("--listen {listen}"))?;
        let address = listener.local_addr()?;
        for origin in &origins {
            match witness.latest(origin) {
                Some(cp) => eprintln!("log {origin}: last cosigned size {}", cp.size),
                None => eprintln!("log {origin}: nothing cosigned yet"),
            }
        }
        eprintln!("witness {vkey}");
        // Tests and scripts read this line for the address (with --listen …:0).
        println!("listening on http://{address}");
        fundtrail_witness::server::serve(listener, witness, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
