//! The NetworkPolicy over a cluster's pods, when the spec asks for one.
//!
//! It selects every pod of the cluster (data and Sentinel) and admits, on
//! ingress only: the cluster's own pods on every port (replication, the
//! cluster bus, Sentinel's hellos and checks); the operator's pods, from
//! the operator's namespace, on the Valkey and Sentinel ports; and the
//! spec's `allowFrom` peers on the Valkey and Sentinel ports (clients find
//! the primary through Sentinel) and, with `spec.metrics`, the exporters'
//! port 9121 (the Prometheus that scrapes them is one of the peers). Nothing else reaches the pods, wherever
//! the network plugin enforces NetworkPolicies.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logbook_crds::ValkeyClusterSpec;

use super::{ClusterMeta, SENTINEL_PORT, VALKEY_PORT, labels};

/// The labels of the operator's pods (the Helm chart's selector labels).
pub const OPERATOR_POD_LABELS: [(&str, &str); 2] = [
    ("app.kubernetes.io/name", "logbook"),
    ("app.kubernetes.io/component", "operator"),
];

/// The NetworkPolicy's name: the cluster's.
pub fn network_policy_name(cluster: &str) -> String {
    cluster.to_owned()
}

/// The NetworkPolicy of the cluster, the operator running in
/// `operator_namespace`; `None` when `spec.networkPolicy.enabled` is false.
pub fn build_network_policy(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    operator_namespace: &str,
) -> Option<NetworkPolicy> {
    if !spec.network_policy.enabled {
        return None;
    }
    let own = BTreeMap::from([(labels::CLUSTER.to_owned(), meta.name.clone())]);
    let client_ports = || {
        let mut ports = vec![port(VALKEY_PORT)];
        if spec.topology.uses_sentinel() {
            ports.push(port(SENTINEL_PORT));
        }
        if spec.metrics.enabled {
            // The exporters, for the Prometheus among the peers.
            ports.push(port(super::EXPORTER_PORT));
        }
        ports
    };
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                operator_namespace.to_owned(),
            )])),
            ..LabelSelector::default()
        }),
        pod_selector: Some(LabelSelector {
            match_labels: Some(
                OPERATOR_POD_LABELS
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let mut ingress = vec![
        NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(own.clone()),
                    ..LabelSelector::default()
                }),
                ..NetworkPolicyPeer::default()
            }]),
            ports: None,
        },
        NetworkPolicyIngressRule {
            from: Some(vec![operator]),
            ports: Some(client_ports()),
        },
    ];
    if !spec.network_policy.allow_from.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(spec.network_policy.allow_from.clone()),
            ports: Some(client_ports()),
        });
    }
    Some(NetworkPolicy {
        metadata: meta.object_meta(network_policy_name(&meta.name), spec),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(own),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress),
            egress: None,
        }),
    })
}

fn port(number: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some("TCP".to_owned()),
        end_port: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use logbook_crds::Topology;

    use super::super::test_support::meta;
    use super::*;

    /// The ingress rules of `spec`'s policy (the operator in `ops`).
    fn ingress_of(spec: &ValkeyClusterSpec) -> Vec<NetworkPolicyIngressRule> {
        build_network_policy(&meta(), spec, "ops")
            .unwrap()
            .spec
            .unwrap()
            .ingress
            .unwrap()
    }

    /// The ports a rule admits.
    fn ports_of(rule: &NetworkPolicyIngressRule) -> Vec<IntOrString> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| p.port.clone().unwrap())
            .collect()
    }

    #[test]
    fn only_own_pods_the_operator_and_the_allowed_peers_get_in() {
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
        assert!(build_network_policy(&meta(), &spec, "ops").is_none());
        spec.network_policy.enabled = true;
        let policy = build_network_policy(&meta(), &spec, "ops").unwrap();
        let s = policy.spec.unwrap();
        assert_eq!(
            s.pod_selector.unwrap().match_labels.unwrap(),
            BTreeMap::from([("valkey.logbook.dev/cluster".to_owned(), "cache".to_owned())])
        );
        assert_eq!(s.policy_types.unwrap(), ["Ingress"]);
        let ingress = s.ingress.unwrap();
        assert_eq!(ingress.len(), 2, "own pods and the operator only");
        assert!(ingress[0].ports.is_none(), "own pods: every port");
        let op = &ingress[1].from.as_ref().unwrap()[0];
        assert_eq!(
            op.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "ops"
        );
        assert_eq!(
            ports_of(&ingress[1]),
            [IntOrString::Int(6379), IntOrString::Int(26379)]
        );

        spec.network_policy.allow_from = vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }];
        spec.topology = Topology::Replication;
        let ingress = ingress_of(&spec);
        assert_eq!(ingress.len(), 3);
        assert_eq!(ingress[2].from.as_ref().unwrap().len(), 1);
        assert_eq!(
            ingress[2].ports.as_ref().unwrap().len(),
            1,
            "no Sentinel port"
        );
        // The exporters' port, with them, for the Prometheus among the peers.
        spec.metrics.enabled = true;
        let ingress = ingress_of(&spec);
        assert_eq!(
            ports_of(&ingress[2]),
            [IntOrString::Int(6379), IntOrString::Int(9121)]
        );
    }

    /// `allowFrom` is networking/v1's `NetworkPolicyPeer`, passed through:
    /// every field of every peer reaches the policy's third rule as written.
    #[test]
    fn the_allowed_peers_reach_the_policy_whole() {
        let peers = serde_json::json!([
            {"podSelector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "api"]}]
            }},
            {"namespaceSelector": {
                "matchLabels": {"team": "shop"},
                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]
            }},
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.0.0/16"]}}
        ]);
        let mut spec = ValkeyClusterSpec::default();
        spec.network_policy.enabled = true;
        spec.network_policy.allow_from = serde_json::from_value(peers.clone()).unwrap();
        let ingress = ingress_of(&spec);
        assert_eq!(
            serde_json::to_value(ingress[2].from.as_ref().unwrap()).unwrap(),
            peers
        );
    }
}
