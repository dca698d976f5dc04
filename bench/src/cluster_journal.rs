//! What the operator's own journal says happened in each Cluster run: read
//! after the operator stopped (its sled directory is then free), with the
//! replay tool's shard failover records, and lined up with the runs by
//! the wall-clock time of each fault (the journal's `at` and the bench
//! read the same clock).
//!
//! This is where the time between a fault and the client's first
//! acknowledged write goes: the first event journaled after the fault,
//! the first sign of the old primary's failure, the decision, the
//! failover command's success, and the first node report in which the
//! new primary claims the slots. Read-only.

use std::collections::BTreeMap;
use std::path::Path;

use logbook_journal::{Durability, Envelope, Event, JournalStore, SledStore, StreamId, Timestamp};
use logbook_replay::failovers::Failovers;
use logbook_replay::shard_failovers::{DecidedBy, Mode, ShardFailover};
use logbook_replay::{Flow, Input, Raw, Start, Visit};
use uuid::Uuid;

use super::{BenchError, harness};

/// One run's account from the journal, each time in milliseconds since
/// the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalTimes {
    /// The first event journaled after the fault, and its kind.
    pub first_event: Option<(i64, &'static str)>,
    /// The first journaled sign of the old primary's failure, and what.
    pub detected: Option<(i64, String)>,
    /// The operator's decision (`Decided`), its reason and mode; `None`
    /// for a failover Valkey made alone.
    pub decided: Option<(i64, String, &'static str)>,
    /// The failover command's success (`IntentSucceeded`).
    pub done: Option<i64>,
    /// The first node report in which the new primary claims the slots.
    pub serving: Option<i64>,
}

impl JournalTimes {
    /// One line for people: `first event +12 ms (PodTerminating); ...`.
    pub fn describe(&self) -> String {
        let ms = |t: Option<i64>| t.map_or_else(|| "–".to_owned(), |t| format!("+{t} ms"));
        format!(
            "first event {}{}; detected {}{}; decided {}{}; command done {}; serving (observed) {}",
            ms(self.first_event.map(|(t, _)| t)),
            self.first_event
                .map(|(_, k)| format!(" ({k})"))
                .unwrap_or_default(),
            ms(self.detected.as_ref().map(|(t, _)| *t)),
            self.detected
                .as_ref()
                .map(|(_, w)| format!(" ({w})"))
                .unwrap_or_default(),
            ms(self.decided.as_ref().map(|(t, _, _)| *t)),
            self.decided
                .as_ref()
                .map(|(_, reason, mode)| format!(" ({reason}, {mode})"))
                .unwrap_or_default(),
            ms(self.done),
            ms(self.serving),
        )
    }
}

/// The replay tool's failover records plus what they leave out: when each
/// intent succeeded, and every event's time and kind.
#[derive(Default)]
struct Scan {
    failovers: Failovers,
    succeeded: BTreeMap<Uuid, Timestamp>,
    events: Vec<(Timestamp, &'static str)>,
}

impl Visit for Scan {
    fn start(&mut self, start: &Start) -> logbook_replay::Result<()> {
        self.failovers.start(start)
    }

    fn event(&mut self, e: &Envelope, raw: Raw<'_>) -> logbook_replay::Result<Flow> {
        if let Event::IntentSucceeded { intent_id, .. } = &e.body {
            self.succeeded.insert(*intent_id, e.at);
        }
        self.events.push((e.at, e.body.kind()));
        self.failovers.event(e, raw)
    }
}

const fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Coordinated => "coordinated",
        Mode::Force => "FORCE",
        Mode::Takeover => "TAKEOVER",
        Mode::Election => "Valkey's election",
    }
}

/// When a record happened, to line it up with a fault: its decision, else
/// its serving report.
fn record_at(r: &ShardFailover) -> Option<Timestamp> {
    r.decided
        .as_ref()
        .map(|d| d.at)
        .or_else(|| r.serving.as_ref().map(|m| m.at))
}

