//! Opening envelopes on several threads changes nothing: every ledger of the tamper
//! catalogue, and ledgers whose keys are enrolled inside a parallel window, give the
//! same report or the same failure (entry index, cause, message) on 1 and on N threads.

use std::path::Path;

use base64::Engine;
use fundtrail_audit::parallel::WINDOW_ENTRIES_MAX;
use fundtrail_audit::testing::{publish_envelopes, LedgerBuilder, FUND};
use fundtrail_audit::{verify_ledger_with, DirSource, Report, Threads, VerifyFailure, VerifyOptions};
use fundtrail_domain::event::{Channel, DonationReceived, EventBody, KeyEnrolled, Role, RoleGranted};
use fundtrail_domain::ids::HOST_SCOPE;
use fundtrail_domain::Fen;
use fundtrail_envelope::{EnvelopeError, FoldError};
use fundtrail_ledger::{Checkpoint, LogVerifier};

use crate::catalogue::Tamper;

/// Thread counts compared with one thread: more than this machine may have, too.
const THREADS: [usize; 2] = [2, 5];

type Outcome = Result<Report, VerifyFailure>;

fn verify_on(dir: &Path, log: &LogVerifier, previous: Option<&Checkpoint>, threads: usize) -> Outcome {
    let options = VerifyOptions { previous: previous.cloned(), progress: None };
    verify_ledger_with(&DirSource::new(dir), log, options, Threads::new(threads).unwrap())
}

/// Everything a caller can see of an outcome but the state, as text.
fn seen(outcome: &Outcome) -> String {
    match outcome {
        Ok(report) => format!(
            "ok {:?} {:?} {} {:?} {:?}",
            report.checkpoint, report.consistent_with, report.entries, report.funds, report.note
        ),
        Err(failure) => format!("failed at {:?}: {failure} / {:?}", failure.index, failure.cause),
    }
}

/// Verifies on 1 and on each of [`THREADS`]; all must agree. Returns the outcome.
#[track_caller]
fn same_on_every_thread_count(dir: &Path, log: &LogVerifier, previous: Option<&Checkpoint>) -> Outcome {
    let one = verify_on(dir, log, previous, 1);
    for threads in THREADS {
        let many = verify_on(dir, log, previous, threads);
        assert_eq!(seen(&one), seen(&many), "1 thread and {threads} threads disagree");
        if let (Ok(one), Ok(many)) = (&one, &many) {
            assert!(one.state == many.state, "1 thread and {threads} threads replay different states");
        }
    }
    one
}

mod catalogue {
    //! The tamper catalogue of `tests/verify.rs`, as edits of a published ledger.
    use super::*;

