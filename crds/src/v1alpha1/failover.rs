//! Failure detection and failover settings: [`FailoverSpec`] (the operator's
//! own probes) and [`SentinelSpec`] (topology Sentinel).
//!
//! This module owns those settings, their defaults, bounds and CEL rules. It
//! must not decide anything; `decide` reads the effective values from here.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defaults::{self, serde_fns};

/// How the operator probes Valkey and whether it fails over by itself.
///
/// Probes run for every topology (they feed the journal); `automatic`
/// failover applies to topology Replication, since Sentinel and Cluster elect
/// their own primaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverSpec {
    /// Milliseconds between health probes of each pod (default 500, 100..=60000).
    #[schemars(range(min = defaults::PROBE_INTERVAL_MS_MIN, max = defaults::PROBE_INTERVAL_MS_MAX))]
    pub probe_interval_milliseconds: i32,
    /// Consecutive failed probes, corroborated by the replicas' view of their
    /// link, before a primary counts as failed (default 3, 1..=100). A refused
    /// connection or a deleted pod counts at once.
    #[schemars(range(min = defaults::FAILURE_THRESHOLD_MIN, max = defaults::FAILURE_THRESHOLD_MAX))]
    pub failure_threshold: i32,
    /// Promote a replica when the primary fails (default `true`). When
    /// `false` the operator journals the failure and waits for a person.
    pub automatic: bool,
    /// Cluster only: when a majority of shard primaries is gone, so that no
    /// election can win, let the best replica of each primary-less shard
    /// take it over by `CLUSTER FAILOVER TAKEOVER` once the node timeout
    /// has passed (default `false`). A takeover needs no vote: it trades
    /// the writes the lost primaries took last (those their replicas had
    /// not received) for availability. Off, the shards stay unserved, the
    /// status says so, and a person decides.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub takeover_on_quorum_loss: bool,
    /// Fence a primary cut off from all its replicas after this many
    /// seconds (1..=60; off when unset): each Valkey server runs
    /// `min-replicas-to-write 1` and `min-replicas-max-lag` set to it, so
    /// a primary no replica has acknowledged for longer refuses writes
    /// (`NOREPLICAS`). Valkey counts whole seconds and checks once a
    /// second, so the fence falls between this many seconds and this
    /// many plus 2 after the last acknowledgement reached the primary;
    /// the operator promotes no replacement for a primary it lost before
    /// that worst case has passed. A primary with no replica in sync (its only
    /// replica restarting, or a two-pod Replication after a failover
    /// until its old primary is back) refuses writes too. Needs at least
    /// one replica per primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = FENCE_ISOLATED_PRIMARY_SECONDS_MIN, max = FENCE_ISOLATED_PRIMARY_SECONDS_MAX))]
    pub fence_isolated_primary_seconds: Option<i32>,
}

/// Smallest `fenceIsolatedPrimarySeconds`: Valkey's lag is counted in
/// whole seconds, and `0` would turn the check off.
pub const FENCE_ISOLATED_PRIMARY_SECONDS_MIN: i32 = 1;
/// Largest `fenceIsolatedPrimarySeconds`: past a minute the window of
/// writes lost is no longer "bounded" in any useful sense.
pub const FENCE_ISOLATED_PRIMARY_SECONDS_MAX: i32 = 60;

/// What Valkey adds to `min-replicas-max-lag` before a primary refuses
/// writes, in milliseconds, at worst. A replica acknowledges once a second
/// (`REPLCONF ACK` from its `replicationCron`); the primary stamps each
/// acknowledgement with its cached whole-second clock (`server.unixtime`,
/// truncated: up to 1 s early), counts a replica good while
/// `unixtime - ack_time <= lag`, and recounts only in its own 1 Hz
/// `replicationCron` (`refreshGoodReplicasCount`, up to 1 s late). So the
/// fence falls strictly after `lag` seconds and at most `lag + 2` seconds
/// after the last acknowledgement reached it (checked against
/// valkey-io/valkey `src/replication.c`, `src/server.c` `processCommand`).
pub const FENCE_SLACK_MILLISECONDS: i64 = 2_000;

