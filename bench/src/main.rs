//! The `logbook-bench` binary: parses the command line, sets up logging
//! (the operator some benches run in-process logs through it) and hands
//! the bench to the library.

use std::process::ExitCode;

use clap::Parser;
use logbook_bench::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = logbook::logging::init(&cli.log) {
        eprintln!("logbook-bench: {err}");
        return ExitCode::from(2);
    }
    let mut stdout = std::io::stdout().lock();
    match run(cli.command, &cli.results, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain: the bench's context, then each cause.
            let mut message = format!("logbook-bench: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
