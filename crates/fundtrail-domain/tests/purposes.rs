//! Purposes and the allocation: given these events, when this command, then
//! these events or this refusal (with the numbers); and where each gift went.

use fundtrail_domain::event::*;
use fundtrail_domain::refusal::GoodsRestricted;
use fundtrail_domain::testing::*;
use fundtrail_domain::trace::AllocationState;
use fundtrail_domain::{trace, Event, Fen, FundId, PledgeId, Refusal};

fn refused(r: Result<Vec<Event>, Refusal>) -> Refusal {
    r.expect_err("the command should be refused")
}

fn fund() -> FundId {
    FundId::new(FUND).unwrap()
}

/// A fund with 助老 and 助学 declared.
fn world() -> World {
    let mut w = World::with_fund();
    w.given("admin", FUND, declare_purpose("助老"));
    w.given("admin", FUND, declare_purpose("助学"));
    w
}

/// Takes proposal `id` (serving `purpose`) to the host's desk: submitted, endorsed, applied.
fn applied(w: &mut World, id: &str, yuan: i64, purpose: Option<&str>) {
    w.given("proposer", FUND, proposal_for(id, yuan, purpose));
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        w.given(c, FUND, vote(id, VoteChoice::Approve));
    }
    w.given("c1", FUND, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes: hash("m") }));
    w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(id) }));
}

fn gift(w: &mut World, yuan: i64, purpose: Option<&str>) -> Event {
    match purpose {
        Some(p) => w.given("intake", FUND, restricted_donation(Fen::yuan(yuan), Channel::SpaceForService, p)),
        None => w.given("intake", FUND, donation(Fen::yuan(yuan), Channel::Direct)),
    }
}

#[test]
fn only_the_host_declares_purposes_and_once() {
    let mut w = world();
    assert!(matches!(refused(w.when("c1", FUND, declare_purpose("助残"))), Refusal::NotAuthorised { .. }));
    let r = refused(w.when("admin", FUND, declare_purpose("助老")));
    assert_eq!(r, Refusal::PurposeExists { purpose: "助老".into(), fund: fund() });
    assert_eq!(r.to_string(), "purpose 助老 is already declared in xihu-01");
}

#[test]
fn an_unknown_purpose_is_refused_with_its_name() {
    let mut w = world();
    let unknown = Refusal::UnknownPurpose { purpose: "助残".into(), fund: fund() };
    let r = refused(w.when("intake", FUND, restricted_donation(Fen::yuan(10), Channel::Direct, "助残")));
    assert_eq!(r, unknown);
    assert_eq!(r.to_string(), "purpose 助残 is not declared in xihu-01");
    assert_eq!(refused(w.when("proposer", FUND, proposal_for("P-1", 10, Some("助残")))), unknown);
    let pledge = EventBody::PledgeRecorded(PledgeRecorded {
        pledge: PledgeId::new("PL-1").unwrap(),
        channel: Channel::Direct,
        donor: hash("d"),
        amount_fen: Fen::yuan(100),
        terms: "t".into(),
        restricted_purpose: Some("助残".into()),
    });
    assert_eq!(refused(w.when("intake", FUND, pledge)), unknown);
    let goods = EventBody::GoodsReceived(GoodsReceived {
        channel: Channel::NeighbourhoodMarket,
        donor: hash("m"),
        items: vec![GoodsLine { name: "米".into(), quantity: 1, unit: "袋".into(), unit_value_fen: Fen::yuan(5) }],
        pledge: None,
        restricted_purpose: Some("助残".into()),
    });
    assert_eq!(refused(w.when("intake", FUND, goods)), unknown);
    let retire = EventBody::PurposeRetired(PurposeRetired { purpose: "助残".into(), reason: "r".into() });
    assert_eq!(refused(w.when("admin", FUND, retire)), unknown);
}

