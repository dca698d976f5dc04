//! The chart installed for real, with the real `helm`, on a local cluster
//! that enforces RBAC: the Deployment's two operator pods run (the
//! kubelet runs the chart's image as the `logbook` binary just built), one
//! leads and one stands by, both Ready; a ValkeyCluster comes up under the
//! chart's rules; the leader's pod is deleted and the standby takes over
//! and carries on; `helm uninstall` leaves the cluster's data and journal.
//! With `watchNamespace`, the operator serves that namespace alone under a
//! Role, and leaves a cluster elsewhere untouched. `helm upgrade` to a new
//! build rolls the operator's pods and no Valkey pod, and the journal
//! carries on (`docs/guide/upgrades.md`).
//!
//! What stands in for a real node: the kubelet runs pods as local
//! processes, and the operator reads its ServiceAccount's token from a
//! kubeconfig named by `KUBECONFIG` (set through the chart's `extraEnv`),
//! as localkube serves plain HTTP where in-cluster credentials need HTTPS.
//! The token is a real one of the chart's ServiceAccount, under its RBAC.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use logbook_crds::ValkeyCluster;
use logbook_localkube::{Config, LocalImage, LocalKube, WorkloadsConfig};

const NS: &str = "logbook-system";
const RELEASE: &str = "logbook";
const SELECTOR: &str = "app.kubernetes.io/name=logbook,app.kubernetes.io/instance=logbook";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm(kubeconfig: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(root().join(".tools/bin/helm"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap()
}

async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Lease's holder, when there is one.
async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("logbook-operator")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// Kills every process the kubelet started, even when the test fails.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        logbook_localkube::kubelet::kill_leftovers(&self.0);
    }
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A local cluster enforcing RBAC, whose kubelet runs the chart's image as
/// the binary just built, with the release namespace and the chart's
/// ServiceAccount made ahead so its token can be handed to the pods (helm
/// adopts it: it carries the release's ownership marks).
/// The control plane the chart is installed on.
enum Server {
    Local(logbook_localkube::RunningServer),
    Kubernetes(logbook::local::kubernetes::LocalKubernetes),
}

impl Server {
    async fn shutdown(self) {
        match self {
            Self::Local(s) => s.shutdown().await,
            Self::Kubernetes(k) => k.shutdown().await,
        }
    }
}

struct Local {
    server: Server,
    client: kube::Client,
    admin: PathBuf,
    home: PathBuf,
    operator_kubeconfig: PathBuf,
    // Dropped last: the processes go before their directory.
    _leftovers: Leftovers,
    _dir: tempfile::TempDir,
}

impl Local {
    async fn start() -> Self {
        // Everything a pod reads lives outside /tmp, which the chart covers
        // with an emptyDir in the pods: the kubelet's state (its shim), the
        // kubeconfig, and a copy of the binary (the target directory may be
        // under /tmp, as in a CI checkout there).
        let dir = tempfile::Builder::new()
            .prefix("logbook-helm-install-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let binary = dir.path().join("bin/logbook");
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_logbook"), &binary).unwrap();
        let images =
            vec![logbook::local::operator_image(&binary, &dir.path().join("bin")).unwrap()];
        if std::env::var("LOGBOOK_E2E_CONTROL_PLANE").as_deref() == Ok("kubernetes") {
            return Self::on_kubernetes(dir, images).await;
        }
        let state = dir.path().join("workloads");
        std::fs::create_dir_all(&state).unwrap();
        let _leftovers = Leftovers(state.clone());
        let server = LocalKube::start(Config {
            // Pods reach the API server here: their own 127.0.0.1 is
            // themselves.
            bind: SocketAddr::from(([127, 0, 0, 2], 0)),
            rbac: true,
            workloads: Some(WorkloadsConfig {
                state_dir: state.clone(),
                kubelet: true,
                proxy: true,
                local_images: images,
            }),
            ..Config::default()
        })
        .await
        .unwrap();
        let admin = dir.path().join("admin-kubeconfig");
        server.write_kubeconfig(&admin).unwrap();
        let client =
            kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
        let home = dir.path().join("helm");
        service_account(&client).await;
        let token = server
            .service_account_token(NS, RELEASE, Duration::from_secs(3600))
            .unwrap();
        let operator_kubeconfig = dir.path().join("operator-kubeconfig");
        server
            .write_kubeconfig_with_token(&operator_kubeconfig, &token)
            .unwrap();
        Self {
            server: Server::Local(server),
            client,
            admin,
            home,
            operator_kubeconfig,
            _leftovers,
            _dir: dir,
        }
    }

    /// The same on the real control plane, localkube's kubelet as its
    /// node: the pods reach the API server at its own address over HTTPS
    /// (their `127.0.0.1` is themselves) with the ServiceAccount's token
    /// from the TokenRequest API, under the real authorizer.
    async fn on_kubernetes(dir: tempfile::TempDir, images: Vec<LocalImage>) -> Self {
        let k = logbook::local::kubernetes::LocalKubernetes::start_with(dir.path(), images)
            .await
            .unwrap_or_else(|e| panic!("the real control plane did not start: {e}"));
        let _leftovers = Leftovers(k.node_dir());
        let admin = dir.path().join("admin-kubeconfig");
        std::fs::copy(k.admin_kubeconfig(), &admin).unwrap();
        let client = k.client("admin").await.unwrap();
        let home = dir.path().join("helm");
        service_account(&client).await;
        let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}});
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{NS}/serviceaccounts/{RELEASE}/token"
        ))
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap();
        let reply: serde_json::Value = client.request(request).await.unwrap();
        let token = reply["status"]["token"].as_str().unwrap().to_owned();
        let ca = dir.path().join("ca.crt");
        std::fs::copy(k.control_plane().ca_file(), &ca).unwrap();
        let operator_kubeconfig = dir.path().join("operator-kubeconfig");
        k.control_plane()
            .write_token_kubeconfig(&operator_kubeconfig, &token, &ca)
            .unwrap();
        Self {
            server: Server::Kubernetes(k),
            client,
            admin,
            home,
            operator_kubeconfig,
            _leftovers,
            _dir: dir,
        }
    }

    /// `helm install` of the chart with `sets`, waiting for the Deployment.
    fn install(&self, sets: &[&str]) -> Output {
        self.helm_release("install", sets)
    }

    /// `helm upgrade` of the release to the chart with `sets` (and the
    /// test's own values again: an upgrade without `--reuse-values` starts
    /// from the chart's defaults), waiting for the Deployment.
    fn upgrade(&self, sets: &[&str]) -> Output {
        self.helm_release("upgrade", sets)
    }

    fn helm_release(&self, verb: &str, sets: &[&str]) -> Output {
        let chart = root().join("charts/logbook");
        let env_set = format!(
            "extraEnv[0].name=KUBECONFIG,extraEnv[0].value={}",
            self.operator_kubeconfig.display()
        );
        let mut args = vec![
            verb,
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            NS,
            "--set",
            &env_set,
            "--set",
            "leaderElection.leaseSeconds=3,leaderElection.renewMilliseconds=1000",
            "--wait",
            "--timeout",
            "120s",
        ];
        for set in sets {
            args.push("--set");
            args.push(set);
        }
        helm(&self.admin, &self.home, &args)
    }

    /// The operator's refusals.
    fn denials(&self) -> Vec<String> {
        // The real API server keeps no record here: a refusal there shows
        // as the operator failing its work, which the test sees.
        let Server::Local(server) = &self.server else {
            return Vec::new();
        };
        server
            .denials()
            .into_iter()
            .filter(|d| d.access.user == format!("system:serviceaccount:{NS}:{RELEASE}"))
            .map(|d| d.message)
            .collect()
    }
}

