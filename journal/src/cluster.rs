//! Valkey Cluster facts: what one cluster node reports of itself and of
//! its peers (`CLUSTER NODES`, `CLUSTER INFO`), as the journal stores it.
//!
//! A node's identity is its node id, never its pod: a pod whose volume was
//! lost comes back as a new node. Everything here is data; what follows
//! from it (who owns which slot, which shard a pod belongs to) is derived
//! in `projection::cluster`.
//!
//! Volatile fields (ping times, link connection state, replication
//! offsets) are left out on purpose: a report is journaled only when it
//! differs from the last one, so an idle cluster appends nothing.

use serde::{Deserialize, Serialize};

use crate::intent::SlotRange;

/// Hash slots of a Valkey Cluster.
pub const SLOTS: u32 = 16_384;

/// How a node sees one of its peers (`CLUSTER NODES` flags).
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerHealth {
    /// No failure flag.
    Ok,
    /// `fail?`: this node suspects the peer (no answer within half the
    /// node timeout); not yet agreed by a majority.
    Suspected,
    /// `fail`: a majority of primaries agreed the peer failed.
    Failed,
    /// `noaddr`: the peer's address is unknown.
    NoAddress,
    /// `handshake`: the peer is being met and has no confirmed id yet.
    Handshake,
}

/// One peer in a node's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPeer {
    /// The peer's node id.
    pub node_id: String,
    /// The address the node has for it (`None`: empty or unknown).
    pub ip: Option<String>,
    /// Whether the node sees it as a primary (`master` flag).
    pub primary: bool,
    /// For a replica: the node id of its primary.
    pub primary_id: Option<String>,
    /// The worst failure flag the node gives it.
    pub health: PeerHealth,
}

/// What one cluster node reports: itself (`myself`) and every peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNodeReport {
    /// Its node id (`CLUSTER MYID`).
    pub node_id: String,
    /// For a replica: the node id of the primary it replicates.
    pub primary_id: Option<String>,
    /// The slots it serves, as merged ranges (a primary's own claim).
    pub slots: Vec<SlotRange>,
    /// Its config epoch: of two claims on one slot, the higher epoch wins.
    pub config_epoch: u64,
    /// The cluster's current epoch as it knows it.
    pub current_epoch: u64,
    /// `cluster_state:ok`.
    pub state_ok: bool,
    /// Every other node in its table, sorted by node id.
    pub peers: Vec<ClusterPeer>,
}

impl ClusterNodeReport {
    /// Whether it reports itself a primary (a node with no primary).
    #[must_use]
    pub fn is_primary(&self) -> bool {
        self.primary_id.is_none()
    }

    /// Whether it is a primary serving at least one slot.
    #[must_use]
    pub fn serves_slots(&self) -> bool {
        self.is_primary() && !self.slots.is_empty()
    }

    /// How many slots it claims.
    #[must_use]
    pub fn slot_count(&self) -> u32 {
        slot_count(&self.slots)
    }

    /// Its table entry for `node_id`, if it knows that node.
    #[must_use]
    pub fn peer(&self, node_id: &str) -> Option<&ClusterPeer> {
        self.peers.iter().find(|p| p.node_id == node_id)
    }
}

/// Which end of an atomic slot migration job a node runs.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MigrationSide {
    /// The source: it owns the slots and sends them (`EXPORT`).
    Export,
    /// The target: it receives them and takes them over (`IMPORT`).
    Import,
}

impl MigrationSide {
    /// `export` / `import`, for people and keys.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
        }
    }
}

/// Where an atomic slot migration job stands.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrationPhase {
    /// Under way; `state` is Valkey's own name for the step
    /// (`snapshotting`, `replicating`, `failover-paused`, ...).
    Running {
        /// Valkey's state name.
        state: String,
    },
    /// `success`: the target owns the slots.
    Succeeded,
    /// `failed`, with the job's message saying why. One message,
    /// "Unpaused before migration completed (migration may have succeeded
    /// with lost writes)", leaves the outcome to slot ownership: see
    /// [`SlotMigrationJob::ambiguous`].
    Failed,
    /// `cancelled` (`CLUSTER CANCELSLOTMIGRATIONS`).
    Cancelled,
    /// No longer listed by the node that was running it: jobs live in
    /// memory only, and its process restarted. Ownership tells what became
    /// of the slots.
    Vanished,
}

impl MigrationPhase {
    /// Whether the job is over (whatever its outcome).
    #[must_use]
    pub const fn is_over(&self) -> bool {
        !matches!(self, Self::Running { .. })
    }

    /// The phase as Valkey names it (`vanished` for one no longer listed).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Running { state } => state,
            Self::Succeeded => "success",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Vanished => "vanished",
        }
    }

    /// From Valkey's state name.
    #[must_use]
    pub fn from_valkey(state: &str) -> Self {
        match state {
            "success" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => Self::Running {
                state: other.to_owned(),
            },
        }
    }
}

/// One atomic slot migration job (Valkey >= 9.0) as one of its two ends
/// lists it in `CLUSTER GETSLOTMIGRATIONS`. Both ends name the job alike;
/// the command that starts it does not return the name, so a job is found
/// by its source, target and slot ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMigrationJob {
    /// The job's name (40 hex characters, the same at both ends).
    pub name: String,
    /// Which end lists it.
    pub side: MigrationSide,
    /// Node id of the source.
    pub source: String,
    /// Node id of the target.
    pub target: String,
    /// The slots it moves.
    pub slots: Vec<SlotRange>,
    /// Where it stands.
    pub phase: MigrationPhase,
    /// Valkey's message (why it failed; empty otherwise).
    pub message: String,
    /// Bytes of the slots' write stream not yet acknowledged by the target
    /// when observed (0 outside streaming).
    pub remaining_repl_size: u64,
}

