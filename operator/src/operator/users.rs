//! The reconcile's part for ACL users: read the cluster's ValkeyUsers (with
//! their finalizers and password Secrets) and each answering node's ACL,
//! and publish each ValkeyUser's status. What is journaled from the reads
//! is `observe/users.rs`'s to say; what is done about it, `decide/users.rs`
//! and `actuate/users.rs`'s.
//!
//! A Secret that changes is noticed through [`SecretIndex`]: the Secrets
//! the users name, which the controller's Secret watch maps back to their
//! clusters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use logbook_crds::{UserPhase, ValkeyCluster, ValkeyUser, ValkeyUserStatus, validate_user};
use logbook_journal::{
    ClusterState, ConnectionState, Event, Reachability, UserConnection, UserRecord,
};
use serde_json::json;

use super::error::OperatorError;
use crate::observe::fingerprints::{Fingerprints, NodeAcl, observe_acls};
use crate::observe::freshness::{self, Reads};
use crate::observe::users::{
    PasswordRead, cluster_secret_names, connection_state, password_in, user_record,
    watched_usernames,
};
use crate::resources::{ClusterMeta, Credentials, build_user_connection_secret, valkey_addr};
use crate::valkey::{FingerprintKey, Password, ValkeyClient};

/// The Secrets ValkeyUsers name, by namespace and Secret name, to the
/// clusters whose users name them.
#[derive(Debug, Clone, Default)]
pub struct SecretIndex(Arc<RwLock<SecretClusters>>);

/// (namespace, Secret name) → the clusters whose users name it.
type SecretClusters = BTreeMap<(String, String), BTreeSet<String>>;

impl SecretIndex {
    /// The clusters to reconcile when Secret `name` in `namespace` changes.
    pub fn clusters_of(&self, namespace: &str, name: &str) -> Vec<ObjectRef<ValkeyCluster>> {
        let Ok(index) = self.0.read() else {
            return Vec::new();
        };
        index
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|clusters| {
                clusters
                    .iter()
                    .map(|c| ObjectRef::new(c).within(namespace))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that `cluster`'s users name exactly `secrets` now.
    fn set(&self, namespace: &str, cluster: &str, secrets: &BTreeSet<String>) {
        let Ok(mut index) = self.0.write() else {
            return;
        };
        index.retain(|(ns, name), clusters| {
            if ns == namespace && !secrets.contains(name) {
                clusters.remove(cluster);
            }
            !clusters.is_empty()
        });
        for name in secrets {
            index
                .entry((namespace.to_owned(), name.clone()))
                .or_default()
                .insert(cluster.to_owned());
        }
    }
}

/// The ValkeyUsers naming `meta`'s cluster, and their API.
async fn users_of(
    client: &kube::Client,
    meta: &ClusterMeta,
    reads: &mut Reads,
) -> Result<(Api<ValkeyUser>, Vec<ValkeyUser>), OperatorError> {
    let ns = meta.namespace.as_str();
    let api: Api<ValkeyUser> = Api::namespaced(client.clone(), ns);
    let listed = api
        .list(&ListParams::default())
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("listing the ValkeyUsers of {ns}"),
            source,
        })?;
    reads.list(freshness::VALKEY_USERS, &listed.metadata);
    let users: Vec<ValkeyUser> = listed
        .items
        .into_iter()
        .filter(|u| u.spec.cluster == meta.name)
        .collect();
    for user in &users {
        reads.object(freshness::valkey_user(&user.name_any()), &user.metadata);
    }
    Ok((api, users))
}

/// The ValkeyUsers naming `meta`'s cluster, as [`read_users`] reads them.
#[derive(Debug, Default)]
pub struct UsersRead {
    /// The objects.
    pub users: Vec<ValkeyUser>,
    /// Their records.
    pub records: Vec<UserRecord>,
    /// Their connection Secrets, by object (`None`: none asked for).
    pub connections: Vec<(String, Option<UserConnection>)>,
}

