//! What a verification reports: the checkpoint it verified and every fund's money, in
//! integer fen (1 yuan = 100 fen) for scripts and as `¥1,234.56` for people.

use std::collections::BTreeMap;

use fundtrail_domain::state::{Fund, ProposalStatus};
use fundtrail_domain::{Fen, FundId, State};
use fundtrail_ledger::Checkpoint;
use serde::Serialize;

/// A verified checkpoint, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointInfo {
    pub origin: String,
    pub size: u64,
    /// Standard base64, as in the checkpoint.
    pub root: String,
}

impl From<&Checkpoint> for CheckpointInfo {
    fn from(c: &Checkpoint) -> CheckpointInfo {
        CheckpointInfo { origin: c.origin.clone(), size: c.size, root: c.root.to_base64() }
    }
}

/// The outcome of a whole-ledger verification that succeeded.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The checkpoint verified: its signature, its root rebuilt from every entry.
    pub checkpoint: CheckpointInfo,
    /// The signed checkpoint, verbatim (to keep as the next `--state`).
    pub note: String,
    /// Entries replayed (= checkpoint size, or the stream length in NATS mode).
    pub entries: u64,
    /// The earlier checkpoint the new one was proven to extend, if one was given.
    pub consistent_with: Option<CheckpointInfo>,
    pub funds: Vec<FundReport>,
    /// Every cash gift's trace, recomputed by this replay's fold (docs/design.md §1.6).
    pub traces: TraceCheck,
    /// Every fund's accounts per calendar year, recomputed by this replay's fold.
    pub accounts: Vec<fundtrail_domain::accounts::YearReport>,
    /// The disclosures replayed: the fold checked each one's totals and (v2) the
    /// accounts it cites against its own state at that entry (docs/design.md §1.6).
    pub disclosures: DisclosureCheck,
    /// The replayed domain state (not serialised: the funds above summarise it).
    #[serde(skip)]
    pub state: State,
}

/// One fund's money at the verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundReport {
    pub fund: String,
    pub name: String,
    pub community: String,
    pub cash: CashReport,
    pub channels: Vec<ChannelReport>,
    pub goods: GoodsReport,
    pub proposals: ProposalsReport,
    pub donations: u64,
}

