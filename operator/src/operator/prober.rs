//! The prober: one task per cluster that probes every data pod each
//! `probeIntervalMilliseconds`, records what changed, and lets the
//! runtime decide and act on it.
//!
//! A probe's timeout is the probe interval (at most the client's 1 s
//! connect / 2 s command defaults), so a frozen primary is noticed within
//! one interval and `failureThreshold` timeouts take about
//! `failureThreshold` intervals. When the believed primary refuses, it is
//! probed once more at once: death is acted on after that one
//! confirmation, not after a threshold.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use logbook_journal::{Event, Reachability};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use super::runtime::{ClusterRuntime, SETTLING_INTERVAL};
use super::span::ClusterSpan;
use crate::metrics::Answer;
use crate::observe::{LinkEvidence, ProbeObservation, observe_probe};
use crate::resources::valkey_addr;
use crate::valkey::{Probe, ProbeError, Timeouts, ValkeyClient};

/// How often offsets are recorded when no decision needs them.
const COARSE_OFFSETS: Duration = Duration::from_secs(300);
/// The shortest probe interval honoured.
const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// How long a replica's offset may stand still before, while its primary
/// fails its probes, its link counts as silent: longer than the rendered
/// one-second replication ping period with room for the primary's cron
/// (10 times a second) to be late. A primary that sends nothing for that
/// long is frozen or blocked, never merely idle.
pub(super) const STALLED_AFTER: Duration = Duration::from_millis(1_200);

/// Each replica's offset as it last answered, and since when (by this
/// instance's clock) it has answered that same offset. Kept in memory, not
/// journaled: what is journaled is the link it shows (silent once stalled
/// while its primary fails), never every round's reading.
#[derive(Debug, Default)]
pub(super) struct Stalls(BTreeMap<String, (u64, Instant)>);

impl Stalls {
    /// Records `pod`'s offset at `now`; returns how long it has stood still.
    pub(super) fn update(&mut self, pod: &str, offset: u64, now: Instant) -> Duration {
        match self.0.get_mut(pod) {
            Some((last, since)) if *last == offset => now.saturating_duration_since(*since),
            Some(entry) => {
                *entry = (offset, now);
                Duration::ZERO
            }
            None => {
                self.0.insert(pod.to_owned(), (offset, now));
                Duration::ZERO
            }
        }
    }

    /// Forgets a pod that did not answer: its next answer starts afresh.
    pub(super) fn forget(&mut self, pod: &str) {
        self.0.remove(pod);
    }

    /// One round's answers (each pod's offset, `None` when it did not
    /// answer, and when it was read): which pods' offsets have stood still
    /// past [`STALLED_AFTER`].
    pub(super) fn round<'a>(
        &mut self,
        offsets: impl IntoIterator<Item = (&'a str, Option<u64>, Instant)>,
    ) -> BTreeMap<String, bool> {
        offsets
            .into_iter()
            .map(|(pod, offset, at)| match offset {
                Some(offset) => (
                    pod.to_owned(),
                    self.update(pod, offset, at) >= STALLED_AFTER,
                ),
                None => {
                    self.forget(pod);
                    (pod.to_owned(), false)
                }
            })
            .collect()
    }
}

type Outcome = Result<Probe, ProbeError>;

/// Probes `rt`'s pods until the cluster is deleted or the task aborted,
/// each round in a span of `log`.
pub async fn run(rt: Arc<Mutex<ClusterRuntime>>, log: ClusterSpan) {
    let mut last_offsets = Instant::now();
    let mut last_round: Option<Instant> = None;
    let mut sentinels = super::sentinel_prober::Watchers::default();
    let mut stalls = Stalls::default();
    let mut deaths = super::death_watch::DeathWatch::default();
    let wake = deaths.wake();
    loop {
        let Some(interval) = due(&rt, last_round, &wake).await else {
            return;
        };
        last_round = Some(Instant::now());
        let coarse = last_offsets.elapsed() >= COARSE_OFFSETS;
        let span = log.span();
        // Boxed: a round's state (a whole probe round, a decision) lives
        // only while it runs; the task waits between rounds holding a
        // pointer, not the round's largest state (some 15 KiB a cluster).
        match Box::pin(
            round(&rt, interval, coarse, &mut sentinels, &mut stalls).instrument(span.clone()),
        )
        .await
        {
            Ok(()) => {
                if coarse {
                    last_offsets = Instant::now();
                }
            }
            Err(err) => tracing::warn!(parent: &span, seq = log.seq(), %err, "probe round failed"),
        }
        watch_deaths(&rt, &mut deaths).await;
    }
}

