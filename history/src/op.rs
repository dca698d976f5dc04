//! The vocabulary of a recorded history: one [`Op`] per client call, the
//! [`Function`] it asked for, the [`Outcome`] it got, and the validated
//! [`History`] the checkers read.
//!
//! This module owns the shape of the data and the rules every history must
//! follow before it is checked (completions after invocations, results that
//! match their function, append values unique across the history). Breaking
//! one of them is the recorder's fault, not the database's, so it is a
//! [`HistoryError`], never an anomaly. Nothing here judges the database.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Nanoseconds on the one monotonic clock every recorded time is read from.
pub type Nanos = u64;

/// Where an operation sits in its [`History`]: its index, in the order the
/// operations were invoked on the recorder (or listed in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a client asked the database to do. Persisted: variants are never
/// renamed or reordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Function {
    /// List workload: `RPUSH key value` then `WAIT`; acknowledged means the
    /// replicas the client waited for have it. `value` is unique across the
    /// whole history, which is what lets a read be traced to its appends.
    Append {
        /// The list.
        key: String,
        /// The appended value.
        value: u64,
    },
    /// List workload: `LRANGE key 0 -1`; returns [`Returned::List`].
    ReadList {
        /// The list.
        key: String,
    },
    /// Register workload: `SET key value`.
    Write {
        /// The register.
        key: String,
        /// The written value.
        value: u64,
    },
    /// Register workload: `GET key`; returns [`Returned::Register`].
    ReadRegister {
        /// The register.
        key: String,
    },
}

impl Function {
    /// The key the function touches.
    pub fn key(&self) -> &str {
        match self {
            Self::Append { key, .. }
            | Self::ReadList { key }
            | Self::Write { key, .. }
            | Self::ReadRegister { key } => key,
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Append { .. } => "append",
            Self::ReadList { .. } => "read-list",
            Self::Write { .. } => "write",
            Self::ReadRegister { .. } => "read-register",
        }
    }

    /// Whether the function only reads.
    pub fn is_read(&self) -> bool {
        match self {
            Self::ReadList { .. } | Self::ReadRegister { .. } => true,
            Self::Append { .. } | Self::Write { .. } => false,
        }
    }

    /// Whether the function belongs to the list workload.
    pub fn is_list(&self) -> bool {
        match self {
            Self::Append { .. } | Self::ReadList { .. } => true,
            Self::Write { .. } | Self::ReadRegister { .. } => false,
        }
    }

    /// The result kind an `Ok` outcome of this function must carry.
    fn expected_result(&self) -> &'static str {
        match self {
            Self::Append { .. } | Self::Write { .. } => "done",
            Self::ReadList { .. } => "list",
            Self::ReadRegister { .. } => "register",
        }
    }
}

/// What an `Ok` operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Returned {
    /// A write or append was acknowledged.
    Done,
    /// The whole list a `ReadList` saw, head first.
    List(Vec<u64>),
    /// What a `ReadRegister` saw; `None` when the key did not exist.
    Register(Option<u64>),
}

impl Returned {
    fn kind(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::List(_) => "list",
            Self::Register(_) => "register",
        }
    }
}

/// How an operation ended, as far as the client can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened, between its invocation and its completion.
    Ok(Returned),
    /// It definitely did not happen (the server refused it: `READONLY`,
    /// `NOREPLICAS`, ...). The string is the reason, for reports.
    Fail(String),
    /// The client cannot tell (timeout, broken connection): it may have
    /// happened at any instant after its invocation, or never.
    Unknown(String),
}

impl Outcome {
    /// A write or append was acknowledged.
    pub fn done() -> Self {
        Self::Ok(Returned::Done)
    }

    /// A list read returned `values`.
    pub fn list(values: Vec<u64>) -> Self {
        Self::Ok(Returned::List(values))
    }

    /// A register read returned `value`.
    pub fn register(value: Option<u64>) -> Self {
        Self::Ok(Returned::Register(value))
    }

