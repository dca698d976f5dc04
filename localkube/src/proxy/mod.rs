//! The Service proxy: for every Service whose ClusterIP lies in this
//! instance's block (on a real control plane: its service range), a TCP
//! listener on `clusterIP:port` for each TCP port that forwards each
//! accepted connection to a ready endpoint's `targetPort`, round-robin —
//! kube-proxy's userspace mode. It follows Services and EndpointSlices
//! through watches ([`NodeApi`]), so a changed endpoint set
//! takes effect for the next connection within milliseconds; connections
//! already forwarded are left alone. Headless Services get no proxy.
//!
//! `type: NodePort` and `type: LoadBalancer` Services are also reached at
//! `<node address>:nodePort` ([`Instance::node_ip`]), and a LoadBalancer
//! at `ingressIP:port` once the [`load_balancer`] controller has given it
//! an address of the instance's block. With one node,
//! `externalTrafficPolicy: Local` and `Cluster` forward alike (every
//! endpoint is local); the client's address is not kept in either.

mod backends;
mod listener;
pub mod load_balancer;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::instance::{AddressBlock, Instance};
use crate::node_api::NodeApi;
use crate::store::Store;
use backends::{Backends, Frontends};
use listener::Listener;
use load_balancer::LoadBalancer;

/// The running proxy; [`Proxy::shutdown`] closes every listener.
pub struct Proxy {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    load_balancer: Option<LoadBalancer>,
}

/// Which ClusterIPs this proxy serves.
pub type Owned = Arc<dyn Fn(Ipv4Addr) -> bool + Send + Sync>;

/// What a proxy serves, and whether it runs the load-balancer controller.
pub struct ProxyConfig {
    /// Which ClusterIPs are its (on a real control plane: its service
    /// range).
    pub owned: Owned,
    /// The node's address, where node ports listen (None: none do).
    pub node_ip: Option<Ipv4Addr>,
    /// The load-balancer addresses it listens on (None: none).
    pub load_balancer: Option<AddressBlock>,
    /// Where the [`load_balancer`] controller assigns those addresses
    /// (it writes `services/status`); None: no controller runs.
    pub load_balancer_api: Option<NodeApi>,
}

impl ProxyConfig {
    /// Everything `instance` owns: its ClusterIPs, node address and
    /// load-balancer block, the controller assigning through `api`.
    pub fn for_instance(instance: &Arc<Instance>, api: Option<NodeApi>) -> Self {
        let owned = instance.clone();
        Self {
            owned: Arc::new(move |ip| owns_service_ip(&owned, ip)),
            node_ip: Some(instance.node_ip()),
            load_balancer: Some(instance.load_balancer_block()),
            load_balancer_api: api,
        }
    }
}

impl Proxy {
    /// Starts proxying the Services of localkube's `store` whose ClusterIP
    /// is in `instance`'s block, their node ports and load-balancer
    /// addresses, and assigning those addresses.
    pub fn spawn(store: &Store, instance: Arc<Instance>) -> Self {
        let api = NodeApi::Local(store.clone());
        Self::spawn_with(api.clone(), ProxyConfig::for_instance(&instance, Some(api)))
    }

    /// Starts proxying, through `api`, the Services whose ClusterIP
    /// `owned` accepts (on a real control plane: its service range); no
    /// node ports or load balancers.
    pub fn spawn_on(api: NodeApi, owned: Owned) -> Self {
        Self::spawn_with(
            api,
            ProxyConfig {
                owned,
                node_ip: None,
                load_balancer: None,
                load_balancer_api: None,
            },
        )
    }

    /// Starts proxying, through `api`, what `config` says.
    pub fn spawn_with(api: NodeApi, config: ProxyConfig) -> Self {
        let load_balancer = config
            .load_balancer
            .zip(config.load_balancer_api)
            .map(|(block, lb_api)| LoadBalancer::spawn(lb_api, block));
        let at = Serve {
            owned: config.owned,
            node_ip: config.node_ip,
            load_balancer: config.load_balancer,
        };
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
        tasks.spawn(run(api, at, changed, stop.subscribe()));
        Self {
            stop,
            tasks,
            load_balancer,
        }
    }

    /// Stops every listener and the connections they forward, and the
    /// load-balancer controller.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Some(lb) = self.load_balancer {
            lb.shutdown().await;
        }
    }
}

/// What the listeners serve (the owned parts of [`Frontends`]).
struct Serve {
    owned: Owned,
    node_ip: Option<Ipv4Addr>,
    load_balancer: Option<AddressBlock>,
}

/// Keeps one listener per (ClusterIP, port), node port and load-balancer
/// address and port of the wanted Services, and their backend lists
/// current.
async fn run(api: NodeApi, at: Serve, changed: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut listeners: BTreeMap<SocketAddr, Listener> = BTreeMap::new();
    loop {
        tokio::select! {
            () = changed.notified() => {}
            _ = stop.changed() => return,
        }
        let frontends = Frontends {
            owned: at.owned.as_ref(),
            node_ip: at.node_ip,
            load_balancer: at.load_balancer,
        };
        let Some(wanted) = backends::desired(&api, &frontends).await else {
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
