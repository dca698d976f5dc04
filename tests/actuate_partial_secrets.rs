//! Executors that handle secrets fail part-way and journal what they
//! already changed (the method of `tests/actuate_partial.rs`): ACL users
//! applied to a node before a later command failed (`SyncUsers`), the CA
//! created before its certificate could be written (`IssueCertificate`),
//! and the certificate a node serves after its reload when the next
//! node's failed (`ReloadCertificate`, a real TLS server).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use logbook::effects;
use logbook::resources::ClusterMeta;
use logbook::tls::issue;
use logbook::valkey::{FingerprintKey, Password, Timeouts, TlsSettings, ValkeyClient};
use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, Event, Intent, Reachability, Timestamp, UserRecord};
use logbook_localkube::instance::Instance;
use logbook_localkube::{Config, LocalKube, RunningServer};

use crate::actuate_partial_common;
use crate::valkey_server;
use actuate_partial_common::{self as common, NS, fail, plain_client};
use valkey_server::Server;

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

/// The fingerprint key of the cluster's internal Secret in these tests.
const FINGERPRINT_KEY: [u8; 32] = [5; 32];

/// The cluster's internal Secret `demo-internal`, holding its
/// fingerprint key (a sync checks each password against its keyed
/// fingerprint).
async fn create_internal_secret(api: &RunningServer) {
    let secrets: Api<Secret> = Api::namespaced(plain_client(api), NS);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("demo-internal".to_owned()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "fingerprint-key".to_owned(),
            ByteString(FINGERPRINT_KEY.to_vec()),
        )])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

async fn create_secret(api: &RunningServer, name: &str, key: &str, value: &str) {
    let secrets: Api<Secret> = Api::namespaced(plain_client(api), NS);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// The record of ValkeyUser `user` (ACL user of the same name) whose
/// password is `password`, in the Secret `<user>-secret`.
fn user_record(user: &str, password: &str) -> UserRecord {
    UserRecord {
        object: user.to_owned(),
        username: user.to_owned(),
        generation: 1,
        rules: vec!["on".to_owned(), format!("~{user}:*"), "+@read".to_owned()],
        secret: format!("{user}-secret/password"),
        password: Some(
            FingerprintKey::from_bytes(&FINGERPRINT_KEY)
                .unwrap()
                .password(&Password::new(password)),
        ),
        problem: None,
        deleting: false,
        rotation_window_ms: 0,
    }
}

/// The users `AclObserved` of `pod` in `facts` says the node holds.
fn acl_observed<'a>(facts: &'a [Event], pod: &str) -> Option<Vec<&'a str>> {
    facts.iter().find_map(|e| match e {
        Event::AclObserved { pod: p, users } if p == pod => {
            Some(users.keys().map(String::as_str).collect())
        }
        _ => None,
    })
}

/// The effects of syncing users `app` and `ops` onto a node: `ACL
/// SETUSER app` (1), `ACL SETUSER ops` (2), `ACL SAVE` (3). A failure at
/// 2 or 3 comes after `app` was applied: the failure carries what the
/// node holds then, read back, `app` among it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sync_that_fails_part_way_journals_the_users_applied() {
    let instance = Instance::acquire(&Instance::default_lock_dir()).unwrap();
    let ip = instance.pod_ip(0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = common::meta();
    let spec = spec();
    for nth in [2, 3] {
        // With an ACL file, so that the sync saves to it.
        let acl = dir.path().join(format!("users-{nth}.acl"));
        std::fs::write(&acl, "").unwrap();
        let server = Server::start_at(ip, &["--aclfile", acl.to_str().unwrap()]);
        let api = LocalKube::start(Config::default()).await.unwrap();
        create_internal_secret(&api).await;
        create_secret(&api, "app-secret", "password", "app-pass-1").await;
        create_secret(&api, "ops-secret", "password", "ops-pass-1").await;
        let mut state = ClusterState::default();
        pod_at(&mut state, "demo-0", ip);
        for (user, password) in [("app", "app-pass-1"), ("ops", "ops-pass-1")] {
            state
                .users
                .records
                .insert(user.to_owned(), user_record(user, password));
        }
        let intent = Intent::SyncUsers {
            pod: "demo-0".to_owned(),
            apply: vec!["app".to_owned(), "ops".to_owned()],
            remove: Vec::new(),
        };
        let log = dir.path().join(format!("effects-{nth}.jsonl"));
        let valkey = ValkeyClient::new(Timeouts::default(), None);
        let (outcome, fired) = common::execute(
            &api,
            common::target(&meta, &spec, &state),
            &valkey,
            &intent,
            Some(fail("SyncUsers", nth)),
            &log,
        )
        .await;
        assert!(fired, "effect {nth} of the sync was never reached");
        let what: Vec<String> = effects::read_log(&log)
            .into_iter()
            .filter(|r| r.k.is_some())
            .map(|r| r.what)
            .collect();
        assert!(what[0].starts_with("ACL SETUSER"), "{what:?}");
        let mut err = outcome.expect_err("an injected failure must fail the sync");
        let facts = err.take_facts();
        // The node as it is: `app` applied, `ops` too when only the save
        // failed.
        let held = acl_observed(&facts, "demo-0").unwrap_or_else(|| {
            panic!(
                "effect {nth} ({}) failed after ACL user app was applied on demo-0, and the failure does not say what the node holds: {facts:?}",
                what[nth as usize - 1]
            )
        });
        let expected: &[&str] = if nth == 2 { &["app"] } else { &["app", "ops"] };
        assert_eq!(held, expected, "effect {nth}");
        let lines = ValkeyClient::new(Timeouts::default(), None)
            .acl_list(server.addr)
            .await
            .unwrap();
        for user in ["app", "ops"] {
            assert_eq!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("user {user} "))),
                expected.contains(&user),
                "effect {nth}: {user} on the server"
            );
        }
        drop(server);
    }
}

