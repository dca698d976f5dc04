//! The Valkey Cluster checks of the crash sweeps: what every node says of
//! itself (`CLUSTER NODES`), against the status, the role labels and
//! `redis-cli --cluster check`; and the claims on slots a monitor compares
//! while the sweep runs.

use std::collections::BTreeMap;

use kube::ResourceExt;
use logbook::valkey::{ClusterNodeLine, parse_cluster_nodes};
use logbook_crds::ValkeyCluster;

use super::operator_common::*;

/// Slots in a Valkey Cluster.
const SLOTS: usize = 16_384;

/// What one node says of itself: the `myself` line of its `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeClaim {
    /// Its node id.
    pub id: String,
    /// Whether it says it is a primary.
    pub primary: bool,
    /// The node it says it follows (a replica).
    pub follows: Option<String>,
    /// Its config epoch (a replica shows its primary's).
    pub epoch: u64,
    /// The slots it says it serves, inclusive ranges.
    pub slots: Vec<(u16, u16)>,
}

/// Every line of `addr`'s `CLUSTER NODES`, or `None` when it does not
/// answer within a second.
async fn cluster_nodes(addr: &str, password: &str) -> Option<Vec<ClusterNodeLine>> {
    cluster_nodes_timed(addr, password)
        .await
        .map(|(lines, _)| lines)
}

/// [`cluster_nodes`], with when the answer held.
async fn cluster_nodes_timed(addr: &str, password: &str) -> Option<(Vec<ClusterNodeLine>, Window)> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("NODES");
    let (reply, window) = try_query_timed(addr, password, &cmd).await?;
    let text = match reply {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        redis::Value::SimpleString(s) => s,
        _ => return None,
    };
    Some((parse_cluster_nodes(&text).ok()?, window))
}

fn claim_of(line: &ClusterNodeLine) -> NodeClaim {
    NodeClaim {
        id: line.id.clone(),
        primary: line.primary,
        follows: line.primary_id.clone(),
        epoch: line.config_epoch,
        slots: line.slots.iter().map(|r| (r.start, r.end)).collect(),
    }
}

/// What the node at `addr` says of itself, and when that held.
pub async fn node_claim(addr: &str, password: &str) -> Option<(NodeClaim, Window)> {
    let (lines, window) = cluster_nodes_timed(addr, password).await?;
    lines
        .iter()
        .find(|l| l.myself)
        .map(|l| (claim_of(l), window))
}

/// Two nodes that each say they are the primary of one slot at one config
/// epoch: the split brain Valkey's epochs exist to rule out (claims at
/// different epochs are a handover the higher epoch settles).
pub fn slot_conflict(claims: &[(String, NodeClaim)]) -> Option<String> {
    let mut owner: BTreeMap<(u16, u64), &str> = BTreeMap::new();
    for (pod, claim) in claims.iter().filter(|(_, c)| c.primary) {
        for &(start, end) in &claim.slots {
            for slot in start..=end {
                if let Some(other) = owner.insert((slot, claim.epoch), pod.as_str())
                    && other != pod
                {
                    return Some(format!(
                        "{other} and {pod} both claim slot {slot} at config epoch {}: {claims:?}",
                        claim.epoch
                    ));
                }
            }
        }
    }
    None
}

/// The shards the spec of `vkc` asks for (3 unless it says).
pub fn spec_shards(vkc: &ValkeyCluster) -> usize {
    vkc.spec.shards.map_or(3, |s| usize::try_from(s).unwrap())
}

