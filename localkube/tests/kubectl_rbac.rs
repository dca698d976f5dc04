//! RBAC as kubectl meets it: `kubectl create token` (a protobuf
//! TokenRequest), `kubectl create role|rolebinding` (protobuf bodies),
//! `kubectl auth can-i` (self access and rules reviews) and the 403 kubectl
//! prints. kubectl acts as the ServiceAccount with `--as`: client-go sends
//! a kubeconfig's token only to TLS servers, never over plain HTTP, but it
//! does send impersonation headers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod kubectl_common;

use kubectl_common::Cluster;
use logbook_localkube::Config;

const SA_USER: &str = "system:serviceaccount:default:op";
const AS_SA: &str = "--as=system:serviceaccount:default:op";

fn rbac_cluster() -> Cluster {
    Cluster::start_with(Config {
        rbac: true,
        ..Config::default()
    })
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn create_token_then_act_as_the_service_account() {
    let c = rbac_cluster();
    c.ok(&["create", "serviceaccount", "op"]);
    let err = c.fails(&["create", "token", "ghost"]);
    assert!(
        err.contains(r#"error: failed to create token: serviceaccounts "ghost" not found"#),
        "{err}"
    );
    let token = c.ok(&["create", "token", "op", "--duration=20m"]);
    let token = token.trim().to_owned();
    assert!(!token.is_empty());
    // The token is the ServiceAccount's (kube-rs and curl send it).
    let auth = format!("Bearer {token}");
    let (code, _, body) = c.block_on(common::raw(
        c.server().addr(),
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("Authorization", &auth)],
        b"",
    ));
    assert_eq!(code, 403);
    assert!(body.contains(SA_USER), "{body}");

    let who = c.ok(&[AS_SA, "auth", "whoami"]);
    assert!(
        who.contains(SA_USER) && who.contains("system:serviceaccounts:default"),
        "{who}"
    );

    // Nothing granted: kubectl prints the real server's refusal.
    let err = c.fails(&[AS_SA, "get", "pods"]);
    assert!(
        err.contains(&format!(
            r#"Error from server (Forbidden): pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" in the namespace "default""#
        )),
        "{err}"
    );
    let out = c.run(&[AS_SA, "auth", "can-i", "list", "pods"]);
    assert_eq!(stdout(&out), "no");
    assert!(!out.status.success());

    c.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods,pods/log",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "op-pods",
        "--role=pod-reader",
        "--serviceaccount=default:op",
    ]);
    assert_eq!(
        c.ok(&[AS_SA, "auth", "can-i", "list", "pods"]).trim(),
        "yes"
    );
    assert_eq!(
        c.ok(&[AS_SA, "auth", "can-i", "get", "pods", "--subresource=log"])
            .trim(),
        "yes"
    );
    assert_eq!(
        stdout(&c.run(&[AS_SA, "auth", "can-i", "delete", "pods"])),
        "no"
    );
    assert_eq!(
        stdout(&c.run(&[AS_SA, "auth", "can-i", "list", "pods", "-n", "kube-system"])),
        "no"
    );
    let listed = c.ok(&[AS_SA, "get", "pods"]);
    assert!(!listed.contains("Forbidden"), "{listed}");
    let rules = c.ok(&[AS_SA, "auth", "can-i", "--list"]);
    assert!(
        rules
            .lines()
            .any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
        "{rules}"
    );
    // Cluster-scoped roles and bindings, and a non-resource URL.
    c.ok(&[
        "create",
        "clusterrole",
        "metrics",
        "--verb=get",
        "--non-resource-url=/metrics",
    ]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "op-metrics",
        "--clusterrole=metrics",
        "--serviceaccount=default:op",
    ]);
    assert_eq!(
        c.ok(&[AS_SA, "auth", "can-i", "get", "/metrics"]).trim(),
        "yes"
    );
    assert_eq!(
        stdout(&c.run(&[AS_SA, "auth", "can-i", "get", "/other"])),
        "no"
    );

    // The admin can still do anything; the ServiceAccount may not
    // impersonate anyone.
    assert_eq!(c.ok(&["auth", "can-i", "delete", "nodes"]).trim(), "yes");
    let used = c.server().authorizations();
    assert!(
        used.iter()
            .any(|a| a.verb == "list" && a.resource == "pods"),
        "{used:?}"
    );
    let denied = c.server().denials();
    assert!(
        denied
            .iter()
            .any(|d| d.access.verb == "list" && d.access.resource == "pods"),
        "{denied:?}"
    );
}
