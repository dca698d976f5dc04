//! Quorum loss. Valkey elects a shard's new primary only with the votes
//! of a majority of the primaries that serve slots (`FORCE` skips the
//! hand-shake with the old primary, never the vote). When a majority of
//! them is gone, no election can win: `FORCE` would be refused and
//! Valkey's own detection cannot even mark the dead `fail`. Only `CLUSTER
//! FAILOVER TAKEOVER` moves a shard then, without any vote, and it may
//! lose what the dead primary took last (the writes its replica had not
//! received).
//!
//! That trade of data for availability is the user's, not the
//! operator's: it is made only when `spec.failover.takeoverOnQuorumLoss`
//! says so, and only for a shard whose primary has been gone for the
//! whole node timeout (a primary restarting in place with its volume is
//! back sooner, with everything it had). Otherwise the shards stay
//! unserved and the status says why (see `decide/status.rs`).

use logbook_journal::projection::cluster::Shard;
use logbook_journal::{ClusterFailoverMode, Intent, Reachability, ReasonCode, Role, Timestamp};

use super::failover::rank;
use super::short;
use crate::decide::Decision;
use crate::decide::view::{ClusterView, best, describe};

/// The votes of the shard primaries, as the journal shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    /// Primaries serving slots: the electorate.
    pub voters: u32,
    /// Those whose pod answers as a primary now.
    pub answering: u32,
    /// The shards whose primary does not answer, by their primary's pod.
    pub silent: Vec<String>,
}

impl Quorum {
    /// Votes an election needs: a majority of the voters.
    pub fn needed(&self) -> u32 {
        self.voters / 2 + 1
    }

    /// Whether no election can win now.
    pub fn lost(&self) -> bool {
        self.voters > 0 && self.answering < self.needed()
    }

    /// One line for people: "2 of 3 shard primaries silent (shop-0,
    /// shop-1); an election needs 2 votes".
    pub fn describe(&self) -> String {
        format!(
            "{} of {} shard primaries silent ({}); an election needs {} votes and {} can vote",
            self.silent.len(),
            self.voters,
            self.silent.join(", "),
            self.needed(),
            self.answering
        )
    }
}

/// Whether the shard's primary answers as a primary now.
fn answers(view: &ClusterView<'_>, shard: &Shard<'_>) -> bool {
    !shard.retired
        && view.pod(shard.primary).is_some_and(|p| {
            p.view.reachability == Some(Reachability::Reachable)
                && p.view.role == Some(Role::Primary)
        })
}

/// The primaries' votes over `shards`.
pub fn quorum(view: &ClusterView<'_>, shards: &[Shard<'_>]) -> Quorum {
    let silent: Vec<String> = shards
        .iter()
        .filter(|s| !answers(view, s))
        .map(|s| s.primary.to_owned())
        .collect();
    let voters = u32::try_from(shards.len()).unwrap_or(u32::MAX);
    let silent_n = u32::try_from(silent.len()).unwrap_or(u32::MAX);
    Quorum {
        voters,
        answering: voters.saturating_sub(silent_n),
        silent,
    }
}

/// The node timeout in force, in milliseconds.
pub fn node_timeout_ms(view: &ClusterView<'_>) -> i64 {
    i64::from(
        view.spec
            .effective_cluster_node_timeout_milliseconds()
            .unwrap_or(logbook_crds::v1alpha1::defaults::CLUSTER_NODE_TIMEOUT_MS),
    )
}

/// How long, up to `now`, the shard's primary has been gone: its node
/// lost with its data (for as long as can be: it will not come back), or
/// its pod failing every probe since its first failure. `None` while it
/// answers, or while its pod is missing (the StatefulSet recreates it,
/// and its first failed probe starts the count again: the operator never
/// guesses how long it was gone).
fn gone_for_ms(view: &ClusterView<'_>, shard: &Shard<'_>, now: Timestamp) -> Option<i64> {
    if shard.retired {
        return Some(i64::MAX);
    }
    let pod = view.pod(shard.primary)?;
    if pod.view.reachability == Some(Reachability::Reachable) {
        return None;
    }
    pod.view.failing_since.map(|since| now.millis_since(since))
}

/// When a pod failing its probes will have been gone the whole node
/// timeout (the earliest of them), if a takeover may follow.
pub fn takeover_deadline(view: &ClusterView<'_>) -> Option<Timestamp> {
    if !view.spec.failover.takeover_on_quorum_loss {
        return None;
    }
    let timeout = node_timeout_ms(view);
    view.pods()
        .into_iter()
        .filter_map(|p| p.view.failing_since)
        .map(|since| since.plus_millis(timeout))
        .min()
}

/// `ClusterFailover TAKEOVER` for every shard whose primary has been gone
/// the whole node timeout, when the quorum is lost and the spec allows
/// it; nothing otherwise (a `FORCE` cannot win without the votes).
pub fn decide_takeover(
    view: &ClusterView<'_>,
    shards: &[Shard<'_>],
    quorum: &Quorum,
    now: Timestamp,
) -> Vec<Decision> {
    if !view.spec.failover.takeover_on_quorum_loss {
        return Vec::new();
    }
    let timeout = node_timeout_ms(view);
    let lost = u32::try_from(quorum.silent.len()).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    for shard in shards {
        let Some(gone) = gone_for_ms(view, shard, now).filter(|ms| *ms >= timeout) else {
            continue;
        };
        let candidates = rank(view, shard);
        let Some(chosen) = best(&candidates) else {
            continue;
        };
        let how_long = if shard.retired {
            format!(
                "{} came back as another node (primary node {} lost its data)",
                shard.primary,
                short(shard.node_id)
            )
        } else {
            format!(
                "{} has not answered for {gone} ms (node timeout {timeout} ms)",
                shard.primary
            )
        };
        out.push(Decision::new(
            Intent::ClusterFailover {
                pod: chosen.pod.clone(),
                from: Some(shard.primary.to_owned()),
                mode: ClusterFailoverMode::Takeover,
            },
            ReasonCode::QuorumLost {
                primaries_lost: lost,
                shards: quorum.voters,
                candidates: candidates.clone(),
            },
            format!(
                "quorum lost: {}; {how_long}; spec.failover.takeoverOnQuorumLoss is on, so {} takes over its {} slots by CLUSTER FAILOVER TAKEOVER without a vote, \
                 trading the writes {} took that its replica had not received for availability; candidates: {}",
                quorum.describe(),
                chosen.pod,
                logbook_journal::cluster::slot_count(&shard.slots),
                shard.primary,
                describe(&candidates)
            ),
        ));
    }
    out
}

/// How long the prober must keep journaling a silent primary's failures
/// for [`decide_takeover`] to see the node timeout pass (`decide` measures
/// time up to the last event): the node timeout when takeovers are
/// allowed, nothing otherwise.
pub fn takeover_span_ms(view: &ClusterView<'_>) -> i64 {
    if view.spec.failover.takeover_on_quorum_loss {
        node_timeout_ms(view)
    } else {
        0
    }
}