#[test]
fn a_retired_purpose_takes_no_new_gift_but_its_money_stays_restricted() {
    let mut w = world();
    gift(&mut w, 1_000, Some("助老"));
    applied(&mut w, "P-1", 600, Some("助老"));
    w.given(
        "admin",
        FUND,
        EventBody::PurposeRetired(PurposeRetired { purpose: "助老".into(), reason: "食堂关闭".into() }),
    );
    let retired = Refusal::PurposeRetired { purpose: "助老".into(), fund: fund() };
    let r = refused(w.when("intake", FUND, restricted_donation(Fen::yuan(10), Channel::Direct, "助老")));
    assert_eq!(r, retired);
    assert_eq!(r.to_string(), "purpose 助老 was retired in xihu-01: no new gift, pledge or proposal may name it");
    assert_eq!(refused(w.when("proposer", FUND, proposal_for("P-2", 10, Some("助老")))), retired);
    let again = EventBody::PurposeRetired(PurposeRetired { purpose: "助老".into(), reason: "r".into() });
    assert_eq!(refused(w.when("admin", FUND, again)), retired);
    // A proposal submitted before may still be approved with the purpose's money.
    w.given("approver", FUND, approve("P-1", 600));
    assert_eq!(w.fund().pool(Some("助老")).cash.reserved, Fen::yuan(600));
}

#[test]
fn a_payment_against_a_restricted_pledge_names_its_purpose() {
    let mut w = world();
    let pledge = PledgeId::new("PL-1").unwrap();
    w.given(
        "intake",
        FUND,
        EventBody::PledgeRecorded(PledgeRecorded {
            pledge: pledge.clone(),
            channel: Channel::Direct,
            donor: hash("d"),
            amount_fen: Fen::yuan(100),
            terms: "t".into(),
            restricted_purpose: Some("助老".into()),
        }),
    );
    let mut body = donation(Fen::yuan(50), Channel::Direct);
    if let EventBody::DonationReceived(b) = &mut body {
        b.pledge = Some(pledge.clone());
    }
    let r = refused(w.when("intake", FUND, body.clone()));
    assert_eq!(r, Refusal::PledgePurpose { pledge: pledge.clone(), pledged: Some("助老".into()), actual: None });
    assert_eq!(r.to_string(), "pledge PL-1 is restricted to 助老, the payment to no purpose");
    if let EventBody::DonationReceived(b) = &mut body {
        b.restricted_purpose = Some("助老".into());
    }
    w.given("intake", FUND, body);
}

#[test]
fn approval_never_reserves_another_purposes_money_and_says_so_with_the_numbers() {
    let mut w = world();
    gift(&mut w, 2_000, Some("助老"));
    gift(&mut w, 3_500, None);
    gift(&mut w, 9_000, Some("助学"));
    applied(&mut w, "P-7", 8_000, Some("助老"));
    let r = refused(w.when("approver", FUND, approve("P-7", 8_000)));
    assert_eq!(
        r,
        Refusal::RestrictedShortfall {
            proposal: pid("P-7"),
            needed: Fen::yuan(8_000),
            purpose: Some("助老".into()),
            restricted: Fen::yuan(2_000),
            unrestricted: Fen::yuan(3_500),
        }
    );
    assert_eq!(
        r.to_string(),
        "P-7 needs ¥8,000.00; 助老 has ¥2,000.00 restricted and ¥3,500.00 unrestricted available"
    );
    assert_eq!(r.code(), "overspend");
    // Within what it may use: its purpose's money first, then unrestricted.
    w.given("approver", FUND, approve("P-7", 5_000));
    let f = w.fund();
    assert_eq!(f.pool(Some("助老")).cash.reserved, Fen::yuan(2_000));
    assert_eq!(f.unrestricted.cash.reserved, Fen::yuan(3_000));
    assert_eq!(f.pool(Some("助学")).cash.reserved, Fen::ZERO);
}

