//! Executors that handle secrets fail part-way and journal what they
//! already changed (the method of `tests/actuate_partial.rs`): the
//! certificate a node serves after its reload when the next node's
//! failed (`ReloadCertificate`, a real TLS server).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook::effects;
use logbook::resources::ClusterMeta;
use logbook::tls::issue;
use logbook::valkey::{Timeouts, TlsSettings, ValkeyClient};
use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, Event, Intent, Reachability, Timestamp};
use logbook_localkube::instance::Instance;
use logbook_localkube::{Config, LocalKube};

mod actuate_partial_common;
mod valkey_server;
use actuate_partial_common::{self as common, NS};

fn spec() -> ValkeyClusterSpec {
    ValkeyClusterSpec::with_topology(Topology::Replication)
}

/// A data pod `name` at `ip` in the projection.
fn pod_at(state: &mut ClusterState, name: &str, ip: Ipv4Addr) {
    state.pods.insert(
        name.to_owned(),
        PodView {
            ip: Some(ip.to_string()),
            reachability: Some(Reachability::Reachable),
            ..PodView::default()
        },
    );
}

/// A TLS-only Redis 7.0 server (Debian's, built with TLS) on `ip`:6379
/// whose certificate files are under `/etc/valkey-tls`, as in a pod: it
/// runs in a mount namespace of its own where `files` is bind-mounted
/// there (as localkube's kubelet mounts a pod's volumes; needs root).
struct TlsServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start(ip: Ipv4Addr, files: &std::path::Path) -> TlsServer {
        let binary = valkey_server::redis_server_binary();
        assert!(binary.exists(), "{} is missing", binary.display());
        let dir = tempfile::tempdir().unwrap();
        let tls = logbook::resources::TLS_DIR;
        let script = format!(
            "set -e; mkdir -p {tls}; mount --bind '{files}' {tls}; exec \"$@\"",
            files = files.display()
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(script)
            .arg("sh")
            .arg(&binary)
            .args([
                "--port",
                "0",
                "--tls-port",
                "6379",
                "--bind",
                &ip.to_string(),
            ])
            .args(["--tls-cert-file", &format!("{tls}/tls.crt")])
            .args(["--tls-key-file", &format!("{tls}/tls.key")])
            .args(["--tls-ca-cert-file", &format!("{tls}/ca.crt")])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::new(ip.into(), 6379);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {addr} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsServer { child, _dir: dir }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reload of `demo-0` (a real TLS server) then `demo-1` (nothing
/// listens at its address): the failure on `demo-1` carries what
/// `demo-0` serves after its reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_on_a_later_pod_journals_the_earlier_ones() {
    let instance = Instance::acquire(&Instance::default_lock_dir()).unwrap();
    let (ip0, ip1) = (instance.pod_ip(0).unwrap(), instance.pod_ip(1).unwrap());
    let meta: ClusterMeta = common::meta();
    let now = Timestamp::from(chrono::Utc::now());
    let ca = issue::new_ca("demo", NS, now, issue::CA_VALIDITY).unwrap();
    let names = issue::cluster_names("demo", NS);
    let leaf = issue::issue_leaf(&ca, &names, now, issue::LEAF_VALIDITY).unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("tls.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(files.path().join("tls.key"), &leaf.key_pem).unwrap();
    std::fs::write(files.path().join("ca.crt"), &ca.cert_pem).unwrap();
    let _server = TlsServer::start(ip0, files.path());
    let api = LocalKube::start(Config::default()).await.unwrap();
    let mut state = ClusterState::default();
    pod_at(&mut state, "demo-0", ip0);
    pod_at(&mut state, "demo-1", ip1);
    let valkey = ValkeyClient::new(Timeouts::default(), None);
    valkey
        .set_tls(Some(TlsSettings {
            server_name: names[0].clone(),
            ca_pems: vec![ca.cert_pem.clone()],
            client: None,
        }))
        .await
        .unwrap();
    let fingerprint = issue::fingerprint(&leaf.cert_pem).unwrap();
    let intent = Intent::ReloadCertificate {
        pods: vec!["demo-0".to_owned(), "demo-1".to_owned()],
        fingerprint: fingerprint.clone(),
    };
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("effects.jsonl");
    let (outcome, _) = common::execute(
        &api,
        common::target(&meta, &spec, &state),
        &valkey,
        &intent,
        None,
        &log,
    )
    .await;
    let what: Vec<String> = effects::read_log(&log)
        .into_iter()
        .map(|r| r.what)
        .collect();
    assert_eq!(what.len(), 2, "{what:?}");
    let mut err = outcome.expect_err("demo-1 cannot be reached");
    assert!(err.to_string().contains("demo-1"), "{err}");
    let facts = err.take_facts();
    assert!(
        facts.iter().any(|e| matches!(e,
            Event::CertificateServed { pod, fingerprint: fp }
                if pod == "demo-0" && *fp == fingerprint)),
        "demo-0 was reloaded and seen serving {fingerprint}, and the failure does not say so: {facts:?}"
    );
}
