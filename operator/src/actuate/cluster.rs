//! Valkey Cluster actions: meet, assign slots, attach a replica, fail a
//! shard over, forget a node. Each checks first what the node says (a
//! node id where one is expected, the effect already there) and, after
//! acting, reads the nodes again and returns their reports as the facts
//! it established, so the next decision sees the effect and never repeats
//! the action. Nothing here decides.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{ClusterFailoverMode, Event, PeerHealth, Role, SlotRange};
use tokio::time::Instant;

use super::{ActError, Done, Target, valkey_err};
use crate::observe::{ClusterAnswer, cluster_answer, observe_report};
use crate::resources::VALKEY_PORT;
use crate::valkey::ValkeyClient;

/// How often an action polls for its effect.
pub(super) const POLL: Duration = Duration::from_millis(50);
/// How often a failover polls its replica in its first
/// [`FAST_POLL_FOR`]: a Valkey node acts on a step of its election it
/// scheduled for itself (`clusterDoBeforeSleep`) only once something wakes
/// its event loop, the next command or cluster bus message, or its cron
/// 100 ms later; the poll is that command.
const FAST_POLL: Duration = Duration::from_millis(2);
/// How long a failover polls at [`FAST_POLL`] before [`POLL`].
const FAST_POLL_FOR: Duration = Duration::from_millis(250);

/// The pause before the next poll of a failover `elapsed` after it began.
fn failover_poll(elapsed: Duration) -> Duration {
    if elapsed < FAST_POLL_FOR {
        FAST_POLL
    } else {
        POLL
    }
}
/// How long a meet may take to be seen by the nodes that met.
const MEET_WAIT: Duration = Duration::from_secs(5);

/// Probes `pod`'s node now.
pub(super) async fn answer(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
) -> Result<ClusterAnswer, ActError> {
    let addr = target.addr(pod)?;
    let probe = valkey
        .cluster_probe(addr)
        .await
        .map_err(valkey_err(format!("reading the cluster state of {pod}")))?;
    cluster_answer(&probe).ok_or_else(|| {
        ActError::Refused(format!(
            "{pod} answered CLUSTER NODES without a line for itself"
        ))
    })
}

/// The report of `pod` as an event, when it differs from the projection.
pub(super) fn reported(target: Target<'_>, pod: &str, answer: &ClusterAnswer) -> Option<Event> {
    observe_report(target.state, pod, &answer.report)
}

/// Checks that `pod` runs the node the projection says it does: an action
/// aimed at a node id is never carried out on another node that took the
/// pod's place (its volume lost) or its address.
async fn expect_node(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    addr: SocketAddr,
) -> Result<String, ActError> {
    let expected = target
        .state
        .cluster
        .node_id(pod)
        .ok_or_else(|| ActError::Refused(format!("{pod} has no known cluster node")))?
        .to_owned();
    let actual = valkey
        .cluster_myid(addr)
        .await
        .map_err(valkey_err(format!("reading the node id of {pod}")))?;
    if actual != expected {
        return Err(ActError::Refused(format!(
            "{pod} runs node {actual}, not node {expected} the decision was made for; nothing done until it is observed"
        )));
    }
    Ok(expected)
}

