//! The ACL users part of the projection: the ValkeyUsers as last read,
//! what each node holds, and what was applied to each node.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::users::{AclDigest, NodeUsers, Rotation, UserConnection, UserRecord, UserWant};

/// What one node was last given for one user: the want it was applied
/// with, and the digest the node's `ACL LIST` line had right after (`None`
/// when it was not read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedUser {
    /// The rules and password fingerprint applied.
    pub want: UserWant,
    /// The node's digest of the user right after.
    pub digest: Option<AclDigest>,
}

/// The ACL users of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsersPart {
    /// ValkeyUsers by object name, as last read.
    pub records: BTreeMap<String, UserRecord>,
    /// What each data pod's node holds (last `AclObserved`), by pod.
    pub nodes: BTreeMap<String, NodeUsers>,
    /// What each data pod's node was last given, by pod, then user name.
    pub applied: BTreeMap<String, BTreeMap<String, AppliedUser>>,
    /// The last `SyncUsers` of each pod that failed for good (a rule the
    /// server refused), with the wants it was decided on: not decided
    /// again until a want changes.
    pub failed: BTreeMap<String, FailedSync>,
    /// Passwords being replaced, by ACL user name, until their window
    /// closes (`RotationWindowClosed`).
    pub rotations: BTreeMap<String, Rotation>,
    /// The connection Secrets the ValkeyUsers ask for, by object name, as
    /// last read (`UserConnectionObserved`).
    pub connections: BTreeMap<String, UserConnection>,
}

/// A `SyncUsers` that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedSync {
    /// Every user's want when it failed, by user name.
    pub wants: BTreeMap<String, Option<UserWant>>,
    /// The error, with the server's message.
    pub error: String,
}

impl UsersPart {
    /// The record naming ACL user `username`, if any.
    #[must_use]
    pub fn by_username(&self, username: &str) -> Option<&UserRecord> {
        self.records.values().find(|r| r.username == username)
    }

    /// What the nodes must hold for `record`: its rules and password, and
    /// while its rotation window is open the password it replaces. `None`
    /// when it cannot be applied. Two equal wants need no new
    /// `ACL SETUSER`.
    #[must_use]
    pub fn want(&self, record: &UserRecord) -> Option<UserWant> {
        if !record.applicable() {
            return None;
        }
        let password = record.password.clone()?;
        let previous = self
            .rotations
            .get(&record.username)
            .filter(|r| r.to == password)
            .map(|r| r.from.clone());
        Some(UserWant {
            rules: record.rules.clone(),
            password,
            previous,
        })
    }

    /// Whether the `default` user is the operator's to keep on the nodes:
    /// once the cluster's password has changed (its rotation open, or a
    /// node given it since). Until then every node holds the password it
    /// booted with, which is the cluster's.
    #[must_use]
    pub fn manages_default(&self) -> bool {
        self.rotations.contains_key("default")
            || self
                .applied
                .values()
                .any(|users| users.contains_key("default"))
    }

