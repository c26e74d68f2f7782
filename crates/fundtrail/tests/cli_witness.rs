//! `fundtrail witness` as real processes over real HTTP: keys, three witnesses with a
//! quorum of two, witnesses stopped and SIGKILLed mid-request, and `verify --policy` /
//! `verify-receipt --policy` refusing what lacks the quorum.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundtrail_audit::testing::{salt_of, LedgerBuilder};
use fundtrail_ledger::{
    build_receipt, leaf_hash, prove_consistency, prove_inclusion, Checkpoint, Hash, LogSigner, MemoryHashStore,
    WitnessVerifier,
};
use fundtrail_witness::protocol::format_request;
use fundtrail_witness::{origin_hash, CosignError, WitnessClientConfig, WitnessEndpoint, WitnessPool};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

fn fundtrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundtrail")).args(args).output().expect("run fundtrail")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A `fundtrail witness serve` process.
struct WitnessProcess {
    child: Child,
    url: String,
}

impl WitnessProcess {
    fn start(key: &Path, data: &Path, log_vkey: &str, origin: &str, pause: Option<&str>) -> WitnessProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fundtrail"));
        command
            .args(["witness", "serve", "--key", s(key), "--data", s(data), "--listen", "127.0.0.1:0"])
            .args(["--log", &format!("{origin}={log_vkey}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(pause) = pause {
            command.env(fundtrail_witness::state::TEST_PAUSE_ENV, pause);
        }
        let mut child = command.spawn().expect("start the witness");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(STARTUP_TIMEOUT).expect("the witness prints its address");
        let url = line.trim().strip_prefix("listening on ").expect("listening line").to_string();
        WitnessProcess { child, url }
    }

    /// SIGKILL: no chance to tidy up.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn new_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{}.key", name.replace('/', "_")));
    let out = fundtrail(&["witness", "keys", "new", "--name", name, "--out", s(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let vkey = stdout(&out).trim().to_string();
    assert_eq!(WitnessVerifier::from_vkey(&vkey).unwrap().name(), name);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let shown = fundtrail(&["witness", "keys", "show", "--key", s(&path)]);
    assert_eq!(stdout(&shown).trim(), vkey);
    (path, vkey)
}

fn quick() -> WitnessClientConfig {
    WitnessClientConfig { request_timeout_ms: 2_000, attempts_max: 2, retry_pause_ms: 20, straggler_grace_ms: 100 }
}

#[test]
fn three_witness_processes_quorum_two_and_verifiers_with_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let builder = LedgerBuilder::realistic(40);
    let ledger = dir.path().join("ledger");
    let published = builder.publish(&ledger, &[]);
    let origin = builder.signer.name().to_string();
    let log_vkey = builder.signer.vkey();

    let names = ["street.test/witness", "bureau.test/witness", "paper.test/witness"];
    let keys: Vec<(PathBuf, String)> = names.iter().map(|n| new_key(dir.path(), n)).collect();
    let mut witnesses: Vec<WitnessProcess> = keys
        .iter()
        .enumerate()
        .map(|(i, (key, _))| WitnessProcess::start(key, &dir.path().join(format!("w{i}")), &log_vkey, &origin, None))
        .collect();
    let endpoints: Vec<WitnessEndpoint> = witnesses
        .iter()
        .zip(&keys)
        .map(|(w, (_, vkey))| WitnessEndpoint::parse(&format!("{}={vkey}", w.url)).unwrap())
        .collect();
    let policy_text = format!(
        "# FundTrail test policy\nlog {log_vkey}\nwitness street {}\nwitness bureau {}\nwitness paper {}\n\
         group local 2 street bureau paper\nquorum local\n",
        keys[0].1, keys[1].1, keys[2].1
    );
    let policy = dir.path().join("policy.txt");
    std::fs::write(&policy, &policy_text).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = WitnessPool::new(endpoints, quick()).unwrap();
    let tree = published.tree.clone();
    let prover: Arc<dyn fundtrail_witness::ConsistencyProver> = Arc::new(move |o, n| prove_consistency(o, n, &tree));
    let cosign = |note: &[u8]| runtime.block_on(pool.request_cosignatures(2, note, prover.clone()));

    // All three cosign; the ledger serves the cosigned checkpoint; verify --policy passes.
    let cosigned = cosign(&published.note).unwrap();
    assert_eq!(cosigned.cosignatures, 3);
    std::fs::write(ledger.join("checkpoint"), &cosigned.note).unwrap();
    let out = fundtrail(&["verify", "--ledger", s(&ledger), "--policy", s(&policy)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("witnessed    quorum local met: cosigned by street, bureau, paper"),
        "{}",
        stdout(&out)
    );

    // A donor's receipt carries the cosignatures; verify-receipt --policy checks them.
    let index = builder.donation_indexes[7];
    let proof = prove_inclusion(published.checkpoint.size, index, &published.tree).unwrap();
    let receipt = dir.path().join("receipt.txt");
    std::fs::write(&receipt, build_receipt(index, proof.clone(), &cosigned.note, Some(salt_of(7).to_vec()))).unwrap();
    let out = fundtrail(&["verify-receipt", s(&receipt), "--ledger", s(&ledger), "--policy", s(&policy), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["witnesses"]["cosigned_by"].as_array().unwrap().len(), 3);

    // One witness SIGKILLed: still a quorum.
    witnesses[0].kill();
    let cosigned = cosign(&published.note).unwrap();
    assert_eq!(cosigned.cosignatures, 2);

    // Two down: no quorum, and the error says who did and who did not.
    witnesses[1].kill();
    let err = cosign(&published.note).unwrap_err();
    let CosignError::NoQuorum { partial, .. } = &err else { panic!("{err}") };
    assert_eq!(partial.cosignatures, 1);
    // A checkpoint carrying one cosignature is refused by every verifier, naming who.
    std::fs::write(ledger.join("checkpoint"), &partial.note).unwrap();
    let out = fundtrail(&["verify", "--ledger", s(&ledger), "--policy", s(&policy)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("lacks the witness quorum local: cosigned by paper; missing street, bureau"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&receipt, build_receipt(index, proof, &published.note, Some(salt_of(7).to_vec()))).unwrap();
    let out = fundtrail(&["verify-receipt", s(&receipt), "--policy", s(&policy), "--donor", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the receipt's checkpoint: checkpoint"), "{}", stderr(&out));
    assert!(stderr(&out).contains("cosigned by none; missing street, bureau, paper"), "{}", stderr(&out));

    // A log forked by hand: another checkpoint of the same size. The live witness
    // refuses it (422), so it cannot reach a quorum, and verify --policy refuses it.
    let mut forked = MemoryHashStore::new();
    for i in 0..published.checkpoint.size {
        forked.append(leaf_hash(format!("forged entry {i}").as_bytes()));
    }
    let fork = Checkpoint::new(&origin, forked.size(), forked.root()).unwrap();
    let fork_note = builder.signer.sign_checkpoint(&fork).unwrap();
    let err = cosign(&fork_note).unwrap_err();
    assert!(err.to_string().contains("paper.test/witness") && err.to_string().contains("answered 422"), "{err}");
    std::fs::write(ledger.join("checkpoint"), &fork_note).unwrap();
    let out = fundtrail(&["verify", "--ledger", s(&ledger), "--policy", s(&policy)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lacks the witness quorum"), "{}", stderr(&out));

    // Policy errors name the line.
    std::fs::write(&policy, "log nope\nquorum none\n").unwrap();
    let out = fundtrail(&["verify", "--ledger", s(&ledger), "--policy", s(&policy)]);
    assert!(stderr(&out).contains("policy line 1: log key"), "{}", stderr(&out));
}

/// A log in memory: key and tree.
struct Log {
    signer: LogSigner,
    tree: MemoryHashStore,
}

impl Log {
    fn new(seed: u8, leaves: u32, salt: &str) -> Log {
        let mut tree = MemoryHashStore::new();
        for i in 0..leaves {
            tree.append(leaf_hash(format!("{salt}{i}").as_bytes()));
        }
        Log { signer: LogSigner::from_seed("fundtrail.test/ledger", &[seed; 32]).unwrap(), tree }
    }

    fn note(&self) -> Vec<u8> {
        let cp = Checkpoint::new(self.signer.name(), self.tree.size(), self.tree.root()).unwrap();
        self.signer.sign_checkpoint(&cp).unwrap()
    }

    fn proof(&self, old: u64) -> Vec<Hash> {
        prove_consistency(old, self.tree.size(), &self.tree).unwrap()
    }
}

/// POSTs a body on a thread: (status, body), or None if the connection died.
fn post_async(url: &str, body: Vec<u8>) -> std::thread::JoinHandle<Option<(u16, String)>> {
    let url = format!("{url}/add-checkpoint");
    std::thread::spawn(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        let mut response = agent.post(&url).send(&body[..]).ok()?;
        Some((response.status().as_u16(), response.body_mut().read_to_string().ok()?))
    })
}

fn post(url: &str, body: Vec<u8>) -> (u16, String) {
    post_async(url, body).join().unwrap().expect("an answer")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_witness_sigkilled_while_persisting_neither_forgets_nor_cosigns_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = new_key(dir.path(), "witness.test/w1");
    let data = dir.path().join("data");
    let log = Log::new(1, 5, "");
    let vkey = log.signer.vkey();
    let origin = log.signer.name().to_string();
    let state_file = data.join("checkpoints").join(origin_hash(&origin));

    // Killed after persisting, before answering: the log never got the cosignature.
    let mut w = WitnessProcess::start(&key, &data, &vkey, &origin, Some("after-persist:15000"));
    let pending = post_async(&w.url, format_request(0, &[], &log.note()));
    wait_for("the state file", || state_file.exists());
    w.kill();
    assert_eq!(pending.join().unwrap(), None, "no answer left the witness");

    // After restart it remembers size 5: 409 to the log's old size 0.
    let w = WitnessProcess::start(&key, &data, &vkey, &origin, None);
    assert_eq!(post(&w.url, format_request(0, &[], &log.note())), (409, "5\n".into()));
    // It cosigns no fork of size 5, and no tree that does not extend its root.
    let fork = Log::new(1, 5, "forked ");
    assert_eq!(post(&w.url, format_request(5, &[], &fork.note())).0, 422);
    let fork_grown = Log::new(1, 8, "forked ");
    assert_eq!(post(&w.url, format_request(5, &fork_grown.proof(5), &fork_grown.note())).0, 422);
    // It cosigns the true growth.
    let grown = Log::new(1, 8, "");
    let (status, body) = post(&w.url, format_request(5, &grown.proof(5), &grown.note()));
    assert_eq!(status, 200, "{body}");
    drop(w);

    // Killed mid-write: the new file is synced but not renamed into place.
    let mut w = WitnessProcess::start(&key, &data, &vkey, &origin, Some("before-rename:15000"));
    let bigger = Log::new(1, 12, "");
    let pending = post_async(&w.url, format_request(8, &bigger.proof(8), &bigger.note()));
    let tmp = PathBuf::from(format!("{}.tmp", state_file.display()));
    wait_for("the temporary state file", || tmp.exists());
    w.kill();
    assert_eq!(pending.join().unwrap(), None);
    // After restart: still at 8 (the half-done write is gone), and it moves on from 8.
    let w = WitnessProcess::start(&key, &data, &vkey, &origin, None);
    assert_eq!(post(&w.url, format_request(0, &[], &bigger.note())), (409, "8\n".into()));
    assert!(!tmp.exists());
    let (status, body) = post(&w.url, format_request(8, &bigger.proof(8), &bigger.note()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(post(&w.url, format_request(0, &[], &bigger.note())), (409, "12\n".into()));
}
