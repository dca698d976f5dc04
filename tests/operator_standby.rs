//! A standby (`spec.replicateFrom`) on real servers: a Replication in one
//! local Kubernetes follows a Replication in another (two localkube
//! instances, each with its own operator, the standby reaching the
//! source's client Service), through a failover of the source, under a
//! writer on the source; it refuses writes; once promoted, every write
//! the source acknowledged at or before the offset the standby stopped at
//! (and still holds itself) is on it, and it takes writes. The other
//! test: the same operator, a ValkeyCluster source in another namespace,
//! promoted with `kubectl valkey promote`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logbook_journal::{Event, Intent};
use operator_common::*;

/// What the writer saw: each write the source acknowledged (to its
/// primary and one replica at least), with the source's offset just after
/// the acknowledgement (at or past the write's end in its stream).
type Acked = Arc<Mutex<Vec<(u64, u64)>>>;

/// Writes `w:<n>` through `service` until `stop`, recording each
/// acknowledged write with the offset read just after it.
fn start_writer(
    service: String,
    password: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Acked, tokio::task::JoinHandle<u64>) {
    let acked: Acked = Arc::default();
    let log = acked.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        let mut con = None;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if con.is_none() {
                con = try_connect(&service, &password).await;
                if con.is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
            let Some(c) = con.as_mut() else { continue };
            n += 1;
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("w:{n}"))
                .arg(n)
                .query_async(c)
                .await;
            let waited: redis::RedisResult<i64> =
                redis::cmd("WAIT").arg(1).arg(1000).query_async(c).await;
            let info: redis::RedisResult<String> =
                redis::cmd("INFO").arg("replication").query_async(c).await;
            match (set, waited, info) {
                (Ok(()), Ok(w), Ok(info)) if w >= 1 => {
                    if let Some(offset) = field(&info, "master_repl_offset") {
                        log.lock().unwrap().push((n, offset));
                    }
                }
                (Ok(()), Ok(_), Ok(_)) => {}
                _ => con = None,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        n
    });
    (acked, task)
}

async fn try_connect(addr: &str, password: &str) -> Option<redis::aio::MultiplexedConnection> {
    let (host, port) = addr.rsplit_once(':')?;
    let client = logbook_bench::client(host, port.parse().ok()?).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()?;
    let ok: redis::RedisResult<()> = redis::cmd("AUTH").arg(password).query_async(&mut con).await;
    ok.ok().map(|()| con)
}

fn field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// The `StandbyPromoted` of `env`'s cluster `name`: (pod, offset).
async fn promoted(env: &Env, stream: &logbook_journal::StreamId) -> (String, u64, Vec<Intent>) {
    let events = env.journal_events(stream).await;
    let follows: Vec<Intent> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(
                intents
                    .iter()
                    .filter(|p| {
                        matches!(
                            p.intent,
                            Intent::FollowSource { .. }
                                | Intent::PromoteStandby { .. }
                                | Intent::PromoteReplica { .. }
                        )
                    })
                    .map(|p| p.intent.clone()),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    let found = events.iter().find_map(|e| match &e.body {
        Event::StandbyPromoted {
            pod,
            offset,
            source_before,
            source_after,
            error,
        } => {
            eprintln!(
                "StandbyPromoted: {pod} at {offset}, source {source_before:?}..{source_after:?} {error:?}"
            );
            Some((pod.clone(), *offset))
        }
        _ => None,
    });
    let (pod, offset) = found.unwrap_or_else(|| panic!("no StandbyPromoted; decided: {follows:?}"));
    (pod, offset, follows)
}

/// Every write the source acknowledged at or before `offset` and still
/// holds is on `standby`; returns how many that is.
async fn check_through(
    acked: &[(u64, u64)],
    offset: u64,
    source: &str,
    source_password: &str,
    standby: &str,
    standby_password: &str,
) -> usize {
    let before: Vec<u64> = acked
        .iter()
        .filter(|(_, o)| *o <= offset)
        .map(|(n, _)| *n)
        .collect();
    let lost_by_source = logbook_bench::missing_keys(
        source,
        Some(&logbook::valkey::Password::new(source_password)),
        "w",
        &before,
    )
    .await
    .unwrap();
    let kept: Vec<u64> = before
        .iter()
        .copied()
        .filter(|n| !lost_by_source.contains(n))
        .collect();
    let missing = logbook_bench::missing_keys(
        standby,
        Some(&logbook::valkey::Password::new(standby_password)),
        "w",
        &kept,
    )
    .await
    .unwrap();
    eprintln!(
        "{} writes acknowledged at or before offset {offset} ({} of them lost by the source itself); {} missing on the standby",
        before.len(),
        lost_by_source.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} writes acknowledged by the source before the standby's offset {offset} are not on it: {:?}",
        missing.len(),
        kept.len(),
        &missing[..missing.len().min(20)]
    );
    kept.len()
}

