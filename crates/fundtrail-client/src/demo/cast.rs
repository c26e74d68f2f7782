//! The demo's people and organisations: real Ed25519 keys (written to the data
//! directory with mode 0600), Chinese labels, and the setup that makes them a
//! host, a fund and its committee. Donor references are generated (`DEMO-…`),
//! never real people.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use fundtrail_domain::event::*;
use fundtrail_domain::{FundId, KeyId};
use fundtrail_envelope::ActorKey;

use super::play::{doc, Job, Player};

pub const HOST_NAME: &str = "某市慈善总会";
pub const FUND_NAME: &str = "西湖街道社区发展基金";
pub const COMMUNITY: &str = "西湖街道";

/// The committee, in seat order. Seat 4 runs 康乐社区食堂 (a partner and a payee).
pub const MEMBERS: [&str; 5] = [
    "委员 王秀英（主任委员，退休教师）",
    "委员 李建国（居民代表）",
    "委员 张丽华（社区民警）",
    "委员 刘志强（康乐社区食堂负责人）",
    "委员 陈梅（律师志愿者，信息公开）",
];

pub struct Cast {
    pub host: ActorKey,
    pub intake: ActorKey,
    pub proposer: ActorKey,
    pub committee: Vec<ActorKey>,
    pub approver: ActorKey,
    pub treasurer: ActorKey,
    pub auditor: ActorKey,
}

impl Cast {
    /// New keys from the OS RNG, each written to `dir/<name>.key` (mode 0600).
    pub fn generate(dir: &Path) -> Result<Cast> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let key = |name: &str| -> Result<ActorKey> {
            let key = ActorKey::generate()?;
            write_key(&dir.join(format!("{name}.key")), &key)?;
            Ok(key)
        };
        Ok(Cast {
            host: key("host")?,
            intake: key("intake")?,
            proposer: key("proposer")?,
            committee: (1..=MEMBERS.len()).map(|i| key(&format!("committee-{i}"))).collect::<Result<_>>()?,
            approver: key("approver")?,
            treasurer: key("treasurer")?,
            auditor: key("auditor")?,
        })
    }

    /// Everyone but the host, with the role and label they are enrolled with.
    fn roles(&self) -> Vec<(&ActorKey, Role, String)> {
        let mut roles = vec![
            (&self.intake, Role::Intake, "慈善总会 网络募捐收款平台".to_owned()),
            (&self.proposer, Role::Proposer, "西湖街道社区党委".to_owned()),
            (&self.approver, Role::HostApprover, "慈善总会 项目部（审批）".to_owned()),
            (&self.treasurer, Role::HostTreasurer, "慈善总会 财务部".to_owned()),
            (&self.auditor, Role::Auditor, "某某会计师事务所（年度审计）".to_owned()),
        ];
        for (key, label) in self.committee.iter().zip(MEMBERS) {
            roles.push((key, Role::CommitteeMember, label.to_owned()));
        }
        roles
    }

    /// Genesis, every key enrolled, the fund opened, roles granted, committee seated.
    pub fn setup(&self, p: &mut Player) -> Result<()> {
        let host = FundId::host();
        p.post_in(
            &self.host,
            host.clone(),
            EventBody::HostEstablished(HostEstablished {
                host_name: HOST_NAME.into(),
                host_key: self.host.key_id(),
                public_key: self.host.public_key_b64(),
            }),
        )?;
        let roles = self.roles();
        let enrol = roles.iter().map(|(key, _, label)| Job {
            key: &self.host,
            fund: host.clone(),
            body: EventBody::KeyEnrolled(KeyEnrolled {
                key: key.key_id(),
                public_key: key.public_key_b64(),
                label: label.clone(),
            }),
            donor: None,
        });
        p.batch(enrol.collect())?;
        p.post(
            &self.host,
            EventBody::FundOpened(FundOpened {
                name: FUND_NAME.into(),
                community: COMMUNITY.into(),
                currency: "CNY".into(),
                agreement: doc("某市慈善总会 与 西湖街道 社区发展基金合作协议（2026）"),
            }),
        )?;
        let grants = roles.iter().map(|(key, role, _)| Job {
            key: &self.host,
            fund: p.fund.clone(),
            body: EventBody::RoleGranted(RoleGranted { key: key.key_id(), role: *role }),
            donor: None,
        });
        p.batch(grants.collect())?;
        let members: Vec<KeyId> = self.committee.iter().map(ActorKey::key_id).collect();
        p.post(
            &self.host,
            EventBody::CommitteeSeated(CommitteeSeated {
                members,
                minutes: doc("西湖街道社区发展基金 第一届管理委员会 选举会议纪要"),
            }),
        )?;
        // The host signs donation agreements, so it declares what gifts may be restricted to.
        p.post(
            &self.host,
            EventBody::PurposeDeclared(PurposeDeclared {
                purpose: crate::demo::year::ELDERLY.into(),
                description: "老年食堂助餐、独居老人关爱：限定用于社区助老服务".into(),
            }),
        )?;
        Ok(())
    }
}

fn write_key(path: &Path, key: &ActorKey) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(key.to_file_text().as_bytes())?;
    Ok(())
}
