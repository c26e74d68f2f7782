//! Prometheus metrics in the text exposition format (version 0.0.4), kept by hand:
//! a few counters and one histogram do not need a metrics framework.
//!
//! - `fundtrail_http_requests_total{method,route,status}`
//! - `fundtrail_submit_seconds` (histogram of `POST /v1/events`, decided and applied)
//! - `fundtrail_events_total{outcome="accepted"|"duplicate"|"refused",code}`
//! - `fundtrail_projection_applied_seq`, `fundtrail_log_last_seq`,
//!   `fundtrail_ledger_entries`, `fundtrail_ledger_checkpoint_size`,
//!   `fundtrail_http_streams_open`, `fundtrail_http_submissions_in_progress`,
//!   `fundtrail_http_failure_budgets_{connections,addresses}`
//! - `fundtrail_writer_races_lost_total`, `fundtrail_writer_chains_broken_total`: races
//!   the sequencer lost to other writers (replicas), by whether a prefix of a chain landed
//! - `fundtrail_writer_follow_pauses_total`: times the sequencer stopped following the
//!   log while it wrote back to back as the only writer
//! - `fundtrail_http_shed_total{limit="submissions"|"auth-failures"}`: requests
//!   refused by a limit of [`crate::limits`] before any work
//! - with witnesses: `fundtrail_ledger_signed_size` (the newest signed checkpoint,
//!   cosigned or not), `fundtrail_witness_quorum`, `fundtrail_witness_rounds_total{outcome}`,
//!   and per witness (label `witness`, its key name):
//!   `fundtrail_witness_requests_total`, `fundtrail_witness_cosigned_total`,
//!   `fundtrail_witness_failures_total{reason}`, `fundtrail_witness_busy_total`,
//!   `fundtrail_witness_latency_seconds_sum`/`_count` (cosigned answers),
//!   `fundtrail_witness_last_latency_seconds`, `fundtrail_witness_cosigned_size`

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use fundtrail_service::{CosignStatus, SubmitError, Submitted};

use crate::{AppState, Problem};

/// Upper bounds of the submit latency buckets, in seconds.
pub const SUBMIT_BUCKETS_SECS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Distinct label sets kept per counter: beyond it new ones are folded into "other"
/// (routes are templates and codes a closed set, so this only guards against bugs).
pub const LABEL_SETS_MAX: usize = 1_024;

