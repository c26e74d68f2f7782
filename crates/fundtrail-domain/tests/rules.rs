//! Given these events, when this command, then these events or this refusal.

use fundtrail_domain::event::*;
use fundtrail_domain::ids::HOST_SCOPE;
use fundtrail_domain::state::ProposalStatus;
use fundtrail_domain::testing::*;
use fundtrail_domain::{Fen, FundId, Refusal};

fn refused(r: Result<Vec<Event>, Refusal>) -> Refusal {
    r.expect_err("the command should be refused")
}

// --- genesis and keys -------------------------------------------------------

#[test]
fn genesis_makes_its_signer_host_admin() {
    let mut w = World::new();
    w.genesis("admin");
    let admin = w.key("admin");
    assert!(w.state.has_role(&FundId::host(), &admin, Role::HostAdmin));
}

#[test]
fn nothing_before_genesis() {
    let mut w = World::new();
    let body = EventBody::KeyEnrolled(KeyEnrolled {
        key: w.key("x"),
        public_key: b64(&World::public_key("x")),
        label: "x".into(),
    });
    assert_eq!(refused(w.when("admin", HOST_SCOPE, body)), Refusal::NoHost);
}

#[test]
fn second_genesis_is_refused() {
    let mut w = World::new();
    w.genesis("admin");
    let body = EventBody::HostEstablished(HostEstablished {
        host_name: "别的".into(),
        host_key: w.key("other"),
        public_key: b64(&World::public_key("other")),
    });
    assert_eq!(refused(w.when("other", HOST_SCOPE, body)), Refusal::HostAlreadyEstablished);
}

#[test]
fn genesis_must_be_signed_by_the_key_it_names() {
    let mut w = World::new();
    let body = EventBody::HostEstablished(HostEstablished {
        host_name: "某市慈善总会".into(),
        host_key: w.key("admin"),
        public_key: b64(&World::public_key("admin")),
    });
    assert!(matches!(refused(w.when("mallory", HOST_SCOPE, body)), Refusal::GenesisAuthor { .. }));
}

#[test]
fn enrolment_checks_key_id_against_public_key() {
    let mut w = World::with_fund();
    let body = EventBody::KeyEnrolled(KeyEnrolled {
        key: w.key("x"),
        public_key: b64(&World::public_key("y")),
        label: "x".into(),
    });
    assert!(matches!(refused(w.when("admin", HOST_SCOPE, body)), Refusal::KeyIdMismatch { .. }));
    let body = EventBody::KeyEnrolled(KeyEnrolled { key: w.key("x"), public_key: "AAAA".into(), label: "x".into() });
    assert!(matches!(refused(w.when("admin", HOST_SCOPE, body)), Refusal::BadPublicKey { .. }));
}

#[test]
fn enrolling_twice_is_refused() {
    let mut w = World::with_fund();
    let body = EventBody::KeyEnrolled(KeyEnrolled {
        key: w.key("c1"),
        public_key: b64(&World::public_key("c1")),
        label: "c1".into(),
    });
    assert!(matches!(refused(w.when("admin", HOST_SCOPE, body)), Refusal::KeyAlreadyEnrolled { .. }));
}

#[test]
fn unknown_key_signs_nothing() {
    let mut w = World::with_fund();
    assert!(matches!(
        refused(w.when("stranger", FUND, donation(Fen::yuan(1), Channel::Direct))),
        Refusal::UnknownKey { .. }
    ));
}

// --- roles (invariant 4) ------------------------------------------------------

#[test]
fn wrong_role_is_refused_naming_the_roles() {
    let mut w = World::with_fund();
    let r = refused(w.when("proposer", FUND, donation(Fen::yuan(1), Channel::Direct)));
    assert!(matches!(&r, Refusal::NotAuthorised { allowed, .. } if allowed == &[Role::Intake]));
    assert!(r.to_string().contains("intake"), "{r}");
}

#[test]
fn a_revoked_key_signs_nothing_after_revocation() {
    let mut w = World::with_fund();
    w.donate(100);
    let intake = w.key("intake");
    w.given(
        "admin",
        FUND,
        EventBody::RoleRevoked(RoleRevoked { key: intake, role: Role::Intake, reason: "换收款服务".into() }),
    );
    assert!(matches!(
        refused(w.when("intake", FUND, donation(Fen::yuan(1), Channel::Direct))),
        Refusal::NotAuthorised { .. }
    ));
}

#[test]
fn roles_are_per_fund() {
    let mut w = World::with_fund();
    w.given(
        "admin",
        "other-02",
        EventBody::FundOpened(FundOpened {
            name: "另一基金".into(),
            community: "另一社区".into(),
            currency: "CNY".into(),
            agreement: hash("a"),
        }),
    );
    assert!(matches!(
        refused(w.when("intake", "other-02", donation(Fen::yuan(1), Channel::Direct))),
        Refusal::NotAuthorised { .. }
    ));
}

