//! `logbook-operator`: the image's one executable. `logbook-operator
//! [operator] ...` runs the operator (what `logbook operator` runs; a
//! first argument `operator` is accepted and ignored, so the chart's
//! arguments `operator --journal=configmap ...` run it or `logbook`
//! alike), and `logbook-operator restore-fetch ...` is the init container
//! of a cluster restored from a backup. It links none of the tools
//! (localkube, replay's commands, the plugin).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// jemalloc gives memory freed after the start-up peak back to the system
/// (its pages decay after about ten seconds); glibc's allocator keeps
/// most of it (docs/benchmarks.md, "Operator memory while idle"). The
/// image's build turns it on (the `jemalloc` feature).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Logbook operator (the same options as `logbook operator`).
#[derive(Debug, Parser)]
#[command(
    name = "logbook-operator",
    version,
    about,
    long_about = None,
    after_help = "`logbook-operator restore-fetch --help`: the init container of a restore."
)]
struct OperatorCli {
    #[command(flatten)]
    log: logbook_operator::logging::LogArgs,
    #[command(flatten)]
    args: logbook_operator::operator_cli::OperatorArgs,
}

/// The init container of a cluster created from a backup.
#[derive(Debug, Parser)]
#[command(name = "logbook-operator restore-fetch", version, long_about = None)]
struct RestoreFetchCli {
    #[command(flatten)]
    log: logbook_operator::logging::LogArgs,
    #[command(flatten)]
    args: logbook_operator::restore_fetch_cli::RestoreFetchArgs,
}

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let first = argv.get(1).cloned();
    if first.as_deref() == Some("restore-fetch".as_ref()) {
        argv.remove(1);
        let cli = RestoreFetchCli::parse_from(argv);
        return run(&cli.log, |out| {
            logbook_operator::restore_fetch_cli::run(cli.args, out)
        });
    }
    if first.as_deref() == Some("operator".as_ref()) {
        argv.remove(1);
    }
    let cli = OperatorCli::parse_from(argv);
    run(&cli.log, |out| {
        logbook_operator::operator_cli::run(cli.args, out)
    })
}

/// Sets up logging, then runs `command` with standard output.
fn run(
    log: &logbook_operator::logging::LogArgs,
    command: impl FnOnce(&mut dyn std::io::Write) -> logbook_operator::cli_error::Result<()>,
) -> ExitCode {
    if let Err(err) = logbook_operator::logging::init(log) {
        eprintln!("logbook-operator: {err}");
        return ExitCode::from(2);
    }
    let mut stdout = std::io::stdout().lock();
    match command(&mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report("logbook-operator"),
    }
}