    pub type Tamper = (&'static str, fn(&Path));

    fn edit(dir: &Path, file: &str, change: impl FnOnce(&mut Vec<u8>)) {
        let path = dir.join(file);
        let mut data = std::fs::read(&path).unwrap();
        change(&mut data);
        std::fs::write(path, data).unwrap();
    }

    fn entry_span(bundle: &[u8], position: usize) -> (usize, usize) {
        let mut offset = 0;
        for _ in 0..position {
            offset += 2 + usize::from(u16::from_be_bytes([bundle[offset], bundle[offset + 1]]));
        }
        (offset + 2, usize::from(u16::from_be_bytes([bundle[offset], bundle[offset + 1]])))
    }

    pub const ALL: &[Tamper] = &[
        ("nothing", |_| {}),
        ("a flipped byte in an entry", |d| {
            edit(d, "tile/entries/001.p/76", |data| {
                let (start, len) = entry_span(data, 10);
                data[start + len / 2] ^= 0x01;
            })
        }),
        ("a flipped byte in a level-0 tile", |d| edit(d, "tile/0/000", |data| data[7 * 32 + 3] ^= 0x80)),
        ("a flipped byte in an upper tile", |d| edit(d, "tile/1/000.p/1", |data| data[0] ^= 0x01)),
        ("a flipped byte in the checkpoint", |d| {
            edit(d, "checkpoint", |data| data[60] = if data[60] == b'A' { b'B' } else { b'A' })
        }),
        ("two entries swapped", |d| {
            edit(d, "tile/entries/000", |data| {
                let (a, a_len) = entry_span(data, 5);
                let (b, b_len) = entry_span(data, 6);
                let (first, second) = (data[a - 2..a + a_len].to_vec(), data[b - 2..b + b_len].to_vec());
                let mut swapped = second;
                swapped.extend_from_slice(&first);
                data.splice(a - 2..b + b_len, swapped);
            })
        }),
        ("an entry dropped", |d| {
            edit(d, "tile/entries/001.p/76", |data| {
                let (start, len) = entry_span(data, 44);
                data.drain(start - 2..start + len);
            })
        }),
        ("a bundle cut inside its last entry", |d| {
            edit(d, "tile/entries/001.p/76", |data| data.truncate(data.len() - 10))
        }),
        ("a bundle missing its last three entries", |d| {
            edit(d, "tile/entries/001.p/76", |data| {
                let (start, _) = entry_span(data, 73);
                data.truncate(start - 2);
            })
        }),
        ("a bundle missing", |d| std::fs::remove_file(d.join("tile/entries/001.p/76")).unwrap()),
        ("a level-0 tile missing", |d| std::fs::remove_file(d.join("tile/0/001.p/76")).unwrap()),
    ];
}

#[test]
fn the_tamper_catalogue_fails_alike_on_any_number_of_threads() {
    let b = LedgerBuilder::realistic(300);
    let log = b.signer.verifier();
    let tampers: &[Tamper] = catalogue::ALL;
    for (name, tamper) in tampers {
        let dir = tempfile::tempdir().unwrap();
        b.publish(dir.path(), &[100, 256, 300, 332]);
        tamper(dir.path());
        let outcome = same_on_every_thread_count(dir.path(), &log, None);
        assert_eq!(outcome.is_ok(), *name == "nothing", "{name}: {}", seen(&outcome));
    }

    // Against an earlier checkpoint: growth, a fork, a rollback.
    let old_dir = tempfile::tempdir().unwrap();
    let old = publish_envelopes(&b.envelopes[..300], &b.signer, old_dir.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let new = b.publish(dir.path(), &[]);
    assert!(same_on_every_thread_count(dir.path(), &log, Some(&old.checkpoint)).is_ok());
    assert!(same_on_every_thread_count(old_dir.path(), &log, Some(&new.checkpoint)).is_err());
    let mut forked = b.envelopes.clone();
    forked.swap(40, 41);
    let fork_dir = tempfile::tempdir().unwrap();
    publish_envelopes(&forked, &b.signer, fork_dir.path(), &[]);
    assert!(same_on_every_thread_count(fork_dir.path(), &log, Some(&new.checkpoint)).is_err());
    // On its own, the other history is a valid ledger.
    assert!(same_on_every_thread_count(fork_dir.path(), &log, None).is_ok());
}

fn donation(n: i64) -> EventBody {
    EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::yuan(10 + n),
        channel: Channel::Direct,
        donor: fundtrail_domain::testing::hash(&format!("donor {n}")),
        payment_ref: format!("WX-P{n:05}"),
        pledge: None,
        restricted_purpose: None,
    })
}

/// The envelope with one bit of its signature flipped.
fn bad_signature(envelope: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut value: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    let sig = value["signatures"][0]["sig"].as_str().unwrap();
    let mut raw = b64.decode(sig).unwrap();
    raw[10] ^= 0x04;
    value["signatures"][0]["sig"] = b64.encode(raw).into();
    serde_json::to_vec(&value).unwrap()
}

/// What comes after the first `prefix` entries of a long ledger.
enum Then {
    /// A second intake key enrolled and granted its role, then donations by it.
    Enrolled,
    /// The same, with a bad signature by the new key right after its role.
    BadSignatureAfterEnrolment,
    /// A donation by the new key before it is enrolled.
    UsedBeforeEnrolment,
    /// A bad signature by a key enrolled long before.
    BadSignatureByOldKey,
    /// A donation by a key never enrolled.
    NeverEnrolled,
}

