//! The webhooks the operator serves over HTTPS: the validating admission
//! webhook (`POST /validate`): the API server asks it before a change to
//! an object the operator made, and a change by anyone but the operator or
//! Kubernetes' own components is refused with the reason ([`admission`]);
//! and the conversion webhook (`POST /convert`), which turns a
//! ValkeyCluster of one served version into another ([`conversion`]).
//!
//! Its certificate is the operator's own: a CA and a serving certificate
//! for the names the API server calls it by, kept in a Secret of the
//! operator's namespace so that every replica serves the same one (made
//! once; whichever instance comes first creates it, the others read it).
//! The operator writes that CA into the `caBundle` of its
//! ValidatingWebhookConfiguration and of each CRD it converts, so the API
//! server trusts it. These writes are the webhook's setup, made at start by every instance like
//! the Lease's: they concern no Valkey cluster and need no journal. With
//! cert-manager, the chart has its CA injector fill the `caBundle` instead
//! and the operator is given the Secret cert-manager writes.

pub mod admission;
pub mod conversion;
pub mod local;
pub mod migration;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, ServiceReference,
};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::resources::FIELD_MANAGER;
use crate::tls::issue;

/// How long the webhook's CA is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long its serving certificate is valid: issued again once less
/// than a third of that remains ([`issue::needs_renewal`]), by whichever
/// instance sees it first; every instance then serves the new one.
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often every instance looks whether the certificate fell due, and
/// serves what its Secret holds.
pub const RENEW_EVERY: Duration = Duration::from_secs(3600);
/// The Secret annotation listing the names the certificate covers: a
/// Secret made for other names is issued again.
const NAMES_ANNOTATION: &str = "valkey.logbook.dev/webhook-names";
/// How long a client has to finish its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Where and how the webhook is served.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The address it listens on (HTTPS).
    pub addr: SocketAddr,
    /// The operator's namespace, where its Secret is.
    pub namespace: String,
    /// The Secret holding its CA (`ca.crt`, `ca.key`) and serving
    /// certificate (`tls.crt`, `tls.key`).
    pub secret: String,
    /// The names the serving certificate covers (DNS names or IPs): the
    /// webhook Service's `<name>.<namespace>.svc`, or the address in a
    /// `url` client config.
    pub names: Vec<String>,
    /// The ValidatingWebhookConfiguration whose `caBundle` the operator
    /// fills with its CA; `None`: someone else does (cert-manager).
    pub configuration: Option<String>,
    /// The CustomResourceDefinitions whose conversion webhook's
    /// `caBundle` the operator fills with its CA (empty: none, or
    /// cert-manager's CA injector does it).
    pub conversion_crds: Vec<String>,
    /// Whether the objects of those CRDs stored at an older version are
    /// written again at the stored one ([`migration`]): a cluster-wide
    /// operator only (a namespace-scoped one cannot list the others).
    pub migrate: bool,
    /// The operator's identity as the API server names it, whose changes
    /// go through.
    pub operator_user: String,
    /// How often the certificate is looked at ([`RENEW_EVERY`]).
    pub renew_every: Duration,
}

/// What went wrong setting the webhook up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// An API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// The call.
        what: String,
        /// The API's error.
        #[source]
        source: kube::Error,
    },
    /// This instance no longer leads (in the term it began in): the
    /// write was not sent.
    #[error("this instance no longer leads: not {what}")]
    NotLeading {
        /// The write not sent.
        what: String,
    },
    /// The certificate could not be made or read.
    #[error("the webhook's certificate: {0}")]
    Certificate(String),
    /// The address could not be bound.
    #[error("cannot serve the webhook on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> WebhookError {
    let what = what.into();
    move |source| WebhookError::Kube { what, source }
}

/// How long a webhook whose setup failed waits before trying again.
const RETRY: Duration = Duration::from_secs(10);

