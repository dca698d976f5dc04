//! The Valkey Cluster part of the projection: each pod's last node
//! report, the node ids retired, and what follows from them — which node
//! owns which slot, the shards, their primaries and replicas.
//!
//! Only facts are kept; the slot map is derived from the nodes' own
//! claims each time it is asked for (of two claims on one slot the higher
//! config epoch wins, as in Valkey), so it can never disagree with the
//! reports it comes from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterNodeReport, SLOTS};
use crate::ids::ReplId;
use crate::intent::SlotRange;

/// What the journal says of a Valkey Cluster's nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterPart {
    /// Every node not yet forgotten, by node id, with its last report.
    /// A node is kept while its pod is away (its identity lives on the
    /// pod's volume and comes back with it), and after its pod came back
    /// as another node (retired), until every member has forgotten it:
    /// until then its last claim on slots still counts.
    pub nodes: BTreeMap<String, ClusterNode>,
    /// The node id each pod last reported, by pod name.
    pub pods: BTreeMap<String, String>,
    /// Seq of the report with which all 16384 slots first had an owner:
    /// from then on the cluster is formed, and slots are never assigned
    /// again, only moved (failovers, migrations).
    pub formed_at: Option<u64>,
    /// Primaries that came back from an in-place restart with another
    /// replication history (`PrimaryHistoryReset`), by pod, until the pod
    /// reports itself a replica or another node, or is deleted.
    pub history_resets: BTreeMap<String, HistoryReset>,
}

/// A primary's replication history replaced by an in-place restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReset {
    /// The node (its id survives the restart).
    pub node_id: String,
    /// The history it had, which its replicas still hold. (Its new id
    /// and offset are the pod's, from the `ReplicationObserved` of the
    /// same probe.)
    pub previous_replid: ReplId,
}

/// One node as last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// The pod that ran it.
    pub pod: String,
    /// Its last report.
    pub report: ClusterNodeReport,
}

/// One shard: a primary owning slots, and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard<'a> {
    /// The primary's pod (it may run another node by now: see `retired`).
    pub primary: &'a str,
    /// The primary's node id.
    pub node_id: &'a str,
    /// Whether the primary's pod now runs another node (its data was
    /// lost): the primary node is gone for good.
    pub retired: bool,
    /// The slots it owns (after epoch resolution).
    pub slots: Vec<SlotRange>,
    /// Pods whose current node replicates this primary.
    pub replicas: Vec<&'a str>,
}

impl ClusterPart {
    /// The node id `pod` last reported.
    #[must_use]
    pub fn node_id(&self, pod: &str) -> Option<&str> {
        self.pods.get(pod).map(String::as_str)
    }

    /// `pod`'s current node's last report.
    #[must_use]
    pub fn report(&self, pod: &str) -> Option<&ClusterNodeReport> {
        self.node_id(pod)
            .and_then(|id| self.nodes.get(id))
            .map(|n| &n.report)
    }

    /// The pod whose node is `node_id`.
    #[must_use]
    pub fn pod_of(&self, node_id: &str) -> Option<&str> {
        self.nodes.get(node_id).map(|n| n.pod.as_str())
    }

    /// Whether `node_id` is known and its pod now runs another node.
    #[must_use]
    pub fn is_retired(&self, node_id: &str) -> bool {
        self.nodes
            .get(node_id)
            .is_some_and(|n| self.node_id(&n.pod) != Some(node_id))
    }

    /// Node ids whose pod runs another node now, with that pod.
    pub fn retired(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes
            .iter()
            .filter(|(id, n)| self.node_id(&n.pod) != Some(id.as_str()))
            .map(|(id, n)| (id.as_str(), n.pod.as_str()))
    }

