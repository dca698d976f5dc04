//! Impersonation (`Impersonate-User`, `Impersonate-Group` headers; what
//! `kubectl --as` / `--as-group` send), as the apiserver's impersonation
//! filter does it: the requester must be allowed `impersonate` on each
//! identity taken (`users`, or the ServiceAccount itself under
//! `serviceaccounts`, and `groups`), and the request then runs as the
//! impersonated user, a ServiceAccount getting its groups.
//!
//! kubectl sends no credentials over plain HTTP (client-go reads a
//! kubeconfig's user only for TLS servers) but does send these headers,
//! so `kubectl --as=system:serviceaccount:NS:NAME` is how kubectl acts as
//! a ServiceAccount against a localkube.

use super::attributes::{Attributes, ResourceAttributes};
use super::{AUTHENTICATED, SERVICE_ACCOUNTS, UserInfo};

/// What a request asks to impersonate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: Option<String>,
    /// `Impersonate-Group` (each header).
    pub groups: Vec<String>,
}

impl Impersonation {
    /// Whether anything is asked.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.groups.is_empty()
    }
}

/// The (namespace, name) of a ServiceAccount username.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// The checks the requester must pass, in the filter's order, and the user
/// the request runs as; None when groups are asked without a user (a 400
/// on a real server).
pub fn plan(requester: &UserInfo, asked: &Impersonation) -> Option<(Vec<Attributes>, UserInfo)> {
    let user = asked.user.as_deref()?;
    let check = |resource: &str, namespace: &str, name: &str| {
        Attributes::resource(
            requester.clone(),
            "impersonate",
            ResourceAttributes {
                group: String::new(),
                resource: resource.to_owned(),
                subresource: String::new(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
        )
    };
    let mut checks = Vec::new();
    let mut groups = asked.groups.clone();
    match service_account(user) {
        Some((ns, name)) => {
            checks.push(check("serviceaccounts", ns, name));
            if asked.groups.is_empty() {
                groups = vec![
                    SERVICE_ACCOUNTS.to_owned(),
                    format!("{SERVICE_ACCOUNTS}:{ns}"),
                ];
            }
        }
        None => checks.push(check("users", "", user)),
    }
    checks.extend(asked.groups.iter().map(|g| check("groups", "", g)));
    if user != "system:anonymous" && !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.to_owned());
    }
    Some((
        checks,
        UserInfo {
            name: user.to_owned(),
            groups,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::attributes::Request;

    #[test]
    fn a_service_account_gets_its_groups_and_is_checked_as_one() {
        let asked = Impersonation {
            user: Some("system:serviceaccount:app:op".into()),
            groups: Vec::new(),
        };
        let (checks, user) = plan(&UserInfo::admin(), &asked).unwrap();
        assert_eq!(user, UserInfo::service_account("app", "op"));
        let [only] = checks.as_slice() else {
            unreachable!("one check: {checks:?}")
        };
        let Request::Resource(r) = &only.target else {
            unreachable!()
        };
        assert_eq!(
            (r.resource.as_str(), r.namespace.as_str(), r.name.as_str()),
            ("serviceaccounts", "app", "op")
        );
    }

    #[test]
    fn users_and_groups_are_each_checked() {
        let asked = Impersonation {
            user: Some("jane".into()),
            groups: vec!["devs".into()],
        };
        let (checks, user) = plan(&UserInfo::admin(), &asked).unwrap();
        assert_eq!(
            user.groups,
            vec!["devs".to_owned(), AUTHENTICATED.to_owned()]
        );
        assert_eq!(checks.len(), 2);
        let groups_only = Impersonation {
            user: None,
            groups: vec!["g".into()],
        };
        assert!(plan(&UserInfo::admin(), &groups_only).is_none());
    }
}
