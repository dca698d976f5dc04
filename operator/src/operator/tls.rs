//! TLS in the reconcile: the certificate Secret read and journaled (its
//! fingerprints, on change), the operator's clients given the cluster's CA
//! (and with mutual TLS its certificate), and what each answering node
//! serves journaled (on change). A problem a user must act on (a Secret
//! missing, or lacking a key) is a Warning Event once, when it is first
//! journaled, and in the journal's history.

use super::events::Kind;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use logbook_journal::{Reachability, Timestamp};

use super::error::OperatorError;
use super::runtime::ClusterRuntime;
use crate::observe::freshness::{self, Reads};
use crate::observe::tls::{observe_certificate, observe_served};
use crate::resources::{ClusterMeta, valkey_addr};
use crate::tls;

/// Reads the certificate Secret of `meta`'s cluster and what its nodes
/// serve; nothing for a cluster without TLS. True while a node serves
/// another certificate than the Secret's: the kubelet may not have updated
/// its files yet, and the reconcile comes back to ask it again.
pub async fn observe(
    client: &kube::Client,
    meta: &ClusterMeta,
    rt: &mut ClusterRuntime,
    reads: &mut Reads,
) -> Result<bool, OperatorError> {
    let Some(Ok(spec)) = rt.state.desired_spec() else {
        return Ok(false);
    };
    let (Some(source), Some(name)) = (spec.tls.source(), spec.tls.certificate_secret(&meta.name))
    else {
        if rt.tls_ready() {
            let _ = rt.set_tls(None).await;
        }
        return Ok(false);
    };
    let ns = meta.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets
        .get_opt(&name)
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("reading the TLS Secret {ns}/{name}"),
            source,
        })?;
    let object = freshness::secret(&name);
    if let Some(secret) = &secret {
        reads.object(object.clone(), &secret.metadata);
    }
    if freshness::older(&rt.state, reads, &object) {
        // An older certificate than the one the journal holds: neither
        // journaled nor given to the clients (nor compared with what the
        // nodes serve).
        let stale = observe_certificate(
            &rt.state,
            tls::read_record(&name, &source, secret.as_ref()).0,
        );
        let events = super::reconcile::gated(rt, reads, stale.into_iter().collect());
        rt.record(events, None).await?;
        return Ok(false);
    }
    let (record, material) = tls::read_record(&name, &source, secret.as_ref());
    let problem = record.problem.clone();
    if let Some(event) = observe_certificate(&rt.state, record) {
        let events = super::reconcile::gated(rt, reads, vec![event]);
        rt.record(events, None).await?;
        if let Some(problem) = problem {
            rt.publish_event(
                Kind::Warning,
                "CertificateNotReady",
                "ReadCertificate",
                format!(
                    "{problem}; the pods cannot start, and are not probed, until it can be used"
                ),
            )
            .await;
        }
    }
    let Some(material) = material else {
        return Ok(false);
    };
    let previous = rt.trusted_ca(&material.ca_pem);
    let settings = tls::client_settings(meta, &spec, &material, previous.as_deref());
    if let Err(err) = rt.set_tls(Some(settings)).await {
        rt.publish_event(
            Kind::Warning,
            "CertificateNotUsable",
            "ReadCertificate",
            format!("TLS Secret {ns}/{name}: {err}"),
        )
        .await;
        return Ok(false);
    }
    // What each answering node serves: the pooled connection's handshake,
    // so nothing new is opened while nothing changes; a fresh one when
    // that shows another certificate than the Secret's.
    let wanted = rt.state.tls.wanted().map(str::to_owned);
    // The data pods and the Sentinels (one that serves another
    // certificate is restarted: it cannot reload one).
    let answering: Vec<(String, std::net::SocketAddr)> = rt
        .state
        .pods
        .iter()
        .filter(|(_, v)| v.reachability == Some(Reachability::Reachable))
        .filter_map(|(pod, v)| Some((pod.clone(), v.ip.as_deref().and_then(valkey_addr)?)))
        .chain(
            rt.state
                .sentinel
                .pods
                .iter()
                .filter(|(_, v)| v.reachability == Some(Reachability::Reachable))
                .filter_map(|(pod, v)| {
                    Some((
                        pod.clone(),
                        v.ip.as_deref().and_then(crate::resources::sentinel_addr)?,
                    ))
                }),
        )
        .collect();
    let mut served = Vec::new();
    for (pod, addr) in answering {
        let client = rt.probe_client();
        let mut seen = client.served_certificate(addr).await.ok().flatten();
        if seen.is_some() && seen != wanted {
            // The pooled connection may predate a reload: ask afresh.
            client.forget(addr).await;
            seen = client.served_certificate(addr).await.ok().flatten();
        }
        if let Some(fingerprint) = seen {
            served.push((pod, fingerprint));
        }
    }
    let pending = served
        .iter()
        .any(|(_, fingerprint)| wanted.as_ref() != Some(fingerprint));
    let events = observe_served(
        &rt.state,
        served,
        Timestamp::from(chrono::Utc::now()),
        crate::decide::RELOAD_RETRY_MS,
    );
    rt.record(events, None).await?;
    Ok(pending)
}
