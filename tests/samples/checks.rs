//! What each group's samples promise in their comments, applied and
//! checked in order (`tests/samples.rs` runs the groups). Each check
//! creates what its sample's comment says it needs (a Secret, a bucket
//! endpoint), applies the samples with the real `kubectl`, and waits for
//! the state the comment names, then for the little that shows the
//! feature works (a user refused outside its keys, a key restored, a
//! write reaching the standby).

use super::{BUCKET, Group, Run, SAMPLE_ENDPOINT, Space};
use crate::operator_common::*;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use logbook_crds::{
    BackupPhase, ClusterPhase, DEFAULTS_NAME, UserPhase, ValkeyBackup, ValkeyBackupStatus,
    ValkeyCluster, ValkeyOperatorDefaults, ValkeyUser,
};

/// The password `config/samples/app-user.yaml` puts in its Secret.
const CHECKOUT_PASSWORD: &str = "change-me-checkout-password";
/// The password the test brings for `config/samples/password.yaml`.
const BROUGHT_PASSWORD: &str = "brought-by-its-owner-7f3a9c";

/// Applies `group`'s samples and checks what they promise.
pub async fn check(run: &Run<'_>, group: Group) {
    let space = Space::at(run, &group.namespace().unwrap_or_default());
    let s = &space;
    match group {
        Group::Replication => replication_user_backup_restore(s).await,
        Group::Standby => standby(run).await,
        Group::Cluster => cluster(s).await,
        Group::Sentinel => sentinel(s).await,
        Group::Plan => plan(s).await,
        Group::StandaloneApp => standalone_app(s).await,
        Group::Tls => tls(s).await,
        Group::TlsSecret => tls_secret(s).await,
        Group::TlsCertManager => tls_cert_manager(s).await,
        Group::BackupSchedule => backup_schedule(s).await,
        Group::Placement => placement(s).await,
        Group::Hibernation => hibernation(s).await,
        Group::Password => password(s).await,
        Group::Quickstart => quickstart(s).await,
        Group::External => {
            external(s).await;
            external_sentinel(s).await;
        }
    }
}

/// replication.yaml: `demo` Ready with 3 pods; user.yaml: `app` on 3/3
/// nodes, `app:*` only; backup.yaml: `demo-now` Completed in the bucket;
/// restore.yaml: `demo-restored` Ready, its restore Completed, holding
/// what `demo` held.
async fn replication_user_backup_restore(s: &Space<'_>) {
    s.apply("replication.yaml").await;
    let demo = s.wait_ready("demo", 3).await;
    let password = s.password("demo").await;
    let primary_addr = s.pod_addr(&primary(&demo)).await;
    let set = cli(
        &primary_addr,
        None,
        &password,
        &["SET", "sample:kept", "yes"],
    )
    .await;
    assert_eq!(set.trim(), "OK", "{set}");

    s.apply("user.yaml").await;
    wait_user(s, "app", "demo", 3).await;
    let pw = SAMPLE_USER_PASSWORD;
    let own = cli(&primary_addr, Some("app"), pw, &["SET", "app:1", "v"]).await;
    assert_eq!(own.trim(), "OK", "{own}");
    let other = cli(&primary_addr, Some("app"), pw, &["SET", "other:1", "v"]).await;
    assert!(other.contains("NOPERM"), "app wrote outside app:*: {other}");

    apply_with_bucket(s, "backup.yaml").await;
    let backup = wait_backup(s, "demo-now", "demo").await;
    assert_eq!(
        backup.location,
        Some(format!("s3://{BUCKET}/logbook/{}/demo/demo-now/", s.ns))
    );

    s.apply("restore.yaml").await;
    let restored = s
        .wait_cluster(
            "demo-restored",
            "Ready with 3 pods, its restore Completed",
            |v| is_ready(v, 3) && restore_phase(v) == "Completed",
        )
        .await;
    let addr = s.pod_addr(&primary(&restored)).await;
    let password = s.password("demo-restored").await;
    let kept = cli(&addr, None, &password, &["GET", "sample:kept"]).await;
    assert_eq!(
        kept.trim(),
        "yes",
        "the restored cluster lacks demo's key: {kept}"
    );
}

