//! The default ClusterRoles and ClusterRoleBindings every real cluster is
//! bootstrapped with and that matter to an authenticated client: discovery
//! and health paths (`system:discovery`, `system:public-info-viewer`),
//! self access and rules reviews (`system:basic-user`), token and access
//! reviews for others (`system:auth-delegator`, bound by whoever needs it)
//! and `cluster-admin` bound to `system:masters`. They are part of the policy, not stored
//! objects (`kubectl get clusterroles` does not list them); a stored object
//! of the same name replaces one, as editing it on a real cluster would.

use serde_json::{Value, json};

/// (resource plural, object) of every default RBAC object.
pub fn objects() -> Vec<(&'static str, Value)> {
    let health = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    let mut discovery: Vec<&str> = vec![
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/openapi",
        "/openapi/*",
    ];
    discovery.extend(health);
    discovery.sort_unstable();
    vec![
        role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]}
            ]),
        ),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": discovery, "verbs": ["get"]}]),
        ),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": health, "verbs": ["get"]}]),
        ),
        role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}
            ]),
        ),
        // Bound by whoever delegates authentication and authorization to
        // the API server (an aggregated server, or an operator's web UI).
        role(
            "system:auth-delegator",
            json!([
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}
            ]),
        ),
        binding("cluster-admin", &["system:masters"]),
        binding("system:discovery", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        binding("system:basic-user", &["system:authenticated"]),
    ]
}

fn role(name: &str, rules: Value) -> (&'static str, Value) {
    (
        "clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": rules}),
    )
}

/// A ClusterRoleBinding of the ClusterRole `name` (same name) to `groups`.
fn binding(name: &str, groups: &[&str]) -> (&'static str, Value) {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    (
        "clusterrolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subjects}),
    )
}
