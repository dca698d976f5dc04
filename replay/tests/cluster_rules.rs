//! Valkey Cluster journals written for the purpose: shard failovers
//! (the operator's and Valkey's own election), the Cluster invariants
//! (each broken once gives its finding at its seq; a healthy cluster
//! gives none), and the same on a real cluster's journal
//! (`golden/cluster_failover.jsonl`, from `tests/operator_cluster.rs`:
//! a 3x1 cluster formed, a primary's pod deleted, its shard handed over).
//!
//! The decider is a stand-in that asks for nothing, so a journal with a
//! decision has determinism findings; they are told apart by check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use logbook_journal::writer::encode_batch;
use logbook_journal::{
    Candidate, ClusterFailoverMode, ClusterNodeReport, ClusterPeer, ClusterState, Event, Head,
    Intent, JournalStore, MemoryStore, NewEvent, PeerHealth, PlannedIntent, PodPhase, Policy,
    Reachability, Reason, ReasonCode, SlotRange, SpecFingerprint, StreamId, Timestamp,
};
use logbook_replay::audit::{AuditReport, Check, audit};
use logbook_replay::failovers::Failovers;
use logbook_replay::shard_failovers::{DecidedBy, Mode, ShardFailover};
use logbook_replay::{Decider, Input};
use uuid::Uuid;

struct Nothing;

impl Decider for Nothing {
    fn decide(&self, _: &ClusterState, _: Timestamp, _: &Policy) -> Vec<(Intent, Reason)> {
        Vec::new()
    }
    fn build(&self) -> String {
        "nothing".to_owned()
    }
    fn already_done(&self, _: &ClusterState, _: &Intent) -> Option<String> {
        None
    }
}

/// One node as the model of the cluster holds it.
#[derive(Clone)]
struct Node {
    id: String,
    primary: Option<String>,
    slots: Vec<SlotRange>,
    epoch: u64,
}

/// A cluster journal under construction, with a model of the nodes from
/// which every report (and its peer table) is made, so reports agree.
struct Journal {
    events: Vec<Event>,
    nodes: BTreeMap<String, Node>,
    /// Peer flags every report gives: node id -> health.
    flags: BTreeMap<String, PeerHealth>,
}

fn id(c: char) -> String {
    c.to_string().repeat(40)
}

fn range(start: u16, end: u16) -> Vec<SlotRange> {
    vec![SlotRange { start, end }]
}

impl Journal {
    /// Two shards formed: c-0 (node a, slots 0-8191) with replica c-2
    /// (node c), c-1 (node b, 8192-16383) with replica c-3 (node d).
    fn formed() -> Self {
        let mut j = Self {
            events: Vec::new(),
            nodes: BTreeMap::new(),
            flags: BTreeMap::new(),
        };
        j.push(Event::SpecChanged {
            generation: 1,
            spec_json: r#"{"topology":"Cluster","shards":2,"replicasPerShard":1}"#.to_owned(),
            fingerprint: SpecFingerprint([1; 32]),
        });
        for pod in ["c-0", "c-1", "c-2", "c-3"] {
            j.push(Event::PodObserved {
                pod: pod.to_owned(),
                uid: format!("uid-{pod}"),
                ip: Some("10.0.0.1".to_owned()),
                phase: PodPhase::Running,
                ready: true,
                node: None,
                revision: None,
            });
        }
        j.set("c-0", 'a', None, range(0, 8191), 1);
        j.set("c-1", 'b', None, range(8192, 16_383), 2);
        j.set("c-2", 'c', Some('a'), Vec::new(), 1);
        j.set("c-3", 'd', Some('b'), Vec::new(), 2);
        for pod in ["c-0", "c-1", "c-2", "c-3"] {
            j.report(pod);
        }
        j
    }

    /// A new spec generation that allows a takeover on quorum loss.
    fn allow_takeover(&mut self) -> u64 {
        self.push(Event::SpecChanged {
            generation: 2,
            spec_json: r#"{"topology":"Cluster","shards":2,"replicasPerShard":1,"failover":{"takeoverOnQuorumLoss":true}}"#.to_owned(),
            fingerprint: SpecFingerprint([2; 32]),
        })
    }

    fn set(
        &mut self,
        pod: &str,
        node: char,
        primary: Option<char>,
        slots: Vec<SlotRange>,
        epoch: u64,
    ) {
        self.nodes.insert(
            pod.to_owned(),
            Node {
                id: id(node),
                primary: primary.map(id),
                slots,
                epoch,
            },
        );
    }

