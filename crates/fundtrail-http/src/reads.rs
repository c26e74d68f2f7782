//! The read routes: funds, proposals, donations, events, keys. Everything comes
//! from the read model's views and the fold's state snapshot; the compliance
//! figures are the domain's, at the service clock's `now`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Datelike, Utc};
use fundtrail_domain::compliance::{
    annual_report_due, cost_ratios, disclosures_due, AnnualReportDue, CostRatios, DisclosureDue,
};
use fundtrail_domain::{EventId, Fen, FundId, KeyId, ProposalId};
use fundtrail_service::views::{DonationView, FundView, KeyView, ProposalView};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AppState, Problem, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};

pub(crate) type Answer<T> = Result<Json<T>, Problem>;

/// A path parameter, or a 400 problem naming it.
pub(crate) fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    p.map(|Path(v)| v).map_err(|e| Problem::bad_request("path", e.body_text()))
}

/// Query parameters, or a 400 problem naming the bad one.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(v)| v).map_err(|e| Problem::bad_request("query", e.body_text()))
}

pub(crate) fn fund_id(text: &str) -> Result<FundId, Problem> {
    FundId::new(text).map_err(|e| Problem::bad_request("fund-id", format!("fund id {text:?}: {e}")))
}

pub(crate) fn event_id(text: &str) -> Result<EventId, Problem> {
    EventId::new(text).map_err(|e| Problem::bad_request("event-id", format!("event id {text:?}: {e}")))
}

fn unknown_fund(fund: &FundId) -> Problem {
    Problem::not_found(format!("unknown fund {fund}"))
}

// ---------------------------------------------------------------------------
// funds

#[derive(Serialize)]
pub(crate) struct FundsPage {
    funds: Vec<FundView>,
}

pub(crate) async fn funds(State(app): State<AppState>) -> Answer<FundsPage> {
    let mut funds = app.service().read.funds();
    funds.retain(|f| !f.fund.is_host());
    Ok(Json(FundsPage { funds }))
}

/// A fund with what it owes the public now.
#[derive(Serialize)]
pub(crate) struct FundDetail {
    #[serde(flatten)]
    view: FundView,
    compliance: Compliance,
}

#[derive(Serialize)]
struct Compliance {
    /// The service clock's time the figures were computed at.
    as_of: DateTime<Utc>,
    disclosures_due: Vec<DisclosureDue>,
    annual_report: AnnualReportDue,
    cost_ratios: Ratios,
}

#[derive(Serialize)]
struct Ratios {
    current_year: CostRatios,
    last_year: CostRatios,
}

pub(crate) async fn fund(State(app): State<AppState>, p: Result<Path<String>, PathRejection>) -> Answer<FundDetail> {
    let id = fund_id(&path(p)?)?;
    let service = app.service();
    // One state for the view and the compliance figures: both of one position.
    let state = service.read.state();
    let view = fundtrail_service::views::fund_view(&state, &id).ok_or_else(|| unknown_fund(&id))?;
    let fund = state.funds.get(&id).ok_or_else(|| unknown_fund(&id))?;
    let now = service.clock.now();
    let compliance = Compliance {
        as_of: now,
        disclosures_due: disclosures_due(fund, now),
        annual_report: annual_report_due(&state, fund, now),
        cost_ratios: Ratios {
            current_year: cost_ratios(fund, now.year()),
            last_year: cost_ratios(fund, now.year() - 1),
        },
    };
    Ok(Json(FundDetail { view, compliance }))
}

// ---------------------------------------------------------------------------
// proposals

/// A proposal with where its money went, step by step.
#[derive(Serialize)]
pub(crate) struct ProposalDetail {
    #[serde(flatten)]
    view: ProposalView,
    money_trail: Vec<TrailStep>,
}

/// One step of a proposal's money: requested → approved (reserved) → paid … → closed
/// (the unspent remainder released). Payouts name their event and ledger entry.
#[derive(Serialize)]
struct TrailStep {
    step: &'static str,
    amount_fen: Fen,
    at: DateTime<Utc>,
    event: Option<EventId>,
    ledger_index: Option<u64>,
}

