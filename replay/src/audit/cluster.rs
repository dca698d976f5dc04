//! The Valkey Cluster invariants:
//!
//! - slot ownership: once the cluster is formed, every slot is served by
//!   exactly one primary. Checked at quiet points only — no intent in
//!   flight, and every current node's report says `cluster_state:ok`,
//!   flags no peer and agrees with every other report on who is a
//!   primary — never mid-failover, when claims legitimately overlap or
//!   lag. A slot no current primary claims, or claimed by two current
//!   primaries at one config epoch (which Valkey cannot resolve), is a
//!   finding, once per episode.
//! - an unjustified failover: a `ClusterFailover` FORCE needs a
//!   `PrimaryFailed` reason with `death: true` and an earlier journaled
//!   sign of the primary's death (its pod deleted or terminated, a
//!   refused probe, no address, a failing probe while terminating, or its
//!   pod back as another node), or `death: false` with the journal
//!   showing it hung (`ClusterState::primary_hung`: its probes timed out
//!   for the policy's whole span, from the first failed probe's send to
//!   the last failure, and every answering replica's link silent), or a `PrimaryBehindReplica` reason with
//!   the target journaled ahead of the primary's offset, its link down or
//!   resyncing (a primary restarted in place); a TAKEOVER needs
//!   `QuorumLost`, a spec in force that allows it
//!   (`failover.takeoverOnQuorumLoss`) and a majority of the shard
//!   primaries journaled silent, or `PrimaryFailed` with `death: true`
//!   and the shard's primary node journaled replaced (its pod back as
//!   another node: the node is gone for good).
//! - a wiped node promoted: the target of a FORCE or TAKEOVER failover
//!   must have reported following the shard's primary; a node that never
//!   did (an empty node, or a pod back with a new node id after its data
//!   was lost) would take the slots with no data.

use std::collections::BTreeSet;

use logbook_journal::cluster::describe_slots;
use logbook_journal::{
    ClusterFailoverMode, ClusterState, Envelope, Event, Intent, PeerHealth, PlannedIntent,
    ReasonCode,
};

use super::Check;
use super::invariants::finding;
use crate::cluster_facts::{ClusterFacts, short};

/// State of the Cluster checks across a scan.
#[derive(Debug, Default)]
pub struct ClusterInvariants {
    facts: ClusterFacts,
    pub(super) findings: Vec<super::Finding>,
    /// Quiet points examined.
    pub(super) quiet: u64,
    /// Forced and takeover failovers examined.
    pub(super) forced: u64,
    /// Whether the last quiet point had a slot finding (one per episode).
    in_violation: bool,
}

/// Whether the current nodes agree and nothing is under way.
fn quiet(state: &ClusterState) -> bool {
    let c = &state.cluster;
    if c.formed_at.is_none() || !state.in_flight.is_empty() {
        return false;
    }
    let current: Vec<_> = c
        .pods
        .values()
        .filter_map(|id| c.nodes.get(id).map(|n| (id, &n.report)))
        .collect();
    current.iter().all(|(_, r)| {
        r.state_ok
            && r.peers.iter().all(|p| p.health == PeerHealth::Ok)
            && current.iter().all(|(id, other)| {
                *id == &r.node_id
                    || r.peer(id).is_some_and(|p| {
                        p.primary == other.is_primary() && p.primary_id == other.primary_id
                    })
            })
    })
}

impl ClusterInvariants {
    /// Called before `e` is folded into `before`.
    pub fn before(&mut self, before: &ClusterState, e: &Envelope) {
        if let Event::Decided { intents } = &e.body {
            for p in intents {
                self.check_failover(before, e, p);
            }
        }
    }

    /// Called after `e` was folded into `after`.
    pub fn after(&mut self, after: &ClusterState, e: &Envelope) {
        self.facts.after(after, e);
        if after.cluster.pods.is_empty() || !quiet(after) {
            return;
        }
        self.quiet = self.quiet.saturating_add(1);
        let problem = slot_problem(after);
        if let Some(detail) = &problem
            && !self.in_violation
        {
            self.findings
                .push(finding(Check::SlotOwnership, e, detail.clone()));
        }
        self.in_violation = problem.is_some();
    }

