//! The cluster a spec trial works on, through the API: its spec written
//! as raw JSON (a step may send what the Rust type could not hold), and
//! what the oracles read back (whether a step was refused or converged,
//! the pods' revisions, the Events).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use logbook_crds::ValkeyCluster;
use serde_json::Value;

use super::NAME;
use super::servers::status_line;
use super::state::State;
use super::trials::StepOutcome;

/// The reason of the Event and the Ready condition while a data pod's
/// Valkey container fails.
pub(super) const CONTAINER_FAILING: &str = "ContainerFailing";

/// The revision a pod was made from.
fn revision_of(pod: &k8s_openapi::api::core::v1::Pod) -> Option<&String> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
}

/// One custom resource of the trials through the API, its spec as raw
/// JSON (a step may send what the Rust type could not hold).
pub(super) struct RawObject {
    api: Api<DynamicObject>,
    kind: &'static str,
    name: String,
    namespace: String,
}

impl RawObject {
    /// `name` of `kind` (a kind of `valkey.logbook.dev/v1alpha1`) in
    /// `namespace`.
    pub(super) fn new(
        client: &kube::Client,
        namespace: &str,
        kind: &'static str,
        plural: &str,
        name: &str,
    ) -> RawObject {
        let resource = ApiResource {
            group: "valkey.logbook.dev".into(),
            version: "v1alpha1".into(),
            api_version: "valkey.logbook.dev/v1alpha1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        RawObject {
            api: Api::namespaced_with(client.clone(), namespace, &resource),
            kind,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    pub(super) async fn create(&self, spec: &Value) -> Result<(), String> {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }))
        .map_err(|e| e.to_string())?;
        self.api
            .create(&PostParams::default(), &object)
            .await
            .map(|_| ())
            .map_err(|e| format!("creating {} {}: {e}", self.kind, self.name))
    }

    /// `PUT` of the object with `spec`: the new generation.
    pub(super) async fn put_spec(&self, spec: &Value) -> Result<Option<i64>, kube::Error> {
        self.put_spec_from(spec).await.map(|(_, now)| now)
    }

    /// `PUT` of the object with `spec`: the generation before and after
    /// (equal when the spec, defaults applied, did not change). A write
    /// that lost the race with the operator's status (409) is sent again
    /// on the object read anew, as `kubectl replace` is retried.
    pub(super) async fn put_spec_from(
        &self,
        spec: &Value,
    ) -> Result<(Option<i64>, Option<i64>), kube::Error> {
        let mut attempt = 0;
        loop {
            let mut object = self.api.get(&self.name).await?;
            let was = object.metadata.generation;
            if let Some(data) = object.data.as_object_mut() {
                data.insert("spec".into(), spec.clone());
            }
            match self
                .api
                .replace(&self.name, &PostParams::default(), &object)
                .await
            {
                Ok(written) => return Ok((was, written.metadata.generation)),
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The spec as stored, defaults applied.
    pub(super) async fn spec(&self) -> Option<Value> {
        self.api
            .get(&self.name)
            .await
            .ok()
            .and_then(|o| o.data.get("spec").cloned())
    }
}

/// The cluster's API: its object ([`RawObject`]) and what the oracles
/// read back.
pub(super) struct Cluster {
    pub(super) raw: RawObject,
    typed: Api<ValkeyCluster>,
    client: kube::Client,
    namespace: String,
}

impl Cluster {
    pub(super) fn new(client: &kube::Client, namespace: &str) -> Cluster {
        Cluster {
            raw: RawObject::new(client, namespace, "ValkeyCluster", "valkeyclusters", NAME),
            typed: Api::namespaced(client.clone(), namespace),
            client: client.clone(),
            namespace: namespace.to_owned(),
        }
    }

    pub(super) async fn state(&self) -> Result<State, String> {
        State::read(&self.client, &self.namespace, NAME).await
    }

    /// Waits until `generation` is refused by the operator or converged:
    /// Ready with the generation observed, and the StatefulSet's pods all
    /// on its current revision (checked here, not taken from the status).
    /// The findings: a status that said Ready before the pods were.
    pub(super) async fn settle(
        &self,
        generation: Option<i64>,
        timeout: Duration,
    ) -> (StepOutcome, Vec<String>) {
        let started = Instant::now();
        let mut findings = Vec::new();
        loop {
            if let Ok(v) = self.typed.get(NAME).await
                && let Some(status) = v.status.as_ref()
            {
                let refused = status.conditions.iter().find(|c| {
                    c.type_ == logbook_crds::v1alpha1::CONDITION_SPEC_VALID
                        && c.status == "False"
                        && c.observed_generation.is_some()
                        && c.observed_generation >= generation
                });
                if let Some(c) = refused {
                    return (StepOutcome::RefusedByOperator(c.message.clone()), findings);
                }
                let failing = status.conditions.iter().find(|c| {
                    c.type_ == logbook_crds::v1alpha1::CONDITION_READY
                        && c.reason == CONTAINER_FAILING
                        && c.observed_generation.is_some()
                        && c.observed_generation >= generation
                });
                if let Some(c) = failing
                    && self.failing_on_current_revision().await
                {
                    return (StepOutcome::FailingInPods(c.message.clone()), findings);
                }
                let observed = status.observed_generation.is_some()
                    && status.observed_generation >= generation;
                if observed && status.phase == Some(logbook_crds::ClusterPhase::Ready) {
                    match self.pods_current().await {
                        Ok(()) => return (StepOutcome::Converged(started.elapsed()), findings),
                        Err(why) => {
                            if findings.is_empty() {
                                findings.push(format!(
                                    "the status said Ready with generation {} observed while {why}",
                                    status.observed_generation.unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
            }
            if started.elapsed() > timeout {
                return (StepOutcome::Stuck(status_line(&self.typed).await), findings);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The StatefulSet's current revision, once its controller has seen
    /// its template, with the pods it selects and the replicas it wants;
    /// `Err` says what is not so.
    pub(super) async fn revision_and_pods(
        &self,
    ) -> Result<(String, Vec<k8s_openapi::api::core::v1::Pod>, i32), String> {
        let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let sts = sets
            .get(NAME)
            .await
            .map_err(|e| format!("the StatefulSet: {e}"))?;
        let generation = sts.metadata.generation;
        let status = sts.status.clone().unwrap_or_default();
        if status.observed_generation < generation {
            return Err(format!(
                "the StatefulSet's controller had observed generation {:?} of {:?}",
                status.observed_generation, generation
            ));
        }
        let revision = status.update_revision.clone().unwrap_or_default();
        let selector = sts
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let listed = pods
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("the pods: {e}"))?;
        let wanted = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        Ok((revision, listed.items, wanted))
    }

    /// Whether the StatefulSet's controller has seen its template and
    /// every pod it selects runs its current revision; `Err` says what
    /// is not so. (A pod still starting counts: readiness is the status's
    /// to judge.)
    pub(super) async fn pods_current(&self) -> Result<(), String> {
        let (revision, pods, wanted) = self.revision_and_pods().await?;
        let outdated: Vec<String> = pods
            .iter()
            .filter(|p| revision_of(p) != Some(&revision))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if !outdated.is_empty() {
            return Err(format!("pods {outdated:?} were not on revision {revision}"));
        }
        if i32::try_from(pods.len()).ok() != Some(wanted) {
            return Err(format!("{} pods ran of {wanted}", pods.len()));
        }
        Ok(())
    }

    /// Whether a pod on the StatefulSet's current revision shows its
    /// Valkey container failing (the spec's doing, not a pod on the way
    /// out that a roll is about to replace).
    pub(super) async fn failing_on_current_revision(&self) -> bool {
        let Ok((revision, pods, _)) = self.revision_and_pods().await else {
            return false;
        };
        pods.iter()
            .filter(|p| revision_of(p) == Some(&revision))
            .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
            .flatten()
            .any(|c| {
                let state = c.state.clone().unwrap_or_default();
                let ended_badly = |t: Option<
                    &k8s_openapi::api::core::v1::ContainerStateTerminated,
                >| { t.is_some_and(|t| t.exit_code != 0) };
                let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                ended_badly(state.terminated.as_ref())
                    || state.waiting.is_some_and(|w| {
                        let reason = w.reason.as_deref().unwrap_or_default();
                        reason == "CrashLoopBackOff"
                            || logbook::observe::CANNOT_START.contains(&reason)
                            || ended_badly(last)
                    })
                    || (!c.ready && ended_badly(last))
            })
    }

    /// `CONFIG GET` of each of `parameters` on every data pod (Sentinels
    /// left out): pod → directive → value, as the default user with the
    /// cluster's generated password. `Err` when the servers cannot be
    /// asked at all (no password Secret: a step that brought its own); a
    /// pod that does not answer reports nothing, which the oracle says.
    pub(super) async fn settings_on_servers(
        &self,
        parameters: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
        let (password, addrs) = self.servers().await?;
        let mut observed = BTreeMap::new();
        for (pod, addr) in addrs {
            let mut settings = BTreeMap::new();
            for p in parameters {
                let reply: Result<Vec<String>, _> = crate::conn::query_once(
                    &addr,
                    Some(&password),
                    redis::cmd("CONFIG").arg("GET").arg(p),
                    "CONFIG GET",
                    Duration::from_secs(2),
                )
                .await;
                if let Ok(reply) = reply
                    && let [key, value] = reply.as_slice()
                {
                    settings.insert(key.clone(), value.clone());
                }
            }
            observed.insert(pod, settings);
        }
        Ok(observed)
    }

    /// The cluster's generated password and its data pods' addresses
    /// (pod → `ip:6379`; Sentinels left out).
    async fn servers(&self) -> Result<(logbook::valkey::Password, Vec<(String, String)>), String> {
        use k8s_openapi::api::core::v1::{Pod, Secret};
        use logbook::resources::labels;
        let secret = Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .get_opt(&format!("{NAME}-password"))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no generated password Secret")?;
        let password = secret
            .data
            .and_then(|d| d.get("password").cloned())
            .and_then(|b| String::from_utf8(b.0).ok())
            .map(logbook::valkey::Password::new)
            .ok_or("the password Secret has no password")?;
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.namespace)
            .list(&kube::api::ListParams::default().labels(&labels::selector_string(NAME)))
            .await
            .map_err(|e| e.to_string())?;
        let addrs = pods
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let ip = p.status?.pod_ip?;
                Some((
                    p.metadata.name?,
                    format!("{ip}:{}", logbook::resources::VALKEY_PORT),
                ))
            })
            .collect();
        Ok((password, addrs))
    }

    /// The role each data pod answers with (`ROLE`'s first element:
    /// `master`, `slave`), as [`Self::settings_on_servers`] asks them.
    pub(super) async fn roles_on_servers(&self) -> Result<BTreeMap<String, String>, String> {
        let (password, addrs) = self.servers().await?;
        let mut roles = BTreeMap::new();
        for (pod, addr) in addrs {
            let reply: Result<redis::Value, _> = crate::conn::query_once(
                &addr,
                Some(&password),
                &redis::cmd("ROLE"),
                "ROLE",
                Duration::from_secs(2),
            )
            .await;
            if let Ok(redis::Value::Array(items)) = reply
                && let Some(redis::Value::BulkString(role)) = items.first()
            {
                roles.insert(pod, String::from_utf8_lossy(role).into_owned());
            }
        }
        Ok(roles)
    }

    /// How many Events of `reason` the cluster has had.
    pub(super) async fn warnings(&self, reason: &str) -> i32 {
        // The operator writes `events.k8s.io/v1` Events, one per note.
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&kube::api::ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|e| {
                        e.reason.as_deref() == Some(reason)
                            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(NAME)
                    })
                    .count()
            })
            .ok()
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// Deletes the cluster and, once its objects are gone, its volumes:
    /// the next cluster of the name starts empty (the operator keeps a
    /// deleted cluster's claims, and a pod would boot from them).
    pub(super) async fn delete_and_wait(&self, timeout: Duration) -> Result<(), String> {
        self.typed
            .delete(NAME, &DeleteParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let started = Instant::now();
        while started.elapsed() < timeout {
            let left = State::read(&self.client, &self.namespace, NAME).await?;
            let gone = self
                .typed
                .get_opt(NAME)
                .await
                .map_err(|e| e.to_string())?
                .is_none();
            let only_claims = left
                .objects
                .keys()
                .all(|k| k.starts_with("PersistentVolumeClaim/"));
            // The claims a scale-in kept are not among the objects
            // (`claims_of`): they are listed here, or a next cluster of
            // the name would boot from them.
            let claims_left = claims
                .list(&kube::api::ListParams::default())
                .await
                .map_err(|e| format!("listing the claims: {e}"))?
                .items
                .len();
            if gone && left.objects.is_empty() && claims_left == 0 {
                return Ok(());
            }
            if gone && only_claims && claims_left > 0 {
                claims
                    .delete_collection(&DeleteParams::default(), &kube::api::ListParams::default())
                    .await
                    .map_err(|e| format!("deleting the claims: {e}"))?;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!("not gone in {} s", timeout.as_secs()))
    }
}
