//! The deletion family: the ValkeyCluster's deletion requested and its
//! owned objects deleted, and the `ClusterDeleted` older builds wrote
//! instead.

use crate::event::Event;
use crate::projection::ClusterState;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds the deletion of the ValkeyCluster: requested, its owned objects
    /// deleted (and an older build's `ClusterDeleted`).
    pub(super) fn fold_deletion(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::ClusterDeleted => {
                if self.deleted {
                    self.anomaly(seq, "cluster deleted twice".into());
                }
                self.deleted = true;
                self.history(seq, at, body, "cluster deleted".into());
            }
            Event::DeletionRequested { delete_pvcs } => {
                if self.deletion.requested {
                    self.anomaly(seq, "cluster deletion requested twice".into());
                }
                // After an older build's `ClusterDeleted` (a deletion it
                // was cut short in) this is the deletion resumed.
                self.deleted = true;
                self.deletion.requested = true;
                self.deletion.delete_pvcs = *delete_pvcs;
                let pvcs = if *delete_pvcs { ", PVCs too" } else { "" };
                self.history(seq, at, body, format!("cluster deleted{pvcs}"));
            }
            Event::OwnedObjectsDeleted { objects, complete } => {
                self.deletion.objects_deleted |= *complete;
                let state = if *complete { "all" } else { "part-way" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("{} owned objects deleted ({state})", objects.len()),
                );
            }
            other => self.misrouted(seq, other, "deletion"),
        }
    }
}
