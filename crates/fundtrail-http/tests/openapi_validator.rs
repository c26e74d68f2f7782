//! Standard OpenAPI tooling can use `schemas/openapi.json` as it lies in the
//! repository: a third-party validator (openapi-spec-validator, installed pinned by
//! `scripts/install-test-deps.sh`) accepts the document and resolves every
//! reference in it from the files beside it — and a copy with one dangling
//! reference is refused. Every `$ref` of the document and of every event schema
//! is resolved from the files by the `referencing` library that validator is
//! built on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator_path() -> PathBuf {
    if let Ok(p) = std::env::var("FUNDTRAIL_OPENAPI_PYTHONPATH") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    cache.join("fundtrail/tools/openapi-spec-validator-0.9.0")
}

/// For each directory given: validates its `openapi.json` as a file URL (so
/// references resolve against the file's location, as any tool would), then
/// resolves every `$ref` in every `.json` file there, `openapi.json` included,
/// against that file's own location: the validator itself follows only some of
/// them (not a request body's, for one). Prints one line per directory: `ok
/// <count>`, or `refused: <what>`. One process for all: importing takes seconds.
const SCRIPT: &str = r#"
import json, pathlib, sys
from urllib.parse import urldefrag
from openapi_spec_validator import validate_url
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

def retrieve(uri):
    if not uri.startswith("file://"):
        raise LookupError("not in the repository: " + uri)
    path = pathlib.Path(uri[len("file://"):])
    return Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012)

def refs(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from refs(v)

def check(root):
    try:
        validate_url((root / "openapi.json").as_uri())
    except Exception as e:
        return "refused: openapi.json: %s: %s" % (type(e).__name__, str(e)[:300].replace("\n", " "))
    registry = Registry(retrieve=retrieve)
    count = 0
    for path in sorted(root.rglob("*.json")):
        resolver = registry.resolver(base_uri=path.as_uri())
        for ref in refs(json.loads(path.read_text())):
            try:
                resolver.lookup(ref)
                count += 1
            except Exception as e:
                return "refused: %s: %s: %s" % (path.relative_to(root), ref, type(e).__name__)
    return "ok %d" % count

for arg in sys.argv[1:]:
    print(check(pathlib.Path(arg).resolve()))
"#;

fn schemas_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The verdicts of the script on the schemas in each of `dirs`.
fn check(dirs: &[&Path]) -> Vec<String> {
    let path = validator_path();
    assert!(
        path.join("openapi_spec_validator/__init__.py").is_file(),
        "openapi-spec-validator is not installed at {}: run scripts/install-test-deps.sh",
        path.display()
    );
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .args(dirs)
        .env("PYTHONPATH", &path)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "the check failed to run: {}", String::from_utf8_lossy(&out.stderr));
    let verdicts: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(verdicts.len(), dirs.len(), "one verdict per directory: {verdicts:?}");
    verdicts
}

/// A copy of `schemas/` with `from` replaced by `to` once in `file`.
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&schemas_dir(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has {from}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
}

#[test]
fn a_third_party_validator_accepts_the_document_and_resolves_every_reference() {
    let verdict = check(&[&schemas_dir()]).remove(0);
    let count: usize =
        verdict.strip_prefix("ok ").unwrap_or_else(|| panic!("schemas/ was refused: {verdict}")).parse().unwrap();
    assert!(count > 250, "every reference was resolved: {count}");
}

#[test]
fn a_dangling_reference_is_refused() {
    let cases = [
        ("openapi.json", "\"defs.v1.json#/$defs/fen\"", "\"defs.v1.json#/$defs/no_such_def\""),
        ("openapi.json", "\"envelope.v1.json\"", "\"https://fundtrail.example/schemas/envelope.v1.json\""),
        ("openapi.json", "\"#/components/schemas/Problem\"", "\"#/components/schemas/Problems\""),
        ("event.v1.json", "\"defs.v1.json#/$defs/event_id\"", "\"defs.v1.json#/$defs/event_idx\""),
        ("body/donation.received.v1.json", "\"../defs.v1.json#/$defs/fen\"", "\"defs.v1.json#/$defs/fen\""),
    ];
    let dirs: Vec<tempfile::TempDir> = cases.iter().map(|(file, from, to)| broken_copy(file, from, to)).collect();
    let verdicts = check(&dirs.iter().map(|d| d.path()).collect::<Vec<_>>());
    for ((file, _, to), verdict) in cases.iter().zip(verdicts) {
        assert!(verdict.starts_with("refused: "), "{file} with {to} was accepted: {verdict}");
    }
}
