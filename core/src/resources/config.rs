//! The Valkey configuration of a cluster: `valkey.conf` rendered from the
//! spec, the config hash, and the two ConfigMaps (`<name>-config` with
//! `valkey.conf` and `start.sh`; `<name>-boot` with the primary a booting
//! pod follows).
//!
//! No password is ever rendered here: `start.sh` appends it at container
//! start from the environment. The boot ConfigMap is deliberately outside
//! the config hash: the operator rewrites it on every failover, and that
//! must not make every pod look out of date.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ConfigMap;
use logbook_crds::{ValkeyClusterSpec, parse_quantity};
use sha2::{Digest, Sha256};

use super::start_script::render_start_script_for;
use super::{ClusterMeta, VALKEY_PORT, boot_config_map_name, config_map_name};

/// Key of `valkey.conf` in the config ConfigMap.
pub const CONF_KEY: &str = "valkey.conf";
/// Key of `start.sh` in the config ConfigMap.
pub const START_SCRIPT_KEY: &str = "start.sh";
/// Key of the decided primary's address in the boot ConfigMap.
pub const PRIMARY_HOST_KEY: &str = "primary-host";

/// Hex digits of the config hash: 64 bits, plenty to tell configs apart.
const HASH_HEX_DIGITS: usize = 16;

/// The `save` schedule when RDB persistence is on (Valkey's default).
pub const SAVE_SCHEDULE: &str = "3600 1 300 100 60 10000";

/// `maxmemory` derived from the container's memory limit: 75% of it, in
/// bytes, leaving room for replication buffers, fork copy-on-write and
/// fragmentation. `None` without a (parsable) memory limit.
pub fn maxmemory_bytes(spec: &ValkeyClusterSpec) -> Option<u64> {
    let limit = spec.resources.as_ref()?.limits.as_ref()?.get("memory")?;
    let bytes = u64::try_from(parse_quantity(&limit.0).ok()?.ceil_units()).ok()?;
    Some(bytes / 4 * 3 + bytes % 4 * 3 / 4)
}

/// Seconds a Valkey Cluster primary waits before it starts a full resync.
/// A cluster node cannot boot fenced (its role is in `nodes.conf`), so a
/// primary whose process restarts in place faster than a probe sees it
/// die serves again at once, with what it had persisted or nothing; a
/// replica that still holds the writes it lost would resync from it and
/// drop them. The delay leaves the operator time to see that (a replica
/// ahead of its primary, `PrimaryHistoryReset`) and fail the shard over
/// to that replica first. Valkey's own default; Replication needs none,
/// since its pods boot fenced.
pub const CLUSTER_FULL_SYNC_DELAY_SECONDS: u32 = 5;

/// Seconds a Valkey Cluster node that stopped as a primary serving slots
/// waits before a full resync once it is back (`start.sh` reads its
/// `nodes.conf`): the fence a Cluster node can have. Its replica keeps
/// the writes the restarted primary lost while the operator sees it and
/// hands the shard over (`PrimaryBehindReplica`), even when the operator
/// itself is down at that moment and its successor must first take the
/// Lease over (15 s by default): 5 s left an operator that died right
/// after deciding the takeover no time to resume it. The executor sets
/// the normal delay back on a node it promotes; one Valkey promotes on
/// its own keeps it, so every full resync from it waits this long (an
/// operator that lifts it once the shard is settled is not built yet):
/// long enough for a successor, short enough for that cost. (120 s made
/// a full restart's replicas wait two minutes to be in sync.)
pub const CLUSTER_BOOT_FENCE_SECONDS: u32 = 30;

