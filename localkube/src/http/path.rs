//! Parsing a request path into what it addresses, following the
//! apiserver's URL layout (`/api/v1/...`, `/apis/{group}/{version}/...`,
//! `namespaces/{ns}/{resource}/{name}/{subresource}`, legacy `watch/`).

/// A resource request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource.
    pub resource: String,
    /// `namespaces/{ns}/` in the path.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: Option<String>,
    /// The subresource.
    pub sub: Option<String>,
    /// The legacy `/watch/` prefix.
    pub watch_prefix: bool,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `POST /localkube/v1/faults/{action}` (not a Kubernetes path).
    Fault(String),
    /// `/version`.
    Version,
    /// `/api`.
    Api,
    /// `/apis`.
    Apis,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    ResourceList(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3,
    /// `/openapi/v3/apis/{group}/{version}` or `/openapi/v3/api/v1`.
    OpenApiV3Gv(String, String),
    /// A resource, object or subresource.
    Resource(Target),
    /// Nothing served.
    NotFound,
}

fn decode(s: &str) -> String {
    percent_decode(s)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        if c == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let target = |ns: Option<&str>, res: &str, name: Option<&&str>, sub: Option<&&str>| {
        Route::Resource(Target {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: decode(res),
            namespace: ns.map(decode),
            name: name.map(|n| decode(n)),
            sub: sub.map(|s| decode(s)),
            watch_prefix,
        })
    };
    match rest {
        ["namespaces", ns, res, tail @ ..]
            if !(tail.is_empty() && (*res == "status" || *res == "finalize")) =>
        {
            if tail.len() > 2 || ns.is_empty() {
                return Route::NotFound;
            }
            target(Some(ns), res, tail.first(), tail.get(1))
        }
        [res, tail @ ..] if !res.is_empty() && tail.len() <= 2 => {
            target(None, res, tail.first(), tail.get(1))
        }
        _ => Route::NotFound,
    }
}

/// Parses a request path (without the query).
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["version"] => Route::Version,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["api", "v1"] => Route::ResourceList(String::new(), "v1".into()),
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["api", ..] => Route::NotFound,
        ["apis", g] => Route::Group((*g).to_owned()),
        ["apis", g, v] => Route::ResourceList((*g).to_owned(), (*v).to_owned()),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        ["localkube", "v1", "faults", action] => Route::Fault((*action).to_owned()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3,
        ["openapi", "v3", "api", "v1"] => Route::OpenApiV3Gv(String::new(), "v1".into()),
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3Gv((*g).to_owned(), (*v).to_owned()),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(g: &str, r: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Route {
        Route::Resource(Target {
            group: g.into(),
            version: "v1".into(),
            resource: r.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
            sub: sub.map(Into::into),
            watch_prefix: false,
        })
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/api/v1/pods"), t("", "pods", None, None, None));
        assert_eq!(
            parse("/api/v1/namespaces/d/pods/x/status"),
            t("", "pods", Some("d"), Some("x"), Some("status"))
        );
        assert_eq!(
            parse("/api/v1/namespaces/d"),
            t("", "namespaces", None, Some("d"), None)
        );
        assert_eq!(
            parse("/api/v1/namespaces/d/status"),
            t("", "namespaces", None, Some("d"), Some("status"))
        );
        assert_eq!(
            parse("/apis/apps/v1/namespaces/d/statefulsets"),
            t("apps", "statefulsets", Some("d"), None, None)
        );
        assert_eq!(parse("/api/v1/namespaces/d/pods/x/y/z"), Route::NotFound);
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::ResourceList("apps".into(), "v1".into())
        );
    }
}
