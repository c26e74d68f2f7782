//! Where a gift went: a pure function of the fold's state.
//!
//! The allocation itself is part of the fold ([`crate::rules`], "the
//! allocation"): every fen of every cash gift is, at every position of the
//! stream, exactly one of unspent (in its pool's queue), reserved for a
//! proposal, paid by a payout, or refunded. [`trace`] reads that out for one
//! gift, so any replay of the stream gives the same answer byte for byte.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::admission::IdRecord;
use crate::ids::{EventId, FundId, ProposalId};
use crate::money::Fen;
use crate::state::State;

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

/// The trace of cash gift `donation` (in whichever fund holds it), or `None` if
/// no fund has a cash gift with that id.
pub fn trace(state: &State, donation: &EventId) -> Option<Trace> {
    let (fund_id, fund, gift) = state.funds.iter().find_map(|(id, f)| f.donations.get(donation).map(|d| (id, f, d)))?;
    let mut allocations = Vec::with_capacity(gift.spent.len() + gift.reserved.len());
    for spent in &gift.spent {
        let proposal = fund.proposals.get(&spent.proposal).expect("a paid proposal exists");
        let payout = proposal.payouts.iter().find(|p| p.event == spent.payout).expect("the payout is recorded");
        let sequence = state.event_ids.get(&spent.payout).map(|r| r.seq).filter(|&s| s != IdRecord::UNRECORDED.seq);
        allocations.push(Allocation {
            proposal: spent.proposal.clone(),
            title: proposal.title.clone(),
            amount_fen: spent.amount,
            state: AllocationState::Paid,
            payout: Some(PayoutRef {
                event: spent.payout.clone(),
                sequence,
                ledger_entry: sequence.map(|s| s - 1),
                paid_at: payout.paid_at,
            }),
        });
    }
    for (pid, amount) in &gift.reserved {
        let proposal = fund.proposals.get(pid).expect("a reserving proposal exists");
        allocations.push(Allocation {
            proposal: pid.clone(),
            title: proposal.title.clone(),
            amount_fen: *amount,
            state: AllocationState::Reserved,
            payout: None,
        });
    }
    let unspent =
        fund.pool(gift.restricted_purpose.as_deref()).unspent.get(&gift.ordinal).map_or(Fen::ZERO, |u| u.amount);
    Some(Trace {
        fund: fund_id.clone(),
        donation: donation.clone(),
        amount_fen: gift.amount,
        restricted_purpose: gift.restricted_purpose.as_deref().map(str::to_owned),
        received_at: gift.received_at,
        allocations,
        refunded_fen: gift.refunded,
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
