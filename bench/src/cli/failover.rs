//! `logbook-bench failover`: its options and its runs (the Replication
//! rows with their Sentinel and `FAILOVER TO` references, the cluster of
//! topology Sentinel, and the Cluster rows beside Valkey Cluster's own
//! failover), and the figures they record.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::{Result, bench_err};
use crate::cluster_reference::run_cluster_reference;
use crate::operator::BenchNode;
use crate::operator_cluster::{ClusterScenario, OperatorClusterBench, SHARDS};
use crate::record::Record;
use crate::{
    ClusterRun, Fault, OperatorBench, Row, RunResult, Scenario, Switch, render_cluster_table,
    render_table, run_failover_to_reference, run_sentinel_reference, run_switchover_reference,
};

/// `logbook-bench failover` options.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// Runs of each operator scenario that fails over (kill, delete).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Runs of the frozen-primary and `DEBUG SLEEP` scenarios.
    #[arg(long, default_value_t = 10)]
    pub slow_runs: usize,
    /// Runs of each reference (Sentinel kill at 1000 and 5000 ms, Sentinel
    /// freeze at 1000 ms, bare FAILOVER TO).
    #[arg(long, default_value_t = 10)]
    pub reference_runs: usize,
    /// Skip the references.
    #[arg(long)]
    pub no_references: bool,
    /// Which topologies' rows to run.
    #[arg(long, value_enum, default_value_t = Topologies::All)]
    pub topology: Topologies,
    /// Runs of each Cluster row (operator kill, operator pod deletion, and
    /// Valkey's own failover as the reference).
    #[arg(long, default_value_t = 5)]
    pub cluster_runs: usize,
    /// `cluster-node-timeout` of the Cluster rows, operator and reference.
    #[arg(long, default_value_t = 5000)]
    pub cluster_node_timeout_milliseconds: u64,
    /// Replicas per shard of the Cluster rows, operator and reference. Two
    /// by default: a write counts as acknowledged when `WAIT 1` sees it on
    /// a replica, and with one replica per shard a failover leaves the new
    /// primary none until its old primary's replacement has synced.
    #[arg(long, default_value_t = 2)]
    pub cluster_replicas_per_shard: usize,
    /// Only these faults (comma-separated; every one by default), on every
    /// topology that has them: `--only deleted,killed` to look into one
    /// figure without the others' minutes.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Only>,
    /// Skip the rows of the same cluster run as `topology: Sentinel`.
    #[arg(long)]
    pub no_sentinel_topology: bool,
    /// Where the Replication operator rows' pods run (comma-separated):
    /// `process` (localkube's kubelet), `containers` (the real node,
    /// docs/node.md), or both in one run, each containers row compared
    /// with its process row.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "process")]
    pub node: Vec<BenchNode>,
    /// Replication rows: print each run's client attempts around the
    /// fault (stderr, with the fault's wall-clock time) and keep the
    /// operator's journal, to see where a window's time went.
    #[arg(long)]
    pub trace: bool,
}

/// A fault of `logbook-bench failover --only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// The primary's process killed.
    Killed,
    /// The primary's pod deleted.
    Deleted,
    /// The primary frozen (SIGSTOP).
    Frozen,
    /// `DEBUG SLEEP 1` on the primary.
    DebugSleep,
    /// A one-second `SORT` on the primary.
    SlowCommand,
    /// A planned switchover.
    Switchover,
    /// The primary's node partitioned (three real nodes: `--node nodes`).
    Partitioned,
}

impl FailoverArgs {
    /// Whether `fault`'s rows run.
    fn runs(&self, fault: Only) -> bool {
        self.only.is_empty() || self.only.contains(&fault)
    }
}

impl From<Scenario> for Only {
    fn from(s: Scenario) -> Self {
        match s {
            Scenario::Kill => Only::Killed,
            Scenario::DeletePod => Only::Deleted,
            Scenario::Freeze => Only::Frozen,
            Scenario::DebugSleep => Only::DebugSleep,
            Scenario::SlowCommand => Only::SlowCommand,
            Scenario::Switchover => Only::Switchover,
            Scenario::PartitionNode => Only::Partitioned,
        }
    }
}

