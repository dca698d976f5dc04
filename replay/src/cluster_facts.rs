//! What replay must remember of a Valkey Cluster's journal beyond the
//! projection: which primaries each node ever reported following, which
//! node ids each pod ran, and the first journaled sign that a pod or a
//! node was failing. The projection keeps only each node's last report
//! and forgets a pod's failure once it answers; the failover records and
//! the audit need the history.
//!
//! Everything here is folded from events; nothing is guessed. A sign is
//! the first event since the pod (or node) was last seen healthy that
//! showed it failing, and says which kind of event it was.

use std::collections::{BTreeMap, BTreeSet};

use logbook_journal::{ClusterState, Envelope, Event, PeerHealth, PodPhase, Reachability};
use serde::Serialize;

/// Which journaled fact showed a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignKind {
    /// `PodTerminating`: the pod is being deleted.
    PodTerminating,
    /// `PodDeleted`: the pod is gone from the API.
    PodDeleted,
    /// `PodObserved` with phase Failed or Succeeded: its containers ended.
    PodTerminated,
    /// `PodReachabilityObserved` Refused: nothing listens.
    ProbeRefused,
    /// `PodReachabilityObserved` NoAddress: the pod has no IP.
    ProbeNoAddress,
    /// `PodReachabilityObserved` TimedOut or a protocol error: dead or
    /// only slow.
    ProbeFailed,
    /// Some node's report flags the node `fail` (a majority agreed).
    PeerFailed,
    /// Some node's report flags the node `fail?` (suspected, not agreed).
    PeerSuspected,
    /// The node's pod came back as another node: its data was lost.
    NewNode,
}

impl SignKind {
    /// Whether the sign is death rather than possible slowness: what
    /// justifies a forced failover.
    #[must_use]
    pub const fn is_death(self) -> bool {
        match self {
            Self::PodDeleted
            | Self::PodTerminated
            | Self::ProbeRefused
            | Self::ProbeNoAddress
            | Self::NewNode => true,
            Self::PodTerminating | Self::ProbeFailed | Self::PeerFailed | Self::PeerSuspected => {
                false
            }
        }
    }
}

/// A journaled sign of failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sign {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at: logbook_journal::Timestamp,
    /// Which kind of fact.
    pub kind: SignKind,
    /// What it says, for people.
    pub what: String,
}

/// What a pod's failure looks like so far.
#[derive(Debug, Clone, Default)]
struct PodSigns {
    /// The first sign since it was last healthy.
    first: Option<Sign>,
    /// The first death sign since it was last healthy.
    death: Option<Sign>,
}

/// The cluster history replay keeps beside the projection.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// Per node id: every primary node id it reported following, with the
    /// seq of the first such report.
    followed: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per pod: every node id it reported, in order, with the seq.
    pod_nodes: BTreeMap<String, Vec<(String, u64)>>,
    pods: BTreeMap<String, PodSigns>,
    /// Per node id: the first report flagging it failed or suspected
    /// (while some report still does), or the report of its pod's new
    /// node (never cleared: the node is gone for good).
    nodes: BTreeMap<String, Sign>,
}

impl ClusterFacts {
    /// Folds `e`; `after` is the projection with `e` folded.
    pub fn after(&mut self, after: &ClusterState, e: &Envelope) {
        match &e.body {
            Event::PodTerminating { pod } => {
                self.pod_sign(
                    pod,
                    e,
                    SignKind::PodTerminating,
                    format!("pod {pod} terminating"),
                );
            }
            Event::PodDeleted { pod } => {
                self.pod_sign(pod, e, SignKind::PodDeleted, format!("pod {pod} deleted"));
            }
            Event::PodObserved { pod, phase, .. }
                if matches!(phase, PodPhase::Failed | PodPhase::Succeeded) =>
            {
                self.pod_sign(
                    pod,
                    e,
                    SignKind::PodTerminated,
                    format!("pod {pod} {phase:?}"),
                );
            }
            Event::PodReachabilityObserved { pod, reachability } => {
                let terminating = after.pods.get(pod).is_some_and(|p| p.terminating);
                let kind = match reachability {
                    // A pod being deleted may still answer: that does not
                    // undo its leaving.
                    Reachability::Reachable if terminating => return,
                    Reachability::Reachable => {
                        self.pods.remove(pod);
                        return;
                    }
                    Reachability::Refused => SignKind::ProbeRefused,
                    Reachability::NoAddress => SignKind::ProbeNoAddress,
                    Reachability::TimedOut | Reachability::ProtocolError => SignKind::ProbeFailed,
                };
                let what = format!("{pod} probe: {reachability:?}");
                // A terminating pod that stops answering is dead.
                if terminating && !kind.is_death() {
                    let signs = self.pods.entry(pod.clone()).or_default();
                    signs.death.get_or_insert(Sign {
                        seq: e.seq,
                        at: e.at,
                        kind,
                        what: format!("{what} while terminating"),
                    });
                }
                self.pod_sign(pod, e, kind, what);
            }
            Event::ClusterNodeObserved { pod, report } => {
                let nodes = self.pod_nodes.entry(pod.clone()).or_default();
                let previous = nodes.last().map(|(id, _)| id.clone());
                if previous.as_deref() != Some(report.node_id.as_str()) {
                    nodes.push((report.node_id.clone(), e.seq));
                    if let Some(old) = previous {
                        self.nodes.insert(
                            old.clone(),
                            Sign {
                                seq: e.seq,
                                at: e.at,
                                kind: SignKind::NewNode,
                                what: format!(
                                    "{pod} came back as node {} (was {}): its data was lost",
                                    short(&report.node_id),
                                    short(&old)
                                ),
                            },
                        );
                    }
                }
                if let Some(primary) = &report.primary_id {
                    self.followed
                        .entry(report.node_id.clone())
                        .or_default()
                        .entry(primary.clone())
                        .or_insert(e.seq);
                }
                self.peer_signs(after, e, pod);
            }
            _ => {}
        }
    }

