//! `verify_ledger` over a real, really signed ledger published in the C2SP tlog-tiles
//! layout, and the tamper catalogue: each fault caught, naming the first bad entry
//! and the cause.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fundtrail_audit::testing::{publish_envelopes, LedgerBuilder, Published, FUND};
use fundtrail_audit::{
    verify_ledger, Cause, DirSource, FundReport, HttpSource, Progress, Report, StateFile, VerifyFailure, VerifyOptions,
};
use fundtrail_domain::disclosure::expected_citation;
use fundtrail_domain::event::{Channel, DisclosureAccounts, DisclosurePublished, DonationReceived, EventBody};
use fundtrail_domain::testing::hash;
use fundtrail_domain::{Fen, FundId, Refusal};
use fundtrail_envelope::FoldError;
use fundtrail_ledger::{Checkpoint, ConsistencyError, LogSigner, LogVerifier};

/// 332 entries: tile/0/000 full, tile/0/001.p/76 partial, tile/1/000.p/1; published
/// through sizes 100, 256 and 300 first, so older partial tiles sit beside them.
const STEPS: [u64; 4] = [100, 256, 300, 332];

fn builder() -> &'static LedgerBuilder {
    static BUILDER: OnceLock<LedgerBuilder> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let b = LedgerBuilder::realistic(300);
        assert_eq!(b.envelopes.len(), 332);
        b
    })
}

fn publish(dir: &Path) -> Published {
    builder().publish(dir, &STEPS)
}

fn log() -> LogVerifier {
    builder().signer.verifier()
}

fn verify(dir: &Path) -> Result<Report, VerifyFailure> {
    verify_ledger(&DirSource::new(dir), &log(), VerifyOptions::default())
}

fn verify_after(dir: &Path, previous: &Checkpoint) -> Result<Report, VerifyFailure> {
    let options = VerifyOptions { previous: Some(previous.clone()), ..Default::default() };
    verify_ledger(&DirSource::new(dir), &log(), options)
}

fn fresh() -> (tempfile::TempDir, Published) {
    let dir = tempfile::tempdir().unwrap();
    let published = publish(dir.path());
    (dir, published)
}

fn path(dir: &Path, file: &str) -> PathBuf {
    dir.join(file)
}

/// Byte offset of entry `position`'s bytes in a bundle, and its length.
fn entry_span(bundle: &[u8], position: usize) -> (usize, usize) {
    let mut offset = 0;
    for _ in 0..position {
        offset += 2 + usize::from(u16::from_be_bytes([bundle[offset], bundle[offset + 1]]));
    }
    (offset + 2, usize::from(u16::from_be_bytes([bundle[offset], bundle[offset + 1]])))
}

fn edit(dir: &Path, file: &str, change: impl FnOnce(&mut Vec<u8>)) {
    let mut data = std::fs::read(path(dir, file)).unwrap();
    change(&mut data);
    std::fs::write(path(dir, file), data).unwrap();
}

#[track_caller]
fn expect_failure(result: Result<Report, VerifyFailure>) -> VerifyFailure {
    match result {
        Ok(report) => panic!("verified a bad ledger: {:?}", report.checkpoint),
        Err(failure) => failure,
    }
}

#[test]
fn an_honest_ledger_verifies_and_reports_the_folds_balances() {
    let (dir, published) = fresh();
    let mut seen = Vec::new();
    let mut progress = |p: Progress| seen.push(p);
    let options = VerifyOptions { previous: None, progress: Some(&mut progress) };
    let report = verify_ledger(&DirSource::new(dir.path()), &log(), options).unwrap();
    assert_eq!(report.checkpoint.size, 332);
    assert_eq!(report.checkpoint.root, published.checkpoint.root.to_base64());
    assert_eq!(report.entries, 332);
    assert_eq!(report.state, builder().fold.state, "the replay is the builder's fold, byte for byte");
    let fund_id = FundId::new(FUND).unwrap();
    let want = FundReport::of(&fund_id, &builder().fold.state.funds[&fund_id]);
    assert_eq!(report.funds, vec![want.clone()]);
    // And from first principles: 300 donations, ¥500 approved, ¥320 paid.
    let received: i64 = (0..300).map(|i| 1_000 + i64::from(i % 97) * 1_234).sum();
    let cash = want.cash;
    assert_eq!(cash.received_fen, received);
    assert_eq!((cash.reserved_fen, cash.paid_fen), (18_000, 32_000));
    assert_eq!(cash.available_fen, received - 50_000);
    assert_eq!(want.donations, 300);
    assert_eq!(want.channels.iter().map(|c| c.donations).sum::<u64>(), 301, "300 in cash, 1 in kind");
    assert_eq!(want.goods.received_value_fen, 120_000);
    assert_eq!(want.proposals.count, 1);
    assert_eq!(seen.first(), Some(&Progress { entries_done: 0, entries_total: 332 }));
    assert_eq!(seen.last(), Some(&Progress { entries_done: 332, entries_total: 332 }));
    // The report keeps the signed note, ready for the state file.
    assert_eq!(report.note.as_bytes(), published.note.as_slice());
}

