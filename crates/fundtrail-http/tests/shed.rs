//! Load shedding on a real server (embedded store, real router, real sockets): what
//! one connection may cost the others. Requests are written by hand on raw TCP
//! connections, so that which connection sends what is exact.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fundtrail_http::Limits;
use fundtrail_testkit::cast::forged;
use fundtrail_testkit::service::{t0, Store, TestHttp, TestService};

/// One answer read off a connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn connect(url: &str) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

fn post_head(path: &str, length: usize) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
}

fn post(stream: &mut TcpStream, path: &str, body: &[u8]) -> Answer {
    stream.write_all(post_head(path, body.len()).as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_answer(stream)
}

fn get(stream: &mut TcpStream, path: &str) -> Answer {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).unwrap();
    read_answer(stream)
}

/// Reads one HTTP/1.1 answer with a Content-Length body.
fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("reading an answer");
        assert_eq!(n, 1, "the connection closed before an answer: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let length: usize =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    Answer { status, headers, body: String::from_utf8(body).unwrap() }
}

/// Whether the server closed `stream` (EOF) within a few seconds.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    matches!(stream.read(&mut buf), Ok(0))
}

async fn started(limits: Limits) -> (TestService, TestHttp) {
    let service = TestService::start(Store::Embedded).await;
    service.setup().await;
    let http = TestHttp::serve_with(service.service.clone(), limits).await.expect("the HTTP server starts");
    (service, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_spend_their_own_connections_budget_and_nobody_elses() {
    let limits = Limits { auth_failures_burst: 3, auth_failures_per_s: 1, ..Limits::default() };
    let (service, http) = started(limits).await;
    let last_before = service.service.log.last_seq().await.unwrap();
    let (_, honest) = service.cast.donation(52_000, t0());
    let (_, other) = service.cast.donation(100, t0());
    let url = http.url.clone();
    let metrics_url = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut forger = connect(&url);
        for i in 0..3 {
            let a = post(&mut forger, "/v1/events", &forged(&other));
            assert_eq!(a.status, 401, "forgery {i} is verified and refused: {a:?}");
            assert!(a.body.contains("bad-signature") || a.body.contains("signature"), "{a:?}");
        }
        let shed = post(&mut forger, "/v1/events", &forged(&other));
        assert_eq!(shed.status, 429, "the fourth forgery is refused unverified: {shed:?}");
        assert!(shed.body.contains("too-many-failures"), "{shed:?}");
        assert_eq!(shed.header("retry-after"), Some("1"));
        assert_eq!(shed.header("connection"), Some("close"));
        assert!(closed_by_server(&mut forger), "the server closes a connection that spent its budget");

        // Another connection has its own budget: its honest envelope goes through,
        // and its own forgery is still verified (401, not 429).
        let mut honest_conn = connect(&url);
        let ok = post(&mut honest_conn, "/v1/events", &honest);
        assert_eq!(ok.status, 201, "{ok:?}");
        let refused = post(&mut honest_conn, "/v1/events", &forged(&other));
        assert_eq!(refused.status, 401, "{refused:?}");
        let ok = post(&mut honest_conn, "/v1/events", &other);
        assert_eq!(ok.status, 201, "{ok:?}");

        let metrics = get(&mut connect(&metrics_url), "/metrics").body;
        assert!(metrics.contains("fundtrail_http_shed_total{limit=\"auth-failures\"} 1"), "{metrics}");
        assert!(metrics.contains("fundtrail_http_shed_total{limit=\"submissions\"} 0"), "{metrics}");
    })
    .await
    .unwrap();
    // Nothing forged reached the log: the two honest donations did.
    assert_eq!(service.service.log.last_seq().await.unwrap(), last_before + 2);
    http.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_beyond_the_cap_is_refused_before_its_body_is_read() {
    let limits = Limits { submissions_max: 1, ..Limits::default() };
    let (service, http) = started(limits).await;
    let (_, first) = service.cast.donation(100, t0());
    let (_, second) = service.cast.donation(200, t0());
    let url = http.url.clone();
    tokio::task::spawn_blocking(move || {
        // The first submission holds the only slot while its body is on the way.
        let mut slow = connect(&url);
        slow.write_all(post_head("/v1/events", first.len()).as_bytes()).unwrap();
        slow.write_all(&first[..10]).unwrap();
        let mut quick = connect(&url);
        // Wait until the server holds the slot for it (however slow this machine is).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !get(&mut quick, "/metrics").body.contains("fundtrail_http_submissions_in_progress 1\n") {
            assert!(std::time::Instant::now() < deadline, "the first submission never took its slot");
            std::thread::sleep(Duration::from_millis(10));
        }
        let shed = post(&mut quick, "/v1/events", &second);
        assert_eq!(shed.status, 503, "{shed:?}");
        assert!(shed.body.contains("overloaded"), "{shed:?}");
        assert_eq!(shed.header("retry-after"), Some("1"));
        assert_eq!(shed.header("connection"), Some("close"), "its body was never read");
        // The slow one finishes and frees the slot; the refused one, sent again, goes through.
        slow.write_all(&first[10..]).unwrap();
        assert_eq!(read_answer(&mut slow).status, 201);
        let mut quick = connect(&url);
        let again = post(&mut quick, "/v1/events", &second);
        assert_eq!(again.status, 201, "{again:?}");
        let metrics = get(&mut quick, "/metrics").body;
        assert!(metrics.contains("fundtrail_http_shed_total{limit=\"submissions\"} 1"), "{metrics}");
    })
    .await
    .unwrap();
    http.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_cap_waits_until_one_closes() {
    let limits = Limits { connections_max: 2, ..Limits::default() };
    let (_service, http) = started(limits).await;
    let url = http.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = connect(&url);
        let mut b = connect(&url);
        assert_eq!(get(&mut a, "/healthz").status, 200);
        assert_eq!(get(&mut b, "/healthz").status, 200);
        // The third is in the kernel's backlog: connected, never read, never answered.
        let mut c = connect(&url);
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut buf = [0u8; 1];
        let waited = c.read(&mut buf);
        assert!(
            matches!(&waited, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
            "a third connection must wait while two are open: {waited:?}"
        );
        drop(a);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let answer = read_answer(&mut c);
        assert_eq!(answer.status, 200, "answered once a slot is free: {answer:?}");
        assert_eq!(get(&mut b, "/healthz").status, 200);
    })
    .await
    .unwrap();
    http.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forger_that_reconnects_spends_its_addresss_budget_and_a_proven_client_is_still_served() {
    let limits =
        Limits { auth_failures_burst: 8, address_failures_burst: 4, address_failures_per_s: 1, ..Limits::default() };
    let (service, http) = started(limits).await;
    let (_, first) = service.cast.donation(100, t0());
    let (_, second) = service.cast.donation(200, t0());
    let url = http.url.clone();
    tokio::task::spawn_blocking(move || {
        // A client proves it holds a key on its connection.
        let mut proven = connect(&url);
        assert_eq!(post(&mut proven, "/v1/events", &first).status, 201);
        // A forger opens a new connection for each forgery, all from 127.0.0.1.
        for i in 0..4 {
            let a = post(&mut connect(&url), "/v1/events", &forged(&second));
            assert_eq!(a.status, 401, "forgery {i}: {a:?}");
        }
        let shed = post(&mut connect(&url), "/v1/events", &forged(&second));
        assert_eq!(shed.status, 429, "the address spent its budget: {shed:?}");
        // The refusal came after the wait for a token (the tarpit), so the forger
        // is paced at the address's rate; the proven connection is served at once.
        let served = post(&mut proven, "/v1/events", &second);
        assert_eq!(served.status, 201, "{served:?}");
    })
    .await
    .unwrap();
    http.stop().await.unwrap();
}
