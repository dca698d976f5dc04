//! Object builders: the Kubernetes objects of one ValkeyCluster, rendered
//! from its spec. Pure: no client, no I/O (except [`generate_password`],
//! which reads `/dev/urandom`), no logging.
//!
//! Every builder returns a complete object for server-side apply under
//! [`FIELD_MANAGER`]: name, namespace, the [`labels::common`] labels, the
//! spec's annotations and a controller owner reference to the cluster.
//! Builders never decide roles: the `role` label is moved on pods by the
//! operator, and which pod a booting replica follows comes from the boot
//! ConfigMap the operator renders from its projection.
//!
//! Files, one concern each: `labels.rs` (label keys and sets), `config.rs`
//! (`valkey.conf`, the config hash, both ConfigMaps), `start_script.rs`
//! (the container's `start.sh`), `statefulset.rs`, `services.rs`,
//! `secrets.rs` (password and connection Secrets) and `pdb.rs`; for
//! topology Sentinel, `sentinel.rs` (the Sentinel ConfigMap, StatefulSet,
//! Services and PDB) and `sentinel_script.rs` (`sentinel.conf` and the
//! Sentinel container's `start.sh`).
//!
//! Secrets: passwords reach builders as plain `&str` arguments and go only
//! into Secret `data`; no builder formats, logs or returns them anywhere
//! else, and no ConfigMap or pod template ever contains one.

pub mod announce;
mod config;
mod exporter;
pub mod external;
pub mod internal_users;
pub mod labels;
mod network_policy;
mod pdb;
mod preflight;
pub mod restore;
mod secrets;
mod sentinel;
mod sentinel_script;
mod services;
mod start_script;
mod statefulset;

pub use crate::names::{
    SENTINEL_PORT, sentinel_master_name, sentinel_service_name, statefulset_name,
};
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use logbook_crds::{ValkeyCluster, ValkeyClusterSpec};

pub use config::{
    CLUSTER_BOOT_FENCE_SECONDS, CLUSTER_FULL_SYNC_DELAY_SECONDS, CONF_KEY, PRIMARY_HOST_KEY,
    SAVE_SCHEDULE, START_SCRIPT_KEY, TLS_DIR, build_boot_config_map, build_config_map, config_hash,
    maxmemory_bytes, render_valkey_conf, tls_file_lines,
};
pub use exporter::{
    EXPORTER_CONTAINER_NAME, EXPORTER_PORT, EXPORTER_PORT_NAME, build_metrics_service,
    metrics_service_name,
};
pub use external::build_external_services;
pub use network_policy::{OPERATOR_POD_LABELS, build_network_policy, network_policy_name};
pub use pdb::build_pdb;
pub use preflight::{PREFLIGHT_NAME_VALUE, build_preflight, preflight_name};
pub use secrets::{
    CONNECTION_HOST_KEY, CONNECTION_PASSWORD_KEY, CONNECTION_PORT_KEY,
    CONNECTION_SENTINEL_HOST_KEY, CONNECTION_SENTINEL_MASTER_NAME_KEY,
    CONNECTION_SENTINEL_PORT_KEY, CONNECTION_SENTINELS_KEY, CONNECTION_URL_KEY,
    CONNECTION_USER_LABEL, CONNECTION_USERNAME_KEY, Credentials, build_connection_secret,
    build_password_secret, build_user_connection_secret, client_host, connection_url,
    generate_password, sentinel_host,
};
pub use sentinel::{
    SENTINEL_CONTAINER_NAME, SENTINEL_PORT_NAME, build_sentinel_config_map,
    build_sentinel_headless_service, build_sentinel_pdb, build_sentinel_service,
    build_sentinel_statefulset,
};
pub use sentinel_script::{
    SENTINEL_CONF_KEY, SENTINEL_MASTER_CONF_KEY, SENTINEL_MYID_KEY_PREFIX,
    SENTINEL_START_SCRIPT_KEY, render_sentinel_conf, render_sentinel_master_conf,
    render_sentinel_start_script, sentinel_myid,
};
pub use services::{build_client_service, build_headless_service, build_read_service};
pub use start_script::{FENCE_HOST, render_start_script};
pub use statefulset::{
    CONTAINER_NAME, DATA_VOLUME, PASSWORD_ENV, POD_IP_ENV, PORT_NAME, build_statefulset,
    keep_claim_templates,
};

/// The server-side apply field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "logbook";

/// The port Valkey serves clients and replication on, in every pod.
pub const VALKEY_PORT: u16 = 6379;

/// The Valkey address of a pod (or of the fence host) at `ip`; `None` when
/// `ip` is not an IP address.
pub fn valkey_addr(ip: &str) -> Option<std::net::SocketAddr> {
    ip.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| std::net::SocketAddr::new(ip, VALKEY_PORT))
}

/// The Sentinel address of a Sentinel pod IP; `None` when it is no IP.
pub fn sentinel_addr(ip: &str) -> Option<std::net::SocketAddr> {
    ip.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| std::net::SocketAddr::new(ip, SENTINEL_PORT))
}

