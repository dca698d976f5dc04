//! `certificate <name> --user <ValkeyUser> [--out-dir DIR] [--days N]`: a
//! client certificate for mutual TLS (`spec.tls.clientAuth`), signed by the
//! cluster's own CA (the Secret `<name>-tls-ca` the operator keeps when it
//! issues the cluster's certificates itself), for the ACL user of a
//! ValkeyUser of the cluster: `CN=<user>`, `clientAuth` only.
//!
//! The only command that reads Secret data: the CA's key, to sign, kept in
//! memory and never printed. The new key is written with mode 0600 and
//! never printed either. A cluster whose certificates come from
//! cert-manager or from a Secret its user keeps is refused: the plugin
//! holds no key to sign with there.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use logbook_crds::{CertSource, ValkeyCluster, ValkeyUser};
use logbook_journal::Timestamp;

use super::connect::Kube;
use super::error::{PluginError, Result};
use crate::tls::{self, issue};

/// `--days`' default: the operator's own leaf certificates live as long.
pub const DEFAULT_DAYS: u32 = 90;

/// What `certificate` is asked for.
#[derive(Debug, Clone)]
pub struct CertificateArgs {
    /// The ValkeyUser object (its name in the namespace).
    pub user: String,
    /// Where the files go.
    pub out_dir: PathBuf,
    /// Days of validity.
    pub days: u32,
}

/// The three files written, by name.
fn file_names(user: &str) -> [String; 3] {
    [
        format!("{user}.crt"),
        format!("{user}.key"),
        "ca.crt".to_owned(),
    ]
}

/// Refuses a cluster whose servers would not ask for (or whose CA the
/// plugin cannot sign) a client certificate, saying what to do instead.
fn check_cluster(cluster: &ValkeyCluster, name: &str) -> Result<()> {
    let tls = &cluster.spec.tls;
    let Some(source) = tls.source() else {
        return Err(PluginError::Refused(format!(
            "valkeycluster {name:?} does not serve TLS (spec.tls.enabled is false): a client certificate would authenticate nothing; enable spec.tls.enabled and spec.tls.clientAuth first"
        )));
    };
    if !tls.client_auth {
        return Err(PluginError::Refused(format!(
            "valkeycluster {name:?} serves TLS without mutual TLS (spec.tls.clientAuth is false): its servers ask no client for a certificate, so this one would authenticate nothing; set spec.tls.clientAuth: true first"
        )));
    }
    match source {
        CertSource::Internal => Ok(()),
        CertSource::CertManager(issuer) => Err(PluginError::Refused(format!(
            "valkeycluster {name:?} takes its certificates from cert-manager ({} {:?}): the plugin has no CA key to sign with. Ask cert-manager for a client certificate from the same issuer instead: a Certificate with commonName set to the ACL user and usages [client auth]",
            issuer.kind, issuer.name
        ))),
        CertSource::Secret(secret) => Err(PluginError::Refused(format!(
            "valkeycluster {name:?} serves the certificate of Secret {secret:?}, which its user keeps: the plugin has no CA key to sign with. Sign a client certificate (CN = the ACL user, extended key usage clientAuth) with the CA whose certificate is that Secret's ca.crt"
        ))),
    }
}

/// The ACL user name of ValkeyUser `object`, which must belong to
/// `cluster`.
async fn acl_user(kube: &Kube, cluster: &str, object: &str) -> Result<(String, bool)> {
    let user = kube
        .api::<ValkeyUser>()
        .get_opt(object)
        .await
        .map_err(|e| {
            PluginError::from_kube(&kube.call("get", "valkeyusers.valkey.logbook.dev", Some(object)), e)
        })?
        .ok_or_else(|| {
            PluginError::Refused(format!(
                "valkeyuser {object:?} not found in namespace {:?} (`kubectl get valkeyusers -n {}` lists them)",
                kube.namespace, kube.namespace
            ))
        })?;
    if user.spec.cluster != cluster {
        return Err(PluginError::Refused(format!(
            "valkeyuser {object:?} belongs to valkeycluster {:?}, not {cluster:?}: its user does not exist on {cluster:?}'s servers",
            user.spec.cluster
        )));
    }
    Ok((
        user.spec.effective_username(object).to_owned(),
        user.spec.enabled,
    ))
}

/// The cluster's CA, from the operator's Secret `<name>-tls-ca`.
async fn read_ca(kube: &Kube, name: &str) -> Result<issue::Ca> {
    let secret_name = tls::ca_secret_name(name);
    let secret = kube
        .api::<Secret>()
        .get_opt(&secret_name)
        .await
        .map_err(|e| PluginError::from_kube(&kube.call("get", "secrets", Some(&secret_name)), e))?
        .ok_or_else(|| {
            PluginError::Refused(format!(
                "valkeycluster {name:?} has no CA Secret {secret_name:?} yet: the operator makes it with the cluster's first certificate (see `kubectl valkey status {name}`)"
            ))
        })?;
    tls::read_ca(&secret).ok_or_else(|| {
        PluginError::Refused(format!(
            "Secret {secret_name:?} lacks {} or {}: it is not a CA the plugin can sign with",
            tls::CA_KEY,
            tls::CA_PRIVATE_KEY
        ))
    })
}

