//! Percentiles of measured windows and the markdown table `logbook-bench`
//! prints. Pure: no I/O, no clock.
//!
//! Percentiles use the **nearest-rank** method: for `n` sorted samples the
//! p-th percentile is the sample at rank `ceil(p / 100 * n)` (1-based, at
//! least 1). Every reported value is therefore a measured window, never an
//! interpolation, and with fewer than 100 runs p99 is the maximum.

use std::fmt::Write as _;
use std::time::Duration;

use super::RunResult;

/// p50, p90, p99 and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// The median (nearest rank).
    pub p50: Duration,
    /// The 90th percentile (nearest rank).
    pub p90: Duration,
    /// The 99th percentile (nearest rank).
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` (in any order); `None` when empty.
    pub fn of(samples: &[Duration]) -> Option<Percentiles> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Percentiles {
            p50: nearest_rank(&sorted, 50)?,
            p90: nearest_rank(&sorted, 90)?,
            p99: nearest_rank(&sorted, 99)?,
            max: sorted.last().copied()?,
        })
    }
}

/// The `percent`-th percentile of `sorted` (ascending) by nearest rank;
/// `None` when empty. `percent` above 100 is taken as 100.
pub fn nearest_rank(sorted: &[Duration], percent: u32) -> Option<Duration> {
    let n = sorted.len();
    let percent = usize::try_from(percent.min(100)).ok()?;
    // ceil(percent * n / 100) without floating point, at least rank 1.
    let rank = percent.checked_mul(n)?.div_ceil(100).max(1);
    sorted.get(rank.checked_sub(1)?).copied()
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What was measured (`sentinel kill D=1000`, `logbook switchover`).
    pub scenario: String,
    /// How many runs.
    pub runs: usize,
    /// The windows' percentiles; `None` when no run produced one.
    pub windows: Option<Percentiles>,
    /// Failovers counted, or any other note.
    pub note: String,
    /// Acknowledged writes lost, over all runs.
    pub lost_writes: usize,
}

impl Row {
    /// A row summarising `results`: their windows, the total of failovers
    /// (`3 failovers`) and of lost acknowledged writes.
    pub fn from_results(scenario: impl Into<String>, results: &[RunResult]) -> Row {
        let windows: Vec<Duration> = results.iter().map(|r| r.window).collect();
        let failovers: usize = results.iter().map(|r| r.failovers).sum();
        let plural = if failovers == 1 { "" } else { "s" };
        Row {
            scenario: scenario.into(),
            runs: results.len(),
            windows: Percentiles::of(&windows),
            note: format!("{failovers} failover{plural}"),
            lost_writes: results.iter().map(|r| r.lost_acked).sum(),
        }
    }
}

/// A duration for the table: `4.2 ms` under 10 ms, whole milliseconds
/// above (`1234 ms`).
pub fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 10_000 {
        format!("{}.{} ms", micros / 1000, (micros % 1000) / 100)
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The rows as a markdown table, one line per row, with a header.
pub fn render_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | runs | p50 | p99 | max | failovers / note | lost acked writes |\n\
         |---|---:|---:|---:|---:|---|---:|\n",
    );
    for row in rows {
        let [p50, p99, max] = match row.windows {
            Some(w) => [w.p50, w.p99, w.max].map(format_duration),
            None => ["–".to_owned(), "–".to_owned(), "–".to_owned()],
        };
        // Pipes would split the cell.
        let scenario = row.scenario.replace('|', "/");
        let note = row.note.replace('|', "/");
        let _ = writeln!(
            out,
            "| {scenario} | {} | {p50} | {p99} | {max} | {note} | {} |",
            row.runs, row.lost_writes
        );
    }
    out
}

/// The Cluster rows as a markdown table: p50, p90 and maximum (with the
/// few runs a cluster row gets, p99 would be the maximum again).
pub fn render_cluster_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | runs | p50 | p90 | max | failovers / note | lost acked writes |\n\
         |---|---:|---:|---:|---:|---|---:|\n",
    );
    for row in rows {
        let [p50, p90, max] = match row.windows {
            Some(w) => [w.p50, w.p90, w.max].map(format_duration),
            None => ["–".to_owned(), "–".to_owned(), "–".to_owned()],
        };
        let scenario = row.scenario.replace('|', "/");
        let note = row.note.replace('|', "/");
        let _ = writeln!(
            out,
            "| {scenario} | {} | {p50} | {p90} | {max} | {note} | {} |",
            row.runs, row.lost_writes
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_picks_measured_samples() {
        let sorted: Vec<Duration> = (1..=10).map(ms).collect();
        assert_eq!(nearest_rank(&sorted, 50), Some(ms(5)));
        assert_eq!(nearest_rank(&sorted, 99), Some(ms(10)));
        assert_eq!(nearest_rank(&sorted, 0), Some(ms(1)));
        assert_eq!(nearest_rank(&sorted, 100), Some(ms(10)));
        assert_eq!(nearest_rank(&sorted, 101), Some(ms(10)));
        assert_eq!(nearest_rank(&[], 50), None);
        let hundred: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(nearest_rank(&hundred, 99), Some(ms(99)));
        assert_eq!(nearest_rank(&hundred, 50), Some(ms(50)));
    }

    #[test]
    fn percentiles_sort_their_input() {
        let p = Percentiles::of(&[ms(30), ms(10), ms(20)]);
        assert_eq!(
            p,
            Some(Percentiles {
                p50: ms(20),
                p90: ms(30),
                p99: ms(30),
                max: ms(30)
            })
        );
        assert_eq!(Percentiles::of(&[]), None);
        let one = Percentiles::of(&[ms(7)]);
        assert_eq!(
            one.map(|p| (p.p50, p.p99, p.max)),
            Some((ms(7), ms(7), ms(7)))
        );
    }

    #[test]
    fn rows_sum_failovers_and_losses() {
        let run = |w, lost| RunResult {
            window: ms(w),
            lost_acked: lost,
            acked: 100,
            failovers: 1,
        };
        let row = Row::from_results("sentinel kill D=1000", &[run(3000, 0), run(2000, 2)]);
        assert_eq!(row.runs, 2);
        assert_eq!(row.note, "2 failovers");
        assert_eq!(row.lost_writes, 2);
        assert_eq!(row.windows.map(|w| w.p50), Some(ms(2000)));
        assert_eq!(Row::from_results("x", &[run(1, 0)]).note, "1 failover");
        assert_eq!(Row::from_results("x", &[]).windows, None);
    }

    #[test]
    fn p90_is_the_ninth_of_ten_and_the_fifth_of_five() {
        let ten: Vec<Duration> = (1..=10).rev().map(ms).collect();
        assert_eq!(Percentiles::of(&ten).map(|p| p.p90), Some(ms(9)));
        let five = [ms(50), ms(10), ms(40), ms(20), ms(30)];
        let p = Percentiles::of(&five);
        assert_eq!(
            p.map(|p| (p.p50, p.p90, p.max)),
            Some((ms(30), ms(50), ms(50)))
        );
    }

    #[test]
    fn the_cluster_table_shows_p90() {
        let row = Row {
            scenario: "cluster".to_owned(),
            runs: 10,
            windows: Percentiles::of(&(1..=10).map(|v| ms(v * 100)).collect::<Vec<_>>()),
            note: "10 failovers".to_owned(),
            lost_writes: 0,
        };
        let table = render_cluster_table(&[row]);
        assert_eq!(
            table.lines().nth(2),
            Some("| cluster | 10 | 500 ms | 900 ms | 1000 ms | 10 failovers | 0 |")
        );
        assert!(table.starts_with("| scenario | runs | p50 | p90 | max |"));
    }

    #[test]
    fn table_renders_every_row() {
        let rows = [
            Row {
                scenario: "failover to".to_owned(),
                runs: 5,
                windows: Percentiles::of(&[Duration::from_micros(4_250), ms(12)]),
                note: "5 failovers".to_owned(),
                lost_writes: 0,
            },
            Row {
                scenario: "a|b".to_owned(),
                runs: 0,
                windows: None,
                note: "not run".to_owned(),
                lost_writes: 0,
            },
        ];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines.get(2).copied(),
            Some("| failover to | 5 | 4.2 ms | 12 ms | 12 ms | 5 failovers | 0 |")
        );
        assert_eq!(
            lines.get(3).copied(),
            Some("| a/b | 0 | – | – | – | not run | 0 |")
        );
    }
}
