//! The probe round of a Valkey Cluster: every pod's node answers `CLUSTER
//! NODES`, `CLUSTER INFO` and `INFO replication` at once; what changed is
//! recorded (`observe/cluster.rs`), a shard primary that refused is
//! probed once more at once (death is confirmed, not waited for), then
//! the runtime decides and acts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use logbook_journal::{ClusterState, Event, LinkStatus, Reachability, Role};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::prober::{Targets, Timed, failure_cap, settled, targets};
use super::runtime::ClusterRuntime;
use crate::metrics::Answer;
use crate::observe::{
    ClusterAnswer, ClusterObservation, LinkEvidence, cluster_answer, link_status,
    observe_cluster_probe,
};
use crate::valkey::{ProbeError, ValkeyClient};

/// One pod's probe: no address, an answer, or a failure.
pub(super) type Outcome = Option<Result<ClusterAnswer, ProbeError>>;

async fn probe(client: &ValkeyClient, addr: Option<SocketAddr>) -> Outcome {
    let addr = addr?;
    Some(
        settled(|| client.cluster_probe(addr))
            .await
            .and_then(|probe| {
                cluster_answer(&probe).ok_or(ProbeError::Protocol {
                    addr,
                    detail: "CLUSTER NODES has no line for the node itself".to_owned(),
                })
            }),
    )
}

fn observation(outcome: &Outcome) -> ClusterObservation<'_> {
    match outcome {
        None => ClusterObservation::NoAddress,
        Some(Ok(answer)) => ClusterObservation::Answered(answer),
        Some(Err(err)) => ClusterObservation::Failed(err),
    }
}

fn shard_primaries(state: &ClusterState) -> Vec<String> {
    state
        .cluster
        .shards()
        .iter()
        .map(|s| s.primary.to_owned())
        .collect()
}

/// Every pod probed at once.
pub(super) async fn probe_pods(
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
) -> Vec<(String, Outcome)> {
    join_all(
        pods.iter()
            .map(|(name, addr)| async { (name.clone(), probe(client, *addr).await) }),
    )
    .await
}

/// Every pod probed at once, each with the moment it answered.
async fn probe_pods_timed(
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
) -> Vec<Timed<ClusterAnswer>> {
    join_all(pods.iter().map(|(name, addr)| async {
        let outcome = probe(client, *addr).await;
        (name.clone(), outcome, Instant::now())
    }))
    .await
}

/// [`read_again`](super::prober::read_again) for the Cluster prober:
/// when any probe timed out (a frozen shard primary, say), every pod that
/// answered, as the Replication prober does.
async fn read_again_when_one_timed_out(
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
    results: Vec<Timed<ClusterAnswer>>,
    stalls: &mut super::prober::Stalls,
) -> Vec<Timed<ClusterAnswer>> {
    super::prober::read_again(
        pods,
        results,
        |(_, outcome, _)| matches!(outcome, Some(Err(e)) if e.is_slowness()),
        |(_, outcome, _)| matches!(outcome, Some(Ok(_))),
        |a| a.replication.master_repl_offset,
        stalls,
        |others| async move { probe_pods_timed(client, &others).await },
    )
    .await
}

/// What one round of probes shows that the journal does not hold yet.
/// Offsets are asked for every round when `coarse`, or while a shard
/// primary fails or a replica's link is down or resyncing.
pub(super) fn round_events(
    state: &ClusterState,
    results: &[(String, Outcome)],
    cap: u32,
    coarse: bool,
    stalled: &BTreeMap<String, bool>,
) -> Vec<Event> {
    let shard_primaries = shard_primaries(state);
    let primary_failing = results
        .iter()
        .any(|(name, r)| shard_primaries.contains(name) && !matches!(r, Some(Ok(_))))
        || state.pods.values().any(|v| v.terminating);
    // A replica whose link is down or resyncing may hold writes its
    // primary no longer has (a primary restarted in place): offsets are
    // then journaled every round, the primary's and the replica's from
    // the same round, so the decider compares like with like.
    let link_broken = results.iter().any(|(_, r)| {
        matches!(r, Some(Ok(a)) if matches!(
            link_status(&a.replication),
            LinkStatus::Down | LinkStatus::Syncing
        ))
    });
    let want_offsets = coarse || primary_failing || link_broken;
    // The shard primaries failing this round: their replicas' silence is
    // what corroborates a timeout (see `decide/cluster/failover.rs`).
    let failing: Vec<&str> = results
        .iter()
        .filter(|(name, r)| shard_primaries.contains(name) && !matches!(r, Some(Ok(_))))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut events: Vec<Event> = Vec::new();
    for (name, outcome) in results {
        if let Some(view) = state.pods.get(name) {
            let evidence = LinkEvidence {
                primary_failing: view
                    .replicates
                    .as_deref()
                    .is_some_and(|p| failing.contains(&p)),
                stalled: stalled.get(name.as_str()).copied().unwrap_or(false),
            };
            events.extend(observe_cluster_probe(
                state,
                name,
                &observation(outcome),
                cap,
                want_offsets,
                evidence,
            ));
        }
    }
    events
}

