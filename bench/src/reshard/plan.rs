//! The slot arithmetic of `logbook-bench reshard`: which slots each source
//! primary gives the new one when N shards become N + 1, the ownership
//! that leaves, and whether the `CLUSTER NODES` views of every node show a
//! cluster balanced and agreed. Pure: no I/O, no clock.
//!
//! Ownership is keyed by node id, never by address: the operator's nodes
//! are reached at pod addresses that the nodes themselves may print
//! differently, and an id is what `MIGRATESLOTS ... NODE` names.

use std::collections::BTreeMap;

use logbook::valkey::ClusterNodeLine;

use crate::slots::SLOTS;

/// Inclusive slot ranges, in order, adjacent ranges merged (see
/// [`normalize`]).
pub type Ranges = Vec<(u16, u16)>;

/// Node id → the slots it owns.
pub type Owners = BTreeMap<String, Ranges>;

/// Why no plan can balance the cluster by moving slots to the new node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The new node already owns slots.
    #[error("the new node {0} already owns slots")]
    TargetOwnsSlots(String),
    /// Some primary owns fewer slots than its even share: moving slots to
    /// the new node alone cannot balance that.
    #[error("{node} owns {owned} slots, fewer than its even share {share}")]
    Underfull {
        /// The node id.
        node: String,
        /// Its slots.
        owned: u32,
        /// Its share once the new node joins.
        share: u32,
    },
    /// Not every slot is owned before the reshard.
    #[error("{0} of 16384 slots are owned; a reshard needs all of them")]
    Uncovered(u32),
}

/// What one source primary gives the new node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The source's node id.
    pub source: String,
    /// The slots it gives, normalized.
    pub ranges: Ranges,
}

impl Move {
    /// How many slots it gives.
    pub fn slots(&self) -> u32 {
        count(&self.ranges)
    }
}

/// The even share of each of `primaries` primaries, largest first: 16384
/// divided by their number, the first `16384 % primaries` one slot more.
pub fn even_shares(primaries: usize) -> Vec<u32> {
    let slots = u32::from(SLOTS);
    let n = u32::try_from(primaries.max(1)).unwrap_or(u32::MAX);
    let (base, extra) = (slots / n, slots % n);
    (0..n)
        .map(|i| base.saturating_add(u32::from(i < extra)))
        .collect()
}

/// How many slots `ranges` hold.
pub fn count(ranges: &[(u16, u16)]) -> u32 {
    ranges
        .iter()
        .map(|(start, end)| u32::from(end.saturating_sub(*start)).saturating_add(1))
        .sum()
}

