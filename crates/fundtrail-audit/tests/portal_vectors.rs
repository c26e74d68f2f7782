//! Golden vectors for the portal's in-browser verifier (`portal/src/core/`), written by
//! the Rust code: an honest ledger published in the C2SP tlog-tiles layout, the tamper
//! catalogue of `tests/verify.rs` as edits to its files, each with what
//! `verify_ledger` says, and donor receipts with what `verify_donor_receipt` says. The
//! portal's `node --test` checks that the browser says the same.
//!
//! The committed vectors must be what this code writes: the test fails when they are
//! stale. `UPDATE_PORTAL_VECTORS=1 cargo test -p fundtrail-audit --test portal_vectors`
//! rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::prelude::*;
use fundtrail_audit::testing::{donor_reference, salt_of, LedgerBuilder, Published, FUND, ORIGIN};
use fundtrail_audit::{verify_donor_receipt, verify_ledger, Cause, DirSource, ReceiptInput, VerifyOptions};
use fundtrail_domain::disclosure::expected_citation;
use fundtrail_domain::event::{
    ApplicationSubmitted, Channel, DisclosureAccounts, DisclosurePublished, DonationReceived, EventBody,
    GoodsDistributed, GoodsLine, GoodsOut, GoodsReceived, ProposalEndorsed, Role, RoleRevoked, VoteChoice,
};
use fundtrail_domain::testing::{
    approve, close, declare_purpose, hash, payout, pid, proposal, proposal_for, restricted_donation, vote,
};
use fundtrail_domain::{Fen, FundId};
use fundtrail_envelope::FoldError;
use fundtrail_ledger::{Checkpoint, LogSigner, Policy, WitnessSigner};
use serde_json::{json, Value};

/// Tree sizes the main ledger is published through (see tests/verify.rs).
const STEPS: [u64; 4] = [100, 256, 300, 332];

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../portal/test/vectors")
}

/// An edit to one file of a published ledger, applied the same way by the JS test.
#[derive(Clone)]
enum Op {
    Xor {
        file: &'static str,
        offset: usize,
        mask: u8,
    },
    Truncate {
        file: &'static str,
        len: usize,
    },
    Remove {
        file: &'static str,
    },
    /// Replace bytes `start..end` with `insert`.
    Splice {
        file: &'static str,
        start: usize,
        end: usize,
        insert: Vec<u8>,
    },
    Write {
        file: &'static str,
        data: Vec<u8>,
    },
}

