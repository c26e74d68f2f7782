//! Test harness: a real `nats-server` per test, on free loopback ports, with its own
//! temporary directory (config file, JetStream store, log).
//!
//! ```no_run
//! let server = fundtrail_testkit::NatsServer::start().unwrap();
//! let url = server.url(); // nats://127.0.0.1:<port>
//! // ... connect, append ...
//! server.kill(); // SIGKILL, as in a crash
//! server.restart().unwrap(); // same ports, same store dir
//! ```
//!
//! Every test starts its own server: nothing is shared between tests. The binary is
//! `$NATS_SERVER_BIN`, or `nats-server` on `PATH`; `scripts/install-test-deps.sh`
//! installs a pinned one. The server runs with JetStream `sync_interval: always` (every
//! acknowledged message is fsynced, as production must run) unless started with
//! [`Sync::Default`] (the server's default 2-minute sync, for benchmarks).
//!
//! Beside it: [`service`] starts a `Service` (embedded or NATS) in-process, with the
//! HTTP API when wanted; [`serve`] runs `fundtrail serve` as a child process; [`web`]
//! is a blocking HTTP client for tests; [`cast`] is a cast of actors with real keys;
//! [`witness`] runs `fundtrail witness serve` as a child process.
//!
//! Architecture invariant: the harness never listens on 4222 and never touches anything
//! outside its own temporary directory.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long `start`/`restart` wait for the server to answer its health check. Generous:
/// tests run on a loaded 2-core machine.
pub const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times `start` picks fresh ports when the server fails to come up (another
/// process may take a port between picking it and the server binding it).
pub const SERVER_START_ATTEMPTS_MAX: u32 = 5;
/// The port a developer's own nats-server usually holds: never used by tests.
pub const NATS_DEFAULT_PORT: u16 = 4222;
/// The version `scripts/install-test-deps.sh` installs (keep the two in step).
pub const NATS_SERVER_VERSION_PINNED: &str = "2.15.1";
/// Poll interval while waiting for the server.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// JetStream disk sync policy of the test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// `sync_interval: always`: fsync before every acknowledgement (the ledger setting).
    Always,
    /// The server's default (periodic sync), for benchmarks.
    Default,
}

/// A running `nats-server` owned by one test; killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    http_port: u16,
    sync: Sync,
    /// Extra lines of the server's configuration (e.g. an `authorization` block).
    extra_config: String,
    child: Mutex<Option<Child>>,
}

impl NatsServer {
    /// Starts a server with JetStream and `sync_interval: always`.
    pub fn start() -> Result<NatsServer> {
        NatsServer::start_with(Sync::Always)
    }

    /// Starts a server with the given JetStream sync policy.
    pub fn start_with(sync: Sync) -> Result<NatsServer> {
        NatsServer::start_configured(sync, "")
    }

    /// Starts a server with `sync_interval: always` and these extra configuration
    /// lines (an `authorization { user: …, password: … }` block, say).
    pub fn start_with_config(extra_config: &str) -> Result<NatsServer> {
        NatsServer::start_configured(Sync::Always, extra_config)
    }

    fn start_configured(sync: Sync, extra_config: &str) -> Result<NatsServer> {
        let binary = find_binary()?;
        let mut last_error = None;
        for _ in 0..SERVER_START_ATTEMPTS_MAX {
            let server = NatsServer {
                binary: binary.clone(),
                dir: tempfile::Builder::new()
                    .prefix("fundtrail-nats-")
                    .tempdir()
                    .context("creating the nats-server temp dir")?,
                client_port: free_port()?,
                http_port: free_port()?,
                sync,
                extra_config: extra_config.to_owned(),
                child: Mutex::new(None),
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one attempt"))
            .context(format!("nats-server did not start after {SERVER_START_ATTEMPTS_MAX} attempts"))
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The server's process id, while it runs (to read its resident memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| c.id())
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.client_port
    }

    /// The monitoring endpoint's base URL, `http://127.0.0.1:<port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// How many consumers the server holds, over all streams (its `/jsz` count).
    pub fn consumer_count(&self) -> Result<u64> {
        consumer_count(&self.monitor_url())
    }

    /// The JetStream store directory (kept across `kill`/`restart`).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// The server's log file (appended to across restarts), for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Kills the server with SIGKILL (no shutdown, no final sync) and reaps it.
    /// Does nothing if it is not running.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut process) = child.take() {
            // `Child::kill` is SIGKILL on Unix.
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the server again on the same ports with the same store dir, killing it
    /// first if it is still running. Waits until it is healthy.
    pub fn restart(&self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        // The old process is gone, but its port may linger briefly: retry until the
        // deadline rather than fail on the first bind error.
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// True while the server process is running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match child.as_mut() {
            Some(process) => matches!(process.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    fn write_config(&self) -> Result<()> {
        let sync_line = match self.sync {
            Sync::Always => "  sync_interval: always\n",
            Sync::Default => "",
        };
        let config = format!(
            "# Written by fundtrail-testkit.\n\
             listen: \"127.0.0.1:{client}\"\n\
             http: \"127.0.0.1:{http}\"\n\
             jetstream {{\n  store_dir: {store:?}\n{sync_line}}}\n{extra}\n",
            client = self.client_port,
            http = self.http_port,
            store = self.store_dir().display().to_string(),
            extra = self.extra_config,
        );
        std::fs::write(self.config_path(), config).context("writing nats-server.conf")?;
        Ok(())
    }

    fn spawn_and_wait(&self) -> Result<()> {
        assert_ne!(self.client_port, NATS_DEFAULT_PORT);
        assert_ne!(self.http_port, NATS_DEFAULT_PORT);
        self.write_config()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the nats-server log")?;
        let process = Command::new(&self.binary)
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(process);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(error) => {
                self.kill();
                Err(error.context(format!("server log:\n{}", self.log_tail())))
            }
        }
    }

    /// Waits until the process answers `GET /healthz` with 200 (JetStream included).
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            if !self.is_running() {
                bail!("nats-server exited during startup");
            }
            if healthz_ok(self.http_port) && TcpStream::connect(self.client_addr()).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("nats-server not healthy after {SERVER_READY_TIMEOUT:?}");
            }
            std::thread::sleep(READY_POLL_INTERVAL);
        }
    }

