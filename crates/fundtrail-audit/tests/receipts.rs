//! Donors' receipts: offline with the entry, and against the ledger as it is now.

use std::sync::OnceLock;

use fundtrail_audit::testing::{donor_reference, publish_envelopes, salt_of, LedgerBuilder, Published, FUND, ORIGIN};
use fundtrail_audit::{verify_donor_receipt, Cause, DirSource, ReceiptFailure, ReceiptInput};
use fundtrail_ledger::{ConsistencyError, LogSigner, LogVerifier, ReceiptError};

fn builder() -> &'static LedgerBuilder {
    static BUILDER: OnceLock<LedgerBuilder> = OnceLock::new();
    BUILDER.get_or_init(|| LedgerBuilder::realistic(300))
}

fn log() -> LogVerifier {
    builder().signer.verifier()
}

/// The ledger at 300 entries (when the receipts were issued) and now, at 332.
struct Ledgers {
    then: Published,
    now_dir: tempfile::TempDir,
    _then_dir: tempfile::TempDir,
}

fn ledgers() -> Ledgers {
    let then_dir = tempfile::tempdir().unwrap();
    let then = publish_envelopes(&builder().envelopes[..300], &builder().signer, then_dir.path(), &[]);
    let now_dir = tempfile::tempdir().unwrap();
    builder().publish(now_dir.path(), &[300, 332]);
    Ledgers { then, now_dir, _then_dir: then_dir }
}

/// Donor 123's receipt at the 300-entry checkpoint, and the entry.
fn donor_123(l: &Ledgers) -> (u64, Vec<u8>, Vec<u8>) {
    let index = builder().donation_indexes[123];
    let receipt = l.then.receipt(index, Some(&salt_of(123)));
    (index, receipt, l.then.entries[index as usize].clone())
}

#[test]
fn a_good_receipt_verifies_offline_with_the_entry_and_the_donors_reference() {
    let l = ledgers();
    let (index, receipt, entry) = donor_123(&l);
    let reference = donor_reference(123);
    let input =
        ReceiptInput { receipt: &receipt, entry: Some(&entry), donor_reference: Some(&reference), ledger: None };
    let report = verify_donor_receipt(&input, &log(), None).unwrap();
    assert_eq!(report.index, index);
    assert_eq!(report.checkpoint.size, 300);
    assert!(report.donor_matched);
    assert_eq!(report.donation.kind, "donation.received");
    assert_eq!(report.donation.fund, FUND);
    assert_eq!(report.donation.amount_fen, 1_000 + (123 % 97) * 1_234);
    assert_eq!(report.donation.channel, "direct"); // 123 % 4 == 3
    assert!(report.ledger.is_none());

    // Without a reference, the inclusion is still proven; the donor is not checked.
    let input = ReceiptInput { donor_reference: None, ..input };
    assert!(!verify_donor_receipt(&input, &log(), None).unwrap().donor_matched);
    // Without the entry nor a ledger, there is nothing to check inclusion of.
    let input = ReceiptInput { entry: None, ..input };
    assert!(matches!(verify_donor_receipt(&input, &log(), None), Err(ReceiptFailure::NoEntry)));
}

#[test]
fn a_good_receipt_verifies_against_the_ledger_which_only_grew() {
    let l = ledgers();
    let (index, receipt, _) = donor_123(&l);
    let reference = donor_reference(123);
    let source = DirSource::new(l.now_dir.path());
    // The entry is read from the ledger's bundle; the ledger is verified in full.
    let input =
        ReceiptInput { receipt: &receipt, entry: None, donor_reference: Some(&reference), ledger: Some(&source) };
    let report = verify_donor_receipt(&input, &log(), None).unwrap();
    assert_eq!(report.index, index);
    let ledger = report.ledger.expect("a ledger view");
    assert_eq!(ledger.checkpoint.size, 332);
    let fund = ledger.fund.expect("the donation's fund");
    assert_eq!((fund.cash.paid_fen, fund.cash.reserved_fen), (32_000, 18_000));
}

