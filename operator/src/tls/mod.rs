//! Transport security: where a TLS cluster's certificate comes from and
//! what the operator makes of it.
//!
//! - [`issue`]: the operator's own CA (pure: keys, certificates, names).
//! - Here: the certificate Secret read into a journal record (fingerprints
//!   only) and into the operator's client settings; the Secrets the
//!   operator's CA writes; the cert-manager `Certificate` it requests.
//!
//! Nothing here logs or formats a key.

pub mod issue;

pub use logbook_core::certificates::{SOURCE_CERT_MANAGER, SOURCE_INTERNAL, SOURCE_SECRET};
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use logbook_crds::{CertSource, IssuerRef, ValkeyClusterSpec};
use logbook_journal::{CertificateRecord, Timestamp};
use serde_json::json;

use crate::resources::ClusterMeta;
use crate::valkey::{Password, TlsSettings, pem_fingerprint};

/// Annotation on a certificate Secret the operator's CA wrote: when the
/// certificate expires (RFC 3339), read back to renew it in time.
pub const NOT_AFTER_ANNOTATION: &str = "valkey.logbook.dev/not-after";

/// Keys of a certificate Secret.
pub const CERT_KEY: &str = "tls.crt";
/// The private key's key.
pub const KEY_KEY: &str = "tls.key";
/// The CA certificate's key.
pub const CA_KEY: &str = "ca.crt";
/// The CA's private key, in the operator's CA Secret only.
pub const CA_PRIVATE_KEY: &str = "ca.key";

/// The name a source goes by in the journal.
pub fn source_name(source: &CertSource) -> &'static str {
    match source {
        CertSource::Secret(_) => SOURCE_SECRET,
        CertSource::CertManager(_) => SOURCE_CERT_MANAGER,
        CertSource::Internal => SOURCE_INTERNAL,
    }
}

/// What a certificate Secret holds, for the operator's own use.
#[derive(Clone)]
pub struct Material {
    /// `tls.crt`.
    pub cert_pem: String,
    /// `tls.key`.
    pub key_pem: Password,
    /// `ca.crt`.
    pub ca_pem: String,
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone())
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The journal's record of the certificate Secret `name` as read
/// (`None`: absent), and its material when it can be used.
pub fn read_record(
    name: &str,
    source: &CertSource,
    secret: Option<&Secret>,
) -> (CertificateRecord, Option<Material>) {
    let mut record = CertificateRecord {
        secret: name.to_owned(),
        fingerprint: None,
        ca_fingerprint: None,
        not_after: None,
        source: source_name(source).to_owned(),
        problem: None,
    };
    let Some(secret) = secret else {
        if !matches!(source, CertSource::Internal) {
            record.problem = Some(match source {
                CertSource::CertManager(_) => format!(
                    "Secret {name} does not exist yet (cert-manager has not issued the certificate)"
                ),
                _ => format!("Secret {name} does not exist"),
            });
        }
        return (record, None);
    };
    let cert = text(secret, CERT_KEY);
    let key = text(secret, KEY_KEY);
    let ca = text(secret, CA_KEY);
    record.fingerprint = cert.as_deref().and_then(pem_fingerprint);
    record.ca_fingerprint = ca.as_deref().and_then(pem_fingerprint);
    if source == &CertSource::Internal {
        record.not_after = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NOT_AFTER_ANNOTATION))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| Timestamp::from(t.with_timezone(&chrono::Utc)));
    }
    let mut missing = Vec::new();
    if record.fingerprint.is_none() {
        missing.push(format!("{CERT_KEY} (a PEM certificate)"));
    }
    if key.is_none() {
        missing.push(KEY_KEY.to_owned());
    }
    if record.ca_fingerprint.is_none() {
        missing.push(format!(
            "{CA_KEY} (the PEM CA certificate clients verify with)"
        ));
    }
    if !missing.is_empty() {
        record.problem = Some(format!("Secret {name} lacks {}", missing.join(", ")));
        return (record, None);
    }
    let material = match (cert, key, ca) {
        (Some(cert_pem), Some(key), Some(ca_pem)) => Some(Material {
            cert_pem,
            key_pem: Password::new(key),
            ca_pem,
        }),
        _ => None,
    };
    (record, material)
}

