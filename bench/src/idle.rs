//! `logbook-bench idle`: the operator's resident memory with many idle
//! clusters, and what it writes while nothing changes.
//!
//! A real `logbook operator` process (journals in ConfigMaps) runs against
//! an in-process localkube with a process kubelet; `clusters` Standalone
//! ValkeyClusters are created (one real `valkey-server` each) and, once
//! every one is Ready and the operator has been idle for `settle`, its
//! `VmRSS` is sampled once a second for `sample` and its `VmHWM` read, and
//! every API write in that window is counted (a converged operator writes
//! nothing).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::watcher;
use logbook_crds::ValkeyCluster;

use super::{BenchError, harness};

/// What to run.
/// What an operator bench runs (`idle`, `scale`): the operator binary,
/// how many clusters, and how long to settle and sample.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// The `logbook` binary to run as the operator.
    pub binary: PathBuf,
    /// Standalone clusters to create.
    pub clusters: usize,
    /// Idle time before sampling.
    pub settle: Duration,
    /// Sampling window.
    pub sample: Duration,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// Clusters created.
    pub clusters: usize,
    /// Clusters Ready when sampling started.
    pub ready: usize,
    /// Time until every cluster was Ready.
    pub ready_after: Duration,
    /// Largest `VmRSS` sampled while idle, in KiB.
    pub rss_max_kib: u64,
    /// Mean `VmRSS` sampled while idle, in KiB.
    pub rss_mean_kib: u64,
    /// `VmHWM` (peak resident, including start-up) at the end, in KiB.
    pub hwm_kib: u64,
    /// `RssAnon` at the end (heap, stacks), in KiB.
    pub anon_kib: u64,
    /// `RssFile` at the end (the executable's pages touched), in KiB.
    pub file_kib: u64,
    /// CPU time the operator used while sampled, as a share of one core
    /// (`utime + stime` from `/proc/<pid>/stat`).
    pub idle_cpu: Option<f64>,
    /// ValkeyCluster and journal ConfigMap writes seen while idle.
    pub idle_writes: u64,
    /// Every API request the operator sent while idle (reads, writes and
    /// watches opened), per minute, from the API server's own log.
    pub idle_requests_per_minute: f64,
    /// The same requests by method, e.g. `GET 120`.
    pub idle_requests_by_method: Vec<(String, u64)>,
}

/// A `/proc/<pid>/status` field in KiB.
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `utime + stime` of a process, in seconds (`/proc/<pid>/stat`).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields count
    // from after its closing one (state is field 3, utime 14, stime 15).
    let rest = stat.get(stat.rfind(')')?.checked_add(2)?..)?;
    let mut fields = rest.split(' ').skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)?;
    #[allow(clippy::cast_precision_loss)] // clock ticks per second
    Some((utime + stime) / tick as f64)
}