#[test]
fn a_wrong_donor_reference_fails() {
    let l = ledgers();
    let (index, receipt, entry) = donor_123(&l);
    let input = ReceiptInput {
        receipt: &receipt,
        entry: Some(&entry),
        donor_reference: Some(&donor_reference(124)),
        ledger: None,
    };
    let err = verify_donor_receipt(&input, &log(), None).unwrap_err();
    assert!(matches!(err, ReceiptFailure::DonorMismatch { index: i, .. } if i == index), "{err}");
    // A receipt without the salt cannot open any commitment.
    let no_salt = l.then.receipt(index, None);
    let input = ReceiptInput { receipt: &no_salt, ..input };
    assert!(matches!(verify_donor_receipt(&input, &log(), None), Err(ReceiptFailure::NoSalt { .. })));
}

#[test]
fn a_tampered_receipt_hash_fails() {
    let l = ledgers();
    let (_, receipt, entry) = donor_123(&l);
    let text = String::from_utf8(receipt).unwrap();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    // Line 0 header, 1 extra, 2 index, 3.. proof hashes.
    let hash = &lines[4];
    let first = if hash.starts_with('A') { "B" } else { "A" };
    let flipped = format!("{first}{}", &hash[1..]);
    lines[4] = flipped;
    let tampered = lines.join("\n").into_bytes();
    let input = ReceiptInput { receipt: &tampered, entry: Some(&entry), donor_reference: None, ledger: None };
    let err = verify_donor_receipt(&input, &log(), None).unwrap_err();
    assert!(matches!(err, ReceiptFailure::Receipt(ReceiptError::Inclusion { .. })), "{err}");

    // Another entry under this receipt fails too.
    let other = l.then.entries[(builder().donation_indexes[124]) as usize].clone();
    let input = ReceiptInput { receipt: text.as_bytes(), entry: Some(&other), ..input };
    let err = verify_donor_receipt(&input, &log(), None).unwrap_err();
    assert!(matches!(err, ReceiptFailure::Receipt(ReceiptError::EntryIndexMismatch { .. })), "{err}");
}

#[test]
fn a_checkpoint_signed_by_another_key_fails() {
    let l = ledgers();
    let index = builder().donation_indexes[5];
    let impostor = LogSigner::from_seed(ORIGIN, &[8; 32]).unwrap();
    let note = impostor.sign_checkpoint(&l.then.checkpoint).unwrap();
    let proof = fundtrail_ledger::prove_inclusion(300, index, &l.then.tree).unwrap();
    let receipt = fundtrail_ledger::build_receipt(index, proof, &note, Some(salt_of(5).to_vec()));
    let entry = &l.then.entries[index as usize];
    let input = ReceiptInput { receipt: &receipt, entry: Some(entry), donor_reference: None, ledger: None };
    let err = verify_donor_receipt(&input, &log(), None).unwrap_err();
    assert!(matches!(err, ReceiptFailure::Receipt(ReceiptError::Checkpoint { .. })), "{err}");
}

#[test]
fn a_receipt_for_an_entry_that_is_not_a_donation_fails() {
    let l = ledgers();
    let receipt = l.then.receipt(3, Some(&[0; 32]));
    let input =
        ReceiptInput { receipt: &receipt, entry: Some(&l.then.entries[3]), donor_reference: None, ledger: None };
    let err = verify_donor_receipt(&input, &log(), None).unwrap_err();
    assert!(matches!(err, ReceiptFailure::NotADonation { index: 3, .. }), "{err}");
    assert!(err.to_string().contains("is a key.enrolled event"), "{err}");
}

#[test]
fn a_ledger_that_forked_away_from_the_receipt_is_caught() {
    let l = ledgers();
    let (_, receipt, _) = donor_123(&l);
    // The ledger now serves another history of 300 entries: the receipt's root is gone.
    let mut envelopes = builder().envelopes[..300].to_vec();
    envelopes.swap(200, 201);
    let dir = tempfile::tempdir().unwrap();
    publish_envelopes(&envelopes, &builder().signer, dir.path(), &[]);
    let source = DirSource::new(dir.path());
    let input = ReceiptInput { receipt: &receipt, entry: None, donor_reference: None, ledger: Some(&source) };
    let err = verify_donor_receipt(&input, &log(), None).unwrap_err();
    match err {
        ReceiptFailure::Ledger(failure) => {
            assert!(matches!(failure.cause, Cause::Consistency(ConsistencyError::Fork { size: 300, .. })), "{failure}")
        }
        other => panic!("expected a fork, got {other}"),
    }
}
