//! Kubernetes actions: server-side apply of the owned objects under the
//! `logbook` field manager, role labels, the boot ConfigMap, pod deletion
//! for a roll, and the switchover annotation. Every write is skipped when
//! the object already says what it must (no pointless writes).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Client, Resource};
use logbook_crds::{Topology, ValkeyCluster};
use logbook_journal::projection::FingerprintKeyView;
use logbook_journal::{Event, Role};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::secret_errors::secret_write_err;
use super::{ActError, Done, Target};
use crate::observe::freshness;
use crate::resources::{
    self, ClusterMeta, FIELD_MANAGER, build_boot_config_map, build_client_service,
    build_config_map, build_connection_secret, build_headless_service, build_password_secret,
    build_pdb, build_read_service, build_sentinel_config_map, build_sentinel_headless_service,
    build_sentinel_pdb, build_sentinel_service, build_sentinel_statefulset, build_statefulset,
    generate_password, labels,
};
use crate::valkey::{FingerprintKey, Password};

pub(super) fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ActError {
    let what = what.into();
    move |source| ActError::Kube { what, source }
}

/// [`apply`], for the other actuators.
pub(super) async fn apply_object<K>(client: &Client, ns: &str, obj: &K) -> Result<(), ActError>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    <K as Resource>::DynamicType: Default,
{
    apply(client, ns, obj).await.map(drop)
}

/// Server-side applies `obj` (forcing ownership of the fields it sets).
pub(super) async fn apply<K>(client: &Client, ns: &str, obj: &K) -> Result<K, ActError>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    <K as Resource>::DynamicType: Default,
{
    apply_as(client, ns, obj, FIELD_MANAGER).await
}

/// [`apply`] as the field manager `manager`: the fields it owns are those
/// it sent last, whatever another manager owns in the same object.
pub(super) async fn apply_as<K>(
    client: &Client,
    ns: &str,
    obj: &K,
    manager: &str,
) -> Result<K, ActError>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    <K as Resource>::DynamicType: Default,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let what = format!("applying {kind} {ns}/{name}");
    let sent = api
        .patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(obj),
        )
        .await;
    match sent {
        Ok(applied) => Ok(applied),
        // A refusal of a Secret may quote its data.
        Err(err) if kind == "Secret" => Err(secret_write_err(what)(err)),
        Err(err) => Err(kube_err(what)(err)),
    }
}

/// The data-plane password of the cluster, from its Secret; `None` when
/// authentication is off.
///
/// # Errors
/// [`ActError::NotYet`] when the Secret or key does not exist (yet);
/// API errors.
pub async fn read_password(
    client: &Client,
    target: Target<'_>,
) -> Result<Option<Password>, ActError> {
    Ok(read_password_with_meta(client, target)
        .await?
        .map(|(password, _)| password))
}

/// [`read_password`], with the Secret's metadata: its resourceVersion
/// says how new the read is.
///
/// # Errors
/// As [`read_password`].
pub async fn read_password_with_meta(
    client: &Client,
    target: Target<'_>,
) -> Result<Option<(Password, ObjectMeta)>, ActError> {
    let Some(secret_ref) = target
        .spec
        .auth
        .effective_password_secret(&target.meta.name)
    else {
        return Ok(None);
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &target.meta.namespace);
    let what = format!(
        "reading Secret {}/{}",
        target.meta.namespace, secret_ref.name
    );
    let secret = api
        .get_opt(&secret_ref.name)
        .await
        .map_err(kube_err(what))?;
    let meta = secret
        .as_ref()
        .map(|s| s.metadata.clone())
        .unwrap_or_default();
    let value = secret
        .and_then(|s| s.data)
        .and_then(|d| d.get(&secret_ref.key).cloned())
        .ok_or_else(|| {
            ActError::NotYet(format!(
                "Secret {}/{} has no key {} (yet)",
                target.meta.namespace, secret_ref.name, secret_ref.key
            ))
        })?;
    let text = String::from_utf8(value.0).map_err(|_| {
        ActError::Refused(format!(
            "Secret {}/{} key {} is not UTF-8 text",
            target.meta.namespace, secret_ref.name, secret_ref.key
        ))
    })?;
    Ok(Some((Password::new(text), meta)))
}

