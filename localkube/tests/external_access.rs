//! NodePort and LoadBalancer Services on localkube: node ports are
//! allocated, checked, kept across updates and freed as the real API
//! server does; the proxy forwards `<node address>:nodePort` and
//! `<ingress address>:port`; the load-balancer controller gives each
//! LoadBalancer an address of the instance's block and takes it back.
//! Every reachability check is a real TCP connection through the
//! listener, to echo servers (tests without a kubelet) or to a
//! valkey-server pod run by the process kubelet.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::result_large_err
)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use logbook_localkube::{
    ApiError, Config, DeleteOptions, RunningServer, Store, WorkloadsConfig, WriteCtx,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "default";

fn ctx() -> WriteCtx {
    WriteCtx::internal("test")
}

async fn server(dir: &std::path::Path, kubelet: bool) -> RunningServer {
    let mut workloads = WorkloadsConfig::without_kubelet(dir.to_path_buf());
    workloads.kubelet = kubelet;
    common::start_with(Config {
        workloads: Some(workloads),
        graceful_pod_deletion: kubelet,
        ..Config::default()
    })
    .await
}

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

/// A ready pod `name` at `ip` (status written as a kubelet would).
fn ready_pod(store: &Store, name: &str, ip: Ipv4Addr) {
    let body = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "echo", "containerPort": 7000}]}]}});
    store.create("v1", "pods", Some(NS), body, &ctx()).unwrap();
    let mut p = store.get("v1", "pods", Some(NS), name).unwrap();
    p["status"] = json!({"phase": "Running", "podIP": ip.to_string(),
        "conditions": [{"type": "Ready", "status": "True"}]});
    store
        .update("v1", "pods", Some(NS), p, true, &ctx())
        .unwrap();
}

fn service(name: &str, app: &str, kind: &str, port: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
        "spec": {"type": kind, "selector": {"app": app}, "ports": [port]}})
}

fn create(store: &Store, svc: Value) -> Result<Value, ApiError> {
    store.create("v1", "services", Some(NS), svc, &ctx())
}

fn delete(store: &Store, name: &str) {
    store
        .delete("v1", "services", Some(NS), name, &DeleteOptions::default())
        .unwrap();
}

fn node_port(svc: &Value) -> u16 {
    u16::try_from(svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap()).unwrap()
}

