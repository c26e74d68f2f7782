//! `fundtrail demo`, run as the binary: against a `fundtrail serve` child (times
//! are now) and with its own embedded server (simulated dates). The server's
//! balances must equal the figures the demo reports, to the fen.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a child server may take to become ready.
const READY_WAIT: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    _nats: Option<fundtrail_testkit::NatsServer>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

fn start_server() -> Server {
    start_server_on(None)
}

/// `fundtrail serve` as a child process: on the embedded store, or on NATS JetStream.
fn start_server_on(nats: Option<fundtrail_testkit::NatsServer>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fundtrail"));
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"]).arg(dir.path().join("server"));
    if let Some(n) = &nats {
        command.args(["--nats", &n.url()]);
    }
    let child = command.stdout(Stdio::null()).stderr(log).spawn().expect("spawn fundtrail serve");
    let mut server = Server { child, url: format!("http://127.0.0.1:{port}"), dir, _nats: nats };
    let deadline = Instant::now() + READY_WAIT;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(server.dir.path().join("serve.log")).unwrap_or_default();
            panic!("fundtrail serve exited ({status}) before it was ready:\n{log}");
        }
        if agent().get(format!("{}/readyz", server.url)).call().is_ok_and(|r| r.status() == 200) {
            return server;
        }
        assert!(Instant::now() < deadline, "fundtrail serve was not ready within {READY_WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(url: &str) -> Value {
    let mut response = agent().get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
}

fn fundtrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundtrail")).args(args).output().expect("run fundtrail")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The fund on the server shows exactly what the demo says it did.
fn check_against_server(url: &str, data: &Path, stdout: &str) {
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(data.join("summary.json")).unwrap()).unwrap();
    let fund = summary["fund"].as_str().unwrap();
    let view = get_json(&format!("{url}/v1/funds/{fund}"));
    let totals = &summary["totals"];
    for field in ["received_fen", "refunded_fen", "reserved_fen", "paid_fen", "available_fen"] {
        assert_eq!(view["cash"][field], totals[field], "cash.{field}");
    }
    assert_eq!(view["goods_received_value_fen"], totals["goods_received_value_fen"]);
    assert_eq!(view["goods_distributed_value_fen"], totals["goods_distributed_value_fen"]);
    assert_eq!(view["name"], "西湖街道社区发展基金");

    // The figures the demo printed are the server's.
    let yuan = |fen: &Value| {
        let fen = fen.as_i64().unwrap();
        let digits = (fen / 100).to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("¥{grouped}.{:02}", fen % 100)
    };
    for field in ["received_fen", "paid_fen", "available_fen"] {
        assert!(stdout.contains(&yuan(&view["cash"][field])), "the demo reports cash.{field}: {stdout}");
    }

    // The storyline: every channel gave, each kind of proposal ending happened.
    let received = view["cash"]["received_fen"].as_i64().unwrap();
    assert!((25_000_000..30_000_000).contains(&received), "about ¥270,000 in a year, got {received}");
    for channel in ["space_for_service", "neighbourhood_market", "micro_workshop", "direct"] {
        assert!(summary["by_channel"][channel]["received_fen"].as_i64().unwrap() > 0, "{channel}");
    }
    assert_eq!(summary["by_channel"]["micro_workshop"]["received_fen"], 5_000_000);
    for (id, status) in
        [("P-2026-03", "rejected"), ("P-2026-04", "closed"), ("P-2026-05", "declined"), ("P-2026-08", "approved")]
    {
        let p = get_json(&format!("{url}/v1/funds/{fund}/proposals/{id}"));
        assert_eq!(p["status"], status, "{id}");
        assert_eq!(summary["proposals"][id]["status"], status, "{id}");
    }
    let p4 = get_json(&format!("{url}/v1/funds/{fund}/proposals/P-2026-04"));
    assert_eq!(p4["paid_fen"], 4_280_000, "paid in two parts");
    assert_eq!(p4["released_fen"], 220_000, "closed under budget");
    assert!(summary["disclosures"].as_u64().unwrap() >= 4);
    assert!(summary["merchants"].as_u64().unwrap() >= 250);
    assert!(summary["goods_lines"].as_u64().unwrap() >= 100);

    // Keys are private, and the donor's receipt carries the salt.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(data.join("keys")).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let receipt = &summary["example_receipt"];
    let proof = std::fs::read_to_string(receipt["receipt"].as_str().unwrap()).unwrap();
    assert!(proof.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{proof}");
    assert!(stdout.contains("this donation is yours"), "the demo verified the donor's receipt: {stdout}");
    assert!(stdout.contains("✓ ledger"), "the demo verified the ledger: {stdout}");
    assert!(stdout.contains("equal the demo's own fold"), "{stdout}");
}

#[test]
fn demo_plays_a_year_against_a_running_server() {
    let server = start_server();
    let data = server.dir.path().join("demo");
    let started = Instant::now();
    let out = fundtrail(&["demo", "--server", &server.url, "--data", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    check_against_server(&server.url, &data, &stdout);
    assert!(stdout.contains("第4场 邻里集市") || stdout.contains("邻里集市"), "one line per day: {stdout}");
    eprintln!("demo against a running server took {elapsed:?}");

    // The same fund cannot be played twice: the data directory is not reused…
    let again = fundtrail(&["demo", "--server", &server.url, "--data", data.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    // …and with --fresh keys, the server refuses a second genesis, with its reason.
    let again = fundtrail(&["demo", "--server", &server.url, "--data", data.to_str().unwrap(), "--fresh", "--quiet"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already established"), "{}", text(&again));
}

#[test]
fn demo_plays_a_year_against_a_server_on_nats() {
    let nats = fundtrail_testkit::NatsServer::start().expect("nats-server");
    let server = start_server_on(Some(nats));
    let data = server.dir.path().join("demo");
    let out = fundtrail(&["demo", "--server", &server.url, "--data", data.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    check_against_server(&server.url, &data, &stdout);
}

#[test]
fn demo_plays_a_year_on_its_own_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let out = fundtrail(&["demo", "--data", data.to_str().unwrap(), "--listen", &listen, "--no-wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "the demo is quick: {elapsed:?}");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(data.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["totals"]["paid_fen"], 12_220_000, "the simulated year's payouts");
    assert!(String::from_utf8_lossy(&out.stdout).contains("this donation is yours"));
}

#[test]
fn demo_refuses_to_reuse_or_wipe_a_foreign_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "not the demo's").unwrap();
    let d = dir.path().to_str().unwrap();
    let out = fundtrail(&["demo", "--server", "http://127.0.0.1:9", "--data", d]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    let out = fundtrail(&["demo", "--server", "http://127.0.0.1:9", "--data", d, "--fresh"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("refusing to wipe"), "{}", text(&out));
    assert!(dir.path().join("precious.txt").exists());
}