/// `ranges` sorted, overlapping and adjacent ones merged: two ways of
/// writing the same slots compare equal.
pub fn normalize(ranges: &[(u16, u16)]) -> Ranges {
    let mut sorted: Ranges = ranges.iter().filter(|(s, e)| s <= e).copied().collect();
    sorted.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(sorted.len());
    for (start, end) in sorted {
        match out.last_mut() {
            Some((_, last)) if u32::from(start) <= u32::from(*last).saturating_add(1) => {
                *last = (*last).max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out
}

/// The lowest `slots` slots of `ranges` (normalized first).
pub fn lowest(ranges: &[(u16, u16)], slots: u32) -> Ranges {
    let mut left = slots;
    let mut out = Vec::new();
    for (start, end) in normalize(ranges) {
        if left == 0 {
            break;
        }
        let size = u32::from(end.saturating_sub(start)).saturating_add(1);
        if size <= left {
            out.push((start, end));
            left = left.saturating_sub(size);
        } else {
            let last = u32::from(start)
                .saturating_add(left)
                .saturating_sub(1)
                .min(u32::from(end));
            out.push((start, u16::try_from(last).unwrap_or(end)));
            left = 0;
        }
    }
    out
}

/// Plans moving slots from the primaries in `owners` to `target`, a
/// primary that owns none, so that every primary (the target included)
/// ends with its even share. The primaries that own most keep the larger
/// shares when 16384 does not divide evenly; each source gives the lowest
/// slots it owns beyond its share. Sources with nothing to give have no
/// move. Moves are in node-id order.
///
/// # Errors
/// [`PlanError`] when the target owns slots, a slot is unowned, or a
/// primary owns less than its share.
pub fn plan_moves(owners: &Owners, target: &str) -> Result<Vec<Move>, PlanError> {
    if owners.get(target).is_some_and(|r| !r.is_empty()) {
        return Err(PlanError::TargetOwnsSlots(target.to_owned()));
    }
    let total: u32 = owners.values().map(|r| count(r)).sum();
    if total != u32::from(SLOTS) {
        return Err(PlanError::Uncovered(total));
    }
    let mut sources: Vec<(&String, &Ranges)> = owners
        .iter()
        .filter(|(id, r)| id.as_str() != target && !r.is_empty())
        .collect();
    // Most slots first, ties by id: they keep the larger shares.
    sources.sort_by(|(a_id, a), (b_id, b)| count(b).cmp(&count(a)).then(a_id.cmp(b_id)));
    let shares = even_shares(sources.len().saturating_add(1));
    let mut moves = Vec::new();
    for ((id, ranges), share) in sources.into_iter().zip(shares) {
        let owned = count(ranges);
        if owned < share {
            return Err(PlanError::Underfull {
                node: id.clone(),
                owned,
                share,
            });
        }
        let give = owned.saturating_sub(share);
        if give > 0 {
            moves.push(Move {
                source: id.clone(),
                ranges: lowest(ranges, give),
            });
        }
    }
    moves.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(moves)
}

/// The ownership once `moves` to `target` are done.
pub fn apply_moves(owners: &Owners, moves: &[Move], target: &str) -> Owners {
    let mut map = slot_owners(owners);
    for m in moves {
        for (start, end) in &m.ranges {
            for slot in *start..=*end {
                if let Some(entry) = map.get_mut(usize::from(slot)) {
                    *entry = Some(target);
                }
            }
        }
    }
    from_slots(&map)
}

/// Slot → owner id, one entry per slot.
fn slot_owners(owners: &Owners) -> Vec<Option<&str>> {
    let mut map: Vec<Option<&str>> = vec![None; usize::from(SLOTS)];
    for (id, ranges) in owners {
        for (start, end) in ranges {
            for slot in *start..=(*end).min(SLOTS.saturating_sub(1)) {
                if let Some(entry) = map.get_mut(usize::from(slot)) {
                    *entry = Some(id.as_str());
                }
            }
        }
    }
    map
}

fn from_slots(map: &[Option<&str>]) -> Owners {
    let mut owners: Owners = BTreeMap::new();
    for (slot, owner) in map.iter().enumerate() {
        let (Some(id), Ok(slot)) = (owner, u16::try_from(slot)) else {
            continue;
        };
        let ranges = owners.entry((*id).to_owned()).or_default();
        match ranges.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(slot) => *end = slot,
            _ => ranges.push((slot, slot)),
        }
    }
    owners
}

/// The slots whose owner differs between `before` and `after`.
pub fn slots_moved(before: &Owners, after: &Owners) -> u32 {
    let (a, b) = (slot_owners(before), slot_owners(after));
    let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    u32::try_from(moved).unwrap_or(u32::MAX)
}

/// Whether `slot` changed owner between `before` and `after` (for
/// counting the keys a reshard moved).
pub fn moved_slots(before: &Owners, after: &Owners) -> Vec<bool> {
    let (a, b) = (slot_owners(before), slot_owners(after));
    a.iter().zip(&b).map(|(x, y)| x != y).collect()
}

/// The ownership one node's `CLUSTER NODES` states: every line owning
/// slots, by id.
pub fn owners_of(lines: &[ClusterNodeLine]) -> Owners {
    lines
        .iter()
        .filter(|l| !l.slots.is_empty())
        .map(|l| {
            let ranges: Ranges = l.slots.iter().map(|r| (r.start, r.end)).collect();
            (l.id.clone(), normalize(&ranges))
        })
        .collect()
}

/// What the views of every node say about the reshard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Every view states the same ownership, the wanted one, and no node
    /// has a slot migrating or importing.
    Balanced(Owners),
    /// Not yet, and why (the first reason found).
    NotYet(String),
}

/// What ownership the reshard must end with.
#[derive(Debug, Clone, Copy)]
pub enum Want<'a> {
    /// Exactly this ownership (a planned reshard).
    Exactly(&'a Owners),
    /// Any ownership with this many primaries, each with its even share
    /// (a reshard planned by someone else: `redis-cli`, the operator).
    EvenOver(usize),
}

/// Whether `views` (each node's address and parsed `CLUSTER NODES`) show
/// the cluster balanced as `want` says and agreed: every view the same
/// ownership, and no slot migrating or importing on any node.
pub fn balance(views: &[(String, Vec<ClusterNodeLine>)], want: Want<'_>) -> Balance {
    let Some((first_addr, first)) = views.first() else {
        return Balance::NotYet("no node answered".to_owned());
    };
    for (addr, lines) in views {
        if let Some(me) = lines.iter().find(|l| l.myself)
            && let Some(m) = me.migrating.first().or(me.importing.first())
        {
            return Balance::NotYet(format!(
                "{addr}: slot {} is being moved ({} open)",
                m.slot,
                me.migrating.len().saturating_add(me.importing.len())
            ));
        }
    }
    let owners = owners_of(first);
    for (addr, lines) in views.iter().skip(1) {
        if owners_of(lines) != owners {
            return Balance::NotYet(format!("{addr} and {first_addr} disagree on the owners"));
        }
    }
    match want {
        Want::Exactly(wanted) => {
            if &owners != wanted {
                return Balance::NotYet(format!(
                    "owners are not the planned ones yet ({})",
                    describe(&owners)
                ));
            }
        }
        Want::EvenOver(primaries) => {
            let mut counts: Vec<u32> = owners.values().map(|r| count(r)).collect();
            counts.sort_unstable_by(|a, b| b.cmp(a));
            if counts != even_shares(primaries) {
                return Balance::NotYet(format!(
                    "not {primaries} even shares yet ({})",
                    describe(&owners)
                ));
            }
        }
    }
    Balance::Balanced(owners)
}

/// `id-prefix: slots` per owner, for messages.
pub fn describe(owners: &Owners) -> String {
    owners
        .iter()
        .map(|(id, r)| format!("{}: {}", id.get(..8).unwrap_or(id), count(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ranges` as `MIGRATESLOTS` takes them: `SLOTSRANGE s e [s e ...]`.
pub fn slotsrange_args(ranges: &[(u16, u16)]) -> Vec<String> {
    let mut args = vec!["SLOTSRANGE".to_owned()];
    for (start, end) in ranges {
        args.push(start.to_string());
        args.push(end.to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook::valkey::parse_cluster_nodes;

    fn owners(list: &[(&str, &[(u16, u16)])]) -> Owners {
        list.iter()
            .map(|(id, r)| ((*id).to_owned(), r.to_vec()))
            .collect()
    }

    fn three_even() -> Owners {
        owners(&[
            ("a", &[(0, 5460)]),
            ("b", &[(5461, 10921)]),
            ("c", &[(10922, 16383)]),
        ])
    }

    #[test]
    fn shares_are_even_and_cover_every_slot() {
        assert_eq!(even_shares(4), vec![4096; 4]);
        assert_eq!(even_shares(3), vec![5462, 5461, 5461]);
        assert_eq!(even_shares(1), vec![16384]);
        assert_eq!(even_shares(0), vec![16384]);
        assert_eq!(even_shares(7).iter().sum::<u32>(), 16384);
    }

    #[test]
    fn three_even_shards_each_give_their_lowest_slots_beyond_4096() {
        let moves = plan_moves(&three_even(), "d").unwrap_or_default();
        assert_eq!(
            moves,
            vec![
                Move {
                    source: "a".into(),
                    ranges: vec![(0, 1364)]
                },
                Move {
                    source: "b".into(),
                    ranges: vec![(5461, 6825)]
                },
                Move {
                    source: "c".into(),
                    ranges: vec![(10922, 12287)]
                },
            ]
        );
        assert_eq!(moves.iter().map(Move::slots).sum::<u32>(), 4096);
        let after = apply_moves(&three_even(), &moves, "d");
        for ranges in after.values() {
            assert_eq!(count(ranges), 4096);
        }
        assert_eq!(
            after.get("d"),
            Some(&vec![(0, 1364), (5461, 6825), (10922, 12287)])
        );
        assert_eq!(after.get("a"), Some(&vec![(1365, 5460)]));
        assert_eq!(slots_moved(&three_even(), &after), 4096);
        assert_eq!(
            moved_slots(&three_even(), &after)
                .iter()
                .filter(|m| **m)
                .count(),
            4096
        );
    }

    #[test]
    fn a_source_in_pieces_gives_across_its_ranges() {
        let start = owners(&[
            (
                "a",
                &[(100, 199), (0, 49), (50, 99), (5000, 5460), (300, 4999)],
            ),
            ("b", &[(200, 299), (5461, 10921)]),
            ("c", &[(10922, 16383)]),
        ]);
        let moves = plan_moves(&start, "d").unwrap_or_default();
        let a = moves
            .iter()
            .find(|m| m.source == "a")
            .map(|m| m.ranges.clone());
        // a owns 0..=199 and 300..=5460: 5361 slots, gives 1265.
        assert_eq!(a, Some(vec![(0, 199), (300, 1364)]));
        let after = apply_moves(&start, &moves, "d");
        let mut counts: Vec<u32> = after.values().map(|r| count(r)).collect();
        counts.sort_unstable();
        assert_eq!(counts, vec![4096; 4]);
    }

    #[test]
    fn plans_that_cannot_balance_are_refused() {
        let mut uneven = three_even();
        uneven.insert("a".into(), vec![(0, 100)]);
        assert_eq!(plan_moves(&uneven, "d"), Err(PlanError::Uncovered(11024)));
        let lopsided = owners(&[("a", &[(0, 15383)]), ("b", &[(15384, 16383)])]);
        assert!(matches!(
            plan_moves(&lopsided, "d"),
            Err(PlanError::Underfull { owned: 1000, .. })
        ));
        assert_eq!(
            plan_moves(&three_even(), "a"),
            Err(PlanError::TargetOwnsSlots("a".into()))
        );
    }

    #[test]
    fn ranges_normalize_and_take_the_lowest() {
        assert_eq!(
            normalize(&[(10, 20), (0, 5), (6, 9), (15, 30), (40, 40)]),
            vec![(0, 30), (40, 40)]
        );
        assert_eq!(lowest(&[(10, 20), (0, 4)], 7), vec![(0, 4), (10, 11)]);
        assert_eq!(lowest(&[(0, 4)], 9), vec![(0, 4)]);
        assert_eq!(lowest(&[(0, 4)], 0), Vec::<(u16, u16)>::new());
        assert_eq!(
            slotsrange_args(&[(0, 1364), (2000, 2000)]),
            vec!["SLOTSRANGE", "0", "1364", "2000", "2000"]
        );
    }

    fn view(addr: &str, text: &str) -> (String, Vec<ClusterNodeLine>) {
        (
            addr.to_owned(),
            parse_cluster_nodes(text).unwrap_or_default(),
        )
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn nodes(me: &str, a_slots: &str, b_slots: &str) -> String {
        let flags = |id: &str| if id == me { "myself,master" } else { "master" };
        format!(
            "{A} 127.0.0.1:7001@17001 {} - 0 0 1 connected {a_slots}\n\
             {B} 127.0.0.1:7002@17002 {} - 0 0 2 connected {b_slots}\n",
            flags(A),
            flags(B)
        )
    }

    #[test]
    fn balance_needs_every_view_agreed_and_nothing_open() {
        let even = view("x:1", &nodes(A, "0-8191", "8192-16383"));
        let even_b = view("x:2", &nodes(B, "0-8191", "8192-16383"));
        let stale_b = view("x:2", &nodes(B, "0-8190", "8191-16383"));
        let want = owners(&[(A, &[(0, 8191)]), (B, &[(8192, 16383)])]);
        assert!(matches!(
            balance(&[even.clone(), even_b.clone()], Want::Exactly(&want)),
            Balance::Balanced(_)
        ));
        assert!(matches!(
            balance(&[even.clone(), even_b.clone()], Want::EvenOver(2)),
            Balance::Balanced(_)
        ));
        assert!(matches!(
            balance(&[even.clone(), stale_b.clone()], Want::EvenOver(2)),
            Balance::NotYet(why) if why.contains("disagree")
        ));
        assert!(matches!(
            balance(&[stale_b], Want::EvenOver(2)),
            Balance::NotYet(why) if why.contains("even shares")
        ));
        assert!(matches!(
            balance(std::slice::from_ref(&even), Want::EvenOver(3)),
            Balance::NotYet(_)
        ));
        let open = view(
            "x:1",
            &nodes(A, &format!("0-8191 [8191->-{B}]"), "8192-16383"),
        );
        assert!(matches!(
            balance(&[open, even_b], Want::EvenOver(2)),
            Balance::NotYet(why) if why.contains("slot 8191")
        ));
        assert!(matches!(
            balance(&[], Want::EvenOver(2)),
            Balance::NotYet(_)
        ));
    }
}
