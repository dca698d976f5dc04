//! A tenant with rights in one namespace only (the Role a platform gives
//! a team: every Logbook resource, Secrets, ConfigMaps and pods of `dev`,
//! nothing of `prod`) names, from its own namespace, a cluster it has no
//! rights on, every way a spec can: a standby's source, a ValkeyUser's
//! cluster, a ValkeyBackup's cluster. The operator, which may read every
//! namespace, must lend it none of that: nothing of `prod` is read into
//! `dev`, nothing is changed on `prod`'s servers. Run on localkube and on
//! the real control plane with its real authorizer
//! (`LOGBOOK_E2E_CONTROL_PLANE=kubernetes`, `make test-kubernetes`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use logbook_crds::{ValkeyBackup, ValkeyCluster, ValkeyUser};
use operator_common::*;
use serde_json::json;

const PROD: &str = "prod";
const DEV: &str = "dev";

/// The ServiceAccount `dev:team` with every right a team has in `dev`
/// and none elsewhere; its token.
async fn tenant_token(client: &kube::Client) -> String {
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(client.clone(), DEV)
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<Role>::namespaced(client.clone(), DEV)
        .create(&pp, &serde_json::from_value(json!({
            "metadata": {"name": "team"},
            "rules": [
                {"apiGroups": ["valkey.logbook.dev"], "resources": ["*"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["secrets", "configmaps", "pods", "services"], "verbs": ["*"]},
            ],
        })).unwrap())
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), DEV)
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "team"},
                "subjects": [{"kind": "ServiceAccount", "name": "team", "namespace": DEV}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    service_account_token(client, DEV, "team").await
}

