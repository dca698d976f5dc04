//! The label sets of Logbook's metrics, and the bounded values some of
//! their labels take.
//!
//! A cluster is labelled `valkeycluster`, not `cluster`: in multi-cluster
//! monitoring `cluster` conventionally names the Kubernetes cluster (an
//! external label, or one added by relabeling), which a target's own
//! `cluster` label would silently replace (the chart's ServiceMonitor
//! honours the target's labels).
//!
//! Every label value is either a Kubernetes name (namespace, cluster, pod:
//! bounded by what exists), a Valkey Cluster shard's first slot (at most
//! one per shard, changed only by a reshard), or one of a closed set of catalog names (an
//! intent, a reason code, an outcome, a slot move's outcome, a failover
//! kind, a phase, a write result). Nothing free-form, no address and no sequence number is ever
//! a label: each would make a new series per value.

use logbook_crds::v1alpha1::ClusterPhase;
use prometheus_client::encoding::EncodeLabelSet;

/// One cluster: `{namespace, valkeycluster}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, EncodeLabelSet)]
pub struct ClusterLabels {
    /// The ValkeyCluster's namespace.
    pub namespace: String,
    /// The ValkeyCluster's name.
    pub valkeycluster: String,
}

impl ClusterLabels {
    /// The labels of cluster `namespace/cluster`.
    pub fn new(namespace: &str, cluster: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            valkeycluster: cluster.to_owned(),
        }
    }
}

/// `{namespace, valkeycluster, intent, reason}` of `logbook_decisions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// `Intent::name()`.
    pub intent: &'static str,
    /// `ReasonCode::name()`.
    pub reason: &'static str,
}

/// `{namespace, valkeycluster, intent, outcome}` of
/// `logbook_intent_outcomes_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// `Intent::name()`.
    pub intent: &'static str,
    /// [`Outcome::as_str`].
    pub outcome: &'static str,
}

/// `{namespace, valkeycluster, kind}` of the failover counter and histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FailoverLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// [`FailoverKind::as_str`].
    pub kind: &'static str,
}

/// `{namespace, valkeycluster, pod}` of `logbook_replication_lag_bytes`: the pod
/// by name, never by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PodLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// The replica's pod name.
    pub pod: String,
}

/// `{namespace, valkeycluster, shard}` of the `logbook_shard_*` gauges: a
/// Valkey Cluster shard by its first slot (`"0"`, `"5462"`, `"10923"`),
/// which a failover leaves alone and only a reshard changes. Never a node
/// id (a new one per lost volume) nor a pod (the primary moves).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ShardLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// The shard's first slot.
    pub shard: String,
}

/// `{namespace, valkeycluster, outcome}` of `logbook_slot_moves_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MoveLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// [`MoveOutcome::as_str`].
    pub outcome: &'static str,
}

/// `{namespace, valkeycluster, result}` of `logbook_configmap_writes_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WriteLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// [`WriteResult::as_str`].
    pub result: &'static str,
}

/// `{namespace, valkeycluster, phase}` of the one-hot `logbook_cluster_phase`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub valkeycluster: String,
    /// [`phase_name`].
    pub phase: &'static str,
}

/// `{result}` of `logbook_reconciles_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// `{version}` of `logbook_build_info`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct VersionLabels {
    /// The operator's version.
    pub version: &'static str,
}

/// How an intent and a slot move ended (the core's folds count them).
pub use logbook_core::metrics::{MoveOutcome, Outcome};

/// How a failover came about: the journal's one classification, which
/// `logbook replay failovers` uses too.
pub use logbook_journal::FailoverKind;

/// How a write of a journal ConfigMap ended (the store's own type).
pub use logbook_journal_k8s::WriteResult;

/// Every phase, for the one-hot gauge: each is exported, 1 for the current.
pub const PHASES: [ClusterPhase; 11] = [
    ClusterPhase::Pending,
    ClusterPhase::Creating,
    ClusterPhase::Ready,
    ClusterPhase::Degraded,
    ClusterPhase::Updating,
    ClusterPhase::Failed,
    ClusterPhase::Paused,
    ClusterPhase::Unbound,
    ClusterPhase::Hibernating,
    ClusterPhase::Hibernated,
    ClusterPhase::Waking,
];

/// The label value of a phase: its name as `status.phase` shows it.
pub const fn phase_name(phase: ClusterPhase) -> &'static str {
    match phase {
        ClusterPhase::Pending => "Pending",
        ClusterPhase::Creating => "Creating",
        ClusterPhase::Ready => "Ready",
        ClusterPhase::Degraded => "Degraded",
        ClusterPhase::Updating => "Updating",
        ClusterPhase::Failed => "Failed",
        ClusterPhase::Paused => "Paused",
        ClusterPhase::Unbound => "Unbound",
        ClusterPhase::Hibernating => "Hibernating",
        ClusterPhase::Hibernated => "Hibernated",
        ClusterPhase::Waking => "Waking",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_is_listed_once() {
        // `phase_name` is exhaustive, so a new phase fails to compile there;
        // this catches one added there but not to `PHASES`.
        let names: std::collections::BTreeSet<&str> =
            PHASES.iter().map(|p| phase_name(*p)).collect();
        assert_eq!(names.len(), PHASES.len());
        let json: Vec<String> = PHASES
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let mine: Vec<&str> = PHASES.iter().map(|p| phase_name(*p)).collect();
        assert_eq!(
            json, mine,
            "the label is the phase as status.phase shows it"
        );
    }
}
