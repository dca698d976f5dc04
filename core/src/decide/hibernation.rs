//! Hibernation (`spec.hibernated`): asleep with no pod, awake as it was.
//!
//! Going to sleep: once no operation is under way (a roll, a reshard, a
//! backup, a restore, a requested switchover or failover: each ends
//! first, decided as usual), and, with Sentinels, once too few of them
//! could take the paused primary for down to fail it over
//! (`sentinel::hold_failovers`), `PersistForHibernation` pauses writes on the
//! primaries, lets their replicas catch up and makes every pod's data
//! durable; only then are the StatefulSets applied at zero pods
//! (`ApplyResources`: `resources` sizes them by the journal's
//! hibernation). While the pods stop and while it sleeps nothing else is
//! decided: a primary stopping is not failed over.
//!
//! Waking: the objects are applied at the spec's size, and nothing is
//! decided until every data pod runs and answers; then `Wake` gives the
//! primary it had its writes back and points the others at it, so that no
//! failover is decided on the way up (a Replication's pods all boot
//! fenced, their roles being the operator's to say).

use logbook_crds::Topology;
use logbook_journal::{Intent, ReasonCode, Role};

use super::Decision;
use super::view::ClusterView;

/// What a hibernation decides: `None` when it has nothing to say (the
/// cluster is awake, or an operation must end first: the topology decides
/// as usual), `Some` with the decisions (possibly none: it sleeps, or
/// waits for its pods) when nothing else may be decided.
pub(super) fn decide_hibernation(view: &ClusterView<'_>) -> Option<Vec<Decision>> {
    let state = view.state;
    match (view.spec.hibernated, state.hibernation.as_ref()) {
        (false, None) => None,
        (true, None) => {
            if busy(view).is_some() {
                return None;
            }
            // The Sentinels lose their state asleep and their replacements
            // boot monitoring what the boot config names: it names the
            // primary that goes to sleep first.
            if view.topology() != Topology::Cluster
                && let Some(publish) = super::replication::roles::stale_boot_config(view)
            {
                return Some(vec![publish]);
            }
            if let Some(hold) = super::sentinel::hold_failovers(view) {
                return Some(hold);
            }
            Some(vec![persist(view)])
        }
        (true, Some(_)) => Some(apply_if_sized_otherwise(view, 0).into_iter().collect()),
        (false, Some(h)) => {
            if let Some(apply) = apply_if_sized_otherwise(view, view.desired_pods()) {
                return Some(vec![apply]);
            }
            let pods = view.pods();
            let wanted = usize::try_from(view.desired_pods()).unwrap_or(usize::MAX);
            let back = pods.len() == wanted && pods.iter().all(|p| p.usable());
            if !back {
                return Some(partial_wake(view).into_iter().collect());
            }
            let primary = match view.topology() {
                // A Standalone's one pod boots writable (it has no one to
                // follow), but no client reaches it through the Services
                // until it is labelled primary, which nothing decides
                // before `Wake`: it too is checked for what it made
                // durable first.
                Topology::Replication | Topology::Sentinel | Topology::Standalone => {
                    match wake_primary(view) {
                        Ok(primary) => primary,
                        // No pod holds what was persisted: none is given
                        // writes (the status says why).
                        Err(_) => return Some(Vec::new()),
                    }
                }
                Topology::Cluster => None,
            };
            let slept = h.primaries.first();
            let detail = match &primary {
                Some(primary) if Some(primary) == slept => format!(
                    "spec.hibernated unset: every pod is back from its volume; {primary} was primary when it went to sleep"
                ),
                Some(primary) => format!(
                    "spec.hibernated unset: every pod is back from its volume; {} was primary when it went to sleep but holds less than it made durable; {primary} holds it all",
                    slept.map_or("no pod", String::as_str)
                ),
                None => "spec.hibernated unset: every pod is back from its volume".to_owned(),
            };
            let unknown = without_role(view);
            let detail = if unknown.is_empty() {
                detail
            } else {
                format!(
                    "{detail}; {} came back with no role (no slot, no primary: its volume lost asleep) and keeps holding full resyncs back, since a replica of the node it replaces may still follow its address",
                    unknown.join(", ")
                )
            };
            Some(vec![Decision::new(
                Intent::Wake {
                    primary,
                    pods: pods
                        .iter()
                        .map(|p| p.name)
                        .filter(|p| !unknown.contains(p))
                        .map(str::to_owned)
                        .collect(),
                },
                ReasonCode::Wake,
                detail,
            )])
        }
    }
}

