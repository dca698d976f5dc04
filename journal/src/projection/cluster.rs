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

use crate::cluster::{ClusterNodeReport, SLOTS, merge_slots};
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

    /// The owner node of every slot (`None`: unowned): each primary's own
    /// claim, the highest config epoch winning a contested slot (ties to
    /// the node id, so the result is the same on every replay).
    #[must_use]
    pub fn slot_owners(&self) -> Vec<Option<&str>> {
        let mut owners: Vec<Option<(u64, &str)>> = vec![None; SLOTS as usize];
        for (id, node) in &self.nodes {
            let report = &node.report;
            if !report.is_primary() {
                continue;
            }
            for range in &report.slots {
                for slot in range.start..=range.end {
                    if let Some(owner) = owners.get_mut(usize::from(slot)) {
                        let wins = owner.is_none_or(|(epoch, other)| {
                            (report.config_epoch, id.as_str()) > (epoch, other)
                        });
                        if wins {
                            *owner = Some((report.config_epoch, id.as_str()));
                        }
                    }
                }
            }
        }
        owners.into_iter().map(|o| o.map(|(_, id)| id)).collect()
    }

    /// Slots with no owner.
    #[must_use]
    pub fn unassigned(&self) -> u32 {
        let free = self.slot_owners().iter().filter(|o| o.is_none()).count();
        u32::try_from(free).unwrap_or(SLOTS)
    }

    /// The shards: every primary node owning at least one slot, in pod
    /// order, with the pods whose current node replicates it.
    #[must_use]
    pub fn shards(&self) -> Vec<Shard<'_>> {
        let owners = self.slot_owners();
        let mut slots: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (slot, owner) in (0..).zip(owners.iter()) {
            if let Some(id) = owner {
                slots.entry(id).or_default().push(slot);
            }
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
                    slots: merge_slots(owned),
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
        let mut out: Vec<(SlotRange, Option<String>)> = Vec::new();
        for (slot, owner) in (0..).zip(self.slot_owners()) {
            let pod = owner.and_then(|id| self.pod_of(id));
            match out.last_mut() {
                Some((range, last)) if last.as_deref() == pod => range.end = slot,
                _ => out.push((
                    SlotRange {
                        start: slot,
                        end: slot,
                    },
                    pod.map(str::to_owned),
                )),
            }
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
