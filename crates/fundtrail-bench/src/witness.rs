//! The benchmark's witnesses: [`WITNESSES`] in-process `fundtrail_witness` servers
//! on loopback, each with a fresh key (OS RNG) and its own data directory (state
//! fsynced before every cosignature, as a real witness does), quorum [`QUORUM`].

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use fundtrail_ledger::LogVerifier;
use fundtrail_service::Witnessing;
use fundtrail_witness::{
    key_file, system_clock, Witness, WitnessClientConfig, WitnessConfig, WitnessEndpoint, WitnessPool,
};

pub const WITNESSES: usize = 3;
pub const QUORUM: usize = 2;

/// Running witness servers; stopped when dropped.
pub struct Servers {
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the witnesses of the log `log_vkey` and the pool that asks them.
pub async fn start(dir: &Path, log_vkey: &str) -> Result<(Witnessing, Servers)> {
    let log = LogVerifier::from_vkey(log_vkey)?;
    let mut endpoints = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..WITNESSES {
        let (signer, _seed) = key_file::generate(&format!("witness-{i}.bench.example/w"))?;
        let vkey = signer.vkey();
        let data_dir = dir.join(format!("w{i}"));
        let config =
            WitnessConfig { signer, logs: vec![log.clone()], data_dir, clock: system_clock(), test_pause: None };
        let witness = Arc::new(Witness::open(config).context("opening a witness")?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tasks.push(tokio::spawn(fundtrail_witness::server::serve(listener, witness, std::future::pending())));
        endpoints.push(WitnessEndpoint::parse(&format!("{url}={vkey}"))?);
    }
    let pool = WitnessPool::new(endpoints, WitnessClientConfig::default())?;
    Ok((Witnessing { pool: Arc::new(pool), quorum: QUORUM }, Servers { tasks }))
}
