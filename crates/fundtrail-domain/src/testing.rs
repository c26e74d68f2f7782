//! A deterministic world for tests and property tests: named actors with
//! stand-in public keys, ids from a counter, a clock that moves only when told.
//!
//! The stand-in keys are SHA-256 of the actor's name: the domain checks only
//! that a key id is the hash of its public key bytes, never that the bytes
//! are a curve point (signatures are the envelope crate's business).

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::event::*;
use crate::ids::*;
use crate::money::Fen;
use crate::refusal::Refusal;
use crate::rules::{decide, evolve};
use crate::state::State;

/// The fund every test world opens.
pub const FUND: &str = "xihu-01";

pub struct World {
    pub state: State,
    pub now: DateTime<Utc>,
    counter: u64,
    keys: BTreeMap<String, KeyId>,
    /// Every event applied, in order: replaying it rebuilds `state`.
    pub log: Vec<Event>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// An empty world: no host yet.
    pub fn new() -> World {
        World {
            state: State::default(),
            now: Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap(),
            counter: 0,
            keys: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// A host, fund [`FUND`] and a seated committee of five:
    /// `admin` (host_admin), `intake`, `proposer`, `c1`..`c5`, `approver`,
    /// `treasurer`, `auditor`, each with their role in the fund.
    pub fn with_fund() -> World {
        World::with_fund_opened_at(World::new().now)
    }

    /// [`World::with_fund`], the world's clock starting at `at`.
    pub fn with_fund_opened_at(at: DateTime<Utc>) -> World {
        let mut w = World { now: at, ..World::new() };
        w.genesis("admin");
        let roles = [
            ("intake", Role::Intake),
            ("proposer", Role::Proposer),
            ("c1", Role::CommitteeMember),
            ("c2", Role::CommitteeMember),
            ("c3", Role::CommitteeMember),
            ("c4", Role::CommitteeMember),
            ("c5", Role::CommitteeMember),
            ("approver", Role::HostApprover),
            ("treasurer", Role::HostTreasurer),
            ("auditor", Role::Auditor),
        ];
        for (name, _) in roles {
            w.enrol(name);
        }
        w.given(
            "admin",
            FUND,
            EventBody::FundOpened(FundOpened {
                name: "西湖街道社区发展基金".into(),
                community: "西湖街道".into(),
                currency: "CNY".into(),
                agreement: hash("agreement"),
            }),
        );
        for (name, role) in roles {
            let key = w.key(name);
            w.given("admin", FUND, EventBody::RoleGranted(RoleGranted { key, role }));
        }
        let members = ["c1", "c2", "c3", "c4", "c5"].map(|n| w.key(n)).to_vec();
        w.given("admin", FUND, EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("minutes") }));
        w
    }

    /// The stand-in public key of an actor.
    pub fn public_key(name: &str) -> [u8; 32] {
        Sha256::digest(name.as_bytes()).into()
    }

    pub fn key(&mut self, name: &str) -> KeyId {
        self.keys.entry(name.to_owned()).or_insert_with(|| KeyId::of_public_key(&World::public_key(name))).clone()
    }

    pub fn genesis(&mut self, name: &str) {
        let host_key = self.key(name);
        let body = EventBody::HostEstablished(HostEstablished {
            host_name: "某市慈善总会".into(),
            host_key,
            public_key: b64(&World::public_key(name)),
        });
        self.given(name, HOST_SCOPE, body);
    }

    pub fn enrol(&mut self, name: &str) {
        let key = self.key(name);
        let body = EventBody::KeyEnrolled(KeyEnrolled {
            key,
            public_key: b64(&World::public_key(name)),
            label: name.to_owned(),
        });
        self.given("admin", HOST_SCOPE, body);
    }

    /// The next event id (UUIDv7-shaped, increasing).
    pub fn next_id(&mut self) -> EventId {
        self.counter += 1;
        EventId::new(format!("0190a000-0000-7000-8000-{:012x}", self.counter)).expect("valid id")
    }

