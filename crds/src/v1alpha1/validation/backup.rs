//! Backups and restores: the destination, the schedule, retention and
//! `restoreFrom` of a ValkeyCluster ([`check_backup`]), and a
//! ValkeyBackup's spec ([`validate_backup`]). The same rules as the
//! schema's, for every path the schema does not cover, plus what CEL
//! cannot say (a cron expression that parses).

use super::error::Errors;
use super::names::{check_dns_label, check_dns_subdomain};
use super::{FieldError, FieldErrorKind};
use crate::v1alpha1::backup::{BackupDestination, ValkeyBackupSpec, parse_schedule};
use crate::v1alpha1::spec::ValkeyClusterSpec;

/// `spec.backup` and `spec.restoreFrom`; `old` is the spec in force, if
/// any.
pub(super) fn check_backup(
    spec: &ValkeyClusterSpec,
    old: Option<&ValkeyClusterSpec>,
    errors: &mut Errors,
) {
    let backup = &spec.backup;
    if let Some(d) = &backup.destination {
        check_destination("spec.backup.destination", d, errors);
    }
    if let Some(schedule) = &backup.schedule {
        if let Err(e) = parse_schedule(schedule) {
            errors.push("spec.backup.schedule", FieldErrorKind::Invalid, e);
        }
        if backup.destination.is_none() {
            errors.push(
                "spec.backup.destination",
                FieldErrorKind::Required,
                "backup.schedule needs backup.destination: the bucket the scheduled backups go to",
            );
        }
    }
    if let Some(keep) = backup.retention.keep_last {
        errors.range(
            "spec.backup.retention.keepLast",
            keep,
            1,
            1000,
            "retention.keepLast",
        );
    }
    if let Some(hours) = backup.retention.max_age_hours {
        errors.range(
            "spec.backup.retention.maxAgeHours",
            hours,
            1,
            87600,
            "retention.maxAgeHours",
        );
    }
    if backup.continuous_enabled() && backup.destination.is_none() {
        errors.push(
            "spec.backup.destination",
            FieldErrorKind::Required,
            "backup.continuous needs backup.destination: the bucket the archive goes to",
        );
    }
    let Some(restore) = &spec.restore_from else {
        return;
    };
    check_point_in_time(spec, restore, errors);
    if let Some(cluster) = &restore.cluster {
        if restore.backup.is_some() || restore.path.is_some() {
            errors.push(
                "spec.restoreFrom",
                FieldErrorKind::Invalid,
                "restoreFrom needs exactly one of backup (a ValkeyBackup), path with destination (a directory in a bucket) or cluster (a ValkeyCluster's archive, with pointInTime)",
            );
        } else if let Err(e) = check_dns_label(cluster) {
            errors.push(
                "spec.restoreFrom.cluster",
                FieldErrorKind::Invalid,
                format!("ValkeyCluster name {e}"),
            );
        }
        return;
    }
    match (&restore.backup, &restore.path) {
        (Some(_), Some(_)) | (None, None) => errors.push(
            "spec.restoreFrom",
            FieldErrorKind::Invalid,
            "restoreFrom needs exactly one of backup (a ValkeyBackup), path with destination (a directory in a bucket) or cluster (a ValkeyCluster's archive, with pointInTime)",
        ),
        (Some(name), None) => {
            if let Err(e) = check_dns_subdomain(name) {
                errors.push(
                    "spec.restoreFrom.backup",
                    FieldErrorKind::Invalid,
                    format!("ValkeyBackup name {e}"),
                );
            }
        }
        (None, Some(path)) => {
            if path.trim_matches('/').is_empty() || path.contains("//") {
                errors.push(
                    "spec.restoreFrom.path",
                    FieldErrorKind::Invalid,
                    format!("restoreFrom.path {path:?} must name a backup directory in the bucket, e.g. \"logbook/prod/cache/cache-now\""),
                );
            }
            match &restore.destination {
                Some(d) => {
                    check_destination("spec.restoreFrom.destination", d, errors);
                    // A prefix would be accepted and ignored: refused when
                    // the restore is asked for. One in force (accepted
                    // before this rule) is left alone: restoreFrom can no
                    // longer change, so refusing it would refuse every later
                    // change of the cluster, and its restore is done.
                    let in_force = old.is_some_and(|o| o.restore_from == spec.restore_from);
                    if d.prefix.is_some() && !in_force {
                        errors.push(
                            "spec.restoreFrom.destination.prefix",
                            FieldErrorKind::Forbidden,
                            "restoreFrom.destination.prefix is not used by a restore: the backup is found by restoreFrom.path alone, which already includes the prefix (e.g. \"<prefix>/<namespace>/<cluster>/<backup>\"); remove prefix and give the whole directory in path",
                        );
                    }
                }
                None => errors.push(
                    "spec.restoreFrom.destination",
                    FieldErrorKind::Required,
                    "restoreFrom.path needs restoreFrom.destination: the bucket it is in",
                ),
            }
        }
    }
}