/// API version of the owner (`ValkeyCluster`) in owner references.
const OWNER_API_VERSION: &str = "valkey.logbook.dev/v1alpha1";
/// Kind of the owner in owner references.
const OWNER_KIND: &str = "ValkeyCluster";

/// Name of data pod `ordinal` (the StatefulSet's naming).
pub fn pod_name(cluster: &str, ordinal: i32) -> String {
    format!("{}-{ordinal}", statefulset_name(cluster))
}

/// Name of the ConfigMap holding `valkey.conf` and `start.sh`.
pub fn config_map_name(cluster: &str) -> String {
    format!("{cluster}-config")
}

/// Whether the cluster sleeps: `spec.hibernated` set and its data made
/// durable (the journal's hibernation), so that its StatefulSets are
/// applied at zero pods. Until the data is durable they keep their size.
pub fn hibernated(spec: &ValkeyClusterSpec, state: &logbook_journal::ClusterState) -> bool {
    spec.hibernated && state.hibernation.is_some()
}

/// `statefulset` at zero pods.
pub fn scale_to_zero(statefulset: &mut k8s_openapi::api::apps::v1::StatefulSet) {
    if let Some(spec) = statefulset.spec.as_mut() {
        spec.replicas = Some(0);
    }
}

/// `statefulset`'s pod template stamped with the last restart carried out
/// ([`labels::RESTARTED_AT`]), when there was one: every apply keeps it,
/// so that only a new request changes the template's revision.
pub fn stamp_restart(
    statefulset: &mut k8s_openapi::api::apps::v1::StatefulSet,
    restarted_at: Option<&str>,
) {
    let Some(at) = restarted_at else {
        return;
    };
    if let Some(spec) = statefulset.spec.as_mut() {
        spec.template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(labels::RESTARTED_AT.to_owned(), at.to_owned());
    }
}

/// Name of the ConfigMap telling a booting pod which primary to follow.
pub fn boot_config_map_name(cluster: &str) -> String {
    format!("{cluster}-boot")
}

/// Name of the headless Service governing the StatefulSet.
pub fn headless_service_name(cluster: &str) -> String {
    format!("{cluster}-headless")
}

/// Name of the client Service, which selects the primary.
pub fn client_service_name(cluster: &str) -> String {
    cluster.to_owned()
}

/// Name of the read Service, which selects the replicas.
pub fn read_service_name(cluster: &str) -> String {
    format!("{cluster}-read")
}

/// Name of the PodDisruptionBudget over the data pods.
pub fn pdb_name(cluster: &str) -> String {
    cluster.to_owned()
}

/// Name of the Sentinel StatefulSet of topology Sentinel: `<cluster>-sentinel`.
/// A name this long is why a Sentinel cluster's name is at most
/// [`MAX_SENTINEL_CLUSTER_NAME`](logbook_crds::MAX_SENTINEL_CLUSTER_NAME).
pub fn sentinel_statefulset_name(cluster: &str) -> String {
    format!("{cluster}-sentinel")
}

/// Name of Sentinel pod `ordinal` (the StatefulSet's naming).
pub fn sentinel_pod_name(cluster: &str, ordinal: i32) -> String {
    format!("{}-{ordinal}", sentinel_statefulset_name(cluster))
}

/// Name of the headless Service governing the Sentinel StatefulSet, which
/// gives each Sentinel pod a stable DNS name: `<cluster>-sentinel-hl`
/// (short, so it stays a 63-character DNS label for a 43-character name).
pub fn sentinel_headless_service_name(cluster: &str) -> String {
    format!("{cluster}-sentinel-hl")
}

/// Name of the ConfigMap holding `sentinel.conf` and the Sentinel
/// `start.sh`: `<cluster>-sentinel-config`.
pub fn sentinel_config_map_name(cluster: &str) -> String {
    format!("{cluster}-sentinel-config")
}

/// Name of the PodDisruptionBudget over the Sentinel pods: `<cluster>-sentinel`.
pub fn sentinel_pdb_name(cluster: &str) -> String {
    format!("{cluster}-sentinel")
}

/// Identity of the ValkeyCluster that owns the built objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterMeta {
    /// `metadata.name` of the ValkeyCluster.
    pub name: String,
    /// `metadata.namespace`, where every owned object lives.
    pub namespace: String,
    /// `metadata.uid`, for the owner reference.
    pub uid: String,
}

impl ClusterMeta {
    /// The identity of `cluster`; `None` when its name, namespace or uid is
    /// missing (an object not yet stored by the API server).
    pub fn from_cluster(cluster: &ValkeyCluster) -> Option<ClusterMeta> {
        Some(ClusterMeta {
            name: cluster.metadata.name.clone()?,
            namespace: cluster.metadata.namespace.clone()?,
            uid: cluster.metadata.uid.clone()?,
        })
    }

