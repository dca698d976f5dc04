//! Services' node ports, as the real API server hands them out
//! (`pkg/registry/core/service/storage/alloc.go` and its port allocator):
//! one range for the whole cluster, 30000–32767; a `type: NodePort` or
//! `type: LoadBalancer` Service's requested `spec.ports[].nodePort` is
//! checked (in the range, not another Service's), a missing one is
//! allocated (not for a LoadBalancer with `allocateLoadBalancerNodePorts:
//! false`), ports sharing a `port` number share a node port, and
//! `healthCheckNodePort` is allocated for a LoadBalancer with
//! `externalTrafficPolicy: Local`. An update that leaves a port's
//! `nodePort` out keeps the old one (matched by port name); a return to
//! `ClusterIP` drops them. Nothing is recorded apart from the Services
//! themselves: a deleted Service's ports are free at once.
//!
//! Localkube picks the lowest free port rather than a random one, so that
//! tests see the same numbers every run.

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;

use serde_json::{Map, Value, json};

use crate::error::cause;
use crate::schema::Cause;

/// The node-port range (`--service-node-port-range`'s default).
pub const RANGE: RangeInclusive<u16> = 30000..=32767;

/// Whether a Service of type `kind` gets node ports.
fn needs_node_ports(kind: &str) -> bool {
    matches!(kind, "NodePort" | "LoadBalancer")
}

fn spec_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn node_port(p: &Value) -> Option<i64> {
    p.get("nodePort")
        .and_then(Value::as_i64)
        .filter(|n| *n != 0)
}

/// The node ports (and health-check node port) `svc` holds.
pub(crate) fn held(svc: &Value) -> impl Iterator<Item = u16> + '_ {
    let spec = svc.get("spec");
    let ports = spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(node_port);
    let health = spec
        .and_then(|s| s.get("healthCheckNodePort"))
        .and_then(Value::as_i64);
    ports.chain(health).filter_map(|n| u16::try_from(n).ok())
}

/// Checks, keeps and allocates the node ports of `svc` (being created, or
/// replacing `old`), none of which may be in `taken` (the ports of every
/// other Service). The causes name the field, as the real server's 422
/// does.
pub(crate) fn admit(
    svc: &mut Value,
    old: Option<&Value>,
    taken: &HashSet<u16>,
) -> Result<(), Vec<Cause>> {
    let kind = spec_type(svc).to_owned();
    let old_needed = old.is_some_and(|o| needs_node_ports(spec_type(o)));
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if !needs_node_ports(&kind) {
        return drop_type_dependent(spec, old, &kind);
    }
    if old_needed && let Some(old) = old {
        keep_old_ports(spec, old);
    }
    let mut causes = Vec::new();
    let mut mine: HashSet<u16> = HashSet::new();
    // (port, protocol) pairs seen: the same node port twice for one
    // protocol is a duplicate.
    let mut seen: HashSet<(i64, String)> = HashSet::new();
    // service port → the node port it got, shared by its other protocols.
    let mut by_port: BTreeMap<i64, i64> = BTreeMap::new();
    let allocate_missing = kind != "LoadBalancer"
        || spec
            .get("allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true);
    let mut free = RANGE.filter(|p| !taken.contains(p));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let field = format!("spec.ports[{i}].nodePort");
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_owned();
            let requested = node_port(p);
            let Some(o) = p.as_object_mut() else { continue };
            let n = match requested {
                Some(n) => {
                    if let Err(c) = check(n, taken, &field) {
                        causes.push(c);
                        continue;
                    }
                    n
                }
                None => match by_port.get(&port) {
                    Some(n) => *n,
                    None if allocate_missing => {
                        let Some(n) = free.find(|p| !mine.contains(p)) else {
                            causes.push(cause(
                                "FieldValueInvalid",
                                "Invalid value: 0: range is full",
                                &field,
                            ));
                            continue;
                        };
                        i64::from(n)
                    }
                    None => continue,
                },
            };
            if !seen.insert((n, protocol)) {
                causes.push(cause(
                    "FieldValueDuplicate",
                    format!("Duplicate value: {n}"),
                    &field,
                ));
                continue;
            }
            o.insert("nodePort".into(), json!(n));
            by_port.entry(port).or_insert(n);
            if let Ok(n) = u16::try_from(n) {
                mine.insert(n);
            }
        }
    }
    health_check_port(spec, &kind, old, taken, &mut mine, &mut causes);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

