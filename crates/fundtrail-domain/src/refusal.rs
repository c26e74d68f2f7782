//! Why a command was refused, or why a replayed event breaks a rule.
//!
//! Each variant names the rule, the things involved and the numbers, so the
//! message alone tells a committee member or an auditor what is wrong.

use chrono::{DateTime, TimeDelta, Utc};

use crate::event::{format_utc, Role};
use crate::ids::{EventId, FundId, KeyId, PledgeId, ProposalId};
use crate::money::{Fen, MoneyOverflow};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    // --- genesis and keys -------------------------------------------------
    #[error("the host is not established yet: the first event must be host.established")]
    NoHost,
    #[error("the host is already established; a second genesis is refused")]
    HostAlreadyEstablished,
    #[error("genesis must be signed by the host key it names ({host_key}), not {author}")]
    GenesisAuthor { host_key: KeyId, author: KeyId },
    #[error("key {key} does not match its public key (which has id {actual})")]
    KeyIdMismatch { key: KeyId, actual: KeyId },
    #[error("public key of {key} is not 32 bytes of standard base64")]
    BadPublicKey { key: KeyId },
    #[error("unknown key {key}: it was never enrolled")]
    UnknownKey { key: KeyId },
    #[error("key {key} is already enrolled")]
    KeyAlreadyEnrolled { key: KeyId },

    // --- roles (invariant 4) ----------------------------------------------
    #[error("key {author} may not author {type_name} in {fund}: it needs one of the roles [{}] there", roles_list(.allowed))]
    NotAuthorised { author: KeyId, type_name: &'static str, fund: FundId, allowed: Vec<Role> },
    #[error("role {role} cannot be held in {fund}: {}", if .role.is_host_wide() { "it is host-wide, grant it in the host scope" } else { "it is per fund, grant it in a fund" })]
    RoleScope { role: Role, fund: FundId },
    #[error("key {key} already holds {role} in {fund}")]
    RoleAlreadyHeld { key: KeyId, role: Role, fund: FundId },
    #[error("key {key} does not hold {role} in {fund}")]
    RoleNotHeld { key: KeyId, role: Role, fund: FundId },
    #[error("key {key} holds no role in {fund} to rotate")]
    NothingToRotate { key: KeyId, fund: FundId },
    #[error("key {key} cannot be rotated to itself")]
    RotateToSelf { key: KeyId },

    // --- scopes and funds -------------------------------------------------
    #[error("{type_name} belongs in {expected}, not in {fund}")]
    WrongScope { type_name: &'static str, fund: FundId, expected: &'static str },
    #[error("unknown fund {fund}")]
    UnknownFund { fund: FundId },
    #[error("fund {fund} is already open")]
    FundExists { fund: FundId },
    #[error("currency {currency:?} is not supported: every amount is in CNY fen")]
    Currency { currency: String },

    // --- committee (invariant 3) ------------------------------------------
    #[error("a committee must have an odd number of members, at least 3 and at most {max}; got {size}")]
    CommitteeSize { size: usize, max: usize },
    #[error("key {key} is listed twice in the committee")]
    CommitteeDuplicate { key: KeyId },
    #[error("key {key} cannot be seated: it does not hold committee_member in {fund}")]
    CommitteeMemberLacksRole { key: KeyId, fund: FundId },
    #[error("fund {fund} has no seated committee")]
    NoCommittee { fund: FundId },
    #[error("key {key} is not a member of the seated committee of {fund}")]
    NotSeated { key: KeyId, fund: FundId },
    #[error("{key} already voted on proposal {proposal}; a member votes at most once")]
    AlreadyVoted { key: KeyId, proposal: ProposalId },
    #[error("proposal {proposal} lacks a strict majority: {approvals} approvals of {eligible} non-recused seated members, {needed} needed")]
    NoMajority { proposal: ProposalId, approvals: usize, eligible: usize, needed: usize },
    #[error("proposal {proposal} cannot be decided: only {eligible} of {seated} seated members may vote after recusals, more than half are needed")]
    NoQuorum { proposal: ProposalId, eligible: usize, seated: usize },
    #[error("proposal {proposal} can still reach a majority ({approvals} approvals, {pending} members yet to vote, {needed} needed): it cannot be rejected yet")]
    MajorityStillPossible { proposal: ProposalId, approvals: usize, pending: usize, needed: usize },

    // --- money (invariants 1 and 2) ---------------------------------------
    #[error("{field} must be positive, got {amount}")]
    AmountNotPositive { field: &'static str, amount: Fen },
    #[error("{field} must not be negative, got {amount}")]
    AmountNegative { field: &'static str, amount: Fen },
    #[error("fund {fund} has {available} available, {needed} needed")]
    InsufficientFunds { fund: FundId, needed: Fen, available: Fen },
    #[error("approval {approved} exceeds the {requested} requested by proposal {proposal}")]
    ApprovalExceedsRequest { proposal: ProposalId, approved: Fen, requested: Fen },
    #[error("payout {amount} exceeds approved remainder {remainder} of proposal {proposal}")]
    PayoutExceedsRemainder { proposal: ProposalId, amount: Fen, remainder: Fen },
    #[error("refund {amount} exceeds the {refundable} still refundable of donation {donation}")]
    RefundExceeds { donation: EventId, amount: Fen, refundable: Fen },
    #[error("{0}")]
    Money(#[from] MoneyOverflow),
    #[error("{}", shortfall(.proposal, .needed, .purpose, .restricted, .unrestricted))]
    RestrictedShortfall {
        proposal: ProposalId,
        needed: Fen,
        /// The proposal's purpose, or `None` (it may use unrestricted money only).
        purpose: Option<String>,
        /// Available restricted to the proposal's purpose (for `None`: restricted to any
        /// purpose, which it may not use).
        restricted: Fen,
        unrestricted: Fen,
    },
    #[error(
        "refund {amount} exceeds the {unspent} of donation {donation} that is neither reserved nor paid for a proposal"
    )]
    RefundExceedsUnspent { donation: EventId, amount: Fen, unspent: Fen },

    // --- purposes -----------------------------------------------------------
    #[error("purpose {purpose} is already declared in {fund}")]
    PurposeExists { purpose: String, fund: FundId },
    #[error("purpose {purpose} is not declared in {fund}")]
    UnknownPurpose { purpose: String, fund: FundId },
    #[error("purpose {purpose} was retired in {fund}: no new gift, pledge or proposal may name it")]
    PurposeRetired { purpose: String, fund: FundId },
    #[error("pledge {pledge} is restricted to {}, the payment to {}", purpose_or_none(.pledged), purpose_or_none(.actual))]
    PledgePurpose { pledge: PledgeId, pledged: Option<String>, actual: Option<String> },

    // --- donations, pledges, receipts ---------------------------------------
    #[error("pledge {pledge} already exists in {fund}")]
    PledgeExists { pledge: PledgeId, fund: FundId },
    #[error("unknown pledge {pledge} in {fund}")]
    UnknownPledge { pledge: PledgeId, fund: FundId },
    #[error("pledge {pledge} is for channel {pledged}, the donation came through {actual}")]
    PledgeChannel { pledge: PledgeId, pledged: &'static str, actual: &'static str },
    #[error("unknown cash donation {donation} in {fund}")]
    UnknownDonation { donation: EventId, fund: FundId },
    #[error("donation {donation} already has receipt {receipt_no}; void it first")]
    ReceiptAlreadyIssued { donation: EventId, receipt_no: String },
    #[error("donation {donation} has no active receipt {receipt_no}")]
    NoSuchReceipt { donation: EventId, receipt_no: String },
    #[error("receipt number {receipt_no} is already used by donation {donation}")]
    ReceiptNumberUsed { receipt_no: String, donation: EventId },

    // --- proposals ----------------------------------------------------------
    #[error("proposal {proposal} already exists in {fund}")]
    ProposalExists { proposal: ProposalId, fund: FundId },
    #[error("unknown proposal {proposal} in {fund}")]
    UnknownProposal { proposal: ProposalId, fund: FundId },
    #[error("proposal {proposal} is {status}; {type_name} needs it to be {needed}")]
    ProposalStatus { proposal: ProposalId, status: &'static str, type_name: &'static str, needed: &'static str },

    // --- goods ----------------------------------------------------------------
    #[error("only {on_hand} {unit} of {name} on hand, {requested} requested")]
    GoodsShortfall { name: String, unit: String, requested: u64, on_hand: u64 },
    #[error("{0}")]
    GoodsRestrictedShortfall(Box<GoodsRestricted>),
    #[error("{field} must be between 1 and {max}, got {quantity}")]
    Quantity { field: &'static str, quantity: u64, max: u64 },

    // --- disclosure -----------------------------------------------------------
    #[error("disclosure states {field} = {stated} but the fund's records give {actual}")]
    DisclosureMismatch { field: &'static str, stated: Fen, actual: Fen },
    #[error(
        "disclosure period must start before it ends and end no later than the event ({period_end} > {occurred_at})"
    )]
    DisclosurePeriod { period_end: String, occurred_at: String },
    #[error("disclosure cites {figure} = {stated} of {year} but the fund's accounts give {actual}")]
    DisclosureAccountsMismatch { year: i32, figure: String, stated: Fen, actual: Fen },
    #[error("disclosure cites the accounts of {stated}, but its period ends in {expected}: it must cite {expected}")]
    DisclosureAccountsYear { stated: i32, expected: i32 },
    #[error("a version {v} disclosure must cite the accounts of the year its period ends in")]
    DisclosureAccountsMissing { v: u32 },
    #[error("year {year} is outside {min}..={max}")]
    Year { year: i32, min: i32, max: i32 },
    #[error("annual report for {year} is already published")]
    AnnualReportExists { year: i32 },

    // --- shape and limits -------------------------------------------------------
    #[error("{field} is empty")]
    EmptyText { field: &'static str },
    #[error("{field} has {chars} characters, at most {max} allowed")]
    TextTooLong { field: &'static str, chars: usize, max: usize },
    #[error("{field} has {count} entries, at most {max} allowed")]
    TooMany { field: &'static str, count: usize, max: usize },
    #[error("{field} has {count} entries, at least {min} needed")]
    TooFew { field: &'static str, count: usize, min: usize },
    #[error("event {corrects} to correct is unknown")]
    UnknownEvent { corrects: EventId },

    // --- admission (checked when a command arrives, never on replay; see
    // `crate::admission`) -------------------------------------------------------
    #[error("event id {id} is already used by another event at sequence {seq}")]
    IdReused { id: EventId, seq: u64 },
    #[error(
        "occurred_at {} is too far from the service's clock ({}): at most {} ahead and {} behind",
        format_utc(.occurred_at), format_utc(.now), human(.future_skew_max), human(.backdate_max)
    )]
    ClockWindow { occurred_at: DateTime<Utc>, now: DateTime<Utc>, future_skew_max: TimeDelta, backdate_max: TimeDelta },
    #[error("genesis must be signed by the pinned host key {expected}, not {actual}")]
    HostKeyPinned { expected: KeyId, actual: KeyId },
}

/// What kind of "no" a refusal is: who may not, what already exists, or
/// which rule. HTTP answers 401, 403, 409 or 422 from this alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    /// The signer is not known to the fund (401).
    Unauthenticated,
    /// The signer is known but may not author this (403).
    Forbidden,
    /// The command creates something that already exists (409, `exists`).
    Exists,
    /// The event's identity collides with other content (409, its own code).
    Conflict,
    /// A rule about money, votes, shape or time refuses it (422).
    Rule,
}

/// A duration as a person says it: whole days, else whole minutes.
fn human(d: &TimeDelta) -> String {
    if d.num_days() >= 1 {
        format!("{} days", d.num_days())
    } else {
        format!("{} minutes", d.num_minutes())
    }
}

fn purpose_or_none(purpose: &Option<String>) -> String {
    purpose.clone().unwrap_or_else(|| "no purpose".to_owned())
}

/// "P-7 needs ¥8,000.00; 助老 has ¥2,000.00 restricted and ¥3,500.00 unrestricted available".
fn shortfall(
    proposal: &ProposalId,
    needed: &Fen,
    purpose: &Option<String>,
    restricted: &Fen,
    unrestricted: &Fen,
) -> String {
    match purpose {
        Some(name) => {
            format!("{proposal} needs {needed}; {name} has {restricted} restricted and {unrestricted} unrestricted available")
        }
        None => format!(
            "{proposal} needs {needed}; it serves no purpose, so only unrestricted money may pay it: {unrestricted} available ({restricted} more is restricted to purposes)"
        ),
    }
}

/// A goods distribution that would need goods restricted to another purpose
/// (docs/design.md §1.6, "Goods"), with the numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoodsRestricted {
    pub name: String,
    pub unit: String,
    pub requested: u64,
    /// The distribution's proposal, if it names one.
    pub proposal: Option<ProposalId>,
    /// The purpose the proposal serves, or `None` (unrestricted goods only).
    pub purpose: Option<String>,
    /// Units restricted to `purpose` in stock (0 for `None`).
    pub restricted: u64,
    pub unrestricted: u64,
    /// Units restricted to other purposes, which it may not take.
    pub other: u64,
}

impl std::fmt::Display for GoodsRestricted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let GoodsRestricted { name, unit, requested, proposal, purpose, restricted, unrestricted, other } = self;
        match proposal {
            Some(p) => write!(f, "the distribution for {p} needs {requested} {unit} {name}; ")?,
            None => write!(f, "the distribution needs {requested} {unit} {name}; ")?,
        }
        match (purpose, proposal) {
            (Some(x), _) => write!(
                f,
                "{x} has {restricted} {unit} restricted and {unrestricted} {unit} unrestricted available ({other} {unit} more restricted to other purposes)"
            ),
            (None, Some(_)) => write!(
                f,
                "its proposal serves no purpose, so only unrestricted goods may go: {unrestricted} {unit} available ({other} {unit} more restricted to purposes)"
            ),
            (None, None) => write!(
                f,
                "it names no proposal, so only unrestricted goods may go: {unrestricted} {unit} available ({other} {unit} more restricted to purposes)"
            ),
        }
    }
}

