//! `logbook journal verify|streams|repair` against journals damaged the way
//! a person (or a disk) would damage them: ConfigMap journals on localkube
//! edited through the API (a flipped byte in a segment's or the head's
//! `binaryData`, a truncated last frame, an edited head, a damaged
//! snapshot), and a sled directory. Each repair is run as a dry run first
//! (which must change nothing), then applied; the repaired journal must
//! verify clean, load its projection, and keep its labels.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use logbook::cli::{Cli, Error, run};
use logbook::journal_store::{ConfigMapStore, layout};
use logbook::resources::labels::CLUSTER;
use logbook_crds::ValkeyCluster;
use logbook_journal::conformance::sample_new_event;
use logbook_journal::{
    JournalStore, NewEvent, SledStore, StreamId, StreamWriter, Timestamp, reader, snapshot, verify,
};
use logbook_localkube::{Config, LocalKube, RunningServer};

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// Event `i` happens `i` seconds after a fixed instant, so the printed time
/// range of lost events is predictable.
fn event(i: u64) -> NewEvent {
    NewEvent {
        at: at(i),
        ..sample_new_event(i)
    }
}

fn at(i: u64) -> Timestamp {
    Timestamp(1_750_000_000_000_000 + i as i64 * 1_000_000)
}

fn shown(i: u64) -> String {
    at(i).to_datetime().unwrap().to_string()
}

/// Runs `logbook <args>` as the binary would (on a blocking thread: the
/// command builds its own runtime), returning its result and output. The
/// command and its output go to stderr, which the harness shows on failure.
async fn cli(args: &[&str]) -> (Result<(), Error>, String) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let line = args.join(" ");
        let cli = Cli::try_parse_from(std::iter::once("logbook".to_owned()).chain(args)).unwrap();
        let mut out = Vec::new();
        let result = run(cli, &mut out);
        let printed = String::from_utf8(out).unwrap();
        eprintln!("$ logbook {line}\n{printed}=> {result:?}\n");
        (result, printed)
    })
    .await
    .unwrap()
}

/// A localkube with the CRDs, a kubeconfig for it, and a fresh namespace.
struct Env {
    _server: RunningServer,
    _dir: tempfile::TempDir,
    client: kube::Client,
    kubeconfig: PathBuf,
    namespace: String,
}

impl Env {
    async fn start() -> Self {
        let server = LocalKube::start(Config::default()).await.unwrap();
        logbook::local_cluster::install_crds(&server).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let client =
            kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
        let namespace = format!("repair-{}", NAMESPACES.fetch_add(1, Ordering::SeqCst));
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Self {
            _server: server,
            _dir: dir,
            client,
            kubeconfig,
            namespace,
        }
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// `logbook journal <command> --kubeconfig .. --namespace .. <rest>`.
    async fn journal(&self, command: &str, rest: &[&str]) -> (Result<(), Error>, String) {
        let kubeconfig = self.kubeconfig.to_str().unwrap();
        let mut args = vec![
            "journal",
            command,
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            &self.namespace,
        ];
        args.extend_from_slice(rest);
        cli(&args).await
    }

    /// Creates ValkeyCluster `name` (no operator runs) and returns its uid.
    async fn create_cluster(&self, name: &str) -> String {
        let cluster =
            ValkeyCluster::new(name, serde_json::from_value(serde_json::json!({})).unwrap());
        Api::<ValkeyCluster>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &cluster)
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap()
    }

    /// The store the operator would use for cluster `name`: labelled with
    /// it, sealing every few frames so frames sit in segments too.
    fn store(&self, cluster: &str) -> ConfigMapStore {
        self.unsealed_store(cluster).with_seal_bytes(600)
    }

    /// The same with the default seal size: every frame stays in the head.
    fn unsealed_store(&self, cluster: &str) -> ConfigMapStore {
        ConfigMapStore::new(self.client.clone(), &self.namespace)
            .with_labels(BTreeMap::from([(CLUSTER.to_owned(), cluster.to_owned())]))
    }

