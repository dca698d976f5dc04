//! The UI behind the operator's Deployment (`ui.enabled` in the chart):
//! every request says who it is with a bearer token, which the API server
//! checks (a TokenReview), and is shown a cluster only when the API server
//! says that user may `get` it (a SubjectAccessReview). The operator's own
//! credentials read what is shown; the user's token is never stored
//! anywhere but in memory, hashed, for the seconds its review is trusted.
//!
//! A browser signs in once at `/login` (the token goes into an `HttpOnly`,
//! `SameSite=Strict` cookie the page's script cannot read); a program sends
//! `Authorization: Bearer <token>`. The operator's ServiceAccount needs the
//! `system:auth-delegator` ClusterRole (the chart binds it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Ui;
use super::api::UiError;

/// The cookie a signed-in browser sends.
pub const COOKIE: &str = "logbook-ui-token";
/// How long a token's review is trusted before it is asked again.
const TOKEN_TTL: Duration = Duration::from_secs(30);
/// How long an access review's answer is trusted.
const ACCESS_TTL: Duration = Duration::from_secs(10);
/// How often a live stream asks again whether its reader may still read.
pub const LIVE_RECHECK: Duration = Duration::from_secs(30);
/// Entries either cache holds at most (then it is emptied: they are cheap
/// to ask again).
const CACHE_LIMIT: usize = 10_000;

/// Who a token belongs to, as the API server's TokenReview said.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Viewer {
    /// `username`.
    pub name: String,
    /// `uid`, when the authenticator gives one.
    pub uid: Option<String>,
    /// `groups`.
    pub groups: Vec<String>,
    /// `extra`, sorted.
    pub extra: Vec<(String, Vec<String>)>,
}

/// An answer and when it was asked.
type Cached<V> = (Instant, V);
/// Token reviews by the token's SHA-256.
type Tokens = HashMap<[u8; 32], Cached<Option<Viewer>>>;
/// Access reviews by reader, verb, namespace and name.
type Decisions = HashMap<(Viewer, &'static str, String, Option<String>), Cached<bool>>;

/// The reviews the UI asks of the API server, with the operator's client,
/// and their answers for a few seconds.
pub struct Reviews {
    client: kube::Client,
    tokens: Mutex<Tokens>,
    decisions: Mutex<Decisions>,
    /// The second now counted, and the TokenReviews asked in it.
    asked: Mutex<(Instant, u32)>,
}

/// How many TokenReviews of tokens the cache does not hold may be asked
/// in one second: past that, a request with yet another unknown token is
/// refused (429) instead of costing the API server a review each.
const REVIEWS_PER_SECOND: u32 = 20;

/// A cache's map: a panic elsewhere while it was held leaves nothing
/// half-written in it (each insert is one call).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fresh<V: Clone, Q: std::hash::Hash + Eq>(
    cache: &Mutex<HashMap<Q, (Instant, V)>>,
    key: &Q,
    ttl: Duration,
) -> Option<V> {
    locked(cache)
        .get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn remember<V, Q: std::hash::Hash + Eq>(cache: &Mutex<HashMap<Q, (Instant, V)>>, key: Q, v: V) {
    let mut cache = locked(cache);
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, (Instant::now(), v));
}

impl Reviews {
    /// Reviews asked with `client` (the operator's).
    #[must_use]
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            tokens: Mutex::new(HashMap::new()),
            decisions: Mutex::new(HashMap::new()),
            asked: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Whether one more TokenReview may be asked this second.
    fn may_ask(&self) -> bool {
        let mut asked = locked(&self.asked);
        if asked.0.elapsed() >= Duration::from_secs(1) {
            *asked = (Instant::now(), 0);
        }
        if asked.1 >= REVIEWS_PER_SECOND {
            return false;
        }
        asked.1 += 1;
        true
    }