    fn client_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How many consumers the server whose monitoring endpoint is `monitor_url` holds
/// (the `consumers` of its `/jsz`, over all streams and accounts).
pub fn consumer_count(monitor_url: &str) -> Result<u64> {
    let jsz = web::get_text(&format!("{monitor_url}/jsz")).context("GET /jsz")?;
    let value: serde_json::Value = serde_json::from_str(&jsz).context("/jsz is not JSON")?;
    value["consumers"].as_u64().with_context(|| format!("/jsz has no consumer count: {jsz}"))
}

/// Finds the nats-server binary: `$NATS_SERVER_BIN`, else `nats-server` on `PATH`, else
/// the default install location of `scripts/install-test-deps.sh`.
pub fn find_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Ok(path);
        }
        bail!(
            "NATS_SERVER_BIN={} is not an executable file; run scripts/install-test-deps.sh \
             and export the NATS_SERVER_BIN it prints",
            path.display()
        );
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join("nats-server");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    if let Some(candidate) = default_install_path().filter(|p| is_executable(p)) {
        return Ok(candidate);
    }
    bail!(
        "nats-server not found: set NATS_SERVER_BIN or put nats-server (>= 2.12) on PATH; \
         scripts/install-test-deps.sh installs the pinned one and prints its path \
         (scripts/test.sh does both)"
    )
}

/// Where `scripts/install-test-deps.sh` puts the pinned binary by default, so a plain
/// `cargo test` finds it after one run of the script.
fn default_install_path() -> Option<PathBuf> {
    let tools = match std::env::var_os("FUNDTRAIL_TOOLS_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            cache.join("fundtrail").join("tools")
        }
    };
    Some(tools.join(format!("nats-server-bin-{NATS_SERVER_VERSION_PINNED}/bin/nats-server")))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A free loopback port, never 4222. The OS picks it; the listener is dropped at once,
/// so another process may take it before the server binds it (`start` retries).
/// A free loopback port (never 4222).
pub fn free_port() -> Result<u16> {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free port")?;
        let port = listener.local_addr()?.port();
        if port != NATS_DEFAULT_PORT {
            return Ok(port);
        }
    }
}

/// True when `GET /healthz` on the monitoring port answers 200.
fn healthz_ok(http_port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_kills_and_restarts_on_the_same_port() {
        let server = NatsServer::start().expect("start");
        let port = server.port();
        assert_ne!(port, NATS_DEFAULT_PORT);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        let config = std::fs::read_to_string(server.config_path()).unwrap();
        assert!(config.contains("sync_interval: always"), "{config}");

        server.kill();
        assert!(!server.is_running());
        server.restart().expect("restart");
        assert_eq!(server.port(), port);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn default_sync_omits_sync_interval() {
        let server = NatsServer::start_with(Sync::Default).expect("start");
        let config = std::fs::read_to_string(server.config_path()).unwrap();
        assert!(!config.contains("sync_interval"), "{config}");
    }

    #[test]
    fn two_servers_do_not_share_anything() {
        let a = NatsServer::start().expect("start a");
        let b = NatsServer::start().expect("start b");
        assert_ne!(a.port(), b.port());
        assert_ne!(a.store_dir(), b.store_dir());
    }
}

pub mod cast;
pub mod cluster;
pub mod serve;
pub mod service;
pub mod web;
pub mod witness;