    /// An event by `author` in `fund`, one minute after the previous one.
    pub fn event(&mut self, author: &str, fund: &str, body: EventBody) -> Event {
        self.now += Duration::minutes(1);
        Event {
            id: self.next_id(),
            fund: FundId::new(fund).expect("valid fund"),
            occurred_at: self.now,
            author: self.key(author),
            v: body.event_type().version(),
            body,
        }
    }

    /// Applies an event that must be accepted; returns it.
    pub fn given(&mut self, author: &str, fund: &str, body: EventBody) -> Event {
        let event = self.event(author, fund, body);
        if let Err(refusal) = evolve(&mut self.state, &event) {
            panic!("given {} by {author} was refused: {refusal}", event.type_name());
        }
        self.log.push(event.clone());
        event
    }

    /// Decides a command without applying it.
    pub fn when(&mut self, author: &str, fund: &str, body: EventBody) -> Result<Vec<Event>, Refusal> {
        let event = self.event(author, fund, body);
        decide(&self.state, &event)
    }

    /// Decides and, if accepted, applies.
    pub fn submit(&mut self, author: &str, fund: &str, body: EventBody) -> Result<Event, Refusal> {
        let event = self.event(author, fund, body);
        let accepted = decide(&self.state, &event)?;
        assert_eq!(accepted.len(), 1);
        evolve(&mut self.state, &event).expect("an event decide accepted applies");
        self.log.push(event.clone());
        Ok(event)
    }

    pub fn fund(&self) -> &crate::state::Fund {
        &self.state.funds[&FundId::new(FUND).unwrap()]
    }

    /// A (v2) disclosure of `period_start`–`period_end` stating the totals and citing
    /// the accounts the fund's state gives now, as a committee member's client fills them in.
    pub fn disclosure(&self, period_start: DateTime<Utc>, period_end: DateTime<Utc>, report: &str) -> EventBody {
        let fund = FundId::new(FUND).unwrap();
        EventBody::DisclosurePublished(DisclosurePublished {
            period_start,
            period_end,
            totals: crate::rules::totals_of(self.fund()).expect("in range"),
            report: hash(report),
            accounts: Some(Box::new(
                crate::disclosure::expected_citation(&fund, self.fund(), &period_end).expect("in range"),
            )),
        })
    }

    pub fn donate(&mut self, yuan: i64) -> Event {
        self.given("intake", FUND, donation(Fen::yuan(yuan), Channel::Direct))
    }

    /// Takes proposal `id` for `yuan` through submission, five approvals,
    /// endorsement, application and approval.
    pub fn approved_proposal(&mut self, id: &str, yuan: i64) {
        self.given("proposer", FUND, proposal(id, yuan));
        for c in ["c1", "c2", "c3", "c4", "c5"] {
            self.given(c, FUND, vote(id, VoteChoice::Approve));
        }
        self.given("c1", FUND, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes: hash("m") }));
        self.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(id) }));
        self.given("approver", FUND, approve(id, yuan));
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn hash(text: &str) -> Sha256Hex {
    Sha256Hex::new(hex::encode(Sha256::digest(text.as_bytes()))).expect("valid hex")
}

pub fn pid(id: &str) -> ProposalId {
    ProposalId::new(id).expect("valid proposal id")
}

pub fn donation(amount: Fen, channel: Channel) -> EventBody {
    EventBody::DonationReceived(DonationReceived {
        amount_fen: amount,
        channel,
        donor: hash("donor"),
        payment_ref: "WX-0001".into(),
        pledge: None,
        restricted_purpose: None,
    })
}

pub fn proposal(id: &str, yuan: i64) -> EventBody {
    proposal_for(id, yuan, None)
}