    /// Who owns which slots, as disjoint runs in slot order, each with
    /// its owner's node id (a slot in no run is unowned): each primary's
    /// own claim, the highest config epoch winning a contested slot (ties
    /// to the node id, so the result is the same on every replay).
    /// Computed over the claims' boundaries, never slot by slot: this is
    /// on the path of every decision and every fold of a node's report.
    #[must_use]
    pub fn owned_ranges(&self) -> Vec<(SlotRange, &str)> {
        let claims: Vec<(u32, u32, (u64, &str))> = self
            .nodes
            .iter()
            .filter(|(_, node)| node.report.is_primary())
            .flat_map(|(id, node)| {
                node.report.slots.iter().filter_map(move |range| {
                    let start = u32::from(range.start);
                    let end = u32::from(range.end).min(SLOTS - 1);
                    (start <= end).then_some((start, end, (node.report.config_epoch, id.as_str())))
                })
            })
            .collect();
        let mut bounds: Vec<u32> = claims
            .iter()
            .flat_map(|(start, end, _)| [*start, end + 1])
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut out: Vec<(SlotRange, &str)> = Vec::new();
        for pair in bounds.windows(2) {
            let (Some(&from), Some(&to)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let winner = claims
                .iter()
                .filter(|(start, end, _)| *start <= from && from <= *end)
                .map(|(_, _, claim)| *claim)
                .max();
            let (Some((_, id)), Ok(start), Ok(end)) =
                (winner, u16::try_from(from), u16::try_from(to - 1))
            else {
                continue;
            };
            match out.last_mut() {
                Some((range, last)) if *last == id && range.end.checked_add(1) == Some(start) => {
                    range.end = end;
                }
                _ => out.push((SlotRange { start, end }, id)),
            }
        }
        out
    }

    /// The owner node of every slot (`None`: unowned), as
    /// [`ClusterPart::owned_ranges`] says.
    #[must_use]
    pub fn slot_owners(&self) -> Vec<Option<&str>> {
        let mut owners: Vec<Option<&str>> = vec![None; SLOTS as usize];
        for (range, id) in self.owned_ranges() {
            if let Some(run) = owners.get_mut(usize::from(range.start)..=usize::from(range.end)) {
                run.fill(Some(id));
            }
        }
        owners
    }

    /// Slots with no owner.
    #[must_use]
    pub fn unassigned(&self) -> u32 {
        let owned: u32 = self
            .owned_ranges()
            .iter()
            .map(|(range, _)| u32::from(range.end) - u32::from(range.start) + 1)
            .sum();
        SLOTS.saturating_sub(owned)
    }

    /// The shards: every primary node owning at least one slot, in pod
    /// order, with the pods whose current node replicates it.
    #[must_use]
    pub fn shards(&self) -> Vec<Shard<'_>> {
        let mut slots: BTreeMap<&str, Vec<SlotRange>> = BTreeMap::new();
        for (range, id) in self.owned_ranges() {
            slots.entry(id).or_default().push(range);
        }
        let mut shards: Vec<Shard<'_>> = slots
            .into_iter()
            .filter_map(|(id, owned)| {
                let (id, node) = self.nodes.get_key_value(id)?;
                let replicas = self
                    .pods
                    .iter()
                    .filter(|(_, current)| {
                        self.nodes
                            .get(current.as_str())
                            .is_some_and(|n| n.report.primary_id.as_deref() == Some(id.as_str()))
                    })
                    .map(|(pod, _)| pod.as_str())
                    .collect();
                Some(Shard {
                    primary: node.pod.as_str(),
                    node_id: id.as_str(),
                    retired: self.is_retired(id),
                    slots: owned,
                    replicas,
                })
            })
            .collect();
        shards
            .sort_by(|a, b| (ordinal(a.primary), a.primary).cmp(&(ordinal(b.primary), b.primary)));
        shards
    }

    /// The shard `pod`'s current node belongs to (as primary or replica).
    #[must_use]
    pub fn shard_of(&self, pod: &str) -> Option<Shard<'_>> {
        let id = self.node_id(pod)?;
        self.shards()
            .into_iter()
            .find(|s| s.node_id == id || s.replicas.contains(&pod))
    }

    /// Ownership as `(range, pod)` runs, for timelines and the status.
    #[must_use]
    pub fn slot_map(&self) -> Vec<(SlotRange, Option<String>)> {
        self.owner_runs(|id| self.pod_of(id).map(str::to_owned))
    }

    /// Every slot in runs of one owner, `name` naming the owner of each
    /// owned run (`None`: unowned), gaps as `None`, adjacent runs of one
    /// name merged: the whole 0–16383 range, in order.
    pub fn owner_runs(
        &self,
        name: impl Fn(&str) -> Option<String>,
    ) -> Vec<(SlotRange, Option<String>)> {
        let mut out: Vec<(SlotRange, Option<String>)> = Vec::new();
        let mut push = |range: SlotRange, owner: Option<String>| match out.last_mut() {
            Some((last, who)) if *who == owner => last.end = range.end,
            _ => out.push((range, owner)),
        };
        let mut next: u32 = 0;
        for (range, id) in self.owned_ranges() {
            if u32::from(range.start) > next
                && let (Ok(start), Ok(end)) = (
                    u16::try_from(next),
                    u16::try_from(u32::from(range.start) - 1),
                )
            {
                push(SlotRange { start, end }, None);
            }
            push(range, name(id));
            next = u32::from(range.end) + 1;
        }
        if next < SLOTS
            && let (Ok(start), Ok(end)) = (u16::try_from(next), u16::try_from(SLOTS - 1))
        {
            push(SlotRange { start, end }, None);
        }
        out
    }
}

/// The ordinal of a StatefulSet pod (`demo-2` → 2), `u32::MAX` without one.
fn ordinal(pod: &str) -> u32 {
    pod.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u32::MAX)
}
