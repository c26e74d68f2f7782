//! Each actor's actions: build the event, sign it with the actor's key file,
//! post it to `--server`, and say what the server recorded (or exactly why it
//! refused, with a non-zero exit).
//!
//! Amounts are typed in yuan (`--amount 1234.56`) and parsed exactly to fen by
//! `fundtrail_domain::money::parse_yuan`: no floats anywhere. Donors appear only
//! as salted commitments: the donor's reference never leaves this machine; its
//! salt is kept beside it in a private donor file, from which `receipt` later
//! builds a receipt the donor can check with `fundtrail verify-receipt`.
//!
//! This file is arguments and output only; what each action does is in
//! `fundtrail_client::{actions, wallet}`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use fundtrail_client::actions::{self, digest_of_file, key_id_of_b64, role_scope, Gift, VaultDonor};
use fundtrail_client::http::{Accounts, Client, Posted, SERVER_DEFAULT};
use fundtrail_client::wallet::{fetch_receipt, verify_receipt_hint, ReceiptFiles, RECEIPT_DIR_DEFAULT};
use fundtrail_domain::event::*;
use fundtrail_domain::goods_text::GoodsTextError;
use fundtrail_domain::money::parse_yuan;
use fundtrail_domain::{EventId, Fen, FundId, KeyId, PledgeId, ProposalId, Sha256Hex};
use fundtrail_envelope::{parse_public_key, ActorKey};
use serde_json::{json, Map, Value};

use crate::keys_cmd::load_key;
use crate::qr_cmd::{self, QrArgs};

// ---------------------------------------------------------------------------
// arguments

