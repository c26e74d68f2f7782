//! Load shedding: how much of the server one connection, and all of them together,
//! may take, and how a request over a limit is refused — cheaply, before the work
//! it would cost.
//!
//! | limit | what is bounded | over it |
//! |---|---|---|
//! | [`Limits::connections_max`] | TCP connections open at once on the public listener | the next connection waits in the kernel's backlog ([`CappedListener`]) |
//! | [`Limits::submissions_max`] | `POST /v1/events` being read, verified and decided at once | 503 `overloaded`, `Retry-After: 1`, before the body is read |
//! | [`Limits::auth_failures_burst`], [`Limits::auth_failures_per_s`] | envelopes per connection that fail authentication (401: bad signature, unknown key) | 429 `too-many-failures` with the seconds until the next try, and the connection is closed, before anything is verified |
//! | [`Limits::streams_max`] | live feeds (`GET /v1/stream`) open at once | 503 `overloaded` |
//!
//! A forged envelope costs the server one Ed25519 verification (about 50 µs): the
//! only expensive thing a stranger can make it do. The failure budget is per
//! connection ([`Peer::connection`]), so a client that sends forgeries spends its own
//! budget and nobody else's: an honest client's requests on its own connection are
//! verified as before. A forger that reconnects pays a TCP handshake for each new
//! budget and is bounded by `connections_max`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{AppState, Problem};

/// What the public listener allows. Every field is at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// TCP connections open at once.
    pub connections_max: usize,
    /// Submissions (`POST /v1/events`) in progress at once.
    pub submissions_max: usize,
    /// Live feeds open at once.
    pub streams_max: usize,
    /// Failed authentications a connection may have in a row...
    pub auth_failures_burst: u32,
    /// ...and then per second.
    pub auth_failures_per_s: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            submissions_max: SUBMISSIONS_MAX_DEFAULT,
            streams_max: crate::STREAMS_MAX,
            auth_failures_burst: AUTH_FAILURES_BURST_DEFAULT,
            auth_failures_per_s: AUTH_FAILURES_PER_S_DEFAULT,
        }
    }
}

/// Connections at once, by default: far more than honest clients need, few
/// enough that their buffers stay small (hyper keeps ~16 KiB per idle connection).
pub const CONNECTIONS_MAX_DEFAULT: usize = 4_096;
/// Submissions at once, by default: the sequencer takes up to 1,000 per batch, so
/// 1,024 keeps it fed while bounding what waits (each at most one envelope, 48 KiB).
pub const SUBMISSIONS_MAX_DEFAULT: usize = 1_024;
/// Failed authentications in a row per connection, by default: a client whose key
/// was just enrolled elsewhere, or with a clock problem, retries a few times.
pub const AUTH_FAILURES_BURST_DEFAULT: u32 = 8;
/// Failed authentications per second per connection after the burst, by default.
pub const AUTH_FAILURES_PER_S_DEFAULT: u32 = 1;
/// The largest value any limit may be set to.
pub const LIMIT_MAX: usize = 1 << 20;

impl Limits {
    /// Checks every field is in `1..=LIMIT_MAX`, naming the first that is not.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("connections_max", self.connections_max),
            ("submissions_max", self.submissions_max),
            ("streams_max", self.streams_max),
            ("auth_failures_burst", self.auth_failures_burst as usize),
            ("auth_failures_per_s", self.auth_failures_per_s as usize),
        ];
        for (name, value) in fields {
            if value == 0 || value > LIMIT_MAX {
                return Err(format!("{name} must be between 1 and {LIMIT_MAX}, not {value}"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// connections

/// Who sent a request: the peer's address and the number of its connection, unique
/// for the listener's life. The `ConnectInfo` of a [`CappedListener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub connection: u64,
}

impl Connected<IncomingStream<'_, CappedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CappedListener>) -> Peer {
        *stream.remote_addr()
    }
}

/// A TCP listener that holds at most `connections_max` connections open: the next
/// is accepted when one closes (until then it waits in the kernel's backlog, which
/// costs the server nothing). Forgets a connection's failure budget when it closes.
pub struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    next_connection: u64,
    budgets: FailureBudgets,
}

impl CappedListener {
    pub fn new(inner: TcpListener, connections_max: usize, budgets: FailureBudgets) -> CappedListener {
        assert!(connections_max >= 1);
        CappedListener { inner, permits: Arc::new(Semaphore::new(connections_max)), next_connection: 0, budgets }
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (CappedStream, Peer) {
        let permit = self.permits.clone().acquire_owned().await.expect("the listener never closes its semaphore");
        let (io, addr) = Listener::accept(&mut self.inner).await;
        self.next_connection += 1;
        let connection = self.next_connection;
        let stream = CappedStream { io, _permit: permit, connection, budgets: self.budgets.clone() };
        (stream, Peer { addr, connection })
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer { addr: self.inner.local_addr()?, connection: 0 })
    }
}

/// An accepted connection: its slot is given back, and its failure budget
/// forgotten, when it is dropped.
pub struct CappedStream {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
    connection: u64,
    budgets: FailureBudgets,
}