/// A proposal that serves `purpose` (None: unrestricted money only).
pub fn proposal_for(id: &str, yuan: i64, purpose: Option<&str>) -> EventBody {
    EventBody::ProposalSubmitted(ProposalSubmitted {
        proposal: pid(id),
        title: "重阳节敬老活动".into(),
        category: ProposalCategory::Activity,
        amount_fen: Fen::yuan(yuan),
        payee: "西湖社区居委会".into(),
        description: "为社区80岁以上老人举办重阳节活动".into(),
        evidence: vec![hash("plan")],
        purpose: purpose.map(str::to_owned),
    })
}

/// The host declares `purpose` in the fund.
pub fn declare_purpose(purpose: &str) -> EventBody {
    EventBody::PurposeDeclared(PurposeDeclared { purpose: purpose.into(), description: format!("仅用于{purpose}") })
}

/// A cash gift restricted to `purpose`.
pub fn restricted_donation(amount: Fen, channel: Channel, purpose: &str) -> EventBody {
    EventBody::DonationReceived(DonationReceived {
        amount_fen: amount,
        channel,
        donor: hash("partner"),
        payment_ref: "BANK-0001".into(),
        pledge: None,
        restricted_purpose: Some(purpose.into()),
    })
}

pub fn vote(id: &str, choice: VoteChoice) -> EventBody {
    EventBody::VoteCast(VoteCast { proposal: pid(id), choice, reason: "同意".into() })
}

pub fn approve(id: &str, yuan: i64) -> EventBody {
    EventBody::ProposalApproved(ProposalApproved { proposal: pid(id), amount_fen: Fen::yuan(yuan) })
}

pub fn payout(id: &str, amount: Fen) -> EventBody {
    EventBody::PayoutMade(PayoutMade {
        proposal: pid(id),
        amount_fen: amount,
        payment_ref: "BANK-1".into(),
        evidence: vec![],
    })
}

pub fn close(id: &str) -> EventBody {
    EventBody::ProposalClosed(ProposalClosed { proposal: pid(id), report: "活动已完成".into(), evidence: vec![] })
}

