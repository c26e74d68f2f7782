//! The log's side of C2SP tlog-witness: gather cosignatures for a new checkpoint.
//!
//! [`WitnessPool::request_cosignatures`] sends the signed checkpoint to every witness at
//! once, each with a consistency proof from the size that witness last cosigned (as
//! far as this pool knows: 0 at first). A 409 names the witness's size: the pool proves
//! again from there ([`CONFLICTS_MAX`] times at most). Network failures, timeouts and 5xx
//! answers are retried ([`WitnessClientConfig::attempts_max`], with a doubling pause).
//! Every cosignature is verified over this checkpoint with the witness's key before it
//! counts; valid ones are attached to the note as signature lines.
//!
//! It returns when every witness has answered, or as soon as the quorum is met and
//! [`WitnessClientConfig::straggler_grace_ms`] has passed: a witness still working
//! then is reported [`WitnessOutcome::Pending`], and its request goes on in the
//! background (its answer updates the size the pool knows). A witness whose previous
//! request is still running is not sent another ([`WitnessOutcome::Busy`]): the next
//! checkpoint brings it up to date in one consistency step.
//!
//! HTTP is blocking `ureq` on tokio's blocking threads, one per witness request, each
//! bounded by the request timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundtrail_ledger::{
    attach_cosignature, verify_witness_answer, Checkpoint, CosignatureError, Hash, SignatureLine, TreeError,
    WitnessVerifier,
};
use futures::stream::{FuturesUnordered, StreamExt};
use thiserror::Error;

use crate::protocol::{format_request, parse_size_body, SizeBodyError, PROOF_LINES_MAX};

/// Most 409 answers followed by a new proof, per witness and checkpoint.
pub const CONFLICTS_MAX: u32 = 2;
/// Largest witness answer read, in bytes.
pub const ANSWER_BYTES_MAX: u64 = 16 * 1024;
/// Most witnesses in one pool.
pub const WITNESSES_MAX: usize = 64;

/// Timeouts and retries of a [`WitnessPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessClientConfig {
    /// One HTTP exchange, connecting included.
    pub request_timeout_ms: u64,
    /// Tries per witness and checkpoint on a network failure, timeout or 5xx (≥ 1).
    pub attempts_max: u32,
    /// Pause before the first retry; doubled before each next one.
    pub retry_pause_ms: u64,
    /// Once the quorum is met, how long to wait for the other witnesses.
    pub straggler_grace_ms: u64,
}

impl Default for WitnessClientConfig {
    fn default() -> Self {
        WitnessClientConfig { request_timeout_ms: 2_000, attempts_max: 3, retry_pause_ms: 50, straggler_grace_ms: 100 }
    }
}

/// A witness as the log knows it: its submission prefix and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessEndpoint {
    /// The submission prefix (`http://host:port`, no trailing slash needed).
    pub url: String,
    pub verifier: WitnessVerifier,
}

/// Why a `URL=VKEY` witness argument was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EndpointError {
    #[error("witness {text:?}: expected URL=VKEY")]
    NoEquals { text: String },
    #[error("witness {url:?}: not an http:// or https:// URL")]
    BadUrl { url: String },
    #[error("witness {url}: {source}")]
    Key {
        url: String,
        #[source]
        source: fundtrail_ledger::KeyError,
    },
    #[error("{count} witnesses exceeds the maximum of {WITNESSES_MAX}")]
    TooMany { count: usize },
    #[error("witness {name} is listed twice")]
    Duplicate { name: String },
}

impl WitnessEndpoint {
    /// Parses `URL=VKEY` (the URL is up to the first `=`).
    pub fn parse(text: &str) -> Result<WitnessEndpoint, EndpointError> {
        let (url, vkey) = text.split_once('=').ok_or_else(|| EndpointError::NoEquals { text: text.into() })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(EndpointError::BadUrl { url: url.into() });
        }
        let verifier =
            WitnessVerifier::from_vkey(vkey).map_err(|source| EndpointError::Key { url: url.into(), source })?;
        Ok(WitnessEndpoint { url: url.trim_end_matches('/').to_string(), verifier })
    }
}

