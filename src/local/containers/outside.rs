//! A client outside the cluster on the real nodes (`scripts/node.sh
//! outside`): a network namespace of its own on the nodes' link (the
//! fabric bridge), routed to the nodes and to nothing else, as a machine
//! beyond the cluster is. What it reaches, a client outside Kubernetes
//! reaches: a NodePort on a node's address, a load-balancer address routed
//! to a node. A pod's address, a ClusterIP and the host are unreachable
//! from it.
//!
//! It owns the namespace, not the nodes: dropping it removes the namespace
//! (its link with it); the nodes' fabric goes with the nodes.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::Stdio;

use super::{node_sh, script};
use crate::cli_error::{Error, Result};

/// A node as the outside client reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideNode {
    /// The Node's name, `logbook-node-<index>`.
    pub name: String,
    /// Its place on the fabric, `198.18.<cluster>.(128+k)`.
    pub fabric: Ipv4Addr,
    /// The address its Node object reports as `InternalIP`,
    /// `198.18.<index>.254`: not on the fabric, routed to the node through
    /// its fabric address.
    pub internal_ip: Ipv4Addr,
}

/// A network namespace outside the cluster's pod network
/// (`logbook-outside-<cluster>-<name>`), removed when dropped.
#[derive(Debug)]
pub struct OutsideClient {
    cluster: u8,
    name: String,
    netns: String,
    address: Ipv4Addr,
    nodes: Vec<OutsideNode>,
    /// Whether the namespace is still to be removed.
    armed: bool,
}

impl OutsideClient {
    /// Makes the client `name` on cluster `cluster`'s fabric (made of the
    /// first node alone when there is one node), with `load_balancer` (a
    /// CIDR and the index of the node it is routed through) if given.
    ///
    /// # Errors
    /// [`Error::Local`] when `scripts/node.sh outside` fails or says
    /// something it should not.
    pub(super) async fn create(
        cluster: u8,
        name: &str,
        load_balancer: Option<(&str, u8)>,
    ) -> Result<Self> {
        let p = cluster.to_string();
        let mut args = vec!["outside".to_owned(), p, name.to_owned()];
        if let Some((block, via)) = load_balancer {
            args.push(block.to_owned());
            args.push(via.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = node_sh(&args).await?;
        // Armed before parsing: a namespace made is removed whatever the
        // output says.
        let mut me = Self {
            cluster,
            name: name.to_owned(),
            netns: String::new(),
            address: Ipv4Addr::UNSPECIFIED,
            nodes: Vec::new(),
            armed: true,
        };
        let (netns, address, nodes) = parse_outside(&text)
            .map_err(|e| Error::Local(format!("scripts/node.sh outside {cluster} {name}: {e}")))?;
        me.netns = netns;
        me.address = address;
        me.nodes = nodes;
        Ok(me)
    }

    /// `program` to be run in the namespace (`ip netns exec <netns>
    /// <program>`), killed if dropped before it ends.
    pub fn command(&self, program: impl AsRef<OsStr>) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.netns])
            .arg(program)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Its address on the fabric.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The namespace's name.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Every node it reaches, in the fabric's order.
    pub fn nodes(&self) -> &[OutsideNode] {
        &self.nodes
    }

    /// The nodes' `InternalIP`s: the addresses an announcement of a
    /// NodePort names, each reachable from here.
    pub fn node_addresses(&self) -> Vec<Ipv4Addr> {
        self.nodes.iter().map(|n| n.internal_ip).collect()
    }

    /// The node `name` as reached from here.
    pub fn node(&self, name: &str) -> Option<&OutsideNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Removes the namespace.
    ///
    /// # Errors
    /// [`Error::Local`] when `scripts/node.sh outside-down` fails.
    pub async fn shutdown(mut self) -> Result<()> {
        self.armed = false;
        node_sh(&["outside-down", &self.cluster.to_string(), &self.name])
            .await
            .map(drop)
    }
}

impl Drop for OutsideClient {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = std::process::Command::new("bash")
            .arg(script())
            .args(["outside-down", &self.cluster.to_string(), &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// `scripts/node.sh outside`'s output: `netns NAME`, `address A`, then
/// `node NAME FABRIC INTERNAL` for each node.
fn parse_outside(text: &str) -> std::result::Result<(String, Ipv4Addr, Vec<OutsideNode>), String> {
    let mut netns = None;
    let mut address = None;
    let mut nodes = Vec::new();
    let ip = |s: Option<&str>, what: &str, line: &str| {
        s.and_then(|s| s.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| format!("no {what} in {line:?}"))
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("netns") => netns = words.next().map(str::to_owned),
            Some("address") => address = Some(ip(words.next(), "address", line)?),
            Some("node") => {
                let name = words
                    .next()
                    .ok_or_else(|| format!("no node name in {line:?}"))?
                    .to_owned();
                let fabric = ip(words.next(), "fabric address", line)?;
                let internal_ip = ip(words.next(), "InternalIP", line)?;
                nodes.push(OutsideNode {
                    name,
                    fabric,
                    internal_ip,
                });
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    match (netns, address) {
        (Some(n), Some(a)) if !nodes.is_empty() => Ok((n, a, nodes)),
        _ => Err(format!("no namespace, address or node in {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_scripts_output_is_read_whole() {
        let text = "netns logbook-outside-7-client\naddress 198.18.7.158\n\
                    node logbook-node-7 198.18.7.129 198.18.7.254\n\
                    node logbook-node-9 198.18.7.130 198.18.9.254";
        let (netns, address, nodes) = parse_outside(text).unwrap();
        assert_eq!(netns, "logbook-outside-7-client");
        assert_eq!(address, Ipv4Addr::new(198, 18, 7, 158));
        assert_eq!(
            nodes,
            vec![
                OutsideNode {
                    name: "logbook-node-7".to_owned(),
                    fabric: Ipv4Addr::new(198, 18, 7, 129),
                    internal_ip: Ipv4Addr::new(198, 18, 7, 254),
                },
                OutsideNode {
                    name: "logbook-node-9".to_owned(),
                    fabric: Ipv4Addr::new(198, 18, 7, 130),
                    internal_ip: Ipv4Addr::new(198, 18, 9, 254),
                },
            ]
        );
    }

    #[test]
    fn output_without_a_node_or_with_a_stray_line_is_refused() {
        assert!(parse_outside("netns x\naddress 198.18.7.158").is_err());
        assert!(
            parse_outside("netns x\naddress 198.18.7.158\nnode n 1.2.3.4 5.6.7.8\nhello").is_err()
        );
        assert!(parse_outside("netns x\naddress nowhere\nnode n 1.2.3.4 5.6.7.8").is_err());
    }
}