/// The process's counters.
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    events: Mutex<BTreeMap<(&'static str, String), u64>>,
    buckets: [AtomicU64; SUBMIT_BUCKETS_SECS.len()],
    submit_count: AtomicU64,
    submit_sum_micros: AtomicU64,
    shed_submissions: AtomicU64,
    shed_auth_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            events: Mutex::new(BTreeMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            submit_count: AtomicU64::new(0),
            submit_sum_micros: AtomicU64::new(0),
            shed_submissions: AtomicU64::new(0),
            shed_auth_failures: AtomicU64::new(0),
        }
    }

    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().expect("metrics lock");
        let mut k = (method.to_owned(), route.to_owned(), status);
        if map.len() >= LABEL_SETS_MAX && !map.contains_key(&k) {
            k = ("other".into(), "other".into(), status);
        }
        *map.entry(k).or_insert(0) += 1;
    }

    /// Counts a request refused by a limit (`"submissions"` or `"auth-failures"`).
    pub fn count_shed(&self, limit: &'static str) {
        let counter = match limit {
            "submissions" => &self.shed_submissions,
            "auth-failures" => &self.shed_auth_failures,
            other => unreachable!("no limit named {other}"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one submission's latency and outcome.
    pub fn observe_submit(&self, took: Duration, result: &Result<Submitted, SubmitError>) {
        let secs = took.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(SUBMIT_BUCKETS_SECS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.submit_count.fetch_add(1, Ordering::Relaxed);
        self.submit_sum_micros.fetch_add(took.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
        let (outcome, code) = match result {
            Ok(s) if s.accepted.duplicate => ("duplicate", s.accepted.type_name.to_owned()),
            Ok(s) => ("accepted", s.accepted.type_name.to_owned()),
            Err(e) => ("refused", Problem::from_submit(e).code),
        };
        let mut map = self.events.lock().expect("metrics lock");
        let mut k = (outcome, code);
        if map.len() >= LABEL_SETS_MAX && !map.contains_key(&k) {
            k = (outcome, "other".into());
        }
        *map.entry(k).or_insert(0) += 1;
    }

    /// The exposition text, with the gauges given.
    pub fn text(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP fundtrail_http_requests_total HTTP requests answered, by route template and status.\n");
        out.push_str("# TYPE fundtrail_http_requests_total counter\n");
        for ((method, route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "fundtrail_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP fundtrail_events_total Submitted events by outcome; code is the event type or the refusal code.\n",
        );
        out.push_str("# TYPE fundtrail_events_total counter\n");
        for ((outcome, code), n) in self.events.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "fundtrail_events_total{{outcome=\"{outcome}\",code=\"{}\"}} {n}", escape(code));
        }
        out.push_str("# HELP fundtrail_submit_seconds Time to decide, append and apply a submitted event.\n");
        out.push_str("# TYPE fundtrail_submit_seconds histogram\n");
        for (bucket, bound) in self.buckets.iter().zip(SUBMIT_BUCKETS_SECS) {
            let _ =
                writeln!(out, "fundtrail_submit_seconds_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.submit_count.load(Ordering::Relaxed);
        let sum = self.submit_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "fundtrail_submit_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "fundtrail_submit_seconds_sum {sum}");
        let _ = writeln!(out, "fundtrail_submit_seconds_count {count}");
        out.push_str("# HELP fundtrail_http_shed_total Requests refused by a limit before any work.\n");
        out.push_str("# TYPE fundtrail_http_shed_total counter\n");
        for (limit, counter) in [("auth-failures", &self.shed_auth_failures), ("submissions", &self.shed_submissions)] {
            let _ = writeln!(out, "fundtrail_http_shed_total{{limit=\"{limit}\"}} {}", counter.load(Ordering::Relaxed));
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}

/// The witnesses' lines (see the module docs).
pub fn witness_text(status: &CosignStatus, signed_size: u64) -> String {
    let mut out = String::new();
    let help = [
        ("fundtrail_ledger_signed_size", "gauge", "Tree size of the newest signed checkpoint, cosigned or not."),
        ("fundtrail_witness_quorum", "gauge", "Cosignatures a checkpoint needs before it is served."),
        ("fundtrail_witness_rounds_total", "counter", "Rounds of cosigning the newest checkpoint, by outcome."),
    ];
    for (name, kind, text) in help {
        let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
    }
    let _ = writeln!(out, "fundtrail_ledger_signed_size {signed_size}");
    let _ = writeln!(out, "fundtrail_witness_quorum {}", status.quorum);
    let _ = writeln!(out, "fundtrail_witness_rounds_total{{outcome=\"quorum\"}} {}", status.rounds_cosigned);
    let _ = writeln!(out, "fundtrail_witness_rounds_total{{outcome=\"no_quorum\"}} {}", status.rounds_without_quorum);
    type Value = fn(&fundtrail_service::WitnessStats) -> String;
    let families: [(&str, &str, &str, Value); 7] = [
        ("fundtrail_witness_requests_total", "counter", "HTTP requests sent to the witness.", |w| {
            w.requests.to_string()
        }),
        ("fundtrail_witness_cosigned_total", "counter", "Checkpoints the witness cosigned (verified).", |w| {
            w.cosigned.to_string()
        }),
        ("fundtrail_witness_busy_total", "counter", "Rounds the witness was skipped, still busy.", |w| {
            w.busy.to_string()
        }),
        ("fundtrail_witness_latency_seconds_sum", "counter", "Total latency of cosigned answers.", |w| {
            (w.latency_ms_sum as f64 / 1e3).to_string()
        }),
        ("fundtrail_witness_latency_seconds_count", "counter", "Cosigned answers timed.", |w| {
            w.latency_count.to_string()
        }),
        ("fundtrail_witness_last_latency_seconds", "gauge", "Latency of the witness's last answer.", |w| {
            (w.last_latency_ms as f64 / 1e3).to_string()
        }),
        ("fundtrail_witness_cosigned_size", "gauge", "The size the witness last cosigned, as the log knows.", |w| {
            w.size.to_string()
        }),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for w in &status.witnesses {
            let _ = writeln!(out, "{name}{{witness=\"{}\"}} {}", escape(&w.name), value(w));
        }
    }
    let name = "fundtrail_witness_failures_total";
    let _ =
        writeln!(out, "# HELP {name} Rounds the witness gave no valid cosignature, by reason.\n# TYPE {name} counter");
    for w in &status.witnesses {
        for (reason, n) in &w.failures {
            let _ = writeln!(out, "{name}{{witness=\"{}\",reason=\"{}\"}} {n}", escape(&w.name), escape(reason));
        }
    }
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics`.
pub(crate) async fn render(State(app): State<AppState>) -> impl IntoResponse {
    let service = app.service();
    let applied = service.read.applied();
    let last = service.known_last_seq();
    let checkpoint_size = app.latest_checkpoint().map_or(0, |(_, c)| c.size);
    let shed = &app.inner.shed;
    let streams_open = (shed.limits.streams_max - app.inner.streams.available_permits()) as u64;
    let submissions = (shed.limits.submissions_max - shed.submissions.available_permits()) as u64;
    let mut gauges = vec![
        ("fundtrail_projection_applied_seq", "Last log sequence every projection applied.", applied),
        ("fundtrail_ledger_entries", "Entries in the public ledger (one per applied message).", applied),
        (
            "fundtrail_ledger_checkpoint_size",
            "Tree size of the served checkpoint (with witnesses: cosigned).",
            checkpoint_size,
        ),
        ("fundtrail_http_streams_open", "Live feeds open now.", streams_open),
        ("fundtrail_http_submissions_in_progress", "Submissions being verified and decided now.", submissions),
        (
            "fundtrail_http_failure_budgets_connections",
            "Open connections remembered for a failed authentication or a verified envelope.",
            shed.budgets.remembered().0 as u64,
        ),
        (
            "fundtrail_http_failure_budgets_addresses",
            "Client addresses remembered for a recent failed authentication.",
            shed.budgets.remembered().1 as u64,
        ),
    ];
    if let Some(last) = last {
        gauges.push(("fundtrail_log_last_seq", "Sequence of the last message in the event log.", last));
    }
    let mut text = app.metrics().text(&gauges);
    let races = service.writer.races();
    for (name, help, value) in [
        (
            "fundtrail_writer_races_lost_total",
            "Batches that landed nothing: the history they expected had moved on (another writer); decided again.",
            races.lost,
        ),
        (
            "fundtrail_writer_chains_broken_total",
            "Chains that landed a prefix and stopped at another writer's message; the rest decided again.",
            races.chains_broken,
        ),
        (
            "fundtrail_writer_follow_pauses_total",
            "Times the sequencer stopped following the log while it wrote back to back as the only writer.",
            service.writer.follow_pauses(),
        ),
    ] {
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
    }
    if let Some(status) = service.read.cosign_status() {
        let signed = service.read.signed_checkpoint().and_then(|n| app.checked(&n)).map_or(0, |c| c.size);
        text.push_str(&witness_text(&status, signed));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
