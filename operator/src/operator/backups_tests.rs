//! Tests of where a restore reads its backup from: the spec's
//! `restoreFrom` as the S3 target the restore's plan and init containers
//! are given.

#![allow(clippy::unwrap_used)]

use super::*;

/// `restoreFrom` as a user writes it, with `destination` `d`.
fn restore_from(d: serde_json::Value) -> (String, BackupDestination) {
    let from: RestoreSource = serde_json::from_value(json!({
        "path": "/logbook/prod/cache/cache-now/",
        "destination": d,
    }))
    .unwrap();
    (from.path.unwrap(), from.destination.unwrap())
}

#[test]
fn a_restore_destinations_endpoint_region_and_path_style_reach_its_target() {
    let (path, d) = restore_from(json!({
        "bucket": "logbook-backups",
        "region": "eu-west-1",
        "endpoint": "http://minio.storage:9000",
        "forcePathStyle": false,
        "credentialsSecret": "backup-s3",
    }));
    let target = restore_path_target(&path, &d);
    assert_eq!(
        target.endpoint.as_deref(),
        Some("http://minio.storage:9000")
    );
    assert_eq!(target.region, "eu-west-1");
    assert_eq!(target.path_style, Some(false));
    assert_eq!(target.bucket, "logbook-backups");
    assert_eq!(target.secret, "backup-s3");
    // The directory is the path alone, whatever slashes it was written with.
    assert_eq!(target.dir, "logbook/prod/cache/cache-now/");
    assert_eq!(target.cluster_dir, "");

    let (path, d) = restore_from(json!({
        "bucket": "logbook-backups",
        "endpoint": "https://s3.example.com",
        "forcePathStyle": true,
        "credentialsSecret": "backup-s3",
    }));
    let target = restore_path_target(&path, &d);
    assert_eq!(target.endpoint.as_deref(), Some("https://s3.example.com"));
    assert_eq!(target.path_style, Some(true));

    // Unset: AWS's default region, no endpoint of the spec's (the Secret's
    // `endpoint`, if any, is used), path style left to the endpoint.
    let (path, d) = restore_from(json!({
        "bucket": "logbook-backups",
        "credentialsSecret": "backup-s3",
    }));
    let target = restore_path_target(&path, &d);
    assert_eq!(target.region, "us-east-1");
    assert_eq!(target.endpoint, None);
    assert_eq!(target.path_style, None);
}
