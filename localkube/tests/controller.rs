//! A `kube::runtime::Controller` on a test CRD, set up the way the operator
//! will be: the CRD created through the API, the controller owning
//! ConfigMaps and watching Pods by label, status written through the
//! status subresource, and the owned objects collected with their owner.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.localkube.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd"
)]
pub struct WidgetSpec {
    pub size: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    pub pods: i32,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: kube::Client,
}

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = w.namespace().unwrap();
    let name = w.name_any();
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let want: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-config"), "ownerReferences": [w.controller_owner_ref(&()).unwrap()]},
        "data": {"size": w.spec.size.to_string()}
    }))
    .unwrap();
    match cms.get_opt(&format!("{name}-config")).await? {
        None => {
            cms.create(&PostParams::default(), &want).await?;
        }
        Some(have) if have.data != want.data => {
            cms.patch(
                &format!("{name}-config"),
                &PatchParams::default(),
                &Patch::Merge(json!({"data": want.data})),
            )
            .await?;
        }
        Some(_) => {}
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let n = pods
        .list(&ListParams::default().labels(&format!("widget={name}")))
        .await?
        .items
        .len();
    let n = i32::try_from(n).unwrap();
    if w.status.as_ref().is_none_or(|s| s.pods != n) {
        let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
        widgets
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"pods": n}})),
            )
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(_w: Arc<Widget>, _e: &Error, _ctx: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test]
async fn controller_reconciles_owns_and_watches() {
    let server = common::start().await;
    let client = common::client(&server);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .watches(
            pods.clone(),
            watcher::Config::default().labels("widget"),
            |p: Pod| {
                let ns = p.namespace()?;
                p.labels()
                    .get("widget")
                    .map(|w| ObjectRef::new(w).within(&ns))
            },
        )
        .run(
            reconcile,
            error_policy,
            Arc::new(Ctx {
                client: client.clone(),
            }),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    let w = Widget::new("w", WidgetSpec { size: 3 });
    widgets.create(&PostParams::default(), &w).await.unwrap();
    common::eventually("the owned ConfigMap", || async {
        cms.get_opt("w-config").await.unwrap().is_some()
    })
    .await;
    let cm = cms.get("w-config").await.unwrap();
    assert_eq!(cm.owner_references()[0].kind, "Widget");

    // A watched pod triggers a reconcile that counts it.
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"widget": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    common::eventually("status.pods == 1", || async {
        widgets
            .get("w")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.pods == 1)
    })
    .await;

    // Deleting the owned object makes the controller recreate it.
    cms.delete("w-config", &DeleteParams::default())
        .await
        .unwrap();
    common::eventually("the ConfigMap recreated", || async {
        cms.get_opt("w-config").await.unwrap().is_some()
    })
    .await;

    // A spec change is reconciled; the status write did not bump generation.
    let before = widgets.get("w").await.unwrap().metadata.generation;
    assert_eq!(before, Some(1));
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await
        .unwrap();
    common::eventually("the ConfigMap updated", || async {
        cms.get("w-config").await.unwrap().data.unwrap()["size"] == "5"
    })
    .await;

    // Deleting the widget collects its ConfigMap.
    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    common::eventually("the ConfigMap collected", || async {
        cms.get_opt("w-config").await.unwrap().is_none()
    })
    .await;

    // Deleting the CRD stops serving the kind.
    crds.delete(&crd.metadata.name.unwrap(), &DeleteParams::default())
        .await
        .unwrap();
    task.abort();
    let e = common::api_err(widgets.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(e.code, 404);
    let _ = Widget::api_version(&());
    server.shutdown().await;
}
