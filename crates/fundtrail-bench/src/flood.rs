//! `fundtrail-bench flood`: what a flood of forged envelopes costs honest clients.
//!
//! A server in this process (on a scratch nats-server, or the embedded store) with
//! the default `fundtrail_http::Limits`. Honest clients, each on its own kept-alive
//! connection, post signed donations one after another: first alone, then while
//! `--flood` connections post forged envelopes (a real donation with one character
//! of its signature changed: well formed, by an enrolled key, failing Ed25519) as
//! fast as the server answers. The figure is the honest clients' p99 with the flood
//! over their p99 without it, in the same run (issue 11's target: ≤ 3).
//!
//! Each honest client keeps its connection across both phases (so by the flood it
//! has proved it holds an enrolled key); the flood comes from the same address,
//! reconnecting whenever the server closes a connection.
//!
//! Every answer is counted by status. An honest donation answered anything but
//! 201/202 is a failure of the run, not a retry: the benchmark stops and says so.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fundtrail_service::SystemClock;
use fundtrail_testkit::cast::forged;
use fundtrail_testkit::service::TestHttp;

use crate::{load_agent, quantile_of, serve_setup, workload, SyncMode, APPLY_WAIT};

/// Most flooding connections a run may open.
pub const FLOOD_CONNECTIONS_MAX: usize = 1_024;
/// Most honest clients.
pub const HONEST_CLIENTS_MAX: usize = 64;

pub struct FloodOptions {
    pub embedded: bool,
    pub sync: SyncMode,
    /// Honest donations per phase.
    pub events: usize,
    pub honest: usize,
    pub flood: usize,
    pub json: bool,
}

/// Answers counted by status.
type Statuses = BTreeMap<u16, u64>;

struct Phase {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn p(&self, q: f64) -> f64 {
        quantile_of(&self.latencies, q)
    }
}

