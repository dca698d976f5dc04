//! TLS for the operator's own connections to a TLS cluster's servers.
//!
//! The servers are reached by pod address, but a pod's address is not
//! what a certificate names: the operator verifies every server's chain
//! against the cluster's CA and the name `<cluster>.<namespace>.svc`, which
//! every certificate of the cluster carries (the operator's CA and
//! cert-manager are asked for it; a certificate the user brings must have
//! it, `docs/security.md`). With mutual TLS the operator presents the
//! cluster's own certificate, which is valid for client authentication.
//!
//! The handshake also says which certificate a server serves: its
//! fingerprint is what tells the operator whether a renewed certificate
//! has been taken.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};

use crate::credentials::Password;

/// What the operator's client trusts and presents.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name verified in every server certificate.
    pub server_name: String,
    /// The CA certificates trusted (PEM): the cluster's CA, and while a
    /// new CA is rolled out, the one before it too.
    pub ca_pems: Vec<String>,
    /// The certificate and key presented for mutual TLS (PEM).
    pub client: Option<(String, Password)>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .field("cas", &self.ca_pems.len())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

/// Why TLS settings cannot be used; never quotes key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the CA certificate (ca.crt) holds no PEM certificate")]
    NoCa,
    #[error("the CA certificate (ca.crt) cannot be trusted: {0}")]
    BadCa(String),
    #[error("{0:?} is not a name a certificate can be verified for")]
    BadName(String),
    #[error("the client certificate (tls.crt) holds no PEM certificate")]
    NoClientCert,
    #[error("the private key (tls.key) is not a PEM private key")]
    BadKey,
    #[error("the client certificate and key cannot be used: {0}")]
    BadClient(String),
}

/// A ready connector for [`TlsSettings`].
#[derive(Clone)]
pub(super) struct Connector {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: ServerName<'static>,
}

impl Connector {
    pub fn new(settings: &TlsSettings) -> Result<Self, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        for pem in &settings.ca_pems {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|_| TlsSetupError::NoCa)?;
                roots
                    .add(cert)
                    .map_err(|e| TlsSetupError::BadCa(e.to_string()))?;
            }
        }
        if roots.is_empty() {
            return Err(TlsSetupError::NoCa);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::BadCa(e.to_string()))?
            .with_root_certificates(roots);
        let config = match &settings.client {
            None => builder.with_no_client_auth(),
            Some((cert_pem, key_pem)) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|_| TlsSetupError::NoClientCert)?;
                if chain.is_empty() {
                    return Err(TlsSetupError::NoClientCert);
                }
                let key = PrivateKeyDer::from_pem_slice(key_pem.expose().as_bytes())
                    .map_err(|_| TlsSetupError::BadKey)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsSetupError::BadClient(e.to_string()))?
            }
        };
        let server_name = ServerName::try_from(settings.server_name.clone())
            .map_err(|_| TlsSetupError::BadName(settings.server_name.clone()))?;
        Ok(Connector {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// Lowercase hex SHA-256 of a DER certificate: how certificates are told
/// apart in the journal and the status (never the certificate itself).
pub fn certificate_fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of the first certificate of a PEM bundle, `None` when
/// it holds none.
pub fn pem_fingerprint(pem: &str) -> Option<String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|der| certificate_fingerprint(&der))
}
