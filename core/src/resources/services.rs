//! The cluster's Services: the headless one governing the StatefulSet (every
//! data pod, ready or not, for stable DNS names), the client one (the
//! primary only) and the read one (the replicas only).
//!
//! Client and read Services select on the role label, which the operator
//! moves after it decides; a Service therefore follows a failover without
//! being rewritten.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use logbook_crds::ValkeyClusterSpec;

use super::labels::{self, ROLE, ROLE_PRIMARY, ROLE_REPLICA};
use super::statefulset::PORT_NAME;
use super::{
    ClusterMeta, VALKEY_PORT, client_service_name, headless_service_name, read_service_name,
};

/// The headless Service `<name>-headless`: `clusterIP: None`, every data
/// pod including unready ones (a fenced or syncing replica must still be
/// resolvable by its peers).
pub fn build_headless_service(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Service {
    service(
        meta,
        spec,
        headless_service_name(&meta.name),
        labels::selector(&meta.name),
        ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        },
    )
}

/// The client Service `<name>`: the pod labelled primary.
pub fn build_client_service(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Service {
    service(
        meta,
        spec,
        client_service_name(&meta.name),
        role_selector(&meta.name, ROLE_PRIMARY),
        ServiceSpec::default(),
    )
}

/// The read Service `<name>-read`: the pods labelled replica.
pub fn build_read_service(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Service {
    service(
        meta,
        spec,
        read_service_name(&meta.name),
        role_selector(&meta.name, ROLE_REPLICA),
        ServiceSpec::default(),
    )
}

fn role_selector(cluster: &str, role: &str) -> BTreeMap<String, String> {
    let mut s = labels::selector(cluster);
    s.insert(ROLE.to_owned(), role.to_owned());
    s
}

/// A Service on port 6379 named `valkey`. The protocol is explicit because
/// server-side apply keys Service ports by port and protocol.
fn service(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    name: String,
    selector: BTreeMap<String, String>,
    base: ServiceSpec,
) -> Service {
    Service {
        metadata: meta.object_meta(name, spec),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_owned()),
                port: i32::from(VALKEY_PORT),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..base
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::test_support::meta;
    use super::*;

    fn parts(s: &Service) -> (&str, &ServiceSpec) {
        (
            s.metadata.name.as_deref().unwrap(),
            s.spec.as_ref().unwrap(),
        )
    }

    #[test]
    fn headless_service_selects_every_pod() {
        let s = build_headless_service(&meta(), &ValkeyClusterSpec::default());
        let (name, spec) = parts(&s);
        assert_eq!(name, "cache-headless");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.selector.as_ref().unwrap(), &labels::selector("cache"));
        assert_eq!(s.metadata.owner_references.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn client_and_read_services_select_by_role() {
        for (s, role, want) in [
            (
                build_client_service(&meta(), &ValkeyClusterSpec::default()),
                "primary",
                "cache",
            ),
            (
                build_read_service(&meta(), &ValkeyClusterSpec::default()),
                "replica",
                "cache-read",
            ),
        ] {
            let (name, spec) = parts(&s);
            assert_eq!(name, want);
            let sel = spec.selector.as_ref().unwrap();
            assert_eq!(sel[ROLE], role);
            assert_eq!(sel[labels::CLUSTER], "cache");
            assert_eq!(sel.len(), 4);
            assert_eq!(spec.cluster_ip, None);
            let port = &spec.ports.as_ref().unwrap()[0];
            assert_eq!(port.port, 6379);
            assert_eq!(port.name.as_deref(), Some("valkey"));
            assert_eq!(port.protocol.as_deref(), Some("TCP"));
        }
    }
}