/// The ValkeyUsers naming `meta`'s cluster, each carrying the finalizer
/// (added here the first time, one write), and their records with the
/// passwords read now, fingerprinted by `prints` (a record that needs the
/// fingerprint key while there is none is `state`'s as journaled, or
/// left out while there is none), and their connection Secrets as they
/// stand; the Secrets they name, and `own_secrets` (the cluster's own
/// password's and TLS certificate's), are indexed for the Secret watch.
/// What each was read at goes to `reads`.
///
/// # Errors
/// [`OperatorError::Kube`] when the users cannot be listed, a finalizer
/// not added, or a connection Secret not read.
pub async fn read_users(
    client: &kube::Client,
    meta: &ClusterMeta,
    index: &SecretIndex,
    own_secrets: &[String],
    state: &ClusterState,
    prints: &mut Fingerprints<'_>,
    reads: &mut Reads,
) -> Result<UsersRead, OperatorError> {
    let ns = meta.namespace.as_str();
    let (api, users) = users_of(client, meta, reads).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut records = Vec::new();
    let mut connections = Vec::new();
    let mut named = BTreeSet::new();
    let mut judge = ConnectionJudge::new(client, meta, state);
    for user in &users {
        let object = user.metadata.name.clone().unwrap_or_default();
        let deleting = user.metadata.deletion_timestamp.is_some();
        if !deleting {
            crate::actuate::set_user_finalizer(&api, user, true)
                .await
                .map_err(|source| OperatorError::Kube {
                    what: format!("adding the finalizer of ValkeyUser {ns}/{object}"),
                    source,
                })?;
        }
        let secret_ref = &user.spec.password_secret;
        named.insert(secret_ref.name.clone());
        let password =
            if validate_user(&object, &user.spec, None).is_ok() && !deleting {
                let secret = secrets.get_opt(&secret_ref.name).await.map_err(|source| {
                    OperatorError::Kube {
                        what: format!("reading Secret {ns}/{}", secret_ref.name),
                        source,
                    }
                })?;
                if let Some(secret) = &secret {
                    reads.object(freshness::secret(&secret_ref.name), &secret.metadata);
                }
                Some(password_in(
                    secret.as_ref(),
                    ns,
                    &secret_ref.name,
                    &secret_ref.key,
                ))
            } else {
                None
            };
        let in_force = state
            .users
            .records
            .get(&object)
            .filter(|r| !r.deleting)
            .map(|r| r.username.as_str());
        // Judged only for a spec that passes (its name is one) and a user
        // not being deleted (its Secret goes with it); without a spec in
        // force, kept as journaled.
        let asked = user
            .spec
            .connection_secret
            .as_deref()
            .filter(|_| !deleting && validate_user(&object, &user.spec, None).is_ok());
        if let Some(name) = asked {
            named.insert(name.to_owned());
            let stands = match judge
                .judge(&secrets, user, name, in_force, password.as_ref())
                .await?
            {
                Some(stands) => Some(stands),
                None => state.users.connections.get(&object).cloned(),
            };
            connections.push((object.clone(), stands));
        }
        let Some(mut record) = user_record(user, in_force, password.as_ref(), prints) else {
            // No key to fingerprint its password with: kept as journaled
            // (a new user waits for the key).
            records.extend(state.users.records.get(&object).cloned());
            continue;
        };
        if deleting {
            // A user being deleted is only removed: its password no
            // longer matters, and its Secret may be gone already.
            record.password = None;
            record.problem = None;
        }
        records.push(record);
    }
    // The cluster's own password and certificate Secrets too: one the
    // spec names is not labelled as the operator's, and a change of it
    // must reconcile at once.
    named.extend(own_secrets.iter().cloned());
    index.set(ns, &meta.name, &named);
    Ok(UsersRead {
        users,
        records,
        connections,
    })
}

/// What a ValkeyUser's connection Secret is judged against: the cluster's
/// spec in force, its own Secrets' names, its CA (read once, on the first
/// user that asks for a connection Secret).
struct ConnectionJudge<'a> {
    client: &'a kube::Client,
    meta: &'a ClusterMeta,
    spec: Option<logbook_crds::ValkeyClusterSpec>,
    ca: Option<Option<String>>,
}

impl<'a> ConnectionJudge<'a> {
    fn new(client: &'a kube::Client, meta: &'a ClusterMeta, state: &ClusterState) -> Self {
        Self {
            client,
            meta,
            spec: state.desired_spec().and_then(Result::ok),
            ca: None,
        }
    }

