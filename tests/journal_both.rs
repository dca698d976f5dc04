//! `--journal=both`: ConfigMaps are the journal, a local sled directory
//! mirrors every committed batch. Reads go to the ConfigMaps; a mirror that
//! fell behind (a fresh volume) is caught up from them while they still
//! hold the frames; the mirror keeps what compaction removes from the
//! cluster copy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use logbook::journal_store::{AnyStore, ConfigMapStore};
use logbook_journal::conformance::sample_new_event;
use logbook_journal::reader::{load_state, read_envelopes};
use logbook_journal::{Durability, JournalStore, SledStore, StreamId, StreamWriter};
use logbook_localkube::{Config, LocalKube};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_mirrors_into_sled_and_catches_a_fresh_mirror_up() {
    let server = LocalKube::start(Config::default()).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stream = StreamId::new("both-1").unwrap();
    let cluster = ConfigMapStore::new(client.clone(), "default");

    // Ten events written through `both`: in the ConfigMaps and in sled.
    let local = SledStore::open(dir.path().join("a"), Durability::Flush).unwrap();
    let both = AnyStore::Both {
        cluster: cluster.clone(),
        local: local.clone(),
    };
    let mut writer = StreamWriter::open(both.clone(), stream.clone(), 1)
        .await
        .unwrap();
    for i in 0..10u64 {
        writer.append(vec![sample_new_event(i)]).await.unwrap();
    }
    let head = cluster.head(&stream).await.unwrap();
    assert_eq!(head.seq, 10);
    assert_eq!(local.head(&stream).await.unwrap(), head);
    assert_eq!(both.head(&stream).await.unwrap(), head);
    let in_cluster = read_envelopes(
        &cluster,
        &stream,
        1,
        logbook_journal::ChainHash::GENESIS,
        10,
    )
    .await
    .unwrap();
    let in_sled = read_envelopes(&local, &stream, 1, logbook_journal::ChainHash::GENESIS, 10)
        .await
        .unwrap();
    assert_eq!(in_cluster, in_sled);

    // A fresh volume: the first mirrored batch brings the whole history.
    let fresh = SledStore::open(dir.path().join("b"), Durability::Flush).unwrap();
    let both = AnyStore::Both {
        cluster: cluster.clone(),
        local: fresh.clone(),
    };
    let mut writer = StreamWriter::open(both.clone(), stream.clone(), 1)
        .await
        .unwrap();
    writer.append(vec![sample_new_event(10)]).await.unwrap();
    assert_eq!(fresh.head(&stream).await.unwrap().seq, 11);
    assert_eq!(
        load_state(&fresh, &stream).await.unwrap().state,
        load_state(&cluster, &stream).await.unwrap().state
    );

    // Compaction removes history from the cluster copy only.
    let state = load_state(&both, &stream).await.unwrap().state;
    logbook_journal::snapshot::save(&both, &stream, &state)
        .await
        .unwrap();
    let removed = both.compact(&stream, 11).await.unwrap();
    assert!(removed > 0);
    assert!(
        cluster
            .read(&stream, 1, 100)
            .await
            .unwrap()
            .iter()
            .all(|(seq, _)| seq >= 11)
    );
    assert_eq!(fresh.read(&stream, 1, 100).await.unwrap().len(), 11);
    server.shutdown().await;
}
