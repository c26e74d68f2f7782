//! A blocking HTTP client for tests that speak to a server from plain threads:
//! answers of any status are returned, not errors; posting an envelope resends
//! the same bytes (at most one effect) after a 503 or no answer.

use std::time::{Duration, Instant};

use serde_json::Value;

/// One request's time limit (a loaded 2-core machine).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Times one envelope is resent after a 503 or no answer.
pub const POST_ATTEMPTS_MAX: u32 = 200;

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT)).build().new_agent()
}

/// `GET url` as JSON; panics unless 200.
pub fn get_json(url: &str) -> Value {
    let mut response = agent().get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
}

/// `GET url` as text, or `None` unless 200.
pub fn get_text(url: &str) -> Option<String> {
    let mut response = agent().get(url).call().ok()?;
    if response.status() != 200 {
        return None;
    }
    response.body_mut().read_to_string().ok()
}

/// `GET url` as bytes; panics unless 200.
pub fn get_bytes(url: &str) -> Vec<u8> {
    let mut response = agent().get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    response.body_mut().read_to_vec().unwrap()
}

/// Whether `base/readyz` answers 200.
pub fn ready(base: &str) -> bool {
    agent().get(format!("{base}/readyz")).call().is_ok_and(|r| r.status() == 200)
}

/// An answer to a POST: its status, content type and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

/// Posts one envelope to `base/v1/events` and returns its answer, whatever it is: a
/// 503 is returned, never resent, because a 503 from a healthy server is a bug the
/// test must see. Only when no answer came at all (the connection refused or reset,
/// as while a replica restarts) is the same envelope resent (same bytes, so at most
/// one effect), a bounded number of times, each resend said on stderr.
pub fn post(agent: &ureq::Agent, base: &str, envelope: &[u8]) -> Answer {
    let url = format!("{base}/v1/events");
    for _ in 0..POST_ATTEMPTS_MAX {
        match agent.post(&url).header("Content-Type", "application/json").send(envelope) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let content_type =
                    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let bytes = response.body_mut().read_to_vec().expect("read the answer");
                let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!("{status} answer is not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
                });
                return Answer { status, content_type, body };
            }
            Err(e) => {
                eprintln!("no answer from {url} ({e}); resending the same envelope");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    panic!("{url}: no answer after {POST_ATTEMPTS_MAX} tries");
}

/// Posts one envelope to `base/v1/events` once, without resending: `None` when no
/// answer came (connection refused or reset, timed out). For tests that count
/// every status (a 503 from a healthy replica is a failure, not something to retry).
pub fn post_once(agent: &ureq::Agent, base: &str, envelope: &[u8]) -> Option<Answer> {
    let url = format!("{base}/v1/events");
    let mut response = agent.post(&url).header("Content-Type", "application/json").send(envelope).ok()?;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = response.body_mut().read_to_vec().ok()?;
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status} answer is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    Some(Answer { status, content_type, body })
}

/// Posts an envelope that must be accepted; returns its sequence.
pub fn accept(agent: &ureq::Agent, base: &str, envelope: &[u8]) -> u64 {
    let answer = post(agent, base, envelope);
    assert!(matches!(answer.status, 200..=202), "{} {}", answer.status, answer.body);
    answer.body["seq"].as_u64().expect("seq")
}

/// The tree size of the server's latest checkpoint, and its body (origin, size, root).
pub fn checkpoint(base: &str) -> Option<(u64, String)> {
    let note = get_text(&format!("{base}/ledger/checkpoint"))?;
    let body: Vec<&str> = note.lines().take(3).collect();
    Some((body.get(1)?.parse().ok()?, body.join("\n")))
}

/// Waits (at most `within`) until the server is ready and its checkpoint covers
/// `last_seq`; returns that checkpoint's body. A checkpoint beyond `last_seq` fails.
pub fn wait_converged(base: &str, last_seq: u64, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if ready(base) {
            if let Some((size, body)) = checkpoint(base) {
                assert!(size <= last_seq, "{base}: checkpoint of size {size} beyond the last sequence {last_seq}");
                if size == last_seq {
                    return body;
                }
            }
        }
        assert!(Instant::now() < deadline, "{base} did not converge on sequence {last_seq} within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
