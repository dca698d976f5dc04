//! Rules for `spec.failover.fenceIsolatedPrimarySeconds`: its range, a
//! replica for Valkey's `min-replicas-to-write 1` to count, and, where
//! Valkey (a Cluster's election) or the Sentinels rather than the operator
//! promote a replacement, a detection time no shorter than the fence's
//! worst case, so the old primary is fenced before the new one is elected.
//! This module must not render configuration.

use super::error::{Errors, FieldErrorKind};
use crate::v1alpha1::failover::{
    FENCE_ISOLATED_PRIMARY_SECONDS_MAX, FENCE_ISOLATED_PRIMARY_SECONDS_MIN,
};
use crate::v1alpha1::spec::ValkeyClusterSpec;
use crate::v1alpha1::topology::Topology;

const PATH: &str = "spec.failover.fenceIsolatedPrimarySeconds";

/// Check the fence against the rest of the spec.
pub(super) fn check_fencing(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let Some(seconds) = spec.failover.fence_isolated_primary_seconds else {
        return;
    };
    errors.range(
        PATH,
        seconds,
        FENCE_ISOLATED_PRIMARY_SECONDS_MIN,
        FENCE_ISOLATED_PRIMARY_SECONDS_MAX,
        "failover.fenceIsolatedPrimarySeconds",
    );
    if spec.effective_replicas_per_shard() < 1 {
        let how = match spec.topology {
            Topology::Cluster => "set spec.replicasPerShard to 1 or more".to_owned(),
            Topology::Standalone => "use topology Replication with 2 or more replicas".to_owned(),
            Topology::Replication | Topology::Sentinel => {
                "set spec.replicas to 2 or more (the primary and a replica)".to_owned()
            }
        };
        errors.push(
            PATH,
            FieldErrorKind::Forbidden,
            format!(
                "fenceIsolatedPrimarySeconds fences a primary that no replica acknowledges (min-replicas-to-write 1), and this {} spec has no replica to count: every write would be refused; {how}, or unset it",
                spec.topology
            ),
        );
    }
    let Some(worst) = spec.failover.fence_worst_case_milliseconds() else {
        return;
    };
    // Who promotes without the operator, and after how long without the
    // old primary: a Cluster's replicas (their election follows
    // cluster-node-timeout) and the Sentinels (down-after-milliseconds).
    let detection = match spec.topology {
        Topology::Cluster => spec
            .effective_cluster_node_timeout_milliseconds()
            .map(|ms| ("spec.clusterNodeTimeoutMilliseconds", ms)),
        Topology::Sentinel => Some((
            "spec.sentinel.downAfterMilliseconds",
            spec.sentinel
                .as_ref()
                .map_or(crate::v1alpha1::defaults::SENTINEL_DOWN_AFTER_MS, |s| {
                    s.down_after_milliseconds
                }),
        )),
        Topology::Standalone | Topology::Replication => None,
    };
    if let Some((field, ms)) = detection
        && i64::from(ms) < worst
    {
        errors.push(
            PATH,
            FieldErrorKind::Invalid,
            format!(
                "a primary fenced after {seconds} s may take writes up to {worst} ms after its replicas lost it, but {field} ({ms} ms) lets a replacement be elected sooner: raise {field} to {worst} or more, or lower fenceIsolatedPrimarySeconds"
            ),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::v1alpha1::validation::{FieldErrorKind, validate};
    use crate::v1alpha1::{SentinelSpec, Topology, ValkeyClusterSpec};

    fn fenced(topology: Topology, seconds: i32) -> ValkeyClusterSpec {
        let mut s = ValkeyClusterSpec::with_topology(topology);
        s.failover.fence_isolated_primary_seconds = Some(seconds);
        s
    }

    fn refusals(s: &ValkeyClusterSpec) -> Vec<(String, FieldErrorKind, String)> {
        validate(s, None)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.path, e.kind, e.message))
            .collect()
    }

    #[test]
    fn a_fence_with_a_replica_to_count_is_valid() {
        assert!(refusals(&fenced(Topology::Replication, 2)).is_empty());
        assert!(refusals(&fenced(Topology::Replication, 60)).is_empty());
        // Default node timeout 5000 ms: a 3 s fence is fenced by 5 s.
        assert!(refusals(&fenced(Topology::Cluster, 3)).is_empty());
        let mut s = fenced(Topology::Sentinel, 3);
        s.sentinel = Some(SentinelSpec::default());
        assert!(refusals(&s).is_empty(), "{:?}", refusals(&s));
    }

    #[test]
    fn the_fence_is_in_range() {
        for bad in [0, 61, -1] {
            let got = refusals(&fenced(Topology::Replication, bad));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, "spec.failover.fenceIsolatedPrimarySeconds");
            assert_eq!(got[0].1, FieldErrorKind::OutOfRange);
        }
    }

    #[test]
    fn no_replica_to_count_is_refused_naming_the_field() {
        let mut s = fenced(Topology::Replication, 2);
        s.replicas = Some(1);
        let got = refusals(&s);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "spec.failover.fenceIsolatedPrimarySeconds");
        assert_eq!(got[0].1, FieldErrorKind::Forbidden);
        assert!(got[0].2.contains("spec.replicas to 2"), "{}", got[0].2);

        let mut s = fenced(Topology::Cluster, 2);
        s.replicas_per_shard = Some(0);
        let got = refusals(&s);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].2.contains("replicasPerShard"), "{}", got[0].2);

        let got = refusals(&fenced(Topology::Standalone, 2));
        assert!(
            got.iter()
                .any(|(p, k, _)| p == "spec.failover.fenceIsolatedPrimarySeconds"
                    && *k == FieldErrorKind::Forbidden),
            "{got:?}"
        );
    }

    #[test]
    fn an_election_sooner_than_the_fence_is_refused() {
        // 4 s fence: fenced by 6000 ms at worst, after the default 5000 ms
        // node timeout.
        let got = refusals(&fenced(Topology::Cluster, 4));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, FieldErrorKind::Invalid);
        assert!(
            got[0].2.contains("clusterNodeTimeoutMilliseconds"),
            "{}",
            got[0].2
        );
        let mut s = fenced(Topology::Cluster, 4);
        s.cluster_node_timeout_milliseconds = Some(6_000);
        assert!(refusals(&s).is_empty(), "{:?}", refusals(&s));

        let mut s = fenced(Topology::Sentinel, 4);
        s.sentinel = Some(SentinelSpec::default());
        let got = refusals(&s);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].2.contains("downAfterMilliseconds"), "{}", got[0].2);
    }

    #[test]
    fn the_rendered_directives_are_owned() {
        let mut s = ValkeyClusterSpec::with_topology(Topology::Replication);
        s.config.insert("Min-Replicas-To-Write".into(), "1".into());
        s.config.insert("min-slaves-max-lag".into(), "10".into());
        let got = refusals(&s);
        assert_eq!(got.len(), 2, "{got:?}");
        for (path, kind, message) in got {
            assert!(path.starts_with("spec.config["), "{path}");
            assert_eq!(kind, FieldErrorKind::Forbidden);
            assert!(
                message.contains("spec.failover.fenceIsolatedPrimarySeconds"),
                "{message}"
            );
        }
    }
}
