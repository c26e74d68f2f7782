//! The private donor vault API ([`crate::private_router`]): who stands behind a
//! donor commitment, and the right to be forgotten.
//!
//! | route | answer |
//! |---|---|
//! | `PUT /private/v1/donors/{commitment}` | store a record (JSON, salt in base64): 201 new, 200 identical |
//! | `GET /private/v1/donors/{commitment}` | the record (or its tombstone) and the donor's donations |
//! | `DELETE /private/v1/donors/{commitment}` | erase: 200 with the tombstone, the same one every time |
//! | `GET /private/v1/donors?after=&limit=` | records and tombstones in commitment order |
//!
//! **Authenticated:** every request carries `Authorization: Bearer <token>`, the
//! token `serve` reads from `--private-token-file` (it refuses to start the
//! private listener without one); network placement is not authentication.
//!
//! **Never mount this on the public listener**: serve it on its own listener bound
//! to loopback or an internal network only (`fundtrail serve --private-listen`).
//! It has no CORS (no web page elsewhere may read it), and every answer is
//! `Cache-Control: no-store`. Errors are `application/problem+json` as on the
//! public API:
//!
//! | status | codes |
//! |---|---|
//! | 400 | `commitment`, `json`, `base64`, `salt-length`, `query` |
//! | 401 | `unauthenticated` (no or another bearer token; see [`BearerToken`]) |
//! | 404 | `not-found` |
//! | 409 | `donor-conflict` (held with other content), `erased` (erased donors are never stored again) |
//! | 413 | `too-large` (body over [`PRIVATE_BODY_BYTES_MAX`]) |
//! | 415 | `media-type` |
//! | 422 | `commitment-mismatch`, `field-too-long`, `empty-reference` |
//! | 500 | `vault-corrupt` |
//! | 503 | `unavailable`, `timeout` |

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use fundtrail_domain::Sha256Hex;
use fundtrail_service::vault::{DonorRecord, DonorVault, Put, VaultEntry, VaultError, LIST_LIMIT_MAX, SALT_BYTES};
use fundtrail_service::views::DonationView;
use fundtrail_service::Service;
use serde::{Deserialize, Serialize};

use crate::problem::RETRY_UNAVAILABLE_SECS;
use crate::reads::{path, query};
use crate::{Problem, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};

/// Largest request body: a donor record is well under 2 KiB (three 200-character
/// fields of up to 4 bytes each, a 64-digit commitment, a 44-character salt).
pub const PRIVATE_BODY_BYTES_MAX: usize = 4 * 1024;

/// Every route the private router serves: (method, axum path).
pub const PRIVATE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/private/v1/donors"),
    ("PUT", "/private/v1/donors/{commitment}"),
    ("GET", "/private/v1/donors/{commitment}"),
    ("DELETE", "/private/v1/donors/{commitment}"),
];

const _: () = assert!(PAGE_LIMIT_MAX <= LIST_LIMIT_MAX, "an HTTP page fits in one vault page");

#[derive(Clone)]
struct Private {
    vault: DonorVault,
    service: Arc<Service>,
}

type Answer<T> = Result<T, Problem>;

/// The private listener's bearer token (`Authorization: Bearer <token>`): every
/// request must carry it; compared in constant time. Its `Debug` never shows it.
#[derive(Clone)]
pub struct BearerToken(Arc<[u8]>);

/// Shortest token accepted: 32 characters (e.g. 16 random bytes in hex).
pub const BEARER_TOKEN_CHARS_MIN: usize = 32;
/// Longest token accepted.
pub const BEARER_TOKEN_CHARS_MAX: usize = 1024;

