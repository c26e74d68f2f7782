//! `fundtrail-bench ways`: what a chain costs nats-server, by the way it goes out
//! and by its length, under each sync setting. No deciding, no projections: the
//! JetStream log alone appends the same signed donations as chains of a given
//! length, one chain at a time as the sequencer sends them, each on a fresh
//! scratch nats-server. A line fitted through the lengths splits each way's time a
//! chain into a fixed part and a part a message (`docs/performance.md`,
//! eighteenth session): the model behind the writer's choice of way
//! (`fundtrail-store`, `chain_ways.rs`) and behind the `sync_interval: always`
//! figure of `bench ingest`.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use fundtrail_store::{AppendRequest, ChainWay, EventLog, JetStreamLog, StreamSettings};

use crate::cpu::CpuTimes;
use crate::SyncMode;

/// Most messages appended in one measurement.
pub const WAYS_MESSAGES_MAX: usize = 100_000;

/// What is measured, in the order it is run and printed: each sync setting, each way.
const GROUPS: [(SyncMode, ChainWay); 4] = [
    (SyncMode::Default, ChainWay::Publishes),
    (SyncMode::Default, ChainWay::Batch),
    (SyncMode::Always, ChainWay::Publishes),
    (SyncMode::Always, ChainWay::Batch),
];

/// One way, one sync setting, one chain length.
struct Measured {
    sync: SyncMode,
    way: ChainWay,
    length: usize,
    chains: usize,
    seconds: f64,
    /// nats-server's CPU seconds over the run.
    nats_cpu: f64,
}

impl Measured {
    fn messages_per_s(&self) -> f64 {
        (self.chains * self.length) as f64 / self.seconds
    }

    fn ms_per_chain(&self) -> f64 {
        self.seconds * 1e3 / self.chains as f64
    }

    fn nats_cpu_ms_per_chain(&self) -> f64 {
        self.nats_cpu * 1e3 / self.chains as f64
    }
}

/// Appends `messages` signed donations as chains of each of `lengths`, each way and
/// sync setting on its own scratch nats-server, and prints the figures.
pub fn ways(messages: usize, lengths: &[usize], json: bool) -> Result<()> {
    if messages == 0 || messages > WAYS_MESSAGES_MAX {
        bail!("--messages must be between 1 and {WAYS_MESSAGES_MAX}");
    }
    if lengths.is_empty() || lengths.iter().any(|&l| l == 0 || l > fundtrail_store::BATCH_MESSAGES_MAX) {
        bail!("--lengths: each between 1 and {} (the log's batch cap)", fundtrail_store::BATCH_MESSAGES_MAX);
    }
    let work = crate::workload(messages, 3)?;
    let key = work.intake.verifying_key();
    let requests: Vec<AppendRequest> = work
        .donations
        .iter()
        .map(|envelope| {
            let opened = fundtrail_envelope::open(envelope, |_| Some(key))?;
            Ok(AppendRequest {
                subject: opened.event.subject(),
                msg_id: opened.event.id.to_string(),
                payload: envelope.clone(),
                expect: None,
            })
        })
        .collect::<Result<_>>()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut measured = Vec::new();
    for (sync, way) in GROUPS {
        for &length in lengths {
            measured.push(runtime.block_on(measure(sync, way, length, &requests))?);
        }
    }
    report(&measured, json);
    Ok(())
}

