//! Rules for `spec.config`: which `valkey.conf` directives a user may set.
//!
//! The operator renders `valkey.conf` itself and appends the user's
//! directives; a directive that sets ports, addresses, replication, cluster
//! membership, TLS, passwords, files or process management would fight the
//! operator (or let a user escape it), so it is refused by name. Keys and
//! values are also checked for characters that would inject further lines
//! into the rendered file. This module must not render configuration.

use std::collections::BTreeMap;

use super::error::{Errors, FieldErrorKind};

/// Directives owned by the operator, compared case-insensitively.
pub const OWNED_DIRECTIVES: &[&str] = &[
    "port",
    "bind",
    "cluster-enabled",
    "cluster-config-file",
    "cluster-node-timeout",
    "cluster-port",
    "replicaof",
    "slaveof",
    "dir",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "requirepass",
    "masterauth",
    "masteruser",
    "primaryauth",
    "primaryuser",
    "aclfile",
    "unixsocket",
    "unixsocketperm",
    "unixsocketgroup",
    "daemonize",
    "pidfile",
    "logfile",
    "include",
    "rename-command",
    "replica-announce-ip",
    "slave-announce-ip",
    "replica-announce-port",
    "slave-announce-port",
];

/// Directive prefixes owned by the operator (`tls-port`, `cluster-announce-ip`, ...).
pub const OWNED_DIRECTIVE_PREFIXES: &[&str] = &["tls-", "cluster-announce-"];

/// Directives rendered from `spec.storage.persistence`.
pub const PERSISTENCE_DIRECTIVES: &[&str] = &["save", "appendonly"];

/// Directives rendered from `spec.failover.fenceIsolatedPrimarySeconds`
/// (and their pre-7 aliases, which Valkey still reads): set by hand they
/// would fence a primary the operator does not know is fenced, and so
/// does not wait for before promoting another.
pub const FENCE_DIRECTIVES: &[&str] = &[
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "min-slaves-to-write",
    "min-slaves-max-lag",
];

/// Why `directive` (already lower-cased) may not be set, or `None` if it may.
pub fn owned_directive_reason(directive: &str) -> Option<String> {
    if FENCE_DIRECTIVES.contains(&directive) {
        return Some(format!(
            "directive {directive:?} is managed by the operator from spec.failover.fenceIsolatedPrimarySeconds (min-replicas-to-write 1, min-replicas-max-lag set to it); set that instead"
        ));
    }
    if PERSISTENCE_DIRECTIVES.contains(&directive) {
        return Some(format!(
            "directive {directive:?} is managed by the operator from spec.storage.persistence (None, Rdb, Aof, RdbAndAof); set that instead"
        ));
    }
    if OWNED_DIRECTIVES.contains(&directive) {
        return Some(format!(
            "directive {directive:?} is managed by the operator and may not be set in spec.config"
        ));
    }
    OWNED_DIRECTIVE_PREFIXES
        .iter()
        .find(|prefix| directive.starts_with(**prefix))
        .map(|prefix| {
            format!(
                "directive {directive:?} is managed by the operator (all {prefix}* directives are; use spec.tls and the topology settings) and may not be set in spec.config"
            )
        })
}

/// Check every entry of `spec.config`.
pub(super) fn check_config(config: &BTreeMap<String, String>, errors: &mut Errors) {
    // Valkey reads directive names case-insensitively; two keys differing only
    // in case would both be rendered and the last would silently win.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in config {
        let path = format!("spec.config[{key:?}]");
        if key.is_empty() {
            errors.push(
                path,
                FieldErrorKind::Required,
                "directive name must not be empty",
            );
            continue;
        }
        if key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#' || c == '"' || c == '\'')
        {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("directive name {key:?} must not contain whitespace, control characters, quotes or '#'"),
            );
            continue;
        }
        let lower = key.to_ascii_lowercase();
        if let Some(reason) = owned_directive_reason(&lower) {
            errors.push(path.clone(), FieldErrorKind::Forbidden, reason);
        } else if let Some(first) = seen.insert(lower, key) {
            errors.push(
                path.clone(),
                FieldErrorKind::Duplicate,
                format!(
                    "directive {key:?} duplicates {first:?} (directive names are case-insensitive)"
                ),
            );
        }
        if value.chars().any(|c| matches!(c, '\n' | '\r' | '\0')) {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("value of {key:?} must not contain line breaks or NUL characters"),
            );
        }
    }
}
