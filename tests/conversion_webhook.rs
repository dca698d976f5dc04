//! The upgrade to v1beta1 and the conversion webhook (issue 39), called
//! by the real kube-apiserver over TLS: a cluster stored at v1alpha1
//! under the CRD of the releases before (v1alpha1 alone) is served at
//! v1beta1 once the CRD serves both, v1beta1 stored, converted through
//! the operator's webhook, whose CA the operator writes into the CRD; the
//! operator migrates it (written again at v1beta1, its generation kept,
//! v1alpha1 out of `storedVersions`); a cluster written in either version
//! is read in the other as `logbook_crds::conversion` says; the operator
//! (which speaks v1beta1, the stored version) publishes their status.
//!
//! On both tiers: the real API server calls it in `make test`'s
//! Kubernetes tier, localkube (which calls conversion webhooks as the real
//! server does, docs/localkube.md) in the unit tier.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, WebhookClientConfig,
};
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use logbook_crds::ClusterPhase;
use operator_common::{
    Env, NS, Stop, free_port, kubectl, kubectl_apply, kubectl_apply_output, local_webhook,
    served_certificate,
};
use serde_json::{Value, json};

const CRD: &str = "valkeyclusters.valkey.logbook.dev";

fn get_json(env: &Env, resource: &str, name: &str) -> Value {
    serde_json::from_str(&kubectl(env, NS, &["get", resource, name, "-o", "json"])).unwrap()
}

/// The CRD `CRD` as `crd` says, replacing the one installed: deleted
/// and made again (the API server refuses to drop a version objects may
/// be stored at, so a test cannot go back to an older CRD in place), then
/// waited for until it serves every version it names.
async fn reinstall_crd(env: &Env, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.delete(CRD, &DeleteParams::default()).await.unwrap();
    env.eventually(Duration::from_secs(60), "the CRD deleted", || {
        let crds = crds.clone();
        async move { matches!(crds.get_opt(CRD).await, Ok(None)) }
    })
    .await;
    crds.create(&PostParams::default(), crd).await.unwrap();
    for version in &crd.spec.versions {
        let resource = ApiResource {
            group: "valkey.logbook.dev".to_owned(),
            version: version.name.clone(),
            api_version: format!("valkey.logbook.dev/{}", version.name),
            kind: "ValkeyCluster".to_owned(),
            plural: "valkeyclusters".to_owned(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), NS, &resource);
        env.eventually(
            Duration::from_secs(60),
            &format!("valkeyclusters served at {}", version.name),
            || {
                let api = api.clone();
                async move { api.list(&ListParams::default()).await.is_ok() }
            },
        )
        .await;
    }
}

