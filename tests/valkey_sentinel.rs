//! The Sentinel commands and event subscription of the data-plane client
//! against real processes on 127.0.0.1: a primary and a replica with
//! `requirepass`/`masterauth`, one Sentinel (quorum 1, `requirepass` and
//! `sentinel auth-pass`). A forced failover to the replica, then a
//! coordinated one back, each seen as `+switch-master`; the refusals
//! (unknown name, failover in progress, no good replica, no quorum, wrong
//! password) come back distinguishable.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook::valkey::{
    Password, ProbeError, Role, SentinelEvents, SentinelNotice, SentinelRefusal, SwitchMaster,
    Timeouts, ValkeyClient, parse_sentinel_event, parse_switch_master, subscribe_sentinel_events,
};

use crate::valkey_server;
use valkey_server::Server;

const PASSWORD: &str = "s3nt1nel-test-pass";
const NAME: &str = "logbook";

/// A Sentinel process with its configuration file and log in a temporary
/// directory (it rewrites the file on every change); killed when dropped.
struct Sentinel {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sentinel {
    fn start(lines: &[String]) -> Sentinel {
        let binary = logbook_bench::valkey_server_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir \"{}\"\n",
            dir.path().display()
        );
        for line in lines {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = dir.path().join("sentinel.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("sentinel.log")).unwrap();
        let child = Command::new(&binary)
            .current_dir(dir.path())
            .arg(&conf_path)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|err| panic!("{} --sentinel: {err}", binary.display()));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "Sentinel on {addr} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sentinel { addr, child, dir }
    }

    /// The last lines of its log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.kill();
    }
}

