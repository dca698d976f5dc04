//! The operator's health, as the kubelet's probes read it (served by
//! `http.rs`):
//!
//! - `GET /healthz` (liveness): answered by the process's own event loop,
//!   without any Kubernetes API call, so a slow or unreachable API server
//!   never gets the operator restarted;
//! - `GET /readyz` (readiness): `200` while this instance leads and every
//!   cluster's journal can be trusted, `503` with the reason otherwise (a
//!   follower is alive but not ready).

use super::Context;

/// Whether the instance is ready, or why not.
pub async fn readiness(ctx: &Context) -> Result<String, String> {
    let leadership = *ctx.deps.leadership.borrow();
    let Some(epoch) = leadership.epoch() else {
        return Err("not leading: another instance holds the Lease".to_owned());
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