/// The pods of a Valkey Cluster that are back with no role as far as
/// their nodes say (no slot, no primary), or that have not said yet: a
/// node whose volume was lost asleep comes back as a new one, holding full
/// resyncs back (`start.sh`), at the address a replica of the node it
/// replaces may still follow. `Wake` sets the normal delay back on the
/// others only: this one keeps its fence (harmless once it is made a
/// replica; a promotion by the operator sets the normal delay).
/// Empty for the other topologies.
fn without_role<'a>(view: &ClusterView<'a>) -> Vec<&'a str> {
    if view.topology() != Topology::Cluster {
        return Vec::new();
    }
    view.pods()
        .iter()
        .filter(|p| {
            view.state
                .cluster
                .report(p.name)
                .is_none_or(|r| r.slots.is_empty() && r.primary_id.is_none())
        })
        .map(|p| p.name)
        .collect()
}

/// How long a wake waits for every data pod before it wakes with those
/// back (`spec.wakeTimeoutSeconds`), in microseconds: a pod that cannot
/// come back (unschedulable, crash-looping, its node gone) must not hold
/// the whole cluster without writes.
pub(crate) fn wake_wait_micros(view: &ClusterView<'_>) -> i64 {
    i64::from(view.spec.wake_timeout_seconds().max(0)).saturating_mul(1_000_000)
}

/// When a wake that waits on pods stops waiting for all of them: the
/// spec's asking to wake (the data made durable, if it never said so)
/// plus [`wake_wait_micros`]. `None` when not waking.
pub(super) fn wake_deadline(view: &ClusterView<'_>) -> Option<logbook_journal::Timestamp> {
    if view.spec.hibernated {
        return None;
    }
    let h = view.state.hibernation.as_ref()?;
    let from = h.waking_since.unwrap_or(h.since);
    Some(logbook_journal::Timestamp(
        from.0.saturating_add(wake_wait_micros(view)),
    ))
}

/// A Replication or Sentinel cluster past its [`wake_deadline`] with some
/// pods still not back: `Wake` with those back, when the primary it slept
/// with is among them (its data is checked by `Wake` as always); the
/// others join as replicas when they come, as any pod does. A Cluster or
/// Standalone waits for all (a shard's slots live on its own pods), and
/// so does a cluster whose slept primary is among those missing: the
/// status says what holds it.
fn partial_wake(view: &ClusterView<'_>) -> Option<Decision> {
    if !matches!(view.topology(), Topology::Replication | Topology::Sentinel) {
        return None;
    }
    let deadline = wake_deadline(view)?;
    if view.state.last_at < deadline {
        return None;
    }
    let pods = view.pods();
    let back: Vec<&str> = pods.iter().filter(|p| p.usable()).map(|p| p.name).collect();
    // The primary among those back: the one it slept with, or one that
    // holds all it made durable (never a pod that is not back).
    let primary = wake_primary_among(view, &back)
        .ok()
        .flatten()
        .filter(|p| back.contains(&p.as_str()))?;
    let missing = not_back(view).join("; ");
    Some(Decision::new(
        Intent::Wake {
            primary: Some(primary.clone()),
            pods: back.iter().map(|p| (*p).to_owned()).collect(),
        },
        ReasonCode::Wake,
        format!(
            "spec.hibernated unset {} s ago and not every pod is back ({missing}): waking with those back, {primary} primary; the others join when they come",
            wake_wait_micros(view) / 1_000_000
        ),
    ))
}

/// The pod a Replication or Sentinel cluster wakes with as its primary:
/// the one it slept with, unless what each pod holds back from its volume
/// is journaled (`PodDataObserved` at wake) and shows it holds less than
/// was made durable; then the pod that holds it all and the most. `None`
/// when it slept with no primary.
///
/// # Errors
/// Why no pod may be given writes: none holds what was made durable.
pub(super) fn wake_primary(view: &ClusterView<'_>) -> Result<Option<String>, String> {
    let pods = view.pods();
    let names: Vec<&str> = pods.iter().map(|p| p.name).collect();
    wake_primary_among(view, &names)
}