/// Consistency proofs for the witnesses: PROOF(old_size, D\[0:new_size\]) of RFC 9162
/// §2.1.4.1. Any `Fn(u64, u64) -> Result<Vec<Hash>, TreeError>` is one, e.g.
/// `move |old, new| fundtrail_ledger::prove_consistency(old, new, &reader)`.
pub trait ConsistencyProver: Send + Sync {
    fn prove_consistency(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, TreeError>;
}

impl<F> ConsistencyProver for F
where
    F: Fn(u64, u64) -> Result<Vec<Hash>, TreeError> + Send + Sync,
{
    fn prove_consistency(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, TreeError> {
        self(old_size, new_size)
    }
}

/// Why one witness gave no valid cosignature.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WitnessError {
    #[error("no answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("unreachable: {detail}")]
    Unreachable { detail: String },
    #[error("answered {status}: {detail}")]
    Refused { status: u16, detail: String },
    #[error("{0}")]
    BadConflict(SizeBodyError),
    #[error("still in conflict after {CONFLICTS_MAX} new proofs (witness at size {witness_size})")]
    TooManyConflicts { witness_size: u64 },
    #[error(
        "has cosigned size {witness_size}, larger than this checkpoint's {size}: the log is behind it (rolled back?)"
    )]
    WitnessAhead { witness_size: u64, size: u64 },
    #[error("bad answer: {0}")]
    BadAnswer(CosignatureError),
    #[error("cannot prove size {old_size} → {new_size}: {source}")]
    Proof {
        old_size: u64,
        new_size: u64,
        #[source]
        source: TreeError,
    },
    #[error("the request task failed: {detail}")]
    Task { detail: String },
}

/// What became of one witness for one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessOutcome {
    /// A cosignature that verified, attached to the note.
    Cosigned {
        line: SignatureLine,
        timestamp: u64,
    },
    Failed(WitnessError),
    /// Its previous request was still running; not asked this time.
    Busy,
    /// Still working when the quorum was met and the grace period over.
    Pending,
}

/// One witness's part in a [`WitnessPool::request_cosignatures`] call, for logs and
/// metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessReport {
    /// The witness's key name.
    pub name: String,
    pub url: String,
    pub outcome: WitnessOutcome,
    /// HTTP requests sent (0 when busy).
    pub attempts: u32,
    /// From the call's start to this witness's last answer (or to the return).
    pub latency_ms: u64,
    /// The size this witness last cosigned, as far as the pool knows now.
    pub witness_size: u64,
}

/// A checkpoint that reached the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The log's note with every valid cosignature attached.
    pub note: Vec<u8>,
    pub checkpoint: Checkpoint,
    pub cosignatures: usize,
    pub witnesses: Vec<WitnessReport>,
}

/// Why no quorum of cosignatures was gathered.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CosignError {
    #[error("the log's note is not a checkpoint: {detail}")]
    NotACheckpoint { detail: String },
    #[error("quorum {quorum} exceeds the {witnesses} witnesses configured")]
    QuorumTooLarge { quorum: usize, witnesses: usize },
    #[error("no witness quorum for size {}: {} of {quorum} cosignatures; {}", .checkpoint.size, .partial.cosignatures, describe(&.partial.witnesses))]
    NoQuorum { quorum: usize, checkpoint: Checkpoint, partial: Box<Cosigned> },
}

fn describe(reports: &[WitnessReport]) -> String {
    let each: Vec<String> = reports
        .iter()
        .map(|r| match &r.outcome {
            WitnessOutcome::Cosigned { .. } => format!("{} cosigned", r.name),
            WitnessOutcome::Failed(e) => format!("{} ({}) {e}", r.name, r.url),
            WitnessOutcome::Busy => format!("{} busy with an earlier checkpoint", r.name),
            WitnessOutcome::Pending => format!("{} pending", r.name),
        })
        .collect();
    each.join("; ")
}

/// What one witness did, counted by the pool since it was made, including requests
/// that finished after their call returned (for metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitnessStats {
    /// The witness's key name.
    pub name: String,
    pub url: String,
    /// HTTP requests sent.
    pub requests: u64,
    /// Checkpoints it cosigned (verified cosignatures).
    pub cosigned: u64,
    /// Checkpoints it gave no valid cosignature for, by reason ([`failure_reason`]).
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Checkpoints it was not sent: its previous request was still running.
    pub busy: u64,
    /// Sum and count of the latency of its cosigned answers, in milliseconds.
    pub latency_ms_sum: u64,
    pub latency_count: u64,
    /// The latency of its last answer (cosigned or not), in milliseconds.
    pub last_latency_ms: u64,
    /// The size it last cosigned, as far as the pool knows.
    pub size: u64,
}