impl SlotMigrationJob {
    /// A failed job whose source gave up its write pause before the target
    /// announced ownership: it may have moved the slots, and writes the
    /// source took after unpausing may be lost. Only slot ownership can
    /// tell whether it moved them; it is neither success nor failure.
    #[must_use]
    pub fn ambiguous(&self) -> bool {
        self.phase == MigrationPhase::Failed && self.message.contains("may have succeeded")
    }

    /// Whether it moves exactly `slots` from `source` to `target`.
    #[must_use]
    pub fn moves(&self, source: &str, target: &str, slots: &[SlotRange]) -> bool {
        self.source == source
            && self.target == target
            && merge_ranges(&self.slots) == merge_ranges(slots)
    }

    /// The key the projection files it under: its name and side.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.name, self.side.name())
    }
}

/// Sorted, merged ranges from any ranges.
#[must_use]
pub fn merge_ranges(ranges: &[SlotRange]) -> Vec<SlotRange> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<SlotRange> = Vec::new();
    for r in sorted {
        match out.last_mut() {
            Some(last) if u32::from(r.start) <= u32::from(last.end).saturating_add(1) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Whether every slot of `wanted` is in `owned`.
#[must_use]
pub fn covers(owned: &[SlotRange], wanted: &[SlotRange]) -> bool {
    let owned = merge_ranges(owned);
    wanted
        .iter()
        .all(|w| owned.iter().any(|o| o.start <= w.start && w.end <= o.end))
}

/// Whether `a` and `b` share a slot.
#[must_use]
pub fn overlaps(a: &[SlotRange], b: &[SlotRange]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.start <= y.end && y.start <= x.end))
}

/// A slot a node marks as half-moved, with the node at the other end
/// (`CLUSTER NODES`: `[slot->-id]` migrating to it, `[slot-<-id]`
/// importing from it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotPeer {
    /// The slot.
    pub slot: u16,
    /// The node at the other end.
    pub node_id: String,
}

/// How many slots `ranges` hold.
#[must_use]
pub fn slot_count(ranges: &[SlotRange]) -> u32 {
    ranges
        .iter()
        .map(|r| u32::from(r.end.saturating_sub(r.start)).saturating_add(1))
        .fold(0, u32::saturating_add)
}

/// `ranges` as text: `0-5460,10923`.
#[must_use]
pub fn describe_slots(ranges: &[SlotRange]) -> String {
    if ranges.is_empty() {
        return "none".to_owned();
    }
    ranges
        .iter()
        .map(|r| {
            if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Sorted, merged ranges from any set of slots (out-of-range slots are
/// dropped).
#[must_use]
pub fn merge_slots(mut slots: Vec<u16>) -> Vec<SlotRange> {
    slots.retain(|s| u32::from(*s) < SLOTS);
    slots.sort_unstable();
    slots.dedup();
    let mut out: Vec<SlotRange> = Vec::new();
    for slot in slots {
        match out.last_mut() {
            Some(last) if last.end.checked_add(1) == Some(slot) => last.end = slot,
            _ => out.push(SlotRange {
                start: slot,
                end: slot,
            }),
        }
    }
    out
}

/// The even split of the 16384 slots over `shards` shards: shard `i`
/// gets `16384 / shards` slots, the first `16384 % shards` one more.
#[must_use]
pub fn even_split(shards: u32) -> Vec<SlotRange> {
    if shards == 0 {
        return Vec::new();
    }
    let base = SLOTS / shards;
    let extra = SLOTS % shards;
    let mut out = Vec::new();
    let mut start: u32 = 0;
    for i in 0..shards {
        let size = base + u32::from(i < extra);
        let end = start.saturating_add(size).saturating_sub(1);
        if let (Ok(s), Ok(e)) = (u16::try_from(start), u16::try_from(end))
            && size > 0
        {
            out.push(SlotRange { start: s, end: e });
        }
        start = start.saturating_add(size);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn r(start: u16, end: u16) -> SlotRange {
        SlotRange { start, end }
    }

    #[test]
    fn coverage_and_overlap() {
        let owned = [r(0, 99), r(100, 199), r(500, 500)];
        assert!(covers(&owned, &[r(50, 150), r(500, 500)]));
        assert!(!covers(&owned, &[r(150, 250)]));
        assert!(covers(&owned, &[]));
        assert!(overlaps(&[r(0, 10)], &[r(10, 20)]));
        assert!(!overlaps(&[r(0, 10)], &[r(11, 20)]));
    }

    #[test]
    fn an_even_split_covers_every_slot_once() {
        for shards in [1, 2, 3, 5, 7, 500] {
            let split = even_split(shards);
            assert_eq!(split.len(), shards as usize);
            assert_eq!(split[0].start, 0);
            assert_eq!(split.last().map(|r| r.end), Some(16_383));
            assert_eq!(slot_count(&split), SLOTS);
            for pair in split.windows(2) {
                assert_eq!(pair[0].end + 1, pair[1].start);
                let (a, b) = (slot_count(&pair[..1]), slot_count(&pair[1..]));
                assert!(a == b || a == b + 1, "{a} {b}");
            }
        }
        assert_eq!(
            describe_slots(&even_split(3)),
            "0-5461,5462-10922,10923-16383"
        );
    }

    #[test]
    fn slots_merge_into_sorted_ranges() {
        assert_eq!(
            describe_slots(&merge_slots(vec![5, 3, 4, 9, 16_384, 10, 0])),
            "0,3-5,9-10"
        );
        assert_eq!(describe_slots(&merge_slots(Vec::new())), "none");
    }
}
