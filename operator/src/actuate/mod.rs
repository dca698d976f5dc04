//! Executors: carry out one decided intent against Kubernetes (server-side
//! apply, label patches, pod deletion) or Valkey (`REPLICAOF`, pauses),
//! and report what they did as an outcome plus the facts they established
//! (a promotion, a replica's new primary), which the runtime journals.
//!
//! Every action is idempotent: applying the same objects, setting a label
//! it already has, `REPLICAOF` to the primary it follows. Nothing here
//! decides: an intent that no longer makes sense fails with the reason and
//! `decide` looks again.

mod archive;
mod backup;
mod cluster;
mod external;
mod external_objects;
mod hibernation;
mod kube_ops;
mod ownership;
mod persistence;
mod replication;
mod reshard;
mod secret_errors;
mod sentinel;
pub mod service_monitor;
pub mod standby;
mod tls;
mod upgrade;
mod users;

use std::net::SocketAddr;

use logbook_crds::ValkeyClusterSpec;
use logbook_journal::{ClusterState, Event, Intent};

use crate::resources::{ClusterMeta, valkey_addr};
use crate::valkey::{Password, ProbeError, ValkeyClient};

pub use external::replica_announcement;
pub use kube_ops::{read_password, read_password_with_meta};
pub use ownership::owned_metadata;
pub use replication::SWITCHOVER_PAUSE_MS;
pub use reshard::{move_slots, reports_of, settle_slot};
pub use users::{read_connection_ca, set_finalizer as set_user_finalizer};

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done, with the object's name.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A Valkey command failed.
    #[error("{what}: {source}")]
    Valkey {
        /// What was being done, with the pod's name.
        what: String,
        /// The client's error.
        #[source]
        source: ProbeError,
    },
    /// The intent cannot be carried out as decided (pod gone, no address).
    #[error("{0}")]
    Refused(String),
    /// The intent can be retried later (waiting for a Secret, a catch-up).
    #[error("{0}")]
    NotYet(String),
    /// `error`, after the action established `facts` (the phases of a
    /// slot migration job it followed, say): journaled before the failure,
    /// so that what was seen is not lost with it.
    #[error("{error}")]
    WithFacts {
        /// Why the action failed.
        error: Box<ActError>,
        /// What it saw first.
        facts: Vec<Event>,
    },
}

impl ActError {
    /// Whether deciding again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Kube { source, .. } => match source {
                kube::Error::Api(status) => {
                    status.code >= 500 || status.code == 409 || status.code == 429
                }
                _ => true,
            },
            Self::Valkey { source, .. } => source.is_retryable(),
            Self::Refused(_) => false,
            Self::NotYet(_) => true,
            Self::WithFacts { error, .. } => error.is_retryable(),
        }
    }

    /// This failure after `facts` (none: the failure alone).
    #[must_use]
    pub fn with_facts(self, facts: Vec<Event>) -> Self {
        match self {
            _ if facts.is_empty() => self,
            Self::WithFacts {
                error,
                facts: mut first,
            } => {
                first.extend(facts);
                Self::WithFacts {
                    error,
                    facts: first,
                }
            }
            error => Self::WithFacts {
                error: Box::new(error),
                facts,
            },
        }
    }

    /// This failure after `done` was already carried out (said first in
    /// its message, so the journal's `IntentFailed` holds what changed).
    #[must_use]
    pub fn after(self, done: &str) -> Self {
        let said = |what: String| format!("{done}; then {what}");
        match self {
            Self::Kube { what, source } => Self::Kube {
                what: said(what),
                source,
            },
            Self::Valkey { what, source } => Self::Valkey {
                what: said(what),
                source,
            },
            Self::Refused(what) => Self::Refused(said(what)),
            Self::NotYet(what) => Self::NotYet(said(what)),
            Self::WithFacts { error, facts } => Self::WithFacts {
                error: Box::new(error.after(done)),
                facts,
            },
        }
    }

    /// The facts established before the failure, taken out of it.
    pub fn take_facts(&mut self) -> Vec<Event> {
        match self {
            Self::WithFacts { facts, .. } => std::mem::take(facts),
            _ => Vec::new(),
        }
    }
}

/// What an action did.
#[derive(Debug, Default)]
pub struct Done {
    /// For humans (no secrets).
    pub detail: String,
    /// Facts the action established, journaled before its outcome.
    pub events: Vec<Event>,
    /// The data-plane password, when the action read or created it.
    pub password: Option<Password>,
}

impl Done {
    fn said(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            ..Self::default()
        }
    }

    /// The API server answered that `pod` does not exist: journaled as
    /// its deletion, so no decision counts or acts on it until it is
    /// observed again.
    fn gone(pod: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            events: vec![Event::PodDeleted {
                pod: pod.to_owned(),
            }],
            password: None,
        }
    }
}

