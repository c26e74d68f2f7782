//! `decide` and `evolve`: the only implementation of the fund's rules.
//!
//! [`check`] holds every rule. [`decide`] runs it against the current state to
//! accept or refuse a command; [`evolve`] runs the very same check again before
//! it applies an event, so a replay of a stream that breaks a rule stops at that
//! event and names the rule. [`apply`] is bookkeeping only: every number it
//! computes was proved in range by `check`, which its assertions restate.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Datelike, Utc};

use crate::admission::IdRecord;
use crate::event::*;
use crate::ids::{EventId, FundId, KeyId, ProposalId, Sha256Hex};
use crate::money::Fen;
use crate::refusal::{GoodsRestricted, Refusal};
use crate::state::*;

/// What applying an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the state.
    Applied,
    /// An event with this id was applied before: nothing changed (invariant 5).
    Duplicate,
}

/// Decides a command: the signed event an actor asks to append. Returns the
/// events to append — the event itself, or nothing when an event with its id
/// was already applied (the same event twice has one effect) — or the rule
/// that refuses it.
pub fn decide(state: &State, command: &Event) -> Result<Vec<Event>, Refusal> {
    if state.event_ids.contains_key(&command.id) {
        return Ok(Vec::new());
    }
    check(state, command)?;
    Ok(vec![command.clone()])
}

/// Applies an event to the state after checking every rule again, recording
/// its id as [`IdRecord::UNRECORDED`] (applied without a log: tests, a local
/// replay). A reader of a log uses [`evolve_recorded`].
pub fn evolve(state: &mut State, event: &Event) -> Result<Applied, Refusal> {
    evolve_recorded(state, event, || IdRecord::UNRECORDED)
}

/// [`evolve`], recording where the event's id appeared and what it said
/// (`record` is called only when the event applies): the state's one index of
/// event ids, which admission reads to tell a resend from a reuse.
pub fn evolve_recorded(
    state: &mut State,
    event: &Event,
    record: impl FnOnce() -> IdRecord,
) -> Result<Applied, Refusal> {
    if state.event_ids.contains_key(&event.id) {
        return Ok(Applied::Duplicate);
    }
    check(state, event)?;
    let applied_before = state.events_applied;
    apply(state, event);
    state.event_ids.insert(event.id.clone(), record());
    state.events_applied += 1;
    debug_assert_eq!(state.events_applied, applied_before + 1);
    debug_assert!(state.funds.get(&event.fund).is_none_or(|f| !f.cash.available().expect("checked").is_negative()));
    Ok(Applied::Applied)
}

/// Folds events from the empty state; stops at the first event that breaks a
/// rule, with its position (0-based) and the refusal.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<State, (usize, Refusal)> {
    let mut state = State::default();
    for (i, event) in events.into_iter().enumerate() {
        evolve(&mut state, event).map_err(|r| (i, r))?;
    }
    Ok(state)
}

/// Every rule an event must satisfy against the state it is applied to.
pub fn check(state: &State, event: &Event) -> Result<(), Refusal> {
    check_scope(state, event)?;
    authorise(state, event)?;
    check_body(state, event)
}

// ---------------------------------------------------------------------------
// scope and authorisation (invariant 4)

fn check_scope(state: &State, event: &Event) -> Result<(), Refusal> {
    let type_name = event.type_name();
    match event.event_type().scope() {
        Scope::Host if !event.fund.is_host() => {
            return Err(Refusal::WrongScope { type_name, fund: event.fund.clone(), expected: "the host scope" })
        }
        Scope::Fund if event.fund.is_host() => {
            return Err(Refusal::WrongScope { type_name, fund: event.fund.clone(), expected: "a fund" })
        }
        _ => {}
    }
    let needs_fund = !event.fund.is_host() && !matches!(event.body, EventBody::FundOpened(_));
    if needs_fund && !state.funds.contains_key(&event.fund) {
        return Err(Refusal::UnknownFund { fund: event.fund.clone() });
    }
    Ok(())
}

