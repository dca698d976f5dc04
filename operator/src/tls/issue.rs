//! The internal certificate authority, pure part: makes a cluster's CA,
//! issues the leaf certificate its servers and clients share, names what
//! that leaf must cover, fingerprints certificates and says when a leaf is
//! due for renewal.
//!
//! It owns the X.509 decisions (key type, extensions, validity, clock-skew
//! allowance) and nothing else: no I/O, no clock (`now` is an argument), no
//! Kubernetes types. Storing the CA and the leaves in Secrets, and recording
//! a leaf's `not_after` when it is issued, belong to the operator.
//!
//! Key material never enters an error message: the errors about a private
//! key say which key and what is wrong with it, and drop the parser's own
//! error, whose text can quote the input.

pub use logbook_core::certificates::{LEAF_VALIDITY, needs_renewal};
use std::fmt;
use std::time::Duration;

use logbook_journal::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// How long a CA is valid: 10 years. Rotating a CA means re-trusting it in
/// every client, so it is made to outlive the clusters it serves.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// How far `notBefore` is set in the past, so that a peer whose clock lags
/// ours accepts a certificate issued a moment ago.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a certificate could not be made or read.
///
/// Every variant is a refusal of its input or a failure of the crypto
/// library; none is worth retrying unchanged. None carries key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA's private key is not a PEM private key the signer can use.
    /// The parser's error is dropped on purpose: its text can quote the key.
    #[error(
        "the CA Secret's ca.key is not a PEM private key (PKCS#8 ECDSA, Ed25519 or RSA) that can sign"
    )]
    CaKey,

    /// The CA's certificate is not a PEM certificate that can be read back.
    #[error("the CA Secret's ca.crt is not a PEM X.509 certificate: {reason}")]
    CaCert {
        /// What the parser found wrong (the certificate is public).
        reason: String,
    },

    /// The CA's key and certificate are each valid but do not belong
    /// together: leaves signed with the key would not chain to the
    /// certificate.
    #[error("the CA Secret's ca.key is not the private key of its ca.crt")]
    CaMismatch,

    /// A leaf was asked for without any name to cover.
    #[error("a leaf certificate needs at least one DNS name or IP address")]
    NoNames,

    /// A name is neither an IP address nor a valid DNS name (IA5 text).
    #[error("{name:?} is neither a DNS name nor an IP address a certificate can carry")]
    BadName {
        /// The offending name.
        name: String,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },

    /// A validity bound falls outside what X.509 dates can express.
    #[error("the {bound} of the {what} ({at}) is outside the dates a certificate can carry")]
    BadTime {
        /// `notBefore` or `notAfter`.
        bound: &'static str,
        /// The certificate being made: `CA certificate` or `leaf certificate`.
        what: &'static str,
        /// The instant asked for.
        at: Timestamp,
    },

    /// Key generation or signing failed inside the crypto library.
    #[error("could not {step}: {source}")]
    Crypto {
        /// What was being done: `generate the CA key`, `sign the
        /// certificate`…
        step: &'static str,
        /// rcgen's reason (about parameters, never key bytes).
        #[source]
        source: rcgen::Error,
    },

    /// A PEM certificate bundle could not be read.
    #[error("the certificate bundle is not valid PEM: {reason}")]
    BadPem {
        /// What the PEM parser found wrong.
        reason: String,
    },

    /// A PEM bundle holds no `CERTIFICATE` section.
    #[error("the certificate bundle holds no PEM CERTIFICATE")]
    NoCertificate,
}

/// A cluster's certificate authority: a self-signed ECDSA P-256 certificate
/// and its private key, both PEM.
#[derive(Clone)]
pub struct Ca {
    /// The CA certificate (`ca.crt`), what clients trust.
    pub cert_pem: String,
    /// The CA private key (`ca.key`), PKCS#8.
    pub key_pem: String,
}

// Hand-written so that a `{:?}` in a log or an error never prints the key.
impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// A leaf certificate issued by a [`Ca`], with its private key.
#[derive(Clone)]
pub struct Leaf {
    /// The leaf certificate (`tls.crt`), PEM, the leaf alone (the CA is
    /// distributed separately as `ca.crt`).
    pub cert_pem: String,
    /// The leaf private key (`tls.key`), PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate's `notAfter`, exactly (whole seconds), for the
    /// operator to record and pass to [`needs_renewal`].
    pub not_after: Timestamp,
}

