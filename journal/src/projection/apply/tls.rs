//! The TLS family: the certificate read from its Secret, what each node
//! serves, the CA the operator created.
//!
//! The reloads asked of the nodes are the intents family's (they are
//! recorded when a `ReloadCertificate` succeeds).

use super::short;
use crate::event::Event;
use crate::projection::ClusterState;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds TLS: the certificate read from its Secret, what each node
    /// serves, the CA created.
    pub(super) fn fold_tls(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::CertificateObserved { certificate } => {
                self.observed();
                let what = match (&certificate.fingerprint, &certificate.problem) {
                    (_, Some(problem)) => format!("cannot be used: {problem}"),
                    (None, None) => "holds no certificate".to_owned(),
                    (Some(fp), None) => format!(
                        "holds certificate {}{}",
                        short(fp),
                        certificate
                            .not_after
                            .map(|t| format!(" (expires {t})"))
                            .unwrap_or_default()
                    ),
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "TLS Secret {} ({}) {what}",
                        certificate.secret, certificate.source
                    ),
                );
                self.tls.certificate = Some(certificate.clone());
            }
            Event::CertificateServed { pod, fingerprint } => {
                self.observed();
                self.tls
                    .served
                    .insert(pod.clone(), (fingerprint.clone(), at));
            }
            Event::CertificateAuthorityCreated {
                secret,
                fingerprint,
            } => {
                // Nothing decided reads the CA from the projection (an
                // issue reads its Secret afresh); what clients are to
                // trust from now on is history.
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "TLS: created the cluster's CA {} in Secret {secret}",
                        short(fingerprint)
                    ),
                );
            }
            other => self.misrouted(seq, other, "TLS"),
        }
    }
}
