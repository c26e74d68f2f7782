//! A NATS node dies while appends wait for its answers. The cluster of `deploy/`
//! (three nodes, the stream on all three, `sync_interval: always`); the log connected
//! to a node that is not the stream's leader, eight writers appending without pause;
//! that node is SIGKILLed. An answer goes to the connection that asked, so the appends
//! in flight can no longer be answered: the log must stop waiting for them when the
//! connection is lost and resend through the node it reconnects to, not wait out
//! `REQUEST_TIMEOUT` (5 s) first. Every append is acknowledged once, none lost.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundtrail_store::{
    AppendRequest, EventLog as _, JetStreamLog, NatsAuth, NatsConnect, Secret, StreamSettings, REQUEST_TIMEOUT,
};
use fundtrail_testkit::cluster::{stream_info, NatsCluster, SERVICE_USER, STREAM_REPLICAS};

const WRITERS: usize = 8;
/// Attempts at connecting the log to a node that does not lead the stream (the
/// client picks one of the servers at random).
const CONNECT_ATTEMPTS_MAX: usize = 30;
const BEFORE_KILL: Duration = Duration::from_millis(1_000);
const AFTER_KILL: Duration = Duration::from_millis(3_000);

#[test]
fn appends_in_flight_when_their_node_dies_are_sent_again_at_once() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let cluster = NatsCluster::start(&deploy).expect("the cluster of deploy/ starts");
    let options = NatsConnect {
        servers: cluster.nodes.iter().map(|n| n.url()).collect(),
        auth: NatsAuth::UserPassword {
            user: SERVICE_USER.into(),
            password: Secret::new(cluster.passwords.service.clone()),
        },
        tls_ca: None,
    };
    let settings = StreamSettings { replicas: STREAM_REPLICAS, ..StreamSettings::default() };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let info = |url: &str| {
        stream_info(url, SERVICE_USER, &cluster.passwords.service, "FUNDTRAIL", Duration::from_secs(10)).unwrap()
    };

    // The log, on a node that does not lead the stream (so that the stream goes on
    // without an election when that node dies).
    let mut connected = None;
    for _ in 0..CONNECT_ATTEMPTS_MAX {
        let log = runtime.block_on(JetStreamLog::connect_with(&options, settings.clone())).expect("connect");
        let leader = info(&cluster.nodes[0].url()).leader.expect("the stream has a leader");
        if log.server_name() != leader {
            connected = Some(log);
            break;
        }
    }
    let log = Arc::new(connected.expect("connected to a node that does not lead the stream"));
    let node = cluster.index_of(&log.server_name()).expect("connected to a node of the cluster");

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (log, stop) = (log.clone(), stop.clone());
            runtime.spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let request = AppendRequest {
                        subject: format!("fundtrail.v2.xihu-01.donation.w{w}-{i}"),
                        msg_id: format!("w{w}-{i}"),
                        payload: format!("{{\"writer\":{w},\"n\":{i}}}").into_bytes(),
                        expect: None,
                    };
                    let started = Instant::now();
                    let appended = log.append(request).await;
                    acked.push((started.elapsed(), appended.map(|a| a.seq)));
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(BEFORE_KILL);
    cluster.nodes[node].kill();
    std::thread::sleep(AFTER_KILL);
    stop.store(true, Ordering::SeqCst);
    let results: Vec<(Duration, Result<u64, fundtrail_store::AppendError>)> =
        writers.into_iter().flat_map(|w| runtime.block_on(w).unwrap()).collect();

    let failed: Vec<String> = results.iter().filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string())).collect();
    assert!(failed.is_empty(), "appends failed though a quorum of the stream lived: {failed:?}");
    assert!(log.answers_lost() >= 1, "no append was waiting for its answer when the node died");
    let slowest = results.iter().map(|(latency, _)| *latency).max().expect("appends");
    assert!(
        slowest < REQUEST_TIMEOUT,
        "an append waited {slowest:?}: the log waited out its request timeout for an answer that could not come"
    );
    // Each acknowledged once, at a sequence of its own; nothing else in the stream.
    let seqs: HashSet<u64> = results.iter().map(|(_, r)| *r.as_ref().unwrap()).collect();
    assert_eq!(seqs.len(), results.len(), "two appends acknowledged at one sequence");
    let live = cluster.nodes.iter().find(|n| n.is_running()).expect("a live node");
    let info = info(&live.url());
    assert_eq!(info.messages, results.len() as u64, "the stream holds what was acknowledged, once each: {info:?}");
    eprintln!(
        "{} appends, {} waits cut short by the lost connection, slowest {slowest:?}",
        results.len(),
        log.answers_lost()
    );
}
