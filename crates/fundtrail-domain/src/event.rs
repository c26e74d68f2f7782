//! The event catalogue: every fact FundTrail records, its fields, who may author
//! it and which subject it is published on.
//!
//! An event on the wire is the JSON object
//! `{id, fund, type, occurred_at, author, body, v}`; [`Event`] is its typed form
//! and [`EventBody`] the typed `body` chosen by `type`. Every body refuses
//! unknown fields. The catalogue in prose, with each type's invariants, is in
//! `schemas/README.md`; the JSON Schemas beside it are the wire contract.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, FundId, KeyId, PledgeId, ProposalId, Sha256Hex};
use crate::money::Fen;
use crate::subject::{self, Aggregate, AggregateKind as A, SubjectVersion};

/// The newest schema version any event type has. Each type's own current
/// version is [`EventType::version`]; older versions stay readable: [`upcast`]
/// lifts them to it.
pub const SCHEMA_VERSION_MAX: u32 = 2;

/// Longest free text (reasons, descriptions, reports), in characters.
pub const TEXT_CHARS_MAX: usize = 2_000;
/// Longest name or label, in characters.
pub const NAME_CHARS_MAX: usize = 200;
/// Most evidence hashes on one event.
pub const EVIDENCE_COUNT_MAX: usize = 32;
/// Most goods lines on one event.
pub const ITEMS_COUNT_MAX: usize = 64;
/// Largest committee.
pub const COMMITTEE_SIZE_MAX: usize = 51;
/// Largest quantity of one goods line.
pub const QUANTITY_MAX: u64 = 1_000_000_000;

/// `ALL` and `as_str` (the snake_case name serde uses) of an enum of plain variants.
macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }
    };
}

/// A role, granted to a key per fund (or host-wide for `host_admin` and `log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Enrols keys, opens funds, grants roles, seats committees. Host-wide.
    HostAdmin,
    /// A payment or cashier service that records donations and pledges.
    Intake,
    /// The community organisation that proposes uses of the fund.
    Proposer,
    /// A member of the fund's management committee.
    CommitteeMember,
    /// The host's approver of applications.
    HostApprover,
    /// The host's treasurer: pays out, issues receipts.
    HostTreasurer,
    /// An auditor who records audit opinions.
    Auditor,
    /// The key the service signs ledger checkpoints with. Host-wide.
    Log,
}

named!(Role {
    HostAdmin => "host_admin",
    Intake => "intake",
    Proposer => "proposer",
    CommitteeMember => "committee_member",
    HostApprover => "host_approver",
    HostTreasurer => "host_treasurer",
    Auditor => "auditor",
    Log => "log",
});

impl Role {
    /// Host-wide roles are granted in the host scope, all others per fund.
    pub fn is_host_wide(self) -> bool {
        matches!(self, Role::HostAdmin | Role::Log)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How income reached the fund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Service providers running community spaces donate part of their profit.
    SpaceForService,
    /// Merchants at the community market donate part of proceeds, and goods.
    NeighbourhoodMarket,
    /// A community workshop gives part of its revenue.
    MicroWorkshop,
    /// Ordinary donations by people and companies.
    Direct,
}

named!(Channel {
    SpaceForService => "space_for_service",
    NeighbourhoodMarket => "neighbourhood_market",
    MicroWorkshop => "micro_workshop",
    Direct => "direct",
});

/// What a proposal spends money on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalCategory {
    /// A community activity.
    Activity,
    /// A repair or renovation.
    Renovation,
    /// Visits to people in need.
    Visit,
    /// Management cost of running the fund (counts toward the 13% cap).
    Management,
}

/// A committee member's vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteChoice {
    Approve,
    Reject,
    /// Conflict of interest: the member takes no part; the majority is counted without them.
    Recuse,
}

/// An auditor's opinion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOpinionKind {
    Unqualified,
    Qualified,
    Adverse,
    Disclaimer,
}