/// A ledger longer than one window: `prefix` entries (the fund and its donations),
/// then `then`, then donations by both intake keys. Returns it and the index of the
/// bad entry, if any.
fn long_ledger(prefix: usize, then: Then) -> (LedgerBuilder, Option<u64>) {
    let mut b = LedgerBuilder::with_fund();
    let mut n = 0;
    while b.envelopes.len() < prefix {
        b.given("intake", FUND, donation(n));
        n += 1;
    }
    let key = b.key_id("intake-2");
    let public_key = b.key("intake-2").public_key_b64();
    let enrol = EventBody::KeyEnrolled(KeyEnrolled { key: key.clone(), public_key, label: "intake 2".into() });
    let grant = EventBody::RoleGranted(RoleGranted { key, role: Role::Intake });
    let mut bad = None;
    match then {
        Then::Enrolled | Then::BadSignatureAfterEnrolment => {
            b.given("admin", HOST_SCOPE, enrol);
            b.given("admin", FUND, grant);
            if matches!(then, Then::BadSignatureAfterEnrolment) {
                let envelope = b.sign("intake-2", FUND, donation(n));
                bad = Some(b.push_unfolded(bad_signature(&envelope)));
                n += 1;
            }
        }
        Then::UsedBeforeEnrolment => {
            let envelope = b.sign("intake-2", FUND, donation(n));
            bad = Some(b.push_unfolded(envelope));
            n += 1;
            b.given("admin", HOST_SCOPE, enrol);
            b.given("admin", FUND, grant);
        }
        Then::BadSignatureByOldKey => {
            let envelope = b.sign("intake", FUND, donation(n));
            bad = Some(b.push_unfolded(bad_signature(&envelope)));
            n += 1;
        }
        Then::NeverEnrolled => {
            let envelope = b.sign("stranger", FUND, donation(n));
            bad = Some(b.push_unfolded(envelope));
            n += 1;
        }
    }
    for _ in 0..40 {
        let author = if bad.is_none() && n % 2 == 0 { "intake-2" } else { "intake" };
        b.given(author, FUND, donation(n));
        n += 1;
    }
    (b, bad)
}

#[track_caller]
fn check_long(prefix: usize, then: Then, want: Option<EnvelopeError>) {
    let (b, bad) = long_ledger(prefix, then);
    let dir = tempfile::tempdir().unwrap();
    b.publish(dir.path(), &[]);
    let outcome = same_on_every_thread_count(dir.path(), &b.signer.verifier(), None);
    match (outcome, bad, want) {
        (Ok(report), None, None) => {
            assert_eq!(report.entries, b.envelopes.len() as u64);
            assert_eq!(report.state, b.fold.state, "the replay is the builder's fold");
        }
        (Err(failure), Some(index), Some(want)) => {
            assert_eq!(failure.index, Some(index), "{failure}");
            match &failure.cause {
                fundtrail_audit::Cause::Fold(FoldError::Envelope { seq, source }) => {
                    assert_eq!(*seq, index + 1);
                    assert_eq!(std::mem::discriminant(source), std::mem::discriminant(&want), "{failure}");
                }
                other => panic!("expected {want}, got {other}"),
            }
        }
        (outcome, bad, want) => panic!("bad entry {bad:?}, expected {want:?}, got {}", seen(&outcome)),
    }
}

/// Where the second window starts, and a point in its middle.
const SECOND_WINDOW: usize = WINDOW_ENTRIES_MAX;
const MID_SECOND_WINDOW: usize = WINDOW_ENTRIES_MAX + 700;

#[test]
fn a_key_enrolled_inside_a_window_is_used_right_after_it() {
    // In the middle of the first window (which is opened against an empty fold), and
    // of the second (opened while the first is applied).
    check_long(600, Then::Enrolled, None);
    check_long(MID_SECOND_WINDOW, Then::Enrolled, None);
    // As the last entries of a window, used in the next.
    check_long(SECOND_WINDOW - 2, Then::Enrolled, None);
}

#[test]
fn a_bad_signature_right_after_an_enrolment_fails_at_that_entry() {
    let bad = EnvelopeError::BadSignature(fundtrail_domain::KeyId::new("0".repeat(32)).unwrap());
    check_long(MID_SECOND_WINDOW, Then::BadSignatureAfterEnrolment, Some(bad.clone()));
    check_long(SECOND_WINDOW - 2, Then::BadSignatureAfterEnrolment, Some(bad.clone()));
    check_long(MID_SECOND_WINDOW, Then::BadSignatureByOldKey, Some(bad));
}

#[test]
fn a_key_used_before_its_enrolment_or_never_enrolled_is_unknown() {
    let unknown = EnvelopeError::UnknownKey(fundtrail_domain::KeyId::new("0".repeat(32)).unwrap());
    check_long(MID_SECOND_WINDOW, Then::UsedBeforeEnrolment, Some(unknown.clone()));
    check_long(MID_SECOND_WINDOW, Then::NeverEnrolled, Some(unknown));
}