/// `CLUSTER MEET` `pod` (at its pod address, its node id checked) from
/// each node of `from`, then waits until each of them lists it there.
pub async fn meet(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    from: &[String],
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let node_id = expect_node(valkey, target, pod, addr).await?;
    let ip = addr.ip().to_string();
    // A node reached by node ports announces them to its peers too: met
    // there, its peers list it where clients outside reach it from the
    // first, rather than at its pod address until its first ping (a
    // `MOVED` in between would send a client outside to the pod).
    let at = target
        .state
        .external
        .pods
        .get(pod)
        .filter(|e| target.spec.external_access.enabled && e.bus_port.is_some());
    let (meet_ip, port, cport) = match at {
        Some(e) => (e.host.clone(), e.port, e.bus_port),
        None => (ip.clone(), VALKEY_PORT, None),
    };
    for f in from {
        let f_addr = target.addr(f)?;
        valkey
            .cluster_meet_bus(f_addr, &meet_ip, port, cport)
            .await
            .map_err(valkey_err(format!("{f} meeting {pod} at {meet_ip}:{port}")))?;
    }
    let deadline = Instant::now() + MEET_WAIT;
    let mut events = Vec::new();
    for f in from {
        loop {
            let seen = answer(valkey, target, f).await?;
            // At its pod address, or where it announces (external access).
            let listed_at = target.state.external.listed_at(pod);
            let known = seen.report.peer(&node_id).is_some_and(|p| {
                p.ip.as_deref()
                    .is_some_and(|at| at == ip || listed_at.contains(&at))
                    && !matches!(p.health, PeerHealth::Handshake | PeerHealth::NoAddress)
            });
            if known {
                events.extend(reported(target, f, &seen));
                break;
            }
            if Instant::now() >= deadline {
                return Err(ActError::NotYet(format!(
                    "{f} met {pod} at {ip} but does not list node {node_id} there after {} s",
                    MEET_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(Done {
        detail: format!("{pod} (node {node_id}) met at {ip} by {}", from.join(", ")),
        events,
        password: None,
    })
}

/// `CLUSTER ADDSLOTSRANGE` on `pod` for the slots of `slots` it does not
/// serve yet; refused when its table shows another owner for any.
pub async fn assign_slots(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    slots: &[SlotRange],
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    expect_node(valkey, target, pod, addr).await?;
    let before = answer(valkey, target, pod).await?;
    let owns = |r: &SlotRange| {
        before
            .report
            .slots
            .iter()
            .any(|o| o.start <= r.start && r.end <= o.end)
    };
    let missing: Vec<SlotRange> = slots.iter().copied().filter(|r| !owns(r)).collect();
    if !missing.is_empty() {
        valkey
            .cluster_addslotsrange(addr, &missing)
            .await
            .map_err(valkey_err(format!(
                "assigning slots {} to {pod}",
                logbook_journal::cluster::describe_slots(&missing)
            )))?;
    }
    // A new node boots holding full resyncs back (`start.sh`: it might
    // stand where a lost node stood); slots of a cluster being formed are
    // its own, and its replica's first sync need not wait.
    let delay = crate::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS.to_string();
    let lifted = valkey
        .config_set(addr, "repl-diskless-sync-delay", &delay)
        .await
        .map_err(valkey_err(format!(
            "setting {pod}'s full-resync delay to {delay} s"
        )));
    let after = answer(valkey, target, pod).await?;
    if let Err(err) = lifted {
        // The slots are its own already: journaled with the failure.
        return Err(err
            .after(&format!("{pod} was given its slots"))
            .with_facts(reported(target, pod, &after).into_iter().collect()));
    }
    Ok(Done {
        detail: format!(
            "{pod} serves slots {}, its full-resync delay {delay} s",
            logbook_journal::cluster::describe_slots(&after.report.slots)
        ),
        events: reported(target, pod, &after).into_iter().collect(),
        password: None,
    })
}

/// `CLUSTER REPLICATE` on `pod`, once `primary` is checked to run
/// `node_id`.
pub async fn replicate(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    primary: &str,
    node_id: &str,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    expect_node(valkey, target, pod, addr).await?;
    let primary_addr = target.addr(primary)?;
    let running = expect_node(valkey, target, primary, primary_addr).await?;
    if running != node_id {
        return Err(ActError::Refused(format!(
            "{primary} runs node {running}, not {node_id}"
        )));
    }
    let met = knows_primary(valkey, pod, addr, primary, primary_addr, node_id).await?;
    // A primary that serves no slots has nothing a full sync could carry
    // away: its replica's first sync need not wait out the delay kept for
    // replicas of a primary restarted empty (the config file restores
    // the delay on its next start).
    let empty = answer(valkey, target, primary)
        .await
        .is_ok_and(|a| a.report.slots.is_empty());
    if empty {
        valkey
            .config_set(primary_addr, "repl-diskless-sync-delay", "0")
            .await
            .map_err(valkey_err(format!(
                "setting repl-diskless-sync-delay 0 on {primary} (it serves no slots)"
            )))?;
    }
    valkey
        .cluster_replicate(addr, node_id)
        .await
        .map_err(valkey_err(format!("making {pod} a replica of {primary}")))?;
    let mut after = answer(valkey, target, pod).await?;
    if empty {
        // Its sync is immediate: wait for it, so that the reshard that
        // waits for this replica to be in sync sees it in this outcome
        // rather than a probe round later.
        let deadline = Instant::now() + SYNC_WAIT;
        while crate::observe::link_status(&after.replication) != logbook_journal::LinkStatus::Up
            && Instant::now() < deadline
        {
            tokio::time::sleep(POLL).await;
            after = answer(valkey, target, pod).await?;
        }
    }
    let mut events: Vec<Event> = reported(target, pod, &after).into_iter().collect();
    events.push(Event::NodeRoleObserved {
        pod: pod.to_owned(),
        role: Role::Replica,
        primary: Some(primary.to_owned()),
    });
    events.extend(crate::observe::observe_replication(
        target.state,
        pod,
        &after.replication,
        false,
        crate::observe::LinkEvidence::default(),
    ));
    Ok(Done {
        detail: format!(
            "{pod} replicates {primary} (node {node_id}){}{}",
            if met {
                " (met from it first: it had not heard of that node yet)"
            } else {
                ""
            },
            if empty {
                "; its first sync starts at once (the primary serves no slots: repl-diskless-sync-delay 0 until it restarts)"
            } else {
                ""
            }
        ),
        events,
        password: None,
    })
}

/// How long the first sync of a replica of an empty primary is waited for.
const SYNC_WAIT: Duration = Duration::from_secs(3);

/// How long a replica may take to learn its new primary once met.
const KNOW_WAIT: Duration = Duration::from_secs(2);

/// Makes sure the node in `pod` knows node `node_id` (its primary to be,
/// in `primary` at `primary_addr`), which `CLUSTER REPLICATE` needs ("Unknown
/// node"): a replica and a primary that joined the cluster together learn
/// of each other by gossip, which can take a second or more. When it does
/// not, it meets the primary itself and waits for the hand-shake (at most
/// [`KNOW_WAIT`]). Returns whether it had to meet it.
///
/// # Errors
///
/// [`ActError::NotYet`] when it still does not know the node after the
/// wait; [`ActError::Valkey`] when a command fails.
async fn knows_primary(
    valkey: &ValkeyClient,
    pod: &str,
    addr: SocketAddr,
    primary: &str,
    primary_addr: SocketAddr,
    node_id: &str,
) -> Result<bool, ActError> {
    let known = |lines: &[crate::valkey::ClusterNodeLine]| {
        lines.iter().any(|l| l.id == node_id && !l.handshake)
    };
    let read = || async {
        valkey
            .cluster_nodes(addr)
            .await
            .map_err(valkey_err(format!("reading the cluster nodes {pod} knows")))
    };
    if known(&read().await?) {
        return Ok(false);
    }
    valkey
        .cluster_meet(addr, &primary_addr.ip().to_string(), primary_addr.port())
        .await
        .map_err(valkey_err(format!("{pod} meeting {primary}")))?;
    let deadline = Instant::now() + KNOW_WAIT;
    loop {
        if known(&read().await?) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Err(ActError::NotYet(format!(
                "{pod} does not know {primary} (node {node_id}) {} ms after meeting it",
                KNOW_WAIT.as_millis()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How long a failover of `mode` may take: Valkey's manual failover gives
/// up after 5 s; an election needs at most twice the node timeout.
fn failover_wait(target: Target<'_>, mode: ClusterFailoverMode) -> Duration {
    let timeout = u64::try_from(
        target
            .spec
            .effective_cluster_node_timeout_milliseconds()
            .unwrap_or(5_000),
    )
    .unwrap_or(5_000);
    let ms = match mode {
        ClusterFailoverMode::Coordinated => timeout.saturating_mul(2).max(5_000),
        ClusterFailoverMode::Force | ClusterFailoverMode::Takeover => {
            timeout.saturating_mul(2).max(2_000)
        }
    };
    Duration::from_millis(ms.saturating_add(1_000))
}

/// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on the replica in `pod`, then waits
/// until it serves its shard's slots as primary.
pub async fn failover(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    from: Option<&str>,
    mode: ClusterFailoverMode,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let node_id = expect_node(valkey, target, pod, addr).await?;
    let before = answer(valkey, target, pod).await?;
    if mode == ClusterFailoverMode::Coordinated && !before.report.serves_slots() {
        coordinated_failover_ready(valkey, target, pod, addr, &node_id, from).await?;
    }
    let started = Instant::now();
    let mut unknown = None;
    if !before.report.serves_slots() {
        if mode == ClusterFailoverMode::Takeover
            && let Some(from) = from
        {
            unknown = learn_primary_slots(valkey, target, addr, from).await;
        }
        valkey
            .cluster_failover(addr, mode)
            .await
            .map_err(valkey_err(format!("starting a failover on {pod}")))?;
    }
    let deadline = started + failover_wait(target, mode);
    loop {
        let now = answer(valkey, target, pod).await?;
        if now.report.serves_slots() {
            let offset = now.replication.master_repl_offset;
            let mut events: Vec<Event> = reported(target, pod, &now).into_iter().collect();
            events.push(Event::NodeRoleObserved {
                pod: pod.to_owned(),
                role: Role::Primary,
                primary: None,
            });
            // The promotion gave the node a new replication id: journal
            // it with the role, or the next probe would see a primary
            // whose history changed under it and take the promotion for a
            // restart in place (a `PrimaryHistoryReset` naming the old
            // history, which would hand the shard back to a deposed
            // primary that holds it at a higher offset).
            events.extend(crate::observe::observe_replication(
                target.state,
                pod,
                &now.replication,
                true,
                crate::observe::LinkEvidence::default(),
            ));
            events.push(Event::ReplicaPromoted {
                pod: pod.to_owned(),
                from: from.map(str::to_owned),
                offset,
            });
            let elapsed = started.elapsed();
            // A node that once restarted as a primary booted holding full
            // resyncs back (`CLUSTER_BOOT_FENCE_SECONDS`); as the shard's
            // primary now, its replicas' resyncs take the normal delay.
            // The failover is done whatever this answers.
            let unfenced = valkey
                .config_set(
                    addr,
                    "repl-diskless-sync-delay",
                    &crate::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS.to_string(),
                )
                .await;
            return Ok(Done {
                detail: format!(
                    "{pod} took over {} slots at config epoch {} (offset {offset}) in {} ms{}{}",
                    logbook_journal::cluster::slot_count(&now.report.slots),
                    now.report.config_epoch,
                    elapsed.as_millis(),
                    unknown.map_or_else(String::new, |u| format!(
                        "; it did not learn in {} ms that its primary claims {u}: those stay with the restarted primary, and the keys of them it held are dropped",
                        LEARN_WAIT.as_millis()
                    )),
                    unfenced.err().map_or_else(String::new, |e| format!(
                        "; its full-resync delay could not be set back to {} s ({e}): its replicas' full resyncs may wait {} s",
                        crate::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS,
                        crate::resources::CLUSTER_BOOT_FENCE_SECONDS
                    ))
                ),
                events,
                password: None,
            });
        }
        if Instant::now() >= deadline {
            return Err(ActError::NotYet(format!(
                "{pod} did not take its shard over within {} ms ({} failover); Valkey's own detection carries on",
                started.elapsed().as_millis(),
                match mode {
                    ClusterFailoverMode::Coordinated => "coordinated",
                    ClusterFailoverMode::Force => "forced",
                    ClusterFailoverMode::Takeover => "takeover",
                }
            )));
        }
        tokio::time::sleep(failover_poll(started.elapsed())).await;
    }
}

/// Before a coordinated failover to the replica in `pod` (node
/// `node_id`, at `addr`) of the primary in `from`: whether every node the
/// manual failover needs sees the replica as it must, so that it completes
/// at once. Once sent, the primary pauses its writes until the replica
/// reaches its offset and wins its election, or until Valkey's manual
/// failover timeout (5 s) gives up; a replica just restarted (a roll) may
/// not be ready for either: its primary's bus link to it not up yet (the
/// primary sends it its offset over that link), a primary that votes not
/// knowing it yet as that primary's replica or not linked to it (the vote
/// travels over that link), or its current epoch behind a voter's (a vote
/// asked at an older epoch, or at one the voter already voted in, is
/// refused). Nothing is sent until each holds: `NotYet` with what does
/// not, and the decision is tried again (nothing was paused).
async fn coordinated_failover_ready(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    addr: SocketAddr,
    node_id: &str,
    from: Option<&str>,
) -> Result<(), ActError> {
    let not_yet = |why: String| {
        ActError::NotYet(format!(
            "{pod} is not ready for a coordinated failover yet (nothing sent, no write paused): {why}"
        ))
    };
    let own = valkey
        .cluster_nodes(addr)
        .await
        .map_err(valkey_err(format!("reading the cluster nodes {pod} knows")))?;
    let primary_id = from
        .and_then(|f| target.state.cluster.node_id(f))
        .map(str::to_owned)
        .or_else(|| {
            own.iter()
                .find(|l| l.myself)
                .and_then(|l| l.primary_id.clone())
        });
    let Some(primary_id) = primary_id else {
        return Err(not_yet("it follows no primary".to_owned()));
    };
    match own.iter().find(|l| l.id == primary_id) {
        Some(l) if l.connected && !l.suspected && !l.failed => {}
        _ => {
            return Err(not_yet(format!(
                "its bus link to its primary ({}) is not up",
                short_id(&primary_id)
            )));
        }
    }
    let epoch = valkey
        .cluster_info(addr)
        .await
        .map_err(valkey_err(format!("reading the cluster state of {pod}")))?
        .current_epoch;
    // The voters: the primaries serving slots, as the replica sees them.
    let voters: Vec<&str> = own
        .iter()
        .filter(|l| l.primary && !l.slots.is_empty() && !l.myself)
        .filter_map(|l| target.state.cluster.pod_of(&l.id))
        .collect();
    for voter in voters {
        let voter_addr = target.addr(voter)?;
        let lines = valkey
            .cluster_nodes(voter_addr)
            .await
            .map_err(valkey_err(format!(
                "reading the cluster nodes {voter} knows"
            )))?;
        let seen = lines.iter().find(|l| l.id == node_id);
        let ok = seen.is_some_and(|l| {
            l.replica
                && !l.handshake
                && !l.suspected
                && !l.failed
                && l.connected
                && l.primary_id.as_deref() == Some(primary_id.as_str())
        });
        if !ok {
            return Err(not_yet(format!(
                "{voter} does not see it yet as a connected replica of {}",
                short_id(&primary_id)
            )));
        }
        let theirs = valkey
            .cluster_info(voter_addr)
            .await
            .map_err(valkey_err(format!("reading the cluster state of {voter}")))?
            .current_epoch;
        if theirs > epoch {
            return Err(not_yet(format!(
                "its current epoch {epoch} is behind {voter}'s {theirs}"
            )));
        }
    }
    Ok(())
}

/// The first 8 hex digits of a node id, for messages.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// How long a replica about to take over may take to learn, by gossip,
/// the slots its live primary claims: well inside the 5 s before a
/// replica's full resync from that (emptied) primary begins.
const LEARN_WAIT: Duration = Duration::from_millis(1_500);

/// Before a replica in `pod` takes its live primary's shard over: waits
/// (at most [`LEARN_WAIT`]) until the replica sees the primary in `from`
/// owning every slot that primary claims. A replica promoted claims the
/// slots it believes its primary has and drops the keys of any other:
/// a primary killed right after an atomic slot migration gave it slots
/// restarts claiming them, but its replica may not have heard of them
/// yet. `None` once it has (or when either cannot be read: the takeover
/// goes ahead, it cannot wait); else the slots it still does not see.
async fn learn_primary_slots(
    valkey: &ValkeyClient,
    target: Target<'_>,
    addr: SocketAddr,
    from: &str,
) -> Option<String> {
    let primary = answer(valkey, target, from).await.ok()?;
    let claimed = primary.report.slots;
    if claimed.is_empty() {
        return None;
    }
    let deadline = Instant::now() + LEARN_WAIT;
    loop {
        let seen = slots_seen(valkey, addr, &primary.report.node_id)
            .await
            .ok()?;
        let lacking = crate::actuate::reshard::missing(&seen, &claimed);
        if lacking.is_empty() {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(logbook_journal::cluster::describe_slots(&lacking));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The slots the node at `addr` sees node `node_id` owning (none when it
/// does not know the node): what gossip has told it so far.
pub(super) async fn slots_seen(
    valkey: &ValkeyClient,
    addr: SocketAddr,
    node_id: &str,
) -> Result<Vec<SlotRange>, crate::valkey::ProbeError> {
    Ok(valkey
        .cluster_nodes(addr)
        .await?
        .into_iter()
        .find(|l| l.id == node_id)
        .map(|l| l.slots)
        .unwrap_or_default())
}

/// `CLUSTER FORGET node_id` on every node of the cluster that lists it
/// (all within Valkey's one-minute ban, so none re-learns it from another).
pub async fn forget(
    valkey: &ValkeyClient,
    target: Target<'_>,
    node_id: &str,
) -> Result<Done, ActError> {
    let mut forgot = Vec::new();
    let mut skipped = Vec::new();
    let mut events = Vec::new();
    for pod in target.state.pods.keys() {
        let Ok(seen) = answer(valkey, target, pod).await else {
            skipped.push(format!("{pod} (not answering)"));
            continue;
        };
        if seen.report.node_id == node_id || seen.report.peer(node_id).is_none() {
            // Nothing to forget here; but what the projection believes of
            // this member may be older than what it says now (it may
            // have dropped the node already), and the decision to forget
            // was read from that: record it, or the same node is decided
            // again at once.
            events.extend(reported(target, pod, &seen));
            continue;
        }
        // Cut short here, the intent fails with what the members asked
        // before said of themselves: they no longer list the node.
        let after = forget_on(valkey, target, pod, node_id)
            .await
            .map_err(|e| e.with_facts(std::mem::take(&mut events)))?;
        forgot.push(pod.clone());
        events.extend(reported(target, pod, &after));
    }
    let mut detail = format!(
        "node {node_id} forgotten by {}",
        if forgot.is_empty() {
            "nobody (no member listed it)".to_owned()
        } else {
            forgot.join(", ")
        }
    );
    if !skipped.is_empty() {
        detail.push_str(&format!("; not asked: {}", skipped.join(", ")));
    }
    Ok(Done {
        detail,
        events,
        password: None,
    })
}

/// `CLUSTER FORGET node_id` sent to `pod`, and what `pod` then says of
/// itself.
async fn forget_on(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    node_id: &str,
) -> Result<ClusterAnswer, ActError> {
    let addr = target.addr(pod)?;
    valkey
        .cluster_forget(addr, node_id)
        .await
        .map_err(valkey_err(format!("{pod} forgetting node {node_id}")))?;
    answer(valkey, target, pod).await
}

/// `CLUSTER RESET SOFT` on the replica in `pod`, once it is checked to
/// run `node_id` and to be a replica: it becomes an empty primary that
/// knows no other node (its copy of the shard is dropped; its shard keeps
/// the replicas the spec asks for). Membership meets it again next.
pub async fn reset_replica(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    node_id: &str,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let running = expect_node(valkey, target, pod, addr).await?;
    if running != node_id {
        return Err(ActError::Refused(format!(
            "{pod} runs node {running}, not {node_id}"
        )));
    }
    let before = answer(valkey, target, pod).await?;
    let Some(primary) = before.report.primary_id.clone() else {
        // Valkey would refuse a primary holding keys; one without is not
        // this intent's to reset either: nothing is done.
        return Err(ActError::Refused(format!(
            "{pod} (node {node_id}) is a primary, not a replica: not reset"
        )));
    };
    valkey
        .cluster_reset(addr, false)
        .await
        .map_err(valkey_err(format!("resetting {pod} into an empty primary")))?;
    let after = answer(valkey, target, pod).await?;
    let mut events: Vec<Event> = reported(target, pod, &after).into_iter().collect();
    events.push(Event::NodeRoleObserved {
        pod: pod.to_owned(),
        role: Role::Primary,
        primary: None,
    });
    Ok(Done {
        detail: format!(
            "{pod} (node {node_id}) no longer replicates node {primary}: an empty primary that knows no other node, to be met again"
        ),
        events,
        password: None,
    })
}
