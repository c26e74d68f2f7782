//! The catalogue: every event type has its facts (roles, scope, aggregate and
//! so its subject), declared once, and they agree with each other.

use std::collections::BTreeSet;

use fundtrail_domain::event::*;
use fundtrail_domain::ids::HOST_SCOPE;
use fundtrail_domain::subject::{self, AggregateKind, SubjectVersion};
use fundtrail_domain::testing::*;
use fundtrail_domain::{EventType, FundId, KeyId, Refusal, RefusalClass};

#[test]
fn every_type_has_a_name_that_reads_back() {
    assert_eq!(EventType::ALL.len(), EVENT_TYPES.len());
    for (t, name) in EventType::ALL.iter().zip(EVENT_TYPES) {
        assert_eq!(t.name(), *name);
        assert_eq!(EventType::from_name(name), Some(*t));
    }
    let names: BTreeSet<&str> = EVENT_TYPES.iter().copied().collect();
    assert_eq!(names.len(), EVENT_TYPES.len(), "type names are unique");
    assert_eq!(EventType::from_name("donation.recieved"), None);
}

#[test]
fn every_type_but_genesis_has_authoring_roles() {
    for t in EventType::ALL {
        let roles = t.roles();
        if *t == EventType::HostEstablished {
            assert!(roles.is_empty(), "genesis has its own rule, not a role");
        } else {
            assert!(!roles.is_empty(), "{} has no authoring role", t.name());
        }
        let unique: BTreeSet<Role> = roles.iter().copied().collect();
        assert_eq!(unique.len(), roles.len(), "{} lists a role twice", t.name());
    }
}

#[test]
fn host_scope_types_are_authored_by_host_wide_roles() {
    for t in EventType::ALL.iter().filter(|t| t.scope() == Scope::Host) {
        assert!(t.roles().iter().all(|r| r.is_host_wide()), "{} is host-scoped", t.name());
    }
}

#[test]
fn every_event_has_a_subject_that_parses_back_to_its_fund_and_aggregate() {
    let w = World::every_event_type();
    let mut seen = BTreeSet::new();
    for event in &w.log {
        seen.insert(event.event_type());
        let aggregate = event.aggregate();
        for version in SubjectVersion::ALL {
            let subject = event.subject_in(version);
            let parts = subject::parse(&subject).unwrap_or_else(|e| panic!("{}: {e}", event.type_name()));
            assert_eq!(parts.version, version, "{subject}");
            assert_eq!(parts.fund, event.fund, "{subject}");
            assert_eq!(parts.kind(), Some(aggregate.kind), "{subject}");
            assert_eq!(parts.partition, aggregate.partition(version), "{subject}");
            assert_eq!(event.subject_like(&subject), subject, "a reader accepts every version");
        }
        assert_eq!(event.subject(), event.subject_in(subject::CURRENT));
        let in_scope = match event.event_type().scope() {
            Scope::Host => event.fund.is_host(),
            Scope::Fund => !event.fund.is_host(),
            Scope::Either => true,
        };
        assert!(in_scope, "{} in {}", event.type_name(), event.fund);
    }
    let missing: Vec<&str> = EventType::ALL.iter().filter(|t| !seen.contains(t)).map(|t| t.name()).collect();
    assert!(missing.is_empty(), "the world has no event of {missing:?}");
}