    /// How the connection Secret `name` of `user` stands, with its
    /// password as read now (`None` without a spec in force: not judged).
    async fn judge(
        &mut self,
        secrets: &Api<Secret>,
        user: &ValkeyUser,
        name: &str,
        in_force: Option<&str>,
        password: Option<&PasswordRead>,
    ) -> Result<Option<UserConnection>, OperatorError> {
        let ns = self.meta.namespace.as_str();
        let Some(spec) = &self.spec else {
            return Ok(None);
        };
        let existing = secrets
            .get_opt(name)
            .await
            .map_err(|source| OperatorError::Kube {
                what: format!("reading Secret {ns}/{name}"),
                source,
            })?;
        let ca = match &self.ca {
            Some(ca) => ca.clone(),
            None => {
                let ca = crate::actuate::read_connection_ca(self.client, self.meta, spec)
                    .await
                    .map_err(|source| OperatorError::Kube {
                        what: format!("reading the CA of {ns}/{}", self.meta.name),
                        source,
                    })?;
                self.ca = Some(ca.clone());
                ca
            }
        };
        let object = user.metadata.name.clone().unwrap_or_default();
        let username = in_force.unwrap_or_else(|| user.spec.effective_username(&object));
        let built = match (password, user.controller_owner_ref(&())) {
            (Some(Ok(password)), Some(owner)) => Some(build_user_connection_secret(
                self.meta,
                spec,
                name,
                owner,
                Credentials {
                    username: Some(username),
                    password: password.expose(),
                },
                ca.as_deref(),
            )),
            _ => None,
        };
        let own = cluster_secret_names(&self.meta.name, spec);
        let state = connection_state(
            user,
            name,
            &self.meta.name,
            &own,
            existing.as_ref(),
            built.as_ref(),
        );
        Ok(Some(UserConnection {
            secret: name.to_owned(),
            state,
        }))
    }
}

/// `AclObserved` for each answering data pod whose users differ from the
/// journal's (nothing when no ValkeyUser names the cluster), digested with
/// the cluster's fingerprint key `key` (nothing without it), after the
/// renames of the digests journaled unkeyed.
pub async fn read_node_acls(
    valkey: &ValkeyClient,
    state: &ClusterState,
    key: Option<&FingerprintKey>,
) -> Vec<Event> {
    read_acls(valkey, state, key, false).await
}

/// [`read_node_acls`] of the answering data pods whose users were never
/// read (a new pod, a replaced one): the probe round reads them as soon
/// as they answer, so that what they hold is journaled before the cluster
/// is published ready, not by a later reconcile.
pub async fn read_new_node_acls(
    valkey: &ValkeyClient,
    state: &ClusterState,
    key: Option<&FingerprintKey>,
) -> Vec<Event> {
    read_acls(valkey, state, key, true).await
}

async fn read_acls(
    valkey: &ValkeyClient,
    state: &ClusterState,
    key: Option<&FingerprintKey>,
    only_new: bool,
) -> Vec<Event> {
    let watched = watched_usernames(state);
    // Without the key, what a node holds cannot be journaled: not read.
    if watched.is_empty() || key.is_none() {
        return Vec::new();
    }
    let mut acls = Vec::new();
    for (pod, view) in &state.pods {
        if view.reachability != Some(Reachability::Reachable) || view.terminating {
            continue;
        }
        if only_new && state.users.nodes.contains_key(pod) {
            continue;
        }
        let Some(addr) = view.ip.as_deref().and_then(valkey_addr) else {
            continue;
        };
        match valkey.acl_list(addr).await {
            Ok(lines) => acls.push(NodeAcl {
                pod: pod.clone(),
                sentinel: false,
                lines,
            }),
            Err(err) => tracing::debug!(%pod, %err, "ACL LIST failed; read again next reconcile"),
        }
    }
    // The Sentinels hold `default` too (what their clients authenticate
    // with), once the operator keeps it.
    if watched.contains(&"default") && !only_new {
        for (pod, view) in &state.sentinel.pods {
            if view.reachability != Some(Reachability::Reachable) {
                continue;
            }
            let Some(addr) = view.ip.as_deref().and_then(crate::resources::sentinel_addr) else {
                continue;
            };
            match valkey.acl_list(addr).await {
                Ok(lines) => acls.push(NodeAcl {
                    pod: pod.clone(),
                    sentinel: true,
                    lines,
                }),
                Err(err) => {
                    tracing::debug!(%pod, %err, "ACL LIST failed; read again next reconcile")
                }
            }
        }
    }
    observe_acls(state, &watched, &acls, key)
}

