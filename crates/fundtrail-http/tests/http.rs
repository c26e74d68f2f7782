//! The HTTP API against a real service (embedded sled, and a real nats-server),
//! through a real HTTP client; every answer is checked against schemas/openapi.json.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use fundtrail_domain::event::{
    Channel, DonationReceived, GoodsDistributed, GoodsLine, GoodsOut, GoodsReceived, ProposalClosed, PurposeDeclared,
};
use fundtrail_domain::{EventBody, Fen};
use fundtrail_envelope::ActorKey;
use fundtrail_http::ROUTES;
use fundtrail_ledger::tiles::verify_entry_bundle;
use fundtrail_ledger::{
    tree_hash, verify_chain, verify_receipt, LeafInput, LogVerifier, Tile, TileHashReader, TileSource,
};
use fundtrail_testkit::cast::{hash, pid};
use serde_json::Value;

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(false).await } )*
        }
        mod nats {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(true).await } )*
        }
    };
}

macro_rules! embedded_only {
    ($($name:ident),* $(,)?) => {
        mod embedded_only {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(false).await } )*
        }
    };
}

both_stores!(a_fund_year_over_http, the_live_feed_sends_each_event);
embedded_only!(
    the_document_and_the_server_agree_on_every_edge,
    bad_input_gets_a_problem_and_changes_nothing,
    tiles_verify_against_the_checkpoint,
    health_readiness_and_metrics,
    compression_is_transparent_and_never_holds_the_live_feed
);

#[test]
fn every_route_is_described_in_openapi() {
    let spec = Spec::load();
    let paths = spec.doc["paths"].as_object().expect("paths");
    let mut described = Vec::new();
    for (method, route) in ROUTES {
        let template = route.replace("{*", "{");
        let operation = &paths.get(&template).unwrap_or_else(|| panic!("{template} is not in openapi.json"))
            [method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {template} is not in openapi.json");
        let declared: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        for segment in template.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(declared.contains(&name), "{method} {template}: path parameter {name} is not declared");
        }
        described.push((method.to_ascii_lowercase(), template));
    }
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            assert!(
                described.contains(&(method.clone(), path.clone())),
                "openapi.json describes {method} {path}, which is not served"
            );
        }
    }
    // The schemas are strict: a body missing a field or with an extra one fails.
    let fund_detail = spec.validator(&serde_json::json!({ "$ref": "#/components/schemas/FundDetail" }));
    assert!(!fund_detail.is_valid(&serde_json::json!({ "fund": "xihu-01" })));
    let page = spec.validator(&serde_json::json!({ "$ref": "#/components/schemas/DonationsPage" }));
    assert!(page.is_valid(&serde_json::json!({ "donations": [], "next_after": null })));
    assert!(!page.is_valid(&serde_json::json!({ "donations": [], "next_after": null, "donor_name": "x" })));
    // Every schema in the document compiles, references included.
    for (name, schema) in spec.doc["components"]["schemas"].as_object().unwrap() {
        let _ = spec.validator(&serde_json::json!({ "$ref": format!("#/components/schemas/{name}") }));
        assert!(schema.is_object());
    }
}

fn donation_body(fen: i64, donor: &str) -> EventBody {
    EventBody::DonationReceived(DonationReceived {
        amount_fen: Fen::new(fen).unwrap(),
        channel: Channel::Direct,
        donor: hash(donor),
        payment_ref: "WX-HTTP".into(),
        pledge: None,
        restricted_purpose: None,
    })
}