/// [`wake_primary`] among `pods` alone (those back, for a wake that
/// stopped waiting for the rest).
fn wake_primary_among(view: &ClusterView<'_>, pods: &[&str]) -> Result<Option<String>, String> {
    let state = view.state;
    let slept = state
        .hibernation
        .as_ref()
        .and_then(|h| h.primaries.first().cloned());
    let data = &state.hibernation_data;
    let Some(required) = data.required() else {
        return Ok(slept);
    };
    if pods.is_empty() || pods.iter().any(|p| !data.woken.contains_key(*p)) {
        // None back, or not read yet: `Wake` reads every pod before it
        // changes anything, and refuses a primary that holds less.
        return Ok(slept);
    }
    let holding = |pod: &str| {
        data.woken
            .get(pod)
            .filter(|now| now.holds(required))
            .copied()
    };
    if let Some(slept) = slept.as_deref().filter(|p| holding(p).is_some()) {
        return Ok(Some(slept.to_owned()));
    }
    let best = pods
        .iter()
        .filter_map(|p| holding(p).map(|d| ((d.offset, d.keys), *p)))
        .max();
    match best {
        Some((_, pod)) => Ok(Some(pod.to_owned())),
        None => Err(format!(
            "no pod holds what was made durable before it slept ({} keys at offset {}): {}; no pod is given writes (its volumes were lost or replaced: restore a backup into a new cluster, or delete this one to accept the loss)",
            required.keys,
            required.offset,
            pods.iter()
                .filter_map(|p| data
                    .woken
                    .get(*p)
                    .map(|d| format!("{p} holds {} keys at offset {}", d.keys, d.offset)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The data pods a wake still waits for, each with what holds it (not
/// created yet, its phase, how its Valkey container fails), for the
/// status: a pod that cannot come back is said, not waited on silently.
pub(super) fn not_back(view: &ClusterView<'_>) -> Vec<String> {
    let wanted = view.desired_pods();
    let pods = view.pods();
    let mut out: Vec<String> = pods
        .iter()
        .filter(|p| !p.usable())
        .map(|p| {
            let why = view
                .state
                .container_failures
                .get(p.name)
                .map(|f| format!("Valkey fails: {f}"))
                .or_else(|| p.view.phase.map(|ph| format!("{ph:?}")))
                .unwrap_or_else(|| "not answering".to_owned());
            format!("{} ({why})", p.name)
        })
        .collect();
    let missing = usize::try_from(wanted)
        .unwrap_or(usize::MAX)
        .saturating_sub(pods.len());
    // One StatefulSet's pods (not a Cluster's, one set per shard) are
    // named by ordinal: the missing ones are named.
    let prefix = pods
        .first()
        .filter(|_| view.topology() != Topology::Cluster)
        .and_then(|p| p.name.rsplit_once('-'))
        .map(|(prefix, _)| prefix);
    match prefix {
        Some(prefix) if missing > 0 => out.extend(
            (0..wanted)
                .map(|i| format!("{prefix}-{i}"))
                .filter(|name| !pods.iter().any(|p| p.name == name))
                .map(|name| format!("{name} (not created or not scheduled yet)")),
        ),
        _ if missing > 0 => out.push(format!("{missing} pod(s) not created or not scheduled yet")),
        _ => {}
    }
    out
}

/// The operation under way a hibernation waits for, if any.
pub(super) fn busy(view: &ClusterView<'_>) -> Option<&'static str> {
    let state = view.state;
    if view.roll().is_some() {
        Some("a roll of its pods")
    } else if state.reshard.run.is_some() || !state.reshard.migrations.is_empty() {
        Some("a reshard")
    } else if state.backups.running().is_some() {
        Some("a backup")
    } else if state.backups.restore.pending().is_some() {
        Some("a restore")
    } else if state.switchover_request.is_some() {
        Some("a requested switchover")
    } else if state.failover_request.is_some() {
        Some("a requested failover")
    } else if state.sentinel.failing_over() {
        Some("a Sentinel failover")
    } else if view.topology() != Topology::Cluster
        && view
            .pods()
            .iter()
            .filter(|p| p.view.role == Some(Role::Primary))
            .count()
            > 1
    {
        Some("a change of primary (more than one pod reports itself primary)")
    } else {
        None
    }
}

/// `PersistForHibernation` of every data pod with an address, the
/// primaries first.
fn persist(view: &ClusterView<'_>) -> Decision {
    let pods = view.pods();
    let primaries: Vec<String> = match view.topology() {
        Topology::Cluster => pods
            .iter()
            .filter(|p| p.usable_as(Role::Primary))
            .map(|p| p.name.to_owned())
            .collect(),
        Topology::Standalone | Topology::Replication | Topology::Sentinel => {
            view.primary().map(str::to_owned).into_iter().collect()
        }
    };
    let names: Vec<String> = pods
        .iter()
        .filter(|p| p.usable())
        .map(|p| p.name.to_owned())
        .collect();
    let detail = format!(
        "spec.hibernated set: {} pods made durable before they stop ({:?} persistence)",
        names.len(),
        view.spec.storage.persistence
    );
    Decision::new(
        Intent::PersistForHibernation {
            primaries,
            pods: names,
        },
        ReasonCode::Hibernate,
        detail,
    )
}

/// `ApplyResources` when the data StatefulSet is not at `replicas` (or
/// the spec's generation is not applied yet).
fn apply_if_sized_otherwise(view: &ClusterView<'_>, replicas: u32) -> Option<Decision> {
    let applied = view.state.applied_generation == Some(view.generation);
    let sized = view
        .state
        .statefulset
        .as_ref()
        .is_some_and(|sts| sts.replicas == replicas);
    if applied && sized {
        return None;
    }
    let (code, detail) = if replicas == 0 {
        (
            ReasonCode::Hibernate,
            "its data is durable: its StatefulSets go to zero pods".to_owned(),
        )
    } else {
        (
            ReasonCode::Wake,
            format!("its StatefulSet back to {replicas} pods"),
        )
    };
    Some(Decision::new(
        Intent::ApplyResources {
            generation: view.generation,
        },
        code,
        detail,
    ))
}
