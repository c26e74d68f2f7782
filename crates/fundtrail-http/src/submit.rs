//! `POST /v1/events`: the envelope bytes, exactly as sent, to the writer.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::{AppState, Problem, BODY_BYTES_MAX};

/// The answer to an accepted submission.
#[derive(Serialize)]
struct SubmitResponse {
    id: String,
    #[serde(rename = "type")]
    type_name: &'static str,
    fund: String,
    seq: u64,
    ledger_index: u64,
    duplicate: bool,
    /// Whether the local projections applied it before this answer (reads see it).
    applied: bool,
}

pub(crate) async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(problem) = check_media_type(&headers) {
        return problem.into_response();
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let detail = format!(
                "request body exceeds {BODY_BYTES_MAX} bytes; an envelope is at most {} bytes",
                fundtrail_envelope::ENVELOPE_SIZE_MAX
            );
            return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail).into_response();
        }
        Err(rejection) => return Problem::bad_request("body", rejection.body_text()).into_response(),
    };
    debug_assert!(body.len() <= BODY_BYTES_MAX);
    let started = Instant::now();
    let result = app.service().submit(body.to_vec()).await;
    app.metrics().observe_submit(started.elapsed(), &result);
    let submitted = match result {
        Ok(s) => s,
        Err(e) => return Problem::from_submit(&e).into_response(),
    };
    let accepted = &submitted.accepted;
    assert_eq!(submitted.ledger_index + 1, accepted.seq, "ledger index is seq − 1");
    let status = match (accepted.duplicate, submitted.applied) {
        (true, _) => StatusCode::OK,
        (false, true) => StatusCode::CREATED,
        (false, false) => StatusCode::ACCEPTED,
    };
    let location = format!("/v1/events/{}", accepted.id);
    let answer = SubmitResponse {
        id: accepted.id.to_string(),
        type_name: accepted.type_name,
        fund: accepted.fund.to_string(),
        seq: accepted.seq,
        ledger_index: submitted.ledger_index,
        duplicate: accepted.duplicate,
        applied: submitted.applied,
    };
    (status, [(header::LOCATION, location)], Json(answer)).into_response()
}

/// A body declared as anything but JSON is refused; an undeclared one is read as JSON.
fn check_media_type(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "media-type",
        format!("Content-Type {text:?}: an envelope is sent as application/json"),
    ))
}