// Hand-written so that a `{:?}` in a log or an error never prints the key.
impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// Makes a new self-signed CA for one cluster: ECDSA P-256, subject
/// `CN=logbook <namespace>/<cluster> CA`, `basicConstraints` CA:true with
/// pathlen 0 (it signs leaves only), key usage `keyCertSign` and `cRLSign`,
/// valid from `now` less [`CLOCK_SKEW`] until `now + validity`.
///
/// # Errors
/// [`TlsError::BadTime`] when a bound is beyond year 9999 or before year
/// -9999; [`TlsError::Crypto`] if the crypto library fails.
pub fn new_ca(
    cluster: &str,
    namespace: &str,
    now: Timestamp,
    validity: Duration,
) -> Result<Ca, TlsError> {
    const WHAT: &str = "CA certificate";
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| TlsError::Crypto {
            step: "generate the CA key",
            source,
        })?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("logbook {namespace}/{cluster} CA"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // The skew applies to the CA too: a peer whose clock lags would
    // otherwise reject the chain of a leaf issued right after the CA.
    params.not_before = x509_time(earlier(now, CLOCK_SKEW), "notBefore", WHAT)?;
    params.not_after = x509_time(later(now, validity), "notAfter", WHAT)?;
    let cert = params
        .self_signed(&key)
        .map_err(|source| TlsError::Crypto {
            step: "self-sign the CA certificate",
            source,
        })?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a leaf certificate signed by `ca` covering `names`: each name that
/// parses as an IP address becomes an IP SAN, every other a DNS SAN; the
/// subject's CN is the first name. Its key is a fresh ECDSA P-256 key; its
/// extended key usage is both `serverAuth` and `clientAuth`, because one
/// certificate serves Valkey's clients and its replication and cluster-bus
/// peers, and authenticates mutual-TLS clients; key usage
/// `digitalSignature` and `keyEncipherment`. Valid from `now` less
/// [`CLOCK_SKEW`] until `now + validity` (whole seconds, as
/// [`Leaf::not_after`] reports).
///
/// The serial number is rcgen's: 159 bits of the SHA-256 of the fresh,
/// random public key, so it is as unpredictable as the key and never
/// repeats between leaves.
///
/// The CA is read back from its PEM; its key must be the key of its
/// certificate (checked: a mismatch would produce leaves that chain to
/// nothing). Whether the certificate is a CA is not checked: [`new_ca`]
/// made it.
///
/// # Errors
/// [`TlsError::CaKey`], [`TlsError::CaCert`] or [`TlsError::CaMismatch`] for
/// an unusable CA; [`TlsError::NoNames`] or [`TlsError::BadName`] for the
/// names; [`TlsError::BadTime`] for dates X.509 cannot carry;
/// [`TlsError::Crypto`] if the crypto library fails.
pub fn issue_leaf(
    ca: &Ca,
    names: &[String],
    now: Timestamp,
    validity: Duration,
) -> Result<Leaf, TlsError> {
    const WHAT: &str = "leaf certificate";
    let issuer = read_ca(ca)?;
    let first = names.first().ok_or(TlsError::NoNames)?;
    let mut params = CertificateParams::default();
    for name in names {
        // rcgen's own rule (an IP address if it parses as one, else a DNS
        // name), one name at a time so the error names the culprit.
        let parsed =
            CertificateParams::new(vec![name.clone()]).map_err(|source| TlsError::BadName {
                name: name.clone(),
                source,
            })?;
        params.subject_alt_names.extend(parsed.subject_alt_names);
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first.as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    // Lets verifiers (OpenSSL's chain building among them) pick the CA by
    // key identifier rather than by subject alone.
    params.use_authority_key_identifier_extension = true;
    sign(params, &issuer, now, validity, WHAT)
}

/// Signs `params` with `issuer` and a fresh ECDSA P-256 key, valid from
/// `now` less [`CLOCK_SKEW`] until `now + validity` (whole seconds); `what`
/// names the certificate in errors.
fn sign(
    mut params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    now: Timestamp,
    validity: Duration,
    what: &'static str,
) -> Result<Leaf, TlsError> {
    params.not_before = x509_time(earlier(now, CLOCK_SKEW), "notBefore", what)?;
    let not_after = whole_seconds(later(now, validity));
    params.not_after = x509_time(not_after, "notAfter", what)?;
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| TlsError::Crypto {
            step: "generate the key",
            source,
        })?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| TlsError::Crypto {
            step: "sign the certificate",
            source,
        })?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// Issues a client certificate signed by `ca` for the ACL user `user`
/// (mutual TLS, `kubectl valkey certificate`): subject `CN=<user>` and
/// no subject alternative name, extended key usage `clientAuth` only (it
/// cannot serve), key usage `digitalSignature`; a fresh ECDSA P-256 key.
/// Valid from `now` less [`CLOCK_SKEW`] until `now + validity`.
///
/// # Errors
/// As [`issue_leaf`]; [`TlsError::NoNames`] for an empty user.
pub fn issue_client(
    ca: &Ca,
    user: &str,
    now: Timestamp,
    validity: Duration,
) -> Result<Leaf, TlsError> {
    const WHAT: &str = "client certificate";
    if user.is_empty() {
        return Err(TlsError::NoNames);
    }
    let issuer = read_ca(ca)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, user);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    sign(params, &issuer, now, validity, WHAT)
}

