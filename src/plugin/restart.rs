//! `restart <name> [--wait] [--timeout]`: asks the operator to restart
//! every pod of the cluster once (annotation
//! `valkey.logbook.dev/restart-requested`, an RFC 3339 time). The operator
//! journals the request, stamps it on the pod templates
//! (`valkey.logbook.dev/restarted-at`) and rolls the pods as it rolls any
//! change: replicas first, the primary last after a hand-over, never two
//! at once. The annotation stays; the same value again asks for nothing.
//!
//! `--wait` reads only Kubernetes objects: the StatefulSets stamped with
//! the request, every pod on their new revision and ready, the status
//! `Ready`.

use std::io::Write;
use std::time::Instant;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use logbook_crds::{Topology, ValkeyCluster};
use logbook_journal::Timestamp;
use serde_json::json;

use super::connect::Kube;
use super::error::{PluginError, Result};
use super::requests::Wait;
use crate::resources::labels;

/// How often `--wait` looks.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// What stands in the way of the operator acting now, if anything.
fn held(cluster: &ValkeyCluster) -> Option<(&'static str, &'static str)> {
    if cluster.spec.paused {
        Some(("paused", "resume"))
    } else if cluster.spec.hibernated {
        Some(("hibernated", "wake"))
    } else {
        None
    }
}

/// `restart <name> [--wait]`.
///
/// # Errors
/// [`PluginError::ClusterNotFound`]; [`PluginError::Refused`] for `--wait`
/// on a paused or hibernated cluster (nothing is written then); API
/// errors; [`PluginError::Timeout`].
pub async fn run(kube: &Kube, name: &str, wait: Wait, out: &mut dyn Write) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    if let (Some((state, verb)), true) = (held(&cluster), wait.wait) {
        return Err(PluginError::Refused(format!(
            "valkeycluster {name:?} is {state}: the operator restarts nothing until it is {verb}d, so --wait would only time out; `kubectl valkey {verb} {name}` first, or ask without --wait (the request then waits)"
        )));
    }
    let stamped = stamped(kube, name).await?;
    let standing = annotation(&cluster.metadata, labels::RESTART_REQUESTED).map(str::to_owned);
    let request = match standing {
        // Asked for and not stamped yet: the same restart, not a second.
        Some(standing) if stamped.as_deref() != Some(standing.as_str()) => {
            writeln!(
                out,
                "valkeycluster/{name}: a restart is already requested ({standing}) and not carried out yet; not asking twice."
            )?;
            standing
        }
        _ => {
            let request = Timestamp::now().to_string();
            let patch =
                json!({ "metadata": { "annotations": { labels::RESTART_REQUESTED: request } } });
            kube.patch_cluster(name, &patch).await?;
            writeln!(
                out,
                "valkeycluster/{name}: restart requested ({}={request}).\n{}",
                labels::RESTART_REQUESTED,
                how(&cluster, name)
            )?;
            request
        }
    };
    if let Some((state, verb)) = held(&cluster) {
        writeln!(
            out,
            "note: valkeycluster/{name} is {state}; the restart waits until it is {verb}d (`kubectl valkey {verb} {name}`)."
        )?;
    }
    if wait.wait {
        wait_restarted(kube, &cluster, name, &request, wait, out).await?;
    }
    Ok(())
}

/// What the operator does with the request, by topology.
fn how(cluster: &ValkeyCluster, name: &str) -> String {
    let order = match cluster.spec.topology {
        Topology::Standalone => {
            "Its one pod is replaced: the cluster serves nothing until it is back.".to_owned()
        }
        Topology::Replication => {
            "The operator rolls every pod once: replicas first, then the primary after a switchover to an in-sync replica (writes pause for about the replication lag), never two at once.".to_owned()
        }
        Topology::Sentinel => {
            "The operator rolls every data pod once: replicas first, then the primary after a coordinated Sentinel failover, never two at once; the Sentinels restart one at a time.".to_owned()
        }
        Topology::Cluster => {
            "The operator rolls every node once, shard by shard: replicas first, then each shard's primary after a coordinated failover, never two at once.".to_owned()
        }
    };
    format!(
        "{order} Each step is journaled (`kubectl valkey events {name}`); the same request again does nothing."
    )
}

/// The restart request stamped on the data pods' template, if any.
async fn stamped(kube: &Kube, name: &str) -> Result<Option<String>> {
    let sts_name = crate::resources::statefulset_name(name);
    Ok(statefulset(kube, &sts_name).await?.and_then(|sts| {
        let template = sts.spec?.template.metadata?;
        annotation(&template, labels::RESTARTED_AT).map(str::to_owned)
    }))
}

async fn statefulset(kube: &Kube, sts_name: &str) -> Result<Option<StatefulSet>> {
    kube.api::<StatefulSet>()
        .get_opt(sts_name)
        .await
        .map_err(|e| PluginError::from_kube(&kube.call("get", "statefulsets", Some(sts_name)), e))
}

