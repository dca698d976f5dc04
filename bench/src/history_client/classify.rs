//! How one operation ended, from what the server said (or did not say):
//! the rules that turn replies into the [`Outcome`]s the checkers trust.
//!
//! * An error reply (`READONLY`, `CLUSTERDOWN`, `TRYAGAIN`, `MOVED`/`ASK`
//!   left after the client's redirections, `LOADING`, `MASTERDOWN`,
//!   `NOREPLICAS`, `NOAUTH`, `OOM`, `WRONGTYPE`...) is `Fail`: Valkey
//!   checks all of these before it executes `RPUSH`, `SET`, `GET` or
//!   `LRANGE`, none of which can half-happen, so the operation did not
//!   happen.
//! * A command never sent (no primary known, no connection opened or
//!   authenticated) is `Fail` too.
//! * A command sent whose reply was never read (a timeout, a broken
//!   connection) is `Unknown`: it may have been executed.
//! * A write the server applied is `Ok` only once `WAIT` says enough
//!   replicas have it (when the run waits); an applied write whose `WAIT`
//!   fell short, failed or timed out is `Unknown`: it happened on the
//!   primary but carries no promise, and a failover may take it back.
//! * A reply that cannot be read as the operation's result is `Unknown`:
//!   the command ran, but what it did or saw is not known.
//!
//! Pure: no I/O, no clock. It must not retry or route anything.

use std::time::Duration;

use logbook_history::{Function, Outcome};
use redis::{RedisError, Value};

use crate::writer::Failure;

/// What came back for one command sent to one server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// A reply that is not an error.
    Value(Value),
    /// An error reply: refused before being executed. The code and detail.
    Refused(String),
    /// Never sent: no primary, no connection. Why.
    NotSent(String),
    /// Sent, but no reply was read. Why.
    Lost(String),
}

impl Reply {
    /// The reply to a query on one connection; `None` when it did not
    /// answer within `limit`.
    pub(crate) fn from_query(reply: Option<Result<Value, RedisError>>, limit: Duration) -> Reply {
        match reply {
            Some(Ok(value)) => Reply::Value(value),
            Some(Err(err)) => match err.code() {
                Some(code) => Reply::Refused(match err.detail() {
                    Some(detail) => format!("{code} {detail}"),
                    None => code.to_owned(),
                }),
                // No code: the error is the client's (I/O), not a reply.
                None => Reply::Lost(err.to_string()),
            },
            None => Reply::Lost(format!("no reply within {} ms", limit.as_millis())),
        }
    }

    /// The reply a [`ClusterClient`](crate::cluster_client::ClusterClient)
    /// routed command got.
    pub(crate) fn from_route(reply: Result<Value, Failure>) -> Reply {
        match reply {
            Ok(value) => Reply::Value(value),
            Err(Failure::NoPrimary) => Reply::NotSent("no primary serves the slot".to_owned()),
            Err(Failure::Connect) => Reply::NotSent("cannot connect".to_owned()),
            Err(Failure::Rejected(code)) => Reply::Refused(code),
            Err(Failure::TimedOut) => Reply::Lost("timed out".to_owned()),
            Err(Failure::Io) => Reply::Lost("connection broken".to_owned()),
        }
    }
}

/// Where an operation stands after its own command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// It is over.
    Ended(Outcome),
    /// The server applied the write; whether it is acknowledged is for
    /// `WAIT` to say ([`after_wait`]), or, when the run does not wait, it is.
    Applied,
}

/// What the operation's own command (`RPUSH`, `LRANGE`, `SET`, `GET`)
/// got back.
pub(crate) fn after_command(f: &Function, reply: Reply) -> Step {
    let value = match reply {
        Reply::Value(value) => value,
        Reply::Refused(reason) => return Step::Ended(Outcome::fail(reason)),
        Reply::NotSent(reason) => return Step::Ended(Outcome::fail(reason)),
        Reply::Lost(reason) => return Step::Ended(Outcome::unknown(reason)),
    };
    let unreadable = |value: &Value| {
        Step::Ended(Outcome::unknown(format!(
            "unexpected reply to {}: {value:?}",
            f.name()
        )))
    };
    match f {
        Function::Append { .. } => match value {
            Value::Int(_) => Step::Applied,
            other => unreadable(&other),
        },
        Function::Write { .. } => match value {
            Value::Okay => Step::Applied,
            Value::SimpleString(ref s) if s == "OK" => Step::Applied,
            other => unreadable(&other),
        },
        Function::ReadList { .. } => match &value {
            Value::Array(items) => match items.iter().map(number).collect::<Option<Vec<u64>>>() {
                Some(values) => Step::Ended(Outcome::list(values)),
                None => unreadable(&value),
            },
            _ => unreadable(&value),
        },
        Function::ReadRegister { .. } => match &value {
            Value::Nil => Step::Ended(Outcome::register(None)),
            other => match number(other) {
                Some(n) => Step::Ended(Outcome::register(Some(n))),
                None => unreadable(&value),
            },
        },
    }
}

