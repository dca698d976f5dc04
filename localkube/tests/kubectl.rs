//! The behaviours kubectl relies on, checked with a real `kubectl` (v1.35,
//! installed by `make setup` under `.tools/bin`) against localkube over HTTP.
//!
//! Each test starts its own server on a fresh port and writes a kubeconfig
//! for it; kubectl runs as a child process with `KUBECONFIG` pointing there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod kubectl_common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use kubectl_common::{Cluster, repo_file, wait_bounded};

const CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: demo
data:
  a: "1"
  b: "2"
"#;

const DEPLOYMENT_LIKE_STS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: valkey/valkey:9.1
        env:
        - {name: A, value: "1"}
        ports:
        - {containerPort: 6379, name: valkey}
      - name: sidecar
        image: busybox
"#;

#[test]
fn api_resources_and_version_work() {
    let c = Cluster::start();
    let version = c.ok(&["version", "-o", "json"]);
    assert!(version.contains("\"serverVersion\""), "{version}");
    let resources = c.ok(&["api-resources"]);
    for needle in [
        "pods",
        "statefulsets",
        "poddisruptionbudgets",
        "leases",
        "customresourcedefinitions",
        "networkpolicies",
        "cronjobs",
        "clusterrolebindings",
    ] {
        assert!(
            resources.contains(needle),
            "api-resources lacks {needle}:\n{resources}"
        );
    }
    let namespaced = c.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(
        namespaced.lines().any(|l| l == "namespaces"),
        "{namespaced}"
    );
    assert!(!namespaced.lines().any(|l| l == "pods"), "{namespaced}");
    let ns = c.ok(&["get", "namespaces", "-o", "name"]);
    for expected in ["namespace/default", "namespace/kube-system"] {
        assert!(ns.contains(expected), "{ns}");
    }
}

#[test]
fn client_side_apply_get_label_patch_delete() {
    let c = Cluster::start();
    let out = c.ok_stdin(&["apply", "-f", "-"], CONFIGMAP);
    assert!(out.contains("configmap/settings created"), "{out}");
    // Re-applying an unchanged file is a no-op, as on a real cluster.
    let out = c.ok_stdin(&["apply", "-f", "-"], CONFIGMAP);
    assert!(out.contains("configmap/settings unchanged"), "{out}");
    // A changed file is applied as a strategic merge patch.
    let changed = CONFIGMAP.replace("b: \"2\"", "b: \"3\"");
    let out = c.ok_stdin(&["apply", "-f", "-"], &changed);
    assert!(out.contains("configmap/settings configured"), "{out}");
    let yaml = c.ok(&["get", "configmap", "settings", "-o", "yaml"]);
    assert!(yaml.contains("b: \"3\""), "{yaml}");
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{yaml}"
    );
    assert!(yaml.contains("resourceVersion:"), "{yaml}");

    c.ok(&["label", "configmap", "settings", "tier=gold"]);
    let names = c.ok(&["get", "configmap", "-l", "tier=gold", "-o", "name"]);
    assert_eq!(names.trim(), "configmap/settings");
    let none = c.ok(&["get", "configmap", "-l", "tier=silver", "-o", "name"]);
    assert_eq!(none.trim(), "");
    // Overwriting a label needs --overwrite, as on a real cluster.
    let err = c.fails(&["label", "configmap", "settings", "tier=silver"]);
    assert!(err.contains("already has a value"), "{err}");

    c.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"c":"merge"}}"#,
    ]);
    c.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/a","value":"json"}]"#,
    ]);
    c.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=strategic",
        "-p",
        r#"{"data":{"d":"smp"}}"#,
    ]);
    let data = c.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data}"]);
    for kv in [r#""a":"json""#, r#""c":"merge""#, r#""d":"smp""#] {
        assert!(data.contains(kv), "{kv} missing in {data}");
    }
    // A failing JSON patch test is refused and changes nothing.
    let err = c.fails(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"nope"}]"#,
    ]);
    assert!(!err.is_empty());

    let out = c.ok(&["delete", "configmap", "settings"]);
    assert!(out.contains("deleted"), "{out}");
    let err = c.fails(&["get", "configmap", "settings"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn strategic_merge_on_a_statefulset_merges_containers_by_name() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT_LIKE_STS);
    c.ok(&[
        "patch", "statefulset", "web", "--type=strategic", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"valkey/valkey:9.2"}]}}}}"#,
    ]);
    let images = c.ok(&[
        "get",
        "sts",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]);
    assert_eq!(
        images.trim(),
        "valkey/valkey:9.2 busybox",
        "both containers kept, app updated"
    );
    let env = c.ok(&[
        "get",
        "sts",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[0].value}",
    ]);
    assert_eq!(env.trim(), "1", "fields not in the patch are kept");
    // Scale through the scale subresource.
    c.ok(&["scale", "statefulset", "web", "--replicas=4"]);
    let replicas = c.ok(&["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas.trim(), "4");
}

#[test]
fn server_side_apply_records_ownership_and_reports_conflicts() {
    let c = Cluster::start();
    let out = c.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-a",
            "-f",
            "-",
        ],
        CONFIGMAP,
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let yaml = c.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(yaml.contains("manager: team-a"), "{yaml}");
    assert!(yaml.contains("operation: Apply"), "{yaml}");
    // Another manager changing a field team-a owns conflicts ...
    let other = CONFIGMAP.replace("a: \"1\"", "a: \"changed\"");
    let err = {
        let out = c.run_with_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=team-b",
                "-f",
                "-",
            ],
            Some(&other),
        );
        assert!(!out.status.success(), "conflicting apply must fail");
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(err.contains("conflict") && err.contains("team-a"), "{err}");
    assert!(err.contains(".data.a"), "{err}");
    // ... unless forced, which moves ownership.
    c.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-b",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &other,
    );
    let a = c.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.a}"]);
    assert_eq!(a.trim(), "changed");
}