/// The status of ValkeyUser `user` as the projection has it.
pub fn user_status(state: &ClusterState, user: &ValkeyUser) -> ValkeyUserStatus {
    let object = user.metadata.name.clone().unwrap_or_default();
    let record = state.users.records.get(&object);
    // The name in force (a renaming spec is refused and keeps it).
    let username = record.map_or_else(
        || user.spec.effective_username(&object).to_owned(),
        |r| r.username.clone(),
    );
    let generation = user.metadata.generation;
    let pods: Vec<&String> = state.pods.keys().collect();
    let holding = record.map_or(0, |r| {
        pods.iter()
            .filter(|p| {
                if r.deleting {
                    state.users.has(p, &r.username)
                } else {
                    state.users.holds(p, r)
                }
            })
            .count()
    });
    let failures: Vec<String> = state
        .users
        .failed
        .iter()
        .filter(|(_, f)| f.error.contains(&format!("ACL user {username} ")))
        .map(|(pod, f)| format!("{pod}: {}", f.error))
        .collect();
    let refused_connection = state
        .users
        .connections
        .get(&object)
        .and_then(|c| match &c.state {
            ConnectionState::Refused(why) => Some(why.clone()),
            ConnectionState::Current | ConnectionState::Stale => None,
        });
    let (phase, reason, message) = match record {
        None => (
            UserPhase::Pending,
            "NotRead",
            "not read by the operator yet".to_owned(),
        ),
        Some(r) if r.deleting => (
            UserPhase::Removing,
            "Removing",
            format!("being removed: still on {holding} of {} nodes", pods.len()),
        ),
        Some(UserRecord {
            problem: Some(problem),
            ..
        }) => (UserPhase::Failed, "CannotApply", problem.clone()),
        Some(_) if !failures.is_empty() => {
            (UserPhase::Failed, "ServerRefused", failures.join("; "))
        }
        Some(_) if refused_connection.is_some() => (
            UserPhase::Failed,
            "ConnectionSecretRefused",
            refused_connection.clone().unwrap_or_default(),
        ),
        Some(_) if holding == pods.len() && !pods.is_empty() => (
            UserPhase::Ready,
            "Applied",
            format!("on all {} nodes", pods.len()),
        ),
        Some(_) => (
            UserPhase::Pending,
            "Applying",
            format!("on {holding} of {} nodes", pods.len()),
        ),
    };
    let ready = phase == UserPhase::Ready;
    let rotating = state
        .users
        .rotations
        .get(&username)
        .filter(|r| record.is_some_and(|rec| rec.password.as_deref() == Some(r.to.as_str())))
        .map(|r| {
            let until = r
                .until
                .to_datetime()
                .map_or_else(|| "its window ends".to_owned(), |t| t.to_rfc3339());
            format!(
                "rotating: the old password ({}) works beside the new one until {until}",
                r.from
            )
        });
    let message = match (&rotating, ready) {
        (Some(rotating), true) => format!("{message}; {rotating}"),
        _ => message,
    };
    let condition = ready_condition(
        ready,
        reason,
        &message,
        generation,
        crate::decide::status::kube_time(state.last_at),
    );
    ValkeyUserStatus {
        phase: Some(phase),
        username: Some(username),
        nodes: Some(format!("{holding}/{}", pods.len())),
        password_fingerprint: record.and_then(|r| r.password.clone()),
        message: (!ready || rotating.is_some()).then_some(message),
        observed_generation: generation,
        conditions: vec![condition],
    }
}

/// A ValkeyUser's `Ready` condition.
fn ready_condition(
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    at: Time,
) -> Condition {
    Condition {
        type_: "Ready".to_owned(),
        status: if ready { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: at,
    }
}

/// Whether two statuses say the same (a condition's transition time
/// aside).
fn same(a: &ValkeyUserStatus, b: &ValkeyUserStatus) -> bool {
    let strip = |s: &ValkeyUserStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        }
        s
    };
    strip(a) == strip(b)
}

/// Writes each user's status that changed; nothing when none did. Returns
/// the users whose status turned Failed, with the message, for an Event.
///
/// # Errors
/// [`OperatorError::Kube`] when a status cannot be written.
pub async fn publish_statuses(
    client: &kube::Client,
    meta: &ClusterMeta,
    state: &ClusterState,
    users: &[ValkeyUser],
) -> Result<Vec<(String, String)>, OperatorError> {
    let api: Api<ValkeyUser> = Api::namespaced(client.clone(), &meta.namespace);
    let mut failed = Vec::new();
    for user in users {
        let mut status = user_status(state, user);
        let current = user.status.clone().unwrap_or_default();
        if same(&status, &current) {
            continue;
        }
        // A condition keeps its transition time while its status holds.
        if let (Some(new), Some(old)) = (status.conditions.first_mut(), current.conditions.first())
            && new.status == old.status
        {
            new.last_transition_time = old.last_transition_time.clone();
        }
        let object = user.metadata.name.clone().unwrap_or_default();
        if status.phase == Some(UserPhase::Failed) && current.phase != Some(UserPhase::Failed) {
            failed.push((object.clone(), status.message.clone().unwrap_or_default()));
        }
        let patch = json!({ "status": status });
        api.patch_status(&object, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| OperatorError::Kube {
                what: format!(
                    "writing the status of ValkeyUser {}/{object}",
                    meta.namespace
                ),
                source,
            })?;
    }
    Ok(failed)
}