/// The names a cluster's leaf certificate covers, in this order: the
/// Services a client can name (the client Service `<cluster>`, the read
/// Service `<cluster>-read`, the headless Service `<cluster>-headless`,
/// the Sentinel Service `<cluster>-sentinel` and the Sentinels' headless
/// `<cluster>-sentinel-hl`), each as `<svc>`, `<svc>.<ns>`,
/// `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local`; then every data
/// and Sentinel pod through its headless Service (`*.<svc>.<ns>.svc` and
/// its `.cluster.local` form), then `localhost` and `127.0.0.1` for
/// clients in the pod itself (probes, `valkey-cli` in `kubectl exec`).
/// Every Service name comes from the functions that name the objects
/// made, so a certificate cannot name a Service that does not exist.
#[must_use]
pub fn cluster_names(cluster: &str, namespace: &str) -> Vec<String> {
    use crate::resources::{
        client_service_name, headless_service_name, read_service_name,
        sentinel_headless_service_name, sentinel_service_name,
    };
    let headless = [
        headless_service_name(cluster),
        sentinel_headless_service_name(cluster),
    ];
    let services = [
        client_service_name(cluster),
        read_service_name(cluster),
        headless[0].clone(),
        sentinel_service_name(cluster),
        headless[1].clone(),
    ];
    let mut names = Vec::with_capacity(28);
    for svc in &services {
        names.push(svc.clone());
        names.push(format!("{svc}.{namespace}"));
        names.push(format!("{svc}.{namespace}.svc"));
        names.push(format!("{svc}.{namespace}.svc.cluster.local"));
    }
    for svc in &headless {
        names.push(format!("*.{svc}.{namespace}.svc"));
        names.push(format!("*.{svc}.{namespace}.svc.cluster.local"));
    }
    names.push("localhost".to_owned());
    names.push("127.0.0.1".to_owned());
    names
}