impl Op {
    fn apply(&self, dir: &Path) {
        let path = |f: &str| dir.join(f);
        match self {
            Op::Xor { file, offset, mask } => {
                let mut data = std::fs::read(path(file)).unwrap();
                data[*offset] ^= mask;
                std::fs::write(path(file), data).unwrap();
            }
            Op::Truncate { file, len } => {
                let mut data = std::fs::read(path(file)).unwrap();
                data.truncate(*len);
                std::fs::write(path(file), data).unwrap();
            }
            Op::Remove { file } => std::fs::remove_file(path(file)).unwrap(),
            Op::Splice { file, start, end, insert } => {
                let mut data = std::fs::read(path(file)).unwrap();
                data.splice(*start..*end, insert.iter().copied());
                std::fs::write(path(file), data).unwrap();
            }
            Op::Write { file, data } => std::fs::write(path(file), data).unwrap(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Op::Xor { file, offset, mask } => json!({"file": file, "xor": [offset, mask]}),
            Op::Truncate { file, len } => json!({"file": file, "truncate": len}),
            Op::Remove { file } => json!({"file": file, "remove": true}),
            Op::Splice { file, start, end, insert } => {
                json!({"file": file, "splice": [start, end, BASE64_STANDARD.encode(insert)]})
            }
            Op::Write { file, data } => json!({"file": file, "write": BASE64_STANDARD.encode(data)}),
        }
    }
}

/// Byte offset of entry `position`'s bytes in a bundle, and its length.
fn entry_span(bundle: &[u8], position: usize) -> (usize, usize) {
    let mut offset = 0;
    for _ in 0..position {
        offset += 2 + usize::from(u16::from_be_bytes([bundle[offset], bundle[offset + 1]]));
    }
    (offset + 2, usize::from(u16::from_be_bytes([bundle[offset], bundle[offset + 1]])))
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, data) in files(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

fn checkpoint_json(c: &Checkpoint) -> Value {
    json!({"origin": c.origin, "size": c.size, "root": c.root.to_base64()})
}

/// What `verify_ledger` says of `dir`; file locations are made relative to it.
fn verdict(dir: &Path, signer: &LogSigner, previous: Option<&Checkpoint>) -> Value {
    let options = VerifyOptions { previous: previous.cloned(), ..Default::default() };
    match verify_ledger(&DirSource::new(dir), &signer.verifier(), options) {
        Ok(report) => {
            // Every fund's money as the report gives it: the browser's replay must say the same.
            let funds: Vec<Value> = report
                .funds
                .iter()
                .map(|f| {
                    json!({
                        "fund": f.fund, "name": f.name, "cash": f.cash,
                        "goods": {"received_value_fen": f.goods.received_value_fen, "distributed_value_fen": f.goods.distributed_value_fen},
                        "proposals": f.proposals, "donations": f.donations,
                    })
                })
                .collect();
            json!({"ok": true, "entries": report.entries, "root": report.checkpoint.root, "funds": funds})
        }
        Err(failure) => {
            let rule = match &failure.cause {
                Cause::Fold(FoldError::Rule { source, .. }) => Some(source.code()),
                _ => None,
            };
            let prefix = format!("{}/", dir.display());
            let kind = format!("{:?}", failure.cause);
            let kind = kind.split(['(', ' ', '{']).next().unwrap().to_string();
            json!({
                "ok": false,
                "index": failure.index,
                "kind": kind,
                "rule": rule,
                "message": failure.to_string().replace(&prefix, ""),
            })
        }
    }
}

struct Case {
    name: &'static str,
    ledger: &'static str,
    ops: Vec<Op>,
    previous: Option<Checkpoint>,
}

fn main_builder() -> LedgerBuilder {
    let b = LedgerBuilder::realistic(300);
    assert_eq!(b.envelopes.len(), 332);
    b
}

/// A small ledger whose event `bad` is appended unfolded, then a few honest donations:
/// honest in every format, so only the replay catches it.
fn small_with(bad: impl FnOnce(&mut LedgerBuilder) -> Vec<u8>) -> (LedgerBuilder, u64) {
    let mut b = LedgerBuilder::realistic(40);
    let envelope = bad(&mut b);
    let index = b.push_unfolded(envelope);
    for i in 0..3 {
        b.donate(Fen::yuan(10 + i), Channel::Direct, &[3; 32], "later donor");
    }
    (b, index)
}

fn donation_body(reference: &str) -> EventBody {
    EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::yuan(88),
        channel: Channel::Direct,
        donor: hash(reference),
        payment_ref: "WX-BAD".into(),
        pledge: None,
        restricted_purpose: None,
    })
}

/// Proposal `id` through submission (serving `purpose`), five approvals, endorsement and application.
fn submitted_and_applied(b: &mut LedgerBuilder, id: &str, yuan: i64, purpose: Option<&str>) {
    b.given("proposer", FUND, proposal_for(id, yuan, purpose));
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        b.given(c, FUND, vote(id, VoteChoice::Approve));
    }
    b.given("c1", FUND, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes: hash(id) }));
    b.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(id) }));
}

/// Goods received: `quantity` 袋 小米 (which no other gift of the ledgers gives), restricted to `purpose`.
fn goods_body(quantity: u64, purpose: Option<&str>) -> EventBody {
    EventBody::GoodsReceived(GoodsReceived {
        channel: Channel::NeighbourhoodMarket,
        donor: hash(&format!("merchant {quantity}")),
        items: vec![GoodsLine { name: "小米".into(), quantity, unit: "袋".into(), unit_value_fen: Fen::yuan(60) }],
        pledge: None,
        restricted_purpose: purpose.map(str::to_owned),
    })
}

/// 助老 declared, two gifts restricted to it, P-3 serving it approved beyond them (so
/// unrestricted money is reserved too), partly paid, then closed under budget.
fn restricted_flow(b: &mut LedgerBuilder) {
    b.given("admin", FUND, declare_purpose("助老"));
    b.given("intake", FUND, restricted_donation(Fen::yuan(300), Channel::SpaceForService, "助老"));
    b.given("intake", FUND, restricted_donation(Fen::yuan(200), Channel::SpaceForService, "助老"));
    submitted_and_applied(b, "P-3", 700, Some("助老"));
    b.given("approver", FUND, approve("P-3", 650));
    b.pay("P-3", Fen::yuan(400));
    b.given("proposer", FUND, close("P-3"));
}