/// One exchange: `send` out, the first reply back; None when refused,
/// closed or silent.
async fn roundtrip(addr: SocketAddr, send: &[u8]) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(send).await.ok()?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Retries [`roundtrip`] for up to 5 s until it answers `want`.
async fn reaches(addr: SocketAddr, send: &[u8], want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if roundtrip(addr, send).await.as_deref() == Some(want) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Whether connections to `addr` are refused within 2 s (its listener
/// closed).
async fn closes(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits up to 5 s for `pred` on Service `name`.
async fn wait_service(
    store: &Store,
    name: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = store.get("v1", "services", Some(NS), name).unwrap();
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{name}: {what}; last: {s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ingress_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .map(|s| s.parse().unwrap())
}

fn invalid_text(e: ApiError) -> String {
    assert!(matches!(e, ApiError::Invalid { .. }), "{e}");
    e.to_string()
}

#[tokio::test]
async fn node_ports_are_allocated_reachable_checked_kept_and_freed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), false).await;
    let store = server.store();
    let instance = server.instance().unwrap();
    let node = instance.node_ip();
    assert_ne!(node, Ipv4Addr::LOCALHOST);
    let ip = instance.pod_ip(0).unwrap();
    let _echo = echo(SocketAddr::from((ip, 7000)), "A:").await;
    ready_pod(&store, "a", ip);

    // Allocated from the range, reachable at the node address.
    let svc = create(
        &store,
        service(
            "np",
            "a",
            "NodePort",
            json!({"name": "echo", "port": 8000, "targetPort": "echo"}),
        ),
    )
    .unwrap();
    let np = node_port(&svc);
    assert!((30000..=32767).contains(&np), "{np}");
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    assert!(reaches(SocketAddr::from((node, np)), b"ping", "A:ping").await);

    // A PUT without the node port keeps it (the port matched by name).
    let mut put = svc.clone();
    put["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("nodePort");
    put["metadata"]["labels"] = json!({"touched": "yes"});
    let updated = store
        .update("v1", "services", Some(NS), put, false, &ctx())
        .unwrap();
    assert_eq!(node_port(&updated), np);
    assert!(reaches(SocketAddr::from((node, np)), b"ping", "A:ping").await);

    // A requested port already held, or out of range, is refused with
    // the field named.
    let clash = create(
        &store,
        service("clash", "a", "NodePort", json!({"port": 1, "nodePort": np})),
    )
    .unwrap_err();
    let text = invalid_text(clash);
    assert!(text.contains("spec.ports[0].nodePort"), "{text}");
    assert!(
        text.contains(&format!(
            "Invalid value: {np}: provided port is already allocated"
        )),
        "{text}"
    );
    let far = create(
        &store,
        service("far", "a", "NodePort", json!({"port": 1, "nodePort": 80})),
    )
    .unwrap_err();
    let text = invalid_text(far);
    assert!(
        text.contains("spec.ports[0].nodePort") && text.contains("not in the valid range"),
        "{text}"
    );
    // A node port on a ClusterIP Service is forbidden.
    let cip = create(
        &store,
        service(
            "cip",
            "a",
            "ClusterIP",
            json!({"port": 1, "nodePort": 31999}),
        ),
    )
    .unwrap_err();
    assert!(invalid_text(cip).contains("may not be used when `type` is 'ClusterIP'"));

    // Back to ClusterIP: the node port goes, its listener closes, and the
    // port is free for another Service.
    let mut back = store.get("v1", "services", Some(NS), "np").unwrap();
    back["spec"]["type"] = json!("ClusterIP");
    let back = store
        .update("v1", "services", Some(NS), back, false, &ctx())
        .unwrap();
    assert!(
        back["spec"]["ports"][0].get("nodePort").is_none(),
        "{back:#}"
    );
    assert!(
        back["spec"].get("externalTrafficPolicy").is_none(),
        "{back:#}"
    );
    assert!(closes(SocketAddr::from((node, np))).await);
    let again = create(
        &store,
        service(
            "again",
            "a",
            "NodePort",
            json!({"name": "echo", "port": 8001, "targetPort": "echo", "nodePort": np}),
        ),
    )
    .unwrap();
    assert_eq!(node_port(&again), np);
    assert!(reaches(SocketAddr::from((node, np)), b"ping", "A:ping").await);

    // Deleting frees it too.
    delete(&store, "again");
    assert!(closes(SocketAddr::from((node, np))).await);
    let last = create(
        &store,
        service("last", "a", "NodePort", json!({"port": 1, "nodePort": np})),
    )
    .unwrap();
    assert_eq!(node_port(&last), np);
    server.shutdown().await;
}

#[tokio::test]
async fn a_load_balancer_gets_an_address_is_reachable_and_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), false).await;
    let store = server.store();
    let instance = server.instance().unwrap();
    let block = instance.load_balancer_block();
    let ip = instance.pod_ip(0).unwrap();
    let _echo = echo(SocketAddr::from((ip, 7000)), "B:").await;
    ready_pod(&store, "b", ip);
    let port = json!({"name": "echo", "port": 8000, "targetPort": "echo"});

    let created = create(&store, service("lb", "b", "LoadBalancer", port.clone())).unwrap();
    assert_eq!(created["spec"]["allocateLoadBalancerNodePorts"], true);
    let np = node_port(&created);
    let svc = wait_service(&store, "lb", "an ingress address", |s| {
        ingress_ip(s).is_some()
    })
    .await;
    let lb_ip = ingress_ip(&svc).unwrap();
    assert_eq!(lb_ip, block.first(), "the lowest address of the block");
    assert_eq!(svc["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
    assert!(reaches(SocketAddr::from((lb_ip, 8000)), b"ping", "B:ping").await);
    assert!(
        reaches(
            SocketAddr::from((instance.node_ip(), np)),
            b"ping",
            "B:ping"
        )
        .await
    );

    // An update keeps the node port and the address.
    let mut put = svc.clone();
    put["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("nodePort");
    put["metadata"]["annotations"] = json!({"touched": "yes"});
    let updated = store
        .update("v1", "services", Some(NS), put, false, &ctx())
        .unwrap();
    assert_eq!(node_port(&updated), np);
    assert_eq!(ingress_ip(&updated), Some(lb_ip));

    // A requested address in the block is honoured; another class is
    // left alone.
    let wanted = block.addresses().nth(5).unwrap();
    let mut asks = service("asks", "b", "LoadBalancer", port.clone());
    asks["spec"]["loadBalancerIP"] = json!(wanted.to_string());
    create(&store, asks).unwrap();
    let mut other = service("other", "b", "LoadBalancer", port.clone());
    other["spec"]["loadBalancerClass"] = json!("example.com/elsewhere");
    create(&store, other).unwrap();
    wait_service(&store, "asks", "the requested address", |s| {
        ingress_ip(s) == Some(wanted)
    })
    .await;
    assert!(reaches(SocketAddr::from((wanted, 8000)), b"ping", "B:ping").await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = store.get("v1", "services", Some(NS), "other").unwrap();
    assert_eq!(ingress_ip(&other), None, "{other:#}");

    // Deleting frees the address and the node port: the listeners close,
    // and the next LoadBalancer gets both again.
    delete(&store, "lb");
    assert!(closes(SocketAddr::from((lb_ip, 8000))).await);
    assert!(closes(SocketAddr::from((instance.node_ip(), np))).await);
    let mut next = service("next", "b", "LoadBalancer", port.clone());
    next["spec"]["ports"][0]["nodePort"] = json!(np);
    create(&store, next).unwrap();
    let next = wait_service(&store, "next", "an ingress address", |s| {
        ingress_ip(s).is_some()
    })
    .await;
    assert_eq!(ingress_ip(&next), Some(lb_ip));
    assert!(reaches(SocketAddr::from((lb_ip, 8000)), b"ping", "B:ping").await);

    // No longer a LoadBalancer: the ingress is cleared, its listener
    // closes.
    let mut cip = next.clone();
    cip["spec"]["type"] = json!("ClusterIP");
    store
        .update("v1", "services", Some(NS), cip, false, &ctx())
        .unwrap();
    wait_service(&store, "next", "its ingress cleared", |s| {
        ingress_ip(s).is_none()
    })
    .await;
    assert!(closes(SocketAddr::from((lb_ip, 8000))).await);
    server.shutdown().await;
}

/// A valkey-server pod, run by the process kubelet, answers through its
/// NodePort and LoadBalancer Services; its pod status, its environment and
/// the Node name the node address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_pod_answers_at_the_node_address_and_the_load_balancer() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), true).await;
    let store = server.store();
    let instance = server.instance().unwrap();
    let node_ip = instance.node_ip().to_string();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "v0", "namespace": NS, "labels": {"app": "v0"}},
    "spec": {"containers": [{
        "name": "valkey", "image": "valkey/valkey:9.1",
        "command": ["sh", "-c", "echo \"host=$HOST_IP\"; exec valkey-server --save '' --appendonly no"],
        "env": [{"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}],
        "ports": [{"name": "valkey", "containerPort": 6379}],
        "readinessProbe": {"tcpSocket": {"port": "valkey"}, "periodSeconds": 1},
    }]}});
    store.create("v1", "pods", Some(NS), pod, &ctx()).unwrap();
    let port = json!({"name": "valkey", "port": 6379, "targetPort": "valkey"});
    let np = node_port(&create(&store, service("v0-np", "v0", "NodePort", port.clone())).unwrap());
    create(&store, service("v0-lb", "v0", "LoadBalancer", port)).unwrap();
    let lb = wait_service(&store, "v0-lb", "an ingress address", |s| {
        ingress_ip(s).is_some()
    })
    .await;
    let lb_ip = ingress_ip(&lb).unwrap();

    let ping = b"PING\r\n";
    let deadline = Duration::from_secs(40);
    let started = Instant::now();
    let mut ok = false;
    while started.elapsed() < deadline {
        if roundtrip(SocketAddr::from((instance.node_ip(), np)), ping)
            .await
            .as_deref()
            == Some("+PONG\r\n")
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "no PONG through the node port {np}");
    assert!(reaches(SocketAddr::from((lb_ip, 6379)), ping, "+PONG\r\n").await);

    let p = store.get("v1", "pods", Some(NS), "v0").unwrap();
    assert_eq!(p["status"]["hostIP"], node_ip.as_str());
    assert_eq!(p["status"]["hostIPs"][0]["ip"], node_ip.as_str());
    let node = store.get("v1", "nodes", None, "localkube-node").unwrap();
    let internal: Vec<&Value> = node["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "InternalIP")
        .collect();
    assert_eq!(internal.len(), 1);
    assert_eq!(internal[0]["address"], node_ip.as_str());
    let logs = pod_log(&server, "v0").await;
    assert!(logs.contains(&format!("host={node_ip}")), "{logs}");

    store
        .delete("v1", "pods", Some(NS), "v0", &DeleteOptions::default())
        .unwrap();
    let gone = Instant::now();
    while store.get("v1", "pods", Some(NS), "v0").is_ok() {
        assert!(
            gone.elapsed() < Duration::from_secs(60),
            "pod v0 not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

/// The pod's log, read through the API.
async fn pod_log(server: &RunningServer, pod: &str) -> String {
    let addr = server.addr();
    let path = format!("/api/v1/namespaces/{NS}/pods/{pod}/log");
    let (code, _, body) = common::raw(addr, "GET", &path, &[], b"").await;
    assert_eq!(code, 200, "{body}");
    body
}
