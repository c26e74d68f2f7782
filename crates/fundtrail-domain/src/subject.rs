//! The subject contract: every event is published on
//! `fundtrail.<version>.<fund>.<aggregate kind>.<partition>` (`docs/subscribers.md`).
//!
//! Two versions of the contract exist; a writer publishes on [`CURRENT`], every
//! reader accepts both, so a stream written by an older release replays
//! identically:
//!
//! - **v1** (until issue 12): the partition is the aggregate's id, so each
//!   donation had a subject of its own (`fundtrail.v1.<fund>.donation.<event id>`),
//!   which cost nats-server a subject per donation (237 MB resident at 200,000
//!   donations, `docs/performance.md`).
//! - **v2**: the same, except that every event of a donation (received, goods
//!   received, reversed, receipt issued or voided) goes on
//!   `fundtrail.v2.<fund>.donation.<d>`, where `<d>` is the last hex digit of the
//!   donation's id: at most [`DONATION_PARTITIONS`] subjects per fund, and all
//!   events of one donation still on one subject, in order. (Not per channel:
//!   refunds and receipts do not carry the channel, and a subject must follow
//!   from the event alone.)
//!
//! This module is the only place that builds or reads that format: the
//! catalogue ([`crate::event`]) says which aggregate each event belongs to,
//! [`build`] turns it into a subject of a version, [`parse`] reads one back,
//! and [`fund_filter`] / [`ALL_EVENTS`] are the filters a writer expects the
//! last sequence of (both cover every version). The store matches subjects
//! generically and knows nothing of this layout.
//!
//! Fund ids and the ids of aggregates are validated never to contain `.`,
//! `*`, `>` or white space (see [`crate::ids`]), so each is one subject token.

use std::fmt;

use crate::ids::{FundId, InvalidId};

/// The first token of every event subject.
pub const PRODUCT: &str = "fundtrail";
/// The filter of every event of the stream, of every version (five tokens; the
/// checkpoint subject `fundtrail.v1.checkpoints` has three).
pub const ALL_EVENTS: &str = "fundtrail.*.*.*.*";
/// Tokens of an event subject: `fundtrail`, version, fund, aggregate, partition.
pub const TOKENS_COUNT: usize = 5;
/// Subjects per fund that v2 spreads donations over (one per hex digit).
pub const DONATION_PARTITIONS: usize = 16;

/// A version of the subject contract: the subject's second token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubjectVersion {
    /// One subject per aggregate: `fundtrail.v1.<fund>.<aggregate>.<id>`.
    V1,
    /// Donations on [`DONATION_PARTITIONS`] subjects per fund.
    V2,
}

/// The version new events are published on.
pub const CURRENT: SubjectVersion = SubjectVersion::V2;

impl SubjectVersion {
    /// Every version a reader accepts, oldest first.
    pub const ALL: [SubjectVersion; 2] = [SubjectVersion::V1, SubjectVersion::V2];

    /// The subject token, e.g. `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectVersion::V1 => "v1",
            SubjectVersion::V2 => "v2",
        }
    }

    /// The version a subject token names, if any.
    pub fn from_token(token: &str) -> Option<SubjectVersion> {
        SubjectVersion::ALL.into_iter().find(|v| v.as_str() == token)
    }

    /// The version a subject names (its second token), if it is an event
    /// subject of a known version.
    pub fn of_subject(subject: &str) -> Option<SubjectVersion> {
        let mut tokens = subject.split('.');
        match (tokens.next(), tokens.next()) {
            (Some(PRODUCT), Some(version)) => SubjectVersion::from_token(version),
            _ => None,
        }
    }

    /// The stream subjects of this version: `fundtrail.<version>.*.*.*`.
    pub fn stream_subjects(self) -> String {
        format!("{PRODUCT}.{self}.*.*.*")
    }
}

impl fmt::Display for SubjectVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The aggregate an event belongs to: its kind and id, as the catalogue
/// declares it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Aggregate {
    pub kind: AggregateKind,
    pub id: String,
}

