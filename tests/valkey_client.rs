//! The data-plane client against real valkey-server processes on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use logbook::valkey::{Password, Phase, ProbeError, Role, RoleReply, Timeouts, ValkeyClient};

use crate::valkey_server;
use valkey_server::{Server, eventually};

fn client() -> ValkeyClient {
    ValkeyClient::new(Timeouts::default(), None)
}

/// A separate raw connection, for setting up and checking from outside;
/// without a response timeout, so `DEBUG SLEEP` returns only when it ends.
async fn raw(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

#[tokio::test]
async fn probe_of_a_primary() {
    let server = Server::start(&[]);
    let mut conn = raw(server.addr).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let probe = client().probe(server.addr).await.unwrap();
    assert_eq!(probe.info.role, Role::Primary);
    assert_eq!(probe.role.role(), Role::Primary);
    assert_eq!(probe.info.replid.len(), 40);
    assert!(probe.info.primary.is_none());
    assert!(probe.info.replicas.is_empty());
    assert!(probe.latency < Duration::from_secs(1));
    assert!(client().ping(server.addr).await.is_ok());
}

#[tokio::test]
async fn a_replica_follows_its_primary() {
    let primary = Server::start(&[]);
    let replica = Server::start(&[]);
    let c = client();
    c.replicaof(replica.addr, Some(primary.addr)).await.unwrap();
    // Idempotent: the server answers "OK Already connected".
    c.replicaof(replica.addr, Some(primary.addr)).await.unwrap();

    eventually("the link to come up", || async {
        c.probe(replica.addr)
            .await
            .ok()
            .and_then(|p| p.info.primary)
            .is_some_and(|link| link.link_up)
    })
    .await;
    let p = c.probe(primary.addr).await.unwrap();
    let r = c.probe(replica.addr).await.unwrap();
    assert_eq!(r.info.role, Role::Replica);
    assert_eq!(r.info.replid, p.info.replid);
    let link = r.info.primary.unwrap();
    assert_eq!(link.port, primary.addr.port());
    assert!(matches!(r.role, RoleReply::Replica { port, .. } if port == primary.addr.port()));

    eventually("the primary to list its replica online", || async {
        c.probe(primary.addr)
            .await
            .unwrap()
            .info
            .replicas
            .iter()
            .any(|listed| listed.port == replica.addr.port() && listed.state == "online")
    })
    .await;
    assert_eq!(c.wait(primary.addr, 1, 1000).await.unwrap(), 1);

    c.replicaof(replica.addr, None).await.unwrap();
    assert_eq!(
        c.probe(replica.addr).await.unwrap().info.role,
        Role::Primary
    );
}

#[tokio::test]
async fn a_busy_server_is_slow_and_a_killed_one_is_dead() {
    let mut server = Server::start(&["--enable-debug-command", "yes"]);
    let c = ValkeyClient::new(
        Timeouts {
            connect: Duration::from_secs(1),
            command: Duration::from_millis(500),
        },
        None,
    );
    c.probe(server.addr).await.unwrap();

    let mut sleeper = raw(server.addr).await;
    let sleep = tokio::spawn(async move {
        let _: redis::RedisResult<()> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async(&mut sleeper)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = c.probe(server.addr).await.unwrap_err();
    assert!(err.is_slowness(), "{err:?}");
    assert!(!err.is_death());
    assert!(matches!(
        err,
        ProbeError::TimedOut {
            phase: Phase::Command,
            ..
        }
    ));
    assert!(err.to_string().contains(&server.addr.to_string()));
    // A new connection is not even accepted while the server sleeps: that
    // is slowness too, not death.
    let err = c.ping(server.addr).await.unwrap_err();
    assert!(err.is_slowness(), "{err:?}");
    sleep.await.unwrap();

    // Once the command finished, a fresh connection works again.
    c.probe(server.addr).await.unwrap();

    server.kill();
    let err = c.probe(server.addr).await.unwrap_err();
    assert!(err.is_death(), "{err:?}");
    assert!(!err.is_slowness());
    let err = c.ping(server.addr).await.unwrap_err();
    assert!(err.is_death(), "{err:?}");
}

#[tokio::test]
async fn the_password_is_used_and_never_shown() {
    let secret = "s3cret-hunter2";
    let server = Server::start(&["--requirepass", secret]);

    let right = ValkeyClient::new(Timeouts::default(), Some(Password::new(secret)));
    assert_eq!(
        right.probe(server.addr).await.unwrap().info.role,
        Role::Primary
    );
    assert!(!format!("{right:?}").contains(secret));

    let wrong = ValkeyClient::new(Timeouts::default(), Some(Password::new("not-it-xyz")));
    let err = wrong.probe(server.addr).await.unwrap_err();
    assert!(matches!(err, ProbeError::AuthFailed { .. }), "{err:?}");
    assert!(!err.is_retryable());
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("not-it-xyz"), "{text}");
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains(&server.addr.to_string()), "{text}");
    }

    let none = client();
    let err = none.probe(server.addr).await.unwrap_err();
    assert!(matches!(err, ProbeError::AuthFailed { .. }), "{err:?}");

    // The Secret changed: the new password takes effect on reconnect.
    wrong.set_password(Some(Password::new(secret))).await;
    wrong.probe(server.addr).await.unwrap();
}