/// Writes `text` to a new file `path` with `mode`; an existing file is
/// never overwritten.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| PluginError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io("cannot create"))?;
    file.write_all(text.as_bytes())
        .map_err(io("cannot write"))?;
    file.sync_all().map_err(io("cannot write"))
}

/// Signs and writes the files; returns the certificate's end of validity.
fn write_files(
    ca: &issue::Ca,
    user: &str,
    out_dir: &Path,
    days: u32,
    now: Timestamp,
) -> Result<Timestamp> {
    let [crt, key, ca_crt] = file_names(user).map(|f| out_dir.join(f));
    // Checked first, so that nothing is written when one is in the way.
    for path in [&crt, &key, &ca_crt] {
        if path.exists() {
            return Err(PluginError::Usage(format!(
                "{} already exists: remove it or choose another --out-dir (nothing was written)",
                path.display()
            )));
        }
    }
    let validity = Duration::from_secs(u64::from(days).saturating_mul(86_400));
    let leaf = issue::issue_client(ca, user, now, validity)
        .map_err(|e| PluginError::Refused(format!("cannot sign the client certificate: {e}")))?;
    write_new(&key, &leaf.key_pem, 0o600)?;
    write_new(&crt, &leaf.cert_pem, 0o644)?;
    write_new(&ca_crt, &ca.cert_pem, 0o644)?;
    Ok(leaf.not_after)
}

/// `certificate <name> --user <ValkeyUser>`.
///
/// # Errors
/// [`PluginError::ClusterNotFound`]; [`PluginError::Refused`] for a
/// cluster without TLS or mutual TLS, one whose CA the plugin cannot use,
/// an unknown ValkeyUser or one of another cluster; [`PluginError::Usage`]
/// for a file in the way; file and API errors.
pub async fn run(
    kube: &Kube,
    name: &str,
    args: &CertificateArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    check_cluster(&cluster, name)?;
    let (user, enabled) = acl_user(kube, name, &args.user).await?;
    if !args.out_dir.is_dir() {
        return Err(PluginError::Usage(format!(
            "--out-dir {}: no such directory",
            args.out_dir.display()
        )));
    }
    let ca = read_ca(kube, name).await?;
    let not_after = write_files(&ca, &user, &args.out_dir, args.days, Timestamp::now())?;
    let [crt, key, ca_crt] = file_names(&user).map(|f| args.out_dir.join(f));
    let ns = &kube.namespace;
    writeln!(
        out,
        "valkeycluster/{name}: client certificate for ACL user {user:?} (CN={user}), signed by the cluster's CA, valid until {not_after}:\n  {}\n  {} (private key, mode 0600: keep it secret)\n  {} (the CA, to verify the servers)\nConnect with it, then sign in as the user (the certificate authenticates the connection, AUTH the user):\n  valkey-cli --tls --cacert {} --cert {} --key {} -h {name}.{ns}.svc --user {user} --askpass",
        crt.display(),
        key.display(),
        ca_crt.display(),
        ca_crt.display(),
        crt.display(),
        key.display(),
    )?;
    if !enabled {
        writeln!(
            out,
            "note: valkeyuser {:?} is disabled (spec.enabled false): its logins are refused until it is enabled.",
            args.user
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use logbook_crds::{IssuerRef, ValkeyClusterSpec};

    fn cluster(enabled: bool, client_auth: bool) -> ValkeyCluster {
        let mut spec = ValkeyClusterSpec::default();
        spec.tls.enabled = enabled;
        spec.tls.client_auth = client_auth;
        ValkeyCluster::new("cache", spec)
    }

    #[test]
    fn only_a_mutual_tls_cluster_with_the_operators_ca_is_signed_for() {
        check_cluster(&cluster(true, true), "cache").unwrap();
        let err = check_cluster(&cluster(false, false), "cache").unwrap_err();
        assert!(
            err.to_string().contains("spec.tls.enabled is false"),
            "{err}"
        );
        let err = check_cluster(&cluster(true, false), "cache").unwrap_err();
        assert!(
            err.to_string().contains("spec.tls.clientAuth is false"),
            "{err}"
        );
        let mut managed = cluster(true, true);
        managed.spec.tls.issuer_ref = Some(IssuerRef {
            name: "ca-issuer".to_owned(),
            kind: "ClusterIssuer".to_owned(),
            group: "cert-manager.io".to_owned(),
        });
        let err = check_cluster(&managed, "cache").unwrap_err();
        assert!(err.to_string().contains("no CA key to sign with"), "{err}");
        let mut kept = cluster(true, true);
        kept.spec.tls.secret_name = Some("my-tls".to_owned());
        let err = check_cluster(&kept, "cache").unwrap_err();
        assert!(err.to_string().contains("\"my-tls\""), "{err}");
    }

    #[test]
    fn the_key_is_written_0600_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let ca = issue::new_ca("cache", "default", now, issue::CA_VALIDITY).unwrap();
        let not_after = write_files(&ca, "app", dir.path(), 7, now).unwrap();
        assert!(not_after.as_micros() > now.as_micros());
        let mode = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("app.key"), 0o600);
        assert_eq!(mode("app.crt"), 0o644);
        let key = std::fs::read_to_string(dir.path().join("app.key")).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
            ca.cert_pem
        );
        // Again: refused, the files untouched.
        let err = write_files(&ca, "app", dir.path(), 7, now).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app.key")).unwrap(),
            key
        );
    }
}
