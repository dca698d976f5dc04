//! ACL users on the nodes (`SyncUsers`), a ValkeyUser's connection Secret
//! for its application (`ApplyUserConnection`), and the release of a
//! deleted ValkeyUser's finalizer (`ReleaseUser`).
//!
//! Each user's password is read from its Secret now and must be the one
//! decided on (its fingerprint as journaled, keyed with the cluster's
//! fingerprint key): a Secret changed since is read again and decided on
//! afresh, never applied unjournaled. After the commands, the node's users
//! are read back (`ACL LIST`) and journaled with the outcome, so the
//! projection knows what each node holds.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource};
use logbook_crds::ValkeyUser;
use logbook_journal::{CLUSTER_PASSWORD, ConnectionState, Event, UserConnection};
use serde_json::json;

use super::kube_ops::kube_err;
use super::secret_errors::secret_write_err;
use super::{ActError, Done, Target};
use crate::credentials::fingerprint_key_in;
use crate::observe::fingerprints::{NodeAcl, observe_acls};
use crate::observe::users::{USER_FINALIZER, password_in, watched_usernames, written_for};
use crate::resources::internal_users::internal_secret_name;
use crate::resources::{CONNECTION_USER_LABEL, Credentials, build_user_connection_secret};
use crate::valkey::{FingerprintKey, ValkeyClient, acl_users};

/// Applies `apply` and deletes `remove` on `pod`, saves the ACL file,
/// and reads back what the node holds.
///
/// A failure once a command that changes the node was sent carries what
/// the node holds then (read back, as on success): users applied or
/// deleted before the failure must not be believed absent or present.
pub async fn sync(
    valkey: &ValkeyClient,
    client: &kube::Client,
    target: Target<'_>,
    pod: &str,
    apply: &[String],
    remove: &[String],
) -> Result<Done, ActError> {
    let (addr, sentinel) = target.any_addr(pod)?;
    // Before anything is sent: without the key, neither can the passwords
    // be checked against the fingerprints decided on, nor what the node
    // holds be journaled.
    let key = read_fingerprint_key(client, target).await?;
    let mut touched = false;
    let node = Node {
        valkey,
        target,
        pod,
        addr,
        sentinel,
        key: &key,
    };
    let (applied, connection_updated, saved) = match change(
        &node,
        client,
        apply,
        remove,
        &mut touched,
    )
    .await
    {
        Ok(done) => done,
        Err(err) if touched => {
            let facts = match node.read_back().await {
                Ok(users) => users,
                Err(read) => {
                    tracing::warn!(%pod, error = %read, "cannot read back the ACL users after a failed sync");
                    Vec::new()
                }
            };
            return Err(err.with_facts(facts));
        }
        Err(err) => return Err(err),
    };
    let users = node.read_back().await?;
    let mut detail = Vec::new();
    if !applied.is_empty() {
        detail.push(format!("applied {}", applied.join(", ")));
    }
    if !remove.is_empty() {
        detail.push(format!("deleted {}", remove.join(", ")));
    }
    if connection_updated {
        detail.push("the connection Secret carries the new password".to_owned());
    }
    detail.push(if saved {
        "saved to its ACL file".to_owned()
    } else {
        "no ACL file to save to".to_owned()
    });
    Ok(Done {
        detail: format!("{pod}: {}", detail.join("; ")),
        events: users,
        password: None,
    })
}

/// The node a sync changes.
struct Node<'a> {
    valkey: &'a ValkeyClient,
    target: Target<'a>,
    pod: &'a str,
    addr: SocketAddr,
    sentinel: bool,
    /// The cluster's fingerprint key.
    key: &'a FingerprintKey,
}

