//! RBAC as the apiserver's authorizer evaluates it, over a compiled
//! [`Policy`]: ClusterRoleBindings first, then the RoleBindings of the
//! request's namespace; a binding applies when one of its subjects is the
//! user (User), one of its groups (Group) or its ServiceAccount; the first
//! rule of the bound Role or ClusterRole that allows the request decides.
//! Rules match as `rbac/v1` evaluation helpers do: `*` in verbs, API groups,
//! resources and non-resource URLs; `pods/log` and `*/scale` for
//! subresources; `resourceNames` only for requests naming an object; a
//! trailing `*` as a prefix in non-resource URLs.
//!
//! Bindings to missing roles are errors collected into the deny reason
//! (`RBAC: role.rbac.authorization.k8s.io "x" not found`), as the real
//! server reports them. Aggregated ClusterRoles are NOT aggregated: no
//! controller fills their rules from `aggregationRule`, so only the rules
//! written into a ClusterRole count. Pure: no store, no I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

use super::attributes::{Attributes, Request, ResourceAttributes};
use super::{UserInfo, defaults, service_account_user};
use crate::obj;

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    /// `verbs`.
    pub verbs: Vec<String>,
    /// `apiGroups`.
    pub api_groups: Vec<String>,
    /// `resources` (`pods`, `pods/log`, `*`, `*/scale`).
    pub resources: Vec<String>,
    /// `resourceNames` (empty: every name).
    pub resource_names: Vec<String>,
    /// `nonResourceURLs`.
    pub non_resource_urls: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

impl PolicyRule {
    /// A rule as stored (`rules[i]` of a Role).
    pub fn from_json(v: &Value) -> Self {
        Self {
            verbs: strings(v.get("verbs")),
            api_groups: strings(v.get("apiGroups")),
            resources: strings(v.get("resources")),
            resource_names: strings(v.get("resourceNames")),
            non_resource_urls: strings(v.get("nonResourceURLs")),
        }
    }

    /// Whether this rule allows `a` (RBAC's `RuleAllows`).
    pub fn allows(&self, verb: &str, req: &Request) -> bool {
        if !has(&self.verbs, verb) {
            return false;
        }
        match req {
            Request::Resource(r) => {
                has(&self.api_groups, &r.group)
                    && self.resource_matches(r)
                    && (self.resource_names.is_empty() || self.resource_names.contains(&r.name))
            }
            Request::NonResource { path } => self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == path
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            }),
        }
    }

    fn resource_matches(&self, r: &ResourceAttributes) -> bool {
        let combined = r.combined();
        self.resources.iter().any(|x| {
            x == "*"
                || *x == combined
                || (!r.subresource.is_empty()
                    && x.strip_prefix("*/") == Some(r.subresource.as_str()))
        })
    }
}

/// One subject of a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    /// RBAC's `appliesToUser`; `binding_ns` is "" for ClusterRoleBindings.
    fn applies_to(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                !ns.is_empty() && service_account_user(ns, &self.name) == user.name
            }
            _ => false,
        }
    }

    /// `ServiceAccount "name/ns"`, `User "name"`, as reasons word it.
    fn describe(&self, binding_ns: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                format!("{} {:?}", self.kind, format!("{}/{ns}", self.name))
            }
            _ => format!("{} {:?}", self.kind, self.name),
        }
    }
}

/// A RoleBinding (with its namespace) or a ClusterRoleBinding.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    /// "" for a ClusterRoleBinding.
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(o: &Value) -> Self {
        let role = o.get("roleRef");
        let s = |v: Option<&Value>, k: &str| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let subjects = o
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| Subject {
                        kind: s(Some(x), "kind"),
                        name: s(Some(x), "name"),
                        namespace: s(Some(x), "namespace"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            name: obj::name(o).to_owned(),
            namespace: obj::namespace(o).to_owned(),
            role_kind: s(role, "kind"),
            role_name: s(role, "name"),
            subjects,
        }
    }

    /// The reason source: `ClusterRoleBinding "b" of ClusterRole "r" to
    /// Group "g"` or `RoleBinding "b/ns" of Role "r" to ServiceAccount "sa/ns"`.
    fn describe(&self, subject: &Subject) -> String {
        let who = subject.describe(&self.namespace);
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {who}",
                self.name, self.role_kind, self.role_name
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {who}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind,
                self.role_name
            )
        }
    }
}

/// One step of [`Policy::visit`]: an applying binding, the subject that
/// made it apply and its role's rules, or the error of its missing role.
type Step<'a> = Result<(&'a Binding, &'a Subject, &'a [PolicyRule]), String>;

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the reason names the binding (`RBAC: allowed by ...`).
    Allow {
        /// The reason.
        reason: String,
    },
    /// No rule allows it; the reason holds evaluation errors, if any
    /// (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`).
    Deny {
        /// The reason ("" when nothing went wrong).
        reason: String,
    },
}

impl Decision {
    /// Whether allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Allow { reason } | Self::Deny { reason } => reason,
        }
    }
}

/// The stored (and default) RBAC objects, indexed for evaluation.
#[derive(Debug, Default)]
pub struct Policy {
    cluster_roles: HashMap<String, Arc<[PolicyRule]>>,
    roles: HashMap<(String, String), Arc<[PolicyRule]>>,
    /// By name, as evaluation visits them.
    cluster_bindings: Vec<Binding>,
    /// Namespace → its RoleBindings by name.
    bindings: HashMap<String, Vec<Binding>>,
}

