//! The process kubelet on real processes: valkey-server pods on their own
//! addresses, the replica-address guarantee of the network shim, volumes,
//! image mapping, restarts and backoff, probes, preStop and grace, logs,
//! and every fault. Each test checks no process is left behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod kubelet_common;

use std::time::{Duration, Instant};

use kubelet_common::{Harness, PATIENCE, pod, pod_ip, ready, start, valkey, valkey_pod};
use serde_json::{Value, json};

const SHORT: Duration = Duration::from_secs(2);

fn container_status(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]
}

fn restarts(p: &Value) -> u64 {
    container_status(p)["restartCount"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_pod_serves_on_its_address_and_every_fault_bites() {
    let h = start().await;
    let node = h.store.get("v1", "nodes", None, "localkube-node").unwrap();
    assert_eq!(node["status"]["conditions"][0]["status"], "True");
    h.create_pod(valkey_pod("v0"));
    let p = h.wait_pod("v0", 10, "Ready", ready).await;
    assert_eq!(p["spec"]["nodeName"], "localkube-node");
    assert_eq!(p["status"]["phase"], "Running");
    // The node's own address, not the 127.0.0.1 every instance shares.
    assert_ne!(p["status"]["hostIP"], "127.0.0.1");
    assert_eq!(
        p["status"]["hostIP"],
        node["status"]["addresses"][0]["address"]
    );
    let ip = pod_ip(&p);
    assert_eq!(valkey(ip, "PING", SHORT).await.as_deref(), Some("+PONG"));

    // Logs through the PodLogs handle.
    let logs = h.kubelet().logs();
    let text = logs.logs("default", "v0", None, None).unwrap();
    assert!(text.contains("Ready to accept connections"), "{text}");
    let tail = logs.logs("default", "v0", None, Some(1)).unwrap();
    assert_eq!(tail.lines().count(), 1);

    let f = h.kubelet().faults();
    // freeze: PING times out; thaw: it answers.
    f.freeze("default", "v0").await.unwrap();
    assert_eq!(valkey(ip, "PING", Duration::from_millis(500)).await, None);
    f.thaw("default", "v0").await.unwrap();
    assert_eq!(valkey(ip, "PING", SHORT).await.as_deref(), Some("+PONG"));

    // partition: a connect times out (not refused); heal: it answers.
    f.partition("default", "v0").await.unwrap();
    let c = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect((ip, 6379)),
    )
    .await;
    assert!(c.is_err(), "connect must time out under a partition: {c:?}");
    f.heal("default", "v0").await.unwrap();
    assert_eq!(valkey(ip, "PING", SHORT).await.as_deref(), Some("+PONG"));

    // kill: noticed fast, restarted at once (the first restart has no
    // backoff), on the same address.
    let killed = Instant::now();
    f.kill("default", "v0", Some("valkey")).await.unwrap();
    let p = h
        .wait_pod("v0", 5, "restart counted", |p| restarts(p) == 1)
        .await;
    let noticed = killed.elapsed();
    assert_eq!(
        container_status(&p)["lastState"]["terminated"]["exitCode"],
        137
    );
    h.wait_pod("v0", 10, "Ready again", ready).await;
    assert_eq!(valkey(ip, "PING", SHORT).await.as_deref(), Some("+PONG"));
    println!("kill noticed and reported in {noticed:?}");
    assert!(noticed < Duration::from_millis(500), "{noticed:?}");

    let e = f.freeze("default", "nope").await.unwrap_err();
    assert!(e.to_string().contains("default/nope"), "{e}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_seen_by_its_primary_at_its_pod_ip() {
    let h = start().await;
    h.create_pod(valkey_pod("primary"));
    h.create_pod(valkey_pod("replica"));
    let primary = pod_ip(&h.wait_pod("primary", 10, "Ready", ready).await);
    let replica = pod_ip(&h.wait_pod("replica", 10, "Ready", ready).await);
    assert_ne!(primary, replica);
    let ok = valkey(replica, &format!("REPLICAOF {primary} 6379"), SHORT).await;
    assert_eq!(ok.as_deref(), Some("+OK"));
    let want = format!("slave0:ip={replica},");
    let deadline = Instant::now() + Duration::from_secs(10 * PATIENCE);
    loop {
        let info = valkey(primary, "INFO replication", SHORT)
            .await
            .unwrap_or_default();
        if info.contains(&want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "primary never listed {want}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_volumes_are_materialized_and_refreshed_after_init_containers() {
    let h = start().await;
    h.create("configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"greeting": "hello", "other": "x"}}));
    h.create("secrets", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"pw": "s3cret"}}));
    let mut p = pod(
        "cm",
        json!([{
            "name": "main", "image": "busybox:1",
            "command": ["sh", "-c", "cat /work/init; echo \"pw=$PW ip=$MY_IP name=$MY_NAME\"; while :; do cat /etc/cfg/hi; echo; sleep 0.1; done"],
            "env": [
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true},
                {"name": "work", "mountPath": "/work"},
            ],
        }]),
    );
    p["spec"]["initContainers"] = json!([{
        "name": "init", "image": "busybox:1", "command": ["sh", "-c", "echo from-init > /work/init"],
        "volumeMounts": [{"name": "work", "mountPath": "/work"}],
    }]);
    p["spec"]["volumes"] = json!([
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "hi", "mode": 0o600}]}},
        {"name": "work", "emptyDir": {}},
    ]);
    h.create_pod(p);
    let p = h
        .wait_pod("cm", 10, "Running", |p| p["status"]["phase"] == "Running")
        .await;
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    let ip = pod_ip(&p).to_string();
    let logs = h.kubelet().logs();
    let deadline = Instant::now() + Duration::from_secs(5 * PATIENCE);
    loop {
        let text = logs
            .logs("default", "cm", Some("main"), None)
            .unwrap_or_default();
        if text.contains("hello") {
            assert!(text.contains("from-init"), "{text}");
            assert!(
                text.contains(&format!("pw=s3cret ip={ip} name=cm")),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let file = h.state.join("pods").join(uid).join("volumes/cfg/hi");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !h.state
            .join("pods")
            .join(uid)
            .join("volumes/cfg/other")
            .exists()
    );

    let mut cm = h
        .store
        .get("v1", "configmaps", Some("default"), "cfg")
        .unwrap();
    cm["data"]["greeting"] = json!("changed");
    h.store
        .update(
            "v1",
            "configmaps",
            Some("default"),
            cm,
            false,
            &logbook_localkube::WriteCtx::internal("test"),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5 * PATIENCE);
    loop {
        let text = logs
            .logs("default", "cm", Some("main"), Some(2))
            .unwrap_or_default();
        if text.contains("changed") {
            break;
        }
        assert!(Instant::now() < deadline, "refresh not seen: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_data_survives_its_pod_and_can_be_wiped() {
    let h = start().await;
    let writer = |name: &str| {
        let mut p = pod(
            name,
            json!([{"name": "w", "image": "busybox:1", "command": ["sh", "-c", "echo line >> /data/f; exec sleep 1000"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]),
        );
        p["spec"]["volumes"] =
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}]);
        p["spec"]["terminationGracePeriodSeconds"] = json!(1);
        p
    };
    // Without its claim the pod waits, saying why.
    h.create_pod(writer("w0"));
    h.wait_pod("w0", 5, "Pending on the claim", |p| {
        p["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("data-0"))
    })
    .await;
    h.create(
        "persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-0"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    h.wait_pod("w0", 10, "Ready", ready).await;
    let f = h.state.join("pvc/default/data-0/f");
    let deadline = Instant::now() + Duration::from_secs(5 * PATIENCE);
    while std::fs::read_to_string(&f).unwrap_or_default() != "line\n" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.delete_pod("w0");
    h.wait_gone("w0", 10).await;
    h.create_pod(writer("w0"));
    h.wait_pod("w0", 10, "Ready", ready).await;
    let deadline = Instant::now() + Duration::from_secs(5 * PATIENCE);
    while std::fs::read_to_string(&f).unwrap_or_default() != "line\nline\n" {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            std::fs::read_to_string(&f)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.kubelet()
        .faults()
        .wipe_pvc_data("default", "data-0")
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_dir(h.state.join("pvc/default/data-0"))
            .unwrap()
            .count(),
        0
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmappable_image_stays_pending_with_err_image_pull() {
    let h = start().await;
    h.create_pod(pod(
        "nginx",
        json!([{"name": "web", "image": "nginx:1.27"}]),
    ));
    let p = h
        .wait_pod("nginx", 5, "ErrImagePull", |p| {
            container_status(p)["state"]["waiting"]["reason"] == "ErrImagePull"
        })
        .await;
    assert_eq!(p["status"]["phase"], "Pending");
    let msg = container_status(&p)["state"]["waiting"]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("nginx:1.27"), "{msg}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_backs_off_and_a_failed_liveness_probe_restarts() {
    let h = start().await;
    h.create_pod(pod(
        "crash",
        json!([{"name": "c", "image": "busybox:1", "command": ["sh", "-c", "exit 3"]}]),
    ));
    h.create_pod(pod(
        "sick",
        json!([{"name": "c", "image": "busybox:1", "command": ["sleep", "1000"],
                "livenessProbe": {"exec": {"command": ["cat", "/nonexistent"]}, "periodSeconds": 1, "failureThreshold": 2}}]),
    ));
    let p = h
        .wait_pod("crash", 5, "first restart", |p| restarts(p) >= 1)
        .await;
    let first = Instant::now();
    assert_eq!(
        container_status(&p)["lastState"]["terminated"]["exitCode"],
        3
    );
    let p = h
        .wait_pod("crash", 5, "CrashLoopBackOff", |p| {
            restarts(p) == 1
                && container_status(p)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .await;
    assert_eq!(p["status"]["phase"], "Running");
    h.wait_pod("crash", 15, "second restart", |p| restarts(p) >= 2)
        .await;
    let waited = first.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "backoff too short: {waited:?}"
    );

    let p = h
        .wait_pod("sick", 10, "liveness restart", |p| restarts(p) >= 1)
        .await;
    assert_eq!(
        container_status(&p)["lastState"]["terminated"]["exitCode"],
        143
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_runs_pre_stop_then_sigterm_within_the_grace_period() {
    let h = start().await;
    let out = tempfile::tempdir().unwrap();
    let mut p = pod(
        "graceful",
        json!([{"name": "c", "image": "busybox:1",
                "command": ["sh", "-c", "trap 'echo term > /out/term; exit 0' TERM; : > /out/trapped; while :; do sleep 0.1; done"],
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo hook > /out/hook"]}}},
                "volumeMounts": [{"name": "out", "mountPath": "/out"}]}]),
    );
    p["spec"]["volumes"] =
        json!([{"name": "out", "hostPath": {"path": out.path().to_str().unwrap()}}]);
    h.create_pod(p);
    let mut stubborn = pod(
        "stubborn",
        json!([{"name": "c", "image": "busybox:1", "command": ["sh", "-c", "trap '' TERM; : > /out/stubborn-trapped; while :; do sleep 0.1; done"],
                "volumeMounts": [{"name": "out", "mountPath": "/out"}]}]),
    );
    stubborn["spec"]["volumes"] =
        json!([{"name": "out", "hostPath": {"path": out.path().to_str().unwrap()}}]);
    stubborn["spec"]["terminationGracePeriodSeconds"] = json!(2);
    h.create_pod(stubborn);
    h.wait_pod("graceful", 10, "Ready", ready).await;
    h.wait_pod("stubborn", 10, "Ready", ready).await;
    // Ready means started, not that the shell has installed its TERM trap
    // yet (on a loaded machine it may not have): wait for each to say so,
    // or a SIGTERM would find the default action.
    let started = Instant::now();
    while !(out.path().join("trapped").exists() && out.path().join("stubborn-trapped").exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(10 * PATIENCE),
            "the containers never set their traps"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.delete_pod("graceful");
    let t = Instant::now();
    h.delete_pod("stubborn");
    h.wait_gone("graceful", 10).await;
    assert_eq!(
        std::fs::read_to_string(out.path().join("hook")).unwrap(),
        "hook\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("term")).unwrap(),
        "term\n"
    );
    h.wait_gone("stubborn", 10).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4 * PATIENCE),
        "{took:?}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_valkey_pods_become_ready_quickly() {
    let h: Harness = start().await;
    let t = Instant::now();
    for i in 0..12 {
        h.create_pod(valkey_pod(&format!("v{i}")));
    }
    for i in 0..12 {
        h.wait_pod(&format!("v{i}"), 20, "Ready", ready).await;
    }
    let took = t.elapsed();
    println!("12 valkey pods Ready in {took:?}");
    for i in 0..12 {
        let ip = pod_ip(&h.get_pod(&format!("v{i}")).unwrap());
        assert_eq!(valkey(ip, "PING", SHORT).await.as_deref(), Some("+PONG"));
    }
    // How quickly is a benchmark's business (docs/benchmarks.md); this
    // bounds only a hang.
    assert!(took < Duration::from_secs(5 * PATIENCE), "{took:?}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_and_sentinel_containers_pass_exec_probes_through_localhost() {
    let h = start().await;
    let mut p = pod(
        "vs",
        json!([
            {"name": "valkey", "image": "valkey/valkey:9.1", "args": ["--save", ""],
             "readinessProbe": {"exec": {"command": ["valkey-cli", "ping"]}, "periodSeconds": 1}},
            {"name": "sentinel", "image": "valkey/valkey:9.1", "command": ["valkey-sentinel", "/conf/sentinel.conf"],
             "volumeMounts": [{"name": "conf", "mountPath": "/conf"}],
             "readinessProbe": {"exec": {"command": ["sh", "-c", "valkey-cli -p 26379 sentinel masters | grep -q mymaster"]}, "periodSeconds": 1}},
        ]),
    );
    p["spec"]["initContainers"] = json!([{
        "name": "conf", "image": "busybox:1",
        "command": ["sh", "-c", "printf 'port 26379\\nsentinel monitor mymaster 127.0.0.1 6379 1\\n' > /conf/sentinel.conf"],
        "volumeMounts": [{"name": "conf", "mountPath": "/conf"}],
    }]);
    p["spec"]["volumes"] = json!([{"name": "conf", "emptyDir": {}}]);
    h.create_pod(p);
    let p = h.wait_pod("vs", 10, "Ready", ready).await;
    let ip = pod_ip(&p);
    assert_eq!(valkey(ip, "PING", SHORT).await.as_deref(), Some("+PONG"));
    h.finish().await;
}
