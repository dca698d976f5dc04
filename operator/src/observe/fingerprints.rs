//! The cluster's fingerprint key and what is fingerprinted with it: whether
//! the key is there (`FingerprintKeyObserved`), the passwords read in one
//! reconcile ([`Fingerprints`]), what each node's `ACL LIST` shows
//! ([`observe_acls`]), and the fingerprints an earlier version journaled
//! unkeyed, recognised as the same secrets (`FingerprintsRekeyed`).
//!
//! Without the key nothing is fingerprinted: a record already journaled
//! is kept as it is, a new one waits, and no node's users are journaled,
//! until the key is made (by a journaled `CreateFingerprintKey`). A
//! fingerprint is never computed with a made-up key.
//!
//! The unkeyed fingerprints are recomputed here in memory only, to be
//! compared with the journal's; what is journaled is always keyed.

use std::collections::{BTreeMap, BTreeSet};

use logbook_journal::projection::FingerprintKeyView;
use logbook_journal::{ClusterState, Event, NodeUsers};

use crate::valkey::{
    FingerprintKey, Password, acl_user_lines, is_unkeyed, unkeyed_digest,
    unkeyed_password_fingerprint,
};

/// `FingerprintKeyObserved` when whether the key is there differs from
/// what the journal last said.
pub fn observe_fingerprint_key(state: &ClusterState, present: bool) -> Option<Event> {
    let journaled = match state.fingerprint_key {
        FingerprintKeyView::Unread => None,
        FingerprintKeyView::Missing => Some(false),
        FingerprintKeyView::Present => Some(true),
    };
    (journaled != Some(present)).then_some(Event::FingerprintKeyObserved { present })
}

/// The passwords read in one reconcile, fingerprinted with the cluster's
/// key (none without it); and, for each, which unkeyed fingerprint an
/// earlier version journaled for it, to recognise it in the journal.
/// Those unkeyed fingerprints are as weak as before: its `Debug` shows
/// how many there are, never them.
pub struct Fingerprints<'k> {
    /// The cluster's key, when it could be read.
    key: Option<&'k FingerprintKey>,
    /// Unkeyed fingerprint → keyed, of every password fingerprinted.
    unkeyed: BTreeMap<String, String>,
}

impl<'k> Fingerprints<'k> {
    /// Fingerprints with `key`; with none, nothing is fingerprinted.
    pub fn new(key: Option<&'k FingerprintKey>) -> Self {
        Self {
            key,
            unkeyed: BTreeMap::new(),
        }
    }

    /// Whether there is a key to fingerprint with.
    pub fn keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The fingerprint of `password`; `None` without the key.
    pub fn of(&mut self, password: &Password) -> Option<String> {
        let keyed = self.key?.password(password);
        self.unkeyed
            .insert(unkeyed_password_fingerprint(password), keyed.clone());
        Some(keyed)
    }

    /// `FingerprintsRekeyed` for the unkeyed fingerprints the projection
    /// holds of passwords fingerprinted here: the same passwords, so
    /// renamed, never taken for new ones. Journal it before the records
    /// read, which are then compared with the renamed ones.
    pub fn rekeyed(&self, state: &ClusterState) -> Option<Event> {
        let passwords = renames(&state.users.fingerprints(), &self.unkeyed);
        (!passwords.is_empty()).then(|| Event::FingerprintsRekeyed {
            passwords,
            digests: BTreeMap::new(),
        })
    }
}

impl std::fmt::Debug for Fingerprints<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprints")
            .field("keyed", &self.key.is_some())
            .field("passwords", &self.unkeyed.len())
            .finish()
    }
}

/// One node's `ACL LIST`, as read. Its lines hold password hashes: its
/// `Debug` shows how many lines, never them.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeAcl {
    /// The data pod or Sentinel.
    pub pod: String,
    /// A Sentinel (which holds only `default` of the watched users).
    pub sentinel: bool,
    /// The reply's lines (each holds password hashes: never journaled).
    pub lines: Vec<String>,
}

