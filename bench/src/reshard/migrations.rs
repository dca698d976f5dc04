//! `CLUSTER GETSLOTMIGRATIONS` (Valkey ≥ 9.0, Atomic Slot Migration): the
//! parser of its reply, how a bench finds the job it started, and what
//! that job's state means. Pure: no I/O.
//!
//! The reply is an array of jobs, each a map (RESP2: a flat array of
//! alternating field and value) of `name`, `operation` (`EXPORT` or
//! `IMPORT`), `slot_ranges` (`"0-999 2000-2099"`), `target_node`,
//! `source_node`, `state`, `message` and counters this bench ignores. The
//! job's name is the server's, not the caller's, so a job is recognized by
//! what it moves: its operation, target and slot ranges, and a name that
//! was not listed before the migration was issued (finished jobs stay
//! listed, and an earlier job may have moved the same slots).

use std::collections::BTreeSet;

use redis::Value;

use super::plan::{Ranges, normalize};

/// Why a `GETSLOTMIGRATIONS` reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed CLUSTER GETSLOTMIGRATIONS reply: {0}")]
pub struct MigrationsReplyError(pub String);

/// Which end of a migration the answering node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// It gives the slots (the source, where `MIGRATESLOTS` was sent).
    Export,
    /// It takes them.
    Import,
}

/// A job's state. Valkey names its in-progress stages differently on
/// each end and between versions (`waiting-to-snapshot`, `snapshotting`,
/// `replicating`, `waiting-to-pause`, `failover-paused`,
/// `failover-granted`, ...), so every name but the three terminal ones is
/// in progress, kept for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Not finished: the stage Valkey names.
    InProgress(String),
    /// Finished: the slots are the target's.
    Success,
    /// Finished without moving them, or (see [`AMBIGUOUS_FAILURE`]) not
    /// known.
    Failed,
    /// Cancelled (`CLUSTER CANCELSLOTMIGRATIONS`, or a failover).
    Cancelled,
}

impl JobState {
    fn parse(text: &str) -> JobState {
        match text {
            "success" => JobState::Success,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => JobState::InProgress(other.to_owned()),
        }
    }

    /// Whether the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        match self {
            JobState::InProgress(_) => false,
            JobState::Success | JobState::Failed | JobState::Cancelled => true,
        }
    }
}

/// The message of a failed job whose slots may have moved all the same:
/// the source unpaused its writes before it heard the target took over.
/// Only the ownership the cluster states says which.
pub const AMBIGUOUS_FAILURE: &str = "Unpaused before migration completed";

/// One job of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationJob {
    /// The server's name for it.
    pub name: String,
    /// Which end the answering node is.
    pub operation: Operation,
    /// The slots it moves, normalized.
    pub slot_ranges: Ranges,
    /// The node id the slots go from.
    pub source_node: String,
    /// The node id they go to.
    pub target_node: String,
    /// Where it is.
    pub state: JobState,
    /// Why it failed or was cancelled (empty otherwise).
    pub message: String,
}

/// Parses `"0-999 2000-2099 5"` (a single slot has no dash).
///
/// # Errors
/// [`MigrationsReplyError`] for anything else.
pub fn parse_ranges(text: &str) -> Result<Ranges, MigrationsReplyError> {
    let bad = || MigrationsReplyError(format!("slot_ranges {text:?}"));
    let slot = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|n| *n < crate::slots::SLOTS)
            .ok_or_else(bad)
    };
    let mut ranges = Vec::new();
    for word in text.split_whitespace() {
        let (start, end) = match word.split_once('-') {
            Some((s, e)) => (slot(s)?, slot(e)?),
            None => (slot(word)?, slot(word)?),
        };
        if start > end {
            return Err(bad());
        }
        ranges.push((start, end));
    }
    Ok(normalize(&ranges))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Okay => Some("OK".to_owned()),
        Value::Nil => Some(String::new()),
        _ => None,
    }
}

/// A job's fields, from a RESP3 map or a RESP2 flat array.
fn fields(job: &Value) -> Result<Vec<(String, String)>, MigrationsReplyError> {
    let pairs: Vec<(&Value, &Value)> = match job {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) => {
            if flat.len() % 2 != 0 {
                return Err(MigrationsReplyError(
                    "a job has an odd number of elements".to_owned(),
                ));
            }
            flat.chunks(2)
                .filter_map(|pair| match pair {
                    [k, v] => Some((k, v)),
                    _ => None,
                })
                .collect()
        }
        other => {
            return Err(MigrationsReplyError(format!(
                "a job is neither a map nor an array: {other:?}"
            )));
        }
    };
    pairs
        .into_iter()
        .map(|(k, v)| match (text(k), text(v)) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(MigrationsReplyError(format!(
                "a field is not text: {k:?} = {v:?}"
            ))),
        })
        .collect()
}

