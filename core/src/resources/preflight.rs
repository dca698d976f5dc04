//! The preflight of a new image (`PreflightImage`): the Pod
//! `<cluster>-preflight` runs the image once as the data pods of the spec
//! would run it — their container, config, users and TLS — on an empty
//! `emptyDir` instead of a volume, in no Service, on no node constraint,
//! never restarted. A directive the new version does not know ends it
//! (`FATAL CONFIG FILE ERROR`) before any pod of the cluster rolls; a
//! server that answers says the version it is.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use logbook_crds::ValkeyClusterSpec;

use super::statefulset::{CONFIG_VOLUME, config_map_volume, empty_dir};
use super::{ClusterMeta, DATA_VOLUME, build_config_map, build_statefulset, labels};

/// The `app.kubernetes.io/name` of a preflight pod: not the data pods'
/// (`valkey`), so no Service, StatefulSet or budget of the cluster
/// selects it.
pub const PREFLIGHT_NAME_VALUE: &str = "valkey-preflight";

/// The preflight Pod's name, and its ConfigMap's.
pub fn preflight_name(cluster: &str) -> String {
    format!("{cluster}-preflight")
}

/// The labels of the preflight Pod and ConfigMap.
fn preflight_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_owned(), PREFLIGHT_NAME_VALUE.to_owned()),
        (labels::INSTANCE.to_owned(), cluster.to_owned()),
        (labels::CLUSTER.to_owned(), cluster.to_owned()),
        (
            labels::MANAGED_BY.to_owned(),
            labels::MANAGED_BY_VALUE.to_owned(),
        ),
    ])
}

fn preflight_meta(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> ObjectMeta {
    let mut m = meta.object_meta(preflight_name(&meta.name), spec);
    m.labels = Some(preflight_labels(&meta.name));
    m
}

/// The preflight's ConfigMap (the spec's `valkey.conf` and `start.sh`)
/// and Pod, for `spec` (its image).
pub fn build_preflight(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> (ConfigMap, Pod) {
    let (mut config, hash) = build_config_map(meta, spec);
    config.metadata = preflight_meta(meta, spec);
    let sts = build_statefulset(meta, spec, &hash);
    let template = sts.spec.map(|s| s.template).unwrap_or_default();
    let mut pod = template.spec.unwrap_or_default();
    let mut volumes: Vec<_> = pod
        .volumes
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.name != CONFIG_VOLUME && v.name != DATA_VOLUME)
        .collect();
    volumes.push(config_map_volume(
        CONFIG_VOLUME,
        preflight_name(&meta.name),
        false,
    ));
    volumes.push(empty_dir(DATA_VOLUME));
    pod.volumes = Some(volumes);
    // Anywhere it can run: it holds no data, and the data pods' spread
    // must not keep it off a full node.
    pod.affinity = None;
    pod.topology_spread_constraints = None;
    pod.restart_policy = Some("Never".to_owned());
    pod.termination_grace_period_seconds = Some(1);
    for c in &mut pod.containers {
        c.lifecycle = None;
        c.liveness_probe = None;
    }
    let pod = Pod {
        metadata: preflight_meta(meta, spec),
        spec: Some(pod),
        status: None,
    };
    (config, pod)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use logbook_crds::{Persistence, Topology};

    use super::*;
    use crate::resources::test_support;

    #[test]
    fn the_preflight_runs_the_specs_container_on_no_data_and_is_selected_by_nothing() {
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.image = "valkey/valkey:8.0".into();
        spec.storage.persistence = Persistence::Rdb;
        let meta = test_support::meta();
        let (config, pod) = build_preflight(&meta, &spec);
        assert_eq!(config.metadata.name.as_deref(), Some("cache-preflight"));
        assert_eq!(pod.metadata.name.as_deref(), Some("cache-preflight"));
        let labels = pod.metadata.labels.clone().unwrap();
        let selector = labels::selector("cache");
        assert!(
            selector.iter().any(|(k, v)| labels.get(k) != Some(v)),
            "the data selector would select it: {labels:?}"
        );
        let spec_ = pod.spec.unwrap();
        assert_eq!(spec_.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            spec_.containers[0].image.as_deref(),
            Some("valkey/valkey:8.0")
        );
        let volumes = spec_.volumes.unwrap();
        let data: Vec<_> = volumes.iter().filter(|v| v.name == DATA_VOLUME).collect();
        assert_eq!(data.len(), 1);
        assert!(data[0].empty_dir.is_some(), "{data:?}");
        let config_volume = volumes.iter().find(|v| v.name == CONFIG_VOLUME).unwrap();
        assert_eq!(
            config_volume.config_map.as_ref().unwrap().name,
            "cache-preflight"
        );
        // The same valkey.conf as the data pods'.
        let (data_config, _) = build_config_map(&meta, &spec);
        assert_eq!(config.data, data_config.data);
    }
}
