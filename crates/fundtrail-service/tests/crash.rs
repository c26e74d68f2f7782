//! Projections under SIGKILL: a child process (this test binary, re-invoked)
//! runs the projection runner over a log of a few thousand events in small
//! chunks and is killed at random moments, several times over the same
//! projection store. After a clean restart, every view equals the views a
//! fresh rebuild from the same log produces: nothing applied twice, nothing
//! skipped.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fundtrail_envelope::ActorKey;
use fundtrail_service::*;
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
        println!("STARTED");
        // Run until killed (or for a minute at most).
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = service.read.applied();
        }
    });
}

fn position(dir: &std::path::Path) -> u64 {
    let Ok(db) = sled::open(dir) else { return 0 };
    let views = db.open_tree("views").unwrap();
    views.get(b"pos\0funds").unwrap().map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()))
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

async fn run_until_caught_up(config: ServiceConfig) {
    let service = Service::start(config, Arc::new(ManualClock::new(t0()))).await.unwrap();
    let last = service.log.last_seq().await.unwrap();
    assert!(service.read.wait_applied(last, Duration::from_secs(120)).await, "projections catch up");
    service.shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    // Kill the child's projections at random moments.
    let mut positions = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["projection_crash_child", "--exact", "--nocapture"])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_SEED_ENV, hex::encode(seed))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait_ms = 150 + (round * 97 + u64::from(seed[round as usize])) % 600;
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        positions.push(position(&dir.path().join("projections")));
    }
    // The kills landed while the projections were still being written.
    let total = DONATIONS as u64 + 30;
    assert!(positions.iter().any(|p| *p > 0 && *p < total), "no kill landed mid-run: {positions:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run_until_caught_up(config(dir.path(), "projections", &seed, 37)));
    rt.block_on(run_until_caught_up(config(dir.path(), "fresh", &seed, 2_000)));
    drop(rt);
    let resumed = dump(&dir.path().join("projections"));
    let fresh = dump(&dir.path().join("fresh"));
    assert!(resumed.len() > DONATIONS as usize * 3, "views were written: {}", resumed.len());
    let differing: Vec<String> = fresh
        .iter()
        .filter(|(k, v)| resumed.get(*k) != Some(v))
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .take(5)
        .collect();
    assert!(differing.is_empty(), "views differ after crashes: {differing:?}");
    assert_eq!(resumed.len(), fresh.len());
}
