//! Records the replay tool's golden journals from real end-to-end runs on
//! localkube with real `valkey-server` pods, and keeps them as fixtures in
//! `replay/tests/golden/`. Ignored: it is a recording tool, run on purpose
//! (`make golden`), never in CI. Each recording is checked before it is
//! kept, so a run that did not show what its scenario is about fails
//! instead of replacing a good fixture.
//!
//! Three scenarios, each on its own localkube with its own cluster and the
//! operator on ConfigMap journals (so the journal can be read while the
//! operator runs, to tell when it has gone quiet):
//!
//! - `failover`: the primary's process is killed; the operator fails over,
//!   the old primary comes back as a replica of the new one.
//! - `switchover`: a planned switchover to a named replica, requested
//!   through the annotation, served and cleared.
//! - `restart_mid_failover`: the primary is killed under an operator
//!   process armed to abort right after it commits its first decision (the
//!   failover's, so every intent of it is left in flight); a fresh operator
//!   takes the journal over (`OperatorStarted` with the gap), resolves what
//!   it finds in flight and completes the failover.
//!
//! # The `.frames` format
//!
//! `<scenario>.frames` is the cluster stream's event frames from seq 1 to
//! the head, concatenated byte for byte as `JournalStore::read(&stream, 1,
//! usize::MAX)` returns them. Each frame is self-delimiting,
//! `[len u32 LE][crc32c u32 LE][version u8][payload of len bytes]` (see
//! `journal/src/codec.rs`); no snapshot, nothing else. Beside it,
//! `<scenario>.json` holds the stream's identity and head and the facts a
//! reader should find in it, computed from the recorded events. No secret
//! is written: both files are checked not to contain the cluster's
//! password.
//!
//! `LOGBOOK_GOLDEN=failover,switchover` records only the scenarios named.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logbook::journal_store::JournalBackend;
use logbook_journal::{
    ClusterState, Envelope, Event, Head, Intent, JournalStore, PlannedIntent, Reachability,
    ReasonCode, Role, StreamId, Timestamp,
};
use operator_common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long the journal must stand still, the cluster Ready, before a
/// scenario counts as converged.
const QUIET: Duration = Duration::from_secs(3);
/// Keys a client writes before the fault.
const KEYS: u64 = 1000;

/// Where the fixtures live.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("replay/tests/golden")
}

/// One scenario's recording, checked and ready to keep.
struct Recording {
    scenario: &'static str,
    description: &'static str,
    cluster: String,
    stream: StreamId,
    /// The frames, seq 1 to the head, as the store returned them.
    frames: Vec<u8>,
    /// The same, decoded (and checked against CRC and chain).
    events: Vec<Envelope>,
    head: Head,
    /// The projection folded from `events`.
    state: ClusterState,
    /// What the scenario is about, computed from `events`.
    facts: Value,
    /// Never written: checked absent from what is.
    password: String,
}

// ---------------------------------------------------------------------
// The harness around the scenarios.
// ---------------------------------------------------------------------

/// Localkube with no operator yet, journals in ConfigMaps. Its operators
/// are instances `<cluster>-op-<n>`: not `<cluster>-<n>`, the pods' names.
async fn configmap_env(cluster: &str) -> Env {
    let mut env = Env::start_without_operator(&format!("{cluster}-op")).await;
    env.journal = JournalBackend::ConfigMap;
    env
}

/// Creates a 3-pod Replication cluster, waits for Ready, and has a client
/// write [`KEYS`] keys through the client Service. Returns the primary and
/// the password.
async fn ready_cluster(env: &Env, name: &str) -> (String, String) {
    env.apply_yaml(&replication_yaml(name, 3)).await;
    let vkc = env.wait_ready(name, 3, Duration::from_secs(60)).await;
    let password = env.password(name).await;
    let service = env.service_addr(name).await;
    write_keys(&service, &password, "golden", KEYS).await;
    (primary(&vkc), password)
}

/// Waits until `pod` answers `ROLE` as a replica of `primary` with its link
/// up.
async fn wait_follows(env: &Env, pod: &str, primary: &str, password: &str) {
    let primary_ip = env
        .pod_addr(primary)
        .await
        .rsplit_once(':')
        .unwrap()
        .0
        .to_owned();
    env.eventually(
        Duration::from_secs(30),
        &format!("{pod} a replica of {primary} with its link up"),
        || {
            let (pod, primary_ip, password) =
                (pod.to_owned(), primary_ip.clone(), password.to_owned());
            async move {
                let Some(addr) = pod_ip_addr(env, &pod).await else {
                    return false;
                };
                match try_role(&addr, &password).await {
                    Some((kind, Some(follows))) if kind == "slave" && follows == primary_ip => {
                        info_field(&addr, &password, "master_link_status")
                            .await
                            .as_deref()
                            == Some("up")
                    }
                    _ => false,
                }
            }
        },
    )
    .await;
}