    fn check_failover(&mut self, before: &ClusterState, e: &Envelope, p: &PlannedIntent) {
        let Intent::ClusterFailover { pod, from, mode } = &p.intent else {
            return;
        };
        if *mode == ClusterFailoverMode::Coordinated {
            return;
        }
        self.forced = self.forced.saturating_add(1);
        let word = mode.word();
        let from_text = from.as_deref().unwrap_or("an unnamed primary");
        // The shard's primary node: the one the target follows.
        let target = before.cluster.node_id(pod);
        let shard_node = before
            .cluster
            .report(pod)
            .and_then(|r| r.primary_id.as_deref());
        match (mode, &p.reason.code) {
            (ClusterFailoverMode::Takeover, ReasonCode::QuorumLost { .. }) => {
                if let Some(why) = takeover_unsupported(before) {
                    self.findings.push(finding(
                        Check::UnjustifiedFailover,
                        e,
                        format!(
                            "CLUSTER FAILOVER TAKEOVER of {from_text}'s shard to {pod} (intent {}) for QuorumLost, but {why}",
                            p.intent_id
                        ),
                    ));
                }
            }
            (
                ClusterFailoverMode::Force | ClusterFailoverMode::Takeover,
                ReasonCode::PrimaryBehindReplica { primary_offset, .. },
            ) => {
                // Justified by the journal alone: the target, its link
                // broken, held more of the shard's history than the
                // primary answered with.
                let target = before.pods.get(pod.as_str());
                let waiting = target.is_some_and(|v| {
                    matches!(
                        v.link,
                        Some(logbook_journal::LinkStatus::Down | logbook_journal::LinkStatus::Syncing)
                    )
                });
                let ahead = target
                    .and_then(|v| v.offset)
                    .is_some_and(|o| o > *primary_offset);
                if !(waiting && ahead) {
                    self.findings.push(finding(
                        Check::UnjustifiedFailover,
                        e,
                        format!(
                            "CLUSTER FAILOVER {word} of {from_text}'s shard to {pod} (intent {}) for PrimaryBehindReplica, but the journal does not show {pod} ahead of offset {primary_offset} with its link down or resyncing",
                            p.intent_id
                        ),
                    ));
                }
            }
            (ClusterFailoverMode::Force, ReasonCode::PrimaryFailed { death: false, .. }) => {
                if let Some(why) = from.as_deref().and_then(|f| not_hung(before, f)) {
                    self.findings.push(finding(
                        Check::UnjustifiedFailover,
                        e,
                        format!(
                            "CLUSTER FAILOVER {word} of {from_text}'s shard to {pod} (intent {}) for a hung primary, but {why}",
                            p.intent_id
                        ),
                    ));
                }
            }
            (ClusterFailoverMode::Force, ReasonCode::PrimaryFailed { death: true, .. }) => {
                let death = from
                    .as_deref()
                    .and_then(|f| self.facts.death_of_pod(f))
                    .or_else(|| shard_node.and_then(|id| self.facts.replaced(id)));
                if death.is_none() {
                    self.findings.push(finding(
                        Check::UnjustifiedFailover,
                        e,
                        format!(
                            "CLUSTER FAILOVER {word} of {from_text}'s shard to {pod} (intent {}) with no earlier journaled sign of {from_text}'s death (deleted, terminated, refused, no address, or back as another node)",
                            p.intent_id
                        ),
                    ));
                }
            }
            (ClusterFailoverMode::Takeover, ReasonCode::PrimaryFailed { death: true, .. }) => {
                // Only a primary node gone for good: its pod back as
                // another node (its volume lost), so that no side of a
                // partition can serve its slots on.
                if shard_node.and_then(|id| self.facts.replaced(id)).is_none() {
                    self.findings.push(finding(
                        Check::UnjustifiedFailover,
                        e,
                        format!(
                            "CLUSTER FAILOVER TAKEOVER of {from_text}'s shard to {pod} (intent {}) for a dead primary, but the journal does not show its node replaced (its pod back as another node): only that, or QuorumLost, justifies a takeover",
                            p.intent_id
                        ),
                    ));
                }
            }
            (_, code) => self.findings.push(finding(
                Check::UnjustifiedFailover,
                e,
                format!(
                    "CLUSTER FAILOVER {word} of {from_text}'s shard to {pod} (intent {}) for {}{}, which does not justify it ({} needs {})",
                    p.intent_id,
                    code.name(),
                    match code {
                        ReasonCode::PrimaryFailed { death: false, .. } => " without death",
                        _ => "",
                    },
                    word,
                    if *mode == ClusterFailoverMode::Takeover {
                        "QuorumLost"
                    } else {
                        "PrimaryFailed with death"
                    }
                ),
            )),
        }
        // The shard's primary nodes: every node id the old primary's pod
        // ran, and the one the target follows now.
        let mut primaries: BTreeSet<&str> = from
            .as_deref()
            .map(|f| self.facts.nodes_of(f).collect())
            .unwrap_or_default();
        primaries.extend(shard_node);
        let followed = target.is_some_and(|t| self.facts.followed_any(t, &primaries));
        if !followed {
            self.findings.push(finding(
                Check::WipedNodePromoted,
                e,
                format!(
                    "CLUSTER FAILOVER {word} to {pod} (node {}) which never reported following {from_text}'s shard primary: it holds none of the shard's data",
                    target.map_or("not reported", short)
                ),
            ));
        }
    }
}

