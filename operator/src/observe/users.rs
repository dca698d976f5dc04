//! ACL users: the cluster's `ValkeyUser` objects read into records, their
//! password Secrets read into fingerprints (keyed: see
//! [`super::fingerprints`]), their connection Secrets judged against what
//! they must hold (never the password itself: only whether it is there),
//! and each node's `ACL LIST` into what it holds; each journaled only when
//! it differs from the projection.
//!
//! The reading (API calls, Valkey calls) is the reconcile's; what is
//! recorded from it is decided here, without I/O.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use logbook_crds::{ValkeyClusterSpec, ValkeyUser, validate_user};
use logbook_journal::{
    CLUSTER_PASSWORD, ClusterState, ConnectionState, Event, UserConnection, UserRecord,
};

use super::fingerprints::Fingerprints;
use crate::valkey::Password;

/// The finalizer a ValkeyUser carries while its user may be on a node.
pub const USER_FINALIZER: &str = "valkey.logbook.dev/acl-user";

/// A password as read from a user's Secret, or why there is none.
pub type PasswordRead = Result<Password, String>;

/// The password in `secret` (if it exists) under `key`, or why it cannot
/// be used: a missing Secret or key, text that is not UTF-8, or an empty
/// password (a user is never made password-less).
pub fn password_in(
    secret: Option<&Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> PasswordRead {
    let Some(secret) = secret else {
        return Err(format!("Secret {namespace}/{name} not found"));
    };
    let value: Option<&ByteString> = secret.data.as_ref().and_then(|d| d.get(key));
    let Some(value) = value else {
        return Err(format!("Secret {namespace}/{name} has no key {key}"));
    };
    let text = String::from_utf8(value.0.clone())
        .map_err(|_| format!("Secret {namespace}/{name} key {key} is not UTF-8 text"))?;
    if text.is_empty() {
        return Err(format!(
            "Secret {namespace}/{name} key {key} is empty: a user is never left without a password"
        ));
    }
    Ok(Password::new(text))
}

/// The record of `user` as read now, with its password (`None` when the
/// spec is refused, so no Secret was read) fingerprinted by `prints`;
/// `None` when there is a password to fingerprint but no key to do it with
/// (the record journaled before, if any, is then kept as it is).
///
/// `in_force` is the ACL user name the projection's record of this object
/// has: the user name is immutable, so a spec naming another is refused,
/// and the record keeps the name in force (its user stays on the nodes as
/// it is, and no other is made beside it).
pub fn user_record(
    user: &ValkeyUser,
    in_force: Option<&str>,
    password: Option<&PasswordRead>,
    prints: &mut Fingerprints<'_>,
) -> Option<UserRecord> {
    let object = user.metadata.name.clone().unwrap_or_default();
    let spec = &user.spec;
    let asked = spec.effective_username(&object);
    let username = in_force.unwrap_or(asked).to_owned();
    let old = in_force.filter(|name| *name != asked).map(|name| {
        let mut old = spec.clone();
        old.username = Some(name.to_owned());
        old
    });
    let refused = validate_user(&object, spec, old.as_ref())
        .err()
        .map(|errors| {
            format!(
                "spec refused: {}",
                logbook_crds::v1alpha1::validation::describe(&errors)
            )
        });
    let (fingerprint, problem) = match (refused, password) {
        (Some(refused), _) => (None, Some(refused)),
        (None, Some(Ok(password))) => (Some(prints.of(password)?), None),
        (None, Some(Err(why))) => (None, Some(why.clone())),
        (None, None) => (None, Some("its password Secret was not read".to_owned())),
    };
    Some(UserRecord {
        object,
        username,
        generation: user.metadata.generation.unwrap_or(0),
        rules: spec.acl_rules(),
        secret: format!("{}/{}", spec.password_secret.name, spec.password_secret.key),
        password: fingerprint,
        problem,
        deleting: user.metadata.deletion_timestamp.is_some(),
        rotation_window_ms: window_ms(spec.rotation_window_seconds),
    })
}

/// `UserObserved` for each record that differs from the projection's,
/// and `UserForgotten` for each projected user whose object is gone.
pub fn observe_users(state: &ClusterState, records: &[UserRecord]) -> Vec<Event> {
    let mut events: Vec<Event> = records
        .iter()
        .filter(|r| state.users.records.get(&r.object) != Some(*r))
        .map(|r| Event::UserObserved { user: r.clone() })
        .collect();
    for object in state.users.records.keys() {
        if !records.iter().any(|r| &r.object == object) {
            events.push(Event::UserForgotten {
                object: object.clone(),
            });
        }
    }
    events
}

/// The names of the cluster's own Secrets (its password's, its connection
/// Secret, its internal users', its TLS certificate's and CA's): a
/// ValkeyUser's `connectionSecret` may name none of them, even before the
/// cluster has made it.
pub fn cluster_secret_names(cluster: &str, spec: &ValkeyClusterSpec) -> Vec<String> {
    let mut names = vec![
        spec.connection_secret_name(cluster),
        crate::resources::internal_users::internal_secret_name(cluster),
        logbook_crds::v1alpha1::generated_password_secret(cluster).name,
        crate::tls::ca_secret_name(cluster),
    ];
    names.extend(spec.auth.password_secret.as_ref().map(|s| s.name.clone()));
    names.extend(spec.tls.certificate_secret(cluster));
    names
}

/// Whether `secret` is the operator's for the ValkeyUser whose uid is
/// `uid`: its controlling owner is that object.
pub fn written_for(secret: &Secret, uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true) && o.kind == "ValkeyUser")
}

