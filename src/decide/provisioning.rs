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
