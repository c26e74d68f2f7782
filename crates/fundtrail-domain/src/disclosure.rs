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
use crate::event::{Channel, CitedIncome, DisclosureAccounts};
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

/// Where a figure sits in the order figures are checked: section (totals, income,
/// goods income, spending, net assets), then channel (catalogue order), then
/// unrestricted before each purpose (by the bytes of its name).
pub type FigureKey = (u8, Option<Channel>, Option<String>);

/// Every figure of a citation, keyed in the order they are checked, with its name: the
/// JSON path of the body, e.g. `income[direct].restricted[助老]`.
pub fn figures(cited: &DisclosureAccounts) -> BTreeMap<FigureKey, (String, Fen)> {
    let mut out = BTreeMap::new();
    out.insert((0, None, None), ("income_unrestricted_fen".to_owned(), cited.income_unrestricted_fen));
    out.insert((1, None, None), ("income_restricted_fen".to_owned(), cited.income_restricted_fen));
    for (rank, section, by_channel) in [(2, "income", &cited.income), (3, "goods_income", &cited.goods_income)] {
        for (channel, line) in by_channel {
            let ch = channel.as_str();
            out.insert(
                (rank, Some(*channel), None),
                (format!("{section}[{ch}].unrestricted_fen"), line.unrestricted_fen),
            );
            for (purpose, fen) in &line.restricted {
                let name = format!("{section}[{ch}].restricted[{purpose}]");
                out.insert((rank, Some(*channel), Some(purpose.clone())), (name, *fen));
            }
        }
    }
    let by_purpose = [
        (4, "spending", cited.spending_unrestricted_fen, &cited.spending_restricted),
        (5, "net_assets", cited.net_assets_unrestricted_fen, &cited.net_assets_restricted),
    ];
    for (rank, section, unrestricted, restricted) in by_purpose {
        out.insert((rank, None, None), (format!("{section}_unrestricted_fen"), unrestricted));
        for (purpose, fen) in restricted {
            out.insert((rank, None, Some(purpose.clone())), (format!("{section}_restricted[{purpose}]"), *fen));
        }
    }
    out
}

/// The rule: the year cited is the year the period ends in, and every figure equals the
/// fold's; a figure either side leaves out is zero. The first difference, in the order
/// of [`FigureKey`], is refused, naming the figure, what the disclosure states and what
/// the accounts give.
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
    let mut all = figures(&actual);
    for (key, (name, _)) in &stated_figures {
        all.entry(key.clone()).or_insert_with(|| (name.clone(), Fen::ZERO));
    }
    for (key, (name, actual_fen)) in all {
        let stated_fen = stated_figures.get(&key).map_or(Fen::ZERO, |(_, fen)| *fen);
        if stated_fen != actual_fen {
            return Err(Refusal::DisclosureAccountsMismatch {
                year: actual.year,
                figure: name,
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
