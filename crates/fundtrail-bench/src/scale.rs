//! `fundtrail-bench scale`: a city's worth of funds and up to 10^6 signed
//! donations on one stream, in rounds. Prints the ingest rate of the first
//! and of the last rounds (a flat rate is the target), the resident memory
//! of this process (the service; the workload is generated round by round and
//! dropped) and of the scratch nats-server, and the time a replica restarting
//! on that log takes to be ready, with its fold's snapshot and without (the
//! replica in a process of its own, whose resident memory is the service's alone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fundtrail_service::SystemClock;
use fundtrail_testkit::service::ServiceSetup;

use crate::cpu::CpuTimes;
use crate::{submit_all, workload_rounds, Answered, BENCH_ORIGIN};

/// Donations signed and submitted per round.
pub const ROUND_EVENTS: usize = 25_000;
/// How long a restarted replica may take to be ready.
const READY_WAIT_MAX: Duration = Duration::from_secs(600);

pub fn scale(events: usize, funds: usize, concurrency: usize, json: bool) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let scratch = tempfile::tempdir()?;
    let server = fundtrail_testkit::NatsServer::start_with(fundtrail_testkit::Sync::Default)
        .context("starting a scratch nats-server")?;
    let mut setup = scale_setup(&server.url(), scratch.path());
    // At least two snapshots in any run, so that a small one (below the service's
    // 100,000) also has one to restart from.
    setup.snapshot_events = setup.snapshot_events.min((events as u64 / 2).max(1));
    let report = runtime.block_on(async {
        let service = Arc::new(setup.clone().start(Arc::new(SystemClock)).await?);
        let (setup_events, mut rounds) = workload_rounds(events, funds, ROUND_EVENTS)?;
        for envelope in setup_events {
            service.submit(envelope).await?;
        }
        let mut rates = Vec::new();
        let mut cpu = Vec::new();
        let nats_pid = server.pid();
        while let Some(round) = rounds.next_round() {
            let count = round.len();
            let started = Instant::now();
            let cpu_before = CpuTimes::now(std::process::id(), nats_pid);
            submit_all(&service, round, concurrency, Answered::Appended).await?;
            let last = service.log.last_seq().await?;
            if !service.read.wait_applied(last, READY_WAIT_MAX).await {
                bail!("projections did not catch up");
            }
            rates.push(count as f64 / started.elapsed().as_secs_f64());
            cpu.push(CpuTimes::now(std::process::id(), nats_pid).since(&cpu_before).per_event(count));
        }
        let service_rss_mb = rss_mb(std::process::id());
        let trace_lookup = trace_lookups(&service.read.state());
        let donor_lookup = donor_lookups(&service.read);
        let nats_rss_mb = server.pid().map(rss_mb).unwrap_or(f64::NAN);
        let last = service.log.last_seq().await?;
        service.shutdown();
        drop(service);
        tokio::time::sleep(Duration::from_secs(2)).await; // the last snapshot lands
        let with_snapshot = restart(&setup, &server.url(), last).await?;
        // A snapshot that did not load would be timed as a full replay: say so, not a figure.
        if with_snapshot.started_at == 0 {
            bail!("the replica restarted without its snapshot (its log says why); no restart figure with one");
        }
        let snapshot = fundtrail_service::projections::snapshot_path(&setup.projections_dir);
        std::fs::remove_file(&snapshot).with_context(|| format!("no snapshot at {}", snapshot.display()))?;
        let without_snapshot = restart(&setup, &server.url(), last).await?;
        assert_eq!(without_snapshot.started_at, 0, "no snapshot, so the whole log is replayed");
        Ok::<_, anyhow::Error>(Scale {
            rates,
            cpu,
            service_rss_mb,
            nats_rss_mb,
            last,
            with_snapshot,
            without_snapshot,
            trace_lookup,
            donor_lookup,
        })
    })?;
    let edge = report.rates.len().div_ceil(10).max(1);
    let start: f64 = report.rates[..edge].iter().sum::<f64>() / edge as f64;
    let end: f64 = report.rates[report.rates.len() - edge..].iter().sum::<f64>() / edge as f64;
    let cpu_start = CpuTimes::mean(&report.cpu[..edge]);
    let cpu_end = CpuTimes::mean(&report.cpu[report.cpu.len() - edge..]);
    if json {
        let value = serde_json::json!({
            "events": events, "funds": funds, "log_messages": report.last,
            "start_events_per_s": start, "end_events_per_s": end, "end_to_start": end / start,
            "cpu_us_per_event_start": cpu_start.json(), "cpu_us_per_event_end": cpu_end.json(),
            "service_rss_mb": report.service_rss_mb, "nats_rss_mb": report.nats_rss_mb,
            "restarted_rss_mb": report.with_snapshot.rss_mb,
            "restarted_settled_rss_mb": report.with_snapshot.settled_rss_mb,
            "rebuilt_rss_mb": report.without_snapshot.rss_mb,
            "rebuilt_settled_rss_mb": report.without_snapshot.settled_rss_mb,
            "ready_with_snapshot_s": report.with_snapshot.ready.as_secs_f64(),
            "ready_without_snapshot_s": report.without_snapshot.ready.as_secs_f64(),
            "trace_lookups": report.trace_lookup.count,
            "trace_lookup_p50_us": report.trace_lookup.p50.as_secs_f64() * 1e6,
            "trace_lookup_p99_us": report.trace_lookup.p99.as_secs_f64() * 1e6,
            "donor_lookups": report.donor_lookup.count,
            "donor_lookup_p50_ms": report.donor_lookup.p50.as_secs_f64() * 1e3,
            "donor_lookup_p99_ms": report.donor_lookup.p99.as_secs_f64() * 1e3,
        });
        println!("{value}");
    } else {
        println!("store:           nats-server, default sync");
        println!("events:          {events} signed donations over {funds} funds ({} messages)", report.last);
        println!("ingest:          {start:.0} events/s in the first rounds, {end:.0} in the last ({:.2})", end / start);
        println!(
            "CPU per event:   this process user {:.1} → {:.1} µs, kernel {:.1} → {:.1} µs; \
             nats-server user {:.1} → {:.1} µs, kernel {:.1} → {:.1} µs (first rounds → last)",
            cpu_start.service_user,
            cpu_end.service_user,
            cpu_start.service_kernel,
            cpu_end.service_kernel,
            cpu_start.nats_user,
            cpu_end.nats_user,
            cpu_start.nats_kernel,
            cpu_end.nats_kernel
        );
        println!("                 first rounds: {}; last: {}", cpu_start.machine_line(), cpu_end.machine_line());
        println!(
            "resident memory: service {:.0} MB after the ingest (this process, with the load generator); \
             nats-server {:.0} MB",
            report.service_rss_mb, report.nats_rss_mb
        );
        println!(
            "                 a replica process restarted from the snapshot: {:.0} MB once ready, {:.0} MB {} s later; \
             rebuilt from the log: {:.0} MB, {:.0} MB",
            report.with_snapshot.rss_mb,
            report.with_snapshot.settled_rss_mb,
            SETTLE.as_secs(),
            report.without_snapshot.rss_mb,
            report.without_snapshot.settled_rss_mb
        );
        println!(
            "restart → ready: {:.1} s with the fold's snapshot (at {}, {} events replayed after it), {:.1} s without",
            report.with_snapshot.ready.as_secs_f64(),
            report.with_snapshot.started_at,
            report.last - report.with_snapshot.started_at,
            report.without_snapshot.ready.as_secs_f64()
        );
        println!(
            "trace lookup:    p50 {:.1} µs, p99 {:.1} µs over {} gifts (docs/design.md §1.6, the fold's trace)",
            report.trace_lookup.p50.as_secs_f64() * 1e6,
            report.trace_lookup.p99.as_secs_f64() * 1e6,
            report.trace_lookup.count
        );
        println!(
            "donor lookup:    p50 {:.1} ms, p99 {:.1} ms over {} donors (the private vault's read: every fund's gifts walked)",
            report.donor_lookup.p50.as_secs_f64() * 1e3,
            report.donor_lookup.p99.as_secs_f64() * 1e3,
            report.donor_lookup.count
        );
    }
    Ok(())
}

