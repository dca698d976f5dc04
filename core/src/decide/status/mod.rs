//! The published status, rendered from the projection (never read back as
//! state). Pure: the shell compares it with what the object already shows
//! and writes only a difference, keeping each condition's
//! `lastTransitionTime` while its status stays the same.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff;
use logbook_crds::Topology;
use logbook_crds::v1alpha1::{
    CONDITION_CERTIFICATE_READY, CONDITION_DEGRADED, CONDITION_JOURNAL_HEALTHY,
    CONDITION_PROGRESSING, CONDITION_READY, CONDITION_SENTINEL_QUORUM, CONDITION_SPEC_VALID,
    ClusterPhase, EndpointsStatus, FailoverRecord, JournalStatus, ValkeyClusterStatus,
};
use logbook_journal::projection::SpecStatus;
use logbook_journal::{ClusterState, Timestamp};

use crate::decide::view::ClusterView;

mod cluster;
mod parts;

pub use cluster::*;
pub use parts::*;

/// Where the status is published, for the endpoint names.
#[derive(Debug, Clone)]
pub struct StatusContext<'a> {
    /// The ValkeyCluster's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Journal backend name (`sled`, `configmap`).
    pub backend: &'a str,
}

/// A Kubernetes time from a journal timestamp.
pub fn kube_time(at: Timestamp) -> Time {
    Time(jiff::Timestamp::from_microsecond(at.as_micros()).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    at: Timestamp,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: kube_time(at),
        observed_generation: generation,
    }
}

/// The Ready (and Degraded) reason while a data pod's Valkey container
/// fails (`ContainerFailureObserved`): a failure a person must act on
/// (the shell also raises it as a Warning Event).
pub const REASON_CONTAINER_FAILING: &str = "ContainerFailing";
/// `Ready` reason while the objects of the spec in force were refused
/// (`ApplyResources` failed for good, e.g. a ServiceMonitor asked for
/// where the API server does not serve the kind).
pub const REASON_APPLY_REFUSED: &str = "ApplyRefused";

/// How many failing containers the conditions name (each Event names
/// its own).
const FAILURES_SHOWN: usize = 3;

/// The Degraded reason of a Cluster whose quorum is lost: a failure a
/// person must act on (the shell also raises it as a Warning Event).
pub const REASON_QUORUM_LOST: &str = "QuorumLost";

/// The Degraded reason while a pod being deleted has stopped answering
/// and is not gone: its node is down or cut off, and Kubernetes replaces
/// it only once that node's kubelet confirms it stopped, or a person
/// declares the node out of service. A failure a person must act on
/// (the shell also raises it as a Warning Event). Logbook never
/// force-deletes it: a node cut off looks the same from the API, and its
/// pod may still run.
pub const REASON_POD_NOT_EXITING: &str = "PodNotExiting";

/// The Degraded reason of a cluster waking with no pod that holds what
/// it made durable before it slept (its volumes lost or replaced): none
/// is given writes, a failure a person must act on (the shell also
/// raises it as a Warning Event).
pub const REASON_DATA_LOST: &str = "DataLost";

