//! The `ValkeyCluster` custom resource: [`ValkeyClusterSpec`], the derived
//! [`ValkeyCluster`] object, and the `effective_*` helpers that resolve every
//! topology-dependent default.
//!
//! This module owns the top-level shape of the API and the CEL rules that
//! relate its fields to the topology. It must not validate beyond what the
//! schema says (that is `validation/`) and it must not render Kubernetes
//! objects. Later code calls the helpers here instead of re-deriving a
//! default, so a default lives in exactly one place (`defaults.rs`).
//!
//! The spec is written into the journal as canonical JSON, so serialization
//! must be deterministic: every map is a `BTreeMap`, and unset optional
//! fields are omitted rather than written as `null`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backup::{BackupSpec, RestoreSource};
use super::defaults::{self, serde_fns};
use super::external::ExternalAccessSpec;
use super::failover::{FailoverSpec, SentinelSpec};
use super::observability::{JournalSpec, MetricsSpec};
use super::policy::{NetworkPolicySpec, PodDisruptionBudgetSpec};
use super::schema::DNS_SUBDOMAIN_PATTERN;
use super::security::{AuthSpec, TlsSpec};
use super::standby::ReplicateFrom;
use super::status::ValkeyClusterStatus;
use super::storage::StorageSpec;
use super::topology::Topology;
use super::upgrade::{Placement, UpgradeSpec};

/// How long a wake waits for every data pod by default, in seconds.
pub const WAKE_TIMEOUT_SECONDS: i32 = 120;
/// The shortest wait a spec may ask for, in seconds.
pub const WAKE_TIMEOUT_SECONDS_MIN: i32 = 10;
/// The longest, in seconds (a day).
pub const WAKE_TIMEOUT_SECONDS_MAX: i32 = 86_400;

/// When the kubelet pulls the Valkey image.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the node lacks the image.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    /// The name Kubernetes uses (`"IfNotPresent"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// Desired state of a Valkey deployment managed by Logbook.
///
/// Every field is optional; `{}` is a three-pod Replication cluster with
/// authentication, RDB persistence and a PodDisruptionBudget.
// The printer columns repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "valkey.logbook.dev",
    version = "v1alpha1",
    kind = "ValkeyCluster",
    plural = "valkeyclusters",
    singular = "valkeycluster",
    namespaced,
    shortname = "vkc",
    category = "valkey",
    status = "ValkeyClusterStatus",
    derive = "PartialEq",
    validation = Rule::new("self.metadata.name.size() <= 52").message(
        "metadata.name must be at most 52 characters: the StatefulSet named after the cluster labels each pod controller-revision-hash=<name>-<hash of up to 10 characters>, and a label value is at most 63 characters"
    ),
    validation = Rule::new("!has(self.spec.topology) || self.spec.topology != 'Sentinel' || self.metadata.name.size() <= 43").message(
        "metadata.name must be at most 43 characters for topology Sentinel: the Sentinel StatefulSet <name>-sentinel labels each pod controller-revision-hash=<name>-sentinel-<hash of up to 10 characters>, and a label value is at most 63 characters"
    ),
    validation = Rule::new("!has(self.spec.externalAccess) || !has(self.spec.externalAccess.enabled) || !self.spec.externalAccess.enabled || self.metadata.name.size() <= 48").message(
        "metadata.name must be at most 48 characters with externalAccess enabled: each pod's Service is named <pod>-external, and a Service name is at most 63 characters"
    ),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "metadata.name must be a DNS-1035 label (lower case letters, digits and '-', starting with a letter and ending with a letter or digit): the cluster's Services are named after it"
    ),
    doc = "A Valkey deployment (Standalone, Replication, Sentinel or Cluster) managed by the Logbook operator, which journals every observation and decision it makes about it.",
    printcolumn(json_path = ".spec.topology", name = "Topology", type_ = "string"),
    printcolumn(json_path = ".status.phase", name = "Phase", type_ = "string"),
    printcolumn(json_path = ".status.readyReplicas", name = "Ready", type_ = "integer"),
    printcolumn(json_path = ".status.primary", name = "Primary", type_ = "string"),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "self.topology == 'Cluster' || (!has(self.shards) && !has(self.replicasPerShard) && !has(self.clusterNodeTimeoutMilliseconds))"
).message("shards, replicasPerShard and clusterNodeTimeoutMilliseconds apply only to topology Cluster"))]
#[x_kube(validation = Rule::new("self.topology != 'Cluster' || !has(self.replicas)")
    .message("replicas does not apply to topology Cluster; set shards and replicasPerShard")
    .field_path(".replicas"))]
