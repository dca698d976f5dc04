//! The object store: every object as JSON keyed by (group, resource,
//! namespace, name), one global resourceVersion counter, the ring of
//! recent changes watches resume from, the live change feed, and optional
//! sled persistence. All writes go through one lock, so every change gets
//! the next resourceVersion and reaches the feed in that order.

mod api;
mod apps;
mod delete;
mod evict;
mod gc;
mod kinds;
mod list;
mod node_ports;
mod persist;
mod scale;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use crate::error::ApiError;
use crate::obj;
use crate::registry::{self, CustomResources, ResourceInfo};

pub(crate) use api::render;
pub use api::{DeleteOptions, PatchKind, Propagation, split_api_version};
pub use delete::Deleted;
pub use list::{ListOptions, ListResult, RvMatch, parse_rv as list_parse_rv};
pub use persist::PersistError;
pub use write::{FieldValidation, Outcome, Sub, WriteCtx};

/// (group, resource, namespace or "", name).
pub type Key = (String, String, String, String);

/// The API group of Roles, ClusterRoles and their bindings.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent on the feed.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub etype: EventType,
    /// API group.
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object after the change (the last state for deletes).
    pub object: Arc<Value>,
    /// The object before the change (modifications), for selector moves.
    pub old: Option<Arc<Value>>,
}

/// The state behind the lock.
pub(crate) struct Inner {
    pub objects: BTreeMap<Key, Arc<Value>>,
    pub uids: HashMap<String, Key>,
    pub rv: u64,
    pub history: VecDeque<Arc<Event>>,
    pub history_cap: usize,
    /// The newest resourceVersion no longer in the history: a watch from
    /// an older one has missed changes (410 Gone).
    pub compacted: u64,
    pub custom: CustomResources,
    pub feed: broadcast::Sender<Arc<Event>>,
    pub persist: Option<persist::Persist>,
    pub next_ip: u32,
    /// The localkube instance number whose block ClusterIPs come from
    /// (None: an API-only server, 10.96.0.0/12).
    pub instance: Option<u8>,
    /// Owner uid → the keys of the objects naming it in ownerReferences,
    /// so the collector looks at a deleted owner's dependents instead of
    /// sweeping every object.
    pub dependents: HashMap<String, BTreeSet<Key>>,
    /// Objects the collector must look at: written with owners, or whose
    /// owner went away or started deleting in the foreground.
    pub gc_queue: BTreeSet<Key>,
    /// Counts the stored changes to RBAC objects, so the authorizer
    /// recompiles its policy only after one.
    pub rbac_generation: u64,
}

/// Settings the store's semantics depend on.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    pub graceful_pod_deletion: bool,
    pub bookmark_interval: Duration,
}

pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    pub gc: Notify,
    pub config: StoreConfig,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Objects copied out by the in-process reads ([`Store::copies`]).
    pub copies: std::sync::atomic::AtomicU64,
}

/// An in-process handle on the store, with the same semantics as the HTTP
/// API (part 2's controllers use it). Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

/// The key of `name` of `res` in `namespace`.
pub fn key(res: &ResourceInfo, namespace: &str, name: &str) -> Key {
    let ns = if res.namespaced { namespace } else { "" };
    (
        res.group.clone(),
        res.plural.clone(),
        ns.to_owned(),
        name.to_owned(),
    )
}

impl Inner {
    fn new(history_cap: usize) -> Self {
        // The feed's buffer is each watcher's allowance of unread changes;
        // a watcher further behind is ended with 410 and relists.
        let (feed, _) = broadcast::channel(history_cap.clamp(256, 16_384));
        Self {
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            compacted: 0,
            custom: BTreeMap::new(),
            feed,
            persist: None,
            next_ip: 1,
            instance: None,
            dependents: HashMap::new(),
            gc_queue: BTreeSet::new(),
            rbac_generation: 0,
        }
    }

