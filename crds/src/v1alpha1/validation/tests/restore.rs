//! The rules of [`validate`] about `restoreFrom` beyond the shape its
//! schema gives it.

use super::*;
use crate::v1alpha1::{BackupDestination, RestoreSource};

fn from_path(prefix: Option<&str>) -> RestoreSource {
    RestoreSource {
        backup: None,
        path: Some("prod/default/demo/demo-now".into()),
        destination: Some(BackupDestination {
            bucket: "logbook-backups".into(),
            prefix: prefix.map(str::to_owned),
            region: None,
            endpoint: Some("http://minio:9000".into()),
            force_path_style: None,
            credentials_secret: "backup-s3".into(),
        }),
        ..RestoreSource::default()
    }
}

#[test]
fn restore_from_destination_prefix_is_refused() {
    let mut s = spec(Topology::Replication);
    s.restore_from = Some(from_path(None));
    assert_valid(&s);
    // A restore reads the directory `path` names, which holds the whole
    // key: a prefix would be accepted and ignored.
    s.restore_from = Some(from_path(Some("prod")));
    assert_only(
        &s,
        "spec.restoreFrom.destination.prefix",
        FieldErrorKind::Forbidden,
    );
    let message = validate(&s, None).unwrap_err()[0].message.clone();
    assert!(
        message.contains("restoreFrom.path") && message.contains("includes the prefix"),
        "{message}"
    );
    // One in force already (accepted before the rule) is left alone:
    // restoreFrom cannot change, and every other change would be refused.
    let old = s.clone();
    s.replicas = Some(5);
    assert!(validate(&s, Some(&old)).is_ok());
    // Asked for now, by an update: refused with the change itself.
    let mut old = s.clone();
    old.restore_from = None;
    let paths: Vec<String> = validate(&s, Some(&old))
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(
        paths.contains(&"spec.restoreFrom.destination.prefix".to_owned()),
        "{paths:?}"
    );
}

#[test]
fn a_point_in_time_comes_from_an_archive_into_a_cluster_that_loads_the_aof() {
    let mut s = spec(Topology::Replication);
    s.storage.persistence = crate::v1alpha1::Persistence::Aof;
    s.restore_from = Some(RestoreSource {
        cluster: Some("shop".into()),
        point_in_time: Some("2026-11-30T12:00:00Z".into()),
        ..RestoreSource::default()
    });
    assert_valid(&s);
    // The archive's directory by path works too, once the cluster is gone.
    let mut by_path = from_path(None);
    by_path.path = Some("prod/default/shop".into());
    by_path.point_in_time = Some("2026-11-30T12:00:00.250+01:00".into());
    s.restore_from = Some(by_path);
    assert_valid(&s);
    // Not a time.
    s.restore_from = Some(RestoreSource {
        cluster: Some("shop".into()),
        point_in_time: Some("yesterday at noon".into()),
        ..RestoreSource::default()
    });
    assert_only(&s, "spec.restoreFrom.pointInTime", FieldErrorKind::Invalid);
    // A cluster's archive needs the time.
    s.restore_from = Some(RestoreSource {
        cluster: Some("shop".into()),
        ..RestoreSource::default()
    });
    assert_only(&s, "spec.restoreFrom.pointInTime", FieldErrorKind::Required);
    // A backup is one moment: no time.
    s.restore_from = Some(RestoreSource {
        backup: Some("shop-now".into()),
        point_in_time: Some("2026-11-30T12:00:00Z".into()),
        ..RestoreSource::default()
    });
    assert_only(&s, "spec.restoreFrom.pointInTime", FieldErrorKind::Invalid);
    // The stream after the base is loaded as the append-only file.
    s.storage.persistence = crate::v1alpha1::Persistence::Rdb;
    s.restore_from = Some(RestoreSource {
        cluster: Some("shop".into()),
        point_in_time: Some("2026-11-30T12:00:00Z".into()),
        ..RestoreSource::default()
    });
    assert_only(&s, "spec.storage.persistence", FieldErrorKind::Invalid);
}

#[test]
fn the_continuous_archive_needs_a_destination() {
    let mut s = spec(Topology::Replication);
    s.backup.continuous = Some(crate::v1alpha1::ContinuousArchive { enabled: true });
    assert_only(&s, "spec.backup.destination", FieldErrorKind::Required);
}
