//! `kubectl valkey status [name]`: a table of the namespace's clusters
//! (from their published status), or one cluster in detail — the roles,
//! replication offsets and lag of its pods come from its journal, i.e.
//! what the operator last observed, and say when that was. A Valkey
//! Cluster has a primary per shard: its shards stand where a Replication
//! cluster's primary does (`shards.rs`), with its reshard under them
//! while one stands (`status.reshard`).

use std::io::Write;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use logbook_crds::v1alpha1::{FailoverRecord, UpgradeStatus};
use logbook_crds::{BackupPhase, Topology, ValkeyBackup, ValkeyCluster, ValkeyUser};
use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, LinkStatus, Reachability, Role, Timestamp};

use super::connect::Kube;
use super::error::{PluginError, Result};
use super::format::{age, from_kube, or_dash, table};
use super::journal::{self, JournalView};
use super::shards;
use crate::resources::labels;

/// Runs `status`.
///
/// # Errors
/// API errors; [`super::error::PluginError::ClusterNotFound`].
pub async fn run(kube: &Kube, name: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let now = Timestamp::now();
    match name {
        None => {
            let clusters = kube.clusters().await?;
            if clusters.is_empty() {
                writeln!(
                    out,
                    "No ValkeyClusters found in namespace {}.",
                    kube.namespace
                )?;
                return Ok(());
            }
            write_list(out, &clusters, now)?;
            Ok(())
        }
        Some(name) => write_detail(kube, name, now, out).await,
    }
}

/// One row per cluster.
///
/// # Errors
/// Output errors.
pub fn write_list(out: &mut dyn Write, clusters: &[ValkeyCluster], now: Timestamp) -> Result<()> {
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            let status = c.status.clone().unwrap_or_default();
            vec![
                c.metadata.name.clone().unwrap_or_default(),
                c.spec.topology.to_string(),
                phase(c),
                list_version(c),
                format!(
                    "{}/{}",
                    status.ready_replicas.unwrap_or(0),
                    c.spec.effective_replicas()
                ),
                if c.spec.topology == Topology::Cluster {
                    shards::primaries_cell(c)
                } else {
                    or_dash(status.primary)
                },
                status
                    .last_failover
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |f| failover_line(f, now)),
                status.journal.as_ref().map_or_else(
                    || "-".to_owned(),
                    |j| format!("#{} {}", j.seq, short(&j.hash_prefix)),
                ),
            ]
        })
        .collect();
    table(
        out,
        &[
            "NAME",
            "TOPOLOGY",
            "PHASE",
            "VERSION",
            "READY",
            "PRIMARY",
            "LAST FAILOVER",
            "JOURNAL HEAD",
        ],
        &rows,
    )?;
    Ok(())
}

fn phase(c: &ValkeyCluster) -> String {
    let phase = c
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .map_or_else(|| "Unknown".to_owned(), |p| format!("{p:?}"));
    if c.spec.paused && phase != "Paused" {
        format!("{phase} (paused)")
    } else {
        phase
    }
}

