//! Lists: selectors, `limit` with opaque `continue` tokens (expired with
//! 410 once older than the history window, as a compacted etcd would), and
//! the list resourceVersion semantics ("", "0", exact, not older than).

use std::ops::Bound;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use super::{Inner, Key};
use crate::error::ApiError;
use crate::registry::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};

/// `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RvMatch {
    /// Exactly that version.
    Exact,
    /// That version or newer.
    NotOlderThan,
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: LabelSelector,
    /// `fieldSelector`.
    pub field_selector: FieldSelector,
    /// `limit` (0 or none: everything).
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub rv_match: Option<RvMatch>,
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// The objects (storage form).
    pub items: Vec<Arc<Value>>,
    /// The list's resourceVersion.
    pub resource_version: u64,
    /// The token of the next page.
    pub continue_token: Option<String>,
    /// How many more objects match after this page.
    pub remaining: Option<usize>,
}

const EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn encode_token(rv: u64, ns: &str, name: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [ns, name]}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(t: &str) -> Option<(u64, String, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let rv = v.get("rv")?.as_u64()?;
    let start = v.get("start")?.as_array()?;
    Some((
        rv,
        start.first()?.as_str()?.to_owned(),
        start.get(1)?.as_str()?.to_owned(),
    ))
}

/// Parses a resourceVersion parameter.
///
/// # Errors
/// 400 when it is not a number.
pub fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "resourceVersion: Invalid value: \"{s}\": must be a non-negative integer"
        ))
    })
}

impl Inner {
    /// Lists `res` in `namespace` (None: every namespace).
    pub(crate) fn list(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        let rv_param = opts.resource_version.as_deref().filter(|s| !s.is_empty());
        if opts.rv_match.is_some() && rv_param.is_none() {
            return Err(ApiError::BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into()));
        }
        if let Some(s) = rv_param {
            let n = parse_rv(s)?;
            if n > self.rv {
                return Err(ApiError::TooLargeResourceVersion {
                    requested: n,
                    current: self.rv,
                });
            }
            if opts.rv_match == Some(RvMatch::Exact) && n != self.rv {
                // No older snapshots are kept (an etcd compacted at every write).
                return Err(ApiError::Gone {
                    message: format!("too old resource version: {n} ({})", self.rv),
                    continue_token: None,
                });
            }
        }
        let ns = if res.namespaced { namespace } else { None };
        let mut list_rv = self.rv;
        let lower: Bound<Key> = match opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => {
                let (rv, sns, sname) = decode_token(t).ok_or_else(|| {
                    ApiError::BadRequest("continue key is not valid: invalid continue token".into())
                })?;
                if rv < self.compacted {
                    return Err(ApiError::Gone {
                        message: EXPIRED.into(),
                        continue_token: Some(encode_token(self.rv, &sns, &sname)),
                    });
                }
                list_rv = rv;
                Bound::Excluded((res.group.clone(), res.plural.clone(), sns, sname))
            }
            None => Bound::Included((
                res.group.clone(),
                res.plural.clone(),
                ns.unwrap_or("").to_owned(),
                String::new(),
            )),
        };
        let limit = opts.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last: Option<(String, String)> = None;
        let mut remaining = 0usize;
        for (k, o) in self.objects.range((lower, Bound::Unbounded)) {
            if k.0 != res.group || k.1 != res.plural {
                break;
            }
            if let Some(ns) = ns
                && k.2 != ns
            {
                if k.2.as_str() > ns {
                    break;
                }
                continue;
            }
            if !opts.label_selector.matches_object(o) || !opts.field_selector.matches(o) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            last = Some((k.2.clone(), k.3.clone()));
            items.push(o.clone());
        }
        let continue_token = match (remaining, last) {
            (r, Some((lns, lname))) if r > 0 => Some(encode_token(list_rv, &lns, &lname)),
            _ => None,
        };
        Ok(ListResult {
            items,
            resource_version: list_rv,
            remaining: continue_token.as_ref().map(|_| remaining),
            continue_token,
        })
    }
}
