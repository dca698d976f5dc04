//! The Kubernetes side of `kubectl valkey`: a client built the way kubectl
//! builds its own (`--kubeconfig`, else `KUBECONFIG`, else
//! `~/.kube/config`, else the in-cluster service account; `--context`;
//! `-n/--namespace`, else the context's namespace, else `default`), and the
//! few calls the commands make, each failing with a [`PluginError`] that
//! names the verb and resource.
//!
//! Reads use get and list only; writes are merge patches of one
//! ValkeyCluster.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use logbook_crds::ValkeyCluster;
use serde::de::DeserializeOwned;

use super::error::{Call, PluginError, Result};
use crate::resources::labels;

/// The RBAC resource name of ValkeyClusters.
pub const CLUSTERS: &str = "valkeyclusters.valkey.logbook.dev";

/// kubectl's connection flags, as the plugin receives them.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n/--namespace`.
    pub namespace: Option<String>,
}

/// A connected client and the namespace the command works in.
#[derive(Clone)]
pub struct Kube {
    /// The client.
    pub client: kube::Client,
    /// The namespace.
    pub namespace: String,
    /// The API server's URL, for messages.
    pub url: String,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("namespace", &self.namespace)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Kube {
    /// Loads the configuration as kubectl would and builds a client. No
    /// request is sent yet: an unreachable server shows at the first call.
    ///
    /// # Errors
    /// [`PluginError::Config`] when no usable configuration is found.
    pub async fn connect(flags: &Flags) -> Result<Self> {
        let options = KubeConfigOptions {
            context: flags.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = match (&flags.kubeconfig, &flags.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    PluginError::Config(format!("cannot read kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| {
                        PluginError::Config(format!("kubeconfig {}: {e}", path.display()))
                    })?
            }
            (None, Some(context)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| PluginError::Config(format!("context {context:?}: {e}")))?,
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| PluginError::Config(e.to_string()))?,
        };
        // A person is waiting: a dead address should fail in seconds, not
        // after the client's default half minute.
        config.connect_timeout = Some(Duration::from_secs(10));
        let namespace = flags
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config)
            .map_err(|e| PluginError::Config(format!("cannot build a client: {e}")))?;
        Ok(Self {
            client,
            namespace,
            url,
        })
    }

    /// An API of `K` in the command's namespace.
    #[must_use]
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Describes a call for error messages.
    #[must_use]
    pub fn call<'a>(&'a self, verb: &'a str, resource: &'a str, name: Option<&'a str>) -> Call<'a> {
        Call {
            verb,
            resource,
            namespace: &self.namespace,
            name,
            url: &self.url,
        }
    }

    /// The ValkeyCluster `name`.
    ///
    /// # Errors
    /// [`PluginError::ClusterNotFound`]; API errors.
    pub async fn cluster(&self, name: &str) -> Result<ValkeyCluster> {
        self.api::<ValkeyCluster>()
            .get_opt(name)
            .await
            .map_err(|e| PluginError::from_kube(&self.call("get", CLUSTERS, Some(name)), e))?
            .ok_or_else(|| PluginError::ClusterNotFound {
                name: name.to_owned(),
                namespace: self.namespace.clone(),
            })
    }

    /// Every ValkeyCluster of the namespace, by name.
    ///
    /// # Errors
    /// API errors.
    pub async fn clusters(&self) -> Result<Vec<ValkeyCluster>> {
        let mut items = self
            .api::<ValkeyCluster>()
            .list(&ListParams::default())
            .await
            .map_err(|e| PluginError::from_kube(&self.call("list", CLUSTERS, None), e))?
            .items;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(items)
    }

    /// Objects of kind `K` carrying the cluster's selector labels.
    ///
    /// # Errors
    /// API errors.
    pub async fn owned<K>(&self, cluster: &str, resource: &str) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let params = ListParams::default().labels(&labels::selector_string(cluster));
        Ok(self
            .api::<K>()
            .list(&params)
            .await
            .map_err(|e| PluginError::from_kube(&self.call("list", resource, None), e))?
            .items)
    }

    /// The cluster's data pods, by name.
    ///
    /// # Errors
    /// API errors.
    pub async fn data_pods(&self, cluster: &str) -> Result<Vec<Pod>> {
        let mut pods: Vec<Pod> = self.owned(cluster, "pods").await?;
        pods.sort_by_key(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            (crate::decide::ordinal(&name), name)
        });
        Ok(pods)
    }

    /// Merge-patches the ValkeyCluster `name` with `patch`.
    ///
    /// # Errors
    /// API errors (a 404 as [`PluginError::ClusterNotFound`]).
    pub async fn patch_cluster(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<ValkeyCluster> {
        // The patch says the spec as v1alpha1 does; the API is spoken at
        // the stored version.
        let patch = logbook_crds::hub::merge_patch_to_stored(patch)
            .map_err(|e| PluginError::Refused(format!("valkeycluster/{name}: {e}")))?;
        self.api::<ValkeyCluster>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| match e {
                kube::Error::Api(status) if status.code == 404 => PluginError::ClusterNotFound {
                    name: name.to_owned(),
                    namespace: self.namespace.clone(),
                },
                e => PluginError::from_kube(&self.call("patch", CLUSTERS, Some(name)), e),
            })
    }
}
