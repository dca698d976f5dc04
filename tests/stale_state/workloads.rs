//! The plans of the kinds whose changes the operator acts on directly:
//! the ValkeyCluster (its spec and its requests), its Pods and its
//! StatefulSet.

#[allow(unused_imports)]
use super::*;

// ---- ValkeyCluster -------------------------------------------------------

/// Hold: the ValkeyCluster's events are withheld while its spec changes:
/// the operator does not journal the new generation it cannot see; once
/// released, it does and publishes it Ready.
pub(crate) async fn cluster_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    b.proxy
        .hold(&b.env.client, Target::valkey_clusters().named(NAME))
        .await;
    let generation = toggle_budget(&b.env).await;
    let seen = b.window(before).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.body, Event::SpecChanged { generation: g, .. } | Event::SpecRejected { generation: g, .. } if *g >= generation)),
        "generation {generation} journaled while the ValkeyCluster was held\n{}",
        summary(&seen)
    );
    let withheld = b.proxy.withheld();
    b.proxy.release();
    let at = b
        .wait_event(
            before,
            "the held generation",
            |e| matches!(e, Event::SpecChanged { generation: g, .. } if *g == generation),
        )
        .await;
    b.check(at).await;
    format!("generation {generation} journaled only after the release ({withheld} events withheld)")
}

/// Stale: a switchover request served and cleared, then the operator
/// restarted onto an API server whose ValkeyCluster still carries the
/// request: it must not switch over again. Then a newer generation, and
/// the same again onto that older view: it must not journal the older
/// generation either.
pub(crate) async fn cluster_stale(b: &mut Bench) -> String {
    let old_primary = primary(&b.env.vkc(NAME).await);
    request_switchover(&b.env, NAME, "auto").await;
    let view = b
        .proxy
        .record(&b.env.client, Target::valkey_clusters().named(NAME))
        .await;
    let old_generation = view.object("default", NAME).unwrap()["metadata"]["generation"]
        .as_i64()
        .unwrap();
    b.env
        .wait_status(
            NAME,
            Duration::from_secs(60),
            "the switchover served and cleared",
            |v| {
                switchover_cleared(v)
                    && v.status
                        .as_ref()
                        .and_then(|s| s.primary.as_deref())
                        .is_some_and(|p| p != old_primary)
            },
        )
        .await;
    b.settle_handover().await;
    let mut notes = Vec::new();
    for newer_spec in [false, true] {
        let generation = if newer_spec {
            let generation = toggle_budget(&b.env).await;
            let seq = b.seq().await;
            b.wait_event(
                seq,
                "the newer generation",
                |e| matches!(e, Event::SpecChanged { generation: g, .. } if *g == generation),
            )
            .await;
            generation
        } else {
            old_generation
        };
        let now_primary = b.check(0).await;
        let before = b.seq().await;
        let instance = b.restart(Some(view.clone())).await;
        let started = b.wait_takeover(&instance, before).await;
        let seen = b.window(started).await;
        assert_nothing_decided(b, &seen, "valkeycluster-stale").await;
        let replayed: Vec<String> = seen
            .iter()
            .filter(|e| {
                matches!(&e.body, Event::SwitchoverRequestObserved { target: Some(_) })
                    || matches!(&e.body, Event::SpecChanged { generation: g, .. } | Event::SpecRejected { generation: g, .. } if *g < generation)
            })
            .map(|e| format!("{} {:?}", e.seq, e.body))
            .collect();
        assert!(
            replayed.is_empty(),
            "the older ValkeyCluster (generation {old_generation}, switchover requested) was observed as new: {replayed:?}\n{}",
            b.dump().await
        );
        let ignored = seen
            .iter()
            .filter(|e| matches!(&e.body, Event::StaleReadIgnored { .. }))
            .count();
        let doctored = b.proxy.doctored();
        b.proxy.reconnect();
        let primary_after = b.check(0).await;
        assert_eq!(
            primary_after, now_primary,
            "the primary moved after the reconnect"
        );
        notes.push(format!(
            "{} ({ignored} StaleReadIgnored, {doctored} answers from the older view)",
            if newer_spec {
                format!("generation {old_generation} after {generation}: not journaled")
            } else {
                "the served switchover request: not served again".to_owned()
            }
        ));
    }
    notes.join("; ")
}

