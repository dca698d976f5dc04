//! `logbook-bench check` catches a regression planted in a real bench run:
//! the backup bench run twice with the real binary (a real `valkey-server`,
//! moto's S3 server), the first recorded as the baseline, the second with
//! every restore made 5 times as slow inside its timed span
//! (`--plant-restore-factor`: a fixed 400 ms vanished in a loaded CI
//! machine's spread of a debug build's restore). The check must pass the baseline against
//! itself, and fail the planted run naming the restore.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn bench(results: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logbook-bench"))
        .arg("--results")
        .arg(results)
        .args(args)
        .output()
        .expect("logbook-bench runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_restore_made_slower_is_named_by_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let (results, baselines) = (dir.path().join("results"), dir.path().join("baselines"));
    let run = [
        "backup",
        "--keys",
        "20000",
        "--value-bytes",
        "1024",
        "--runs",
        "3",
    ];
    let out = bench(&results, &run);
    assert!(out.status.success(), "{}", text(&out));
    let update = bench(
        &results,
        &[
            "check",
            "--update",
            "--baselines",
            baselines.to_str().unwrap(),
        ],
    );
    assert!(update.status.success(), "{}", text(&update));
    assert!(baselines.join("backup.json").exists());
    // The baseline against itself: nothing worse.
    let same = bench(
        &results,
        &["check", "--baselines", baselines.to_str().unwrap()],
    );
    assert!(same.status.success(), "{}", text(&same));

    let planted = [&run[..], &["--plant-restore-factor", "5"]].concat();
    let out = bench(&results, &planted);
    assert!(out.status.success(), "{}", text(&out));
    let check = bench(
        &results,
        &["check", "--baselines", baselines.to_str().unwrap()],
    );
    let report = text(&check);
    assert!(
        !check.status.success(),
        "the planted regression passed:\n{report}"
    );
    assert!(
        report.contains("WORSE backup: restore"),
        "the restore is not named:\n{report}"
    );
}
