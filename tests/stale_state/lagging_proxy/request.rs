//! What a request to the API names and selects (its path, its query,
//! label and field selectors), parsed without I/O.

use serde_json::Value;

/// What a request path names.
#[derive(Debug, Default)]
pub(super) struct ApiPath {
    pub(super) group: String,
    pub(super) namespace: Option<String>,
    pub(super) resource: String,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
    /// `/watch/` in the path.
    pub(super) watch_prefix: bool,
}

pub(super) fn parse_path(path: &str) -> Option<ApiPath> {
    let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let group = match *parts.first()? {
        "api" => {
            parts.drain(..2.min(parts.len()));
            String::new()
        }
        "apis" => {
            let group = (*parts.get(1)?).to_owned();
            parts.drain(..3.min(parts.len()));
            group
        }
        _ => return None,
    };
    let mut out = ApiPath {
        group,
        ..ApiPath::default()
    };
    if parts.first() == Some(&"watch") {
        out.watch_prefix = true;
        parts.remove(0);
    }
    if parts.first() == Some(&"namespaces") && parts.len() >= 3 {
        out.namespace = Some(parts[1].to_owned());
        parts.drain(..2);
    }
    out.resource = (*parts.first()?).to_owned();
    out.name = parts.get(1).map(|s| (*s).to_owned());
    out.subresource = parts.get(2).map(|s| (*s).to_owned());
    Some(out)
}

pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn namespace_name(obj: &Value) -> (String, String) {
    let meta = &obj["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_owned(),
        meta["name"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Whether `labels` satisfy the label selector `selector` (equality,
/// inequality, `in`, `notin`, existence): what the operator's lists and
/// watches use.
pub(super) fn selector_matches(selector: &str, labels: &serde_json::Map<String, Value>) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                label(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                label(k.trim()) == Some(v.trim())
            } else if let Some((k, set)) = term.split_once(" notin ") {
                let set = set_values(set);
                label(k.trim()).is_none_or(|v| !set.contains(&v))
            } else if let Some((k, set)) = term.split_once(" in ") {
                let set = set_values(set);
                label(k.trim()).is_some_and(|v| set.contains(&v))
            } else if let Some(k) = term.strip_prefix('!') {
                label(k.trim()).is_none()
            } else {
                label(term).is_some()
            }
        })
}

pub(super) fn set_values(set: &str) -> Vec<&str> {
    set.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .collect()
}

/// Whether `obj` is one a list or watch of `namespace` with these
/// selectors would show.
pub(super) fn listed(
    obj: &Value,
    namespace: Option<&str>,
    labels: Option<&str>,
    fields: Option<&str>,
) -> bool {
    let (ns, name) = namespace_name(obj);
    if namespace.is_some_and(|n| n != ns) {
        return false;
    }
    if let Some(selector) = labels {
        let empty = serde_json::Map::new();
        let object_labels = obj["metadata"]["labels"].as_object().unwrap_or(&empty);
        if !selector_matches(selector, object_labels) {
            return false;
        }
    }
    if let Some(fields) = fields {
        for term in fields.split(',') {
            match term.split_once('=') {
                Some(("metadata.name", v)) if v != name => return false,
                Some(("metadata.namespace", v)) if v != ns => return false,
                _ => {}
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selectors() {
        let labels =
            json!({"app.kubernetes.io/name": "valkey", "valkey.logbook.dev/cluster": "demo"});
        let labels = labels.as_object().unwrap();
        assert!(selector_matches(
            "app.kubernetes.io/name=valkey,valkey.logbook.dev/cluster=demo",
            labels
        ));
        assert!(!selector_matches(
            "valkey.logbook.dev/cluster=other",
            labels
        ));
        assert!(selector_matches(
            "app.kubernetes.io/name in (valkey,valkey-sentinel)",
            labels
        ));
        assert!(!selector_matches(
            "app.kubernetes.io/name in (sentinel)",
            labels
        ));
        assert!(selector_matches(
            "!absent,valkey.logbook.dev/cluster",
            labels
        ));
    }

    #[test]
    fn paths() {
        let p = parse_path("/api/v1/namespaces/default/pods/demo-0").unwrap();
        assert_eq!(
            (p.group.as_str(), p.resource.as_str(), p.name.as_deref()),
            ("", "pods", Some("demo-0"))
        );
        let p = parse_path("/apis/apps/v1/statefulsets").unwrap();
        assert_eq!(
            (p.group.as_str(), p.resource.as_str(), p.namespace),
            ("apps", "statefulsets", None)
        );
        let p = parse_path(
            "/apis/valkey.logbook.dev/v1beta1/namespaces/default/valkeyclusters/demo/status",
        )
        .unwrap();
        assert_eq!(p.subresource.as_deref(), Some("status"));
    }
}
