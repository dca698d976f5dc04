//! The operator's side of `ValkeyOperatorDefaults` (issue 39): the objects
//! watched, each cluster's layered spec read from them, the turn a change
//! of defaults waits for (at most `maxClustersRolling` clusters rolling
//! one at once), and each defaults object's status.
//!
//! Which value wins is `crds::layers`; which events judge it is
//! `observe::defaults`. This module reads the API and counts turns.

use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex, OnceLock, PoisonError};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use logbook_crds::{
    DEFAULTS_NAME, ValkeyCluster, ValkeyOperatorDefaults, ValkeyOperatorDefaultsStatus,
    validate_defaults,
};
use serde_json::json;

use super::OperatorError;
use super::events::{Kind, Publisher};
use crate::observe::defaults::{LayeredSpec, layer_spec};

/// How long a first list of the defaults may take before a reconcile
/// gives up (and is retried): judging a spec without the defaults that
/// reach it would roll the cluster to the built-in values.
const READY_WAIT: Duration = Duration::from_secs(10);

/// How long the resource found not served is taken as such before it is
/// asked again.
const ABSENT_RECHECK: Duration = Duration::from_secs(60);

/// The defaults objects, and the clusters rolling a change of them.
pub struct DefaultsIndex {
    /// One per watch: every namespace, or the watched one and the
    /// operator's.
    stores: Vec<Store<ValkeyOperatorDefaults>>,
    /// The operator's namespace: its object reaches every cluster.
    operator_namespace: String,
    /// The ValkeyClusters as the controller sees them (their status says
    /// which roll a change of defaults); set once the controller exists.
    clusters: OnceLock<Store<ValkeyCluster>>,
    /// Clusters this instance let roll a change of defaults, by uid, until
    /// their status says they are done.
    rolling: StdMutex<HashSet<String>>,
    /// When the resource was last found not served.
    absent_since: StdMutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for DefaultsIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultsIndex")
            .field("operator_namespace", &self.operator_namespace)
            .finish_non_exhaustive()
    }
}

impl DefaultsIndex {
    /// An index reading `stores`; `operator_namespace` holds the object
    /// that reaches every cluster.
    pub fn new(stores: Vec<Store<ValkeyOperatorDefaults>>, operator_namespace: String) -> Self {
        Self {
            stores,
            operator_namespace,
            clusters: OnceLock::new(),
            rolling: StdMutex::new(HashSet::new()),
            absent_since: StdMutex::new(None),
        }
    }

    /// Gives the index the controller's ValkeyClusters.
    pub fn set_clusters(&self, clusters: Store<ValkeyCluster>) {
        let _ = self.clusters.set(clusters);
    }

    fn get(&self, namespace: &str) -> Option<Arc<ValkeyOperatorDefaults>> {
        let key = ObjectRef::new(DEFAULTS_NAME).within(namespace);
        self.stores.iter().find_map(|s| s.get(&key))
    }

    /// Whether every watch has listed its objects once, waiting up to
    /// `wait`.
    async fn ready(&self, wait: Duration) -> bool {
        let all = futures::future::join_all(self.stores.iter().map(Store::wait_until_ready));
        tokio::time::timeout(wait, all)
            .await
            .is_ok_and(|results| results.iter().all(Result::is_ok))
    }

