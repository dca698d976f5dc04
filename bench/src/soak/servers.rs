//! What the soak asks the API and the servers: the cluster's status and
//! pods, each data pod's `ROLE` (the sampler, and the gate of node faults),
//! and at the end every acknowledged write and the slot map.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::Api;
use kube::api::ListParams;
use logbook::valkey::{Password, RoleReply, parse_role};
use logbook_crds::{ClusterPhase, ValkeyCluster};
use parking_lot::Mutex;

use super::invariants::{DoubleTracker, NodeView, myself_slots, redundant, slots_owned_once};
use super::schedule::SoakTopology;
use super::{FAILOVER_REQUESTED, NAME, NS};
use crate::conn::query_once;
use crate::writer::WriteLog;
use crate::{BenchError, harness};

/// What the fault loop and the sampler share.
pub(super) struct Shared {
    /// The last round of `ROLE` answers.
    pub(super) roles: Mutex<Vec<NodeView>>,
    /// Pod name → `ip:6379` of the last listing.
    pub(super) addrs: Mutex<BTreeMap<String, String>>,
}

impl Shared {
    /// (pod, `ip:6379`) of the last listing.
    pub(super) fn pod_addrs(&self) -> Vec<(String, String)> {
        self.addrs
            .lock()
            .iter()
            .map(|(p, a)| (p.clone(), a.clone()))
            .collect()
    }
}

pub(super) async fn current(
    vkcs: &Api<ValkeyCluster>,
    field: impl Fn(&ValkeyCluster) -> Option<i32>,
) -> Option<i32> {
    vkcs.get(NAME).await.ok().and_then(|v| field(&v))
}