/// standby.yaml: `prod/shop` Ready; `dr/shop` Ready and `Following` it
/// (its consent given), holding what the source takes and refusing
/// writes of its own.
async fn standby(run: &Run<'_>) {
    run.apply(None, "standby.yaml").await;
    let (prod, dr) = (Space::at(run, "prod"), Space::at(run, "dr"));
    prod.wait_ready("shop", 2).await;
    let standby = dr
        .wait_cluster("shop", "Ready with 2 pods, Following prod/shop", |v| {
            is_ready(v, 2) && standby_phase(v) == "Following"
        })
        .await;
    let status = standby.status.and_then(|s| s.standby).unwrap();
    assert_eq!(status.source, "prod/shop");

    let source = prod.service_addr("shop").await;
    let source_password = prod.password("shop").await;
    let set = cli(&source, None, &source_password, &["SET", "order:1", "paid"]).await;
    assert_eq!(set.trim(), "OK", "{set}");
    let replica = dr.service_addr("shop").await;
    let password = dr.password("shop").await;
    dr.until("shop", "the source's write on the standby", || {
        let (addr, password) = (replica.clone(), password.clone());
        async move {
            let got = cli(&addr, None, &password, &["GET", "order:1"]).await;
            if got.trim() == "paid" {
                Ok(())
            } else {
                Err(got)
            }
        }
    })
    .await;
    let refused = cli(&replica, None, &password, &["SET", "order:2", "x"]).await;
    assert!(
        refused.contains("READONLY"),
        "the standby took a write: {refused}"
    );
}

/// cluster.yaml: three shards of a primary and a replica, every slot
/// served, Ready.
async fn cluster(s: &Space<'_>) {
    s.apply("cluster.yaml").await;
    s.wait_cluster(
        "demo",
        "3 shards of a primary and a replica, every slot served, Ready",
        cluster_ready,
    )
    .await;
}

/// external-access.yaml: Ready and formed, every pod's external address
/// in `shop-connection`'s `externalNodes`, and `CLUSTER SHARDS` asked at
/// one of them naming exactly those.
async fn external(s: &Space<'_>) {
    s.apply("external-access.yaml").await;
    s.wait_cluster(
        "shop",
        "3 shards of a primary and a replica, every slot served, Ready",
        cluster_ready,
    )
    .await;
    let password = s.password("shop").await;
    s.until("shop", "every node announcing its external address", || {
        let password = password.clone();
        async move {
            let nodes = s
                .secret_text("shop-connection", "externalNodes")
                .await
                .ok_or("no externalNodes in shop-connection")?;
            let mut listed: Vec<String> = nodes.split(',').map(str::to_owned).collect();
            listed.sort();
            if listed.len() != 6 {
                return Err(format!("externalNodes lists {listed:?}"));
            }
            let shards = redis_cli(&listed[0], &password, &["cluster", "shards"]);
            let lines: Vec<&str> = shards.lines().collect();
            let mut named: Vec<String> = lines
                .windows(4)
                .filter(|w| w[0] == "port" && w[2] == "ip")
                .map(|w| format!("{}:{}", w[3], w[1]))
                .collect();
            named.sort();
            if named == listed {
                Ok(())
            } else {
                Err(format!(
                    "CLUSTER SHARDS names {named:?}, externalNodes {listed:?}"
                ))
            }
        }
    })
    .await;
}

