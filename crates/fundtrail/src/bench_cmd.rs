//! `fundtrail bench ingest`: signed donations through the whole pipeline and
//! the projections, against a baseline in the same run on the same store —
//! the same envelopes, each verified once, then appended raw (pipelined
//! publishes to JetStream, or batched appends to sled). The ratio is the
//! figure to compare: the machine's noise cancels out of it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use fundtrail_domain::event::*;
use fundtrail_domain::{donor_commitment, Fen, FundId, Role};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::ActorKey;
use fundtrail_ledger::LogSigner;
use fundtrail_service::{LogBackend, Service, ServiceConfig, SystemClock, WriterConfig};
use fundtrail_store::{AppendRequest, EventLog, SledLog, StreamSettings};
use tokio::sync::Mutex;

/// Largest number of events one run may ingest.
pub const BENCH_EVENTS_MAX: usize = 1_000_000;

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

pub fn bench(cmd: BenchCommand) -> Result<()> {
    let BenchCommand::Ingest { nats, embedded, sync, events, funds, concurrency, json } = cmd;
    if events == 0 || events > BENCH_EVENTS_MAX {
        bail!("--events must be between 1 and {BENCH_EVENTS_MAX}");
    }
    let funds = funds.clamp(1, 100);
    let concurrency = concurrency.clamp(1, 8_192);
    let runtime = tokio::runtime::Runtime::new()?;
    let scratch = tempfile::tempdir()?;
    let server = if nats.is_none() && !embedded {
        let mode =
            if sync == SyncMode::Always { fundtrail_testkit::Sync::Always } else { fundtrail_testkit::Sync::Default };
        Some(fundtrail_testkit::NatsServer::start_with(mode).context("starting a scratch nats-server")?)
    } else {
        None
    };
    let url = nats.or_else(|| server.as_ref().map(|s| s.url()));
    let report = runtime.block_on(run(url, scratch.path(), events, funds, concurrency))?;
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
        });
        println!("{value}");
    } else {
        println!("store:           {sync_label}");
        println!("events:          {events} signed donations, {funds} funds, {concurrency} in flight");
        println!("pipeline:        {:.0} events/s (verify, decide, append, projections, ledger)", report.events_per_s);
        println!("appended:        {:.0} events/s (in the log, before projections caught up)", report.appended_per_s);
        println!("append latency:  p50 {:.1} ms, p99 {:.1} ms", report.p50_ms, report.p99_ms);
        println!("baseline:        {:.0} events/s (verify once, raw pipelined append)", report.baseline_per_s);
        println!("ratio:           {:.2}", report.events_per_s / report.baseline_per_s);
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
}

struct Workload {
    setup: Vec<Vec<u8>>,
    donations: Vec<Vec<u8>>,
    intake: ActorKey,
}

fn workload(events: usize, funds: usize) -> Result<Workload> {
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
    let fund_ids: Vec<FundId> = (0..funds).map(|i| FundId::new(format!("bench-{i:02}")).expect("valid")).collect();
    for fund in &fund_ids {
        let agreement = fundtrail_domain::Sha256Hex::new("0".repeat(64)).expect("valid");
        let open = EventBody::FundOpened(FundOpened {
            name: format!("社区发展基金 {fund}"),
            community: "基准社区".into(),
            currency: "CNY".into(),
            agreement,
        });
        setup.push(sign_new(&host, fund, now, open).1);
        setup.push(
            sign_new(
                &host,
                fund,
                now,
                EventBody::RoleGranted(RoleGranted { key: intake.key_id(), role: Role::Intake }),
            )
            .1,
        );
    }
    let mut salt = [0u8; 32];
    let donations = (0..events)
        .map(|i| {
            salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let body = EventBody::DonationReceived(DonationReceived {
                amount_fen: Fen::new(100 + (i as i64 % 10_000)).expect("in range"),
                channel: Channel::ALL[i % 4],
                donor: donor_commitment(&salt, &format!("donor-{}", i % 5_000)),
                payment_ref: format!("BENCH-{i}"),
                pledge: None,
                restricted_purpose: None,
            });
            sign_new(&intake, &fund_ids[i % funds], now, body).1
        })
        .collect();
    Ok(Workload { setup, donations, intake })
}

async fn run(
    nats: Option<String>,
    dir: &std::path::Path,
    events: usize,
    funds: usize,
    concurrency: usize,
) -> Result<Report> {
    let work = workload(events, funds)?;
    let backend = match &nats {
        Some(url) => LogBackend::Nats { url: url.clone(), settings: StreamSettings::default() },
        None => LogBackend::Embedded(dir.join("log")),
    };
    let log_key = ActorKey::generate()?;
    let config = ServiceConfig {
        backend,
        projections_dir: dir.join("projections"),
        writer: WriterConfig::default(),
        log_signer: LogSigner::from_seed("fundtrail.bench/ledger", &log_key.seed())?,
        checkpoint_entries: 10_000,
        checkpoint_interval: Duration::from_millis(250),
        chunk_messages_max: fundtrail_service::projections::CHUNK_MESSAGES_MAX,
    };
    let service = Arc::new(Service::start(config, Arc::new(SystemClock)).await?);
    if service.log.last_seq().await? != 0 {
        bail!("the FUNDTRAIL stream is not empty: run the benchmark against a scratch server");
    }
    for envelope in &work.setup {
        service.submit(envelope.clone()).await?;
    }

    // The pipeline: `concurrency` submitters share the queue of envelopes.
    let queue = Arc::new(Mutex::new(work.donations.iter().cloned().collect::<VecDeque<_>>()));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (queue, service) = (queue.clone(), service.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(envelope) = queue.lock().await.pop_front() else { return Ok::<_, anyhow::Error>(latencies) };
                let t = Instant::now();
                service.writer.submit(envelope).await?;
                latencies.push(t.elapsed());
            }
        })
    });
    let mut latencies = Vec::with_capacity(events);
    for worker in futures::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    let appended = started.elapsed();
    let last = service.log.last_seq().await?;
    if !service.read.wait_applied(last, Duration::from_secs(600)).await {
        bail!("projections did not catch up");
    }
    let pipeline = started.elapsed();
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
    })
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
