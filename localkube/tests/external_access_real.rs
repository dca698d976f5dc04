//! NodePort and LoadBalancer Services with localkube's node joined to a
//! real control plane (`controlplane up`: kube-apiserver, controller
//! manager, scheduler): the real API server allocates the node ports,
//! localkube's load-balancer controller assigns the ingress address
//! through the real API, and localkube's proxy forwards both to a
//! valkey-server pod run by localkube's kubelet. Skipped (with a line on
//! stderr) when no control-plane binary is built.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_localkube::instance::{Instance, Network};
use logbook_localkube::kubelet::KubeletTls;
use logbook_localkube::node_api::NodeApi;
use logbook_localkube::remote_node::{RemoteNode, RemoteNodeConfig};
use logbook_localkube::{ApiError, DeleteOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const NODE: &str = "localkube-node";
const NS: &str = "default";

fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LOGBOOK_CONTROLPLANE") {
        return Some(PathBuf::from(p));
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/controlplane");
    tools.is_file().then_some(tools)
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn ping(addr: SocketAddr) -> bool {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf.get(..n)? == b"+PONG\r\n")
    };
    tokio::time::timeout(Duration::from_millis(500), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

async fn eventually<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ingress_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .map(|s| s.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_and_load_balancers_on_a_real_control_plane() {
    let Some(bin) = binary() else {
        eprintln!("skipped: no control-plane binary (make controlplane)");
        return;
    };
    let instance = Arc::new(
        Instance::acquire(&Instance::default_lock_dir())
            .unwrap()
            .with_network(Network::Benchmark),
    );
    instance.add_addresses().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("up.log");
    let mut child = tokio::process::Command::new(bin)
        .arg("up")
        .arg("--dir")
        .arg(dir.path().join("controlplane"))
        .args(["--service-cidr", &instance.service_cidr(), "--node", NODE])
        .args(["--address", &instance.api_address().unwrap().to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(p) = line.strip_prefix("kubeconfig ") {
                admin = Some(PathBuf::from(p));
            } else if line == "ready" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        ready.ok(),
        Some(true),
        "control plane: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let pki = admin.unwrap().parent().unwrap().to_path_buf();
    let admin = client(&pki.join("admin.kubeconfig")).await;
    let node = RemoteNode::join(
        instance.clone(),
        RemoteNodeConfig {
            kubelet: client(&pki.join("node.kubeconfig")).await,
            proxy: client(&pki.join("proxy.kubeconfig")).await,
            provisioner: admin.clone(),
            node_name: NODE.to_owned(),
            state_dir: dir.path().join("node"),
            local_images: Vec::new(),
            tls: Some(KubeletTls {
                cert: pki.join("kubelet.crt"),
                key: pki.join("kubelet.key"),
                client_ca: pki.join("ca.crt"),
            }),
        },
    )
    .await
    .unwrap();
    let api = NodeApi::Remote(admin);

    let pod = json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "v0", "namespace": NS, "labels": {"app": "v0"}},
    "spec": {"containers": [{
        "name": "valkey", "image": "valkey/valkey:9.1",
        // Clients come from 198.18/15, not loopback.
            "command": ["valkey-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
        "ports": [{"name": "valkey", "containerPort": 6379}],
        "readinessProbe": {"tcpSocket": {"port": "valkey"}, "periodSeconds": 1},
    }]}});
    // The default ServiceAccount comes a moment after the API server.
    eventually(30, "the pod is created", async || {
        match api.create("v1", "pods", Some(NS), pod.clone()).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => Some(()),
            Err(_) => None,
        }
    })
    .await;
    let service = |name: &str, kind: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"type": kind, "selector": {"app": "v0"},
                "ports": [{"name": "valkey", "port": 6379, "targetPort": "valkey"}]}})
    };
    let np = api
        .create("v1", "services", Some(NS), service("v0-np", "NodePort"))
        .await
        .unwrap();
    let node_port = u16::try_from(np["spec"]["ports"][0]["nodePort"].as_u64().unwrap()).unwrap();
    api.create("v1", "services", Some(NS), service("v0-lb", "LoadBalancer"))
        .await
        .unwrap();
    let lb = eventually(30, "an ingress address", async || {
        let s = api.get("v1", "services", Some(NS), "v0-lb").await.ok()?;
        ingress_ip(&s).map(|_| s)
    })
    .await;
    let lb_ip = ingress_ip(&lb).unwrap();
    assert_eq!(lb_ip, instance.load_balancer_block().first());
    assert_eq!(lb["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");

    let at_node = SocketAddr::from((instance.node_ip(), node_port));
    eventually(90, "PONG through the node port", async || {
        ping(at_node).await.then_some(())
    })
    .await;
    let at_lb = SocketAddr::from((lb_ip, 6379));
    eventually(10, "PONG through the load balancer", async || {
        ping(at_lb).await.then_some(())
    })
    .await;
    let p = api.get("v1", "pods", Some(NS), "v0").await.unwrap();
    assert_eq!(p["status"]["hostIP"], instance.node_ip().to_string());

    // Deleted: the address is free for the next one.
    api.delete(
        "v1",
        "services",
        Some(NS),
        "v0-lb",
        &DeleteOptions::default(),
    )
    .await
    .unwrap();
    api.create(
        "v1",
        "services",
        Some(NS),
        service("v0-lb2", "LoadBalancer"),
    )
    .await
    .unwrap();
    eventually(30, "the freed address again", async || {
        let s = api.get("v1", "services", Some(NS), "v0-lb2").await.ok()?;
        (ingress_ip(&s) == Some(lb_ip)).then_some(())
    })
    .await;

    node.shutdown().await;
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    let _ = child.kill().await;
    instance.remove_addresses();
}