/// Cash by state: available = received − refunded − reserved − paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CashReport {
    pub received_fen: i64,
    pub refunded_fen: i64,
    pub reserved_fen: i64,
    pub paid_fen: i64,
    pub available_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelReport {
    pub channel: String,
    pub received_fen: i64,
    pub refunded_fen: i64,
    pub donations: u64,
    pub goods_value_fen: i64,
    pub pledged_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoodsReport {
    pub received_value_fen: i64,
    pub distributed_value_fen: i64,
    pub on_hand: Vec<GoodsItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoodsItem {
    pub name: String,
    pub unit: String,
    pub quantity: u64,
    pub value_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposalsReport {
    pub count: u64,
    /// Proposals by status (`submitted`, `approved`, `closed`, …).
    pub by_status: BTreeMap<String, u64>,
    pub approved_fen: i64,
    pub paid_fen: i64,
}

impl FundReport {
    /// The report of one fund of a replayed state.
    pub fn of(id: &FundId, fund: &Fund) -> FundReport {
        // The fold checked every amount with checked arithmetic; it cannot overflow here.
        let available = fund.cash.available().expect("a replayed fund's cash is in range");
        assert!(!available.is_negative(), "fund {id}: the fold never lets available cash go negative");
        let cash = CashReport {
            received_fen: fund.cash.received.fen(),
            refunded_fen: fund.cash.refunded.fen(),
            reserved_fen: fund.cash.reserved.fen(),
            paid_fen: fund.cash.paid.fen(),
            available_fen: available.fen(),
        };
        let channels = fund
            .by_channel
            .iter()
            .map(|(channel, t)| ChannelReport {
                channel: channel.as_str().to_string(),
                received_fen: t.received.fen(),
                refunded_fen: t.refunded.fen(),
                donations: t.donations,
                goods_value_fen: t.goods_value.fen(),
                pledged_fen: t.pledged.fen(),
            })
            .collect();
        let on_hand = fund
            .goods
            .iter()
            .flat_map(|(name, units)| {
                units.iter().map(move |(unit, stock)| GoodsItem {
                    name: name.clone(),
                    unit: unit.clone(),
                    quantity: stock.quantity,
                    value_fen: stock.value.fen(),
                })
            })
            .filter(|item| item.quantity > 0)
            .collect();
        let mut by_status = BTreeMap::new();
        let (mut approved, mut paid) = (Fen::ZERO, Fen::ZERO);
        for proposal in fund.proposals.values() {
            *by_status.entry(status_name(proposal.status)).or_insert(0u64) += 1;
            approved = approved.checked_add(proposal.approved).expect("in range");
            paid = paid.checked_add(proposal.paid).expect("in range");
        }
        FundReport {
            fund: id.to_string(),
            name: fund.name.clone(),
            community: fund.community.clone(),
            cash,
            channels,
            goods: GoodsReport {
                received_value_fen: fund.goods_received_value.fen(),
                distributed_value_fen: fund.goods_distributed_value.fen(),
                on_hand,
            },
            proposals: ProposalsReport {
                count: fund.proposals.len() as u64,
                by_status,
                approved_fen: approved.fen(),
                paid_fen: paid.fen(),
            },
            donations: fund.donations.len() as u64,
        }
    }
}

fn status_name(status: ProposalStatus) -> String {
    status.as_str().to_string()
}

/// Every fund of a replayed state, in fund id order.
pub fn fund_reports(state: &State) -> Vec<FundReport> {
    state.funds.iter().map(|(id, fund)| FundReport::of(id, fund)).collect()
}

pub use fundtrail_domain::money::format_yuan;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_formatting() {
        assert_eq!(format_yuan(0), "¥0.00");
        assert_eq!(format_yuan(5), "¥0.05");
        assert_eq!(format_yuan(123_456), "¥1,234.56");
        assert_eq!(format_yuan(100_000_000), "¥1,000,000.00");
        assert_eq!(format_yuan(-5), "-¥0.05");
        assert_eq!(format_yuan(99_999), "¥999.99");
        assert_eq!(format_yuan(i64::MIN), "-¥92,233,720,368,547,758.08");
    }
}

/// The traces a verification recomputed: every cash gift's parts (reserved, paid,
/// refunded, unspent) must sum to the gift, every goods gift line's parts (handed
/// out, in stock) to the line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TraceCheck {
    pub gifts: u64,
    /// Gifts whose parts sum to the gift (every one, or the fold has a bug).
    pub whole: u64,
    /// Fen of gifts paid out for proposals, over every fund.
    pub paid_fen: i64,
    /// Goods gifts, and those whose every line's parts (handed out, in stock) sum to the line.
    pub goods_gifts: u64,
    pub goods_whole: u64,
    /// Units of goods gifts handed out by distributions, over every fund.
    pub goods_handed_out: u64,
}

/// Disclosures a replay checked: every one's stated totals, and the accounts each v2
/// disclosure cites, equal the replay's own figures at its entry (a difference fails
/// the verification there, as the rule's refusal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DisclosureCheck {
    pub published: u64,
    /// Of those, the ones citing their year's accounts (version 2).
    pub citing_accounts: u64,
}

impl DisclosureCheck {
    /// Counts an event the fold accepted.
    pub fn count(&mut self, event: &fundtrail_domain::Event) {
        if let fundtrail_domain::EventBody::DisclosurePublished(d) = &event.body {
            self.published += 1;
            self.citing_accounts += u64::from(d.accounts.is_some());
        }
    }
}

impl TraceCheck {
    pub fn of(state: &State) -> TraceCheck {
        let mut check = TraceCheck::default();
        for fund in state.funds.values() {
            for id in fund.donations.keys() {
                let Some(trace) = fundtrail_domain::trace(state, id) else { continue };
                check.gifts += 1;
                if trace.is_whole() {
                    check.whole += 1;
                }
                for a in &trace.allocations {
                    if a.state == fundtrail_domain::trace::AllocationState::Paid {
                        check.paid_fen += a.amount_fen.fen();
                    }
                }
            }
            for id in fund.goods_lots.gifts.keys() {
                let Some(trace) = fundtrail_domain::goods_trace(state, id) else { continue };
                check.goods_gifts += 1;
                if trace.is_whole() {
                    check.goods_whole += 1;
                }
                for line in &trace.lines {
                    for d in &line.distributions {
                        check.goods_handed_out = check.goods_handed_out.saturating_add(d.quantity);
                    }
                }
            }
        }
        check
    }
}