/// `storedVersions` of the ValkeyCluster CRD.
async fn stored_versions(env: &Env) -> Vec<String> {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.get(CRD)
        .await
        .unwrap()
        .status
        .and_then(|s| s.stored_versions)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_api_server_converts_valkeyclusters_through_the_operator() {
    let mut env = Env::start_without_operator("conversion").await;
    let port = free_port();

    // The CRD of the releases before v1beta1: v1alpha1 alone, stored.
    reinstall_crd(
        &env,
        &logbook_crds::crdgen::valkeycluster_crd_v1alpha1_only(),
    )
    .await;
    assert_eq!(stored_versions(&env).await, ["v1alpha1"]);

    // A cluster stored at v1alpha1 before the upgrade, paused.
    kubectl_apply(
        &env,
        NS,
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: before
spec:
  topology: Cluster
  image: valkey/valkey:9.1
  shards: 4
  paused: true
",
        "a cluster stored at v1alpha1",
    );
    let generation = get_json(&env, "valkeyclusters.v1alpha1.valkey.logbook.dev", "before")
        ["metadata"]["generation"]
        .clone();

    // The upgrade: the CRD of both versions, v1beta1 stored, calling the
    // operator by address (it runs beside the API server here), with no
    // caBundle yet: the operator writes its own CA there.
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut crd = logbook_crds::crdgen::valkeycluster_crd_with_conversion(WebhookClientConfig {
        url: Some(format!("https://127.0.0.1:{port}/convert")),
        ..WebhookClientConfig::default()
    });
    crd.metadata.resource_version = crds.get(CRD).await.unwrap().metadata.resource_version;
    crds.replace(CRD, &PostParams::default(), &crd)
        .await
        .unwrap();

    env.webhook = Some(local_webhook(port, None, &[CRD]));
    env.start_operator();
    env.eventually(
        Duration::from_secs(60),
        "the operator's CA in the CRD",
        || {
            let crds = crds.clone();
            let secrets: Api<Secret> = env.api();
            async move {
                let Ok(Some(secret)) = secrets.get_opt("logbook-webhook-tls").await else {
                    return false;
                };
                let ca = secret.data.unwrap()["ca.crt"].0.clone();
                let crd = crds.get(CRD).await.unwrap();
                crd.spec
                    .conversion
                    .and_then(|c| c.webhook)
                    .and_then(|w| w.client_config)
                    .and_then(|c| c.ca_bundle)
                    .is_some_and(|b| b.0 == ca)
            }
        },
    )
    .await;

    // The operator migrates what was stored at v1alpha1: each object
    // written again at v1beta1, then v1alpha1 out of storedVersions. The
    // object's spec is unchanged, and so is its generation.
    env.eventually(
        Duration::from_secs(60),
        "storedVersions trimmed to v1beta1",
        || async { stored_versions(&env).await == ["v1beta1"] },
    )
    .await;
    // Its log says so (written after the trim: waited for). The one
    // object is listed; written again by the migration, or by the
    // operator's own status write if that came first (a 409 to the
    // migration's guarded patch), it is stored at v1beta1 either way.
    env.eventually(Duration::from_secs(10), "the migration logged", || async {
        env.logs
            .grep("the objects stored at an older version are migrated")
            .iter()
            .any(|l| l.contains("listed=1"))
    })
    .await;
    let migrated = get_json(&env, "valkeyclusters.v1beta1.valkey.logbook.dev", "before");
    assert_eq!(migrated["metadata"]["generation"], generation, "{migrated}");

    // The cluster stored before the upgrade is served at v1beta1,
    // converted from the version it was stored at, and still at v1alpha1.
    let before = get_json(&env, "valkeyclusters.v1beta1.valkey.logbook.dev", "before");
    assert_eq!(before["apiVersion"], "valkey.logbook.dev/v1beta1");
    assert_eq!(
        before["spec"]["image"],
        json!({"repository": "valkey/valkey", "tag": "9.1"})
    );
    assert_eq!(before["spec"]["cluster"], json!({"shards": 4}));
    let alpha = get_json(&env, "valkeyclusters.v1alpha1.valkey.logbook.dev", "before");
    assert_eq!(alpha["spec"]["shards"], 4);
    let listed: Value = serde_json::from_str(&kubectl(
        &env,
        NS,
        &[
            "get",
            "valkeyclusters.v1beta1.valkey.logbook.dev",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["apiVersion"] == "valkey.logbook.dev/v1beta1"
                && i["spec"].get("shards").is_none()),
        "{listed}"
    );

    // Written at v1alpha1 as users wrote it, paused (it need not run):
    // stored at v1beta1, read there as v1beta1 says it.
    kubectl_apply(
        &env,
        NS,
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: old
spec:
  topology: Cluster
  image: valkey/valkey:8.0
  imagePullPolicy: IfNotPresent
  shards: 3
  replicasPerShard: 1
  clusterNodeTimeoutMilliseconds: 2000
  paused: true
",
        "a v1alpha1 cluster",
    );
    let beta = get_json(&env, "valkeyclusters.v1beta1.valkey.logbook.dev", "old");
    assert_eq!(beta["apiVersion"], "valkey.logbook.dev/v1beta1");
    assert_eq!(
        beta["spec"]["image"],
        json!({"repository": "valkey/valkey", "tag": "8.0", "pullPolicy": "IfNotPresent"})
    );
    assert_eq!(
        beta["spec"]["cluster"],
        json!({"shards": 3, "replicasPerShard": 1, "nodeTimeoutMilliseconds": 2000})
    );
    assert!(beta["spec"].get("shards").is_none(), "{beta}");
    // And read back at v1alpha1, as it was written.
    let alpha = get_json(&env, "valkeyclusters.v1alpha1.valkey.logbook.dev", "old");
    assert_eq!(alpha["spec"]["image"], "valkey/valkey:8.0");
    assert_eq!(alpha["spec"]["shards"], 3);
    assert_eq!(alpha["spec"]["clusterNodeTimeoutMilliseconds"], 2000);

    // Written at v1beta1, read at v1alpha1.
    kubectl_apply(
        &env,
        NS,
        "apiVersion: valkey.logbook.dev/v1beta1
kind: ValkeyCluster
metadata:
  name: new
spec:
  topology: Cluster
  image:
    repository: valkey/valkey
    tag: \"9.1\"
  cluster:
    shards: 2
    replicasPerShard: 0
  paused: true
",
        "a v1beta1 cluster",
    );
    let alpha = get_json(&env, "valkeyclusters.v1alpha1.valkey.logbook.dev", "new");
    assert_eq!(alpha["spec"]["image"], "valkey/valkey:9.1");
    assert_eq!(alpha["spec"]["shards"], 2);
    assert_eq!(alpha["spec"]["replicasPerShard"], 0);
    assert!(alpha["spec"].get("cluster").is_none(), "{alpha}");

    // v1beta1's own rules: a tag inside the repository is refused with
    // the reason (it would not convert back unchanged).
    let out = kubectl_apply_output(
        &env,
        NS,
        "apiVersion: valkey.logbook.dev/v1beta1\nkind: ValkeyCluster\nmetadata:\n  name: tagged\nspec:\n  image:\n    repository: valkey/valkey:9.1\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a tag inside image.repository was accepted"
    );
    assert!(stderr.contains("image.repository names no tag"), "{stderr}");

    // The webhook's certificate falls due (its Secret's expiry moved
    // within the last third of its life, as time would): issued again
    // under the same CA and served by the running operator, with no
    // restart; the API server, trusting that CA, keeps converting.
    let secrets: Api<Secret> = env.api();
    let served_before = served_fingerprint(port)
        .await
        .expect("a certificate served");
    let due = chrono::Utc::now() + chrono::Duration::days(1);
    secrets
        .patch(
            "logbook-webhook-tls",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                logbook::tls::NOT_AFTER_ANNOTATION: due.to_rfc3339()
            }}})),
        )
        .await
        .unwrap();
    env.eventually(
        Duration::from_secs(30),
        "the renewed certificate served",
        || {
            let secrets = secrets.clone();
            let before = served_before.clone();
            async move {
                let secret = secrets.get("logbook-webhook-tls").await.unwrap();
                let data = secret.data.unwrap_or_default();
                let stored = data
                    .get("tls.crt")
                    .and_then(|b| logbook::valkey::pem_fingerprint(&String::from_utf8_lossy(&b.0)));
                let served = served_fingerprint(port).await;
                served.is_some() && served != Some(before) && served == stored
            }
        },
    )
    .await;
    let alpha = get_json(&env, "valkeyclusters.v1alpha1.valkey.logbook.dev", "old");
    assert_eq!(alpha["spec"]["shards"], 3);

    // The operator reads both at v1beta1, with no webhook (its own
    // version, the one stored), and publishes their status.
    for name in ["old", "new"] {
        env.wait_status(name, Duration::from_secs(60), "phase Paused", |v| {
            v.status.as_ref().and_then(|s| s.phase) == Some(ClusterPhase::Paused)
        })
        .await;
    }
    let beta = get_json(&env, "valkeyclusters.v1beta1.valkey.logbook.dev", "old");
    assert_eq!(beta["status"]["phase"], "Paused", "{beta}");
    assert_eq!(stored_versions(&env).await, ["v1beta1"]);

    // With no operator to convert, the stored version still reads (the
    // cluster stored at v1alpha1 too: it was migrated); the other fails
    // saying why, and nothing is written half converted.
    env.stop_operator(Stop::Graceful).await;
    let beta = get_json(&env, "valkeyclusters.v1beta1.valkey.logbook.dev", "old");
    assert_eq!(beta["spec"]["cluster"]["shards"], 3);
    let before = get_json(&env, "valkeyclusters.v1beta1.valkey.logbook.dev", "before");
    assert_eq!(before["spec"]["cluster"]["shards"], 4);
    let out = std::process::Command::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl"),
    )
    .arg("--kubeconfig")
    .arg(env.write_kubeconfig())
    .args([
        "--namespace",
        NS,
        "get",
        "valkeyclusters.v1alpha1.valkey.logbook.dev",
        "old",
        "-o",
        "json",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "read at v1alpha1 with no webhook");
    assert!(
        stderr.contains(
            "conversion webhook for valkey.logbook.dev/v1beta1, Kind=ValkeyCluster failed"
        ),
        "{stderr}"
    );
    env.finish().await;
}

