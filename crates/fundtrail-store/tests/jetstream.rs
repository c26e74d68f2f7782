//! JetStream-specific behaviour: stream settings check, NATS unreachable, a server that
//! goes away and comes back, and kill -9 of nats-server under concurrent appends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundtrail_store::{AppendError, AppendRequest, EventLog, JetStreamLog, LogError, StreamSettings, EVENT_STREAM};
use fundtrail_testkit::NatsServer;

/// How long a writer keeps resending one event while the server is down. Generous: the
/// machine is loaded.
const RESEND_DEADLINE: Duration = Duration::from_secs(120);
const RESEND_PAUSE: Duration = Duration::from_millis(100);

fn event(msg_id: &str) -> AppendRequest {
    AppendRequest {
        subject: "fundtrail.v1.f1.proposal.p1".into(),
        msg_id: msg_id.into(),
        payload: format!("envelope {msg_id}").into_bytes(),
        expect: None,
    }
}

async fn start() -> (Arc<NatsServer>, JetStreamLog) {
    let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap().expect("nats-server");
    let log = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("connect");
    (Arc::new(server), log)
}

#[tokio::test]
async fn refuses_a_preexisting_weak_stream_naming_each_weakness() {
    let server = NatsServer::start().expect("nats-server");
    let client = async_nats::connect(server.url()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    context
        .create_stream(async_nats::jetstream::stream::Config {
            name: EVENT_STREAM.into(),
            subjects: vec!["fundtrail.v1.*.*.*".into()],
            deny_delete: true,
            deny_purge: false,
            max_age: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .unwrap();
    let error = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.unwrap_err();
    let LogError::Incompatible(message) = error else {
        panic!("expected Incompatible, got {error:?}");
    };
    assert!(message.contains("stream FUNDTRAIL allows purge"), "{message}");
    assert!(message.contains("stream FUNDTRAIL expires messages after"), "{message}");
    assert!(message.contains("allow_atomic is off"), "{message}");
    assert!(!message.contains("deleting"), "deny_delete was on: {message}");
}

/// A stream created by an earlier release (v1 event subjects only) with messages in
/// it: connecting adds the v2 subjects and changes nothing else; the v1 messages stay
/// as they were and v2 appends land after them.
#[tokio::test]
async fn a_stream_with_v1_subjects_only_gets_v2_added() {
    let server = NatsServer::start().expect("nats-server");
    let client = async_nats::connect(server.url()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let settings = StreamSettings::default();
    let v1_only = async_nats::jetstream::stream::Config {
        subjects: vec!["fundtrail.v1.*.*.*".into()],
        ..fundtrail_store::event_stream_config(&settings)
    };
    let before = context.create_stream(v1_only.clone()).await.unwrap().info().await.unwrap().config.clone();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "old");
    context.publish_with_headers("fundtrail.v1.f1.donation.d1", headers, "old".into()).await.unwrap().await.unwrap();
    // Not a FundTrail event subject: refused by the stream as it is.
    assert!(context.publish("fundtrail.v2.f1.donation.1", "early".into()).await.unwrap().await.is_err());

    let log = JetStreamLog::connect(&server.url(), settings.clone()).await.expect("connect adds v2");
    let mut stream = context.get_stream(EVENT_STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, fundtrail_store::EVENT_SUBJECTS.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    // Nothing else changed (metadata is the server's own bookkeeping).
    let unchanged = async_nats::jetstream::stream::Config { subjects: before.subjects.clone(), ..config };
    assert_eq!(
        async_nats::jetstream::stream::Config { metadata: Default::default(), ..unchanged },
        async_nats::jetstream::stream::Config { metadata: Default::default(), ..before }
    );
    let appended = log
        .append(AppendRequest { subject: "fundtrail.v2.f1.donation.c".into(), ..event("new") })
        .await
        .expect("a v2 append");
    assert_eq!(appended.seq, 2);
    let stored = log.read(1, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0].subject.as_str(), stored[0].payload.as_slice()),
        ("fundtrail.v1.f1.donation.d1", &b"old"[..])
    );
    assert_eq!(stored[1].subject, "fundtrail.v2.f1.donation.c");
    // Connecting again (another replica) finds nothing to change.
    JetStreamLog::connect(&server.url(), settings).await.expect("reconnect");
}

/// A stream with other subjects is not FundTrail's to change: refused, unchanged.
#[tokio::test]
async fn a_stream_with_other_subjects_is_refused_not_changed() {
    let server = NatsServer::start().expect("nats-server");
    let client = async_nats::connect(server.url()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let other = async_nats::jetstream::stream::Config {
        subjects: vec!["fundtrail.>".into()],
        ..fundtrail_store::event_stream_config(&StreamSettings::default())
    };
    context.create_stream(other).await.unwrap();
    let error = JetStreamLog::connect(&server.url(), StreamSettings::default()).await.unwrap_err();
    assert!(error.to_string().contains(r#"has subjects ["fundtrail.>"]"#), "{error}");
    let mut stream = context.get_stream(EVENT_STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.subjects, vec!["fundtrail.>".to_string()]);
}

#[tokio::test]
async fn refuses_a_stream_with_fewer_replicas_or_a_shorter_window() {
    let server = NatsServer::start().expect("nats-server");
    JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("create");
    let stricter = StreamSettings { duplicate_window: Duration::from_secs(600), ..StreamSettings::default() };
    let error = JetStreamLog::connect(&server.url(), stricter).await.unwrap_err();
    assert!(error.to_string().contains("remembers msg ids for 120s"), "{error}");
    // The same settings again: accepted.
    JetStreamLog::connect(&server.url(), StreamSettings::default()).await.expect("reconnect");
}

#[tokio::test]
async fn unreachable_nats_is_a_clear_error() {
    // A port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let error = JetStreamLog::connect(&url, StreamSettings::default()).await.unwrap_err();
    match &error {
        LogError::Unavailable { cause } => assert!(cause.contains(&url), "{cause}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(error.to_string().starts_with("event log unavailable"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_then_back_errors_clearly_then_recovers() {
    let (server, log) = start().await;
    log.append(event("before")).await.unwrap();
    server.kill();
    match log.append(event("during")).await.unwrap_err() {
        AppendError::UnknownOutcome { msg_ids, .. } => assert_eq!(msg_ids, vec!["during".to_string()]),
        AppendError::Log(LogError::Unavailable { .. }) => {}
        other => panic!("expected UnknownOutcome or Unavailable, got {other:?}"),
    }
    assert!(log.last_seq().await.is_err());
    let restarting = server.clone();
    tokio::task::spawn_blocking(move || restarting.restart()).await.unwrap().expect("restart");
    // The client reconnects by itself; resend until it has.
    let appended = append_until_acknowledged(&log, event("during")).await;
    assert!(appended.seq == 2, "{appended:?}");
    assert_eq!(log.append(event("after")).await.unwrap().seq, 3);
}

/// Resends the same event until it is acknowledged (fresh or duplicate).
async fn append_until_acknowledged(log: &JetStreamLog, request: AppendRequest) -> fundtrail_store::Appended {
    let deadline = Instant::now() + RESEND_DEADLINE;
    loop {
        match log.append(request.clone()).await {
            Ok(appended) => return appended,
            Err(error) if Instant::now() < deadline => {
                tracing::debug!(%error, "resending");
                tokio::time::sleep(RESEND_PAUSE).await;
            }
            Err(error) => panic!("{} not acknowledged in {RESEND_DEADLINE:?}: {error}", request.msg_id),
        }
    }
}

/// Concurrent writers append (singles and batches), nats-server is SIGKILLed and restarted
/// three times under load; afterwards every acknowledged event is in the stream exactly
/// once at its acknowledged sequence, and the stream has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_under_load_loses_no_acknowledged_append() {
    const WRITERS: usize = 4;
    const EVENTS_PER_WRITER: usize = 60;
    const KILLS: usize = 3;
    let (server, log) = start().await;
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (log, acked) = (log.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while i < EVENTS_PER_WRITER {
                // Every third step is a batch of three.
                let batch: Vec<AppendRequest> = if i % 3 == 0 && i + 3 <= EVENTS_PER_WRITER {
                    (i..i + 3).map(|j| event(&format!("w{w}-e{j}"))).collect()
                } else {
                    vec![event(&format!("w{w}-e{i}"))]
                };
                let deadline = Instant::now() + RESEND_DEADLINE;
                let appended = loop {
                    match log.append_batch(batch.clone()).await {
                        Ok(appended) => break appended,
                        Err(e) if Instant::now() < deadline => {
                            tracing::debug!(%e, "resending");
                            tokio::time::sleep(RESEND_PAUSE).await;
                        }
                        Err(e) => panic!("writer {w}: not acknowledged in {RESEND_DEADLINE:?}: {e}"),
                    }
                };
                let mut acked = acked.lock().unwrap();
                for (request, appended) in batch.iter().zip(&appended) {
                    let previous = acked.insert(request.msg_id.clone(), appended.seq);
                    assert!(previous.is_none(), "{} acknowledged twice", request.msg_id);
                }
                i += batch.len();
            }
        }));
    }

    for kill in 1..=KILLS {
        let target = kill * WRITERS * EVENTS_PER_WRITER / (KILLS + 1);
        let deadline = Instant::now() + RESEND_DEADLINE;
        while acked.lock().unwrap().len() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let restarting = server.clone();
        tokio::task::spawn_blocking(move || {
            restarting.kill();
            std::thread::sleep(Duration::from_millis(300));
            restarting.restart()
        })
        .await
        .unwrap()
        .expect("restart");
    }
    for writer in writers {
        writer.await.expect("writer");
    }

    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), WRITERS * EVENTS_PER_WRITER);
    let last = log.last_seq().await.unwrap();
    let mut stored: HashMap<String, Vec<u64>> = HashMap::new();
    let mut next = 1;
    while next <= last {
        let messages = log.read(next, 500).await.unwrap();
        assert!(!messages.is_empty());
        for message in messages {
            assert_eq!(message.seq, next, "no gap");
            assert_eq!(message.payload, format!("envelope {}", message.msg_id).into_bytes());
            stored.entry(message.msg_id).or_default().push(message.seq);
            next += 1;
        }
    }
    for (msg_id, seq) in &acked {
        assert_eq!(stored.get(msg_id), Some(&vec![*seq]), "{msg_id} acknowledged at {seq}");
    }
    // Resends after a kill hit the duplicate window: nothing is stored twice.
    for (msg_id, seqs) in &stored {
        assert_eq!(seqs.len(), 1, "{msg_id} stored at {seqs:?}");
    }
}
