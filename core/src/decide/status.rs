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

use super::view::ClusterView;

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

/// What the status says of a Valkey Cluster.
struct ClusterHealth {
    /// Every slot owned by a primary that answers.
    served: bool,
    /// Every shard the spec asks for, each with its replicas in sync.
    redundant: bool,
    /// Replicas in sync with their shard's primary.
    in_sync: usize,
    /// The shards, for `status.shards`.
    shards: Vec<logbook_crds::v1alpha1::ShardStatus>,
    /// One line for the conditions.
    summary: String,
    /// A majority of shard primaries silent: what it means and what a
    /// person can do.
    quorum_lost: Option<String>,
    /// A reshard under way or stopped, for `status.reshard`.
    reshard: Option<logbook_crds::v1alpha1::ReshardStatus>,
    /// A move given up: what fails and what a person can do.
    reshard_failing: Option<String>,
}

/// The Degraded reason of a Cluster whose reshard cannot go on: a move
/// keeps failing with the same error (the shell also raises it as a
/// Warning Event).
pub const REASON_RESHARD_FAILING: &str = "ReshardFailing";

/// Where the reshard stands, `None` when the slots are where the spec
/// wants them and nothing is half-moved.
fn reshard_status(
    view: &ClusterView<'_>,
) -> (
    Option<logbook_crds::v1alpha1::ReshardStatus>,
    Option<String>,
) {
    use super::cluster::resharding;
    let state = view.state;
    if state.cluster.formed_at.is_none() {
        return (None, None);
    }
    let plan = resharding::plan(view);
    let running = state
        .reshard
        .migrations
        .values()
        .filter(|m| m.job.side == logbook_journal::MigrationSide::Export)
        .count();
    let stuck = state.reshard.slot_states.values().any(|s| {
        s.migrating
            .iter()
            .chain(s.importing.iter())
            .next()
            .is_some()
    });
    let given_up = resharding::given_up(view);
    let want = view.spec.effective_shards();
    let shards = state.cluster.shards();
    let have = shards.len();
    let base = u32::try_from(want)
        .ok()
        .filter(|w| *w > 0)
        .map_or(0, |w| 16_384 / w);
    let unbalanced = usize::try_from(want).is_ok_and(|w| w != have)
        || shards.iter().any(|s| {
            let n = logbook_journal::cluster::slot_count(&s.slots);
            n < base || n > base.saturating_add(1)
        });
    if plan.is_none() && running == 0 && !stuck && given_up.is_empty() && !unbalanced {
        return (None, None);
    }
    let remaining = plan.as_ref().map_or(0, resharding::Plan::slots_to_move);
    let run = state
        .reshard
        .run
        .as_ref()
        .filter(|r| r.generation == view.generation);
    let failing = (!given_up.is_empty()).then(|| {
        let what: Vec<String> = given_up
            .iter()
            .map(|(key, f)| {
                let (from, to) = key.split_once('>').unwrap_or((key.as_str(), ""));
                let pod = |id: &str| {
                    state
                        .cluster
                        .pod_of(id)
                        .map_or_else(|| id.get(..8).unwrap_or(id).to_owned(), str::to_owned)
                };
                format!(
                    "moving slots from {} to {} failed {} times in a row with: {}",
                    pod(from),
                    pod(to),
                    f.same_error,
                    f.last_error
                )
            })
            .collect();
        format!(
            "reshard stopped: {}; the cluster is consistent (every slot has one owner) but not balanced; fix the cause and change the spec (any new generation tries again)",
            what.join("; ")
        )
    });
    let phase = if failing.is_some() {
        "Failing"
    } else if running > 0 || plan.is_some() {
        "Moving"
    } else if stuck {
        "Settling"
    } else {
        "Waiting"
    };
    let message = failing.clone().unwrap_or_else(|| match &plan {
        Some(p) => format!(
            "{remaining} slots to move in {} migration(s){}{}",
            p.moves.len(),
            if p.new_primaries.is_empty() {
                String::new()
            } else {
                format!("; new shard primaries {}", p.new_primaries.join(", "))
            },
            if p.leaving.is_empty() {
                String::new()
            } else {
                format!("; shards leaving {}", p.leaving.join(", "))
            }
        ),
        None if running > 0 => format!("{running} migration(s) under way"),
        None if stuck => "slots left half-moved are being settled".to_owned(),
        None => format!(
            "{have} shards serve slots, the spec wants {want}: waiting until {}",
            resharding::unsettled(view).map_or_else(
                || "a new shard's primary and its replicas have joined".to_owned(),
                |why| format!("the cluster settles ({why})")
            )
        ),
    });
    let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    (
        Some(logbook_crds::v1alpha1::ReshardStatus {
            phase: phase.to_owned(),
            generation: view.generation,
            shards: want,
            slots_moved: to_i32(run.map_or(0, |r| r.moved)),
            slots_remaining: to_i32(remaining),
            migrations_running: i32::try_from(running).unwrap_or(i32::MAX),
            message,
        }),
        failing,
    )
}

