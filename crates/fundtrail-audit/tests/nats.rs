//! `verify_nats` against a real nats-server (started by the test harness): the stream
//! replayed with an ordered consumer, its prefix root compared with the checkpoint.

use fundtrail_audit::testing::{publish_envelopes, LedgerBuilder};
use fundtrail_audit::{verify_nats, Cause, DirSource, VerifyOptions};
use fundtrail_domain::subject::SubjectVersion;
use fundtrail_store::{AppendRequest, CheckpointLog, EventLog, JetStreamLog, StreamSettings};
use fundtrail_testkit::NatsServer;

/// Appends every envelope as the service would: subject and msg id from the event.
async fn append_all(log: &JetStreamLog, b: &LedgerBuilder) {
    append_all_in(log, b, |_| SubjectVersion::V2).await
}

/// Appends every envelope, envelope `i` on its subject in `version(i)`.
async fn append_all_in(log: &JetStreamLog, b: &LedgerBuilder, version: impl Fn(usize) -> SubjectVersion) {
    let requests: Vec<AppendRequest> = b
        .envelopes
        .iter()
        .enumerate()
        .map(|(i, envelope)| {
            let event = b.fold.open(envelope).expect("opens").event;
            AppendRequest {
                subject: event.subject_in(version(i)),
                msg_id: event.id.to_string(),
                payload: envelope.clone(),
                expect: None,
            }
        })
        .collect();
    for batch in requests.chunks(100) {
        log.append_batch(batch.to_vec()).await.expect("append");
    }
}

#[test]
fn the_stream_replays_to_the_published_checkpoint() {
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN, see scripts/test.sh)");
    let b = LedgerBuilder::realistic(280);
    let size = b.envelopes.len() as u64;
    let prefix_dir = tempfile::tempdir().unwrap();
    let prefix = publish_envelopes(&b.envelopes[..300], &b.signer, prefix_dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("connect");
        append_all(&log, &b).await;
        log.publish_checkpoint(prefix.note.clone()).await.expect("publish checkpoint");
    });
    let verifier = b.signer.verifier();

    // The latest checkpoint on NATS (size 300) against the whole stream (312).
    let report = verify_nats(&server.url(), None, &verifier, VerifyOptions::default()).unwrap();
    assert_eq!(report.checkpoint.size, 300);
    assert_eq!(report.entries, size);
    assert_eq!(report.state, b.fold.state);

    // The checkpoint of a published ledger instead, and consistency with a state.
    let dir = tempfile::tempdir().unwrap();
    let full = b.publish(dir.path(), &[]);
    let source = DirSource::new(dir.path());
    let options = VerifyOptions { previous: Some(prefix.checkpoint.clone()), ..Default::default() };
    let report = verify_nats(&server.url(), Some(&source), &verifier, options).unwrap();
    assert_eq!(report.checkpoint.size, size);
    assert_eq!(report.checkpoint.root, full.checkpoint.root.to_base64());

    // A checkpoint of another history of 300 entries does not match the stream's prefix.
    let mut forked = b.envelopes[..300].to_vec();
    forked.swap(100, 101);
    let fork_dir = tempfile::tempdir().unwrap();
    publish_envelopes(&forked, &b.signer, fork_dir.path(), &[]);
    let failure =
        verify_nats(&server.url(), Some(&DirSource::new(fork_dir.path())), &verifier, Default::default()).unwrap_err();
    assert!(matches!(failure.cause, Cause::Root { size: 300, .. }), "{failure}");

    // A checkpoint larger than the stream.
    let more = b.envelopes.iter().cloned().chain(std::iter::once(b.envelopes[5].clone())).collect::<Vec<_>>();
    let more_dir = tempfile::tempdir().unwrap();
    publish_envelopes(&more, &b.signer, more_dir.path(), &[]);
    let failure =
        verify_nats(&server.url(), Some(&DirSource::new(more_dir.path())), &verifier, Default::default()).unwrap_err();
    assert!(failure.to_string().contains(&format!("the stream only {size} messages")), "{failure}");
}

/// A stream an older release began (v1 subjects, one per donation) and this one
/// continued (v2): verified exactly as the same history on v2 subjects alone.
#[test]
fn a_stream_of_both_subject_versions_replays_identically() {
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN, see scripts/test.sh)");
    let b = LedgerBuilder::realistic(60);
    let size = b.envelopes.len() as u64;
    let half = b.envelopes.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let published = b.publish(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("connect");
        append_all_in(&log, &b, |i| if i < half { SubjectVersion::V1 } else { SubjectVersion::V2 }).await;
        log.publish_checkpoint(published.note.clone()).await.expect("publish checkpoint");
        let subjects: Vec<String> = log.read(1, 10_000).await.unwrap().into_iter().map(|m| m.subject).collect();
        assert!(subjects[..half].iter().all(|s| s.starts_with("fundtrail.v1.")));
        assert!(subjects[half..].iter().all(|s| s.starts_with("fundtrail.v2.")));
    });
    let report = verify_nats(&server.url(), None, &b.signer.verifier(), VerifyOptions::default()).unwrap();
    assert_eq!(report.entries, size);
    assert_eq!(report.checkpoint.root, published.checkpoint.root.to_base64());
    assert_eq!(report.state, b.fold.state);
}