#[test]
fn host_wide_roles_only_in_host_scope_and_fund_roles_only_in_funds() {
    let mut w = World::with_fund();
    let k = w.key("c1");
    let r =
        refused(w.when("admin", FUND, EventBody::RoleGranted(RoleGranted { key: k.clone(), role: Role::HostAdmin })));
    assert!(matches!(r, Refusal::RoleScope { .. }));
    let r = refused(w.when("admin", HOST_SCOPE, EventBody::RoleGranted(RoleGranted { key: k, role: Role::Intake })));
    assert!(matches!(r, Refusal::RoleScope { .. }));
}

#[test]
fn granting_a_held_role_or_revoking_a_missing_one_is_refused() {
    let mut w = World::with_fund();
    let k = w.key("intake");
    let r = refused(w.when("admin", FUND, EventBody::RoleGranted(RoleGranted { key: k.clone(), role: Role::Intake })));
    assert!(matches!(r, Refusal::RoleAlreadyHeld { .. }));
    let r = refused(w.when(
        "admin",
        FUND,
        EventBody::RoleRevoked(RoleRevoked { key: k, role: Role::Auditor, reason: "x".into() }),
    ));
    assert!(matches!(r, Refusal::RoleNotHeld { .. }));
}

#[test]
fn granting_to_an_unknown_key_is_refused() {
    let mut w = World::with_fund();
    let k = w.key("nobody");
    let r = refused(w.when("admin", FUND, EventBody::RoleGranted(RoleGranted { key: k, role: Role::Intake })));
    assert!(matches!(r, Refusal::UnknownKey { .. }));
}

#[test]
fn key_rotation_moves_roles_and_committee_seat() {
    let mut w = World::with_fund();
    w.enrol("c1-new");
    let (old, new) = (w.key("c1"), w.key("c1-new"));
    w.given(
        "admin",
        FUND,
        EventBody::KeyRotated(KeyRotated { old_key: old.clone(), new_key: new.clone(), reason: "手机丢失".into() }),
    );
    assert!(w.fund().committee.contains(&new) && !w.fund().committee.contains(&old));
    w.given("proposer", FUND, proposal("P-1", 10));
    assert!(matches!(refused(w.when("c1", FUND, vote("P-1", VoteChoice::Approve))), Refusal::NotAuthorised { .. }));
    w.given("c1-new", FUND, vote("P-1", VoteChoice::Approve));
}

#[test]
fn rotation_refusals() {
    let mut w = World::with_fund();
    let (c1, nobody) = (w.key("c1"), w.key("nobody"));
    let r = refused(w.when(
        "admin",
        FUND,
        EventBody::KeyRotated(KeyRotated { old_key: c1.clone(), new_key: c1.clone(), reason: "x".into() }),
    ));
    assert!(matches!(r, Refusal::RotateToSelf { .. }));
    let r = refused(w.when(
        "admin",
        FUND,
        EventBody::KeyRotated(KeyRotated { old_key: c1.clone(), new_key: nobody, reason: "x".into() }),
    ));
    assert!(matches!(r, Refusal::UnknownKey { .. }));
    w.enrol("fresh");
    let fresh = w.key("fresh");
    let r = refused(w.when(
        "admin",
        FUND,
        EventBody::KeyRotated(KeyRotated { old_key: fresh, new_key: c1, reason: "x".into() }),
    ));
    assert!(matches!(r, Refusal::NothingToRotate { .. }));
}

// --- funds and scopes -----------------------------------------------------------

#[test]
fn fund_events_need_an_open_fund() {
    let mut w = World::with_fund();
    assert!(matches!(
        refused(w.when("intake", "nowhere", donation(Fen::yuan(1), Channel::Direct))),
        Refusal::UnknownFund { .. }
    ));
}

#[test]
fn a_fund_opens_once_and_only_in_cny() {
    let mut w = World::with_fund();
    let open = |currency: &str| {
        EventBody::FundOpened(FundOpened {
            name: "x".into(),
            community: "y".into(),
            currency: currency.into(),
            agreement: hash("a"),
        })
    };
    assert!(matches!(refused(w.when("admin", FUND, open("CNY"))), Refusal::FundExists { .. }));
    assert!(matches!(refused(w.when("admin", "new-fund", open("USD"))), Refusal::Currency { .. }));
}