/// `valkey.conf` of the cluster, in a fixed order: the operator's
/// directives, then `maxmemory` (unless `spec.config` sets it), then every
/// `spec.config` directive sorted by key. Holds no password, ever.
pub fn render_valkey_conf(spec: &ValkeyClusterSpec) -> String {
    let persistence = spec.storage.persistence;
    let mut lines: Vec<String> = vec!["bind * -::*".to_owned()];
    lines.extend(port_lines(spec));
    lines.extend([
        "protected-mode no".to_owned(),
        "dir /data".to_owned(),
        if persistence.rdb() {
            format!("save {SAVE_SCHEDULE}")
        } else {
            "save \"\"".to_owned()
        },
        format!(
            "appendonly {}",
            if persistence.aof() { "yes" } else { "no" }
        ),
        "repl-diskless-sync yes".to_owned(),
        format!(
            "repl-diskless-sync-delay {}",
            if spec.effective_cluster_node_timeout_milliseconds().is_some() {
                CLUSTER_FULL_SYNC_DELAY_SECONDS
            } else {
                0
            }
        ),
        // The operator corroborates a frozen primary with its replicas'
        // last-contact age, so primaries must ping them every second.
        "repl-ping-replica-period 1".to_owned(),
        "repl-timeout 10".to_owned(),
        "replica-read-only yes".to_owned(),
        "replica-serve-stale-data yes".to_owned(),
    ]);
    if let Some(timeout) = spec.effective_cluster_node_timeout_milliseconds() {
        lines.extend([
            "cluster-enabled yes".to_owned(),
            // Relative to `dir`: on the pod's volume, so a node restarted
            // with its volume keeps its node id, role and slots.
            "cluster-config-file nodes.conf".to_owned(),
            format!("cluster-node-timeout {timeout}"),
            // Shard membership is the operator's, journaled: Valkey must
            // not move replicas between shards behind its back.
            "cluster-allow-replica-migration no".to_owned(),
        ]);
    }
    lines.extend(fence_lines(spec));
    let user_sets_maxmemory = spec
        .config
        .keys()
        .any(|k| k.eq_ignore_ascii_case("maxmemory"));
    if !user_sets_maxmemory && let Some(bytes) = maxmemory_bytes(spec) {
        lines.push(format!("maxmemory {bytes}"));
    }
    for (key, value) in &spec.config {
        // Validation refuses these; a builder must still never let a value
        // smuggle in a second directive (an owned one, say `replicaof`).
        let one_line = |s: &str| !s.contains(['\n', '\r']);
        if one_line(key) && one_line(value) && !key.trim().is_empty() {
            lines.push(format!("{key} {value}"));
        }
    }
    let mut conf = lines.join("\n");
    conf.push('\n');
    conf
}

/// `spec.failover.fenceIsolatedPrimarySeconds`: a primary that no replica
/// has acknowledged for that many seconds refuses writes (`NOREPLICAS`),
/// so one cut off from its replicas stops acknowledging writes its
/// successor will not have. Rendered for every pod: a replica ignores it
/// until it is promoted. Validation refuses it with no replica to count.
/// It reaches running servers as any `valkey.conf` change does: the
/// config hash changes and the pods roll.
fn fence_lines(spec: &ValkeyClusterSpec) -> Vec<String> {
    spec.failover
        .fence_isolated_primary_seconds
        .map(|seconds| {
            vec![
                "min-replicas-to-write 1".to_owned(),
                format!("min-replicas-max-lag {seconds}"),
            ]
        })
        .unwrap_or_default()
}

/// Where a TLS pod finds its certificate Secret (`tls.crt`, `tls.key`,
/// `ca.crt`); absolute, since the server changes into `dir`.
pub const TLS_DIR: &str = "/etc/valkey-tls";