/// The Ready (and Degraded) reason while a data pod's Valkey container
/// fails (`ContainerFailureObserved`): a failure a person must act on
/// (the shell also raises it as a Warning Event).
pub const REASON_CONTAINER_FAILING: &str = "ContainerFailing";

/// How many failing containers the conditions name (each Event names
/// its own).
const FAILURES_SHOWN: usize = 3;

/// The Degraded reason of a Cluster whose quorum is lost: a failure a
/// person must act on (the shell also raises it as a Warning Event).
pub const REASON_QUORUM_LOST: &str = "QuorumLost";

/// The Degraded reason of a cluster waking with no pod that holds what
/// it made durable before it slept (its volumes lost or replaced): none
/// is given writes, a failure a person must act on (the shell also
/// raises it as a Warning Event).
pub const REASON_DATA_LOST: &str = "DataLost";

fn cluster_health(view: &ClusterView<'_>) -> ClusterHealth {
    let cluster = &view.state.cluster;
    let shards = cluster.shards();
    let unassigned = cluster.unassigned();
    let answering = |pod: &str| view.pod(pod).is_some_and(|p| p.usable());
    let serving = shards
        .iter()
        .filter(|s| !s.retired && answering(s.primary))
        .count();
    let in_sync_of = |s: &logbook_journal::projection::cluster::Shard<'_>| {
        s.replicas
            .iter()
            .filter(|r| {
                view.pod(r).is_some_and(|p| {
                    p.usable() && p.view.link == Some(logbook_journal::LinkStatus::Up)
                })
            })
            .count()
    };
    let in_sync: usize = shards.iter().map(in_sync_of).sum();
    let votes = super::cluster::quorum::quorum(view, &shards);
    let quorum_lost = (cluster.formed_at.is_some() && votes.lost()).then(|| {
        if view.spec.failover.takeover_on_quorum_loss {
            format!(
                "quorum lost: {}; spec.failover.takeoverOnQuorumLoss is on: the best replica of each shard whose primary stays silent for the node timeout takes it over without a vote",
                votes.describe()
            )
        } else {
            format!(
                "quorum lost: {}: no replica can be elected and the operator does not take over; bring the primaries back, or set spec.failover.takeoverOnQuorumLoss: true to let their replicas take over without a vote (losing what they had not received)",
                votes.describe()
            )
        }
    });
    let want_shards = usize::try_from(view.spec.effective_shards()).unwrap_or(0);
    let want_replicas = usize::try_from(view.spec.effective_replicas_per_shard()).unwrap_or(0);
    // Every member sees every other as it sees itself (role, primary, no
    // failure flag): gossip has converged.
    let members: Vec<_> = view
        .pods()
        .into_iter()
        .filter(|p| p.usable())
        .filter_map(|p| cluster.report(p.name))
        .collect();
    let agreed = members.iter().all(|m| {
        m.state_ok
            && members.iter().filter(|o| o.node_id != m.node_id).all(|o| {
                m.peer(&o.node_id).is_some_and(|p| {
                    p.health == logbook_journal::PeerHealth::Ok
                        && p.primary == o.is_primary()
                        && p.primary_id == o.primary_id
                })
            })
    });
    let served = cluster.formed_at.is_some() && unassigned == 0 && serving == shards.len();
    let redundant = served
        && agreed
        && shards.len() == want_shards
        && shards.iter().all(|s| in_sync_of(s) >= want_replicas);
    let to_i32 = |v: u16| i32::from(v);
    let statuses = shards
        .iter()
        .zip(0_i32..)
        .map(|(s, index)| logbook_crds::v1alpha1::ShardStatus {
            index,
            name: format!("shard-{index}"),
            primary: Some(s.primary.to_owned()),
            replicas: s.replicas.iter().map(|r| (*r).to_owned()).collect(),
            slots: s
                .slots
                .iter()
                .map(|r| logbook_crds::v1alpha1::SlotRange {
                    start: to_i32(r.start),
                    end: to_i32(r.end),
                })
                .collect(),
        })
        .collect();
    let summary = if cluster.formed_at.is_none() {
        format!("forming: {unassigned} of 16384 slots without owner")
    } else {
        format!(
            "{serving}/{want_shards} shards served, {in_sync} replicas in sync, {} of 16384 slots owned{}{}",
            16_384_u32.saturating_sub(unassigned),
            if agreed {
                ""
            } else {
                ", nodes not yet agreeing"
            },
            quorum_lost
                .as_deref()
                .map(|q| format!("; {q}"))
                .unwrap_or_default()
        )
    };
    let (reshard, reshard_failing) = reshard_status(view);
    let summary = match (&reshard, &reshard_failing) {
        (_, Some(failing)) => format!("{summary}; {failing}"),
        (Some(r), None) => format!("{summary}; reshard: {}", r.message),
        (None, None) => summary,
    };
    ClusterHealth {
        served,
        redundant,
        in_sync,
        shards: statuses,
        summary,
        quorum_lost,
        reshard,
        reshard_failing,
    }
}

