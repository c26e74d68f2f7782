//! `fundtrail verify` and `verify-receipt`, run as a donor or auditor would run them,
//! against a really signed ledger published into a directory.

use std::path::Path;
use std::process::{Command, Output};

use fundtrail_audit::testing::{donor_reference, publish_envelopes, salt_of, LedgerBuilder, Published};

fn fundtrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundtrail")).args(args).output().expect("run fundtrail")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Fixture {
    builder: LedgerBuilder,
    dir: tempfile::TempDir,
    published: Published,
    vkey: String,
}

fn fixture() -> Fixture {
    let builder = LedgerBuilder::realistic(260);
    let dir = tempfile::tempdir().unwrap();
    let published = builder.publish(dir.path(), &[]);
    let vkey = builder.signer.vkey();
    Fixture { builder, dir, published, vkey }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn verify_prints_balances_and_json_and_keeps_state() {
    let f = fixture();
    let size = f.published.checkpoint.size;
    let human = fundtrail(&["verify", "--ledger", s(f.dir.path()), "--vkey", &f.vkey]);
    assert!(human.status.success(), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(text.contains(&format!("✓ ledger fundtrail.example/ledger verified: {size} entries")), "{text}");
    assert!(text.contains("西湖街道社区发展基金"), "{text}");
    assert!(text.contains("paid out") && text.contains("¥320.00"), "{text}");
    assert!(text.contains("disclosures  0 replayed, 0 citing their year's accounts: every stated total"), "{text}");

    // --vkey from a file, --json, --state written.
    let vkey_file = f.dir.path().join("log.vkey");
    std::fs::write(&vkey_file, format!("{}\n", f.vkey)).unwrap();
    let state = f.dir.path().join("state.json");
    let json =
        fundtrail(&["verify", "--ledger", s(f.dir.path()), "--vkey", s(&vkey_file), "--state", s(&state), "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["checkpoint"]["size"], size);
    let fund = &report["funds"][0];
    let want = &f.builder.fold.state.funds.values().next().unwrap().cash;
    assert_eq!(fund["cash"]["received_fen"], want.received.fen());
    assert_eq!(fund["cash"]["paid_fen"], 32_000);
    assert_eq!(report["disclosures"], serde_json::json!({"published": 0, "citing_accounts": 0}));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["size"], size);
    assert_eq!(saved["root"], f.published.checkpoint.root.to_base64());

    // A second run against the state: consistent.
    let again = fundtrail(&["verify", "--ledger", s(f.dir.path()), "--vkey", &f.vkey, "--state", s(&state)]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("the ledger only grew"), "{}", stdout(&again));

    // A rollback against the state fails, exit code non-zero, naming the sizes.
    let old = tempfile::tempdir().unwrap();
    publish_envelopes(&f.builder.envelopes[..200], &f.builder.signer, old.path(), &[]);
    let rollback = fundtrail(&["verify", "--ledger", s(old.path()), "--vkey", &f.vkey, "--state", s(&state)]);
    assert!(!rollback.status.success());
    assert!(stderr(&rollback).contains(&format!("rollback: checkpoint of size 200 is older than the size {size}")));
}

#[test]
fn verify_fails_with_the_first_bad_index_and_cause() {
    let f = fixture();
    let bundle = f.dir.path().join("tile/entries/000");
    let mut data = std::fs::read(&bundle).unwrap();
    // Entry 0 starts at byte 2; flip a byte inside its envelope.
    data[2 + 100] ^= 0x01;
    std::fs::write(&bundle, data).unwrap();
    let out = fundtrail(&["verify", "--ledger", s(f.dir.path()), "--vkey", &f.vkey]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("verification FAILED: entry 0: entry bundle tile/entries/000: entry 0 is not the entry"),
        "{err}"
    );
    let json = fundtrail(&["verify", "--ledger", s(f.dir.path()), "--vkey", &f.vkey, "--json"]);
    assert!(!json.status.success());
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["index"], 0);

    // The wrong key: the checkpoint is refused.
    let other = fundtrail_ledger::LogSigner::from_seed("fundtrail.example/ledger", &[1; 32]).unwrap().vkey();
    let out = fundtrail(&["verify", "--ledger", s(f.dir.path()), "--vkey", &other]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("checkpoint refused"), "{}", stderr(&out));
}

#[test]
fn verify_receipt_offline_and_against_the_ledger() {
    let f = fixture();
    let index = f.builder.donation_indexes[42];
    let receipt = f.dir.path().join("receipt.txt");
    std::fs::write(&receipt, f.published.receipt(index, Some(&salt_of(42)))).unwrap();
    let entry = f.dir.path().join("entry.bin");
    std::fs::write(&entry, &f.published.entries[index as usize]).unwrap();
    let donor = 42;
    let reference = donor_reference(donor);

    let out =
        fundtrail(&["verify-receipt", s(&receipt), "--entry", s(&entry), "--donor", &reference, "--vkey", &f.vkey]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("✓ receipt verified: entry {index} is in ledger")), "{text}");
    // The builder's amount for this donor.
    let amount = 1_000 + i64::from(donor % 97) * 1_234;
    assert!(text.contains(&fundtrail_audit::format_yuan(amount)), "{text}");
    assert!(text.contains("this donation is yours"), "{text}");

    let out = fundtrail(&[
        "verify-receipt",
        s(&receipt),
        "--donor",
        &reference,
        "--ledger",
        s(f.dir.path()),
        "--vkey",
        &f.vkey,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["donor_matched"], true);
    assert_eq!(report["donation"]["amount_fen"], amount);
    assert_eq!(report["ledger"]["fund"]["cash"]["paid_fen"], 32_000);

    let wrong =
        fundtrail(&["verify-receipt", s(&receipt), "--entry", s(&entry), "--donor", "+86 139", "--vkey", &f.vkey]);
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("does not open the donor commitment"), "{}", stderr(&wrong));
}
