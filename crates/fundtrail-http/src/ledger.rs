//! The public ledger over HTTP: the C2SP `tlog-tiles` layout under `/ledger/`
//! (`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`), the log's
//! vkey, and as JSON inclusion and consistency proofs and donors' receipts
//! (C2SP `tlog-proof`).
//!
//! The checkpoint served is the read model's: the newest signed one, or when the
//! service has witnesses the newest one a quorum of them cosigned (C2SP
//! tlog-witness; the cosignatures are signed-note signature lines). Newer signed
//! checkpoints still waiting for a quorum are at `/ledger/checkpoint/pending`,
//! which is not part of tlog-tiles and which no verifier should trust.
//!
//! Tiles are served only within the served checkpoint: a tile of width `W`
//! at level `L`, number `N` is served once the checkpoint's tree has all its
//! hashes, `(N·256 + W)·256^L ≤ size`. That includes a narrower partial tile than
//! the right edge's (its bytes are a prefix of the wider one's: tiles only grow),
//! so every tile path ever served keeps its bytes forever — hence the immutable
//! cache headers. Anything beyond the checkpoint is 404, as the spec asks.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use fundtrail_ledger::tiles::{encode_entry_bundle, read_tile, TILE_LEVEL_MAX};
use fundtrail_ledger::{build_receipt, prove_consistency, prove_inclusion, Checkpoint, Hash, Tile, TileKind};
use serde::{Deserialize, Serialize};

use crate::reads::{event_id, internal, open_stored, path, query};
use crate::{AppState, Problem, RECEIPT_CHECKPOINT_WAIT, RETRY_AFTER_SECS};

/// Cache-Control of the checkpoint: it changes as the log grows.
pub const CHECKPOINT_CACHE: &str = "no-cache";
/// Cache-Control of tiles and entry bundles: a path's bytes never change.
pub const TILE_CACHE: &str = "public, max-age=31536000, immutable";

/// The latest checkpoint, or a 503 problem saying none is signed yet.
fn latest(app: &AppState) -> Result<(std::sync::Arc<Vec<u8>>, Checkpoint), Problem> {
    app.latest_checkpoint().ok_or_else(|| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "checkpoint-pending", "no checkpoint is signed yet")
            .retry_after(RETRY_AFTER_SECS)
    })
}