impl std::fmt::Debug for NodeAcl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAcl")
            .field("pod", &self.pod)
            .field("sentinel", &self.sentinel)
            .field("lines", &self.lines.len())
            .finish()
    }
}

impl NodeAcl {
    /// The user names whose lines are digested on this node.
    fn watched<'a>(&self, watched: &'a [&'a str]) -> &'a [&'a str] {
        if self.sentinel { &["default"] } else { watched }
    }
}

/// What `acls` show, for the journal: first, `FingerprintsRekeyed` for the
/// unkeyed digests the projection holds of lines read now (the same lines,
/// so no node is taken to hold anything new); then `AclObserved` for each
/// node whose users differ from the last journaled (renamed first).
/// Nothing without the key.
pub fn observe_acls(
    state: &ClusterState,
    watched: &[&str],
    acls: &[NodeAcl],
    key: Option<&FingerprintKey>,
) -> Vec<Event> {
    let Some(key) = key else {
        return Vec::new();
    };
    let mut unkeyed = BTreeMap::new();
    let mut read = Vec::new();
    for acl in acls {
        let lines = acl_user_lines(&acl.lines, acl.watched(watched));
        let mut users = NodeUsers::new();
        for (name, line) in lines {
            let digest = key.acl_line(line);
            unkeyed.insert(unkeyed_digest(line), digest.clone());
            users.insert(name, digest);
        }
        read.push((acl.pod.as_str(), users));
    }
    let digests = renames(&state.users.digests(), &unkeyed);
    let mut events = Vec::new();
    for (pod, users) in read {
        let journaled: Option<NodeUsers> = state.users.nodes.get(pod).map(|held| {
            held.iter()
                .map(|(u, d)| (u.clone(), digests.get(d).unwrap_or(d).clone()))
                .collect()
        });
        if journaled.as_ref() != Some(&users) {
            events.push(Event::AclObserved {
                pod: pod.to_owned(),
                users,
            });
        }
    }
    if !digests.is_empty() {
        events.insert(
            0,
            Event::FingerprintsRekeyed {
                passwords: BTreeMap::new(),
                digests,
            },
        );
    }
    events
}

/// The renames of the unkeyed names in `journaled` that `read` (unkeyed →
/// keyed) knows.
fn renames(
    journaled: &BTreeSet<&str>,
    read: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    journaled
        .iter()
        .filter(|name| is_unkeyed(name))
        .filter_map(|name| Some(((*name).to_owned(), read.get(*name)?.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use logbook_crds::{Topology, ValkeyClusterSpec, ValkeyUser, ValkeyUserSpec};
    use logbook_journal::{Intent, Reachability, UserRecord};

    use super::*;
    use crate::decide::ClusterView;
    use crate::decide::given::Given;
    use crate::observe::users::{observe_users, user_record, watched_usernames};

    const PODS: [&str; 2] = ["demo-0", "demo-1"];

    fn key() -> FingerprintKey {
        FingerprintKey::from_bytes(&[42; crate::valkey::FINGERPRINT_KEY_LEN]).unwrap()
    }

    fn app() -> ValkeyUser {
        let mut spec = ValkeyUserSpec::new("demo", "app-password", "password");
        spec.keys = vec!["app:*".into()];
        spec.rotation_window_seconds = 60;
        ValkeyUser::new("app", spec)
    }

    /// The record of `app` with `password`, as read with the key.
    fn read(password: &str, prints: &mut Fingerprints<'_>) -> UserRecord {
        user_record(&app(), None, Some(&Ok(Password::new(password))), prints).unwrap()
    }

    /// The record an earlier version journaled: fingerprinted unkeyed.
    fn unkeyed(password: &str) -> UserRecord {
        let mut record = read(password, &mut Fingerprints::new(Some(&key())));
        record.password = Some(unkeyed_password_fingerprint(&Password::new(password)));
        record
    }

    /// `app`'s line on a node holding `hashes`.
    fn line(hashes: &str) -> Vec<String> {
        vec![
            format!("user app on {hashes} ~app:* resetchannels -@all +@all"),
            "user default on nopass ~* &* +@all".to_owned(),
        ]
    }

    /// What an earlier version journaled for each node holding `lines`.
    fn acl_unkeyed(pod: &str, lines: &[String]) -> Event {
        Event::AclObserved {
            pod: pod.to_owned(),
            users: acl_user_lines(lines, &["app"])
                .into_iter()
                .map(|(u, l)| (u, unkeyed_digest(l)))
                .collect(),
        }
    }

    fn acls(lines: &[String]) -> Vec<NodeAcl> {
        PODS.iter()
            .map(|pod| NodeAcl {
                pod: (*pod).to_owned(),
                sentinel: false,
                lines: lines.to_vec(),
            })
            .collect()
    }

    fn syncs(g: &Given) -> Vec<Intent> {
        crate::decide::users::decide_users(&ClusterView::new(&g.state).unwrap())
            .into_iter()
            .map(|d| d.intent)
            .collect()
    }

    /// A Replication cluster run by an earlier version: user `app` given
    /// to both nodes, then its password changed to `app-new` with the
    /// rotation window still open; every fingerprint and digest unkeyed.
    fn journaled_unkeyed() -> (Given, Vec<String>) {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(2);
        g.spec(&spec);
        g.applied(1);
        for i in 0..2 {
            g.pod(i, "r1");
            g.reach(i, Reachability::Reachable);
        }
        let sync = |g: &mut Given, lines: &[String]| {
            for pod in PODS {
                g.event(acl_unkeyed(pod, lines));
                g.succeed(Intent::SyncUsers {
                    pod: pod.to_owned(),
                    apply: vec!["app".to_owned()],
                    remove: Vec::new(),
                });
            }
        };
        g.event(Event::UserObserved {
            user: unkeyed("app-old"),
        });
        sync(&mut g, &line("#aaaa"));
        g.event(Event::UserObserved {
            user: unkeyed("app-new"),
        });
        let both = line("#aaaa #bbbb");
        sync(&mut g, &both);
        assert!(g.state.users.rotations.contains_key("app"));
        assert!(syncs(&g).is_empty(), "converged as journaled");
        (g, both)
    }

    #[test]
    fn fingerprints_journaled_unkeyed_are_renamed_with_no_rotation_and_no_sync() {
        let (mut g, lines) = journaled_unkeyed();
        let key = key();
        let rotation_before = g.state.users.rotations["app"].clone();
        // The new version's reconcile, with the key.
        let mut prints = Fingerprints::new(Some(&key));
        let record = read("app-new", &mut prints);
        // Compared as they stand, the record would be a new password.
        assert!(!observe_users(&g.state, std::slice::from_ref(&record)).is_empty());
        let rekeyed = prints.rekeyed(&g.state).unwrap();
        let Event::FingerprintsRekeyed { passwords, digests } = &rekeyed else {
            panic!("{rekeyed:?}");
        };
        assert_eq!(
            passwords,
            &BTreeMap::from([(
                unkeyed_password_fingerprint(&Password::new("app-new")),
                key.password(&Password::new("app-new"))
            )])
        );
        assert!(digests.is_empty());
        g.event(rekeyed);
        assert!(
            observe_users(&g.state, std::slice::from_ref(&record)).is_empty(),
            "the same password"
        );
        assert_eq!(watched_usernames(&g.state), ["app"]);
        let watched = ["app"];
        let events = observe_acls(&g.state, &watched, &acls(&lines), Some(&key));
        assert_eq!(
            events.len(),
            1,
            "the digests renamed, no node changed: {events:?}"
        );
        let Event::FingerprintsRekeyed { passwords, digests } = &events[0] else {
            panic!("{events:?}");
        };
        assert!(passwords.is_empty());
        let app_line = acl_user_lines(&lines, &["app"])["app"];
        assert_eq!(
            digests,
            &BTreeMap::from([(unkeyed_digest(app_line), key.acl_line(app_line))])
        );
        for e in events {
            g.event(e);
        }
        // Nothing to do: no node given anything, the window kept as it
        // was (the old password's fingerprint, which cannot be read any
        // more, stays as journaled).
        assert!(syncs(&g).is_empty(), "{:?}", syncs(&g));
        let rotation = &g.state.users.rotations["app"];
        assert_eq!(rotation.to, key.password(&Password::new("app-new")));
        assert_eq!(rotation.from, rotation_before.from);
        assert_eq!(rotation.until, rotation_before.until);
        let want = g.state.users.want(&g.state.users.records["app"]).unwrap();
        assert_eq!(want.previous, Some(rotation_before.from.clone()));
        for pod in PODS {
            assert!(
                g.state.users.holds(pod, &g.state.users.records["app"]),
                "{pod}"
            );
        }
        // And the next reconcile journals nothing.
        let mut again = Fingerprints::new(Some(&key));
        let record = read("app-new", &mut again);
        assert_eq!(again.rekeyed(&g.state), None);
        assert!(observe_users(&g.state, &[record]).is_empty());
        assert!(observe_acls(&g.state, &watched, &acls(&lines), Some(&key)).is_empty());
    }

    #[test]
    fn a_password_changed_while_the_fingerprints_are_renamed_still_rotates() {
        let (mut g, _) = journaled_unkeyed();
        let key = key();
        let mut prints = Fingerprints::new(Some(&key));
        let record = read("app-newer", &mut prints);
        // Nothing journaled is of this password: nothing renamed.
        assert_eq!(prints.rekeyed(&g.state), None);
        let events = observe_users(&g.state, std::slice::from_ref(&record));
        assert_eq!(events.len(), 1);
        for e in events {
            g.event(e);
        }
        let rotation = &g.state.users.rotations["app"];
        assert_eq!(rotation.to, key.password(&Password::new("app-newer")));
        assert_eq!(
            rotation.from,
            unkeyed_password_fingerprint(&Password::new("app-new"))
        );
        assert_eq!(syncs(&g).len(), 2, "both nodes are given the new password");
    }

    #[test]
    fn what_is_read_is_never_printed() {
        let key = key();
        let mut prints = Fingerprints::new(Some(&key));
        let p = Password::new("app-new");
        prints.of(&p);
        let shown = format!("{prints:?}");
        assert!(
            !shown.contains(&unkeyed_password_fingerprint(&p)),
            "{shown}"
        );
        assert!(!shown.contains(&key.password(&p)), "{shown}");
        let acl = &acls(&line("#aaaa"))[0];
        let shown = format!("{acl:?}");
        assert!(
            !shown.contains("#aaaa") && shown.contains("demo-0"),
            "{shown}"
        );
    }

    #[test]
    fn without_the_key_nothing_is_fingerprinted_and_its_absence_is_journaled_once() {
        let (g, lines) = journaled_unkeyed();
        let mut prints = Fingerprints::new(None);
        assert!(!prints.keyed());
        assert_eq!(prints.of(&Password::new("app-new")), None);
        assert_eq!(
            user_record(
                &app(),
                None,
                Some(&Ok(Password::new("app-new"))),
                &mut prints
            ),
            None
        );
        assert_eq!(prints.rekeyed(&g.state), None);
        let watched = watched_usernames(&g.state);
        assert!(observe_acls(&g.state, &watched, &acls(&lines), None).is_empty());
        assert_eq!(
            observe_fingerprint_key(&g.state, false),
            Some(Event::FingerprintKeyObserved { present: false })
        );
        let mut g = g;
        g.event(Event::FingerprintKeyObserved { present: false });
        assert_eq!(observe_fingerprint_key(&g.state, false), None);
        assert_eq!(
            observe_fingerprint_key(&g.state, true),
            Some(Event::FingerprintKeyObserved { present: true })
        );
    }
}
