//! Operating a FundTrail server, as the binary: a graceful stop and a
//! `fundtrail rebuild` that reproduces every view and the ledger root byte for
//! byte; a static `ledger mirror` that `fundtrail verify` accepts; and a server
//! pinned to one host key, which only that key can found.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fundtrail_envelope::ActorKey;
use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::agent;
use serde_json::Value;

/// How long a server may take to sign a checkpoint covering the whole log.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(120);
/// Times one request is resent after a 503 (same envelope: at most one effect).
const POST_ATTEMPTS_MAX: u32 = 100;

const FUND: &str = "xihu-ops";

/// A `fundtrail serve` child (the test kit's), with the reads this test makes.
struct Server(ServeProcess);

impl std::ops::Deref for Server {
    type Target = ServeProcess;
    fn deref(&self) -> &ServeProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut ServeProcess {
        &mut self.0
    }
}

impl Server {
    /// `fundtrail serve --data DATA EXTRA…` on a free port, embedded store.
    fn start(data: &Path, extra: &[&str]) -> Server {
        Server(ServeProcess::start(Path::new(env!("CARGO_BIN_EXE_fundtrail")), data, extra))
    }

    fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url);
        let mut response = agent().get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status(), 200, "GET {url}");
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
    }

    fn text(&self, path: &str) -> Option<String> {
        let mut response = agent().get(format!("{}{path}", self.url)).call().ok()?;
        if response.status() != 200 {
            return None;
        }
        response.body_mut().read_to_string().ok()
    }

    fn bytes(&self, path: &str) -> Vec<u8> {
        let url = format!("{}{path}", self.url);
        let mut response = agent().get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status(), 200, "GET {url}");
        response.body_mut().read_to_vec().unwrap()
    }

    /// Every hash tile and entry bundle of a tree of `size` entries, by path.
    fn tiles(&self, size: u64) -> Vec<(String, Vec<u8>)> {
        let tiles = fundtrail_ledger::tiles::new_tiles(0, size);
        assert!(!tiles.is_empty());
        tiles.iter().map(|t| (t.path(), self.bytes(&format!("/ledger/{}", t.path())))).collect()
    }

    fn vkey(&self) -> String {
        self.text("/ledger/vkey").expect("vkey").trim().to_owned()
    }

    /// Posts an envelope; resends it after a 503 (busy), a bounded number of times.
    fn post(&self, envelope: &[u8]) -> (u16, Value) {
        let url = format!("{}/v1/events", self.url);
        for _ in 0..POST_ATTEMPTS_MAX {
            let mut response = agent()
                .post(&url)
                .header("Content-Type", "application/json")
                .send(envelope)
                .unwrap_or_else(|e| panic!("POST {url}: {e}"));
            let status = response.status().as_u16();
            let body = serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
            if status != 503 {
                return (status, body);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{url}: still busy after {POST_ATTEMPTS_MAX} tries");
    }

    /// Posts envelopes that must be accepted; returns the last sequence.
    fn accept_all(&self, envelopes: &[Vec<u8>]) -> u64 {
        let mut last = 0;
        for envelope in envelopes {
            let (status, body) = self.post(envelope);
            assert!(matches!(status, 200..=202), "{status} {body}");
            last = body["seq"].as_u64().expect("seq");
        }
        last
    }

    /// The checkpoint note once it covers `size` entries (the whole log).
    fn checkpoint_at(&self, size: u64) -> String {
        let deadline = Instant::now() + CHECKPOINT_WAIT;
        loop {
            if let Some(note) = self.text("/ledger/checkpoint") {
                let signed: u64 = note.lines().nth(1).and_then(|l| l.parse().ok()).expect("a checkpoint size line");
                assert!(signed <= size, "checkpoint of size {signed} beyond the log's {size}");
                if signed == size {
                    return note;
                }
            }
            assert!(Instant::now() < deadline, "no checkpoint of size {size} within {CHECKPOINT_WAIT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn fundtrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundtrail")).args(args).output().expect("run fundtrail")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fund with money in, a proposal approved and partly paid.
fn history(cast: &Cast) -> Vec<Vec<u8>> {
    let now = chrono::Utc::now();
    let mut events = cast.setup(now);
    for fen in [123_456, 52_000, 8_800, 100] {
        events.push(cast.donation(fen, now).1);
    }
    events.extend(cast.endorsed_proposal("P-1", 100_000, now));
    events.push(cast.approval("P-1", 100_000, now));
    events.push(cast.payout("P-1", 60_000, now));
    events
}

/// What the views say about the fund: everything but the clock-dependent parts.
fn views(server: &Server) -> Value {
    let fund = server.get(&format!("/v1/funds/{FUND}"));
    let mut kept = serde_json::Map::new();
    for field in
        ["cash", "by_channel", "goods", "pledges", "proposals_by_status", "donations", "income_by_year", "committee"]
    {
        kept.insert(field.into(), fund[field].clone());
    }
    kept.insert("proposals".into(), server.get(&format!("/v1/funds/{FUND}/proposals")));
    kept.insert("donation_list".into(), server.get(&format!("/v1/funds/{FUND}/donations")));
    Value::Object(kept)
}

#[test]
fn rebuild_after_a_graceful_stop_reproduces_views_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cast = Cast::new(FUND);
    let mut server = Server::start(&data, &[]);
    let last = server.accept_all(&history(&cast));
    let note = server.checkpoint_at(last);
    let before = views(&server);
    let tiles = server.tiles(last);
    assert_eq!(before["cash"]["received_fen"], 184_356);
    assert_eq!(before["cash"]["paid_fen"], 60_000);

    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a graceful shutdown, exit 0: {status}\n{}", server.log_text());

    let bogus = fundtrail(&["rebuild", "--data", s(&data), "--projection", "bogus"]);
    assert!(!bogus.status.success(), "an unknown projection is refused");
    assert!(text(&bogus).contains("bogus"), "the message names it: {}", text(&bogus));
    let rebuilt = fundtrail(&["rebuild", "--data", s(&data)]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert!(stdout(&rebuilt).contains("dropped"), "{}", stdout(&rebuilt));

    let server = Server::start(&data, &[]);
    let again = server.checkpoint_at(last);
    assert_eq!(again, note, "the checkpoint after the rebuild is the one before, byte for byte");
    assert_eq!(views(&server), before, "the rebuilt views equal those before");
    for (path, bytes) in server.tiles(last) {
        let want = &tiles.iter().find(|(p, _)| *p == path).expect("the same tiles").1;
        assert!(&bytes == want, "tile {path} differs after the rebuild");
    }
    // The rebuilt tiles hash to the root signed before the rebuild.
    let vkey = server.vkey();
    let out = fundtrail(&["verify", "--ledger", &format!("{}/ledger", server.url), "--vkey", &vkey]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains(&format!("verified: {last} entries")), "{}", stdout(&out));
    // A running server holds its projections: rebuild refuses to touch them.
    let busy = fundtrail(&["rebuild", "--data", s(&data)]);
    assert!(!busy.status.success(), "rebuild under a running server must fail");
    assert!(text(&busy).contains("still running"), "{}", text(&busy));
    assert_eq!(views(&server), before);
    // The log goes on: the next checkpoint extends the one signed before the rebuild.
    let next = server.accept_all(&[cast.donation(1, chrono::Utc::now()).1]);
    assert_eq!(next, last + 1);
    server.checkpoint_at(next);
}

#[test]
fn a_static_mirror_verifies_and_shows_the_balance() {
    let dir = tempfile::tempdir().unwrap();
    let cast = Cast::new(FUND);
    let server = Server::start(&dir.path().join("data"), &[]);
    let last = server.accept_all(&history(&cast));
    server.checkpoint_at(last);
    let vkey = server.vkey();
    let from = format!("{}/ledger", server.url);
    let mirror = dir.path().join("mirror");

    // A wrong key: nothing is written.
    let swapped = if vkey.ends_with('A') { 'B' } else { 'A' };
    let other = format!("{}{swapped}", &vkey[..vkey.len() - 1]);
    let refused = fundtrail(&["ledger", "mirror", "--from", &from, "--to", s(&mirror), "--vkey", &other]);
    assert!(!refused.status.success(), "a checkpoint that fails the key is not mirrored");
    assert!(!mirror.join("checkpoint").exists());

    let out = fundtrail(&["ledger", "mirror", "--from", &from, "--to", s(&mirror), "--vkey", &vkey]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains(&format!("mirrored {last} entries")), "{}", stdout(&out));
    drop(server); // The mirror stands on its own.

    let out = fundtrail(&["verify", "--ledger", s(&mirror), "--vkey", &vkey]);
    assert!(out.status.success(), "{}", text(&out));
    let report = stdout(&out);
    assert!(report.contains(&format!("verified: {last} entries")), "{report}");
    assert!(report.contains(FUND) && report.contains("¥1,843.56") && report.contains("¥600.00"), "{report}");
    let out = fundtrail(&["verify", "--ledger", s(&mirror), "--vkey", &vkey, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["ok"], true);
    let fund = &report["funds"][0];
    assert_eq!(fund["cash"]["received_fen"], 184_356);
    assert_eq!(fund["cash"]["paid_fen"], 60_000);
    assert_eq!(fund["cash"]["available_fen"], 184_356 - 100_000);
}

#[test]
fn a_pinned_host_key_alone_may_found_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("host.key");
    let out = fundtrail(&["keys", "new", "--out", s(&key_file), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    let server = Server::start(&dir.path().join("data"), &["--host-key", &key_id]);

    // Another key founding the host: refused before any rule, 403.
    let intruder = Cast::new(FUND);
    let (status, problem) = server.post(&intruder.setup(chrono::Utc::now())[0]);
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "host-key-pinned", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(&key_id), "the pinned key is named: {problem}");

    // The pinned key: accepted.
    let mut cast = Cast::new(FUND);
    cast.host = ActorKey::from_file_text(&std::fs::read_to_string(&key_file).unwrap()).expect("key file");
    assert_eq!(cast.host.key_id().to_string(), key_id);
    let (status, answer) = server.post(&cast.setup(chrono::Utc::now())[0]);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["type"], "host.established");

    // A second genesis, even by the pinned key: 409.
    let (status, problem) = server.post(&cast.setup(chrono::Utc::now())[0]);
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("already established"), "{problem}");
    let hosts = server.get("/v1/keys");
    assert!(hosts.to_string().contains(&key_id), "{hosts}");
}
