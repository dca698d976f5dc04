//! A standby's effects: following its source (`FollowSource`) and its
//! promotion (`PromoteStandby`), and what both, and the observer, read of
//! the source: its Secret's passwords and its offset.
//!
//! The source's passwords are read from its Secret when needed and never
//! journaled: the journal names the Secret (`namespace/name`) only.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Client;
use kube::api::Api;
use logbook_crds::v1alpha1::{SOURCE_METRICS_KEY, SOURCE_REPLICATION_KEY};
use logbook_crds::{ReplicateFrom, ValkeyCluster};
use logbook_journal::Event;

use super::kube_ops::kube_err;
use super::{ActError, Done, Target, valkey_err};
use crate::resources::internal_users::{
    METRICS_USER, internal_secret_cluster, internal_secret_name,
};
use crate::valkey::{Password, ReplicationInfo, Timeouts, ValkeyClient};

/// Where a standby's source is, as resolved now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddress {
    /// Its host (the client Service's ClusterIP for a ValkeyCluster).
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// `namespace/name` of the Secret holding the source's passwords: a
/// ValkeyCluster source's `<name>-internal` in its namespace, an
/// endpoint's credentials Secret in the standby's.
pub fn source_secret(own_namespace: &str, from: &ReplicateFrom) -> String {
    match (&from.cluster, &from.endpoint) {
        (Some(c), _) => format!(
            "{}/{}",
            c.namespace.as_deref().unwrap_or(own_namespace),
            internal_secret_name(&c.name)
        ),
        (None, Some(e)) => format!("{own_namespace}/{}", e.credentials_secret),
        (None, None) => String::new(),
    }
}

/// Whether ValkeyCluster `namespace/name` lets a standby in
/// `own_namespace` follow it: always in its own namespace, elsewhere only
/// when its `spec.standbyNamespaces` names `own_namespace`. The operator
/// reads another namespace's Service and Secret for a standby only after
/// this: a tenant naming a cluster it has no rights on gets nothing of it.
///
/// # Errors
/// Why not, for people: no consent, no such cluster, or the API's error.
pub async fn source_consents(
    client: &Client,
    own_namespace: &str,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    if namespace == own_namespace {
        return Ok(());
    }
    let api: Api<ValkeyCluster> = Api::namespaced(client.clone(), namespace);
    let source = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading ValkeyCluster {namespace}/{name}: {e}"))?
        .ok_or_else(|| format!("ValkeyCluster {namespace}/{name} does not exist"))?;
    if source
        .spec
        .standby_namespaces
        .iter()
        .any(|ns| ns == own_namespace)
    {
        Ok(())
    } else {
        Err(format!(
            "ValkeyCluster {namespace}/{name} does not let namespace {own_namespace} follow it: a standby in another namespace needs the source's consent (its spec.standbyNamespaces naming {own_namespace}); nothing of the source is read or copied until then"
        ))
    }
}

/// The source's address: an endpoint's as given; a ValkeyCluster's client
/// Service's ClusterIP (which follows its primary through failovers),
/// once the source consents ([`source_consents`]).
///
/// # Errors
/// A sentence naming what is missing (the consent, the Service, its
/// address), or the API's error.
pub async fn resolve_source(
    client: &Client,
    own_namespace: &str,
    own_name: &str,
    from: &ReplicateFrom,
) -> Result<SourceAddress, String> {
    match (&from.cluster, &from.endpoint) {
        (Some(c), _) => {
            let ns = c.namespace.as_deref().unwrap_or(own_namespace);
            if ns == own_namespace && c.name == own_name {
                return Err("a cluster cannot be its own standby".to_owned());
            }
            source_consents(client, own_namespace, ns, &c.name).await?;
            let api: Api<Service> = Api::namespaced(client.clone(), ns);
            let service = api
                .get_opt(&c.name)
                .await
                .map_err(|e| format!("reading Service {ns}/{}: {e}", c.name))?
                .ok_or_else(|| {
                    format!(
                        "the source's client Service {ns}/{} does not exist (is ValkeyCluster {ns}/{} there?)",
                        c.name, c.name
                    )
                })?;
            let ip = service
                .spec
                .and_then(|s| s.cluster_ip)
                .filter(|ip| !ip.is_empty() && ip != "None")
                .ok_or_else(|| format!("Service {ns}/{} has no cluster IP", c.name))?;
            Ok(SourceAddress {
                host: ip,
                port: crate::resources::VALKEY_PORT,
            })
        }
        (None, Some(e)) => Ok(SourceAddress {
            host: e.host.clone(),
            port: e.port(),
        }),
        (None, None) => Err("replicateFrom names no source".to_owned()),
    }
}

