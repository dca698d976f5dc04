//! A backup's manifest is written only while the operator leads and the
//! attempt is still the current one: a manifest is what makes a backup
//! restorable, so it must never land for an attempt a new leader records
//! as failed.
//!
//! Real: moto's S3 server, an in-process localkube, the operator's own
//! `ClusterRuntime` with a sled journal holding a running attempt. The
//! lead is lost (the leadership watch flipped) or the attempt superseded
//! (its failure journaled) between the last shard and the manifest, and
//! the manifest step is run as the backup task runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::s3_server;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kube::Resource;
use kube::api::{Api, PostParams};
use logbook::backup::BackupStore;
use logbook::journal_store::JournalBackend;
use logbook::leader::Leadership;
use logbook::operator::{ClusterRuntime, JournalFactory, RuntimeDeps, write_manifest};
use logbook::resources::ClusterMeta;
use logbook_crds::ValkeyCluster;
use logbook_journal::store::sled::{Durability, SledStore};
use logbook_journal::{BackupTarget, ChainHash, Event, JournalStore, StreamId};
use logbook_localkube::{Config, LocalKube};
use s3_server::S3Server;
use tokio::sync::{Mutex, watch};

const NS: &str = "default";
const BUCKET: &str = "fence";
const OBJECT: &str = "nightly";
const DIR: &str = "logbook/default/fenced/nightly/";

struct Setup {
    _server: logbook_localkube::RunningServer,
    _dir: tempfile::TempDir,
    s3: S3Server,
    store: BackupStore,
    sled: SledStore,
    stream: StreamId,
    lead: watch::Sender<Leadership>,
    rt: Arc<Mutex<ClusterRuntime>>,
}

/// A leading runtime of a new cluster whose journal holds attempt 1 of
/// backup `nightly`, running, and moto with the bucket.
async fn setup() -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let store = BackupStore::new(&s3.target(BUCKET), &s3_server::credentials()).unwrap();

    let server = LocalKube::start(Config::default()).await.unwrap();
    logbook::local_cluster::install_crds(&server).unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let clusters: Api<ValkeyCluster> = Api::namespaced(client.clone(), NS);
    let spec: ValkeyCluster = serde_yaml::from_str(
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: fenced
spec:
  topology: Standalone
  storage:
    size: 1Gi
",
    )
    .unwrap();
    let obj = clusters
        .create(&PostParams::default(), &spec)
        .await
        .unwrap();
    let meta = ClusterMeta::from_cluster(&obj).unwrap();
    let stream = StreamId::new(meta.uid.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path(), Durability::Flush).unwrap();
    let (lead, leadership) = watch::channel(Leadership::Leader { epoch: 1 });
    let deps = RuntimeDeps::new(
        client.clone(),
        JournalFactory {
            backend: JournalBackend::Sled,
            client: client.clone(),
            sled: Some(sled.clone()),
            group_commit: Duration::ZERO,
        },
        leadership,
        "manifest-fence-test".to_owned(),
    );
    let mut rt = ClusterRuntime::open(&deps, meta, obj.object_ref(&()), false)
        .await
        .unwrap();
    assert!(rt.sync_leadership().await.unwrap(), "leads at epoch 1");
    rt.record_now(
        vec![Event::BackupStarted {
            object: OBJECT.to_owned(),
            attempt: 1,
            target: BackupTarget {
                bucket: BUCKET.to_owned(),
                region: s3_server::REGION.to_owned(),
                endpoint: Some(s3.endpoint()),
                path_style: Some(true),
                secret: "backup-s3".to_owned(),
                dir: DIR.to_owned(),
                cluster_dir: "logbook/default/fenced/".to_owned(),
            },
            sources: Vec::new(),
        }],
        None,
    )
    .await
    .unwrap();
    Setup {
        _server: server,
        _dir: dir,
        s3,
        store,
        sled,
        stream,
        lead,
        rt: Arc::new(Mutex::new(rt)),
    }
}

async fn journal(store: &SledStore, stream: &StreamId) -> Vec<Event> {
    let head = store.head(stream).await.unwrap();
    logbook_journal::reader::read_envelopes(store, stream, 1, ChainHash::GENESIS, head.seq)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .collect()
}

async fn manifest_exists(store: &BackupStore) -> bool {
    store
        .head(&format!("{DIR}manifest.json"))
        .await
        .unwrap()
        .is_some()
}

async fn write(s: &Setup) -> bool {
    write_manifest(
        &s.rt,
        OBJECT,
        1,
        &s.store,
        &format!("{DIR}manifest.json"),
        Bytes::from_static(b"{\"format\":1}"),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_writes_the_manifest_of_its_current_attempt() {
    let s = setup().await;
    assert!(write(&s).await, "the current attempt's manifest is written");
    assert!(
        manifest_exists(&s.store).await,
        "the manifest is in the bucket"
    );
    drop(s.s3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manifest_is_written_once_the_lead_is_lost() {
    let s = setup().await;
    let before = journal(&s.sled, &s.stream).await;
    // The last shard landed; the lead is lost before the manifest.
    s.lead.send_replace(Leadership::Follower);
    assert!(!write(&s).await, "a non-leader does not write the manifest");
    assert!(
        !manifest_exists(&s.store).await,
        "no manifest exists for an attempt a new leader will fail"
    );
    assert_eq!(
        journal(&s.sled, &s.stream).await,
        before,
        "a non-leader journals nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manifest_is_written_for_an_attempt_already_failed() {
    let s = setup().await;
    // The attempt was failed meanwhile (a takeover does this to the
    // attempts it did not start), while this instance still leads.
    s.rt.lock()
        .await
        .record_now(
            vec![Event::BackupFailed {
                object: OBJECT.to_owned(),
                attempt: 1,
                reason: "the operator restarted during the attempt".to_owned(),
                retry: true,
            }],
            None,
        )
        .await
        .unwrap();
    assert!(
        !write(&s).await,
        "a failed attempt's manifest is not written"
    );
    assert!(
        !manifest_exists(&s.store).await,
        "no manifest exists for an attempt the journal records as failed"
    );
}
