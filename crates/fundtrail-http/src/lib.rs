//! # fundtrail-http: the HTTP edge of a FundTrail service
//!
//! [`router`] answers, over one [`AppState`]:
//! - `POST /v1/events`: a signed DSSE envelope, taken as bytes exactly as sent (never
//!   re-serialised) and handed to [`Service::submit`]; 201 once the local projections
//!   applied it (202 when it is in the log but not yet applied), 200 for a duplicate.
//! - reads: funds (with the statutory compliance picture at the service clock's
//!   `now`), proposals with votes, tally and money trail, public donations (salted
//!   donor commitments only), events as stored, donor receipts, keys.
//! - the public ledger in the C2SP `tlog-tiles` layout under `/ledger/`
//!   (checkpoint, hash tiles, entry bundles, vkey), and proofs as JSON; with
//!   witnesses the checkpoint is the newest one a quorum cosigned, and
//!   `/ledger/checkpoint/pending` the newest signed one.
//! - `GET /v1/stream`: the log as server-sent events.
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus text).
//!
//! **Compression** ([`compression`]): answers are gzip- or Brotli-compressed for clients
//! that ask (`Accept-Encoding`), as `Content-Encoding` — transparent: the bytes a client
//! decodes are the bytes it would get uncompressed, so tiles and checkpoints stay exact
//! for C2SP clients, and a client that asks for nothing gets identity. The live feed
//! (`text/event-stream`) and hash tiles (SHA-256 output, incompressible) are never
//! compressed, so no event waits in an encoder's buffer.
//!
//! Every error is `application/problem+json` (RFC 9457) with a stable `code`
//! (see [`problem`] for the status of each cause).
//!
//! **Architecture invariant:** HTTP only — no rule, no storage. Every answer comes
//! from the service's read model ([`fundtrail_service::ReadModel`]), its log, or its
//! writer; formats come from `fundtrail-ledger`. This crate decides nothing: a rule
//! that seems to belong here belongs in `fundtrail-domain`.
//!
//! **Limits** (each a named constant): request bodies [`BODY_BYTES_MAX`], request
//! time [`REQUEST_TIMEOUT`], page sizes [`PAGE_LIMIT_MAX`], a receipt's wait for a
//! checkpoint [`RECEIPT_CHECKPOINT_WAIT`]; and, set per server in [`Limits`] (see
//! [`limits`] for what each sheds and how): connections, submissions in progress,
//! failed authentications per connection, open live feeds.
//!
//! **Shutdown:** `axum::serve(...).with_graceful_shutdown(..)` waits for open
//! responses, and a live feed never ends by itself: call
//! [`AppState::begin_shutdown`] when the signal comes (or use [`serve`], which does).

mod ledger;
pub mod limits;
pub mod metrics;
pub mod portal;
pub mod problem;
mod reads;
mod stream;
mod submit;
pub mod vault;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use fundtrail_ledger::{Checkpoint, LogVerifier};
use fundtrail_service::Service;
use tokio::sync::{watch, Semaphore};

pub use limits::{CappedListener, Limits, Peer};
pub use metrics::Metrics;
pub use problem::Problem;

/// Largest request body accepted: the largest envelope plus a little slack, so
/// that an envelope just over the cap is refused by the envelope check with its
/// own message, and anything larger by the body limit (both 413).
pub const BODY_BYTES_MAX: usize = fundtrail_envelope::ENVELOPE_SIZE_MAX + 4096;
/// How long one request may take before it is answered 503 (a live feed's
/// stream is not counted: only the time to its first byte).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Page size when none is asked for.
pub const PAGE_LIMIT_DEFAULT: usize = 100;
/// Largest page size.
pub const PAGE_LIMIT_MAX: usize = 500;
/// Live feeds open at once, over all clients, by default ([`Limits::streams_max`]).
pub const STREAMS_MAX: usize = 256;
/// How long a receipt waits for a signed checkpoint covering its entry.
pub const RECEIPT_CHECKPOINT_WAIT: Duration = Duration::from_secs(2);
/// Retry-After, in seconds, when a checkpoint or the log is not there yet.
pub const RETRY_AFTER_SECS: u64 = 2;
/// Retry-After of `/readyz` before the log's first probe answered, in seconds.
pub const RETRY_STARTING_SECS: u64 = 1;

