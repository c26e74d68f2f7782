//! The sled log under SIGKILL: a child process (this test binary, re-invoked with an
//! environment variable) appends in a loop and prints each acknowledgement on a pipe
//! before going on; the parent SIGKILLs it mid-stream, 20 times over the same
//! database, then reopens it: no corruption, and every acknowledged append present
//! exactly once at its acknowledged sequence. Batches land whole or not at all.
//!
//! This checks the process-crash case only (the kernel keeps what sled wrote); see the
//! `SledLog` docs for OS crash and power loss.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fundtrail_store::{AppendRequest, EventLog, SledLog};

const CHILD_DIR_ENV: &str = "FUNDTRAIL_SLED_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "FUNDTRAIL_SLED_CRASH_CHILD_ROUND";
const ROUNDS: u64 = 20;
/// The child stops by itself after this many appends or this long (it is normally
/// killed long before).
const CHILD_APPENDS_MAX: u64 = 100_000;
const CHILD_RUN_MAX: Duration = Duration::from_secs(120);
const BATCH_SIZE: u64 = 3;

fn request(msg_id: String) -> AppendRequest {
    AppendRequest {
        subject: "fundtrail.v1.f1.proposal.p1".into(),
        payload: format!("envelope {msg_id}").into_bytes(),
        msg_id,
        expect: None,
    }
}

/// The child: appends singles and batches until killed, printing `ACK <id> <seq>` per
/// acknowledged message. Does nothing unless started by the parent.
#[tokio::test]
async fn sled_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let log = SledLog::open(&dir).expect("child opens the log");
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    let mut i = 0;
    while i < CHILD_APPENDS_MAX && started.elapsed() < CHILD_RUN_MAX {
        let batch: Vec<AppendRequest> = if i % 2 == 0 {
            (0..BATCH_SIZE).map(|k| request(format!("r{round}-b{i}-{k}"))).collect()
        } else {
            vec![request(format!("r{round}-s{i}"))]
        };
        let appended = log.append_batch(batch.clone()).await.expect("child append");
        // Written straight to the pipe (not through the test harness's capture).
        let mut lines = String::new();
        for (request, appended) in batch.iter().zip(&appended) {
            assert!(!appended.duplicate);
            lines.push_str(&format!("ACK {} {}\n", request.msg_id, appended.seq));
        }
        stdout.write_all(lines.as_bytes()).unwrap();
        stdout.flush().unwrap();
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_survives_sigkill_mid_append_twenty_times() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log");
    let mut acked: HashMap<String, u64> = HashMap::new();
    for round in 0..ROUNDS {
        // Kill after a varying number of acknowledgements, so the kill lands at
        // different points of the append path.
        let kill_after = 5 + (round * 7) % 40;
        let round_acked = tokio::task::spawn_blocking({
            let db = db.clone();
            move || run_child_and_kill(&db, round, kill_after as usize)
        })
        .await
        .unwrap();
        for (msg_id, seq) in round_acked {
            assert!(acked.insert(msg_id, seq).is_none());
        }
        check(&db, &acked).await;
    }
    assert!(acked.len() as u64 >= ROUNDS * 5);
}

/// Runs one child on `db`, reads its acknowledgements, SIGKILLs it after `kill_after`
/// of them; answers the acknowledged (id, seq) pairs, including any read before the
/// kill took effect.
fn run_child_and_kill(db: &std::path::Path, round: u64, kill_after: usize) -> Vec<(String, u64)> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "sled_crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, db)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut killed = false;
    for line in stdout.lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue; // The test harness's own lines.
        };
        let (msg_id, seq) = rest.split_once(' ').unwrap();
        acked.push((msg_id.to_string(), seq.parse().unwrap()));
        if acked.len() >= kill_after && !killed {
            child.kill().unwrap(); // SIGKILL
            killed = true;
            // Keep reading: acknowledgements already in the pipe count too.
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "round {round}: the child ended by itself ({status}) before being killed");
    acked
}

/// Reopens the log: it passes its integrity check, every acknowledged id is stored
/// once at its sequence, and every batch is whole.
async fn check(db: &std::path::Path, acked: &HashMap<String, u64>) {
    let log = SledLog::open(db).expect("reopen after SIGKILL");
    let last = log.check_integrity().expect("integrity after SIGKILL");
    let mut stored: HashMap<String, u64> = HashMap::new();
    let mut next = 1;
    while next <= last {
        for message in log.read(next, 1000).await.unwrap() {
            assert_eq!(message.seq, next);
            assert_eq!(message.payload, format!("envelope {}", message.msg_id).into_bytes());
            assert!(stored.insert(message.msg_id, message.seq).is_none(), "id stored twice");
            next += 1;
        }
    }
    for (msg_id, seq) in acked {
        assert_eq!(stored.get(msg_id), Some(seq), "acknowledged {msg_id} at {seq}");
    }
    // Batches: every stored "-b<i>-<k>" has all its siblings, consecutively.
    for (msg_id, seq) in &stored {
        if let Some((prefix, k)) = msg_id.rsplit_once('-').filter(|_| msg_id.contains("-b")) {
            let k: u64 = k.parse().unwrap();
            for sibling in 0..BATCH_SIZE {
                let sibling_seq = stored.get(&format!("{prefix}-{sibling}"));
                assert_eq!(sibling_seq, Some(&(seq - k + sibling)), "batch {prefix} torn");
            }
        }
    }
}
