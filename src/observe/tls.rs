//! TLS observations: the certificate Secret as read, and the certificate
//! each node served in the operator's last handshake with it; each
//! journaled only when it differs from what the journal last says.

use logbook_journal::{CertificateRecord, ClusterState, Event, Timestamp};

/// `CertificateObserved` when `record` differs from the last journaled.
pub fn observe_certificate(state: &ClusterState, record: CertificateRecord) -> Option<Event> {
    (state.tls.certificate.as_ref() != Some(&record)).then_some(Event::CertificateObserved {
        certificate: record,
    })
}

/// `CertificateServed` for each `(pod, fingerprint)` that differs from the
/// last journaled for the pod, or, for a pod asked to reload at least
/// `retry_ms` before `now` and still serving another certificate than
/// the Secret's, the same again (the decider then asks again).
pub fn observe_served(
    state: &ClusterState,
    served: impl IntoIterator<Item = (String, String)>,
    now: Timestamp,
    retry_ms: i64,
) -> Vec<Event> {
    let tls = &state.tls;
    let wanted = tls.wanted();
    served
        .into_iter()
        .filter(|(pod, fp)| {
            if tls.serves(pod) != Some(fp.as_str()) {
                return true;
            }
            wanted.is_some_and(|wanted| {
                fp != wanted
                    && tls
                        .reload_pending(pod, wanted)
                        .is_some_and(|asked| now.millis_since(asked) >= retry_ms)
            })
        })
        .map(|(pod, fingerprint)| Event::CertificateServed { pod, fingerprint })
        .collect()
}
