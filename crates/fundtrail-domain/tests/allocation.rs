//! Properties of purposes and the allocation over random histories: restricted
//! money never crosses purposes, every gift's parts sum to the gift, every
//! payout's sources sum to the payout, and a replay reproduces every trace.
//! Goods in kind likewise: restricted goods never go to a distribution for
//! another purpose, and every goods gift's parts sum to it, line by line.

use std::collections::BTreeMap;

use fundtrail_domain::event::*;
use fundtrail_domain::testing::*;
use fundtrail_domain::{decide, evolve, gift_trace, goods_trace, replay, trace, Event, Fen, FundId};
use proptest::prelude::*;

const PURPOSES: [Option<&str>; 3] = [None, Some("助老"), Some("助学")];

#[derive(Debug, Clone)]
enum Op {
    Donate { purpose: usize, fen: i64 },
    Refund { donation: usize, share: i64 },
    Propose { id: u8, purpose: usize, fen: i64 },
    Approve { id: u8, share: i64 },
    Pay { id: u8, share: i64 },
    Close { id: u8 },
    Retire { purpose: usize },
    GoodsIn { purpose: usize, kind: usize, quantity: u64 },
    GoodsOut { proposal: Option<u8>, kind: usize, quantity: u64 },
}

/// The kinds of goods the histories use: (name, unit).
const KINDS: [(&str, &str); 2] = [("大米", "袋"), ("牛奶", "箱")];

fn op() -> impl Strategy<Value = Op> {
    let id = 0u8..5;
    let fen = 1i64..500_000;
    let share = 0i64..1_300;
    prop_oneof![
        10 => (0usize..3, fen.clone()).prop_map(|(purpose, fen)| Op::Donate { purpose, fen }),
        2 => (0usize..30, share.clone()).prop_map(|(donation, share)| Op::Refund { donation, share }),
        4 => (id.clone(), 0usize..3, fen).prop_map(|(id, purpose, fen)| Op::Propose { id, purpose, fen }),
        5 => (id.clone(), share.clone()).prop_map(|(id, share)| Op::Approve { id, share }),
        6 => (id.clone(), share).prop_map(|(id, share)| Op::Pay { id, share }),
        2 => id.prop_map(|id| Op::Close { id }),
        1 => (1usize..3).prop_map(|purpose| Op::Retire { purpose }),
        4 => (0usize..3, 0usize..2, 1u64..40).prop_map(|(purpose, kind, quantity)| Op::GoodsIn { purpose, kind, quantity }),
        4 => (prop::option::of(0u8..5), 0usize..2, 1u64..60)
            .prop_map(|(proposal, kind, quantity)| Op::GoodsOut { proposal, kind, quantity }),
    ]
}

/// Runs `body` by `author`: accepted events are applied, refused ones change nothing.
fn attempt(w: &mut World, author: &str, body: EventBody) -> bool {
    let event = w.event(author, FUND, body);
    let before = w.state.clone();
    match decide(&w.state, &event) {
        Ok(_) => {
            evolve(&mut w.state, &event).expect("decided events apply");
            w.log.push(event);
            true
        }
        Err(_) => {
            assert_eq!(before, w.state);
            false
        }
    }
}