/// The shard primaries, when the status, the role labels, every node's
/// own `CLUSTER NODES` and `redis-cli --cluster check` agree: as many pods
/// as the spec's shards of a primary and one replica, every one a member
/// that answers and knows exactly the others (no node left over from a
/// shard removed), none failing or without an address; every slot served
/// by exactly one of the spec's number of primaries, each followed by
/// exactly one replica; the pods labelled primary are those; each shard of
/// the status names that primary, its replica and its slots. Otherwise,
/// what disagrees.
pub async fn shards_agree(env: &Env, name: &str) -> Result<Vec<String>, String> {
    let vkc = env.vkc(name).await;
    let shards = spec_shards(&vkc);
    let nodes = shards * 2;
    let password = env.password(name).await;
    let mut seen: BTreeMap<String, (String, NodeClaim)> = BTreeMap::new();
    for pod in env.pods(name).await {
        if pod.metadata.deletion_timestamp.is_some() {
            return Err(format!("{} is being deleted", pod.name_any()));
        }
        let pod_name = pod.name_any();
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .ok_or_else(|| format!("{pod_name} has no address"))?;
        let addr = format!("{ip}:{PORT}");
        let lines = cluster_nodes(&addr, &password)
            .await
            .ok_or_else(|| format!("{pod_name} does not answer CLUSTER NODES"))?;
        let bad: Vec<&ClusterNodeLine> = lines
            .iter()
            .filter(|l| l.failed || l.suspected || l.noaddr || l.handshake || !l.connected)
            .collect();
        if !bad.is_empty() || lines.len() != nodes {
            return Err(format!(
                "{pod_name} lists {} nodes, these failing, unreachable, without address or in hand-shake: {bad:?}",
                lines.len()
            ));
        }
        let myself = lines
            .iter()
            .find(|l| l.myself)
            .ok_or_else(|| format!("{pod_name} has no line for itself"))?;
        seen.insert(pod_name, (addr, claim_of(myself)));
    }
    if seen.len() != nodes {
        return Err(format!("{} pods, not {nodes}", seen.len()));
    }
    // Each slot served by one primary, as the primaries themselves say.
    let mut owners: Vec<Option<&str>> = vec![None; SLOTS];
    let mut primaries: BTreeMap<&str, &NodeClaim> = BTreeMap::new();
    for (pod, (_, claim)) in &seen {
        if !claim.primary {
            continue;
        }
        if claim.slots.is_empty() {
            return Err(format!("{pod} is a primary without a slot"));
        }
        primaries.insert(pod.as_str(), claim);
        for &(start, end) in &claim.slots {
            for slot in start..=end {
                if let Some(other) = owners[usize::from(slot)].replace(pod) {
                    return Err(format!("{other} and {pod} both serve slot {slot}"));
                }
            }
        }
    }
    let unserved = owners.iter().filter(|o| o.is_none()).count();
    if unserved > 0 || primaries.len() != shards {
        return Err(format!(
            "{unserved} slots unserved, primaries {:?}",
            primaries.keys().collect::<Vec<_>>()
        ));
    }
    // Each primary followed by exactly one replica.
    let mut replicas: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (pod, (_, claim)) in seen.iter().filter(|(_, (_, c))| !c.primary) {
        let primary = primaries
            .iter()
            .find(|(_, p)| claim.follows.as_deref() == Some(p.id.as_str()))
            .map(|(name, _)| *name)
            .ok_or_else(|| format!("{pod} follows {:?}, no shard primary", claim.follows))?;
        replicas.entry(primary).or_default().push(pod.clone());
    }
    if primaries
        .keys()
        .any(|p| replicas.get(p).is_none_or(|r| r.len() != 1))
    {
        return Err(format!("replicas by primary {replicas:?}"));
    }
    // The labels and the status say the same.
    let labels = env.role_labels(name).await;
    let labelled: Vec<&str> = labels
        .iter()
        .filter(|(_, role)| role.as_deref() == Some("primary"))
        .map(|(pod, _)| pod.as_str())
        .collect();
    if labelled != primaries.keys().copied().collect::<Vec<_>>() {
        return Err(format!(
            "primaries {:?}, role labels {labels:?}",
            primaries.keys().collect::<Vec<_>>()
        ));
    }
    let shards = vkc
        .status
        .as_ref()
        .map(|s| s.shards.clone())
        .unwrap_or_default();
    for (pod, claim) in &primaries {
        let shard = shards
            .iter()
            .find(|s| s.primary.as_deref() == Some(*pod))
            .ok_or_else(|| format!("no shard of the status has primary {pod}: {shards:?}"))?;
        let published: Vec<(u16, u16)> = shard
            .slots
            .iter()
            .map(|r| {
                (
                    u16::try_from(r.start).unwrap_or(u16::MAX),
                    u16::try_from(r.end).unwrap_or(u16::MAX),
                )
            })
            .collect();
        if merged(&published) != merged(&claim.slots) || Some(&shard.replicas) != replicas.get(pod)
        {
            return Err(format!(
                "the status shard {shard:?} differs from what the nodes say: {pod} serves {:?}, followed by {:?}",
                claim.slots,
                replicas.get(pod)
            ));
        }
    }
    if shards.len() != primaries.len() {
        return Err(format!("the status has {} shards", shards.len()));
    }
    let (seed, _) = &seen[*primaries.keys().next().unwrap()];
    let (seed, password) = (seed.clone(), password.clone());
    tokio::task::spawn_blocking(move || check_clean(&seed, &password))
        .await
        .unwrap()?;
    Ok(primaries.keys().map(|p| (*p).to_owned()).collect())
}

/// Ranges sorted, adjacent ones joined.
fn merged(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (start, end) in sorted {
        match out.last_mut() {
            Some(last) if u32::from(last.1) + 1 >= u32::from(start) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Every pod's current address.
pub async fn pod_addrs(env: &Env, name: &str) -> Vec<String> {
    env.pods(name)
        .await
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:{PORT}"))
        .collect()
}