/// What `WAIT <replicas> <ms>` after an applied write got back.
pub(crate) fn after_wait(reply: Reply, replicas: u32) -> Outcome {
    match reply {
        Reply::Value(Value::Int(n)) if n >= i64::from(replicas) => Outcome::done(),
        Reply::Value(Value::Int(n)) => {
            Outcome::unknown(format!("applied; WAIT: {n} of {replicas} replicas"))
        }
        Reply::Value(other) => Outcome::unknown(format!("applied; WAIT replied {other:?}")),
        Reply::Refused(reason) => Outcome::unknown(format!("applied; WAIT refused: {reason}")),
        Reply::NotSent(reason) | Reply::Lost(reason) => {
            Outcome::unknown(format!("applied; no WAIT reply: {reason}"))
        }
    }
}

/// A value written by the workload: a decimal `u64` in a bulk or simple
/// string (or an integer, as RESP may send one).
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::SimpleString(text) => text.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn append() -> Function {
        Function::Append {
            key: "k".into(),
            value: 1,
        }
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn server_error(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some(detail.to_owned()))
    }

    #[test]
    fn error_replies_fail_and_silence_is_unknown() {
        let limit = Duration::from_millis(250);
        let refused = Reply::from_query(Some(Err(server_error("READONLY", "no writes"))), limit);
        assert_eq!(refused, Reply::Refused("READONLY no writes".into()));
        assert_eq!(
            after_command(&append(), refused),
            Step::Ended(Outcome::fail("READONLY no writes"))
        );
        let io: RedisError = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert!(matches!(
            after_command(&append(), Reply::from_query(Some(Err(io)), limit)),
            Step::Ended(Outcome::Unknown(_))
        ));
        assert_eq!(
            after_command(&append(), Reply::from_query(None, limit)),
            Step::Ended(Outcome::unknown("no reply within 250 ms"))
        );
        let cases = [
            (Failure::NoPrimary, true),
            (Failure::Connect, true),
            (Failure::Rejected("CLUSTERDOWN".into()), true),
            (Failure::Rejected("too many redirections".into()), true),
            (Failure::TimedOut, false),
            (Failure::Io, false),
        ];
        for (failure, fails) in cases {
            let step = after_command(&append(), Reply::from_route(Err(failure.clone())));
            let Step::Ended(outcome) = step else {
                panic!("{failure:?} ended nothing")
            };
            assert_eq!(matches!(outcome, Outcome::Fail(_)), fails, "{failure:?}");
            assert_eq!(
                matches!(outcome, Outcome::Unknown(_)),
                !fails,
                "{failure:?}"
            );
        }
    }

    #[test]
    fn writes_are_applied_and_reads_return_what_they_saw() {
        let write = Function::Write {
            key: "r".into(),
            value: 3,
        };
        let list = Function::ReadList { key: "k".into() };
        let register = Function::ReadRegister { key: "r".into() };
        let ok = |f: &Function, v: Value| after_command(f, Reply::Value(v));
        assert_eq!(ok(&append(), Value::Int(4)), Step::Applied);
        assert_eq!(ok(&write, Value::Okay), Step::Applied);
        assert_eq!(ok(&write, Value::SimpleString("OK".into())), Step::Applied);
        assert!(matches!(
            ok(&write, Value::Nil),
            Step::Ended(Outcome::Unknown(_))
        ));
        assert_eq!(
            ok(&list, Value::Array(vec![bulk("5"), bulk("2")])),
            Step::Ended(Outcome::list(vec![5, 2]))
        );
        assert_eq!(
            ok(&list, Value::Array(vec![])),
            Step::Ended(Outcome::list(vec![]))
        );
        assert!(matches!(
            ok(&list, Value::Array(vec![bulk("x")])),
            Step::Ended(Outcome::Unknown(_))
        ));
        assert_eq!(
            ok(&register, Value::Nil),
            Step::Ended(Outcome::register(None))
        );
        assert_eq!(
            ok(&register, bulk("17")),
            Step::Ended(Outcome::register(Some(17)))
        );
        assert!(matches!(
            ok(&register, bulk("-1")),
            Step::Ended(Outcome::Unknown(_))
        ));
    }

    #[test]
    fn only_enough_replicas_acknowledge_an_applied_write() {
        assert_eq!(after_wait(Reply::Value(Value::Int(1)), 1), Outcome::done());
        assert_eq!(after_wait(Reply::Value(Value::Int(2)), 1), Outcome::done());
        for reply in [
            Reply::Value(Value::Int(0)),
            Reply::Value(Value::Nil),
            Reply::Refused("ERR".into()),
            Reply::Lost("timed out".into()),
            Reply::NotSent("cannot connect".into()),
        ] {
            assert!(
                matches!(after_wait(reply.clone(), 1), Outcome::Unknown(_)),
                "{reply:?}"
            );
        }
    }
}
