//! The reads a standby is watched from: its source's address (a
//! ValkeyCluster's client Service), its offset (as the source's metrics
//! user, whose password its Secret holds), and its leader's offset.
//! Done without the cluster's runtime held, so that no decision waits on
//! a slow or unreachable source.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_crds::ReplicateFrom;
use logbook_journal::ClusterState;

use crate::actuate::standby::{
    SourceAddress, metrics_password, read_source, resolve_source, source_secret,
};
use crate::observe::standby::SourceRead;
use crate::resources::{ClusterMeta, valkey_addr};
use crate::valkey::ValkeyClient;

/// How often a standby's source is read: its lag journaled when it crosses
/// the bound, a source's failover seen.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);

/// What a standby's reads need of the projection: its `replicateFrom`
/// and its leader's address; `None` when the cluster is no standby.
#[derive(Debug, Clone)]
pub struct Watched {
    from: ReplicateFrom,
    leader: Option<SocketAddr>,
}

/// [`Watched`] of `state`'s cluster, taken while the runtime is held so
/// that the reads need nothing more of it.
pub fn watched(state: &ClusterState) -> Option<Watched> {
    let from = state.desired_spec().and_then(Result::ok)?.replicate_from?;
    let leader = state
        .replication
        .primary
        .as_ref()
        .and_then(|p| state.pods.get(p))
        .and_then(|p| p.ip.as_deref())
        .and_then(valkey_addr);
    Some(Watched { from, leader })
}

/// The source and the leader as read now, with the lag bound.
pub async fn read_standby(
    client: &kube::Client,
    meta: &ClusterMeta,
    valkey: &ValkeyClient,
    watched: Watched,
) -> (SourceRead, u64) {
    let Watched { from, leader } = watched;
    let secret = source_secret(&meta.namespace, &from);
    let address = resolve_source(client, &meta.namespace, &meta.name, &from).await;
    let leader = match leader {
        Some(addr) => valkey
            .info_replication(addr)
            .await
            .ok()
            .map(|i| (i.master_repl_offset, i.replid)),
        None => None,
    };
    let source = match &address {
        Ok(address) => read_source(
            address,
            &metrics_password(client, &meta.namespace, &secret).await,
        )
        .await
        .map(|i| (i.master_repl_offset, i.replid)),
        Err(e) => Err(e.clone()),
    };
    let (host, port) = match address {
        Ok(SourceAddress { host, port }) => (Some(host), port),
        Err(_) => (
            None,
            from.endpoint
                .as_ref()
                .map_or(crate::resources::VALKEY_PORT, |e| e.port()),
        ),
    };
    (
        SourceRead {
            host,
            port,
            secret,
            leader,
            source,
        },
        from.lag_bound(),
    )
}