/// `ip:6379` of a pod, when it has an address.
async fn pod_ip_addr(env: &Env, pod: &str) -> Option<String> {
    let pod = env
        .api::<k8s_openapi::api::core::v1::Pod>()
        .get_opt(pod)
        .await
        .ok()??;
    let ip = pod.status?.pod_ip?;
    Some(format!("{ip}:{PORT}"))
}

/// Waits until the cluster is Ready with `primary` and its journal has
/// committed nothing for [`QUIET`]. Returns the head seq then.
async fn wait_quiet(env: &Env, tail: &mut JournalTail, name: &str, primary: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut still: Option<(u64, Instant)> = None;
    loop {
        tail.catch_up().await;
        let seq = tail.seq();
        let ready = match env.vkcs().get_opt(name).await {
            Ok(Some(vkc)) => {
                is_ready(&vkc, 3)
                    && vkc.status.as_ref().and_then(|s| s.primary.as_deref()) == Some(primary)
            }
            _ => false,
        };
        match still {
            _ if !ready => still = None,
            Some((at, since)) if at == seq => {
                if since.elapsed() >= QUIET {
                    return seq;
                }
            }
            _ => still = Some((seq, Instant::now())),
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not converge (Ready with {primary}, journal quiet for {QUIET:?})\n{}",
            env.dump(name).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the status names a primary other than `old`; returns it.
async fn wait_new_primary(env: &Env, name: &str, old: &str) -> String {
    let vkc = env
        .wait_primary_moved(name, old, Duration::from_secs(30))
        .await;
    primary(&vkc)
}

/// The stream read from its ConfigMap journal at one pinned head (no
/// operator runs by then): the frames exactly as stored, each decoded from
/// the concatenation as a reader of the `.frames` file will, checked
/// against the store's head and by `verify`.
async fn dump_stream(env: &Env, stream: &StreamId) -> (Vec<u8>, Vec<Envelope>, Head) {
    let pinned = env.config_map_journal().pin(stream).await.unwrap();
    let head = pinned.head(stream).await.unwrap();
    let batch = pinned.read(stream, 1, usize::MAX).await.unwrap();
    let seqs: Vec<u64> = batch.iter().map(|(seq, _)| seq).collect();
    assert_eq!(
        seqs.first().copied(),
        Some(1),
        "stream {stream} does not start at seq 1 (compacted?)"
    );
    assert_eq!(
        seqs,
        (1..=head.seq).collect::<Vec<_>>(),
        "stream {stream}: the frames read are not seq 1..={}",
        head.seq
    );
    assert!(
        env.config_map_journal()
            .get_snapshot(stream)
            .await
            .unwrap()
            .is_none_or(|s| s.seq <= head.seq),
        "a snapshot beyond the head"
    );
    let report = logbook_journal::verify::verify(&pinned, stream)
        .await
        .unwrap();
    assert!(
        report.is_ok(),
        "stream {stream} does not verify: {:?}",
        report.problem
    );
    assert_eq!(report.events_checked, head.seq, "{report:?}");
    let frames: Vec<u8> = batch
        .iter()
        .flat_map(|(_, frame)| frame.iter().copied())
        .collect();
    let events = logbook_replay::frames::envelopes(&frames).unwrap();
    assert_eq!(u64::try_from(events.len()).unwrap(), head.seq);
    assert_eq!(events.last().map(|e| e.hash), Some(head.hash));
    (frames, events, head)
}

// ---------------------------------------------------------------------
// Reading facts out of the recorded events.
// ---------------------------------------------------------------------

/// The first decided intent after `after` matching `pred`, with the seq,
/// epoch and id of its `Decided`.
fn find_decided(
    events: &[Envelope],
    after: u64,
    pred: impl Fn(&Intent) -> bool,
) -> Option<(&Envelope, &PlannedIntent)> {
    events.iter().filter(|e| e.seq > after).find_map(|e| {
        let Event::Decided { intents } = &e.body else {
            return None;
        };
        intents.iter().find(|p| pred(&p.intent)).map(|p| (e, p))
    })
}

/// The outcome of intent `id`: its event and a short kind.
fn outcome(events: &[Envelope], id: Uuid) -> Option<(&Envelope, &'static str, String)> {
    events.iter().find_map(|e| match &e.body {
        Event::IntentSucceeded { intent_id, detail } if *intent_id == id => {
            let kind = if detail.starts_with("found done") {
                "found_done"
            } else {
                "succeeded"
            };
            Some((e, kind, detail.clone()))
        }
        Event::IntentFailed {
            intent_id, error, ..
        } if *intent_id == id => Some((e, "failed", error.clone())),
        Event::IntentAbandoned { intent_id, reason } if *intent_id == id => {
            Some((e, "abandoned", reason.clone()))
        }
        _ => None,
    })
}

/// Every decided intent with the seq of its `Decided`, in order.
fn decided_intents(events: &[Envelope]) -> Vec<(u64, &PlannedIntent)> {
    events
        .iter()
        .flat_map(|e| match &e.body {
            Event::Decided { intents } => intents.iter().map(|p| (e.seq, p)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Intents decided with no outcome among `events`.
fn unsettled(events: &[Envelope]) -> Vec<(u64, &PlannedIntent)> {
    decided_intents(events)
        .into_iter()
        .filter(|(_, p)| outcome(events, p.intent_id).is_none())
        .collect()
}

/// An intent as JSON: id, kind of intent, description, reason.
fn intent_json(decided_seq: u64, p: &PlannedIntent) -> Value {
    json!({
        "intent_id": p.intent_id.to_string(),
        "decided_seq": decided_seq,
        "intent": p.intent.describe(),
        "reason": p.reason.code.name(),
        "reason_detail": p.reason.detail,
    })
}

/// Every `OperatorStarted` of the stream.
fn operator_starts(events: &[Envelope]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::OperatorStarted {
                instance,
                epoch,
                gap_ms,
                ..
            } => Some(json!({
                "seq": e.seq,
                "instance": instance,
                "epoch": epoch,
                "gap_ms": gap_ms,
            })),
            _ => None,
        })
        .collect()
}

/// Every `ReplicaPromoted` of the stream.
fn promotions(events: &[Envelope]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::ReplicaPromoted { pod, from, offset } => Some(json!({
                "seq": e.seq,
                "pod": pod,
                "from": from,
                "offset": offset,
            })),
            _ => None,
        })
        .collect()
}

/// Spans of seqs during which the projection held two or more pods in the
/// primary role (from `NodeRoleObserved` or `ReplicaPromoted`) whose last
/// probe had not failed: what an invariant check of "one primary" folding
/// this journal would see.
fn observed_primary_overlaps(events: &[Envelope]) -> Vec<Value> {
    let mut state = ClusterState::new();
    let mut spans: Vec<(u64, u64, BTreeSet<String>)> = Vec::new();
    let mut open = false;
    for e in events {
        state.apply(e);
        let primaries: BTreeSet<String> = state
            .pods
            .iter()
            .filter(|(_, view)| {
                view.role == Some(Role::Primary)
                    && view
                        .reachability
                        .is_none_or(|r| r == Reachability::Reachable)
            })
            .map(|(pod, _)| pod.clone())
            .collect();
        if primaries.len() > 1 {
            match spans.last_mut() {
                Some((_, end, pods)) if open && *pods == primaries => *end = e.seq,
                _ => spans.push((e.seq, e.seq, primaries)),
            }
            open = true;
        } else {
            open = false;
        }
    }
    spans
        .into_iter()
        .map(|(from, to, pods)| json!({"from_seq": from, "to_seq": to, "pods": pods}))
        .collect()
}

/// `(seq, kind)` of every event in `after..before` (exclusive both): what
/// the journal shows between a fault and the decision it led to.
fn between(events: &[Envelope], after: u64, before: u64) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.seq > after && e.seq < before)
        .map(|e| json!({"seq": e.seq, "kind": e.body.kind()}))
        .collect()
}

/// Facts every scenario records, beside its own.
fn common_facts(events: &[Envelope], state: &ClusterState) -> Value {
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        *kinds.entry(e.body.kind()).or_default() += 1;
    }
    let epochs: BTreeSet<u64> = events.iter().map(|e| e.epoch).collect();
    let c = &state.counters;
    json!({
        "event_kinds": kinds,
        "epochs": epochs,
        "operator_starts": operator_starts(events),
        "promotions": promotions(events),
        "decisions": c.decisions,
        "intents": {
            "decided": c.intents_decided,
            "succeeded": c.intents_succeeded,
            "failed": c.intents_failed,
            "abandoned": c.intents_abandoned,
        },
        "primary_at_head": state.replication.primary,
        "last_failover": state.last_failover.as_ref().map(|f| json!({
            "seq": f.seq,
            "from": f.from,
            "to": f.to,
        })),
        "anomalies": state.anomalies.iter().map(|a| json!({
            "seq": a.seq,
            "description": a.description,
        })).collect::<Vec<_>>(),
        "observed_primary_overlaps": observed_primary_overlaps(events),
    })
}

