//! `logbook-operator restore-fetch`: the init container of a cluster created from
//! a backup (`spec.restoreFrom`). In the pod of ordinal `n` it downloads
//! shard `n`'s RDB from the bucket into the data volume, checking its size,
//! SHA-256 and RDB checksum as it streams, so that Valkey loads it when it
//! starts. With `appendonly yes` the RDB also becomes the append-only
//! file's base (Valkey then loads the AOF, not `dump.rdb`).
//!
//! A point-in-time restore (the plan has a `pitr` part for this pod)
//! loads the shard's archive chain instead: its base RDB and every
//! archived command received by the time asked for, written as Valkey's
//! multi-part append-only file (base, increment, manifest), which needs
//! `appendonly yes`. It is built in a staging directory and renamed into
//! place whole, so a pod killed part-way starts again from nothing.
//!
//! It does nothing (and succeeds) when there is no plan (the restore
//! completed and the operator removed it), when the plan has no shard for
//! this pod, or when the volume already holds data: a pod that restarts
//! keeps what it has. A failure exits non-zero with what and why: the pod
//! stays in its init phase, where `kubectl describe` and the logs show it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::backup::pitr::{self, Replayed};
use crate::backup::store::{BackupStore, S3Credentials, S3Target};
use crate::cli_error::{Error, Result};
use crate::resources::restore::{PLAN_KEY, PointInTimeFetch, RestoreFetchPlan};

/// `logbook-operator restore-fetch` options.
#[derive(Debug, Args)]
pub struct RestoreFetchArgs {
    /// Where the restore Secret is mounted (plan and credentials).
    #[arg(long)]
    pub plan_dir: PathBuf,
    /// The data volume.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// This pod's name, whose ordinal picks the shard (default:
    /// `$POD_NAME`).
    #[arg(long)]
    pub pod: Option<String>,
}

/// Files that mean the volume holds data already.
const DATA_FILES: [&str; 3] = ["dump.rdb", "appendonlydir", "nodes.conf"];
/// The append-only file's base and manifest (Valkey's defaults).
const AOF_DIR: &str = "appendonlydir";
const AOF_BASE: &str = "appendonly.aof.1.base.rdb";
const AOF_MANIFEST: &str = "appendonly.aof.manifest";
const AOF_INCR: &str = "appendonly.aof.1.incr.aof";
/// Where a point-in-time restore builds its append-only file before
/// renaming it into place (not one of [`DATA_FILES`]: a leftover from a
/// killed attempt is removed and rebuilt).
const STAGING_DIR: &str = ".restore-staging";