impl Aggregate {
    /// The subject's last token in `version`: the aggregate's id, except for a
    /// donation in v2, where it is the last hex digit of the donation's id
    /// (an event id, a lowercase UUIDv7 whose last digits are random).
    pub fn partition(&self, version: SubjectVersion) -> &str {
        match (version, self.kind) {
            (SubjectVersion::V2, AggregateKind::Donation) => {
                let split = self.id.len().checked_sub(1).expect("an aggregate id is not empty");
                &self.id[split..]
            }
            _ => &self.id,
        }
    }
}

/// The subject of an event of `fund` about `aggregate` in `version`:
/// `fundtrail.<version>.<fund>.<aggregate kind>.<partition>`.
pub fn build(version: SubjectVersion, fund: &FundId, aggregate: &Aggregate) -> String {
    let partition = aggregate.partition(version);
    debug_assert!(is_token(partition), "partition {partition:?} is not one subject token");
    format!("{PRODUCT}.{version}.{fund}.{}.{partition}", aggregate.kind)
}

/// The filter of every event of one fund (or of the host scope), of every
/// version: `fundtrail.*.<fund>.>`.
pub fn fund_filter(fund: &FundId) -> String {
    format!("{PRODUCT}.*.{fund}.>")
}

/// An event subject read back into its parts.
///
/// The aggregate stays text: a subject written by a later version of the
/// catalogue (or by a writer that bypassed FundTrail) still names its fund,
/// which is what a writer keeps track of; [`SubjectParts::kind`] says whether
/// this version knows the aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectParts<'a> {
    pub version: SubjectVersion,
    pub fund: FundId,
    pub aggregate: &'a str,
    /// The aggregate's id (v1), or its partition ([`Aggregate::partition`]).
    pub partition: &'a str,
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
    #[error("subject {subject:?} does not start with {PRODUCT}.v1. or {PRODUCT}.v2.")]
    Prefix { subject: String },
    #[error("subject {subject:?} has {count} tokens, an event subject has {TOKENS_COUNT}")]
    Tokens { subject: String, count: usize },
    #[error("subject {subject:?} has an empty or wildcard token")]
    Token { subject: String },
    #[error("subject {subject:?}: {source}")]
    Fund { subject: String, source: InvalidId },
}

/// Reads an event subject `fundtrail.<version>.<fund>.<aggregate>.<partition>`
/// of any version.
pub fn parse(subject: &str) -> Result<SubjectParts<'_>, SubjectError> {
    let prefix_error = || SubjectError::Prefix { subject: subject.to_owned() };
    let rest = subject.strip_prefix(PRODUCT).and_then(|r| r.strip_prefix('.')).ok_or_else(prefix_error)?;
    let (version, rest) = rest.split_once('.').unwrap_or((rest, ""));
    let version = SubjectVersion::from_token(version).ok_or_else(prefix_error)?;
    let mut tokens = rest.split('.');
    let (Some(fund), Some(aggregate), Some(partition), None) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(SubjectError::Tokens { subject: subject.to_owned(), count: rest.split('.').count() + 2 });
    };
    if ![fund, aggregate, partition].into_iter().all(is_token) {
        return Err(SubjectError::Token { subject: subject.to_owned() });
    }
    let fund = FundId::new(fund).map_err(|source| SubjectError::Fund { subject: subject.to_owned(), source })?;
    Ok(SubjectParts { version, fund, aggregate, partition })
}