/// Applies every object of the spec: password Secret (generated once),
/// connection Secret, ConfigMap, Services, StatefulSet, PDB.
///
/// `restart` is the restart request a `RestartPods` stamps on the pod
/// templates; `None` keeps the last one carried out (the projection's
/// `restarted_at`), so that no other apply changes their revision.
pub async fn apply_resources(
    client: &Client,
    target: Target<'_>,
    generation: i64,
    restart: Option<&str>,
) -> Result<Done, ActError> {
    let restarted_at = restart.or(target.state.restarted_at.as_deref());
    let meta = target.meta;
    let spec = target.spec;
    let ns = meta.namespace.as_str();
    let password = ensure_password(client, target).await?;
    // TLS: cert-manager is asked for the certificate; the CA goes in the
    // connection Secret once the certificate Secret holds it.
    if let Some(logbook_crds::CertSource::CertManager(issuer)) = spec.tls.source() {
        request_certificate(client, target, &issuer).await?;
    }
    // Before any pod changes: a ServiceMonitor the API server cannot
    // serve refuses the spec with nothing rolled.
    super::service_monitor::reconcile_service_monitor(client, meta, spec).await?;
    let ca = read_ca_pem(client, target).await?;
    let connection = build_connection_secret(
        meta,
        spec,
        password.as_ref().map(Password::expose),
        ca.as_deref(),
        &target.state.external,
    );
    apply(client, ns, &connection).await?;
    let removed = prune_connection_secrets(
        client,
        meta,
        connection.metadata.name.as_deref().unwrap_or_default(),
    )
    .await?;
    ensure_internal_secret(client, target).await?;
    // Journaled with the outcome, so that the key is not asked for again.
    let mut events: Vec<Event> = fingerprint_key_there(target).into_iter().collect();
    let (config, hash) = build_config_map(meta, spec);
    apply(client, ns, &config).await?;

    apply(client, ns, &build_headless_service(meta, spec)).await?;
    apply(client, ns, &build_client_service(meta, spec)).await?;
    if spec.topology != Topology::Standalone {
        apply(client, ns, &build_read_service(meta, spec)).await?;
    }
    super::external_objects::apply_objects(client, target).await?;
    match resources::build_metrics_service(meta, spec) {
        Some(service) => {
            apply(client, ns, &service).await?;
        }
        None => {
            delete_named::<Service>(client, ns, &resources::metrics_service_name(&meta.name))
                .await?;
        }
    }
    let mut statefulset = build_statefulset(meta, spec, &hash);
    resources::stamp_restart(&mut statefulset, restarted_at);
    // Asleep (its data made durable first): no pod runs.
    let asleep = resources::hibernated(spec, target.state);
    if asleep {
        resources::scale_to_zero(&mut statefulset);
    }
    if spec.restore_from.is_some() {
        super::backup::publish_restore_plan(client, target).await?;
        resources::restore::add_restore_init(&mut statefulset, meta, spec);
    }
    // Its claim templates as they are (immutable: one made before the
    // ownership annotation keeps its own; its claims are annotated below).
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let sts_name = resources::statefulset_name(&meta.name);
    if let Some(existing) = sets
        .get_opt(&sts_name)
        .await
        .map_err(kube_err(format!("reading StatefulSet {ns}/{sts_name}")))?
    {
        resources::keep_claim_templates(&mut statefulset, &existing);
    }
    // The StatefulSet as applied: a new template bumps its generation
    // ahead of what its controller has observed, so the revision pods
    // must run is not known until the controller computes it. Journaled
    // with the outcome, so that no status between this write and the next
    // observation calls the pods on the old revision current.
    let applied = apply(client, ns, &statefulset).await?;
    events.extend(crate::observe::observe_statefulset(
        target.state,
        Some(&applied),
    ));
    events.extend(crate::observe::observe_binding(
        target.state,
        &meta.name,
        Some(&applied),
    ));
    let marked = super::ownership::mark_claims(client, meta).await?;
    apply_pdb_and_network_policy(client, meta, spec).await?;
    // The Sentinels after the data objects: they monitor the data pods,
    // and read the boot ConfigMap the data pods also boot from.
    if spec.topology.uses_sentinel() {
        apply_sentinels(client, meta, spec, asleep, restarted_at).await?;
    }
    let removed = if removed.is_empty() {
        String::new()
    } else {
        format!("; removed the old connection Secret {}", removed.join(", "))
    };
    let marked = if marked.is_empty() {
        String::new()
    } else {
        format!("; annotated the claims {}", marked.join(", "))
    };
    let stamped = restart.map_or_else(String::new, |at| {
        format!(
            "; pod templates stamped {}={at}: every pod rolls once",
            labels::RESTARTED_AT
        )
    });
    Ok(Done {
        detail: format!(
            "applied the objects of generation {generation} (config hash {hash}, {}){removed}{marked}{stamped}",
            if asleep {
                "0 pods: hibernated".to_owned()
            } else {
                format!("{} pods", spec.effective_replicas())
            }
        ),
        events,
        password,
    })
}

