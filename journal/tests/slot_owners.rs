//! The slot map computed over the claims' boundaries (`owned_ranges`,
//! `slot_owners`, `shards`, `slot_map`) agrees with the definition, slot
//! by slot, on generated clusters: overlapping claims, ties of config
//! epoch, replicas with stale claims, ranges running past the last slot.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use logbook_journal::cluster::{ClusterNodeReport, SLOTS};
use logbook_journal::intent::SlotRange;
use logbook_journal::projection::cluster::{ClusterNode, ClusterPart};
use proptest::prelude::*;

/// The definition: each slot to the primary claiming it with the highest
/// `(config epoch, node id)`.
fn reference(part: &ClusterPart) -> Vec<Option<String>> {
    let mut owners: Vec<Option<(u64, String)>> = vec![None; SLOTS as usize];
    for (id, node) in &part.nodes {
        if !node.report.is_primary() {
            continue;
        }
        for range in &node.report.slots {
            for slot in u32::from(range.start)..=u32::from(range.end) {
                if let Some(owner) = owners.get_mut(slot as usize) {
                    let claim = (node.report.config_epoch, id.clone());
                    if owner.as_ref().is_none_or(|o| claim > *o) {
                        *owner = Some(claim);
                    }
                }
            }
        }
    }
    owners.into_iter().map(|o| o.map(|(_, id)| id)).collect()
}

fn node(
    i: usize,
    primary: Option<usize>,
    epoch: u64,
    slots: Vec<(u16, u16)>,
) -> (String, ClusterNode) {
    let id = format!("{i:040}");
    let report = ClusterNodeReport {
        node_id: id.clone(),
        primary_id: primary.map(|p| format!("{p:040}")),
        slots: slots
            .into_iter()
            .map(|(a, b)| SlotRange {
                start: a.min(b),
                end: a.max(b),
            })
            .collect(),
        config_epoch: epoch,
        current_epoch: epoch,
        state_ok: true,
        peers: Vec::new(),
    };
    (
        id,
        ClusterNode {
            pod: format!("demo-{i}"),
            report,
        },
    )
}

fn cluster() -> impl Strategy<Value = ClusterPart> {
    let slot = prop_oneof![0_u16..40, 16_340_u16..16_400, any::<u16>()];
    let claim = (slot.clone(), slot);
    proptest::collection::vec(
        (
            proptest::option::weighted(0.2, 0_usize..6),
            0_u64..4,
            proptest::collection::vec(claim, 0..4),
        ),
        0..7,
    )
    .prop_map(|nodes| {
        let mut part = ClusterPart::default();
        for (i, (primary, epoch, slots)) in nodes.into_iter().enumerate() {
            let (id, node) = node(i, primary, epoch, slots);
            part.pods.insert(node.pod.clone(), id.clone());
            part.nodes.insert(id, node);
        }
        part
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_slot_map_is_the_definitions(part in cluster()) {
        let want = reference(&part);
        let got: Vec<Option<String>> = part
            .slot_owners()
            .into_iter()
            .map(|o| o.map(str::to_owned))
            .collect();
        prop_assert_eq!(&got, &want);
        let free = want.iter().filter(|o| o.is_none()).count();
        prop_assert_eq!(part.unassigned() as usize, free);
        // Runs are disjoint, in order, maximal.
        let ranges = part.owned_ranges();
        for pair in ranges.windows(2) {
            prop_assert!(pair[0].0.end < pair[1].0.start);
            prop_assert!(
                pair[0].0.end + 1 < pair[1].0.start || pair[0].1 != pair[1].1,
                "adjacent runs of one owner are merged: {:?}", pair
            );
        }
        // The slot map covers every slot once, naming the owner's pod.
        let map = part.slot_map();
        let mut slot = 0_u32;
        for (range, pod) in &map {
            prop_assert_eq!(u32::from(range.start), slot);
            for s in range.start..=range.end {
                let want_pod = want[usize::from(s)].as_deref().and_then(|id| part.pod_of(id));
                prop_assert_eq!(pod.as_deref(), want_pod);
            }
            slot = u32::from(range.end) + 1;
        }
        prop_assert_eq!(slot, SLOTS);
        // Each shard holds exactly the slots its primary owns.
        for shard in part.shards() {
            let mut mine = Vec::new();
            for range in &shard.slots {
                mine.extend(range.start..=range.end);
            }
            let owned: Vec<u16> = (0_u16..)
                .zip(&want)
                .filter(|(_, o)| o.as_deref() == Some(shard.node_id))
                .map(|(s, _)| s)
                .collect();
            prop_assert_eq!(mine, owned);
        }
    }
}
