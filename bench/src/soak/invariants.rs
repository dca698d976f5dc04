//! What the soak checks while faults are injected: the servers' own view
//! of who is primary, sampled all along, and the slot map at the end.
//!
//! "Two primaries of one shard at once", as clients can see it, is two
//! pods each answering `ROLE` as `master` while a replica answers that it
//! follows it with its link `connected` (so each could acknowledge a
//! `WAIT 1` write) and, in a Cluster, claiming a common slot, in two
//! consecutive rounds of sampling. The replica's side is what counts: a
//! primary cut off by a partition still lists the replicas that left it
//! (their goodbyes were dropped) until its timeout, yet none of them
//! would acknowledge a write there. One round alone can be the instant of
//! a handover, sampled pod by pod. A frozen or partitioned pod does not
//! answer, so is not counted: what it may have accepted is checked by
//! reading every acknowledged write back at the end.

use std::collections::BTreeSet;

/// One pod's answer in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The pod.
    pub pod: String,
    /// Its address (IP).
    pub ip: String,
    /// `ROLE` said `master`.
    pub primary: bool,
    /// A replica's primary (host as `ROLE` gives it), when its link is
    /// `connected`.
    pub follows: Option<String>,
    /// In a Cluster, the slots its `CLUSTER NODES` `myself` line claims.
    pub slots: Vec<(u16, u16)>,
}

impl NodeView {
    /// `host` (as a replica names its primary) is this pod: its IP, its
    /// name, or a DNS name under its name.
    fn is(&self, host: &str) -> bool {
        host == self.ip
            || host == self.pod
            || host
                .strip_prefix(self.pod.as_str())
                .is_some_and(|r| r.starts_with('.'))
    }
}

fn overlap(a: &[(u16, u16)], b: &[(u16, u16)]) -> bool {
    a.iter()
        .any(|(s, e)| b.iter().any(|(s2, e2)| s <= e2 && s2 <= e))
}

/// The primaries of a round that a replica of the same round follows
/// with its link up: each could acknowledge a `WAIT 1` write.
pub fn acknowledging(round: &[NodeView]) -> Vec<&NodeView> {
    round
        .iter()
        .filter(|p| p.primary)
        .filter(|p| {
            round
                .iter()
                .any(|r| r.follows.as_deref().is_some_and(|h| p.is(h)))
        })
        .collect()
}

/// The pairs of pods of one round that could both acknowledge writes for
/// one shard: any two in a one-shard topology (`cluster` false), two
/// claiming a common slot in a Cluster.
pub fn doubled(round: &[NodeView], cluster: bool) -> BTreeSet<(String, String)> {
    let ackers = acknowledging(round);
    let mut pairs = BTreeSet::new();
    for (i, a) in ackers.iter().enumerate() {
        for b in ackers.iter().skip(i + 1) {
            if !cluster || overlap(&a.slots, &b.slots) {
                let (x, y) = if a.pod <= b.pod {
                    (&a.pod, &b.pod)
                } else {
                    (&b.pod, &a.pod)
                };
                pairs.insert((x.clone(), y.clone()));
            }
        }
    }
    pairs
}

/// Follows [`doubled`] round after round and keeps the pairs seen in two
/// consecutive rounds.
#[derive(Debug, Default)]
pub struct DoubleTracker {
    last: BTreeSet<(String, String)>,
    /// Rounds sampled.
    pub rounds: u64,
    /// Rounds in which some primary could acknowledge (the check had
    /// something to check).
    pub acknowledging_rounds: u64,
    /// Each pair seen twice in a row, with the soak second it was seen.
    pub findings: Vec<String>,
}

impl DoubleTracker {
    /// Takes one round, sampled `at_s` seconds into the soak.
    pub fn round(&mut self, round: &[NodeView], cluster: bool, at_s: f64) {
        self.rounds += 1;
        if !acknowledging(round).is_empty() {
            self.acknowledging_rounds += 1;
        }
        let now = doubled(round, cluster);
        for (a, b) in now.intersection(&self.last) {
            let finding =
                format!("{a} and {b} were both primary with a replica following at {at_s:.1} s");
            if !self.findings.contains(&finding) {
                self.findings.push(finding);
            }
        }
        self.last = now;
    }
}