named!(ProposalCategory { Activity => "activity", Renovation => "renovation", Visit => "visit", Management => "management" });
named!(VoteChoice { Approve => "approve", Reject => "reject", Recuse => "recuse" });
named!(AuditOpinionKind {
    Unqualified => "unqualified",
    Qualified => "qualified",
    Adverse => "adverse",
    Disclaimer => "disclaimer",
});

/// A name typed for an enum that is none of its names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not one of {choices}")]
pub struct UnknownName {
    pub given: String,
    /// Every name, comma-separated.
    pub choices: String,
}

/// `FromStr` by the names of `ALL` (`as_str`), refusing anything else with every name.
macro_rules! from_name {
    ($($ty:ident),+) => {$(
        impl std::str::FromStr for $ty {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<$ty, UnknownName> {
                $ty::ALL.into_iter().find(|v| v.as_str() == text).ok_or_else(|| UnknownName {
                    given: text.to_owned(),
                    choices: $ty::ALL.map(|v| v.as_str()).join(", "),
                })
            }
        }
    )+};
}

from_name!(Role, Channel, ProposalCategory, VoteChoice, AuditOpinionKind);

/// One line of goods donated in kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodsLine {
    /// What it is, e.g. "大米".
    pub name: String,
    pub quantity: u64,
    /// The unit, e.g. "袋" (bag), "箱" (box).
    pub unit: String,
    /// Estimated value of one unit.
    pub unit_value_fen: Fen,
}

/// One line of goods handed out (value follows from what is on hand).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodsOut {
    pub name: String,
    pub quantity: u64,
    pub unit: String,
}

/// Cumulative totals a disclosure report states; they must equal the fold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureTotals {
    pub received_fen: Fen,
    pub refunded_fen: Fen,
    pub reserved_fen: Fen,
    pub paid_fen: Fen,
    pub available_fen: Fen,
    pub goods_received_value_fen: Fen,
    pub goods_distributed_value_fen: Fen,
}

/// The accounts a version 2 disclosure cites: the fund's accounts ([`crate::accounts`])
/// of the calendar year its period ends in, as they stand at the disclosure's place in
/// the stream; every figure must equal the fold's (docs/design.md, "What a disclosure
/// cites"). A figure left out is read as zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureAccounts {
    /// The UTC calendar year of the period's last instant (`period_end` is exclusive).
    pub year: i32,
    /// Cash income of the year net of refunds, not restricted to a purpose.
    pub income_unrestricted_fen: Fen,
    /// Cash income of the year net of refunds, restricted to a purpose.
    pub income_restricted_fen: Fen,
    /// Cash income by channel.
    pub income: BTreeMap<Channel, CitedIncome>,
    /// Goods received in the year at estimated value, by channel.
    pub goods_income: BTreeMap<Channel, CitedIncome>,
    /// Payouts of the year paid with unrestricted money.
    pub spending_unrestricted_fen: Fen,
    /// Payouts of the year paid with money restricted to each purpose.
    pub spending_restricted: BTreeMap<String, Fen>,
    /// Cash net assets at the end of the year (so far): unrestricted.
    pub net_assets_unrestricted_fen: Fen,
    /// Cash net assets at the end of the year (so far) restricted to each purpose.
    pub net_assets_restricted: BTreeMap<String, Fen>,
}

/// One channel's income in [`DisclosureAccounts`]: unrestricted, and restricted by purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitedIncome {
    pub unrestricted_fen: Fen,
    pub restricted: BTreeMap<String, Fen>,
}

/// Whether an event type lives in the host scope (`fund` = "host"), in a fund,
/// or in either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Host,
    Fund,
    Either,
}

