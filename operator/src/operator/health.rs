//! The operator's health, as the kubelet's probes read it (served by
//! `http.rs`):
//!
//! - `GET /healthz` (liveness): answered by the process's own event loop,
//!   without any Kubernetes API call, so a slow or unreachable API server
//!   never gets the operator restarted;
//! - `GET /readyz` (readiness): `200` while this instance leads and every
//!   cluster's journal can be trusted, or follows and keeps reading the
//!   Lease (a standby that can take over); `503` with the reason otherwise
//!   (a leader with an untrusted journal, or an instance that has not
//!   reached the Lease for a whole Lease term).

use super::Context;

/// Whether the instance is ready, or why not.
pub async fn readiness(ctx: &Context) -> Result<String, String> {
    let leadership = *ctx.deps.leadership.borrow();
    let Some(epoch) = leadership.epoch() else {
        // A follower is ready while it keeps reading the Lease: a healthy
        // standby. Not counting it ready would leave a Deployment's
        // rollout waiting forever on a pod that cannot lead until the
        // old one goes, and a PodDisruptionBudget blocking every drain.
        return match ctx.lease_contact.since() {
            Some(ago) if ago <= ctx.lease_duration => {
                Ok("standing by: another instance holds the Lease".to_owned())
            }
            Some(ago) => Err(format!(
                "not leading, and the Lease has not been read for {}s",
                ago.as_secs()
            )),
            None => Err("not leading, and the Lease has not been read yet".to_owned()),
        };
    };
    let unhealthy = ctx.unhealthy.lock().await;
    if !unhealthy.is_empty() {
        return Err(format!(
            "leading at epoch {epoch}, but {} cluster journal(s) cannot be trusted",
            unhealthy.len()
        ));
    }
    Ok(format!("leading at epoch {epoch}"))
}