/// Kills the operator process when dropped.
/// A child process killed (and reaped) when dropped.
pub(crate) struct Child(pub(crate) std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn standalone(name: &str) -> Result<ValkeyCluster, BenchError> {
    let yaml = format!(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: {name}\nspec:\n  topology: Standalone\n  storage:\n    size: 1Gi\n    persistence: None\n"
    );
    serde_yaml::from_str(&yaml).map_err(|e| harness("a ValkeyCluster")(e.to_string()))
}

fn ready(vkc: &ValkeyCluster) -> bool {
    vkc.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Runs the measurement.
///
/// # Errors
/// Something failed to start, or the clusters were not Ready in time.
pub async fn run_idle(config: IdleConfig) -> Result<IdleReport, BenchError> {
    let (dir, server) = super::start_local_kube("logbook-bench-idle-").await?;
    let result = measure(&server, dir.path(), &config).await;
    super::stop_local_kube(dir.path(), server).await;
    if std::env::var_os("LOGBOOK_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("kept {} (operator.log)", kept.display());
    }
    result
}

async fn measure(
    server: &logbook_localkube::RunningServer,
    dir: &Path,
    config: &IdleConfig,
) -> Result<IdleReport, BenchError> {
    let (kubeconfig, client) = super::api_client(server, dir).await?;
    let log = std::fs::File::create(dir.join("operator.log")).map_err(|source| BenchError::Io {
        what: "the operator log".into(),
        source,
    })?;
    let child = std::process::Command::new(&config.binary)
        .args([
            "operator",
            "--journal",
            "configmap",
            "--instance",
            "bench-idle",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|source| BenchError::Io {
            what: format!("starting {}", config.binary.display()),
            source,
        })?;
    let child = Child(child);
    let pid = child.0.id();

    let vkcs: Api<ValkeyCluster> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let mut ready_count;
    for i in 0..config.clusters {
        vkcs.create(&PostParams::default(), &standalone(&format!("idle-{i}"))?)
            .await
            .map_err(|e| harness("creating a ValkeyCluster")(e.to_string()))?;
    }
    let deadline = Duration::from_secs(60) + Duration::from_secs(3) * config.clusters as u32;
    loop {
        let list = vkcs
            .list(&ListParams::default())
            .await
            .map_err(|e| harness("listing ValkeyClusters")(e.to_string()))?;
        let n = list.items.iter().filter(|v| ready(v)).count();
        ready_count = n;
        if n >= config.clusters {
            break;
        }
        if started.elapsed() > deadline {
            // Measure anyway, and say which were not Ready and why.
            for v in list.items.iter().filter(|v| !ready(v)) {
                let why = v.status.as_ref().and_then(|s| {
                    s.conditions
                        .iter()
                        .find(|c| c.type_ == "Ready")
                        .map(|c| format!("{}: {}", c.reason, c.message))
                });
                let name = v.metadata.name.as_deref().unwrap_or("?");
                eprintln!(
                    "not Ready after {deadline:?}: {name} ({})",
                    why.as_deref().unwrap_or("no status")
                );
                // What localkube holds for it (gone once the bench ends).
                let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
                    Api::namespaced(client.clone(), "default");
                if let Ok(Some(set)) = sets.get_opt(name).await {
                    eprintln!("  statefulset {name}: status {:?}", set.status);
                } else {
                    eprintln!("  statefulset {name}: none");
                }
                let pods: Api<k8s_openapi::api::core::v1::Pod> =
                    Api::namespaced(client.clone(), "default");
                let selector = format!("app.kubernetes.io/instance={name}");
                if let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await {
                    if list.items.is_empty() {
                        eprintln!("  no pod");
                    }
                    for p in list.items {
                        eprintln!(
                            "  pod {}: node {:?}, status {:?}",
                            p.metadata.name.unwrap_or_default(),
                            p.spec.and_then(|s| s.node_name),
                            p.status
                        );
                    }
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ready_after = started.elapsed();
    tokio::time::sleep(config.settle).await;

    // Count writes while idle: ValkeyClusters (status) and journal objects.
    let writes = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    {
        let counted = writes.clone();
        let api = vkcs.clone();
        watchers.push(tokio::spawn(async move {
            let events = watcher::watcher(api, watcher::Config::default());
            futures::pin_mut!(events);
            while let Ok(Some(event)) = events.try_next().await {
                if matches!(event, watcher::Event::Apply(_)) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        let counted = writes.clone();
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        watchers.push(tokio::spawn(async move {
            let events = watcher::watcher(
                maps,
                watcher::Config::default().labels(logbook::journal_store::layout::JOURNAL_LABEL),
            );
            futures::pin_mut!(events);
            while let Ok(Some(event)) = events.try_next().await {
                if matches!(event, watcher::Event::Apply(_)) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = writes.load(Ordering::Relaxed);
    let requests = server.requests();
    let requests_mark = requests.total();
    let mut samples = Vec::new();
    let cpu_start = cpu_seconds(pid);
    let sampling = Instant::now();
    while sampling.elapsed() < config.sample {
        if let Some(rss) = status_kib(pid, "VmRSS:") {
            samples.push(rss);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let idle_writes = writes.load(Ordering::Relaxed).saturating_sub(baseline);
    let sampled = sampling.elapsed();
    let idle_cpu = cpu_start
        .zip(cpu_seconds(pid))
        .map(|(a, b)| (b - a) / sampled.as_secs_f64().max(1.0));
    let idle_requests = requests.total().saturating_sub(requests_mark);
    let mut by_method: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in requests.since(requests_mark) {
        *by_method.entry(r.method).or_default() += 1;
    }
    for w in watchers {
        w.abort();
    }
    let hwm_kib = status_kib(pid, "VmHWM:").unwrap_or(0);
    let anon_kib = status_kib(pid, "RssAnon:").unwrap_or(0);
    let file_kib = status_kib(pid, "RssFile:").unwrap_or(0);
    drop(child);
    let rss_max_kib = samples.iter().copied().max().unwrap_or(0);
    let rss_mean_kib = samples
        .iter()
        .sum::<u64>()
        .checked_div(samples.len() as u64)
        .unwrap_or(0);
    Ok(IdleReport {
        clusters: config.clusters,
        ready: ready_count,
        ready_after,
        rss_max_kib,
        rss_mean_kib,
        hwm_kib,
        anon_kib,
        file_kib,
        idle_cpu,
        idle_writes,
        idle_requests_per_minute: idle_requests as f64 * 60.0 / sampled.as_secs_f64().max(1.0),
        idle_requests_by_method: by_method.into_iter().collect(),
    })
}

/// The report as markdown.
pub fn render(report: &IdleReport) -> String {
    let methods: Vec<String> = report
        .idle_requests_by_method
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    format!(
        "| idle clusters (Ready / created) | Ready after | operator VmRSS while idle (max / mean) | VmHWM (peak, incl. start-up) | API writes while idle | API requests per minute while idle (by method, whole window) |\n|---|---|---|---|---|---|\n| {} / {} | {:.0} s | {:.1} / {:.1} MiB | {:.1} MiB | {} | {:.0} ({}) |\n\nResident at the end: {:.1} MiB anonymous (heap, stacks), {:.1} MiB file-backed (the executable's pages). CPU while idle: {}.\n",
        report.ready,
        report.clusters,
        report.ready_after.as_secs_f64(),
        report.rss_max_kib as f64 / 1024.0,
        report.rss_mean_kib as f64 / 1024.0,
        report.hwm_kib as f64 / 1024.0,
        report.idle_writes,
        report.idle_requests_per_minute,
        if methods.is_empty() {
            "none".to_owned()
        } else {
            methods.join(", ")
        },
        report.anon_kib as f64 / 1024.0,
        report.file_kib as f64 / 1024.0,
        report.idle_cpu.map_or_else(
            || "unknown".to_owned(),
            |c| format!("{:.1}% of one core", c * 100.0)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_of_a_process_grows_as_it_works() {
        let pid = std::process::id();
        let before = cpu_seconds(pid).unwrap_or(-1.0);
        assert!(before >= 0.0, "no CPU time read for {pid}");
        // Work until a clock tick has counted it (at most 10 s of wall
        // time on a machine busy with other things).
        let start = Instant::now();
        let mut x: u64 = 0;
        let mut after = before;
        while after <= before && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = cpu_seconds(pid).unwrap_or(-1.0);
        }
        assert!(after > before, "{before} s then {after} s");
        assert!(status_kib(pid, "RssAnon:").is_some_and(|k| k > 0));
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
