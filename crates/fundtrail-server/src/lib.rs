//! `fundtrail-server`: one FundTrail server in a process — the service (log,
//! sequencer, projections, ledger), its public HTTP API, the witnesses that cosign
//! its checkpoints and, when asked, the private donor vault on its own listener —
//! started together and stopped in order. `fundtrail serve` and `fundtrail demo`
//! are thin callers of [`start`]; [`demo_witnesses`] starts in-process witnesses
//! for the demo.
//!
//! Architecture invariant: no argument parsing and no printing to stdout (the CLI's
//! job); waiting for the event log is said on stderr and in the log, because an
//! operator must see why the server has not started yet.

pub mod demo_witnesses;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fundtrail_envelope::ActorKey;
use fundtrail_ledger::LogSigner;
use fundtrail_service::{Clock, LogBackend, Service, ServiceConfig, Witnessing, WriterConfig};
use fundtrail_store::{NatsConnect, StreamSettings};
use fundtrail_witness::{WitnessClientConfig, WitnessEndpoint, WitnessPool};

/// The log key file inside the data directory when none is given.
pub const LOG_KEY_FILE: &str = "log.key";
/// The checkpoint origin when none is given.
pub const DEFAULT_ORIGIN: &str = "fundtrail.local/ledger";
/// The projections' sled directory (views, ledger, the fold's snapshot) inside the
/// data directory.
pub const PROJECTIONS_DIR: &str = "projections";

/// What an in-process server needs.
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The NATS servers and credentials; `None` for the embedded log in `data_dir`.
    pub nats: Option<NatsConnect>,
    /// The key that signs checkpoints.
    pub log_key: ActorKey,
    /// Pinned host key id (the trust anchor for genesis).
    pub host_key: Option<String>,
    pub clock: Arc<dyn Clock>,
    /// How far back `occurred_at` may lie.
    pub backdate_max: chrono::Duration,
    /// Witnesses whose quorum must cosign a checkpoint before it is served.
    pub witnesses: Option<Witnesses>,
}

/// Settings an operator may tune; every one has a default.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// The checkpoint origin (C2SP tlog-checkpoint's first line).
    pub origin: String,
    /// A checkpoint at least every this many entries…
    pub checkpoint_entries: u64,
    /// …or this often, whichever comes first.
    pub checkpoint_interval: Duration,
    pub settings: StreamSettings,
    pub limits: fundtrail_http::Limits,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            origin: DEFAULT_ORIGIN.into(),
            checkpoint_entries: 1_000,
            checkpoint_interval: Duration::from_millis(250),
            settings: StreamSettings::default(),
            limits: fundtrail_http::Limits::default(),
        }
    }
}

/// The witnesses of a server: endpoints, quorum, timeout.
pub struct Witnesses {
    pub endpoints: Vec<WitnessEndpoint>,
    pub quorum: usize,
    pub request_timeout_ms: u64,
}

/// Most a witness request's timeout may be set to.
pub const WITNESS_TIMEOUT_MS_MAX: u64 = 60_000;

impl Witnesses {
    /// Parses `URL=VKEY` texts, a quorum (default: a majority) and a timeout.
    pub fn parse(texts: &[String], quorum: Option<usize>, request_timeout_ms: u64) -> Result<Option<Witnesses>> {
        if texts.is_empty() {
            return Ok(None);
        }
        let endpoints =
            texts.iter().map(|t| WitnessEndpoint::parse(t).context("--witness")).collect::<Result<Vec<_>>>()?;
        let quorum = quorum.unwrap_or(endpoints.len() / 2 + 1);
        if quorum == 0 || quorum > endpoints.len() {
            bail!("--witness-quorum {quorum}: must be between 1 and the {} witnesses given", endpoints.len());
        }
        if !(1..=WITNESS_TIMEOUT_MS_MAX).contains(&request_timeout_ms) {
            bail!("--witness-timeout-ms {request_timeout_ms}: must be between 1 and {WITNESS_TIMEOUT_MS_MAX}");
        }
        Ok(Some(Witnesses { endpoints, quorum, request_timeout_ms }))
    }

    /// One line for the operator: who witnesses and how many must cosign.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.endpoints.iter().map(|e| e.verifier.name()).collect();
        format!("{} (quorum {})", names.join(", "), self.quorum)
    }

    fn witnessing(&self) -> Result<Witnessing> {
        let config =
            WitnessClientConfig { request_timeout_ms: self.request_timeout_ms, ..WitnessClientConfig::default() };
        let pool = WitnessPool::new(self.endpoints.clone(), config).context("--witness")?;
        Ok(Witnessing { pool: Arc::new(pool), quorum: self.quorum })
    }
}

/// A server running in this process.
pub struct RunningServer {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The ledger's verifier key (C2SP vkey).
    pub vkey: String,
    pub service: Arc<Service>,
    state: fundtrail_http::AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    private: Option<PrivateVault>,
}

/// The private donor vault's listener.
struct PrivateVault {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Pins a witness policy (C2SP tlog-policy text) in the portal's page, whose checks
    /// then demand its quorum.
    pub fn pin_witness_policy(&self, policy: &str) -> Result<()> {
        self.state.pin_witness_policy(policy).map_err(|e| anyhow::anyhow!("the portal's witness policy: {e}"))
    }

