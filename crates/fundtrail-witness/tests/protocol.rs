//! The witness against C2SP tlog-witness, request by request and status by status,
//! over real HTTP on loopback; then the log's client against real witnesses and against
//! witnesses that misbehave (garbage, forged or misdirected cosignatures, silence).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use fundtrail_ledger::{
    leaf_hash, prove_consistency, Checkpoint, Hash, LogSigner, MemoryHashStore, Policy, PolicyCheckError,
    WitnessSigner, EMPTY_ROOT,
};
use fundtrail_witness::protocol::{format_request, SIZE_CONTENT_TYPE};
use fundtrail_witness::{
    origin_hash, ConsistencyProver, CosignError, Witness, WitnessClientConfig, WitnessConfig, WitnessEndpoint,
    WitnessError, WitnessOutcome, WitnessPool,
};

const ORIGIN: &str = "fundtrail.test/ledger";

/// A log: its key and its tree, grown leaf by leaf.
struct Log {
    signer: LogSigner,
    tree: MemoryHashStore,
}

impl Log {
    fn new(origin: &str, seed: u8, leaves: u32) -> Log {
        let mut log = Log { signer: LogSigner::from_seed(origin, &[seed; 32]).unwrap(), tree: MemoryHashStore::new() };
        log.grow(leaves, "");
        log
    }

    fn grow(&mut self, leaves: u32, salt: &str) {
        for _ in 0..leaves {
            let i = self.tree.size();
            self.tree.append(leaf_hash(format!("{salt}entry {i}").as_bytes()));
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.signer.name(), self.tree.size(), self.tree.root()).unwrap()
    }

    fn note(&self) -> Vec<u8> {
        self.signer.sign_checkpoint(&self.checkpoint()).unwrap()
    }

    fn proof(&self, old: u64) -> Vec<Hash> {
        prove_consistency(old, self.tree.size(), &self.tree).unwrap()
    }

    fn prover(&self) -> Arc<dyn ConsistencyProver> {
        let tree = self.tree.clone();
        Arc::new(move |old, new| prove_consistency(old, new, &tree))
    }
}

/// A witness served on a loopback port.
struct Served {
    url: String,
    witness: Arc<Witness>,
    signer: WitnessSigner,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn endpoint(&self) -> WitnessEndpoint {
        WitnessEndpoint { url: self.url.clone(), verifier: self.signer.verifier().clone() }
    }

    /// Stops the witness and waits until it has let go of its port and connections,
    /// so that nothing sent afterwards can reach it.
    async fn stop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(task) = self.task.take() {
            task.await.expect("the witness server task");
        }
    }
}

async fn serve_witness(name: &str, seed: u8, logs: &[&Log]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let signer = WitnessSigner::from_seed(name, &[seed; 32]).unwrap();
    let config = WitnessConfig {
        signer: signer.clone(),
        logs: logs.iter().map(|l| l.signer.verifier()).collect(),
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(|| 1_764_547_200),
        test_pause: None,
    };
    let witness = Arc::new(Witness::open(config).unwrap());
    let (url, stop, task) = serve_router(fundtrail_witness::server::router(witness.clone())).await;
    Served { url, witness, signer, stop: Some(stop), task: Some(task), _dir: dir }
}

async fn serve_router(router: axum::Router) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (url, stop, task)
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

async fn post_body(url: &str, body: Vec<u8>) -> Reply {
    let url = format!("{url}/add-checkpoint");
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        let mut response = agent.post(&url).send(&body[..]).unwrap();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body = response.body_mut().read_to_string().unwrap();
        Reply { status: response.status().as_u16(), content_type, body }
    })
    .await
    .unwrap()
}

