//! Owned objects marked, and unbinding (issue 39), end to end with the
//! real kubectl: every object the operator makes carries the annotation
//! `valkey.logbook.dev/cr` naming its ValkeyCluster beside its owner
//! reference; a user who removes it from the StatefulSet takes the
//! cluster over (phase `Unbound`, the other objects' annotations removed,
//! nothing decided while it is), and putting it back rebinds the cluster
//! as it now is: a primary the user chose by hand is adopted, no pod is
//! restarted, and the journal tells the story.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ListParams;
use kube::{Resource, ResourceExt};
use logbook::resources::labels::OWNED_BY;
use logbook_crds::v1alpha1::ClusterPhase;
use logbook_journal::{Event, Intent, ReasonCode};
use operator_common::*;
use serde::de::DeserializeOwned;

const JOURNAL_LABEL: &str = "valkey.logbook.dev/journal";

/// Each object of `K` labelled with the cluster `name`: its name, whether
/// it carries the annotation naming the cluster, whether it is owned by
/// `uid`, and whether it is one of the journal's ConfigMaps.
async fn objects<K>(env: &Env, name: &str, uid: &str) -> Vec<(String, bool, bool, bool)>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    env.api::<K>()
        .list(&ListParams::default().labels(&format!("valkey.logbook.dev/cluster={name}")))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| {
            let meta = o.meta();
            (
                format!("{kind} {}", meta.name.clone().unwrap_or_default()),
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(OWNED_BY))
                    .is_some_and(|v| v == name),
                meta.owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid && o.kind == "ValkeyCluster"),
                meta.labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(JOURNAL_LABEL)),
            )
        })
        .collect()
}

async fn all_objects(env: &Env, name: &str, uid: &str) -> Vec<(String, bool, bool, bool)> {
    let mut all = objects::<StatefulSet>(env, name, uid).await;
    all.extend(objects::<Service>(env, name, uid).await);
    all.extend(objects::<ConfigMap>(env, name, uid).await);
    all.extend(objects::<Secret>(env, name, uid).await);
    all.extend(objects::<PodDisruptionBudget>(env, name, uid).await);
    all.extend(objects::<PersistentVolumeClaim>(env, name, uid).await);
    all
}

/// Each pod's uid and its Valkey container's restart count.
async fn pod_lives(env: &Env, name: &str) -> BTreeMap<String, (String, i32)> {
    env.pods(name)
        .await
        .iter()
        .map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
            (p.name_any(), (p.uid().unwrap_or_default(), restarts))
        })
        .collect()
}

/// The user takes cluster `demo` over with kubectl; waits for `Unbound`.
async fn unbind(env: &Env) {
    kubectl(
        env,
        NS,
        &["annotate", "statefulset", "demo", &format!("{OWNED_BY}-")],
    );
    env.wait_status("demo", Duration::from_secs(15), "phase Unbound", |v| {
        v.status.as_ref().and_then(|s| s.phase) == Some(ClusterPhase::Unbound)
    })
    .await;
}