#[test]
fn get_watch_streams_changes() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], CONFIGMAP);
    let mut child = c
        .command(&[
            "get",
            "configmap",
            "settings",
            "--watch",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,A:.object.data.a",
            "--no-headers",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("initial ADDED");
    assert!(first.contains("ADDED") && first.contains('1'), "{first}");
    c.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    let second = rx.recv_timeout(Duration::from_secs(20)).expect("MODIFIED");
    assert!(
        second.contains("MODIFIED") && second.contains('2'),
        "{second}"
    );
    c.ok(&["delete", "configmap", "settings"]);
    let third = rx.recv_timeout(Duration::from_secs(20)).expect("DELETED");
    assert!(third.contains("DELETED"), "{third}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn describe_shows_the_object_and_its_events() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], CONFIGMAP);
    // An event as a recorder writes it: naming the object by uid too, which
    // `kubectl describe` selects on.
    let uid = c.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let event = r#"
apiVersion: v1
kind: Event
metadata:
  name: settings.1
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: settings
  namespace: default
  uid: UID
reason: Checked
message: the settings were checked
type: Normal
source:
  component: test
count: 1
"#;
    c.ok_stdin(&["create", "-f", "-"], &event.replace("UID", uid.trim()));
    let out = c.ok(&["describe", "configmap", "settings"]);
    assert!(out.contains("Name:") && out.contains("settings"), "{out}");
    assert!(out.contains("app=demo"), "{out}");
    assert!(
        out.contains("Checked") && out.contains("the settings were checked"),
        "events listed:\n{out}"
    );
}

#[test]
fn the_projects_crd_applies_explains_waits_and_validates() {
    let c = Cluster::start();
    let crd = repo_file("crds/valkeycluster.yaml");
    c.ok(&["apply", "-f", crd.to_str().unwrap()]);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/valkeyclusters.valkey.logbook.dev",
        "--timeout=30s",
    ]);
    let resources = c.ok(&["api-resources", "--api-group=valkey.logbook.dev"]);
    assert!(
        resources.contains("vkc") && resources.contains("ValkeyCluster"),
        "{resources}"
    );

    let explain = c.ok(&["explain", "valkeycluster.spec.topology"]);
    assert!(
        explain.contains("topology") && explain.contains("Standalone"),
        "{explain}"
    );

    let sample = repo_file("config/samples/replication.yaml");
    c.ok(&["apply", "-f", sample.to_str().unwrap()]);
    c.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        sample.to_str().unwrap(),
    ]);
    // The schema's one default (topology's) is applied by the server;
    // the built-in values are the operator's, beneath its defaults layers
    // (crds/src/crdgen.rs), so the server writes no image.
    let image = c.ok(&["get", "vkc", "demo", "-o", "jsonpath={.spec.image}"]);
    assert_eq!(image.trim(), "");
    let topology = c.ok(&["get", "vkc", "demo", "-o", "jsonpath={.spec.topology}"]);
    assert_eq!(topology.trim(), "Replication");
    // Printer columns come back as a table.
    let table = c.ok(&["get", "vkc"]);
    assert!(
        table.contains("TOPOLOGY") && table.contains("Replication"),
        "{table}"
    );

    // Schema validation: out of range, and the immutable topology (CEL oldSelf).
    let err = c.fails(&[
        "patch",
        "vkc",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":1000}}"#,
    ]);
    assert!(
        err.contains("spec.replicas") && err.contains("100"),
        "{err}"
    );
    let err = c.fails(&[
        "patch",
        "vkc",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"topology":"Cluster","replicas":null}}"#,
    ]);
    assert!(err.contains("topology is immutable"), "{err}");
    // Strategic merge patch is refused for custom resources, as on a real server.
    let err = c.fails(&[
        "patch",
        "vkc",
        "demo",
        "--type=strategic",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    assert!(
        err.contains("application/strategic-merge-patch+json is not supported"),
        "{err}"
    );

    // kubectl wait sees a condition appear on the status subresource.
    let waiter = c
        .command(&["wait", "--for=condition=Ready", "vkc/demo", "--timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&[
        "patch", "vkc", "demo", "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"phase":"Ready","conditions":[{"type":"Ready","status":"True","reason":"Converged","message":"ok","lastTransitionTime":"2026-11-22T00:00:00Z"}]}}"#,
    ]);
    let waited = wait_bounded(waiter, Duration::from_secs(40), &["wait"]);
    assert!(
        waited.status.success(),
        "wait failed: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let phase = c.ok(&["get", "vkc", "demo", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase.trim(), "Ready");

    c.ok(&["delete", "vkc", "demo", "--wait=true"]);
    c.ok(&["wait", "--for=delete", "vkc/demo", "--timeout=10s"]);
    c.ok(&["delete", "-f", crd.to_str().unwrap()]);
    let err = c.fails(&["get", "vkc"]);
    assert!(
        err.contains("the server doesn't have a resource type")
            || err.contains("NotFound")
            || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn deployments_and_monitoring_kinds() {
    let c = Cluster::start();
    let deploy = DEPLOYMENT_LIKE_STS
        .replace("kind: StatefulSet", "kind: Deployment")
        .replace("  serviceName: web\n", "");
    let out = c.ok_stdin(&["apply", "-f", "-"], &deploy);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let table = c.ok(&["get", "deploy", "web"]);
    assert!(
        table.contains("READY") && table.contains("UP-TO-DATE") && table.contains("0/2"),
        "{table}"
    );
    let out = c.ok(&["scale", "deployment", "web", "--replicas=3"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    let moved = deploy.replace("matchLabels: {app: web}", "matchLabels: {app: web2}");
    let err = c.run_with_stdin(&["apply", "-f", "-"], Some(&moved));
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(err.contains("field is immutable"), "{err}");

    let crds = repo_file("localkube/tests/fixtures/monitoring.coreos.com-crds.yaml");
    c.ok(&["apply", "-f", crds.to_str().unwrap()]);
    let monitor = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: logbook}\nspec:\n  selector: {matchLabels: {app: logbook}}\n  endpoints: [{port: metrics}]\n";
    let out = c.ok_stdin(&["apply", "--server-side", "-f", "-"], monitor);
    assert!(
        out.contains("servicemonitor.monitoring.coreos.com/logbook serverside-applied"),
        "{out}"
    );
    let names = c.ok(&["get", "smon", "-o", "name"]);
    assert_eq!(names.trim(), "servicemonitor.monitoring.coreos.com/logbook");
    let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: logbook}\nspec:\n  groups: [{name: logbook, rules: [{alert: Down, expr: up == 0}]}]\n";
    c.ok_stdin(&["apply", "-f", "-"], rule);
    assert_eq!(
        c.ok(&[
            "get",
            "promrule",
            "logbook",
            "-o",
            "jsonpath={.spec.groups[0].rules[0].alert}"
        ]),
        "Down"
    );
}
