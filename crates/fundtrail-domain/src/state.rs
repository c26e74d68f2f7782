//! The state the fold builds: keys and roles, and per fund its cash, goods,
//! pledges, donations and proposals.
//!
//! Everything is in ordered maps so that serialising a state gives the same
//! bytes on every machine: a replay is compared byte for byte. The maps that
//! grow with the stream (funds, donations, proposals, event ids) are
//! persistent `imbl` maps: cloning a whole [`State`] is O(1), which lets a
//! writer decide a batch on the state, and put the snapshot back if the
//! batch loses a race.

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::admission::IdRecord;
use crate::event::{AuditOpinionKind, Channel, ProposalCategory, Role, VoteChoice};
use crate::ids::{EventId, FundId, KeyId, PledgeId, ProposalId, Sha256Hex};
use crate::money::{Fen, MoneyOverflow};
use crate::packed_map::PackedMap;

/// The whole state of a FundTrail host: what every rule is decided on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub host: Option<Host>,
    pub keys: OrdMap<KeyId, KeyInfo>,
    /// Roles by scope (a fund id, or "host" for host-wide roles), then key.
    pub roles: OrdMap<FundId, OrdMap<KeyId, BTreeSet<Role>>>,
    pub funds: OrdMap<FundId, Fund>,
    /// Every event applied, by id, with where it appeared and what it said:
    /// the same id twice has one effect, and admission tells a resend from a
    /// reuse by the record. The fold's one index of event ids.
    pub event_ids: PackedMap<EventId, IdRecord>,
    /// The host's annual reports by year.
    pub annual_reports: BTreeMap<i32, Sha256Hex>,
    /// How many events have been applied.
    pub events_applied: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub host_key: KeyId,
    #[serde(with = "crate::timestamp")]
    pub established_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Raw Ed25519 public key, base64.
    pub public_key: String,
    pub label: String,
}

/// Cash by state. available = received − refunded − reserved − paid ≥ 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cash {
    pub received: Fen,
    pub refunded: Fen,
    /// Approved for proposals and not yet paid or released.
    pub reserved: Fen,
    pub paid: Fen,
}

impl Cash {
    pub fn available(&self) -> Result<Fen, MoneyOverflow> {
        self.received.checked_sub(self.refunded)?.checked_sub(self.reserved)?.checked_sub(self.paid)
    }
}

/// Income through one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTotals {
    pub received: Fen,
    pub refunded: Fen,
    pub donations: u64,
    pub goods_value: Fen,
    pub pledged: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fund {
    pub name: String,
    pub community: String,
    #[serde(with = "crate::timestamp")]
    pub opened_at: DateTime<Utc>,
    /// The seated committee, empty until seated.
    pub committee: Vec<KeyId>,
    pub cash: Cash,
    pub by_channel: BTreeMap<Channel, ChannelTotals>,
    pub donations: PackedMap<EventId, Donation>,
    /// Receipt numbers in use, to refuse reuse.
    pub receipt_numbers: OrdMap<String, EventId>,
    /// Goods on hand by (name, unit).
    pub goods: BTreeMap<String, BTreeMap<String, GoodsStock>>,
    pub goods_received_value: Fen,
    pub goods_distributed_value: Fen,
    pub pledges: OrdMap<PledgeId, Pledge>,
    pub proposals: OrdMap<ProposalId, Proposal>,
    pub disclosures: Vec<Disclosure>,
    pub audits: Vec<AuditOpinion>,
    /// Cash income (received − refunded) by calendar year of `occurred_at`.
    pub income_by_year: BTreeMap<i32, Fen>,
    /// Payouts by calendar year: (charity, management).
    pub spending_by_year: BTreeMap<i32, Spending>,
    /// The purposes gifts may be restricted to, by name (declared and retired by the host).
    pub purposes: BTreeMap<String, Purpose>,
    /// Cash restricted to no purpose: see [`Pool`].
    pub unrestricted: Pool,
    /// Cash restricted to each declared purpose, by name (a pool per declared purpose).
    pub restricted: BTreeMap<String, Pool>,
    /// Cash gifts received so far: the next gift's ordinal (its place in the
    /// fund's stream order, which the allocation's first in, first out follows).
    pub gifts: u64,
    /// Accounts per calendar year of `occurred_at` (see [`YearAccounts`]).
    pub accounts: BTreeMap<i32, YearAccounts>,
    /// Goods in kind lot by lot: where each line of each goods gift went (see [`GoodsLots`]).
    pub goods_lots: GoodsLots,
}

