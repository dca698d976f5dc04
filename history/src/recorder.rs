//! [`Recorder`]: what a client holds while it runs a workload, turning its
//! calls into a [`History`].
//!
//! The client says when it sends a call ([`Recorder::invoke`]) and when the
//! answer comes back ([`Recorder::complete`]); the recorder reads no clock
//! (times are parameters) and does no I/O. Calls still open when the run
//! ends become `Unknown`: the client never learnt whether they happened.

use thiserror::Error;

use crate::op::{Function, History, HistoryError, Nanos, Op, OpId, Outcome, check_op};

/// The reason an open call is closed by [`Recorder::finish`].
pub const NEVER_COMPLETED: &str = "never completed";

/// A completion the recorder refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The id was not handed out by this recorder.
    #[error("operation {0} was never invoked on this recorder")]
    UnknownOp(OpId),
    /// The call was completed already; an answer arrives once.
    #[error("operation {0} was completed already")]
    AlreadyCompleted(OpId),
    /// The completion breaks a history rule (time, result kind).
    #[error(transparent)]
    Invalid(#[from] HistoryError),
}

/// Collects one run's calls.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    ops: Vec<Op>,
    /// Parallel to `ops`: whether the call still awaits its answer.
    open: Vec<bool>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `process` sent `f` at `at`.
    pub fn invoke(&mut self, process: u64, f: Function, at: Nanos) -> OpId {
        let id = OpId(self.ops.len());
        self.ops.push(Op {
            process,
            f,
            invoked_at: at,
            completed_at: None,
            // Until the answer arrives the call is exactly this.
            outcome: Outcome::unknown(NEVER_COMPLETED),
            server: None,
        });
        self.open.push(true);
        id
    }

    /// Records the answer to `id`, received at `at`.
    ///
    /// # Errors
    ///
    /// [`RecordError::UnknownOp`], [`RecordError::AlreadyCompleted`], or
    /// [`RecordError::Invalid`] when `at` is before the invocation or the
    /// result does not match the function; the call is then left open.
    pub fn complete(&mut self, id: OpId, outcome: Outcome, at: Nanos) -> Result<(), RecordError> {
        let open = self.open.get_mut(id.0).ok_or(RecordError::UnknownOp(id))?;
        if !*open {
            return Err(RecordError::AlreadyCompleted(id));
        }
        let op = self.ops.get_mut(id.0).ok_or(RecordError::UnknownOp(id))?;
        let candidate = Op {
            completed_at: Some(at),
            outcome,
            ..op.clone()
        };
        check_op(id, &candidate)?;
        *op = candidate;
        *open = false;
        Ok(())
    }

    /// Notes which server (`host:port`) answered `id`.
    ///
    /// # Errors
    ///
    /// [`RecordError::UnknownOp`].
    pub fn served_by(&mut self, id: OpId, server: impl Into<String>) -> Result<(), RecordError> {
        let op = self.ops.get_mut(id.0).ok_or(RecordError::UnknownOp(id))?;
        op.server = Some(server.into());
        Ok(())
    }

    /// The calls still awaiting an answer.
    pub fn open_ops(&self) -> impl Iterator<Item = OpId> + '_ {
        self.open
            .iter()
            .enumerate()
            .filter(|(_, open)| **open)
            .map(|(i, _)| OpId(i))
    }

    /// Ends the run. Open calls stay `Unknown` ([`NEVER_COMPLETED`]).
    ///
    /// # Errors
    ///
    /// [`HistoryError::DuplicateAppendValue`] when two appends used one
    /// value (the only rule not checked call by call).
    pub fn finish(self) -> Result<History, HistoryError> {
        History::new(self.ops)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn append(value: u64) -> Function {
        Function::Append {
            key: "k".into(),
            value,
        }
    }

    #[test]
    fn records_calls_and_leaves_unfinished_ones_unknown() {
        let mut recorder = Recorder::new();
        let a = recorder.invoke(1, append(1), 10);
        let b = recorder.invoke(2, append(2), 11);
        recorder.complete(a, Outcome::done(), 20).unwrap();
        recorder.served_by(a, "10.0.0.1:6379").unwrap();
        assert_eq!(recorder.open_ops().collect::<Vec<_>>(), vec![b]);
        let history = recorder.finish().unwrap();
        let ops = history.ops();
        assert_eq!(ops[0].completed_at, Some(20));
        assert_eq!(ops[0].server.as_deref(), Some("10.0.0.1:6379"));
        assert_eq!(ops[1].outcome, Outcome::unknown(NEVER_COMPLETED));
        assert_eq!(ops[1].completed_at, None);
    }

    #[test]
    fn refuses_bad_completions_and_keeps_the_call_open() {
        let mut recorder = Recorder::new();
        let a = recorder.invoke(1, append(1), 10);
        assert_eq!(
            recorder.complete(OpId(9), Outcome::done(), 20),
            Err(RecordError::UnknownOp(OpId(9)))
        );
        assert!(matches!(
            recorder.complete(a, Outcome::done(), 5),
            Err(RecordError::Invalid(
                HistoryError::CompletedBeforeInvoked { .. }
            ))
        ));
        assert!(matches!(
            recorder.complete(a, Outcome::list(vec![]), 20),
            Err(RecordError::Invalid(HistoryError::ResultMismatch { .. }))
        ));
        recorder.complete(a, Outcome::fail("READONLY"), 20).unwrap();
        assert_eq!(
            recorder.complete(a, Outcome::done(), 21),
            Err(RecordError::AlreadyCompleted(a))
        );
    }

    #[test]
    fn finish_refuses_reused_append_values() {
        let mut recorder = Recorder::new();
        recorder.invoke(1, append(1), 10);
        recorder.invoke(1, append(1), 12);
        assert!(matches!(
            recorder.finish(),
            Err(HistoryError::DuplicateAppendValue { value: 1, .. })
        ));
    }
}
