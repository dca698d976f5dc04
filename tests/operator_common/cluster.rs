//! Valkey Cluster checks shared by the Cluster tests: the 3 × 1 spec they
//! create, when its status says it is formed or balanced, `redis-cli
//! --cluster check`, the replay tool's audit of the journal (sled or
//! ConfigMaps), and the resharding tests' key load, writer and read-back.
#[allow(unused_imports)]
use super::*;

use std::process::{Command, Stdio};

use clap::Parser;
use logbook_replay::Input;

/// A 3-shard cluster of one replica per shard, with a node timeout short
/// enough for Valkey's own detection to matter within a test.
pub fn cluster_yaml(name: &str) -> String {
    format!(
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {name}
spec:
  topology: Cluster
  shards: 3
  replicasPerShard: 1
  clusterNodeTimeoutMilliseconds: 5000
  storage:
    size: 1Gi
"
    )
}

/// Ready on 6 pods, and the status shows 3 shards of one replica each
/// covering every slot.
pub fn cluster_ready(vkc: &ValkeyCluster) -> bool {
    is_ready(vkc, 6)
        && vkc.status.as_ref().is_some_and(|s| {
            s.shards.len() == 3
                && s.shards.iter().all(|sh| sh.replicas.len() == 1)
                && s.shards
                    .iter()
                    .flat_map(|sh| sh.slots.iter())
                    .map(|r| r.end - r.start + 1)
                    .sum::<i32>()
                    == 16_384
        })
}

/// `redis-cli` against `addr` (stdout and stderr together).
pub fn redis_cli(addr: &str, password: &str, args: &[&str]) -> String {
    redis_cli_as(addr, None, password, args)
}

