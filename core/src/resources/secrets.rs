//! The cluster's Secrets: the generated password Secret and the connection
//! Secrets applications read (`REDIS_URL`, `host`, `port`, `password`; for
//! topology Sentinel also where the Sentinels are): the cluster's, for its
//! `default` user, and a ValkeyUser's (`spec.connectionSecret`), for that
//! user, built by one function; and the password generator.
//!
//! Secrets are written as `data` (bytes), not `stringData`: the API server
//! folds `stringData` into `data`, so an applied `stringData` never matches
//! what is read back and server-side apply would rewrite it forever.
//! Nothing here formats a password anywhere but into Secret data.

use std::collections::BTreeMap;
use std::io::Read as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use logbook_crds::ValkeyClusterSpec;
use logbook_crds::v1alpha1::generated_password_secret;
use logbook_journal::{ExternalEndpoint, ExternalPart};

use super::{
    ClusterMeta, SENTINEL_PORT, VALKEY_PORT, client_service_name, sentinel_headless_service_name,
    sentinel_master_name, sentinel_service_name, sentinel_statefulset_name,
};

/// Key of the Valkey URL in the connection Secret.
pub const CONNECTION_URL_KEY: &str = "REDIS_URL";
/// Key of the client Service's DNS name in the connection Secret.
pub const CONNECTION_HOST_KEY: &str = "host";
/// Key of the port in the connection Secret.
pub const CONNECTION_PORT_KEY: &str = "port";
/// Key of a Cluster's seed nodes in the connection Secret: every pod's
/// stable DNS name and port, comma-separated, for cluster-aware clients
/// (they discover the rest with `CLUSTER SHARDS`).
pub const CONNECTION_CLUSTER_NODES_KEY: &str = "clusterNodes";
/// Sentinel only: key of the Sentinel client Service's DNS name in the
/// connection Secret.
pub const CONNECTION_SENTINEL_HOST_KEY: &str = "sentinelHost";
/// Sentinel only: key of the Sentinel port in the connection Secret.
pub const CONNECTION_SENTINEL_PORT_KEY: &str = "sentinelPort";
/// Sentinel only: key of the name the Sentinels monitor the primary under
/// (what a Sentinel-aware client asks for) in the connection Secret.
pub const CONNECTION_SENTINEL_MASTER_NAME_KEY: &str = "sentinelMasterName";
/// Sentinel only: key of every Sentinel pod's stable DNS name and port,
/// comma-separated, for clients that want each Sentinel's address rather
/// than one Service in front of them all.
pub const CONNECTION_SENTINELS_KEY: &str = "sentinels";
/// External access: key of the URL clients outside Kubernetes use.
pub const CONNECTION_EXTERNAL_URL_KEY: &str = "externalUrl";
/// External access: key of the address clients outside use.
pub const CONNECTION_EXTERNAL_HOST_KEY: &str = "externalHost";
/// External access: key of the port clients outside use.
pub const CONNECTION_EXTERNAL_PORT_KEY: &str = "externalPort";
/// External access: key of every pod's external `host:port`,
/// comma-separated.
pub const CONNECTION_EXTERNAL_NODES_KEY: &str = "externalNodes";
/// External access, topology Sentinel: key of where clients outside reach
/// the Sentinels, `host:port` comma-separated (ask any of them for the
/// primary named by `sentinelMasterName`).
pub const CONNECTION_EXTERNAL_SENTINELS_KEY: &str = "externalSentinels";
/// Key of the password in the connection Secret (present only with auth).
pub const CONNECTION_PASSWORD_KEY: &str = "password";
/// Key of the ACL user name in a ValkeyUser's connection Secret.
pub const CONNECTION_USERNAME_KEY: &str = "username";
/// Label of a ValkeyUser's connection Secret: the ValkeyUser's name.
pub const CONNECTION_USER_LABEL: &str = "valkey.logbook.dev/user";
/// Key of `"true"` in a TLS cluster's connection Secret.
pub const CONNECTION_TLS_KEY: &str = "tls";
/// Key of the CA certificate (PEM) in a TLS cluster's connection Secret:
/// what a client verifies the servers with.
pub const CONNECTION_CA_KEY: &str = "ca.crt";

/// Length of a generated password.
const PASSWORD_LEN: usize = 32;
/// The generated password's alphabet: 62 characters, safe in a URL, a
/// shell and `valkey.conf` without quoting.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Random bytes at or above this are discarded, so that `byte % 62` is
/// uniform (248 = 4 × 62).
const UNBIASED_BELOW: u8 = 248;

