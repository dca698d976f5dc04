//! Announcing: each node tells clients (`MOVED`, `ASK`, `CLUSTER SHARDS`)
//! the address a client outside Kubernetes reaches it by while external
//! access is on (`spec.externalAccess`), and its pod address otherwise.
//!
//! A node's own `CLUSTER NODES` line shows what it announces
//! (`AnnouncedAddressObserved`); a node whose line differs from what it
//! should say is told (`Announce`: `CONFIG SET`, no restart). Only nodes
//! whose line was ever journaled are considered, so a cluster that never
//! had external access decides nothing here.

use super::{Member, members};
use crate::decide::Decision;
use crate::decide::external::{announce, judged};
use crate::decide::view::ClusterView;
use crate::observe::addresses::cluster_announcement;

/// `Announce` for every member announcing other than it should.
pub fn decide_announce(view: &ClusterView<'_>) -> Vec<Decision> {
    let mut out = Vec::new();
    for m in members(view) {
        let Some(pod_ip) = m.ip() else {
            continue;
        };
        let Some((announced, endpoint)) = judged(&view.state.external, m.name()) else {
            continue;
        };
        let wanted = cluster_announcement(pod_ip, endpoint);
        if announced == wanted {
            continue;
        }
        let why = match endpoint {
            Some(e) => format!(
                "{} announces {announced}; clients outside reach it at {}",
                m.name(),
                e.address()
            ),
            None => format!(
                "{} announces {announced}, not its pod address {pod_ip}",
                m.name()
            ),
        };
        out.push(announce(m.name(), pod_ip, endpoint, announced, wanted, why));
    }
    out
}

/// The addresses `m`'s peers may list it at without being stale: its pod
/// address, what it announces, and where clients outside reach it (its
/// peers learn a new announcement by gossip, a second or so after it).
pub fn listed_at<'a>(view: &ClusterView<'a>, m: &Member<'a>) -> Vec<&'a str> {
    m.ip()
        .into_iter()
        .chain(view.state.external.listed_at(m.name()))
        .collect()
}
