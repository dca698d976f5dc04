//! What the operator exposes about a cluster: [`MetricsSpec`] and the
//! in-cluster journal's retention, [`JournalSpec`].
//!
//! This module owns those settings, their defaults and CEL rules only.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defaults;

/// A Prometheus exporter sidecar and, optionally, a ServiceMonitor for it.
///
/// `enabled` runs `redis_exporter` beside every data node and Sentinel,
/// as the internal `logbook-metrics` user (server facts only), over TLS
/// when the cluster uses it, on port 9121 (`metrics`), behind the
/// headless Service `<name>-metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.serviceMonitor) && self.serviceMonitor) || (has(self.enabled) && self.enabled)").message("metrics.serviceMonitor requires metrics.enabled").field_path(".serviceMonitor"))]
pub struct MetricsSpec {
    /// Run the exporter sidecar (default `false`).
    #[serde(default)]
    pub enabled: bool,
    /// Create a `monitoring.coreos.com/v1` ServiceMonitor (default `false`;
    /// requires `enabled`).
    #[serde(default)]
    pub service_monitor: bool,
    /// The exporter's image (default `oliver006/redis_exporter:v1.45.0`):
    /// any `redis_exporter` release from 1.45 on; its entrypoint runs the
    /// exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,
}

impl MetricsSpec {
    /// The exporter's image: `image`, else [`defaults::EXPORTER_IMAGE`].
    pub fn effective_image(&self) -> &str {
        self.image.as_deref().unwrap_or(defaults::EXPORTER_IMAGE)
    }
}

/// The per-cluster journal the operator keeps in the cluster's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct JournalSpec {
    /// Keep the journal's ConfigMaps after the ValkeyCluster is deleted, for
    /// a later audit (default `true`).
    pub retain_on_delete: bool,
    /// Events kept in the cluster before older ones are compacted into a
    /// snapshot (default 100000, 1000..=10000000).
    #[schemars(range(min = defaults::JOURNAL_MAX_EVENTS_MIN, max = defaults::JOURNAL_MAX_EVENTS_MAX))]
    pub max_events: i64,
}

impl Default for JournalSpec {
    fn default() -> Self {
        Self {
            retain_on_delete: true,
            max_events: defaults::JOURNAL_MAX_EVENTS,
        }
    }
}
