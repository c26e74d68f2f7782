//! Three `fundtrail serve` replicas on one nats-server, sharing one log key, and
//! client threads posting signed donations, approvals and conflicting payouts to
//! the replicas in turn — with no fault at all. Each envelope is posted once (no
//! resend that would hide an error) and every status is counted: a 5xx (or no
//! answer) from a healthy replica fails the test; a lost race between replicas is
//! decided again, and a refusal is a 409/422 naming its rule. Then the replicas
//! converge on one signed tree and the same balances, nothing was paid beyond its
//! approval, and the stream holds no consumer beyond each replica's one follower.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::{accept, agent, get_json, post_once, wait_converged, Answer};
use fundtrail_testkit::NatsServer;
use serde_json::Value;

const REPLICAS: usize = 3;
const CLIENTS: usize = 12;
const FUND: &str = "xihu-contention";
const FUNDED_FEN: i64 = 400_000;
const PROPOSALS: usize = 6;
const PROPOSAL_FEN: i64 = 100_000;
/// Rounds of the race; each round posts a donation and a payout for every
/// proposal at every replica, and (in the first rounds) approvals at every replica.
const ROUNDS: usize = 40;
const PAYOUT_FEN: i64 = 3_000;
const CONVERGE_WAIT: Duration = Duration::from_secs(120);
/// How long the consumers of finished reads may take to be deleted.
const CONSUMERS_SETTLE_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Donation,
    Approval,
    Payout,
}

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
    replica: usize,
    answer: Option<Answer>,
}

fn commands(cast: &Cast) -> Vec<Racing> {
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    let mut next = 0usize;
    let mut push = |kind, proposal: String, fen, envelope| {
        out.push(Racing { replica: next % REPLICAS, kind, proposal, fen, envelope });
        next += 1;
    };
    for round in 0..ROUNDS {
        for r in 0..REPLICAS {
            let fen = 1_000 + (round * REPLICAS + r) as i64;
            push(Kind::Donation, String::new(), fen, cast.donation(fen, now).1);
        }
        for p in 0..PROPOSALS {
            let proposal = format!("P-{p}");
            if round == p % 3 {
                for _ in 0..REPLICAS {
                    push(Kind::Approval, proposal.clone(), PROPOSAL_FEN, cast.approval(&proposal, PROPOSAL_FEN, now));
                }
            }
            for _ in 0..REPLICAS {
                let fen = PAYOUT_FEN + round as i64;
                push(Kind::Payout, proposal.clone(), fen, cast.payout(&proposal, fen, now));
            }
        }
    }
    out
}

fn race(urls: Vec<String>, commands: Vec<Racing>) -> Vec<Outcome> {
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
                    let answer = post_once(&agent, &urls[c.replica], &c.envelope);
                    outcomes.push(Outcome {
                        kind: c.kind,
                        proposal: c.proposal,
                        fen: c.fen,
                        replica: c.replica,
                        answer,
                    });
                }
            })
        })
        .collect();
    clients.into_iter().flat_map(|c| c.join().expect("client thread")).collect()
}