    fn pod_sign(&mut self, pod: &str, e: &Envelope, kind: SignKind, what: String) {
        let signs = self.pods.entry(pod.to_owned()).or_default();
        let sign = Sign {
            seq: e.seq,
            at: e.at,
            kind,
            what,
        };
        if kind.is_death() && signs.death.is_none() {
            signs.death = Some(sign.clone());
        }
        signs.first.get_or_insert(sign);
    }

    /// Peer flags as the current reports give them: a node flagged by any
    /// report keeps its first flag's sign; one no longer flagged loses it.
    fn peer_signs(&mut self, after: &ClusterState, e: &Envelope, reporter: &str) {
        let mut flagged: BTreeMap<&str, PeerHealth> = BTreeMap::new();
        for id in after.cluster.pods.values() {
            let Some(node) = after.cluster.nodes.get(id) else {
                continue;
            };
            for peer in &node.report.peers {
                if matches!(peer.health, PeerHealth::Failed | PeerHealth::Suspected) {
                    let worst = flagged.entry(peer.node_id.as_str()).or_insert(peer.health);
                    if peer.health == PeerHealth::Failed {
                        *worst = PeerHealth::Failed;
                    }
                }
            }
        }
        self.nodes
            .retain(|id, sign| sign.kind == SignKind::NewNode || flagged.contains_key(id.as_str()));
        for (id, health) in flagged {
            let kind = if health == PeerHealth::Failed {
                SignKind::PeerFailed
            } else {
                SignKind::PeerSuspected
            };
            self.nodes.entry(id.to_owned()).or_insert_with(|| Sign {
                seq: e.seq,
                at: e.at,
                kind,
                what: format!(
                    "{reporter}'s report flags node {} {}",
                    short(id),
                    if kind == SignKind::PeerFailed {
                        "failed"
                    } else {
                        "suspected"
                    }
                ),
            });
        }
    }

    /// The first journaled sign that the primary `node_id` (run by `pod`)
    /// was failing: the earlier of its pod's and its node's.
    #[must_use]
    pub fn first_sign(&self, pod: Option<&str>, node_id: &str) -> Option<&Sign> {
        let of_pod = pod
            .and_then(|p| self.pods.get(p))
            .and_then(|s| s.first.as_ref());
        let of_node = self.nodes.get(node_id);
        match (of_pod, of_node) {
            (Some(a), Some(b)) => Some(if b.seq < a.seq { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// A death sign for `pod` since it was last healthy.
    #[must_use]
    pub fn death_of_pod(&self, pod: &str) -> Option<&Sign> {
        self.pods.get(pod).and_then(|s| s.death.as_ref())
    }

    /// The sign that `node_id`'s pod came back as another node.
    #[must_use]
    pub fn replaced(&self, node_id: &str) -> Option<&Sign> {
        self.nodes
            .get(node_id)
            .filter(|s| s.kind == SignKind::NewNode)
    }

    /// Seq of the first report in which `node_id` followed `primary`.
    #[must_use]
    pub fn followed_since(&self, node_id: &str, primary: &str) -> Option<u64> {
        self.followed.get(node_id)?.get(primary).copied()
    }

    /// Whether `node_id` ever reported following any of `primaries`.
    #[must_use]
    pub fn followed_any(&self, node_id: &str, primaries: &BTreeSet<&str>) -> bool {
        self.followed
            .get(node_id)
            .is_some_and(|f| f.keys().any(|p| primaries.contains(p.as_str())))
    }

    /// Every node id `pod` reported.
    pub fn nodes_of(&self, pod: &str) -> impl Iterator<Item = &str> {
        self.pod_nodes
            .get(pod)
            .into_iter()
            .flatten()
            .map(|(id, _)| id.as_str())
    }
}

/// A node id's first 8 characters, as people read them.
#[must_use]
pub fn short(node_id: &str) -> &str {
    node_id.get(..8).unwrap_or(node_id)
}
