//! The auditor's procedures (`audit`, `audit_receipt`) over a really signed ledger in
//! a directory and a real witness policy (C2SP tlog-policy, tlog-cosignature): an
//! unwitnessed checkpoint is refused before anything is replayed and leaves the state
//! file alone; a witnessed one passes, names its witnesses and extends the state file.

use std::path::Path;
use std::sync::OnceLock;

use fundtrail_audit::testing::{salt_of, LedgerBuilder, Published};
use fundtrail_audit::{
    audit, audit_receipt, AuditError, AuditRequest, DirSource, Progress, ReceiptAuditError, ReceiptInput, Threads,
};
use fundtrail_ledger::{LogVerifier, Policy, WitnessSigner};

fn builder() -> &'static LedgerBuilder {
    static BUILDER: OnceLock<LedgerBuilder> = OnceLock::new();
    BUILDER.get_or_init(|| LedgerBuilder::realistic(40))
}

fn log() -> LogVerifier {
    builder().signer.verifier()
}

/// Three witnesses, each with a key generated for this run (the OS RNG).
fn witnesses() -> Vec<WitnessSigner> {
    ["street", "bureau", "paper"]
        .iter()
        .map(|name| {
            let seed: [u8; 32] = rand_seed();
            WitnessSigner::from_seed(&format!("{name}.example/w"), &seed).unwrap()
        })
        .collect()
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).expect("the OS RNG");
    seed
}

/// The policy a verifier holds: this log, the three witnesses, two of three.
fn policy(witnesses: &[WitnessSigner]) -> Policy {
    let mut text = format!("log {}\n", builder().signer.vkey());
    for (w, name) in witnesses.iter().zip(["street", "bureau", "paper"]) {
        text.push_str(&format!("witness {name} {}\n", w.vkey()));
    }
    text.push_str("group local 2 street bureau paper\nquorum local\n");
    Policy::parse(text.as_bytes()).unwrap()
}

/// Publishes the ledger in `dir`, its checkpoint cosigned by `cosigners` of `witnesses`.
fn publish(dir: &Path, witnesses: &[WitnessSigner], cosigners: &[usize]) -> Published {
    let published = builder().publish(dir, &[]);
    let mut note = published.note.clone();
    for &w in cosigners {
        note.extend_from_slice(witnesses[w].cosign(&published.checkpoint, 1_767_000_000).to_line().as_bytes());
    }
    std::fs::write(dir.join("checkpoint"), &note).unwrap();
    Published { note, ..published }
}

/// A published ledger cosigned by `cosigners`, its witnesses and the policy naming them.
struct World {
    dir: tempfile::TempDir,
    witnesses: Vec<WitnessSigner>,
    policy: Policy,
    published: Published,
    source: DirSource,
}

fn world(cosigners: &[usize]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let witnesses = witnesses();
    let policy = policy(&witnesses);
    let published = publish(&dir.path().join("ledger"), &witnesses, cosigners);
    let source = DirSource::new(dir.path().join("ledger"));
    World { dir, witnesses, policy, published, source }
}

fn request<'a>(
    log: &'a LogVerifier,
    policy: Option<&'a Policy>,
    ledger: &'a DirSource,
    state: &'a Path,
) -> AuditRequest<'a> {
    AuditRequest { log, policy, ledger: Some(ledger), nats: None, state: Some(state), threads: Threads::available() }
}

#[test]
fn an_unwitnessed_ledger_is_refused_before_its_replay_and_leaves_the_state_file_alone() {
    // One cosignature of the two the quorum needs.
    let World { dir, policy, source, .. } = world(&[1]);
    let state = dir.path().join("state");
    let log = log();
    let mut calls = 0;
    let mut progress = |_: Progress| calls += 1;
    let err = audit(&request(&log, Some(&policy), &source, &state), Some(&mut progress)).err().expect("refused");
    assert!(matches!(err, AuditError::Unwitnessed(_)), "{err}");
    assert!(err.is_verdict());
    assert!(err.to_string().starts_with("the ledger's checkpoint: "), "{err}");
    assert_eq!(calls, 0, "nothing was replayed");
    assert!(!state.exists(), "the state file is untouched");

    // The same ledger without a policy is verified.
    let audited = audit(&request(&log, None, &source, &state), None).expect("verified");
    assert!(audited.witnesses.is_none());
    assert!(state.exists());
}

#[test]
fn a_witnessed_ledger_passes_names_its_witnesses_and_extends_the_state_file() {
    let World { dir, policy, published, source, .. } = world(&[0, 2]);
    let state = dir.path().join("state");
    let log = log();
    let audited = audit(&request(&log, Some(&policy), &source, &state), None).expect("verified");
    assert_eq!(audited.report.entries, builder().envelopes.len() as u64);
    let info = audited.witnesses.expect("witnessed");
    let mut names: Vec<&str> = info.cosigned_by.iter().map(|c| c.witness.as_str()).collect();
    names.sort();
    assert_eq!(names, ["paper", "street"]);
    let remembered = fundtrail_audit::StateFile::load(&state, &log).unwrap().expect("a state file");
    assert_eq!(remembered, published.checkpoint);

    // Run again: the state file's checkpoint is extended (here: equal), and kept.
    let again = audit(&request(&log, Some(&policy), &source, &state), None).expect("verified again");
    assert!(again.report.consistent_with.is_some(), "checked against the state file");
}

#[test]
fn nothing_to_verify_is_not_a_verdict() {
    let log = log();
    let request =
        AuditRequest { log: &log, policy: None, ledger: None, nats: None, state: None, threads: Threads::available() };
    let err = audit(&request, None).err().expect("nothing to verify");
    assert!(matches!(err, AuditError::NothingToVerify), "{err}");
    assert!(!err.is_verdict());
}

#[test]
fn a_receipt_whose_checkpoint_is_not_witnessed_is_refused() {
    let World { witnesses, policy, published, source, dir: _dir } = world(&[0, 1]);
    let index = builder().donation_indexes[5];
    let proof = fundtrail_ledger::prove_inclusion(published.checkpoint.size, index, &published.tree).unwrap();
    let entry = &published.entries[index as usize];
    let log = log();
    // The receipt's checkpoint carries one cosignature: not the quorum.
    let mut lonely = builder().signer.sign_checkpoint(&published.checkpoint).unwrap();
    lonely.extend_from_slice(witnesses[2].cosign(&published.checkpoint, 1_767_000_000).to_line().as_bytes());
    let receipt = fundtrail_ledger::build_receipt(index, proof.clone(), &lonely, Some(salt_of(5).to_vec()));
    let input = ReceiptInput { receipt: &receipt, entry: Some(entry), donor_reference: None, ledger: None };
    let err = audit_receipt(&input, &log, Some(&policy), None).err().expect("refused");
    assert!(matches!(err, ReceiptAuditError::Unwitnessed { what: "the receipt's checkpoint", .. }), "{err}");
    assert!(err.is_verdict());

    // Cosigned by two, against the witnessed ledger: it passes and names them.
    let receipt = fundtrail_ledger::build_receipt(index, proof, &published.note, Some(salt_of(5).to_vec()));
    let input = ReceiptInput { receipt: &receipt, entry: Some(entry), donor_reference: None, ledger: Some(&source) };
    let audited = audit_receipt(&input, &log, Some(&policy), None).expect("verified");
    assert_eq!(audited.witnesses.expect("witnessed").cosigned_by.len(), 2);
    assert_eq!(audited.report.index, index);
}