/// The listening ports: `port 6379`, or with TLS the plaintext port closed
/// and TLS on 6379 for clients, replication and (in a Cluster) the bus,
/// from the mounted certificate Secret. The server reloads the files on
/// `CONFIG SET tls-cert-file` (`actuate/tls.rs`), so a renewed certificate
/// needs no restart.
fn port_lines(spec: &ValkeyClusterSpec) -> Vec<String> {
    if !spec.tls.enabled {
        return vec![format!("port {VALKEY_PORT}")];
    }
    let mut lines = vec!["port 0".to_owned(), format!("tls-port {VALKEY_PORT}")];
    lines.extend(tls_file_lines());
    lines.push("tls-replication yes".to_owned());
    if spec.effective_cluster_node_timeout_milliseconds().is_some() {
        lines.push("tls-cluster yes".to_owned());
    }
    lines.push(format!(
        "tls-auth-clients {}",
        if spec.tls.client_auth { "yes" } else { "no" }
    ));
    lines
}

/// The certificate, key and CA lines, also what a reload sets again.
pub fn tls_file_lines() -> [String; 3] {
    [
        format!("tls-cert-file {TLS_DIR}/tls.crt"),
        format!("tls-key-file {TLS_DIR}/tls.key"),
        format!("tls-ca-cert-file {TLS_DIR}/ca.crt"),
    ]
}

/// A short hex digest of `valkey.conf` and `start.sh` together, stamped on
/// the pod template so that a pod started with another configuration is
/// told apart. Each part is length-prefixed, so moving text from one part
/// to the other changes the hash.
pub fn config_hash(conf: &str, start_script: &str) -> String {
    hash_parts(&[conf, start_script])
}