fn roles_list(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

impl Refusal {
    /// A stable, machine-readable name of the rule (used in problem+json `type`).
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            NoHost | HostAlreadyEstablished | GenesisAuthor { .. } => "genesis",
            KeyIdMismatch { .. } | BadPublicKey { .. } | KeyAlreadyEnrolled { .. } => "key",
            UnknownKey { .. } => "unknown-key",
            NotAuthorised { .. } => "role",
            RoleScope { .. }
            | RoleAlreadyHeld { .. }
            | RoleNotHeld { .. }
            | NothingToRotate { .. }
            | RotateToSelf { .. } => "role-grant",
            WrongScope { .. } | UnknownFund { .. } | FundExists { .. } | Currency { .. } => "fund",
            CommitteeSize { .. } | CommitteeDuplicate { .. } | CommitteeMemberLacksRole { .. } | NoCommittee { .. } => {
                "committee"
            }
            NotSeated { .. } | AlreadyVoted { .. } => "vote",
            NoMajority { .. } | NoQuorum { .. } | MajorityStillPossible { .. } => "majority",
            AmountNotPositive { .. } | AmountNegative { .. } | Money(_) => "amount",
            InsufficientFunds { .. } | RestrictedShortfall { .. } => "overspend",
            RefundExceedsUnspent { .. } => "refund",
            PurposeExists { .. } | UnknownPurpose { .. } | PurposeRetired { .. } | PledgePurpose { .. } => "purpose",
            ApprovalExceedsRequest { .. } | PayoutExceedsRemainder { .. } => "approved-remainder",
            RefundExceeds { .. } => "refund",
            PledgeExists { .. } | UnknownPledge { .. } | PledgeChannel { .. } => "pledge",
            UnknownDonation { .. } => "donation",
            ReceiptAlreadyIssued { .. } | NoSuchReceipt { .. } | ReceiptNumberUsed { .. } => "receipt",
            ProposalExists { .. } | UnknownProposal { .. } | ProposalStatus { .. } => "proposal",
            GoodsShortfall { .. } | GoodsRestrictedShortfall(_) | Quantity { .. } => "goods",
            DisclosureMismatch { .. }
            | DisclosurePeriod { .. }
            | DisclosureAccountsMismatch { .. }
            | DisclosureAccountsYear { .. }
            | DisclosureAccountsMissing { .. }
            | AnnualReportExists { .. }
            | Year { .. } => "disclosure",
            EmptyText { .. } | TextTooLong { .. } | TooMany { .. } | TooFew { .. } | UnknownEvent { .. } => "shape",
            IdReused { .. } => "id-reused",
            ClockWindow { .. } => "clock",
            HostKeyPinned { .. } => "host-key-pinned",
        }
    }

    /// The class of the refusal. Every variant is named here, so a new one
    /// must be classified before the crate compiles.
    pub fn class(&self) -> RefusalClass {
        use Refusal::*;
        use RefusalClass as C;
        match self {
            UnknownKey { .. } => C::Unauthenticated,
            NotAuthorised { .. } | GenesisAuthor { .. } | HostKeyPinned { .. } => C::Forbidden,
            HostAlreadyEstablished
            | KeyAlreadyEnrolled { .. }
            | FundExists { .. }
            | ProposalExists { .. }
            | PledgeExists { .. }
            | AnnualReportExists { .. }
            | PurposeExists { .. } => C::Exists,
            IdReused { .. } => C::Conflict,
            NoHost
            | KeyIdMismatch { .. }
            | BadPublicKey { .. }
            | RoleScope { .. }
            | RoleAlreadyHeld { .. }
            | RoleNotHeld { .. }
            | NothingToRotate { .. }
            | RotateToSelf { .. }
            | WrongScope { .. }
            | UnknownFund { .. }
            | Currency { .. }
            | CommitteeSize { .. }
            | CommitteeDuplicate { .. }
            | CommitteeMemberLacksRole { .. }
            | NoCommittee { .. }
            | NotSeated { .. }
            | AlreadyVoted { .. }
            | NoMajority { .. }
            | NoQuorum { .. }
            | MajorityStillPossible { .. }
            | AmountNotPositive { .. }
            | AmountNegative { .. }
            | InsufficientFunds { .. }
            | RestrictedShortfall { .. }
            | RefundExceedsUnspent { .. }
            | UnknownPurpose { .. }
            | PurposeRetired { .. }
            | PledgePurpose { .. }
            | ApprovalExceedsRequest { .. }
            | PayoutExceedsRemainder { .. }
            | RefundExceeds { .. }
            | Money(_)
            | UnknownPledge { .. }
            | PledgeChannel { .. }
            | UnknownDonation { .. }
            | ReceiptAlreadyIssued { .. }
            | NoSuchReceipt { .. }
            | ReceiptNumberUsed { .. }
            | UnknownProposal { .. }
            | ProposalStatus { .. }
            | GoodsShortfall { .. }
            | GoodsRestrictedShortfall(_)
            | Quantity { .. }
            | DisclosureMismatch { .. }
            | DisclosurePeriod { .. }
            | DisclosureAccountsMismatch { .. }
            | DisclosureAccountsYear { .. }
            | DisclosureAccountsMissing { .. }
            | Year { .. }
            | EmptyText { .. }
            | TextTooLong { .. }
            | TooMany { .. }
            | TooFew { .. }
            | UnknownEvent { .. }
            | ClockWindow { .. } => C::Rule,
        }
    }

    /// True for refusals about who signed (unknown key, missing role), which
    /// HTTP reports as 401/403 rather than 422.
    pub fn is_authorisation(&self) -> bool {
        matches!(self.class(), RefusalClass::Unauthenticated | RefusalClass::Forbidden)
    }
}