/// One cluster as an action sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Its identity.
    pub meta: &'a ClusterMeta,
    /// The spec in force.
    pub spec: &'a ValkeyClusterSpec,
    /// The projection (pod addresses, labels).
    pub state: &'a ClusterState,
    /// Set (with the reason) when the runtime needs long actions to stop
    /// waiting and hand back: a slot migration job is then left running,
    /// to be followed again by the next decision.
    pub interrupt: Option<&'a tokio::sync::watch::Receiver<Option<String>>>,
}

impl Target<'_> {
    /// Why the runtime asks this action to hand back, if it does.
    fn interrupted(&self) -> Option<String> {
        self.interrupt.and_then(|rx| rx.borrow().clone())
    }

    /// The address of `pod`, a data pod or a Sentinel, and whether it is a
    /// Sentinel.
    fn any_addr(&self, pod: &str) -> Result<(SocketAddr, bool), ActError> {
        if self.state.sentinel.pods.contains_key(pod) {
            return sentinel::sentinel_addr(self.state, pod).map(|addr| (addr, true));
        }
        self.addr(pod).map(|addr| (addr, false))
    }

    /// The Valkey address of `pod`.
    fn addr(&self, pod: &str) -> Result<SocketAddr, ActError> {
        let ip = self
            .state
            .pods
            .get(pod)
            .and_then(|p| p.ip.as_deref())
            .ok_or_else(|| ActError::Refused(format!("pod {pod} has no known address")))?;
        valkey_addr(ip)
            .ok_or_else(|| ActError::Refused(format!("pod {pod} has an invalid address {ip}")))
    }
}

/// Carries out intents.
#[derive(Clone)]
pub struct Executor {
    client: kube::Client,
    valkey: ValkeyClient,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor using `client` for the API and `valkey` for admin
    /// commands.
    pub fn new(client: kube::Client, valkey: ValkeyClient) -> Self {
        Self { client, valkey }
    }

    /// Fresh cluster reports of `pods` that differ from the projection.
    pub async fn reports_of(&self, target: Target<'_>, pods: &[String]) -> Vec<Event> {
        reshard::reports_of(&self.valkey, target, pods).await
    }

    /// The data-plane client.
    pub fn valkey(&self) -> &ValkeyClient {
        &self.valkey
    }