/// The addresses clients outside reach the cluster at, while the spec
/// asks for external access (what its certificate must also name).
pub(super) fn external_hosts(target: Target<'_>) -> Vec<String> {
    if target.spec.external_access.enabled {
        target.state.external.hosts()
    } else {
        Vec::new()
    }
}

/// The cluster's password: the Secret the spec names, or the operator's
/// generated one (made once, then applied again with what it holds, so
/// that it carries the spec's labels and annotations as they are now).
async fn ensure_password(
    client: &Client,
    target: Target<'_>,
) -> Result<Option<Password>, ActError> {
    let meta = target.meta;
    let spec = target.spec;
    let ns = meta.namespace.as_str();
    Ok(match read_password(client, target).await {
        // A generated password's Secret is the operator's: applied again
        // with what it holds, so that it carries the spec's labels and
        // annotations as they are now, as every other object does.
        Ok(Some(pw)) if spec.auth.password_secret.is_none() => {
            if let Some(secret) = build_password_secret(meta, spec, pw.expose()) {
                apply(client, ns, &secret).await?;
            }
            Some(pw)
        }
        Ok(pw) => pw,
        Err(ActError::NotYet(why)) if spec.auth.password_secret.is_none() => {
            tracing::debug!(cluster = %meta.name, %why, "generating the password Secret");
            let generated = generate_password()
                .map_err(|e| ActError::NotYet(format!("cannot generate a password: {e}")))?;
            if let Some(secret) = build_password_secret(meta, spec, &generated) {
                apply(client, ns, &secret).await?;
            }
            Some(Password::new(generated))
        }
        Err(err) => return Err(err),
    })
}

/// The PodDisruptionBudget and the NetworkPolicy, each removed when the
/// spec no longer asks for it.
async fn apply_pdb_and_network_policy(
    client: &Client,
    meta: &resources::ClusterMeta,
    spec: &logbook_crds::ValkeyClusterSpec,
) -> Result<(), ActError> {
    let ns = meta.namespace.as_str();
    // The PodDisruptionBudget; removed when the spec no longer asks for
    // one (a stale one would go on blocking evictions and node drains).
    match build_pdb(meta, spec) {
        Some(pdb) => {
            apply(client, ns, &pdb).await?;
        }
        None => {
            delete_named::<PodDisruptionBudget>(client, ns, &resources::pdb_name(&meta.name))
                .await?;
        }
    }
    // The NetworkPolicy, admitting the operator from its own namespace (a
    // client's default namespace is the one it runs in); removed when the
    // spec no longer asks for one.
    match resources::build_network_policy(meta, spec, client.default_namespace()) {
        Some(policy) => {
            apply(client, ns, &policy).await?;
        }
        None => {
            delete_named::<NetworkPolicy>(client, ns, &resources::network_policy_name(&meta.name))
                .await?;
        }
    }
    Ok(())
}

/// The Sentinels' ConfigMap, Services, StatefulSet (no pod while the
/// cluster is asleep) and PodDisruptionBudget.
async fn apply_sentinels(
    client: &Client,
    meta: &resources::ClusterMeta,
    spec: &logbook_crds::ValkeyClusterSpec,
    asleep: bool,
    restarted_at: Option<&str>,
) -> Result<(), ActError> {
    let ns = meta.namespace.as_str();
    let (sentinel_config, sentinel_hash) = build_sentinel_config_map(meta, spec);
    apply(client, ns, &sentinel_config).await?;
    apply(client, ns, &build_sentinel_headless_service(meta, spec)).await?;
    apply(client, ns, &build_sentinel_service(meta, spec)).await?;
    let mut sentinels = build_sentinel_statefulset(meta, spec, &sentinel_hash);
    resources::stamp_restart(&mut sentinels, restarted_at);
    if asleep {
        resources::scale_to_zero(&mut sentinels);
    }
    apply(client, ns, &sentinels).await?;
    apply(client, ns, &build_sentinel_pdb(meta, spec)).await?;
    Ok(())
}

