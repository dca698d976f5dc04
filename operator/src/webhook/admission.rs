//! What the validating webhook answers: an `AdmissionReview` of a change
//! to an object the operator made is refused when it comes from anyone but
//! the operator or Kubernetes' own components, unless the object is no
//! longer marked as the operator's (a cluster unbound), or the change
//! touches only metadata that is not the operator's (a label or an
//! annotation a tool adds), or it is the unbinding itself (the ownership
//! annotation removed from the cluster's StatefulSet). Pure: the review in,
//! the answer out.

use serde_json::{Value, json};

use crate::resources::labels;

/// Who may change the operator's objects besides their users' unbinding.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The operator's own identity as the API server names it
    /// (`system:serviceaccount:<namespace>:<name>`).
    pub operator: String,
}

impl Allowed {
    /// Whether `user` (with `groups`) is the operator or a Kubernetes
    /// component: the controllers and garbage collector (their service
    /// accounts of `kube-system`, [`CONTROLLERS`], and
    /// `system:kube-controller-manager`), the scheduler,
    /// the API server itself and the kubelets (`system:nodes`). Not
    /// `system:masters`: a cluster admin's `kubectl edit` is what the
    /// webhook is for.
    fn privileged(&self, user: &str, groups: &[&str]) -> bool {
        user == self.operator
            || user
                .strip_prefix("system:serviceaccount:kube-system:")
                .is_some_and(|sa| CONTROLLERS.contains(&sa))
            || matches!(
                user,
                "system:kube-controller-manager" | "system:kube-scheduler" | "system:apiserver"
            )
            || groups.contains(&"system:nodes")
    }
}

/// The ServiceAccounts of `kube-system` that kube-controller-manager's
/// controllers run as (`--use-service-account-credentials`) and that
/// write the kinds the webhook watches: the garbage collector and the
/// namespace controller delete them with their owner or namespace, and
/// the workload and endpoint controllers update them. Any other account
/// of `kube-system` (an agent a vendor installs there) is judged as any
/// user is.
const CONTROLLERS: &[&str] = &[
    "generic-garbage-collector",
    "namespace-controller",
    "statefulset-controller",
    "disruption-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "endpointslicemirroring-controller",
    "service-controller",
    "resourcequota-controller",
];

/// The answer to one `AdmissionReview` (`review`, as the API server sent
/// it): an `AdmissionReview` with the request's uid, allowed or refused
/// with the reason. A review that cannot be read is refused, saying why
/// (the API server applies the webhook's `failurePolicy` only to a webhook
/// that does not answer).
#[must_use]
pub fn answer(review: &Value, allowed: &Allowed) -> Value {
    let request = at(review, &["request"]);
    let uid = at(request, &["uid"]).clone();
    let verdict = if request.is_object() {
        judge(request, allowed)
    } else {
        Err("the AdmissionReview has no request".to_owned())
    };
    let response = match verdict {
        Ok(()) => json!({"uid": uid, "allowed": true}),
        Err(message) => json!({
            "uid": uid,
            "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": message},
        }),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// Ok when `request` may go through; the reason it may not otherwise.
fn judge(request: &Value, allowed: &Allowed) -> Result<(), String> {
    let old = at(request, &["oldObject"]);
    let Some(cluster) = at(old, &["metadata", "annotations", labels::OWNED_BY]).as_str() else {
        // Not marked (a cluster unbound, its objects released), or not an
        // object the operator made: not the webhook's.
        return Ok(());
    };
    let user = at(request, &["userInfo", "username"])
        .as_str()
        .unwrap_or("");
    let groups: Vec<&str> = at(request, &["userInfo", "groups"])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if allowed.privileged(user, &groups) {
        return Ok(());
    }
    let kind = at(request, &["kind", "kind"]).as_str().unwrap_or("object");
    let name = at(request, &["name"]).as_str().unwrap_or("");
    let namespace = at(request, &["namespace"]).as_str().unwrap_or("");
    let what =
        format!("{kind} {namespace}/{name} is managed by Logbook for ValkeyCluster {cluster}");
    let unbind = format!(
        "to run it by hand, unbind the cluster first (kubectl annotate statefulset {cluster} {}-)",
        labels::OWNED_BY
    );
    match at(request, &["operation"]).as_str() {
        Some("DELETE") => Err(format!(
            "{what}: {user} may not delete it; delete the ValkeyCluster, or {unbind}"
        )),
        Some("UPDATE") => {
            let new = at(request, &["object"]);
            let mut changed = content_changes(old, new);
            // The generated password Secret's value is its user's to
            // change: that is how the cluster's password is rotated.
            if kind == "Secret"
                && name == logbook_crds::v1alpha1::generated_password_secret(cluster).name
            {
                changed.retain(|f| f != "data" && f != "stringData");
            }
            if !changed.is_empty() {
                return Err(format!(
                    "{what}: {user} may not change {}; change the ValkeyCluster's spec instead, or {unbind}",
                    changed.join(", ")
                ));
            }
            let unbinding = kind == "StatefulSet"
                && name == crate::resources::statefulset_name(cluster)
                && at(new, &["metadata", "annotations", labels::OWNED_BY]).is_null();
            let reserved = reserved_changes(old, new, unbinding);
            if reserved.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {user} may not change the operator's {}; {unbind}",
                    reserved.join(", ")
                ))
            }
        }
        _ => Ok(()),
    }
}