async fn get(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let mut response = agent.get(&url).call().unwrap();
        (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

async fn add(served: &Served, old: u64, proof: &[Hash], note: &[u8]) -> Reply {
    post_body(&served.url, format_request(old, proof, note)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_request_by_request() {
    let mut log = Log::new(ORIGIN, 1, 5);
    let w = serve_witness("witness.test/w1", 9, &[&log]).await;

    // 200: first checkpoint, from old size 0 and no proof.
    let reply = add(&w, 0, &[], &log.note()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (line, cosig) =
        fundtrail_ledger::verify_witness_answer(reply.body.as_bytes(), &log.checkpoint(), w.signer.verifier()).unwrap();
    assert_eq!(cosig.timestamp, 1_764_547_200);
    assert!(reply.body.starts_with("— witness.test/w1 ") && reply.body.ends_with('\n'));
    assert_eq!(w.witness.latest(ORIGIN).unwrap().size, 5);
    // The monitoring endpoint serves the log's note with the cosignature attached.
    let (status, note) = get(format!("{}/{}/checkpoint", w.url, origin_hash(ORIGIN))).await;
    assert_eq!(status, 200);
    assert!(note.starts_with(&String::from_utf8(log.note()).unwrap()) && note.ends_with(&line.to_line()));
    assert_eq!(get(format!("{}/{}/checkpoint", w.url, origin_hash("other"))).await.0, 404);

    // 409: the old size is not the witness's; the body names its size.
    let reply = add(&w, 0, &[], &log.note()).await;
    assert_eq!((reply.status, reply.content_type.as_str(), reply.body.as_str()), (409, SIZE_CONTENT_TYPE, "5\n"));

    // 200: growth with a consistency proof.
    log.grow(4, "");
    let reply = add(&w, 5, &log.proof(5), &log.note()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(w.witness.latest(ORIGIN).unwrap().size, 9);

    // 422: a proof that does not verify; nothing changes.
    log.grow(3, "");
    let mut bad = log.proof(9);
    bad[0] = leaf_hash(b"not a node");
    let reply = add(&w, 9, &bad, &log.note()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(reply.body.contains("not consistent"), "{}", reply.body);
    assert_eq!(w.witness.latest(ORIGIN).unwrap().size, 9);

    // 422: a fork, another checkpoint of the size it cosigned.
    let mut fork = Log::new(ORIGIN, 1, 8);
    fork.grow(1, "forked ");
    assert_eq!(fork.tree.size(), 9);
    let reply = add(&w, 9, &[], &fork.note()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(reply.body.contains("fork: two checkpoints of size 9"), "{}", reply.body);
    // …and a fork that grew further: its proof from 9 cannot match the witness's root.
    fork.grow(3, "forked ");
    let reply = add(&w, 9, &fork.proof(9), &fork.note()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);

    // 400: old size larger than the checkpoint's — a rolled-back log claiming the old size.
    let rolled_back = Log::new(ORIGIN, 1, 7);
    let reply = add(&w, 9, &[], &rolled_back.note()).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    // …and claiming its own old size: 409 names the witness's size, 9.
    let reply = add(&w, 5, &rolled_back.proof(5), &rolled_back.note()).await;
    assert_eq!((reply.status, reply.body.as_str()), (409, "9\n"));

    // 404: an origin it does not witness.
    let stranger = Log::new("elsewhere.test/log", 2, 3);
    let reply = add(&w, 0, &[], &stranger.note()).await;
    assert_eq!(reply.status, 404, "{}", reply.body);

    // 403: the right origin signed by another key; a trusted key's signature tampered.
    let impostor = Log::new(ORIGIN, 3, 12);
    let reply = add(&w, 9, &impostor.proof(9), &impostor.note()).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let mut tampered = log.note();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let reply = add(&w, 9, &log.proof(9), &tampered).await;
    assert_eq!(reply.status, 403, "{}", reply.body);

    // 400: malformed bodies.
    for body in [&b"old 9\n"[..], b"hello\n\nworld\n", b"old 09\n\nx\n", b"old 9\nnot-a-hash\n\nx\n"] {
        let reply = post_body(&w.url, body.to_vec()).await;
        assert_eq!(reply.status, 400, "{:?}: {}", String::from_utf8_lossy(body), reply.body);
    }
    assert_eq!(w.witness.latest(ORIGIN).unwrap().size, 9, "no refusal changed the witness");

    // 200: the same checkpoint again, and then the next one.
    let same = Log::new(ORIGIN, 1, 9);
    assert_eq!(add(&w, 9, &[], &same.note()).await.status, 200);
    let reply = add(&w, 9, &log.proof(9), &log.note()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(w.witness.latest(ORIGIN).unwrap().size, 12);

    // 405: only POST.
    assert_eq!(get(format!("{}/add-checkpoint", w.url)).await.0, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_trees_and_proofs_from_zero() {
    let empty = Log::new(ORIGIN, 1, 0);
    let w = serve_witness("witness.test/w1", 9, &[&empty]).await;
    // 422: size 0 must have the empty tree's root.
    let cp = Checkpoint::new(ORIGIN, 0, leaf_hash(b"not empty")).unwrap();
    let reply = add(&w, 0, &[], &empty.signer.sign_checkpoint(&cp).unwrap()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    // 422: old size 0 with a proof.
    let log = Log::new(ORIGIN, 1, 4);
    let body = format!("old 0\n{}\n\n{}", EMPTY_ROOT.to_base64(), String::from_utf8(log.note()).unwrap());
    let reply = post_body(&w.url, body.into_bytes()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(w.witness.latest(ORIGIN).is_none());
    // 200: the empty tree itself.
    assert_eq!(add(&w, 0, &[], &empty.note()).await.status, 200);
    assert_eq!(w.witness.latest(ORIGIN).unwrap().size, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_example_request() {
    // The C2SP tlog-witness example body, verbatim. Its log key is not published, so a
    // witness that does not know the origin answers 404, and one configured with another
    // key for that origin answers 403 (no signature by a trusted key).
    let body = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";
    let other = serve_witness("witness.test/w1", 9, &[&Log::new(ORIGIN, 1, 0)]).await;
    assert_eq!(post_body(&other.url, body.as_bytes().to_vec()).await.status, 404);
    let sofa = serve_witness("witness.test/w1", 9, &[&Log::new("example.com/behind-the-sofa", 1, 0)]).await;
    assert_eq!(post_body(&sofa.url, body.as_bytes().to_vec()).await.status, 403);
}

fn quick() -> WitnessClientConfig {
    WitnessClientConfig { request_timeout_ms: 800, attempts_max: 2, retry_pause_ms: 20, straggler_grace_ms: 50 }
}

fn policy(log: &Log, witnesses: &[&Served], k: usize) -> Policy {
    let list = witnesses.iter().map(|w| (w.signer.verifier().clone(), None)).collect();
    Policy::threshold(log.signer.verifier(), list, k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_witnesses_quorum_two() {
    let mut log = Log::new(ORIGIN, 1, 3);
    let mut w1 = serve_witness("witness.test/w1", 11, &[&log]).await;
    let mut w2 = serve_witness("witness.test/w2", 12, &[&log]).await;
    let w3 = serve_witness("witness.test/w3", 13, &[&log]).await;
    let pool = WitnessPool::new(vec![w1.endpoint(), w2.endpoint(), w3.endpoint()], quick()).unwrap();
    let policy = policy(&log, &[&w1, &w2, &w3], 2);

    let cosigned = pool.request_cosignatures(2, &log.note(), log.prover()).await.unwrap();
    assert_eq!(cosigned.cosignatures, 3);
    let witnessed = policy.verify_checkpoint(&cosigned.note).unwrap();
    assert_eq!(witnessed.cosigned_by.len(), 3);
    assert!(pool.known_sizes().iter().all(|(_, size)| *size == 3));

    // One witness stopped: still cosigned by two.
    w1.stop().await;
    log.grow(5, "");
    let cosigned = pool.request_cosignatures(2, &log.note(), log.prover()).await.unwrap();
    assert_eq!(cosigned.cosignatures, 2);
    assert!(matches!(cosigned.witnesses[0].outcome, WitnessOutcome::Failed(WitnessError::Unreachable { .. })));
    assert_eq!(cosigned.witnesses[0].attempts, 2, "retried once");
    let witnessed = policy.verify_checkpoint(&cosigned.note).unwrap();
    assert_eq!(witnessed.missing, ["w1"]);

    // Two stopped: no quorum, and the error says who cosigned and who did not.
    w2.stop().await;
    log.grow(5, "");
    let err = pool.request_cosignatures(2, &log.note(), log.prover()).await.unwrap_err();
    let CosignError::NoQuorum { partial, .. } = &err else { panic!("{err}") };
    assert_eq!(partial.cosignatures, 1);
    let text = err.to_string();
    assert!(text.starts_with("no witness quorum for size 13: 1 of 2 cosignatures"), "{text}");
    assert!(text.contains("witness.test/w3 cosigned") && text.contains("witness.test/w2 ("), "{text}");
    // A verifier refuses the partially cosigned checkpoint, naming who is missing.
    let refused = policy.verify_checkpoint(&partial.note).unwrap_err();
    assert!(
        matches!(&refused, PolicyCheckError::QuorumNotMet { signed, missing, .. }
        if signed == &["w3"] && missing == &["w1", "w2"]),
        "{refused}"
    );

    // Restarted (a new witness process on the same data is covered by the CLI tests); a
    // witness that comes back is brought up to date in one consistency step.
    assert_eq!(w3.witness.latest(ORIGIN).unwrap().size, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_ahead_of_the_pool_is_caught_up_by_its_409() {
    let mut log = Log::new(ORIGIN, 1, 4);
    let w = serve_witness("witness.test/w1", 11, &[&log]).await;
    let first = WitnessPool::new(vec![w.endpoint()], quick()).unwrap();
    first.request_cosignatures(1, &log.note(), log.prover()).await.unwrap();
    // Another replica's pool knows nothing of the witness: 409 says 4, it proves from 4.
    log.grow(6, "");
    let second = WitnessPool::new(vec![w.endpoint()], quick()).unwrap();
    let cosigned = second.request_cosignatures(1, &log.note(), log.prover()).await.unwrap();
    assert_eq!(cosigned.witnesses[0].attempts, 2);
    assert_eq!(cosigned.witnesses[0].witness_size, 10);
    // The first pool, still thinking 4, is told 10 and asks for a checkpoint of 10 again.
    let again = first.request_cosignatures(1, &log.note(), log.prover()).await.unwrap();
    assert_eq!(again.cosignatures, 1);
    // A rolled-back log: the witness is ahead of it; refused, with the sizes.
    let rolled_back = Log::new(ORIGIN, 1, 8);
    let err = first.request_cosignatures(1, &rolled_back.note(), rolled_back.prover()).await.unwrap_err();
    let CosignError::NoQuorum { partial, .. } = err else { panic!() };
    assert_eq!(
        partial.witnesses[0].outcome,
        WitnessOutcome::Failed(WitnessError::WitnessAhead { witness_size: 10, size: 8 })
    );
    // A forked log of the same size: the witness answers 422.
    let mut fork = Log::new(ORIGIN, 1, 9);
    fork.grow(1, "forked ");
    let err = first.request_cosignatures(1, &fork.note(), fork.prover()).await.unwrap_err();
    let CosignError::NoQuorum { partial, .. } = err else { panic!() };
    assert!(matches!(&partial.witnesses[0].outcome,
        WitnessOutcome::Failed(WitnessError::Refused { status: 422, detail }) if detail.contains("fork")));
    assert_eq!(w.witness.latest(ORIGIN).unwrap().root, log.tree.root());
}

/// A witness that answers 200 with `answer(checkpoint body)`.
async fn fake_witness(answer: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + Clone + 'static) -> String {
    let router = axum::Router::new().route(
        "/add-checkpoint",
        post(move |body: axum::body::Bytes| {
            let answer = answer.clone();
            async move { answer(&body) }
        }),
    );
    let (url, stop, _task) = serve_router(router).await;
    std::mem::forget(stop);
    url
}

fn checkpoint_in(body: &[u8]) -> Checkpoint {
    let request = fundtrail_witness::protocol::parse_request(body).unwrap();
    let text = std::str::from_utf8(request.note).unwrap();
    Checkpoint::parse_body(&text[..=text.find("\n\n").unwrap()]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_witnesses_are_refused_each_with_its_error() {
    let log = Log::new(ORIGIN, 1, 6);
    let key = WitnessSigner::from_seed("witness.test/w1", &[21; 32]).unwrap();
    let endpoint = |url: String| WitnessEndpoint { url, verifier: key.verifier().clone() };
    let expect = |report: &fundtrail_witness::WitnessReport| match &report.outcome {
        WitnessOutcome::Failed(e) => e.clone(),
        other => panic!("{other:?}"),
    };

    let garbage = fake_witness(|_| b"<html>cosigned, promise</html>\n".to_vec()).await;
    let forger = {
        let forger = WitnessSigner::from_seed("witness.test/w1", &[22; 32]).unwrap();
        fake_witness(move |body| forger.cosign(&checkpoint_in(body), 5).to_line().into_bytes()).await
    };
    let misdirected = {
        let key = key.clone();
        fake_witness(move |body| {
            let mut cp = checkpoint_in(body);
            cp.size += 1;
            key.cosign(&cp, 5).to_line().into_bytes()
        })
        .await
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream); // accepted, never answered
        }
        std::thread::sleep(Duration::from_secs(30));
    });

    for (url, check) in [
        (garbage, "not a signature line"),
        (forger, "no cosignature by witness.test/w1"),
        (misdirected, "does not verify over checkpoint fundtrail.test/ledger size 6"),
    ] {
        let pool = WitnessPool::new(vec![endpoint(url)], quick()).unwrap();
        let err = pool.request_cosignatures(1, &log.note(), log.prover()).await.unwrap_err();
        let CosignError::NoQuorum { partial, .. } = &err else { panic!("{err}") };
        let error = expect(&partial.witnesses[0]);
        assert!(matches!(error, WitnessError::BadAnswer(_)), "{error}");
        assert!(error.to_string().contains(check), "{error}");
        assert_eq!(partial.note, log.note(), "nothing attached");
    }

    let pool = WitnessPool::new(vec![endpoint(silent)], quick()).unwrap();
    let started = Instant::now();
    let err = pool.request_cosignatures(1, &log.note(), log.prover()).await.unwrap_err();
    let elapsed = started.elapsed();
    let CosignError::NoQuorum { partial, .. } = &err else { panic!("{err}") };
    assert_eq!(expect(&partial.witnesses[0]), WitnessError::Timeout { timeout_ms: 800 });
    assert_eq!(partial.witnesses[0].attempts, 2);
    assert!(elapsed < Duration::from_secs(4), "bounded by timeout × attempts: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_returns_without_waiting_for_a_silent_witness() {
    let log = Log::new(ORIGIN, 1, 6);
    let w1 = serve_witness("witness.test/w1", 11, &[&log]).await;
    let w2 = serve_witness("witness.test/w2", 12, &[&log]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = WitnessEndpoint {
        url: format!("http://{}", listener.local_addr().unwrap()),
        verifier: WitnessSigner::from_seed("witness.test/w3", &[13; 32]).unwrap().verifier().clone(),
    };
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(8).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    let config = WitnessClientConfig { request_timeout_ms: 5_000, ..quick() };
    let pool = WitnessPool::new(vec![w1.endpoint(), w2.endpoint(), silent], config).unwrap();
    let started = Instant::now();
    let cosigned = pool.request_cosignatures(2, &log.note(), log.prover()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(cosigned.witnesses[2].outcome, WitnessOutcome::Pending);
    // While that request still runs, the silent witness is skipped, not piled on.
    let again = pool.request_cosignatures(2, &log.note(), log.prover()).await.unwrap();
    assert_eq!(again.witnesses[2].outcome, WitnessOutcome::Busy);
}

#[test]
fn endpoints_parse() {
    let key = WitnessSigner::from_seed("witness.test/w1", &[21; 32]).unwrap();
    let e = WitnessEndpoint::parse(&format!("http://127.0.0.1:1234/=={}", key.vkey()));
    assert!(e.is_err(), "the URL ends at the first '='");
    let e = WitnessEndpoint::parse(&format!("http://127.0.0.1:1234/={}", key.vkey())).unwrap();
    assert_eq!(e.url, "http://127.0.0.1:1234");
    assert!(WitnessEndpoint::parse("ftp://x=y").is_err());
    assert!(WitnessEndpoint::parse(&key.vkey()).is_err());
    let twice = vec![e.clone(), e];
    assert!(WitnessPool::new(twice, WitnessClientConfig::default()).is_err());
}