/// Deletes the cluster's connection Secrets but `current`: the ones this
/// operator wrote (owned by the cluster, with its labels and a connection
/// URL) under a `connectionSecret` since renamed, each of which would go on
/// holding the password. Returns their names.
///
/// # Errors
/// [`ActError::Kube`] when the Secrets cannot be listed or one deleted.
async fn prune_connection_secrets(
    client: &Client,
    meta: &ClusterMeta,
    current: &str,
) -> Result<Vec<String>, ActError> {
    let ns = meta.namespace.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&labels::selector_string(&meta.name));
    let secrets = api.list(&lp).await.map_err(kube_err(format!(
        "listing the Secrets of {ns}/{}",
        meta.name
    )))?;
    let mut removed = Vec::new();
    for secret in secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let ours = secret
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == meta.uid);
        let connection = secret
            .data
            .as_ref()
            .is_some_and(|d| d.contains_key(resources::CONNECTION_URL_KEY));
        if name != current && ours && connection {
            delete_named::<Secret>(client, ns, &name).await?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Applies the connection Secret with `password` (after the cluster's
/// password changed and every node takes the new one).
pub(super) async fn apply_connection_secret(
    client: &Client,
    target: Target<'_>,
    password: &Password,
) -> Result<(), ActError> {
    let ca = read_ca_pem(client, target).await?;
    let secret = build_connection_secret(
        target.meta,
        target.spec,
        Some(password.expose()),
        ca.as_deref(),
        &target.state.external,
    );
    apply(client, &target.meta.namespace, &secret)
        .await
        .map(drop)
}

/// The internal users' passwords and the cluster's fingerprint key
/// (`<name>-internal`): generated once, a key missing (or a fingerprint key
/// too short to use) added, none ever replaced (every pod holds the
/// passwords; every fingerprint journaled since was computed with the
/// key). Whether it wrote.
async fn ensure_internal_secret(client: &Client, target: Target<'_>) -> Result<bool, ActError> {
    use resources::internal_users::{FINGERPRINT_KEY, INTERNAL_USERS};
    let meta = target.meta;
    let ns = meta.namespace.as_str();
    let name = resources::internal_users::internal_secret_name(&meta.name);
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
    let mut passwords = std::collections::BTreeMap::new();
    let labels = existing.as_ref().and_then(|s| s.metadata.labels.clone());
    let annotations = existing
        .as_ref()
        .and_then(|s| s.metadata.annotations.clone());
    let data = existing.and_then(|s| s.data).unwrap_or_default();
    let mut missing = false;
    for user in INTERNAL_USERS {
        let kept = data
            .get(user.key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        let password = match kept {
            Some(p) => p,
            None => {
                missing = true;
                match (&target.spec.replicate_from, user.name) {
                    // A standby's replicas and its leader's link to the
                    // source authenticate alike: its replication password
                    // is the source's.
                    (Some(from), resources::internal_users::REPLICATION_USER) => {
                        source_replication_password(client, ns, from).await?
                    }
                    _ => generate_password().map_err(|e| {
                        ActError::NotYet(format!("cannot generate a password: {e}"))
                    })?,
                }
            }
        };
        passwords.insert(user.key.to_owned(), password);
    }
    let kept_key = data
        .get(FINGERPRINT_KEY)
        .map(|b| b.0.clone())
        .filter(|bytes| FingerprintKey::from_bytes(bytes).is_ok());
    let fingerprint_key = match kept_key {
        Some(bytes) => bytes,
        None => {
            missing = true;
            FingerprintKey::generate().map_err(|e| {
                ActError::NotYet(format!(
                    "cannot generate the fingerprint key of Secret {ns}/{name}: {e}"
                ))
            })?
        }
    };
    let secret = resources::internal_users::build_internal_secret(
        meta,
        target.spec,
        &passwords,
        &fingerprint_key,
    );
    // Written when something is missing, or when the spec's labels or
    // annotations changed (the same data again: nothing is replaced).
    let stale = secret.metadata.labels != labels || secret.metadata.annotations != annotations;
    if missing || stale {
        apply(client, ns, &secret).await?;
    }
    Ok(missing)
}

/// The source's replication password, for a standby's internal Secret.
async fn source_replication_password(
    client: &Client,
    ns: &str,
    from: &logbook_crds::ReplicateFrom,
) -> Result<String, ActError> {
    use logbook_crds::v1alpha1::SOURCE_REPLICATION_KEY;
    let secret = super::standby::source_secret(ns, from);
    let password = super::standby::source_password(client, ns, &secret, SOURCE_REPLICATION_KEY)
        .await?
        .ok_or_else(|| {
            ActError::NotYet(format!(
                "the source's Secret {secret} has no key {SOURCE_REPLICATION_KEY} (the source's replication password)"
            ))
        })?;
    let password = password.expose().to_owned();
    if !password.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ActError::Refused(format!(
            "the source's replication password (Secret {secret}, key {SOURCE_REPLICATION_KEY}) must be letters and digits, as Logbook generates it"
        )));
    }
    Ok(password)
}

/// `FingerprintKeyObserved` (there) for a journal that does not say so
/// yet: the internal Secret was just ensured, key included.
fn fingerprint_key_there(target: Target<'_>) -> Option<Event> {
    (target.state.fingerprint_key != FingerprintKeyView::Present)
        .then_some(Event::FingerprintKeyObserved { present: true })
}

/// `CreateFingerprintKey`: adds the fingerprint key to the cluster's
/// internal Secret (with any internal password it lacks), keeping
/// whatever is there; its outcome says the key is there.
///
/// # Errors
/// API errors; [`ActError::NotYet`] when no random key can be drawn.
pub async fn create_fingerprint_key(client: &Client, target: Target<'_>) -> Result<Done, ActError> {
    let name = resources::internal_users::internal_secret_name(&target.meta.name);
    let wrote = ensure_internal_secret(client, target).await?;
    Ok(Done {
        detail: if wrote {
            format!("added the fingerprint key to Secret {name}")
        } else {
            format!("Secret {name} already holds a fingerprint key")
        },
        events: fingerprint_key_there(target).into_iter().collect(),
        password: None,
    })
}

/// The CA certificate (PEM) in a TLS cluster's certificate Secret, if it
/// holds one yet.
async fn read_ca_pem(client: &Client, target: Target<'_>) -> Result<Option<String>, ActError> {
    let Some(name) = target.spec.tls.certificate_secret(&target.meta.name) else {
        return Ok(None);
    };
    let ns = &target.meta.namespace;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get(crate::tls::CA_KEY).cloned())
        .and_then(|b| String::from_utf8(b.0).ok()))
}

