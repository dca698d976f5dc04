//! `ClusterView`: the projection read through the accepted spec, with the
//! small judgements every concern shares (is a pod usable, which replicas
//! follow the primary, how candidates rank). Pure.

use std::cmp::Reverse;

use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::projection::PodView;
use logbook_journal::{Candidate, ClusterState, LinkStatus, PodPhase, Reachability, Role};

/// The ordinal of a StatefulSet pod (`demo-2` → 2); `u32::MAX` for a name
/// without one, so such a pod ranks last.
pub fn ordinal(pod: &str) -> u32 {
    pod.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// A pod with its name.
#[derive(Debug, Clone, Copy)]
pub struct PodState<'a> {
    /// Pod name.
    pub name: &'a str,
    /// What the projection knows of it.
    pub view: &'a PodView,
}

impl PodState<'_> {
    /// Running and not being deleted, with an address, and its last probe
    /// answered.
    pub fn usable(&self) -> bool {
        !self.view.terminating
            && self.view.phase == Some(PodPhase::Running)
            && self.view.ip.is_some()
            && self.view.reachability == Some(Reachability::Reachable)
    }

    /// Usable and reporting `role`.
    pub fn usable_as(&self, role: Role) -> bool {
        self.usable() && self.view.role == Some(role)
    }

    /// Reporting `role` in its last answered probe, usable or being
    /// deleted: a pod being deleted answers until its process exits.
    pub fn answers_as(&self, role: Role) -> bool {
        self.usable_as(role)
            || (self.view.terminating
                && self.view.ip.is_some()
                && self.view.reachability == Some(Reachability::Reachable)
                && self.view.role == Some(role))
    }

    /// A usable replica of `primary` whose link is up.
    pub fn in_sync_with(&self, primary: &str) -> bool {
        self.usable_as(Role::Replica)
            && self.view.replicates.as_deref() == Some(primary)
            && self.view.link == Some(LinkStatus::Up)
    }

    /// Its ordinal.
    pub fn ordinal(&self) -> u32 {
        ordinal(self.name)
    }
}

/// A change to roll: the revision every pod must run and the pods that
/// do not.
#[derive(Debug)]
pub struct Roll<'a> {
    /// The StatefulSet's update revision.
    pub revision: String,
    /// Its `spec.replicas`.
    pub replicas: u32,
    /// Every pod, in ordinal order.
    pub pods: Vec<PodState<'a>>,
    /// The pods on another revision, in ordinal order.
    pub outdated: Vec<PodState<'a>>,
}

/// The projection with its accepted spec parsed.
#[derive(Debug)]
pub struct ClusterView<'a> {
    /// The projection.
    pub state: &'a ClusterState,
    /// The accepted spec.
    pub spec: ValkeyClusterSpec,
    /// Generation of the accepted spec.
    pub generation: i64,
}

impl<'a> ClusterView<'a> {
    /// `None` before any accepted spec, or when the stored spec no longer
    /// parses (nothing can be decided from it).
    pub fn new(state: &'a ClusterState) -> Option<Self> {
        let desired = state.desired.as_ref()?;
        let spec = desired.spec().ok()?;
        Some(Self {
            state,
            spec,
            generation: desired.generation,
        })
    }

    /// The topology in force.
    pub fn topology(&self) -> Topology {
        self.spec.topology
    }

    /// Pods in ordinal order.
    pub fn pods(&self) -> Vec<PodState<'a>> {
        let mut pods: Vec<PodState<'a>> = self
            .state
            .pods
            .iter()
            .map(|(name, view)| PodState { name, view })
            .collect();
        pods.sort_by_key(|p| (p.ordinal(), p.name));
        pods
    }

    /// One pod.
    pub fn pod(&self, name: &str) -> Option<PodState<'a>> {
        self.state
            .pods
            .get_key_value(name)
            .map(|(name, view)| PodState { name, view })
    }

    /// The roll to do, if some pod runs another revision than the
    /// StatefulSet's update revision.
    pub fn roll(&self) -> Option<Roll<'a>> {
        let sts = self.state.statefulset.as_ref()?;
        let revision = sts.update_revision.clone()?;
        let pods = self.pods();
        let outdated: Vec<PodState<'a>> = pods
            .iter()
            .copied()
            .filter(|p| p.view.revision.as_deref() != Some(revision.as_str()))
            .collect();
        (!outdated.is_empty()).then_some(Roll {
            revision,
            replicas: sts.replicas,
            pods,
            outdated,
        })
    }

    /// The believed primary's name.
    pub fn primary(&self) -> Option<&'a str> {
        self.state.replication.primary.as_deref()
    }

    /// The believed primary, if it is usable and reports itself primary
    /// (a standby's leader: follows the source).
    pub fn healthy_primary(&self) -> Option<PodState<'a>> {
        self.primary()
            .and_then(|p| self.pod(p))
            .filter(|p| p.usable_as(Role::Primary) || leads_standby(p))
    }

    /// Data pods the spec asks for.
    pub fn desired_pods(&self) -> u32 {
        u32::try_from(self.spec.effective_replicas()).unwrap_or(0)
    }

    /// Every pod except `primary`, ranked for promotion: eligible first,
    /// then holding the primary's history, then highest offset, then lowest
    /// ordinal. `eligible` needs a usable pod that is not the primary, on an
    /// ordinal the spec keeps; `require_in_sync` also needs its link to
    /// `primary` up (planned hand-overs).
    pub fn rank_candidates(&self, primary: Option<&str>, require_in_sync: bool) -> Vec<Candidate> {
        let keep = self.desired_pods();
        let mut ranked: Vec<(Candidate, u32)> = self
            .pods()
            .into_iter()
            .filter(|p| Some(p.name) != primary)
            .map(|p| {
                let same_history = match (self.state.replication.primary_replid, p.view.replid) {
                    (Some(want), Some(have)) => want == have,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                let in_sync = primary.is_some_and(|primary| p.in_sync_with(primary));
                let eligible = p.usable()
                    && p.ordinal() < keep
                    && (!require_in_sync || in_sync)
                    && p.view.role != Some(Role::Sentinel);
                (
                    Candidate {
                        pod: p.name.to_owned(),
                        offset: p.view.offset,
                        reachable: p.view.reachability == Some(Reachability::Reachable),
                        same_history,
                        eligible,
                    },
                    p.ordinal(),
                )
            })
            .collect();
        ranked.sort_by_key(|(c, ordinal)| {
            (
                Reverse(c.eligible),
                Reverse(c.same_history),
                Reverse(c.offset.unwrap_or(0)),
                *ordinal,
            )
        });
        ranked.into_iter().map(|(c, _)| c).collect()
    }
}

/// Whether `p` is a standby's leader: usable and following the source.
pub fn leads_standby(p: &PodState<'_>) -> bool {
    p.usable_as(Role::Replica)
        && p.view.replicates.as_deref()
            == Some(logbook_journal::projection::replication::STANDBY_SOURCE)
}

/// The best eligible candidate of a ranking, if any.
pub fn best(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.first().filter(|c| c.eligible)
}

/// `pod:offset` for each candidate, for humans.
pub fn describe(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| {
            let offset = c.offset.map_or_else(|| "?".to_owned(), |o| o.to_string());
            let mut flags = Vec::new();
            if !c.eligible {
                flags.push("ineligible");
            }
            if !c.same_history {
                flags.push("other history");
            }
            if flags.is_empty() {
                format!("{} offset {offset}", c.pod)
            } else {
                format!("{} offset {offset} ({})", c.pod, flags.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
