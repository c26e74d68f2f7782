//! The read views projections store, rendered from the fold's state. Each is
//! a plain serialisable struct: what the HTTP API serves and what tests compare.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fundtrail_domain::event::{Channel, EventBody, GoodsLine, Role, VoteChoice};
use fundtrail_domain::rules::{tally, totals_of, Tally};
use fundtrail_domain::state::{ChannelTotals, Proposal, ProposalStatus, State};
use fundtrail_domain::{EventId, Fen, FundId, KeyId, ProposalId, Sha256Hex};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    pub key: KeyId,
    pub label: String,
    pub public_key: String,
    /// Roles by scope ("host" or a fund id).
    pub roles: BTreeMap<String, Vec<Role>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashView {
    pub received_fen: Fen,
    pub refunded_fen: Fen,
    pub reserved_fen: Fen,
    pub paid_fen: Fen,
    pub available_fen: Fen,
}

/// Income by one channel. Amounts carry the `_fen` suffix like every other
/// amount; the aliases read views stored before the rename.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    #[serde(alias = "received")]
    pub received_fen: Fen,
    #[serde(alias = "refunded")]
    pub refunded_fen: Fen,
    pub donations: u64,
    #[serde(alias = "goods_value")]
    pub goods_value_fen: Fen,
    #[serde(alias = "pledged")]
    pub pledged_fen: Fen,
}