fn failover_line(f: &FailoverRecord, now: Timestamp) -> String {
    let when =
        f.at.as_ref()
            .map(|t| format!(" ({} ago)", age(from_kube(t), now)))
            .unwrap_or_default();
    format!(
        "{} -> {}{when}",
        f.from.as_deref().unwrap_or("?"),
        f.to.as_deref().unwrap_or("?")
    )
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// One cluster in detail.
///
/// # Errors
/// API errors; output errors. An unreadable journal is reported in the
/// output, not as an error: the rest is still worth showing.
pub async fn write_detail(
    kube: &Kube,
    name: &str,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    let pods = kube.data_pods(name).await?;
    let journal = journal::read(kube, &cluster).await;
    let more = More {
        journal: journal.as_ref().ok(),
        users: users_of(kube, name).await,
        backups: backups_of(kube, name).await,
    };
    write_header(out, kube, &cluster, &more, now)?;
    let cluster_topology = cluster.spec.topology == Topology::Cluster;
    match &journal {
        Ok(view) => write_journal_part(out, view, &pods, now)?,
        Err(err) => {
            writeln!(out, "\nJournal:       not readable: {err}")?;
            if cluster_topology {
                let status = cluster.status.clone().unwrap_or_default();
                shards::write_published(out, &status.shards)?;
            }
            write_kube_pods(out, &pods)?;
        }
    }
    Ok(())
}

fn write_header(
    out: &mut dyn Write,
    kube: &Kube,
    c: &ValkeyCluster,
    more: &More<'_>,
    now: Timestamp,
) -> Result<()> {
    let status = c.status.clone().unwrap_or_default();
    writeln!(
        out,
        "Name:          {}",
        c.metadata.name.clone().unwrap_or_default()
    )?;
    writeln!(out, "Namespace:     {}", kube.namespace)?;
    writeln!(
        out,
        "Topology:      {} ({} pods)",
        c.spec.topology,
        c.spec.effective_replicas()
    )?;
    writeln!(out, "Phase:         {}", phase(c))?;
    writeln!(
        out,
        "Paused:        {}",
        if c.spec.paused {
            "yes: the operator observes and journals but changes nothing"
        } else {
            "no"
        }
    )?;
    writeln!(out, "Version:       {}", version_line(c, more.journal))?;
    if let Some(u) = &status.upgrade {
        writeln!(out, "Upgrade:       {}", upgrade_line(u))?;
    }
    if c.spec.topology == Topology::Cluster {
        writeln!(out, "Shards:        {}", shards::header_line(c))?;
        for (n, line) in shards::reshard_lines(c).iter().enumerate() {
            let label = if n == 0 { "Reshard:" } else { "" };
            writeln!(out, "{label:<15}{line}")?;
        }
    } else {
        writeln!(out, "Primary:       {}", or_dash(status.primary.clone()))?;
    }
    if let Some(s) = &status.sentinel {
        writeln!(
            out,
            "Sentinels:     {}/{} answer, {} name the primary, {} needed to fail it over ({}); master name {}, Service {}; {} switches, epoch {}",
            s.answering,
            s.replicas,
            s.agreeing,
            s.needed,
            if s.quorum_reachable {
                "quorum reachable"
            } else {
                "QUORUM NOT REACHABLE: hand-overs and rolls wait"
            },
            s.master_name,
            s.service,
            s.switches,
            s.epoch
        )?;
        for d in &s.disagreements {
            writeln!(out, "               {d}")?;
        }
    }
    writeln!(
        out,
        "Last failover: {}",
        status.last_failover.as_ref().map_or_else(
            || "none".to_owned(),
            |f| format!(
                "{}{}{}",
                failover_line(f, now),
                failover_reason(f, more.journal)
                    .map(|r| format!(", why: {r}"))
                    .unwrap_or_default(),
                f.seq
                    .map(|s| format!(", journal seq {s}"))
                    .unwrap_or_default()
            )
        )
    )?;
    let annotations = c.metadata.annotations.clone().unwrap_or_default();
    if let Some(target) = annotations.get(labels::SWITCHOVER_TO) {
        writeln!(
            out,
            "Requested:     switchover to {target} (not served yet)"
        )?;
    }
    if let Some(at) = annotations.get(labels::FAILOVER_REQUESTED) {
        writeln!(out, "Requested:     failover ({at}) (not served yet)")?;
    }
    if let Some(at) = annotations.get(labels::REBALANCE_REQUESTED) {
        writeln!(out, "Requested:     rebalance ({at}) (not served yet)")?;
    }
    if let Some(standby) = &status.standby {
        writeln!(
            out,
            "Standby:       {} ({})",
            standby.message, standby.phase
        )?;
    }
    if let Some(restore) = &status.restore {
        writeln!(
            out,
            "Restore:       {} from {}{}",
            restore.phase,
            restore.source,
            restore
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )?;
    }
    write_doing(out, c, more.journal, now)?;
    write_backups(out, c, &more.backups, now)?;
    writeln!(out, "Certificate:   {}", certificate_line(c, now))?;
    if let Some(line) = external_line(c) {
        writeln!(out, "External:      {line}")?;
    }
    write_users(out, &more.users)?;
    if !status.conditions.is_empty() {
        writeln!(out, "Conditions:")?;
        let rows: Vec<Vec<String>> = status
            .conditions
            .iter()
            .map(|cond| {
                vec![
                    format!("  {}", cond.type_),
                    cond.status.clone(),
                    cond.reason.clone(),
                    cond.message.clone(),
                ]
            })
            .collect();
        table(out, &["  TYPE", "STATUS", "REASON", "MESSAGE"], &rows)?;
    }
    Ok(())
}

fn write_journal_part(
    out: &mut dyn Write,
    view: &JournalView,
    pods: &[Pod],
    now: Timestamp,
) -> Result<()> {
    let state = &view.state;
    writeln!(
        out,
        "Journal head:  seq {}, hash {}",
        state.last_seq,
        short(&state.last_hash.to_hex())
    )?;
    let summary = crate::metrics::summarize_cluster(state);
    if let Some(summary) = &summary {
        shards::write_summary(out, summary)?;
    }
    // The primaries a replica's lag is measured against: the believed
    // primary, or each shard's.
    let primaries: Vec<&str> = match &summary {
        Some(s) => s.shards.iter().map(|s| s.primary.as_str()).collect(),
        None => state
            .replication
            .primary
            .iter()
            .map(String::as_str)
            .collect(),
    };
    writeln!(
        out,
        "\nPods, as last observed by the operator at {} ({} ago; the journal records a change when it happens, so an idle pod's line can be older):",
        state.last_at,
        age(state.last_at, now)
    )?;
    let mut rows = Vec::new();
    for (name, pod) in ordered(state) {
        rows.push(vec![
            format!("  {name}"),
            role(state, name, pod, summary.is_some()),
            or_dash(pod.replicates.clone()),
            link(pod.link),
            or_dash(pod.offset),
            lag(state, pod, &primaries),
            reach(pod.reachability),
            kube_state(pods, name),
            format!("{} ago", age(pod.last_seen, now)),
        ]);
    }
    table(
        out,
        &[
            "  POD",
            "ROLE",
            "FOLLOWS",
            "LINK",
            "OFFSET",
            "LAG",
            "PROBE",
            "KUBERNETES",
            "LAST SEEN",
        ],
        &rows,
    )?;
    Ok(())
}

/// The journal's pods in ordinal order.
fn ordered(state: &ClusterState) -> Vec<(&String, &PodView)> {
    let mut pods: Vec<(&String, &PodView)> = state.pods.iter().collect();
    pods.sort_by_key(|(name, _)| (crate::decide::ordinal(name), (*name).clone()));
    pods
}

/// `pod`'s role; in a Valkey Cluster (`cluster`) a replica whose primary
/// is not known here is still a replica (the operator fences no node).
fn role(state: &ClusterState, name: &str, pod: &PodView, cluster: bool) -> String {
    let role = match pod.role {
        Some(Role::Primary) => "primary",
        Some(Role::Replica) if pod.replicates.is_none() && !cluster => "fenced",
        Some(Role::Replica) => "replica",
        Some(Role::Sentinel) => "sentinel",
        None => "unknown",
    };
    if state.replication.primary.as_deref() == Some(name) && pod.role != Some(Role::Primary) {
        format!("{role} (believed primary)")
    } else if pod.terminating {
        format!("{role} (terminating)")
    } else {
        role.to_owned()
    }
}

fn link(link: Option<LinkStatus>) -> String {
    match link {
        None | Some(LinkStatus::NotReplica) => "-",
        Some(LinkStatus::Up) => "up",
        Some(LinkStatus::Down) => "down",
        Some(LinkStatus::Syncing) => "syncing",
        Some(LinkStatus::Silent) => "silent",
    }
    .to_owned()
}

/// Bytes of the primary's replication stream a replica of it had not
/// applied when last observed, for a replica of one of `primaries`.
fn lag(state: &ClusterState, pod: &PodView, primaries: &[&str]) -> String {
    let theirs = pod
        .replicates
        .as_deref()
        .filter(|of| primaries.contains(of))
        .and_then(|of| state.pods.get(of))
        .and_then(|p| p.offset);
    match (pod.offset, theirs) {
        (Some(mine), Some(theirs)) => format!("{} B", theirs.saturating_sub(mine)),
        _ => "-".to_owned(),
    }
}

fn reach(r: Option<Reachability>) -> String {
    match r {
        None => "-",
        Some(Reachability::Reachable) => "ok",
        Some(Reachability::Refused) => "refused",
        Some(Reachability::TimedOut) => "timeout",
        Some(Reachability::NoAddress) => "no address",
        Some(Reachability::ProtocolError) => "protocol error",
    }
    .to_owned()
}

/// The pod as Kubernetes shows it now: phase, readiness, restarts.
fn kube_state(pods: &[Pod], name: &str) -> String {
    let Some(pod) = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
    else {
        return "gone".to_owned();
    };
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let restarts: i32 = status
        .container_statuses
        .unwrap_or_default()
        .iter()
        .map(|c| c.restart_count)
        .sum();
    format!(
        "{}{}, {restarts} restarts",
        status.phase.unwrap_or_else(|| "Unknown".to_owned()),
        if ready { "/ready" } else { "/not ready" }
    )
}

/// Without a journal: the pods as Kubernetes shows them, with their role
/// labels (what the operator last set, not observed roles).
fn write_kube_pods(out: &mut dyn Write, pods: &[Pod]) -> Result<()> {
    writeln!(
        out,
        "\nPods, as Kubernetes shows them now (no offsets without the journal):"
    )?;
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let label = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::ROLE))
                .cloned();
            vec![format!("  {name}"), or_dash(label), kube_state(pods, &name)]
        })
        .collect();
    table(out, &["  POD", "ROLE LABEL", "KUBERNETES"], &rows)?;
    Ok(())
}

