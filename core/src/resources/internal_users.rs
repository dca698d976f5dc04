//! The internal ACL users: what the operator and the servers themselves
//! need, each with the least it needs, so that nothing of Logbook's own
//! runs as `default` (the cluster password, the applications' and the
//! administrators') and a change of that password never touches them.
//!
//! | user | who | on |
//! |---|---|---|
//! | `logbook-operator` | the operator's admin connection | data nodes, Sentinels |
//! | `logbook-replication` | replicas to their primary (`masteruser`), slot migration | data nodes |
//! | `logbook-sentinel` | Sentinels to the data nodes (`auth-user`) and to each other (`sentinel-user`) | data nodes, Sentinels |
//! | `logbook-metrics` | the metrics exporter (read-only server facts) | data nodes, Sentinels (with `spec.metrics`) |
//!
//! Their passwords are generated once into the Secret `<name>-internal`
//! (one key per user; beside them the cluster's fingerprint key,
//! [`FINGERPRINT_KEY`]) and reach the pods through the environment; the
//! start scripts write the users into the ACL file (or the config file)
//! before the server starts, so they exist from the first connection.
//! Names starting with `logbook-` are refused for ValkeyUsers.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, Secret, SecretKeySelector};
use logbook_crds::{Topology, ValkeyClusterSpec};

use super::ClusterMeta;

/// The operator's admin user.
pub const OPERATOR_USER: &str = "logbook-operator";
/// The replication user (`masteruser`).
pub const REPLICATION_USER: &str = "logbook-replication";
/// The Sentinels' user.
pub use crate::credentials::SENTINEL_USER;
/// The metrics exporter's user.
pub const METRICS_USER: &str = "logbook-metrics";

/// One internal user: its name, its key in `<name>-internal`, and the
/// environment variable its password reaches a pod in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalUser {
    /// The ACL user name.
    pub name: &'static str,
    /// Its key in the internal Secret.
    pub key: &'static str,
    /// The environment variable of the start scripts.
    pub env: &'static str,
}

/// Every internal user, in a fixed order.
pub const INTERNAL_USERS: [InternalUser; 4] = [
    InternalUser {
        name: OPERATOR_USER,
        key: "operator",
        env: "LOGBOOK_OPERATOR_PASSWORD",
    },
    InternalUser {
        name: REPLICATION_USER,
        key: "replication",
        env: "LOGBOOK_REPLICATION_PASSWORD",
    },
    InternalUser {
        name: SENTINEL_USER,
        key: "sentinel",
        env: "LOGBOOK_SENTINEL_PASSWORD",
    },
    InternalUser {
        name: METRICS_USER,
        key: "metrics",
        env: "LOGBOOK_METRICS_PASSWORD",
    },
];

/// The internal user named `name`.
pub fn internal_user(name: &str) -> Option<InternalUser> {
    INTERNAL_USERS.iter().copied().find(|u| u.name == name)
}

/// What a cluster's internal Secret's name ends with.
pub const INTERNAL_SECRET_SUFFIX: &str = "-internal";

/// `<cluster>-internal`.
pub fn internal_secret_name(cluster: &str) -> String {
    format!("{cluster}{INTERNAL_SECRET_SUFFIX}")
}

/// The cluster whose internal Secret `secret` is, if it is one.
pub fn internal_secret_cluster(secret: &str) -> Option<&str> {
    secret.strip_suffix(INTERNAL_SECRET_SUFFIX)
}

/// What each internal user may do on a data node of `topology`, after its
/// password: the commands each one sends, nothing else.
///
/// - The operator: probes (`PING`, `INFO`, `ROLE`), role changes
///   (`REPLICAOF`, `FAILOVER`, `WAIT`, `CLIENT PAUSE`/`UNPAUSE`), settings
///   (`CONFIG GET`/`SET`), the Cluster (`CLUSTER`, and for the classic
///   reshard `MIGRATE` with the keys it moves and what the target runs for
///   it as this user: `SELECT`, `RESTORE-ASKING`, `ASKING`), the ValkeyUsers (`ACL SETUSER`/`DELUSER`/`LIST`/`SAVE`), hibernation's
///   durability (`SAVE`, `BGREWRITEAOF`).
/// - Replication: `PSYNC`, `REPLCONF`, `PING`. In a Cluster, atomic slot
///   migration authenticates as this user too, and the target runs the
///   migrated slots' stream (`SELECT`, every write command) as it: there
///   it may run every data command but no admin one (`-@admin`), plus
///   `CLUSTER` (`CLUSTER SYNCSLOTS`, a subcommand older servers do not
///   know, so the whole command: an ACL file naming an unknown subcommand
///   would stop the server from starting). Found with a real 9.1 server:
///   with replication's three commands alone, a migration under writes
///   fails with `NOPERM ... 'select'` on the target.
/// - Sentinel: what Sentinel sends a monitored node (`INFO`, `PING`,
///   `ROLE`, the hello channel, `REPLICAOF`/`SLAVEOF` with `MULTI`/`EXEC`,
///   `FAILOVER` and `CLIENT PAUSE` (in its `MULTI`) for `SENTINEL
///   FAILOVER … COORDINATED`, `CONFIG REWRITE`, `CLIENT SETNAME`/`KILL`,
///   `SCRIPT KILL`). Found with a real 9.1 Sentinel: without `CLIENT
///   PAUSE` a coordinated failover stops waiting for the promotion (the
///   node's `ACL LOG` names it).
/// - Metrics: server facts only (`INFO`, `PING`, `ROLE`, `DBSIZE`,
///   latency, slow log, memory stats, `CLUSTER INFO`, `CLIENT LIST`); no
///   key, no `CONFIG GET` (which would show `masterauth`).
pub fn data_node_rules(user: &str, topology: Topology) -> &'static str {
    match (user, topology) {
        (OPERATOR_USER, _) => {
            "~* &* -@all +ping +info +role +wait +replicaof +failover +config|get +config|set +client|pause +client|unpause +client|setname +cluster +migrate +select +restore +restore-asking +asking +acl|setuser +acl|deluser +acl|list +acl|save +save +bgrewriteaof"
        }
        (REPLICATION_USER, Topology::Cluster) => {
            "~* &* +@all -@admin +psync +replconf +ping +cluster"
        }
        (REPLICATION_USER, _) => "-@all +psync +replconf +ping",
        (SENTINEL_USER, _) => {
            "&__sentinel__:hello -@all +ping +info +role +subscribe +publish +replicaof +slaveof +failover +multi +exec +config|rewrite +client|setname +client|kill +client|pause +client|unpause +script|kill"
        }
        _ => {
            "-@all +ping +info +role +dbsize +latency|latest +latency|history +slowlog|get +slowlog|len +memory|stats +cluster|info +client|list"
        }
    }
}