/// One literal subject token: not empty, no separator, wildcard or white space.
fn is_token(token: &str) -> bool {
    !token.is_empty() && !token.chars().any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubjectVersion::{V1, V2};

    fn fund(id: &str) -> FundId {
        FundId::new(id).unwrap()
    }

    const DONATION: &str = "01937b2e-4c1a-7d3e-9f00-123456789abc";

    #[test]
    fn build_and_parse_are_inverse() {
        let aggregate = Aggregate { kind: AggregateKind::Proposal, id: "P-7".into() };
        for version in SubjectVersion::ALL {
            let subject = build(version, &fund("xihu-01"), &aggregate);
            assert_eq!(subject, format!("fundtrail.{version}.xihu-01.proposal.P-7"));
            let parts = parse(&subject).unwrap();
            assert_eq!(parts, SubjectParts { version, fund: fund("xihu-01"), aggregate: "proposal", partition: "P-7" });
            assert_eq!(parts.kind(), Some(AggregateKind::Proposal));
            assert_eq!(SubjectVersion::of_subject(&subject), Some(version));
        }
    }

    #[test]
    fn v2_puts_a_fund_s_donations_on_sixteen_subjects() {
        let donation = Aggregate { kind: AggregateKind::Donation, id: DONATION.into() };
        assert_eq!(build(V1, &fund("f"), &donation), format!("fundtrail.v1.f.donation.{DONATION}"));
        assert_eq!(build(V2, &fund("f"), &donation), "fundtrail.v2.f.donation.c");
        let parts = parse("fundtrail.v2.f.donation.c").unwrap();
        assert_eq!((parts.version, parts.kind(), parts.partition), (V2, Some(AggregateKind::Donation), "c"));
        // Every other kind keeps its id in v2.
        for kind in AggregateKind::ALL.into_iter().filter(|k| *k != AggregateKind::Donation) {
            let aggregate = Aggregate { kind, id: DONATION.into() };
            assert_eq!(aggregate.partition(V2), DONATION, "{kind}");
        }
        // The partitions are the hex digits: at most DONATION_PARTITIONS.
        let mut partitions = std::collections::BTreeSet::new();
        for digit in "0123456789abcdef".chars() {
            let id = format!("{}{digit}", &DONATION[..35]);
            partitions.insert(Aggregate { kind: AggregateKind::Donation, id }.partition(V2).to_owned());
        }
        assert_eq!(partitions.len(), DONATION_PARTITIONS);
    }

    #[test]
    fn every_kind_is_its_own_token() {
        for kind in AggregateKind::ALL {
            assert_eq!(AggregateKind::from_token(kind.as_str()), Some(kind));
        }
        assert_eq!(AggregateKind::from_token("weather"), None);
        for version in SubjectVersion::ALL {
            assert_eq!(SubjectVersion::from_token(version.as_str()), Some(version));
        }
        assert_eq!(SubjectVersion::from_token("v3"), None);
    }

    #[test]
    fn filters_cover_every_version() {
        assert_eq!(fund_filter(&fund("xihu-01")), "fundtrail.*.xihu-01.>");
        assert_eq!(fund_filter(&FundId::host()), "fundtrail.*.host.>");
        assert_eq!(ALL_EVENTS, format!("{PRODUCT}.*.*.*.*"));
        assert_eq!(ALL_EVENTS.split('.').count(), TOKENS_COUNT);
        assert_eq!(V1.stream_subjects(), "fundtrail.v1.*.*.*");
        assert_eq!(V2.stream_subjects(), "fundtrail.v2.*.*.*");
        assert_eq!(CURRENT, V2);
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
        assert!(matches!(parse("fundtrail.v3.f.p.1"), Err(SubjectError::Prefix { .. })));
        assert!(matches!(parse("fundtrail.v1x.f.p.1"), Err(SubjectError::Prefix { .. })));
        assert!(matches!(parse("fundtrail.v2"), Err(SubjectError::Tokens { .. })));
        assert!(matches!(parse("fundtrail"), Err(SubjectError::Prefix { .. })));
        assert!(matches!(parse("other.v1.f.p.1"), Err(SubjectError::Prefix { .. })));
        assert!(matches!(parse("fundtrail.v1.f..1"), Err(SubjectError::Token { .. })));
        assert!(matches!(parse("fundtrail.v2.f.*.1"), Err(SubjectError::Token { .. })));
        assert!(matches!(parse("fundtrail.v1.F_1.p.1"), Err(SubjectError::Fund { .. })));
        assert_eq!(SubjectVersion::of_subject("fundtrail.v9.f.p.1"), None);
        assert_eq!(SubjectVersion::of_subject("other.v1.f.p.1"), None);
    }
}
