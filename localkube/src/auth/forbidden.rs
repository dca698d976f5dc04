//! The 403 of a denied request, worded exactly as the apiserver's
//! `responsewriters.Forbidden` words it (`pods "x" is forbidden: User "u"
//! cannot get resource "pods" in API group "" in the namespace "d"`), since
//! people and tools read the missing permission out of it.

use super::attributes::{Attributes, Request};
use crate::error::{ApiError, Subject};

/// `User "u" cannot <verb> resource "<res>[/<sub>]" in API group "<g>"
/// in the namespace "<ns>"` (or `at the cluster scope`), or `User "u"
/// cannot <verb> path "<path>"`.
pub fn forbidden_message(a: &Attributes) -> String {
    let user = &a.user.name;
    match &a.target {
        Request::NonResource { path } => {
            format!("User {user:?} cannot {} path {path:?}", a.verb)
        }
        Request::Resource(r) => {
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {:?}", r.namespace)
            };
            format!(
                "User {user:?} cannot {} resource {:?} in API group {:?} {scope}",
                a.verb,
                r.combined(),
                r.group
            )
        }
    }
}

/// The 403 refusing `a`; `reason` is the authorizer's (appended after a
/// colon when not empty).
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let mut detail = forbidden_message(a);
    if !reason.is_empty() {
        detail = format!("{detail}: {reason}");
    }
    refusal(a, &detail)
}

/// The 403 of a create-on-write refused by the check inside the handler:
/// the apiserver words it with the authorizer's reason only (usually "").
pub fn forbidden_create_on_write(a: &Attributes, reason: &str) -> ApiError {
    refusal(a, reason)
}

fn refusal(a: &Attributes, detail: &str) -> ApiError {
    match &a.target {
        Request::NonResource { .. } => ApiError::Forbidden {
            message: format!("forbidden: {detail}"),
            subject: Subject::new("", "", ""),
        },
        Request::Resource(r) => {
            let subject = Subject::new(&r.group, &r.resource, &r.name);
            let message = if r.name.is_empty() {
                format!("{} is forbidden: {detail}", subject.qualified())
            } else {
                format!(
                    "{} {:?} is forbidden: {detail}",
                    subject.qualified(),
                    r.name
                )
            };
            ApiError::Forbidden { message, subject }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use serde_json::json;

    use super::*;
    use crate::auth::UserInfo;
    use crate::auth::attributes::ResourceAttributes;

    fn sa() -> UserInfo {
        UserInfo::service_account("default", "logbook")
    }

    fn r(group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> ResourceAttributes {
        ResourceAttributes {
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn named_namespaced() {
        let a = Attributes::resource(sa(), "get", r("", "pods", "", "default", "foo"));
        let s = forbidden(&a, "").status();
        assert_eq!(
            s["message"],
            r#"pods "foo" is forbidden: User "system:serviceaccount:default:logbook" cannot get resource "pods" in API group "" in the namespace "default""#
        );
        assert_eq!(s["reason"], "Forbidden");
        assert_eq!(s["code"], 403);
        assert_eq!(s["details"], json!({"name": "foo", "kind": "pods"}));
    }

    #[test]
    fn collection_at_cluster_scope_with_group() {
        let a = Attributes::resource(sa(), "list", r("apps", "statefulsets", "", "", ""));
        let s = forbidden(&a, "").status();
        assert_eq!(
            s["message"],
            r#"statefulsets.apps is forbidden: User "system:serviceaccount:default:logbook" cannot list resource "statefulsets" in API group "apps" at the cluster scope"#
        );
        assert_eq!(
            s["details"],
            json!({"group": "apps", "kind": "statefulsets"})
        );
    }

    #[test]
    fn subresource_and_reason() {
        let a = Attributes::resource(sa(), "create", r("", "pods", "eviction", "d", "p"));
        let s = forbidden(&a, "RBAC: role.rbac.authorization.k8s.io \"x\" not found").status();
        assert_eq!(
            s["message"],
            r#"pods "p" is forbidden: User "system:serviceaccount:default:logbook" cannot create resource "pods/eviction" in API group "" in the namespace "d": RBAC: role.rbac.authorization.k8s.io "x" not found"#
        );
    }

    #[test]
    fn non_resource_path() {
        let a = Attributes::non_resource(sa(), "post", "/localkube/v1/faults/kill");
        let s = forbidden(&a, "").status();
        assert_eq!(
            s["message"],
            r#"forbidden: User "system:serviceaccount:default:logbook" cannot post path "/localkube/v1/faults/kill""#
        );
        assert_eq!(s["details"], json!({}));
    }
}