/// The operator's client settings for a cluster whose certificate is
/// `material`: trust its CA (and `previous_ca`, while servers may still
/// serve a certificate of a CA being replaced), verify the cluster's
/// Service name, and with mutual TLS present the cluster's certificate.
pub fn client_settings(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    material: &Material,
    previous_ca: Option<&str>,
) -> TlsSettings {
    let mut ca_pems = vec![material.ca_pem.clone()];
    if let Some(previous) = previous_ca.filter(|p| *p != material.ca_pem) {
        ca_pems.push(previous.to_owned());
    }
    TlsSettings {
        server_name: issue::verify_name(&meta.name, &meta.namespace),
        ca_pems,
        client: spec
            .tls
            .client_auth
            .then(|| (material.cert_pem.clone(), material.key_pem.clone())),
    }
}

/// The `kubernetes.io/tls` Secret the operator's CA writes for the
/// cluster: certificate, key, the CA certificate, and the expiry.
pub fn build_certificate_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    name: &str,
    leaf: &issue::Leaf,
    ca_pem: &str,
) -> Secret {
    let mut metadata = meta.object_meta(name.to_owned(), spec);
    metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(NOT_AFTER_ANNOTATION.to_owned(), leaf.not_after.to_string());
    Secret {
        metadata,
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (
                CERT_KEY.to_owned(),
                ByteString(leaf.cert_pem.clone().into_bytes()),
            ),
            (
                KEY_KEY.to_owned(),
                ByteString(leaf.key_pem.clone().into_bytes()),
            ),
            (CA_KEY.to_owned(), ByteString(ca_pem.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    }
}

/// The Secret holding the operator's CA for the cluster.
pub fn build_ca_secret(meta: &ClusterMeta, spec: &ValkeyClusterSpec, ca: &issue::Ca) -> Secret {
    Secret {
        metadata: meta.object_meta(ca_secret_name(&meta.name), spec),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (
                CA_KEY.to_owned(),
                ByteString(ca.cert_pem.clone().into_bytes()),
            ),
            (
                CA_PRIVATE_KEY.to_owned(),
                ByteString(ca.key_pem.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

/// `<name>-tls-ca`.
pub fn ca_secret_name(cluster: &str) -> String {
    format!(
        "{cluster}{}",
        logbook_crds::v1alpha1::defaults::TLS_CA_SECRET_SUFFIX
    )
}

/// The CA of the Secret `secret` of the operator's CA, when whole.
pub fn read_ca(secret: &Secret) -> Option<issue::Ca> {
    Some(issue::Ca {
        cert_pem: text(secret, CA_KEY)?,
        key_pem: text(secret, CA_PRIVATE_KEY)?,
    })
}

/// cert-manager's `Certificate` kind.
pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cert-manager.io",
        "v1",
        "Certificate",
    ))
}

/// The cert-manager `Certificate` for the cluster: its Secret, the names
/// every client and peer verifies (with the `external` hosts clients
/// outside Kubernetes dial), usable by servers and (mutual TLS,
/// replication) clients, renewed by cert-manager a third before expiry.
pub fn build_certificate(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    issuer: &IssuerRef,
    secret: &str,
    external: &[String],
) -> DynamicObject {
    let names = issue::certificate_names(&meta.name, &meta.namespace, external);
    let is_ip = |n: &String| n.parse::<std::net::IpAddr>().is_ok();
    let mut object = DynamicObject::new(&meta.name, &certificate_resource())
        .within(&meta.namespace)
        .data(json!({
            "spec": {
                "secretName": secret,
                "commonName": issue::verify_name(&meta.name, &meta.namespace),
                "dnsNames": names.iter().filter(|n| !is_ip(n)).collect::<Vec<_>>(),
                "ipAddresses": names.iter().filter(|n| is_ip(n)).collect::<Vec<_>>(),
                "duration": "2160h",
                "renewBefore": "720h",
                "privateKey": { "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always" },
                "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
                "issuerRef": {
                    "name": issuer.name,
                    "kind": issuer.kind,
                    "group": issuer.group,
                },
            }
        }));
    object.metadata = meta.object_meta(meta.name.clone(), spec);
    object
}
