//! ValkeyUser end to end on localkube with real `valkey-server` pods: a
//! user limited to `app:*` on every node of a Replication cluster, kept
//! across a failover, a replaced pod and a new password, removed with its
//! object; a user that cannot be applied (no Secret, a rule the server
//! refuses) says so in its status and an Event, and costs nothing while
//! it waits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use logbook::journal_store::JournalBackend;
use logbook_crds::{UserPhase, ValkeyUser, ValkeyUserSpec};
use operator_common::*;

const NAME: &str = "demo";

fn replication_yaml() -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {NAME}
spec:
  topology: Replication
  replicas: 3
  failover:
    probeIntervalMilliseconds: 200
  storage:
    size: 1Gi
"#
    )
}

/// `redis-cli` as ACL user `user` against `addr`.
fn as_user(addr: &str, user: &str, password: &str, args: &[&str]) -> String {
    redis_cli_as(addr, Some(user), password, args)
}

async fn put_secret(env: &Env, name: &str, password: &str) {
    let api: kube::Api<Secret> = env.api();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "password".to_owned(),
            ByteString(password.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let patch = Patch::Apply(&secret);
    let mut params = PatchParams::apply("operator-users-test");
    params.force = true;
    api.patch(name, &params, &patch).await.unwrap();
}

async fn create_user(env: &Env, name: &str, spec: ValkeyUserSpec) {
    let api: kube::Api<ValkeyUser> = env.api();
    api.create(&PostParams::default(), &ValkeyUser::new(name, spec))
        .await
        .unwrap();
}

async fn user(env: &Env, name: &str) -> Option<ValkeyUser> {
    let api: kube::Api<ValkeyUser> = env.api();
    api.get_opt(name).await.unwrap()
}

/// Waits until `pred` holds of ValkeyUser `name`'s status.
async fn wait_user(
    env: &Env,
    name: &str,
    what: &str,
    pred: impl Fn(&logbook_crds::ValkeyUserStatus) -> bool,
) -> logbook_crds::ValkeyUserStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = user(env, name).await.and_then(|u| u.status)
            && pred(&status)
        {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ValkeyUser {name}: timed out waiting for {what}: {:?}\n{}",
            user(env, name).await.map(|u| u.status),
            env.dump(NAME).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn app_spec() -> ValkeyUserSpec {
    let mut spec = ValkeyUserSpec::new(NAME, "app-password", "password");
    spec.commands = vec!["+@all".into(), "-@dangerous".into()];
    spec.keys = vec!["app:*".into()];
    spec
}

/// Every data pod's address.
async fn addrs(env: &Env) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pod in env.pods(NAME).await {
        let name = kube::ResourceExt::name_any(&pod);
        out.push((name.clone(), env.pod_addr(&name).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_limited_to_app_keys_is_on_every_node_through_failover_replacement_and_a_new_password()
 {
    let mut env = Env::start_without_operator("users-app").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml()).await;
    env.wait_ready(NAME, 3, Duration::from_secs(90)).await;
    // config/samples/user.yaml, as it is.
    create_user_sample(&env).await;
    let ready = |s: &logbook_crds::ValkeyUserStatus| {
        s.phase == Some(UserPhase::Ready) && s.nodes.as_deref() == Some("3/3")
    };
    let status = wait_user(&env, "app", "Ready on 3/3 nodes", ready).await;
    let first = status.password_fingerprint.clone().unwrap();
    assert_eq!(status.username.as_deref(), Some("app"));

    // On the primary: app:* yes, anything else and dangerous commands no.
    let vkc = env.vkc(NAME).await;
    let primary_addr = env.pod_addr(&primary(&vkc)).await;
    let pw = SAMPLE_USER_PASSWORD;
    assert_eq!(
        as_user(&primary_addr, "app", pw, &["SET", "app:1", "v"]).trim(),
        "OK"
    );
    let refused = as_user(&primary_addr, "app", pw, &["SET", "other:1", "v"]);
    assert!(refused.contains("NOPERM"), "{refused}");
    let refused = as_user(&primary_addr, "app", pw, &["FLUSHALL"]);
    assert!(refused.contains("NOPERM"), "{refused}");
    // And on every replica (ACL users are not replicated: each got it).
    for (pod, addr) in addrs(&env).await {
        let got = as_user(&addr, "app", pw, &["GET", "app:1"]);
        assert!(got.contains('v') || got.trim().is_empty(), "{pod}: {got}");
        assert!(!got.contains("WRONGPASS"), "{pod}: {got}");
    }

    // A failover: the new primary has it already.
    let old = primary(&vkc);
    env.kill(&old).await;
    let moved = env
        .wait_primary_moved(NAME, &old, Duration::from_secs(40))
        .await;
    let new_addr = env.pod_addr(&primary(&moved)).await;
    env.eventually(
        Duration::from_secs(20),
        "app writes on the new primary",
        || {
            let addr = new_addr.clone();
            async move { as_user(&addr, "app", pw, &["SET", "app:2", "v"]).trim() == "OK" }
        },
    )
    .await;

    // A replica's pod replaced: the new pod (a new process, a fresh ACL
    // file) is given the user again.
    let replica = env
        .pods(NAME)
        .await
        .iter()
        .map(kube::ResourceExt::name_any)
        .find(|p| *p != primary(&moved))
        .unwrap();
    env.delete_pod(&replica).await;
    env.wait_ready(NAME, 3, Duration::from_secs(90)).await;
    wait_user(&env, "app", "Ready on 3/3 nodes after a replacement", ready).await;
    let replica_addr = env.pod_addr(&replica).await;
    env.eventually(Duration::from_secs(20), "app on the replaced pod", || {
        let addr = replica_addr.clone();
        async move { as_user(&addr, "app", pw, &["PING"]).trim() == "PONG" }
    })
    .await;

    // A new password, with a client writing throughout: a rotation
    // window (shortened to 6 s here) where the old and the new password
    // both work on every node, no pod restarted, and the writer, which
    // moves to the new password once it is in force, never refused.
    let users_api: kube::Api<ValkeyUser> = env.api();
    users_api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"rotationWindowSeconds": 6}})),
        )
        .await
        .unwrap();
    let restarts_before = restarts(&env).await;
    let writer = Writer::start(new_addr.clone(), "app", SAMPLE_USER_PASSWORD);
    tokio::time::sleep(Duration::from_millis(500)).await;
    put_secret(&env, "app-password", "app-s3cret-2").await;
    let status = wait_user(&env, "app", "the new password on 3/3", |s| {
        ready(s) && s.password_fingerprint.as_deref() != Some(first.as_str())
    })
    .await;
    assert_ne!(status.password_fingerprint, Some(first));
    let rotating = status.message.clone().unwrap_or_default();
    assert!(rotating.contains("rotating"), "{rotating}");
    for (pod, addr) in addrs(&env).await {
        for password in [SAMPLE_USER_PASSWORD, "app-s3cret-2"] {
            let got = as_user(&addr, "app", password, &["PING"]);
            assert_eq!(got.trim(), "PONG", "{pod} within the window: {got}");
        }
    }
    writer.switch_to("app-s3cret-2");
    // The window closes: the old password is refused everywhere, the new
    // one works.
    env.eventually(Duration::from_secs(20), "the old password gone", || {
        let env = &env;
        async move {
            let mut gone = true;
            for (_, addr) in addrs(env).await {
                gone &=
                    as_user(&addr, "app", SAMPLE_USER_PASSWORD, &["PING"]).contains("WRONGPASS");
            }
            gone
        }
    })
    .await;
    for (pod, addr) in addrs(&env).await {
        let got = as_user(&addr, "app", "app-s3cret-2", &["PING"]);
        assert_eq!(got.trim(), "PONG", "{pod}: {got}");
    }
    let (writes, errors) = writer.stop();
    assert!(writes > 10, "{writes} writes");
    assert!(errors.is_empty(), "the writer was refused: {errors:?}");
    assert_eq!(restarts(&env).await, restarts_before, "no pod restarted");
    let events = env.journal_events(&env.stream(NAME).await).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, logbook_journal::Event::RotationWindowClosed { username } if username == "app")),
        "the window's close is journaled"
    );

    // Nothing secret in the journal.
    let events = env.journal_events(&env.stream(NAME).await).await;
    let text = format!("{events:?}");
    for secret in [SAMPLE_USER_PASSWORD, "app-s3cret-2"] {
        assert!(!text.contains(secret), "the journal holds a password");
    }
    assert!(
        events.iter().any(|e| matches!(
            &e.body,
            logbook_journal::Event::Decided { intents } if intents.iter().any(|p| matches!(p.intent, logbook_journal::Intent::SyncUsers { .. }))
        )),
        "SyncUsers decided"
    );

    // Deleted: off every node, then the object goes (its finalizer released).
    let api: kube::Api<ValkeyUser> = env.api();
    api.delete("app", &DeleteParams::default()).await.unwrap();
    env.eventually(Duration::from_secs(30), "ValkeyUser app gone", || {
        let api = api.clone();
        async move { api.get_opt("app").await.unwrap().is_none() }
    })
    .await;
    for (pod, addr) in addrs(&env).await {
        let got = as_user(&addr, "app", "app-s3cret-2", &["PING"]);
        assert!(got.contains("WRONGPASS"), "{pod} still has app: {got}");
    }
    env.finish().await;
}

