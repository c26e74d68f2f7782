//! Where a gift went: a pure function of the fold's state.
//!
//! The allocation itself is part of the fold ([`crate::rules`], "the
//! allocation"): every fen of every cash gift is, at every position of the
//! stream, exactly one of unspent (in its pool's queue), reserved for a
//! proposal, paid by a payout, or refunded. [`trace`] reads that out for one
//! gift, so any replay of the stream gives the same answer byte for byte.
//!
//! Goods in kind are traced the same way, in units rather than fen: every line
//! of a goods gift is a lot, and at every position each unit of it is either in
//! stock or handed out by one distribution ([`goods_trace`]; [`gift_trace`]
//! answers for either kind of gift).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::admission::IdRecord;
use crate::ids::{EventId, FundId, ProposalId};
use crate::money::Fen;
use crate::state::{Fund, State};

/// A gift's trace: its money, part by part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub fund: FundId,
    pub donation: EventId,
    pub amount_fen: Fen,
    /// The purpose the gift is restricted to, or `None`.
    pub restricted_purpose: Option<String>,
    #[serde(with = "crate::event::utc")]
    pub received_at: DateTime<Utc>,
    /// Paid parts in the order they were paid, then reserved parts by proposal id.
    pub allocations: Vec<Allocation>,
    pub refunded_fen: Fen,
    /// Neither reserved, paid nor refunded: still in its pool.
    pub unspent_fen: Fen,
}

/// Whether a part of a gift is paid out or only reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationState {
    Reserved,
    Paid,
}

/// A part of a gift assigned to a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub proposal: ProposalId,
    pub title: String,
    pub amount_fen: Fen,
    pub state: AllocationState,
    /// The payout that paid it (for `paid`).
    pub payout: Option<PayoutRef>,
}

/// A payout event and where it is in the stream and the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRef {
    pub event: EventId,
    /// Its stream sequence (`None` when the state was folded without a log).
    pub sequence: Option<u64>,
    /// Its public ledger entry index: stream message *i + 1* is ledger entry *i*.
    pub ledger_entry: Option<u64>,
    #[serde(with = "crate::event::utc")]
    pub paid_at: DateTime<Utc>,
}

/// Where event `id` is: its stream sequence and its public ledger entry (stream
/// message *i + 1* is ledger entry *i*), both `None` when the state was folded
/// without a log.
fn stream_place(state: &State, id: &EventId) -> (Option<u64>, Option<u64>) {
    let sequence = state.event_ids.get(id).map(|r| r.seq).filter(|&s| s != IdRecord::UNRECORDED.seq);
    (sequence, sequence.map(|s| s - 1))
}

/// The trace of cash gift `donation` (in whichever fund holds it), or `None` if
/// no fund has a cash gift with that id.
pub fn trace(state: &State, donation: &EventId) -> Option<Trace> {
    let (fund_id, fund, gift) = state.funds.iter().find_map(|(id, f)| f.donations.get(donation).map(|d| (id, f, d)))?;
    let mut allocations = Vec::with_capacity(gift.spent().len() + gift.reserved().len());
    for spent in gift.spent() {
        let proposal = fund.proposals.get(&spent.proposal).expect("a paid proposal exists");
        let payout = proposal.payouts.iter().find(|p| p.event == spent.payout).expect("the payout is recorded");
        let (sequence, ledger_entry) = stream_place(state, &spent.payout);
        allocations.push(Allocation {
            proposal: spent.proposal.clone(),
            title: proposal.title.clone(),
            amount_fen: spent.amount,
            state: AllocationState::Paid,
            payout: Some(PayoutRef { event: spent.payout.clone(), sequence, ledger_entry, paid_at: payout.paid_at }),
        });
    }
    for (pid, amount) in gift.reserved() {
        let proposal = fund.proposals.get(pid).expect("a reserving proposal exists");
        allocations.push(Allocation {
            proposal: pid.clone(),
            title: proposal.title.clone(),
            amount_fen: *amount,
            state: AllocationState::Reserved,
            payout: None,
        });
    }
    let unspent = fund.pool(gift.restricted_purpose()).unspent.get(&gift.ordinal).map_or(Fen::ZERO, |u| u.amount);
    Some(Trace {
        fund: fund_id.clone(),
        donation: donation.clone(),
        amount_fen: gift.amount,
        restricted_purpose: gift.restricted_purpose().map(str::to_owned),
        received_at: gift.received_at,
        allocations,
        refunded_fen: gift.refunded(),
        unspent_fen: unspent,
    })
}