    /// The server refused.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self::Fail(reason.into())
    }

    /// The client cannot tell.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self::Unknown(reason.into())
    }
}

/// One client call. Serialized one per line, a history is JSON lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client (or connection) that made the call. A client has at most
    /// one call outstanding; a client whose call ended `Unknown` should go
    /// on under a new id, as in Jepsen, though nothing here relies on it.
    pub process: u64,
    /// What was asked.
    pub f: Function,
    /// When the call was sent.
    pub invoked_at: Nanos,
    /// When the answer came back. Required for `Ok`; ignored for `Fail`
    /// and `Unknown`, whose effect (none, or any time after invocation)
    /// does not depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Nanos>,
    /// How it ended.
    pub outcome: Outcome,
    /// The server (`host:port`) that answered, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl Op {
    /// The list an `Ok` list read returned.
    pub fn ok_list(&self) -> Option<&[u64]> {
        match (&self.f, &self.outcome) {
            (Function::ReadList { .. }, Outcome::Ok(Returned::List(values))) => Some(values),
            _ => None,
        }
    }

    /// What an `Ok` register read returned.
    pub fn ok_register(&self) -> Option<Option<u64>> {
        match (&self.f, &self.outcome) {
            (Function::ReadRegister { .. }, Outcome::Ok(Returned::Register(value))) => Some(*value),
            _ => None,
        }
    }
}

/// A history that breaks the rules every checked history must follow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryError {
    /// The completion is earlier than the invocation: the times were not
    /// read from one monotonic clock.
    #[error("operation {op}: completed at {completed} ns, before its invocation at {invoked} ns")]
    CompletedBeforeInvoked {
        /// The operation.
        op: OpId,
        /// Its invocation time.
        invoked: Nanos,
        /// Its completion time.
        completed: Nanos,
    },
    /// An `Ok` operation without a completion time cannot be placed in
    /// real time.
    #[error("operation {op}: ok without a completion time")]
    MissingCompletion {
        /// The operation.
        op: OpId,
    },
    /// The result does not belong to the function (a list for a `GET`).
    #[error("operation {op}: a {function} returned a {returned} result, expected {expected}")]
    ResultMismatch {
        /// The operation.
        op: OpId,
        /// The function's name.
        function: &'static str,
        /// The kind of result it carried.
        returned: &'static str,
        /// The kind it should have carried.
        expected: &'static str,
    },
    /// Two appends share a value, so a read of it cannot be traced to one
    /// append: the list checker's founding assumption is broken.
    #[error(
        "append value {value} is used by operations {first} and {second}; values must be unique"
    )]
    DuplicateAppendValue {
        /// The value.
        value: u64,
        /// The first append using it.
        first: OpId,
        /// Another append using it.
        second: OpId,
    },
}

/// Checks the rules that concern one operation alone.
pub(crate) fn check_op(id: OpId, op: &Op) -> Result<(), HistoryError> {
    if let Some(completed) = op.completed_at
        && completed < op.invoked_at
    {
        return Err(HistoryError::CompletedBeforeInvoked {
            op: id,
            invoked: op.invoked_at,
            completed,
        });
    }
    if let Outcome::Ok(returned) = &op.outcome {
        if op.completed_at.is_none() {
            return Err(HistoryError::MissingCompletion { op: id });
        }
        let expected = op.f.expected_result();
        if returned.kind() != expected {
            return Err(HistoryError::ResultMismatch {
                op: id,
                function: op.f.name(),
                returned: returned.kind(),
                expected,
            });
        }
    }
    Ok(())
}

/// A validated list of operations, indexed by [`OpId`].
///
/// # Guarantees
///
/// Every operation passed `check_op`'s rules and no two appends share a
/// value. Deserializing validates too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Op>", into = "Vec<Op>")]
pub struct History {
    ops: Vec<Op>,
}

