//! The isolated-primary fence (`spec.failover.fenceIsolatedPrimarySeconds`):
//! a primary cut off from every replica refuses writes once no replica
//! has acknowledged it for that long (Valkey's `min-replicas-to-write 1`,
//! `min-replicas-max-lag`, rendered in `resources/config.rs`). The
//! operator must not hand its role to another before it is certainly
//! fenced, or a client on its side of a partition has writes acknowledged
//! that the new primary never gets.
//!
//! When was it last linked? Its replicas acknowledge it once a second, so
//! the last acknowledgement it got is no later than the last moment the
//! operator knew it linked: the last time it answered a probe (no later
//! than its first failed probe, `failing_since`), or the last time one of
//! its replicas was journaled otherwise than now (each replica's last
//! event: its link leaving `Up` is journaled after the last moment it was
//! up, and nothing more about it while it stays down). The fence is
//! certain [`FailoverSpec::fence_worst_case_milliseconds`] after that.
//!
//! Time is read as every rule here reads it: the journal's last moment.
//! [`fence_deadline`] wakes the runtime at the fence (the prober stops
//! journaling failures of a primary long failed), which journals
//! `DeadlinePassed` and decides again; the promotion's reason then says
//! how long it waited. Pure; this module decides nothing by itself.
//!
//! [`FailoverSpec::fence_worst_case_milliseconds`]: logbook_crds::FailoverSpec::fence_worst_case_milliseconds

use logbook_journal::{LinkStatus, Reachability, Role, Timestamp};

use super::view::ClusterView;

/// When an unreachable primary is certainly fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// The last moment the operator knew the primary linked to a replica
    /// or answering.
    pub linked_at: Timestamp,
    /// The worst case of Valkey's fence after that, in milliseconds.
    pub worst_ms: i64,
    /// `linked_at` plus `worst_ms`: from here on the primary refuses writes.
    pub fenced_by: Timestamp,
}

impl Fence {
    /// One line for a reason: "demo-0 last linked at …, fenced by … (at
    /// worst 4000 ms later)".
    pub fn describe(&self, primary: &str) -> String {
        format!(
            "{primary} was last known linked at {}; with fenceIsolatedPrimarySeconds it refuses writes by {} ({} ms later at worst)",
            self.linked_at, self.fenced_by, self.worst_ms
        )
    }
}

/// The fence of `primary`, when fencing is on and the primary is failing
/// its probes; `None` otherwise (off, or nothing known of it).
pub fn fence_of(view: &ClusterView<'_>, primary: &str) -> Option<Fence> {
    let worst_ms = view.spec.failover.fence_worst_case_milliseconds()?;
    let pod = view.pod(primary)?;
    let answered = pod.view.failing_since?;
    let replicas_seen = view
        .pods()
        .into_iter()
        .filter(|p| p.view.replicates.as_deref() == Some(primary))
        .map(|p| p.view.last_seen);
    let linked_at = replicas_seen.fold(answered, |a, b| Timestamp(a.0.max(b.0)));
    Some(Fence {
        linked_at,
        worst_ms,
        fenced_by: linked_at.plus_millis(worst_ms),
    })
}

/// The fences a failover may be waiting for: those of primaries failing
/// their probes whose answering replicas all lost them (none up, one down
/// or silent: a failover's corroboration, in Replication and Cluster
/// alike). A pod whose replicas still hear it sets none, so a slow
/// primary journals no `DeadlinePassed` for nothing.
pub(super) fn fence_deadline(view: &ClusterView<'_>) -> Option<Timestamp> {
    view.spec.failover.fence_isolated_primary_seconds?;
    let pods = view.pods();
    let lost = |primary: &str| {
        let replicas: Vec<_> = pods
            .iter()
            .filter(|r| r.usable_as(Role::Replica) && r.view.replicates.as_deref() == Some(primary))
            .collect();
        replicas
            .iter()
            .any(|r| matches!(r.view.link, Some(LinkStatus::Down | LinkStatus::Silent)))
            && replicas.iter().all(|r| r.view.link != Some(LinkStatus::Up))
    };
    pods.iter()
        .filter(|p| {
            p.view.failing_since.is_some()
                && p.view.reachability != Some(Reachability::Reachable)
                && lost(p.name)
        })
        .filter_map(|p| fence_of(view, p.name).map(|f| f.fenced_by))
        .min()
}
