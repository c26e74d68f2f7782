//! `fundtrail serve --witness URL=VKEY … --witness-quorum 2` with three real
//! `fundtrail witness serve` processes over real HTTP: what `/ledger/checkpoint`
//! serves while witnesses come and go, across a restart, with two replicas on one
//! NATS stream, and with witnesses that answer garbage, never answer, or forge.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use fundtrail_envelope::ActorKey;
use fundtrail_ledger::LogSigner;
use fundtrail_testkit::cast::Cast;
use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::{accept, agent, get_text};
use fundtrail_testkit::witness::{new_key, WitnessKey, WitnessProcess};
use fundtrail_testkit::NatsServer;

/// The origin `fundtrail serve` signs as by default.
const ORIGIN: &str = "fundtrail.local/ledger";
/// How long cosigning may take on a loaded 2-core machine.
const COSIGN_WAIT: Duration = Duration::from_secs(60);
const FUND: &str = "xihu-witnessed";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fundtrail"))
}

fn run(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().expect("run fundtrail")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A log key made here (OS RNG), as `--log-key` reads it, and its vkey.
fn log_key(dir: &Path) -> (PathBuf, String) {
    let key = ActorKey::generate().unwrap();
    let path = dir.join("log.key");
    std::fs::write(&path, key.to_file_text()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, LogSigner::from_seed(ORIGIN, &key.seed()).unwrap().vkey())
}

/// Three witness keys and processes for the log `log_vkey`.
fn witnesses(dir: &Path, log_vkey: &str) -> (Vec<WitnessKey>, Vec<WitnessProcess>) {
    let names = ["street.test/w", "bureau.test/w", "paper.test/w"];
    let keys: Vec<WitnessKey> = names.iter().map(|n| new_key(binary(), dir, n)).collect();
    let processes = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            WitnessProcess::start(binary(), &k.path, &dir.join(format!("w{i}")), &format!("{ORIGIN}={log_vkey}"))
        })
        .collect();
    (keys, processes)
}