    /// Changes the stored bytes of `seq` in whichever object holds them.
    async fn edit_frame(
        &self,
        store: &ConfigMapStore,
        stream: &StreamId,
        seq: u64,
        edit: impl FnOnce(&mut Vec<u8>),
    ) -> (String, String) {
        let (name, key) = store.locate(stream, seq).await.unwrap().unwrap();
        let mut cm = self.api().get(&name).await.unwrap();
        edit(&mut cm.binary_data.as_mut().unwrap().get_mut(&key).unwrap().0);
        self.api()
            .replace(&name, &PostParams::default(), &cm)
            .await
            .unwrap();
        (name, key)
    }

    /// Sets `field` of a ConfigMap's `data`, as `kubectl edit` would.
    async fn edit_data(&self, name: &str, field: &str, value: &str) {
        let mut cm = self.api().get(name).await.unwrap();
        cm.data
            .as_mut()
            .unwrap()
            .insert(field.to_owned(), value.to_owned());
        self.api()
            .replace(name, &PostParams::default(), &cm)
            .await
            .unwrap();
    }
}

/// Writes events 1..=`count` one append at a time, with a snapshot after
/// `snapshot_at` when given.
async fn fill<S: JournalStore + Clone>(
    store: &S,
    stream: &StreamId,
    count: u64,
    snapshot_at: Option<u64>,
) {
    let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
        .await
        .unwrap();
    for i in 1..=count {
        writer.append(vec![event(i)]).await.unwrap();
        if snapshot_at == Some(i) {
            let state = reader::load_state(store, stream).await.unwrap().state;
            snapshot::save(store, stream, &state).await.unwrap();
        }
    }
}

/// The stream verifies, and its projection loads up to `head`.
async fn assert_repaired<S: JournalStore>(store: &S, stream: &StreamId, head: u64) {
    let report = verify::verify(store, stream).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.head.seq, head);
    let loaded = reader::load_state(store, stream).await.unwrap();
    assert_eq!(loaded.state.last_seq, head);
}

