//! The static table of built-in kinds localkube serves, with the shapes
//! discovery reports for them on a real v1.35 server.

use std::sync::{Arc, OnceLock};

use super::{ResourceInfo, ScalePaths, VersionInfo};
use crate::names::NameRule;

struct Row {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    name_rule: NameRule,
}

const fn row(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
) -> Row {
    Row {
        group,
        kind,
        plural,
        namespaced,
        short,
        categories,
        status,
        scale: false,
        name_rule: NameRule::Subdomain,
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

fn rows() -> Vec<Row> {
    let rbac = "rbac.authorization.k8s.io";
    let mut rows = vec![
        Row {
            name_rule: NameRule::Label,
            ..row("", "Namespace", "namespaces", false, &["ns"], NONE, true)
        },
        row("", "Pod", "pods", true, &["po"], ALL, true),
        Row {
            name_rule: NameRule::Label1035,
            ..row("", "Service", "services", true, &["svc"], ALL, true)
        },
        row("", "Endpoints", "endpoints", true, &["ep"], NONE, false),
        row("", "ConfigMap", "configmaps", true, &["cm"], NONE, false),
        row("", "Secret", "secrets", true, NONE, NONE, false),
        row(
            "",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            NONE,
            false,
        ),
        row(
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            NONE,
            true,
        ),
        row("", "Event", "events", true, &["ev"], NONE, false),
        row("", "Node", "nodes", false, &["no"], NONE, true),
        Row {
            scale: true,
            ..row(
                "apps",
                "StatefulSet",
                "statefulsets",
                true,
                &["sts"],
                ALL,
                true,
            )
        },
        Row {
            scale: true,
            ..row(
                "apps",
                "Deployment",
                "deployments",
                true,
                &["deploy"],
                ALL,
                true,
            )
        },
        Row {
            scale: true,
            ..row(
                "apps",
                "ReplicaSet",
                "replicasets",
                true,
                &["rs"],
                ALL,
                true,
            )
        },
        row(
            "apps",
            "ControllerRevision",
            "controllerrevisions",
            true,
            NONE,
            NONE,
            false,
        ),
        row(
            "policy",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            NONE,
            true,
        ),
        row(
            "coordination.k8s.io",
            "Lease",
            "leases",
            true,
            NONE,
            NONE,
            false,
        ),
        row(
            "events.k8s.io",
            "Event",
            "events",
            true,
            &["ev"],
            NONE,
            false,
        ),
        row(
            "networking.k8s.io",
            "NetworkPolicy",
            "networkpolicies",
            true,
            &["netpol"],
            NONE,
            false,
        ),
        row(
            "discovery.k8s.io",
            "EndpointSlice",
            "endpointslices",
            true,
            NONE,
            NONE,
            false,
        ),
        // Stored and served (a chart installs one); localkube calls no
        // admission webhook.
        row(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            NONE,
            &["api-extensions"],
            false,
        ),
        row("batch", "Job", "jobs", true, NONE, ALL, true),
        row("batch", "CronJob", "cronjobs", true, &["cj"], ALL, true),
        row(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            true,
        ),
    ];
    for (kind, plural, namespaced) in [
        ("Role", "roles", true),
        ("RoleBinding", "rolebindings", true),
        ("ClusterRole", "clusterroles", false),
        ("ClusterRoleBinding", "clusterrolebindings", false),
    ] {
        rows.push(Row {
            name_rule: NameRule::PathSegment,
            ..row(rbac, kind, plural, namespaced, NONE, NONE, false)
        });
    }
    rows
}

/// The built-in resources.
pub fn builtins() -> &'static [Arc<ResourceInfo>] {
    static TABLE: OnceLock<Vec<Arc<ResourceInfo>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        rows()
            .into_iter()
            .map(|r| {
                Arc::new(ResourceInfo {
                    group: r.group.to_owned(),
                    kind: r.kind.to_owned(),
                    list_kind: format!("{}List", r.kind),
                    plural: r.plural.to_owned(),
                    singular: r.kind.to_lowercase(),
                    namespaced: r.namespaced,
                    short_names: r.short.iter().map(|s| (*s).to_owned()).collect(),
                    categories: r.categories.iter().map(|s| (*s).to_owned()).collect(),
                    versions: vec![VersionInfo {
                        name: "v1".to_owned(),
                        storage: true,
                        status: r.status,
                        scale: r.scale.then(|| ScalePaths {
                            spec_replicas: ".spec.replicas".to_owned(),
                            status_replicas: ".status.replicas".to_owned(),
                            label_selector: Some(".spec.selector".to_owned()),
                        }),
                        schema: None,
                        raw_schema: None,
                        columns: Vec::new(),
                    }],
                    log: r.plural == "pods" && r.group.is_empty(),
                    eviction: r.plural == "pods" && r.group.is_empty(),
                    name_rule: r.name_rule,
                    custom: false,
                    conversion_webhook: None,
                })
            })
            .collect()
    })
}