/// What `status <name>` shows besides the cluster's own object: its
/// journal, its ValkeyUsers and its ValkeyBackups (each as an error
/// message when it cannot be read: the rest is still worth showing).
struct More<'a> {
    journal: Option<&'a JournalView>,
    users: std::result::Result<Vec<ValkeyUser>, String>,
    backups: std::result::Result<Vec<ValkeyBackup>, String>,
}

/// The ValkeyUsers of cluster `name`, by name.
async fn users_of(kube: &Kube, name: &str) -> std::result::Result<Vec<ValkeyUser>, String> {
    let mut users: Vec<ValkeyUser> = kube
        .api::<ValkeyUser>()
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            PluginError::from_kube(
                &kube.call("list", "valkeyusers.valkey.logbook.dev", None),
                e,
            )
            .to_string()
        })?
        .items
        .into_iter()
        .filter(|u| u.spec.cluster == name)
        .collect();
    users.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(users)
}

/// The ValkeyBackups of cluster `name`, oldest first.
async fn backups_of(kube: &Kube, name: &str) -> std::result::Result<Vec<ValkeyBackup>, String> {
    let mut backups: Vec<ValkeyBackup> = kube
        .api::<ValkeyBackup>()
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            PluginError::from_kube(&kube.call("list", super::backup::BACKUPS, None), e).to_string()
        })?
        .items
        .into_iter()
        .filter(|b| b.spec.cluster == name)
        .collect();
    backups.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    Ok(backups)
}

