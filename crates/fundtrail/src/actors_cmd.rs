//! Each actor's actions: build the event, sign it with the actor's key file,
//! post it to `--server`, and say what the server recorded (or exactly why it
//! refused, with a non-zero exit).
//!
//! Amounts are typed in yuan (`--amount 1234.56`) and parsed exactly to fen by
//! [`parse_yuan`]: no floats anywhere. Donors appear only as salted
//! commitments: the donor's reference never leaves this machine; its salt is
//! kept beside it in a private donor file, from which `receipt` later builds a
//! receipt the donor can check with `fundtrail verify-receipt`.

#[path = "client.rs"]
pub mod client;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use fundtrail_domain::event::*;
use fundtrail_domain::money::AMOUNT_FEN_MAX;
use fundtrail_domain::{donor_commitment, EventId, Fen, FundId, KeyId, PledgeId, ProposalId, Sha256Hex};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::{parse_public_key, ActorKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::keys_cmd::load_key;
use client::{Client, Posted};

/// Where donor files (salt and reference) go unless `--receipt-dir` says otherwise.
pub const RECEIPT_DIR_DEFAULT: &str = "fundtrail-receipts";
/// Size of the salt behind a donor commitment, in bytes.
pub const SALT_SIZE: usize = 32;
/// Largest key, donor or evidence file read, in bytes.
const INPUT_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// How long `receipt` waits for a checkpoint to cover a fresh event.
const RECEIPT_WAIT_MS_MAX: u64 = 5_000;
const RECEIPT_POLL_MS: u64 = 250;

// ---------------------------------------------------------------------------
// arguments

/// Where to post and how to print.
#[derive(Args, Clone)]
pub struct Conn {
    /// The FundTrail server.
    #[arg(long, env = "FUNDTRAIL_SERVER", default_value = client::SERVER_DEFAULT, value_name = "URL")]
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
    #[arg(long, env = "FUNDTRAIL_VAULT", value_name = "URL")]
    pub vault: Option<String>,
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
        #[arg(long, value_parser = role_arg)]
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
        #[arg(long, value_parser = role_arg)]
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
    /// Record a partner's or merchant's pledge (intake).
    Pledge {
        /// The pledge id, e.g. PL-2026-03.
        #[arg(long)]
        pledge: PledgeId,
        #[arg(long, value_parser = channel_arg)]
        channel: Channel,
        /// Amount pledged in yuan, e.g. 36000 or 1234.56.
        #[arg(long, value_parser = yuan_arg)]
        amount: Fen,
        /// What it covers, e.g. "2026年度 营业利润的5%".
        #[arg(long)]
        terms: String,
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
        #[arg(long, value_parser = channel_arg, default_value = "direct")]
        channel: Channel,
        /// The payment system's reference, e.g. WX20260314001.
        #[arg(long)]
        payment_ref: String,
        /// The pledge this payment fulfils.
        #[arg(long)]
        pledge: Option<PledgeId>,
        /// A purpose the donor restricted the gift to.
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        donor: Donor,
        #[command(flatten)]
        ctx: InFund,
    },
    /// Record goods donated in kind (intake).
    DonateGoods {
        /// NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN, e.g. 大米:20:袋:60.00; repeat per line.
        #[arg(long = "item", value_parser = goods_in_arg, required = true, value_name = "ITEM")]
        items: Vec<GoodsLine>,
        #[arg(long, value_parser = channel_arg, default_value = "direct")]
        channel: Channel,
        #[arg(long)]
        pledge: Option<PledgeId>,
        #[command(flatten)]
        donor: Donor,
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
        #[arg(long, value_parser = category_arg)]
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
        #[arg(value_parser = vote_arg)]
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
    /// Publish a disclosure report stating the fund's current totals (committee member).
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
        #[arg(long, value_parser = opinion_arg)]
        opinion: AuditOpinionKind,
        #[arg(long)]
        summary: String,
        #[arg(long, value_parser = digest_arg, value_name = "FILE|SHA256")]
        report: Sha256Hex,
        #[command(flatten)]
        ctx: InFund,
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
        C::Pledge { pledge, channel, amount, terms, donor, ctx } => {
            let salt = new_salt()?;
            let commitment = donor_commitment(&salt, &donor.donor_ref);
            let lines =
                vec![("pledge", format!("{pledge}: {amount} via {}", channel.as_str())), ("terms", terms.clone())];
            let body = B::PledgeRecorded(PledgeRecorded {
                pledge,
                channel,
                donor: commitment.clone(),
                amount_fen: amount,
                terms,
            });
            submit_donation(&ctx, body, &donor, salt, lines)
        }
        C::Donate { amount, channel, payment_ref, pledge, purpose, donor, ctx } => {
            let salt = new_salt()?;
            let mut lines = vec![("amount", format!("{amount} via {}", channel.as_str()))];
            if let Some(p) = &pledge {
                lines.push(("pledge", p.to_string()));
            }
            let body = B::DonationReceived(DonationReceived {
                amount_fen: amount,
                channel,
                donor: donor_commitment(&salt, &donor.donor_ref),
                payment_ref,
                pledge,
                restricted_purpose: purpose,
            });
            submit_donation(&ctx, body, &donor, salt, lines)
        }
        C::DonateGoods { items, channel, pledge, donor, ctx } => {
            let salt = new_salt()?;
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
            let body = B::GoodsReceived(GoodsReceived {
                channel,
                donor: donor_commitment(&salt, &donor.donor_ref),
                items,
                pledge,
            });
            submit_donation(&ctx, body, &donor, salt, lines)
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
        C::Propose { proposal, title, category, amount, payee, description, evidence, ctx } => {
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
            });
            submit(&ctx, body, lines)
        }
        C::Opinion { proposal, summary, support, oppose, evidence, ctx } => {
            let lines = vec![("opinions", format!("{proposal}: {support} for, {oppose} against"))];
            submit(&ctx, B::OpinionRecorded(OpinionRecorded { proposal, summary, support, oppose, evidence }), lines)
        }
        C::Vote { proposal, choice, reason, ctx } => {
            let lines = vec![("vote", format!("{} on {proposal}", vote_name(choice)))];
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
        C::Receipt { event, receipt_dir, out, conn } => {
            let client = Client::new(&conn.server)?;
            let out = out.unwrap_or_else(|| receipt_dir.clone());
            let files = fetch_receipt(&client, &event, &receipt_dir, &out)?;
            print_receipt_files(&files, &conn);
            Ok(())
        }
    }
}

fn role_scope(fund: Option<FundId>, role: Role) -> Result<FundId> {
    match (fund, role.is_host_wide()) {
        (Some(fund), _) => Ok(fund),
        (None, true) => Ok(FundId::host()),
        (None, false) => bail!("--fund is required: {role} is granted per fund"),
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
    let (event, envelope) = sign_new(key, &fund, at, body);
    let posted = post_signed(&client, &event, &envelope)?;
    print_posted(&posted, &lines, extra, signer.conn.json);
    Ok(())
}

/// Posts a signed event and names it in any refusal.
pub fn post_signed(client: &Client, event: &Event, envelope: &[u8]) -> Result<Posted> {
    let posted = client
        .post_envelope(envelope)
        .with_context(|| format!("{} {} was not recorded by {}", event.type_name(), event.id, client.base()))?;
    if posted.id != event.id.as_str() {
        bail!("the server answered for event {} but {} was sent", posted.id, event.id);
    }
    Ok(posted)
}

/// A donation or pledge: the donor file is written before the event is posted (so an
/// accepted event never lacks its salt) and removed again if the server refuses it.
fn submit_donation(
    ctx: &InFund,
    body: EventBody,
    donor: &Donor,
    salt: [u8; SALT_SIZE],
    lines: Vec<(&str, String)>,
) -> Result<()> {
    let key = load_key(&ctx.signer.key)?;
    let client = Client::new(&ctx.signer.conn.server)?;
    let when = ctx.signer.at.unwrap_or_else(Utc::now);
    let (event, envelope) = sign_new(&key, &ctx.fund, when, body);
    let record = DonorRecord::of(&event, &donor.donor_ref, salt, client.base());
    let path = write_donor_file(&donor.receipt_dir, &record, true)?;
    let posted = match client.post_envelope(&envelope) {
        Ok(posted) => posted,
        Err(e) => {
            if e.downcast_ref::<client::Problem>().is_some() {
                // Refused for certain: nothing to prove later.
                let _ = std::fs::remove_file(&path);
            }
            return Err(e.context(format!("{} {} was not recorded by {}", event.type_name(), event.id, client.base())));
        }
    };
    let mut lines = lines;
    lines.push(("donor", format!("commitment {}", record.commitment)));
    lines.push(("donor file", format!("{} (private: salt and reference; keep it)", path.display())));
    if let Some(vault) = &donor.vault {
        let body = json!({
            "salt": base64::engine::general_purpose::STANDARD.encode(salt),
            "reference": donor.donor_ref,
            "name": donor.donor_name,
            "contact": donor.donor_contact,
            "consent_public_thanks": false,
        });
        let path = format!("/private/v1/donors/{}", record.commitment);
        Client::new(vault)?.put_json(&path, &body).with_context(|| {
            format!(
                "the donation was recorded, but the private vault at {vault} did not store the donor (retry the vault)"
            )
        })?;
        lines.push(("vault", format!("stored in the private vault at {vault}")));
    }
    let mut extra = Map::new();
    extra.insert("donor_commitment".into(), json!(record.commitment));
    extra.insert("donor_file".into(), json!(path.display().to_string()));
    print_posted(&posted, &lines, extra, ctx.signer.conn.json);
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
    let when = ctx.signer.at.unwrap_or_else(Utc::now);
    let to = to.unwrap_or(when);
    let fund = client.get_json(&format!("/v1/funds/{}", ctx.fund))?;
    let totals = totals_from_view(&fund).context("reading the fund's current totals")?;
    let lines = vec![
        ("period", format!("{} – {}", format_utc(&from), format_utc(&to))),
        ("received", totals.received_fen.to_string()),
        ("refunded", totals.refunded_fen.to_string()),
        ("reserved", totals.reserved_fen.to_string()),
        ("paid", totals.paid_fen.to_string()),
        ("available", totals.available_fen.to_string()),
        ("goods in", totals.goods_received_value_fen.to_string()),
        ("goods out", totals.goods_distributed_value_fen.to_string()),
    ];
    let body =
        EventBody::DisclosurePublished(DisclosurePublished { period_start: from, period_end: to, totals, report });
    let key = load_key(&ctx.signer.key)?;
    let (event, envelope) = sign_new(&key, &ctx.fund, when, body);
    let posted = post_signed(&client, &event, &envelope)
        .context("the fund's figures may have changed since they were read: run disclose again")?;
    print_posted(&posted, &lines, Map::new(), ctx.signer.conn.json);
    Ok(())
}

/// The disclosure totals from `GET /v1/funds/{fund}`.
pub fn totals_from_view(fund: &Value) -> Result<DisclosureTotals> {
    let fen = |v: &Value, path: &str| -> Result<Fen> {
        let n = v.pointer(path).and_then(Value::as_i64).with_context(|| format!("no integer at {path}"))?;
        Ok(Fen::new(n)?)
    };
    Ok(DisclosureTotals {
        received_fen: fen(fund, "/cash/received_fen")?,
        refunded_fen: fen(fund, "/cash/refunded_fen")?,
        reserved_fen: fen(fund, "/cash/reserved_fen")?,
        paid_fen: fen(fund, "/cash/paid_fen")?,
        available_fen: fen(fund, "/cash/available_fen")?,
        goods_received_value_fen: fen(fund, "/goods_received_value_fen")?,
        goods_distributed_value_fen: fen(fund, "/goods_distributed_value_fen")?,
    })
}

// ---------------------------------------------------------------------------
// donor files and receipts

/// What a donor needs to prove a donation is theirs: the salt and their reference.
/// Kept privately (mode 0600); never sent to the server.
#[derive(Clone, Debug)]
pub struct DonorRecord {
    pub event: EventId,
    pub fund: FundId,
    pub type_name: &'static str,
    pub donor_reference: String,
    pub salt: [u8; SALT_SIZE],
    pub commitment: Sha256Hex,
    pub server: String,
}

impl DonorRecord {
    pub fn of(event: &Event, donor_reference: &str, salt: [u8; SALT_SIZE], server: &str) -> DonorRecord {
        let commitment = donor_commitment(&salt, donor_reference);
        DonorRecord {
            event: event.id.clone(),
            fund: event.fund.clone(),
            type_name: event.type_name(),
            donor_reference: donor_reference.to_owned(),
            salt,
            commitment,
            server: server.to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "kind": "fundtrail-donor-file/v1",
            "event": self.event, "fund": self.fund, "type": self.type_name,
            "donor_reference": self.donor_reference,
            "salt": B64.encode(self.salt),
            "commitment": self.commitment,
            "server": self.server,
        })
    }
}

pub fn donor_file_path(dir: &Path, event: &EventId) -> PathBuf {
    dir.join(format!("{event}.donor.json"))
}

/// A new salt from the OS random number generator.
pub fn new_salt() -> Result<[u8; SALT_SIZE]> {
    let mut salt = [0u8; SALT_SIZE];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
    Ok(salt)
}

/// Writes the donor file (mode 0600 from creation); `durable` syncs it to disk.
pub fn write_donor_file(dir: &Path, record: &DonorRecord, durable: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = donor_file_path(dir, &record.event);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let text = serde_json::to_string_pretty(&record.to_json())? + "\n";
    file.write_all(text.as_bytes())?;
    if durable {
        file.sync_all()?;
    }
    Ok(path)
}

/// The salt and reference of a donation, if its donor file is in `dir`.
pub fn read_donor_file(dir: &Path, event: &EventId) -> Result<Option<([u8; SALT_SIZE], String)>> {
    let path = donor_file_path(dir, event);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_limited(&path)?;
    let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
    let bad = || format!("{} is not a FundTrail donor file", path.display());
    let salt = v.get("salt").and_then(Value::as_str).with_context(bad)?;
    let salt: [u8; SALT_SIZE] = B64
        .decode(salt)
        .ok()
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("{}: salt is not 32 bytes of base64", path.display()))?;
    let reference = v.get("donor_reference").and_then(Value::as_str).with_context(bad)?.to_owned();
    let commitment = v.get("commitment").and_then(Value::as_str).with_context(bad)?;
    if donor_commitment(&salt, &reference).as_str() != commitment {
        bail!("{}: salt and reference do not give its commitment", path.display());
    }
    Ok(Some((salt, reference)))
}

