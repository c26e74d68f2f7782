//! Two `fundtrail serve` processes on one nats-server, sharing one log key, as a
//! two-replica deployment runs. A fund is set up through replica A over HTTP;
//! then client threads race approvals and payouts alternately at A and B. Every
//! accepted answer has its own sequence, every refusal names its rule, both
//! replicas converge on the same balances, exactly the affordable proposals are
//! approved, and `fundtrail verify` accepts A's ledger.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::{accept, agent, get_json, get_text, post, wait_converged, Answer};
use fundtrail_testkit::NatsServer;
use serde_json::Value;

/// How long the replicas may take to converge and sign a covering checkpoint.
const CONVERGE_WAIT: Duration = Duration::from_secs(120);

const FUND: &str = "xihu-e2e";
/// ¥5,000 in the fund.
const FUNDED_FEN: i64 = 500_000;
/// Ten proposals of ¥800 each: floor(5000 / 800) = 6 can be approved.
const PROPOSALS: usize = 10;
const PROPOSAL_FEN: i64 = 80_000;
const AFFORDABLE: usize = (FUNDED_FEN / PROPOSAL_FEN) as usize;
/// Payout rounds: each round pays every proposal once through A and once through B.
const PAYOUT_ROUNDS: usize = 12;
/// Concurrent client threads in the race.
const CLIENTS: usize = 8;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundtrail")).args(args).output().expect("run fundtrail")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Approval,
    Payout,
}

/// One racing command: which replica, what, for which proposal, how much.
struct Racing {
    replica: usize,
    kind: Kind,
    proposal: String,
    fen: i64,
    envelope: Vec<u8>,
}

struct Outcome {
    kind: Kind,
    proposal: String,
    fen: i64,
    answer: Answer,
}

/// The race's commands: payouts from the first round on, while approvals reach A
/// and B at different rounds — many payouts arrive before any approval, and every
/// proposal is approved twice, once through each replica.
fn race_commands(cast: &Cast) -> Vec<Racing> {
    let now = chrono::Utc::now();
    let mut commands = Vec::new();
    for round in 0..PAYOUT_ROUNDS {
        for p in 0..PROPOSALS {
            let proposal = format!("P-{p}");
            for replica in 0..2 {
                if round == p % 4 + 3 * replica {
                    let envelope = cast.approval(&proposal, PROPOSAL_FEN, now);
                    let kind = Kind::Approval;
                    commands.push(Racing { replica, kind, proposal: proposal.clone(), fen: PROPOSAL_FEN, envelope });
                }
                let fen = 1_000 + round as i64;
                let envelope = cast.payout(&proposal, fen, now);
                commands.push(Racing { replica, kind: Kind::Payout, proposal: proposal.clone(), fen, envelope });
            }
        }
    }
    commands
}

/// `CLIENTS` threads share the queue; each posts to the command's replica.
fn race(urls: [String; 2], commands: Vec<Racing>) -> Vec<Outcome> {
    let queue = Arc::new(Mutex::new(commands.into_iter().collect::<VecDeque<_>>()));
    let urls = Arc::new(urls);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, urls) = (queue.clone(), urls.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut outcomes = Vec::new();
                loop {
                    let Some(c) = queue.lock().unwrap().pop_front() else { return outcomes };
                    let answer = post(&agent, &urls[c.replica], &c.envelope);
                    outcomes.push(Outcome { kind: c.kind, proposal: c.proposal, fen: c.fen, answer });
                }
            })
        })
        .collect();
    clients.into_iter().flat_map(|c| c.join().expect("client thread")).collect()
}

/// A refusal names its rule and the thing it refused.
fn check_refusal(o: &Outcome) {
    let a = &o.answer;
    assert!(matches!(a.status, 409 | 422), "{:?} {}: status {} {}", o.kind, o.proposal, a.status, a.body);
    assert!(a.content_type.starts_with("application/problem+json"), "{}", a.content_type);
    assert_eq!(a.body["status"], a.status);
    let code = a.body["code"].as_str().expect("code");
    let detail = a.body["detail"].as_str().expect("detail");
    match (o.kind, code) {
        // Approved already (through the other replica), or not approved yet.
        (_, "proposal") => assert!(detail.contains(&o.proposal) && detail.contains(" is "), "{detail}"),
        // The seventh approval: the fund cannot cover it.
        (Kind::Approval, "overspend") => {
            assert!(detail.contains(FUND) && detail.contains("available") && detail.contains("needed"), "{detail}")
        }
        _ => panic!("{:?} {}: unexpected refusal {code}: {detail}", o.kind, o.proposal),
    }
}