/// `redis-cli` against `addr` as ACL user `user` (`None`: `default`).
pub fn redis_cli_as(addr: &str, user: Option<&str>, password: &str, args: &[&str]) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let user: Vec<&str> = user.map(|u| vec!["--user", u]).unwrap_or_default();
    // A pod of a cluster with spec.tls serves no plaintext port; what it
    // serves is not verified here (tests/operator_tls.rs does that).
    let tls: &[&str] = if logbook_bench::speaks_tls(host) {
        &["--tls", "--insecure"]
    } else {
        &[]
    };
    let out = Command::new("redis-cli")
        .args(["-h", host, "-p", port, "--no-auth-warning"])
        .args(tls)
        .args(user)
        .args(["-a", password])
        .args(args)
        .output()
        .expect("redis-cli runs (make setup installs redis-tools)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `logbook replay <verb>` of `cluster`'s live ConfigMap journal in
/// [`NS`], as a person would run it (`verb` is the verb and its flags).
pub async fn replay_live(env: &Env, cluster: &str, verb: &[&str]) -> String {
    let kubeconfig = env.write_kubeconfig();
    let mut args: Vec<String> = vec!["logbook".into(), "replay".into()];
    args.extend(verb.iter().map(|s| (*s).to_owned()));
    args.extend(
        ["--namespace", NS, "--cluster", cluster, "--kubeconfig"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    args.push(kubeconfig.to_str().unwrap().to_owned());
    tokio::task::spawn_blocking(move || {
        let cli = logbook::cli::Cli::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        logbook::cli::run(cli, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    })
    .await
    .unwrap()
}

/// `--cluster check` from `addr`: every slot covered, all nodes agreeing,
/// no open slot, no failing node, and `addr`'s own `CLUSTER NODES` without
/// a `fail` or `noaddr` node. Otherwise what was wrong.
pub fn check_clean(addr: &str, password: &str) -> Result<(), String> {
    let check = redis_cli(addr, password, &["--cluster", "check", addr]);
    let clean = check.contains("[OK] All 16384 slots covered.")
        && check.contains("[OK] All nodes agree about slots configuration.")
        && !check.contains("[ERR]")
        && !check.contains("[WARNING]");
    if !clean {
        return Err(check);
    }
    let nodes = redis_cli(addr, password, &["cluster", "nodes"]);
    if nodes.contains("fail") || nodes.contains("noaddr") {
        return Err(nodes);
    }
    Ok(())
}

/// [`check_clean`], or a panic with what was wrong.
pub fn assert_check_clean(addr: &str, password: &str) {
    if let Err(why) = check_clean(addr, password) {
        panic!("--cluster check from {addr} is not clean:\n{why}");
    }
}

impl Env {
    /// `logbook replay <verb> --dir <sled journal> --stream <cluster's>`
    /// (a journal of several clusters), with the operator stopped.
    pub async fn replay_dir(&self, cluster: &str, verb: &[&str]) -> Result<String, String> {
        let stream = self.stream(cluster).await.to_string();
        let dir = self.journal_dir.to_str().unwrap().to_owned();
        let mut args: Vec<String> = vec!["logbook".into(), "replay".into()];
        args.extend(verb.iter().map(|s| (*s).to_owned()));
        args.extend(["--dir".to_owned(), dir, "--stream".to_owned(), stream]);
        tokio::task::spawn_blocking(move || {
            let cli = logbook::cli::Cli::try_parse_from(args).unwrap();
            let mut out = Vec::new();
            let result = logbook::cli::run(cli, &mut out);
            let printed = String::from_utf8(out).unwrap();
            result
                .map(|()| printed.clone())
                .map_err(|e| format!("{e}\n{printed}"))
        })
        .await
        .unwrap()
    }

    /// [`Env::assert_audit_clean`] of one cluster's stream of the sled
    /// journal.
    pub async fn assert_audit_clean_of(&self, cluster: &str) {
        let printed = self
            .replay_dir(cluster, &["audit"])
            .await
            .unwrap_or_else(|e| panic!("audit of {cluster}: {e}"));
        assert!(printed.contains("audit: clean"), "{cluster}: {printed}");
    }

    /// `logbook replay audit` of the test's sled journal: this build
    /// decides the same at every decision point, and no invariant is
    /// broken. The operator must be stopped (sled locks the directory).
    pub async fn assert_audit_clean(&self) {
        let dir = self.journal_dir.to_str().unwrap().to_owned();
        let (audit, printed) = tokio::task::spawn_blocking(move || {
            let cli =
                logbook::cli::Cli::try_parse_from(["logbook", "replay", "audit", "--dir", &dir])
                    .unwrap();
            let mut out = Vec::new();
            let result = logbook::cli::run(cli, &mut out);
            (result, String::from_utf8(out).unwrap())
        })
        .await
        .unwrap();
        assert!(audit.is_ok(), "audit: {audit:?}\n{printed}");
        assert!(printed.contains("audit: clean"), "{printed}");
    }

    /// What `logbook replay audit --namespace` says of `stream`'s
    /// ConfigMap journal as of one read of its head (an operator may be
    /// appending): `Ok` with the report when clean, else the report's
    /// text. Read only.
    pub async fn cm_audit(
        &self,
        stream: &StreamId,
    ) -> Result<logbook_replay::audit::AuditReport, String> {
        let pinned = self
            .config_map_journal()
            .pin(stream)
            .await
            .unwrap_or_else(|e| panic!("reading the head of journal stream {stream}: {e}"));
        let input = Input::Store {
            store: pinned,
            stream: stream.clone(),
            cluster: None,
            place: format!("the ConfigMaps of {NS}"),
        };
        let report =
            logbook_replay::audit::audit(&input, &logbook::replay_decider::OperatorDecider)
                .await
                .unwrap_or_else(|e| panic!("auditing journal stream {stream}: {e}"));
        if report.is_clean() {
            return Ok(report);
        }
        let mut text = Vec::new();
        logbook_replay::audit::write_text(&mut text, &report).unwrap();
        Err(String::from_utf8_lossy(&text).into_owned())
    }
}

/// `check` from some primary, retried until it is clean with exactly
/// `nodes` nodes or `timeout` passes (gossip takes a moment to agree after
/// a node comes back, forgetting takes a round).
pub async fn eventually_clean(env: &Env, password: &str, nodes: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let vkc = env.vkc("shop").await;
        let seed = match vkc.status.as_ref().and_then(|s| s.shards.first()) {
            Some(shard) => match &shard.primary {
                Some(p) => Some(env.pod_addr(p).await),
                None => None,
            },
            None => None,
        };
        let why = match seed {
            Some(seed) => {
                let listed = redis_cli(&seed, password, &["cluster", "nodes"]);
                let counted = listed.lines().filter(|l| !l.trim().is_empty()).count();
                match check_clean(&seed, password) {
                    Ok(()) if counted == nodes => return,
                    Ok(()) => format!("{counted} nodes, not {nodes}:\n{listed}"),
                    Err(why) => why,
                }
            }
            None => "no shard primary".to_owned(),
        };
        assert!(
            Instant::now() < deadline,
            "not clean after {timeout:?}: {why}\n{}",
            env.dump("shop").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the servers and the status of `shop` agree on every pod's
/// role and every replica holds its primary's data (`ROLE`: linked and
/// `connected`, not loading or syncing), and returns `(primaries,
/// replicas)` as the servers say, each sorted. A fault that must leave a
/// whole copy of every shard (a replica's volume lost, a primary's) is
/// injected only then: a status can lag a takeover, and a replica that
/// took its primary's role a moment ago, or just restarted empty, holds
/// nothing until its full resync (5 s away at least) has loaded, so
/// wiping the other copy then loses the shard's writes on any operator.
pub async fn settled_roles(
    env: &Env,
    password: &str,
    timeout: Duration,
) -> (Vec<String>, Vec<String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let vkc = env.vkc("shop").await;
        let (mut status_primaries, mut status_replicas): (Vec<String>, Vec<String>) = vkc
            .status
            .as_ref()
            .map(|s| {
                (
                    s.shards
                        .iter()
                        .filter_map(|sh| sh.primary.clone())
                        .collect(),
                    s.shards.iter().flat_map(|sh| sh.replicas.clone()).collect(),
                )
            })
            .unwrap_or_default();
        status_primaries.sort();
        status_replicas.sort();
        let mut primaries = Vec::new();
        let mut replicas = Vec::new();
        let mut why = Vec::new();
        let pods = status_primaries.len() + status_replicas.len();
        for i in 0..pods {
            let pod = format!("shop-{i}");
            let addr = env.pod_addr(&pod).await;
            let role = redis_cli(&addr, password, &["role"]);
            let lines: Vec<&str> = role.lines().map(str::trim).collect();
            match lines.first().copied() {
                Some("master") => primaries.push(pod),
                Some("slave") if lines.get(3) == Some(&"connected") => replicas.push(pod),
                _ => why.push(format!("{pod}: {}", lines.join(" "))),
            }
        }
        primaries.sort();
        replicas.sort();
        if why.is_empty() && primaries == status_primaries && replicas == status_replicas {
            return (primaries, replicas);
        }
        assert!(
            Instant::now() < deadline,
            "roles not settled after {timeout:?}: servers say primaries {primaries:?}, replicas {replicas:?} (not in sync: {why:?}); the status says {status_primaries:?}, {status_replicas:?}\n{}",
            env.dump("shop").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The intents decided in `events`, each as `Name (ReasonCode)`.
pub fn decided_names(events: &[logbook_journal::Envelope]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            logbook_journal::Event::Decided { intents } => Some(
                intents
                    .iter()
                    .map(|p| format!("{} ({})", p.intent.name(), p.reason.code.name()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Each distinct outcome of an intent (`ok: `, `failed: `, `abandoned: `
/// and the detail, with job names, ids and numbers blanked), with how
/// often it occurred, most frequent first.
pub fn outcomes(events: &[logbook_journal::Envelope]) -> Vec<(usize, String)> {
    use logbook_journal::Event;
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for e in events {
        let text = match &e.body {
            Event::IntentSucceeded { detail, .. } => format!("ok: {detail}"),
            Event::IntentFailed { error, .. } => format!("failed: {error}"),
            Event::IntentAbandoned { reason, .. } => format!("abandoned: {reason}"),
            _ => continue,
        };
        *counts
            .entry(logbook_journal::projection::reshard::error_shape(&text))
            .or_default() += 1;
    }
    let mut out: Vec<(usize, String)> = counts.into_iter().map(|(e, n)| (n, e)).collect();
    out.sort_by_key(|o| std::cmp::Reverse(o.0));
    out
}

/// Ready with `shards` shards of one replica, each holding 16384 /
/// `shards` slots (±1), no reshard in the status.
pub fn balanced(vkc: &ValkeyCluster, shards: usize) -> bool {
    is_ready(vkc, shards * 2)
        && vkc.status.as_ref().is_some_and(|s| {
            let counts: Vec<i32> = s
                .shards
                .iter()
                .map(|sh| sh.slots.iter().map(|r| r.end - r.start + 1).sum())
                .collect();
            let base = i32::try_from(16_384 / shards).unwrap();
            s.reshard.is_none()
                && s.shards.len() == shards
                && s.shards.iter().all(|sh| sh.replicas.len() == 1)
                && counts.iter().sum::<i32>() == 16_384
                && counts.iter().all(|c| *c == base || *c == base + 1)
        })
}

pub fn primaries(vkc: &ValkeyCluster) -> Vec<String> {
    vkc.status
        .as_ref()
        .map(|s| {
            s.shards
                .iter()
                .filter_map(|sh| sh.primary.clone())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn seeds(env: &Env, pods: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..pods {
        out.push(env.pod_addr(&format!("shop-{i}")).await);
    }
    out
}

/// `k:0` .. `k:{keys}` (value: the number), piped to each slot's owner.
pub async fn load(seeds: &[String], password: &str, keys: u64) {
    let pw = logbook::valkey::Password::new(password.to_owned());
    let map = logbook_bench::cluster_client::slot_map(seeds, Some(&pw))
        .await
        .unwrap();
    let mut by_owner: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..keys {
        let key = format!("k:{i}");
        let value = i.to_string();
        let slot = logbook_bench::slots::key_slot(key.as_bytes());
        let owner = map.owner(slot).expect("every slot owned").to_string();
        let buf = by_owner.entry(owner).or_default();
        write!(
            buf,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        )
        .unwrap();
    }
    for (addr, commands) in by_owner {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let mut child = Command::new("redis-cli")
            .args([
                "-h",
                host,
                "-p",
                port,
                "--no-auth-warning",
                "-a",
                password,
                "--pipe",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        child.stdin.take().unwrap().write_all(&commands).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("errors: 0"), "loading into {addr}: {text}");
    }
}

/// A cluster-aware client writing `w:N` keys, each acknowledged by a
/// replica (`WAIT 1`) before it counts.
pub async fn start_writer(env: &Env, password: &str) -> logbook_bench::WriteProbe {
    let mut config =
        logbook_bench::cluster_writer::ClusterProbeConfig::new(seeds(env, 6).await, "w");
    config.password = Some(logbook::valkey::Password::new(password.to_owned()));
    logbook_bench::cluster_writer::start_cluster_probe(config)
}

/// `keys` keys loaded into the 6-pod cluster, then a writer started on it
/// and its first acknowledged writes waited for.
pub async fn loaded_under_writer(
    env: &Env,
    password: &str,
    keys: u64,
) -> logbook_bench::WriteProbe {
    load(&seeds(env, 6).await, password, keys).await;
    let probe = start_writer(env, password).await;
    first_acks(env, &probe).await;
    probe
}

/// Every one of the `keys` loaded keys and every acknowledged write, read
/// through the slots' owners.
pub async fn assert_every_key(env: &Env, pods: usize, password: &str, keys: u64, acked: &[u64]) {
    let pw = logbook::valkey::Password::new(password.to_owned());
    let seeds = seeds(env, pods).await;
    let loaded: Vec<u64> = (0..keys).collect();
    let missing =
        logbook_bench::cluster_client::missing_in_cluster(&seeds, Some(&pw), "k", &loaded)
            .await
            .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {keys} loaded keys missing: {:?}, in slots {}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        slots_of("k", &missing)
    );
    let missing = logbook_bench::cluster_client::missing_in_cluster(&seeds, Some(&pw), "w", acked)
        .await
        .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}, in slots {}",
        missing.len(),
        acked.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        slots_of("w", &missing)
    );
}

/// The slot ranges the keys `{prefix}:{n}` of `ns` fall in, as
/// `start-end` runs: which moves a loss follows.
fn slots_of(prefix: &str, ns: &[u64]) -> String {
    let mut slots: Vec<u16> = ns
        .iter()
        .map(|n| logbook_bench::slots::key_slot(format!("{prefix}:{n}").as_bytes()))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for s in slots {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == s => *end = s,
            _ => runs.push((s, s)),
        }
    }
    runs.iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Patches `spec.shards` of `shop` to `shards`; waits up to `limit` for
/// the status to show them balanced, then for `redis-cli --cluster
/// check` to be clean on every pod (one replica a shard).
pub async fn reshard_to(
    env: &Env,
    password: &str,
    shards: usize,
    limit: Duration,
) -> ValkeyCluster {
    env.patch("shop", serde_json::json!({"spec": {"shards": shards}}))
        .await;
    let vkc = env
        .wait_status("shop", limit, &format!("{shards} shards balanced"), |v| {
            balanced(v, shards)
        })
        .await;
    assert_eq!(primaries(&vkc).len(), shards);
    eventually_clean(env, password, shards * 2, Duration::from_secs(60)).await;
    vkc
}

/// Stops the writer; every one of the `keys` loaded and every write it
/// had acknowledged must be there (on `pods` pods).
pub async fn stop_and_check_writes(
    env: &Env,
    probe: logbook_bench::WriteProbe,
    pods: usize,
    password: &str,
    keys: u64,
) {
    let log = probe.stop().await;
    let acked = log.acked_keys();
    assert!(
        acked.len() > 50,
        "too few writes acknowledged: {}",
        acked.len()
    );
    assert_every_key(env, pods, password, keys, &acked).await;
}

/// The journal's decisions, as [`decided_names`]: at least 3 moves out
/// and 3 back.
pub fn assert_moves_decided(events: &[logbook_journal::Envelope]) {
    let intents = decided_names(events);
    eprintln!("decided: {intents:?}");
    let moves = intents
        .iter()
        .filter(|i| *i == "MoveSlots (Reshard)")
        .count();
    assert!(moves >= 6, "3 moves out and 3 back at least: {intents:?}");
}