impl Trace {
    /// The donor's line: "your ¥520.00: ¥300.00 → P-2026-04 楼道照明与适老化改造, paid
    /// 2026-05-20 (ledger entry 312); ¥220.00 reserved for P-2026-07; ¥0.00 unspent".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for a in &self.allocations {
            match (&a.state, &a.payout) {
                (AllocationState::Paid, Some(p)) => {
                    let entry = p.ledger_entry.map(|e| format!(" (ledger entry {e})")).unwrap_or_default();
                    parts.push(format!(
                        "{} → {} {}, paid {}{entry}",
                        a.amount_fen,
                        a.proposal,
                        a.title,
                        p.paid_at.format("%Y-%m-%d")
                    ));
                }
                _ => parts.push(format!("{} reserved for {}", a.amount_fen, a.proposal)),
            }
        }
        if self.refunded_fen.is_positive() {
            parts.push(format!("{} refunded", self.refunded_fen));
        }
        parts.push(format!("{} unspent", self.unspent_fen));
        let restricted = self.restricted_purpose.as_ref().map(|p| format!(" (restricted to {p})")).unwrap_or_default();
        format!("your {}{restricted}: {}", self.amount_fen, parts.join("; "))
    }

    /// The parts sum to the gift (checked arithmetic; false on overflow).
    pub fn is_whole(&self) -> bool {
        let mut parts = std::iter::once(self.unspent_fen).chain(self.allocations.iter().map(|a| a.amount_fen));
        let sum = parts.try_fold(self.refunded_fen, |s, x| s.checked_add(x).ok());
        sum == Some(self.amount_fen)
    }
}

/// A gift's trace, cash or goods: what `GET /v1/donations/{id}/trace` answers,
/// tagged by `kind` (`"cash"`, `"goods"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GiftTrace {
    Cash(Trace),
    Goods(GoodsTrace),
}

impl GiftTrace {
    /// The donor's line ([`Trace::summary`], [`GoodsTrace::summary`]).
    pub fn summary(&self) -> String {
        match self {
            GiftTrace::Cash(t) => t.summary(),
            GiftTrace::Goods(t) => t.summary(),
        }
    }

    /// The parts sum to the gift ([`Trace::is_whole`], [`GoodsTrace::is_whole`]).
    pub fn is_whole(&self) -> bool {
        match self {
            GiftTrace::Cash(t) => t.is_whole(),
            GiftTrace::Goods(t) => t.is_whole(),
        }
    }
}

/// The trace of gift `donation`, cash or goods, or `None` if no fund has a gift with that id.
pub fn gift_trace(state: &State, donation: &EventId) -> Option<GiftTrace> {
    trace(state, donation).map(GiftTrace::Cash).or_else(|| goods_trace(state, donation).map(GiftTrace::Goods))
}

/// A goods gift's trace: line by line, where its units went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsTrace {
    pub fund: FundId,
    pub donation: EventId,
    /// The purpose the goods are restricted to, or `None`.
    pub restricted_purpose: Option<String>,
    #[serde(with = "crate::event::utc")]
    pub received_at: DateTime<Utc>,
    /// One per line of the gift, in the gift's order.
    pub lines: Vec<GoodsLineTrace>,
}

/// One line of a goods gift (a lot): its distributions in stream order, then what is in stock.
///
/// Quantities only: the fund values its stock at the average of what is on hand
/// (docs/design.md §1.1), so the value of one lot's part of a distribution is not
/// defined; `unit_value_fen` is the donor's estimate as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsLineTrace {
    /// The line's index in the gift (0-based).
    pub line: u32,
    pub name: String,
    pub unit: String,
    pub quantity: u64,
    pub unit_value_fen: Fen,
    pub distributions: Vec<GoodsPart>,
    /// Units not yet handed out.
    pub in_stock: u64,
}

/// Units of a lot handed out by one distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsPart {
    pub distribution: DistributionRef,
    /// The proposal the distribution was for, and its title, if it named one.
    pub proposal: Option<ProposalId>,
    pub title: Option<String>,
    /// The distribution's own words: to whom or for what.
    pub purpose: String,
    pub quantity: u64,
}