fn data_node(extra: &[&str]) -> Server {
    let mut args = vec![
        "--requirepass",
        PASSWORD,
        "--masterauth",
        PASSWORD,
        // Valkey waits 5 s for more replicas before a diskless sync by
        // default: the test cannot afford it.
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Polls `check` every 100 ms until it returns `Some`, for at most
/// `within`; panics with `what` and the Sentinel's log otherwise.
async fn eventually<T, F, Fut>(sentinel: &Sentinel, what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}\nSentinel log:\n{}",
            sentinel.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads events until `+switch-master`, which must name `new_port`; every
/// `+new-epoch` and `+vote-for-leader` on the way must parse.
async fn await_switch(
    events: &mut SentinelEvents,
    sentinel: &Sentinel,
    new_port: u16,
) -> SwitchMaster {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match tokio::time::timeout(left, events.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("event connection closed; seen {seen:?}"),
            Err(_) => panic!(
                "no +switch-master within 15 s; seen {seen:?}\nSentinel log:\n{}",
                sentinel.log_tail()
            ),
        };
        assert_ne!(event.channel, "__sentinel__:hello", "hello not skipped");
        seen.push(event.channel.clone());
        if matches!(event.channel.as_str(), "+new-epoch" | "+vote-for-leader") {
            assert!(parse_sentinel_event(&event).is_some(), "unparsed {event:?}");
        }
        if event.channel == "+switch-master" {
            let switch =
                parse_switch_master(&event.payload).unwrap_or_else(|| panic!("unparsed {event:?}"));
            assert!(matches!(
                parse_sentinel_event(&event),
                Some(SentinelNotice::SwitchMaster(_))
            ));
            assert_eq!(switch.master, NAME);
            assert_eq!(switch.new_port, new_port, "{event:?}; seen {seen:?}");
            return switch;
        }
    }
}

/// Waits until the replica at `replica` follows `primary` with its link up
/// and no sync running.
async fn await_synced(
    client: &ValkeyClient,
    sentinel: &Sentinel,
    replica: &Server,
    primary: &Server,
) {
    eventually(
        sentinel,
        &format!(
            "{} to be a synced replica of {}",
            replica.addr, primary.addr
        ),
        Duration::from_secs(10),
        || async {
            let info = client.info_replication(replica.addr).await.ok()?;
            let link = info.primary?;
            (info.role == Role::Replica
                && link.port == primary.addr.port()
                && link.link_up
                && !link.sync_in_progress)
                .then_some(())
        },
    )
    .await;
}

/// Waits until the Sentinel lists `replica` as a replica it has read `INFO`
/// from, with its link up: only then may it promote it.
async fn await_known_replica(client: &ValkeyClient, sentinel: &Sentinel, replica: &Server) {
    eventually(
        sentinel,
        &format!("the Sentinel to know {} as a linked replica", replica.addr),
        Duration::from_secs(12),
        || async {
            let replicas = client.sentinel_replicas(sentinel.addr, NAME).await.ok()?;
            replicas
                .iter()
                .any(|r| {
                    r.port == replica.addr.port()
                        && r.run_id.is_some()
                        && r.master_link_ok
                        && !r.has_flag("s_down")
                        && !r.has_flag("disconnected")
                })
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_fails_over_and_back() {
    let started = Instant::now();
    let password = Password::new(PASSWORD);
    let client = ValkeyClient::new(Timeouts::default(), Some(password.clone()));
    let first = data_node(&[]);
    let second = data_node(&["--replicaof", &format!("127.0.0.1 {}", first.port())]);

    // The replica is synced before the Sentinel starts, so the Sentinel's
    // first INFO of it already shows the link up (the next comes 10 s
    // later).
    let sentinel = Sentinel::start(&[
        format!("requirepass {PASSWORD}"),
        format!("sentinel monitor {NAME} 127.0.0.1 {} 1", first.port()),
        format!("sentinel auth-pass {NAME} {PASSWORD}"),
        format!("sentinel down-after-milliseconds {NAME} 1000"),
        format!("sentinel failover-timeout {NAME} 10000"),
    ]);
    let s = sentinel.addr;
    await_synced(&client, &sentinel, &second, &first).await;

    let mut events = subscribe_sentinel_events(s, Some(&password), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(events.addr(), s);

    // The probe: myid, the primary, and (once Sentinel read its INFO) the
    // replica.
    let myid = client.sentinel_myid(s).await.unwrap();
    assert_eq!(myid.len(), 40);
    await_known_replica(&client, &sentinel, &second).await;
    let probe = client.sentinel_probe(s, NAME).await.unwrap();
    assert_eq!(probe.myid, myid);
    let primary = probe.primary.expect("the Sentinel monitors the name");
    assert_eq!(
        (primary.name.as_str(), primary.port),
        (NAME, first.addr.port())
    );
    assert!(primary.has_flag("master"), "{primary:?}");
    assert_eq!((primary.quorum, primary.down_after_ms), (1, 1000));
    assert_eq!(primary.num_slaves, 1);
    assert!(primary.run_id.is_some());
    assert_eq!(probe.replicas.len(), 1, "{:?}", probe.replicas);
    assert_eq!(probe.replicas[0].port, second.addr.port());
    assert_eq!(probe.replicas[0].master_host.as_deref(), Some("127.0.0.1"));
    assert!(probe.sentinels.is_empty());
    assert!(probe.latency < Duration::from_secs(1));
    // Its INFO period (`SENTINEL DEBUG`), 10 s by default, set and read
    // back; an unknown parameter is refused.
    assert_eq!(probe.info_period_ms, Some(10_000));
    client
        .sentinel_debug_set(s, "info-period", 1_000)
        .await
        .unwrap();
    let tuned = client.sentinel_probe(s, NAME).await.unwrap();
    assert_eq!(tuned.info_period_ms, Some(1_000));
    let err = client
        .sentinel_debug_set(s, "no-such-period", 5)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
    let verdict = client.sentinel_ckquorum(s, NAME).await.unwrap();
    assert!(
        verdict.as_ref().is_ok_and(|text| text.starts_with("OK")),
        "{verdict:?}"
    );

    // A forced failover to the replica; a second request meanwhile is
    // refused as in progress.
    client.sentinel_failover(s, NAME, false).await.unwrap();
    let err = client.sentinel_failover(s, NAME, false).await.unwrap_err();
    assert_eq!(
        SentinelRefusal::of(&err),
        Some(SentinelRefusal::FailoverInProgress),
        "{err}"
    );
    assert!(err.to_string().contains("INPROG"), "{err}");
    let switch = await_switch(&mut events, &sentinel, second.addr.port()).await;
    assert_eq!(switch.old_port, first.addr.port());
    assert_eq!(
        client.sentinel_master(s, NAME).await.unwrap().unwrap().port,
        second.addr.port()
    );

    // Observed on Valkey 9.1: right after a coordinated failover the
    // Sentinel's link to the new primary is down for about a second (it
    // reconnects once per second), so with down-after 1000 ms it marks the
    // new primary down and fails straight back. 5 s keeps it put.
    client
        .sentinel_set(s, NAME, &[("down-after-milliseconds", "5000".to_owned())])
        .await
        .unwrap();
    client.sentinel_set_auth_pass(s, NAME).await.unwrap();
    let primary = client.sentinel_master(s, NAME).await.unwrap().unwrap();
    assert_eq!(primary.down_after_ms, 5000);
    // The server echoes an invalid value; the error must not.
    let err = client
        .sentinel_set(s, NAME, &[("quorum", "0".to_owned())])
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
    assert!(!err.to_string().contains("'0'"), "{err}");

    // The old primary is made a replica by the Sentinel only at its next
    // INFO (up to 10 s): do it now, then RESET so the Sentinel reads every
    // replica's INFO at once instead of within 10 s.
    client
        .replicaof(first.addr, Some(second.addr))
        .await
        .unwrap();
    await_synced(&client, &sentinel, &first, &second).await;
    assert_eq!(client.sentinel_reset(s, NAME).await.unwrap(), 1);
    await_known_replica(&client, &sentinel, &first).await;

    // A coordinated failover back: the primary hands over with FAILOVER,
    // no write lost.
    client.sentinel_failover(s, NAME, true).await.unwrap();
    let during = client.sentinel_master(s, NAME).await.unwrap().unwrap();
    assert!(
        during.has_flag("coordinated_failover") && during.failover_state.is_some(),
        "{during:?}"
    );
    let switch = await_switch(&mut events, &sentinel, first.addr.port()).await;
    assert_eq!(switch.old_port, second.addr.port());
    let primary = client.sentinel_master(s, NAME).await.unwrap().unwrap();
    assert_eq!(primary.port, first.addr.port());
    await_synced(&client, &sentinel, &second, &first).await;

    // Names the Sentinel does not monitor.
    assert!(client.sentinel_master(s, "nope").await.unwrap().is_none());
    let empty = client.sentinel_probe(s, "nope").await.unwrap();
    assert_eq!(
        (empty.primary, empty.replicas.len(), empty.sentinels.len()),
        (None, 0, 0)
    );
    let err = client.sentinel_replicas(s, "nope").await.unwrap_err();
    assert_eq!(
        SentinelRefusal::of(&err),
        Some(SentinelRefusal::UnknownMaster),
        "{err}"
    );
    client.sentinel_remove(s, "nope").await.unwrap();

    // A primary without replicas: nothing to promote, and no quorum once
    // it asks for two Sentinels.
    let lonely = Server::start(&[]);
    client
        .sentinel_monitor(s, "lonely", "127.0.0.1", lonely.addr.port(), 1)
        .await
        .unwrap();
    let err = client
        .sentinel_monitor(s, "lonely", "127.0.0.1", lonely.addr.port(), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
    let err = client
        .sentinel_failover(s, "lonely", false)
        .await
        .unwrap_err();
    assert_eq!(
        SentinelRefusal::of(&err),
        Some(SentinelRefusal::NoGoodReplica),
        "{err}"
    );
    client
        .sentinel_set(s, "lonely", &[("quorum", "2".to_owned())])
        .await
        .unwrap();
    let verdict = client.sentinel_ckquorum(s, "lonely").await.unwrap();
    assert!(
        verdict
            .as_ref()
            .is_err_and(|text| text.starts_with("NOQUORUM")),
        "{verdict:?}"
    );
    client.sentinel_flushconfig(s).await.unwrap();
    client.sentinel_remove(s, "lonely").await.unwrap();
    client.sentinel_remove(s, "lonely").await.unwrap();
    assert!(client.sentinel_master(s, "lonely").await.unwrap().is_none());

    // Wrong or missing credentials.
    let wrong = ValkeyClient::new(Timeouts::default(), Some(Password::new("wrong")));
    let err = wrong.sentinel_myid(s).await.unwrap_err();
    assert!(matches!(err, ProbeError::AuthFailed { .. }), "{err:?}");
    let none = ValkeyClient::new(Timeouts::default(), None);
    let err = none.sentinel_master(s, NAME).await.unwrap_err();
    assert!(matches!(err, ProbeError::AuthFailed { .. }), "{err:?}");
    let err = subscribe_sentinel_events(s, Some(&Password::new("wrong")), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::AuthFailed { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));

    // The subscription ends when the Sentinel goes.
    let mut sentinel = sentinel;
    sentinel.kill();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream did not end with its Sentinel"
    );
    let err = subscribe_sentinel_events(s, Some(&password), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.is_death(), "{err:?}");

    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
}