/// Parses the whole reply. Fields this bench does not use are ignored.
///
/// # Errors
/// [`MigrationsReplyError`] naming what is missing or malformed.
pub fn parse_slot_migrations(reply: &Value) -> Result<Vec<MigrationJob>, MigrationsReplyError> {
    let jobs = match reply {
        Value::Array(jobs) | Value::Set(jobs) => jobs,
        other => {
            return Err(MigrationsReplyError(format!("not an array: {other:?}")));
        }
    };
    jobs.iter().map(parse_job).collect()
}

fn parse_job(job: &Value) -> Result<MigrationJob, MigrationsReplyError> {
    let fields = fields(job)?;
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| MigrationsReplyError(format!("a job has no {name}")))
    };
    let operation = match get("operation")?.to_ascii_uppercase().as_str() {
        "EXPORT" => Operation::Export,
        "IMPORT" => Operation::Import,
        other => {
            return Err(MigrationsReplyError(format!("operation {other:?}")));
        }
    };
    Ok(MigrationJob {
        name: get("name")?,
        operation,
        slot_ranges: parse_ranges(&get("slot_ranges")?)?,
        source_node: get("source_node")?,
        target_node: get("target_node")?,
        state: JobState::parse(&get("state")?),
        // Absent on some versions while the job runs.
        message: get("message").unwrap_or_default(),
    })
}

/// The export job on a source that moves `ranges` to `target`, among
/// `jobs`, leaving out those named in `before` (listed before the
/// migration was issued).
pub fn find_export<'a>(
    jobs: &'a [MigrationJob],
    ranges: &[(u16, u16)],
    target: &str,
    before: &BTreeSet<String>,
) -> Option<&'a MigrationJob> {
    let ranges = normalize(ranges);
    jobs.iter().find(|j| {
        j.operation == Operation::Export
            && j.target_node == target
            && j.slot_ranges == ranges
            && !before.contains(&j.name)
    })
}

/// What a job's state means for the bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Still running: the stage.
    Running(String),
    /// The slots moved.
    Moved,
    /// Failed with [`AMBIGUOUS_FAILURE`]: moved if, and only if, the
    /// cluster states the target owns them.
    Ambiguous(String),
    /// Failed or cancelled: why.
    NotMoved(String),
}

