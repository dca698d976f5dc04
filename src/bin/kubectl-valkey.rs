//! `kubectl-valkey`: the kubectl plugin. kubectl finds it on `PATH` and
//! runs it for `kubectl valkey ...`; everything is in `logbook::plugin`.

use std::process::ExitCode;

fn main() -> ExitCode {
    logbook::plugin::main()
}
