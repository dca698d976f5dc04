//! The field tables of the kinds kubectl sends as protobuf: (field number,
//! JSON name, type), from the `generated.proto` of k8s.io/api and
//! apimachinery, checked against the bytes kubectl v1.35 sends. Fields a
//! server sets itself (status, managed fields) are skipped.

/// How one field is decoded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field {
    /// Ignored.
    Skip,
    /// A string (omitted when empty).
    Str,
    /// An int64 / int32.
    Int,
    /// A bool.
    Bool,
    /// A nested message (omitted when empty).
    Msg(&'static Message),
    /// A `metav1.Time`.
    Time,
    /// A repeated string.
    Strs,
    /// A repeated message.
    Msgs(&'static Message),
    /// A `map<string, string>`.
    MapStr,
    /// A `map<string, bytes>`, values as base64.
    MapBytes,
}

/// A message's fields.
pub(super) type Message = [(u64, &'static str, Field)];

use Field::{Bool, Int, MapBytes, MapStr, Msg, Msgs, Skip, Str, Strs, Time};

static OWNER_REFERENCE: &Message = &[
    (1, "kind", Str),
    (3, "name", Str),
    (4, "uid", Str),
    (5, "apiVersion", Str),
    (6, "controller", Bool),
    (7, "blockOwnerDeletion", Bool),
];

static OBJECT_META: &Message = &[
    (1, "name", Str),
    (2, "generateName", Str),
    (3, "namespace", Str),
    (5, "uid", Str),
    (6, "resourceVersion", Str),
    // Always encoded (0 on create); the server owns it.
    (7, "generation", Skip),
    (8, "creationTimestamp", Time),
    (9, "deletionTimestamp", Time),
    (10, "deletionGracePeriodSeconds", Int),
    (11, "labels", MapStr),
    (12, "annotations", MapStr),
    (13, "ownerReferences", Msgs(OWNER_REFERENCE)),
    (14, "finalizers", Strs),
    (17, "managedFields", Skip),
];

static OBJECT_REFERENCE: &Message = &[
    (1, "kind", Str),
    (2, "namespace", Str),
    (3, "name", Str),
    (4, "uid", Str),
    (5, "apiVersion", Str),
    (6, "resourceVersion", Str),
    (7, "fieldPath", Str),
];

static LOCAL_OBJECT_REFERENCE: &Message = &[(1, "name", Str)];

static SERVICE_ACCOUNT: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "secrets", Msgs(OBJECT_REFERENCE)),
    (3, "imagePullSecrets", Msgs(LOCAL_OBJECT_REFERENCE)),
    (4, "automountServiceAccountToken", Bool),
];

static CONFIG_MAP: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "data", MapStr),
    (3, "binaryData", MapBytes),
    (4, "immutable", Bool),
];

static SECRET: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "data", MapBytes),
    (3, "type", Str),
    (4, "stringData", MapStr),
    (5, "immutable", Bool),
];

static NAMESPACE_SPEC: &Message = &[(1, "finalizers", Strs)];

static NAMESPACE: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(NAMESPACE_SPEC)),
    (3, "status", Skip),
];

static BOUND_OBJECT_REFERENCE: &Message = &[
    (1, "kind", Str),
    (2, "apiVersion", Str),
    (3, "name", Str),
    (4, "uid", Str),
];

static TOKEN_REQUEST_SPEC: &Message = &[
    (1, "audiences", Strs),
    (3, "boundObjectRef", Msg(BOUND_OBJECT_REFERENCE)),
    (4, "expirationSeconds", Int),
];

static TOKEN_REQUEST: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(TOKEN_REQUEST_SPEC)),
    (3, "status", Skip),
];

static RESOURCE_ATTRIBUTES: &Message = &[
    (1, "namespace", Str),
    (2, "verb", Str),
    (3, "group", Str),
    (4, "version", Str),
    (5, "resource", Str),
    (6, "subresource", Str),
    (7, "name", Str),
];

