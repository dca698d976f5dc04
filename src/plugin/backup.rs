//! `kubectl valkey backup <name> [--wait [--timeout 10m]]`: creates a
//! `ValkeyBackup` of the cluster now, to the cluster's own destination
//! (`spec.backup.destination`), and prints its name; with `--wait`, waits
//! for it to complete or fail and prints the outcome from its status
//! (size, duration, location).
//!
//! The operator takes the backup and journals it; the plugin only creates
//! the object and reads its status. It never reads the bucket's Secret.

use std::io::Write;
use std::time::{Duration, Instant};

use kube::api::{ObjectMeta, PostParams};
use logbook_crds::{BackupPhase, ValkeyBackup, ValkeyBackupSpec, ValkeyBackupStatus};

use super::connect::Kube;
use super::error::{PluginError, Result};
use super::format::from_kube;

/// The RBAC resource name of ValkeyBackups.
pub const BACKUPS: &str = "valkeybackups.valkey.logbook.dev";
/// How often `--wait` looks at the backup.
const POLL: Duration = Duration::from_millis(500);

/// The name of an on-demand backup of `cluster` asked for at `now`:
/// `<cluster>-<yyyymmdd>-<hhmmss>` (UTC).
#[must_use]
pub fn backup_name(cluster: &str, now: k8s_openapi::jiff::Timestamp) -> String {
    format!("{cluster}-{}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Runs `backup`.
///
/// # Errors
/// [`PluginError::ClusterNotFound`]; [`PluginError::Refused`] when the
/// cluster has no backup destination or the backup fails;
/// [`PluginError::Timeout`]; API errors.
pub async fn run(
    kube: &Kube,
    name: &str,
    wait: Option<Duration>,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    if cluster.spec.backup.destination.is_none() {
        return Err(PluginError::Refused(format!(
            "valkeycluster {name:?} has no backup destination: set spec.backup.destination (a bucket and its credentials Secret; see docs/backups.md), then run `kubectl valkey backup {name}` again"
        )));
    }
    let api = kube.api::<ValkeyBackup>();
    let mut backup_name = backup_name(name, k8s_openapi::jiff::Timestamp::now());
    let mut object = ValkeyBackup {
        metadata: ObjectMeta {
            name: Some(backup_name.clone()),
            namespace: Some(kube.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: ValkeyBackupSpec {
            cluster: name.to_owned(),
            destination: None,
        },
        status: None,
    };
    let mut tries = 0_u32;
    loop {
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => break,
            // Two backups asked for in the same second: the next name.
            Err(kube::Error::Api(status)) if status.code == 409 && tries < 5 => {
                tries = tries.saturating_add(1);
                backup_name = format!(
                    "{}-{tries}",
                    self::backup_name(name, k8s_openapi::jiff::Timestamp::now())
                );
                object.metadata.name = Some(backup_name.clone());
            }
            Err(e) => {
                return Err(PluginError::from_kube(
                    &kube.call("create", BACKUPS, Some(&backup_name)),
                    e,
                ));
            }
        }
    }
    writeln!(
        out,
        "valkeybackup/{backup_name} created: a backup of valkeycluster/{name} now, to its spec.backup.destination."
    )?;
    let Some(timeout) = wait else {
        writeln!(
            out,
            "Follow it with `kubectl get valkeybackup {backup_name} -w`, or run with --wait."
        )?;
        return Ok(());
    };
    out.flush()?;
    let deadline = Instant::now() + timeout;
    let mut last_phase = None;
    loop {
        let current = api.get_opt(&backup_name).await.map_err(|e| {
            PluginError::from_kube(&kube.call("get", BACKUPS, Some(&backup_name)), e)
        })?;
        let Some(current) = current else {
            return Err(PluginError::Refused(format!(
                "valkeybackup {backup_name:?} was deleted while waiting for it"
            )));
        };
        let status = current.status.unwrap_or_default();
        if status.phase != last_phase {
            if let Some(phase) = status.phase {
                writeln!(
                    out,
                    "{phase:?}{}",
                    status
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )?;
                out.flush()?;
            }
            last_phase = status.phase;
        }
        match status.phase {
            Some(BackupPhase::Completed) => {
                writeln!(out, "{}", outcome_line(&backup_name, &status))?;
                return Ok(());
            }
            Some(BackupPhase::Failed) => {
                return Err(PluginError::Refused(format!(
                    "valkeybackup {backup_name:?} failed after {} attempt(s): {}",
                    status.attempts.unwrap_or(0),
                    status.message.as_deref().unwrap_or("no reason given")
                )));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(PluginError::Timeout(format!(
                "valkeybackup {backup_name:?} is still {} after {}s; it goes on: `kubectl get valkeybackup {backup_name}`",
                status
                    .phase
                    .map_or_else(|| "not started".to_owned(), |p| format!("{p:?}")),
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What a completed backup holds: size, duration, shards, location.
#[must_use]
pub fn outcome_line(name: &str, status: &ValkeyBackupStatus) -> String {
    let duration = match (&status.started_at, &status.completed_at) {
        (Some(start), Some(end)) => {
            // Kubernetes times are whole seconds.
            match from_kube(end).millis_since(from_kube(start)).max(0) / 1000 {
                0 => " in under a second".to_owned(),
                s => format!(" in {s}s"),
            }
        }
        _ => String::new(),
    };
    format!(
        "valkeybackup/{name} completed{duration}: {} in {} shard RDB(s), at {}",
        status.bytes.map_or_else(|| "? bytes".to_owned(), size),
        status.shards.len(),
        status.location.as_deref().unwrap_or("an unknown location")
    )
}

/// Bytes for people: `512 B`, `3.2 KiB`, `41.0 MiB`, `1.2 GiB`.
#[must_use]
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0_usize;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("TiB"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn names_are_the_cluster_and_the_utc_second() {
        let at: k8s_openapi::jiff::Timestamp = "2026-11-30T17:05:09Z".parse().unwrap();
        assert_eq!(backup_name("cache", at), "cache-20261130-170509");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 * 1024 + 300), "3.3 KiB");
        assert_eq!(size(41 * 1024 * 1024), "41.0 MiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024 / 4), "1.2 GiB");
    }

    #[test]
    fn the_outcome_says_size_duration_and_location() {
        let t = |s: &str| Time(s.parse().unwrap());
        let status = ValkeyBackupStatus {
            phase: Some(BackupPhase::Completed),
            started_at: Some(t("2026-11-30T17:00:00Z")),
            completed_at: Some(t("2026-11-30T17:00:02Z")),
            bytes: Some(2048),
            location: Some("s3://b/logbook/default/cache/cache-1/".to_owned()),
            ..ValkeyBackupStatus::default()
        };
        assert_eq!(
            outcome_line("cache-1", &status),
            "valkeybackup/cache-1 completed in 2s: 2.0 KiB in 0 shard RDB(s), at s3://b/logbook/default/cache/cache-1/"
        );
    }
}
