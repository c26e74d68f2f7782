//! Projections under SIGKILL: a child process (this test binary, re-invoked)
//! replays a log of a few thousand events into its projections in small
//! chunks, saving its fold every few hundred events, and is killed several
//! times over the same projection store — each time once it has reported a
//! position past that round's target, so the kills land mid-run on a fast
//! or a slow machine alike. After a clean restart (from the snapshot), every
//! view and the fold's state equal what a fresh replay of the same log
//! produces: nothing applied twice, nothing skipped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fundtrail_envelope::ActorKey;
use fundtrail_service::*;
use fundtrail_store::EventLog as _;
use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::service::{t0, ServiceSetup};

const CHILD_DIR_ENV: &str = "FUNDTRAIL_PROJECTION_CRASH_DIR";
const CHILD_SEED_ENV: &str = "FUNDTRAIL_PROJECTION_CRASH_SEED";
const DONATIONS: i64 = 3_000;
const ROUNDS: u64 = 6;

fn config(dir: &std::path::Path, projections: &str, seed: &[u8; 32], chunk: usize) -> ServiceConfig {
    let mut setup = ServiceSetup::embedded(dir);
    setup.projections_dir = dir.join(projections);
    setup.log_seed = *seed;
    setup.checkpoint_entries = 500;
    setup.checkpoint_interval = Duration::from_millis(50);
    setup.chunk_messages_max = chunk;
    setup.snapshot_events = 500;
    setup.config()
}

/// The child: runs the projections until killed. Does nothing unless started by the parent.
#[test]
fn projection_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let seed: [u8; 32] = hex::decode(std::env::var(CHILD_SEED_ENV).unwrap()).unwrap().try_into().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let service = Service::start(config(dir.as_ref(), "projections", &seed, 37), Arc::new(ManualClock::new(t0())))
            .await
            .expect("child service");
        // Report every position the projections flush, until killed (or for a
        // minute at most).
        let mut reported = u64::MAX;
        for _ in 0..60_000 {
            let applied = service.read.applied();
            if applied != reported {
                println!("APPLIED {applied}");
                reported = applied;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
}

fn position(dir: &std::path::Path) -> u64 {
    let Ok(db) = sled::open(dir) else { return 0 };
    let views = db.open_tree("views").unwrap();
    views.get(b"pos\0donations").unwrap().map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()))
}

fn dump(dir: &std::path::Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = sled::open(dir).unwrap();
    let views = db.open_tree("views").unwrap();
    views
        .iter()
        .map(|r| r.unwrap())
        .filter(|(k, _)| !k.starts_with(b"cp\0"))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// Runs a service until its projections caught up; returns its fold's state (JSON).
async fn run_until_caught_up(config: ServiceConfig) -> Vec<u8> {
    let service = Service::start(config, Arc::new(ManualClock::new(t0()))).await.unwrap();
    let last = service.log.last_seq().await.unwrap();
    assert!(service.read.wait_applied(last, Duration::from_secs(120)).await, "projections catch up");
    let state = serde_json::to_vec(&*service.read.state()).unwrap();
    service.shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    state
}

#[test]
fn killed_projections_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let seed = ActorKey::generate().unwrap().seed();
    // A log of a few thousand events, written with its own projections.
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let service = Service::start(
                config(dir.path(), "writer-projections", &seed, 2_000),
                Arc::new(ManualClock::new(t0())),
            )
            .await
            .unwrap();
            let cast = Cast::new("xihu-01");
            for e in cast.setup(t0()) {
                service.submit(e).await.unwrap();
            }
            let donations = (1..=DONATIONS).map(|i| service.writer.submit(cast.donation(i, t0()).1));
            for r in futures::future::join_all(donations).await {
                r.unwrap();
            }
            for e in cast.endorsed_proposal("P-1", 100_000, t0()) {
                service.submit(e).await.unwrap();
            }
            service.submit(cast.approval("P-1", 100_000, t0())).await.unwrap();
            service.submit(cast.payout("P-1", 40_000, t0())).await.unwrap();
        });
    }
    // Kill the child once it reports a position past each round's target: a
    // random point in the round's share of the log.
    let total = {
        let log = fundtrail_store::SledLog::open(dir.path().join("log")).unwrap();
        tokio::runtime::Runtime::new().unwrap().block_on(log.last_seq()).unwrap()
    };
    let mut positions = Vec::new();
    for round in 0..ROUNDS {
        let share = total / (ROUNDS + 1);
        let target = share * (round + 1) + u64::from(seed[round as usize]) % share;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["projection_crash_child", "--exact", "--nocapture"])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_SEED_ENV, hex::encode(seed))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        for line in stdout.lines() {
            let Some(applied) = line.unwrap().strip_prefix("APPLIED ").map(|n| n.parse::<u64>().unwrap()) else {
                continue;
            };
            seen = applied;
            if applied >= target {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(seen >= target, "round {round}: the child stopped at {seen} before reaching {target}");
        positions.push(position(&dir.path().join("projections")));
    }
    // Positions only grow, and the kills landed while the projections were
    // still being written.
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "a flushed position went back: {positions:?}");
    let mid_run = positions.iter().filter(|p| **p > 0 && **p < total).count();
    assert!(mid_run as u64 >= ROUNDS - 1, "kills did not land mid-run: {positions:?} of {total}");
    assert!(
        dir.path().join("projections").join("fundtrail-fold.snapshot").exists(),
        "the child saved its fold at least once"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let resumed_state = rt.block_on(run_until_caught_up(config(dir.path(), "projections", &seed, 37)));
    let fresh_state = rt.block_on(run_until_caught_up(config(dir.path(), "fresh", &seed, 2_000)));
    assert!(resumed_state == fresh_state, "the fold resumed from its snapshot differs from a fresh replay");
    // A damaged snapshot is never trusted: the fold is rebuilt from the log.
    let snapshot = dir.path().join("projections").join("fundtrail-fold.snapshot");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&snapshot, &bytes).unwrap();
    let rebuilt_state = rt.block_on(run_until_caught_up(config(dir.path(), "projections", &seed, 37)));
    assert!(rebuilt_state == fresh_state, "a fold rebuilt past a damaged snapshot differs from a fresh replay");
    drop(rt);
    let resumed = dump(&dir.path().join("projections"));
    let fresh = dump(&dir.path().join("fresh"));
    // At least each donation's view (cash gifts are not indexed by donor: views layout 5).
    assert!(resumed.len() > DONATIONS as usize, "views were written: {}", resumed.len());
    let differing: Vec<String> = fresh
        .iter()
        .filter(|(k, v)| resumed.get(*k) != Some(v))
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .take(5)
        .collect();
    assert!(differing.is_empty(), "views differ after crashes: {differing:?}");
    assert_eq!(resumed.len(), fresh.len());
}