/// The tag of `image` (`valkey/valkey:9.1` → `9.1`), `@digest` for one
/// named by digest, `latest` for none.
#[must_use]
pub fn image_tag(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return format!("@{}", digest.chars().take(19).collect::<String>());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_owned(),
        _ => "latest".to_owned(),
    }
}

/// The list's VERSION: the spec's image tag, and the one being rolled to.
fn list_version(c: &ValkeyCluster) -> String {
    let tag = image_tag(&c.spec.image);
    match c.status.as_ref().and_then(|s| s.upgrade.as_ref()) {
        Some(u) => format!("{tag} ({})", u.phase.to_lowercase()),
        None => tag,
    }
}

/// The server versions the pods run, from the journal (`INFO server` as
/// the operator read it), with the spec's image.
fn version_line(c: &ValkeyCluster, journal: Option<&JournalView>) -> String {
    let Some(view) = journal else {
        return format!(
            "image {} (the servers' versions are read from the journal, which cannot be read)",
            c.spec.image
        );
    };
    let mut by_version: std::collections::BTreeMap<(String, String), Vec<String>> =
        std::collections::BTreeMap::new();
    for (pod, v) in &view.state.versions {
        by_version
            .entry((v.version.clone(), v.image.clone()))
            .or_default()
            .push(pod.clone());
    }
    versions_text(&c.spec.image, &by_version)
}

/// `9.1.0 (valkey/valkey:9.1) on every pod observed (3)`, or each
/// version with its pods.
fn versions_text(
    image: &str,
    by_version: &std::collections::BTreeMap<(String, String), Vec<String>>,
) -> String {
    match by_version.len() {
        0 => format!("image {image} (no server version observed yet)"),
        1 => by_version
            .iter()
            .map(|((version, image), pods)| {
                format!("{version} ({image}) on every pod observed ({})", pods.len())
            })
            .collect(),
        _ => {
            let parts: Vec<String> = by_version
                .iter()
                .map(|((version, image), pods)| {
                    format!("{version} ({image}) on {}", pods.join(", "))
                })
                .collect();
            format!("MIXED: {}", parts.join("; "))
        }
    }
}

