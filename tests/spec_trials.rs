//! The short spec trials of `make test`: Acto-style chains of spec
//! changes generated from the CRD's schema (`logbook_bench::spec_mutations`)
//! applied to a live Replication cluster on localkube, real
//! `valkey-server` pods and a real operator process, while the recorded
//! history client works on it; every step judged by the oracles of
//! `logbook_bench::soak::trials` (refused clearly or converged, its value
//! reflected in the objects, a revert restoring them, a fresh cluster
//! with the final spec agreeing, no anomaly outside the client promises,
//! a journal that verifies with a clean audit). The long runs are
//! `logbook-bench spec-trials` (docs/robustness.md).
//!
//! `LOGBOOK_TRIALS_SEED` and `LOGBOOK_TRIALS_CHAINS` change the seed and
//! the number of chains; a failure prints the command that runs the same
//! chains again and keeps the journal and every log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use logbook_bench::soak::history::HistoryLoad;
use logbook_bench::soak::schedule::SoakTopology;
use logbook_bench::soak::trials::{StepOutcome, TrialConfig, run_trials};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_spec_changes_are_refused_clearly_or_converge_and_revert() {
    let config = TrialConfig {
        topology: SoakTopology::Replication,
        seed: env_u64("LOGBOOK_TRIALS_SEED", 20_261_127),
        chains: usize::try_from(env_u64("LOGBOOK_TRIALS_CHAINS", 6)).unwrap(),
        first_index: 0,
        user_chains: 3,
        backup_chains: 1,
        max_len: 5,
        binary: env!("CARGO_BIN_EXE_logbook").into(),
        crds: concat!(env!("CARGO_MANIFEST_DIR"), "/crds/valkeycluster.yaml").into(),
        step_timeout: Duration::from_secs(150),
        differential: true,
        history: HistoryLoad {
            clients: 2,
            pace: Duration::from_millis(20),
        },
        keep: false,
    };
    let report = run_trials(&config).await.unwrap_or_else(|e| {
        panic!(
            "the trials could not run: {e}\nreproduce: {}",
            config.command()
        )
    });
    let rendered = report.render();
    eprintln!("{rendered}");
    // Trials that applied nothing proved nothing.
    let steps: Vec<&StepOutcome> = report
        .chains
        .iter()
        .flat_map(|c| c.steps.iter().map(|s| &s.outcome))
        .collect();
    assert!(steps.len() >= 2, "too few steps: {rendered}");
    assert!(
        report.history.as_ref().is_some_and(|h| h.ops > 200),
        "the history is too short to show anything: {rendered}"
    );
    assert!(report.passed(), "{rendered}");
}
