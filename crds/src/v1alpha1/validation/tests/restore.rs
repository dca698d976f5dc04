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
