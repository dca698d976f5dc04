//! The [`ValkeyUser`] resource: one ACL user of one ValkeyCluster, its
//! rules, its password Secret, its status; the ACL rules it renders to and
//! their validation ([`validate_user`]).
//!
//! This module owns what a user may ask for and how that reads as Valkey
//! ACL rules. It never holds a password: the spec names a Secret key, and
//! the operator reads the password when it applies the user. It must not
//! talk to a server (the operator's `actuate/users.rs` does).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::security::SecretKeyRef;
use super::validation::{FieldError, FieldErrorKind, check_dns_label};

/// The prefix of the users the operator keeps for itself: a ValkeyUser
/// may not be named with it.
pub const INTERNAL_USER_PREFIX: &str = "logbook-";

/// The ACL categories Valkey knows (`ACL CAT`, and `all`), for
/// `+@category` rules.
pub const ACL_CATEGORIES: &[&str] = &[
    "admin",
    "all",
    "bitmap",
    "blocking",
    "connection",
    "dangerous",
    "fast",
    "geo",
    "hash",
    "hyperloglog",
    "keyspace",
    "list",
    "pubsub",
    "read",
    "scripting",
    "set",
    "slow",
    "sortedset",
    "stream",
    "string",
    "transaction",
    "write",
];

/// Longest user name accepted.
pub const MAX_USERNAME: usize = 64;

/// Longest key or channel pattern accepted.
pub const MAX_PATTERN: usize = 512;

/// Most rules of one kind (commands, key patterns, channel patterns).
pub const MAX_RULES: usize = 128;

/// Desired state of a ValkeyUser: an ACL user on every node of the named
/// ValkeyCluster (same namespace).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "valkey.logbook.dev",
    version = "v1alpha1",
    kind = "ValkeyUser",
    plural = "valkeyusers",
    singular = "valkeyuser",
    namespaced,
    shortname = "vku",
    category = "valkey",
    status = "ValkeyUserStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"User","type":"string","jsonPath":".status.username"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Nodes","type":"string","jsonPath":".status.nodes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ValkeyUserSpec {
    /// The ValkeyCluster, in the same namespace, whose nodes get this user.
    /// Immutable.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("cluster is immutable"))]
    pub cluster: String,
    /// The ACL user name (default: the ValkeyUser's name). Not `default`,
    /// not starting with `logbook-` (the operator's own users). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub username: Option<String>,
    /// Whether the user may authenticate (default `true`); `false` keeps
    /// the user but refuses its logins (`off`).
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// The Secret key holding the user's password. A missing Secret or an
    /// empty password is an error on this status: the user is never made
    /// password-less.
    pub password_secret: SecretKeyRef,
    /// Command rules, applied in order: `+@read`, `-@dangerous`, `+get`,
    /// `-config|set`, `allcommands`, `nocommands`. Empty: no command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub commands: Vec<String>,
    /// Key patterns the user may read and write (`app:*` renders `~app:*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub keys: Vec<String>,
    /// Key patterns the user may only read (`%R~pattern`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub read_keys: Vec<String>,
    /// Key patterns the user may only write (`%W~pattern`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub write_keys: Vec<String>,
    /// Pub/Sub channel patterns (`&pattern`). Empty: no channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub channels: Vec<String>,
    /// When the password in the Secret changes, how long the old one keeps
    /// working beside the new one (default 300 s; 0: replaced at once), so
    /// that clients can move to the new one without an error.
    #[serde(default = "rotation_window_default")]
    #[schemars(range(min = 0, max = 86400))]
    pub rotation_window_seconds: i32,
    /// A Secret, in this namespace, the operator writes for an application
    /// to connect as this user: `REDIS_URL`, `username`, `password`,
    /// `host`, `port`, and as the cluster's topology and TLS ask,
    /// `clusterNodes`, the Sentinel keys, `tls` and `ca.crt`. Owned by the
    /// ValkeyUser (deleted with it), written once every node holds the
    /// user, kept in step with its password. A Secret of that name the
    /// operator did not write for this user, the password Secret and the
    /// cluster's own Secrets are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub connection_secret: Option<String>,
}

