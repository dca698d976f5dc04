//! Backups: where they go ([`BackupDestination`]), a cluster's schedule
//! and retention ([`BackupSpec`]), the on-demand [`ValkeyBackup`] resource
//! with its status, and a new cluster's [`RestoreSource`].
//!
//! This module owns what a user may ask of backups and restores. It never
//! holds a credential: the destination names a Secret, which the operator
//! reads when it talks to the bucket. It must not talk to a bucket or a
//! server (the operator's `src/backup/` does).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::DNS_SUBDOMAIN_PATTERN;

/// The region used when a destination names none.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Key of the credentials Secret holding the access key id.
pub const ACCESS_KEY_ID_KEY: &str = "AWS_ACCESS_KEY_ID";
/// Key of the credentials Secret holding the secret access key.
pub const SECRET_ACCESS_KEY_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Optional key of the credentials Secret holding a session token.
pub const SESSION_TOKEN_KEY: &str = "AWS_SESSION_TOKEN";
/// Optional key of the credentials Secret holding the endpoint, used when
/// the destination sets none.
pub const ENDPOINT_KEY: &str = "endpoint";
/// Label the operator puts on the ValkeyBackups its schedule creates.
pub const SCHEDULED_LABEL: &str = "valkey.logbook.dev/scheduled";

/// Parses a five-field cron expression (minute, hour, day of month, month,
/// day of week; UTC), as `spec.backup.schedule` takes it.
///
/// # Errors
/// What is wrong with it, for the status.
pub fn parse_schedule(schedule: &str) -> Result<croner::Cron, String> {
    let fields = schedule.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "schedule {schedule:?} has {fields} fields; a cron expression has five (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\""
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|e| format!("schedule {schedule:?} is not a valid cron expression: {e}"))
}

/// The first time strictly after `after_ms` (Unix milliseconds, UTC) that
/// `schedule` fires, in Unix milliseconds; `None` when the schedule does
/// not parse or never fires again.
pub fn next_fire_ms(schedule: &str, after_ms: i64) -> Option<i64> {
    let cron = parse_schedule(schedule).ok()?;
    let after = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(after_ms)?;
    cron.find_next_occurrence(&after, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// An S3-compatible bucket and where in it a cluster's backups go.
///
/// A backup `b` of cluster `c` in namespace `ns` is kept under
/// `<prefix>/<ns>/<c>/<b>/`: one RDB object per shard and a
/// `manifest.json`, written last. Retention lists and deletes under
/// `<prefix>/<ns>/<c>/` only, so one cluster's backups never touch
/// another's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupDestination {
    /// The bucket (it must exist; the operator does not create it).
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Key prefix inside the bucket (default: none). No leading or
    /// trailing `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^[^/].*[^/]$|^[^/]$"))]
    pub prefix: Option<String>,
    /// The bucket's region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// The server's URL for S3-compatible storage other than AWS
    /// (`http://minio.storage:9000`); otherwise the Secret's `endpoint`
    /// key, otherwise AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub endpoint: Option<String>,
    /// Address the bucket in the path (`<endpoint>/<bucket>/<key>`), as
    /// most non-AWS servers want. Default: `true` when an endpoint is
    /// given (here or in the Secret), `false` for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// The Secret (same namespace) with `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, and optionally `AWS_SESSION_TOKEN` and
    /// `endpoint`.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub credentials_secret: String,
}

impl BackupDestination {
    /// The region in force.
    pub fn effective_region(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// The key prefix (`""` or `<prefix>/`) every object of this
    /// destination is under.
    pub fn key_prefix(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{p}/"),
            None => String::new(),
        }
    }

    /// The directory (ending in `/`) holding every backup of cluster
    /// `cluster` in `namespace`.
    pub fn cluster_dir(&self, namespace: &str, cluster: &str) -> String {
        format!("{}{namespace}/{cluster}/", self.key_prefix())
    }

    /// The directory (ending in `/`) of backup `backup` of that cluster.
    pub fn backup_dir(&self, namespace: &str, cluster: &str, backup: &str) -> String {
        format!("{}{backup}/", self.cluster_dir(namespace, cluster))
    }
}

/// How many backups to keep. A backup is deleted (its objects and its
/// ValkeyBackup) once it is beyond `keepLast` *or* older than
/// `maxAgeHours`, whichever comes first; the latest completed backup is
/// never deleted. Only backups the schedule made are deleted this way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRetention {
    /// Completed scheduled backups to keep (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub keep_last: Option<i32>,
    /// Delete completed scheduled backups older than this many hours
    /// (default: no age limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 87600))]
    pub max_age_hours: Option<i32>,
}

/// The default `retention.keepLast`.
pub const KEEP_LAST: i32 = 7;

impl BackupRetention {
    /// `keepLast` in force.
    pub fn effective_keep_last(&self) -> i32 {
        self.keep_last.unwrap_or(KEEP_LAST)
    }
}

/// A cluster's backups: where they go, when they are taken, how many are
/// kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Where this cluster's backups go; the default of its ValkeyBackups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<BackupDestination>,
    /// When to take a backup, as a five-field cron expression in UTC
    /// (`0 3 * * *`: daily at 03:00). Needs `destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 256))]
    pub schedule: Option<String>,
    /// Retention of the scheduled backups (and of the continuous
    /// archive: a chain that ended before the oldest backup kept is
    /// deleted with it).
    #[serde(default, skip_serializing_if = "is_default_retention")]
    pub retention: BackupRetention,
    /// Archive every shard's write stream continuously, for restores to
    /// a point in time (`restoreFrom.pointInTime`). Needs `destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<ContinuousArchive>,
}

