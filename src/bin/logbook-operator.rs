//! `logbook-operator`: the operator alone (what `logbook operator` runs),
//! without the tools beside it in `logbook` (localkube, replay, the
//! plugin): a 29 MB executable rather than 42 MB, and about 10 MiB less
//! resident with 100 idle clusters (docs/benchmarks.md). The image's
//! entrypoint; a first argument `operator` is accepted and ignored, so
//! the chart's arguments (`operator --journal=configmap ...`) run it or
//! `logbook` alike.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc gives memory freed after the start-up peak back to the system
/// (its pages decay after about ten seconds); glibc's allocator keeps
/// most of it (docs/benchmarks.md, "Operator memory while idle").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Logbook operator (the same options as `logbook operator`).
#[derive(Debug, Parser)]
#[command(name = "logbook-operator", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    log: logbook::logging::LogArgs,
    #[command(flatten)]
    args: logbook::operator_cli::OperatorArgs,
}

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "operator") {
        argv.remove(1);
    }
    let cli = Cli::parse_from(argv);
    if let Err(err) = logbook::logging::init(&cli.log) {
        eprintln!("logbook-operator: {err}");
        return ExitCode::from(2);
    }
    let mut stdout = std::io::stdout().lock();
    match logbook::operator_cli::run(cli.args, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report("logbook-operator"),
    }
}
