//! The `ValkeyCluster` resource at `v1beta1`, the version stored: the
//! same cluster as `v1alpha1` says, with its image one object
//! ([`ImageSpec`]: repository and tag apart, as charts and users write
//! them, with the pull policy and Secrets beside them) and the fields
//! only a Cluster has under `cluster` ([`ClusterSpec`]), as `sentinel`
//! holds Sentinel's: a field that applies to one topology sits under it.
//!
//! Every other field, and the status, are v1alpha1's own types, so the
//! two versions can differ only where this file says. The conversion
//! between them is `crate::conversion`, on JSON; the operator works on
//! the v1alpha1 types and converts at the API's edge.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::v1alpha1::defaults;
use crate::v1alpha1::{
    AuthSpec, BackupSpec, DNS_SUBDOMAIN_PATTERN, ExternalAccessSpec, FailoverSpec, ImagePullPolicy,
    JournalSpec, MetricsSpec, NetworkPolicySpec, Placement, PodDisruptionBudgetSpec, ReplicateFrom,
    RestoreSource, SentinelSpec, StorageSpec, TlsSpec, Topology, UpgradeSpec, ValkeyClusterStatus,
    WAKE_TIMEOUT_SECONDS_MAX, WAKE_TIMEOUT_SECONDS_MIN,
};

/// The Valkey server image.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tag) || has(self.repository) && !self.repository.contains('@')")
    .message("image.tag needs image.repository, and a repository given by digest (@sha256:...) takes no tag")
    .field_path(".tag"))]
#[x_kube(validation = Rule::new("!has(self.repository) || has(self.tag) || !self.repository.matches('^[^@]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')")
    .message("image.repository names no tag: set the tag in image.tag")
    .field_path(".repository"))]
pub struct ImageSpec {
    /// The image's repository, registry included (`valkey/valkey`,
    /// `registry.example:5000/valkey/valkey`), or a reference by digest
    /// (`valkey/valkey@sha256:...`). Default `valkey/valkey`, with tag `9.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub repository: Option<String>,

    /// The image's tag (`9.1`, `8.0.1`); the registry's `latest` when
    /// unset with a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub tag: Option<String>,

    /// Image pull policy; Kubernetes' default for the tag when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<ImagePullPolicy>,

    /// Secrets for pulling the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<LocalObjectReference>,
}

impl ImageSpec {
    /// Nothing set: the default image, Kubernetes' pull policy.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The shape of a topology Cluster.
#[derive(JsonSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Number of shards (primaries), 1..=500 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::SHARDS_MIN, max = defaults::SHARDS_MAX))]
    pub shards: Option<i32>,

    /// Replicas of each shard's primary, 0..=5 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::REPLICAS_PER_SHARD_MIN, max = defaults::REPLICAS_PER_SHARD_MAX))]
    pub replicas_per_shard: Option<i32>,

    /// Valkey `cluster-node-timeout` in milliseconds, 1000..=600000
    /// (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::CLUSTER_NODE_TIMEOUT_MS_MIN, max = defaults::CLUSTER_NODE_TIMEOUT_MS_MAX))]
    pub node_timeout_milliseconds: Option<i32>,
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
    version = "v1beta1",
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
#[x_kube(validation = Rule::new("self.topology == 'Cluster' || !has(self.cluster)")
    .message("cluster applies only to topology Cluster")
    .field_path(".cluster"))]
#[x_kube(validation = Rule::new("self.topology != 'Cluster' || !has(self.replicas)")
    .message("replicas does not apply to topology Cluster; set cluster.shards and cluster.replicasPerShard")
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

    /// The Valkey server image: repository, tag, pull policy and pull
    /// Secrets (default `valkey/valkey:9.1`).
    #[serde(default, skip_serializing_if = "ImageSpec::is_empty")]
    pub image: ImageSpec,

    /// Data pods, primary included: Standalone must be 1 (default 1);
    /// Replication and Sentinel 1..=100 (default 3). Not used by Cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = defaults::REPLICAS_MIN, max = defaults::REPLICAS_MAX))]
    pub replicas: Option<i32>,

    /// Cluster only: its shards, their replicas and Valkey's node timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSpec>,

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