/// The status of the cluster whose projection is `state`: the published
/// view of the projection, rebuilt in full each time, in steps: what is
/// known before the spec is (`base_status`), how the cluster is judged
/// (`judge`), its phase, its conditions, then what the parts of the
/// projection add (containers failing, an upgrade, a standby, backups,
/// TLS, the defaults, a restore).
pub fn render_status(state: &ClusterState, ctx: &StatusContext<'_>) -> ValkeyClusterStatus {
    let at = state.last_at;
    let generation = observed_generation(state);
    let mut status = base_status(state, ctx, generation);
    let spec_valid = spec_valid_condition(state, at, generation);
    let journal = condition(
        CONDITION_JOURNAL_HEALTHY,
        true,
        "Appending",
        format!("journal at seq {}", state.last_seq),
        at,
        generation,
    );
    let Some(view) = ClusterView::new(state) else {
        status.phase = Some(
            if matches!(state.spec_status, SpecStatus::Rejected { .. }) {
                ClusterPhase::Failed
            } else {
                ClusterPhase::Pending
            },
        );
        status.conditions = vec![spec_valid, journal];
        return status;
    };
    let judged = judge(state, &view, ctx);
    publish_parts(&mut status, &view, &judged, ctx);
    let phase = judged.phase(&view);
    status.phase = Some(phase);
    let mut summary = judged.summary(state, ctx);
    if let Some(waits) = crate::decide::restart::deferred(&view) {
        summary = format!("{summary}; {waits}");
    }
    status.conditions = judged.conditions(&view, phase, summary, at, generation);
    status.conditions.extend([spec_valid, journal]);
    if let Some((ok, reason, message)) = certificate_condition(&view) {
        status.conditions.push(condition(
            CONDITION_CERTIFICATE_READY,
            ok,
            reason,
            message,
            at,
            generation,
        ));
    }
    if let Some(health) = judged.sentinels {
        status.conditions.push(condition(
            CONDITION_SENTINEL_QUORUM,
            health.status.quorum_reachable,
            health.reason,
            health.message,
            at,
            generation,
        ));
    }
    note_container_failures(&mut status, state);
    note_pods_not_exiting(&mut status, state);
    note_apply_refused(&mut status, state, generation);
    note_upgrade(&mut status, &view);
    note_standby(&mut status, &view);
    status.backup = backup_status(state);
    status.tls = tls_status(&view);
    status.defaults = defaults_status(state, judged.progressing);
    note_restore(&mut status, &view, at, generation);
    status
}

/// The generation the status speaks of: the last one judged.
fn observed_generation(state: &ClusterState) -> Option<i64> {
    match &state.spec_status {
        SpecStatus::Unknown => None,
        SpecStatus::Accepted { generation } | SpecStatus::Rejected { generation, .. } => {
            Some(*generation)
        }
    }
}

/// What the status says whatever the spec: pods ready, the primary, the
/// journal's head, the last failover.
fn base_status(
    state: &ClusterState,
    ctx: &StatusContext<'_>,
    observed_generation: Option<i64>,
) -> ValkeyClusterStatus {
    ValkeyClusterStatus {
        observed_generation,
        ready_replicas: Some(ready_replicas(state)),
        primary: state.replication.primary.clone(),
        journal: Some(JournalStatus {
            seq: i64::try_from(state.last_seq).unwrap_or(i64::MAX),
            hash_prefix: state.last_hash.to_hex().chars().take(12).collect(),
            backend: ctx.backend.to_owned(),
        }),
        last_failover: state.last_failover.as_ref().map(|f| FailoverRecord {
            at: Some(kube_time(f.at)),
            from: f.from.clone(),
            to: Some(f.to.clone()),
            reason: None,
            seq: i64::try_from(f.seq).ok(),
        }),
        ..ValkeyClusterStatus::default()
    }
}

fn ready_replicas(state: &ClusterState) -> i32 {
    let ready_pods = state.pods.values().filter(|p| p.ready).count();
    i32::try_from(ready_pods).unwrap_or(i32::MAX)
}

fn spec_valid_condition(state: &ClusterState, at: Timestamp, generation: Option<i64>) -> Condition {
    match &state.spec_status {
        SpecStatus::Rejected { errors, .. } => condition(
            CONDITION_SPEC_VALID,
            false,
            "SpecRejected",
            logbook_journal::SpecProblem::describe_at_v1beta1(errors),
            at,
            generation,
        ),
        SpecStatus::Accepted { .. } | SpecStatus::Unknown => condition(
            CONDITION_SPEC_VALID,
            true,
            "SpecAccepted",
            "the spec passed validation".to_owned(),
            at,
            generation,
        ),
    }
}

/// How a cluster with a spec is judged: what its phase, summary and
/// conditions are made of.
struct Judged<'a> {
    ready_replicas: i32,
    wanted: u32,
    cluster: Option<ClusterHealth>,
    sentinels: Option<crate::decide::SentinelHealth>,
    healthy_primary: bool,
    replicas_in_sync: usize,
    /// Pods on another revision than the StatefulSet's update revision.
    outdated: usize,
    /// The StatefulSet's controller has not yet computed the revision of
    /// the template last applied: whether pods are on it is not known.
    revision_pending: bool,
    /// Every pod ready, the primary healthy, the replicas in sync.
    full: bool,
    progressing: bool,
    ever_ready: bool,
    unbound: Option<&'a logbook_journal::projection::BindingView>,
    hibernation: Option<(ClusterPhase, String)>,
}

