//! The fault campaign's command line (the campaign itself runs from
//! `scripts/fault-campaign.sh`; CI runs a short one after the tests). Having an
//! integration test here also makes `cargo test --workspace` build the
//! `fault-campaign` binary with the workspace's features, which CI then runs.

use std::process::Command;

fn campaign() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fault-campaign"))
}

#[test]
fn help_names_the_flags_and_bad_arguments_are_refused() {
    let out = campaign().arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--cycles", "--fundtrail", "--deploy", "--out", "--clients", "--hold-ms", "--quiet-ms", "--timeout-ms"]
    {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
    let out = campaign().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument --no-such-flag"), "{out:?}");
    let out = campaign().args(["--cycles", "0"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("at least 1"), "{out:?}");
}
