//! What a crash sweep does differently per topology: the cluster it
//! creates, when it counts as carried out, which primary a failover point
//! hits, how the converged cluster is checked (one primary by `ROLE`, or
//! shards by `CLUSTER NODES`), the client writing throughout and where
//! its writes are read back, and what two claims at once mean to the
//! monitor of the whole sweep. Everything else is the sweep's, shared.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;
use logbook::valkey::Password;
use logbook_bench::cluster_writer::{ClusterProbeConfig, start_cluster_probe};
use logbook_bench::{WriteLog, WriteProbe};
use logbook_crds::ValkeyCluster;

use super::cluster::{NodeClaim, node_claim, pod_addrs, shards_agree, slot_conflict, spec_shards};
use super::operator_common::*;

/// The topology a sweep runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One primary and two replicas.
    Replication,
    /// Shards of one primary and one replica: 3, or as many as a
    /// reshard has asked for since.
    Cluster,
    /// One primary and two replicas watched by three Sentinels, which
    /// fail the primary over themselves.
    Sentinel,
    /// One pod. Its writes are not probed: a lone server killed loses
    /// what it had not yet written to disk, by design.
    Standalone,
}

/// What one pod claims, for the monitor.
#[derive(Debug, Clone)]
enum Claim {
    /// Its `ROLE` kind (`master`, `slave`).
    Role(String),
    /// What its node says of itself.
    Node(NodeClaim),
}

