//! The process kubelet as [`super::workloads::Workloads`] holds it.

use std::sync::Arc;

use crate::config::{PodLogs, WorkloadsConfig};
use crate::instance::Instance;
use crate::store::Store;

use super::Error;

/// The process kubelet, as [`super::workloads::Workloads`] holds it.
pub(crate) struct KubeletSlot(crate::kubelet::KubeletHandle);

impl KubeletSlot {
    pub(crate) async fn start(
        store: &Store,
        instance: Arc<Instance>,
        cfg: &WorkloadsConfig,
    ) -> Result<Self, Error> {
        let mut config = crate::kubelet::KubeletConfig::new(cfg.state_dir.clone());
        config.add_local_images(&cfg.local_images);
        crate::kubelet::Kubelet::spawn(store.clone(), instance, config)
            .await
            .map(Self)
            .map_err(|e| Error::Kubelet(Box::new(e)))
    }

    pub(crate) fn logs(&self) -> Option<Arc<dyn PodLogs>> {
        Some(self.0.logs())
    }

    pub(crate) fn faults(&self) -> crate::kubelet::Faults {
        self.0.faults()
    }

    pub(crate) async fn shutdown(self) {
        self.0.shutdown().await;
    }
}
