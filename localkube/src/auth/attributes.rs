//! What a request asks to do, in the terms authorizers decide on (the
//! apiserver's `RequestInfo` / `authorizer.Attributes`): a verb on a
//! resource (group, resource, subresource, namespace, name), or a verb on
//! a non-resource path. Derived from the parsed route, the method and the
//! query exactly as the real server derives them, since RBAC rules are
//! written against those derivations (`watch` vs `list`, `deletecollection`,
//! the name a `metadata.name` field selector implies).

use crate::http::path::{Route, Target};
use crate::http::request::Query;

use super::UserInfo;

/// One request as an authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`; for non-resource paths the lowercased method.
    pub verb: String,
    /// What is addressed.
    pub target: Request,
}

/// A resource request or a non-resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `/api/v1/...` or `/apis/{group}/{version}/...` naming a resource.
    Resource(ResourceAttributes),
    /// Anything else (`/api`, `/apis/apps`, `/version`, `/openapi/v3`, ...).
    NonResource {
        /// The URL path.
        path: String,
    },
}

/// The resource part of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// API group ("" for core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource ("" for none).
    pub subresource: String,
    /// Namespace ("" at the cluster scope).
    pub namespace: String,
    /// Object name ("" for collections).
    pub name: String,
}

impl ResourceAttributes {
    /// `pods` or `pods/log`, as rules and messages write it.
    pub fn combined(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

impl Attributes {
    /// A resource request.
    pub fn resource(user: UserInfo, verb: &str, r: ResourceAttributes) -> Self {
        Self {
            user,
            verb: verb.to_owned(),
            target: Request::Resource(r),
        }
    }

    /// A non-resource request.
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self {
            user,
            verb: verb.to_owned(),
            target: Request::NonResource {
                path: path.to_owned(),
            },
        }
    }

    /// The attributes of an HTTP request.
    pub fn of_request(
        user: UserInfo,
        method: &str,
        path: &str,
        route: &Route,
        query: &Query,
    ) -> Self {
        match route {
            Route::Resource(t) => {
                Self::resource(user, &resource_verb(method, t, query), of_target(t, query))
            }
            _ => Self::non_resource(user, &method.to_ascii_lowercase(), path),
        }
    }
}

/// The verb of a resource request: the method's, with a nameless GET a
/// `list` or `watch` and a nameless DELETE a `deletecollection`.
fn resource_verb(method: &str, t: &Target, q: &Query) -> String {
    let watching = t.watch_prefix || q.flag("watch");
    // A list or watch narrowed to one name by a field selector stays a
    // list or watch: the name only lets `resourceNames` rules match it.
    let verb = match method {
        "GET" | "HEAD" if watching => "watch",
        "GET" | "HEAD" if t.name.is_none() => "list",
        "GET" | "HEAD" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if t.name.is_none() => "deletecollection",
        "DELETE" => "delete",
        _ => "",
    };
    verb.to_owned()
}

/// The name a `metadata.name=...` field selector pins a list or watch to.
fn field_selector_name(q: &Query) -> Option<String> {
    let sel = q.get("fieldSelector")?;
    sel.split(',').find_map(|term| {
        let term = term.trim();
        let value = term
            .strip_prefix("metadata.name==")
            .or_else(|| term.strip_prefix("metadata.name="))?;
        (!value.is_empty() && !value.contains('/')).then(|| value.to_owned())
    })
}

fn of_target(t: &Target, q: &Query) -> ResourceAttributes {
    let mut name = t.name.clone().unwrap_or_default();
    if name.is_empty() {
        name = field_selector_name(q).unwrap_or_default();
    }
    let mut namespace = t.namespace.clone().unwrap_or_default();
    // A Namespace is addressed inside itself: RoleBindings in namespace
    // `x` can grant `get` on namespace `x` (the apiserver's RequestInfo).
    if t.group.is_empty()
        && t.resource == "namespaces"
        && t.namespace.is_none()
        && let Some(n) = &t.name
    {
        namespace = n.clone();
    }
    ResourceAttributes {
        group: t.group.clone(),
        resource: t.resource.clone(),
        subresource: t.sub.clone().unwrap_or_default(),
        namespace,
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::path::parse;

    fn attrs(method: &str, path_and_query: &str) -> Attributes {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Attributes::of_request(
            UserInfo::service_account("d", "sa"),
            method,
            path,
            &parse(path),
            &Query::parse(Some(query)),
        )
    }

    fn res(a: &Attributes) -> (String, ResourceAttributes) {
        match &a.target {
            Request::Resource(r) => (a.verb.clone(), r.clone()),
            Request::NonResource { path } => (
                a.verb.clone(),
                ResourceAttributes {
                    resource: format!("<path {path}>"),
                    ..ResourceAttributes::default()
                },
            ),
        }
    }

    #[test]
    fn verbs_follow_request_info() {
        assert_eq!(res(&attrs("GET", "/api/v1/namespaces/d/pods")).0, "list");
        assert_eq!(
            res(&attrs("GET", "/api/v1/namespaces/d/pods?watch=true")).0,
            "watch"
        );
        assert_eq!(
            res(&attrs("GET", "/api/v1/watch/namespaces/d/pods")).0,
            "watch"
        );
        assert_eq!(res(&attrs("GET", "/api/v1/namespaces/d/pods/x")).0, "get");
        assert_eq!(res(&attrs("POST", "/api/v1/namespaces/d/pods")).0, "create");
        assert_eq!(
            res(&attrs("PUT", "/api/v1/namespaces/d/pods/x")).0,
            "update"
        );
        assert_eq!(
            res(&attrs("PATCH", "/api/v1/namespaces/d/pods/x")).0,
            "patch"
        );
        assert_eq!(
            res(&attrs("DELETE", "/api/v1/namespaces/d/pods/x")).0,
            "delete"
        );
        assert_eq!(
            res(&attrs("DELETE", "/api/v1/namespaces/d/pods")).0,
            "deletecollection"
        );
        let a = attrs("GET", "/api");
        assert_eq!(a.verb, "get");
        assert_eq!(
            a.target,
            Request::NonResource {
                path: "/api".into()
            }
        );
        assert!(matches!(
            attrs("GET", "/apis/apps/v1").target,
            Request::NonResource { .. }
        ));
    }

    #[test]
    fn names_namespaces_and_subresources() {
        let (_, r) = res(&attrs("POST", "/api/v1/namespaces/d/pods/x/eviction"));
        assert_eq!(
            (r.combined().as_str(), r.name.as_str()),
            ("pods/eviction", "x")
        );
        let (v, r) = res(&attrs(
            "GET",
            "/api/v1/namespaces/d/pods?fieldSelector=metadata.name%3Dx",
        ));
        assert_eq!((v.as_str(), r.name.as_str()), ("list", "x"));
        let (_, r) = res(&attrs("GET", "/api/v1/namespaces/other"));
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("other", "other"));
        let (_, r) = res(&attrs("GET", "/api/v1/namespaces"));
        assert_eq!(r.namespace, "");
        let (_, r) = res(&attrs("GET", "/apis/apps/v1/statefulsets"));
        assert_eq!((r.group.as_str(), r.namespace.as_str()), ("apps", ""));
    }
}
