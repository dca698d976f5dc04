//! Server-side dry run (`?dryRun=All`) with the real kubectl and kube-rs:
//! create, server-side apply, replace, patch and delete are fully
//! processed (defaults, validation, CRD schemas, RBAC) and answered with
//! what would be stored, yet nothing is stored, no resourceVersion is
//! spent, no watch hears of it and no controller reacts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod kubectl_common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchEvent, WatchParams};
use kubectl_common::Cluster;
use logbook_localkube::{Config, WorkloadsConfig};
use serde_json::Value;

const CM: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: "1"
"#;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1, default: 3}
"#;

const STS: &str = r#"
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
      - {name: app, image: valkey/valkey:9.1}
"#;

fn rv(c: &Cluster) -> u64 {
    c.server().store().resource_version()
}

#[test]
fn kubectl_dry_runs_store_nothing() {
    let c = Cluster::start();
    let before = rv(&c);
    let out = c.ok_stdin(&["create", "--dry-run=server", "-f", "-"], CM);
    assert_eq!(out.trim(), "configmap/settings created (server dry run)");
    let out = c.ok_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        CM,
    );
    assert_eq!(
        out.trim(),
        "configmap/settings serverside-applied (server dry run)"
    );
    // A typed create (protobuf body) too, answered with what would be stored.
    let out = c.ok(&[
        "create",
        "configmap",
        "typed",
        "--from-literal=k=v",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["k"], "v");
    assert!(v["metadata"]["uid"].is_string() && v["metadata"]["creationTimestamp"].is_string());
    assert_eq!(rv(&c), before, "a dry run spent a resourceVersion");
    for name in ["settings", "typed"] {
        let err = c.fails(&["get", "configmap", name]);
        assert!(err.contains("NotFound"), "{err}");
    }

    // On an existing object: apply, replace, patch and delete change nothing.
    c.ok_stdin(&["apply", "--server-side", "-f", "-"], CM);
    let stored = rv(&c);
    let changed = CM.replace("a: \"1\"", "a: \"2\"");
    let out = c.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
        ],
        &changed,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["a"], "2");
    let out = c.ok_stdin(&["replace", "--dry-run=server", "-f", "-"], &changed);
    assert_eq!(out.trim(), "configmap/settings replaced (server dry run)");
    let out = c.ok(&[
        "patch",
        "configmap",
        "settings",
        "--dry-run=server",
        "-p",
        r#"{"data":{"b":"3"}}"#,
    ]);
    // kubectl words a server dry-run patch as a patch; the rv check below
    // is what shows nothing was stored.
    assert_eq!(out.trim(), "configmap/settings patched");
    let out = c.ok(&["delete", "configmap", "settings", "--dry-run=server"]);
    assert_eq!(
        out.trim(),
        "configmap \"settings\" deleted from default namespace (server dry run)"
    );
    let out = c.ok(&["delete", "namespace", "default", "--dry-run=server"]);
    assert!(out.contains("(server dry run)"), "{out}");
    assert_eq!(rv(&c), stored, "a dry run spent a resourceVersion");
    assert_eq!(
        c.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data}"]),
        r#"{"a":"1"}"#
    );
    assert_eq!(
        c.ok(&[
            "get",
            "namespace",
            "default",
            "-o",
            "jsonpath={.status.phase}"
        ]),
        "Active"
    );
}

#[test]
fn dry_runs_are_validated_and_admitted() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], CRD);
    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 0}\n";
    let err = c.run_with_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(bad),
    );
    assert!(!err.status.success());
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains(
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        ),
        "{err}"
    );
    let good = bad.replace("size: 0", "size: 2");
    let out = c.ok_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        &good,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["spec"]["size"],
        2
    );
    // Schema defaults are applied to what a dry run answers.
    let defaulted = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: d}\nspec: {}\n";
    let out = c.ok_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        defaulted,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["spec"]["size"],
        3
    );
    assert!(c.fails(&["get", "widget", "w"]).contains("NotFound"));

    // A built-in kind's validation, and the existing name, still refuse.
    let bad_deploy = STS
        .replace("StatefulSet", "Deployment")
        .replace("labels: {app: web}", "labels: {app: other}");
    let err = c.run_with_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&bad_deploy),
    );
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
    c.ok_stdin(&["create", "-f", "-"], CM);
    let err = c.run_with_stdin(&["create", "--dry-run=server", "-f", "-"], Some(CM));
    assert!(String::from_utf8_lossy(&err.stderr).contains("AlreadyExists"));

    // An unsupported dryRun value is refused as the real server refuses it.
    let (code, _, body) = c.block_on(common::raw(
        c.server().addr(),
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=Yes",
        &[("Content-Type", "application/json")],
        br#"{"metadata": {"name": "x"}}"#,
    ));
    assert_eq!(code, 422);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Yes\"}: supported values: \"All\""
    );
    let (code, _, body) = c.block_on(common::raw(
        c.server().addr(),
        "DELETE",
        "/api/v1/namespaces/default/configmaps/settings",
        &[("Content-Type", "application/json")],
        br#"{"dryRun": ["Some"]}"#,
    ));
    assert_eq!(code, 422);
    assert!(body.contains("DeleteOptions.meta.k8s.io"), "{body}");
}

#[test]
fn dry_runs_are_authorized() {
    let c = Cluster::start_with(Config {
        rbac: true,
        ..Config::default()
    });
    c.ok(&["create", "serviceaccount", "op"]);
    let sa = "--as=system:serviceaccount:default:op";
    let err = c.run_with_stdin(&[sa, "create", "--dry-run=server", "-f", "-"], Some(CM));
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains(
            r#"cannot create resource "configmaps" in API group "" in the namespace "default""#
        ),
        "{err}"
    );
    c.ok(&[
        "create",
        "role",
        "cm",
        "--verb=create",
        "--resource=configmaps",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "cm",
        "--role=cm",
        "--serviceaccount=default:op",
    ]);
    let out = c.ok_stdin(&[sa, "create", "--dry-run=server", "-f", "-"], CM);
    assert!(out.contains("(server dry run)"), "{out}");
}

#[test]
fn watches_and_controllers_never_hear_of_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(Config {
        workloads: Some(WorkloadsConfig {
            state_dir: dir.path().to_path_buf(),
            kubelet: false,
            proxy: false,
            local_images: Vec::new(),
        }),
        ..Config::default()
    });
    // A kube-rs client spawns its worker on the runtime it is made in.
    let client = c.block_on(async { common::client(c.server()) });
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let from = rv(&c).to_string();
    let stream = c
        .block_on(cms.watch(&WatchParams::default().timeout(10), &from))
        .unwrap();
    let mut stream = Box::pin(stream);
    c.ok_stdin(&["create", "--dry-run=server", "-f", "-"], CM);
    c.ok_stdin(&["create", "--dry-run=server", "-f", "-"], STS);
    c.ok_stdin(&["create", "-f", "-"], &CM.replace("settings", "real"));
    let first = c.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    });
    match first {
        WatchEvent::Added(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("real")),
        other => panic!("expected the real create first, got {other:?}"),
    }
    // The StatefulSet controller made no pods for the dry-run StatefulSet.
    std::thread::sleep(Duration::from_millis(500));
    let pods = c
        .server()
        .store()
        .list("v1", "pods", Some("default"), None)
        .unwrap();
    assert!(pods.is_empty(), "{pods:?}");
    assert!(c.fails(&["get", "statefulset", "web"]).contains("NotFound"));
}
