//! Every sample of `config/samples/`, applied with the real `kubectl` as a
//! user would, on localkube with the operator under the chart's RBAC, and
//! waited for in the state its comment promises: each cluster `Ready`,
//! with what its sample shows (a user applied, a backup completed and
//! restored, a standby following its source, a plan's fields, the primary
//! on its preferred pod, an application writing and reading as its user,
//! ...), `Hibernated` for the one created asleep, and, for the sample that
//! needs cert-manager (which localkube lacks), what its comment says the
//! operator reports without it.
//!
//! The samples are applied by groups ([`Group`]): a sample that names
//! another's objects (a backup of `demo`, a user of `demo`, a cluster on a
//! plan the defaults define) is applied after it, in the same namespace.
//! Each group works in a namespace of its own (or in those its sample
//! names, or in the one its certificate was made for), and the groups run
//! at once, holding at most [`CLUSTERS_AT_ONCE`] ValkeyClusters at a time
//! (two cores); a group's clusters are deleted when it is done. A file of
//! `config/samples/` that no group applies fails the test before anything
//! starts: a new sample needs its promised state written here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod checks;

use crate::operator_common;
use crate::s3_server;

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use logbook_crds::ValkeyCluster;
use operator_common::*;
use s3_server::S3Server;

/// ValkeyClusters the groups may hold at once.
const CLUSTERS_AT_ONCE: u32 = 4;
/// How long any one promised state may take (the machine is shared with
/// other suites in `make test`).
const WITHIN: Duration = Duration::from_secs(240);
/// The bucket the backup samples name.
const BUCKET: &str = "logbook-backups";
/// The S3 endpoint the backup samples' Secret names (`logbook local`'s
/// moto on a fixed port), replaced by the test's own server's, as a user
/// puts their server's URL there.
const SAMPLE_ENDPOINT: &str = "http://127.0.0.3:9000";

/// The samples applied together, in one namespace, each group with the
/// state its samples' comments promise ([`checks`]). Heaviest first, so
/// that the longest chains start at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `demo` (replication.yaml), its user, a backup of it and a cluster
    /// restored from that backup.
    Replication,
    /// The standby and its source, in the namespaces the sample names.
    Standby,
    /// The three-shard Valkey Cluster.
    Cluster,
    /// Replication watched by Sentinels.
    Sentinel,
    /// The operator's defaults and a cluster on one of their plans.
    Plan,
    /// `demo` (standalone.yaml) and an application's least-privilege user
    /// with the Deployment that uses it.
    StandaloneApp,
    /// TLS from the operator's own CA.
    Tls,
    /// Mutual TLS with a certificate of one's own, made for `default`.
    TlsSecret,
    /// TLS from cert-manager, which localkube lacks.
    TlsCertManager,
    /// Scheduled backups, and one taken now into the same bucket.
    BackupSchedule,
    /// The primary kept on its preferred pod.
    Placement,
    /// A cluster created asleep, woken, put back to sleep.
    Hibernation,
    /// The `default` user's password from one's own Secret.
    Password,
    /// The README's quickstart: a cluster, a user with its connection
    /// Secret, and the application that reads `REDIS_URL` from it.
    Quickstart,
    /// A Cluster reachable from outside by node ports.
    External,
}

impl Group {
    const ALL: [Group; 15] = [
        Group::Replication,
        Group::Standby,
        Group::Cluster,
        Group::Sentinel,
        Group::Plan,
        Group::StandaloneApp,
        Group::Tls,
        Group::TlsSecret,
        Group::TlsCertManager,
        Group::BackupSchedule,
        Group::Placement,
        Group::Hibernation,
        Group::Password,
        Group::Quickstart,
        Group::External,
    ];

