//! A change of image, planned: the new image is run once on no data with
//! the new config before anything rolls (a preflight, `PreflightImage`),
//! and a change of version rolls behind a canary.
//!
//! - **Preflight.** When the spec names an image no pod is known to run
//!   (the journal holds what each pod runs: `ServerVersionObserved`),
//!   the objects of the generation are not applied before the preflight
//!   of that image with that generation's config answered. Refused (a
//!   directive the new version does not know, an image that cannot be
//!   pulled), nothing rolls, and the status and an Event say why; a new
//!   generation is tried again. Meanwhile everything else is decided as
//!   usual (a failover waits for no preflight).
//! - **Canary.** A roll that changes the version (the preflight's, or a
//!   pod's, against what the outdated pods run) goes on past its first
//!   pod (a replica: each topology rolls replicas first) only once that
//!   pod has run the new version for `upgrade.canarySeconds`, answering,
//!   ready and with no failure of its container. A canary that failed
//!   holds the roll: the status says so, and setting `image` back rolls
//!   it back (a pod down on an outdated revision is rolled at once).
//!
//! Pure, as all of `decide`; time is the journal's.

use logbook_crds::v1alpha1::CANARY_SECONDS;
use logbook_journal::projection::PreflightView;
use logbook_journal::{Intent, ReasonCode, Timestamp};

use super::Decision;
use super::view::{ClusterView, PodState};

/// The canary's soak, in microseconds.
fn canary_micros(view: &ClusterView<'_>) -> i64 {
    let seconds = view
        .spec
        .upgrade
        .as_ref()
        .map_or(CANARY_SECONDS, logbook_crds::UpgradeSpec::canary_seconds);
    i64::from(seconds.max(0)).saturating_mul(1_000_000)
}

/// How long a canary may answer without being in sync before it counts
/// as failed: twice its soak, at least 30 s.
fn sync_limit_micros(view: &ClusterView<'_>) -> i64 {
    canary_micros(view).saturating_mul(2).max(30_000_000)
}

/// Whether the spec's image needs a preflight: pods are known to run
/// images, and none runs this one.
fn needs_preflight(view: &ClusterView<'_>) -> bool {
    let versions = &view.state.versions;
    !versions.is_empty() && versions.values().all(|v| v.image != view.spec.image)
}

/// The preflight of the spec's image for the spec's generation, if one
/// was made.
fn this_preflight<'a>(view: &ClusterView<'a>) -> Option<&'a PreflightView> {
    view.state
        .preflight
        .as_ref()
        .filter(|p| p.image == view.spec.image && p.generation == view.generation)
}

/// Why the objects of the spec's generation are not applied yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// The preflight refused the image (else it runs, or is to run).
    pub refused: bool,
    /// Why, in a sentence.
    pub why: String,
}

/// Why the objects of the spec's generation are not applied yet: its
/// image's preflight runs, or refused it. `None`: they may be.
pub(crate) fn held(view: &ClusterView<'_>) -> Option<Held> {
    if !needs_preflight(view) {
        return None;
    }
    let image = &view.spec.image;
    match this_preflight(view) {
        Some(p) if p.version.is_some() => None,
        Some(PreflightView {
            refused: Some(refused),
            ..
        }) => Some(Held {
            refused: true,
            why: format!(
                "image {image} failed its preflight with the config of generation {}: {refused}; nothing rolled",
                view.generation
            ),
        }),
        _ => Some(Held {
            refused: false,
            why: format!("image {image} runs its preflight (on no data) before anything rolls"),
        }),
    }
}

/// The preflight to make or remove, if any: decided before every
/// topology's concerns, each a single quick write.
pub(super) fn decide_preflight(view: &ClusterView<'_>) -> Option<Decision> {
    if let Some(p) = view.state.preflight.as_ref().filter(|p| !p.removed) {
        let stale = p.image != view.spec.image || p.generation != view.generation;
        if p.ended() || stale {
            let detail = match (&p.version, &p.refused) {
                (Some(v), _) => format!("the preflight of {} answered as version {v}", p.image),
                (None, Some(r)) => format!("the preflight of {} was refused: {r}", p.image),
                (None, None) => format!(
                    "the preflight of {} is for generation {}; the spec is at generation {} with image {}",
                    p.image, p.generation, view.generation, view.spec.image
                ),
            };
            return Some(Decision::new(
                Intent::RemovePreflight {
                    image: p.image.clone(),
                },
                ReasonCode::Upgrade,
                detail,
            ));
        }
        return None;
    }
    if !needs_preflight(view) || this_preflight(view).is_some() {
        return None;
    }
    // No pod runs the spec's image (`needs_preflight`): every image known.
    let from = others(view).join(", ");
    Some(Decision::new(
        Intent::PreflightImage {
            image: view.spec.image.clone(),
            generation: view.generation,
        },
        ReasonCode::Upgrade,
        format!(
            "image {} replaces {from}: run once with the config of generation {} before anything rolls",
            view.spec.image, view.generation
        ),
    ))
}