/// The top-level fields, and the fields of `spec` one level down, that
/// differ between `old` and `new`, leaving out metadata and status (a
/// status is its controller's; metadata is judged key by key).
fn content_changes(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        if matches!(key.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
            continue;
        }
        let (a, b) = (at(old, &[key.as_str()]), at(new, &[key.as_str()]));
        if a == b {
            continue;
        }
        match (a.as_object(), b.as_object()) {
            (Some(a), Some(b)) if key == "spec" => {
                let mut inner: Vec<&String> = a.keys().chain(b.keys()).collect();
                inner.sort();
                inner.dedup();
                out.extend(
                    inner
                        .into_iter()
                        .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
                        .map(|k| format!("spec.{k}")),
                );
            }
            _ => out.push(key.clone()),
        }
    }
    out
}

/// The operator's own labels and annotations (`valkey.logbook.dev/*`,
/// `app.kubernetes.io/*`) that differ between `old` and `new`; the
/// ownership annotation's removal is allowed when it is the `unbinding`.
fn reserved_changes(old: &Value, new: &Value, unbinding: bool) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["labels", "annotations"] {
        let (a, b) = (at(old, &["metadata", field]), at(new, &["metadata", field]));
        let mut keys: Vec<&String> = a
            .as_object()
            .into_iter()
            .chain(b.as_object())
            .flat_map(|m| m.keys())
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let ours =
                key.starts_with("valkey.logbook.dev/") || key.starts_with("app.kubernetes.io/");
            if !ours || at(a, &[key.as_str()]) == at(b, &[key.as_str()]) {
                continue;
            }
            if unbinding && field == "annotations" && key == labels::OWNED_BY {
                continue;
            }
            out.push(format!("{} {key}", field.trim_end_matches('s')));
        }
    }
    out
}

