//! `fundtrail keys new`, `sign` and `check`, run as a user would run them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn fundtrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundtrail")).args(args).output().expect("run fundtrail")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn new_key(dir: &Path, name: &str) -> serde_json::Value {
    let path = dir.join(name);
    let out = fundtrail(&["keys", "new", "--out", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn genesis_event(key: &serde_json::Value) -> String {
    serde_json::json!({
        "id": "01937b2e-4c1a-7d3e-9f00-123456789abc",
        "fund": "host",
        "type": "host.established",
        "occurred_at": "2026-01-01T00:00:00Z",
        "author": key["key_id"],
        "body": {"host_name": "某市慈善总会", "host_key": key["key_id"], "public_key": key["public_key"]},
        "v": 1
    })
    .to_string()
}

#[test]
fn keys_new_writes_a_private_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "host.key");
    let mode = std::fs::metadata(dir.path().join("host.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(key["key_id"].as_str().unwrap().len(), 32);
    let again = fundtrail(&["keys", "new", "--out", dir.path().join("host.key").to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("exists already"), "{}", stderr(&again));
}

#[test]
fn sign_then_check_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "host.key");
    let event = dir.path().join("genesis.json");
    std::fs::write(&event, genesis_event(&key)).unwrap();
    let key_file = dir.path().join("host.key");
    let signed = fundtrail(&["sign", "--key", key_file.to_str().unwrap(), event.to_str().unwrap()]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let envelope = dir.path().join("genesis.dsse.json");
    std::fs::write(&envelope, &signed.stdout).unwrap();
    let checked = fundtrail(&["check", envelope.to_str().unwrap(), "--pubkey", key["public_key"].as_str().unwrap()]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(stdout(&checked).starts_with("OK: host.established"), "{}", stdout(&checked));
}

#[test]
fn check_says_exactly_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "a.key");
    let other = new_key(dir.path(), "b.key");
    let event = dir.path().join("e.json");
    // A non-genesis event: the signer must be among the given keys.
    let mut value: serde_json::Value = serde_json::from_str(&genesis_event(&key)).unwrap();
    value["type"] = "role.granted".into();
    value["body"] = serde_json::json!({"key": key["key_id"], "role": "log"});
    std::fs::write(&event, value.to_string()).unwrap();
    let signed = fundtrail(&["sign", "--key", dir.path().join("a.key").to_str().unwrap(), event.to_str().unwrap()]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let envelope = dir.path().join("e.dsse.json");
    std::fs::write(&envelope, &signed.stdout).unwrap();
    let wrong = fundtrail(&["check", envelope.to_str().unwrap(), "--pubkey", other["public_key"].as_str().unwrap()]);
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("unknown key"), "{}", stderr(&wrong));
    // Tamper with the payload: the signature no longer covers it.
    let mut env: serde_json::Value = serde_json::from_slice(&signed.stdout).unwrap();
    let payload = value.to_string().replace("\"log\"", "\"host_admin\"");
    use base64::Engine;
    env["payload"] = base64::engine::general_purpose::STANDARD.encode(payload).into();
    std::fs::write(&envelope, env.to_string()).unwrap();
    let forged =
        fundtrail(&["check", envelope.to_str().unwrap(), "--pubkey", dir.path().join("a.key").to_str().unwrap()]);
    assert!(!forged.status.success());
    assert!(stderr(&forged).contains("does not verify over this payload"), "{}", stderr(&forged));
}

#[test]
fn sign_refuses_what_is_no_valid_event() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "k.key");
    let key_file = dir.path().join("k.key");
    let event = dir.path().join("bad.json");
    std::fs::write(&event, genesis_event(&key).replace("\"v\":1", "\"v\":1.5")).unwrap();
    let out = fundtrail(&["sign", "--key", key_file.to_str().unwrap(), event.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not an integer"), "{}", stderr(&out));
    std::fs::write(&event, genesis_event(&key).replace("某市慈善总会", "")).unwrap();
    let out = fundtrail(&["sign", "--key", key_file.to_str().unwrap(), event.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("schema"), "{}", stderr(&out));
    let stranger = new_key(dir.path(), "s.key");
    std::fs::write(&event, genesis_event(&stranger)).unwrap();
    let out = fundtrail(&["sign", "--key", key_file.to_str().unwrap(), event.to_str().unwrap()]);
    assert!(stderr(&out).contains("signed by its author"), "{}", stderr(&out));
}