/// Every data pod with its Valkey address, if it has one.
fn pod_addrs(state: &logbook_journal::ClusterState) -> Vec<(String, Option<SocketAddr>)> {
    state
        .pods
        .iter()
        .map(|(name, view)| (name.clone(), view.ip.as_deref().and_then(valkey_addr)))
        .collect()
}

/// Holds a connection open to every data pod while this instance leads
/// (see [`super::death_watch`]), none otherwise.
async fn watch_deaths(
    rt: &Arc<Mutex<ClusterRuntime>>,
    deaths: &mut super::death_watch::DeathWatch,
) {
    let guard = rt.lock().await;
    if !guard.leading() || guard.state.deleted || !guard.password_known() {
        deaths.clear();
        return;
    }
    deaths.sync(&pod_addrs(&guard.state), guard.probe_client());
}

/// Waits until the next round is due and returns the probe interval (its
/// timeouts), or `None` once the cluster is deleted. Rounds start every
/// interval after the last one started: a round slowed by a timeout (a
/// frozen primary) is not followed by a full interval of silence. Right
/// after a Cluster's action (a decision in a round or in a reconcile) the
/// next step waits on seeing its effect, so rounds come every
/// [`SETTLING_INTERVAL`] ([`ClusterRuntime::settling`]); the wait looks
/// again that often, so an action taken meanwhile shortens it. A held
/// connection that closed (`wake`, [`super::death_watch`]) makes the next
/// round due at once.
async fn due(
    rt: &Arc<Mutex<ClusterRuntime>>,
    last_round: Option<Instant>,
    wake: &tokio::sync::Notify,
) -> Option<Duration> {
    loop {
        let (interval, pace) = {
            let guard = rt.lock().await;
            if guard.state.deleted {
                return None;
            }
            let interval = guard
                .state
                .policy
                .as_ref()
                .map_or(Duration::from_millis(500), |p| {
                    Duration::from_millis(p.probe_interval_ms)
                })
                .max(MIN_INTERVAL);
            let pace = if guard.settling() {
                interval.min(SETTLING_INTERVAL)
            } else {
                interval
            };
            (interval, pace)
        };
        let now = Instant::now();
        let Some(due) = last_round.map(|at| at + pace) else {
            return Some(interval);
        };
        if now >= due {
            return Some(interval);
        }
        tokio::select! {
            () = tokio::time::sleep_until(due.min(now + SETTLING_INTERVAL)) => {}
            () = wake.notified() => return Some(interval),
        }
    }
}

/// Probe timeouts for an interval: the interval itself, capped by the
/// client defaults.
pub fn probe_timeouts(interval: Duration) -> Timeouts {
    let defaults = Timeouts::default();
    Timeouts {
        connect: interval.min(defaults.connect),
        command: interval.min(defaults.command),
    }
}

/// Each pod's probe outcome (none without an address) and when it came.
async fn probe_all(
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
) -> Vec<Timed<Probe>> {
    join_all(pods.iter().map(|(name, addr)| async move {
        match addr {
            Some(addr) => {
                let outcome = settled(|| client.probe(*addr)).await;
                (name.clone(), Some(outcome), Instant::now())
            }
            None => (name.clone(), None, Instant::now()),
        }
    }))
    .await
}

/// One pod's probe with the moment it ended: no address (`None`), an
/// answer, or a failure.
pub(super) type Timed<T> = (String, Option<Result<T, ProbeError>>, Instant);

