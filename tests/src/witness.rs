//! `fundtrail witness serve` as a child process, as a witness operator runs it: its
//! key made with `fundtrail witness keys new`, on a fixed free loopback port (so a
//! stopped witness comes back at the URL the log was given), with its own data
//! directory. Killed and reaped on drop.
//!
//! The binary is the caller's (`env!("CARGO_BIN_EXE_fundtrail")`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;

/// How long a witness may take to print its address.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// A witness's key: its file and its vkey.
pub struct WitnessKey {
    pub path: PathBuf,
    pub vkey: String,
    pub name: String,
}

/// `fundtrail witness keys new --name NAME --out DIR/<name>.key`.
pub fn new_key(binary: &Path, dir: &Path, name: &str) -> WitnessKey {
    let path = dir.join(format!("{}.key", name.replace('/', "_")));
    let out = Command::new(binary)
        .args(["witness", "keys", "new", "--name", name, "--out"])
        .arg(&path)
        .output()
        .expect("run fundtrail witness keys new");
    assert!(out.status.success(), "witness keys new: {}", String::from_utf8_lossy(&out.stderr));
    let vkey = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    WitnessKey { path, vkey, name: name.to_owned() }
}

/// A running (or stopped) `fundtrail witness serve`.
pub struct WitnessProcess {
    binary: PathBuf,
    key: PathBuf,
    data: PathBuf,
    log: String,
    port: u16,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`: the same across restarts.
    pub url: String,
}

impl WitnessProcess {
    /// Starts a witness of the log `log` (`ORIGIN=VKEY`) on a free port.
    pub fn start(binary: &Path, key: &Path, data: &Path, log: &str) -> WitnessProcess {
        let port = free_port().expect("a free port");
        let mut witness = WitnessProcess {
            binary: binary.to_owned(),
            key: key.to_owned(),
            data: data.to_owned(),
            log: log.to_owned(),
            port,
            child: None,
            url: format!("http://127.0.0.1:{port}"),
        };
        witness.restart();
        witness
    }

    /// Starts it again on its port and data directory (after [`WitnessProcess::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the witness is still running");
        let mut child = Command::new(&self.binary)
            .args(["witness", "serve", "--key"])
            .arg(&self.key)
            .arg("--data")
            .arg(&self.data)
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--log", &self.log])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fundtrail witness serve");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_WAIT).expect("the witness prints its address");
        assert_eq!(line.trim(), format!("listening on {}", self.url), "the witness listens where it was told");
        self.child = Some(child);
    }

    /// SIGKILL, as a crash or a pulled cable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill the witness");
            child.wait().expect("reap the witness");
        }
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