impl From<ClusterScenario> for Only {
    fn from(s: ClusterScenario) -> Self {
        match s {
            ClusterScenario::Kill => Only::Killed,
            ClusterScenario::DeletePod => Only::Deleted,
            ClusterScenario::Freeze => Only::Frozen,
            ClusterScenario::DebugSleep => Only::DebugSleep,
            ClusterScenario::SlowCommand => Only::SlowCommand,
        }
    }
}

/// The rows `logbook-bench failover` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topologies {
    /// Replication and Cluster.
    All,
    /// The Replication rows with their Sentinel and FAILOVER TO references.
    Replication,
    /// The Cluster rows with Valkey Cluster's own failover as reference.
    Cluster,
    /// Only the rows of the cluster of topology Sentinel, with the
    /// Sentinel references.
    Sentinel,
}

async fn scenario(
    bench: &OperatorBench,
    scenario: Scenario,
    runs: usize,
    out: &mut dyn Write,
) -> Result<Row> {
    let mut results: Vec<RunResult> = Vec::new();
    if scenario == Scenario::SlowCommand {
        let sized = bench.prepare_slow_command().await.map_err(bench_err)?;
        writeln!(
            out,
            "  the slow command: SORT of {} numbers, {} ms when sized",
            sized.len,
            sized.took.as_millis()
        )?;
    }
    for run in 0..runs {
        let result = bench.run(scenario, run).await.map_err(bench_err)?;
        writeln!(
            out,
            "  {} run {}: window {} ms, failover {}, lost {} of {} acked",
            scenario.name(),
            run + 1,
            result.window.as_millis(),
            result.failovers,
            result.lost_acked,
            result.acked
        )?;
        out.flush()?;
        results.push(result);
    }
    let mut row = Row::from_results(scenario.name(), &results);
    if scenario == Scenario::SlowCommand {
        let (sized, took) = bench.slow_command_runs();
        let took: Vec<String> = took.iter().map(|d| d.as_millis().to_string()).collect();
        row.note = format!(
            "{} (SORT of {} numbers, busy {} ms)",
            row.note,
            sized.map_or(0, |s| s.len),
            took.join(", ")
        );
    }
    Ok(row)
}

/// Runs each scenario of `plan` on `bench` in turn, its row named with
/// `label` in place of `operator:`; stops at the first harness failure.
async fn scenarios(
    bench: &OperatorBench,
    plan: &[(Scenario, usize)],
    label: &str,
    rows: &mut Vec<Row>,
    out: &mut dyn Write,
) -> Result<()> {
    for (which, runs) in plan {
        let mut row = scenario(bench, *which, *runs, out).await?;
        row.scenario = row.scenario.replacen("operator:", label, 1);
        rows.push(row);
    }
    Ok(())
}

pub(super) async fn failover(
    args: FailoverArgs,
    out: &mut dyn Write,
    rec: &mut Record,
) -> Result<()> {
    if args.topology != Topologies::Cluster {
        failover_replication(&args, out, rec).await?;
    }
    if matches!(args.topology, Topologies::All | Topologies::Cluster) {
        failover_cluster(&args, out, rec).await?;
    }
    Ok(())
}

/// The reference row of a switchover made by hand (the operator's steps,
/// none of its deciding): the operator's switchover is compared with it.
const BY_HAND: &str = "reference: switchover by hand (pause, catch up, REPLICAOF NO ONE, repoint)";
/// The reference row of a planned switchover made by Sentinel alone: the
/// Sentinel topology's switchover is compared with it.
const SENTINEL_PLANNED: &str = "sentinel: planned switchover (SENTINEL FAILOVER COORDINATED)";

