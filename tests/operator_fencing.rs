//! The isolated-primary fence end to end on localkube (issue 59): a
//! Replication cluster with `spec.failover.fenceIsolatedPrimarySeconds: 2`
//! whose primary is cut off from its replicas and from the operator while
//! a client on its side of the cut keeps writing to it directly.
//!
//! The cut is this file's own: localkube's `partition` fault drops every
//! packet of the pod, the host's included, so no client could stay on the
//! primary's side. Here the primary's address keeps only its own traffic
//! (its node's, as on a real node cut off from the rest) and that of one
//! client address, [`CLIENT_IP`], the client binds to. Host processes —
//! the operator, the kubelet's probes — reach the pods from 127.0.0.1,
//! and the replicas from their own pod addresses: all are cut.
//!
//! Measured: when the isolated primary starts refusing writes
//! (`NOREPLICAS`), how many writes it acknowledged after the cut (those
//! are lost: its successor never had them), and when the new primary took
//! its first write. Asserted: the fence comes within the documented worst
//! case (fenceIsolatedPrimarySeconds + 2 s of the last acknowledgement it
//! had, hence of the cut), and before the operator decided the promotion
//! (journal time) and before the new primary took a write.
//!
//! Not on the real node (`LOGBOOK_E2E_NODE=containers`): its pods have
//! their own network namespaces, which host iptables rules on pod
//! addresses do not model the same way.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logbook_journal::{Event, Intent, ReasonCode};
use operator_common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The address the client on the primary's side writes from: on the
/// host's loopback, outside localkube's pod blocks (127.<n>.x.y, n ≥ 1)
/// and 127.0.0.1 (the host's own processes).
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 77);

/// The fence under test, in seconds.
const FENCE_SECONDS: u64 = 2;

/// Valkey's slack over `min-replicas-max-lag` (whole-second clock, 1 Hz
/// recount): `logbook_crds` `FENCE_SLACK_MILLISECONDS`.
const SLACK: Duration = Duration::from_secs(2);

fn yaml() -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Replication
  replicas: 3
  failover:
    probeIntervalMilliseconds: 200
    failureThreshold: 3
    fenceIsolatedPrimarySeconds: {FENCE_SECONDS}
  storage:
    size: 1Gi
"#
    )
}

