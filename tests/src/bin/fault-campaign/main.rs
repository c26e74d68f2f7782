//! The fault campaign (`scripts/fault-campaign.sh --cycles N`): a 3-node JetStream
//! cluster rendered from `deploy/` (R3, `sync_interval: always`, the restricted
//! account) on free loopback ports, three `fundtrail serve` replicas, clients
//! posting signed donations, committee votes, approvals and deliberately
//! conflicting payouts to random replicas (on failure: the same envelope to another
//! replica), and a nemesis that injects one fault per cycle: kill -9 a node,
//! SIGSTOP/SIGCONT a node, kill the stream leader (asked of `$JS.API.STREAM.INFO`),
//! kill -9 a replica (and restart it), restart the whole cluster, cut one node off
//! from the others (route traffic runs through userspace proxies, see `proxy.rs`).
//!
//! Then the checker proves: every acknowledged event id is in the stream exactly
//! once at its acknowledged sequence; nothing paid beyond its approval and no
//! negative balance (and `fundtrail verify --nats` and `--ledger` pass); the
//! replicas converge on the same views and checkpoint root; every checkpoint a
//! client saw is consistent with the final one (consistency proofs from the ledger
//! API); the SSE feed read by one subscriber throughout has no gaps; no 5xx from a
//! healthy replica outside a fault. It writes `report.json` and `report.md`, and
//! exits non-zero when any check fails.
//!
//! Not linked into the `fundtrail` binary: a test-kit binary that runs it.

mod proxy;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use fundtrail_domain::event::*;
use fundtrail_domain::{Fen, FundId};
use fundtrail_envelope::ActorKey;
use fundtrail_ledger::{check_consistency, Hash, LogVerifier};
use fundtrail_testkit::cast::{hash, pid, Cast};
use fundtrail_testkit::cluster::{
    stream_info, NatsCluster, NodePorts, Routing, AUDITOR_USER, CLUSTER_START_ATTEMPTS_MAX, SERVICE_USER,
};
use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::post_once;
use serde_json::{json, Value};

const REPLICAS: usize = 3;
const FUND: &str = "campaign";
/// The first donation: enough for every payout the clients make.
const FUNDING_FEN: i64 = 1_000_000_000;
/// What each proposal asks for and is approved; three payouts of half race for it.
const PROPOSAL_FEN: i64 = 40_000;
/// One client request's time limit, unless `--timeout-ms` says otherwise.
const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// How long one envelope is offered to the replicas before the client gives up.
const SUBMIT_DEADLINE: Duration = Duration::from_secs(120);
/// After a fault is healed and everything is ready again, 5xx answers are still
/// counted as the fault's for this long (followers catching up).
const RECOVERY_GRACE: Duration = Duration::from_secs(5);
/// How long nodes and replicas may take to come back after a fault.
const RECOVERY_WAIT: Duration = Duration::from_secs(90);
const CONVERGE_WAIT: Duration = Duration::from_secs(180);
const STREAM: &str = "FUNDTRAIL";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Fault {
    KillNode,
    PauseNode,
    KillLeader,
    KillReplica,
    RestartCluster,
    Partition,
}

const FAULTS: [Fault; 6] =
    [Fault::KillNode, Fault::PauseNode, Fault::KillLeader, Fault::KillReplica, Fault::RestartCluster, Fault::Partition];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillNode => "kill-9 node",
            Fault::PauseNode => "SIGSTOP node",
            Fault::KillLeader => "kill-9 stream leader",
            Fault::KillReplica => "kill-9 replica",
            Fault::RestartCluster => "restart whole cluster",
            Fault::Partition => "partition one node",
        }
    }
}

