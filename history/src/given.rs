//! Test-only: builds small histories by hand, one line per operation with
//! explicit times, so a test reads as the history it checks.

use crate::list::check_list;
use crate::op::{Function, History, Nanos, Op, OpId, Outcome};
use crate::register::{RegisterConfig, RegisterReport, check_registers};
use crate::report::ListReport;

/// A history under construction; each method returns the op's id.
#[derive(Debug, Default)]
pub(crate) struct Given {
    pub(crate) ops: Vec<Op>,
}

impl Given {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn push(
        &mut self,
        f: Function,
        invoked: Nanos,
        completed: Option<Nanos>,
        outcome: Outcome,
    ) -> OpId {
        let id = OpId(self.ops.len());
        self.ops.push(Op {
            process: id.0 as u64,
            f,
            invoked_at: invoked,
            completed_at: completed,
            outcome,
            server: None,
        });
        id
    }

    fn append_f(key: &str, value: u64) -> Function {
        Function::Append {
            key: key.into(),
            value,
        }
    }

    pub(crate) fn append(&mut self, key: &str, value: u64, from: Nanos, to: Nanos) -> OpId {
        self.push(Self::append_f(key, value), from, Some(to), Outcome::done())
    }

    pub(crate) fn append_unknown(&mut self, key: &str, value: u64, from: Nanos) -> OpId {
        self.push(
            Self::append_f(key, value),
            from,
            None,
            Outcome::unknown("timeout"),
        )
    }

    pub(crate) fn append_failed(&mut self, key: &str, value: u64, from: Nanos, to: Nanos) -> OpId {
        self.push(
            Self::append_f(key, value),
            from,
            Some(to),
            Outcome::fail("NOREPLICAS"),
        )
    }

    pub(crate) fn read(&mut self, key: &str, values: &[u64], from: Nanos, to: Nanos) -> OpId {
        self.push(
            Function::ReadList { key: key.into() },
            from,
            Some(to),
            Outcome::list(values.to_vec()),
        )
    }

    pub(crate) fn register_write(&mut self, key: &str, value: u64, from: Nanos, to: Nanos) -> OpId {
        self.push(
            Function::Write {
                key: key.into(),
                value,
            },
            from,
            Some(to),
            Outcome::done(),
        )
    }

    pub(crate) fn register_write_unknown(&mut self, key: &str, value: u64, from: Nanos) -> OpId {
        self.push(
            Function::Write {
                key: key.into(),
                value,
            },
            from,
            None,
            Outcome::unknown("timeout"),
        )
    }

    pub(crate) fn register_write_failed(
        &mut self,
        key: &str,
        value: u64,
        from: Nanos,
        to: Nanos,
    ) -> OpId {
        self.push(
            Function::Write {
                key: key.into(),
                value,
            },
            from,
            Some(to),
            Outcome::fail("READONLY"),
        )
    }

    pub(crate) fn register_read(
        &mut self,
        key: &str,
        value: Option<u64>,
        from: Nanos,
        to: Nanos,
    ) -> OpId {
        self.push(
            Function::ReadRegister { key: key.into() },
            from,
            Some(to),
            Outcome::register(value),
        )
    }

    pub(crate) fn register_read_unknown(&mut self, key: &str, from: Nanos) -> OpId {
        self.push(
            Function::ReadRegister { key: key.into() },
            from,
            None,
            Outcome::unknown("connection reset"),
        )
    }

    pub(crate) fn history(&self) -> History {
        History::new(self.ops.clone()).expect("a valid test history")
    }

    pub(crate) fn check(&self) -> ListReport {
        check_list(&self.history())
    }

    pub(crate) fn check_registers(&self) -> RegisterReport {
        check_registers(&self.history(), &RegisterConfig::default())
    }
}