/// A v2 disclosure of the fund's first half hour, stating the totals and citing the
/// accounts of the builder's fold now, with `tamper` applied to the citation.
fn disclosure_body(b: &LedgerBuilder, tamper: impl FnOnce(&mut DisclosureAccounts)) -> EventBody {
    let fund = FundId::new(FUND).unwrap();
    let f = &b.fold.state.funds[&fund];
    let end = f.opened_at + chrono::Duration::minutes(30);
    let mut accounts = expected_citation(&fund, f, &end).unwrap();
    tamper(&mut accounts);
    EventBody::DisclosurePublished(DisclosurePublished {
        period_start: f.opened_at,
        period_end: end,
        totals: fundtrail_domain::rules::totals_of(f).unwrap(),
        report: hash("report"),
        accounts: Some(Box::new(accounts)),
    })
}

/// The restricted flow, then a version 1 disclosure (signed as v1: no accounts) and a
/// version 2 one citing the year's accounts, both folded.
fn disclosed_flow(b: &mut LedgerBuilder) {
    restricted_flow(b);
    let event = b.event("c2", FUND, disclosure_body(b, |_| {}));
    let mut v1 = event.to_json();
    v1["v"] = json!(1);
    v1["body"].as_object_mut().unwrap().remove("accounts").expect("a v2 body cites accounts");
    let envelope = b.key("c2").sign_payload(&serde_json::to_vec(&v1).unwrap());
    let seq = b.envelopes.len() as u64 + 1;
    b.fold.apply(seq, None, &envelope).expect("a v1 disclosure replays");
    b.envelopes.push(envelope);
    let honest = disclosure_body(b, |_| {});
    b.given("c3", FUND, honest);
}

