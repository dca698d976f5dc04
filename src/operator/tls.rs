//! TLS in the reconcile: the certificate Secret read and journaled (its
//! fingerprints, on change), the operator's clients given the cluster's CA
//! (and with mutual TLS its certificate), and what each answering node
//! serves journaled (on change). A problem a user must act on (a Secret
//! missing, or lacking a key) is a Warning Event once, when it is first
//! journaled, and in the journal's history.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use super::events::Kind;
use logbook_journal::Reachability;

use super::error::OperatorError;
use super::runtime::ClusterRuntime;
use crate::observe::tls::{observe_certificate, observe_served};
use crate::resources::{ClusterMeta, valkey_addr};
use crate::tls;

/// Reads the certificate Secret of `meta`'s cluster and what its nodes
/// serve; nothing for a cluster without TLS.
pub async fn observe(
    client: &kube::Client,
    meta: &ClusterMeta,
    rt: &mut ClusterRuntime,
) -> Result<(), OperatorError> {
    let Some(Ok(spec)) = rt.state.desired_spec() else {
        return Ok(());
    };
    let (Some(source), Some(name)) = (
        spec.tls.source(),
        spec.tls.certificate_secret(&meta.name),
    ) else {
        if rt.tls_ready() {
            let _ = rt.set_tls(None).await;
        }
        return Ok(());
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
    let (record, material) = tls::read_record(&name, &source, secret.as_ref());
    let problem = record.problem.clone();
    if let Some(event) = observe_certificate(&rt.state, record) {
        rt.record(vec![event], None).await?;
        if let Some(problem) = problem {
            rt.publish_event(
                Kind::Warning,
                "CertificateNotReady",
                "ReadCertificate",
                format!("{problem}; the pods cannot start, and are not probed, until it can be used"),
            )
            .await;
        }
    }
    let Some(material) = material else {
        return Ok(());
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
        return Ok(());
    }
    // What each answering node serves: the pooled connection's handshake,
    // so nothing new is opened while nothing changes.
    let mut served = Vec::new();
    for (pod, view) in &rt.state.pods {
        if view.reachability != Some(Reachability::Reachable) {
            continue;
        }
        let Some(addr) = view.ip.as_deref().and_then(valkey_addr) else {
            continue;
        };
        if let Ok(Some(fingerprint)) = rt.probe_client().served_certificate(addr).await {
            served.push((pod.clone(), fingerprint));
        }
    }
    let events = observe_served(&rt.state, served);
    rt.record(events, None).await?;
    Ok(())
}
