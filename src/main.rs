//! The `logbook` binary: parses the command line, sets up logging (see
//! `logging.rs`) and hands the command to the library.

use std::process::ExitCode;

use clap::Parser;
use logbook::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = logbook::logging::init(&cli.log) {
        eprintln!("logbook: {err}");
        return ExitCode::from(2);
    }
    let mut stdout = std::io::stdout().lock();
    match run(cli, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report("logbook"),
    }
}