/// The policy a verifier holds: the log and the three witnesses, two of three.
fn policy(dir: &Path, log_vkey: &str, keys: &[WitnessKey]) -> PathBuf {
    let path = dir.join("policy.txt");
    let text = format!(
        "log {log_vkey}\nwitness street {}\nwitness bureau {}\nwitness paper {}\ngroup local 2 street bureau paper\nquorum local\n",
        keys[0].vkey, keys[1].vkey, keys[2].vkey
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `serve` arguments for these witnesses, quorum two, quick checkpoints.
fn serve_args(log_key: &Path, witnesses: &[(String, String)]) -> Vec<String> {
    let mut args: Vec<String> = ["--log-key", log_key.to_str().unwrap(), "--checkpoint-interval-ms", "100"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--witness-timeout-ms".into(), "1000".into()]);
    for (url, vkey) in witnesses {
        args.extend(["--witness".into(), format!("{url}={vkey}")]);
    }
    if !witnesses.is_empty() {
        args.extend(["--witness-quorum".into(), "2".into()]);
    }
    args
}

fn serve(data: &Path, args: &[String]) -> ServeProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServeProcess::start(binary(), data, &args)
}

/// The tree size of the note at `url` (None when 404).
fn size_at(url: &str) -> Option<u64> {
    get_text(url)?.lines().nth(1)?.parse().ok()
}

fn served(base: &str) -> Option<u64> {
    size_at(&format!("{base}/ledger/checkpoint"))
}

fn pending(base: &str) -> Option<u64> {
    size_at(&format!("{base}/ledger/checkpoint/pending"))
}

/// One sample of `/metrics`, by its exact name and labels; 0 when absent.
fn metric(base: &str, series: &str) -> f64 {
    let text = get_text(&format!("{base}/metrics")).expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + COSIGN_WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "not within {COSIGN_WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Posts the cast's setup and `donations` donations to `bases` in turn; the last sequence.
fn post(cast: &Cast, bases: &[&str], setup: bool, donations: usize) -> u64 {
    let agent = agent();
    let now = chrono::Utc::now();
    let mut last = 0;
    if setup {
        for envelope in cast.setup(now) {
            last = accept(&agent, bases[0], &envelope);
        }
    }
    for i in 0..donations {
        let (_, envelope) = cast.donation(10_000 + i as i64, now);
        last = last.max(accept(&agent, bases[i % bases.len()], &envelope));
    }
    last
}

/// The signature lines of a note, by key name.
fn signers(note: &str) -> Vec<String> {
    let (_, signatures) = note.split_once("\n\n").expect("a signed note");
    signatures.lines().filter_map(|l| l.strip_prefix("— ")).map(|l| l.split(' ').next().unwrap().to_owned()).collect()
}

fn verify(base: &str, policy: &Path) -> Output {
    run(&["verify", "--ledger", &format!("{base}/ledger"), "--policy", policy.to_str().unwrap()])
}

#[test]
fn three_witnesses_quorum_two_through_outages_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (key, log_vkey) = log_key(dir.path());
    let (keys, mut ws) = witnesses(dir.path(), &log_vkey);
    let policy = policy(dir.path(), &log_vkey, &keys);
    let pairs: Vec<(String, String)> = ws.iter().zip(&keys).map(|(w, k)| (w.url.clone(), k.vkey.clone())).collect();
    let data = dir.path().join("server");
    let mut server = serve(&data, &serve_args(&key, &pairs));
    let base = server.url.clone();
    let cast = Cast::new(FUND);

    // A new log serves no checkpoint until a quorum cosigned one.
    let empty = get_text(&format!("{base}/ledger/checkpoint"));
    assert_eq!(empty, None, "nothing served before any quorum");

    // All three up: cosigned by all, verify --policy passes.
    let n1 = post(&cast, &[&base], true, 3);
    wait_until("the setup cosigned", || served(&base) == Some(n1));
    wait_until("all three cosigned", || signers(&get_text(&format!("{base}/ledger/checkpoint")).unwrap()).len() == 4);
    let out = verify(&base, &policy);
    assert!(out.status.success(), "{}", text(&out));

    // One witness down: still cosigned, by the other two.
    ws[0].stop();
    let n2 = post(&cast, &[&base], false, 5);
    wait_until("cosigned by two", || served(&base) == Some(n2));
    let note = get_text(&format!("{base}/ledger/checkpoint")).unwrap();
    assert_eq!(signers(&note), vec![ORIGIN.to_string(), keys[1].name.clone(), keys[2].name.clone()], "{note}");
    // Counted when its request gives up (after the quorum was served).
    wait_until("the stopped witness counted unreachable", || {
        metric(&base, "fundtrail_witness_failures_total{witness=\"street.test/w\",reason=\"unreachable\"}") >= 1.0
    });

    // Two down: checkpoints are signed (several) but none is served past n2.
    ws[1].stop();
    let mut n3 = n2;
    for _ in 0..3 {
        n3 = post(&cast, &[&base], false, 2);
        wait_until("a newer checkpoint signed", || pending(&base) == Some(n3));
    }
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(served(&base), Some(n2), "no quorum: the old checkpoint stays served");
    assert!(metric(&base, "fundtrail_witness_rounds_total{outcome=\"no_quorum\"}") >= 1.0);
    let out = verify(&base, &policy);
    assert!(out.status.success(), "the served checkpoint is witnessed: {}", text(&out));
    server.terminate();

    // The same data served without witnesses shows the newest (unwitnessed) checkpoint:
    // verify --policy refuses it, naming who is missing.
    let mut plain = serve(&data, &serve_args(&key, &[]));
    wait_until("the unwitnessed checkpoint served", || served(&plain.url) == Some(n3));
    let out = verify(&plain.url, &policy);
    assert!(!out.status.success(), "an unwitnessed checkpoint must be refused: {}", text(&out));
    assert!(text(&out).contains("lacks the witness quorum local"), "{}", text(&out));
    plain.terminate();

    // Restarted with witnesses: the last cosigned checkpoint is served at once.
    let mut server = serve(&data, &serve_args(&key, &pairs));
    let base = server.url.clone();
    assert_eq!(served(&base), Some(n2), "the last quorum checkpoint is served as soon as ready");

    // One witness back: the backlog (several signed checkpoints) in one consistency step.
    ws[1].restart();
    wait_until("the backlog cosigned", || served(&base) == Some(n3));
    let bureau = "witness=\"bureau.test/w\"";
    assert_eq!(metric(&base, &format!("fundtrail_witness_cosigned_total{{{bureau}}}")), 1.0, "one step");
    assert_eq!(metric(&base, &format!("fundtrail_witness_cosigned_size{{{bureau}}}")), n3 as f64);
    let out = verify(&base, &policy);
    assert!(out.status.success(), "{}", text(&out));
    // The witness's own state (C2SP tlog-witness monitoring): size n3.
    let hash = fundtrail_witness::origin_hash(ORIGIN);
    assert_eq!(size_at(&format!("{}/{hash}/checkpoint", ws[1].url)), Some(n3));
    server.terminate();
}

#[test]
fn two_replicas_on_one_stream_share_the_witnesses() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (key, log_vkey) = log_key(dir.path());
    let (keys, ws) = witnesses(dir.path(), &log_vkey);
    let policy = policy(dir.path(), &log_vkey, &keys);
    let pairs: Vec<(String, String)> = ws.iter().zip(&keys).map(|(w, k)| (w.url.clone(), k.vkey.clone())).collect();
    let mut args = serve_args(&key, &pairs);
    args.extend(["--nats".into(), nats.url()]);
    let a = serve(&dir.path().join("a"), &args);
    let b = serve(&dir.path().join("b"), &args);
    let cast = Cast::new(FUND);
    let mut last = post(&cast, &[&a.url], true, 0);
    for _ in 0..4 {
        last = post(&cast, &[&a.url, &b.url], false, 6);
        std::thread::sleep(Duration::from_millis(150));
    }
    for base in [&a.url, &b.url] {
        wait_until("both replicas serve a cosigned checkpoint of everything", || served(base) == Some(last));
        let out = verify(base, &policy);
        assert!(out.status.success(), "{}", text(&out));
        // No witness refused a checkpoint as a fork, a bad proof or a bad signature
        // (a slow answer or "I am ahead of this checkpoint" may happen in a race).
        let metrics = get_text(&format!("{base}/metrics")).unwrap();
        for line in metrics.lines().filter(|l| l.starts_with("fundtrail_witness_failures_total{")) {
            let benign = ["witness_ahead", "conflicts", "timeout"];
            assert!(benign.iter().any(|r| line.contains(&format!("reason=\"{r}\""))), "{base}: {line}");
        }
    }
    // One size, one note: the replicas' newest signed checkpoints are the same bytes.
    wait_until("both signed the last size", || pending(&a.url) == Some(last) && pending(&b.url) == Some(last));
    let pa = get_text(&format!("{}/ledger/checkpoint/pending", a.url)).unwrap();
    let pb = get_text(&format!("{}/ledger/checkpoint/pending", b.url)).unwrap();
    assert_eq!(pa, pb, "a checkpoint note depends only on the log key and the tree");
    let hash = fundtrail_witness::origin_hash(ORIGIN);
    let at_last = ws.iter().filter(|w| size_at(&format!("{}/{hash}/checkpoint", w.url)) == Some(last)).count();
    assert!(at_last >= 2, "a quorum of witnesses cosigned the last size");
}

/// A witness that is not one: answers every request with `answer(body)` (None: never answers).
fn fake_witness(answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Headers, then Content-Length bytes of body.
            let body = loop {
                let Ok(n) = stream.read(&mut buf) else { break None };
                if n == 0 {
                    break None;
                }
                request.extend_from_slice(&buf[..n]);
                let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if request.len() >= end + 4 + length {
                    break Some(request[end + 4..end + 4 + length].to_vec());
                }
            };
            let Some(body) = body else { continue };
            match answer(&body) {
                Some(bytes) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&bytes);
                }
                None => held.push(stream), // never answered
            }
        }
    });
    url
}