    /// A controller owner reference to the cluster: deleting the cluster
    /// garbage-collects every object built here (PVCs excepted, which the
    /// StatefulSet's retention policy keeps).
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: OWNER_API_VERSION.to_owned(),
            kind: OWNER_KIND.to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Metadata of an owned object named `name`: namespace, common labels,
    /// the spec's annotations, the ownership annotation
    /// ([`labels::OWNED_BY`]) and the owner reference.
    pub fn object_meta(&self, name: String, spec: &ValkeyClusterSpec) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels::common(&self.name, spec)),
            annotations: Some(self.annotations(spec)),
            owner_references: Some(vec![self.owner_reference()]),
            ..ObjectMeta::default()
        }
    }
}

impl ClusterMeta {
    /// The annotations of an owned object: the spec's, and the ownership
    /// annotation naming the cluster (which wins: validation refuses the
    /// operator's keys in the spec).
    pub fn annotations(&self, spec: &ValkeyClusterSpec) -> BTreeMap<String, String> {
        let mut annotations = spec.annotations.clone();
        annotations.insert(labels::OWNED_BY.to_owned(), self.name.clone());
        annotations
    }
}

/// `None` for an empty map, so applied objects do not claim an empty field.
fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixtures shared by the builders' tests.
    use super::ClusterMeta;

    pub(crate) fn meta() -> ClusterMeta {
        ClusterMeta {
            name: "cache".to_owned(),
            namespace: "prod".to_owned(),
            uid: "0b6a2f4e-uid".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn owner_reference_is_a_blocking_controller_reference() {
        let r = test_support::meta().owner_reference();
        assert_eq!(r.api_version, "valkey.logbook.dev/v1alpha1");
        assert_eq!(r.kind, "ValkeyCluster");
        assert_eq!(r.name, "cache");
        assert_eq!(r.uid, "0b6a2f4e-uid");
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
    }

    #[test]
    fn object_meta_carries_labels_annotations_and_owner() {
        let mut spec = ValkeyClusterSpec::default();
        spec.annotations.insert("team".into(), "cache".into());
        let m = test_support::meta().object_meta("x".into(), &spec);
        assert_eq!(m.name.as_deref(), Some("x"));
        assert_eq!(m.namespace.as_deref(), Some("prod"));
        assert_eq!(m.labels.unwrap()[labels::CLUSTER], "cache");
        assert_eq!(m.annotations.unwrap()["team"], "cache");
        assert_eq!(m.owner_references.unwrap().len(), 1);
        let bare = test_support::meta().object_meta("x".into(), &ValkeyClusterSpec::default());
        // Only the ownership annotation, naming the cluster.
        assert_eq!(
            bare.annotations,
            Some(BTreeMap::from([(
                labels::OWNED_BY.to_owned(),
                "cache".to_owned()
            )]))
        );
    }

    #[test]
    fn from_cluster_needs_name_namespace_and_uid() {
        let mut c = ValkeyCluster::new("cache", ValkeyClusterSpec::default());
        assert_eq!(ClusterMeta::from_cluster(&c), None);
        c.metadata.namespace = Some("prod".into());
        c.metadata.uid = Some("0b6a2f4e-uid".into());
        assert_eq!(ClusterMeta::from_cluster(&c), Some(test_support::meta()));
    }

    #[test]
    fn sentinel_names() {
        assert_eq!(sentinel_statefulset_name("cache"), "cache-sentinel");
        assert_eq!(sentinel_pod_name("cache", 2), "cache-sentinel-2");
        assert_eq!(sentinel_service_name("cache"), "cache-sentinel");
        assert_eq!(sentinel_headless_service_name("cache"), "cache-sentinel-hl");
        assert_eq!(sentinel_config_map_name("cache"), "cache-sentinel-config");
        assert_eq!(sentinel_pdb_name("cache"), "cache-sentinel");
        assert_eq!(sentinel_master_name("cache"), "cache");
    }

    #[test]
    fn sentinel_names_fit_their_limits_at_the_longest_sentinel_cluster_name() {
        let longest = "a".repeat(logbook_crds::MAX_SENTINEL_CLUSTER_NAME);
        // The StatefulSet's pods are labelled
        // controller-revision-hash=<sts>-<hash of up to 10 characters>.
        assert!(sentinel_statefulset_name(&longest).len() + 1 + 10 <= 63);
        // Services are DNS-1035 labels; a pod's hostname a DNS-1123 label.
        assert!(sentinel_headless_service_name(&longest).len() <= 63);
        assert!(sentinel_service_name(&longest).len() <= 63);
        let last = logbook_crds::v1alpha1::defaults::SENTINEL_REPLICAS_MAX - 1;
        assert!(sentinel_pod_name(&longest, last).len() <= 63);
    }

    #[test]
    fn names() {
        assert_eq!(pod_name("cache", 2), "cache-2");
        assert_eq!(config_map_name("cache"), "cache-config");
        assert_eq!(boot_config_map_name("cache"), "cache-boot");
        assert_eq!(headless_service_name("cache"), "cache-headless");
        assert_eq!(client_service_name("cache"), "cache");
        assert_eq!(read_service_name("cache"), "cache-read");
    }
}