    /// Whether the defaults can be read: their watches have listed them
    /// (`Ok(true)`), or the API server does not serve the resource at all
    /// (`Ok(false)`: CRDs older than the operator, as `helm upgrade`
    /// leaves them: said in the log, checked again a minute later, and
    /// every cluster judged with no defaults meanwhile).
    async fn usable(&self, client: &Client) -> Result<bool, OperatorError> {
        if self.ready(Duration::ZERO).await {
            return Ok(true);
        }
        let absent_lately = self
            .absent_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < ABSENT_RECHECK);
        if absent_lately {
            return Ok(false);
        }
        let api: Api<ValkeyOperatorDefaults> =
            Api::namespaced(client.clone(), &self.operator_namespace);
        match api.list(&kube::api::ListParams::default().limit(1)).await {
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tracing::warn!(
                    "the ValkeyOperatorDefaults resource is not served (its CRD is not installed: apply the chart's crds/ after an upgrade); clusters are judged without defaults"
                );
                *self
                    .absent_since
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(std::time::Instant::now());
                Ok(false)
            }
            Err(source) => Err(OperatorError::Kube {
                what: "listing the ValkeyOperatorDefaults".to_owned(),
                source,
            }),
            Ok(_) if self.ready(READY_WAIT).await => Ok(true),
            Ok(_) => Err(OperatorError::NotReady(format!(
                "the ValkeyOperatorDefaults were not listed within {} s; the clusters are judged once they are",
                READY_WAIT.as_secs()
            ))),
        }
    }

    /// The operator's defaults and those of `namespace` (none when it is
    /// the operator's own).
    fn reaching(
        &self,
        namespace: &str,
    ) -> (
        Option<Arc<ValkeyOperatorDefaults>>,
        Option<Arc<ValkeyOperatorDefaults>>,
    ) {
        let operator = self.get(&self.operator_namespace);
        let own = (namespace != self.operator_namespace)
            .then(|| self.get(namespace))
            .flatten();
        (operator, own)
    }

    /// The layered spec of `cluster`, or `None` when nothing but its own
    /// spec reaches it now or ever did (`layered_before`): then its typed
    /// spec is judged as it always was. The cluster is read again, raw,
    /// for the fields its user set (the typed object has the built-in
    /// values filled in); its generation comes with that read.
    ///
    /// # Errors
    /// The defaults not listed in time, or the raw read failing.
    pub async fn layered(
        &self,
        client: &Client,
        cluster: &ValkeyCluster,
        layered_before: bool,
    ) -> Result<Option<(ObjectMeta, LayeredSpec)>, OperatorError> {
        let namespace = cluster.namespace().unwrap_or_default();
        let name = cluster.name_any();
        let (operator, own) = if self.usable(client).await? {
            self.reaching(&namespace)
        } else {
            (None, None)
        };
        if operator.is_none() && own.is_none() && cluster.spec.plan.is_none() && !layered_before {
            return Ok(None);
        }
        let resource = ApiResource::erase::<ValkeyCluster>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let raw = api.get(&name).await.map_err(|source| OperatorError::Kube {
            what: format!("reading the spec of {namespace}/{name} as its user wrote it"),
            source,
        })?;
        // Read at v1beta1 (the hub's version), layered as v1alpha1 says it.
        let spec = logbook_crds::hub::written_spec(raw.data.get("spec")).map_err(|source| {
            OperatorError::Conversion {
                what: format!("the spec of {namespace}/{name} as its user wrote it"),
                source: Box::new(source),
            }
        })?;
        Ok(Some((
            raw.metadata,
            layer_spec(&spec, operator.as_deref(), own.as_deref()),
        )))
    }

    /// Whether cluster `uid` may take a change of its defaults now: fewer
    /// than `maxClustersRolling` (the operator's object; 1 by default)
    /// other clusters are rolling one. Taking it counts it as rolling
    /// until [`DefaultsIndex::settle`] says it is done.
    pub fn admit(&self, uid: &str) -> bool {
        let max = self
            .get(&self.operator_namespace)
            .map_or(1, |d| d.spec.effective_max_clusters_rolling());
        let mut rolling = self.rolling.lock().unwrap_or_else(PoisonError::into_inner);
        let mut others: HashSet<String> = rolling.iter().filter(|u| *u != uid).cloned().collect();
        if let Some(clusters) = self.clusters.get() {
            others.extend(clusters.state().iter().filter_map(|c| {
                let shown = c
                    .status
                    .as_ref()
                    .and_then(|s| s.defaults.as_ref())
                    .is_some_and(|d| d.rolling);
                c.uid().filter(|u| shown && u != uid)
            }));
        }
        if others.len() >= max {
            return false;
        }
        rolling.insert(uid.to_owned());
        true
    }

    /// Cluster `uid`'s status says whether it is rolling a change of its
    /// defaults: one that is not no longer counts.
    pub fn settle(&self, uid: &str, rolling: bool) {
        let mut map = self.rolling.lock().unwrap_or_else(PoisonError::into_inner);
        if rolling {
            map.insert(uid.to_owned());
        } else {
            map.remove(uid);
        }
    }
}

