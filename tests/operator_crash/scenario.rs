//! The scenarios of the fault sweeps (`sweep.rs`): what each one's
//! trigger does, when it counts as carried out, and how the cluster is
//! left for the next point.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use logbook_crds::{
    BackupPhase, UserPhase, ValkeyBackup, ValkeyBackupSpec, ValkeyUser, ValkeyUserSpec,
};

use logbook::valkey::Password;

use super::cluster::spec_shards;
use super::operator_common::*;
use super::s3_server::S3Server;
use super::sweep::{NAME, Sweep};
use super::topology::Topology;

/// The ValkeyUser of the `Users` sweep, and the Secret of its password.
pub const USER: &str = "app";
pub const USER_SECRET: &str = "app-password";

/// The bucket of the `Backup` sweep, and the Secret naming its server.
pub const BUCKET: &str = "logbook-sweep";
pub const S3_SECRET: &str = "backup-s3";

/// Values of `maxmemory-policy` the roll cycles through (each point's
/// differs from the one before, so each point rolls every pod).
pub const POLICIES: [&str; 8] = [
    "allkeys-lru",
    "volatile-lru",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lfu",
    "volatile-lfu",
    "noeviction",
];

/// What a sweep does at each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A new 3-pod cluster created (one per point, deleted after it).
    Create,
    /// SIGKILL of the primary's process (the kubelet restarts it in place,
    /// fenced).
    KillPrimary,
    /// The primary's pod deleted (the StatefulSet recreates it).
    DeletePrimary,
    /// A `valkey.conf` change: every pod rolled, the primary after a
    /// switchover.
    Roll,
    /// `spec.shards` changed, 3 to 4 and 4 back to 3 at the next point:
    /// slots moved by atomic slot migration (Cluster only).
    Reshard,
    /// `spec.replicas` changed, 3 pods to 4 and back to 3 at the next
    /// point (Replication only).
    Scale,
    /// A ValkeyUser created at the first point, its password rotated in
    /// its Secret at each later one: every pod takes the user's new
    /// password.
    Users,
    /// The ValkeyCluster deleted: every object it owns deleted, the
    /// journal closed; it is created again after each point.
    DeleteCluster,
    /// A ValkeyBackup of the cluster taken to an S3 bucket (moto's
    /// server): every shard's RDB streamed there, then its manifest.
    Backup,
    /// [`Scenario::Create`] of a cluster with `spec.tls` from the
    /// operator's CA: the CA created, the certificate issued, and the
    /// pods bootstrapped over TLS (Valkey 8.0, the build with TLS).
    CreateTls,
    /// On a cluster with `spec.tls` from the operator's CA, the
    /// certificate falls due (its Secret's expiry moved within the last
    /// third of its life): a new one issued, and every node made to
    /// serve it without a restart.
    Renew,
    /// `spec.hibernated` set (the data made durable, every pod gone),
    /// then, once the status says Hibernated, unset: the pods back, each
    /// one's data checked against what was persisted, the primary given
    /// writes again.
    Hibernate,
    /// `spec.image` changed between two tags of one version
    /// (`valkey/valkey:9.1` and `valkey/valkey:9.1.2`), each way at
    /// alternate points: the new image's preflight, then every pod rolled,
    /// the primary after a switchover (no canary: the version is the
    /// same).
    Upgrade,
    /// On a 9.1 cluster holding a key 8.0 cannot store, `spec.image` set
    /// to 8.0: the preflight passes, the canary (a replica rolled to 8.0)
    /// cannot get in sync and fails, the roll is held; then (as its user
    /// would, once the status says so) the image is set back, and the
    /// canary is rolled back to 9.1.
    CanaryRollback,
    /// The ownership annotation removed from the StatefulSet (the cluster
    /// unbound: the other objects' annotations removed), then, once the
    /// status says Unbound, put back: the cluster rebound as it is.
    Unbind,
    /// A switchover asked to a replica (`switchover-to`), then, once it is
    /// served, a rebalance asked (`rebalance-requested`): the primary role
    /// moved back to the first pod, the request removed.
    Rebalance,
    /// The operator's defaults (`ValkeyOperatorDefaults`) given another
    /// `maxmemory-policy` at each point: the cluster's spec changes with
    /// them, judged and journaled once, and every pod rolls, the primary
    /// after a switchover.
    DefaultsRoll,
    /// With `placement: Preferred`, a primary's pod deleted: the failover,
    /// then, once the new pod is back and the hold-down has passed, the
    /// primary role handed back to it by a switchover (reason `FailBack`).
    FailBack,
    /// A standby of the sweep's cluster (`replicateFrom`, 2 pods, one per
    /// point, deleted after it) created; once it follows (every write
    /// the source acknowledged by then is on its leader), promoted
    /// (`replicateFrom` removed): its leader takes writes, its other pod
    /// follows it, and every write it was seen to hold is still there.
    Standby,
}