fn judge<'a>(
    state: &'a ClusterState,
    view: &ClusterView<'a>,
    ctx: &StatusContext<'_>,
) -> Judged<'a> {
    let ready_replicas = ready_replicas(state);
    let wanted = view.desired_pods();
    let wanted_i32 = i32::try_from(wanted).unwrap_or(i32::MAX);
    let cluster = (view.topology() == Topology::Cluster).then(|| cluster_health(view));
    let sentinels = (view.topology() == Topology::Sentinel)
        .then(|| crate::decide::sentinel_health(view, ctx.name, ctx.namespace));
    let healthy_primary = cluster
        .as_ref()
        .map_or_else(|| view.healthy_primary().is_some(), |h| h.served);
    let replicas_in_sync = cluster.as_ref().map_or_else(
        || {
            view.primary().map_or(0, |p| {
                view.pods().iter().filter(|r| r.in_sync_with(p)).count()
            })
        },
        |h| h.in_sync,
    );
    let outdated = state
        .statefulset
        .as_ref()
        .and_then(|s| s.update_revision.as_deref())
        .map_or(0, |rev| {
            state
                .pods
                .values()
                .filter(|p| p.revision.as_deref() != Some(rev))
                .count()
        });
    let full = ready_replicas >= wanted_i32
        && healthy_primary
        && sentinels.as_ref().is_none_or(|h| h.settled)
        && match &cluster {
            Some(h) => h.redundant,
            None => {
                view.topology() == Topology::Standalone
                    || replicas_in_sync.saturating_add(1)
                        >= usize::try_from(wanted).unwrap_or(usize::MAX)
            }
        };
    let revision_pending = state
        .statefulset
        .as_ref()
        .is_some_and(|s| s.update_revision.is_none());
    let progressing = state.applied_generation != Some(view.generation)
        || outdated > 0
        || revision_pending
        || state.pods.len() != usize::try_from(wanted).unwrap_or(usize::MAX)
        || state.switchover_request.is_some()
        || state.failover_request.is_some()
        || cluster
            .as_ref()
            .is_some_and(|h| h.reshard.is_some() && h.reshard_failing.is_none());
    let ever_ready = state
        .replication
        .boot_primary
        .as_ref()
        .is_some_and(|(p, _)| p.is_some())
        || (view.topology() == Topology::Standalone && state.replication.primary.is_some())
        || state.cluster.formed_at.is_some();
    Judged {
        ready_replicas,
        wanted,
        cluster,
        sentinels,
        healthy_primary,
        replicas_in_sync,
        outdated,
        revision_pending,
        full,
        progressing,
        ever_ready,
        unbound: state.binding.as_ref().filter(|b| b.unbound()),
        hibernation: hibernation_phase(view),
    }
}

/// The endpoints, and the shards, reshard and Sentinels' parts.
fn publish_parts(
    status: &mut ValkeyClusterStatus,
    view: &ClusterView<'_>,
    judged: &Judged<'_>,
    ctx: &StatusContext<'_>,
) {
    if view.topology() != Topology::Cluster {
        let host = format!("{}.{}.svc", ctx.name, ctx.namespace);
        status.endpoints = Some(EndpointsStatus {
            primary: Some(format!("{host}:6379")),
            read: (view.topology() != Topology::Standalone)
                .then(|| format!("{}-read.{}.svc:6379", ctx.name, ctx.namespace)),
            ..EndpointsStatus::default()
        });
    }
    if let Some(health) = &judged.cluster {
        status.shards.clone_from(&health.shards);
        status.reshard.clone_from(&health.reshard);
        status.endpoints = Some(EndpointsStatus {
            primary: Some(format!("{}.{}.svc:6379", ctx.name, ctx.namespace)),
            read: None,
            ..EndpointsStatus::default()
        });
    }
    if let Some(health) = &judged.sentinels {
        status.sentinel = Some(health.status.clone());
    }
    let external = &view.state.external;
    if view.spec.external_access.enabled
        && external.enabled
        && let Some(endpoints) = status.endpoints.as_mut()
    {
        endpoints.external_primary = external.primary.as_ref().map(|e| e.address());
        endpoints.external = external
            .pods
            .iter()
            .map(|(pod, e)| (pod.clone(), e.address()))
            .collect();
        endpoints.external_waiting.clone_from(&external.waiting);
        endpoints.external_sentinels = external.sentinels.iter().map(|e| e.address()).collect();
    }
}