fn text(body: impl Into<axum::body::Body>, cache: &'static str) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

pub(crate) async fn checkpoint(State(app): State<AppState>) -> Response {
    match app.latest_checkpoint() {
        Some((note, _)) => text(note.to_vec(), CHECKPOINT_CACHE),
        None if app.service().read.cosign_status().is_some() => {
            Problem::not_found("no checkpoint has a witness quorum yet").into_response()
        }
        None => Problem::not_found("no checkpoint is signed yet").into_response(),
    }
}

/// The newest signed checkpoint, cosigned or not: with witnesses it may be newer
/// than `/ledger/checkpoint` (waiting for a quorum), for operators to see the delay.
pub(crate) async fn pending_checkpoint(State(app): State<AppState>) -> Response {
    match app.service().read.signed_checkpoint() {
        Some(note) if app.checked(&note).is_some() => text(note.to_vec(), CHECKPOINT_CACHE),
        Some(_) => internal("the newest signed checkpoint does not verify".into()).into_response(),
        None => Problem::not_found("no checkpoint is signed yet").into_response(),
    }
}

pub(crate) async fn vkey(State(app): State<AppState>) -> Response {
    text(format!("{}\n", app.service().read.vkey), "public, max-age=3600")
}

// ---------------------------------------------------------------------------
// tiles

/// Whether the tree of `size` leaves has every hash (or entry) of `tile`.
fn covered(tile: &Tile, size: u64) -> bool {
    let level = match tile.kind {
        TileKind::Hashes { level } => level,
        TileKind::Entries => 0,
    };
    if level > TILE_LEVEL_MAX {
        return false;
    }
    let Some(end) = tile.n.checked_mul(256).and_then(|s| s.checked_add(u64::from(tile.width))) else {
        return false;
    };
    // (N·256 + W)·256^L ≤ size, without overflow.
    end <= size >> (8 * u32::from(level))
}

fn tile_response(bytes: Vec<u8>, compressible: bool) -> Response {
    let mut response = Response::new(axum::body::Body::from(bytes));
    if !compressible {
        response.extensions_mut().insert(crate::Incompressible);
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(TILE_CACHE));
    response
}

/// The tile at `tile/<rest>`, if the latest checkpoint covers it.
fn serve_tile(app: &AppState, rest: &str) -> Result<Response, Problem> {
    let tile_path = format!("tile/{rest}");
    let tile = Tile::parse(&tile_path).map_err(|e| Problem::not_found(e.to_string()))?;
    let (_, checkpoint) = app.latest_checkpoint().ok_or_else(|| Problem::not_found("no checkpoint is signed yet"))?;
    if !covered(&tile, checkpoint.size) {
        return Err(Problem::not_found(format!(
            "{tile_path} is not covered by the latest checkpoint (tree size {})",
            checkpoint.size
        )));
    }
    let read = &app.service().read;
    let compressible = matches!(tile.kind, TileKind::Entries);
    let bytes = match tile.kind {
        TileKind::Hashes { .. } => {
            read_tile(&tile, &read.hashes()).map_err(|e| internal(format!("{tile_path}: {e}")))?
        }
        TileKind::Entries => {
            let start = tile.n * 256;
            let entries = read
                .entries(start, u64::from(tile.width))
                .map_err(|e| internal(format!("{tile_path}: {e}")))?
                .ok_or_else(|| internal(format!("{tile_path}: entries are missing")))?;
            encode_entry_bundle(&entries).map_err(|e| internal(format!("{tile_path}: {e}")))?
        }
    };
    Ok(tile_response(bytes, compressible))
}

pub(crate) async fn hash_tile(
    State(app): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, Problem> {
    let (level, n) = path(p)?;
    serve_tile(&app, &format!("{level}/{n}"))
}

pub(crate) async fn entries_tile(
    State(app): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let n = path(p)?;
    serve_tile(&app, &format!("entries/{n}"))
}

// ---------------------------------------------------------------------------
// proofs

fn b64_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_base64).collect()
}

#[derive(Deserialize)]
pub(crate) struct ProofQuery {
    index: u64,
    size: Option<u64>,
}

/// An inclusion proof for entry `index` in the tree of `size` leaves.
#[derive(Serialize)]
pub(crate) struct InclusionProof {
    index: u64,
    size: u64,
    /// The entry's leaf hash, base64.
    leaf_hash: String,
    /// RFC 9162 audit path, base64, from the leaf up.
    proof: Vec<String>,
    /// The latest signed checkpoint (its size may be larger than `size`).
    checkpoint: String,
}

fn checked_size(asked: Option<u64>, checkpoint: &Checkpoint) -> Result<u64, Problem> {
    let size = asked.unwrap_or(checkpoint.size);
    if size > checkpoint.size {
        return Err(Problem::not_found(format!(
            "tree size {size} is beyond the latest checkpoint (size {})",
            checkpoint.size
        )));
    }
    Ok(size)
}

pub(crate) async fn proof(
    State(app): State<AppState>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Answer<InclusionProof> {
    let q = query(q)?;
    let (note, cp) = latest(&app)?;
    let size = checked_size(q.size, &cp)?;
    if q.index >= size {
        return Err(Problem::not_found(format!("index {} is not in the tree of size {size}", q.index)));
    }
    let read = &app.service().read;
    let entry = read
        .entry(q.index)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| internal(format!("entry {} is missing", q.index)))?;
    let proof = prove_inclusion(size, q.index, &read.hashes()).map_err(|e| internal(e.to_string()))?;
    Ok(Json(InclusionProof {
        index: q.index,
        size,
        leaf_hash: fundtrail_ledger::leaf_hash(&entry).to_base64(),
        proof: b64_hashes(&proof),
        checkpoint: String::from_utf8_lossy(&note).into_owned(),
    }))
}

type Answer<T> = Result<Json<T>, Problem>;