/// `restoreFrom.pointInTime`: a time, from an archive (not a backup),
/// into a cluster that loads the append-only file.
fn check_point_in_time(
    spec: &ValkeyClusterSpec,
    restore: &crate::v1alpha1::backup::RestoreSource,
    errors: &mut Errors,
) {
    let Some(time) = &restore.point_in_time else {
        if restore.cluster.is_some() {
            errors.push(
                "spec.restoreFrom.pointInTime",
                FieldErrorKind::Required,
                "restoreFrom.cluster needs restoreFrom.pointInTime: the moment to restore to",
            );
        }
        return;
    };
    if let Err(e) = crate::v1alpha1::backup::parse_point_in_time(time) {
        errors.push("spec.restoreFrom.pointInTime", FieldErrorKind::Invalid, e);
    }
    if restore.backup.is_some() {
        errors.push(
            "spec.restoreFrom.pointInTime",
            FieldErrorKind::Invalid,
            "restoreFrom.pointInTime restores from an archive: name it by cluster or path (the cluster's directory), not backup",
        );
    }
    if !spec.storage.persistence.aof() {
        errors.push(
            "spec.storage.persistence",
            FieldErrorKind::Invalid,
            format!(
                "restoreFrom.pointInTime needs the append-only file (persistence Aof or RdbAndAof, not {:?}): the archived writes after the base are loaded as its increment",
                spec.storage.persistence
            ),
        );
    }
}

/// A restore is read when the cluster is created: it cannot be added,
/// removed or changed later.
pub(super) fn check_restore_transition(
    spec: &ValkeyClusterSpec,
    old: &ValkeyClusterSpec,
    errors: &mut Errors,
) {
    if spec.restore_from != old.restore_from {
        errors.push(
            "spec.restoreFrom",
            FieldErrorKind::Immutable,
            "restoreFrom is read when the cluster is created: it cannot be added, removed or changed later",
        );
    }
}

