//! RBAC enforcement for ServiceAccount tokens over HTTP, with the real
//! kube-rs client: the TokenRequest API, 401 for unknown or dead tokens,
//! each rule shape allowing exactly what it should, the real server's 403
//! messages, watches refused before they stream, and the allowed / denied
//! logs a test reads to learn which permissions a client used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use logbook_localkube::{Access, Config, RunningServer};
use serde_json::{Value, json};

const SA_USER: &str = "system:serviceaccount:app:op";

async fn start_rbac() -> RunningServer {
    common::start_with(Config {
        rbac: true,
        ..Config::default()
    })
    .await
}

/// Creates namespace `app` and ServiceAccount `app/op` as the admin.
async fn setup(server: &RunningServer) {
    setup_with(&common::client(server)).await;
}

async fn setup_with(admin: &kube::Client) {
    apply(
        admin,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}}),
    )
    .await;
    apply(
        admin,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
    )
    .await;
    apply(
        admin,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "op", "namespace": "app"}}),
    )
    .await;
}

/// Server-side applies `obj` as the admin.
async fn apply(client: &kube::Client, obj: Value) {
    let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap().to_owned(),
        ),
    };
    let kind = obj["kind"].as_str().unwrap();
    let plural = match kind {
        "Namespace" => "namespaces".to_owned(),
        "ServiceAccount" => "serviceaccounts".to_owned(),
        "ConfigMap" => "configmaps".to_owned(),
        "Pod" => "pods".to_owned(),
        k => format!("{}s", k.to_lowercase()),
    };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, &version, kind), &plural);
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let pp = PatchParams::apply("test").force();
    api.patch(&name, &pp, &Patch::Apply(&obj)).await.unwrap();
}

async fn sa_client(server: &RunningServer) -> kube::Client {
    let token = server
        .service_account_token("app", "op", Duration::from_secs(600))
        .unwrap();
    client_with_token(server, &token).await
}

async fn client_with_token(server: &RunningServer, token: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_with_token(token)).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn role(kind: &str, ns: Option<&str>, name: &str, rules: Value) -> Value {
    let mut meta = json!({"name": name});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules})
}

fn binding(ns: Option<&str>, name: &str, role_kind: &str, role: &str) -> Value {
    let (kind, meta) = match ns {
        Some(ns) => ("RoleBinding", json!({"name": name, "namespace": ns})),
        None => ("ClusterRoleBinding", json!({"name": name})),
    };
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "app"}]})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn unknown_expired_and_orphaned_tokens_are_unauthorized() {
    let server = start_rbac().await;
    setup(&server).await;
    let (code, _, body) = common::raw(
        server.addr(),
        "GET",
        "/api/v1/namespaces/app/pods",
        &[("Authorization", "Bearer nope")],
        b"",
    )
    .await;
    assert_eq!(code, 401);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    // A token outlives neither its expiry nor its ServiceAccount.
    let short = server
        .service_account_token("app", "op", Duration::from_secs(1))
        .unwrap();
    let auth = bearer(&short);
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(code, 401);

    let long = server
        .service_account_token("app", "op", Duration::from_secs(600))
        .unwrap();
    let auth = bearer(&long);
    let admin = common::client(&server);
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(admin.clone(), "app");
    sas.delete("op", &Default::default()).await.unwrap();
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(code, 401);
    // Recreated under the same name, it is another account: still refused.
    setup(&server).await;
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(code, 401);
    // Without credentials and without an admin token: the admin, as before.
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api/v1/namespaces/app/pods",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn token_request_api() {
    let server = start_rbac().await;
    setup(&server).await;
    let path = "/api/v1/namespaces/app/serviceaccounts/op/token";
    let ct = [("Content-Type", "application/json")];
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 1800}});
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        path,
        &ct,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{out}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["kind"], "TokenRequest");
    assert_eq!(out["metadata"]["name"], "op");
    assert_eq!(out["spec"]["expirationSeconds"], 1800);
    let token = out["status"]["token"].as_str().unwrap().to_owned();
    let exp = chrono::DateTime::parse_from_rfc3339(
        out["status"]["expirationTimestamp"].as_str().unwrap(),
    )
    .unwrap();
    let left = exp.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((1790..=1800).contains(&left), "{left}");
    let auth = bearer(&token);
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/apis",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(code, 200);

    // Missing ServiceAccount, too short a lifetime, a mismatched name.
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        "/api/v1/namespaces/app/serviceaccounts/ghost/token",
        &ct,
        b"{}",
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (code, out["message"].as_str().unwrap()),
        (404, "serviceaccounts \"ghost\" not found")
    );
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        path,
        &ct,
        br#"{"spec": {"expirationSeconds": 60}}"#,
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 422);
    assert_eq!(
        out["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        path,
        &ct,
        br#"{"metadata": {"name": "x"}}"#,
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 422);
    assert_eq!(
        out["message"],
        "TokenRequest.authentication.k8s.io \"op\" is invalid: metadata.name: Invalid value: \"x\": must match the service account name if specified"
    );

    // Requesting a token is itself authorized: op may not mint its own.
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        b"{}",
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 403);
    assert_eq!(
        out["message"],
        format!(
            "serviceaccounts \"op\" is forbidden: User \"{SA_USER}\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"app\""
        )
    );
    server.shutdown().await;
}