#[test]
fn two_replicas_race_over_http_and_converge() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().unwrap();
    let log_key = dir.path().join("log.key");
    let out = run(&["keys", "new", "--out", log_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let a =
        ServeProcess::replica(Path::new(env!("CARGO_BIN_EXE_fundtrail")), &dir.path().join("a"), &nats.url(), &log_key);
    let b =
        ServeProcess::replica(Path::new(env!("CARGO_BIN_EXE_fundtrail")), &dir.path().join("b"), &nats.url(), &log_key);
    let vkey = get_text(&format!("{}/ledger/vkey", a.url)).expect("vkey").trim().to_owned();
    assert_eq!(get_text(&format!("{}/ledger/vkey", b.url)).unwrap().trim(), vkey, "one log key, one vkey");

    // Set up through A: genesis, keys, fund, roles, committee; ¥5,000; ten
    // endorsed proposals of ¥800, applied for.
    let cast = Cast::new(FUND);
    let now = chrono::Utc::now();
    let client = agent();
    let mut last_seq = 0;
    let mut setup = cast.setup(now);
    setup.push(cast.donation(FUNDED_FEN, now).1);
    for p in 0..PROPOSALS {
        setup.extend(cast.endorsed_proposal(&format!("P-{p}"), PROPOSAL_FEN, now));
    }
    for envelope in &setup {
        let seq = accept(&client, &a.url, envelope);
        assert!(seq > last_seq, "sequences grow: {seq} after {last_seq}");
        last_seq = seq;
    }

    // The race.
    let commands = race_commands(&cast);
    let total = commands.len();
    assert!(total >= 250, "hundreds of requests: {total}");
    let outcomes = race([a.url.clone(), b.url.clone()], commands);
    assert_eq!(outcomes.len(), total, "every command has a final answer");
    let mut seqs = HashSet::new();
    let mut approved = BTreeMap::new();
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    let mut refused = 0;
    for o in &outcomes {
        match o.answer.status {
            200..=202 => {
                let seq = o.answer.body["seq"].as_u64().expect("seq");
                assert!(seqs.insert(seq), "two accepted commands answered with sequence {seq}");
                assert!(seq > setup.len() as u64, "a race event after the setup: {seq}");
                last_seq = last_seq.max(seq);
                match o.kind {
                    Kind::Approval => assert!(approved.insert(o.proposal.clone(), o.fen).is_none(), "approved twice"),
                    Kind::Payout => *paid.entry(o.proposal.clone()).or_default() += o.fen,
                }
            }
            _ => {
                check_refusal(o);
                refused += 1;
            }
        }
    }
    eprintln!("race: {} accepted, {refused} refused of {total}", seqs.len());
    assert_eq!(approved.len(), AFFORDABLE, "exactly the affordable proposals are approved: {approved:?}");
    assert!(refused >= PROPOSALS * 2 - AFFORDABLE, "the race must bite: {refused} refused");
    for proposal in paid.keys() {
        assert!(approved.contains_key(proposal), "{proposal} paid without approval");
    }

    // Both replicas converge: same checkpoint, same balances, and the sums of
    // the accepted answers — nothing accepted is lost.
    let body_a = wait_converged(&a.url, last_seq, CONVERGE_WAIT);
    let body_b = wait_converged(&b.url, last_seq, CONVERGE_WAIT);
    assert_eq!(body_a, body_b, "one log key, one stream: the same signed tree");
    let fund_a = get_json(&format!("{}/v1/funds/{FUND}", a.url));
    let fund_b = get_json(&format!("{}/v1/funds/{FUND}", b.url));
    for field in ["cash", "by_channel", "proposals_by_status", "donations"] {
        assert_eq!(fund_a[field], fund_b[field], "{field} differs between A and B");
    }
    let cash = &fund_a["cash"];
    let fen = |v: &Value| v.as_i64().expect("an amount in fen");
    let paid_total: i64 = paid.values().sum();
    let approved_total: i64 = approved.values().sum();
    assert_eq!(fen(&cash["received_fen"]), FUNDED_FEN);
    assert_eq!(fen(&cash["paid_fen"]), paid_total);
    assert_eq!(fen(&cash["reserved_fen"]), approved_total - paid_total);
    assert!(fen(&cash["available_fen"]) >= 0, "{cash}");
    assert_eq!(fen(&cash["available_fen"]), FUNDED_FEN - approved_total);
    let proposals_a = get_json(&format!("{}/v1/funds/{FUND}/proposals", a.url));
    let proposals_b = get_json(&format!("{}/v1/funds/{FUND}/proposals", b.url));
    let list = proposals_a["proposals"].as_array().expect("proposals");
    assert_eq!(list.len(), PROPOSALS);
    let mut with_approval = 0;
    for (pa, pb) in list.iter().zip(proposals_b["proposals"].as_array().unwrap()) {
        let id = pa["proposal"].as_str().unwrap();
        assert_eq!(pa["proposal"], pb["proposal"]);
        for field in ["status", "approved_fen", "paid_fen", "remainder_fen"] {
            assert_eq!(pa[field], pb[field], "{id}.{field} differs between A and B");
        }
        let (approved_fen, paid_fen) = (fen(&pa["approved_fen"]), fen(&pa["paid_fen"]));
        assert!(paid_fen <= approved_fen, "{id}: paid {paid_fen} > approved {approved_fen}");
        assert_eq!(approved_fen, approved.get(id).copied().unwrap_or(0), "{id}");
        assert_eq!(paid_fen, paid.get(id).copied().unwrap_or(0), "{id}");
        with_approval += usize::from(approved_fen > 0);
    }
    assert_eq!(with_approval, AFFORDABLE);

    // An auditor replays A's whole ledger: every signature, role and rule.
    let ledger = format!("{}/ledger", a.url);
    let out = run(&["verify", "--ledger", &ledger, "--vkey", &vkey]);
    assert!(out.status.success(), "fundtrail verify failed:\n{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("verified: {last_seq} entries")), "{stdout}");
    assert!(stdout.contains(FUND), "{stdout}");
}
