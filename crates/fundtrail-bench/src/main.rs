//! `fundtrail-bench`: benchmarks that print figures, in a binary of their own so
//! that the release `fundtrail` never links the test kit (which starts scratch
//! nats-servers and services here). Run with
//! `cargo run --release -p fundtrail-bench -- ingest` (or `-- http`).
//!
//! `fundtrail-bench ingest`: signed donations through the whole pipeline and
//! the projections, against a baseline in the same run on the same store —
//! the same envelopes, each verified once, then appended raw (pipelined
//! publishes to JetStream, or batched appends to sled). The ratio is the
//! figure to compare: the machine's noise cancels out of it.
//!
//! `fundtrail-bench ingest --witnesses`: the same ingest twice in one run, each on
//! a fresh store — witnesses off, then on: three local witnesses
//! (in-process `fundtrail_witness` servers on loopback, each fsyncing its state)
//! with a quorum of two. Prints ack → cosigned p50/p99 next to ack → signed
//! checkpoint of the same run, and the throughput with witnesses on as a ratio to
//! off.
//!
//! `fundtrail-bench http`: the same signed donations posted by concurrent HTTP
//! clients (kept-alive connections driven by one load-generator thread, [`load`])
//! to a server started in this process, against the pipeline alone
//! (`Writer::submit`, same events and concurrency) on a second, fresh stream.
//! Each run also prints the CPU time an event took, of this process (and of its
//! load generator) and of nats-server.
//!
//! `fundtrail-bench flood`: honest clients' latency alone and under a flood of
//! forged envelopes, in one run ([`flood`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use cpu::CpuTimes;
use fundtrail_domain::event::*;
use fundtrail_domain::{donor_commitment, Fen, FundId, Role};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::ActorKey;
use fundtrail_service::{Service, SystemClock};
use fundtrail_store::{AppendRequest, EventLog, SledLog};
use fundtrail_testkit::service::{ServiceSetup, TestHttp};
use tokio::sync::Mutex;

mod cpu;
mod flood;
mod load;
mod scale;
mod ways;
mod witness;

/// mimalloc, as in the `fundtrail` binary, so that both measure the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The checkpoint origin of the benchmarks' ledgers.
pub(crate) const BENCH_ORIGIN: &str = "fundtrail.bench/ledger";

/// Most funds a run opens (a city has a few hundred communities).
pub const FUNDS_MAX: usize = 1_000;

/// Largest number of events one run may ingest.
pub const BENCH_EVENTS_MAX: usize = 1_000_000;

#[derive(Parser)]
#[command(name = "fundtrail-bench", version, about = "FundTrail benchmarks that print figures.")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

