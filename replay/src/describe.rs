//! One line for people per event and per intent, shared by the timeline,
//! the CSV and the HTML report. Never a secret: the journal holds none, and
//! a spec is summarised, not printed.

use logbook_journal::intent::PlannedIntent;
use logbook_journal::{Event, LinkStatus, Reachability, Role};

/// The pod an event is about, if any.
#[must_use]
pub fn pod_of(event: &Event) -> Option<&str> {
    match event {
        Event::PodObserved { pod, .. }
        | Event::PodDeleted { pod }
        | Event::PodReachabilityObserved { pod, .. }
        | Event::NodeRoleObserved { pod, .. }
        | Event::ReplicationObserved { pod, .. }
        | Event::PrimaryUnreachable { pod, .. }
        | Event::ReplicaPromoted { pod, .. }
        | Event::RoleLabelObserved { pod, .. }
        | Event::PodTerminating { pod }
        | Event::AnnouncedAddressObserved { pod, .. }
        | Event::ClusterNodeObserved { pod, .. }
        | Event::PrimaryHistoryReset { pod, .. }
        | Event::SlotMigrationObserved { pod, .. }
        | Event::SlotStatesObserved { pod, .. }
        | Event::SentinelPodObserved { pod, .. }
        | Event::SentinelPodDeleted { pod }
        | Event::SentinelObserved { pod, .. }
        | Event::SentinelTimingObserved { pod, .. }
        | Event::SentinelEventObserved { pod, .. }
        | Event::AclObserved { pod, .. }
        | Event::CertificateServed { pod, .. }
        | Event::RestoreFetchObserved { pod, .. }
        | Event::ContainerFailureObserved { pod, .. }
        | Event::ServerVersionObserved { pod, .. }
        | Event::SourceFollowed { pod, .. }
        | Event::StandbyPromoted { pod, .. }
        | Event::PodDataObserved { pod, .. }
        | Event::ContainerRestartObserved { pod, .. } => Some(pod),
        Event::SentinelSwitchObserved { switch } => Some(&switch.to),
        Event::UserObserved { .. }
        | Event::UserForgotten { .. }
        | Event::UserConnectionObserved { .. }
        | Event::RotationWindowClosed { .. }
        | Event::CertificateObserved { .. }
        | Event::BackupRequested { .. }
        | Event::BackupForgotten { .. }
        | Event::BackupStarted { .. }
        | Event::BackupShardUploaded { .. }
        | Event::BackupCompleted { .. }
        | Event::BackupFailed { .. }
        | Event::BackupDue { .. }
        | Event::BackupDeleted { .. }
        | Event::RestoreVerified { .. }
        | Event::RestoreRefused { .. }
        | Event::RestoreCompleted { .. }
        | Event::CertificateAuthorityCreated { .. }
        | Event::FingerprintKeyObserved { .. }
        | Event::FingerprintsRekeyed { .. }
        | Event::ResourceVersionsObserved { .. }
        | Event::StaleReadIgnored { .. }
        | Event::ImagePreflighted { .. }
        | Event::StandbyObserved { .. }
        | Event::RebalanceRequestObserved { .. }
        | Event::RestartRequestObserved { .. }
        | Event::ArchiveChainStarted { .. }
        | Event::ArchiveFollowed { .. }
        | Event::ArchiveChainEnded { .. }
        | Event::ArchiveChainDeleted { .. }
        | Event::RestoreToTimeVerified { .. }
        | Event::ArchiveTargetObserved { .. }
        | Event::ExternalEndpointsObserved { .. }
        | Event::ExternalSentinelsObserved { .. } => None,
        Event::SpecChanged { .. }
        | Event::SpecLayersObserved { .. }
        | Event::BindingObserved { .. }
        | Event::DriftObserved { .. }
        | Event::DeletionRequested { .. }
        | Event::OwnedObjectsDeleted { .. }
        | Event::DeadlinePassed { .. }
        | Event::SnapshotRecorded { .. }
        | Event::SpecRejected { .. }
        | Event::ClusterDeleted
        | Event::KubeNodeObserved { .. }
        | Event::Decided { .. }
        | Event::IntentSucceeded { .. }
        | Event::IntentFailed { .. }
        | Event::IntentAbandoned { .. }
        | Event::PolicyRecorded { .. }
        | Event::OperatorStarted { .. }
        | Event::OperatorStopped { .. }
        | Event::LeadershipAcquired { .. }
        | Event::LeadershipLost { .. }
        | Event::SnapshotTaken { .. }
        | Event::StatefulSetObserved { .. }
        | Event::SwitchoverRequestObserved { .. }
        | Event::FailoverRequestObserved { .. } => None,
    }
}

