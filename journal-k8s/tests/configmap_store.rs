//! The ConfigMap journal store against localkube (or the API server of
//! `LOGBOOK_TEST_KUBECONFIG`: see [`localkube`]): the journal crate's
//! conformance suite (with the default seal size and with a tiny one, so
//! sealed segments, straddling compaction and removal from a sealed segment
//! are all exercised), plus racing writers, labels and owner references,
//! and leftover segments.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams, PostParams};
use logbook_journal::conformance::{Harness, run_all, sample_new_event};
use logbook_journal::writer::encode_batch;
use logbook_journal::{Head, JournalStore, StoreError, StreamId, StreamWriter};
use logbook_journal_k8s::ConfigMapStore;
use logbook_journal_k8s::layout;
use logbook_localkube::{Config, LocalKube, RunningServer};

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A fresh namespace per harness, so `list_streams` sees only its case
/// (named after this process too: a real API server outlives a run).
fn fresh_namespace() -> String {
    format!(
        "journal-{}-{}",
        std::process::id(),
        NAMESPACES.fetch_add(1, Ordering::SeqCst)
    )
}

/// Creates `namespace` unless it exists.
async fn ensure_namespace(client: &kube::Client, namespace: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => panic!("namespace {namespace}: {e}"),
    }
}

/// The API server the suite runs against: a fresh localkube, or, when
/// `LOGBOOK_TEST_KUBECONFIG` names a kubeconfig, that server (`make
/// test-kubernetes` points it at the real control plane built from the
/// Kubernetes Go modules).
async fn localkube() -> (Option<RunningServer>, kube::Client) {
    if let Ok(path) = std::env::var("LOGBOOK_TEST_KUBECONFIG") {
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        return (None, kube::Client::try_from(config).unwrap());
    }
    let server = LocalKube::start(Config::default()).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    (Some(server), client)
}

struct ConfigMapHarness {
    client: kube::Client,
    namespace: String,
    seal_bytes: Option<usize>,
}

