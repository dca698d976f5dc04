//! The list types of the built-in kinds localkube serves, transcribed from
//! the upstream Go struct markers (`patchMergeKey`/`patchStrategy` for
//! strategic merge, `listType`/`listMapKey` for server-side apply). Where a
//! list has several map keys the strategic `patchMergeKey` comes first
//! (strategic merge only uses the first). Unlisted lists are atomic.

use crate::listtype::{ListType, ListTypes};

/// A list marker in const-friendly form.
#[derive(Debug, Clone, Copy)]
enum Lt {
    Set,
    Map(&'static [&'static str]),
    /// Not a list: a map marked `+mapType=atomic`.
    AtomicMap,
}

type Table = &'static [(&'static [&'static str], Lt)];

const NAME: Lt = Lt::Map(&["name"]);
const TYPE: Lt = Lt::Map(&["type"]);

/// `ObjectMeta`, found at the root and in every pod template.
const OBJECT_META: Table = &[
    (&["ownerReferences"], Lt::Map(&["uid"])),
    (&["finalizers"], Lt::Set),
];

/// `core/v1.Container`, `EphemeralContainer` share these.
const CONTAINER: Table = &[
    (&["ports"], Lt::Map(&["containerPort", "protocol"])),
    (&["env"], NAME),
    (&["volumeMounts"], Lt::Map(&["mountPath"])),
    (&["volumeDevices"], Lt::Map(&["devicePath"])),
    (&["resources", "claims"], NAME),
];

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// `core/v1.PodSpec` (container lists handled via [`CONTAINER_LISTS`]).
const POD_SPEC: Table = &[
    (&["containers"], NAME),
    (&["initContainers"], NAME),
    (&["ephemeralContainers"], NAME),
    (&["volumes"], NAME),
    (&["imagePullSecrets"], NAME),
    (&["hostAliases"], Lt::Map(&["ip"])),
    (
        &["topologySpreadConstraints"],
        Lt::Map(&["topologyKey", "whenUnsatisfiable"]),
    ),
    (&["schedulingGates"], NAME),
    (&["resourceClaims"], NAME),
    (&["nodeSelector"], Lt::AtomicMap),
];

const POD_STATUS: Table = &[
    (&["conditions"], TYPE),
    (&["podIPs"], Lt::Map(&["ip"])),
    (&["resourceClaimStatuses"], NAME),
];

const CONDITIONS: Table = &[(&["status", "conditions"], TYPE)];

/// One kind family: where its pod templates are, plus its own lists.
#[derive(Debug)]
pub(super) struct Kind {
    /// Paths of `PodTemplateSpec`s (their `metadata` and `spec`).
    templates: &'static [&'static [&'static str]],
    /// Paths of bare `PodSpec`s (a Pod's own `spec`).
    pod_specs: &'static [&'static [&'static str]],
    own: Table,
}

fn lookup(table: Table, path: &[&str]) -> Option<Lt> {
    table.iter().find(|(p, _)| *p == path).map(|(_, lt)| *lt)
}

fn in_pod_spec(rest: &[&str]) -> Option<Lt> {
    if let Some(lt) = lookup(POD_SPEC, rest) {
        return Some(lt);
    }
    match rest {
        [list, field @ ..] if CONTAINER_LISTS.contains(list) => lookup(CONTAINER, field),
        _ => None,
    }
}

impl Kind {
    fn find(&self, path: &[&str]) -> Option<Lt> {
        if let Some(lt) = path
            .strip_prefix(&["metadata"][..])
            .and_then(|rest| lookup(OBJECT_META, rest))
        {
            return Some(lt);
        }
        for spec in self.pod_specs {
            if let Some(lt) = path.strip_prefix(*spec).and_then(in_pod_spec) {
                return Some(lt);
            }
        }
        for template in self.templates {
            let Some(rest) = path.strip_prefix(*template) else {
                continue;
            };
            let found = match rest {
                ["metadata", meta @ ..] => lookup(OBJECT_META, meta),
                ["spec", spec @ ..] => in_pod_spec(spec),
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        lookup(self.own, path)
    }
}

impl ListTypes for Kind {
    fn list_type(&self, path: &[&str]) -> ListType {
        match self.find(path) {
            Some(Lt::Set) => ListType::Set,
            Some(Lt::Map(keys)) => ListType::Map(keys.iter().map(|k| (*k).to_owned()).collect()),
            Some(Lt::AtomicMap) | None => ListType::Atomic,
        }
    }

    fn map_atomic(&self, path: &[&str]) -> bool {
        matches!(self.find(path), Some(Lt::AtomicMap))
    }
}

const NONE: &[&[&str]] = &[];
const TEMPLATE: &[&[&str]] = &[&["spec", "template"]];

static METADATA_ONLY: Kind = Kind {
    templates: NONE,
    pod_specs: NONE,
    own: &[],
};
static POD: Kind = Kind {
    templates: NONE,
    pod_specs: &[&["spec"]],
    own: &[],
};
static POD_TEMPLATE: Kind = Kind {
    templates: &[&["template"]],
    pod_specs: NONE,
    own: &[],
};
static WORKLOAD: Kind = Kind {
    templates: TEMPLATE,
    pod_specs: NONE,
    own: CONDITIONS,
};
static CRON_JOB: Kind = Kind {
    templates: &[&["spec", "jobTemplate", "spec", "template"]],
    pod_specs: NONE,
    own: &[],
};
static WITH_CONDITIONS: Kind = Kind {
    templates: NONE,
    pod_specs: NONE,
    own: CONDITIONS,
};
static SERVICE: Kind = Kind {
    templates: NONE,
    pod_specs: NONE,
    own: &[
        (&["spec", "ports"], Lt::Map(&["port", "protocol"])),
        (&["spec", "selector"], Lt::AtomicMap),
        (&["status", "conditions"], TYPE),
    ],
};
/// `admissionregistration.k8s.io/v1` webhook configurations: `webhooks`
/// is a map by `name` (`+listType=map +listMapKey=name`), so a caBundle
/// written by one manager does not own the webhook another applies.
static WEBHOOK_CONFIGURATION: Kind = Kind {
    templates: NONE,
    pod_specs: NONE,
    own: &[(&["webhooks"], NAME)],
};
static SERVICE_ACCOUNT: Kind = Kind {
    templates: NONE,
    pod_specs: NONE,
    own: &[(&["secrets"], NAME)],
};
static NAMESPACE: Kind = Kind {
    templates: NONE,
    pod_specs: NONE,
    own: &[
        (&["spec", "finalizers"], Lt::Set),
        (&["status", "conditions"], TYPE),
    ],
};

/// Pods: the pod spec plus the status lists.
#[derive(Debug)]
struct PodKind;

impl ListTypes for PodKind {
    fn list_type(&self, path: &[&str]) -> ListType {
        match path {
            ["status", rest @ ..] => match lookup(POD_STATUS, rest) {
                Some(Lt::Map(keys)) => {
                    ListType::Map(keys.iter().map(|k| (*k).to_owned()).collect())
                }
                Some(Lt::Set) => ListType::Set,
                Some(Lt::AtomicMap) | None => ListType::Atomic,
            },
            _ => POD.list_type(path),
        }
    }

    fn map_atomic(&self, path: &[&str]) -> bool {
        POD.map_atomic(path)
    }
}

static POD_KIND: PodKind = PodKind;

/// The table for `group`/`kind`; `None` for kinds not served built-in.
pub(super) fn for_kind(group: &str, kind: &str) -> Option<&'static dyn ListTypes> {
    let table: &'static dyn ListTypes = match (group, kind) {
        ("" | "core", "Pod") => &POD_KIND,
        ("" | "core", "PodTemplate") => &POD_TEMPLATE,
        ("" | "core", "ReplicationController") => &WORKLOAD,
        ("" | "core", "Service") => &SERVICE,
        ("" | "core", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("" | "core", "Namespace") => &NAMESPACE,
        ("" | "core", "PersistentVolumeClaim") => &WITH_CONDITIONS,
        ("" | "core", "ConfigMap" | "Secret" | "Endpoints" | "Event")
        | ("events.k8s.io", "Event")
        | ("coordination.k8s.io", "Lease")
        | ("networking.k8s.io", "NetworkPolicy")
        | (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => &METADATA_ONLY,
        ("apps", "StatefulSet" | "Deployment" | "ReplicaSet" | "DaemonSet") | ("batch", "Job") => {
            &WORKLOAD
        }
        ("batch", "CronJob") => &CRON_JOB,
        ("policy", "PodDisruptionBudget") => &WITH_CONDITIONS,
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => &WEBHOOK_CONFIGURATION,
        _ => return None,
    };
    Some(table)
}
