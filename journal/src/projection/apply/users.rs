//! The ACL users family: the ValkeyUsers read, what each node holds,
//! rotation windows closing, and the cluster's fingerprint key (whether
//! it is there; fingerprints journaled before it, renamed).
//!
//! What was applied to each node comes with a `SyncUsers` outcome, in
//! the intents family.

use crate::event::Event;
use crate::projection::{ClusterState, FingerprintKeyView};
use crate::time::Timestamp;
use crate::users::ConnectionState;

impl ClusterState {
    /// Folds ACL users: the ValkeyUsers read, what each node holds, the
    /// rotation windows closed, the fingerprint key seen and the
    /// fingerprints renamed.
    pub(super) fn fold_users(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::UserObserved { user } => {
                self.observed();
                let what = match (&user.problem, user.deleting) {
                    (_, true) => "being deleted".to_owned(),
                    (Some(problem), false) => format!("cannot be applied: {problem}"),
                    (None, false) => format!(
                        "generation {}, password {}",
                        user.generation,
                        user.password.as_deref().unwrap_or("none")
                    ),
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!("ACL user {} ({}) {what}", user.username, user.object),
                );
                self.users.observed(user, at);
            }
            Event::UserForgotten { object } => {
                self.observed();
                self.users.connections.remove(object);
                if self.users.records.remove(object).is_none() {
                    self.anomaly(
                        seq,
                        format!("ValkeyUser {object} forgotten but never observed"),
                    );
                }
            }
            Event::AclObserved { pod, users } => {
                self.observed();
                self.users.nodes.insert(pod.clone(), users.clone());
            }
            Event::RotationWindowClosed { username } => {
                if self.users.rotations.remove(username).is_none() {
                    self.anomaly(
                        seq,
                        format!("rotation window of {username} closed but none open"),
                    );
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "the rotation window of ACL user {username} closed: the old password goes"
                    ),
                );
            }
            Event::FingerprintKeyObserved { present } => {
                self.observed();
                self.history(
                    seq,
                    at,
                    body,
                    if *present {
                        "the cluster's fingerprint key is there".to_owned()
                    } else {
                        "the cluster has no fingerprint key: no password is fingerprinted until it has"
                            .to_owned()
                    },
                );
                self.fingerprint_key = if *present {
                    FingerprintKeyView::Present
                } else {
                    FingerprintKeyView::Missing
                };
            }
            Event::FingerprintsRekeyed { passwords, digests } => {
                self.observed();
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "{} password fingerprints and {} ACL digests journaled before the fingerprint key, now keyed (the same secrets)",
                        passwords.len(),
                        digests.len()
                    ),
                );
                self.users.rekeyed(passwords, digests);
            }
            Event::UserConnectionObserved { object, connection } => {
                self.observed();
                let what = match connection {
                    None => "none asked for".to_owned(),
                    Some(c) => match &c.state {
                        ConnectionState::Current => format!("{} holds what it must", c.secret),
                        ConnectionState::Stale => format!("{} is to be written", c.secret),
                        ConnectionState::Refused(why) => format!("{} refused: {why}", c.secret),
                    },
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!("connection Secret of ValkeyUser {object}: {what}"),
                );
                match connection {
                    Some(c) => {
                        self.users.connections.insert(object.clone(), c.clone());
                    }
                    None => {
                        self.users.connections.remove(object);
                    }
                }
            }
            other => self.misrouted(seq, other, "users"),
        }
    }
}