/// The fingerprint of the certificate served on 127.0.0.1:`port`.
async fn served_fingerprint(port: u16) -> Option<String> {
    tokio::task::spawn_blocking(move || served_certificate(&format!("127.0.0.1:{port}")))
        .await
        .unwrap()
}

/// `ValkeyCluster` at `version` (`v1alpha1`, `v1beta1`), as an untyped
/// object: read as the API server serves it at that version.
fn clusters_at(env: &Env, namespace: &str, version: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "valkey.logbook.dev".to_owned(),
        version: version.to_owned(),
        api_version: format!("valkey.logbook.dev/{version}"),
        kind: "ValkeyCluster".to_owned(),
        plural: "valkeyclusters".to_owned(),
    };
    Api::namespaced_with(env.client.clone(), namespace, &resource)
}

/// The CRD `CRD` replaced by `change` of the one installed.
async fn change_crd(env: &Env, change: impl FnOnce(&mut CustomResourceDefinition)) {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut crd = crds.get(CRD).await.unwrap();
    crd.status = None;
    change(&mut crd);
    crds.replace(CRD, &PostParams::default(), &crd)
        .await
        .unwrap();
}

/// The objects of the storage migration test: (namespace, name).
const MIGRATED: [(&str, &str); 3] = [(NS, "a"), (NS, "b"), ("other", "c")];
/// One more, created at v1beta1 (so never stored at v1alpha1): while the
/// conversion is cut, reading it at v1alpha1 fails, which shows the API
/// server has taken the cut.
const PROBE: &str = "probe";