/// The cluster's fingerprint key, read from its internal Secret now.
///
/// # Errors
/// [`ActError::NotYet`] while the Secret holds no usable key (the intent
/// that makes it is decided first); API errors.
async fn read_fingerprint_key(
    client: &kube::Client,
    target: Target<'_>,
) -> Result<FingerprintKey, ActError> {
    let ns = &target.meta.namespace;
    let name = internal_secret_name(&target.meta.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
    fingerprint_key_in(secret.as_ref()).ok_or_else(|| {
        ActError::NotYet(format!(
            "Secret {ns}/{name} holds no usable fingerprint key (yet): the users' passwords cannot be checked against their fingerprints"
        ))
    })
}

impl Node<'_> {
    /// What the node holds now, as `AclObserved`; before it, the renames
    /// of digests an earlier version journaled unkeyed of lines the node
    /// still holds (`FingerprintsRekeyed`), so that the users the sync
    /// left alone are not taken for changed.
    async fn read_back(&self) -> Result<Vec<Event>, ActError> {
        let pod = self.pod;
        let lines = self
            .valkey
            .acl_list(self.addr)
            .await
            .map_err(|source| ActError::Valkey {
                what: format!("reading the ACL users of {pod} back"),
                source,
            })?;
        let watched = watched_usernames(self.target.state);
        let users = if self.sentinel {
            acl_users(&lines, &["default"], self.key)
        } else {
            acl_users(&lines, &watched, self.key)
        };
        let acl = NodeAcl {
            pod: pod.to_owned(),
            sentinel: self.sentinel,
            lines,
        };
        let mut events: Vec<Event> =
            observe_acls(self.target.state, &watched, &[acl], Some(self.key))
                .into_iter()
                .filter(|e| matches!(e, Event::FingerprintsRekeyed { .. }))
                .collect();
        events.push(Event::AclObserved {
            pod: pod.to_owned(),
            users,
        });
        Ok(events)
    }
}

/// The commands of a sync: `apply`, then `remove`, then the save.
/// Returns the users applied, whether the connection Secret was updated,
/// and whether there was a file to save to. `touched` is set before the
/// first command that may change the node.
async fn change<'u>(
    node: &Node<'_>,
    client: &kube::Client,
    apply: &'u [String],
    remove: &[String],
    touched: &mut bool,
) -> Result<(Vec<&'u str>, bool, bool), ActError> {
    let Node {
        valkey,
        target,
        pod,
        addr,
        sentinel,
        key: fingerprint_key,
    } = *node;
    let ns = &target.meta.namespace;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut applied = Vec::new();
    let mut connection_updated = false;
    for username in apply {
        let record = target.state.users.by_username(username).ok_or_else(|| {
            ActError::Refused(format!("no ValkeyUser names ACL user {username} any more"))
        })?;
        let (Some(fingerprint), None) = (&record.password, &record.problem) else {
            return Err(ActError::Refused(format!(
                "ACL user {username} has no usable password: {}",
                record.problem.as_deref().unwrap_or("none read")
            )));
        };
        let (name, key) = record
            .secret
            .split_once('/')
            .unwrap_or((&record.secret, ""));
        let secret = secrets
            .get_opt(name)
            .await
            .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
        let password = password_in(secret.as_ref(), ns, name, key).map_err(ActError::NotYet)?;
        // A fingerprint journaled before the key existed is checked as
        // it was computed then.
        if !fingerprint_key.names(fingerprint, &password) {
            return Err(ActError::NotYet(format!(
                "Secret {ns}/{name} changed since it was read for ACL user {username}: read again before applying"
            )));
        }
        // While its rotation window is open, the password it replaces
        // keeps working: the new one is added, the others kept.
        let keep_others = target
            .state
            .users
            .want(record)
            .is_some_and(|w| w.previous.is_some());
        // Sent, the command may have taken effect whatever its reply.
        *touched = true;
        valkey
            .acl_setuser(addr, username, &password, &record.rules, keep_others)
            .await
            .map_err(|source| ActError::Valkey {
                what: format!("applying ACL user {username} on {pod}"),
                source,
            })?;
        // A node whose replicas authenticate as the replication user
        // (`masteruser`, every pod started by this version) keeps its
        // `masterauth`: the cluster's password is not replication's.
        let own_replication_user = record.object == CLUSTER_PASSWORD
            && !sentinel
            && valkey
                .config_get(addr, "masteruser")
                .await
                .map_err(|source| ActError::Valkey {
                    what: format!("reading masteruser on {pod}"),
                    source,
                })?
                .is_some_and(|user| !user.is_empty());
        if record.object == CLUSTER_PASSWORD && !own_replication_user && !sentinel {
            // The cluster's own password is also what replicas
            // authenticate to their primary with: from now on the new one
            // (the primary, given it too, takes both while the window is
            // open).
            valkey
                .config_set_secret(addr, "masterauth", &password)
                .await
                .map_err(|source| ActError::Valkey {
                    what: format!("setting masterauth on {pod}"),
                    source,
                })?;
        }
        applied.push(username.as_str());
        if record.object == CLUSTER_PASSWORD && every_other_node_holds(target, pod, record) {
            // The last node given the new password: applications may take
            // it from the connection Secret now.
            super::kube_ops::apply_connection_secret(client, target, &password).await?;
            connection_updated = true;
        }
    }
    if !remove.is_empty() {
        *touched = true;
    }
    valkey
        .acl_deluser(addr, remove)
        .await
        .map_err(|source| ActError::Valkey {
            what: format!("deleting ACL users {} on {pod}", remove.join(", ")),
            source,
        })?;
    // A Sentinel keeps its users in its config file, rewritten by
    // `SENTINEL FLUSHCONFIG`; a data node in its ACL file.
    let saved = if sentinel {
        valkey
            .sentinel_flushconfig(addr)
            .await
            .map_err(|source| ActError::Valkey {
                what: format!("saving the config file of {pod}"),
                source,
            })?;
        true
    } else {
        valkey
            .acl_save(addr)
            .await
            .map_err(|source| ActError::Valkey {
                what: format!("saving the ACL file of {pod}"),
                source,
            })?
    };
    Ok((applied, connection_updated, saved))
}