impl Judged<'_> {
    fn phase(&self, view: &ClusterView<'_>) -> ClusterPhase {
        if self.unbound.is_some() {
            ClusterPhase::Unbound
        } else if let Some((phase, _)) = &self.hibernation {
            *phase
        } else if view.spec.paused {
            ClusterPhase::Paused
        } else if self.full && !self.progressing {
            ClusterPhase::Ready
        } else if !self.ever_ready {
            ClusterPhase::Creating
        } else if self.progressing && self.healthy_primary {
            ClusterPhase::Updating
        } else {
            ClusterPhase::Degraded
        }
    }

    /// The one line the Ready condition says: pods, primary, replicas,
    /// then whatever holds the cluster (unbound, asleep).
    fn summary(&self, state: &ClusterState, ctx: &StatusContext<'_>) -> String {
        let (ready_replicas, wanted) = (self.ready_replicas, self.wanted);
        let summary = match &self.cluster {
            Some(h) => format!("{ready_replicas}/{wanted} pods ready, {}", h.summary),
            None => {
                let primary_msg = state
                    .replication
                    .primary
                    .clone()
                    .unwrap_or_else(|| "none".to_owned());
                let base = format!(
                    "{ready_replicas}/{wanted} pods ready, primary {primary_msg}, {} replicas in sync",
                    self.replicas_in_sync
                );
                match &self.sentinels {
                    Some(h) => format!("{base}; {}", h.message),
                    None => base,
                }
            }
        };
        let summary = match self.unbound {
            Some(b) => format!(
                "unbound{} at {}: the operator observes and journals only, until the annotation {}={} is back on StatefulSet {}; {summary}",
                b.by.as_ref()
                    .map_or_else(String::new, |by| format!(" by {by}")),
                b.since,
                crate::names::OWNED_BY,
                ctx.name,
                crate::names::statefulset_name(ctx.name),
            ),
            None => summary,
        };
        match &self.hibernation {
            Some((_, said)) => format!("{said}; {summary}"),
            None => summary,
        }
    }

    /// Ready, Progressing and Degraded.
    fn conditions(
        &self,
        view: &ClusterView<'_>,
        phase: ClusterPhase,
        summary: String,
        at: Timestamp,
        generation: Option<i64>,
    ) -> Vec<Condition> {
        let asleep = self.hibernation.is_some();
        // Waking, with no pod holding what was made durable.
        let data_lost = (asleep && !view.spec.hibernated)
            .then(|| crate::decide::hibernation::wake_primary(view).err())
            .flatten();
        let ready = condition(
            CONDITION_READY,
            self.full && !view.spec.paused && self.unbound.is_none() && !asleep,
            ready_reason(phase),
            summary.clone(),
            at,
            generation,
        );
        let progressing = condition(
            CONDITION_PROGRESSING,
            self.progressing,
            if self.progressing {
                "Reconciling"
            } else {
                "Converged"
            },
            if self.outdated > 0 {
                format!("{} pods on an outdated revision", self.outdated)
            } else if self.revision_pending {
                "waiting for the StatefulSet's controller to compute the pods' revision".to_owned()
            } else {
                summary.clone()
            },
            at,
            generation,
        );
        let degraded = condition(
            CONDITION_DEGRADED,
            (self.ever_ready && !self.full && !asleep) || data_lost.is_some(),
            self.degraded_reason(view.state, asleep, data_lost.is_some()),
            // The loss said first: it is what a person must act on.
            match &data_lost {
                Some(why) if !summary.contains(why.as_str()) => {
                    format!("waking held: {why}; {summary}")
                }
                _ => summary,
            },
            at,
            generation,
        );
        vec![ready, progressing, degraded]
    }

    fn degraded_reason(&self, state: &ClusterState, asleep: bool, data_lost: bool) -> &'static str {
        let reduced = self.ever_ready && !self.full;
        if data_lost {
            REASON_DATA_LOST
        } else if asleep {
            "Hibernation"
        } else if self
            .cluster
            .as_ref()
            .is_some_and(|h| h.quorum_lost.is_some())
        {
            REASON_QUORUM_LOST
        } else if self
            .sentinels
            .as_ref()
            .is_some_and(|h| !h.status.quorum_reachable)
        {
            crate::decide::REASON_QUORUM_UNREACHABLE
        } else if self
            .cluster
            .as_ref()
            .is_some_and(|h| h.reshard_failing.is_some())
        {
            REASON_RESHARD_FAILING
        } else if reduced && !state.container_failures.is_empty() {
            REASON_CONTAINER_FAILING
        } else if reduced {
            "ReducedRedundancy"
        } else {
            "FullRedundancy"
        }
    }
}