static NON_RESOURCE_ATTRIBUTES: &Message = &[(1, "path", Str), (2, "verb", Str)];

static ACCESS_REVIEW_SPEC: &Message = &[
    (1, "resourceAttributes", Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", Msg(NON_RESOURCE_ATTRIBUTES)),
];

static SELF_SUBJECT_ACCESS_REVIEW: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(ACCESS_REVIEW_SPEC)),
    (3, "status", Skip),
];

static RULES_REVIEW_SPEC: &Message = &[(1, "namespace", Str)];

static SELF_SUBJECT_RULES_REVIEW: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(RULES_REVIEW_SPEC)),
    (3, "status", Skip),
];

static POLICY_RULE: &Message = &[
    (1, "verbs", Strs),
    (2, "apiGroups", Strs),
    (3, "resources", Strs),
    (4, "resourceNames", Strs),
    (5, "nonResourceURLs", Strs),
];

static ROLE: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "rules", Msgs(POLICY_RULE)),
];

static REQUIREMENT: &Message = &[(1, "key", Str), (2, "operator", Str), (3, "values", Strs)];

static LABEL_SELECTOR: &Message = &[
    (1, "matchLabels", MapStr),
    (2, "matchExpressions", Msgs(REQUIREMENT)),
];

static AGGREGATION_RULE: &Message = &[(1, "clusterRoleSelectors", Msgs(LABEL_SELECTOR))];

static CLUSTER_ROLE: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "rules", Msgs(POLICY_RULE)),
    (3, "aggregationRule", Msg(AGGREGATION_RULE)),
];

static SUBJECT: &Message = &[
    (1, "kind", Str),
    (2, "apiGroup", Str),
    (3, "name", Str),
    (4, "namespace", Str),
];

static ROLE_REF: &Message = &[(1, "apiGroup", Str), (2, "kind", Str), (3, "name", Str)];

static ROLE_BINDING: &Message = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "subjects", Msgs(SUBJECT)),
    (3, "roleRef", Msg(ROLE_REF)),
];

const RBAC: &str = "rbac.authorization.k8s.io/v1";

static PRECONDITIONS: &Message = &[(1, "uid", Str), (2, "resourceVersion", Str)];

/// The body of a DELETE from a typed client (helm's release storage).
static DELETE_OPTIONS: &Message = &[
    (1, "gracePeriodSeconds", Int),
    (2, "preconditions", Msg(PRECONDITIONS)),
    (3, "orphanDependents", Bool),
    (4, "propagationPolicy", Str),
    (5, "dryRun", Strs),
    (6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
];

/// (apiVersion, kind, table) of every decodable kind.
static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "ServiceAccount", SERVICE_ACCOUNT),
    ("v1", "ConfigMap", CONFIG_MAP),
    ("v1", "Secret", SECRET),
    ("v1", "Namespace", NAMESPACE),
    ("authentication.k8s.io/v1", "TokenRequest", TOKEN_REQUEST),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        SELF_SUBJECT_RULES_REVIEW,
    ),
    (RBAC, "Role", ROLE),
    (RBAC, "ClusterRole", CLUSTER_ROLE),
    (RBAC, "RoleBinding", ROLE_BINDING),
    (RBAC, "ClusterRoleBinding", ROLE_BINDING),
    ("v1", "DeleteOptions", DELETE_OPTIONS),
    ("meta.k8s.io/v1", "DeleteOptions", DELETE_OPTIONS),
];

/// The table of `kind` in `api_version`.
pub(super) fn lookup(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(av, k, _)| *av == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}

/// `ConfigMap, Namespace, ...` for the 415's message.
pub(super) fn supported() -> String {
    let mut kinds: Vec<&str> = KINDS.iter().map(|(_, k, _)| *k).collect();
    kinds.dedup();
    kinds.join(", ")
}