#[test]
fn a_partial_tile_that_is_gone_is_read_from_the_full_one() {
    // The ledger grew from 300 to 532 entries; the mirror then deleted the partial
    // tiles of size 300 whose full tiles exist (C2SP tlog-tiles allows it). A reader
    // of the size-300 checkpoint uses the first 44 hashes and entries of the full ones.
    let b = LedgerBuilder::realistic(500);
    let dir = tempfile::tempdir().unwrap();
    let old = publish_envelopes(&b.envelopes[..300], &b.signer, dir.path(), &[]);
    b.publish(dir.path(), &[532]);
    for file in ["tile/0/001.p/44", "tile/entries/001.p/44"] {
        std::fs::remove_file(path(dir.path(), file)).unwrap();
    }
    assert!(path(dir.path(), "tile/0/001").exists());
    std::fs::write(path(dir.path(), "checkpoint"), &old.note).unwrap();
    let report = verify_ledger(&DirSource::new(dir.path()), &b.signer.verifier(), VerifyOptions::default()).unwrap();
    assert_eq!(report.entries, 300);
    assert_eq!(report.checkpoint.root, old.checkpoint.root.to_base64());

    // A partial tile gone with no full tile to replace it is reported, with its path.
    std::fs::remove_file(path(dir.path(), "tile/entries/002.p/20")).unwrap();
    b.publish(dir.path(), &[532]);
    std::fs::remove_file(path(dir.path(), "tile/entries/002.p/20")).unwrap();
    let failure = expect_failure(verify_ledger(&DirSource::new(dir.path()), &b.signer.verifier(), Default::default()));
    assert_eq!(failure.index, Some(512), "{failure}");
    assert!(failure.to_string().contains("tile/entries/002.p/20: not found"), "{failure}");
}

#[test]
fn a_flipped_byte_in_an_entry_names_that_entry() {
    let (dir, _) = fresh();
    edit(dir.path(), "tile/entries/001.p/76", |data| {
        let (start, len) = entry_span(data, 10);
        data[start + len / 2] ^= 0x01;
    });
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(266), "{failure}");
    assert!(matches!(failure.cause, Cause::Bundle { .. }), "{failure}");
    assert!(failure
        .to_string()
        .starts_with("entry 266: entry bundle tile/entries/001.p/76: entry 266 is not the entry"));
}

#[test]
fn a_flipped_byte_in_a_hash_tile_names_the_entry_it_lies_about() {
    let (dir, _) = fresh();
    edit(dir.path(), "tile/0/000", |data| data[7 * 32 + 3] ^= 0x80);
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(7), "{failure}");
    assert!(matches!(&failure.cause, Cause::Tile { path, .. } if path == "tile/0/000"), "{failure}");

    // An upper tile: no entry is at fault, the tiles are.
    let (dir, _) = fresh();
    edit(dir.path(), "tile/1/000.p/1", |data| data[0] ^= 0x01);
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, None, "{failure}");
    assert!(matches!(failure.cause, Cause::Tiles { .. } | Cause::Tile { .. }), "{failure}");
}

#[test]
fn a_flipped_byte_in_the_checkpoint_fails_its_signature() {
    for offset in [30, 60, 120] {
        let (dir, _) = fresh();
        edit(dir.path(), "checkpoint", |data| {
            // In the size line, the root, and the signature line (ASCII stays ASCII).
            let at = offset.min(data.len() - 2);
            data[at] = if data[at] == b'A' { b'B' } else { b'A' };
        });
        let failure = expect_failure(verify(dir.path()));
        assert_eq!(failure.index, None, "{failure}");
        assert!(matches!(failure.cause, Cause::Checkpoint(_)), "offset {offset}: {failure}");
    }
}