/// The catalogue: one entry per event type declares everything about it —
/// its wire name, the roles that may author it (none for genesis, which has
/// its own rule), its scope, the aggregate it belongs to (and so its subject,
/// see [`crate::subject`]), what its version 2 changed if it has one, and its
/// body. Adding an event type is adding one entry; nothing else matches on type
/// names.
///
/// Version 2 of `pledge.recorded`, `donation.received`, `goods.received` and
/// `proposal.submitted` added purposes (`docs/design.md`, "Purposes and the
/// allocation"); version 2 of `disclosure.published` cites the year's accounts
/// (`docs/design.md`, "What a disclosure cites"). Each such entry names the field
/// a version-1 body is read with as `null` (`v2_reads_v1_as_null`; see [`upcast`]).
macro_rules! catalogue {
    // A type is at version 1 unless its entry declares what version 2 changed.
    (@version) => { 1 };
    (@version $v1_null:literal) => { 2 };
    (@v1_null) => { None };
    (@v1_null $v1_null:literal) => { Some($v1_null) };
    ($(
        $(#[$doc:meta])*
        $variant:ident = $type:literal {
            roles: [$( $role:ident ),* $(,)?],
            scope: $scope:ident,
            aggregate: |$event:pat_param, $body:pat_param| $aggregate:expr,
            $( v2_reads_v1_as_null: $v1_null:literal, )?
            body: { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? } $(,)?
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $variant { $( $(#[$fdoc])* pub $field: $ty ),* }
        )*

        /// The typed body of an event; the variant is chosen by the wire `type`.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum EventBody { $( $variant($variant) ),* }

        /// An event type without its body: the key to the catalogue's facts.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType { $( #[doc = $type] $variant ),* }

        /// Every event type name, in catalogue order.
        pub const EVENT_TYPES: &[&str] = &[$( $type ),*];

        impl EventType {
            /// Every event type, in catalogue order.
            pub const ALL: &'static [EventType] = &[$( EventType::$variant ),*];

            /// The wire `type`, e.g. `donation.received`.
            pub fn name(self) -> &'static str {
                match self { $( EventType::$variant => $type ),* }
            }

            /// The event type of a wire `type`, if the catalogue has it.
            pub fn from_name(name: &str) -> Option<EventType> {
                match name {
                    $( $type => Some(EventType::$variant), )*
                    _ => None,
                }
            }

            /// The roles allowed to author events of this type (empty for
            /// genesis, which only the key it names may sign).
            pub fn roles(self) -> &'static [Role] {
                match self { $( EventType::$variant => &[$( Role::$role ),*] ),* }
            }

            /// Where events of this type live: the host scope, a fund, or either.
            pub fn scope(self) -> Scope {
                match self { $( EventType::$variant => Scope::$scope ),* }
            }

            /// The type's current schema version: what writers write and [`upcast`]
            /// lifts older bodies to (2 for a type whose entry declares
            /// `v2_reads_v1_as_null`, 1 otherwise).
            pub fn version(self) -> u32 {
                match self { $( EventType::$variant => catalogue!(@version $($v1_null)?) ),* }
            }

            /// For a type at version 2, the field a version-1 body is read with as
            /// `null` (added by version 2, or no longer binding as version 1 wrote it).
            pub fn v1_read_as_null(self) -> Option<&'static str> {
                match self { $( EventType::$variant => catalogue!(@v1_null $($v1_null)?) ),* }
            }
        }

        impl EventBody {
            pub fn event_type(&self) -> EventType {
                match self { $( EventBody::$variant(_) => EventType::$variant ),* }
            }

            /// The wire `type`, e.g. `donation.received`.
            pub fn type_name(&self) -> &'static str {
                self.event_type().name()
            }

            /// Parses a body of the named type (at the current schema version).
            pub fn from_json(type_name: &str, body: serde_json::Value) -> Result<EventBody, EventParseError> {
                match type_name {
                    $( $type => serde_json::from_value(body)
                        .map(EventBody::$variant)
                        .map_err(|e| EventParseError::Body { type_name: $type, reason: e.to_string() }), )*
                    other => Err(EventParseError::UnknownType(other.to_owned())),
                }
            }

            pub fn to_json(&self) -> serde_json::Value {
                let value = match self { $( EventBody::$variant(b) => serde_json::to_value(b) ),* };
                value.expect("event bodies always serialise")
            }
        }

        impl Event {
            /// The aggregate the event belongs to (the last two tokens of its subject).
            pub fn aggregate(&self) -> Aggregate {
                match &self.body {
                    $( EventBody::$variant(body) => {
                        let ($event, $body) = (self, body);
                        let (kind, id) = $aggregate;
                        Aggregate { kind, id: id.to_string() }
                    } )*
                }
            }
        }
    };
}

catalogue! {
    /// Genesis: the first event of the stream. The host's key signs it and becomes host_admin.
    HostEstablished = "host.established" {
        roles: [],
        scope: Host,
        aggregate: |_, _| (A::Host, "genesis"),
        body: {
            /// The host organisation, e.g. "某市慈善总会".
            host_name: String,
            /// The host's key (must be the author).
            host_key: KeyId,
            /// Its raw Ed25519 public key, base64.
            public_key: String,
        },
    }
    /// A key becomes known (public key and a label). Roles come separately.
    KeyEnrolled = "key.enrolled" {
        roles: [HostAdmin],
        scope: Host,
        aggregate: |_, b| (A::Key, &b.key),
        body: {
            key: KeyId,
            /// Raw Ed25519 public key, base64 (standard, padded).
            public_key: String,
            /// A label of the key's holder or service, e.g. "收款服务" or "委员 王芳".
            label: String,
        },
    }
    /// A role for `key` in the event's fund (or host-wide in the host scope).
    RoleGranted = "role.granted" {
        roles: [HostAdmin],
        scope: Either,
        aggregate: |_, b| (A::Key, &b.key),
        body: {
            key: KeyId,
            role: Role,
        },
    }
    /// The key loses the role from this point of the stream on.
    RoleRevoked = "role.revoked" {
        roles: [HostAdmin],
        scope: Either,
        aggregate: |_, b| (A::Key, &b.key),
        body: {
            key: KeyId,
            role: Role,
            reason: String,
        },
    }
    /// Every role `old_key` holds in this scope moves to `new_key` (already enrolled).
    KeyRotated = "key.rotated" {
        roles: [HostAdmin],
        scope: Either,
        aggregate: |_, b| (A::Key, &b.old_key),
        body: {
            old_key: KeyId,
            new_key: KeyId,
            reason: String,
        },
    }
    /// The host opens a fund for a community under an agreement.
    FundOpened = "fund.opened" {
        roles: [HostAdmin],
        scope: Fund,
        aggregate: |e, _| (A::Fund, &e.fund),
        body: {
            /// The fund's name, e.g. "西湖街道社区发展基金".
            name: String,
            /// The community it serves.
            community: String,
            /// Currency of every amount: always "CNY".
            currency: String,
            /// Hash of the signed agreement between host and community.
            agreement: Sha256Hex,
        },
    }
    /// The host declares a purpose gifts to the fund may be restricted to (e.g. "助老").
    /// The host signs the donation agreements and answers for honouring them.
    PurposeDeclared = "purpose.declared" {
        roles: [HostAdmin],
        scope: Fund,
        aggregate: |e, _| (A::Fund, &e.fund),
        body: {
            /// The purpose's name, unique in the fund, e.g. "助老".
            purpose: String,
            /// What money restricted to it may be spent on.
            description: String,
        },
    }
    /// The host retires a purpose: no new gift, pledge or proposal may name it; money
    /// already restricted to it stays restricted to it.
    PurposeRetired = "purpose.retired" {
        roles: [HostAdmin],
        scope: Fund,
        aggregate: |e, _| (A::Fund, &e.fund),
        body: {
            purpose: String,
            reason: String,
        },
    }
    /// The fund's management committee: odd, at least 3, each holding committee_member.
    CommitteeSeated = "committee.seated" {
        roles: [HostAdmin],
        scope: Fund,
        aggregate: |e, _| (A::Committee, &e.fund),
        body: {
            members: Vec<KeyId>,
            /// Hash of the minutes of the election or appointment.
            minutes: Sha256Hex,
        },
    }
    /// A partner or merchant pledges an amount (e.g. a share of a year's revenue).
    PledgeRecorded = "pledge.recorded" {
        roles: [Intake],
        scope: Fund,
        aggregate: |_, b| (A::Pledge, &b.pledge),
        v2_reads_v1_as_null: "restricted_purpose",
        body: {
            pledge: PledgeId,
            channel: Channel,
            donor: Sha256Hex,
            amount_fen: Fen,
            /// What the pledge covers, e.g. "2026年度 营业利润的5%".
            terms: String,
            /// The fund's declared purpose the pledge is restricted to (v2), if any:
            /// every payment against it must carry the same purpose.
            restricted_purpose: Option<String>,
        },
    }
    /// Cash arrived. The donation's id is the event id.
    DonationReceived = "donation.received" {
        roles: [Intake],
        scope: Fund,
        aggregate: |e, _| (A::Donation, &e.id),
        v2_reads_v1_as_null: "restricted_purpose",
        body: {
            amount_fen: Fen,
            channel: Channel,
            /// Salted commitment to the donor (never a name).
            donor: Sha256Hex,
            /// The payment system's reference.
            payment_ref: String,
            /// The pledge this payment fulfils, if any.
            pledge: Option<PledgeId>,
            /// The fund's declared purpose the donor restricted the gift to, if any
            /// (v2: a purpose name the fund declared and has not retired; v1 held free
            /// text that bound nothing, and [`upcast`] reads it as unrestricted).
            restricted_purpose: Option<String>,
        },
    }
    /// Goods arrived in kind.
    GoodsReceived = "goods.received" {
        roles: [Intake],
        scope: Fund,
        aggregate: |e, _| (A::Donation, &e.id),
        v2_reads_v1_as_null: "restricted_purpose",
        body: {
            channel: Channel,
            donor: Sha256Hex,
            items: Vec<GoodsLine>,
            pledge: Option<PledgeId>,
            /// The fund's declared purpose the goods are restricted to (v2), if any.
            restricted_purpose: Option<String>,
        },
    }
    /// A cash donation is refunded (in full or in part).
    DonationReversed = "donation.reversed" {
        roles: [Intake, HostTreasurer],
        scope: Fund,
        aggregate: |_, b| (A::Donation, &b.donation),
        body: {
            donation: EventId,
            amount_fen: Fen,
            reason: String,
        },
    }
    /// The host's finance system issued an official receipt (公益事业捐赠票据).
    ReceiptIssued = "receipt.issued" {
        roles: [HostTreasurer],
        scope: Fund,
        aggregate: |_, b| (A::Donation, &b.donation),
        body: {
            donation: EventId,
            receipt_no: String,
        },
    }
    /// An issued receipt was voided.
    ReceiptVoided = "receipt.voided" {
        roles: [HostTreasurer],
        scope: Fund,
        aggregate: |_, b| (A::Donation, &b.donation),
        body: {
            donation: EventId,
            receipt_no: String,
            reason: String,
        },
    }
    /// The community organisation proposes a use of the fund.
    ProposalSubmitted = "proposal.submitted" {
        roles: [Proposer],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        v2_reads_v1_as_null: "purpose",
        body: {
            proposal: ProposalId,
            title: String,
            category: ProposalCategory,
            amount_fen: Fen,
            /// Who would be paid (an organisation or a role, never a private person's name).
            payee: String,
            description: String,
            evidence: Vec<Sha256Hex>,
            /// The fund's declared purpose the proposal serves (v2), if any: approval
            /// reserves that purpose's restricted cash first, then unrestricted cash.
            /// None: only unrestricted cash may pay it.
            purpose: Option<String>,
        },
    }
    /// Residents' opinions on a proposal (a survey or hearing), with its results.
    OpinionRecorded = "opinion.recorded" {
        roles: [Proposer, CommitteeMember],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            summary: String,
            support: u32,
            oppose: u32,
            evidence: Vec<Sha256Hex>,
        },
    }
    /// A seated committee member's vote; at most one per member per proposal.
    VoteCast = "vote.cast" {
        roles: [CommitteeMember],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            choice: VoteChoice,
            reason: String,
        },
    }
    /// The committee endorsed the proposal: a strict majority of non-recused seated members approved.
    ProposalEndorsed = "proposal.endorsed" {
        roles: [CommitteeMember],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            /// Hash of the meeting minutes.
            minutes: Sha256Hex,
        },
    }
    /// The committee rejected the proposal: a majority can no longer be reached.
    ProposalRejected = "proposal.rejected" {
        roles: [CommitteeMember],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            reason: String,
        },
    }
    /// The endorsed proposal goes to the host as an application.
    ApplicationSubmitted = "application.submitted" {
        roles: [Proposer],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
        },
    }
    /// The host approves the application and reserves the amount.
    ProposalApproved = "proposal.approved" {
        roles: [HostApprover],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            amount_fen: Fen,
        },
    }
    /// The host declines the application.
    ProposalDeclined = "proposal.declined" {
        roles: [HostApprover],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            reason: String,
        },
    }
    /// The treasurer pays (part of) an approved proposal.
    PayoutMade = "payout.made" {
        roles: [HostTreasurer],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            amount_fen: Fen,
            payment_ref: String,
            evidence: Vec<Sha256Hex>,
        },
    }
    /// Goods on hand are handed out (optionally for a proposal).
    GoodsDistributed = "goods.distributed" {
        roles: [Proposer, CommitteeMember],
        scope: Fund,
        aggregate: |e, b| match &b.proposal {
            Some(p) => (A::Proposal, p.to_string()),
            None => (A::Goods, e.id.to_string()),
        },
        body: {
            items: Vec<GoodsOut>,
            /// To whom or for what, e.g. "重阳节 慰问独居老人 32户".
            purpose: String,
            proposal: Option<ProposalId>,
            evidence: Vec<Sha256Hex>,
        },
    }
    /// The proposal is finished (or withdrawn); what was reserved and not paid is released.
    ProposalClosed = "proposal.closed" {
        roles: [Proposer, HostApprover],
        scope: Fund,
        aggregate: |_, b| (A::Proposal, &b.proposal),
        body: {
            proposal: ProposalId,
            /// Completion report or the reason for withdrawal.
            report: String,
            evidence: Vec<Sha256Hex>,
        },
    }
    /// A disclosure report: its period, cumulative totals and (v2) the accounts of the
    /// year its period ends in, which must all equal the fold.
    DisclosurePublished = "disclosure.published" {
        roles: [CommitteeMember],
        scope: Fund,
        aggregate: |e, _| (A::Disclosure, &e.id),
        v2_reads_v1_as_null: "accounts",
        body: {
            #[serde(with = "utc")]
            period_start: DateTime<Utc>,
            #[serde(with = "utc")]
            period_end: DateTime<Utc>,
            totals: DisclosureTotals,
            report: Sha256Hex,
            /// The accounts it cites (v2, required); `None` for a v1 disclosure, which
            /// cited none. Boxed: most events are small.
            accounts: Option<Box<DisclosureAccounts>>,
        },
    }
    /// An auditor's opinion on a year of the fund.
    AuditOpinionRecorded = "audit.opinion" {
        roles: [Auditor],
        scope: Fund,
        aggregate: |e, _| (A::Audit, &e.id),
        body: {
            year: i32,
            opinion: AuditOpinionKind,
            summary: String,
            report: Sha256Hex,
        },
    }
    /// An amendment note on an earlier event (money is corrected by reversals, never edits).
    CorrectionRecorded = "correction.recorded" {
        roles: [HostAdmin, CommitteeMember],
        scope: Either,
        aggregate: |e, _| (A::Correction, &e.id),
        body: {
            corrects: EventId,
            note: String,
            evidence: Vec<Sha256Hex>,
        },
    }
    /// The host's annual work report for a year (due by 31 May of the next year).
    AnnualReportPublished = "annual_report.published" {
        roles: [HostAdmin],
        scope: Host,
        aggregate: |_, b| (A::Report, b.year),
        body: {
            year: i32,
            report: Sha256Hex,
        },
    }
}

