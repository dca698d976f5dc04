//! How a change of the Valkey version rolls: `spec.upgrade`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default soak of an upgrade's canary, in seconds.
pub const CANARY_SECONDS: i32 = 60;
/// Longest soak accepted, in seconds (a day).
pub const CANARY_SECONDS_MAX: i32 = 86_400;

/// A change of `image` that changes the Valkey version is a planned
/// operation: the new image is first run once with the new config, on no
/// data (a preflight: a directive the new version refuses stops it before
/// anything rolls); then one replica is upgraded and watched for
/// `canarySeconds`; then the rest, primaries last by switchover. Setting
/// `image` back rolls back the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    /// Seconds the first pod upgraded (a replica, the canary) must run the
    /// new version ready and in sync, with no failure, before the next pod
    /// rolls (default 60, 0..=86400; 0: no soak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = CANARY_SECONDS_MAX))]
    pub canary_seconds: Option<i32>,
}

impl UpgradeSpec {
    /// The canary's soak in seconds, the default filled in.
    #[must_use]
    pub fn canary_seconds(&self) -> i32 {
        self.canary_seconds.unwrap_or(CANARY_SECONDS)
    }
}

/// Where primaries are kept (`spec.placement`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Placement {
    /// Wherever the last failover left them (the default).
    #[default]
    Any,
    /// On their preferred pods: a Replication's first pod (`<name>-0`), a
    /// Cluster shard's first (ordinals below `shards`, which the default
    /// anti-affinity spreads over nodes). After a failover, once the
    /// preferred pod is back, ready and in sync for
    /// [`FAIL_BACK_AFTER_SECONDS`], the primary role moves back to it by a
    /// switchover (a Cluster's coordinated failover), journaled with the
    /// reason `FailBack`.
    Preferred,
}

/// How long a preferred pod must have been back, and the last failover
/// past, before the primary role moves back to it.
pub const FAIL_BACK_AFTER_SECONDS: i64 = 30;