fn upgrade_line(u: &UpgradeStatus) -> String {
    let mut text = format!(
        "{} to {}{}",
        u.phase,
        u.image,
        u.version
            .as_deref()
            .map(|v| format!(" ({v})"))
            .unwrap_or_default()
    );
    if !u.from.is_empty() {
        text.push_str(&format!(" from {}", u.from.join(", ")));
    }
    if let Some(canary) = &u.canary {
        text.push_str(&format!(", canary {canary}"));
    }
    if !u.message.is_empty() {
        text.push_str(&format!(": {}", u.message));
    }
    text
}

/// What the operator is doing now: the intents decided and not finished
/// (from the journal), and the Progressing condition when it is True.
fn write_doing(
    out: &mut dyn Write,
    c: &ValkeyCluster,
    journal: Option<&JournalView>,
    now: Timestamp,
) -> Result<()> {
    let mut lines = Vec::new();
    match journal {
        Some(view) => {
            let mut in_flight: Vec<_> = view.state.in_flight.values().collect();
            in_flight.sort_by_key(|i| i.decided_seq);
            for i in in_flight {
                lines.push(format!(
                    "{} [{}] {} (decided at #{}, {} ago)",
                    i.planned.intent.describe(),
                    i.planned.reason.code.name(),
                    i.planned.reason.detail,
                    i.decided_seq,
                    age(i.decided_at, now)
                ));
            }
        }
        None => lines.push("intents in flight not known (the journal cannot be read)".to_owned()),
    }
    let status = c.status.clone().unwrap_or_default();
    if let Some(p) = status
        .condition(logbook_crds::v1alpha1::CONDITION_PROGRESSING)
        .filter(|p| p.status == "True")
    {
        lines.push(format!("Progressing: {} {}", p.reason, p.message));
    }
    if let Some(d) = &status.defaults {
        if d.rolling {
            lines.push("a change of the defaults is rolling".to_owned());
        }
        if let Some(w) = &d.waiting {
            lines.push(format!("a change of the defaults waits: {w}"));
        }
    }
    if lines.is_empty() {
        lines.push("nothing (no intent in flight)".to_owned());
    }
    for (n, line) in lines.iter().enumerate() {
        let label = if n == 0 { "Doing now:" } else { "" };
        writeln!(out, "{label:<15}{line}")?;
    }
    Ok(())
}