/// How often pods are probed while slot moves hold the runtime.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// What, among a round's events, the runtime must act on at once rather
/// than wait for slot moves to end: a pod that stops answering, a node
/// that changes role, a primary whose process restarted in place, a
/// replica whose link was up and drops or starts a full resync (from a
/// restarted, emptied primary it would lose what it holds once the
/// primary's sync delay is over). Changes only, against `state`: a pod
/// already known failing (each probe of it is journaled again, up to a
/// cap), a link already known down, or a new replica's first sync
/// (never up yet: it holds nothing to lose) are not news. A timeout is
/// news only when the pod also timed out the round before (it is in
/// `slow_before`): a busy node misses one deadline, a frozen one every
/// deadline, and a refused connection is death at once.
pub(super) fn alarm(
    state: &ClusterState,
    events: &[Event],
    slow_before: &BTreeSet<String>,
) -> Option<String> {
    let view = |pod: &str| state.pods.get(pod);
    events.iter().find_map(|e| match e {
        Event::PodReachabilityObserved { pod, reachability }
            if *reachability != Reachability::Reachable
                && (*reachability != Reachability::TimedOut || slow_before.contains(pod))
                && view(pod).is_some_and(|v| v.reachability != Some(*reachability)) =>
        {
            Some(format!("{pod} does not answer ({reachability:?})"))
        }
        Event::NodeRoleObserved { pod, role, .. } => {
            Some(format!("{pod} now reports the {role:?} role"))
        }
        Event::PrimaryHistoryReset { pod, .. } => Some(format!(
            "{pod} answers with a new replication history (its process restarted in place)"
        )),
        Event::ReplicationObserved { pod, link, .. }
            if matches!(link, LinkStatus::Down | LinkStatus::Syncing)
                && view(pod).is_some_and(|v| v.link == Some(LinkStatus::Up)) =>
        {
            Some(format!("{pod}'s link to its primary is {link:?}"))
        }
        _ => None,
    })
}

/// The pods a round's events show timing out.
fn timed_out(events: &[Event]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PodReachabilityObserved {
                pod,
                reachability: Reachability::TimedOut,
            } => Some(pod.clone()),
            _ => None,
        })
        .collect()
}

/// Probes every pod every [`WATCH_EVERY`] until a round shows something
/// [`alarm`] names (against `state`, the journal before the moves), and
/// returns it. Never returns otherwise: run beside the moves.
pub(super) async fn watch_for_alarm(
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
    state: &ClusterState,
    cap: u32,
) -> String {
    let mut slow = BTreeSet::new();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let results = probe_pods(client, pods).await;
        let events = round_events(state, &results, cap, false, &BTreeMap::new());
        if let Some(why) = alarm(state, &events, &slow) {
            return why;
        }
        slow = timed_out(&events);
    }
}

