//! The operator under the Helm chart's own RBAC: every end-to-end test's
//! local API server enforces RBAC, the chart's ServiceAccount, Roles,
//! ClusterRoles and bindings are rendered by the real `helm template` and
//! applied, and every operator (in-process or a child process) calls the
//! API with that ServiceAccount's token. The tests themselves act as the
//! cluster admin.
//!
//! A permission the chart lacks is a 403 the operator gets, and
//! [`Env::finish`](super::Env::finish) fails the test on any 403 the
//! operator got, naming each. With `LOGBOOK_RBAC_USAGE=<dir>`, the
//! permissions the operator used are written there, one file per test, for
//! `scripts/rbac-usage.sh` to compare with the chart's rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use logbook_localkube::RunningServer;
use serde::Deserialize;

/// The chart's release name in the tests, which is also its ServiceAccount's.
pub const RELEASE: &str = "logbook";

/// The operator's identity as the API server sees it.
pub fn operator_user(namespace: &str) -> String {
    format!("system:serviceaccount:{namespace}:{RELEASE}")
}

fn helm() -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/helm");
    assert!(local.exists(), "helm not found: run `make setup`");
    local
}

/// The chart's ServiceAccount and RBAC objects for a release in
/// `namespace`, as `helm template` renders them (every namespace watched,
/// the web UI on).
pub fn render(namespace: &str) -> String {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/logbook");
    let out = Command::new(helm())
        .args(["template", RELEASE])
        .arg(&chart)
        .args(["--namespace", namespace])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/rbac.yaml"])
        // The web UI's reviews (the ClusterRoleBinding of
        // system:auth-delegator), which a test of the UI needs.
        .args(["--set", "ui.enabled=true"])
        .args(["--show-only", "templates/ui.yaml"])
        // The validating webhook's permissions (its configuration a test
        // makes itself, calling the operator by address).
        .args(["--show-only", "templates/webhook.yaml"])
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("logbook-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("logbook-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("logbook-helm-data"),
        )
        .output()
        .expect("running helm");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A day's token of the chart's ServiceAccount in `namespace`, from the
/// API server's TokenRequest API.
pub async fn token_request(client: &kube::Client, namespace: &str) -> String {
    service_account_token(client, namespace, RELEASE).await
}

/// A day's token of the ServiceAccount `namespace/name`, from the API
/// server's TokenRequest API.
pub async fn service_account_token(client: &kube::Client, namespace: &str, name: &str) -> String {
    let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 24 * 3600}});
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
    ))
    .header("content-type", "application/json")
    .body(body.to_string().into_bytes())
    .unwrap();
    let reply: serde_json::Value = client.request(request).await.unwrap();
    reply["status"]["token"].as_str().unwrap().to_owned()
}

/// Applies the chart's ServiceAccount and RBAC for `namespace` as the
/// admin.
pub async fn install(client: &kube::Client, namespace: &str) {
    for doc in serde_yaml::Deserializer::from_str(&render(namespace)) {
        let value = serde_yaml::Value::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap().to_owned();
        let ns = value["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace)
            .to_owned();
        let json = serde_json::to_value(&value).unwrap();
        match kind.as_str() {
            "ServiceAccount" => {
                create::<ServiceAccount>(Api::namespaced(client.clone(), &ns), json).await;
            }
            "Role" => create::<Role>(Api::namespaced(client.clone(), &ns), json).await,
            "RoleBinding" => {
                create::<RoleBinding>(Api::namespaced(client.clone(), &ns), json).await
            }
            "ClusterRole" => create::<ClusterRole>(Api::all(client.clone()), json).await,
            "ClusterRoleBinding" => {
                create::<ClusterRoleBinding>(Api::all(client.clone()), json).await;
            }
            // The UI's and the webhook's Services: no Deployment here to
            // select; the webhook's configuration is the test's to make.
            "Service" | "ValidatingWebhookConfiguration" => {}
            other => panic!("the chart's RBAC templates rendered a {other}"),
        }
    }
}

/// Creates the object `json` describes through `api`.
async fn create<K>(api: Api<K>, json: serde_json::Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json).unwrap(),
    )
    .await
    .unwrap();
}

/// Fails when the operator was refused anything, naming each refusal; and
/// records what it was allowed when `LOGBOOK_RBAC_USAGE` names a directory.
pub fn check(server: &RunningServer, namespace: &str, test: &str) {
    let user = operator_user(namespace);
    if let Some(dir) = std::env::var_os("LOGBOOK_RBAC_USAGE") {
        let lines: Vec<String> = server
            .authorizations()
            .iter()
            .filter(|a| a.user == user)
            .map(|a| format!("{}\t{}\t{}", a.verb, a.group, a.resource))
            .collect();
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{test}.tsv")), lines.join("\n") + "\n").unwrap();
    }
    let denied: Vec<String> = server
        .denials()
        .into_iter()
        .filter(|d| d.access.user == user)
        .map(|d| d.message)
        .collect();
    assert!(
        denied.is_empty(),
        "the operator was refused {} request(s) under the chart's RBAC \
         (charts/logbook/templates/_rules.tpl lacks a rule):\n{}",
        denied.len(),
        denied.join("\n")
    );
}

/// A ServiceAccount `name` in `namespace` that may read ValkeyClusters,
/// pods and ConfigMaps in `readable` only, and a day's token of it.
pub async fn viewer(client: &kube::Client, namespace: &str, name: &str, readable: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use serde_json::json;
    let pp = PostParams::default();
    for ns in [namespace, readable] {
        let _ = Api::<Namespace>::all(client.clone())
            .create(
                &pp,
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await;
    }
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<Role>::namespaced(client.clone(), readable)
        .create(&pp, &serde_json::from_value(json!({
            "metadata": {"name": name},
            "rules": [
                {"apiGroups": ["valkey.logbook.dev"], "resources": ["valkeyclusters"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]},
            ],
        })).unwrap())
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), readable)
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    service_account_token(client, namespace, name).await
}

/// Fails naming the Secret and key when any Secret of `namespace` holds
/// `value` (a password of another namespace, say, which `what` names).
pub async fn assert_no_secret_holds(
    client: &kube::Client,
    namespace: &str,
    value: &[u8],
    what: &str,
) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    for secret in secrets.list(&Default::default()).await.unwrap() {
        for (key, held) in secret.data.unwrap_or_default() {
            assert_ne!(
                held.0,
                value,
                "{what} in {namespace}'s Secret {} (key {key})",
                secret.metadata.name.clone().unwrap_or_default()
            );
        }
    }
}