/// A requested node port: in the range and not another Service's.
fn check(n: i64, taken: &HashSet<u16>, field: &str) -> Result<(), Cause> {
    let in_range = u16::try_from(n).ok().filter(|p| RANGE.contains(p));
    match in_range {
        None => Err(cause(
            "FieldValueInvalid",
            format!(
                "Invalid value: {n}: provided port is not in the valid range. The range of valid ports is {}-{}",
                RANGE.start(),
                RANGE.end()
            ),
            field,
        )),
        Some(p) if taken.contains(&p) => Err(cause(
            "FieldValueInvalid",
            format!("Invalid value: {n}: provided port is already allocated"),
            field,
        )),
        Some(_) => Ok(()),
    }
}

/// An update that leaves a port's `nodePort` out keeps the one the port
/// of the same name had, unless another port now claims it (the real
/// server's `patchAllocatedValues`).
fn keep_old_ports(spec: &mut Map<String, Value>, old: &Value) {
    let old_ports: Vec<&Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let by_name: BTreeMap<&str, i64> = old_ports
        .iter()
        .filter_map(|p| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            Some((name, node_port(p)?))
        })
        .collect();
    let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return;
    };
    let claimed: HashSet<i64> = ports.iter().filter_map(node_port).collect();
    for p in ports.iter_mut() {
        if node_port(p).is_some() {
            continue;
        }
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(n) = by_name.get(name).filter(|n| !claimed.contains(n))
            && let Some(o) = p.as_object_mut()
        {
            o.insert("nodePort".into(), json!(n));
        }
    }
    if spec
        .get("healthCheckNodePort")
        .is_none_or(|v| v.as_i64() == Some(0))
        && let Some(h) = old.pointer("/spec/healthCheckNodePort")
    {
        spec.insert("healthCheckNodePort".into(), h.clone());
    }
}

/// A LoadBalancer with `externalTrafficPolicy: Local` gets a
/// `healthCheckNodePort`; any other Service must not have one (an unchanged
/// one is dropped).
fn health_check_port(
    spec: &mut Map<String, Value>,
    kind: &str,
    old: Option<&Value>,
    taken: &HashSet<u16>,
    mine: &mut HashSet<u16>,
    causes: &mut Vec<Cause>,
) {
    let field = "spec.healthCheckNodePort";
    let local = spec.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local");
    let wanted = spec
        .get("healthCheckNodePort")
        .and_then(Value::as_i64)
        .filter(|n| *n != 0);
    if kind != "LoadBalancer" || !local {
        let unchanged = wanted.is_some()
            && old.and_then(|o| o.pointer("/spec/healthCheckNodePort")) == spec.get(field);
        if wanted.is_none() || unchanged {
            spec.remove("healthCheckNodePort");
        } else if let Some(n) = wanted {
            causes.push(cause(
                "FieldValueInvalid",
                format!(
                    "Invalid value: {n}: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
                ),
                field,
            ));
        }
        return;
    }
    let n = match wanted {
        Some(n) => {
            if let Err(c) = check(n, taken, field) {
                causes.push(c);
                return;
            }
            if u16::try_from(n).is_ok_and(|p| mine.contains(&p)) {
                causes.push(cause(
                    "FieldValueInvalid",
                    format!("Invalid value: {n}: provided port is already allocated"),
                    field,
                ));
                return;
            }
            n
        }
        None => {
            let Some(n) = RANGE
                .clone()
                .find(|p| !taken.contains(p) && !mine.contains(p))
            else {
                causes.push(cause(
                    "FieldValueInvalid",
                    "Invalid value: 0: range is full",
                    field,
                ));
                return;
            };
            i64::from(n)
        }
    };
    spec.insert("healthCheckNodePort".into(), json!(n));
    if let Ok(p) = u16::try_from(n) {
        mine.insert(p);
    }
}