impl FailoverSpec {
    /// The longest, in milliseconds, a primary keeps acknowledging writes
    /// after the last replica acknowledgement reached it, when fencing is
    /// on: `fenceIsolatedPrimarySeconds` plus [`FENCE_SLACK_MILLISECONDS`].
    /// `None` when fencing is off.
    pub fn fence_worst_case_milliseconds(&self) -> Option<i64> {
        self.fence_isolated_primary_seconds.map(|s| {
            i64::from(s.max(0))
                .saturating_mul(1_000)
                .saturating_add(FENCE_SLACK_MILLISECONDS)
        })
    }
}

impl Default for FailoverSpec {
    fn default() -> Self {
        Self {
            probe_interval_milliseconds: defaults::PROBE_INTERVAL_MS,
            failure_threshold: defaults::FAILURE_THRESHOLD,
            automatic: true,
            takeover_on_quorum_loss: false,
            fence_isolated_primary_seconds: None,
        }
    }
}

/// The Sentinel StatefulSet of topology Sentinel. Setting it for any other
/// topology is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.quorum) || self.quorum <= (has(self.replicas) ? self.replicas : 3)").message("sentinel.quorum must not exceed sentinel.replicas").field_path(".quorum"))]
pub struct SentinelSpec {
    /// Sentinel processes (default 3; odd, 3..=9) so that a majority survives
    /// the loss of any minority.
    #[serde(default = "serde_fns::sentinel_replicas")]
    #[schemars(range(min = defaults::SENTINEL_REPLICAS_MIN, max = defaults::SENTINEL_REPLICAS_MAX))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message("sentinel.replicas must be odd"))]
    pub replicas: i32,
    /// Sentinels that must agree a primary is down (default: a majority,
    /// `replicas / 2 + 1`; 1..=replicas). Electing the failover leader
    /// always needs a majority regardless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = defaults::SENTINEL_REPLICAS_MAX))]
    pub quorum: Option<i32>,
    /// Sentinel `down-after-milliseconds` (default 5000, 1000..=600000).
    #[serde(default = "serde_fns::sentinel_down_after_ms")]
    #[schemars(range(min = defaults::SENTINEL_DOWN_AFTER_MS_MIN, max = defaults::SENTINEL_DOWN_AFTER_MS_MAX))]
    pub down_after_milliseconds: i32,
    /// Sentinel `failover-timeout` (default 60000, 1000..=3600000): how
    /// long a failover may take before another Sentinel retries it, and
    /// the cool-down before the same primary is failed over again.
    #[serde(default = "serde_fns::sentinel_failover_timeout_ms")]
    #[schemars(range(min = defaults::SENTINEL_FAILOVER_TIMEOUT_MS_MIN, max = defaults::SENTINEL_FAILOVER_TIMEOUT_MS_MAX))]
    pub failover_timeout_milliseconds: i32,
    /// Sentinel `parallel-syncs` (default 1, 1..=16): replicas repointed
    /// to a new primary at once. Each resyncs, and may stop serving reads
    /// meanwhile.
    #[serde(default = "serde_fns::sentinel_parallel_syncs")]
    #[schemars(range(min = defaults::SENTINEL_PARALLEL_SYNCS_MIN, max = defaults::SENTINEL_PARALLEL_SYNCS_MAX))]
    pub parallel_syncs: i32,
}

impl Default for SentinelSpec {
    fn default() -> Self {
        Self {
            replicas: defaults::SENTINEL_REPLICAS,
            quorum: None,
            down_after_milliseconds: defaults::SENTINEL_DOWN_AFTER_MS,
            failover_timeout_milliseconds: defaults::SENTINEL_FAILOVER_TIMEOUT_MS,
            parallel_syncs: defaults::SENTINEL_PARALLEL_SYNCS,
        }
    }
}

impl SentinelSpec {
    /// The quorum in force: `quorum` when set, otherwise a majority of
    /// `replicas`.
    pub fn effective_quorum(&self) -> i32 {
        self.quorum.unwrap_or_else(|| majority(self.replicas))
    }
}

/// The smallest majority of `n` voters.
pub fn majority(n: i32) -> i32 {
    (n / 2).saturating_add(1)
}