/// Serves the webhook until the process ends, in a task of its own: its
/// certificate had (made when absent), then served, then its CA written
/// into the configuration's `caBundle`. A step that fails (a Secret not
/// readable yet, a configuration not installed yet, an address in use) is
/// logged and tried again every [`RETRY`]: the operator goes on managing
/// its clusters meanwhile (the configuration's `failurePolicy` decides
/// what the API server does while the webhook cannot answer).
#[must_use]
pub fn start(
    client: Client,
    config: WebhookConfig,
    mut leadership: tokio::sync::watch::Receiver<crate::leader::Leadership>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (ca_pem, served, server) = loop {
            match listen(&client, &config).await {
                Ok(ready) => break ready,
                Err(err) => {
                    tracing::warn!(%err, "the webhooks cannot start yet; trying again");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        let serving = tokio::spawn(server);
        let renewing = tokio::spawn(renew(client.clone(), config.clone(), served));
        if let Some(name) = &config.configuration {
            while let Err(err) = inject_ca(&client, name, &ca_pem).await {
                tracing::warn!(%err, "the webhook's CA is not in its configuration yet; trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
        let service = service_of(&config.names);
        for name in &config.conversion_crds {
            while let Err(err) = inject_crd_ca(&client, name, &ca_pem, service).await {
                tracing::warn!(%err, "the webhook's CA is not in the CRD's conversion yet; trying again");
                tokio::time::sleep(RETRY).await;
            }
            // Now that the API server can convert through it, the objects
            // stored at an older version are written again at the stored
            // one: by the leader only, as every write to the objects is
            // (every instance serves the webhook).
            if !config.migrate {
                continue;
            }
            loop {
                let epoch = match leadership.wait_for(|l| l.epoch().is_some()).await {
                    Ok(now) => now.epoch(),
                    // The elector is gone: the operator is stopping.
                    Err(_) => break,
                };
                let leading = || leadership.borrow().epoch() == epoch;
                match migration::migrate(&client, name, leading).await {
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(%err, crd = %name, "the objects stored at an older version are not all migrated yet; trying again");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        }
        let _ = serving.await;
        renewing.abort();
    })
}

/// Every `renew_every`: the certificate issued again once it falls due
/// (by this instance, or read as another wrote it), and served from then
/// on without a restart; a new CA (the Secret's lost) written where the
/// API server reads it.
async fn renew(client: Client, config: WebhookConfig, served: Arc<Served>) {
    let mut serving = served.cert_pem();
    loop {
        tokio::time::sleep(config.renew_every).await;
        let (ca_pem, cert_pem, key_pem) = match ensure_certificate(&client, &config).await {
            Ok(had) => had,
            Err(err) => {
                tracing::warn!(%err, "the webhook's certificate cannot be looked at; trying again");
                continue;
            }
        };
        if cert_pem == serving {
            continue;
        }
        if let Err(err) = served.replace(&cert_pem, &key_pem) {
            tracing::warn!(%err, "the webhook's new certificate cannot be served; trying again");
            continue;
        }
        tracing::info!(names = ?config.names, "the webhook serves its renewed certificate");
        if served.ca_pem() != ca_pem {
            if let Some(name) = &config.configuration
                && let Err(err) = inject_ca(&client, name, &ca_pem).await
            {
                tracing::warn!(%err, "the webhook's new CA is not in its configuration yet");
            }
            let service = service_of(&config.names);
            for name in &config.conversion_crds {
                if let Err(err) = inject_crd_ca(&client, name, &ca_pem, service).await {
                    tracing::warn!(%err, "the webhook's new CA is not in the CRD's conversion yet");
                }
            }
            served.set_ca(&ca_pem);
        }
        serving = cert_pem;
    }
}

/// The certificate the webhook serves, replaced when it is renewed (each
/// handshake takes the one in force).
#[derive(Debug)]
struct Served {
    key: std::sync::RwLock<(Arc<rustls::sign::CertifiedKey>, String, String)>,
}

impl Served {
    fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, WebhookError> {
        Ok(Self {
            key: std::sync::RwLock::new((
                certified_key(cert_pem, key_pem)?,
                cert_pem.to_owned(),
                ca_pem.to_owned(),
            )),
        })
    }

    fn cert_pem(&self) -> String {
        self.key.read().map(|k| k.1.clone()).unwrap_or_default()
    }

    fn ca_pem(&self) -> String {
        self.key.read().map(|k| k.2.clone()).unwrap_or_default()
    }

    fn set_ca(&self, ca_pem: &str) {
        if let Ok(mut k) = self.key.write() {
            ca_pem.clone_into(&mut k.2);
        }
    }

    fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), WebhookError> {
        let key = certified_key(cert_pem, key_pem)?;
        let mut held = self
            .key
            .write()
            .map_err(|_| WebhookError::Certificate("its lock was poisoned".to_owned()))?;
        held.0 = key;
        cert_pem.clone_into(&mut held.1);
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for Served {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.key.read().ok().map(|k| k.0.clone())
    }
}

/// `cert_pem` and `key_pem` as rustls serves them.
fn certified_key(
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::sign::CertifiedKey>, WebhookError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| WebhookError::Certificate(format!("tls.crt: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| WebhookError::Certificate(format!("tls.key: {e}")))?;
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| WebhookError::Certificate(format!("tls.key: {e}")))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(certs, signing)))
}

/// The webhook's certificate had and its address bound: its CA, and the
/// server to run.
async fn listen(
    client: &Client,
    config: &WebhookConfig,
) -> Result<
    (
        String,
        Arc<Served>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ),
    WebhookError,
> {
    let (ca_pem, cert_pem, key_pem) = ensure_certificate(client, config).await?;
    let served = Arc::new(Served::new(&ca_pem, &cert_pem, &key_pem)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(served.clone());
    let tcp = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: config.addr,
            source,
        })?;
    let listener = TlsListener::new(tcp, tokio_rustls::TlsAcceptor::from(Arc::new(tls))).map_err(
        |source| WebhookError::Bind {
            addr: config.addr,
            source,
        },
    )?;
    let allowed = Arc::new(admission::Allowed {
        operator: config.operator_user.clone(),
    });
    let app = conversion_router().route(
        "/validate",
        post(move |body: axum::Json<serde_json::Value>| {
            let allowed = allowed.clone();
            async move { axum::Json(admission::answer(&body.0, &allowed)) }
        }),
    );
    tracing::info!(addr = %config.addr, names = ?config.names, "serving the webhooks (/validate, /convert)");
    Ok((ca_pem, served, async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(%err, "the validating webhook stopped");
        }
    }))
}

/// The conversion webhook's route, `POST /convert`: the operator's
/// server and local mode's (`local`) serve the same.
fn conversion_router() -> Router {
    Router::new().route(
        "/convert",
        post(|body: axum::Json<serde_json::Value>| async move {
            axum::Json(conversion::answer(&body.0))
        }),
    )
}

/// The webhook's CA and serving certificate and key (PEM), from its
/// Secret, made when it does not exist or covers other names.
async fn ensure_certificate(
    client: &Client,
    config: &WebhookConfig,
) -> Result<(String, String, String), WebhookError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let names = config.names.join(",");
    let what = format!("Secret {}/{}", config.namespace, config.secret);
    let existing = api
        .get_opt(&config.secret)
        .await
        .map_err(kube_err(format!("reading {what}")))?;
    let field = |s: &Secret, key: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let now = logbook_journal::Timestamp::now();
    if let Some(secret) = &existing {
        let annotation = |key: &str| {
            secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
        };
        let same_names = annotation(NAMES_ANNOTATION) == Some(&names);
        // Due once a third of its life remains; one whose expiry is not
        // written (made by a release before renewal) is issued again.
        let current = annotation(crate::tls::NOT_AFTER_ANNOTATION)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| logbook_journal::Timestamp::from(t.with_timezone(&chrono::Utc)))
            .is_some_and(|not_after| !issue::needs_renewal(not_after, now, LEAF_VALIDITY));
        if let (true, Some(ca), Some(cert), Some(key)) = (
            same_names && current,
            field(secret, "ca.crt"),
            field(secret, "tls.crt"),
            field(secret, "tls.key"),
        ) {
            return Ok((ca, cert, key));
        }
    }
    // Made here: the CA kept when there is one (what the API server
    // trusts already), a serving certificate for the names.
    let ca = match existing
        .as_ref()
        .and_then(|s| Some((field(s, "ca.crt")?, field(s, "ca.key")?)))
    {
        Some((cert_pem, key_pem)) => issue::Ca { cert_pem, key_pem },
        None => issue::new_ca("webhook", &config.namespace, now, CA_VALIDITY)
            .map_err(|e| WebhookError::Certificate(e.to_string()))?,
    };
    let leaf = issue::issue_leaf(&ca, &config.names, now, LEAF_VALIDITY)
        .map_err(|e| WebhookError::Certificate(e.to_string()))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(config.secret.clone()),
            namespace: Some(config.namespace.clone()),
            annotations: Some(
                [
                    (NAMES_ANNOTATION.to_owned(), names),
                    (
                        crate::tls::NOT_AFTER_ANNOTATION.to_owned(),
                        leaf.not_after.to_string(),
                    ),
                ]
                .into(),
            ),
            resource_version: existing
                .as_ref()
                .and_then(|s| s.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(
            [
                ("ca.crt", &ca.cert_pem),
                ("ca.key", &ca.key_pem),
                ("tls.crt", &leaf.cert_pem),
                ("tls.key", &leaf.key_pem),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect(),
        ),
        ..Secret::default()
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let written = match existing {
        None => api.create(&params, &secret).await,
        Some(_) => api.replace(&config.secret, &params, &secret).await,
    };
    match written {
        Ok(_) => Ok((ca.cert_pem, leaf.cert_pem, leaf.key_pem)),
        // Another instance wrote it first: its certificate is the one.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let secret = api
                .get(&config.secret)
                .await
                .map_err(kube_err(format!("reading {what}")))?;
            match (
                field(&secret, "ca.crt"),
                field(&secret, "tls.crt"),
                field(&secret, "tls.key"),
            ) {
                (Some(ca), Some(cert), Some(key)) => Ok((ca, cert, key)),
                _ => Err(WebhookError::Certificate(format!(
                    "{what} lacks ca.crt, tls.crt or tls.key"
                ))),
            }
        }
        Err(source) => Err(WebhookError::Kube {
            what: format!("writing {what}"),
            source,
        }),
    }
}

/// Writes `ca_pem` as the `caBundle` of every webhook of the
/// ValidatingWebhookConfiguration `name` (nothing when it holds it
/// already).
async fn inject_ca(client: &Client, name: &str, ca_pem: &str) -> Result<(), WebhookError> {
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let what = format!("ValidatingWebhookConfiguration {name}");
    let wrote = write_ca(
        &api,
        name,
        &what,
        |config: &mut ValidatingWebhookConfiguration| {
            let mut changed = false;
            for webhook in config.webhooks.iter_mut().flatten() {
                if webhook.client_config.ca_bundle.as_ref() != Some(&bundle) {
                    webhook.client_config.ca_bundle = Some(bundle.clone());
                    changed = true;
                }
            }
            changed
        },
    )
    .await?;
    if wrote {
        tracing::info!(
            configuration = name,
            "the webhook's CA is in its configuration"
        );
    }
    Ok(())
}

/// Writes `ca_pem` as the `caBundle` of the conversion webhook of the
/// CustomResourceDefinition `name`, and points it at this webhook's
/// Service when it names another or a `url` (the CRD ships naming the
/// chart's default release, `crdgen::DEFAULT_WEBHOOK_SERVICE`: a CRD is
/// not templated). Nothing when it holds both already, or when the CRD
/// converts no objects by webhook: there is nothing to trust.
async fn inject_crd_ca(
    client: &Client,
    name: &str,
    ca_pem: &str,
    service: Option<(&str, &str)>,
) -> Result<(), WebhookError> {
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let what = format!("CustomResourceDefinition {name}");
    let wrote = write_ca(&api, name, &what, |crd: &mut CustomResourceDefinition| {
        let client_config = crd
            .spec
            .conversion
            .as_mut()
            .filter(|c| c.strategy == "Webhook")
            .and_then(|c| c.webhook.as_mut())
            .and_then(|w| w.client_config.as_mut());
        let Some(c) = client_config else {
            return false;
        };
        let mut changed = false;
        if let Some((namespace, service_name)) = service {
            // Served behind that Service: called there (a `url` another
            // installer left, such as local mode's own, is replaced).
            let port = c.service.as_ref().and_then(|s| s.port).or(Some(443));
            let wanted = ServiceReference {
                namespace: namespace.to_owned(),
                name: service_name.to_owned(),
                path: Some("/convert".to_owned()),
                port,
            };
            if c.service.as_ref() != Some(&wanted) || c.url.is_some() {
                c.service = Some(wanted);
                c.url = None;
                changed = true;
            }
        }
        if c.ca_bundle.as_ref() != Some(&bundle) {
            c.ca_bundle = Some(bundle.clone());
            changed = true;
        }
        changed
    })
    .await?;
    if wrote {
        tracing::info!(
            crd = name,
            "the webhook's CA and Service are in the CRD's conversion"
        );
    }
    Ok(())
}

/// The webhook's Service, `(namespace, name)`, from the first of the
/// names its certificate covers when that is `<name>.<namespace>.svc`
/// (what the chart passes); `None` for an address (a `url` client).
fn service_of(names: &[String]) -> Option<(&str, &str)> {
    let first = names.first()?;
    let host = first
        .strip_suffix(".svc")
        .or_else(|| first.strip_suffix(".svc.cluster.local"))?;
    let (name, namespace) = host.split_once('.')?;
    (!name.is_empty() && !namespace.is_empty() && !namespace.contains('.'))
        .then_some((namespace, name))
}

/// Reads the object `name`, lets `set` put the CA in it (`false`: it
/// holds it already, or has no place for it), and replaces it as the
/// operator, reading again when another writer came first. Whether it
/// wrote.
async fn write_ca<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    mut set: impl FnMut(&mut K) -> bool,
) -> Result<bool, WebhookError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    for _ in 0..5 {
        let mut object = api
            .get(name)
            .await
            .map_err(kube_err(format!("reading {what}")))?;
        if !set(&mut object) {
            return Ok(false);
        }
        match api.replace(name, &params, &object).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(WebhookError::Kube {
                    what: format!("writing the caBundle of {what}"),
                    source,
                });
            }
        }
    }
    Err(WebhookError::Certificate(format!(
        "{what} kept changing while its caBundle was written"
    )))
}