/// The default `rotationWindowSeconds`.
pub const ROTATION_WINDOW_SECONDS: i32 = 300;

fn rotation_window_default() -> i32 {
    ROTATION_WINDOW_SECONDS
}

fn enabled_default() -> bool {
    true
}

/// Lifecycle stage of a ValkeyUser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UserPhase {
    /// Being applied to the cluster's nodes.
    Pending,
    /// On every node of the cluster, as the spec says.
    Ready,
    /// Cannot be applied until a person acts (see `message`).
    Failed,
    /// Being removed from the nodes (the object is deleted).
    Removing,
}

/// Observed state of a ValkeyUser.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ValkeyUserStatus {
    /// Lifecycle stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<UserPhase>,
    /// The ACL user name in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `applied/total`: nodes holding the user as the spec says, of the
    /// cluster's nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
    /// A short fingerprint of the password in force (never the password):
    /// keyed with the cluster's own fingerprint key, so that it confirms
    /// no guess of the password without that key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_fingerprint: Option<String>,
    /// What is wrong, for a person, when not Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with a reason when it is false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl ValkeyUserSpec {
    /// A spec for `cluster` with the password in `secret`/`key` and no
    /// rules (tests and samples fill them in).
    pub fn new(cluster: &str, secret: &str, key: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            username: None,
            enabled: true,
            password_secret: SecretKeyRef {
                name: secret.to_owned(),
                key: key.to_owned(),
            },
            commands: Vec::new(),
            keys: Vec::new(),
            read_keys: Vec::new(),
            write_keys: Vec::new(),
            channels: Vec::new(),
            rotation_window_seconds: ROTATION_WINDOW_SECONDS,
            connection_secret: None,
        }
    }

    /// The ACL user name: `username`, else the object's `name`.
    pub fn effective_username<'a>(&'a self, name: &'a str) -> &'a str {
        self.username.as_deref().unwrap_or(name)
    }

    /// The rules after `reset` and the password, in the order Valkey
    /// applies them: `on`/`off`, the command rules, the key patterns, the
    /// channel patterns. (`reset` leaves no command, key or channel: only
    /// what is listed is allowed.)
    pub fn acl_rules(&self) -> Vec<String> {
        let mut rules = vec![if self.enabled { "on" } else { "off" }.to_owned()];
        rules.extend(self.commands.iter().map(|c| c.to_ascii_lowercase()));
        rules.extend(self.keys.iter().map(|k| format!("~{k}")));
        rules.extend(self.read_keys.iter().map(|k| format!("%R~{k}")));
        rules.extend(self.write_keys.iter().map(|k| format!("%W~{k}")));
        rules.extend(self.channels.iter().map(|c| format!("&{c}")));
        rules
    }
}