/// The failover rows' figures: each row's p50, p99 and max, its lost
/// writes, and its failovers (false ones, where none may happen); each
/// operator row's p50 compared with the reference it is measured beside.
fn failover_figures(rows: &[Row], rec: &mut Record) {
    let find = |needle: &str| {
        rows.iter()
            .find(|r| r.scenario.contains(needle))
            .map(|r| format!("{} p50", r.scenario))
    };
    let sentinel_kill = find("sentinel: primary kill (down-after 1000 ms)");
    let sentinel_kill_5000 = find("sentinel: primary kill (down-after 5000 ms)");
    let sentinel_freeze = find("sentinel: primary freeze (down-after 1000 ms)");
    let by_hand = find(BY_HAND);
    let sentinel_planned = find(SENTINEL_PLANNED);
    // A Cluster row's reference: Valkey alone's row of the same measure
    // (the first write accepted, or acknowledged).
    let cluster_alone = |name: &str| {
        let measure = name.rsplit_once(": fault")?.1;
        rows.iter()
            .find(|r| r.scenario.contains("Valkey alone") && r.scenario.ends_with(measure))
            .map(|r| format!("{} p50", r.scenario))
    };
    for row in rows {
        let name = &row.scenario;
        let no_failover = name.contains("DEBUG SLEEP") || name.contains("SORT");
        let on_containers = name.strip_prefix(BenchNode::Containers.label());
        let reference = if let Some(rest) = on_containers {
            // The same row with the pods as host processes, same run.
            let process = format!("{}{rest}", BenchNode::Process.label());
            rows.iter()
                .any(|r| r.scenario == process)
                .then(|| format!("{process} p50"))
        } else if no_failover {
            None
        } else if name.starts_with("cluster, operator") {
            cluster_alone(name)
        } else if name.starts_with("topology Sentinel:") && !name.contains("switchover") {
            sentinel_kill_5000.clone()
        } else if name.starts_with("topology Sentinel:") {
            sentinel_planned.clone()
        } else if name.starts_with("operator:") && name.contains("switchover") {
            by_hand.clone()
        } else if name.contains("frozen") {
            sentinel_freeze.clone()
        } else if name.starts_with("operator: primary") {
            sentinel_kill.clone()
        } else {
            None
        };
        if let Some(w) = &row.windows {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            match reference {
                Some(reference) => rec.compared(format!("{name} p50"), ms(w.p50), "ms", reference),
                None => rec.figure(format!("{name} p50"), ms(w.p50), "ms"),
            }
            rec.figure(format!("{name} p99"), ms(w.p99), "ms");
            rec.figure(format!("{name} max"), ms(w.max), "ms");
        }
        rec.figure(
            format!("{name} lost acked"),
            row.lost_writes as f64,
            "count",
        );
        if no_failover {
            let failovers = row
                .note
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            rec.figure(format!("{name} false failovers"), failovers, "count");
        }
    }
}

/// One Cluster run's progress line.
fn cluster_line(out: &mut dyn Write, name: &str, run: usize, r: &ClusterRun) -> Result<()> {
    let ms = |d: Option<Duration>| d.map_or_else(|| "–".to_owned(), |d| d.as_millis().to_string());
    writeln!(
        out,
        "  {name} run {}: accepted again {} ms, acknowledged again {} ms (new primary {}; other shards' worst gap {} ms), failover {}, lost {} of {} acked",
        run + 1,
        ms(r.recovery.accepted),
        ms(r.recovery.acknowledged),
        r.new_primary,
        ms(r.others_gap),
        r.failovers,
        r.lost_acked,
        r.acked
    )?;
    if let Some(journal) = &r.journal {
        writeln!(out, "    journal: {}", journal.describe())?;
    }
    out.flush()?;
    Ok(())
}

/// A Cluster scenario's two rows: fault → the first write its new primary
/// accepted, and → the first it acknowledged; each with the failovers,
/// the lost writes (of every run) and the other shards' worst gap.
fn cluster_rows(name: &str, runs: &[ClusterRun]) -> [Row; 2] {
    let failovers: usize = runs.iter().map(|r| r.failovers).sum();
    let lost: usize = runs.iter().map(|r| r.lost_acked).sum();
    let acked: usize = runs.iter().map(|r| r.acked).sum();
    let others = runs
        .iter()
        .filter_map(|r| r.others_gap)
        .max()
        .map(|g| {
            format!(
                "; other shards' worst gap {}",
                crate::stats::format_duration(g)
            )
        })
        .unwrap_or_default();
    let row = |what: &str, pick: fn(&ClusterRun) -> Option<Duration>| {
        let windows: Vec<Duration> = runs.iter().filter_map(pick).collect();
        let missing = runs.len().saturating_sub(windows.len());
        Row {
            scenario: format!("{name}: {what}"),
            runs: runs.len(),
            windows: crate::stats::Percentiles::of(&windows),
            note: format!(
                "{failovers} failover{}{}{others}; {lost} of {acked} acked lost",
                if failovers == 1 { "" } else { "s" },
                if missing > 0 {
                    format!("; {missing} run(s) without one")
                } else {
                    String::new()
                }
            ),
            lost_writes: lost,
        }
    };
    [
        row("fault → first write accepted", |r| r.recovery.accepted),
        row("fault → first write acknowledged", |r| {
            r.recovery.acknowledged
        }),
    ]
}

