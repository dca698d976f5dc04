//! The report of a run: per-mode summaries and the markdown the CLI
//! prints (the table in `docs/benchmarks.md`). Pure.

use std::time::Duration;

use super::{LoadMode, Pass, RestartReport};
use crate::stats::{Percentiles, nearest_rank};

/// The figures of one load mode over all its passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSummary {
    /// Median pass total (nearest rank).
    pub total_p50: Duration,
    /// Fastest and slowest pass totals.
    pub total_min: Duration,
    /// Slowest pass total.
    pub total_max: Duration,
    /// One cluster's load, pooled over every pass.
    pub load: Percentiles,
    /// One cluster's `decide`, pooled over every pass.
    pub decide: Percentiles,
    /// Events folded per cluster: mean and largest.
    pub folded_mean: u64,
    /// Largest fold of one cluster.
    pub folded_max: u64,
    /// Clusters whose `decide` asked for something (first pass).
    pub deciding: usize,
    /// Median CPU time of a pass (client and localkube), when measured.
    pub cpu_p50: Option<Duration>,
}

impl ModeSummary {
    /// The summary of `passes`; `None` when there is none.
    pub fn of(passes: &[Pass]) -> Option<ModeSummary> {
        let mut totals: Vec<Duration> = passes.iter().map(|p| p.total).collect();
        totals.sort_unstable();
        let all = || passes.iter().flat_map(|p| p.clusters.iter());
        let loads: Vec<Duration> = all().map(|c| c.load).collect();
        let decides: Vec<Duration> = all().map(|c| c.decide).collect();
        let first = passes.first()?;
        let folded: Vec<u64> = first.clusters.iter().map(|c| c.folded).collect();
        let count = u64::try_from(folded.len()).unwrap_or(u64::MAX).max(1);
        Some(ModeSummary {
            total_p50: nearest_rank(&totals, 50)?,
            total_min: totals.first().copied()?,
            total_max: totals.last().copied()?,
            load: Percentiles::of(&loads)?,
            decide: Percentiles::of(&decides)?,
            folded_mean: folded.iter().sum::<u64>() / count,
            folded_max: folded.iter().copied().max().unwrap_or(0),
            deciding: first.clusters.iter().filter(|c| c.decisions > 0).count(),
            cpu_p50: {
                let mut cpu: Vec<Duration> = passes.iter().filter_map(|p| p.cpu).collect();
                cpu.sort_unstable();
                nearest_rank(&cpu, 50)
            },
        })
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn per_cluster(total: u64, clusters: usize) -> String {
    let clusters = u64::try_from(clusters).unwrap_or(u64::MAX).max(1);
    let tenths = total.saturating_mul(10) / clusters;
    format!("{}.{}", tenths / 10, tenths % 10)
}

impl RestartReport {
    /// The report as markdown: the run's shape, one table row per load
    /// mode, and the ratio between them.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.config;
        let s = &self.seed;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} clusters x {} events, snapshot every {}, segments sealed at {} KiB; {} runs of each load, {} clusters in flight",
            c.clusters,
            c.events,
            c.snapshot_every,
            c.seal_bytes / 1024,
            c.repetitions,
            c.concurrency
        );
        let _ = writeln!(
            out,
            "seeded in {:.1} s: {} appends, {} snapshots, {:.1} MiB of frames ({} sealed segments, {:.1} MiB still in heads)",
            s.elapsed.as_secs_f64(),
            s.appends,
            s.snapshots,
            mib(s.frame_bytes),
            s.segments,
            mib(s.open_bytes)
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| load | total p50 ms (min-max) | CPU s per pass | per cluster p50 / p99 / max ms | decide p50 / max µs | events folded per cluster (mean / max) | GETs per cluster (head + snapshot + segment) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        let mut p50s = std::collections::BTreeMap::new();
        for runs in &self.modes {
            let Some(m) = ModeSummary::of(&runs.passes) else {
                continue;
            };
            p50s.insert(runs.mode.name(), m.total_p50);
            let r = &runs.requests;
            let _ = writeln!(
                out,
                "| {} | **{}** ({}-{}) | {} | {} / {} / {} | {} / {} | {} / {} | {} ({} + {} + {}){} |",
                runs.mode.name(),
                ms(m.total_p50),
                ms(m.total_min),
                ms(m.total_max),
                m.cpu_p50
                    .map_or_else(|| "-".to_owned(), |d| format!("{:.2}", d.as_secs_f64())),
                ms(m.load.p50),
                ms(m.load.p99),
                ms(m.load.max),
                m.decide.p50.as_micros(),
                m.decide.max.as_micros(),
                m.folded_mean,
                m.folded_max,
                per_cluster(r.gets(), c.clusters),
                per_cluster(r.head_gets, c.clusters),
                per_cluster(r.snapshot_gets, c.clusters),
                per_cluster(r.segment_gets, c.clusters),
                if r.other > 0 {
                    format!(", {} other requests", r.other)
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(out);
        if let Some(m) = self.modes.first().and_then(|r| ModeSummary::of(&r.passes)) {
            let _ = writeln!(
                out,
                "decide asked for intents on {} of {} clusters",
                m.deciding, c.clusters
            );
        }
        let p50 = |mode: LoadMode| p50s.get(mode.name()).copied();
        if let (Some(snapshot), Some(from_start)) =
            (p50(LoadMode::Snapshot), p50(LoadMode::FromStart))
        {
            let _ = writeln!(
                out,
                "from seq 1 / snapshot + tail: {:.1}x",
                from_start.as_secs_f64() / snapshot.as_secs_f64().max(1e-9)
            );
        }
        for mode in [LoadMode::Snapshot, LoadMode::Pinned] {
            if let Some(total) = p50(mode) {
                let verdict = if total < Duration::from_secs(2) {
                    "met"
                } else {
                    "MISSED"
                };
                let _ = writeln!(
                    out,
                    "target < 2000 ms for every cluster loaded and decided ({}): {verdict}",
                    mode.name()
                );
            }
        }
        out
    }
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
