//! What RBAC allowed and denied ServiceAccounts, so a test can list the
//! permissions a client really used (to compare with the Roles it ships)
//! and print exactly which permission a refused request lacked. Allowed
//! accesses are a set (a long run repeats the same few); denials keep
//! their order and are bounded to the last [`DENIALS_KEPT`].

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::attributes::{Attributes, Request};

/// Denials kept.
pub const DENIALS_KEPT: usize = 10_000;

/// One kind of access: who did what to which resource where. Object names
/// are left out, so each rule a client needs appears once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// e.g. `system:serviceaccount:default:logbook`.
    pub user: String,
    /// e.g. `get`, `watch`, `create`.
    pub verb: String,
    /// API group ("" for core; "" for non-resource paths too).
    pub group: String,
    /// `pods`, `pods/eviction`, `valkeyclusters/status`; "" for
    /// non-resource paths.
    pub resource: String,
    /// The namespace; `None` at the cluster scope (and for paths).
    pub namespace: Option<String>,
    /// The non-resource path (`/api`, `/version`), `None` for resources.
    pub path: Option<String>,
}

impl Access {
    /// The access `a` asks for.
    pub fn of(a: &Attributes) -> Self {
        match &a.target {
            Request::Resource(r) => Self {
                user: a.user.name.clone(),
                verb: a.verb.clone(),
                group: r.group.clone(),
                resource: r.combined(),
                namespace: (!r.namespace.is_empty()).then(|| r.namespace.clone()),
                path: None,
            },
            Request::NonResource { path } => Self {
                user: a.user.name.clone(),
                verb: a.verb.clone(),
                group: String::new(),
                resource: String::new(),
                namespace: None,
                path: Some(path.clone()),
            },
        }
    }
}

impl std::fmt::Display for Access {
    /// `system:serviceaccount:d:sa get pods.apps in d`, `... get path /api`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(p) = &self.path {
            return write!(f, "{} {} path {p}", self.user, self.verb);
        }
        write!(f, "{} {} {}", self.user, self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, " (group {})", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " at the cluster scope"),
        }
    }
}

/// One refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// What was asked.
    pub access: Access,
    /// The object's name, when the request named one.
    pub name: Option<String>,
    /// The 403's message, as the client got it.
    pub message: String,
}

#[derive(Debug, Default)]
struct Inner {
    allowed: BTreeSet<Access>,
    denied: VecDeque<Denial>,
}

/// The log (cheap to clone; clones share it).
#[derive(Debug, Clone, Default)]
pub struct AuthzLog(Arc<Mutex<Inner>>);

impl AuthzLog {
    pub(crate) fn allowed(&self, a: &Attributes) {
        let access = Access::of(a);
        self.0.lock().allowed.insert(access);
    }

    pub(crate) fn denied(&self, a: &Attributes, message: &str) {
        let name = match &a.target {
            Request::Resource(r) if !r.name.is_empty() => Some(r.name.clone()),
            _ => None,
        };
        let mut inner = self.0.lock();
        inner.denied.push_back(Denial {
            access: Access::of(a),
            name,
            message: message.to_owned(),
        });
        while inner.denied.len() > DENIALS_KEPT {
            inner.denied.pop_front();
        }
    }

    /// Every distinct access allowed so far, sorted.
    #[must_use]
    pub fn allowed_accesses(&self) -> Vec<Access> {
        self.0.lock().allowed.iter().cloned().collect()
    }

    /// The denials so far (the last [`DENIALS_KEPT`]), oldest first.
    #[must_use]
    pub fn denials(&self) -> Vec<Denial> {
        self.0.lock().denied.iter().cloned().collect()
    }

    /// Forgets both logs (e.g. between phases of a test).
    pub fn clear(&self) {
        let mut inner = self.0.lock();
        inner.allowed.clear();
        inner.denied.clear();
    }
}