/// The password under `key` in the Secret `secret` (`namespace/name`):
/// `None` when the Secret has no such key. A Secret of another namespace
/// than `own_namespace` is read only as the `<name>-internal` of a
/// ValkeyCluster that consents ([`source_consents`]): this is the one
/// place a standby reads a Secret, so no path copies one across
/// namespaces on a tenant's say-so.
///
/// # Errors
/// No consent (not yet: it may be given), the Secret missing, or the
/// API's error.
pub async fn source_password(
    client: &Client,
    own_namespace: &str,
    secret: &str,
    key: &str,
) -> Result<Option<Password>, ActError> {
    let (ns, name) = secret
        .split_once('/')
        .ok_or_else(|| ActError::Refused(format!("{secret:?} names no Secret")))?;
    if ns != own_namespace {
        let cluster = internal_secret_cluster(name).ok_or_else(|| {
            ActError::Refused(format!(
                "Secret {secret} is in another namespace and is no ValkeyCluster's <name>-internal Secret: a standby reads no other"
            ))
        })?;
        source_consents(client, own_namespace, ns, cluster)
            .await
            .map_err(ActError::NotYet)?;
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let found = api
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading the source's Secret {secret}")))?
        .ok_or_else(|| {
            ActError::NotYet(format!(
                "the source's Secret {secret} does not exist (an endpoint's needs the key {SOURCE_REPLICATION_KEY}, copied from the source's <name>-internal)"
            ))
        })?;
    Ok(found
        .data
        .and_then(|d| d.get(key).cloned())
        .and_then(|b| String::from_utf8(b.0).ok())
        .filter(|p| !p.is_empty())
        .map(Password::new))
}

/// The source's metrics password from its Secret `secret`, or why it
/// cannot be had (read once, for as many reads of the source as needed).
pub async fn metrics_password(
    client: &Client,
    own_namespace: &str,
    secret: &str,
) -> Result<Option<Password>, String> {
    source_password(client, own_namespace, secret, SOURCE_METRICS_KEY)
        .await
        .map_err(|e| e.to_string())
}

/// How long one read of the source may take: a source that is gone (the
/// reason to promote) must hold nothing up.
pub const SOURCE_READ_LIMIT: Duration = Duration::from_secs(1);

/// The source's `INFO replication`, read as its metrics user (whose
/// password `metrics` is, from [`metrics_password`]), within
/// [`SOURCE_READ_LIMIT`].
///
/// # Errors
/// Why it could not be read, for people.
pub async fn read_source(
    address: &SourceAddress,
    metrics: &Result<Option<Password>, String>,
) -> Result<ReplicationInfo, String> {
    let metrics = match metrics {
        Ok(Some(m)) => m.clone(),
        Ok(None) => {
            return Err(format!(
                "no metrics password in the source's Secret (key {SOURCE_METRICS_KEY}): its offset cannot be read"
            ));
        }
        Err(e) => return Err(e.clone()),
    };
    let addr = socket_addr(address).await?;
    let timeouts = Timeouts {
        connect: SOURCE_READ_LIMIT,
        command: SOURCE_READ_LIMIT,
    };
    let client = ValkeyClient::new(timeouts, None);
    client
        .set_identity(Some((METRICS_USER.to_owned(), metrics)))
        .await;
    let read = client.info_replication(addr).await;
    client.forget(addr).await;
    read.map_err(|e| {
        format!(
            "reading the source at {}:{}: {e}",
            address.host, address.port
        )
    })
}

/// The socket address of `address`, its host resolved when it is a name.
async fn socket_addr(address: &SourceAddress) -> Result<SocketAddr, String> {
    if let Ok(ip) = address.host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, address.port));
    }
    tokio::net::lookup_host((address.host.as_str(), address.port))
        .await
        .map_err(|e| format!("resolving {}: {e}", address.host))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", address.host))
}