/// Which of [`MIGRATED`] are stored at another version than the CRD's
/// storage version: the conversion pointed at an address where nothing
/// answers, each object read at the storage version (which needs no
/// conversion only if stored there), and the conversion put back.
async fn stored_elsewhere(env: &Env) -> Vec<String> {
    let saved = Api::<CustomResourceDefinition>::all(env.client.clone())
        .get(CRD)
        .await
        .unwrap()
        .spec
        .conversion;
    let dead = format!("https://127.0.0.1:{}/convert", free_port());
    change_crd(env, |crd| {
        let client = crd
            .spec
            .conversion
            .as_mut()
            .and_then(|c| c.webhook.as_mut())
            .and_then(|w| w.client_config.as_mut())
            .unwrap();
        client.url = Some(dead);
    })
    .await;
    let alpha = clusters_at(env, NS, "v1alpha1");
    env.eventually(Duration::from_secs(30), "the conversion cut", || {
        let alpha = alpha.clone();
        async move { alpha.get(PROBE).await.is_err() }
    })
    .await;
    let mut elsewhere = Vec::new();
    for (ns, name) in MIGRATED {
        if clusters_at(env, ns, "v1beta1").get(name).await.is_err() {
            elsewhere.push(format!("{ns}/{name}"));
        }
    }
    change_crd(env, |crd| crd.spec.conversion = saved).await;
    env.eventually(Duration::from_secs(30), "the conversion back", || {
        let alpha = alpha.clone();
        async move { alpha.get(PROBE).await.is_ok() }
    })
    .await;
    elsewhere
}

/// Every object of [`MIGRATED`] stored at v1alpha1 again, as before an
/// upgrade: the CRD made to store v1alpha1, each object written again
/// (a patch naming its `resourceVersion`, as the migration writes), and
/// v1beta1 stored again, with v1alpha1 left in `storedVersions`.
async fn store_at_v1alpha1(env: &Env) {
    let store = |version: &'static str| {
        move |crd: &mut CustomResourceDefinition| {
            for v in &mut crd.spec.versions {
                v.storage = v.name == version;
            }
        }
    };
    change_crd(env, store("v1alpha1")).await;
    for (ns, name) in MIGRATED {
        let api = clusters_at(env, ns, "v1alpha1");
        let object = api.get(name).await.unwrap();
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": object.metadata.resource_version}}),
            ),
        )
        .await
        .unwrap();
    }
    change_crd(env, store("v1beta1")).await;
}

