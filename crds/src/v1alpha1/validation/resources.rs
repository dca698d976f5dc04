//! Rules for `spec.resources`: every quantity parses and is not negative,
//! and no request exceeds its limit (the API server would refuse the pod
//! later, far from the cause).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::error::{Errors, FieldErrorKind};
use crate::quantity::{ParsedQuantity, parse_quantity};

/// Quantities parse, are not negative, and no request exceeds its limit.
pub(super) fn check_resources(resources: Option<&ResourceRequirements>, errors: &mut Errors) {
    let Some(resources) = resources else { return };
    let limits = parse_section("limits", resources.limits.as_ref(), errors);
    let requests = parse_section("requests", resources.requests.as_ref(), errors);
    for (name, (request, request_text)) in &requests {
        if let Some((limit, limit_text)) = limits.get(name)
            && request > limit
        {
            errors.push(
                format!("spec.resources.requests[{name:?}]"),
                FieldErrorKind::Invalid,
                format!("request {request_text:?} of {name} exceeds its limit {limit_text:?}"),
            );
        }
    }
}

/// The quantities of one section that parse and are not negative, keyed by
/// resource name, with their original text for messages.
fn parse_section<'a>(
    section: &str,
    quantities: Option<&'a BTreeMap<String, Quantity>>,
    errors: &mut Errors,
) -> BTreeMap<&'a str, (ParsedQuantity, &'a str)> {
    let mut parsed = BTreeMap::new();
    for (name, quantity) in quantities.into_iter().flatten() {
        let path = format!("spec.resources.{section}[{name:?}]");
        match parse_quantity(&quantity.0) {
            Ok(q) if q < ParsedQuantity::ZERO => errors.push(
                path,
                FieldErrorKind::Invalid,
                format!(
                    "{section} of {name} must not be negative, got {:?}",
                    quantity.0
                ),
            ),
            Ok(q) => {
                parsed.insert(name.as_str(), (q, quantity.0.as_str()));
            }
            Err(e) => errors.push(path, FieldErrorKind::Invalid, e.to_string()),
        }
    }
    parsed
}