#[test]
fn reordered_entries_are_caught_at_the_first_one_moved() {
    let (dir, _) = fresh();
    edit(dir.path(), "tile/entries/000", |data| {
        let (a, a_len) = entry_span(data, 5);
        let (b, b_len) = entry_span(data, 6);
        let (first, second) = (data[a - 2..a + a_len].to_vec(), data[b - 2..b + b_len].to_vec());
        let mut swapped = second;
        swapped.extend_from_slice(&first);
        data.splice(a - 2..b + b_len, swapped);
    });
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(5), "{failure}");
    assert!(failure.to_string().contains("it carries index 6"), "{failure}");
}

#[test]
fn a_dropped_entry_is_caught_where_it_is_missing() {
    let (dir, _) = fresh();
    edit(dir.path(), "tile/entries/001.p/76", |data| {
        let (start, len) = entry_span(data, 44);
        data.drain(start - 2..start + len);
    });
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(300), "{failure}");
    assert!(failure.to_string().contains("it carries index 301"), "{failure}");
}

#[test]
fn truncated_bundles_name_the_first_entry_cut() {
    // Cut inside the last entry.
    let (dir, _) = fresh();
    edit(dir.path(), "tile/entries/001.p/76", |data| data.truncate(data.len() - 10));
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(331), "{failure}");
    assert!(failure.to_string().contains("entry 331 is truncated"), "{failure}");

    // The last three entries gone: a bundle shorter than its path claims.
    let (dir, _) = fresh();
    edit(dir.path(), "tile/entries/001.p/76", |data| {
        let (start, _) = entry_span(data, 73);
        data.truncate(start - 2);
    });
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(329), "{failure}");
    assert!(failure.to_string().contains("73 entries, 76 expected"), "{failure}");

    // A bundle missing altogether.
    let (dir, _) = fresh();
    std::fs::remove_file(path(dir.path(), "tile/entries/001.p/76")).unwrap();
    let failure = expect_failure(verify(dir.path()));
    assert_eq!(failure.index, Some(256), "{failure}");
    assert!(matches!(failure.cause, Cause::Fetch { .. }), "{failure}");
}

/// A second history of the same size, signed by the same log key: entry 40 pays
/// another amount.
fn forked(dir: &Path) -> Published {
    let mut envelopes = builder().envelopes.clone();
    let mut b = LedgerBuilder::with_fund();
    let salt = [9u8; 32];
    // Re-sign entry 40 as a different donation by the same intake key.
    let body = EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::yuan(1),
        channel: Channel::Direct,
        donor: fundtrail_domain::donor_commitment(&salt, "someone else"),
        payment_ref: "FORK".into(),
        pledge: None,
        restricted_purpose: None,
    });
    envelopes[40] = b.sign("intake", FUND, body);
    publish_envelopes(&envelopes, &builder().signer, dir, &[])
}

#[test]
fn the_state_file_catches_a_fork_and_a_rollback_and_accepts_growth() {
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("verifier.json");
    let log = log();

    // First run at size 300: remembered.
    let old = tempfile::tempdir().unwrap();
    publish_envelopes(&builder().envelopes[..300], &builder().signer, old.path(), &[]);
    let report = verify(old.path()).unwrap();
    let old_checkpoint = log.verify_checkpoint(report.note.as_bytes()).unwrap();
    let checkpoint =
        Checkpoint::parse_body(&format!("{}\n300\n{}\n", report.checkpoint.origin, report.checkpoint.root));
    assert_eq!(checkpoint.as_ref(), Ok(&old_checkpoint));
    StateFile::of(&old_checkpoint, &report.note).save(&state).unwrap();
    assert_eq!(StateFile::load(&state, &log).unwrap(), Some(old_checkpoint.clone()));

    // Growth to 332: consistent (proof from the tiles, and the first 300 entries' root).
    let (dir, _) = fresh();
    let report = verify_after(dir.path(), &old_checkpoint).unwrap();
    assert_eq!(report.consistent_with.as_ref().map(|c| c.size), Some(300));
    let new_checkpoint = log.verify_checkpoint(report.note.as_bytes()).unwrap();

    // A fork: the same size, another root.
    let fork = tempfile::tempdir().unwrap();
    forked(fork.path());
    let failure = expect_failure(verify_after(fork.path(), &new_checkpoint));
    assert_eq!(failure.index, None);
    assert!(matches!(failure.cause, Cause::Consistency(ConsistencyError::Fork { size: 332, .. })), "{failure}");
    assert!(failure.to_string().starts_with("fork: two checkpoints of size 332"), "{failure}");

    // A fork that also grew: the old root is not a prefix of the new tree.
    let failure = expect_failure(verify_after(fork.path(), &old_checkpoint));
    assert!(
        matches!(
            failure.cause,
            Cause::Consistency(ConsistencyError::Inconsistent { old_size: 300, new_size: 332, .. })
        ),
        "{failure}"
    );

    // A rollback: the ledger now shows 300 entries after we saw 332.
    let failure = expect_failure(verify_after(old.path(), &new_checkpoint));
    assert!(
        matches!(failure.cause, Cause::Consistency(ConsistencyError::Rollback { old_size: 332, new_size: 300 })),
        "{failure}"
    );
}