/// Every route [`router`] serves: (method, axum path). The OpenAPI description in
/// `schemas/openapi.json` is tested to describe each one.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/events"),
    ("GET", "/v1/events/{id}"),
    ("GET", "/v1/funds"),
    ("GET", "/v1/funds/{fund}"),
    ("GET", "/v1/funds/{fund}/proposals"),
    ("GET", "/v1/funds/{fund}/proposals/{id}"),
    ("GET", "/v1/funds/{fund}/donations"),
    ("GET", "/v1/donations/{id}/trace"),
    ("GET", "/v1/funds/{fund}/accounts"),
    ("GET", "/v1/receipts/{id}"),
    ("GET", "/v1/keys"),
    ("GET", "/v1/keys/{key}"),
    ("GET", "/v1/stream"),
    ("GET", "/v1/ledger/proof"),
    ("GET", "/v1/ledger/consistency"),
    ("GET", "/ledger/checkpoint"),
    ("GET", "/ledger/vkey"),
    ("GET", "/ledger/tile/entries/{*n}"),
    ("GET", "/ledger/tile/{level}/{*n}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    service: Arc<Service>,
    metrics: Metrics,
    /// Checks the latest checkpoint before anything is served from it.
    verifier: LogVerifier,
    streams: Arc<Semaphore>,
    shed: limits::Shed,
    stop: watch::Sender<bool>,
    /// The witness policy (C2SP tlog-policy) the portal's page pins, when the operator gave one.
    witness_policy: std::sync::OnceLock<String>,
}

impl AppState {
    /// The state over a running service, with the default [`Limits`].
    pub fn new(service: Arc<Service>) -> AppState {
        AppState::with_limits(service, Limits::default())
    }

    /// The state over a running service. Panics if a limit is out of range
    /// ([`Limits::check`] says which): check them where they are read.
    pub fn with_limits(service: Arc<Service>, limits: Limits) -> AppState {
        if let Err(e) = limits.check() {
            panic!("{e}");
        }
        let verifier = LogVerifier::from_vkey(&service.read.vkey).expect("the service's own vkey parses");
        let (stop, _) = watch::channel(false);
        let streams = Arc::new(Semaphore::new(limits.streams_max));
        let inner = Inner {
            service,
            metrics: Metrics::new(),
            verifier,
            streams,
            shed: limits::Shed::new(limits),
            stop,
            witness_policy: std::sync::OnceLock::new(),
        };
        AppState { inner: Arc::new(inner) }
    }

    /// The limits this state sheds load with.
    pub fn limits(&self) -> Limits {
        self.inner.shed.limits
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.inner.service
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Pins a witness policy (C2SP tlog-policy text) in the portal's page, whose checks then
    /// enforce it in the browser. Refused when it does not parse, does not list this log,
    /// or a policy is pinned already.
    pub fn pin_witness_policy(&self, text: &str) -> Result<(), String> {
        let policy = fundtrail_ledger::Policy::parse(text.as_bytes()).map_err(|e| e.to_string())?;
        if policy.log(self.inner.verifier.name()).is_none() {
            return Err(format!("the witness policy lists no log named {}", self.inner.verifier.name()));
        }
        self.inner.witness_policy.set(text.to_owned()).map_err(|_| "a witness policy is pinned already".to_owned())
    }

    /// The witness policy pinned in the portal's page, if any.
    pub fn witness_policy(&self) -> Option<&str> {
        self.inner.witness_policy.get().map(String::as_str)
    }

    /// Ends every open live feed and refuses new ones, so that a graceful shutdown
    /// is not held open by them.
    pub fn begin_shutdown(&self) {
        self.inner.stop.send_replace(true);
    }

    fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    /// The latest signed checkpoint: its note and its parsed, verified body.
    fn latest_checkpoint(&self) -> Option<(Arc<Vec<u8>>, Checkpoint)> {
        let note = self.inner.service.read.checkpoint()?;
        let checkpoint = self.checked(&note)?;
        Some((note, checkpoint))
    }

    /// The log's verifier key, pinned in the portal's page.
    fn vkey(&self) -> String {
        self.inner.verifier.vkey()
    }

    pub(crate) fn checked(&self, note: &[u8]) -> Option<Checkpoint> {
        match self.inner.verifier.verify_checkpoint(note) {
            Ok(c) => Some(c),
            Err(e) => {
                // Our own checkpoint failing our own key is a bug upstream: say so, serve nothing.
                tracing::error!(error = %e, "the latest checkpoint does not verify with the log key");
                None
            }
        }
    }
}

/// The whole HTTP API over `state`.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route(
            "/v1/events",
            post(submit::submit).route_layer(middleware::from_fn_with_state(state.clone(), limits::gate_submissions)),
        )
        .route("/v1/events/{id}", get(reads::event))
        .route("/v1/funds", get(reads::funds))
        .route("/v1/funds/{fund}", get(reads::fund))
        .route("/v1/funds/{fund}/proposals", get(reads::proposals))
        .route("/v1/funds/{fund}/proposals/{id}", get(reads::proposal))
        .route("/v1/funds/{fund}/donations", get(reads::donations))
        .route("/v1/donations/{id}/trace", get(reads::trace))
        .route("/v1/funds/{fund}/accounts", get(reads::accounts))
        .route("/v1/receipts/{id}", get(ledger::receipt))
        .route("/v1/keys", get(reads::keys))
        .route("/v1/keys/{key}", get(reads::key))
        .route("/v1/stream", get(stream::stream))
        .route("/v1/ledger/proof", get(ledger::proof))
        .route("/v1/ledger/consistency", get(ledger::consistency))
        .route("/ledger/checkpoint", get(ledger::checkpoint))
        .route("/ledger/checkpoint/pending", get(ledger::pending_checkpoint))
        .route("/ledger/vkey", get(ledger::vkey))
        .route("/ledger/tile/entries/{*n}", get(ledger::entries_tile))
        .route("/ledger/tile/{level}/{*n}", get(ledger::hash_tile))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .route("/", get(portal::index))
        .route("/index.html", get(portal::index))
        .route("/app.js", get(portal::asset))
        .route("/worker.js", get(portal::asset))
        .route("/style.css", get(portal::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(compression())
        .layer(public_reads())
        .layer(tower_http::trace::TraceLayer::new_for_http());
    router.with_state(state)
}

/// The private donor vault API (see [`vault`]): `/private/v1/donors…` over `vault`,
/// with each donor's donations from `service`'s read model. Personal data: never
/// merge it into [`router`] or serve it on the public listener — give it its own
/// listener bound to loopback or an internal network only
/// ([`vault::serve_private`]).
pub fn private_router(
    vault: fundtrail_service::vault::DonorVault,
    service: Arc<Service>,
    token: vault::BearerToken,
) -> Router {
    vault::router(vault, service, token)
}

/// Everything readable is public: any web page may read it (a donor checks a
/// receipt in a page trusting nobody, a mirror copies the ledger). Writing is not
/// opened to other origins' pages.
fn public_reads() -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD])
        .expose_headers([header::RETRY_AFTER, header::LOCATION])
}