/// Whether one round shows the full redundancy a `WAIT 1` write relies
/// on, the condition for the next node fault: `expected` data pods all
/// answered, and every one that is not a primary follows a primary with
/// its link `connected` (a replica restarting or resyncing holds only
/// what it loaded from disk, so a fault on its primary then could lose
/// writes only that primary still has). `Err` names what is missing.
pub fn redundant(round: &[NodeView], expected: usize) -> Result<(), String> {
    if round.len() < expected {
        return Err(format!(
            "{} of {expected} data pods answered ROLE",
            round.len()
        ));
    }
    let unlinked: Vec<&str> = round
        .iter()
        .filter(|v| !v.primary && v.follows.is_none())
        .map(|v| v.pod.as_str())
        .collect();
    if unlinked.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "replica link not connected: {}",
            unlinked.join(", ")
        ))
    }
}

/// The slots of the `myself` line of `CLUSTER NODES`: single slots and
/// ranges; the `[slot->-node]` migration marks are not ownership.
pub fn myself_slots(nodes: &str) -> Vec<(u16, u16)> {
    let Some(line) = nodes.lines().find(|l| {
        l.split(' ')
            .nth(2)
            .is_some_and(|flags| flags.split(',').any(|f| f == "myself"))
    }) else {
        return Vec::new();
    };
    line.split(' ')
        .skip(8)
        .filter(|f| !f.starts_with('['))
        .filter_map(|f| match f.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => f.parse().ok().map(|s| (s, s)),
        })
        .collect()
}