/// A failure before any command changed the node (the first `ACL
/// SETUSER` not sent) carries nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sync_that_fails_at_once_journals_nothing() {
    let instance = Instance::acquire(&Instance::default_lock_dir()).unwrap();
    let ip = instance.pod_ip(0).unwrap();
    let _server = Server::start_at(ip, &[]);
    let api = LocalKube::start(Config::default()).await.unwrap();
    create_internal_secret(&api).await;
    create_secret(&api, "app-secret", "password", "app-pass-1").await;
    let mut state = ClusterState::default();
    pod_at(&mut state, "demo-0", ip);
    // The Secret no longer holds the password decided on: refused
    // before anything is sent.
    state
        .users
        .records
        .insert("app".to_owned(), user_record("app", "another"));
    let (meta, spec) = (common::meta(), spec());
    let dir = tempfile::tempdir().unwrap();
    let (outcome, _) = common::execute(
        &api,
        common::target(&meta, &spec, &state),
        &ValkeyClient::new(Timeouts::default(), None),
        &Intent::SyncUsers {
            pod: "demo-0".to_owned(),
            apply: vec!["app".to_owned()],
            remove: Vec::new(),
        },
        None,
        &dir.path().join("effects.jsonl"),
    )
    .await;
    let mut err = outcome.unwrap_err();
    assert!(
        err.to_string().contains("changed since it was read"),
        "refused for the password, not for want of the key: {err}"
    );
    assert!(err.take_facts().is_empty());
}

/// The effects of a first issue: the CA Secret created (1), the
/// certificate Secret applied (2). A failure at 2 carries the CA's
/// creation; the next issue finds that CA and does not create another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_that_fails_after_creating_the_ca_journals_it() {
    let api = LocalKube::start(Config::default()).await.unwrap();
    // The CA must outlive the first issue: its owner exists.
    let meta = common::owned_meta(&api).await;
    let (spec, state) = (spec(), ClusterState::default());
    let dir = tempfile::tempdir().unwrap();
    let intent = Intent::IssueCertificate {
        secret: "demo-tls".to_owned(),
    };
    let valkey = ValkeyClient::new(Timeouts::default(), None);
    let (outcome, fired) = common::execute(
        &api,
        common::target(&meta, &spec, &state),
        &valkey,
        &intent,
        Some(fail("IssueCertificate", 2)),
        &dir.path().join("effects.jsonl"),
    )
    .await;
    assert!(fired);
    let mut err = outcome.expect_err("an injected failure must fail the issue");
    let facts = err.take_facts();
    let secrets: Api<Secret> = Api::namespaced(plain_client(&api), NS);
    let ca_name = logbook::tls::ca_secret_name("demo");
    let ca = logbook::tls::read_ca(&secrets.get(&ca_name).await.unwrap()).unwrap();
    let want = issue::fingerprint(&ca.cert_pem).unwrap();
    assert!(
        facts.iter().any(|e| matches!(e,
            Event::CertificateAuthorityCreated { secret, fingerprint }
                if *secret == ca_name && *fingerprint == want)),
        "the CA was created and the failure does not say so: {facts:?}"
    );
    assert!(secrets.get_opt("demo-tls").await.unwrap().is_none());
    // Again, no fault: the CA is there, only the certificate is new.
    let (outcome, _) = common::execute(
        &api,
        common::target(&meta, &spec, &state),
        &valkey,
        &intent,
        None,
        &dir.path().join("effects-2.jsonl"),
    )
    .await;
    let events = outcome.unwrap();
    // The new certificate, and the version its Secret was written at
    // (`observe::freshness`): no second CA.
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["CertificateObserved", "ResourceVersionsObserved"]);
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
