//! The CustomResourceDefinitions of this crate and their YAML rendering.
//!
//! This module owns the list of CRDs the operator serves and the one
//! deterministic YAML form a cluster admin installs (`crds/valkeycluster.yaml`,
//! kept in step by the `crd_drift` test and `make crds`). It must not write
//! files; callers decide where the YAML goes.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
    JSONSchemaPropsOrBool, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;

use crate::v1alpha1::{ValkeyBackup, ValkeyCluster, ValkeyOperatorDefaults, ValkeyUser};

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdGenError {
    /// The versions of a CRD could not be merged into one.
    #[error("cannot merge the versions of CRD {name}: {detail}")]
    Merge {
        /// `metadata.name` of the CRD.
        name: String,
        /// kube's reason.
        detail: String,
    },
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
    vec![
        without_spec_defaults(ValkeyCluster::crd()),
        ValkeyUser::crd(),
        ValkeyBackup::crd(),
        ValkeyOperatorDefaults::crd(),
    ]
}

/// The ValkeyCluster CRD serving `v1alpha1` and `v1beta1`, `v1beta1`
/// stored, each object converted between them by the conversion webhook
/// at `client` (the operator's `/convert`; see `crate::conversion`).
///
/// # Errors
///
/// [`CrdGenError::Merge`] when the versions' CRDs disagree on their
/// names or scope (not expected of the derived ones).
pub fn valkeycluster_crd_with_conversion(
    client: WebhookClientConfig,
) -> Result<CustomResourceDefinition, CrdGenError> {
    let alpha = without_spec_defaults(ValkeyCluster::crd());
    let beta = without_spec_defaults(crate::v1beta1::ValkeyCluster::crd());
    let name = alpha.metadata.name.clone().unwrap_or_default();
    let mut crd = kube::core::crd::merge_crds(vec![alpha, beta], "v1beta1").map_err(|e| {
        CrdGenError::Merge {
            name,
            detail: e.to_string(),
        }
    })?;
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".to_owned(),
        webhook: Some(WebhookConversion {
            client_config: Some(client),
            conversion_review_versions: vec!["v1".to_owned()],
        }),
    });
    Ok(crd)
}

/// `crd` with no `default` in its spec's schema but `topology`'s.
///
/// A default the API server writes into the object is indistinguishable
/// from a value its user set, and would win over every defaults layer
/// (`crate::layers`): the operator's defaults, a namespace's, a plan.
/// The built-in values are applied by the operator instead, beneath those
/// layers (the serde defaults). `topology` keeps its default: it is each
/// cluster's own, and the schema's rules read it.
fn without_spec_defaults(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn strip(schema: &mut JSONSchemaProps) {
        schema.default = None;
        for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
            strip(child);
        }
        if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
            strip(items);
        }
        if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
            strip(extra);
        }
    }
    for version in &mut crd.spec.versions {
        let spec = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("spec"));
        if let Some(spec) = spec {
            for (field, schema) in spec.properties.iter_mut().flat_map(|p| p.iter_mut()) {
                if field != "topology" {
                    strip(schema);
                }
            }
        }
    }
    crd
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
