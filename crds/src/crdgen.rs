//! The CustomResourceDefinitions of this crate and their YAML rendering.
//!
//! This module owns the list of CRDs the operator serves and the one
//! deterministic YAML form a cluster admin installs (`crds/valkeycluster.yaml`,
//! kept in step by the `crd_drift` test and `make crds`). It must not write
//! files; callers decide where the YAML goes.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::v1alpha1::{ValkeyBackup, ValkeyCluster, ValkeyUser};

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdGenError {
    /// A CRD did not serialize to YAML.
    #[error("cannot render CRD {name} as YAML: {source}")]
    Yaml {
        /// `metadata.name` of the CRD.
        name: String,
        /// The serializer's error.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Every CRD of the operator, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![ValkeyCluster::crd(), ValkeyUser::crd(), ValkeyBackup::crd()]
}

/// The CRDs as one multi-document YAML string: each document starts with
/// `---\n`. The output is deterministic (the schema's maps are sorted), so it
/// can be committed and compared.
///
/// # Errors
///
/// [`CrdGenError::Yaml`] if a CRD cannot be serialized (not expected for
/// derived CRDs).
pub fn render_crds_yaml() -> Result<String, CrdGenError> {
    let mut out = String::new();
    for crd in crds() {
        let yaml = serde_yaml::to_string(&crd).map_err(|source| CrdGenError::Yaml {
            name: crd.metadata.name.clone().unwrap_or_default(),
            source,
        })?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}