struct Args {
    cycles: usize,
    fundtrail: PathBuf,
    deploy: PathBuf,
    out: PathBuf,
    clients: usize,
    hold: Duration,
    quiet: Duration,
    timeout: Duration,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        cycles: 10,
        fundtrail: PathBuf::from("target/release/fundtrail"),
        deploy: PathBuf::from("deploy"),
        out: PathBuf::from("target/fault-campaign"),
        clients: 8,
        hold: Duration::from_millis(3_000),
        quiet: Duration::from_millis(2_000),
        timeout: REQUEST_TIMEOUT_DEFAULT,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cycles" => args.cycles = value()?.parse().context("--cycles")?,
            "--fundtrail" => args.fundtrail = value()?.into(),
            "--deploy" => args.deploy = value()?.into(),
            "--out" => args.out = value()?.into(),
            "--clients" => args.clients = value()?.parse().context("--clients")?,
            "--hold-ms" => args.hold = Duration::from_millis(value()?.parse().context("--hold-ms")?),
            "--quiet-ms" => args.quiet = Duration::from_millis(value()?.parse().context("--quiet-ms")?),
            "--timeout-ms" => args.timeout = Duration::from_millis(value()?.parse().context("--timeout-ms")?),
            "-h" | "--help" => {
                println!(
                    "fault-campaign [--cycles N] [--fundtrail BIN] [--deploy DIR] [--out DIR] [--clients N] \
                     [--hold-ms MS] [--quiet-ms MS] [--timeout-ms MS]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.cycles == 0 || args.clients == 0 {
        bail!("--cycles and --clients must be at least 1");
    }
    if args.timeout.is_zero() {
        bail!("--timeout-ms must be at least 1");
    }
    CLIENT_TIMEOUT_MS.store(args.timeout.as_millis() as u64, Ordering::SeqCst);
    Ok(args)
}

/// xorshift64*, seeded from the OS RNG: which replica, which fault, which node.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let token = fundtrail_testkit::serve::random_token();
        Rng(u64::from_str_radix(&token[..16], 16).unwrap_or(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// One client attempt to post an envelope.
#[derive(Clone)]
struct Attempt {
    /// Seconds since the campaign started.
    start: f64,
    end: f64,
    replica: usize,
    /// `None`: no answer (refused, reset, timed out).
    status: Option<u16>,
    code: String,
}

impl Attempt {
    fn failed(&self) -> bool {
        !matches!(self.status, Some(200..=202))
    }

    fn is_5xx_or_none(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// One injected fault.
#[derive(Clone)]
struct Injected {
    cycle: usize,
    fault: Fault,
    target: String,
    at: f64,
    healed: f64,
    recovered: f64,
    /// For a stream-leader kill: how long JetStream took to report a new leader.
    election_ms: Option<f64>,
    recovery_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    attempts: Vec<Attempt>,
    /// Envelopes that needed more than one attempt: (first attempt's start, the
    /// accepting attempt's end), seconds since the campaign started.
    resent_waits: Vec<(f64, f64)>,
    /// Event id → acknowledged sequence.
    acked: HashMap<String, u64>,
    /// The same id acknowledged at two sequences.
    ack_mismatch: Vec<String>,
    approved: BTreeMap<String, i64>,
    paid: BTreeMap<String, i64>,
    donated: i64,
    /// Client flows that ended with an envelope no replica took.
    gave_up: BTreeMap<String, usize>,
    /// Refusals that are not the expected overspend of a conflicting payout.
    unexpected_refusals: Vec<String>,
    payout_refused: usize,
}

struct Ctx {
    urls: Vec<String>,
    started: Instant,
    stop: AtomicBool,
    shared: Mutex<Shared>,
    cast: Cast,
    next_proposal: AtomicU64,
}

impl Ctx {
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// The clients' request time limit (`--timeout-ms`).
static CLIENT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(REQUEST_TIMEOUT_DEFAULT.as_millis() as u64);

fn client_agent() -> ureq::Agent {
    let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS.load(Ordering::SeqCst));
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().new_agent()
}

enum Submitted {
    Accepted,
    Refused(u16, String),
    GaveUp,
}

/// Offers one envelope to a random replica and, on failure (no answer, 5xx, a lost
/// race), the same bytes to another one, until accepted, refused or the deadline.
fn submit(ctx: &Ctx, agent: &ureq::Agent, rng: &mut Rng, id: &str, envelope: &[u8]) -> Submitted {
    let deadline = Instant::now() + SUBMIT_DEADLINE;
    let mut replica = rng.below(REPLICAS);
    let first_start = ctx.now();
    let mut tries = 0usize;
    loop {
        tries += 1;
        let start = ctx.now();
        let answer = post_once(agent, &ctx.urls[replica], envelope);
        let end = ctx.now();
        let (status, code) = match &answer {
            Some(a) => (Some(a.status), a.body["code"].as_str().unwrap_or("").to_owned()),
            None => (None, "no answer".to_owned()),
        };
        ctx.shared.lock().unwrap().attempts.push(Attempt { start, end, replica, status, code: code.clone() });
        match (status, &answer) {
            (Some(200..=202), Some(a)) => {
                let seq = a.body["seq"].as_u64().unwrap_or(0);
                let mut shared = ctx.shared.lock().unwrap();
                if tries > 1 {
                    shared.resent_waits.push((first_start, end));
                }
                if let Some(previous) = shared.acked.insert(id.to_owned(), seq) {
                    if previous != seq {
                        shared.ack_mismatch.push(format!("{id}: acknowledged at {previous} and {seq}"));
                    }
                }
                return Submitted::Accepted;
            }
            (Some(409), _) if code == "contended" => {}
            (Some(s), _) if (400..500).contains(&s) && s != 429 => return Submitted::Refused(s, code),
            _ => {}
        }
        if Instant::now() >= deadline {
            return Submitted::GaveUp;
        }
        replica = (replica + 1 + rng.below(REPLICAS - 1)) % REPLICAS;
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sign(key: &ActorKey, fund: &FundId, body: EventBody) -> (String, Vec<u8>) {
    let (event, envelope) = fundtrail_envelope::actor::sign_new(key, fund, Utc::now(), body);
    (event.id.to_string(), envelope)
}

/// Posts one envelope that must be accepted; false (and counted) otherwise.
fn must(ctx: &Ctx, agent: &ureq::Agent, rng: &mut Rng, what: &str, signed: (String, Vec<u8>)) -> bool {
    match submit(ctx, agent, rng, &signed.0, &signed.1) {
        Submitted::Accepted => true,
        Submitted::Refused(status, code) => {
            ctx.shared.lock().unwrap().unexpected_refusals.push(format!("{what}: {status} {code}"));
            false
        }
        Submitted::GaveUp => {
            *ctx.shared.lock().unwrap().gave_up.entry(what.to_owned()).or_default() += 1;
            false
        }
    }
}

fn donation(ctx: &Ctx, agent: &ureq::Agent, rng: &mut Rng) {
    let fen = 100 + rng.below(10_000) as i64;
    let body = EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::new(fen).expect("in range"),
        channel: Channel::Direct,
        donor: hash(&format!("donor-{}", rng.below(1_000))),
        payment_ref: format!("WX-{}", rng.below(1_000_000)),
        pledge: None,
        restricted_purpose: None,
    });
    if must(ctx, agent, rng, "donation", sign(&ctx.cast.intake, &ctx.cast.fund, body)) {
        ctx.shared.lock().unwrap().donated += fen;
    }
}

/// A proposal through the committee's votes to approval, then three payouts of half
/// the approved amount posted at once to the three replicas: at most two may land.
fn proposal(ctx: &Arc<Ctx>, agent: &ureq::Agent, rng: &mut Rng) {
    let cast = &ctx.cast;
    let fund = &cast.fund;
    let id = format!("P-{}", ctx.next_proposal.fetch_add(1, Ordering::Relaxed));
    let fen = Fen::new(PROPOSAL_FEN).expect("in range");
    let submitted = EventBody::ProposalSubmitted(ProposalSubmitted {
        proposal: pid(&id),
        title: "楼道照明改造".into(),
        category: ProposalCategory::Renovation,
        amount_fen: fen,
        payee: "西湖物业公司".into(),
        description: "更换老旧楼道灯".into(),
        evidence: vec![hash("quote")],
        purpose: None,
    });
    if !must(ctx, agent, rng, "proposal", sign(&cast.proposer, fund, submitted)) {
        return;
    }
    for member in &cast.committee[..3] {
        let vote =
            EventBody::VoteCast(VoteCast { proposal: pid(&id), choice: VoteChoice::Approve, reason: "同意".into() });
        if !must(ctx, agent, rng, "vote", sign(member, fund, vote)) {
            return;
        }
    }
    let endorsed = EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(&id), minutes: hash("m") });
    if !must(ctx, agent, rng, "endorsement", sign(&cast.committee[0], fund, endorsed)) {
        return;
    }
    let applied = EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(&id) });
    if !must(ctx, agent, rng, "application", sign(&cast.proposer, fund, applied)) {
        return;
    }
    let approved = EventBody::ProposalApproved(ProposalApproved { proposal: pid(&id), amount_fen: fen });
    if !must(ctx, agent, rng, "approval", sign(&cast.approver, fund, approved)) {
        return;
    }
    ctx.shared.lock().unwrap().approved.insert(id.clone(), PROPOSAL_FEN);
    let half = PROPOSAL_FEN / 2;
    let racers: Vec<_> = (0..3)
        .map(|n| {
            let ctx = ctx.clone();
            let id = id.clone();
            let body = EventBody::PayoutMade(PayoutMade {
                proposal: pid(&id),
                amount_fen: Fen::new(half).expect("in range"),
                payment_ref: format!("BANK-{id}-{n}"),
                evidence: vec![],
            });
            let signed = sign(&ctx.cast.treasurer, &ctx.cast.fund, body);
            std::thread::spawn(move || {
                let agent = client_agent();
                let mut rng = Rng::new();
                match submit(&ctx, &agent, &mut rng, &signed.0, &signed.1) {
                    Submitted::Accepted => *ctx.shared.lock().unwrap().paid.entry(id).or_default() += half,
                    Submitted::Refused(_, _) => ctx.shared.lock().unwrap().payout_refused += 1,
                    Submitted::GaveUp => *ctx.shared.lock().unwrap().gave_up.entry("payout".into()).or_default() += 1,
                }
            })
        })
        .collect();
    for racer in racers {
        let _ = racer.join();
    }
}

fn client(ctx: Arc<Ctx>) {
    let agent = client_agent();
    let mut rng = Rng::new();
    while !ctx.stop.load(Ordering::SeqCst) {
        if rng.below(100) < 85 {
            donation(&ctx, &agent, &mut rng);
        } else {
            proposal(&ctx, &agent, &mut rng);
        }
    }
}

/// Every distinct checkpoint note a client was served, sampled from random replicas.
fn watch_checkpoints(ctx: Arc<Ctx>, seen: Arc<Mutex<BTreeSet<String>>>) {
    let agent = client_agent();
    let mut rng = Rng::new();
    while !ctx.stop.load(Ordering::SeqCst) {
        let url = format!("{}/ledger/checkpoint", ctx.urls[rng.below(REPLICAS)]);
        if let Ok(mut response) = agent.get(&url).call() {
            if response.status() == 200 {
                if let Ok(note) = response.body_mut().read_to_string() {
                    seen.lock().unwrap().insert(note);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What the SSE subscriber saw.
#[derive(Default)]
struct Feed {
    last: u64,
    received: u64,
    gaps: Vec<String>,
    reconnects: u64,
    ids: HashMap<u64, String>,
}

/// One subscriber reads `GET /v1/stream` from the start for the whole run; when its
/// replica goes away it reconnects to the next one from the sequence after the last
/// it got. Every message must be the one after the previous.
fn subscribe(ctx: Arc<Ctx>, feed: Arc<Mutex<Feed>>, until: Arc<AtomicU64>) {
    let mut replica = 0;
    loop {
        let from = feed.lock().unwrap().last + 1;
        let done = |feed: &Feed| ctx.stop.load(Ordering::SeqCst) && feed.last >= until.load(Ordering::SeqCst);
        if done(&feed.lock().unwrap()) {
            return;
        }
        let addr = ctx.urls[replica].trim_start_matches("http://").to_owned();
        if let Ok(mut stream) = TcpStream::connect(&addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let request =
                format!("GET /v1/stream?from={from} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                let mut status_seen = false;
                loop {
                    if done(&feed.lock().unwrap()) {
                        return;
                    }
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) if line.ends_with(b"\n") => {
                            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                            line.clear();
                            if !status_seen {
                                status_seen = true;
                                if !text.contains(" 200") {
                                    break;
                                }
                                continue;
                            }
                            let Some(data) = text.strip_prefix("data:") else { continue };
                            let Ok(value) = serde_json::from_str::<Value>(data.trim()) else { continue };
                            let Some(seq) = value["seq"].as_u64() else { continue };
                            let mut feed = feed.lock().unwrap();
                            if seq != feed.last + 1 {
                                let why = format!("after {} came {seq} (from replica {replica})", feed.last);
                                feed.gaps.push(why);
                            }
                            feed.last = feed.last.max(seq);
                            feed.received += 1;
                            let id = value["id"].as_str().unwrap_or("").to_owned();
                            feed.ids.insert(seq, id);
                        }
                        Ok(_) => {}
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        feed.lock().unwrap().reconnects += 1;
        replica = (replica + 1) % REPLICAS;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The cluster, its route proxies and the replicas.
struct World {
    cluster: NatsCluster,
    mesh: proxy::Mesh,
    replicas: Vec<ServeProcess>,
}

impl World {
    fn password(&self) -> &str {
        &self.cluster.passwords.service
    }

    /// The stream leader's node index, asked of a node that answers.
    fn leader(&self, avoid: Option<usize>) -> Option<usize> {
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            if Some(i) == avoid || !node.is_running() {
                continue;
            }
            if let Ok(info) = stream_info(&node.url(), SERVICE_USER, self.password(), STREAM, Duration::from_secs(2)) {
                if let Some(leader) = info.leader.and_then(|l| self.cluster.index_of(&l)) {
                    if Some(leader) != avoid {
                        return Some(leader);
                    }
                }
            }
        }
        None
    }

    /// Every node healthy, a stream leader, every replica ready.
    fn wait_recovered(&self) -> Result<()> {
        let deadline = Instant::now() + RECOVERY_WAIT;
        self.cluster.wait_healthy(RECOVERY_WAIT)?;
        while self.leader(None).is_none() {
            if Instant::now() >= deadline {
                bail!("no stream leader within {RECOVERY_WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for replica in &self.replicas {
            while !fundtrail_testkit::web::ready(&replica.url) {
                if Instant::now() >= deadline {
                    bail!("replica {} not ready within {RECOVERY_WAIT:?}", replica.url);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

/// Injects `fault`, holds it, heals it; returns (target, election ms).
fn inject(world: &mut World, ctx: &Ctx, rng: &mut Rng, fault: Fault, hold: Duration) -> Result<(String, Option<f64>)> {
    let nodes = world.cluster.nodes.len();
    match fault {
        Fault::KillNode => {
            let k = rng.below(nodes);
            world.cluster.nodes[k].kill();
            std::thread::sleep(hold);
            world.cluster.restart(k)?;
            Ok((world.cluster.nodes[k].name.clone(), None))
        }
        Fault::PauseNode => {
            let k = rng.below(nodes);
            world.cluster.nodes[k].pause()?;
            std::thread::sleep(hold);
            world.cluster.nodes[k].resume()?;
            Ok((world.cluster.nodes[k].name.clone(), None))
        }
        Fault::KillLeader => {
            let k = world.leader(None).context("no stream leader to kill")?;
            let killed = Instant::now();
            world.cluster.nodes[k].kill();
            let mut election = None;
            while killed.elapsed() < RECOVERY_WAIT {
                if world.leader(Some(k)).is_some() {
                    election = Some(killed.elapsed().as_secs_f64() * 1e3);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(rest) = hold.checked_sub(killed.elapsed()) {
                std::thread::sleep(rest);
            }
            world.cluster.restart(k)?;
            Ok((world.cluster.nodes[k].name.clone(), election))
        }
        Fault::KillReplica => {
            let r = rng.below(REPLICAS);
            world.replicas[r].kill();
            std::thread::sleep(Duration::from_millis(500));
            world.replicas[r].restart(RECOVERY_WAIT).map_err(|e| anyhow::anyhow!("replica {r}: {e}"))?;
            Ok((format!("replica {r} ({})", ctx.urls[r]), None))
        }
        Fault::RestartCluster => {
            for node in &world.cluster.nodes {
                node.kill();
            }
            std::thread::sleep(Duration::from_millis(500));
            for k in 0..nodes {
                world.cluster.restart(k)?;
            }
            Ok(("all nodes".into(), None))
        }
        Fault::Partition => {
            let k = rng.below(nodes);
            world.mesh.isolate(k);
            std::thread::sleep(hold);
            world.mesh.heal();
            Ok((world.cluster.nodes[k].name.clone(), None))
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run_fundtrail(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    match Command::new(bin).args(args).envs(env.iter().copied()).output() {
        Ok(out) => (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        ),
        Err(e) => (false, format!("cannot run {}: {e}", bin.display())),
    }
}

/// Reads every message of the stream: sequence → `Nats-Msg-Id` (the event id).
fn read_stream(url: &str, password: &str, last: u64) -> Result<Vec<(u64, String)>> {
    use futures::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .user_and_password(SERVICE_USER.into(), password.into())
            .connect(url)
            .await
            .context("connect")?;
        let jetstream = async_nats::jetstream::new(client);
        let stream = jetstream.get_stream(STREAM).await.context("get stream")?;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .context("ordered consumer")?;
        let mut messages = consumer.messages().await.context("messages")?;
        let mut out = Vec::new();
        while out.len() < last as usize {
            let next = tokio::time::timeout(Duration::from_secs(30), messages.next())
                .await
                .context("no message within 30 s")?
                .context("the stream ended")?
                .context("reading")?;
            let info = next.info().map_err(|e| anyhow::anyhow!("message info: {e}"))?;
            let id = next
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            out.push((info.stream_sequence, id));
        }
        Ok(out)
    })
}

/// The cluster of deploy/, its routes through the proxies the nemesis can cut. Ports
/// are picked free, then bound by other processes (the proxies among them), so a port
/// can be taken in between: a start that fails is tried again on new ports.
fn start_cluster(deploy: &Path) -> Result<(NatsCluster, proxy::Mesh)> {
    let mut last = None;
    for attempt in 1..=CLUSTER_START_ATTEMPTS_MAX {
        let ports: Vec<NodePorts> = (0..3).map(|_| NodePorts::free()).collect::<Result<_>>()?;
        let cluster_ports: Vec<u16> = ports.iter().map(|p| p.cluster).collect();
        let mesh = proxy::Mesh::start(&cluster_ports)?;
        // Gossiped route addresses lead nowhere, so no node dials another around the proxies.
        let dead: Vec<Option<u16>> = (0..3).map(|_| fundtrail_testkit::free_port().ok()).collect();
        let routing = Routing { routes: (0..3).map(|i| mesh.routes_of(i, &cluster_ports)).collect(), advertise: dead };
        match NatsCluster::start_routed(deploy, &ports, &routing) {
            Ok(cluster) => return Ok((cluster, mesh)),
            Err(e) => {
                eprintln!("campaign: the cluster did not start (attempt {attempt}), new ports: {e:#}");
                last = Some(e);
            }
        }
    }
    Err(last.expect("one attempt")).context(format!("cluster not up in {CLUSTER_START_ATTEMPTS_MAX} attempts"))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)?;
    let fundtrail = std::fs::canonicalize(&args.fundtrail)
        .with_context(|| format!("the fundtrail binary {} (build it first)", args.fundtrail.display()))?;
    let deploy = std::fs::canonicalize(&args.deploy).context("--deploy")?;
    eprintln!("campaign: {} cycles, {} clients, fault held {:?}", args.cycles, args.clients, args.hold);

    let (cluster, mesh) = start_cluster(&deploy)?;
    eprintln!("campaign: cluster up at {}", cluster.urls());

    let work = tempfile::Builder::new().prefix("fundtrail-campaign-").tempdir()?;
    let log_key = work.path().join("log.key");
    let key_path = log_key.to_str().context("UTF-8 path")?.to_owned();
    let (ok, text) = run_fundtrail(&fundtrail, &["keys", "new", "--out", &key_path], &[]);
    if !ok {
        bail!("keys new: {text}");
    }
    let urls = cluster.urls();
    let serve_args = ["--nats", &urls, "--nats-user", SERVICE_USER, "--replicas", "3", "--log-key", &key_path];
    let password = cluster.passwords.service.clone();
    let replicas: Vec<ServeProcess> = (0..REPLICAS)
        .map(|r| {
            ServeProcess::start_with_env(
                &fundtrail,
                &work.path().join(format!("replica-{r}")),
                &serve_args,
                &[("FUNDTRAIL_NATS_PASSWORD", &password)],
            )
        })
        .collect();
    let mut world = World { cluster, mesh, replicas };
    let ctx = Arc::new(Ctx {
        urls: world.replicas.iter().map(|r| r.url.clone()).collect(),
        started: Instant::now(),
        stop: AtomicBool::new(false),
        shared: Mutex::new(Shared::default()),
        cast: Cast::new(FUND),
        next_proposal: AtomicU64::new(1),
    });

    // Set-up: genesis, keys, the fund, its committee, the first donation.
    {
        let agent = client_agent();
        let mut rng = Rng::new();
        let mut setup = ctx.cast.setup(Utc::now());
        setup.push(ctx.cast.donation(FUNDING_FEN, Utc::now()).1);
        for (n, envelope) in setup.iter().enumerate() {
            match submit(&ctx, &agent, &mut rng, &format!("setup-{n}"), envelope) {
                Submitted::Accepted => {}
                Submitted::Refused(s, c) => bail!("set-up event {n} refused: {s} {c}"),
                Submitted::GaveUp => bail!("set-up event {n}: no replica took it"),
            }
        }
        let mut shared = ctx.shared.lock().unwrap();
        shared.donated += FUNDING_FEN;
        // Set-up ids are not event ids: the checker reads ids from the stream.
        shared.acked.retain(|id, _| !id.starts_with("setup-"));
    }
    let setup_done = ctx.now();

    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let feed = Arc::new(Mutex::new(Feed::default()));
    let until = Arc::new(AtomicU64::new(u64::MAX));
    let mut threads = Vec::new();
    for _ in 0..args.clients {
        let ctx = ctx.clone();
        threads.push(std::thread::spawn(move || client(ctx)));
    }
    let watcher = {
        let (ctx, seen) = (ctx.clone(), seen.clone());
        std::thread::spawn(move || watch_checkpoints(ctx, seen))
    };
    let subscriber = {
        let (ctx, feed, until) = (ctx.clone(), feed.clone(), until.clone());
        std::thread::spawn(move || subscribe(ctx, feed, until))
    };

    // The nemesis: one fault per cycle, every kind in turn in a shuffled order.
    let mut rng = Rng::new();
    let mut injected: Vec<Injected> = Vec::new();
    let mut order: Vec<Fault> = Vec::new();
    for cycle in 0..args.cycles {
        if order.is_empty() {
            order = FAULTS.to_vec();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
        }
        let fault = order.pop().expect("refilled");
        std::thread::sleep(args.quiet);
        let at = ctx.now();
        let outcome = inject(&mut world, &ctx, &mut rng, fault, args.hold);
        let healed = ctx.now();
        let (target, election_ms, mut recovery_error) = match outcome {
            Ok((target, election)) => (target, election, None),
            Err(e) => (String::new(), None, Some(format!("injecting: {e:#}"))),
        };
        if let Err(e) = world.wait_recovered() {
            recovery_error.get_or_insert(format!("recovering: {e:#}"));
        }
        let recovered = ctx.now();
        eprintln!(
            "cycle {}/{}: {} {target} at {at:.1}s, healed {:.1}s, recovered {:.1}s{}{}",
            cycle + 1,
            args.cycles,
            fault.name(),
            healed - at,
            recovered - at,
            election_ms.map(|e| format!(", new leader in {e:.0} ms")).unwrap_or_default(),
            recovery_error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default(),
        );
        let stuck = recovery_error.is_some();
        injected.push(Injected { cycle, fault, target, at, healed, recovered, election_ms, recovery_error });
        if stuck {
            // Something did not come back: more faults would only pile up on it. Check
            // and report what happened so far (the failure is in the report).
            eprintln!("campaign: stopping the nemesis after cycle {}: the world did not recover", cycle + 1);
            break;
        }
    }
    let cycles_run = injected.len();
    std::thread::sleep(args.quiet);
    let load_end = ctx.now();
    ctx.stop.store(true, Ordering::SeqCst);
    for thread in threads {
        let _ = thread.join();
    }
    let _ = watcher.join();
    eprintln!("campaign: load stopped at {load_end:.1}s; checking");

    // ---- The checker.
    let mut failures: Vec<String> = Vec::new();
    if let Err(e) = world.wait_recovered() {
        failures.push(format!("the world did not recover at the end: {e:#}"));
    }
    if cycles_run < args.cycles {
        failures.push(format!("stopped after {cycles_run} of {} cycles", args.cycles));
    }
    for (r, replica) in world.replicas.iter().enumerate() {
        if replica.log_text().contains("panicked at") {
            failures.push(format!("replica {r} panicked; its log: {}", replica.log_path().display()));
        }
    }
    let info = stream_info(&world.cluster.nodes[0].url(), SERVICE_USER, &password, STREAM, Duration::from_secs(10))
        .or_else(|_| {
            stream_info(&world.cluster.nodes[1].url(), SERVICE_USER, &password, STREAM, Duration::from_secs(10))
        })
        .context("final STREAM.INFO")?;
    let last_seq = info.last_seq;
    until.store(last_seq, Ordering::SeqCst);

    // Every acknowledged id in the stream exactly once, at its acknowledged sequence.
    let stored = read_stream(&world.cluster.nodes[0].url(), &password, last_seq)
        .or_else(|_| read_stream(&world.cluster.nodes[1].url(), &password, last_seq))
        .context("reading the stream")?;
    let mut where_: HashMap<&str, Vec<u64>> = HashMap::new();
    for (seq, id) in &stored {
        where_.entry(id.as_str()).or_default().push(*seq);
    }
    let shared = std::mem::take(&mut *ctx.shared.lock().unwrap());
    let mut lost = Vec::new();
    let mut duplicated = Vec::new();
    let mut misplaced = Vec::new();
    for (id, seq) in &shared.acked {
        match where_.get(id.as_str()).map(Vec::as_slice) {
            None | Some([]) => lost.push(id.clone()),
            Some([one]) if one == seq => {}
            Some([one]) => misplaced.push(format!("{id}: acknowledged {seq}, stored {one}")),
            Some(_) => duplicated.push(id.clone()),
        }
    }
    let duplicated_in_stream = where_.values().filter(|seqs| seqs.len() > 1).count();
    if !lost.is_empty() || !duplicated.is_empty() || duplicated_in_stream > 0 || !misplaced.is_empty() {
        failures.push(format!(
            "stream: {} lost, {} duplicated, {duplicated_in_stream} ids stored twice, misplaced {misplaced:?}",
            lost.len(),
            duplicated.len()
        ));
    }
    if !shared.ack_mismatch.is_empty() {
        failures.push(format!("acknowledged at two sequences: {:?}", shared.ack_mismatch));
    }

    // Replicas converge: the same checkpoint and the same views.
    let agent = client_agent();
    let get = |url: &str| -> Option<String> {
        let mut r = agent.get(url).call().ok()?;
        (r.status() == 200).then(|| r.body_mut().read_to_string().ok()).flatten()
    };
    let deadline = Instant::now() + CONVERGE_WAIT;
    let mut bodies = Vec::new();
    for url in &ctx.urls {
        loop {
            let note = get(&format!("{url}/ledger/checkpoint"));
            let size = note.as_deref().and_then(|n| n.lines().nth(1)).and_then(|s| s.parse::<u64>().ok());
            if size == Some(last_seq) {
                bodies.push(note.unwrap().lines().take(3).collect::<Vec<_>>().join("\n"));
                break;
            }
            if Instant::now() >= deadline {
                failures.push(format!("{url} did not converge on {last_seq} (at {size:?})"));
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let converged = bodies.len() == REPLICAS && bodies.iter().all(|b| *b == bodies[0]);
    if !converged {
        failures.push(format!("replicas' checkpoints differ: {bodies:?}"));
    }
    // The views at one position of the log (`compliance.as_of` is the replica's clock).
    let view = |url: String| -> Value {
        let mut value: Value = get(&url).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        if let Some(object) = value.get_mut("compliance").and_then(Value::as_object_mut) {
            object.remove("as_of");
        }
        value
    };
    let views: Vec<(Value, Value)> = ctx
        .urls
        .iter()
        .map(|u| (view(format!("{u}/v1/funds/{FUND}")), view(format!("{u}/v1/funds/{FUND}/proposals"))))
        .collect();
    let views_equal = views.iter().all(|v| !v.0.is_null() && *v == views[0]);
    if !views_equal {
        let mut differing = Vec::new();
        for (r, v) in views.iter().enumerate().skip(1) {
            for (which, (a, b)) in [("fund", (&views[0].0, &v.0)), ("proposals", (&views[0].1, &v.1))] {
                let keys: BTreeSet<&String> =
                    a.as_object().into_iter().chain(b.as_object()).flat_map(|o| o.keys()).collect();
                for key in keys.into_iter().filter(|k| a.get(k.as_str()) != b.get(k.as_str())) {
                    let show = |v: &Value| {
                        format!("{}", v.get(key.as_str()).unwrap_or(&Value::Null)).chars().take(200).collect::<String>()
                    };
                    differing.push(format!("replica {r} {which}.{key}: {} vs {}", show(a), show(b)));
                }
            }
        }
        failures.push(format!("replicas' fund views differ: {differing:?}"));
    }
    let fund: Value = views[0].0.clone();
    let cash = &fund["cash"];
    let fen = |v: &Value| v.as_i64().unwrap_or(i64::MIN);
    let mut overspent = Vec::new();
    for (proposal, paid) in &shared.paid {
        let limit = shared.approved.get(proposal).copied().unwrap_or(0);
        if *paid > limit {
            overspent.push(format!("{proposal}: paid {paid} of {limit}"));
        }
    }
    if !overspent.is_empty() {
        failures.push(format!("paid beyond approval: {overspent:?}"));
    }
    if fen(&cash["available_fen"]) < 0 {
        failures.push(format!("negative balance: {cash}"));
    }
    if fen(&cash["received_fen"]) != shared.donated {
        failures.push(format!("received {} but {} acknowledged", cash["received_fen"], shared.donated));
    }
    if fen(&cash["paid_fen"]) != shared.paid.values().sum::<i64>() {
        failures.push(format!("paid {} but {} acknowledged", cash["paid_fen"], shared.paid.values().sum::<i64>()));
    }

    // Every checkpoint a client saw is consistent with the final one.
    let vkey = get(&format!("{}/ledger/vkey", ctx.urls[0])).unwrap_or_default().trim().to_owned();
    let log = LogVerifier::from_vkey(&vkey).context("the ledger's vkey")?;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut inconsistent = Vec::new();
    for note in &seen {
        let old = match log.verify_checkpoint(note.as_bytes()) {
            Ok(c) => c,
            Err(e) => {
                inconsistent.push(format!("a served checkpoint does not verify: {e}"));
                continue;
            }
        };
        let proof_url = format!("{}/v1/ledger/consistency?from={}&to={last_seq}", ctx.urls[0], old.size);
        let proof: Option<Value> = get(&proof_url).and_then(|t| serde_json::from_str(&t).ok());
        let Some(proof) = proof else {
            inconsistent.push(format!("no consistency proof from {}", old.size));
            continue;
        };
        let hashes: Option<Vec<Hash>> = proof["proof"]
            .as_array()
            .map(|a| a.iter().map(|h| h.as_str().and_then(Hash::from_base64)).collect::<Option<Vec<_>>>())
            .unwrap_or(None);
        let new = proof["checkpoint"].as_str().map(|n| log.verify_checkpoint(n.as_bytes()));
        match (hashes, new) {
            (Some(hashes), Some(Ok(new))) => {
                if let Err(e) = check_consistency(old.size, &old.root, &new, &hashes) {
                    inconsistent.push(format!("checkpoint {} vs {}: {e}", old.size, new.size));
                }
            }
            _ => inconsistent.push(format!("a malformed consistency proof from {}", old.size)),
        }
    }
    if !inconsistent.is_empty() {
        failures.push(format!(
            "checkpoints: {} inconsistent: {:?}",
            inconsistent.len(),
            &inconsistent[..inconsistent.len().min(5)]
        ));
    }

    // The SSE feed: caught up with the stream, no gaps, the stream's ids.
    let feed_deadline = Instant::now() + CONVERGE_WAIT;
    while feed.lock().unwrap().last < last_seq && Instant::now() < feed_deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    ctx.stop.store(true, Ordering::SeqCst);
    until.store(0, Ordering::SeqCst);
    let _ = subscriber.join();
    let feed = std::mem::take(&mut *feed.lock().unwrap());
    let feed_mismatch = stored.iter().filter(|(seq, id)| feed.ids.get(seq).is_some_and(|f| f != id)).count();
    if feed.last < last_seq || !feed.gaps.is_empty() || feed_mismatch > 0 {
        failures.push(format!(
            "SSE feed: reached {} of {last_seq}, gaps {:?}, {feed_mismatch} ids differ from the stream",
            feed.last, feed.gaps
        ));
    }

    // The auditor: the stream (as the read-only user) and each replica's ledger.
    let ledger0 = format!("{}/ledger", ctx.urls[0]);
    let (nats_ok, nats_text) = run_fundtrail(
        &fundtrail,
        &["verify", "--nats", &urls, "--nats-user", AUDITOR_USER, "--ledger", &ledger0, "--vkey", &vkey],
        &[("FUNDTRAIL_NATS_PASSWORD", &world.cluster.passwords.auditor)],
    );
    if !nats_ok {
        failures.push(format!("verify --nats failed: {nats_text}"));
    }
    let mut ledger_ok = true;
    for url in &ctx.urls {
        let (ok, text) =
            run_fundtrail(&fundtrail, &["verify", "--ledger", &format!("{url}/ledger"), "--vkey", &vkey], &[]);
        if !ok {
            ledger_ok = false;
            failures.push(format!("verify --ledger {url} failed: {text}"));
        }
    }

    // Client errors, outage windows, 5xx outside faults, latency.
    let attempts = &shared.attempts;
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for a in attempts.iter().filter(|a| a.failed()) {
        let status = a.status.map(|s| s.to_string()).unwrap_or_else(|| "none".into());
        *errors.entry(format!("{status} {}", a.code)).or_default() += 1;
    }
    let windows: Vec<(f64, f64)> =
        injected.iter().map(|f| (f.at, f.recovered + RECOVERY_GRACE.as_secs_f64())).collect();
    let unexpected: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.start >= setup_done && a.is_5xx_or_none())
        .filter(|a| !windows.iter().any(|(from, to)| a.end >= *from && a.start <= *to))
        .collect();
    if !unexpected.is_empty() {
        let shown: Vec<String> = unexpected
            .iter()
            .take(10)
            .map(|a| format!("{:.1}s replica {} {:?} {}", a.start, a.replica, a.status, a.code))
            .collect();
        failures.push(format!("{} answers 5xx/none from healthy replicas outside faults: {shown:?}", unexpected.len()));
    }
    let mut outage: BTreeMap<Fault, Vec<f64>> = BTreeMap::new();
    // What a client saw: the longest wait, from an envelope's first attempt to its
    // acceptance by some replica, of the envelopes that needed more than one attempt
    // and were accepted in this fault's cycle. A wait is the doing of the fault in force
    // when it ended, not of the one before it: each fault is injected only after the one
    // before has recovered and a quiet spell has passed, and an envelope first sent
    // just before a fault (as a cluster restart follows a replica kill) waits on that
    // fault.
    let mut client_wait: BTreeMap<Fault, Vec<f64>> = BTreeMap::new();
    let mut rows = Vec::new();
    for (i, f) in injected.iter().enumerate() {
        let next = injected.get(i + 1).map(|n| n.at).unwrap_or(load_end);
        let last_failure = attempts
            .iter()
            .filter(|a| a.failed() && a.end >= f.at && a.end < next)
            .filter(|a| a.status.is_none_or(|s| s >= 500 || s == 429) || a.code == "contended")
            .map(|a| a.end)
            .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))));
        let window = last_failure.map(|e| e - f.at).unwrap_or(0.0);
        outage.entry(f.fault).or_default().push(window);
        let wait = shared
            .resent_waits
            .iter()
            .filter(|(_, accepted)| *accepted >= f.at && *accepted < next)
            .map(|(first, accepted)| accepted - first)
            .fold(0.0, f64::max);
        client_wait.entry(f.fault).or_default().push(wait);
        if let Some(e) = &f.recovery_error {
            failures.push(format!("cycle {} ({}): {e}", f.cycle + 1, f.fault.name()));
        }
        rows.push(json!({
            "cycle": f.cycle + 1, "fault": f.fault.name(), "target": f.target,
            "at_s": f.at, "healed_after_s": f.healed - f.at, "recovered_after_s": f.recovered - f.at,
            "outage_s": window, "client_wait_s": wait, "election_ms": f.election_ms, "recovery_error": f.recovery_error,
        }));
    }
    let mut latencies: Vec<f64> = attempts.iter().filter(|a| !a.failed()).map(|a| (a.end - a.start) * 1e3).collect();
    latencies.sort_by(f64::total_cmp);
    let mut elections: Vec<f64> = injected.iter().filter_map(|f| f.election_ms).collect();
    elections.sort_by(f64::total_cmp);

    let mut by_kind = serde_json::Map::new();
    for fault in FAULTS {
        let mut w = outage.get(&fault).cloned().unwrap_or_default();
        w.sort_by(f64::total_cmp);
        let mut c = client_wait.get(&fault).cloned().unwrap_or_default();
        c.sort_by(f64::total_cmp);
        by_kind.insert(
            fault.name().into(),
            json!({
                "count": w.len(),
                "outage_s": {"p50": percentile(&w, 50.0), "p99": percentile(&w, 99.0), "max": w.last().copied().unwrap_or(0.0)},
                "client_wait_s": {"p50": percentile(&c, 50.0), "p99": percentile(&c, 99.0), "max": c.last().copied().unwrap_or(0.0)},
            }),
        );
    }
    let leader_kill = {
        let mut w = outage.get(&Fault::KillLeader).cloned().unwrap_or_default();
        w.sort_by(f64::total_cmp);
        w
    };
    let replica_kill = {
        let mut w = outage.get(&Fault::KillReplica).cloned().unwrap_or_default();
        w.sort_by(f64::total_cmp);
        w
    };
    let election_p50 = percentile(&elections, 50.0);
    let replica_kill_wait = {
        let mut w = client_wait.get(&Fault::KillReplica).cloned().unwrap_or_default();
        w.sort_by(f64::total_cmp);
        w
    };
    let targets = json!({
        "zero_lost_duplicated_overspent_identical": lost.is_empty() && duplicated.is_empty() && overspent.is_empty() && converged && views_equal,
        "replica_kill_outage_le_1s": replica_kill.last().copied().unwrap_or(0.0) <= 1.0,
        "replica_kill_client_wait_le_1s": replica_kill_wait.last().copied().unwrap_or(0.0) <= 1.0,
        "leader_kill_outage_p99_le_2x_election": !elections.is_empty() && percentile(&leader_kill, 99.0) * 1e3 <= 2.0 * election_p50,
    });
    let acked = shared.acked.len();
    let report = json!({
        "ok": failures.is_empty(),
        "cycles": args.cycles,
        "cycles_run": cycles_run,
        "clients": args.clients,
        "fault_held_ms": args.hold.as_millis() as u64,
        "client_timeout_ms": args.timeout.as_millis() as u64,
        "duration_s": load_end,
        "faults": by_kind,
        "acknowledged": acked,
        "stream_messages": last_seq,
        "lost": lost.len(),
        "duplicated": duplicated.len() + duplicated_in_stream,
        "overspent": overspent.len(),
        "approved_proposals": shared.approved.len(),
        "payouts_refused": shared.payout_refused,
        "gave_up": shared.gave_up,
        "unexpected_refusals": shared.unexpected_refusals,
        "attempts": attempts.len(),
        "client_errors": errors,
        "unexpected_5xx": unexpected.len(),
        "latency_ms": {"p50": percentile(&latencies, 50.0), "p99": percentile(&latencies, 99.0), "max": latencies.last().copied().unwrap_or(0.0)},
        "leader_election_ms": {"count": elections.len(), "p50": election_p50, "p99": percentile(&elections, 99.0), "max": elections.last().copied().unwrap_or(0.0)},
        "replicas_converged": converged,
        "views_equal": views_equal,
        "checkpoints_seen": seen.len(),
        "checkpoints_inconsistent": inconsistent.len(),
        "sse": {"received": feed.received, "last": feed.last, "gaps": feed.gaps.len(), "reconnects": feed.reconnects},
        "verify_nats": nats_ok,
        "verify_ledger": ledger_ok,
        "targets": targets,
        "failures": failures,
        "cycle_log": rows,
    });
    std::fs::write(args.out.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    std::fs::write(args.out.join("report.md"), markdown(&report))?;
    println!("{}", markdown(&report));
    if !failures.is_empty() {
        eprintln!("campaign FAILED:\n{}", failures.join("\n"));
        eprintln!("cluster logs:\n{}", world.cluster.log_tails());
        std::process::exit(1);
    }
    eprintln!("campaign passed; report in {}", args.out.display());
    Ok(())
}

fn markdown(r: &Value) -> String {
    let mut out = String::new();
    let ms = |v: &Value| format!("{:.1}", v.as_f64().unwrap_or(0.0));
    let s = |v: &Value| format!("{:.2}", v.as_f64().unwrap_or(0.0));
    out += &format!(
        "# Fault campaign: {}\n\n{} of {} cycles, {} clients (request timeout {} ms), faults held {} ms, {:.0} s under load.\n\n",
        if r["ok"].as_bool() == Some(true) { "passed" } else { "FAILED" },
        r["cycles_run"],
        r["cycles"],
        r["clients"],
        r["client_timeout_ms"],
        r["fault_held_ms"],
        r["duration_s"].as_f64().unwrap_or(0.0)
    );
    out += "| | |\n|---|---|\n";
    for (name, key) in [
        ("acknowledged events", "acknowledged"),
        ("stream messages", "stream_messages"),
        ("lost", "lost"),
        ("duplicated", "duplicated"),
        ("overspent proposals", "overspent"),
        ("approved proposals", "approved_proposals"),
        ("conflicting payouts refused", "payouts_refused"),
        ("client attempts", "attempts"),
        ("5xx/no answer outside faults", "unexpected_5xx"),
        ("checkpoints seen by clients", "checkpoints_seen"),
        ("of them inconsistent", "checkpoints_inconsistent"),
        ("replicas converged (same root)", "replicas_converged"),
        ("replicas' views equal", "views_equal"),
        ("verify --nats", "verify_nats"),
        ("verify --ledger (every replica)", "verify_ledger"),
    ] {
        out += &format!("| {name} | {} |\n", r[key]);
    }
    let sse = &r["sse"];
    out += &format!(
        "| SSE feed | {} messages, last {}, {} gaps, {} reconnects |\n",
        sse["received"], sse["last"], sse["gaps"], sse["reconnects"]
    );
    let l = &r["latency_ms"];
    out += &format!(
        "| accepted attempt latency | p50 {} ms, p99 {} ms, max {} ms |\n",
        ms(&l["p50"]),
        ms(&l["p99"]),
        ms(&l["max"])
    );
    let e = &r["leader_election_ms"];
    out += &format!(
        "| stream leader election (JetStream) | {} measured: p50 {} ms, p99 {} ms, max {} ms |\n\n",
        e["count"],
        ms(&e["p50"]),
        ms(&e["p99"]),
        ms(&e["max"])
    );
    out += "## Faults and outage windows\n\n";
    out += "Window: from the fault to the last failed client attempt. Client wait: the longest time an \
            envelope that needed more than one attempt waited, from its first attempt to its acceptance, \
            of those accepted after this fault and before the next.\n\n";
    out += "| fault | count | window p50 s | p99 s | max s | client wait p50 s | p99 s | max s |\n";
    out += "|---|---|---|---|---|---|---|---|\n";
    if let Some(faults) = r["faults"].as_object() {
        for (name, f) in faults {
            let (o, c) = (&f["outage_s"], &f["client_wait_s"]);
            out += &format!(
                "| {name} | {} | {} | {} | {} | {} | {} | {} |\n",
                f["count"],
                s(&o["p50"]),
                s(&o["p99"]),
                s(&o["max"]),
                s(&c["p50"]),
                s(&c["p99"]),
                s(&c["max"])
            );
        }
    }
    out += "\n## Client errors by status and reason (every failed attempt; each was resent)\n\n";
    out += "| status reason | count |\n|---|---|\n";
    if let Some(errors) = r["client_errors"].as_object() {
        for (k, v) in errors {
            out += &format!("| {k} | {v} |\n");
        }
    }
    out += &format!("\n## Targets\n\n```\n{}\n```\n", serde_json::to_string_pretty(&r["targets"]).unwrap_or_default());
    if let Some(failures) = r["failures"].as_array().filter(|f| !f.is_empty()) {
        out += "\n## Failures\n\n";
        for f in failures {
            out += &format!("- {}\n", f.as_str().unwrap_or(""));
        }
    }
    out
}