    fn push(&mut self, body: Event) -> u64 {
        self.events.push(body);
        self.events.len() as u64
    }

    /// `pod`'s report as the model has it.
    fn report(&mut self, pod: &str) -> u64 {
        let me = self.nodes[pod].clone();
        let mut peers: Vec<ClusterPeer> = self
            .nodes
            .values()
            .filter(|n| n.id != me.id)
            .map(|n| ClusterPeer {
                node_id: n.id.clone(),
                ip: Some("10.0.0.1".to_owned()),
                primary: n.primary.is_none(),
                primary_id: n.primary.clone(),
                health: self.flags.get(&n.id).copied().unwrap_or(PeerHealth::Ok),
            })
            .collect();
        peers.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        self.push(Event::ClusterNodeObserved {
            pod: pod.to_owned(),
            report: ClusterNodeReport {
                node_id: me.id,
                primary_id: me.primary,
                slots: me.slots,
                config_epoch: me.epoch,
                current_epoch: 5,
                state_ok: true,
                peers,
            },
        })
    }

    fn probe(&mut self, pod: &str, reachability: Reachability) -> u64 {
        self.push(Event::PodReachabilityObserved {
            pod: pod.to_owned(),
            reachability,
        })
    }

    fn failover(
        &mut self,
        pod: &str,
        from: &str,
        mode: ClusterFailoverMode,
        code: ReasonCode,
    ) -> (u64, Uuid) {
        let intent_id = Uuid::now_v7();
        let seq = self.push(Event::Decided {
            intents: vec![PlannedIntent {
                intent_id,
                intent: Intent::ClusterFailover {
                    pod: pod.to_owned(),
                    from: Some(from.to_owned()),
                    mode,
                },
                reason: Reason {
                    code,
                    detail: "test".to_owned(),
                },
            }],
        });
        (seq, intent_id)
    }

    fn succeeded(&mut self, intent_id: Uuid) -> u64 {
        self.push(Event::IntentSucceeded {
            intent_id,
            detail: "done".to_owned(),
        })
    }

    async fn input(&self) -> Input<MemoryStore> {
        let store = MemoryStore::new();
        let stream = StreamId::new("s").unwrap();
        let mut head = Head::EMPTY;
        for (i, body) in self.events.iter().enumerate() {
            let event = NewEvent {
                id: Uuid::now_v7(),
                at: Timestamp(1_700_000_000_000_000 + i as i64 * 1000),
                cause: None,
                body: body.clone(),
            };
            let (_, encoded) = encode_batch(&stream, head, 1, vec![event]).unwrap();
            head = store
                .append(&stream, head.next_seq(), &encoded)
                .await
                .unwrap();
        }
        Input::Store {
            store,
            stream,
            cluster: None,
            place: "test".to_owned(),
        }
    }

    async fn audit(&self) -> AuditReport {
        audit(&self.input().await, &Nothing).await.unwrap()
    }

    async fn shard_failovers(&self) -> Vec<ShardFailover> {
        let mut failovers = Failovers::new();
        self.input().await.scan(None, &mut failovers).await.unwrap();
        assert!(failovers.records.is_empty(), "{:#?}", failovers.records);
        failovers.shards.records
    }
}

fn died(death: bool) -> ReasonCode {
    ReasonCode::PrimaryFailed {
        death,
        consecutive_failures: 2,
        candidates: vec![Candidate {
            pod: "c-2".to_owned(),
            offset: Some(100),
            reachable: true,
            same_history: true,
            eligible: true,
        }],
    }
}

/// The findings of `check`, as (seq, detail).
fn only(report: &AuditReport, check: Check) -> Vec<(u64, String)> {
    report
        .findings
        .iter()
        .filter(|f| f.check == check)
        .map(|f| (f.seq, f.detail.clone()))
        .collect()
}

/// No finding but the stand-in decider's.
fn clean_but_determinism(report: &AuditReport) {
    let other: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.check != Check::Determinism)
        .collect();
    assert!(other.is_empty(), "{other:#?}");
}

fn examined(report: &AuditReport, check: Check) -> u64 {
    report
        .checks
        .iter()
        .find(|c| c.check == check.name())
        .unwrap()
        .examined
}

