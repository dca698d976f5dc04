//! The load-balancer controller: what a cloud's service controller (or
//! MetalLB) does for `type: LoadBalancer` Services, with an address block
//! on this machine instead of a cloud. Each LoadBalancer Service without
//! `spec.loadBalancerClass` (or with [`CLASS`]) gets one address of the
//! block — `spec.loadBalancerIP` when it is in the block and free, else
//! the lowest free one — written as `status.loadBalancer.ingress: [{ip,
//! ipMode: VIP}]` through the status subresource; the proxy then listens
//! on `ingressIP:port` for each port. A Service that asks for an address
//! outside the block, or one already held, stays pending (no ingress), as
//! with MetalLB. The address is free again once the Service is deleted
//! or no longer a LoadBalancer of this class (its ingress is cleared
//! then).
//!
//! It works through [`NodeApi`], so it runs against localkube's store or a
//! real API server (where no cloud controller manager runs); it needs
//! `services/status` update rights there.
//!
//! The decision is [`plan`], a pure function of the Services; [`run`]
//! applies it whenever a Service changes.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::instance::AddressBlock;
use crate::node_api::NodeApi;
use crate::obj;

/// The `spec.loadBalancerClass` this controller serves (besides none).
pub const CLASS: &str = "logbook.dev/localkube";

/// One status write: the Service's ingress becomes `ip` (None: cleared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// Its address, or None to clear its ingress.
    pub ip: Option<Ipv4Addr>,
}

fn spec_str<'a>(svc: &'a Value, field: &str) -> Option<&'a str> {
    svc.get("spec")?.get(field)?.as_str()
}

/// Whether this controller gives `svc` an address.
fn is_mine(svc: &Value) -> bool {
    spec_str(svc, "type") == Some("LoadBalancer")
        && spec_str(svc, "loadBalancerClass").is_none_or(|c| c == CLASS)
}

fn ingress_ips(svc: &Value) -> Vec<Ipv4Addr> {
    svc.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip")?.as_str()?.parse().ok())
        .collect()
}

/// The ingress addresses of LoadBalancer `svc` that lie in `block`: where
/// the proxy listens for it.
pub(crate) fn ingress_in(svc: &Value, block: &AddressBlock) -> Vec<Ipv4Addr> {
    if spec_str(svc, "type") != Some("LoadBalancer") {
        return Vec::new();
    }
    held_in(svc, block)
}

/// The ingress addresses `svc` shows that lie in `block`, whatever its
/// type now.
fn held_in(svc: &Value, block: &AddressBlock) -> Vec<Ipv4Addr> {
    ingress_ips(svc)
        .into_iter()
        .filter(|ip| block.contains(*ip))
        .collect()
}

/// The status writes that bring `services` to one address of `block`
/// each (see the module docs); none when every Service already shows what
/// it should. Services being deleted keep what they have.
pub fn plan(services: &[Value], block: &AddressBlock) -> Vec<Assignment> {
    let live: Vec<&Value> = services.iter().filter(|s| !obj::is_deleting(s)).collect();
    let mut used: BTreeSet<Ipv4Addr> = services
        .iter()
        .filter(|s| obj::is_deleting(s))
        .flat_map(|s| held_in(s, block))
        .collect();
    // Each live Service's address: first those keeping theirs, then the
    // ones asking for a particular address, then the rest.
    let mut want: Vec<Option<Ipv4Addr>> = vec![None; live.len()];
    let requested = |s: &Value| -> Option<Ipv4Addr> {
        spec_str(s, "loadBalancerIP")
            .filter(|v| !v.is_empty())
            .and_then(|v| v.parse().ok())
    };
    let asks_elsewhere = |s: &Value| {
        spec_str(s, "loadBalancerIP").is_some_and(|v| !v.is_empty())
            && requested(s).is_none_or(|ip| !block.contains(ip))
    };
    for (slot, svc) in want.iter_mut().zip(&live) {
        if !is_mine(svc) || asks_elsewhere(svc) {
            continue;
        }
        let keep = ingress_in(svc, block)
            .into_iter()
            .find(|ip| requested(svc).is_none_or(|r| r == *ip) && !used.contains(ip));
        if let Some(ip) = keep {
            used.insert(ip);
            *slot = Some(ip);
        }
    }
    for (slot, svc) in want.iter_mut().zip(&live) {
        if slot.is_some() || !is_mine(svc) || asks_elsewhere(svc) {
            continue;
        }
        if let Some(ip) = requested(svc) {
            // Held by another: this one stays pending until it is let go.
            if used.insert(ip) {
                *slot = Some(ip);
            }
        }
    }
    for (slot, svc) in want.iter_mut().zip(&live) {
        if slot.is_some() || !is_mine(svc) || asks_elsewhere(svc) || requested(svc).is_some() {
            continue;
        }
        if let Some(ip) = block.addresses().find(|ip| !used.contains(ip)) {
            used.insert(ip);
            *slot = Some(ip);
        }
    }
    let mut out = Vec::new();
    for (ip, svc) in want.into_iter().zip(&live) {
        let now = held_in(svc, block);
        let change = match ip {
            Some(ip) => ingress_ips(svc) != [ip] || !is_vip(svc),
            // Only an address of this block is ever cleared: another
            // implementation's is not this controller's business.
            None => !now.is_empty(),
        };
        if change {
            out.push(Assignment {
                namespace: obj::namespace(svc).to_owned(),
                name: obj::name(svc).to_owned(),
                ip,
            });
        }
    }
    out
}

