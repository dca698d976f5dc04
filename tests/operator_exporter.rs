//! `spec.metrics` end to end, scraped by a real Prometheus: the exporter
//! sidecars (Debian's `redis_exporter` 1.45, what the image
//! `oliver006/redis_exporter` runs on localkube) beside every data pod and
//! Sentinel of a Sentinel cluster and every data pod of a TLS cluster, the
//! operator's `/metrics`, the chart's alert rules and the chart's
//! dashboard.
//!
//! Prometheus (Debian's, which `make setup` installs) scrapes the operator
//! and the exporters. The exporters' targets are what the ServiceMonitor
//! would give it: the addresses of the `<name>-metrics` Service's
//! EndpointSlices (port `metrics`), labelled `namespace`, `pod` and
//! `valkeycluster`. Checked:
//!
//! - every exporter answers `redis_up 1` as the `logbook-metrics` user
//!   (over TLS on the TLS cluster), and no server's `ACL LOG` holds a
//!   denial of it (the user has exactly what the exporter sends);
//! - every rule of the chart's PrometheusRule evaluates without error;
//! - a killed primary fires `LogbookFailoverHappened`, a backup to an
//!   unreachable bucket fires `LogbookBackupFailed`, and neither fires
//!   before;
//! - every panel of the chart's dashboard returns series
//!   (`scripts/dashboard_plot.py --require-data`, which also plots them).
//!
//! `LOGBOOK_DASHBOARD_SVG=<path>` keeps the plot (docs/images/dashboard.svg
//! is made so).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;
use crate::s3_server;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams};
use operator_common::*;
use s3_server::S3Server;
use serde_json::Value;

