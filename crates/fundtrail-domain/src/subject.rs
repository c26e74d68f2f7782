//! The subject contract: every event is published on
//! `fundtrail.v1.<fund>.<aggregate>.<id>` (`docs/subscribers.md`).
//!
//! This module is the only place that builds or reads that format: the
//! catalogue ([`crate::event`]) says which aggregate each event belongs to,
//! [`build`] turns it into a subject, [`parse`] reads one back, and
//! [`fund_filter`] / [`ALL_EVENTS`] are the filters a writer expects the last
//! sequence of. The store matches subjects generically and knows nothing of
//! this layout.
//!
//! Fund ids and the ids of aggregates are validated never to contain `.`,
//! `*`, `>` or white space (see [`crate::ids`]), so each is one subject token.

use std::fmt;

use crate::ids::{FundId, InvalidId};

/// The first two tokens of every event subject: the product and the version
/// of the subject contract.
pub const PREFIX: &str = "fundtrail.v1";
/// The filter of every event of the stream.
pub const ALL_EVENTS: &str = "fundtrail.v1.>";
/// Tokens of an event subject: `fundtrail`, `v1`, fund, aggregate, id.
pub const TOKENS_COUNT: usize = 5;

/// What an event is about: the kind of thing (the subject's fourth token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AggregateKind {
    /// The host itself (only genesis).
    Host,
    Key,
    Fund,
    Committee,
    Pledge,
    /// A cash or goods donation, its refunds and receipts.
    Donation,
    Proposal,
    /// Goods handed out for no proposal.
    Goods,
    Disclosure,
    Audit,
    Correction,
    /// The host's annual report of a year.
    Report,
}

impl AggregateKind {
    pub const ALL: [AggregateKind; 12] = [
        AggregateKind::Host,
        AggregateKind::Key,
        AggregateKind::Fund,
        AggregateKind::Committee,
        AggregateKind::Pledge,
        AggregateKind::Donation,
        AggregateKind::Proposal,
        AggregateKind::Goods,
        AggregateKind::Disclosure,
        AggregateKind::Audit,
        AggregateKind::Correction,
        AggregateKind::Report,
    ];

    /// The subject token, e.g. `donation`.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Host => "host",
            AggregateKind::Key => "key",
            AggregateKind::Fund => "fund",
            AggregateKind::Committee => "committee",
            AggregateKind::Pledge => "pledge",
            AggregateKind::Donation => "donation",
            AggregateKind::Proposal => "proposal",
            AggregateKind::Goods => "goods",
            AggregateKind::Disclosure => "disclosure",
            AggregateKind::Audit => "audit",
            AggregateKind::Correction => "correction",
            AggregateKind::Report => "report",
        }
    }

    /// The kind a subject token names, if any.
    pub fn from_token(token: &str) -> Option<AggregateKind> {
        AggregateKind::ALL.into_iter().find(|k| k.as_str() == token)
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The aggregate an event belongs to: its kind and id (the subject's last
/// two tokens), as the catalogue declares it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Aggregate {
    pub kind: AggregateKind,
    pub id: String,
}

/// The subject of an event of `fund` about `aggregate`:
/// `fundtrail.v1.<fund>.<aggregate kind>.<aggregate id>`.
pub fn build(fund: &FundId, aggregate: &Aggregate) -> String {
    debug_assert!(is_token(&aggregate.id), "aggregate id {:?} is not one subject token", aggregate.id);
    format!("{PREFIX}.{fund}.{}.{}", aggregate.kind, aggregate.id)
}

/// The filter of every event of one fund (or of the host scope):
/// `fundtrail.v1.<fund>.>`.
pub fn fund_filter(fund: &FundId) -> String {
    format!("{PREFIX}.{fund}.>")
}

/// An event subject read back into its parts.
///
/// The aggregate stays text: a subject written by a later version of the
/// catalogue (or by a writer that bypassed FundTrail) still names its fund,
/// which is what a writer keeps track of; [`SubjectParts::kind`] says whether
/// this version knows the aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectParts<'a> {
    pub fund: FundId,
    pub aggregate: &'a str,
    pub id: &'a str,
}

