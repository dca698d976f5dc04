//! What runs beside the API server when [`crate::Config::workloads`] is
//! set: the instance number whose loopback block the ClusterIPs and pod
//! addresses come from, the controllers, the Service proxy and the
//! process kubelet. Shutdown stops the kubelet first, so no pod process
//! outlives the server.

use std::sync::Arc;

use crate::config::{PodLogs, WorkloadsConfig};
use crate::controllers::Controllers;
use crate::instance::Instance;
use crate::proxy::Proxy;
use crate::store::Store;

use super::Error;
use super::kubelet_slot::KubeletSlot;

/// The running workload components.
pub(crate) struct Workloads {
    pub instance: Arc<Instance>,
    controllers: Controllers,
    proxy: Option<Proxy>,
    kubelet: Option<KubeletSlot>,
}

/// Takes this process's instance number.
///
/// # Errors
/// [`Error::Instance`] when none is free or the lock dir is unusable.
pub(crate) fn acquire_instance() -> Result<Arc<Instance>, Error> {
    Instance::acquire(&Instance::default_lock_dir())
        .map(Arc::new)
        .map_err(Error::Instance)
}

impl Workloads {
    /// Starts the kubelet (when asked), then the controllers and the
    /// proxy; returns the pod log source the kubelet serves.
    ///
    /// # Errors
    /// [`Error::Kubelet`] when the kubelet cannot start (nothing is left
    /// running then).
    pub async fn start(
        store: &Store,
        instance: Arc<Instance>,
        cfg: &WorkloadsConfig,
    ) -> Result<(Self, Option<Arc<dyn PodLogs>>), Error> {
        let (kubelet, logs) = if cfg.kubelet {
            let k = KubeletSlot::start(store, instance.clone(), cfg).await?;
            let logs = k.logs();
            (Some(k), logs)
        } else {
            (None, None)
        };
        let controllers = Controllers::spawn(store);
        let proxy = cfg.proxy.then(|| Proxy::spawn(store, instance.clone()));
        Ok((
            Self {
                instance,
                controllers,
                proxy,
                kubelet,
            },
            logs,
        ))
    }

    /// The kubelet's fault injection, when it runs.
    pub fn faults(&self) -> Option<crate::kubelet::Faults> {
        self.kubelet.as_ref().map(KubeletSlot::faults)
    }

    /// Stops the kubelet (and its processes), then the proxy and the
    /// controllers.
    pub async fn shutdown(self) {
        if let Some(k) = self.kubelet {
            k.shutdown().await;
        }
        if let Some(p) = self.proxy {
            p.shutdown().await;
        }
        self.controllers.shutdown().await;
    }
}