/// Applies the cert-manager `Certificate` of the cluster. Without
/// cert-manager (its kind unknown to the API server) the spec cannot be
/// honoured: refused with what to do.
async fn request_certificate(
    client: &Client,
    target: Target<'_>,
    issuer: &logbook_crds::IssuerRef,
) -> Result<(), ActError> {
    let meta = target.meta;
    let ns = meta.namespace.as_str();
    let Some(secret) = target.spec.tls.certificate_secret(&meta.name) else {
        return Ok(());
    };
    let external = external_hosts(target);
    let object = crate::tls::build_certificate(meta, target.spec, issuer, &secret, &external);
    apply_optional_kind(
        client,
        ns,
        &crate::tls::certificate_resource(),
        &object,
        "spec.tls.issuerRef asks cert-manager for the certificate, but the API server does not know cert-manager's Certificate kind (cert-manager.io/v1): install cert-manager, or use tls.secretName or the operator's own CA (neither set)",
    )
    .await
}

/// Server-side applies `object`, of a kind another project defines
/// (`resource`: cert-manager's, the Prometheus Operator's), which the API
/// server may not serve: where it does not, the spec that asks for it is
/// refused with `missing` (what to do).
pub(super) async fn apply_optional_kind(
    client: &Client,
    ns: &str,
    resource: &kube::api::ApiResource,
    object: &kube::api::DynamicObject,
    missing: &str,
) -> Result<(), ActError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    match api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Err(ActError::Refused(missing.to_owned()))
        }
        Err(source) => Err(ActError::Kube {
            what: format!("applying {} {ns}/{name}", resource.kind),
            source,
        }),
    }
}