impl SubjectParts<'_> {
    /// The aggregate kind, if this version of the catalogue knows it.
    pub fn kind(&self) -> Option<AggregateKind> {
        AggregateKind::from_token(self.aggregate)
    }
}

/// A subject is not an event subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("subject {subject:?} does not start with {PREFIX}.")]
    Prefix { subject: String },
    #[error("subject {subject:?} has {count} tokens, an event subject has {TOKENS_COUNT}")]
    Tokens { subject: String, count: usize },
    #[error("subject {subject:?} has an empty or wildcard token")]
    Token { subject: String },
    #[error("subject {subject:?}: {source}")]
    Fund { subject: String, source: InvalidId },
}

/// Reads an event subject `fundtrail.v1.<fund>.<aggregate>.<id>`.
pub fn parse(subject: &str) -> Result<SubjectParts<'_>, SubjectError> {
    let rest = subject
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(|| SubjectError::Prefix { subject: subject.to_owned() })?;
    let mut tokens = rest.split('.');
    let (Some(fund), Some(aggregate), Some(id), None) = (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(SubjectError::Tokens { subject: subject.to_owned(), count: rest.split('.').count() + 2 });
    };
    if ![fund, aggregate, id].into_iter().all(is_token) {
        return Err(SubjectError::Token { subject: subject.to_owned() });
    }
    let fund = FundId::new(fund).map_err(|source| SubjectError::Fund { subject: subject.to_owned(), source })?;
    Ok(SubjectParts { fund, aggregate, id })
}

/// One literal subject token: not empty, no separator, wildcard or white space.
fn is_token(token: &str) -> bool {
    !token.is_empty() && !token.chars().any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fund(id: &str) -> FundId {
        FundId::new(id).unwrap()
    }

    #[test]
    fn build_and_parse_are_inverse() {
        let aggregate = Aggregate { kind: AggregateKind::Proposal, id: "P-7".into() };
        let subject = build(&fund("xihu-01"), &aggregate);
        assert_eq!(subject, "fundtrail.v1.xihu-01.proposal.P-7");
        let parts = parse(&subject).unwrap();
        assert_eq!(parts, SubjectParts { fund: fund("xihu-01"), aggregate: "proposal", id: "P-7" });
        assert_eq!(parts.kind(), Some(AggregateKind::Proposal));
    }

    #[test]
    fn every_kind_is_its_own_token() {
        for kind in AggregateKind::ALL {
            assert_eq!(AggregateKind::from_token(kind.as_str()), Some(kind));
        }
        assert_eq!(AggregateKind::from_token("weather"), None);
    }

    #[test]
    fn filters() {
        assert_eq!(fund_filter(&fund("xihu-01")), "fundtrail.v1.xihu-01.>");
        assert_eq!(fund_filter(&FundId::host()), "fundtrail.v1.host.>");
        assert_eq!(ALL_EVENTS, format!("{PREFIX}.>"));
    }

    #[test]
    fn an_unknown_aggregate_still_names_its_fund() {
        let parts = parse("fundtrail.v1.f1.weather.today").unwrap();
        assert_eq!((parts.kind(), parts.fund), (None, fund("f1")));
    }

    #[test]
    fn what_is_not_an_event_subject() {
        assert!(matches!(parse("fundtrail.v1.checkpoints"), Err(SubjectError::Tokens { count: 3, .. })));
        assert!(matches!(parse("fundtrail.v1.f.p.1.x"), Err(SubjectError::Tokens { count: 6, .. })));
        assert!(matches!(parse("fundtrail.v2.f.p.1"), Err(SubjectError::Prefix { .. })));
        assert!(matches!(parse("fundtrail.v1x.f.p.1"), Err(SubjectError::Prefix { .. })));
        assert!(matches!(parse("fundtrail.v1.f..1"), Err(SubjectError::Token { .. })));
        assert!(matches!(parse("fundtrail.v1.f.*.1"), Err(SubjectError::Token { .. })));
        assert!(matches!(parse("fundtrail.v1.F_1.p.1"), Err(SubjectError::Fund { .. })));
    }
}
