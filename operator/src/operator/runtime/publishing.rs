//! What the runtime shows people: the status rendered from the
//! projection (written only when it changes, and only after the events it
//! reflects are committed) and Kubernetes Events, a Warning when a
//! condition needs a person (a Cluster's lost quorum).

use super::*;

impl ClusterRuntime {
    /// Whether the status last written says a change of the defaults is
    /// rolling on this cluster.
    pub(in crate::operator) fn defaults_rolling(&self) -> bool {
        self.last_status
            .as_ref()
            .and_then(|s| s.defaults.as_ref())
            .is_some_and(|d| d.rolling)
    }

    /// Publishes a Kubernetes Event on the ValkeyCluster (best effort).
    pub(in crate::operator) async fn publish_event(
        &self,
        kind: Kind,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.events
            .publish(&self.reference, kind, reason, action, note)
            .await;
    }

    /// Writes the status rendered from the projection when it differs from
    /// the last one written (and from what `current` shows), keeping each
    /// condition's transition time while its status is unchanged.
    ///
    /// # Errors
    /// API errors.
    pub async fn publish_status(
        &mut self,
        current: Option<&ValkeyClusterStatus>,
    ) -> Result<(), OperatorError> {
        let backend = self.backend();
        // After a takeover, the projection may predate what moved while
        // nobody watched (a primary that died): publish only once a probe
        // round has been recorded (or there is no pod to probe).
        if self.state.deleted || !self.leading() || (!self.probed && !self.state.pods.is_empty()) {
            return Ok(());
        }
        let ctx = StatusContext {
            name: &self.meta.name,
            namespace: &self.meta.namespace,
            backend,
        };
        let mut status = render_status(&self.state, &ctx);
        if let Some(waiting) = &self.defaults_waiting {
            status.defaults.get_or_insert_with(Default::default).waiting = Some(waiting.clone());
        }
        self.metrics.status(&self.state, &status);
        let previous = self.last_status.as_ref().or(current);
        if let Some(previous) = previous {
            for condition in &mut status.conditions {
                if let Some(old) = previous
                    .conditions
                    .iter()
                    .find(|c| c.type_ == condition.type_ && c.status == condition.status)
                {
                    condition.last_transition_time = old.last_transition_time.clone();
                }
            }
        }
        if previous == Some(&status) {
            self.last_status = Some(status);
            return Ok(());
        }
        // The Degraded reasons already raised, each raised once as an
        // Event.
        let raised_before: Vec<&str> = RAISED
            .iter()
            .filter(|(reason, _)| previous.is_some_and(|p| degraded_by(p, reason).is_some()))
            .map(|(reason, _)| *reason)
            .collect();
        // The status is rendered from the projection, which has folded the
        // observations staged for the next group commit: it must not name
        // a journal seq, or report a fact, that a crash now would lose and
        // that a reader of the journal cannot find yet. Commit first. A
        // store that fails (not a fencing conflict) leaves them staged; the
        // status is published anyway, since it is how people learn of it.
        match self.commit().await {
            Ok(()) => {}
            Err(OperatorError::Journal { source, .. }) if !source.is_conflict() => {
                tracing::warn!(seq = self.state.last_seq, err = %source, "journal commit before the status failed; the events stay staged");
            }
            Err(err) => return Err(err),
        }
        let api: Api<ValkeyCluster> = Api::namespaced(self.client.clone(), &self.meta.namespace);
        let mut body = serde_json::json!(status);
        if let Some(fields) = body.as_object_mut() {
            // A merge patch keeps what it does not name: a reshard that
            // ended, or defaults that no longer reach the cluster, are
            // removed by naming them null.
            if status.reshard.is_none() {
                fields.insert("reshard".to_owned(), serde_json::Value::Null);
            }
            // A standby's status names every field (none is skipped), so
            // one that went is replaced.
            if status.standby.is_none() {
                fields.insert("standby".to_owned(), serde_json::Value::Null);
            }
            // An upgrade that ended goes; one under way names each of its
            // fields, so that a canary that passed is no longer shown.
            match fields.get_mut("upgrade").and_then(|u| u.as_object_mut()) {
                Some(upgrade) => {
                    for (key, gone) in [
                        ("version", serde_json::Value::Null),
                        ("canary", serde_json::Value::Null),
                        ("from", serde_json::json!([])),
                    ] {
                        upgrade.entry(key).or_insert(gone);
                    }
                }
                None => {
                    fields.insert("upgrade".to_owned(), serde_json::Value::Null);
                }
            }
            match fields.get_mut("defaults").and_then(|d| d.as_object_mut()) {
                // Each of its fields named, so one that went is removed.
                Some(defaults) => {
                    for (key, gone) in [
                        ("plan", serde_json::Value::Null),
                        ("fields", serde_json::json!([])),
                        ("waiting", serde_json::Value::Null),
                    ] {
                        defaults.entry(key).or_insert(gone);
                    }
                }
                None => {
                    fields.insert("defaults".to_owned(), serde_json::Value::Null);
                }
            }
        }
        // A merge patch keeps what it does not name: every key the status
        // last written (or read) had and this one lacks, at any depth
        // (a pod no longer waiting for its external address, an endpoint
        // gone), is named null.
        for old in [current, self.last_status.as_ref()].into_iter().flatten() {
            null_what_went(&mut body, &serde_json::json!(old));
        }
        let patch = serde_json::json!({ "status": body });
        match api
            .patch_status(
                &self.meta.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                for (reason, action) in RAISED {
                    let raised =
                        degraded_by(&status, reason).filter(|_| !raised_before.contains(&reason));
                    if let Some(note) = raised {
                        // A failure a person must act on: an Event too,
                        // once per time it arises, not only a condition.
                        self.publish_event(Kind::Warning, reason, action, note)
                            .await;
                    }
                }
                self.last_status = Some(status);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(OperatorError::Kube {
                what: format!("writing the status of {}", self.cluster()),
                source,
            }),
        }
    }
}

