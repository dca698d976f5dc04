//! Who a request is and what it may do, as a real kube-apiserver decides
//! both: the admin token (or no token, when the server has none) is the
//! cluster admin; ServiceAccount tokens issued by the TokenRequest API
//! ([`tokens`]) are their ServiceAccounts; with [`crate::Config::rbac`]
//! every ServiceAccount request is authorized against the stored RBAC
//! objects ([`rbac`]) plus the default bindings every cluster has
//! ([`defaults`]), and the outcome is logged ([`log`]) so a test can list
//! the permissions a client really used.
//!
//! This module decides; it does not answer HTTP (the `http` module does).

pub mod attributes;
mod cache;
pub mod defaults;
mod forbidden;
pub mod impersonation;
pub mod log;
pub mod rbac;
pub mod tokens;

pub use attributes::Attributes;
pub(crate) use cache::PolicyCache;
pub use forbidden::{forbidden, forbidden_create_on_write, forbidden_message};
pub use log::{Access, AuthzLog, Denial};
pub use rbac::{Decision, Policy};
pub use tokens::{IssuedToken, TokenStore};

/// The group whose members every authorizer allows everything.
pub const MASTERS: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of every ServiceAccount.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// An authenticated user: its name and groups, as RBAC subjects match them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// e.g. `system:admin`, `system:serviceaccount:default:logbook`.
    pub name: String,
    /// e.g. `system:serviceaccounts`, `system:authenticated`.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The cluster admin (`system:admin` in `system:masters`).
    pub fn admin() -> Self {
        Self {
            name: "system:admin".to_owned(),
            groups: vec![MASTERS.to_owned(), AUTHENTICATED.to_owned()],
        }
    }

    /// The ServiceAccount `name` of `namespace`, with the groups a real
    /// server gives it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: service_account_user(namespace, name),
            groups: vec![
                SERVICE_ACCOUNTS.to_owned(),
                format!("{SERVICE_ACCOUNTS}:{namespace}"),
                AUTHENTICATED.to_owned(),
            ],
        }
    }

    /// A request without credentials to a path open to everyone.
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
        }
    }

    /// Whether authorization is bypassed (a member of `system:masters`).
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }
}

/// `system:serviceaccount:{namespace}:{name}`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}