/// Runs `logbook restore-fetch`.
///
/// # Errors
/// [`Error::RestoreFetch`] naming what failed.
pub fn run(args: RestoreFetchArgs, out: &mut dyn Write) -> Result<()> {
    let fail = |m: String| Error::RestoreFetch(m);
    let plan_file = args.plan_dir.join(PLAN_KEY);
    let Ok(text) = std::fs::read_to_string(&plan_file) else {
        writeln!(
            out,
            "no restore plan at {}: nothing to load",
            plan_file.display()
        )?;
        return Ok(());
    };
    let plan = RestoreFetchPlan::parse(&text).map_err(fail)?;
    let pod = args
        .pod
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .ok_or_else(|| fail("no --pod and no POD_NAME: which pod is this?".to_owned()))?;
    let ordinal: u32 = pod
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| fail(format!("pod name {pod:?} ends in no ordinal")))?;
    let Some((key, bytes, sha)) = plan.shards.get(&ordinal) else {
        writeln!(out, "{}: the plan loads no shard into this pod", pod)?;
        return Ok(());
    };
    let point_in_time = plan.point_in_time.get(&ordinal);
    if point_in_time.is_some() && !plan.aof {
        return Err(fail(format!(
            "{pod}: a point-in-time restore replays archived commands into the append-only \
             file, which this cluster does not keep: set storage.persistence to use \
             appendonly yes"
        )));
    }
    if let Some(present) = DATA_FILES
        .iter()
        .map(|f| args.data_dir.join(f))
        .find(|p| p.exists())
    {
        writeln!(
            out,
            "{}: {} exists: the volume holds data, which is kept (not overwritten)",
            pod,
            present.display()
        )?;
        return Ok(());
    }
    let secret = |name: &str| {
        std::fs::read_to_string(args.plan_dir.join(name))
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let credentials = S3Credentials {
        access_key_id: secret(logbook_crds::v1alpha1::ACCESS_KEY_ID_KEY)
            .ok_or_else(|| fail("the restore Secret has no AWS_ACCESS_KEY_ID".to_owned()))?,
        secret_access_key: secret(logbook_crds::v1alpha1::SECRET_ACCESS_KEY_KEY)
            .ok_or_else(|| fail("the restore Secret has no AWS_SECRET_ACCESS_KEY".to_owned()))?,
        session_token: secret(logbook_crds::v1alpha1::SESSION_TOKEN_KEY),
    };
    let target = S3Target {
        bucket: plan.bucket.clone(),
        region: plan.region.clone(),
        endpoint: plan.endpoint.clone(),
        path_style: plan.path_style,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    if let Some(pitr) = point_in_time {
        let (verified, replayed) = runtime.block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let store = BackupStore::new(&target, &credentials).map_err(|e| fail(e.to_string()))?;
            fetch_point_in_time(&store, &args.data_dir, key, *bytes, sha, pitr).await
        })?;
        let cut = &replayed.cut;
        writeln!(
            out,
            "{pod}: loaded shard {ordinal} as of {}: base s3://{}/{key} ({} bytes, SHA-256 {}, \
             RDB version {}), then {} segment(s) of {}: {} command(s) taken up to offset {}{}, \
             {} record(s) received later left out",
            pitr::time(pitr.until_ms),
            plan.bucket,
            verified.bytes,
            verified.sha256,
            verified.rdb_version,
            replayed.segments,
            pitr.chain_dir,
            cut.commands,
            cut.end,
            cut.last_ms
                .map(|ms| format!(" (last received {})", pitr::time(ms)))
                .unwrap_or_default(),
            cut.left_out,
        )?;
        return Ok(());
    }
    let dump = args.data_dir.join("dump.rdb");
    let verified = runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = BackupStore::new(&target, &credentials).map_err(|e| fail(e.to_string()))?;
        crate::backup::fetch_to_file(&store, key, *bytes, sha, &dump)
            .await
            .map_err(|e| fail(e.to_string()))
    })?;
    if plan.aof {
        make_aof_base(&args.data_dir, &dump).map_err(fail)?;
    }
    writeln!(
        out,
        "{}: loaded shard {ordinal} from s3://{}/{key}: {} bytes, SHA-256 {}, RDB version {}{}",
        pod,
        plan.bucket,
        verified.bytes,
        verified.sha256,
        verified.rdb_version,
        if plan.aof {
            " (also the append-only file's base)"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// Makes `dump` the base of a new append-only file in `data`.
fn make_aof_base(data: &Path, dump: &Path) -> std::result::Result<(), String> {
    let dir = data.join(AOF_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let base = dir.join(AOF_BASE);
    std::fs::copy(dump, &base).map_err(|e| format!("copying to {}: {e}", base.display()))?;
    let manifest = dir.join(AOF_MANIFEST);
    std::fs::write(&manifest, format!("file {AOF_BASE} seq 1 type b\n"))
        .map_err(|e| format!("writing {}: {e}", manifest.display()))
}

/// Builds the append-only file of a point-in-time restore in a staging
/// directory (the base fetched and checked, the increment replayed from
/// the archive, the manifest naming both) and renames it into `data`.
async fn fetch_point_in_time(
    store: &BackupStore,
    data: &Path,
    key: &str,
    bytes: u64,
    sha: &str,
    fetch: &PointInTimeFetch,
) -> Result<(crate::backup::NodeVerified, Replayed)> {
    let fail = |m: String| Error::RestoreFetch(m);
    let staging = data.join(STAGING_DIR);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| {
            fail(format!(
                "removing {} left by an earlier attempt: {e}",
                staging.display()
            ))
        })?;
    }
    let dir = staging.join(AOF_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    let verified = crate::backup::fetch_to_file(store, key, bytes, sha, &dir.join(AOF_BASE))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let replayed = pitr::replay_until(store, fetch)
        .await
        .map_err(|e| fail(e.to_string()))?;
    write_synced(&dir.join(AOF_INCR), &replayed.aof).map_err(fail)?;
    write_synced(
        &dir.join(AOF_MANIFEST),
        format!("file {AOF_BASE} seq 1 type b\nfile {AOF_INCR} seq 1 type i\n").as_bytes(),
    )
    .map_err(fail)?;
    sync_dir(&dir);
    let target = data.join(AOF_DIR);
    std::fs::rename(&dir, &target).map_err(|e| {
        fail(format!(
            "renaming {} to {}: {e}",
            dir.display(),
            target.display()
        ))
    })?;
    sync_dir(data);
    // Only the empty staging directory is left: its removal may fail
    // harmlessly (the next attempt finds the data and keeps it).
    let _ = std::fs::remove_dir_all(&staging);
    Ok((verified, replayed))
}

/// Writes `bytes` to `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    let mut file =
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Syncs a directory so the names in it are durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