/// [`cluster_names`], then each of `external` (the addresses clients
/// outside Kubernetes reach the cluster at, `spec.externalAccess`) not
/// among them: a client outside verifies the name it dialled.
#[must_use]
pub fn certificate_names(cluster: &str, namespace: &str, external: &[String]) -> Vec<String> {
    let mut names = cluster_names(cluster, namespace);
    for host in external {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    names
}

/// The name the operator's own client verifies a cluster's certificate
/// against: `<cluster>.<ns>.svc`. A certificate the user brings instead of
/// the internal CA's must cover it (as a DNS SAN), or the operator cannot
/// reach the cluster over TLS.
#[must_use]
pub fn verify_name(cluster: &str, namespace: &str) -> String {
    format!("{cluster}.{namespace}.svc")
}

/// The SHA-256 of the DER of the first certificate in a PEM bundle, as 64
/// lowercase hex digits. Other sections (a private key before the
/// certificate, say) are skipped.
///
/// # Errors
/// [`TlsError::BadPem`] for PEM that cannot be read up to the first
/// certificate; [`TlsError::NoCertificate`] when there is none.
pub fn fingerprint(pem: &str) -> Result<String, TlsError> {
    let der = first_certificate(pem)?;
    // The same digest the operator's client takes of a served certificate.
    Ok(crate::valkey::certificate_fingerprint(der.as_ref()))
}

/// The first 16 hex digits of a [`fingerprint`], for labels, annotations
/// and log lines; the whole of `fp` when it is shorter.
#[must_use]
pub fn short_fingerprint(fp: &str) -> &str {
    fp.get(..16).unwrap_or(fp)
}

/// Reads the CA back into a signer, checking that key and certificate
/// belong together.
fn read_ca(ca: &Ca) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let key = KeyPair::from_pem(&ca.key_pem).map_err(|_| TlsError::CaKey)?;
    let der =
        CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).map_err(|e| TlsError::CaCert {
            reason: e.to_string(),
        })?;
    // The certificate's SubjectPublicKeyInfo is a contiguous DER element of
    // its TBS part, so it occurs in the DER exactly when the key matches.
    let spki = key.subject_public_key_info();
    if spki.is_empty() || !der.as_ref().windows(spki.len()).any(|w| w == spki) {
        return Err(TlsError::CaMismatch);
    }
    Issuer::from_ca_cert_der(&der, key).map_err(|e| TlsError::CaCert {
        reason: e.to_string(),
    })
}

/// The first `CERTIFICATE` section of a PEM bundle.
fn first_certificate(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(TlsError::BadPem {
            reason: e.to_string(),
        }),
        None => Err(TlsError::NoCertificate),
    }
}

/// `at` less `by`, saturating.
fn earlier(at: Timestamp, by: Duration) -> Timestamp {
    Timestamp(at.as_micros().saturating_sub(micros(by)))
}

