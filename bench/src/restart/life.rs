//! The life of a 3-pod Replication cluster as its journal tells it, for
//! seeding: deterministic per cluster, built from the journal crate's
//! public event types. Pure: no I/O; only event ids and nothing else come
//! from the clock (timestamps follow a simulated one).

use std::collections::VecDeque;

use logbook_crds::ValkeyClusterSpec;
use logbook_journal::{
    Event, Intent, LinkStatus, NewEvent, PlannedIntent, PodPhase, Policy, Reachability, Reason,
    ReasonCode, ReplId, Role, SpecFingerprint, Timestamp,
};
use uuid::Uuid;

/// Data pods of every seeded cluster.
const PODS: usize = 3;

/// xorshift64*: a deterministic life per cluster without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// The life of a 3-pod Replication cluster as its journal tells it: a
/// bootstrap, then probe rounds (replication offsets, roles, reachability)
/// with now and then a replica restart, a failover, or a spec change
/// applied and rolled pod by pod. Decisions are journaled with their
/// outcomes, as the operator does, so a projection ends with nothing in
/// flight unless the stream stops mid-episode.
pub(crate) struct Life {
    rng: Rng,
    name: String,
    subnet: usize,
    clock_us: i64,
    pending: VecDeque<Event>,
    primary: usize,
    offset: u64,
    replid: ReplId,
    generation: i64,
    revision: u32,
    restarts: [u32; PODS],
    rounds: u64,
}

