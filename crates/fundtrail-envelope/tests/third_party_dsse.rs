//! A third-party DSSE verifier accepts our envelopes: securesystemslib (the
//! library under in-toto and TUF), installed pinned by
//! `scripts/install-test-deps.sh`, verifies envelopes this crate signed — and
//! rejects one whose payload was changed.

use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use fundtrail_domain::event::*;
use fundtrail_domain::{FundId, Role};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::ActorKey;

fn verifier_path() -> PathBuf {
    if let Ok(p) = std::env::var("FUNDTRAIL_DSSE_PYTHONPATH") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    cache.join("fundtrail/tools/securesystemslib-1.3.0")
}

const SCRIPT: &str = r#"
import base64, json, sys
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
results = []
for path, keyid, public_b64 in json.load(sys.stdin):
    env = Envelope.from_dict(json.load(open(path)))
    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": base64.b64decode(public_b64).hex()})
    try:
        env.verify([key], 1)
        results.append("ok")
    except Exception as e:
        results.append("refused: " + type(e).__name__)
print(json.dumps(results))
"#;

#[test]
fn securesystemslib_verifies_our_envelopes() {
    let path = verifier_path();
    assert!(
        path.join("securesystemslib/dsse.py").is_file(),
        "securesystemslib is not installed at {}: run scripts/install-test-deps.sh",
        path.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let key = ActorKey::generate().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z").unwrap().to_utc();
    let fund = FundId::new("xihu-jiedao").unwrap();
    let bodies = [
        EventBody::RoleGranted(RoleGranted { key: key.key_id(), role: Role::Intake }),
        EventBody::ProposalDeclined(ProposalDeclined {
            proposal: fundtrail_domain::ProposalId::new("P-1").unwrap(),
            reason: "超出资助范围：文化节不在本年度计划内".into(),
        }),
    ];
    let mut cases = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let (_, envelope) = sign_new(&key, &fund, at, body);
        let file = dir.path().join(format!("good-{i}.json"));
        std::fs::write(&file, &envelope).unwrap();
        cases.push((file, true));
        // The same envelope with one payload byte changed.
        let mut wire: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        let mut payload = B64.decode(wire["payload"].as_str().unwrap()).unwrap();
        payload[10] ^= 1;
        wire["payload"] = B64.encode(payload).into();
        let file = dir.path().join(format!("tampered-{i}.json"));
        std::fs::write(&file, serde_json::to_vec(&wire).unwrap()).unwrap();
        cases.push((file, false));
    }
    let input: Vec<(String, String, String)> =
        cases.iter().map(|(p, _)| (p.display().to_string(), key.key_id().to_string(), key.public_key_b64())).collect();
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .env("PYTHONPATH", &path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    for ((file, good), result) in cases.iter().zip(&results) {
        assert_eq!(result == "ok", *good, "{}: {result}", file.display());
    }
}
