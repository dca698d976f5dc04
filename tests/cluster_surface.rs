//! What a Valkey Cluster shows its users, end to end on localkube with
//! real `valkey-server` pods: `logbook operator --metrics-addr` as a child
//! process (ConfigMap journal, so the plugin can read it) forms a 3 × 1
//! cluster; then the real `kubectl` with the built `kubectl-valkey` on
//! `PATH` must show the three shards, 16384 slots and the primaries the
//! published status names, and the scrape must carry the per-shard
//! families (a shard named by its first slot) with the real values, pass
//! `promtool check metrics`, and scraping a converged cluster must append
//! nothing to its journal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logbook_crds::ValkeyCluster;
use operator_common::*;

const NAME: &str = "shop";

const YAML: &str = "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: shop
spec:
  topology: Cluster
  shards: 3
  replicasPerShard: 1
  clusterNodeTimeoutMilliseconds: 5000
  storage:
    size: 1Gi
";

/// Each shard the even split makes: first slot, slots, range.
const SHARDS: [(&str, u32, &str); 3] = [
    ("0", 5462, "0-5461"),
    ("5462", 5461, "5462-10922"),
    ("10923", 5461, "10923-16383"),
];

fn cluster_ready(vkc: &ValkeyCluster) -> bool {
    is_ready(vkc, 6)
        && vkc.status.as_ref().is_some_and(|s| {
            s.shards.len() == 3 && s.shards.iter().all(|sh| sh.replicas.len() == 1)
        })
}

/// The published primary of the shard whose slots start at `first`.
fn primary_of(vkc: &ValkeyCluster, first: &str) -> String {
    vkc.status
        .as_ref()
        .unwrap()
        .shards
        .iter()
        .find(|s| s.slots.first().map(|r| r.start.to_string()).as_deref() == Some(first))
        .and_then(|s| s.primary.clone())
        .unwrap_or_else(|| panic!("no shard starts at slot {first}: {:?}", vkc.status))
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The body of `GET /metrics` on `addr` (Prometheus text), if it answers.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nhost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_owned())
}

/// Series → value of a scrape.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn shard_series(family: &str, shard: &str) -> String {
    format!("{family}{{namespace=\"{NS}\",valkeycluster=\"{NAME}\",shard=\"{shard}\"}}")
}

fn cluster_series(family: &str) -> String {
    format!("{family}{{namespace=\"{NS}\",valkeycluster=\"{NAME}\"}}")
}

/// Every per-shard and cluster value a converged 3 × 1 cluster shows.
fn expected() -> Vec<(String, f64)> {
    let mut want = vec![
        (cluster_series("logbook_cluster_formed"), 1.0),
        (cluster_series("logbook_cluster_slots_owned"), 16_384.0),
        (cluster_series("logbook_cluster_state_ok"), 1.0),
        (cluster_series("logbook_cluster_shards_desired"), 3.0),
        (cluster_series("logbook_cluster_ready"), 1.0),
    ];
    for (first, slots, _) in SHARDS {
        want.push((shard_series("logbook_shard_slots", first), f64::from(slots)));
        want.push((shard_series("logbook_shard_served", first), 1.0));
        want.push((shard_series("logbook_shard_replicas", first), 1.0));
        want.push((shard_series("logbook_shard_replicas_in_sync", first), 1.0));
    }
    want
}

/// `kubectl valkey <args>` through the real kubectl, the plugin on `PATH`.
fn kubectl_valkey(bin: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let kubectl = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl");
    assert!(kubectl.exists(), "kubectl not found: run `make setup`");
    let mut path = std::ffi::OsString::from(bin);
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    let out = Command::new(kubectl)
        .arg("valkey")
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", bin)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "$ kubectl valkey {}\n{stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "exit {}", out.status);
    stdout
}

async fn kv(bin: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let (bin, kubeconfig): (PathBuf, PathBuf) = (bin.to_owned(), kubeconfig.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl_valkey(&bin, &kubeconfig, &args)
    })
    .await
    .unwrap()
}

fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_shows_its_shards_in_kubectl_valkey_status_and_in_the_metrics() {
    let env = Env::start_without_operator("surface").await;
    let workdir = tempfile::Builder::new()
        .prefix("logbook-surface-")
        .tempdir()
        .unwrap();
    let operator_kubeconfig = workdir.path().join("operator-kubeconfig");
    env.write_kubeconfig_to(&operator_kubeconfig);
    let metrics = free_addr();
    let metrics_arg = metrics.to_string();
    let operator = OperatorProcess::start_with(
        &env,
        &operator_kubeconfig,
        workdir.path(),
        "surface-1",
        None,
        &["--metrics-addr", &metrics_arg, "--log-level", "info"],
    );
    env.apply_yaml(YAML).await;
    let started = Instant::now();
    let vkc = env
        .wait_status(
            NAME,
            Duration::from_secs(60),
            "3 shards of 1 primary and 1 replica, Ready",
            cluster_ready,
        )
        .await;
    eprintln!("Ready after {:?}", started.elapsed());
    let primaries: Vec<String> = SHARDS
        .iter()
        .map(|(first, _, _)| primary_of(&vkc, first))
        .collect();

    // The scrape: every shard by its first slot, with real values.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = scrape(metrics).unwrap_or_default();
        let got = samples(&body);
        if expected().iter().all(|(s, v)| got.get(s) == Some(v)) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the shard series never showed {:?}\n--- last scrape ---\n{body}\n{}",
            expected()
                .into_iter()
                .filter(|(s, v)| got.get(s) != Some(v))
                .collect::<Vec<_>>(),
            env.dump(NAME).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let shard_lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("logbook_shard_slots{"))
        .collect();
    assert_eq!(
        shard_lines.len(),
        3,
        "one series per shard: {shard_lines:?}"
    );
    // No failover happened: the counters exist, at 0.
    let got = samples(&body);
    for kind in ["automatic", "observed"] {
        let series = format!(
            "logbook_failovers_total{{namespace=\"{NS}\",valkeycluster=\"{NAME}\",kind=\"{kind}\"}}"
        );
        assert_eq!(got.get(&series), Some(&0.0), "{series}");
    }
    promtool_check(&body);

    // The plugin through the real kubectl.
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_kubectl-valkey"),
        bin.path().join("kubectl-valkey"),
    )
    .unwrap();
    let kubeconfig = env.write_kubeconfig();
    let table = kv(bin.path(), &kubeconfig, &["status"]).await;
    let line = table
        .lines()
        .find(|l| l.starts_with("shop "))
        .unwrap_or_else(|| panic!("no line for shop:\n{table}"));
    let mut cells = vec!["Cluster", "Ready", "6/6", "3 shards: "];
    cells.extend(primaries.iter().map(String::as_str));
    for cell in cells {
        assert!(line.contains(cell), "{line:?} lacks {cell:?}");
    }

    // The detail reads the journal's committed head, which can trail the
    // seq the status was published at by a group commit: read again until
    // it reaches that seq.
    let published = journal_seq(&env.vkc(NAME).await);
    let deadline = Instant::now() + Duration::from_secs(15);
    let detail = loop {
        let detail = kv(bin.path(), &kubeconfig, &["status", NAME, "-n", NS]).await;
        let head: i64 = detail
            .lines()
            .find_map(|l| l.strip_prefix("Journal head:  seq "))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if head >= published {
            break detail;
        }
        assert!(
            Instant::now() < deadline,
            "the journal's head stayed at {head}, the status was published at {published}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        detail.contains("Shards:        3 of 3 wanted, 16384 of 16384 slots owned"),
        "{detail}"
    );
    assert!(
        detail.contains(
            "3/3 served, 16384 of 16384 slots owned, 3 of 3 replicas in sync, cluster_state ok"
        ),
        "{detail}"
    );
    for ((first, slots, range), primary) in SHARDS.iter().zip(&primaries) {
        let row = detail
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{first} ")))
            .unwrap_or_else(|| panic!("no row for shard {first}:\n{detail}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            &words[..5],
            &[
                *first,
                primary.as_str(),
                "served",
                *range,
                &slots.to_string()
            ],
            "{row}"
        );
        assert!(row.ends_with("(in sync)"), "{row}");
    }
    // Every pod's row shows a role, none is fenced.
    for i in 0..6 {
        let pod = format!("{NAME}-{i}");
        let row = detail
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{pod} ")))
            .unwrap_or_else(|| panic!("no row for {pod}:\n{detail}"));
        let role = row.split_whitespace().nth(1).unwrap();
        let want = if primaries.contains(&pod) {
            "primary"
        } else {
            "replica"
        };
        assert_eq!(role, want, "{row}");
    }

    // Scraping and reading a converged cluster appends nothing.
    let seq = journal_seq(&env.vkc(NAME).await);
    for _ in 0..10 {
        assert!(scrape(metrics).is_some());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    kv(bin.path(), &kubeconfig, &["status", NAME]).await;
    assert_eq!(
        journal_seq(&env.vkc(NAME).await),
        seq,
        "a converged cluster appended events while scraped and read"
    );

    operator.stop(&env, NAME, false).await;
    env.finish().await;
}