fn main() -> std::process::ExitCode {
    match bench(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Signed donations through the whole pipeline, against a raw-publish baseline.
    Ingest {
        /// A NATS server with an empty FUNDTRAIL stream. Without it, a scratch
        /// nats-server is started (NATS_SERVER_BIN or PATH) unless --embedded.
        #[arg(long)]
        nats: Option<String>,
        /// Use the embedded sled store (in a temporary directory).
        #[arg(long, conflicts_with = "nats")]
        embedded: bool,
        /// Syncing of the scratch nats-server.
        #[arg(long, value_enum, default_value_t = SyncMode::Always)]
        sync: SyncMode,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(long, default_value_t = 3)]
        funds: usize,
        /// Commands in flight at once (concurrent submitters).
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
        /// Run twice on fresh stores, witnesses off and on (3 local witnesses,
        /// quorum 2): ack → cosigned and the throughput ratio on/off.
        #[arg(long, conflicts_with = "nats")]
        witnesses: bool,
        /// Run twice on fresh stores: unrestricted gifts, then every other gift restricted
        /// to one of two declared purposes (each fen queued in its purpose's pool for the
        /// allocation, docs/design.md §1.6): the throughput ratio with/without.
        #[arg(long, conflicts_with_all = ["nats", "witnesses"])]
        purposes: bool,
        #[arg(long)]
        json: bool,
    },
    /// A city's worth of funds and up to 10^6 donations on one stream: ingest
    /// rate at the start and at the end, resident memory, restart to ready
    /// with and without the fold's snapshot.
    Scale {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 261)]
        funds: usize,
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
        #[arg(long)]
        json: bool,
    },
    /// (Run by `scale`.) A replica process restarting on the scale run's stream
    /// and projections, the log key's seed on stdin: prints, as JSON, its
    /// resident memory once ready and again after a few idle seconds.
    #[command(hide = true)]
    ScaleReplica {
        #[arg(long)]
        nats: String,
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Ready once this sequence is applied.
        #[arg(long)]
        last: u64,
    },
    /// Signed donations posted over HTTP by concurrent clients, against the
    /// pipeline alone (no HTTP) on a second, fresh stream.
    Http {
        /// A NATS server with an empty FUNDTRAIL stream for the HTTP run. Without
        /// it, scratch nats-servers are started (NATS_SERVER_BIN or PATH).
        #[arg(long, requires = "pipeline_nats")]
        nats: Option<String>,
        /// A second NATS server with an empty FUNDTRAIL stream, for the pipeline run.
        #[arg(long, requires = "nats")]
        pipeline_nats: Option<String>,
        /// Syncing of the scratch nats-servers.
        #[arg(long, value_enum, default_value_t = SyncMode::Default)]
        sync: SyncMode,
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        /// Concurrent HTTP clients (and submitters in the pipeline run).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long)]
        json: bool,
    },
    /// What a chain costs nats-server by the way it goes out (publishes, atomic batch)
    /// and its length, under default sync and `sync_interval: always`: the log alone,
    /// one chain at a time, each set on a fresh scratch nats-server.
    Ways {
        /// Messages appended in each set.
        #[arg(long, default_value_t = 5_000)]
        messages: usize,
        /// Chain lengths, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10,50,250,1000")]
        lengths: Vec<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Honest clients' latency alone and under a flood of forged envelopes, in one run.
    Flood {
        /// Use the embedded sled store instead of a scratch nats-server.
        #[arg(long)]
        embedded: bool,
        /// Syncing of the scratch nats-server.
        #[arg(long, value_enum, default_value_t = SyncMode::Default)]
        sync: SyncMode,
        /// Honest donations per phase (alone, then under the flood).
        #[arg(long, default_value_t = 2_000)]
        events: usize,
        /// Honest clients, each on its own connection.
        #[arg(long, default_value_t = 4)]
        honest: usize,
        /// Flooding connections.
        #[arg(long, default_value_t = 64)]
        flood: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync before every acknowledgement (the ledger setting).
    Always,
    /// The server's default periodic sync.
    Default,
}

impl SyncMode {
    /// The scratch nats-server's setting for this mode.
    pub(crate) fn server_sync(self) -> fundtrail_testkit::Sync {
        match self {
            SyncMode::Always => fundtrail_testkit::Sync::Always,
            SyncMode::Default => fundtrail_testkit::Sync::Default,
        }
    }
}

pub fn bench(cmd: BenchCommand) -> Result<()> {
    let (nats, embedded, sync, events, funds, concurrency, witnesses, purposes, json) = match cmd {
        BenchCommand::Scale { events, funds, concurrency, json } => {
            if events == 0 || events > BENCH_EVENTS_MAX {
                bail!("--events must be between 1 and {BENCH_EVENTS_MAX}");
            }
            return scale::scale(events, funds.clamp(1, FUNDS_MAX), concurrency.clamp(1, 8_192), json);
        }
        BenchCommand::ScaleReplica { nats, dir, last } => {
            return scale::replica(&nats, &dir, last);
        }
        BenchCommand::Ingest { nats, embedded, sync, events, funds, concurrency, witnesses, purposes, json } => {
            (nats, embedded, sync, events, funds, concurrency, witnesses, purposes, json)
        }
        BenchCommand::Http { nats, pipeline_nats, sync, events, clients, json } => {
            return bench_http(nats.zip(pipeline_nats), sync, events, clients, json);
        }
        BenchCommand::Ways { messages, lengths, json } => {
            return ways::ways(messages, &lengths, json);
        }
        BenchCommand::Flood { embedded, sync, events, honest, flood, json } => {
            return flood::flood(flood::FloodOptions { embedded, sync, events, honest, flood, json });
        }
    };
    if events == 0 || events > BENCH_EVENTS_MAX {
        bail!("--events must be between 1 and {BENCH_EVENTS_MAX}");
    }
    let funds = funds.clamp(1, FUNDS_MAX);
    let concurrency = concurrency.clamp(1, 8_192);
    let runtime = tokio::runtime::Runtime::new()?;
    let scratch = tempfile::tempdir()?;
    let server = if nats.is_none() && !embedded {
        Some(fundtrail_testkit::NatsServer::start_with(sync.server_sync()).context("starting a scratch nats-server")?)
    } else {
        None
    };
    let url = nats.or_else(|| server.as_ref().map(|s| s.url()));
    let pid = server.as_ref().and_then(|s| s.pid());
    let report =
        runtime.block_on(run(url, pid, &scratch.path().join("off"), events, funds, concurrency, Variant::Plain))?;
    // A second fresh store for each further run: a scratch nats-server like the first,
    // or (embedded) none: a fresh sled directory. (`--nats` conflicts with the further
    // runs' flags: a given server has no second empty stream.)
    let another_server = || -> Result<Option<fundtrail_testkit::NatsServer>> {
        if server.is_none() {
            return Ok(None);
        }
        Ok(Some(
            fundtrail_testkit::NatsServer::start_with(sync.server_sync())
                .context("starting a second scratch nats-server")?,
        ))
    };
    // A further run (purposes, witnesses) on a store of its own.
    let further = |name: &str, variant: Variant| -> Result<Report> {
        let second = another_server()?;
        let url = second.as_ref().map(|s| s.url());
        let pid = second.as_ref().and_then(|s| s.pid());
        runtime.block_on(run(url, pid, &scratch.path().join(name), events, funds, concurrency, variant))
    };
    let restricted = purposes.then(|| further("purposes", Variant::Purposes)).transpose()?;
    let witnessed = witnesses.then(|| further("on", Variant::Witnessed)).transpose()?;
    let sync_label = match (&server, embedded) {
        (_, true) => "embedded sled (flush before ack)".to_owned(),
        (Some(_), _) if sync == SyncMode::Always => "nats-server, sync_interval: always".to_owned(),
        (Some(_), _) => "nats-server, default sync".to_owned(),
        (None, _) => "nats-server given by --nats".to_owned(),
    };
    if json {
        let value = serde_json::json!({
            "events": events,
            "store": sync_label,
            "events_per_s": report.events_per_s,
            "baseline_per_s": report.baseline_per_s,
            "ratio_to_baseline": report.events_per_s / report.baseline_per_s,
            "p50_ms": report.p50_ms,
            "p99_ms": report.p99_ms,
            "verify_per_s": report.verify_per_s,
            "appended_per_s": report.appended_per_s,
            "checkpoint_p50_ms": report.checkpoint_p50_ms,
            "checkpoint_p99_ms": report.checkpoint_p99_ms,
            "follow_pauses": report.follow_pauses,
            "cpu_us_per_event": report.cpu.json(),
            "purposes": restricted.as_ref().map(|r| serde_json::json!({
                "restricted_share": 0.5,
                "events_per_s": r.events_per_s,
                "ratio_to_unrestricted": r.events_per_s / report.events_per_s,
                "p99_ms": r.p99_ms,
            })),
            "witnessed": witnessed.as_ref().map(|w| serde_json::json!({
                "witnesses": witness::WITNESSES,
                "quorum": witness::QUORUM,
                "events_per_s": w.events_per_s,
                "ratio_to_witnesses_off": w.events_per_s / report.events_per_s,
                "checkpoint_p50_ms": w.checkpoint_p50_ms,
                "checkpoint_p99_ms": w.checkpoint_p99_ms,
                "cosigned_p50_ms": w.cosigned_p50_ms,
                "cosigned_p99_ms": w.cosigned_p99_ms,
            })),
        });
        println!("{value}");
    } else {
        println!("store:           {sync_label}");
        println!("events:          {events} signed donations, {funds} funds, {concurrency} in flight");
        println!("pipeline:        {:.0} events/s (verify, decide, append, projections, ledger)", report.events_per_s);
        println!("appended:        {:.0} events/s (in the log, before projections caught up)", report.appended_per_s);
        println!("append latency:  p50 {:.1} ms, p99 {:.1} ms", report.p50_ms, report.p99_ms);
        println!(
            "ack → checkpoint: p50 {:.0} ms, p99 {:.0} ms (in a signed checkpoint)",
            report.checkpoint_p50_ms, report.checkpoint_p99_ms
        );
        println!("baseline:        {:.0} events/s (verify once, raw pipelined append)", report.baseline_per_s);
        println!("ratio:           {:.2}", report.events_per_s / report.baseline_per_s);
        println!(
            "follow pauses:   {} (the writer stopped following the log while it wrote alone)",
            report.follow_pauses
        );
        println!("cpu an event:    {}", report.cpu.process_line(None));
        println!("                 {}", report.cpu.machine_line());
        if let Some(r) = &restricted {
            println!("with purposes:   every other gift restricted to one of 2 purposes, on a second fresh store");
            println!("  pipeline:        {:.0} events/s, p99 {:.1} ms", r.events_per_s, r.p99_ms);
            println!("  ratio with/without: {:.2}", r.events_per_s / report.events_per_s);
        }
        if let Some(w) = &witnessed {
            println!(
                "with witnesses:  {} local witnesses, quorum {}, on a second fresh store",
                witness::WITNESSES,
                witness::QUORUM
            );
            println!("  pipeline:        {:.0} events/s", w.events_per_s);
            println!("  ratio on/off:    {:.2}", w.events_per_s / report.events_per_s);
            println!(
                "  ack → checkpoint: p50 {:.0} ms, p99 {:.0} ms (signed, not yet cosigned)",
                w.checkpoint_p50_ms, w.checkpoint_p99_ms
            );
            println!(
                "  ack → cosigned:   p50 {:.0} ms, p99 {:.0} ms (served: a quorum cosigned it)",
                w.cosigned_p50_ms, w.cosigned_p99_ms
            );
        }
    }
    Ok(())
}

struct Report {
    events_per_s: f64,
    baseline_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    verify_per_s: f64,
    /// Accepted into the log (before the projections caught up).
    appended_per_s: f64,
    /// Acknowledged → in a signed checkpoint.
    checkpoint_p50_ms: f64,
    checkpoint_p99_ms: f64,
    /// With witnesses: acknowledged → in a served (cosigned) checkpoint.
    cosigned_p50_ms: f64,
    cosigned_p99_ms: f64,
    /// Times the writer stopped following the log while it wrote alone.
    follow_pauses: u64,
    /// µs of CPU an event in the pipeline run: this process's, and nats-server's
    /// when it is a scratch server of this run (NaN otherwise).
    cpu: CpuTimes,
}

/// Checkpoints as they appeared: (size, when).
type Seen = Arc<std::sync::Mutex<Vec<(u64, Instant)>>>;

/// Notes each new checkpoint's size and the moment it appeared: the served ones
/// (cosigned, with witnesses), or every signed one.
fn watch_checkpoints(read: fundtrail_service::ReadModel, signed: bool) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let noted = seen.clone();
    let task = tokio::spawn(async move {
        let mut next = 1;
        loop {
            let wait = Duration::from_secs(3600);
            let note = match signed {
                true => read.wait_signed_checkpoint(next, wait).await,
                false => read.wait_checkpoint(next, wait).await,
            };
            let Some(note) = note else { continue };
            let size = fundtrail_service::projections::checkpoint_size(&note, &read.origin).unwrap_or(next);
            noted.lock().expect("checkpoints seen").push((size, Instant::now()));
            next = size + 1;
        }
    });
    (seen, task)
}

