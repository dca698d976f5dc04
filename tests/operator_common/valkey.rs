//! Talking to the pods' Valkey servers: connections, bulk writes, `ROLE`,
//! write probes and the no-lost-write check.
#[allow(unused_imports)]
use super::*;

/// A connection to `addr` authenticated with `password` (5 s deadlines).
pub async fn connect(addr: &str, password: &str) -> MultiplexedConnection {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let client = logbook_bench::client(host, port.parse().unwrap()).unwrap();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    // A Service's endpoints follow the pods' readiness a moment later
    // (on the real control plane, through its endpoint controllers): a
    // failed connection is tried again for a few seconds.
    let mut attempts = 0;
    let mut con = loop {
        match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(con) => break con,
            Err(_) if attempts < 10 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    };
    let () = redis::cmd("AUTH")
        .arg(password)
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("AUTH on {addr}: {e}"));
    con
}

/// Writes `<prefix>:<n> = n` for n in 0..count through `addr`, pipelined
/// in batches of 1000, then `WAIT 1` so a replica has them all.
pub async fn write_keys(addr: &str, password: &str, prefix: &str, count: u64) {
    let mut con = connect(addr, password).await;
    let mut n = 0;
    while n < count {
        let end = (n + 1000).min(count);
        let mut pipe = redis::pipe();
        for k in n..end {
            pipe.cmd("SET").arg(format!("{prefix}:{k}")).arg(k).ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();
        n = end;
    }
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(acked >= 1, "no replica acknowledged the {count} keys");
}

/// How many of `<prefix>:0..count` `addr` is missing.
pub async fn count_missing(addr: &str, password: &str, prefix: &str, count: u64) -> usize {
    let keys: Vec<u64> = (0..count).collect();
    logbook_bench::missing_keys(addr, Some(&Password::new(password)), prefix, &keys)
        .await
        .unwrap_or_else(|e| panic!("reading back {prefix} from {addr}: {e}"))
        .len()
}

/// `ROLE` of `addr`: ("master", None) or ("slave", Some(primary ip)).
pub async fn role(addr: &str, password: &str) -> (String, Option<String>) {
    let mut con = connect(addr, password).await;
    let reply: redis::Value = redis::cmd("ROLE").query_async(&mut con).await.unwrap();
    let redis::Value::Array(items) = reply else {
        panic!("ROLE of {addr}: {reply:?}");
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let kind = text(&items[0]);
    let primary = (kind == "slave").then(|| text(&items[1]));
    (kind, primary)
}

/// The reply of `cmd` on `addr`, or `None` when it does not answer within
/// a second at each step (down, restarting, loading) or answers an error.
pub async fn try_query(addr: &str, password: &str, cmd: &redis::Cmd) -> Option<redis::Value> {
    try_query_timed(addr, password, cmd)
        .await
        .map(|(reply, _)| reply)
}

/// [`try_query`], with the moments `cmd` was sent and its reply came:
/// the server held what it answered at some instant between the two
/// (connecting and authenticating come before, outside the window).
pub async fn try_query_timed(
    addr: &str,
    password: &str,
    cmd: &redis::Cmd,
) -> Option<(redis::Value, Window)> {
    let (host, port) = addr.rsplit_once(':')?;
    let client = logbook_bench::client(host, port.parse().ok()?).ok()?;
    let limit = Duration::from_secs(1);
    let mut con = tokio::time::timeout(limit, client.get_multiplexed_async_connection())
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(
        limit,
        redis::cmd("AUTH").arg(password).query_async::<()>(&mut con),
    )
    .await
    .ok()?
    .ok()?;
    let sent = std::time::Instant::now();
    let reply = tokio::time::timeout(limit, cmd.query_async::<redis::Value>(&mut con))
        .await
        .ok()?
        .ok()?;
    Some((
        reply,
        Window {
            sent,
            received: std::time::Instant::now(),
        },
    ))
}

/// When a server's answer held: from the request sent to the reply read.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub sent: std::time::Instant,
    pub received: std::time::Instant,
}

impl Window {
    /// Whether some instant lies in both.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.sent <= other.received && other.sent <= self.received
    }
}

/// `ROLE` of `addr`, or `None` when it does not answer within a second
/// (down, restarting, loading).
pub async fn try_role(addr: &str, password: &str) -> Option<(String, Option<String>)> {
    try_role_timed(addr, password).await.map(|(role, _)| role)
}

/// [`try_role`], with when the answer held.
pub async fn try_role_timed(
    addr: &str,
    password: &str,
) -> Option<((String, Option<String>), Window)> {
    let (reply, window) = try_query_timed(addr, password, &redis::cmd("ROLE")).await?;
    let redis::Value::Array(items) = reply else {
        return None;
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let kind = text(items.first()?);
    let primary = if kind == "slave" {
        items.get(1).map(text)
    } else {
        None
    };
    Some(((kind, primary), window))
}

/// `INFO replication` field `field` of `addr`.
pub async fn info_field(addr: &str, password: &str, field: &str) -> Option<String> {
    let mut con = connect(addr, password).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut con)
        .await
        .unwrap();
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_owned())
    })
}