/// The files `receipt` wrote.
pub struct ReceiptFiles {
    pub event: EventId,
    pub index: u64,
    pub proof: PathBuf,
    pub entry: PathBuf,
    /// The donor reference, when the receipt carries the donor's salt.
    pub donor_reference: Option<String>,
    pub server: String,
}

/// Fetches `/v1/receipts/{event}` and writes `<event>.tlog-proof` (with the donor's salt
/// as its `extra` line when the donor file is in `donor_dir`) and `<event>.entry`.
pub fn fetch_receipt(client: &Client, event: &EventId, donor_dir: &Path, out: &Path) -> Result<ReceiptFiles> {
    let answer = get_receipt_waiting(client, event)?;
    let index = answer.get("index").and_then(Value::as_u64).context("receipt answer has no index")?;
    let entry_b64 = answer.get("entry").and_then(Value::as_str).context("receipt answer has no entry")?;
    let entry = B64.decode(entry_b64).context("receipt answer's entry is not base64")?;
    let text = answer.get("receipt").and_then(Value::as_str).context("receipt answer has no receipt")?;
    let mut receipt = fundtrail_ledger::Receipt::parse(text.as_bytes()).context("the server's receipt")?;
    if receipt.index != index {
        bail!("the server's receipt is for entry {} but it says {index}", receipt.index);
    }
    let decoded = fundtrail_ledger::decode_entry(&entry).context("the server's entry")?;
    if decoded.index != index {
        bail!("the server's entry has index {} but the receipt is for {index}", decoded.index);
    }
    let donor = read_donor_file(donor_dir, event)?;
    receipt.extra = donor.as_ref().map(|(salt, _)| salt.to_vec());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let proof = out.join(format!("{event}.tlog-proof"));
    let entry_path = out.join(format!("{event}.entry"));
    std::fs::write(&proof, receipt.to_bytes()).with_context(|| format!("writing {}", proof.display()))?;
    std::fs::write(&entry_path, &entry).with_context(|| format!("writing {}", entry_path.display()))?;
    Ok(ReceiptFiles {
        event: event.clone(),
        index,
        proof,
        entry: entry_path,
        donor_reference: donor.map(|(_, r)| r),
        server: client.base().to_owned(),
    })
}

