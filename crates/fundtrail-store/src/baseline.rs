//! The least work any signed-event ingest must do, for benchmarks: publish the
//! same payloads raw (no decide, no projections), pipelined, to a stream with
//! the same storage settings on the same server, and time it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};

use crate::LogError;

/// Stream and subjects the baseline writes to (and deletes afterwards).
pub const BASELINE_STREAM: &str = "FUNDTRAIL_BASELINE";
/// Publishes in flight at once.
pub const BASELINE_IN_FLIGHT_MAX: usize = 1_024;

/// Publishes every payload to a fresh file-backed stream on the server at `url`,
/// with up to [`BASELINE_IN_FLIGHT_MAX`] acknowledgements outstanding; answers
/// the time from the first publish to the last acknowledgement.
pub async fn raw_publish(url: &str, payloads: &[Vec<u8>]) -> Result<Duration, LogError> {
    let unavailable = |e: &dyn std::fmt::Display| LogError::Unavailable { cause: e.to_string() };
    let client = async_nats::connect(url).await.map_err(|e| unavailable(&e))?;
    let js = jetstream::new(client);
    let _ = js.delete_stream(BASELINE_STREAM).await;
    js.create_stream(stream::Config {
        name: BASELINE_STREAM.into(),
        subjects: vec!["fundtrail-baseline.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| unavailable(&e))?;
    let started = Instant::now();
    let mut in_flight = VecDeque::new();
    for (i, payload) in payloads.iter().enumerate() {
        if in_flight.len() >= BASELINE_IN_FLIGHT_MAX {
            let ack: jetstream::context::PublishAckFuture = in_flight.pop_front().expect("non-empty");
            ack.await.map_err(|e| unavailable(&e))?;
        }
        let subject = format!("fundtrail-baseline.{}", i % 16);
        let ack = js.publish(subject, payload.clone().into()).await.map_err(|e| unavailable(&e))?;
        in_flight.push_back(ack);
    }
    for ack in in_flight {
        ack.await.map_err(|e| unavailable(&e))?;
    }
    let elapsed = started.elapsed();
    let _ = js.delete_stream(BASELINE_STREAM).await;
    Ok(elapsed)
}