fn rules_of(o: &Value) -> Arc<[PolicyRule]> {
    o.get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(PolicyRule::from_json).collect::<Vec<_>>())
        .unwrap_or_default()
        .into()
}

impl Policy {
    /// Compiles the stored RBAC objects (resource plural, object), plus the
    /// default ClusterRoles and ClusterRoleBindings of [`defaults`] that no
    /// stored object of the same name replaces.
    pub fn compile(objects: &[(String, Arc<Value>)]) -> Self {
        let mut p = Self::default();
        let mut cluster_bindings: BTreeMap<String, Binding> = BTreeMap::new();
        let mut bindings: BTreeMap<(String, String), Binding> = BTreeMap::new();
        let defaults = defaults::objects();
        let all = defaults.iter().map(|(plural, o)| (*plural, o)).chain(
            objects
                .iter()
                .map(|(plural, o)| (plural.as_str(), o.as_ref())),
        );
        // Stored objects come after the defaults, so a stored one of the
        // same name replaces the default, as on a real cluster.
        for (plural, o) in all {
            let name = obj::name(o).to_owned();
            let ns = obj::namespace(o).to_owned();
            match plural {
                "clusterroles" => {
                    p.cluster_roles.insert(name, rules_of(o));
                }
                "roles" => {
                    p.roles.insert((ns, name), rules_of(o));
                }
                "clusterrolebindings" => {
                    cluster_bindings.insert(name, Binding::from_json(o));
                }
                "rolebindings" => {
                    bindings.insert((ns, name), Binding::from_json(o));
                }
                _ => {}
            }
        }
        p.cluster_bindings = cluster_bindings.into_values().collect();
        for ((ns, _), b) in bindings {
            p.bindings.entry(ns).or_default().push(b);
        }
        p
    }

    /// The rules `binding` grants, or the error of a missing role.
    fn role_rules(&self, binding: &Binding) -> Result<Arc<[PolicyRule]>, String> {
        match binding.role_kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&binding.role_name)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        binding.role_name
                    )
                }),
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), binding.role_name.clone()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "role.rbac.authorization.k8s.io {:?} not found",
                        binding.role_name
                    )
                }),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Visits the bindings that apply to `user` in `namespace` ("": the
    /// ClusterRoleBindings only), in evaluation order: each applying
    /// binding's rules (with the binding's description) or the error of its
    /// missing role. The visitor returns false to stop.
    fn visit(&self, user: &UserInfo, namespace: &str, visitor: &mut dyn FnMut(Step<'_>) -> bool) {
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.bindings.get(namespace)
        };
        let all = self
            .cluster_bindings
            .iter()
            .chain(namespaced.into_iter().flatten());
        for b in all {
            let Some(subject) = b.subjects.iter().find(|s| s.applies_to(user, &b.namespace)) else {
                continue;
            };
            let go_on = match self.role_rules(b) {
                Ok(rules) => visitor(Ok((b, subject, &rules))),
                Err(e) => visitor(Err(e)),
            };
            if !go_on {
                return;
            }
        }
    }

    /// Authorizes `a` (RBAC's `Authorize`): allowed by the first rule that
    /// allows it, else denied with the evaluation errors met on the way.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        let namespace = match &a.target {
            Request::Resource(r) => r.namespace.as_str(),
            Request::NonResource { .. } => "",
        };
        let mut allowed: Option<String> = None;
        let mut errors: Vec<String> = Vec::new();
        self.visit(&a.user, namespace, &mut |step| match step {
            Ok((binding, subject, rules)) => {
                if rules.iter().any(|r| r.allows(&a.verb, &a.target)) {
                    allowed = Some(format!("RBAC: allowed by {}", binding.describe(subject)));
                    return false;
                }
                true
            }
            Err(e) => {
                errors.push(e);
                true
            }
        });
        match allowed {
            Some(reason) => Decision::Allow { reason },
            None => Decision::Deny {
                reason: errors_reason(&errors),
            },
        }
    }

    /// Every rule granted to `user` in `namespace`, and the evaluation
    /// errors met (a SelfSubjectRulesReview).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, &mut |step| {
            match step {
                Ok((_, _, rs)) => rules.extend(rs.iter().cloned()),
                Err(e) => errors.push(e),
            }
            true
        });
        (rules, errors)
    }
}

/// `RBAC: <error>` or `RBAC: [<e1>, <e2>]` (an aggregate's wording, with
/// duplicates dropped); "" without errors.
pub fn errors_reason(errors: &[String]) -> String {
    let mut unique: Vec<&String> = Vec::new();
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => {
            let mut s = String::from("RBAC: [");
            for (i, e) in many.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "{e}");
            }
            s.push(']');
            s
        }
    }
}

/// A rule as a SelfSubjectRulesReview lists it: a resource rule, a
/// non-resource rule, or both when the rule has both.
pub fn review_rules(rules: &[PolicyRule]) -> (Vec<Value>, Vec<Value>) {
    let mut resource = Vec::new();
    let mut non_resource = Vec::new();
    for r in rules {
        if !r.resources.is_empty() {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty()
                && let Some(m) = v.as_object_mut()
            {
                m.insert("resourceNames".into(), json!(r.resource_names));
            }
            resource.push(v);
        }
        if !r.non_resource_urls.is_empty() {
            non_resource.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    (resource, non_resource)
}

#[cfg(test)]
mod tests;
