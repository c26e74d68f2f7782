//! `GET /v1/stream`: the event log as server-sent events.
//!
//! Each message is one SSE event named `event` whose id is the log sequence and
//! whose data is `{seq, subject, id, type, fund, envelope}` (the envelope as
//! stored, parsed). It starts at `?from=SEQ`, else after the `Last-Event-ID` a
//! reconnecting client sends, else at the next message (live only). Comment
//! pings keep idle connections open every [`KEEP_ALIVE`].
//!
//! Buffering is bounded per connection: the log is followed only as fast as the
//! client reads (the response body pulls the next message when the previous one
//! is written), and at most [`crate::Limits::streams_max`] feeds are open at once.
//! A log error ends the feed with an `error` event; the client reconnects with
//! `Last-Event-ID` and loses nothing.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use fundtrail_store::{LogError, StoredMessage};
use futures::{future, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::reads::{open_stored, query};
use crate::{AppState, Problem, RETRY_AFTER_SECS};

/// How often an idle feed is pinged.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    from: Option<u64>,
}

/// One message of the feed.
#[derive(Serialize)]
struct StreamMessage<'a> {
    seq: u64,
    subject: &'a str,
    id: Value,
    #[serde(rename = "type")]
    type_name: Value,
    fund: Value,
    envelope: Value,
}

fn unavailable(code: &str, detail: String) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).retry_after(RETRY_AFTER_SECS)
}

fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers.get("last-event-id")?.to_str().ok()?.trim().parse().ok()
}

pub(crate) async fn stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let q = query(q)?;
    if q.from == Some(0) {
        // Sequences start at 1; 0 was quietly read as 1, below the documented minimum.
        return Err(Problem::bad_request("query", "from must be at least 1: log sequences start at 1"));
    }
    let mut stop = app.stopping();
    if *stop.borrow() {
        return Err(unavailable("shutting-down", "the service is shutting down".into()));
    }
    let permit = app.inner.streams.clone().try_acquire_owned().map_err(|_| {
        unavailable("overloaded", format!("{} live feeds are open; retry shortly", app.limits().streams_max))
    })?;
    let log = &app.service().log;
    let from = match (q.from, last_event_id(&headers)) {
        (Some(from), _) => from,
        (None, Some(last_seen)) => last_seen.saturating_add(1),
        (None, None) => log.last_seq().await.map_err(|e| unavailable("unavailable", e.to_string()))? + 1,
    };
    let follow = log.follow(from).await.map_err(|e| unavailable("unavailable", e.to_string()))?;
    let stopped = Box::pin(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    // The permit lives as long as the feed: it is the scan's state.
    let events = follow
        .scan((permit, false), |(_, failed), item| {
            if *failed {
                return future::ready(None);
            }
            let event = match item {
                Ok(message) => message_event(&message),
                Err(e) => {
                    *failed = true;
                    error_event(&e)
                }
            };
            future::ready(Some(Ok(event)))
        })
        .take_until(stopped);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn message_event(message: &StoredMessage) -> Event {
    let (envelope, event) = open_stored(&message.payload).unwrap_or((Value::Null, Value::Null));
    let data = StreamMessage {
        seq: message.seq,
        subject: &message.subject,
        id: event.get("id").cloned().unwrap_or(Value::Null),
        type_name: event.get("type").cloned().unwrap_or(Value::Null),
        fund: event.get("fund").cloned().unwrap_or(Value::Null),
        envelope,
    };
    let json = serde_json::to_string(&data).expect("a stream message serialises");
    Event::default().event("event").id(message.seq.to_string()).data(json)
}

fn error_event(error: &LogError) -> Event {
    tracing::warn!(%error, "live feed ended by a log error");
    let data = serde_json::json!({ "code": "unavailable", "detail": error.to_string() });
    Event::default().event("error").data(data.to_string())
}
