//! Checks histories of operations that clients recorded against Valkey.
//!
//! A client running a workload records each call it makes with a
//! [`Recorder`]: when it was sent, when (and whether) it was answered, what
//! came back, which server answered. The resulting [`History`] can be
//! saved (one [`Op`] per JSON line) and checked later by two checkers:
//!
//! - [`check_list`], for the list workload (`RPUSH` + `WAIT`, `LRANGE`):
//!   reports every anomaly a list of unique appended values can show
//!   ([`AnomalyKind`]): lost acknowledged appends, stale reads, duplicates,
//!   phantoms, reads of failed appends, reads that disagree on the order,
//!   lists that shrink, and orders that contradict real time.
//! - [`check_registers`], for the register workload (`SET`, `GET`): decides
//!   whether each key's history is linearizable.
//!
//! # What it promises
//!
//! Pure and total: no I/O, no clock, no threads; any validated history
//! gives a report, and a malformed one is refused up front
//! ([`HistoryError`]). An operation whose outcome is unknown is never held
//! against the database: it may have happened at any time after its
//! invocation, or never. A verdict is never stronger than its evidence: a
//! loss is judged only against a read late enough to see it, and a
//! linearizability search that hits its bound says
//! [`Verdict::Unknown`], not "linearizable".
//!
//! # Where the ideas come from
//!
//! - Jepsen's Elle checks transactional histories by the dependencies
//!   between transactions; its list-append workload makes every appended
//!   value unique so that each read reveals the order of the list it saw.
//!   The list checker is that idea for single-key, single-operation
//!   transactions, with the read-only checks (prefix compatibility,
//!   duplicates, aborted and phantom values) and the real-time ones.
//! - Jepsen's Knossos and Anish Athalye's Porcupine check linearizability
//!   of a history against a sequential model; Porcupine partitions the
//!   history by key first, as registers are independent.
//! - Wing and Gong's search tries to order operations one at a time,
//!   choosing only among those no unplaced operation must precede, and
//!   backtracks on a contradiction; Gavin Lowe's refinement remembers each
//!   (set of placed operations, model state) reached so no configuration is
//!   explored twice. The register checker is that search, iterative and
//!   bounded, written here from the published descriptions.
//!
//! # Modules
//!
//! - [`op`]: operations, outcomes and the validated history.
//! - [`recorder`]: building a history while the client runs.
//! - [`list`]: the list-append checker, one file per group of anomalies.
//! - [`register`]: the linearizability checker.
//! - [`report`]: the list report and the counts both reports share.

pub mod list;
pub mod op;
pub mod recorder;
pub mod register;
pub mod report;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod given;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod simulation_tests;

pub use list::check_list;
pub use op::{Function, History, HistoryError, Nanos, Op, OpId, Outcome, Returned};
pub use recorder::{NEVER_COMPLETED, RecordError, Recorder};
pub use register::{
    DEFAULT_MAX_STATES, KeyVerdict, Prefix, RegisterConfig, RegisterReport, Verdict, Violation,
    check_registers,
};
pub use report::{Anomaly, AnomalyKind, FinalRead, KeySummary, ListReport, OpCounts};