/// Sets `pod`'s role label to primary or replica, when it differs.
pub async fn label_pod(
    client: &Client,
    target: Target<'_>,
    pod: &str,
    primary: bool,
) -> Result<Done, ActError> {
    let want = if primary {
        Role::Primary
    } else {
        Role::Replica
    };
    let current = target.state.pods.get(pod).and_then(|p| p.role_label);
    if current == Some(want) {
        return Ok(Done::said(format!("{pod} already labelled {want:?}")));
    }
    let value = if primary {
        labels::ROLE_PRIMARY
    } else {
        labels::ROLE_REPLICA
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &target.meta.namespace);
    let patch = json!({ "metadata": { "labels": { labels::ROLE: value } } });
    match api
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        // What the pod shows from here on is at least as new as this
        // write: a read of it from before is stale.
        Ok(written) => Ok(Done {
            detail: format!("{pod} labelled {value}"),
            events: std::iter::once(Event::RoleLabelObserved {
                pod: pod.to_owned(),
                label: Some(want),
            })
            .chain(freshness::written(freshness::pod(pod), &written.metadata))
            .collect(),
            password: None,
        }),
        // The pod is gone: nothing left to label, and the picture must
        // say so, or the next decision labels it again (until the watch's
        // deletion arrives, every pass).
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Ok(Done::gone(pod, format!("{pod} is gone, no label to set")))
        }
        Err(source) => Err(ActError::Kube {
            what: format!("labelling pod {}/{pod}", target.meta.namespace),
            source,
        }),
    }
}

/// Labels each of `primaries` primary and every other pod replica,
/// demoting first so a pod no longer primary is never selected beside the
/// one that is, unless no pod to demote is both labelled primary and
/// running: a pod being deleted is out of the Service's ready endpoints
/// already (a proxy falls back to a
/// terminating endpoint only when no ready one is left), so the new
/// primary is labelled first and the Service reaches it one API write
/// sooner (a deleted primary's failover).
pub async fn set_role_labels(
    client: &Client,
    target: Target<'_>,
    primaries: &[String],
) -> Result<Done, ActError> {
    let order = label_order(&target.state.pods, primaries);
    let mut said = Vec::new();
    let mut events = Vec::new();
    for (pod, primary) in order {
        let done = label_pod(client, target, pod, primary).await?;
        said.push(done.detail);
        events.extend(done.events);
    }
    Ok(Done {
        detail: said.join("; "),
        events,
        password: None,
    })
}

/// The labels [`set_role_labels`] writes, in order: `(pod, primary)`.
fn label_order<'a>(
    pods: &'a std::collections::BTreeMap<String, logbook_journal::projection::PodView>,
    primaries: &'a [String],
) -> Vec<(&'a String, bool)> {
    let demotions: Vec<&String> = pods.keys().filter(|pod| !primaries.contains(pod)).collect();
    let promote_first = demotions.iter().all(|pod| {
        pods.get(*pod)
            .is_none_or(|p| p.terminating || p.role_label != Some(Role::Primary))
    });
    let promotions = primaries.iter().map(|p| (p, true));
    let demotions = demotions.into_iter().map(|p| (p, false));
    if promote_first {
        promotions.chain(demotions).collect()
    } else {
        demotions.chain(promotions).collect()
    }
}

/// Writes the boot ConfigMap naming the primary pods boot as replicas of.
pub async fn publish_boot(
    client: &Client,
    target: Target<'_>,
    primary: Option<&str>,
    ip: Option<&str>,
) -> Result<Done, ActError> {
    let cm: ConfigMap = build_boot_config_map(target.meta, target.spec, ip);
    apply(client, &target.meta.namespace, &cm).await?;
    Ok(Done::said(match (primary, ip) {
        (Some(p), Some(ip)) => format!("pods boot as replicas of {p} ({ip})"),
        _ => "pods boot fenced (no primary)".to_owned(),
    }))
}

/// Deletes `pod` so its StatefulSet recreates it at `revision`; the
/// deletion is conditional on the uid the decision saw.
pub async fn delete_pod(
    client: &Client,
    target: Target<'_>,
    pod: &str,
    revision: &str,
) -> Result<Done, ActError> {
    let uid = target.state.pods.get(pod).and_then(|p| p.uid.clone());
    match delete_pod_with_uid(client, &target.meta.namespace, pod, uid).await {
        // The pod is on its way out: forget it until it is observed again,
        // so no decision counts it as ready meanwhile.
        // A read of the pod from before the deletion is stale from here on.
        Ok(deleted) => Ok(Done {
            detail: format!("deleted {pod} to recreate it at revision {revision}"),
            events: std::iter::once(Event::PodDeleted {
                pod: pod.to_owned(),
            })
            .chain(deleted.and_then(|p| freshness::written(freshness::pod(pod), &p.metadata)))
            .collect(),
            password: None,
        }),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Ok(Done::gone(pod, format!("{pod} was already gone")))
        }
        Err(source) => Err(ActError::Kube {
            what: format!("deleting pod {}/{pod}", target.meta.namespace),
            source,
        }),
    }
}

