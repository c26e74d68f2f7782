//! `fundtrail serve` as an operator runs it: a private listener that refuses to
//! start without its token; against NATS, credentials that never
//! show in any output (even at trace level), a start that waits for NATS instead
//! of exiting, and `/readyz` / `/healthz` that answer at once from what the
//! process knows while NATS is down, with a `Retry-After` that fits the cause.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::{agent, ready};
use fundtrail_testkit::NatsServer;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fundtrail"))
}

/// 32 hex digits from the OS RNG: a password made in the test, never committed.
fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `fundtrail serve ARGS` with ENV until it exits or `wait` passes (then
/// kills it); returns its exit success (None if killed) and stdout + stderr.
fn run_serve(args: &[&str], env: &[(&str, &str)], wait: Duration) -> (Option<bool>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.log");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(args)
        .env("RUST_LOG", "trace")
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + wait;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.success());
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(&out_path).unwrap())
}

#[test]
fn secrets_never_show_in_any_output() {
    let (user, password, wrong) = ("fundtrail", random_secret(), random_secret());
    let nats = NatsServer::start_with_config(&format!("authorization {{ user: {user}, password: \"{password}\" }}"))
        .expect("nats-server");
    let url = nats.url();

    // A wrong password: refused at once, naming the user, not the password.
    let (status, out) = run_serve(
        &["--nats", &url, "--nats-user", user],
        &[("FUNDTRAIL_NATS_PASSWORD", &wrong)],
        Duration::from_secs(60),
    );
    assert_eq!(status, Some(false), "refused credentials end the start:\n{out}");
    assert!(out.contains("refused the credentials") && out.contains("user fundtrail"), "{out}");
    assert!(!out.contains(&wrong), "the wrong password is in the output:\n{out}");

    // Credentials in a URL are refused without being repeated.
    let in_url = format!("nats://{user}:{password}@127.0.0.1:{}", nats.port());
    let (status, out) = run_serve(&["--nats", &in_url], &[], Duration::from_secs(30));
    assert_eq!(status, Some(false), "{out}");
    assert!(out.contains("carries credentials"), "{out}");
    assert!(!out.contains(&password), "the password is in the output:\n{out}");

    // The right password from a file: it serves; then NATS goes away and the
    // reconnection errors are logged at trace level: still no password.
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("nats.password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let args = ["--nats", &url, "--nats-user", user, "--nats-password-file", password_file.to_str().unwrap()];
    let mut server = ServeProcess::start_with_env(binary(), &dir.path().join("data"), &args, &[("RUST_LOG", "trace")]);
    nats.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&server.url) {
        assert!(Instant::now() < deadline, "still ready with NATS down");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.terminate();
    let log = server.log_text();
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(!log.contains(&password), "the password is in the serve log");
}

#[test]
fn serve_waits_for_nats_and_readyz_answers_at_once_while_it_is_down() {
    let nats = NatsServer::start().expect("nats-server");
    nats.kill();
    let dir = tempfile::tempdir().unwrap();

    // NATS is down: serve waits, saying so, instead of exiting.
    let (status, out) = run_serve(&["--nats", &nats.url()], &[], Duration::from_secs(4));
    assert_eq!(status, None, "serve exited while NATS was down:\n{out}");
    assert!(out.contains("waiting for the event log"), "{out}");

    // Started while NATS is down, it serves once NATS is back.
    let url = nats.url();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        nats.restart().expect("nats-server back");
        nats
    });
    let server = ServeProcess::start(binary(), &dir.path().join("data"), &["--nats", &url]);
    let nats = restarter.join().unwrap();
    assert!(server.log_text().contains("waiting for the event log"), "{}", server.log_text());

    // NATS down again: /readyz turns 503 "unavailable" with Retry-After 5, and
    // both probes answer from memory.
    nats.kill();
    let client = agent();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut slowest = Duration::ZERO;
    let mut unready = 0;
    while unready < 20 {
        assert!(Instant::now() < deadline, "/readyz did not report the outage");
        let asked = Instant::now();
        let mut readyz = client.get(format!("{}/readyz", server.url)).call().unwrap();
        let healthz = client.get(format!("{}/healthz", server.url)).call().unwrap();
        slowest = slowest.max(asked.elapsed());
        assert_eq!(healthz.status(), 200);
        if readyz.status() == 503 {
            unready += 1;
            assert_eq!(readyz.headers().get("retry-after").unwrap(), "5");
            let body = readyz.body_mut().read_to_string().unwrap();
            assert!(body.contains("\"unavailable\"") && body.contains("has not answered"), "{body}");
        } else {
            assert_eq!(readyz.status(), 200);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("slowest /readyz + /healthz pair while NATS was down: {slowest:?}");
    // The target is 100 ms; the bound leaves room for a loaded 2-core machine
    // while still failing a handler that waits on the network (5 s before).
    assert!(slowest < Duration::from_millis(1_000), "/readyz + /healthz took {slowest:?}");
    nats.restart().expect("nats-server back");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&server.url) {
        assert!(Instant::now() < deadline, "not ready again after NATS came back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_private_listener_refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (status, out) = run_serve(&["--private-listen", "127.0.0.1:0"], &[], Duration::from_secs(30));
    assert_eq!(status, Some(false), "{out}");
    assert!(out.contains("needs --private-token-file"), "{out}");
    let short = dir.path().join("short.token");
    std::fs::write(&short, "too-short\n").unwrap();
    let args = ["--private-listen", "127.0.0.1:0", "--private-token-file", short.to_str().unwrap()];
    let (status, out) = run_serve(&args, &[], Duration::from_secs(30));
    assert_eq!(status, Some(false), "{out}");
    assert!(out.contains("needs 32 to 1024") && !out.contains("too-short"), "{out}");
}