/// The continuous archive: each shard's replication stream, read by the
/// operator as a replica of one of the shard's replicas (of the primary
/// when it has none) and shipped to `destination` in segments, close
/// behind the primary, after a base RDB. See `docs/backups.md`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContinuousArchive {
    /// Whether the archive runs.
    pub enabled: bool,
}

impl BackupSpec {
    /// Whether the continuous archive is asked for.
    pub fn continuous_enabled(&self) -> bool {
        self.continuous.as_ref().is_some_and(|c| c.enabled)
    }
}

fn is_default_retention(r: &BackupRetention) -> bool {
    *r == BackupRetention::default()
}

impl BackupSpec {
    /// Whether nothing is set (the field is then left out of the JSON).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where a new cluster's data comes from: a ValkeyBackup of this
/// namespace, or a backup directory in a bucket. Read only when the
/// cluster is created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.backup) ? 1 : 0) + (has(self.path) ? 1 : 0) + (has(self.cluster) ? 1 : 0) == 1")
    .message("restoreFrom needs exactly one of backup (a ValkeyBackup), path with destination (a directory in a bucket) or cluster (a ValkeyCluster's archive, with pointInTime)"))]
#[x_kube(validation = Rule::new("!has(self.path) || has(self.destination)")
    .message("restoreFrom.path needs restoreFrom.destination"))]
#[x_kube(validation = Rule::new("!has(self.pointInTime) || !has(self.backup)")
    .message("restoreFrom.pointInTime restores from an archive: name it by cluster or path, not backup"))]
#[x_kube(validation = Rule::new("!has(self.cluster) || has(self.pointInTime)")
    .message("restoreFrom.cluster needs restoreFrom.pointInTime"))]
pub struct RestoreSource {
    /// Name of a completed ValkeyBackup in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub backup: Option<String>,
    /// A backup directory (holding `manifest.json`) in `destination`'s
    /// bucket, e.g. `logbook/prod/cache/cache-20261124-0300`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub path: Option<String>,
    /// The bucket `path` is in. Its `prefix` is refused: `path` names the
    /// whole directory, prefix included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<BackupDestination>,
    /// A ValkeyCluster of this namespace whose continuous archive to
    /// restore from (with `pointInTime`); its `backup.destination` is
    /// read. The cluster need not exist any more when `path` and
    /// `destination` name its directory instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub cluster: Option<String>,
    /// Restore the dataset as it was at this moment (RFC 3339, e.g.
    /// `2026-11-30T12:00:00Z`): each shard's base, then its archived write
    /// stream up to it. With `cluster`, or with `path` naming a cluster's
    /// directory (`<prefix>/<namespace>/<cluster>`). Needs
    /// `storage.persistence` with the append-only file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 40))]
    pub point_in_time: Option<String>,
}

/// `restoreFrom.pointInTime` in Unix milliseconds.
///
/// # Errors
/// What is wrong with it.
pub fn parse_point_in_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("pointInTime {text:?} is not an RFC 3339 time (e.g. 2026-11-30T12:00:00Z): {e}")
        })
}

/// Desired state of a ValkeyBackup: one backup, now, of the named
/// ValkeyCluster (same namespace). Immutable.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "valkey.logbook.dev",
    version = "v1alpha1",
    kind = "ValkeyBackup",
    plural = "valkeybackups",
    singular = "valkeybackup",
    namespaced,
    shortname = "vkb",
    category = "valkey",
    status = "ValkeyBackupStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.bytes"}"#,
    printcolumn = r#"{"name":"Completed","type":"date","jsonPath":".status.completedAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("a ValkeyBackup's spec is immutable"))]
pub struct ValkeyBackupSpec {
    /// The ValkeyCluster, in the same namespace, to back up.
    #[schemars(length(min = 1, max = 63))]
    pub cluster: String,
    /// Where to put it (default: the cluster's `backup.destination`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<BackupDestination>,
}

/// Where a ValkeyBackup is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackupPhase {
    /// Waiting to be taken (the cluster is not ready, or another backup
    /// of it runs).
    Pending,
    /// Being taken.
    Running,
    /// Every shard's RDB and the manifest are in the bucket, checksummed.
    Completed,
    /// Given up; `message` says why. Nothing in the bucket is reported as
    /// good.
    Failed,
}

/// One shard's RDB in a backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupShardStatus {
    /// Shard index in the manifest.
    pub shard: i32,
    /// The pod it was streamed from.
    pub pod: String,
    /// Its object key.
    pub key: String,
    /// Its size in bytes.
    pub bytes: i64,
    /// Its SHA-256 (hex).
    pub sha256: String,
}

/// Observed state of a ValkeyBackup, rebuilt from the cluster's journal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValkeyBackupStatus {
    /// Pending, Running, Completed or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// Attempts made (an attempt interrupted by a failover or an operator
    /// restart is failed and retried, up to 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// When the last attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// `s3://<bucket>/<directory>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The bucket it is in, as resolved when it was taken (its `prefix`
    /// is part of `location`): what a restore from it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<BackupDestination>,
    /// Total bytes of the shards' RDBs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// The shards' RDBs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<BackupShardStatus>,
    /// The cluster journal's seq when the backup was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<i64>,
    /// What is happening or went wrong, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