/// A short, stable label for why a witness gave no cosignature.
pub fn failure_reason(error: &WitnessError) -> String {
    match error {
        WitnessError::Timeout { .. } => "timeout".into(),
        WitnessError::Unreachable { .. } => "unreachable".into(),
        WitnessError::Refused { status, .. } => format!("http_{status}"),
        WitnessError::BadConflict(_) => "bad_conflict".into(),
        WitnessError::TooManyConflicts { .. } => "conflicts".into(),
        WitnessError::WitnessAhead { .. } => "witness_ahead".into(),
        WitnessError::BadAnswer(_) => "bad_answer".into(),
        WitnessError::Proof { .. } => "proof".into(),
        WitnessError::Task { .. } => "task".into(),
    }
}

impl WitnessStats {
    fn count(&mut self, outcome: &WitnessOutcome, attempts: u32, latency_ms: u64) {
        self.requests += u64::from(attempts);
        match outcome {
            WitnessOutcome::Cosigned { .. } => {
                self.cosigned += 1;
                self.latency_ms_sum += latency_ms;
                self.latency_count += 1;
                self.last_latency_ms = latency_ms;
            }
            WitnessOutcome::Failed(error) => {
                *self.failures.entry(failure_reason(error)).or_insert(0) += 1;
                self.last_latency_ms = latency_ms;
            }
            WitnessOutcome::Busy => self.busy += 1,
            WitnessOutcome::Pending => {}
        }
    }
}

struct Slot {
    endpoint: WitnessEndpoint,
    /// Counted as requests finish, awaited or not.
    stats: Mutex<WitnessStats>,
    /// The size this witness last cosigned, as far as we know (0: unknown).
    known_size: Mutex<u64>,
    /// Held while a request to this witness runs.
    busy: Arc<tokio::sync::Mutex<()>>,
}

/// The witnesses of one log, with what the log knows of each.
pub struct WitnessPool {
    slots: Vec<Arc<Slot>>,
    agent: ureq::Agent,
    config: WitnessClientConfig,
}

