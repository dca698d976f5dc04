//! The operator family: the operator's starts and stops, leadership won
//! and lost, snapshots recorded, deadlines passed.
//!
//! Facts only: the leader here is what the stream says of the lease, for
//! the status, the audit and the timeline, not a lease itself.

use crate::event::Event;
use crate::projection::ClusterState;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds the operator's own life on its stream: starts and stops, the
    /// lease won and lost, snapshots, deadlines passed.
    pub(super) fn fold_operator(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::OperatorStarted {
                version,
                instance,
                epoch,
                gap_ms,
            } => {
                self.operator.last_started = Some((version.clone(), instance.clone()));
                let gap = gap_ms.map_or_else(String::new, |ms| {
                    format!(", {} s after the previous event", ms / 1000)
                });
                self.history(
                    seq,
                    at,
                    body,
                    format!("operator {version} started as {instance} at epoch {epoch}{gap}"),
                );
            }
            Event::OperatorStopped { instance } => {
                if self
                    .operator
                    .leader
                    .as_ref()
                    .is_some_and(|(_, holder)| holder == instance)
                {
                    self.operator.leader = None;
                }
                self.history(seq, at, body, format!("operator {instance} stopped"));
            }
            Event::LeadershipAcquired { epoch, holder } => {
                if *epoch <= self.operator.highest_epoch && self.operator.highest_epoch > 0 {
                    self.anomaly(
                        seq,
                        format!(
                            "leadership epoch {epoch} not above {}",
                            self.operator.highest_epoch
                        ),
                    );
                }
                self.operator.highest_epoch = self.operator.highest_epoch.max(*epoch);
                self.operator.leader = Some((*epoch, holder.clone()));
                self.history(seq, at, body, format!("{holder} leads at epoch {epoch}"));
            }
            Event::LeadershipLost { epoch, reason } => {
                match &self.operator.leader {
                    Some((current, _)) if current == epoch => self.operator.leader = None,
                    other => {
                        let other = other.clone();
                        self.anomaly(
                            seq,
                            format!("leadership of epoch {epoch} lost but the leader is {other:?}"),
                        );
                    }
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!("leadership of epoch {epoch} lost: {reason}"),
                );
            }
            // Its only effect is the envelope's time, folded above into
            // `last_at`: the `now` the next decision reads.
            Event::DeadlinePassed { .. } => {}
            Event::SnapshotRecorded {
                seq: covered, hash, ..
            }
            | Event::SnapshotTaken { seq: covered, hash } => {
                if *covered >= seq {
                    self.anomaly(
                        seq,
                        format!("snapshot at seq {covered} recorded at seq {seq}"),
                    );
                }
                self.last_snapshot = Some((*covered, *hash));
            }
            other => self.misrouted(seq, other, "operator"),
        }
    }
}
