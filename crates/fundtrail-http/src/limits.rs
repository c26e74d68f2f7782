//! Load shedding: how much of the server one connection, and all of them together,
//! may take, and how a request over a limit is refused — cheaply, before the work
//! it would cost.
//!
//! | limit | what is bounded | over it |
//! |---|---|---|
//! | [`Limits::connections_max`] | TCP connections open at once on the public listener | the next connection waits in the kernel's backlog ([`CappedListener`]) |
//! | [`Limits::submissions_max`] | `POST /v1/events` being read, verified and decided at once | 503 `overloaded`, `Retry-After: 1`, before the body is read (so the connection is closed) |
//! | [`Limits::auth_failures_burst`], [`Limits::auth_failures_per_s`] | envelopes per connection that fail authentication (401: bad signature, unknown key) | 429 `too-many-failures` with the seconds until the next try, sent after that wait (at most [`TARPIT_MAX`]), and the connection is closed; nothing is verified |
//! | [`Limits::address_failures_burst`], [`Limits::address_failures_per_s`] | the same, per client address, on connections that have not yet sent an envelope that verified | the same |
//! | [`Limits::streams_max`] | live feeds (`GET /v1/stream`) open at once | 503 `overloaded` |
//!
//! A forged envelope costs the server one Ed25519 verification (about 50 µs): the
//! only expensive thing a stranger can make it do. Failures are budgeted per
//! connection ([`Peer::connection`]) and, until a connection has sent one envelope
//! that verified, per address as well ([`FailureBudgets`]): a forger spends its own
//! budgets, reconnecting does not renew them, and a client that has proved it holds
//! an enrolled key keeps being served on its connection whatever its address's
//! budget. Behind a proxy every client has the proxy's address: set the address
//! budget high there, and shed at the proxy.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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
    /// Failed authentications on connections not yet trusted, per address, in a row...
    pub address_failures_burst: u32,
    /// ...and then per second.
    pub address_failures_per_s: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            submissions_max: SUBMISSIONS_MAX_DEFAULT,
            streams_max: crate::STREAMS_MAX,
            auth_failures_burst: AUTH_FAILURES_BURST_DEFAULT,
            auth_failures_per_s: AUTH_FAILURES_PER_S_DEFAULT,
            address_failures_burst: ADDRESS_FAILURES_BURST_DEFAULT,
            address_failures_per_s: ADDRESS_FAILURES_PER_S_DEFAULT,
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
/// Failed authentications in a row per address, by default: room for several
/// clients behind one NAT each getting a few wrong.
pub const ADDRESS_FAILURES_BURST_DEFAULT: u32 = 64;
/// Failed authentications per second per address after the burst, by default.
pub const ADDRESS_FAILURES_PER_S_DEFAULT: u32 = 8;
/// Longest a refusal for spent failure budgets is held before it is sent.
pub const TARPIT_MAX: Duration = Duration::from_secs(1);
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
            ("address_failures_burst", self.address_failures_burst as usize),
            ("address_failures_per_s", self.address_failures_per_s as usize),
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
// failed authentications, per connection and per address

/// A token bucket: a failure takes a token, tokens come back at `per_s` up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_s: u32,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket { tokens: f64::from(rate.burst), at: now }
    }

    fn tokens(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * f64::from(rate.per_s)).min(f64::from(rate.burst))
    }

    /// `None` if a token is there; else how long until one is.
    fn wait(&self, rate: Rate, now: Instant) -> Option<Duration> {
        let tokens = self.tokens(rate, now);
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / f64::from(rate.per_s)))
    }

    fn take(&mut self, rate: Rate, now: Instant) {
        *self = Bucket { tokens: (self.tokens(rate, now) - 1.0).max(0.0), at: now };
    }
}

/// What is known of one open connection.
#[derive(Clone, Copy, Debug)]
struct Connection {
    failures: Bucket,
    /// It sent an envelope that verified: it holds an enrolled key.
    trusted: bool,
}

/// Addresses remembered at once (only those with a recent failure).
pub const ADDRESSES_TRACKED_MAX: usize = 65_536;

