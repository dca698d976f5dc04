//! The commands that ask the operator for something: `switchover`,
//! `failover`, `pause`, `resume`. Each is one merge patch of the
//! ValkeyCluster (an annotation, or `spec.paused`); the operator journals
//! what it observes and decides. Validation here is for a clear message
//! early; the operator checks again, and refuses in the journal.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use logbook_crds::{Topology, ValkeyCluster};
use logbook_journal::Timestamp;
use serde_json::json;

use super::connect::Kube;
use super::error::{PluginError, Result};
use super::journal;
use crate::resources::labels;

/// How often `--wait` looks at the cluster.
const POLL: Duration = Duration::from_millis(500);
/// How long a request may stay cleared with the primary unchanged before
/// `--wait` takes it as refused: the status is published just after the
/// request is cleared.
const REFUSAL_GRACE: Duration = Duration::from_secs(5);

/// `--wait` and its limit.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// Wait until `status.primary` changes.
    pub wait: bool,
    /// For at most this long.
    pub timeout: Duration,
}

fn primary(c: &ValkeyCluster) -> Option<String> {
    c.status.as_ref().and_then(|s| s.primary.clone())
}

fn annotation(c: &ValkeyCluster, key: &str) -> Option<String> {
    c.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

/// Says that a request to a paused cluster waits for it to be resumed.
fn note_paused(c: &ValkeyCluster, name: &str, out: &mut dyn Write) -> Result<()> {
    if c.spec.paused {
        writeln!(
            out,
            "note: valkeycluster/{name} is paused; the request is served once it is resumed (`kubectl valkey resume {name}`)."
        )?;
    }
    Ok(())
}

/// Refuses topologies where the operator does not move the primary.
fn replicated(c: &ValkeyCluster, name: &str, what: &str) -> Result<()> {
    match c.spec.topology {
        Topology::Replication | Topology::Sentinel if c.spec.effective_replicas() > 1 => Ok(()),
        Topology::Replication | Topology::Sentinel | Topology::Standalone => {
            Err(PluginError::Refused(format!(
                "valkeycluster {name:?} has a single pod: there is no replica to {what} to"
            )))
        }
        Topology::Cluster => Err(PluginError::Refused(format!(
            "valkeycluster {name:?} is a Cluster: its shards fail over by Valkey's own election; {what} applies to Replication clusters"
        ))),
    }
}

/// `switchover <name> [--to <pod>] [--wait]`.
///
/// # Errors
/// [`PluginError::Refused`] for a pod that is not a data pod of the
/// cluster or already its primary; API errors; `--wait` timeout.
pub async fn switchover(
    kube: &Kube,
    name: &str,
    to: Option<&str>,
    wait: Wait,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    replicated(&cluster, name, "switch over")?;
    let old = primary(&cluster);
    if let Some(to) = to {
        let pods = kube.data_pods(name).await?;
        let names: Vec<String> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if !names.iter().any(|n| n == to) {
            return Err(PluginError::Refused(format!(
                "pod {to:?} is not a data pod of valkeycluster {name:?} (its data pods: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )));
        }
        if old.as_deref() == Some(to) {
            return Err(PluginError::Refused(format!(
                "pod {to:?} is already the primary of valkeycluster {name:?}"
            )));
        }
    }
    let target = to.unwrap_or(crate::decide::SWITCHOVER_AUTO);
    if let Some(standing) = annotation(&cluster, labels::SWITCHOVER_TO) {
        writeln!(
            out,
            "replacing the standing switchover request (to {standing})"
        )?;
    }
    let patch = json!({ "metadata": { "annotations": { labels::SWITCHOVER_TO: target } } });
    kube.patch_cluster(name, &patch).await?;
    writeln!(
        out,
        "valkeycluster/{name}: switchover from {} to {target} requested ({}={target}).\nThe operator hands the primary role to an in-sync replica without losing an acknowledged write (writes pause for about the replication lag), then removes the annotation.",
        old.as_deref().unwrap_or("the current primary"),
        labels::SWITCHOVER_TO
    )?;
    if wait.wait {
        wait_for_new_primary(
            kube,
            name,
            old,
            labels::SWITCHOVER_TO,
            "ClearSwitchoverRequest",
            wait,
            out,
        )
        .await?;
    }
    Ok(())
}

/// The confirmation prompt of `failover`: what is lost, and the safer
/// alternative.
#[must_use]
pub fn failover_prompt(name: &str, primary: Option<&str>) -> String {
    let primary = primary.unwrap_or("the current primary");
    format!(
        "Fail over valkeycluster {name} now?\n\
         The operator fences {primary} and promotes the replica holding the most of its data, \
         even if {primary} is healthy, WITHOUT waiting for a replica to be in sync: writes \
         {primary} acknowledged but had not yet replicated are LOST.\n\
         For a planned hand-over with no acknowledged write lost, use `kubectl valkey switchover {name}` instead.\n\
         Continue? [y/N] "
    )
}

/// `failover <name> [--yes] [--wait]`.
///
/// # Errors
/// [`PluginError::Usage`] when a confirmation is needed and standard input
/// is not a terminal; [`PluginError::Aborted`]; API errors; `--wait`
/// timeout or the operator's refusal.
pub async fn failover(
    kube: &Kube,
    name: &str,
    yes: bool,
    wait: Wait,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    replicated(&cluster, name, "fail over")?;
    let old = primary(&cluster);
    if !yes {
        confirm(&failover_prompt(name, old.as_deref()))?;
    }
    match annotation(&cluster, labels::FAILOVER_REQUESTED) {
        Some(standing) => {
            writeln!(
                out,
                "valkeycluster/{name}: a failover is already requested ({standing}); not asking twice."
            )?;
        }
        None => {
            let request = Timestamp::now().to_string();
            let patch =
                json!({ "metadata": { "annotations": { labels::FAILOVER_REQUESTED: request } } });
            kube.patch_cluster(name, &patch).await?;
            writeln!(
                out,
                "valkeycluster/{name}: failover requested ({}={request}).\nThe operator fences {}, promotes the replica with the most of its data, repoints the others, then removes the annotation; the journal records each step (`kubectl valkey events {name}`).",
                labels::FAILOVER_REQUESTED,
                old.as_deref().unwrap_or("the primary")
            )?;
        }
    }
    note_paused(&cluster, name, out)?;
    if wait.wait {
        wait_for_new_primary(
            kube,
            name,
            old,
            labels::FAILOVER_REQUESTED,
            "ClearFailoverRequest",
            wait,
            out,
        )
        .await?;
    }
    Ok(())
}

/// Asks on the terminal; only `y` or `yes` goes on.
fn confirm(prompt: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(PluginError::Usage(
            "refusing to fail over without confirmation: standard input is not a terminal, so the question cannot be asked; pass --yes to confirm (writes not yet replicated can be lost)".to_owned(),
        ));
    }
    let mut stderr = std::io::stderr();
    let asked = stderr
        .write_all(prompt.as_bytes())
        .and_then(|()| stderr.flush());
    asked.map_err(PluginError::Output)?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(PluginError::Output)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(PluginError::Aborted),
    }
}

/// Polls until `status.primary` differs from `old`. A request the operator
/// cleared with the primary unchanged was refused: the journal's reason
/// for `clear_intent` says why.
async fn wait_for_new_primary(
    kube: &Kube,
    name: &str,
    old: Option<String>,
    annotation_key: &str,
    clear_intent: &str,
    wait: Wait,
    out: &mut dyn Write,
) -> Result<()> {
    let started = Instant::now();
    let mut cleared_at: Option<Instant> = None;
    loop {
        let cluster = kube.cluster(name).await?;
        let now = primary(&cluster);
        if now.is_some() && now != old {
            writeln!(
                out,
                "valkeycluster/{name}: primary is now {} (was {}), after {:.1} s.",
                now.as_deref().unwrap_or("?"),
                old.as_deref().unwrap_or("none"),
                started.elapsed().as_secs_f64()
            )?;
            return Ok(());
        }
        if annotation(&cluster, annotation_key).is_none() {
            let since = *cleared_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= REFUSAL_GRACE {
                let why = refusal(kube, &cluster, clear_intent).await;
                return Err(PluginError::Refused(format!(
                    "the operator removed {annotation_key} from valkeycluster {name:?} without changing the primary ({}): {why}",
                    old.as_deref().unwrap_or("none")
                )));
            }
        }
        if started.elapsed() >= wait.timeout {
            return Err(PluginError::Timeout(format!(
                "valkeycluster {name:?}: the primary is still {} after {} s (the request stands; see `kubectl valkey events {name}`)",
                old.as_deref().unwrap_or("none"),
                wait.timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The reason the journal gives for the last decision to clear a request.
async fn refusal(kube: &Kube, cluster: &ValkeyCluster, clear_intent: &str) -> String {
    match journal::read(kube, cluster).await {
        Ok(view) => view
            .decisions
            .iter()
            .rev()
            .flat_map(|d| d.intents.iter())
            .find(|i| i.name == clear_intent)
            .map_or_else(
                || "the journal holds no reason".to_owned(),
                |i| i.detail.clone(),
            ),
        Err(err) => format!("(the reason is in the journal, which cannot be read: {err})"),
    }
}

/// `pause` (`paused = true`) and `resume` (`false`).
///
/// # Errors
/// API errors.
pub async fn set_paused(kube: &Kube, name: &str, paused: bool, out: &mut dyn Write) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    if cluster.spec.paused != paused {
        kube.patch_cluster(name, &json!({ "spec": { "paused": paused } }))
            .await?;
    }
    let already = if cluster.spec.paused == paused {
        " (it already was)"
    } else {
        ""
    };
    if paused {
        writeln!(
            out,
            "valkeycluster/{name} paused{already}.\nThe operator keeps observing and journaling it but decides and changes nothing: no failover (even if the primary dies), no switchover, no roll, no scaling, no request served. `kubectl valkey resume {name}` hands it back."
        )?;
    } else {
        writeln!(
            out,
            "valkeycluster/{name} resumed{already}.\nThe operator acts on it again: whatever changed while it was paused (a dead primary, a new spec, a standing request) is decided now."
        )?;
    }
    Ok(())
}

/// Sets or clears `spec.hibernated`, and says what follows.
pub async fn set_hibernated(
    kube: &Kube,
    name: &str,
    hibernated: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    let already = cluster.spec.hibernated == hibernated;
    if !already {
        kube.patch_cluster(name, &json!({ "spec": { "hibernated": hibernated } }))
            .await?;
    }
    let already = if already { " (it already was)" } else { "" };
    if hibernated {
        writeln!(
            out,
            "valkeycluster/{name} set to hibernate{already}.\nOnce any operation under way has ended, the operator pauses writes, lets the replicas catch up and writes every pod's data to its volume, then stops every pod; volumes, Services and Secrets stay. `kubectl valkey status {name}` shows the phase (Hibernating, then Hibernated); `kubectl valkey wake {name}` brings it back."
        )?;
    } else {
        writeln!(
            out,
            "valkeycluster/{name} set to wake{already}.\nIts pods start again from their volumes; once every one answers, the primary it had takes writes again (a Cluster's nodes come back with their ids and slots), with no failover. `kubectl valkey status {name}` shows the phase (Waking, then Ready)."
        )?;
    }
    Ok(())
}

/// Asks for the primaries to move back to their preferred pods now (the
/// rebalance request annotation), and says what follows.
pub async fn rebalance(kube: &Kube, name: &str, out: &mut dyn Write) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    let preferred = match cluster.spec.topology {
        Topology::Replication => format!("{name}-0"),
        Topology::Cluster => "each shard's first pod (ordinals below shards)".to_owned(),
        Topology::Standalone => {
            return Err(PluginError::Refused(format!(
                "valkeycluster {name:?} is Standalone: one pod, nothing to rebalance"
            )));
        }
        Topology::Sentinel => {
            return Err(PluginError::Refused(format!(
                "valkeycluster {name:?} is a Sentinel cluster: Sentinel chooses where the primary goes; use `kubectl valkey switchover {name} --to <pod>`"
            )));
        }
    };
    if let Some(standing) = annotation(&cluster, labels::REBALANCE_REQUESTED) {
        writeln!(
            out,
            "valkeycluster/{name}: a rebalance is already requested ({standing}); not asking twice."
        )?;
        return Ok(());
    }
    let request = Timestamp::now().to_string();
    let patch = json!({ "metadata": { "annotations": { labels::REBALANCE_REQUESTED: request } } });
    kube.patch_cluster(name, &patch).await?;
    writeln!(
        out,
        "valkeycluster/{name}: rebalance requested ({}={request}).\nThe operator moves the primary role back to {preferred} by planned hand-overs, one at a time, each journaled (reason Rebalance) and losing no acknowledged write; then it removes the annotation, saying which could not move and why (`kubectl valkey events {name}`).",
        labels::REBALANCE_REQUESTED
    )?;
    note_paused(&cluster, name, out)?;
    Ok(())
}

/// Removes `spec.replicateFrom` of a standby, and says what follows; a
/// cluster that is no standby is left alone, said so.
pub async fn promote(kube: &Kube, name: &str, out: &mut dyn Write) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    let Some(from) = cluster.spec.replicate_from.as_ref() else {
        let was = cluster
            .status
            .as_ref()
            .and_then(|s| s.standby.as_ref())
            .is_some_and(|s| s.phase == "Promoted");
        return Err(PluginError::Usage(if was {
            format!("valkeycluster/{name} was already promoted")
        } else {
            format!("valkeycluster/{name} is no standby: its spec has no replicateFrom")
        }));
    };
    let ns = cluster.metadata.namespace.as_deref().unwrap_or_default();
    let source = from.describe(ns);
    kube.patch_cluster(name, &json!({ "spec": { "replicateFrom": null } }))
        .await?;
    writeln!(
        out,
        "valkeycluster/{name} set to be promoted (it followed {source}).\nIts primary stops following the source and takes writes; its replicas keep following it. The operator reads the source's offset just before and after, and journals how far behind it was: `kubectl valkey status {name}` shows it (status.standby, phase Promoted). A promoted cluster cannot become a standby again."
    )?;
    Ok(())
}

/// Removes (`bound` false) or puts back the ownership annotation on the
/// cluster's StatefulSet, and says what follows.
pub async fn set_bound(kube: &Kube, name: &str, bound: bool, out: &mut dyn Write) -> Result<()> {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use kube::api::{Patch, PatchParams};
    // The cluster exists (else: not found, said so).
    kube.cluster(name).await?;
    let key = crate::resources::labels::OWNED_BY;
    let sts_name = crate::resources::statefulset_name(name);
    let sets = kube.api::<StatefulSet>();
    let sts = sets
        .get_opt(&sts_name)
        .await
        .map_err(|e| PluginError::from_kube(&kube.call("get", "statefulsets", Some(&sts_name)), e))?
        .ok_or_else(|| {
            PluginError::Usage(format!(
                "valkeycluster/{name} has no StatefulSet {sts_name} to {} yet",
                if bound { "bind" } else { "unbind" }
            ))
        })?;
    let already = crate::resources::labels::owned_by(&sts.metadata, name) == bound;
    if !already {
        let value = bound.then(|| name.to_owned());
        let patch = json!({ "metadata": { "annotations": { key: value } } });
        sets.patch(
            &sts_name,
            &PatchParams {
                field_manager: Some("kubectl-valkey".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            PluginError::from_kube(&kube.call("patch", "statefulsets", Some(&sts_name)), e)
        })?;
    }
    let already = if already { " (it already was)" } else { "" };
    if bound {
        writeln!(
            out,
            "valkeycluster/{name} bound{already}.\nThe operator takes it over as it now is: a primary chosen by hand is followed, its objects are marked again, and a change made by hand to a field the operator sets is put back to what the spec says."
        )?;
    } else {
        writeln!(
            out,
            "valkeycluster/{name} unbound{already}.\nThe operator removes its annotation from the cluster's other objects and then decides and changes nothing: no failover, roll, scaling or apply. Pods and data stay as they are; it keeps observing and journaling. `kubectl valkey bind {name}` hands it back."
        )?;
    }
    Ok(())
}