/// Folds `events` from an empty projection.
fn fold(events: &[Envelope]) -> ClusterState {
    let mut state = ClusterState::new();
    for e in events {
        state.apply(e);
    }
    state
}

/// Dumps the stream of `name` (no operator may run) and folds it.
async fn record(
    env: &Env,
    scenario: &'static str,
    description: &'static str,
    name: &str,
    password: String,
    facts: impl FnOnce(&[Envelope], &ClusterState) -> Value,
) -> Recording {
    let stream = env.stream(name).await;
    let (frames, events, head) = dump_stream(env, &stream).await;
    let state = fold(&events);
    assert_eq!(state.last_seq, head.seq);
    // Every intent has an outcome; nothing is left in flight.
    let open: Vec<Value> = unsettled(&events)
        .into_iter()
        .map(|(seq, p)| intent_json(seq, p))
        .collect();
    assert!(
        open.is_empty(),
        "{scenario}: intents without outcome: {open:#?}"
    );
    assert!(
        state.in_flight.is_empty(),
        "{scenario}: in flight at the head: {:?}",
        state.in_flight
    );
    let facts = facts(&events, &state);
    Recording {
        scenario,
        description,
        cluster: name.to_owned(),
        stream,
        frames,
        events,
        head,
        state,
        facts,
        password,
    }
}