fn money_trail(app: &AppState, p: &ProposalView) -> Vec<TrailStep> {
    let step = |step, amount_fen, at| TrailStep { step, amount_fen, at, event: None, ledger_index: None };
    let mut trail = vec![step("requested", p.requested_fen, p.submitted_at)];
    if let Some(at) = p.approved_at {
        trail.push(step("approved", p.approved_fen, at));
    }
    for payout in &p.payouts {
        let seq = app.service().read.event_seq(&payout.event);
        trail.push(TrailStep {
            step: "paid",
            amount_fen: payout.amount,
            at: payout.paid_at,
            event: Some(payout.event.clone()),
            ledger_index: seq.map(|s| s - 1),
        });
    }
    if let Some(at) = p.closed_at {
        trail.push(step("closed", p.released_fen, at));
    }
    trail
}

#[derive(Serialize)]
pub(crate) struct ProposalsPage {
    proposals: Vec<ProposalDetail>,
}

pub(crate) async fn proposals(
    State(app): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Answer<ProposalsPage> {
    let id = fund_id(&path(p)?)?;
    app.service().read.fund(&id).ok_or_else(|| unknown_fund(&id))?;
    let proposals = app
        .service()
        .read
        .proposals(&id)
        .into_iter()
        .map(|view| ProposalDetail { money_trail: money_trail(&app, &view), view })
        .collect();
    Ok(Json(ProposalsPage { proposals }))
}

pub(crate) async fn proposal(
    State(app): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer<ProposalDetail> {
    let (fund, proposal) = path(p)?;
    let fund = fund_id(&fund)?;
    let proposal = ProposalId::new(&proposal)
        .map_err(|e| Problem::bad_request("proposal-id", format!("proposal id {proposal:?}: {e}")))?;
    let view = app
        .service()
        .read
        .proposal(&fund, &proposal)
        .ok_or_else(|| Problem::not_found(format!("unknown proposal {proposal} in {fund}")))?;
    Ok(Json(ProposalDetail { money_trail: money_trail(&app, &view), view }))
}

// ---------------------------------------------------------------------------
// donations

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    /// Donations after this sequence (exclusive).
    after: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(crate) struct DonationsPage {
    donations: Vec<DonationView>,
    /// Pass as `after` for the next page; absent at the end.
    next_after: Option<u64>,
}

pub(crate) async fn donations(
    State(app): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Answer<DonationsPage> {
    let id = fund_id(&path(p)?)?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(PAGE_LIMIT_DEFAULT).min(PAGE_LIMIT_MAX);
    if limit == 0 {
        return Err(Problem::bad_request("query", format!("limit must be 1..={PAGE_LIMIT_MAX}")));
    }
    app.service().read.fund(&id).ok_or_else(|| unknown_fund(&id))?;
    let donations = app.service().read.donations(&id, q.after.unwrap_or(0), limit);
    assert!(donations.len() <= limit);
    debug_assert!(donations.windows(2).all(|w| w[0].seq < w[1].seq), "donations in ledger order");
    let next_after = (donations.len() == limit).then(|| donations.last().map(|d| d.seq)).flatten();
    Ok(Json(DonationsPage { donations, next_after }))
}

// ---------------------------------------------------------------------------
// events

/// An event as the ledger holds it.
#[derive(Serialize)]
pub(crate) struct EventRecord {
    id: EventId,
    #[serde(rename = "type")]
    type_name: String,
    fund: String,
    seq: u64,
    ledger_index: u64,
    /// The envelope, parsed (for reading; hash `envelope_base64`, not this).
    envelope: Value,
    /// The envelope bytes exactly as stored and signed.
    envelope_base64: String,
    /// The signed payload: the event.
    event: Value,
}

/// The envelope and payload of stored envelope bytes, as JSON.
pub(crate) fn open_stored(envelope: &[u8]) -> Option<(Value, Value)> {
    let parsed: Value = serde_json::from_slice(envelope).ok()?;
    let payload = B64.decode(parsed.get("payload")?.as_str()?).ok()?;
    let event: Value = serde_json::from_slice(&payload).ok()?;
    Some((parsed, event))
}

pub(crate) async fn event(State(app): State<AppState>, p: Result<Path<String>, PathRejection>) -> Answer<EventRecord> {
    let id = event_id(&path(p)?)?;
    let read = &app.service().read;
    let seq = read.event_seq(&id).ok_or_else(|| Problem::not_found(format!("unknown event {id}")))?;
    assert!(seq >= 1, "sequences start at 1");
    let entry = read
        .entry(seq - 1)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| Problem::not_found(format!("event {id}: no ledger entry yet")))?;
    let decoded =
        fundtrail_ledger::decode_entry(&entry).map_err(|e| internal(format!("ledger entry {}: {e}", seq - 1)))?;
    assert_eq!(decoded.index, seq - 1, "entry i holds message i + 1");
    let (envelope, event) = open_stored(decoded.envelope)
        .ok_or_else(|| internal(format!("ledger entry {}: envelope unreadable", seq - 1)))?;
    Ok(Json(EventRecord {
        id,
        type_name: event["type"].as_str().unwrap_or_default().to_owned(),
        fund: event["fund"].as_str().unwrap_or_default().to_owned(),
        seq,
        ledger_index: seq - 1,
        envelope,
        envelope_base64: B64.encode(decoded.envelope),
        event,
    }))
}

// ---------------------------------------------------------------------------
// traces

/// Where a gift went, cash or goods (docs/design.md §1.6): the fold's trace, tagged
/// by `kind`, and the donor's line.
#[derive(Serialize)]
pub(crate) struct TraceAnswer {
    #[serde(flatten)]
    trace: fundtrail_domain::GiftTrace,
    /// "your ¥520.00: ¥300.00 → P-2026-04 …, paid 2026-05-20 (ledger entry 312); …".
    summary: String,
    /// The stream sequence of the state the trace was read from: the trace reflects
    /// messages 1..=as_of_sequence, i.e. the ledger of exactly this size (entries
    /// 0..as_of_sequence). An outside replay compares at this size.
    as_of_sequence: u64,
}

pub(crate) async fn trace(State(app): State<AppState>, p: Result<Path<String>, PathRejection>) -> Answer<TraceAnswer> {
    let id = event_id(&path(p)?)?;
    // One snapshot: the trace and its position are of the same published state.
    let state = app.service().read.state();
    let trace = fundtrail_domain::gift_trace(&state, &id)
        .ok_or_else(|| Problem::not_found(format!("no cash or goods donation {id} in any fund")))?;
    let as_of_sequence = state.position();
    Ok(Json(TraceAnswer { summary: trace.summary(), trace, as_of_sequence }))
}

// ---------------------------------------------------------------------------
// accounts

#[derive(Deserialize)]
pub(crate) struct AccountsQuery {
    /// One calendar year; every year with activity when absent.
    year: Option<i32>,
    /// `json` (default) or `csv` (one year).
    format: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AccountsPage {
    accounts: Vec<fundtrail_domain::accounts::YearReport>,
}

/// A fund's accounts per year (docs/design.md §1.6): JSON, or CSV for one year.
pub(crate) async fn accounts(
    State(app): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<AccountsQuery>, QueryRejection>,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    let id = fund_id(&path(p)?)?;
    let q = query(q)?;
    let state = app.service().read.state();
    let fund = state.funds.get(&id).ok_or_else(|| unknown_fund(&id))?;
    let years: Vec<i32> = match q.year {
        Some(year) => vec![year],
        None => fund.accounts.keys().copied().collect(),
    };
    let mut accounts = Vec::with_capacity(years.len());
    for year in years {
        accounts.push(
            fundtrail_domain::accounts::year_report(&id, fund, year).map_err(|e| internal(format!("accounts: {e}")))?,
        );
    }
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(AccountsPage { accounts }).into_response()),
        "csv" => {
            let [one] = accounts.as_slice() else {
                return Err(Problem::bad_request("query", "format=csv needs one year: add year=YYYY"));
            };
            Ok(([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], one.to_csv()).into_response())
        }
        other => Err(Problem::bad_request("query", format!("format {other:?}: json or csv"))),
    }
}

pub(crate) fn internal(detail: String) -> Problem {
    tracing::error!(%detail, "internal error");
    Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
}

// ---------------------------------------------------------------------------
// keys

#[derive(Serialize)]
pub(crate) struct KeysPage {
    keys: Vec<KeyView>,
}

pub(crate) async fn keys(State(app): State<AppState>) -> Answer<KeysPage> {
    Ok(Json(KeysPage { keys: app.service().read.keys() }))
}

pub(crate) async fn key(State(app): State<AppState>, p: Result<Path<String>, PathRejection>) -> Answer<KeyView> {
    let text = path(p)?;
    let id = KeyId::new(&text).map_err(|e| Problem::bad_request("key-id", format!("key id {text:?}: {e}")))?;
    app.service().read.key_view(&id).map(Json).ok_or_else(|| Problem::not_found(format!("unknown key {id}")))
}
