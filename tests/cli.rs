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

/// `logbook journal verify` passes an intact journal and names the stream
/// and seq of a damaged frame, failing the command.
#[test]
fn journal_verify_reports_the_stream_and_seq_of_damage() {
    use logbook_journal::event::Event;
    use logbook_journal::ready::now_or_never;
    use logbook_journal::{Durability, NewEvent, SledStore, StreamId, StreamWriter};

    let tmp = tempfile::tempdir().unwrap();
    let stream = StreamId::new("cluster-a").unwrap();
    {
        let store = SledStore::open(tmp.path(), Durability::Flush).unwrap();
        let mut writer = now_or_never(StreamWriter::open(store.clone(), stream.clone(), 1))
            .unwrap()
            .unwrap();
        let events = (0..5)
            .map(|_| NewEvent::now(Event::ClusterDeleted))
            .collect();
        now_or_never(writer.append(events)).unwrap().unwrap();
    }
    let dir = tmp.path().to_str().unwrap();
    let (result, printed) = run_args(&["journal", "verify", "--dir", dir]);
    result.unwrap();
    assert!(
        printed.contains("ok      cluster-a  events=5 head=5"),
        "{printed}"
    );

    {
        let store = SledStore::open(tmp.path(), Durability::Flush).unwrap();
        let mut frame = store.raw_get(&stream, 3).unwrap().unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 0x01;
        store.raw_overwrite(&stream, 3, Some(frame)).unwrap();
        store.flush().unwrap();
    }
    let (result, printed) = run_args(&["journal", "verify", "--dir", dir]);
    assert!(
        matches!(
            result,
            Err(logbook::cli::Error::VerifyFailed { problems: 1, .. })
        ),
        "{result:?}"
    );
    assert!(printed.contains("BROKEN  cluster-a  seq=3"), "{printed}");

    let (result, printed) = run_args(&["journal", "streams", "--dir", dir]);
    result.unwrap();
    assert!(printed.starts_with("cluster-a  seq=5 hash="), "{printed}");
}

#[test]
fn operator_refuses_a_missing_kubeconfig_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let journal = dir.path().join("journal");
    let (result, _) = run_args(&[
        "operator",
        "--kubeconfig",
        missing.to_str().unwrap(),
        "--journal-dir",
        journal.to_str().unwrap(),
    ]);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("no-such-kubeconfig"),
        "the error names the file: {err}"
    );
    assert!(
        !journal.exists(),
        "nothing is created before the client works"
    );
}