/// A fresh random password: 32 characters of `[A-Za-z0-9]` (about 190
/// bits) from `/dev/urandom`.
///
/// # Errors
///
/// When `/dev/urandom` cannot be read.
pub fn generate_password() -> Result<String, std::io::Error> {
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    let mut password = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while password.len() < PASSWORD_LEN {
        urandom.read_exact(&mut buf)?;
        for b in buf.iter().filter(|b| **b < UNBIASED_BELOW) {
            if password.len() == PASSWORD_LEN {
                break;
            }
            if let Some(c) = ALPHABET.get(usize::from(b % 62)) {
                password.push(char::from(*c));
            }
        }
    }
    Ok(password)
}

/// The Secret the operator generates the password into: only when auth is
/// on and `spec.auth.passwordSecret` is unset (a user-named Secret is the
/// user's to create). Its name and key come from
/// [`generated_password_secret`].
pub fn build_password_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    password: &str,
) -> Option<Secret> {
    if !spec.auth.enabled || spec.auth.password_secret.is_some() {
        return None;
    }
    let target = generated_password_secret(&meta.name);
    Some(opaque_secret(
        meta,
        spec,
        target.name,
        BTreeMap::from([(target.key, bytes(password))]),
    ))
}

/// The DNS name of the client Service: `<name>.<namespace>.svc.cluster.local`.
pub fn client_host(meta: &ClusterMeta) -> String {
    format!(
        "{}.{}.svc.cluster.local",
        client_service_name(&meta.name),
        meta.namespace
    )
}

/// The DNS name of the Sentinel client Service:
/// `<name>-sentinel.<namespace>.svc.cluster.local`.
pub fn sentinel_host(meta: &ClusterMeta) -> String {
    format!(
        "{}.{}.svc.cluster.local",
        sentinel_service_name(&meta.name),
        meta.namespace
    )
}

/// Who a connection Secret connects as: a user name (none: the
/// `default` user) and its password.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The ACL user name; `None` for `default`, which needs none.
    pub username: Option<&'a str>,
    /// Its password.
    pub password: &'a str,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// `redis://[<user>]:<password>@<host>:6379` with the user and password
/// percent-encoded, or `redis://<host>:6379` without credentials;
/// `rediss://` with TLS.
pub fn connection_url(host: &str, credentials: Option<Credentials<'_>>, tls: bool) -> String {
    url_at(&format!("{host}:{VALKEY_PORT}"), credentials, tls)
}

/// [`connection_url`] at `address` (`host:port`).
fn url_at(address: &str, credentials: Option<Credentials<'_>>, tls: bool) -> String {
    let scheme = if tls { "rediss" } else { "redis" };
    match credentials {
        Some(c) => format!(
            "{scheme}://{}:{}@{address}",
            percent_encode(c.username.unwrap_or_default()),
            percent_encode(c.password)
        ),
        None => format!("{scheme}://{address}"),
    }
}

/// The connection Secret (`spec.connectionSecret`, default
/// `<name>-connection`) for applications: `REDIS_URL`, `host`, `port`, and
/// `password` when auth is on and `password` is given. With auth off the
/// password is ignored. A Cluster adds `clusterNodes`; a Sentinel cluster
/// adds `sentinelHost`, `sentinelPort`, `sentinelMasterName` and
/// `sentinels`, while `REDIS_URL` and `host` still name the client Service
/// (the primary), for clients that are not Sentinel-aware. A TLS cluster's
/// says `rediss://`, adds `tls: "true"` and, once known, the CA (`ca.crt`).
///
/// With external access on, where clients outside Kubernetes reach the
/// cluster (`external`, as observed), once known: `externalUrl`,
/// `externalHost` and `externalPort` (the primary's Service; for a
/// Cluster, its first pod as a seed), `externalNodes` (every pod,
/// `host:port`, comma-separated) and for topology Sentinel
/// `externalSentinels` (where the Sentinels are reached, likewise).
pub fn build_connection_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    password: Option<&str>,
    ca: Option<&str>,
    external: &ExternalPart,
) -> Secret {
    let credentials = password
        .filter(|_| spec.auth.enabled)
        .map(|password| Credentials {
            username: None,
            password,
        });
    let mut data = connection_data(meta, spec, credentials, ca);
    data.extend(external_keys(spec, external, credentials));
    opaque_secret(meta, spec, spec.connection_secret_name(&meta.name), data)
}