#[test]
fn a_proposal_with_no_purpose_uses_unrestricted_money_only() {
    let mut w = world();
    gift(&mut w, 5_000, Some("助老"));
    gift(&mut w, 100, None);
    applied(&mut w, "P-1", 1_000, None);
    let r = refused(w.when("approver", FUND, approve("P-1", 1_000)));
    assert_eq!(
        r,
        Refusal::RestrictedShortfall {
            proposal: pid("P-1"),
            needed: Fen::yuan(1_000),
            purpose: None,
            restricted: Fen::yuan(5_000),
            unrestricted: Fen::yuan(100),
        }
    );
    assert_eq!(
        r.to_string(),
        "P-1 needs ¥1,000.00; it serves no purpose, so only unrestricted money may pay it: ¥100.00 available (¥5,000.00 more is restricted to purposes)"
    );
}

#[test]
fn a_refund_returns_only_the_gifts_unspent_money() {
    let mut w = world();
    let g = gift(&mut w, 500, Some("助老"));
    applied(&mut w, "P-1", 300, Some("助老"));
    w.given("approver", FUND, approve("P-1", 300));
    let refund = |fen: Fen| {
        EventBody::DonationReversed(DonationReversed {
            donation: g.id.clone(), amount_fen: fen, reason: "退款".into()
        })
    };
    let r = refused(w.when("intake", FUND, refund(Fen::yuan(250))));
    assert_eq!(
        r,
        Refusal::RefundExceedsUnspent { donation: g.id.clone(), amount: Fen::yuan(250), unspent: Fen::yuan(200) }
    );
    assert_eq!(r.code(), "refund");
    w.given("intake", FUND, refund(Fen::yuan(200)));
    let f = w.fund();
    assert_eq!(f.pool(Some("助老")).cash.refunded, Fen::yuan(200));
    assert_eq!(f.pool(Some("助老")).cash.available().unwrap(), Fen::ZERO);
}

#[test]
fn gifts_are_spent_first_in_first_out_and_returned_to_their_place() {
    let mut w = world();
    let a = gift(&mut w, 100, None);
    let b = gift(&mut w, 100, None);
    let c = gift(&mut w, 100, Some("助老"));
    applied(&mut w, "P-1", 250, Some("助老"));
    w.given("approver", FUND, approve("P-1", 250));
    // 助老 first (c: 100), then unrestricted in stream order (a: 100, b: 50).
    let reserved = |w: &World, g: &Event| trace(&w.state, &g.id).unwrap();
    assert_eq!(reserved(&w, &c).allocations[0].amount_fen, Fen::yuan(100));
    assert_eq!(reserved(&w, &a).allocations[0].amount_fen, Fen::yuan(100));
    assert_eq!(reserved(&w, &b).allocations[0].amount_fen, Fen::yuan(50));
    assert_eq!(reserved(&w, &b).unspent_fen, Fen::yuan(50));
    // A payout spends the reservation from its front: c, then a.
    let paid = w.given("treasurer", FUND, payout("P-1", Fen::yuan(150)));
    let tc = reserved(&w, &c);
    assert_eq!(tc.allocations.len(), 1);
    assert_eq!(tc.allocations[0].state, AllocationState::Paid);
    assert_eq!(tc.allocations[0].payout.as_ref().unwrap().event, paid.id);
    let ta = reserved(&w, &a);
    assert_eq!(ta.allocations.len(), 2);
    assert_eq!((ta.allocations[0].state, ta.allocations[0].amount_fen), (AllocationState::Paid, Fen::yuan(50)));
    assert_eq!((ta.allocations[1].state, ta.allocations[1].amount_fen), (AllocationState::Reserved, Fen::yuan(50)));
    let p = &w.fund().proposals[&pid("P-1")];
    assert_eq!(p.payouts[0].sources.iter().map(|s| s.amount).collect::<Vec<_>>(), vec![Fen::yuan(100), Fen::yuan(50)]);
    // Closing under budget returns a's 50 and b's 50 to their places: the next
    // proposal takes a's money before b's.
    w.given("proposer", FUND, close("P-1"));
    assert_eq!(reserved(&w, &a).unspent_fen, Fen::yuan(50));
    assert_eq!(reserved(&w, &b).unspent_fen, Fen::yuan(100));
    applied(&mut w, "P-2", 60, None);
    w.given("approver", FUND, approve("P-2", 60));
    assert_eq!(reserved(&w, &a).unspent_fen, Fen::ZERO);
    assert_eq!(reserved(&w, &b).unspent_fen, Fen::yuan(90));
    for g in [&a, &b, &c] {
        assert!(reserved(&w, g).is_whole());
    }
    w.state.assert_invariants();
    assert_eq!(
        reserved(&w, &c).summary(),
        format!(
            "your ¥100.00 (restricted to 助老): ¥100.00 → P-1 重阳节敬老活动, paid {}; ¥0.00 unspent",
            paid.occurred_at.format("%Y-%m-%d")
        )
    );
}

