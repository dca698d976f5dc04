//! Who may talk to Valkey and how: [`AuthSpec`] and [`TlsSpec`].
//!
//! This module owns the authentication and TLS settings, their defaults, the
//! names of generated Secrets and the CEL rules on TLS. It must never hold a
//! password or a key: Secrets are referred to by name only, because the spec
//! is written into the journal verbatim.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defaults::{self, serde_fns};
use super::schema::{DNS_SUBDOMAIN_PATTERN, SECRET_KEY_PATTERN};

/// A key inside a Secret in the ValkeyCluster's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub key: String,
}

/// Password authentication (`requirepass`/`primaryauth`, owned by the operator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthSpec {
    /// Require a password (default `true`). Turning it off leaves Valkey open
    /// to every pod the network policy admits.
    pub enabled: bool,
    /// Secret key holding the password. When unset the operator generates a
    /// random password into the Secret `<name>-password`, key `password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeyRef>,
    /// When the password in the Secret changes, how long the old one keeps
    /// working beside the new one on every node (default 300 s; 0: replaced
    /// at once), so that clients can move to the new one without an error.
    // Left out of the JSON at its default, so that the journal's canonical
    // spec of a cluster that does not set it stays as it was.
    #[serde(skip_serializing_if = "is_default_window")]
    #[schemars(range(min = 0, max = 86400))]
    pub rotation_window_seconds: i32,
}

fn is_default_window(seconds: &i32) -> bool {
    *seconds == super::user::ROTATION_WINDOW_SECONDS
}

impl Default for AuthSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            password_secret: None,
            rotation_window_seconds: super::user::ROTATION_WINDOW_SECONDS,
        }
    }
}

impl AuthSpec {
    /// The Secret key the password is read from: `passwordSecret` when set,
    /// otherwise the generated Secret of the cluster named `cluster_name`.
    /// `None` when authentication is off.
    pub fn effective_password_secret(&self, cluster_name: &str) -> Option<SecretKeyRef> {
        if !self.enabled {
            return None;
        }
        Some(
            self.password_secret
                .clone()
                .unwrap_or_else(|| generated_password_secret(cluster_name)),
        )
    }
}

/// The Secret key the operator generates a password into for `cluster_name`.
pub fn generated_password_secret(cluster_name: &str) -> SecretKeyRef {
    SecretKeyRef {
        name: format!("{cluster_name}{}", defaults::PASSWORD_SECRET_SUFFIX),
        key: defaults::PASSWORD_SECRET_KEY.to_owned(),
    }
}

/// A cert-manager issuer that signs the server certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Name of the issuer.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Kind of the issuer: `Issuer` (default) or `ClusterIssuer`.
    #[serde(default = "serde_fns::issuer_kind")]
    #[schemars(length(min = 1))]
    pub kind: String,
    /// API group of the issuer (default `cert-manager.io`).
    #[serde(default = "serde_fns::issuer_group")]
    #[schemars(length(min = 1))]
    pub group: String,
}

/// TLS for client, replication and cluster-bus traffic.
///
/// When enabled, at most one source of certificates is named: a
/// cert-manager `issuerRef` (the operator requests a Certificate into the
/// Secret `<name>-tls`), or a `secretName` holding `tls.crt`, `tls.key` and
/// `ca.crt` that the user keeps; with neither, the operator runs a CA of the
/// cluster's own (the Secret `<name>-tls-ca`) and issues the certificate
/// into `<name>-tls` itself, renewing it before it expires.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.issuerRef) && has(self.secretName))").message("tls: set either issuerRef or secretName, not both"))]
pub struct TlsSpec {
    /// Serve TLS only (default `false`): clients, replication and the
    /// cluster bus; the plaintext port is closed.
    #[serde(default)]
    pub enabled: bool,
    /// cert-manager issuer that signs the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// Existing Secret of type `kubernetes.io/tls` that also holds `ca.crt`.
    /// Its certificate must name `<name>.<namespace>.svc` (the operator
    /// verifies it by that name) and `*.<name>-headless.<namespace>.svc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,
    /// Require clients to present a certificate signed by the cluster's CA
    /// (mutual TLS; default `false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_auth: bool,
}

/// Where a TLS cluster's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// A Secret the user keeps.
    Secret(String),
    /// A cert-manager Certificate the operator requests.
    CertManager(IssuerRef),
    /// The operator's own CA for the cluster.
    Internal,
}

impl TlsSpec {
    /// The certificate source, `None` when TLS is off.
    pub fn source(&self) -> Option<CertSource> {
        if !self.enabled {
            return None;
        }
        Some(match (&self.secret_name, &self.issuer_ref) {
            (Some(name), _) => CertSource::Secret(name.clone()),
            (None, Some(issuer)) => CertSource::CertManager(issuer.clone()),
            (None, None) => CertSource::Internal,
        })
    }

    /// The Secret holding the served certificate (`tls.crt`, `tls.key`,
    /// `ca.crt`) of the cluster `cluster_name`, `None` when TLS is off.
    pub fn certificate_secret(&self, cluster_name: &str) -> Option<String> {
        Some(match self.source()? {
            CertSource::Secret(name) => name,
            CertSource::CertManager(_) | CertSource::Internal => {
                format!("{cluster_name}{}", defaults::TLS_SECRET_SUFFIX)
            }
        })
    }
}