/// The Degraded reasons a person must act on, each raised as a Warning
/// Event (with its action) when it arises.
const RAISED: [(&str, &str); 4] = [
    (REASON_QUORUM_LOST, "Failover"),
    (REASON_RESHARD_FAILING, "Reshard"),
    (REASON_DATA_LOST, "Wake"),
    (REASON_POD_NOT_EXITING, "Replace"),
];

/// The message of the status' Degraded condition when it holds for
/// `reason`.
fn degraded_by(status: &ValkeyClusterStatus, reason: &str) -> Option<String> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_DEGRADED && c.status == "True" && c.reason == reason)
        .map(|c| c.message.clone())
}

/// Names null, in `new`, every key `old` has that `new` lacks, and so on
/// down every object both have: a merge patch keeps what it does not
/// name. Arrays are replaced whole by a merge patch, and left as they are.
fn null_what_went(new: &mut serde_json::Value, old: &serde_json::Value) {
    let (Some(new), Some(old)) = (new.as_object_mut(), old.as_object()) else {
        return;
    };
    for (key, was) in old {
        match new.get_mut(key) {
            None => {
                new.insert(key.clone(), serde_json::Value::Null);
            }
            Some(now) => null_what_went(now, was),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn every_key_that_went_is_named_null_at_any_depth() {
        let old = json!({
            "phase": "Ready",
            "reshard": {"from": 3},
            "endpoints": {
                "primary": "a:6379",
                "externalPrimary": "192.0.2.1:30001",
                "external": {"c-0": "192.0.2.1:30002", "c-1": "192.0.2.1:30003"},
                "externalSentinels": ["192.0.2.1:30010"],
            },
            "conditions": [{"type": "Ready"}],
        });
        let mut new = json!({
            "phase": "Ready",
            "endpoints": {
                "primary": "a:6379",
                "external": {"c-0": "192.0.2.1:30002"},
            },
            "conditions": [],
        });
        super::null_what_went(&mut new, &old);
        assert_eq!(
            new,
            json!({
                "phase": "Ready",
                "reshard": null,
                "endpoints": {
                    "primary": "a:6379",
                    "externalPrimary": null,
                    "external": {"c-0": "192.0.2.1:30002", "c-1": null},
                    "externalSentinels": null,
                },
                "conditions": [],
            })
        );
    }
}