/// A Service that is (again) `ClusterIP` or `ExternalName` gives its node
/// ports up: a `nodePort` left as it was is dropped (the real server's
/// `dropTypeDependentFields`), a new one is refused, and the external
/// fields left as they were go too.
fn drop_type_dependent(
    spec: &mut Map<String, Value>,
    old: Option<&Value>,
    kind: &str,
) -> Result<(), Vec<Cause>> {
    let old_spec = old.and_then(|o| o.get("spec"));
    let old_ports: HashSet<i64> = old_spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(node_port)
        .collect();
    let mut causes = Vec::new();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(n) = node_port(p) else {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
                continue;
            };
            if old_ports.contains(&n) {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
            } else {
                causes.push(cause(
                    "FieldValueForbidden",
                    format!("Forbidden: may not be used when `type` is '{kind}'"),
                    &format!("spec.ports[{i}].nodePort"),
                ));
            }
        }
    }
    for f in [
        "healthCheckNodePort",
        "allocateLoadBalancerNodePorts",
        "externalTrafficPolicy",
        "loadBalancerClass",
    ] {
        if spec.get(f) == old_spec.and_then(|s| s.get(f)) {
            spec.remove(f);
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn svc(kind: &str, ports: Value) -> Value {
        json!({"spec": {"type": kind, "ports": ports}})
    }

    #[test]
    fn missing_ports_get_the_lowest_free_and_requested_ones_are_checked() {
        let taken: HashSet<u16> = [30000].into();
        let mut s = svc(
            "NodePort",
            json!([{"name": "a", "port": 1}, {"name": "b", "port": 2, "nodePort": 30005}]),
        );
        admit(&mut s, None, &taken).unwrap();
        assert_eq!(s["spec"]["ports"][0]["nodePort"], 30001);
        assert_eq!(s["spec"]["ports"][1]["nodePort"], 30005);

        let mut s = svc("NodePort", json!([{"port": 1, "nodePort": 30000}]));
        let e = admit(&mut s, None, &taken).unwrap_err();
        assert_eq!(e[0].field, "spec.ports[0].nodePort");
        assert!(e[0].message.contains("provided port is already allocated"));

        let mut s = svc("LoadBalancer", json!([{"port": 1, "nodePort": 80}]));
        let e = admit(&mut s, None, &taken).unwrap_err();
        assert!(
            e[0].message.contains("not in the valid range"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn an_update_keeps_the_port_by_name_and_clusterip_drops_it() {
        let old = svc(
            "NodePort",
            json!([{"name": "a", "port": 1, "nodePort": 31000}]),
        );
        let mut new = svc("NodePort", json!([{"name": "a", "port": 7}]));
        admit(&mut new, Some(&old), &HashSet::new()).unwrap();
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 31000);

        let mut back = svc(
            "ClusterIP",
            json!([{"name": "a", "port": 7, "nodePort": 31000}]),
        );
        admit(&mut back, Some(&new), &HashSet::new()).unwrap();
        assert!(back["spec"]["ports"][0].get("nodePort").is_none());

        let mut fresh = svc("ClusterIP", json!([{"port": 7, "nodePort": 31001}]));
        let e = admit(&mut fresh, None, &HashSet::new()).unwrap_err();
        assert_eq!(e[0].reason, "FieldValueForbidden");
    }

    #[test]
    fn load_balancer_without_node_ports_and_with_a_health_check_port() {
        let mut s = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "externalTrafficPolicy": "Local", "ports": [{"port": 1}]}});
        admit(&mut s, None, &HashSet::new()).unwrap();
        assert!(s["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(s["spec"]["healthCheckNodePort"], 30000);
        assert_eq!(held(&s).collect::<Vec<_>>(), vec![30000]);
    }

    #[test]
    fn tcp_and_udp_of_one_port_share_a_node_port() {
        let mut s = svc(
            "NodePort",
            json!([{"name": "t", "port": 53, "protocol": "TCP"}, {"name": "u", "port": 53, "protocol": "UDP"}]),
        );
        admit(&mut s, None, &HashSet::new()).unwrap();
        assert_eq!(s["spec"]["ports"][0]["nodePort"], 30000);
        assert_eq!(s["spec"]["ports"][1]["nodePort"], 30000);
        let mut dup = svc(
            "NodePort",
            json!([{"name": "a", "port": 1, "nodePort": 30100}, {"name": "b", "port": 2, "nodePort": 30100}]),
        );
        let e = admit(&mut dup, None, &HashSet::new()).unwrap_err();
        assert_eq!(e[0].field, "spec.ports[1].nodePort");
    }
}