impl World {
    /// A world whose log holds at least one event of every type in the
    /// catalogue: schema tests walk it to prove every type has a schema that
    /// accepts what the domain writes.
    pub fn every_event_type() -> World {
        let mut w = World::with_fund();
        let pledge_id = PledgeId::new("PL-2026-01").expect("valid");
        w.given("admin", FUND, declare_purpose("助老"));
        w.given("admin", FUND, declare_purpose("环境改善"));
        w.given(
            "intake",
            FUND,
            EventBody::PledgeRecorded(PledgeRecorded {
                pledge: pledge_id.clone(),
                channel: Channel::SpaceForService,
                donor: hash("夕阳红养老服务中心"),
                amount_fen: Fen::yuan(20_000),
                terms: "2026年度 营业利润的5%".into(),
                restricted_purpose: Some("助老".into()),
            }),
        );
        let d = w.given(
            "intake",
            FUND,
            EventBody::DonationReceived(DonationReceived {
                amount_fen: Fen::yuan(5_000),
                channel: Channel::SpaceForService,
                donor: hash("夕阳红养老服务中心"),
                payment_ref: "BANK-20260105-001".into(),
                pledge: Some(pledge_id),
                restricted_purpose: Some("助老".into()),
            }),
        );
        w.given(
            "intake",
            FUND,
            EventBody::GoodsReceived(GoodsReceived {
                channel: Channel::NeighbourhoodMarket,
                donor: hash("merchant"),
                items: vec![GoodsLine {
                    name: "大米".into(),
                    quantity: 20,
                    unit: "袋".into(),
                    unit_value_fen: Fen::yuan(60),
                }],
                pledge: None,
                restricted_purpose: None,
            }),
        );
        w.given(
            "treasurer",
            FUND,
            EventBody::ReceiptIssued(ReceiptIssued { donation: d.id.clone(), receipt_no: "浙财0001".into() }),
        );
        w.given(
            "treasurer",
            FUND,
            EventBody::ReceiptVoided(ReceiptVoided {
                donation: d.id.clone(),
                receipt_no: "浙财0001".into(),
                reason: "抬头有误".into(),
            }),
        );
        w.given(
            "intake",
            FUND,
            EventBody::DonationReversed(DonationReversed {
                donation: d.id.clone(),
                amount_fen: Fen::yuan(100),
                reason: "重复扣款".into(),
            }),
        );
        w.given("proposer", FUND, proposal_for("P-1", 1_000, Some("助老")));
        w.given(
            "proposer",
            FUND,
            EventBody::OpinionRecorded(OpinionRecorded {
                proposal: pid("P-1"),
                summary: "居民意见征询".into(),
                support: 41,
                oppose: 3,
                evidence: vec![hash("survey")],
            }),
        );
        for c in ["c1", "c2", "c3", "c4"] {
            w.given(c, FUND, vote("P-1", VoteChoice::Approve));
        }
        w.given("c5", FUND, vote("P-1", VoteChoice::Recuse));
        w.given("c1", FUND, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid("P-1"), minutes: hash("m") }));
        w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-1") }));
        w.given("approver", FUND, approve("P-1", 900));
        w.given("treasurer", FUND, payout("P-1", Fen::yuan(500)));
        w.given(
            "proposer",
            FUND,
            EventBody::GoodsDistributed(GoodsDistributed {
                items: vec![GoodsOut { name: "大米".into(), quantity: 5, unit: "袋".into() }],
                purpose: "重阳节慰问独居老人".into(),
                proposal: Some(pid("P-1")),
                evidence: vec![hash("photo")],
            }),
        );
        w.given("proposer", FUND, close("P-1"));
        w.given("proposer", FUND, proposal("P-2", 100));
        for c in ["c1", "c2", "c3"] {
            w.given(c, FUND, vote("P-2", VoteChoice::Reject));
        }
        w.given(
            "c2",
            FUND,
            EventBody::ProposalRejected(ProposalRejected { proposal: pid("P-2"), reason: "多数委员反对".into() }),
        );
        w.given("proposer", FUND, proposal("P-3", 100));
        for c in ["c1", "c2", "c3"] {
            w.given(c, FUND, vote("P-3", VoteChoice::Approve));
        }
        w.given(
            "c1",
            FUND,
            EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid("P-3"), minutes: hash("m3") }),
        );
        w.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-3") }));
        w.given(
            "approver",
            FUND,
            EventBody::ProposalDeclined(ProposalDeclined { proposal: pid("P-3"), reason: "超出资助范围".into() }),
        );
        let end = w.now;
        let disclosure = w.disclosure(end - Duration::days(90), end, "q1");
        w.given("c1", FUND, disclosure);
        w.given(
            "auditor",
            FUND,
            EventBody::AuditOpinionRecorded(AuditOpinionRecorded {
                year: 2025,
                opinion: AuditOpinionKind::Unqualified,
                summary: "无保留意见".into(),
                report: hash("audit"),
            }),
        );
        w.given(
            "admin",
            FUND,
            EventBody::CorrectionRecorded(CorrectionRecorded {
                corrects: d.id,
                note: "付款参考号更正".into(),
                evidence: vec![],
            }),
        );
        w.given(
            "admin",
            HOST_SCOPE,
            EventBody::AnnualReportPublished(AnnualReportPublished { year: 2025, report: hash("annual") }),
        );
        w.given(
            "admin",
            FUND,
            EventBody::PurposeRetired(PurposeRetired {
                purpose: "环境改善".into(), reason: "项目已结束".into()
            }),
        );
        w.enrol("c1-new");
        let (old_key, new_key) = (w.key("c1"), w.key("c1-new"));
        w.given("admin", FUND, EventBody::KeyRotated(KeyRotated { old_key, new_key, reason: "更换设备".into() }));
        let intake = w.key("intake");
        w.given(
            "admin",
            FUND,
            EventBody::RoleRevoked(RoleRevoked {
                key: intake, role: Role::Intake, reason: "更换收款服务".into()
            }),
        );
        w
    }
}