pub fn flood(options: FloodOptions) -> Result<()> {
    if options.events == 0 || options.events > 100_000 {
        bail!("--events must be between 1 and 100000");
    }
    if options.honest == 0 || options.honest > HONEST_CLIENTS_MAX {
        bail!("--honest must be between 1 and {HONEST_CLIENTS_MAX}");
    }
    if options.flood == 0 || options.flood > FLOOD_CONNECTIONS_MAX {
        bail!("--flood must be between 1 and {FLOOD_CONNECTIONS_MAX}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let scratch = tempfile::tempdir()?;
    let nats = if options.embedded {
        None
    } else {
        let mode = options.sync.server_sync();
        Some(fundtrail_testkit::NatsServer::start_with(mode).context("starting a scratch nats-server")?)
    };
    let setup = match &nats {
        Some(server) => serve_setup(&server.url(), scratch.path()),
        None => {
            let mut setup = fundtrail_testkit::service::ServiceSetup::embedded(scratch.path());
            setup.origin = crate::BENCH_ORIGIN.into();
            setup.checkpoint_entries = 1_000;
            setup.checkpoint_interval = Duration::from_millis(250);
            setup
        }
    };
    let work = workload(options.events * 2, 1)?;
    let (service, server) = runtime.block_on(async {
        let service = Arc::new(setup.start(Arc::new(SystemClock)).await?);
        let server = TestHttp::serve(service.clone()).await?;
        for envelope in &work.setup {
            service.submit(envelope.clone()).await?;
        }
        anyhow::Ok((service, server))
    })?;
    let url = format!("{}/v1/events", server.url);
    let mut donations = work.donations;
    let second = donations.split_off(options.events);
    let forged = forged(&second[0]);

    // Each honest client keeps its connection across both phases, as a cashier's
    // service posting all day would: by the flood, it has proved it holds a key.
    let agents: Vec<ureq::Agent> = (0..options.honest).map(|_| load_agent()).collect();
    let mut honest_statuses = Statuses::new();
    let alone = honest_phase(&url, donations, &agents, &mut honest_statuses)?;

    let stop = Arc::new(AtomicBool::new(false));
    let flood_statuses = Arc::new(Mutex::new(Statuses::new()));
    let flood_started = Instant::now();
    let flooders: Vec<_> = (0..options.flood)
        .map(|_| {
            let (url, forged, stop, statuses) = (url.clone(), forged.clone(), stop.clone(), flood_statuses.clone());
            std::thread::spawn(move || flood_until(&url, &forged, &stop, &statuses))
        })
        .collect();
    // Let the flood reach its pace before the honest clients start again.
    std::thread::sleep(Duration::from_millis(500));
    let flooded = honest_phase(&url, second, &agents, &mut honest_statuses);
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().map_err(|_| anyhow::anyhow!("a flooding thread panicked"))?;
    }
    let flood_elapsed = flood_started.elapsed();
    let flooded = flooded?;
    let metrics = runtime.block_on(async {
        let last = service.log.last_seq().await?;
        if !service.read.wait_applied(last, APPLY_WAIT).await {
            bail!("projections did not catch up within {APPLY_WAIT:?}");
        }
        anyhow::Ok(())
    });
    metrics?;
    runtime.block_on(server.stop())?;
    service.shutdown();

    let flood_statuses = flood_statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let flood_total: u64 = flood_statuses.values().sum();
    let ratio = flooded.p(0.99) / alone.p(0.99);
    let store = match (&nats, options.sync) {
        (None, _) => "embedded sled",
        (Some(_), SyncMode::Always) => "scratch nats-server, sync_interval: always",
        (Some(_), SyncMode::Default) => "scratch nats-server, default sync",
    };
    let counts = |s: &Statuses| s.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
    if options.json {
        let value = serde_json::json!({
            "store": store,
            "honest_clients": options.honest,
            "flood_connections": options.flood,
            "events_per_phase": options.events,
            "alone_p50_ms": alone.p(0.50),
            "alone_p99_ms": alone.p(0.99),
            "alone_events_per_s": options.events as f64 / alone.elapsed.as_secs_f64(),
            "flooded_p50_ms": flooded.p(0.50),
            "flooded_p99_ms": flooded.p(0.99),
            "flooded_events_per_s": options.events as f64 / flooded.elapsed.as_secs_f64(),
            "p99_ratio": ratio,
            "flood_requests_per_s": flood_total as f64 / flood_elapsed.as_secs_f64(),
            "flood_statuses": flood_statuses,
            "honest_statuses": honest_statuses,
        });
        println!("{value}");
    } else {
        println!("store:           {store}");
        println!("honest:          {} clients, {} signed donations per phase", options.honest, options.events);
        println!(
            "alone:           p50 {:.1} ms, p99 {:.1} ms, {:.0} events/s",
            alone.p(0.50),
            alone.p(0.99),
            options.events as f64 / alone.elapsed.as_secs_f64()
        );
        println!(
            "under flood:     p50 {:.1} ms, p99 {:.1} ms, {:.0} events/s",
            flooded.p(0.50),
            flooded.p(0.99),
            options.events as f64 / flooded.elapsed.as_secs_f64()
        );
        println!("p99 ratio:       {ratio:.2} (under flood / alone; target ≤ 3)");
        println!(
            "flood:           {} connections, {:.0} forged envelopes/s answered ({})",
            options.flood,
            flood_total as f64 / flood_elapsed.as_secs_f64(),
            counts(&flood_statuses)
        );
        println!("honest answers:  {}", counts(&honest_statuses));
    }
    Ok(())
}

/// The honest clients (one agent, so one kept-alive connection, each) post
/// `envelopes` between them; every answer but 201/202 ends the run with its status.
fn honest_phase(url: &str, envelopes: Vec<Vec<u8>>, agents: &[ureq::Agent], statuses: &mut Statuses) -> Result<Phase> {
    let queue = Mutex::new(envelopes.into_iter().collect::<std::collections::VecDeque<_>>());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    let started = Instant::now();
    let results: Vec<Result<(Vec<Duration>, Statuses)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = agents
            .iter()
            .map(|agent| {
                scope.spawn(|| {
                    let mut latencies = Vec::new();
                    let mut statuses = Statuses::new();
                    while let Some(envelope) = next() {
                        let t = Instant::now();
                        let mut response = agent
                            .post(url)
                            .header("Content-Type", "application/json")
                            .send(&envelope[..])
                            .with_context(|| format!("POST {url}"))?;
                        let status = response.status().as_u16();
                        // Read to the end, so the connection is kept for the next one.
                        let body = response.body_mut().read_to_string().unwrap_or_default();
                        *statuses.entry(status).or_default() += 1;
                        if status != 201 && status != 202 {
                            bail!("an honest donation was answered {status}: {body}");
                        }
                        latencies.push(t.elapsed());
                    }
                    Ok((latencies, statuses))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a client panicked")))).collect()
    });
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    for result in results {
        let (l, s) = result?;
        latencies.extend(l);
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    latencies.sort();
    Ok(Phase { latencies, elapsed })
}

/// Posts `forged` until `stop`, counting answers; a closed connection is opened
/// again (a forger that reconnects pays for each new connection).
fn flood_until(url: &str, forged: &[u8], stop: &AtomicBool, statuses: &Mutex<Statuses>) {
    let agent = load_agent();
    let mut local = Statuses::new();
    while !stop.load(Ordering::Relaxed) {
        let status = match agent.post(url).header("Content-Type", "application/json").send(forged) {
            Ok(mut response) => {
                let _ = response.body_mut().read_to_vec();
                response.status().as_u16()
            }
            Err(_) => 0,
        };
        *local.entry(status).or_default() += 1;
    }
    let mut all = statuses.lock().unwrap_or_else(|e| e.into_inner());
    for (k, v) in local {
        *all.entry(k).or_default() += v;
    }
}