impl WitnessPool {
    pub fn new(endpoints: Vec<WitnessEndpoint>, config: WitnessClientConfig) -> Result<WitnessPool, EndpointError> {
        if endpoints.len() > WITNESSES_MAX {
            return Err(EndpointError::TooMany { count: endpoints.len() });
        }
        for (i, e) in endpoints.iter().enumerate() {
            if endpoints[..i].iter().any(|o| o.verifier == e.verifier) {
                return Err(EndpointError::Duplicate { name: e.verifier.name().to_string() });
            }
        }
        assert!(config.attempts_max >= 1, "attempts_max must be at least 1");
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.request_timeout_ms)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let slots = endpoints
            .into_iter()
            .map(|endpoint| {
                let stats = WitnessStats {
                    name: endpoint.verifier.name().to_string(),
                    url: endpoint.url.clone(),
                    ..WitnessStats::default()
                };
                Arc::new(Slot {
                    endpoint,
                    stats: Mutex::new(stats),
                    known_size: Mutex::new(0),
                    busy: Arc::new(tokio::sync::Mutex::new(())),
                })
            })
            .collect();
        Ok(WitnessPool { slots, agent, config })
    }

    pub fn endpoints(&self) -> Vec<WitnessEndpoint> {
        self.slots.iter().map(|s| s.endpoint.clone()).collect()
    }

    /// Each witness's counters, in the pool's order.
    pub fn stats(&self) -> Vec<WitnessStats> {
        self.slots
            .iter()
            .map(|s| {
                let mut stats = s.stats.lock().expect("lock").clone();
                stats.size = *s.known_size.lock().expect("lock");
                stats
            })
            .collect()
    }

    /// The size each witness last cosigned, as far as this pool knows (for metrics).
    pub fn known_sizes(&self) -> Vec<(String, u64)> {
        self.slots
            .iter()
            .map(|s| (s.endpoint.verifier.name().to_string(), *s.known_size.lock().expect("lock")))
            .collect()
    }

    /// Sends `note` (the log's signed checkpoint) to every witness, with consistency
    /// proofs from `prover`, and returns it with the valid cosignatures attached if at
    /// least `quorum` witnesses cosigned. See the module docs for timing and retries.
    pub async fn request_cosignatures(
        &self,
        quorum: usize,
        note: &[u8],
        prover: Arc<dyn ConsistencyProver>,
    ) -> Result<Cosigned, CosignError> {
        if quorum > self.slots.len() {
            return Err(CosignError::QuorumTooLarge { quorum, witnesses: self.slots.len() });
        }
        let checkpoint = checkpoint_of(note)?;
        let start = Instant::now();
        let note: Arc<[u8]> = note.into();
        let mut reports: Vec<Option<WitnessReport>> = vec![None; self.slots.len()];
        let mut running = FuturesUnordered::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let Ok(guard) = slot.busy.clone().try_lock_owned() else {
                slot.stats.lock().expect("lock").count(&WitnessOutcome::Busy, 0, 0);
                reports[i] = Some(report(slot, WitnessOutcome::Busy, 0, start));
                continue;
            };
            let job = Job {
                slot: slot.clone(),
                agent: self.agent.clone(),
                config: self.config,
                checkpoint: checkpoint.clone(),
                note: note.clone(),
                prover: prover.clone(),
            };
            let task = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let (outcome, attempts) = job.run();
                let latency_ms = start.elapsed().as_millis() as u64;
                job.slot.stats.lock().expect("lock").count(&outcome, attempts, latency_ms);
                (outcome, attempts)
            });
            running.push(async move { (i, task.await) });
        }
        let mut cosigned = 0;
        let mut deadline: Option<tokio::time::Instant> = None;
        while !running.is_empty() {
            let next = match deadline {
                Some(at) => match tokio::time::timeout_at(at, running.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => running.next().await,
            };
            let Some((i, joined)) = next else { break };
            let (outcome, attempts) =
                joined.unwrap_or_else(|e| (WitnessOutcome::Failed(WitnessError::Task { detail: e.to_string() }), 0));
            if matches!(outcome, WitnessOutcome::Cosigned { .. }) {
                cosigned += 1;
            }
            reports[i] = Some(report(&self.slots[i], outcome, attempts, start));
            if cosigned >= quorum && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + Duration::from_millis(self.config.straggler_grace_ms));
            }
        }
        // Whatever still runs goes on in the background; its answer updates known_size.
        let reports: Vec<WitnessReport> = reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|| report(&self.slots[i], WitnessOutcome::Pending, 0, start)))
            .collect();
        let note = attach_all(&note, &reports, &self.slots);
        let outcome = Cosigned { note, checkpoint: checkpoint.clone(), cosignatures: cosigned, witnesses: reports };
        if cosigned < quorum {
            return Err(CosignError::NoQuorum { quorum, checkpoint, partial: Box::new(outcome) });
        }
        Ok(outcome)
    }
}

/// The same as [`WitnessPool::request_cosignatures`], as a free function.
pub async fn request_cosignatures(
    witnesses: &WitnessPool,
    quorum: usize,
    signed_checkpoint_note: &[u8],
    prover: Arc<dyn ConsistencyProver>,
) -> Result<Cosigned, CosignError> {
    witnesses.request_cosignatures(quorum, signed_checkpoint_note, prover).await
}

fn report(slot: &Slot, outcome: WitnessOutcome, attempts: u32, start: Instant) -> WitnessReport {
    WitnessReport {
        name: slot.endpoint.verifier.name().to_string(),
        url: slot.endpoint.url.clone(),
        outcome,
        attempts,
        latency_ms: start.elapsed().as_millis() as u64,
        witness_size: *slot.known_size.lock().expect("lock"),
    }
}

fn attach_all(note: &[u8], reports: &[WitnessReport], slots: &[Arc<Slot>]) -> Vec<u8> {
    let mut note = note.to_vec();
    for (report, slot) in reports.iter().zip(slots) {
        if let WitnessOutcome::Cosigned { line, .. } = &report.outcome {
            // Verified over this checkpoint already; attaching checks it once more.
            note = attach_cosignature(&note, line, &slot.endpoint.verifier).expect("a verified cosignature attaches");
        }
    }
    note
}

/// The checkpoint in the log's note (its text up to the blank line).
fn checkpoint_of(note: &[u8]) -> Result<Checkpoint, CosignError> {
    let bad = |detail: String| CosignError::NotACheckpoint { detail };
    let text = std::str::from_utf8(note).map_err(|_| bad("not UTF-8".into()))?;
    let end = text.find("\n\n").ok_or_else(|| bad("no signature lines".into()))?;
    Checkpoint::parse_body(&text[..=end]).map_err(|e| bad(e.to_string()))
}