/// When a probe that matters timed out (`timed_out`: the believed
/// primary's, a shard primary's), the other pods answered at the round's
/// start, a whole probe timeout before that failure is recorded: those
/// `again` picks are read again (`probe`), so that what they say of it
/// (their link, their offset standing still) is as fresh as its failure.
/// Their first readings stay in `stalls`, so an offset's stand-still
/// counts from the first reading that showed it. Shared by the
/// Replication and the Cluster probers.
pub(super) async fn read_again<T, Fut>(
    pods: &[(String, Option<SocketAddr>)],
    results: Vec<Timed<T>>,
    timed_out: impl Fn(&Timed<T>) -> bool,
    again: impl Fn(&Timed<T>) -> bool,
    offset: impl Fn(&T) -> u64,
    stalls: &mut Stalls,
    probe: impl FnOnce(Vec<(String, Option<SocketAddr>)>) -> Fut,
) -> Vec<Timed<T>>
where
    Fut: std::future::Future<Output = Vec<Timed<T>>>,
{
    if !results.iter().any(&timed_out) {
        return results;
    }
    let (first, mut out): (Vec<_>, Vec<_>) = results.into_iter().partition(again);
    for (pod, outcome, at) in &first {
        if let Some(Ok(answer)) = outcome {
            stalls.update(pod, offset(answer), *at);
        }
    }
    let others = pods
        .iter()
        .filter(|(name, _)| first.iter().any(|(pod, _, _)| pod == name))
        .cloned()
        .collect();
    out.extend(probe(others).await);
    out
}

/// [`read_again`] for the Replication prober: when the believed primary
/// timed out, every other pod that answered.
async fn read_again_when_the_primary_timed_out(
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
    primary: Option<&str>,
    results: Vec<Timed<Probe>>,
    stalls: &mut Stalls,
) -> Vec<Timed<Probe>> {
    read_again(
        pods,
        results,
        |(name, outcome, _)| {
            Some(name.as_str()) == primary && matches!(outcome, Some(Err(e)) if e.is_slowness())
        },
        |(name, outcome, _)| Some(name.as_str()) != primary && matches!(outcome, Some(Ok(_))),
        |p| p.info.master_repl_offset,
        stalls,
        |others| async move { probe_all(client, &others).await },
    )
    .await
}

/// Runs `probe`, and once more at once when it failed with anything but
/// a refusal (death) or a timeout (slowness): a connection dropped
/// mid-reply, an error or a reply of the wrong shape from a server that
/// then answers is not a fact about the server worth journaling: it would
/// append events to an idle cluster's journal and change its status for
/// nothing. A failure that lasts fails the second probe too and is
/// journaled as before.
pub(super) async fn settled<T, F, Fut>(mut probe: F) -> Result<T, ProbeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProbeError>>,
{
    match probe().await {
        Err(err) if !err.is_death() && !err.is_slowness() => {
            tracing::debug!(%err, "probe failed; probing once more");
            probe().await
        }
        other => other,
    }
}

/// Each pod's role and offset, for the metrics.
fn answers(results: &[(String, Option<Outcome>)]) -> Vec<Answer<'_>> {
    results
        .iter()
        .map(|(pod, outcome)| {
            let answer = match outcome {
                Some(Ok(probe)) => Some((
                    crate::observe::journal_role(probe.info.role),
                    probe.info.master_repl_offset,
                )),
                Some(Err(_)) | None => None,
            };
            (pod.as_str(), answer)
        })
        .collect()
}

fn observation(outcome: &Option<Outcome>) -> ProbeObservation<'_> {
    match outcome {
        None => ProbeObservation::NoAddress,
        Some(Ok(probe)) => ProbeObservation::Answered(probe),
        Some(Err(err)) => ProbeObservation::Failed(err),
    }
}

