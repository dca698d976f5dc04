//! The cluster's binding to the operator: whether its data StatefulSet
//! carries the ownership annotation ([`labels::OWNED_BY`]) naming it.
//! Journaled (`BindingObserved`) only when that differs from what the
//! journal last said.
//!
//! Who removed it is not observed: `managedFields` records the fields a
//! manager sets or changes, never one it removes (the API server's field
//! manager drops an entry whose set is empty), so the last writer it names
//! may be anyone. The event's `by` stays `None` here; an admission
//! webhook, which sees the request's user, can fill it.

use k8s_openapi::api::apps::v1::StatefulSet;
use logbook_journal::Event;
use logbook_journal::projection::ClusterState;

use crate::resources::labels;

/// `BindingObserved` when the StatefulSet's annotation differs from the
/// journal's view; nothing for an absent StatefulSet (not made yet, or
/// deleted: neither says anything of its user's intent).
pub fn observe_binding(
    state: &ClusterState,
    cluster: &str,
    sts: Option<&StatefulSet>,
) -> Vec<Event> {
    let Some(sts) = sts else {
        return Vec::new();
    };
    let annotated = labels::owned_by(&sts.metadata, cluster);
    if state
        .binding
        .as_ref()
        .is_some_and(|b| b.annotated == annotated)
    {
        return Vec::new();
    }
    vec![Event::BindingObserved {
        annotated,
        by: None,
    }]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use logbook_journal::projection::BindingView;

    use super::*;

    fn sts(annotation: Option<&str>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                annotations: annotation
                    .map(|v| BTreeMap::from([(labels::OWNED_BY.to_owned(), v.to_owned())])),
                ..ObjectMeta::default()
            },
            ..StatefulSet::default()
        }
    }

    fn state(annotated: bool) -> ClusterState {
        ClusterState {
            binding: Some(BindingView {
                annotated,
                ever_annotated: true,
                ..BindingView::default()
            }),
            ..ClusterState::default()
        }
    }

    fn observed(annotated: bool) -> Vec<Event> {
        vec![Event::BindingObserved {
            annotated,
            by: None,
        }]
    }

    #[test]
    fn only_a_change_is_journaled() {
        let marked = sts(Some("cache"));
        assert!(observe_binding(&state(true), "cache", Some(&marked)).is_empty());
        assert_eq!(
            observe_binding(&ClusterState::default(), "cache", Some(&marked)),
            observed(true)
        );
        assert_eq!(
            observe_binding(&state(true), "cache", Some(&sts(None))),
            observed(false)
        );
        assert!(observe_binding(&state(false), "cache", Some(&sts(None))).is_empty());
        assert_eq!(
            observe_binding(&state(false), "cache", Some(&marked)),
            observed(true)
        );
        // Another cluster's name is no binding to this one.
        assert_eq!(
            observe_binding(&state(true), "cache", Some(&sts(Some("other")))),
            observed(false)
        );
        // No StatefulSet says nothing.
        assert!(observe_binding(&state(true), "cache", None).is_empty());
    }
}
