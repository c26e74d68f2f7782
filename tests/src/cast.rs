//! A cast of actors with real Ed25519 keys (generated in the test, never
//! committed) who sign real envelopes: a host, an intake service, a proposer,
//! a committee of five, an approver, a treasurer and an auditor.

use chrono::{DateTime, Utc};
use fundtrail_domain::event::*;
use fundtrail_domain::{EventId, Fen, FundId, KeyId, ProposalId, Sha256Hex};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::ActorKey;
use sha2::{Digest, Sha256};

pub struct Cast {
    pub host: ActorKey,
    pub intake: ActorKey,
    pub proposer: ActorKey,
    pub committee: Vec<ActorKey>,
    pub approver: ActorKey,
    pub treasurer: ActorKey,
    pub auditor: ActorKey,
    pub fund: FundId,
}

pub fn hash(text: &str) -> Sha256Hex {
    Sha256Hex::new(hex::encode(Sha256::digest(text.as_bytes()))).expect("hex")
}

/// The envelope with one character of its signature changed: well formed, by the
/// same key, and failing Ed25519 verification (what a forger sends).
pub fn forged(envelope: &[u8]) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(envelope).expect("an envelope is JSON");
    let sig = value["signatures"][0]["sig"].as_str().expect("a signature").to_owned();
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    value["signatures"][0]["sig"] = format!("{first}{}", &sig[1..]).into();
    serde_json::to_vec(&value).expect("serialises")
}

pub fn pid(id: &str) -> ProposalId {
    ProposalId::new(id).expect("valid proposal id")
}

fn key() -> ActorKey {
    ActorKey::generate().expect("OS RNG")
}

impl Cast {
    pub fn new(fund: &str) -> Cast {
        Cast {
            host: key(),
            intake: key(),
            proposer: key(),
            committee: (0..5).map(|_| key()).collect(),
            approver: key(),
            treasurer: key(),
            auditor: key(),
            fund: FundId::new(fund).expect("valid fund id"),
        }
    }

    pub fn sign(&self, key: &ActorKey, fund: &FundId, at: DateTime<Utc>, body: EventBody) -> (EventId, Vec<u8>) {
        let (event, envelope) = sign_new(key, fund, at, body);
        (event.id, envelope)
    }

    pub fn in_fund(&self, key: &ActorKey, at: DateTime<Utc>, body: EventBody) -> Vec<u8> {
        self.sign(key, &self.fund, at, body).1
    }

