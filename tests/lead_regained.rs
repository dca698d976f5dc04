//! A lead lost between a decision and its outcome, then regained in the
//! same term: the intent cut off must be resolved, not left in flight.
//!
//! This is the defect behind clusters that never came up in the
//! 100-cluster idle bench: under load a Lease renewal starved, the leader
//! stepped down while a new cluster's `ApplyResources` was decided but not
//! yet carried out, and renewed the same Lease (same epoch) a moment
//! later. `decide` asks for nothing while an intent is in flight, and the
//! same epoch was not a new term, so the cluster waited forever with no
//! StatefulSet.
//!
//! Real: an in-process localkube over HTTP, the operator's own
//! `ClusterRuntime` with a sled journal. The step-down is timed exactly:
//! the runtime's Kubernetes Events go to a listener that holds the
//! decision's announcement (sent after the decision is journaled, before
//! its intents run) until the test has stepped the leader down.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Resource;
use kube::api::{Api, PostParams};
use logbook::journal_store::JournalBackend;
use logbook::leader::Leadership;
use logbook::operator::{ClusterRuntime, JournalFactory, RuntimeDeps};
use logbook::resources::{ClusterMeta, statefulset_name};
use logbook_crds::ValkeyCluster;
use logbook_journal::store::sled::{Durability, SledStore};
use logbook_journal::{ChainHash, Event, JournalStore, StreamId};
use logbook_localkube::{Config, LocalKube};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

const NS: &str = "default";

/// A Kubernetes API address that holds the first connection made to it
/// until released (reporting that it arrived), and cuts every later one.
async fn holding_listener() -> (String, mpsc::Receiver<()>, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived) = mpsc::channel(1);
    let (release, released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((first, _)) = listener.accept().await else {
            return;
        };
        let _ = arrived_tx.send(()).await;
        let _ = released.await;
        drop(first);
        while let Ok((later, _)) = listener.accept().await {
            drop(later);
        }
    });
    (format!("http://{addr}"), arrived, release)
}

async fn journal(store: &SledStore, stream: &StreamId) -> Vec<Event> {
    let head = store.head(stream).await.unwrap();
    logbook_journal::reader::read_envelopes(store, stream, 1, ChainHash::GENESIS, head.seq)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .collect()
}

/// A Standalone cluster created in `server`, and a leading runtime of it
/// (sled journal) that has recorded its spec and its (absent) objects;
/// Events go to `events_url`.
struct Setup {
    client: kube::Client,
    meta: ClusterMeta,
    stream: StreamId,
    sled: SledStore,
    _dir: tempfile::TempDir,
    lead: watch::Sender<Leadership>,
    rt: ClusterRuntime,
}

