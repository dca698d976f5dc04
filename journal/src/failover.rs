//! What kind of failover a journaled decision or observation is: the one
//! classification the operator's metrics (`logbook_failovers_total`) and
//! the replay tool (`logbook replay failovers`) both call, so the two
//! agree on every journal.
//!
//! - **automatic**: the operator judged the primary failed and promoted a
//!   replica (a `PromoteReplica` replacing a known primary, a
//!   `ClusterFailover` forced on a failed shard primary, a hand-over asked
//!   of Sentinel for a failed or fenced primary);
//! - **planned**: a switchover the operator carried out (`Switchover`, a
//!   coordinated `ClusterFailover` for an outdated primary, a fail-back or
//!   a rebalance, any other hand-over asked of Sentinel);
//! - **requested**: a failover a person asked the operator for (decided
//!   for `Requested`);
//! - **observed**: a new primary nobody here decided (Valkey Cluster's own
//!   election, a person's `REPLICAOF NO ONE` or `CLUSTER FAILOVER`);
//! - **sentinel**: topology Sentinel, a switch the Sentinels made by
//!   themselves (`SentinelSwitchObserved` with no hand-over asked).

use serde::{Deserialize, Serialize};

use crate::intent::{ClusterFailoverMode, Intent, PlannedIntent, ReasonCode};

/// How a failover came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverKind {
    /// The operator judged the primary failed and promoted a replica.
    Automatic,
    /// A switchover the operator carried out (requested, or for a roll or
    /// a scale-in).
    Planned,
    /// A new primary the operator did not decide (Valkey's own failover,
    /// or a person), seen in the pods' roles or the nodes' reports.
    Observed,
    /// A failover a person asked the operator for (the failover request
    /// annotation): a promotion like an automatic one, of a primary that
    /// may have been healthy, without a switchover's wait for an in-sync
    /// replica, so writes may be lost.
    Requested,
    /// Topology Sentinel: the Sentinels judged the primary down, elected a
    /// leader and switched the primary, nobody here having asked.
    Sentinel,
}

impl FailoverKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Automatic,
        Self::Planned,
        Self::Observed,
        Self::Requested,
        Self::Sentinel,
    ];

    /// The lowercase name (the metrics' `kind` label, replay's `--json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Planned => "planned",
            Self::Observed => "observed",
            Self::Requested => "requested",
            Self::Sentinel => "sentinel",
        }
    }
}

/// The failover `p` would be once it succeeds, or `None` when it changes
/// no primary. `last_primary` is the primary the journal showed last (a
/// `PromoteReplica` naming no `from` replaces it): a promotion with no
/// primary before it, or of the primary itself, is the first primary of a
/// new cluster or one journaled again, no failover.
pub fn decided(p: &PlannedIntent, last_primary: Option<&str>) -> Option<FailoverKind> {
    match &p.intent {
        Intent::PromoteReplica { pod, from } => {
            let old = from.as_deref().or(last_primary)?;
            // Only a requested failover promotes for `Requested` (a
            // switchover is its own intent).
            let kind = match p.reason.code {
                ReasonCode::Requested => FailoverKind::Requested,
                _ => FailoverKind::Automatic,
            };
            (old != pod).then_some(kind)
        }
        Intent::Switchover { .. } => Some(FailoverKind::Planned),
        Intent::SentinelFailover { .. } => Some(match p.reason.code {
            ReasonCode::Requested => FailoverKind::Requested,
            ReasonCode::PrimaryRestartedFenced | ReasonCode::PrimaryFailed { .. } => {
                FailoverKind::Automatic
            }
            _ => FailoverKind::Planned,
        }),
        Intent::ClusterFailover { mode, .. } => Some(match (mode, &p.reason.code) {
            (_, ReasonCode::Requested) => FailoverKind::Requested,
            (
                ClusterFailoverMode::Coordinated,
                ReasonCode::PrimaryOutdated
                | ReasonCode::FailBack { .. }
                | ReasonCode::Rebalance { .. },
            ) => FailoverKind::Planned,
            _ => FailoverKind::Automatic,
        }),
        // A standby's leader is no primary; its promotion ends the
        // standby, no failover.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::intent::Reason;

    fn planned(intent: Intent, code: ReasonCode) -> PlannedIntent {
        PlannedIntent {
            intent_id: uuid::Uuid::nil(),
            intent,
            reason: Reason {
                code,
                detail: "test".to_owned(),
            },
        }
    }

    #[test]
    fn a_first_primary_or_the_primary_itself_is_no_failover() {
        let promote = |from: Option<&str>| Intent::PromoteReplica {
            pod: "c-1".to_owned(),
            from: from.map(str::to_owned),
        };
        let failed = || ReasonCode::PrimaryFailed {
            death: true,
            consecutive_failures: 3,
            candidates: Vec::new(),
        };
        assert_eq!(decided(&planned(promote(None), failed()), None), None);
        assert_eq!(
            decided(&planned(promote(None), failed()), Some("c-1")),
            None
        );
        assert_eq!(
            decided(&planned(promote(None), failed()), Some("c-0")),
            Some(FailoverKind::Automatic)
        );
        assert_eq!(
            decided(&planned(promote(Some("c-0")), ReasonCode::Requested), None),
            Some(FailoverKind::Requested)
        );
    }

    #[test]
    fn names_are_the_serialized_ones() {
        for kind in FailoverKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().to_owned())
            );
        }
    }
}