/// The connection Secret's external keys (none while external access is
/// off or no address is known).
fn external_keys(
    spec: &ValkeyClusterSpec,
    external: &ExternalPart,
    credentials: Option<Credentials<'_>>,
) -> BTreeMap<String, ByteString> {
    if !spec.external_access.enabled || !external.enabled {
        return BTreeMap::new();
    }
    let Some(entry) = external
        .primary
        .as_ref()
        .or_else(|| external.pods.values().next())
    else {
        return BTreeMap::new();
    };
    let url = url_at(&entry.address(), credentials, spec.tls.enabled);
    let nodes: Vec<String> = external
        .pods
        .values()
        .map(ExternalEndpoint::address)
        .collect();
    let sentinels: Vec<String> = external
        .sentinels
        .iter()
        .map(ExternalEndpoint::address)
        .collect();
    let sentinels = (spec.topology.uses_sentinel() && !sentinels.is_empty()).then(|| {
        (
            CONNECTION_EXTERNAL_SENTINELS_KEY.to_owned(),
            bytes(&sentinels.join(",")),
        )
    });
    BTreeMap::from([
        (CONNECTION_EXTERNAL_URL_KEY.to_owned(), bytes(&url)),
        (CONNECTION_EXTERNAL_HOST_KEY.to_owned(), bytes(&entry.host)),
        (
            CONNECTION_EXTERNAL_PORT_KEY.to_owned(),
            bytes(&entry.port.to_string()),
        ),
        (
            CONNECTION_EXTERNAL_NODES_KEY.to_owned(),
            bytes(&nodes.join(",")),
        ),
    ])
    .into_iter()
    .chain(sentinels)
    .collect()
}

