//! What a disclosure cites (docs/design.md, "What a disclosure cites"): given these
//! events, when a committee member publishes a disclosure, then it is accepted or
//! refused naming the figure, what it states and what the accounts give.

use chrono::{Duration, TimeZone, Utc};
use fundtrail_domain::disclosure::{cited_year, expected_citation};
use fundtrail_domain::event::*;
use fundtrail_domain::testing::*;
use fundtrail_domain::{evolve, Event, Fen, FundId, Refusal, RefusalClass};

fn refused(r: Result<Vec<Event>, Refusal>) -> Refusal {
    r.expect_err("the command should be refused")
}

fn fund() -> FundId {
    FundId::new(FUND).unwrap()
}

/// A fund with 助老 declared, ¥1,000 unrestricted and ¥600 restricted to 助老 given,
/// and P-1 (助老, ¥400) approved and ¥250 of it paid.
fn world() -> World {
    let mut w = World::with_fund();
    w.given("admin", FUND, declare_purpose("助老"));
    w.donate(1000);
    w.given("intake", FUND, restricted_donation(Fen::yuan(600), Channel::SpaceForService, "助老"));
    w.given("proposer", FUND, proposal_for("P-1", 400, Some("助老")));
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        w.given(c, FUND, vote("P-1", VoteChoice::Approve));
    }
    w.given("c1", FUND, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid("P-1"), minutes: hash("m") }));
    w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-1") }));
    w.given("approver", FUND, approve("P-1", 400));
    w.given("treasurer", FUND, payout("P-1", Fen::yuan(250)));
    w
}

/// `w.disclosure(…)` with its citation changed by `edit`.
fn disclosure_with(w: &World, edit: impl FnOnce(&mut DisclosureAccounts)) -> EventBody {
    let mut body = w.disclosure(w.now - Duration::days(90), w.now, "q1");
    let EventBody::DisclosurePublished(d) = &mut body else { unreachable!() };
    edit(d.accounts.as_mut().expect("a v2 disclosure cites accounts"));
    body
}

#[test]
fn a_disclosure_citing_the_years_accounts_is_accepted() {
    let mut w = world();
    let body = w.disclosure(w.now - Duration::days(90), w.now, "q1");
    let EventBody::DisclosurePublished(d) = &body else { unreachable!() };
    let cited = d.accounts.as_ref().unwrap();
    assert_eq!(cited.year, 2026);
    assert_eq!(cited.income_unrestricted_fen, Fen::yuan(1000));
    assert_eq!(cited.income_restricted_fen, Fen::yuan(600));
    assert_eq!(cited.spending_restricted["助老"], Fen::yuan(250));
    assert_eq!(cited.net_assets_restricted["助老"], Fen::yuan(350));
    assert_eq!(cited.net_assets_unrestricted_fen, Fen::yuan(1000));
    let e = w.given("c1", FUND, body);
    assert_eq!(e.v, 2);
    assert_eq!(w.fund().disclosures.len(), 1);
}

#[test]
fn a_cited_figure_that_differs_from_the_fold_is_refused_with_stated_and_actual() {
    let mut w = world();
    let body = disclosure_with(&w, |a| {
        a.net_assets_restricted.insert("助老".into(), Fen::yuan(400));
    });
    let r = refused(w.when("c1", FUND, body));
    assert_eq!(
        r,
        Refusal::DisclosureAccountsMismatch {
            year: 2026,
            figure: "net_assets_restricted[助老]".into(),
            stated: Fen::yuan(400),
            actual: Fen::yuan(350),
        }
    );
    assert_eq!(
        r.to_string(),
        "disclosure cites net_assets_restricted[助老] = ¥400.00 of 2026 but the fund's accounts give ¥350.00"
    );
    assert_eq!(r.class(), RefusalClass::Rule);
    assert_eq!(r.code(), "disclosure");

    let body = disclosure_with(&w, |a| {
        a.income.get_mut(&Channel::SpaceForService).unwrap().restricted.insert("助老".into(), Fen::yuan(500));
    });
    let r = refused(w.when("c1", FUND, body));
    assert_eq!(r.to_string(), "disclosure cites income[space_for_service].restricted[助老] = ¥500.00 of 2026 but the fund's accounts give ¥600.00");
}