fn flip(frame: &mut [u8]) {
    frame[20] ^= 0x40;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_after_the_snapshot_is_cut_off_from_there_to_the_head() {
    let env = Env::start().await;
    let uid = env.create_cluster("cache").await;
    let stream = StreamId::new(uid.as_str()).unwrap();
    let store = env.store("cache");
    fill(&store, &stream, 30, Some(20)).await;

    let (result, printed) = env.journal("streams", &[]).await;
    result.unwrap();
    assert!(
        printed.starts_with(&format!("{uid}  seq=30 hash=")) && printed.contains("cluster=cache"),
        "{printed}"
    );
    let (result, printed) = env.journal("verify", &["--cluster", "cache"]).await;
    result.unwrap();
    assert!(
        printed.contains(&format!(
            "ok      {uid}  cluster=cache  events=30 head=30 snapshot=20"
        )),
        "{printed}"
    );

    let (name, key) = env.edit_frame(&store, &stream, 24, |f| flip(f)).await;
    let (result, printed) = env.journal("verify", &[]).await;
    assert!(
        matches!(
            result,
            Err(Error::VerifyFailedInNamespace { problems: 1, .. })
        ),
        "{result:?}"
    );
    assert!(
        printed.contains(&format!(
            "BROKEN  {uid}  cluster=cache  seq=24 BadCrc in ConfigMap {name} key {key}: crc32c mismatch"
        )),
        "{printed}"
    );

    // The dry run lists the cut and what it loses, and changes nothing.
    let (result, printed) = env.journal("repair", &["--cluster", "cache"]).await;
    result.unwrap();
    for expected in [
        format!("stream:  {uid} (cluster cache"),
        format!("problem: seq=24 BadCrc in ConfigMap {name} key {key}:"),
        "  truncate-from:24\n".to_owned(),
        // 24 is unreadable, and 25 cannot be checked without 24's hash.
        format!(
            "removes seqs 24..=30 (up to the head): 7 event(s), from {} to {} (2 unreadable)",
            shown(26),
            shown(30)
        ),
        "the head becomes seq 23".to_owned(),
        format!(
            "--namespace {} --stream {uid} --apply truncate-from:24",
            env.namespace
        ),
        "dry run: nothing was changed".to_owned(),
    ] {
        assert!(
            printed.contains(&expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    assert_eq!(store.head(&stream).await.unwrap().seq, 30);

    // A repair that does not apply is refused, naming the one that does.
    let (result, _) = env
        .journal(
            "repair",
            &["--cluster", "cache", "--apply", "rebuild-from-snapshot"],
        )
        .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("applicable: truncate-from:24"), "{err}");

    let (result, printed) = env
        .journal(
            "repair",
            &["--cluster", "cache", "--apply", "truncate-from:24"],
        )
        .await;
    result.unwrap();
    for expected in [
        "removed seqs 24..=30 (7 event(s)); the head is now seq 23",
        "verify:  ok",
        "the projection loads: 3 event(s) folded after the snapshot at seq 20, up to seq 23",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    assert_repaired(&store, &stream, 23).await;
    // The head kept the cluster's label, so `--cluster` still finds it.
    let head = env.api().get(&layout::head_name(&stream)).await.unwrap();
    assert_eq!(
        head.metadata
            .labels
            .unwrap()
            .get(CLUSTER)
            .map(String::as_str),
        Some("cache")
    );
    // The operator can go on appending after the cut.
    fill_from(&store, &stream, 24, 26).await;
    assert_repaired(&store, &stream, 26).await;
    let (result, _) = env.journal("verify", &["--cluster", "cache"]).await;
    result.unwrap();
}

async fn fill_from<S: JournalStore + Clone>(store: &S, stream: &StreamId, first: u64, last: u64) {
    let mut writer = StreamWriter::open(store.clone(), stream.clone(), 2)
        .await
        .unwrap();
    for i in first..=last {
        writer.append(vec![event(i)]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_frame_is_removed_alone_and_an_edited_head_hash_costs_the_last_event() {
    let env = Env::start().await;
    let torn = StreamId::new("torn-stream").unwrap();
    let store = env.unsealed_store("torn");
    fill(&store, &torn, 12, None).await;
    let (name, _) = env
        .edit_frame(&store, &torn, 12, |frame| frame.truncate(frame.len() / 2))
        .await;
    assert_eq!(
        name,
        layout::head_name(&torn),
        "the last frame is an open one"
    );
    let (result, printed) = env.journal("verify", &["--cluster", "torn"]).await;
    assert!(result.is_err());
    assert!(
        printed.contains("seq=12 TornTail in ConfigMap"),
        "{printed}"
    );

    let (result, printed) = env.journal("repair", &["--cluster", "torn"]).await;
    result.unwrap();
    assert!(printed.contains("  truncate-torn-tail\n"), "{printed}");
    assert!(
        printed.contains("removes seq 12, the last frame, which is partial or unreadable"),
        "{printed}"
    );
    let (result, printed) = env
        .journal(
            "repair",
            &["--cluster", "torn", "--apply", "truncate-torn-tail"],
        )
        .await;
    result.unwrap();
    assert!(
        printed.contains("removed seq 12 (TornTail); the head is now seq 11"),
        "{printed}"
    );
    assert_repaired(&store, &torn, 11).await;

    // A person edits the head's hash: the last event no longer matches it.
    let edited = StreamId::new("edited-stream").unwrap();
    let store = env.store("edited");
    fill(&store, &edited, 9, None).await;
    env.edit_data(&layout::head_name(&edited), "hash", &"ab".repeat(32))
        .await;
    let (result, printed) = env.journal("repair", &["--stream", "edited-stream"]).await;
    result.unwrap();
    assert!(
        printed.contains(&format!(
            "problem: seq=9 BadHashLink in ConfigMap {} (data seq and hash): head hash abab",
            layout::head_name(&edited)
        )),
        "{printed}"
    );
    assert!(printed.contains("  truncate-from:9\n"), "{printed}");
    assert!(
        printed.contains(&format!(
            "removes seq 9 (up to the head): 1 event(s), at {}",
            shown(9)
        )),
        "{printed}"
    );
    let (result, printed) = env
        .journal(
            "repair",
            &["--stream", "edited-stream", "--apply", "truncate-from:9"],
        )
        .await;
    result.unwrap();
    assert!(
        printed.contains("removed seq 9 (1 event(s)); the head is now seq 8"),
        "{printed}"
    );
    assert!(printed.contains("verify:  ok"), "{printed}");
    assert_repaired(&store, &edited, 8).await;

    // A person raises the head's seq past the stored events: the cut
    // removes only seqs that were never there.
    env.edit_data(&layout::head_name(&edited), "seq", "11")
        .await;
    let (result, printed) = env.journal("repair", &["--cluster", "edited"]).await;
    result.unwrap();
    assert!(printed.contains("problem: seq=9 SeqGap"), "{printed}");
    assert!(
        printed.contains("removes seqs 9..=11 (up to the head): 3 event(s) (none readable)"),
        "{printed}"
    );
    let (result, _) = env
        .journal(
            "repair",
            &["--cluster", "edited", "--apply", "truncate-from:9"],
        )
        .await;
    result.unwrap();
    assert_repaired(&store, &edited, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_below_the_snapshot_of_a_deleted_cluster_rebuilds_from_the_snapshot() {
    let env = Env::start().await;
    // No ValkeyCluster "gone" exists (yet): its journals were retained on delete.
    let old = StreamId::new("0000-old-uid").unwrap();
    let newer = StreamId::new("1111-newer-uid").unwrap();
    let store = env.store("gone");
    fill(&store, &old, 3, None).await;
    fill(&store, &newer, 30, Some(20)).await;

    let (result, _) = env.journal("repair", &["--cluster", "gone"]).await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::AmbiguousCluster { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("0000-old-uid") && message.contains("1111-newer-uid"),
        "{message}"
    );
    // A new cluster of the same name has no journal yet: its uid wins over
    // the labels, and the retained journals are named for --stream.
    let uid = env.create_cluster("gone").await;
    let (result, _) = env.journal("repair", &["--cluster", "gone"]).await;
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains(&format!(
            "ValkeyCluster gone (uid {uid}) has no journal here"
        )) && message.contains("1111-newer-uid"),
        "{message}"
    );
    let (result, _) = env
        .journal("repair", &["--cluster", "gone", "--stream", "no-such-uid"])
        .await;
    assert!(
        matches!(result, Err(Error::NoSuchStream { .. })),
        "{result:?}"
    );

    // Seq 5 sits in a sealed segment, below the snapshot at seq 20.
    let (name, key) = env.edit_frame(&store, &newer, 5, |f| flip(f)).await;
    assert_ne!(name, layout::head_name(&newer));
    let args = ["--cluster", "gone", "--stream", "1111-newer-uid"];
    let (result, printed) = env.journal("repair", &args).await;
    result.unwrap();
    for expected in [
        format!("problem: seq=5 BadCrc in ConfigMap {name} key {key}:"),
        "  rebuild-from-snapshot\n".to_owned(),
        format!(
            "removes seqs 1..=20, everything the snapshot at seq 20 covers: 20 event(s), from {} to {} (2 unreadable)",
            shown(1),
            shown(20)
        ),
        "the 10 event(s) after it stay".to_owned(),
    ] {
        assert!(
            printed.contains(&expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    let mut apply = args.to_vec();
    apply.extend(["--apply", "rebuild-from-snapshot"]);
    let (result, printed) = env.journal("repair", &apply).await;
    result.unwrap();
    assert!(
        printed.contains("removed 20 event(s) up to the snapshot at seq 20"),
        "{printed}"
    );
    assert!(printed.contains("first stored seq 21"), "{printed}");
    assert_repaired(&store, &newer, 30).await;
    let loaded = reader::load_state(&store, &newer).await.unwrap();
    assert_eq!((loaded.snapshot_seq, loaded.folded), (Some(20), 10));
    let (result, printed) = env.journal("verify", &["--cluster", "gone"]).await;
    result.unwrap();
    assert!(
        printed.contains("2 stream(s) checked, 0 with problems"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_refolded_but_an_unreadable_head_or_a_bad_snapshot_over_bad_events_is_left_to_a_person()
 {
    let env = Env::start().await;
    let ns = env.namespace.clone();

    // Snapshot damaged, every event intact from seq 1: refold it.
    let refold = StreamId::new("refold").unwrap();
    let store = env.store("refold");
    fill(&store, &refold, 15, Some(10)).await;
    let snapshot_name = layout::snapshot_name(&refold);
    let mut cm = env.api().get(&snapshot_name).await.unwrap();
    flip(
        &mut cm
            .binary_data
            .as_mut()
            .unwrap()
            .get_mut(layout::SNAPSHOT_FRAME_KEY)
            .unwrap()
            .0,
    );
    env.api()
        .replace(&snapshot_name, &PostParams::default(), &cm)
        .await
        .unwrap();
    let (result, printed) = env.journal("verify", &["--cluster", "refold"]).await;
    assert!(result.is_err());
    assert!(
        printed.contains(&format!(
            "seq=10 BadSnapshot in ConfigMap {snapshot_name} key frame"
        )),
        "{printed}"
    );
    let (result, printed) = env
        .journal(
            "repair",
            &["--stream", "refold", "--apply", "rewrite-snapshot"],
        )
        .await;
    result.unwrap();
    assert!(
        printed.contains("wrote a new snapshot at seq 15"),
        "{printed}"
    );
    assert_repaired(&store, &refold, 15).await;

    // Snapshot damaged and an event below it too: nothing is safe.
    let lost = StreamId::new("lost").unwrap();
    let store = env.store("lost");
    fill(&store, &lost, 15, Some(10)).await;
    env.edit_frame(&store, &lost, 3, |f| flip(f)).await;
    env.edit_data(&layout::snapshot_name(&lost), "seq", "x")
        .await;
    let (result, printed) = env.journal("repair", &["--cluster", "lost"]).await;
    assert!(
        matches!(result, Err(Error::NoSafeRepair { .. })),
        "{result:?}"
    );
    for expected in [
        "snapshot unreadable, first stored seq 1".to_owned(),
        "problem: snapshot unreadable:".to_owned(),
        "no safe repair applies: the snapshot is damaged".to_owned(),
        "from a backup".to_owned(),
        format!("kubectl delete configmap --namespace {ns} -l valkey.logbook.dev/journal=lost"),
    ] {
        assert!(
            printed.contains(&expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    let (result, _) = env
        .journal(
            "repair",
            &["--cluster", "lost", "--apply", "rewrite-snapshot"],
        )
        .await;
    assert!(
        matches!(result, Err(Error::RepairNotApplicable { .. })),
        "{result:?}"
    );

    // The head edited into nonsense: nothing is safe.
    let headless = StreamId::new("garbled").unwrap();
    let store = env.store("garbled");
    fill(&store, &headless, 12, None).await;
    env.edit_data(&layout::head_name(&headless), "seq", "five")
        .await;
    let (result, printed) = env.journal("verify", &["--cluster", "garbled"]).await;
    assert!(result.is_err());
    assert!(
        printed.contains("BROKEN  garbled  cluster=garbled  unreadable record"),
        "{printed}"
    );
    let (result, printed) = env.journal("repair", &["--cluster", "garbled"]).await;
    assert!(
        matches!(result, Err(Error::NoSafeRepair { .. })),
        "{result:?}"
    );
    assert!(
        printed.contains("the head record is unreadable"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "kubectl delete configmap --namespace {ns} -l valkey.logbook.dev/journal=garbled"
        )),
        "{printed}"
    );

    // The head deleted while segments remain: named, never called empty.
    env.api()
        .delete(&layout::head_name(&headless), &Default::default())
        .await
        .unwrap();
    let (result, printed) = env.journal("verify", &[]).await;
    assert!(result.is_err());
    assert!(
        printed.contains("BROKEN  garbled  cluster=garbled  head missing"),
        "{printed}"
    );
    let (result, printed) = env.journal("repair", &["--stream", "garbled"]).await;
    assert!(
        matches!(result, Err(Error::NoSafeRepair { .. })),
        "{result:?}"
    );
    assert!(printed.contains("does not exist, but"), "{printed}");
}

fn sled_dir_with_damage(dir: &Path, stream: &StreamId) {
    let store = SledStore::open(dir, logbook_journal::Durability::Flush).unwrap();
    futures::executor::block_on(fill(&store, stream, 12, None));
    let mut frame = store.raw_get(stream, 8).unwrap().unwrap();
    flip(&mut frame);
    store.raw_overwrite(stream, 8, Some(frame)).unwrap();
    store.flush().unwrap();
}

#[test]
fn a_sled_journal_is_repaired_by_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let stream = StreamId::new("sled-cluster").unwrap();
    sled_dir_with_damage(tmp.path(), &stream);
    let dir = tmp.path().to_str().unwrap();
    let run_args = |args: &[&str]| {
        let cli =
            Cli::try_parse_from(std::iter::once("logbook").chain(args.iter().copied())).unwrap();
        let mut out = Vec::new();
        let result = run(cli, &mut out);
        (result, String::from_utf8(out).unwrap())
    };

    let (result, _) = run_args(&["journal", "repair", "--dir", dir]);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::StreamRequired { .. }), "{err}");
    assert!(err.to_string().contains("sled-cluster"), "{err}");

    let (result, printed) = run_args(&[
        "journal",
        "repair",
        "--dir",
        dir,
        "--stream",
        "sled-cluster",
    ]);
    result.unwrap();
    assert!(printed.contains("problem: seq=8 BadCrc:"), "{printed}");
    assert!(
        printed.contains(&format!(
            "logbook journal repair --dir {dir} --stream sled-cluster --apply truncate-from:8"
        )),
        "{printed}"
    );
    let (result, printed) = run_args(&[
        "journal",
        "repair",
        "--dir",
        dir,
        "--stream",
        "sled-cluster",
        "--apply",
        "truncate-from:8",
    ]);
    result.unwrap();
    assert!(
        printed.contains("removed seqs 8..=12 (5 event(s)); the head is now seq 7"),
        "{printed}"
    );

    let store = SledStore::open(tmp.path(), logbook_journal::Durability::Flush).unwrap();
    futures::executor::block_on(assert_repaired(&store, &stream, 7));
    drop(store);
    let (result, printed) = run_args(&["journal", "verify", "--dir", dir]);
    result.unwrap();
    assert!(
        printed.contains("ok      sled-cluster  events=7 head=7"),
        "{printed}"
    );
}

#[test]
fn a_journal_source_is_required_and_cluster_names_need_a_namespace() {
    assert!(Cli::try_parse_from(["logbook", "journal", "verify"]).is_err());
    assert!(
        Cli::try_parse_from([
            "logbook",
            "journal",
            "verify",
            "--dir",
            "d",
            "--namespace",
            "n"
        ])
        .is_err()
    );
    assert!(
        Cli::try_parse_from([
            "logbook",
            "journal",
            "repair",
            "--dir",
            "d",
            "--cluster",
            "c"
        ])
        .is_err()
    );
    assert!(
        Cli::try_parse_from([
            "logbook",
            "journal",
            "repair",
            "--namespace",
            "n",
            "--apply",
            "drop-it"
        ])
        .is_err()
    );
    assert!(
        Cli::try_parse_from([
            "logbook",
            "journal",
            "repair",
            "--namespace",
            "n",
            "--cluster",
            "c",
            "--apply",
            "truncate-from:3"
        ])
        .is_ok()
    );
}