/// The storage migration cut short before each of its writes (as a
/// write that fails, a reply lost, the leadership lost or the process
/// killed leave it: it keeps no state of its own), then run again: a
/// run cut short never takes v1alpha1 out of `storedVersions`, the next
/// run finishes the work, and every object ends stored at v1beta1 with
/// its spec and generation unchanged. Whether an object is stored at
/// v1alpha1 is seen as the API server shows it: read at v1beta1 with no
/// webhook to convert, it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_migration_cut_short_at_any_write_is_finished_by_the_next() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let env = Env::start_without_operator("migration-cut").await;
    let port = free_port();
    reinstall_crd(
        &env,
        &logbook_crds::crdgen::valkeycluster_crd_v1alpha1_only(),
    )
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
        )
        .await
        .unwrap();
    for (ns, name) in MIGRATED {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": "ValkeyCluster",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"topology": "Replication", "replicas": 2, "paused": true},
        }))
        .unwrap();
        clusters_at(&env, ns, "v1alpha1")
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    // The CRD of both versions, converting through a webhook this test
    // serves (no operator runs: nothing else writes the objects); the
    // migration is the test's to run.
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut crd = logbook_crds::crdgen::valkeycluster_crd_with_conversion(WebhookClientConfig {
        url: Some(format!("https://127.0.0.1:{port}/convert")),
        ..WebhookClientConfig::default()
    });
    crd.metadata.resource_version = crds.get(CRD).await.unwrap().metadata.resource_version;
    crds.replace(CRD, &PostParams::default(), &crd)
        .await
        .unwrap();
    let mut config = local_webhook(port, None, &[CRD]);
    config.migrate = false;
    let (_leading, leadership) =
        tokio::sync::watch::channel(logbook::leader::Leadership::default());
    let webhook = logbook::webhook::start(env.client.clone(), config, leadership);
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "valkey.logbook.dev/v1beta1",
        "kind": "ValkeyCluster",
        "metadata": {"name": PROBE},
        "spec": {"topology": "Standalone", "paused": true},
    }))
    .unwrap();
    // The real API server serves a version an update added some time
    // after the update returns, answering 404 until then.
    let beta = clusters_at(&env, NS, "v1beta1");
    env.eventually(
        Duration::from_secs(60),
        "the probe created at v1beta1",
        || {
            let (beta, probe) = (beta.clone(), probe.clone());
            async move {
                match beta.create(&PostParams::default(), &probe).await {
                    Ok(_) => true,
                    Err(kube::Error::Api(e)) if e.code == 409 => true,
                    Err(kube::Error::Api(e)) if e.code == 404 => false,
                    Err(e) => panic!("creating the probe: {e}"),
                }
            }
        },
    )
    .await;
    let alpha = clusters_at(&env, NS, "v1alpha1");
    env.eventually(Duration::from_secs(60), "the webhook converting", || {
        let alpha = alpha.clone();
        async move { alpha.get(PROBE).await.is_ok() }
    })
    .await;
    let before: Vec<Value> = {
        let mut specs = Vec::new();
        for (ns, name) in MIGRATED {
            let object = clusters_at(&env, ns, "v1beta1").get(name).await.unwrap();
            specs.push(json!([object.metadata.generation, object.data["spec"]]));
        }
        specs
    };
    // The oracle can fail: every object is stored at v1alpha1 now.
    assert_eq!(stored_elsewhere(&env).await.len(), MIGRATED.len());

    // Its writes: one per object listed (the probe's included), then the
    // trim of storedVersions.
    let writes = MIGRATED.len() + 2;
    for cut in 1..=writes {
        if cut > 1 {
            store_at_v1alpha1(&env).await;
        }
        assert!(stored_versions(&env).await.contains(&"v1alpha1".to_owned()));
        let asked = AtomicUsize::new(0);
        let leading = || asked.fetch_add(1, Ordering::SeqCst) + 1 < cut;
        let err = logbook::webhook::migration::migrate(&env.client, CRD, leading)
            .await
            .expect_err("a migration cut short said it was done");
        assert!(
            matches!(err, logbook::webhook::WebhookError::NotLeading { .. }),
            "cut before write {cut}: {err}"
        );
        assert_eq!(asked.load(Ordering::SeqCst), cut, "writes asked about");
        let versions = stored_versions(&env).await;
        let left = stored_elsewhere(&env).await;
        eprintln!(
            "cut before write {cut} ({err}): storedVersions {versions:?}, at v1alpha1 still {left:?}"
        );
        assert!(
            versions.contains(&"v1alpha1".to_owned()),
            "cut before write {cut}: v1alpha1 dropped from storedVersions, {left:?} still stored there"
        );
        let done = logbook::webhook::migration::migrate(&env.client, CRD, || true)
            .await
            .unwrap();
        assert_eq!(done.listed, MIGRATED.len() + 1, "{done:?}");
        assert_eq!(done.dropped, ["v1alpha1"], "{done:?}");
        assert_eq!(stored_versions(&env).await, ["v1beta1"]);
        let left = stored_elsewhere(&env).await;
        assert!(
            left.is_empty(),
            "after the run that finished: {left:?} stored at v1alpha1"
        );
        for ((ns, name), was) in MIGRATED.iter().zip(&before) {
            let object = clusters_at(&env, ns, "v1beta1").get(name).await.unwrap();
            let now = json!([object.metadata.generation, object.data["spec"]]);
            assert_eq!(&now, was, "{ns}/{name} changed by its migration");
        }
    }
    // Once done, a run has nothing to do and writes nothing.
    let asked = AtomicUsize::new(0);
    let again = logbook::webhook::migration::migrate(&env.client, CRD, || {
        asked.fetch_add(1, Ordering::SeqCst);
        true
    })
    .await
    .unwrap();
    assert_eq!(again, logbook::webhook::migration::Migrated::default());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    webhook.abort();
    env.finish().await;
}
