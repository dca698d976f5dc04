//! Which addresses the proxy listens on and where each forwards: read off
//! the Services and their Endpoints (ready addresses only), matching an
//! endpoint port to a Service port by name, as kube-proxy does.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::obj;
use crate::store::Store;

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

/// (ClusterIP, port) → ready endpoints, for every TCP port of every
/// Service whose ClusterIP `owned` accepts.
pub fn desired(
    store: &Store,
    owned: impl Fn(Ipv4Addr) -> bool,
) -> BTreeMap<SocketAddr, Vec<SocketAddr>> {
    let mut out = BTreeMap::new();
    let Ok(services) = store.list("v1", "services", None, None) else {
        return out;
    };
    for svc in services {
        let Some(spec) = svc.get("spec") else {
            continue;
        };
        let Some(ip) = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            .filter(|ip| owned(*ip))
        else {
            continue;
        };
        if obj::is_deleting(&svc) {
            continue;
        }
        let endpoints = store
            .get(
                "v1",
                "endpoints",
                Some(obj::namespace(&svc)),
                obj::name(&svc),
            )
            .ok();
        let ports = spec
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in &ports {
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
            let list = endpoints
                .as_ref()
                .map(|e| ready_for(e, name))
                .unwrap_or_default();
            out.insert(SocketAddr::from((ip, port)), list);
        }
    }
    out
}

/// The ready addresses of `endpoints` for the port named `port_name`.
fn ready_for(endpoints: &Value, port_name: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let subsets = endpoints.get("subsets").and_then(Value::as_array);
    for s in subsets.into_iter().flatten() {
        let port = s
            .get("ports")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            })
            .and_then(|p| p.get("port")?.as_u64())
            .and_then(|n| u16::try_from(n).ok());
        let Some(port) = port else { continue };
        for a in s
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ip) = a
                .get("ip")
                .and_then(Value::as_str)
                .and_then(|i| i.parse::<Ipv4Addr>().ok())
            {
                out.push(SocketAddr::from((ip, port)));
            }
        }
    }
    out.sort();
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
        let ep = json!({"subsets": [{"addresses": [{"ip": "127.1.1.1"}], "notReadyAddresses": [{"ip": "127.1.1.2"}],
            "ports": [{"name": "redis", "port": 6379}]}]});
        assert_eq!(ready_for(&ep, "redis").len(), 1);
        assert!(ready_for(&ep, "other").is_empty());
    }
}