impl Fund {
    /// The pool of cash restricted to `purpose`, or the unrestricted pool.
    pub fn pool(&self, purpose: Option<&str>) -> &Pool {
        match purpose {
            None => &self.unrestricted,
            Some(name) => self.restricted.get(name).expect("a restricted pool exists for every declared purpose"),
        }
    }

    pub fn pool_mut(&mut self, purpose: Option<&str>) -> &mut Pool {
        match purpose {
            None => &mut self.unrestricted,
            Some(name) => self.restricted.get_mut(name).expect("a restricted pool exists for every declared purpose"),
        }
    }

    /// Restricted cash available in every pool together.
    pub fn restricted_available(&self) -> Result<Fen, MoneyOverflow> {
        self.restricted.values().try_fold(Fen::ZERO, |sum, pool| sum.checked_add(pool.cash.available()?))
    }
}

/// A purpose gifts may be restricted to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    pub description: String,
    #[serde(with = "crate::timestamp")]
    pub declared_at: DateTime<Utc>,
    /// When it was retired: no new gift, pledge or proposal may name it from then on.
    #[serde(with = "crate::timestamp::option")]
    pub retired_at: Option<DateTime<Utc>>,
}

/// One pool of a fund's cash: the money restricted to one purpose, or the
/// unrestricted money. `cash` counts it; `unspent` says whose it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub cash: Cash,
    /// The money of each gift in this pool that is neither reserved, paid nor
    /// refunded, by the gift's ordinal ([`Donation::ordinal`]): the queue that
    /// reservations take from, lowest ordinal first. Its amounts sum to
    /// `cash.available()`.
    pub unspent: PackedMap<u64, Unspent>,
}

/// A gift's money still unspent in its pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unspent {
    pub donation: EventId,
    pub amount: Fen,
}

/// One piece of a proposal's reservation: `amount` of one gift's money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub ordinal: u64,
    pub donation: EventId,
    /// The pool the money came from: its purpose, or `None` for unrestricted.
    pub pool: Option<String>,
    pub amount: Fen,
}

/// One piece of a payout: `amount` of one gift's money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub donation: EventId,
    pub pool: Option<String>,
    pub amount: Fen,
}

/// Where a gift's money was spent: `amount` of it paid by `payout` for `proposal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    pub proposal: ProposalId,
    pub payout: EventId,
    pub amount: Fen,
}

/// A year of a fund's accounts, as non-profit accounts keep them: income split
/// into restricted (限定性) and unrestricted (非限定性) by channel, spending by purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearAccounts {
    /// Cash gifts received minus refunds, by channel: unrestricted.
    pub income_unrestricted: BTreeMap<Channel, Fen>,
    /// Cash gifts received minus refunds, by channel, then purpose: restricted.
    pub income_restricted: BTreeMap<Channel, BTreeMap<String, Fen>>,
    /// Goods received (estimated value) by channel, then purpose ("" = unrestricted).
    pub goods_income: BTreeMap<Channel, BTreeMap<String, Fen>>,
    /// Payouts by the purpose of the money that paid them ("" = unrestricted money).
    pub spending: BTreeMap<String, Fen>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spending {
    pub charity: Fen,
    pub management: Fen,
}

