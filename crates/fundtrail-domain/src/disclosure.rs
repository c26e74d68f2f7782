//! What a version 2 `disclosure.published` cites, and the rule that checks it
//! (docs/design.md, "What a disclosure cites").
//!
//! A disclosure cites the fund's accounts ([`crate::accounts::year_report`]) of one
//! calendar year: the UTC year of the period's last instant (the period is half-open,
//! `[period_start, period_end)`), as they stand at the disclosure's place in the
//! stream — the state the rules check the event against. The fold keeps accounts per
//! year, not per arbitrary period, so a quarter's disclosure cites its year to date;
//! an auditor checks it exactly by folding the ledger up to the entry before it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::accounts::{year_report, YearReport, UNRESTRICTED};
use crate::event::{CitedIncome, DisclosureAccounts};
use crate::ids::FundId;
use crate::money::Fen;
use crate::refusal::Refusal;
use crate::rules::year_of;
use crate::state::Fund;

/// The year whose accounts a disclosure of a period ending at `period_end` cites: the
/// UTC calendar year of the period's last instant (one nanosecond before its end).
pub fn cited_year(period_end: &DateTime<Utc>) -> i32 {
    let last = period_end.checked_sub_signed(Duration::nanoseconds(1)).unwrap_or(*period_end);
    year_of(&last)
}

/// The citation of a year's accounts, as a disclosure states it.
pub fn citation(report: &YearReport) -> DisclosureAccounts {
    let mut income = BTreeMap::new();
    for line in &report.income {
        income.insert(
            line.channel,
            CitedIncome { unrestricted_fen: line.unrestricted_fen, restricted: line.restricted.clone() },
        );
    }
    let mut goods_income: BTreeMap<_, CitedIncome> = BTreeMap::new();
    for g in &report.goods_income {
        let cited = goods_income.entry(g.channel).or_default();
        if g.purpose == UNRESTRICTED {
            cited.unrestricted_fen = g.value_fen;
        } else {
            cited.restricted.insert(g.purpose.clone(), g.value_fen);
        }
    }
    let mut spending_restricted = report.spending.clone();
    let spending_unrestricted_fen = spending_restricted.remove(UNRESTRICTED).unwrap_or(Fen::ZERO);
    DisclosureAccounts {
        year: report.year,
        income_unrestricted_fen: report.income_unrestricted_fen,
        income_restricted_fen: report.income_restricted_fen,
        income,
        goods_income,
        spending_unrestricted_fen,
        spending_restricted,
        net_assets_unrestricted_fen: report.net_assets_unrestricted_fen,
        net_assets_restricted: report.net_assets_restricted.clone(),
    }
}

/// The accounts a disclosure of `fund` whose period ends at `period_end` must cite,
/// given the fund's state right before it.
pub fn expected_citation(id: &FundId, fund: &Fund, period_end: &DateTime<Utc>) -> Result<DisclosureAccounts, Refusal> {
    Ok(citation(&year_report(id, fund, cited_year(period_end))?))
}

/// Every figure of a citation by name, in the order they are checked: totals first,
/// then income and goods by channel, spending and net assets by purpose. Names are
/// the JSON paths of the body, e.g. `income[direct].restricted[助老]`.
pub fn figures(cited: &DisclosureAccounts) -> Vec<(String, Fen)> {
    let mut out = vec![
        ("income_unrestricted_fen".to_owned(), cited.income_unrestricted_fen),
        ("income_restricted_fen".to_owned(), cited.income_restricted_fen),
    ];
    for (section, by_channel) in [("income", &cited.income), ("goods_income", &cited.goods_income)] {
        for (channel, line) in by_channel {
            out.push((format!("{section}[{}].unrestricted_fen", channel.as_str()), line.unrestricted_fen));
            for (purpose, fen) in &line.restricted {
                out.push((format!("{section}[{}].restricted[{purpose}]", channel.as_str()), *fen));
            }
        }
    }
    out.push(("spending_unrestricted_fen".to_owned(), cited.spending_unrestricted_fen));
    for (purpose, fen) in &cited.spending_restricted {
        out.push((format!("spending_restricted[{purpose}]"), *fen));
    }
    out.push(("net_assets_unrestricted_fen".to_owned(), cited.net_assets_unrestricted_fen));
    for (purpose, fen) in &cited.net_assets_restricted {
        out.push((format!("net_assets_restricted[{purpose}]"), *fen));
    }
    out
}

/// The rule: the year cited is the year the period ends in, and every figure equals the
/// fold's; a figure either side leaves out is zero. The first difference is refused,
/// naming the figure, what the disclosure states and what the accounts give.
pub fn check_citation(
    id: &FundId,
    fund: &Fund,
    period_end: &DateTime<Utc>,
    stated: &DisclosureAccounts,
) -> Result<(), Refusal> {
    let actual = expected_citation(id, fund, period_end)?;
    if stated.year != actual.year {
        return Err(Refusal::DisclosureAccountsYear { stated: stated.year, expected: actual.year });
    }
    let stated_figures = figures(stated);
    let actual_figures = figures(&actual);
    let actual_by_name: BTreeMap<&str, Fen> = actual_figures.iter().map(|(n, f)| (n.as_str(), *f)).collect();
    let stated_by_name: BTreeMap<&str, Fen> = stated_figures.iter().map(|(n, f)| (n.as_str(), *f)).collect();
    // Actual figures first (in their order), then any the disclosure adds.
    let names = actual_figures.iter().chain(stated_figures.iter()).map(|(n, _)| n.as_str());
    for name in names {
        let stated_fen = stated_by_name.get(name).copied().unwrap_or(Fen::ZERO);
        let actual_fen = actual_by_name.get(name).copied().unwrap_or(Fen::ZERO);
        if stated_fen != actual_fen {
            return Err(Refusal::DisclosureAccountsMismatch {
                year: actual.year,
                figure: name.to_owned(),
                stated: stated_fen,
                actual: actual_fen,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cited_year_is_that_of_the_periods_last_instant() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(cited_year(&at("2027-01-01T00:00:00Z")), 2026);
        assert_eq!(cited_year(&at("2027-01-01T00:00:00.000000001Z")), 2027);
        assert_eq!(cited_year(&at("2026-12-31T16:00:00Z")), 2026);
        assert_eq!(cited_year(&at("2026-04-01T00:00:00Z")), 2026);
    }
}
