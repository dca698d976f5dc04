//! The Service proxy: for every Service whose ClusterIP lies in this
//! instance's block, a TCP listener on `clusterIP:port` for each TCP port
//! that forwards each accepted connection to a ready endpoint's
//! `targetPort`, round-robin — kube-proxy's userspace mode. It follows
//! Services and Endpoints through store watches, so a changed endpoint set
//! takes effect for the next connection within milliseconds; connections
//! already forwarded are left alone. Headless Services get no proxy.

mod backends;
mod listener;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::instance::Instance;
use crate::store::Store;
use backends::Backends;
use listener::Listener;

/// The running proxy; [`Proxy::shutdown`] closes every listener.
pub struct Proxy {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Proxy {
    /// Starts proxying the Services of `store` whose ClusterIP is in
    /// `instance`'s block.
    pub fn spawn(store: &Store, instance: Arc<Instance>) -> Self {
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let changed = Arc::new(Notify::new());
        for plural in ["services", "endpoints"] {
            tasks.spawn(crate::controllers::forward_changes(
                store.clone(),
                "v1",
                plural,
                changed.clone(),
                stop.subscribe(),
            ));
        }
        tasks.spawn(run(store.clone(), instance, changed, stop.subscribe()));
        Self { stop, tasks }
    }

    /// Stops every listener and the connections they forward.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Keeps one listener per (ClusterIP, port) of the wanted Services, and
/// their backend lists current.
async fn run(
    store: Store,
    instance: Arc<Instance>,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut listeners: BTreeMap<SocketAddr, Listener> = BTreeMap::new();
    loop {
        tokio::select! {
            () = changed.notified() => {}
            _ = stop.changed() => return,
        }
        let wanted = backends::desired(&store, |ip: Ipv4Addr| owns_service_ip(&instance, ip));
        listeners.retain(|addr, _| wanted.contains_key(addr));
        for (addr, list) in wanted {
            match listeners.get(&addr) {
                Some(l) => l.backends.set(list),
                None => match Listener::bind(addr, Backends::new(list)).await {
                    Ok(l) => {
                        listeners.insert(addr, l);
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "localkube proxy: cannot listen");
                    }
                },
            }
        }
    }
}

/// Whether `ip` is one of `instance`'s ClusterIPs (127.n.200.0–127.n.255.255).
fn owns_service_ip(instance: &Instance, ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 127 && b == instance.number() && c >= 200
}