    /// The resource `plural` of `group`, built-in or custom.
    pub fn resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        registry::lookup(&self.custom, group, plural)
    }

    /// Stores `object` at `key` with the next resourceVersion.
    pub fn put(&mut self, key: Key, mut object: Value) -> Result<Arc<Value>, ApiError> {
        let rv = self.rv.saturating_add(1);
        obj::meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        if let Some(p) = &self.persist {
            p.put(&key, &object, rv)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        self.rv = rv;
        let object = Arc::new(object);
        let uid = obj::uid(&object).to_owned();
        if !uid.is_empty() {
            self.uids.insert(uid, key.clone());
        }
        let old = self.objects.insert(key.clone(), object.clone());
        self.index_owners(&key, old.as_deref(), Some(&object));
        let etype = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(key, etype, object.clone(), old);
        Ok(object)
    }

    /// Removes `key`; the DELETED event carries a new resourceVersion.
    pub fn remove(&mut self, key: &Key) -> Result<Option<Arc<Value>>, ApiError> {
        let Some(current) = self.objects.get(key).cloned() else {
            return Ok(None);
        };
        let rv = self.rv.saturating_add(1);
        if let Some(p) = &self.persist {
            p.remove(key, rv)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        self.rv = rv;
        self.objects.remove(key);
        self.uids.remove(obj::uid(&current));
        self.index_owners(key, Some(&current), None);
        let mut last = (*current).clone();
        obj::meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        let last = Arc::new(last);
        self.record(key.clone(), EventType::Deleted, last.clone(), Some(current));
        Ok(Some(last))
    }

    /// Keeps the owner index and the collector's queue in step with a
    /// change of `key` from `old` to `new` (`None`: absent).
    fn index_owners(&mut self, key: &Key, old: Option<&Value>, new: Option<&Value>) {
        let old_owners = old.map(obj::owner_uids).unwrap_or_default();
        let new_owners = new.map(obj::owner_uids).unwrap_or_default();
        for uid in old_owners.iter().filter(|u| !new_owners.contains(u)) {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
            // A foreground-deleting owner may be waiting for this one.
            if let Some(owner) = self.uids.get(uid) {
                self.gc_queue.insert(owner.clone());
            }
        }
        for uid in &new_owners {
            self.dependents
                .entry(uid.clone())
                .or_default()
                .insert(key.clone());
        }
        if !new_owners.is_empty() {
            self.gc_queue.insert(key.clone());
        }
        // An owner that went away or started deleting: its dependents are due.
        let went = match (old, new) {
            (Some(o), None) => Some(obj::uid(o)),
            (_, Some(n)) if obj::is_deleting(n) => Some(obj::uid(n)),
            _ => None,
        };
        if let Some(uid) = went.filter(|u| !u.is_empty()) {
            if let Some(set) = self.dependents.get(uid) {
                self.gc_queue.extend(set.iter().cloned());
            }
            if new.is_some() {
                self.gc_queue.insert(key.clone());
            }
        }
    }

    fn record(&mut self, key: Key, etype: EventType, object: Arc<Value>, old: Option<Arc<Value>>) {
        if key.0 == RBAC_GROUP {
            self.rbac_generation = self.rbac_generation.wrapping_add(1);
        }
        let (group, resource, namespace, _) = key;
        let ev = Arc::new(Event {
            rv: self.rv,
            etype,
            group,
            resource,
            namespace,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receivers is normal (no watch open).
        let _ = self.feed.send(ev);
    }

    /// The stored object.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.objects.get(key).cloned()
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be read.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// A bootstrap object could not be written.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] Box<ApiError>),
}

impl Store {
    /// Opens a store (loading `state_dir` if given) with the namespaces and
    /// the `kubernetes` Service every cluster has; Services get ClusterIPs
    /// from instance `instance`'s block when given.
    ///
    /// # Errors
    /// [`StoreError`] when the state directory cannot be loaded.
    pub(crate) fn open(config: &crate::Config, instance: Option<u8>) -> Result<Self, StoreError> {
        let mut inner = Inner::new(config.watch_history);
        inner.instance = instance;
        if let Some(dir) = &config.state_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Bootstrap(Box::new(ApiError::Internal(format!(
                    "state dir {}: {e}",
                    dir.display()
                ))))
            })?;
            let p = persist::Persist::open(dir)?;
            let (objects, rv) = p.load()?;
            for (k, v) in &objects {
                let uid = obj::uid(v);
                if !uid.is_empty() {
                    inner.uids.insert(uid.to_owned(), k.clone());
                }
            }
            inner.objects = objects;
            let loaded: Vec<(Key, Arc<Value>)> = inner
                .objects
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in loaded {
                inner.index_owners(&k, None, Some(&v));
            }
            let max_rv = inner
                .objects
                .values()
                .filter_map(|o| obj::resource_version(o).parse::<u64>().ok())
                .max()
                .unwrap_or(0);
            inner.rv = rv.max(max_rv);
            // History starts empty: nothing before now can be resumed.
            inner.compacted = inner.rv;
            inner.persist = Some(p);
            kinds::reload_crds(&mut inner);
        }
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let store = Store {
            shared: Arc::new(Shared {
                inner: Mutex::new(inner),
                gc: Notify::new(),
                config: StoreConfig {
                    graceful_pod_deletion: config.graceful_pod_deletion,
                    bookmark_interval: config.bookmark_interval,
                },
                shutdown,
                copies: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        store.bootstrap().map_err(Box::new)?;
        Ok(store)
    }

    fn bootstrap(&self) -> Result<(), ApiError> {
        let ctx = WriteCtx::internal("kube-apiserver");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            match self.create("v1", "namespaces", None, body, &ctx) {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}
        });
        match self.create("v1", "services", Some("default"), svc, &ctx) {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Starts the background garbage collector (needs a tokio runtime).
    pub(crate) fn spawn_gc(&self) -> tokio::task::JoinHandle<()> {
        gc::spawn(self.clone())
    }

    /// Ends open watches and the collector, and flushes persistence.
    pub(crate) fn close(&self) {
        let _ = self.shared.shutdown.send(true);
        if let Some(p) = &self.shared.inner.lock().persist {
            p.flush();
        }
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.inner.lock().rv
    }

    /// The resource `plural` of the API `group`, if served.
    pub fn resource_info(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.shared.inner.lock().resource(group, plural)
    }

    /// Every served resource (built-in and custom).
    pub fn resources(&self) -> Vec<Arc<ResourceInfo>> {
        registry::all(&self.shared.inner.lock().custom)
    }

    /// How many stored changes RBAC objects have seen (a cache key).
    pub(crate) fn rbac_generation(&self) -> u64 {
        self.shared.inner.lock().rbac_generation
    }

    /// Every stored RBAC object as (resource plural, object), with the
    /// generation they are current at, read under one lock.
    pub(crate) fn rbac_objects(&self) -> (u64, Vec<(String, Arc<Value>)>) {
        let inner = self.shared.inner.lock();
        let from = (
            RBAC_GROUP.to_owned(),
            String::new(),
            String::new(),
            String::new(),
        );
        let objects = inner
            .objects
            .range(from..)
            .take_while(|(k, _)| k.0 == RBAC_GROUP)
            .map(|(k, v)| (k.1.clone(), v.clone()))
            .collect();
        (inner.rbac_generation, objects)
    }
}