async fn a_fund_year_over_http(nats: bool) {
    let s = start(nats).await;
    s.setup().await;
    let fund = s.cast.fund.clone();

    // Donations: 201 with their ledger index; the same envelope again is 200 duplicate.
    let (first_id, first) = s.cast.donation(120_000, t0());
    let accepted = s.submit(first.clone()).await;
    assert_eq!(accepted.status, 201, "{}", accepted.text());
    let a = accepted.json();
    assert_eq!(a["id"], first_id.to_string());
    assert_eq!(a["type"], "donation.received");
    assert_eq!((a["duplicate"].as_bool(), a["applied"].as_bool()), (Some(false), Some(true)));
    assert_eq!(a["ledger_index"].as_u64().unwrap() + 1, a["seq"].as_u64().unwrap());
    let again = s.submit(first).await;
    assert_eq!(again.status, 200);
    assert_eq!((again.json()["duplicate"].as_bool(), &again.json()["seq"]), (Some(true), &a["seq"]));
    for fen in [50_000, 30_000] {
        assert_eq!(s.submit(s.cast.donation(fen, t0()).1).await.status, 201);
    }

    // A proposal: endorsed, approved, paid in part, closed.
    for envelope in s.cast.endorsed_proposal("P-7", 100_000, t0()) {
        assert_eq!(s.submit(envelope).await.status, 201);
    }
    assert_eq!(s.submit(s.cast.approval("P-7", 80_000, t0())).await.status, 201);
    let payout = s.submit(s.cast.payout("P-7", 50_000, t0())).await;
    assert_eq!(payout.status, 201);
    let close = EventBody::ProposalClosed(ProposalClosed {
        proposal: pid("P-7"),
        report: "照明改造完成".into(),
        evidence: vec![hash("report")],
    });
    let closed = s.submit(s.cast.in_fund(&s.cast.proposer, t0(), close)).await;
    assert_eq!(closed.status, 201);

    // The first gift's trace says which ledger it reflects: the state after the close,
    // the last event, so the ledger of exactly that many entries.
    let last_seq = closed.json()["seq"].as_u64().unwrap();
    let trace = s.get_checked(&format!("/v1/donations/{first_id}/trace"), "/v1/donations/{id}/trace").await;
    assert_eq!(trace.status, 200, "{}", trace.text());
    let trace = trace.json();
    assert_eq!(trace["as_of_sequence"].as_u64(), Some(last_seq), "{trace}");
    assert_eq!(trace["allocations"][0]["payout"]["sequence"], payout.json()["seq"], "{trace}");
    assert!(trace["allocations"][0]["payout"]["sequence"].as_u64().unwrap() <= last_seq);
    let note = s.service.read.wait_checkpoint(last_seq, Duration::from_secs(10)).await.expect("a checkpoint covers it");
    let vkey = s.get_checked("/ledger/vkey", "/ledger/vkey").await.text();
    let size = LogVerifier::from_vkey(vkey.trim()).unwrap().verify_checkpoint(note.as_slice()).unwrap().size;
    assert_eq!(size, last_seq, "the ledger size equals the trace's as_of_sequence");

    // The fund: cash after the close released the unspent 300.00.
    let f = s.fund().await;
    assert_eq!(f["cash"]["received_fen"], 200_000);
    assert_eq!(f["cash"]["paid_fen"], 50_000);
    // Income by channel: every amount carries the _fen suffix.
    let direct = &f["by_channel"]["direct"];
    assert_eq!((&direct["received_fen"], &direct["donations"]), (&serde_json::json!(200_000), &serde_json::json!(3)));
    assert!(direct.get("received").is_none(), "{direct}");
    assert_eq!(f["cash"]["reserved_fen"], 0);
    assert_eq!(f["cash"]["available_fen"], 150_000);
    assert_eq!(f["compliance"]["as_of"], "2026-03-01T09:00:00Z");
    assert_eq!(f["compliance"]["cost_ratios"]["current_year"]["year"], 2026);
    assert_eq!(f["compliance"]["disclosures_due"][0]["kind"], "final", "a closed project owes its final disclosure");
    let funds = s.get_checked("/v1/funds", "/v1/funds").await;
    assert_eq!(funds.json()["funds"].as_array().unwrap().len(), 1);

    // The proposal and its money trail, payout to ledger entry.
    let p = s.get_checked(&format!("/v1/funds/{fund}/proposals/P-7"), "/v1/funds/{fund}/proposals/{id}").await;
    assert_eq!(p.status, 200);
    let p = p.json();
    assert_eq!(p["status"], "closed");
    assert_eq!(p["tally"]["approvals"], 3);
    assert_eq!(p["votes"].as_array().unwrap().len(), 3);
    let steps: Vec<&str> = p["money_trail"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["requested", "approved", "paid", "closed"]);
    assert_eq!(p["money_trail"][2]["ledger_index"], payout.json()["ledger_index"]);
    assert_eq!(p["money_trail"][3]["amount_fen"], 30_000);
    let list = s.get_checked(&format!("/v1/funds/{fund}/proposals"), "/v1/funds/{fund}/proposals").await;
    assert_eq!(list.json()["proposals"][0]["proposal"], "P-7");

    // Donations, paginated.
    let page = s.get_checked(&format!("/v1/funds/{fund}/donations?limit=2"), "/v1/funds/{fund}/donations").await;
    let page = page.json();
    assert_eq!(page["donations"].as_array().unwrap().len(), 2);
    assert_eq!(page["donations"][0]["amount_fen"], 120_000);
    let next = page["next_after"].as_u64().expect("a next page");
    let rest =
        s.get_checked(&format!("/v1/funds/{fund}/donations?after={next}&limit=2"), "/v1/funds/{fund}/donations").await;
    let rest = rest.json();
    assert_eq!(rest["donations"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_after"], Value::Null);
    let capped = s.get_checked(&format!("/v1/funds/{fund}/donations?limit=100000"), "/v1/funds/{fund}/donations").await;
    assert_eq!(capped.json()["donations"].as_array().unwrap().len(), 3);

    // Goods in kind (docs/design.md §1.6, "Goods"): a gift restricted to 助老 and an
    // unrestricted one; a distribution with no proposal takes unrestricted goods only.
    let declare =
        EventBody::PurposeDeclared(PurposeDeclared { purpose: "助老".into(), description: "老年食堂".into() });
    assert_eq!(s.submit(s.cast.in_fund(&s.cast.host, t0(), declare)).await.status, 201);
    let goods = |quantity: u64, purpose: Option<&str>| {
        let body = EventBody::GoodsReceived(GoodsReceived {
            channel: Channel::NeighbourhoodMarket,
            donor: hash(&format!("merchant-{quantity}")),
            items: vec![GoodsLine {
                name: "大米".into(), quantity, unit: "袋".into(), unit_value_fen: Fen::yuan(60)
            }],
            pledge: None,
            restricted_purpose: purpose.map(str::to_owned),
        });
        s.cast.sign(&s.cast.intake, &s.cast.fund, t0(), body)
    };
    let (restricted_id, restricted) = goods(5, Some("助老"));
    let (plain_id, plain) = goods(3, None);
    assert_eq!(s.submit(restricted).await.status, 201);
    assert_eq!(s.submit(plain).await.status, 201);
    let hand_out = |quantity: u64| {
        let body = EventBody::GoodsDistributed(GoodsDistributed {
            items: vec![GoodsOut { name: "大米".into(), quantity, unit: "袋".into() }],
            purpose: "春节慰问 困难家庭".into(),
            proposal: None,
            evidence: vec![],
        });
        s.cast.in_fund(&s.cast.proposer, t0(), body)
    };
    let detail = "the distribution needs 4 袋 大米; it names no proposal, so only unrestricted goods may go: 3 袋 available (5 袋 more restricted to purposes)";
    refused(&s, hand_out(4), 422, "goods", detail).await;
    let distributed = s.submit(hand_out(2)).await;
    assert_eq!(distributed.status, 201);
    let template = "/v1/donations/{id}/trace";
    let t = s.get_checked(&format!("/v1/donations/{plain_id}/trace"), template).await.json();
    assert_eq!((&t["kind"], &t["lines"][0]["in_stock"]), (&serde_json::json!("goods"), &serde_json::json!(1)));
    let part = &t["lines"][0]["distributions"][0];
    assert_eq!((part["quantity"].as_u64(), part["proposal"].is_null()), (Some(2), true));
    assert_eq!(part["distribution"]["ledger_entry"], distributed.json()["ledger_index"]);
    assert!(t["summary"].as_str().unwrap().starts_with("your 3 袋 大米: 2 袋 → 春节慰问 困难家庭, "), "{t}");
    let t = s.get_checked(&format!("/v1/donations/{restricted_id}/trace"), template).await.json();
    assert_eq!(t["summary"], "your 5 袋 大米 (restricted to 助老): 5 袋 in stock");
    let t = s.get_checked(&format!("/v1/donations/{first_id}/trace"), template).await.json();
    assert_eq!((&t["kind"], &t["amount_fen"]), (&serde_json::json!("cash"), &serde_json::json!(120_000)));

    // The event as stored: the exact envelope bytes of the ledger entry.
    let e = s.get_checked(&format!("/v1/events/{first_id}"), "/v1/events/{id}").await;
    assert_eq!(e.status, 200);
    let e = e.json();
    assert_eq!(e["event"]["body"]["amount_fen"], 120_000);
    let stored = B64.decode(e["envelope_base64"].as_str().unwrap()).unwrap();
    let entry = s.service.read.entry(e["ledger_index"].as_u64().unwrap()).unwrap().unwrap();
    assert_eq!(&entry[40..], &stored[..], "the envelope is served exactly as stored");

    // The donor's receipt verifies against the log key served at /ledger/vkey.
    let vkey = s.get_checked("/ledger/vkey", "/ledger/vkey").await.text();
    let log = LogVerifier::from_vkey(vkey.trim()).unwrap();
    let r = s.get_checked(&format!("/v1/receipts/{first_id}"), "/v1/receipts/{id}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    let entry = B64.decode(r["entry"].as_str().unwrap()).unwrap();
    let verified = verify_receipt(r["receipt"].as_str().unwrap().as_bytes(), LeafInput::Entry(&entry), &log).unwrap();
    assert_eq!(verified.index, r["index"].as_u64().unwrap());
    let not_donation = s
        .get_checked(&format!("/v1/receipts/{}", p["payouts"][0]["event"].as_str().unwrap()), "/v1/receipts/{id}")
        .await;
    assert_eq!(not_donation.status, 404);

    // Proofs.
    let cp = s.get_checked("/ledger/checkpoint", "/ledger/checkpoint").await;
    assert_eq!(cp.cache_control.as_deref(), Some("no-cache"));
    let checkpoint = log.verify_checkpoint(&cp.body).unwrap();
    let proof = s.get_checked("/v1/ledger/proof?index=0", "/v1/ledger/proof").await.json();
    assert!(proof["size"].as_u64().unwrap() >= 1);
    let consistency = s.get_checked("/v1/ledger/consistency?from=1", "/v1/ledger/consistency").await;
    assert_eq!(consistency.status, 200);
    let beyond = s.get_checked(&format!("/v1/ledger/proof?index={}", checkpoint.size + 10), "/v1/ledger/proof").await;
    assert_eq!(beyond.status, 404);
    let bad_query = s.get_checked("/v1/ledger/proof?index=minus-one", "/v1/ledger/proof").await;
    assert_eq!(bad_query.status, 400);

    // Keys.
    let keys = s.get_checked("/v1/keys", "/v1/keys").await.json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 11, "the host and ten actors");
    let intake = s.get_checked(&format!("/v1/keys/{}", s.cast.intake.key_id()), "/v1/keys/{key}").await.json();
    assert_eq!(intake["roles"][fund.as_str()][0], "intake");

    // Unknown things are 404 problems.
    let unknown_event = "01937b2e-4c1a-7d3e-9f00-123456789abc";
    for (path, template) in [
        (format!("/v1/events/{unknown_event}"), "/v1/events/{id}"),
        ("/v1/funds/nowhere".to_owned(), "/v1/funds/{fund}"),
        ("/v1/funds/nowhere/donations".to_owned(), "/v1/funds/{fund}/donations"),
        (format!("/v1/funds/{fund}/proposals/P-404"), "/v1/funds/{fund}/proposals/{id}"),
        (format!("/v1/receipts/{unknown_event}"), "/v1/receipts/{id}"),
    ] {
        let reply = s.get_checked(&path, template).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.content_type, "application/problem+json");
    }
    let no_route = s.get("/v2/nothing").await;
    assert_eq!((no_route.status, no_route.content_type.as_str()), (404, "application/problem+json"));
    let bad_id = s.get_checked("/v1/events/not-a-uuid", "/v1/events/{id}").await;
    assert_eq!(bad_id.status, 400);
}

/// The integer query parameters: (path with `{}` for the value, spec path, name).
const INTEGER_QUERIES: [(&str, &str, &str); 5] = [
    ("/v1/ledger/proof?index=0&size={}", "/v1/ledger/proof", "size"),
    ("/v1/ledger/proof?index={}", "/v1/ledger/proof", "index"),
    ("/v1/ledger/consistency?from=0&to={}", "/v1/ledger/consistency", "to"),
    ("/v1/funds/xihu-01/donations?after={}", "/v1/funds/{fund}/donations", "after"),
    ("/v1/funds/xihu-01/donations?limit={}", "/v1/funds/{fund}/donations", "limit"),
];

/// Where a newcomer found the document and the server disagreeing, they now agree:
/// every integer query parameter's documented bounds are the server's, the
/// stream refuses `from=0`, a consistency proof `from > to` is a documented 400,
/// and the document states the size limits behind 413.
async fn the_document_and_the_server_agree_on_every_edge(nats: bool) {
    let s = start(nats).await;
    s.setup().await;
    assert_eq!(s.cast.fund.as_str(), "xihu-01");
    // A checkpoint is signed within the interval; the ledger routes answer from it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.get("/ledger/checkpoint").await.status != 200 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint signed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let param = |template: &str, name: &str| -> Value {
        let params = s.spec.doc["paths"][template]["get"]["parameters"].as_array().unwrap().clone();
        params.into_iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{template} {name}"))["schema"].clone()
    };
    for (path, template, name) in INTEGER_QUERIES {
        let schema = param(template, name);
        let max = schema["maximum"].as_u64().unwrap_or_else(|| panic!("{template} {name}: no maximum: {schema}"));
        assert_eq!(max, u64::MAX, "{template} {name}");
        // Values from 2^63 to the largest documented are answered as documented (never 400)…
        for value in [1u64 << 63, max] {
            let reply = s.get_checked(&path.replace("{}", &value.to_string()), template).await;
            assert_ne!(reply.status, 400, "{name}={value}: {}", reply.text());
        }
        // …one more is a 400 naming the parameter, and so is one below the minimum.
        let min = schema["minimum"].as_u64().unwrap();
        let beyond = (u128::from(max) + 1).to_string();
        let below = (i128::from(min) - 1).to_string();
        for value in [beyond, below] {
            let reply = s.get_checked(&path.replace("{}", &value), template).await;
            assert_eq!(reply.status, 400, "{name}={value}: {}", reply.text());
            assert!(reply.json()["detail"].as_str().unwrap().contains(name), "{}", reply.text());
        }
    }

    // The live feed: from=0 is below the documented minimum of 1.
    assert_eq!(param("/v1/stream", "from")["minimum"], 1);
    let reply = s.get_checked("/v1/stream?from=0", "/v1/stream").await;
    assert_eq!((reply.status, reply.json()["code"].as_str()), (400, Some("query")));
    assert!(reply.json()["detail"].as_str().unwrap().contains("at least 1"), "{}", reply.text());

    // A consistency proof from a larger tree to a smaller one: 400, as documented.
    let reply = s.get_checked("/v1/ledger/consistency?from=3&to=2", "/v1/ledger/consistency").await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.json()["detail"].as_str().unwrap().contains("larger than to"), "{}", reply.text());
    let described = &s.spec.doc["paths"]["/v1/ledger/consistency"]["get"]["responses"]["400"]["description"];
    assert!(described.as_str().unwrap().contains("from greater than to"), "{described}");

    // 413: the document names the limits the server applies.
    let body = &s.spec.doc["paths"]["/v1/events"]["post"]["requestBody"];
    assert_eq!(body["x-envelope-bytes-max"].as_u64(), Some(fundtrail_envelope::ENVELOPE_SIZE_MAX as u64));
    assert_eq!(body["x-body-bytes-max"].as_u64(), Some(fundtrail_http::BODY_BYTES_MAX as u64));
    let too_large = s.spec.doc["paths"]["/v1/events"]["post"]["responses"]["413"]["description"].as_str().unwrap();
    for limit in [fundtrail_envelope::ENVELOPE_SIZE_MAX, fundtrail_http::BODY_BYTES_MAX] {
        assert!(too_large.contains(&limit.to_string()), "{too_large}");
    }

    // The live feed's two kinds of event are both described.
    let events =
        &s.spec.doc["paths"]["/v1/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]["x-sse-events"];
    assert_eq!(events["event"]["$ref"], "#/components/schemas/StreamMessage");
    assert_eq!(events["error"]["$ref"], "#/components/schemas/StreamError");
    let error = s.spec.validator(&serde_json::json!({ "$ref": "#/components/schemas/StreamError" }));
    assert!(error.is_valid(&serde_json::json!({"code": "unavailable", "detail": "the event log: connection lost"})));
}