/// A ValkeyUser's connection Secret (`spec.connectionSecret`, named
/// `name`) for applications connecting as that user: the keys of the
/// cluster's ([`build_connection_secret`]) with `username` and `password`
/// whatever the cluster's `spec.auth` (an ACL user always has a password),
/// and `REDIS_URL` carrying both. Owned by the ValkeyUser (`owner`, so
/// that it goes with it), labelled with its name
/// ([`CONNECTION_USER_LABEL`]) and not with the cluster's: it is none of
/// the cluster's objects (its drift, its release, its deletion).
pub fn build_user_connection_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    name: &str,
    owner: OwnerReference,
    credentials: Credentials<'_>,
    ca: Option<&str>,
) -> Secret {
    let mut data = connection_data(meta, spec, Some(credentials), ca);
    data.insert(
        CONNECTION_USERNAME_KEY.to_owned(),
        bytes(credentials.username.unwrap_or("default")),
    );
    let labels = BTreeMap::from([
        (
            super::labels::MANAGED_BY.to_owned(),
            super::labels::MANAGED_BY_VALUE.to_owned(),
        ),
        (CONNECTION_USER_LABEL.to_owned(), owner.name.clone()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(meta.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The data of a connection Secret connecting as `credentials` (none: no
/// password).
fn connection_data(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    credentials: Option<Credentials<'_>>,
    ca: Option<&str>,
) -> BTreeMap<String, ByteString> {
    let host = client_host(meta);
    let tls = spec.tls.enabled;
    let mut data = BTreeMap::from([
        (
            CONNECTION_URL_KEY.to_owned(),
            bytes(&connection_url(&host, credentials, tls)),
        ),
        (
            CONNECTION_PORT_KEY.to_owned(),
            bytes(&VALKEY_PORT.to_string()),
        ),
    ]);
    if let Some(c) = credentials {
        data.insert(CONNECTION_PASSWORD_KEY.to_owned(), bytes(c.password));
    }
    data.insert(CONNECTION_HOST_KEY.to_owned(), bytes(&host));
    if tls {
        data.insert(CONNECTION_TLS_KEY.to_owned(), bytes("true"));
        if let Some(ca) = ca {
            data.insert(CONNECTION_CA_KEY.to_owned(), bytes(ca));
        }
    }
    if spec.topology.is_cluster() {
        let headless = super::headless_service_name(&meta.name);
        let sts = super::statefulset_name(&meta.name);
        let seeds: Vec<String> = (0..spec.effective_replicas().max(0))
            .map(|i| {
                format!(
                    "{sts}-{i}.{headless}.{}.svc.cluster.local:{VALKEY_PORT}",
                    meta.namespace
                )
            })
            .collect();
        data.insert(
            CONNECTION_CLUSTER_NODES_KEY.to_owned(),
            bytes(&seeds.join(",")),
        );
    }
    if spec.topology.uses_sentinel() {
        data.extend(sentinel_keys(meta, spec));
    }
    data
}

/// The connection Secret's Sentinel keys.
fn sentinel_keys(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> BTreeMap<String, ByteString> {
    let sentinels = spec.effective_sentinel().unwrap_or_default().replicas;
    let headless = sentinel_headless_service_name(&meta.name);
    let sts = sentinel_statefulset_name(&meta.name);
    let each: Vec<String> = (0..sentinels.max(0))
        .map(|i| {
            format!(
                "{sts}-{i}.{headless}.{}.svc.cluster.local:{SENTINEL_PORT}",
                meta.namespace
            )
        })
        .collect();
    BTreeMap::from([
        (
            CONNECTION_SENTINEL_HOST_KEY.to_owned(),
            bytes(&sentinel_host(meta)),
        ),
        (
            CONNECTION_SENTINEL_PORT_KEY.to_owned(),
            bytes(&SENTINEL_PORT.to_string()),
        ),
        (
            CONNECTION_SENTINEL_MASTER_NAME_KEY.to_owned(),
            bytes(&sentinel_master_name(&meta.name)),
        ),
        (CONNECTION_SENTINELS_KEY.to_owned(), bytes(&each.join(","))),
    ])
}

/// An `Opaque` Secret owned by the cluster.
fn opaque_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    name: String,
    data: BTreeMap<String, ByteString>,
) -> Secret {
    Secret {
        metadata: meta.object_meta(name, spec),
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

/// Percent-encodes every byte but RFC 3986's unreserved characters, so any
/// password is a valid URL userinfo.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use logbook_crds::SecretKeyRef;

    use super::super::test_support::meta;
    use super::*;

    fn text(s: &Secret, key: &str) -> String {
        String::from_utf8(s.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn generated_passwords_are_32_alphanumerics_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn password_secret_only_when_generated() {
        let spec = ValkeyClusterSpec::default();
        let s = build_password_secret(&meta(), &spec, "pw").unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("cache-password"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert_eq!(text(&s, "password"), "pw");
        assert!(s.string_data.is_none());
        assert_eq!(s.metadata.owner_references.unwrap().len(), 1);

        let mut user = spec.clone();
        user.auth.password_secret = Some(SecretKeyRef {
            name: "mine".into(),
            key: "pw".into(),
        });
        assert!(build_password_secret(&meta(), &user, "pw").is_none());
        let mut off = spec;
        off.auth.enabled = false;
        assert!(build_password_secret(&meta(), &off, "pw").is_none());
    }

    #[test]
    fn connection_secret_encodes_the_password_in_the_url() {
        let spec = ValkeyClusterSpec::default();
        let s = build_connection_secret(
            &meta(),
            &spec,
            Some("p@ss:w/rd %"),
            None,
            &ExternalPart::default(),
        );
        assert_eq!(s.metadata.name.as_deref(), Some("cache-connection"));
        assert_eq!(
            text(&s, "REDIS_URL"),
            "redis://:p%40ss%3Aw%2Frd%20%25@cache.prod.svc.cluster.local:6379"
        );
        assert_eq!(text(&s, "host"), "cache.prod.svc.cluster.local");
        assert_eq!(text(&s, "port"), "6379");
        assert_eq!(text(&s, "password"), "p@ss:w/rd %");
    }

    #[test]
    fn a_sentinel_connection_secret_says_where_the_sentinels_are() {
        let spec = ValkeyClusterSpec::with_topology(logbook_crds::Topology::Sentinel);
        let s = build_connection_secret(&meta(), &spec, Some("pw"), None, &ExternalPart::default());
        assert_eq!(
            text(&s, CONNECTION_SENTINEL_HOST_KEY),
            "cache-sentinel.prod.svc.cluster.local"
        );
        assert_eq!(text(&s, CONNECTION_SENTINEL_PORT_KEY), "26379");
        assert_eq!(text(&s, CONNECTION_SENTINEL_MASTER_NAME_KEY), "cache");
        assert_eq!(
            text(&s, CONNECTION_SENTINELS_KEY),
            "cache-sentinel-0.cache-sentinel-hl.prod.svc.cluster.local:26379,\
             cache-sentinel-1.cache-sentinel-hl.prod.svc.cluster.local:26379,\
             cache-sentinel-2.cache-sentinel-hl.prod.svc.cluster.local:26379"
        );
        // Clients that are not Sentinel-aware still reach the primary.
        assert_eq!(text(&s, "host"), "cache.prod.svc.cluster.local");
        assert_eq!(
            text(&s, "REDIS_URL"),
            "redis://:pw@cache.prod.svc.cluster.local:6379"
        );
        assert_eq!(text(&s, "password"), "pw");

        let mut five = spec;
        five.sentinel = Some(logbook_crds::SentinelSpec {
            replicas: 5,
            ..logbook_crds::SentinelSpec::default()
        });
        let s = build_connection_secret(&meta(), &five, None, None, &ExternalPart::default());
        assert_eq!(text(&s, CONNECTION_SENTINELS_KEY).split(',').count(), 5);
    }

    #[test]
    fn only_a_sentinel_cluster_has_sentinel_keys() {
        for topology in [
            logbook_crds::Topology::Standalone,
            logbook_crds::Topology::Replication,
            logbook_crds::Topology::Cluster,
        ] {
            let spec = ValkeyClusterSpec::with_topology(topology);
            let s = build_connection_secret(&meta(), &spec, None, None, &ExternalPart::default());
            let data = s.data.as_ref().unwrap();
            for key in [
                CONNECTION_SENTINEL_HOST_KEY,
                CONNECTION_SENTINEL_PORT_KEY,
                CONNECTION_SENTINEL_MASTER_NAME_KEY,
                CONNECTION_SENTINELS_KEY,
            ] {
                assert!(!data.contains_key(key), "{topology}: {key}");
            }
        }
    }

    #[test]
    fn a_tls_connection_secret_says_rediss_and_carries_the_ca() {
        let mut spec = ValkeyClusterSpec::default();
        spec.tls.enabled = true;
        let s = build_connection_secret(
            &meta(),
            &spec,
            Some("pw"),
            Some("-----BEGIN CERT"),
            &ExternalPart::default(),
        );
        assert_eq!(
            text(&s, "REDIS_URL"),
            "rediss://:pw@cache.prod.svc.cluster.local:6379"
        );
        assert_eq!(text(&s, "tls"), "true");
        assert_eq!(text(&s, "ca.crt"), "-----BEGIN CERT");
        // Without TLS the CA is not written even when given.
        spec.tls.enabled = false;
        let s = build_connection_secret(
            &meta(),
            &spec,
            Some("pw"),
            Some("x"),
            &ExternalPart::default(),
        );
        assert!(!s.data.as_ref().unwrap().contains_key("ca.crt"));
        assert!(!s.data.as_ref().unwrap().contains_key("tls"));
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "valkey.logbook.dev/v1alpha1".into(),
            kind: "ValkeyUser".into(),
            name: "app".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn a_user_connection_secret_carries_the_user_and_the_clusters_keys() {
        let mut spec = ValkeyClusterSpec::with_topology(logbook_crds::Topology::Sentinel);
        spec.tls.enabled = true;
        let user = Credentials {
            username: Some("app.v2"),
            password: "p@ss/w",
        };
        let s =
            build_user_connection_secret(&meta(), &spec, "app-valkey", owner(), user, Some("CA"));
        assert_eq!(
            text(&s, "REDIS_URL"),
            "rediss://app.v2:p%40ss%2Fw@cache.prod.svc.cluster.local:6379"
        );
        assert_eq!(text(&s, "username"), "app.v2");
        assert_eq!(text(&s, "password"), "p@ss/w");
        assert_eq!(text(&s, "ca.crt"), "CA");
        assert_eq!(text(&s, "tls"), "true");
        // The same keys as the cluster's, for the same spec, and username.
        let cluster = build_connection_secret(
            &meta(),
            &spec,
            Some("x"),
            Some("CA"),
            &ExternalPart::default(),
        );
        let mut want: Vec<&str> = cluster
            .data
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        want.push("username");
        want.sort_unstable();
        let got: Vec<&str> = s
            .data
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, want);
        // Owned by the ValkeyUser alone, in the cluster's namespace.
        assert_eq!(s.metadata.owner_references.as_ref().unwrap(), &[owner()]);
        assert_eq!(s.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()[CONNECTION_USER_LABEL],
            "app"
        );
        // None of the cluster's objects: not labelled as one.
        let labels = s.metadata.labels.as_ref().unwrap();
        assert!(!labels.contains_key(super::super::labels::CLUSTER));
        // Whatever the cluster's auth: an ACL user always has a password.
        let mut off = ValkeyClusterSpec::default();
        off.auth.enabled = false;
        let s = build_user_connection_secret(&meta(), &off, "app-valkey", owner(), user, None);
        assert_eq!(
            text(&s, "REDIS_URL"),
            "redis://app.v2:p%40ss%2Fw@cache.prod.svc.cluster.local:6379"
        );
        assert!(!format!("{user:?}").contains("p@ss"));
    }

    #[test]
    fn connection_secret_without_auth_has_no_password() {
        let mut spec = ValkeyClusterSpec::default();
        spec.auth.enabled = false;
        spec.connection_secret = Some("app-valkey".into());
        let s = build_connection_secret(
            &meta(),
            &spec,
            Some("ignored"),
            None,
            &ExternalPart::default(),
        );
        assert_eq!(s.metadata.name.as_deref(), Some("app-valkey"));
        assert_eq!(
            text(&s, "REDIS_URL"),
            "redis://cache.prod.svc.cluster.local:6379"
        );
        assert!(!s.data.as_ref().unwrap().contains_key("password"));
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            !json.contains("aWdub3JlZA"),
            "base64 of the password leaked"
        );
    }

    #[test]
    fn external_endpoints_are_added_once_known() {
        let mut spec = ValkeyClusterSpec::with_topology(logbook_crds::Topology::Cluster);
        spec.shards = Some(3);
        let mut external = ExternalPart {
            enabled: true,
            ..ExternalPart::default()
        };
        for (pod, port) in [("cache-0", 30001), ("cache-1", 30002)] {
            external.pods.insert(
                pod.to_owned(),
                ExternalEndpoint {
                    host: "192.0.2.1".into(),
                    port,
                    bus_port: Some(port + 100),
                },
            );
        }
        // Off in the spec: nothing, whatever was observed.
        let s = build_connection_secret(&meta(), &spec, Some("p@ss"), None, &external);
        assert!(!s.data.as_ref().unwrap().contains_key("externalUrl"));
        spec.external_access.enabled = true;
        spec.tls.enabled = true;
        let s = build_connection_secret(&meta(), &spec, Some("p@ss"), None, &external);
        assert_eq!(text(&s, "externalUrl"), "rediss://:p%40ss@192.0.2.1:30001");
        assert_eq!(text(&s, "externalHost"), "192.0.2.1");
        assert_eq!(text(&s, "externalPort"), "30001");
        assert_eq!(text(&s, "externalNodes"), "192.0.2.1:30001,192.0.2.1:30002");
        // A primary's Service, when there is one, is the one to use.
        external.primary = Some(ExternalEndpoint {
            host: "192.0.2.9".into(),
            port: 30009,
            bus_port: None,
        });
        let s = build_connection_secret(&meta(), &spec, None, None, &external);
        assert_eq!(text(&s, "externalUrl"), "rediss://192.0.2.9:30009");
        // Nothing known yet: no keys.
        let s = build_connection_secret(
            &meta(),
            &spec,
            None,
            None,
            &ExternalPart {
                enabled: true,
                ..ExternalPart::default()
            },
        );
        assert!(!s.data.as_ref().unwrap().contains_key("externalHost"));
        // Only a Sentinel cluster names its Sentinels.
        external.sentinels = vec![
            ExternalEndpoint {
                host: "192.0.2.1".into(),
                port: 30010,
                bus_port: None,
            },
            ExternalEndpoint {
                host: "2001:db8::2".into(),
                port: 30010,
                bus_port: None,
            },
        ];
        let s = build_connection_secret(&meta(), &spec, None, None, &external);
        assert!(!s.data.as_ref().unwrap().contains_key("externalSentinels"));
        spec.topology = logbook_crds::Topology::Sentinel;
        let s = build_connection_secret(&meta(), &spec, None, None, &external);
        assert_eq!(
            text(&s, "externalSentinels"),
            "192.0.2.1:30010,[2001:db8::2]:30010"
        );
    }
}