/// Container restarts over the cluster's pods.
async fn restarts(env: &Env) -> i32 {
    env.pods(NAME)
        .await
        .iter()
        .flat_map(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()
        })
        .map(|c| c.restart_count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_that_cannot_be_applied_says_why_and_costs_nothing_while_it_waits() {
    let mut env = Env::start_without_operator("users-bad").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(
        &replication_yaml()
            .replace("topology: Replication", "topology: Standalone")
            .replace("replicas: 3", "replicas: 1"),
    )
    .await;
    env.wait_ready(NAME, 1, Duration::from_secs(90)).await;

    // No Secret: Failed, saying which, and an Event; never password-less.
    create_user(&env, "nosecret", app_spec()).await;
    let status = wait_user(&env, "nosecret", "Failed", |s| {
        s.phase == Some(UserPhase::Failed)
    })
    .await;
    let message = status.message.unwrap();
    assert!(
        message.contains("Secret default/app-password not found"),
        "{message}"
    );
    let addr = env.pod_addr(&format!("{NAME}-0")).await;
    let password = env.password(NAME).await;
    let users = redis_cli(&addr, &password, &["ACL", "USERS"]);
    assert!(!users.contains("app"), "{users}");
    let kube_events: kube::Api<KubeEvent> = env.api();
    env.eventually(Duration::from_secs(10), "a Warning Event", || {
        let api = kube_events.clone();
        async move {
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("UserNotApplied")
                        && e.note.as_deref().is_some_and(|m| m.contains("nosecret"))
                })
        }
    })
    .await;
    // The Secret appears: applied (the Secret watch reconciles at once).
    put_secret(&env, "app-password", "later").await;
    wait_user(&env, "nosecret", "Ready", |s| {
        s.phase == Some(UserPhase::Ready)
    })
    .await;

    // A user of a cluster that does not exist says so.
    let mut spec = app_spec();
    spec.cluster = "nowhere".into();
    create_user(&env, "stray", spec).await;
    let status = wait_user(&env, "stray", "ClusterNotFound", |s| {
        s.message
            .as_deref()
            .is_some_and(|m| m.contains("not found"))
    })
    .await;
    assert_eq!(
        status.message.as_deref(),
        Some("ValkeyCluster default/nowhere not found: the user is on no node")
    );

    // A rule the server refuses (syntax fine, no such command): its
    // message in the status, and no retry loop while nothing changes.
    let mut spec = app_spec();
    spec.username = Some("refused".into());
    spec.commands = vec!["+nosuchcommand".into()];
    create_user(&env, "refused", spec).await;
    let status = wait_user(&env, "refused", "Failed", |s| {
        s.phase == Some(UserPhase::Failed)
    })
    .await;
    let message = status.message.unwrap();
    assert!(message.contains("nosuchcommand"), "{message}");
    let stream = env.stream(NAME).await;
    let head = env.journal_head(&stream).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        env.journal_head(&stream).await,
        head,
        "a refused user is not tried again until it changes"
    );
    env.finish().await;
}