/// c-0 (node a) dies; Valkey elects c-2 (node c) at config epoch 6.
fn valkey_election(j: &mut Journal) -> (u64, u64) {
    let refused = j.probe("c-0", Reachability::Refused);
    j.flags.insert(id('a'), PeerHealth::Failed);
    j.report("c-2");
    j.set("c-2", 'c', None, range(0, 8191), 6);
    let served = j.report("c-2");
    (refused, served)
}

#[test]
fn a_healthy_cluster_audits_clean_at_its_quiet_points() {
    futures::executor::block_on(async {
        let j = Journal::formed();
        let report = j.audit().await;
        assert!(report.is_clean(), "{report:#?}");
        // Quiet once the last report agreed with the others.
        assert!(examined(&report, Check::SlotOwnership) >= 1, "{report:#?}");
        assert!(j.shard_failovers().await.is_empty());
    });
}

#[test]
fn valkey_s_own_election_is_a_shard_failover_decided_by_valkey() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        let (refused, served) = valkey_election(&mut j);
        let records = j.shard_failovers().await;
        let [r] = records.as_slice() else {
            panic!("{records:#?}")
        };
        assert_eq!(r.decided_by, DecidedBy::Valkey);
        assert_eq!(r.mode, Mode::Election);
        assert_eq!(r.slots, range(0, 8191));
        assert_eq!(r.old_primary.pod.as_deref(), Some("c-0"));
        assert_eq!(r.old_primary.node_id, Some(id('a')));
        assert_eq!(r.new_primary.pod.as_deref(), Some("c-2"));
        assert_eq!(r.config_epoch, Some(6));
        assert_eq!(r.old_config_epoch, Some(1));
        assert_eq!(r.detected.as_ref().map(|d| d.seq), Some(refused));
        assert_eq!(r.serving.as_ref().map(|s| s.seq), Some(served));
        assert_eq!(
            r.detection_to_serving_ms,
            Some(i64::try_from(served - refused).unwrap())
        );
        // No offset was journaled: no bound.
        assert_eq!(r.lost_bytes_bound, None);
        let mut text = Vec::new();
        logbook_replay::shard_failovers::write_text(&mut text, &records).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("Valkey (Valkey's own election)"), "{text}");
        assert!(text.contains("[probe-refused]"), "{text}");
        assert!(text.contains("lost writes bound:  unknown"), "{text}");
        // The audit: clean, the election is Valkey's business.
        let report = j.audit().await;
        assert!(report.is_clean(), "{report:#?}");
    });
}

#[test]
fn a_forced_failover_after_a_death_is_recorded_and_justified() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.push(Event::ReplicationObserved {
            pod: "c-0".to_owned(),
            link: logbook_journal::LinkStatus::NotReplica,
            offset: 150,
            replid: logbook_journal::ReplId([7; 20]),
        });
        let refused = j.probe("c-0", Reachability::Refused);
        let (decided, intent) = j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(true));
        j.set("c-2", 'c', None, range(0, 8191), 6);
        let served = j.report("c-2");
        j.push(Event::ReplicaPromoted {
            pod: "c-2".to_owned(),
            from: Some("c-0".to_owned()),
            offset: 120,
        });
        j.succeeded(intent);
        let records = j.shard_failovers().await;
        let [r] = records.as_slice() else {
            panic!("{records:#?}")
        };
        assert_eq!(r.decided_by, DecidedBy::Operator);
        assert_eq!(r.mode, Mode::Force);
        assert_eq!(r.decided.as_ref().map(|d| d.seq), Some(decided));
        assert_eq!(r.detected.as_ref().map(|d| d.seq), Some(refused));
        assert_eq!(r.serving.as_ref().map(|s| s.seq), Some(served));
        assert_eq!(r.candidates.len(), 1);
        assert_eq!(r.candidates[0].offset, Some(100));
        assert_eq!(r.old_offset, Some(150));
        assert_eq!(r.new_offset, Some(120));
        assert_eq!(r.lost_bytes_bound, Some(30));
        assert!(
            matches!(
                r.outcome,
                Some(logbook_replay::failovers::Outcome::Completed)
            ),
            "{r:#?}"
        );
        let report = j.audit().await;
        clean_but_determinism(&report);
        assert_eq!(examined(&report, Check::UnjustifiedFailover), 1);
    });
}