/// sentinel.yaml: Ready with 3 pods, the Sentinels' keys in the
/// connection Secret it names.
/// external-access-sentinel.yaml: `orders` Ready, and a Sentinel asked
/// at an address of `externalSentinels` names the primary at an entry of
/// `externalNodes`.
async fn external_sentinel(s: &Space<'_>) {
    s.apply("external-access-sentinel.yaml").await;
    s.wait_ready("orders", 3).await;
    let password = s.password("orders").await;
    s.until(
        "orders",
        "a Sentinel outside naming the primary at its external address",
        || {
            let password = password.clone();
            async move {
                let text = |key: &'static str| async move {
                    s.secret_text("orders-connection", key)
                        .await
                        .ok_or(format!("no {key} in orders-connection"))
                };
                let sentinels = text("externalSentinels").await?;
                let nodes = text("externalNodes").await?;
                let master = text("sentinelMasterName").await?;
                let first = sentinels.split(',').next().unwrap_or_default();
                let named = redis_cli(
                    first,
                    &password,
                    &["sentinel", "get-master-addr-by-name", &master],
                );
                let at = named.lines().collect::<Vec<_>>().join(":");
                if nodes.split(',').any(|n| n == at) {
                    Ok(())
                } else {
                    Err(format!(
                        "the Sentinel at {first} names {at:?}; externalNodes {nodes}"
                    ))
                }
            }
        },
    )
    .await;
}

async fn sentinel(s: &Space<'_>) {
    s.apply("sentinel.yaml").await;
    s.wait_ready("demo", 3).await;
    s.until(
        "demo",
        "the Sentinels in Secret demo-valkey",
        || async move {
            match s.secret_text("demo-valkey", "sentinelMasterName").await {
                Some(_) => Ok(()),
                None => Err("no sentinelMasterName in demo-valkey".to_owned()),
            }
        },
    )
    .await;
}

/// operator-defaults.yaml: Valid, defining its plans; plan.yaml: `cart`
/// Ready with the plan's 2 pods, each field credited to its layer, and
/// the template's label on its pods beside its own.
async fn plan(s: &Space<'_>) {
    s.apply("operator-defaults.yaml").await;
    let api: Api<ValkeyOperatorDefaults> = s.api();
    s.until(
        "cart",
        "the defaults Valid, defining the plan standard",
        || {
            let api = api.clone();
            async move {
                let defaults = api
                    .get_opt(DEFAULTS_NAME)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = defaults.and_then(|d| d.status).unwrap_or_default();
                let valid = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Valid" && c.status == "True");
                match &status.plans {
                    Some(plans) if valid && plans.contains("standard") => Ok(()),
                    _ => Err(format!("{status:?}")),
                }
            }
        },
    )
    .await;

    s.apply("plan.yaml").await;
    let cart = s.wait_ready("cart", 2).await;
    let defaults = cart.status.and_then(|s| s.defaults).unwrap();
    assert_eq!(defaults.plan.as_deref(), Some("standard"), "{defaults:?}");
    let from = |field: &str| {
        defaults
            .fields
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.from.clone())
    };
    let plan = Some("plan standard".to_owned());
    assert_eq!(from("/replicas"), plan, "{defaults:?}");
    assert_eq!(from("/storage/size"), plan, "{defaults:?}");
    let namespace = Some(format!("namespace defaults {}/{DEFAULTS_NAME}", s.ns));
    assert_eq!(from("/labels/team"), namespace, "{defaults:?}");
    assert_eq!(from("/labels/tier"), None, "its own field: {defaults:?}");
    for pod in s.pods("valkey.logbook.dev/cluster=cart").await {
        let labels = pod.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("shop"),
            "{labels:?}"
        );
        assert_eq!(
            labels.get("tier").map(String::as_str),
            Some("silver"),
            "{labels:?}"
        );
    }
}