    /// Carries out `intent`.
    ///
    /// # Errors
    /// [`ActError`]; [`ActError::is_retryable`] says whether to try again.
    pub async fn execute(&self, intent: &Intent, target: Target<'_>) -> Result<Done, ActError> {
        match intent {
            Intent::ApplyResources { generation } => {
                kube_ops::apply_resources(&self.client, target, *generation, None).await
            }
            Intent::RestartPods {
                requested,
                generation,
            } => {
                kube_ops::apply_resources(&self.client, target, *generation, Some(requested)).await
            }
            Intent::PromoteReplica { pod, from } => {
                replication::promote(&self.valkey, target, pod, from.as_deref()).await
            }
            Intent::RepointReplica { pod, to } => {
                replication::repoint(&self.valkey, target, pod, to).await
            }
            Intent::SetRoleLabels { primary } => {
                let primaries: Vec<String> = primary.iter().cloned().collect();
                kube_ops::set_role_labels(&self.client, target, &primaries).await
            }
            Intent::SetShardRoleLabels { primaries } => {
                kube_ops::set_role_labels(&self.client, target, primaries).await
            }
            Intent::PublishBootConfig { primary, ip } => {
                kube_ops::publish_boot(&self.client, target, primary.as_deref(), ip.as_deref())
                    .await
            }
            Intent::Switchover { from, to } => {
                replication::switchover(&self.valkey, &self.client, target, from, to).await
            }
            Intent::ClearSwitchoverRequest => {
                kube_ops::clear_switchover(&self.client, target).await
            }
            Intent::ClearFailoverRequest => {
                kube_ops::clear_failover_request(&self.client, target).await
            }
            Intent::ClearRebalanceRequest => {
                kube_ops::clear_rebalance_request(&self.client, target).await
            }
            Intent::SyncUsers { pod, apply, remove } => {
                users::sync(&self.valkey, &self.client, target, pod, apply, remove).await
            }
            Intent::ReleaseUser { object } => users::release(&self.client, target, object).await,
            Intent::ApplyUserConnection { object } => {
                users::apply_connection(&self.client, target, object).await
            }
            Intent::IssueCertificate { secret } => {
                tls::issue_certificate(&self.client, target, secret).await
            }
            Intent::ReloadCertificate { pods, fingerprint } => {
                tls::reload(&self.valkey, &self.client, target, pods, fingerprint).await
            }
            Intent::DeleteOwnedObjects { delete_pvcs } => {
                kube_ops::delete_owned(&self.client, target, *delete_pvcs).await
            }
            Intent::CreateFingerprintKey => {
                kube_ops::create_fingerprint_key(&self.client, target).await
            }
            Intent::ReleaseObjects => ownership::release(&self.client, target).await,
            Intent::FenceNode { pod } => self.fence_node(target, pod).await,
            Intent::RollPod { pod, revision } => self.roll_pod(target, pod, revision).await,
            Intent::MeetNode { .. }
            | Intent::AssignSlots { .. }
            | Intent::ReplicateShard { .. }
            | Intent::ClusterFailover { .. }
            | Intent::ForgetNode { .. }
            | Intent::ResetReplica { .. }
            | Intent::MoveSlots { .. }
            | Intent::SettleSlot { .. } => self.execute_cluster(intent, target).await,
            Intent::Archive { target: archive } => {
                archive::start(&self.client, target, archive).await
            }
            Intent::StopArchive => Ok(Done::said(
                "the archive is off: its task ends the chains".to_owned(),
            )),
            Intent::DeleteArchiveChain { chain, dir } => {
                archive::delete_chain(&self.client, target, chain, dir).await
            }
            Intent::DropForeignSlots { pod, slots } => {
                archive::drop_foreign_slots(&self.valkey, target, pod, slots).await
            }
            Intent::Announce {
                pod,
                pod_ip,
                endpoint,
            } => external::announce(&self.valkey, target, pod, pod_ip, endpoint.as_ref()).await,
            Intent::SentinelMonitor { .. }
            | Intent::SentinelConfigure { .. }
            | Intent::SentinelTune { .. }
            | Intent::SentinelReset { .. }
            | Intent::SentinelFailover { .. } => self.execute_sentinel(intent, target).await,
            Intent::TakeBackup { .. }
            | Intent::CreateScheduledBackup { .. }
            | Intent::DeleteBackup { .. }
            | Intent::FinishRestore { .. }
            | Intent::PersistForHibernation { .. }
            | Intent::Wake { .. }
            | Intent::PreflightImage { .. }
            | Intent::RemovePreflight { .. }
            | Intent::FollowSource { .. }
            | Intent::PromoteStandby { .. } => self.execute_data(intent, target).await,
            Intent::UpdateStatus | Intent::AddNode { .. } | Intent::MigrateSlots { .. } => {
                Err(ActError::Refused(format!(
                    "{intent:?} is not carried out by this operator version"
                )))
            }
        }
    }

    /// Out of the Service first, then the process, then fresh offsets of
    /// everyone else for the promotion that follows. A pod being deleted
    /// is out of the Service's ready endpoints already, and the fence is
    /// what keeps writes off it: its label moves with the promotion's,
    /// one API write less before it.
    async fn fence_node(&self, target: Target<'_>, pod: &str) -> Result<Done, ActError> {
        let leaving = target.state.pods.get(pod).is_some_and(|p| p.terminating);
        let mut done = if leaving {
            Done::said(format!(
                "{pod} is being deleted: its label moves after the promotion"
            ))
        } else {
            kube_ops::label_pod(&self.client, target, pod, false).await?
        };
        let fenced = replication::fence(&self.valkey, target, pod).await;
        done.detail = format!("{}; {}", done.detail, fenced.detail);
        done.events.extend(fenced.events);
        done.events
            .extend(replication::offsets_of_others(&self.valkey, target, pod).await);
        Ok(done)
    }

    /// A pod rolled: its data first, in the form the new revision reads,
    /// then the pod deleted.
    async fn roll_pod(
        &self,
        target: Target<'_>,
        pod: &str,
        revision: &str,
    ) -> Result<Done, ActError> {
        let carried = persistence::carry_over(&self.valkey, target, pod).await?;
        let deleted = kube_ops::delete_pod(&self.client, target, pod, revision).await;
        let mut done = match (deleted, &carried) {
            (Ok(done), _) => done,
            (Err(e), Some(carried)) => return Err(e.after(carried)),
            (Err(e), None) => return Err(e),
        };
        if let Some(carried) = carried {
            done.detail = format!("{carried}; {}", done.detail);
        }
        Ok(done)
    }