#[test]
fn a_forced_failover_without_a_journaled_death_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        // A timeout is no death.
        j.probe("c-0", Reachability::TimedOut);
        let (decided, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(true));
        let report = j.audit().await;
        let found = only(&report, Check::UnjustifiedFailover);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, decided);
        assert!(
            found[0].1.contains("no earlier journaled sign"),
            "{}",
            found[0].1
        );
        assert!(only(&report, Check::WipedNodePromoted).is_empty());
    });
}

#[test]
fn a_forced_failover_for_slowness_or_a_takeover_without_quorum_lost_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.probe("c-0", Reachability::Refused);
        let (slow, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(false));
        let (takeover, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Takeover, died(true));
        let report = j.audit().await;
        let found = only(&report, Check::UnjustifiedFailover);
        assert_eq!(
            found.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![slow, takeover],
            "{report:#?}"
        );
        assert!(
            found[1]
                .1
                .contains("only that, or QuorumLost, justifies a takeover"),
            "{}",
            found[1].1
        );
        // A takeover for a lost quorum is justified: the spec allowed it
        // and one of two primaries is silent (an election needs both).
        let quorum_lost = || ReasonCode::QuorumLost {
            primaries_lost: 1,
            shards: 2,
            candidates: Vec::new(),
        };
        let mut j = Journal::formed();
        j.allow_takeover();
        j.probe("c-0", Reachability::Refused);
        j.failover("c-2", "c-0", ClusterFailoverMode::Takeover, quorum_lost());
        clean_but_determinism(&j.audit().await);
    });
}

#[test]
fn a_takeover_the_spec_did_not_allow_or_with_a_quorum_left_is_a_finding() {
    futures::executor::block_on(async {
        let quorum_lost = || ReasonCode::QuorumLost {
            primaries_lost: 1,
            shards: 2,
            candidates: Vec::new(),
        };
        // Not allowed by the spec in force.
        let mut j = Journal::formed();
        j.probe("c-0", Reachability::Refused);
        let (decided, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Takeover, quorum_lost());
        let report = j.audit().await;
        let found = only(&report, Check::UnjustifiedFailover);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![decided]);
        assert!(
            found[0]
                .1
                .contains("did not set failover.takeoverOnQuorumLoss"),
            "{}",
            found[0].1
        );
        // Allowed, but both primaries answer: an election could win.
        let mut j = Journal::formed();
        j.allow_takeover();
        for pod in ["c-0", "c-1"] {
            j.probe(pod, Reachability::Reachable);
            j.push(Event::NodeRoleObserved {
                pod: pod.to_owned(),
                role: logbook_journal::Role::Primary,
                primary: None,
            });
        }
        let (decided, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Takeover, quorum_lost());
        let report = j.audit().await;
        let found = only(&report, Check::UnjustifiedFailover);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![decided]);
        assert!(
            found[0].1.contains("2 of 2 shard primaries answering"),
            "{}",
            found[0].1
        );
    });
}

#[test]
fn a_takeover_of_a_primary_back_as_another_node_is_justified() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        // c-0 lost its volume: back as node e, holding nothing; its
        // replica c-2 still follows node a.
        j.set("c-0", 'e', None, Vec::new(), 0);
        j.report("c-0");
        j.failover("c-2", "c-0", ClusterFailoverMode::Takeover, died(true));
        let report = j.audit().await;
        assert!(
            only(&report, Check::UnjustifiedFailover).is_empty(),
            "{report:#?}"
        );
        assert!(only(&report, Check::WipedNodePromoted).is_empty());
    });
}

#[test]
fn a_forced_failover_to_a_node_that_never_replicated_the_shard_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.probe("c-0", Reachability::Refused);
        // c-2 lost its volume: it comes back as node e, attached to the
        // shard but never having reported following it before.
        j.set("c-2", 'e', None, Vec::new(), 0);
        j.report("c-2");
        let (decided, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(true));
        let report = j.audit().await;
        let found = only(&report, Check::WipedNodePromoted);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, decided);
        assert!(found[0].1.contains("eeeeeeee"), "{}", found[0].1);
        assert!(only(&report, Check::UnjustifiedFailover).is_empty());
    });
}

#[test]
fn a_slot_left_unowned_after_formation_is_a_finding_at_the_quiet_point() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.set("c-1", 'b', None, range(8300, 16_383), 2);
        let dropped = j.report("c-1");
        for pod in ["c-0", "c-2", "c-3"] {
            j.report(pod);
        }
        let report = j.audit().await;
        let found = only(&report, Check::SlotOwnership);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert!(found[0].0 >= dropped, "{found:?}");
        assert!(found[0].1.contains("8192-8299"), "{}", found[0].1);
    });
}