#[test]
fn events_stay_in_their_scope() {
    let mut w = World::with_fund();
    assert!(matches!(
        refused(w.when("intake", HOST_SCOPE, donation(Fen::yuan(1), Channel::Direct))),
        Refusal::WrongScope { .. }
    ));
    let body = EventBody::AnnualReportPublished(AnnualReportPublished { year: 2025, report: hash("r") });
    assert!(matches!(refused(w.when("admin", FUND, body)), Refusal::WrongScope { .. }));
}

// --- committee (invariant 3) ------------------------------------------------------

#[test]
fn committee_must_be_odd_and_at_least_three() {
    let mut w = World::with_fund();
    for n in [1usize, 2, 4] {
        let members = ["c1", "c2", "c3", "c4"].iter().take(n).map(|c| w.key(c)).collect();
        let r =
            refused(w.when("admin", FUND, EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("m") })));
        assert_eq!(r, Refusal::CommitteeSize { size: n, max: COMMITTEE_SIZE_MAX });
    }
}

#[test]
fn committee_members_are_distinct_and_hold_the_role() {
    let mut w = World::with_fund();
    let members = vec![w.key("c1"), w.key("c1"), w.key("c2")];
    let r = refused(w.when("admin", FUND, EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("m") })));
    assert!(matches!(r, Refusal::CommitteeDuplicate { .. }));
    let members = vec![w.key("c1"), w.key("c2"), w.key("intake")];
    let r = refused(w.when("admin", FUND, EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("m") })));
    assert!(matches!(r, Refusal::CommitteeMemberLacksRole { .. }));
}

#[test]
fn a_member_votes_once() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    w.given("c1", FUND, vote("P-1", VoteChoice::Approve));
    assert!(matches!(refused(w.when("c1", FUND, vote("P-1", VoteChoice::Reject))), Refusal::AlreadyVoted { .. }));
}

#[test]
fn only_seated_members_vote() {
    let mut w = World::with_fund();
    w.enrol("c6");
    let c6 = w.key("c6");
    w.given("admin", FUND, EventBody::RoleGranted(RoleGranted { key: c6, role: Role::CommitteeMember }));
    w.given("proposer", FUND, proposal("P-1", 10));
    assert!(matches!(refused(w.when("c6", FUND, vote("P-1", VoteChoice::Approve))), Refusal::NotSeated { .. }));
}

fn endorse(id: &str) -> EventBody {
    EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes: hash("m") })
}

#[test]
fn endorsement_needs_a_strict_majority() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    w.given("c1", FUND, vote("P-1", VoteChoice::Approve));
    w.given("c2", FUND, vote("P-1", VoteChoice::Approve));
    let r = refused(w.when("c1", FUND, endorse("P-1")));
    assert_eq!(r, Refusal::NoMajority { proposal: pid("P-1"), approvals: 2, eligible: 5, needed: 3 });
    assert_eq!(
        r.to_string(),
        "proposal P-1 lacks a strict majority: 2 approvals of 5 non-recused seated members, 3 needed"
    );
    w.given("c3", FUND, vote("P-1", VoteChoice::Approve));
    w.given("c1", FUND, endorse("P-1"));
    assert_eq!(w.fund().proposals[&pid("P-1")].status, ProposalStatus::Endorsed);
}

#[test]
fn recusal_is_counted_without_the_member() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    w.given("c1", FUND, vote("P-1", VoteChoice::Recuse));
    w.given("c2", FUND, vote("P-1", VoteChoice::Approve));
    w.given("c3", FUND, vote("P-1", VoteChoice::Approve));
    // 4 eligible: 2 approvals are not a strict majority.
    assert!(matches!(refused(w.when("c2", FUND, endorse("P-1"))), Refusal::NoMajority { eligible: 4, needed: 3, .. }));
    w.given("c4", FUND, vote("P-1", VoteChoice::Approve));
    w.given("c2", FUND, endorse("P-1"));
}

#[test]
fn too_many_recusals_leave_no_quorum() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    for c in ["c1", "c2", "c3"] {
        w.given(c, FUND, vote("P-1", VoteChoice::Recuse));
    }
    w.given("c4", FUND, vote("P-1", VoteChoice::Approve));
    w.given("c5", FUND, vote("P-1", VoteChoice::Approve));
    assert!(matches!(refused(w.when("c4", FUND, endorse("P-1"))), Refusal::NoQuorum { eligible: 2, seated: 5, .. }));
}