const SENTINEL: &str = "watch";
const TLS: &str = "vault";
const BUCKET: &str = "logbook-backups";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The Prometheus server of the test, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus in `dir` on the chart's rules, scraping the
    /// operator at `operator` and the targets of `targets.json`.
    fn start(dir: &Path, operator: SocketAddr) -> Prometheus {
        // The chart's PrometheusRule as the chart renders it by default.
        let rendered = Command::new(root().join(".tools/bin/helm"))
            .args([
                "template",
                "logbook",
                root().join("charts/logbook").to_str().unwrap(),
                "--set",
                "metrics.prometheusRule.enabled=true",
                "--show-only",
                "templates/prometheusrule.yaml",
            ])
            .output()
            .expect("helm (make setup installs it in .tools/bin)");
        assert!(rendered.status.success(), "{rendered:?}");
        let rule: serde_yaml::Value = serde_yaml::from_slice(&rendered.stdout).unwrap();
        std::fs::write(
            dir.join("rules.yaml"),
            serde_yaml::to_string(&rule["spec"]).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("targets.json"), "[]").unwrap();
        // JSON is YAML.
        let config = serde_json::json!({
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {
                    "job_name": "logbook-operator",
                    "honor_labels": true,
                    "static_configs": [{"targets": [operator.to_string()]}],
                },
                {
                    "job_name": "valkey-exporters",
                    "file_sd_configs": [{"files": ["targets.json"], "refresh_interval": "2s"}],
                },
            ],
        });
        std::fs::write(dir.join("prometheus.yml"), config.to_string()).unwrap();
        let addr = free_addr();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .current_dir(dir)
            .args([
                "--config.file=prometheus.yml",
                "--storage.tsdb.path=data",
                &format!("--web.listen-address={addr}"),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian's package: make setup installs it)");
        Prometheus {
            child,
            addr,
            dir: dir.to_owned(),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /api/v1/<path>`'s `data`, or `None` while Prometheus is not
    /// answering.
    fn api(&self, path: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                &format!("{}/api/v1/{path}", self.url()),
            ])
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    /// The instant vector of `query`.
    fn query(&self, query: &str) -> Vec<Value> {
        let q: String = url_encode(query);
        self.api(&format!("query?query={q}"))
            .and_then(|d| d["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The names of the alerts firing now.
    fn firing(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.api("alerts")
            .and_then(|d| d["alerts"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let labels = serde_json::from_value(a["labels"].clone()).unwrap_or_default();
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                    labels,
                )
            })
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The scrape targets of `cluster`'s exporters as the ServiceMonitor
/// would find them: every address of the metrics Service's slices.
async fn exporter_targets(env: &Env, cluster: &str) -> Vec<Value> {
    let slices: kube::Api<EndpointSlice> = env.api();
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={cluster}-metrics"));
    let mut targets = Vec::new();
    for slice in slices.list(&lp).await.unwrap() {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("metrics"))
            .and_then(|p| p.port);
        let Some(port) = port else { continue };
        for endpoint in slice.endpoints {
            let pod = endpoint
                .target_ref
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            for address in endpoint.addresses {
                targets.push(serde_json::json!({
                    "targets": [format!("{address}:{port}")],
                    "labels": {"namespace": NS, "pod": pod, "valkeycluster": cluster},
                }));
            }
        }
    }
    targets
}

async fn put_secret(env: &Env, name: &str, endpoint: &str) {
    let api: kube::Api<Secret> = env.api();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("AWS_ACCESS_KEY_ID".to_owned(), ByteString(b"test".to_vec())),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                ByteString(b"test".to_vec()),
            ),
            (
                "endpoint".to_owned(),
                ByteString(endpoint.as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    };
    api.patch(
        name,
        &PatchParams::apply("operator-exporter-test").force(),
        &Patch::Apply(&secret),
    )
    .await
    .unwrap();
}

fn backup_yaml(name: &str, cluster: &str, secret: &str) -> String {
    format!(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyBackup\nmetadata:\n  name: {name}\nspec:\n  cluster: {cluster}\n  destination:\n    bucket: {BUCKET}\n    prefix: logbook\n    credentialsSecret: {secret}\n"
    )
}

/// Waits until `check` holds, else fails with `what` and Prometheus's log.
async fn until(prom: &Prometheus, env: &Env, secs: u64, what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        if std::time::Instant::now() >= deadline {
            panic!(
                "timed out waiting for {what}\nfiring: {:?}\n--- prometheus log ---\n{}\n{}",
                prom.firing(),
                prom.log(),
                env.dump(SENTINEL).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exporters_are_scraped_by_prometheus_and_the_alerts_and_dashboard_follow() {
    let env = Env::start_without_operator("exporter").await;
    let workdir = tempfile::Builder::new()
        .prefix("logbook-exporter-")
        .tempdir()
        .unwrap();
    let kubeconfig = workdir.path().join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig);
    let metrics = free_addr();
    let metrics_arg = metrics.to_string();
    let _operator = OperatorProcess::start_with(
        &env,
        &kubeconfig,
        workdir.path(),
        "exporter-1",
        None,
        &["--metrics-addr", &metrics_arg, "--log-level", "info"],
    );
    let s3 = S3Server::start_at(env.host_for_pods(), None, &[]);
    s3.create_bucket(BUCKET);
    put_secret(&env, "backup-s3", &s3.endpoint()).await;
    // Nothing listens on port 9 (discard) of the pods' host address.
    let [a, b, c, d] = env.host_for_pods();
    put_secret(&env, "backup-nowhere", &format!("http://{a}.{b}.{c}.{d}:9")).await;

    let metrics_on = "  metrics:\n    enabled: true\n  storage:\n";
    env.apply_yaml(&sentinel_yaml(SENTINEL).replace("  storage:\n", metrics_on))
        .await;
    let tls = replication_yaml(TLS, 2)
        .replace("  storage:\n", metrics_on)
        .replace(
            "  topology: Replication\n",
            "  topology: Replication\n  image: valkey/valkey:8.0\n  tls:\n    enabled: true\n  resources:\n    limits:\n      memory: 256Mi\n",
        );
    env.apply_yaml(&tls).await;
    env.wait_ready(SENTINEL, 3, Duration::from_secs(120)).await;
    env.wait_ready(TLS, 2, Duration::from_secs(120)).await;

    // Every data pod and Sentinel runs the exporter, and the metrics
    // Service's endpoints are exactly those pods.
    let prom_dir = workdir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom = Prometheus::start(&prom_dir, metrics);
    let began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut expected = 0;
    for (cluster, pods) in [(SENTINEL, 6), (TLS, 2)] {
        env.eventually(
            Duration::from_secs(60),
            "the metrics Service's endpoints",
            || async { exporter_targets(&env, cluster).await.len() == pods },
        )
        .await;
        expected += pods;
    }
    let mut all = exporter_targets(&env, SENTINEL).await;
    all.extend(exporter_targets(&env, TLS).await);
    let pods: Vec<String> = all
        .iter()
        .map(|t| t["labels"]["pod"].as_str().unwrap().to_owned())
        .collect();
    for want in ["watch-0", "watch-sentinel-0", "vault-1"] {
        assert!(
            pods.contains(&want.to_owned()),
            "{want} not scraped: {pods:?}"
        );
    }
    std::fs::write(
        prom_dir.join("targets.json"),
        serde_json::to_string(&all).unwrap(),
    )
    .unwrap();
    until(
        &prom,
        &env,
        90,
        "every exporter up and the operator scraped",
        || {
            let up = prom.query("redis_up == 1");
            up.len() == expected && prom.query("logbook_leader == 1").len() == 1
        },
    )
    .await;
    // Sentinels are read as Sentinels, the TLS servers over TLS.
    assert!(
        !prom
            .query("redis_sentinel_masters{valkeycluster=\"watch\"} == 1")
            .is_empty(),
        "no Sentinel series"
    );
    assert_eq!(
        prom.query("redis_instance_info{valkeycluster=\"vault\"}")
            .len(),
        2
    );
    // The exporter's user has what it sends: no denial on any server.
    for cluster in [SENTINEL, TLS] {
        let password = env.password(cluster).await;
        for pod in env.pods(cluster).await {
            let name = pod.metadata.name.clone().unwrap();
            let addr = env.pod_addr(&name).await;
            // Over TLS on the TLS cluster (redis_cli sees it).
            let log = redis_cli(&addr, &password, &["ACL", "LOG"]);
            assert!(!log.contains("logbook-metrics"), "{name}: ACL LOG {log}");
        }
    }

    // Every rule evaluates; nothing fires on a healthy pair of clusters
    // but what a young install shows (no leader before the first scrape).
    until(&prom, &env, 30, "every rule evaluated", || {
        prom.api("rules").is_some_and(|d| {
            let rules: Vec<&Value> = d["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            rules.len() >= 13 && rules.iter().all(|r| r["health"] == "ok")
        })
    })
    .await;
    let firing = prom.firing();
    assert!(
        !firing
            .iter()
            .any(|(n, _)| n == "LogbookFailoverHappened" || n == "LogbookBackupFailed"),
        "{firing:?}"
    );

    // A backup that completes, one that cannot reach its bucket.
    kubectl_apply(
        &env,
        NS,
        &backup_yaml("watch-good", SENTINEL, "backup-s3"),
        "a backup",
    );
    kubectl_apply(
        &env,
        NS,
        &backup_yaml("watch-bad", SENTINEL, "backup-nowhere"),
        "a backup",
    );
    // Kill the Sentinel cluster's primary: the Sentinels fail it over.
    let old = primary(&env.vkc(SENTINEL).await);
    env.kill(&old).await;
    env.wait_primary_moved(SENTINEL, &old, Duration::from_secs(60))
        .await;
    until(
        &prom,
        &env,
        120,
        "LogbookFailoverHappened and LogbookBackupFailed",
        || {
            let firing = prom.firing();
            let fired = |name: &str| {
                firing.iter().any(|(n, l)| {
                    n == name && l.get("valkeycluster").map(String::as_str) == Some(SENTINEL)
                })
            };
            fired("LogbookFailoverHappened") && fired("LogbookBackupFailed")
        },
    )
    .await;
    until(&prom, &env, 120, "a completed backup scraped", || {
        !prom
            .query("logbook_backup_last_success_timestamp_seconds{valkeycluster=\"watch\"}")
            .is_empty()
    })
    .await;

    // Every panel of the dashboard has data.
    let svg = std::env::var_os("LOGBOOK_DASHBOARD_SVG")
        .map_or_else(|| workdir.path().join("dashboard.svg"), PathBuf::from);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let out = Command::new("python3")
            .arg(root().join("scripts/dashboard_plot.py"))
            .args([
                "--prometheus",
                &prom.url(),
                "--dashboard",
                root()
                    .join("charts/logbook/dashboards/logbook.json")
                    .to_str()
                    .unwrap(),
                "--start",
                &began.to_string(),
                "--end",
                &now.to_string(),
                "--out",
                svg.to_str().unwrap(),
                "--require-data",
            ])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            break said;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dashboard panels without data:\n{said}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    println!("{last}");

    // A ServiceMonitor asked for where the API server does not serve the
    // kind: refused, in the status and an Event, and no pod rolled.
    let before: Vec<String> = env
        .pods(TLS)
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    env.patch(
        TLS,
        serde_json::json!({"spec": {"metrics": {"serviceMonitor": true}}}),
    )
    .await;
    env.wait_status(
        TLS,
        Duration::from_secs(60),
        "the ServiceMonitor refused",
        |vkc| {
            vkc.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.status == "False"
                        && c.message.contains("ServiceMonitor")
                        && c.message.contains("monitoring.coreos.com")
                })
            })
        },
    )
    .await;
    let said = warning_notes(&env.api())
        .await
        .iter()
        .any(|n| n.contains("ServiceMonitor"));
    assert!(said, "no Warning Event names the ServiceMonitor");
    let after: Vec<String> = env
        .pods(TLS)
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(before, after, "a refused spec rolled pods");
}
