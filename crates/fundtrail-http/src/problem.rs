//! Errors as RFC 9457 `application/problem+json`: `type`, `title`, `status`,
//! `detail` (the specific message: the rule, the things involved and the numbers)
//! and `code` (stable, machine-readable; `type` is [`PROBLEM_TYPE_BASE`] + code).
//!
//! How a refused submission maps to a status:
//!
//! | status | cause | codes |
//! |---|---|---|
//! | 400 | the envelope or its payload is malformed | `envelope-json`, `envelope-shape`, `payload-type`, `signature-count`, `base64`, `signature-length`, `keyid-format`, `payload-json`, `schema`, `event`, `body` |
//! | 401 | the signature or the signer is not accepted | `unknown-key`, `bad-signature`, `author-mismatch` |
//! | 403 | the signer may not author this | `role`, `genesis`, `host-key-pinned` |
//! | 409 | the event's identity collides with what exists; or it lost every race against other replicas (`contended`, with `Retry-After`: send it again) | `id-reused`, `exists`, `contended` |
//! | 413 | too large | `too-large` |
//! | 415 | the body is declared as something other than JSON | `media-type` |
//! | 422 | a rule refused it | [`Refusal::code`], e.g. `clock` |
//!
//! A refusal's status follows from its class alone ([`Refusal::class`], where
//! every variant is classified): `Unauthenticated` 401, `Forbidden` 403,
//! `Exists` 409 with code `exists`, `Conflict` 409, `Rule` 422.
//! | 503 | try again later (with `Retry-After`) | `overloaded`, `unavailable`, `shutting-down`, `timeout` |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fundtrail_domain::{Refusal, RefusalClass};
use fundtrail_envelope::EnvelopeError;
use fundtrail_service::SubmitError;
use serde::Serialize;

/// Where problem types live: `type` is this followed by the code.
pub const PROBLEM_TYPE_BASE: &str = "https://fundtrail.example/problems/";
/// The media type of every error.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// Retry-After after losing every race for a command (409 `contended`), in seconds.
pub const RETRY_CONTENDED_SECS: u64 = 1;
/// Retry-After for a busy or overloaded writer, in seconds.
pub const RETRY_BUSY_SECS: u64 = 1;
/// Retry-After when the log is unreachable or the service is stopping, in seconds.
pub const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// One problem answer.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        assert!(status.is_client_error() || status.is_server_error(), "a problem is an error, not {status}");
        Problem { status, code: code.to_owned(), detail: detail.into(), retry_after_secs: None }
    }

    pub fn retry_after(mut self, secs: u64) -> Problem {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// The problem for a refused submission (see the module doc for the table).
    pub fn from_submit(error: &SubmitError) -> Problem {
        let detail = error.to_string();
        match error {
            SubmitError::Envelope(e) => {
                let (status, code) = envelope_status(e);
                Problem::new(status, code, detail)
            }
            SubmitError::Refused(r) => {
                let (status, code) = refusal_status(r);
                Problem::new(status, code, detail)
            }
            // Lost races, not an outage: the client's command conflicted with
            // other writers' every time; the same envelope may be sent again.
            SubmitError::Busy { .. } => {
                Problem::new(StatusCode::CONFLICT, "contended", detail).retry_after(RETRY_CONTENDED_SECS)
            }
            SubmitError::Overloaded => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", detail).retry_after(RETRY_BUSY_SECS)
            }
            SubmitError::Unavailable(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retry_after(RETRY_UNAVAILABLE_SECS)
            }
            SubmitError::ShuttingDown => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", detail)
                .retry_after(RETRY_UNAVAILABLE_SECS),
        }
    }
}

