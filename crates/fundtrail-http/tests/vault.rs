//! The private donor vault over HTTP, on a real service (embedded sled log): the
//! public listener knows no `/private` route; the private one stores, shows the
//! donor's real donations, and erases — after which the public ledger still shows
//! the commitment and the amount, and the vault only a tombstone.

mod common;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::Duration as Days;
use common::{agent, start, t0, Reply, Server};
use fundtrail_domain::event::{Channel, DonationReceived, EventBody, GoodsLine, GoodsReceived};
use fundtrail_domain::{donor_commitment, Fen, Sha256Hex};
use fundtrail_http::vault::{PRIVATE_BODY_BYTES_MAX, PRIVATE_ROUTES};
use fundtrail_service::vault::{DonorVault, VAULT_DIR};
use fundtrail_service::Clock;
use serde_json::{json, Value};

const NAME: &str = "Li Guilan";
const REFERENCE: &str = "13800138000";
const SALT: [u8; 32] = [7; 32];

struct Private {
    url: String,
    token: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Private {
    /// The private router on its own loopback listener, over the server's service.
    async fn start(server: &Server) -> Private {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(server.clock.clone());
        let vault = DonorVault::open(&dir.path().join(VAULT_DIR), clock).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = server.service.clone();
        let token = fundtrail_testkit::serve::random_token();
        let bearer = fundtrail_http::vault::BearerToken::new(&token).unwrap();
        tokio::spawn(fundtrail_http::vault::serve_private(listener, vault, service, bearer, std::future::pending()));
        Private { url, token, agent: agent(), _dir: dir }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Reply {
        call(&self.agent, &self.url, method, path, body, Some(&self.token)).await
    }
}

async fn call(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    token: Option<&str>,
) -> Reply {
    let (agent, url, method) = (agent.clone(), format!("{base}{path}"), method.to_owned());
    let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
    tokio::task::spawn_blocking(move || {
        let answer = match (method.as_str(), body) {
            ("GET", None) => agent.get(&url).header("authorization", &auth).call(),
            ("DELETE", None) => agent.delete(&url).header("authorization", &auth).call(),
            ("PUT", Some(b)) => {
                agent.put(&url).header("content-type", "application/json").header("authorization", &auth).send(&b[..])
            }
            ("POST", Some(b)) => {
                agent.post(&url).header("content-type", "application/json").header("authorization", &auth).send(&b[..])
            }
            (m, _) => panic!("method {m}"),
        };
        let mut response = answer.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (content_type, cache_control, retry_after) =
            (header("content-type").unwrap_or_default(), header("cache-control"), header("retry-after"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().expect("body");
        Reply { status, content_type, cache_control, retry_after, body }
    })
    .await
    .unwrap()
}

fn commitment() -> Sha256Hex {
    donor_commitment(&SALT, REFERENCE)
}

fn donor_json() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "salt": B64.encode(SALT),
        "reference": REFERENCE,
        "name": NAME,
        "contact": "li.guilan@example.cn",
        "consent_public_thanks": true,
    }))
    .unwrap()
}

fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.json()["code"], code, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_serves_no_private_route() {
    let server = start(false).await;
    let c = commitment();
    for (method, path) in [
        ("GET", "/private/v1/donors".to_owned()),
        ("GET", format!("/private/v1/donors/{c}")),
        ("DELETE", format!("/private/v1/donors/{c}")),
    ] {
        let reply = call(&server.agent, &server.url, method, &path, None, None).await;
        assert_problem(&reply, 404, "not-found");
    }
    let reply =
        call(&server.agent, &server.url, "PUT", &format!("/private/v1/donors/{c}"), Some(donor_json()), None).await;
    assert_problem(&reply, 404, "not-found");
    for (_, route) in PRIVATE_ROUTES {
        assert!(!fundtrail_http::ROUTES.iter().any(|(_, r)| r == route), "{route} is public");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donor_is_stored_shown_with_real_donations_and_erased_while_the_ledger_keeps_the_amount() {
    let server = start(false).await;
    server.setup().await;
    let private = Private::start(&server).await;
    let c = commitment();
    let donor = format!("/private/v1/donors/{c}");

    // Store, idempotently.
    let reply = private.call("PUT", &donor, Some(donor_json())).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    assert_eq!(reply.json()["state"], "held");
    assert_eq!(private.call("PUT", &donor, Some(donor_json())).await.status, 200);

    // A real donation under that commitment.
    let body = EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::new(88_800).unwrap(),
        channel: Channel::Direct,
        donor: c.clone(),
        payment_ref: "WX20260301001".into(),
        pledge: None,
        restricted_purpose: None,
    });
    let (_, envelope) = server.cast.sign(&server.cast.intake, &server.cast.fund, t0(), body);
    let reply = server.submit(envelope).await;
    assert_eq!(reply.status, 201, "{}", reply.text());

    let held = private.call("GET", &donor, None).await;
    assert_eq!(held.status, 200, "{}", held.text());
    let held = held.json();
    assert_eq!(held["state"], "held");
    assert_eq!(held["name"], NAME);
    assert_eq!(held["reference"], REFERENCE);
    assert_eq!(held["salt"], B64.encode(SALT));
    assert_eq!(held["consent_public_thanks"], true);
    assert_eq!(donations(&held), vec![(c.to_string(), 88_800)]);

    // Erase: the same tombstone every time.
    server.clock.advance(Days::days(2));
    let erased = private.call("DELETE", &donor, None).await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    let tombstone = erased.json();
    assert_eq!(tombstone, json!({"state": "erased", "commitment": c, "erased_at": "2026-03-03T09:00:00Z"}));
    server.clock.advance(Days::days(1));
    let again = private.call("DELETE", &donor, None).await;
    assert_eq!((again.status, again.json()), (200, tombstone.clone()));

    // The vault holds only the tombstone; nothing personal comes back.
    let after = private.call("GET", &donor, None).await;
    assert_eq!(after.status, 200);
    let text = after.text();
    for personal in [NAME, REFERENCE, "li.guilan", &B64.encode(SALT)] {
        assert!(!text.contains(personal), "{personal:?} still served: {text}");
    }
    let after = after.json();
    assert_eq!(after["state"], "erased");
    assert_eq!(after["erased_at"], "2026-03-03T09:00:00Z");
    assert_eq!(donations(&after), vec![(c.to_string(), 88_800)]);

    // The public ledger still shows the commitment and the amount: that is the design.
    let public = server.get(&format!("/v1/funds/{}/donations", server.cast.fund)).await;
    assert_eq!(public.status, 200);
    assert_eq!(donations(&public.json()), vec![(c.to_string(), 88_800)]);

    // Erased donors are never stored again.
    assert_problem(&private.call("PUT", &donor, Some(donor_json())).await, 409, "erased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_api_refuses_with_specific_problems() {
    let server = start(false).await;
    let private = Private::start(&server).await;
    let c = commitment();
    let donor = format!("/private/v1/donors/{c}");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&donor_json()).unwrap();
        edit(&mut v);
        Some(serde_json::to_vec(&v).unwrap())
    };

    let wrong_ref = with(&|v| v["reference"] = json!("13900139000"));
    assert_problem(&private.call("PUT", &donor, wrong_ref).await, 422, "commitment-mismatch");
    let long_name = with(&|v| v["name"] = json!("x".repeat(201)));
    let reply = private.call("PUT", &donor, long_name).await;
    assert_problem(&reply, 422, "field-too-long");
    assert_eq!(reply.json()["detail"], "donor name is 201 characters long; at most 200 are kept");
    let short_salt = with(&|v| v["salt"] = json!(B64.encode([7u8; 16])));
    assert_problem(&private.call("PUT", &donor, short_salt).await, 400, "salt-length");
    let bad_b64 = with(&|v| v["salt"] = json!("not base64!"));
    assert_problem(&private.call("PUT", &donor, bad_b64).await, 400, "base64");
    let other = with(&|v| v["commitment"] = json!("ab".repeat(32)));
    assert_problem(&private.call("PUT", &donor, other).await, 400, "commitment");
    let unknown_field = with(&|v| v["ssn"] = json!("x"));
    assert_problem(&private.call("PUT", &donor, unknown_field).await, 400, "json");
    let record: Value = serde_json::from_slice(&donor_json()).unwrap();
    let fields = ["commitment", "salt", "reference", "name", "contact", "consent_public_thanks"];
    let as_array = serde_json::to_vec(&fields.map(|f| record.get(f).cloned().unwrap_or(Value::Null))).unwrap();
    assert_problem(&private.call("PUT", &donor, Some(as_array)).await, 400, "json");
    let twice = String::from_utf8(donor_json()).unwrap().replacen('{', r#"{"reference":"x","#, 1);
    assert_problem(&private.call("PUT", &donor, Some(twice.into_bytes())).await, 400, "json");
    let huge = with(&|v| v["name"] = json!("x".repeat(PRIVATE_BODY_BYTES_MAX)));
    assert_problem(&private.call("PUT", &donor, huge).await, 413, "too-large");
    assert_problem(&private.call("GET", "/private/v1/donors/not-hex", None).await, 400, "commitment");
    assert_problem(&private.call("GET", &donor, None).await, 404, "not-found");
    assert_problem(&private.call("DELETE", &donor, None).await, 404, "not-found");
    assert_problem(&private.call("GET", "/private/v1/donors?limit=0", None).await, 400, "query");
    assert_problem(&private.call("GET", "/v1/funds", None).await, 404, "not-found");

    assert_eq!(private.call("PUT", &donor, Some(donor_json())).await.status, 201);
    let changed = with(&|v| v["name"] = json!("Someone Else"));
    assert_problem(&private.call("PUT", &donor, changed).await, 409, "donor-conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_list_pages_through_records_and_tombstones() {
    let server = start(false).await;
    let private = Private::start(&server).await;
    let mut all = Vec::new();
    for i in 0..5u8 {
        let salt = [i; 32];
        let reference = format!("ref-{i}");
        let c = donor_commitment(&salt, &reference);
        let body = json!({"salt": B64.encode(salt), "reference": reference});
        let reply = private.call("PUT", &format!("/private/v1/donors/{c}"), Some(body.to_string().into())).await;
        assert_eq!(reply.status, 201, "{}", reply.text());
        all.push(c.to_string());
    }
    assert_eq!(private.call("DELETE", &format!("/private/v1/donors/{}", all[2]), None).await.status, 200);
    all.sort();

    let (mut seen, mut states, mut after) = (Vec::new(), Vec::new(), String::new());
    loop {
        let reply = private.call("GET", &format!("/private/v1/donors?limit=2{after}"), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let page = reply.json();
        for d in page["donors"].as_array().unwrap() {
            seen.push(d["commitment"].as_str().unwrap().to_owned());
            states.push(d["state"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(states.iter().filter(|s| *s == "erased").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donor_shows_their_cash_and_goods_gifts_in_ledger_order_and_no_one_elses() {
    let server = start(false).await;
    server.setup().await;
    let private = Private::start(&server).await;
    let c = commitment();
    let other = donor_commitment(&[9; 32], "13900139000");
    assert_eq!(private.call("PUT", &format!("/private/v1/donors/{c}"), Some(donor_json())).await.status, 201);

    let cash = |donor: &Sha256Hex, fen: i64, reference: &str| {
        EventBody::DonationReceived(DonationReceived {
            amount_fen: Fen::new(fen).unwrap(),
            channel: Channel::Direct,
            donor: donor.clone(),
            payment_ref: reference.into(),
            pledge: None,
            restricted_purpose: None,
        })
    };
    // Cash gifts are found in the fold's state, goods gifts in the donor index: one list.
    let goods = EventBody::GoodsReceived(GoodsReceived {
        channel: Channel::NeighbourhoodMarket,
        donor: c.clone(),
        items: vec![GoodsLine {
            name: "大米".into(), quantity: 2, unit: "袋".into(), unit_value_fen: Fen::yuan(60)
        }],
        pledge: None,
        restricted_purpose: None,
    });
    for body in [cash(&c, 5_000, "WX-1"), cash(&other, 7_000, "WX-2"), goods, cash(&c, 300, "WX-3")] {
        let (_, envelope) = server.cast.sign(&server.cast.intake, &server.cast.fund, t0(), body);
        let reply = server.submit(envelope).await;
        assert_eq!(reply.status, 201, "{}", reply.text());
    }

    let held = private.call("GET", &format!("/private/v1/donors/{c}"), None).await;
    assert_eq!(held.status, 200, "{}", held.text());
    let held = held.json();
    assert_eq!(donations(&held), vec![(c.to_string(), 5_000), (c.to_string(), 12_000), (c.to_string(), 300)]);
    let kinds: Vec<&str> = held["donations"].as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["cash", "goods", "cash"]);
    let seqs: Vec<u64> = held["donations"].as_array().unwrap().iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ledger order: {seqs:?}");
}

/// (commitment, amount) of each donation in a JSON answer.
fn donations(v: &Value) -> Vec<(String, i64)> {
    v["donations"]
        .as_array()
        .expect("donations")
        .iter()
        .map(|d| (d["donor"].as_str().unwrap().to_owned(), d["amount_fen"].as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_api_needs_its_bearer_token() {
    let server = start(false).await;
    let private = Private::start(&server).await;
    let path = format!("/private/v1/donors/{}", commitment());
    let other = fundtrail_testkit::serve::random_token();
    let near = format!("{}x", &private.token[..private.token.len() - 1]);
    for token in [None, Some(other.as_str()), Some(near.as_str()), Some("")] {
        for (method, body) in [("GET", None), ("PUT", Some(donor_json())), ("DELETE", None)] {
            let reply = call(&private.agent, &private.url, method, &path, body, token).await;
            assert_problem(&reply, 401, "unauthenticated");
        }
        let reply = call(&private.agent, &private.url, "GET", "/private/v1/donors", None, token).await;
        assert_problem(&reply, 401, "unauthenticated");
    }
    // Nothing was stored by the refused PUTs; with the token, the record is absent.
    assert_problem(&private.call("GET", &path, None).await, 404, "not-found");
    assert_eq!(private.call("PUT", &path, Some(donor_json())).await.status, 201);
    assert!(format!("{:?}", fundtrail_http::vault::BearerToken::new(&private.token).unwrap()).contains("redacted"));
    assert!(fundtrail_http::vault::BearerToken::new("short").is_err());
}