fn check_destination(path: &str, d: &BackupDestination, errors: &mut Errors) {
    let bucket_ok = (3..=63).contains(&d.bucket.len())
        && d.bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && !d.bucket.starts_with(['.', '-'])
        && !d.bucket.ends_with(['.', '-']);
    if !bucket_ok {
        errors.push(
            format!("{path}.bucket"),
            FieldErrorKind::Invalid,
            format!(
                "bucket {:?} is not a valid S3 bucket name (3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)",
                d.bucket
            ),
        );
    }
    if let Some(prefix) = &d.prefix
        && (prefix.is_empty() || prefix.starts_with('/') || prefix.ends_with('/'))
    {
        errors.push(
            format!("{path}.prefix"),
            FieldErrorKind::Invalid,
            format!("prefix {prefix:?} must not be empty nor start or end with '/'"),
        );
    }
    if let Some(endpoint) = &d.endpoint
        && (!(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint.chars().any(char::is_whitespace))
    {
        errors.push(
            format!("{path}.endpoint"),
            FieldErrorKind::Invalid,
            format!("endpoint {endpoint:?} must be an http:// or https:// URL"),
        );
    }
    if let Err(e) = check_dns_subdomain(&d.credentials_secret) {
        errors.push(
            format!("{path}.credentialsSecret"),
            FieldErrorKind::Invalid,
            format!("Secret name {e}"),
        );
    }
}

/// Checks a ValkeyBackup's spec.
///
/// # Errors
/// Every problem found, each naming its field.
pub fn validate_backup(spec: &ValkeyBackupSpec) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::default();
    if let Err(e) = check_dns_label(&spec.cluster) {
        errors.push(
            "spec.cluster",
            FieldErrorKind::Invalid,
            format!("cluster name {e}"),
        );
    }
    if let Some(d) = &spec.destination {
        check_destination("spec.destination", d, &mut errors);
    }
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::v1alpha1::backup::{BackupDestination, RestoreSource, ValkeyBackupSpec};
    use crate::v1alpha1::spec::ValkeyClusterSpec;
    use crate::v1alpha1::validation::validate;

    fn destination() -> BackupDestination {
        BackupDestination {
            bucket: "logbook-backups".into(),
            prefix: None,
            region: None,
            endpoint: Some("http://minio:9000".into()),
            force_path_style: None,
            credentials_secret: "backup-s3".into(),
        }
    }

    use crate::v1alpha1::validation::error_paths as paths;

    #[test]
    fn a_schedule_must_parse_and_name_a_destination() {
        let mut spec = ValkeyClusterSpec::default();
        spec.backup.schedule = Some("0 3 * * *".into());
        assert_eq!(paths(&spec), ["spec.backup.destination"]);
        spec.backup.destination = Some(destination());
        assert!(paths(&spec).is_empty());
        spec.backup.schedule = Some("0 3 * *".into());
        assert_eq!(paths(&spec), ["spec.backup.schedule"]);
        spec.backup.schedule = Some("61 3 * * *".into());
        assert_eq!(paths(&spec), ["spec.backup.schedule"]);
    }

    #[test]
    fn a_destination_is_checked_field_by_field() {
        let mut spec = ValkeyClusterSpec::default();
        let mut d = destination();
        d.bucket = "Bad_Bucket".into();
        d.prefix = Some("/x/".into());
        d.endpoint = Some("minio:9000".into());
        d.credentials_secret = "Not A Name".into();
        spec.backup.destination = Some(d);
        assert_eq!(
            paths(&spec),
            [
                "spec.backup.destination.bucket",
                "spec.backup.destination.prefix",
                "spec.backup.destination.endpoint",
                "spec.backup.destination.credentialsSecret"
            ]
        );
    }

    #[test]
    fn restore_from_names_one_source_and_cannot_change() {
        let mut spec = ValkeyClusterSpec {
            restore_from: Some(RestoreSource {
                backup: Some("demo-now".into()),
                path: Some("a/b".into()),
                destination: None,
                ..RestoreSource::default()
            }),
            ..ValkeyClusterSpec::default()
        };
        assert_eq!(paths(&spec), ["spec.restoreFrom"]);
        spec.restore_from = Some(RestoreSource {
            backup: None,
            path: Some("a/b".into()),
            destination: None,
            ..RestoreSource::default()
        });
        assert_eq!(paths(&spec), ["spec.restoreFrom.destination"]);
        let old = ValkeyClusterSpec::default();
        spec.restore_from = Some(RestoreSource {
            backup: Some("demo-now".into()),
            path: None,
            destination: None,
            ..RestoreSource::default()
        });
        let errors = validate(&spec, Some(&old)).unwrap_err();
        assert_eq!(errors[0].path, "spec.restoreFrom");
        assert!(errors[0].message.contains("when the cluster is created"));
    }

    #[test]
    fn a_valkey_backup_names_its_cluster() {
        let ok = ValkeyBackupSpec {
            cluster: "demo".into(),
            destination: None,
        };
        assert!(super::validate_backup(&ok).is_ok());
        let bad = ValkeyBackupSpec {
            cluster: "Demo!".into(),
            destination: Some(destination()),
        };
        assert_eq!(
            super::validate_backup(&bad).unwrap_err()[0].path,
            "spec.cluster"
        );
    }
}