#[tokio::test]
async fn failover_swaps_primary_and_replica() {
    let primary = Server::start(&[]);
    let replica = Server::start(&[]);
    let c = client();
    c.replicaof(replica.addr, Some(primary.addr)).await.unwrap();
    eventually("the replica to be online", || async {
        c.probe(primary.addr)
            .await
            .unwrap()
            .info
            .replicas
            .iter()
            .any(|r| r.state == "online")
    })
    .await;

    // A generous FAILOVER timeout: the primary gives up (and stays
    // primary) if the replica has not caught up by then, which a loaded
    // CI machine once made it do at 5 s. A FAILOVER the server aborted
    // leaves both as they were (`master_failover_state:no-failover`, the
    // primary still primary); it is asked again, up to three times, as
    // under load it once was aborted even at 20 s. What the client sends
    // is what is tested: a wrong command fails at once, every time.
    let mut attempt = 0;
    'swap: loop {
        attempt += 1;
        c.failover_to(primary.addr, replica.addr, 20_000)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = c.probe(primary.addr).await;
            let r = c.probe(replica.addr).await;
            if matches!((&p, &r), (Ok(p), Ok(r))
                if p.info.role == Role::Replica && r.info.role == Role::Primary)
            {
                break 'swap;
            }
            if Instant::now() > deadline {
                // What each side says, to tell an aborted failover from one
                // stuck on its way.
                let mut pc = raw(primary.addr).await;
                let mut rc = raw(replica.addr).await;
                let pi: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut pc)
                    .await
                    .unwrap();
                let ri: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut rc)
                    .await
                    .unwrap();
                let aborted =
                    pi.contains("role:master") && pi.contains("master_failover_state:no-failover");
                if aborted && attempt < 3 {
                    eprintln!("FAILOVER attempt {attempt} was aborted by the server; again");
                    continue 'swap;
                }
                panic!(
                    "the roles did not swap in 30 s (attempt {attempt}); primary {}: {pi}\nreplica {}: {ri}",
                    primary.addr, replica.addr
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The old primary now follows the new one.
    let old = c.probe(primary.addr).await.unwrap();
    assert_eq!(old.info.primary.unwrap().port, replica.addr.port());

    // FAILOVER on a server with no such replica is a refusal.
    let err = c
        .failover_to(replica.addr, replica.addr, 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn connections_are_reused() {
    let server = Server::start(&[]);
    let c = client();
    c.probe(server.addr).await.unwrap();
    c.probe(server.addr).await.unwrap();
    c.ping(server.addr).await.unwrap();
    c.config_set(server.addr, "maxmemory", "100mb")
        .await
        .unwrap();
    let err = c
        .config_set(server.addr, "no-such-directive", "1")
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");

    // Ours plus this checking connection.
    let mut check = raw(server.addr).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut check)
        .await
        .unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[tokio::test]
async fn a_held_connection_stays_open_while_the_server_lives_and_closes_when_it_dies() {
    let mut server = Server::start(&["--requirepass", "s3cret"]);
    let held = client()
        .hold_open(server.addr, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(held.addr(), server.addr);
    let closed = tokio::spawn(held.closed());
    // Unauthenticated and idle, it is neither answered nor turned away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !closed.is_finished(),
        "the server closed an idle connection"
    );
    let killed = Instant::now();
    server.kill();
    tokio::time::timeout(Duration::from_secs(2), closed)
        .await
        .expect("the held connection did not close when its server was killed")
        .unwrap();
    // Within a few milliseconds, not a probe interval (generous bound for
    // a loaded machine).
    assert!(
        killed.elapsed() < Duration::from_millis(500),
        "{:?}",
        killed.elapsed()
    );
    // Nothing listens any more: opening one again is refused.
    let again = client()
        .hold_open(server.addr, Duration::from_secs(1))
        .await;
    assert!(
        matches!(again, Err(ProbeError::Refused { .. })),
        "{again:?}"
    );
}

/// A ValkeyUser's spec as the operator reads it (`user_record`) and sends
/// it (`ACL SETUSER name reset >password <rules>`), held by a real server:
/// the ACL user is `username` (not the object's name), `readKeys` are
/// readable only, `writeKeys` writable only, `channels` the only ones it
/// may publish to, and `enabled: false` refuses its logins.
#[tokio::test]
async fn a_valkey_users_spec_is_the_acl_user_the_server_holds() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use logbook::observe::fingerprints::Fingerprints;
    use logbook::observe::users::{password_in, user_record};
    use logbook::valkey::{FINGERPRINT_KEY_LEN, FingerprintKey};
    use logbook_crds::{ValkeyUser, ValkeyUserSpec};

    const PASSWORD: &str = "r3ports-pw";
    /// The user set on the server as the operator sets it.
    async fn set_on(addr: std::net::SocketAddr, username: &str, rules: &[String]) {
        client()
            .acl_setuser(addr, username, &Password::new(PASSWORD), rules, false)
            .await
            .unwrap();
    }
    let server = Server::start(&[]);
    let mut spec: ValkeyUserSpec = serde_json::from_value(serde_json::json!({
        "cluster": "demo",
        "username": "reports",
        "passwordSecret": {"name": "reports-password", "key": "password"},
        "commands": ["+@all"],
        "readKeys": ["shared:*"],
        "writeKeys": ["log:*"],
        "channels": ["news:*"],
    }))
    .unwrap();
    let secret = Secret {
        data: Some(std::collections::BTreeMap::from([(
            "password".to_owned(),
            ByteString(PASSWORD.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    let read = password_in(Some(&secret), "ns", "reports-password", "password");
    let key = FingerprintKey::from_bytes(&[7; FINGERPRINT_KEY_LEN]).unwrap();
    let apply = |spec: &ValkeyUserSpec| {
        let user = ValkeyUser::new("reports-user", spec.clone());
        let record =
            user_record(&user, None, Some(&read), &mut Fingerprints::new(Some(&key))).unwrap();
        assert_eq!(record.problem, None);
        record
    };
    let record = apply(&spec);
    assert_eq!(record.username, "reports");
    set_on(server.addr, &record.username, &record.rules).await;
    let mut admin = raw(server.addr).await;
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(users.contains(&"reports".to_owned()), "{users:?}");
    assert!(!users.contains(&"reports-user".to_owned()), "{users:?}");

    let as_user = format!("redis://reports:{PASSWORD}@{}", server.addr);
    let mut con = redis::Client::open(as_user.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // readKeys: read, not written.
    assert_eq!(run(&mut con, &["GET", "shared:1"]).await, Ok(()));
    assert_noperm(run(&mut con, &["SET", "shared:1", "v"]).await);
    // writeKeys: written, not read.
    assert_eq!(run(&mut con, &["SET", "log:1", "v"]).await, Ok(()));
    assert_noperm(run(&mut con, &["GET", "log:1"]).await);
    // No other key.
    assert_noperm(run(&mut con, &["GET", "other:1"]).await);
    // channels: only those.
    assert_eq!(run(&mut con, &["PUBLISH", "news:today", "m"]).await, Ok(()));
    assert_noperm(run(&mut con, &["PUBLISH", "other", "m"]).await);
    drop(con);

    // enabled: false — its logins refused, the user kept.
    spec.enabled = false;
    let record = apply(&spec);
    set_on(server.addr, &record.username, &record.rules).await;
    let refused = redis::Client::open(as_user.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        redis::ErrorKind::AuthenticationFailed,
        "{refused}"
    );
}

/// `args` sent on `con`: `Ok` or the server's refusal.
async fn run(con: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Result<(), String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<redis::Value>(con)
        .await
        .map(|_| ())
        .map_err(|e| format!("{} {e}", e.code().unwrap_or("?")))
}

fn assert_noperm(reply: Result<(), String>) {
    assert!(
        reply.as_ref().is_err_and(|e| e.contains("NOPERM")),
        "{reply:?}"
    );
}