/// The namespace, and the chart's ServiceAccount made ahead so its token
/// can be handed to the pods (helm adopts it: it carries the release's
/// ownership marks).
async fn service_account(client: &kube::Client) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {
                "name": RELEASE,
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": RELEASE,
                    "meta.helm.sh/release-namespace": NS,
                },
            }}))
            .unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chart_installs_runs_fails_over_its_leader_and_uninstalls() {
    let local = Local::start().await;
    let client = local.client.clone();
    // A wrong value fails the install with a message naming it, before
    // anything is created.
    let refused = local.install(&["logs.format=xml"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("/logs/format"), "{message}");
    let installed = local.install(&["logs.level=info\\,logbook=debug"]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let describe = || async {
        let mut out = String::new();
        for pod in pods
            .list(&ListParams::default().labels(SELECTOR))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            out.push_str(&format!(
                "{}: ready={} {:?}\n",
                pod.metadata.name.clone().unwrap_or_default(),
                ready(&pod),
                pod.status.as_ref().map(|s| &s.container_statuses)
            ));
            if let Ok(log) = pods
                .logs(
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    &kube::api::LogParams {
                        tail_lines: Some(30),
                        ..Default::default()
                    },
                )
                .await
            {
                out.push_str(&log);
            }
        }
        out.push_str(&format!("denials: {:#?}\n", local.denials()));
        out
    };
    assert!(
        installed.status.success(),
        "helm install: {}{}\n{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr),
        describe().await
    );

    // Two operator pods, both Ready: one leads, one stands by.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let deployment = deployments.get(RELEASE).await.unwrap();
    assert_eq!(
        deployment.status.as_ref().and_then(|s| s.ready_replicas),
        Some(2),
        "{}",
        describe().await
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    eventually(Duration::from_secs(30), "a leader", || async {
        holder(&leases).await.is_some()
    })
    .await;
    let leader = holder(&leases).await.unwrap();
    let running: Vec<String> = pods
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(
        running.contains(&leader),
        "{leader} is not one of {running:?}"
    );
    eprintln!("installed: pods {running:?}, {leader} leads");

    // A cluster, served by the pods under the chart's RBAC.
    let vkcs: Api<ValkeyCluster> = Api::namespaced(client.clone(), "default");
    let sample: ValkeyCluster = serde_yaml::from_str(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: shop\nspec:\n  topology: Replication\n  replicas: 2\n  storage:\n    size: 1Gi\n",
    )
    .unwrap();
    vkcs.create(&PostParams::default(), &sample).await.unwrap();
    let is_ready = |v: &ValkeyCluster| {
        v.status.as_ref().is_some_and(|s| {
            s.phase == Some(logbook_crds::v1alpha1::ClusterPhase::Ready)
                && s.observed_generation == v.metadata.generation
                && s.ready_replicas == Some(2)
        })
    };
    eventually(Duration::from_secs(90), "the cluster Ready", || async {
        vkcs.get("shop").await.is_ok_and(|v| is_ready(&v))
    })
    .await;

    // The leader's pod goes: the standby takes over and acts (a scale to
    // three), and the Deployment replaces the pod.
    pods.delete(&leader, &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "a new leader", || async {
        holder(&leases).await.is_some_and(|h| h != leader)
    })
    .await;
    eprintln!(
        "{leader} deleted; {} leads",
        holder(&leases).await.unwrap_or_default()
    );
    vkcs.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(90),
        "the cluster scaled by the new leader",
        || async {
            vkcs.get("shop").await.is_ok_and(|v| {
                v.status.as_ref().is_some_and(|s| {
                    s.phase == Some(logbook_crds::v1alpha1::ClusterPhase::Ready)
                        && s.observed_generation == v.metadata.generation
                        && s.ready_replicas == Some(3)
                })
            })
        },
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "two Ready operator pods again",
        || async {
            deployments
                .get(RELEASE)
                .await
                .ok()
                .and_then(|d| d.status)
                .and_then(|s| s.ready_replicas)
                == Some(2)
        },
    )
    .await;
    let denied = local.denials();
    assert!(denied.is_empty(), "the operator was refused: {denied:#?}");

    // Uninstall: the operator goes; the cluster, its data and its journal
    // stay.
    let uninstalled = helm(
        &local.admin,
        &local.home,
        &["uninstall", RELEASE, "--namespace", NS, "--wait"],
    );
    assert!(
        uninstalled.status.success(),
        "helm uninstall: {}",
        String::from_utf8_lossy(&uninstalled.stderr)
    );
    eventually(
        Duration::from_secs(30),
        "the operator's pods gone",
        || async {
            pods.list(&ListParams::default().labels(SELECTOR))
                .await
                .is_ok_and(|l| l.items.is_empty())
        },
    )
    .await;
    assert!(deployments.get_opt(RELEASE).await.unwrap().is_none());
    assert!(vkcs.get_opt("shop").await.unwrap().is_some());
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let journal = maps
        .list(&ListParams::default().labels("valkey.logbook.dev/journal"))
        .await
        .unwrap();
    assert!(!journal.items.is_empty(), "the cluster's journal is kept");

    // The finalizer is the operator's: with it gone, deleting the cluster
    // waits; the test removes it, as the README tells a person to avoid.
    vkcs.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    vkcs.delete("shop", &DeleteParams::default()).await.unwrap();
    local.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_watch_namespace_it_serves_that_namespace_alone_under_a_role() {
    let local = Local::start().await;
    let client = local.client.clone();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "shop"}})).unwrap(),
        )
        .await
        .unwrap();
    let installed = local.install(&["watchNamespace=shop", "replicaCount=1"]);
    assert!(
        installed.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let standalone = |name: &str| -> ValkeyCluster {
        serde_yaml::from_str(&format!(
            "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: {name}\nspec:\n  topology: Standalone\n  storage:\n    size: 1Gi\n"
        ))
        .unwrap()
    };
    let served: Api<ValkeyCluster> = Api::namespaced(client.clone(), "shop");
    let elsewhere: Api<ValkeyCluster> = Api::namespaced(client.clone(), "default");
    served
        .create(&PostParams::default(), &standalone("cart"))
        .await
        .unwrap();
    elsewhere
        .create(&PostParams::default(), &standalone("other"))
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "shop/cart Ready", || async {
        served.get("cart").await.is_ok_and(|v| {
            v.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(logbook_crds::v1alpha1::ClusterPhase::Ready))
        })
    })
    .await;
    // Every stored object is read at every version: the CRD converts by
    // webhook, and a namespace-scoped install serves that webhook too
    // (without it, an object written at v1alpha1 cannot be stored or read).
    let version = |v: &str| ApiResource {
        group: "valkey.logbook.dev".to_owned(),
        version: v.to_owned(),
        api_version: format!("valkey.logbook.dev/{v}"),
        kind: "ValkeyCluster".to_owned(),
        plural: "valkeyclusters".to_owned(),
    };
    let alpha: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "shop", &version("v1alpha1"));
    let beta: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "shop", &version("v1beta1"));
    let legacy: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "valkey.logbook.dev/v1alpha1",
        "kind": "ValkeyCluster",
        "metadata": {"name": "legacy"},
        "spec": {"topology": "Standalone", "imagePullPolicy": "IfNotPresent", "storage": {"size": "1Gi"}},
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match alpha.create(&PostParams::default(), &legacy).await {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "a v1alpha1 ValkeyCluster is still refused after 60 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let at_beta = beta.get("legacy").await.unwrap();
    assert_eq!(
        at_beta.data["spec"]["image"]["pullPolicy"], "IfNotPresent",
        "{:?}",
        at_beta.data
    );
    let at_alpha = alpha.get("legacy").await.unwrap();
    assert_eq!(at_alpha.data["spec"]["imagePullPolicy"], "IfNotPresent");
    assert!(beta.list(&ListParams::default()).await.unwrap().items.len() >= 2);
    alpha
        .delete("legacy", &DeleteParams::default())
        .await
        .unwrap();
    // The other namespace is none of its business: untouched, and never
    // asked for (a Role grants nothing there, so a try would be a 403).
    let other = elsewhere.get("other").await.unwrap();
    assert!(other.status.is_none(), "{:?}", other.status);
    assert!(other.metadata.finalizers.is_none());
    let denied = local.denials();
    assert!(denied.is_empty(), "the operator was refused: {denied:#?}");
    local.server.shutdown().await;
}