async fn failover_cluster(
    args: &FailoverArgs,
    out: &mut dyn Write,
    rec: &mut Record,
) -> Result<()> {
    let timeout_ms = args.cluster_node_timeout_milliseconds;
    let replicas = args.cluster_replicas_per_shard.max(1);
    let n = args.cluster_runs.max(1);
    let mut rows = Vec::new();
    writeln!(
        out,
        "starting localkube, the operator and a {SHARDS} x (1 + {replicas}) Cluster (node timeout {timeout_ms} ms) ..."
    )?;
    out.flush()?;
    let bench = OperatorClusterBench::start(timeout_ms, replicas)
        .await
        .map_err(bench_err)?
        .traced(args.trace);
    let mut failed = None;
    let mut scenarios = Vec::new();
    for which in [
        ClusterScenario::Kill,
        ClusterScenario::DeletePod,
        ClusterScenario::Freeze,
        ClusterScenario::DebugSleep,
        ClusterScenario::SlowCommand,
    ]
    .into_iter()
    .filter(|s| args.runs(Only::from(*s)))
    {
        let mut runs = Vec::with_capacity(n);
        for run in 0..n {
            match bench.run(which, run).await {
                Ok(result) => {
                    cluster_line(out, which.name(), run, &result)?;
                    runs.push(result);
                }
                Err(err) => {
                    writeln!(out, "  {} run {}: failed: {err}", which.name(), run + 1)?;
                    failed = Some(err);
                    break;
                }
            }
        }
        scenarios.push((which, runs));
        if failed.is_some() {
            break;
        }
    }
    // The operator's journal, read once it stopped, says where each run's
    // time went.
    let faults: Vec<_> = scenarios
        .iter()
        .flat_map(|(_, runs)| runs.iter().map(|r| r.fault_wall))
        .collect();
    match bench.stop(&faults).await {
        Ok(times) => {
            writeln!(out, "the operator's journal, per run (ms after the fault):")?;
            let mut times = times.into_iter();
            for (which, runs) in &mut scenarios {
                for (run, r) in runs.iter_mut().enumerate() {
                    r.journal = times.next();
                    if let Some(journal) = &r.journal {
                        writeln!(
                            out,
                            "  {} run {}: {}",
                            which.name(),
                            run + 1,
                            journal.describe()
                        )?;
                    }
                }
            }
        }
        Err(err) => writeln!(out, "the operator's journal could not be read: {err}")?,
    }
    for (which, runs) in &scenarios {
        rows.extend(cluster_rows(which.name(), runs));
    }
    if !args.no_references {
        let name = format!("cluster, Valkey alone: primary killed (node timeout {timeout_ms} ms)");
        writeln!(out, "reference: {name} x{n} ...")?;
        out.flush()?;
        let mut lines = Vec::new();
        let runs = run_cluster_reference(SHARDS, replicas, timeout_ms, n, &mut |run, r| {
            lines.push((run, r.clone()));
        })
        .await
        .map_err(bench_err)?;
        for (run, r) in lines {
            cluster_line(out, &name, run, &r)?;
        }
        rows.extend(cluster_rows(&name, &runs));
    }
    failover_figures(&rows, rec);
    writeln!(out)?;
    write!(out, "{}", render_cluster_table(&rows))?;
    out.flush()?;
    match failed {
        Some(err) => Err(bench_err(err)),
        None => Ok(()),
    }
}