/// What one probe round probes, taken under the lock and probed without
/// it.
pub(super) struct Targets {
    /// The probe client.
    pub client: ValkeyClient,
    /// Every pod with its Valkey address, if it has one.
    pub pods: Vec<(String, Option<SocketAddr>)>,
    /// The runtime's action count when taken (see
    /// [`ClusterRuntime::actions`]).
    pub actions: u64,
    /// The believed primary (Replication, Sentinel, Standalone).
    pub primary: Option<String>,
}

/// The pods to probe this round, unless this instance does not lead (a
/// leader takes the journal over first if this is a new term; only a
/// leader probes, since observations are journal writes) or no password
/// was read yet.
pub(super) async fn targets(
    rt: &Arc<Mutex<ClusterRuntime>>,
    interval: Duration,
) -> Result<Option<Targets>, super::OperatorError> {
    let mut guard = rt.lock().await;
    if !guard.sync_leadership().await? {
        return Ok(None);
    }
    guard.set_probe_timeouts(probe_timeouts(interval));
    guard.flush_due().await?;
    if !guard.password_known() {
        return Ok(None);
    }
    let pods = pod_addrs(&guard.state);
    Ok(Some(Targets {
        client: guard.probe_client().clone(),
        pods,
        actions: guard.actions(),
        primary: guard.state.replication.primary.clone(),
    }))
}

async fn round(
    rt: &Arc<Mutex<ClusterRuntime>>,
    interval: Duration,
    coarse: bool,
    sentinels: &mut super::sentinel_prober::Watchers,
    stalls: &mut Stalls,
) -> Result<(), super::OperatorError> {
    let (topology, tls_pending) = {
        let guard = rt.lock().await;
        let spec = guard.state.desired_spec().and_then(Result::ok);
        (spec.map(|spec| spec.topology), guard.tls_pending())
    };
    // A TLS cluster is not probed before the operator holds its CA (the
    // reconcile reads it).
    if tls_pending {
        return Ok(());
    }
    if topology.is_some_and(|t| t.is_cluster()) {
        return super::cluster_prober::round(rt, interval, coarse, stalls).await;
    }
    if topology.is_some_and(|t| t.uses_sentinel())
        && !super::sentinel_prober::round(rt, sentinels).await?
    {
        return Ok(());
    }
    let Some(Targets {
        client,
        pods,
        actions,
        primary,
    }) = targets(rt, interval).await?
    else {
        return Ok(());
    };
    if pods.is_empty() {
        return Ok(());
    }
    let results = probe_all(&client, &pods).await;
    let results =
        read_again_when_the_primary_timed_out(&client, &pods, primary.as_deref(), results, stalls)
            .await;
    let stalled = stalls.round(results.iter().map(|(pod, outcome, at)| {
        let offset = match outcome {
            Some(Ok(p)) => Some(p.info.master_repl_offset),
            _ => None,
        };
        (pod.as_str(), offset, *at)
    }));
    let results: Vec<(String, Option<Outcome>)> = results
        .into_iter()
        .map(|(pod, outcome, _)| (pod, outcome))
        .collect();
    let announced = read_announcements(rt, &client, &pods, &results).await;
    for (pod, outcome) in &results {
        if let Some(Err(err)) = outcome {
            // Never the password: errors name the address and the code.
            tracing::debug!(%pod, %err, "probe failed");
        }
    }
    let mut guard = rt.lock().await;
    if guard.actions() != actions {
        // An action ran while these probes were in flight: their answers
        // may predate it (a switchover's old primary still reporting
        // itself primary, its target still a replica). Recording them
        // would undo what the action established; the next round probes
        // afresh.
        return Ok(());
    }
    guard.observe_probes(&answers(&results));
    let ip_to_pod = ip_to_pod(&guard.state);
    let primary = guard.state.replication.primary.clone();
    let primary_failed = results
        .iter()
        .any(|(name, r)| Some(name) == primary.as_ref() && !matches!(r, Some(Ok(_))));
    let want_offsets = coarse || primary_failed || guard.state.switchover_request.is_some();
    let cap = failure_cap(&guard);
    let mut events = observe_round(
        &guard.state,
        &results,
        &stalled,
        &ip_to_pod,
        cap,
        want_offsets,
        primary_failed,
    );
    events.extend(announced.iter().filter_map(|(pod, shown)| {
        crate::observe::external::observe_announced(&guard.state, pod, shown)
    }));
    guard.record(events, None).await?;
    // Confirm a refusal of the primary at once: one more probe.
    if let Some(primary) = primary {
        confirm_refusal(&mut guard, &client, &pods, &primary, &ip_to_pod, cap).await?;
    }
    // A pod answering for the first time: what it holds of the ACL users.
    let acls =
        super::users::read_new_node_acls(&client, &guard.state, guard.fingerprint_key()).await;
    guard.record(acls, None).await?;
    guard.mark_probed();
    guard.act().await?;
    guard.flush_due().await?;
    guard.publish_status(None).await?;
    Ok(())
}