/// How the connection Secret `name` of ValkeyUser `user` stands: refused
/// when it is one of `cluster_secrets` or an existing Secret not written
/// for this user (`existing`, as read now); current when it holds exactly
/// `built` (what it must hold with the password read now); stale
/// otherwise, or when there is nothing to compare with (no password).
pub fn connection_state(
    user: &ValkeyUser,
    name: &str,
    cluster: &str,
    cluster_secrets: &[String],
    existing: Option<&Secret>,
    built: Option<&Secret>,
) -> ConnectionState {
    let ns = user.metadata.namespace.as_deref().unwrap_or_default();
    if cluster_secrets.iter().any(|s| s == name) {
        return ConnectionState::Refused(format!(
            "spec.connectionSecret {name:?} is one of ValkeyCluster {ns}/{cluster}'s own Secrets: name another"
        ));
    }
    let uid = user.metadata.uid.as_deref().unwrap_or_default();
    match existing {
        Some(secret) if !written_for(secret, uid) => ConnectionState::Refused(format!(
            "spec.connectionSecret: Secret {ns}/{name} exists and was not written by the operator for this ValkeyUser: it is left as it is; name another Secret, or delete that one"
        )),
        Some(secret) if built.is_some_and(|b| b.data == secret.data && b.type_ == secret.type_) => {
            ConnectionState::Current
        }
        _ => ConnectionState::Stale,
    }
}

/// `UserConnectionObserved` for each ValkeyUser whose connection Secret
/// (`connections`: by object, `None` when it asks for none or is being
/// deleted) differs from the projection's, and for each projected one
/// whose object is gone.
pub fn observe_connections(
    state: &ClusterState,
    connections: &[(String, Option<UserConnection>)],
) -> Vec<Event> {
    let mut events: Vec<Event> = connections
        .iter()
        .filter(|(object, c)| state.users.connections.get(object) != c.as_ref())
        .map(|(object, c)| Event::UserConnectionObserved {
            object: object.clone(),
            connection: c.clone(),
        })
        .collect();
    for object in state.users.connections.keys() {
        if !connections.iter().any(|(o, _)| o == object) {
            events.push(Event::UserConnectionObserved {
                object: object.clone(),
                connection: None,
            });
        }
    }
    events
}

/// The record of the cluster's own password (user `default`), read from
/// `secret` (`<name>/<key>`) now; `None` without the fingerprint key.
pub fn cluster_password_record(
    secret: &str,
    password: &Password,
    rotation_window_seconds: i32,
    prints: &mut Fingerprints<'_>,
) -> Option<UserRecord> {
    Some(UserRecord {
        object: CLUSTER_PASSWORD.to_owned(),
        username: "default".to_owned(),
        generation: 0,
        // What every data pod boots its default user with.
        rules: ["on", "~*", "&*", "+@all"].map(str::to_owned).to_vec(),
        secret: secret.to_owned(),
        password: Some(prints.of(password)?),
        problem: None,
        deleting: false,
        rotation_window_ms: window_ms(rotation_window_seconds),
    })
}