/// Writes `<scenario>.frames` and `<scenario>.json`, after checking that
/// neither holds the password.
fn keep(rec: &Recording) {
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let first_at = rec.events.first().map(|e| e.at.to_string());
    let last_at = rec.events.last().map(|e| e.at.to_string());
    let meta = json!({
        "scenario": rec.scenario,
        "description": rec.description,
        "format": "event frames of seq 1..=head_seq, concatenated as JournalStore::read(&stream, 1, usize::MAX) returns them; each [len u32 LE][crc32c u32 LE][version u8][payload]",
        "stream": rec.stream.to_string(),
        "cluster": rec.cluster,
        "namespace": NS,
        "journal_backend": "configmap",
        "events": rec.events.len(),
        "head_seq": rec.head.seq,
        "head_hash": rec.head.hash.to_hex(),
        "bytes": rec.frames.len(),
        "sha256": hex(&Sha256::digest(&rec.frames)),
        "first_event_at": first_at,
        "last_event_at": last_at,
        "recorded_at": Timestamp::now().to_string(),
        "operator_version": env!("CARGO_PKG_VERSION"),
        "facts": rec.facts,
        "common": common_facts(&rec.events, &rec.state),
    });
    let text = serde_json::to_string_pretty(&meta).unwrap() + "\n";
    assert!(rec.password.len() >= 8, "a suspiciously short password");
    let secret = rec.password.as_bytes();
    assert!(
        !rec.frames.windows(secret.len()).any(|w| w == secret),
        "{}: the password is in the journal",
        rec.scenario
    );
    assert!(
        !text.contains(&rec.password),
        "{}: the password is in the facts",
        rec.scenario
    );
    let frames_path = dir.join(format!("{}.frames", rec.scenario));
    let json_path = dir.join(format!("{}.json", rec.scenario));
    write_atomically(&frames_path, &rec.frames);
    write_atomically(&json_path, text.as_bytes());
    // Read back: the file decodes to the same events.
    let again = logbook_replay::frames::envelopes(&std::fs::read(&frames_path).unwrap()).unwrap();
    assert_eq!(again, rec.events);
    eprintln!(
        "{}: {} events, head {} {}, {} bytes -> {}",
        rec.scenario,
        rec.events.len(),
        rec.head.seq,
        rec.head.hash.to_hex(),
        rec.frames.len(),
        frames_path.display()
    );
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------

/// The primary's process killed; the operator fails over on its own.
async fn failover() -> Recording {
    const NAME: &str = "gold-failover";
    let mut env = configmap_env(NAME).await;
    env.start_operator();
    let (old, password) = ready_cluster(&env, NAME).await;
    let stream = env.stream(NAME).await;
    let mut tail = env.cm_journal_tail(&stream);
    tail.catch_up().await;
    let before_kill = tail.seq();

    env.kill(&old).await;
    let new = wait_new_primary(&env, NAME, &old).await;
    env.wait_ready(NAME, 3, Duration::from_secs(30)).await;
    wait_follows(&env, &old, &new, &password).await;
    let new_addr = env.pod_addr(&new).await;
    assert_eq!(
        count_missing(&new_addr, &password, "golden", KEYS).await,
        0,
        "keys lost on {new}"
    );
    wait_quiet(&env, &mut tail, NAME, &new).await;
    env.stop_operator(Stop::Graceful).await;

    let rec = record(
        &env,
        "failover",
        "3-pod Replication cluster Ready, 1000 keys written, the primary's process killed (SIGKILL, restarted in place by the kubelet); the operator fails over on its own, the old primary comes back as a replica of the new one; converged, operator stopped gracefully",
        NAME,
        password,
        |events, state| {
            let (decided, promote) = find_decided(events, before_kill, |i| {
                matches!(i, Intent::PromoteReplica { pod, .. } if *pod == new)
            })
            .unwrap_or_else(|| panic!("no PromoteReplica of {new} decided after the kill"));
            let Intent::PromoteReplica { from, .. } = &promote.intent else {
                unreachable!()
            };
            assert_eq!(from.as_deref(), Some(old.as_str()), "{promote:?}");
            let ReasonCode::PrimaryFailed {
                death,
                consecutive_failures,
                candidates,
            } = &promote.reason.code
            else {
                panic!("the failover's reason: {:?}", promote.reason);
            };
            let (done, how, _) = outcome(events, promote.intent_id).expect("promotion outcome");
            assert_eq!(how, "succeeded", "the promotion: {how}");
            let promoted = events
                .iter()
                .filter(|e| e.seq > before_kill)
                .find_map(|e| match &e.body {
                    Event::ReplicaPromoted { pod, from, offset } if *pod == new => {
                        Some((e.seq, from.clone(), *offset))
                    }
                    _ => None,
                })
                .expect("a ReplicaPromoted of the new primary");
            assert_eq!(promoted.1.as_deref(), Some(old.as_str()), "{promoted:?}");
            assert_eq!(state.replication.primary.as_deref(), Some(new.as_str()));
            let fenced = find_decided(events, before_kill, |i| {
                matches!(i, Intent::FenceNode { pod } if *pod == old)
            })
            .map(|(e, p)| {
                let (_, how, _) = outcome(events, p.intent_id).expect("fence outcome");
                json!({"seq": e.seq, "intent_id": p.intent_id.to_string(), "outcome": how})
            });
            json!({
                "old_primary": old,
                "new_primary": new,
                "killed_pod": old,
                "fault_after_seq": before_kill,
                "between_fault_and_decision": between(events, before_kill, decided.seq),
                "decided_seq": decided.seq,
                "decided_epoch": decided.epoch,
                "decided_intents": match &decided.body {
                    Event::Decided { intents } => intents.iter().map(|p| intent_json(decided.seq, p)).collect::<Vec<_>>(),
                    _ => Vec::new(),
                },
                "promote_intent_id": promote.intent_id.to_string(),
                "reason": promote.reason.code.name(),
                "reason_detail": promote.reason.detail,
                "death": death,
                "consecutive_failures": consecutive_failures,
                "candidates": candidates.iter().map(|c| json!({
                    "pod": c.pod,
                    "offset": c.offset,
                    "reachable": c.reachable,
                    "same_history": c.same_history,
                    "eligible": c.eligible,
                })).collect::<Vec<_>>(),
                "promote_succeeded_seq": done.seq,
                "promoted_seq": promoted.0,
                "promoted_from": promoted.1,
                "promoted_offset": promoted.2,
                "fence": fenced,
            })
        },
    )
    .await;
    env.finish().await;
    rec
}

/// A planned switchover to a named replica, through the annotation.
async fn switchover() -> Recording {
    const NAME: &str = "gold-switch";
    let mut env = configmap_env(NAME).await;
    env.start_operator();
    let (old, password) = ready_cluster(&env, NAME).await;
    let target = env
        .pods(NAME)
        .await
        .iter()
        .map(kube::ResourceExt::name_any)
        .find(|p| *p != old)
        .unwrap();
    let stream = env.stream(NAME).await;
    let mut tail = env.cm_journal_tail(&stream);
    tail.catch_up().await;
    let before_request = tail.seq();

    request_switchover(&env, NAME, &target).await;
    env.wait_status(
        NAME,
        Duration::from_secs(30),
        &format!("a switchover to {target}, the request cleared"),
        |v| {
            switchover_cleared(v)
                && v.status.as_ref().and_then(|s| s.primary.as_deref()) == Some(target.as_str())
        },
    )
    .await;
    env.wait_ready(NAME, 3, Duration::from_secs(30)).await;
    wait_follows(&env, &old, &target, &password).await;
    let new_addr = env.pod_addr(&target).await;
    assert_eq!(
        count_missing(&new_addr, &password, "golden", KEYS).await,
        0,
        "keys lost on {target}"
    );
    wait_quiet(&env, &mut tail, NAME, &target).await;
    env.stop_operator(Stop::Graceful).await;

    let rec = record(
        &env,
        "switchover",
        "3-pod Replication cluster Ready, 1000 keys written, a switchover to a named replica requested with the valkey.logbook.dev/switchover-to annotation; served, the annotation cleared, the old primary a replica of the new one; converged, operator stopped gracefully",
        NAME,
        password,
        |events, state| {
            let observed = events
                .iter()
                .filter(|e| e.seq > before_request)
                .find(|e| {
                    matches!(&e.body, Event::SwitchoverRequestObserved { target: Some(t) } if *t == target)
                })
                .expect("the request observed");
            let (decided, switch) = find_decided(events, before_request, |i| {
                matches!(i, Intent::Switchover { from, to } if *from == old && *to == target)
            })
            .unwrap_or_else(|| panic!("no Switchover {old} -> {target} decided"));
            assert!(
                matches!(switch.reason.code, ReasonCode::Requested),
                "the switchover's reason: {:?}",
                switch.reason
            );
            let (done, how, detail) = outcome(events, switch.intent_id).expect("switchover outcome");
            assert_eq!(how, "succeeded", "the switchover: {detail}");
            let promoted = events
                .iter()
                .filter(|e| e.seq > before_request)
                .find_map(|e| match &e.body {
                    Event::ReplicaPromoted { pod, from, offset } if *pod == target => {
                        Some((e.seq, from.clone(), *offset))
                    }
                    _ => None,
                })
                .expect("a ReplicaPromoted of the target");
            assert_eq!(promoted.1.as_deref(), Some(old.as_str()), "{promoted:?}");
            let (cleared_decided, clear) =
                find_decided(events, before_request, |i| matches!(i, Intent::ClearSwitchoverRequest))
                    .expect("the request's clearing decided");
            let (clear_done, clear_how, _) = outcome(events, clear.intent_id).expect("clear outcome");
            assert_eq!(clear_how, "succeeded");
            let gone = events
                .iter()
                .filter(|e| e.seq > observed.seq)
                .find(|e| matches!(&e.body, Event::SwitchoverRequestObserved { target: None }))
                .expect("the request observed gone");
            assert_eq!(state.replication.primary.as_deref(), Some(target.as_str()));
            assert!(state.switchover_request.is_none());
            json!({
                "from": old,
                "to": target,
                "requested_target": target,
                "request_after_seq": before_request,
                "request_observed_seq": observed.seq,
                "decided_seq": decided.seq,
                "decided_epoch": decided.epoch,
                "decided_intents": match &decided.body {
                    Event::Decided { intents } => intents.iter().map(|p| intent_json(decided.seq, p)).collect::<Vec<_>>(),
                    _ => Vec::new(),
                },
                "switchover_intent_id": switch.intent_id.to_string(),
                "reason": switch.reason.code.name(),
                "reason_detail": switch.reason.detail,
                "switchover_succeeded_seq": done.seq,
                "switchover_detail": detail,
                "promoted_seq": promoted.0,
                "promoted_from": promoted.1,
                "promoted_offset": promoted.2,
                "clear_decided_seq": cleared_decided.seq,
                "clear_intent_id": clear.intent_id.to_string(),
                "clear_succeeded_seq": clear_done.seq,
                "request_gone_seq": gone.seq,
            })
        },
    )
    .await;
    env.finish().await;
    rec
}

/// The primary killed under an operator that aborts right after it commits
/// the failover's decision; a fresh operator takes over and completes it.
async fn restart_mid_failover() -> Recording {
    const NAME: &str = "gold-restart";
    const ARMED: &str = "gold-restart-armed";
    let mut env = configmap_env(NAME).await;
    let workdir = tempfile::Builder::new()
        .prefix("logbook-golden-")
        .tempdir()
        .unwrap();
    let kubeconfig = workdir.path().join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig);
    env.start_operator();
    let (old, password) = ready_cluster(&env, NAME).await;
    let stream = env.stream(NAME).await;
    let mut tail = env.cm_journal_tail(&stream);
    wait_quiet(&env, &mut tail, NAME, &old).await;
    // Released on the way out: the armed instance takes over at once.
    env.stop_operator(Stop::Graceful).await;
    tail.catch_up().await;
    let handed_over = tail.seq();

    // Commit 1 counted from the first decision is that decision's own:
    // the converged cluster gives the armed instance nothing to decide
    // before the kill, so it dies with the whole failover in flight.
    let mut armed = OperatorProcess::start(&env, &kubeconfig, workdir.path(), ARMED, Some(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    let takeover = loop {
        tail.catch_up().await;
        if let Some(e) = tail.after(handed_over).iter().find(
            |e| matches!(&e.body, Event::OperatorStarted { instance, .. } if instance == ARMED),
        ) {
            break e.seq;
        }
        assert!(armed.exited().is_none(), "{ARMED} exited before the fault");
        assert!(
            Instant::now() < deadline,
            "{ARMED} did not take the journal over\n{}",
            env.dump(NAME).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // It watches: its first probe round is published.
    env.eventually(
        Duration::from_secs(20),
        "the armed instance's first status",
        || async { journal_seq(&env.vkc(NAME).await) >= i64::try_from(takeover).unwrap() },
    )
    .await;
    assert!(armed.exited().is_none(), "{ARMED} exited before the fault");
    tail.catch_up().await;
    let before_kill = tail.seq();

    env.kill(&old).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = armed.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{ARMED} did not abort\n{}",
            env.dump(NAME).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status.signal(),
        Some(nix::sys::signal::Signal::SIGABRT as i32),
        "{} exited with {status}, not by the crash injection's abort\n{}",
        armed.instance,
        env.dump(NAME).await
    );
    drop(armed);
    tail.catch_up().await;
    let crash_seq = tail.seq();
    let at_crash = env.cm_journal_state(&stream).await;
    assert!(
        !at_crash.in_flight.is_empty(),
        "nothing in flight at the crash (seq {crash_seq})"
    );
    eprintln!(
        "restart_mid_failover: {ARMED} aborted at seq {crash_seq} with {} intents in flight",
        at_crash.in_flight.len()
    );

    let fresh = env.start_operator();
    let new = wait_new_primary(&env, NAME, &old).await;
    env.wait_ready(NAME, 3, Duration::from_secs(30)).await;
    wait_follows(&env, &old, &new, &password).await;
    let new_addr = env.pod_addr(&new).await;
    assert_eq!(
        count_missing(&new_addr, &password, "golden", KEYS).await,
        0,
        "keys lost on {new}"
    );
    wait_quiet(&env, &mut tail, NAME, &new).await;
    env.stop_operator(Stop::Graceful).await;
    let in_flight_ids: BTreeSet<Uuid> = at_crash.in_flight.keys().copied().collect();

    let rec = record(
        &env,
        "restart_mid_failover",
        "3-pod Replication cluster Ready, 1000 keys written; the operator handed over to an instance armed to abort (LOGBOOK_CRASH_AT_COMMIT=1) right after committing its first decision; the primary's process killed; that instance aborted with the failover decided and none of its intents carried out; a fresh instance took the journal over (OperatorStarted with the gap), resolved the intents left in flight and completed the failover; converged, operator stopped gracefully",
        NAME,
        password,
        |events, state| {
            let starts: Vec<(&Envelope, &str, u64, Option<u64>)> = events
                .iter()
                .filter_map(|e| match &e.body {
                    Event::OperatorStarted {
                        instance,
                        epoch,
                        gap_ms,
                        ..
                    } => Some((e, instance.as_str(), *epoch, *gap_ms)),
                    _ => None,
                })
                .collect();
            let (armed_start, _, armed_epoch, _) = *starts
                .iter()
                .find(|(_, who, _, _)| *who == ARMED)
                .expect("the armed instance's OperatorStarted");
            let (takeover, _, fresh_epoch, gap_ms) = *starts
                .iter()
                .find(|(_, who, _, _)| *who == fresh)
                .expect("the fresh instance's OperatorStarted");
            assert_eq!(takeover.seq, crash_seq + 1, "the takeover follows the crash");
            let gap_ms = gap_ms.expect("the takeover's gap");
            assert!(fresh_epoch > armed_epoch, "epochs {armed_epoch} then {fresh_epoch}");
            let (decided, promote) = find_decided(events, before_kill, |i| {
                matches!(i, Intent::PromoteReplica { .. })
            })
            .expect("a PromoteReplica decided after the kill");
            assert!(decided.seq <= crash_seq, "the failover was decided after the crash");
            assert_eq!(decided.epoch, armed_epoch, "decided by {ARMED}");
            assert!(
                takeover.seq > decided.seq,
                "OperatorStarted with the gap after the Decided"
            );
            let ReasonCode::PrimaryFailed { death, consecutive_failures, .. } = &promote.reason.code else {
                panic!("the failover's reason: {:?}", promote.reason);
            };
            let Intent::PromoteReplica { pod: decided_pod, from: decided_from } = &promote.intent else {
                unreachable!()
            };
            // What was in flight at the crash, each resolved by the fresh
            // instance (and only by it).
            let before_crash = &events[..usize::try_from(crash_seq).unwrap()];
            let open: Vec<(u64, &PlannedIntent)> = unsettled(before_crash);
            let open_ids: BTreeSet<Uuid> = open.iter().map(|(_, p)| p.intent_id).collect();
            assert_eq!(open_ids, in_flight_ids, "in flight at the crash");
            // The abort came right after the decision's commit: none of
            // its intents was carried out.
            let Event::Decided { intents: planned } = &decided.body else {
                unreachable!()
            };
            for p in planned {
                assert!(
                    open_ids.contains(&p.intent_id),
                    "{} ({}) was not in flight at the crash",
                    p.intent.describe(),
                    p.intent_id
                );
            }
            let resolved: Vec<Value> = open
                .iter()
                .map(|(seq, p)| {
                    let (e, how, detail) = outcome(events, p.intent_id).unwrap_or_else(|| {
                        panic!("{} ({}) in flight at the crash is never resolved", p.intent.describe(), p.intent_id)
                    });
                    assert!(e.seq > takeover.seq, "{} resolved before the takeover", p.intent_id);
                    assert_eq!(e.epoch, fresh_epoch, "{} resolved by epoch {}", p.intent_id, e.epoch);
                    // Its outcome came after the takeover: it was found
                    // done or abandoned (what is still needed is decided
                    // afresh); journals of earlier builds carried it out
                    // again under its own id ("re_executed").
                    let how = match how {
                        "succeeded" => "re_executed",
                        "failed" => "re_executed_failed",
                        other => other,
                    };
                    let mut v = intent_json(*seq, p);
                    v["resolution"] = json!(how);
                    v["resolution_seq"] = json!(e.seq);
                    v["resolution_detail"] = json!(detail);
                    v
                })
                .collect();
            let promoted = events
                .iter()
                .filter(|e| e.seq > takeover.seq)
                .find_map(|e| match &e.body {
                    Event::ReplicaPromoted { pod, from, offset } if *pod == new => {
                        Some((e.seq, from.clone(), *offset))
                    }
                    _ => None,
                })
                .expect("a ReplicaPromoted of the new primary after the takeover");
            assert_eq!(state.replication.primary.as_deref(), Some(new.as_str()));
            let promote_how = resolved
                .iter()
                .find(|v| v["intent_id"] == json!(promote.intent_id.to_string()))
                .map(|v| v["resolution"].clone())
                .unwrap();
            let (_, _, promote_detail) = outcome(events, promote.intent_id).unwrap();
            json!({
                "old_primary": old,
                "new_primary": new,
                "killed_pod": old,
                "armed_instance": ARMED,
                "armed_started_seq": armed_start.seq,
                "armed_epoch": armed_epoch,
                "fault_after_seq": before_kill,
                "between_fault_and_decision": between(events, before_kill, decided.seq),
                "failover_decided_seq": decided.seq,
                "decided_intents": match &decided.body {
                    Event::Decided { intents } => intents.iter().map(|p| intent_json(decided.seq, p)).collect::<Vec<_>>(),
                    _ => Vec::new(),
                },
                "promote_intent_id": promote.intent_id.to_string(),
                "promote_decided_pod": decided_pod,
                "promote_decided_from": decided_from,
                "reason": promote.reason.code.name(),
                "reason_detail": promote.reason.detail,
                "death": death,
                "consecutive_failures": consecutive_failures,
                "crash_after_seq": crash_seq,
                "takeover": {
                    "seq": takeover.seq,
                    "instance": fresh,
                    "epoch": fresh_epoch,
                    "gap_ms": gap_ms,
                },
                "in_flight_at_crash": resolved,
                "promote_resolution": promote_how,
                "promote_resolution_detail": promote_detail,
                "promoted_seq": promoted.0,
                "promoted_from": promoted.1,
                "promoted_offset": promoted.2,
            })
        },
    )
    .await;
    env.finish().await;
    drop(workdir);
    rec
}

/// Whether `LOGBOOK_GOLDEN` (a comma-separated list) selects `scenario`;
/// every scenario when it is unset.
fn selected(scenario: &str) -> bool {
    std::env::var("LOGBOOK_GOLDEN")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .is_none_or(|list| list.split(',').any(|s| s.trim() == scenario))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records the replay fixtures from real runs: make golden"]
async fn record_golden_journals() {
    let began = Instant::now();
    let mut kept = Vec::new();
    for name in ["failover", "switchover", "restart_mid_failover"] {
        if !selected(name) {
            continue;
        }
        let started = Instant::now();
        let rec = match name {
            "failover" => failover().await,
            "switchover" => switchover().await,
            _ => restart_mid_failover().await,
        };
        keep(&rec);
        kept.push((
            rec.scenario,
            rec.events.len(),
            rec.frames.len(),
            started.elapsed(),
        ));
    }
    assert!(!kept.is_empty(), "LOGBOOK_GOLDEN selects no scenario");
    for (scenario, events, bytes, took) in &kept {
        eprintln!("{scenario}: {events} events, {bytes} bytes, recorded in {took:.1?}");
    }
    eprintln!("golden journals recorded in {:.1?}", began.elapsed());
}