/// Checks a problem answer and that nothing changed: the log and the fund's cash.
async fn refused(s: &Server, envelope: Vec<u8>, status: u16, code: &str, detail: &str) {
    let (seq_before, cash_before) = (s.last_seq().await, s.fund().await["cash"].clone());
    let reply = s.submit(envelope).await;
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.content_type, "application/problem+json");
    let problem = reply.json();
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["status"], status);
    assert_eq!(problem["type"], format!("https://fundtrail.example/problems/{code}"));
    let text = problem["detail"].as_str().unwrap();
    assert!(text.contains(detail), "detail {text:?} lacks {detail:?}");
    assert_eq!(s.last_seq().await, seq_before, "{code}: the log grew");
    assert_eq!(s.fund().await["cash"], cash_before, "{code}: the fund's cash changed");
}

async fn bad_input_gets_a_problem_and_changes_nothing(nats: bool) {
    let s = start(nats).await;
    s.setup().await;
    let c = &s.cast;
    assert_eq!(s.submit(c.donation(100_000, t0()).1).await.status, 201);
    for envelope in c.endorsed_proposal("P-7", 100_000, t0()) {
        assert_eq!(s.submit(envelope).await.status, 201);
    }
    assert_eq!(s.submit(c.approval("P-7", 80_000, t0())).await.status, 201);
    assert_eq!(s.submit(c.payout("P-7", 50_000, t0())).await.status, 201);
    let (_, valid) = c.donation(700, t0());
    let mut envelope: Value = serde_json::from_slice(&valid).unwrap();

    // 400: not JSON, not a DSSE envelope, a wrong payloadType, bad base64.
    refused(&s, b"hello".to_vec(), 400, "envelope-json", "not strict JSON").await;
    refused(&s, br#"{"not":"an envelope"}"#.to_vec(), 400, "envelope-shape", "DSSE shape").await;
    let mut wrong_type = envelope.clone();
    wrong_type["payloadType"] = "text/plain".into();
    refused(&s, serde_json::to_vec(&wrong_type).unwrap(), 400, "payload-type", "text/plain").await;
    let mut bad_b64 = envelope.clone();
    bad_b64["payload"] = "%%%".into();
    refused(&s, serde_json::to_vec(&bad_b64).unwrap(), 400, "base64", "payload").await;

    // 401: a signature that does not verify, an unknown key, an author who is not the signer.
    let sig = envelope["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let mut raw = B64.decode(&sig).unwrap();
    raw[0] ^= 1;
    envelope["signatures"][0]["sig"] = B64.encode(&raw).into();
    refused(&s, serde_json::to_vec(&envelope).unwrap(), 401, "bad-signature", "does not verify").await;
    let stranger = ActorKey::generate().unwrap();
    let (_, unknown) = c.sign(&stranger, &c.fund, t0(), donation_body(500, "x"));
    refused(&s, unknown, 401, "unknown-key", &stranger.key_id().to_string()).await;
    let (event, _) = fundtrail_envelope::actor::sign_new(&c.intake, &c.fund, t0(), donation_body(600, "y"));
    let forged = c.proposer.sign_payload(&event.to_bytes());
    refused(&s, forged, 401, "author-mismatch", "is not the signer").await;

    // 403: a proposer may not record donations.
    let (_, by_proposer) = c.sign(&c.proposer, &c.fund, t0(), donation_body(800, "z"));
    refused(&s, by_proposer, 403, "role", "intake").await;

    // 409: an accepted id reused for other content.
    let (mut event, accepted) = fundtrail_envelope::actor::sign_new(&c.intake, &c.fund, t0(), donation_body(100, "r"));
    assert_eq!(s.submit(accepted).await.status, 201);
    event.body = donation_body(999, "r");
    refused(&s, c.intake.sign_event(&event), 409, "id-reused", &event.id.to_string()).await;

    // 413: an envelope over the cap, and a body over the request limit.
    let mut padded = valid.clone();
    padded.resize(fundtrail_envelope::ENVELOPE_SIZE_MAX + 1, b' ');
    refused(&s, padded, 413, "too-large", "49152").await;
    let mut huge = valid.clone();
    huge.resize(fundtrail_http::BODY_BYTES_MAX + 10_000, b' ');
    refused(&s, huge, 413, "too-large", "exceeds").await;

    // 422: the rule and the numbers.
    refused(
        &s,
        c.payout("P-7", 120_000, t0()),
        422,
        "approved-remainder",
        "payout ¥1,200.00 exceeds approved remainder ¥300.00 of proposal P-7",
    )
    .await;
    refused(&s, c.donation(900, t0() + chrono::Duration::hours(2)).1, 422, "clock", "too far").await;

    // 415: a body declared as something else.
    let reply = s.request("POST", "/v1/events", valid.clone(), Some("text/plain")).await;
    s.spec.check("post", "/v1/events", &reply);
    assert_eq!((reply.status, reply.json()["code"].as_str()), (415, Some("media-type")));

    // The untouched original still goes in.
    assert_eq!(s.submit(valid).await.status, 201);
}

/// SSE messages as (event, id, data), read on a plain thread.
fn follow_feed(url: String, last_event_id: Option<u64>) -> mpsc::Receiver<(String, String, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let mut request = agent.get(&url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.call().expect("stream connects");
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        let reader = BufReader::new(response.into_body().into_reader());
        let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if line.is_empty() {
                if !data.is_empty() && tx.send((event.clone(), id.clone(), data.clone())).is_err() {
                    return;
                }
                (event, id, data) = (String::new(), String::new(), String::new());
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    });
    rx
}

async fn the_live_feed_sends_each_event(nats: bool) {
    let s = start(nats).await;
    s.setup().await;
    let setup_len = s.last_seq().await;
    let from_start = follow_feed(format!("{}/v1/stream?from=1", s.url), None);
    let resumed = follow_feed(format!("{}/v1/stream", s.url), Some(setup_len - 1));
    let message_schema = s.spec.validator(&serde_json::json!({ "$ref": "#/components/schemas/StreamMessage" }));
    let receive = |rx: &mpsc::Receiver<(String, String, String)>| {
        let (event, id, data) = rx.recv_timeout(Duration::from_secs(10)).expect("a message in time");
        assert_eq!(event, "event");
        let data: Value = serde_json::from_str(&data).unwrap();
        assert!(message_schema.is_valid(&data), "{data}");
        assert_eq!(data["seq"].as_u64().unwrap().to_string(), id);
        data
    };
    for seq in 1..=setup_len {
        assert_eq!(receive(&from_start)["seq"], seq);
    }
    assert_eq!(receive(&resumed)["seq"], setup_len, "Last-Event-ID resumes after it");
    let (id, envelope) = s.cast.donation(4_200, t0());
    let submitted = s.submit(envelope.clone()).await.json();
    for rx in [&from_start, &resumed] {
        let data = receive(rx);
        assert_eq!(data["seq"], submitted["seq"]);
        assert_eq!((data["id"].as_str(), data["type"].as_str()), (Some(&*id.to_text()), Some("donation.received")));
        assert_eq!(data["envelope"], serde_json::from_slice::<Value>(&envelope).unwrap());
    }
    // Shutting down ends open feeds, so a graceful shutdown is not held open.
    s.state.begin_shutdown();
    assert!(matches!(from_start.recv_timeout(Duration::from_secs(10)), Err(mpsc::RecvTimeoutError::Disconnected)));
}

/// Tiles fetched over HTTP, as a mirror or a verifier would.
struct HttpTiles {
    agent: ureq::Agent,
    base: String,
}

impl HttpTiles {
    fn fetch(&self, path: &str) -> Result<(u16, Option<String>, Vec<u8>), String> {
        let mut response = self.agent.get(&format!("{}/ledger/{path}", self.base)).call().map_err(|e| e.to_string())?;
        let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        Ok((status, cache, response.body_mut().with_config().limit(1 << 25).read_to_vec().map_err(|e| e.to_string())?))
    }
}

impl TileSource for HttpTiles {
    fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, String> {
        match self.fetch(&tile.path())? {
            (200, Some(cache), body) if cache.contains("immutable") => Ok(body),
            (status, cache, _) => Err(format!("{}: {status} {cache:?}", tile.path())),
        }
    }
}

async fn tiles_verify_against_the_checkpoint(nats: bool) {
    let s = start(nats).await;
    s.setup().await;
    let submits = (0..300).map(|i| s.service.submit(s.cast.donation(1_000 + i, t0()).1));
    for r in futures::future::join_all(submits).await {
        assert!(r.unwrap().applied);
    }
    let size = s.last_seq().await;
    assert!(size > 300);
    s.service.read.wait_checkpoint(size, Duration::from_secs(10)).await.expect("a checkpoint covers every entry");
    let tiles = HttpTiles { agent: agent(), base: s.url.clone() };
    tokio::task::spawn_blocking(move || {
        let (_, _, vkey) = tiles.fetch("vkey").unwrap();
        let log = LogVerifier::from_vkey(String::from_utf8(vkey).unwrap().trim()).unwrap();
        let (status, _, note) = tiles.fetch("checkpoint").unwrap();
        assert_eq!(status, 200);
        let cp = log.verify_checkpoint(&note).unwrap();
        assert_eq!(cp.size, size);
        // The tree hash from tiles alone (each tile authenticated against the root).
        let reader = TileHashReader::new(cp.size, cp.root, &tiles);
        assert_eq!(tree_hash(cp.size, &reader).unwrap(), cp.root);
        // Every entry bundle matches its level-0 tile, and the entries chain from 0.
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for n in 0..cp.size.div_ceil(256) {
            let width = (cp.size - n * 256).min(256) as u16;
            let bundle = Tile::entries(n, width);
            let data = tiles.read_tile(&bundle).unwrap();
            let level0 = reader.read_tile(&bundle.twin().unwrap()).unwrap();
            entries.extend(verify_entry_bundle(&bundle, &data, &level0).unwrap().into_iter().map(<[u8]>::to_vec));
        }
        assert_eq!(entries.len() as u64, cp.size);
        verify_chain(entries.iter().map(Vec::as_slice)).unwrap();
        // A narrower partial tile is a prefix of the full one; nothing past the checkpoint.
        let full = tiles.read_tile(&Tile::hashes(0, 0, 256)).unwrap();
        assert_eq!(tiles.read_tile(&Tile::hashes(0, 0, 3)).unwrap(), full[..3 * 32]);
        assert_eq!(tiles.read_tile(&Tile::hashes(1, 0, 1)).unwrap().len(), 32);
        let right_edge = (cp.size - 256) as u16;
        for beyond in [
            Tile::hashes(0, 1, right_edge + 1).path(),
            Tile::entries(1, right_edge + 1).path(),
            Tile::hashes(0, 1, 256).path(),
            Tile::hashes(1, 0, 2).path(),
            "tile/0/0".to_owned(),
            "tile/0/000.p/0".to_owned(),
            "tile/9/000".to_owned(),
        ] {
            let (status, _, _) = tiles.fetch(&beyond).unwrap();
            assert_eq!(status, 404, "{beyond}");
        }
    })
    .await
    .unwrap();
    let spec_tile = s.get_checked("/ledger/tile/0/000", "/ledger/tile/{level}/{n}").await;
    assert_eq!(spec_tile.cache_control.as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(spec_tile.content_type, "application/octet-stream");
    let spec_bundle = s.get_checked("/ledger/tile/entries/001.p/5", "/ledger/tile/entries/{n}").await;
    assert_eq!(spec_bundle.status, 200);
    let missing = s.get_checked("/ledger/tile/entries/002", "/ledger/tile/entries/{n}").await;
    assert_eq!(missing.status, 404);
}

async fn health_readiness_and_metrics(nats: bool) {
    let s = start(nats).await;
    assert_eq!(s.get_checked("/healthz", "/healthz").await.status, 200);
    s.setup().await;
    let ready = s.get_checked("/readyz", "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let no_checkpoint_yet = s.get_checked("/v1/ledger/consistency?from=1&to=99999", "/v1/ledger/consistency").await;
    assert!([404, 503].contains(&no_checkpoint_yet.status));
    let refused = s.submit(b"{}".to_vec()).await;
    assert_eq!(refused.status, 400);
    // Public reads are open to any web page.
    let url = format!("{}/ledger/vkey", s.url);
    let cors = tokio::task::spawn_blocking(move || {
        let response = agent().get(&url).header("origin", "https://donor.example").call().unwrap();
        response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
    })
    .await
    .unwrap();
    assert_eq!(cors.as_deref(), Some("*"));
    let metrics = s.get_checked("/metrics", "/metrics").await;
    assert!(metrics.content_type.starts_with("text/plain"));
    let text = metrics.text();
    for line in [
        "fundtrail_http_requests_total{method=\"POST\",route=\"/v1/events\",status=\"201\"} 23",
        "fundtrail_events_total{outcome=\"accepted\",code=\"key.enrolled\"} 10",
        "fundtrail_events_total{outcome=\"refused\",code=\"envelope-shape\"} 1",
        "fundtrail_submit_seconds_count 24",
        "fundtrail_projection_applied_seq 23",
        "fundtrail_ledger_entries 23",
    ] {
        assert!(text.lines().any(|l| l == line), "metrics lack {line:?}:\n{text}");
    }
}

/// GET `url` with `Accept-Encoding: accept` (none when `None`): (status, Content-Encoding,
/// Vary, the body as sent, decoded).
fn get_encoded(url: &str, accept: Option<&str>) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    use std::io::Read;
    let mut request = agent().get(url);
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    let mut response = request.call().unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (encoding, vary) = (header("content-encoding"), header("vary"));
    let status = response.status().as_u16();
    let sent = response.body_mut().with_config().limit(1 << 25).read_to_vec().unwrap();
    let mut decoded = Vec::new();
    match encoding.as_deref() {
        None => decoded = sent,
        Some("gzip") => {
            flate2::read::GzDecoder::new(&sent[..]).read_to_end(&mut decoded).unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(&sent[..], 4096).read_to_end(&mut decoded).unwrap();
        }
        Some(other) => panic!("{url}: unexpected Content-Encoding {other}"),
    }
    (status, encoding, vary, decoded)
}

async fn compression_is_transparent_and_never_holds_the_live_feed(_nats: bool) {
    let s = start(false).await;
    s.setup().await;
    for i in 0..300 {
        assert!(s.service.submit(s.cast.donation(1_000 + i, t0()).1).await.unwrap().applied);
    }
    let size = s.last_seq().await;
    s.service.read.wait_checkpoint(size, Duration::from_secs(10)).await.expect("a checkpoint covers every entry");
    let fund = s.cast.fund.to_string();
    let url = s.url.clone();
    let feed_url = format!("{}/v1/stream", s.url);
    tokio::task::spawn_blocking(move || {
        // JSON, an entry bundle, the checkpoint: the decoded bytes are the identity bytes.
        for path in [
            format!("/v1/funds/{fund}"),
            format!("/v1/funds/{fund}/donations?limit=100"),
            "/ledger/tile/entries/000".to_owned(),
            "/ledger/checkpoint".to_owned(),
        ] {
            let (status, identity_encoding, _, identity) = get_encoded(&format!("{url}{path}"), None);
            assert_eq!((status, identity_encoding), (200, None), "{path}: no Accept-Encoding gets identity");
            let (_, _, _, identity_too) = get_encoded(&format!("{url}{path}"), Some("identity"));
            assert_eq!(identity_too, identity, "{path}");
            for (accept, want) in [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br")] {
                let (status, encoding, vary, decoded) = get_encoded(&format!("{url}{path}"), Some(accept));
                assert_eq!(status, 200);
                if path != "/ledger/checkpoint" {
                    assert_eq!(encoding.as_deref(), Some(want), "{path} with {accept}");
                    assert!(vary.unwrap_or_default().to_ascii_lowercase().contains("accept-encoding"), "{path}");
                }
                assert_eq!(decoded, identity, "{path} with {accept}: compression is transparent");
            }
        }
        // Hash tiles are SHA-256 output: sent as they are.
        let (_, encoding, _, tile) = get_encoded(&format!("{url}/ledger/tile/0/000"), Some("gzip, br"));
        assert_eq!((encoding, tile.len()), (None, 256 * 32));
        // The portal's scripts keep their precompressed gzip copy, compressed once.
        let (_, encoding, _, script) = get_encoded(&format!("{url}/app.js"), Some("gzip, br"));
        assert_eq!(encoding.as_deref(), Some("gzip"));
        assert_eq!(script, fundtrail_http::portal::ASSETS[0].body);
        let (_, encoding, _, page) = get_encoded(&format!("{url}/"), Some("br"));
        assert_eq!(encoding.as_deref(), Some("br"));
        assert!(String::from_utf8(page).unwrap().contains("fundtrail-vkey"));
    })
    .await
    .unwrap();

    // The live feed through the layer, asked for with every encoding: never compressed,
    // and an event submitted after the feed is open arrives at once (nothing waits in
    // an encoder's buffer).
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let response =
            agent().get(&feed_url).header("accept", "text/event-stream").header("accept-encoding", "gzip, br").call();
        let response = response.expect("stream connects");
        let encoding = response.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
        tx.send(format!("encoding:{encoding:?}")).unwrap();
        for line in BufReader::new(response.into_body().into_reader()).lines() {
            let Ok(line) = line else { return };
            if line.starts_with("data:") && tx.send(line).is_err() {
                return;
            }
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "encoding:None");
    let (id, envelope) = s.cast.donation(4_200, t0());
    s.submit(envelope).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let data = rx.recv_timeout(left).expect("the event arrives through the compression layer at once");
        if data.contains(&*id.to_text()) {
            break;
        }
    }
    s.state.begin_shutdown();
}