/// `FollowSource`: `REPLICAOF host port` on `pod`.
///
/// # Errors
/// The pod without an address, or the command's failure.
pub async fn follow(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    host: &str,
    port: u16,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    valkey
        .replicaof_host(addr, host, port)
        .await
        .map_err(valkey_err(format!(
            "pointing {pod} at the source {host}:{port}"
        )))?;
    Ok(Done {
        detail: format!("{pod} follows the source at {host}:{port}"),
        events: vec![Event::SourceFollowed {
            pod: pod.to_owned(),
            host: host.to_owned(),
            port,
        }],
        password: None,
    })
}

/// `PromoteStandby`: the source's offset, `REPLICAOF NO ONE` on `pod`, its
/// offset, the source's offset again. Journals `StandbyPromoted` (how far
/// behind it was, as far as the reads tell) and `ReplicaPromoted`.
///
/// The first read bounds the lag from below only if `pod` still followed
/// the source when it was made: a pod an earlier attempt already stopped
/// (one cut short after its `REPLICAOF NO ONE`) stopped at an offset of
/// the source that is behind it now, so that read is left out and only
/// the bound from above is journaled, with why.
///
/// # Errors
/// The pod without an address, or `REPLICAOF NO ONE` failing (nothing
/// changed then).
pub async fn promote(
    client: &Client,
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    source: &SourceAddress,
    secret: &str,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let metrics = metrics_password(client, &target.meta.namespace, secret).await;
    let following = valkey
        .info_replication(addr)
        .await
        .is_ok_and(|info| info.primary.is_some());
    let before = if following {
        read_source(source, &metrics).await
    } else {
        Err(format!(
            "{pod} was not seen following the source before this attempt (an earlier one may have stopped it): where it stopped is known from above only"
        ))
    };
    valkey
        .replicaof(addr, None)
        .await
        .map_err(valkey_err(format!("promoting the standby's {pod}")))?;
    let (offset, own) = match valkey.info_replication(addr).await {
        Ok(info) => (info.master_repl_offset, Some(info)),
        Err(_) => (0, None),
    };
    let after = read_source(source, &metrics).await;
    // Offsets of another history say nothing of this one's lag.
    let same = |info: &ReplicationInfo| {
        own.as_ref()
            .is_none_or(|o| o.replid2 == info.replid || o.replid == info.replid)
    };
    let error = match (&before, &after) {
        (Err(e), _) | (_, Err(e)) => Some(e.clone()),
        (Ok(b), _) if !same(b) => Some("the source is on another history".to_owned()),
        _ => None,
    };
    let source_before = before
        .ok()
        .filter(|i| same(i))
        .map(|i| i.master_repl_offset);
    let source_after = after.ok().filter(|i| same(i)).map(|i| i.master_repl_offset);
    let behind = match source_after.or(source_before) {
        Some(s) => format!("; the source at offset {s}"),
        None => String::new(),
    };
    Ok(Done {
        detail: format!(
            "standby promoted: {pod} stopped following {}:{} at offset {offset}{behind}",
            source.host, source.port
        ),
        events: vec![
            Event::StandbyPromoted {
                pod: pod.to_owned(),
                offset,
                source_before,
                source_after,
                error,
            },
            Event::ReplicaPromoted {
                pod: pod.to_owned(),
                from: None,
                offset,
            },
        ],
        password: None,
    })
}
