//! ACL user facts: a `ValkeyUser` as the operator read it, and the users a
//! Valkey node holds, as the journal stores them.
//!
//! No secret is ever here. A password is named by its Secret key and a
//! short fingerprint ([`UserRecord::password`]); what a node holds is named
//! by a digest of its `ACL LIST` line ([`AclDigest`]), which changes when
//! the node's rules or password hashes change. Both are HMACs keyed with
//! the cluster's own fingerprint key (which is never here), so neither
//! lets a reader test a guessed password; journals written before the key
//! existed hold unkeyed ones, renamed by `Event::FingerprintsRekeyed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The object name of the record of the cluster's own password (the
/// `default` user, `spec.auth`): no ValkeyUser can be named so.
pub const CLUSTER_PASSWORD: &str = "(cluster)";

/// The prefix of the object names of the records of the operator's
/// internal users (`(internal) logbook-operator`, …): no ValkeyUser can
/// be named so. Such a user is given to a node that lacks it (one started
/// before it existed); a node that holds it keeps it as it booted.
pub const INTERNAL_USER: &str = "(internal) ";

/// A `ValkeyUser` object of the cluster, as last read; or, under
/// [`CLUSTER_PASSWORD`], the cluster's own password for user `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The ValkeyUser object's name.
    pub object: String,
    /// The ACL user name.
    pub username: String,
    /// The object's `metadata.generation`.
    pub generation: i64,
    /// The rules applied after `reset` and the password, in order (`on`,
    /// `+@read`, `~app:*`, …).
    pub rules: Vec<String>,
    /// The Secret key the password is read from, `<secret>/<key>`.
    pub secret: String,
    /// Fingerprint of the password read from it (16 hex digits of an
    /// HMAC-SHA-256 keyed with the cluster's fingerprint key; 8 hex digits
    /// of an unkeyed SHA-256 in journals written before the key existed),
    /// `None` when there is no usable password (see `problem`).
    pub password: Option<String>,
    /// Why the user cannot be applied as it stands (refused spec, missing
    /// Secret or key, empty password): said on its status, and the user is
    /// left as it was on the nodes, never made password-less.
    pub problem: Option<String>,
    /// The object is being deleted: the user is removed from every node,
    /// then the object's finalizer released.
    pub deleting: bool,
    /// How long, in milliseconds, a replaced password keeps working beside
    /// its successor (`rotationWindowSeconds`).
    pub rotation_window_ms: u64,
}

impl UserRecord {
    /// Whether this is the record of one of the operator's internal users.
    #[must_use]
    pub fn is_internal(&self) -> bool {
        self.object.starts_with(INTERNAL_USER)
    }

    /// Whether the record can be applied: not being deleted, a password,
    /// no problem.
    #[must_use]
    pub fn applicable(&self) -> bool {
        !self.deleting && self.problem.is_none() && self.password.is_some()
    }
}

/// The rules and password fingerprint a user is applied with, and the
/// password it replaces while that one keeps working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserWant {
    /// The rules after `reset` and the password.
    pub rules: Vec<String>,
    /// The password's fingerprint.
    pub password: String,
    /// The fingerprint of the password it replaces, while the rotation
    /// window is open: kept beside the new one on the nodes.
    pub previous: Option<String>,
}

/// A password being replaced: from `from` to `to` (fingerprints), both
/// working until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// The old password's fingerprint.
    pub from: String,
    /// The new password's fingerprint.
    pub to: String,
    /// When the new one was read.
    pub since: crate::time::Timestamp,
    /// When the old one stops working.
    pub until: crate::time::Timestamp,
}

/// A ValkeyUser's connection Secret (`spec.connectionSecret`) as last
/// read: the Secret the operator writes for its application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConnection {
    /// The Secret's name, in the ValkeyUser's namespace.
    pub secret: String,
    /// How it stands against what it must hold.
    pub state: ConnectionState,
}

/// How a ValkeyUser's connection Secret stands, judged when it was read
/// against the user's password read then, the cluster's TLS and topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionState {
    /// It is the operator's and holds what it must.
    Current,
    /// Missing, or the operator's but holding something else (a password
    /// since changed, another CA or topology, a change by hand): written
    /// once every node holds the user as its record says.
    Stale,
    /// Never written: the name is taken by a Secret the operator does not
    /// own for this user, or is the user's password Secret, or one of the
    /// cluster's own Secrets. Why, for a person.
    Refused(String),
}

/// A digest of one user's `ACL LIST` line on one node (16 hex digits of
/// an HMAC-SHA-256 keyed with the cluster's fingerprint key; 8 hex digits
/// of an unkeyed SHA-256 in journals written before the key existed).
pub type AclDigest = String;

/// The users a node holds, by ACL user name, with the digest of each
/// one's `ACL LIST` line. Only users some ValkeyUser names (or named) are
/// listed: `default` and the operator's own users are not.
pub type NodeUsers = BTreeMap<String, AclDigest>;