#[tokio::test]
async fn namespaced_role_allows_its_verbs_in_its_namespace_only() {
    let server = start_rbac().await;
    setup(&server).await;
    let admin = common::client(&server);
    apply(
        &admin,
        role(
            "Role",
            Some("app"),
            "cm-reader",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
        ),
    )
    .await;
    apply(&admin, binding(Some("app"), "op-cm", "Role", "cm-reader")).await;
    apply(&admin, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "app"}})).await;
    let sa = sa_client(&server).await;

    let cms: Api<ConfigMap> = Api::namespaced(sa.clone(), "app");
    cms.get("c").await.unwrap();
    assert_eq!(cms.list(&Default::default()).await.unwrap().items.len(), 1);

    let e = common::api_err(cms.delete("c", &Default::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!(
            "configmaps \"c\" is forbidden: User \"{SA_USER}\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"app\""
        )
    );
    let details = e.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("c", "", "configmaps")
    );

    let e = common::api_err(
        Api::<ConfigMap>::all(sa.clone())
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        format!(
            "configmaps is forbidden: User \"{SA_USER}\" cannot list resource \"configmaps\" in API group \"\" at the cluster scope"
        )
    );
    let e = common::api_err(
        Api::<ConfigMap>::namespaced(sa.clone(), "other")
            .get("c")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        format!(
            "configmaps \"c\" is forbidden: User \"{SA_USER}\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"other\""
        )
    );

    // A watch the role does not grant is refused before it streams.
    let (code, _, body) = common::raw(
        server.addr(),
        "GET",
        "/api/v1/namespaces/app/configmaps?watch=true",
        &[(
            "Authorization",
            &bearer(
                &server
                    .service_account_token("app", "op", Duration::from_secs(600))
                    .unwrap(),
            ),
        )],
        b"",
    )
    .await;
    assert_eq!(code, 403);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        format!(
            "configmaps is forbidden: User \"{SA_USER}\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"app\""
        )
    );

    // The logs: what was allowed (once each), what was refused and why.
    let used = server.authorizations();
    let want = |verb: &str| Access {
        user: SA_USER.into(),
        verb: verb.into(),
        group: String::new(),
        resource: "configmaps".into(),
        namespace: Some("app".into()),
        path: None,
    };
    assert!(
        used.contains(&want("get")) && used.contains(&want("list")),
        "{used:?}"
    );
    assert!(!used.contains(&want("delete")));
    let denied: Vec<String> = server.denials().iter().map(|d| d.message.clone()).collect();
    assert_eq!(denied.len(), 4, "{denied:#?}");
    assert!(
        denied
            .iter()
            .any(|m| m.contains("cannot watch resource \"configmaps\""))
    );
    assert_eq!(server.denials()[0].name.as_deref(), Some("c"));
    server.shutdown().await;
}