/// A fresh event may not be covered by a signed checkpoint yet: wait a little.
fn get_receipt_waiting(client: &Client, event: &EventId) -> Result<Value> {
    let path = format!("/v1/receipts/{event}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(RECEIPT_WAIT_MS_MAX);
    loop {
        match client.get_json(&path) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let waitable =
                    e.downcast_ref::<client::Problem>().is_some_and(|p| matches!(p.status, 404 | 409 | 425 | 503));
                if !waitable || std::time::Instant::now() >= deadline {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(RECEIPT_POLL_MS));
            }
        }
    }
}

fn print_receipt_files(files: &ReceiptFiles, conn: &Conn) {
    if conn.json {
        let value = json!({
            "ok": true, "event": files.event, "index": files.index,
            "receipt": files.proof.display().to_string(), "entry": files.entry.display().to_string(),
            "salt_included": files.donor_reference.is_some(),
        });
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
}

/// The command a donor runs to check the receipt.
pub fn verify_receipt_hint(files: &ReceiptFiles) -> String {
    let donor = files.donor_reference.as_ref().map(|r| format!(" --donor {r}")).unwrap_or_default();
    format!(
        "fundtrail verify-receipt {} --entry {}{donor} --ledger {}/ledger --vkey \"$(curl -s {}/ledger/vkey)\"",
        files.proof.display(),
        files.entry.display(),
        files.server,
        files.server
    )
}

// ---------------------------------------------------------------------------
// argument parsers

/// Why a yuan amount was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    Negative,
    /// Not digits with an optional '.' and one or two decimals.
    Syntax,
    TooManyDecimals,
    Grouping,
    Overflow,
}

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = Fen::new(AMOUNT_FEN_MAX).expect("the maximum is in range");
        match self {
            AmountError::Empty => f.write_str("no amount given"),
            AmountError::Negative => f.write_str("amounts are never negative"),
            AmountError::Syntax => {
                f.write_str("not an amount in yuan: digits, optionally '.' and 1 or 2 decimals, e.g. 1234.56")
            }
            AmountError::TooManyDecimals => f.write_str("at most 2 decimals: the smallest unit is 1 fen (0.01)"),
            AmountError::Grouping => f.write_str("thousands separators must group 3 digits, e.g. 1,234.56"),
            AmountError::Overflow => write!(f, "too large: at most {max}"),
        }
    }
}