/// What is still to do before the restart `request` is over, or `None`.
fn remaining(
    request: &str,
    sts: Option<&StatefulSet>,
    pods: &[Pod],
    sentinels: Option<&StatefulSet>,
    phase: Option<&str>,
) -> Option<String> {
    let Some(sts) = sts else {
        return Some("no StatefulSet yet".to_owned());
    };
    let template = sts.spec.as_ref().and_then(|s| s.template.metadata.as_ref());
    if template.and_then(|m| annotation(m, labels::RESTARTED_AT)) != Some(request) {
        return Some("the operator has not stamped the request on the pod template yet".to_owned());
    }
    let status = sts.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation);
    let revision = status.and_then(|s| s.update_revision.as_deref());
    let (Some(revision), true) = (revision, observed >= sts.metadata.generation) else {
        return Some("the StatefulSet's new revision is not computed yet".to_owned());
    };
    let wanted = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let old: Vec<&str> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("controller-revision-hash"))
                .map(String::as_str)
                != Some(revision)
                || !ready(p)
        })
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    if !old.is_empty() || i32::try_from(pods.len()).unwrap_or(i32::MAX) != wanted {
        return Some(format!(
            "{} of {wanted} pods restarted and ready{}",
            pods.len().saturating_sub(old.len()),
            if old.is_empty() {
                String::new()
            } else {
                format!(" (waiting for {})", old.join(", "))
            }
        ));
    }
    if let Some(sentinels) = sentinels {
        let s = sentinels.status.as_ref();
        let want = sentinels
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(0);
        let done = s.is_some_and(|s| {
            s.observed_generation >= sentinels.metadata.generation
                && s.update_revision.is_some()
                && s.current_revision == s.update_revision
                && s.updated_replicas == Some(want)
                && s.ready_replicas == Some(want)
        });
        if !done {
            return Some("the Sentinels are restarting".to_owned());
        }
    }
    if phase != Some("Ready") {
        return Some(format!(
            "every pod restarted; the status says {}",
            phase.unwrap_or("nothing yet")
        ));
    }
    None
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        && pod.metadata.deletion_timestamp.is_none()
}

/// Polls until every pod runs the template stamped with `request` and the
/// cluster is `Ready` again.
async fn wait_restarted(
    kube: &Kube,
    cluster: &ValkeyCluster,
    name: &str,
    request: &str,
    wait: Wait,
    out: &mut dyn Write,
) -> Result<()> {
    let started = Instant::now();
    let sts_name = crate::resources::statefulset_name(name);
    let sentinel_name = cluster
        .spec
        .topology
        .uses_sentinel()
        .then(|| crate::resources::sentinel_statefulset_name(name));
    loop {
        let sts = statefulset(kube, &sts_name).await?;
        let sentinels = match &sentinel_name {
            Some(s) => statefulset(kube, s).await?,
            None => None,
        };
        let pods = kube.data_pods(name).await?;
        let now = kube.cluster(name).await?;
        let phase = now
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"));
        let left = remaining(
            request,
            sts.as_ref(),
            &pods,
            sentinels.as_ref(),
            phase.as_deref(),
        );
        let Some(left) = left else {
            writeln!(
                out,
                "valkeycluster/{name}: every pod restarted, cluster Ready, after {:.1} s.",
                started.elapsed().as_secs_f64()
            )?;
            return Ok(());
        };
        if started.elapsed() >= wait.timeout {
            return Err(PluginError::Timeout(format!(
                "valkeycluster {name:?}: the restart is not over after {} s: {left} (the request stands; see `kubectl valkey events {name}`)",
                wait.timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    fn sts(stamp: Option<&str>, revision: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                generation: Some(2),
                ..ObjectMeta::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(2),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        annotations: stamp.map(|s| {
                            BTreeMap::from([(labels::RESTARTED_AT.to_owned(), s.to_owned())])
                        }),
                        ..ObjectMeta::default()
                    }),
                    spec: None,
                },
                ..StatefulSetSpec::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(2),
                update_revision: Some(revision.to_owned()),
                ..StatefulSetStatus::default()
            }),
        }
    }

    fn pod(name: &str, revision: &str, is_ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    "controller-revision-hash".to_owned(),
                    revision.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: if is_ready { "True" } else { "False" }.to_owned(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            spec: None,
        }
    }

    #[test]
    fn the_wait_ends_only_with_every_pod_on_the_stamped_revision_and_ready() {
        let at = "2026-11-30T12:00:00Z";
        let pods = [pod("c-0", "new", true), pod("c-1", "new", true)];
        // Not stamped yet (an older request is).
        let left = remaining(
            at,
            Some(&sts(Some("before"), "new")),
            &pods,
            None,
            Some("Ready"),
        );
        assert!(left.unwrap().contains("not stamped"));
        // Stamped; one pod still on the old revision.
        let mixed = [pod("c-0", "new", true), pod("c-1", "old", true)];
        let left = remaining(
            at,
            Some(&sts(Some(at), "new")),
            &mixed,
            None,
            Some("Updating"),
        );
        assert!(left.unwrap().contains("waiting for c-1"));
        // Back but not ready.
        let unready = [pod("c-0", "new", true), pod("c-1", "new", false)];
        let left = remaining(
            at,
            Some(&sts(Some(at), "new")),
            &unready,
            None,
            Some("Ready"),
        );
        assert!(left.unwrap().contains("c-1"));
        // All there; the status not Ready yet.
        let left = remaining(
            at,
            Some(&sts(Some(at), "new")),
            &pods,
            None,
            Some("Updating"),
        );
        assert!(left.unwrap().contains("Updating"));
        assert_eq!(
            remaining(at, Some(&sts(Some(at), "new")), &pods, None, Some("Ready")),
            None
        );
    }
}
