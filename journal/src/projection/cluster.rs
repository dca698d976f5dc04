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
use crate::intent::SlotRange;

/// What the journal says of a Valkey Cluster's nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterPart {
    /// Each pod's last report, by pod name. Kept while the pod is away: a
    /// node's identity lives on its volume and comes back with it.
    pub reports: BTreeMap<String, ClusterNodeReport>,
    /// Node ids no pod runs any more, with the pod that ran each: every
    /// member must forget them.
    pub retired: BTreeMap<String, String>,
    /// Seq of the report with which all 16384 slots first had an owner:
    /// from then on the cluster is formed, and slots are never assigned
    /// again, only moved (failovers, migrations).
    pub formed_at: Option<u64>,
}

/// One shard: a primary owning slots, and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard<'a> {
    /// The primary's pod.
    pub primary: &'a str,
    /// The primary's node id.
    pub node_id: &'a str,
    /// The slots it owns (after epoch resolution).
    pub slots: Vec<SlotRange>,
    /// Pods whose node reports it replicates this primary.
    pub replicas: Vec<&'a str>,
}

impl ClusterPart {
    /// The node id of `pod`'s node, as last reported.
    #[must_use]
    pub fn node_id(&self, pod: &str) -> Option<&str> {
        self.reports.get(pod).map(|r| r.node_id.as_str())
    }

    /// The pod whose node last reported `node_id`.
    #[must_use]
    pub fn pod_of(&self, node_id: &str) -> Option<&str> {
        self.reports
            .iter()
            .find(|(_, r)| r.node_id == node_id)
            .map(|(pod, _)| pod.as_str())
    }

    /// The owner pod of every slot (`None`: unowned): each primary's own
    /// claim, the highest config epoch winning a contested slot (ties to
    /// the pod name, so the result is the same on every replay).
    #[must_use]
    pub fn slot_owners(&self) -> Vec<Option<&str>> {
        let mut owners: Vec<Option<(u64, &str)>> = vec![None; SLOTS as usize];
        for (pod, report) in &self.reports {
            if !report.is_primary() {
                continue;
            }
            for range in &report.slots {
                for slot in range.start..=range.end {
                    if let Some(owner) = owners.get_mut(usize::from(slot)) {
                        let wins = owner.is_none_or(|(epoch, other)| {
                            (report.config_epoch, pod.as_str()) > (epoch, other)
                        });
                        if wins {
                            *owner = Some((report.config_epoch, pod.as_str()));
                        }
                    }
                }
            }
        }
        owners.into_iter().map(|o| o.map(|(_, pod)| pod)).collect()
    }

    /// Slots with no owner.
    #[must_use]
    pub fn unassigned(&self) -> u32 {
        let free = self.slot_owners().iter().filter(|o| o.is_none()).count();
        u32::try_from(free).unwrap_or(SLOTS)
    }

    /// The shards: every primary owning at least one slot, in pod order,
    /// with the pods replicating it.
    #[must_use]
    pub fn shards(&self) -> Vec<Shard<'_>> {
        let owners = self.slot_owners();
        let mut slots: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (slot, owner) in (0..).zip(owners.iter()) {
            if let Some(pod) = owner {
                slots.entry(pod).or_default().push(slot);
            }
        }
        slots
            .into_iter()
            .filter_map(|(pod, owned)| {
                let (pod, report) = self.reports.get_key_value(pod)?;
                let replicas = self
                    .reports
                    .iter()
                    .filter(|(_, r)| r.primary_id.as_deref() == Some(report.node_id.as_str()))
                    .map(|(p, _)| p.as_str())
                    .collect();
                Some(Shard {
                    primary: pod.as_str(),
                    node_id: report.node_id.as_str(),
                    slots: merge_slots(owned),
                    replicas,
                })
            })
            .collect()
    }

    /// The shard `pod` belongs to (as its primary or a replica).
    #[must_use]
    pub fn shard_of(&self, pod: &str) -> Option<Shard<'_>> {
        self.shards()
            .into_iter()
            .find(|s| s.primary == pod || s.replicas.contains(&pod))
    }

    /// Ownership as `(range, pod)` runs, for timelines and the status.
    #[must_use]
    pub fn slot_map(&self) -> Vec<(SlotRange, Option<String>)> {
        let mut out: Vec<(SlotRange, Option<String>)> = Vec::new();
        for (slot, owner) in (0..).zip(self.slot_owners()) {
            match out.last_mut() {
                Some((range, last)) if last.as_deref() == owner => range.end = slot,
                _ => out.push((
                    SlotRange {
                        start: slot,
                        end: slot,
                    },
                    owner.map(str::to_owned),
                )),
            }
        }
        out
    }
}
