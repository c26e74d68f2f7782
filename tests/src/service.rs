//! One way to start a FundTrail `Service` in a test or a benchmark: on the
//! embedded sled log or on a real nats-server, with a fresh log key, in its own
//! temporary directory, behind the real HTTP router when a test speaks HTTP.
//!
//! ```no_run
//! # async fn f() {
//! use fundtrail_testkit::service::{Store, TestService};
//! let h = TestService::start(Store::Nats).await; // a nats-server of its own
//! h.setup().await; // genesis, keys, the fund, roles, committee: the cast's
//! let (_id, envelope) = h.cast.donation(120_000, fundtrail_testkit::service::t0());
//! h.service.submit(envelope).await.unwrap();
//! # }
//! ```
//!
//! `ServiceSetup` is the only place tests fill in a `ServiceConfig`: a test that
//! needs other settings (two replicas on one stream, small projection chunks)
//! changes the setup's fields, not a copy of the config.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use fundtrail_envelope::ActorKey;
use fundtrail_http::AppState;
use fundtrail_ledger::LogSigner;
use fundtrail_service::{Clock, LogBackend, ManualClock, Service, ServiceConfig, WriterConfig};
use fundtrail_store::StreamSettings;

use crate::cast::Cast;
use crate::NatsServer;

/// The checkpoint origin of every test ledger.
pub const TEST_ORIGIN: &str = "fundtrail.test/ledger";
/// The fund the cast of [`TestService`] runs.
pub const TEST_FUND: &str = "xihu-01";

/// The tests' "now": 2026-03-01 09:00 UTC (a `ManualClock` starts there).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

/// Where the log lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The embedded sled log, in the test's temporary directory.
    Embedded,
    /// A nats-server of the test's own ([`NatsServer::start`]).
    Nats,
}

impl Store {
    /// `Store::Nats` when `nats`, for tests run on both stores.
    pub fn nats_if(nats: bool) -> Store {
        if nats {
            Store::Nats
        } else {
            Store::Embedded
        }
    }
}

/// Everything a `Service` is started with, with test defaults (checkpoints every 64
/// entries or 100 ms, the default writer, a fresh log key).
#[derive(Clone)]
pub struct ServiceSetup {
    pub backend: LogBackend,
    pub projections_dir: PathBuf,
    /// The log key's seed: replicas serving one ledger share it.
    pub log_seed: [u8; 32],
    pub origin: String,
    pub writer: WriterConfig,
    pub checkpoint_entries: u64,
    pub checkpoint_interval: Duration,
    pub chunk_messages_max: usize,
    /// Save the fold every this many events (0: never).
    pub snapshot_events: u64,
    /// Witnesses that must cosign a checkpoint before it is served (none by default).
    pub witnesses: Option<fundtrail_service::Witnessing>,
}

impl ServiceSetup {
    /// The embedded log in `dir/log`, projections in `dir/projections`.
    pub fn embedded(dir: &Path) -> ServiceSetup {
        ServiceSetup::on(LogBackend::Embedded(dir.join("log")), dir.join("projections"))
    }

    /// The JetStream stream at `url`, projections in `dir/projections`.
    pub fn nats(url: &str, dir: &Path) -> ServiceSetup {
        let connect = fundtrail_store::NatsConnect::plain(url).expect("a server URL");
        let backend = LogBackend::Nats { connect, settings: StreamSettings::default() };
        ServiceSetup::on(backend, dir.join("projections"))
    }

    fn on(backend: LogBackend, projections_dir: PathBuf) -> ServiceSetup {
        ServiceSetup {
            backend,
            projections_dir,
            log_seed: ActorKey::generate().expect("OS RNG").seed(),
            origin: TEST_ORIGIN.to_owned(),
            writer: WriterConfig::default(),
            checkpoint_entries: 64,
            checkpoint_interval: Duration::from_millis(100),
            chunk_messages_max: fundtrail_service::projections::CHUNK_MESSAGES_MAX,
            snapshot_events: fundtrail_service::projections::SNAPSHOT_EVENTS_DEFAULT,
            witnesses: None,
        }
    }

    pub fn config(self) -> ServiceConfig {
        let log_signer = LogSigner::from_seed(&self.origin, &self.log_seed).expect("the origin is a valid log name");
        ServiceConfig {
            backend: self.backend,
            projections_dir: self.projections_dir,
            writer: self.writer,
            log_signer,
            checkpoint_entries: self.checkpoint_entries,
            checkpoint_interval: self.checkpoint_interval,
            chunk_messages_max: self.chunk_messages_max,
            snapshot_events: self.snapshot_events,
            witnesses: self.witnesses,
        }
    }

    /// `fundtrail_service::Service::start` with this setup.
    pub async fn start(self, clock: Arc<dyn Clock>) -> Result<Service> {
        let what = format!("starting a service with projections in {}", self.projections_dir.display());
        Service::start(self.config(), clock).await.context(what)
    }
}

/// A service on a fresh log of its own, its manual clock at [`t0`], and a cast
/// of actors with real keys for the fund [`TEST_FUND`].
pub struct TestService {
    pub service: Arc<Service>,
    pub clock: ManualClock,
    pub cast: Cast,
    pub dir: tempfile::TempDir,
    pub nats: Option<NatsServer>,
}

impl TestService {
    pub async fn start(store: Store) -> TestService {
        TestService::start_with(store, |_| {}).await
    }

    /// Like [`TestService::start`], with the setup changed by `adjust` first.
    pub async fn start_with(store: Store, adjust: impl FnOnce(&mut ServiceSetup)) -> TestService {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let nats = (store == Store::Nats).then(|| NatsServer::start().expect("nats-server starts"));
        let mut setup = match &nats {
            Some(server) => ServiceSetup::nats(&server.url(), dir.path()),
            None => ServiceSetup::embedded(dir.path()),
        };
        adjust(&mut setup);
        let clock = ManualClock::new(t0());
        let service = setup.start(Arc::new(clock.clone())).await.expect("the service starts");
        TestService { service: Arc::new(service), clock, cast: Cast::new(TEST_FUND), dir, nats }
    }

    /// The cast's setup (genesis, keys, fund, roles, committee), each applied.
    pub async fn setup(&self) {
        for envelope in self.cast.setup(t0()) {
            let submitted = self.service.submit(envelope).await.expect("setup accepted");
            assert!(submitted.applied, "setup event {} applied", submitted.accepted.seq);
        }
    }
}

/// The public HTTP API over a service, on 127.0.0.1 and a free port.
pub struct TestHttp {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestHttp {
    /// Serves `fundtrail_http::router` over `service` (on the current tokio runtime).
    pub async fn serve(service: Arc<Service>) -> Result<TestHttp> {
        TestHttp::serve_with(service, fundtrail_http::Limits::default()).await
    }

    /// Like [`TestHttp::serve`], shedding load at `limits`.
    pub async fn serve_with(service: Arc<Service>, limits: fundtrail_http::Limits) -> Result<TestHttp> {
        let state = AppState::with_limits(service, limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(fundtrail_http::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(TestHttp { url, state, stop: Some(stop), task: Some(task) })
    }

    /// Stops accepting requests, ends live feeds and waits for answers in flight.
    pub async fn stop(mut self) -> Result<()> {
        self.state.begin_shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.context("the HTTP server task")?.context("the HTTP server")?;
        }
        Ok(())
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        self.state.begin_shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
