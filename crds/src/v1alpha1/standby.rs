//! A standby of another Valkey: `spec.replicateFrom`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::DNS_SUBDOMAIN_PATTERN;

/// Default bound on a standby's lag, in bytes of the source's replication
/// stream (1 MiB): crossing it, either way, is journaled.
pub const MAX_LAG_BYTES: i64 = 1024 * 1024;

/// The key of the credentials Secret holding the source's replication
/// password (the source's `<name>-internal` key of the same name).
pub const SOURCE_REPLICATION_KEY: &str = "replication";
/// The key of the credentials Secret holding the source's metrics
/// password, with which the operator reads the source's offset (optional:
/// without it the lag is unknown).
pub const SOURCE_METRICS_KEY: &str = "metrics";

/// The cluster is a standby of another Valkey: its primary replicates from
/// the source's primary (through the source's client Service, so it
/// follows the source's failovers), its replicas from its primary, and it
/// refuses writes. Set only when the cluster is created; removing it
/// promotes the standby (a journaled decision that reports how far behind
/// the source it was). Standalone and Replication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicateFrom {
    /// A Logbook ValkeyCluster the operator can read (another namespace of
    /// this Kubernetes): its client Service and its `<name>-internal`
    /// Secret give the address and the passwords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<SourceCluster>,
    /// An address and credentials (a source in another Kubernetes
    /// cluster): its client Service's address as this cluster reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SourceEndpoint>,
    /// Lag, in bytes of the source's replication stream, past which the
    /// standby is behind (default 1048576): crossing it is journaled and
    /// shown in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_lag_bytes: Option<i64>,
}

impl ReplicateFrom {
    /// The lag bound in bytes, the default filled in.
    #[must_use]
    pub fn lag_bound(&self) -> u64 {
        u64::try_from(self.max_lag_bytes.unwrap_or(MAX_LAG_BYTES)).unwrap_or(1)
    }

    /// The source for people: `namespace/name` or `host:port`.
    #[must_use]
    pub fn describe(&self, own_namespace: &str) -> String {
        match (&self.cluster, &self.endpoint) {
            (Some(c), _) => format!(
                "{}/{}",
                c.namespace.as_deref().unwrap_or(own_namespace),
                c.name
            ),
            (None, Some(e)) => format!("{}:{}", e.host, e.port()),
            (None, None) => "nothing".to_owned(),
        }
    }

    /// The same source as `other` (the lag bound aside).
    #[must_use]
    pub fn same_source(&self, other: &Self) -> bool {
        self.cluster == other.cluster && self.endpoint == other.endpoint
    }
}

/// A ValkeyCluster as a standby's source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceCluster {
    /// The ValkeyCluster's name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Its namespace (default: the standby's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// An address and credentials as a standby's source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceEndpoint {
    /// Host name or IP address of the source's primary (its client
    /// Service, so that the standby follows its failovers).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port (default 6379).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// A Secret of the standby's namespace holding the source's passwords:
    /// `replication` (required: the source's `logbook-replication` user,
    /// key `replication` of its `<name>-internal` Secret) and `metrics`
    /// (optional: its `logbook-metrics` user, for the lag).
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub credentials_secret: String,
}

impl SourceEndpoint {
    /// The port, the default filled in.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(6379)
    }
}