impl std::error::Error for AmountError {}

/// Parses yuan exactly into fen: `1234.56` → 123456 fen. Accepts an optional `¥`/`￥`,
/// thousands separators grouping 3 digits (`1,234.56`), one or two decimals. Refuses
/// signs, more than two decimals, anything else, and amounts beyond ±(2^53−1) fen.
pub fn parse_yuan(text: &str) -> Result<Fen, AmountError> {
    let text = text.strip_prefix('¥').or_else(|| text.strip_prefix('￥')).unwrap_or(text);
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.starts_with('-') {
        return Err(AmountError::Negative);
    }
    let (whole, decimals) = match text.split_once('.') {
        Some((w, d)) => (w, Some(d)),
        None => (text, None),
    };
    let digits = ungroup(whole)?;
    let fraction: u64 = match decimals {
        None => 0,
        Some(d) if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) => return Err(AmountError::Syntax),
        Some(d) if d.len() > 2 => return Err(AmountError::TooManyDecimals),
        Some(d) if d.len() == 1 => u64::from(d.as_bytes()[0] - b'0') * 10,
        Some(d) => u64::from(d.as_bytes()[0] - b'0') * 10 + u64::from(d.as_bytes()[1] - b'0'),
    };
    assert!(fraction < 100);
    let mut yuan: u64 = 0;
    for b in digits.bytes() {
        yuan = yuan.checked_mul(10).and_then(|y| y.checked_add(u64::from(b - b'0'))).ok_or(AmountError::Overflow)?;
    }
    let fen = yuan.checked_mul(100).and_then(|f| f.checked_add(fraction)).ok_or(AmountError::Overflow)?;
    let fen = i64::try_from(fen).map_err(|_| AmountError::Overflow)?;
    Fen::new(fen).map_err(|_| AmountError::Overflow)
}