/// standalone.yaml: `demo` Ready; app-user.yaml: `checkout` on 1/1
/// nodes, and its Deployment's pod, finding `demo` through the connection
/// Secret's host name, writing and reading its key as `checkout`, which
/// may do nothing else.
async fn standalone_app(s: &Space<'_>) {
    s.apply("standalone.yaml").await;
    s.wait_ready("demo", 1).await;
    s.apply("app-user.yaml").await;
    wait_user(s, "checkout", "demo", 1).await;
    let pod = s
        .until(
            "demo",
            "the checkout pod writing and reading its key twice",
            || async move {
                let pods = s.pods("app=checkout").await;
                let Some(pod) = pods.first().map(kube::ResourceExt::name_any) else {
                    return Err("no pod of Deployment checkout".to_owned());
                };
                let out = s.run.kubectl(Some(&s.ns), &["logs", &pod], None).await;
                let logs = String::from_utf8_lossy(&out.stdout).into_owned();
                let rounds = logs
                    .lines()
                    .filter(|l| l.ends_with(&format!(": wrote and read cart:{pod}")))
                    .count();
                if rounds >= 2 {
                    Ok(pod)
                } else {
                    let status = pods.first().and_then(|p| p.status.clone());
                    Err(format!(
                        "logs: {logs:?} {}; status {status:?}",
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            },
        )
        .await;
    let addr = s.pod_addr("demo-0").await;
    let pw = CHECKOUT_PASSWORD;
    let key = format!("cart:{pod}");
    let got = cli(&addr, Some("checkout"), pw, &["GET", &key]).await;
    assert!(got.trim().parse::<u64>().is_ok(), "{key}: {got}");
    for refused in [
        &["GET", "session:1"][..],
        &["HGETALL", &key],
        &["FLUSHALL"],
        &["CONFIG", "GET", "maxmemory"],
        &["KEYS", "*"],
    ] {
        let got = cli(&addr, Some("checkout"), pw, refused).await;
        assert!(got.contains("NOPERM"), "checkout ran {refused:?}: {got}");
    }
}

/// quickstart.yaml and quickstart-app.yaml, as the README runs them:
/// `quickstart` Ready with 3 pods, `quickstart-app` on 3/3 nodes with its
/// connection Secret, and the application pod done, having written and
/// read back `app:greeting` through `REDIS_URL` and been refused a key
/// outside `app:`.
async fn quickstart(s: &Space<'_>) {
    s.apply("quickstart.yaml").await;
    s.wait_ready("quickstart", 3).await;
    wait_user(s, "quickstart-app", "quickstart", 3).await;
    s.apply("quickstart-app.yaml").await;
    let logs = s
        .until(
            "quickstart",
            "the quickstart-app pod to finish",
            || async move {
                let out = s
                    .run
                    .kubectl(
                        Some(&s.ns),
                        &[
                            "get",
                            "pod",
                            "quickstart-app",
                            "-o",
                            "jsonpath={.status.phase}",
                        ],
                        None,
                    )
                    .await;
                let phase = String::from_utf8_lossy(&out.stdout).into_owned();
                let logs = s
                    .run
                    .kubectl(Some(&s.ns), &["logs", "quickstart-app"], None)
                    .await;
                let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
                match phase.as_str() {
                    "Succeeded" => Ok(logs),
                    _ => Err(format!("phase {phase:?}, logs {logs:?}")),
                }
            },
        )
        .await;
    assert!(
        logs.contains("as quickstart-app")
            && logs.contains("wrote app:greeting: hello from quickstart-app"),
        "{logs}"
    );
    assert!(logs.contains("app:visits is now 1"), "{logs}");
    assert!(
        logs.contains("NOPERM"),
        "the app wrote outside app:*: {logs}"
    );
}

/// tls.yaml: Ready with 3 pods, `rediss://` in the connection Secret.
async fn tls(s: &Space<'_>) {
    s.apply("tls.yaml").await;
    s.wait_ready("demo", 3).await;
    s.until("demo", "rediss:// in demo-connection", || async move {
        match s.secret_text("demo-connection", "REDIS_URL").await {
            Some(url) if url.starts_with("rediss://") => Ok(()),
            other => Err(format!("REDIS_URL {:?}", other.map(|u| u.len()))),
        }
    })
    .await;
}

/// tls-secret.yaml (in `default`, the namespace its certificate names):
/// Ready with its pod, serving the sample's certificate.
async fn tls_secret(s: &Space<'_>) {
    s.apply("tls-secret.yaml").await;
    let demo = s.wait_ready("demo", 1).await;
    let tls = demo.status.and_then(|s| s.tls).unwrap();
    assert_eq!(tls.secret, "demo-certs", "{tls:?}");
    assert_eq!(tls.problem, None, "{tls:?}");
}

/// tls-cert-manager.yaml without cert-manager: kubectl refuses the
/// Issuers and the Certificate (unknown kinds) and makes the cluster,
/// whose status (CertificateReady False) and a Warning Event say
/// cert-manager's Certificate kind is unknown.
async fn tls_cert_manager(s: &Space<'_>) {
    let out = s
        .run
        .apply_edited(Some(&s.ns), "tls-cert-manager.yaml", |text| text)
        .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let other_errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !l.contains("cert-manager.io/v1") && !l.contains("ensure CRDs are installed first")
        })
        .collect();
    assert!(
        other_errors.is_empty(),
        "kubectl refused more than cert-manager's kinds: {stderr}"
    );
    assert!(
        stdout.contains("valkeycluster.valkey.logbook.dev/demo created"),
        "{stdout}{stderr}"
    );
    s.wait_cluster("demo", "CertificateReady False, naming cert-manager", |v| {
        certificate_condition(v)
            .is_some_and(|(ok, message)| !ok && message.contains("cert-manager"))
    })
    .await;
    s.until(
        "demo",
        "a Warning Event naming cert-manager's Certificate",
        || async move {
            let warnings = s.warnings().await;
            if warnings
                .iter()
                .any(|n| n.contains("cert-manager") && n.contains("Certificate"))
            {
                Ok(())
            } else {
                Err(format!("{warnings:?}"))
            }
        },
    )
    .await;
}

/// backup-schedule.yaml: `orders` Ready, its next backup at the coming
/// 03:00 UTC; a ValkeyBackup naming only the cluster goes to its bucket.
async fn backup_schedule(s: &Space<'_>) {
    apply_with_bucket(s, "backup-schedule.yaml").await;
    let orders = s
        .wait_cluster(
            "orders",
            "Ready with 2 pods and its next backup scheduled",
            |v| is_ready(v, 2) && next_scheduled(v).is_some(),
        )
        .await;
    let next = next_scheduled(&orders).unwrap();
    let when = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    let ahead = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        next.ends_with("T03:00:00Z")
            && ahead > chrono::TimeDelta::zero()
            && ahead <= chrono::TimeDelta::days(1),
        "the next backup is not the coming 03:00 UTC: {next}"
    );
    let now = r#"{"apiVersion": "valkey.logbook.dev/v1alpha1", "kind": "ValkeyBackup",
 "metadata": {"name": "orders-now"}, "spec": {"cluster": "orders"}}"#;
    let out = s
        .run
        .kubectl(Some(&s.ns), &["create", "-f", "-"], Some(now.to_owned()))
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = wait_backup(s, "orders-now", "orders").await;
    assert_eq!(
        backup.location,
        Some(format!("s3://{BUCKET}/logbook/{}/orders/orders-now/", s.ns))
    );
}