/// `key` on `addr` (a read on a replica or a primary).
async fn has_key(addr: &str, password: &str, key: &str) -> bool {
    let Some(mut con) = try_connect(addr, password).await else {
        return false;
    };
    let got: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg(key).query_async(&mut con).await;
    matches!(got, Ok(Some(_)))
}

/// A write through `addr` is refused as READONLY.
async fn refuses_writes(addr: &str, password: &str) {
    let mut con = connect(addr, password).await;
    let wrote: redis::RedisResult<()> = redis::cmd("SET")
        .arg("x")
        .arg(1)
        .query_async(&mut con)
        .await;
    let err = wrote.expect_err("the standby took a write");
    assert!(
        err.to_string().to_lowercase().contains("read only"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_in_another_kubernetes_follows_its_source_through_a_failover_and_is_promoted() {
    let mut source = Env::start("standby-source").await;
    source.apply_yaml(&replication_yaml("shop", 3)).await;
    let vkc = source.wait_ready("shop", 3, Duration::from_secs(60)).await;
    let old_primary = primary(&vkc);
    let source_password = source.password("shop").await;
    let service = source.service_addr("shop").await;
    let internal = source
        .api::<k8s_openapi::api::core::v1::Secret>()
        .get("shop-internal")
        .await
        .unwrap()
        .data
        .unwrap();

    let mut dr = Env::start("standby-dr").await;
    // The source's passwords, copied as a person would across clusters.
    let credentials: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-credentials"},
            "data": {
                "replication": internal["replication"].clone(),
                "metrics": internal["metrics"].clone(),
            },
        }))
        .unwrap();
    dr.api::<k8s_openapi::api::core::v1::Secret>()
        .create(&Default::default(), &credentials)
        .await
        .unwrap();
    let (host, port) = service.rsplit_once(':').unwrap();
    dr.apply_yaml(&standby_yaml(
        "dr",
        2,
        &format!("    endpoint:\n      host: \"{host}\"\n      port: {port}\n      credentialsSecret: shop-credentials\n"),
    ))
    .await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (acked, writer) = start_writer(service.clone(), source_password.clone(), stop.clone());
    let vkc = dr
        .wait_status("dr", Duration::from_secs(90), "following its source", |v| {
            is_ready(v, 2) && standby_phase(v) == "Following"
        })
        .await;
    let dr_password = dr.password("dr").await;
    let dr_service = dr.service_addr("dr").await;
    eprintln!(
        "dr: {:?}",
        vkc.status.as_ref().and_then(|s| s.standby.clone())
    );
    // It has the source's writes, and refuses its own.
    let first = acked.lock().unwrap().last().map(|(n, _)| *n).unwrap();
    dr.eventually(
        Duration::from_secs(20),
        "the standby has the source's writes",
        || {
            let (addr, pw) = (dr_service.clone(), dr_password.clone());
            async move { has_key(&addr, &pw, &format!("w:{first}")).await }
        },
    )
    .await;
    refuses_writes(&dr_service, &dr_password).await;

    // The source fails over; the standby follows its new primary.
    source.delete_pod(&old_primary).await;
    let vkc = source
        .wait_primary_moved("shop", &old_primary, Duration::from_secs(30))
        .await;
    eprintln!("shop: primary now {}", primary(&vkc));
    let moved = Instant::now();
    let at_move = acked.lock().unwrap().last().map_or(0, |(n, _)| *n);
    source
        .eventually(
            Duration::from_secs(30),
            "writes acknowledged after the failover",
            || {
                let last = acked.lock().unwrap().last().map_or(0, |(n, _)| *n);
                async move { last > at_move + 20 }
            },
        )
        .await;
    let after = acked.lock().unwrap().last().map_or(0, |(n, _)| *n);
    dr.eventually(
        Duration::from_secs(60),
        "the standby has a write made after the source's failover",
        || {
            let (addr, pw) = (dr_service.clone(), dr_password.clone());
            async move { has_key(&addr, &pw, &format!("w:{after}")).await }
        },
    )
    .await;
    eprintln!(
        "dr: follows the new primary {:?} after the failover",
        moved.elapsed()
    );

    // Promoted under the writer, while the source fails over once more
    // (its primary's pod deleted just before): the standby takes what it
    // has, and whatever the source does after, never follows it again.
    let stream = dr.stream("dr").await;
    let second = primary(&source.vkc("shop").await);
    source.delete_pod(&second).await;
    dr.patch("dr", serde_json::json!({"spec": {"replicateFrom": null}}))
        .await;
    let vkc = dr
        .wait_status("dr", Duration::from_secs(60), "promoted", |v| {
            standby_phase(v) == "Promoted"
        })
        .await;
    let source_vkc = source
        .wait_primary_moved("shop", &second, Duration::from_secs(30))
        .await;
    eprintln!(
        "shop: failed over again to {} during the promotion",
        primary(&source_vkc)
    );
    // The source back with a new primary and taking writes: for 10 s the
    // promoted standby follows nothing (its primary replicates from no
    // one, its replicas from it alone).
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(10) {
        let dr_vkc = dr.vkc("dr").await;
        let dr_primary = primary(&dr_vkc);
        let primary_addr = dr.pod_addr(&dr_primary).await;
        let (kind, _) = role(&primary_addr, &dr_password).await;
        assert_eq!(
            kind, "master",
            "the promoted standby's {dr_primary} follows again"
        );
        for pod in ["dr-0", "dr-1"].into_iter().filter(|p| *p != dr_primary) {
            let (kind, follows) = role(&dr.pod_addr(pod).await, &dr_password).await;
            let own = primary_addr.rsplit_once(':').map(|(ip, _)| ip);
            assert!(
                kind == "master" || follows.as_deref() == own,
                "{pod} of the promoted standby follows {follows:?}, not {dr_primary}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "dr: {:?}",
        vkc.status.as_ref().and_then(|s| s.standby.clone())
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    dr.stop_operator(Stop::Graceful).await;
    // The audit: this build decides the same at every decision point of
    // the standby's journal, and none made a pod primary before the
    // promotion.
    dr.assert_audit_clean().await;
    let (pod, offset, decided) = promoted(&dr, &stream).await;
    eprintln!("dr decided: {decided:?}");
    assert!(
        !decided
            .iter()
            .any(|i| matches!(i, Intent::PromoteReplica { .. })),
        "a standby pod was made primary before the promotion: {decided:?}"
    );
    // Nothing followed the source after the promotion.
    let after_promotion: Vec<&Intent> = decided
        .iter()
        .skip_while(|i| !matches!(i, Intent::PromoteStandby { .. }))
        .filter(|i| matches!(i, Intent::FollowSource { .. }))
        .collect();
    assert!(
        after_promotion.is_empty(),
        "followed the source after its promotion: {after_promotion:?}"
    );
    let promoted_addr = dr.pod_addr(&pod).await;
    let source_now = source.service_addr("shop").await;
    let acked = acked.lock().unwrap().clone();
    let kept = check_through(
        &acked,
        offset,
        &source_now,
        &source_password,
        &promoted_addr,
        &dr_password,
    )
    .await;
    assert!(kept > 50, "only {kept} writes before the promotion");
    // It takes writes now.
    write_keys(&promoted_addr, &dr_password, "after", 10).await;
    source.stop_operator(Stop::Graceful).await;
    dr.finish().await;
    source.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_of_a_cluster_in_another_namespace_is_promoted_with_the_plugin() {
    let env = Env::start("standby-ns").await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(env.client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "prod"}})).unwrap(),
        )
        .await
        .unwrap();
    let prod: kube::Api<logbook_crds::ValkeyCluster> =
        kube::Api::namespaced(env.client.clone(), "prod");
    prod.create(
        &Default::default(),
        &serde_yaml::from_str(&replication_yaml("shop", 2)).unwrap(),
    )
    .await
    .unwrap();
    // The standby (in the test's namespace) may be made before its
    // source is ready: it waits, said so in its status.
    env.apply_yaml(&standby_yaml(
        "dr",
        2,
        "    cluster:\n      name: shop\n      namespace: prod\n",
    ))
    .await;
    let services: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(env.client.clone(), "prod");
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(env.client.clone(), "prod");
    let mut source = String::new();
    env.eventually(Duration::from_secs(90), "the source's Service", || {
        let services = services.clone();
        async move { services.get_opt("shop").await.ok().flatten().is_some() }
    })
    .await;
    let ip = services
        .get("shop")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap();
    source.push_str(&format!("{ip}:{PORT}"));
    let source_password = String::from_utf8(
        secrets.get("shop-password").await.unwrap().data.unwrap()["password"]
            .0
            .clone(),
    )
    .unwrap();
    env.eventually(Duration::from_secs(60), "the source takes writes", || {
        let (addr, pw) = (source.clone(), source_password.clone());
        async move {
            match try_connect(&addr, &pw).await {
                Some(mut c) => redis::cmd("SET")
                    .arg("seed")
                    .arg(1)
                    .query_async::<()>(&mut c)
                    .await
                    .is_ok(),
                None => false,
            }
        }
    })
    .await;
    write_keys(&source, &source_password, "bulk", 2000).await;
    // Without the source's consent nothing of it is read or copied: the
    // standby says why, and its own namespace holds no password of
    // prod's (a tenant of this namespace cannot name its way into prod).
    let refused = env
        .wait_status(
            "dr",
            Duration::from_secs(60),
            "refused by its source",
            |v| {
                v.status
                    .as_ref()
                    .and_then(|s| s.standby.as_ref())
                    .is_some_and(|s| s.message.contains("spec.standbyNamespaces"))
            },
        )
        .await;
    assert_eq!(standby_phase(&refused), "SourceUnreadable");
    let prod_replication = secrets.get("shop-internal").await.unwrap().data.unwrap()["replication"]
        .0
        .clone();
    assert_no_secret_holds(
        &env.client,
        NS,
        &prod_replication,
        "prod's replication password, copied without its consent,",
    )
    .await;
    assert!(
        !dr_pod_follows(&env, "dr-0").await,
        "dr-0 follows the source without its consent"
    );
    prod.patch(
        "shop",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"standbyNamespaces": [NS]}})),
    )
    .await
    .unwrap();
    let vkc = env
        .wait_status("dr", Duration::from_secs(90), "following its source", |v| {
            is_ready(v, 2) && standby_phase(v) == "Following"
        })
        .await;
    let standby = vkc.status.as_ref().and_then(|s| s.standby.clone()).unwrap();
    assert_eq!(standby.source, "prod/shop");
    assert_eq!(standby.leader.as_deref(), Some("dr-0"));
    let dr_password = env.password("dr").await;
    let dr_service = env.service_addr("dr").await;
    env.eventually(
        Duration::from_secs(30),
        "the standby has the source's keys",
        || {
            let (addr, pw) = (dr_service.clone(), dr_password.clone());
            async move { count_missing_quiet(&addr, &pw).await == 0 }
        },
    )
    .await;
    refuses_writes(&dr_service, &dr_password).await;
    // Idle, a standby costs no status write (its source is read every
    // 2 s; nothing it reads changes): once settled, for its status may
    // still say a replica finished copying.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settled = env.vkc("dr").await;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) {
        assert!(
            Instant::now() < deadline,
            "the standby's ValkeyCluster never stopped being written: {:?}",
            settled.status
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = env.vkc("dr").await;
        if now.metadata.resource_version != settled.metadata.resource_version {
            quiet_since = Instant::now();
        }
        settled = now;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = env.vkc("dr").await;
    assert_eq!(
        after.metadata.resource_version, settled.metadata.resource_version,
        "an idle standby's ValkeyCluster was written: its status was {:?}, is {:?}",
        settled.status, after.status
    );
    let said = kubectl_valkey(&env, &["promote", "dr"]).await;
    assert!(said.contains("set to be promoted"), "{said}");
    env.wait_status("dr", Duration::from_secs(60), "promoted", |v| {
        standby_phase(v) == "Promoted"
    })
    .await;
    write_keys(&dr_service, &dr_password, "after", 100).await;
    assert_eq!(
        count_missing(&dr_service, &dr_password, "bulk", 2000).await,
        0
    );
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    env.assert_audit_clean_of("dr").await;
    env.finish().await;
}

/// Whether `pod` runs, answers, and replicates from anything (its link
/// up): a standby's pod does so only once it follows its source.
async fn dr_pod_follows(env: &Env, pod: &str) -> bool {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = env.api();
    let Some(ip) = pods
        .get_opt(pod)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.status)
        .and_then(|s| s.pod_ip)
    else {
        return false;
    };
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = env.api();
    let Some(password) = secrets
        .get_opt("dr-password")
        .await
        .ok()
        .flatten()
        .and_then(|s| s.data)
        .and_then(|d| d.get("password").map(|b| b.0.clone()))
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let Some(mut c) = try_connect(&format!("{ip}:{PORT}"), &password).await else {
        return false;
    };
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    info.contains("master_link_status:up")
}

/// How many of `bulk:0..2000` `addr` lacks, 2000 when it cannot be read.
async fn count_missing_quiet(addr: &str, password: &str) -> usize {
    let keys: Vec<u64> = (0..2000).collect();
    logbook_bench::missing_keys(
        addr,
        Some(&logbook::valkey::Password::new(password)),
        "bulk",
        &keys,
    )
    .await
    .map_or(2000, |m| m.len())
}
