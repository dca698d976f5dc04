//! What the parts of the projection add to the status: an upgrade, a
//! restore, backups, the defaults, TLS and its certificate, hibernation,
//! a standby.

use super::*;

/// The Progressing reason while an image cannot run this cluster (its
/// preflight refused it; the shell also raises a Warning Event).
pub const REASON_UPGRADE_REFUSED: &str = "UpgradeRefused";
/// The Progressing reason while the canary of an upgrade failed.
pub const REASON_CANARY_FAILED: &str = "CanaryFailed";
/// `status.upgrade` phases.
pub const UPGRADE_PREFLIGHT: &str = "Preflight";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_REFUSED: &str = "Refused";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_CANARY: &str = "Canary";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_CANARY_FAILED: &str = "CanaryFailed";
/// See [`UPGRADE_PREFLIGHT`].
pub const UPGRADE_ROLLING: &str = "Rolling";

/// `status.upgrade`: a change of image under way, absent when every pod
/// known runs the spec's image.
pub(super) fn upgrade_status(
    view: &ClusterView<'_>,
) -> Option<logbook_crds::v1alpha1::UpgradeStatus> {
    use crate::decide::upgrade;
    let image = &view.spec.image;
    let from = upgrade::others(view);
    if from.is_empty() {
        return None;
    }
    let version = upgrade::target_version(view).map(str::to_owned);
    let (phase, canary, message) = match upgrade::held(view) {
        Some(held) => (
            if held.refused {
                UPGRADE_REFUSED
            } else {
                UPGRADE_PREFLIGHT
            },
            None,
            held.why,
        ),
        None => {
            let hold = view
                .roll()
                .and_then(|r| upgrade::canary_hold(view, &r.pods, &r.outdated));
            match hold {
                Some(h) => (
                    if h.failed {
                        UPGRADE_CANARY_FAILED
                    } else {
                        UPGRADE_CANARY
                    },
                    Some(h.pod),
                    h.why,
                ),
                None => (
                    UPGRADE_ROLLING,
                    None,
                    format!(
                        "{image} rolls out, replicas first, primaries last by switchover; {} pods still run {}",
                        view.state
                            .versions
                            .values()
                            .filter(|v| v.image != *image)
                            .count(),
                        from.join(", ")
                    ),
                ),
            }
        }
    };
    Some(logbook_crds::v1alpha1::UpgradeStatus {
        image: image.clone(),
        version,
        from,
        phase: phase.to_owned(),
        canary,
        message,
    })
}

/// `status.restore` phase: the backup is being read and verified.
pub const RESTORE_VERIFYING: &str = "Verifying";
/// `status.restore` phase: the backup cannot be restored.
pub const RESTORE_REFUSED: &str = "Refused";
/// `status.restore` phase: pods are loading the verified backup.
pub const RESTORE_RESTORING: &str = "Restoring";
/// `status.restore` phase: done.
pub const RESTORE_COMPLETED: &str = "Completed";

/// `status.backup`: the last completed backup, one running, the
/// schedule's next fire (from the journaled schedule, no clock).
pub(super) fn backup_status(
    state: &ClusterState,
) -> Option<logbook_crds::v1alpha1::ClusterBackupStatus> {
    let part = &state.backups;
    let last = part.last_completed();
    let running = part.running().map(|(o, _)| o.to_owned());
    let next = part.schedule.as_ref().and_then(|(schedule, since)| {
        let after = part
            .last_due
            .as_ref()
            .map_or(*since, |(at, _)| (*at).max(*since));
        logbook_crds::v1alpha1::next_fire_ms(schedule, after.as_micros() / 1000)
    });
    let archive = archive_status(&part.archive);
    if last.is_none() && running.is_none() && next.is_none() && archive.is_none() {
        return None;
    }
    Some(logbook_crds::v1alpha1::ClusterBackupStatus {
        last_completed: last.map(|(o, _, _)| o.to_owned()),
        last_completed_at: last.map(|(_, at, _)| kube_time(at)),
        last_bytes: last.and_then(|(_, _, b)| i64::try_from(b).ok()),
        running,
        next_scheduled_at: next.map(|ms| kube_time(Timestamp::EPOCH.plus_millis(ms))),
        archive,
    })
}