#[test]
fn two_primaries_claiming_a_slot_at_one_epoch_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.set("c-1", 'b', None, range(8000, 16_383), 1);
        for pod in ["c-1", "c-0", "c-2", "c-3"] {
            j.report(pod);
        }
        let report = j.audit().await;
        let found = only(&report, Check::SlotOwnership);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert!(found[0].1.contains("at config epoch 1"), "{}", found[0].1);
        // Mid-failover (a peer flagged), the same claims are not judged.
        let mut j = Journal::formed();
        j.flags.insert(id('a'), PeerHealth::Suspected);
        j.set("c-1", 'b', None, range(8000, 16_383), 1);
        for pod in ["c-1", "c-0", "c-2", "c-3"] {
            j.report(pod);
        }
        assert!(only(&j.audit().await, Check::SlotOwnership).is_empty());
    });
}

#[test]
fn the_real_cluster_journal_shows_its_coordinated_failover() {
    futures::executor::block_on(async {
        let input = Input::<MemoryStore>::File(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/golden/cluster_failover.jsonl"
            )
            .into(),
        );
        let mut failovers = Failovers::new();
        input.scan(None, &mut failovers).await.unwrap();
        assert!(failovers.records.is_empty());
        let [r] = failovers.shards.records.as_slice() else {
            panic!("{:#?}", failovers.shards.records)
        };
        assert_eq!(r.decided_by, DecidedBy::Operator);
        assert_eq!(r.mode, Mode::Coordinated);
        assert_eq!(r.old_primary.pod.as_deref(), Some("shop-1"));
        assert_eq!(r.new_primary.pod.as_deref(), Some("shop-4"));
        assert_eq!(r.slots, range(5462, 10_922));
        assert_eq!(r.decided.as_ref().map(|d| d.seq), Some(109));
        let detected = r.detected.as_ref().unwrap();
        assert_eq!(detected.seq, 108);
        assert_eq!(
            serde_json::to_value(detected.kind).unwrap(),
            "pod-terminating"
        );
        assert_eq!(r.serving.as_ref().map(|s| s.seq), Some(110));
        assert_eq!(r.config_epoch, Some(6));
        assert_eq!(r.old_config_epoch, Some(2));
        assert_eq!(r.new_offset, Some(2225));
        assert!(
            matches!(
                r.outcome,
                Some(logbook_replay::failovers::Outcome::Completed)
            ),
            "{r:#?}"
        );
        // The invariants hold (the operator's own decider is run on it in
        // tests/replay_golden.rs).
        let report = audit(&input, &Nothing).await.unwrap();
        clean_but_determinism(&report);
        assert!(examined(&report, Check::SlotOwnership) >= 1, "{report:#?}");
    });
}

#[test]
fn state_at_shows_roles_and_the_slot_map() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        let before = j.events.len() as u64;
        valkey_election(&mut j);
        let input = j.input().await;
        let (state, start) = logbook_replay::state_at::state_at(
            &input,
            logbook_replay::state_at::Point::Seq(before),
        )
        .await
        .unwrap();
        let view = logbook_replay::state_at::cluster_view(&state);
        assert!(view.formed);
        assert_eq!(view.unowned_slots, 0);
        let owners: Vec<_> = view
            .slots
            .iter()
            .map(|s| (s.slots.as_str(), s.pod.as_deref()))
            .collect();
        assert_eq!(
            owners,
            vec![("0-8191", Some("c-0")), ("8192-16383", Some("c-1"))]
        );
        let c2 = view.pods.iter().find(|p| p.pod == "c-2").unwrap();
        assert_eq!((c2.role, c2.of.as_deref()), ("replica", Some("c-0")));
        // After the election c-2 owns c-0's slots.
        let (state, _) = logbook_replay::state_at::state_at(
            &input,
            logbook_replay::state_at::Point::Seq(j.events.len() as u64),
        )
        .await
        .unwrap();
        let view = logbook_replay::state_at::cluster_view(&state);
        assert_eq!(view.slots[0].pod.as_deref(), Some("c-2"));
        let mut yaml = Vec::new();
        logbook_replay::state_at::write_yaml(&mut yaml, &state, &start).unwrap();
        let yaml = String::from_utf8(yaml).unwrap();
        assert!(yaml.contains("valkey_cluster:\n  formed: true"), "{yaml}");
        // Still one YAML document.
        let _: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    });
}