/// The status of the cluster whose projection is `state`.
pub fn render_status(state: &ClusterState, ctx: &StatusContext<'_>) -> ValkeyClusterStatus {
    let at = state.last_at;
    let view = ClusterView::new(state);
    let observed_generation = match &state.spec_status {
        SpecStatus::Unknown => None,
        SpecStatus::Accepted { generation } | SpecStatus::Rejected { generation, .. } => {
            Some(*generation)
        }
    };
    let ready_pods = state.pods.values().filter(|p| p.ready).count();
    let ready_replicas = i32::try_from(ready_pods).unwrap_or(i32::MAX);
    let mut status = ValkeyClusterStatus {
        observed_generation,
        ready_replicas: Some(ready_replicas),
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
    };
    let spec_valid = match &state.spec_status {
        SpecStatus::Rejected { errors, .. } => condition(
            CONDITION_SPEC_VALID,
            false,
            "SpecRejected",
            logbook_journal::SpecProblem::describe_at_v1beta1(errors),
            at,
            observed_generation,
        ),
        SpecStatus::Accepted { .. } | SpecStatus::Unknown => condition(
            CONDITION_SPEC_VALID,
            true,
            "SpecAccepted",
            "the spec passed validation".to_owned(),
            at,
            observed_generation,
        ),
    };
    let journal = condition(
        CONDITION_JOURNAL_HEALTHY,
        true,
        "Appending",
        format!("journal at seq {}", state.last_seq),
        at,
        observed_generation,
    );
    let Some(view) = view else {
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
    let wanted = view.desired_pods();
    let wanted_i32 = i32::try_from(wanted).unwrap_or(i32::MAX);
    if view.topology() != Topology::Cluster {
        let host = format!("{}.{}.svc", ctx.name, ctx.namespace);
        status.endpoints = Some(EndpointsStatus {
            primary: Some(format!("{host}:6379")),
            read: (view.topology() != Topology::Standalone)
                .then(|| format!("{}-read.{}.svc:6379", ctx.name, ctx.namespace)),
        });
    }
    let cluster = (view.topology() == Topology::Cluster).then(|| cluster_health(&view));
    if let Some(health) = &cluster {
        status.shards.clone_from(&health.shards);
        status.reshard.clone_from(&health.reshard);
        status.endpoints = Some(EndpointsStatus {
            primary: Some(format!("{}.{}.svc:6379", ctx.name, ctx.namespace)),
            read: None,
        });
    }
    let sentinels = (view.topology() == Topology::Sentinel)
        .then(|| super::sentinel_health(&view, ctx.name, ctx.namespace));
    if let Some(health) = &sentinels {
        status.sentinel = Some(health.status.clone());
    }
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
    // The StatefulSet's controller has not yet computed the revision of
    // the template last applied: whether pods are on it is not known.
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
    let unbound = state.binding.as_ref().filter(|b| b.unbound());
    let hibernation = hibernation_phase(&view);
    let phase = if unbound.is_some() {
        ClusterPhase::Unbound
    } else if let Some((phase, _)) = &hibernation {
        *phase
    } else if view.spec.paused {
        ClusterPhase::Paused
    } else if full && !progressing {
        ClusterPhase::Ready
    } else if !ever_ready {
        ClusterPhase::Creating
    } else if progressing && healthy_primary {
        ClusterPhase::Updating
    } else {
        ClusterPhase::Degraded
    };
    status.phase = Some(phase);
    let summary = match &cluster {
        Some(h) => format!("{ready_replicas}/{wanted} pods ready, {}", h.summary),
        None => {
            let primary_msg = state
                .replication
                .primary
                .clone()
                .unwrap_or_else(|| "none".to_owned());
            let base = format!(
                "{ready_replicas}/{wanted} pods ready, primary {primary_msg}, {replicas_in_sync} replicas in sync"
            );
            match &sentinels {
                Some(h) => format!("{base}; {}", h.message),
                None => base,
            }
        }
    };
    let summary = match unbound {
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
    let summary = match &hibernation {
        Some((_, said)) => format!("{said}; {summary}"),
        None => summary,
    };
    let asleep = hibernation.is_some();
    // Waking, with no pod holding what was made durable.
    let data_lost = (asleep && !view.spec.hibernated)
        .then(|| super::hibernation::wake_primary(&view).err())
        .flatten();
    status.conditions = vec![
        condition(
            CONDITION_READY,
            full && !view.spec.paused && unbound.is_none() && !asleep,
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
            },
            summary.clone(),
            at,
            observed_generation,
        ),
        condition(
            CONDITION_PROGRESSING,
            progressing,
            if progressing {
                "Reconciling"
            } else {
                "Converged"
            },
            if outdated > 0 {
                format!("{outdated} pods on an outdated revision")
            } else if revision_pending {
                "waiting for the StatefulSet's controller to compute the pods' revision".to_owned()
            } else {
                summary.clone()
            },
            at,
            observed_generation,
        ),
        condition(
            CONDITION_DEGRADED,
            (ever_ready && !full && !asleep) || data_lost.is_some(),
            if data_lost.is_some() {
                REASON_DATA_LOST
            } else if asleep {
                "Hibernation"
            } else if cluster.as_ref().is_some_and(|h| h.quorum_lost.is_some()) {
                REASON_QUORUM_LOST
            } else if sentinels
                .as_ref()
                .is_some_and(|h| !h.status.quorum_reachable)
            {
                super::REASON_QUORUM_UNREACHABLE
            } else if cluster
                .as_ref()
                .is_some_and(|h| h.reshard_failing.is_some())
            {
                REASON_RESHARD_FAILING
            } else if ever_ready && !full && !state.container_failures.is_empty() {
                REASON_CONTAINER_FAILING
            } else if ever_ready && !full {
                "ReducedRedundancy"
            } else {
                "FullRedundancy"
            },
            // The loss said first: it is what a person must act on.
            match &data_lost {
                Some(why) if !summary.contains(why.as_str()) => {
                    format!("waking held: {why}; {summary}")
                }
                _ => summary,
            },
            at,
            observed_generation,
        ),
        spec_valid,
        journal,
    ];
    if let Some((ok, reason, message)) = certificate_condition(&view) {
        status.conditions.push(condition(
            CONDITION_CERTIFICATE_READY,
            ok,
            reason,
            message,
            at,
            observed_generation,
        ));
    }
    if let Some(health) = sentinels {
        status.conditions.push(condition(
            CONDITION_SENTINEL_QUORUM,
            health.status.quorum_reachable,
            health.reason,
            health.message,
            at,
            observed_generation,
        ));
    }
    if !state.container_failures.is_empty() {
        // Why pods are not ready, where the user looks first: not only in
        // a container's log.
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
    status.upgrade = upgrade_status(&view);
    if let Some(upgrade) = &status.upgrade {
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
    status.standby = standby_status(&view);
    if let Some(standby) = status
        .standby
        .as_ref()
        .filter(|s| s.phase != STANDBY_PROMOTED)
    {
        // Where people look first: this cluster takes no write.
        for c in &mut status.conditions {
            if c.type_ == CONDITION_READY {
                c.message = format!("{}; {}", standby.message, c.message);
            }
        }
    }
    status.backup = backup_status(state);
    status.tls = tls_status(&view);
    status.defaults = defaults_status(state, progressing);
    status.restore = restore_status(&view);
    let restore_failing = fetch_failures(&state.backups.restore);
    if let Some(restore) = &status.restore
        && restore.phase == RESTORE_RESTORING
        && !restore_failing.is_empty()
    {
        // The pods cannot load the backup: not ready, and why, where the
        // user looks first (not only in an init container's log).
        if let Some(ready) = status.conditions.first_mut() {
            *ready = condition(
                CONDITION_READY,
                false,
                "RestoreFailing",
                format!("restore of {}: {restore_failing}", restore.source),
                at,
                observed_generation,
            );
        }
    }
    if let Some(restore) = &status.restore
        && restore.phase != RESTORE_COMPLETED
        && restore.phase != RESTORE_RESTORING
    {
        // Nothing is created before the backup is verified: the cluster
        // waits (or is refused) in the phase and the Ready condition.
        let refused = restore.phase == RESTORE_REFUSED;
        status.phase = Some(if refused {
            ClusterPhase::Failed
        } else {
            ClusterPhase::Pending
        });
        let message = restore.message.clone().unwrap_or_default();
        if let Some(ready) = status.conditions.first_mut() {
            *ready = condition(
                CONDITION_READY,
                false,
                if refused {
                    "RestoreRefused"
                } else {
                    "RestoreVerifying"
                },
                format!("restore of {}: {message}", restore.source),
                at,
                observed_generation,
            );
        }
    }
    status
}

/// The Progressing reason while an image cannot run this cluster (its
/// preflight refused it; the shell also raises a Warning Event).
pub const REASON_UPGRADE_REFUSED: &str = "UpgradeRefused";
/// The Progressing reason while the canary of an upgrade failed.
pub const REASON_CANARY_FAILED: &str = "CanaryFailed";
/// `status.upgrade` phases.
pub const UPGRADE_PREFLIGHT: &str = "Preflight";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_REFUSED: &str = "Refused";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_CANARY: &str = "Canary";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_CANARY_FAILED: &str = "CanaryFailed";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_ROLLING: &str = "Rolling";

/// `status.upgrade`: a change of image under way, absent when every pod
/// known runs the spec's image.
fn upgrade_status(view: &ClusterView<'_>) -> Option<logbook_crds::v1alpha1::UpgradeStatus> {
    use super::upgrade;
    let image = &view.spec.image;
    let from = upgrade::others(view);
    if from.is_empty() {
        return None;
    }
    let version = upgrade::target_version(view).map(str::to_owned);
    let (phase, canary, message) = match upgrade::held(view) {
        Some(held) => (
            if held.refused {
                UPGRADE_REFUSED
            } else {
                UPGRADE_PREFLIGHT
            },
            None,
            held.why,
        ),
        None => {
            let hold = view
                .roll()
                .and_then(|r| upgrade::canary_hold(view, &r.pods, &r.outdated));
            match hold {
                Some(h) => (
                    if h.failed {
                        UPGRADE_CANARY_FAILED
                    } else {
                        UPGRADE_CANARY
                    },
                    Some(h.pod),
                    h.why,
                ),
                None => (
                    UPGRADE_ROLLING,
                    None,
                    format!(
                        "{image} rolls out, replicas first, primaries last by switchover; {} pods still run {}",
                        view.state
                            .versions
                            .values()
                            .filter(|v| v.image != *image)
                            .count(),
                        from.join(", ")
                    ),
                ),
            }
        }
    };
    Some(logbook_crds::v1alpha1::UpgradeStatus {
        image: image.clone(),
        version,
        from,
        phase: phase.to_owned(),
        canary,
        message,
    })
}

/// `status.restore` phase: the backup is being read and verified.
pub const RESTORE_VERIFYING: &str = "Verifying";
/// `status.restore` phase: the backup cannot be restored.
pub const RESTORE_REFUSED: &str = "Refused";
/// `status.restore` phase: pods are loading the verified backup.
pub const RESTORE_RESTORING: &str = "Restoring";
/// `status.restore` phase: done.
pub const RESTORE_COMPLETED: &str = "Completed";

/// `status.backup`: the last completed backup, one running, the
/// schedule's next fire (from the journaled schedule, no clock).
fn backup_status(state: &ClusterState) -> Option<logbook_crds::v1alpha1::ClusterBackupStatus> {
    let part = &state.backups;
    let last = part.last_completed();
    let running = part.running().map(|(o, _)| o.to_owned());
    let next = part.schedule.as_ref().and_then(|(schedule, since)| {
        let after = part
            .last_due
            .as_ref()
            .map_or(*since, |(at, _)| (*at).max(*since));
        logbook_crds::v1alpha1::next_fire_ms(schedule, after.as_micros() / 1000)
    });
    if last.is_none() && running.is_none() && next.is_none() {
        return None;
    }
    Some(logbook_crds::v1alpha1::ClusterBackupStatus {
        last_completed: last.map(|(o, _, _)| o.to_owned()),
        last_completed_at: last.map(|(_, at, _)| kube_time(at)),
        last_bytes: last.and_then(|(_, _, b)| i64::try_from(b).ok()),
        running,
        next_scheduled_at: next.map(|ms| kube_time(Timestamp::EPOCH.plus_millis(ms))),
    })
}

/// `status.tls`: the certificate as last journaled, while TLS is on.
/// What the defaults layers gave the spec in force: absent when no layer
/// but the cluster's own reaches it. Rolling while the spec a change of
/// the defaults brought is still being applied (a roll that cannot finish,
/// a pod that does not start on the new values, keeps it rolling: the
/// change waits on other clusters until it is fixed).
fn defaults_status(
    state: &ClusterState,
    progressing: bool,
) -> Option<logbook_crds::ClusterDefaultsStatus> {
    let layers = state.spec_layers.as_ref()?;
    layers.layers?;
    let in_force = layers.fingerprint.is_some()
        && state.desired.as_ref().map(|d| d.fingerprint) == layers.fingerprint;
    let plan = state
        .desired_spec()
        .and_then(Result::ok)
        .and_then(|spec| spec.plan);
    Some(logbook_crds::ClusterDefaultsStatus {
        plan,
        fields: layers
            .sources
            .iter()
            .map(|(field, from)| logbook_crds::FieldSource {
                field: field.clone(),
                from: from.clone(),
            })
            .collect(),
        rolling: layers.from_defaults && in_force && progressing,
        waiting: None,
    })
}

fn tls_status(view: &ClusterView<'_>) -> Option<logbook_crds::v1alpha1::ClusterTlsStatus> {
    if !view.spec.tls.enabled {
        return None;
    }
    let cert = view.state.tls.certificate.as_ref()?;
    Some(logbook_crds::v1alpha1::ClusterTlsStatus {
        secret: cert.secret.clone(),
        issuer: cert.source.clone(),
        not_after: cert.not_after.map(kube_time),
        problem: cert.problem.clone(),
    })
}

/// `status.restore`, when the spec names one.
fn restore_status(view: &ClusterView<'_>) -> Option<logbook_crds::v1alpha1::RestoreStatus> {
    let from = view.spec.restore_from.as_ref()?;
    let source = restore_source_name(from);
    let r = &view.state.backups.restore;
    let (phase, message) = if let Some(done) = r.completed {
        (
            RESTORE_COMPLETED,
            Some(format!(
                "completed at {done}{}",
                r.plan
                    .as_ref()
                    .map(|p| format!(
                        ": {} shard(s) from s3://{}/{}",
                        p.shards.len(),
                        p.target.bucket,
                        p.target.dir
                    ))
                    .unwrap_or_default()
            )),
        )
    } else if let Some(plan) = &r.plan {
        let failing = fetch_failures(r);
        (
            RESTORE_RESTORING,
            Some(if failing.is_empty() {
                format!(
                    "verified {} shard(s) from s3://{}/{}; the pods load them",
                    plan.shards.len(),
                    plan.target.bucket,
                    plan.target.dir
                )
            } else {
                format!(
                    "verified {} shard(s) from s3://{}/{}; {failing} (retried)",
                    plan.shards.len(),
                    plan.target.bucket,
                    plan.target.dir
                )
            }),
        )
    } else if let Some((reason, retry, _)) = &r.refused {
        if *retry {
            (RESTORE_VERIFYING, Some(format!("{reason}; reading again")))
        } else {
            (RESTORE_REFUSED, Some(reason.clone()))
        }
    } else {
        (
            RESTORE_VERIFYING,
            Some(
                "reading the manifest and verifying every object before anything is created"
                    .to_owned(),
            ),
        )
    };
    Some(logbook_crds::v1alpha1::RestoreStatus {
        source,
        phase: phase.to_owned(),
        message,
    })
}

/// The pods whose restore container failed, and how: empty when none.
fn fetch_failures(r: &logbook_journal::projection::backups::RestoreState) -> String {
    r.fetch_failures
        .iter()
        .map(|(pod, failure)| format!("pod {pod} cannot load its shard: {failure}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How `restoreFrom` is named in the status and the journal.
pub fn restore_source_name(from: &logbook_crds::RestoreSource) -> String {
    match (&from.backup, &from.path) {
        (Some(b), _) => format!("ValkeyBackup {b}"),
        (None, Some(p)) => format!(
            "s3://{}/{}",
            from.destination.as_ref().map_or("?", |d| d.bucket.as_str()),
            p.trim_matches('/')
        ),
        (None, None) => "nothing".to_owned(),
    }
}

/// The `CertificateReady` condition of a TLS cluster: (true?, reason,
/// message); `None` without TLS.
fn certificate_condition(view: &ClusterView<'_>) -> Option<(bool, &'static str, String)> {
    if !view.spec.tls.enabled {
        return None;
    }
    let tls = &view.state.tls;
    let Some(record) = tls.certificate.as_ref() else {
        return Some((
            false,
            "NotRead",
            "the certificate Secret is not read yet".to_owned(),
        ));
    };
    if let Some(problem) = &record.problem {
        return Some((false, "CertificateMissing", problem.clone()));
    }
    let Some(wanted) = tls.wanted() else {
        return Some((
            false,
            "CertificateMissing",
            format!("Secret {} holds no certificate yet", record.secret),
        ));
    };
    let stale: Vec<String> = view
        .pods()
        .iter()
        .filter(|p| tls.serves(p.name).is_some_and(|fp| fp != wanted))
        .map(|p| p.name.to_owned())
        .collect();
    let short = wanted.get(..16).unwrap_or(wanted);
    if !stale.is_empty() {
        return Some((
            false,
            "Reloading",
            format!(
                "{} serve another certificate than {short} in Secret {}; reloading",
                stale.join(", "),
                record.secret
            ),
        ));
    }
    let expiry = record
        .not_after
        .map(|t| format!(", valid until {t}"))
        .unwrap_or_default();
    Some((
        true,
        "Served",
        format!(
            "every answering node serves certificate {short} from Secret {} ({}){expiry}",
            record.secret, record.source
        ),
    ))
}

/// The phase of a hibernation, with what the status says of it: `None`
/// when the cluster is neither hibernating, asleep nor waking.
fn hibernation_phase(view: &ClusterView<'_>) -> Option<(ClusterPhase, String)> {
    let state = view.state;
    match (view.spec.hibernated, state.hibernation.as_ref()) {
        (false, None) => None,
        (true, None) => Some((
            ClusterPhase::Hibernating,
            match super::hibernation::busy(view) {
                Some(why) => format!("hibernation waits for {why} to end"),
                None => {
                    let missing = super::sentinel::unheld(view).1;
                    if missing.is_empty() {
                        "hibernating: its data is being made durable".to_owned()
                    } else {
                        format!(
                            "hibernation waits for the Sentinels to hold their failovers while writes are paused: {}",
                            missing.join("; ")
                        )
                    }
                }
            },
        )),
        (true, Some(h)) if state.pods.is_empty() && state.sentinel.pods.is_empty() => Some((
            ClusterPhase::Hibernated,
            format!(
                "hibernated since {}: no pod runs; volumes, Services and Secrets are kept; unset spec.hibernated to wake it",
                h.since
            ),
        )),
        (true, Some(_)) => Some((
            ClusterPhase::Hibernating,
            format!(
                "hibernating: data durable, {} pods still stopping",
                state.pods.len() + state.sentinel.pods.len()
            ),
        )),
        (false, Some(h)) => Some((
            ClusterPhase::Waking,
            match (
                super::hibernation::not_back(view),
                super::hibernation::wake_primary(view),
                h.primaries.as_slice(),
            ) {
                (waiting, _, _) if !waiting.is_empty() => {
                    let partial =
                        matches!(view.topology(), Topology::Replication | Topology::Sentinel);
                    match super::hibernation::wake_deadline(view) {
                        Some(deadline) if partial && view.state.last_at < deadline => format!(
                            "waking: not back yet: {}; it wakes with the pods back (its primary among them) {} s after it was asked to, if these are not back by then",
                            waiting.join(", "),
                            super::hibernation::wake_wait_micros(view) / 1_000_000
                        ),
                        _ if partial => format!(
                            "waking held: not back: {}; the primary it slept with (or a pod holding all it made durable) must be among the pods back before any is given writes",
                            waiting.join(", ")
                        ),
                        _ => format!(
                            "waking: every pod must answer before any is given writes (a {:?} keeps its data on each); not back yet: {}",
                            view.topology(),
                            waiting.join(", ")
                        ),
                    }
                }
                (_, Err(why), _) => format!("waking held: {why}"),
                (_, Ok(Some(primary)), [slept]) if primary != *slept => format!(
                    "waking: {slept} holds less than it made durable; {primary} will be primary once every pod answers"
                ),
                (_, _, [primary]) if view.topology() != Topology::Cluster => {
                    format!("waking: {primary} will be primary again once every pod answers")
                }
                _ => "waking: every pod comes back as it was".to_owned(),
            },
        )),
    }
}

/// `status.standby` phases.
pub const STANDBY_WAITING: &str = "Waiting";
/// The standby follows its source within its lag bound.
pub const STANDBY_FOLLOWING: &str = "Following";
/// The standby is past its lag bound.
pub const STANDBY_BEHIND: &str = "Behind";
/// The source cannot be read.
pub const STANDBY_SOURCE_UNREADABLE: &str = "SourceUnreadable";
/// The standby was promoted.
pub const STANDBY_PROMOTED: &str = "Promoted";

/// `status.standby`: a standby's source and lag, or its promotion; absent
/// for a cluster that never was one.
fn standby_status(view: &ClusterView<'_>) -> Option<logbook_crds::v1alpha1::StandbyStatus> {
    let known = view.state.standby.as_ref();
    let from = view.spec.replicate_from.as_ref();
    if from.is_none() && known.is_none_or(|k| k.promoted.is_none() && k.leader.is_none()) {
        return None;
    }
    let source = match (from, known) {
        (Some(_), _) => super::standby::described_source(view).unwrap_or_default(),
        (None, Some(k)) => k
            .leader
            .as_ref()
            .map(|(_, h, p)| format!("{h}:{p}"))
            .or_else(|| k.address.as_ref().map(|(h, p)| format!("{h}:{p}")))
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    let int = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
    let mut out = logbook_crds::v1alpha1::StandbyStatus {
        source: source.clone(),
        leader: known
            .and_then(|k| k.leader.as_ref())
            .map(|(p, _, _)| p.clone()),
        lag_bytes: int(known.and_then(|k| k.lag)),
        source_offset: int(known.and_then(|k| k.source_offset)),
        offset: int(known.and_then(|k| k.offset)),
        observed_at: known.and_then(|k| k.observed).map(kube_time),
        ..Default::default()
    };
    if let Some(p) = known.and_then(|k| k.promoted.as_ref()) {
        out.phase = STANDBY_PROMOTED.to_owned();
        out.leader = None;
        let mut behind = logbook_journal::projection::replication::promotion_lag(
            p.offset,
            p.source_before,
            p.source_after,
        );
        if let Some(e) = p.error.as_deref().filter(|_| p.source_before.is_none()) {
            behind.push_str(&format!(" ({e})"));
        }
        out.message = format!(
            "promoted: {} took writes at offset {}, {behind}",
            p.pod, p.offset
        );
        return Some(out);
    }
    let following = view
        .primary()
        .and_then(|p| view.pod(p))
        .is_some_and(|p| super::view::leads_standby(&p));
    let (phase, message) = match known {
        _ if from.is_none() => (
            STANDBY_FOLLOWING,
            format!("replicateFrom removed: the standby of {source} is being promoted"),
        ),
        Some(k) if k.error.is_some() => (
            STANDBY_SOURCE_UNREADABLE,
            format!(
                "standby of {source}, read-only; its source cannot be read: {}",
                k.error.as_deref().unwrap_or_default()
            ),
        ),
        Some(k) if k.behind => (
            STANDBY_BEHIND,
            format!(
                "standby of {source}, read-only; {} bytes behind, past its bound",
                k.lag.unwrap_or_default()
            ),
        ),
        Some(k) if following && k.leader.is_some() => (
            STANDBY_FOLLOWING,
            match k.lag {
                Some(lag) => format!(
                    "standby of {source}, read-only; {lag} bytes behind when last journaled"
                ),
                None => format!(
                    "standby of {source}, read-only; lag unknown (its history differs from the source's until it has synced)"
                ),
            },
        ),
        _ => (
            STANDBY_WAITING,
            format!("standby of {source}, read-only; waiting for its primary to follow the source"),
        ),
    };
    out.phase = phase.to_owned();
    out.message = message;
    Some(out)
}