/// A write probe through `addr` (SET then `WAIT 1 1000` every 10 ms).
pub fn write_probe(addr: &str, password: &str, prefix: &str) -> logbook_bench::WriteProbe {
    let mut config = logbook_bench::WriteProbeConfig::fixed(addr, prefix);
    config.password = Some(Password::new(password));
    config.wait_replicas = true;
    logbook_bench::WriteProbe::start(config)
}

/// Checks a probe's log after a fault at `fault`: it wrote before and
/// after, and every acknowledged key is on `addr`. Returns (acked, failed).
pub async fn check_no_acked_write_lost(
    log: &logbook_bench::WriteLog,
    fault: Instant,
    addr: &str,
    password: &str,
) -> (usize, usize) {
    let acked = log.acked_keys();
    assert_wrote_around(log, fault);
    let missing =
        logbook_bench::missing_keys(addr, Some(&Password::new(password)), &log.prefix, &acked)
            .await
            .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost on {addr}: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
    (acked.len(), log.failed_writes())
}

/// Checks that a probe wrote around a fault at `fault`: a write
/// acknowledged before it, and one that succeeded after it.
pub fn assert_wrote_around(log: &logbook_bench::WriteLog, fault: Instant) {
    assert!(
        log.attempts.iter().any(|a| a.acked && a.started < fault),
        "no acknowledged write before the fault"
    );
    assert!(
        log.attempts
            .iter()
            .any(|a| a.succeeded() && a.started > fault),
        "no successful write after the fault ({} attempts, {} failed)",
        log.attempts.len(),
        log.failed_writes()
    );
}

/// A Replication cluster of `replicas` pods with fast probes and no PVC
/// size worth mentioning.
pub fn replication_yaml(name: &str, replicas: i32) -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {name}
spec:
  topology: Replication
  replicas: {replicas}
  failover:
    probeIntervalMilliseconds: 200
    failureThreshold: 3
  storage:
    size: 1Gi
"#
    )
}

/// A standby of `source` (its `replicateFrom`, as YAML lines under it).
pub fn standby_yaml(name: &str, replicas: i32, from: &str) -> String {
    replication_yaml(name, replicas).replace(
        "  storage:\n",
        &format!("  replicateFrom:\n{from}  storage:\n"),
    )
}

/// The phase of a standby's status (`Following`, `Promoted` ..), empty
/// when it has none.
pub fn standby_phase(vkc: &logbook_crds::ValkeyCluster) -> String {
    vkc.status
        .as_ref()
        .and_then(|s| s.standby.as_ref())
        .map(|s| s.phase.clone())
        .unwrap_or_default()
}

/// A Sentinel cluster `name`: 3 data pods watched by 3 Sentinels, which
/// judge a primary down after 3 s.
pub fn sentinel_yaml(name: &str) -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {name}
spec:
  topology: Sentinel
  replicas: 3
  sentinel:
    replicas: 3
    downAfterMilliseconds: 3000
    failoverTimeoutMilliseconds: 10000
  failover:
    probeIntervalMilliseconds: 200
  storage:
    size: 1Gi
"#
    )
}

/// A Standalone cluster `name`: one pod.
pub fn standalone_yaml(name: &str) -> String {
    format!(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: {name}\nspec:\n  topology: Standalone\n  storage:\n    size: 1Gi\n"
    )
}

/// The path of the test binary's target dir `logbook` binary.
pub fn logbook_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_logbook"))
}

/// `bulk` keys `bulk:<n>` written through `service`, then a write probe
/// started on it and 20 of its writes acknowledged.
pub async fn bulk_then_writer(
    env: &Env,
    service: &str,
    password: &str,
    bulk: u64,
) -> logbook_bench::WriteProbe {
    write_keys(service, password, "bulk", bulk).await;
    let probe = write_probe(service, password, "probe");
    first_acks(env, &probe).await;
    probe
}

/// Waits (10 s at most) for `probe`'s first 20 acknowledged writes.
pub async fn first_acks(env: &Env, probe: &logbook_bench::WriteProbe) {
    env.eventually(Duration::from_secs(10), "acknowledged writes", || {
        let n = probe.acked_count();
        async move { n >= 20 }
    })
    .await;
}

/// Once `probe` has a write acknowledged after `what`, stops it: every
/// write it acknowledged since `from` and every one of the `bulk` keys
/// is on `at`. Returns (acked, failed).
pub async fn stop_writer_and_check(
    env: &Env,
    probe: logbook_bench::WriteProbe,
    what: &str,
    from: std::time::Instant,
    at: &str,
    password: &str,
    bulk: u64,
) -> (usize, usize) {
    env.wait_acked_after(&probe, std::time::Instant::now(), what)
        .await;
    let log = probe.stop().await;
    let counts = check_no_acked_write_lost(&log, from, at, password).await;
    assert_eq!(count_missing(at, password, "bulk", bulk).await, 0);
    counts
}