impl Life {
    pub(crate) fn new(index: usize, start_us: i64) -> Self {
        let mut life = Life {
            rng: Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64).wrapping_mul(0x1000_0001)),
            name: format!("cache-{index:03}"),
            subnet: index % 250,
            clock_us: start_us,
            pending: VecDeque::new(),
            primary: 0,
            offset: 0,
            replid: ReplId([0x11; 20]),
            generation: 0,
            revision: 0,
            restarts: [0; PODS],
            rounds: 0,
        };
        life.birth();
        life
    }

    /// A seeding batch size: 1..=`max`.
    pub(super) fn batch_size(&mut self, max: u64) -> u64 {
        self.rng.below(max).saturating_add(1)
    }

    /// The next event, stamped.
    pub(crate) fn next(&mut self) -> NewEvent {
        while self.pending.is_empty() {
            self.episode();
        }
        let body = self.pending.pop_front().unwrap_or(Event::ClusterDeleted);
        self.clock_us = self.clock_us.saturating_add(20_000);
        self.stamp(body)
    }

    pub(super) fn stamp(&self, body: Event) -> NewEvent {
        NewEvent {
            id: Uuid::now_v7(),
            at: Timestamp(self.clock_us),
            cause: None,
            body,
        }
    }

    fn pod(&self, i: usize) -> String {
        format!("{}-{i}", self.name)
    }

    fn ip(&self, i: usize) -> String {
        let restarts = self.restarts.get(i).copied().unwrap_or(0);
        format!("10.{}.{}.{}", self.subnet, i, restarts % 250)
    }

    fn spec(&self) -> (String, SpecFingerprint) {
        let policy = if self.generation % 2 == 0 {
            "allkeys-lru"
        } else {
            "noeviction"
        };
        let spec: Option<ValkeyClusterSpec> = serde_json::from_value(serde_json::json!({
            "topology": "Replication",
            "replicas": PODS,
            "failover": {"probeIntervalMilliseconds": 500, "failureThreshold": 3, "automatic": true},
            "storage": {"size": "5Gi", "persistence": "RdbAndAof"},
            "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
            "podDisruptionBudget": {"enabled": true, "maxUnavailable": 1},
            "metrics": {"enabled": true},
            "labels": {"team": "payments"},
            "config": {"maxmemory-policy": policy, "appendfsync": "everysec"},
        }))
        .ok();
        let json = spec
            .and_then(|s| serde_json::to_string(&s).ok())
            .unwrap_or_default();
        let fingerprint: SpecFingerprint = logbook::observe::fingerprint(&json);
        (json, fingerprint)
    }

    /// `Decided` for `intents`, then each one's `IntentSucceeded`.
    fn decided(&mut self, intents: Vec<(Intent, ReasonCode)>) {
        let planned: Vec<PlannedIntent> = intents
            .into_iter()
            .map(|(intent, code)| PlannedIntent {
                intent_id: Uuid::now_v7(),
                reason: Reason {
                    code,
                    detail: format!("{intent:?}"),
                },
                intent,
            })
            .collect();
        let done: Vec<Event> = planned
            .iter()
            .map(|p| Event::IntentSucceeded {
                intent_id: p.intent_id,
                detail: "done".to_owned(),
            })
            .collect();
        self.pending.push_back(Event::Decided { intents: planned });
        self.pending.extend(done);
    }

    fn observed_pod(&mut self, i: usize, phase: PodPhase, ready: bool) {
        let restarts = self.restarts.get(i).copied().unwrap_or(0);
        self.pending.push_back(Event::PodObserved {
            pod: self.pod(i),
            uid: format!("{:08x}-6b1d-4c55-9a43-{:012x}", self.subnet, restarts),
            ip: (phase == PodPhase::Running).then(|| self.ip(i)),
            phase,
            ready,
            node: Some(format!("node-{}", (self.subnet + i) % 5)),
            revision: Some(format!("{}-{:08x}", self.name, self.revision)),
        });
    }

    fn role(&mut self, i: usize) {
        let primary = (i != self.primary).then(|| self.pod(self.primary));
        self.pending.push_back(Event::NodeRoleObserved {
            pod: self.pod(i),
            role: if i == self.primary {
                Role::Primary
            } else {
                Role::Replica
            },
            primary,
        });
    }

    fn labels(&mut self) {
        let primary = Some(self.pod(self.primary));
        self.decided(vec![(
            Intent::SetRoleLabels { primary },
            ReasonCode::RoleLabelsStale,
        )]);
        for i in 0..PODS {
            let label = Some(if i == self.primary {
                Role::Primary
            } else {
                Role::Replica
            });
            self.pending.push_back(Event::RoleLabelObserved {
                pod: self.pod(i),
                label,
            });
        }
    }

    fn birth(&mut self) {
        self.pending.push_back(Event::PolicyRecorded {
            policy: Policy {
                probe_interval_ms: 500,
                ..Policy::default()
            },
        });
        self.spec_changed();
        for i in 0..PODS {
            self.observed_pod(i, PodPhase::Pending, false);
        }
        for i in 0..PODS {
            self.observed_pod(i, PodPhase::Running, false);
            self.pending.push_back(Event::PodReachabilityObserved {
                pod: self.pod(i),
                reachability: Reachability::Reachable,
            });
        }
        let (pod, ip) = (Some(self.pod(0)), Some(self.ip(0)));
        self.decided(vec![
            (
                Intent::PublishBootConfig { primary: pod, ip },
                ReasonCode::NoPrimary,
            ),
            (
                Intent::PromoteReplica {
                    pod: self.pod(0),
                    from: None,
                },
                ReasonCode::NoPrimary,
            ),
        ]);
        self.pending.push_back(Event::ReplicaPromoted {
            pod: self.pod(0),
            from: None,
            offset: 0,
        });
        for i in 0..PODS {
            self.role(i);
            self.observed_pod(i, PodPhase::Running, true);
        }
        self.labels();
    }

    /// A new generation of the spec, its objects applied and every pod
    /// rolled, replicas first, the primary after a switchover.
    fn spec_changed(&mut self) {
        self.generation = self.generation.saturating_add(1);
        self.revision = self.revision.saturating_add(1);
        let (spec_json, fingerprint) = self.spec();
        let generation = self.generation;
        self.pending.push_back(Event::SpecChanged {
            generation,
            spec_json,
            fingerprint,
        });
        self.decided(vec![(
            Intent::ApplyResources { generation },
            ReasonCode::SpecChanged { generation },
        )]);
        self.pending.push_back(Event::StatefulSetObserved {
            replicas: PODS as u32,
            update_revision: Some(format!("{}-{:08x}", self.name, self.revision)),
        });
        if generation == 1 {
            return;
        }
        let primary = self.primary;
        for i in (0..PODS).filter(|i| *i != primary) {
            self.decided(vec![(
                Intent::RollPod {
                    pod: self.pod(i),
                    revision: format!("{}-{:08x}", self.name, self.revision),
                },
                ReasonCode::RevisionOutdated,
            )]);
            self.restart(i);
        }
        let (from, to) = (self.primary, (self.primary + 1) % PODS);
        self.decided(vec![(
            Intent::Switchover {
                from: self.pod(from),
                to: self.pod(to),
            },
            ReasonCode::PrimaryOutdated,
        )]);
        self.promote(from, to);
        self.restart(from);
    }

    /// A replica's pod deleted and recreated: it resyncs and is labelled.
    fn restart(&mut self, i: usize) {
        self.pending
            .push_back(Event::PodTerminating { pod: self.pod(i) });
        if let Some(r) = self.restarts.get_mut(i) {
            *r = r.saturating_add(1);
        }
        self.observed_pod(i, PodPhase::Pending, false);
        self.observed_pod(i, PodPhase::Running, false);
        self.pending.push_back(Event::PodReachabilityObserved {
            pod: self.pod(i),
            reachability: Reachability::Refused,
        });
        self.pending.push_back(Event::PodReachabilityObserved {
            pod: self.pod(i),
            reachability: Reachability::Reachable,
        });
        self.role(i);
        for link in [LinkStatus::Syncing, LinkStatus::Up] {
            self.pending.push_back(Event::ReplicationObserved {
                pod: self.pod(i),
                link,
                offset: self.offset,
                replid: self.replid,
            });
        }
        self.observed_pod(i, PodPhase::Running, true);
        self.pending.push_back(Event::RoleLabelObserved {
            pod: self.pod(i),
            label: None,
        });
        self.labels();
    }

    /// `to` takes over from `from`: promoted, roles observed, relabelled.
    fn promote(&mut self, from: usize, to: usize) {
        self.pending.push_back(Event::ReplicaPromoted {
            pod: self.pod(to),
            from: Some(self.pod(from)),
            offset: self.offset,
        });
        self.primary = to;
        self.replid = ReplId([u8::try_from(self.rng.below(256)).unwrap_or(0); 20]);
        for i in 0..PODS {
            self.role(i);
        }
        self.labels();
    }

    /// The primary stops answering: probes time out, the replicas lose it,
    /// it is fenced and the next pod promoted; the old one comes back as a
    /// replica.
    fn failover(&mut self) {
        let old = self.primary;
        let new = (old + 1) % PODS;
        for _ in 0..3 {
            self.pending.push_back(Event::PodReachabilityObserved {
                pod: self.pod(old),
                reachability: Reachability::TimedOut,
            });
        }
        self.pending.push_back(Event::PrimaryUnreachable {
            pod: self.pod(old),
            consecutive_failures: 3,
        });
        for i in (0..PODS).filter(|i| *i != old) {
            self.pending.push_back(Event::ReplicationObserved {
                pod: self.pod(i),
                link: LinkStatus::Silent,
                offset: self.offset,
                replid: self.replid,
            });
        }
        let third = (old + 2) % PODS;
        self.decided(vec![
            (
                Intent::FenceNode { pod: self.pod(old) },
                ReasonCode::PrimaryDead,
            ),
            (
                Intent::PromoteReplica {
                    pod: self.pod(new),
                    from: Some(self.pod(old)),
                },
                ReasonCode::PrimaryDead,
            ),
            (
                Intent::PublishBootConfig {
                    primary: Some(self.pod(new)),
                    ip: Some(self.ip(new)),
                },
                ReasonCode::BootConfigStale,
            ),
            (
                Intent::RepointReplica {
                    pod: self.pod(third),
                    to: self.pod(new),
                },
                ReasonCode::ReplicaMisdirected,
            ),
        ]);
        self.promote(old, new);
        self.restart(old);
    }

    /// One probe of every pod: offsets always, roles and reachability on
    /// some rounds.
    fn probe_round(&mut self) {
        self.rounds = self.rounds.saturating_add(1);
        self.clock_us = self.clock_us.saturating_add(500_000);
        self.offset = self.offset.saturating_add(self.rng.below(65_536));
        for i in 0..PODS {
            let primary = i == self.primary;
            let lag = if primary { 0 } else { self.rng.below(512) };
            self.pending.push_back(Event::ReplicationObserved {
                pod: self.pod(i),
                link: if primary {
                    LinkStatus::NotReplica
                } else {
                    LinkStatus::Up
                },
                offset: self.offset.saturating_sub(lag),
                replid: self.replid,
            });
            if self.rounds.is_multiple_of(8) {
                self.role(i);
            }
            if self.rounds.is_multiple_of(4) {
                self.pending.push_back(Event::PodReachabilityObserved {
                    pod: self.pod(i),
                    reachability: Reachability::Reachable,
                });
            }
        }
    }

    fn episode(&mut self) {
        match self.rng.below(1_000) {
            0..3 => self.failover(),
            3..5 => self.spec_changed(),
            5..12 => {
                let replica = (self.primary + 1 + self.rng.below(2) as usize) % PODS;
                self.restart(replica);
            }
            _ => self.probe_round(),
        }
    }
}
