//! Given a projection, when a cluster node answers, then exactly these
//! events: the history a restarted primary's replicas hold is kept
//! until one of them takes another.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use logbook_journal::{ClusterNodeReport, Event, LinkStatus, ReplId, Role, SlotRange};

use super::{ClusterAnswer, observe_history_reset};
use crate::decide::given::Given;
use crate::replies::ReplicationInfo;

/// demo-1 runs primary node `1…` (slots 0-8191), demo-4 runs node `4…`
/// replicating it; both on history 7 up to 5000.
fn shard() -> Given {
    let mut g = Given::new();
    for (i, primary_id, slots) in [
        (
            1,
            None,
            vec![SlotRange {
                start: 0,
                end: 8191,
            }],
        ),
        (4, Some(node(1)), Vec::new()),
    ] {
        g.pod(i, "r1");
        g.event(Event::ClusterNodeObserved {
            pod: format!("demo-{i}"),
            report: report(i, primary_id, slots),
        });
    }
    g.role(1, Role::Primary, None)
        .role(4, Role::Replica, Some(1));
    g.repl(1, LinkStatus::NotReplica, 5_000, 7)
        .repl(4, LinkStatus::Up, 5_000, 7);
    g
}

fn node(i: u32) -> String {
    format!("{i:040x}")
}

fn report(i: u32, primary_id: Option<String>, slots: Vec<SlotRange>) -> ClusterNodeReport {
    ClusterNodeReport {
        node_id: node(i),
        primary_id,
        slots,
        config_epoch: 1,
        current_epoch: 1,
        state_ok: true,
        peers: Vec::new(),
    }
}

/// demo-1 answering as the same primary node on history `replid` at
/// `offset`.
fn answer(replid: u8, offset: u64) -> ClusterAnswer {
    answer_after(replid, 0, offset)
}

/// [`answer`], with `replid2` kept from a history it continues (0: none).
fn answer_after(replid: u8, replid2: u8, offset: u64) -> ClusterAnswer {
    ClusterAnswer {
        report: report(
            1,
            None,
            vec![SlotRange {
                start: 0,
                end: 8191,
            }],
        ),
        replication: ReplicationInfo {
            role: crate::replies::Role::Primary,
            replid: ReplId([replid; 20]).to_hex(),
            replid2: ReplId([replid2; 20]).to_hex(),
            master_repl_offset: offset,
            primary: None,
            replicas: Vec::new(),
        },
        migrations: None,
        slot_states: (Vec::new(), Vec::new()),
        announced: Some("10.0.0.1:6379@16379".to_owned()),
    }
}

/// What the probe of `answer` journals, folded in.
fn probe(g: &mut Given, replid: u8, offset: u64) -> Option<Event> {
    let seen = observe_history_reset(&g.state, "demo-1", &answer(replid, offset));
    if let Some(event) = &seen {
        g.event(event.clone());
    }
    g.repl(1, LinkStatus::NotReplica, offset, replid);
    seen
}

fn previous(event: Option<Event>) -> Option<ReplId> {
    match event {
        Some(Event::PrimaryHistoryReset {
            previous_replid, ..
        }) => Some(previous_replid),
        other => {
            assert_eq!(other, None);
            None
        }
    }
}

#[test]
fn a_restarted_primary_taking_a_new_id_for_its_first_replica_keeps_the_history_they_hold() {
    let mut g = shard();
    // Restarted empty: history 9 from 0. Its replica waits on history 7.
    assert_eq!(previous(probe(&mut g, 9, 0)), Some(ReplId([7; 20])));
    g.repl(4, LinkStatus::Down, 5_000, 7);
    // The replica asks to resync: the primary, without a backlog, takes
    // history 10 at the same offset. Not a loss of the replica's: the
    // reset still names history 7, which demo-4 holds.
    assert_eq!(probe(&mut g, 10, 227), None);
    let reset = &g.state.cluster.history_resets["demo-1"];
    assert_eq!(reset.previous_replid, ReplId([7; 20]));
}

#[test]
fn a_second_restart_after_the_replica_resynced_records_what_it_holds_now() {
    let mut g = shard();
    assert_eq!(previous(probe(&mut g, 9, 0)), Some(ReplId([7; 20])));
    // Too late for history 7: demo-4 resynced onto history 9 and holds
    // writes acknowledged since; demo-1 restarts empty again.
    g.repl(4, LinkStatus::Up, 800, 9);
    assert_eq!(previous(probe(&mut g, 11, 0)), Some(ReplId([9; 20])));
}

#[test]
fn a_replica_whose_history_is_not_journaled_yet_may_hold_the_one_a_second_restart_lost() {
    let mut g = shard();
    assert_eq!(previous(probe(&mut g, 9, 0)), Some(ReplId([7; 20])));
    g.repl(4, LinkStatus::Up, 800, 9);
    // demo-4's pod is recreated: what it holds is not observed yet when
    // demo-1 restarts again. It may hold history 9: journaled.
    g.state.pods.get_mut("demo-4").unwrap().replid = None;
    assert_eq!(previous(probe(&mut g, 11, 0)), Some(ReplId([9; 20])));
}

#[test]
fn a_promotion_going_on_with_its_history_under_a_new_id_is_no_reset() {
    let mut g = shard();
    // demo-1 answers with id 8 and the history it had, 7, as its second
    // id: Valkey's promotion, nothing lost.
    let seen = observe_history_reset(&g.state, "demo-1", &answer_after(8, 7, 5_100));
    assert_eq!(seen, None);
    g.repl(1, LinkStatus::NotReplica, 5_100, 8);
    assert!(g.state.cluster.history_resets.is_empty());
}