/// Whether every data pod and Sentinel but `pod` holds `record` as it
/// says now.
fn every_other_node_holds(
    target: Target<'_>,
    pod: &str,
    record: &logbook_journal::UserRecord,
) -> bool {
    target
        .state
        .pods
        .keys()
        .chain(target.state.sentinel.pods.keys())
        .filter(|p| p.as_str() != pod)
        .all(|p| target.state.users.holds(p, record))
}

/// Writes the connection Secret of ValkeyUser `object`
/// (`spec.connectionSecret`) with its user name and password, and deletes
/// any other this operator wrote for it (a `connectionSecret` renamed).
///
/// The password is read from its Secret now and must be the one every node
/// was given (its fingerprint as journaled). A Secret of that name not
/// written for this ValkeyUser is never written: it is created when
/// absent (a create fails if someone made it meanwhile) and otherwise
/// replaced only while it is this ValkeyUser's, at the resourceVersion it
/// was read at. The Secret as written is journaled with the outcome.
pub async fn apply_connection(
    client: &kube::Client,
    target: Target<'_>,
    object: &str,
) -> Result<Done, ActError> {
    let ns = target.meta.namespace.as_str();
    let users = &target.state.users;
    let (Some(record), Some(connection)) =
        (users.records.get(object), users.connections.get(object))
    else {
        return Err(ActError::Refused(format!(
            "ValkeyUser {object} asks for no connection Secret any more"
        )));
    };
    let name = connection.secret.as_str();
    let own = crate::observe::users::cluster_secret_names(&target.meta.name, target.spec);
    if own.iter().any(|s| s == name) || connection.state != ConnectionState::Stale {
        return Err(ActError::Refused(format!(
            "the connection Secret {ns}/{name} of ValkeyUser {object} is not to be written"
        )));
    }
    let api: Api<ValkeyUser> = Api::namespaced(client.clone(), ns);
    let user = api
        .get_opt(object)
        .await
        .map_err(kube_err(format!("reading ValkeyUser {ns}/{object}")))?
        .filter(|u| u.metadata.deletion_timestamp.is_none())
        .ok_or_else(|| ActError::Refused(format!("ValkeyUser {ns}/{object} is gone")))?;
    if user.spec.connection_secret.as_deref() != Some(name) {
        return Err(ActError::NotYet(format!(
            "ValkeyUser {ns}/{object} names another connection Secret now: read again first"
        )));
    }
    let owner = user
        .controller_owner_ref(&())
        .ok_or_else(|| ActError::Refused(format!("ValkeyUser {ns}/{object} has no uid yet")))?;
    let uid = owner.uid.clone();
    let password = checked_password(client, target, record).await?;
    let ca = read_connection_ca(client, target.meta, target.spec)
        .await
        .map_err(kube_err(format!(
            "reading the CA of {ns}/{}",
            target.meta.name
        )))?;
    let credentials = Credentials {
        username: Some(&record.username),
        password: password.expose(),
    };
    let secret = build_user_connection_secret(
        target.meta,
        target.spec,
        name,
        owner,
        credentials,
        ca.as_deref(),
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let what = format!("writing the connection Secret {ns}/{name} of ValkeyUser {object}");
    let existing = secrets
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
    let wrote = match existing {
        None => secrets
            .create(&PostParams::default(), &secret)
            .await
            .map_err(secret_write_err(what))
            .map(drop),
        Some(found) if !written_for(&found, &uid) => {
            return Err(ActError::Refused(format!(
                "Secret {ns}/{name} was not written by the operator for ValkeyUser {object}: left as it is"
            )));
        }
        Some(found) => secrets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&replacing(&found, &secret)),
            )
            .await
            .map_err(secret_write_err(what))
            .map(drop),
    };
    wrote?;
    let pruned = prune_user_connections(&secrets, object, &uid, name).await?;
    let pruned = if pruned.is_empty() {
        String::new()
    } else {
        format!("; deleted the old {}", pruned.join(", "))
    };
    Ok(Done {
        detail: format!(
            "the connection Secret {name} of ValkeyUser {object} connects as {}{pruned}",
            record.username
        ),
        events: vec![Event::UserConnectionObserved {
            object: object.to_owned(),
            connection: Some(UserConnection {
                secret: name.to_owned(),
                state: ConnectionState::Current,
            }),
        }],
        password: None,
    })
}