#[test]
fn a_state_file_for_another_log_or_with_a_forged_note_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let other = LogSigner::from_seed("other.example/log", &[1; 32]).unwrap();
    let cp = Checkpoint::new("other.example/log", 3, fundtrail_ledger::EMPTY_ROOT).unwrap();
    let note = String::from_utf8(other.sign_checkpoint(&cp).unwrap()).unwrap();
    StateFile::of(&cp, &note).save(&state).unwrap();
    let err = StateFile::load(&state, &log()).unwrap_err();
    assert!(err.to_string().contains("is for log \"other.example/log\""), "{err}");

    let ours = Checkpoint::new(fundtrail_audit::testing::ORIGIN, 3, fundtrail_ledger::EMPTY_ROOT).unwrap();
    let mut forged =
        StateFile::of(&ours, &String::from_utf8(builder().signer.sign_checkpoint(&ours).unwrap()).unwrap());
    forged.size = 4;
    forged.save(&state).unwrap();
    let err = StateFile::load(&state, &log()).unwrap_err();
    assert!(err.to_string().contains("differ from the note's"), "{err}");
    assert_eq!(StateFile::load(&dir.path().join("absent.json"), &log()).unwrap(), None);
}

#[test]
fn a_donation_signed_by_a_key_without_the_role_is_caught_by_the_fold() {
    // Honest in every format: re-signed, the tree and checkpoint rebuilt and signed.
    let mut b = LedgerBuilder::realistic(240);
    let body = EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::yuan(88),
        channel: Channel::Direct,
        donor: hash("a donor"),
        payment_ref: "WX-BAD".into(),
        pledge: None,
        restricted_purpose: None,
    });
    let bad = b.sign("proposer", FUND, body);
    let index = b.push_unfolded(bad);
    for i in 0..20 {
        b.donate(Fen::yuan(10 + i), Channel::Direct, &[3; 32], "later donor");
    }
    let dir = tempfile::tempdir().unwrap();
    b.publish(dir.path(), &[]);
    let failure = expect_failure(verify_ledger(&DirSource::new(dir.path()), &b.signer.verifier(), Default::default()));
    assert_eq!(failure.index, Some(index), "{failure}");
    match &failure.cause {
        Cause::Fold(FoldError::Rule { seq, type_name, source, .. }) => {
            assert_eq!(*seq, index + 1);
            assert_eq!(*type_name, "donation.received");
            let refusal: &Refusal = source;
            assert!(refusal.is_authorisation(), "{refusal}");
            assert!(matches!(refusal, Refusal::NotAuthorised { .. }), "{refusal}");
        }
        other => panic!("expected the fold to refuse the role, got {other}"),
    }
}

/// A v2 disclosure by a committee member, citing the accounts of the builder's fold now,
/// with `tamper` applied to the citation.
fn disclosure(b: &LedgerBuilder, tamper: impl FnOnce(&mut DisclosureAccounts)) -> EventBody {
    let fund = FundId::new(FUND).unwrap();
    let state = &b.fold.state.funds[&fund];
    let end = state.opened_at + chrono::Duration::minutes(30);
    let mut accounts = expected_citation(&fund, state, &end).unwrap();
    tamper(&mut accounts);
    EventBody::DisclosurePublished(DisclosurePublished {
        period_start: state.opened_at,
        period_end: end,
        totals: fundtrail_domain::rules::totals_of(state).unwrap(),
        report: hash("report"),
        accounts: Some(Box::new(accounts)),
    })
}

