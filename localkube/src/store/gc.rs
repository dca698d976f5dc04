//! The garbage collector and namespace controller: deletes dependents
//! whose owners are all gone (or being deleted in the foreground), lets a
//! foreground-deleting owner go once its dependents are gone, and empties
//! then removes terminating namespaces. Runs on every notification and on
//! a short tick, under the store lock, until nothing changes.
//!
//! It never sweeps every object: the store keeps an owner → dependents
//! index and queues the keys that need a look (an object written with
//! owners, the dependents of an owner that went away or started deleting,
//! a foreground-deleting owner whose dependents changed), so a write costs
//! the collector work proportional to what it touched, not to the store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::delete::{DeleteOptions, FOREGROUND};
use super::write::{WriteCtx, grace_over};
use super::{Inner, Key, Store, StoreConfig};
use crate::obj;

/// Starts the collector.
pub(crate) fn spawn(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = store.shared.shutdown.subscribe();
        loop {
            tokio::select! {
                () = store.shared.gc.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => return,
            }
            let mut inner = store.shared.inner.lock();
            // Bounded: each pass removes at least one layer of dependents.
            for _ in 0..32 {
                if !pass(&mut inner, &store.shared.config) {
                    break;
                }
            }
        }
    })
}

fn foreground_deleting(o: &Value) -> bool {
    obj::is_deleting(o) && obj::finalizers(o).iter().any(|f| f == FOREGROUND)
}

/// One sweep; whether it changed anything.
fn pass(inner: &mut Inner, cfg: &StoreConfig) -> bool {
    let ctx = WriteCtx::internal("generic-garbage-collector");
    let mut changed = false;
    let due: Vec<(Key, Arc<Value>)> = std::mem::take(&mut inner.gc_queue)
        .into_iter()
        .filter_map(|k| inner.objects.get(&k).cloned().map(|o| (k, o)))
        .collect();
    for (key, o) in &due {
        if obj::owner_uids(o).is_empty() || obj::is_deleting(o) {
            continue;
        }
        let owners = obj::owner_uids(o);
        let mut gone = Vec::new();
        for u in &owners {
            let owner = inner.uids.get(u).and_then(|k| inner.objects.get(k));
            if owner.is_none_or(|ow| foreground_deleting(ow)) {
                gone.push(u.clone());
            }
        }
        if gone.is_empty() {
            continue;
        }
        let Some(res) = inner.resource(&key.0, &key.1) else {
            continue;
        };
        if gone.len() == owners.len() {
            let _ = inner.delete(cfg, &ctx, &res, &key.2, &key.3, &DeleteOptions::default());
        } else {
            // Some owners live on: only the dangling references go.
            let mut n = (**o).clone();
            for u in &gone {
                obj::remove_owner(&mut n, u);
            }
            let _ = inner.put(key.clone(), n);
        }
        changed = true;
    }
    let waiting: Vec<(Key, Arc<Value>)> = due
        .into_iter()
        .filter(|(k, o)| foreground_deleting(o) && inner.objects.contains_key(k))
        .collect();
    for (key, o) in waiting {
        let uid = obj::uid(&o).to_owned();
        if inner.dependents.get(&uid).is_some_and(|d| !d.is_empty()) {
            continue;
        }
        let Some(res) = inner.resource(&key.0, &key.1) else {
            continue;
        };
        let mut n = (*o).clone();
        let f: Vec<String> = obj::finalizers(&n)
            .into_iter()
            .filter(|f| f != FOREGROUND)
            .collect();
        obj::set_finalizers(&mut n, &f);
        if f.is_empty() && grace_over(&n) {
            let _ = inner.finish_delete(cfg, &res, &key);
        } else {
            let _ = inner.put(key, n);
        }
        changed = true;
    }
    let first_ns: Key = (
        String::new(),
        "namespaces".into(),
        String::new(),
        String::new(),
    );
    let terminating: Vec<(Key, String)> = inner
        .objects
        .range(first_ns..)
        .take_while(|(k, _)| k.0.is_empty() && k.1 == "namespaces")
        .filter(|(_, o)| obj::is_deleting(o))
        .map(|(k, _)| (k.clone(), k.3.clone()))
        .collect();
    for (nskey, ns) in terminating {
        let contents: Vec<Key> = inner
            .objects
            .keys()
            .filter(|k| k.2 == ns)
            .cloned()
            .collect();
        if contents.is_empty() {
            if let Some(res) = inner.resource("", "namespaces") {
                let _ = inner.finish_delete(cfg, &res, &nskey);
                changed = true;
            }
            continue;
        }
        for k in contents {
            let deleting = inner.objects.get(&k).is_some_and(|o| obj::is_deleting(o));
            if deleting {
                continue;
            }
            if let Some(res) = inner.resource(&k.0, &k.1) {
                let _ = inner.delete(cfg, &ctx, &res, &k.2, &k.3, &DeleteOptions::default());
                changed = true;
            }
        }
    }
    changed
}