async fn setup(server: &logbook_localkube::RunningServer, events_url: &str) -> Setup {
    logbook::local_cluster::install_crds(server).unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let clusters: Api<ValkeyCluster> = Api::namespaced(client.clone(), NS);
    let spec: ValkeyCluster = serde_yaml::from_str(
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: cut
spec:
  topology: Standalone
  storage:
    size: 1Gi
",
    )
    .unwrap();
    let obj = clusters
        .create(&PostParams::default(), &spec)
        .await
        .unwrap();
    let meta = ClusterMeta::from_cluster(&obj).unwrap();
    let stream = StreamId::new(meta.uid.clone()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path(), Durability::Flush).unwrap();
    let events_client =
        kube::Client::try_from(kube::Config::new(events_url.parse().unwrap())).unwrap();
    let (lead, leadership) = watch::channel(Leadership::Leader { epoch: 1 });
    // Events go to the holding listener; everything else to localkube.
    let mut deps = RuntimeDeps::new(
        events_client,
        JournalFactory {
            backend: JournalBackend::Sled,
            client: client.clone(),
            sled: Some(sled.clone()),
            group_commit: Duration::ZERO,
        },
        leadership,
        "lead-regained-test".to_owned(),
    );
    deps.client = client.clone();

    let mut rt = ClusterRuntime::open(&deps, meta.clone(), obj.object_ref(&()), false)
        .await
        .unwrap();
    assert!(rt.sync_leadership().await.unwrap(), "leads at epoch 1");
    let seen = logbook::observe::observe_spec(&rt.state, &obj);
    rt.record(seen, None).await.unwrap();
    rt.sync_policy().await.unwrap();
    let mut seen = logbook::observe::observe_pods(&rt.state, &[]);
    seen.extend(logbook::observe::observe_statefulset(&rt.state, None));
    rt.record(seen, None).await.unwrap();
    rt.commit().await.unwrap();

    Setup {
        client,
        meta,
        stream,
        sled,
        _dir: dir,
        lead,
        rt,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_cut_by_a_step_down_is_resolved_when_the_same_term_comes_back() {
    let server = LocalKube::start(Config::default()).await.unwrap();
    let (events_url, mut arrived, release) = holding_listener().await;
    let Setup {
        client,
        meta,
        stream,
        sled,
        _dir,
        lead,
        mut rt,
    } = setup(&server, &events_url).await;

    // Decide: the announcement of the decision is held, and while it is
    // the lead is lost.
    let acting = tokio::spawn(async move {
        let result = rt.act().await;
        (rt, result)
    });
    tokio::time::timeout(Duration::from_secs(30), arrived.recv())
        .await
        .expect("the decision was announced within 30 s")
        .unwrap();
    lead.send_replace(Leadership::Follower);
    let _ = release.send(());
    let (mut rt, result) = acting.await.unwrap();
    result.unwrap();

    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let name = statefulset_name(&meta.name);
    assert!(
        sets.get_opt(&name).await.unwrap().is_none(),
        "nothing was carried out after the step-down"
    );
    let before = journal(&sled, &stream).await;
    let cut: Vec<uuid::Uuid> = before
        .iter()
        .filter_map(|e| match e {
            Event::Decided { intents } => Some(intents.iter().map(|p| p.intent_id)),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!cut.is_empty(), "a decision was journaled: {before:?}");
    assert!(
        !before.iter().any(|e| matches!(
            e,
            Event::IntentSucceeded { .. }
                | Event::IntentFailed { .. }
                | Event::IntentAbandoned { .. }
        )),
        "no outcome was journaled by a leader that stepped down: {before:?}"
    );

    // The same term comes back (the Lease was renewed, nobody else held
    // it): what the reconcile that every leadership change triggers does.
    lead.send_replace(Leadership::Leader { epoch: 1 });
    assert!(
        rt.sync_leadership().await.unwrap(),
        "leads again at epoch 1"
    );
    rt.act().await.unwrap();

    assert!(
        sets.get_opt(&name).await.unwrap().is_some(),
        "the StatefulSet exists once the lead is back"
    );
    assert!(rt.state.in_flight.is_empty(), "nothing left in flight");
    let after = journal(&sled, &stream).await;
    let taken_over = after
        .iter()
        .skip(before.len())
        .any(|e| matches!(e, Event::OperatorStarted { epoch: 1, .. }));
    assert!(
        taken_over,
        "the re-lead is journaled as a takeover: {after:?}"
    );
    for id in &cut {
        let outcome = after.iter().find_map(|e| match e {
            Event::IntentSucceeded { intent_id, detail } if intent_id == id => {
                Some(format!("succeeded: {detail}"))
            }
            Event::IntentAbandoned { intent_id, reason } if intent_id == id => {
                Some(format!("abandoned: {reason}"))
            }
            _ => None,
        });
        assert!(
            outcome.is_some(),
            "intent {id} cut by the step-down has an outcome: {after:?}"
        );
    }
    // The journal explains it: the audit finds nothing wrong.
    let input = logbook_replay::Input::Store {
        store: sled.clone(),
        stream: stream.clone(),
        cluster: None,
        place: "the test's sled journal".to_owned(),
    };
    let report = logbook_replay::audit::audit(&input, &logbook::replay_decider::OperatorDecider)
        .await
        .unwrap();
    let mut text = Vec::new();
    logbook_replay::audit::write_text(&mut text, &report).unwrap();
    assert!(report.is_clean(), "{}", String::from_utf8_lossy(&text));
}

/// A decision staged after the lead was lost (it stepped down since the
/// runtime last looked) is refused, not reported as journaled: the
/// caller would otherwise announce it in an Event, and nothing holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_after_the_lead_was_lost_is_refused_not_announced() {
    let server = LocalKube::start(Config::default()).await.unwrap();
    let (events_url, _arrived, _release) = holding_listener().await;
    let Setup {
        sled,
        stream,
        lead,
        mut rt,
        _dir,
        ..
    } = setup(&server, &events_url).await;
    let before = journal(&sled, &stream).await;
    lead.send_replace(Leadership::Follower);
    let decided = Event::Decided {
        intents: vec![logbook_journal::PlannedIntent {
            intent_id: uuid::Uuid::now_v7(),
            intent: logbook_journal::Intent::UpdateStatus,
            reason: logbook_journal::Reason {
                code: logbook_journal::ReasonCode::StatusStale,
                detail: String::new(),
            },
        }],
    };
    let result = rt.record_now(vec![decided], None).await;
    assert!(
        matches!(
            result,
            Err(logbook::operator::OperatorError::NotLeading { .. })
        ),
        "a decision no longer journaled must be refused: {result:?}"
    );
    assert_eq!(
        journal(&sled, &stream).await,
        before,
        "nothing was journaled"
    );
}
