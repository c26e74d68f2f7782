//! The witness over HTTP (axum): C2SP tlog-witness with this process's address as both
//! the submission and the monitoring prefix.
//!
//! - `POST /add-checkpoint`: 200 with `text/plain` cosignature lines; 409 with
//!   `text/x.tlog.size`; 400, 403, 404, 422 with a one-line `text/plain` reason.
//! - `GET /<origin hash>/checkpoint`: the latest cosigned checkpoint of that log, or 404.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::protocol::{format_size_body, REQUEST_SIZE_MAX, SIZE_CONTENT_TYPE};
use crate::witness::{Refusal, Witness};

/// How long one request may take, persisting included.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(latest_checkpoint))
        .layer(DefaultBodyLimit::max(REQUEST_SIZE_MAX))
        .with_state(witness)
}

/// Serves the witness on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    witness: Arc<Witness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness)).with_graceful_shutdown(shutdown).await
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let work = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body));
    let outcome = match tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("witness failed: {join}")),
        Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "witness busy: try again".into()),
    };
    match outcome {
        Ok(lines) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines).into_response(),
        Err(Refusal::Conflict { latest, .. }) => {
            (StatusCode::CONFLICT, [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)], format_size_body(latest))
                .into_response()
        }
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).expect("a valid status");
            if status.is_server_error() {
                tracing::error!(error = %refusal, "add-checkpoint failed");
            } else {
                tracing::info!(status = status.as_u16(), reason = %refusal, "add-checkpoint refused");
            }
            text(status, refusal.to_string())
        }
    }
}

async fn latest_checkpoint(State(witness): State<Arc<Witness>>, Path(origin_hash): Path<String>) -> Response {
    match witness.latest_note(&origin_hash) {
        Some(note) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
        None => text(StatusCode::NOT_FOUND, "no checkpoint cosigned for this origin hash".into()),
    }
}

fn text(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}
