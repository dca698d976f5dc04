//! The TLS part of the projection: the cluster's certificate as last read,
//! the certificate each node serves, and the reloads asked of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::CertificateRecord;
use crate::time::Timestamp;

/// A TLS cluster's certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsPart {
    /// The certificate Secret as last read (`CertificateObserved`).
    pub certificate: Option<CertificateRecord>,
    /// The fingerprint each data pod's node was last seen serving, and
    /// when, by pod (`CertificateServed`).
    pub served: BTreeMap<String, (String, Timestamp)>,
    /// The last reload each pod was asked for: the fingerprint it was to
    /// serve, and when (`ReloadCertificate` succeeded).
    pub reloaded: BTreeMap<String, (String, Timestamp)>,
}

impl TlsPart {
    /// The fingerprint the nodes are to serve, if the Secret holds one
    /// that can be used.
    #[must_use]
    pub fn wanted(&self) -> Option<&str> {
        self.certificate
            .as_ref()
            .filter(|c| c.problem.is_none())
            .and_then(|c| c.fingerprint.as_deref())
    }

    /// What `pod` was last seen serving.
    #[must_use]
    pub fn serves(&self, pod: &str) -> Option<&str> {
        self.served.get(pod).map(|(fp, _)| fp.as_str())
    }

    /// Whether `pod` was asked to reload to `wanted` and has not been seen
    /// serving since: a reload is under way, or its outcome not yet
    /// checked again.
    #[must_use]
    pub fn reload_pending(&self, pod: &str, wanted: &str) -> Option<Timestamp> {
        let (fp, asked) = self.reloaded.get(pod)?;
        let seen = self.served.get(pod).map(|(_, at)| *at);
        (fp == wanted && seen.is_none_or(|seen| seen <= *asked)).then_some(*asked)
    }

    /// Forgets what `pod` served and was asked (the pod is gone).
    pub fn forget_pod(&mut self, pod: &str) {
        self.served.remove(pod);
        self.reloaded.remove(pod);
    }
}