async fn failover_replication(
    args: &FailoverArgs,
    out: &mut dyn Write,
    rec: &mut Record,
) -> Result<()> {
    let mut rows = Vec::new();
    let plan: Vec<_> = [
        (Scenario::Kill, args.runs),
        (Scenario::DeletePod, args.runs),
        (Scenario::Freeze, args.slow_runs),
        (Scenario::DebugSleep, args.slow_runs),
        (Scenario::SlowCommand, args.slow_runs),
        (Scenario::Switchover, args.runs),
        (Scenario::PartitionNode, args.slow_runs),
    ]
    .into_iter()
    .filter(|(s, _)| args.runs(Only::from(*s)))
    .collect();
    for node in &args.node {
        // A partition needs several nodes; several nodes run only it.
        let plan: Vec<_> = plan
            .iter()
            .copied()
            .filter(|(s, _)| (*s == Scenario::PartitionNode) == (*node == BenchNode::Nodes))
            .collect();
        if args.topology == Topologies::Sentinel {
            break;
        }
        if plan.is_empty() {
            continue;
        }
        writeln!(
            out,
            "starting {}, the operator and a 3-pod Replication cluster ...",
            match node {
                BenchNode::Process => "localkube",
                BenchNode::Containers => "the real control plane and node",
                BenchNode::Nodes => "the real control plane and three nodes in three zones",
            }
        )?;
        out.flush()?;
        let bench = OperatorBench::start_on(*node, false)
            .await
            .map_err(bench_err)?
            .traced(args.trace);
        let ready_ms = bench.ready_in().as_secs_f64() * 1000.0;
        writeln!(
            out,
            "{} a new 3-pod Replication cluster Ready in {ready_ms:.0} ms",
            node.label()
        )?;
        let ready =
            |n: BenchNode| format!("{} a new 3-pod Replication cluster to Ready", n.label());
        match node {
            BenchNode::Process => rec.figure(ready(*node), ready_ms, "ms"),
            BenchNode::Containers | BenchNode::Nodes => {
                rec.compared(ready(*node), ready_ms, "ms", ready(BenchNode::Process))
            }
        }
        let result = scenarios(&bench, &plan, node.label(), &mut rows, out).await;
        bench.stop().await;
        result?;
    }
    // The same cluster of topology Sentinel: the Sentinels decide, the
    // client is Sentinel-aware.
    let plan: Vec<_> = [
        (Scenario::Kill, args.runs),
        (Scenario::DeletePod, args.runs),
        (Scenario::Switchover, args.runs),
    ]
    .into_iter()
    .filter(|(s, _)| args.runs(Only::from(*s)))
    .collect();
    if !plan.is_empty() && !args.no_sentinel_topology {
        writeln!(
            out,
            "starting localkube, the operator and a 3-pod Sentinel cluster (3 Sentinels, down-after {} ms) ...",
            crate::operator::SENTINEL_DOWN_AFTER_MS
        )?;
        let bench = OperatorBench::start_topology(true)
            .await
            .map_err(bench_err)?
            .traced(args.trace);
        let result = scenarios(&bench, &plan, "topology Sentinel:", &mut rows, out).await;
        bench.stop().await;
        result?;
    }
    if !args.no_references {
        let n = args.reference_runs;
        for (fault, down_after) in [
            (Fault::Kill, 1000),
            (Fault::Kill, 5000),
            (Fault::Freeze, 1000),
            (Fault::Planned, crate::operator::SENTINEL_DOWN_AFTER_MS),
        ] {
            writeln!(
                out,
                "reference: sentinel {} down-after {down_after} ms x{n} ...",
                fault.name()
            )?;
            out.flush()?;
            let results = run_sentinel_reference(fault, down_after, n)
                .await
                .map_err(bench_err)?;
            let name = if fault == Fault::Planned {
                SENTINEL_PLANNED.to_owned()
            } else {
                format!(
                    "sentinel: primary {} (down-after {down_after} ms)",
                    fault.name()
                )
            };
            rows.push(Row::from_results(name, &results));
        }
        writeln!(out, "reference: bare FAILOVER TO x{n} ...")?;
        let results = run_failover_to_reference(n).await.map_err(bench_err)?;
        rows.push(Row::from_results(
            "reference: bare FAILOVER TO (planned)",
            &results,
        ));
        writeln!(out, "reference: switchover by hand x{n} ...")?;
        let results = run_switchover_reference(Switch::ByHand, n)
            .await
            .map_err(bench_err)?;
        rows.push(Row::from_results(BY_HAND, &results));
    }
    failover_figures(&rows, rec);
    writeln!(out)?;
    write!(out, "{}", render_table(&rows))?;
    out.flush()?;
    Ok(())
}
