//! `Announce`: a Cluster node told the address clients reach it by
//! (`spec.externalAccess`), or its pod address again, with `CONFIG SET`
//! (no restart; Valkey gossips the change to its peers).
//!
//! By node ports the node announces its node's address and node ports to
//! everyone (`cluster-announce-ip`, `-port` or `-tls-port`, `-bus-port`):
//! Valkey announces one port per node, which its peers also use for the
//! bus and replication. By load balancer only clients are told
//! (`cluster-announce-client-ipv4`/`-ipv6`); the node keeps its pod
//! address for its peers.

use std::net::IpAddr;

use logbook_journal::ExternalEndpoint;

use super::cluster::answer;
use super::{ActError, Done, Target, valkey_err};
use crate::observe::external::observe_announced;
use crate::valkey::ValkeyClient;

/// The `CONFIG SET` pairs that make a node announce `endpoint`, or its
/// pod address `pod_ip` when `None`; `tls` when clients speak TLS (the
/// TLS port is then the one announced).
pub fn announce_settings(
    pod_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
    tls: bool,
) -> Result<Vec<(&'static str, String)>, String> {
    let port_key = if tls {
        "cluster-announce-tls-port"
    } else {
        "cluster-announce-port"
    };
    let reset = |key: &'static str| (key, String::new());
    let zero = |key: &'static str| (key, "0".to_owned());
    Ok(match endpoint {
        None => vec![
            ("cluster-announce-ip", pod_ip.to_owned()),
            zero(port_key),
            zero("cluster-announce-bus-port"),
            reset("cluster-announce-client-ipv4"),
            reset("cluster-announce-client-ipv6"),
        ],
        Some(e) if e.bus_port.is_some() => vec![
            ("cluster-announce-ip", e.host.clone()),
            (port_key, e.port.to_string()),
            (
                "cluster-announce-bus-port",
                e.bus_port.unwrap_or_default().to_string(),
            ),
            reset("cluster-announce-client-ipv4"),
            reset("cluster-announce-client-ipv6"),
        ],
        Some(e) => {
            let ip: IpAddr = e.host.parse().map_err(|_| {
                format!(
                    "{} is not an IP address: only an IP is announced to clients",
                    e.host
                )
            })?;
            let (key, other) = if ip.is_ipv4() {
                (
                    "cluster-announce-client-ipv4",
                    "cluster-announce-client-ipv6",
                )
            } else {
                (
                    "cluster-announce-client-ipv6",
                    "cluster-announce-client-ipv4",
                )
            };
            vec![
                ("cluster-announce-ip", pod_ip.to_owned()),
                zero(port_key),
                zero("cluster-announce-bus-port"),
                (key, e.host.clone()),
                reset(other),
            ]
        }
    })
}

/// `Announce`: the settings, then the node's own line read back and
/// journaled.
pub(super) async fn announce(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    pod_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let settings = announce_settings(pod_ip, endpoint, target.spec.tls.enabled)
        .map_err(|why| ActError::Refused(format!("{pod}: {why}")))?;
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    valkey
        .config_set_all(addr, &pairs)
        .await
        .map_err(valkey_err(format!("setting what {pod} announces")))?;
    let after = answer(valkey, target, pod).await?;
    let shown = after.announced.clone().unwrap_or_default();
    Ok(Done {
        detail: match endpoint {
            Some(e) => format!(
                "{pod} announces {} to clients (its line: {shown})",
                e.describe()
            ),
            None => format!("{pod} announces its pod address {pod_ip} (its line: {shown})"),
        },
        events: after
            .announced
            .as_deref()
            .and_then(|a| observe_announced(target.state, pod, a))
            .into_iter()
            .collect(),
        password: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(s: &[(&str, String)]) -> Vec<String> {
        s.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn by_node_port_everyone_is_told_the_nodes_address_and_ports() {
        let e = ExternalEndpoint {
            host: "192.0.2.1".into(),
            port: 30001,
            bus_port: Some(30002),
        };
        assert_eq!(
            keys(&announce_settings("10.0.0.1", Some(&e), true).unwrap()),
            [
                "cluster-announce-ip=192.0.2.1",
                "cluster-announce-tls-port=30001",
                "cluster-announce-bus-port=30002",
                "cluster-announce-client-ipv4=",
                "cluster-announce-client-ipv6=",
            ]
        );
    }

    #[test]
    fn by_load_balancer_only_clients_are_told() {
        let e = ExternalEndpoint {
            host: "198.51.100.7".into(),
            port: 6379,
            bus_port: None,
        };
        assert_eq!(
            keys(&announce_settings("10.0.0.1", Some(&e), false).unwrap()),
            [
                "cluster-announce-ip=10.0.0.1",
                "cluster-announce-port=0",
                "cluster-announce-bus-port=0",
                "cluster-announce-client-ipv4=198.51.100.7",
                "cluster-announce-client-ipv6=",
            ]
        );
        let v6 = ExternalEndpoint {
            host: "2001:db8::7".into(),
            ..e.clone()
        };
        assert!(
            keys(&announce_settings("10.0.0.1", Some(&v6), false).unwrap())
                .contains(&"cluster-announce-client-ipv6=2001:db8::7".to_owned())
        );
        let named = ExternalEndpoint {
            host: "lb.example.com".into(),
            ..e
        };
        assert!(
            announce_settings("10.0.0.1", Some(&named), false)
                .unwrap_err()
                .contains("lb.example.com")
        );
    }

    #[test]
    fn off_the_pod_address_is_announced_again() {
        assert_eq!(
            keys(&announce_settings("10.0.0.1", None, false).unwrap()),
            [
                "cluster-announce-ip=10.0.0.1",
                "cluster-announce-port=0",
                "cluster-announce-bus-port=0",
                "cluster-announce-client-ipv4=",
                "cluster-announce-client-ipv6=",
            ]
        );
    }
}