#[test]
fn a_disclosure_citing_a_figure_the_replay_does_not_give_is_caught_at_its_entry() {
    // Honest in every format (signed by a committee member, tree and checkpoint signed):
    // only the cited figure is wrong, and only the replay of the rules can tell.
    let mut b = LedgerBuilder::realistic(40);
    let honest = disclosure(&b, |_| {});
    b.given("c2", FUND, honest);
    let actual = {
        let EventBody::DisclosurePublished(d) = disclosure(&b, |_| {}) else { unreachable!() };
        d.accounts.unwrap().net_assets_unrestricted_fen
    };
    let tampered = disclosure(&b, |a| a.net_assets_unrestricted_fen = Fen::new(actual.fen() + 1).unwrap());
    let bad = b.sign("c3", FUND, tampered);
    let index = b.push_unfolded(bad);
    b.donate(Fen::yuan(10), Channel::Direct, &[4; 32], "later donor");
    let dir = tempfile::tempdir().unwrap();
    b.publish(dir.path(), &[]);
    let failure = expect_failure(verify_ledger(&DirSource::new(dir.path()), &b.signer.verifier(), Default::default()));
    assert_eq!(failure.index, Some(index), "{failure}");
    match &failure.cause {
        Cause::Fold(FoldError::Rule { type_name, source, .. }) => {
            assert_eq!(*type_name, "disclosure.published");
            let refusal: &Refusal = source;
            assert_eq!(
                refusal,
                &Refusal::DisclosureAccountsMismatch {
                    year: 2026,
                    figure: "net_assets_unrestricted_fen".into(),
                    stated: Fen::new(actual.fen() + 1).unwrap(),
                    actual,
                }
            );
        }
        other => panic!("expected the fold to refuse the citation, got {other}"),
    }

    // Without the tampered entry, the same ledger verifies and the report says what was checked.
    let mut b = LedgerBuilder::realistic(40);
    let honest = disclosure(&b, |_| {});
    b.given("c2", FUND, honest);
    let dir = tempfile::tempdir().unwrap();
    b.publish(dir.path(), &[]);
    let report = verify_ledger(&DirSource::new(dir.path()), &b.signer.verifier(), Default::default()).unwrap();
    assert_eq!(report.disclosures.published, 1);
    assert_eq!(report.disclosures.citing_accounts, 1);
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let (dir, published) = fresh();
    let impostor = LogSigner::from_seed(fundtrail_audit::testing::ORIGIN, &[8; 32]).unwrap();
    std::fs::write(path(dir.path(), "checkpoint"), impostor.sign_checkpoint(&published.checkpoint).unwrap()).unwrap();
    let failure = expect_failure(verify(dir.path()));
    assert!(matches!(failure.cause, Cause::Checkpoint(_)), "{failure}");
    assert!(failure.to_string().contains("not signed by the known key"), "{failure}");
}

/// A tiny static file server for the test: `GET /ledger/<path>` serves `<dir>/<path>`.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
            }
            let target = request.split_whitespace().nth(1).unwrap_or("");
            let file = target.strip_prefix("/ledger/").filter(|p| !p.contains("..")).map(|p| dir.join(p));
            let response = match file.and_then(|f| std::fs::read(f).ok()) {
                Some(body) => {
                    let mut r =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{address}/ledger")
}

#[test]
fn the_same_ledger_verifies_over_http() {
    let (dir, published) = fresh();
    let base = serve(dir.path().to_path_buf());
    let source = HttpSource::new(&base).unwrap();
    let report = verify_ledger(&source, &log(), VerifyOptions::default()).unwrap();
    assert_eq!(report.checkpoint.root, published.checkpoint.root.to_base64());
    assert_eq!(report.state, builder().fold.state);

    // Tampering over HTTP is caught the same way, and a missing file names its URL.
    edit(dir.path(), "tile/0/000", |data| data[7 * 32] ^= 1);
    let failure = expect_failure(verify_ledger(&source, &log(), VerifyOptions::default()));
    assert_eq!(failure.index, Some(7), "{failure}");
    std::fs::remove_file(path(dir.path(), "checkpoint")).unwrap();
    let failure = expect_failure(verify_ledger(&source, &log(), VerifyOptions::default()));
    assert_eq!(failure.to_string(), format!("cannot read {base}/checkpoint: not found"));
    let nobody = HttpSource::new("http://127.0.0.1:9/ledger").unwrap();
    let failure = expect_failure(verify_ledger(&nobody, &log(), VerifyOptions::default()));
    assert!(failure.to_string().contains("http://127.0.0.1:9/ledger/checkpoint"), "{failure}");
}