/// Where to post and how to print.
#[derive(Args, Clone)]
pub struct Conn {
    /// The FundTrail server.
    #[arg(long, env = "FUNDTRAIL_SERVER", default_value = SERVER_DEFAULT, value_name = "URL")]
    pub server: String,
    /// Print the server's answer as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// Who signs, and when it happened.
#[derive(Args, Clone)]
pub struct Signer {
    /// The actor's private key file (from `fundtrail keys new`).
    #[arg(long, env = "FUNDTRAIL_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// When it happened (RFC 3339, e.g. 2026-03-14T09:30:00+08:00); default now.
    #[arg(long, value_parser = at_arg, value_name = "TIME")]
    pub at: Option<DateTime<Utc>>,
    #[command(flatten)]
    pub conn: Conn,
}

/// A fund and its signer.
#[derive(Args, Clone)]
pub struct InFund {
    /// The fund id, e.g. xihu-jiedao.
    #[arg(long, env = "FUNDTRAIL_FUND", value_name = "FUND")]
    pub fund: FundId,
    #[command(flatten)]
    pub signer: Signer,
}

/// Where donor files live.
#[derive(Args, Clone)]
pub struct Donor {
    /// The donor's own reference (phone or customer number). Never sent: only its salted
    /// commitment is; salt and reference go to a private donor file in --receipt-dir.
    #[arg(long = "donor-ref", value_name = "REF")]
    pub donor_ref: String,
    /// Directory of donor files (salt + reference, mode 0600).
    #[arg(long, env = "FUNDTRAIL_RECEIPT_DIR", default_value = RECEIPT_DIR_DEFAULT, value_name = "DIR")]
    pub receipt_dir: PathBuf,
    /// The private donor vault of the service (`serve --private-listen`), e.g.
    /// http://127.0.0.1:8081: salt, reference, name and contact are stored there too,
    /// never on the stream, and can be erased there.
    #[arg(long, env = "FUNDTRAIL_VAULT", value_name = "URL", requires = "vault_token_file")]
    pub vault: Option<String>,
    /// The private vault's bearer token, in a file (`serve --private-token-file`).
    #[arg(long, env = "FUNDTRAIL_VAULT_TOKEN_FILE", value_name = "FILE")]
    pub vault_token_file: Option<PathBuf>,
    /// The donor's name, for the private vault only (with --vault).
    #[arg(long, value_name = "NAME", requires = "vault")]
    pub donor_name: Option<String>,
    /// The donor's contact, for the private vault only (with --vault).
    #[arg(long, value_name = "CONTACT", requires = "vault")]
    pub donor_contact: Option<String>,
}

#[derive(Subcommand)]
pub enum ActorCommand {
    /// Genesis: the host establishes itself with its key (host_admin from then on).
    HostInit {
        /// The host organisation, e.g. 某市慈善总会.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        signer: Signer,
    },
    /// Open a fund for a community (host_admin).
    FundOpen {
        /// The fund's name, e.g. 西湖街道社区发展基金.
        #[arg(long)]
        name: String,
        /// The community it serves, e.g. 西湖街道.
        #[arg(long)]
        community: String,
        /// The signed agreement: a file (hashed) or its SHA-256 hex.
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        agreement: Sha256Hex,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Enrol a key with a label (host_admin); roles come with role-grant.
    KeyEnrol {
        /// The enrollee's public key (base64).
        #[arg(long, required_unless_present = "key_file", conflicts_with = "key_file", value_name = "BASE64")]
        pubkey: Option<String>,
        /// The enrollee's key file (only its public half is used).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Who holds it, e.g. "委员 王秀英" or "收款服务".
        #[arg(long)]
        label: String,
        #[command(flatten)]
        signer: Signer,
    },
    /// Grant a role to an enrolled key (host_admin). Host-wide roles need no --fund.
    RoleGrant {
        /// The key: its id, public key or key file.
        #[arg(long, value_parser = key_id_arg, value_name = "KEY")]
        to: KeyId,
        #[arg(long)]
        role: Role,
        #[arg(long, value_name = "FUND")]
        fund: Option<FundId>,
        #[command(flatten)]
        signer: Signer,
    },
    /// Revoke a role (host_admin): the key signs nothing under it from now on.
    RoleRevoke {
        #[arg(long, value_parser = key_id_arg, value_name = "KEY")]
        from: KeyId,
        #[arg(long)]
        role: Role,
        #[arg(long)]
        reason: String,
        #[arg(long, value_name = "FUND")]
        fund: Option<FundId>,
        #[command(flatten)]
        signer: Signer,
    },
    /// Seat the fund's committee (host_admin): an odd number, at least 3.
    CommitteeSeat {
        /// A member's key (id, public key or key file); repeat for each.
        #[arg(long = "member", value_parser = key_id_arg, required = true, value_name = "KEY")]
        members: Vec<KeyId>,
        /// Minutes of the election: a file or its SHA-256 hex.
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        minutes: Sha256Hex,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Declare a purpose gifts to the fund may be restricted to, e.g. 助老 (host_admin).
    PurposeDeclare {
        /// The purpose's name, unique in the fund.
        #[arg(long)]
        purpose: String,
        /// What money restricted to it may be spent on.
        #[arg(long)]
        description: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Retire a purpose: no new gift, pledge or proposal may name it (host_admin).
    PurposeRetire {
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record a partner's or merchant's pledge (intake).
    Pledge {
        /// The pledge id, e.g. PL-2026-03.
        #[arg(long)]
        pledge: PledgeId,
        #[arg(long)]
        channel: Channel,
        /// Amount pledged in yuan, e.g. 36000 or 1234.56.
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        /// What it covers, e.g. "2026年度 营业利润的5%".
        #[arg(long)]
        terms: String,
        /// A declared purpose the pledge is restricted to (its payments must name it too).
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        donor: Donor,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record a cash donation (intake).
    Donate {
        /// Amount in yuan, at most two decimals, e.g. 1234.56.
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        #[arg(long, default_value = "direct")]
        channel: Channel,
        /// The payment system's reference, e.g. WX20260314001.
        #[arg(long)]
        payment_ref: String,
        /// The pledge this payment fulfils.
        #[arg(long)]
        pledge: Option<PledgeId>,
        /// A declared purpose the donor restricted the gift to, e.g. 助老.
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        donor: Donor,
        #[command(flatten)]
        qr: QrArgs,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record goods donated in kind (intake).
    DonateGoods {
        /// NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN, e.g. 大米:20:袋:60.00; repeat per line.
        #[arg(long = "item", value_parser = goods_in_arg, required = true, value_name = "ITEM")]
        items: Vec<GoodsLine>,
        #[arg(long, default_value = "direct")]
        channel: Channel,
        #[arg(long)]
        pledge: Option<PledgeId>,
        /// A declared purpose the goods are restricted to.
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        donor: Donor,
        #[command(flatten)]
        qr: QrArgs,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Refund (part of) a cash donation (intake or host_treasurer).
    Refund {
        #[arg(long)]
        donation: EventId,
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record the official donation receipt (公益事业捐赠票据) issued for a donation (host_treasurer).
    IssueReceipt {
        #[arg(long)]
        donation: EventId,
        /// The receipt number.
        #[arg(long)]
        number: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record that an official receipt was voided (host_treasurer).
    VoidReceipt {
        #[arg(long)]
        donation: EventId,
        #[arg(long)]
        number: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Propose a use of the fund (proposer).
    Propose {
        /// The proposal id, e.g. P-2026-04.
        #[arg(long)]
        proposal: ProposalId,
        #[arg(long)]
        title: String,
        /// activity, renovation, visit or management.
        #[arg(long)]
        category: ProposalCategory,
        /// Amount requested in yuan.
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        /// Who would be paid (an organisation or a role).
        #[arg(long)]
        payee: String,
        #[arg(long)]
        description: String,
        /// Quotes, plans, photos: a file or its SHA-256 hex; repeatable.
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        evidence: Vec<Sha256Hex>,
        /// The declared purpose it serves (its restricted money is used first); none: unrestricted money only.
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record residents' opinions on a proposal (proposer or committee member).
    Opinion {
        #[arg(long)]
        proposal: ProposalId,
        #[arg(long)]
        summary: String,
        #[arg(long)]
        support: u32,
        #[arg(long)]
        oppose: u32,
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        evidence: Vec<Sha256Hex>,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Vote on a proposal as a seated committee member: approve, reject or recuse.
    Vote {
        #[arg(long)]
        proposal: ProposalId,
        /// approve, reject, or recuse (conflict of interest).
        choice: VoteChoice,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record the committee's endorsement (a strict majority approved).
    Endorse {
        #[arg(long)]
        proposal: ProposalId,
        /// Meeting minutes: a file or its SHA-256 hex.
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        minutes: Sha256Hex,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record the committee's rejection (a majority can no longer be reached).
    Reject {
        #[arg(long)]
        proposal: ProposalId,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Submit an endorsed proposal to the host as an application (proposer).
    Apply {
        #[arg(long)]
        proposal: ProposalId,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Approve an application and reserve the money (host_approver).
    Approve {
        #[arg(long)]
        proposal: ProposalId,
        /// Amount approved in yuan (at most what was requested).
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Decline an application (host_approver).
    Decline {
        #[arg(long)]
        proposal: ProposalId,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Pay (part of) an approved proposal (host_treasurer).
    Pay {
        #[arg(long)]
        proposal: ProposalId,
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        /// The bank's reference of the transfer.
        #[arg(long)]
        payment_ref: String,
        /// Invoices, receipts: a file or its SHA-256 hex; repeatable.
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        evidence: Vec<Sha256Hex>,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Close a proposal; what was reserved and not paid is released (proposer or host_approver).
    Close {
        #[arg(long)]
        proposal: ProposalId,
        /// Completion report or reason for withdrawal.
        #[arg(long)]
        report: String,
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        evidence: Vec<Sha256Hex>,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Hand out goods on hand (proposer or committee member).
    Distribute {
        /// NAME:QUANTITY:UNIT, e.g. 大米:32:袋; repeat per line.
        #[arg(long = "item", value_parser = goods_out_arg, required = true, value_name = "ITEM")]
        items: Vec<GoodsOut>,
        /// To whom or for what, e.g. "重阳节 慰问独居老人 32户".
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        proposal: Option<ProposalId>,
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        evidence: Vec<Sha256Hex>,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Publish a disclosure report stating the fund's current totals and citing the accounts of
    /// the year its period ends in, both filled in from the server (committee member).
    Disclose {
        /// Start of the period covered (RFC 3339).
        #[arg(long, value_parser = at_arg, value_name = "TIME")]
        from: DateTime<Utc>,
        /// End of the period covered (RFC 3339); default: the event's time.
        #[arg(long, value_parser = at_arg, value_name = "TIME")]
        to: Option<DateTime<Utc>>,
        /// The report document: a file or its SHA-256 hex.
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        report: Sha256Hex,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record an auditor's opinion on a year of the fund (auditor).
    AuditOpinion {
        #[arg(long)]
        year: i32,
        /// unqualified, qualified, adverse or disclaimer.
        #[arg(long)]
        opinion: AuditOpinionKind,
        #[arg(long)]
        summary: String,
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        report: Sha256Hex,
        #[command(flatten)]
        ctx: InFund,
    },
    /// A fund's accounts per year: income restricted and unrestricted by channel, spending
    /// by purpose, net assets at year end (JSON; CSV for one year with --csv).
    Accounts {
        #[arg(long, env = "FUNDTRAIL_FUND", value_name = "FUND")]
        fund: FundId,
        /// One calendar year; every year with activity when absent.
        #[arg(long)]
        year: Option<i32>,
        /// CSV (needs --year).
        #[arg(long, requires = "year")]
        csv: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Where a gift went: a cash gift's money reserved and paid for proposals (with the
    /// payouts' ledger entries), refunded, and unspent; a goods gift's units, line by
    /// line, handed out by distributions (with their ledger entries) and in stock.
    Trace {
        /// The gift's event id (a donation.received or a goods.received).
        event: EventId,
        #[command(flatten)]
        conn: Conn,
    },
    /// Fetch an event's ledger receipt (C2SP tlog-proof) and its entry; for a donation whose
    /// donor file is in --receipt-dir, the receipt carries the salt so the donor can prove it.
    Receipt {
        /// The event id (a donation's id is its event id).
        event: EventId,
        /// Directory of donor files.
        #[arg(long, env = "FUNDTRAIL_RECEIPT_DIR", default_value = RECEIPT_DIR_DEFAULT, value_name = "DIR")]
        receipt_dir: PathBuf,
        /// Where to write <EVENT>.tlog-proof and <EVENT>.entry (default: --receipt-dir).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        qr: QrArgs,
        #[command(flatten)]
        conn: Conn,
    },
}

// ---------------------------------------------------------------------------
// running

pub fn run(cmd: ActorCommand) -> Result<()> {
    use ActorCommand as C;
    use EventBody as B;
    match cmd {
        C::HostInit { name, signer } => {
            let key = load_key(&signer.key)?;
            let body = B::HostEstablished(HostEstablished {
                host_name: name.clone(),
                host_key: key.key_id(),
                public_key: key.public_key_b64(),
            });
            let lines = vec![("host", name), ("host key", key.key_id().to_string())];
            submit_with(&signer, &key, FundId::host(), body, lines, Map::new())
        }
        C::FundOpen { name, community, agreement, ctx } => {
            let body = B::FundOpened(FundOpened {
                name: name.clone(),
                community: community.clone(),
                currency: "CNY".into(),
                agreement,
            });
            submit(&ctx, body, vec![("fund", format!("{name} ({community})"))])
        }
        C::KeyEnrol { pubkey, key_file, label, signer } => {
            let public_key = match (pubkey, key_file) {
                (Some(b64), _) => {
                    parse_public_key(&b64).context("--pubkey")?;
                    b64.trim().to_owned()
                }
                (None, Some(path)) => load_key(&path)?.public_key_b64(),
                (None, None) => bail!("give --pubkey BASE64 or --key-file FILE"),
            };
            let key = key_id_of_b64(&public_key)?;
            let body = B::KeyEnrolled(KeyEnrolled { key: key.clone(), public_key, label: label.clone() });
            let signing = load_key(&signer.key)?;
            let lines = vec![("key", key.to_string()), ("label", label)];
            submit_with(&signer, &signing, FundId::host(), body, lines, Map::new())
        }
        C::RoleGrant { to, role, fund, signer } => {
            let fund = role_scope(fund, role)?;
            let lines = vec![("key", to.to_string()), ("role", format!("{role} in {fund}"))];
            let body = B::RoleGranted(RoleGranted { key: to, role });
            submit_with(&signer, &load_key(&signer.key)?, fund, body, lines, Map::new())
        }
        C::RoleRevoke { from, role, reason, fund, signer } => {
            let fund = role_scope(fund, role)?;
            let lines = vec![("key", from.to_string()), ("role", format!("{role} in {fund} revoked"))];
            let body = B::RoleRevoked(RoleRevoked { key: from, role, reason });
            submit_with(&signer, &load_key(&signer.key)?, fund, body, lines, Map::new())
        }
        C::CommitteeSeat { members, minutes, ctx } => {
            let lines = vec![("committee", format!("{} members", members.len()))];
            submit(&ctx, B::CommitteeSeated(CommitteeSeated { members, minutes }), lines)
        }
        C::PurposeDeclare { purpose, description, ctx } => {
            let lines = vec![("purpose", format!("{purpose} declared"))];
            submit(&ctx, B::PurposeDeclared(PurposeDeclared { purpose, description }), lines)
        }
        C::PurposeRetire { purpose, reason, ctx } => {
            let lines = vec![("purpose", format!("{purpose} retired"))];
            submit(&ctx, B::PurposeRetired(PurposeRetired { purpose, reason }), lines)
        }
        C::Pledge { pledge, channel, amount, terms, purpose, donor, ctx } => {
            let lines =
                vec![("pledge", format!("{pledge}: {amount} via {}", channel.as_str())), ("terms", terms.clone())];
            let body = |donor| {
                B::PledgeRecorded(PledgeRecorded {
                    pledge,
                    channel,
                    donor,
                    amount_fen: amount,
                    terms,
                    restricted_purpose: purpose,
                })
            };
            submit_donation(&ctx, body, &donor, lines, &QrArgs::default())
        }
        C::Donate { amount, channel, payment_ref, pledge, purpose, donor, qr, ctx } => {
            let mut lines = vec![("amount", format!("{amount} via {}", channel.as_str()))];
            if let Some(p) = &pledge {
                lines.push(("pledge", p.to_string()));
            }
            let body = |donor| {
                B::DonationReceived(DonationReceived {
                    amount_fen: amount,
                    channel,
                    donor,
                    payment_ref,
                    pledge,
                    restricted_purpose: purpose,
                })
            };
            submit_donation(&ctx, body, &donor, lines, &qr)
        }
        C::DonateGoods { items, channel, pledge, purpose, donor, qr, ctx } => {
            let mut lines: Vec<(&str, String)> = Vec::new();
            let mut total = Fen::ZERO;
            for line in &items {
                let value = line.unit_value_fen.checked_mul(line.quantity)?;
                total = total.checked_add(value)?;
                lines.push((
                    "goods",
                    format!("{} {}{} × {} = {value}", line.name, line.quantity, line.unit, line.unit_value_fen),
                ));
            }
            lines.push(("estimated", format!("{total} via {}", channel.as_str())));
            let body =
                |donor| B::GoodsReceived(GoodsReceived { channel, donor, items, pledge, restricted_purpose: purpose });
            submit_donation(&ctx, body, &donor, lines, &qr)
        }
        C::Refund { donation, amount, reason, ctx } => {
            let lines = vec![("refund", format!("{amount} of donation {donation}"))];
            submit(&ctx, B::DonationReversed(DonationReversed { donation, amount_fen: amount, reason }), lines)
        }
        C::IssueReceipt { donation, number, ctx } => {
            let lines = vec![("receipt", format!("No. {number} for donation {donation}"))];
            submit(&ctx, B::ReceiptIssued(ReceiptIssued { donation, receipt_no: number }), lines)
        }
        C::VoidReceipt { donation, number, reason, ctx } => {
            let lines = vec![("voided", format!("No. {number} of donation {donation}"))];
            submit(&ctx, B::ReceiptVoided(ReceiptVoided { donation, receipt_no: number, reason }), lines)
        }
        C::Propose { proposal, title, category, amount, payee, description, evidence, purpose, ctx } => {
            let lines =
                vec![("proposal", format!("{proposal} {title}")), ("requested", format!("{amount} to {payee}"))];
            let body = B::ProposalSubmitted(ProposalSubmitted {
                proposal,
                title,
                category,
                amount_fen: amount,
                payee,
                description,
                evidence,
                purpose,
            });
            submit(&ctx, body, lines)
        }
        C::Opinion { proposal, summary, support, oppose, evidence, ctx } => {
            let lines = vec![("opinions", format!("{proposal}: {support} for, {oppose} against"))];
            submit(&ctx, B::OpinionRecorded(OpinionRecorded { proposal, summary, support, oppose, evidence }), lines)
        }
        C::Vote { proposal, choice, reason, ctx } => {
            let lines = vec![("vote", format!("{} on {proposal}", choice.as_str()))];
            submit(&ctx, B::VoteCast(VoteCast { proposal, choice, reason }), lines)
        }
        C::Endorse { proposal, minutes, ctx } => {
            let lines = vec![("endorsed", proposal.to_string())];
            submit(&ctx, B::ProposalEndorsed(ProposalEndorsed { proposal, minutes }), lines)
        }
        C::Reject { proposal, reason, ctx } => {
            let lines = vec![("rejected", proposal.to_string())];
            submit(&ctx, B::ProposalRejected(ProposalRejected { proposal, reason }), lines)
        }
        C::Apply { proposal, ctx } => {
            let lines = vec![("applied", proposal.to_string())];
            submit(&ctx, B::ApplicationSubmitted(ApplicationSubmitted { proposal }), lines)
        }
        C::Approve { proposal, amount, ctx } => {
            let lines = vec![("approved", format!("{amount} for {proposal} (reserved)"))];
            submit(&ctx, B::ProposalApproved(ProposalApproved { proposal, amount_fen: amount }), lines)
        }
        C::Decline { proposal, reason, ctx } => {
            let lines = vec![("declined", proposal.to_string())];
            submit(&ctx, B::ProposalDeclined(ProposalDeclined { proposal, reason }), lines)
        }
        C::Pay { proposal, amount, payment_ref, evidence, ctx } => {
            let lines = vec![("paid", format!("{amount} for {proposal} ({payment_ref})"))];
            submit(&ctx, B::PayoutMade(PayoutMade { proposal, amount_fen: amount, payment_ref, evidence }), lines)
        }
        C::Close { proposal, report, evidence, ctx } => {
            let lines = vec![("closed", proposal.to_string())];
            submit(&ctx, B::ProposalClosed(ProposalClosed { proposal, report, evidence }), lines)
        }
        C::Distribute { items, purpose, proposal, evidence, ctx } => {
            let mut lines: Vec<(&str, String)> =
                items.iter().map(|l| ("goods", format!("{} {}{}", l.name, l.quantity, l.unit))).collect();
            lines.push(("for", purpose.clone()));
            submit(&ctx, B::GoodsDistributed(GoodsDistributed { items, purpose, proposal, evidence }), lines)
        }
        C::Disclose { from, to, report, ctx } => disclose(ctx, from, to, report),
        C::AuditOpinion { year, opinion, summary, report, ctx } => {
            let lines = vec![("audit", format!("{year}: {opinion:?}"))];
            submit(&ctx, B::AuditOpinionRecorded(AuditOpinionRecorded { year, opinion, summary, report }), lines)
        }
        C::Accounts { fund, year, csv, conn } => {
            match Client::new(&conn.server)?.accounts(&fund, year, csv)? {
                Accounts::Csv(text) => print!("{text}"),
                Accounts::Json(value) => println!("{}", serde_json::to_string_pretty(&value)?),
            }
            Ok(())
        }
        C::Trace { event, conn } => {
            let answer = Client::new(&conn.server)?.trace(&event)?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_trace(&answer);
            }
            Ok(())
        }
        C::Receipt { event, receipt_dir, out, qr, conn } => {
            let client = Client::new(&conn.server)?;
            let out = out.unwrap_or_else(|| receipt_dir.clone());
            let files = fetch_receipt(&client, &event, &receipt_dir, &out)?;
            let code = qr_cmd::for_receipt(&qr, &files, &receipt_dir)?;
            print_receipt_files(&files, &conn, code.as_ref());
            if let Some(code) = code {
                code.print_terminal(conn.json);
            }
            Ok(())
        }
    }
}

/// Signs `body` in `ctx.fund` with `ctx.signer`'s key and posts it.
fn submit(ctx: &InFund, body: EventBody, lines: Vec<(&str, String)>) -> Result<()> {
    let key = load_key(&ctx.signer.key)?;
    submit_with(&ctx.signer, &key, ctx.fund.clone(), body, lines, Map::new())
}

fn submit_with(
    signer: &Signer,
    key: &ActorKey,
    fund: FundId,
    body: EventBody,
    lines: Vec<(&str, String)>,
    extra: Map<String, Value>,
) -> Result<()> {
    let client = Client::new(&signer.conn.server)?;
    let at = signer.at.unwrap_or_else(Utc::now);
    let posted = actions::sign_and_post(&client, key, &fund, at, body)?;
    print_posted(&posted, &lines, extra, signer.conn.json);
    Ok(())
}

/// A donation or pledge (`body` around the donor's commitment), with its donor file.
fn submit_donation(
    ctx: &InFund,
    body: impl FnOnce(Sha256Hex) -> EventBody,
    donor: &Donor,
    lines: Vec<(&str, String)>,
    qr: &QrArgs,
) -> Result<()> {
    let key = load_key(&ctx.signer.key)?;
    let client = Client::new(&ctx.signer.conn.server)?;
    let at = ctx.signer.at.unwrap_or_else(Utc::now);
    let token = match &donor.vault_token_file {
        Some(path) => Some(crate::serve_cmd::read_secret_file(path, "vault token")?),
        None => None,
    };
    let vault = donor.vault.as_deref().zip(token.as_ref()).map(|(url, token)| VaultDonor {
        url,
        token: token.expose(),
        name: donor.donor_name.as_deref(),
        contact: donor.donor_contact.as_deref(),
    });
    let giver = actions::Donor { reference: &donor.donor_ref, receipt_dir: &donor.receipt_dir, vault };
    let Gift { posted, record, donor_file, vault } = actions::give(&client, &key, &ctx.fund, at, &giver, body)?;
    let mut lines = lines;
    lines.push(("donor", format!("commitment {}", record.commitment)));
    lines.push(("donor file", format!("{} (private: salt and reference; keep it)", donor_file.display())));
    if let Some(vault) = &vault {
        lines.push(("vault", format!("stored in the private vault at {vault}")));
    }
    let mut extra = Map::new();
    extra.insert("donor_commitment".into(), json!(record.commitment));
    extra.insert("donor_file".into(), json!(donor_file.display().to_string()));
    let code = qr_cmd::emit(qr, client.base(), posted.ledger_index, &record.salt, &donor.donor_ref)?;
    if let Some(code) = &code {
        lines.extend(code.lines());
        extra.extend(code.json());
    }
    print_posted(&posted, &lines, extra, ctx.signer.conn.json);
    if let Some(code) = code {
        code.print_terminal(ctx.signer.conn.json);
    }
    Ok(())
}

fn print_posted(posted: &Posted, lines: &[(&str, String)], extra: Map<String, Value>, json: bool) {
    if json {
        let mut value = posted.raw.clone();
        if let Value::Object(map) = &mut value {
            map.insert("ok".into(), json!(true));
            map.extend(extra);
        }
        println!("{value}");
        return;
    }
    let mark = if posted.duplicate { "= already recorded (same event id, no new effect):" } else { "✓ recorded" };
    println!(
        "{mark} {} {} in {} — stream seq {}, ledger entry {}",
        posted.type_name, posted.id, posted.fund, posted.seq, posted.ledger_index
    );
    for (label, value) in lines {
        println!("  {label:<10} {value}");
    }
}

fn disclose(ctx: InFund, from: DateTime<Utc>, to: Option<DateTime<Utc>>, report: Sha256Hex) -> Result<()> {
    let client = Client::new(&ctx.signer.conn.server)?;
    let at = ctx.signer.at.unwrap_or_else(Utc::now);
    let key = load_key(&ctx.signer.key)?;
    let done = actions::disclose(&client, &key, &ctx.fund, at, from, to, report)?;
    let totals = &done.totals;
    let mut lines = vec![
        ("period", format!("{} – {}", format_utc(&from), format_utc(&done.period_end))),
        ("received", totals.received_fen.to_string()),
        ("refunded", totals.refunded_fen.to_string()),
        ("reserved", totals.reserved_fen.to_string()),
        ("paid", totals.paid_fen.to_string()),
        ("available", totals.available_fen.to_string()),
        ("goods in", totals.goods_received_value_fen.to_string()),
        ("goods out", totals.goods_distributed_value_fen.to_string()),
    ];
    let a = &done.accounts;
    let restricted = |by_purpose: &std::collections::BTreeMap<String, Fen>| {
        by_purpose.iter().map(|(p, v)| format!("{p} {v}")).collect::<Vec<_>>().join(", ")
    };
    lines.extend([
        ("accounts", format!("{} (year to date at publication)", a.year)),
        ("income", format!("{} unrestricted, {} restricted", a.income_unrestricted_fen, a.income_restricted_fen)),
        ("spent", format!("{} unrestricted; {}", a.spending_unrestricted_fen, restricted(&a.spending_restricted))),
        (
            "net assets",
            format!("{} unrestricted; {}", a.net_assets_unrestricted_fen, restricted(&a.net_assets_restricted)),
        ),
    ]);
    let mut extra = Map::new();
    extra.insert("accounts".into(), json!(a));
    print_posted(&done.posted, &lines, extra, ctx.signer.conn.json);
    Ok(())
}

fn print_receipt_files(files: &ReceiptFiles, conn: &Conn, code: Option<&qr_cmd::Written>) {
    if conn.json {
        let mut value = json!({
            "ok": true, "event": files.event, "index": files.index,
            "receipt": files.proof.display().to_string(), "entry": files.entry.display().to_string(),
            "salt_included": files.donor_reference.is_some(),
        });
        if let (Some(code), Value::Object(map)) = (code, &mut value) {
            map.extend(code.json());
        }
        println!("{value}");
        return;
    }
    println!("✓ receipt for {} (ledger entry {})", files.event, files.index);
    println!("  receipt    {}", files.proof.display());
    println!("  entry      {}", files.entry.display());
    match &files.donor_reference {
        Some(_) => println!("  salt       included (from the donor file): the donor can prove the gift is theirs"),
        None => println!("  salt       not included (no donor file for this event in --receipt-dir)"),
    }
    println!("  check it:  {}", verify_receipt_hint(files));
    for (label, value) in code.map(qr_cmd::Written::lines).unwrap_or_default() {
        println!("  {label:<10} {value}");
    }
}

// ---------------------------------------------------------------------------
// argument parsers

fn yuan_arg(s: &str) -> Result<Fen, String> {
    parse_yuan(s).map_err(|e| e.to_string())
}

fn at_arg(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time such as 2026-03-14T09:30:00+08:00 ({e})"))
}

fn digest_arg(s: &str) -> Result<Sha256Hex, String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Sha256Hex::new(s.to_ascii_lowercase()).map_err(|e| e.to_string());
    }
    let path = Path::new(s);
    if path.is_file() {
        return digest_of_file(path).map_err(|e| format!("{e:#}"));
    }
    Err("neither a file nor a SHA-256 hex digest (64 hex digits)".into())
}

/// A key: its id (32 hex), its base64 public key, or a key file.
fn key_id_arg(s: &str) -> Result<KeyId, String> {
    if let Ok(id) = KeyId::new(s) {
        return Ok(id);
    }
    if Path::new(s).is_file() {
        return load_key(Path::new(s)).map(|k| k.key_id()).map_err(|e| format!("{e:#}"));
    }
    key_id_of_b64(s).map_err(|_| "neither a key id (32 hex digits), a base64 public key nor a key file".into())
}

/// Goods lines are parsed by the domain (`fundtrail_domain::goods_text`).
fn goods_in_arg(s: &str) -> Result<GoodsLine, String> {
    s.parse().map_err(|e: GoodsTextError| e.to_string())
}

fn goods_out_arg(s: &str) -> Result<GoodsOut, String> {
    s.parse().map_err(|e: GoodsTextError| e.to_string())
}

/// A gift's trace for people: the donor's line, then one line per part.
pub fn print_trace(answer: &fundtrail_client::http::TraceAnswer) {
    use fundtrail_domain::trace::{AllocationState, GiftTrace};
    println!("{}", answer.summary);
    let t = match &answer.trace {
        GiftTrace::Cash(t) => t,
        GiftTrace::Goods(t) => return print_goods_trace(t),
    };
    println!(
        "  donation     {} in {} ({})",
        t.donation,
        t.fund,
        t.restricted_purpose.as_deref().unwrap_or("unrestricted")
    );
    for a in &t.allocations {
        match (a.state, &a.payout) {
            (AllocationState::Paid, Some(p)) => {
                let entry = p.ledger_entry.map(|e| format!(", ledger entry {e}")).unwrap_or_default();
                println!("  paid         {} → {} {} (payout {}{entry})", a.amount_fen, a.proposal, a.title, p.event);
            }
            _ => println!("  reserved     {} for {} {}", a.amount_fen, a.proposal, a.title),
        }
    }
    if t.refunded_fen.is_positive() {
        println!("  refunded     {}", t.refunded_fen);
    }
    println!("  unspent      {}", t.unspent_fen);
}

/// A goods gift's trace for people: per line, each distribution that took from it, then what is in stock.
fn print_goods_trace(t: &fundtrail_domain::GoodsTrace) {
    println!(
        "  goods gift   {} in {} ({})",
        t.donation,
        t.fund,
        t.restricted_purpose.as_deref().unwrap_or("unrestricted")
    );
    for l in &t.lines {
        println!("  line {}       {} {} {}", l.line + 1, l.quantity, l.unit, l.name);
        for d in &l.distributions {
            let proposal = match (&d.proposal, &d.title) {
                (Some(p), Some(title)) => format!(" for {p} {title}"),
                (Some(p), None) => format!(" for {p}"),
                _ => String::new(),
            };
            let entry = d.distribution.ledger_entry.map(|e| format!(", ledger entry {e}")).unwrap_or_default();
            println!(
                "    handed out {} {} → {}{proposal}, {} (distribution {}{entry})",
                d.quantity,
                l.unit,
                d.purpose,
                d.distribution.distributed_at.format("%Y-%m-%d"),
                d.distribution.event
            );
        }
        println!("    in stock   {} {}", l.in_stock, l.unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goods_arguments_say_what_is_wrong() {
        assert_eq!(goods_in_arg("大米:20:袋:60.00").unwrap().quantity, 20);
        assert!(goods_in_arg("大米:20:袋").unwrap_err().contains("NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN"));
        assert!(goods_out_arg("食用油:0:桶").unwrap_err().contains("quantity \"0\""));
    }

    #[test]
    fn key_and_digest_arguments() {
        let key = ActorKey::from_seed(&[7; 32]);
        assert_eq!(key_id_arg(key.key_id().as_str()).unwrap(), key.key_id());
        assert_eq!(key_id_arg(&key.public_key_b64()).unwrap(), key.key_id());
        assert!(key_id_arg("nope").is_err());
        let hex = "a".repeat(64);
        assert_eq!(digest_arg(&hex).unwrap().to_string(), hex);
        assert_eq!(digest_arg(&"A".repeat(64)).unwrap().to_string(), hex);
        assert!(digest_arg("/no/such/file").is_err());
    }
}