/// An event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    #[error("not an event: {0}")]
    Shape(String),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{type_name}: {reason}")]
    Body { type_name: &'static str, reason: String },
    #[error("{type_name}: schema version {v} is newer than this reader's {current}")]
    FutureVersion { type_name: String, v: u32, current: u32 },
    #[error("{type_name}: schema version {v} is not readable")]
    UnknownVersion { type_name: String, v: u32 },
    #[error("occurred_at {0:?} is not RFC 3339 UTC (…Z)")]
    Time(String),
}

/// An event: who did what, in which fund, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub fund: FundId,
    pub occurred_at: DateTime<Utc>,
    pub author: KeyId,
    /// Schema version the event was written with (bodies are upcast on read).
    pub v: u32,
    pub body: EventBody,
}

/// The wire shape, before the body is typed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    id: EventId,
    fund: FundId,
    #[serde(rename = "type")]
    type_name: String,
    occurred_at: String,
    author: KeyId,
    body: serde_json::Value,
    v: u32,
}

impl Event {
    /// Reads an event from its JSON value, upcasting older schema versions.
    pub fn from_json(value: serde_json::Value) -> Result<Event, EventParseError> {
        let wire: WireEvent = serde_json::from_value(value).map_err(|e| EventParseError::Shape(e.to_string()))?;
        let occurred_at = parse_utc(&wire.occurred_at)?;
        let body = upcast(&wire.type_name, wire.v, wire.body)?;
        let body = EventBody::from_json(&wire.type_name, body)?;
        Ok(Event { id: wire.id, fund: wire.fund, occurred_at, author: wire.author, v: wire.v, body })
    }