/// `at` plus `by`, saturating.
fn later(at: Timestamp, by: Duration) -> Timestamp {
    Timestamp(at.as_micros().saturating_add(micros(by)))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `at` rounded down to the second, the precision of X.509 dates.
fn whole_seconds(at: Timestamp) -> Timestamp {
    Timestamp(
        at.as_micros()
            .div_euclid(1_000_000)
            .saturating_mul(1_000_000),
    )
}

/// `at` as the date type rcgen writes, to the second.
fn x509_time(
    at: Timestamp,
    bound: &'static str,
    what: &'static str,
) -> Result<time::OffsetDateTime, TlsError> {
    time::OffsetDateTime::from_unix_timestamp(at.as_micros().div_euclid(1_000_000))
        .map_err(|_| TlsError::BadTime { bound, what, at })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::process::Command;
    use std::sync::Arc;

    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::server::WebPkiClientVerifier;
    use rustls_pki_types::{ServerName, UnixTime};

    use super::*;

    /// The instant every test issues at.
    fn t0() -> Timestamp {
        Timestamp::parse("2026-11-22T12:00:00Z").unwrap()
    }

    fn unix(at: Timestamp) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(at.as_micros() / 1_000_000).unwrap(),
        ))
    }

    fn demo() -> (Ca, Leaf) {
        let ca = new_ca("demo", "default", t0(), CA_VALIDITY).unwrap();
        let leaf = issue_leaf(&ca, &cluster_names("demo", "default"), t0(), LEAF_VALIDITY).unwrap();
        (ca, leaf)
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn roots(ca: &Ca) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(der(&ca.cert_pem)).unwrap();
        Arc::new(roots)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Verifies `leaf` as a server certificate for `name` at `at`, trusting
    /// only `ca`.
    fn verify_server(ca: &Ca, leaf: &Leaf, name: &str, at: Timestamp) -> Result<(), rustls::Error> {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .unwrap();
        verifier
            .verify_server_cert(
                &der(&leaf.cert_pem),
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                unix(at),
            )
            .map(|_| ())
    }

    fn verify_client(ca: &Ca, leaf: &Leaf, at: Timestamp) -> Result<(), rustls::Error> {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .unwrap();
        verifier
            .verify_client_cert(&der(&leaf.cert_pem), &[], unix(at))
            .map(|_| ())
    }

    #[test]
    fn leaf_chains_to_its_ca_for_the_cluster_names_only() {
        let (ca, leaf) = demo();
        for name in [
            "demo.default.svc",
            "demo-0.demo-headless.default.svc",
            "demo-2.demo-headless.default.svc.cluster.local",
            "demo-read.default.svc",
            "demo-sentinel.default.svc",
            "demo-sentinel-1.demo-sentinel-hl.default.svc",
            "localhost",
            "127.0.0.1",
        ] {
            verify_server(&ca, &leaf, name, t0()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for name in [
            "other.default.svc",
            "demo.other.svc",
            "a.b.demo-headless.default.svc",
            "demo-0.demo-hl.default.svc",
        ] {
            assert!(
                verify_server(&ca, &leaf, name, t0()).is_err(),
                "{name} must not verify"
            );
        }
    }

    #[test]
    fn a_client_certificate_names_its_user_chains_to_its_ca_only_and_cannot_serve() {
        let ca = new_ca("demo", "default", t0(), CA_VALIDITY).unwrap();
        let client = issue_client(&ca, "app", t0(), Duration::from_secs(86_400)).unwrap();
        verify_client(&ca, &client, t0()).unwrap();
        // Expired a day later; never valid under another CA.
        assert!(verify_client(&ca, &client, later(t0(), Duration::from_secs(2 * 86_400))).is_err());
        let other = new_ca("other", "default", t0(), CA_VALIDITY).unwrap();
        assert!(verify_client(&other, &client, t0()).is_err());
        // Not a server certificate, for any name.
        assert!(verify_server(&ca, &client, "app", t0()).is_err());
        assert!(verify_server(&ca, &client, "demo.default.svc", t0()).is_err());
        // The subject is the user: OpenSSL reads it so.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.pem");
        std::fs::write(&path, &client.cert_pem).unwrap();
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in", path.to_str().unwrap()])
            .output()
            .unwrap();
        let subject = String::from_utf8_lossy(&out.stdout);
        assert!(
            subject.trim_end().ends_with("CN = app") || subject.trim_end().ends_with("CN=app"),
            "{subject}"
        );
        assert!(!client.key_pem.is_empty() && format!("{client:?}").contains("[elided]"));
        assert!(matches!(
            issue_client(&ca, "", t0(), LEAF_VALIDITY),
            Err(TlsError::NoNames)
        ));
    }

    #[test]
    fn leaf_is_a_valid_client_certificate() {
        let (ca, leaf) = demo();
        verify_client(&ca, &leaf, t0()).unwrap();
    }

    #[test]
    fn validity_allows_skew_and_ends_at_not_after() {
        let (ca, leaf) = demo();
        assert_eq!(
            leaf.not_after,
            Timestamp::parse("2027-02-20T12:00:00Z").unwrap()
        );
        // A peer four minutes behind accepts both the CA and the leaf.
        let behind = t0().plus_millis(-4 * 60 * 1000);
        verify_server(&ca, &leaf, "demo.default.svc", behind).unwrap();
        // Six minutes behind is beyond the allowance.
        let too_far = t0().plus_millis(-6 * 60 * 1000);
        assert!(verify_server(&ca, &leaf, "demo.default.svc", too_far).is_err());
        // Expired one second after not_after.
        assert!(
            verify_server(
                &ca,
                &leaf,
                "demo.default.svc",
                leaf.not_after.plus_millis(1000)
            )
            .is_err()
        );
    }

    #[test]
    fn leaf_from_another_ca_is_refused() {
        let (ca, _) = demo();
        let (_, stranger) = demo();
        assert!(verify_server(&ca, &stranger, "demo.default.svc", t0()).is_err());
        assert!(verify_client(&ca, &stranger, t0()).is_err());
    }

    #[test]
    fn fingerprint_is_stable_and_tells_leaves_apart() {
        let (ca, leaf) = demo();
        let again = issue_leaf(&ca, &["demo".to_owned()], t0(), LEAF_VALIDITY).unwrap();
        let fp = fingerprint(&leaf.cert_pem).unwrap();
        assert_eq!(fp.len(), 64);
        assert!(
            fp.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(fp, fingerprint(&leaf.cert_pem).unwrap());
        assert_ne!(fp, fingerprint(&again.cert_pem).unwrap());
        // The first certificate of a bundle, whatever precedes or follows.
        let bundle = format!("{}{}{}", leaf.key_pem, leaf.cert_pem, ca.cert_pem);
        assert_eq!(fingerprint(&bundle).unwrap(), fp);
        assert_eq!(short_fingerprint(&fp), &fp[..16]);
        assert_eq!(short_fingerprint("abc"), "abc");
    }

    #[test]
    fn fingerprint_of_no_certificate_is_an_error() {
        let (_, leaf) = demo();
        assert!(matches!(fingerprint(""), Err(TlsError::NoCertificate)));
        assert!(matches!(
            fingerprint(&leaf.key_pem),
            Err(TlsError::NoCertificate)
        ));
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(fingerprint(broken), Err(TlsError::BadPem { .. })));
    }

    #[test]
    fn renewal_is_due_once_less_than_a_third_remains() {
        let v = LEAF_VALIDITY;
        let not_after = t0();
        let day: i64 = 24 * 60 * 60 * 1000;
        let at = |days_before: i64| not_after.plus_millis(-days_before * day);
        assert!(!needs_renewal(not_after, at(90), v), "fresh");
        assert!(!needs_renewal(not_after, at(31), v));
        assert!(!needs_renewal(not_after, at(30), v), "exactly a third left");
        assert!(needs_renewal(not_after, at(30).plus_millis(1), v));
        assert!(needs_renewal(not_after, at(1), v));
        assert!(needs_renewal(not_after, not_after, v), "expiring now");
        assert!(needs_renewal(not_after, at(-1), v), "expired");
        assert!(needs_renewal(not_after, not_after, Duration::ZERO));
        // Extreme instants saturate rather than overflow.
        assert!(!needs_renewal(Timestamp(i64::MAX), Timestamp(i64::MIN), v));
        assert!(needs_renewal(Timestamp(i64::MIN), Timestamp(i64::MAX), v));
    }

    #[test]
    fn corrupt_ca_gives_a_clear_error_without_the_key() {
        let (ca, _) = demo();
        let names = cluster_names("demo", "default");
        let secret_looking =
            "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n";
        let bad_key = Ca {
            key_pem: secret_looking.to_owned(),
            ..ca.clone()
        };
        let err = issue_leaf(&bad_key, &names, t0(), LEAF_VALIDITY).unwrap_err();
        assert!(matches!(err, TlsError::CaKey));
        let text = err.to_string();
        assert_eq!(
            text,
            "the CA Secret's ca.key is not a PEM private key (PKCS#8 ECDSA, Ed25519 or RSA) that can sign"
        );
        assert!(!text.contains("U0VDUkVU"));
        assert!(std::error::Error::source(&err).is_none());

        let bad_cert = Ca {
            cert_pem: "not a certificate".to_owned(),
            ..ca.clone()
        };
        let err = issue_leaf(&bad_cert, &names, t0(), LEAF_VALIDITY).unwrap_err();
        assert!(matches!(err, TlsError::CaCert { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("the CA Secret's ca.crt is not a PEM X.509 certificate")
        );

        let (other, _) = demo();
        let mismatched = Ca {
            key_pem: other.key_pem,
            ..ca.clone()
        };
        let err = issue_leaf(&mismatched, &names, t0(), LEAF_VALIDITY).unwrap_err();
        assert!(matches!(err, TlsError::CaMismatch), "{err}");
        assert!(!format!("{mismatched:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn names_are_checked() {
        let (ca, _) = demo();
        assert!(matches!(
            issue_leaf(&ca, &[], t0(), LEAF_VALIDITY),
            Err(TlsError::NoNames)
        ));
        let err = issue_leaf(&ca, &["bad\u{e9}name".to_owned()], t0(), LEAF_VALIDITY).unwrap_err();
        assert!(
            matches!(err, TlsError::BadName { ref name, .. } if name == "bad\u{e9}name"),
            "{err}"
        );
    }

    #[test]
    fn dates_beyond_x509_are_refused() {
        let far = Timestamp::parse("9999-12-31T00:00:00Z").unwrap();
        let err = new_ca("demo", "default", far, CA_VALIDITY).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::BadTime {
                    bound: "notAfter",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Every name a client can use for the objects the operator makes, on
    /// every topology (each Service as `<svc>.<ns>.svc`, each pod through
    /// its StatefulSet's governing Service), taken from the objects built,
    /// verifies against the certificate issued for them: a certificate
    /// naming a Service that does not exist (it once named `<name>-hl`
    /// while the StatefulSet's Service is `<name>-headless`) fails here.
    #[test]
    fn every_name_of_the_objects_made_verifies_with_host_name_checks() {
        use crate::resources::{self, ClusterMeta};
        let (ca, leaf) = demo();
        let meta = ClusterMeta {
            name: "demo".into(),
            namespace: "default".into(),
            uid: "uid".into(),
        };
        for topology in [
            logbook_crds::Topology::Standalone,
            logbook_crds::Topology::Replication,
            logbook_crds::Topology::Sentinel,
            logbook_crds::Topology::Cluster,
        ] {
            let mut spec = logbook_crds::ValkeyClusterSpec::with_topology(topology);
            spec.tls.enabled = true;
            let mut services = vec![
                resources::build_client_service(&meta, &spec),
                resources::build_read_service(&meta, &spec),
                resources::build_headless_service(&meta, &spec),
            ];
            let mut sets = vec![resources::build_statefulset(&meta, &spec, "h")];
            if topology == logbook_crds::Topology::Sentinel {
                services.push(resources::build_sentinel_service(&meta, &spec));
                services.push(resources::build_sentinel_headless_service(&meta, &spec));
                sets.push(resources::build_sentinel_statefulset(&meta, &spec, "h"));
            }
            let mut names: Vec<String> = services
                .iter()
                .map(|s| format!("{}.default.svc", s.metadata.name.clone().unwrap()))
                .collect();
            for sts in &sets {
                let governing = sts.spec.as_ref().unwrap().service_name.clone().unwrap();
                assert!(
                    services
                        .iter()
                        .any(|s| s.metadata.name.as_deref() == Some(governing.as_str())),
                    "{topology:?}: StatefulSet governed by {governing}, which is not made"
                );
                let sts_name = sts.metadata.name.clone().unwrap();
                names.push(format!("{sts_name}-0.{governing}.default.svc"));
                names.push(format!(
                    "{sts_name}-2.{governing}.default.svc.cluster.local"
                ));
            }
            for name in names {
                verify_server(&ca, &leaf, &name, t0())
                    .unwrap_or_else(|e| panic!("{topology:?}: {name}: {e}"));
            }
        }
    }

    /// The sample certificate (`config/samples/tls-secret.yaml`) covers
    /// the names of the sample cluster's Service and pods, checked the
    /// same way: host names verified against its own CA.
    #[test]
    fn the_tls_sample_certificate_covers_its_cluster_and_pods() {
        use crate::resources::{self, ClusterMeta};
        let text = include_str!("../../../config/samples/tls-secret.yaml");
        let mut docs = text.split("\n---\n");
        let secret: serde_yaml::Value = serde_yaml::from_str(docs.next().unwrap()).unwrap();
        let cluster: logbook_crds::ValkeyCluster =
            serde_yaml::from_str(docs.next().unwrap()).unwrap();
        let data = &secret["stringData"];
        let ca = Ca {
            cert_pem: data["ca.crt"].as_str().unwrap().to_owned(),
            key_pem: String::new(),
        };
        let leaf = Leaf {
            cert_pem: data["tls.crt"].as_str().unwrap().to_owned(),
            key_pem: String::new(),
            not_after: t0(),
        };
        // Within the sample's validity (made 2026-11-28, ten years).
        let at = Timestamp::parse("2027-06-01T00:00:00Z").unwrap();
        let name = cluster.metadata.name.clone().unwrap();
        let meta = ClusterMeta {
            name: name.clone(),
            namespace: "default".into(),
            uid: "uid".into(),
        };
        let headless = resources::build_headless_service(&meta, &cluster.spec);
        let sts = resources::build_statefulset(&meta, &cluster.spec, "h");
        let governing = sts.spec.unwrap().service_name.unwrap();
        assert_eq!(headless.metadata.name.as_deref(), Some(governing.as_str()));
        for host in [
            verify_name(&name, "default"),
            format!("{name}-0.{governing}.default.svc"),
            format!("{name}-0.{governing}.default.svc.cluster.local"),
        ] {
            verify_server(&ca, &leaf, &host, at).unwrap_or_else(|e| panic!("{host}: {e}"));
        }
    }

    #[test]
    fn cluster_names_cover_the_services_pods_and_loopback() {
        assert_eq!(
            cluster_names("demo", "ns"),
            [
                "demo",
                "demo.ns",
                "demo.ns.svc",
                "demo.ns.svc.cluster.local",
                "demo-read",
                "demo-read.ns",
                "demo-read.ns.svc",
                "demo-read.ns.svc.cluster.local",
                "demo-headless",
                "demo-headless.ns",
                "demo-headless.ns.svc",
                "demo-headless.ns.svc.cluster.local",
                "demo-sentinel",
                "demo-sentinel.ns",
                "demo-sentinel.ns.svc",
                "demo-sentinel.ns.svc.cluster.local",
                "demo-sentinel-hl",
                "demo-sentinel-hl.ns",
                "demo-sentinel-hl.ns.svc",
                "demo-sentinel-hl.ns.svc.cluster.local",
                "*.demo-headless.ns.svc",
                "*.demo-headless.ns.svc.cluster.local",
                "*.demo-sentinel-hl.ns.svc",
                "*.demo-sentinel-hl.ns.svc.cluster.local",
                "localhost",
                "127.0.0.1",
            ]
        );
        assert_eq!(verify_name("demo", "ns"), "demo.ns.svc");
        assert!(cluster_names("demo", "ns").contains(&verify_name("demo", "ns")));
    }

    /// A third-party check: OpenSSL verifies the chain for both TLS
    /// purposes and reads the extensions as intended.
    #[test]
    fn openssl_accepts_the_chain_and_reads_the_extensions() {
        let (ca, leaf) = demo();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        let leaf_path = dir.path().join("leaf.pem");
        std::fs::write(&ca_path, &ca.cert_pem).unwrap();
        std::fs::write(&leaf_path, &leaf.cert_pem).unwrap();
        let attime = (t0().as_micros() / 1_000_000).to_string();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "openssl {args:?}: {text}");
            text
        };
        let ca_arg = ca_path.to_str().unwrap();
        let leaf_arg = leaf_path.to_str().unwrap();
        for purpose in ["sslserver", "sslclient"] {
            let out = openssl(&[
                "verify",
                "-x509_strict",
                "-purpose",
                purpose,
                "-attime",
                &attime,
                "-CAfile",
                ca_arg,
                leaf_arg,
            ]);
            assert!(out.contains(": OK"), "{purpose}: {out}");
        }
        let eku = openssl(&[
            "x509",
            "-in",
            leaf_arg,
            "-noout",
            "-ext",
            "extendedKeyUsage",
        ]);
        assert!(eku.contains("TLS Web Server Authentication"), "{eku}");
        assert!(eku.contains("TLS Web Client Authentication"), "{eku}");
        let sans = openssl(&["x509", "-in", leaf_arg, "-noout", "-ext", "subjectAltName"]);
        assert!(sans.contains("DNS:*.demo-headless.default.svc"), "{sans}");
        assert!(sans.contains("IP Address:127.0.0.1"), "{sans}");
        let ca_ext = openssl(&[
            "x509",
            "-in",
            ca_arg,
            "-noout",
            "-subject",
            "-ext",
            "basicConstraints,keyUsage",
        ]);
        assert!(ca_ext.contains("CN = logbook default/demo CA"), "{ca_ext}");
        assert!(ca_ext.contains("CA:TRUE, pathlen:0"), "{ca_ext}");
        assert!(ca_ext.contains("Certificate Sign, CRL Sign"), "{ca_ext}");
    }
}