#[x_kube(validation = Rule::new("self.topology != 'Standalone' || !has(self.replicas) || self.replicas == 1")
    .message("topology Standalone runs exactly one pod: replicas must be 1")
    .field_path(".replicas"))]
#[x_kube(validation = Rule::new("has(self.restoreFrom) == has(oldSelf.restoreFrom)")
    .message("restoreFrom is read when the cluster is created: it cannot be added or removed later"))]
#[x_kube(validation = Rule::new("self.topology == 'Replication' || self.topology == 'Sentinel' || !has(self.wakeTimeoutSeconds)")
    .message("wakeTimeoutSeconds applies only to topologies Replication and Sentinel: a Cluster or Standalone wakes once every pod is back, each holding its own data")
    .field_path(".wakeTimeoutSeconds"))]
#[x_kube(validation = Rule::new("self.topology == 'Sentinel' || !has(self.sentinel)")
    .message("sentinel applies only to topology Sentinel")
    .field_path(".sentinel"))]
#[x_kube(validation = Rule::new("!has(self.externalAccess) || (has(self.externalAccess.type) && self.externalAccess.type == 'LoadBalancer') || (!has(self.externalAccess.loadBalancerClass) && !has(self.externalAccess.loadBalancerSourceRanges))")
    .message("externalAccess.loadBalancerClass and loadBalancerSourceRanges apply only to type LoadBalancer")
    .field_path(".externalAccess"))]
#[x_kube(validation = Rule::new("!has(self.externalAccess) || !has(self.externalAccess.nodePorts) || !has(self.externalAccess.type) || self.externalAccess.type == 'NodePort'")
    .message("externalAccess.nodePorts applies only to type NodePort")
    .field_path(".externalAccess"))]
pub struct ValkeyClusterSpec {
    /// Standalone, Replication (default), Sentinel or Cluster. Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("topology is immutable"))]
    pub topology: Topology,

    /// Valkey server image (default `valkey/valkey:9.1`).
    #[serde(default = "serde_fns::image")]
    #[schemars(length(min = 1))]
    pub image: String,

    /// Image pull policy; Kubernetes' default for the tag when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets for pulling the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Data pods, primary included: Standalone must be 1 (default 1);
    /// Replication and Sentinel 1..=100 (default 3). Not used by Cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::REPLICAS_MIN, max = defaults::REPLICAS_MAX))]
    pub replicas: Option<i32>,

    /// Cluster only: number of shards (primaries), 1..=500 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::SHARDS_MIN, max = defaults::SHARDS_MAX))]
    pub shards: Option<i32>,

    /// Cluster only: replicas of each shard's primary, 0..=5 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::REPLICAS_PER_SHARD_MIN, max = defaults::REPLICAS_PER_SHARD_MAX))]
    pub replicas_per_shard: Option<i32>,

    /// Cluster only: Valkey `cluster-node-timeout` in milliseconds,
    /// 1000..=600000 (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::CLUSTER_NODE_TIMEOUT_MS_MIN, max = defaults::CLUSTER_NODE_TIMEOUT_MS_MAX))]
    pub cluster_node_timeout_milliseconds: Option<i32>,

    /// Sentinel only: the Sentinel processes. Defaults apply when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelSpec>,

    /// Health probing and operator-driven failover.
    #[serde(default)]
    pub failover: FailoverSpec,

    /// CPU and memory of the Valkey container. Set a memory limit: the
    /// operator derives `maxmemory` from it unless `config` sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels the data pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the data pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the data pods. When unset the operator prefers spreading
    /// pods of one shard across nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Topology spread constraints of the data pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,

    /// Pod-level security context of every pod the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,

    /// Container-level security context of the Valkey container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,

    /// PriorityClass of the data pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub priority_class_name: Option<String>,

    /// Extra labels on every object the operator creates. Keys under
    /// `valkey.logbook.dev/` and the `app.kubernetes.io/` keys the operator
    /// selects on are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Extra annotations on every object the operator creates. Keys under
    /// `valkey.logbook.dev/` are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Persistent volume and persistence mode of the data pods.
    #[serde(default)]
    pub storage: StorageSpec,