impl Scenario {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::KillPrimary => "kill",
            Self::DeletePrimary => "delete",
            Self::Roll => "roll",
            Self::Reshard => "reshard",
            Self::Scale => "scale",
            Self::Users => "users",
            Self::DeleteCluster => "deletion",
            Self::Backup => "backup",
            Self::CreateTls => "create-tls",
            Self::Renew => "renew",
            Self::Hibernate => "hibernate",
            Self::Upgrade => "upgrade",
            Self::CanaryRollback => "rollback",
            Self::Unbind => "unbind",
            Self::Rebalance => "rebalance",
            Self::DefaultsRoll => "defaults",
            Self::FailBack => "failback",
            Self::Standby => "standby",
        }
    }

    /// Whether each point has a cluster of its own, which the armed
    /// instance's takeover cannot show in (it does not exist yet).
    pub fn new_cluster_each_point(self) -> bool {
        matches!(self, Self::Create | Self::CreateTls | Self::Standby)
    }

    /// Whether each point creates a new cluster.
    pub fn creates(self) -> bool {
        matches!(self, Self::Create | Self::CreateTls)
    }

    /// Whether its clusters serve TLS only.
    pub fn tls(self) -> bool {
        matches!(self, Self::CreateTls | Self::Renew)
    }
}

/// The image of clusters with `spec.tls`: Valkey 8.0 with TLS (localkube
/// runs Debian's build for it; the default image's server has no TLS).
pub const TLS_IMAGE: &str = "valkey/valkey:8.0";

/// The images of [`Scenario::Upgrade`]: one version (localkube runs
/// the same server for both), two tags.
pub const UPGRADE_IMAGES: [&str; 2] = ["valkey/valkey:9.1", "valkey/valkey:9.1.2"];
/// The image [`Scenario::CanaryRollback`] sets, and cannot roll to.
pub const ROLLBACK_IMAGE: &str = "valkey/valkey:8.0";

/// The spec of a new cluster `name` for `scenario`.
pub fn spec_yaml(topology: Topology, scenario: Scenario, name: &str) -> String {
    let mut yaml = topology.yaml(name);
    if scenario == Scenario::FailBack {
        yaml.push_str("  placement: Preferred\n");
    }
    if matches!(scenario, Scenario::Upgrade | Scenario::CanaryRollback) {
        // A soak of 1 s: the canary of a version change is judged on
        // being in sync, which the rollback's never gets.
        yaml.push_str(&format!(
            "  image: {}\n  upgrade:\n    canarySeconds: 1\n",
            UPGRADE_IMAGES[0]
        ));
    }
    if scenario.tls() {
        yaml.push_str(&format!(
            "  image: {TLS_IMAGE}\n  tls:\n    enabled: true\n"
        ));
    }
    yaml
}

/// The fingerprint of the certificate in Secret `name`'s `tls.crt`.
pub async fn secret_certificate(env: &Env, name: &str) -> String {
    let secret = env.api::<Secret>().get(name).await.unwrap();
    let pem = secret
        .data
        .as_ref()
        .and_then(|d| d.get(logbook::tls::CERT_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default();
    logbook::valkey::pem_fingerprint(&pem).unwrap_or_default()
}

/// Sets annotation `key` of ValkeyCluster [`NAME`] to `value`.
pub async fn annotate(env: &Env, key: &str, value: &str) {
    env.vkcs()
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {key: value}}})),
        )
        .await
        .unwrap();
}

