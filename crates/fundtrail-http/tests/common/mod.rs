//! A real service behind the real router on 127.0.0.1:0 (both from the test kit's
//! `service` harness), a blocking HTTP client (ureq, in `spawn_blocking`), and the
//! OpenAPI document every answer is checked against.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fundtrail_envelope::schema::{SCHEMA_BASE, SCHEMA_FILES};
use fundtrail_http::AppState;
use fundtrail_service::*;
use fundtrail_testkit::cast::Cast;
pub use fundtrail_testkit::service::t0;
use fundtrail_testkit::service::{Store, TestHttp, TestService};
use fundtrail_testkit::NatsServer;
use jsonschema::{Draft, Retrieve, Uri};
use serde_json::Value;

pub struct Server {
    pub url: String,
    pub state: AppState,
    pub service: Arc<Service>,
    pub clock: ManualClock,
    pub cast: Cast,
    pub agent: ureq::Agent,
    pub spec: Spec,
    _http: TestHttp,
    _dir: tempfile::TempDir,
    _nats: Option<NatsServer>,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub cache_control: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

pub async fn start(nats: bool) -> Server {
    let TestService { service, clock, cast, dir, nats } = TestService::start(Store::nats_if(nats)).await;
    let http = TestHttp::serve(service.clone()).await.expect("the HTTP server starts");
    Server {
        url: http.url.clone(),
        state: http.state.clone(),
        service,
        clock,
        cast,
        agent: agent(),
        spec: Spec::load(),
        _http: http,
        _dir: dir,
        _nats: nats,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.begin_shutdown();
        self.service.shutdown();
    }
}

impl Server {
    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, Vec::new(), None).await
    }

    /// GET and check the answer against the OpenAPI document (`template` is the
    /// spec's path).
    pub async fn get_checked(&self, path: &str, template: &str) -> Reply {
        let reply = self.get(path).await;
        self.spec.check("get", template, &reply);
        reply
    }

    /// POST an envelope and check the answer against the OpenAPI document.
    pub async fn submit(&self, envelope: Vec<u8>) -> Reply {
        let reply = self.request("POST", "/v1/events", envelope, Some("application/json")).await;
        self.spec.check("post", "/v1/events", &reply);
        reply
    }

    pub async fn request(&self, method: &str, path: &str, body: Vec<u8>, content_type: Option<&str>) -> Reply {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.url);
        let method = method.to_owned();
        let content_type = content_type.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let answer = match method.as_str() {
                "GET" => agent.get(&url).call(),
                "POST" => {
                    let mut request = agent.post(&url);
                    if let Some(ct) = content_type {
                        request = request.header("content-type", ct);
                    }
                    request.send(&body[..])
                }
                other => panic!("method {other}"),
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

    /// Setup (genesis, keys, fund, roles, committee) over HTTP.
    pub async fn setup(&self) {
        for envelope in self.cast.setup(t0()) {
            let reply = self.submit(envelope).await;
            assert_eq!(reply.status, 201, "{}", reply.text());
        }
    }

    pub async fn fund(&self) -> Value {
        let reply = self.get_checked(&format!("/v1/funds/{}", self.cast.fund), "/v1/funds/{fund}").await;
        assert_eq!(reply.status, 200);
        reply.json()
    }

    pub async fn last_seq(&self) -> u64 {
        self.service.log.last_seq().await.unwrap()
    }
}

// ---------------------------------------------------------------------------
// the OpenAPI document

pub struct Spec {
    pub doc: Value,
}

struct Embedded(HashMap<String, Value>);

impl Retrieve for Embedded {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let key = uri.as_str().split('#').next().unwrap_or_default();
        self.0.get(key).cloned().ok_or_else(|| format!("schema {key} is not in schemas/").into())
    }
}

impl Spec {
    pub fn load() -> Spec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.json");
        let text = std::fs::read_to_string(path).expect("schemas/openapi.json");
        Spec { doc: serde_json::from_str(&text).expect("openapi.json is JSON") }
    }

    /// The schema the spec gives for this answer; panics when the status or the
    /// media type is not described.
    pub fn response_schema(&self, method: &str, template: &str, status: u16, content_type: &str) -> Value {
        let operation = &self.doc["paths"][template][method];
        assert!(operation.is_object(), "{method} {template} is not in openapi.json");
        let response = &operation["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {template}: status {status} is not described");
        let essence = content_type.split(';').next().unwrap().trim();
        let media = &response["content"][essence];
        assert!(media.is_object(), "{method} {template} {status}: media type {essence} is not described");
        media["schema"].clone()
    }

    /// A validator for `schema`, with the spec's components and the event schemas
    /// of `schemas/` reachable by their relative references (the document's base
    /// URI is `openapi.json` beside them).
    pub fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = serde_json::Map::new();
        root.insert("$schema".into(), "https://json-schema.org/draft/2020-12/schema".into());
        root.insert("components".into(), self.doc["components"].clone());
        for (k, v) in schema.as_object().expect("a schema object") {
            root.insert(k.clone(), v.clone());
        }
        let files = SCHEMA_FILES
            .iter()
            .map(|(path, text)| (format!("{SCHEMA_BASE}{path}"), serde_json::from_str(text).unwrap()))
            .collect();
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_base_uri(format!("{SCHEMA_BASE}openapi.json"))
            .with_retriever(Embedded(files))
            .build(&Value::Object(root))
            .expect("the response schema compiles")
    }

    /// Checks an answer: its status and media type are described, and a JSON body
    /// matches its schema.
    pub fn check(&self, method: &str, template: &str, reply: &Reply) {
        let schema = self.response_schema(method, template, reply.status, &reply.content_type);
        if !reply.content_type.contains("json") {
            return;
        }
        let body = reply.json();
        let validator = self.validator(&schema);
        let errors: Vec<String> =
            validator.iter_errors(&body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {}: body does not match openapi.json:\n{}\nbody: {body:#}",
            reply.status,
            errors.join("\n")
        );
    }
}