#[test]
fn rejection_only_when_majority_is_out_of_reach() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    let reject =
        || EventBody::ProposalRejected(ProposalRejected { proposal: pid("P-1"), reason: "预算过高".into() });
    w.given("c1", FUND, vote("P-1", VoteChoice::Reject));
    w.given("c2", FUND, vote("P-1", VoteChoice::Reject));
    assert!(matches!(refused(w.when("c1", FUND, reject())), Refusal::MajorityStillPossible { .. }));
    w.given("c3", FUND, vote("P-1", VoteChoice::Reject));
    w.given("c1", FUND, reject());
    assert_eq!(w.fund().proposals[&pid("P-1")].status, ProposalStatus::Rejected);
    assert!(matches!(refused(w.when("c4", FUND, vote("P-1", VoteChoice::Approve))), Refusal::ProposalStatus { .. }));
}

#[test]
fn approval_rechecks_the_currently_seated_committee() {
    let mut w = World::with_fund();
    w.donate(1000);
    w.given("proposer", FUND, proposal("P-1", 100));
    for c in ["c1", "c2", "c3"] {
        w.given(c, FUND, vote("P-1", VoteChoice::Approve));
    }
    w.given("c1", FUND, endorse("P-1"));
    w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-1") }));
    // A new committee is seated before the host approves: c1..c3 are gone.
    for n in ["d1", "d2", "d3"] {
        w.enrol(n);
        let k = w.key(n);
        w.given("admin", FUND, EventBody::RoleGranted(RoleGranted { key: k, role: Role::CommitteeMember }));
    }
    let members = ["d1", "d2", "d3"].map(|n| w.key(n)).to_vec();
    w.given("admin", FUND, EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("m2") }));
    assert!(matches!(refused(w.when("approver", FUND, approve("P-1", 100))), Refusal::NoMajority { approvals: 0, .. }));
}

// --- money (invariants 1 and 2) ---------------------------------------------------

#[test]
fn approval_reserves_and_cannot_overspend() {
    let mut w = World::with_fund();
    w.donate(500);
    w.given("proposer", FUND, proposal("P-1", 800));
    for c in ["c1", "c2", "c3"] {
        w.given(c, FUND, vote("P-1", VoteChoice::Approve));
    }
    w.given("c1", FUND, endorse("P-1"));
    w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-1") }));
    let r = refused(w.when("approver", FUND, approve("P-1", 800)));
    assert_eq!(r.to_string(), "fund xihu-01 has ¥500.00 available, ¥800.00 needed");
    w.given("approver", FUND, approve("P-1", 400));
    assert_eq!(w.fund().cash.reserved, Fen::yuan(400));
    assert_eq!(w.fund().cash.available().unwrap(), Fen::yuan(100));
}

#[test]
fn approval_cannot_exceed_the_request() {
    let mut w = World::with_fund();
    w.donate(5000);
    w.given("proposer", FUND, proposal("P-1", 100));
    for c in ["c1", "c2", "c3"] {
        w.given(c, FUND, vote("P-1", VoteChoice::Approve));
    }
    w.given("c1", FUND, endorse("P-1"));
    w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-1") }));
    assert!(matches!(refused(w.when("approver", FUND, approve("P-1", 101))), Refusal::ApprovalExceedsRequest { .. }));
}

#[test]
fn approval_needs_an_application() {
    let mut w = World::with_fund();
    w.donate(5000);
    w.given("proposer", FUND, proposal("P-1", 100));
    let r = refused(w.when("approver", FUND, approve("P-1", 100)));
    assert_eq!(r.to_string(), "proposal P-1 is submitted; proposal.approved needs it to be applied");
}

#[test]
fn payout_never_exceeds_the_approved_remainder() {
    let mut w = World::with_fund();
    w.donate(5000);
    w.approved_proposal("P-7", 2000);
    w.given("treasurer", FUND, payout("P-7", Fen::yuan(1200)));
    let r = refused(w.when("treasurer", FUND, payout("P-7", Fen::yuan(1200))));
    assert_eq!(r.to_string(), "payout ¥1,200.00 exceeds approved remainder ¥800.00 of proposal P-7");
    w.given("treasurer", FUND, payout("P-7", Fen::yuan(800)));
    let f = w.fund();
    assert_eq!((f.cash.paid, f.cash.reserved), (Fen::yuan(2000), Fen::ZERO));
}

#[test]
fn payout_needs_an_approval() {
    let mut w = World::with_fund();
    w.donate(5000);
    w.given("proposer", FUND, proposal("P-1", 100));
    assert!(matches!(refused(w.when("treasurer", FUND, payout("P-1", Fen::yuan(1)))), Refusal::ProposalStatus { .. }));
}