/// Whether the event is an observation (of Kubernetes or of Valkey).
#[must_use]
pub const fn is_observation(event: &Event) -> bool {
    matches!(
        event,
        Event::SpecChanged { .. }
            | Event::SpecRejected { .. }
            | Event::SpecLayersObserved { .. }
            | Event::BindingObserved { .. }
            | Event::DriftObserved { .. }
            | Event::ClusterDeleted
            | Event::DeletionRequested { .. }
            | Event::DeadlinePassed { .. }
            | Event::PodObserved { .. }
            | Event::PodDeleted { .. }
            | Event::KubeNodeObserved { .. }
            | Event::PodReachabilityObserved { .. }
            | Event::NodeRoleObserved { .. }
            | Event::ReplicationObserved { .. }
            | Event::PodDataObserved { .. }
            | Event::ContainerRestartObserved { .. }
            | Event::PrimaryUnreachable { .. }
            | Event::RoleLabelObserved { .. }
            | Event::StatefulSetObserved { .. }
            | Event::SwitchoverRequestObserved { .. }
            | Event::PodTerminating { .. }
            | Event::FailoverRequestObserved { .. }
            | Event::ClusterNodeObserved { .. }
            | Event::PrimaryHistoryReset { .. }
            | Event::SlotMigrationObserved { .. }
            | Event::SlotStatesObserved { .. }
            | Event::SentinelPodObserved { .. }
            | Event::SentinelPodDeleted { .. }
            | Event::SentinelObserved { .. }
            | Event::SentinelTimingObserved { .. }
            | Event::SentinelEventObserved { .. }
            | Event::SentinelSwitchObserved { .. }
            | Event::ContainerFailureObserved { .. }
            | Event::ServerVersionObserved { .. }
            | Event::ImagePreflighted { .. }
            | Event::StandbyObserved { .. }
            | Event::RebalanceRequestObserved { .. }
            | Event::RestartRequestObserved { .. }
            | Event::UserObserved { .. }
            | Event::UserForgotten { .. }
            | Event::UserConnectionObserved { .. }
            | Event::AclObserved { .. }
            | Event::RotationWindowClosed { .. }
            | Event::CertificateObserved { .. }
            | Event::CertificateServed { .. }
            | Event::BackupRequested { .. }
            | Event::BackupForgotten { .. }
            | Event::BackupDue { .. }
            | Event::RestoreVerified { .. }
            | Event::RestoreToTimeVerified { .. }
            | Event::ArchiveTargetObserved { .. }
            | Event::ExternalEndpointsObserved { .. }
            | Event::AnnouncedAddressObserved { .. }
            | Event::ExternalSentinelsObserved { .. }
            | Event::RestoreRefused { .. }
            | Event::ResourceVersionsObserved { .. }
            | Event::StaleReadIgnored { .. }
    )
}

/// The role's name as Valkey's `ROLE` says it.
#[must_use]
pub const fn role_name(role: Role) -> &'static str {
    match role {
        Role::Primary => "primary",
        Role::Replica => "replica",
        Role::Sentinel => "sentinel",
    }
}

const fn reachability_name(r: Reachability) -> &'static str {
    match r {
        Reachability::Reachable => "reachable",
        Reachability::Refused => "refused (dead)",
        Reachability::TimedOut => "timed out",
        Reachability::NoAddress => "no address",
        Reachability::ProtocolError => "protocol error",
    }
}

const fn link_name(l: LinkStatus) -> &'static str {
    match l {
        LinkStatus::NotReplica => "no link",
        LinkStatus::Up => "link up",
        LinkStatus::Down => "link down",
        LinkStatus::Syncing => "syncing",
        LinkStatus::Silent => "link silent",
    }
}

/// One intent with its reason, for people.
#[must_use]
pub fn planned(p: &PlannedIntent) -> String {
    format!(
        "{} [{}: {}]",
        p.intent.describe(),
        p.reason.code.name(),
        p.reason.detail
    )
}

