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

/// `spec.backup` and `spec.restoreFrom`.
pub(super) fn check_backup(spec: &ValkeyClusterSpec, errors: &mut Errors) {
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
    let Some(restore) = &spec.restore_from else {
        return;
    };
    match (&restore.backup, &restore.path) {
        (Some(_), Some(_)) | (None, None) => errors.push(
            "spec.restoreFrom",
            FieldErrorKind::Invalid,
            "restoreFrom needs exactly one of backup (a ValkeyBackup) or path with destination (a backup directory in a bucket)",
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
                Some(d) => check_destination("spec.restoreFrom.destination", d, errors),
                None => errors.push(
                    "spec.restoreFrom.destination",
                    FieldErrorKind::Required,
                    "restoreFrom.path needs restoreFrom.destination: the bucket it is in",
                ),
            }
        }
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
