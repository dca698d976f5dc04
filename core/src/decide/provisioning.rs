//! Provisioning: the Kubernetes objects of the accepted spec generation
//! are applied once per generation (the projection records the generation
//! applied when `ApplyResources` succeeds), so a converged cluster sends
//! nothing; then a restart asked for and not carried out yet
//! ([`restart`](super::restart)).

use logbook_journal::{Intent, ReasonCode};

use super::Decision;
use super::view::ClusterView;

/// Applies the objects of a generation not applied yet.
pub fn decide_provisioning(view: &ClusterView<'_>) -> Vec<Decision> {
    if view.state.applied_generation == Some(view.generation) {
        let marking = decide_marking(view);
        if !marking.is_empty() {
            return marking;
        }
        return super::restart::decide_restart(view);
    }
    // A new image's objects wait for its preflight.
    if super::upgrade::held(view).is_some() {
        return Vec::new();
    }
    // Refused for this generation (the status says why): not tried again
    // until the spec changes, so a refused spec costs no append.
    if view
        .state
        .apply_refused
        .as_ref()
        .is_some_and(|(g, _)| *g == view.generation)
    {
        return Vec::new();
    }
    let by_defaults = view
        .state
        .spec_layers
        .as_ref()
        .is_some_and(|l| l.from_defaults && l.generation == view.generation);
    let detail = match view.state.applied_generation {
        Some(old) => format!("spec generation {} replaces {old}", view.generation),
        None if by_defaults => format!(
            "spec generation {} changed by its defaults (ValkeyOperatorDefaults)",
            view.generation
        ),
        None => format!("spec generation {} has no objects yet", view.generation),
    };
    vec![Decision::new(
        Intent::ApplyResources {
            generation: view.generation,
        },
        ReasonCode::SpecChanged {
            generation: view.generation,
        },
        detail,
    )]
}

/// The objects of the generation applied again: someone else changed them
/// (drift: the apply puts back every field the operator sets), or with the
/// ownership annotation, which they lack: they predate it (an older
/// operator made them), or the cluster was bound again after its objects'
/// annotations were removed (nothing else changes in them, so nothing
/// rolls).
fn decide_marking(view: &ClusterView<'_>) -> Vec<Decision> {
    let drifted: Vec<(&String, &str)> = view
        .state
        .drift
        .iter()
        .filter(|(_, d)| !d.reverted)
        .map(|(object, d)| (object, d.by.as_str()))
        .collect();
    if !drifted.is_empty() {
        let said: Vec<String> = drifted
            .iter()
            .map(|(object, by)| format!("{object} (by {by})"))
            .collect();
        return vec![Decision::new(
            Intent::ApplyResources {
                generation: view.generation,
            },
            ReasonCode::Drift {
                objects: drifted
                    .iter()
                    .map(|(object, _)| (*object).clone())
                    .collect(),
            },
            format!(
                "changed by someone else: {}; the objects of generation {} applied again",
                said.join(", "),
                view.generation
            ),
        )];
    }
    let external = &view.state.external;
    if external.unpublished {
        let hosts = external.hosts();
        return vec![Decision::new(
            Intent::ApplyResources {
                generation: view.generation,
            },
            ReasonCode::ExternalEndpointsChanged { hosts },
            format!(
                "where clients outside reach the cluster changed: the objects of generation {} applied again, the connection Secret with the new endpoints",
                view.generation
            ),
        )];
    }
    let Some(binding) = view.state.binding.as_ref().filter(|b| b.mark_due) else {
        return Vec::new();
    };
    let (code, detail) = if binding.rebound {
        (
            ReasonCode::Rebound,
            format!(
                "bound again: the objects of generation {} applied with the ownership annotation",
                view.generation
            ),
        )
    } else {
        (
            ReasonCode::ObjectsUnmarked,
            format!(
                "the objects of generation {} predate the ownership annotation: applied with it",
                view.generation
            ),
        )
    };
    vec![Decision::new(
        Intent::ApplyResources {
            generation: view.generation,
        },
        code,
        detail,
    )]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use logbook_crds::{ClusterPhase, ValkeyClusterSpec};
    use logbook_journal::Intent;

    use crate::decide::given::Given;

    #[test]
    fn a_refused_apply_is_not_tried_again_until_the_spec_changes_and_the_status_says_why() {
        let mut g = Given::new();
        let spec = ValkeyClusterSpec::default();
        g.spec(&spec);
        assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 1 }]);
        g.decide_and_fail(
            Intent::ApplyResources { generation: 1 },
            "spec.metrics.serviceMonitor asks for a ServiceMonitor, but the API server does not serve it",
            false,
        );
        // Refused: nothing more is decided for it, so nothing is appended.
        assert!(
            !g.intents()
                .contains(&Intent::ApplyResources { generation: 1 })
        );
        let status = g.status();
        assert_eq!(status.phase, Some(ClusterPhase::Failed));
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ApplyRefused")
        );
        assert!(
            ready.message.contains("ServiceMonitor"),
            "{}",
            ready.message
        );
        // A retryable failure is tried again.
        let mut g = Given::new();
        g.spec(&spec);
        g.decide_and_fail(
            Intent::ApplyResources { generation: 1 },
            "the API server timed out",
            true,
        );
        assert!(
            g.intents()
                .contains(&Intent::ApplyResources { generation: 1 })
        );
        // A new generation is applied.
        let mut g = Given::new();
        g.spec(&spec);
        g.decide_and_fail(Intent::ApplyResources { generation: 1 }, "refused", false);
        g.spec_at(2, &spec);
        assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 2 }]);
    }
}
