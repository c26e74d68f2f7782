//! The outside check of the allocation (issue 13): `scripts/allocation_check.py`, a
//! second implementation of docs/design.md §1.6 written in Python from the documentation
//! alone, replays the demo year from the public ledger and must agree with every trace
//! the server answers (`GET /v1/donations/{id}/trace`), part by part, to the fen.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fundtrail_testkit::serve::ServeProcess;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .output()
        .expect("python3 (the outside check needs Python 3, standard library only)")
}

#[test]
fn the_outside_checks_own_given_when_then_cases_pass() {
    let out = python(&[script("allocation_check_test.py").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_independent_replay_of_the_demo_year_agrees_with_every_trace_the_server_gives() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_fundtrail"));
    let server = ServeProcess::start(binary, &dir.path().join("server"), &[]);
    let data = dir.path().join("demo");
    let demo = Command::new(binary)
        .args(["demo", "--server", &server.url, "--data", data.to_str().unwrap(), "--quiet"])
        .output()
        .expect("run fundtrail demo");
    assert!(demo.status.success(), "{}", text(&demo));

    let out = python(&[script("allocation_check.py").to_str().unwrap(), &server.url]);
    let said = text(&out);
    assert!(out.status.success(), "the outside check disagrees with the server: {said}");
    assert!(said.contains("agree with the server"), "{said}");
}