/// The short hex digest behind [`config_hash`], over any number of parts,
/// each length-prefixed (the Sentinel ConfigMap has more than two files).
pub(super) fn hash_parts(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let mut hex = String::with_capacity(HASH_HEX_DIGITS);
    for byte in h.finalize().iter().take(HASH_HEX_DIGITS / 2) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The ConfigMap `<name>-config` (`valkey.conf` and `start.sh`) and its
/// config hash.
pub fn build_config_map(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> (ConfigMap, String) {
    let conf = render_valkey_conf(spec);
    let script = render_start_script_for(spec);
    let hash = config_hash(&conf, &script);
    let cm = ConfigMap {
        metadata: meta.object_meta(config_map_name(&meta.name), spec),
        data: Some(BTreeMap::from([
            (CONF_KEY.to_owned(), conf),
            (START_SCRIPT_KEY.to_owned(), script),
        ])),
        ..ConfigMap::default()
    };
    (cm, hash)
}

/// The ConfigMap `<name>-boot`: `primary-host` is the address of the
/// primary the operator last decided, or empty when none is (a booting
/// pod then fences itself). Not part of the config hash.
pub fn build_boot_config_map(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    primary_ip: Option<&str>,
) -> ConfigMap {
    ConfigMap {
        metadata: meta.object_meta(boot_config_map_name(&meta.name), spec),
        data: Some(BTreeMap::from([(
            PRIMARY_HOST_KEY.to_owned(),
            primary_ip.unwrap_or_default().to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use logbook_crds::{Persistence, Topology};

    use super::super::test_support::meta;
    use super::*;

    fn with_memory_limit(limit: &str) -> ValkeyClusterSpec {
        ValkeyClusterSpec {
            resources: Some(ResourceRequirements {
                limits: Some(BTreeMap::from([(
                    "memory".to_owned(),
                    Quantity(limit.to_owned()),
                )])),
                ..ResourceRequirements::default()
            }),
            ..ValkeyClusterSpec::default()
        }
    }

    #[test]
    fn maxmemory_is_three_quarters_of_the_limit() {
        assert_eq!(maxmemory_bytes(&ValkeyClusterSpec::default()), None);
        assert_eq!(
            maxmemory_bytes(&with_memory_limit("1Gi")),
            Some(805_306_368)
        );
        assert_eq!(maxmemory_bytes(&with_memory_limit("1000")), Some(750));
        assert_eq!(maxmemory_bytes(&with_memory_limit("3")), Some(2));
        assert_eq!(maxmemory_bytes(&with_memory_limit("bogus")), None);
        let conf = render_valkey_conf(&with_memory_limit("1Gi"));
        assert!(conf.contains("\nmaxmemory 805306368\n"), "{conf}");
    }

    #[test]
    fn user_maxmemory_replaces_the_derived_one() {
        let mut spec = with_memory_limit("1Gi");
        spec.config.insert("maxmemory".into(), "100mb".into());
        let conf = render_valkey_conf(&spec);
        assert_eq!(conf.matches("maxmemory ").count(), 1, "{conf}");
        assert!(conf.contains("\nmaxmemory 100mb\n"));
    }

    #[test]
    fn conf_has_the_owned_directives_then_sorted_user_config() {
        let mut spec = ValkeyClusterSpec::default();
        spec.config
            .insert("maxmemory-policy".into(), "allkeys-lru".into());
        spec.config.insert("hz".into(), "20".into());
        spec.config
            .insert("evil".into(), "1\nreplicaof 10.0.0.1 6379".into());
        let conf = render_valkey_conf(&spec);
        let lines: Vec<&str> = conf.lines().collect();
        assert_eq!(lines[0], "bind * -::*");
        assert_eq!(lines[1], "port 6379");
        assert!(lines.contains(&"protected-mode no"));
        assert!(lines.contains(&"dir /data"));
        assert!(lines.contains(&"repl-ping-replica-period 1"));
        assert!(lines.contains(&"repl-diskless-sync yes"));
        assert!(lines.contains(&"replica-read-only yes"));
        assert_eq!(
            &lines[lines.len() - 2..],
            ["hz 20", "maxmemory-policy allkeys-lru"]
        );
        assert!(!conf.contains("replicaof"), "{conf}");
        assert!(!conf.contains("requirepass") && !conf.contains("masterauth"));
    }

    #[test]
    fn a_fence_renders_min_replicas_and_changes_the_hash() {
        let mut spec = ValkeyClusterSpec::with_topology(logbook_crds::Topology::Replication);
        let off = render_valkey_conf(&spec);
        assert!(!off.contains("min-replicas"), "{off}");
        spec.failover.fence_isolated_primary_seconds = Some(2);
        let on = render_valkey_conf(&spec);
        let lines: Vec<&str> = on.lines().collect();
        assert!(lines.contains(&"min-replicas-to-write 1"), "{on}");
        assert!(lines.contains(&"min-replicas-max-lag 2"), "{on}");
        spec.failover.fence_isolated_primary_seconds = Some(5);
        let five = render_valkey_conf(&spec);
        assert!(
            five.lines().any(|l| l == "min-replicas-max-lag 5"),
            "{five}"
        );
        // A change reaches running servers by the roll a new hash starts.
        let script = "s";
        assert_ne!(config_hash(&off, script), config_hash(&on, script));
        assert_ne!(config_hash(&on, script), config_hash(&five, script));
    }

    #[test]
    fn tls_closes_the_plaintext_port_and_serves_every_link_over_tls() {
        let mut spec = ValkeyClusterSpec::default();
        spec.tls.enabled = true;
        let conf = render_valkey_conf(&spec);
        let lines: Vec<&str> = conf.lines().collect();
        for want in [
            "port 0",
            "tls-port 6379",
            "tls-cert-file /etc/valkey-tls/tls.crt",
            "tls-key-file /etc/valkey-tls/tls.key",
            "tls-ca-cert-file /etc/valkey-tls/ca.crt",
            "tls-replication yes",
            "tls-auth-clients no",
        ] {
            assert!(lines.contains(&want), "{want} missing from {conf}");
        }
        assert!(!lines.contains(&"port 6379"), "{conf}");
        assert!(!conf.contains("tls-cluster"), "{conf}");
        spec.topology = logbook_crds::Topology::Cluster;
        spec.tls.client_auth = true;
        let conf = render_valkey_conf(&spec);
        assert!(conf.contains("\ntls-cluster yes\n"), "{conf}");
        assert!(conf.contains("\ntls-auth-clients yes\n"), "{conf}");
        // Without TLS nothing of it.
        assert!(!render_valkey_conf(&ValkeyClusterSpec::default()).contains("tls"));
    }

    #[test]
    fn a_cluster_node_runs_the_specs_node_timeout_and_no_other_topology_is_a_cluster() {
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
        spec.cluster_node_timeout_milliseconds = Some(2000);
        let conf = render_valkey_conf(&spec);
        assert!(conf.contains("\ncluster-enabled yes\n"), "{conf}");
        assert!(conf.contains("\ncluster-node-timeout 2000\n"), "{conf}");
        assert_eq!(conf.matches("cluster-node-timeout").count(), 1, "{conf}");
        // Unset: the default, 5 s.
        spec.cluster_node_timeout_milliseconds = None;
        let conf = render_valkey_conf(&spec);
        assert!(conf.contains("\ncluster-node-timeout 5000\n"), "{conf}");
        for topology in [
            Topology::Standalone,
            Topology::Replication,
            Topology::Sentinel,
        ] {
            let conf = render_valkey_conf(&ValkeyClusterSpec::with_topology(topology));
            assert!(!conf.contains("cluster-"), "{topology}: {conf}");
        }
    }

    #[test]
    fn persistence_sets_save_and_appendonly() {
        let conf = |p| {
            let mut s = ValkeyClusterSpec::default();
            s.storage.persistence = p;
            render_valkey_conf(&s)
        };
        let rdb = conf(Persistence::Rdb);
        assert!(
            rdb.contains("\nsave 3600 1 300 100 60 10000\n") && rdb.contains("\nappendonly no\n")
        );
        let none = conf(Persistence::None);
        assert!(none.contains("\nsave \"\"\n") && none.contains("\nappendonly no\n"));
        let aof = conf(Persistence::Aof);
        assert!(aof.contains("\nsave \"\"\n") && aof.contains("\nappendonly yes\n"));
        let both = conf(Persistence::RdbAndAof);
        assert!(both.contains("\nsave 3600") && both.contains("\nappendonly yes\n"));
    }

    #[test]
    fn config_map_holds_conf_and_script_and_its_hash_follows_them() {
        let spec = ValkeyClusterSpec::default();
        let (cm, hash) = build_config_map(&meta(), &spec);
        assert_eq!(cm.metadata.name.as_deref(), Some("cache-config"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(cm.metadata.owner_references.as_ref().unwrap().len(), 1);
        let data = cm.data.as_ref().unwrap();
        assert_eq!(data[CONF_KEY], render_valkey_conf(&spec));
        assert_eq!(
            data[START_SCRIPT_KEY],
            super::super::start_script::render_start_script(spec.topology)
        );
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(build_config_map(&meta(), &spec).1, hash, "deterministic");

        let mut changed = spec.clone();
        changed.config.insert("hz".into(), "20".into());
        assert_ne!(build_config_map(&meta(), &changed).1, hash);
        let standalone = ValkeyClusterSpec::with_topology(Topology::Standalone);
        assert_ne!(build_config_map(&meta(), &standalone).1, hash);
        assert_ne!(config_hash("ab", "c"), config_hash("a", "bc"));
    }

    #[test]
    fn boot_config_map_names_the_primary_and_is_outside_the_hash() {
        let spec = ValkeyClusterSpec::default();
        let hash = build_config_map(&meta(), &spec).1;
        let boot = build_boot_config_map(&meta(), &spec, Some("10.0.0.7"));
        assert_eq!(boot.metadata.name.as_deref(), Some("cache-boot"));
        assert_eq!(boot.data.as_ref().unwrap()[PRIMARY_HOST_KEY], "10.0.0.7");
        let none = build_boot_config_map(&meta(), &spec, None);
        assert_eq!(none.data.as_ref().unwrap()[PRIMARY_HOST_KEY], "");
        assert_eq!(build_config_map(&meta(), &spec).1, hash);
    }
}
