//! `logbook-bench scale`: what a real `logbook operator` process costs at
//! a thousand clusters, against localkube's API alone (no kubelet, no
//! workload controllers: no pod ever runs, so nothing is probed).
//!
//! It measures, for N Standalone ValkeyClusters created at once:
//!
//! - **first decisions carried out**: the time from the first create until
//!   every cluster's StatefulSet exists (each cluster's journal opened, the
//!   spec recorded, `ApplyResources` decided, journaled and applied);
//! - **memory**: the operator's `VmRSS` once it has settled, and `VmHWM`;
//! - **API requests per minute** while nothing changes, by method, from
//!   localkube's own request log (every read, write and watch opened);
//! - **restart to takeover**: the operator killed (`SIGKILL`) and started
//!   again: the time until it has taken every cluster's journal over
//!   (loaded the projection, appended `OperatorStarted`), counted from its
//!   log; then its memory again.
//!
//! What it leaves out, on purpose: the probes (a thousand real
//! `valkey-server` pods need a kubelet, and this machine's two cores go to
//! localkube's workload controllers long before the operator: see
//! docs/benchmarks.md); their cost per cluster is the idle bench's.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::api::{ListParams, PostParams};
use logbook_crds::ValkeyCluster;

use super::idle::{Child, IdleConfig, standalone, status_kib};
use super::{BenchError, harness};

/// The operator's log line for each journal taken over.
const TAKEOVER_LINE: &str = "taking the journal over";
/// Clusters created at once.
const CREATE_CONCURRENCY: usize = 16;

/// What it measured.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    /// Clusters created.
    pub clusters: usize,
    /// StatefulSets applied by the deadline.
    pub applied: usize,
    /// Time from the first create until every StatefulSet existed.
    pub applied_after: Duration,
    /// `VmRSS` after settling (mean over the window), KiB.
    pub rss_kib: u64,
    /// `VmHWM` at the end of the window, KiB.
    pub hwm_kib: u64,
    /// Requests per minute over the window.
    pub requests_per_minute: f64,
    /// The window's requests by method.
    pub by_method: Vec<(String, u64)>,
    /// Journals taken over after the restart, by the deadline.
    pub taken_over: usize,
    /// Time from the restarted process's start until it had taken every
    /// journal over.
    pub takeover_after: Duration,
    /// `VmRSS` of the restarted operator after settling, KiB.
    pub restarted_rss_kib: u64,
}

/// Runs the bench.
///
/// # Errors
/// [`BenchError`] when localkube, the operator or the API calls fail.
pub async fn run_scale(config: IdleConfig) -> Result<ScaleReport, BenchError> {
    let dir = tempfile::Builder::new()
        .prefix("logbook-bench-scale-")
        .tempdir()
        .map_err(|source| BenchError::Io {
            what: "a work directory".into(),
            source,
        })?;
    let server = logbook_localkube::LocalKube::start(logbook_localkube::Config::default())
        .await
        .map_err(|e| harness("localkube")(e.to_string()))?;
    let result = measure(&server, dir.path(), &config).await;
    server.shutdown().await;
    if std::env::var_os("LOGBOOK_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("kept {} (operator-1.log, operator-2.log)", kept.display());
    }
    result
}

fn spawn_operator(binary: &Path, kubeconfig: &Path, log: &Path) -> Result<Child, BenchError> {
    let file = std::fs::File::create(log).map_err(|source| BenchError::Io {
        what: format!("creating {}", log.display()),
        source,
    })?;
    let child = std::process::Command::new(binary)
        .args([
            "operator",
            "--journal",
            "configmap",
            "--instance",
            "bench-scale",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("RUST_LOG", "warn,logbook::operator::runtime=info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .map_err(|source| BenchError::Io {
            what: format!("starting {}", binary.display()),
            source,
        })?;
    Ok(Child(child))
}

/// Lines of `log` that say a journal was taken over.
fn takeovers(log: &Path) -> usize {
    std::fs::File::open(log).map_or(0, |f| {
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(TAKEOVER_LINE))
            .count()
    })
}