/// The outcome of `job`.
pub fn outcome(job: &MigrationJob) -> JobOutcome {
    match &job.state {
        JobState::InProgress(stage) => JobOutcome::Running(stage.clone()),
        JobState::Success => JobOutcome::Moved,
        JobState::Failed if job.message.contains(AMBIGUOUS_FAILURE) => {
            JobOutcome::Ambiguous(job.message.clone())
        }
        JobState::Failed => JobOutcome::NotMoved(format!("failed: {}", job.message)),
        JobState::Cancelled => JobOutcome::NotMoved(format!("cancelled: {}", job.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn job_resp2(
        name: &str,
        op: &str,
        ranges: &str,
        target: &str,
        state: &str,
        msg: &str,
    ) -> Value {
        let mut flat = Vec::new();
        for (k, v) in [
            ("name", bulk(name)),
            ("operation", bulk(op)),
            ("slot_ranges", bulk(ranges)),
            ("target_node", bulk(target)),
            ("source_node", bulk("src")),
            ("create_time", Value::Int(1795449821)),
            ("last_update_time", Value::Int(1795449821)),
            ("last_ack_time", Value::Int(1795449821)),
            ("state", bulk(state)),
            ("message", bulk(msg)),
            ("cow_size", Value::Int(0)),
            ("remaining_repl_size", Value::Int(0)),
        ] {
            flat.push(bulk(k));
            flat.push(v);
        }
        Value::Array(flat)
    }

    #[test]
    fn a_resp2_reply_parses() {
        let reply = Value::Array(vec![
            job_resp2("n2", "EXPORT", "0-1364", "dst", "snapshotting", ""),
            job_resp2("n1", "IMPORT", "5461-6825 0-9", "me", "success", ""),
        ]);
        let jobs = parse_slot_migrations(&reply).unwrap_or_default();
        assert_eq!(jobs.len(), 2);
        let first = jobs.first().cloned();
        assert_eq!(
            first,
            Some(MigrationJob {
                name: "n2".into(),
                operation: Operation::Export,
                slot_ranges: vec![(0, 1364)],
                source_node: "src".into(),
                target_node: "dst".into(),
                state: JobState::InProgress("snapshotting".into()),
                message: String::new(),
            })
        );
        assert_eq!(
            jobs.get(1).map(|j| j.slot_ranges.clone()),
            Some(vec![(0, 9), (5461, 6825)])
        );
        assert!(jobs.get(1).is_some_and(|j| j.state.is_terminal()));
        assert_eq!(parse_slot_migrations(&Value::Array(vec![])), Ok(vec![]));
    }

    #[test]
    fn a_resp3_map_parses_the_same() {
        let Value::Array(flat) = job_resp2("n", "EXPORT", "7", "dst", "failed", "boom") else {
            return;
        };
        let pairs: Vec<(Value, Value)> = flat
            .chunks(2)
            .filter_map(|p| match p {
                [k, v] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect();
        let jobs =
            parse_slot_migrations(&Value::Array(vec![Value::Map(pairs)])).unwrap_or_default();
        assert_eq!(
            jobs.first().map(|j| j.slot_ranges.clone()),
            Some(vec![(7, 7)])
        );
        assert_eq!(
            jobs.first().map(|j| j.state.clone()),
            Some(JobState::Failed)
        );
    }

    #[test]
    fn malformed_replies_are_refused() {
        assert!(parse_slot_migrations(&Value::Nil).is_err());
        assert!(parse_slot_migrations(&Value::Array(vec![Value::Int(1)])).is_err());
        assert!(
            parse_slot_migrations(&Value::Array(vec![Value::Array(vec![bulk("name")])])).is_err()
        );
        let no_state = Value::Array(vec![Value::Array(vec![bulk("name"), bulk("n")])]);
        assert!(parse_slot_migrations(&no_state).is_err());
        let bad_op = Value::Array(vec![job_resp2("n", "MOVE", "0-1", "d", "success", "")]);
        assert!(parse_slot_migrations(&bad_op).is_err());
        assert!(parse_ranges("0-16384").is_err());
        assert!(parse_ranges("9-3").is_err());
        assert!(parse_ranges("a-b").is_err());
        assert_eq!(parse_ranges(""), Ok(vec![]));
    }

    #[test]
    fn the_job_is_found_by_what_it_moves_and_a_new_name() {
        let reply = Value::Array(vec![
            job_resp2("new", "EXPORT", "0-1364", "dst", "replicating", ""),
            job_resp2("old", "EXPORT", "0-1364", "dst", "success", ""),
            job_resp2("imp", "IMPORT", "0-1364", "dst", "success", ""),
            job_resp2("other", "EXPORT", "0-1364", "elsewhere", "success", ""),
        ]);
        let jobs = parse_slot_migrations(&reply).unwrap_or_default();
        let before: BTreeSet<String> = ["old".to_owned()].into();
        let found = find_export(&jobs, &[(0, 1000), (1001, 1364)], "dst", &before);
        assert_eq!(found.map(|j| j.name.as_str()), Some("new"));
        let all: BTreeSet<String> = ["old".to_owned(), "new".to_owned()].into();
        assert_eq!(find_export(&jobs, &[(0, 1364)], "dst", &all), None);
        assert_eq!(find_export(&jobs, &[(0, 1363)], "dst", &before), None);
    }

    #[test]
    fn outcomes_follow_the_state_and_the_ambiguous_failure() {
        let job = |state: &str, msg: &str| {
            parse_slot_migrations(&Value::Array(vec![job_resp2(
                "n", "EXPORT", "0", "d", state, msg,
            )]))
            .unwrap_or_default()
            .pop()
        };
        let out = |state: &str, msg: &str| job(state, msg).map(|j| outcome(&j));
        assert_eq!(
            out("failover-paused", ""),
            Some(JobOutcome::Running("failover-paused".into()))
        );
        assert_eq!(out("success", ""), Some(JobOutcome::Moved));
        let unpaused =
            "Unpaused before migration completed (migration may have succeeded with lost writes)";
        assert_eq!(
            out("failed", unpaused),
            Some(JobOutcome::Ambiguous(unpaused.into()))
        );
        assert_eq!(
            out("failed", "Target node timed out"),
            Some(JobOutcome::NotMoved("failed: Target node timed out".into()))
        );
        assert_eq!(
            out("cancelled", "by user"),
            Some(JobOutcome::NotMoved("cancelled: by user".into()))
        );
        assert!(job("waiting-to-snapshot", "").is_some_and(|j| !j.state.is_terminal()));
        assert!(job("cancelled", "").is_some_and(|j| j.state.is_terminal()));
    }
}
