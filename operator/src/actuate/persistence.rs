//! A pod's data carried over its restart on a new revision.
//!
//! Valkey reads its data at start from the files its configuration names:
//! the append-only file when `appendonly` is on, else the RDB file. When a
//! roll changes `storage.persistence` between the two (`Aof` to `Rdb`,
//! `Rdb` to `Aof` or `RdbAndAof`), the restarted server would read the
//! file the old one did not keep: an RDB file last written before the
//! append-only file took over, or an append-only file left from before
//! the RDB took over. A node with no replica to copy its data from (a
//! Standalone pod, a Cluster shard without replicas) would serve that old
//! data, and acknowledged writes would be lost (and others when the
//! persistence went back).
//!
//! So before the pod is deleted, its running server is given the new
//! `save` and `appendonly` settings: turning `appendonly` on writes the
//! append-only file from the data in memory (a rewrite, waited for), and
//! the new `save` schedule makes the shutdown that follows write the RDB
//! file. Whatever the server then reads at its next start holds every
//! write it acknowledged.

use std::time::{Duration, Instant};

use logbook_crds::Persistence;

use super::{ActError, Target};
use crate::resources::SAVE_SCHEDULE;
use crate::valkey::ValkeyClient;

/// How long an append-only rewrite may take before the roll gives up
/// (and is decided again: the pod is not deleted meanwhile).
const REWRITE_LIMIT: Duration = Duration::from_secs(300);

/// `save` and `appendonly` as the configuration renders them for
/// `persistence`.
fn settings(persistence: Persistence) -> (String, &'static str) {
    let save = if persistence.rdb() {
        SAVE_SCHEDULE.to_owned()
    } else {
        String::new()
    };
    (save, if persistence.aof() { "yes" } else { "no" })
}

/// Gives `pod`'s server the spec's persistence before it restarts, and
/// waits for the append-only rewrite that may start. `None`: nothing to
/// do (the settings were in force, or the server does not answer: it has
/// no data in memory to keep). `Some`: what was done, for the outcome.
///
/// # Errors
/// [`ActError::Valkey`] when a setting is refused or the rewrite fails,
/// saying what was already changed; [`ActError::NotYet`] when the
/// rewrite outlasts [`REWRITE_LIMIT`].
pub async fn carry_over(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
) -> Result<Option<String>, ActError> {
    let Ok(addr) = target.addr(pod) else {
        return Ok(None);
    };
    let (save, appendonly) = settings(target.spec.storage.persistence);
    let (Ok(now_save), Ok(now_aof)) = (
        valkey.config_get(addr, "save").await,
        valkey.config_get(addr, "appendonly").await,
    ) else {
        return Ok(None);
    };
    let changed = now_save.as_deref().unwrap_or_default() != save
        || now_aof.as_deref().unwrap_or_default() != appendonly;
    if changed {
        valkey
            .config_set_all(addr, &[("save", &save), ("appendonly", appendonly)])
            .await
            .map_err(|source| ActError::Valkey {
                what: format!("giving {pod} the new persistence before its restart"),
                source,
            })?;
    }
    if appendonly == "yes" {
        let says = RewriteWait {
            already: if changed {
                "appendonly was turned on at runtime; "
            } else {
                ""
            },
            if_failed: "the pod is not restarted",
            if_slow: "the pod is restarted once it ends",
        };
        wait_for_rewrite(valkey, addr, pod, &says).await?;
    }
    Ok(changed.then(|| {
        format!(
            "{pod} was given the new persistence (save {:?}, appendonly {appendonly}){} before its restart",
            save,
            if appendonly == "yes" {
                ", its append-only file written from memory"
            } else {
                ", so that its shutdown writes the RDB file"
            }
        )
    }))
}

/// What a wait for an append-only rewrite says, should it not end well:
/// what was done before it (said first), and what follows a failed and a
/// too long rewrite.
pub(super) struct RewriteWait<'a> {
    /// Said before each error (empty, or ending with "; ").
    pub already: &'a str,
    /// What follows a failed rewrite ("the pod is not restarted").
    pub if_failed: &'a str,
    /// What follows one outlasting the limit ("the pod is restarted once
    /// it ends").
    pub if_slow: &'a str,
}

/// Waits until `pod`'s server has its append-only file on, no rewrite of
/// it running or scheduled, and the last one succeeded.
pub(super) async fn wait_for_rewrite(
    valkey: &ValkeyClient,
    addr: std::net::SocketAddr,
    pod: &str,
    says: &RewriteWait<'_>,
) -> Result<(), ActError> {
    let started = Instant::now();
    let already = says.already;
    loop {
        let info = valkey
            .info_fields(addr, "persistence")
            .await
            .map_err(|source| ActError::Valkey {
                what: format!("{already}reading {pod}'s append-only rewrite"),
                source,
            })?;
        let field = |k: &str| info.get(k).map(String::as_str).unwrap_or_default();
        let busy = field("aof_rewrite_in_progress") == "1"
            || field("aof_rewrite_scheduled") == "1"
            || field("aof_enabled") != "1";
        if !busy {
            if field("aof_last_bgrewrite_status") == "err" {
                return Err(ActError::Refused(format!(
                    "{already}{pod}'s append-only rewrite failed (aof_last_bgrewrite_status: err): its log says why; {}",
                    says.if_failed
                )));
            }
            return Ok(());
        }
        if started.elapsed() > REWRITE_LIMIT {
            return Err(ActError::NotYet(format!(
                "{already}{pod}'s append-only rewrite has run {} s: {}",
                started.elapsed().as_secs(),
                says.if_slow
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_are_the_rendered_ones() {
        for p in [
            Persistence::None,
            Persistence::Rdb,
            Persistence::Aof,
            Persistence::RdbAndAof,
        ] {
            let mut spec = logbook_crds::ValkeyClusterSpec::default();
            spec.storage.persistence = p;
            let conf = crate::resources::render_valkey_conf(&spec);
            let (save, appendonly) = settings(p);
            let save_line = if save.is_empty() {
                "save \"\"".to_owned()
            } else {
                format!("save {save}")
            };
            assert!(conf.contains(&format!("\n{save_line}\n")), "{p:?}: {conf}");
            assert!(
                conf.contains(&format!("\nappendonly {appendonly}\n")),
                "{p:?}"
            );
        }
    }
}
