//! The CustomResourceDefinitions of this crate and their YAML rendering.
//!
//! This module owns the list of CRDs the operator serves and the one
//! deterministic YAML form a cluster admin installs (`crds/valkeycluster.yaml`,
//! kept in step by the `crd_drift` test and `make crds`). It must not write
//! files; callers decide where the YAML goes.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
    JSONSchemaPropsOrBool, ServiceReference, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;

use crate::v1alpha1::{ValkeyBackup, ValkeyCluster, ValkeyOperatorDefaults, ValkeyUser};

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

/// The Service of the operator's webhooks in the chart's default
/// release (`helm install logbook -n logbook-system`): the ValkeyCluster
/// CRD's conversion webhook as installed, which the operator corrects to
/// its own Service at start (`--webhook-names`), with its CA. A CRD is
/// not templated by Helm, so it cannot name the release's own.
pub const DEFAULT_WEBHOOK_SERVICE: (&str, &str) = ("logbook-system", "logbook-webhook");

/// Every CRD of the operator, in a stable order: the ValkeyCluster CRD
/// serving `v1alpha1` and `v1beta1`, `v1beta1` stored, converted by the
/// operator's webhook at [`DEFAULT_WEBHOOK_SERVICE`] until the operator
/// names its own.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let (namespace, name) = DEFAULT_WEBHOOK_SERVICE;
    crds_converting_at(WebhookClientConfig {
        service: Some(ServiceReference {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            path: Some("/convert".to_owned()),
            port: Some(443),
        }),
        ..WebhookClientConfig::default()
    })
}

/// [`crds`], the ValkeyCluster's conversion webhook at `client` (local
/// mode's own: `logbook::webhook::local`).
pub fn crds_converting_at(client: WebhookClientConfig) -> Vec<CustomResourceDefinition> {
    vec![
        valkeycluster_crd_with_conversion(client),
        ValkeyUser::crd(),
        ValkeyBackup::crd(),
        ValkeyOperatorDefaults::crd(),
    ]
}

/// The ValkeyCluster CRD as releases before v1beta1 installed it:
/// `v1alpha1` alone, stored. For tests of the upgrade from it.
pub fn valkeycluster_crd_v1alpha1_only() -> CustomResourceDefinition {
    without_spec_defaults(ValkeyCluster::crd())
}

/// The ValkeyCluster CRD serving `v1alpha1` and `v1beta1`, `v1beta1`
/// stored, each object converted between them by the conversion webhook
/// at `client` (the operator's `/convert`; see `crate::conversion`).
/// The names, scope and printer columns are v1alpha1's, the same in both.
pub fn valkeycluster_crd_with_conversion(client: WebhookClientConfig) -> CustomResourceDefinition {
    let mut crd = without_spec_defaults(ValkeyCluster::crd());
    let beta = without_spec_defaults(crate::v1beta1::ValkeyCluster::crd());
    for version in &mut crd.spec.versions {
        version.storage = false;
    }
    crd.spec
        .versions
        .extend(beta.spec.versions.into_iter().map(|mut v| {
            v.storage = true;
            v
        }));
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".to_owned(),
        webhook: Some(WebhookConversion {
            client_config: Some(client),
            conversion_review_versions: vec!["v1".to_owned()],
        }),
    });
    crd
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