impl BearerToken {
    /// A token of printable ASCII without spaces, [`BEARER_TOKEN_CHARS_MIN`] to
    /// [`BEARER_TOKEN_CHARS_MAX`] characters. The error never repeats it.
    pub fn new(token: &str) -> Result<BearerToken, String> {
        let n = token.len();
        if !(BEARER_TOKEN_CHARS_MIN..=BEARER_TOKEN_CHARS_MAX).contains(&n) {
            return Err(format!(
                "the private API token has {n} characters; it needs {BEARER_TOKEN_CHARS_MIN} to {BEARER_TOKEN_CHARS_MAX}"
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the private API token must be printable ASCII without spaces".into());
        }
        Ok(BearerToken(token.as_bytes().into()))
    }

    /// Whether `presented` is the token (constant time in its content).
    fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        presented.len() == self.0.len() && bool::from(self.0.ct_eq(presented))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// Refuses (401, `WWW-Authenticate: Bearer`) any request without the token.
async fn authenticate(State(token): State<BearerToken>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(|t| t.trim_ascii());
    match presented {
        Some(t) if token.matches(t) => next.run(request).await,
        _ => {
            let mut response = Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the private donor vault API needs its bearer token (Authorization: Bearer <token>)",
            )
            .into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

pub(crate) fn router(vault: DonorVault, service: Arc<Service>, token: BearerToken) -> Router {
    Router::new()
        .route("/private/v1/donors", get(list))
        .route("/private/v1/donors/{commitment}", get(read).put(store).delete(erase))
        .fallback(crate::not_found)
        .method_not_allowed_fallback(crate::method_not_allowed)
        .layer(middleware::from_fn_with_state(token, authenticate))
        .layer(middleware::from_fn(private_answer))
        .layer(DefaultBodyLimit::max(PRIVATE_BODY_BYTES_MAX))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(Private { vault, service })
}

/// Serves [`crate::private_router`] on `listener` until `shutdown` completes.
/// Bind `listener` to loopback or an internal network only.
pub async fn serve_private(
    listener: tokio::net::TcpListener,
    vault: DonorVault,
    service: Arc<Service>,
    token: BearerToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(vault, service, token)).with_graceful_shutdown(shutdown).await
}

/// Bounds the time to answer, and keeps every answer out of caches.
async fn private_answer(request: Request, next: Next) -> Response {
    let mut response = crate::answer_in_time(request, next).await;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------
// wire forms

/// A donor record as sent: the salt in standard base64 (32 bytes). `commitment`
/// may be omitted; when present it must equal the path's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DonorBody {
    commitment: Option<String>,
    salt: String,
    reference: String,
    name: Option<String>,
    contact: Option<String>,
    /// Absent means no consent.
    #[serde(default)]
    consent_public_thanks: bool,
}

/// A record, or the tombstone an erasure left.
#[derive(Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum DonorView {
    Held {
        commitment: Sha256Hex,
        salt: String,
        reference: String,
        name: Option<String>,
        contact: Option<String>,
        consent_public_thanks: bool,
    },
    Erased {
        commitment: Sha256Hex,
        erased_at: DateTime<Utc>,
    },
}

impl From<VaultEntry> for DonorView {
    fn from(entry: VaultEntry) -> DonorView {
        match entry {
            VaultEntry::Held(r) => DonorView::Held {
                commitment: r.commitment,
                salt: B64.encode(r.salt),
                reference: r.reference,
                name: r.name,
                contact: r.contact,
                consent_public_thanks: r.consent_public_thanks,
            },
            VaultEntry::Erased(e) => DonorView::Erased { commitment: e.commitment, erased_at: e.erased_at },
        }
    }
}

#[derive(Serialize)]
struct DonorDetail {
    #[serde(flatten)]
    donor: DonorView,
    /// Every donation made under the commitment (the public ledger's view of it).
    donations: Vec<DonationView>,
}

#[derive(Serialize)]
struct DonorsPage {
    donors: Vec<DonorView>,
    /// Pass as `after` for the next page; absent at the end.
    next_after: Option<Sha256Hex>,
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

// ---------------------------------------------------------------------------
// handlers

async fn store(
    State(app): State<Private>,
    p: Result<Path<String>, PathRejection>,
    body: Result<Json<Box<serde_json::value::RawValue>>, JsonRejection>,
) -> Answer<Response> {
    let commitment = commitment(&path(p)?)?;
    let Json(body) = body.map_err(json_problem)?;
    let body = donor_body(&body)?;
    let record = record(commitment, body)?;
    let vault = app.vault.clone();
    let stored = record.clone();
    let outcome = blocking(move || vault.put(&stored)).await?;
    let status = match outcome {
        Put::Created => StatusCode::CREATED,
        Put::Unchanged => StatusCode::OK,
    };
    Ok((status, Json(DonorView::from(VaultEntry::Held(record)))).into_response())
}

async fn read(State(app): State<Private>, p: Result<Path<String>, PathRejection>) -> Answer<Json<DonorDetail>> {
    let commitment = commitment(&path(p)?)?;
    let vault = app.vault.clone();
    let wanted = commitment.clone();
    let entry = blocking(move || vault.get(&wanted)).await?.ok_or_else(|| unknown(&commitment))?;
    debug_assert_eq!(entry.commitment(), &commitment);
    // A walk of every fund's gifts in the published state: off the async workers.
    let (read, donor) = (app.service.read.clone(), commitment.clone());
    let donations = blocking(move || Ok(read.donor(&donor))).await?;
    debug_assert!(donations.iter().all(|d| d.donor == commitment));
    Ok(Json(DonorDetail { donor: entry.into(), donations }))
}

async fn erase(State(app): State<Private>, p: Result<Path<String>, PathRejection>) -> Answer<Json<DonorView>> {
    let commitment = commitment(&path(p)?)?;
    let vault = app.vault.clone();
    let erased = blocking(move || vault.erase(&commitment)).await?;
    tracing::info!(commitment = %erased.commitment, erased_at = %erased.erased_at, "donor erased");
    Ok(Json(VaultEntry::Erased(erased).into()))
}

async fn list(State(app): State<Private>, q: Result<Query<ListQuery>, QueryRejection>) -> Answer<Json<DonorsPage>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if limit == 0 || limit > PAGE_LIMIT_MAX {
        return Err(Problem::bad_request("query", format!("limit {limit} is outside 1..={PAGE_LIMIT_MAX}")));
    }
    let after = q.after.as_deref().map(commitment).transpose()?;
    let vault = app.vault.clone();
    let page = blocking(move || vault.list(after.as_ref(), limit)).await?;
    let donors: Vec<DonorView> = page.entries.into_iter().map(DonorView::from).collect();
    assert!(donors.len() <= limit);
    Ok(Json(DonorsPage { donors, next_after: page.next_after }))
}

// ---------------------------------------------------------------------------
// helpers

fn commitment(text: &str) -> Result<Sha256Hex, Problem> {
    Sha256Hex::new(text).map_err(|e| Problem::bad_request("commitment", format!("donor commitment {text:?}: {e}")))
}

fn unknown(commitment: &Sha256Hex) -> Problem {
    Problem::not_found(format!("no donor record for commitment {commitment}"))
}

/// The record a body describes under the path's commitment; the vault checks the rest.
fn record(commitment: Sha256Hex, body: DonorBody) -> Result<DonorRecord, Problem> {
    if let Some(stated) = &body.commitment {
        if stated != &*commitment.to_text() {
            let detail = format!("body commitment {stated:?} differs from the path's {commitment}");
            return Err(Problem::bad_request("commitment", detail));
        }
    }
    let salt = B64
        .decode(&body.salt)
        .map_err(|e| Problem::bad_request("base64", format!("salt is not standard base64: {e}")))?;
    let salt: [u8; SALT_BYTES] = salt.try_into().map_err(|s: Vec<u8>| {
        Problem::bad_request("salt-length", format!("salt is {} bytes; a commitment salt is {SALT_BYTES}", s.len()))
    })?;
    Ok(DonorRecord {
        commitment,
        salt,
        reference: body.reference,
        name: body.name,
        contact: body.contact,
        consent_public_thanks: body.consent_public_thanks,
    })
}

/// The record in a request body, which must be a JSON object (serde alone would also
/// read the struct from an array of its fields), each field once and none unknown.
fn donor_body(raw: &serde_json::value::RawValue) -> Result<DonorBody, Problem> {
    if !raw.get().trim_start().starts_with('{') {
        return Err(Problem::bad_request("json", "a donor record is a JSON object"));
    }
    serde_json::from_str(raw.get()).map_err(|e| Problem::bad_request("json", e.to_string()))
}

fn json_problem(rejection: JsonRejection) -> Problem {
    let detail = rejection.body_text();
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("a donor record is at most {PRIVATE_BODY_BYTES_MAX} bytes: {detail}"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "media-type", detail),
        _ => Problem::bad_request("json", detail),
    }
}

/// Runs a vault call (it waits for the disk) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, VaultError> + Send + 'static) -> Answer<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| vault_problem(&e)),
        Err(e) => Err(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("vault task: {e}"))),
    }
}

fn vault_problem(error: &VaultError) -> Problem {
    use VaultError as E;
    let detail = error.to_string();
    match error {
        E::CommitmentMismatch { .. } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "commitment-mismatch", detail),
        E::FieldTooLong { .. } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "field-too-long", detail),
        E::EmptyReference => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "empty-reference", detail),
        E::Conflict { .. } => Problem::new(StatusCode::CONFLICT, "donor-conflict", detail),
        E::AlreadyErased { .. } => Problem::new(StatusCode::CONFLICT, "erased", detail),
        E::Unknown { .. } => Problem::not_found(detail),
        E::Limit { .. } => Problem::bad_request("query", detail),
        E::Corrupt { .. } => {
            tracing::error!(error = %error, "the donor vault holds a corrupt entry");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "vault-corrupt", detail)
        }
        E::Storage(_) | E::Directory { .. } => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retry_after(RETRY_UNAVAILABLE_SECS)
        }
    }
}