    /// Who `token` belongs to; `None` when the API server does not know it.
    ///
    /// # Errors
    /// The review could not be asked (the operator may not, or the API
    /// server did not answer).
    pub async fn who(&self, token: &str) -> Result<Option<Viewer>, UiError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = fresh(&self.tokens, &key, TOKEN_TTL) {
            return Ok(known);
        }
        if !self.may_ask() {
            return Err(UiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many unknown tokens this second: try again",
            ));
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(review_failed("TokenReview"))?;
        let status = answer.status.unwrap_or_default();
        let viewer = if status.authenticated == Some(true) {
            status.user.map(|u| {
                let mut extra: Vec<(String, Vec<String>)> =
                    u.extra.unwrap_or_default().into_iter().collect();
                extra.sort();
                Viewer {
                    name: u.username.unwrap_or_default(),
                    uid: u.uid,
                    groups: u.groups.unwrap_or_default(),
                    extra,
                }
            })
        } else {
            None
        };
        remember(&self.tokens, key, viewer.clone());
        Ok(viewer)
    }

    /// Whether `viewer` may `verb` ValkeyClusters in `namespace` (the one
    /// named `name`, or all of them).
    ///
    /// # Errors
    /// The review could not be asked.
    pub async fn may(
        &self,
        viewer: &Viewer,
        verb: &'static str,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<bool, UiError> {
        let key = (
            viewer.clone(),
            verb,
            namespace.to_owned(),
            name.map(str::to_owned),
        );
        if let Some(known) = fresh(&self.decisions, &key, ACCESS_TTL) {
            return Ok(known);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(viewer.name.clone()),
                uid: viewer.uid.clone(),
                groups: Some(viewer.groups.clone()),
                extra: (!viewer.extra.is_empty()).then(|| viewer.extra.iter().cloned().collect()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(crds_group()),
                    resource: Some("valkeyclusters".to_owned()),
                    verb: Some(verb.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    name: name.map(str::to_owned),
                    ..ResourceAttributes::default()
                }),
                non_resource_attributes: None,
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(review_failed("SubjectAccessReview"))?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        remember(&self.decisions, key, allowed);
        Ok(allowed)
    }

    /// Whether `viewer` may see the cluster `namespace/name`: may list the
    /// namespace's, or get this one.
    ///
    /// # Errors
    /// A review could not be asked.
    pub async fn may_see(
        &self,
        viewer: &Viewer,
        namespace: &str,
        name: &str,
    ) -> Result<bool, UiError> {
        Ok(self.may(viewer, "list", namespace, None).await?
            || self.may(viewer, "get", namespace, Some(name)).await?)
    }
}

/// `valkey.logbook.dev`.
fn crds_group() -> String {
    <logbook_crds::ValkeyCluster as kube::Resource>::group(&()).into_owned()
}

fn review_failed(kind: &'static str) -> impl FnOnce(kube::Error) -> UiError {
    move |err| {
        let hint = match &err {
            kube::Error::Api(s) if s.code == 403 => {
                " (the operator's ServiceAccount needs the ClusterRole system:auth-delegator)"
            }
            _ => "",
        };
        tracing::warn!(%err, "the web UI cannot ask the API server a {kind}");
        UiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the UI cannot check who you are: its {kind} failed{hint}"),
        )
    }
}

/// The bearer token of a request: `Authorization: Bearer`, else the
/// sign-in cookie.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(t) = bearer {
        return Some(t.to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The cluster a path shows, if it shows one.
fn cluster_of(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/api/clusters/")
        .or_else(|| path.strip_prefix("/clusters/"))?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next()) {
        (Some(ns), Some(name)) if !ns.is_empty() && !name.is_empty() => Some((ns, name)),
        _ => None,
    }
}

/// What needs no sign-in: the sign-in itself, and the page's script and
/// style (they hold no data).
fn open(path: &str) -> bool {
    matches!(path, "/login" | "/logout") || path.starts_with("/assets/")
}

/// Whether the request is a person's browser asking for a page (sent to
/// sign in) rather than the page's script asking for data (answered 401).
fn wants_page(path: &str) -> bool {
    !path.starts_with("/api/")
}

/// The guard in front of every route when the UI checks its readers.
/// Whether a `Host` header names `localhost` or an address (an IP
/// literal, with or without a port): names no DNS answer can move.
pub(super) fn local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Whether a request comes from this UI's own pages: no `Origin` (not a
/// browser's cross-site request), or one naming the `Host` asked, and no
/// `Sec-Fetch-Site: cross-site`.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if value("sec-fetch-site") == Some("cross-site") {
        return false;
    }
    let Some(origin) = value("origin") else {
        return true;
    };
    let host = value("host").unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host))
}