/// A merge patch making `found` hold `secret`'s data and labels, carrying
/// `found`'s resourceVersion (a compare-and-swap: a Secret changed since
/// it was read is not overwritten, 409, retried after a new read). A key
/// `secret` does not hold is removed.
fn replacing(found: &Secret, secret: &Secret) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    for key in found.data.iter().flat_map(|d| d.keys()) {
        data.insert(key.clone(), serde_json::Value::Null);
    }
    for (key, value) in secret.data.iter().flatten() {
        data.insert(key.clone(), json!(value));
    }
    json!({
        "metadata": {
            "resourceVersion": found.metadata.resource_version,
            "labels": secret.metadata.labels,
        },
        "data": data,
    })
}

/// The password of `record`, read from its Secret now, which must have
/// the fingerprint journaled (the one every node was given).
///
/// # Errors
/// [`ActError::NotYet`] when the Secret cannot be used or changed since it
/// was read; API errors.
async fn checked_password(
    client: &kube::Client,
    target: Target<'_>,
    record: &logbook_journal::UserRecord,
) -> Result<crate::valkey::Password, ActError> {
    let ns = target.meta.namespace.as_str();
    let key = read_fingerprint_key(client, target).await?;
    let (name, field) = record
        .secret
        .split_once('/')
        .unwrap_or((&record.secret, ""));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
    let password = password_in(secret.as_ref(), ns, name, field).map_err(ActError::NotYet)?;
    let fingerprint = record.password.as_deref().unwrap_or_default();
    if !key.names(fingerprint, &password) {
        return Err(ActError::NotYet(format!(
            "Secret {ns}/{name} changed since it was read for ACL user {}: read again before writing its connection Secret",
            record.username
        )));
    }
    Ok(password)
}

