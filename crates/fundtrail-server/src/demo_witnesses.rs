//! The demo's three witnesses (C2SP tlog-witness): in-process `fundtrail_witness`
//! servers on loopback, each with its own key (OS RNG, written with mode 0600) and
//! data directory under `<demo data>/witnesses/`, and the witness policy (C2SP
//! tlog-policy) a donor or auditor would hold: two of the three. [`start_witnessed`]
//! starts them and the demo's embedded server that waits for their quorum.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use fundtrail_ledger::LogVerifier;
use fundtrail_witness::{key_file, system_clock, Witness, WitnessConfig, WitnessEndpoint};

use crate::{RunningServer, ServerOptions, Tuning, Witnesses};

/// The demo's witnesses: who they stand for (the policy's names) and their key names.
pub const WITNESSES: [(&str, &str); 3] = [
    ("street", "witness.xihu-street.example/office"),
    ("bureau", "witness.civil-affairs.hangzhou.example/w1"),
    ("paper", "witness.city-daily.example/w"),
];
/// Cosignatures a checkpoint needs (of the three).
pub const QUORUM: usize = 2;
/// How long the log waits for one witness's answer.
const REQUEST_TIMEOUT_MS: u64 = 2_000;

/// The running witnesses and the policy that names them.
pub struct DemoWitnesses {
    pub witnesses: Witnesses,
    /// `(policy name, vkey, url)` of each.
    pub listed: Vec<(String, String, String)>,
}

impl DemoWitnesses {
    /// Starts the three witnesses of the log `log_vkey` on the current tokio runtime.
    pub async fn start(dir: &Path, log_vkey: &str) -> Result<DemoWitnesses> {
        let log = LogVerifier::from_vkey(log_vkey).context("the log's vkey")?;
        let mut endpoints = Vec::new();
        let mut listed = Vec::new();
        for (short, name) in WITNESSES {
            let home = dir.join(short);
            std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
            let (signer, seed) = key_file::generate(name)?;
            key_file::write_new(&home.join("witness.key"), &signer, &seed)?;
            let vkey = signer.vkey();
            let config = WitnessConfig {
                signer,
                logs: vec![log.clone()],
                data_dir: home.join("data"),
                clock: system_clock(),
                test_pause: None,
            };
            let witness = Arc::new(Witness::open(config).with_context(|| format!("opening witness {short}"))?);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("a loopback port")?;
            let url = format!("http://{}", listener.local_addr()?);
            // Serves for as long as the demo's runtime runs.
            tokio::spawn(fundtrail_witness::server::serve(listener, witness, std::future::pending()));
            endpoints.push(WitnessEndpoint::parse(&format!("{url}={vkey}"))?);
            listed.push((short.to_owned(), vkey, url));
        }
        let witnesses = Witnesses { endpoints, quorum: QUORUM, request_timeout_ms: REQUEST_TIMEOUT_MS };
        Ok(DemoWitnesses { witnesses, listed })
    }

    /// The policy text (C2SP tlog-policy): this log, the three witnesses, two of three.
    pub fn policy(&self, log_vkey: &str) -> String {
        let mut text = String::from("# FundTrail demo: the ledger and its witnesses (fundtrail verify --policy)\n");
        text.push_str(&format!("log {log_vkey}\n\n"));
        for (short, vkey, url) in &self.listed {
            text.push_str(&format!("witness {short} {vkey} {url}\n"));
        }
        let names: Vec<&str> = self.listed.iter().map(|(s, _, _)| s.as_str()).collect();
        text.push_str(&format!("\ngroup local {QUORUM} {}\nquorum local\n", names.join(" ")));
        text
    }

    /// Writes the policy to `path`.
    pub fn write_policy(&self, path: &Path, log_vkey: &str) -> Result<PathBuf> {
        std::fs::write(path, self.policy(log_vkey)).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.to_owned())
    }
}

/// The demo's embedded server and the policy its witnesses stand under.
pub struct WitnessedDemo {
    pub server: RunningServer,
    /// The policy's text, pinned in the portal's page…
    pub policy: String,
    /// …and the file it was written to (`<dir>/policy.txt`).
    pub policy_path: PathBuf,
}

/// Starts the demo's three witnesses (under `<dir>/witnesses`) of the log that
/// `options.log_key` signs, writes their policy to `<dir>/policy.txt`, then starts
/// the server (default tuning) serving only what a quorum cosigned, its portal
/// checking against the same policy.
pub async fn start_witnessed(dir: &Path, mut options: ServerOptions) -> Result<WitnessedDemo> {
    let tuning = Tuning::default();
    let log_vkey = fundtrail_ledger::LogSigner::from_seed(&tuning.origin, &options.log_key.seed())?.vkey();
    let witnesses =
        DemoWitnesses::start(&dir.join("witnesses"), &log_vkey).await.context("starting the demo's witnesses")?;
    let policy_path = witnesses.write_policy(&dir.join("policy.txt"), &log_vkey)?;
    let policy = witnesses.policy(&log_vkey);
    options.witnesses = Some(witnesses.witnesses);
    let server = crate::start(options, tuning).await.context("starting the embedded server")?;
    server.pin_witness_policy(&policy)?;
    Ok(WitnessedDemo { server, policy, policy_path })
}
