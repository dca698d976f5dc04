//! `Policy`: the operator-level knobs that decisions depend on.
//!
//! Policy is journaled (`Event::PolicyRecorded`) whenever it changes so that
//! a replay recomputes every decision with exactly the knobs in force at the
//! time, not with whatever the replaying build defaults to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Operator-wide settings in force for a stream from the event that records
/// them onwards.
///
/// Persisted: never reorder or remove fields; a new knob means a new
/// format version (or a new key in `features`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Interval between Valkey probes of each pod, in milliseconds.
    pub probe_interval_ms: u64,
    /// Consecutive failed probes of a primary (timeouts, not refusals) before
    /// it is considered unreachable.
    pub failure_threshold: u32,
    /// Named feature flags; absent means off. A map rather than fields so a
    /// flag can be added without a format change.
    pub features: BTreeMap<String, bool>,
}

/// The shortest time a primary must have left a probe unanswered before it
/// may count as unreachable, whatever the probe settings, measured from the
/// moment its first failed probe was sent. A server blocked by one command
/// for a second (`DEBUG SLEEP 1`, a big `KEYS`) leaves a probe unanswered
/// for at most about that long: a probe sent during the block is answered
/// when it ends, so the failures it causes span at most the block itself.
pub const MIN_UNREACHABLE_MS: i64 = 1_200;

/// The client's connect timeout, the cap of a probe's timeouts (the
/// operator gives each command of a probe the interval, capped by its
/// client's 1 s connect and 2 s command defaults).
pub const PROBE_CONNECT_TIMEOUT_MS: i64 = 1_000;

impl Policy {
    /// The shortest wait of a probe that timed out: the probe interval,
    /// capped by [`PROBE_CONNECT_TIMEOUT_MS`]. A failure recorded at `at`
    /// proves the server left a probe unanswered since at least `at` minus
    /// this: the span of a run of timeouts is counted from there, not from
    /// when the first of them was recorded, a whole timeout later.
    #[must_use]
    pub fn probe_timeout_ms(&self) -> i64 {
        i64::try_from(self.probe_interval_ms)
            .unwrap_or(i64::MAX)
            .min(PROBE_CONNECT_TIMEOUT_MS)
    }

    /// How long, in milliseconds, a primary must keep its probes
    /// unanswered before it may count as unreachable:
    /// `max(MIN_UNREACHABLE_MS, failureThreshold × probeInterval)`.
    #[must_use]
    pub fn unreachable_after_ms(&self) -> i64 {
        i64::try_from(self.probe_interval_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::from(self.failure_threshold))
            .max(MIN_UNREACHABLE_MS)
    }

    /// Whether a pod failing its probes since `since` (the first failure
    /// recorded) up to `last` (the last one) left them unanswered for the
    /// whole [`unreachable_after_ms`](Self::unreachable_after_ms), counted
    /// from the first failed probe's send. Up to the last failure, never to
    /// the time of an event about something else: that proves nothing
    /// about the pod, whose next probe may be about to be answered.
    #[must_use]
    pub fn unanswered_long_enough(
        &self,
        since: Option<crate::Timestamp>,
        last: Option<crate::Timestamp>,
    ) -> bool {
        match (since, last) {
            (Some(since), Some(last)) => {
                last.millis_since(since)
                    .saturating_add(self.probe_timeout_ms())
                    >= self.unreachable_after_ms()
            }
            _ => false,
        }
    }

    /// Whether the named feature flag is on.
    #[must_use]
    pub fn feature(&self, name: &str) -> bool {
        self.features.get(name).copied().unwrap_or(false)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            probe_interval_ms: 1_000,
            failure_threshold: 3,
            features: BTreeMap::new(),
        }
    }
}