    /// The files of `config/samples/` it applies, in order.
    fn samples(self) -> &'static [&'static str] {
        match self {
            Group::Replication => &[
                "replication.yaml",
                "user.yaml",
                "backup.yaml",
                "restore.yaml",
            ],
            Group::Standby => &["standby.yaml"],
            Group::Cluster => &["cluster.yaml"],
            Group::Sentinel => &["sentinel.yaml"],
            Group::Plan => &["operator-defaults.yaml", "plan.yaml"],
            Group::StandaloneApp => &["standalone.yaml", "app-user.yaml"],
            Group::Tls => &["tls.yaml"],
            Group::TlsSecret => &["tls-secret.yaml"],
            Group::TlsCertManager => &["tls-cert-manager.yaml"],
            Group::BackupSchedule => &["backup-schedule.yaml"],
            Group::Placement => &["placement.yaml"],
            Group::Hibernation => &["hibernation.yaml"],
            Group::Password => &["password.yaml"],
            Group::Quickstart => &["quickstart.yaml", "quickstart-app.yaml"],
            Group::External => &["external-access.yaml", "external-access-sentinel.yaml"],
        }
    }

    /// Where `kubectl apply` puts its samples: a namespace of its own;
    /// `default` for the certificate made for it; `None` for a sample
    /// whose objects name their own namespaces.
    fn namespace(self) -> Option<String> {
        match self {
            Group::TlsSecret => Some("default".to_owned()),
            Group::Standby => None,
            other => Some(format!("samples-{}", kebab(&format!("{other:?}")))),
        }
    }

    /// The namespaces its objects live in (to create, and to clean).
    fn namespaces(self) -> Vec<String> {
        match self.namespace() {
            Some(ns) => vec![ns],
            None => self
                .samples()
                .iter()
                .flat_map(|s| documents(s))
                .filter_map(|d| d["metadata"]["namespace"].as_str().map(str::to_owned))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        }
    }

    /// The ValkeyClusters its samples make: its share of
    /// [`CLUSTERS_AT_ONCE`].
    fn clusters(self) -> u32 {
        let n = self
            .samples()
            .iter()
            .flat_map(|s| documents(s))
            .filter(|d| d["kind"].as_str() == Some("ValkeyCluster"))
            .count();
        u32::try_from(n).unwrap().clamp(1, CLUSTERS_AT_ONCE)
    }
}

/// `TlsCertManager` → `tls-cert-manager`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples")
}

/// The text of `config/samples/<name>`.
fn sample_text(name: &str) -> String {
    std::fs::read_to_string(samples_dir().join(name))
        .unwrap_or_else(|e| panic!("config/samples/{name}: {e}"))
}

/// The documents of `config/samples/<name>`.
fn documents(name: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(&sample_text(name))
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

/// Every `*.yaml` of `config/samples/`.
fn sample_files() -> BTreeSet<String> {
    std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect()
}

/// What the groups share.
pub struct Run<'a> {
    pub env: &'a Env,
    kubeconfig: PathBuf,
    /// The test's S3 server, where the backup samples' Secret points.
    pub s3_endpoint: String,
    applied: std::sync::Mutex<BTreeSet<String>>,
}

