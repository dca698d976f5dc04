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

impl Policy {
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
