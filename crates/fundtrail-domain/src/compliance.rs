//! Statutory disclosure dates and cost ratios, computed from the state and a
//! `now` the caller passes in (the domain reads no clock).
//!
//! The rules (Charity Law of the PRC and the Ministry of Civil Affairs'
//! disclosure measures, as the fund's users apply them):
//! - a project running over 6 months discloses at least every 3 months, and in
//!   full within 3 months of its end;
//! - the host's annual work report is due by 31 May of the next year;
//! - a host that is a public-fundraising social group spends on charity at
//!   least 70% of last year's income, and on management at most 13% of the
//!   year's spending.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use crate::ids::ProposalId;
use crate::money::Fen;
use crate::state::{Fund, ProposalStatus, State};

/// Charity spending must reach this share of last year's income (per cent).
pub const CHARITY_SPENDING_MIN_PERCENT: i64 = 70;
/// Management cost may be at most this share of the year's spending (per cent).
pub const MANAGEMENT_COST_MAX_PERCENT: i64 = 13;
/// A project running longer than this many months discloses periodically.
pub const LONG_PROJECT_MONTHS: u32 = 6;
/// ... every this many months, and within this many months of its end.
pub const DISCLOSURE_INTERVAL_MONTHS: u32 = 3;

/// One disclosure obligation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisclosureDue {
    pub proposal: ProposalId,
    /// "periodic" (a long project still running) or "final" (after its end).
    pub kind: &'static str,
    pub due: DateTime<Utc>,
    pub overdue: bool,
}

/// Cost ratios for one calendar year, in basis points (1/100 of a per cent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CostRatios {
    pub year: i32,
    pub last_year_income_fen: Fen,
    pub charity_spending_fen: Fen,
    pub management_spending_fen: Fen,
    /// Charity spending / last year's income; `None` when there was no income.
    pub charity_bp: Option<i64>,
    /// Management / total spending; `None` when nothing was spent.
    pub management_bp: Option<i64>,
    /// Charity spending so far is below 70% of last year's income.
    pub charity_at_risk: bool,
    /// Management cost is above 13% of spending.
    pub management_at_risk: bool,
}

/// The host's annual report for one year, as one fund sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnnualReportDue {
    /// The reported year: last calendar year (UTC).
    pub year: i32,
    /// 31 May of the year after, 23:59:59 UTC.
    pub due: DateTime<Utc>,
    /// Whether the fund owes a report for `year` at all: not when it was opened
    /// after that year ended.
    pub owed: bool,
    /// Owed, past due and not published.
    pub late: bool,
}

/// What a fund owes the public at `now`. Nothing is owed for time before the
/// fund was opened: a project's periods count from the later of its approval
/// (or closure) and the fund's opening.
pub fn disclosures_due(fund: &Fund, now: DateTime<Utc>) -> Vec<DisclosureDue> {
    let mut due = Vec::new();
    for (id, p) in &fund.proposals {
        let Some(approved_at) = p.approved_at else { continue };
        let started = approved_at.max(fund.opened_at);
        let disclosed_after = |t: DateTime<Utc>| fund.disclosures.iter().any(|d| d.published_at >= t);
        if p.status == ProposalStatus::Closed {
            let ended = p.closed_at.expect("a closed proposal has closed_at").max(fund.opened_at);
            if !disclosed_after(ended) {
                let at = add_months(ended, DISCLOSURE_INTERVAL_MONTHS);
                due.push(DisclosureDue { proposal: id.clone(), kind: "final", due: at, overdue: now > at });
            }
            continue;
        }
        if p.status != ProposalStatus::Approved || add_months(started, LONG_PROJECT_MONTHS) > now {
            continue;
        }
        let last = fund.disclosures.iter().map(|d| d.published_at).filter(|t| *t >= started).max().unwrap_or(started);
        let at = add_months(last, DISCLOSURE_INTERVAL_MONTHS);
        due.push(DisclosureDue { proposal: id.clone(), kind: "periodic", due: at, overdue: now > at });
    }
    due
}

/// The host's annual report for last year as `fund` sees it: when it is due,
/// whether the fund owes it (a fund opened after the year ended does not) and
/// whether it is late.
pub fn annual_report_due(state: &State, fund: &Fund, now: DateTime<Utc>) -> AnnualReportDue {
    let year = now.year() - 1;
    let due = Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(now.year(), 5, 31).expect("valid date").and_hms_opt(23, 59, 59).expect("valid time"),
    );
    let owed = fund.opened_at.year() <= year;
    let late = owed && now > due && !state.annual_reports.contains_key(&year);
    AnnualReportDue { year, due, owed, late }
}

/// Cost ratios of `year`.
pub fn cost_ratios(fund: &Fund, year: i32) -> CostRatios {
    let income = fund.income_by_year.get(&(year - 1)).copied().unwrap_or_default();
    let spending = fund.spending_by_year.get(&year).copied().unwrap_or_default();
    let total = spending.charity.fen() as i128 + spending.management.fen() as i128;
    let bp = |num: i64, den: i128| (den > 0).then(|| (num as i128 * 10_000 / den) as i64);
    let charity_bp = bp(spending.charity.fen(), income.fen() as i128);
    let management_bp = bp(spending.management.fen(), total);
    CostRatios {
        year,
        last_year_income_fen: income,
        charity_spending_fen: spending.charity,
        management_spending_fen: spending.management,
        charity_at_risk: charity_bp.is_some_and(|b| b < CHARITY_SPENDING_MIN_PERCENT * 100),
        management_at_risk: management_bp.is_some_and(|b| b > MANAGEMENT_COST_MAX_PERCENT * 100),
        charity_bp,
        management_bp,
    }
}

fn add_months(t: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(months)).expect("date in range")
}
