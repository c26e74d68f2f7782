//! `fundtrail demo`, run as the binary: against a `fundtrail serve` child (times
//! are now) and with its own embedded server (simulated dates). The server's
//! balances must equal the figures the demo reports, to the fen.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::get_json;
use fundtrail_testkit::NatsServer;
use serde_json::Value;

/// A `fundtrail serve` child (on NATS when given a server) and its directory.
struct Server {
    _process: ServeProcess,
    url: String,
    dir: tempfile::TempDir,
    _nats: Option<NatsServer>,
}

fn start_server() -> Server {
    start_server_on(None)
}

/// `fundtrail serve` as a child process: on the embedded store, or on NATS JetStream.
fn start_server_on(nats: Option<NatsServer>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url_arg = nats.as_ref().map(NatsServer::url);
    let extra: Vec<&str> = url_arg.as_deref().map(|url| vec!["--nats", url]).unwrap_or_default();
    let binary = Path::new(env!("CARGO_BIN_EXE_fundtrail"));
    let process = ServeProcess::start(binary, &dir.path().join("server"), &extra);
    Server { url: process.url.clone(), _process: process, dir, _nats: nats }
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
    // The portal, and the example donor's "My donation" link: index, salt, reference.
    assert!(stdout.contains(&format!("portal       {url}/\n")), "{stdout}");
    let link = receipt["portal_link"].as_str().expect("a portal link");
    let rest = link.strip_prefix(&format!("{url}/#/my/{}/", receipt["index"])).expect(link);
    let (salt, reference) = rest.split_once('/').expect("salt/reference");
    assert_eq!(salt.len(), 43, "{link}");
    assert!(salt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{link}");
    assert_eq!(Some(reference), receipt["donor"].as_str(), "the demo's references need no escaping");
    assert!(stdout.contains(link), "{stdout}");
    assert!(stdout.contains("this donation is yours"), "the demo verified the donor's receipt: {stdout}");
    assert!(stdout.contains("✓ ledger"), "the demo verified the ledger: {stdout}");
    assert!(stdout.contains("equal the demo's own fold"), "{stdout}");
    follow_the_money(url, data, fund);
}

/// Restricted gifts and traces (docs/design.md §1.6): the garden's approval was refused
/// for reaching into 助老 money; the example donor's ¥520 (restricted to 助老) went to
/// P-2026-08; `fundtrail trace` prints the server's line; and an auditor's replay of the
/// ledger reproduces every gift's trace byte for byte.
fn follow_the_money(url: &str, data: &Path, fund: &str) {
    let p10 = get_json(&format!("{url}/v1/funds/{fund}/proposals/P-2026-10"));
    assert_eq!(p10["status"], "declined");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(data.join("summary.json")).unwrap()).unwrap();
    let proof = summary["example_receipt"]["receipt"].as_str().unwrap().to_owned();
    let id = Path::new(&proof).file_stem().unwrap().to_str().unwrap().to_owned();
    let trace = get_json(&format!("{url}/v1/donations/{id}/trace"));
    let line = trace["summary"].as_str().unwrap().to_owned();
    assert!(
        line.starts_with("your ¥520.00 (restricted to 助老): ¥520.00 → P-2026-08 冬季独居老人取暖设备, paid "),
        "{line}"
    );
    assert!(line.ends_with("; ¥0.00 unspent"), "{line}");
    let csv = fundtrail(&["accounts", "--fund", fund, "--year", "2026", "--csv", "--server", url]);
    assert!(csv.status.success(), "{}", text(&csv));
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(csv.starts_with("fund,year,section,channel,purpose,amount_fen,amount_yuan\n"), "{csv}");
    assert!(csv.contains(&format!("{fund},2026,net_assets,,助老,")), "{csv}");
    let cli = fundtrail(&["trace", &id, "--server", url]);
    assert!(cli.status.success(), "{}", text(&cli));
    assert_eq!(String::from_utf8_lossy(&cli.stdout).lines().next(), Some(line.as_str()));

    // The elderly-care partner's goods, restricted to 助老, went to P-2026-07 (助老) first;
    // the milk left over is still in stock, for 助老 only.
    let goods = summary["example_goods"].as_str().expect("the demo's restricted goods gift").to_owned();
    let trace = get_json(&format!("{url}/v1/donations/{goods}/trace"));
    assert_eq!(trace["kind"], "goods");
    assert_eq!(trace["restricted_purpose"], "助老");
    let goods_line = trace["summary"].as_str().unwrap().to_owned();
    assert!(
        goods_line.starts_with(
            "your 20 袋（10kg） 大米 (restricted to 助老): 20 袋（10kg） → 重阳节慰问独居老人32户 (P-2026-07), "
        ),
        "{goods_line}"
    );
    assert!(goods_line.contains(" | 40 箱 牛奶: 32 箱 → 重阳节慰问独居老人32户 (P-2026-07), "), "{goods_line}");
    assert!(goods_line.ends_with("; 8 箱 in stock"), "{goods_line}");
    assert_eq!(trace["lines"][1]["distributions"][0]["quantity"], 32);
    assert_eq!(trace["lines"][1]["distributions"][0]["title"], "重阳节慰问独居老人");
    let cli = fundtrail(&["trace", &goods, "--server", url]);
    assert!(cli.status.success(), "{}", text(&cli));
    let printed = String::from_utf8_lossy(&cli.stdout).into_owned();
    assert_eq!(printed.lines().next(), Some(goods_line.as_str()));
    assert!(
        printed.contains("handed out 32 箱 → 重阳节慰问独居老人32户 for P-2026-07 重阳节慰问独居老人"),
        "{printed}"
    );
    assert!(printed.contains("in stock   8 箱"), "{printed}");

    let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
    let log = fundtrail_ledger::LogVerifier::from_vkey(vkey.trim()).unwrap();
    let source = fundtrail_audit::open_source(&format!("{url}/ledger")).unwrap();
    let options = fundtrail_audit::VerifyOptions { previous: None, progress: None };
    let report = fundtrail_audit::verify_ledger(source.as_ref(), &log, options).unwrap();
    let fund_id = fundtrail_domain::FundId::new(fund).unwrap();
    let gifts: Vec<_> = report.state.funds[&fund_id].donations.keys().cloned().collect();
    assert!(gifts.len() > 400, "{} gifts", gifts.len());
    assert_eq!(report.traces.whole, report.traces.gifts);
    // Every disclosure is v2 and cites the accounts of 2026 (the auditor's replay checked
    // each figure at its place); the last, after the year closed, cites its final figures.
    let disclosures = &report.state.funds[&fund_id].disclosures;
    assert!(disclosures.len() >= 4);
    let accounts = get_json(&format!("{url}/v1/funds/{fund}/accounts?year=2026"));
    for (i, d) in disclosures.iter().enumerate() {
        let event = get_json(&format!("{url}/v1/events/{}", d.event))["event"].clone();
        assert_eq!(event["v"], 2, "{event}");
        let cited = &event["body"]["accounts"];
        assert_eq!(cited["year"], 2026, "{event}");
        if i == disclosures.len() - 1 {
            let year = &accounts["accounts"][0];
            assert_eq!(cited["net_assets_restricted"], year["net_assets_restricted"], "{cited}");
            assert_eq!(cited["income_restricted_fen"], year["income_restricted_fen"], "{cited}");
            assert!(cited["net_assets_restricted"]["助老"].as_i64().is_some(), "{cited}");
        }
    }
    assert_eq!(report.traces.goods_whole, report.traces.goods_gifts);
    assert!(report.traces.goods_gifts >= 37, "{:?}", report.traces);
    let goods_gifts = report.state.funds[&fund_id].goods_lots.gifts.keys().cloned();
    for gift in gifts.into_iter().chain(goods_gifts) {
        let ours = fundtrail_domain::gift_trace(&report.state, &gift).unwrap();
        let mut served = get_json(&format!("{url}/v1/donations/{gift}/trace"));
        assert_eq!(served["summary"].as_str(), Some(ours.summary().as_str()));
        served.as_object_mut().unwrap().remove("summary");
        let as_of = served.as_object_mut().unwrap().remove("as_of_sequence").and_then(|v| v.as_u64());
        assert!(
            as_of.is_some_and(|s| s >= report.entries),
            "the served trace is of the ledger verified or later: {as_of:?}"
        );
        assert_eq!(served, serde_json::to_value(&ours).unwrap(), "gift {gift}");
    }
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
    let port = fundtrail_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let out = fundtrail(&["demo", "--data", data.to_str().unwrap(), "--listen", &listen, "--no-wait", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "the demo is quick: {elapsed:?}");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(data.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["totals"]["paid_fen"], 12_220_000, "the simulated year's payouts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("this donation is yours"));
    // Three witnesses, two of three: the policy is written and printed, and both the
    // ledger's and the receipt's checks enforced it.
    let policy = std::fs::read_to_string(data.join("policy.txt")).unwrap();
    let parsed = fundtrail_ledger::Policy::parse(policy.as_bytes()).unwrap();
    assert_eq!(parsed.logs().len(), 1, "{policy}");
    assert!(policy.contains("group local 2 street bureau paper\nquorum local\n"), "{policy}");
    assert!(stdout.contains("quorum local\n"), "the policy is printed: {stdout}");
    assert_eq!(stdout.matches("witnessed    quorum local met").count(), 2, "verify and verify-receipt: {stdout}");
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

/// Two replicas on one NATS stream serve every gift's trace byte for byte alike.
#[test]
fn traces_are_identical_on_two_replicas() {
    let nats = fundtrail_testkit::NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().unwrap();
    let log_key = dir.path().join("log.key");
    let out = fundtrail(&["keys", "new", "--out", log_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let binary = Path::new(env!("CARGO_BIN_EXE_fundtrail"));
    let a = ServeProcess::replica(binary, &dir.path().join("a"), &nats.url(), &log_key);
    let b = ServeProcess::replica(binary, &dir.path().join("b"), &nats.url(), &log_key);
    let data = dir.path().join("demo");
    let out = fundtrail(&["demo", "--server", &a.url, "--data", data.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_secs(2));
    let (size, _) = fundtrail_testkit::web::checkpoint(&a.url).expect("a checkpoint");
    let body_a = fundtrail_testkit::web::wait_converged(&a.url, size, Duration::from_secs(60));
    let body_b = fundtrail_testkit::web::wait_converged(&b.url, size, Duration::from_secs(60));
    assert_eq!(body_a, body_b);
    let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
    let log = fundtrail_ledger::LogVerifier::from_vkey(vkey.trim()).unwrap();
    let source = fundtrail_audit::open_source(&format!("{}/ledger", b.url)).unwrap();
    let options = fundtrail_audit::VerifyOptions { previous: None, progress: None };
    let report = fundtrail_audit::verify_ledger(source.as_ref(), &log, options).unwrap();
    let mut gifts = 0;
    for fund in report.state.funds.values() {
        for gift in fund.donations.keys().chain(fund.goods_lots.gifts.keys()) {
            let path = format!("/v1/donations/{gift}/trace");
            let (on_a, on_b) = (
                fundtrail_testkit::web::get_text(&format!("{}{path}", a.url)),
                fundtrail_testkit::web::get_text(&format!("{}{path}", b.url)),
            );
            assert!(on_a.is_some(), "{path}");
            assert_eq!(on_a, on_b, "{path}");
            gifts += 1;
        }
    }
    assert!(gifts > 400, "{gifts} gifts");
}
