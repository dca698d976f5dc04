//! When `decide` would next decide differently with nothing else
//! journaled: the earliest moment after the journal's last at which a rule
//! that reads time changes its answer — a certificate falling due, a
//! backup growing past its retention age, a rotation window closing, the
//! backup schedule firing, a Cluster's quorum takeover, the fence of an
//! isolated primary a failover waits for. (A primary's failover span is
//! read from its recorded failures, which only probes journal: it needs
//! no deadline.)
//!
//! A converged cluster journals nothing, so `now` (the journal's last
//! moment) stands still while it is idle. The runtime therefore wakes at
//! this deadline and journals `DeadlinePassed` once the wall clock has
//! passed it: the decision that depends on it is taken on time, reading
//! time from the journal alone, and nothing is appended before it.
//! Each rule states its own deadline beside its logic; this file only
//! gathers them.

use logbook_crds::Topology;
use logbook_journal::{ClusterState, Timestamp};

use super::view::ClusterView;
use super::{backup, cluster, fence, hibernation, placement, tls, upgrade};

/// The next deadline after `state.last_at`, if any rule has one.
///
/// # Guarantees
/// Pure and total, like [`super::decide`]; a moment it returns is always
/// later than `state.last_at`.
pub fn next_deadline(state: &ClusterState) -> Option<Timestamp> {
    let now = state.last_at;
    let mut deadlines: Vec<Timestamp> = Vec::new();
    // Rotation windows close and the schedule fires whatever the spec.
    deadlines.extend(state.users.rotations.values().map(|r| r.until));
    if let Some(ms) = crate::schedule::next_fire(state) {
        deadlines.push(Timestamp(ms.saturating_mul(1000)));
    }
    if let Some(view) = ClusterView::new(state).filter(|_| !state.deleted) {
        deadlines.extend(tls::renewal_deadline(&view));
        deadlines.extend(backup::retention_deadline(&view));
        deadlines.extend(upgrade::canary_deadline(&view));
        deadlines.extend(placement::fail_back_deadline(&view));
        deadlines.extend(hibernation::wake_deadline(&view));
        deadlines.extend(fence::fence_deadline(&view));
        if view.topology() == Topology::Cluster {
            deadlines.extend(cluster::quorum::takeover_deadline(&view));
        }
    }
    deadlines.into_iter().filter(|t| *t > now).min()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use logbook_crds::{Topology, ValkeyClusterSpec};
    use logbook_journal::{CertificateRecord, Event, Reachability, Timestamp};

    use super::*;
    use crate::certificates::SOURCE_INTERNAL;
    use crate::decide::given::Given;

    const DAY_US: i64 = 86_400_000_000;

    /// An idle TLS cluster: its certificate's renewal is the next deadline,
    /// not due a microsecond before it, due at it, and no deadline once
    /// the journal has passed it.
    #[test]
    fn a_certificate_falls_due_at_its_deadline() {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.tls.enabled = true;
        g.spec(&spec);
        g.applied(1);
        g.pod(0, "r1");
        g.reach(0, Reachability::Reachable);
        let not_after = Timestamp(g.state.last_at.0 + 31 * DAY_US);
        g.event(Event::CertificateObserved {
            certificate: CertificateRecord {
                secret: "demo-tls".into(),
                fingerprint: Some("ab".into()),
                ca_fingerprint: Some("cd".into()),
                not_after: Some(not_after),
                source: SOURCE_INTERNAL.into(),
                problem: None,
            },
        });
        let due = next_deadline(&g.state).unwrap();
        // 90 days of validity: due once fewer than 30 are left.
        assert_eq!(due, Timestamp(not_after.0 - 30 * DAY_US + 1));
        let view = ClusterView::new(&g.state).unwrap();
        assert!(tls::decide_issue(&view, Timestamp(due.0 - 1)).is_none());
        assert!(tls::decide_issue(&view, due).is_some());
        let mut passed = g.state.clone();
        passed.last_at = due;
        assert_eq!(next_deadline(&passed), None);
    }

    /// A pod failing its probes sets no deadline: whether it failed for
    /// the whole span is read from the failures its probes recorded, so
    /// time passing with nothing recorded changes no decision, and
    /// nothing is appended for it (a deadline here once journaled
    /// `DeadlinePassed` for nothing while a primary failed).
    #[test]
    fn a_failing_pod_sets_no_deadline() {
        let mut g = Given::new();
        g.spec(&ValkeyClusterSpec::with_topology(Topology::Replication));
        g.applied(1);
        g.pod(0, "r1");
        g.reach(0, Reachability::TimedOut);
        assert!(g.state.pods["demo-0"].failing_since.is_some());
        assert_eq!(next_deadline(&g.state), None);
    }
}