#[derive(Deserialize)]
pub(crate) struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct ConsistencyProof {
    from: u64,
    to: u64,
    /// RFC 9162 consistency proof, base64; empty when `from` is 0 or equals `to`.
    proof: Vec<String>,
    checkpoint: String,
}

pub(crate) async fn consistency(
    State(app): State<AppState>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Answer<ConsistencyProof> {
    let q = query(q)?;
    let (note, cp) = latest(&app)?;
    let to = checked_size(q.to, &cp)?;
    if q.from > to {
        return Err(Problem::bad_request("query", format!("from {} is larger than to {to}", q.from)));
    }
    let proof = prove_consistency(q.from, to, &app.service().read.hashes()).map_err(|e| internal(e.to_string()))?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to,
        proof: b64_hashes(&proof),
        checkpoint: String::from_utf8_lossy(&note).into_owned(),
    }))
}

// ---------------------------------------------------------------------------
// receipts

/// A donor's receipt for a donation: the entry and its C2SP tlog-proof (without the
/// salt: the donor's own copy adds it as the `extra` line).
#[derive(Serialize)]
pub(crate) struct ReceiptAnswer {
    id: String,
    index: u64,
    /// The ledger entry bytes, base64.
    entry: String,
    /// The tlog-proof text.
    receipt: String,
}

/// Event types a receipt is given for.
const RECEIPT_TYPES: [&str; 2] = ["donation.received", "goods.received"];

pub(crate) async fn receipt(
    State(app): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<ReceiptAnswer>, Problem> {
    let id = event_id(&path(p)?)?;
    let read = &app.service().read;
    let seq = read.event_seq(&id).ok_or_else(|| Problem::not_found(format!("unknown event {id}")))?;
    let index = seq - 1;
    let entry = read
        .entry(index)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| internal(format!("entry {index} is missing")))?;
    let decoded = fundtrail_ledger::decode_entry(&entry).map_err(|e| internal(format!("entry {index}: {e}")))?;
    let type_name =
        open_stored(decoded.envelope).map(|(_, event)| event["type"].as_str().unwrap_or_default().to_owned());
    if !type_name.as_deref().is_some_and(|t| RECEIPT_TYPES.contains(&t)) {
        return Err(Problem::not_found(format!("event {id} is not a donation: receipts are for {RECEIPT_TYPES:?}")));
    }
    let note = read.wait_checkpoint(seq, RECEIPT_CHECKPOINT_WAIT).await.ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "checkpoint-pending",
            format!("no signed checkpoint covers entry {index} yet"),
        )
        .retry_after(RETRY_AFTER_SECS)
    })?;
    let cp = app.checked(&note).ok_or_else(|| internal("the checkpoint does not verify".into()))?;
    assert!(cp.size > index, "wait_checkpoint answers a checkpoint covering the entry");
    let proof = prove_inclusion(cp.size, index, &read.hashes()).map_err(|e| internal(e.to_string()))?;
    let receipt = build_receipt(index, proof, &note, None);
    Ok(Json(ReceiptAnswer {
        id: id.to_string(),
        index,
        entry: B64.encode(&entry),
        receipt: String::from_utf8(receipt).map_err(|_| internal("receipt is not UTF-8".into()))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_is_served_only_within_the_checkpoint() {
        assert!(covered(&Tile::hashes(0, 0, 5), 5));
        assert!(covered(&Tile::hashes(0, 0, 3), 5), "a narrower partial tile is a prefix");
        assert!(!covered(&Tile::hashes(0, 0, 6), 5));
        assert!(!covered(&Tile::hashes(0, 0, 256), 255));
        assert!(covered(&Tile::hashes(0, 0, 256), 256));
        assert!(covered(&Tile::entries(1, 1), 257));
        assert!(!covered(&Tile::hashes(1, 0, 1), 255), "level 1 needs a full level-0 tile");
        assert!(covered(&Tile::hashes(1, 0, 1), 256));
        assert!(!covered(&Tile::hashes(8, 0, 1), u64::MAX));
        assert!(!covered(&Tile::hashes(0, u64::MAX / 2, 1), u64::MAX));
    }
}
