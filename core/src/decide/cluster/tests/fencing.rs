//! The isolated-primary fence in a Valkey Cluster: a hung (or cut off)
//! primary's shard is forced over only once the primary certainly refuses
//! writes.

use logbook_journal::Timestamp;

use super::*;
use crate::decide::next_deadline;

#[test]
fn a_hung_primary_is_forced_over_only_once_its_fence_is_certain() {
    let mut g = Given::formed();
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(3);
    spec.replicas_per_shard = Some(1);
    spec.failover.fence_isolated_primary_seconds = Some(1);
    g.spec_at(2, &spec).applied(2);
    g.policy.probe_interval_ms = 400;
    g.every_ms(400)
        .reach(1, Reachability::TimedOut)
        .reach(1, Reachability::TimedOut)
        .reach(1, Reachability::TimedOut);
    g.every_ms(1).repl(4, LinkStatus::Silent, 100, 7);
    let linked_at = g.state.last_at;
    assert_eq!(
        g.intents(),
        Vec::<Intent>::new(),
        "hung and corroborated, but fenced only 3 s after {linked_at}"
    );
    let fenced_by = Timestamp(linked_at.0 + 3_000_000);
    assert_eq!(next_deadline(&g.state), Some(fenced_by));
    g.every_ms(3_000).event(Event::DeadlinePassed {
        deadline: fenced_by,
    });
    let decisions = g.decide();
    assert_eq!(
        decisions.first().map(|d| d.intent.clone()),
        Some(Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Force
        })
    );
    assert!(
        decisions[0].reason.detail.contains("waited for its fence"),
        "{}",
        decisions[0].reason.detail
    );
}