    /// Serves the private donor vault API (over `<data>/vault`) on its own listener,
    /// behind `token`. Returns its URL.
    pub async fn start_private_vault(
        &mut self,
        addr: SocketAddr,
        data: &Path,
        token: fundtrail_http::vault::BearerToken,
    ) -> Result<String> {
        if self.private.is_some() {
            bail!("the private donor vault API is already served");
        }
        let dir = data.join(fundtrail_service::vault::VAULT_DIR);
        let vault = fundtrail_service::vault::DonorVault::open(&dir, self.service.clock.clone())
            .with_context(|| format!("cannot open the donor vault in {}", dir.display()))?;
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (private)"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(fundtrail_http::vault::serve_private(
            listener,
            vault,
            self.service.clone(),
            token,
            async move {
                let _ = stopped.await;
            },
        ));
        self.private = Some(PrivateVault { shutdown, task });
        Ok(url)
    }

    /// Stops the private listener, then stops accepting public requests, ends live
    /// feeds, waits for answers in flight, then stops the service.
    pub async fn stop(self) -> Result<()> {
        if let Some(private) = self.private {
            let _ = private.shutdown.send(());
            private.task.await??;
        }
        self.state.begin_shutdown();
        let _ = self.shutdown.send(());
        self.http.await??;
        self.service.shutdown();
        Ok(())
    }
}

/// Starts the service and its HTTP server in this process (on the current tokio
/// runtime). While the event log is unreachable it waits (see `start_service`).
pub async fn start(options: ServerOptions, tuning: Tuning) -> Result<RunningServer> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create the data directory {}", options.data_dir.display()))?;
    let signer = LogSigner::from_seed(&tuning.origin, &options.log_key.seed())
        .with_context(|| format!("origin {:?} is not a valid log name", tuning.origin))?;
    let host_key = match &options.host_key {
        Some(k) => Some(k.parse().with_context(|| format!("--host-key {k:?} is not a key id"))?),
        None => None,
    };
    let writer = WriterConfig { host_key, backdate_max: options.backdate_max, ..WriterConfig::default() };
    let backend = match &options.nats {
        Some(connect) => LogBackend::Nats { connect: connect.clone(), settings: tuning.settings.clone() },
        None => LogBackend::Embedded(options.data_dir.join("log")),
    };
    let witnessing = options.witnesses.as_ref().map(Witnesses::witnessing).transpose()?;
    let config = || ServiceConfig {
        backend: backend.clone(),
        projections_dir: options.data_dir.join(PROJECTIONS_DIR),
        writer: writer.clone(),
        log_signer: signer.clone(),
        checkpoint_entries: tuning.checkpoint_entries,
        checkpoint_interval: tuning.checkpoint_interval,
        chunk_messages_max: fundtrail_service::projections::CHUNK_MESSAGES_MAX,
        snapshot_events: fundtrail_service::projections::SNAPSHOT_EVENTS_DEFAULT,
        witnesses: witnessing.clone(),
    };
    let service = Arc::new(start_service(config, options.clock).await?);
    let state = fundtrail_http::AppState::with_limits(service.clone(), tuning.limits);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(fundtrail_http::serve(listener, state.clone(), async move {
        let _ = stop.await;
    }));
    let vkey = service.read.vkey.clone();
    Ok(RunningServer { url, vkey, service, state, shutdown, http, private: None })
}

/// First pause while waiting for NATS; doubled after each attempt up to the max.
const NATS_WAIT_INITIAL: Duration = Duration::from_millis(500);
const NATS_WAIT_MAX: Duration = Duration::from_secs(10);

/// Starts the service; while its log is unreachable (NATS down, a cluster
/// without a stream leader yet), waits with backoff and says so on stderr,
/// instead of exiting. Anything else (refused credentials, a weak stream, a
/// broken data dir) ends the start with its error.
async fn start_service(config: impl Fn() -> ServiceConfig, clock: Arc<dyn Clock>) -> Result<Service> {
    let mut pause = NATS_WAIT_INITIAL;
    for attempt in 1.. {
        match Service::start(config(), clock.clone()).await {
            Ok(service) => return Ok(service),
            Err(fundtrail_service::ServiceError::Log(fundtrail_store::LogError::Unavailable { cause })) => {
                eprintln!(
                    "waiting for the event log (attempt {attempt}): {cause}; trying again in {} ms",
                    pause.as_millis()
                );
                tracing::warn!(attempt, %cause, "waiting for the event log");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(NATS_WAIT_MAX);
            }
            Err(e) => return Err(e).context("starting the service"),
        }
    }
    unreachable!("the loop returns")
}

/// Drops the projections named (every one when `names` is empty) of the stopped
/// server whose data directory is `data`, so that its next start rebuilds them from
/// the log ([`fundtrail_service::projections::rebuild`]). Returns the names dropped.
pub fn drop_projections(data: &Path, names: Vec<String>) -> Result<Vec<String>> {
    let dir = data.join(PROJECTIONS_DIR);
    if !dir.exists() {
        bail!("{} holds no projections", data.display());
    }
    let db = fundtrail_store::open_sled(&sled::Config::new().path(&dir))
        .with_context(|| format!("cannot open {} (is a server still running on it?)", dir.display()))?;
    let names = if names.is_empty() {
        fundtrail_service::Projection::ALL.iter().map(|p| p.to_string()).collect()
    } else {
        names
    };
    fundtrail_service::projections::rebuild(&db, &names)?;
    Ok(names)
}
