//! JSON Schema validation of events and envelopes against the schemas in
//! `schemas/` (embedded at build time, so a binary validates exactly what the
//! repository publishes). The files have no `$id` and refer to each other by
//! relative references (`../defs.v1.json#/$defs/fen`), so each is compiled with
//! its path under [`SCHEMA_BASE`] as its base URI (JSON Schema 2020-12 §8.2.1:
//! without `$id`, the retrieval URI is the base) and the others are served
//! from memory under the same base; nothing is fetched from the network.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::Value;

/// The base URI the embedded files are registered under: any absolute base
/// would do, since every reference between them is relative.
pub const SCHEMA_BASE: &str = "https://fundtrail.example/schemas/";

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        /// Every schema file: (path under `schemas/`, text).
        pub const SCHEMA_FILES: &[(&str, &str)] = &[
            $( ($path, include_str!(concat!("../../../schemas/", $path))) ),*
        ];
    };
}

embedded!(
    "defs.v1.json",
    "event.v1.json",
    "envelope.v1.json",
    "body/host.established.v1.json",
    "body/key.enrolled.v1.json",
    "body/role.granted.v1.json",
    "body/role.revoked.v1.json",
    "body/key.rotated.v1.json",
    "body/fund.opened.v1.json",
    "body/committee.seated.v1.json",
    "body/pledge.recorded.v1.json",
    "body/donation.received.v1.json",
    "body/goods.received.v1.json",
    "body/donation.reversed.v1.json",
    "body/receipt.issued.v1.json",
    "body/receipt.voided.v1.json",
    "body/proposal.submitted.v1.json",
    "body/opinion.recorded.v1.json",
    "body/vote.cast.v1.json",
    "body/proposal.endorsed.v1.json",
    "body/proposal.rejected.v1.json",
    "body/application.submitted.v1.json",
    "body/proposal.approved.v1.json",
    "body/proposal.declined.v1.json",
    "body/payout.made.v1.json",
    "body/goods.distributed.v1.json",
    "body/proposal.closed.v1.json",
    "body/disclosure.published.v1.json",
    "body/audit.opinion.v1.json",
    "body/correction.recorded.v1.json",
    "body/annual_report.published.v1.json",
    "body/purpose.declared.v1.json",
    "body/purpose.retired.v1.json",
    "body/pledge.recorded.v2.json",
    "body/donation.received.v2.json",
    "body/goods.received.v2.json",
    "body/proposal.submitted.v2.json",
    "body/disclosure.published.v2.json",
);

/// A value did not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("no schema for event type {type_name:?} version {v}")]
    NoSchema { type_name: String, v: u32 },
    #[error("{schema}: {path}: {message}")]
    Invalid { schema: String, path: String, message: String },
}

/// The compiled schemas.
pub struct Schemas {
    event: Validator,
    envelope: Validator,
    /// By type name and version; the names are the schema files' own.
    bodies: HashMap<(&'static str, u32), Validator>,
}

struct Embedded(HashMap<String, Value>);

impl Retrieve for Embedded {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let key = uri.as_str().split('#').next().unwrap_or_default();
        self.0.get(key).cloned().ok_or_else(|| format!("schema {key} is not embedded").into())
    }
}

fn parsed() -> HashMap<String, Value> {
    SCHEMA_FILES
        .iter()
        .map(|(path, text)| {
            let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("schemas/{path}: {e}"));
            (format!("{SCHEMA_BASE}{path}"), value)
        })
        .collect()
}

fn compile(all: &HashMap<String, Value>, path: &str) -> Validator {
    let uri = format!("{SCHEMA_BASE}{path}");
    let schema = &all[&uri];
    assert!(schema.get("$id").is_none(), "schemas/{path}: no $id, its location is its base URI");
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_base_uri(uri.clone())
        .with_retriever(Embedded(all.clone()))
        .build(schema)
        .unwrap_or_else(|e| panic!("schemas/{path} does not compile: {e}"))
}

impl Schemas {
    /// The schemas, compiled once per process.
    pub fn get() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(Schemas::compile)
    }

    fn compile() -> Schemas {
        let all = parsed();
        let mut bodies = HashMap::new();
        for (path, _) in SCHEMA_FILES {
            let Some(name) = path.strip_prefix("body/").and_then(|p| p.strip_suffix(".json")) else { continue };
            let (type_name, version) = name.rsplit_once(".v").expect("body schema names end in .v<N>.json");
            let v: u32 = version.parse().expect("body schema version is a number");
            bodies.insert((type_name, v), compile(&all, path));
        }
        Schemas { event: compile(&all, "event.v1.json"), envelope: compile(&all, "envelope.v1.json"), bodies }
    }

    /// Whether a body schema exists for this type and version.
    pub fn has_body(&self, type_name: &str, v: u32) -> bool {
        self.bodies.contains_key(&(type_name, v))
    }

    pub fn validate_envelope(&self, envelope: &Value) -> Result<(), SchemaError> {
        check(&self.envelope, envelope, || "envelope.v1.json".to_owned())
    }

    /// Validates an event: the wrapper, then its body against the schema of its
    /// type at the version it was written with.
    pub fn validate_event(&self, event: &Value) -> Result<(), SchemaError> {
        check(&self.event, event, || "event.v1.json".to_owned())?;
        let type_name = event["type"].as_str().unwrap_or_default();
        let v = event["v"].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or_default();
        let body = self
            .bodies
            .get(&(type_name, v))
            .ok_or_else(|| SchemaError::NoSchema { type_name: type_name.to_owned(), v })?;
        check(body, &event["body"], || format!("body/{type_name}.v{v}.json"))
    }
}

/// `value` against `validator`; `schema` names it in the error. The common case, a
/// valid value, takes jsonschema's `is_valid`, which builds no error.
fn check(validator: &Validator, value: &Value, schema: impl FnOnce() -> String) -> Result<(), SchemaError> {
    if validator.is_valid(value) {
        return Ok(());
    }
    validator.validate(value).map_err(|e| SchemaError::Invalid {
        schema: schema(),
        path: e.instance_path().to_string(),
        message: e.to_string(),
    })
}
