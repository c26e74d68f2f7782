//! A NATS node fails while appends wait for its answers. The cluster of `deploy/`
//! (three nodes, the stream on all three, `sync_interval: always`); the log connected
//! to a node that is not the stream's leader, eight writers appending without pause;
//! then that node is SIGKILLed, or SIGSTOPped (hung: its connections stay open, nothing
//! answers). An answer goes to the connection that asked, so the appends in flight can
//! no longer be answered: the log must give up that connection (at once when it is
//! closed; by its pings when the node hangs) and resend through the node it reconnects
//! to, instead of waiting out `REQUEST_TIMEOUT` (5 s) again and again. Every append is
//! acknowledged once, none lost, the stream holds exactly those.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundtrail_store::{
    AppendError, AppendRequest, EventLog as _, JetStreamLog, NatsAuth, NatsConnect, Secret, StreamSettings,
    REQUEST_TIMEOUT,
};
use fundtrail_testkit::cluster::{stream_info, NatsCluster, StreamInfo, SERVICE_USER, STREAM_REPLICAS};

const WRITERS: usize = 8;
/// Attempts at connecting the log to a node that does not lead the stream (the
/// client picks one of the servers at random).
const CONNECT_ATTEMPTS_MAX: usize = 30;
const BEFORE_FAULT: Duration = Duration::from_millis(1_000);
const AFTER_KILL: Duration = Duration::from_millis(3_000);
/// How long the node hangs: longer than the pings take to notice (three intervals, 6 s),
/// a reconnect that may try the hung node first (`CONNECT_TIMEOUT`, 2 s) and a resend,
/// so that only an append that waited for the node to wake takes as long.
const HANG: Duration = Duration::from_secs(12);

/// The cluster, a runtime and a log connected to a node that does not lead the stream
/// (so that the stream goes on without an election when that node fails), and that node.
struct Setup {
    cluster: NatsCluster,
    runtime: tokio::runtime::Runtime,
    log: Arc<JetStreamLog>,
    node: usize,
}

impl Setup {
    fn start() -> Setup {
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
        for _ in 0..CONNECT_ATTEMPTS_MAX {
            let log = runtime.block_on(JetStreamLog::connect_with(&options, settings.clone())).expect("connect");
            let leader = stream(&cluster, 0).leader.expect("the stream has a leader");
            if log.server_name() != leader {
                let node = cluster.index_of(&log.server_name()).expect("connected to a node of the cluster");
                return Setup { cluster, runtime, log: Arc::new(log), node };
            }
        }
        panic!("never connected to a node that does not lead the stream in {CONNECT_ATTEMPTS_MAX} attempts");
    }

    /// Appends with [`WRITERS`] writers until `fault` returns; each append's latency and outcome.
    fn append_through(&self, fault: impl FnOnce()) -> Vec<(Duration, Result<u64, AppendError>)> {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (log, stop) = (self.log.clone(), stop.clone());
                self.runtime.spawn(async move {
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
        std::thread::sleep(BEFORE_FAULT);
        fault();
        stop.store(true, Ordering::SeqCst);
        writers.into_iter().flat_map(|w| self.runtime.block_on(w).unwrap()).collect()
    }

    /// Every append acknowledged, once each, and the stream holds exactly those.
    fn check_acknowledged_once(&self, results: &[(Duration, Result<u64, AppendError>)]) {
        let failed: Vec<String> = results.iter().filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string())).collect();
        assert!(failed.is_empty(), "appends failed though a quorum of the stream lived: {failed:?}");
        let seqs: HashSet<u64> = results.iter().map(|(_, r)| *r.as_ref().unwrap()).collect();
        assert_eq!(seqs.len(), results.len(), "two appends acknowledged at one sequence");
        let live = (0..self.cluster.nodes.len()).find(|k| *k != self.node).expect("another node");
        let info = stream(&self.cluster, live);
        assert_eq!(info.messages, results.len() as u64, "the stream holds what was acknowledged, once each: {info:?}");
    }
}

fn stream(cluster: &NatsCluster, node: usize) -> StreamInfo {
    let url = cluster.nodes[node].url();
    stream_info(&url, SERVICE_USER, &cluster.passwords.service, "FUNDTRAIL", Duration::from_secs(10)).unwrap()
}

fn slowest(results: &[(Duration, Result<u64, AppendError>)]) -> Duration {
    results.iter().map(|(latency, _)| *latency).max().expect("appends")
}

#[test]
fn appends_in_flight_when_their_node_dies_are_sent_again_at_once() {
    let setup = Setup::start();
    let results = setup.append_through(|| {
        setup.cluster.nodes[setup.node].kill();
        std::thread::sleep(AFTER_KILL);
    });
    setup.check_acknowledged_once(&results);
    assert!(setup.log.answers_lost() >= 1, "no append was waiting for its answer when the node died");
    let slowest = slowest(&results);
    assert!(
        slowest < REQUEST_TIMEOUT,
        "an append waited {slowest:?}: the log waited out its request timeout for an answer that could not come"
    );
    eprintln!("killed: {} appends, {} waits cut short, slowest {slowest:?}", results.len(), setup.log.answers_lost());
}

#[test]
fn appends_in_flight_when_their_node_hangs_go_on_through_another_node() {
    let setup = Setup::start();
    let node = &setup.cluster.nodes[setup.node];
    let results = setup.append_through(|| {
        node.pause().expect("SIGSTOP the node");
        std::thread::sleep(HANG);
        node.resume().expect("SIGCONT the node");
    });
    setup.check_acknowledged_once(&results);
    assert!(setup.log.answers_lost() >= 1, "the hung node's connection was never given up");
    // No append waited for the node to wake: each went on through another node.
    let slowest = slowest(&results);
    assert!(slowest < HANG, "an append waited {slowest:?}: the log held on to a node that did not answer");
    eprintln!("hung: {} appends, {} waits cut short, slowest {slowest:?}", results.len(), setup.log.answers_lost());
}