#[test]
fn garbage_silence_and_forgery_are_counted_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let (key, log_vkey) = log_key(dir.path());
    let real_key = new_key(binary(), dir.path(), "street.test/w");
    let real = WitnessProcess::start(binary(), &real_key.path, &dir.path().join("w0"), &format!("{ORIGIN}={log_vkey}"));
    let garbage_key = new_key(binary(), dir.path(), "garbage.test/w");
    let silent_key = new_key(binary(), dir.path(), "silent.test/w");
    let forged_key = new_key(binary(), dir.path(), "forged.test/w");
    let garbage = fake_witness(|_| Some(b"hello, I am a witness\n".to_vec()));
    let silent = fake_witness(|_| None);
    // A cosignature line under the listed key's name and key id, with a signature
    // that key never made.
    let (name, rest) = forged_key.vkey.split_once('+').unwrap();
    let key_id = u32::from_str_radix(rest.split('+').next().unwrap(), 16).unwrap().to_be_bytes().to_vec();
    let name = name.to_owned();
    let forged = fake_witness(move |_| {
        let mut bytes = key_id.clone();
        bytes.extend_from_slice(&1_770_000_000u64.to_be_bytes());
        bytes.extend_from_slice(&[7u8; 64]);
        Some(format!("— {name} {}\n", base64::engine::general_purpose::STANDARD.encode(bytes)).into_bytes())
    });
    let pairs = vec![
        (real.url.clone(), real_key.vkey.clone()),
        (garbage, garbage_key.vkey.clone()),
        (silent, silent_key.vkey.clone()),
        (forged, forged_key.vkey.clone()),
    ];
    let server = serve(&dir.path().join("server"), &serve_args(&key, &pairs));
    let base = server.url.clone();
    let last = post(&Cast::new(FUND), &[&base], true, 2);
    wait_until("the checkpoint signed", || pending(&base) == Some(last));
    let failures = |w: &str, reason: &str| {
        metric(&base, &format!("fundtrail_witness_failures_total{{witness=\"{w}\",reason=\"{reason}\"}}"))
    };
    wait_until("every bad answer counted", || {
        failures("garbage.test/w", "bad_answer") >= 1.0
            && failures("silent.test/w", "timeout") >= 1.0
            && failures("forged.test/w", "bad_answer") >= 1.0
    });
    assert!(metric(&base, "fundtrail_witness_cosigned_total{witness=\"street.test/w\"}") >= 1.0);
    for w in ["garbage.test/w", "silent.test/w", "forged.test/w"] {
        assert_eq!(metric(&base, &format!("fundtrail_witness_cosigned_total{{witness=\"{w}\"}}")), 0.0, "{w}");
    }
    // One real cosignature of two needed: nothing is served, no receipt is given.
    assert_eq!(served(&base), None);
    assert_eq!(metric(&base, "fundtrail_ledger_checkpoint_size"), 0.0);
    assert_eq!(metric(&base, "fundtrail_ledger_signed_size"), last as f64);
}

#[test]
fn serve_refuses_bad_witness_arguments_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let d = data.to_str().unwrap();
    let vkey = new_key(binary(), dir.path(), "street.test/w").vkey;
    let witness = format!("http://127.0.0.1:9={vkey}");
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--witness", "http://127.0.0.1:9"], "expected URL=VKEY"),
        (vec!["--witness", "127.0.0.1:9=x"], "not an http:// or https:// URL"),
        (vec!["--witness", "http://127.0.0.1:9=not-a-vkey"], "witness http://127.0.0.1:9"),
        (
            vec!["--witness", &witness, "--witness-quorum", "2"],
            "--witness-quorum 2: must be between 1 and the 1 witnesses",
        ),
        (vec!["--witness", &witness, "--witness", &witness], "listed twice"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["serve", "--listen", "127.0.0.1:0", "--data", d];
        argv.extend(&args);
        let out = run(&argv);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    assert!(!data.join("projections").exists(), "nothing was started");
}