/// The status and code of an envelope refusal.
pub fn envelope_status(error: &EnvelopeError) -> (StatusCode, &'static str) {
    use EnvelopeError as E;
    let code = match error {
        E::TooLarge { .. } => return (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
        E::UnknownKey(_) => "unknown-key",
        E::BadSignature(_) => "bad-signature",
        E::AuthorMismatch { .. } => "author-mismatch",
        E::EnvelopeJson(_) => "envelope-json",
        E::Shape(_) => "envelope-shape",
        E::PayloadType(_) => "payload-type",
        E::SignatureCount(_) => "signature-count",
        E::Base64 { .. } => "base64",
        E::SignatureLength(_) => "signature-length",
        E::KeyIdFormat(_) => "keyid-format",
        E::PayloadJson(_) => "payload-json",
        E::Schema(_) => "schema",
        E::Event(_) => "event",
    };
    let status = if error.is_authentication() { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
    (status, code)
}

/// The status and code of a refusal, from its class.
pub fn refusal_status(refusal: &Refusal) -> (StatusCode, &'static str) {
    match refusal.class() {
        RefusalClass::Unauthenticated => (StatusCode::UNAUTHORIZED, refusal.code()),
        RefusalClass::Forbidden => (StatusCode::FORBIDDEN, refusal.code()),
        RefusalClass::Exists => (StatusCode::CONFLICT, "exists"),
        RefusalClass::Conflict => (StatusCode::CONFLICT, refusal.code()),
        RefusalClass::Rule => (StatusCode::UNPROCESSABLE_ENTITY, refusal.code()),
    }
}

/// A short summary of the problem type: the same for every problem of one code.
fn title(status: StatusCode, code: &str) -> &'static str {
    match code {
        "too-large" => "Envelope too large",
        "unknown-key" | "bad-signature" | "author-mismatch" => "Signature not accepted",
        "role" | "genesis" | "host-key-pinned" => "Signer not permitted",
        "id-reused" => "Event id already used for other content",
        "exists" => "Already exists",
        "clock" => "Event time out of range",
        "not-found" => "Not found",
        "overloaded" => "Busy, retry shortly",
        "contended" => "Lost every race against other writers, send it again",
        "checkpoint-pending" => "No signed checkpoint covers it yet",
        _ => match status.as_u16() {
            400 => "Malformed request",
            422 => "Refused by a rule",
            503 => "Service unavailable",
            _ => status.canonical_reason().unwrap_or("Error"),
        },
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            type_uri: format!("{PROBLEM_TYPE_BASE}{}", self.code),
            title: title(self.status, &self.code),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: &self.code,
        };
        let bytes = serde_json::to_vec(&body).expect("a problem serialises");
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundtrail_domain::{EventId, Fen, FundId, KeyId, ProposalId};

    #[test]
    fn a_refusal_keeps_its_numbers_and_rule() {
        let r = Refusal::PayoutExceedsRemainder {
            proposal: ProposalId::new("P-7").unwrap(),
            amount: Fen::new(120_000).unwrap(),
            remainder: Fen::new(80_000).unwrap(),
        };
        let p = Problem::from_submit(&SubmitError::Refused(r));
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.code, "approved-remainder");
        assert_eq!(p.detail, "payout ¥1,200.00 exceeds approved remainder ¥800.00 of proposal P-7");
    }

    #[test]
    fn statuses_follow_the_table() {
        let too_large = EnvelopeError::TooLarge { size: 60_000, max: 49_152 };
        assert_eq!(Problem::from_submit(&SubmitError::Envelope(too_large)).status, StatusCode::PAYLOAD_TOO_LARGE);
        let shape = EnvelopeError::Shape("missing field".into());
        assert_eq!(Problem::from_submit(&SubmitError::Envelope(shape)).status, StatusCode::BAD_REQUEST);
        let busy = Problem::from_submit(&SubmitError::Busy { attempts: 16 });
        assert_eq!(
            (busy.status, busy.code.as_str(), busy.retry_after_secs),
            (StatusCode::CONFLICT, "contended", Some(RETRY_CONTENDED_SECS))
        );
        let exists = Problem::from_submit(&SubmitError::Refused(Refusal::HostAlreadyEstablished));
        assert_eq!((exists.status, exists.code.as_str()), (StatusCode::CONFLICT, "exists"));
        let no_host = Problem::from_submit(&SubmitError::Refused(Refusal::NoHost));
        assert_eq!(no_host.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn admission_refusals_keep_their_statuses_and_codes() {
        let key = |name: &str| KeyId::of_public_key(&[name.len() as u8; 32]);
        let id = EventId::new("0190a000-0000-7000-8000-000000000001").unwrap();
        let now = chrono::DateTime::from_timestamp(1_767_600_000, 0).unwrap();
        let cases = [
            (Refusal::IdReused { id, seq: 7 }, StatusCode::CONFLICT, "id-reused"),
            (
                Refusal::ClockWindow {
                    occurred_at: now + chrono::TimeDelta::hours(1),
                    now,
                    future_skew_max: chrono::TimeDelta::minutes(5),
                    backdate_max: chrono::TimeDelta::days(7),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
                "clock",
            ),
            (
                Refusal::HostKeyPinned { expected: key("a"), actual: key("bb") },
                StatusCode::FORBIDDEN,
                "host-key-pinned",
            ),
            (Refusal::UnknownKey { key: key("a") }, StatusCode::UNAUTHORIZED, "unknown-key"),
            (Refusal::FundExists { fund: FundId::new("f").unwrap() }, StatusCode::CONFLICT, "exists"),
        ];
        for (refusal, status, code) in cases {
            let p = Problem::from_submit(&SubmitError::Refused(refusal.clone()));
            assert_eq!((p.status, p.code.as_str(), p.detail), (status, code, refusal.to_string()));
        }
    }
}