/// A cash gift, as the fold keeps it: one per gift, so a million of them on a
/// city's stream. What every gift has is held inline (72 bytes); what only
/// some gifts have (a refund, a pledge, a receipt, a purpose, reservations,
/// payouts) is in [`DonationMore`], allocated when a gift first has any of it
/// (`docs/performance.md`, "Fold memory"). It serialises as one flat record,
/// the same bytes as before the split (`DonationRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DonationRecord", into = "DonationRecord")]
pub struct Donation {
    pub amount: Fen,
    /// The gift's place in the fund's stream of cash gifts (0, 1, 2, …).
    pub ordinal: u64,
    pub donor: Sha256Hex,
    pub received_at: DateTime<Utc>,
    pub channel: Channel,
    more: Option<Box<DonationMore>>,
}

/// What only some gifts have; see [`Donation`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DonationMore {
    pub refunded: Fen,
    pub pledge: Option<PledgeId>,
    /// The active official receipt number, if one is issued.
    pub receipt_no: Option<Box<str>>,
    /// The purpose the gift is restricted to, or `None` for unrestricted.
    pub restricted_purpose: Option<Box<str>>,
    /// The gift's money currently reserved for each proposal.
    pub reserved: BTreeMap<ProposalId, Fen>,
    /// The gift's money paid out, payout by payout, in stream order.
    pub spent: Vec<Spent>,
}

/// A gift with none of [`DonationMore`].
static NO_MORE: DonationMore = DonationMore {
    refunded: Fen::ZERO,
    pledge: None,
    receipt_no: None,
    restricted_purpose: None,
    reserved: BTreeMap::new(),
    spent: Vec::new(),
};

impl Donation {
    pub fn new(
        amount: Fen,
        ordinal: u64,
        donor: Sha256Hex,
        received_at: DateTime<Utc>,
        channel: Channel,
        more: DonationMore,
    ) -> Donation {
        let mut donation = Donation { amount, ordinal, donor, received_at, channel, more: None };
        if more != NO_MORE {
            donation.more = Some(Box::new(more));
        }
        donation
    }

    /// What only some gifts have (all empty for a gift with none of it).
    pub fn more(&self) -> &DonationMore {
        self.more.as_deref().unwrap_or(&NO_MORE)
    }

    /// [`Donation::more`], to change (allocated on first use).
    pub fn more_mut(&mut self) -> &mut DonationMore {
        self.more.get_or_insert_with(Box::default)
    }

    pub fn refunded(&self) -> Fen {
        self.more().refunded
    }

    pub fn pledge(&self) -> Option<&PledgeId> {
        self.more().pledge.as_ref()
    }

    pub fn receipt_no(&self) -> Option<&str> {
        self.more().receipt_no.as_deref()
    }

    pub fn restricted_purpose(&self) -> Option<&str> {
        self.more().restricted_purpose.as_deref()
    }

    pub fn reserved(&self) -> &BTreeMap<ProposalId, Fen> {
        &self.more().reserved
    }

    pub fn spent(&self) -> &[Spent] {
        &self.more().spent
    }
}

/// A [`Donation`] as it is serialised: every field, in the order the state's
/// formats have always had them (snapshots and JSON are unchanged by the split).
#[derive(Clone, Serialize, Deserialize)]
struct DonationRecord {
    amount: Fen,
    refunded: Fen,
    channel: Channel,
    donor: Sha256Hex,
    pledge: Option<PledgeId>,
    #[serde(with = "crate::timestamp")]
    received_at: DateTime<Utc>,
    receipt_no: Option<Box<str>>,
    restricted_purpose: Option<Box<str>>,
    ordinal: u64,
    reserved: BTreeMap<ProposalId, Fen>,
    spent: Vec<Spent>,
}

impl From<DonationRecord> for Donation {
    fn from(r: DonationRecord) -> Donation {
        let more = DonationMore {
            refunded: r.refunded,
            pledge: r.pledge,
            receipt_no: r.receipt_no,
            restricted_purpose: r.restricted_purpose,
            reserved: r.reserved,
            spent: r.spent,
        };
        Donation::new(r.amount, r.ordinal, r.donor, r.received_at, r.channel, more)
    }
}

