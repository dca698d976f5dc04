//! `Announce`: a data node told the address clients outside reach it by
//! (`spec.externalAccess`), or its pod address again, with `CONFIG SET`
//! (no restart). The settings are rendered in
//! [`crate::resources::announce`]:
//!
//! - a Cluster node's (`cluster-announce-*`), which Valkey gossips to its
//!   peers; its own `CLUSTER NODES` line is read back;
//! - a Sentinel cluster's data node's (`replica-announce-ip`/`-port`),
//!   which its primary learns only when the replica connects: a replica
//!   drops its link (`CLIENT KILL TYPE master`) and connects again at
//!   once, resuming where it was (a partial resynchronisation). What it
//!   announces now is read back.

use logbook_crds::Topology;
use logbook_journal::{ExternalEndpoint, Role};

use super::cluster::answer;
use super::{ActError, Done, Target, valkey_err};
use crate::observe::addresses::announcement_once_set;
use crate::observe::external::observe_announced;
use crate::resources::announce::announce_settings;
use crate::valkey::ValkeyClient;

/// `Announce`: the settings, then what the node announces read back and
/// journaled.
pub(super) async fn announce(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    pod_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let topology = target.spec.topology;
    let settings = announce_settings(topology, pod_ip, endpoint, target.spec.tls.enabled)
        .map_err(|why| ActError::Refused(format!("{pod}: {why}")))?;
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    valkey
        .config_set_all(addr, &pairs)
        .await
        .map_err(valkey_err(format!("setting what {pod} announces")))?;
    // What it announces now, journaled should the rest fail: the
    // settings took, whatever follows.
    let set = announcement_once_set(topology, pod_ip, endpoint);
    let facts = || {
        observe_announced(target.state, pod, &set)
            .into_iter()
            .collect()
    };
    let (shown, reconnected) = if topology == Topology::Cluster {
        let after = answer(valkey, target, pod)
            .await
            .map_err(|err| err.with_facts(facts()))?;
        (after.announced.unwrap_or_default(), false)
    } else {
        let replica = target.state.pods.get(pod).and_then(|p| p.role) == Some(Role::Replica);
        let reconnected = replica
            && valkey.reconnect_to_primary(addr).await.map_err(|err| {
                valkey_err(format!("reconnecting {pod} to its primary to tell it"))(err)
                    .with_facts(facts())
            })? > 0;
        let shown = replica_announcement(valkey, addr, pod)
            .await
            .map_err(|err| err.with_facts(facts()))?;
        (shown, reconnected)
    };
    let told = if reconnected {
        " (reconnected to its primary to tell it)"
    } else {
        ""
    };
    Ok(Done {
        detail: match endpoint {
            Some(e) => format!("{pod} announces {} ({shown}){told}", e.describe()),
            None => format!("{pod} announces its pod address {pod_ip} ({shown}){told}"),
        },
        events: observe_announced(target.state, pod, &shown)
            .into_iter()
            .collect(),
        password: None,
    })
}

/// What the data node at `addr` announces to its primary
/// (`replica-announce-ip`/`-port`), as the journal writes it.
///
/// # Errors
/// [`ActError`] when the node does not answer.
pub async fn replica_announcement(
    valkey: &ValkeyClient,
    addr: std::net::SocketAddr,
    pod: &str,
) -> Result<String, ActError> {
    let found = valkey
        .config_get_matching(addr, "replica-announce-*")
        .await
        .map_err(valkey_err(format!("reading what {pod} announces")))?;
    Ok(crate::observe::addresses::observed_replica_announcement(
        found.get("replica-announce-ip").map_or("", String::as_str),
        found
            .get("replica-announce-port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
    ))
}
