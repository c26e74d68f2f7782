//! A fund's accounts for a calendar year, as non-profit accounts keep them:
//! income split into restricted (限定性) and unrestricted (非限定性) by channel,
//! spending by purpose, and net assets restricted by purpose and unrestricted
//! at year end. A pure function of the fold's state (`Fund::accounts`), so the
//! service and an auditor's replay (`fundtrail verify`) give the same figures.
//!
//! Net assets here are cash: received − refunded − paid (money reserved for an
//! approved proposal is still the fund's until paid). Goods in kind appear as
//! income at their estimated value; they are not split into net assets by purpose
//! because distributions are not traced to gifts (docs/design.md §1.6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Channel;
use crate::ids::FundId;
use crate::money::{Fen, MoneyOverflow};
use crate::state::Fund;

/// The key of unrestricted money in the maps below.
pub const UNRESTRICTED: &str = "";

/// One year of one fund's accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearReport {
    pub fund: FundId,
    pub year: i32,
    /// Cash income net of refunds, by channel: `unrestricted` and per purpose.
    pub income: Vec<IncomeLine>,
    pub income_unrestricted_fen: Fen,
    pub income_restricted_fen: Fen,
    /// Goods received at estimated value, by channel and purpose ("" = unrestricted).
    pub goods_income: Vec<GoodsLine>,
    /// Payouts by the purpose of the money that paid them ("" = unrestricted money).
    pub spending: BTreeMap<String, Fen>,
    /// Cash net assets at the end of the year: unrestricted.
    pub net_assets_unrestricted_fen: Fen,
    /// Cash net assets at the end of the year restricted to each purpose.
    pub net_assets_restricted: BTreeMap<String, Fen>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomeLine {
    pub channel: Channel,
    pub unrestricted_fen: Fen,
    /// By purpose.
    pub restricted: BTreeMap<String, Fen>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsLine {
    pub channel: Channel,
    pub purpose: String,
    pub value_fen: Fen,
}

/// The accounts of `fund` for `year`.
pub fn year_report(id: &FundId, fund: &Fund, year: i32) -> Result<YearReport, MoneyOverflow> {
    let empty = Default::default();
    let a = fund.accounts.get(&year).unwrap_or(&empty);
    let mut income = Vec::new();
    let (mut unrestricted_total, mut restricted_total) = (Fen::ZERO, Fen::ZERO);
    for channel in Channel::ALL {
        let unrestricted = a.income_unrestricted.get(&channel).copied().unwrap_or(Fen::ZERO);
        let restricted = a.income_restricted.get(&channel).cloned().unwrap_or_default();
        if unrestricted == Fen::ZERO && restricted.is_empty() {
            continue;
        }
        unrestricted_total = unrestricted_total.checked_add(unrestricted)?;
        for v in restricted.values() {
            restricted_total = restricted_total.checked_add(*v)?;
        }
        income.push(IncomeLine { channel, unrestricted_fen: unrestricted, restricted });
    }
    let mut goods_income = Vec::new();
    for (channel, by_purpose) in &a.goods_income {
        for (purpose, value) in by_purpose {
            goods_income.push(GoodsLine { channel: *channel, purpose: purpose.clone(), value_fen: *value });
        }
    }
    // Net assets at year end: every year up to this one, income − spending, per pool.
    let mut net: BTreeMap<String, Fen> = BTreeMap::new();
    net.insert(UNRESTRICTED.to_owned(), Fen::ZERO);
    for name in fund.purposes.keys() {
        net.insert(name.clone(), Fen::ZERO);
    }
    for (_, y) in fund.accounts.range(..=year) {
        for v in y.income_unrestricted.values() {
            let line = net.entry(UNRESTRICTED.to_owned()).or_default();
            *line = line.checked_add(*v)?;
        }
        for by_purpose in y.income_restricted.values() {
            for (name, v) in by_purpose {
                let line = net.entry(name.clone()).or_default();
                *line = line.checked_add(*v)?;
            }
        }
        for (name, v) in &y.spending {
            let line = net.entry(name.clone()).or_default();
            *line = line.checked_sub(*v)?;
        }
    }
    let unrestricted = net.remove(UNRESTRICTED).unwrap_or(Fen::ZERO);
    Ok(YearReport {
        fund: id.clone(),
        year,
        income,
        income_unrestricted_fen: unrestricted_total,
        income_restricted_fen: restricted_total,
        goods_income,
        spending: a.spending.clone(),
        net_assets_unrestricted_fen: unrestricted,
        net_assets_restricted: net,
    })
}

/// Every year with activity of every fund, in fund then year order.
pub fn all_years(state: &crate::State) -> Result<Vec<YearReport>, MoneyOverflow> {
    let mut out = Vec::new();
    for (id, fund) in &state.funds {
        for year in fund.accounts.keys() {
            out.push(year_report(id, fund, *year)?);
        }
    }
    Ok(out)
}

impl YearReport {
    /// The report as CSV: `section,channel,purpose,amount_fen,amount` rows
    /// (purpose empty = unrestricted; amounts in fen and in yuan).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("fund,year,section,channel,purpose,amount_fen,amount_yuan\n");
        let mut row = |section: &str, channel: &str, purpose: &str, fen: Fen| {
            let yuan = crate::money::format_yuan(fen.fen()).replace(['¥', ','], "");
            out.push_str(&format!(
                "{},{},{section},{channel},{},{},{yuan}\n",
                self.fund,
                self.year,
                csv(purpose),
                fen.fen()
            ));
        };
        for line in &self.income {
            row("income", line.channel.as_str(), UNRESTRICTED, line.unrestricted_fen);
            for (purpose, v) in &line.restricted {
                row("income", line.channel.as_str(), purpose, *v);
            }
        }
        for g in &self.goods_income {
            row("goods_income", g.channel.as_str(), &g.purpose, g.value_fen);
        }
        for (purpose, v) in &self.spending {
            row("spending", "", purpose, *v);
        }
        row("net_assets", "", UNRESTRICTED, self.net_assets_unrestricted_fen);
        for (purpose, v) in &self.net_assets_restricted {
            row("net_assets", "", purpose, *v);
        }
        out
    }
}

/// A CSV field: quoted when it holds a comma, quote or line break (RFC 4180).
fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
