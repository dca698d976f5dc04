//! The soak's fault schedule: a pure function of the seed, the topology and
//! the duration, so a failing run is reproduced by its seed.
//!
//! What the schedule fixes is the kind of each fault, when it comes, how
//! long it holds (a freeze, a partition, an operator kept down) and a
//! number that picks its target among the candidates of the moment (the
//! primary, a replica, any pod). Which pod that is depends on the cluster
//! at that moment, so a rerun with the same seed injects the same faults
//! into pods of the same roles, not necessarily of the same names.
//!
//! # Fault model
//! Any number of operator kills and spec changes, at any moment
//! (including mid-failover and mid-reshard: every fault may be followed,
//! within three seconds, by an operator kill). Faults on data pods come one
//! at a time: one is injected only while the cluster is Ready and no
//! other data-pod fault holds; otherwise it waits (and is counted as
//! deferred). This is the model under which the operator promises that
//! no acknowledged write (`WAIT 1`) is lost; two overlapping node faults
//! can destroy both copies of a write, which no operator can undo.

use std::time::Duration;

/// The topology a soak runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SoakTopology {
    /// One pod, AOF with `appendfsync always`.
    Standalone,
    /// A primary and replicas, the operator fails over.
    Replication,
    /// A primary and replicas with Sentinels, who fail over.
    Sentinel,
    /// Shards of a primary and a replica, slots moved by resharding.
    Cluster,
}

impl SoakTopology {
    /// Every topology, in the order `--topology all` runs them.
    pub const ALL: [SoakTopology; 4] = [
        SoakTopology::Standalone,
        SoakTopology::Replication,
        SoakTopology::Sentinel,
        SoakTopology::Cluster,
    ];

    /// The spelling of `--topology` and of the CRD.
    pub fn name(self) -> &'static str {
        match self {
            SoakTopology::Standalone => "Standalone",
            SoakTopology::Replication => "Replication",
            SoakTopology::Sentinel => "Sentinel",
            SoakTopology::Cluster => "Cluster",
        }
    }

    /// Parses `--topology` (any case).
    pub fn parse(s: &str) -> Option<SoakTopology> {
        SoakTopology::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// The faults this topology is soaked with, and their weights.
    ///
    /// Standalone has no second copy of anything: a wiped volume is lost
    /// data by definition, so it is not injected there; nor a switchover,
    /// scale or reshard, which it has not.
    fn kinds(self) -> &'static [(FaultKind, u64)] {
        use FaultKind::*;
        match self {
            SoakTopology::Standalone => &[
                (KillProcess, 3),
                (DeletePod, 2),
                (Freeze, 2),
                (Partition, 2),
                (KillOperator, 3),
                (ConfigRoll, 1),
            ],
            SoakTopology::Replication => &[
                (KillProcess, 3),
                (DeletePod, 2),
                (Freeze, 2),
                (Partition, 2),
                (WipePvc, 1),
                (KillOperator, 3),
                (Scale, 1),
                (ConfigRoll, 1),
                (Switchover, 2),
            ],
            SoakTopology::Sentinel => &[
                (KillProcess, 3),
                (DeletePod, 2),
                (Freeze, 2),
                (Partition, 2),
                (WipePvc, 1),
                (KillOperator, 3),
                (ConfigRoll, 1),
                (Switchover, 1),
            ],
            SoakTopology::Cluster => &[
                (KillProcess, 3),
                (DeletePod, 2),
                (Freeze, 2),
                (Partition, 2),
                (WipePvc, 1),
                (KillOperator, 3),
                (ConfigRoll, 1),
                (Reshard, 2),
            ],
        }
    }
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL of a data pod's server process (the kubelet restarts it).
    KillProcess,
    /// The pod deleted (its StatefulSet makes it again, same volume).
    DeletePod,
    /// SIGSTOP of a pod's processes for `hold`, then SIGCONT.
    Freeze,
    /// All traffic to and from a pod's address dropped for `hold`.
    Partition,
    /// A replica's volume emptied, then its process killed: it comes
    /// back with nothing.
    WipePvc,
    /// SIGKILL of the operator, started again after `hold`.
    KillOperator,
    /// `replicas` (Replication) between 3 and 4. Not in the Sentinel soak,
    /// whose writes wait for every replica of a fixed count.
    Scale,
    /// A pod annotation changed: every pod is rolled.
    ConfigRoll,
    /// `shards` between 3 and 4: slots move.
    Reshard,
    /// The failover-requested annotation: a planned switchover.
    Switchover,
}

impl FaultKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillProcess => "kill process",
            FaultKind::DeletePod => "delete pod",
            FaultKind::Freeze => "freeze",
            FaultKind::Partition => "partition",
            FaultKind::WipePvc => "wipe volume",
            FaultKind::KillOperator => "kill operator",
            FaultKind::Scale => "scale",
            FaultKind::ConfigRoll => "config roll",
            FaultKind::Reshard => "reshard",
            FaultKind::Switchover => "switchover",
        }
    }

    /// A fault on a data pod: injected one at a time, on a Ready cluster.
    pub fn on_a_node(self) -> bool {
        matches!(
            self,
            FaultKind::KillProcess
                | FaultKind::DeletePod
                | FaultKind::Freeze
                | FaultKind::Partition
                | FaultKind::WipePvc
        )
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// When, from the start of the soak.
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
    /// Picks the target among the candidates of the moment (modulo their
    /// number); also whether a node fault hits the primary (even) or a
    /// replica (odd).
    pub pick: u64,
    /// How long a freeze, a partition or an operator kill holds.
    pub hold: Duration,
    /// An operator kill this long after the fault, to catch the operator
    /// in the middle of what the fault started.
    pub then_kill_operator: Option<Duration>,
}

