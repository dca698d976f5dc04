//! `logbook-bench churn`: journal writes under a churn of observations.
//!
//! Real cluster runtimes (the operator's `ClusterRuntime`, leading at the
//! first epoch) journal into real ConfigMaps of an in-process localkube over HTTP,
//! while each is fed `rate` observations per second (a replica's offset
//! moving, as the prober records it). The API writes are counted twice:
//! by the runtimes (store appends) and by the API server (every ADDED or
//! MODIFIED journal ConfigMap seen on a watch). The same churn with group
//! commit off (write-through) is the reference measured in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::Api;
use kube::runtime::watcher;
use logbook::journal_store::{JournalBackend, layout::JOURNAL_LABEL};
use logbook::leader::Leadership;
use logbook::operator::{ClusterRuntime, JournalFactory, RuntimeDeps};
use logbook::resources::ClusterMeta;
use logbook_journal::{Event, LinkStatus, ReplId};
use tokio::sync::watch;

use super::{BenchError, harness};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// Clusters churned at once.
    pub clusters: usize,
    /// Observations per second per cluster.
    pub rate: u32,
    /// How long each run lasts.
    pub duration: Duration,
    /// The group-commit interval under test.
    pub group_commit: Duration,
}

/// One run's numbers.
#[derive(Debug, Clone)]
pub struct ChurnRun {
    /// The group-commit interval.
    pub group_commit: Duration,
    /// Observations recorded per cluster (mean): below `rate × duration`
    /// when recording waited on writes (write-through).
    pub observations: u64,
    /// Store appends per cluster per minute (mean over the clusters).
    pub appends_per_minute: f64,
    /// Journal ConfigMap writes per cluster per minute, as the API server
    /// saw them (heads, segments and snapshots).
    pub api_writes_per_minute: f64,
    /// The most any cluster wrote in one minute-equivalent.
    pub max_appends_per_minute: f64,
}

/// The group-commit run and the write-through reference.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// What ran.
    pub config: ChurnConfig,
    /// With group commit.
    pub grouped: ChurnRun,
    /// Write-through (group commit off).
    pub write_through: ChurnRun,
}

/// Runs the churn with group commit, then write-through, and reports both.
///
/// # Errors
/// The local API server or a runtime failed.
pub async fn run_churn(config: ChurnConfig) -> Result<ChurnReport, BenchError> {
    let server = logbook_localkube::LocalKube::start(logbook_localkube::Config::default())
        .await
        .map_err(|e| harness("localkube")(e.to_string()))?;
    let client = kube::Client::try_from(kube::Config::new(
        server
            .url()
            .parse()
            .map_err(|e: http::uri::InvalidUri| harness("server url")(e.to_string()))?,
    ))
    .map_err(|e| harness("client")(e.to_string()))?;
    let grouped = run_once(&client, &config, config.group_commit, "grouped").await;
    let write_through = run_once(&client, &config, Duration::ZERO, "through").await;
    server.shutdown().await;
    Ok(ChurnReport {
        grouped: grouped?,
        write_through: write_through?,
        config,
    })
}