/// The ValkeyUser controller's reconcile: a user whose ValkeyCluster does
/// not exist says so in its status (and, being deleted, is released: no
/// node can hold it). A user whose cluster exists is the cluster's
/// reconcile's to apply and report.
///
/// # Errors
/// [`OperatorError::Kube`] on an API failure (retried by the controller).
pub async fn reconcile_orphan(
    user: &ValkeyUser,
    client: &kube::Client,
    leading: bool,
) -> Result<(), OperatorError> {
    let (Some(ns), Some(object)) = (
        user.metadata.namespace.as_deref(),
        user.metadata.name.as_deref(),
    ) else {
        return Ok(());
    };
    if !leading {
        return Ok(());
    }
    let clusters: Api<ValkeyCluster> = Api::namespaced(client.clone(), ns);
    let cluster = &user.spec.cluster;
    let found = clusters
        .get_opt(cluster)
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("reading ValkeyCluster {ns}/{cluster}"),
            source,
        })?;
    if found.is_some_and(|c| c.metadata.deletion_timestamp.is_none()) {
        return Ok(());
    }
    let users: Api<ValkeyUser> = Api::namespaced(client.clone(), ns);
    if user.metadata.deletion_timestamp.is_some() {
        crate::actuate::set_user_finalizer(&users, user, false)
            .await
            .map_err(|source| OperatorError::Kube {
                what: format!("releasing ValkeyUser {ns}/{object}"),
                source,
            })?;
        return Ok(());
    }
    let message = format!("ValkeyCluster {ns}/{cluster} not found: the user is on no node");
    let current = user.status.clone().unwrap_or_default();
    if current.phase == Some(UserPhase::Pending) && current.message.as_deref() == Some(&message) {
        return Ok(());
    }
    let status = ValkeyUserStatus {
        phase: Some(UserPhase::Pending),
        username: Some(user.spec.effective_username(object).to_owned()),
        nodes: Some("0/0".to_owned()),
        password_fingerprint: None,
        message: Some(message.clone()),
        observed_generation: user.metadata.generation,
        conditions: vec![ready_condition(
            false,
            "ClusterNotFound",
            &message,
            user.metadata.generation,
            Time(k8s_openapi::jiff::Timestamp::now()),
        )],
    };
    users
        .patch_status(
            object,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("writing the status of ValkeyUser {ns}/{object}"),
            source,
        })?;
    Ok(())
}

/// What the reconcile reads of the cluster's internal Secret
/// `<name>-internal`.
#[derive(Debug, Default)]
pub struct Internal {
    /// The internal users' passwords, by user name (empty until the
    /// Secret exists).
    pub passwords: BTreeMap<String, Password>,
    /// The cluster's fingerprint key, when the Secret holds a usable one.
    pub fingerprint_key: Option<FingerprintKey>,
    /// The Secret's resourceVersion, when it exists.
    pub resource_version: Option<String>,
}

/// The internal users' passwords of `meta`'s cluster and its fingerprint
/// key, from its Secret `<name>-internal`.
///
/// # Errors
/// [`OperatorError::Kube`] when the Secret cannot be read.
pub async fn read_internal(
    client: &kube::Client,
    meta: &ClusterMeta,
) -> Result<Internal, OperatorError> {
    use crate::resources::internal_users::{INTERNAL_USERS, internal_secret_name};
    let ns = meta.namespace.as_str();
    let name = internal_secret_name(&meta.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets
        .get_opt(&name)
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("reading Secret {ns}/{name}"),
            source,
        })?;
    let fingerprint_key = crate::credentials::fingerprint_key_in(secret.as_ref());
    let resource_version = secret
        .as_ref()
        .and_then(|s| s.metadata.resource_version.clone());
    let data = secret.and_then(|s| s.data).unwrap_or_default();
    let passwords = INTERNAL_USERS
        .iter()
        .filter_map(|u| {
            let text = String::from_utf8(data.get(u.key)?.0.clone()).ok()?;
            (!text.is_empty()).then(|| (u.name.to_owned(), Password::new(text)))
        })
        .collect();
    Ok(Internal {
        passwords,
        fingerprint_key,
        resource_version,
    })
}