/// The operator's defaults: `maxmemory-policy` set to `policy` for every
/// cluster (server-side applied, as `kubectl apply --server-side` would).
pub async fn put_operator_defaults(env: &Env, policy: &str) {
    let defaults: logbook_crds::ValkeyOperatorDefaults = serde_yaml::from_str(&format!(
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyOperatorDefaults
metadata:
  name: valkey-operator-defaults
spec:
  template:
    config:
      maxmemory-policy: {policy}
"
    ))
    .unwrap();
    let mut params = PatchParams::apply("logbook-sweep");
    params.force = true;
    env.api::<logbook_crds::ValkeyOperatorDefaults>()
        .patch(
            "valkey-operator-defaults",
            &params,
            &Patch::Apply(&defaults),
        )
        .await
        .unwrap();
}

/// Sets the ownership annotation of StatefulSet `name` to `name` (bound)
/// or, with `bound` false, removes it (unbound), as its user would.
pub async fn set_owned_by(env: &Env, name: &str, bound: bool) {
    let value = bound.then_some(name);
    env.api::<StatefulSet>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                logbook::resources::labels::OWNED_BY: value
            }}})),
        )
        .await
        .unwrap();
}

pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |c| c.iter().map(|c| c.restart_count).sum())
}

pub async fn update_revision(env: &Env, name: &str) -> String {
    env.api::<StatefulSet>()
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default()
}