async fn run_once(
    client: &kube::Client,
    config: &ChurnConfig,
    group_commit: Duration,
    tag: &str,
) -> Result<ChurnRun, BenchError> {
    let namespace = "default";
    // Count what the API server stores, from a watch on journal objects.
    let writes = Arc::new(AtomicU64::new(0));
    let counted = writes.clone();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let watch_config = watcher::Config::default().labels(JOURNAL_LABEL);
    let mine = format!("logbook-journal-bench-{tag}-");
    let counter = tokio::spawn(async move {
        let events = watcher::watcher(maps, watch_config);
        futures::pin_mut!(events);
        while let Ok(Some(event)) = events.try_next().await {
            if let watcher::Event::Apply(cm) = event
                && cm
                    .metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&mine))
            {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = writes.load(Ordering::Relaxed);

    let (_leader, leadership) = watch::channel(Leadership::Leader { epoch: 1 });
    let deps = RuntimeDeps::new(
        client.clone(),
        JournalFactory {
            backend: JournalBackend::ConfigMap,
            client: client.clone(),
            sled: None,
            group_commit,
        },
        leadership,
        "bench-churn".to_owned(),
    );
    let mut runtimes = Vec::with_capacity(config.clusters);
    for i in 0..config.clusters {
        let meta = ClusterMeta {
            name: format!("churn-{tag}-{i}"),
            namespace: namespace.to_owned(),
            uid: format!("bench-{tag}-{i}"),
        };
        let mut rt = ClusterRuntime::open(&deps, meta, ObjectReference::default(), true)
            .await
            .map_err(|e| harness("runtime")(e.to_string()))?;
        rt.sync_leadership()
            .await
            .map_err(|e| harness("takeover")(e.to_string()))?;
        runtimes.push(rt);
    }
    // Each cluster churns on its own task, as each has its own prober.
    let period = Duration::from_secs(1) / config.rate.max(1);
    let duration = config.duration;
    let started = Instant::now();
    let tasks: Vec<_> = runtimes
        .into_iter()
        .map(|mut rt| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                // Burst: observations missed while a commit was in flight are made
                // up at once, so the offered load is `rate` per second.
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut observations = 0u64;
                while started.elapsed() < duration {
                    tick.tick().await;
                    observations += 1;
                    let event = Event::ReplicationObserved {
                        pod: format!("{}-1", rt.meta.name),
                        link: LinkStatus::Up,
                        offset: observations.saturating_mul(1_000),
                        replid: ReplId([7; 20]),
                    };
                    rt.record(vec![event], None)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                rt.commit().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((observations, rt.commits()))
            })
        })
        .collect();
    let mut per_cluster = Vec::with_capacity(tasks.len());
    for task in tasks {
        let done = task
            .await
            .map_err(|e| harness("a churn task")(e.to_string()))?;
        per_cluster.push(done.map_err(harness("record"))?);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    counter.abort();
    let minutes = elapsed.as_secs_f64() / 60.0;
    let clusters = config.clusters.max(1) as f64;
    let appends: Vec<f64> = per_cluster.iter().map(|(_, c)| *c as f64).collect();
    let observations =
        per_cluster.iter().map(|(o, _)| *o).sum::<u64>() / per_cluster.len().max(1) as u64;
    let api = writes.load(Ordering::Relaxed).saturating_sub(settled) as f64;
    Ok(ChurnRun {
        group_commit,
        observations,
        appends_per_minute: appends.iter().sum::<f64>() / clusters / minutes,
        api_writes_per_minute: api / clusters / minutes,
        max_appends_per_minute: appends.iter().copied().fold(0.0, f64::max) / minutes,
    })
}

/// The report as a markdown table.
pub fn render(report: &ChurnReport) -> String {
    let mut out = format!(
        "{} clusters, {} observations/s each, {:?} per run\n\n| group commit | observations/cluster | store appends/cluster/min | ConfigMap writes/cluster/min (API server) | worst cluster appends/min |\n|---|---|---|---|---|\n",
        report.config.clusters, report.config.rate, report.config.duration
    );
    for run in [&report.grouped, &report.write_through] {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |\n",
            if run.group_commit.is_zero() {
                "off (reference)".to_owned()
            } else {
                format!("{} ms", run.group_commit.as_millis())
            },
            run.observations,
            run.appends_per_minute,
            run.api_writes_per_minute,
            run.max_appends_per_minute,
        ));
    }
    let ratio = report.write_through.api_writes_per_minute
        / report.grouped.api_writes_per_minute.max(f64::MIN_POSITIVE);
    out.push_str(&format!(
        "\nGroup commit writes {ratio:.1}x less than write-through.\n"
    ));
    out
}

/// Prints progress-free results of a short run (used by the smoke test).
pub fn within_budget(run: &ChurnRun, per_minute: f64) -> bool {
    run.appends_per_minute <= per_minute && run.api_writes_per_minute <= per_minute
}
