//! The probe round of a Valkey Cluster: every pod's node answers `CLUSTER
//! NODES`, `CLUSTER INFO` and `INFO replication` at once; what changed is
//! recorded (`observe/cluster.rs`), a shard primary that refused is
//! probed once more at once (death is confirmed, not waited for), then
//! the runtime decides and acts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use logbook_journal::{Event, LinkStatus, Reachability, Role};
use tokio::sync::Mutex;

use super::prober::{Targets, failure_cap, settled, targets};
use super::runtime::ClusterRuntime;
use crate::metrics::Answer;
use crate::observe::{
    ClusterAnswer, ClusterObservation, cluster_answer, link_status, observe_cluster_probe,
};
use crate::valkey::{ProbeError, ValkeyClient};

/// One pod's probe: no address, an answer, or a failure.
type Outcome = Option<Result<ClusterAnswer, ProbeError>>;

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

/// Probes every pod of a Cluster once, records, decides and acts.
pub async fn round(
    rt: &Arc<Mutex<ClusterRuntime>>,
    interval: Duration,
    coarse: bool,
) -> Result<(), super::OperatorError> {
    let Some(Targets {
        client,
        pods,
        actions,
    }) = targets(rt, interval).await?
    else {
        return Ok(());
    };
    if pods.is_empty() {
        return Ok(());
    }
    let results: Vec<(String, Outcome)> = join_all(
        pods.iter()
            .map(|(name, addr)| async { (name.clone(), probe(&client, *addr).await) }),
    )
    .await;
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
    let shard_primaries: Vec<String> = guard
        .state
        .cluster
        .shards()
        .iter()
        .map(|s| s.primary.to_owned())
        .collect();
    let primary_failing = results
        .iter()
        .any(|(name, r)| shard_primaries.contains(name) && !matches!(r, Some(Ok(_))))
        || guard.state.pods.values().any(|v| v.terminating);
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
    let cap = failure_cap(&guard);
    let mut events: Vec<Event> = Vec::new();
    for (name, outcome) in &results {
        if guard.state.pods.contains_key(name) {
            events.extend(observe_cluster_probe(
                &guard.state,
                name,
                &observation(outcome),
                cap,
                want_offsets,
            ));
        }
    }
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
            let events =
                observe_cluster_probe(&guard.state, primary, &observation(&outcome), cap, true);
            guard.record(events, None).await?;
        }
    }
    guard.mark_probed();
    guard.act().await?;
    guard.flush_due().await?;
    guard.publish_status(None).await?;
    Ok(())
}
