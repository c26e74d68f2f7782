//! Envelopes: a fixed DSSE vector computed outside this code, schemas for
//! every event type, and one specific refusal per kind of bad input.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use fundtrail_domain::event::EVENT_TYPES;
use fundtrail_domain::testing::World;
use fundtrail_domain::KeyId;
use fundtrail_envelope::*;
use serde_json::Value;

fn vector() -> Value {
    serde_json::from_str(include_str!("vectors/dsse_vector.json")).unwrap()
}

fn seed() -> [u8; 32] {
    hex::decode(vector()["seed_hex"].as_str().unwrap()).unwrap().try_into().unwrap()
}

fn no_keys(_: &KeyId) -> Option<VerifyingKey> {
    None
}

#[test]
fn signature_matches_the_independent_vector() {
    let v = vector();
    let key = ActorKey::from_seed(&seed());
    assert_eq!(key.public_key_b64(), v["public_key_b64"]);
    assert_eq!(key.key_id().as_str(), v["keyid"]);
    let payload = B64.decode(v["payload_b64"].as_str().unwrap()).unwrap();
    let envelope = key.sign_payload(&payload);
    assert_eq!(String::from_utf8(envelope.clone()).unwrap(), v["envelope"].as_str().unwrap());
    let pae_hash = sha2::Sha256::digest(pae(PAYLOAD_TYPE, &payload));
    assert_eq!(hex::encode(pae_hash), v["pae_sha256"]);
    use sha2::Digest;
}

#[test]
fn the_vector_envelope_opens_as_a_genesis() {
    let v = vector();
    let bytes = v["envelope"].as_str().unwrap().as_bytes();
    let opened = open(bytes, no_keys).expect("the genesis vector verifies with its own key");
    assert_eq!(opened.envelope, bytes);
    assert_eq!(opened.event.type_name(), "host.established");
    assert_eq!(opened.signer.as_str(), v["keyid"]);
}

