//! Which addresses the proxy listens on and where each forwards: read off
//! the Services and their Endpoints (ready addresses only), matching an
//! endpoint port to a Service port by name, as kube-proxy does. A Service
//! port is reached at `clusterIP:port`, for `type: NodePort` and
//! `type: LoadBalancer` also at `<node address>:nodePort`, and for a
//! LoadBalancer whose ingress address is in this node's block at
//! `ingressIP:port`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::instance::AddressBlock;
use crate::node_api::NodeApi;
use crate::obj;

/// The ready endpoints of one Service port, shared with its listener and
/// replaced whenever the Endpoints change.
#[derive(Clone, Debug, Default)]
pub struct Backends {
    inner: Arc<Mutex<(Vec<SocketAddr>, usize)>>,
}

impl Backends {
    /// Backends starting with `list`.
    pub fn new(list: Vec<SocketAddr>) -> Self {
        Self {
            inner: Arc::new(Mutex::new((list, 0))),
        }
    }

    /// Replaces the list (a no-op when unchanged, keeping the rotation).
    pub fn set(&self, list: Vec<SocketAddr>) {
        let mut g = self.inner.lock();
        if g.0 != list {
            *g = (list, 0);
        }
    }

    /// The endpoints in the order to try them for one connection:
    /// round-robin start, then the rest as fallbacks.
    pub fn order(&self) -> Vec<SocketAddr> {
        let mut g = self.inner.lock();
        let n = g.0.len();
        if n == 0 {
            return Vec::new();
        }
        let start = g.1 % n;
        g.1 = start.wrapping_add(1);
        let mut out = g.0.clone();
        out.rotate_left(start);
        out
    }
}

/// Where Services are reached on this node.
pub struct Frontends<'a> {
    /// Which ClusterIPs are this node's to serve.
    pub owned: &'a (dyn Fn(Ipv4Addr) -> bool + Send + Sync),
    /// The node's address, where node ports listen (None: no node ports).
    pub node_ip: Option<Ipv4Addr>,
    /// The load-balancer addresses served here (None: none).
    pub load_balancer: Option<AddressBlock>,
}

/// Listening address → ready endpoints, for every TCP port of every
/// Service whose ClusterIP `at.owned` accepts (and its node port and
/// load-balancer address, see the module docs), from the Services and
/// their EndpointSlices (as kube-proxy reads them). None when the API
/// could not be read: the listeners keep what they had.
pub async fn desired(
    api: &NodeApi,
    at: &Frontends<'_>,
) -> Option<BTreeMap<SocketAddr, Vec<SocketAddr>>> {
    let services = api.list("v1", "services", None, None).await.ok()?;
    let slices = api
        .list("discovery.k8s.io/v1", "endpointslices", None, None)
        .await
        .ok()?;
    // (namespace, service) → its slices.
    let mut by_service: BTreeMap<(&str, &str), Vec<&Value>> = BTreeMap::new();
    for sl in &slices {
        if let Some(svc) = sl
            .pointer("/metadata/labels")
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .and_then(Value::as_str)
        {
            by_service
                .entry((obj::namespace(sl), svc))
                .or_default()
                .push(sl);
        }
    }
    let mut out = BTreeMap::new();
    for svc in &services {
        let Some(spec) = svc.get("spec") else {
            continue;
        };
        let Some(ip) = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            .filter(|ip| (at.owned)(*ip))
        else {
            continue;
        };
        if obj::is_deleting(svc) {
            continue;
        }
        let node_ip = at
            .node_ip
            .filter(|_| matches!(service_type(spec), "NodePort" | "LoadBalancer"));
        let ingress = at
            .load_balancer
            .map(|block| super::load_balancer::ingress_in(svc, &block))
            .unwrap_or_default();
        let mine = by_service
            .get(&(obj::namespace(svc), obj::name(svc)))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for p in spec
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") != "TCP" {
                continue;
            }
            let Some(port) = p
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
            else {
                continue;
            };
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let ready = ready_for(mine, name);
            let node_port = p
                .get("nodePort")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0);
            if let (Some(node), Some(np)) = (node_ip, node_port) {
                out.insert(SocketAddr::from((node, np)), ready.clone());
            }
            for lb in &ingress {
                out.insert(SocketAddr::from((*lb, port)), ready.clone());
            }
            out.insert(SocketAddr::from((ip, port)), ready);
        }
    }
    Some(out)
}

fn service_type(spec: &Value) -> &str {
    spec.get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

/// The label naming an EndpointSlice's Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The ready addresses of `slices` for the port named `port_name` (an
/// endpoint whose `ready` condition is unset counts as ready, as the API
/// documents).
fn ready_for(slices: &[&Value], port_name: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for sl in slices {
        let port = sl
            .get("ports")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            })
            .and_then(|p| p.get("port")?.as_u64())
            .and_then(|n| u16::try_from(n).ok());
        let Some(port) = port else { continue };
        for e in sl
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if e.pointer("/conditions/ready").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            for a in e
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(ip) = a.as_str().and_then(|i| i.parse::<Ipv4Addr>().ok()) {
                    out.push(SocketAddr::from((ip, port)));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_robin_rotates_and_resets_on_change() {
        let a: SocketAddr = "127.0.0.2:1"
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let b: SocketAddr = "127.0.0.3:1"
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let be = Backends::new(vec![a, b]);
        assert_eq!(be.order(), vec![a, b]);
        assert_eq!(be.order(), vec![b, a]);
        be.set(vec![b]);
        assert_eq!(be.order(), vec![b]);
    }

    #[test]
    fn only_ready_addresses_of_the_named_port() {
        let sl = json!({"endpoints": [
                {"addresses": ["127.1.1.1"], "conditions": {"ready": true}},
                {"addresses": ["127.1.1.2"], "conditions": {"ready": false}},
                {"addresses": ["127.1.1.3"]}],
            "ports": [{"name": "redis", "port": 6379}]});
        assert_eq!(ready_for(&[&sl], "redis").len(), 2);
        assert!(ready_for(&[&sl], "other").is_empty());
    }
}