// ---- Pod -------------------------------------------------------------------

/// Hold: the primary's pod is deleted while its events (and its GETs and
/// list items) are withheld: the operator journals nothing of the deletion
/// or of the replacement it cannot see; it fails over on what its probes
/// see, and moves the labels once, not again and again on a held view
/// older than its own write; once released it sees the new pod and the
/// cluster converges.
pub(crate) async fn pod_hold(b: &mut Bench) -> String {
    let victim = primary(&b.env.vkc(NAME).await);
    let old_uid = uids(&b.env).await[&victim].clone();
    let before = b.seq().await;
    b.proxy
        .hold(&b.env.client, Target::pods().named(&victim))
        .await;
    b.env.delete_pod(&victim).await;
    // The probes find the process gone: the failover they justify is
    // decided while the pod's deletion is still unseen, and the labels
    // moved on a pod whose held view still shows the old ones.
    b.wait_event(before, "the failover the probes justify", |e| {
        matches!(e, Event::ReplicaPromoted { .. })
    })
    .await;
    let seen = b.window(before).await;
    // What an action learned from its own write (the pod it relabelled
    // answered 404) is the API server's word, not the held view leaking:
    // it is journaled with the intent's outcome, under the same cause.
    let outcomes: Vec<_> = seen
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                Event::IntentSucceeded { .. } | Event::IntentFailed { .. }
            )
        })
        .filter_map(|e| e.cause)
        .collect();
    let revealed: Vec<&Envelope> = seen
        .iter()
        .filter(|e| match &e.body {
            Event::PodDeleted { .. } if e.cause.is_some_and(|c| outcomes.contains(&c)) => false,
            Event::PodTerminating { pod } | Event::PodDeleted { pod } => *pod == victim,
            Event::PodObserved { pod, uid, .. } => *pod == victim && *uid != old_uid,
            _ => false,
        })
        .collect();
    assert!(
        revealed.is_empty(),
        "the held pod's deletion was journaled: {revealed:?}\n{}",
        b.dump().await
    );
    let decided = decisions(&seen);
    assert_no_repeat(b, &seen, "pod-hold").await;
    let withheld = b.proxy.withheld();
    b.proxy.release();
    let at = b
        .wait_event(before, "the replaced pod", |e| {
            matches!(e, Event::PodObserved { pod, uid, .. } if *pod == victim && *uid != old_uid)
        })
        .await;
    let primary = b.check(at).await;
    format!(
        "primary {victim} deleted unseen ({withheld} events withheld); decided meanwhile {decided:?}; primary now {primary}"
    )
}

/// Stale: a replica's pod replaced, then the operator restarted onto an
/// API server whose pods are from before: it must not take the old pod
/// back (no observation of its old uid), nor decide anything.
pub(crate) async fn pod_stale(b: &mut Bench) -> String {
    let view = b.proxy.record(&b.env.client, Target::pods()).await;
    let vkc = b.env.vkc(NAME).await;
    let primary_now = primary(&vkc);
    let before_uids = uids(&b.env).await;
    let victim = before_uids
        .keys()
        .find(|p| **p != primary_now)
        .unwrap()
        .clone();
    let old_uid = before_uids[&victim].clone();
    let seq = b.seq().await;
    b.env.delete_pod(&victim).await;
    b.wait_event(
        seq,
        "the replaced replica",
        |e| matches!(e, Event::PodObserved { pod, uid, .. } if *pod == victim && *uid != old_uid),
    )
    .await;
    b.check(0).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "pod-stale").await;
    let regressed: Vec<&Envelope> = seen
        .iter()
        .filter(|e| matches!(&e.body, Event::PodObserved { pod, uid, .. } if *pod == victim && *uid == old_uid))
        .collect();
    assert!(
        regressed.is_empty(),
        "the replaced pod {victim} was observed again with its old uid: {regressed:?}\n{}",
        b.dump().await
    );
    let doctored = b.proxy.doctored();
    b.proxy.reconnect();
    b.check(0).await;
    format!(
        "{victim}'s old uid not taken back, nothing decided ({doctored} answers from the older view)"
    )
}