#[test]
fn the_html_report_names_the_cluster_from_its_pods_and_lists_shard_failovers() {
    futures::executor::block_on(async {
        // A JSONL export of a sled journal names no cluster, as the sled
        // directory does not.
        let input = Input::<MemoryStore>::File(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/golden/cluster_failover.jsonl"
            )
            .into(),
        );
        let mut html = Vec::new();
        logbook_replay::export::html::export(&input, &Nothing, &mut html)
            .await
            .unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(
            html.contains("<title>Logbook report: shop</title>"),
            "title"
        );
        assert!(
            html.contains("<dt>Cluster</dt><dd>shop <span class=\"what\">(from its pods' names"),
            "cluster fact"
        );
        assert!(!html.contains("<dd>unknown</dd>"));
        assert!(html.contains("Shard failovers <span class=\"count\">1</span>"));
        assert!(html.contains("operator, coordinated: <a href=\"#decision-109\">"));
        assert!(html.contains("<b>shop-1</b> <code>d5890238</code>"));
        // And on the chart: a line where shop-4 first claimed the slots,
        // labelled with them, linked to the row.
        assert!(html.contains(
            "<a href=\"#failover-1\" class=\"marker-link\"><g class=\"marker-shard kind-operator\" id=\"marker-shard-failover-1\">"
        ));
        let marker = element(&html, "id=\"marker-shard-failover-1\"", "</g>");
        assert!(
            marker.contains(">slots 5462-10922<tspan class=\"to\"> → shop-4</tspan>"),
            "{marker}"
        );
        assert!(
            marker.contains("<title>shard failover 1: slots 5462-10922 (5461 slots): shop-1 (d5890238) → shop-4 ("),
            "{marker}"
        );
        assert!(
            marker.contains("decided by the operator, coordinated (#109 PrimaryFailed, "),
            "{marker}"
        );
        assert!(marker.contains("; serving at #110 ("), "{marker}");
    });
}

/// The page's text of the element that opens at `open`, up to `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the page"));
    let len = html[start..]
        .find(close)
        .unwrap_or_else(|| panic!("{open} is not closed by {close}"));
    &html[start..start + len]
}

#[test]
fn the_chart_marks_each_shard_failover_by_who_decided_it() {
    futures::executor::block_on(async {
        // Shard 0 by Valkey's election (c-0 → c-2), then shard 1 by the
        // operator (c-1 → c-3, forced after c-1 refused).
        let mut j = Journal::formed();
        let (_, election_served) = valkey_election(&mut j);
        j.probe("c-1", Reachability::Refused);
        let (decided, intent) = j.failover("c-3", "c-1", ClusterFailoverMode::Force, died(true));
        j.set("c-3", 'd', None, range(8192, 16_383), 7);
        let forced_served = j.report("c-3");
        j.succeeded(intent);
        let mut html = Vec::new();
        logbook_replay::export::html::export(&j.input().await, &Nothing, &mut html)
            .await
            .unwrap();
        let html = String::from_utf8(html).unwrap();
        // Kept to be looked at (a browser shows the two kinds of line).
        std::fs::write(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shard_failover_markers.html"),
            &html,
        )
        .unwrap();

        // Two lines in the shard colour, neither a Replication failover's.
        assert_eq!(html.matches("<g class=\"marker-shard ").count(), 2);
        assert_eq!(html.matches("class=\"marker-failover ").count(), 0);
        let election = element(&html, "id=\"marker-shard-failover-1\"", "</g>");
        assert!(
            html.contains(
                "<a href=\"#failover-1\" class=\"marker-link\"><g class=\"marker-shard kind-election\" id=\"marker-shard-failover-1\">"
            ),
            "{election}"
        );
        assert!(
            election.contains(">slots 0-8191<tspan class=\"to\"> → c-2</tspan>"),
            "{election}"
        );
        assert!(
            election.contains(&format!(
                "<title>shard failover 1: slots 0-8191 (8192 slots): c-0 (aaaaaaaa) → c-2 (cccccccc); decided by Valkey&#39;s election, seen in the node reports; serving at #{election_served} ("
            )),
            "{election}"
        );
        let forced = element(&html, "id=\"marker-shard-failover-2\"", "</g>");
        assert!(
            html.contains(
                "<a href=\"#failover-2\" class=\"marker-link\"><g class=\"marker-shard kind-operator\" id=\"marker-shard-failover-2\">"
            ),
            "{forced}"
        );
        assert!(
            forced.contains(">slots 8192-16383<tspan class=\"to\"> → c-3</tspan>"),
            "{forced}"
        );
        assert!(
            forced.contains(&format!(
                "c-1 (bbbbbbbb) → c-3 (dddddddd); decided by the operator, forced (FORCE) (#{decided} PrimaryFailed, "
            )),
            "{forced}"
        );
        assert!(
            forced.contains(&format!("serving at #{forced_served} (")),
            "{forced}"
        );
        // Each links to its row of the table.
        for n in [1, 2] {
            assert!(
                html.contains(&format!("<tr id=\"failover-{n}\"")),
                "row {n}"
            );
        }
        // The legend tells the two apart; the operator's decision is drawn
        // as one that moves a primary (and questioned: the stand-in
        // decider decides nothing).
        let legend = element(&html, "id=\"legend\"", "</div>");
        assert!(
            legend.contains(
                "<i class=\"rule shard kind-operator\"></i>shard failover, the operator's"
            ),
            "{legend}"
        );
        assert!(
            legend.contains("<i class=\"rule shard kind-election\"></i>"),
            "{legend}"
        );
        assert!(
            html.contains(&format!(
                "class=\"marker-decision changes-primary questioned\" data-seq=\"{decided}\""
            )),
            "the FORCE decision is not marked as moving a primary"
        );
    });
}

