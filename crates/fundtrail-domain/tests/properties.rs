//! Properties over random command sequences: whatever actors ask, in any
//! order, by any author, the accepted events never break invariants 1–5, and
//! a replay of them reproduces the state byte for byte.

use fundtrail_domain::event::*;
use fundtrail_domain::rules::tally;
use fundtrail_domain::state::ProposalStatus;
use fundtrail_domain::testing::*;
use fundtrail_domain::{decide, replay, Event, Fen, FundId};
use proptest::prelude::*;

const ACTORS: [&str; 10] = ["admin", "intake", "proposer", "c1", "c2", "c3", "c4", "c5", "approver", "treasurer"];

#[derive(Debug, Clone)]
enum Op {
    Donate { by: usize, fen: i64 },
    Refund { by: usize, donation: usize, fen: i64 },
    Propose { by: usize, id: u8, fen: i64 },
    Vote { by: usize, id: u8, choice: u8 },
    Endorse { by: usize, id: u8 },
    Reject { by: usize, id: u8 },
    Apply { by: usize, id: u8 },
    Approve { by: usize, id: u8, fen: i64 },
    Pay { by: usize, id: u8, fen: i64 },
    Close { by: usize, id: u8 },
    Revoke { role: usize },
    Replay { index: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let by = 0..ACTORS.len() * 5;
    let id = 0u8..3;
    let fen = -100i64..2_000_000;
    prop_oneof![
        12 => (by.clone(), fen.clone()).prop_map(|(by, fen)| Op::Donate { by, fen }),
        2 => (by.clone(), 0usize..20, fen.clone()).prop_map(|(by, donation, fen)| Op::Refund { by, donation, fen }),
        6 => (by.clone(), id.clone(), fen.clone()).prop_map(|(by, id, fen)| Op::Propose { by, id, fen }),
        30 => (by.clone(), id.clone(), 0u8..6).prop_map(|(by, id, choice)| Op::Vote { by, id, choice }),
        10 => (by.clone(), id.clone()).prop_map(|(by, id)| Op::Endorse { by, id }),
        2 => (by.clone(), id.clone()).prop_map(|(by, id)| Op::Reject { by, id }),
        10 => (by.clone(), id.clone()).prop_map(|(by, id)| Op::Apply { by, id }),
        10 => (by.clone(), id.clone(), fen.clone()).prop_map(|(by, id, fen)| Op::Approve { by, id, fen }),
        16 => (by.clone(), id.clone(), fen).prop_map(|(by, id, fen)| Op::Pay { by, id, fen }),
        2 => (by, id).prop_map(|(by, id)| Op::Close { by, id }),
        1 => (1usize..ACTORS.len()).prop_map(|role| Op::Revoke { role }),
        3 => (0usize..200).prop_map(|index| Op::Replay { index }),
    ]
}

fn body_of(w: &World, op: &Op, accepted: &[Event]) -> Option<(usize, EventBody)> {
    let p = |id: &u8| format!("P-{id}");
    let fen = |f: &i64| Fen::new(*f).unwrap();
    Some(match op {
        Op::Donate { by, fen: f } => (*by, donation(fen(f), Channel::Direct)),
        Op::Refund { by, donation: i, fen: f } => {
            let donations: Vec<_> = w.fund().donations.keys().cloned().collect();
            let donation = donations.get(i % donations.len().max(1))?.clone();
            (*by, EventBody::DonationReversed(DonationReversed { donation, amount_fen: fen(f), reason: "退款".into() }))
        }
        Op::Propose { by, id, fen: f } => {
            let mut body = proposal(&p(id), 1);
            if let EventBody::ProposalSubmitted(b) = &mut body {
                b.amount_fen = fen(f);
            }
            (*by, body)
        }
        Op::Vote { by, id, choice } => {
            let choice = [
                VoteChoice::Approve,
                VoteChoice::Approve,
                VoteChoice::Approve,
                VoteChoice::Approve,
                VoteChoice::Reject,
                VoteChoice::Recuse,
            ][*choice as usize];
            (*by, vote(&p(id), choice))
        }
        Op::Endorse { by, id } => {
            (*by, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(&p(id)), minutes: hash("m") }))
        }
        Op::Reject { by, id } => {
            (*by, EventBody::ProposalRejected(ProposalRejected { proposal: pid(&p(id)), reason: "否决".into() }))
        }
        Op::Apply { by, id } => (*by, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(&p(id)) })),
        // Approvals and payouts ask for a share (in per mille, up to 120%) of
        // what is requested or still reserved, so both sides of each limit occur.
        Op::Approve { by, id, fen: share } => {
            let requested = w.fund().proposals.get(&pid(&p(id))).map_or(1, |p| p.requested.fen());
            (
                *by,
                EventBody::ProposalApproved(ProposalApproved {
                    proposal: pid(&p(id)),
                    amount_fen: fen(&(requested * share.rem_euclid(1200) / 1000)),
                }),
            )
        }
        Op::Pay { by, id, fen: share } => {
            let remainder = w.fund().proposals.get(&pid(&p(id))).map_or(1, |p| p.remainder().unwrap().fen());
            (*by, payout(&p(id), fen(&(remainder * share.rem_euclid(1200) / 1000))))
        }
        Op::Close { by, id } => (*by, close(&p(id))),
        Op::Revoke { role } => {
            let name = ACTORS[*role];
            let key = fundtrail_domain::KeyId::of_public_key(&World::public_key(name));
            let roles = w.state.roles_of(&FundId::new(FUND).unwrap(), &key)?;
            let role = *roles.iter().next()?;
            (0, EventBody::RoleRevoked(RoleRevoked { key, role, reason: "调整".into() }))
        }
        Op::Replay { .. } => {
            let _ = accepted;
            return None;
        }
    })
}