/// The status of a defaults object: valid or not (and why), its plans.
#[must_use]
pub fn defaults_status(d: &ValkeyOperatorDefaults, now: Time) -> ValkeyOperatorDefaultsStatus {
    let errors = validate_defaults(&d.name_any(), &d.spec);
    let (status, reason, message) = if errors.is_empty() {
        (
            "True",
            "Valid",
            "used for the clusters it reaches".to_owned(),
        )
    } else {
        (
            "False",
            "Invalid",
            format!(
                "not used; the clusters it reaches keep their spec until it is fixed: {}",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.path, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    };
    let plans: Vec<&str> = d.spec.plans.keys().map(String::as_str).collect();
    ValkeyOperatorDefaultsStatus {
        observed_generation: d.metadata.generation,
        plans: (!plans.is_empty()).then(|| plans.join(",")),
        conditions: vec![Condition {
            type_: "Valid".to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: d.metadata.generation,
            last_transition_time: now,
        }],
    }
}

/// Writes `d`'s status when it says something new, and a Warning Event
/// when it turns invalid.
///
/// # Errors
/// The status not written.
pub async fn publish_defaults_status(
    client: &Client,
    events: &Publisher,
    d: &ValkeyOperatorDefaults,
) -> Result<(), OperatorError> {
    let namespace = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let current = d.status.clone().unwrap_or_default();
    let mut status = defaults_status(d, Time(k8s_openapi::jiff::Timestamp::now()));
    let was = current.conditions.first();
    if let (Some(new), Some(old)) = (status.conditions.first_mut(), was)
        && new.status == old.status
    {
        new.last_transition_time = old.last_transition_time.clone();
    }
    if status == current {
        return Ok(());
    }
    let api: Api<ValkeyOperatorDefaults> = Api::namespaced(client.clone(), &namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .map_err(|source| OperatorError::Kube {
        what: format!("writing the status of ValkeyOperatorDefaults {namespace}/{name}"),
        source,
    })?;
    if let Some(c) = status.conditions.first()
        && c.status == "False"
        && was.is_none_or(|w| w.status != "False" || w.message != c.message)
    {
        events
            .publish(
                &kube::Resource::object_ref(d, &()),
                Kind::Warning,
                "DefaultsInvalid",
                "Validate",
                c.message.clone(),
            )
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher};
    use logbook_crds::ValkeyOperatorDefaultsSpec;

    use super::*;

    const OPERATOR_NAMESPACE: &str = "logbook-system";

    /// An index over defaults objects, each in its namespace with its
    /// `maxClustersRolling`.
    fn index(objects: &[(&str, Option<i32>)]) -> DefaultsIndex {
        let (store, mut writer) = reflector::store();
        for (namespace, max) in objects {
            let mut d = ValkeyOperatorDefaults::new(
                DEFAULTS_NAME,
                ValkeyOperatorDefaultsSpec {
                    max_clusters_rolling: *max,
                    ..ValkeyOperatorDefaultsSpec::default()
                },
            );
            d.metadata.namespace = Some((*namespace).to_owned());
            writer.apply_watcher_event(&watcher::Event::Apply(d));
        }
        DefaultsIndex::new(vec![store], OPERATOR_NAMESPACE.to_owned())
    }

    #[test]
    fn max_clusters_rolling_is_how_many_clusters_roll_a_change_of_defaults_at_once() {
        let two = index(&[(OPERATOR_NAMESPACE, Some(2))]);
        assert!(two.admit("a"));
        assert!(two.admit("b"));
        assert!(!two.admit("c"), "a third cluster waits while two roll");
        // A cluster rolling already does not wait for itself.
        assert!(two.admit("a"));
        // One done, the one waiting takes its turn, and the next waits.
        two.settle("a", false);
        assert!(two.admit("c"));
        assert!(!two.admit("a"));

        let one = index(&[(OPERATOR_NAMESPACE, Some(1))]);
        assert!(one.admit("a"));
        assert!(!one.admit("b"), "a second cluster waits while one rolls");
        one.settle("a", false);
        assert!(one.admit("b"));

        // Unset, or set in a namespace's object (read from the operator's
        // only): one at a time.
        for objects in [
            vec![(OPERATOR_NAMESPACE, None)],
            vec![("shop", Some(2))],
            vec![(OPERATOR_NAMESPACE, None), ("shop", Some(2))],
        ] {
            let unset = index(&objects);
            assert!(unset.admit("a"), "{objects:?}");
            assert!(!unset.admit("b"), "{objects:?}");
        }
    }
}