    /// Password authentication.
    #[serde(default)]
    pub auth: AuthSpec,

    /// TLS for all Valkey traffic.
    #[serde(default)]
    pub tls: TlsSpec,

    /// Extra `valkey.conf` directives, e.g. `maxmemory-policy: allkeys-lru`.
    /// Directives the operator owns (ports, replication, cluster, TLS,
    /// passwords, files, `save`/`appendonly`) are refused by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSpec,

    /// The PodDisruptionBudget over the data pods.
    #[serde(default)]
    pub pod_disruption_budget: PodDisruptionBudgetSpec,

    /// The NetworkPolicy admitting clients.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,

    /// Access from outside the Kubernetes cluster: a Service per data pod
    /// of type `NodePort` or `LoadBalancer`, the addresses each node
    /// announces, and the external endpoints in the connection Secret.
    /// Off by default. A Sentinel cluster exposed stays exposed (turning
    /// it off in place is refused).
    #[serde(default, skip_serializing_if = "ExternalAccessSpec::is_empty")]
    pub external_access: ExternalAccessSpec,

    /// Name of the Secret the operator keeps with `REDIS_URL`, `host`,
    /// `port` and `password` for applications (default `<name>-connection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub connection_secret: Option<String>,

    /// The operator's journal of this cluster.
    #[serde(default)]
    pub journal: JournalSpec,

    /// Backups to S3-compatible storage: destination, schedule, retention.
    #[serde(default, skip_serializing_if = "BackupSpec::is_empty")]
    pub backup: BackupSpec,

    /// Create the cluster from a backup (a ValkeyBackup or a bucket path).
    /// Read only when the cluster is created. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("restoreFrom is immutable"))]
    pub restore_from: Option<RestoreSource>,

    /// Observe and journal, but take no action (default `false`).
    #[serde(default)]
    pub paused: bool,

    /// Hibernate (default `false`): every acknowledged write is made
    /// durable, then the pods go to zero; volumes, Services and Secrets
    /// stay, and nothing is written while it sleeps. Unset it to wake the
    /// cluster as it was: the same primary, a Cluster's node ids and slot
    /// map. Needs `storage.persistence` other than `None`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hibernated: bool,

    /// Seconds a wake waits for every data pod to come back (default
    /// 120, 10..=86400). Past it, a Replication or Sentinel cluster wakes
    /// with the pods that are back when one of them holds every write made
    /// durable at sleep (the rest join as replicas when they come); until
    /// then, and for a Cluster or Standalone always, the status names each
    /// pod still away and what holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = WAKE_TIMEOUT_SECONDS_MIN, max = WAKE_TIMEOUT_SECONDS_MAX))]
    pub wake_timeout_seconds: Option<i32>,

    /// How a change of the Valkey version rolls: a preflight of the new
    /// image, then a canary watched for `upgrade.canarySeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeSpec>,

    /// Where primaries are kept: `Any` (default: where the last failover
    /// left them) or `Preferred` (moved back to their preferred pods by a
    /// switchover once those are back and in sync; Replication and
    /// Cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// A standby of another Valkey: the primary replicates from the
    /// source's (following its failovers), the cluster refuses writes,
    /// and removing this promotes it. Set only when the cluster is
    /// created; Standalone and Replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicate_from: Option<ReplicateFrom>,

    /// Namespaces whose ValkeyClusters may be standbys of this one
    /// (`replicateFrom.cluster` naming it): only they are given its
    /// address and its replication password. A standby in this cluster's
    /// own namespace needs no entry; one in any other namespace not listed
    /// is refused. Removing a namespace stops its standbys following; the
    /// password they were given stays theirs until it is rotated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub standby_namespaces: Vec<String>,

    /// A plan (a named preset of spec fields) defined by the
    /// `valkey-operator-defaults` ValkeyOperatorDefaults of this namespace
    /// or of the operator's. The cluster's own fields win over the plan's;
    /// a plan no defaults object defines is refused, naming those that are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub plan: Option<String>,
}