/// p50 and p99 of acknowledged → in a checkpoint of `seen`.
fn to_checkpoint(acked: &[(Duration, u64, Instant)], seen: &Seen) -> (f64, f64) {
    let seen = seen.lock().map(|v| v.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = acked
        .iter()
        .filter_map(|(_, seq, at)| {
            seen.iter().find(|(size, _)| size >= seq).map(|(_, t)| t.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    (quantile_of(&latencies, 0.50), quantile_of(&latencies, 0.99))
}

pub(crate) fn quantile_of(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

pub(crate) struct Workload {
    pub(crate) setup: Vec<Vec<u8>>,
    pub(crate) donations: Vec<Vec<u8>>,
    pub(crate) intake: ActorKey,
}

pub(crate) fn workload(events: usize, funds: usize) -> Result<Workload> {
    workload_with(events, funds, false)
}

/// [`workload`]; with `purposes`, two purposes declared per fund and every other gift
/// restricted to one of them.
pub(crate) fn workload_with(events: usize, funds: usize, purposes: bool) -> Result<Workload> {
    let (setup, mut rounds) = workload_rounds_with(events, funds, events, purposes)?;
    let donations = rounds.next_round().unwrap_or_default();
    Ok(Workload { setup, donations, intake: rounds.intake })
}

/// Signed donations, made round by round so that a long run does not hold
/// them all in memory.
pub(crate) struct Rounds {
    intake: ActorKey,
    funds: Vec<FundId>,
    now: chrono::DateTime<chrono::Utc>,
    next: usize,
    events: usize,
    round: usize,
    /// Every other gift restricted to one of [`BENCH_PURPOSES`].
    purposes: bool,
}

/// The purposes a `--purposes` run declares in every fund.
const BENCH_PURPOSES: [&str; 2] = ["助老", "助学"];

impl Rounds {
    /// The next round's signed donations, `None` once all are made.
    pub(crate) fn next_round(&mut self) -> Option<Vec<Vec<u8>>> {
        if self.next >= self.events {
            return None;
        }
        let end = (self.next + self.round).min(self.events);
        let mut salt = [0u8; 32];
        let round = (self.next..end)
            .map(|i| {
                salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let body = EventBody::DonationReceived(DonationReceived {
                    amount_fen: Fen::new(100 + (i as i64 % 10_000)).expect("in range"),
                    channel: Channel::ALL[i % 4],
                    donor: donor_commitment(&salt, &format!("donor-{}", i % 5_000)),
                    payment_ref: format!("BENCH-{i}"),
                    pledge: None,
                    restricted_purpose: (self.purposes && i % 2 == 0).then(|| BENCH_PURPOSES[(i / 2) % 2].to_owned()),
                });
                sign_new(&self.intake, &self.funds[i % self.funds.len()], self.now, body).1
            })
            .collect();
        self.next = end;
        Some(round)
    }
}

/// The set-up events (host, intake key, `funds` funds) and the donations to come.
pub(crate) fn workload_rounds(events: usize, funds: usize, round: usize) -> Result<(Vec<Vec<u8>>, Rounds)> {
    workload_rounds_with(events, funds, round, false)
}

fn workload_rounds_with(events: usize, funds: usize, round: usize, purposes: bool) -> Result<(Vec<Vec<u8>>, Rounds)> {
    let now = chrono::Utc::now();
    let host = ActorKey::generate()?;
    let intake = ActorKey::generate()?;
    let host_scope = FundId::host();
    let mut setup = Vec::new();
    let genesis = EventBody::HostEstablished(HostEstablished {
        host_name: "某市慈善总会".into(),
        host_key: host.key_id(),
        public_key: host.public_key_b64(),
    });
    setup.push(sign_new(&host, &host_scope, now, genesis).1);
    let enrol = EventBody::KeyEnrolled(KeyEnrolled {
        key: intake.key_id(),
        public_key: intake.public_key_b64(),
        label: "收款服务".into(),
    });
    setup.push(sign_new(&host, &host_scope, now, enrol).1);
    let fund_ids: Vec<FundId> = (0..funds).map(|i| FundId::new(format!("bench-{i:03}")).expect("valid")).collect();
    for fund in &fund_ids {
        let agreement = fundtrail_domain::Sha256Hex::new("0".repeat(64)).expect("valid");
        let open = EventBody::FundOpened(FundOpened {
            name: format!("社区发展基金 {fund}"),
            community: "基准社区".into(),
            currency: "CNY".into(),
            agreement,
        });
        setup.push(sign_new(&host, fund, now, open).1);
        let grant = EventBody::RoleGranted(RoleGranted { key: intake.key_id(), role: Role::Intake });
        setup.push(sign_new(&host, fund, now, grant).1);
        if purposes {
            for purpose in BENCH_PURPOSES {
                let declare = EventBody::PurposeDeclared(PurposeDeclared {
                    purpose: purpose.into(),
                    description: format!("仅用于{purpose}"),
                });
                setup.push(sign_new(&host, fund, now, declare).1);
            }
        }
    }
    let rounds = Rounds { intake, funds: fund_ids, now, next: 0, events, round: round.max(1), purposes };
    Ok((setup, rounds))
}

/// What a run of `bench ingest` adds to the plain workload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    /// Every other gift restricted to a purpose.
    Purposes,
    /// Three local witnesses cosign every checkpoint.
    Witnessed,
}

async fn run(
    nats: Option<String>,
    nats_pid: Option<u32>,
    dir: &std::path::Path,
    events: usize,
    funds: usize,
    concurrency: usize,
    variant: Variant,
) -> Result<Report> {
    let work = workload_with(events, funds, variant == Variant::Purposes)?;
    std::fs::create_dir_all(dir)?;
    let mut setup = match &nats {
        Some(url) => ServiceSetup::nats(url, dir),
        None => ServiceSetup::embedded(dir),
    };
    setup.origin = BENCH_ORIGIN.into();
    setup.checkpoint_entries = 10_000;
    setup.checkpoint_interval = Duration::from_millis(250);
    let _witnesses = if variant == Variant::Witnessed {
        let log_vkey = fundtrail_ledger::LogSigner::from_seed(&setup.origin, &setup.log_seed)?.vkey();
        let (witnessing, servers) = witness::start(&dir.join("witnesses"), &log_vkey).await?;
        setup.witnesses = Some(witnessing);
        Some(servers)
    } else {
        None
    };
    let service = Arc::new(setup.start(Arc::new(SystemClock)).await?);
    if service.log.last_seq().await? != 0 {
        bail!("the FUNDTRAIL stream is not empty: run the benchmark against a scratch server");
    }
    for envelope in &work.setup {
        service.submit(envelope.clone()).await?;
    }

    // The pipeline: `concurrency` submitters share the queue of envelopes,
    // while a watcher notes when each signed checkpoint appears.
    let (signed_seen, signed_watcher) = watch_checkpoints(service.read.clone(), true);
    let (served_seen, served_watcher) = watch_checkpoints(service.read.clone(), false);
    let cpu_before = CpuTimes::now(std::process::id(), nats_pid);
    let started = Instant::now();
    let acked = submit_all_acked(&service, work.donations.clone(), concurrency, Answered::Appended).await?;
    let appended = started.elapsed();
    let last = service.log.last_seq().await?;
    if !service.read.wait_applied(last, Duration::from_secs(600)).await {
        bail!("projections did not catch up");
    }
    let pipeline = started.elapsed();
    let cpu = CpuTimes::now(std::process::id(), nats_pid).since(&cpu_before).per_event(events);
    if service.read.wait_checkpoint(last, Duration::from_secs(60)).await.is_none() {
        bail!("no checkpoint signed (and with witnesses, cosigned) over the whole run");
    }
    signed_watcher.abort();
    served_watcher.abort();
    let (checkpoint_p50_ms, checkpoint_p99_ms) = to_checkpoint(&acked, &signed_seen);
    let (cosigned_p50_ms, cosigned_p99_ms) = to_checkpoint(&acked, &served_seen);
    let follow_pauses = service.writer.follow_pauses();
    service.shutdown();
    let mut latencies: Vec<Duration> = acked.iter().map(|(latency, _, _)| *latency).collect();
    latencies.sort();
    let quantile =
        |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;

    // The baseline: verify each envelope once, then append it raw.
    let key = work.intake.verifying_key();
    let resolve = |_: &fundtrail_domain::KeyId| Some(key);
    let started = Instant::now();
    for envelope in &work.donations {
        fundtrail_envelope::open(envelope, resolve)?;
    }
    let verify = started.elapsed();
    let append = match &nats {
        Some(url) => fundtrail_store::baseline::raw_publish(url, &work.donations).await?,
        None => raw_sled(&dir.join("baseline"), &work.donations).await?,
    };
    Ok(Report {
        events_per_s: events as f64 / pipeline.as_secs_f64(),
        baseline_per_s: events as f64 / (verify + append).as_secs_f64(),
        p50_ms: quantile(0.50),
        p99_ms: quantile(0.99),
        verify_per_s: events as f64 / verify.as_secs_f64(),
        appended_per_s: events as f64 / appended.as_secs_f64(),
        checkpoint_p50_ms,
        checkpoint_p99_ms,
        cosigned_p50_ms,
        cosigned_p99_ms,
        follow_pauses,
        cpu,
    })
}

/// Submits every envelope to the service with `concurrency` submitters sharing one
/// queue, each answered when `answered` says; answers each submission's latency.
pub(crate) async fn submit_all(
    service: &Arc<Service>,
    envelopes: Vec<Vec<u8>>,
    concurrency: usize,
    answered: Answered,
) -> Result<Vec<Duration>> {
    Ok(submit_all_acked(service, envelopes, concurrency, answered).await?.into_iter().map(|(l, _, _)| l).collect())
}

/// When a submitter of the pipeline takes its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// Once the event is in the log (`Writer::submit`).
    Appended,
    /// Once the projections applied it too (`Service::submit`, which `POST /v1/events` calls).
    Applied,
}

/// As [`submit_all`], with each submission's sequence and the moment it was acknowledged.
async fn submit_all_acked(
    service: &Arc<Service>,
    envelopes: Vec<Vec<u8>>,
    concurrency: usize,
    answered: Answered,
) -> Result<Vec<(Duration, u64, Instant)>> {
    let count = envelopes.len();
    let queue = Arc::new(Mutex::new(envelopes.into_iter().collect::<VecDeque<_>>()));
    let workers = (0..concurrency).map(|_| {
        let (queue, service) = (queue.clone(), service.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(envelope) = queue.lock().await.pop_front() else { return Ok::<_, anyhow::Error>(latencies) };
                let t = Instant::now();
                let accepted = match answered {
                    Answered::Appended => service.writer.submit(envelope).await?,
                    Answered::Applied => {
                        let submitted = service.submit(envelope).await?;
                        if !submitted.applied {
                            bail!("sequence {} was not applied within the service's wait", submitted.accepted.seq);
                        }
                        submitted.accepted
                    }
                };
                latencies.push((t.elapsed(), accepted.seq, Instant::now()));
            }
        })
    });
    let mut latencies = Vec::with_capacity(count);
    for worker in futures::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    assert_eq!(latencies.len(), count, "every envelope was submitted once");
    Ok(latencies)
}

/// Raw appends to a fresh sled log in batches of the log's maximum.
async fn raw_sled(dir: &std::path::Path, payloads: &[Vec<u8>]) -> Result<Duration> {
    let log = SledLog::open(dir)?;
    let started = Instant::now();
    for (n, chunk) in payloads.chunks(fundtrail_store::BATCH_MESSAGES_MAX).enumerate() {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| AppendRequest {
                subject: "fundtrail.v1.baseline.donation.x".into(),
                msg_id: format!("{n}-{i}"),
                payload: p.clone(),
                expect: None,
            })
            .collect();
        log.append_batch(batch).await?;
    }
    Ok(started.elapsed())
}

