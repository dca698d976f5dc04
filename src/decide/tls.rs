//! TLS certificates, on every topology that serves TLS: the operator's
//! own CA issues the cluster's certificate before anything needs it and
//! renews it in the last third of its life; every node serves the
//! certificate its Secret holds, told to reload the files (no restart)
//! when it serves another.
//!
//! A node is judged on what it served in the operator's last handshake
//! with it (`CertificateServed`). The kubelet updates a mounted Secret's
//! files some time after the Secret changes (up to a minute or two on a
//! real kubelet): a reload that found the old files is checked again by
//! the reconcile [`RELOAD_RETRY_MS`] later (the decider reads no clock),
//! which journals what the node serves then, and asked again.

use std::collections::BTreeMap;

use logbook_crds::CertSource;
use logbook_journal::{Intent, Reachability, ReasonCode, Timestamp};

use super::Decision;
use super::view::ClusterView;
use crate::tls::SOURCE_INTERNAL;
use crate::tls::issue::{LEAF_VALIDITY, needs_renewal};

/// How long a node asked to reload is given before it is asked again.
pub const RELOAD_RETRY_MS: i64 = 15_000;

/// The certificate to issue, first of all when the operator's CA is the
/// source and the Secret holds none or one due for renewal.
pub fn decide_issue(view: &ClusterView<'_>, now: Timestamp) -> Option<Decision> {
    if view.spec.tls.source()? != CertSource::Internal {
        return None;
    }
    // Read by the reconcile before it acts, under the name the source
    // gives it (the projection does not know the cluster's name).
    let current = view
        .state
        .tls
        .certificate
        .as_ref()
        .filter(|c| c.source == SOURCE_INTERNAL);
    let secret = current?.secret.clone();
    let not_after = match current {
        None => return None,
        Some(c) if c.fingerprint.is_none() || c.problem.is_some() => None,
        Some(c) => match c.not_after {
            Some(t) if !needs_renewal(t, now, LEAF_VALIDITY) => return None,
            // Not one of ours (no expiry recorded), or due.
            other => other,
        },
    };
    let detail = match not_after {
        None => format!("Secret {secret} holds no certificate of the operator's CA: issue one"),
        Some(t) => format!("the certificate in Secret {secret} expires at {t}: renew it"),
    };
    Some(Decision::new(
        Intent::IssueCertificate { secret },
        ReasonCode::CertificateDue { not_after },
        detail,
    ))
}

/// One reload for the answering nodes that serve another certificate than
/// the Secret's, leaving out those asked and not seen since.
pub fn decide_reload(view: &ClusterView<'_>) -> Option<Decision> {
    if !view.spec.tls.enabled {
        return None;
    }
    let tls = &view.state.tls;
    let wanted = tls.wanted()?;
    let mut served = BTreeMap::new();
    for pod in view.pods() {
        if !pod.usable() || pod.view.reachability != Some(Reachability::Reachable) {
            continue;
        }
        let Some(serves) = tls.serves(pod.name) else {
            continue;
        };
        // Asked already and not seen since: the reconcile checks again
        // after RELOAD_RETRY_MS and journals what it serves then.
        if serves != wanted && tls.reload_pending(pod.name, wanted).is_none() {
            served.insert(pod.name.to_owned(), Some(serves.to_owned()));
        }
    }
    if served.is_empty() {
        return None;
    }
    let pods: Vec<String> = served.keys().cloned().collect();
    let detail = format!(
        "{} serve another certificate than {} in the Secret: reload it",
        pods.join(", "),
        wanted.get(..16).unwrap_or(wanted)
    );
    Some(Decision::new(
        Intent::ReloadCertificate {
            pods,
            fingerprint: wanted.to_owned(),
        },
        ReasonCode::CertificateChanged { served },
        detail,
    ))
}
