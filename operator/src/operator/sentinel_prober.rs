//! Sentinel: each probe round of a Sentinel cluster first probes every
//! Sentinel (`SENTINEL MASTER`, `REPLICAS`, `SENTINELS`, `MYID`), journals
//! what they published since the last round (one subscription per
//! Sentinel, kept open by a task of its own), then what they report, and
//! then the switch of primary they made, if they made one. The data pods'
//! round follows as for Replication.
//!
//! The published events are journaled before the reports, so that the
//! votes and the leader of a failover are in the journal before the
//! switch that names them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use logbook_journal::Event;
use tokio::sync::{Mutex, mpsc};

use super::pod_tasks::PodTasks;
use super::runtime::ClusterRuntime;
use crate::observe::sentinel::{
    observe_sentinel_event, observe_sentinel_probe, observe_sentinel_switch,
};
use crate::resources::sentinel_master_name;
use crate::valkey::ValkeyClient;

/// How long a lost subscription waits before it is opened again.
const RESUBSCRIBE: Duration = Duration::from_secs(1);
/// The most published events kept between two rounds (a flood is cut,
/// and the cut said in the journal, rather than held in memory).
const MAX_PENDING: usize = 4096;

/// The subscriptions to a cluster's Sentinels, and what they received.
pub struct Watchers {
    subscriptions: PodTasks,
    sender: mpsc::Sender<(String, String, String)>,
    received: mpsc::Receiver<(String, String, String)>,
}

impl Default for Watchers {
    fn default() -> Self {
        let (sender, received) = mpsc::channel(MAX_PENDING);
        Self {
            subscriptions: PodTasks::default(),
            sender,
            received,
        }
    }
}

impl Watchers {
    /// One subscription per Sentinel with an address; others dropped.
    fn sync(&mut self, sentinels: &[(String, Option<SocketAddr>)], client: &ValkeyClient) {
        self.subscriptions.sync(sentinels, |pod, addr| {
            tokio::spawn(follow(
                pod.to_owned(),
                addr,
                client.clone(),
                self.sender.clone(),
            ))
        });
    }

    /// The events received since the last call, as journal events.
    fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok((pod, channel, payload)) = self.received.try_recv() {
            out.extend(observe_sentinel_event(&pod, &channel, &payload));
        }
        out
    }
}

/// Follows the Sentinel at `addr`'s events until aborted, subscribing
/// again whenever the connection is lost.
async fn follow(
    pod: String,
    addr: SocketAddr,
    client: ValkeyClient,
    sender: mpsc::Sender<(String, String, String)>,
) {
    loop {
        if let Ok(mut events) = client
            .subscribe_sentinel_events(addr, Duration::from_secs(1))
            .await
        {
            while let Some(event) = events.next().await {
                if sender
                    .send((pod.clone(), event.channel, event.payload))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// One round of a Sentinel cluster's Sentinels: whether it ran (it does
/// not while this instance does not lead or knows no password yet; the
/// data pods' round must not run either then, or a fresh view of them
/// would meet the Sentinels' view from before: a restarted operator took
/// the old primary's restart, seen before the Sentinels' switch, for a
/// fenced primary to fail over).
///
/// # Errors
/// Journal errors.
pub async fn round(
    rt: &Arc<Mutex<ClusterRuntime>>,
    watchers: &mut Watchers,
) -> Result<bool, super::OperatorError> {
    let (client, sentinels, name) = {
        let mut guard = rt.lock().await;
        if !guard.sync_leadership().await? || !guard.password_known() {
            return Ok(false);
        }
        let sentinels: Vec<(String, Option<SocketAddr>)> = guard
            .state
            .sentinel
            .pods
            .iter()
            .map(|(name, v)| {
                let addr = v.ip.as_deref().and_then(crate::resources::sentinel_addr);
                (name.clone(), addr)
            })
            .collect();
        watchers.sync(&sentinels, guard.probe_client());
        let name = sentinel_master_name(&guard.meta.name);
        (guard.probe_client().clone(), sentinels, name)
    };
    let outcomes = join_all(sentinels.iter().map(|(pod, addr)| {
        let client = client.clone();
        let name = name.clone();
        async move {
            match addr {
                Some(addr) => (
                    pod.clone(),
                    Some(super::prober::settled(|| client.sentinel_probe(*addr, &name)).await),
                ),
                None => (pod.clone(), None),
            }
        }
    }))
    .await;
    let mut guard = rt.lock().await;
    let published = watchers.drain();
    guard.record(published, None).await?;
    let reports: Vec<Event> = outcomes
        .iter()
        .flat_map(|(pod, outcome)| observe_sentinel_probe(&guard.state, pod, outcome.as_ref()))
        .collect();
    guard.record(reports, None).await?;
    if let Some(switch) = observe_sentinel_switch(&guard.state) {
        guard.record_now(vec![switch], None).await?;
    }
    Ok(true)
}