/// Largest number of concurrent HTTP clients (threads) in `bench http`.
pub const BENCH_CLIENTS_MAX: usize = 256;
/// How long each phase of one HTTP request (connect, send, the answer, its body) may take.
pub(crate) const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the projections may take to catch up after a run.
pub(crate) const APPLY_WAIT: Duration = Duration::from_secs(600);

/// A load generator's HTTP client: one kept-alive connection, statuses as answers.
///
/// Each phase of a request has its own bound ([`HTTP_REQUEST_TIMEOUT`]) and the whole
/// request none: with a global (or per-call, or resolve) timeout, ureq resolves the
/// host on a thread of its own, spawned for every request, even for an IP address
/// and a kept-alive connection. On this benchmark's two cores those thousands of
/// threads were the clients' cost, not the server's.
pub(crate) fn load_agent() -> ureq::Agent {
    let bound = Some(HTTP_REQUEST_TIMEOUT);
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(bound)
        .timeout_send_request(bound)
        .timeout_send_body(bound)
        .timeout_recv_response(bound)
        .timeout_recv_body(bound)
        .build()
        .new_agent()
}

/// One measured run: its rate (events accepted and applied, per second),
/// each request's latency, and the CPU time it took an event.
struct Phase {
    events_per_s: f64,
    latencies: Vec<Duration>,
    /// µs of CPU an event, of this process (server and load generator alike)
    /// and of nats-server (NaN when it is not a scratch server of this run).
    cpu: CpuTimes,
    /// µs of CPU an event the HTTP load generator's thread took (user, kernel),
    /// part of `cpu`'s service figures; `None` in a run without HTTP.
    generator: Option<(f64, f64)>,
}