/// Waits until the cluster is Ready with its spec's generation observed
/// and no switchover request pending; `Some` of the object read so, or
/// `None` after `timeout`.
pub(super) async fn converged(
    vkcs: &Api<ValkeyCluster>,
    timeout: Duration,
) -> Option<ValkeyCluster> {
    let start = Instant::now();
    loop {
        if let Ok(v) = vkcs.get(NAME).await {
            let status = v.status.as_ref();
            let ready = status.and_then(|s| s.phase) == Some(ClusterPhase::Ready);
            let observed = status.and_then(|s| s.observed_generation) == v.metadata.generation;
            let request = v
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(FAILOVER_REQUESTED));
            if ready && observed && !request {
                return Some(v);
            }
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// After a node fault, the next waits at least this long: a killed
/// process or a deleted pod shows in a `ROLE` round within it.
pub(super) const NODE_FAULT_QUIET: Duration = Duration::from_secs(2);

/// How long a node fault waits for [`fault_gate`] before it is skipped.
pub(super) const NODE_FAULT_GATE: Duration = Duration::from_secs(20);

/// The fault model is one node fault at a time: a node fault is injected
/// only once the cluster is back to full redundancy, as the servers
/// themselves answer, not only as the operator's status says (which lags
/// what it has not probed yet). Waits until [`NODE_FAULT_QUIET`] has
/// passed since the last node fault, then [`back_to_full`] for up to
/// [`NODE_FAULT_GATE`]; `Err` says what was still missing.
pub(super) async fn fault_gate(
    vkcs: &Api<ValkeyCluster>,
    pods: &Api<Pod>,
    shared: &Shared,
    password: &Password,
    last_node_fault: Instant,
) -> Result<(), String> {
    tokio::time::sleep_until((last_node_fault + NODE_FAULT_QUIET).into()).await;
    back_to_full(vkcs, pods, shared, password, NODE_FAULT_GATE).await
}

/// Waits, up to `timeout`, until the status is converged and a fresh
/// `ROLE` round of every data pod is [`redundant`]: what the gate of a
/// node fault and the end of a soak wait for. `Err` says what was still
/// missing.
pub(super) async fn back_to_full(
    vkcs: &Api<ValkeyCluster>,
    pods: &Api<Pod>,
    shared: &Shared,
    password: &Password,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut why = "not Ready".to_owned();
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(vkc) = converged(vkcs, left).await else {
            return Err(format!("not Ready: {}", status_line(vkcs).await));
        };
        let expected = usize::try_from(vkc.spec.effective_replicas()).unwrap_or(0);
        let cluster = vkc.spec.topology == logbook_crds::Topology::Cluster;
        let round = role_round(pods, shared, password, cluster).await;
        match redundant(&round, expected) {
            Ok(()) => return Ok(()),
            Err(e) => why = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(why)
}

pub(super) async fn status_line(vkcs: &Api<ValkeyCluster>) -> String {
    match vkcs.get(NAME).await {
        Ok(v) => match v.status {
            Some(s) => {
                let conditions: Vec<String> = s
                    .conditions
                    .iter()
                    .map(|c| format!("{}={} ({}: {})", c.type_, c.status, c.reason, c.message))
                    .collect();
                format!("phase {:?}; {}", s.phase, conditions.join("; "))
            }
            None => "no status".into(),
        },
        Err(e) => format!("unreadable: {e}"),
    }
}

pub(super) async fn password(client: &kube::Client) -> Result<Password, BenchError> {
    let secret = Api::<Secret>::namespaced(client.clone(), NS)
        .get(&format!("{NAME}-password"))
        .await
        .map_err(|e| harness("the password Secret")(e.to_string()))?;
    secret
        .data
        .and_then(|d| d.get("password").cloned())
        .and_then(|b| String::from_utf8(b.0).ok())
        .map(Password::new)
        .ok_or_else(|| harness("the password")("missing".into()))
}

pub(super) async fn service_addr(
    client: &kube::Client,
    name: &str,
    port: u16,
) -> Result<String, BenchError> {
    let svc = Api::<Service>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .map_err(|e| harness(format!("the Service {name}"))(e.to_string()))?;
    let ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .ok_or_else(|| harness(format!("the Service {name}"))("no clusterIP".into()))?;
    Ok(format!("{ip}:{port}"))
}

/// The data pods (Sentinels excluded) with an address.
pub(super) async fn refresh_addrs(pods: &Api<Pod>, shared: &Shared) {
    let selector = format!("{}={NAME}", logbook::resources::labels::INSTANCE);
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else {
        return;
    };
    let mut addrs = BTreeMap::new();
    for p in list.items {
        let sentinel = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(logbook::resources::labels::COMPONENT))
            .is_some_and(|c| c == logbook::resources::labels::COMPONENT_SENTINEL);
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone());
        if let (false, Some(name), Some(ip)) = (sentinel, p.metadata.name, ip) {
            addrs.insert(name, format!("{ip}:6379"));
        }
    }
    *shared.addrs.lock() = addrs;
}

/// One node's view: `ROLE`, and its own slots in a Cluster.
pub(super) async fn view(
    pod: &str,
    addr: &str,
    password: &Password,
    cluster: bool,
) -> Option<NodeView> {
    let limit = Duration::from_millis(300);
    let reply: redis::Value = query_once(addr, Some(password), &redis::cmd("ROLE"), "ROLE", limit)
        .await
        .ok()?;
    let (primary, follows) = match parse_role(&logbook::valkey::reply(reply)).ok()? {
        RoleReply::Primary { .. } => (true, None),
        RoleReply::Replica { host, state, .. } => (false, (state == "connected").then_some(host)),
    };
    let slots = if cluster && primary {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let nodes: String = query_once(addr, Some(password), &cmd, "CLUSTER NODES", limit)
            .await
            .ok()?;
        myself_slots(&nodes)
    } else {
        Vec::new()
    };
    Some(NodeView {
        pod: pod.to_owned(),
        ip: addr.rsplit_once(':').map_or(addr, |(ip, _)| ip).to_owned(),
        primary,
        follows,
        slots,
    })
}

/// Every data pod of a fresh listing asked at once ([`view`]); the pods
/// that did not answer are left out.
async fn role_round(
    pods: &Api<Pod>,
    shared: &Shared,
    password: &Password,
    cluster: bool,
) -> Vec<NodeView> {
    refresh_addrs(pods, shared).await;
    futures::future::join_all(
        shared
            .pod_addrs()
            .iter()
            .map(|(pod, addr)| view(pod, addr, password, cluster)),
    )
    .await
    .into_iter()
    .flatten()
    .collect()
}

pub(super) async fn sample(
    pods: Api<Pod>,
    shared: Arc<Shared>,
    password: Password,
    cluster: bool,
    stop: Arc<AtomicBool>,
    start: Instant,
) -> DoubleTracker {
    let mut tracker = DoubleTracker::default();
    while !stop.load(Ordering::Relaxed) {
        let round = role_round(&pods, &shared, &password, cluster).await;
        tracker.round(&round, cluster, start.elapsed().as_secs_f64());
        *shared.roles.lock() = round;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tracker
}

/// The acknowledged keys missing at the end.
pub(super) async fn read_back(
    topology: SoakTopology,
    log: &WriteLog,
    acked: &[u64],
    vkcs: &Api<ValkeyCluster>,
    shared: &Shared,
    service: &str,
    password: &Password,
) -> Result<Vec<u64>, BenchError> {
    if topology == SoakTopology::Cluster {
        let mut seeds = vec![service.to_owned()];
        seeds.extend(shared.addrs.lock().values().cloned());
        return crate::cluster_client::missing_in_cluster(
            &seeds,
            Some(password),
            &log.prefix,
            acked,
        )
        .await;
    }
    let primary = vkcs
        .get(NAME)
        .await
        .ok()
        .and_then(|v| v.status.and_then(|s| s.primary))
        .ok_or_else(|| harness("the primary")("the status names none".into()))?;
    let addr = shared
        .addrs
        .lock()
        .get(&primary)
        .cloned()
        .ok_or_else(|| harness("the primary")(format!("{primary} has no address")))?;
    crate::readback::missing_keys(&addr, Some(password), &log.prefix, acked).await
}

/// Every slot owned once, by the primaries' own claims.
pub(super) async fn slot_check(shared: &Shared, password: &Password) -> Result<(), String> {
    let addrs = shared.pod_addrs();
    let mut primaries = Vec::new();
    for (pod, addr) in &addrs {
        match view(pod, addr, password, true).await {
            Some(v) if v.primary => primaries.push((v.pod, v.slots)),
            Some(_) => {}
            None => return Err(format!("{pod} ({addr}) does not answer")),
        }
    }
    slots_owned_once(&primaries)
}