fn authorise(state: &State, event: &Event) -> Result<(), Refusal> {
    if let EventBody::HostEstablished(genesis) = &event.body {
        if state.host.is_some() {
            return Err(Refusal::HostAlreadyEstablished);
        }
        if genesis.host_key != event.author {
            return Err(Refusal::GenesisAuthor { host_key: genesis.host_key.clone(), author: event.author.clone() });
        }
        return Ok(());
    }
    if state.host.is_none() {
        return Err(Refusal::NoHost);
    }
    if !state.keys.contains_key(&event.author) {
        return Err(Refusal::UnknownKey { key: event.author.clone() });
    }
    let type_name = event.type_name();
    let allowed = event.event_type().roles();
    let host = FundId::host();
    let holds = |role: &Role| {
        let scope = if role.is_host_wide() { &host } else { &event.fund };
        state.has_role(scope, &event.author, *role)
    };
    if !allowed.iter().any(holds) {
        return Err(Refusal::NotAuthorised {
            author: event.author.clone(),
            type_name,
            fund: event.fund.clone(),
            allowed: allowed.to_vec(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// per-type rules

fn check_body(state: &State, event: &Event) -> Result<(), Refusal> {
    use EventBody as B;
    let fund = || state.funds.get(&event.fund).expect("check_scope proved the fund exists");
    match &event.body {
        B::HostEstablished(b) => {
            text("host_name", &b.host_name, NAME_CHARS_MAX)?;
            check_public_key(&b.host_key, &b.public_key)
        }
        B::KeyEnrolled(b) => {
            if state.keys.contains_key(&b.key) {
                return Err(Refusal::KeyAlreadyEnrolled { key: b.key.clone() });
            }
            text("label", &b.label, NAME_CHARS_MAX)?;
            check_public_key(&b.key, &b.public_key)
        }
        B::RoleGranted(b) => {
            known_key(state, &b.key)?;
            role_in_scope(b.role, &event.fund)?;
            if state.has_role(&event.fund, &b.key, b.role) {
                return Err(Refusal::RoleAlreadyHeld { key: b.key.clone(), role: b.role, fund: event.fund.clone() });
            }
            Ok(())
        }
        B::RoleRevoked(b) => {
            if !state.has_role(&event.fund, &b.key, b.role) {
                return Err(Refusal::RoleNotHeld { key: b.key.clone(), role: b.role, fund: event.fund.clone() });
            }
            text("reason", &b.reason, TEXT_CHARS_MAX)
        }
        B::KeyRotated(b) => {
            if b.old_key == b.new_key {
                return Err(Refusal::RotateToSelf { key: b.old_key.clone() });
            }
            known_key(state, &b.new_key)?;
            if state.roles_of(&event.fund, &b.old_key).is_none_or(|r| r.is_empty()) {
                return Err(Refusal::NothingToRotate { key: b.old_key.clone(), fund: event.fund.clone() });
            }
            text("reason", &b.reason, TEXT_CHARS_MAX)
        }
        B::FundOpened(b) => {
            if state.funds.contains_key(&event.fund) {
                return Err(Refusal::FundExists { fund: event.fund.clone() });
            }
            if b.currency != "CNY" {
                return Err(Refusal::Currency { currency: b.currency.clone() });
            }
            text("name", &b.name, NAME_CHARS_MAX)?;
            text("community", &b.community, NAME_CHARS_MAX)
        }
        B::CommitteeSeated(b) => check_committee(state, &event.fund, &b.members),
        B::PurposeDeclared(b) => {
            text("purpose", &b.purpose, NAME_CHARS_MAX)?;
            text("description", &b.description, TEXT_CHARS_MAX)?;
            if fund().purposes.contains_key(&b.purpose) {
                return Err(Refusal::PurposeExists { purpose: b.purpose.clone(), fund: event.fund.clone() });
            }
            Ok(())
        }
        B::PurposeRetired(b) => {
            text("reason", &b.reason, TEXT_CHARS_MAX)?;
            purpose_open(fund(), &event.fund, Some(&b.purpose))
        }
        B::PledgeRecorded(b) => {
            if fund().pledges.contains_key(&b.pledge) {
                return Err(Refusal::PledgeExists { pledge: b.pledge.clone(), fund: event.fund.clone() });
            }
            positive("amount_fen", b.amount_fen)?;
            text("terms", &b.terms, TEXT_CHARS_MAX)?;
            purpose_open(fund(), &event.fund, b.restricted_purpose.as_deref())
        }
        B::DonationReceived(b) => {
            positive("amount_fen", b.amount_fen)?;
            text("payment_ref", &b.payment_ref, NAME_CHARS_MAX)?;
            purpose_open(fund(), &event.fund, b.restricted_purpose.as_deref())?;
            check_pledge(fund(), &event.fund, b.pledge.as_ref(), b.channel, b.restricted_purpose.as_deref())?;
            fund().cash.received.checked_add(b.amount_fen)?;
            Ok(())
        }
        B::GoodsReceived(b) => {
            count("items", b.items.len(), 1, ITEMS_COUNT_MAX)?;
            let mut total = Fen::ZERO;
            for line in &b.items {
                text("items[].name", &line.name, NAME_CHARS_MAX)?;
                text("items[].unit", &line.unit, NAME_CHARS_MAX)?;
                quantity("items[].quantity", line.quantity)?;
                if line.unit_value_fen.is_negative() {
                    return Err(Refusal::AmountNegative {
                        field: "items[].unit_value_fen",
                        amount: line.unit_value_fen,
                    });
                }
                total = total.checked_add(line.unit_value_fen.checked_mul(line.quantity)?)?;
            }
            fund().goods_received_value.checked_add(total)?;
            purpose_open(fund(), &event.fund, b.restricted_purpose.as_deref())?;
            check_pledge(fund(), &event.fund, b.pledge.as_ref(), b.channel, b.restricted_purpose.as_deref())
        }
        B::DonationReversed(b) => {
            positive("amount_fen", b.amount_fen)?;
            text("reason", &b.reason, TEXT_CHARS_MAX)?;
            let f = fund();
            let donation = f
                .donations
                .get(&b.donation)
                .ok_or_else(|| Refusal::UnknownDonation { donation: b.donation.clone(), fund: event.fund.clone() })?;
            let refundable = donation.amount.checked_sub(donation.refunded())?;
            if b.amount_fen > refundable {
                return Err(Refusal::RefundExceeds { donation: b.donation.clone(), amount: b.amount_fen, refundable });
            }
            // The allocation: a refund returns the gift's own unspent money, never
            // money already reserved or paid for a proposal.
            let unspent =
                f.pool(donation.restricted_purpose()).unspent.get(&donation.ordinal).map_or(Fen::ZERO, |u| u.amount);
            if b.amount_fen > unspent {
                return Err(Refusal::RefundExceedsUnspent {
                    donation: b.donation.clone(),
                    amount: b.amount_fen,
                    unspent,
                });
            }
            Ok(())
        }
        B::ReceiptIssued(b) => {
            text("receipt_no", &b.receipt_no, NAME_CHARS_MAX)?;
            let f = fund();
            let donation = f
                .donations
                .get(&b.donation)
                .ok_or_else(|| Refusal::UnknownDonation { donation: b.donation.clone(), fund: event.fund.clone() })?;
            if let Some(existing) = donation.receipt_no() {
                return Err(Refusal::ReceiptAlreadyIssued {
                    donation: b.donation.clone(),
                    receipt_no: existing.to_string(),
                });
            }
            if let Some(other) = f.receipt_numbers.get(&b.receipt_no) {
                return Err(Refusal::ReceiptNumberUsed { receipt_no: b.receipt_no.clone(), donation: other.clone() });
            }
            Ok(())
        }
        B::ReceiptVoided(b) => {
            text("receipt_no", &b.receipt_no, NAME_CHARS_MAX)?;
            text("reason", &b.reason, TEXT_CHARS_MAX)?;
            let donation = fund()
                .donations
                .get(&b.donation)
                .ok_or_else(|| Refusal::UnknownDonation { donation: b.donation.clone(), fund: event.fund.clone() })?;
            if donation.receipt_no() != Some(b.receipt_no.as_str()) {
                return Err(Refusal::NoSuchReceipt { donation: b.donation.clone(), receipt_no: b.receipt_no.clone() });
            }
            Ok(())
        }
        B::ProposalSubmitted(b) => {
            if fund().proposals.contains_key(&b.proposal) {
                return Err(Refusal::ProposalExists { proposal: b.proposal.clone(), fund: event.fund.clone() });
            }
            positive("amount_fen", b.amount_fen)?;
            text("title", &b.title, NAME_CHARS_MAX)?;
            text("payee", &b.payee, NAME_CHARS_MAX)?;
            text("description", &b.description, TEXT_CHARS_MAX)?;
            purpose_open(fund(), &event.fund, b.purpose.as_deref())?;
            evidence(&b.evidence)
        }
        B::OpinionRecorded(b) => {
            proposal_in(fund(), &event.fund, &b.proposal, event, &[ProposalStatus::Submitted], "submitted")?;
            text("summary", &b.summary, TEXT_CHARS_MAX)?;
            evidence(&b.evidence)
        }
        B::VoteCast(b) => {
            let f = fund();
            let p = proposal_in(f, &event.fund, &b.proposal, event, &[ProposalStatus::Submitted], "submitted")?;
            if f.committee.is_empty() {
                return Err(Refusal::NoCommittee { fund: event.fund.clone() });
            }
            if !f.committee.contains(&event.author) {
                return Err(Refusal::NotSeated { key: event.author.clone(), fund: event.fund.clone() });
            }
            if p.votes.contains_key(&event.author) {
                return Err(Refusal::AlreadyVoted { key: event.author.clone(), proposal: b.proposal.clone() });
            }
            text("reason", &b.reason, TEXT_CHARS_MAX)
        }
        B::ProposalEndorsed(b) => {
            let f = fund();
            let p = proposal_in(f, &event.fund, &b.proposal, event, &[ProposalStatus::Submitted], "submitted")?;
            require_majority(f, &event.fund, &b.proposal, p)
        }
        B::ProposalRejected(b) => {
            let f = fund();
            let p = proposal_in(f, &event.fund, &b.proposal, event, &[ProposalStatus::Submitted], "submitted")?;
            text("reason", &b.reason, TEXT_CHARS_MAX)?;
            let t = tally(f, p);
            if t.seated == 0 {
                return Err(Refusal::NoCommittee { fund: event.fund.clone() });
            }
            if t.has_quorum() && t.approvals + t.pending >= t.needed() {
                return Err(Refusal::MajorityStillPossible {
                    proposal: b.proposal.clone(),
                    approvals: t.approvals,
                    pending: t.pending,
                    needed: t.needed(),
                });
            }
            Ok(())
        }
        B::ApplicationSubmitted(b) => {
            proposal_in(fund(), &event.fund, &b.proposal, event, &[ProposalStatus::Endorsed], "endorsed")?;
            Ok(())
        }
        B::ProposalApproved(b) => {
            let f = fund();
            let p = proposal_in(f, &event.fund, &b.proposal, event, &[ProposalStatus::Applied], "applied")?;
            // Invariant 3: the currently seated committee's majority, counted again.
            require_majority(f, &event.fund, &b.proposal, p)?;
            positive("amount_fen", b.amount_fen)?;
            if b.amount_fen > p.requested {
                return Err(Refusal::ApprovalExceedsRequest {
                    proposal: b.proposal.clone(),
                    approved: b.amount_fen,
                    requested: p.requested,
                });
            }
            // Restricted money is honoured: the proposal's purpose's restricted cash,
            // then unrestricted cash; never money restricted to another purpose.
            let unrestricted = f.unrestricted.cash.available()?;
            let restricted = match &p.purpose {
                Some(name) => f.pool(Some(name)).cash.available()?,
                None => f.restricted_available()?,
            };
            let usable = match &p.purpose {
                Some(_) => restricted.checked_add(unrestricted)?,
                None => unrestricted,
            };
            if b.amount_fen > usable && p.purpose.is_none() && restricted == Fen::ZERO {
                // No restricted money anywhere: the fund is simply short.
                return Err(Refusal::InsufficientFunds {
                    fund: event.fund.clone(),
                    needed: b.amount_fen,
                    available: usable,
                });
            }
            if b.amount_fen > usable {
                return Err(Refusal::RestrictedShortfall {
                    proposal: b.proposal.clone(),
                    needed: b.amount_fen,
                    purpose: p.purpose.clone(),
                    restricted,
                    unrestricted,
                });
            }
            Ok(())
        }
        B::ProposalDeclined(b) => {
            proposal_in(fund(), &event.fund, &b.proposal, event, &[ProposalStatus::Applied], "applied")?;
            text("reason", &b.reason, TEXT_CHARS_MAX)
        }
        B::PayoutMade(b) => {
            let p = proposal_in(fund(), &event.fund, &b.proposal, event, &[ProposalStatus::Approved], "approved")?;
            positive("amount_fen", b.amount_fen)?;
            text("payment_ref", &b.payment_ref, NAME_CHARS_MAX)?;
            evidence(&b.evidence)?;
            let remainder = p.remainder()?;
            if b.amount_fen > remainder {
                return Err(Refusal::PayoutExceedsRemainder {
                    proposal: b.proposal.clone(),
                    amount: b.amount_fen,
                    remainder,
                });
            }
            Ok(())
        }
        B::GoodsDistributed(b) => {
            let f = fund();
            count("items", b.items.len(), 1, ITEMS_COUNT_MAX)?;
            text("purpose", &b.purpose, TEXT_CHARS_MAX)?;
            evidence(&b.evidence)?;
            if let Some(pid) = &b.proposal {
                if !f.proposals.contains_key(pid) {
                    return Err(Refusal::UnknownProposal { proposal: pid.clone(), fund: event.fund.clone() });
                }
            }
            // Restricted goods are honoured (docs/design.md §1.6, "Goods"): a distribution
            // takes its proposal's purpose's lots and unrestricted lots, never others'.
            let purpose = distribution_purpose(f, b.proposal.as_ref());
            for ((name, unit), requested) in goods_requested(&b.items)? {
                let on_hand = f.goods.get(&name).and_then(|u| u.get(&unit)).map_or(0, |s| s.quantity);
                let usable = f.goods_usable(&name, &unit, purpose);
                if requested <= usable.restricted.saturating_add(usable.unrestricted) {
                    continue;
                }
                if usable.other == 0 {
                    return Err(Refusal::GoodsShortfall { name, unit, requested, on_hand });
                }
                return Err(Refusal::GoodsRestrictedShortfall(Box::new(GoodsRestricted {
                    name,
                    unit,
                    requested,
                    proposal: b.proposal.clone(),
                    purpose: purpose.map(str::to_owned),
                    restricted: usable.restricted,
                    unrestricted: usable.unrestricted,
                    other: usable.other,
                })));
            }
            Ok(())
        }
        B::ProposalClosed(b) => {
            use ProposalStatus::*;
            proposal_in(
                fund(),
                &event.fund,
                &b.proposal,
                event,
                &[Submitted, Endorsed, Applied, Approved],
                "open (submitted, endorsed, applied or approved)",
            )?;
            text("report", &b.report, TEXT_CHARS_MAX)?;
            evidence(&b.evidence)
        }
        B::DisclosurePublished(b) => {
            if b.period_start >= b.period_end || b.period_end > event.occurred_at {
                return Err(Refusal::DisclosurePeriod {
                    period_end: format_utc(&b.period_end),
                    occurred_at: format_utc(&event.occurred_at),
                });
            }
            let actual = totals_of(fund())?;
            let pairs = [
                ("received_fen", b.totals.received_fen, actual.received_fen),
                ("refunded_fen", b.totals.refunded_fen, actual.refunded_fen),
                ("reserved_fen", b.totals.reserved_fen, actual.reserved_fen),
                ("paid_fen", b.totals.paid_fen, actual.paid_fen),
                ("available_fen", b.totals.available_fen, actual.available_fen),
                ("goods_received_value_fen", b.totals.goods_received_value_fen, actual.goods_received_value_fen),
                (
                    "goods_distributed_value_fen",
                    b.totals.goods_distributed_value_fen,
                    actual.goods_distributed_value_fen,
                ),
            ];
            for (field, stated, actual) in pairs {
                if stated != actual {
                    return Err(Refusal::DisclosureMismatch { field, stated, actual });
                }
            }
            // v2 cites the accounts of the year the period ends in (disclosure.rs).
            match &b.accounts {
                Some(cited) => crate::disclosure::check_citation(&event.fund, fund(), &b.period_end, cited),
                None if event.v >= 2 => Err(Refusal::DisclosureAccountsMissing { v: event.v }),
                None => Ok(()),
            }
        }
        B::AuditOpinionRecorded(b) => {
            year(b.year)?;
            text("summary", &b.summary, TEXT_CHARS_MAX)
        }
        B::CorrectionRecorded(b) => {
            if !state.event_ids.contains_key(&b.corrects) {
                return Err(Refusal::UnknownEvent { corrects: b.corrects.clone() });
            }
            text("note", &b.note, TEXT_CHARS_MAX)?;
            evidence(&b.evidence)
        }
        B::AnnualReportPublished(b) => {
            year(b.year)?;
            if state.annual_reports.contains_key(&b.year) {
                return Err(Refusal::AnnualReportExists { year: b.year });
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------
// bookkeeping

/// Applies an event that [`check`] accepted. Panics if a checked fact does not
/// hold: that would be a bug in `check`, not bad input.
pub fn apply(state: &mut State, event: &Event) {
    use EventBody as B;
    let at = event.occurred_at;
    let year = at.year();
    let scope = event.fund.clone();
    match &event.body {
        B::HostEstablished(b) => {
            state.host = Some(Host { name: b.host_name.clone(), host_key: b.host_key.clone(), established_at: at });
            state
                .keys
                .insert(b.host_key.clone(), KeyInfo { public_key: b.public_key.clone(), label: b.host_name.clone() });
            state
                .roles
                .entry(FundId::host())
                .or_default()
                .entry(b.host_key.clone())
                .or_default()
                .insert(Role::HostAdmin);
        }
        B::KeyEnrolled(b) => {
            state.keys.insert(b.key.clone(), KeyInfo { public_key: b.public_key.clone(), label: b.label.clone() });
        }
        B::RoleGranted(b) => {
            state.roles.entry(scope).or_default().entry(b.key.clone()).or_default().insert(b.role);
        }
        B::RoleRevoked(b) => {
            let roles = state.roles.get_mut(&scope).and_then(|m| m.get_mut(&b.key)).expect("checked: role held");
            assert!(roles.remove(&b.role));
        }
        B::KeyRotated(b) => {
            let by_key = state.roles.get_mut(&scope).expect("checked: roles exist");
            let moved = by_key.remove(&b.old_key).expect("checked: old key holds roles");
            by_key.entry(b.new_key.clone()).or_default().extend(moved);
            if let Some(f) = state.funds.get_mut(&scope) {
                rotate_committee_seat(f, &b.old_key, &b.new_key);
            }
        }
        B::FundOpened(b) => {
            let fund = Fund {
                name: b.name.clone(),
                community: b.community.clone(),
                opened_at: at,
                committee: Vec::new(),
                cash: Cash::default(),
                by_channel: BTreeMap::new(),
                donations: crate::packed_map::PackedMap::new(),
                receipt_numbers: imbl::OrdMap::new(),
                goods: BTreeMap::new(),
                goods_received_value: Fen::ZERO,
                goods_distributed_value: Fen::ZERO,
                pledges: imbl::OrdMap::new(),
                proposals: imbl::OrdMap::new(),
                disclosures: Vec::new(),
                audits: Vec::new(),
                income_by_year: BTreeMap::new(),
                spending_by_year: BTreeMap::new(),
                purposes: BTreeMap::new(),
                unrestricted: Pool::default(),
                restricted: BTreeMap::new(),
                gifts: 0,
                accounts: BTreeMap::new(),
                goods_lots: GoodsLots::default(),
            };
            assert!(state.funds.insert(scope, fund).is_none());
        }
        B::AnnualReportPublished(b) => {
            state.annual_reports.insert(b.year, b.report.clone());
        }
        B::CorrectionRecorded(_) => {}
        _ => apply_fund(state.funds.get_mut(&scope).expect("checked: fund exists"), event, year),
    }
}

fn apply_fund(f: &mut Fund, event: &Event, year: i32) {
    use EventBody as B;
    let at = event.occurred_at;
    let add = |a: Fen, b: Fen| a.checked_add(b).expect("checked: in range");
    let sub = |a: Fen, b: Fen| a.checked_sub(b).expect("checked: in range");
    match &event.body {
        B::CommitteeSeated(b) => f.committee = b.members.clone(),
        B::PurposeDeclared(b) => {
            let purpose = Purpose { description: b.description.clone(), declared_at: at, retired_at: None };
            assert!(f.purposes.insert(b.purpose.clone(), purpose).is_none());
            f.restricted.insert(b.purpose.clone(), Pool::default());
        }
        B::PurposeRetired(b) => {
            f.purposes.get_mut(&b.purpose).expect("checked: declared").retired_at = Some(at);
        }
        B::PledgeRecorded(b) => {
            let ch = f.by_channel.entry(b.channel).or_default();
            ch.pledged = add(ch.pledged, b.amount_fen);
            let pledge = Pledge {
                channel: b.channel,
                donor: b.donor.clone(),
                amount: b.amount_fen,
                received: Fen::ZERO,
                goods_value: Fen::ZERO,
                terms: b.terms.clone(),
                restricted_purpose: b.restricted_purpose.clone(),
            };
            f.pledges.insert(b.pledge.clone(), pledge);
        }
        B::DonationReceived(b) => {
            f.cash.received = add(f.cash.received, b.amount_fen);
            let ch = f.by_channel.entry(b.channel).or_default();
            ch.received = add(ch.received, b.amount_fen);
            ch.donations += 1;
            if let Some(pid) = &b.pledge {
                let p = f.pledges.get_mut(pid).expect("checked: pledge exists");
                p.received = add(p.received, b.amount_fen);
            }
            let income = f.income_by_year.entry(year).or_default();
            *income = add(*income, b.amount_fen);
            let purpose = b.restricted_purpose.clone();
            account_income(f, year, b.channel, purpose.as_deref(), b.amount_fen);
            let ordinal = f.gifts;
            f.gifts += 1;
            let pool = f.pool_mut(purpose.as_deref());
            pool.cash.received = add(pool.cash.received, b.amount_fen);
            pool.unspent.insert(ordinal, Unspent { donation: event.id.clone(), amount: b.amount_fen });
            let more = DonationMore {
                pledge: b.pledge.clone(),
                restricted_purpose: purpose.map(Into::into),
                ..DonationMore::default()
            };
            let donation = Donation::new(b.amount_fen, ordinal, b.donor.clone(), at, b.channel, more);
            f.donations.insert(event.id.clone(), donation);
        }
        B::GoodsReceived(b) => {
            let mut total = Fen::ZERO;
            for line in &b.items {
                let value = line.unit_value_fen.checked_mul(line.quantity).expect("checked: in range");
                total = add(total, value);
                let stock = f.goods.entry(line.name.clone()).or_default().entry(line.unit.clone()).or_default();
                stock.quantity = stock.quantity.checked_add(line.quantity).expect("goods quantity overflow");
                stock.received_quantity = stock.received_quantity.checked_add(line.quantity).expect("overflow");
                stock.value = add(stock.value, value);
            }
            f.goods_received_value = add(f.goods_received_value, total);
            let ch = f.by_channel.entry(b.channel).or_default();
            ch.goods_value = add(ch.goods_value, total);
            ch.donations += 1;
            if let Some(pid) = &b.pledge {
                let p = f.pledges.get_mut(pid).expect("checked: pledge exists");
                p.goods_value = add(p.goods_value, total);
            }
            let goods = f.accounts.entry(year).or_default().goods_income.entry(b.channel).or_default();
            let line = goods.entry(b.restricted_purpose.clone().unwrap_or_default()).or_default();
            *line = add(*line, total);
            receive_lots(f, &event.id, at, b);
        }
        B::DonationReversed(b) => {
            let d = f.donations.get_mut(&b.donation).expect("checked: donation exists");
            let (amount, channel, ordinal) = (d.amount, d.channel, d.ordinal);
            let more = d.more_mut();
            more.refunded = add(more.refunded, b.amount_fen);
            assert!(more.refunded <= amount);
            let (pledge, purpose) = (more.pledge.clone(), more.restricted_purpose.clone());
            f.cash.refunded = add(f.cash.refunded, b.amount_fen);
            let pool = f.pool_mut(purpose.as_deref());
            pool.cash.refunded = add(pool.cash.refunded, b.amount_fen);
            take_from_gift(pool, ordinal, b.amount_fen);
            let negative = Fen::ZERO.checked_sub(b.amount_fen).expect("in range");
            account_income(f, year, channel, purpose.as_deref(), negative);
            let ch = f.by_channel.entry(channel).or_default();
            ch.refunded = add(ch.refunded, b.amount_fen);
            if let Some(pid) = pledge {
                let p = f.pledges.get_mut(&pid).expect("donation's pledge exists");
                p.received = sub(p.received, b.amount_fen);
            }
            let income = f.income_by_year.entry(year).or_default();
            *income = sub(*income, b.amount_fen);
        }
        B::ReceiptIssued(b) => {
            f.donations.get_mut(&b.donation).expect("checked").more_mut().receipt_no =
                Some(b.receipt_no.as_str().into());
            f.receipt_numbers.insert(b.receipt_no.clone(), b.donation.clone());
        }
        B::ReceiptVoided(b) => {
            f.donations.get_mut(&b.donation).expect("checked").more_mut().receipt_no = None;
            // A voided number stays used: it is never issued again.
        }
        B::ProposalSubmitted(b) => {
            let proposal = Proposal {
                title: b.title.clone(),
                category: b.category,
                requested: b.amount_fen,
                payee: b.payee.clone(),
                status: ProposalStatus::Submitted,
                votes: BTreeMap::new(),
                opinions: Vec::new(),
                evidence: b.evidence.clone(),
                approved: Fen::ZERO,
                paid: Fen::ZERO,
                released: Fen::ZERO,
                payouts: Vec::new(),
                submitted_at: at,
                purpose: b.purpose.clone(),
                reservation: Vec::new(),
                approved_at: None,
                closed_at: None,
            };
            f.proposals.insert(b.proposal.clone(), proposal);
        }
        B::OpinionRecorded(b) => {
            let p = f.proposals.get_mut(&b.proposal).expect("checked");
            p.opinions.push(Opinion { summary: b.summary.clone(), support: b.support, oppose: b.oppose });
            p.evidence.extend(b.evidence.iter().cloned());
        }
        B::VoteCast(b) => {
            let p = f.proposals.get_mut(&b.proposal).expect("checked");
            assert!(p.votes.insert(event.author.clone(), b.choice).is_none());
        }
        B::ProposalEndorsed(b) => set_status(f, &b.proposal, ProposalStatus::Endorsed),
        B::ProposalRejected(b) => set_status(f, &b.proposal, ProposalStatus::Rejected),
        B::ApplicationSubmitted(b) => set_status(f, &b.proposal, ProposalStatus::Applied),
        B::ProposalDeclined(b) => set_status(f, &b.proposal, ProposalStatus::Declined),
        B::ProposalApproved(b) => {
            f.cash.reserved = add(f.cash.reserved, b.amount_fen);
            let p = f.proposals.get_mut(&b.proposal).expect("checked");
            p.status = ProposalStatus::Approved;
            p.approved = b.amount_fen;
            p.approved_at = Some(at);
            reserve(f, &b.proposal, b.amount_fen);
        }
        B::PayoutMade(b) => {
            f.cash.reserved = sub(f.cash.reserved, b.amount_fen);
            f.cash.paid = add(f.cash.paid, b.amount_fen);
            let p = f.proposals.get_mut(&b.proposal).expect("checked");
            p.paid = add(p.paid, b.amount_fen);
            assert!(!p.remainder().expect("in range").is_negative());
            let category = p.category;
            let sources = spend(f, &b.proposal, &event.id, b.amount_fen);
            let accounts = f.accounts.entry(year).or_default();
            for source in &sources {
                let line = accounts.spending.entry(source.pool.clone().unwrap_or_default()).or_default();
                *line = add(*line, source.amount);
            }
            let p = f.proposals.get_mut(&b.proposal).expect("checked");
            p.payouts.push(Payout {
                event: event.id.clone(),
                amount: b.amount_fen,
                payment_ref: b.payment_ref.clone(),
                paid_at: at,
                sources,
            });
            let spending = f.spending_by_year.entry(year).or_default();
            if category == ProposalCategory::Management {
                spending.management = add(spending.management, b.amount_fen);
            } else {
                spending.charity = add(spending.charity, b.amount_fen);
            }
        }
        B::GoodsDistributed(b) => {
            let requested = goods_requested(&b.items).expect("checked");
            for ((name, unit), quantity) in requested {
                let stock = f.goods.get_mut(&name).and_then(|u| u.get_mut(&unit)).expect("checked: on hand");
                // The share of the estimated value that leaves with these units.
                let value = stock.value.checked_mul_div(quantity, stock.quantity).expect("in range");
                stock.quantity -= quantity;
                stock.value = sub(stock.value, value);
                f.goods_distributed_value = add(f.goods_distributed_value, value);
            }
            distribute_lots(f, &event.id, at, b);
        }
        B::ProposalClosed(b) => {
            let p = f.proposals.get_mut(&b.proposal).expect("checked");
            let remainder = p.remainder().expect("in range");
            p.released = add(p.released, remainder);
            p.status = ProposalStatus::Closed;
            p.closed_at = Some(at);
            f.cash.reserved = sub(f.cash.reserved, remainder);
            release(f, &b.proposal);
        }
        B::DisclosurePublished(b) => f.disclosures.push(Disclosure {
            event: event.id.clone(),
            period_start: b.period_start,
            period_end: b.period_end,
            published_at: at,
            report: b.report.clone(),
        }),
        B::AuditOpinionRecorded(b) => {
            f.audits.push(AuditOpinion { year: b.year, opinion: b.opinion, report: b.report.clone() })
        }
        B::HostEstablished(_)
        | B::KeyEnrolled(_)
        | B::RoleGranted(_)
        | B::RoleRevoked(_)
        | B::KeyRotated(_)
        | B::FundOpened(_)
        | B::CorrectionRecorded(_)
        | B::AnnualReportPublished(_) => unreachable!("applied in apply()"),
    }
}

fn set_status(f: &mut Fund, proposal: &ProposalId, status: ProposalStatus) {
    f.proposals.get_mut(proposal).expect("checked: proposal exists").status = status;
}

fn rotate_committee_seat(f: &mut Fund, old: &KeyId, new: &KeyId) {
    for member in f.committee.iter_mut() {
        if member == old {
            *member = new.clone();
        }
    }
    let voted: Vec<ProposalId> =
        f.proposals.iter().filter(|(_, p)| p.votes.contains_key(old)).map(|(id, _)| id.clone()).collect();
    for id in voted {
        let p = f.proposals.get_mut(&id).expect("listed above");
        let choice = p.votes.remove(old).expect("listed above");
        p.votes.insert(new.clone(), choice);
    }
}

// ---------------------------------------------------------------------------
// shared helpers

/// The committee's count on a proposal, counting only currently seated members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub seated: usize,
    pub approvals: usize,
    pub rejections: usize,
    pub recusals: usize,
    /// Seated members who have not voted.
    pub pending: usize,
}

impl Tally {
    /// Seated members who did not recuse.
    pub fn eligible(&self) -> usize {
        self.seated - self.recusals
    }

    /// Approvals for a strict majority of the eligible.
    pub fn needed(&self) -> usize {
        self.eligible() / 2 + 1
    }

    /// More than half the seated committee must be eligible to decide at all.
    pub fn has_quorum(&self) -> bool {
        self.eligible() * 2 > self.seated
    }

    pub fn is_endorsed(&self) -> bool {
        self.seated > 0 && self.has_quorum() && self.approvals >= self.needed()
    }
}

pub fn tally(f: &Fund, p: &Proposal) -> Tally {
    let mut t = Tally { seated: f.committee.len(), approvals: 0, rejections: 0, recusals: 0, pending: 0 };
    for member in &f.committee {
        match p.votes.get(member) {
            Some(VoteChoice::Approve) => t.approvals += 1,
            Some(VoteChoice::Reject) => t.rejections += 1,
            Some(VoteChoice::Recuse) => t.recusals += 1,
            None => t.pending += 1,
        }
    }
    debug_assert_eq!(t.approvals + t.rejections + t.recusals + t.pending, t.seated);
    t
}

fn require_majority(f: &Fund, fund: &FundId, id: &ProposalId, p: &Proposal) -> Result<(), Refusal> {
    let t = tally(f, p);
    if t.seated == 0 {
        return Err(Refusal::NoCommittee { fund: fund.clone() });
    }
    if !t.has_quorum() {
        return Err(Refusal::NoQuorum { proposal: id.clone(), eligible: t.eligible(), seated: t.seated });
    }
    if !t.is_endorsed() {
        return Err(Refusal::NoMajority {
            proposal: id.clone(),
            approvals: t.approvals,
            eligible: t.eligible(),
            needed: t.needed(),
        });
    }
    Ok(())
}

/// The totals a disclosure must state: the fund's records right now.
pub fn totals_of(f: &Fund) -> Result<DisclosureTotals, Refusal> {
    Ok(DisclosureTotals {
        received_fen: f.cash.received,
        refunded_fen: f.cash.refunded,
        reserved_fen: f.cash.reserved,
        paid_fen: f.cash.paid,
        available_fen: f.cash.available()?,
        goods_received_value_fen: f.goods_received_value,
        goods_distributed_value_fen: f.goods_distributed_value,
    })
}

fn proposal_in<'a>(
    f: &'a Fund,
    fund: &FundId,
    id: &ProposalId,
    event: &Event,
    allowed: &[ProposalStatus],
    needed: &'static str,
) -> Result<&'a Proposal, Refusal> {
    let p = f.proposals.get(id).ok_or_else(|| Refusal::UnknownProposal { proposal: id.clone(), fund: fund.clone() })?;
    if !allowed.contains(&p.status) {
        return Err(Refusal::ProposalStatus {
            proposal: id.clone(),
            status: p.status.as_str(),
            type_name: event.type_name(),
            needed,
        });
    }
    Ok(p)
}

fn check_pledge(
    f: &Fund,
    fund: &FundId,
    pledge: Option<&crate::ids::PledgeId>,
    channel: Channel,
    purpose: Option<&str>,
) -> Result<(), Refusal> {
    let Some(pid) = pledge else { return Ok(()) };
    let p = f.pledges.get(pid).ok_or_else(|| Refusal::UnknownPledge { pledge: pid.clone(), fund: fund.clone() })?;
    if p.channel != channel {
        return Err(Refusal::PledgeChannel {
            pledge: pid.clone(),
            pledged: p.channel.as_str(),
            actual: channel.as_str(),
        });
    }
    if p.restricted_purpose.as_deref() != purpose {
        return Err(Refusal::PledgePurpose {
            pledge: pid.clone(),
            pledged: p.restricted_purpose.clone(),
            actual: purpose.map(str::to_owned),
        });
    }
    Ok(())
}

/// A purpose a new gift, pledge or proposal may name: declared in the fund and not retired.
fn purpose_open(f: &Fund, fund: &FundId, purpose: Option<&str>) -> Result<(), Refusal> {
    let Some(name) = purpose else { return Ok(()) };
    match f.purposes.get(name) {
        None => Err(Refusal::UnknownPurpose { purpose: name.to_owned(), fund: fund.clone() }),
        Some(p) if p.retired_at.is_some() => {
            Err(Refusal::PurposeRetired { purpose: name.to_owned(), fund: fund.clone() })
        }
        Some(_) => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// the allocation (docs/design.md, "Purposes and the allocation")

fn account_income(f: &mut Fund, year: i32, channel: Channel, purpose: Option<&str>, amount: Fen) {
    let accounts = f.accounts.entry(year).or_default();
    let line = match purpose {
        None => accounts.income_unrestricted.entry(channel).or_default(),
        Some(name) => accounts.income_restricted.entry(channel).or_default().entry(name.to_owned()).or_default(),
    };
    *line = line.checked_add(amount).expect("checked: in range");
}

/// Takes `amount` of gift `ordinal`'s unspent money out of `pool`'s queue.
fn take_from_gift(pool: &mut Pool, ordinal: u64, amount: Fen) {
    let entry = pool.unspent.get_mut(&ordinal).expect("checked: the gift has unspent money");
    entry.amount = entry.amount.checked_sub(amount).expect("in range");
    assert!(!entry.amount.is_negative(), "checked: within the gift's unspent money");
    if entry.amount == Fen::ZERO {
        pool.unspent.remove(&ordinal);
    }
}

/// Reserves `amount` for `proposal`: first in, first out from its purpose's
/// restricted pool (lowest gift ordinal first), then from the unrestricted pool.
fn reserve(f: &mut Fund, proposal: &ProposalId, amount: Fen) {
    let purpose = f.proposals.get(proposal).expect("checked").purpose.clone();
    let mut left = amount;
    let mut slices = Vec::new();
    let pools = match &purpose {
        Some(name) => vec![Some(name.clone()), None],
        None => vec![None],
    };
    for pool_name in pools {
        let pool = f.pool_mut(pool_name.as_deref());
        while left.is_positive() {
            let Some((ordinal, unspent)) = pool.unspent.get_min() else { break };
            let ordinal = *ordinal;
            let take = left.min(unspent.amount);
            let donation = unspent.donation.clone();
            take_from_gift(pool, ordinal, take);
            pool.cash.reserved = pool.cash.reserved.checked_add(take).expect("in range");
            left = left.checked_sub(take).expect("in range");
            slices.push(Slice { ordinal, donation, pool: pool_name.clone(), amount: take });
        }
    }
    assert_eq!(left, Fen::ZERO, "checked: the pools cover the approval");
    for slice in &slices {
        let d = f.donations.get_mut(&slice.donation).expect("a queued gift exists");
        let r = d.more_mut().reserved.entry(proposal.clone()).or_default();
        *r = r.checked_add(slice.amount).expect("in range");
    }
    f.proposals.get_mut(proposal).expect("checked").reservation.extend(slices);
}

/// Pays `amount` of `proposal`'s reservation, from its front: returns the gifts' money spent.
fn spend(f: &mut Fund, proposal: &ProposalId, payout: &EventId, amount: Fen) -> Vec<Source> {
    let p = f.proposals.get_mut(proposal).expect("checked");
    let mut left = amount;
    let mut taken = Vec::new();
    let mut used = 0;
    for slice in p.reservation.iter_mut() {
        if !left.is_positive() {
            break;
        }
        let take = left.min(slice.amount);
        slice.amount = slice.amount.checked_sub(take).expect("in range");
        left = left.checked_sub(take).expect("in range");
        taken.push((slice.donation.clone(), slice.pool.clone(), take));
        if slice.amount == Fen::ZERO {
            used += 1;
        }
    }
    assert_eq!(left, Fen::ZERO, "checked: within the approved remainder");
    p.reservation.drain(..used);
    let mut sources = Vec::with_capacity(taken.len());
    for (donation, pool_name, take) in taken {
        let pool = f.pool_mut(pool_name.as_deref());
        pool.cash.reserved = pool.cash.reserved.checked_sub(take).expect("in range");
        pool.cash.paid = pool.cash.paid.checked_add(take).expect("in range");
        let d = f.donations.get_mut(&donation).expect("a reserved gift exists").more_mut();
        let r = d.reserved.get_mut(proposal).expect("the gift's reservation");
        *r = r.checked_sub(take).expect("in range");
        if *r == Fen::ZERO {
            d.reserved.remove(proposal);
        }
        d.spent.push(Spent { proposal: proposal.clone(), payout: payout.clone(), amount: take });
        sources.push(Source { donation, pool: pool_name, amount: take });
    }
    sources
}

/// Returns what is still reserved for `proposal` to the pools it came from,
/// each piece to its gift's place in the queue.
fn release(f: &mut Fund, proposal: &ProposalId) {
    let slices = std::mem::take(&mut f.proposals.get_mut(proposal).expect("checked").reservation);
    for slice in slices {
        let pool = f.pool_mut(slice.pool.as_deref());
        pool.cash.reserved = pool.cash.reserved.checked_sub(slice.amount).expect("in range");
        match pool.unspent.get_mut(&slice.ordinal) {
            Some(u) => u.amount = u.amount.checked_add(slice.amount).expect("in range"),
            None => {
                pool.unspent.insert(slice.ordinal, Unspent { donation: slice.donation.clone(), amount: slice.amount });
            }
        }
        let d = f.donations.get_mut(&slice.donation).expect("a reserved gift exists").more_mut();
        let r = d.reserved.get_mut(proposal).expect("the gift's reservation");
        *r = r.checked_sub(slice.amount).expect("in range");
        if *r == Fen::ZERO {
            d.reserved.remove(proposal);
        }
    }
}

/// The purpose a distribution serves: its proposal's, or `None` (no proposal, or
/// a proposal serving no purpose).
fn distribution_purpose<'a>(f: &'a Fund, proposal: Option<&ProposalId>) -> Option<&'a str> {
    proposal.and_then(|p| f.proposals.get(p)).and_then(|p| p.purpose.as_deref())
}

/// Each line of goods gift `gift` becomes a lot: the next lot ordinal, at the back
/// of its pool's queue (its restricted purpose, or unrestricted) for its (name, unit).
fn receive_lots(f: &mut Fund, gift: &EventId, at: DateTime<Utc>, b: &GoodsReceived) {
    let lots = &mut f.goods_lots;
    let mut lines = Vec::with_capacity(b.items.len());
    for (i, line) in b.items.iter().enumerate() {
        let index = u32::try_from(i).expect("checked: at most ITEMS_COUNT_MAX lines");
        let ordinal = lots.lots;
        lots.lots = lots.lots.checked_add(1).expect("lot ordinals overflow");
        let pools = lots.stock.entry(line.name.clone()).or_default().entry(line.unit.clone()).or_default();
        let queue = match &b.restricted_purpose {
            None => &mut pools.unrestricted,
            Some(name) => pools.restricted.entry(name.clone()).or_default(),
        };
        queue.insert(ordinal, LotLeft { gift: gift.clone(), line: index, left: line.quantity });
        lines.push(GoodsLot {
            name: line.name.clone(),
            unit: line.unit.clone(),
            quantity: line.quantity,
            unit_value_fen: line.unit_value_fen,
            ordinal,
            handed_out: Vec::new(),
        });
    }
    let record = GoodsGift { received_at: at, restricted_purpose: b.restricted_purpose.clone(), lines };
    assert!(lots.gifts.insert(gift.clone(), record).is_none(), "an id is applied once");
}

/// Takes what distribution `event` hands out from the lots, per (name, unit) in
/// byte order: first the lots restricted to the purpose its proposal serves,
/// then the unrestricted lots, each queue lowest lot ordinal first.
fn distribute_lots(f: &mut Fund, event: &EventId, at: DateTime<Utc>, b: &GoodsDistributed) {
    let purpose = distribution_purpose(f, b.proposal.as_ref()).map(str::to_owned);
    let pools: Vec<Option<String>> = match purpose {
        Some(name) => vec![Some(name), None],
        None => vec![None],
    };
    let mut sources = Vec::new();
    let lots = &mut f.goods_lots;
    for ((name, unit), quantity) in goods_requested(&b.items).expect("checked") {
        let stock = lots.stock.get_mut(&name).and_then(|u| u.get_mut(&unit)).expect("checked: on hand");
        let mut left = quantity;
        for pool in &pools {
            let queue = match pool {
                None => &mut stock.unrestricted,
                Some(p) => match stock.restricted.get_mut(p) {
                    Some(q) => q,
                    None => continue,
                },
            };
            while left > 0 {
                let Some((ordinal, lot)) = queue.get_min() else { break };
                let (ordinal, take) = (*ordinal, left.min(lot.left));
                let (gift, line) = (lot.gift.clone(), lot.line);
                let lot = queue.get_mut(&ordinal).expect("the queue's first lot");
                lot.left -= take;
                if lot.left == 0 {
                    queue.remove(&ordinal);
                }
                left -= take;
                sources.push(LotTaken { gift, line, pool: pool.clone(), quantity: take });
            }
        }
        assert_eq!(left, 0, "checked: the usable lots cover the distribution");
    }
    for source in &sources {
        let gift = lots.gifts.get_mut(&source.gift).expect("a lot's gift exists");
        let handed = HandedOut { distribution: event.clone(), quantity: source.quantity };
        gift.lines[source.line as usize].handed_out.push(handed);
    }
    let record = Distribution { distributed_at: at, proposal: b.proposal.clone(), purpose: b.purpose.clone(), sources };
    assert!(lots.distributions.insert(event.clone(), record).is_none(), "an id is applied once");
}

fn check_committee(state: &State, fund: &FundId, members: &[KeyId]) -> Result<(), Refusal> {
    let size = members.len();
    if size < 3 || size.is_multiple_of(2) || size > COMMITTEE_SIZE_MAX {
        return Err(Refusal::CommitteeSize { size, max: COMMITTEE_SIZE_MAX });
    }
    for (i, key) in members.iter().enumerate() {
        if members[..i].contains(key) {
            return Err(Refusal::CommitteeDuplicate { key: key.clone() });
        }
        if !state.has_role(fund, key, Role::CommitteeMember) {
            return Err(Refusal::CommitteeMemberLacksRole { key: key.clone(), fund: fund.clone() });
        }
    }
    Ok(())
}

fn check_public_key(key: &KeyId, public_key_b64: &str) -> Result<(), Refusal> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(public_key_b64)
        .map_err(|_| Refusal::BadPublicKey { key: key.clone() })?;
    let raw: [u8; 32] = bytes.try_into().map_err(|_| Refusal::BadPublicKey { key: key.clone() })?;
    let actual = KeyId::of_public_key(&raw);
    if &actual != key {
        return Err(Refusal::KeyIdMismatch { key: key.clone(), actual });
    }
    Ok(())
}

fn known_key(state: &State, key: &KeyId) -> Result<(), Refusal> {
    if !state.keys.contains_key(key) {
        return Err(Refusal::UnknownKey { key: key.clone() });
    }
    Ok(())
}

fn role_in_scope(role: Role, fund: &FundId) -> Result<(), Refusal> {
    if role.is_host_wide() != fund.is_host() {
        return Err(Refusal::RoleScope { role, fund: fund.clone() });
    }
    Ok(())
}

/// Requested quantities summed per (name, unit), so two lines of the same goods
/// in one event are checked together.
fn goods_requested(items: &[GoodsOut]) -> Result<BTreeMap<(String, String), u64>, Refusal> {
    let mut requested = BTreeMap::new();
    for line in items {
        text("items[].name", &line.name, NAME_CHARS_MAX)?;
        text("items[].unit", &line.unit, NAME_CHARS_MAX)?;
        quantity("items[].quantity", line.quantity)?;
        let q: &mut u64 = requested.entry((line.name.clone(), line.unit.clone())).or_default();
        *q = q.checked_add(line.quantity).ok_or(Refusal::Quantity {
            field: "items[].quantity",
            quantity: u64::MAX,
            max: QUANTITY_MAX,
        })?;
    }
    Ok(requested)
}

/// Years a report or audit may be about.
pub const YEAR_MIN: i32 = 2000;
pub const YEAR_MAX: i32 = 2200;

fn year(year: i32) -> Result<(), Refusal> {
    if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
        return Err(Refusal::Year { year, min: YEAR_MIN, max: YEAR_MAX });
    }
    Ok(())
}

fn positive(field: &'static str, amount: Fen) -> Result<(), Refusal> {
    if !amount.is_positive() {
        return Err(Refusal::AmountNotPositive { field, amount });
    }
    Ok(())
}

fn quantity(field: &'static str, quantity: u64) -> Result<(), Refusal> {
    if quantity == 0 || quantity > QUANTITY_MAX {
        return Err(Refusal::Quantity { field, quantity, max: QUANTITY_MAX });
    }
    Ok(())
}

fn text(field: &'static str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::EmptyText { field });
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(Refusal::TextTooLong { field, chars, max });
    }
    Ok(())
}

fn count(field: &'static str, count: usize, min: usize, max: usize) -> Result<(), Refusal> {
    if count < min {
        return Err(Refusal::TooFew { field, count, min });
    }
    if count > max {
        return Err(Refusal::TooMany { field, count, max });
    }
    Ok(())
}

fn evidence(list: &[Sha256Hex]) -> Result<(), Refusal> {
    count("evidence", list.len(), 0, EVIDENCE_COUNT_MAX)
}

/// Year of a timestamp, for per-year income and spending.
pub fn year_of(t: &DateTime<Utc>) -> i32 {
    t.year()
}