#[test]
fn a_v1_gift_with_free_text_reads_as_unrestricted() {
    let v1 = serde_json::json!({
        "id": "0190a000-0000-7000-8000-000000000abc",
        "fund": FUND,
        "type": "donation.received",
        "occurred_at": "2026-03-15T02:30:00Z",
        "author": "66687aadf862bd776c8fc18b8e9f8e20",
        "body": {"amount_fen": 50000, "channel": "direct",
                 "donor": "3f7c0a4e9b1d2c8e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a",
                 "payment_ref": "WX-1", "pledge": null, "restricted_purpose": "仅用于老年食堂"},
        "v": 1
    });
    let event = Event::from_json(v1).unwrap();
    let EventBody::DonationReceived(b) = &event.body else { panic!("a donation") };
    assert_eq!(b.restricted_purpose, None);
    assert_eq!(event.v, 1);
    let v1_proposal = serde_json::json!({
        "id": "0190a000-0000-7000-8000-000000000abd", "fund": FUND, "type": "proposal.submitted",
        "occurred_at": "2026-03-15T02:30:00Z", "author": "66687aadf862bd776c8fc18b8e9f8e20",
        "body": {"proposal": "P-1", "title": "t", "category": "activity", "amount_fen": 1, "payee": "p",
                 "description": "d", "evidence": []},
        "v": 1
    });
    let EventBody::ProposalSubmitted(p) = Event::from_json(v1_proposal).unwrap().body else { panic!() };
    assert_eq!(p.purpose, None);
    assert_eq!(EventType::DonationReceived.version(), 2);
    assert_eq!(EventType::PurposeDeclared.version(), 1);
}

#[test]
fn a_future_version_is_refused() {
    let e = serde_json::json!({
        "id": "0190a000-0000-7000-8000-000000000abc", "fund": FUND, "type": "donation.received",
        "occurred_at": "2026-03-15T02:30:00Z", "author": "66687aadf862bd776c8fc18b8e9f8e20",
        "body": {}, "v": 3
    });
    assert!(matches!(Event::from_json(e), Err(EventParseError::FutureVersion { v: 3, current: 2, .. })));
}

// ---------------------------------------------------------------------------
// goods in kind (docs/design.md §1.6, "Goods")

fn goods(w: &mut World, lines: &[(&str, u64, &str)], purpose: Option<&str>) -> Event {
    let items = lines
        .iter()
        .map(|(name, quantity, unit)| GoodsLine {
            name: (*name).into(),
            quantity: *quantity,
            unit: (*unit).into(),
            unit_value_fen: Fen::yuan(50),
        })
        .collect();
    let body = EventBody::GoodsReceived(GoodsReceived {
        channel: Channel::NeighbourhoodMarket,
        donor: hash("merchant"),
        items,
        pledge: None,
        restricted_purpose: purpose.map(str::to_owned),
    });
    w.given("intake", FUND, body)
}