/// `prod/shop`'s password and its primary's address.
async fn prod_primary(env: &Env) -> (String, String) {
    let vkc = Api::<ValkeyCluster>::namespaced(env.client.clone(), PROD)
        .get("shop")
        .await
        .unwrap();
    let primary = primary(&vkc);
    let ip = Api::<Pod>::namespaced(env.client.clone(), PROD)
        .get(&primary)
        .await
        .unwrap()
        .status
        .and_then(|s| s.pod_ip)
        .unwrap();
    let secret = Api::<Secret>::namespaced(env.client.clone(), PROD)
        .get("shop-password")
        .await
        .unwrap();
    let password = String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap();
    (password, format!("{ip}:{PORT}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_of_one_namespace_reaches_nothing_outside_it() {
    let env = Env::start("tenant").await;
    for ns in [PROD, DEV] {
        Api::<Namespace>::all(env.client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
    }
    let prod: Api<ValkeyCluster> = Api::namespaced(env.client.clone(), PROD);
    prod.create(
        &PostParams::default(),
        &serde_yaml::from_str(&replication_yaml("shop", 2)).unwrap(),
    )
    .await
    .unwrap();
    env.eventually(Duration::from_secs(90), "prod/shop Ready", || {
        let prod = prod.clone();
        async move {
            prod.get_opt("shop")
                .await
                .ok()
                .flatten()
                .is_some_and(|v| is_ready(&v, 2))
        }
    })
    .await;
    let (prod_password, prod_primary_addr) = prod_primary(&env).await;
    let prod_replication = Api::<Secret>::namespaced(env.client.clone(), PROD)
        .get("shop-internal")
        .await
        .unwrap()
        .data
        .unwrap()["replication"]
        .0
        .clone();

    // The tenant, as the API server knows it.
    let token = tenant_token(&env.client).await;
    let mut config = env.conn.clone();
    config.auth_info.token = Some(token.into());
    let tenant = kube::Client::try_from(config).unwrap();
    // The authorizer is real: prod is out of its reach directly.
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(forbidden(
        Api::<Secret>::namespaced(tenant.clone(), PROD)
            .list(&ListParams::default())
            .await
            .map(drop)
    ));
    assert!(forbidden(
        Api::<ValkeyCluster>::namespaced(tenant.clone(), PROD)
            .get("shop")
            .await
            .map(drop)
    ));

    // 1. A standby of prod/shop, made in dev by the tenant.
    let dev_clusters: Api<ValkeyCluster> = Api::namespaced(tenant.clone(), DEV);
    dev_clusters
        .create(
            &PostParams::default(),
            &serde_yaml::from_str(
                "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: copy\nspec:\n  topology: Replication\n  replicas: 2\n  replicateFrom:\n    cluster:\n      name: shop\n      namespace: prod\n",
            )
            .unwrap(),
        )
        .await
        .unwrap();
    // 2. A ValkeyUser of dev naming a cluster `shop` (dev has none).
    let user: ValkeyUser = serde_yaml::from_str(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyUser\nmetadata:\n  name: intruder\nspec:\n  cluster: shop\n  passwordSecret:\n    name: intruder\n    key: password\n  commands: ['+@all']\n  keys: ['*']\n",
    )
    .unwrap();
    Api::<Secret>::namespaced(tenant.clone(), DEV)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "intruder"},
                "stringData": {"password": "intruderpassword1"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    Api::<ValkeyUser>::namespaced(tenant.clone(), DEV)
        .create(&PostParams::default(), &user)
        .await
        .unwrap();
    // 3. A ValkeyBackup of dev naming `shop`.
    let backup: ValkeyBackup = serde_yaml::from_str(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyBackup\nmetadata:\n  name: steal\nspec:\n  cluster: shop\n",
    )
    .unwrap();
    Api::<ValkeyBackup>::namespaced(tenant.clone(), DEV)
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();

    // The standby is refused, saying why, in its status.
    env.eventually(
        Duration::from_secs(60),
        "dev/copy refused by its source",
        || {
            let dev_clusters = dev_clusters.clone();
            async move {
                dev_clusters
                    .get("copy")
                    .await
                    .ok()
                    .and_then(|v| v.status)
                    .and_then(|s| s.standby)
                    .is_some_and(|s| {
                        s.phase == "SourceUnreadable" && s.message.contains("standbyNamespaces")
                    })
            }
        },
    )
    .await;
    // The user's status says its cluster is not there.
    let users: Api<ValkeyUser> = Api::namespaced(tenant.clone(), DEV);
    env.eventually(
        Duration::from_secs(30),
        "dev/intruder finds no cluster",
        || {
            let users = users.clone();
            async move {
                users
                    .get("intruder")
                    .await
                    .ok()
                    .and_then(|u| u.status)
                    .and_then(|s| s.message)
                    .is_some_and(|m| m.contains("not found"))
            }
        },
    )
    .await;
    // Given time to do harm, none is done.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_no_secret_holds(
        &env.client,
        DEV,
        &prod_replication,
        "prod's replication password",
    )
    .await;
    let mut con = connect(&prod_primary_addr, &prod_password).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        info.contains("connected_slaves:1\r"),
        "prod/shop's primary feeds a replica it does not own: {info}"
    );
    let acl: Vec<String> = redis::cmd("ACL")
        .arg("LIST")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        !acl.iter().any(|l| l.contains("intruder")),
        "dev's ValkeyUser is on prod/shop: {acl:?}"
    );
    let steal = Api::<ValkeyBackup>::namespaced(tenant.clone(), DEV)
        .get("steal")
        .await
        .unwrap();
    assert!(
        steal.status.as_ref().and_then(|s| s.phase).is_none(),
        "dev's backup of `shop` was taken up: {:?}",
        steal.status
    );
    let prod_status = prod.get("shop").await.unwrap().status.unwrap();
    assert!(
        prod_status
            .backup
            .as_ref()
            .is_none_or(|b| b.last_completed.is_none() && b.running.is_none()),
        "prod/shop was backed up: {:?}",
        prod_status.backup
    );
    env.finish().await;
}
