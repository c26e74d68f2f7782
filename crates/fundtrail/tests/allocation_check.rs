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

/// Checkpoint size of a server's ledger, 0 before the first is signed.
fn checkpoint_size(url: &str) -> u64 {
    let Ok(answer) = ureq::get(&format!("{url}/ledger/checkpoint")).call() else { return 0 };
    let note = answer.into_body().read_to_string().unwrap_or_default();
    note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0)
}

#[test]
fn the_outside_check_needs_no_quiet_server_each_trace_says_which_ledger_it_reflects() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_fundtrail"));
    let server = ServeProcess::start(binary, &dir.path().join("server"), &[]);
    let data = dir.path().join("demo");
    // The demo year keeps writing while the check replays and asks for traces.
    let mut demo = Command::new(binary)
        .args(["demo", "--server", &server.url, "--data", data.to_str().unwrap(), "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run fundtrail demo");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while checkpoint_size(&server.url) < 200 {
        assert!(std::time::Instant::now() < deadline, "the demo wrote no 200 entries");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = python(&[script("allocation_check.py").to_str().unwrap(), &server.url]);
    let busy = demo.try_wait().unwrap().is_none();
    let said = text(&out);
    assert!(demo.wait().unwrap().success(), "the demo year failed");
    assert!(out.status.success(), "the outside check disagrees with the server: {said}");
    assert!(said.contains("each at the ledger size its answer reflects"), "{said}");
    eprintln!("the server was still being written to when the check ended: {busy}; {said}");
}