/// Failed authentications, counted two ways. Each connection has its own budget
/// (`per_connection`). A connection that has not yet sent an envelope that verified
/// (not *trusted*) also spends from its address's budget (`per_address`), so a
/// forger that opens a new connection for each burst is bounded too, while a client
/// that proved it holds a key keeps being served on its connection whatever else
/// comes from its address. A connection's entry goes when it closes; an address is
/// remembered only after a failure, at most [`ADDRESSES_TRACKED_MAX`] of them (the
/// oldest refilled ones are forgotten first; when none is, a new address is not
/// counted).
#[derive(Clone)]
pub struct FailureBudgets {
    inner: Arc<Mutex<Budgets>>,
    per_connection: Rate,
    per_address: Rate,
}

#[derive(Default)]
struct Budgets {
    connections: HashMap<u64, Connection>,
    addresses: HashMap<IpAddr, Bucket>,
}

impl FailureBudgets {
    pub fn new(per_connection: Rate, per_address: Rate) -> FailureBudgets {
        assert!(per_connection.burst >= 1 && per_connection.per_s >= 1);
        assert!(per_address.burst >= 1 && per_address.per_s >= 1);
        FailureBudgets { inner: Arc::new(Mutex::new(Budgets::default())), per_connection, per_address }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Budgets> {
        // A panic elsewhere while holding the lock leaves only counters behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `None` if `peer` may send another envelope now; else how long until it may.
    pub fn wait(&self, peer: Peer, now: Instant) -> Option<Duration> {
        let budgets = self.lock();
        let connection = budgets.connections.get(&peer.connection);
        if let Some(wait) = connection.and_then(|c| c.failures.wait(self.per_connection, now)) {
            return Some(wait);
        }
        if connection.is_some_and(|c| c.trusted) {
            return None;
        }
        budgets.addresses.get(&peer.addr.ip())?.wait(self.per_address, now)
    }

    /// Takes a token from `peer`'s connection for a failed authentication, and from
    /// its address unless the connection is trusted.
    pub fn fail(&self, peer: Peer, now: Instant) {
        let mut budgets = self.lock();
        let fresh = Connection { failures: Bucket::full(self.per_connection, now), trusted: false };
        let connection = budgets.connections.entry(peer.connection).or_insert(fresh);
        connection.failures.take(self.per_connection, now);
        if connection.trusted {
            return;
        }
        let ip = peer.addr.ip();
        if !budgets.addresses.contains_key(&ip) && budgets.addresses.len() >= ADDRESSES_TRACKED_MAX {
            let per_address = self.per_address;
            budgets.addresses.retain(|_, b| b.tokens(per_address, now) < f64::from(per_address.burst));
            if budgets.addresses.len() >= ADDRESSES_TRACKED_MAX {
                return;
            }
        }
        budgets.addresses.entry(ip).or_insert(Bucket::full(self.per_address, now)).take(self.per_address, now);
    }

    /// `peer`'s connection sent an envelope that verified.
    pub fn trust(&self, peer: Peer, now: Instant) {
        let mut budgets = self.lock();
        let fresh = Connection { failures: Bucket::full(self.per_connection, now), trusted: false };
        budgets.connections.entry(peer.connection).or_insert(fresh).trusted = true;
    }

    /// Forgets a closed connection.
    pub fn forget(&self, connection: u64) {
        self.lock().connections.remove(&connection);
    }

    /// (connections, addresses) remembered now (for `/metrics` and tests).
    pub fn remembered(&self) -> (usize, usize) {
        let budgets = self.lock();
        (budgets.connections.len(), budgets.addresses.len())
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
        if let Some(wait) = shed.budgets.wait(peer, Instant::now()) {
            app.metrics().count_shed("auth-failures");
            // Answer no sooner than a token could come back (at most a second): a
            // forger that waits for its answers sends one request per connection per
            // wait instead of as many as the server can refuse. Waiting costs the
            // server a sleeping task; the connection's slot is bounded by
            // `connections_max`.
            tokio::time::sleep(wait.min(TARPIT_MAX)).await;
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let detail = format!(
                "too many envelopes from this connection or address failed authentication; send again in {secs} s"
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
        let mut response =
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", detail).retry_after(1).into_response();
        // The body was never read: the connection cannot carry another request.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    };
    let response = next.run(request).await;
    if let Some(peer) = peer {
        match response.status() {
            StatusCode::UNAUTHORIZED => shed.budgets.fail(peer, Instant::now()),
            // Each of these answers an envelope whose signature verified.
            StatusCode::OK
            | StatusCode::CREATED
            | StatusCode::ACCEPTED
            | StatusCode::FORBIDDEN
            | StatusCode::CONFLICT
            | StatusCode::UNPROCESSABLE_ENTITY => shed.budgets.trust(peer, Instant::now()),
            _ => {}
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
            budgets: FailureBudgets::new(
                Rate { burst: limits.auth_failures_burst, per_s: limits.auth_failures_per_s },
                Rate { burst: limits.address_failures_burst, per_s: limits.address_failures_per_s },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4], connection: u64) -> Peer {
        Peer { addr: SocketAddr::from((ip, 40_000)), connection }
    }

    const NO_ADDRESS_LIMIT: Rate = Rate { burst: 1_000, per_s: 1_000 };

    #[test]
    fn a_connections_budget_is_spent_then_refills_at_its_rate() {
        let budgets = FailureBudgets::new(Rate { burst: 3, per_s: 2 }, NO_ADDRESS_LIMIT);
        let t0 = Instant::now();
        let a = peer([10, 0, 0, 1], 7);
        assert_eq!(budgets.wait(a, t0), None, "no failure yet");
        for _ in 0..3 {
            assert_eq!(budgets.wait(a, t0), None);
            budgets.fail(a, t0);
        }
        assert_eq!(budgets.wait(a, t0), Some(Duration::from_millis(500)), "one token comes back in 1/2 s");
        assert_eq!(budgets.wait(peer([10, 0, 0, 1], 8), t0), None, "another connection's budget is its own");
        assert_eq!(budgets.wait(a, t0 + Duration::from_millis(500)), None);
        budgets.fail(a, t0 + Duration::from_millis(500));
        assert!(budgets.wait(a, t0 + Duration::from_millis(500)).is_some());
        budgets.forget(7);
        assert_eq!(budgets.wait(a, t0 + Duration::from_millis(500)), None, "a closed connection is forgotten");
    }

    #[test]
    fn a_long_pause_refills_no_more_than_the_burst() {
        let budgets = FailureBudgets::new(Rate { burst: 2, per_s: 1 }, NO_ADDRESS_LIMIT);
        let t0 = Instant::now();
        let a = peer([10, 0, 0, 1], 1);
        budgets.fail(a, t0);
        let later = t0 + Duration::from_secs(3_600);
        budgets.fail(a, later);
        budgets.fail(a, later);
        assert!(budgets.wait(a, later).is_some(), "a burst of two, not 3,600");
    }

    #[test]
    fn reconnecting_does_not_renew_an_addresss_budget_but_a_trusted_connection_is_served() {
        let budgets = FailureBudgets::new(Rate { burst: 8, per_s: 1 }, Rate { burst: 3, per_s: 1 });
        let t0 = Instant::now();
        let honest = peer([10, 0, 0, 1], 1);
        budgets.trust(honest, t0);
        for connection in 2..5 {
            budgets.fail(peer([10, 0, 0, 1], connection), t0);
        }
        assert!(budgets.wait(peer([10, 0, 0, 1], 5), t0).is_some(), "a new connection from the address waits");
        assert_eq!(budgets.wait(honest, t0), None, "the trusted connection does not");
        assert_eq!(budgets.wait(peer([10, 0, 0, 2], 6), t0), None, "another address does not");
        // A trusted connection's own failures are still its own to spend.
        for _ in 0..8 {
            budgets.fail(honest, t0);
        }
        assert!(budgets.wait(honest, t0).is_some());
        assert_eq!(budgets.remembered(), (4, 1));
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