impl Topology {
    /// For names: the environment's, the instances'.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Replication => "",
            Self::Cluster => "vc-",
            Self::Sentinel => "sn-",
            Self::Standalone => "sa-",
        }
    }

    /// Pods of a converged cluster as created (a reshard may add some).
    pub fn pods(self) -> usize {
        match self {
            Self::Replication | Self::Sentinel => 3,
            Self::Cluster => 6,
            Self::Standalone => 1,
        }
    }

    /// The spec of a new cluster `name`.
    pub fn yaml(self, name: &str) -> String {
        match self {
            Self::Replication => replication_yaml(name, 3),
            Self::Cluster => cluster_yaml(name),
            Self::Sentinel => sentinel_yaml(name),
            Self::Standalone => standalone_yaml(name),
        }
    }

    /// Whether the status says the cluster is whole: Ready on its
    /// generation (for a Cluster, with the spec's shards of one replica
    /// each holding its share of the slots, no reshard under way).
    pub fn ready(self, vkc: &ValkeyCluster) -> bool {
        match self {
            Self::Replication => is_ready(vkc, replicas(vkc)),
            Self::Cluster => balanced(vkc, spec_shards(vkc)),
            Self::Sentinel | Self::Standalone => is_ready(vkc, self.pods()),
        }
    }

    /// Waits until `name` is whole, by its status and its role labels.
    pub async fn wait_ready(self, env: &Env, name: &str, timeout: Duration) {
        match self {
            Self::Replication | Self::Sentinel | Self::Standalone => {
                env.wait_ready(name, self.pods(), timeout).await;
            }
            Self::Cluster => {
                let deadline = Instant::now() + timeout;
                loop {
                    let vkc = env
                        .wait_status(name, timeout, "shards of 1 replica, balanced", |v| {
                            self.ready(v)
                        })
                        .await;
                    let mut published: Vec<String> = vkc
                        .status
                        .iter()
                        .flat_map(|s| s.shards.iter().filter_map(|sh| sh.primary.clone()))
                        .collect();
                    published.sort();
                    let labelled: Vec<String> = env
                        .role_labels(name)
                        .await
                        .into_iter()
                        .filter(|(_, role)| role.as_deref() == Some("primary"))
                        .map(|(pod, _)| pod)
                        .collect();
                    if labelled == published {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{name} is Ready but the pods labelled primary {labelled:?} are not its shard primaries {published:?}\n{}",
                        env.dump(name).await
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The primary failover point `n` hits: the one primary, or the shards'
    /// in turn.
    pub fn victim(self, vkc: &ValkeyCluster, n: u64) -> String {
        match self {
            Self::Replication | Self::Sentinel | Self::Standalone => primary(vkc),
            Self::Cluster => {
                let shards = &vkc.status.as_ref().expect("a status").shards;
                let i = usize::try_from(n).unwrap() % shards.len();
                shards[i]
                    .primary
                    .clone()
                    .expect("every shard has a primary")
            }
        }
    }

    /// The primaries, when the status, the role labels and what the pods
    /// say of themselves agree; otherwise what disagrees.
    pub async fn agree(self, env: &Env, name: &str) -> Result<Vec<String>, String> {
        match self {
            Self::Replication | Self::Sentinel | Self::Standalone => {
                roles_agree(env, name).await.map(|p| vec![p])
            }
            Self::Cluster => shards_agree(env, name).await,
        }
    }

    /// A client writing with `WAIT 1` to `name`: through the client
    /// Service, or routed by slot from the pods' addresses.
    pub async fn start_probe(self, env: &Env, name: &str) -> Option<WriteProbe> {
        let password = env.password(name).await;
        match self {
            Self::Replication | Self::Sentinel => Some(write_probe(
                &env.service_addr(name).await,
                &password,
                "probe",
            )),
            Self::Cluster => {
                let mut config = ClusterProbeConfig::new(pod_addrs(env, name).await, "probe");
                config.password = Some(Password::new(password));
                Some(start_cluster_probe(config))
            }
            Self::Standalone => None,
        }
    }

    /// The acknowledged writes of `log` that `name` does not hold: read
    /// on the primary, or each from its slot's primary. Returns them and
    /// where they were read.
    pub async fn missing(self, env: &Env, name: &str, log: &WriteLog) -> (Vec<u64>, String) {
        let password = Password::new(env.password(name).await);
        let acked = log.acked_keys();
        match self {
            Self::Replication | Self::Sentinel | Self::Standalone => {
                let primary = primary(&env.vkc(name).await);
                let addr = env.pod_addr(&primary).await;
                let missing =
                    logbook_bench::missing_keys(&addr, Some(&password), &log.prefix, &acked)
                        .await
                        .unwrap();
                (missing, primary)
            }
            Self::Cluster => {
                let seeds = pod_addrs(env, name).await;
                let missing = logbook_bench::cluster_client::missing_in_cluster(
                    &seeds,
                    Some(&password),
                    &log.prefix,
                    &acked,
                )
                .await
                .unwrap();
                (missing, "their slots' primaries".to_owned())
            }
        }
    }

    /// What the pod at `addr` claims now, if it answers, and when the
    /// claim held (from its command sent to its reply read).
    async fn claim(self, addr: &str, password: &str) -> Option<(Claim, Window)> {
        match self {
            Self::Replication | Self::Sentinel | Self::Standalone => try_role_timed(addr, password)
                .await
                .map(|((kind, _), window)| (Claim::Role(kind), window)),
            Self::Cluster => node_claim(addr, password)
                .await
                .map(|(node, window)| (Claim::Node(node), window)),
        }
    }

    /// Two claims that must never stand at once: two pods answering
    /// `ROLE` master, or two nodes claiming one slot at one config epoch,
    /// in answers whose windows overlap. (Answers of one poll that do not
    /// overlap were true at different moments: under load a connection
    /// can take a second, and the primary answering before it was killed
    /// is no conflict with its successor answering after.)
    fn conflict(self, claims: &[(String, Claim, Window)]) -> Option<String> {
        for (i, (a, claim_a, window_a)) in claims.iter().enumerate() {
            for (b, claim_b, window_b) in claims.iter().skip(i + 1) {
                if !window_a.overlaps(window_b) {
                    continue;
                }
                match (claim_a, claim_b) {
                    (Claim::Role(x), Claim::Role(y)) if x == "master" && y == "master" => {
                        return Some(format!("[{a:?}, {b:?}] both answer ROLE master"));
                    }
                    (Claim::Node(x), Claim::Node(y)) => {
                        if let Some(conflict) =
                            slot_conflict(&[(a.clone(), x.clone()), (b.clone(), y.clone())])
                        {
                            return Some(conflict);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }
}

/// The primary, when the status, the role labels and every pod's own
/// `ROLE` agree on it: it answers "master" and every other pod is a
/// replica following it. Otherwise, what disagrees.
async fn roles_agree(env: &Env, name: &str) -> Result<String, String> {
    let vkc = env.vkc(name).await;
    let primary = vkc
        .status
        .as_ref()
        .and_then(|s| s.primary.clone())
        .ok_or("no primary in the status")?;
    let labels = env.role_labels(name).await;
    let labelled: Vec<&String> = labels
        .iter()
        .filter(|(_, role)| role.as_deref() == Some("primary"))
        .map(|(pod, _)| pod)
        .collect();
    if labelled != [&primary] {
        return Err(format!("status primary {primary}, role labels {labels:?}"));
    }
    let password = env.password(name).await;
    let mut roles = BTreeMap::new();
    for pod in env.pods(name).await {
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        let role = match &ip {
            Some(ip) => try_role(&format!("{ip}:{PORT}"), &password).await,
            None => None,
        };
        roles.insert(pod.name_any(), (ip, role));
    }
    let primary_ip = roles.get(&primary).and_then(|(ip, _)| ip.clone());
    let agree = roles.iter().all(|(pod, (_, role))| match role {
        Some((kind, _)) if *pod == primary => kind == "master",
        Some((kind, follows)) => kind == "slave" && follows.is_some() && *follows == primary_ip,
        None => false,
    });
    if agree {
        Ok(primary)
    } else {
        Err(format!(
            "status primary {primary}, pods (ip, ROLE) {roles:?}"
        ))
    }
}

/// Asks every pod what it claims every 100 ms and keeps every moment two
/// claims conflicted ([`Topology::conflict`]: in answers that held at a
/// common instant). For the failovers only: a
/// switchover promotes its target a few milliseconds before it demotes the
/// paused old primary, so there two masters are briefly expected.
pub struct ClaimMonitor {
    conflicts: Arc<Mutex<Vec<String>>>,
    polls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ClaimMonitor {
    /// Watches the pods of `cluster`.
    pub fn start(env: &Env, topology: Topology, cluster: &str, password: &str) -> Self {
        let pods: kube::Api<Pod> = env.api();
        let selector = format!("valkey.logbook.dev/cluster={cluster}");
        let password = password.to_owned();
        let conflicts = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicUsize::new(0));
        let (seen, count) = (conflicts.clone(), polls.clone());
        let began = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await {
                    let asks = list.items.iter().filter_map(|p| {
                        let ip = p.status.as_ref()?.pod_ip.clone()?;
                        // Named with the address asked and the pod's uid
                        // suffix: a conflict then says which process
                        // answered (a pod replaced meanwhile shows).
                        let uid = p.metadata.uid.clone().unwrap_or_default();
                        let uid = uid.get(..8).unwrap_or(&uid).to_owned();
                        let (name, password) =
                            (format!("{}@{ip}/{uid}", p.name_any()), password.clone());
                        Some(async move {
                            let claim = topology.claim(&format!("{ip}:{PORT}"), &password).await;
                            claim.map(|(c, window)| (name, c, window))
                        })
                    });
                    let claims: Vec<(String, Claim, Window)> = futures::future::join_all(asks)
                        .await
                        .into_iter()
                        .flatten()
                        .collect();
                    count.fetch_add(1, Ordering::Relaxed);
                    if let Some(conflict) = topology.conflict(&claims) {
                        seen.lock()
                            .unwrap()
                            .push(format!("{:?}: {conflict}", began.elapsed()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            conflicts,
            polls,
            task,
        }
    }

    /// The moments of conflict since the start or the last call (a run
    /// that carries out a planned switchover discards its own:
    /// `tests/stale_state.rs`).
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.conflicts.lock().unwrap())
    }

    /// The polls made so far.
    pub fn polls(&self) -> usize {
        self.polls.load(Ordering::Relaxed)
    }

    /// Stops; returns the polls made and the moments of conflict.
    pub fn stop(self) -> (usize, Vec<String>) {
        self.task.abort();
        let conflicts = self.conflicts.lock().unwrap().clone();
        (self.polls.load(Ordering::Relaxed), conflicts)
    }
}

/// The pods a Replication spec asks for.
fn replicas(vkc: &ValkeyCluster) -> usize {
    usize::try_from(vkc.spec.replicas.unwrap_or(3)).unwrap_or(3)
}

#[test]
fn two_masters_conflict_only_in_answers_that_held_at_one_instant() {
    let t0 = Instant::now();
    let at = |from: u64, to: u64| Window {
        sent: t0 + Duration::from_millis(from),
        received: t0 + Duration::from_millis(to),
    };
    let master = || Claim::Role("master".to_owned());
    let replica = || Claim::Role("slave".to_owned());
    let claims = |b: Window| {
        vec![
            ("demo-0".to_owned(), master(), at(0, 5)),
            ("demo-1".to_owned(), master(), b),
            ("demo-2".to_owned(), replica(), at(0, 900)),
        ]
    };
    let topology = Topology::Replication;
    assert!(topology.conflict(&claims(at(3, 8))).is_some());
    // The old primary answered, then its successor a second later (a slow
    // connection): both true, at different moments.
    assert!(topology.conflict(&claims(at(900, 910))).is_none());
}