pub(super) async fn guard(State(ui): State<Arc<Ui>>, mut req: Request, next: Next) -> Response {
    let Some(reviews) = &ui.reviews else {
        // Served with the user's own credentials, or to the machine's
        // user only: a page of another site whose name the attacker
        // points at 127.0.0.1 (DNS rebinding) would read as that user.
        // Its requests name that site in `Host`; only `localhost` and an
        // address (which no DNS answer changes) are served.
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .map(|h| h.to_str().unwrap_or("\u{fffd}"));
        if let Some(host) = host.filter(|h| !local_host(h)) {
            return UiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this UI is served as localhost or by address only, not as {host:?} (a page of another site pointing its name here)"
                ),
            )
            .into_response();
        }
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    if open(&path) {
        return next.run(req).await;
    }
    let viewer = match token_of(req.headers()) {
        None => None,
        Some(token) => match reviews.who(&token).await {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        },
    };
    let Some(viewer) = viewer else {
        return if wants_page(&path) {
            Redirect::to("/login").into_response()
        } else {
            UiError::new(
                StatusCode::UNAUTHORIZED,
                "sign in: send a bearer token (Authorization: Bearer), or open /login",
            )
            .into_response()
        };
    };
    if let Some((ns, name)) = cluster_of(&path) {
        // Checked as the handler will read them: a namespace or name is a
        // DNS name, which never needs percent-encoding, and one that is
        // encoded would be asked about as one name and served as another.
        if ns.contains('%') || name.contains('%') {
            return UiError::new(
                StatusCode::BAD_REQUEST,
                format!("{ns}/{name} is not a namespace and a ValkeyCluster's name"),
            )
            .into_response();
        }
        match reviews.may(&viewer, "get", ns, Some(name)).await {
            Ok(true) => {}
            Ok(false) => {
                return UiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "forbidden: User \"{}\" cannot get valkeyclusters.{} {ns}/{name}",
                        viewer.name,
                        crds_group()
                    ),
                )
                .into_response();
            }
            Err(e) => return e.into_response(),
        }
    }
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

/// The sign-in page.
pub(super) async fn login_page() -> Html<&'static str> {
    Html(LOGIN)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// Checks the token, then keeps it in the cookie.
pub(super) async fn login(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(reviews) = &ui.reviews else {
        return Redirect::to("/").into_response();
    };
    // A sign-in posted by another site's page (login CSRF: the reader
    // then reads as whoever the attacker signed in as) is refused: a
    // browser names the page's origin in `Origin` on every POST.
    if !same_origin(&headers) {
        return UiError::new(
            StatusCode::FORBIDDEN,
            "a sign-in posted from another site is refused: open /login here and sign in",
        )
        .into_response();
    }
    let token = form.token.trim();
    match reviews.who(token).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(LOGIN.replace(
                    "<!--problem-->",
                    "<p role=\"alert\" class=\"problem\">The API server does not know this token.</p>",
                )),
            )
                .into_response();
        }
        Err(e) => return e.into_response(),
    }
    // The cookie holds what the user pasted, to be sent back only to this
    // UI (no `Domain`), never to a script; its value is checked against
    // cookie syntax so it cannot add attributes.
    if !token
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'"' && b != b'\\')
    {
        return (
            StatusCode::BAD_REQUEST,
            "the token holds characters a token cannot",
        )
            .into_response();
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            let mut resp = Redirect::to("/").into_response();
            resp.headers_mut().insert(header::SET_COOKIE, v);
            resp
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "the token cannot be kept in a cookie",
        )
            .into_response(),
    }
}

