//! Test support: a Valkey Cluster's projection built by folding real
//! envelopes (a 3 × 1 cluster formed, then changed), for the tests of the
//! metrics and of `kubectl valkey status`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::cluster::even_split;
use logbook_journal::writer::{NewEvent, encode_batch};
use logbook_journal::{
    ClusterNodeReport, ClusterState, Envelope, Event, Head, Intent, LinkStatus, PlannedIntent,
    PodPhase, Reachability, Reason, ReasonCode, ReplId, Role, SlotRange, SpecFingerprint, StreamId,
    Timestamp,
};
use uuid::Uuid;

/// A projection and the envelopes folded into it, one second apart.
pub struct Fixture {
    pub state: ClusterState,
    pub envelopes: Vec<Envelope>,
    head: Head,
    n: u128,
}

/// Pod `i` of cluster `shop`.
pub fn pod(i: u32) -> String {
    format!("shop-{i}")
}

/// The node id of pod `i`'s node, generation `g`.
pub fn node(i: u32, g: u32) -> String {
    format!("{g:08x}{i:032x}")
}

impl Fixture {
    /// Only a Replication spec (no Cluster part).
    pub fn replication() -> Self {
        let mut f = Self {
            state: ClusterState::new(),
            envelopes: Vec::new(),
            head: Head::EMPTY,
            n: 0,
        };
        let spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        f.spec(&spec);
        f
    }

    /// A 3 × 1 Cluster spec, six pods running and answering, no report.
    pub fn cluster() -> Self {
        let mut f = Self::replication();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
        spec.shards = Some(3);
        spec.replicas_per_shard = Some(1);
        f.spec(&spec);
        for i in 0..6 {
            f.event(Event::PodObserved {
                pod: pod(i),
                uid: format!("uid-{i}"),
                ip: Some(format!("10.0.0.{i}")),
                phase: PodPhase::Running,
                ready: true,
                node: None,
                revision: Some("r1".into()),
            });
            f.reach(i, Reachability::Reachable);
        }
        f
    }

    /// [`Fixture::cluster`] formed: shop-0..2 primaries of the even split
    /// (`0-5461`, `5462-10922`, `10923-16383`), shop-3..5 their replicas
    /// (shop-3 of shop-0, ...), every link up.
    pub fn formed() -> Self {
        let mut f = Self::cluster();
        let split = even_split(3);
        for (i, range) in (0..3).zip(split) {
            f.primary(i, 0, vec![range], u64::from(i) + 1);
        }
        for i in 3..6 {
            f.replica(i, i - 3);
        }
        f
    }

    /// Folds `body` at the next second.
    pub fn event(&mut self, body: Event) -> &mut Self {
        self.n += 1;
        let stream = StreamId::new("test").unwrap();
        let at = Timestamp(i64::try_from(self.n).unwrap() * 1_000_000);
        let (envelopes, _) = encode_batch(
            &stream,
            self.head,
            1,
            vec![NewEvent {
                id: Uuid::from_u128(self.n),
                at,
                cause: None,
                body,
            }],
        )
        .unwrap();
        for e in envelopes {
            self.state.apply(&e);
            self.head = Head {
                seq: e.seq,
                hash: e.hash,
            };
            self.envelopes.push(e);
        }
        self
    }

    fn spec(&mut self, spec: &ValkeyClusterSpec) -> &mut Self {
        let spec_json = serde_json::to_string(spec).unwrap();
        self.event(Event::SpecChanged {
            generation: 1,
            spec_json,
            fingerprint: SpecFingerprint([0; 32]),
        })
    }

    /// Pod `i`'s probe answered with `r`.
    pub fn reach(&mut self, i: u32, r: Reachability) -> &mut Self {
        self.event(Event::PodReachabilityObserved {
            pod: pod(i),
            reachability: r,
        })
    }

    /// Pod `i`'s node (generation `g`) reports itself primary of `slots`
    /// at config epoch `epoch`, cluster_state ok.
    pub fn primary(&mut self, i: u32, g: u32, slots: Vec<SlotRange>, epoch: u64) -> &mut Self {
        self.report(i, g, None, slots, epoch);
        self.event(Event::NodeRoleObserved {
            pod: pod(i),
            role: Role::Primary,
            primary: None,
        });
        self.event(Event::ReplicationObserved {
            pod: pod(i),
            link: LinkStatus::NotReplica,
            offset: 1000,
            replid: ReplId([7; 20]),
        })
    }

    /// Pod `i`'s node reports itself a replica of pod `of`'s, link up,
    /// 100 bytes behind.
    pub fn replica(&mut self, i: u32, of: u32) -> &mut Self {
        self.report(i, 0, Some(node(of, 0)), Vec::new(), 0);
        self.event(Event::NodeRoleObserved {
            pod: pod(i),
            role: Role::Replica,
            primary: Some(pod(of)),
        });
        self.link(i, LinkStatus::Up)
    }

    /// Pod `i`'s replication link is `link`.
    pub fn link(&mut self, i: u32, link: LinkStatus) -> &mut Self {
        self.event(Event::ReplicationObserved {
            pod: pod(i),
            link,
            offset: 900,
            replid: ReplId([7; 20]),
        })
    }

    fn report(
        &mut self,
        i: u32,
        g: u32,
        primary_id: Option<String>,
        slots: Vec<SlotRange>,
        epoch: u64,
    ) -> &mut Self {
        self.event(Event::ClusterNodeObserved {
            pod: pod(i),
            report: ClusterNodeReport {
                node_id: node(i, g),
                primary_id,
                slots,
                config_epoch: epoch,
                current_epoch: 6,
                state_ok: true,
                peers: Vec::new(),
            },
        })
    }

    /// `intent` decided for `code` with id `id`.
    pub fn decided(&mut self, id: Uuid, intent: Intent, code: ReasonCode) -> &mut Self {
        self.event(Event::Decided {
            intents: vec![PlannedIntent {
                intent_id: id,
                intent,
                reason: Reason {
                    code,
                    detail: String::new(),
                },
            }],
        })
    }
}