/// A client writing `app:w<n>` as `user` every 100 ms on fresh
/// connections (each one authenticates), with the password it is given.
struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    password: std::sync::Arc<std::sync::Mutex<String>>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Writer {
    fn start(addr: String, user: &'static str, password: &str) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let password = std::sync::Arc::new(std::sync::Mutex::new(password.to_owned()));
        let thread = std::thread::spawn({
            let (stop, password) = (stop.clone(), password.clone());
            move || {
                let (mut n, mut errors) = (0usize, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let pw = password.lock().unwrap().clone();
                    let got = as_user(&addr, user, &pw, &["SET", &format!("app:w{n}"), "v"]);
                    if got.trim() != "OK" {
                        errors.push(got);
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                (n, errors)
            }
        });
        Self {
            stop,
            password,
            thread,
        }
    }

    fn switch_to(&self, password: &str) {
        *self.password.lock().unwrap() = password.to_owned();
    }

    fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_own_password_rotates_on_every_node_without_a_restart() {
    let mut env = Env::start_without_operator("users-cluster-pw").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    // The password in a Secret of the user's (not labelled as the
    // operator's): its change must still be seen at once.
    let old = "0ld-cluster-password".to_owned();
    put_secret(&env, "cluster-pass", &old).await;
    env.apply_yaml(&replication_yaml().replace(
        "  storage:",
        "  auth:\n    passwordSecret:\n      name: cluster-pass\n      key: password\n    rotationWindowSeconds: 6\n  storage:",
    ))
    .await;
    let vkc = env.wait_ready(NAME, 3, Duration::from_secs(90)).await;
    let primary_addr = env.pod_addr(&primary(&vkc)).await;
    let restarts_before = restarts(&env).await;
    let writer = Writer::start(primary_addr.clone(), "default", &old);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let new = "n3w-cluster-password";
    put_secret(&env, "cluster-pass", new).await;
    // Every node takes the new password beside the old one.
    env.eventually(
        Duration::from_secs(30),
        "the new password on every node",
        || {
            let env = &env;
            async move {
                let mut all = true;
                for (_, addr) in addrs(env).await {
                    all &= as_user(&addr, "default", new, &["PING"]).trim() == "PONG";
                }
                all
            }
        },
    )
    .await;
    for (pod, addr) in addrs(&env).await {
        let got = as_user(&addr, "default", &old, &["PING"]);
        assert_eq!(
            got.trim(),
            "PONG",
            "{pod}: the old one within the window: {got}"
        );
    }
    writer.switch_to(new);
    // The window closes: the old one is refused everywhere.
    env.eventually(Duration::from_secs(30), "the old password gone", || {
        let (env, old) = (&env, old.clone());
        async move {
            let mut gone = true;
            for (_, addr) in addrs(env).await {
                gone &= as_user(&addr, "default", &old, &["PING"]).contains("WRONGPASS");
            }
            gone
        }
    })
    .await;
    let (writes, errors) = writer.stop();
    assert!(writes > 10, "{writes} writes");
    assert!(errors.is_empty(), "the writer was refused: {errors:?}");
    // Applications find the new one in the connection Secret.
    let secrets: kube::Api<Secret> = env.api();
    let connection = secrets.get(&format!("{NAME}-connection")).await.unwrap();
    let data = connection.data.unwrap();
    assert_eq!(String::from_utf8(data["password"].0.clone()).unwrap(), new);
    assert!(
        String::from_utf8(data["REDIS_URL"].0.clone())
            .unwrap()
            .contains(new)
    );
    // Replication kept going, now authenticated with the new password.
    let acked = as_user(&primary_addr, "default", new, &["SET", "after", "v"]);
    assert_eq!(acked.trim(), "OK");
    let waited = as_user(&primary_addr, "default", new, &["WAIT", "2", "5000"]);
    assert_eq!(waited.trim(), "2", "both replicas acknowledge");
    assert_eq!(restarts(&env).await, restarts_before, "no pod restarted");
    // The operator still runs the cluster: a failover with the new one.
    let old_primary = primary(&vkc);
    env.kill(&old_primary).await;
    let moved = env
        .wait_primary_moved(NAME, &old_primary, Duration::from_secs(40))
        .await;
    let moved_addr = env.pod_addr(&primary(&moved)).await;
    env.eventually(Duration::from_secs(20), "writes on the new primary", || {
        let addr = moved_addr.clone();
        async move { as_user(&addr, "default", new, &["SET", "x", "1"]).trim() == "OK" }
    })
    .await;
    let events = env.journal_events(&env.stream(NAME).await).await;
    assert!(
        events.iter().any(|e| matches!(
            &e.body,
            logbook_journal::Event::RotationWindowClosed { username } if username == "default"
        )),
        "the window's close is journaled"
    );
    // No password anywhere a person or a tool reads: the journal, each
    // export of it, the operator's log, the Events.
    let mut places = vec![("the journal".to_owned(), format!("{events:?}"))];
    for format in ["jsonl", "csv", "html"] {
        places.push((format!("the {format} export"), export(&env, format).await));
    }
    places.push((
        "the operator's log".to_owned(),
        env.logs.tail(usize::MAX).join("\n"),
    ));
    let kube_events: kube::Api<KubeEvent> = env.api();
    let notes: Vec<String> = kube_events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| format!("{:?} {:?}", e.reason, e.note))
        .collect();
    places.push(("the Events".to_owned(), notes.join("\n")));
    for (place, text) in &places {
        assert!(
            !text.is_empty() || place == "the Events",
            "{place} is empty"
        );
        for secret in [new, old.as_str()] {
            assert!(!text.contains(secret), "{place} holds a password");
        }
    }
    env.finish().await;
}

/// `logbook replay export --format <format>` of the cluster's journal in
/// its ConfigMaps.
async fn export(env: &Env, format: &str) -> String {
    replay_live(env, NAME, &["export", "--format", format]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_clusters_password_rotates_on_nodes_and_sentinels_without_a_restart() {
    let mut env = Env::start_without_operator("users-sentinel-pw").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    let old = "0ld-sentinel-password".to_owned();
    put_secret(&env, "cluster-pass", &old).await;
    env.apply_yaml(&format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {NAME}
spec:
  topology: Sentinel
  replicas: 3
  sentinel:
    replicas: 3
    downAfterMilliseconds: 3000
    failoverTimeoutMilliseconds: 10000
  failover:
    probeIntervalMilliseconds: 200
  auth:
    passwordSecret:
      name: cluster-pass
      key: password
    rotationWindowSeconds: 6
  storage:
    size: 1Gi
"#
    ))
    .await;
    let vkc = env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    let primary_addr = env.pod_addr(&primary(&vkc)).await;
    let sentinels = sentinel_addrs(&env, NAME).await;
    assert_eq!(sentinels.len(), 3);
    let restarts_before = restarts(&env).await;
    let writer = Writer::start(primary_addr.clone(), "default", &old);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let new = "n3w-sentinel-password";
    put_secret(&env, "cluster-pass", new).await;
    // The data nodes and the Sentinels take the new password beside the
    // old one.
    env.eventually(
        Duration::from_secs(30),
        "the new password on every node and Sentinel",
        || {
            let (env, sentinels) = (&env, sentinels.clone());
            async move {
                let mut all = true;
                for (_, addr) in addrs(env).await {
                    all &= as_user(&addr, "default", new, &["PING"]).trim() == "PONG";
                }
                for addr in &sentinels {
                    all &= as_user(addr, "default", new, &["PING"]).trim() == "PONG";
                }
                all
            }
        },
    )
    .await;
    for addr in addrs(&env)
        .await
        .into_iter()
        .map(|(_, a)| a)
        .chain(sentinels.clone())
    {
        let got = as_user(&addr, "default", &old, &["PING"]);
        assert_eq!(
            got.trim(),
            "PONG",
            "{addr}: the old one within the window: {got}"
        );
    }
    writer.switch_to(new);
    env.eventually(Duration::from_secs(30), "the old password gone", || {
        let (env, old, sentinels) = (&env, old.clone(), sentinels.clone());
        async move {
            let mut gone = true;
            for (_, addr) in addrs(env).await {
                gone &= as_user(&addr, "default", &old, &["PING"]).contains("WRONGPASS");
            }
            for addr in &sentinels {
                gone &= as_user(addr, "default", &old, &["PING"]).contains("WRONGPASS");
            }
            gone
        }
    })
    .await;
    let (writes, errors) = writer.stop();
    assert!(writes > 10, "{writes} writes");
    assert!(errors.is_empty(), "the writer was refused: {errors:?}");
    assert_eq!(restarts(&env).await, restarts_before, "no pod restarted");
    // The Sentinels still name the primary and fail it over: their links
    // to the data nodes use their own user, untouched by the rotation.
    let named = as_user(
        &sentinels[0],
        "default",
        new,
        &["SENTINEL", "GET-PRIMARY-ADDR-BY-NAME", NAME],
    );
    assert!(
        named.contains(primary_addr.rsplit_once(':').unwrap().0),
        "{named}"
    );
    let old_primary = primary(&vkc);
    env.faults().freeze(NS, &old_primary).await.unwrap();
    let moved = env
        .wait_primary_moved(NAME, &old_primary, Duration::from_secs(60))
        .await;
    let moved_addr = env.pod_addr(&primary(&moved)).await;
    env.eventually(Duration::from_secs(20), "writes on the new primary", || {
        let addr = moved_addr.clone();
        async move { as_user(&addr, "default", new, &["SET", "x", "1"]).trim() == "OK" }
    })
    .await;
    env.faults().thaw(NS, &old_primary).await.unwrap();
    let events = env.journal_events(&env.stream(NAME).await).await;
    let synced_sentinels = events
        .iter()
        .filter(|e| matches!(&e.body, logbook_journal::Event::AclObserved { pod, .. } if pod.contains("-sentinel-")))
        .count();
    assert!(synced_sentinels >= 3, "the Sentinels' users are journaled");
    assert!(
        !format!("{events:?}").contains(new),
        "no password in the journal"
    );
    env.finish().await;
}

/// What the operator's fingerprint of `password` must be under `key`:
/// 16 hex digits of HMAC-SHA-256(key, prefix ‖ password), computed here
/// on its own with ring, not with the operator's code.
fn hmac_fingerprint(key: &[u8], password: &str) -> String {
    keyed(key, b"logbook-password-fingerprint:", password)
}

/// 16 hex digits of HMAC-SHA-256(`key`, `context` ‖ `text`).
fn keyed(key: &[u8], context: &[u8], text: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(context);
    ctx.update(text.as_bytes());
    hex(&ctx.sign().as_ref()[..8])
}

/// 8 hex digits of the SHA-256 of `text`: what an earlier version
/// journaled, without a key.
fn unkeyed(text: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(text.as_bytes())[..4])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint key in the cluster's Secret `demo-internal`.
async fn fingerprint_key(env: &Env) -> Option<Vec<u8>> {
    let secrets: kube::Api<Secret> = env.api();
    let secret = secrets
        .get_opt(&format!("{NAME}-internal"))
        .await
        .unwrap()?;
    Some(secret.data?.get("fingerprint-key")?.0.clone())
}

/// Every password the cluster's journal may fingerprint: the app user's
/// (each it has had), the cluster's own, the internal users'.
async fn known_passwords(env: &Env, app: &[&str]) -> Vec<String> {
    let secrets: kube::Api<Secret> = env.api();
    let internal = secrets
        .get(&format!("{NAME}-internal"))
        .await
        .unwrap()
        .data
        .unwrap();
    let mut out: Vec<String> = app.iter().map(|p| (*p).to_owned()).collect();
    out.push(env.password(NAME).await);
    for key in ["operator", "replication", "sentinel", "metrics"] {
        out.push(String::from_utf8(internal[key].0.clone()).unwrap());
    }
    out
}

/// Every line of every data node's `ACL LIST`.
async fn acl_lines(env: &Env) -> Vec<String> {
    let password = env.password(NAME).await;
    let mut lines = Vec::new();
    for (_, addr) in addrs(env).await {
        let out = redis_cli(&addr, &password, &["ACL", "LIST"]);
        lines.extend(out.lines().map(str::to_owned));
    }
    lines
}

/// The fingerprints are keyed with the cluster's own key, kept in its
/// Secret `demo-internal` and nowhere else; a cluster whose journal an
/// earlier version wrote (unkeyed fingerprints, no key) is given a key
/// through a journaled intent and its fingerprints renamed, with no
/// rotation and nothing sent to a node; a new password is still seen
/// and rotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_are_keyed_with_the_clusters_own_key_and_an_earlier_journal_is_renamed_without_a_rotation()
 {
    let mut env = Env::start_without_operator("users-fingerprint").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml().replace("replicas: 3", "replicas: 2"))
        .await;
    env.wait_ready(NAME, 2, Duration::from_secs(90)).await;
    create_user_sample(&env).await;
    let ready = |s: &logbook_crds::ValkeyUserStatus| {
        s.phase == Some(UserPhase::Ready) && s.nodes.as_deref() == Some("2/2")
    };
    let status = wait_user(&env, "app", "Ready on 2/2 nodes", ready).await;

    // The key: made with the cluster, 32 bytes, and the status's
    // fingerprint is the HMAC of the password under it.
    let key = fingerprint_key(&env)
        .await
        .expect("demo-internal holds a fingerprint key");
    assert_eq!(key.len(), 32);
    assert_eq!(
        status.password_fingerprint.as_deref(),
        Some(hmac_fingerprint(&key, SAMPLE_USER_PASSWORD).as_str())
    );
    let stream = env.stream(NAME).await;
    let state = env.journal_state(&stream).await;
    assert_eq!(
        state.users.records["app"].password,
        status.password_fingerprint
    );
    // What the nodes hold is journaled keyed too.
    let lines = acl_lines(&env).await;
    let app_line = lines.iter().find(|l| l.starts_with("user app ")).unwrap();
    assert_eq!(
        state.users.nodes.values().next().unwrap()["app"],
        keyed(&key, b"logbook-acl-line-digest:", app_line),
        "{lines:?}"
    );
    let events = env.journal_events(&stream).await;
    assert!(
        events.iter().any(|e| matches!(
            e.body,
            logbook_journal::Event::FingerprintKeyObserved { present: true }
        )),
        "the key's presence is journaled"
    );
    assert!(
        !events.iter().any(|e| matches!(
            &e.body,
            logbook_journal::Event::Decided { intents } if intents.iter().any(|p| p.intent == logbook_journal::Intent::CreateFingerprintKey)
        )),
        "a new cluster's key comes with its objects"
    );

    // An earlier version's journal: the operator stopped, every
    // fingerprint and digest of the projection renamed back to what that
    // version computed (unkeyed), and the key gone from the Secret.
    env.stop_operator(Stop::Graceful).await;
    let state = env.journal_state(&stream).await;
    let mut passwords = BTreeMap::new();
    for p in known_passwords(&env, &[SAMPLE_USER_PASSWORD]).await {
        passwords.insert(
            hmac_fingerprint(&key, &p),
            unkeyed(&format!("logbook-password-fingerprint:{p}")),
        );
    }
    let mut digests = BTreeMap::new();
    for line in &lines {
        digests.insert(
            keyed(&key, b"logbook-acl-line-digest:", line),
            unkeyed(line),
        );
    }
    for fp in state.users.fingerprints() {
        assert!(passwords.contains_key(fp), "{fp} is of no known password");
    }
    for d in state.users.digests() {
        assert!(digests.contains_key(d), "{d} is of no line read");
    }
    let mut writer = logbook_journal::writer::StreamWriter::open(
        env.journal_store(),
        stream.clone(),
        state.epoch,
    )
    .await
    .unwrap();
    writer
        .append(vec![logbook_journal::writer::NewEvent::now(
            logbook_journal::Event::FingerprintsRekeyed { passwords, digests },
        )])
        .await
        .unwrap();
    let old = env.journal_state(&stream).await;
    let old_fp = old.users.records["app"].password.clone().unwrap();
    assert_eq!(old_fp.len(), 8, "as an earlier version journaled it");
    let secrets: kube::Api<Secret> = env.api();
    secrets
        .patch(
            &format!("{NAME}-internal"),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"fingerprint-key": null}})),
        )
        .await
        .unwrap();
    assert_eq!(fingerprint_key(&env).await, None);
    let before = env.journal_head(&stream).await;

    // The new version: it journals the key missing, decides its making,
    // and renames the fingerprints with the new key.
    env.start_operator();
    let new_key = {
        let env = &env;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(key) = fingerprint_key(env).await {
                break key;
            }
            assert!(std::time::Instant::now() < deadline, "no key was made");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, key, "a new key: the old one is gone");
    let new_fp = hmac_fingerprint(&new_key, SAMPLE_USER_PASSWORD);
    wait_user(&env, "app", "its fingerprint under the new key", |s| {
        ready(s) && s.password_fingerprint.as_deref() == Some(new_fp.as_str())
    })
    .await;
    // Settled: the nodes' users renamed too.
    env.eventually(Duration::from_secs(30), "the digests renamed", || {
        let (env, stream) = (&env, stream.clone());
        async move {
            let state = env.journal_state(&stream).await;
            state.users.digests().iter().all(|d| d.len() == 16) && !state.users.nodes.is_empty()
        }
    })
    .await;
    let events = env.journal_events(&stream).await;
    let after: Vec<&logbook_journal::Envelope> = events.iter().filter(|e| e.seq > before).collect();
    let kinds: Vec<&str> = after.iter().map(|e| e.body.kind()).collect();
    let missing = after
        .iter()
        .position(|e| {
            matches!(
                e.body,
                logbook_journal::Event::FingerprintKeyObserved { present: false }
            )
        })
        .unwrap_or_else(|| panic!("the key's absence is not journaled: {kinds:?}"));
    let decided = after
        .iter()
        .position(|e| matches!(
            &e.body,
            logbook_journal::Event::Decided { intents } if intents.iter().any(|p| p.intent == logbook_journal::Intent::CreateFingerprintKey)
        ))
        .unwrap_or_else(|| panic!("CreateFingerprintKey is not decided: {kinds:?}"));
    assert!(missing < decided, "{kinds:?}");
    let renamed: Vec<_> = after
        .iter()
        .filter_map(|e| match &e.body {
            logbook_journal::Event::FingerprintsRekeyed { passwords, digests } => {
                Some((passwords.clone(), digests.clone()))
            }
            _ => None,
        })
        .collect();
    assert!(
        renamed.iter().any(|(p, _)| p.get(&old_fp) == Some(&new_fp)),
        "app's fingerprint renamed: {renamed:?}"
    );
    assert!(
        renamed.iter().any(|(_, d)| !d.is_empty()),
        "the digests renamed: {renamed:?}"
    );
    // No rotation, and nothing sent to a node: no user observed anew, no
    // sync decided.
    for e in &after {
        match &e.body {
            logbook_journal::Event::UserObserved { user } if user.object == "app" => {
                panic!("app observed anew (a rotation?): {user:?}\n{kinds:?}")
            }
            logbook_journal::Event::Decided { intents } => {
                for p in intents {
                    assert!(
                        !matches!(p.intent, logbook_journal::Intent::SyncUsers { .. }),
                        "{:?} decided after the upgrade: {kinds:?}",
                        p.intent
                    );
                }
            }
            _ => {}
        }
    }
    let state = env.journal_state(&stream).await;
    assert!(
        state.users.rotations.is_empty(),
        "{:?}",
        state.users.rotations
    );
    assert!(
        state.users.fingerprints().iter().all(|f| f.len() == 16),
        "{:?}",
        state.users.fingerprints()
    );

    // A new password is still seen and rotated: under the new key.
    let users_api: kube::Api<ValkeyUser> = env.api();
    users_api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"rotationWindowSeconds": 3}})),
        )
        .await
        .unwrap();
    put_secret(&env, "app-password", "app-s3cret-3").await;
    let rotated = hmac_fingerprint(&new_key, "app-s3cret-3");
    let status = wait_user(&env, "app", "the new password on 2/2", |s| {
        ready(s) && s.password_fingerprint.as_deref() == Some(rotated.as_str())
    })
    .await;
    assert!(
        status.message.unwrap_or_default().contains("rotating"),
        "a rotation window opened"
    );
    for (pod, addr) in addrs(&env).await {
        let got = as_user(&addr, "app", "app-s3cret-3", &["PING"]);
        assert_eq!(got.trim(), "PONG", "{pod}: {got}");
    }
    // The key itself is nowhere a person or a tool reads.
    let events = env.journal_events(&stream).await;
    let mut places = vec![format!("{events:?}")];
    places.push(export(&env, "jsonl").await);
    places.push(env.logs.tail(usize::MAX).join("\n"));
    for k in [&key, &new_key] {
        let forms = [
            hex(k),
            // Base64, as a Secret's data is written.
            serde_json::to_string(&ByteString(k.to_vec()))
                .unwrap()
                .trim_matches('"')
                .to_owned(),
            format!("{k:?}"),
        ];
        for text in &places {
            for form in &forms {
                assert!(!text.contains(form.as_str()), "a fingerprint key leaked");
            }
        }
    }
    env.finish().await;
}

