//! The image's one executable, `logbook-operator`: the operator, with the
//! chart's arguments, and a restore's init container.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_logbook-operator");

/// `logbook-operator`, the image's entrypoint, takes the chart's arguments
/// (`operator --journal=configmap ...`) as `logbook` does, with or without
/// the leading `operator`, and refuses what it does not know by name.
#[test]
fn the_operator_binary_takes_the_charts_arguments() {
    let bin = BIN;
    for args in [
        vec!["operator", "--journal=configmap", "--help"],
        vec!["--journal=configmap", "--help"],
    ] {
        let out = std::process::Command::new(bin)
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains("--lease-namespace"), "{args:?}: {text}");
    }
    let out = std::process::Command::new(bin)
        .args(["operator", "--jurnal=configmap"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--jurnal"), "{err}");
}

/// `logbook-operator restore-fetch` is the restore's init container: with
/// no plan mounted (the restore done, the Secret gone) it succeeds and
/// leaves the volume alone; a missing option is refused by name.
#[test]
fn the_operator_binary_runs_a_restores_fetch() {
    let out = Command::new(BIN)
        .args(["restore-fetch", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("--plan-dir") && text.contains("--data-dir"),
        "{text}"
    );
    assert!(!text.contains("--lease-namespace"), "{text}");

    let plan = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("restore-fetch")
        .arg("--plan-dir")
        .arg(plan.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(["--pod", "demo-0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);

    let out = Command::new(BIN)
        .args(["restore-fetch", "--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--plan-dir"), "{err}");
}
