#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::auth::UserInfo;
use crate::auth::attributes::{Attributes, ResourceAttributes};

const G: &str = "rbac.authorization.k8s.io";

fn sa() -> UserInfo {
    UserInfo::service_account("app", "op")
}

fn role(kind: &str, ns: &str, name: &str, rules: Value) -> (String, Arc<Value>) {
    let plural = if kind == "Role" {
        "roles"
    } else {
        "clusterroles"
    };
    let mut meta = json!({"name": name});
    if !ns.is_empty() {
        meta["namespace"] = json!(ns);
    }
    (
        plural.into(),
        Arc::new(
            json!({"apiVersion": format!("{G}/v1"), "kind": kind, "metadata": meta, "rules": rules}),
        ),
    )
}

fn binding(
    ns: &str,
    name: &str,
    role_kind: &str,
    role: &str,
    subjects: Value,
) -> (String, Arc<Value>) {
    let (plural, kind) = if ns.is_empty() {
        ("clusterrolebindings", "ClusterRoleBinding")
    } else {
        ("rolebindings", "RoleBinding")
    };
    let mut meta = json!({"name": name});
    if !ns.is_empty() {
        meta["namespace"] = json!(ns);
    }
    (
        plural.into(),
        Arc::new(
            json!({"apiVersion": format!("{G}/v1"), "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": G, "kind": role_kind, "name": role}, "subjects": subjects}),
        ),
    )
}

fn sa_subject() -> Value {
    json!([{"kind": "ServiceAccount", "name": "op", "namespace": "app"}])
}

fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes::resource(
        sa(),
        verb,
        ResourceAttributes {
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        },
    )
}

fn allowed(p: &Policy, a: &Attributes) -> bool {
    p.authorize(a).allowed()
}

#[test]
fn namespaced_role_grants_only_its_namespace_verbs_and_group() {
    let p = Policy::compile(&[
        role(
            "Role",
            "app",
            "r",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        ),
        binding("app", "b", "Role", "r", sa_subject()),
    ]);
    assert!(allowed(&p, &res("get", "", "pods", "", "app", "x")));
    assert!(allowed(&p, &res("list", "", "pods", "", "app", "")));
    assert!(!allowed(&p, &res("watch", "", "pods", "", "app", "")));
    assert!(!allowed(&p, &res("get", "", "pods", "", "other", "x")));
    assert!(!allowed(&p, &res("list", "", "pods", "", "", "")));
    assert!(!allowed(&p, &res("get", "apps", "pods", "", "app", "x")));
    assert!(!allowed(&p, &res("get", "", "pods", "log", "app", "x")));
    assert_eq!(
        p.authorize(&res("get", "", "pods", "", "app", "x"))
            .reason(),
        r#"RBAC: allowed by RoleBinding "b/app" of Role "r" to ServiceAccount "op/app""#
    );
}

#[test]
fn rolebinding_to_clusterrole_is_scoped_to_its_namespace() {
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "cr",
            json!([{"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["*"]}]),
        ),
        binding(
            "app",
            "b",
            "ClusterRole",
            "cr",
            json!([{"kind": "ServiceAccount", "name": "op"}]),
        ),
    ]);
    assert!(allowed(
        &p,
        &res("delete", "apps", "statefulsets", "", "app", "x")
    ));
    assert!(!allowed(
        &p,
        &res("delete", "apps", "statefulsets", "", "other", "x")
    ));
    assert!(!allowed(
        &p,
        &res("list", "apps", "statefulsets", "", "", "")
    ));
}

#[test]
fn clusterrolebinding_grants_every_namespace_and_the_cluster_scope() {
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "cr",
            json!([{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]}]),
        ),
        binding("", "b", "ClusterRole", "cr", sa_subject()),
    ]);
    assert!(allowed(&p, &res("watch", "", "pods", "", "", "")));
    assert!(allowed(&p, &res("list", "", "pods", "", "any", "")));
    assert!(allowed(&p, &res("list", "", "nodes", "", "", "")));
    assert_eq!(
        p.authorize(&res("list", "", "nodes", "", "", "")).reason(),
        r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "cr" to ServiceAccount "op/app""#
    );
    // A ServiceAccount subject of a ClusterRoleBinding needs its namespace.
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "cr",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        binding(
            "",
            "b",
            "ClusterRole",
            "cr",
            json!([{"kind": "ServiceAccount", "name": "op"}]),
        ),
    ]);
    assert!(!allowed(&p, &res("get", "", "pods", "", "app", "x")));
}

#[test]
fn resource_names_match_named_requests_only() {
    let p = Policy::compile(&[
        role(
            "Role",
            "app",
            "r",
            json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "resourceNames": ["leader"], "verbs": ["get", "update", "create", "list"]}]),
        ),
        binding("app", "b", "Role", "r", sa_subject()),
    ]);
    assert!(allowed(
        &p,
        &res("get", "coordination.k8s.io", "leases", "", "app", "leader")
    ));
    assert!(!allowed(
        &p,
        &res("get", "coordination.k8s.io", "leases", "", "app", "other")
    ));
    // A create names no object on the URL: resourceNames cannot allow it.
    assert!(!allowed(
        &p,
        &res("create", "coordination.k8s.io", "leases", "", "app", "")
    ));
    assert!(!allowed(
        &p,
        &res("list", "coordination.k8s.io", "leases", "", "app", "")
    ));
}