/// `status.backup.archive`: while it runs or keeps chains.
fn archive_status(
    archive: &logbook_journal::projection::backups::ArchivePart,
) -> Option<logbook_crds::v1alpha1::ArchiveStatus> {
    if archive.target.is_none() && archive.chains.is_empty() {
        return None;
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let last_break = archive
        .chains
        .iter()
        .filter_map(|(name, c)| c.ended.as_ref().map(|e| (e.0, name, &e.2)))
        .max_by_key(|(at, name, _)| (*at, (*name).clone()))
        .map(|(at, name, why)| format!("chain {name} ended at {at}: {why}"));
    Some(logbook_crds::v1alpha1::ArchiveStatus {
        location: archive
            .target
            .as_ref()
            .map(|t| format!("s3://{}/{}", t.bucket, t.dir)),
        live_chains: count(archive.live().count()),
        chains: count(archive.chains.len()),
        oldest_restorable_time: archive.oldest_restorable().map(kube_time),
        last_break,
    })
}

/// `status.tls`: the certificate as last journaled, while TLS is on.
/// What the defaults layers gave the spec in force: absent when no layer
/// but the cluster's own reaches it. Rolling while the spec a change of
/// the defaults brought is still being applied (a roll that cannot finish,
/// a pod that does not start on the new values, keeps it rolling: the
/// change waits on other clusters until it is fixed).
pub(super) fn defaults_status(
    state: &ClusterState,
    progressing: bool,
) -> Option<logbook_crds::ClusterDefaultsStatus> {
    let layers = state.spec_layers.as_ref()?;
    layers.layers?;
    let in_force = layers.fingerprint.is_some()
        && state.desired.as_ref().map(|d| d.fingerprint) == layers.fingerprint;
    let plan = state
        .desired_spec()
        .and_then(Result::ok)
        .and_then(|spec| spec.plan);
    Some(logbook_crds::ClusterDefaultsStatus {
        plan,
        fields: layers
            .sources
            .iter()
            .map(|(field, from)| logbook_crds::FieldSource {
                field: field.clone(),
                from: from.clone(),
            })
            .collect(),
        rolling: layers.from_defaults && in_force && progressing,
        waiting: None,
    })
}

pub(super) fn tls_status(
    view: &ClusterView<'_>,
) -> Option<logbook_crds::v1alpha1::ClusterTlsStatus> {
    if !view.spec.tls.enabled {
        return None;
    }
    let cert = view.state.tls.certificate.as_ref()?;
    Some(logbook_crds::v1alpha1::ClusterTlsStatus {
        secret: cert.secret.clone(),
        issuer: cert.source.clone(),
        not_after: cert.not_after.map(kube_time),
        problem: cert.problem.clone(),
    })
}

/// `status.restore`, when the spec names one.
pub(super) fn restore_status(
    view: &ClusterView<'_>,
) -> Option<logbook_crds::v1alpha1::RestoreStatus> {
    let from = view.spec.restore_from.as_ref()?;
    let source = restore_source_name(from);
    let r = &view.state.backups.restore;
    let (phase, message) = if let Some(done) = r.completed {
        (
            RESTORE_COMPLETED,
            Some(format!(
                "completed at {done}{}",
                r.plan
                    .as_ref()
                    .map(|p| format!(
                        ": {} shard(s) from s3://{}/{}",
                        p.shards.len(),
                        p.target.bucket,
                        p.target.dir
                    ))
                    .unwrap_or_default()
            )),
        )
    } else if let Some(plan) = &r.plan {
        let failing = fetch_failures(r);
        (
            RESTORE_RESTORING,
            Some(if failing.is_empty() {
                format!(
                    "verified {} shard(s) from s3://{}/{}; the pods load them",
                    plan.shards.len(),
                    plan.target.bucket,
                    plan.target.dir
                )
            } else {
                format!(
                    "verified {} shard(s) from s3://{}/{}; {failing} (retried)",
                    plan.shards.len(),
                    plan.target.bucket,
                    plan.target.dir
                )
            }),
        )
    } else if let Some((reason, retry, _)) = &r.refused {
        if *retry {
            (RESTORE_VERIFYING, Some(format!("{reason}; reading again")))
        } else {
            (RESTORE_REFUSED, Some(reason.clone()))
        }
    } else {
        (
            RESTORE_VERIFYING,
            Some(
                "reading the manifest and verifying every object before anything is created"
                    .to_owned(),
            ),
        )
    };
    Some(logbook_crds::v1alpha1::RestoreStatus {
        source,
        phase: phase.to_owned(),
        message,
    })
}

/// The pods whose restore container failed, and how: empty when none.
pub(super) fn fetch_failures(r: &logbook_journal::projection::backups::RestoreState) -> String {
    r.fetch_failures
        .iter()
        .map(|(pod, failure)| format!("pod {pod} cannot load its shard: {failure}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How `restoreFrom` is named in the status and the journal.
pub fn restore_source_name(from: &logbook_crds::RestoreSource) -> String {
    let at = from
        .point_in_time
        .as_deref()
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    if let Some(cluster) = &from.cluster {
        return format!("the archive of ValkeyCluster {cluster}{at}");
    }
    if !at.is_empty()
        && let Some(p) = &from.path
    {
        return format!(
            "the archive in s3://{}/{}{at}",
            from.destination.as_ref().map_or("?", |d| d.bucket.as_str()),
            p.trim_matches('/')
        );
    }
    match (&from.backup, &from.path) {
        (Some(b), _) => format!("ValkeyBackup {b}"),
        (None, Some(p)) => format!(
            "s3://{}/{}",
            from.destination.as_ref().map_or("?", |d| d.bucket.as_str()),
            p.trim_matches('/')
        ),
        (None, None) => "nothing".to_owned(),
    }
}

/// The `CertificateReady` condition of a TLS cluster: (true?, reason,
/// message); `None` without TLS.
pub(super) fn certificate_condition(
    view: &ClusterView<'_>,
) -> Option<(bool, &'static str, String)> {
    if !view.spec.tls.enabled {
        return None;
    }
    let tls = &view.state.tls;
    let Some(record) = tls.certificate.as_ref() else {
        return Some((
            false,
            "NotRead",
            "the certificate Secret is not read yet".to_owned(),
        ));
    };
    if let Some(problem) = &record.problem {
        return Some((false, "CertificateMissing", problem.clone()));
    }
    let Some(wanted) = tls.wanted() else {
        return Some((
            false,
            "CertificateMissing",
            format!("Secret {} holds no certificate yet", record.secret),
        ));
    };
    let stale: Vec<String> = view
        .pods()
        .iter()
        .filter(|p| tls.serves(p.name).is_some_and(|fp| fp != wanted))
        .map(|p| p.name.to_owned())
        .collect();
    let short = wanted.get(..16).unwrap_or(wanted);
    if !stale.is_empty() {
        return Some((
            false,
            "Reloading",
            format!(
                "{} serve another certificate than {short} in Secret {}; reloading",
                stale.join(", "),
                record.secret
            ),
        ));
    }
    let expiry = record
        .not_after
        .map(|t| format!(", valid until {t}"))
        .unwrap_or_default();
    Some((
        true,
        "Served",
        format!(
            "every answering node serves certificate {short} from Secret {} ({}){expiry}",
            record.secret, record.source
        ),
    ))
}

/// The phase of a hibernation, with what the status says of it: `None`
/// when the cluster is neither hibernating, asleep nor waking.
pub(super) fn hibernation_phase(view: &ClusterView<'_>) -> Option<(ClusterPhase, String)> {
    let state = view.state;
    match (view.spec.hibernated, state.hibernation.as_ref()) {
        (false, None) => None,
        (true, None) => Some((
            ClusterPhase::Hibernating,
            match crate::decide::hibernation::busy(view) {
                Some(why) => format!("hibernation waits for {why} to end"),
                None => {
                    let missing = crate::decide::sentinel::unheld(view).1;
                    if missing.is_empty() {
                        "hibernating: its data is being made durable".to_owned()
                    } else {
                        format!(
                            "hibernation waits for the Sentinels to hold their failovers while writes are paused: {}",
                            missing.join("; ")
                        )
                    }
                }
            },
        )),
        (true, Some(h)) if state.pods.is_empty() && state.sentinel.pods.is_empty() => Some((
            ClusterPhase::Hibernated,
            format!(
                "hibernated since {}: no pod runs; volumes, Services and Secrets are kept; unset spec.hibernated to wake it",
                h.since
            ),
        )),
        (true, Some(_)) => Some((
            ClusterPhase::Hibernating,
            format!(
                "hibernating: data durable, {} pods still stopping",
                state.pods.len() + state.sentinel.pods.len()
            ),
        )),
        (false, Some(h)) => Some((
            ClusterPhase::Waking,
            match (
                crate::decide::hibernation::not_back(view),
                crate::decide::hibernation::wake_primary(view),
                h.primaries.as_slice(),
            ) {
                (waiting, _, _) if !waiting.is_empty() => {
                    let partial =
                        matches!(view.topology(), Topology::Replication | Topology::Sentinel);
                    match crate::decide::hibernation::wake_deadline(view) {
                        Some(deadline) if partial && view.state.last_at < deadline => format!(
                            "waking: not back yet: {}; it wakes with the pods back (its primary among them) {} s after it was asked to, if these are not back by then",
                            waiting.join(", "),
                            crate::decide::hibernation::wake_wait_micros(view) / 1_000_000
                        ),
                        _ if partial => format!(
                            "waking held: not back: {}; the primary it slept with (or a pod holding all it made durable) must be among the pods back before any is given writes",
                            waiting.join(", ")
                        ),
                        _ => format!(
                            "waking: every pod must answer before any is given writes (a {:?} keeps its data on each); not back yet: {}",
                            view.topology(),
                            waiting.join(", ")
                        ),
                    }
                }
                (_, Err(why), _) => format!("waking held: {why}"),
                (_, Ok(Some(primary)), [slept]) if primary != *slept => format!(
                    "waking: {slept} holds less than it made durable; {primary} will be primary once every pod answers"
                ),
                (_, _, [primary]) if view.topology() != Topology::Cluster => {
                    format!("waking: {primary} will be primary again once every pod answers")
                }
                _ => "waking: every pod comes back as it was".to_owned(),
            },
        )),
    }
}

/// `status.standby` phases.
pub const STANDBY_WAITING: &str = "Waiting";
/// The standby follows its source within its lag bound.
pub const STANDBY_FOLLOWING: &str = "Following";
/// The standby is past its lag bound.
pub const STANDBY_BEHIND: &str = "Behind";
/// The source cannot be read.
pub const STANDBY_SOURCE_UNREADABLE: &str = "SourceUnreadable";
/// The standby was promoted.
pub const STANDBY_PROMOTED: &str = "Promoted";

/// `status.standby`: a standby's source and lag, or its promotion; absent
/// for a cluster that never was one.
pub(super) fn standby_status(
    view: &ClusterView<'_>,
) -> Option<logbook_crds::v1alpha1::StandbyStatus> {
    let known = view.state.standby.as_ref();
    let from = view.spec.replicate_from.as_ref();
    if from.is_none() && known.is_none_or(|k| k.promoted.is_none() && k.leader.is_none()) {
        return None;
    }
    let source = match (from, known) {
        (Some(_), _) => crate::decide::standby::described_source(view).unwrap_or_default(),
        (None, Some(k)) => k
            .leader
            .as_ref()
            .map(|(_, h, p)| format!("{h}:{p}"))
            .or_else(|| k.address.as_ref().map(|(h, p)| format!("{h}:{p}")))
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    let int = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
    let mut out = logbook_crds::v1alpha1::StandbyStatus {
        source: source.clone(),
        leader: known
            .and_then(|k| k.leader.as_ref())
            .map(|(p, _, _)| p.clone()),
        lag_bytes: int(known.and_then(|k| k.lag)),
        source_offset: int(known.and_then(|k| k.source_offset)),
        offset: int(known.and_then(|k| k.offset)),
        observed_at: known.and_then(|k| k.observed).map(kube_time),
        ..Default::default()
    };
    if let Some(p) = known.and_then(|k| k.promoted.as_ref()) {
        out.phase = STANDBY_PROMOTED.to_owned();
        out.leader = None;
        let mut behind = logbook_journal::projection::replication::promotion_lag(
            p.offset,
            p.source_before,
            p.source_after,
        );
        if let Some(e) = p.error.as_deref().filter(|_| p.source_before.is_none()) {
            behind.push_str(&format!(" ({e})"));
        }
        out.message = format!(
            "promoted: {} took writes at offset {}, {behind}",
            p.pod, p.offset
        );
        return Some(out);
    }
    let following = view
        .primary()
        .and_then(|p| view.pod(p))
        .is_some_and(|p| crate::decide::view::leads_standby(&p));
    let (phase, message) = match known {
        _ if from.is_none() => (
            STANDBY_FOLLOWING,
            format!("replicateFrom removed: the standby of {source} is being promoted"),
        ),
        Some(k) if k.error.is_some() => (
            STANDBY_SOURCE_UNREADABLE,
            format!(
                "standby of {source}, read-only; its source cannot be read: {}",
                k.error.as_deref().unwrap_or_default()
            ),
        ),
        Some(k) if k.behind => (
            STANDBY_BEHIND,
            format!(
                "standby of {source}, read-only; {} bytes behind, past its bound",
                k.lag.unwrap_or_default()
            ),
        ),
        Some(k) if following && k.leader.is_some() => (
            STANDBY_FOLLOWING,
            match k.lag {
                Some(lag) => format!(
                    "standby of {source}, read-only; {lag} bytes behind when last journaled"
                ),
                None => format!(
                    "standby of {source}, read-only; lag unknown (its history differs from the source's until it has synced)"
                ),
            },
        ),
        _ => (
            STANDBY_WAITING,
            format!("standby of {source}, read-only; waiting for its primary to follow the source"),
        ),
    };
    out.phase = phase.to_owned();
    out.message = message;
    Some(out)
}
