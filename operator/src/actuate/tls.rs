//! TLS certificates: the operator's CA issues the cluster's certificate
//! (`IssueCertificate`), and nodes load renewed files without a restart
//! (`ReloadCertificate`); a Sentinel, which cannot, is restarted.
//!
//! A reload sets the certificate, key and CA file settings to the same
//! paths with one `CONFIG SET`: the server reads files named by these
//! settings again whenever they are set, the same value or not. The
//! connection is then opened afresh, and the certificate the node serves
//! in that handshake is journaled: if the kubelet had not yet updated the
//! mounted files, the node still serves the old one, and the decider asks
//! again a little later.

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use logbook_crds::CertSource;
use logbook_journal::{Event, Timestamp};

use super::kube_ops::kube_err;
use super::secret_errors::secret_write_err;
use super::{ActError, Done, Target};
use crate::observe::freshness;
use crate::resources::{FIELD_MANAGER, tls_file_lines};
use crate::tls::{self, issue};
use crate::valkey::ValkeyClient;

/// Issues the cluster's certificate from its CA (creating the CA on first
/// use) into the Secret `secret`.
pub async fn issue_certificate(
    client: &kube::Client,
    target: Target<'_>,
    secret: &str,
) -> Result<Done, ActError> {
    let meta = target.meta;
    let ns = meta.namespace.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let ca_name = tls::ca_secret_name(&meta.name);
    let now = Timestamp::from(Utc::now());
    let existing = api
        .get_opt(&ca_name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{ca_name}")))?;
    let (ca, created) = match existing.as_ref().map(tls::read_ca) {
        Some(Some(ca)) => (ca, false),
        Some(None) => {
            return Err(ActError::Refused(format!(
                "Secret {ns}/{ca_name} (the cluster's CA) lacks {} or {}: restore it, or delete it to start a new CA (clients must then trust the new one)",
                tls::CA_KEY,
                tls::CA_PRIVATE_KEY
            )));
        }
        None => {
            let ca = issue::new_ca(&meta.name, ns, now, issue::CA_VALIDITY)
                .map_err(|e| ActError::Refused(format!("cannot create the CA: {e}")))?;
            (ca, true)
        }
    };
    // Facts established so far: every failure from here on carries them.
    let mut events = Vec::new();
    if created {
        // Taken before the write, so that nothing can fail between the
        // CA existing and its fact being ready to journal.
        let fingerprint = issue::fingerprint(&ca.cert_pem).map_err(|e| {
            ActError::Refused(format!("the CA just made cannot be fingerprinted: {e}"))
        })?;
        // Created, never overwritten: another writer's CA wins and this
        // issue is tried again with it.
        api.create(
            &kube::api::PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..kube::api::PostParams::default()
            },
            &tls::build_ca_secret(meta, target.spec, &ca),
        )
        .await
        .map_err(secret_write_err(format!("creating Secret {ns}/{ca_name}")))?;
        // A new CA is what clients must trust from now on, whatever
        // becomes of the issue below.
        events.push(Event::CertificateAuthorityCreated {
            secret: ca_name.clone(),
            fingerprint,
        });
    }
    let names = issue::certificate_names(&meta.name, ns, &super::kube_ops::external_hosts(target));
    let leaf = issue::issue_leaf(&ca, &names, now, issue::LEAF_VALIDITY).map_err(|e| {
        ActError::Refused(format!(
            "cannot issue with the CA in Secret {ns}/{ca_name}: {e}"
        ))
        .with_facts(events.clone())
    })?;
    let object = tls::build_certificate_secret(meta, target.spec, secret, &leaf, &ca.cert_pem);
    let applied = api
        .patch(
            secret,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await;
    let written = match applied {
        Ok(written) => written,
        Err(err) => {
            return Err(
                secret_write_err(format!("applying Secret {ns}/{secret}"))(err).with_facts(events),
            );
        }
    };
    // What the Secret holds now, journaled with the outcome: a decision
    // taken before the reconcile reads it again must not issue twice; and
    // a read of the Secret from before this write is stale.
    let (record, _) = tls::read_record(secret, &CertSource::Internal, Some(&object));
    let fingerprint = record.fingerprint.clone().unwrap_or_default();
    if target.state.tls.certificate.as_ref() != Some(&record) {
        events.push(Event::CertificateObserved {
            certificate: record,
        });
        events.extend(freshness::written(
            freshness::secret(secret),
            &written.metadata,
        ));
    }
    Ok(Done {
        detail: format!(
            "{}issued certificate {} into Secret {secret}, valid until {}",
            if created {
                "created the cluster's CA and "
            } else {
                ""
            },
            issue::short_fingerprint(&fingerprint),
            leaf.not_after
        ),
        events,
        password: None,
    })
}

/// Makes the nodes in `pods` load their certificate files again, then
/// reads back which certificate each serves.
pub async fn reload(
    valkey: &ValkeyClient,
    client: &kube::Client,
    target: Target<'_>,
    pods: &[String],
    fingerprint: &str,
) -> Result<Done, ActError> {
    if let [pod] = pods
        && target.state.sentinel.pods.contains_key(pod)
    {
        return restart_sentinel(client, target, pod).await;
    }
    let lines = tls_file_lines();
    let pairs: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|line| line.split_once(' '))
        .collect();
    let mut events = Vec::new();
    let mut taken = Vec::new();
    let mut not_yet = Vec::new();
    for pod in pods {
        // A failure on one pod still journals what the pods before it
        // were seen serving after their reload: the projection must not
        // believe they still serve what they served before.
        let addr = target
            .addr(pod)
            .map_err(|err| err.with_facts(events.clone()))?;
        valkey
            .config_set_all(addr, &pairs)
            .await
            .map_err(|source| {
                ActError::Valkey {
                    what: format!("reloading the certificate files on {pod}"),
                    source,
                }
                .with_facts(events.clone())
            })?;
        // A fresh handshake shows what it serves now.
        valkey.forget(addr).await;
        let served = valkey.served_certificate(addr).await.map_err(|source| {
            ActError::Valkey {
                what: format!("reading the certificate {pod} serves"),
                source,
            }
            .with_facts(events.clone())
        })?;
        if let Some(served) = served {
            if served == fingerprint {
                taken.push(pod.clone());
            } else {
                not_yet.push(pod.clone());
            }
            // Journaled even when unchanged: the time it was last seen
            // is what tells a reload to check again later.
            events.push(Event::CertificateServed {
                pod: pod.clone(),
                fingerprint: served,
            });
        }
    }
    let mut detail = format!("reloaded the certificate files on {}", pods.join(", "));
    if !not_yet.is_empty() {
        detail.push_str(&format!(
            "; {} still serve the old certificate (the mounted files are not updated yet)",
            not_yet.join(", ")
        ));
    }
    Ok(Done {
        detail,
        events,
        password: None,
    })
}

/// A Sentinel has no `CONFIG` to reload its files with: its pod is
/// deleted (on the uid the decision saw), and the StatefulSet starts it
/// again on the certificate as the Secret holds it. It starts monitoring
/// nothing and is pointed at the primary again, as any replaced Sentinel.
async fn restart_sentinel(
    client: &kube::Client,
    target: Target<'_>,
    pod: &str,
) -> Result<Done, ActError> {
    let uid = target
        .state
        .sentinel
        .pods
        .get(pod)
        .and_then(|p| p.uid.clone());
    match super::kube_ops::delete_pod_with_uid(client, &target.meta.namespace, pod, uid).await {
        Ok(_) => Ok(Done::said(format!(
            "deleted Sentinel pod {pod} to restart it on the certificate in the Secret (a Sentinel cannot reload one)"
        ))),
        // Gone already, or another pod by now: nothing of this decision's
        // is left to restart.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Done::said(format!(
            "Sentinel pod {pod} is gone or replaced already"
        ))),
        Err(err) => Err(kube_err(format!(
            "deleting Sentinel pod {pod} to restart it"
        ))(err)),
    }
}
