//! Each pod's role over time, as the chart's lanes show it: one segment
//! per change of state (not per event), from the projection folded event
//! by event — roles from `NodeRoleObserved` and `ReplicaPromoted` (which
//! also makes the replaced primary's role unknown until it is observed
//! again), down from failed probes, `PodTerminating`, a failed pod or a
//! pod that lost its readiness, absent after `PodDeleted`.

use std::collections::BTreeMap;

use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, Envelope, PodPhase, Reachability, Role, Timestamp};

/// What a pod's lane shows at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneState {
    /// No such pod (not yet created, or deleted).
    Absent,
    /// The pod exists but no role has been observed since it was (re)created
    /// or since it was replaced as primary.
    Unknown,
    /// Valkey answered as a replica.
    Replica,
    /// Valkey answered as primary, or the pod was promoted.
    Primary,
    /// Unreachable, terminating, or its pod failed.
    Down,
}

impl LaneState {
    /// Every state, in [`LaneState::rank`] order.
    pub const ALL: [Self; 5] = [
        Self::Absent,
        Self::Unknown,
        Self::Replica,
        Self::Primary,
        Self::Down,
    ];

    /// The CSS class of the lane's bars.
    pub const fn class(self) -> &'static str {
        match self {
            Self::Absent => "role-absent",
            Self::Unknown => "role-unknown",
            Self::Replica => "role-replica",
            Self::Primary => "role-primary",
            Self::Down => "role-down",
        }
    }

    /// The state for people.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Absent => "no pod",
            Self::Unknown => "role unknown",
            Self::Replica => "replica",
            Self::Primary => "primary",
            Self::Down => "down",
        }
    }

    /// How telling the state is: a chart column where two states lasted
    /// as long shows the higher one. Also the index in [`LaneState::ALL`].
    pub const fn rank(self) -> usize {
        match self {
            Self::Absent => 0,
            Self::Unknown => 1,
            Self::Replica => 2,
            Self::Primary => 3,
            Self::Down => 4,
        }
    }

    /// The state the projection gives `view`; `was_ready` says whether
    /// this pod (this uid) was seen ready before, so a pod that lost its
    /// readiness (its process died and is restarting) shows as down while
    /// a new pod that is not ready yet does not.
    fn of(view: &PodView, was_ready: bool) -> Self {
        let unreachable = view
            .reachability
            .is_some_and(|r| r != Reachability::Reachable);
        let failed = matches!(
            view.phase,
            Some(PodPhase::Failed | PodPhase::Succeeded | PodPhase::Unknown)
        );
        let lost_readiness = was_ready && !view.ready;
        if unreachable || failed || lost_readiness || view.terminating {
            return Self::Down;
        }
        match view.role {
            Some(Role::Primary) => Self::Primary,
            Some(Role::Replica) => Self::Replica,
            Some(Role::Sentinel) | None => Self::Unknown,
        }
    }
}

/// From this event on, a pod's lane shows `state`.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// The event that changed it.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// The new state.
    pub state: LaneState,
}

/// Every pod's lane, by pod name.
#[derive(Debug, Default)]
pub struct Lanes {
    /// The segments of each pod, in seq order.
    pub pods: BTreeMap<String, Vec<Segment>>,
    /// Pods seen ready, with the uid they had then.
    ready: BTreeMap<String, Option<String>>,
}

impl Lanes {
    /// Records each pod's state in `state`, folded up to `e`, where it
    /// changed.
    pub fn track(&mut self, state: &ClusterState, e: &Envelope) {
        for (pod, view) in &state.pods {
            let was_ready = self.ready.get(pod).is_some_and(|uid| *uid == view.uid);
            if view.ready {
                self.ready.insert(pod.clone(), view.uid.clone());
            }
            let lane = self.pods.entry(pod.clone()).or_default();
            push_state(lane, e, LaneState::of(view, was_ready));
        }
        for (pod, segments) in &mut self.pods {
            if !state.pods.contains_key(pod) {
                push_state(segments, e, LaneState::Absent);
            }
        }
    }
}

fn push_state(segments: &mut Vec<Segment>, e: &Envelope, state: LaneState) {
    if segments.last().is_some_and(|s| s.state == state) {
        return;
    }
    segments.push(Segment {
        seq: e.seq,
        at: e.at,
        state,
    });
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use logbook_journal::{ChainHash, Event};

    use super::*;

    /// Folds `events` and tracks the lanes after each, as the scan does.
    fn lanes(events: Vec<Event>) -> Lanes {
        let mut state = ClusterState::new();
        let mut lanes = Lanes::default();
        for (n, body) in events.into_iter().enumerate() {
            let seq = n as u64 + 1;
            let e = Envelope {
                seq,
                id: uuid::Uuid::now_v7(),
                at: Timestamp(seq as i64 * 1000),
                cause: None,
                epoch: 1,
                body,
                prev: ChainHash::GENESIS,
                hash: ChainHash::GENESIS,
            };
            state.apply(&e);
            lanes.track(&state, &e);
        }
        lanes
    }

    fn pod(name: &str, uid: &str, ready: bool) -> Event {
        Event::PodObserved {
            pod: name.to_owned(),
            uid: uid.to_owned(),
            ip: Some("10.0.0.1".to_owned()),
            phase: PodPhase::Running,
            ready,
            node: None,
            revision: None,
        }
    }

    fn role(name: &str, role: Role) -> Event {
        Event::NodeRoleObserved {
            pod: name.to_owned(),
            role,
            primary: None,
        }
    }

    fn states(lanes: &Lanes, pod: &str) -> Vec<(u64, LaneState)> {
        lanes.pods[pod].iter().map(|s| (s.seq, s.state)).collect()
    }

    #[test]
    fn a_new_pod_is_unknown_until_its_role_and_down_when_it_loses_readiness() {
        let l = lanes(vec![
            pod("a", "u1", false),
            pod("a", "u1", true),
            role("a", Role::Primary),
            pod("a", "u1", false),
            pod("a", "u1", true),
        ]);
        assert_eq!(
            states(&l, "a"),
            [
                (1, LaneState::Unknown),
                (3, LaneState::Primary),
                (4, LaneState::Down),
                (5, LaneState::Primary)
            ]
        );
    }

    #[test]
    fn failed_probes_deletion_and_promotion_show() {
        let l = lanes(vec![
            pod("a", "u1", true),
            pod("b", "u2", true),
            role("a", Role::Primary),
            role("b", Role::Replica),
            Event::PodReachabilityObserved {
                pod: "a".to_owned(),
                reachability: Reachability::Refused,
            },
            Event::ReplicaPromoted {
                pod: "b".to_owned(),
                from: Some("a".to_owned()),
                offset: 10,
            },
            Event::PodDeleted {
                pod: "a".to_owned(),
            },
            pod("a", "u3", false),
        ]);
        assert_eq!(
            states(&l, "a"),
            [
                (1, LaneState::Unknown),
                (3, LaneState::Primary),
                (5, LaneState::Down),
                (7, LaneState::Absent),
                (8, LaneState::Unknown)
            ]
        );
        assert_eq!(
            states(&l, "b"),
            [
                (2, LaneState::Unknown),
                (4, LaneState::Replica),
                (6, LaneState::Primary)
            ]
        );
    }
}