/// Sets the `password` key of Secret `name` (created if missing).
pub async fn put_password(env: &Env, name: &str, password: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(std::collections::BTreeMap::from([(
            "password".to_owned(),
            ByteString(password.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let mut params = PatchParams::apply("logbook-sweep");
    params.force = true;
    env.api::<Secret>()
        .patch(name, &params, &Patch::Apply(&secret))
        .await
        .unwrap();
}

/// The Secret [`S3_SECRET`]: `s3`'s credentials and endpoint.
pub async fn put_s3_secret(env: &Env, s3: &S3Server) {
    let credentials = super::s3_server::credentials();
    let data = [
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key.clone(),
        ),
        ("endpoint", s3.endpoint()),
    ];
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(S3_SECRET.to_owned()),
            ..Default::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    };
    let mut params = PatchParams::apply("logbook-sweep");
    params.force = true;
    env.api::<Secret>()
        .patch(S3_SECRET, &params, &Patch::Apply(&secret))
        .await
        .unwrap();
}

impl Sweep {
    /// Triggers the scenario; returns the journal seq its events follow.
    pub async fn trigger(&mut self, n: u64) -> u64 {
        self.journal.catch_up().await;
        let env = &self.env;
        match self.scenario {
            Scenario::Create | Scenario::CreateTls => {
                self.name = format!("new-{n}");
                env.apply_yaml(&spec_yaml(self.topology, self.scenario, &self.name))
                    .await;
                self.journal = env.cm_journal_tail(&env.stream(&self.name).await);
                return 0;
            }
            Scenario::KillPrimary => {
                let old = self.topology.victim(&env.vkc(NAME).await, n);
                env.kill(&old).await;
                self.killed = Some(old);
            }
            Scenario::DeletePrimary => {
                let old = self.topology.victim(&env.vkc(NAME).await, n);
                env.delete_pod(&old).await;
            }
            Scenario::Roll => {
                self.old_revision = Some(update_revision(env, NAME).await);
                let policy = POLICIES[usize::try_from(n).unwrap() % POLICIES.len()];
                let config = serde_json::json!({"spec": {"config": {"maxmemory-policy": policy}}});
                env.patch(NAME, config).await;
            }
            Scenario::Reshard => {
                let from = spec_shards(&env.vkc(NAME).await);
                let to = if from == 3 { 4 } else { 3 };
                self.pods_before = env.pods(NAME).await.iter().map(|p| p.name_any()).collect();
                env.patch(NAME, serde_json::json!({"spec": {"shards": to}}))
                    .await;
                self.change = format!("{from} → {to}");
            }
            Scenario::Scale => {
                let from = env.vkc(NAME).await.spec.replicas.unwrap_or(3);
                let to = if from == 3 { 4 } else { 3 };
                self.pods_before = env.pods(NAME).await.iter().map(|p| p.name_any()).collect();
                env.patch(NAME, serde_json::json!({"spec": {"replicas": to}}))
                    .await;
                self.change = format!("{from} → {to} pods");
            }
            Scenario::Users => {
                let password = format!("user-password-{n}");
                put_password(env, USER_SECRET, &password).await;
                let users: kube::Api<ValkeyUser> = env.api();
                if users.get_opt(USER).await.unwrap().is_none() {
                    let mut spec = ValkeyUserSpec::new(NAME, USER_SECRET, "password");
                    spec.commands = vec!["+@all".to_owned()];
                    spec.keys = vec!["app:*".to_owned()];
                    // The old password works 2 s beside the new one: the
                    // window's close is part of the workload.
                    spec.rotation_window_seconds = 2;
                    let user = ValkeyUser::new(USER, spec);
                    users.create(&PostParams::default(), &user).await.unwrap();
                    self.change = "created".to_owned();
                } else {
                    self.change = "password rotated".to_owned();
                }
                self.old_user_password = self.user_password.replace(password);
            }
            Scenario::DeleteCluster => {
                env.vkcs()
                    .delete(NAME, &DeleteParams::default())
                    .await
                    .unwrap();
            }
            Scenario::Backup => {
                let name = format!("backup-{n}");
                let spec = ValkeyBackupSpec {
                    cluster: NAME.to_owned(),
                    destination: None,
                };
                env.api::<ValkeyBackup>()
                    .create(&PostParams::default(), &ValkeyBackup::new(&name, spec))
                    .await
                    .unwrap();
                self.change.clone_from(&name);
                self.backup = Some(name);
            }
            Scenario::Renew => {
                let secret = format!("{NAME}-tls");
                self.old_certificate = Some(secret_certificate(env, &secret).await);
                // Due: less than a third of its 90 days left.
                let not_after = chrono::Utc::now() + chrono::Duration::days(1);
                env.api::<Secret>()
                    .patch(
                        &secret,
                        &PatchParams::default(),
                        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                            logbook::tls::NOT_AFTER_ANNOTATION: not_after.to_rfc3339()
                        }}})),
                    )
                    .await
                    .unwrap();
                self.change = "certificate due".to_owned();
            }
            Scenario::Hibernate => {
                env.patch(NAME, serde_json::json!({"spec": {"hibernated": true}}))
                    .await;
                self.change = "hibernated, then woken".to_owned();
            }
            Scenario::Upgrade => {
                self.old_revision = Some(update_revision(env, NAME).await);
                let from = env.vkc(NAME).await.spec.image;
                let to = if from == UPGRADE_IMAGES[0] {
                    UPGRADE_IMAGES[1]
                } else {
                    UPGRADE_IMAGES[0]
                };
                env.patch(NAME, serde_json::json!({"spec": {"image": to}}))
                    .await;
                self.change = format!("{from} → {to}");
            }
            Scenario::CanaryRollback => {
                env.patch(NAME, serde_json::json!({"spec": {"image": ROLLBACK_IMAGE}}))
                    .await;
                self.change = format!("{ROLLBACK_IMAGE}, its canary failed, set back");
            }
            Scenario::Unbind => {
                set_owned_by(env, NAME, false).await;
                self.change = "unbound, then rebound".to_owned();
            }
            Scenario::FailBack => {
                let mut primaries = self.topology.agree(env, NAME).await.unwrap_or_default();
                primaries.sort();
                self.pods_before = primaries;
                let old = self.topology.victim(&env.vkc(NAME).await, n);
                env.delete_pod(&old).await;
                self.change = format!("{old} deleted, then given its role back");
            }
            Scenario::DefaultsRoll => {
                self.old_revision = Some(update_revision(env, NAME).await);
                let policy = POLICIES[usize::try_from(n).unwrap() % POLICIES.len()];
                put_operator_defaults(env, policy).await;
                self.change = format!("defaults: maxmemory-policy {policy}");
            }
            Scenario::Standby => {
                self.name = format!("standby-{n}");
                self.standby_held.lock().unwrap().clear();
                env.apply_yaml(&standby_yaml(
                    &self.name,
                    2,
                    &format!("    cluster:\n      name: {NAME}\n"),
                ))
                .await;
                self.journal = env.cm_journal_tail(&env.stream(&self.name).await);
                self.change = "followed, then promoted".to_owned();
                return 0;
            }
            Scenario::Rebalance => {
                let to = format!("{NAME}-{}", 1 + n % 2);
                annotate(env, logbook::resources::labels::SWITCHOVER_TO, &to).await;
                self.change = format!("switched over to {to}, then rebalanced");
            }
        }
        self.journal.seq()
    }

    /// Whether the scenario is carried out: Ready on the current
    /// generation in a status published at journal seq `min_seq` or later
    /// (not one from before the trigger or the crash) and, for a roll,
    /// every pod on the new revision. (For a Cluster, Ready includes the
    /// spec's shards each holding its share of the slots, no reshard
    /// left: see [`Topology::ready`].)
    pub async fn done(&self, min_seq: u64) -> bool {
        if self.scenario == Scenario::DeleteCluster {
            return self.deleted().await;
        }
        let Ok(Some(vkc)) = self.env.vkcs().get_opt(&self.name).await else {
            return false;
        };
        if self.scenario == Scenario::Hibernate && vkc.spec.hibernated {
            // Asleep: woken (by the test, as a user would) once the status
            // says so of the current generation, with no pod left.
            let asleep = vkc.status.as_ref().is_some_and(|s| {
                s.phase == Some(logbook_crds::ClusterPhase::Hibernated)
                    && s.observed_generation == vkc.metadata.generation
            });
            if asleep && self.env.pods(&self.name).await.is_empty() {
                self.env
                    .patch(
                        &self.name,
                        serde_json::json!({"spec": {"hibernated": false}}),
                    )
                    .await;
            }
            return false;
        }
        if self.scenario == Scenario::CanaryRollback && vkc.spec.image == ROLLBACK_IMAGE {
            // The canary failed: the image set back, as its user would.
            let failed = vkc.status.as_ref().is_some_and(|s| {
                s.upgrade
                    .as_ref()
                    .is_some_and(|u| u.phase == "CanaryFailed")
            });
            if failed {
                self.env
                    .patch(
                        &self.name,
                        serde_json::json!({"spec": {"image": UPGRADE_IMAGES[0]}}),
                    )
                    .await;
            }
            return false;
        }
        if self.scenario == Scenario::Unbind {
            let unbound = vkc.status.as_ref().and_then(|s| s.phase)
                == Some(logbook_crds::ClusterPhase::Unbound);
            let sts = self.env.api::<StatefulSet>().get(&self.name).await.unwrap();
            let bound = logbook::resources::labels::owned_by(&sts.metadata, &self.name);
            if unbound && !bound {
                // Taken over: given back, as its user would.
                set_owned_by(&self.env, &self.name, true).await;
                return false;
            }
            if !bound {
                return false;
            }
        }
        if self.scenario == Scenario::Standby {
            if vkc.spec.replicate_from.is_some() {
                if self.topology.ready(&vkc)
                    && standby_phase(&vkc) == "Following"
                    && self.standby_holds().await
                {
                    // Following, with what the source acknowledged:
                    // promoted, as its user would.
                    self.env
                        .patch(
                            &self.name,
                            serde_json::json!({"spec": {"replicateFrom": null}}),
                        )
                        .await;
                }
                return false;
            }
            if standby_phase(&vkc) != "Promoted" {
                return false;
            }
        }
        if self.scenario == Scenario::Rebalance {
            let annotations = vkc.metadata.annotations.clone().unwrap_or_default();
            let switching = annotations.contains_key(logbook::resources::labels::SWITCHOVER_TO);
            let rebalancing =
                annotations.contains_key(logbook::resources::labels::REBALANCE_REQUESTED);
            let first = format!("{}-0", self.name);
            let primary = vkc.status.as_ref().and_then(|s| s.primary.clone());
            if !switching && !rebalancing && primary.as_ref().is_some_and(|p| *p != first) {
                // Served: moved back, as its user would ask.
                annotate(
                    &self.env,
                    logbook::resources::labels::REBALANCE_REQUESTED,
                    "sweep",
                )
                .await;
                return false;
            }
            if switching || rebalancing || primary.as_ref() != Some(&first) {
                return false;
            }
        }
        if !self.topology.ready(&vkc) || journal_seq(&vkc) < i64::try_from(min_seq).unwrap() {
            return false;
        }
        if self.scenario == Scenario::Users {
            return self.user_applied().await;
        }
        if let Some(backup) = &self.backup {
            let Ok(Some(backup)) = self.env.api::<ValkeyBackup>().get_opt(backup).await else {
                return false;
            };
            return backup
                .status
                .as_ref()
                .is_some_and(|s| s.phase == Some(BackupPhase::Completed));
        }
        if self.scenario == Scenario::Renew {
            return self.renewed().await;
        }
        if self.scenario == Scenario::FailBack {
            // Every primary back on the pod it was on before the trigger
            // (each its preferred one: the sweep starts from bootstrap).
            let Ok(mut primaries) = self.topology.agree(&self.env, &self.name).await else {
                return false;
            };
            primaries.sort();
            return primaries == self.pods_before;
        }
        if self.scenario == Scenario::CanaryRollback {
            return vkc.status.as_ref().is_some_and(|s| s.upgrade.is_none())
                && self
                    .all_pods_on(&update_revision(&self.env, &self.name).await)
                    .await;
        }
        if !matches!(
            self.scenario,
            Scenario::Roll | Scenario::Upgrade | Scenario::DefaultsRoll
        ) {
            return true;
        }
        let revision = update_revision(&self.env, &self.name).await;
        Some(&revision) != self.old_revision.as_ref() && self.all_pods_on(&revision).await
    }

    /// Whether every pod of the cluster runs `revision`, none of them
    /// leaving.
    async fn all_pods_on(&self, revision: &str) -> bool {
        let pods = self.env.pods(&self.name).await;
        pods.len() == self.topology.pods()
            && pods.iter().all(|p| {
                p.labels()
                    .get("controller-revision-hash")
                    .map(String::as_str)
                    == Some(revision)
                    && p.metadata.deletion_timestamp.is_none()
            })
    }

    /// Whether the cluster is gone with every object it owned (but its
    /// claims, kept unless the spec asks otherwise, and its journal).
    pub async fn deleted(&self) -> bool {
        let env = &self.env;
        let Ok(None) = env.vkcs().get_opt(&self.name).await else {
            return false;
        };
        let owned = format!("valkey.logbook.dev/cluster={}", self.name);
        let params = kube::api::ListParams::default().labels(&owned);
        let sets = env.api::<StatefulSet>().list(&params).await;
        let services = env.api::<Service>().list(&params).await;
        let secrets = env.api::<Secret>().list(&params).await;
        let maps = env.api::<ConfigMap>().list(&params).await;
        let (Ok(sets), Ok(services), Ok(secrets), Ok(maps)) = (sets, services, secrets, maps)
        else {
            return false;
        };
        // The journal's ConfigMaps stay: the record outlives the cluster.
        let maps = maps
            .items
            .iter()
            .filter(|m| !m.name_any().starts_with("logbook-journal-"))
            .count();
        env.pods(&self.name).await.is_empty()
            && sets.items.is_empty()
            && services.items.is_empty()
            && secrets.items.is_empty()
            && maps == 0
    }

    /// Whether every pod takes the user's password of the last trigger
    /// and the user's status says so.
    pub async fn user_applied(&self) -> bool {
        let env = &self.env;
        let Some(password) = &self.user_password else {
            return false;
        };
        let users: kube::Api<ValkeyUser> = env.api();
        let Ok(Some(user)) = users.get_opt(USER).await else {
            return false;
        };
        let ready = user.status.as_ref().is_some_and(|s| {
            s.phase == Some(UserPhase::Ready) && s.observed_generation == user.metadata.generation
        });
        if !ready {
            return false;
        }
        let admin = env.password(&self.name).await;
        let mut auth = redis::cmd("AUTH");
        auth.arg(USER).arg(password);
        let old = self.old_user_password.as_ref().map(|old| {
            let mut auth = redis::cmd("AUTH");
            auth.arg(USER).arg(old);
            auth
        });
        for pod in env.pods(&self.name).await {
            let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
                return false;
            };
            let addr = format!("{ip}:{PORT}");
            if try_query(&addr, &admin, &auth).await.is_none() {
                return false;
            }
            if let Some(old) = &old
                && try_query(&addr, &admin, old).await.is_some()
            {
                return false;
            }
        }
        true
    }

    /// Leaves the cluster ready for the next point. A pod killed and
    /// restarted in place is in the kubelet's crash-loop backoff (10 s at
    /// its next crash, as on a real node), so a failover point killing it
    /// again would measure that: deleting it gives a fresh pod. A created
    /// cluster is deleted (its pods would load the next points).
    pub async fn after_point(&mut self, primaries: &[String]) {
        let env = &self.env;
        match self.scenario {
            Scenario::KillPrimary => {
                let Some(killed) = self.killed.clone().filter(|k| !primaries.contains(k)) else {
                    return;
                };
                env.delete_pod(&killed).await;
                env.eventually(Duration::from_secs(20), "the killed pod replaced", || {
                    let killed = killed.clone();
                    async move {
                        env.pods(NAME).await.iter().any(|p| {
                            p.name_any() == killed
                                && p.metadata.deletion_timestamp.is_none()
                                && restarts(p) == 0
                        })
                    }
                })
                .await;
                // Settled again, by what the pods say too: the next point
                // must start from a converged cluster.
                self.topology
                    .wait_ready(env, NAME, Duration::from_secs(30))
                    .await;
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(why) = self.topology.agree(env, NAME).await {
                    assert!(
                        Instant::now() < deadline,
                        "not settled after the killed pod was replaced: {why}\n{}",
                        self.dump().await
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Scenario::Create | Scenario::CreateTls | Scenario::Standby => {
                let name = self.name.clone();
                env.vkcs()
                    .delete(&name, &DeleteParams::default())
                    .await
                    .unwrap();
                env.eventually(Duration::from_secs(30), "the created cluster gone", || {
                    let name = name.clone();
                    async move {
                        env.vkcs().get_opt(&name).await.unwrap().is_none()
                            && env.pods(&name).await.is_empty()
                    }
                })
                .await;
            }
            Scenario::Reshard => {
                // The pods a scale-in removed keep their volumes (the
                // claims are retained), and with them `nodes.conf`: back at
                // the next scale-out they would rejoin as the nodes every
                // member forgot, which Valkey refuses for 60 s after the
                // forget (the operator meets them again until then). The
                // next point starts from empty volumes, as after a clean-up
                // of the claims, so that each point measures the reshard.
                let keep = self.topology.pods();
                for pod in self.pods_before.drain(..) {
                    if ordinal(&pod) >= u32::try_from(keep).unwrap() {
                        env.faults()
                            .wipe_pvc_data(NS, &format!("data-{pod}"))
                            .await
                            .unwrap();
                    }
                }
            }
            Scenario::DeleteCluster => {
                // Created again, for the next point to delete.
                env.apply_yaml(&spec_yaml(self.topology, self.scenario, NAME))
                    .await;
                self.topology
                    .wait_ready(env, NAME, Duration::from_secs(60))
                    .await;
                self.journal = env.cm_journal_tail(&env.stream(NAME).await);
            }
            Scenario::DeletePrimary
            | Scenario::Roll
            | Scenario::Scale
            | Scenario::Users
            | Scenario::Backup
            | Scenario::Renew
            | Scenario::Hibernate
            | Scenario::Upgrade
            | Scenario::CanaryRollback
            | Scenario::Unbind
            | Scenario::Rebalance
            | Scenario::DefaultsRoll
            | Scenario::FailBack => {}
        }
    }

    /// Whether every write the probe saw acknowledged by the source is on
    /// the standby's leader; if so, they are kept in
    /// [`Sweep::standby_held`], for the promoted standby to be checked
    /// against.
    async fn standby_holds(&self) -> bool {
        let (Some(probe), Ok(Some(vkc))) = (&self.probe, self.env.vkcs().get_opt(&self.name).await)
        else {
            return false;
        };
        let Some(leader) = vkc
            .status
            .as_ref()
            .and_then(|s| s.standby.as_ref())
            .and_then(|s| s.leader.clone())
        else {
            return false;
        };
        let log = probe.snapshot();
        let acked = log.acked_keys();
        let password = Password::new(self.env.password(&self.name).await);
        let addr = self.env.pod_addr(&leader).await;
        let Ok(missing) =
            logbook_bench::missing_keys(&addr, Some(&password), &log.prefix, &acked).await
        else {
            return false;
        };
        if !missing.is_empty() {
            return false;
        }
        *self.standby_held.lock().unwrap() = acked;
        true
    }

    /// Whether the certificate that fell due is replaced: the Secret holds
    /// another, and every pod serves that one (as a TLS handshake with it
    /// shows, not as the status says).
    async fn renewed(&self) -> bool {
        let env = &self.env;
        let now = secret_certificate(env, &format!("{NAME}-tls")).await;
        if Some(&now) == self.old_certificate.as_ref() {
            return false;
        }
        let pods = env.pods(NAME).await;
        if pods.len() != self.topology.pods() {
            return false;
        }
        for pod in pods {
            let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
                return false;
            };
            let addr = format!("{ip}:6379");
            let served = tokio::task::spawn_blocking(move || served_certificate(&addr))
                .await
                .unwrap();
            if served.as_ref() != Some(&now) {
                return false;
            }
        }
        true
    }
}
