//! What the process knows about its event log, so that `/readyz` and
//! `/metrics` answer at once from memory, never waiting on the network.
//!
//! A probe task asks the log for its last sequence every [`PROBE_INTERVAL`]
//! (each ask bounded by [`PROBE_TIMEOUT`]) and publishes the answer; readiness
//! is then: the log was reached by the last probe, and the projections have
//! applied at least the sequence it reported.

use std::sync::Arc;
use std::time::Duration;

use fundtrail_store::EventLog;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the log is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may take before the log counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last probe's outcome.
#[derive(Clone, Debug)]
pub enum LogReach {
    /// No probe has answered yet.
    Unknown,
    /// The log answered; its last sequence then.
    Reached { last_seq: u64 },
    /// The last probes failed, since `since`.
    Unreachable { cause: String, since: Instant },
}

/// Whether this process should receive traffic, from what it knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The log has not been probed yet.
    Starting,
    /// The projections are behind the log's last sequence.
    CatchingUp {
        applied: u64,
        last_seq: u64,
    },
    /// The log did not answer the last probe(s).
    LogUnreachable {
        cause: String,
        for_secs: u64,
    },
}

/// Starts the probe; it stops when `shutdown` turns true.
pub(crate) fn spawn_probe(log: Arc<dyn EventLog>, mut shutdown: watch::Receiver<bool>) -> watch::Receiver<LogReach> {
    let (tx, rx) = watch::channel(LogReach::Unknown);
    tokio::spawn(async move {
        loop {
            let reach = match tokio::time::timeout(PROBE_TIMEOUT, log.last_seq()).await {
                Ok(Ok(last_seq)) => LogReach::Reached { last_seq },
                Ok(Err(e)) => unreachable(&tx, e.to_string()),
                Err(_) => unreachable(&tx, format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            tx.send_replace(reach);
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
    rx
}

/// Unreachable since the first failure in a row.
fn unreachable(tx: &watch::Sender<LogReach>, cause: String) -> LogReach {
    let since = match &*tx.borrow() {
        LogReach::Unreachable { since, .. } => *since,
        _ => Instant::now(),
    };
    LogReach::Unreachable { cause, since }
}

/// Readiness from the last probe and the projections' position.
pub fn readiness(reach: &LogReach, applied: u64) -> Readiness {
    match reach {
        LogReach::Unknown => Readiness::Starting,
        LogReach::Unreachable { cause, since } => {
            Readiness::LogUnreachable { cause: cause.clone(), for_secs: since.elapsed().as_secs() }
        }
        LogReach::Reached { last_seq } if applied >= *last_seq => Readiness::Ready,
        LogReach::Reached { last_seq } => Readiness::CatchingUp { applied, last_seq: *last_seq },
    }
}