#[tokio::test]
async fn clusterrole_bindings_names_subresources_and_live_changes() {
    let server = start_rbac().await;
    setup(&server).await;
    let admin = common::client(&server);
    let sa = sa_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(sa.clone(), "app");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "app"},
        "spec": {"containers": [{"name": "c", "image": "valkey"}]}});
    apply(&admin, pod.clone()).await;

    // Nothing granted yet.
    assert_eq!(common::api_err(pods.get("p").await.unwrap_err()).code, 403);

    // RoleBinding → ClusterRole: granted in the binding's namespace only.
    apply(
        &admin,
        role(
            "ClusterRole",
            None,
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(Some("app"), "op-pods", "ClusterRole", "pod-reader"),
    )
    .await;
    pods.get("p").await.unwrap();
    assert_eq!(
        common::api_err(
            Api::<Pod>::all(sa.clone())
                .list(&Default::default())
                .await
                .unwrap_err()
        )
        .code,
        403
    );

    // ClusterRoleBinding: every namespace and the cluster scope.
    apply(
        &admin,
        binding(None, "op-pods-all", "ClusterRole", "pod-reader"),
    )
    .await;
    Api::<Pod>::all(sa.clone())
        .list(&Default::default())
        .await
        .unwrap();

    // Subresources need their own rule.
    let evict = kube::api::EvictParams::default();
    let e = common::api_err(pods.evict("p", &evict).await.unwrap_err());
    assert_eq!(
        e.message,
        format!(
            "pods \"p\" is forbidden: User \"{SA_USER}\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"app\""
        )
    );
    apply(&admin, role("Role", Some("app"), "evictor", json!([
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"], "resourceNames": ["p"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]}
    ]))).await;
    apply(&admin, binding(Some("app"), "op-evict", "Role", "evictor")).await;
    let status = Patch::Merge(json!({"status": {"phase": "Running"}}));
    pods.patch_status("p", &PatchParams::default(), &status)
        .await
        .unwrap();
    let e = common::api_err(
        pods.patch("p", &PatchParams::default(), &status)
            .await
            .unwrap_err(),
    );
    assert!(
        e.message
            .contains("cannot patch resource \"pods\" in API group"),
        "{}",
        e.message
    );
    pods.evict("p", &evict).await.unwrap();
    // resourceNames: another pod may not be evicted.
    apply(
        &admin,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q", "namespace": "app"},
        "spec": {"containers": [{"name": "c", "image": "valkey"}]}}),
    )
    .await;
    assert_eq!(
        common::api_err(pods.evict("q", &evict).await.unwrap_err()).code,
        403
    );

    // Wildcards, and a binding removed takes its grant with it at once.
    apply(
        &admin,
        role(
            "ClusterRole",
            None,
            "everything",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(Some("other"), "op-all", "ClusterRole", "everything"),
    )
    .await;
    let other: Api<ConfigMap> = Api::namespaced(sa.clone(), "other");
    other
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), "other")
        .delete("op-all", &Default::default())
        .await
        .unwrap();
    assert_eq!(common::api_err(other.get("x").await.unwrap_err()).code, 403);

    // A binding to a role that does not exist says so in the refusal.
    apply(&admin, binding(Some("other"), "dangling", "Role", "ghost")).await;
    let e = common::api_err(other.get("x").await.unwrap_err());
    assert_eq!(
        e.message,
        format!(
            "configmaps \"x\" is forbidden: User \"{SA_USER}\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"other\": RBAC: role.rbac.authorization.k8s.io \"ghost\" not found"
        )
    );
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_that_creates_needs_create_too() {
    let server = start_rbac().await;
    setup(&server).await;
    let admin = common::client(&server);
    apply(
        &admin,
        role(
            "Role",
            Some("app"),
            "patcher",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch", "get"]}]),
        ),
    )
    .await;
    apply(&admin, binding(Some("app"), "op-patch", "Role", "patcher")).await;
    let cms: Api<ConfigMap> = Api::namespaced(sa_client(&server).await, "app");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": {"a": "1"}});
    let e = common::api_err(
        cms.patch("n", &PatchParams::apply("op"), &Patch::Apply(&cm))
            .await
            .unwrap_err(),
    );
    // The apiserver's create-on-update refusal carries only the (empty)
    // authorizer reason; the deny log names the missing permission.
    assert_eq!(
        (e.code, e.message.as_str()),
        (403, "configmaps \"n\" is forbidden: ")
    );
    let last = server.denials().pop().unwrap();
    assert!(
        last.message
            .contains("cannot create resource \"configmaps\""),
        "{}",
        last.message
    );
    apply(&admin, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "namespace": "app"}})).await;
    cms.patch("n", &PatchParams::apply("op"), &Patch::Apply(&cm))
        .await
        .unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn non_resource_urls_discovery_and_reviews() {
    let server = start_rbac().await;
    setup(&server).await;
    let token = server
        .service_account_token("app", "op", Duration::from_secs(600))
        .unwrap();
    let auth = bearer(&token);
    let h = [("Authorization", auth.as_str())];
    for path in [
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps/v1",
        "/openapi/v3",
        "/version",
    ] {
        let (code, _, _) = common::raw(server.addr(), "GET", path, &h, b"").await;
        assert_eq!(code, 200, "{path}");
    }
    let (code, _, body) = common::raw(
        server.addr(),
        "POST",
        "/localkube/v1/faults/kill",
        &h,
        b"{}",
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        format!("forbidden: User \"{SA_USER}\" cannot post path \"/localkube/v1/faults/kill\"")
    );
    assert_eq!(v["details"], json!({}));

    // A self access review answers with the same authorizer.
    let ssar = |attrs: Value| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": attrs}).to_string()
    };
    let h2 = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let body = ssar(
        json!({"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "app"}}),
    );
    let (code, _, out) = common::raw(server.addr(), "POST", path, &h2, body.as_bytes()).await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, &out["status"]), (201, &json!({"allowed": false})));
    let body = ssar(json!({"nonResourceAttributes": {"verb": "get", "path": "/apis"}}));
    let (_, _, out) = common::raw(server.addr(), "POST", path, &h2, body.as_bytes()).await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["status"]["allowed"], true);
    assert_eq!(
        out["status"]["reason"],
        "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\""
    );
    let (code, _, out) =
        common::raw(server.addr(), "POST", path, &h2, ssar(json!({})).as_bytes()).await;
    assert_eq!(code, 422, "{out}");
    // Reviews are questions, not uses.
    assert!(!server.authorizations().iter().any(|a| a.resource == "pods"));

    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "app"}});
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        &h2,
        body.to_string().as_bytes(),
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 201);
    assert_eq!(out["status"]["incomplete"], false);
    assert!(
        out["status"]["nonResourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["nonResourceURLs"]
                .as_array()
                .unwrap()
                .contains(&json!("/api")))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rbac_off_lets_service_accounts_do_everything_and_logs_nothing() {
    let server = common::start().await;
    setup(&server).await;
    let sa = sa_client(&server).await;
    Api::<Pod>::all(sa).list(&Default::default()).await.unwrap();
    assert!(server.authorizations().is_empty() && server.denials().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn admin_token_bypasses_rbac() {
    let server = common::start_with(Config {
        rbac: true,
        token: Some("admin-secret".into()),
        ..Config::default()
    })
    .await;
    let admin = client_with_token(&server, "admin-secret").await;
    setup_with(&admin).await;
    Api::<Pod>::all(admin)
        .list(&Default::default())
        .await
        .unwrap();
    let (code, _, _) = common::raw(server.addr(), "GET", "/api", &[], b"").await;
    assert_eq!(code, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn impersonation_is_authorized_then_acts_as_the_impersonated() {
    let server = start_rbac().await;
    setup(&server).await;
    // The admin may impersonate the ServiceAccount, whose grants then apply.
    let (code, _, body) = common::raw(
        server.addr(),
        "GET",
        "/api/v1/namespaces/app/pods",
        &[("Impersonate-User", SA_USER)],
        b"",
    )
    .await;
    assert_eq!(code, 403);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        format!(
            "pods is forbidden: User \"{SA_USER}\" cannot list resource \"pods\" in API group \"\" in the namespace \"app\""
        )
    );
    // The ServiceAccount may not impersonate anyone.
    let token = server
        .service_account_token("app", "op", Duration::from_secs(600))
        .unwrap();
    let auth = bearer(&token);
    let (code, _, body) = common::raw(
        server.addr(),
        "GET",
        "/api",
        &[("Authorization", &auth), ("Impersonate-User", "jane")],
        b"",
    )
    .await;
    assert_eq!(code, 403);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        format!(
            "users \"jane\" is forbidden: User \"{SA_USER}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )
    );
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api",
        &[("Impersonate-Group", "devs")],
        b"",
    )
    .await;
    assert_eq!(code, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn token_and_access_reviews_of_others_need_the_auth_delegator_role() {
    let server = start_rbac().await;
    setup(&server).await;
    let admin = common::client(&server);
    // `app/viewer`, whose token is reviewed, may list pods in `app`.
    apply(
        &admin,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer", "namespace": "app"}}),
    )
    .await;
    apply(
        &admin,
        role(
            "Role",
            Some("app"),
            "pods",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
        ),
    )
    .await;
    let mut viewer_binding = binding(Some("app"), "viewer-pods", "Role", "pods");
    viewer_binding["subjects"] =
        json!([{"kind": "ServiceAccount", "name": "viewer", "namespace": "app"}]);
    apply(&admin, viewer_binding).await;
    let viewer = server
        .service_account_token("app", "viewer", Duration::from_secs(600))
        .unwrap();
    let op = server
        .service_account_token("app", "op", Duration::from_secs(600))
        .unwrap();
    let auth = bearer(&op);
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let tokens = "/apis/authentication.k8s.io/v1/tokenreviews";
    let access = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let token_review = |token: &str| {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}).to_string()
    };
    let sar = |spec: Value| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}).to_string()
    };
    let list_pods = |ns: &str| {
        json!({"user": "system:serviceaccount:app:viewer",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:app", "system:authenticated"],
            "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": ns}})
    };
    let addr = server.addr();
    let post = |path: &'static str, body: String| async move {
        let (code, _, out) = common::raw(addr, "POST", path, &h, body.as_bytes()).await;
        (code, out)
    };

    // Without the role, op may ask neither.
    let (code, out) = post(tokens, token_review(&viewer)).await;
    assert_eq!(code, 403, "{out}");
    let (code, out) = post(access, sar(list_pods("app"))).await;
    assert_eq!(code, 403, "{out}");

    let mut delegator = binding(
        None,
        "op-auth-delegator",
        "ClusterRole",
        "system:auth-delegator",
    );
    delegator["subjects"] = json!([{"kind": "ServiceAccount", "name": "op", "namespace": "app"}]);
    apply(&admin, delegator).await;

    // A token review names the token's user and groups, and does not echo the token.
    let (code, out) = post(tokens, token_review(&viewer)).await;
    assert_eq!(code, 201, "{out}");
    assert!(!out.contains(&viewer), "the token came back: {out}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["status"]["authenticated"], true);
    assert_eq!(
        out["status"]["user"]["username"],
        "system:serviceaccount:app:viewer"
    );
    assert!(
        out["status"]["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:authenticated"))
    );
    // An unknown token is answered, unauthenticated, with why.
    let (code, out) = post(tokens, token_review("nonsense")).await;
    assert_eq!(code, 201, "{out}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["status"]["authenticated"], Value::Null);
    assert!(
        out["status"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid bearer token")
    );

    // An access review answers for the named user, by the same authorizer.
    let (code, out) = post(access, sar(list_pods("app"))).await;
    assert_eq!(code, 201, "{out}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["kind"], "SubjectAccessReview");
    assert_eq!(out["status"]["allowed"], true);
    let (_, out) = post(access, sar(list_pods("other"))).await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["status"]["allowed"], false);
    // Neither user nor group: refused, naming the field.
    let spec = json!({"resourceAttributes": {"verb": "list", "resource": "pods"}});
    let (code, out) = post(access, sar(spec)).await;
    assert_eq!(code, 422, "{out}");
    assert!(out.contains("at least one of user or group"), "{out}");
    server.shutdown().await;
}