#[test]
fn closing_releases_what_was_not_spent() {
    let mut w = World::with_fund();
    w.donate(5000);
    w.approved_proposal("P-1", 3000);
    w.given("treasurer", FUND, payout("P-1", Fen::yuan(1000)));
    w.given("treasurer", FUND, payout("P-1", Fen::yuan(1500)));
    w.given("proposer", FUND, close("P-1"));
    let f = w.fund();
    assert_eq!(f.cash.reserved, Fen::ZERO);
    assert_eq!(f.cash.available().unwrap(), Fen::yuan(2500));
    assert_eq!(f.proposals[&pid("P-1")].released, Fen::yuan(500));
    assert!(matches!(refused(w.when("treasurer", FUND, payout("P-1", Fen::yuan(1)))), Refusal::ProposalStatus { .. }));
    assert!(matches!(refused(w.when("proposer", FUND, close("P-1"))), Refusal::ProposalStatus { .. }));
}

#[test]
fn amounts_must_be_positive() {
    let mut w = World::with_fund();
    let r = refused(w.when("intake", FUND, donation(Fen::ZERO, Channel::Direct)));
    assert!(matches!(r, Refusal::AmountNotPositive { field: "amount_fen", .. }));
    let r = refused(w.when("intake", FUND, donation(Fen::new(-5).unwrap(), Channel::Direct)));
    assert!(matches!(r, Refusal::AmountNotPositive { .. }));
}

#[test]
fn income_overflow_is_refused_not_wrapped() {
    let mut w = World::with_fund();
    let max = Fen::new(fundtrail_domain::money::AMOUNT_FEN_MAX).unwrap();
    w.given("intake", FUND, donation(max, Channel::Direct));
    assert!(matches!(
        refused(w.when("intake", FUND, donation(Fen::new(1).unwrap(), Channel::Direct))),
        Refusal::Money(_)
    ));
}

#[test]
fn refunds_are_bounded_by_the_donation_and_by_its_unspent_money() {
    let mut w = World::with_fund();
    let d = w.donate(1000);
    let reverse = |amount| {
        EventBody::DonationReversed(DonationReversed {
            donation: d.id.clone(),
            amount_fen: amount,
            reason: "重复扣款".into(),
        })
    };
    assert!(matches!(refused(w.when("intake", FUND, reverse(Fen::yuan(1001)))), Refusal::RefundExceeds { .. }));
    w.approved_proposal("P-1", 800);
    let r = refused(w.when("intake", FUND, reverse(Fen::yuan(300))));
    assert_eq!(
        r.to_string(),
        format!(
            "refund ¥300.00 exceeds the ¥200.00 of donation {} that is neither reserved nor paid for a proposal",
            d.id
        )
    );
    w.given("treasurer", FUND, reverse(Fen::yuan(200)));
    assert_eq!(w.fund().cash.available().unwrap(), Fen::ZERO);
    assert_eq!(w.fund().cash.refunded, Fen::yuan(200));
}

#[test]
fn reversing_an_unknown_donation_is_refused() {
    let mut w = World::with_fund();
    let id = w.next_id();
    let body =
        EventBody::DonationReversed(DonationReversed { donation: id, amount_fen: Fen::yuan(1), reason: "x".into() });
    assert!(matches!(refused(w.when("intake", FUND, body)), Refusal::UnknownDonation { .. }));
}

// --- pledges, goods, receipts ---------------------------------------------------------

fn pledge(id: &str, channel: Channel, yuan: i64) -> EventBody {
    EventBody::PledgeRecorded(PledgeRecorded {
        pledge: fundtrail_domain::PledgeId::new(id).unwrap(),
        channel,
        donor: hash("partner"),
        amount_fen: Fen::yuan(yuan),
        terms: "2026年度利润的5%".into(),
        restricted_purpose: None,
    })
}

#[test]
fn pledges_track_what_arrived() {
    let mut w = World::with_fund();
    w.given("intake", FUND, pledge("PL-1", Channel::SpaceForService, 12_000));
    let mut body = donation(Fen::yuan(1000), Channel::SpaceForService);
    if let EventBody::DonationReceived(d) = &mut body {
        d.pledge = Some(fundtrail_domain::PledgeId::new("PL-1").unwrap());
    }
    w.given("intake", FUND, body.clone());
    let p = &w.fund().pledges[&fundtrail_domain::PledgeId::new("PL-1").unwrap()];
    assert_eq!((p.amount, p.received), (Fen::yuan(12_000), Fen::yuan(1000)));
    assert!(matches!(
        refused(w.when("intake", FUND, pledge("PL-1", Channel::Direct, 1))),
        Refusal::PledgeExists { .. }
    ));
    if let EventBody::DonationReceived(d) = &mut body {
        d.channel = Channel::Direct;
    }
    assert!(matches!(refused(w.when("intake", FUND, body.clone())), Refusal::PledgeChannel { .. }));
    if let EventBody::DonationReceived(d) = &mut body {
        d.pledge = Some(fundtrail_domain::PledgeId::new("PL-9").unwrap());
    }
    assert!(matches!(refused(w.when("intake", FUND, body)), Refusal::UnknownPledge { .. }));
}