/// Mean `VmRSS` over `window`, sampled each second.
async fn mean_rss(pid: u32, window: Duration) -> u64 {
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < window {
        samples.extend(status_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let n = u64::try_from(samples.len()).unwrap_or(1).max(1);
    samples.iter().sum::<u64>() / n
}

async fn measure(
    server: &logbook_localkube::RunningServer,
    dir: &Path,
    config: &IdleConfig,
) -> Result<ScaleReport, BenchError> {
    let (kubeconfig, client) = super::api_client(server, dir).await?;
    let first = spawn_operator(&config.binary, &kubeconfig, &dir.join("operator-1.log"))?;
    let pid = first.0.id();

    let vkcs: Api<ValkeyCluster> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let mut creates = futures::stream::iter(0..config.clusters)
        .map(|i| {
            let vkcs = vkcs.clone();
            async move {
                let vkc = standalone(&format!("scale-{i}"))?;
                vkcs.create(&PostParams::default(), &vkc)
                    .await
                    .map_err(|e| harness("creating a ValkeyCluster")(e.to_string()))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY);
    while let Some(created) = creates.next().await {
        created?;
    }
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let deadline = Duration::from_secs(120) + Duration::from_millis(300) * config.clusters as u32;
    let mut applied;
    loop {
        applied = sets
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| harness("listing StatefulSets")(e.to_string()))?
            .items
            .len();
        if applied >= config.clusters || started.elapsed() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let applied_after = started.elapsed();
    eprintln!(
        "{applied} of {} StatefulSets applied after {applied_after:?}",
        config.clusters
    );

    tokio::time::sleep(config.settle).await;
    let requests = server.requests();
    let mark = requests.total();
    let window = Instant::now();
    let rss_kib = mean_rss(pid, config.sample).await;
    let sampled = window.elapsed();
    let hwm_kib = status_kib(pid, "VmHWM:").unwrap_or(0);
    let mut by_method: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let window_requests = requests.since(mark);
    for r in &window_requests {
        *by_method.entry(r.method.clone()).or_default() += 1;
    }
    let requests_per_minute = window_requests.len() as f64 * 60.0 / sampled.as_secs_f64().max(1.0);
    drop(first);

    // The restart: a new process takes every journal over.
    let log = dir.join("operator-2.log");
    let restarted_at = Instant::now();
    let second = spawn_operator(&config.binary, &kubeconfig, &log)?;
    let takeover_deadline =
        Duration::from_secs(60) + Duration::from_millis(300) * config.clusters as u32;
    let mut taken_over;
    loop {
        taken_over = takeovers(&log);
        if taken_over >= config.clusters || restarted_at.elapsed() > takeover_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover_after = restarted_at.elapsed();
    eprintln!(
        "restarted: {taken_over} of {} journals taken over after {takeover_after:?}",
        config.clusters
    );
    tokio::time::sleep(config.settle).await;
    let restarted_rss_kib = mean_rss(second.0.id(), Duration::from_secs(5)).await;
    drop(second);
    Ok(ScaleReport {
        clusters: config.clusters,
        applied,
        applied_after,
        rss_kib,
        hwm_kib,
        requests_per_minute,
        by_method: by_method.into_iter().collect(),
        taken_over,
        takeover_after,
        restarted_rss_kib,
    })
}

/// The report as markdown.
pub fn render(r: &ScaleReport) -> String {
    let methods: Vec<String> = r
        .by_method
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    let mib = |kib: u64| kib as f64 / 1024.0;
    format!(
        "| clusters | StatefulSets applied (first decisions carried out) | operator VmRSS settled (VmHWM) | API requests per minute settled (by method, whole window) | restart: journals taken over | restarted VmRSS |\n|---|---|---|---|---|---|\n| {} | {} in {:.1} s | {:.1} MiB ({:.1} MiB) | {:.0} ({}) | {} in {:.1} s | {:.1} MiB |\n",
        r.clusters,
        r.applied,
        r.applied_after.as_secs_f64(),
        mib(r.rss_kib),
        mib(r.hwm_kib),
        r.requests_per_minute,
        if methods.is_empty() {
            "none".to_owned()
        } else {
            methods.join(", ")
        },
        r.taken_over,
        r.takeover_after.as_secs_f64(),
        mib(r.restarted_rss_kib),
    )
}