/// The digits of the whole part, thousands separators checked and removed.
fn ungroup(whole: &str) -> Result<String, AmountError> {
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return Err(AmountError::Syntax);
    }
    if !whole.contains(',') {
        return Ok(whole.to_owned());
    }
    let groups: Vec<&str> = whole.split(',').collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
        return Err(AmountError::Grouping);
    }
    Ok(groups.concat())
}

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
        let bytes = read_limited(path).map_err(|e| format!("{e:#}"))?;
        return Ok(sha256_hex(&bytes));
    }
    Err("neither a file nor a SHA-256 hex digest (64 hex digits)".into())
}

/// SHA-256 of bytes as a digest field.
pub fn sha256_hex(bytes: &[u8]) -> Sha256Hex {
    Sha256Hex::new(hex::encode(Sha256::digest(bytes))).expect("hex of a SHA-256 is a digest")
}

fn read_limited(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut data = Vec::new();
    file.take(INPUT_FILE_BYTES_MAX + 1).read_to_end(&mut data)?;
    if data.len() as u64 > INPUT_FILE_BYTES_MAX {
        bail!("{} is larger than {INPUT_FILE_BYTES_MAX} bytes", path.display());
    }
    Ok(data)
}

fn key_id_of_b64(b64: &str) -> Result<KeyId> {
    let key = parse_public_key(b64)?;
    Ok(KeyId::of_public_key(key.as_bytes()))
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

fn role_arg(s: &str) -> Result<Role, String> {
    Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("one of {}", names.join(", "))
    })
}

