//! `deploy/` as written: a 3-node JetStream cluster rendered from
//! `deploy/cluster/node-*.conf` and `deploy/accounts.conf` (only ports and
//! directories substituted; the accounts' passwords in nats-server's environment),
//! two `serve` replicas connected as the restricted `fundtrail` user the way
//! README and deploy/README.md say (`--nats` with all three nodes, `--nats-user`,
//! the password from FUNDTRAIL_NATS_PASSWORD for one and from a file for the
//! other, `--replicas 3`), donations posted to both; then the node replica A is
//! connected to is killed and A keeps serving through another node. The replicas
//! converge on one signed tree, and the auditor — connected as the read-only
//! `auditor` user — verifies the stream and each replica's ledger.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::cluster::{stream_info, NatsCluster, AUDITOR_USER, SERVICE_USER, STREAM_REPLICAS};
use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::{accept, agent, get_json, get_text, post_once, wait_converged};

const FUND: &str = "xihu-cluster";
/// Donations posted before and after the node is killed.
const DONATIONS: usize = 12;
/// How long replica A may answer 503 (or nothing) after its node is killed.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);
const CONVERGE_WAIT: Duration = Duration::from_secs(120);
const INFO_TIMEOUT: Duration = Duration::from_secs(10);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fundtrail"))
}

/// Posts `envelope` to `base` until it is accepted, resending the same bytes after a
/// 503 or no answer (at most one effect) until `deadline`; returns its sequence and
/// how many attempts failed.
fn accept_within(base: &str, envelope: &[u8], deadline: Instant) -> (u64, usize) {
    let client = agent();
    let mut failed = 0;
    loop {
        match post_once(&client, base, envelope) {
            Some(a) if matches!(a.status, 200..=202) => return (a.body["seq"].as_u64().expect("seq"), failed),
            Some(a) if a.status == 503 => failed += 1,
            None => failed += 1,
            Some(a) => panic!("{base}: {} {}", a.status, a.body),
        }
        assert!(
            Instant::now() < deadline,
            "{base} did not accept a donation within {FAILOVER_WAIT:?} of the node kill"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn replicas_on_the_deploy_cluster_keep_serving_when_their_node_dies() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let cluster = NatsCluster::start(&deploy).expect("the cluster of deploy/ starts");
    let dir = tempfile::tempdir().unwrap();
    let log_key = dir.path().join("log.key");
    let out = Command::new(bin()).args(["keys", "new", "--out", log_key.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let password_file = dir.path().join("nats-password");
    std::fs::write(&password_file, format!("{}\n", cluster.passwords.service)).unwrap();

    let urls = cluster.urls();
    let common =
        ["--nats", &urls, "--nats-user", SERVICE_USER, "--replicas", "3", "--log-key", log_key.to_str().unwrap()];
    let a = ServeProcess::start_with_env(
        bin(),
        &dir.path().join("a"),
        &common,
        &[("FUNDTRAIL_NATS_PASSWORD", &cluster.passwords.service)],
    );
    let mut with_file = common.to_vec();
    with_file.extend(["--nats-password-file", password_file.to_str().unwrap()]);
    let b = ServeProcess::start(bin(), &dir.path().join("b"), &with_file);
    for replica in [&a, &b] {
        assert!(!replica.log_text().contains(&cluster.passwords.service), "a password in the log");
    }

    let info =
        stream_info(&cluster.nodes[0].url(), SERVICE_USER, &cluster.passwords.service, "FUNDTRAIL", INFO_TIMEOUT)
            .expect("STREAM.INFO as the service user");
    assert_eq!(info.replicas, STREAM_REPLICAS, "the stream is replicated on every node: {info:?}");
    assert!(info.leader.is_some(), "{info:?}");

    let cast = Cast::new(FUND);
    let now = chrono::Utc::now();
    let client = agent();
    let mut last_seq = 0;
    for envelope in cast.setup(now) {
        last_seq = accept(&client, &a.url, &envelope);
    }
    for i in 0..DONATIONS {
        let replica = if i % 2 == 0 { &a } else { &b };
        last_seq = accept(&client, &replica.url, &cast.donation(1_000 + i as i64, now).1);
    }

    // Kill the node A is connected to; A must keep serving through another one.
    let node = cluster
        .nodes
        .iter()
        .position(|n| a.remote_ports().contains(&n.ports.client))
        .expect("replica A is connected to one of the nodes");
    eprintln!("killing {}, the node replica A is connected to", cluster.nodes[node].name);
    cluster.nodes[node].kill();
    let killed = Instant::now();
    let mut failed = 0;
    let mut first_accepted = None;
    for i in 0..DONATIONS {
        let (seq, f) = accept_within(&a.url, &cast.donation(2_000 + i as i64, now).1, killed + FAILOVER_WAIT);
        first_accepted.get_or_insert_with(|| killed.elapsed());
        failed += f;
        last_seq = last_seq.max(seq);
        // B is on a live node, or on the killed one too; either way the kill may have
        // taken the stream's leader, and until the cluster elects another one B answers
        // 503 `unavailable` as honestly as A does.
        let (seq, f) = accept_within(&b.url, &cast.donation(3_000 + i as i64, now).1, killed + FAILOVER_WAIT);
        failed += f;
        last_seq = last_seq.max(seq);
    }
    eprintln!(
        "failover: A accepted again {:?} after the kill, {failed} attempts to A or B failed before",
        first_accepted.unwrap()
    );
    let killed_port = cluster.nodes[node].ports.client;
    let now_on = a.remote_ports();
    assert!(!now_on.contains(&killed_port), "A is still on the killed node");
    assert!(cluster.nodes.iter().any(|n| now_on.contains(&n.ports.client)), "A is connected to one of the live nodes");

    cluster.restart(node).expect("the node starts again");
    cluster.wait_healthy(CONVERGE_WAIT).unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails()));
    let bodies: Vec<String> = [&a, &b].iter().map(|r| wait_converged(&r.url, last_seq, CONVERGE_WAIT)).collect();
    assert_eq!(bodies[0], bodies[1], "the replicas serve one signed tree");
    let cash: Vec<_> =
        [&a, &b].iter().map(|r| get_json(&format!("{}/v1/funds/{FUND}", r.url))["cash"].clone()).collect();
    assert_eq!(cash[0], cash[1], "the replicas agree on the balances");
    let donated: i64 = (0..DONATIONS as i64).map(|i| (1_000 + i) + (2_000 + i) + (3_000 + i)).sum();
    assert_eq!(cash[0]["received_fen"].as_i64().unwrap(), donated, "{}", cash[0]);

    // The auditor reads the stream through the cluster as the read-only user.
    let vkey = get_text(&format!("{}/ledger/vkey", a.url)).expect("vkey").trim().to_owned();
    let ledger = format!("{}/ledger", b.url);
    let out = Command::new(bin())
        .args(["verify", "--nats", &urls, "--nats-user", AUDITOR_USER, "--ledger", &ledger, "--vkey", &vkey])
        .env("FUNDTRAIL_NATS_PASSWORD", &cluster.passwords.auditor)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "verify --nats as the auditor: {text}");
    assert!(!text.contains(&cluster.passwords.auditor), "a password in the output");
    let out = Command::new(bin())
        .args(["verify", "--ledger", &format!("{}/ledger", a.url), "--vkey", &vkey])
        .output()
        .unwrap();
    assert!(out.status.success(), "verify --ledger: {}", String::from_utf8_lossy(&out.stderr));
}
