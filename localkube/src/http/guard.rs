//! The authentication and authorization every request passes before its
//! handler, as the apiserver's filter chain runs them: the bearer token
//! names the user (401 when it names none), then — for ServiceAccounts,
//! with RBAC on — the policy decides (403 before any body is read or any
//! watch starts), and the outcome is logged for tests.

use axum::http::{HeaderMap, header};

use super::App;
use crate::auth::impersonation::{self, Impersonation};
use crate::auth::{self, Attributes, Decision, UserInfo};
use crate::error::ApiError;

/// The user a request's credentials name.
///
/// # Errors
/// 401 for a bearer token that is neither the admin's nor a live
/// ServiceAccount token, or for no credentials when the server has an
/// admin token.
pub(crate) fn authenticate(app: &App, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (bearer, &app.token) {
        (Some(t), _) => user_of_token(app, t).ok_or(ApiError::Unauthorized),
        (None, None) => Ok(UserInfo::admin()),
        (None, Some(_)) => Err(ApiError::Unauthorized),
    }
}

/// Who the bearer token `token` belongs to: the admin's, or a live
/// ServiceAccount token the TokenRequest API issued.
pub(crate) fn user_of_token(app: &App, token: &str) -> Option<UserInfo> {
    if app.token.as_deref().is_some_and(|admin| admin == token) {
        return Some(UserInfo::admin());
    }
    app.tokens.resolve(&app.store, token, chrono::Utc::now())
}

/// The user a request runs as: `requester`, or whom its `Impersonate-*`
/// headers name once `requester` is allowed to impersonate them.
///
/// # Errors
/// 403 when `requester` may not impersonate them; 400 for groups without
/// a user.
pub(crate) fn impersonate(
    app: &App,
    requester: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    };
    let asked = Impersonation {
        user: values("impersonate-user").into_iter().next(),
        groups: values("impersonate-group"),
    };
    if asked.is_empty() {
        return Ok(requester);
    }
    let Some((checks, user)) = impersonation::plan(&requester, &asked) else {
        return Err(ApiError::BadRequest(
            "impersonating groups requires impersonating a user (Impersonate-User)".into(),
        ));
    };
    for check in &checks {
        authorize(app, check)?;
    }
    Ok(user)
}

/// What the authorizer says about `a`, without logging: the admin and,
/// with RBAC off, everyone may do everything.
pub(crate) fn decide(app: &App, a: &Attributes) -> Decision {
    if a.user.is_admin() || !app.rbac {
        return Decision::Allow {
            reason: String::new(),
        };
    }
    app.policy.current(&app.store).authorize(a)
}

/// Authorizes `a`, logging a ServiceAccount's outcome.
///
/// # Errors
/// The real server's 403 when RBAC allows no rule for it.
pub(crate) fn authorize(app: &App, a: &Attributes) -> Result<(), ApiError> {
    if a.user.is_admin() || !app.rbac {
        return Ok(());
    }
    match decide(app, a) {
        Decision::Allow { .. } => {
            app.authz_log.allowed(a);
            Ok(())
        }
        Decision::Deny { reason } => {
            let e = auth::forbidden(a, &reason);
            app.authz_log.denied(a, &e.to_string());
            Err(e)
        }
    }
}

/// The check a write that creates runs inside its handler (server-side
/// apply of a missing object): `create` on top of the `patch` already
/// authorized.
///
/// # Errors
/// 403 worded as the apiserver's create-on-update refusal.
pub(crate) fn authorize_create_on_write(app: &App, a: &Attributes) -> Result<(), ApiError> {
    if a.user.is_admin() || !app.rbac {
        return Ok(());
    }
    match decide(app, a) {
        Decision::Allow { .. } => {
            app.authz_log.allowed(a);
            Ok(())
        }
        Decision::Deny { reason } => {
            let e = auth::forbidden_create_on_write(a, &reason);
            // The client's message names no permission: log the one missing.
            app.authz_log
                .denied(a, &format!("{e} ({})", auth::forbidden_message(a)));
            Err(e)
        }
    }
}
