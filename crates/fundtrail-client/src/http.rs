//! The HTTP client the actor commands and the demo share: post a signed
//! envelope, read JSON, and turn an `application/problem+json` answer into an
//! error that names the server's own `detail`.
//!
//! Blocking (ureq): a command posts one event and waits for the answer.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fundtrail_domain::FundId;
use serde_json::Value;

/// A fund's accounts as [`Client::accounts`] read them.
pub enum Accounts {
    Csv(String),
    Json(Value),
}

/// The server used when neither `--server` nor `FUNDTRAIL_SERVER` says otherwise.
pub const SERVER_DEFAULT: &str = "http://127.0.0.1:8080";
/// Connecting to the server.
pub const HTTP_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// A whole request and its answer (a submission waits for its event to be applied).
pub const HTTP_RESPONSE_TIMEOUT_MS: u64 = 30_000;
/// Largest answer read, in bytes.
pub const RESPONSE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Tries of one submission whose outcome is unknown (no answer). Resending is
/// safe: the same envelope carries the same event id, which has one effect.
pub const POST_ATTEMPTS_MAX: u32 = 3;
/// Pause before the second try; doubled for each further one.
pub const POST_RETRY_PAUSE_MS: u64 = 250;
/// Longest body text quoted in an error when the server did not answer problem+json.
const BODY_QUOTE_CHARS_MAX: usize = 300;

/// The server refused or failed a request, with its RFC 9457 problem details.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    /// The specific reason, e.g. "payout of ¥500.00 exceeds the remainder ¥300.00 of P-1".
    pub detail: String,
    pub code: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}", self.detail, self.status)?;
        if !self.title.is_empty() {
            write!(f, " {}", self.title)?;
        }
        if let Some(code) = &self.code {
            write!(f, ", code {code}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for Problem {}

/// The server's answer to an accepted (or already recorded) event.
#[derive(Debug, Clone)]
pub struct Posted {
    pub id: String,
    pub type_name: String,
    pub fund: String,
    pub seq: u64,
    pub ledger_index: u64,
    /// The same event id was recorded before; this submission changed nothing.
    pub duplicate: bool,
    /// The whole answer, as the server sent it.
    pub raw: Value,
}

/// A FundTrail server.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// Sent as `Authorization: Bearer …` by [`Client::put_json`] (the private vault).
    bearer: Option<String>,
}

impl Client {
    pub fn new(base_url: &str) -> Result<Client> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("server {base_url:?} is not an http:// or https:// URL");
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_millis(HTTP_CONNECT_TIMEOUT_MS)))
            .timeout_global(Some(Duration::from_millis(HTTP_RESPONSE_TIMEOUT_MS)))
            .http_status_as_error(false)
            .build();
        Ok(Client { base, agent: config.new_agent(), bearer: None })
    }

    /// The same client, authenticating its writes with a bearer token.
    pub fn with_bearer(mut self, token: &str) -> Client {
        self.bearer = Some(token.to_owned());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Posts envelope bytes exactly as signed to `POST /v1/events`.
    pub fn post_envelope(&self, envelope: &[u8]) -> Result<Posted> {
        let url = format!("{}/v1/events", self.base);
        let mut pause_ms = POST_RETRY_PAUSE_MS;
        let mut attempt = 1;
        let (status, body) = loop {
            let sent = self.agent.post(&url).header("Content-Type", "application/json").send(envelope);
            match sent.and_then(read_answer) {
                Ok(answer) => break answer,
                Err(e) if attempt < POST_ATTEMPTS_MAX => {
                    eprintln!("warning: no answer from {url} ({e}); resending the same event (try {})", attempt + 1);
                    std::thread::sleep(Duration::from_millis(pause_ms));
                    pause_ms *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("no answer from {url} after {POST_ATTEMPTS_MAX} tries: the event may or may not be recorded; resend the same envelope to find out")
                    })
                }
            }
        };
        if !(200..300).contains(&status) {
            return Err(problem(status, &body).into());
        }
        let raw: Value =
            serde_json::from_slice(&body).with_context(|| format!("{url} answered {status} with non-JSON"))?;
        posted(raw, status).with_context(|| format!("{url} answered {status} without the expected fields"))
    }

    /// `PUT path` with a JSON body; a non-2xx answer becomes a [`Problem`] error.
    pub fn put_json(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let bytes = serde_json::to_vec(body).expect("JSON serialises");
        let mut request = self.agent.put(&url).header("Content-Type", "application/json");
        if let Some(token) = &self.bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let sent = request.send(&bytes[..]);
        let (status, answer) = sent.and_then(read_answer).with_context(|| format!("no answer from {url}"))?;
        if !(200..300).contains(&status) {
            return Err(problem(status, &answer).into());
        }
        serde_json::from_slice(&answer).with_context(|| format!("{url} answered {status} with non-JSON"))
    }

    /// `GET path` (e.g. `/v1/funds/x`) as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value> {
        let body = self.get_bytes(path)?;
        serde_json::from_slice(&body).with_context(|| format!("{}{path} is not JSON", self.base))
    }

    /// Where a gift (cash or goods) went: `GET /v1/donations/{id}/trace` (docs/design.md §1.6).
    pub fn trace(&self, donation: &fundtrail_domain::EventId) -> Result<TraceAnswer> {
        let value = self.get_json(&format!("/v1/donations/{donation}/trace"))?;
        serde_json::from_value(value).with_context(|| format!("{} answered a trace of another shape", self.base))
    }

    /// A fund's accounts per year (docs/design.md §1.6): `GET /v1/funds/{fund}/accounts`, of
    /// `year` or every year, as the server's CSV or its JSON.
    pub fn accounts(&self, fund: &FundId, year: Option<i32>, csv: bool) -> Result<Accounts> {
        let mut path = format!("/v1/funds/{fund}/accounts?format={}", if csv { "csv" } else { "json" });
        if let Some(year) = year {
            path.push_str(&format!("&year={year}"));
        }
        Ok(if csv { Accounts::Csv(self.get_text(&path)?) } else { Accounts::Json(self.get_json(&path)?) })
    }

    /// `GET path` as text.
    pub fn get_text(&self, path: &str) -> Result<String> {
        let body = self.get_bytes(path)?;
        String::from_utf8(body).with_context(|| format!("{}{path} is not UTF-8", self.base))
    }

    /// `GET path`; a non-2xx answer becomes a [`Problem`] error.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.get(&url).call().with_context(|| format!("cannot reach {url}"))?;
        let (status, body) = read_answer(response).with_context(|| format!("reading the answer of {url}"))?;
        if !(200..300).contains(&status) {
            return Err(anyhow::Error::new(problem(status, &body)).context(format!("GET {url}")));
        }
        Ok(body)
    }
}