/// A hung primary: every probe of `c-0` unanswered from the first one's
/// send for the policy's whole span (probes every 100 ms: 1.2 s), its
/// replica `c-2` with the given link.
fn hung(link: logbook_journal::LinkStatus) -> Journal {
    let mut j = Journal::formed();
    j.push(Event::PolicyRecorded {
        policy: Policy {
            probe_interval_ms: 100,
            failure_threshold: 3,
            features: BTreeMap::new(),
        },
    });
    j.push(Event::NodeRoleObserved {
        pod: "c-2".to_owned(),
        role: logbook_journal::Role::Replica,
        primary: Some("c-0".to_owned()),
    });
    j.probe("c-2", Reachability::Reachable);
    j.push(Event::ReplicationObserved {
        pod: "c-2".to_owned(),
        link,
        offset: 100,
        replid: logbook_journal::ReplId::from_hex(&"7".repeat(40)).unwrap(),
    });
    // Events come 1 ms apart: 1,100 ms of failures, plus the first
    // probe's 100 ms wait before it was recorded.
    for _ in 0..=1_100 {
        j.probe("c-0", Reachability::TimedOut);
    }
    j
}

#[test]
fn a_forced_failover_of_a_hung_primary_no_replica_hears_is_justified() {
    futures::executor::block_on(async {
        let mut j = hung(logbook_journal::LinkStatus::Silent);
        j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(false));
        let report = j.audit().await;
        assert!(
            only(&report, Check::UnjustifiedFailover).is_empty(),
            "{report:#?}"
        );
        // Its replica still hearing from it: a slow command, not a hang.
        let mut j = hung(logbook_journal::LinkStatus::Up);
        let (decided, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(false));
        let report = j.audit().await;
        let found = only(&report, Check::UnjustifiedFailover);
        assert_eq!(found.first().map(|f| f.0), Some(decided), "{report:#?}");
        assert!(found[0].1.contains("not silent"), "{}", found[0].1);
        // Its replica's link reset (a primary killed and restarted in
        // place, not hung): no forced failover is justified by it.
        let mut j = hung(logbook_journal::LinkStatus::Down);
        let (decided, _) = j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(false));
        let report = j.audit().await;
        let found = only(&report, Check::UnjustifiedFailover);
        assert_eq!(found.first().map(|f| f.0), Some(decided), "{report:#?}");
        // Unanswered for less than the span: no hang either.
        let mut j = Journal::formed();
        j.push(Event::NodeRoleObserved {
            pod: "c-2".to_owned(),
            role: logbook_journal::Role::Replica,
            primary: Some("c-0".to_owned()),
        });
        j.probe("c-0", Reachability::TimedOut);
        j.probe("c-0", Reachability::TimedOut);
        j.failover("c-2", "c-0", ClusterFailoverMode::Force, died(false));
        let found = only(&j.audit().await, Check::UnjustifiedFailover);
        assert!(
            found[0].1.contains("not journaled timing out"),
            "{}",
            found[0].1
        );
    });
}