/// Mostly an actor who may author the body, sometimes anyone at all.
fn author(by: usize, body: &EventBody) -> &'static str {
    if by < ACTORS.len() {
        return ACTORS[by];
    }
    let right: &[&'static str] = match body {
        EventBody::DonationReceived(_) => &["intake"],
        EventBody::DonationReversed(_) => &["intake", "treasurer"],
        EventBody::ProposalSubmitted(_) | EventBody::ApplicationSubmitted(_) | EventBody::ProposalClosed(_) => {
            &["proposer"]
        }
        EventBody::VoteCast(_) | EventBody::ProposalEndorsed(_) | EventBody::ProposalRejected(_) => {
            &["c1", "c2", "c3", "c4", "c5"]
        }
        EventBody::ProposalApproved(_) => &["approver"],
        EventBody::PayoutMade(_) => &["treasurer"],
        _ => &["admin"],
    };
    right[by % right.len()]
}

/// Invariant 4, checked independently of `check`: the author held an allowed role.
fn author_may(w: &World, event: &Event) -> bool {
    let allowed = event.event_type().roles();
    allowed.iter().any(|role| {
        let scope = if role.is_host_wide() { FundId::host() } else { event.fund.clone() };
        w.state.has_role(&scope, &event.author, *role)
    })
}

fn check_invariants(w: &World) {
    w.state.assert_invariants();
    let f = w.fund();
    for (id, p) in &f.proposals {
        // Invariant 3: anything past endorsement had a strict majority when endorsed;
        // approved ones had it from the committee seated at approval (never re-seated here).
        if matches!(p.status, ProposalStatus::Endorsed | ProposalStatus::Applied | ProposalStatus::Approved) {
            assert!(tally(f, p).is_endorsed(), "{id} past endorsement without a majority");
        }
        assert!(p.paid <= p.approved, "{id}: paid beyond approved");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_never_break_invariants_and_replay_is_exact(ops in prop::collection::vec(op(), 1..200)) {
        let mut w = World::with_fund();
        let mut accepted: Vec<Event> = Vec::new();
        for op in &ops {
            if let Op::Replay { index } = op {
                // Invariant 5: resubmitting an accepted event changes nothing.
                if let Some(event) = accepted.get(index % accepted.len().max(1)).cloned() {
                    let before = w.state.clone();
                    prop_assert_eq!(decide(&w.state, &event), Ok(vec![]));
                    prop_assert_eq!(fundtrail_domain::evolve(&mut w.state, &event), Ok(fundtrail_domain::Applied::Duplicate));
                    prop_assert_eq!(&before, &w.state);
                }
                continue;
            }
            let Some((by, body)) = body_of(&w, op, &accepted) else { continue };
            let event = w.event(author(by, &body), FUND, body);
            let before = w.state.clone();
            match decide(&w.state, &event) {
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    prop_assert!(author_may(&w, &event), "accepted {} by a key without the role", event.type_name());
                    fundtrail_domain::evolve(&mut w.state, &event).expect("decided events apply");
                    w.log.push(event.clone());
                    accepted.push(event);
                }
                Err(_) => prop_assert_eq!(&before, &w.state),
            }
            check_invariants(&w);
        }
        // Invariant 7 (domain part): a replay gives the same state, byte for byte.
        let replayed = replay(&w.log).map_err(|(i, r)| TestCaseError::fail(format!("replay refused event {i}: {r}")))?;
        prop_assert_eq!(serde_json::to_vec(&replayed).unwrap(), serde_json::to_vec(&w.state).unwrap());
        prop_assert_eq!(w.state.events_applied as usize, w.log.len());
    }
}