/// What each answering data pod of a Sentinel cluster announces to its
/// primary (`replica-announce-*`), read while external access is on or
/// was (see [`crate::observe::addresses`]); nothing otherwise. A pod that
/// does not answer this read is left out: its probe says why.
async fn read_announcements(
    rt: &Arc<Mutex<ClusterRuntime>>,
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
    results: &[(String, Option<Outcome>)],
) -> Vec<(String, String)> {
    let wanted = {
        let guard = rt.lock().await;
        let state = &guard.state;
        state.sentinel.enabled && (state.external.enabled || !state.external.announced.is_empty())
    };
    if !wanted {
        return Vec::new();
    }
    let answered = pods.iter().filter_map(|(pod, addr)| {
        let ok = results
            .iter()
            .any(|(p, r)| p == pod && matches!(r, Some(Ok(_))));
        Some((pod, (*addr)?)).filter(|_| ok)
    });
    join_all(answered.map(|(pod, addr)| async move {
        crate::actuate::replica_announcement(client, addr, pod)
            .await
            .ok()
            .map(|shown| (pod.clone(), shown))
    }))
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// Each pod's name by its address (its own, and its external endpoint:
/// see [`crate::observe::addresses`]), and a standby's source (no pod: a
/// replica of its address follows it), by its address now and the one
/// its leader was pointed at.
fn ip_to_pod(state: &logbook_journal::ClusterState) -> BTreeMap<(String, u16), String> {
    let mut ip_to_pod = crate::observe::addresses::pods_by_address(state);
    if let Some(standby) = state.standby.as_ref() {
        let hosts = standby
            .address
            .iter()
            .cloned()
            .chain(standby.leader.iter().map(|(_, h, p)| (h.clone(), *p)));
        for at in hosts {
            ip_to_pod.insert(
                at,
                logbook_journal::projection::replication::STANDBY_SOURCE.to_owned(),
            );
        }
    }
    ip_to_pod
}

/// What one round of probes adds to the journal, pod by pod.
fn observe_round(
    state: &logbook_journal::ClusterState,
    results: &[(String, Option<Outcome>)],
    stalled: &BTreeMap<String, bool>,
    ip_to_pod: &BTreeMap<(String, u16), String>,
    cap: u32,
    want_offsets: bool,
    primary_failed: bool,
) -> Vec<Event> {
    let primary = state.replication.primary.clone();
    let mut per_pod: Vec<(bool, Vec<Event>)> = Vec::new();
    let awaiting_switch = awaiting_sentinel_switch(state);
    for (name, outcome) in results {
        // Only pods still known (one may have been deleted meanwhile).
        if state.pods.contains_key(name) {
            let primary_now = matches!(
                outcome,
                Some(Ok(p)) if crate::observe::journal_role(p.info.role) == logbook_journal::Role::Primary
            );
            if primary_now && awaiting_switch.is_some_and(|believed| believed != name.as_str()) {
                // Sentinel promoted it while the believed primary does not
                // answer: journaled with the Sentinels' switch, which
                // says who decided it, and not before as a second primary.
                continue;
            }
            // A replica of a primary failing this round: is it hearing
            // from it? (The corroboration a timeout needs: see
            // `decide/replication/failover.rs`.)
            let follows_failing = primary_failed
                && state.pods.get(name).and_then(|v| v.replicates.as_ref()) == primary.as_ref();
            let evidence = LinkEvidence {
                primary_failing: follows_failing,
                stalled: stalled.get(name.as_str()).copied().unwrap_or(false),
            };
            per_pod.push((
                primary_now,
                observe_probe(
                    state,
                    name,
                    &observation(outcome),
                    ip_to_pod,
                    cap,
                    want_offsets,
                    evidence,
                ),
            ));
        }
    }
    // The pods answering as replicas first: a hand-over seen within one
    // round (Sentinel's, between two probes) is journaled as the old
    // primary stepping down before the new one stepping up, never as two
    // primaries at once, which neither was.
    per_pod.sort_by_key(|(primary_now, _)| *primary_now);
    let events: Vec<Event> = per_pod.into_iter().flat_map(|(_, e)| e).collect();
    events
}

/// A primary that refused is probed once more at once, so that its death
/// is confirmed without waiting for the next round.
async fn confirm_refusal(
    guard: &mut ClusterRuntime,
    client: &ValkeyClient,
    pods: &[(String, Option<SocketAddr>)],
    primary: &str,
    ip_to_pod: &BTreeMap<(String, u16), String>,
    cap: u32,
) -> Result<(), super::OperatorError> {
    let refused = guard.state.pods.get(primary).is_some_and(|v| {
        matches!(
            v.reachability,
            Some(Reachability::Refused | Reachability::NoAddress)
        ) && v.consecutive_failures < crate::decide::DEATH_CONFIRMATIONS
    });
    if refused {
        let addr = pods
            .iter()
            .find(|(n, _)| n == primary)
            .and_then(|(_, a)| *a);
        let outcome = match addr {
            Some(addr) => Some(settled(|| client.probe(addr)).await),
            None => None,
        };
        let events = observe_probe(
            &guard.state,
            primary,
            &observation(&outcome),
            ip_to_pod,
            cap,
            true,
            LinkEvidence::default(),
        );
        guard.record(events, None).await?;
    }
    Ok(())
}

/// Topology Sentinel: the believed primary, when it was last seen as
/// primary and does not answer now. A pod answering as primary meanwhile
/// was promoted by the Sentinels (or is a real second primary, journaled
/// as one once the believed primary answers again); its observation waits
/// for their switch.
fn awaiting_sentinel_switch(state: &logbook_journal::ClusterState) -> Option<&str> {
    if !state.sentinel.enabled {
        return None;
    }
    let believed = state.replication.primary.as_deref()?;
    let view = state.pods.get(believed)?;
    (view.role == Some(logbook_journal::Role::Primary)
        && view.reachability != Some(Reachability::Reachable))
    .then_some(believed)
}

/// Consecutive failures worth recording: enough for every decision that
/// counts them — death confirmation, the failure threshold — and enough to
/// span the time a slow primary must keep failing
/// ([`Policy::unreachable_after_ms`](logbook_journal::Policy::unreachable_after_ms)), and the node timeout a
/// Cluster's takeover on quorum loss waits: `decide` measures that span
/// up to the last event, so a failure must be recorded past it. More of the
/// same failure changes no decision and is not recorded.
pub(super) fn failure_cap(rt: &ClusterRuntime) -> u32 {
    let policy = rt.state.policy.clone().unwrap_or_default();
    let interval = i64::try_from(policy.probe_interval_ms.max(1)).unwrap_or(i64::MAX);
    // A Cluster allowed to take over on quorum loss waits the node
    // timeout out on journaled failures too.
    let takeover = crate::decide::ClusterView::new(&rt.state)
        .map_or(0, |view| crate::decide::takeover_span_ms(&view));
    let span = policy.unreachable_after_ms().max(takeover) / interval;
    let span = u32::try_from(span).unwrap_or(u32::MAX).saturating_add(2);
    policy
        .failure_threshold
        .max(crate::decide::DEATH_CONFIRMATIONS)
        .max(span)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::Cell;
    use std::net::SocketAddr;

    use super::settled;
    use crate::valkey::ProbeError;

    fn addr() -> SocketAddr {
        "10.0.0.1:6379".parse().unwrap()
    }

    #[test]
    fn an_offset_stands_still_from_its_first_answer_until_it_moves() {
        let t0 = tokio::time::Instant::now();
        let mut stalls = super::Stalls::default();
        let ms = std::time::Duration::from_millis;
        assert_eq!(stalls.update("r", 10, t0), ms(0));
        assert_eq!(stalls.update("r", 10, t0 + ms(700)), ms(700));
        assert_eq!(stalls.update("r", 11, t0 + ms(900)), ms(0));
        assert_eq!(stalls.update("r", 11, t0 + ms(1_400)), ms(500));
        // A pod that did not answer starts afresh.
        stalls.forget("r");
        assert_eq!(stalls.update("r", 11, t0 + ms(1_500)), ms(0));
    }

    #[test]
    fn decide_counts_a_timeout_no_longer_than_the_probe_waited() {
        // decide derives when a failed probe was sent from the shortest
        // wait a probe's timeouts allow: it must not exceed them.
        let defaults = crate::valkey::Timeouts::default();
        let cap = u64::try_from(crate::decide::PROBE_CONNECT_TIMEOUT_MS).unwrap();
        assert_eq!(defaults.connect, std::time::Duration::from_millis(cap));
        assert!(defaults.command >= defaults.connect);
        for interval in [50, 400, 1_000, 5_000] {
            let policy = logbook_journal::Policy {
                probe_interval_ms: interval,
                ..Default::default()
            };
            let t = super::probe_timeouts(std::time::Duration::from_millis(interval));
            let assumed =
                std::time::Duration::from_millis(u64::try_from(policy.probe_timeout_ms()).unwrap());
            assert!(
                assumed <= t.connect && assumed <= t.command,
                "{interval}: {t:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_io_error_is_probed_once_more_and_the_answer_kept() {
        let calls = Cell::new(0);
        let got = settled(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n == 1 {
                    Err(ProbeError::Io {
                        addr: addr(),
                        detail: "connection reset".into(),
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!((got.ok(), calls.get()), (Some(2), 2));
    }

    #[tokio::test]
    async fn an_error_reply_is_probed_once_more_and_a_lasting_one_reported() {
        let rejected = || ProbeError::Rejected {
            addr: addr(),
            command: "INFO",
            message: "ERR something transient".into(),
        };
        let calls = Cell::new(0);
        let got = settled(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n == 1 { Err(rejected()) } else { Ok(n) } }
        })
        .await;
        assert_eq!((got.ok(), calls.get()), (Some(2), 2));
        let calls = Cell::new(0);
        let got: Result<(), ProbeError> = settled(|| {
            calls.set(calls.get() + 1);
            async { Err(rejected()) }
        })
        .await;
        assert_eq!(calls.get(), 2);
        assert!(matches!(got, Err(ProbeError::Rejected { .. })));
    }

    #[tokio::test]
    async fn death_and_slowness_are_reported_from_the_first_probe() {
        for err in [
            ProbeError::Refused { addr: addr() },
            ProbeError::TimedOut {
                addr: addr(),
                phase: crate::valkey::Phase::Command,
                after_ms: 500,
            },
        ] {
            let calls = Cell::new(0);
            let first = err.to_string();
            let got: Result<(), ProbeError> = settled(|| {
                calls.set(calls.get() + 1);
                let err = ProbeError::Refused { addr: addr() };
                let out = if first.contains("refused") {
                    err
                } else {
                    ProbeError::TimedOut {
                        addr: addr(),
                        phase: crate::valkey::Phase::Command,
                        after_ms: 500,
                    }
                };
                async move { Err(out) }
            })
            .await;
            assert_eq!(calls.get(), 1, "{first}");
            assert_eq!(got.unwrap_err().to_string(), first);
        }
    }
}