/// The value at `path` in `value` (`Null` where there is none).
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .unwrap_or(&NULL)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn allowed() -> Allowed {
        Allowed {
            operator: "system:serviceaccount:ops:logbook".to_owned(),
        }
    }

    fn sts(strategy: &str, annotated: bool) -> Value {
        let annotations = if annotated {
            json!({"valkey.logbook.dev/cr": "demo", "team": "a"})
        } else {
            json!({"team": "a"})
        };
        json!({
            "metadata": {"name": "demo", "labels": {"valkey.logbook.dev/cluster": "demo"},
                "annotations": annotations, "resourceVersion": "7"},
            "spec": {"replicas": 3, "updateStrategy": {"type": strategy}},
            "status": {"replicas": 3},
        })
    }

    fn review(op: &str, user: &str, groups: &[&str], old: &Value, new: &Value) -> Value {
        json!({"request": {
            "uid": "u-1", "operation": op, "name": "demo", "namespace": "default",
            "kind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
            "userInfo": {"username": user, "groups": groups},
            "oldObject": old, "object": new,
        }})
    }

    fn verdict(review: &Value) -> (bool, String) {
        let answer = answer(review, &allowed());
        assert_eq!(answer["response"]["uid"], "u-1");
        (
            answer["response"]["allowed"].as_bool().unwrap_or(false),
            answer["response"]["status"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    }

    #[test]
    fn an_admins_edit_of_a_marked_object_is_refused_saying_why() {
        let r = review(
            "UPDATE",
            "kubernetes-admin",
            &["system:masters", "system:authenticated"],
            &sts("OnDelete", true),
            &sts("RollingUpdate", true),
        );
        let (ok, message) = verdict(&r);
        assert!(!ok);
        assert!(message.contains("spec.updateStrategy"), "{message}");
        assert!(message.contains("ValkeyCluster demo"), "{message}");
        assert!(
            message.contains("kubectl annotate statefulset demo"),
            "{message}"
        );
        let (ok, message) = verdict(&review(
            "DELETE",
            "kubernetes-admin",
            &[],
            &sts("OnDelete", true),
            &Value::Null,
        ));
        assert!(!ok);
        assert!(message.contains("may not delete"), "{message}");
    }

    #[test]
    fn the_operator_components_metadata_and_the_unbinding_go_through() {
        let (old, new) = (sts("OnDelete", true), sts("RollingUpdate", true));
        for (user, groups) in [
            ("system:serviceaccount:ops:logbook", vec![]),
            (
                "system:serviceaccount:kube-system:generic-garbage-collector",
                vec![],
            ),
            ("system:kube-controller-manager", vec![]),
            ("system:node:n1", vec!["system:nodes"]),
        ] {
            assert!(
                verdict(&review("UPDATE", user, &groups, &old, &new)).0,
                "{user}"
            );
        }
        // Another account of kube-system (an agent installed there) is
        // judged as anyone is: it once went through as a controller.
        assert!(
            !verdict(&review(
                "UPDATE",
                "system:serviceaccount:kube-system:vendor-agent",
                &[],
                &old,
                &new
            ))
            .0
        );
        // A label of the user's own.
        let mut labelled = sts("OnDelete", true);
        labelled["metadata"]["labels"]["team"] = json!("b");
        labelled["metadata"]["resourceVersion"] = json!("8");
        assert!(verdict(&review("UPDATE", "alice", &[], &old, &labelled)).0);
        // The unbinding, on the StatefulSet.
        assert!(
            verdict(&review(
                "UPDATE",
                "alice",
                &[],
                &old,
                &sts("OnDelete", false)
            ))
            .0
        );
        // Once unbound, anything.
        assert!(
            verdict(&review(
                "UPDATE",
                "alice",
                &[],
                &sts("OnDelete", false),
                &sts("RollingUpdate", false)
            ))
            .0
        );
        // The operator's own label changed by hand: refused.
        let mut relabelled = sts("OnDelete", true);
        relabelled["metadata"]["labels"]["valkey.logbook.dev/cluster"] = json!("other");
        let (ok, message) = verdict(&review("UPDATE", "alice", &[], &old, &relabelled));
        assert!(!ok);
        assert!(
            message.contains("label valkey.logbook.dev/cluster"),
            "{message}"
        );
        // The generated password Secret's value: a rotation.
        let secret = |password: &str| {
            json!({"metadata": {"name": "demo-password",
                "annotations": {"valkey.logbook.dev/cr": "demo"}},
                "data": {"password": password}, "type": "Opaque"})
        };
        let mut rotation = review("UPDATE", "alice", &[], &secret("YQ=="), &secret("Yg=="));
        rotation["request"]["kind"]["kind"] = json!("Secret");
        rotation["request"]["name"] = json!("demo-password");
        assert!(verdict(&rotation).0);
        rotation["request"]["name"] = json!("demo-connection");
        assert!(!verdict(&rotation).0);
        // A request that cannot be read is refused.
        let answer = answer(&json!({}), &allowed());
        assert_eq!(answer["response"]["allowed"], false);
    }
}