struct Scale {
    rates: Vec<f64>,
    /// CPU per event of each round, in µs.
    cpu: Vec<CpuTimes>,
    service_rss_mb: f64,
    nats_rss_mb: f64,
    last: u64,
    /// A replica process restarted from the snapshot: the service alone on the whole log.
    with_snapshot: Restarted,
    /// A replica process rebuilding its fold from the whole log.
    without_snapshot: Restarted,
    trace_lookup: Lookups,
    donor_lookup: Lookups,
}

/// Most gifts whose trace the run looks up.
const TRACE_LOOKUPS_MAX: usize = 10_000;

/// Most donors whose gifts the run looks up.
const DONOR_LOOKUPS_MAX: usize = 100;

/// Latency of lookups (gifts' traces, donors' gifts).
struct Lookups {
    count: usize,
    p50: Duration,
    p99: Duration,
}

/// Times the trace of up to [`TRACE_LOOKUPS_MAX`] gifts spread over every fund,
/// in a scrambled order, on the served state: what `GET /v1/donations/{id}/trace`
/// computes (the HTTP layer adds only the JSON).
fn trace_lookups(state: &fundtrail_service::projections::StateAt) -> Lookups {
    let mut ids: Vec<_> = spread_gifts(&state.fold().state, TRACE_LOOKUPS_MAX).map(|(id, _)| id.clone()).collect();
    // A fixed permutation (multiplicative, odd step), so that lookups jump between funds.
    let n = ids.len();
    if n > 1 {
        let step = (n / 2 + 1) | 1;
        let order: Vec<_> = (0..n).map(|i| ids[(i * step) % n].clone()).collect();
        if order.iter().collect::<std::collections::HashSet<_>>().len() == n {
            ids = order;
        }
    }
    let times: Vec<Duration> = ids
        .iter()
        .map(|id| {
            let started = Instant::now();
            let trace = fundtrail_domain::trace(&state.fold().state, id);
            let took = started.elapsed();
            assert!(trace.is_some(), "every gift of the state has a trace");
            took
        })
        .collect();
    Lookups::of(times)
}