/// Builds every vector into `out`.
fn write_vectors(out: &Path) {
    let main = main_builder();
    let ledgers = out.join("ledgers");
    let main_dir = ledgers.join("main");
    let published: Published = main.publish(&main_dir, &STEPS);

    // The signature of an event flipped, the tree and checkpoint honestly rebuilt.
    let (badsig, badsig_index) = small_with(|b| {
        let envelope = b.sign("intake", FUND, donation_body("flipped"));
        let mut wire: Value = serde_json::from_slice(&envelope).unwrap();
        let mut sig = BASE64_STANDARD.decode(wire["signatures"][0]["sig"].as_str().unwrap()).unwrap();
        sig[5] ^= 0x01;
        wire["signatures"][0]["sig"] = json!(BASE64_STANDARD.encode(sig));
        serde_json::to_vec(&wire).unwrap()
    });
    badsig.publish(&ledgers.join("badsig"), &[]);
    // Signed by a key that was never enrolled.
    let (unknown, unknown_index) = small_with(|b| b.sign("stranger", FUND, donation_body("stranger")));
    unknown.publish(&ledgers.join("unknown-key"), &[]);
    // Signed by an enrolled key without the role: only the domain rules catch it.
    let (role, role_index) = small_with(|b| b.sign("proposer", FUND, donation_body("no role")));
    role.publish(&ledgers.join("role"), &[]);

    // Cryptographically intact ledgers that break a money or role rule: refused by the
    // replay alone, in Rust and in the browser, at the same entry for the same rule.
    // A payout signed by the host's approver, who does not hold host_treasurer.
    let (payout_role, payout_role_index) = small_with(|b| b.sign("approver", FUND, payout("P-1", Fen::yuan(10))));
    payout_role.publish(&ledgers.join("payout-role"), &[]);
    // A payout beyond what is left of the approval (500 approved, 320 paid).
    let (beyond, beyond_index) = small_with(|b| b.sign("treasurer", FUND, payout("P-1", Fen::yuan(181))));
    beyond.publish(&ledgers.join("payout-beyond-approval"), &[]);
    // An approval of more than the fund has available: an overspend.
    let (overspend, overspend_index) = small_with(|b| {
        b.given("proposer", FUND, proposal("P-2", 1_000_000));
        for c in ["c1", "c2", "c3", "c4", "c5"] {
            b.given(c, FUND, vote("P-2", VoteChoice::Approve));
        }
        b.given(
            "c1",
            FUND,
            EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid("P-2"), minutes: hash("m2") }),
        );
        b.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid("P-2") }));
        b.sign("approver", FUND, approve("P-2", 1_000_000))
    });
    overspend.publish(&ledgers.join("overspend"), &[]);
    // Purposes honoured (docs/design.md §1.6): gifts restricted to 助老, a proposal that
    // serves it reserved from them first, partly paid, closed under budget.
    let restricted = {
        let mut b = LedgerBuilder::realistic(40);
        restricted_flow(&mut b);
        b
    };
    restricted.publish(&ledgers.join("restricted"), &[]);
    // Money restricted to 助老 asked for a proposal that serves no purpose.
    let (crossed, crossed_index) = small_with(|b| {
        restricted_flow(b);
        submitted_and_applied(b, "P-4", 1_000_000, None);
        b.sign("approver", FUND, approve("P-4", 1_000_000))
    });
    crossed.publish(&ledgers.join("restricted-crossed"), &[]);
    // Goods restricted to 助老 handed out with no proposal, beyond the unrestricted goods
    // (docs/design.md §1.6, "Goods").
    let (goods_crossed, goods_crossed_index) = small_with(|b| {
        b.given("admin", FUND, declare_purpose("助老"));
        b.given("intake", FUND, goods_body(10, Some("助老")));
        b.given("intake", FUND, goods_body(3, None));
        let hand_out = EventBody::GoodsDistributed(GoodsDistributed {
            items: vec![GoodsOut { name: "小米".into(), quantity: 4, unit: "袋".into() }],
            purpose: "春节慰问 困难家庭".into(),
            proposal: None,
            evidence: vec![],
        });
        b.sign("proposer", FUND, hand_out)
    });
    goods_crossed.publish(&ledgers.join("goods-crossed"), &[]);
    // Disclosures (docs/design.md §1.6, "What a disclosure cites"): a v1 one citing no
    // accounts and a v2 one citing the year's, both honest…
    let disclosed = {
        let mut b = LedgerBuilder::realistic(40);
        disclosed_flow(&mut b);
        b
    };
    disclosed.publish(&ledgers.join("disclosed"), &[]);
    // …and a v2 one citing 助老's net assets a fen higher than the replay gives.
    let (cited, cited_index) = small_with(|b| {
        disclosed_flow(b);
        let body = disclosure_body(b, |a| {
            let line = a.net_assets_restricted.get_mut("助老").expect("助老 has net assets");
            *line = Fen::new(line.fen() + 1).unwrap();
        });
        b.sign("c4", FUND, body)
    });
    cited.publish(&ledgers.join("disclosure-citing-a-wrong-figure"), &[]);
    // The intake key's role revoked, then the key used again.
    let (revoked, revoked_index) = {
        let mut b = LedgerBuilder::realistic(40);
        let key = b.key_id("intake");
        b.given(
            "admin",
            FUND,
            EventBody::RoleRevoked(RoleRevoked { key, role: Role::Intake, reason: "合同到期".into() }),
        );
        let envelope = b.sign("intake", FUND, donation_body("after revocation"));
        let index = b.push_unfolded(envelope);
        b.pay("P-1", Fen::yuan(10));
        (b, index)
    };
    revoked.publish(&ledgers.join("revoked-key"), &[]);

    // Payloads signed as they are, which no honest client writes: only the reading of
    // the payload (strict JSON, then the schemas) catches them, in Rust and the browser.
    // A body that names its channel twice (JSON.parse would keep the last).
    let (duplicate, duplicate_index) = small_with(|b| {
        let event = b.event("intake", FUND, donation_body("duplicate key"));
        let text = String::from_utf8(event.to_bytes()).unwrap();
        let twice = text.replacen("\"channel\":\"direct\"", "\"channel\":\"micro_workshop\",\"channel\":\"direct\"", 1);
        assert_ne!(twice, text, "the body names its channel");
        b.key("intake").sign_payload(twice.as_bytes())
    });
    duplicate.publish(&ledgers.join("duplicate-key"), &[]);
    // A donation without its payment reference: strict JSON, but not the schema.
    let (missing, missing_index) = small_with(|b| {
        let event = b.event("intake", FUND, donation_body("missing field"));
        let mut value = event.to_json();
        value["body"].as_object_mut().unwrap().remove("payment_ref").expect("a donation has a payment_ref");
        b.key("intake").sign_payload(&serde_json::to_vec(&value).unwrap())
    });
    missing.publish(&ledgers.join("missing-field"), &[]);
    // A correctly signed donation whose envelope is an array of its three fields, not
    // the DSSE object: refused as every DSSE reader refuses it.
    let (array, array_index) = small_with(|b| {
        let envelope = b.sign("intake", FUND, donation_body("envelope as an array"));
        let wire: Value = serde_json::from_slice(&envelope).unwrap();
        serde_json::to_vec(&json!([wire["payload"], wire["payloadType"], wire["signatures"]])).unwrap()
    });
    array.publish(&ledgers.join("envelope-array"), &[]);

    let bundle1 = std::fs::read(main_dir.join("tile/entries/001.p/76")).unwrap();
    let bundle0 = std::fs::read(main_dir.join("tile/entries/000")).unwrap();
    let note = std::fs::read(main_dir.join("checkpoint")).unwrap();

    let mut cases = vec![
        Case { name: "honest", ledger: "main", ops: vec![], previous: None },
        Case { name: "unknown-key", ledger: "unknown-key", ops: vec![], previous: None },
        Case { name: "bad-event-signature", ledger: "badsig", ops: vec![], previous: None },
        Case { name: "key-without-the-role", ledger: "role", ops: vec![], previous: None },
        Case { name: "payout-signed-without-the-role", ledger: "payout-role", ops: vec![], previous: None },
        Case { name: "payout-beyond-approval", ledger: "payout-beyond-approval", ops: vec![], previous: None },
        Case { name: "approval-beyond-available", ledger: "overspend", ops: vec![], previous: None },
        Case { name: "restricted-gifts-honoured", ledger: "restricted", ops: vec![], previous: None },
        Case { name: "approval-of-another-purposes-money", ledger: "restricted-crossed", ops: vec![], previous: None },
        Case {
            name: "goods-restricted-to-a-purpose-handed-out-without-it",
            ledger: "goods-crossed",
            ops: vec![],
            previous: None,
        },
        Case { name: "key-used-after-its-role-was-revoked", ledger: "revoked-key", ops: vec![], previous: None },
        Case { name: "disclosures-v1-and-v2-honest", ledger: "disclosed", ops: vec![], previous: None },
        Case {
            name: "disclosure-citing-a-wrong-figure",
            ledger: "disclosure-citing-a-wrong-figure",
            ops: vec![],
            previous: None,
        },
        Case { name: "duplicate-json-key", ledger: "duplicate-key", ops: vec![], previous: None },
        Case { name: "envelope-as-an-array", ledger: "envelope-array", ops: vec![], previous: None },
        Case { name: "payload-missing-a-field", ledger: "missing-field", ops: vec![], previous: None },
    ];
    let (start, len) = entry_span(&bundle1, 10);
    cases.push(Case {
        name: "flipped-byte-in-an-entry",
        ledger: "main",
        ops: vec![Op::Xor { file: "tile/entries/001.p/76", offset: start + len / 2, mask: 0x01 }],
        previous: None,
    });
    // A byte of an entry's signature, in its bundle: the bundle no longer matches.
    let (start, _) = entry_span(&bundle1, 20);
    let sig_at = start + bundle1[start..].windows(7).position(|w| w == b"\"sig\":\"").unwrap() + 12;
    cases.push(Case {
        name: "flipped-signature-in-a-bundle",
        ledger: "main",
        ops: vec![Op::Xor { file: "tile/entries/001.p/76", offset: sig_at, mask: 0x01 }],
        previous: None,
    });
    cases.push(Case {
        name: "flipped-byte-in-a-level-0-tile",
        ledger: "main",
        ops: vec![Op::Xor { file: "tile/0/000", offset: 7 * 32 + 3, mask: 0x80 }],
        previous: None,
    });
    cases.push(Case {
        name: "flipped-byte-in-an-upper-tile",
        ledger: "main",
        ops: vec![Op::Xor { file: "tile/1/000.p/1", offset: 0, mask: 0x01 }],
        previous: None,
    });
    // In the size line, the root, and the signature line (ASCII stays ASCII).
    for (name, offset) in [
        ("flipped-byte-in-the-checkpoint-size", 30usize),
        ("flipped-byte-in-the-checkpoint-root", 60),
        ("flipped-byte-in-the-checkpoint-signature", 120),
    ] {
        let at = offset.min(note.len() - 2);
        let replacement = if note[at] == b'A' { b'B' } else { b'A' };
        cases.push(Case {
            name,
            ledger: "main",
            ops: vec![Op::Xor { file: "checkpoint", offset: at, mask: note[at] ^ replacement }],
            previous: None,
        });
    }
    let (a, a_len) = entry_span(&bundle0, 5);
    let (b, b_len) = entry_span(&bundle0, 6);
    let mut swapped = bundle0[b - 2..b + b_len].to_vec();
    swapped.extend_from_slice(&bundle0[a - 2..a + a_len]);
    cases.push(Case {
        name: "reordered-entries",
        ledger: "main",
        ops: vec![Op::Splice { file: "tile/entries/000", start: a - 2, end: b + b_len, insert: swapped }],
        previous: None,
    });
    let (start, len) = entry_span(&bundle1, 44);
    cases.push(Case {
        name: "dropped-entry",
        ledger: "main",
        ops: vec![Op::Splice { file: "tile/entries/001.p/76", start: start - 2, end: start + len, insert: vec![] }],
        previous: None,
    });
    cases.push(Case {
        name: "bundle-cut-inside-the-last-entry",
        ledger: "main",
        ops: vec![Op::Truncate { file: "tile/entries/001.p/76", len: bundle1.len() - 10 }],
        previous: None,
    });
    let (start, _) = entry_span(&bundle1, 73);
    cases.push(Case {
        name: "bundle-missing-its-last-entries",
        ledger: "main",
        ops: vec![Op::Truncate { file: "tile/entries/001.p/76", len: start - 2 }],
        previous: None,
    });
    cases.push(Case {
        name: "bundle-missing",
        ledger: "main",
        ops: vec![Op::Remove { file: "tile/entries/001.p/76" }],
        previous: None,
    });
    let impostor = LogSigner::from_seed(ORIGIN, &[8; 32]).unwrap();
    cases.push(Case {
        name: "checkpoint-signed-by-another-key",
        ledger: "main",
        ops: vec![Op::Write { file: "checkpoint", data: impostor.sign_checkpoint(&published.checkpoint).unwrap() }],
        previous: None,
    });
    // Fork, rollback, growth: against an earlier checkpoint this verifier saw.
    let tree300 = fundtrail_ledger::tree_hash(300, &published.tree).unwrap();
    let seen300 = Checkpoint::new(ORIGIN, 300, tree300).unwrap();
    cases.push(Case { name: "grew-since-300", ledger: "main", ops: vec![], previous: Some(seen300.clone()) });
    let other_root = fundtrail_ledger::leaf_hash(b"another history");
    cases.push(Case {
        name: "fork-same-size",
        ledger: "main",
        ops: vec![],
        previous: Some(Checkpoint::new(ORIGIN, 332, other_root).unwrap()),
    });
    cases.push(Case {
        name: "not-consistent-with-300",
        ledger: "main",
        ops: vec![],
        previous: Some(Checkpoint::new(ORIGIN, 300, other_root).unwrap()),
    });
    let old_note = main.signer.sign_checkpoint(&seen300).unwrap();
    cases.push(Case {
        name: "rollback",
        ledger: "main",
        ops: vec![Op::Write { file: "checkpoint", data: old_note.clone() }],
        previous: Some(published.checkpoint.clone()),
    });
    cases.push(Case {
        name: "other-log",
        ledger: "main",
        ops: vec![],
        previous: Some(Checkpoint::new("other.example/log", 3, other_root).unwrap()),
    });

    let mut case_json = Vec::new();
    for case in &cases {
        let scratch = tempfile::tempdir().unwrap();
        copy_dir(&ledgers.join(case.ledger), scratch.path());
        for op in &case.ops {
            op.apply(scratch.path());
        }
        let signer = &main.signer;
        case_json.push(json!({
            "name": case.name,
            "ledger": case.ledger,
            "ops": case.ops.iter().map(Op::to_json).collect::<Vec<_>>(),
            "previous": case.previous.as_ref().map(checkpoint_json),
            "expect": verdict(scratch.path(), signer, case.previous.as_ref()),
        }));
    }
    let event_indexes = json!({
        "bad-event-signature": badsig_index, "unknown-key": unknown_index, "key-without-the-role": role_index,
        "payout-signed-without-the-role": payout_role_index, "payout-beyond-approval": beyond_index,
        "approval-beyond-available": overspend_index, "key-used-after-its-role-was-revoked": revoked_index,
        "duplicate-json-key": duplicate_index, "payload-missing-a-field": missing_index,
        "envelope-as-an-array": array_index,
        "approval-of-another-purposes-money": crossed_index,
        "goods-restricted-to-a-purpose-handed-out-without-it": goods_crossed_index,
        "disclosure-citing-a-wrong-figure": cited_index,
    });

    // Receipts: donor 123's, good and spoiled, with what verify_donor_receipt says.
    let donor = 123u32;
    let index = main.donation_indexes[donor as usize];
    let salt = salt_of(donor);
    let reference = donor_reference(donor);
    let receipt = published.receipt(index, Some(&salt));
    let entry = published.entries[index as usize].clone();
    let text = String::from_utf8(receipt.clone()).unwrap();
    let mut tampered = text.clone();
    let proof_line = text.lines().nth(3).unwrap().to_string();
    let mut flipped = proof_line.clone().into_bytes();
    flipped[2] = if flipped[2] == b'A' { b'B' } else { b'A' };
    tampered = tampered.replacen(&proof_line, std::str::from_utf8(&flipped).unwrap(), 1);
    let other_log = LogSigner::from_seed("other.example/log", &[1; 32]).unwrap();
    let other_note = other_log
        .sign_checkpoint(
            &Checkpoint::new("other.example/log", published.checkpoint.size, published.checkpoint.root).unwrap(),
        )
        .unwrap();
    let other =
        text.replacen(std::str::from_utf8(&published.note).unwrap(), std::str::from_utf8(&other_note).unwrap(), 1);
    let not_donation = published.receipt(0, Some(&salt));
    let receipts = [
        ("good", receipt.clone(), entry.clone(), Some(reference.clone())),
        ("good-without-reference", receipt.clone(), entry.clone(), None),
        ("wrong-reference", receipt.clone(), entry.clone(), Some("+86 138 0000 9999".to_string())),
        ("tampered-proof-hash", tampered.into_bytes(), entry.clone(), Some(reference.clone())),
        ("checkpoint-of-another-log", other.into_bytes(), entry.clone(), Some(reference.clone())),
        ("entry-not-a-donation", not_donation, published.entries[0].clone(), Some(reference.clone())),
        ("truncated", receipt[..receipt.len() / 2].to_vec(), entry.clone(), Some(reference.clone())),
        ("not-a-receipt", b"PK\x03\x04 a zip file".to_vec(), entry.clone(), Some(reference.clone())),
    ];
    let mut receipt_json = Vec::new();
    for (name, bytes, entry, reference) in receipts {
        let input =
            ReceiptInput { receipt: &bytes, entry: Some(&entry), donor_reference: reference.as_deref(), ledger: None };
        let expect = match verify_donor_receipt(&input, &main.signer.verifier(), None) {
            Ok(r) => {
                json!({"ok": true, "index": r.index, "amount_fen": r.donation.amount_fen, "channel": r.donation.channel,
                "donor_commitment": r.donation.donor_commitment, "donor_matched": r.donor_matched, "fund": r.donation.fund})
            }
            Err(e) => json!({"ok": false, "message": e.to_string()}),
        };
        receipt_json.push(json!({
            "name": name,
            "receipt": BASE64_STANDARD.encode(&bytes),
            "entry": BASE64_STANDARD.encode(&entry),
            "reference": reference,
            "expect": expect,
        }));
    }
    let link = format!("{index}/{}/{}", BASE64_URL_SAFE_NO_PAD.encode(salt), percent_encode(&reference));

    let witness = witness_vectors(&main.signer, &published);

    let vectors = json!({
        "comment": "Written by crates/fundtrail-audit/tests/portal_vectors.rs; do not edit.",
        "witness": witness,
        "vkey": main.signer.vkey(),
        "checkpoint": checkpoint_json(&published.checkpoint),
        "cases": case_json,
        "event_indexes": event_indexes,
        "receipts": receipt_json,
        "receipt_link": {"path": link, "index": index, "salt": BASE64_STANDARD.encode(salt), "reference": reference},
    });
    std::fs::write(out.join("vectors.json"), serde_json::to_string_pretty(&vectors).unwrap() + "\n").unwrap();
}