/// Check a ValkeyUser named `name` with `spec`, and when `old` is given,
/// the change from `old`.
///
/// # Errors
///
/// Every rule that fails, one [`FieldError`] each, in field order.
pub fn validate_user(
    name: &str,
    spec: &ValkeyUserSpec,
    old: Option<&ValkeyUserSpec>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |path: String, kind: FieldErrorKind, message: String| {
        errors.push(FieldError::new(path, kind, message));
    };
    if let Err(why) = check_dns_label(&spec.cluster) {
        fail("spec.cluster".into(), FieldErrorKind::Invalid, why);
    }
    let username = spec.effective_username(name);
    let path = if spec.username.is_some() {
        "spec.username"
    } else {
        "metadata.name"
    };
    if let Err(why) = check_username(username) {
        fail(path.into(), FieldErrorKind::Invalid, why);
    }
    if let Err(why) = super::validation::check_dns_subdomain(&spec.password_secret.name) {
        fail(
            "spec.passwordSecret.name".into(),
            FieldErrorKind::Invalid,
            why,
        );
    }
    if let Err(why) = super::validation::check_secret_key(&spec.password_secret.key) {
        fail(
            "spec.passwordSecret.key".into(),
            FieldErrorKind::Invalid,
            why,
        );
    }
    for (field, rules) in [
        ("commands", &spec.commands),
        ("keys", &spec.keys),
        ("readKeys", &spec.read_keys),
        ("writeKeys", &spec.write_keys),
        ("channels", &spec.channels),
    ] {
        if rules.len() > MAX_RULES {
            fail(
                format!("spec.{field}"),
                FieldErrorKind::OutOfRange,
                format!("at most {MAX_RULES} entries, got {}", rules.len()),
            );
        }
        for (i, rule) in rules.iter().enumerate() {
            let checked = if field == "commands" {
                check_command_rule(rule)
            } else {
                check_pattern(rule)
            };
            if let Err(why) = checked {
                fail(format!("spec.{field}[{i}]"), FieldErrorKind::Invalid, why);
            }
        }
    }
    if !(0..=86_400).contains(&spec.rotation_window_seconds) {
        fail(
            "spec.rotationWindowSeconds".into(),
            FieldErrorKind::OutOfRange,
            format!(
                "must be 0 to 86400 (a day), got {}",
                spec.rotation_window_seconds
            ),
        );
    }
    if let Some(connection) = &spec.connection_secret {
        if let Err(why) = super::validation::check_dns_subdomain(connection) {
            fail("spec.connectionSecret".into(), FieldErrorKind::Invalid, why);
        } else if *connection == spec.password_secret.name {
            fail(
                "spec.connectionSecret".into(),
                FieldErrorKind::Invalid,
                format!(
                    "{connection:?} is the password Secret (spec.passwordSecret.name): name another Secret for the operator to write"
                ),
            );
        }
    }
    if let Some(old) = old {
        if old.cluster != spec.cluster {
            fail(
                "spec.cluster".into(),
                FieldErrorKind::Immutable,
                format!("cluster is immutable (was {:?})", old.cluster),
            );
        }
        if old.effective_username(name) != username {
            // Named by the field even when it was left out (the name is
            // then the object's): that is where it changed.
            let now = if spec.username.is_some() {
                String::new()
            } else {
                format!(", and without spec.username it is the object's name {username:?}")
            };
            fail(
                "spec.username".into(),
                FieldErrorKind::Immutable,
                format!(
                    "the user name is immutable (was {:?}{now}): create another ValkeyUser",
                    old.effective_username(name)
                ),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// An ACL user name a ValkeyUser may take.
///
/// # Errors
///
/// What is wrong with `name`.
pub fn check_username(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_USERNAME {
        return Err(format!(
            "user name {name:?} must be 1 to {MAX_USERNAME} characters"
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(format!(
            "user name {name:?} must start with a letter or digit and hold only letters, digits, '.', '_' and '-'"
        ));
    }
    if name.eq_ignore_ascii_case("default") {
        return Err(
            "user name \"default\" is the cluster's own user (spec.auth of the ValkeyCluster)"
                .to_owned(),
        );
    }
    if name.to_ascii_lowercase().starts_with(INTERNAL_USER_PREFIX) {
        return Err(format!(
            "user name {name:?}: names starting with {INTERNAL_USER_PREFIX:?} are the operator's own users"
        ));
    }
    Ok(())
}

/// One command rule: `+name`, `-name`, `+name|sub`, `-name|sub`,
/// `+@category`, `-@category`, `allcommands` or `nocommands`.
///
/// # Errors
///
/// What is wrong with `rule`, naming what is allowed.
pub fn check_command_rule(rule: &str) -> Result<(), String> {
    let lower = rule.to_ascii_lowercase();
    if lower == "allcommands" || lower == "nocommands" {
        return Ok(());
    }
    let Some(body) = lower.strip_prefix('+').or_else(|| lower.strip_prefix('-')) else {
        return Err(format!(
            "command rule {rule:?} must start with '+' or '-' (or be allcommands/nocommands)"
        ));
    };
    if let Some(category) = body.strip_prefix('@') {
        return if ACL_CATEGORIES.contains(&category) {
            Ok(())
        } else {
            Err(format!(
                "command rule {rule:?}: unknown category {category:?}; known: {}",
                ACL_CATEGORIES.join(", ")
            ))
        };
    }
    let mut parts = body.split('|');
    let name_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
    };
    let command = parts.next().unwrap_or("");
    let sub = parts.next();
    if !name_ok(command) || sub.is_some_and(|s| !name_ok(s)) || parts.next().is_some() {
        return Err(format!(
            "command rule {rule:?} must name a command (+get, -flushall) or a subcommand (+client|list)"
        ));
    }
    Ok(())
}

/// A key or channel pattern: 1 to [`MAX_PATTERN`] printable characters,
/// no whitespace (ACL rules are separated by spaces).
///
/// # Errors
///
/// What is wrong with `pattern`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN {
        return Err(format!(
            "pattern {pattern:?} must be 1 to {MAX_PATTERN} characters"
        ));
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "pattern {pattern:?} may not hold whitespace or control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn app() -> ValkeyUserSpec {
        let mut s = ValkeyUserSpec::new("demo", "app-password", "password");
        s.commands = vec!["+@all".into(), "-@dangerous".into()];
        s.keys = vec!["app:*".into()];
        s
    }

    #[test]
    fn rules_render_in_valkey_order_and_reset_leaves_nothing_else() {
        let mut s = app();
        s.read_keys = vec!["shared:*".into()];
        s.write_keys = vec!["log:*".into()];
        s.channels = vec!["app:*".into()];
        assert_eq!(
            s.acl_rules(),
            [
                "on",
                "+@all",
                "-@dangerous",
                "~app:*",
                "%R~shared:*",
                "%W~log:*",
                "&app:*"
            ]
        );
        s.enabled = false;
        assert_eq!(s.acl_rules()[0], "off");
    }

    #[test]
    fn a_valid_user_passes_and_the_name_defaults_to_the_objects() {
        assert_eq!(validate_user("app", &app(), None), Ok(()));
        assert_eq!(app().effective_username("app"), "app");
    }

    #[test]
    fn reserved_and_malformed_names_are_refused_naming_the_field() {
        for (name, username) in [
            ("default", None),
            ("x", Some("default")),
            ("x", Some("logbook-operator")),
            ("x", Some("has space")),
            ("x", Some("-lead")),
        ] {
            let mut s = app();
            s.username = username.map(str::to_owned);
            let errs = validate_user(name, &s, None).unwrap_err();
            let want = if username.is_some() {
                "spec.username"
            } else {
                "metadata.name"
            };
            assert_eq!(errs[0].path, want, "{name} {username:?}: {errs:?}");
        }
    }

    #[test]
    fn bad_rules_are_refused_with_what_is_allowed() {
        let mut s = app();
        s.commands = vec![
            "get".into(),
            "+@reads".into(),
            "+client|list".into(),
            "+a|b|c".into(),
            "ALLCOMMANDS".into(),
        ];
        s.keys = vec!["a b".into(), String::new()];
        let errs = validate_user("app", &s, None).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.commands[0]",
                "spec.commands[1]",
                "spec.commands[3]",
                "spec.keys[0]",
                "spec.keys[1]"
            ]
        );
        assert!(
            errs[1].message.contains("known: admin, all"),
            "{}",
            errs[1].message
        );
    }

    #[test]
    fn a_connection_secret_must_be_a_name_and_not_the_password_secret() {
        let mut s = app();
        s.connection_secret = Some("app-valkey".into());
        assert_eq!(validate_user("app", &s, None), Ok(()));
        for bad in ["Bad_Name", "app-password"] {
            s.connection_secret = Some(bad.into());
            let errs = validate_user("app", &s, None).unwrap_err();
            assert_eq!(errs[0].path, "spec.connectionSecret", "{bad}: {errs:?}");
        }
        assert!(
            validate_user("app", &s, None).unwrap_err()[0]
                .message
                .contains("is the password Secret")
        );
    }

    #[test]
    fn the_cluster_and_the_user_name_are_immutable() {
        let old = app();
        let mut new = app();
        new.cluster = "other".into();
        new.username = Some("app2".into());
        let errs = validate_user("app", &new, Some(&old)).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|e| e.kind == FieldErrorKind::Immutable));
    }
}