impl Phase {
    fn new(events: usize, elapsed: Duration, mut latencies: Vec<Duration>, cpu: CpuTimes) -> Phase {
        assert_eq!(latencies.len(), events, "one latency per event");
        latencies.sort();
        let cpu = cpu.per_event(events);
        Phase { events_per_s: events as f64 / elapsed.as_secs_f64(), latencies, cpu, generator: None }
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        let last = self.latencies.len() - 1;
        self.latencies[((self.latencies.len() as f64 * q) as usize).min(last)].as_secs_f64() * 1e3
    }

    /// The run's CPU an event, for the JSON report.
    fn cpu_json(&self) -> serde_json::Value {
        let mut value = self.cpu.json();
        if let Some((user, kernel)) = self.generator {
            value["load_generator_user"] = user.into();
            value["load_generator_kernel"] = kernel.into();
        }
        value
    }

    /// The run's CPU an event, as one line.
    fn cpu_line(&self) -> String {
        let generator = self.generator.map(|(user, kernel)| user + kernel);
        format!("{}; {}", self.cpu.process_line(generator), self.cpu.machine_line())
    }
}

/// `bench http`: `servers` are (HTTP run, pipeline run) NATS URLs, or scratch
/// servers are started, one per run, so that each run has a fresh stream.
fn bench_http(
    servers: Option<(String, String)>,
    sync: SyncMode,
    events: usize,
    clients: usize,
    json: bool,
) -> Result<()> {
    if events == 0 || events > BENCH_EVENTS_MAX {
        bail!("--events must be between 1 and {BENCH_EVENTS_MAX}");
    }
    if clients == 0 || clients > BENCH_CLIENTS_MAX {
        bail!("--clients must be between 1 and {BENCH_CLIENTS_MAX}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let scratch = tempfile::tempdir()?;
    let start_scratch =
        || fundtrail_testkit::NatsServer::start_with(sync.server_sync()).context("starting a scratch nats-server");

    let pipeline_dir = scratch.path().join("pipeline");
    let (http, pipeline, applied) = match &servers {
        Some((http_url, pipeline_url)) => {
            let http = runtime.block_on(http_phase(http_url, None, &scratch.path().join("http"), events, clients))?;
            let pipeline = runtime.block_on(pipeline_phase(
                pipeline_url,
                None,
                &pipeline_dir,
                events,
                clients,
                Answered::Appended,
            ))?;
            (http, pipeline, None)
        }
        None => {
            let server = start_scratch()?;
            let http = runtime.block_on(http_phase(
                &server.url(),
                server.pid(),
                &scratch.path().join("http"),
                events,
                clients,
            ))?;
            drop(server);
            let server = start_scratch()?;
            let pipeline = runtime.block_on(pipeline_phase(
                &server.url(),
                server.pid(),
                &pipeline_dir,
                events,
                clients,
                Answered::Appended,
            ))?;
            drop(server);
            // The same work as `POST /v1/events` without HTTP: each answered once applied.
            let server = start_scratch()?;
            let applied_dir = scratch.path().join("applied");
            let applied = runtime.block_on(pipeline_phase(
                &server.url(),
                server.pid(),
                &applied_dir,
                events,
                clients,
                Answered::Applied,
            ))?;
            (http, pipeline, Some(applied))
        }
    };
    let store = match (&servers, sync) {
        (Some(_), _) => "nats-servers given by --nats and --pipeline-nats",
        (None, SyncMode::Always) => "scratch nats-servers, sync_interval: always",
        (None, SyncMode::Default) => "scratch nats-servers, default sync",
    };
    let ratio = http.events_per_s / pipeline.events_per_s;
    if json {
        let value = serde_json::json!({
            "events": events,
            "clients": clients,
            "store": store,
            "http_events_per_s": http.events_per_s,
            "pipeline_events_per_s": pipeline.events_per_s,
            "ratio": ratio,
            "p50_ms": http.quantile_ms(0.50),
            "p99_ms": http.quantile_ms(0.99),
            "pipeline_p50_ms": pipeline.quantile_ms(0.50),
            "pipeline_p99_ms": pipeline.quantile_ms(0.99),
            "applied_events_per_s": applied.as_ref().map(|a| a.events_per_s),
            "ratio_to_applied": applied.as_ref().map(|a| http.events_per_s / a.events_per_s),
            "cpu_us_per_event": {
                "http": http.cpu_json(),
                "pipeline": pipeline.cpu_json(),
                "applied": applied.as_ref().map(Phase::cpu_json),
            },
        });
        println!("{value}");
    } else {
        println!("store:           {store}");
        println!("events:          {events} signed donations, {clients} concurrent clients");
        println!("http:            {:.0} events/s (POST /v1/events, answered once applied)", http.events_per_s);
        println!("http latency:    p50 {:.1} ms, p99 {:.1} ms", http.quantile_ms(0.50), http.quantile_ms(0.99));
        println!("pipeline:        {:.0} events/s (Writer::submit, then projections)", pipeline.events_per_s);
        println!("append latency:  p50 {:.1} ms, p99 {:.1} ms", pipeline.quantile_ms(0.50), pipeline.quantile_ms(0.99));
        println!("ratio:           {ratio:.2} (http / pipeline)");
        if let Some(applied) = &applied {
            println!(
                "pipeline, each answered once applied: {:.0} events/s (Service::submit, what POST calls), p50 {:.1} ms",
                applied.events_per_s,
                applied.quantile_ms(0.50)
            );
            println!(
                "ratio to it:     {:.2} (http / that: the cost of HTTP alone)",
                http.events_per_s / applied.events_per_s
            );
        }
        println!("cpu an event:    http: {}", http.cpu_line());
        println!("                 pipeline: {}", pipeline.cpu_line());
        if let Some(applied) = &applied {
            println!("                 pipeline, answered once applied: {}", applied.cpu_line());
        }
    }
    Ok(())
}

/// Starts a server in this process on `nats` (an empty stream), sets up one
/// fund, and times `clients` HTTP clients posting the donations.
async fn http_phase(
    nats: &str,
    nats_pid: Option<u32>,
    dir: &std::path::Path,
    events: usize,
    clients: usize,
) -> Result<Phase> {
    let work = workload(events, 1)?;
    let service = Arc::new(serve_setup(nats, dir).start(Arc::new(SystemClock)).await?);
    let server = TestHttp::serve(service.clone()).await?;
    if service.log.last_seq().await? != 0 {
        bail!("the FUNDTRAIL stream at {nats} is not empty: run the benchmark against a scratch server");
    }
    for envelope in &work.setup {
        service.submit(envelope.clone()).await?;
    }
    let addr: std::net::SocketAddr =
        server.url.trim_start_matches("http://").parse().context("the test server's address")?;
    let donations = work.donations;
    let cpu_before = CpuTimes::now(std::process::id(), nats_pid);
    let started = Instant::now();
    // The load generator on a thread of its own, as a separate program would be.
    let (sent, answered) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let cpu_before = cpu::thread_cpu_seconds();
        let latencies = load::post_all(addr, "/v1/events", donations, clients);
        let cpu_after = cpu::thread_cpu_seconds();
        sent.send((latencies, (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1)))
    });
    let (latencies, generator) = answered.await.context("the load generator's thread ended without an answer")?;
    let latencies = latencies?;
    let last = service.log.last_seq().await?;
    if !service.read.wait_applied(last, APPLY_WAIT).await {
        bail!("projections did not catch up within {APPLY_WAIT:?}");
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now(std::process::id(), nats_pid).since(&cpu_before);
    server.stop().await?;
    service.shutdown();
    let mut phase = Phase::new(events, elapsed, latencies, cpu);
    phase.generator = Some((cpu::micros_per_event(generator.0, events), cpu::micros_per_event(generator.1, events)));
    Ok(phase)
}

/// The pipeline alone on `nats` (an empty stream): `concurrency` submitters
/// hand the donations to `Writer::submit` (or `Service::submit`, as `answered`
/// says), then the projections catch up.
async fn pipeline_phase(
    nats: &str,
    nats_pid: Option<u32>,
    dir: &std::path::Path,
    events: usize,
    concurrency: usize,
    answered: Answered,
) -> Result<Phase> {
    let work = workload(events, 1)?;
    let service = Arc::new(serve_setup(nats, dir).start(Arc::new(SystemClock)).await?);
    if service.log.last_seq().await? != 0 {
        bail!("the FUNDTRAIL stream at {nats} is not empty: run the benchmark against a scratch server");
    }
    for envelope in &work.setup {
        service.submit(envelope.clone()).await?;
    }
    let cpu_before = CpuTimes::now(std::process::id(), nats_pid);
    let started = Instant::now();
    let latencies = submit_all(&service, work.donations, concurrency, answered).await?;
    let last = service.log.last_seq().await?;
    if !service.read.wait_applied(last, APPLY_WAIT).await {
        bail!("projections did not catch up within {APPLY_WAIT:?}");
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now(std::process::id(), nats_pid).since(&cpu_before);
    service.shutdown();
    Ok(Phase::new(events, elapsed, latencies, cpu))
}

/// A service on the stream at `nats` with the checkpoint cadence of `fundtrail serve`
/// (every 1,000 entries or 250 ms), so that the HTTP and pipeline runs sign alike.
pub(crate) fn serve_setup(nats: &str, dir: &std::path::Path) -> ServiceSetup {
    let mut setup = ServiceSetup::nats(nats, dir);
    setup.origin = BENCH_ORIGIN.into();
    setup.checkpoint_entries = 1_000;
    setup.checkpoint_interval = Duration::from_millis(250);
    setup
}
