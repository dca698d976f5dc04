//! TLS observations: the certificate Secret as read, and the certificate
//! each node served in the operator's last handshake with it; each
//! journaled only when it differs from what the journal last says.

use logbook_journal::{CertificateRecord, ClusterState, Event};

/// `CertificateObserved` when `record` differs from the last journaled.
pub fn observe_certificate(state: &ClusterState, record: CertificateRecord) -> Option<Event> {
    (state.tls.certificate.as_ref() != Some(&record))
        .then_some(Event::CertificateObserved { certificate: record })
}

/// `CertificateServed` for each `(pod, fingerprint)` that differs from the
/// last journaled for the pod.
pub fn observe_served(
    state: &ClusterState,
    served: impl IntoIterator<Item = (String, String)>,
) -> Vec<Event> {
    served
        .into_iter()
        .filter(|(pod, fp)| state.tls.served.get(pod) != Some(fp))
        .map(|(pod, fingerprint)| Event::CertificateServed { pod, fingerprint })
        .collect()
}