impl ConfigMapHarness {
    fn new(client: &kube::Client, seal_bytes: Option<usize>) -> Self {
        Self {
            client: client.clone(),
            namespace: fresh_namespace(),
            seal_bytes,
        }
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Sets `key` of `name`'s binaryData directly through the API.
    async fn overwrite(&self, name: &str, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        let api = self.api();
        let mut cm = api.get(name).await.map_err(|e| e.to_string())?;
        cm.binary_data
            .get_or_insert_default()
            .insert(key.to_owned(), ByteString(bytes));
        api.replace(name, &PostParams::default(), &cm)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Harness for ConfigMapHarness {
    type Store = ConfigMapStore;

    async fn open(&mut self) -> Result<ConfigMapStore, String> {
        ensure_namespace(&self.client, &self.namespace).await;
        let store = ConfigMapStore::new(self.client.clone(), &self.namespace);
        Ok(match self.seal_bytes {
            Some(bytes) => store.with_seal_bytes(bytes),
            None => store,
        })
    }

    async fn raw_frame(
        &mut self,
        store: &ConfigMapStore,
        stream: &StreamId,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        let Some((name, key)) = store.locate(stream, seq).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let cm = self.api().get(&name).await.map_err(|e| e.to_string())?;
        Ok(cm.binary_data.and_then(|mut b| b.remove(&key)).map(|b| b.0))
    }

    async fn overwrite_frame(
        &mut self,
        store: &ConfigMapStore,
        stream: &StreamId,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        let (name, key) = store
            .locate(stream, seq)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("seq {seq} not stored"))?;
        self.overwrite(&name, &key, bytes).await
    }

    async fn overwrite_snapshot_frame(
        &mut self,
        _store: &ConfigMapStore,
        stream: &StreamId,
        frame: Vec<u8>,
    ) -> Result<(), String> {
        self.overwrite(
            &layout::snapshot_name(stream),
            layout::SNAPSHOT_FRAME_KEY,
            frame,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_store_conforms() {
    let (_server, client) = localkube().await;
    let result = run_all(|| ConfigMapHarness::new(&client, None)).await;
    assert_eq!(result, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_store_conforms_when_it_seals_every_few_frames() {
    let (_server, client) = localkube().await;
    let result = run_all(|| ConfigMapHarness::new(&client, Some(600))).await;
    assert_eq!(result, Ok(()));
}

async fn fill(store: &ConfigMapStore, stream: &StreamId, count: u64) {
    let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
        .await
        .unwrap();
    let start = writer.head().next_seq();
    for i in start..start + count {
        writer.append(vec![sample_new_event(i)]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_racing_writers_exactly_one_extends_the_journal() {
    let (_server, client) = localkube().await;
    let namespace = fresh_namespace();
    ensure_namespace(&client, &namespace).await;
    let a = ConfigMapStore::new(client.clone(), &namespace);
    let b = ConfigMapStore::new(client.clone(), &namespace);
    let s = StreamId::new("race").unwrap();
    fill(&a, &s, 2).await;
    for round in 0..10u64 {
        let head = a.head(&s).await.unwrap();
        let (_, one) = encode_batch(&s, head, 1, vec![sample_new_event(100 + round)]).unwrap();
        let (_, two) = encode_batch(&s, head, 2, vec![sample_new_event(200 + round)]).unwrap();
        let next = head.next_seq();
        let (ra, rb) = tokio::join!(a.append(&s, next, &one), b.append(&s, next, &two));
        let won = match (ra, rb) {
            (Ok(h), Err(StoreError::Conflict { .. })) => {
                assert_eq!(h.hash, one[0].hash);
                &one
            }
            (Err(StoreError::Conflict { .. }), Ok(h)) => {
                assert_eq!(h.hash, two[0].hash);
                &two
            }
            other => panic!("round {round}: {other:?}"),
        };
        let stored = a.read(&s, next, 10).await.unwrap();
        let frames: Vec<(u64, Vec<u8>)> = stored.iter().map(|(q, f)| (q, f.to_vec())).collect();
        assert_eq!(frames, vec![(next, won[0].frame.clone())], "round {round}");
    }
    assert!(
        logbook_journal::verify::verify(&a, &s)
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_is_labelled_and_owned_and_leftover_segments_are_skipped_then_removed() {
    let (_server, client) = localkube().await;
    let namespace = fresh_namespace();
    ensure_namespace(&client, &namespace).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    // The owner must exist, or the garbage collector removes the journal.
    let owner_cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("demo".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let owner_cm = api.create(&PostParams::default(), &owner_cm).await.unwrap();
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "demo".into(),
        uid: owner_cm.metadata.uid.clone().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let s = StreamId::new("owned").unwrap();
    // A leftover of a crashed seal, under the number the first seal tries.
    let leftover = ConfigMap {
        metadata: ObjectMeta {
            name: Some(layout::segment_name(&s, 1)),
            labels: Some(layout::labels(&s, layout::KIND_SEGMENT)),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &leftover).await.unwrap();

    let store = ConfigMapStore::new(client.clone(), &namespace)
        .with_owner(owner.clone())
        .with_seal_bytes(400);
    fill(&store, &s, 12).await;
    let listed = api
        .list(&ListParams::default().labels(&format!("{}=owned", layout::JOURNAL_LABEL)))
        .await
        .unwrap();
    let names: Vec<String> = listed
        .items
        .iter()
        .map(|cm| cm.metadata.name.clone().unwrap())
        .collect();
    assert!(names.contains(&layout::head_name(&s)), "{names:?}");
    assert!(names.contains(&layout::segment_name(&s, 2)), "{names:?}");
    for cm in &listed.items {
        if cm.metadata.name.as_deref() != Some(layout::segment_name(&s, 1).as_str()) {
            assert_eq!(cm.metadata.owner_references, Some(vec![owner.clone()]));
        }
    }
    // The leftover was never overwritten nor named by the head.
    let still = api.get(&layout::segment_name(&s, 1)).await.unwrap();
    assert_eq!(still.binary_data, None);
    let report = logbook_journal::verify::verify(&store, &s).await.unwrap();
    assert!(report.is_ok() && report.head.seq == 12, "{report:?}");

    let state = logbook_journal::reader::load_state(&store, &s)
        .await
        .unwrap()
        .state;
    logbook_journal::snapshot::save(&store, &s, &state)
        .await
        .unwrap();
    assert_eq!(store.compact(&s, 13).await.unwrap(), 12);
    let left = api
        .list(&ListParams::default().labels(&format!(
            "{}=owned,{}={}",
            layout::JOURNAL_LABEL,
            layout::OBJECT_LABEL,
            layout::KIND_SEGMENT
        )))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "segments left after compaction");
    assert_eq!(store.head(&s).await.unwrap().seq, 12);
    assert_eq!(store.list_streams().await.unwrap(), vec![s.clone()]);
    fill(&store, &s, 1).await;
    assert_eq!(store.read(&s, 1, 10).await.unwrap().last_seq(), Some(13));
    let _ = Head::EMPTY;
}