fn channel_arg(s: &str) -> Result<Channel, String> {
    Channel::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        format!("one of {}", names.join(", "))
    })
}

fn snake_enum<T: serde::de::DeserializeOwned>(s: &str, choices: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| format!("one of {choices}"))
}

fn category_arg(s: &str) -> Result<ProposalCategory, String> {
    snake_enum(s, "activity, renovation, visit, management")
}

fn vote_arg(s: &str) -> Result<VoteChoice, String> {
    snake_enum(s, "approve, reject, recuse")
}

fn opinion_arg(s: &str) -> Result<AuditOpinionKind, String> {
    snake_enum(s, "unqualified, qualified, adverse, disclaimer")
}

fn vote_name(choice: VoteChoice) -> &'static str {
    match choice {
        VoteChoice::Approve => "approve",
        VoteChoice::Reject => "reject",
        VoteChoice::Recuse => "recuse",
    }
}

/// `NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN`; the name may itself contain ':'.
pub fn parse_goods_in(s: &str) -> Result<GoodsLine, String> {
    let mut parts: Vec<&str> = s.rsplitn(4, ':').collect();
    parts.reverse();
    let [name, quantity, unit, value] = parts[..] else {
        return Err("expected NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN, e.g. 大米:20:袋:60.00".into());
    };
    let unit_value_fen = parse_yuan(value).map_err(|e| format!("unit value {value:?}: {e}"))?;
    Ok(GoodsLine {
        name: nonempty(name, "name")?,
        quantity: parse_quantity(quantity)?,
        unit: nonempty(unit, "unit")?,
        unit_value_fen,
    })
}