/// Deletes the connection Secrets this operator wrote for ValkeyUser
/// `object` (`uid`) but `current`: each would go on holding its password.
/// Their names.
async fn prune_user_connections(
    secrets: &Api<Secret>,
    object: &str,
    uid: &str,
    current: &str,
) -> Result<Vec<String>, ActError> {
    let selector = format!("{CONNECTION_USER_LABEL}={object}");
    let listed = secrets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err(format!(
            "listing the connection Secrets of ValkeyUser {object}"
        )))?;
    let mut pruned = Vec::new();
    for old in listed.items {
        let name = old.metadata.name.clone().unwrap_or_default();
        if name == current || !written_for(&old, uid) {
            continue;
        }
        let precondition = DeleteParams {
            preconditions: Some(Preconditions {
                uid: old.metadata.uid.clone(),
                resource_version: old.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match secrets.delete(&name, &precondition).await {
            Ok(_) => pruned.push(name),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(ActError::Kube {
                    what: format!(
                        "deleting the old connection Secret {name} of ValkeyUser {object}"
                    ),
                    source,
                });
            }
        }
    }
    Ok(pruned)
}

/// The CA certificate (PEM) a TLS cluster's clients verify it with, from
/// its certificate Secret, if it holds one yet; `None` without TLS.
///
/// # Errors
/// The API's.
pub async fn read_connection_ca(
    client: &kube::Client,
    meta: &crate::resources::ClusterMeta,
    spec: &logbook_crds::ValkeyClusterSpec,
) -> Result<Option<String>, kube::Error> {
    let Some(name) = spec.tls.certificate_secret(&meta.name) else {
        return Ok(None);
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &meta.namespace);
    let secret = api.get_opt(&name).await?;
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get(crate::tls::CA_KEY).cloned())
        .and_then(|b| String::from_utf8(b.0).ok()))
}

/// Deletes the connection Secrets the operator wrote for ValkeyUser
/// `object`, then removes the operator's finalizer from it, letting its
/// deletion complete; a user already gone is fine. (The Secrets are owned
/// by the ValkeyUser too, so the garbage collector would take them after
/// it; deleted here first, no Secret holding its password outlives it.)
pub async fn release(
    client: &kube::Client,
    target: Target<'_>,
    object: &str,
) -> Result<Done, ActError> {
    let ns = &target.meta.namespace;
    let api: Api<ValkeyUser> = Api::namespaced(client.clone(), ns);
    let what = format!("releasing ValkeyUser {ns}/{object}");
    let Some(user) = api.get_opt(object).await.map_err(kube_err(what.clone()))? else {
        return Ok(Done::said(format!("ValkeyUser {object} is already gone")));
    };
    let uid = user.metadata.uid.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let deleted = prune_user_connections(&secrets, object, &uid, "").await?;
    set_finalizer(&api, &user, false)
        .await
        .map_err(kube_err(what))?;
    let deleted = if deleted.is_empty() {
        String::new()
    } else {
        format!("; deleted its connection Secret {}", deleted.join(", "))
    };
    Ok(Done::said(format!(
        "ValkeyUser {object} released: its user is on no node{deleted}"
    )))
}

/// Adds (`present`) or removes the operator's finalizer on `user`, when it
/// is not already so; whether it wrote. The patch carries the object's
/// `resourceVersion`, making it a compare-and-swap: a finalizer another
/// controller added meanwhile is never dropped (409, retried).
///
/// # Errors
/// The API's.
pub async fn set_finalizer(
    api: &Api<ValkeyUser>,
    user: &ValkeyUser,
    present: bool,
) -> Result<bool, kube::Error> {
    let current = user.metadata.finalizers.clone().unwrap_or_default();
    if current.iter().any(|f| f == USER_FINALIZER) == present {
        return Ok(false);
    }
    let mut finalizers: Vec<String> = current
        .into_iter()
        .filter(|f| f != USER_FINALIZER)
        .collect();
    if present {
        finalizers.push(USER_FINALIZER.to_owned());
    }
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": user.metadata.resource_version,
        }
    });
    let name = user.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

/// Releases every ValkeyUser naming `meta`'s cluster (its finalizer
/// removed); the names of those it changed.
///
/// # Errors
/// [`ActError::Kube`] on an API failure.
pub(super) async fn release_all(
    client: &kube::Client,
    meta: &crate::resources::ClusterMeta,
) -> Result<Vec<String>, ActError> {
    let ns = meta.namespace.as_str();
    let api: Api<ValkeyUser> = Api::namespaced(client.clone(), ns);
    let listed = api
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|source| ActError::Kube {
            what: format!("listing the ValkeyUsers of {ns}"),
            source,
        })?;
    let mut released = Vec::new();
    for user in listed.items.iter().filter(|u| u.spec.cluster == meta.name) {
        let object = user.metadata.name.clone().unwrap_or_default();
        let wrote = set_finalizer(&api, user, false)
            .await
            .map_err(|source| ActError::Kube {
                what: format!("releasing ValkeyUser {ns}/{object}"),
                source,
            })?;
        if wrote {
            released.push(object);
        }
    }
    Ok(released)
}