// ---- StatefulSet -----------------------------------------------------------

/// A `valkey.conf` change: every pod rolls. Returns the new generation.
pub(crate) async fn roll_config(env: &Env, n: usize) -> i64 {
    let policy = POLICIES[n % POLICIES.len()];
    let vkc = env
        .patch(
            NAME,
            serde_json::json!({"spec": {"config": {"maxmemory-policy": policy}}}),
        )
        .await;
    vkc.metadata.generation.unwrap()
}

/// The StatefulSet's update revision and the pods' revisions.
pub(crate) async fn revisions(env: &Env) -> (String, BTreeMap<String, Option<String>>) {
    let update = update_revision(env, NAME).await;
    let pods = env
        .pods(NAME)
        .await
        .into_iter()
        .map(|p| {
            let rev = p.labels().get("controller-revision-hash").cloned();
            (p.name_any(), rev)
        })
        .collect();
    (update, pods)
}

/// Waits until the StatefulSet's update revision is another than `old`
/// and every pod runs it.
pub(crate) async fn wait_rolled(b: &Bench, old: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (update, pods) = revisions(&b.env).await;
        if update != old
            && pods.len() == 3
            && pods.values().all(|r| r.as_deref() == Some(update.as_str()))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pods {pods:?} not rolled to {update}\n{}",
            b.dump().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Hold: the StatefulSet's events (and GETs) withheld while a config change
/// gives it a new update revision: the operator rolls no pod it cannot see
/// as outdated; once released, it rolls them all.
pub(crate) async fn statefulset_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    let (old_revision, _) = revisions(&b.env).await;
    b.proxy
        .hold(&b.env.client, Target::stateful_sets().named(NAME))
        .await;
    let generation = roll_config(&b.env, b.starts).await;
    let seen = b.window(before).await;
    let rolls: Vec<Intent> = intents(&seen)
        .into_iter()
        .filter(|i| matches!(i, Intent::RollPod { .. }))
        .collect();
    assert!(
        rolls.is_empty(),
        "pods rolled while the StatefulSet's new revision was held: {rolls:?}\n{}",
        b.dump().await
    );
    let withheld = b.proxy.withheld();
    b.proxy.release();
    wait_rolled(b, &old_revision).await;
    b.settle_handover().await;
    let at = b
        .wait_event(
            before,
            "the new generation",
            |e| matches!(e, Event::SpecChanged { generation: g, .. } if *g == generation),
        )
        .await;
    b.check(at).await;
    format!(
        "no pod rolled off {old_revision} while held ({withheld} events withheld); rolled after the release"
    )
}

/// Stale: after a roll, the operator restarted onto an API server whose
/// StatefulSet still shows the old update revision: it must not roll the
/// pods (back, or again).
pub(crate) async fn statefulset_stale(b: &mut Bench) -> String {
    let view = b.proxy.record(&b.env.client, Target::stateful_sets()).await;
    let (old_revision, _) = revisions(&b.env).await;
    roll_config(&b.env, b.starts + 1).await;
    wait_rolled(b, &old_revision).await;
    b.settle_handover().await;
    b.check(0).await;
    let pods_before = uids(&b.env).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "statefulset-stale").await;
    assert_eq!(
        uids(&b.env).await,
        pods_before,
        "pods replaced while the StatefulSet was stale\n{}",
        b.dump().await
    );
    let doctored = b.proxy.doctored();
    b.proxy.reconnect();
    b.check(0).await;
    format!("the old update revision rolled nothing ({doctored} answers from the older view)")
}