const fn ready_reason(phase: ClusterPhase) -> &'static str {
    match phase {
        ClusterPhase::Ready => "Ready",
        ClusterPhase::Paused => "Paused",
        ClusterPhase::Unbound => "Unbound",
        ClusterPhase::Hibernating => "Hibernating",
        ClusterPhase::Hibernated => "Hibernated",
        ClusterPhase::Waking => "Waking",
        ClusterPhase::Pending
        | ClusterPhase::Creating
        | ClusterPhase::Degraded
        | ClusterPhase::Updating
        | ClusterPhase::Failed => "NotReady",
    }
}

/// Why pods are not ready, where the user looks first: not only in a
/// container's log.
fn note_container_failures(status: &mut ValkeyClusterStatus, state: &ClusterState) {
    if state.container_failures.is_empty() {
        return;
    }
    let mut failing = state
        .container_failures
        .iter()
        .take(FAILURES_SHOWN)
        .map(|(pod, failure)| format!("{pod}: Valkey fails: {failure}"))
        .collect::<Vec<_>>()
        .join("; ");
    let more = state
        .container_failures
        .len()
        .saturating_sub(FAILURES_SHOWN);
    if more > 0 {
        failing.push_str(&format!("; and {more} more pods (their Events say how)"));
    }
    for c in &mut status.conditions {
        if c.type_ == CONDITION_READY && c.status == "False" {
            c.reason = REASON_CONTAINER_FAILING.to_owned();
            c.message = format!("{}; {failing}", c.message);
        } else if c.type_ == CONDITION_DEGRADED && c.status == "True" {
            c.message = format!("{}; {failing}", c.message);
        }
    }
}

/// Pods being deleted that have stopped answering, with their nodes:
/// (pod, node, answering no more since).
fn pods_not_exiting(state: &ClusterState) -> Vec<(&str, &str, Option<Timestamp>)> {
    state
        .pods
        .iter()
        .filter(|(_, v)| {
            v.terminating
                && !matches!(
                    v.reachability,
                    Some(logbook_journal::Reachability::Reachable) | None
                )
        })
        .map(|(pod, v)| {
            (
                pod.as_str(),
                v.node.as_deref().unwrap_or("unknown"),
                v.failing_since,
            )
        })
        .collect()
}