impl From<Donation> for DonationRecord {
    fn from(d: Donation) -> DonationRecord {
        let more = d.more.map(|m| *m).unwrap_or_default();
        DonationRecord {
            amount: d.amount,
            refunded: more.refunded,
            channel: d.channel,
            donor: d.donor,
            pledge: more.pledge,
            received_at: d.received_at,
            receipt_no: more.receipt_no,
            restricted_purpose: more.restricted_purpose,
            ordinal: d.ordinal,
            reserved: more.reserved,
            spent: more.spent,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsStock {
    pub quantity: u64,
    /// Estimated value of what is on hand.
    pub value: Fen,
    pub received_quantity: u64,
}

/// Goods in kind, traced (docs/design.md §1.6, "Goods"): every line of every
/// `goods.received` is a *lot*; the lots still in stock wait in first in, first
/// out queues, one per pool (a purpose, or unrestricted) of each (name, unit);
/// each `goods.distributed` takes from them. The fund's valuation
/// ([`GoodsStock`], `goods_distributed_value`) is kept apart and unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsLots {
    /// Goods gifts by their event id.
    pub gifts: OrdMap<EventId, GoodsGift>,
    /// Lots in stock by name, then unit.
    pub stock: BTreeMap<String, BTreeMap<String, LotPools>>,
    /// Lots received so far: the next lot's ordinal (stream order, line by line).
    pub lots: u64,
    /// Distributions by their event id.
    pub distributions: OrdMap<EventId, Distribution>,
}

/// The lots in stock of one (name, unit): a queue per pool, by lot ordinal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotPools {
    pub unrestricted: OrdMap<u64, LotLeft>,
    /// Lots restricted to each purpose, by purpose name (absent: none ever received).
    pub restricted: BTreeMap<String, OrdMap<u64, LotLeft>>,
}

impl LotPools {
    /// The queue of `pool` (a purpose, or `None` for unrestricted), if it exists.
    pub fn queue(&self, pool: Option<&str>) -> Option<&OrdMap<u64, LotLeft>> {
        match pool {
            None => Some(&self.unrestricted),
            Some(name) => self.restricted.get(name),
        }
    }

    /// Units in stock in `pool`'s queue.
    pub fn units(&self, pool: Option<&str>) -> u64 {
        self.queue(pool).map_or(0, |q| q.values().map(|l| l.left).sum())
    }
}

/// What a goods distribution for `purpose` (its proposal's purpose, or `None`)
/// may take of one (name, unit), and what it may not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoodsUsable {
    /// Units restricted to `purpose` (0 when `None`).
    pub restricted: u64,
    pub unrestricted: u64,
    /// Units restricted to other purposes: never usable for it.
    pub other: u64,
}

/// A lot still (partly) in stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotLeft {
    pub gift: EventId,
    /// The line of the gift (0-based).
    pub line: u32,
    /// Units of the lot in stock (> 0).
    pub left: u64,
}

/// A goods gift: its lines, each a lot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsGift {
    #[serde(with = "crate::timestamp")]
    pub received_at: DateTime<Utc>,
    pub restricted_purpose: Option<String>,
    pub lines: Vec<GoodsLot>,
}

/// One line of a goods gift and where its units went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsLot {
    pub name: String,
    pub unit: String,
    pub quantity: u64,
    pub unit_value_fen: Fen,
    /// The lot's place in the fund's stream of lots (0, 1, 2, …).
    pub ordinal: u64,
    /// Units handed out, distribution by distribution, in stream order.
    pub handed_out: Vec<HandedOut>,
}

/// `quantity` units of a lot handed out by `distribution`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOut {
    pub distribution: EventId,
    pub quantity: u64,
}

/// A `goods.distributed`: what it said and the lots it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    #[serde(with = "crate::timestamp")]
    pub distributed_at: DateTime<Utc>,
    pub proposal: Option<ProposalId>,
    /// The event's free text: to whom or for what.
    pub purpose: String,
    /// The lots taken, in the order taken.
    pub sources: Vec<LotTaken>,
}

