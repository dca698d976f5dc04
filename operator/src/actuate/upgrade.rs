//! The preflight of a new image: its Pod made (`PreflightImage`) and
//! removed (`RemovePreflight`). What it answers is observed by the
//! reconcile (`observe::preflight`), not waited for here: a preflight
//! that takes a minute to pull its image holds no decision of the
//! cluster meanwhile (a failover).

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Client;

use super::kube_ops::{apply, delete_named};
use super::{ActError, Done, Target};
use crate::resources::{build_preflight, preflight_name};

/// Runs `image` with the config of spec `generation`: the preflight
/// ConfigMap applied, and the Pod made anew (one left from an earlier
/// preflight is deleted first).
///
/// # Errors
/// [`ActError::Refused`] when the spec in force is not that generation
/// or names another image; [`ActError::NotYet`] while an earlier
/// preflight pod is still going; API errors.
pub(super) async fn preflight(
    client: &Client,
    target: Target<'_>,
    image: &str,
    generation: i64,
) -> Result<Done, ActError> {
    if target.spec.image != image {
        return Err(ActError::Refused(format!(
            "the spec in force names image {}, not {image}",
            target.spec.image
        )));
    }
    let ns = target.meta.namespace.as_str();
    let name = preflight_name(&target.meta.name);
    if delete_named::<Pod>(client, ns, &name).await? {
        return Err(ActError::NotYet(format!(
            "the Pod {ns}/{name} of an earlier preflight is being deleted"
        )));
    }
    let (config, pod) = build_preflight(target.meta, target.spec);
    apply(client, ns, &config).await?;
    match apply(client, ns, &pod).await {
        Ok(_) => Ok(Done {
            detail: format!(
                "Pod {ns}/{name} runs {image} with the config of spec generation {generation}, on no data"
            ),
            events: Vec::new(),
            password: None,
        }),
        // Still terminating from an earlier preflight.
        Err(ActError::Kube {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 409 => Err(ActError::NotYet(format!(
            "the Pod {ns}/{name} of an earlier preflight is still going"
        ))),
        Err(err) => Err(err),
    }
}

/// Deletes the preflight's Pod and ConfigMap (either already gone is
/// fine).
///
/// # Errors
/// API errors other than 404.
pub(super) async fn remove_preflight(
    client: &Client,
    target: Target<'_>,
    image: &str,
) -> Result<Done, ActError> {
    let ns = target.meta.namespace.as_str();
    let name = preflight_name(&target.meta.name);
    let pod = delete_named::<Pod>(client, ns, &name).await?;
    let config = delete_named::<ConfigMap>(client, ns, &name).await?;
    Ok(Done {
        detail: match (pod, config) {
            (false, false) => format!("the preflight of {image} left nothing to delete"),
            _ => format!("deleted the preflight Pod and ConfigMap {ns}/{name} of {image}"),
        },
        events: Vec::new(),
        password: None,
    })
}
