//! The plans of the owned objects the operator writes but never reads:
//! Services, ConfigMaps (its boot ConfigMap, and its journal's own) and
//! the PodDisruptionBudget.

#[allow(unused_imports)]
use super::*;

// ---- Service ---------------------------------------------------------------

/// Hold: the client Service's events withheld while a new label on every
/// object changes it (and rolls the pods): the operator, which never reads
/// its Services, carries the generation out without them.
pub(crate) async fn service_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    b.proxy
        .hold(&b.env.client, Target::services().named(NAME))
        .await;
    let label = format!("plan-{}", b.starts);
    let (old_revision, _) = revisions(&b.env).await;
    let vkc = b
        .env
        .patch(
            NAME,
            serde_json::json!({"spec": {"labels": {"stale-test": label}}}),
        )
        .await;
    let generation = vkc.metadata.generation.unwrap();
    wait_rolled(b, &old_revision).await;
    b.settle_handover().await;
    let at = b
        .wait_event(
            before,
            "the new generation",
            |e| matches!(e, Event::SpecChanged { generation: g, .. } if *g == generation),
        )
        .await;
    let withheld = b.proxy.withheld();
    assert!(withheld > 0, "the Service did not change: nothing was held");
    b.proxy.release();
    b.check(at).await;
    format!("generation {generation} rolled out with the Service's {withheld} events withheld")
}

/// Stale: the operator restarted onto an API server whose Services are
/// from before the last generation: it decides nothing (it reads no
/// Service, and the generation is applied).
pub(crate) async fn service_stale(b: &mut Bench) -> String {
    let view = b.proxy.record(&b.env.client, Target::services()).await;
    let label = format!("plan-{}", b.starts + 100);
    let (old_revision, _) = revisions(&b.env).await;
    b.env
        .patch(
            NAME,
            serde_json::json!({"spec": {"labels": {"stale-test": label}}}),
        )
        .await;
    wait_rolled(b, &old_revision).await;
    b.settle_handover().await;
    b.check(0).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "service-stale").await;
    b.proxy.reconnect();
    b.check(0).await;
    "older Services: nothing decided".to_owned()
}

// ---- ConfigMap -------------------------------------------------------------

/// Hold: the boot ConfigMap's events withheld during a switchover, which
/// rewrites it: the operator carries the switchover out without them.
pub(crate) async fn configmap_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    let old_primary = primary(&b.env.vkc(NAME).await);
    b.proxy
        .hold(
            &b.env.client,
            Target::config_maps().named(&format!("{NAME}-boot")),
        )
        .await;
    request_switchover(&b.env, NAME, "auto").await;
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
    let withheld = b.proxy.withheld();
    b.proxy.release();
    let primary = b.check(before).await;
    format!(
        "switchover {old_primary} -> {primary} with the boot ConfigMap's {withheld} events withheld"
    )
}

/// Stale: the journal itself read from an API server that lags: the
/// operator restarted onto ConfigMaps from before a switchover loads an
/// older journal; it must not act on it (an append from it cannot commit,
/// so nothing is decided) nor publish a status older than the one out.
pub(crate) async fn configmap_stale(b: &mut Bench) -> String {
    let view = b.proxy.record(&b.env.client, Target::config_maps()).await;
    let old_primary = primary(&b.env.vkc(NAME).await);
    request_switchover(&b.env, NAME, "auto").await;
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
    let now_primary = b.check(0).await;
    let published = journal_seq(&b.env.vkc(NAME).await);
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    // It cannot journal its takeover: wait for it to lead instead.
    let deadline = Instant::now() + Duration::from_secs(20);
    while b
        .env
        .logs
        .grep(&format!("[{instance}]"))
        .iter()
        .all(|l| !l.contains(" leading"))
    {
        assert!(
            Instant::now() < deadline,
            "{instance} did not lead\n{}",
            b.dump().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + WINDOW;
    while Instant::now() < deadline {
        let vkc = b.env.vkc(NAME).await;
        assert!(
            journal_seq(&vkc) >= published && primary(&vkc) == now_primary,
            "a status from the older journal was published: seq {} (was {published}), primary {} (is {now_primary})\n{}",
            journal_seq(&vkc),
            primary(&vkc),
            b.dump().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.journal.catch_up().await;
    let seen = b.journal.after(before).to_vec();
    assert!(
        seen.is_empty(),
        "appended while the journal was read stale:\n{}",
        summary(&seen)
    );
    b.proxy.reconnect();
    b.wait_takeover(&instance, before).await;
    b.check(0).await;
    format!(
        "journal read as of before the switchover to {now_primary}: nothing appended, the status stayed at seq >= {published}"
    )
}

// ---- PodDisruptionBudget ---------------------------------------------------

/// Hold: the PDB's events withheld while a new generation changes it: the
/// operator carries the generation out without them.
pub(crate) async fn pdb_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    b.proxy
        .hold(&b.env.client, Target::pod_disruption_budgets().named(NAME))
        .await;
    let generation = toggle_budget(&b.env).await;
    let at = b
        .wait_event(
            before,
            "the new generation",
            |e| matches!(e, Event::SpecChanged { generation: g, .. } if *g == generation),
        )
        .await;
    b.env
        .wait_status(
            NAME,
            Duration::from_secs(30),
            "Ready on the new generation",
            |v| is_ready(v, 3),
        )
        .await;
    let withheld = b.proxy.withheld();
    assert!(withheld > 0, "the PDB did not change: nothing was held");
    b.proxy.release();
    b.check(at).await;
    format!("generation {generation} applied with the PDB's {withheld} events withheld")
}

/// Stale: the operator restarted onto an API server whose PDB is from
/// before the last generation: it decides nothing.
pub(crate) async fn pdb_stale(b: &mut Bench) -> String {
    let view = b
        .proxy
        .record(&b.env.client, Target::pod_disruption_budgets())
        .await;
    let generation = toggle_budget(&b.env).await;
    let seq = b.seq().await;
    b.wait_event(
        seq,
        "the new generation",
        |e| matches!(e, Event::SpecChanged { generation: g, .. } if *g == generation),
    )
    .await;
    b.check(0).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "pdb-stale").await;
    b.proxy.reconnect();
    b.check(0).await;
    "older PDB: nothing decided".to_owned()
}
