//! `/metrics` end to end: `logbook operator --metrics-addr` as a child
//! process on localkube with real `valkey-server` pods. A Replication
//! cluster is created and its primary killed; the scrape must then show
//! the decision, the automatic failover (counter and histogram), the lag
//! of each replica pod, the journal counters and head, leadership and
//! readiness, and pass `promtool check metrics` (which must be installed:
//! the test fails without it). Nothing is written outside temporary
//! directories.

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
use std::process::{Command, Stdio};
use std::time::Duration;

use operator_common::*;

const NAME: &str = "demo";

/// A free local port (bound, then released for the operator to take).
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `GET path` on `addr`: the status line and the body.
fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Option<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let accept = accept.map_or_else(String::new, |a| format!("accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{accept}\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// The sample lines of a scrape: series (name and labels) → value.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of one series, when present.
fn value(scrape: &BTreeMap<String, f64>, series: &str) -> Option<f64> {
    scrape.get(series).copied()
}

/// The series of `family` whose labels contain every `labels` pair.
fn matching<'a>(
    scrape: &'a BTreeMap<String, f64>,
    family: &str,
    labels: &[&str],
) -> Vec<(&'a String, f64)> {
    scrape
        .iter()
        .filter(|(series, _)| {
            series.starts_with(&format!("{family}{{")) && labels.iter().all(|l| series.contains(l))
        })
        .map(|(s, v)| (s, *v))
        .collect()
}

/// `{namespace="default",valkeycluster="demo"` (the labels every cluster
/// series starts with), followed by `rest`.
fn cluster(rest: &str) -> String {
    format!("{{namespace=\"{NS}\",valkeycluster=\"{NAME}\"{rest}}}")
}

/// Runs `promtool check metrics` on `scrape`; panics with its complaints.
fn promtool_check(scrape: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is required (Debian's prometheus package: scripts/setup.sh installs it, or apt-get install -y --no-install-recommends prometheus)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- scrape ---\n{scrape}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scrapes until `check` holds on the samples; returns that scrape's body.
async fn scrape_until(
    env: &Env,
    addr: SocketAddr,
    what: &str,
    check: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((status, body)) = get(addr, "/metrics", None)
            && status.contains(" 200 ")
            && check(&samples(&body))
        {
            return body;
        }
        if std::time::Instant::now() >= deadline {
            let last = get(addr, "/metrics", None)
                .map(|(_, b)| b)
                .unwrap_or_default();
            panic!(
                "timed out waiting for {what}\n--- last scrape ---\n{last}\n{}",
                env.dump(NAME).await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_show_a_failover_and_pass_promtool() {
    let env = Env::start_without_operator("metrics").await;
    let workdir = tempfile::Builder::new()
        .prefix("logbook-metrics-")
        .tempdir()
        .unwrap();
    let kubeconfig = workdir.path().join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig);
    let (metrics, health) = (free_addr(), free_addr());
    let (metrics_arg, health_arg) = (metrics.to_string(), health.to_string());
    let operator = OperatorProcess::start_with(
        &env,
        &kubeconfig,
        workdir.path(),
        "metrics-1",
        None,
        &[
            "--metrics-addr",
            &metrics_arg,
            "--health-addr",
            &health_arg,
            "--log-level",
            "info",
        ],
    );

    // Each address serves its own endpoints only.
    let leading = scrape_until(&env, metrics, "logbook_leader 1", |s| {
        value(s, "logbook_leader") == Some(1.0)
    })
    .await;
    assert!(leading.contains(&format!(
        "logbook_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(value(&samples(&leading), "logbook_leader_transitions_total") >= Some(1.0));
    let (status, _) = get(health, "/healthz", None).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    let (status, _) = get(health, "/metrics", None).unwrap();
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = get(metrics, "/healthz", None).unwrap();
    assert!(status.contains(" 404 "), "{status}");

    env.apply_yaml(&replication_yaml(NAME, 3)).await;
    let vkc = env.wait_ready(NAME, 3, Duration::from_secs(60)).await;
    let old = primary(&vkc);
    let stream = env.stream(NAME).await;
    let ready = scrape_until(&env, metrics, "the Ready cluster's series", |s| {
        value(s, &format!("logbook_cluster_ready{}", cluster(""))) == Some(1.0)
            && value(
                s,
                &format!("logbook_cluster_phase{}", cluster(",phase=\"Ready\"")),
            ) == Some(1.0)
            && matching(
                s,
                "logbook_replication_lag_bytes",
                &["valkeycluster=\"demo\""],
            )
            .len()
                == 2
    })
    .await;
    // No secret in a metric or a label: neither the cluster's password nor
    // an internal user's.
    let password = env.password("demo").await;
    assert!(!ready.contains(&password), "the password in /metrics");
    let internal: kube::Api<k8s_openapi::api::core::v1::Secret> = env.api();
    let internal = internal.get("demo-internal").await.unwrap();
    for (key, value) in internal.data.unwrap() {
        // The fingerprint key is bytes: looked for as hex.
        let value = String::from_utf8(value.0.clone())
            .unwrap_or_else(|_| value.0.iter().map(|b| format!("{b:02x}")).collect());
        assert!(
            !ready.contains(&value),
            "internal password {key} in /metrics"
        );
    }
    let s = samples(&ready);
    assert_eq!(
        value(&s, &format!("logbook_journal_healthy{}", cluster(""))),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            &format!("logbook_primary_unhealthy_seconds{}", cluster(""))
        ),
        Some(0.0)
    );
    // Exactly one phase is set.
    let phases = matching(&s, "logbook_cluster_phase", &["valkeycluster=\"demo\""]);
    assert_eq!(phases.len(), 11, "{phases:?}");
    assert_eq!(phases.iter().filter(|(_, v)| *v == 1.0).count(), 1);
    // The lag series name the replica pods, never the primary nor an IP.
    for (series, _) in matching(
        &s,
        "logbook_replication_lag_bytes",
        &["valkeycluster=\"demo\""],
    ) {
        assert!(!series.contains(&format!("pod=\"{old}\"")), "{series}");
        assert!(series.contains("pod=\"demo-"), "{series}");
    }
    for pod in env.pods(NAME).await {
        let ip = pod.status.and_then(|s| s.pod_ip).unwrap();
        assert!(
            !ready.contains(&ip),
            "pod address {ip} in the scrape:\n{ready}"
        );
    }

    // Kill the primary's process: the operator fails over.
    env.kill(&old).await;
    let moved = env
        .wait_primary_moved(NAME, &old, Duration::from_secs(30))
        .await;
    let new = primary(&moved);
    env.wait_ready(NAME, 3, Duration::from_secs(60)).await;
    let after = scrape_until(&env, metrics, "the failover's series", |s| {
        value(
            s,
            &format!("logbook_failovers_total{}", cluster(",kind=\"automatic\"")),
        ) >= Some(1.0)
            && value(s, &format!("logbook_cluster_ready{}", cluster(""))) == Some(1.0)
            && matching(
                s,
                "logbook_replication_lag_bytes",
                &["valkeycluster=\"demo\""],
            )
            .iter()
            .filter(|(series, _)| !series.contains(&format!("pod=\"{new}\"")))
            .count()
                == 2
    })
    .await;
    let s = samples(&after);
    let promotions = matching(
        &s,
        "logbook_decisions_total",
        &["valkeycluster=\"demo\"", "intent=\"PromoteReplica\""],
    );
    assert!(
        !promotions.is_empty(),
        "no PromoteReplica decision:\n{after}"
    );
    assert!(
        value(
            &s,
            &format!(
                "logbook_intent_outcomes_total{}",
                cluster(",intent=\"PromoteReplica\",outcome=\"succeeded\"")
            )
        ) >= Some(1.0),
        "{after}"
    );
    let automatic = cluster(",kind=\"automatic\"");
    let count = value(
        &s,
        &format!("logbook_failover_duration_seconds_count{automatic}"),
    )
    .expect("the failover histogram");
    assert!(count >= 1.0, "{after}");
    let sum = value(
        &s,
        &format!("logbook_failover_duration_seconds_sum{automatic}"),
    )
    .unwrap();
    assert!(sum > 0.0 && sum < 120.0 * count, "failover took {sum} s");
    let inf = value(
        &s,
        &format!(
            "logbook_failover_duration_seconds_bucket{{le=\"+Inf\",namespace=\"{NS}\",valkeycluster=\"{NAME}\",kind=\"automatic\"}}"
        ),
    );
    assert_eq!(inf, Some(count), "{after}");
    for (series, lag) in matching(
        &s,
        "logbook_replication_lag_bytes",
        &["valkeycluster=\"demo\""],
    ) {
        assert!(!series.contains(&format!("pod=\"{new}\"")), "{series}");
        assert!(lag >= 0.0);
    }
    // Journal counters: every event appended and the head the store has.
    let appends = value(&s, &format!("logbook_journal_appends_total{}", cluster(""))).unwrap();
    let bytes = value(
        &s,
        &format!("logbook_journal_appended_bytes_total{}", cluster("")),
    )
    .unwrap();
    assert!(
        appends > 10.0 && bytes > appends,
        "{appends} events, {bytes} bytes"
    );
    let writes = value(
        &s,
        &format!(
            "logbook_configmap_writes_total{}",
            cluster(",result=\"ok\"")
        ),
    )
    .unwrap();
    assert!(
        writes >= 1.0 && writes <= appends,
        "{writes} ConfigMap writes"
    );
    let head = env.config_map_journal();
    let stored = logbook_journal::JournalStore::head(&head, &stream)
        .await
        .unwrap()
        .seq;
    scrape_until(&env, metrics, "the head seq the store has", |s| {
        let stored = as_sample(stored);
        value(s, &format!("logbook_journal_head_seq{}", cluster(""))) >= Some(stored)
    })
    .await;
    assert_eq!(value(&s, "logbook_leader"), Some(1.0));
    assert!(value(&s, "logbook_reconciles_total{result=\"ok\"}") >= Some(1.0));

    eprintln!("--- scrape after the failover ---\n{after}");
    // The text format passes promtool; Prometheus gets OpenMetrics.
    promtool_check(&after);
    let (_, om) = get(
        metrics,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .unwrap();
    assert_eq!(om.lines().last(), Some("# EOF"));
    assert!(om.contains("# TYPE logbook_failovers counter"));

    // A second instance follows: it exports no cluster series until the
    // first stops and it takes over.
    // Its one address serves its health too: a standby is ready (a
    // Deployment's rollout and PDB count it), while not leading.
    let standby = free_addr();
    let standby_arg = standby.to_string();
    let second = OperatorProcess::start_with(
        &env,
        &kubeconfig,
        workdir.path(),
        "metrics-2",
        None,
        &[
            "--metrics-addr",
            &standby_arg,
            "--health-addr",
            &standby_arg,
        ],
    );
    let following = scrape_until(&env, standby, "a follower's scrape", |s| {
        value(s, "logbook_leader") == Some(0.0)
    })
    .await;
    let mut ready = None;
    for _ in 0..50 {
        ready = get(standby, "/readyz", None);
        if ready
            .as_ref()
            .is_some_and(|(status, _)| status.contains(" 200 "))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = ready.expect("the standby answers /readyz");
    assert!(
        status.contains(" 200 "),
        "a standby is ready: {status}: {body}"
    );
    assert!(body.contains("standing by"), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, following_later) = get(standby, "/metrics", None).unwrap();
    for body in [&following, &following_later] {
        assert!(
            !body.contains("valkeycluster=\"demo\""),
            "a follower exports the cluster's series:\n{body}"
        );
    }
    operator.stop(&env, NAME, false).await;
    scrape_until(&env, standby, "the new leader's cluster series", |s| {
        value(s, "logbook_leader") == Some(1.0)
            && value(s, &format!("logbook_cluster_ready{}", cluster(""))) == Some(1.0)
            && value(s, &format!("logbook_journal_head_seq{}", cluster(""))) > Some(0.0)
    })
    .await;
    second.stop(&env, NAME, false).await;
    env.finish().await;
}

/// A seq as a sample value.
fn as_sample(seq: u64) -> f64 {
    f64::from(u32::try_from(seq).unwrap())
}