/// Times `ReadModel::donor` for up to [`DONOR_LOOKUPS_MAX`] donors spread over the
/// served state: what `GET /private/v1/donors/{commitment}` reads besides the vault.
fn donor_lookups(read: &fundtrail_service::ReadModel) -> Lookups {
    let state = read.state();
    let donors: Vec<_> = spread_gifts(&state, DONOR_LOOKUPS_MAX).map(|(_, d)| d.donor.clone()).collect();
    let times = donors
        .iter()
        .map(|donor| {
            let started = Instant::now();
            let found = read.donor(donor);
            let took = started.elapsed();
            assert!(found.iter().any(|d| d.donor == *donor), "every donor of the state has a gift");
            took
        })
        .collect();
    Lookups::of(times)
}

/// Up to `max` of the state's cash gifts, spread evenly over every fund's, in fund order.
fn spread_gifts(
    state: &fundtrail_domain::State,
    max: usize,
) -> impl Iterator<Item = (&fundtrail_domain::EventId, &fundtrail_domain::state::Donation)> {
    let gifts: usize = state.funds.values().map(|f| f.donations.len()).sum();
    let stride = gifts.div_ceil(max).max(1);
    state.funds.values().flat_map(|f| f.donations.iter()).step_by(stride)
}

impl Lookups {
    fn of(mut times: Vec<Duration>) -> Lookups {
        times.sort();
        let at = |q: f64| times.get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
        Lookups { count: times.len(), p50: at(0.5).unwrap_or_default(), p99: at(0.99).unwrap_or_default() }
    }
}