impl From<&ChannelTotals> for ChannelView {
    fn from(t: &ChannelTotals) -> ChannelView {
        ChannelView {
            received_fen: t.received,
            refunded_fen: t.refunded,
            donations: t.donations,
            goods_value_fen: t.goods_value,
            pledged_fen: t.pledged,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsView {
    pub name: String,
    pub unit: String,
    pub on_hand: u64,
    pub received: u64,
    pub value_on_hand_fen: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PledgeView {
    pub pledge: String,
    pub channel: Channel,
    pub donor: Sha256Hex,
    pub pledged_fen: Fen,
    pub received_fen: Fen,
    pub goods_value_fen: Fen,
    pub terms: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub key: KeyId,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundView {
    pub fund: FundId,
    pub name: String,
    pub community: String,
    pub opened_at: DateTime<Utc>,
    pub committee: Vec<MemberView>,
    pub cash: CashView,
    pub by_channel: BTreeMap<Channel, ChannelView>,
    pub goods: Vec<GoodsView>,
    pub goods_received_value_fen: Fen,
    pub goods_distributed_value_fen: Fen,
    pub pledges: Vec<PledgeView>,
    pub pledged_fen: Fen,
    pub pledged_received_fen: Fen,
    pub proposals_by_status: BTreeMap<String, u64>,
    pub donations: u64,
    pub income_by_year: BTreeMap<i32, Fen>,
    pub disclosures: Vec<DisclosureView>,
    pub audits: Vec<fundtrail_domain::state::AuditOpinion>,
}

/// A published disclosure report, exactly as the fold records it.
pub type DisclosureView = fundtrail_domain::state::Disclosure;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallyView {
    pub seated: usize,
    pub approvals: usize,
    pub rejections: usize,
    pub recusals: usize,
    pub pending: usize,
    pub needed: usize,
    pub endorsed: bool,
}

impl From<Tally> for TallyView {
    fn from(t: Tally) -> TallyView {
        TallyView {
            seated: t.seated,
            approvals: t.approvals,
            rejections: t.rejections,
            recusals: t.recusals,
            pending: t.pending,
            needed: t.needed(),
            endorsed: t.is_endorsed(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteView {
    pub member: KeyId,
    pub label: String,
    pub choice: VoteChoice,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    pub fund: FundId,
    pub proposal: ProposalId,
    pub title: String,
    pub category: fundtrail_domain::event::ProposalCategory,
    pub payee: String,
    pub status: ProposalStatus,
    pub requested_fen: Fen,
    pub approved_fen: Fen,
    pub paid_fen: Fen,
    pub released_fen: Fen,
    pub remainder_fen: Fen,
    pub votes: Vec<VoteView>,
    pub tally: TallyView,
    pub opinions: Vec<fundtrail_domain::state::Opinion>,
    pub evidence: Vec<Sha256Hex>,
    pub payouts: Vec<fundtrail_domain::state::Payout>,
    pub submitted_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A donation as the public sees it: no donor but the salted commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonationView {
    pub id: EventId,
    pub fund: FundId,
    pub seq: u64,
    pub ledger_index: u64,
    pub occurred_at: DateTime<Utc>,
    /// "cash" or "goods".
    pub kind: String,
    pub channel: Channel,
    pub donor: Sha256Hex,
    pub amount_fen: Fen,
    pub refunded_fen: Fen,
    pub pledge: Option<String>,
    pub receipt_no: Option<String>,
    pub goods: Vec<GoodsLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureTotalsView {
    pub fund: FundId,
    pub totals: fundtrail_domain::event::DisclosureTotals,
    pub reports: Vec<DisclosureView>,
}

fn label(state: &State, key: &KeyId) -> String {
    state.keys.get(key).map(|k| k.label.clone()).unwrap_or_default()
}

pub fn key_view(state: &State, key: &KeyId) -> Option<KeyView> {
    let info = state.keys.get(key)?;
    let mut roles = BTreeMap::new();
    for (scope, by_key) in state.roles.iter() {
        if let Some(set) = by_key.get(key) {
            if !set.is_empty() {
                roles.insert(scope.to_string(), set.iter().copied().collect());
            }
        }
    }
    Some(KeyView { key: key.clone(), label: info.label.clone(), public_key: info.public_key.clone(), roles })
}

pub fn fund_view(state: &State, id: &FundId) -> Option<FundView> {
    let f = state.funds.get(id)?;
    let cash = CashView {
        received_fen: f.cash.received,
        refunded_fen: f.cash.refunded,
        reserved_fen: f.cash.reserved,
        paid_fen: f.cash.paid,
        available_fen: f.cash.available().expect("checked arithmetic"),
    };
    let mut goods = Vec::new();
    for (name, units) in &f.goods {
        for (unit, stock) in units {
            goods.push(GoodsView {
                name: name.clone(),
                unit: unit.clone(),
                on_hand: stock.quantity,
                received: stock.received_quantity,
                value_on_hand_fen: stock.value,
            });
        }
    }
    let pledges: Vec<PledgeView> = f
        .pledges
        .iter()
        .map(|(id, p)| PledgeView {
            pledge: id.to_string(),
            channel: p.channel,
            donor: p.donor.clone(),
            pledged_fen: p.amount,
            received_fen: p.received,
            goods_value_fen: p.goods_value,
            terms: p.terms.clone(),
        })
        .collect();
    let sum =
        |f: &dyn Fn(&PledgeView) -> Fen| pledges.iter().fold(Fen::ZERO, |a, p| a.checked_add(f(p)).expect("in range"));
    let mut by_status = BTreeMap::new();
    for p in f.proposals.values() {
        *by_status.entry(p.status.as_str().to_owned()).or_insert(0) += 1;
    }
    Some(FundView {
        fund: id.clone(),
        name: f.name.clone(),
        community: f.community.clone(),
        opened_at: f.opened_at,
        committee: f.committee.iter().map(|k| MemberView { key: k.clone(), label: label(state, k) }).collect(),
        cash,
        by_channel: f.by_channel.iter().map(|(c, t)| (*c, ChannelView::from(t))).collect(),
        goods,
        goods_received_value_fen: f.goods_received_value,
        goods_distributed_value_fen: f.goods_distributed_value,
        pledged_fen: sum(&|p| p.pledged_fen),
        pledged_received_fen: sum(&|p| p.received_fen),
        pledges,
        proposals_by_status: by_status,
        donations: f.by_channel.values().map(|c| c.donations).sum(),
        income_by_year: f.income_by_year.clone(),
        disclosures: f.disclosures.clone(),
        audits: f.audits.clone(),
    })
}

pub fn proposal_view(state: &State, fund: &FundId, id: &ProposalId) -> Option<ProposalView> {
    let f = state.funds.get(fund)?;
    let p: &Proposal = f.proposals.get(id)?;
    Some(ProposalView {
        fund: fund.clone(),
        proposal: id.clone(),
        title: p.title.clone(),
        category: p.category,
        payee: p.payee.clone(),
        status: p.status,
        requested_fen: p.requested,
        approved_fen: p.approved,
        paid_fen: p.paid,
        released_fen: p.released,
        remainder_fen: p.remainder().expect("checked arithmetic"),
        votes: p
            .votes
            .iter()
            .map(|(k, c)| VoteView { member: k.clone(), label: label(state, k), choice: *c })
            .collect(),
        tally: tally(f, p).into(),
        opinions: p.opinions.clone(),
        evidence: p.evidence.clone(),
        payouts: p.payouts.clone(),
        submitted_at: p.submitted_at,
        approved_at: p.approved_at,
        closed_at: p.closed_at,
    })
}

pub fn donation_view(
    state: &State,
    fund: &FundId,
    id: &EventId,
    seq: u64,
    event: Option<&fundtrail_domain::Event>,
) -> Option<DonationView> {
    let f = state.funds.get(fund)?;
    if let Some(d) = f.donations.get(id) {
        return Some(DonationView {
            id: id.clone(),
            fund: fund.clone(),
            seq,
            ledger_index: seq - 1,
            occurred_at: d.received_at,
            kind: "cash".into(),
            channel: d.channel,
            donor: d.donor.clone(),
            amount_fen: d.amount,
            refunded_fen: d.refunded(),
            pledge: d.pledge().map(|p| p.to_string()),
            receipt_no: d.receipt_no().map(str::to_owned),
            goods: Vec::new(),
        });
    }
    // Goods donations are not tracked one by one in the state: the event says it all.
    let event = event?;
    let EventBody::GoodsReceived(g) = &event.body else { return None };
    let value = g.items.iter().fold(Fen::ZERO, |a, l| {
        a.checked_add(l.unit_value_fen.checked_mul(l.quantity).expect("checked")).expect("checked")
    });
    Some(DonationView {
        id: id.clone(),
        fund: fund.clone(),
        seq,
        ledger_index: seq - 1,
        occurred_at: event.occurred_at,
        kind: "goods".into(),
        channel: g.channel,
        donor: g.donor.clone(),
        amount_fen: value,
        refunded_fen: Fen::ZERO,
        pledge: g.pledge.as_ref().map(|p| p.to_string()),
        receipt_no: None,
        goods: g.items.clone(),
    })
}

pub fn disclosure_totals_view(state: &State, fund: &FundId) -> Option<DisclosureTotalsView> {
    let f = state.funds.get(fund)?;
    Some(DisclosureTotalsView {
        fund: fund.clone(),
        totals: totals_of(f).expect("checked arithmetic"),
        reports: f.disclosures.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_amounts_carry_the_fen_suffix_and_old_views_still_read() {
        let view = ChannelView::from(&ChannelTotals {
            received: Fen::new(500).unwrap(),
            refunded: Fen::ZERO,
            donations: 2,
            goods_value: Fen::new(30).unwrap(),
            pledged: Fen::new(900).unwrap(),
        });
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"received_fen": 500, "refunded_fen": 0, "donations": 2, "goods_value_fen": 30, "pledged_fen": 900})
        );
        let stored = r#"{"received": 500, "refunded": 0, "donations": 2, "goods_value": 30, "pledged": 900}"#;
        assert_eq!(serde_json::from_str::<ChannelView>(stored).unwrap(), view);
    }
}
