//! `fundtrail serve` as a child process, as an operator runs it: on a free
//! loopback port (and a second one for `--private-listen` when asked), its log in
//! a file beside the data directory, ready once `/readyz` answers 200. Killed and
//! reaped on drop unless stopped with SIGTERM.
//!
//! The binary is the caller's (`env!("CARGO_BIN_EXE_fundtrail")` in the CLI's
//! tests): the test kit does not build it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{free_port, web};

/// How long a child server may take to become ready (loaded 2-core machine).
pub const READY_WAIT: Duration = Duration::from_secs(120);
/// How long a graceful shutdown may take after SIGTERM.
pub const STOP_WAIT: Duration = Duration::from_secs(60);
/// Times one start is tried with fresh ports (another process may take one).
pub const START_ATTEMPTS_MAX: u32 = 3;
const POLL: Duration = Duration::from_millis(100);

/// Numbers the log files of the servers one test process starts.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A running `fundtrail serve` child.
pub struct ServeProcess {
    child: Option<Child>,
    /// Base URL of the public listener, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// Base URL of the private donor vault listener, when started with one.
    pub private_url: Option<String>,
    /// The private listener's bearer token file (and the token), when started with one.
    pub private_token: Option<(PathBuf, String)>,
    log: PathBuf,
    /// The command line and environment it was started with, to start it again.
    command: Vec<std::ffi::OsString>,
    env: Vec<(String, String)>,
    binary: PathBuf,
}

impl ServeProcess {
    /// `BINARY serve --listen 127.0.0.1:<free> --data DATA EXTRA…`.
    pub fn start(binary: &Path, data: &Path, extra: &[&str]) -> ServeProcess {
        ServeProcess::start_inner(binary, data, extra, false)
    }

    /// A replica on the NATS stream at `nats`: `serve --nats NATS --log-key KEY` on the
    /// data dir `data` (replicas that serve one ledger share one log key).
    pub fn replica(binary: &Path, data: &Path, nats: &str, log_key: &Path) -> ServeProcess {
        let log_key = log_key.to_str().expect("a UTF-8 path");
        ServeProcess::start(binary, data, &["--nats", nats, "--log-key", log_key])
    }

    /// Like [`ServeProcess::start`], with `--private-listen 127.0.0.1:<free>` too.
    pub fn start_with_private(binary: &Path, data: &Path, extra: &[&str]) -> ServeProcess {
        ServeProcess::start_inner(binary, data, extra, true)
    }

    /// Like [`ServeProcess::start`], with these environment variables set (they
    /// override the default `RUST_LOG=warn`).
    pub fn start_with_env(binary: &Path, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        ServeProcess::start_full(binary, data, extra, false, env)
    }

    fn start_inner(binary: &Path, data: &Path, extra: &[&str], private: bool) -> ServeProcess {
        ServeProcess::start_full(binary, data, extra, private, &[])
    }

    fn start_full(binary: &Path, data: &Path, extra: &[&str], private: bool, env: &[(&str, &str)]) -> ServeProcess {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            let port = free_port().expect("a free port");
            let n = STARTED.fetch_add(1, Ordering::Relaxed);
            let log = data.with_extension(format!("serve-{}-{n}.log", std::process::id()));
            let mut command = Command::new(binary);
            command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"]).arg(data).args(extra);
            let private_url = private.then(|| {
                let port = free_port().expect("a free port");
                command.args(["--private-listen", &format!("127.0.0.1:{port}")]);
                format!("http://127.0.0.1:{port}")
            });
            let private_token = private.then(|| {
                let token = random_token();
                let path = data.with_extension(format!("private-token-{}-{n}", std::process::id()));
                std::fs::write(&path, format!("{token}\n")).expect("write the private token file");
                command.arg("--private-token-file").arg(&path);
                (path, token)
            });
            let args: Vec<std::ffi::OsString> = command.get_args().map(|a| a.to_owned()).collect();
            let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let mut server = ServeProcess {
                child: None,
                url: format!("http://127.0.0.1:{port}"),
                private_url,
                private_token,
                log,
                command: args,
                env,
                binary: binary.to_owned(),
            };
            server.spawn();
            match server.wait_ready() {
                Ok(()) => return server,
                Err(why) => last = why,
            }
        }
        panic!("fundtrail serve did not start in {START_ATTEMPTS_MAX} attempts: {last}");
    }

    fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the serve log");
        let child = Command::new(&self.binary)
            .args(&self.command)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} serve: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL (a crash: no shutdown) and reap; nothing if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (killed first if running) with the same command line, port and
    /// data directory; Ok once `/readyz` answers 200, Err with the log if it exited
    /// or did not get ready within `within`.
    pub fn restart(&mut self, within: Duration) -> Result<(), String> {
        self.kill();
        let deadline = Instant::now() + within;
        loop {
            self.spawn();
            loop {
                if let Ok(Some(status)) = self.child.as_mut().expect("running").try_wait() {
                    self.child = None;
                    if Instant::now() >= deadline {
                        return Err(format!("exited ({status}):\n{}", self.log_text()));
                    }
                    // Its port may still be held a moment after the kill: try again.
                    std::thread::sleep(Duration::from_millis(300));
                    break;
                }
                if web::ready(&self.url) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!("{} not ready within {within:?}", self.url));
                }
                std::thread::sleep(POLL);
            }
        }
    }

    /// The remote ports of this process's established TCP connections (to find the
    /// NATS node it is connected to), from `/proc`.
    pub fn remote_ports(&self) -> Vec<u16> {
        self.pid().map(remote_ports).unwrap_or_default()
    }

    /// Ok once `/readyz` answers 200; Err with the log if the process exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Ok(Some(status)) = self.child.as_mut().expect("running").try_wait() {
                return Err(format!("exited ({status}):\n{}", self.log_text()));
            }
            // A panicked task (the projection runner) never gets ready: say why now.
            if self.log_text().contains("panicked at") {
                panic!("{} panicked while starting:\n{}", self.url, self.log_text());
            }
            if web::ready(&self.url) {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "{} not ready within {READY_WAIT:?}:\n{}", self.url, self.log_text());
            std::thread::sleep(POLL);
        }
    }

    /// The file its log goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status of the graceful shutdown.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for serve") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fundtrail serve did not stop within {STOP_WAIT:?} of SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The remote ports of the established TCP connections of process `pid`: its
/// socket inodes (`/proc/PID/fd`) looked up in `/proc/net/tcp{,6}`.
pub fn remote_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let text = target.to_string_lossy();
                if let Some(inode) = text.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "01" || !inodes.contains(fields[9]) {
                continue;
            }
            if let Some(port) = fields[2].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) {
                ports.push(port);
            }
        }
    }
    ports
}

/// 32 hex digits from the OS RNG (a token made for one test).
pub fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