/// Marks a response that compression would only make bigger (hash tiles: SHA-256 output).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Incompressible;

/// gzip and Brotli (quality 4, tower-http's default, as NGINX uses on the fly) for
/// clients that accept them. tower-http's default predicate already leaves out
/// `text/event-stream` (an SSE event must not wait in an encoder's buffer), images,
/// gRPC, bodies under 32 bytes and answers that carry a `Content-Encoding` (the
/// portal's precompressed scripts); hash tiles are left out here.
pub fn compression() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{DefaultPredicate, Predicate};
    let predicate = DefaultPredicate::new().and(
        |_: StatusCode, _: axum::http::Version, _: &axum::http::HeaderMap, extensions: &axum::http::Extensions| {
            extensions.get::<Incompressible>().is_none()
        },
    );
    tower_http::compression::CompressionLayer::new().no_deflate().no_zstd().compress_when(predicate)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then ends the
/// live feeds and waits for the other responses to finish. At most
/// [`Limits::connections_max`] connections are open at once ([`CappedListener`]),
/// and each request knows its connection ([`Peer`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits();
    let listener = CappedListener::new(listener, limits.connections_max, state.inner.shed.budgets.clone());
    let app = router(state.clone()).into_make_service_with_connect_info::<Peer>();
    let signal = async move {
        shutdown.await;
        state.begin_shutdown();
    };
    axum::serve(listener, app).with_graceful_shutdown(signal).await
}

/// Counts every answer by route and status, and bounds the time to answer.
async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = answer_in_time(request, next).await;
    app.metrics().count_request(&method, &route, response.status().as_u16());
    response
}

/// Runs the rest of the stack, or answers 503 "timeout" after [`REQUEST_TIMEOUT`]
/// (both listeners, public and private, bound their answers this way).
pub(crate) async fn answer_in_time(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", REQUEST_TIMEOUT.as_secs()),
        )
        .retry_after(RETRY_AFTER_SECS)
        .into_response(),
    }
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n")
}

/// From what the process knows (the log's last probe, the projections'
/// position): no network call, so it answers at once even while NATS is down.
async fn readyz(State(app): State<AppState>) -> Response {
    use fundtrail_service::health::Readiness;
    match app.service().readiness() {
        Readiness::Ready => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ready\n").into_response(),
        Readiness::Starting => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "starting", "the event log has not been reached yet")
                .retry_after(RETRY_STARTING_SECS)
                .into_response()
        }
        Readiness::CatchingUp { applied, last_seq } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "catching-up",
            format!("the projections have applied the log up to sequence {applied} of {last_seq} and are catching up"),
        )
        .retry_after(RETRY_AFTER_SECS)
        .into_response(),
        Readiness::LogUnreachable { cause, for_secs } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the event log has not answered for {for_secs} s: {cause}"),
        )
        .retry_after(problem::RETRY_UNAVAILABLE_SECS)
        .into_response(),
    }
}

async fn not_found(request: Request) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", format!("no route {}", request.uri().path()))
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}