fn run(w: &mut World, op: &Op) {
    let p = |id: &u8| format!("P-{id}");
    match op {
        Op::Donate { purpose, fen } => {
            let body = match PURPOSES[*purpose] {
                Some(name) => restricted_donation(Fen::new(*fen).unwrap(), Channel::Direct, name),
                None => donation(Fen::new(*fen).unwrap(), Channel::Direct),
            };
            attempt(w, "intake", body);
        }
        Op::Refund { donation, share } => {
            let gifts: Vec<_> = w.fund().donations.iter().map(|(id, d)| (id.clone(), d.amount)).collect();
            let Some((id, amount)) = gifts.get(donation % gifts.len().max(1)).cloned() else { return };
            let fen = (amount.fen() * share / 1000).max(1);
            let body = EventBody::DonationReversed(DonationReversed {
                donation: id,
                amount_fen: Fen::new(fen).unwrap(),
                reason: "退款".into(),
            });
            attempt(w, "intake", body);
        }
        Op::Propose { id, purpose, fen } => {
            let id = p(id);
            let mut body = proposal_for(&id, 1, PURPOSES[*purpose]);
            if let EventBody::ProposalSubmitted(b) = &mut body {
                b.amount_fen = Fen::new(*fen).unwrap();
            }
            if !attempt(w, "proposer", body) {
                return;
            }
            for c in ["c1", "c2", "c3"] {
                attempt(w, c, vote(&id, VoteChoice::Approve));
            }
            attempt(w, "c1", EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(&id), minutes: hash("m") }));
            attempt(w, "proposer", EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(&id) }));
        }
        Op::Approve { id, share } => {
            let requested = w.fund().proposals.get(&pid(&p(id))).map_or(1, |p| p.requested.fen());
            let fen = (requested * share / 1000).max(1);
            attempt(
                w,
                "approver",
                EventBody::ProposalApproved(ProposalApproved {
                    proposal: pid(&p(id)),
                    amount_fen: Fen::new(fen).unwrap(),
                }),
            );
        }
        Op::Pay { id, share } => {
            let rest = w.fund().proposals.get(&pid(&p(id))).map_or(1, |p| p.remainder().unwrap().fen());
            attempt(w, "treasurer", payout(&p(id), Fen::new((rest * share / 1000).max(1)).unwrap()));
        }
        Op::Close { id } => {
            attempt(w, "proposer", close(&p(id)));
        }
        Op::Retire { purpose } => {
            let name = PURPOSES[*purpose].unwrap();
            attempt(w, "admin", EventBody::PurposeRetired(PurposeRetired { purpose: name.into(), reason: "r".into() }));
        }
        Op::GoodsIn { purpose, kind, quantity } => {
            let (name, unit) = KINDS[*kind];
            let body = EventBody::GoodsReceived(GoodsReceived {
                channel: Channel::NeighbourhoodMarket,
                donor: hash("m"),
                items: vec![
                    GoodsLine {
                        name: name.into(),
                        quantity: *quantity,
                        unit: unit.into(),
                        unit_value_fen: Fen::yuan(7),
                    },
                    GoodsLine { name: "毛巾".into(), quantity: 1, unit: "条".into(), unit_value_fen: Fen::yuan(3) },
                ],
                pledge: None,
                restricted_purpose: PURPOSES[*purpose].map(str::to_owned),
            });
            attempt(w, "intake", body);
        }
        Op::GoodsOut { proposal, kind, quantity } => {
            let (name, unit) = KINDS[*kind];
            let body = EventBody::GoodsDistributed(GoodsDistributed {
                items: vec![GoodsOut { name: name.into(), quantity: *quantity, unit: unit.into() }],
                purpose: "慰问".into(),
                proposal: proposal.map(|id| pid(&p(&id))),
                evidence: vec![],
            });
            attempt(w, "proposer", body);
        }
    }
}

/// Checked from the events alone: for every purpose P and kind of goods, the
/// units handed out by distributions not serving P never exceed the units
/// received that were not restricted to P; and every goods gift's lines are
/// whole (handed out + in stock = quantity).
fn restricted_goods_never_cross(w: &World) {
    let f = w.fund();
    let serves = |proposal: &Option<fundtrail_domain::ProposalId>| {
        proposal.as_ref().and_then(|p| f.proposals.get(p)).and_then(|p| p.purpose.clone())
    };
    for (name, unit) in KINDS {
        let mut received: BTreeMap<Option<String>, u64> = BTreeMap::new();
        let mut handed: BTreeMap<Option<String>, u64> = BTreeMap::new();
        for event in &w.log {
            match &event.body {
                EventBody::GoodsReceived(b) => {
                    for l in b.items.iter().filter(|l| l.name == name && l.unit == unit) {
                        *received.entry(b.restricted_purpose.clone()).or_default() += l.quantity;
                    }
                }
                EventBody::GoodsDistributed(b) => {
                    for l in b.items.iter().filter(|l| l.name == name && l.unit == unit) {
                        *handed.entry(serves(&b.proposal)).or_default() += l.quantity;
                    }
                }
                _ => {}
            }
        }
        let total: u64 = received.values().sum();
        for purpose in PURPOSES {
            let purpose = purpose.map(str::to_owned);
            let by_others: u64 = handed.iter().filter(|(k, _)| **k != purpose).map(|(_, q)| q).sum();
            let not_restricted_to_p = total - received.get(&purpose).copied().unwrap_or(0);
            if purpose.is_some() {
                assert!(by_others <= not_restricted_to_p, "{name}: {purpose:?}: {by_others} > {not_restricted_to_p}");
            }
        }
        // Distributions serving no purpose take unrestricted goods only.
        assert!(handed.get(&None).copied().unwrap_or(0) <= received.get(&None).copied().unwrap_or(0));
    }
    for id in f.goods_lots.gifts.keys() {
        let t = goods_trace(&w.state, id).expect("every goods gift has a trace");
        assert!(t.is_whole(), "goods gift {id}: parts do not sum to the lines");
    }
}