/// The TLS server configuration of `cert_pem` and `key_pem`.
fn server_config(cert_pem: &str, key_pem: &str) -> Result<rustls::ServerConfig, WebhookError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| WebhookError::Certificate(format!("tls.crt: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| WebhookError::Certificate(format!("tls.key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebhookError::Certificate(e.to_string()))
}

/// TCP connections, each through its TLS handshake (one that fails or
/// takes longer than [`HANDSHAKE`] is dropped). Each handshake runs in a
/// task of its own, at most [`MAX_HANDSHAKES`] at once: a client that
/// connects and says nothing holds up no other (the API server's
/// admission and conversion calls would otherwise wait behind it for
/// [`HANDSHAKE`], and every write to a ValkeyCluster with them).
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    addr: SocketAddr,
}

/// How many TLS handshakes may be under way at once; a connection past
/// that waits for one to end (each ends within [`HANDSHAKE`]).
const MAX_HANDSHAKES: usize = 64;

impl TlsListener {
    /// Accepts on `tcp` from now on, in a task of the current runtime that
    /// ends when the listener is dropped.
    fn new(
        tcp: tokio::net::TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> std::io::Result<Self> {
        let addr = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let accepted = tokio::select! {
                    () = tx.closed() => return,
                    accepted = tcp.accept() => accepted,
                };
                let (tcp, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::debug!(%err, "the webhook cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            // The listener gone: the connection is dropped.
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%addr, %err, "a webhook client's TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(%addr, "a webhook client's TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(Self { ready, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ends only with the listener; never here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::service_of;

    #[test]
    fn the_service_is_the_first_name_when_it_is_one() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            service_of(&names(&["logbook-webhook.ops.svc", "10.0.0.1"])),
            Some(("ops", "logbook-webhook"))
        );
        assert_eq!(
            service_of(&names(&["hook.ns.svc.cluster.local"])),
            Some(("ns", "hook"))
        );
        assert_eq!(service_of(&names(&["127.0.0.1"])), None);
        assert_eq!(service_of(&names(&["a.b.c.svc"])), None);
        assert_eq!(service_of(&[]), None);
    }
}