    /// Genesis, enrolment of every key, the fund, its roles and its committee.
    pub fn setup(&self, at: DateTime<Utc>) -> Vec<Vec<u8>> {
        let host_scope = FundId::host();
        let mut out = Vec::new();
        let genesis = EventBody::HostEstablished(HostEstablished {
            host_name: "某市慈善总会".into(),
            host_key: self.host.key_id(),
            public_key: self.host.public_key_b64(),
        });
        out.push(self.sign(&self.host, &host_scope, at, genesis).1);
        let mut roles: Vec<(&ActorKey, Role, String)> = vec![
            (&self.intake, Role::Intake, "收款服务".into()),
            (&self.proposer, Role::Proposer, "西湖社区党委".into()),
            (&self.approver, Role::HostApprover, "慈善总会审批".into()),
            (&self.treasurer, Role::HostTreasurer, "慈善总会财务".into()),
            (&self.auditor, Role::Auditor, "审计师".into()),
        ];
        for (i, member) in self.committee.iter().enumerate() {
            roles.push((member, Role::CommitteeMember, format!("委员{}", i + 1)));
        }
        for (k, _, label) in &roles {
            let body = EventBody::KeyEnrolled(KeyEnrolled {
                key: k.key_id(),
                public_key: k.public_key_b64(),
                label: label.clone(),
            });
            out.push(self.sign(&self.host, &host_scope, at, body).1);
        }
        let open = EventBody::FundOpened(FundOpened {
            name: "西湖街道社区发展基金".into(),
            community: "西湖街道".into(),
            currency: "CNY".into(),
            agreement: hash("agreement"),
        });
        out.push(self.in_fund(&self.host, at, open));
        for (k, role, _) in &roles {
            out.push(self.in_fund(
                &self.host,
                at,
                EventBody::RoleGranted(RoleGranted { key: k.key_id(), role: *role }),
            ));
        }
        let members: Vec<KeyId> = self.committee.iter().map(|k| k.key_id()).collect();
        out.push(self.in_fund(
            &self.host,
            at,
            EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("minutes") }),
        ));
        out
    }

    pub fn donation(&self, fen: i64, at: DateTime<Utc>) -> (EventId, Vec<u8>) {
        self.donation_to(&self.fund.clone(), fen, at)
    }

    /// Another fund of the same host, taking gifts through the same intake service.
    pub fn open_fund(&self, fund: &FundId, at: DateTime<Utc>) -> Vec<Vec<u8>> {
        let open = EventBody::FundOpened(FundOpened {
            name: "湖滨街道社区发展基金".into(),
            community: "湖滨街道".into(),
            currency: "CNY".into(),
            agreement: hash("agreement"),
        });
        let intake = EventBody::RoleGranted(RoleGranted { key: self.intake.key_id(), role: Role::Intake });
        vec![self.sign(&self.host, fund, at, open).1, self.sign(&self.host, fund, at, intake).1]
    }

    /// A cash gift to `fund`, through the intake service.
    pub fn donation_to(&self, fund: &FundId, fen: i64, at: DateTime<Utc>) -> (EventId, Vec<u8>) {
        let body = EventBody::DonationReceived(DonationReceived {
            amount_fen: Fen::new(fen).expect("in range"),
            channel: Channel::Direct,
            donor: hash(&format!("donor-{fen}")),
            payment_ref: "WX-TEST".into(),
            pledge: None,
            restricted_purpose: None,
        });
        self.sign(&self.intake, fund, at, body)
    }

    /// A proposal submitted, endorsed by three members and applied for.
    pub fn endorsed_proposal(&self, id: &str, fen: i64, at: DateTime<Utc>) -> Vec<Vec<u8>> {
        let mut out = vec![self.in_fund(
            &self.proposer,
            at,
            EventBody::ProposalSubmitted(ProposalSubmitted {
                proposal: pid(id),
                title: "楼道照明改造".into(),
                category: ProposalCategory::Renovation,
                amount_fen: Fen::new(fen).expect("in range"),
                payee: "西湖物业公司".into(),
                description: "更换老旧楼道灯".into(),
                evidence: vec![hash("quote")],
                purpose: None,
            }),
        )];
        for member in &self.committee[..3] {
            let body =
                EventBody::VoteCast(VoteCast {
                    proposal: pid(id), choice: VoteChoice::Approve, reason: "同意".into()
                });
            out.push(self.in_fund(member, at, body));
        }
        out.push(self.in_fund(
            &self.committee[0],
            at,
            EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes: hash("m") }),
        ));
        out.push(self.in_fund(
            &self.proposer,
            at,
            EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(id) }),
        ));
        out
    }

    pub fn approval(&self, id: &str, fen: i64, at: DateTime<Utc>) -> Vec<u8> {
        let body = EventBody::ProposalApproved(ProposalApproved {
            proposal: pid(id),
            amount_fen: Fen::new(fen).expect("in range"),
        });
        self.in_fund(&self.approver, at, body)
    }

    pub fn payout(&self, id: &str, fen: i64, at: DateTime<Utc>) -> Vec<u8> {
        let body = EventBody::PayoutMade(PayoutMade {
            proposal: pid(id),
            amount_fen: Fen::new(fen).expect("in range"),
            payment_ref: "BANK-TEST".into(),
            evidence: vec![],
        });
        self.in_fund(&self.treasurer, at, body)
    }
}