fn goods_in(name: &str, quantity: u64, unit_yuan: i64) -> EventBody {
    EventBody::GoodsReceived(GoodsReceived {
        channel: Channel::NeighbourhoodMarket,
        donor: hash("merchant"),
        items: vec![GoodsLine {
            name: name.into(), quantity, unit: "袋".into(), unit_value_fen: Fen::yuan(unit_yuan)
        }],
        pledge: None,
        restricted_purpose: None,
    })
}

fn goods_out(name: &str, quantity: u64) -> EventBody {
    EventBody::GoodsDistributed(GoodsDistributed {
        items: vec![GoodsOut { name: name.into(), quantity, unit: "袋".into() }],
        purpose: "慰问独居老人".into(),
        proposal: None,
        evidence: vec![],
    })
}

#[test]
fn goods_on_hand_never_go_negative_and_carry_their_value() {
    let mut w = World::with_fund();
    w.given("intake", FUND, goods_in("大米", 10, 50));
    w.given("proposer", FUND, goods_out("大米", 4));
    let stock = w.fund().goods["大米"]["袋"];
    assert_eq!((stock.quantity, stock.value), (6, Fen::yuan(300)));
    assert_eq!(w.fund().goods_distributed_value, Fen::yuan(200));
    let r = refused(w.when("proposer", FUND, goods_out("大米", 7)));
    assert_eq!(r.to_string(), "only 6 袋 of 大米 on hand, 7 requested");
    assert!(matches!(
        refused(w.when("proposer", FUND, goods_out("面粉", 1))),
        Refusal::GoodsShortfall { on_hand: 0, .. }
    ));
}

#[test]
fn goods_lines_are_bounded() {
    let mut w = World::with_fund();
    assert!(matches!(refused(w.when("intake", FUND, goods_in("大米", 0, 1))), Refusal::Quantity { .. }));
    let empty = EventBody::GoodsReceived(GoodsReceived {
        channel: Channel::Direct,
        donor: hash("d"),
        items: vec![],
        pledge: None,
        restricted_purpose: None,
    });
    assert!(matches!(refused(w.when("intake", FUND, empty)), Refusal::TooFew { .. }));
}

#[test]
fn one_active_receipt_per_donation_and_numbers_are_never_reused() {
    let mut w = World::with_fund();
    let d1 = w.donate(10);
    let d2 = w.donate(20);
    let issue =
        |d: &Event, no: &str| EventBody::ReceiptIssued(ReceiptIssued { donation: d.id.clone(), receipt_no: no.into() });
    w.given("treasurer", FUND, issue(&d1, "No.0001"));
    assert!(matches!(refused(w.when("treasurer", FUND, issue(&d1, "No.0002"))), Refusal::ReceiptAlreadyIssued { .. }));
    assert!(matches!(refused(w.when("treasurer", FUND, issue(&d2, "No.0001"))), Refusal::ReceiptNumberUsed { .. }));
    let void = |no: &str| {
        EventBody::ReceiptVoided(ReceiptVoided {
            donation: d1.id.clone(),
            receipt_no: no.into(),
            reason: "抬头错误".into(),
        })
    };
    assert!(matches!(refused(w.when("treasurer", FUND, void("No.9999"))), Refusal::NoSuchReceipt { .. }));
    w.given("treasurer", FUND, void("No.0001"));
    assert!(matches!(refused(w.when("treasurer", FUND, issue(&d1, "No.0001"))), Refusal::ReceiptNumberUsed { .. }));
    w.given("treasurer", FUND, issue(&d1, "No.0003"));
}

// --- proposals ------------------------------------------------------------------

#[test]
fn proposal_ids_are_unique_per_fund() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    assert!(matches!(refused(w.when("proposer", FUND, proposal("P-1", 10))), Refusal::ProposalExists { .. }));
}

#[test]
fn texts_are_bounded() {
    let mut w = World::with_fund();
    let mut body = proposal("P-1", 10);
    if let EventBody::ProposalSubmitted(p) = &mut body {
        p.description = "长".repeat(TEXT_CHARS_MAX + 1);
    }
    assert!(matches!(refused(w.when("proposer", FUND, body)), Refusal::TextTooLong { field: "description", .. }));
    let mut body = proposal("P-1", 10);
    if let EventBody::ProposalSubmitted(p) = &mut body {
        p.title = "  ".into();
    }
    assert!(matches!(refused(w.when("proposer", FUND, body)), Refusal::EmptyText { field: "title" }));
    let mut body = proposal("P-1", 10);
    if let EventBody::ProposalSubmitted(p) = &mut body {
        p.evidence = vec![hash("e"); EVIDENCE_COUNT_MAX + 1];
    }
    assert!(matches!(refused(w.when("proposer", FUND, body)), Refusal::TooMany { field: "evidence", .. }));
}