/// Microseconds since the epoch, as the journal's timestamps.
fn wall_us(at: SystemTime) -> i64 {
    i64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

/// The host's iptables rules that cut `pod_ip` off from everything but
/// itself and [`CLIENT_IP`]; removed when dropped (a failing test too).
struct Cut {
    tag: String,
    rules: Vec<Vec<String>>,
}

impl Cut {
    fn iptables(args: &[String]) -> Result<(), String> {
        let out = std::process::Command::new("iptables")
            .arg("-w")
            .args(args)
            .output()
            .map_err(|e| format!("iptables (scripts/setup.sh installs it): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn start(pod_ip: Ipv4Addr) -> Cut {
        let tag = format!("logbook-fence-test-{}", std::process::id());
        let p = pod_ip.to_string();
        let c = CLIENT_IP.to_string();
        // Each is inserted first in INPUT (loopback packets traverse it),
        // so the accepts, inserted last, come before the drops.
        let specs: [(&[&str], &str); 5] = [
            (&["-s", &p], "DROP"),
            (&["-d", &p], "DROP"),
            (&["-s", &p, "-d", &p], "ACCEPT"),
            (&["-s", &c, "-d", &p], "ACCEPT"),
            (&["-s", &p, "-d", &c], "ACCEPT"),
        ];
        let mut cut = Cut {
            tag: tag.clone(),
            rules: Vec::new(),
        };
        for (matches, target) in specs {
            let mut rule: Vec<String> = matches.iter().map(|s| (*s).to_owned()).collect();
            rule.extend(
                ["-m", "comment", "--comment", &tag, "-j", target]
                    .iter()
                    .map(|s| (*s).to_owned()),
            );
            let mut insert = vec!["-I".to_owned(), "INPUT".to_owned()];
            insert.extend(rule.iter().cloned());
            Self::iptables(&insert).unwrap_or_else(|e| panic!("cutting {pod_ip} off: {e}"));
            cut.rules.push(rule);
        }
        cut
    }

    fn heal(&mut self) {
        for rule in self.rules.drain(..).rev() {
            let mut delete = vec!["-D".to_owned(), "INPUT".to_owned()];
            delete.extend(rule);
            if let Err(e) = Self::iptables(&delete) {
                eprintln!("removing rule {}: {e}", self.tag);
            }
        }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.heal();
    }
}

/// A RESP connection from [`CLIENT_IP`]: the client on the primary's side.
struct SideClient {
    io: BufReader<tokio::net::TcpStream>,
}

impl SideClient {
    async fn connect(addr: &str, password: &str) -> SideClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((CLIENT_IP, 0))).unwrap();
        let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
        let mut client = SideClient {
            io: BufReader::new(stream),
        };
        let reply = client.call(&["AUTH", password]).await.unwrap();
        assert_eq!(reply, "+OK", "AUTH from {CLIENT_IP}");
        client
    }

    /// One command; its reply's first line (simple replies only), or
    /// `Err` when none came within 2 s.
    async fn call(&mut self, args: &[&str]) -> Result<String, String> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.io
            .get_mut()
            .write_all(out.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        match tokio::time::timeout(Duration::from_secs(2), self.io.read_line(&mut line)).await {
            Ok(Ok(0)) => Err("closed".to_owned()),
            Ok(Ok(_)) => Ok(line.trim_end().to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no reply in 2 s".to_owned()),
        }
    }
}

/// One write of the client on the primary's side.
#[derive(Debug, Clone)]
struct Write {
    key: String,
    sent: Instant,
    replied: Instant,
    reply: Result<String, String>,
}

/// Writes `SET side:<n> <n>` every 10 ms until `stop`; every outcome.
fn side_writer(
    mut client: SideClient,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Write>> {
    tokio::spawn(async move {
        let mut log = Vec::new();
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            let key = format!("side:{n}");
            let value = n.to_string();
            let sent = Instant::now();
            let reply = client.call(&["SET", &key, &value]).await;
            let timed_out = reply.is_err();
            log.push(Write {
                key,
                sent,
                replied: Instant::now(),
                reply,
            });
            if timed_out {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        log
    })
}

/// Tries a write on each of `pods` every 20 ms until one takes it: the
/// new primary, and when (wall clock and instant).
async fn first_write_elsewhere(
    addrs: Vec<(String, String)>,
    password: String,
    within: Duration,
) -> (String, Instant, SystemTime) {
    let started = Instant::now();
    let mut cons = Vec::new();
    for (pod, addr) in &addrs {
        cons.push((pod.clone(), connect(addr, &password).await));
    }
    loop {
        for (pod, con) in &mut cons {
            let ok: redis::RedisResult<()> = redis::cmd("SET")
                .arg("elsewhere")
                .arg(1)
                .query_async(con)
                .await;
            if ok.is_ok() {
                return (pod.clone(), Instant::now(), SystemTime::now());
            }
        }
        assert!(
            started.elapsed() < within,
            "no other pod took a write within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `CONFIG GET key` on `addr`; `None` when the server does not answer.
async fn config_get(addr: &str, password: &str, key: &str) -> Option<String> {
    let (host, port) = addr.rsplit_once(':')?;
    let client = logbook_bench::client(host, port.parse().ok()?).ok()?;
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    let _: () = redis::cmd("AUTH")
        .arg(password)
        .query_async(&mut con)
        .await
        .ok()?;
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(key)
        .query_async(&mut con)
        .await
        .ok()?;
    got.get(1).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_primary_refuses_writes_before_another_is_promoted() {
    if on_containers() {
        eprintln!(
            "fencing: skipped: the cut is host iptables rules on localkube's pod addresses; the real node's pods have their own network namespaces"
        );
        return;
    }
    let env = Env::start("fencing").await;
    env.apply_yaml(&yaml()).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let old = primary(&vkc);
    let password = env.password("demo").await;
    let old_addr = env.pod_addr(&old).await;
    let old_ip: Ipv4Addr = old_addr.rsplit_once(':').unwrap().0.parse().unwrap();

    // The spec reached the server.
    let mut con = connect(&old_addr, &password).await;
    let lag: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("min-replicas-max-lag")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        lag,
        vec!["min-replicas-max-lag".to_owned(), FENCE_SECONDS.to_string()]
    );
    // Both replicas acknowledging: the primary takes writes.
    env.eventually(Duration::from_secs(20), "two good replicas", || {
        let (addr, password) = (old_addr.clone(), password.clone());
        async move {
            info_field(&addr, &password, "min_slaves_good_slaves")
                .await
                .as_deref()
                == Some("2")
        }
    })
    .await;

    let side = SideClient::connect(&old_addr, &password).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = side_writer(side, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut others = Vec::new();
    for pod in env.pods("demo").await {
        let name = kube::ResourceExt::name_any(&pod);
        if name != old {
            let addr = env.pod_addr(&name).await;
            others.push((name, addr));
        }
    }

    // The cut.
    let mut cut = Cut::start(old_ip);
    let cut_at = Instant::now();
    let cut_wall = SystemTime::now();
    eprintln!("{old} ({old_ip}) cut off; the client at {CLIENT_IP} keeps writing to it");
    let elsewhere = tokio::spawn(first_write_elsewhere(
        others,
        password.clone(),
        Duration::from_secs(60),
    ));
    let (new, new_first_write, new_first_wall) = elsewhere.await.unwrap();
    // Let the side client see a few more refusals, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let log = writer.await.unwrap();

    let after_cut: Vec<&Write> = log.iter().filter(|w| w.sent >= cut_at).collect();
    let acked_after: Vec<&Write> = after_cut
        .iter()
        .copied()
        .filter(|w| w.reply.as_deref() == Ok("+OK"))
        .collect();
    let first_refused = after_cut
        .iter()
        .find(|w| w.reply.as_ref().is_ok_and(|r| r.starts_with("-NOREPLICAS")))
        .unwrap_or_else(|| panic!("the isolated primary never refused a write: {after_cut:?}"));
    let others_replies: Vec<&Write> = after_cut
        .iter()
        .copied()
        .filter(|w| {
            !w.reply
                .as_ref()
                .is_ok_and(|r| r == "+OK" || r.starts_with("-NOREPLICAS"))
        })
        .collect();
    assert!(
        others_replies.is_empty(),
        "other replies: {others_replies:?}"
    );
    let last_acked = acked_after.last().copied();
    // Fenced at most by the refusal's reply, at least after the last
    // acknowledged write was sent.
    let fenced = first_refused.replied.duration_since(cut_at);
    let last_ack = last_acked.map(|w| w.replied.duration_since(cut_at));
    let new_write = new_first_write.duration_since(cut_at);
    eprintln!(
        "FENCE {FENCE_SECONDS} s: isolated primary acknowledged {} writes after the cut, the last {last_ack:?} after it; refused from {fenced:?} (NOREPLICAS); new primary {new} took its first write {new_write:?} after the cut",
        acked_after.len()
    );
    // Once refused, never acknowledged again while cut off.
    assert!(
        acked_after.iter().all(|w| w.sent < first_refused.sent),
        "an acknowledgement after a NOREPLICAS"
    );
    // The documented worst case: the last acknowledgement from a replica
    // reached it no later than the cut; 100 ms for the client's cadence.
    let bound = Duration::from_secs(FENCE_SECONDS) + SLACK + Duration::from_millis(100);
    assert!(
        fenced <= bound,
        "fenced {fenced:?} after the cut, bound {bound:?}"
    );
    assert!(
        fenced >= Duration::from_secs(FENCE_SECONDS - 1),
        "fenced {fenced:?} after the cut: sooner than the lag allows"
    );
    assert!(
        first_refused.replied < new_first_write,
        "the new primary took a write ({new_write:?}) before the old one was fenced ({fenced:?})"
    );

    // Heal; the old primary comes back as a replica of the new one.
    cut.heal();
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    assert_eq!(primary(&vkc), new);
    // What it acknowledged after the cut is lost: the new primary never
    // had it, and the old one resynced from it.
    if let Some(w) = last_acked {
        let new_addr = env.pod_addr(&new).await;
        let mut con = connect(&new_addr, &password).await;
        let got: Option<String> = redis::cmd("GET")
            .arg(&w.key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(
            got, None,
            "{} was acknowledged by the isolated primary",
            w.key
        );
    }

    // A change of the field reaches the running servers (the config
    // hash changes; the pods roll).
    let changed = Instant::now();
    env.patch(
        "demo",
        serde_json::json!({"spec": {"failover": {"fenceIsolatedPrimarySeconds": 3}}}),
    )
    .await;
    env.eventually(
        Duration::from_secs(120),
        "min-replicas-max-lag 3 on every server",
        || {
            let env = &env;
            let password = password.clone();
            async move {
                for pod in env.pods("demo").await {
                    let name = kube::ResourceExt::name_any(&pod);
                    let Some(ip) = pod.status.and_then(|s| s.pod_ip) else {
                        return false;
                    };
                    let addr = format!("{ip}:{PORT}");
                    let Ok(out) = tokio::time::timeout(
                        Duration::from_secs(3),
                        config_get(&addr, &password, "min-replicas-max-lag"),
                    )
                    .await
                    else {
                        return false;
                    };
                    if out.as_deref() != Some("3") {
                        eprintln!("{name}: min-replicas-max-lag {out:?}");
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    eprintln!(
        "fenceIsolatedPrimarySeconds 2 -> 3 on every server after {:?}",
        changed.elapsed()
    );

    // The journal: the promotion was decided after the fence.
    let stream = env.stream("demo").await;
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let decided = events
        .iter()
        .find_map(|e| match &e.body {
            Event::Decided { intents } => intents
                .iter()
                .find(|i| {
                    matches!(&i.intent, Intent::PromoteReplica { from: Some(f), .. } if *f == old)
                        && matches!(
                            i.reason.code,
                            ReasonCode::PrimaryFailed { death: false, .. }
                        )
                })
                .map(|i| (e.at, i.reason.detail.clone())),
            _ => None,
        })
        .expect("a PromoteReplica from the old primary, PrimaryFailed without death");
    let fenced_wall = wall_us(cut_wall) + i64::try_from(fenced.as_micros()).unwrap();
    let decided_after_cut_ms = (decided.0.0 - wall_us(cut_wall)) / 1000;
    eprintln!(
        "promotion decided {decided_after_cut_ms} ms after the cut; first write on {new} {} ms after it; reason: {}",
        (wall_us(new_first_wall) - wall_us(cut_wall)) / 1000,
        decided.1
    );
    assert!(
        decided.0.0 > fenced_wall,
        "the promotion was decided {decided_after_cut_ms} ms after the cut, before the fence at {fenced:?}"
    );
    assert!(decided.1.contains("waited for its fence"), "{}", decided.1);
    let deadlines = events
        .iter()
        .filter(|e| matches!(e.body, Event::DeadlinePassed { .. }))
        .count();
    eprintln!("DeadlinePassed journaled {deadlines} times");
    env.verify_journal().await;
    env.assert_audit_clean().await;
    env.finish().await;
}