async fn k8s_event(env: &Env, reason: &str) -> Option<String> {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.note.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbinding_and_rebinding_keep_every_pod_and_adopt_the_users_primary() {
    let mut env = Env::start("binding").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let uid = vkc.uid().unwrap();
    let old = primary(&vkc);

    // Every object made for the cluster is marked and owned (the claims
    // are the StatefulSet's, kept when the cluster is deleted: marked,
    // not owned).
    let marked = all_objects(&env, "demo", &uid).await;
    for kind in [
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
    ] {
        assert!(
            marked
                .iter()
                .any(|(n, ..)| n.starts_with(&format!("{kind} "))),
            "no {kind} of the cluster: {marked:?}"
        );
    }
    for (object, annotated, owned, _) in &marked {
        assert!(annotated, "{object} lacks {OWNED_BY}=demo");
        assert!(
            *owned || object.starts_with("PersistentVolumeClaim "),
            "{object} has no owner reference to the cluster"
        );
    }
    let lives = pod_lives(&env, "demo").await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "before", 500).await;

    // The user takes the cluster over.
    unbind(&env).await;
    env.eventually(
        Duration::from_secs(15),
        "the other objects released",
        || {
            let env = &env;
            let uid = uid.clone();
            async move {
                all_objects(env, "demo", &uid)
                    .await
                    .iter()
                    .all(|(_, annotated, _, journal)| !annotated || *journal)
            }
        },
    )
    .await;
    let note = k8s_event(&env, "Unbound").await.expect("no Unbound Event");
    assert!(note.contains(OWNED_BY), "{note}");
    let vkc = env.vkc("demo").await;
    let ready = vkc
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .unwrap();
    assert_eq!(ready.reason, "Unbound");
    assert!(ready.message.contains(OWNED_BY), "{}", ready.message);

    // By hand, the user makes a replica the primary. Bound, the operator
    // would point it back at its primary; unbound, it leaves it.
    let pods = env.pods("demo").await;
    let chosen = pods
        .iter()
        .map(ResourceExt::name_any)
        .find(|p| *p != old)
        .unwrap();
    let chosen_addr = env.pod_addr(&chosen).await;
    let chosen_ip = chosen_addr.rsplit_once(':').unwrap().0.to_owned();
    let admin = |addr: String, args: Vec<String>| {
        let password = password.clone();
        async move {
            let mut con = connect(&addr, &password).await;
            let mut cmd = redis::cmd(&args[0]);
            for a in &args[1..] {
                cmd.arg(a);
            }
            let _: redis::Value = cmd.query_async(&mut con).await.unwrap();
        }
    };
    admin(
        chosen_addr.clone(),
        vec!["REPLICAOF".into(), "NO".into(), "ONE".into()],
    )
    .await;
    for pod in &pods {
        let name = pod.name_any();
        if name != chosen {
            admin(
                env.pod_addr(&name).await,
                vec!["REPLICAOF".into(), chosen_ip.clone(), "6379".into()],
            )
            .await;
        }
    }
    write_keys(&chosen_addr, &password, "during", 500).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (kind, follows) = role(&env.pod_addr(&old).await, &password).await;
    assert_eq!(
        (kind.as_str(), follows.as_deref()),
        ("slave", Some(chosen_ip.as_str())),
        "the operator undid the user's change while unbound"
    );

    // Bound again: taken over as it is.
    kubectl(
        &env,
        NS,
        &[
            "annotate",
            "statefulset",
            "demo",
            &format!("{OWNED_BY}=demo"),
        ],
    );
    env.wait_status(
        "demo",
        Duration::from_secs(30),
        "Ready with the user's primary",
        |v| {
            is_ready(v, 3)
                && v.status.as_ref().and_then(|s| s.primary.clone()) == Some(chosen.clone())
        },
    )
    .await;
    env.eventually(Duration::from_secs(15), "every object marked again", || {
        let env = &env;
        let uid = uid.clone();
        async move {
            all_objects(env, "demo", &uid)
                .await
                .iter()
                .all(|(_, annotated, ..)| *annotated)
        }
    })
    .await;
    assert!(
        k8s_event(&env, "Rebound").await.is_some(),
        "no Rebound Event"
    );
    let labels = env.role_labels("demo").await;
    assert_eq!(labels[&chosen].as_deref(), Some("primary"), "{labels:?}");
    assert_eq!(pod_lives(&env, "demo").await, lives, "a pod was restarted");
    // The client Service reaches the user's primary once its endpoints
    // follow the label (the real control plane's EndpointSlice
    // controller and proxy take a moment after the status says so).
    let service = env.service_addr("demo").await;
    env.eventually(
        Duration::from_secs(20),
        "the client Service reaching the primary",
        || {
            let (service, password) = (service.clone(), password.clone());
            async move {
                try_role(&service, &password)
                    .await
                    .is_some_and(|(kind, _)| kind == "master")
            }
        },
    )
    .await;
    assert_eq!(count_missing(&service, &password, "before", 500).await, 0);
    assert_eq!(count_missing(&service, &password, "during", 500).await, 0);

    // The journal tells the story: unbound, released, nothing
    // decided until bound again, then the objects marked and the labels
    // following the user's primary, with no fence, roll or failover.
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let unbound_at = events
        .iter()
        .position(|e| {
            matches!(
                e.body,
                Event::BindingObserved {
                    annotated: false,
                    ..
                }
            )
        })
        .expect("no BindingObserved of the unbinding");
    let rebound_at = events
        .iter()
        .rposition(|e| {
            matches!(
                e.body,
                Event::BindingObserved {
                    annotated: true,
                    ..
                }
            )
        })
        .unwrap();
    assert!(rebound_at > unbound_at);
    let decided: Vec<(usize, &Intent, &ReasonCode)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.body {
            Event::Decided { intents } => Some(
                intents
                    .iter()
                    .map(move |p| (i, &p.intent, &p.reason.code))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .filter(|(i, ..)| *i > unbound_at)
        .collect();
    let while_unbound: Vec<_> = decided.iter().filter(|(i, ..)| *i < rebound_at).collect();
    // The objects are released, and nothing else is decided. A release is
    // decided again only after one that did not succeed (on a loaded
    // machine an API call may fail): each outcome is shown.
    let releases: Vec<(uuid::Uuid, Option<&Event>)> = events[unbound_at..rebound_at]
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().map(|p| p.intent_id)),
            _ => None,
        })
        .flatten()
        .map(|id| {
            let outcome = events.iter().map(|e| &e.body).find(|b| match b {
                Event::IntentSucceeded { intent_id, .. }
                | Event::IntentFailed { intent_id, .. }
                | Event::IntentAbandoned { intent_id, .. } => *intent_id == id,
                _ => false,
            });
            (id, outcome)
        })
        .collect();
    let succeeded = |o: &Option<&Event>| matches!(o, Some(Event::IntentSucceeded { .. }));
    eprintln!("releases while unbound: {releases:?}");
    assert!(
        !while_unbound.is_empty()
            && while_unbound.iter().all(|(_, intent, code)| matches!(
                (intent, code),
                (Intent::ReleaseObjects, ReasonCode::Unbound { .. })
            ))
            && releases.split_last().is_some_and(|(last, before)| {
                succeeded(&last.1) && !before.iter().any(|(_, o)| succeeded(o))
            }),
        "decided while unbound: {while_unbound:?}, with the outcomes {releases:?}"
    );
    // The user's primary is followed, never replaced: no other pod is
    // promoted.
    assert!(
        !decided.iter().any(
            |(_, intent, _)| matches!(intent, Intent::PromoteReplica { pod, .. } if *pod != chosen)
        ),
        "another primary was promoted: {decided:?}"
    );
    assert!(
        decided.iter().any(
            |(_, intent, code)| matches!(intent, Intent::ApplyResources { .. })
                && matches!(code, ReasonCode::Rebound)
        ),
        "the objects were not marked again: {decided:?}"
    );
    assert!(
        !decided.iter().any(|(_, intent, _)| matches!(
            intent,
            Intent::FenceNode { .. } | Intent::RollPod { .. }
        )),
        "fenced or rolled: {decided:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_of_an_owned_object_is_put_back_and_journaled_as_drift() {
    let mut env = Env::start("drift").await;
    env.apply_yaml(&replication_yaml("demo", 2)).await;
    env.wait_ready("demo", 2, Duration::from_secs(60)).await;
    // Let a second pass so the edits are newer than every write of the
    // operator's (managedFields times are in seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // A `kubectl edit` of the StatefulSet, put back; then a `kubectl
    // patch` of the client Service's selector, put back (one at a time: a
    // revert applies every object, so two edits at once may be put back
    // together, the second before it is seen).
    let sets: kube::Api<StatefulSet> = env.api();
    let services: kube::Api<Service> = env.api();
    kubectl_with(
        &env,
        NS,
        &["edit", "statefulset", "demo"],
        &[("KUBE_EDITOR", "sed -i s/OnDelete/RollingUpdate/")],
    );
    env.eventually(Duration::from_secs(20), "the StatefulSet put back", || {
        let sets = sets.clone();
        async move {
            let sts = sets.get("demo").await.unwrap();
            sts.spec
                .and_then(|s| s.update_strategy)
                .and_then(|u| u.type_)
                .as_deref()
                == Some("OnDelete")
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kubectl(
        &env,
        NS,
        &[
            "patch",
            "service",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"selector":{"valkey.logbook.dev/role":"replica"}}}"#,
        ],
    );
    env.eventually(Duration::from_secs(20), "the Service put back", || {
        let services = services.clone();
        async move {
            let svc = services.get("demo").await.unwrap();
            svc.spec
                .and_then(|s| s.selector)
                .and_then(|s| s.get("valkey.logbook.dev/role").cloned())
                .as_deref()
                == Some("primary")
        }
    })
    .await;
    // A key added to the selector (the Service then selects no pod): the
    // selector is put back whole, as the operator wrote it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kubectl(
        &env,
        NS,
        &[
            "patch",
            "service",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"selector":{"x":"y"}}}"#,
        ],
    );
    env.eventually(
        Duration::from_secs(20),
        "the Service's added selector key removed",
        || {
            let services = services.clone();
            async move {
                let svc = services.get("demo").await.unwrap();
                svc.spec.and_then(|s| s.selector).is_some_and(|s| {
                    !s.contains_key("x") && s.contains_key("valkey.logbook.dev/role")
                })
            }
        },
    )
    .await;
    // `kubectl scale` (the `/scale` subresource): the count put back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kubectl(&env, NS, &["scale", "statefulset", "demo", "--replicas=3"]);
    env.eventually(
        Duration::from_secs(20),
        "the StatefulSet's count put back",
        || {
            let sets = sets.clone();
            async move {
                let sts = sets.get("demo").await.unwrap();
                sts.spec.and_then(|s| s.replicas) == Some(2)
            }
        },
    )
    .await;
    let note = k8s_event(&env, "Drift").await.expect("no Drift Event");
    assert!(note.contains("kubectl"), "{note}");
    // Nothing more once put back.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let drifts: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::DriftObserved { object, by, .. } => Some((object.clone(), by.clone())),
            _ => None,
        })
        .collect();
    assert!(
        drifts.contains(&("StatefulSet demo".to_owned(), "kubectl-edit".to_owned())),
        "{drifts:?}"
    );
    assert!(
        drifts.contains(&("Service demo".to_owned(), "kubectl-patch".to_owned())),
        "{drifts:?}"
    );
    assert!(
        drifts.contains(&("StatefulSet demo".to_owned(), "kubectl".to_owned())),
        "the scale was not journaled as drift: {drifts:?}"
    );
    assert!(
        drifts.len() <= 4,
        "drift journaled more than once: {drifts:?}"
    );
    let reverts = events
        .iter()
        .filter(|e| match &e.body {
            Event::Decided { intents } => intents.iter().any(|p| {
                matches!(p.intent, Intent::ApplyResources { .. })
                    && matches!(p.reason.code, ReasonCode::Drift { .. })
            }),
            _ => false,
        })
        .count();
    assert_eq!(reverts, 4, "one revert per edit");
    env.finish().await;
}