/// `image (version)` of each distinct image the pods are known to run
/// other than the spec's, sorted.
pub(crate) fn others(view: &ClusterView<'_>) -> Vec<String> {
    let mut out: Vec<String> = view
        .state
        .versions
        .values()
        .filter(|v| v.image != view.spec.image)
        .map(|v| format!("{} ({})", v.image, v.version))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The version the spec's image runs: a pod's that runs it, else its
/// preflight's.
pub(crate) fn target_version<'a>(view: &ClusterView<'a>) -> Option<&'a str> {
    view.state
        .versions
        .values()
        .find(|v| v.image == view.spec.image)
        .map(|v| v.version.as_str())
        .or_else(|| {
            view.state
                .preflight
                .as_ref()
                .filter(|p| p.image == view.spec.image)
                .and_then(|p| p.version.as_deref())
        })
}

/// The canary of a roll that changes the version, while it holds the
/// roll: the pod, and why (it soaks, does not answer yet, or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CanaryHold {
    /// The canary pod.
    pub pod: String,
    /// Why the roll waits for it.
    pub why: String,
    /// It failed: the roll waits for a person (set `image` back).
    pub failed: bool,
    /// When its soak ends, while it soaks.
    pub until: Option<Timestamp>,
}

/// The canary's hold on the roll of `pods` (`outdated` on another
/// revision), if the roll changes the version and its first pod has not
/// passed yet.
pub(crate) fn canary_hold(
    view: &ClusterView<'_>,
    pods: &[PodState<'_>],
    outdated: &[PodState<'_>],
) -> Option<CanaryHold> {
    let to = target_version(view)?;
    let versions = &view.state.versions;
    let changes = outdated
        .iter()
        .filter_map(|p| versions.get(p.name))
        .any(|v| v.version != to);
    if !changes || outdated.is_empty() {
        return None;
    }
    let updated: Vec<&PodState<'_>> = pods
        .iter()
        .filter(|p| !outdated.iter().any(|o| o.name == p.name))
        .collect();
    let [canary] = updated.as_slice() else {
        return None;
    };
    let name = canary.name.to_owned();
    let failure = view
        .state
        .container_failures
        .get(canary.name)
        .or_else(|| versions.get(canary.name).and_then(|v| v.failed.as_ref()));
    if let Some(failure) = failure {
        return Some(CanaryHold {
            why: format!(
                "canary {name} failed on {} ({to}): {failure}; set image back to roll it back",
                view.spec.image
            ),
            pod: name,
            failed: true,
            until: None,
        });
    }
    let since = versions
        .get(canary.name)
        .filter(|v| v.image == view.spec.image)
        .map(|v| v.since);
    let Some(since) = since.filter(|_| canary.view.ready && canary.usable()) else {
        return Some(CanaryHold {
            why: format!("canary {name} does not answer on {to} yet"),
            pod: name,
            failed: false,
            until: None,
        });
    };
    // In sync with its primary: a Replication's, a Cluster shard's.
    let in_sync = canary.view.role == Some(logbook_journal::Role::Primary)
        || canary.view.link == Some(logbook_journal::LinkStatus::Up);
    if !in_sync {
        let limit = Timestamp(since.0.saturating_add(sync_limit_micros(view)));
        let failed = view.state.last_at >= limit;
        return Some(CanaryHold {
            why: if failed {
                format!(
                    "canary {name} failed on {} ({to}): not in sync with its primary {} s after it answered (can its primary send it a full copy? a key may use what {to} cannot hold); set image back to roll it back",
                    view.spec.image,
                    sync_limit_micros(view) / 1_000_000
                )
            } else {
                format!("canary {name} answers on {to}, not yet in sync with its primary")
            },
            pod: name,
            failed,
            until: (!failed).then_some(limit),
        });
    }
    // The soak counts from when it came in sync, not from its first
    // answer: a canary that took its whole soak to copy its primary's
    // data has not been watched serving at all.
    let in_sync_since = versions
        .get(canary.name)
        .and_then(|v| v.in_sync_since)
        .unwrap_or(since);
    let until = Timestamp(in_sync_since.0.saturating_add(canary_micros(view)));
    (view.state.last_at < until).then(|| CanaryHold {
        why: format!(
            "canary {name} runs {to}: watched for {} s in sync before the next pod rolls",
            canary_micros(view) / 1_000_000
        ),
        pod: name,
        failed: false,
        until: Some(until),
    })
}

/// When the canary's soak ends, for the runtime to wake then.
pub(crate) fn canary_deadline(view: &ClusterView<'_>) -> Option<Timestamp> {
    let roll = view.roll()?;
    canary_hold(view, &roll.pods, &roll.outdated)?.until
}