/// Text of key `key` of Secret `name`, if both exist.
async fn secret_text(env: &Env, name: &str, key: &str) -> Option<String> {
    let api: kube::Api<Secret> = env.api();
    let secret = api.get_opt(name).await.unwrap()?;
    let value = secret.data?.remove(key)?;
    Some(String::from_utf8(value.0).unwrap())
}

/// A connection to the URL in `url` as a client library takes it, the
/// host (the client Service's DNS name, which only the cluster's DNS
/// resolves) swapped for the Service's address.
async fn connect_url(env: &Env, url: &str, host: &str) -> redis::aio::MultiplexedConnection {
    let reachable = url.replace(&format!("{host}:6379"), &env.service_addr(NAME).await);
    assert_ne!(reachable, url, "{host} in the URL");
    let client = redis::Client::open(reachable.as_str()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// `cmd` on `con`: the reply as text, or the server's error.
async fn run(con: &mut redis::aio::MultiplexedConnection, cmd: &[&str]) -> Result<String, String> {
    let mut c = redis::cmd(cmd[0]);
    for arg in &cmd[1..] {
        c.arg(*arg);
    }
    c.query_async::<String>(con)
        .await
        .map_err(|e| e.to_string())
}

/// Every API write since `mark` but the Leases' renewals.
fn writes_since(env: &Env, mark: u64) -> Vec<String> {
    env.api_requests()
        .since(mark)
        .into_iter()
        .filter(|r| r.method != "GET" && !r.uri.contains("/leases/"))
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_connects_as_its_user_with_the_connection_secret_the_operator_keeps() {
    let mut env = Env::start_without_operator("users-connection").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml()).await;
    env.wait_ready(NAME, 3, Duration::from_secs(90)).await;
    // A password a URL must encode.
    let first = "first:p@ss/w%rd";
    put_secret(&env, "app-password", first).await;
    let mut spec = app_spec();
    spec.rotation_window_seconds = 6;
    spec.connection_secret = Some("app-valkey".into());
    create_user(&env, "app", spec).await;
    wait_user(&env, "app", "Ready on 3/3 nodes", |s| {
        s.phase == Some(UserPhase::Ready) && s.nodes.as_deref() == Some("3/3")
    })
    .await;
    env.eventually(Duration::from_secs(20), "the connection Secret", || async {
        secret_text(&env, "app-valkey", "password").await.as_deref() == Some(first)
    })
    .await;
    let host = secret_text(&env, "app-valkey", "host").await.unwrap();
    assert_eq!(host, format!("{NAME}.default.svc.cluster.local"));
    assert_eq!(
        secret_text(&env, "app-valkey", "username").await.unwrap(),
        "app"
    );
    assert_eq!(
        secret_text(&env, "app-valkey", "port").await.unwrap(),
        "6379"
    );
    let url = secret_text(&env, "app-valkey", "REDIS_URL").await.unwrap();
    assert_eq!(
        url,
        format!("redis://app:first%3Ap%40ss%2Fw%25rd@{host}:6379")
    );
    let secrets: kube::Api<Secret> = env.api();
    let written = secrets.get("app-valkey").await.unwrap();
    let owner = &written.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ValkeyUser", "app")
    );

    // A real client with REDIS_URL: what the user may, and no more.
    let mut con = connect_url(&env, &url, &host).await;
    assert_eq!(run(&mut con, &["SET", "app:1", "v"]).await.unwrap(), "OK");
    for refused in [
        &["SET", "other:1", "v"][..],
        &["FLUSHALL"],
        &["CONFIG", "GET", "maxmemory"],
    ] {
        let err = run(&mut con, refused).await.unwrap_err();
        assert!(err.to_uppercase().contains("NOPERM"), "{refused:?}: {err}");
    }

    // Converged: nothing journaled, nothing written.
    let stream = env.stream(NAME).await;
    let head = env.journal_head(&stream).await;
    let mark = env.api_requests().total();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        env.journal_head(&stream).await,
        head,
        "journal appends while idle"
    );
    let writes = writes_since(&env, mark);
    assert!(writes.is_empty(), "API writes while idle: {writes:#?}");

    // A new password: the Secret follows once every node takes it, and
    // the new URL works.
    let second = "second-password";
    put_secret(&env, "app-password", second).await;
    env.eventually(
        Duration::from_secs(30),
        "the new password in the Secret",
        || async { secret_text(&env, "app-valkey", "password").await.as_deref() == Some(second) },
    )
    .await;
    let url = secret_text(&env, "app-valkey", "REDIS_URL").await.unwrap();
    assert_eq!(url, format!("redis://app:{second}@{host}:6379"));
    let mut con = connect_url(&env, &url, &host).await;
    assert_eq!(run(&mut con, &["SET", "app:2", "v"]).await.unwrap(), "OK");

    // A connectionSecret naming a Secret the operator does not own, or the
    // cluster's own: refused in the status and an Event, left untouched.
    let foreign = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("taken".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "mine".to_owned(),
            ByteString(b"keep".to_vec()),
        )])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let before = secrets.get("taken").await.unwrap();
    put_secret(&env, "intruder-password", "intruder-pw").await;
    let mut spec = ValkeyUserSpec::new(NAME, "intruder-password", "password");
    spec.commands = vec!["+ping".into()];
    spec.connection_secret = Some("taken".into());
    create_user(&env, "intruder", spec).await;
    let status = wait_user(&env, "intruder", "Failed", |s| {
        s.phase == Some(UserPhase::Failed)
    })
    .await;
    let message = status.message.unwrap();
    assert!(
        message.contains("Secret default/taken exists and was not written by the operator"),
        "{message}"
    );
    assert!(!message.contains("intruder-pw"), "{message}");
    let mut spec = ValkeyUserSpec::new(NAME, "intruder-password", "password");
    spec.username = Some("grabber".into());
    spec.connection_secret = Some(format!("{NAME}-connection"));
    create_user(&env, "grabber", spec).await;
    let status = wait_user(&env, "grabber", "Failed", |s| {
        s.phase == Some(UserPhase::Failed)
    })
    .await;
    assert!(
        status.message.as_deref().unwrap().contains("own Secrets"),
        "{status:?}"
    );
    let kube_events: kube::Api<KubeEvent> = env.api();
    env.eventually(Duration::from_secs(10), "a Warning Event", || {
        let api = kube_events.clone();
        async move {
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("UserNotApplied")
                        && e.note.as_deref().is_some_and(|m| {
                            m.contains("intruder") && m.contains("not written by the operator")
                        })
                })
        }
    })
    .await;
    let after = secrets.get("taken").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data, before.data);
    let cluster_secret = secret_text(&env, &format!("{NAME}-connection"), "REDIS_URL")
        .await
        .unwrap();
    assert!(!cluster_secret.contains("grabber"), "{cluster_secret}");

    // Renamed: the new one written, the old one (holding the password)
    // deleted.
    let users: kube::Api<ValkeyUser> = env.api();
    let rename = serde_json::json!({"spec": {"connectionSecret": "app-valkey-2"}});
    users
        .patch("app", &PatchParams::default(), &Patch::Merge(&rename))
        .await
        .unwrap();
    env.eventually(Duration::from_secs(30), "the Secret renamed", || async {
        secret_text(&env, "app-valkey-2", "password")
            .await
            .as_deref()
            == Some(second)
            && secrets.get_opt("app-valkey").await.unwrap().is_none()
    })
    .await;

    // The ValkeyUser deleted: its Secret goes with it.
    users.delete("app", &DeleteParams::default()).await.unwrap();
    env.eventually(
        Duration::from_secs(30),
        "the connection Secret gone",
        || async {
            secrets.get_opt("app-valkey-2").await.unwrap().is_none()
                && user(&env, "app").await.is_none()
        },
    )
    .await;
    assert!(secrets.get_opt("taken").await.unwrap().is_some());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_users_connection_secret_says_rediss_and_carries_the_ca() {
    let mut env = Env::start_without_operator("users-connection-tls").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    // config/samples/tls.yaml, as it is: the operator's own CA.
    apply_sample(&env, "tls.yaml");
    env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    put_secret(&env, "app-password", "tls-user-password").await;
    let mut spec = app_spec();
    spec.connection_secret = Some("app-valkey".into());
    create_user(&env, "app", spec).await;
    env.eventually(Duration::from_secs(30), "the connection Secret", || async {
        secret_text(&env, "app-valkey", "REDIS_URL").await.is_some()
    })
    .await;
    let url = secret_text(&env, "app-valkey", "REDIS_URL").await.unwrap();
    let host = secret_text(&env, "app-valkey", "host").await.unwrap();
    assert_eq!(url, format!("rediss://app:tls-user-password@{host}:6379"));
    assert_eq!(
        secret_text(&env, "app-valkey", "tls").await.unwrap(),
        "true"
    );
    let ca = secret_text(&env, "app-valkey", "ca.crt").await.unwrap();
    assert_eq!(
        Some(&ca),
        secret_text(&env, &format!("{NAME}-connection"), "ca.crt")
            .await
            .as_ref(),
        "the cluster's CA"
    );
    // redis-cli with the URL and the CA: the user's key, and no other.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca).unwrap();
    let reachable = url.replace(&format!("{host}:6379"), &env.service_addr(NAME).await);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(&ca_file)
            .args(["--no-auth-warning", "-u", &reachable])
            .args(args)
            .output()
            .expect("redis-cli runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    env.eventually(Duration::from_secs(20), "SET app:1 over TLS", || async {
        cli(&["SET", "app:1", "v"]).trim() == "OK"
    })
    .await;
    let refused = cli(&["SET", "other:1", "v"]);
    assert!(refused.contains("NOPERM"), "{refused}");
    env.finish().await;
}