/// A distribution event and where it is in the stream and the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributionRef {
    pub event: EventId,
    /// Its stream sequence (`None` when the state was folded without a log).
    pub sequence: Option<u64>,
    /// Its public ledger entry index: stream message *i + 1* is ledger entry *i*.
    pub ledger_entry: Option<u64>,
    #[serde(with = "crate::event::utc")]
    pub distributed_at: DateTime<Utc>,
}

/// The trace of goods gift `donation` (in whichever fund holds it), or `None`.
pub fn goods_trace(state: &State, donation: &EventId) -> Option<GoodsTrace> {
    let (fund_id, fund, gift) =
        state.funds.iter().find_map(|(id, f)| f.goods_lots.gifts.get(donation).map(|g| (id, f, g)))?;
    let lines = gift
        .lines
        .iter()
        .enumerate()
        .map(|(i, lot)| {
            let distributions = lot.handed_out.iter().map(|h| goods_part(state, fund, h)).collect();
            let in_stock = fund
                .goods_lots
                .stock
                .get(&lot.name)
                .and_then(|u| u.get(&lot.unit))
                .and_then(|p| p.queue(gift.restricted_purpose.as_deref()))
                .and_then(|q| q.get(&lot.ordinal))
                .map_or(0, |l| l.left);
            GoodsLineTrace {
                line: u32::try_from(i).expect("at most ITEMS_COUNT_MAX lines"),
                name: lot.name.clone(),
                unit: lot.unit.clone(),
                quantity: lot.quantity,
                unit_value_fen: lot.unit_value_fen,
                distributions,
                in_stock,
            }
        })
        .collect();
    Some(GoodsTrace {
        fund: fund_id.clone(),
        donation: donation.clone(),
        restricted_purpose: gift.restricted_purpose.clone(),
        received_at: gift.received_at,
        lines,
    })
}

fn goods_part(state: &State, fund: &Fund, handed: &crate::state::HandedOut) -> GoodsPart {
    let d = fund.goods_lots.distributions.get(&handed.distribution).expect("a distribution is recorded");
    let (sequence, ledger_entry) = stream_place(state, &handed.distribution);
    GoodsPart {
        distribution: DistributionRef {
            event: handed.distribution.clone(),
            sequence,
            ledger_entry,
            distributed_at: d.distributed_at,
        },
        proposal: d.proposal.clone(),
        title: d.proposal.as_ref().and_then(|p| fund.proposals.get(p)).map(|p| p.title.clone()),
        purpose: d.purpose.clone(),
        quantity: handed.quantity,
    }
}

impl GoodsTrace {
    /// The donor's line: "your 50 袋 大米: 30 袋 → 重阳节 慰问独居老人 (P-2026-08),
    /// 2026-10-20 (ledger entry 412); 20 袋 in stock". A gift of several lines
    /// gives each line's part, separated by " | "; a restricted gift names its
    /// purpose after the first line ("your 50 袋 大米 (restricted to 助老): …").
    pub fn summary(&self) -> String {
        let restricted = self.restricted_purpose.as_ref().map(|p| format!(" (restricted to {p})")).unwrap_or_default();
        let lines: Vec<String> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut parts: Vec<String> = l
                    .distributions
                    .iter()
                    .map(|d| {
                        let proposal = d.proposal.as_ref().map(|p| format!(" ({p})")).unwrap_or_default();
                        let entry =
                            d.distribution.ledger_entry.map(|e| format!(" (ledger entry {e})")).unwrap_or_default();
                        format!(
                            "{} {} → {}{proposal}, {}{entry}",
                            d.quantity,
                            l.unit,
                            d.purpose,
                            d.distribution.distributed_at.format("%Y-%m-%d")
                        )
                    })
                    .collect();
                parts.push(format!("{} {} in stock", l.in_stock, l.unit));
                let restricted = if i == 0 { restricted.as_str() } else { "" };
                format!("{} {} {}{restricted}: {}", l.quantity, l.unit, l.name, parts.join("; "))
            })
            .collect();
        format!("your {}", lines.join(" | "))
    }

    /// Every line's parts sum to the line (checked arithmetic; false on overflow).
    pub fn is_whole(&self) -> bool {
        self.lines.iter().all(|l| {
            let sum = l.distributions.iter().try_fold(l.in_stock, |s, d| s.checked_add(d.quantity));
            sum == Some(l.quantity)
        })
    }
}