#[test]
fn a_figure_the_accounts_do_not_have_must_be_zero_and_one_left_out_reads_as_zero() {
    let mut w = world();
    let body = disclosure_with(&w, |a| {
        a.spending_restricted.insert("助学".into(), Fen::yuan(1));
    });
    let r = refused(w.when("c1", FUND, body));
    assert_eq!(
        r,
        Refusal::DisclosureAccountsMismatch {
            year: 2026,
            figure: "spending_restricted[助学]".into(),
            stated: Fen::yuan(1),
            actual: Fen::ZERO,
        }
    );
    let body = disclosure_with(&w, |a| {
        a.spending_restricted.remove("助老");
    });
    let r = refused(w.when("c1", FUND, body));
    assert!(
        matches!(&r, Refusal::DisclosureAccountsMismatch { figure, stated, .. } if figure == "spending_restricted[助老]" && *stated == Fen::ZERO),
        "{r}"
    );
    // A zero figure may be stated or left out alike.
    let body = disclosure_with(&w, |a| {
        a.goods_income.insert(Channel::Direct, CitedIncome::default());
    });
    w.given("c1", FUND, body);
}

#[test]
fn the_year_cited_is_the_year_the_period_ends_in() {
    let mut w = world();
    let body = disclosure_with(&w, |a| a.year = 2025);
    assert_eq!(refused(w.when("c1", FUND, body)), Refusal::DisclosureAccountsYear { stated: 2025, expected: 2026 });
    // A period ending at midnight on 1 January is the year before's.
    let end = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(cited_year(&end), 2025);
    let body = w.disclosure(end - Duration::days(92), end, "q4");
    let EventBody::DisclosurePublished(d) = &body else { unreachable!() };
    assert_eq!(d.accounts.as_ref().unwrap().year, 2025);
    assert_eq!(d.accounts.as_ref().unwrap().income_unrestricted_fen, Fen::ZERO);
    w.given("c1", FUND, body);
}

#[test]
fn a_v2_disclosure_must_cite_accounts() {
    let mut w = world();
    let mut body = w.disclosure(w.now - Duration::days(90), w.now, "q1");
    let EventBody::DisclosurePublished(d) = &mut body else { unreachable!() };
    d.accounts = None;
    assert_eq!(refused(w.when("c1", FUND, body)), Refusal::DisclosureAccountsMissing { v: 2 });
}

#[test]
fn a_v1_disclosure_still_reads_and_replays_citing_no_accounts() {
    let mut w = world();
    let totals = fundtrail_domain::rules::totals_of(w.fund()).unwrap();
    let event = w.event("c1", FUND, w.disclosure(w.now - Duration::days(90), w.now, "q1"));
    let mut wire = event.to_json();
    wire["v"] = 1.into();
    wire["body"].as_object_mut().unwrap().remove("accounts");
    assert_eq!(wire["body"]["totals"]["paid_fen"], totals.paid_fen.fen());
    let v1 = Event::from_json(wire).expect("a v1 disclosure is readable");
    assert_eq!(v1.v, 1);
    let EventBody::DisclosurePublished(d) = &v1.body else { panic!("a disclosure") };
    assert_eq!(d.accounts, None);
    assert_eq!(d.totals, totals);
    evolve(&mut w.state, &v1).expect("a v1 disclosure citing no accounts replays");
    assert_eq!(w.fund().disclosures.len(), 1);
    // Its totals are still checked.
    let mut event = w.event("c1", FUND, w.disclosure(w.now - Duration::days(90), w.now, "q2"));
    event.v = 1;
    let EventBody::DisclosurePublished(d) = &mut event.body else { unreachable!() };
    d.accounts = None;
    d.totals.paid_fen = Fen::yuan(1);
    assert!(matches!(evolve(&mut w.state, &event), Err(Refusal::DisclosureMismatch { field: "paid_fen", .. })));
}

#[test]
fn the_citation_is_the_accounts_json_of_the_year() {
    let w = world();
    let cited = expected_citation(&fund(), w.fund(), &w.now).unwrap();
    let report = fundtrail_domain::accounts::year_report(&fund(), w.fund(), 2026).unwrap();
    assert_eq!(cited.spending_unrestricted_fen, report.spending.get("").copied().unwrap_or(Fen::ZERO));
    assert_eq!(cited.net_assets_restricted, report.net_assets_restricted);
    assert_eq!(EventType::DisclosurePublished.version(), 2);
}