    /// Reads an event from JSON bytes (no strictness beyond serde's: use the
    /// envelope crate's strict decoder on untrusted bytes).
    pub fn from_slice(bytes: &[u8]) -> Result<Event, EventParseError> {
        let value = serde_json::from_slice(bytes).map_err(|e| EventParseError::Shape(e.to_string()))?;
        Event::from_json(value)
    }

    /// The event as a JSON value, fields in wire order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(WireEvent {
            id: self.id.clone(),
            fund: self.fund.clone(),
            type_name: self.body.type_name().to_owned(),
            occurred_at: format_utc(&self.occurred_at),
            author: self.author.clone(),
            body: self.body.to_json(),
            v: self.v,
        })
        .expect("events always serialise")
    }

    /// The event's canonical bytes for signing (compact JSON, wire field order).
    /// Signed bytes are kept as signed; this is only how new events are written.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&WireEvent {
            id: self.id.clone(),
            fund: self.fund.clone(),
            type_name: self.body.type_name().to_owned(),
            occurred_at: format_utc(&self.occurred_at),
            author: self.author.clone(),
            body: self.body.to_json(),
            v: self.v,
        })
        .expect("events always serialise")
    }

    pub fn type_name(&self) -> &'static str {
        self.body.type_name()
    }

    pub fn event_type(&self) -> EventType {
        self.body.event_type()
    }

    /// The NATS subject the event is published on, in the current version of
    /// the subject contract (see [`crate::subject`]).
    pub fn subject(&self) -> String {
        self.subject_in(subject::CURRENT)
    }

    /// The event's subject in `version` of the subject contract.
    pub fn subject_in(&self, version: SubjectVersion) -> String {
        subject::build(version, &self.fund, &self.aggregate())
    }

    /// The subject a message carrying this event must have, given the subject
    /// it has: the event's subject in the version `given` names (a reader
    /// accepts every version), or in the current one if it names none.
    pub fn subject_like(&self, given: &str) -> String {
        self.subject_in(SubjectVersion::of_subject(given).unwrap_or(subject::CURRENT))
    }
}