/// What is wrong with slot ownership among the current primaries.
fn slot_problem(state: &ClusterState) -> Option<String> {
    let c = &state.cluster;
    let mut claims: Vec<Vec<(&str, u64)>> =
        vec![Vec::new(); logbook_journal::cluster::SLOTS as usize];
    for id in c.pods.values() {
        let Some(node) = c.nodes.get(id) else {
            continue;
        };
        if !node.report.is_primary() {
            continue;
        }
        for range in &node.report.slots {
            for slot in range.start..=range.end {
                if let Some(list) = claims.get_mut(usize::from(slot)) {
                    list.push((node.pod.as_str(), node.report.config_epoch));
                }
            }
        }
    }
    let unowned: Vec<u16> = (0u16..)
        .zip(claims.iter())
        .filter(|(_, l)| l.is_empty())
        .map(|(s, _)| s)
        .collect();
    if !unowned.is_empty() {
        return Some(format!(
            "the cluster formed at seq {} but {} slot(s) ({}) are claimed by no current primary while every node agrees and nothing is in flight",
            c.formed_at.unwrap_or_default(),
            unowned.len(),
            describe_slots(&logbook_journal::cluster::merge_slots(unowned))
        ));
    }
    for (slot, list) in (0u16..).zip(claims.iter()) {
        for (i, (a, ea)) in list.iter().enumerate() {
            if let Some((b, _)) = list
                .iter()
                .skip(i.saturating_add(1))
                .find(|(_, eb)| eb == ea)
            {
                return Some(format!(
                    "{a} and {b} both serve slot {slot} at config epoch {ea}: two primaries claim one slot and no epoch decides"
                ));
            }
        }
    }
    None
}

/// Why the journal does not support a takeover for quorum loss, if it
/// does not: the spec in force did not allow one, or fewer than a
/// majority of the shard primaries were silent (not answering as
/// primaries when it was decided).
fn takeover_unsupported(before: &ClusterState) -> Option<String> {
    let allowed = before
        .desired
        .as_ref()
        .and_then(|d| d.spec().ok())
        .is_some_and(|s| s.failover.takeover_on_quorum_loss);
    if !allowed {
        return Some("the spec in force did not set failover.takeoverOnQuorumLoss".to_owned());
    }
    let shards = before.cluster.shards();
    let silent = shards
        .iter()
        .filter(|s| {
            s.retired
                || !before.pods.get(s.primary).is_some_and(|v| {
                    v.reachability == Some(logbook_journal::Reachability::Reachable)
                        && v.role == Some(logbook_journal::Role::Primary)
                })
        })
        .count();
    let needed = shards.len() / 2 + 1;
    let answering = shards.len().saturating_sub(silent);
    (answering >= needed).then(|| {
        format!(
            "the journal shows {answering} of {} shard primaries answering, enough for an election ({needed} votes)",
            shards.len()
        )
    })
}

/// Why the journal before a forced failover does not show `primary` hung
/// (`None` when it does), by the rule decide applies
/// ([`ClusterState::primary_hung`]).
fn not_hung(before: &ClusterState, primary: &str) -> Option<String> {
    let policy = before.policy.clone().unwrap_or_default();
    before.primary_hung(primary, &policy).err()
}
