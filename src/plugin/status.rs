//! `kubectl valkey status [name]`: a table of the namespace's clusters
//! (from their published status), or one cluster in detail — the roles,
//! replication offsets and lag of its pods come from its journal, i.e.
//! what the operator last observed, and say when that was. A Valkey
//! Cluster has a primary per shard: its shards stand where a Replication
//! cluster's primary does (`shards.rs`), with its reshard under them
//! while one stands (`status.reshard`).

use std::io::Write;

use k8s_openapi::api::core::v1::Pod;
use logbook_crds::{Topology, ValkeyCluster};
use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, LinkStatus, Reachability, Role, Timestamp};

use super::connect::Kube;
use super::error::Result;
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

fn failover_line(f: &logbook_crds::v1alpha1::FailoverRecord, now: Timestamp) -> String {
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
    write_header(out, kube, &cluster, now)?;
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

fn write_header(out: &mut dyn Write, kube: &Kube, c: &ValkeyCluster, now: Timestamp) -> Result<()> {
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
                "{}{}",
                failover_line(f, now),
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