impl Default for ValkeyClusterSpec {
    fn default() -> Self {
        Self {
            topology: Topology::default(),
            image: serde_fns::image(),
            image_pull_policy: None,
            image_pull_secrets: Vec::new(),
            replicas: None,
            shards: None,
            replicas_per_shard: None,
            cluster_node_timeout_milliseconds: None,
            sentinel: None,
            failover: FailoverSpec::default(),
            resources: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            topology_spread_constraints: Vec::new(),
            pod_security_context: None,
            security_context: None,
            priority_class_name: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            storage: StorageSpec::default(),
            auth: AuthSpec::default(),
            tls: TlsSpec::default(),
            config: BTreeMap::new(),
            metrics: MetricsSpec::default(),
            pod_disruption_budget: PodDisruptionBudgetSpec::default(),
            network_policy: NetworkPolicySpec::default(),
            external_access: ExternalAccessSpec::default(),
            connection_secret: None,
            journal: JournalSpec::default(),
            backup: BackupSpec::default(),
            restore_from: None,
            paused: false,
            hibernated: false,
            wake_timeout_seconds: None,
            upgrade: None,
            placement: None,
            replicate_from: None,
            standby_namespaces: Vec::new(),
            plan: None,
        }
    }
}

impl ValkeyClusterSpec {
    /// How long a wake waits for every data pod, in seconds, the default
    /// filled in.
    #[must_use]
    pub fn wake_timeout_seconds(&self) -> i32 {
        self.wake_timeout_seconds.unwrap_or(WAKE_TIMEOUT_SECONDS)
    }

    /// A default spec of the given topology.
    pub fn with_topology(topology: Topology) -> Self {
        Self {
            topology,
            ..Self::default()
        }
    }

    /// Total Valkey data pods: 1 for Standalone, `replicas` (default 3) for
    /// Replication and Sentinel, `shards × (1 + replicasPerShard)` for Cluster.
    /// Sentinel pods are not counted.
    ///
    /// On a spec that failed validation the result is still defined (the
    /// given values, saturating) but meaningless.
    pub fn effective_replicas(&self) -> i32 {
        match self.topology {
            Topology::Standalone => defaults::STANDALONE_REPLICAS,
            Topology::Replication | Topology::Sentinel => {
                self.replicas.unwrap_or(defaults::REPLICAS)
            }
            Topology::Cluster => self
                .effective_shards()
                .saturating_mul(self.effective_replicas_per_shard().saturating_add(1)),
        }
    }

    /// Shards (replication groups with one primary each): `shards`
    /// (default 3) for Cluster, 1 for every other topology.
    pub fn effective_shards(&self) -> i32 {
        match self.topology {
            Topology::Cluster => self.shards.unwrap_or(defaults::SHARDS),
            Topology::Standalone | Topology::Replication | Topology::Sentinel => 1,
        }
    }

    /// Replicas behind each primary: `replicasPerShard` (default 1) for
    /// Cluster, 0 for Standalone, `replicas - 1` for Replication and Sentinel.
    pub fn effective_replicas_per_shard(&self) -> i32 {
        match self.topology {
            Topology::Cluster => self
                .replicas_per_shard
                .unwrap_or(defaults::REPLICAS_PER_SHARD),
            Topology::Standalone => 0,
            Topology::Replication | Topology::Sentinel => {
                self.effective_replicas().saturating_sub(1).max(0)
            }
        }
    }

    /// Valkey `cluster-node-timeout` in milliseconds for Cluster (default
    /// 5000); `None` for other topologies.
    pub fn effective_cluster_node_timeout_milliseconds(&self) -> Option<i32> {
        self.topology.is_cluster().then(|| {
            self.cluster_node_timeout_milliseconds
                .unwrap_or(defaults::CLUSTER_NODE_TIMEOUT_MS)
        })
    }

    /// The Sentinel settings in force for topology Sentinel (the given ones or
    /// the defaults); `None` for other topologies.
    pub fn effective_sentinel(&self) -> Option<SentinelSpec> {
        self.topology
            .uses_sentinel()
            .then(|| self.sentinel.clone().unwrap_or_default())
    }

    /// Name of the connection Secret of the cluster named `cluster_name`:
    /// `connectionSecret` when set, otherwise `<cluster_name>-connection`.
    pub fn connection_secret_name(&self, cluster_name: &str) -> String {
        self.connection_secret
            .clone()
            .unwrap_or_else(|| connection_secret_name(cluster_name))
    }
}

/// The default connection Secret name of the cluster named `cluster_name`:
/// `<cluster_name>-connection`.
pub fn connection_secret_name(cluster_name: &str) -> String {
    format!("{cluster_name}{}", defaults::CONNECTION_SECRET_SUFFIX)
}