/// What an operator upgrade must leave alone, read from the API server:
/// each Valkey pod's uid and restarts, each StatefulSet's generation and
/// template.
#[derive(Debug, PartialEq)]
struct Untouched {
    pods: Vec<(String, String, i32)>,
    statefulsets: Vec<(String, Option<i64>, serde_json::Value)>,
}

async fn untouched(client: &kube::Client, ns: &str, cluster: &str) -> Untouched {
    let selector = format!("valkey.logbook.dev/cluster={cluster}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut listed: Vec<(String, String, i32)> = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c.iter().map(|c| c.restart_count).sum())
                .unwrap_or_default();
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.uid.unwrap_or_default(),
                restarts,
            )
        })
        .collect();
    listed.sort();
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), ns);
    let mut statefulsets: Vec<(String, Option<i64>, serde_json::Value)> = sets
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.unwrap_or_default(),
                s.metadata.generation,
                serde_json::to_value(s.spec.map(|s| s.template)).unwrap(),
            )
        })
        .collect();
    statefulsets.sort_by(|a, b| a.0.cmp(&b.0));
    Untouched {
        pods: listed,
        statefulsets,
    }
}

/// `logbook journal verify` (the binary just built) on the ConfigMap
/// journals of `ns`, as a person runs it; its output.
fn journal_verify(admin: &Path, ns: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args(["journal", "verify", "--namespace", ns, "--kubeconfig"])
        .arg(admin)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "logbook journal verify --namespace {ns}: {printed}"
    );
    printed
}