/// placement.yaml: Ready with 2 pods, `sessions-0` primary.
async fn placement(s: &Space<'_>) {
    s.apply("placement.yaml").await;
    let sessions = s.wait_ready("sessions", 2).await;
    assert_eq!(primary(&sessions), "sessions-0");
}

/// hibernation.yaml: created asleep (Hibernated, no pod); woken as its
/// comment says, Ready with 2 pods; put back to sleep, Hibernated.
async fn hibernation(s: &Space<'_>) {
    s.apply("hibernation.yaml").await;
    wait_asleep(s, "dev", "created asleep").await;
    kubectl_valkey(s.run.env, &["wake", "dev", "-n", &s.ns]).await;
    s.wait_ready("dev", 2).await;
    kubectl_valkey(s.run.env, &["hibernate", "dev", "-n", &s.ns]).await;
    wait_asleep(s, "dev", "put back to sleep").await;
}

/// password.yaml, its Secret made after it (the cluster waits for it):
/// Ready with 2 pods, taking the password brought, which the connection
/// Secret carries; no password generated.
async fn password(s: &Space<'_>) {
    s.apply("password.yaml").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let literal = format!("--from-literal=password={BROUGHT_PASSWORD}");
    s.run
        .kubectl_ok(
            Some(&s.ns),
            &["create", "secret", "generic", "cache-auth", &literal],
        )
        .await;
    s.wait_ready("cache", 2).await;
    let addr = s.service_addr("cache").await;
    let pong = cli(&addr, None, BROUGHT_PASSWORD, &["PING"]).await;
    assert_eq!(pong.trim(), "PONG", "{pong}");
    s.until(
        "cache",
        "the password brought in cache-connection",
        || async move {
            match s.secret_text("cache-connection", "password").await {
                Some(pw) if pw == BROUGHT_PASSWORD => Ok(()),
                Some(_) => Err("another password".to_owned()),
                None => Err("no password".to_owned()),
            }
        },
    )
    .await;
    let generated = s.api::<Secret>().get_opt("cache-password").await.unwrap();
    assert!(
        generated.is_none(),
        "a password was generated beside the one brought"
    );
}