/// The genesis opens with the key it names however its JSON spells its type; an
/// event by an unknown key that is not the genesis does not.
#[test]
fn a_genesis_with_escapes_opens_as_a_genesis() {
    let payload = String::from_utf8(genesis().payload).unwrap();
    assert!(payload.contains(r#""host.established""#));
    let escaped = payload.replace(r#""host.established""#, r#""host\u002eestablished""#);
    let opened = open(&with_payload(&escaped), no_keys).expect("an escaped genesis is a genesis");
    assert_eq!(opened.event.type_name(), "host.established");
    let other = payload.replace(r#""host.established""#, r#""host\u002eestablishe""#);
    assert!(matches!(open(&with_payload(&other), no_keys), Err(EnvelopeError::UnknownKey(_))));
}

#[test]
fn every_event_type_has_a_schema() {
    let schemas = Schemas::get();
    let mut versions = 0;
    for t in fundtrail_domain::EventType::ALL {
        // Every version of every type stays readable: one schema file each.
        for v in 1..=t.version() {
            assert!(schemas.has_body(t.name(), v), "no schema for {} v{v}", t.name());
            versions += 1;
        }
        assert!(!schemas.has_body(t.name(), t.version() + 1), "{} has a schema beyond its version", t.name());
    }
    assert_eq!(schema::SCHEMA_FILES.iter().filter(|(p, _)| p.starts_with("body/")).count(), versions);
    assert_eq!(EVENT_TYPES.len(), fundtrail_domain::EventType::ALL.len());
}

#[test]
fn every_event_the_domain_writes_matches_its_schema() {
    let w = World::every_event_type();
    let mut seen = std::collections::BTreeSet::new();
    for event in &w.log {
        let bytes = event.to_bytes();
        let read = read_payload(&bytes).unwrap_or_else(|e| panic!("{}: {e}", event.type_name()));
        assert_eq!(&read, event, "{} does not round-trip", event.type_name());
        seen.insert(event.type_name());
    }
    let missing: Vec<_> = EVENT_TYPES.iter().filter(|t| !seen.contains(*t)).collect();
    assert!(missing.is_empty(), "the catalogue world lacks {missing:?}");
}

// --- refusals ------------------------------------------------------------------

struct Signed {
    key: ActorKey,
    payload: Vec<u8>,
}

fn genesis() -> Signed {
    let v = vector();
    Signed { key: ActorKey::from_seed(&seed()), payload: B64.decode(v["payload_b64"].as_str().unwrap()).unwrap() }
}

fn with_payload(payload: &str) -> Vec<u8> {
    let s = genesis();
    s.key.sign_payload(payload.as_bytes())
}

fn edit_payload(f: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_slice(&genesis().payload).unwrap();
    f(&mut value);
    serde_json::to_string(&value).unwrap()
}

fn resolver(key: &ActorKey) -> impl Fn(&KeyId) -> Option<VerifyingKey> + '_ {
    move |id| (id == &key.key_id()).then(|| key.verifying_key())
}

#[test]
fn oversize_is_refused_before_anything_else() {
    let bytes = vec![b' '; ENVELOPE_SIZE_MAX + 1];
    assert_eq!(
        open(&bytes, no_keys),
        Err(EnvelopeError::TooLarge { size: ENVELOPE_SIZE_MAX + 1, max: ENVELOPE_SIZE_MAX })
    );
}

#[test]
fn malformed_envelopes_are_refused() {
    assert!(matches!(open(b"{\"payload\":", no_keys), Err(EnvelopeError::EnvelopeJson(StrictJsonError::Malformed(_)))));
    assert!(matches!(open(b"[]", no_keys), Err(EnvelopeError::Shape(_))));
    let extra = br#"{"payload":"","payloadType":"x","signatures":[],"extra":1}"#;
    assert!(matches!(open(extra, no_keys), Err(EnvelopeError::Shape(_))));
    let dup = br#"{"payload":"","payload":"","payloadType":"x","signatures":[]}"#;
    assert!(matches!(open(dup, no_keys), Err(EnvelopeError::EnvelopeJson(StrictJsonError::DuplicateKey(_)))));
}

/// DSSE's envelope is a JSON object, and so is each signature: the same fields as an
/// array (which serde would read into a struct) are refused, though correctly signed.
#[test]
fn an_envelope_as_an_array_is_refused() {
    let v = vector();
    let wire: Value = serde_json::from_str(v["envelope"].as_str().unwrap()).unwrap();
    let sig = &wire["signatures"][0];
    let object_sig = serde_json::json!([wire["payload"], wire["payloadType"], [sig]]);
    let array_sig = serde_json::json!({
        "payload": wire["payload"], "payloadType": wire["payloadType"], "signatures": [[sig["keyid"], sig["sig"]]],
    });
    for shape in [object_sig, array_sig] {
        let bytes = serde_json::to_vec(&shape).unwrap();
        assert!(matches!(open(&bytes, no_keys), Err(EnvelopeError::Shape(_))), "{shape}");
    }
}

#[test]
fn wrong_payload_type_is_refused() {
    let mut env: Value = serde_json::from_slice(&genesis().key.sign_payload(&genesis().payload)).unwrap();
    env["payloadType"] = "application/json".into();
    let bytes = serde_json::to_vec(&env).unwrap();
    assert_eq!(open(&bytes, no_keys), Err(EnvelopeError::PayloadType("application/json".into())));
}

#[test]
fn bad_base64_is_refused() {
    let mut env: Value = serde_json::from_slice(&genesis().key.sign_payload(&genesis().payload)).unwrap();
    env["payload"] = "not base64!".into();
    assert_eq!(open(&serde_json::to_vec(&env).unwrap(), no_keys), Err(EnvelopeError::Base64 { field: "payload" }));
    let mut env: Value = serde_json::from_slice(&genesis().key.sign_payload(&genesis().payload)).unwrap();
    env["signatures"][0]["sig"] = "@@".into();
    assert_eq!(open(&serde_json::to_vec(&env).unwrap(), no_keys), Err(EnvelopeError::Base64 { field: "sig" }));
}

#[test]
fn a_signature_over_other_bytes_is_refused() {
    let s = genesis();
    let mut env: Value = serde_json::from_slice(&s.key.sign_payload(&s.payload)).unwrap();
    // Same event, one byte of whitespace more: the signature no longer covers it.
    let mut tampered = s.payload.clone();
    tampered.push(b' ');
    env["payload"] = B64.encode(&tampered).into();
    let r = open(&serde_json::to_vec(&env).unwrap(), resolver(&s.key));
    assert_eq!(r, Err(EnvelopeError::BadSignature(s.key.key_id())));
}

#[test]
fn a_forged_signature_by_another_key_is_refused() {
    let s = genesis();
    let mallory = ActorKey::generate().unwrap();
    let mut env: Value = serde_json::from_slice(&mallory.sign_payload(&s.payload)).unwrap();
    env["signatures"][0]["keyid"] = s.key.key_id().to_string().into();
    let r = open(&serde_json::to_vec(&env).unwrap(), resolver(&s.key));
    assert_eq!(r, Err(EnvelopeError::BadSignature(s.key.key_id())));
}

#[test]
fn an_unknown_key_is_refused() {
    let stranger = ActorKey::generate().unwrap();
    let payload = edit_payload(|v| {
        v["type"] = "key.enrolled".into();
        v["author"] = stranger.key_id().to_string().into();
    });
    let r = open(&stranger.sign_payload(payload.as_bytes()), no_keys);
    assert_eq!(r, Err(EnvelopeError::UnknownKey(stranger.key_id())));
}

#[test]
fn floats_and_big_amounts_are_refused() {
    let s = genesis();
    for (text, want_float) in [("1.0", true), ("1e3", true), ("9007199254740992", false)] {
        let payload = String::from_utf8(s.payload.clone()).unwrap().replace(r#""v":1"#, &format!(r#""v":{text}"#));
        let r = open(&with_payload(&payload), resolver(&s.key));
        match (want_float, r) {
            (true, Err(EnvelopeError::PayloadJson(StrictJsonError::Float(_)))) => {}
            (false, Err(EnvelopeError::PayloadJson(StrictJsonError::IntegerRange(_)))) => {}
            (_, other) => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn duplicate_keys_in_the_payload_are_refused() {
    let s = genesis();
    let payload = String::from_utf8(s.payload.clone()).unwrap().replacen(
        r#""fund":"host","#,
        r#""fund":"host","fund":"xihu-01","#,
        1,
    );
    let r = open(&with_payload(&payload), resolver(&s.key));
    assert_eq!(r, Err(EnvelopeError::PayloadJson(StrictJsonError::DuplicateKey("fund".into()))));
}

#[test]
fn unknown_fields_are_refused_by_the_schema() {
    let s = genesis();
    let payload = edit_payload(|v| v["body"]["nickname"] = "x".into());
    assert!(matches!(open(&with_payload(&payload), resolver(&s.key)), Err(EnvelopeError::Schema(_))));
    let payload = edit_payload(|v| v["extra"] = 1.into());
    assert!(matches!(open(&with_payload(&payload), resolver(&s.key)), Err(EnvelopeError::Schema(_))));
}

#[test]
fn a_future_schema_version_is_refused_clearly() {
    let s = genesis();
    let payload = edit_payload(|v| v["v"] = 2.into());
    let r = open(&with_payload(&payload), resolver(&s.key));
    assert!(matches!(r, Err(EnvelopeError::Schema(SchemaError::NoSchema { v: 2, .. }))), "{r:?}");
}

#[test]
fn the_author_must_be_the_signer() {
    let s = genesis();
    let other = ActorKey::generate().unwrap();
    let payload = edit_payload(|v| v["type"] = "key.enrolled".into());
    // Signed by `other`, claiming the genesis key as author.
    let r = open(&other.sign_payload(payload.as_bytes()), |id| (id == &other.key_id()).then(|| other.verifying_key()));
    assert!(matches!(r, Err(EnvelopeError::Schema(_)) | Err(EnvelopeError::AuthorMismatch { .. })), "{r:?}");
    let good_body = edit_payload(|v| {
        v["type"] = "role.granted".into();
        v["body"] = serde_json::json!({"key": s.key.key_id().to_string(), "role": "log"});
    });
    let r =
        open(&other.sign_payload(good_body.as_bytes()), |id| (id == &other.key_id()).then(|| other.verifying_key()));
    assert_eq!(r, Err(EnvelopeError::AuthorMismatch { author: s.key.key_id(), signer: other.key_id() }));
}

#[test]
fn opened_envelopes_keep_their_exact_bytes() {
    let s = genesis();
    // Extra whitespace in the envelope is kept as submitted, never re-serialised.
    let compact = s.key.sign_payload(&s.payload);
    let mut spaced = b"  ".to_vec();
    spaced.extend_from_slice(&compact);
    let opened = open(&spaced, no_keys).unwrap();
    assert_eq!(opened.envelope, spaced);
    assert_eq!(opened.payload, s.payload);
}

#[test]
fn the_fold_takes_a_subject_of_every_version_and_no_other() {
    let v = vector();
    let bytes = v["envelope"].as_str().unwrap().as_bytes();
    for subject in ["fundtrail.v1.host.host.genesis", "fundtrail.v2.host.host.genesis"] {
        let mut fold = Fold::new();
        fold.apply(1, Some(subject), bytes).unwrap_or_else(|e| panic!("{subject}: {e}"));
        assert_eq!(fold.position(), 1);
    }
    // Each subject is checked against the event's subject in the version it names.
    let wrong = [
        ("fundtrail.v1.host.key.genesis", "fundtrail.v1.host.host.genesis"),
        ("fundtrail.v2.f1.host.genesis", "fundtrail.v2.host.host.genesis"),
        ("fundtrail.v3.host.host.genesis", "fundtrail.v2.host.host.genesis"),
        ("other", "fundtrail.v2.host.host.genesis"),
    ];
    for (subject, expected) in wrong {
        let error = Fold::new().apply(1, Some(subject), bytes).unwrap_err();
        assert_eq!(error, FoldError::Subject { seq: 1, subject: subject.into(), expected: expected.into() });
    }
}

#[test]
fn a_v2_disclosure_must_cite_accounts_and_a_v1_one_cites_none() {
    let w = World::every_event_type();
    let disclosure = w.log.iter().find(|e| e.type_name() == "disclosure.published").expect("a disclosure");
    let schemas = Schemas::get();
    let v2 = disclosure.to_json();
    assert_eq!(v2["v"], 2);
    assert!(v2["body"]["accounts"]["year"].is_i64(), "{v2}");
    schemas.validate_event(&v2).unwrap();
    let mut without = v2.clone();
    without["body"].as_object_mut().unwrap().remove("accounts");
    assert!(matches!(schemas.validate_event(&without), Err(SchemaError::Invalid { .. })));
    let mut null = v2.clone();
    null["body"]["accounts"] = Value::Null;
    assert!(matches!(schemas.validate_event(&null), Err(SchemaError::Invalid { .. })));
    let mut misnamed = v2.clone();
    misnamed["body"]["accounts"]["income"]["cash"] = serde_json::json!({"unrestricted_fen": 1, "restricted": {}});
    assert!(
        matches!(schemas.validate_event(&misnamed), Err(SchemaError::Invalid { .. })),
        "channels are the catalogue's"
    );
    // Version 1 is the body without `accounts`, and refuses one.
    let mut v1 = without;
    v1["v"] = 1.into();
    schemas.validate_event(&v1).unwrap();
    let mut v1_citing = v2;
    v1_citing["v"] = 1.into();
    assert!(matches!(schemas.validate_event(&v1_citing), Err(SchemaError::Invalid { .. })));
}