/// Deletes pod `pod` of `ns`, on the condition that it is still the pod
/// of `uid` (the one a decision saw); any pod of that name when `None`.
/// The pod as it is being deleted, when the API server returns it.
pub(super) async fn delete_pod_with_uid(
    client: &Client,
    ns: &str,
    pod: &str,
    uid: Option<String>,
) -> Result<Option<Pod>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    api.delete(pod, &params).await.map(|deleted| deleted.left())
}

/// Removes the switchover request annotation.
pub async fn clear_switchover(client: &Client, target: Target<'_>) -> Result<Done, ActError> {
    clear_request(
        client,
        target,
        labels::SWITCHOVER_TO,
        "switchover",
        Event::SwitchoverRequestObserved { target: None },
    )
    .await
}

/// Removes the failover request annotation.
pub async fn clear_failover_request(client: &Client, target: Target<'_>) -> Result<Done, ActError> {
    clear_request(
        client,
        target,
        labels::FAILOVER_REQUESTED,
        "failover",
        Event::FailoverRequestObserved { request: None },
    )
    .await
}

/// Removes the rebalance request annotation.
pub async fn clear_rebalance_request(
    client: &Client,
    target: Target<'_>,
) -> Result<Done, ActError> {
    clear_request(
        client,
        target,
        labels::REBALANCE_REQUESTED,
        "rebalance",
        Event::RebalanceRequestObserved { request: None },
    )
    .await
}

/// Removes the request annotation `key` (a served or refused `what`
/// request) with a merge patch, and journals `cleared`: the request as
/// observed from now on.
async fn clear_request(
    client: &Client,
    target: Target<'_>,
    key: &str,
    what: &str,
    cleared: Event,
) -> Result<Done, ActError> {
    let api: Api<ValkeyCluster> = Api::namespaced(client.clone(), &target.meta.namespace);
    let patch = json!({ "metadata": { "annotations": { key: null } } });
    let written = api
        .patch(
            &target.meta.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(kube_err(format!(
            "clearing the {what} request of {}/{}",
            target.meta.namespace, target.meta.name
        )))?;
    // The request is gone as of this write: a ValkeyCluster read from
    // before it (a lagging API server still showing the request) is
    // stale, and the request is not served again.
    Ok(Done {
        detail: format!("{what} request cleared"),
        events: std::iter::once(cleared)
            .chain(freshness::written(
                freshness::VALKEY_CLUSTER.to_owned(),
                &written.metadata,
            ))
            .collect(),
        password: None,
    })
}

/// Deletes what the operator created for `meta` (the garbage collector
/// would too, through owner references; doing it here does not depend on
/// one running). PVCs only when `delete_pvcs`. Missing objects are fine.
///
/// # Errors
/// API errors other than 404.
/// Deletes `name` of kind `K` if it exists; whether it did.
pub(super) async fn delete_named<K>(client: &Client, ns: &str, name: &str) -> Result<bool, ActError>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(ActError::Kube {
            what: format!(
                "deleting {} {ns}/{name}",
                K::kind(&K::DynamicType::default())
            ),
            source,
        }),
    }
}

/// Deletes every object the operator made for `meta`'s cluster (its
/// PVCs too when `delete_pvcs`) and releases the ValkeyUsers naming it
/// (its nodes are gone, and every ACL user with them). Idempotent: what
/// is already gone is skipped. A failure part-way carries what was
/// already deleted, journaled with it.
pub async fn delete_owned(
    client: &Client,
    target: Target<'_>,
    delete_pvcs: bool,
) -> Result<Done, ActError> {
    let mut deleted = Vec::new();
    match delete_each(client, target.meta, delete_pvcs, &mut deleted).await {
        Ok(()) => Ok(Done {
            detail: if deleted.is_empty() {
                "nothing owned was left to delete".to_owned()
            } else {
                format!("deleted {}", deleted.join(", "))
            },
            events: vec![Event::OwnedObjectsDeleted {
                objects: deleted,
                complete: true,
            }],
            password: None,
        }),
        Err(err) if deleted.is_empty() => Err(err),
        Err(err) => Err(err.with_facts(vec![Event::OwnedObjectsDeleted {
            objects: deleted,
            complete: false,
        }])),
    }
}

