//! The harness of the kubelet tests: a localkube (API only) with graceful
//! pod deletion, an instance, and a kubelet on a temporary state dir; a
//! guard that kills every process of the state dir even when a test fails,
//! and a final check that none is left.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_localkube::instance::Instance;
use logbook_localkube::kubelet::{
    Kubelet, KubeletConfig, KubeletHandle, kill_leftovers, leftover_processes,
};
use logbook_localkube::{Config, DeleteOptions, LocalKube, RunningServer, Store, WriteCtx};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Harness {
    pub server: Option<RunningServer>,
    pub kubelet: Option<KubeletHandle>,
    pub store: Store,
    pub state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Reached with the kubelet still set only when a test failed: its
        // processes must not outlive the test.
        kill_leftovers(&self.state);
    }
}

pub async fn start() -> Harness {
    let server = LocalKube::start(Config {
        graceful_pod_deletion: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let instance = Arc::new(Instance::acquire(&Instance::default_lock_dir()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let state = std::fs::canonicalize(dir.path()).unwrap();
    let store = server.store();
    let kubelet = Kubelet::spawn(store.clone(), instance, KubeletConfig::new(state.clone()))
        .await
        .unwrap();
    Harness {
        server: Some(server),
        kubelet: Some(kubelet),
        store,
        state,
        _dir: dir,
    }
}

impl Harness {
    pub fn kubelet(&self) -> &KubeletHandle {
        self.kubelet.as_ref().unwrap()
    }

    /// Shuts everything down and checks no process is left.
    pub async fn finish(mut self) {
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let left = leftover_processes(&self.state);
        assert!(left.is_empty(), "processes left behind: {left:?}");
    }

    pub fn create_pod(&self, pod: Value) -> Value {
        self.store
            .create(
                "v1",
                "pods",
                Some("default"),
                pod,
                &WriteCtx::internal("test"),
            )
            .unwrap()
    }

    pub fn create(&self, resource: &str, obj: Value) {
        self.store
            .create(
                "v1",
                resource,
                Some("default"),
                obj,
                &WriteCtx::internal("test"),
            )
            .unwrap();
    }

    pub fn get_pod(&self, name: &str) -> Option<Value> {
        self.store.get("v1", "pods", Some("default"), name).ok()
    }

    pub fn delete_pod(&self, name: &str) {
        self.store
            .delete(
                "v1",
                "pods",
                Some("default"),
                name,
                &DeleteOptions::default(),
            )
            .unwrap();
    }

    /// Waits until `pred` holds for the pod, returning it. `secs` is what
    /// an idle machine needs; CI runs these beside heavy lanes on two
    /// cores, so the deadline is four times that (a deadline here is a
    /// test's patience, never a target: speed is benchmarked).
    pub async fn wait_pod(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs * PATIENCE);
        loop {
            if let Some(p) = self.get_pod(name)
                && pred(&p)
            {
                return p;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {name}: {what}; last: {:#}",
                    self.get_pod(name).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_gone(&self, name: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs * PATIENCE);
        while self.get_pod(name).is_some() {
            assert!(Instant::now() < deadline, "pod {name} not deleted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many times its nominal deadline a wait here allows.
pub const PATIENCE: u64 = 4;

pub fn ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

pub fn pod_ip(p: &Value) -> Ipv4Addr {
    p["status"]["podIP"].as_str().unwrap().parse().unwrap()
}

pub fn pod(name: &str, containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": containers}})
}

pub fn valkey_pod(name: &str) -> Value {
    pod(
        name,
        json!([{
            "name": "valkey", "image": "valkey/valkey:9.1",
            "command": ["valkey-server", "--save", "", "--appendonly", "no"],
            "ports": [{"name": "valkey", "containerPort": 6379}],
            "readinessProbe": {"tcpSocket": {"port": "valkey"}, "periodSeconds": 1},
        }]),
    )
}

/// Sends a RESP command inline and returns the first reply, or None on
/// timeout / refusal.
pub async fn valkey(ip: Ipv4Addr, cmd: &str, timeout: Duration) -> Option<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((ip, 6379)).await.ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 65536];
        let mut out = Vec::new();
        loop {
            let n = s.read(&mut buf).await.ok()?;
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out);
            // A bulk reply: wait for the whole body.
            if let Some(rest) = text.strip_prefix('$')
                && let Some((len, body)) = rest.split_once("\r\n")
                && let Ok(len) = len.parse::<usize>()
            {
                if body.len() >= len {
                    return Some(body[..len].to_owned());
                }
                continue;
            }
            if n == 0 || text.ends_with("\r\n") {
                return Some(text.trim_end().to_owned());
            }
        }
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}