#[test]
fn three_replicas_under_contention_answer_no_5xx() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().unwrap();
    let log_key = dir.path().join("log.key");
    let out = Command::new(env!("CARGO_BIN_EXE_fundtrail"))
        .args(["keys", "new", "--out", log_key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let replicas: Vec<ServeProcess> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            ServeProcess::replica(
                Path::new(env!("CARGO_BIN_EXE_fundtrail")),
                &dir.path().join(name),
                &nats.url(),
                &log_key,
            )
        })
        .collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();

    let cast = Cast::new(FUND);
    let now = chrono::Utc::now();
    let client = agent();
    let mut setup = cast.setup(now);
    setup.push(cast.donation(FUNDED_FEN, now).1);
    for p in 0..PROPOSALS {
        setup.extend(cast.endorsed_proposal(&format!("P-{p}"), PROPOSAL_FEN, now));
    }
    let mut last_seq = 0;
    for envelope in &setup {
        last_seq = accept(&client, &urls[0], envelope);
    }

    let commands = commands(&cast);
    let total = commands.len();
    let started = Instant::now();
    let outcomes = race(urls.clone(), commands);
    let elapsed = started.elapsed();
    assert_eq!(outcomes.len(), total);

    let mut statuses: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut seqs = HashSet::new();
    let mut approved: BTreeMap<String, i64> = BTreeMap::new();
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    let mut donated = 0i64;
    for o in &outcomes {
        let Some(answer) = &o.answer else {
            failures.push(format!("{:?} {} at replica {}: no answer", o.kind, o.proposal, o.replica));
            continue;
        };
        let code = answer.body["code"].as_str().unwrap_or("").to_owned();
        *statuses.entry((answer.status, code.clone())).or_default() += 1;
        match answer.status {
            200..=202 => {
                let seq = answer.body["seq"].as_u64().expect("seq");
                assert!(seqs.insert(seq), "two accepted commands answered with sequence {seq}");
                last_seq = last_seq.max(seq);
                match o.kind {
                    Kind::Donation => donated += o.fen,
                    Kind::Approval => assert!(approved.insert(o.proposal.clone(), o.fen).is_none(), "approved twice"),
                    Kind::Payout => *paid.entry(o.proposal.clone()).or_default() += o.fen,
                }
            }
            409 | 422 => {
                assert!(answer.content_type.starts_with("application/problem+json"), "{}", answer.content_type);
                let detail = answer.body["detail"].as_str().unwrap_or("");
                assert!(!code.is_empty() && !detail.is_empty(), "a refusal names its rule: {}", answer.body);
                assert_ne!(o.kind, Kind::Donation, "a donation refused: {}", answer.body);
            }
            status => {
                failures.push(format!("{:?} {} at replica {}: {status} {}", o.kind, o.proposal, o.replica, answer.body))
            }
        }
    }
    eprintln!(
        "contention: {total} posts to {REPLICAS} replicas from {CLIENTS} clients in {elapsed:?}; by status: {statuses:?}"
    );
    assert!(failures.is_empty(), "{} of {total} posts failed:\n{}", failures.len(), failures.join("\n"));
    assert!(!approved.is_empty(), "some approvals land");
    for (proposal, fen) in &paid {
        let limit = approved.get(proposal).copied().unwrap_or(0);
        assert!(*fen <= limit, "{proposal}: paid {fen} beyond its approval {limit}");
    }

    // The replicas converge: one signed tree, the same balances, the accepted sums.
    let bodies: Vec<String> = urls.iter().map(|u| wait_converged(u, last_seq, CONVERGE_WAIT)).collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]), "replicas differ: {bodies:?}");
    let funds: Vec<Value> = urls.iter().map(|u| get_json(&format!("{u}/v1/funds/{FUND}"))).collect();
    for f in &funds[1..] {
        assert_eq!(f["cash"], funds[0]["cash"], "balances differ between replicas");
    }
    let cash = &funds[0]["cash"];
    let fen = |v: &Value| v.as_i64().expect("fen");
    assert_eq!(fen(&cash["received_fen"]), FUNDED_FEN + donated);
    assert_eq!(fen(&cash["paid_fen"]), paid.values().sum::<i64>());
    assert!(fen(&cash["available_fen"]) >= 0, "{cash}");

    // No consumer left behind: each replica follows the log with one consumer.
    let deadline = Instant::now() + CONSUMERS_SETTLE_WAIT;
    loop {
        let consumers = nats.consumer_count().expect("consumer count");
        if consumers <= REPLICAS as u64 {
            eprintln!("consumers on the server after the race: {consumers}");
            break;
        }
        assert!(Instant::now() < deadline, "{consumers} consumers remain, more than one per replica ({REPLICAS})");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(replicas);
}
