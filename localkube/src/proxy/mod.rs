//! The Service proxy: for every Service whose ClusterIP lies in this
//! instance's block (on a real control plane: its service range), a TCP
//! listener on `clusterIP:port` for each TCP port that forwards each
//! accepted connection to a ready endpoint's `targetPort`, round-robin —
//! kube-proxy's userspace mode. It follows Services and EndpointSlices
//! through watches ([`NodeApi`]), so a changed endpoint set
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
use crate::node_api::NodeApi;
use crate::store::Store;
use backends::Backends;
use listener::Listener;

/// The running proxy; [`Proxy::shutdown`] closes every listener.
pub struct Proxy {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Which ClusterIPs this proxy serves.
pub type Owned = Arc<dyn Fn(Ipv4Addr) -> bool + Send + Sync>;

impl Proxy {
    /// Starts proxying the Services of localkube's `store` whose ClusterIP
    /// is in `instance`'s block.
    pub fn spawn(store: &Store, instance: Arc<Instance>) -> Self {
        Self::spawn_on(
            NodeApi::Local(store.clone()),
            Arc::new(move |ip| owns_service_ip(&instance, ip)),
        )
    }

    /// Starts proxying, through `api`, the Services whose ClusterIP
    /// `owned` accepts (on a real control plane: its service range).
    pub fn spawn_on(api: NodeApi, owned: Owned) -> Self {
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let changed = Arc::new(Notify::new());
        for (av, plural) in [
            ("v1", "services"),
            ("discovery.k8s.io/v1", "endpointslices"),
        ] {
            tasks.spawn(crate::node_api::follow(
                api.clone(),
                av,
                plural,
                changed.clone(),
                stop.subscribe(),
            ));
        }
        tasks.spawn(run(api, owned, changed, stop.subscribe()));
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
async fn run(api: NodeApi, owned: Owned, changed: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut listeners: BTreeMap<SocketAddr, Listener> = BTreeMap::new();
    loop {
        tokio::select! {
            () = changed.notified() => {}
            _ = stop.changed() => return,
        }
        let Some(wanted) = backends::desired(&api, owned.as_ref()).await else {
            continue;
        };
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

/// Whether `ip` is one of `instance`'s ClusterIPs.
pub fn owns_service_ip(instance: &Instance, ip: Ipv4Addr) -> bool {
    instance.owns_service_ip(ip)
}
