//! Operator defaults and plans end to end (issue 39): the operator's
//! `valkey-operator-defaults`, a namespace's, a plan and a cluster's own
//! spec combine in that order, field by field, as `kubectl apply` writes
//! them; an unknown plan is refused with the known ones; an invalid
//! defaults object says why in its status and changes no cluster; a change
//! of the defaults rolls the clusters it reaches at most
//! `maxClustersRolling` at a time, each judged and journaled once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use logbook_crds::{ValkeyCluster, ValkeyOperatorDefaults};
use operator_common::*;

fn create_namespace(env: &Env, name: &str) -> impl std::future::Future<Output = ()> {
    let api: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    async move {
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating namespace: {e}"),
        }
    }
}

fn standalone(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: valkey.logbook.dev/v1beta1\nkind: ValkeyCluster\nmetadata:\n  name: {name}\nspec:\n  topology: Standalone\n{extra}"
    )
}

fn defaults_yaml(spec: &str) -> String {
    format!(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyOperatorDefaults\nmetadata:\n  name: valkey-operator-defaults\nspec:\n{spec}"
    )
}

/// Waits until `pred` holds for ValkeyCluster `name` in `namespace`.
async fn wait_in(
    env: &Env,
    namespace: &str,
    name: &str,
    what: &str,
    pred: impl Fn(&ValkeyCluster) -> bool,
) -> ValkeyCluster {
    let api: Api<ValkeyCluster> = Api::namespaced(env.client.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(vkc)) = api.get_opt(name).await
            && pred(&vkc)
        {
            return vkc;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {namespace}/{name}: {what}; it shows {:?}\n--- operator log ---\n{}",
            api.get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|v| v.status),
            env.logs.tail(40).join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(vkc: &ValkeyCluster) -> bool {
    is_ready(vkc, 1)
}

fn field_from(vkc: &ValkeyCluster, field: &str) -> Option<String> {
    vkc.status
        .as_ref()?
        .defaults
        .as_ref()?
        .fields
        .iter()
        .find(|f| f.field == field)
        .map(|f| f.from.clone())
}

async fn config_text(env: &Env, namespace: &str, cluster: &str) -> String {
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
    let cm = maps.get(&format!("{cluster}-config")).await.unwrap();
    cm.data
        .unwrap_or_default()
        .into_values()
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_namespace_plan_and_own_spec_combine_in_order() {
    let env = Env::start("defaults").await;
    create_namespace(&env, "shop").await;
    create_namespace(&env, "broken").await;
    // The operator's defaults (its namespace is NS): every cluster.
    kubectl_apply(
        &env,
        NS,
        &defaults_yaml(
            "  template:\n    config:\n      maxmemory-policy: allkeys-lru\n    labels:\n      team: platform\n      tier: gold\n  plans:\n    small:\n      config:\n        maxmemory-policy: volatile-lru\n    big:\n      storage:\n        size: 2Gi\n",
        ),
        "the operator's defaults",
    );
    // The shop namespace's: over the operator's.
    kubectl_apply(
        &env,
        "shop",
        &defaults_yaml("  template:\n    labels:\n      team: shop\n"),
        "shop's defaults",
    );
    // A cluster of shop on plan small, with a label of its own.
    kubectl_apply(
        &env,
        "shop",
        &standalone("cart", "  plan: small\n  labels:\n    tier: silver\n"),
        "cart",
    );
    let cart = wait_in(&env, "shop", "cart", "Ready with its defaults", |v| {
        ready(v) && field_from(v, "/labels/team").is_some()
    })
    .await;
    let defaults = cart.status.as_ref().unwrap().defaults.clone().unwrap();
    assert_eq!(defaults.plan.as_deref(), Some("small"));
    assert_eq!(
        field_from(&cart, "/config/maxmemory-policy").as_deref(),
        Some("plan small"),
        "the plan over both defaults: {defaults:?}"
    );
    assert_eq!(
        field_from(&cart, "/labels/team").as_deref(),
        Some("namespace defaults shop/valkey-operator-defaults"),
        "the namespace's over the operator's"
    );
    assert_eq!(
        field_from(&cart, "/labels/tier"),
        None,
        "its own: {defaults:?}"
    );
    assert!(!defaults.rolling);
    // What the pods run is the effective spec: its labels, its config.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "shop");
    let pod = pods.get("cart-0").await.unwrap();
    let labels = pod.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("shop"));
    assert_eq!(labels.get("tier").map(String::as_str), Some("silver"));
    let config = config_text(&env, "shop", "cart").await;
    assert!(
        config.contains("maxmemory-policy volatile-lru"),
        "the plan's policy: {config}"
    );

    // The same from the kubectl plugin, each field with its source.
    let shown = kubectl_valkey(
        &env,
        &["defaults", "cart", "-n", "shop", "--operator-namespace", NS],
    )
    .await;
    for line in [
        "Plan: small",
        "/config/maxmemory-policy",
        "\"volatile-lru\"",
        "namespace defaults shop/valkey-operator-defaults",
        "its own spec",
    ] {
        assert!(shown.contains(line), "{line:?} in:\n{shown}");
    }

    // An unknown plan: refused, naming the known ones, nothing created.
    kubectl_apply(&env, NS, &standalone("lost", "  plan: gold\n"), "lost");
    let lost = wait_in(&env, NS, "lost", "SpecValid=False", |v| {
        v.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "SpecValid" && c.status == "False")
        })
    })
    .await;
    let message = lost
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "SpecValid")
        .unwrap()
        .message;
    assert!(
        message.contains("plan \"gold\" is not defined; the plans defined are: big, small"),
        "{message}"
    );
    let sets: Api<StatefulSet> = Api::namespaced(env.client.clone(), NS);
    assert!(
        sets.get_opt("lost").await.unwrap().is_none(),
        "nothing created"
    );

    // An invalid defaults object: its status says why; its clusters keep
    // their spec (none here) and are told.
    kubectl_apply(
        &env,
        "broken",
        &defaults_yaml("  template:\n    replicaz: 3\n"),
        "a misspelt default",
    );
    let objects: Api<ValkeyOperatorDefaults> = Api::namespaced(env.client.clone(), "broken");
    env.eventually(
        Duration::from_secs(20),
        "the invalid defaults' status",
        || {
            let objects = objects.clone();
            async move {
                objects
                    .get("valkey-operator-defaults")
                    .await
                    .ok()
                    .and_then(|d| d.status)
                    .is_some_and(|s| {
                        s.conditions.iter().any(|c| {
                            c.type_ == "Valid"
                                && c.status == "False"
                                && c.message.contains("spec.template.replicaz: not a field")
                        })
                    })
            }
        },
    )
    .await;
    kubectl_apply(&env, "broken", &standalone("kept", ""), "kept");
    wait_in(
        &env,
        "broken",
        "kept",
        "refused while its defaults are invalid",
        |v| {
            v.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "SpecValid"
                        && c.status == "False"
                        && c.message
                            .contains("broken/valkey-operator-defaults is invalid")
                })
            })
        },
    )
    .await;
    // The valid operator's defaults say so too, with their plans.
    let own: Api<ValkeyOperatorDefaults> = Api::namespaced(env.client.clone(), NS);
    let status = own
        .get("valkey-operator-defaults")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.plans.as_deref(), Some("big,small"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_defaults_rolls_one_cluster_at_a_time() {
    let mut env = Env::start("defaults-roll").await;
    kubectl_apply(
        &env,
        NS,
        &defaults_yaml(
            "  template:\n    config:\n      maxmemory-policy: allkeys-lru\n  maxClustersRolling: 1\n",
        ),
        "the operator's defaults",
    );
    let names = ["one", "two", "three"];
    for name in names {
        kubectl_apply(&env, NS, &standalone(name, ""), name);
    }
    for name in names {
        wait_in(&env, NS, name, "Ready", ready).await;
    }
    for name in names {
        assert!(
            config_text(&env, NS, name)
                .await
                .contains("maxmemory-policy allkeys-lru")
        );
    }
    // The defaults change: every cluster's spec changes, one at a time.
    kubectl_apply(
        &env,
        NS,
        &defaults_yaml(
            "  template:\n    config:\n      maxmemory-policy: allkeys-lfu\n  maxClustersRolling: 1\n",
        ),
        "the changed defaults",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut most_rolling, mut waited) = (0, false);
    loop {
        let listed = env.vkcs().list(&ListParams::default()).await.unwrap();
        let shown: Vec<_> = listed
            .items
            .iter()
            .filter_map(|v| v.status.as_ref()?.defaults.clone())
            .collect();
        most_rolling = most_rolling.max(shown.iter().filter(|d| d.rolling).count());
        waited |= shown.iter().any(|d| d.waiting.is_some());
        let mut done = true;
        for v in &listed.items {
            let name = v.metadata.name.clone().unwrap();
            done &= ready(v)
                && !v
                    .status
                    .as_ref()
                    .and_then(|s| s.defaults.as_ref())
                    .is_some_and(|d| d.rolling)
                && config_text(&env, NS, &name)
                    .await
                    .contains("maxmemory-policy allkeys-lfu");
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change did not reach every cluster: {shown:?}\n{}",
            env.logs.tail(40).join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(most_rolling, 1, "at most one cluster rolled at once");
    assert!(waited, "with three clusters and one turn, some waited");
    // Each cluster journaled the change once, as a change of its defaults,
    // at the generation it had, and decided no failover.
    let mut streams = Vec::new();
    for name in names {
        streams.push(env.stream(name).await);
    }
    env.stop_operator(Stop::Graceful).await;
    for (name, stream) in names.iter().zip(streams) {
        let events = env.journal_events(&stream).await;
        let after: Vec<_> = events
            .iter()
            .skip_while(|e| {
                !matches!(
                    &e.body,
                    logbook_journal::Event::SpecLayersObserved {
                        from_defaults: true,
                        ..
                    }
                )
            })
            .collect();
        let changes: Vec<_> = after
            .iter()
            .filter_map(|e| match &e.body {
                logbook_journal::Event::SpecLayersObserved {
                    generation,
                    from_defaults,
                    fingerprint,
                    ..
                } => Some((*generation, *from_defaults, fingerprint.is_some())),
                _ => None,
            })
            .collect();
        assert_eq!(changes, [(1, true, true)], "{name}: {changes:?}");
        let failovers = after
            .iter()
            .filter(|e| matches!(&e.body, logbook_journal::Event::ReplicaPromoted { .. }))
            .count();
        assert_eq!(failovers, 0, "{name}");
    }
    env.finish().await;
}

/// CRDs older than the operator (`helm upgrade` leaves a chart's `crds/`
/// as they were): the defaults are not served, and every cluster is run
/// with none, said in the log, not stalled waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_defaults_crd_clusters_run_with_no_defaults() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let mut env = Env::start_without_operator("defaults-absent").await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.delete(
        "valkeyoperatordefaults.valkey.logbook.dev",
        &Default::default(),
    )
    .await
    .unwrap();
    let objects: Api<ValkeyOperatorDefaults> = Api::namespaced(env.client.clone(), NS);
    env.eventually(
        Duration::from_secs(20),
        "the resource no longer served",
        || {
            let objects = objects.clone();
            async move {
                matches!(
                    objects.list(&ListParams::default()).await,
                    Err(kube::Error::Api(e)) if e.code == 404
                )
            }
        },
    )
    .await;
    env.start_operator();
    kubectl_apply(&env, NS, &standalone("plain", ""), "plain");
    let vkc = wait_in(&env, NS, "plain", "Ready", ready).await;
    assert!(vkc.status.unwrap().defaults.is_none());
    assert!(
        !env.logs
            .grep("the ValkeyOperatorDefaults resource is not served")
            .is_empty(),
        "said in the log"
    );
    env.finish().await;
}