#[test]
fn decline_and_withdrawal() {
    let mut w = World::with_fund();
    w.given("proposer", FUND, proposal("P-1", 10));
    w.given("proposer", FUND, close("P-1"));
    assert_eq!(w.fund().proposals[&pid("P-1")].status, ProposalStatus::Closed);
    w.given("proposer", FUND, proposal("P-2", 10));
    for c in ["c1", "c2", "c3"] {
        w.given(c, FUND, vote("P-2", VoteChoice::Approve));
    }
    w.given("c1", FUND, endorse("P-2"));
    w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-2") }));
    w.given(
        "approver",
        FUND,
        EventBody::ProposalDeclined(ProposalDeclined { proposal: pid("P-2"), reason: "不符合章程".into() }),
    );
    assert_eq!(w.fund().proposals[&pid("P-2")].status, ProposalStatus::Declined);
}

#[test]
fn unknown_proposal_is_refused() {
    let mut w = World::with_fund();
    assert!(matches!(refused(w.when("c1", FUND, vote("P-404", VoteChoice::Approve))), Refusal::UnknownProposal { .. }));
}

// --- disclosure, audit, corrections ---------------------------------------------------

#[test]
fn disclosure_totals_must_equal_the_fold() {
    let mut w = World::with_fund();
    w.donate(1000);
    w.approved_proposal("P-1", 400);
    w.given("treasurer", FUND, payout("P-1", Fen::yuan(100)));
    let start = w.now - chrono::Duration::days(90);
    let mut totals = fundtrail_domain::rules::totals_of(w.fund()).unwrap();
    let fund = fundtrail_domain::FundId::new(FUND).unwrap();
    let accounts = fundtrail_domain::disclosure::expected_citation(&fund, w.fund(), &w.now).unwrap();
    let body = |totals: DisclosureTotals, end| {
        EventBody::DisclosurePublished(DisclosurePublished {
            period_start: start,
            period_end: end,
            totals,
            report: hash("r"),
            accounts: Some(Box::new(accounts.clone())),
        })
    };
    let end = w.now;
    w.given("c1", FUND, body(totals.clone(), end));
    totals.paid_fen = Fen::yuan(99);
    let r = refused(w.when("c1", FUND, body(totals.clone(), end)));
    assert_eq!(r.to_string(), "disclosure states paid_fen = ¥99.00 but the fund's records give ¥100.00");
    let future = w.now + chrono::Duration::days(30);
    assert!(matches!(refused(w.when("c1", FUND, body(totals, future))), Refusal::DisclosurePeriod { .. }));
}

#[test]
fn corrections_name_an_existing_event() {
    let mut w = World::with_fund();
    let d = w.donate(10);
    w.given(
        "admin",
        FUND,
        EventBody::CorrectionRecorded(CorrectionRecorded {
            corrects: d.id,
            note: "付款参考号应为 WX-0002".into(),
            evidence: vec![],
        }),
    );
    let ghost = w.next_id();
    let r = refused(w.when(
        "admin",
        FUND,
        EventBody::CorrectionRecorded(CorrectionRecorded { corrects: ghost, note: "x".into(), evidence: vec![] }),
    ));
    assert!(matches!(r, Refusal::UnknownEvent { .. }));
}

#[test]
fn audit_opinions_and_annual_reports() {
    let mut w = World::with_fund();
    let audit = EventBody::AuditOpinionRecorded(AuditOpinionRecorded {
        year: 2025,
        opinion: AuditOpinionKind::Unqualified,
        summary: "无保留意见".into(),
        report: hash("a"),
    });
    assert!(matches!(refused(w.when("c1", FUND, audit.clone())), Refusal::NotAuthorised { .. }));
    w.given("auditor", FUND, audit);
    let report = EventBody::AnnualReportPublished(AnnualReportPublished { year: 2025, report: hash("r") });
    w.given("admin", HOST_SCOPE, report.clone());
    assert!(matches!(refused(w.when("admin", HOST_SCOPE, report)), Refusal::AnnualReportExists { year: 2025 }));
}

// --- idempotence (invariant 5) ------------------------------------------------------------