/// `POST /validate` of `review` to the webhook at `addr` over TLS, trusting
/// `ca_pem` for `name`; the answer's `response`.
async fn ask_webhook(
    addr: std::net::SocketAddr,
    name: &str,
    ca_pem: &str,
    review: &serde_json::Value,
) -> serde_json::Value {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = connector.connect(server, tcp).await.unwrap();
    let body = review.to_string();
    let request = format!(
        "POST /validate HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    json["response"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_a_hand_edit_of_an_owned_object() {
    let mut env = Env::start_without_operator("webhook").await;
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let configuration = "logbook-default-owned-objects";
    // The chart's configuration, calling the operator by address (it runs
    // beside the API server here), refusing while it does not answer.
    let hook: k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": configuration},
            "webhooks": [{
                "name": "owned-objects.valkey.logbook.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "objectSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "logbook"}},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["UPDATE", "DELETE"], "resources": ["statefulsets"],
                    "scope": "Namespaced"}],
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate")},
            }],
        }))
        .unwrap();
    let hooks: kube::Api<
        k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    > = kube::Api::all(env.client.clone());
    hooks
        .create(&kube::api::PostParams::default(), &hook)
        .await
        .unwrap();
    env.webhook = Some(local_webhook(port, Some(configuration), &[]));
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 2)).await;
    env.wait_ready("demo", 2, Duration::from_secs(60)).await;

    // The operator's CA is what the configuration trusts.
    let secret: kube::Api<Secret> = env.api();
    let ca = secret
        .get("logbook-webhook-tls")
        .await
        .unwrap()
        .data
        .unwrap()["ca.crt"]
        .0
        .clone();
    let bundle = hooks.get(configuration).await.unwrap().webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap()
        .0;
    assert_eq!(bundle, ca);
    let ca = String::from_utf8(ca).unwrap();

    // Asked directly, over TLS, as the API server asks.
    let sets: kube::Api<StatefulSet> = env.api();
    let old = serde_json::to_value(sets.get("demo").await.unwrap()).unwrap();
    let mut new = old.clone();
    new["spec"]["updateStrategy"]["type"] = serde_json::json!("RollingUpdate");
    let review = |user: &str| {
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "UPDATE", "name": "demo", "namespace": NS,
                "kind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
                "userInfo": {"username": user, "groups": ["system:masters"]},
                "oldObject": old, "object": new}})
    };
    let refused = ask_webhook(addr, "127.0.0.1", &ca, &review("admin")).await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert!(
        refused["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.updateStrategy"),
        "{refused}"
    );
    let operator = ask_webhook(addr, "127.0.0.1", &ca, &review(&operator_user(NS))).await;
    assert_eq!(operator["allowed"], true, "{operator}");

    // The API server calls it (the real one, and localkube as it does): a
    // `kubectl edit` by the admin is refused, saying why, and nothing
    // changes.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join(".tools/bin/kubectl"))
        .env("KUBE_EDITOR", "sed -i s/OnDelete/RollingUpdate/")
        .arg("--kubeconfig")
        .arg(env.write_kubeconfig())
        .args(["--namespace", NS, "edit", "statefulset", "demo"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the edit went through");
    assert!(stderr.contains("denied the request"), "{stderr}");
    assert!(stderr.contains("managed by Logbook"), "{stderr}");
    let sts = sets.get("demo").await.unwrap();
    assert_eq!(
        sts.spec.unwrap().update_strategy.unwrap().type_.as_deref(),
        Some("OnDelete")
    );
    // The unbinding goes through (with the kubectl plugin); then the
    // StatefulSet is the user's.
    let said = kubectl_valkey(&env, &["unbind", "demo"]).await;
    assert!(said.contains("unbound"), "{said}");
    env.wait_status("demo", Duration::from_secs(15), "phase Unbound", |v| {
        v.status.as_ref().and_then(|s| s.phase) == Some(ClusterPhase::Unbound)
    })
    .await;
    kubectl_with(
        &env,
        NS,
        &["edit", "statefulset", "demo"],
        &[("KUBE_EDITOR", "sed -i s/OnDelete/RollingUpdate/")],
    );
    // Bound again, the operator's spec is back in force.
    let said = kubectl_valkey(&env, &["bind", "demo"]).await;
    assert!(said.contains("bound"), "{said}");
    env.eventually(Duration::from_secs(30), "bound, the edit put back", || {
        let sets = sets.clone();
        async move {
            sets.get("demo")
                .await
                .unwrap()
                .spec
                .and_then(|s| s.update_strategy)
                .and_then(|u| u.type_)
                .as_deref()
                == Some("OnDelete")
        }
    })
    .await;
    env.finish().await;
}