/// Serde for timestamps in bodies: RFC 3339 UTC written with `Z`, like `occurred_at`.
pub mod utc {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_utc(&text).map_err(serde::de::Error::custom)
    }
}

/// RFC 3339 UTC with a `Z` and no fractional part unless given.
pub fn format_utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses RFC 3339 and insists on UTC written as `Z`.
pub fn parse_utc(s: &str) -> Result<DateTime<Utc>, EventParseError> {
    if !s.ends_with('Z') {
        return Err(EventParseError::Time(s.to_owned()));
    }
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| EventParseError::Time(s.to_owned()))
}

/// Lifts a body written at schema version `v` to its type's current version
/// ([`EventType::version`]).
///
/// When a type's schema changes, its old version keeps a schema file in
/// `schemas/`, and its catalogue entry declares the step that rewrites an old
/// body (see the catalogue's docs for each type's version 2). The one step so far
/// is from 1 to 2: the field the entry names ([`EventType::v1_read_as_null`]) is set
/// to `null`. For `donation.received` that field, `restricted_purpose`, was free
/// text in version 1 that bound nothing, so a v1 gift is read as unrestricted. The
/// signed bytes are never rewritten: the ledger keeps the v1 text as it was signed.
pub fn upcast(type_name: &str, v: u32, body: serde_json::Value) -> Result<serde_json::Value, EventParseError> {
    let event_type = EventType::from_name(type_name);
    let current = event_type.map_or(1, EventType::version);
    if v > current {
        return Err(EventParseError::FutureVersion { type_name: type_name.to_owned(), v, current });
    }
    if v == 0 {
        return Err(EventParseError::UnknownVersion { type_name: type_name.to_owned(), v });
    }
    let mut body = body;
    // A type names such a field exactly when it is at version 2.
    if let (1, Some(field)) = (v, event_type.and_then(EventType::v1_read_as_null)) {
        if let serde_json::Value::Object(map) = &mut body {
            map.insert(field.to_owned(), serde_json::Value::Null);
        }
    }
    Ok(body)
}