#[test]
fn the_same_event_twice_has_one_effect() {
    let mut w = World::with_fund();
    let d = w.donate(100);
    assert_eq!(fundtrail_domain::decide(&w.state, &d), Ok(vec![]));
    assert_eq!(fundtrail_domain::evolve(&mut w.state, &d), Ok(fundtrail_domain::Applied::Duplicate));
    assert_eq!(w.fund().cash.received, Fen::yuan(100));
}

// --- compliance ------------------------------------------------------------------------

#[test]
fn long_projects_owe_quarterly_disclosures_and_a_final_one() {
    use fundtrail_domain::compliance::*;
    let mut w = World::with_fund();
    w.donate(1000);
    w.approved_proposal("P-1", 500);
    let approved_at = w.now;
    assert!(disclosures_due(w.fund(), approved_at + chrono::Duration::days(30)).is_empty());
    let later = approved_at + chrono::Duration::days(200);
    let due = disclosures_due(w.fund(), later);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, "periodic");
    assert!(due[0].overdue);
    w.now = later;
    w.given("proposer", FUND, close("P-1"));
    let due = disclosures_due(w.fund(), later + chrono::Duration::days(10));
    assert_eq!((due[0].kind, due[0].overdue), ("final", false));
}

fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

#[test]
fn a_fund_owes_no_annual_report_for_a_year_before_it_was_opened() {
    use fundtrail_domain::compliance::*;
    // Given a fund opened on 1 December 2026,
    let w = World::with_fund_opened_at(utc("2026-12-01T00:00:00Z"));
    // when its compliance is asked the next day, after 2025's report fell due,
    let r = annual_report_due(&w.state, w.fund(), utc("2026-12-02T00:00:00Z"));
    // then it owes no report for 2025, so none is late.
    assert_eq!((r.year, r.owed, r.late), (2025, false, false));
    // The report for 2026, its first year, it owes, and it is late after 31 May 2027.
    let r = annual_report_due(&w.state, w.fund(), utc("2027-06-01T00:00:00Z"));
    assert_eq!((r.year, r.owed, r.late), (2026, true, true));
    assert_eq!(r.due, utc("2027-05-31T23:59:59Z"));
}

#[test]
fn a_fund_open_during_the_year_owes_its_report_until_published() {
    use fundtrail_domain::compliance::*;
    // Given a fund opened in January 2026,
    let mut w = World::with_fund();
    // when asked before 31 May 2027, then the 2026 report is owed but not late;
    let r = annual_report_due(&w.state, w.fund(), utc("2027-05-31T12:00:00Z"));
    assert_eq!((r.year, r.owed, r.late), (2026, true, false));
    // when asked after, then it is late,
    let r = annual_report_due(&w.state, w.fund(), utc("2027-06-01T00:00:00Z"));
    assert_eq!((r.owed, r.late), (true, true));
    // and once the host publishes it, it is not.
    let report = EventBody::AnnualReportPublished(AnnualReportPublished { year: 2026, report: hash("r") });
    w.given("admin", HOST_SCOPE, report);
    let r = annual_report_due(&w.state, w.fund(), utc("2027-06-01T00:00:00Z"));
    assert_eq!((r.owed, r.late), (true, false));
}

#[test]
fn a_fund_owes_no_disclosure_for_a_period_before_it_was_opened() {
    use fundtrail_domain::compliance::*;
    // Given a fund opened on 1 December 2026 and a proposal approved with an
    // earlier date (recorded late),
    let mut w = World::with_fund_opened_at(utc("2026-12-01T00:00:00Z"));
    let opened_at = w.fund().opened_at;
    w.donate(1000);
    w.now = utc("2026-01-10T00:00:00Z");
    w.approved_proposal("P-1", 500);
    // when asked the next day, then no quarterly disclosure is due yet: the
    // project's periods count from the fund's opening;
    assert!(disclosures_due(w.fund(), utc("2026-12-02T00:00:00Z")).is_empty());
    // six months after the opening it owes one, due three months after the opening.
    let due = disclosures_due(w.fund(), utc("2027-06-02T00:00:00Z"));
    assert_eq!((due.len(), due[0].kind, due[0].overdue), (1, "periodic", true));
    assert_eq!(due[0].due, opened_at.checked_add_months(chrono::Months::new(3)).unwrap());
}

#[test]
fn cost_ratios_flag_risk() {
    use fundtrail_domain::compliance::*;
    let mut w = World::with_fund();
    w.now = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").unwrap().to_utc();
    w.donate(10_000);
    w.now = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().to_utc();
    w.approved_proposal("P-1", 5000);
    w.given("treasurer", FUND, payout("P-1", Fen::yuan(5000)));
    let r = cost_ratios(w.fund(), 2026);
    assert_eq!(r.charity_bp, Some(5000));
    assert!(r.charity_at_risk);
    assert!(!r.management_at_risk);
}
