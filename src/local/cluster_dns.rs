//! The real node's cluster DNS: what CoreDNS is to a cluster, for the
//! names a Kubernetes cluster's pods resolve (the DNS specification of
//! Kubernetes, the A records): `<service>.<namespace>.svc.cluster.local`
//! is the Service's ClusterIP, or for a headless Service its ready
//! endpoints' addresses (all of them with `publishNotReadyAddresses`),
//! and `<hostname>.<service>.<namespace>.svc.cluster.local` a headless
//! Service's endpoint of that hostname (a StatefulSet's pod).
//!
//! It answers over UDP on the host's end of the node's link, the address
//! the kubelet's `clusterDNS` gives every pod, from the API server at each
//! query (the node's traffic is small). Other names are refused: it is
//! not a recursive resolver, and nothing here reaches one. AAAA and other
//! types of a name that exists get an empty answer, so that a resolver
//! asking for both does not wait.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The cluster domain (the kubelet's `clusterDomain`).
const ZONE: &str = "svc.cluster.local";
/// Seconds a client may keep an answer: short, as pods come and go.
const TTL: u32 = 5;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_REFUSED: u8 = 5;

/// A running DNS server; stopped when dropped.
pub struct ClusterDns {
    task: JoinHandle<()>,
}

impl Drop for ClusterDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClusterDns {
    /// Serves on `addr` (UDP) with `client`.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn spawn(client: kube::Client, addr: SocketAddr) -> std::io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let query = buf.get(..len).unwrap_or_default().to_vec();
                let (socket, client) = (Arc::clone(&socket), client.clone());
                tokio::spawn(async move {
                    if let Some(reply) = answer(&client, &query).await {
                        let _ = socket.send_to(&reply, from).await;
                    }
                });
            }
        });
        Ok(Self { task })
    }
}

/// A parsed query: its id, flags, the question's name (lowercase, no
/// trailing dot), its type, and the question's bytes to echo.
#[derive(Debug, PartialEq)]
struct Query {
    id: u16,
    flags: u16,
    name: String,
    qtype: u16,
    question: Vec<u8>,
}

fn parse(packet: &[u8]) -> Option<Query> {
    let word = |at: usize| Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]));
    let (id, flags, qdcount) = (word(0)?, word(2)?, word(4)?);
    packet.get(..12)?;
    if qdcount != 1 || flags & 0x8000 != 0 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers do not occur in a question.
        if len > 63 {
            return None;
        }
        let label = packet.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = word(at)?;
    let question = packet.get(12..at + 4)?.to_vec();
    Some(Query {
        id,
        flags,
        name: labels.join("."),
        qtype,
        question,
    })
}

/// The reply to `query` with `rcode` and the A records `addresses`.
fn reply(query: &Query, rcode: u8, addresses: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + query.question.len() + 16 * addresses.len());
    out.extend_from_slice(&query.id.to_be_bytes());
    // QR, the opcode and RD copied, AA; no recursion available.
    let flags = 0x8000 | (query.flags & 0x7900) | 0x0400 | u16::from(rcode);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    let count = u16::try_from(addresses.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query.question);
    for ip in addresses.iter().take(usize::from(count)) {
        // The question's name, by a pointer to it.
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// What a name of the zone names: a Service, or one endpoint of one.
#[derive(Debug, PartialEq)]
enum Name<'a> {
    Service {
        namespace: &'a str,
        service: &'a str,
    },
    Endpoint {
        namespace: &'a str,
        service: &'a str,
        hostname: &'a str,
    },
}

/// `None`: not a name of the zone, so not ours to answer. `Some(None)`:
/// in the zone, but no Service's name (a search-list expansion).
fn name_of(name: &str) -> Option<Option<Name<'_>>> {
    let rest = name.strip_suffix(ZONE)?;
    if rest.is_empty() {
        return Some(None);
    }
    let rest = rest.strip_suffix('.')?;
    let parts: Vec<&str> = rest.split('.').collect();
    Some(match parts.as_slice() {
        [service, namespace] => Some(Name::Service { namespace, service }),
        [hostname, service, namespace] => Some(Name::Endpoint {
            namespace,
            service,
            hostname,
        }),
        _ => None,
    })
}