#[test]
fn subresources_need_their_own_rule_or_a_wildcard() {
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "cr",
            json!([
                {"apiGroups": [""], "resources": ["pods/log", "pods/eviction"], "verbs": ["get", "create"]},
                {"apiGroups": ["valkey.logbook.dev"], "resources": ["valkeyclusters/status"], "verbs": ["patch"]},
                {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}
            ]),
        ),
        binding("", "b", "ClusterRole", "cr", sa_subject()),
    ]);
    assert!(allowed(&p, &res("get", "", "pods", "log", "app", "p")));
    assert!(allowed(
        &p,
        &res("create", "", "pods", "eviction", "app", "p")
    ));
    assert!(!allowed(&p, &res("get", "", "pods", "", "app", "p")));
    assert!(allowed(
        &p,
        &res(
            "patch",
            "valkey.logbook.dev",
            "valkeyclusters",
            "status",
            "app",
            "v"
        )
    ));
    assert!(!allowed(
        &p,
        &res(
            "patch",
            "valkey.logbook.dev",
            "valkeyclusters",
            "",
            "app",
            "v"
        )
    ));
    assert!(allowed(
        &p,
        &res("update", "apps", "statefulsets", "scale", "app", "s")
    ));
    assert!(!allowed(
        &p,
        &res("update", "apps", "statefulsets", "", "app", "s")
    ));
}

#[test]
fn wildcards_and_users_and_groups() {
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "all",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        binding(
            "",
            "u",
            "ClusterRole",
            "all",
            json!([{"kind": "User", "name": "system:serviceaccount:app:op"}]),
        ),
    ]);
    assert!(allowed(
        &p,
        &res("deletecollection", "x.y", "things", "status", "", "")
    ));
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "all",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}]),
        ),
        binding(
            "",
            "g",
            "ClusterRole",
            "all",
            json!([{"kind": "Group", "name": "system:serviceaccounts:app"}]),
        ),
    ]);
    assert!(allowed(&p, &res("get", "", "secrets", "", "app", "s")));
    assert!(!allowed(&p, &res("list", "", "secrets", "", "app", "")));
}

#[test]
fn non_resource_urls_and_the_defaults() {
    let p = Policy::compile(&[
        role(
            "ClusterRole",
            "",
            "metrics",
            json!([{"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}]),
        ),
        binding("", "m", "ClusterRole", "metrics", sa_subject()),
    ]);
    let path = |verb: &str, p: &str| Attributes::non_resource(sa(), verb, p);
    assert!(allowed(&p, &path("get", "/metrics")));
    assert!(allowed(&p, &path("get", "/debug/pprof/heap")));
    assert!(!allowed(&p, &path("post", "/metrics")));
    assert!(!allowed(&p, &path("get", "/metricsx")));
    // Every authenticated user may discover and review itself.
    assert!(allowed(&p, &path("get", "/apis/apps/v1")));
    assert!(allowed(&p, &path("get", "/openapi/v3")));
    assert!(allowed(&p, &path("get", "/version")));
    assert!(allowed(
        &p,
        &res(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
            ""
        )
    ));
    assert!(!allowed(
        &p,
        &res(
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            "",
            "",
            ""
        )
    ));
    assert!(!allowed(&p, &path("post", "/apis")));
    assert_eq!(
        p.authorize(&path("get", "/api")).reason(),
        r#"RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated""#
    );
}

#[test]
fn missing_roles_are_the_deny_reason() {
    let p = Policy::compile(&[
        binding("", "c", "ClusterRole", "gone", sa_subject()),
        binding("app", "r", "Role", "gone-too", sa_subject()),
        binding(
            "app",
            "other",
            "Role",
            "not-mine",
            json!([{"kind": "User", "name": "someone"}]),
        ),
    ]);
    let d = p.authorize(&res("get", "", "pods", "", "app", "x"));
    assert_eq!(
        d,
        Decision::Deny {
            reason: r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "gone-too" not found]"#.into()
        }
    );
    let d = p.authorize(&res("list", "", "pods", "", "", ""));
    assert_eq!(
        d.reason(),
        r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
    );
}

#[test]
fn a_stored_default_replaces_the_builtin_one() {
    let p = Policy::compile(&[binding(
        "",
        "system:discovery",
        "ClusterRole",
        "system:discovery",
        json!([]),
    )]);
    assert!(!allowed(&p, &Attributes::non_resource(sa(), "get", "/api")));
    assert!(allowed(
        &p,
        &Attributes::non_resource(sa(), "get", "/version")
    ));
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let p = Policy::compile(&[
        role(
            "Role",
            "app",
            "r",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        ),
        binding("app", "b", "Role", "r", sa_subject()),
    ]);
    let (rules, errors) = p.rules_for(&sa(), "app");
    assert!(errors.is_empty());
    assert!(rules.iter().any(|r| r.resources == ["pods"]));
    assert!(
        rules
            .iter()
            .any(|r| r.non_resource_urls.contains(&"/api".to_owned()))
    );
    let (rules, _) = p.rules_for(&sa(), "other");
    assert!(!rules.iter().any(|r| r.resources == ["pods"]));
}
