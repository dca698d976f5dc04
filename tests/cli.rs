//! The `logbook` command line, driven through the library entry point.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use clap::Parser;
use logbook::cli::{Cli, run};

fn run_args(args: &[&str]) -> (Result<(), logbook::cli::Error>, String) {
    let cli = Cli::try_parse_from(std::iter::once("logbook").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let result = run(cli, &mut out);
    (result, String::from_utf8(out).unwrap())
}

/// `crds/valkeycluster.yaml` is exactly what `logbook crds` prints, so the
/// file a cluster admin applies is the API the operator was built with.
#[test]
fn crds_command_prints_the_committed_yaml() {
    let (result, printed) = run_args(&["crds"]);
    result.unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/valkeycluster.yaml"
    ))
    .unwrap();
    assert!(
        printed == committed,
        "`logbook crds` differs from crds/valkeycluster.yaml: run `make crds`"
    );
    assert!(printed.contains("name: valkeyclusters.valkey.logbook.dev"));
}

#[test]
fn journal_commands_refuse_a_missing_directory_without_creating_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let (result, _) = run_args(&["journal", "verify", "--dir", missing.to_str().unwrap()]);
    let err = result.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists(), "a read must not create a journal");
}
