//! The reads a standby is watched from: its source's address (a
//! ValkeyCluster's client Service), its offset (as the source's metrics
//! user, whose password its Secret holds), and its leader's offset.
//! Done without the cluster's runtime held, so that no decision waits on
//! a slow or unreachable source.

use std::time::Duration;

use logbook_crds::v1alpha1::SOURCE_METRICS_KEY;
use logbook_journal::ClusterState;

use crate::actuate::standby::{
    SourceAddress, read_source, resolve_source, source_password, source_secret,
};
use crate::observe::standby::SourceRead;
use crate::resources::{ClusterMeta, valkey_addr};
use crate::valkey::ValkeyClient;

/// How often a standby's source is read: its lag journaled when it crosses
/// the bound, a source's failover seen.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);

/// How long one read of the source may take.
const SOURCE_READ_LIMIT: Duration = Duration::from_secs(1);

/// Whether `state`'s cluster is a standby whose source is read.
pub fn watched(state: &ClusterState) -> bool {
    state
        .desired_spec()
        .and_then(Result::ok)
        .is_some_and(|s| s.replicate_from.is_some())
}

/// The source and the leader as read now, with the lag bound; `None`
/// when the cluster is no standby.
pub async fn read_standby(
    client: &kube::Client,
    meta: &ClusterMeta,
    valkey: &ValkeyClient,
    state: &ClusterState,
) -> Option<(SourceRead, u64)> {
    let spec = state.desired_spec().and_then(Result::ok)?;
    let from = spec.replicate_from?;
    let secret = source_secret(&meta.namespace, &from);
    let address = resolve_source(client, &meta.namespace, &meta.name, &from).await;
    let leader_addr = state
        .replication
        .primary
        .as_ref()
        .and_then(|p| state.pods.get(p))
        .and_then(|p| p.ip.as_deref())
        .and_then(valkey_addr);
    let leader = match leader_addr {
        Some(addr) => valkey
            .info_replication(addr)
            .await
            .ok()
            .map(|i| (i.master_repl_offset, i.replid)),
        None => None,
    };
    let source = match &address {
        Ok(address) => read_offset(client, address, &secret).await,
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
    Some((
        SourceRead {
            host,
            port,
            secret,
            leader,
            source,
        },
        from.lag_bound(),
    ))
}

/// The source's offset and replication id.
async fn read_offset(
    client: &kube::Client,
    address: &SourceAddress,
    secret: &str,
) -> Result<(u64, String), String> {
    let metrics = source_password(client, secret, SOURCE_METRICS_KEY)
        .await
        .map_err(|e| e.to_string())?;
    read_source(address, metrics, SOURCE_READ_LIMIT)
        .await
        .map(|i| (i.master_repl_offset, i.replid))
}