/// A pod being deleted that no longer answers: while the cluster is down
/// a pod for it (`ReducedRedundancy`), `Degraded` says which, on what
/// node, and what a person does if that node is gone.
fn note_pods_not_exiting(status: &mut ValkeyClusterStatus, state: &ClusterState) {
    let stuck = pods_not_exiting(state);
    if stuck.is_empty() {
        return;
    }
    let what = stuck
        .iter()
        .map(|(pod, node, since)| {
            let since = since.map(|t| format!(" since {t}")).unwrap_or_default();
            format!(
                "{pod} is being deleted but has not answered{since} and is not gone: its node {node} \
                 may be down or cut off. Kubernetes replaces it once that node's kubelet confirms it \
                 stopped; if {node} is gone for good, declare it: kubectl taint nodes {node} \
                 node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    for c in &mut status.conditions {
        if c.type_ == CONDITION_DEGRADED && c.status == "True" && c.reason == "ReducedRedundancy" {
            c.reason = REASON_POD_NOT_EXITING.to_owned();
            c.message = format!("{}; {what}", c.message);
        }
    }
}

/// The objects of the observed generation refused (`ApplyResources`
/// failed for good): `Failed`, and `Ready` says why and what to do.
fn note_apply_refused(
    status: &mut ValkeyClusterStatus,
    state: &ClusterState,
    generation: Option<i64>,
) {
    let Some((refused, why)) = state.apply_refused.as_ref() else {
        return;
    };
    if generation != Some(*refused) {
        return;
    }
    status.phase = Some(ClusterPhase::Failed);
    for c in &mut status.conditions {
        if c.type_ == CONDITION_READY {
            c.status = "False".to_owned();
            c.reason = REASON_APPLY_REFUSED.to_owned();
            c.message = format!(
                "the objects of generation {refused} were not applied: {why} (tried again when the spec changes)"
            );
        }
    }
}

/// `status.upgrade`, and what it says in the conditions.
fn note_upgrade(status: &mut ValkeyClusterStatus, view: &ClusterView<'_>) {
    status.upgrade = upgrade_status(view);
    let Some(upgrade) = &status.upgrade else {
        return;
    };
    let reason = match upgrade.phase.as_str() {
        UPGRADE_REFUSED => Some(REASON_UPGRADE_REFUSED),
        UPGRADE_CANARY_FAILED => Some(REASON_CANARY_FAILED),
        _ => None,
    };
    for c in &mut status.conditions {
        // An image that cannot run the cluster is a spec the operator
        // cannot honour: refused, and nothing of it applied.
        if c.type_ == CONDITION_SPEC_VALID && upgrade.phase == UPGRADE_REFUSED {
            c.status = "False".to_owned();
            c.reason = REASON_UPGRADE_REFUSED.to_owned();
            c.message.clone_from(&upgrade.message);
        }
        if c.type_ == CONDITION_PROGRESSING {
            // A refused upgrade is not progressing: a person must act.
            if let Some(reason) = reason {
                c.status = "False".to_owned();
                c.reason = reason.to_owned();
            }
            c.message = format!("{}; {}", upgrade.message, c.message);
        }
    }
}

/// `status.standby`; a standby takes no write, said where people look
/// first.
fn note_standby(status: &mut ValkeyClusterStatus, view: &ClusterView<'_>) {
    status.standby = standby_status(view);
    if let Some(standby) = status
        .standby
        .as_ref()
        .filter(|s| s.phase != STANDBY_PROMOTED)
    {
        for c in &mut status.conditions {
            if c.type_ == CONDITION_READY {
                c.message = format!("{}; {}", standby.message, c.message);
            }
        }
    }
}

/// `status.restore`, and while a restore is not done, the phase and the
/// Ready condition: nothing is created before the backup is verified.
fn note_restore(
    status: &mut ValkeyClusterStatus,
    view: &ClusterView<'_>,
    at: Timestamp,
    generation: Option<i64>,
) {
    status.restore = restore_status(view);
    let Some(restore) = &status.restore else {
        return;
    };
    let restore_failing = fetch_failures(&view.state.backups.restore);
    if restore.phase == RESTORE_RESTORING && !restore_failing.is_empty() {
        // The pods cannot load the backup: not ready, and why, where the
        // user looks first (not only in an init container's log).
        let ready = condition(
            CONDITION_READY,
            false,
            "RestoreFailing",
            format!("restore of {}: {restore_failing}", restore.source),
            at,
            generation,
        );
        if let Some(first) = status.conditions.first_mut() {
            *first = ready;
        }
    }
    if restore.phase != RESTORE_COMPLETED && restore.phase != RESTORE_RESTORING {
        let refused = restore.phase == RESTORE_REFUSED;
        let message = restore.message.clone().unwrap_or_default();
        let ready = condition(
            CONDITION_READY,
            false,
            if refused {
                "RestoreRefused"
            } else {
                "RestoreVerifying"
            },
            format!("restore of {}: {message}", restore.source),
            at,
            generation,
        );
        status.phase = Some(if refused {
            ClusterPhase::Failed
        } else {
            ClusterPhase::Pending
        });
        if let Some(first) = status.conditions.first_mut() {
            *first = ready;
        }
    }
}