impl Run<'_> {
    /// `kubectl <args>` in `namespace` (none: the objects' own) with
    /// `stdin`, off the runtime's threads; whatever it ends with.
    pub async fn kubectl(
        &self,
        namespace: Option<&str>,
        args: &[&str],
        stdin: Option<String>,
    ) -> Output {
        use std::io::Write as _;
        let mut cmd = std::process::Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl"),
        );
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        if let Some(ns) = namespace {
            cmd.args(["--namespace", ns]);
        }
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("kubectl runs (make setup installs it)");
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
            drop(input);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// [`Run::kubectl`], its standard output; panics with its error when
    /// it fails.
    pub async fn kubectl_ok(&self, namespace: Option<&str>, args: &[&str]) -> String {
        let out = self.kubectl(namespace, args, None).await;
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of `config/samples/<name>` as `edit` leaves it
    /// (a user's own endpoint, say), in `namespace` (none: the namespaces
    /// its objects name), recorded as applied; its output, whatever it
    /// ends with.
    pub async fn apply_edited(
        &self,
        namespace: Option<&str>,
        name: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Output {
        self.applied.lock().unwrap().insert(name.to_owned());
        self.kubectl(
            namespace,
            &["apply", "-f", "-"],
            Some(edit(sample_text(name))),
        )
        .await
    }

    /// [`Run::apply_edited`] of the sample as it is; panics when kubectl
    /// refuses any of it.
    pub async fn apply(&self, namespace: Option<&str>, name: &str) {
        let out = self.apply_edited(namespace, name, |text| text).await;
        assert!(
            out.status.success(),
            "kubectl apply -f config/samples/{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A group's namespace, as the checks read it.
pub struct Space<'a> {
    pub run: &'a Run<'a>,
    pub ns: String,
}

impl<'a> Space<'a> {
    pub fn at(run: &'a Run<'a>, ns: &str) -> Self {
        Self {
            run,
            ns: ns.to_owned(),
        }
    }

    /// An API of `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.run.env.client.clone(), &self.ns)
    }

    /// Applies `config/samples/<name>` here, as it is.
    pub async fn apply(&self, name: &str) {
        self.run.apply(Some(&self.ns), name).await;
    }

    /// Polls `probe` every half second until it gives a value; past
    /// [`WITHIN`] panics with `what`, the last thing it said, and the
    /// state of this namespace's cluster `cluster`.
    pub async fn until<T, F, Fut>(&self, cluster: &str, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + WITHIN;
        loop {
            let last = match probe().await {
                Ok(value) => return value,
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                panic!(
                    "{}: timed out after {WITHIN:?} waiting for {what}; last: {last}\n{}",
                    self.ns,
                    self.dump(cluster).await
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until cluster `name` satisfies `pred`.
    pub async fn wait_cluster(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&ValkeyCluster) -> bool,
    ) -> ValkeyCluster {
        let api: Api<ValkeyCluster> = self.api();
        let pred = &pred;
        self.until(name, &format!("{name}: {what}"), move || {
            let api = api.clone();
            async move {
                match api.get_opt(name).await {
                    Ok(Some(vkc)) if pred(&vkc) => Ok(vkc),
                    Ok(Some(vkc)) => Err(summary(&vkc)),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await
    }

    /// Waits for phase Ready on the current generation with `pods` pods
    /// ready.
    pub async fn wait_ready(&self, name: &str, pods: usize) -> ValkeyCluster {
        self.wait_cluster(name, &format!("phase Ready with {pods} pods"), |v| {
            is_ready(v, pods)
        })
        .await
    }

    /// The data-plane password of cluster `name` (its generated Secret).
    pub async fn password(&self, name: &str) -> String {
        self.secret_text(&format!("{name}-password"), "password")
            .await
            .unwrap_or_else(|| panic!("{}: no Secret {name}-password", self.ns))
    }

    /// The text of `key` of Secret `name`, if both exist.
    pub async fn secret_text(&self, name: &str, key: &str) -> Option<String> {
        let secret = self.api::<Secret>().get_opt(name).await.unwrap()?;
        let bytes = secret.data?.get(key)?.0.clone();
        Some(String::from_utf8(bytes).unwrap())
    }

    /// `ip:6379` of a pod.
    pub async fn pod_addr(&self, pod: &str) -> String {
        let ip = self
            .api::<Pod>()
            .get(pod)
            .await
            .unwrap()
            .status
            .and_then(|s| s.pod_ip)
            .unwrap_or_else(|| panic!("{}/{pod} has no address", self.ns));
        format!("{ip}:{PORT}")
    }

    /// `clusterIP:6379` of Service `name`.
    pub async fn service_addr(&self, name: &str) -> String {
        let ip = self
            .api::<Service>()
            .get(name)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.cluster_ip)
            .unwrap_or_else(|| panic!("{}: Service {name} has no ClusterIP", self.ns));
        format!("{ip}:{PORT}")
    }

    /// The pods labelled with `selector` (every pod when it is empty), by
    /// name.
    pub async fn pods(&self, selector: &str) -> Vec<Pod> {
        let params = match selector {
            "" => ListParams::default(),
            some => ListParams::default().labels(some),
        };
        let mut pods = self.api::<Pod>().list(&params).await.unwrap().items;
        pods.sort_by_key(ResourceExt::name_any);
        pods
    }

    /// The notes of this namespace's Warning Events.
    pub async fn warnings(&self) -> Vec<String> {
        warning_notes(&self.api::<k8s_openapi::api::events::v1::Event>()).await
    }

    /// For failure messages: cluster `name`'s status, this namespace's
    /// pods and Warning Events, and the operator's last log lines.
    pub async fn dump(&self, name: &str) -> String {
        let mut out = String::new();
        match self.api::<ValkeyCluster>().get_opt(name).await {
            Ok(Some(vkc)) => out.push_str(&format!(
                "--- ValkeyCluster {}/{name} (generation {:?}) status:\n{}\n",
                self.ns,
                vkc.metadata.generation,
                serde_yaml::to_string(&vkc.status).unwrap_or_default()
            )),
            other => out.push_str(&format!(
                "--- ValkeyCluster {}/{name}: {other:?}\n",
                self.ns
            )),
        }
        out.push_str("--- pods:\n");
        for pod in self.pods("").await {
            let status = pod.status.clone().unwrap_or_default();
            out.push_str(&format!(
                "{} phase={:?} ip={:?} containers={:?}\n",
                pod.name_any(),
                status.phase,
                status.pod_ip,
                status
                    .container_statuses
                    .unwrap_or_default()
                    .iter()
                    .map(|c| (c.name.clone(), c.ready, c.restart_count, c.state.clone()))
                    .collect::<Vec<_>>()
            ));
        }
        out.push_str("--- Warning Events:\n");
        for note in self.warnings().await {
            out.push_str(&format!("{note}\n"));
        }
        out.push_str("--- operator log (last 40 lines):\n");
        out.push_str(&self.run.env.logs.tail(40).join("\n"));
        out
    }
}

/// A cluster's status in one line, for a wait's last word.
fn summary(vkc: &ValkeyCluster) -> String {
    match &vkc.status {
        None => "no status yet".to_owned(),
        Some(s) => format!(
            "phase {:?}, ready {:?}, primary {:?}, generation {:?} observed {:?}, conditions {:?}",
            s.phase,
            s.ready_replicas,
            s.primary,
            vkc.metadata.generation,
            s.observed_generation,
            s.conditions
                .iter()
                .filter(|c| c.status != "True" || c.type_ == "Ready")
                .map(|c| format!("{}={} ({})", c.type_, c.status, c.message))
                .collect::<Vec<_>>()
        ),
    }
}

/// Creates `group`'s namespaces (as its samples' comments say), runs its
/// checks, then deletes its ValkeyClusters and Deployments, whatever the
/// checks ended with, to free the machine for the next groups; the
/// checks' panic, if any.
async fn run_group(run: &Run<'_>, group: Group) -> Option<String> {
    let outcome = AssertUnwindSafe(async {
        for ns in group.namespaces() {
            if ns != "default" {
                run.kubectl_ok(None, &["create", "namespace", &ns]).await;
            }
        }
        checks::check(run, group).await;
    })
    .catch_unwind()
    .await;
    for ns in group.namespaces() {
        let space = Space::at(run, &ns);
        for vkc in space
            .api::<ValkeyCluster>()
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            let _ = space
                .api::<ValkeyCluster>()
                .delete(&vkc.name_any(), &DeleteParams::background())
                .await;
        }
        for deployment in space
            .api::<Deployment>()
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            let _ = space
                .api::<Deployment>()
                .delete(&deployment.name_any(), &DeleteParams::background())
                .await;
        }
    }
    outcome.err().map(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_sample_reaches_the_state_its_comment_promises() {
    // Before anything starts: every sample has a group.
    let files = sample_files();
    let grouped: BTreeSet<String> = Group::ALL
        .iter()
        .flat_map(|g| g.samples())
        .map(|s| (*s).to_owned())
        .collect();
    let unapplied: Vec<&String> = files.difference(&grouped).collect();
    assert!(
        unapplied.is_empty(),
        "config/samples/ has samples no group of tests/samples.rs applies: {unapplied:?}; \
         add each to a Group with the state its comment promises"
    );
    let gone: Vec<&String> = grouped.difference(&files).collect();
    assert!(
        gone.is_empty(),
        "groups name samples that are gone: {gone:?}"
    );

    let started = Instant::now();
    let env = Env::start("samples").await;
    let s3 = S3Server::start_at(env.host_for_pods(), None, &[]);
    s3.create_bucket(BUCKET);
    let run = Run {
        env: &env,
        kubeconfig: env.write_kubeconfig(),
        s3_endpoint: s3.endpoint(),
        applied: std::sync::Mutex::new(BTreeSet::new()),
    };
    let permits = tokio::sync::Semaphore::new(CLUSTERS_AT_ONCE as usize);
    let results = futures::future::join_all(Group::ALL.iter().map(|&group| {
        let (run, permits) = (&run, &permits);
        async move {
            let _held = permits.acquire_many(group.clusters()).await.unwrap();
            let began = Instant::now();
            let failure = run_group(run, group).await;
            eprintln!(
                "samples: {group:?} {} in {:?} (at {:?})",
                if failure.is_some() {
                    "FAILED"
                } else {
                    "passed"
                },
                began.elapsed(),
                started.elapsed()
            );
            (group, failure)
        }
    }))
    .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(group, failure)| failure.as_ref().map(|f| format!("--- {group:?}: {f}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} groups failed:\n{}",
        failures.len(),
        Group::ALL.len(),
        failures.join("\n")
    );
    let applied = run.applied.lock().unwrap().clone();
    let unapplied: Vec<&String> = files.difference(&applied).collect();
    assert!(
        unapplied.is_empty(),
        "samples no group applied: {unapplied:?}"
    );
    eprintln!("samples: every sample in {:?}", started.elapsed());
    drop(s3);
    env.finish().await;
}