/// The last backup, the latest one when it did not complete, one
/// running, and the schedule.
fn write_backups(
    out: &mut dyn Write,
    c: &ValkeyCluster,
    backups: &std::result::Result<Vec<ValkeyBackup>, String>,
    now: Timestamp,
) -> Result<()> {
    let published = c
        .status
        .as_ref()
        .and_then(|s| s.backup.clone())
        .unwrap_or_default();
    let mut lines = Vec::new();
    let destination = c.spec.backup.destination.as_ref();
    match &published.last_completed {
        Some(last) => lines.push(format!(
            "last completed {last}{}{}",
            published
                .last_bytes
                .map(|b| format!(", {}", super::backup::size(b)))
                .unwrap_or_default(),
            published
                .last_completed_at
                .as_ref()
                .map(|t| format!(", {} ago", age(from_kube(t), now)))
                .unwrap_or_default()
        )),
        None => lines.push("none completed".to_owned()),
    }
    match backups {
        Ok(all) => {
            if let Some(latest) = all.last() {
                let name = latest.metadata.name.clone().unwrap_or_default();
                let st = latest.status.clone().unwrap_or_default();
                let completed = st.phase == Some(BackupPhase::Completed);
                if !(completed && published.last_completed.as_deref() == Some(name.as_str())) {
                    lines.push(format!(
                        "latest {name}: {}{}{}",
                        st.phase
                            .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}")),
                        latest
                            .metadata
                            .creation_timestamp
                            .as_ref()
                            .map(|t| format!(" (asked {} ago)", age(from_kube(t), now)))
                            .unwrap_or_default(),
                        st.message
                            .as_deref()
                            .filter(|_| !completed)
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        Err(e) => lines.push(format!("ValkeyBackups not readable: {e}")),
    }
    if let Some(running) = published
        .running
        .as_ref()
        .filter(|r| published.last_completed.as_ref() != Some(*r))
    {
        lines.push(format!("running now: {running}"));
    }
    match (&c.spec.backup.schedule, &published.next_scheduled_at) {
        (Some(schedule), Some(next)) => lines.push(format!(
            "schedule {schedule:?} (UTC), next at {} (in {})",
            next.0,
            age(now, from_kube(next))
        )),
        (Some(schedule), None) => lines.push(format!("schedule {schedule:?} (UTC)")),
        (None, _) => lines.push("no schedule".to_owned()),
    }
    if destination.is_none() {
        lines.push("no destination: set spec.backup.destination to take backups".to_owned());
    }
    if let Some(line) = archive_line(c, published.archive.as_ref(), now) {
        lines.push(line);
    }
    for (n, line) in lines.iter().enumerate() {
        let label = if n == 0 { "Backups:" } else { "" };
        writeln!(out, "{label:<15}{line}")?;
    }
    Ok(())
}

/// The continuous archive: on or off, its chains, how far back a restore
/// can go, the last break.
fn archive_line(
    c: &ValkeyCluster,
    archive: Option<&logbook_crds::v1alpha1::ArchiveStatus>,
    now: Timestamp,
) -> Option<String> {
    let asked = c.spec.backup.continuous_enabled();
    let Some(a) = archive else {
        return asked.then(|| "archive: asked for, not started yet".to_owned());
    };
    let since = a
        .oldest_restorable_time
        .as_ref()
        .map(|t| {
            format!(
                ", restorable since {} ({} ago)",
                t.0,
                age(from_kube(t), now)
            )
        })
        .unwrap_or_default();
    let state = match &a.location {
        Some(location) => format!(
            "archive: on into {location}, {} live chain(s)",
            a.live_chains
        ),
        None => "archive: off".to_owned(),
    };
    let broke = a
        .last_break
        .as_deref()
        .map(|b| format!("; last break: {b}"))
        .unwrap_or_default();
    Some(format!("{state}, {} kept{since}{broke}", a.chains))
}

/// The TLS certificate as the operator last read it (never its content).
/// External access (`spec.externalAccess`): where clients outside reach
/// the cluster, and what has no address yet; `None` while it is off.
fn external_line(c: &ValkeyCluster) -> Option<String> {
    let ext = &c.spec.external_access;
    if !ext.enabled {
        return None;
    }
    let endpoints = c
        .status
        .as_ref()
        .and_then(|s| s.endpoints.clone())
        .unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    if let Some(primary) = &endpoints.external_primary {
        parts.push(format!("primary at {primary}"));
    }
    if !endpoints.external_sentinels.is_empty() {
        parts.push(format!(
            "Sentinels at {}",
            endpoints.external_sentinels.join(", ")
        ));
    }
    if !endpoints.external.is_empty() {
        let pods: Vec<String> = endpoints
            .external
            .iter()
            .map(|(pod, at)| format!("{pod} {at}"))
            .collect();
        parts.push(pods.join(", "));
    }
    for (what, why) in &endpoints.external_waiting {
        parts.push(format!("{what} waits: {why}"));
    }
    if parts.is_empty() {
        parts.push("no address observed yet".to_owned());
    }
    Some(format!("{} ({})", ext.r#type.as_str(), parts.join("; ")))
}

fn certificate_line(c: &ValkeyCluster, now: Timestamp) -> String {
    if !c.spec.tls.enabled {
        return "none (TLS off)".to_owned();
    }
    let Some(tls) = c.status.as_ref().and_then(|s| s.tls.clone()) else {
        return "TLS on; the certificate not read by the operator yet".to_owned();
    };
    let expiry = match &tls.not_after {
        Some(t) if from_kube(t).0 <= now.0 => {
            format!("EXPIRED at {} ({} ago)", t.0, age(from_kube(t), now))
        }
        Some(t) => format!("expires {} (in {})", t.0, age(now, from_kube(t))),
        None => "expiry not known (not issued by the operator)".to_owned(),
    };
    let mut text = format!("Secret {}, issuer {}, {expiry}", tls.secret, tls.issuer);
    if let Some(problem) = &tls.problem {
        text.push_str(&format!("; PROBLEM: {problem}"));
    }
    text
}

/// The cluster's ValkeyUsers: phase, nodes holding them, what is wrong.
fn write_users(
    out: &mut dyn Write,
    users: &std::result::Result<Vec<ValkeyUser>, String>,
) -> Result<()> {
    match users {
        Err(e) => writeln!(out, "Users:         not readable: {e}")?,
        Ok(users) if users.is_empty() => writeln!(out, "Users:         none")?,
        Ok(users) => {
            writeln!(out, "Users:")?;
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let name = u.metadata.name.clone().unwrap_or_default();
                    let st = u.status.clone().unwrap_or_default();
                    vec![
                        format!("  {name}"),
                        st.username
                            .unwrap_or_else(|| u.spec.effective_username(&name).to_owned()),
                        st.phase
                            .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}")),
                        or_dash(st.nodes),
                        if u.spec.enabled { "yes" } else { "no" }.to_owned(),
                        or_dash(st.message),
                    ]
                })
                .collect();
            table(
                out,
                &["  NAME", "USER", "PHASE", "NODES", "ENABLED", "MESSAGE"],
                &rows,
            )?;
        }
    }
    Ok(())
}

/// Why the last failover happened: the status's reason, else the reason
/// of the decision that promoted (the last one before the promotion's
/// seq ordering a promotion), from the journal.
fn failover_reason(f: &FailoverRecord, journal: Option<&JournalView>) -> Option<String> {
    if let Some(reason) = &f.reason {
        return Some(reason.clone());
    }
    let seq = u64::try_from(f.seq?).ok()?;
    let decision = journal?.decisions.iter().rev().find(|d| {
        d.seq < seq
            && d.intents.iter().any(|i| {
                matches!(
                    i.name,
                    "PromoteReplica"
                        | "Switchover"
                        | "ClusterFailover"
                        | "SentinelFailover"
                        | "PromoteStandby"
                )
            })
    })?;
    let intent = decision.intents.first()?;
    Some(format!(
        "[{}] {} (decided at #{})",
        intent.code, intent.detail, decision.seq
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use logbook_crds::ValkeyClusterSpec;
    use logbook_crds::v1alpha1::{ClusterBackupStatus, ClusterTlsStatus};

    fn at(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn now() -> Timestamp {
        from_kube(&at("2026-11-30T12:00:00Z"))
    }

    fn replication() -> ValkeyCluster {
        ValkeyCluster::new(
            "cache",
            ValkeyClusterSpec::with_topology(Topology::Replication),
        )
    }

    #[test]
    fn the_certificate_says_its_expiry_or_that_tls_is_off() {
        let mut c = replication();
        assert_eq!(certificate_line(&c, now()), "none (TLS off)");
        c.spec.tls.enabled = true;
        assert!(certificate_line(&c, now()).contains("not read by the operator yet"));
        c.status = Some(logbook_crds::ValkeyClusterStatus {
            tls: Some(ClusterTlsStatus {
                secret: "cache-tls".to_owned(),
                issuer: "internal".to_owned(),
                not_after: Some(at("2026-12-30T12:00:00Z")),
                problem: None,
            }),
            ..Default::default()
        });
        assert_eq!(
            certificate_line(&c, now()),
            "Secret cache-tls, issuer internal, expires 2026-12-30T12:00:00Z (in 30d)"
        );
        if let Some(tls) = c.status.as_mut().and_then(|s| s.tls.as_mut()) {
            tls.not_after = Some(at("2026-11-29T12:00:00Z"));
            tls.problem = Some("node cache-1 serves another certificate".to_owned());
        }
        let line = certificate_line(&c, now());
        assert!(
            line.contains("EXPIRED at 2026-11-29T12:00:00Z (24h ago)"),
            "{line}"
        );
        assert!(
            line.ends_with("; PROBLEM: node cache-1 serves another certificate"),
            "{line}"
        );
    }

    #[test]
    fn the_external_line_names_each_address_and_what_waits() {
        let mut c = replication();
        assert_eq!(external_line(&c), None);
        c.spec.external_access.enabled = true;
        assert_eq!(
            external_line(&c).unwrap(),
            "NodePort (no address observed yet)"
        );
        c.status = Some(logbook_crds::ValkeyClusterStatus {
            endpoints: Some(logbook_crds::v1alpha1::EndpointsStatus {
                external_primary: Some("192.0.2.1:30009".to_owned()),
                external: [("cache-0".to_owned(), "192.0.2.1:30001".to_owned())].into(),
                external_waiting: [(
                    "cache-1".to_owned(),
                    "not scheduled on a node yet".to_owned(),
                )]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            external_line(&c).unwrap(),
            "NodePort (primary at 192.0.2.1:30009; cache-0 192.0.2.1:30001; cache-1 waits: not scheduled on a node yet)"
        );
        if let Some(e) = c.status.as_mut().and_then(|s| s.endpoints.as_mut()) {
            e.external_sentinels = vec!["192.0.2.1:30010".to_owned(), "192.0.2.2:30010".to_owned()];
            e.external_waiting.clear();
        }
        assert_eq!(
            external_line(&c).unwrap(),
            "NodePort (primary at 192.0.2.1:30009; Sentinels at 192.0.2.1:30010, 192.0.2.2:30010; cache-0 192.0.2.1:30001)"
        );
    }

    fn backup(name: &str, created: &str, phase: BackupPhase, message: &str) -> ValkeyBackup {
        let mut b = ValkeyBackup::new(
            name,
            logbook_crds::ValkeyBackupSpec {
                cluster: "cache".to_owned(),
                destination: None,
            },
        );
        b.metadata.creation_timestamp = Some(at(created));
        b.status = Some(logbook_crds::ValkeyBackupStatus {
            phase: Some(phase),
            message: Some(message.to_owned()),
            ..Default::default()
        });
        b
    }

    #[test]
    fn backups_say_the_last_completed_a_failed_latest_and_the_schedule() {
        let mut c = replication();
        let mut out = Vec::new();
        write_backups(&mut out, &c, &Ok(Vec::new()), now()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Backups:       none completed\n               no schedule\n               no destination: set spec.backup.destination to take backups\n"
        );
        c.spec.backup.destination = serde_json::from_value(serde_json::json!({
            "bucket": "backups", "credentialsSecret": "s3"
        }))
        .unwrap();
        c.spec.backup.schedule = Some("0 3 * * *".to_owned());
        c.status = Some(logbook_crds::ValkeyClusterStatus {
            backup: Some(ClusterBackupStatus {
                last_completed: Some("cache-1".to_owned()),
                last_completed_at: Some(at("2026-11-30T03:00:05Z")),
                last_bytes: Some(4096),
                running: None,
                next_scheduled_at: Some(at("2026-12-01T03:00:00Z")),
                archive: None,
            }),
            ..Default::default()
        });
        let backups = vec![
            backup(
                "cache-1",
                "2026-11-30T03:00:00Z",
                BackupPhase::Completed,
                "complete",
            ),
            backup(
                "cache-2",
                "2026-11-30T11:00:00Z",
                BackupPhase::Failed,
                "the bucket refused",
            ),
        ];
        let mut out = Vec::new();
        write_backups(&mut out, &c, &Ok(backups), now()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Backups:       last completed cache-1, 4.0 KiB, 8h ago\n               latest cache-2: Failed (asked 60m ago): the bucket refused\n               schedule \"0 3 * * *\" (UTC), next at 2026-12-01T03:00:00Z (in 15h)\n"
        );
    }

    #[test]
    fn image_tags_read_from_the_image() {
        assert_eq!(image_tag("valkey/valkey:9.1"), "9.1");
        assert_eq!(image_tag("registry:5000/valkey/valkey:8.0.1"), "8.0.1");
        assert_eq!(image_tag("registry:5000/valkey/valkey"), "latest");
        assert_eq!(
            image_tag("valkey/valkey@sha256:0123456789abcdef0123456789"),
            "@sha256:0123456789ab"
        );
    }

    #[test]
    fn versions_say_one_or_name_each_with_its_pods() {
        let mut by = std::collections::BTreeMap::new();
        assert_eq!(
            versions_text("valkey/valkey:9.1", &by),
            "image valkey/valkey:9.1 (no server version observed yet)"
        );
        by.insert(
            ("9.1.2".to_owned(), "valkey/valkey:9.1".to_owned()),
            vec!["c-0".to_owned(), "c-1".to_owned()],
        );
        assert_eq!(
            versions_text("valkey/valkey:9.1", &by),
            "9.1.2 (valkey/valkey:9.1) on every pod observed (2)"
        );
        by.insert(
            ("8.1.1".to_owned(), "valkey/valkey:8.1".to_owned()),
            vec!["c-2".to_owned()],
        );
        assert_eq!(
            versions_text("valkey/valkey:9.1", &by),
            "MIXED: 8.1.1 (valkey/valkey:8.1) on c-2; 9.1.2 (valkey/valkey:9.1) on c-0, c-1"
        );
    }
}