/// One witness, one checkpoint: runs on a blocking thread.
struct Job {
    slot: Arc<Slot>,
    agent: ureq::Agent,
    config: WitnessClientConfig,
    checkpoint: Checkpoint,
    note: Arc<[u8]>,
    prover: Arc<dyn ConsistencyProver>,
}

enum Answer {
    Cosigned(SignatureLine, u64),
    Conflict(u64),
}

impl Job {
    fn run(&self) -> (WitnessOutcome, u32) {
        let size = self.checkpoint.size;
        let mut attempts = 0;
        let mut conflicts = 0;
        let mut pause = Duration::from_millis(self.config.retry_pause_ms);
        loop {
            let old_size = *self.slot.known_size.lock().expect("lock");
            if old_size > size {
                return (WitnessOutcome::Failed(WitnessError::WitnessAhead { witness_size: old_size, size }), attempts);
            }
            let proof = match self.prover.prove_consistency(old_size, size) {
                Ok(proof) if proof.len() <= PROOF_LINES_MAX && (old_size > 0 || proof.is_empty()) => proof,
                Ok(proof) => {
                    let source =
                        TreeError::ProofTooLong { kind: "consistency", found: proof.len(), max: PROOF_LINES_MAX };
                    return (
                        WitnessOutcome::Failed(WitnessError::Proof { old_size, new_size: size, source }),
                        attempts,
                    );
                }
                Err(source) => {
                    return (WitnessOutcome::Failed(WitnessError::Proof { old_size, new_size: size, source }), attempts)
                }
            };
            attempts += 1;
            match self.exchange(old_size, &proof) {
                Ok(Answer::Cosigned(line, timestamp)) => {
                    self.learn(size);
                    return (WitnessOutcome::Cosigned { line, timestamp }, attempts);
                }
                Ok(Answer::Conflict(witness_size)) => {
                    self.learn(witness_size);
                    conflicts += 1;
                    if conflicts > CONFLICTS_MAX {
                        let error = WitnessError::TooManyConflicts { witness_size };
                        return (WitnessOutcome::Failed(error), attempts);
                    }
                }
                Err((error, retry)) if retry && attempts < self.config.attempts_max => {
                    tracing::debug!(witness = %self.slot.endpoint.url, %error, attempts, "retrying");
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                Err((error, _)) => return (WitnessOutcome::Failed(error), attempts),
            }
        }
    }

    /// Records the size the witness is at (a 409 says it; a 200 makes it ours).
    fn learn(&self, size: u64) {
        *self.slot.known_size.lock().expect("lock") = size;
    }

    /// One POST. The error's flag says whether trying again may help.
    fn exchange(&self, old_size: u64, proof: &[Hash]) -> Result<Answer, (WitnessError, bool)> {
        let url = format!("{}/add-checkpoint", self.slot.endpoint.url);
        let body = format_request(old_size, proof, &self.note);
        let sent = self.agent.post(&url).header("Content-Type", "text/plain; charset=utf-8").send(&body[..]);
        let mut response = sent.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        match status {
            200 => verify_witness_answer(&answer, &self.checkpoint, &self.slot.endpoint.verifier)
                .map(|(line, cosignature)| Answer::Cosigned(line, cosignature.timestamp))
                .map_err(|e| (WitnessError::BadAnswer(e), false)),
            409 => parse_size_body(content_type.as_deref(), &answer)
                .map(Answer::Conflict)
                .map_err(|e| (WitnessError::BadConflict(e), false)),
            _ => {
                const QUOTE_CHARS_MAX: usize = 200;
                let detail: String = String::from_utf8_lossy(&answer).trim().chars().take(QUOTE_CHARS_MAX).collect();
                Err((WitnessError::Refused { status, detail }, status >= 500))
            }
        }
    }

    fn transport_error(&self, e: ureq::Error) -> (WitnessError, bool) {
        match e {
            ureq::Error::Timeout(_) => (WitnessError::Timeout { timeout_ms: self.config.request_timeout_ms }, true),
            ureq::Error::BodyExceedsLimit(max) => {
                (WitnessError::BadAnswer(CosignatureError::AnswerTooLarge { size: max as usize + 1 }), false)
            }
            other => (WitnessError::Unreachable { detail: other.to_string() }, true),
        }
    }
}