/// `quantity` units of one lot taken by a distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotTaken {
    pub gift: EventId,
    pub line: u32,
    /// The pool the lot was in: its purpose, or `None` for unrestricted.
    pub pool: Option<String>,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pledge {
    pub channel: Channel,
    pub donor: Sha256Hex,
    pub amount: Fen,
    /// Cash received against the pledge so far (net of refunds).
    pub received: Fen,
    /// Estimated value of goods received against the pledge.
    pub goods_value: Fen,
    pub terms: String,
    /// The purpose every payment against the pledge must be restricted to.
    pub restricted_purpose: Option<String>,
}

/// Where a proposal is in its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Submitted,
    Endorsed,
    Rejected,
    Applied,
    Approved,
    Declined,
    Closed,
}

impl ProposalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Submitted => "submitted",
            ProposalStatus::Endorsed => "endorsed",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::Applied => "applied",
            ProposalStatus::Approved => "approved",
            ProposalStatus::Declined => "declined",
            ProposalStatus::Closed => "closed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub title: String,
    pub category: ProposalCategory,
    pub requested: Fen,
    pub payee: String,
    pub status: ProposalStatus,
    pub votes: BTreeMap<KeyId, VoteChoice>,
    pub opinions: Vec<Opinion>,
    pub evidence: Vec<Sha256Hex>,
    pub approved: Fen,
    pub paid: Fen,
    /// Reserved money given back when the proposal closed.
    pub released: Fen,
    pub payouts: Vec<Payout>,
    #[serde(with = "crate::timestamp")]
    pub submitted_at: DateTime<Utc>,
    /// The purpose it serves, or `None`: only unrestricted money may pay it.
    pub purpose: Option<String>,
    /// The gifts' money reserved for it and not yet paid or released, in the
    /// order it was reserved (payouts spend it from the front).
    pub reservation: Vec<Slice>,
    #[serde(with = "crate::timestamp::option")]
    pub approved_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::timestamp::option")]
    pub closed_at: Option<DateTime<Utc>>,
}