/// One line describing the event (without its seq and time).
#[must_use]
pub fn summary(event: &Event) -> String {
    match event {
        Event::SpecChanged {
            generation,
            fingerprint,
            ..
        } => {
            let short = fingerprint.to_hex();
            format!(
                "spec generation {generation} accepted (fingerprint {})",
                short.get(..12).unwrap_or(&short)
            )
        }
        Event::SpecRejected { generation, errors } => {
            let first = errors
                .first()
                .map(|e| {
                    // Named as the stored version (v1beta1) names it.
                    let path = logbook_crds::conversion::path_to_v1beta1(&e.path);
                    format!(": {path}: {}", e.message)
                })
                .unwrap_or_default();
            format!(
                "spec generation {generation} rejected ({} problems){first}",
                errors.len()
            )
        }
        Event::DriftObserved {
            object, by, fields, ..
        } => format!(
            "{object} changed by {by} ({}): applied again",
            fields.join(", ")
        ),
        Event::BindingObserved { annotated: true, .. } => {
            "the StatefulSet carries the ownership annotation: the cluster is bound".to_owned()
        }
        Event::BindingObserved {
            annotated: false,
            by,
        } => format!(
            "the StatefulSet lacks the ownership annotation{}: unbound if it carried it before, else its objects predate it",
            by.as_ref().map_or_else(String::new, |by| format!(" (last written by {by})"))
        ),
        Event::SpecLayersObserved {
            generation,
            layers,
            fingerprint,
            sources,
            from_defaults,
        } => match (layers, fingerprint) {
            (None, _) => format!("spec generation {generation}: no defaults layer applies any more"),
            (Some(_), None) => {
                format!("spec generation {generation}: the spec its defaults give was refused")
            }
            (Some(_), Some(_)) => {
                let by: Vec<String> = sources
                    .iter()
                    .take(6)
                    .map(|(field, layer)| format!("{field} from {layer}"))
                    .collect();
                let more = sources.len().saturating_sub(by.len());
                format!(
                    "spec generation {generation}{}: {}{}",
                    if *from_defaults {
                        " changed by its defaults"
                    } else {
                        " with its defaults"
                    },
                    if by.is_empty() {
                        "no field from them".to_owned()
                    } else {
                        by.join(", ")
                    },
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        },
        Event::ClusterDeleted => "the ValkeyCluster was deleted".to_owned(),
        Event::PodObserved {
            pod,
            ip,
            phase,
            ready,
            revision,
            ..
        } => format!(
            "pod {pod} {phase:?}{} ip {} revision {}",
            if *ready { " ready" } else { " not ready" },
            ip.as_deref().unwrap_or("-"),
            revision.as_deref().unwrap_or("-")
        ),
        Event::PodDeleted { pod } => format!("pod {pod} deleted"),
        Event::KubeNodeObserved { node, ready } => {
            format!("node {node} {}", if *ready { "ready" } else { "not ready" })
        }
        Event::PodReachabilityObserved { pod, reachability } => {
            format!("{pod} {}", reachability_name(*reachability))
        }
        Event::NodeRoleObserved { pod, role, primary } => match (role, primary) {
            (Role::Replica, Some(primary)) => format!("{pod} is a replica of {primary}"),
            (role, _) => format!("{pod} is {}", role_name(*role)),
        },
        Event::ReplicationObserved {
            pod, link, offset, ..
        } => format!("{pod} offset {offset}, {}", link_name(*link)),
        Event::PrimaryUnreachable {
            pod,
            consecutive_failures,
        } => format!("primary {pod} unreachable after {consecutive_failures} failed probes"),
        Event::ReplicaPromoted { pod, from, offset } => format!(
            "{pod} promoted{} at offset {offset}",
            from.as_ref()
                .map(|f| format!(" replacing {f}"))
                .unwrap_or_default()
        ),
        Event::Decided { intents } => {
            let all: Vec<String> = intents.iter().map(planned).collect();
            format!("decided: {}", all.join("; "))
        }
        Event::IntentSucceeded { intent_id, detail } => {
            format!("intent {} succeeded: {detail}", short_id(intent_id))
        }
        Event::IntentFailed {
            intent_id,
            error,
            retryable,
        } => format!(
            "intent {} failed ({}): {error}",
            short_id(intent_id),
            if *retryable { "retryable" } else { "permanent" }
        ),
        Event::IntentAbandoned { intent_id, reason } => {
            format!("intent {} abandoned: {reason}", short_id(intent_id))
        }
        Event::PolicyRecorded { policy } => format!(
            "policy: probe every {} ms, failure threshold {}",
            policy.probe_interval_ms, policy.failure_threshold
        ),
        Event::OperatorStarted {
            version,
            instance,
            epoch,
            gap_ms,
        } => format!(
            "operator {version} took over as {instance} at epoch {epoch}{}",
            gap_ms
                .map(|ms| format!(", {ms} ms after the previous event"))
                .unwrap_or_default()
        ),
        Event::OperatorStopped { instance } => format!("operator {instance} stopped"),
        Event::LeadershipAcquired { epoch, holder } => {
            format!("{holder} leads at epoch {epoch}")
        }
        Event::LeadershipLost { epoch, reason } => {
            format!("leadership of epoch {epoch} lost: {reason}")
        }
        Event::SnapshotTaken { seq, .. } => format!("snapshot stored at seq {seq}"),
        Event::RoleLabelObserved { pod, label } => {
            format!("{pod} labelled {}", label.map_or("(no role)", role_name))
        }
        Event::StatefulSetObserved {
            replicas,
            update_revision,
        } => format!(
            "statefulset: {replicas} replicas, revision {}",
            update_revision.as_deref().unwrap_or("not yet computed")
        ),
        Event::SwitchoverRequestObserved { target } => match target {
            Some(target) => format!("switchover to {target} requested"),
            None => "no switchover requested".to_owned(),
        },
        Event::PodTerminating { pod } => format!("pod {pod} is being deleted"),
        Event::FailoverRequestObserved { request } => match request {
            Some(request) => format!("failover requested ({request})"),
            None => "no failover requested".to_owned(),
        },
        Event::ClusterNodeObserved { pod, report } => cluster_report(pod, report),
        Event::PrimaryHistoryReset {
            pod,
            previous_replid,
            previous_offset,
            replid,
            offset,
            ..
        } => format!(
            "primary {pod} restarted in place with another history: was {}{}, now {} at offset {offset}; its replicas may hold writes it lost",
            &previous_replid.to_hex().get(..8).unwrap_or_default(),
            previous_offset.map_or_else(String::new, |o| format!(" at offset {o}")),
            &replid.to_hex().get(..8).unwrap_or_default(),
        ),
        Event::SlotMigrationObserved {
            pod,
            job,
            elapsed_ms,
        } => slot_migration(pod, job, *elapsed_ms),
        Event::SentinelPodObserved {
            pod,
            ip,
            phase,
            ready,
            ..
        } => format!(
            "Sentinel pod {pod}: {phase:?}{}, ip {}",
            if *ready { ", ready" } else { "" },
            ip.as_deref().unwrap_or("-")
        ),
        Event::SentinelPodDeleted { pod } => format!("Sentinel pod {pod} deleted"),
        Event::SentinelObserved {
            pod,
            reachability,
            report,
        } => sentinel_report(pod, *reachability, report.as_ref()),
        Event::SentinelEventObserved {
            pod,
            channel,
            payload,
        } => format!("{pod} published {channel} {payload}"),
        Event::SentinelSwitchObserved { switch } => sentinel_switch(switch),
        Event::UserObserved { user } => {
            let what = if user.deleting {
                "is being deleted".to_owned()
            } else if let Some(problem) = &user.problem {
                format!("cannot be applied: {problem}")
            } else {
                format!(
                    "wants {} (password {} from Secret {})",
                    user.rules.join(" "),
                    user.password.as_deref().unwrap_or("none"),
                    user.secret
                )
            };
            if user.object == logbook_journal::CLUSTER_PASSWORD {
                format!(
                    "the cluster's password (user default): {} from Secret {}",
                    user.password.as_deref().unwrap_or("none"),
                    user.secret
                )
            } else {
                format!(
                    "ValkeyUser {} (ACL user {}, generation {}) {what}",
                    user.object, user.username, user.generation
                )
            }
        }
        Event::UserForgotten { object } => format!("ValkeyUser {object} is gone"),
        Event::UserConnectionObserved { object, connection } => match connection {
            None => format!("ValkeyUser {object} asks for no connection Secret"),
            Some(c) => match &c.state {
                logbook_journal::ConnectionState::Current => {
                    format!("ValkeyUser {object}'s connection Secret {} is in step", c.secret)
                }
                logbook_journal::ConnectionState::Stale => {
                    format!("ValkeyUser {object}'s connection Secret {} is to be written", c.secret)
                }
                logbook_journal::ConnectionState::Refused(why) => format!(
                    "ValkeyUser {object}'s connection Secret {} refused: {why}",
                    c.secret
                ),
            },
        },
        Event::RotationWindowClosed { username } => {
            format!("the rotation window of ACL user {username} closed: its old password goes")
        }
        Event::CertificateObserved { certificate: c } => match (&c.fingerprint, &c.problem) {
            (_, Some(problem)) => format!(
                "TLS Secret {} ({}) cannot be used: {problem}",
                c.secret, c.source
            ),
            (None, None) => format!(
                "TLS Secret {} ({}) holds no certificate",
                c.secret, c.source
            ),
            (Some(fp), None) => format!(
                "TLS Secret {} ({}) holds certificate {}{}",
                c.secret,
                c.source,
                fp.get(..16).unwrap_or(fp),
                c.not_after
                    .map(|t| format!(", valid until {t}"))
                    .unwrap_or_default()
            ),
        },
        Event::CertificateServed { pod, fingerprint } => format!(
            "{pod} serves TLS certificate {}",
            fingerprint.get(..16).unwrap_or(fingerprint)
        ),
        Event::AclObserved { pod, users } => {
            if users.is_empty() {
                format!("{pod} holds none of the ValkeyUsers' users")
            } else {
                format!(
                    "{pod} holds ACL users {}",
                    users
                        .iter()
                        .map(|(u, d)| format!("{u} ({d})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
        Event::SlotStatesObserved {
            pod,
            migrating,
            importing,
            ..
        } => slot_states(pod, migrating, importing),
        Event::BackupRequested { backup } => {
            let by = if backup.scheduled {
                "scheduled"
            } else {
                "on demand"
            };
            match (&backup.problem, &backup.target) {
                (Some(problem), _) => {
                    format!("backup {} ({by}) cannot be taken: {problem}", backup.object)
                }
                (None, Some(t)) => format!(
                    "backup {} ({by}) requested into s3://{}/{} (credentials from Secret {})",
                    backup.object, t.bucket, t.dir, t.secret
                ),
                (None, None) => format!("backup {} ({by}) requested", backup.object),
            }
        }
        Event::BackupForgotten { object } => {
            format!("ValkeyBackup {object} is gone (its objects in the bucket are kept)")
        }
        Event::BackupStarted {
            object,
            attempt,
            target,
            sources,
        } => format!(
            "backup {object} attempt {attempt} started into s3://{}/{}: {}",
            target.bucket,
            target.dir,
            sources
                .iter()
                .map(|s| if s.pod == s.primary {
                    format!("shard {} from primary {}", s.shard, s.pod)
                } else {
                    format!(
                        "shard {} from replica {} (primary {})",
                        s.shard, s.pod, s.primary
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::BackupShardUploaded {
            object,
            attempt,
            upload: u,
        } => format!(
            "backup {object} attempt {attempt}: shard {} from {} uploaded to {} ({} bytes, SHA-256 {}, RDB v{}, {}; snapshot at {}:{}{})",
            u.shard,
            u.pod,
            u.key,
            u.bytes,
            u.sha256.get(..16).unwrap_or(&u.sha256),
            u.rdb_version,
            if u.crc_verified {
                "CRC-64 verified"
            } else {
                "no CRC-64 in the RDB"
            },
            u.replid.get(..8).unwrap_or(&u.replid),
            u.offset,
            u.primary_offset
                .map(|o| format!(", primary at {o} when chosen"))
                .unwrap_or_default()
        ),
        Event::BackupCompleted {
            object,
            attempt,
            manifest,
            bytes,
        } => format!(
            "backup {object} completed on attempt {attempt}: {bytes} bytes, manifest {manifest}"
        ),
        Event::BackupFailed {
            object,
            attempt,
            reason,
            retry,
        } => format!(
            "backup {object} attempt {attempt} failed: {reason}{}",
            if *retry { " (to be retried)" } else { "" }
        ),
        Event::BackupDue { at, object } => {
            format!("the backup schedule fired at {at}: backup {object} is due")
        }
        Event::RestoreVerified { plan } => format!(
            "restore of {} verified before anything was created: {} {} shard(s) from s3://{}/{} (backup decided at its journal seq {}, server {}): {}",
            plan.source,
            plan.shards.len(),
            plan.topology,
            plan.target.bucket,
            plan.target.dir,
            plan.journal_seq,
            plan.server_version.as_deref().unwrap_or("unknown"),
            plan.shards
                .iter()
                .map(|s| format!(
                    "shard {} {} bytes, SHA-256 {}",
                    s.shard,
                    s.bytes,
                    s.sha256.get(..16).unwrap_or(&s.sha256)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Event::RestoreToTimeVerified { plan, point } => format!(
            "restore of {} to {} verified before anything was created: {} {} shard(s), each a base and its archived stream up to then: {}{}",
            plan.source,
            point.until,
            point.shards.len(),
            plan.topology,
            point
                .shards
                .iter()
                .map(|s| format!(
                    "shard {} from {} ({} segment(s), to offset {})",
                    s.shard, s.chain_dir, s.segments, s.end
                ))
                .collect::<Vec<_>>()
                .join("; "),
            if point.notes.is_empty() {
                String::new()
            } else {
                format!("; not exact: {}", point.notes.join("; "))
            }
        ),
        Event::ExternalEndpointsObserved {
            enabled: false, ..
        } => "the spec asks for no external access".to_owned(),
        Event::ExternalEndpointsObserved {
            pods,
            primary,
            waiting,
            ..
        } => {
            let mut parts: Vec<String> = pods
                .iter()
                .map(|(pod, e)| format!("{pod} at {}", e.describe()))
                .collect();
            if let Some(p) = primary {
                parts.push(format!("the primary's Service at {}", p.describe()));
            }
            parts.extend(waiting.iter().map(|(what, why)| format!("{what} waits: {why}")));
            format!("clients outside reach {}", parts.join(", "))
        }
        Event::AnnouncedAddressObserved { pod, announced } if announced.is_empty() => {
            format!("{pod} announces no address (its own)")
        }
        Event::AnnouncedAddressObserved { pod, announced } => {
            format!("{pod} announces {announced}")
        }
        Event::ExternalSentinelsObserved { sentinels } if sentinels.is_empty() => {
            "no external address of the Sentinels is known".to_owned()
        }
        Event::ExternalSentinelsObserved { sentinels } => {
            let at: Vec<String> = sentinels.iter().map(|e| e.address()).collect();
            format!("clients outside reach the Sentinels at {}", at.join(", "))
        }
        Event::ArchiveTargetObserved { target } => match target {
            Some(t) => format!(
                "the spec asks for the continuous archive, into s3://{}/{}",
                t.bucket, t.dir
            ),
            None => "the spec asks for no continuous archive".to_owned(),
        },
        Event::ArchiveChainStarted { chain } => format!(
            "archive chain {} began: base RDB of {} bytes from {} (primary {}) at {}:{}, taken {}; the stream from there is archived{}",
            chain.chain,
            chain.base_bytes,
            chain.source,
            chain.primary,
            chain.replid,
            chain.offset,
            chain.base_at,
            if chain.slots.is_empty() {
                String::new()
            } else {
                format!(
                    " (slots {})",
                    logbook_journal::cluster::describe_slots(&chain.slots)
                )
            }
        ),
        Event::ArchiveFollowed {
            chain,
            source,
            primary,
            replid,
            offset,
        } => format!(
            "archive chain {chain} continues without a gap from {source} (primary {primary}), accepted at {replid}:{offset}"
        ),
        Event::ArchiveChainEnded { chain, end, reason } => format!(
            "archive chain {chain} ended at offset {end}: {reason}; it restores to any time it covered, no later"
        ),
        Event::ArchiveChainDeleted { chain, objects } => {
            format!("retention deleted archive chain {chain}: {objects} objects")
        }
        Event::RestoreRefused {
            source,
            reason,
            retry,
        } => format!(
            "restore of {source} refused: {reason}{}",
            if *retry { " (read again later)" } else { "" }
        ),
        Event::RestoreCompleted { shards } => format!(
            "restore completed: {shards} shard(s) loaded and served; the restore plan is removed"
        ),
        Event::BackupDeleted { object, objects } => format!(
            "retention deleted backup {object}: {objects} objects from the bucket, then the ValkeyBackup"
        ),
        Event::DeletionRequested { delete_pvcs } => format!(
            "cluster deleted: the objects it owns are deleted{}",
            if *delete_pvcs {
                ", its PVCs too"
            } else {
                "; its PVCs are kept"
            }
        ),
        Event::OwnedObjectsDeleted { objects, complete } => format!(
            "{} owned objects deleted{}: {}",
            objects.len(),
            if *complete { "" } else { " (stopped part-way)" },
            objects.join(", ")
        ),
        Event::DeadlinePassed { deadline } => {
            format!("the clock passed the next deadline ({deadline})")
        }
        Event::SnapshotRecorded { seq, digest, .. } => {
            let digest = digest.to_string();
            format!(
                "snapshot stored at seq {seq} (state digest {})",
                digest.get(..12).unwrap_or(&digest)
            )
        }
        Event::CertificateAuthorityCreated {
            secret,
            fingerprint,
        } => format!(
            "created the cluster's CA {} in Secret {secret}: clients are to trust it",
            fingerprint.get(..16).unwrap_or(fingerprint)
        ),
        Event::RestoreFetchObserved { pod, failure } => match failure {
            Some(f) => format!("restore: {pod} cannot load its shard: {f}"),
            None => format!("restore: {pod} no longer shows a failure to load its shard"),
        },
        Event::FingerprintKeyObserved { present: true } => {
            "the cluster's fingerprint key is there (Secret <name>-internal)".to_owned()
        }
        Event::FingerprintKeyObserved { present: false } => {
            "the cluster has no fingerprint key (Secret <name>-internal): passwords are not fingerprinted until it has".to_owned()
        }
        Event::FingerprintsRekeyed { passwords, digests } => format!(
            "{} password fingerprints and {} ACL digests journaled unkeyed are now keyed with the cluster's fingerprint key (the same secrets: no rotation)",
            passwords.len(),
            digests.len()
        ),
        Event::ResourceVersionsObserved { versions } => format!(
            "read at resourceVersion {}",
            versions
                .iter()
                .map(|(object, version)| format!("{object} {version}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::StaleReadIgnored {
            object,
            resource_version,
            journaled,
        } => format!(
            "ignored a stale read of {object}: resourceVersion {resource_version}, older than the journal's {journaled}"
        ),
        Event::SentinelTimingObserved {
            pod,
            info_period_ms,
        } => format!("{pod} asks the data nodes for INFO every {info_period_ms} ms"),
        Event::ContainerFailureObserved { pod, failure } => match failure {
            Some(f) => format!("{pod}: Valkey fails: {f}"),
            None => format!("{pod}: Valkey no longer fails"),
        },
        Event::ServerVersionObserved {
            pod,
            image,
            version,
            ..
        } => format!("{pod} runs {image}: version {version}"),
        Event::ImagePreflighted {
            image,
            generation,
            version,
            refused,
        } => match (version, refused) {
            (Some(v), _) => format!(
                "preflight of {image} with the config of generation {generation}: runs, version {v}"
            ),
            (None, Some(r)) => format!(
                "preflight of {image} with the config of generation {generation}: refused: {r}"
            ),
            (None, None) => format!("preflight of {image}: ended without a word"),
        },
        Event::RebalanceRequestObserved { request } => match request {
            Some(r) => format!("rebalance requested ({r})"),
            None => "rebalance request cleared".to_owned(),
        },
        Event::RestartRequestObserved { request } => match request {
            Some(r) => format!("restart requested ({r})"),
            None => "restart request annotation removed".to_owned(),
        },
        Event::ContainerRestartObserved { pod, restarts, .. } => {
            format!("{pod}: Valkey restarted in place by the kubelet ({restarts} restarts)")
        }
        Event::PodDataObserved {
            pod,
            replid,
            offset,
            keys,
            persisted,
        } => format!(
            "{pod} {}: {keys} keys, history {} at offset {offset}",
            if *persisted {
                "made durable to hibernate"
            } else {
                "back from its volume"
            },
            replid.to_hex().get(..8).unwrap_or_default()
        ),
        Event::SourceFollowed { pod, host, port } => {
            format!("{pod} follows the standby's source at {host}:{port}")
        }
        Event::StandbyObserved {
            host,
            port,
            offset,
            source_offset,
            lag,
            behind,
            error,
            ..
        } => {
            let at = host
                .as_ref()
                .map_or_else(|| "(no address)".to_owned(), |h| format!("{h}:{port}"));
            let offsets = format!(
                "standby at offset {}, source at {}",
                offset.map_or_else(|| "?".to_owned(), |o| o.to_string()),
                source_offset.map_or_else(|| "?".to_owned(), |o| o.to_string())
            );
            let lag = match (lag, behind) {
                (Some(l), true) => format!("{l} bytes behind, past its bound"),
                (Some(l), false) => format!("{l} bytes behind, within its bound"),
                (None, _) => "lag unknown".to_owned(),
            };
            match error {
                Some(e) => format!("standby's source {at}: {e}; {offsets}; {lag}"),
                None => format!("standby's source {at}: {offsets}; {lag}"),
            }
        }
        Event::StandbyPromoted {
            pod,
            offset,
            source_before,
            source_after,
            error,
        } => {
            let behind = logbook_journal::projection::replication::promotion_lag(
                *offset,
                *source_before,
                *source_after,
            );
            let why = error
                .as_ref()
                .map_or_else(String::new, |e| format!(" ({e})"));
            format!("standby promoted: {pod} stopped following at offset {offset}, {behind}{why}")
        }
    }
}

/// A slot migration job as one of its ends listed it, for people.
fn slot_migration(
    pod: &str,
    job: &logbook_journal::SlotMigrationJob,
    elapsed_ms: Option<u64>,
) -> String {
    let short = |id: &str| id.get(..8).unwrap_or(id).to_owned();
    let after = elapsed_ms.map_or_else(String::new, |ms| format!(" {ms} ms after it was issued"));
    let progress = if job.remaining_repl_size > 0 {
        format!(
            ", {} bytes of writes still to send",
            job.remaining_repl_size
        )
    } else {
        String::new()
    };
    let message = if job.message.is_empty() {
        String::new()
    } else {
        format!(": {}", job.message)
    };
    let ambiguous = if job.ambiguous() {
        " (ambiguous: slot ownership decides whether it moved them)"
    } else {
        ""
    };
    format!(
        "slot migration {} ({} on {pod}) of {} slots ({}) from {} to {}: {}{after}{progress}{message}{ambiguous}",
        short(&job.name),
        job.side.name(),
        logbook_journal::cluster::slot_count(&job.slots),
        logbook_journal::cluster::describe_slots(&job.slots),
        short(&job.source),
        short(&job.target),
        job.phase.name()
    )
}

/// A node's half-moved slots, for people.
fn slot_states(
    pod: &str,
    migrating: &[logbook_journal::SlotPeer],
    importing: &[logbook_journal::SlotPeer],
) -> String {
    let short = |id: &str| id.get(..8).unwrap_or(id).to_owned();
    if migrating.is_empty() && importing.is_empty() {
        return format!("{pod} marks no slot as half-moved any more");
    }
    let list = |peers: &[logbook_journal::SlotPeer], arrow: &str| {
        peers
            .iter()
            .map(|p| format!("{} {arrow} {}", p.slot, short(&p.node_id)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !migrating.is_empty() {
        parts.push(format!("migrating {}", list(migrating, "->")));
    }
    if !importing.is_empty() {
        parts.push(format!("importing {}", list(importing, "<-")));
    }
    format!("{pod} marks slots half-moved: {}", parts.join("; "))
}

/// A cluster node's report, for people: identity, role, slots, epochs,
/// state and the peers it flags.
fn cluster_report(pod: &str, report: &logbook_journal::ClusterNodeReport) -> String {
    let short = |id: &str| id.get(..8).unwrap_or(id).to_owned();
    let role = match &report.primary_id {
        Some(primary) => format!("replica of {}", short(primary)),
        None if report.slots.is_empty() => "primary without slots".to_owned(),
        None => format!(
            "primary of {} slots ({})",
            logbook_journal::cluster::slot_count(&report.slots),
            logbook_journal::cluster::describe_slots(&report.slots)
        ),
    };
    let flagged: Vec<String> = report
        .peers
        .iter()
        .filter(|p| p.health != logbook_journal::PeerHealth::Ok)
        .map(|p| format!("{} {:?}", short(&p.node_id), p.health))
        .collect();
    format!(
        "{pod} is node {}, {role}, config epoch {}, current epoch {}, cluster {}, knows {} peers{}",
        short(&report.node_id),
        report.config_epoch,
        report.current_epoch,
        if report.state_ok { "ok" } else { "fail" },
        report.peers.len(),
        if flagged.is_empty() {
            String::new()
        } else {
            format!(" ({})", flagged.join(", "))
        }
    )
}

/// The first 8 hex digits of an id: enough to follow a chain by eye.
#[must_use]
pub fn short_id(id: &uuid::Uuid) -> String {
    let text = id.simple().to_string();
    text.get(text.len().saturating_sub(8)..)
        .unwrap_or(&text)
        .to_owned()
}

/// One Sentinel's report, for people.
fn sentinel_report(
    pod: &str,
    reachability: Reachability,
    report: Option<&logbook_journal::SentinelReport>,
) -> String {
    let Some(report) = report else {
        return format!("Sentinel {pod} {}", reachability_name(reachability));
    };
    let id = report.myid.get(..8).unwrap_or(&report.myid);
    match &report.monitoring {
        None => format!("Sentinel {pod} ({id}) monitors no primary"),
        Some(m) => {
            let flags: Vec<&str> = m.flags.iter().map(String::as_str).collect();
            format!(
                "Sentinel {pod} ({id}) names primary {} ({}) at epoch {}{}{}; knows {} replicas, {} other Sentinels; quorum {}",
                m.primary_pod.as_deref().unwrap_or("(no pod)"),
                m.primary_ip,
                m.config_epoch,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(", {}", flags.join(","))
                },
                m.failover_state
                    .as_deref()
                    .map(|s| format!(", failover {s}"))
                    .unwrap_or_default(),
                m.replicas.len(),
                m.sentinels.len(),
                m.settings.quorum
            )
        }
    }
}

/// A switch of primary by Sentinel, for people.
pub fn sentinel_switch(switch: &logbook_journal::SentinelSwitch) -> String {
    let who = match (&switch.leader, switch.after_the_fact) {
        (_, true) => "found after the fact: the operator did not watch it, so its leader and votes are unknown".to_owned(),
        (Some(leader), false) => format!(
            "led by {leader}, voted by {}",
            if switch.voters.is_empty() {
                "(no vote seen)".to_owned()
            } else {
                switch.voters.join(", ")
            }
        ),
        (None, false) => "leader not seen".to_owned(),
    };
    format!(
        "Sentinel switched the primary {} -> {} ({}) at epoch {}; {who}; reported by {}",
        switch.from.as_deref().unwrap_or("(none)"),
        switch.to,
        switch.to_ip,
        switch.epoch,
        switch.reported_by.join(", ")
    )
}
