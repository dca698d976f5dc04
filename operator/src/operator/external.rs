//! External access, observed: the cluster's external Services and the
//! nodes its pods run on, read each reconcile while the spec asks for
//! external access (nothing is read while it never did), and journaled
//! when where clients outside reach the pods changed.
//!
//! A node the operator may not read (its role has no `get` on nodes: the
//! chart grants it only when every namespace is watched) counts by its
//! pods' `status.hostIP`, the node's internal address; after the first
//! refusal no node is asked for again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus, Pod, Service};
use kube::api::{Api, ListParams};

use super::error::OperatorError;
use super::events::Kind;
use super::runtime::ClusterRuntime;
use crate::observe::external::{Endpoints, external_endpoints, observe_external};
use crate::resources::ClusterMeta;
use crate::resources::external;

/// Journals the external endpoints when they changed.
pub(super) async fn observe(
    rt: &mut ClusterRuntime,
    client: &kube::Client,
    meta: &ClusterMeta,
    pods: &[Pod],
) -> Result<(), OperatorError> {
    let spec = rt.state.desired_spec().and_then(Result::ok);
    let wanted = spec.as_ref().is_some_and(|s| s.external_access.enabled);
    if !wanted && !rt.state.external.enabled {
        return Ok(());
    }
    let now = match spec.filter(|_| wanted) {
        None => Endpoints::default(),
        Some(spec) => {
            let ns = meta.namespace.as_str();
            let services: Api<Service> = Api::namespaced(client.clone(), ns);
            let selector = external::selector_string(&meta.name);
            let listed = services
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|source| OperatorError::Kube {
                    what: format!("listing the external Services of {ns}/{}", meta.name),
                    source,
                })?;
            let nodes = read_nodes(client, &rt.state, pods).await?;
            external_endpoints(&spec, &meta.name, &rt.state, &listed.items, &nodes)
        }
    };
    let unusable: Vec<String> = now
        .unusable
        .iter()
        .map(|what| {
            format!(
                "{what}: {}",
                now.waiting.get(what).map_or("", String::as_str)
            )
        })
        .collect();
    let events = observe_external(&rt.state, wanted, now);
    let recorded = rt.record(events, None).await?;
    // Said where a person looks, once per change journaled: this needs
    // their action.
    if !recorded.is_empty() && !unusable.is_empty() {
        rt.publish_event(
            Kind::Warning,
            "ExternalAddressUnusable",
            "Observe",
            format!("no usable external address: {}", unusable.join("; ")),
        )
        .await;
    }
    Ok(())
}

/// Set once reading a node was refused (403): nodes are known by their
/// pods' `hostIP` from then on.
static NODES_FORBIDDEN: AtomicBool = AtomicBool::new(false);

/// The nodes the cluster's pods run on, by name; one that cannot be read
/// is its pods' `hostIP`.
async fn read_nodes(
    client: &kube::Client,
    state: &logbook_journal::ClusterState,
    pods: &[Pod],
) -> Result<BTreeMap<String, Node>, OperatorError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut out = BTreeMap::new();
    let names: std::collections::BTreeSet<&str> = state
        .pods
        .values()
        .filter_map(|v| v.node.as_deref())
        .collect();
    for name in names {
        if NODES_FORBIDDEN.load(Ordering::Relaxed) {
            out.extend(from_host_ip(name, pods).map(|n| (name.to_owned(), n)));
            continue;
        }
        match api.get_opt(name).await {
            Ok(Some(node)) => {
                out.insert(name.to_owned(), node);
            }
            Ok(None) => {}
            Err(kube::Error::Api(e)) if e.code == 403 => {
                tracing::info!(
                    node = name,
                    "may not read nodes: external addresses are the pods' hostIP (the node's internal address)"
                );
                NODES_FORBIDDEN.store(true, Ordering::Relaxed);
                if let Some(node) = from_host_ip(name, pods) {
                    out.insert(name.to_owned(), node);
                }
            }
            Err(source) => {
                return Err(OperatorError::Kube {
                    what: format!("reading node {name}"),
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// A node known only by the `hostIP` of a pod on it.
fn from_host_ip(name: &str, pods: &[Pod]) -> Option<Node> {
    let ip = pods.iter().find_map(|p| {
        let status = p.status.as_ref()?;
        let on = p.spec.as_ref()?.node_name.as_deref() == Some(name);
        on.then(|| status.host_ip.clone()).flatten()
    })?;
    let mut node = Node::default();
    node.metadata.name = Some(name.to_owned());
    node.status = Some(NodeStatus {
        addresses: Some(vec![NodeAddress {
            type_: "InternalIP".to_owned(),
            address: ip,
        }]),
        ..NodeStatus::default()
    });
    Some(node)
}