/// Each fault's account: `faults` in order; the events and the first
/// shard failover record between a fault and the next one.
fn line_up(scan: &Scan, faults: &[Timestamp]) -> Vec<JournalTimes> {
    let records = &scan.failovers.shards.records;
    faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let next = faults.get(i.saturating_add(1)).copied();
            let within = |at: Timestamp| at >= *fault && next.is_none_or(|n| at < n);
            let since = |at: Timestamp| at.millis_since(*fault);
            let first_event = scan
                .events
                .iter()
                .find(|(at, _)| within(*at))
                .map(|(at, kind)| (since(*at), *kind));
            let record = records.iter().find(|r| record_at(r).is_some_and(within));
            JournalTimes {
                first_event,
                detected: record
                    .and_then(|r| r.detected.as_ref())
                    .map(|s| (since(s.at), s.what.clone())),
                decided: record.and_then(|r| {
                    r.decided
                        .as_ref()
                        .filter(|_| r.decided_by == DecidedBy::Operator)
                        .map(|d| (since(d.at), d.reason.clone(), mode_name(r.mode)))
                }),
                done: record
                    .and_then(|r| r.decided.as_ref())
                    .and_then(|d| scan.succeeded.get(&d.intent_id))
                    .map(|at| since(*at)),
                serving: record.and_then(|r| r.serving.as_ref()).map(|m| since(m.at)),
            }
        })
        .collect()
}

/// Reads the one cluster stream of the sled journal in `dir` (the
/// operator stopped) and returns each fault's account, in the order of
/// `faults` (which must be in time order).
///
/// # Errors
/// When the journal cannot be opened, holds no single cluster stream, or
/// does not verify.
pub async fn journal_times(
    dir: &Path,
    faults: &[Timestamp],
) -> Result<Vec<JournalTimes>, BenchError> {
    let store = SledStore::open(dir, Durability::Flush)
        .map_err(|e| harness("opening the operator's journal")(e.to_string()))?;
    let streams = store
        .list_streams()
        .await
        .map_err(|e| harness("listing the journal's streams")(e.to_string()))?;
    let clusters: Vec<StreamId> = streams
        .into_iter()
        .filter(|s| s.as_str() != StreamId::OPERATOR)
        .collect();
    let [stream] = clusters.as_slice() else {
        return Err(harness("the cluster's journal stream")(format!(
            "expected one, found {clusters:?}"
        )));
    };
    let input = Input::Store {
        store,
        stream: stream.clone(),
        cluster: None,
        place: dir.display().to_string(),
    };
    let mut scan = Scan::default();
    input
        .scan(None, &mut scan)
        .await
        .map_err(|e| harness("reading the operator's journal")(e.to_string()))?;
    Ok(line_up(&scan, faults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_says_what_is_missing() {
        let t = JournalTimes {
            first_event: Some((12, "PodTerminating")),
            detected: Some((12, "pod p terminating".to_owned())),
            decided: Some((20, "PrimaryFailed".to_owned(), "coordinated")),
            done: Some(75),
            serving: None,
        };
        assert_eq!(
            t.describe(),
            "first event +12 ms (PodTerminating); detected +12 ms (pod p terminating); decided +20 ms (PrimaryFailed, coordinated); command done +75 ms; serving (observed) –"
        );
    }

    #[test]
    fn events_are_lined_up_with_the_fault_before_them() {
        let scan = Scan {
            events: vec![
                (Timestamp(1_000_000), "SpecChanged"),
                (Timestamp(5_012_000), "PodTerminating"),
                (Timestamp(9_003_000), "PodReachabilityObserved"),
            ],
            ..Scan::default()
        };
        let times = line_up(&scan, &[Timestamp(5_000_000), Timestamp(9_000_000)]);
        let first: Vec<_> = times.iter().map(|t| t.first_event).collect();
        assert_eq!(
            first,
            vec![
                Some((12, "PodTerminating")),
                Some((3, "PodReachabilityObserved"))
            ]
        );
        assert!(times.iter().all(|t| t.decided.is_none()));
    }
}