#[test]
fn subjects_of_the_catalogue() {
    let mut w = World::new();
    w.genesis("admin");
    assert_eq!(w.log[0].subject(), "fundtrail.v2.host.host.genesis");
    assert_eq!(w.log[0].subject_in(SubjectVersion::V1), "fundtrail.v1.host.host.genesis");

    let mut w = World::with_fund();
    let d = w.donate(10);
    assert_eq!(d.subject_in(SubjectVersion::V1), format!("fundtrail.v1.{FUND}.donation.{}", d.id));
    let text = d.id.to_text();
    let last_digit = &text[35..];
    assert_eq!(d.subject(), format!("fundtrail.v2.{FUND}.donation.{last_digit}"));
    let receipt = w.event(
        "treasurer",
        FUND,
        EventBody::ReceiptIssued(ReceiptIssued { donation: d.id.clone(), receipt_no: "浙财0001".into() }),
    );
    for version in SubjectVersion::ALL {
        assert_eq!(receipt.subject_in(version), d.subject_in(version), "a receipt belongs to its donation");
    }
    // A v1 subject read back is checked as v1; an unknown version as the current one.
    assert_eq!(d.subject_like(&d.subject_in(SubjectVersion::V1)), d.subject_in(SubjectVersion::V1));
    assert_eq!(d.subject_like("fundtrail.v9.x.y.z"), d.subject());

    let goods = EventBody::GoodsDistributed(GoodsDistributed {
        items: vec![],
        purpose: "慰问".into(),
        proposal: None,
        evidence: vec![],
    });
    let out = w.event("proposer", FUND, goods);
    assert_eq!(out.aggregate().kind, AggregateKind::Goods);
    assert_eq!(out.subject(), format!("fundtrail.v2.{FUND}.goods.{}", out.id));
    assert_eq!(out.subject_in(SubjectVersion::V1), format!("fundtrail.v1.{FUND}.goods.{}", out.id));

    let report = w.event(
        "admin",
        HOST_SCOPE,
        EventBody::AnnualReportPublished(AnnualReportPublished { year: 2025, report: hash("r") }),
    );
    assert_eq!(report.subject(), "fundtrail.v2.host.report.2025");
    assert_eq!(subject::fund_filter(&FundId::new(FUND).unwrap()), format!("fundtrail.*.{FUND}.>"));
}

// --- refusal classes ------------------------------------------------------------

#[test]
fn refusals_are_classified_as_http_has_always_answered_them() {
    let key = || KeyId::of_public_key(&World::public_key("k"));
    let fund = FundId::new(FUND).unwrap();
    let cases = [
        (Refusal::UnknownKey { key: key() }, RefusalClass::Unauthenticated),
        (
            Refusal::NotAuthorised { author: key(), type_name: "vote.cast", fund: fund.clone(), allowed: vec![] },
            RefusalClass::Forbidden,
        ),
        (Refusal::GenesisAuthor { host_key: key(), author: key() }, RefusalClass::Forbidden),
        (Refusal::HostKeyPinned { expected: key(), actual: key() }, RefusalClass::Forbidden),
        (Refusal::HostAlreadyEstablished, RefusalClass::Exists),
        (Refusal::KeyAlreadyEnrolled { key: key() }, RefusalClass::Exists),
        (Refusal::FundExists { fund: fund.clone() }, RefusalClass::Exists),
        (Refusal::ProposalExists { proposal: pid("P-1"), fund: fund.clone() }, RefusalClass::Exists),
        (Refusal::AnnualReportExists { year: 2025 }, RefusalClass::Exists),
        (Refusal::NoHost, RefusalClass::Rule),
        (Refusal::UnknownFund { fund }, RefusalClass::Rule),
        (Refusal::AlreadyVoted { key: key(), proposal: pid("P-1") }, RefusalClass::Rule),
    ];
    for (refusal, class) in cases {
        assert_eq!(refusal.class(), class, "{refusal}");
        let authorisation = matches!(class, RefusalClass::Unauthenticated | RefusalClass::Forbidden);
        assert_eq!(refusal.is_authorisation(), authorisation, "{refusal}");
    }
}

#[test]
fn a_type_at_version_2_names_a_field_of_its_body_that_version_1_reads_as_null() {
    let w = World::every_event_type();
    let mut at_version_2 = BTreeSet::new();
    for event in &w.log {
        let t = event.event_type();
        let Some(field) = t.v1_read_as_null() else {
            assert_eq!(t.version(), 1, "{}: no field named, so version 1", t.name());
            continue;
        };
        assert_eq!(t.version(), 2, "{}", t.name());
        at_version_2.insert(t);
        let body = event.body.to_json();
        assert!(body.get(field).is_some(), "{}: version 2's body has no {field:?}", t.name());
        let mut written_at_v1 = body.clone();
        written_at_v1.as_object_mut().expect("a body is an object").insert(field.to_owned(), "自由文本".into());
        let read = upcast(t.name(), 1, written_at_v1).expect("version 1 is read");
        assert_eq!(read.get(field), Some(&serde_json::Value::Null), "{}: {field} read as null", t.name());
        assert_eq!(
            upcast(t.name(), 2, body.clone()).expect("current"),
            body,
            "{}: version 2 is read as written",
            t.name()
        );
    }
    assert_eq!(at_version_2.len(), 5, "five types are at version 2 (docs/design.md)");
}