fn hand_out(lines: &[(&str, u64, &str)], purpose: &str, proposal: Option<&str>) -> EventBody {
    EventBody::GoodsDistributed(GoodsDistributed {
        items: lines
            .iter()
            .map(|(name, quantity, unit)| GoodsOut { name: (*name).into(), quantity: *quantity, unit: (*unit).into() })
            .collect(),
        purpose: purpose.into(),
        proposal: proposal.map(pid),
        evidence: vec![],
    })
}

#[test]
fn restricted_goods_never_go_to_another_purpose_and_the_refusal_says_so_with_the_numbers() {
    let mut w = world();
    goods(&mut w, &[("大米", 10, "袋")], Some("助老"));
    goods(&mut w, &[("大米", 20, "袋")], None);
    goods(&mut w, &[("大米", 15, "袋")], Some("助学"));
    w.given("proposer", FUND, proposal_for("P-2026-08", 100, Some("助老")));
    w.given("proposer", FUND, proposal_for("P-2026-09", 100, None));
    let r =
        refused(w.when("proposer", FUND, hand_out(&[("大米", 40, "袋")], "重阳节 慰问独居老人", Some("P-2026-08"))));
    assert_eq!(
        r,
        Refusal::GoodsRestrictedShortfall(Box::new(GoodsRestricted {
            name: "大米".into(),
            unit: "袋".into(),
            requested: 40,
            proposal: Some(pid("P-2026-08")),
            purpose: Some("助老".into()),
            restricted: 10,
            unrestricted: 20,
            other: 15,
        }))
    );
    assert_eq!(
        r.to_string(),
        "the distribution for P-2026-08 needs 40 袋 大米; 助老 has 10 袋 restricted and 20 袋 unrestricted available (15 袋 more restricted to other purposes)"
    );
    assert_eq!(r.code(), "goods");
    // No proposal: unrestricted goods only.
    let r = refused(w.when("proposer", FUND, hand_out(&[("大米", 21, "袋")], "春节慰问", None)));
    assert_eq!(
        r.to_string(),
        "the distribution needs 21 袋 大米; it names no proposal, so only unrestricted goods may go: 20 袋 available (25 袋 more restricted to purposes)"
    );
    // A proposal serving no purpose: unrestricted goods only.
    let r = refused(w.when("proposer", FUND, hand_out(&[("大米", 21, "袋")], "慰问", Some("P-2026-09"))));
    assert_eq!(
        r.to_string(),
        "the distribution for P-2026-09 needs 21 袋 大米; its proposal serves no purpose, so only unrestricted goods may go: 20 袋 available (25 袋 more restricted to purposes)"
    );
    // Within what it may take: its purpose's lots first, then unrestricted; 助学's untouched.
    w.given("proposer", FUND, hand_out(&[("大米", 30, "袋")], "重阳节 慰问独居老人", Some("P-2026-08")));
    let usable = w.fund().goods_usable("大米", "袋", Some("助学"));
    assert_eq!((usable.restricted, usable.unrestricted, usable.other), (15, 0, 0));
    w.state.assert_invariants();
}

#[test]
fn with_no_restricted_goods_anywhere_the_refusal_is_the_plain_shortfall() {
    let mut w = world();
    goods(&mut w, &[("大米", 10, "袋")], None);
    let r = refused(w.when("proposer", FUND, hand_out(&[("大米", 11, "袋")], "慰问", None)));
    assert_eq!(r, Refusal::GoodsShortfall { name: "大米".into(), unit: "袋".into(), requested: 11, on_hand: 10 });
}