impl Proposal {
    /// Approved and neither paid nor released: still reserved.
    pub fn remainder(&self) -> Result<Fen, MoneyOverflow> {
        self.approved.checked_sub(self.paid)?.checked_sub(self.released)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opinion {
    pub summary: String,
    pub support: u32,
    pub oppose: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub event: EventId,
    pub amount: Fen,
    pub payment_ref: String,
    #[serde(with = "crate::timestamp")]
    pub paid_at: DateTime<Utc>,
    /// The gifts' money that paid it, in the order spent.
    pub sources: Vec<Source>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    pub event: EventId,
    #[serde(with = "crate::timestamp")]
    pub period_start: DateTime<Utc>,
    #[serde(with = "crate::timestamp")]
    pub period_end: DateTime<Utc>,
    #[serde(with = "crate::timestamp")]
    pub published_at: DateTime<Utc>,
    pub report: Sha256Hex,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOpinion {
    pub year: i32,
    pub opinion: AuditOpinionKind,
    pub report: Sha256Hex,
}

impl State {
    /// Roles `key` holds in `scope`.
    pub fn roles_of(&self, scope: &FundId, key: &KeyId) -> Option<&BTreeSet<Role>> {
        self.roles.get(scope).and_then(|m| m.get(key))
    }

    pub fn has_role(&self, scope: &FundId, key: &KeyId, role: Role) -> bool {
        self.roles_of(scope, key).is_some_and(|r| r.contains(&role))
    }

    /// Checks every fund's cash invariant; used by tests and after replay.
    pub fn assert_invariants(&self) {
        for (id, fund) in &self.funds {
            let available = fund.cash.available().expect("cash arithmetic overflowed");
            assert!(!available.is_negative(), "fund {id}: available {available} < 0");
            assert!(!fund.cash.reserved.is_negative(), "fund {id}: reserved < 0");
            let mut reserved = Fen::ZERO;
            let mut paid = Fen::ZERO;
            for (pid, p) in &fund.proposals {
                let remainder = p.remainder().expect("proposal arithmetic overflowed");
                assert!(!remainder.is_negative(), "fund {id}: proposal {pid} paid beyond approval");
                reserved = reserved.checked_add(remainder).expect("overflow");
                paid = paid.checked_add(p.paid).expect("overflow");
            }
            assert_eq!(reserved, fund.cash.reserved, "fund {id}: reserved differs from proposals");
            assert_eq!(paid, fund.cash.paid, "fund {id}: paid differs from proposals");
            fund.assert_allocation(id);
            fund.assert_goods_lots(id);
            let size = fund.committee.len();
            assert!(size == 0 || (size >= 3 && !size.is_multiple_of(2)), "fund {id}: committee size {size}");
        }
    }
}

impl Fund {
    /// Checks the allocation against the totals: every pool's queue sums to its
    /// available cash, the pools sum to the fund's cash, every gift's parts sum to
    /// the gift, every payout's sources to the payout, and restricted money never
    /// paid for a proposal of another purpose.
    pub fn assert_allocation(&self, id: &FundId) {
        let add = |a: Fen, b: Fen| a.checked_add(b).expect("overflow");
        let mut total = Cash::default();
        let pools = std::iter::once((None, &self.unrestricted))
            .chain(self.restricted.iter().map(|(name, pool)| (Some(name.as_str()), pool)));
        for (name, pool) in pools {
            let queued = pool.unspent.values().fold(Fen::ZERO, |sum, u| add(sum, u.amount));
            assert_eq!(queued, pool.cash.available().expect("overflow"), "fund {id}: pool {name:?} queue");
            assert!(!pool.cash.available().expect("overflow").is_negative(), "fund {id}: pool {name:?} < 0");
            total.received = add(total.received, pool.cash.received);
            total.refunded = add(total.refunded, pool.cash.refunded);
            total.reserved = add(total.reserved, pool.cash.reserved);
            total.paid = add(total.paid, pool.cash.paid);
        }
        assert_eq!(total, self.cash, "fund {id}: pools differ from the fund's cash");
        for (did, d) in &self.donations {
            let unspent = self.pool(d.restricted_purpose()).unspent.get(&d.ordinal).map_or(Fen::ZERO, |u| u.amount);
            let reserved = d.reserved().values().fold(Fen::ZERO, |s, a| add(s, *a));
            let spent = d.spent().iter().fold(Fen::ZERO, |s, x| add(s, x.amount));
            assert_eq!(add(add(add(d.refunded(), unspent), reserved), spent), d.amount, "fund {id}: gift {did} parts");
        }
        for (pid, p) in &self.proposals {
            let reserved = p.reservation.iter().fold(Fen::ZERO, |s, x| add(s, x.amount));
            assert_eq!(reserved, p.remainder().expect("overflow"), "fund {id}: proposal {pid} reservation");
            for slice in &p.reservation {
                assert!(
                    slice.pool.is_none() || slice.pool == p.purpose,
                    "fund {id}: {pid} holds another purpose's money"
                );
            }
            for payout in &p.payouts {
                let paid = payout.sources.iter().fold(Fen::ZERO, |s, x| add(s, x.amount));
                assert_eq!(paid, payout.amount, "fund {id}: payout {} sources", payout.event);
                for source in &payout.sources {
                    assert!(
                        source.pool.is_none() || source.pool == p.purpose,
                        "fund {id}: {pid} paid with another purpose's money"
                    );
                }
            }
        }
    }
}

impl Fund {
    /// What a distribution serving `purpose` may take of (`name`, `unit`)
    /// (docs/design.md §1.6, "Goods"): that purpose's restricted lots and the
    /// unrestricted lots; never lots restricted to another purpose.
    pub fn goods_usable(&self, name: &str, unit: &str, purpose: Option<&str>) -> GoodsUsable {
        let Some(pools) = self.goods_lots.stock.get(name).and_then(|u| u.get(unit)) else {
            return GoodsUsable::default();
        };
        let restricted = purpose.map_or(0, |p| pools.units(Some(p)));
        let all_restricted: u64 = pools.restricted.keys().map(|p| pools.units(Some(p))).sum();
        GoodsUsable { restricted, unrestricted: pools.units(None), other: all_restricted - restricted }
    }

    /// Checks the goods lots: per lot, handed out + in stock = quantity; the
    /// lots in stock of each (name, unit) sum to the stock on hand; every
    /// distribution's lots are unrestricted or restricted to its proposal's purpose.
    pub fn assert_goods_lots(&self, id: &FundId) {
        let lots = &self.goods_lots;
        for (gid, gift) in &lots.gifts {
            for (i, lot) in gift.lines.iter().enumerate() {
                let pool = lots.stock.get(&lot.name).and_then(|u| u.get(&lot.unit));
                let queue = pool.and_then(|p| p.queue(gift.restricted_purpose.as_deref()));
                let left = queue.and_then(|q| q.get(&lot.ordinal));
                if let Some(left) = left {
                    assert!(left.left > 0 && left.gift == *gid && left.line as usize == i, "fund {id}: lot {gid}/{i}");
                }
                let handed = lot.handed_out.iter().map(|h| h.quantity).try_fold(0u64, u64::checked_add);
                let total = handed.and_then(|h| h.checked_add(left.map_or(0, |l| l.left)));
                assert_eq!(total, Some(lot.quantity), "fund {id}: lot {gid}/{i}: handed out + in stock");
            }
        }
        for (name, units) in &self.goods {
            for (unit, stock) in units {
                let pools = lots.stock.get(name).and_then(|u| u.get(unit));
                let in_lots =
                    pools.map_or(0, |p| p.units(None) + p.restricted.keys().map(|k| p.units(Some(k))).sum::<u64>());
                assert_eq!(in_lots, stock.quantity, "fund {id}: lots of {name} ({unit}) differ from the stock");
            }
        }
        for (did, d) in &lots.distributions {
            let purpose = d.proposal.as_ref().and_then(|p| self.proposals.get(p)).and_then(|p| p.purpose.as_ref());
            for source in &d.sources {
                assert!(
                    source.pool.is_none() || source.pool.as_ref() == purpose,
                    "fund {id}: distribution {did} took goods restricted to another purpose"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gift(more: DonationMore) -> Donation {
        let at = DateTime::from_timestamp(1_780_000_000, 0).expect("in range");
        let donor = Sha256Hex::new("ab".repeat(32)).expect("valid");
        Donation::new(Fen::new(52_000).expect("in range"), 7, donor, at, Channel::Direct, more)
    }

    #[test]
    fn a_gift_with_nothing_more_is_72_bytes_and_allocates_nothing_more() {
        assert!(std::mem::size_of::<Donation>() <= 72, "{} bytes", std::mem::size_of::<Donation>());
        let plain = gift(DonationMore::default());
        assert!(plain.more.is_none());
        assert_eq!(plain.refunded(), Fen::ZERO);
        assert!(plain.spent().is_empty() && plain.reserved().is_empty() && plain.receipt_no().is_none());
    }

    #[test]
    fn serialises_as_one_flat_record_with_every_field_in_order() {
        let plain = gift(DonationMore::default());
        let json = serde_json::to_string(&plain).expect("serialises");
        assert_eq!(
            json,
            concat!(
                r#"{"amount":52000,"refunded":0,"channel":"direct","donor":""#,
                "abababababababababababababababababababababababababababababababab",
                r#"","pledge":null,"received_at":"2026-05-28T20:26:40Z","receipt_no":null,"#,
                r#""restricted_purpose":null,"ordinal":7,"reserved":{},"spent":[]}"#
            )
        );
        let mut restricted =
            gift(DonationMore { restricted_purpose: Some("助老".into()), ..DonationMore::default() });
        restricted.more_mut().refunded = Fen::new(100).expect("in range");
        for d in [plain, restricted] {
            let back: Donation = serde_json::from_str(&serde_json::to_string(&d).expect("serialises")).expect("reads");
            assert_eq!(back, d);
        }
    }
}