fn read_answer(mut response: ureq::http::Response<ureq::Body>) -> Result<(u16, Vec<u8>), ureq::Error> {
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(RESPONSE_BYTES_MAX).read_to_vec()?;
    Ok((status, body))
}

/// Reads problem details from an error answer; any other body is quoted briefly.
pub fn problem(status: u16, body: &[u8]) -> Problem {
    assert!(!(200..300).contains(&status), "a problem is an error answer");
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(detail) = text(&v, "detail").or_else(|| text(&v, "title")) {
            return Problem { status, title: text(&v, "title").unwrap_or_default(), detail, code: text(&v, "code") };
        }
    }
    let quoted: String = String::from_utf8_lossy(body).chars().take(BODY_QUOTE_CHARS_MAX).collect();
    let detail = if quoted.trim().is_empty() { "no details given".to_owned() } else { quoted.trim().to_owned() };
    Problem { status, title: String::new(), detail, code: None }
}

fn posted(raw: Value, status: u16) -> Result<Posted> {
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no {k:?}"));
    let n = |k: &str| raw.get(k).and_then(Value::as_u64).with_context(|| format!("no {k:?}"));
    let duplicate = raw.get("duplicate").and_then(Value::as_bool).unwrap_or(status == 200);
    Ok(Posted {
        id: s("id")?,
        type_name: s("type")?,
        fund: s("fund")?,
        seq: n("seq")?,
        ledger_index: n("ledger_index")?,
        duplicate,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_details_are_read() {
        let body = br#"{"type":"about:blank","title":"Refused","status":422,"detail":"payout exceeds remainder","code":"payout_exceeds_remainder"}"#;
        let p = problem(422, body);
        assert_eq!(p.detail, "payout exceeds remainder");
        assert_eq!(p.to_string(), "payout exceeds remainder (HTTP 422 Refused, code payout_exceeds_remainder)");
        let plain = problem(502, b"bad gateway");
        assert_eq!(plain.to_string(), "bad gateway (HTTP 502)");
        assert_eq!(problem(500, b"").detail, "no details given");
    }

    #[test]
    fn server_urls_are_checked() {
        assert!(Client::new("localhost:8080").is_err());
        assert_eq!(Client::new("http://127.0.0.1:8080/").unwrap().base(), "http://127.0.0.1:8080");
    }
}

/// The server's trace of a gift (cash or goods, by `kind`) and the donor's line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceAnswer {
    #[serde(flatten)]
    pub trace: fundtrail_domain::GiftTrace,
    pub summary: String,
}
