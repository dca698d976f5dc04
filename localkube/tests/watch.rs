//! Watches through kube-rs: resume from a resourceVersion with every later
//! change in order, 410 once the history no longer reaches back,
//! bookmarks, streaming lists (`sendInitialEvents`), selector moves, and
//! kube-rs' `watcher` + `reflector` staying in sync through a burst.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use logbook_localkube::Config;
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "w"}}, "data": {"v": "0"}}),
    )
    .unwrap()
}

async fn next(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test]
async fn resume_delivers_every_change_in_order() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let from = first.metadata.resource_version.clone().unwrap();
    for i in 1..=20 {
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    let mut last_rv = from.parse::<u64>().unwrap();
    for i in 1..=20 {
        match next(&mut stream).await {
            WatchEvent::Modified(o) => {
                assert_eq!(o.data.unwrap()["v"], i.to_string());
                let rv: u64 = o.metadata.resource_version.unwrap().parse().unwrap();
                assert!(rv > last_rv);
                last_rv = rv;
            }
            other => panic!("expected MODIFIED, got {other:?}"),
        }
    }
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("b"))
    );
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("b"))
    );
    // Live changes after the history.
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("c"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn too_old_resource_version_is_gone() {
    let server = common::start_with(Config {
        watch_history: 5,
        ..Config::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    for i in 0..10 {
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let from = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {from} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // A garbage resourceVersion is a 400, and the server keeps serving.
    let e = common::api_err(
        api.watch(&WatchParams::default(), "garbage")
            .await
            .err()
            .expect("refused"),
    );
    assert_eq!(e.code, 400);
    api.get("a").await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_streaming_lists() {
    let server = common::start_with(Config {
        bookmark_interval: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = api
        .create(&PostParams::default(), &cm("b"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            },
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    drop(stream);

    let wp = WatchParams::streaming_lists();
    let mut stream = api.watch(&wp, "").await.unwrap().boxed();
    let mut added = Vec::new();
    loop {
        match next(&mut stream).await {
            WatchEvent::Added(o) => added.push(o.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    added.sort();
    assert_eq!(added, vec!["a", "b"]);
    server.shutdown().await;
}

#[tokio::test]
async fn selector_moves_are_added_and_deleted() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let rv = api
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=w").timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next(&mut stream).await, WatchEvent::Deleted(_)));
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "w"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next(&mut stream).await, WatchEvent::Added(_)));
    server.shutdown().await;
}

#[tokio::test]
async fn timeout_closes_the_stream() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the watch ended by itself");
    server.shutdown().await;
}

#[tokio::test]
async fn watcher_and_reflector_stay_in_sync() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    for i in 0..20 {
        api.create(&PostParams::default(), &cm(&format!("pre-{i}")))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).applied_objects();
    let task = tokio::spawn(async move { stream.try_for_each(|_| async { Ok(()) }).await });
    reader.wait_until_ready().await.unwrap();
    for i in 0..100 {
        api.create(&PostParams::default(), &cm(&format!("burst-{i}")))
            .await
            .unwrap();
    }
    for i in 0..50 {
        api.delete(&format!("burst-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    for i in 0..20 {
        api.patch(
            &format!("pre-{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "9"}})),
        )
        .await
        .unwrap();
    }
    common::eventually("the reflector to converge", || {
        let reader = reader.clone();
        async move {
            reader.state().len() == 70
                && reader
                    .state()
                    .iter()
                    .filter(|c| c.data.as_ref().is_some_and(|d| d["v"] == "9"))
                    .count()
                    == 20
        }
    })
    .await;
    task.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_works() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    api.create(&PostParams::default(), &cm("s")).await.unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().streaming_lists()),
    )
    .applied_objects();
    let task = tokio::spawn(async move { stream.try_for_each(|_| async { Ok(()) }).await });
    reader.wait_until_ready().await.unwrap();
    api.create(&PostParams::default(), &cm("t")).await.unwrap();
    common::eventually("two objects", || {
        let reader = reader.clone();
        async move { reader.state().len() == 2 }
    })
    .await;
    task.abort();
    server.shutdown().await;
}