async fn delete_each(
    client: &Client,
    meta: &ClusterMeta,
    delete_pvcs: bool,
    deleted: &mut Vec<String>,
) -> Result<(), ActError> {
    let ns = meta.namespace.as_str();
    let name = meta.name.as_str();
    async fn one<K>(
        client: &Client,
        ns: &str,
        name: &str,
        deleted: &mut Vec<String>,
    ) -> Result<(), ActError>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        if delete_named::<K>(client, ns, name).await? {
            deleted.push(format!("{} {name}", K::kind(&K::DynamicType::default())));
        }
        Ok(())
    }
    one::<StatefulSet>(client, ns, &resources::statefulset_name(name), deleted).await?;
    for service in [
        resources::client_service_name(name),
        resources::read_service_name(name),
        resources::headless_service_name(name),
        resources::metrics_service_name(name),
    ] {
        one::<Service>(client, ns, &service, deleted).await?;
    }
    // A preflight of a new image that was still running.
    one::<Pod>(client, ns, &resources::preflight_name(name), deleted).await?;
    for config_map in [
        resources::config_map_name(name),
        resources::boot_config_map_name(name),
        resources::preflight_name(name),
    ] {
        one::<ConfigMap>(client, ns, &config_map, deleted).await?;
    }
    one::<PodDisruptionBudget>(client, ns, &resources::pdb_name(name), deleted).await?;
    one::<NetworkPolicy>(client, ns, &resources::network_policy_name(name), deleted).await?;
    for secret in [
        logbook_crds::connection_secret_name(name),
        logbook_crds::v1alpha1::generated_password_secret(name).name,
        // The internal users' passwords: left to the garbage collector,
        // a foreground deletion of the cluster waited on it for good.
        resources::internal_users::internal_secret_name(name),
    ] {
        one::<Secret>(client, ns, &secret, deleted).await?;
    }
    if delete_pvcs {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let lp = ListParams::default().labels(&labels::selector_string(name));
        let pvcs = api
            .list(&lp)
            .await
            .map_err(kube_err(format!("listing PVCs of {ns}/{name}")))?;
        for pvc in pvcs {
            let pvc_name = pvc.metadata.name.unwrap_or_default();
            one::<PersistentVolumeClaim>(client, ns, &pvc_name, deleted).await?;
        }
    }
    for user in super::users::release_all(client, meta).await? {
        deleted.push(format!("ValkeyUser {user} released"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use logbook_journal::Role;
    use logbook_journal::projection::PodView;

    use super::label_order;

    fn pods(old_primary_terminating: bool) -> BTreeMap<String, PodView> {
        let pod = |label: Role, terminating: bool| PodView {
            role_label: Some(label),
            terminating,
            ..PodView::default()
        };
        BTreeMap::from([
            (
                "c-0".to_owned(),
                pod(Role::Primary, old_primary_terminating),
            ),
            ("c-1".to_owned(), pod(Role::Replica, false)),
            ("c-2".to_owned(), pod(Role::Replica, false)),
        ])
    }

    /// The labels written when c-1 succeeds c-0.
    fn order(old_primary_terminating: bool) -> Vec<(String, bool)> {
        let pods = pods(old_primary_terminating);
        let primaries = ["c-1".to_owned()];
        label_order(&pods, &primaries)
            .into_iter()
            .map(|(p, primary)| (p.clone(), primary))
            .collect()
    }

    fn expect(order: &[(&str, bool)]) -> Vec<(String, bool)> {
        order
            .iter()
            .map(|(p, primary)| ((*p).to_owned(), *primary))
            .collect()
    }

    #[test]
    fn a_running_primary_is_demoted_before_its_successor_is_labelled() {
        assert_eq!(
            order(false),
            expect(&[("c-0", false), ("c-2", false), ("c-1", true)])
        );
    }

    #[test]
    fn a_deleted_primarys_successor_is_labelled_first() {
        assert_eq!(
            order(true),
            expect(&[("c-1", true), ("c-0", false), ("c-2", false)])
        );
    }
}