    /// A Valkey Cluster's intents: formation, failovers, nodes, slots.
    async fn execute_cluster(&self, intent: &Intent, target: Target<'_>) -> Result<Done, ActError> {
        match intent {
            Intent::MeetNode { pod, from } => cluster::meet(&self.valkey, target, pod, from).await,
            Intent::AssignSlots { pod, slots } => {
                cluster::assign_slots(&self.valkey, target, pod, slots).await
            }
            Intent::ReplicateShard {
                pod,
                primary,
                node_id,
            } => cluster::replicate(&self.valkey, target, pod, primary, node_id).await,
            Intent::ClusterFailover { pod, from, mode } => {
                cluster::failover(&self.valkey, target, pod, from.as_deref(), *mode).await
            }
            Intent::ForgetNode { node_id, .. } => {
                cluster::forget(&self.valkey, target, node_id).await
            }
            Intent::ResetReplica { pod, node_id } => {
                cluster::reset_replica(&self.valkey, target, pod, node_id).await
            }
            Intent::MoveSlots {
                from,
                from_node,
                to,
                to_node,
                slots,
            } => {
                reshard::move_slots(&self.valkey, target, from, from_node, to, to_node, slots).await
            }
            Intent::SettleSlot {
                slot,
                owner,
                owner_node,
                to,
                to_node,
            } => {
                reshard::settle_slot(
                    &self.valkey,
                    target,
                    *slot,
                    owner,
                    owner_node,
                    to.as_deref(),
                    to_node.as_deref(),
                )
                .await
            }
            _ => Err(ActError::Refused(format!(
                "{} is no Valkey Cluster intent",
                intent.name()
            ))),
        }
    }

    /// The Sentinels' intents.
    async fn execute_sentinel(
        &self,
        intent: &Intent,
        target: Target<'_>,
    ) -> Result<Done, ActError> {
        match intent {
            Intent::SentinelMonitor {
                sentinel,
                primary,
                ip,
                settings,
            } => sentinel::monitor(&self.valkey, target, sentinel, primary, ip, settings).await,
            Intent::SentinelConfigure { sentinel, settings } => {
                sentinel::configure(&self.valkey, target, sentinel, settings).await
            }
            Intent::SentinelTune {
                sentinel,
                info_period_ms,
            } => sentinel::tune(&self.valkey, target, sentinel, *info_period_ms).await,
            Intent::SentinelReset { sentinel } => {
                sentinel::reset(&self.valkey, target, sentinel).await
            }
            Intent::SentinelFailover { from, to } => {
                sentinel::failover(&self.valkey, target, from, to.as_deref()).await
            }
            _ => Err(ActError::Refused(format!(
                "{} is no Sentinel intent",
                intent.name()
            ))),
        }
    }

    /// Intents about the data as a whole: backups and restores,
    /// hibernation, an image's preflight, a standby.
    async fn execute_data(&self, intent: &Intent, target: Target<'_>) -> Result<Done, ActError> {
        match intent {
            Intent::TakeBackup {
                object,
                attempt,
                sources,
            } => backup::take(&self.client, target, object, *attempt, sources).await,
            Intent::CreateScheduledBackup { object } => {
                backup::create_scheduled(&self.client, target, object).await
            }
            Intent::DeleteBackup { object, dir } => {
                backup::delete(&self.client, target, object, dir).await
            }
            Intent::FinishRestore { shards } => {
                backup::finish_restore(&self.client, target, *shards).await
            }
            Intent::PersistForHibernation { primaries, pods } => {
                hibernation::persist(&self.valkey, target, primaries, pods).await
            }
            Intent::Wake { primary, pods } => {
                hibernation::wake(&self.valkey, target, primary.as_deref(), pods).await
            }
            Intent::PreflightImage { image, generation } => {
                upgrade::preflight(&self.client, target, image, *generation).await
            }
            Intent::RemovePreflight { image } => {
                upgrade::remove_preflight(&self.client, target, image).await
            }
            Intent::FollowSource {
                pod, host, port, ..
            } => standby::follow(&self.valkey, target, pod, host, *port).await,
            Intent::PromoteStandby {
                pod,
                host,
                port,
                secret,
            } => {
                let source = standby::SourceAddress {
                    host: host.clone(),
                    port: *port,
                };
                standby::promote(&self.client, &self.valkey, target, pod, &source, secret).await
            }
            _ => Err(ActError::Refused(format!(
                "{} is no backup, hibernation, preflight or standby intent",
                intent.name()
            ))),
        }
    }
}

/// A Valkey command's failure as the intent's error, saying `what` it was
/// doing.
pub(super) fn valkey_err(what: String) -> impl FnOnce(crate::valkey::ProbeError) -> ActError {
    move |source| ActError::Valkey { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_after_a_change_says_the_change_first_and_keeps_its_facts() {
        let failed = ActError::NotYet("deleting pod demo-0: timed out".to_owned())
            .with_facts(vec![Event::PodDeleted {
                pod: "demo-1".to_owned(),
            }])
            .after("demo-0's server given appendonly yes (rewritten)");
        assert_eq!(
            failed.to_string(),
            "demo-0's server given appendonly yes (rewritten); then deleting pod demo-0: timed out"
        );
        assert!(failed.is_retryable());
        let mut failed = failed;
        assert_eq!(failed.take_facts().len(), 1);
    }
}