/// Witness policies (C2SP tlog-policy) and cosigned checkpoints (C2SP tlog-cosignature),
/// with what `Policy::parse` and `check_policy` (`fundtrail verify --policy`) say.
fn witness_vectors(log: &LogSigner, published: &Published) -> Value {
    let witnesses: Vec<WitnessSigner> = ["street", "bureau", "paper", "stranger"]
        .iter()
        .enumerate()
        .map(|(i, name)| WitnessSigner::from_seed(&format!("{name}.example/w"), &[40 + i as u8; 32]).unwrap())
        .collect();
    let policy_text = format!(
        "# the portal's witnesses\nlog {}\nwitness street {} https://street.example/w\nwitness bureau {}\nwitness paper {}\ngroup local 2 street bureau paper\nquorum local\n",
        log.vkey(),
        witnesses[0].vkey(),
        witnesses[1].vkey(),
        witnesses[2].vkey()
    );
    let policy = Policy::parse(policy_text.as_bytes()).unwrap();
    let checkpoint = &published.checkpoint;
    let earlier = Checkpoint::new(ORIGIN, 300, fundtrail_ledger::tree_hash(300, &published.tree).unwrap()).unwrap();
    let line = |w: usize, over: &Checkpoint, time: u64| witnesses[w].cosign(over, time).to_line();
    let with = |lines: &[String]| {
        let mut note = published.note.clone();
        for l in lines {
            note.extend_from_slice(l.as_bytes());
        }
        note
    };
    let mut forged = witnesses[1].cosign(checkpoint, 1_767_000_100);
    forged.signature[20] ^= 0x01;
    let other_log = LogSigner::from_seed("other.example/log", &[1; 32]).unwrap();
    let other_note = other_log
        .sign_checkpoint(&Checkpoint::new("other.example/log", checkpoint.size, checkpoint.root).unwrap())
        .unwrap();
    let notes: Vec<(&str, Vec<u8>)> = vec![
        ("two-of-three", with(&[line(0, checkpoint, 1_767_000_000), line(2, checkpoint, 1_767_000_200)])),
        (
            "all-three",
            with(&[
                line(0, checkpoint, 1_767_000_000),
                line(1, checkpoint, 1_767_000_100),
                line(2, checkpoint, 1_767_000_200),
            ]),
        ),
        ("forged-cosignature", with(&[line(0, checkpoint, 1_767_000_000), forged.to_line()])),
        (
            "cosignature-over-another-checkpoint",
            with(&[line(0, checkpoint, 1_767_000_000), line(1, &earlier, 1_767_000_100)]),
        ),
        (
            "unknown-witness-does-not-count",
            with(&[line(0, checkpoint, 1_767_000_000), line(3, checkpoint, 1_767_000_300)]),
        ),
        ("quorum-not-met", with(&[line(2, checkpoint, 1_767_000_200)])),
        ("no-cosignature", published.note.clone()),
        ("checkpoint-of-another-log", other_note),
    ];
    let checks: Vec<Value> = notes
        .into_iter()
        .map(|(name, note)| {
            let expect = match fundtrail_audit::check_policy(&note, &policy) {
                Ok(info) => {
                    json!({"ok": true, "quorum": info.quorum, "cosigned_by": info.cosigned_by, "missing": info.missing})
                }
                Err(e) => json!({"ok": false, "message": e.to_string()}),
            };
            json!({"name": name, "note": String::from_utf8(note).unwrap(), "expect": expect})
        })
        .collect();
    // Policies refused, each for its own reason.
    let vkey = |i: usize| witnesses[i].vkey();
    let bad_policies = [
        ("no-quorum", format!("log {}\nwitness a {}\n", log.vkey(), vkey(0))),
        ("unknown-keyword", format!("log {}\nwitnes a {}\nquorum none\n", log.vkey(), vkey(0))),
        ("undefined-member", format!("witness a {}\ngroup g 1 a b\nquorum g\n", vkey(0))),
        ("threshold-too-high", format!("witness a {}\nwitness b {}\ngroup g 3 a b\nquorum g\n", vkey(0), vkey(1))),
        ("same-witness-key-twice", format!("witness a {}\nwitness b {}\nquorum a\n", vkey(0), vkey(0))),
        ("log-key-as-witness", format!("witness a {}\nquorum a\n", log.vkey())),
        ("name-taken", format!("witness a {}\nwitness b {}\ngroup a any b\nquorum a\n", vkey(0), vkey(1))),
        ("none-is-reserved", format!("witness none {}\nquorum none\n", vkey(0))),
        ("second-quorum", format!("witness a {}\nquorum a\nquorum none\n", vkey(0))),
        ("control-character", format!("witness a {}\r\nquorum a\n", vkey(0))),
    ];
    let policies: Vec<Value> = bad_policies
        .iter()
        .map(|(name, text)| {
            let message = Policy::parse(text.as_bytes()).expect_err(name).to_string();
            json!({"name": name, "policy": text, "message": message})
        })
        .collect();
    json!({"policy": policy_text, "checks": checks, "bad_policies": policies})
}

/// Percent-encodes like JavaScript's encodeURIComponent (unreserved: A-Z a-z 0-9 - _ . ! ~ * ' ( )).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn portal_vectors_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    write_vectors(fresh.path());
    let committed = vectors_dir();
    if std::env::var_os("UPDATE_PORTAL_VECTORS").is_some() {
        if committed.exists() {
            std::fs::remove_dir_all(&committed).unwrap();
        }
        std::fs::create_dir_all(&committed).unwrap();
        copy_dir(fresh.path(), &committed);
        return;
    }
    let want = files(fresh.path());
    let have = if committed.exists() { files(&committed) } else { BTreeMap::new() };
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&have),
        names(&want),
        "portal/test/vectors is stale: run UPDATE_PORTAL_VECTORS=1 cargo test -p fundtrail-audit --test portal_vectors"
    );
    for (name, data) in &want {
        assert!(have[name] == *data, "portal/test/vectors/{name} is stale: run UPDATE_PORTAL_VECTORS=1 cargo test -p fundtrail-audit --test portal_vectors");
    }
}