impl History {
    /// Validates `ops` into a history (for example the lines of a saved
    /// JSON-lines file, each deserialized as an [`Op`]).
    ///
    /// # Errors
    ///
    /// The first broken rule, as a [`HistoryError`].
    pub fn new(ops: Vec<Op>) -> Result<Self, HistoryError> {
        let mut appended: HashMap<u64, OpId> = HashMap::new();
        for (index, op) in ops.iter().enumerate() {
            let id = OpId(index);
            check_op(id, op)?;
            if let Function::Append { value, .. } = &op.f
                && let Some(first) = appended.insert(*value, id)
            {
                return Err(HistoryError::DuplicateAppendValue {
                    value: *value,
                    first,
                    second: id,
                });
            }
        }
        Ok(Self { ops })
    }

    /// The operations, in `OpId` order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// One operation.
    pub fn get(&self, id: OpId) -> Option<&Op> {
        self.ops.get(id.0)
    }

    /// The operations with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (OpId, &Op)> {
        self.ops.iter().enumerate().map(|(i, op)| (OpId(i), op))
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Gives the operations back.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

impl TryFrom<Vec<Op>> for History {
    type Error = HistoryError;

    fn try_from(ops: Vec<Op>) -> Result<Self, Self::Error> {
        Self::new(ops)
    }
}

impl From<History> for Vec<Op> {
    fn from(history: History) -> Self {
        history.ops
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn append(key: &str, value: u64, at: Nanos) -> Op {
        Op {
            process: 1,
            f: Function::Append {
                key: key.into(),
                value,
            },
            invoked_at: at,
            completed_at: Some(at + 1),
            outcome: Outcome::done(),
            server: Some("10.0.0.1:6379".into()),
        }
    }

    #[test]
    fn json_lines_round_trip_keeps_every_field() {
        let ops = vec![
            append("k", 1, 10),
            Op {
                process: 2,
                f: Function::ReadList { key: "k".into() },
                invoked_at: 20,
                completed_at: Some(30),
                outcome: Outcome::list(vec![1]),
                server: None,
            },
            Op {
                process: 3,
                f: Function::ReadRegister { key: "r".into() },
                invoked_at: 20,
                completed_at: None,
                outcome: Outcome::unknown("timeout"),
                server: None,
            },
        ];
        let lines: Vec<String> = ops
            .iter()
            .map(|op| serde_json::to_string(op).unwrap())
            .collect();
        assert!(lines.iter().all(|line| !line.contains('\n')));
        let back: Vec<Op> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(back, ops);
        let history = History::new(back).unwrap();
        let whole = serde_json::to_string(&history).unwrap();
        assert_eq!(serde_json::from_str::<History>(&whole).unwrap(), history);
    }

    #[test]
    fn malformed_histories_are_refused_with_the_op() {
        let mut early = append("k", 1, 10);
        early.completed_at = Some(5);
        assert!(matches!(
            History::new(vec![early]),
            Err(HistoryError::CompletedBeforeInvoked { op: OpId(0), .. })
        ));

        let mut mismatched = append("k", 1, 10);
        mismatched.outcome = Outcome::register(Some(1));
        assert!(matches!(
            History::new(vec![mismatched]),
            Err(HistoryError::ResultMismatch { op: OpId(0), .. })
        ));

        let mut open = append("k", 1, 10);
        open.completed_at = None;
        assert!(matches!(
            History::new(vec![open]),
            Err(HistoryError::MissingCompletion { op: OpId(0) })
        ));

        assert_eq!(
            History::new(vec![append("a", 7, 1), append("b", 7, 2)]),
            Err(HistoryError::DuplicateAppendValue {
                value: 7,
                first: OpId(0),
                second: OpId(1)
            })
        );
        let duplicated = r#"[{"process":1,"f":{"f":"append","key":"a","value":7},"invoked_at":1,"completed_at":2,"outcome":{"ok":"done"}},{"process":1,"f":{"f":"append","key":"a","value":7},"invoked_at":3,"completed_at":4,"outcome":{"ok":"done"}}]"#;
        assert!(serde_json::from_str::<History>(duplicated).is_err());
    }
}
