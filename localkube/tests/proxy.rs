//! The Service proxy: a client connecting to a Service's ClusterIP
//! reaches a ready endpoint, and after the endpoint pod is replaced a new
//! connection reaches the new one within 100 ms. The "pods" are tokio
//! echo servers on addresses of the instance's block; the test writes
//! their pod status as a kubelet would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use logbook_localkube::{ApiError, Config, DeleteOptions, Store, WorkloadsConfig, WriteCtx};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "default";

/// An echo server prefixing every reply with its name.
async fn echo(addr: SocketAddr, name: &'static str) -> tokio::task::JoinHandle<()> {
    let l = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut out = name.as_bytes().to_vec();
                    out.extend_from_slice(&buf[..n]);
                    if s.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

fn pod(store: &Store, name: &str, ip: &str, ready: bool) {
    let ctx = WriteCtx::internal("test");
    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"app": "echo"}},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "echo", "containerPort": 7000}]}]}});
    match store.create("v1", "pods", Some(NS), body, &ctx) {
        Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
        Err(e) => panic!("{e}"),
    }
    let mut p = store.get("v1", "pods", Some(NS), name).unwrap();
    p["status"] = json!({"phase": "Running", "podIP": ip,
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]});
    store.update("v1", "pods", Some(NS), p, true, &ctx).unwrap();
}

async fn roundtrip(addr: SocketAddr) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(b"ping").await.ok()?;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn a_client_follows_the_service_to_the_replacement_pod() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_with(Config {
        workloads: Some(WorkloadsConfig::without_kubelet(dir.path().to_path_buf())),
        ..Config::default()
    })
    .await;
    let store = server.store();
    let instance = server.instance().unwrap();
    let ip_a = instance.pod_ip(0).unwrap();
    let ip_b = instance.pod_ip(1).unwrap();
    let _a = echo(SocketAddr::from((ip_a, 7000)), "A:").await;
    let _b = echo(SocketAddr::from((ip_b, 7000)), "B:").await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": NS},
        "spec": {"selector": {"app": "echo"}, "ports": [{"name": "echo", "port": 8000, "targetPort": "echo"}]}});
    let svc = store
        .create("v1", "services", Some(NS), svc, &WriteCtx::internal("test"))
        .unwrap();
    let cluster_ip: std::net::Ipv4Addr =
        svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    let front = SocketAddr::from((cluster_ip, 8000));
    pod(&store, "a", &ip_a.to_string(), true);
    pod(&store, "b", &ip_b.to_string(), false);

    let mut first = None;
    for _ in 0..100 {
        first = roundtrip(front).await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        first.as_deref(),
        Some("A:ping"),
        "the only ready endpoint is A"
    );

    // B becomes ready, A goes away: the next connections reach B.
    pod(&store, "b", &ip_b.to_string(), true);
    store
        .delete("v1", "pods", Some(NS), "a", &DeleteOptions::default())
        .unwrap();
    let gone = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = roundtrip(front).await;
    while got.as_deref() != Some("B:ping") && gone.elapsed() < Duration::from_millis(300) {
        got = roundtrip(front).await;
    }
    assert_eq!(got.as_deref(), Some("B:ping"), "after {:?}", gone.elapsed());
    for _ in 0..5 {
        assert_eq!(roundtrip(front).await.as_deref(), Some("B:ping"));
    }

    // Deleting the Service closes its listener.
    store
        .delete(
            "v1",
            "services",
            Some(NS),
            "echo",
            &DeleteOptions::default(),
        )
        .unwrap();
    let mut closed = false;
    for _ in 0..50 {
        if TcpStream::connect(front).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the listener stops with its Service");
    server.shutdown().await;
    assert!(
        TcpStream::connect(SocketAddr::from((cluster_ip, 8000)))
            .await
            .is_err()
    );
}