/// `redis-cli` as `user` (`None`: `default`), off the runtime's threads.
async fn cli(addr: &str, user: Option<&str>, password: &str, args: &[&str]) -> String {
    let (addr, user, password) = (
        addr.to_owned(),
        user.map(str::to_owned),
        password.to_owned(),
    );
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redis_cli_as(&addr, user.as_deref(), &password, &args)
    })
    .await
    .unwrap()
}

/// Waits for ValkeyUser `name` Ready on every one of `nodes` nodes.
async fn wait_user(s: &Space<'_>, name: &str, cluster: &str, nodes: usize) {
    let api: Api<ValkeyUser> = s.api();
    let want = format!("{nodes}/{nodes}");
    s.until(
        cluster,
        &format!("ValkeyUser {name} Ready on {want} nodes"),
        || {
            let (api, want) = (api.clone(), want.clone());
            async move {
                let status = api
                    .get_opt(name)
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|u| u.status);
                match &status {
                    Some(st)
                        if st.phase == Some(UserPhase::Ready)
                            && st.nodes.as_deref() == Some(&want) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
}

/// Waits for ValkeyBackup `name` Completed; panics at once when it failed.
async fn wait_backup(s: &Space<'_>, name: &str, cluster: &str) -> ValkeyBackupStatus {
    let api: Api<ValkeyBackup> = s.api();
    s.until(cluster, &format!("ValkeyBackup {name} Completed"), || {
        let api = api.clone();
        async move {
            let status = api
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .and_then(|b| b.status);
            match status {
                Some(st) if st.phase == Some(BackupPhase::Completed) => Ok(st),
                Some(st) if st.phase == Some(BackupPhase::Failed) => {
                    panic!("ValkeyBackup {name} failed: {st:?}")
                }
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

/// Waits for `name` Hibernated on its current generation, with no pod left.
async fn wait_asleep(s: &Space<'_>, name: &str, how: &str) {
    s.wait_cluster(name, &format!("phase Hibernated ({how})"), |v| {
        v.status.as_ref().is_some_and(|st| {
            st.phase == Some(ClusterPhase::Hibernated)
                && st.observed_generation == v.metadata.generation
        })
    })
    .await;
    let selector = format!("valkey.logbook.dev/cluster={name}");
    let selector = selector.as_str();
    s.until(name, "no pod running asleep", || async move {
        let pods = s.pods(selector).await;
        if pods.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                pods.iter()
                    .map(kube::ResourceExt::name_any)
                    .collect::<Vec<_>>()
            ))
        }
    })
    .await;
}

/// `status.restore.phase`, empty when there is none.
fn restore_phase(vkc: &ValkeyCluster) -> String {
    vkc.status
        .as_ref()
        .and_then(|s| s.restore.as_ref())
        .map(|r| r.phase.clone())
        .unwrap_or_default()
}

/// `status.backup.nextScheduledAt` as written (RFC 3339).
fn next_scheduled(vkc: &ValkeyCluster) -> Option<String> {
    let at = vkc
        .status
        .as_ref()?
        .backup
        .as_ref()?
        .next_scheduled_at
        .as_ref()?;
    serde_json::to_value(at).ok()?.as_str().map(str::to_owned)
}

/// Applies sample `name`, its bucket's endpoint made the test's S3 server.
async fn apply_with_bucket(s: &Space<'_>, name: &str) {
    let out = s
        .run
        .apply_edited(Some(&s.ns), name, |text| {
            text.replace(SAMPLE_ENDPOINT, &s.run.s3_endpoint)
        })
        .await;
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
