//! Provisioning: the Kubernetes objects of the accepted spec generation
//! are applied once per generation (the projection records the generation
//! applied when `ApplyResources` succeeds), so a converged cluster sends
//! nothing.

use logbook_journal::{Intent, ReasonCode};

use super::Decision;
use super::view::ClusterView;

/// Applies the objects of a generation not applied yet.
pub fn decide_provisioning(view: &ClusterView<'_>) -> Vec<Decision> {
    if view.state.applied_generation == Some(view.generation) {
        return decide_marking(view);
    }
    // A new image's objects wait for its preflight.
    if super::upgrade::held(view).is_some() {
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