impl Drop for CappedStream {
    fn drop(&mut self) {
        self.budgets.forget(self.connection);
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

// ---------------------------------------------------------------------------
// failed authentications, per connection

/// A token bucket per connection that has failed authentication: a failure takes
/// a token, tokens come back at `per_s` up to `burst`. Only connections with a
/// recent failure have an entry, and a connection's entry goes when it closes, so
/// there are never more entries than open connections.
#[derive(Clone)]
pub struct FailureBudgets {
    inner: Arc<Mutex<HashMap<u64, Bucket>>>,
    burst: u32,
    per_s: u32,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl FailureBudgets {
    pub fn new(burst: u32, per_s: u32) -> FailureBudgets {
        assert!(burst >= 1 && per_s >= 1);
        FailureBudgets { inner: Arc::new(Mutex::new(HashMap::new())), burst, per_s }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Bucket>> {
        // A panic elsewhere while holding the lock leaves only counters behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * f64::from(self.per_s)).min(f64::from(self.burst))
    }

    /// `None` if `connection` may send another envelope now; else how long until
    /// it may.
    pub fn wait(&self, connection: u64, now: Instant) -> Option<Duration> {
        let buckets = self.lock();
        let bucket = buckets.get(&connection)?;
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            return None;
        }
        Some(Duration::from_secs_f64((1.0 - tokens) / f64::from(self.per_s)))
    }

    /// Takes a token from `connection` for a failed authentication.
    pub fn fail(&self, connection: u64, now: Instant) {
        let mut buckets = self.lock();
        let full = Bucket { tokens: f64::from(self.burst), at: now };
        let bucket = buckets.entry(connection).or_insert(full);
        let tokens = self.refilled(*bucket, now);
        *bucket = Bucket { tokens: (tokens - 1.0).max(0.0), at: now };
    }

    /// Forgets a closed connection.
    pub fn forget(&self, connection: u64) {
        self.lock().remove(&connection);
    }

    /// Connections with a budget in use (for `/metrics` and tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------
// the gate in front of POST /v1/events

/// Shed submissions: refused before their body is read when `submissions_max` are
/// in progress (503) or their connection has spent its failure budget (429, and
/// the connection is closed); a 401 answer takes from the budget. A request that
/// came through no [`CappedListener`] (a test calling the router directly) has no
/// connection: only `submissions_max` applies to it.
pub(crate) async fn gate_submissions(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<axum::extract::ConnectInfo<Peer>>().map(|c| c.0);
    let shed = &app.inner.shed;
    if let Some(peer) = peer {
        if let Some(wait) = shed.budgets.wait(peer.connection, Instant::now()) {
            app.metrics().count_shed("auth-failures");
            let secs = wait.as_secs().max(1);
            let detail = format!(
                "this connection sent {} envelopes that failed authentication; send again in {secs} s, on a new connection",
                shed.limits.auth_failures_burst
            );
            let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many-failures", detail)
                .retry_after(secs)
                .into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    }
    let Ok(_permit) = shed.submissions.clone().try_acquire_owned() else {
        app.metrics().count_shed("submissions");
        let detail = format!("{} submissions are in progress; send again in a second", shed.limits.submissions_max);
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", detail).retry_after(1).into_response();
    };
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        if let Some(peer) = peer {
            shed.budgets.fail(peer.connection, Instant::now());
        }
    }
    response
}

/// What the gate shares.
pub(crate) struct Shed {
    pub(crate) limits: Limits,
    pub(crate) submissions: Arc<Semaphore>,
    pub(crate) budgets: FailureBudgets,
}

impl Shed {
    pub(crate) fn new(limits: Limits) -> Shed {
        Shed {
            limits,
            submissions: Arc::new(Semaphore::new(limits.submissions_max)),
            budgets: FailureBudgets::new(limits.auth_failures_burst, limits.auth_failures_per_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_then_refills_at_its_rate() {
        let budgets = FailureBudgets::new(3, 2);
        let t0 = Instant::now();
        assert_eq!(budgets.wait(7, t0), None, "no failure yet");
        for _ in 0..3 {
            assert_eq!(budgets.wait(7, t0), None);
            budgets.fail(7, t0);
        }
        let wait = budgets.wait(7, t0).expect("three failures spend a burst of three");
        assert_eq!(wait, Duration::from_millis(500), "one token comes back in 1/2 s");
        assert_eq!(budgets.wait(8, t0), None, "another connection's budget is its own");
        assert_eq!(budgets.wait(7, t0 + Duration::from_millis(500)), None);
        budgets.fail(7, t0 + Duration::from_millis(500));
        assert!(budgets.wait(7, t0 + Duration::from_millis(500)).is_some());
        assert_eq!(budgets.len(), 1);
        budgets.forget(7);
        assert!(budgets.is_empty());
        assert_eq!(budgets.wait(7, t0), None, "a closed connection's budget is forgotten");
    }

    #[test]
    fn a_long_pause_refills_no_more_than_the_burst() {
        let budgets = FailureBudgets::new(2, 1);
        let t0 = Instant::now();
        budgets.fail(1, t0);
        let later = t0 + Duration::from_secs(3_600);
        budgets.fail(1, later);
        budgets.fail(1, later);
        assert!(budgets.wait(1, later).is_some(), "a burst of two, not 3,600");
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(Limits::default().check(), Ok(()));
        let zero = Limits { submissions_max: 0, ..Limits::default() };
        assert_eq!(zero.check(), Err("submissions_max must be between 1 and 1048576, not 0".to_owned()));
        let huge = Limits { connections_max: LIMIT_MAX + 1, ..Limits::default() };
        assert!(huge.check().unwrap_err().starts_with("connections_max"));
    }
}
