//! The continuous archive's intents: turning it on and off (the stream
//! itself is followed by the cluster's archive task, `operator/archive.rs`),
//! retention's deletion of one chain, and, for a point-in-time restore of
//! a Cluster, giving up the slots a pod claimed that another shard owned
//! at the time restored to.

use logbook_journal::{BackupTarget, Event, SlotRange};

use super::backup::{credentials_error, delete_under};
use super::cluster::{answer, reported};
use super::{ActError, Done, Target, valkey_err};
use crate::backup::credentials;
use crate::valkey::ValkeyClient;

/// Keys asked for per `CLUSTER GETKEYSINSLOT` while a slot is emptied.
const KEYS_PER_ROUND: u32 = 1000;

/// `Archive`: the destination's Secret must be usable; the archive task
/// then follows every shard into `archive.dir`.
pub(super) async fn start(
    client: &kube::Client,
    target: Target<'_>,
    archive: &BackupTarget,
) -> Result<Done, ActError> {
    credentials::resolve(client, &target.meta.namespace, archive)
        .await
        .map_err(credentials_error)?;
    Ok(Done::said(format!(
        "the archive is on: every shard's write stream into s3://{}/{}",
        archive.bucket, archive.dir
    )))
}

/// `DeleteArchiveChain`: every object under `dir`, which must be the
/// chain's own directory inside this cluster's archive.
pub(super) async fn delete_chain(
    client: &kube::Client,
    target: Target<'_>,
    chain: &str,
    dir: &str,
) -> Result<Done, ActError> {
    let archive = &target.state.backups.archive;
    let view = archive
        .chains
        .get(chain)
        .ok_or_else(|| ActError::Refused(format!("archive chain {chain} is not known")))?;
    let own = format!("{}{chain}/", view.start.dir);
    if dir != own
        || !view
            .start
            .dir
            .ends_with(crate::backup::segment::ARCHIVE_DIR)
    {
        return Err(ActError::Refused(format!(
            "archive chain {chain}'s directory {dir} is not {own}: refusing to delete it"
        )));
    }
    let place = archive
        .target
        .clone()
        .or_else(|| archive.wanted.clone())
        .ok_or_else(|| {
            ActError::Refused(format!(
                "archive chain {chain}: no destination is known to delete it from"
            ))
        })?;
    let deleted = delete_under(client, target, &place, dir, &format!("chain {chain}")).await?;
    Ok(Done {
        detail: format!("deleted archive chain {chain}: {deleted} objects under {dir}"),
        events: vec![Event::ArchiveChainDeleted {
            chain: chain.to_owned(),
            objects: deleted,
        }],
        password: None,
    })
}

/// `DropForeignSlots`: deletes every key of `slots` on `pod`, then gives
/// the slots up. Idempotent: a slot already empty and unassigned is
/// skipped.
pub(super) async fn drop_foreign_slots(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    slots: &[SlotRange],
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    let mut deleted = 0u64;
    for range in slots {
        for slot in range.start..=range.end {
            loop {
                let keys = valkey
                    .cluster_getkeysinslot(addr, slot, KEYS_PER_ROUND)
                    .await
                    .map_err(valkey_err(format!("listing {pod}'s keys in slot {slot}")))?;
                if keys.is_empty() {
                    break;
                }
                deleted = deleted.saturating_add(valkey.unlink(addr, &keys).await.map_err(
                    valkey_err(format!(
                        "deleting {pod}'s keys in slot {slot} ({deleted} deleted before)"
                    )),
                )?);
            }
        }
    }
    let before = answer(valkey, target, pod).await?;
    let claimed = logbook_journal::cluster::merge_slots(
        slots
            .iter()
            .flat_map(|r| r.start..=r.end)
            .filter(|s| {
                before
                    .report
                    .slots
                    .iter()
                    .any(|o| o.start <= *s && *s <= o.end)
            })
            .collect(),
    );
    valkey
        .cluster_delslotsrange(addr, &claimed)
        .await
        .map_err(valkey_err(format!(
            "giving up slots {} on {pod} (their {deleted} keys deleted)",
            logbook_journal::cluster::describe_slots(&claimed)
        )))?;
    let after = answer(valkey, target, pod).await?;
    Ok(Done {
        detail: format!(
            "{pod}: {deleted} keys of slots {} deleted and the slots given up",
            logbook_journal::cluster::describe_slots(slots)
        ),
        events: reported(target, pod, &after).into_iter().collect(),
        password: None,
    })
}
