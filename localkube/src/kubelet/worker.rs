//! The kubelet's main loop: watches every pod (re-watching from the
//! current state when the watch ends, e.g. on 410), binds unscheduled pods
//! to the node, starts one worker per pod bound here (keyed by uid, so a
//! pod recreated under the same name while the old one terminates is a
//! new pod) and forwards each change to it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{PodEntry, Shared, pod};

/// What a pod worker is told.
#[derive(Debug)]
pub(crate) enum PodEvent {
    /// The pod's new state.
    Updated(Value),
    /// The pod object no longer exists.
    Deleted,
}

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// Binds `pod` to this node (the scheduler's job, done here on localkube:
/// one node; on a real control plane its scheduler binds).
async fn bind(shared: &Shared, pod: &Value) {
    let mut p = pod.clone();
    if let Some(spec) = p.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert(
            "nodeName".into(),
            Value::String(shared.config.node_name.clone()),
        );
    }
    let ns = s(pod, "/metadata/namespace").map(str::to_owned);
    if let Err(e) = shared
        .api
        .update("v1", "pods", ns.as_deref(), p, false)
        .await
    {
        // A conflict: the next event of this pod retries.
        tracing::debug!(error = %e, "kubelet: binding failed");
    }
}

/// Forgets a finished worker's pod and gives its address back.
pub(crate) fn forget(shared: &Shared, uid: &str) {
    let entry = shared.pods.lock().remove(uid);
    if let Some(e) = entry
        && let Some(ip) = e.ip
    {
        let index =
            (0..crate::instance::POD_ADDRESSES).find(|i| shared.instance.pod_ip(*i) == Some(ip));
        if let Some(i) = index {
            shared.release_ip(i);
        }
    }
}

fn start(shared: &Arc<Shared>, pod: Value) {
    let uid = s(&pod, "/metadata/uid").unwrap_or_default().to_owned();
    let Some((_, ip)) = shared.allocate_ip() else {
        tracing::warn!(pod = %uid, "kubelet: no pod address left");
        return;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let pids = Arc::new(Mutex::new(HashMap::new()));
    shared.pods.lock().insert(
        uid,
        PodEntry {
            namespace: s(&pod, "/metadata/namespace")
                .unwrap_or("default")
                .to_owned(),
            name: s(&pod, "/metadata/name").unwrap_or_default().to_owned(),
            ip: Some(ip),
            containers: super::logs::container_names(&pod),
            pids: pids.clone(),
            updates: tx,
        },
    );
    let task = tokio::spawn(pod::run(shared.clone(), pod, ip, pids, rx));
    let mut tasks = shared.tasks.lock();
    tasks.retain(|t| !t.is_finished());
    tasks.push(task);
}

async fn handle(shared: &Arc<Shared>, etype: &str, pod: &Value) {
    let uid = s(pod, "/metadata/uid").unwrap_or_default().to_owned();
    if etype == "DELETED" {
        if let Some(e) = shared.pods.lock().get(&uid) {
            let _ = e.updates.send(PodEvent::Deleted);
        }
        return;
    }
    let node = s(pod, "/spec/nodeName").unwrap_or_default();
    if node.is_empty() {
        if shared.api.is_local()
            && pod
                .pointer("/metadata/deletionTimestamp")
                .is_none_or(Value::is_null)
        {
            bind(shared, pod).await;
        }
        return;
    }
    if node != shared.config.node_name {
        return;
    }
    let known = shared
        .pods
        .lock()
        .get(&uid)
        .map(|e| e.updates.send(PodEvent::Updated(pod.clone())));
    if known.is_none() {
        start(shared, pod.clone());
    }
}

/// Runs until the kubelet shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    // On localkube the kubelet sees every pod (it binds the unscheduled);
    // a real kubelet sees only the pods bound to its node.
    let field =
        (!shared.api.is_local()).then(|| format!("spec.nodeName={}", shared.config.node_name));
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Pods that vanished while no watch ran are told so.
        if let Ok(pods) = shared.api.list("v1", "pods", None, field.as_deref()).await {
            let live: HashSet<&str> = pods.iter().filter_map(|p| s(p, "/metadata/uid")).collect();
            for (uid, e) in shared.pods.lock().iter() {
                if !live.contains(uid.as_str()) {
                    let _ = e.updates.send(PodEvent::Deleted);
                }
            }
        }
        let mut rx = match shared.api.watch("v1", "pods", None, field.as_deref()).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet: cannot watch pods");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) if ev.etype == "ERROR" => break,
                    Some(ev) if ev.etype == "BOOKMARK" => {}
                    Some(ev) => handle(&shared, ev.etype, &ev.object).await,
                    None => break,
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