/// Every slot owned by exactly one of `primaries` (pod, claimed ranges):
/// `Err` names the first slot unowned or owned twice.
pub fn slots_owned_once(primaries: &[(String, Vec<(u16, u16)>)]) -> Result<(), String> {
    let mut owner: Vec<Option<&str>> = vec![None; 16384];
    for (pod, ranges) in primaries {
        for (start, end) in ranges {
            for slot in *start..=*end {
                let Some(entry) = owner.get_mut(usize::from(slot)) else {
                    return Err(format!("{pod} claims slot {slot}, beyond 16383"));
                };
                if let Some(other) = entry {
                    return Err(format!("slot {slot} is claimed by {other} and by {pod}"));
                }
                *entry = Some(pod.as_str());
            }
        }
    }
    match owner.iter().position(Option::is_none) {
        Some(slot) => Err(format!("slot {slot} has no owner")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(pod: &str, slots: &[(u16, u16)]) -> NodeView {
        NodeView {
            pod: pod.into(),
            ip: format!("10.0.0.{}", pod.len()),
            primary: true,
            follows: None,
            slots: slots.to_vec(),
        }
    }

    fn replica(pod: &str, of: &str) -> NodeView {
        NodeView {
            pod: pod.into(),
            ip: "10.9.9.9".into(),
            primary: false,
            follows: Some(of.into()),
            slots: Vec::new(),
        }
    }

    #[test]
    fn only_a_primary_a_replica_follows_could_acknowledge() {
        let a = NodeView {
            ip: "10.0.0.1".into(),
            ..primary("a", &[])
        };
        let b = NodeView {
            ip: "10.0.0.2".into(),
            ..primary("b", &[])
        };
        // Both primaries, one followed: nothing doubled.
        let round = [a.clone(), b.clone(), replica("r1", "10.0.0.2")];
        assert!(doubled(&round, false).is_empty());
        assert_eq!(acknowledging(&round).len(), 1);
        // Each followed (by IP, or by a DNS name under the pod's name).
        let round = [
            a,
            b,
            replica("r1", "10.0.0.2"),
            replica("r2", "a.soak-headless.default.svc"),
        ];
        assert_eq!(
            doubled(&round, false),
            BTreeSet::from([("a".to_owned(), "b".to_owned())])
        );
        // A replica whose link is not up follows nobody.
        let mut down = replica("r3", "10.0.0.1");
        down.follows = None;
        assert!(acknowledging(&[primary("x", &[]), down]).is_empty());
    }

    #[test]
    fn in_a_cluster_only_primaries_sharing_a_slot_are_doubled() {
        let mut a = primary("a", &[(0, 5460)]);
        a.ip = "1".into();
        let mut b = primary("b", &[(5461, 10922)]);
        b.ip = "2".into();
        let mut d = primary("d", &[(5460, 5460)]);
        d.ip = "4".into();
        let round = [a.clone(), b.clone(), replica("ra", "1"), replica("rb", "2")];
        assert!(doubled(&round, true).is_empty());
        let round = [a, d, replica("ra", "1"), replica("rd", "4")];
        assert_eq!(
            doubled(&round, true),
            BTreeSet::from([("a".to_owned(), "d".to_owned())])
        );
    }

    #[test]
    fn only_a_pair_seen_in_two_rounds_in_a_row_is_a_finding() {
        let mut a = primary("a", &[]);
        a.ip = "1".into();
        let mut b = primary("b", &[]);
        b.ip = "2".into();
        let both = [a.clone(), b.clone(), replica("r1", "1"), replica("r2", "2")];
        let one = [a, b, replica("r1", "2"), replica("r2", "2")];
        let mut t = DoubleTracker::default();
        t.round(&both, false, 1.0);
        t.round(&one, false, 1.2);
        t.round(&both, false, 1.4);
        assert!(t.findings.is_empty());
        t.round(&both, false, 1.6);
        assert_eq!(t.findings.len(), 1);
        assert!(
            t.findings.iter().all(|f| f.contains("a and b")),
            "{:?}",
            t.findings
        );
        t.round(&both, false, 1.8);
        assert_eq!((t.rounds, t.acknowledging_rounds), (5, 5));
    }

    #[test]
    fn redundancy_needs_every_pod_and_every_replica_linked() {
        let full = [
            primary("p-0", &[(0, 16383)]),
            replica("p-1", "127.0.0.1"),
            replica("p-2", "p-0.p"),
        ];
        assert_eq!(redundant(&full, 3), Ok(()));
        let two: Vec<NodeView> = full.iter().take(2).cloned().collect();
        let missing = redundant(&two, 3).err().unwrap_or_default();
        assert!(missing.contains("2 of 3"), "{missing}");
        let mut resyncing = full.to_vec();
        if let Some(last) = resyncing.last_mut() {
            last.follows = None;
        }
        let why = redundant(&resyncing, 3).err().unwrap_or_default();
        assert!(why.contains("p-2") && !why.contains("p-1"), "{why}");
    }

    #[test]
    fn myself_slots_skip_migration_marks_and_other_lines() {
        let nodes = "e7d 127.0.0.2:6379@16379 master - 0 1 2 connected 0-99\n\
                     07c 127.0.0.1:6379@16379 myself,master - 0 0 1 connected 100 200-300 [301->-e7d] [302-<-e7d]\n";
        assert_eq!(myself_slots(nodes), vec![(100, 100), (200, 300)]);
        assert!(myself_slots("07c 1:2@3 master - 0 0 1 connected 0-5\n").is_empty());
    }

    #[test]
    fn slot_ownership_names_the_hole_or_the_double() {
        let ok = vec![
            ("a".to_owned(), vec![(0, 8191)]),
            ("b".to_owned(), vec![(8192, 16383)]),
        ];
        assert_eq!(slots_owned_once(&ok), Ok(()));
        let hole = vec![
            ("a".to_owned(), vec![(0, 8190)]),
            ("b".to_owned(), vec![(8192, 16383)]),
        ];
        assert_eq!(
            slots_owned_once(&hole),
            Err("slot 8191 has no owner".into())
        );
        let twice = vec![
            ("a".to_owned(), vec![(0, 8192)]),
            ("b".to_owned(), vec![(8192, 16383)]),
        ];
        assert_eq!(
            slots_owned_once(&twice),
            Err("slot 8192 is claimed by a and by b".into())
        );
    }
}
