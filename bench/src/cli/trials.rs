//! `logbook-bench spec-trials`: its options and its run (spec changes
//! generated from the CRD's schema applied to a live cluster, each judged
//! by the oracles of `soak::trials`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Error, Result, bench_err, operator_binary, seed_or_clock, topologies};
use crate::soak::history::HistoryLoad;
use crate::soak::trials::{TrialConfig, run_trials};

/// `logbook-bench spec-trials` options.
#[derive(Debug, Args)]
pub struct SpecTrialsArgs {
    /// Standalone, Replication, Sentinel, Cluster, or all (each in turn).
    #[arg(long, default_value = "Replication")]
    pub topology: String,
    /// The chains' seed (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Chains per topology.
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// The index of the first chain of each kind (a report's `chain N`
    /// with no empty chain before it is index N - 1: `--first-chain N-1
    /// --chains 1` runs it again alone).
    #[arg(long, default_value_t = 0)]
    pub first_chain: u64,
    /// Chains of ValkeyUser changes per topology (on a user of the
    /// cluster, after the cluster's chains).
    #[arg(long, default_value_t = 2)]
    pub user_chains: usize,
    /// Chains of ValkeyBackup changes per topology.
    #[arg(long, default_value_t = 1)]
    pub backup_chains: usize,
    /// The longest chain (at most 10).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub max_steps: u64,
    /// Seconds a step has to converge or be refused.
    #[arg(long, default_value_t = 150)]
    pub step_timeout_seconds: u64,
    /// Skip the differential oracle (a fresh cluster with each chain's
    /// final spec, compared object by object).
    #[arg(long)]
    pub no_differential: bool,
    /// The CRDs the mutations come from.
    #[arg(long, default_value = "crds/valkeycluster.yaml")]
    pub crds: PathBuf,
    /// Logical clients of the recorded history (0: none).
    #[arg(long, default_value_t = 2)]
    pub history_clients: usize,
    /// Milliseconds each history client pauses after an operation.
    #[arg(long, default_value_t = 20)]
    pub history_pace_milliseconds: u64,
    /// Keep each work directory even when every oracle held.
    #[arg(long)]
    pub keep: bool,
    /// The `logbook` binary to run as the operator (default: `logbook`
    /// beside this binary).
    #[arg(long)]
    pub operator_binary: Option<PathBuf>,
}

pub(super) async fn spec_trials(args: SpecTrialsArgs, out: &mut dyn Write) -> Result<()> {
    let binary = operator_binary(args.operator_binary)?;
    let topologies = topologies(&args.topology)?;
    let seed = seed_or_clock(args.seed);
    let mut failed = Vec::new();
    for topology in topologies {
        let config = TrialConfig {
            topology,
            seed,
            chains: args.chains,
            first_index: args.first_chain,
            user_chains: args.user_chains,
            backup_chains: args.backup_chains,
            max_len: usize::try_from(args.max_steps).unwrap_or(5),
            binary: binary.clone(),
            crds: args.crds.clone(),
            step_timeout: Duration::from_secs(args.step_timeout_seconds),
            differential: !args.no_differential,
            history: HistoryLoad {
                clients: args.history_clients,
                pace: Duration::from_millis(args.history_pace_milliseconds),
            },
            keep: args.keep,
        };
        eprintln!("spec-trials: {}", config.command());
        let report = run_trials(&config).await.map_err(bench_err)?;
        write!(out, "{}", report.render())?;
        out.flush()?;
        if !report.passed() {
            failed.push(topology.name());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Harness(format!(
            "spec trials seed {seed}: findings on {} (above)",
            failed.join(", ")
        )))
    }
}
