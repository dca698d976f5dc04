//! ACL users (`ValkeyUser`), on every topology: every data node holds each
//! user as its record says, users being deleted leave every node, then
//! their objects are released.
//!
//! ACL users are not replicated (nor are they part of a Cluster's bus
//! state): each node is given them on its own, primaries and replicas
//! alike. A node is judged on what it was last seen holding
//! (`AclObserved`) against what it was last given (`SyncUsers`): a user it
//! lacks, holds with other rules or another password, or holds changed by
//! hand is applied again; a user being deleted is removed. A record with
//! a problem (no password) is left as the nodes hold it: a user is never
//! made password-less.
//!
//! Decided after the topology's own concerns, which come first (a
//! failover never waits on an ACL), and only on nodes that answer.

use logbook_journal::{
    CLUSTER_PASSWORD, ConnectionState, Intent, Reachability, ReasonCode, UserRecord,
};

use super::Decision;
use super::view::ClusterView;

/// One `SyncUsers` per node that is out of step, or, when none is, one
/// `ReleaseUser` per deleted user no node holds any more.
pub fn decide_users(view: &ClusterView<'_>) -> Vec<Decision> {
    let users = &view.state.users;
    if users.records.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let pods = view.pods();
    let kept: Vec<&UserRecord> = users
        .records
        .values()
        .filter(|r| kept_here(view, r))
        .collect();
    let answering = pods
        .iter()
        .filter(|p| p.usable() && p.view.reachability == Some(Reachability::Reachable));
    for pod in answering {
        // Not yet read (the reconcile reads every answering node's ACL),
        // or failed for good as things stand (a rule the server refused:
        // its status says so; a change to a ValkeyUser tries again).
        if !users.nodes.contains_key(pod.name) || users.failed_as_now(pod.name) {
            continue;
        }
        let (mut missing, mut differing, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        for record in &kept {
            let has = users.has(pod.name, &record.username);
            if record.deleting {
                if has {
                    deleted.push(record.username.clone());
                }
            } else if record.is_internal() {
                // An internal user is given to a node that lacks it (one
                // started before it existed); one that holds it keeps it
                // as it booted.
                if record.applicable() && !has {
                    missing.push(record.username.clone());
                }
            } else if record.applicable() && !users.holds(pod.name, record) {
                if has {
                    differing.push(record.username.clone());
                } else {
                    missing.push(record.username.clone());
                }
            }
        }
        if missing.is_empty() && differing.is_empty() && deleted.is_empty() {
            continue;
        }
        let mut apply: Vec<String> = missing.iter().chain(&differing).cloned().collect();
        apply.sort();
        let detail = describe(pod.name, &missing, &differing, &deleted);
        out.push(Decision::new(
            Intent::SyncUsers {
                pod: pod.name.to_owned(),
                apply,
                remove: deleted.clone(),
            },
            ReasonCode::UsersOutOfSync {
                missing,
                differing,
                deleted,
            },
            detail,
        ));
    }
    // The Sentinels hold `default` too (their clients authenticate with the
    // cluster's password): kept like a data node's, when the operator
    // keeps it.
    if let Some(record) = kept
        .iter()
        .find(|r| r.object == CLUSTER_PASSWORD && r.applicable())
    {
        for (name, sentinel) in &view.state.sentinel.pods {
            let answering = sentinel.reachability == Some(Reachability::Reachable);
            if !answering
                || !users.nodes.contains_key(name)
                || users.failed_as_now(name)
                || users.holds(name, record)
            {
                continue;
            }
            let differing = vec![record.username.clone()];
            let (missing, differing) = if users.has(name, &record.username) {
                (Vec::new(), differing)
            } else {
                (differing, Vec::new())
            };
            out.push(Decision::new(
                Intent::SyncUsers {
                    pod: name.clone(),
                    apply: vec![record.username.clone()],
                    remove: Vec::new(),
                },
                ReasonCode::UsersOutOfSync {
                    missing: missing.clone(),
                    differing: differing.clone(),
                    deleted: Vec::new(),
                },
                describe(name, &missing, &differing, &[]),
            ));
        }
    }
    out.extend(decide_connections(view));
    if !out.is_empty() {
        return out;
    }
    // Released only once every data pod is known not to hold the user: a
    // pod that does not answer, or whose ACL was not read, may still hold
    // it (and would keep it past its restart, in its ACL file).
    let all_known = pods.iter().all(|p| {
        users.nodes.contains_key(p.name) && p.view.reachability == Some(Reachability::Reachable)
    });
    for record in users.records.values().filter(|r| r.deleting) {
        let held = pods.iter().any(|p| users.has(p.name, &record.username));
        if all_known && !held {
            out.push(Decision::new(
                Intent::ReleaseUser {
                    object: record.object.clone(),
                },
                ReasonCode::UserRemoved,
                format!(
                    "ValkeyUser {} is being deleted and no node holds user {} any more",
                    record.object, record.username
                ),
            ));
        }
    }
    out
}

/// One `ApplyUserConnection` per ValkeyUser whose connection Secret is
/// stale while every data pod holds its user as its record says: an
/// application is never handed a password the servers would refuse (a
/// new one waits until every node takes it; until then the Secret keeps
/// the old one, which the nodes still take during the rotation window).
fn decide_connections(view: &ClusterView<'_>) -> Vec<Decision> {
    let users = &view.state.users;
    let pods: Vec<&String> = view.state.pods.keys().collect();
    users
        .connections
        .iter()
        .filter(|(_, c)| c.state == ConnectionState::Stale)
        .filter_map(|(object, c)| {
            let record = users.records.get(object)?;
            let ready = record.applicable()
                && !pods.is_empty()
                && pods.iter().all(|p| users.holds(p, record));
            ready.then(|| {
                Decision::new(
                    Intent::ApplyUserConnection {
                        object: object.clone(),
                    },
                    ReasonCode::UserConnectionStale,
                    format!(
                        "ValkeyUser {object}'s connection Secret {} does not hold what it must, and every node holds user {}",
                        c.secret, record.username
                    ),
                )
            })
        })
        .collect()
}

/// Whether `record` is kept on the nodes by this concern: every
/// ValkeyUser; the cluster's own password (user `default`) once it has
/// changed, on every topology (replication and the Sentinels' links use
/// their own users, so it is only the clients' and administrators').
fn kept_here(view: &ClusterView<'_>, record: &UserRecord) -> bool {
    record.object != CLUSTER_PASSWORD || view.state.users.manages_default()
}

fn describe(pod: &str, missing: &[String], differing: &[String], deleted: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("lacks {}", missing.join(", ")));
    }
    if !differing.is_empty() {
        parts.push(format!(
            "holds {} otherwise than their ValkeyUsers say (new rules or password, or changed by hand)",
            differing.join(", ")
        ));
    }
    if !deleted.is_empty() {
        parts.push(format!(
            "holds {} whose ValkeyUsers are deleted",
            deleted.join(", ")
        ));
    }
    format!("{pod} {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use logbook_crds::{Topology, ValkeyClusterSpec};
    use logbook_journal::{Event, Intent, NodeUsers, Reachability, UserRecord};

    use crate::decide::given::Given;

    fn record(password: Option<&str>) -> UserRecord {
        UserRecord {
            object: "app".into(),
            username: "app".into(),
            generation: 1,
            rules: vec!["on".into(), "+@all".into(), "~app:*".into()],
            secret: "app-password/password".into(),
            password: password.map(str::to_owned),
            problem: password
                .is_none()
                .then(|| "Secret app-password not found".to_owned()),
            deleting: false,
            rotation_window_ms: 0,
        }
    }

    fn acl(pod: u32, users: &[(&str, &str)]) -> Event {
        Event::AclObserved {
            pod: format!("demo-{pod}"),
            users: users
                .iter()
                .map(|(u, d)| ((*u).to_owned(), (*d).to_owned()))
                .collect::<NodeUsers>(),
        }
    }

    /// Two answering pods of a Replication cluster, nothing else decided.
    fn two_pods() -> Given {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(2);
        g.spec(&spec);
        g.applied(1);
        for i in 0..2 {
            g.pod(i, "r1");
            g.reach(i, Reachability::Reachable);
        }
        g
    }

    fn syncs(g: &Given) -> Vec<Intent> {
        crate::decide::users::decide_users(&crate::decide::ClusterView::new(&g.state).unwrap())
            .into_iter()
            .map(|d| d.intent)
            .collect()
    }

    #[test]
    fn a_user_is_applied_to_every_answering_node_once_read_then_nothing() {
        let mut g = two_pods();
        g.event(Event::UserObserved {
            user: record(Some("aa11bb22")),
        });
        assert!(syncs(&g).is_empty(), "no node's ACL read yet");
        g.event(acl(0, &[])).event(acl(1, &[]));
        let want = |i: u32| Intent::SyncUsers {
            pod: format!("demo-{i}"),
            apply: vec!["app".into()],
            remove: vec![],
        };
        assert_eq!(syncs(&g), vec![want(0), want(1)]);
        // Applied and read back on both: nothing more.
        for i in 0..2 {
            g.event(acl(i, &[("app", "d1")]));
            g.succeed(want(i));
        }
        assert!(syncs(&g).is_empty(), "{:?}", syncs(&g));
        // Changed by hand on demo-1: applied again there only.
        g.event(acl(1, &[("app", "d2")]));
        assert_eq!(syncs(&g), vec![want(1)]);
    }

    #[test]
    fn a_new_password_is_applied_and_a_missing_one_never_empties_the_user() {
        let mut g = two_pods();
        g.event(Event::UserObserved {
            user: record(Some("aa11bb22")),
        });
        for i in 0..2 {
            g.event(acl(i, &[("app", "d1")]));
            g.succeed(Intent::SyncUsers {
                pod: format!("demo-{i}"),
                apply: vec!["app".into()],
                remove: vec![],
            });
        }
        g.event(Event::UserObserved { user: record(None) });
        assert!(
            syncs(&g).is_empty(),
            "no password: left as the nodes hold it"
        );
        g.event(Event::UserObserved {
            user: record(Some("cc33dd44")),
        });
        assert_eq!(syncs(&g).len(), 2);
    }

    #[test]
    fn a_deleted_user_leaves_every_node_then_its_object_is_released() {
        let mut g = two_pods();
        let mut r = record(Some("aa11bb22"));
        g.event(acl(0, &[("app", "d1")])).event(acl(1, &[]));
        r.deleting = true;
        g.event(Event::UserObserved { user: r });
        assert_eq!(
            syncs(&g),
            vec![Intent::SyncUsers {
                pod: "demo-0".into(),
                apply: vec![],
                remove: vec!["app".into()],
            }]
        );
        g.event(acl(0, &[]));
        g.reach(1, Reachability::TimedOut);
        assert!(
            syncs(&g).is_empty(),
            "demo-1 does not answer: it may hold it"
        );
        g.reach(1, Reachability::Reachable);
        assert_eq!(
            syncs(&g),
            vec![Intent::ReleaseUser {
                object: "app".into()
            }]
        );
    }

    /// Both pods given the user, read back with `digest`.
    fn synced_both(g: &mut Given, digest: &str) {
        for i in 0..2 {
            g.event(acl(i, &[("app", digest)]));
            g.succeed(Intent::SyncUsers {
                pod: format!("demo-{i}"),
                apply: vec!["app".into()],
                remove: vec![],
            });
        }
    }

    #[test]
    fn a_new_password_keeps_the_old_one_working_until_its_window_closes() {
        let mut g = two_pods();
        let mut r = record(Some("aa11bb22"));
        r.rotation_window_ms = 60_000;
        g.event(Event::UserObserved { user: r.clone() });
        synced_both(&mut g, "d1");
        assert!(syncs(&g).is_empty());
        r.password = Some("cc33dd44".into());
        g.event(Event::UserObserved { user: r });
        let rotation = g.state.users.rotations["app"].clone();
        assert_eq!(
            (rotation.from.as_str(), rotation.to.as_str()),
            ("aa11bb22", "cc33dd44")
        );
        let want = g.state.users.want(&g.state.users.records["app"]).unwrap();
        assert_eq!(want.previous.as_deref(), Some("aa11bb22"));
        assert_eq!(syncs(&g).len(), 2, "the new one added on both");
        synced_both(&mut g, "d2");
        assert!(syncs(&g).is_empty(), "{:?}", syncs(&g));
        assert!(g.state.users.windows_due(rotation.since).is_empty());
        assert_eq!(g.state.users.windows_due(rotation.until), ["app"]);
        // The window closes: the old one goes, on both.
        g.event(Event::RotationWindowClosed {
            username: "app".into(),
        });
        assert_eq!(
            g.state
                .users
                .want(&g.state.users.records["app"])
                .unwrap()
                .previous,
            None
        );
        assert_eq!(syncs(&g).len(), 2);
    }

    fn connection(state: logbook_journal::ConnectionState) -> Event {
        Event::UserConnectionObserved {
            object: "app".into(),
            connection: Some(logbook_journal::UserConnection {
                secret: "app-valkey".into(),
                state,
            }),
        }
    }

    #[test]
    fn a_connection_secret_is_written_only_once_every_node_holds_the_user() {
        use logbook_journal::ConnectionState;
        let mut g = two_pods();
        let mut r = record(Some("aa11bb22"));
        r.rotation_window_ms = 60_000;
        g.event(Event::UserObserved { user: r.clone() });
        g.event(connection(ConnectionState::Stale));
        g.event(acl(0, &[])).event(acl(1, &[]));
        let write = Intent::ApplyUserConnection {
            object: "app".into(),
        };
        assert!(!syncs(&g).contains(&write), "no node holds it yet");
        g.event(acl(0, &[("app", "d1")]));
        g.succeed(Intent::SyncUsers {
            pod: "demo-0".into(),
            apply: vec!["app".into()],
            remove: vec![],
        });
        assert!(!syncs(&g).contains(&write), "demo-1 would refuse it");
        synced_both(&mut g, "d1");
        assert_eq!(syncs(&g), vec![write.clone()]);
        g.event(connection(ConnectionState::Current));
        assert!(syncs(&g).is_empty(), "converged: nothing");
        // A new password: written again only once both nodes take it.
        r.password = Some("cc33dd44".into());
        g.event(Event::UserObserved { user: r });
        g.event(connection(ConnectionState::Stale));
        assert!(!syncs(&g).contains(&write));
        synced_both(&mut g, "d2");
        assert_eq!(syncs(&g), vec![write]);
        // Refused (a Secret the operator does not own): never written.
        g.event(connection(ConnectionState::Refused("not ours".into())));
        assert!(syncs(&g).is_empty());
    }

    #[test]
    fn a_sync_refused_for_good_is_not_decided_again_until_a_user_changes() {
        let mut g = two_pods();
        g.event(Event::UserObserved {
            user: record(Some("aa11bb22")),
        });
        g.event(acl(0, &[])).event(acl(1, &[]));
        let intent = Intent::SyncUsers {
            pod: "demo-0".into(),
            apply: vec!["app".into()],
            remove: vec![],
        };
        let id = g.decide_and_fail(intent, "applying ACL user app on demo-0: refused", false);
        assert!(id > 0);
        assert_eq!(syncs(&g).len(), 1, "only demo-1 now");
        let mut r = record(Some("aa11bb22"));
        r.rules.push("~more:*".into());
        g.event(Event::UserObserved { user: r });
        assert_eq!(syncs(&g).len(), 2, "changed: tried again");
    }
}