/// The addresses `name` has: `None` when it does not exist.
async fn resolve(
    client: &kube::Client,
    name: &Name<'_>,
) -> Result<Option<Vec<Ipv4Addr>>, kube::Error> {
    let (namespace, service, hostname) = match *name {
        Name::Service { namespace, service } => (namespace, service, None),
        Name::Endpoint {
            namespace,
            service,
            hostname,
        } => (namespace, service, Some(hostname)),
    };
    let Some(svc) = Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(service)
        .await?
    else {
        return Ok(None);
    };
    let spec = svc.spec.unwrap_or_default();
    let cluster_ip = spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None");
    if hostname.is_none() {
        if let Some(ip) = cluster_ip {
            return Ok(Some(ip.parse().map(|ip| vec![ip]).unwrap_or_default()));
        }
    } else if cluster_ip.is_some() {
        // Only a headless Service names its endpoints.
        return Ok(None);
    }
    let every = spec.publish_not_ready_addresses == Some(true);
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await?;
    let mut out = Vec::new();
    for slice in slices.items.iter().filter(|s| s.address_type == "IPv4") {
        for endpoint in &slice.endpoints {
            let ready = endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            if !(ready || every) {
                continue;
            }
            if hostname.is_some() && endpoint.hostname.as_deref() != hostname {
                continue;
            }
            out.extend(
                endpoint
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<Ipv4Addr>().ok()),
            );
        }
    }
    out.sort();
    out.dedup();
    Ok(if hostname.is_some() && out.is_empty() {
        None
    } else {
        Some(out)
    })
}

async fn answer(client: &kube::Client, packet: &[u8]) -> Option<Vec<u8>> {
    let query = parse(packet)?;
    let Some(name) = name_of(&query.name) else {
        return Some(reply(&query, RCODE_REFUSED, &[]));
    };
    let Some(name) = name else {
        return Some(reply(&query, RCODE_NXDOMAIN, &[]));
    };
    Some(match resolve(client, &name).await {
        Ok(None) => reply(&query, RCODE_NXDOMAIN, &[]),
        Ok(Some(addresses)) if query.qtype == TYPE_A => reply(&query, 0, &addresses),
        Ok(Some(_)) => reply(&query, 0, &[]),
        // SERVFAIL: the resolver says the name could not be looked up.
        Err(_) => reply(&query, RCODE_SERVFAIL, &[]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type `qtype`, as a resolver sends it.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut out = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            out.push(u8::try_from(label.len()).unwrap_or(0));
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out
    }

    #[test]
    fn a_query_is_read_and_answered_with_its_question() {
        let packet = query("Demo.Shop.svc.cluster.local", TYPE_A);
        let q = parse(&packet).unwrap_or_else(|| unreachable!("parses"));
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype),
            (0x1234, "demo.shop.svc.cluster.local", TYPE_A)
        );
        let r = reply(&q, 0, &[Ipv4Addr::new(198, 19, 1, 7)]);
        // Same id; a response, authoritative, recursion desired kept; one
        // question, one answer.
        assert_eq!(r.get(..8), Some(&[0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1][..]));
        assert_eq!(r.get(12..12 + q.question.len()), Some(&q.question[..]));
        assert_eq!(r.get(r.len() - 4..), Some(&[198, 19, 1, 7][..]));
        let nx = reply(&q, RCODE_NXDOMAIN, &[]);
        assert_eq!(nx.get(3).map(|b| b & 0x0f), Some(RCODE_NXDOMAIN));
    }

    #[test]
    fn names_of_the_zone_are_services_or_endpoints() {
        assert_eq!(
            name_of("demo.shop.svc.cluster.local"),
            Some(Some(Name::Service {
                namespace: "shop",
                service: "demo"
            }))
        );
        assert_eq!(
            name_of("demo-0.demo-headless.shop.svc.cluster.local"),
            Some(Some(Name::Endpoint {
                namespace: "shop",
                service: "demo-headless",
                hostname: "demo-0"
            }))
        );
        // A search-list expansion: in the zone, nothing's name.
        assert_eq!(
            name_of("demo.shop.svc.cluster.local.shop.svc.cluster.local"),
            Some(None)
        );
        assert_eq!(name_of("valkey.io"), None);
        assert!(parse(&[0; 5]).is_none());
    }
}
