//! Where a cluster's backups go and the keys that sign the requests, as
//! the restore's init container and the operator's object store both
//! take them, and a destination as the journal records it.

use logbook_crds::BackupDestination;
use logbook_journal::BackupTarget;

/// Where backups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// The bucket's name.
    pub bucket: String,
    /// Its region (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// The endpoint of an S3-compatible server (`http://minio:9000`);
    /// `None` for AWS.
    pub endpoint: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which most
    /// S3-compatible servers want; virtual-hosted style
    /// (`bucket.endpoint/key`) otherwise.
    pub path_style: bool,
}

/// The keys that sign requests.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// The access key id (not a secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The journal's record of `destination` for backup `backup` of cluster
/// `cluster` in `namespace`.
pub fn target_of(
    destination: &BackupDestination,
    namespace: &str,
    cluster: &str,
    backup: &str,
) -> BackupTarget {
    BackupTarget {
        bucket: destination.bucket.clone(),
        region: destination.effective_region().to_owned(),
        endpoint: destination.endpoint.clone(),
        path_style: destination.force_path_style,
        secret: destination.credentials_secret.clone(),
        dir: destination.backup_dir(namespace, cluster, backup),
        cluster_dir: destination.cluster_dir(namespace, cluster),
    }
}
