//! The reconciler: feeds what the API shows into the journal and lets the
//! runtime act. It computes nothing itself. Deletion runs the finalizer:
//! `ClusterDeleted` is journaled, the owned objects are deleted (PVCs only
//! when the cluster carries `valkey.logbook.dev/delete-pvcs-on-delete:
//! "true"`), the journal stays.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use logbook_crds::ValkeyCluster;
use logbook_journal::Event;

use super::error::OperatorError;
use super::{Context, FINALIZER};
use crate::actuate::{Target, delete_owned, read_password};
use crate::observe::{observe_pods, observe_spec, observe_statefulset, observe_switchover_request};
use crate::resources::{ClusterMeta, labels, statefulset_name};

/// How often a quiet cluster is reconciled anyway (reads only; a
/// converged cluster writes nothing).
const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one ValkeyCluster.
///
/// # Errors
/// [`OperatorError`]; the controller retries after [`error_policy`].
pub async fn reconcile(
    obj: Arc<ValkeyCluster>,
    ctx: Arc<Context>,
) -> Result<Action, OperatorError> {
    let ns = obj.namespace().ok_or(OperatorError::MissingMeta)?;
    let api: Api<ValkeyCluster> = Api::namespaced(ctx.deps.client.clone(), &ns);
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(obj, ctx.clone()).await,
            FinalizerEvent::Cleanup(obj) => cleanup(obj, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(err)
        | kube::runtime::finalizer::Error::CleanupFailed(err) => err,
        other => OperatorError::Finalizer(other.to_string()),
    })
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy(obj: Arc<ValkeyCluster>, err: &OperatorError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %obj.name_any(), error = %err, label = err.metric_label(), "reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

async fn apply(obj: Arc<ValkeyCluster>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let meta = ClusterMeta::from_cluster(&obj).ok_or(OperatorError::MissingMeta)?;
    let handle = ctx.handle(&meta, obj.object_ref(&())).await?;
    let mut rt = handle.lock().await;
    let client = ctx.deps.client.clone();
    let ns = meta.namespace.as_str();
    // The spec and the switchover request.
    let mut events = observe_spec(&rt.state, &obj);
    events.extend(observe_switchover_request(&rt.state, &obj));
    rt.record(events, None).await?;
    rt.sync_policy().await?;
    // The pods and the StatefulSet.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let listed = pods
        .list(&ListParams::default().labels(&labels::selector_string(&meta.name)))
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("listing the pods of {ns}/{}", meta.name),
            source,
        })?;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let sts = sets
        .get_opt(&statefulset_name(&meta.name))
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("reading the StatefulSet of {ns}/{}", meta.name),
            source,
        })?;
    let mut events = observe_pods(&rt.state, &listed.items);
    events.extend(observe_statefulset(&rt.state, sts.as_ref()));
    rt.record(events, None).await?;
    // The password (read each reconcile, so a rotated Secret is picked up).
    if let Some(Ok(spec)) = rt.state.desired_spec() {
        let target = Target {
            meta: &meta,
            spec: &spec,
            state: &rt.state,
        };
        match read_password(&client, target).await {
            Ok(password) => rt.set_password(password).await,
            Err(err) => {
                tracing::debug!(cluster = %rt.cluster(), %err, "password not available yet")
            }
        }
    }
    rt.act().await?;
    rt.publish_status(obj.status.as_ref(), ctx.backend).await?;
    Ok(Action::requeue(RESYNC))
}

async fn cleanup(obj: Arc<ValkeyCluster>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let meta = ClusterMeta::from_cluster(&obj).ok_or(OperatorError::MissingMeta)?;
    let handle = ctx.handle(&meta, obj.object_ref(&())).await?;
    {
        let mut rt = handle.lock().await;
        if !rt.state.deleted {
            rt.record(vec![Event::ClusterDeleted], None).await?;
        }
    }
    ctx.forget(&meta.uid).await;
    let delete_pvcs = obj
        .annotations()
        .get(labels::DELETE_PVCS)
        .is_some_and(|v| v == "true");
    let deleted = delete_owned(&ctx.deps.client, &meta, delete_pvcs).await?;
    tracing::info!(cluster = %format!("{}/{}", meta.namespace, meta.name), deleted = ?deleted, "cluster deleted; journal kept");
    Ok(Action::await_change())
}
