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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use logbook_journal::{CertificateRecord, ClusterState, Event, Timestamp};

    use super::*;

    fn state_with(served: &str, reloaded_at: Option<i64>) -> ClusterState {
        let mut s = ClusterState::new();
        s.tls.certificate = Some(CertificateRecord {
            secret: "demo-tls".into(),
            fingerprint: Some("new".into()),
            ca_fingerprint: Some("ca".into()),
            not_after: None,
            source: "internal".into(),
            problem: None,
        });
        s.tls
            .served
            .insert("demo-0".into(), (served.into(), Timestamp(1_000_000)));
        if let Some(at) = reloaded_at {
            s.tls
                .reloaded
                .insert("demo-0".into(), ("new".into(), Timestamp(at)));
        }
        s
    }

    #[test]
    fn the_same_certificate_is_journaled_again_only_to_check_a_reload_not_taken() {
        let served = || vec![("demo-0".to_owned(), "old".to_owned())];
        // Unchanged, never asked to reload: nothing.
        let s = state_with("old", None);
        assert!(observe_served(&s, served(), Timestamp(100_000_000), 15_000).is_empty());
        // Asked at 2 s, checked at 10 s: too soon.
        let s = state_with("old", Some(2_000_000));
        assert!(observe_served(&s, served(), Timestamp(10_000_000), 15_000).is_empty());
        // Checked at 17 s: journaled again, so the decider asks again.
        let events = observe_served(&s, served(), Timestamp(17_000_000), 15_000);
        assert_eq!(
            events,
            vec![Event::CertificateServed {
                pod: "demo-0".into(),
                fingerprint: "old".into()
            }]
        );
        // A change is always journaled; the wanted one once only.
        let s = state_with("old", None);
        let now = vec![("demo-0".to_owned(), "new".to_owned())];
        assert_eq!(observe_served(&s, now, Timestamp(0), 15_000).len(), 1);
        let s = state_with("new", None);
        let now = vec![("demo-0".to_owned(), "new".to_owned())];
        assert!(observe_served(&s, now, Timestamp(100_000_000), 15_000).is_empty());
    }

    #[test]
    fn a_certificate_is_journaled_when_it_differs() {
        let s = state_with("new", None);
        let same = s.tls.certificate.clone().unwrap();
        assert!(observe_certificate(&s, same.clone()).is_none());
        let renewed = CertificateRecord {
            fingerprint: Some("newer".into()),
            ..same
        };
        assert!(observe_certificate(&s, renewed).is_some());
    }
}