#[test]
fn a_goods_gift_is_traced_lot_by_lot_to_its_distributions_first_in_first_out() {
    let mut w = world();
    let a = goods(&mut w, &[("大米", 50, "袋"), ("牛奶", 10, "箱")], Some("助老"));
    let b = goods(&mut w, &[("大米", 20, "袋")], None);
    w.given("proposer", FUND, proposal_for("P-2026-08", 100, Some("助老")));
    // The proposal's purpose first (a's 50), then unrestricted (b's 5).
    let first = w.given("proposer", FUND, hand_out(&[("大米", 30, "袋")], "重阳节 慰问独居老人", Some("P-2026-08")));
    let second = w.given("proposer", FUND, hand_out(&[("大米", 25, "袋")], "冬至送温暖", Some("P-2026-08")));
    // No proposal: unrestricted lots only (b's remaining 15).
    let third = w.given("proposer", FUND, hand_out(&[("大米", 5, "袋")], "春节慰问 困难家庭", None));
    let ta = fundtrail_domain::goods_trace(&w.state, &a.id).unwrap();
    assert!(ta.is_whole());
    assert_eq!(ta.restricted_purpose.as_deref(), Some("助老"));
    let rice = &ta.lines[0];
    let parts: Vec<_> = rice.distributions.iter().map(|d| (d.distribution.event.clone(), d.quantity)).collect();
    assert_eq!(parts, vec![(first.id.clone(), 30), (second.id.clone(), 20)]);
    assert_eq!(rice.in_stock, 0);
    assert_eq!(rice.distributions[0].title.as_deref(), Some("重阳节敬老活动"));
    assert_eq!((ta.lines[1].quantity, ta.lines[1].in_stock), (10, 10));
    let tb = fundtrail_domain::goods_trace(&w.state, &b.id).unwrap();
    let parts: Vec<_> = tb.lines[0].distributions.iter().map(|d| (d.distribution.event.clone(), d.quantity)).collect();
    assert_eq!(parts, vec![(second.id.clone(), 5), (third.id.clone(), 5)]);
    assert_eq!(tb.lines[0].in_stock, 10);
    let day = |e: &Event| e.occurred_at.format("%Y-%m-%d").to_string();
    assert_eq!(
        ta.summary(),
        format!(
            "your 50 袋 大米 (restricted to 助老): 30 袋 → 重阳节 慰问独居老人 (P-2026-08), {}; 20 袋 → 冬至送温暖 (P-2026-08), {}; 0 袋 in stock | 10 箱 牛奶: 10 箱 in stock",
            day(&first),
            day(&second)
        )
    );
    assert_eq!(
        tb.summary(),
        format!(
            "your 20 袋 大米: 5 袋 → 冬至送温暖 (P-2026-08), {}; 5 袋 → 春节慰问 困难家庭, {}; 10 袋 in stock",
            day(&second),
            day(&third)
        )
    );
    // The valuation is the fund's as before: the average value of what is on hand.
    assert_eq!(w.fund().goods_distributed_value, Fen::yuan(50 * 60));
    // Either kind through one door, tagged by kind.
    let json = serde_json::to_value(fundtrail_domain::gift_trace(&w.state, &a.id).unwrap()).unwrap();
    assert_eq!(json["kind"], "goods");
    assert_eq!(json["lines"][0]["distributions"][0]["quantity"], 30);
    w.state.assert_invariants();
}

#[test]
fn a_v1_goods_gift_reads_as_unrestricted_and_old_streams_distribute_as_before() {
    let v1 = serde_json::json!({
        "id": "0190a000-0000-7000-8000-000000000abe", "fund": FUND, "type": "goods.received",
        "occurred_at": "2026-03-15T02:30:00Z", "author": "66687aadf862bd776c8fc18b8e9f8e20",
        "body": {"channel": "neighbourhood_market",
                 "donor": "3f7c0a4e9b1d2c8e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a",
                 "items": [{"name": "大米", "quantity": 3, "unit": "袋", "unit_value_fen": 6000}], "pledge": null},
        "v": 1
    });
    let EventBody::GoodsReceived(b) = Event::from_json(v1).unwrap().body else { panic!("goods") };
    assert_eq!(b.restricted_purpose, None);
    let mut w = World::with_fund();
    w.given("intake", FUND, EventBody::GoodsReceived(b));
    w.given("proposer", FUND, hand_out(&[("大米", 3, "袋")], "春节慰问", None));
    assert_eq!(w.fund().goods_distributed_value, Fen::yuan(180));
    w.state.assert_invariants();
}