/// Checked from the events alone, without the allocation: for every purpose P,
/// what proposals not serving P hold (paid or reserved) never exceeds the money
/// given that was not restricted to P. So P's restricted money is never spent or
/// reserved for anything else.
fn restricted_never_crosses(w: &World) {
    let f = w.fund();
    let mut given: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for d in f.donations.values() {
        *given.entry(d.restricted_purpose().map(str::to_owned)).or_default() += d.amount.fen() - d.refunded().fen();
    }
    let total: i64 = given.values().sum();
    for purpose in PURPOSES {
        let purpose = purpose.map(str::to_owned);
        let held_by_others: i64 = f
            .proposals
            .values()
            .filter(|p| p.purpose != purpose || purpose.is_none())
            .map(|p| p.paid.fen() + p.remainder().unwrap().fen())
            .sum();
        let not_restricted_to_p = total - given.get(&purpose).copied().unwrap_or(0);
        if purpose.is_some() {
            assert!(held_by_others <= not_restricted_to_p, "{purpose:?}: {held_by_others} > {not_restricted_to_p}");
        }
        // For every purpose: restricted cash spent ≤ restricted cash given.
        if let Some(name) = &purpose {
            let pool = f.pool(Some(name));
            let spent = pool.cash.paid.fen() + pool.cash.reserved.fen() + pool.cash.refunded.fen();
            assert!(spent <= pool.cash.received.fen());
            assert_eq!(pool.cash.received.fen(), given.get(&purpose).copied().unwrap_or(0) + pool.cash.refunded.fen());
        }
    }
    // Proposals with no purpose hold unrestricted money only.
    let none_held: i64 =
        f.proposals.values().filter(|p| p.purpose.is_none()).map(|p| p.paid.fen() + p.remainder().unwrap().fen()).sum();
    assert!(none_held <= given.get(&None).copied().unwrap_or(0));
}

fn traces_whole(w: &World) {
    for (id, _) in &w.fund().donations {
        let t = trace(&w.state, id).expect("every gift has a trace");
        assert!(t.is_whole(), "gift {id}: parts do not sum to the gift");
    }
    for p in w.fund().proposals.values() {
        for payout in &p.payouts {
            let sum: i64 = payout.sources.iter().map(|s| s.amount.fen()).sum();
            assert_eq!(sum, payout.amount.fen());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn restricted_money_never_crosses_purposes_and_every_fen_is_traced(ops in prop::collection::vec(op(), 1..120)) {
        let mut w = World::with_fund();
        w.given("admin", FUND, declare_purpose("助老"));
        w.given("admin", FUND, declare_purpose("助学"));
        for op in &ops {
            run(&mut w, op);
            w.state.assert_invariants();
            restricted_never_crosses(&w);
            restricted_goods_never_cross(&w);
            traces_whole(&w);
        }
        let replayed = replay(&w.log).map_err(|(i, r)| TestCaseError::fail(format!("replay refused event {i}: {r}")))?;
        prop_assert_eq!(serde_json::to_vec(&replayed).unwrap(), serde_json::to_vec(&w.state).unwrap());
        for id in w.fund().donations.keys().chain(w.fund().goods_lots.gifts.keys()) {
            prop_assert_eq!(
                serde_json::to_vec(&gift_trace(&replayed, id)).unwrap(),
                serde_json::to_vec(&gift_trace(&w.state, id)).unwrap()
            );
        }
        let _ = FundId::new(FUND);
    }
}

#[test]
fn every_event_type_world_replays_with_purposes() {
    let w = World::every_event_type();
    w.state.assert_invariants();
    let _: Vec<&Event> = w.log.iter().collect();
}
