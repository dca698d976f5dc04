//! `logbook-bench check`: its options and its run (each recorded figure
//! compared with its baseline, or the last runs made the baselines;
//! `crate::check` holds the comparison).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Error, Result};

/// `logbook-bench check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The recorded baselines, one `<command>.json` each.
    #[arg(long, default_value = "bench/baselines")]
    pub baselines: PathBuf,
    /// The least tolerance a ratio gets (0.15: 15 % worse than the
    /// baseline's median); each ratio's own, from its baseline's spread,
    /// is used where wider.
    #[arg(long, default_value_t = crate::check::TOLERANCE)]
    pub tolerance: f64,
    /// Make the last runs the new baselines (after a change that is meant
    /// to move a figure) instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// With `--update`: how many of each command's last runs the baseline
    /// is made from (each ratio's median and spread over them).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// With `--update`: the commands to make baselines of (repeated);
    /// every command with a run in the results when none is given.
    #[arg(long = "command")]
    pub commands: Vec<String>,
}

pub(super) fn check(args: &CheckArgs, results: &Path, out: &mut dyn Write) -> Result<()> {
    if args.update {
        let runs = crate::check::last_runs(results, args.runs.max(1), &args.commands)
            .map_err(Error::Harness)?;
        let mut updated = Vec::new();
        for (command, records) in &runs {
            let base = crate::check::baseline(records, args.tolerance).map_err(Error::Harness)?;
            std::fs::create_dir_all(&args.baselines)?;
            let text = serde_json::to_string_pretty(&base).map_err(std::io::Error::other)?;
            std::fs::write(args.baselines.join(format!("{command}.json")), text + "\n")?;
            updated.push(format!("{command} ({} run(s))", records.len()));
        }
        if let Some(missing) = args.commands.iter().find(|c| !runs.contains_key(*c)) {
            return Err(Error::Harness(format!(
                "{missing}: no run in {}",
                results.display()
            )));
        }
        writeln!(
            out,
            "baselines updated from {}: {}",
            results.display(),
            updated.join(", ")
        )?;
        return Ok(());
    }
    let report = crate::check::check_dirs(&args.baselines, results, args.tolerance)
        .map_err(Error::Harness)?;
    for command in &report.not_run {
        writeln!(
            out,
            "{command}: no run in {} (not compared)",
            results.display()
        )?;
    }
    for figure in &report.figures {
        let mark = if figure.worse() { "WORSE" } else { "ok   " };
        writeln!(out, "  {mark} {figure}")?;
    }
    for command in &report.compared {
        let worse = report
            .regressions()
            .filter(|r| r.command == *command)
            .count();
        writeln!(
            out,
            "{command}: {}",
            if worse == 0 {
                "no figure worse than its baseline allows".to_owned()
            } else {
                format!("{worse} figure(s) worse than the baseline allows")
            }
        )?;
    }
    if report.compared.is_empty() {
        return Err(Error::Harness(format!(
            "nothing compared: no run in {} has a baseline in {}",
            results.display(),
            args.baselines.display()
        )));
    }
    match report.regressions().count() {
        0 => Ok(()),
        n => Err(Error::Harness(format!(
            "{n} figure(s) worse than the baseline allows"
        ))),
    }
}
