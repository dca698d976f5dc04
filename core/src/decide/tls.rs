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
use crate::certificates::SOURCE_INTERNAL;
use crate::certificates::{LEAF_VALIDITY, needs_renewal};

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
    let external = &view.state.external;
    if external.uncertified
        && current.is_some_and(|c| c.fingerprint.is_some() && c.problem.is_none())
    {
        let hosts = external.hosts();
        return Some(Decision::new(
            Intent::IssueCertificate {
                secret: secret.clone(),
            },
            ReasonCode::ExternalEndpointsChanged {
                hosts: hosts.clone(),
            },
            format!(
                "clients outside reach the cluster at {}: the certificate in Secret {secret} is issued again naming them",
                if hosts.is_empty() {
                    "no address now".to_owned()
                } else {
                    hosts.join(", ")
                }
            ),
        ));
    }
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

/// When the certificate of the operator's CA falls due for renewal (the
/// first moment [`decide_issue`] asks for it), if it is not due already.
pub fn renewal_deadline(view: &ClusterView<'_>) -> Option<Timestamp> {
    if view.spec.tls.source()? != CertSource::Internal {
        return None;
    }
    let certificate = view.state.tls.certificate.as_ref()?;
    if certificate.source != SOURCE_INTERNAL
        || certificate.fingerprint.is_none()
        || certificate.problem.is_some()
    {
        return None;
    }
    let not_after = certificate.not_after?;
    // Due once less than a third of its life is left.
    let third = i64::try_from(LEAF_VALIDITY.as_micros() / 3).unwrap_or(i64::MAX);
    Some(Timestamp(
        not_after
            .as_micros()
            .saturating_sub(third)
            .saturating_add(1),
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
        return decide_sentinel_restart(view, wanted);
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

/// A Sentinel cannot reload its certificate (it has no `CONFIG`): one
/// that serves another than the Secret's is restarted, its pod deleted
/// (`ReloadCertificate` of that pod), so that it starts on the files as
/// they are. One at a time, and only while every Sentinel the spec asks
/// for answers and none is being restarted already: a quorum stays.
fn decide_sentinel_restart(view: &ClusterView<'_>, wanted: &str) -> Option<Decision> {
    let tls = &view.state.tls;
    let sentinels = &view.state.sentinel.pods;
    let answering = sentinels
        .values()
        .filter(|v| super::sentinel::view::answering(v))
        .count();
    let wanted_count = usize::try_from(super::sentinel::view::wanted_sentinels(view)).ok()?;
    if wanted_count == 0 || answering < wanted_count {
        return None;
    }
    if sentinels
        .keys()
        .any(|s| tls.reload_pending(s, wanted).is_some())
    {
        return None;
    }
    let (sentinel, serves) = sentinels
        .iter()
        .filter(|(_, v)| super::sentinel::view::answering(v))
        .find_map(|(name, _)| {
            let serves = tls.serves(name)?;
            (serves != wanted).then_some((name, serves))
        })?;
    Some(Decision::new(
        Intent::ReloadCertificate {
            pods: vec![sentinel.clone()],
            fingerprint: wanted.to_owned(),
        },
        ReasonCode::CertificateChanged {
            served: BTreeMap::from([(sentinel.clone(), Some(serves.to_owned()))]),
        },
        format!(
            "Sentinel {sentinel} serves another certificate than {} in the Secret, and a Sentinel cannot reload one: restart it",
            wanted.get(..16).unwrap_or(wanted)
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use logbook_crds::{Topology, ValkeyClusterSpec};
    use logbook_journal::{CertificateRecord, Event, Intent, Reachability, ReasonCode, Timestamp};

    use super::*;
    use crate::decide::given::Given;

    const DAY_US: i64 = 86_400_000_000;

    fn record(fingerprint: Option<&str>, not_after: Option<Timestamp>) -> Event {
        Event::CertificateObserved {
            certificate: CertificateRecord {
                secret: "demo-tls".into(),
                fingerprint: fingerprint.map(str::to_owned),
                ca_fingerprint: fingerprint.map(|_| "ca".to_owned()),
                not_after,
                source: SOURCE_INTERNAL.into(),
                problem: None,
            },
        }
    }

    /// A TLS Replication cluster of two answering pods.
    fn tls_pods() -> Given {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(2);
        spec.tls.enabled = true;
        g.spec(&spec);
        g.applied(1);
        for i in 0..2 {
            g.pod(i, "r1");
            g.reach(i, Reachability::Reachable);
        }
        g
    }

    fn view(g: &Given) -> ClusterView<'_> {
        ClusterView::new(&g.state).unwrap()
    }

    #[test]
    fn new_external_addresses_issue_the_certificate_again_once() {
        let mut g = tls_pods();
        let now = g.state.last_at;
        g.event(record(Some("aa"), Some(Timestamp(now.0 + 90 * DAY_US))));
        assert!(decide_issue(&view(&g), now).is_none());
        g.event(Event::ExternalEndpointsObserved {
            enabled: true,
            pods: std::collections::BTreeMap::from([(
                "demo-0".to_owned(),
                logbook_journal::ExternalEndpoint {
                    host: "192.0.2.1".into(),
                    port: 30001,
                    bus_port: None,
                },
            )]),
            primary: None,
            waiting: std::collections::BTreeMap::new(),
        });
        let d = decide_issue(&view(&g), now).unwrap();
        assert_eq!(
            d.reason.code,
            ReasonCode::ExternalEndpointsChanged {
                hosts: vec!["192.0.2.1".into()]
            }
        );
        g.succeed(d.intent);
        assert!(decide_issue(&view(&g), now).is_none());
    }

    #[test]
    fn the_operators_ca_issues_when_the_secret_holds_none_and_renews_in_the_last_third() {
        let mut g = tls_pods();
        // Not read yet: nothing.
        assert!(decide_issue(&view(&g), g.state.last_at).is_none());
        g.event(record(None, None));
        let d = decide_issue(&view(&g), g.state.last_at).unwrap();
        assert_eq!(
            d.intent,
            Intent::IssueCertificate {
                secret: "demo-tls".into()
            }
        );
        assert_eq!(
            d.reason.code,
            ReasonCode::CertificateDue { not_after: None }
        );
        // A fresh certificate of 90 days: nothing to do until 30 are left.
        let now = g.state.last_at;
        let not_after = Timestamp(now.0 + 90 * DAY_US);
        g.event(record(Some("aa"), Some(not_after)));
        assert!(decide_issue(&view(&g), now).is_none());
        assert!(decide_issue(&view(&g), Timestamp(now.0 + 59 * DAY_US)).is_none());
        let due = decide_issue(&view(&g), Timestamp(now.0 + 61 * DAY_US)).unwrap();
        assert_eq!(
            due.reason.code,
            ReasonCode::CertificateDue {
                not_after: Some(not_after)
            }
        );
    }

    /// A TLS cluster asleep past its certificate's validity wakes: the
    /// certificate is issued first, before its pods are brought back
    /// (they would boot serving one nobody accepts, and never be usable).
    #[test]
    fn a_certificate_that_expired_asleep_is_issued_before_the_pods_come_back() {
        let mut g = tls_pods();
        let not_after = Timestamp(g.state.last_at.0 + 90 * DAY_US);
        g.event(record(Some("aa"), Some(not_after)));
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(2);
        spec.tls.enabled = true;
        spec.hibernated = true;
        g.spec_at(2, &spec);
        g.succeed(Intent::PersistForHibernation {
            primaries: vec!["demo-0".into()],
            pods: vec!["demo-0".into(), "demo-1".into()],
        });
        g.applied(2);
        for i in 0..2 {
            g.event(Event::PodDeleted {
                pod: format!("demo-{i}"),
            });
        }
        // Asleep for 100 days, then woken.
        spec.hibernated = false;
        g.spec_at(3, &spec);
        let later = Timestamp(not_after.0 + 10 * DAY_US);
        let decided = crate::decide::decide(&g.state, later, &g.policy);
        assert_eq!(
            decided.first().map(|d| &d.intent),
            Some(&Intent::IssueCertificate {
                secret: "demo-tls".into()
            }),
            "{decided:?}"
        );
    }

    #[test]
    fn the_status_says_which_certificate_and_when_it_expires_while_tls_is_on() {
        let status = |g: &Given| g.status().tls;
        let mut g = tls_pods();
        // Not read yet: nothing said.
        assert_eq!(status(&g), None);
        let not_after = Timestamp(g.state.last_at.0 + 90 * DAY_US);
        g.event(record(Some("aa"), Some(not_after)));
        let tls = status(&g).unwrap();
        assert_eq!(
            (tls.secret.as_str(), tls.issuer.as_str(), tls.problem),
            ("demo-tls", SOURCE_INTERNAL, None)
        );
        assert_eq!(
            tls.not_after,
            Some(crate::decide::status::kube_time(not_after))
        );
        // TLS turned off: no certificate is said to be in force.
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(2);
        g.spec_at(2, &spec);
        assert_eq!(status(&g), None);
    }

    #[test]
    fn a_certificate_the_operator_did_not_issue_is_never_issued_over() {
        let mut g = tls_pods();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.tls.enabled = true;
        spec.tls.secret_name = Some("mine".into());
        g.spec_at(2, &spec);
        g.event(Event::CertificateObserved {
            certificate: CertificateRecord {
                secret: "mine".into(),
                fingerprint: None,
                ca_fingerprint: None,
                not_after: None,
                source: crate::certificates::SOURCE_SECRET.into(),
                problem: Some("Secret mine does not exist".into()),
            },
        });
        assert!(decide_issue(&view(&g), g.state.last_at).is_none());
    }

    #[test]
    fn nodes_serving_another_certificate_reload_once_until_seen_again() {
        let mut g = tls_pods();
        g.event(record(Some("new"), None));
        g.event(Event::CertificateServed {
            pod: "demo-0".into(),
            fingerprint: "new".into(),
        });
        g.event(Event::CertificateServed {
            pod: "demo-1".into(),
            fingerprint: "old".into(),
        });
        let d = decide_reload(&view(&g)).unwrap();
        let reload = Intent::ReloadCertificate {
            pods: vec!["demo-1".into()],
            fingerprint: "new".into(),
        };
        assert_eq!(d.intent, reload);
        // Asked, and seen serving the old one right after (the files not
        // updated yet): not asked again until seen again.
        g.event(Event::CertificateServed {
            pod: "demo-1".into(),
            fingerprint: "old".into(),
        });
        g.succeed(reload.clone());
        assert!(decide_reload(&view(&g)).is_none());
        // The reconcile's check a while later: still the old one; ask again.
        g.event(Event::CertificateServed {
            pod: "demo-1".into(),
            fingerprint: "old".into(),
        });
        assert_eq!(decide_reload(&view(&g)).unwrap().intent, reload);
        // Taken: nothing.
        g.event(Event::CertificateServed {
            pod: "demo-1".into(),
            fingerprint: "new".into(),
        });
        assert!(decide_reload(&view(&g)).is_none());
    }

    #[test]
    fn an_unreachable_node_or_an_unusable_secret_asks_for_no_reload() {
        let mut g = tls_pods();
        g.event(record(Some("new"), None));
        g.event(Event::CertificateServed {
            pod: "demo-1".into(),
            fingerprint: "old".into(),
        });
        g.reach(1, Reachability::Refused);
        assert!(decide_reload(&view(&g)).is_none());
        g.reach(1, Reachability::Reachable);
        assert!(decide_reload(&view(&g)).is_some());
        g.event(Event::CertificateObserved {
            certificate: CertificateRecord {
                secret: "demo-tls".into(),
                fingerprint: Some("new".into()),
                ca_fingerprint: None,
                not_after: None,
                source: SOURCE_INTERNAL.into(),
                problem: Some("Secret demo-tls lacks ca.crt".into()),
            },
        });
        assert!(decide_reload(&view(&g)).is_none());
    }
}