/// Appends `requests` as chains of `length`, one after the other, on a fresh
/// scratch nats-server; every chain must land right after the one before.
async fn measure(sync: SyncMode, way: ChainWay, length: usize, requests: &[AppendRequest]) -> Result<Measured> {
    let server =
        fundtrail_testkit::NatsServer::start_with(sync.server_sync()).context("starting a scratch nats-server")?;
    let settings = StreamSettings { chains: way, ..StreamSettings::default() };
    let log = JetStreamLog::connect(&server.url(), settings).await.context("opening the log")?;
    let chains = requests.len() / length;
    let cpu_before = CpuTimes::now(std::process::id(), server.pid());
    let started = Instant::now();
    let mut after = 0u64;
    for chain in requests.chunks_exact(length) {
        let appended = log.append_chain(chain.to_vec(), after).await.context("appending a chain")?;
        let expected = (after + 1..=after + length as u64).collect::<Vec<_>>();
        let landed: Vec<u64> = appended.iter().map(|a| a.seq).collect();
        if landed != expected || appended.iter().any(|a| a.duplicate) {
            bail!("a chain after {after} landed at {landed:?}: nothing else writes to this stream");
        }
        after += length as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuTimes::now(std::process::id(), server.pid()).since(&cpu_before);
    Ok(Measured { sync, way, length, chains, seconds, nats_cpu: cpu.nats_user + cpu.nats_kernel })
}

/// Least squares through (length, ms a chain): the fixed ms a chain and the µs a message.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / sxx;
    Some((my - slope * mx, slope * 1e3))
}

fn sync_name(sync: SyncMode) -> &'static str {
    match sync {
        SyncMode::Default => "default sync",
        SyncMode::Always => "sync_interval: always",
    }
}

fn way_name(way: ChainWay) -> &'static str {
    match way {
        ChainWay::Publishes => "publishes",
        ChainWay::Batch => "atomic batch",
        ChainWay::Measured => "measured",
    }
}

fn report(measured: &[Measured], json: bool) {
    let fitted = |sync: SyncMode, way: ChainWay| {
        let points: Vec<(f64, f64)> = measured
            .iter()
            .filter(|m| m.sync == sync && m.way == way)
            .map(|m| (m.length as f64, m.ms_per_chain()))
            .collect();
        fit(&points)
    };
    if json {
        let runs: Vec<serde_json::Value> = measured
            .iter()
            .map(|m| {
                serde_json::json!({
                    "sync": sync_name(m.sync), "way": way_name(m.way), "length": m.length,
                    "chains": m.chains, "messages_per_s": m.messages_per_s(),
                    "ms_per_chain": m.ms_per_chain(), "nats_cpu_ms_per_chain": m.nats_cpu_ms_per_chain(),
                })
            })
            .collect();
        let fits: Vec<serde_json::Value> = GROUPS
            .iter()
            .map(|&(sync, way)| {
                let fit = fitted(sync, way);
                serde_json::json!({
                    "sync": sync_name(sync), "way": way_name(way),
                    "fixed_ms_per_chain": fit.map(|f| f.0), "us_per_message": fit.map(|f| f.1),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "runs": runs, "fits": fits }));
        return;
    }
    println!("chains appended one at a time by the JetStream log alone, each set on a fresh scratch nats-server");
    for (sync, way) in GROUPS {
        println!("{}, {}:", sync_name(sync), way_name(way));
        for m in measured.iter().filter(|m| m.sync == sync && m.way == way) {
            println!(
                "  length {:>4}: {:>7.0} messages/s, {:>6.2} ms a chain, nats-server CPU {:>5.2} ms a chain",
                m.length,
                m.messages_per_s(),
                m.ms_per_chain(),
                m.nats_cpu_ms_per_chain()
            );
        }
        if let Some((fixed_ms, us_per_message)) = fitted(sync, way) {
            println!("  fitted:      {fixed_ms:.2} ms a chain + {us_per_message:.1} µs a message");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn a_fitted_line_splits_a_fixed_part_from_a_part_a_message() {
        // 2.8 ms a chain + 17 µs a message, exactly.
        let points: Vec<(f64, f64)> = [10.0, 50.0, 250.0, 1000.0].iter().map(|&x| (x, 2.8 + 0.017 * x)).collect();
        let (fixed, per_message) = fit(&points).expect("a line");
        assert!((fixed - 2.8).abs() < 1e-9, "{fixed}");
        assert!((per_message - 17.0).abs() < 1e-9, "{per_message}");
        assert_eq!(fit(&[(10.0, 1.0)]), None, "one point fits no line");
        assert_eq!(fit(&[(10.0, 1.0), (10.0, 2.0)]), None, "one length fits no line");
    }
}