/// Forgets the cookie.
pub(super) async fn logout() -> Response {
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("logbook-ui-token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

const LOGIN: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Logbook: sign in</title>
<link rel="stylesheet" href="/assets/ui.css">
</head>
<body>
<main class="login">
<h1>Logbook</h1>
<p>Sign in with a Kubernetes bearer token. You will see the ValkeyClusters
you may <code>get</code>, and nothing else.</p>
<p>For example: <code>kubectl create token &lt;serviceaccount&gt;</code>, or the
token of your kubeconfig.</p>
<!--problem-->
<form method="post" action="/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Unknown tokens cost at most [`REVIEWS_PER_SECOND`] TokenReviews a
    /// second: the next is refused without asking the API server.
    #[tokio::test]
    async fn unknown_tokens_past_the_rate_are_refused_without_a_review() {
        let reviews = Reviews::new(
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap(),
        );
        for _ in 0..REVIEWS_PER_SECOND {
            assert!(reviews.may_ask());
        }
        assert!(!reviews.may_ask());
        let refused = reviews.who("yet-another-token").await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn a_sign_in_from_another_site_is_not_same_origin() {
        let with = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            same_origin(&h)
        };
        assert!(with(&[("host", "ui.example:8900")]));
        assert!(with(&[
            ("host", "ui.example:8900"),
            ("origin", "https://ui.example:8900")
        ]));
        assert!(!with(&[
            ("host", "ui.example:8900"),
            ("origin", "https://evil.example")
        ]));
        assert!(!with(&[("host", "ui.example:8900"), ("origin", "null")]));
        assert!(!with(&[
            ("host", "ui.example:8900"),
            ("sec-fetch-site", "cross-site")
        ]));
    }

    #[test]
    fn only_localhost_and_addresses_are_local_hosts() {
        for ok in [
            "localhost",
            "localhost:8900",
            "LOCALHOST:8900",
            "127.0.0.1",
            "127.0.0.1:8900",
            "10.1.2.3:80",
            "[::1]:8900",
            "[::1]",
        ] {
            assert!(local_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8900",
            "localhost.evil.example:8900",
            "127.0.0.1.nip.io:8900",
            "[evil]:8900",
            "",
        ] {
            assert!(!local_host(bad), "{bad}");
        }
    }

    /// The UI served to the machine's user (`logbook ui`, local mode)
    /// refuses a request naming another site in `Host` (DNS rebinding),
    /// and serves one naming `localhost` or an address.
    #[tokio::test]
    async fn a_rebound_name_is_refused_where_the_ui_trusts_its_reader() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let ui = Arc::new(Ui {
            client: kube::Client::try_from(kube::Config::new(
                "http://127.0.0.1:1".parse().unwrap(),
            ))
            .unwrap(),
            journals: crate::ui::Journals::Local(
                logbook_journal::SledStore::open(dir.path(), logbook_journal::Durability::Flush)
                    .unwrap(),
            ),
            namespace: None,
            reviews: None,
        });
        let ask = |host: &'static str| {
            let app = crate::ui::api::router(ui.clone());
            async move {
                app.oneshot(
                    Request::builder()
                        .uri("/assets/ui.css")
                        .header(header::HOST, host)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap()
                .status()
            }
        };
        assert_eq!(
            ask("evil.example:8900").await,
            StatusCode::MISDIRECTED_REQUEST
        );
        assert_eq!(ask("127.0.0.1:8900").await, StatusCode::OK);
        assert_eq!(ask("localhost:8900").await, StatusCode::OK);
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_comes_from_the_bearer_header_else_the_cookie() {
        assert_eq!(
            token_of(&headers(&[(header::AUTHORIZATION, "Bearer abc ")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_of(&headers(&[(
                header::COOKIE,
                "a=1; logbook-ui-token=xyz; b=2"
            )]))
            .as_deref(),
            Some("xyz")
        );
        // The header wins over the cookie.
        assert_eq!(
            token_of(&headers(&[
                (header::COOKIE, "logbook-ui-token=xyz"),
                (header::AUTHORIZATION, "Bearer abc"),
            ]))
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_of(&headers(&[(header::AUTHORIZATION, "Basic abc")])),
            None
        );
        assert_eq!(
            token_of(&headers(&[(header::AUTHORIZATION, "Bearer  ")])),
            None
        );
        assert_eq!(
            token_of(&headers(&[(header::COOKIE, "logbook-ui-token=")])),
            None
        );
        assert_eq!(
            token_of(&headers(&[(header::COOKIE, "other-token=abc")])),
            None
        );
    }

    #[test]
    fn every_path_of_a_cluster_names_it_and_nothing_else_does() {
        for path in [
            "/api/clusters/shop/cache",
            "/api/clusters/shop/cache/journal",
            "/api/clusters/shop/cache/live",
            "/clusters/shop/cache",
            "/clusters/shop/cache/report",
        ] {
            assert_eq!(cluster_of(path), Some(("shop", "cache")), "{path}");
        }
        for path in [
            "/",
            "/api/clusters",
            "/api/clusters/shop",
            "/api/clusters//x",
            "/api/live",
        ] {
            assert_eq!(cluster_of(path), None, "{path}");
        }
        assert!(open("/login") && open("/assets/ui.js") && !open("/api/clusters"));
        assert!(wants_page("/clusters/a/b") && !wants_page("/api/clusters/a/b"));
    }
}