/// The record of internal user `name` of a cluster of `topology`, its
/// password read from `<cluster>-internal` key `key` now; `None` without
/// the fingerprint key.
pub fn internal_record(
    cluster: &str,
    user: crate::resources::internal_users::InternalUser,
    password: &Password,
    topology: logbook_crds::Topology,
    prints: &mut Fingerprints<'_>,
) -> Option<UserRecord> {
    let rules = crate::resources::internal_users::data_node_rules(user.name, topology);
    Some(UserRecord {
        object: format!("{}{}", logbook_journal::INTERNAL_USER, user.name),
        username: user.name.to_owned(),
        generation: 0,
        rules: std::iter::once("on")
            .chain(rules.split_whitespace())
            .map(str::to_owned)
            .collect(),
        secret: format!(
            "{}/{}",
            crate::resources::internal_users::internal_secret_name(cluster),
            user.key
        ),
        password: Some(prints.of(password)?),
        problem: None,
        deleting: false,
        rotation_window_ms: 0,
    })
}

/// A window in seconds as milliseconds (a negative one, which validation
/// refuses, as none).
fn window_ms(seconds: i32) -> u64 {
    u64::try_from(seconds).unwrap_or(0).saturating_mul(1000)
}

/// The user names whose presence on a node is journaled: every projected
/// ValkeyUser's, and `default` once the operator keeps it (its password
/// changed).
pub fn watched_usernames(state: &ClusterState) -> Vec<&str> {
    let manages_default = state.users.manages_default();
    let mut names: Vec<&str> = state
        .users
        .records
        .values()
        .filter(|r| r.object != CLUSTER_PASSWORD || manages_default)
        .map(|r| r.username.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::collections::BTreeMap;

    use logbook_crds::ValkeyUserSpec;

    use super::*;
    use crate::valkey::FingerprintKey;

    fn secret(key: &str, value: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn key() -> FingerprintKey {
        FingerprintKey::from_bytes(&[3; crate::valkey::FINGERPRINT_KEY_LEN]).unwrap()
    }

    fn prints(key: Option<&FingerprintKey>) -> Fingerprints<'_> {
        Fingerprints::new(key)
    }

    fn app() -> ValkeyUser {
        let mut spec = ValkeyUserSpec::new("demo", "app-password", "password");
        spec.commands = vec!["+@all".into()];
        spec.keys = vec!["app:*".into()];
        let mut user = ValkeyUser::new("app", spec);
        user.metadata.generation = Some(2);
        user
    }

    #[test]
    fn every_unusable_password_says_why_and_never_leaks_it() {
        let cases = [
            (None, "not found"),
            (Some(secret("other", "x")), "has no key password"),
            (Some(secret("password", "")), "is empty"),
        ];
        for (s, want) in cases {
            let read = password_in(s.as_ref(), "ns", "app-password", "password");
            let err = read.err().unwrap();
            assert!(err.contains(want), "{err}");
            let record =
                user_record(&app(), None, Some(&Err(err.clone())), &mut prints(None)).unwrap();
            assert_eq!(record.password, None);
            assert_eq!(record.problem.as_deref(), Some(err.as_str()));
            assert!(!record.applicable(), "never applied password-less");
        }
        let read = password_in(Some(&secret("password", "s3cret")), "ns", "n", "password");
        let record = user_record(&app(), None, Some(&read), &mut prints(Some(&key()))).unwrap();
        assert_eq!(
            record.password,
            Some(key().password(&Password::new("s3cret"))),
            "keyed with the cluster's key"
        );
        // Without the key, a password is not fingerprinted: no record.
        assert_eq!(
            user_record(&app(), None, Some(&read), &mut prints(None)),
            None
        );
        assert!(!format!("{record:?}").contains("s3cret"));
        assert_eq!(record.rules, ["on", "+@all", "~app:*"]);
        assert_eq!(record.generation, 2);
    }

    #[test]
    fn a_refused_spec_is_a_problem_without_reading_the_secret() {
        let mut user = app();
        user.spec.commands = vec!["+@nosuch".into()];
        let record = user_record(&user, None, None, &mut prints(None)).unwrap();
        assert!(
            record
                .problem
                .unwrap()
                .starts_with("spec refused: spec.commands[0]")
        );
    }

    #[test]
    fn a_new_user_name_is_refused_and_the_name_in_force_kept() {
        // Renaming would leave the old ACL user, with its password, on
        // every node.
        let read = password_in(Some(&secret("password", "p")), "ns", "n", "password");
        let mut user = app();
        user.spec.username = Some("renamed".into());
        let record =
            user_record(&user, Some("app"), Some(&read), &mut prints(Some(&key()))).unwrap();
        assert_eq!(record.username, "app", "the name in force is kept");
        let problem = record.problem.clone().unwrap();
        assert!(
            problem.starts_with(
                "spec refused: spec.username: the user name is immutable (was \"app\")"
            ),
            "{problem}"
        );
        assert!(!record.applicable(), "nothing applied under either name");
        // The same name (given or defaulted) is no change.
        let record =
            user_record(&app(), Some("app"), Some(&read), &mut prints(Some(&key()))).unwrap();
        assert_eq!((record.username.as_str(), record.problem), ("app", None));
    }

    fn owned_by(uid: &str, data: &str) -> Secret {
        let mut s = secret("password", data);
        s.type_ = Some("Opaque".into());
        s.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "valkey.logbook.dev/v1alpha1".into(),
                kind: "ValkeyUser".into(),
                name: "app".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            },
        ]);
        s
    }

    #[test]
    fn a_connection_secret_not_written_for_the_user_is_refused() {
        let mut user = app();
        user.metadata.uid = Some("u-1".into());
        user.metadata.namespace = Some("ns".into());
        let own = cluster_secret_names("demo", &ValkeyClusterSpec::default());
        assert!(own.contains(&"demo-connection".to_owned()), "{own:?}");
        assert!(own.contains(&"demo-internal".to_owned()), "{own:?}");
        let judge = |name: &str, existing: Option<&Secret>, built: Option<&Secret>| {
            connection_state(&user, name, "demo", &own, existing, built)
        };
        let built = owned_by("u-1", "new");
        // One of the cluster's, even before it exists.
        let refused = |state: ConnectionState, want: &str| {
            assert!(
                matches!(&state, ConnectionState::Refused(why) if why.contains(want)),
                "{state:?}"
            );
        };
        refused(
            judge("demo-connection", None, Some(&built)),
            "ValkeyCluster ns/demo's own Secrets",
        );
        // Someone else's (no owner, or another ValkeyUser's).
        for foreign in [secret("password", "x"), owned_by("u-2", "new")] {
            refused(
                judge("app-valkey", Some(&foreign), Some(&built)),
                "not written by the operator",
            );
        }
        assert_eq!(
            judge("app-valkey", None, Some(&built)),
            ConnectionState::Stale
        );
        let old = owned_by("u-1", "old");
        assert_eq!(
            judge("app-valkey", Some(&old), Some(&built)),
            ConnectionState::Stale
        );
        assert_eq!(
            judge("app-valkey", Some(&old), None),
            ConnectionState::Stale
        );
        assert_eq!(
            judge("app-valkey", Some(&built), Some(&built)),
            ConnectionState::Current
        );
    }

    #[test]
    fn connections_are_journaled_on_change_and_forgotten() {
        let mut state = ClusterState::new();
        let c = UserConnection {
            secret: "app-valkey".into(),
            state: ConnectionState::Current,
        };
        let read = vec![("app".to_owned(), Some(c.clone()))];
        assert_eq!(observe_connections(&state, &read).len(), 1);
        state.users.connections.insert("app".into(), c);
        assert!(observe_connections(&state, &read).is_empty(), "converged");
        assert_eq!(
            observe_connections(&state, &[]),
            vec![Event::UserConnectionObserved {
                object: "app".into(),
                connection: None
            }]
        );
        assert_eq!(
            observe_connections(&state, &[("app".to_owned(), None)]).len(),
            1
        );
    }

    #[test]
    fn records_are_journaled_on_change_and_gone_objects_forgotten() {
        let mut state = ClusterState::new();
        let read = password_in(Some(&secret("password", "p")), "ns", "n", "password");
        let record = user_record(&app(), None, Some(&read), &mut prints(Some(&key()))).unwrap();
        let events = observe_users(&state, std::slice::from_ref(&record));
        assert_eq!(events.len(), 1);
        state.users.records.insert("app".into(), record.clone());
        assert!(observe_users(&state, std::slice::from_ref(&record)).is_empty());
        assert_eq!(
            observe_users(&state, &[]),
            vec![Event::UserForgotten {
                object: "app".into()
            }]
        );
        assert_eq!(watched_usernames(&state), ["app"]);
    }
}