/// Probes every pod of a Cluster once, records, decides and acts.
pub async fn round(
    rt: &Arc<Mutex<ClusterRuntime>>,
    interval: Duration,
    coarse: bool,
    stalls: &mut super::prober::Stalls,
) -> Result<(), super::OperatorError> {
    let Some(Targets {
        client,
        pods,
        actions,
        ..
    }) = targets(rt, interval).await?
    else {
        return Ok(());
    };
    if pods.is_empty() {
        return Ok(());
    }
    let results = probe_pods_timed(&client, &pods).await;
    let results = read_again_when_one_timed_out(&client, &pods, results, stalls).await;
    let stalled = stalls.round(results.iter().map(|(pod, outcome, at)| {
        let offset = match outcome {
            Some(Ok(a)) => Some(a.replication.master_repl_offset),
            _ => None,
        };
        (pod.as_str(), offset, *at)
    }));
    let results: Vec<(String, Outcome)> = results
        .into_iter()
        .map(|(pod, outcome, _)| (pod, outcome))
        .collect();
    let mut guard = rt.lock().await;
    if guard.actions() != actions {
        // An action ran meanwhile: these answers may predate it.
        return Ok(());
    }
    let answers: Vec<Answer<'_>> = results
        .iter()
        .map(|(pod, outcome)| {
            let answer = match outcome {
                Some(Ok(a)) => Some((
                    if a.report.is_primary() {
                        Role::Primary
                    } else {
                        Role::Replica
                    },
                    a.replication.master_repl_offset,
                )),
                Some(Err(_)) | None => None,
            };
            (pod.as_str(), answer)
        })
        .collect();
    guard.observe_probes(&answers);
    let shard_primaries = shard_primaries(&guard.state);
    let cap = failure_cap(&guard);
    let events = round_events(&guard.state, &results, cap, coarse, &stalled);
    guard.record(events, None).await?;
    // A shard primary that refused is probed once more at once: death is
    // confirmed in one probe's time, not one interval's.
    for primary in &shard_primaries {
        let refused = guard.state.pods.get(primary).is_some_and(|v| {
            matches!(
                v.reachability,
                Some(Reachability::Refused | Reachability::NoAddress)
            ) && v.consecutive_failures < crate::decide::DEATH_CONFIRMATIONS
        });
        if refused {
            let addr = pods
                .iter()
                .find(|(n, _)| n == primary)
                .and_then(|(_, a)| *a);
            let outcome = probe(&client, addr).await;
            let events = observe_cluster_probe(
                &guard.state,
                primary,
                &observation(&outcome),
                cap,
                true,
                LinkEvidence::default(),
            );
            guard.record(events, None).await?;
        }
    }
    // A pod answering for the first time: what it holds of the ACL users.
    let acls =
        super::users::read_new_node_acls(&client, &guard.state, guard.fingerprint_key()).await;
    guard.record(acls, None).await?;
    guard.mark_probed();
    guard.act().await?;
    guard.flush_due().await?;
    guard.publish_status(None).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use logbook_journal::projection::PodView;
    use logbook_journal::{ClusterState, Event, LinkStatus, Reachability, ReplId, Role};

    use super::alarm;

    fn state() -> ClusterState {
        let mut state = ClusterState::default();
        for (pod, reach, link) in [
            ("p-0", Reachability::Reachable, None),
            ("p-1", Reachability::Refused, Some(LinkStatus::Down)),
            ("p-2", Reachability::Reachable, Some(LinkStatus::Up)),
        ] {
            state.pods.insert(
                pod.to_owned(),
                PodView {
                    reachability: Some(reach),
                    link,
                    ..PodView::default()
                },
            );
        }
        state
    }

    fn reach(pod: &str, reachability: Reachability) -> Event {
        Event::PodReachabilityObserved {
            pod: pod.to_owned(),
            reachability,
        }
    }

    fn link(pod: &str, link: LinkStatus) -> Event {
        Event::ReplicationObserved {
            pod: pod.to_owned(),
            link,
            offset: 0,
            replid: ReplId::from_hex("0123456789abcdef0123456789abcdef01234567").unwrap(),
        }
    }

    #[test]
    fn changes_that_must_be_acted_on_at_once_are_alarms_and_what_is_known_is_not() {
        let s = state();
        let none = BTreeSet::new();
        assert!(alarm(&s, &[], &none).is_none());
        let why = alarm(&s, &[reach("p-0", Reachability::Refused)], &none).unwrap();
        assert!(why.contains("p-0 does not answer"), "{why}");
        // Known failing: journaled again, but not news.
        assert!(alarm(&s, &[reach("p-1", Reachability::Refused)], &none).is_none());
        assert!(alarm(&s, &[reach("p-1", Reachability::Reachable)], &none).is_none());
        assert!(alarm(&s, &[link("p-1", LinkStatus::Down)], &none).is_none());
        let why = alarm(&s, &[link("p-2", LinkStatus::Syncing)], &none).unwrap();
        assert!(why.contains("p-2's link"), "{why}");
        // A new replica's first sync: never up, nothing to lose.
        assert!(alarm(&s, &[link("p-1", LinkStatus::Syncing)], &none).is_none());
        assert!(alarm(&s, &[link("p-2", LinkStatus::Up)], &none).is_none());
        let role = Event::NodeRoleObserved {
            pod: "p-2".to_owned(),
            role: Role::Primary,
            primary: None,
        };
        assert!(alarm(&s, &[role], &none).is_some());
    }

    #[test]
    fn a_timeout_is_an_alarm_only_when_the_round_before_timed_out_too() {
        let s = state();
        let timeout = [reach("p-0", Reachability::TimedOut)];
        assert!(alarm(&s, &timeout, &BTreeSet::new()).is_none());
        assert!(
            alarm(&s, &timeout, &BTreeSet::from(["p-2".to_owned()])).is_none(),
            "another pod's slowness does not confirm p-0's"
        );
        let slow = super::timed_out(&timeout);
        assert_eq!(slow, BTreeSet::from(["p-0".to_owned()]));
        let why = alarm(&s, &timeout, &slow).unwrap();
        assert!(why.contains("p-0 does not answer (TimedOut)"), "{why}");
        // A refused connection needs no second round.
        assert!(alarm(&s, &[reach("p-0", Reachability::Refused)], &BTreeSet::new()).is_some());
    }
}