/// The catalogue's authorisation facts — per event type the roles that may author it and
/// its scope; per role whether it is host-wide — as JSON, for verifiers in other
/// languages. The portal's in-browser verifier reads it as `portal/src/core/catalogue.json`
/// (committed; `tests/portal_catalogue.rs` fails when it differs from this).
pub fn catalogue_json() -> serde_json::Value {
    let roles: serde_json::Map<String, serde_json::Value> = Role::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), serde_json::json!({ "host_wide": r.is_host_wide() })))
        .collect();
    let events: serde_json::Map<String, serde_json::Value> = EventType::ALL
        .iter()
        .map(|t| {
            let scope = match t.scope() {
                Scope::Host => "host",
                Scope::Fund => "fund",
                Scope::Either => "either",
            };
            let roles: Vec<&str> = t.roles().iter().map(|r| r.as_str()).collect();
            (t.name().to_owned(), serde_json::json!({ "roles": roles, "scope": scope, "version": t.version() }))
        })
        .collect();
    serde_json::json!({
        "comment": "Generated from the event catalogue (crates/fundtrail-domain/src/event.rs, catalogue_json); do not edit: UPDATE_PORTAL_CATALOGUE=1 cargo test --workspace --test portal_catalogue rewrites it.",
        "schema_version_max": SCHEMA_VERSION_MAX,
        "host_scope": crate::ids::HOST_SCOPE,
        "roles": roles,
        "events": events,
    })
}

#[cfg(test)]
mod name_tests {
    use super::*;

    /// Each variant's typed name is its JSON name, and reads back as itself.
    fn names_round_trip<T, const N: usize>(all: [T; N], name: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + std::str::FromStr<Err = UnknownName>,
    {
        for v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name(v)));
            assert_eq!(name(v).parse::<T>(), Ok(v));
        }
        let refused = "nope".parse::<T>().unwrap_err();
        assert_eq!(refused.choices, all.map(name).join(", "));
    }

    #[test]
    fn typed_names_are_the_json_names() {
        names_round_trip(Role::ALL, Role::as_str);
        names_round_trip(Channel::ALL, Channel::as_str);
        names_round_trip(ProposalCategory::ALL, ProposalCategory::as_str);
        names_round_trip(VoteChoice::ALL, VoteChoice::as_str);
        names_round_trip(AuditOpinionKind::ALL, AuditOpinionKind::as_str);
        assert_eq!("boss".parse::<Role>().unwrap_err().to_string().split(" is not").next(), Some("\"boss\""));
    }
}