/// SplitMix64: a small, well-mixed generator; the sequence of a seed is
/// fixed for ever (a seed in `docs/robustness.md` must reproduce).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi.saturating_sub(lo).saturating_add(1);
        lo.saturating_add(self.next_u64() % span)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// The schedule of `seed` for `topology` over `duration`: faults spaced by
/// `interval` on average (uniformly between half and one and a half of
/// it), none in the first `interval` (the writer warms up).
pub fn schedule(
    seed: u64,
    topology: SoakTopology,
    duration: Duration,
    interval: Duration,
) -> Vec<Step> {
    // The topology is part of the stream, so `--topology all` does not
    // inject the same sequence into each.
    let mut rng = Rng::new(seed ^ (topology as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let kinds = topology.kinds();
    let total: u64 = kinds.iter().map(|(_, w)| w).sum();
    let mean = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut steps = Vec::new();
    let mut at = interval;
    while at < duration {
        let mut roll = rng.next_u64() % total.max(1);
        let kind = kinds
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map_or(FaultKind::KillOperator, |(k, _)| *k);
        let pick = rng.next_u64();
        let hold = Duration::from_millis(match kind {
            FaultKind::Freeze | FaultKind::Partition => rng.between(1_000, 8_000),
            FaultKind::KillOperator => rng.between(0, 3_000),
            _ => 0,
        });
        let then_kill_operator = (kind != FaultKind::KillOperator && rng.chance(25))
            .then(|| Duration::from_millis(rng.between(200, 3_000)));
        steps.push(Step {
            at,
            kind,
            pick,
            hold,
            then_kill_operator,
        });
        at += Duration::from_millis(rng.between(mean / 2, mean.saturating_mul(3) / 2));
    }
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_seed_gives_one_schedule_and_another_seed_another() {
        for t in SoakTopology::ALL {
            let a = schedule(7, t, 10 * MIN, Duration::from_secs(8));
            assert_eq!(a, schedule(7, t, 10 * MIN, Duration::from_secs(8)));
            assert_ne!(a, schedule(8, t, 10 * MIN, Duration::from_secs(8)));
        }
    }

    #[test]
    fn the_topologies_get_different_sequences_from_one_seed() {
        let r = schedule(
            7,
            SoakTopology::Replication,
            10 * MIN,
            Duration::from_secs(8),
        );
        let s = schedule(7, SoakTopology::Sentinel, 10 * MIN, Duration::from_secs(8));
        let kinds = |v: &[Step]| v.iter().map(|s| s.kind).collect::<Vec<_>>();
        assert_ne!(kinds(&r), kinds(&s));
    }

    #[test]
    fn a_long_schedule_has_every_kind_of_its_topology_and_no_other() {
        for t in SoakTopology::ALL {
            let steps = schedule(1, t, 60 * MIN, Duration::from_secs(8));
            for (kind, _) in t.kinds() {
                assert!(
                    steps.iter().any(|s| s.kind == *kind),
                    "{t:?} lacks {kind:?}"
                );
            }
            assert!(
                steps
                    .iter()
                    .all(|s| t.kinds().iter().any(|(k, _)| *k == s.kind))
            );
        }
        let standalone = schedule(
            1,
            SoakTopology::Standalone,
            60 * MIN,
            Duration::from_secs(8),
        );
        assert!(!standalone.iter().any(|s| s.kind == FaultKind::WipePvc));
    }

    #[test]
    fn faults_are_spaced_around_the_interval_and_stop_before_the_end() {
        let steps = schedule(3, SoakTopology::Cluster, 30 * MIN, Duration::from_secs(10));
        assert!(steps[0].at >= Duration::from_secs(10));
        for pair in steps.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(
                gap >= Duration::from_secs(5) && gap <= Duration::from_secs(15),
                "{gap:?}"
            );
        }
        assert!(steps.iter().all(|s| s.at < 30 * MIN));
        // About 30 min / 10 s.
        assert!((150..=210).contains(&steps.len()), "{}", steps.len());
    }

    #[test]
    fn holds_are_bounded_and_only_where_they_mean_something() {
        let steps = schedule(
            5,
            SoakTopology::Replication,
            60 * MIN,
            Duration::from_secs(5),
        );
        for s in &steps {
            match s.kind {
                FaultKind::Freeze | FaultKind::Partition => {
                    assert!(s.hold >= Duration::from_secs(1) && s.hold <= Duration::from_secs(8));
                }
                FaultKind::KillOperator => {
                    assert!(s.hold <= Duration::from_secs(3));
                    assert!(s.then_kill_operator.is_none());
                }
                _ => assert_eq!(s.hold, Duration::ZERO),
            }
        }
        assert!(steps.iter().any(|s| s.then_kill_operator.is_some()));
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // The published first outputs of SplitMix64 seeded with 0.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn topologies_parse_in_any_case() {
        assert_eq!(SoakTopology::parse("cluster"), Some(SoakTopology::Cluster));
        assert_eq!(
            SoakTopology::parse("SENTINEL"),
            Some(SoakTopology::Sentinel)
        );
        assert_eq!(SoakTopology::parse("ring"), None);
    }
}