    /// The rotation windows open at `now` that should have closed.
    #[must_use]
    pub fn windows_due(&self, now: Timestamp) -> Vec<String> {
        self.rotations
            .iter()
            .filter(|(_, r)| now >= r.until)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Whether the node in `pod` holds `record`'s user as the record says:
    /// applied with its current want, and unchanged since (its digest as
    /// read back then).
    #[must_use]
    pub fn holds(&self, pod: &str, record: &UserRecord) -> bool {
        let Some(want) = self.want(record) else {
            return false;
        };
        let observed = self
            .nodes
            .get(pod)
            .and_then(|users| users.get(&record.username));
        let applied = self
            .applied
            .get(pod)
            .and_then(|users| users.get(&record.username));
        match (observed, applied) {
            (Some(digest), Some(applied)) => {
                applied.want == want && applied.digest.as_ref() == Some(digest)
            }
            _ => false,
        }
    }

    /// Whether the node in `pod` was seen holding user `username` at all.
    #[must_use]
    pub fn has(&self, pod: &str, username: &str) -> bool {
        self.nodes
            .get(pod)
            .is_some_and(|users| users.contains_key(username))
    }

    /// A `SyncUsers` carried out on `pod`: the users applied now hold
    /// their records' wants, with the digests read back (folded just
    /// before); the removed ones are gone.
    pub(super) fn synced(&mut self, pod: &str, apply: &[String], remove: &[String]) {
        self.failed.remove(pod);
        let read_back = self.nodes.get(pod).cloned().unwrap_or_default();
        for username in apply {
            let Some(want) = self.by_username(username).and_then(|r| self.want(r)) else {
                continue;
            };
            self.applied.entry(pod.to_owned()).or_default().insert(
                username.clone(),
                AppliedUser {
                    want,
                    digest: read_back.get(username).cloned(),
                },
            );
        }
        if let Some(applied) = self.applied.get_mut(pod) {
            for username in remove {
                applied.remove(username);
            }
        }
    }

    /// Every user's want now, by user name.
    #[must_use]
    pub fn wants(&self) -> BTreeMap<String, Option<UserWant>> {
        self.records
            .values()
            .map(|r| (r.username.clone(), self.want(r)))
            .collect()
    }

    /// Whether `pod`'s last sync failed for good with the wants as they
    /// are now (so deciding it again would fail again).
    #[must_use]
    pub fn failed_as_now(&self, pod: &str) -> bool {
        self.failed
            .get(pod)
            .is_some_and(|f| f.wants == self.wants())
    }

    /// A `SyncUsers` of `pod` failed for good with `error`.
    pub(super) fn sync_failed(&mut self, pod: &str, error: &str) {
        self.failed.insert(
            pod.to_owned(),
            FailedSync {
                wants: self.wants(),
                error: error.to_owned(),
            },
        );
    }

    /// `user` read at `at`: a new password for a user that had one opens
    /// its rotation window (none when the window is 0 or the user is
    /// being deleted).
    pub(super) fn observed(&mut self, user: &UserRecord, at: Timestamp) {
        let before = self
            .records
            .get(&user.object)
            .and_then(|r| r.password.clone());
        match (before, &user.password) {
            _ if user.deleting => {
                self.rotations.remove(&user.username);
            }
            (Some(from), Some(to)) if from != *to && user.rotation_window_ms > 0 => {
                let window = i64::try_from(user.rotation_window_ms).unwrap_or(i64::MAX);
                self.rotations.insert(
                    user.username.clone(),
                    Rotation {
                        from,
                        to: to.clone(),
                        since: at,
                        until: at.plus_millis(window),
                    },
                );
            }
            (Some(from), Some(to)) if from != *to => {
                self.rotations.remove(&user.username);
            }
            _ => {}
        }
        self.records.insert(user.object.clone(), user.clone());
    }

    /// Every password fingerprint the part holds (records, what nodes
    /// were given, rotations, failed syncs' wants).
    #[must_use]
    pub fn fingerprints(&self) -> BTreeSet<&str> {
        let wants = self
            .applied
            .values()
            .flat_map(BTreeMap::values)
            .map(|a| &a.want)
            .chain(
                self.failed
                    .values()
                    .flat_map(|f| f.wants.values().flatten()),
            );
        self.records
            .values()
            .filter_map(|r| r.password.as_deref())
            .chain(
                wants.flat_map(|w| {
                    std::iter::once(w.password.as_str()).chain(w.previous.as_deref())
                }),
            )
            .chain(
                self.rotations
                    .values()
                    .flat_map(|r| [r.from.as_str(), r.to.as_str()]),
            )
            .collect()
    }

    /// Every `ACL LIST` digest the part holds (what nodes hold, and held
    /// right after they were given).
    #[must_use]
    pub fn digests(&self) -> BTreeSet<&str> {
        self.nodes
            .values()
            .flat_map(BTreeMap::values)
            .map(String::as_str)
            .chain(
                self.applied
                    .values()
                    .flat_map(BTreeMap::values)
                    .filter_map(|a| a.digest.as_deref()),
            )
            .collect()
    }

    /// `FingerprintsRekeyed`: each fingerprint and digest named in
    /// `passwords` and `digests` is replaced by its keyed successor,
    /// wherever it is; nothing else changes (the secrets are the same).
    pub(super) fn rekeyed(
        &mut self,
        passwords: &BTreeMap<String, String>,
        digests: &BTreeMap<String, String>,
    ) {
        let password = |p: &mut String| {
            if let Some(new) = passwords.get(p.as_str()) {
                p.clone_from(new);
            }
        };
        let want = |w: &mut UserWant| {
            password(&mut w.password);
            if let Some(previous) = w.previous.as_mut() {
                password(previous);
            }
        };
        let digest = |d: &mut String| {
            if let Some(new) = digests.get(d.as_str()) {
                d.clone_from(new);
            }
        };
        for record in self.records.values_mut() {
            if let Some(p) = record.password.as_mut() {
                password(p);
            }
        }
        for applied in self.applied.values_mut().flat_map(BTreeMap::values_mut) {
            want(&mut applied.want);
            if let Some(d) = applied.digest.as_mut() {
                digest(d);
            }
        }
        for failed in self.failed.values_mut() {
            for w in failed.wants.values_mut().flatten() {
                want(w);
            }
        }
        for rotation in self.rotations.values_mut() {
            password(&mut rotation.from);
            password(&mut rotation.to);
        }
        for d in self.nodes.values_mut().flat_map(BTreeMap::values_mut) {
            digest(d);
        }
    }

    /// The pod is gone or was recreated: its node holds nothing known.
    pub(super) fn pod_replaced(&mut self, pod: &str) {
        self.nodes.remove(pod);
        self.applied.remove(pod);
        self.failed.remove(pod);
    }
}