/// What the operator and the other Sentinels may do on a Sentinel.
pub fn sentinel_node_rules(user: &str) -> Option<&'static str> {
    match user {
        OPERATOR_USER => Some(
            "&* -@all +ping +info +role +sentinel +subscribe +psubscribe +client|setname +acl|setuser +acl|list",
        ),
        SENTINEL_USER => Some(
            "&* -@all +ping +info +role +sentinel +subscribe +psubscribe +publish +client|setname +client|kill",
        ),
        // What redis_exporter reads of a Sentinel (found with a real 9.1
        // Sentinel and the exporter: `ACL LOG` named `sentinel|ckquorum`).
        METRICS_USER => Some(
            "-@all +ping +info +role +sentinel|masters +sentinel|master +sentinel|sentinels +sentinel|slaves +sentinel|replicas +sentinel|ckquorum",
        ),
        _ => None,
    }
}

/// The key of the internal Secret that holds the cluster's fingerprint
/// key: the HMAC key of the password fingerprints and `ACL LIST` digests
/// the journal, statuses and exports show (`crate::credentials::FingerprintKey`).
/// Generated once, with the passwords; never rotated by the operator.
pub const FINGERPRINT_KEY: &str = "fingerprint-key";

/// The internal Secret with `passwords` (key → password) and the
/// fingerprint key's bytes.
pub fn build_internal_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    passwords: &BTreeMap<String, String>,
    fingerprint_key: &[u8],
) -> Secret {
    let mut data: BTreeMap<String, ByteString> = passwords
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
        .collect();
    data.insert(
        FINGERPRINT_KEY.to_owned(),
        ByteString(fingerprint_key.to_vec()),
    );
    Secret {
        metadata: meta.object_meta(internal_secret_name(&meta.name), spec),
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The bytes of the fingerprint key in the internal Secret `secret`, when
/// it has one (the operator's `credentials::fingerprint_key_in` makes it
/// a key, refusing one that is too short).
pub fn fingerprint_key_bytes_in(secret: Option<&Secret>) -> Option<&[u8]> {
    Some(secret?.data.as_ref()?.get(FINGERPRINT_KEY)?.0.as_slice())
}

/// The environment variables of `users` from the internal Secret.
pub fn internal_env(meta: &ClusterMeta, users: &[&str]) -> Vec<EnvVar> {
    INTERNAL_USERS
        .iter()
        .filter(|u| users.contains(&u.name))
        .map(|u| EnvVar {
            name: u.env.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: internal_secret_name(&meta.name),
                    key: u.key.to_owned(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
            value: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_has_its_own_key_and_variable_and_least_rules() {
        let mut keys: Vec<&str> = INTERNAL_USERS.iter().map(|u| u.key).collect();
        keys.dedup();
        assert_eq!(keys.len(), 4);
        for u in INTERNAL_USERS {
            assert!(u.name.starts_with("logbook-"));
            assert!(data_node_rules(u.name, Topology::Replication).contains("-@all"));
        }
        // Replication may not write or read keys; metrics may not read
        // settings (masterauth) or keys.
        let repl = data_node_rules(REPLICATION_USER, Topology::Replication);
        assert!(!repl.contains('~') && !repl.contains("+set"), "{repl}");
        let metrics = data_node_rules(METRICS_USER, Topology::Cluster);
        assert!(
            !metrics.contains("config") && !metrics.contains('~'),
            "{metrics}"
        );
        assert!(data_node_rules(REPLICATION_USER, Topology::Cluster).contains("+cluster"));
        // On a Sentinel: read-only SENTINEL subcommands, no channel.
        let sentinel_metrics = sentinel_node_rules(METRICS_USER).unwrap_or_default();
        assert!(
            sentinel_metrics.contains("+sentinel|masters")
                && !sentinel_metrics.contains("+sentinel ")
                && !sentinel_metrics.contains('&'),
            "{sentinel_metrics}"
        );
    }

    #[test]
    fn the_internal_secret_carries_the_fingerprint_key() {
        use super::super::test_support::meta;
        let spec = ValkeyClusterSpec::default();
        let passwords = BTreeMap::from([("operator".to_owned(), "pw".to_owned())]);
        let key = [9u8; 32];
        let secret = build_internal_secret(&meta(), &spec, &passwords, &key);
        let data = secret.data.clone().unwrap_or_default();
        assert_eq!(
            data.get("operator").map(|b| b.0.as_slice()),
            Some(&b"pw"[..])
        );
        assert_eq!(fingerprint_key_bytes_in(Some(&secret)), Some(&key[..]));
        assert_eq!(fingerprint_key_bytes_in(None), None);
        assert_eq!(fingerprint_key_bytes_in(Some(&Secret::default())), None);
    }
}