/// `NAME:QUANTITY:UNIT`.
pub fn parse_goods_out(s: &str) -> Result<GoodsOut, String> {
    let mut parts: Vec<&str> = s.rsplitn(3, ':').collect();
    parts.reverse();
    let [name, quantity, unit] = parts[..] else {
        return Err("expected NAME:QUANTITY:UNIT, e.g. 大米:32:袋".into());
    };
    Ok(GoodsOut { name: nonempty(name, "name")?, quantity: parse_quantity(quantity)?, unit: nonempty(unit, "unit")? })
}

fn goods_in_arg(s: &str) -> Result<GoodsLine, String> {
    parse_goods_in(s)
}

fn goods_out_arg(s: &str) -> Result<GoodsOut, String> {
    parse_goods_out(s)
}

fn parse_quantity(s: &str) -> Result<u64, String> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let q: u64 = if ok { s.parse().map_err(|_| format!("quantity {s:?} is too large"))? } else { 0 };
    if q == 0 || q > QUANTITY_MAX {
        return Err(format!("quantity {s:?} must be a whole number from 1 to {QUANTITY_MAX}"));
    }
    Ok(q)
}

fn nonempty(s: &str, what: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(format!("the goods {what} is empty"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fen(s: &str) -> i64 {
        parse_yuan(s).unwrap().fen()
    }

    #[test]
    fn yuan_parse_exactly_to_fen() {
        assert_eq!(fen("1234.56"), 123_456);
        assert_eq!(fen("0.05"), 5);
        assert_eq!(fen("0.5"), 50);
        assert_eq!(fen("12.5"), 1_250);
        assert_eq!(fen("100"), 10_000);
        assert_eq!(fen("0"), 0);
        assert_eq!(fen("007.10"), 710);
        assert_eq!(fen("¥1,234.56"), 123_456);
        assert_eq!(fen("￥190,000"), 19_000_000);
        assert_eq!(fen("1,234,567.89"), 123_456_789);
        // 0.1 + 0.2 style traps do not exist without floats.
        assert_eq!(fen("0.29"), 29);
        assert_eq!(fen("1.13"), 113);
    }

    #[test]
    fn yuan_refusals() {
        use AmountError as E;
        let err = |s: &str| parse_yuan(s).unwrap_err();
        assert_eq!(err(""), E::Empty);
        assert_eq!(err("¥"), E::Empty);
        assert_eq!(err("-1"), E::Negative);
        assert_eq!(err("-0.01"), E::Negative);
        assert_eq!(err("+1"), E::Syntax);
        assert_eq!(err("1.234"), E::TooManyDecimals);
        assert_eq!(err("0.001"), E::TooManyDecimals);
        assert_eq!(err(".5"), E::Syntax);
        assert_eq!(err("5."), E::Syntax);
        assert_eq!(err("1.2.3"), E::Syntax);
        assert_eq!(err("1e3"), E::Syntax);
        assert_eq!(err(" 1"), E::Syntax);
        assert_eq!(err("1 000"), E::Syntax);
        assert_eq!(err("一百"), E::Syntax);
        assert_eq!(err("1,23.00"), E::Grouping);
        assert_eq!(err("1234,567"), E::Grouping);
        assert_eq!(err(",123"), E::Grouping);
    }

    #[test]
    fn yuan_range_is_json_safe() {
        // 2^53 − 1 fen is the largest amount any JSON reader holds exactly.
        assert_eq!(fen("90071992547409.91"), AMOUNT_FEN_MAX);
        assert_eq!(parse_yuan("90071992547409.92"), Err(AmountError::Overflow));
        assert_eq!(parse_yuan("184467440737095516.16"), Err(AmountError::Overflow));
        assert_eq!(parse_yuan("99999999999999999999999999"), Err(AmountError::Overflow));
    }

    #[test]
    fn yuan_round_trips_through_display() {
        for fen in [0_i64, 1, 99, 100, 123_456, 19_000_000, AMOUNT_FEN_MAX] {
            let shown = Fen::new(fen).unwrap().to_string();
            assert_eq!(parse_yuan(&shown).unwrap().fen(), fen, "{shown}");
        }
    }

    #[test]
    fn goods_lines() {
        let line = parse_goods_in("大米:20:袋:60.00").unwrap();
        assert_eq!(
            (line.name.as_str(), line.quantity, line.unit.as_str(), line.unit_value_fen.fen()),
            ("大米", 20, "袋", 6_000)
        );
        assert_eq!(parse_goods_in("牛奶:礼盒装:3:箱:55").unwrap().name, "牛奶:礼盒装");
        assert!(parse_goods_in("大米:20:袋").is_err());
        assert!(parse_goods_in("大米:0:袋:60").is_err());
        assert!(parse_goods_in("大米:-1:袋:60").is_err());
        assert!(parse_goods_in("大米:2:袋:60.001").is_err());
        assert!(parse_goods_in(":2:袋:60").is_err());
        let out = parse_goods_out("食用油:32:桶").unwrap();
        assert_eq!((out.name.as_str(), out.quantity, out.unit.as_str()), ("食用油", 32, "桶"));
        assert!(parse_goods_out("食用油:32").is_err());
    }

    #[test]
    fn key_and_digest_arguments() {
        let key = ActorKey::from_seed(&[7; 32]);
        assert_eq!(key_id_arg(key.key_id().as_str()).unwrap(), key.key_id());
        assert_eq!(key_id_arg(&key.public_key_b64()).unwrap(), key.key_id());
        assert!(key_id_arg("nope").is_err());
        let hex = "a".repeat(64);
        assert_eq!(digest_arg(&hex).unwrap().as_str(), hex);
        assert_eq!(digest_arg(&"A".repeat(64)).unwrap().as_str(), hex);
        assert!(digest_arg("/no/such/file").is_err());
        assert!(role_arg("host_treasurer").is_ok() && role_arg("boss").is_err());
        assert!(channel_arg("micro_workshop").is_ok() && channel_arg("cash").is_err());
        assert_eq!(vote_arg("recuse").unwrap(), VoteChoice::Recuse);
        assert!(category_arg("renovation").is_ok() && category_arg("party").is_err());
    }

    #[test]
    fn donor_files_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = ActorKey::from_seed(&[1; 32]);
        let body = EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: ProposalId::new("P-1").unwrap() });
        let (event, _) = sign_new(&key, &FundId::new("f").unwrap(), Utc::now(), body);
        let salt = [9u8; SALT_SIZE];
        let record = DonorRecord::of(&event, "DEMO-R-001", salt, "http://x");
        let path = write_donor_file(dir.path(), &record, false).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_donor_file(dir.path(), &event.id).unwrap(), Some((salt, "DEMO-R-001".to_owned())));
        assert!(write_donor_file(dir.path(), &record, false).is_err(), "never overwritten");
    }
}
