//! localkube's node agents — the process kubelet, the Service proxy and
//! the local-path provisioner — as the one node of a real Kubernetes
//! control plane (kube-apiserver, kube-controller-manager,
//! kube-scheduler): each is a client of its API server over HTTPS with
//! its own credentials, as on a real node. The pods the real scheduler
//! binds to the node run as local processes exactly as on localkube
//! (same images table, mount namespaces, pod addresses, probes, logs and
//! faults); the real StatefulSet, ReplicaSet, Deployment, EndpointSlice
//! and garbage-collector controllers do what localkube's own do there.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::LocalImage;
use crate::instance::Instance;
use crate::kubelet::{Faults, Kubelet, KubeletConfig, KubeletError, KubeletHandle};
use crate::node_api::NodeApi;
use crate::provisioner::Provisioner;
use crate::proxy::Proxy;

/// How the node joins.
pub struct RemoteNodeConfig {
    /// The kubelet's client (the node's identity, `system:node:<name>`).
    pub kubelet: kube::Client,
    /// The proxy's client (`system:kube-proxy`).
    pub proxy: kube::Client,
    /// The provisioner's client (it writes StorageClasses and volumes).
    pub provisioner: kube::Client,
    /// The node's name; its client certificate must say the same.
    pub node_name: String,
    /// Pod volumes, logs and claim data.
    pub state_dir: PathBuf,
    /// Images run as given local executables (as localkube's).
    pub local_images: Vec<LocalImage>,
    /// The kubelet API's certificates (pod logs through the API server).
    pub tls: Option<crate::kubelet::KubeletTls>,
}

/// Why the node could not join.
#[derive(Debug, thiserror::Error)]
pub enum RemoteNodeError {
    /// The kubelet could not start or register the Node.
    #[error(transparent)]
    Kubelet(#[from] KubeletError),
    /// The pod and Service addresses could not be added to `lo`.
    #[error("cannot add the node's addresses: {0}")]
    Network(String),
    /// The StorageClass could not be installed.
    #[error("cannot install the local-path StorageClass: {0}")]
    Provisioner(crate::ApiError),
}

/// A running node.
pub struct RemoteNode {
    kubelet: KubeletHandle,
    proxy: Proxy,
    provisioner: Provisioner,
    instance: Arc<Instance>,
}

impl RemoteNode {
    /// Registers the node and starts its agents. `instance` gives its pod
    /// addresses and ClusterIPs ([`Instance::service_cidr`] must be the
    /// API server's service range); with
    /// [`Network::Benchmark`](crate::instance::Network::Benchmark) they
    /// are added to `lo` for as long as the node runs.
    ///
    /// # Errors
    /// [`RemoteNodeError`]; nothing is left running then.
    pub async fn join(
        instance: Arc<Instance>,
        config: RemoteNodeConfig,
    ) -> Result<Self, RemoteNodeError> {
        instance.add_addresses().map_err(RemoteNodeError::Network)?;
        let mut kc = KubeletConfig::new(config.state_dir.clone());
        kc.node_name.clone_from(&config.node_name);
        kc.add_local_images(&config.local_images);
        kc.tls = config.tls;
        let kubelet =
            match Kubelet::spawn_on(NodeApi::Remote(config.kubelet), instance.clone(), kc).await {
                Ok(k) => k,
                Err(e) => {
                    instance.remove_addresses();
                    return Err(e.into());
                }
            };
        let provisioner = match Provisioner::spawn(
            NodeApi::Remote(config.provisioner.clone()),
            kubelet.state_dir(),
            config.node_name.clone(),
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                kubelet.shutdown().await;
                instance.remove_addresses();
                return Err(RemoteNodeError::Provisioner(e));
            }
        };
        // No cloud controller manager runs there: the load-balancer
        // addresses are assigned with the provisioner's client (it may
        // write Service status; kube-proxy's may not).
        let proxy = Proxy::spawn_with(
            NodeApi::Remote(config.proxy),
            crate::proxy::ProxyConfig::for_instance(
                &instance,
                Some(NodeApi::Remote(config.provisioner)),
            ),
        );
        Ok(Self {
            kubelet,
            proxy,
            provisioner,
            instance,
        })
    }

    /// Fault injection into the node's pods.
    pub fn faults(&self) -> Faults {
        self.kubelet.faults()
    }

    /// Where pod data and logs live.
    pub fn state_dir(&self) -> PathBuf {
        self.kubelet.state_dir()
    }

    /// Stops every pod process, the proxy and the provisioner; the API
    /// objects and claim data stay.
    pub async fn shutdown(self) {
        self.kubelet.shutdown().await;
        self.proxy.shutdown().await;
        self.provisioner.shutdown().await;
        self.instance.remove_addresses();
    }
}