/// Runs the `kubectl apply -f - <<'EOF' ... EOF` block of the install's
/// notes with bash, as a person pastes it, with the real kubectl.
fn notes_apply(local: &Local, notes: &str) {
    let start = notes
        .find("kubectl apply")
        .unwrap_or_else(|| panic!("no `kubectl apply` in the notes:\n{notes}"));
    let end = notes[start..]
        .find("\nEOF\n")
        .unwrap_or_else(|| panic!("no EOF closing the notes' heredoc:\n{notes}"))
        + start
        + "\nEOF\n".len();
    let block = &notes[start..end];
    let path = format!(
        "{}:{}",
        root().join(".tools/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .env("KUBECONFIG", &local.admin)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the notes' command failed:\n{block}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `helm upgrade` of the operator rolls its own pods one at a time and no
/// Valkey pod: installed, the notes' Replication cluster Ready with keys
/// written,
/// then upgraded to "a new build"; the new pods take the Lease, and every
/// Valkey pod is the same pod (uid) with the same restart count, every
/// StatefulSet has the same generation and template, the journal's head
/// only moved forward and verifies, the cluster is Ready with its keys,
/// and the new leader acts on a change.
///
/// "A new build" here is a new image tag (`0.1.1-upgrade`) and a changed
/// pod annotation, both of which roll the Deployment, as a release does.
/// What it cannot show: the kubelet runs every tag of the operator's image
/// as the one binary just built, so old and new pods run the same code. A
/// new version that changed what the operator renders into a StatefulSet
/// (an image default, the config, the restore init container's image)
/// would roll pods by design; this test shows the upgrade itself, the
/// hand-over and the journal carried over, rolls nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_upgrade_rolls_the_operator_and_no_valkey_pod() {
    let local = Local::start().await;
    let client = local.client.clone();
    let installed = local.install(&[]);
    assert!(
        installed.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    eventually(Duration::from_secs(30), "a leader", || async {
        holder(&leases).await.is_some()
    })
    .await;
    let old_pods: Vec<String> = pods
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();

    // The cluster the install's notes tell a person to create, created by
    // running their `kubectl apply` as printed (a Replication cluster of
    // three pods named demo), then Ready with keys written to its primary.
    let notes = String::from_utf8_lossy(&installed.stdout).into_owned();
    notes_apply(&local, &notes);
    let vkcs: Api<ValkeyCluster> = Api::namespaced(client.clone(), "default");
    let ready_with = |v: &ValkeyCluster, n: i32| {
        v.status.as_ref().is_some_and(|s| {
            s.phase == Some(logbook_crds::v1alpha1::ClusterPhase::Ready)
                && s.observed_generation == v.metadata.generation
                && s.ready_replicas == Some(n)
        })
    };
    eventually(Duration::from_secs(90), "the cluster Ready", || async {
        vkcs.get("demo").await.is_ok_and(|v| ready_with(&v, 3))
    })
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    let password = secrets.get("demo-password").await.unwrap().data.unwrap()["password"]
        .0
        .clone();
    let password = String::from_utf8(password).unwrap();
    let data_pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let primary_addr = || async {
        let cluster = vkcs.get("demo").await.unwrap();
        let primary = cluster.status.and_then(|s| s.primary).unwrap();
        let ip = data_pods
            .get(&primary)
            .await
            .unwrap()
            .status
            .and_then(|s| s.pod_ip)
            .unwrap();
        format!("redis://:{password}@{ip}:6379")
    };
    let mut conn = redis::Client::open(primary_addr().await)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for i in 0..100 {
        let () = redis::cmd("SET")
            .arg(format!("upgrade:{i}"))
            .arg(format!("value {i}"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    drop(conn);
    let before = untouched(&client, "default", "demo").await;
    assert_eq!(before.pods.len(), 3, "{before:?}");
    assert!(!before.statefulsets.is_empty(), "{before:?}");
    let head = |v: &ValkeyCluster| {
        v.status
            .as_ref()
            .and_then(|s| s.journal.as_ref())
            .map(|j| j.seq)
            .unwrap_or_default()
    };
    let head_before = head(&vkcs.get("demo").await.unwrap());
    assert!(head_before > 0, "the cluster's journal has a head");
    eprintln!(
        "before the upgrade: {before:?}, journal head {head_before}, operator pods {old_pods:?}"
    );

    // The upgrade: a new tag and a changed pod annotation roll the
    // Deployment, one pod at a time.
    let upgraded = local.upgrade(&[
        "image.tag=0.1.1-upgrade",
        "podAnnotations.logbook\\.dev/build=upgrade",
    ]);
    assert!(
        upgraded.status.success(),
        "helm upgrade: {}{}",
        String::from_utf8_lossy(&upgraded.stdout),
        String::from_utf8_lossy(&upgraded.stderr)
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let new_pods = || async {
        pods.list(&ListParams::default().labels(SELECTOR))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.spec.as_ref().is_some_and(|s| {
                        s.containers[0]
                            .image
                            .as_deref()
                            .is_some_and(|i| i.ends_with(":0.1.1-upgrade"))
                    })
            })
            .filter_map(|p| p.metadata.name)
            .collect::<Vec<String>>()
    };
    eventually(
        Duration::from_secs(120),
        "the rollout done: two new pods Ready, the old ones gone, a new pod leading",
        || async {
            let rolled = deployments.get(RELEASE).await.ok().is_some_and(|d| {
                let status = d.status.unwrap_or_default();
                status.observed_generation == d.metadata.generation
                    && status.updated_replicas == Some(2)
                    && status.ready_replicas == Some(2)
                    && status.replicas == Some(2)
            });
            let fresh = new_pods().await;
            let leader = holder(&leases).await.unwrap_or_default();
            rolled && fresh.len() == 2 && fresh.contains(&leader)
        },
    )
    .await;
    let leader = holder(&leases).await.unwrap();
    assert!(!old_pods.contains(&leader), "{leader} is an old pod");
    eprintln!("upgraded: {leader} leads, pods {:?}", new_pods().await);

    // The new leader has read every journal and judged the cluster; for a
    // while after, nothing of the cluster's changes.
    for _ in 0..20 {
        let now = untouched(&client, "default", "demo").await;
        assert_eq!(now, before, "the upgrade touched the cluster's pods");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cluster = vkcs.get("demo").await.unwrap();
    assert!(ready_with(&cluster, 3), "{:?}", cluster.status);
    let head_after = head(&cluster);
    assert!(
        head_after >= head_before,
        "the journal head went back: {head_before} -> {head_after}"
    );
    let mut conn = redis::Client::open(primary_addr().await)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for i in 0..100 {
        let got: Option<String> = redis::cmd("GET")
            .arg(format!("upgrade:{i}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some(format!("value {i}").as_str()));
    }
    let verified = journal_verify(&local.admin, "default");
    assert!(verified.contains("ok"), "{verified}");
    journal_verify(&local.admin, NS);

    // The new leader acts, and its decisions are appended to the journal
    // the old one wrote.
    vkcs.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(90),
        "the cluster scaled by the upgraded operator",
        || async { vkcs.get("demo").await.is_ok_and(|v| ready_with(&v, 2)) },
    )
    .await;
    let head_scaled = head(&vkcs.get("demo").await.unwrap());
    assert!(
        head_scaled > head_after,
        "no decision appended: {head_after} -> {head_scaled}"
    );
    journal_verify(&local.admin, "default");
    let denied = local.denials();
    assert!(denied.is_empty(), "the operator was refused: {denied:#?}");
    local.server.shutdown().await;
}