fn is_vip(svc: &Value) -> bool {
    svc.pointer("/status/loadBalancer/ingress/0/ipMode")
        .and_then(Value::as_str)
        == Some("VIP")
}

/// The running controller; [`LoadBalancer::shutdown`] stops it (the
/// addresses stay written).
pub struct LoadBalancer {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl LoadBalancer {
    /// Starts assigning addresses of `block` through `api`.
    pub fn spawn(api: NodeApi, block: AddressBlock) -> Self {
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let changed = Arc::new(Notify::new());
        tasks.spawn(crate::node_api::follow(
            api.clone(),
            "v1",
            "services",
            changed.clone(),
            stop.subscribe(),
        ));
        tasks.spawn(run(api, block, changed, stop.subscribe()));
        Self { stop, tasks }
    }

    /// Stops it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Applies [`plan`] on every change of the Services until `stop`; a write
/// that fails is retried on the next pass (a conflict or an unreachable
/// API server), which comes within a second.
async fn run(
    api: NodeApi,
    block: AddressBlock,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let mut retry = false;
        match api.list("v1", "services", None, None).await {
            Ok(services) => {
                for a in plan(&services, &block) {
                    let ingress = match a.ip {
                        Some(ip) => json!([{"ip": ip.to_string(), "ipMode": "VIP"}]),
                        None => Value::Null,
                    };
                    let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
                    if let Err(e) = api
                        .merge_patch("v1", "services", Some(&a.namespace), &a.name, &patch, true)
                        .await
                    {
                        retry = true;
                        tracing::warn!(
                            service = %format!("{}/{}", a.namespace, a.name),
                            ip = ?a.ip, error = %e,
                            "localkube load balancer: cannot write the Service's status"
                        );
                    }
                }
            }
            Err(e) => {
                retry = true;
                tracing::warn!(error = %e, "localkube load balancer: cannot list Services");
            }
        }
        let pause = if retry {
            std::time::Duration::from_millis(500)
        } else {
            std::time::Duration::from_secs(3600)
        };
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn block() -> AddressBlock {
        AddressBlock::new(Ipv4Addr::new(127, 9, 254, 1), Ipv4Addr::new(127, 9, 254, 3)).unwrap()
    }

    fn lb(name: &str, spec: Value, ingress: &[&str]) -> Value {
        let mut s = json!({"metadata": {"namespace": "ns", "name": name},
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress":
                ingress.iter().map(|ip| json!({"ip": ip, "ipMode": "VIP"})).collect::<Vec<_>>()}}});
        if let (Some(t), Some(f)) = (s["spec"].as_object_mut(), spec.as_object()) {
            t.extend(f.clone());
        }
        s
    }

    fn ip(s: &str) -> Option<Ipv4Addr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn lowest_free_address_then_requested_then_nothing_when_full() {
        let services = [
            lb("a", json!({}), &["127.9.254.1"]),
            lb("b", json!({}), &[]),
            lb("c", json!({"loadBalancerIP": "127.9.254.3"}), &[]),
            lb("d", json!({}), &[]),
        ];
        let p = plan(&services, &block());
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name.as_str(), p[0].ip), ("b", ip("127.9.254.2")));
        assert_eq!((p[1].name.as_str(), p[1].ip), ("c", ip("127.9.254.3")));
    }

    #[test]
    fn other_classes_and_outside_addresses_are_left_and_a_type_change_clears() {
        let services = [
            lb("other", json!({"loadBalancerClass": "x.io/lb"}), &[]),
            lb("far", json!({"loadBalancerIP": "10.0.0.1"}), &[]),
            lb("was", json!({"type": "ClusterIP"}), &["127.9.254.1"]),
            lb("theirs", json!({"type": "ClusterIP"}), &["10.1.1.1"]),
        ];
        let p = plan(&services, &block());
        assert_eq!(
            p,
            vec![Assignment {
                namespace: "ns".into(),
                name: "was".into(),
                ip: None
            }]
        );
    }

    #[test]
    fn a_deleting_service_keeps_its_address_until_gone() {
        let mut gone = lb("old", json!({}), &["127.9.254.1"]);
        gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let p = plan(&[gone, lb("new", json!({}), &[])], &block());
        assert_eq!(p[0].ip, ip("127.9.254.2"));
    }
}