/// How long the restarted replica stays idle after ready before its resident
/// memory is read a second time, to show whether the allocator gives back what
/// the start freed: mimalloc purges freed pages after a delay (1 s by default,
/// longer for busy arenas), and only when it next allocates.
const SETTLE: Duration = Duration::from_secs(5);

/// What the replica process of [`restart`] reports.
struct Restarted {
    /// From starting the process until it had applied the last event.
    ready: Duration,
    /// Its resident memory then, in MB.
    rss_mb: f64,
    /// Its resident memory after [`SETTLE`] idle, in MB.
    settled_rss_mb: f64,
    /// The position its fold started from: the snapshot's, or 0 (a full replay).
    started_at: u64,
}

/// Starts a replica on the same stream and projections, in a process of its
/// own (this binary's hidden `scale-replica`), and answers the time from
/// starting that process until it has applied `last` (what `/readyz` waits
/// for) and its resident memory then and once settled: the service alone,
/// without the load generator or the memory of the first service.
async fn restart(setup: &ServiceSetup, nats_url: &str, last: u64) -> Result<Restarted> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let started = Instant::now();
    let dir = setup.projections_dir.parent().context("the projections' directory has a parent")?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["scale-replica", "--nats", nats_url, "--last", &last.to_string()])
        .arg("--dir")
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the replica process")?;
    // The log key's seed goes through a pipe, not the command line, where any
    // local user could read it.
    let mut stdin = child.stdin.take().context("the replica process has a stdin")?;
    stdin.write_all(hex::encode(setup.log_seed).as_bytes()).await?;
    drop(stdin);
    let stdout = child.stdout.take().context("the replica process has a stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    async fn report(
        lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    ) -> Result<(f64, u64)> {
        let line = lines.next_line().await?.context("the replica process stopped before its report")?;
        let value: serde_json::Value = serde_json::from_str(&line).context("the replica's report is not JSON")?;
        let rss_mb = value["rss_mb"].as_f64().context("the replica's report has no rss_mb")?;
        let started_at = value["started_at"].as_u64().context("the replica's report has no started_at")?;
        Ok((rss_mb, started_at))
    }
    let (rss_mb, started_at) = report(&mut lines).await?;
    let ready = started.elapsed();
    let (settled_rss_mb, _) = report(&mut lines).await?;
    let status = child.wait().await.context("waiting for the replica process")?;
    if !status.success() {
        bail!("the replica process failed ({status})");
    }
    Ok(Restarted { ready, rss_mb, settled_rss_mb, started_at })
}

/// The replica process of [`restart`]: reads the log key's seed (64 hex digits)
/// from standard input, starts the service on the stream at `nats` and the
/// projections in `dir`, waits until `last` is applied, prints
/// `{"rss_mb": …}`, again after [`SETTLE`], and stops.
pub fn replica(nats: &str, dir: &std::path::Path, last: u64) -> Result<()> {
    let mut hex_seed = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 128), &mut hex_seed)?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex_seed.trim(), &mut seed).context("the log seed on stdin must be 64 hex digits")?;
    let mut setup = scale_setup(nats, dir);
    setup.log_seed = seed;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let service = setup.start(Arc::new(SystemClock)).await?;
        if !service.read.wait_applied(last, READY_WAIT_MAX).await {
            bail!("the restarted replica did not catch up within {READY_WAIT_MAX:?}");
        }
        let started_at = service.started_at;
        let report =
            || println!("{}", serde_json::json!({ "rss_mb": rss_mb(std::process::id()), "started_at": started_at }));
        report();
        tokio::time::sleep(SETTLE).await;
        report();
        service.shutdown();
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    })
}

/// The service of a scale run, on the stream at `nats` with its projections under `dir`.
fn scale_setup(nats: &str, dir: &std::path::Path) -> ServiceSetup {
    let mut setup = ServiceSetup::nats(nats, dir);
    setup.origin = BENCH_ORIGIN.into();
    setup.checkpoint_entries = 10_000;
    setup.checkpoint_interval = Duration::from_millis(250);
    setup
}

/// Resident memory of a process, in MB (VmRSS), NaN when unreadable.
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
