//! Leader election on a `coordination.k8s.io/v1` Lease, with the semantics
//! of client-go's `leaderelection` (observed time, resourceVersion-guarded
//! replaces, release on cancel), and the leadership **epoch** the journal
//! fences writers with.
//!
//! This module owns one Lease and publishes [`Leadership`] on a watch
//! channel. It must not act on clusters or the journal: whoever reads the
//! channel starts and stops acting on it.
//!
//! # Epochs
//!
//! The epoch is the Lease's `spec.leaseTransitions`. It is incremented by
//! every write that changes the holder to us (taking over an expired or
//! released Lease, or creating an absent one, which counts as the first
//! transition: **the first leader of a new Lease has epoch 1**), and kept
//! by a renewal or by re-acquiring a Lease that still names us (nobody held
//! it in between, so no other writer can have used a later epoch). Since
//! every write carries the resourceVersion read just before, two holders
//! can never get the same count: epochs strictly increase across holders.
//! Deleting the Lease by hand restarts the count; a candidate that saw a
//! higher count before recreates it above that count, a fresh one cannot
//! know.
//!
//! # Time
//!
//! Expiry is judged on the local monotonic clock, never from `renewTime`
//! (other hosts' clocks): a candidate records when it last saw the record
//! change and treats the Lease as expired when it has not changed for the
//! record's `leaseDurationSeconds`. A leader steps down when it has not
//! renewed for `lease_duration - renew_every`, measured from the *start* of
//! its last successful renewal, so it stops before anyone else can judge
//! the Lease expired. The usual caveat of client-go applies: this tolerates
//! clock offset between hosts, not clocks running at different rates.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// The Lease's name unless configured otherwise.
pub const DEFAULT_LEASE_NAME: &str = "logbook-operator";
/// How long a Lease stays valid without renewal unless configured otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often a leader renews (and a follower retries) unless configured
/// otherwise.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);

/// The Lease and the timing of one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The operator's namespace, where the Lease lives.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This candidate (the pod name). Must be unique among candidates: two
    /// with one identity would both believe they lead.
    pub identity: String,
    /// How long the Lease is valid without renewal; written to the Lease
    /// rounded up to whole seconds (at least one).
    pub lease_duration: Duration,
    /// How often a leader renews and a follower tries to acquire; also the
    /// timeout of each API call. Should be at most a third of
    /// `lease_duration` so a leader gets several tries before it must step
    /// down; more than half is replaced by a third (with a warning).
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// The defaults: Lease `logbook-operator`, valid 15 s, renewed every 5 s.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: DEFAULT_LEASE_NAME.to_owned(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_every: DEFAULT_RENEW_EVERY,
        }
    }
}

/// What this candidate may do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Leadership {
    /// Another candidate holds the Lease, or this one could not renew in
    /// time: do not act.
    #[default]
    Follower,
    /// This candidate holds the Lease in term `epoch` (the Lease's
    /// transition count). A change of epoch without a `Follower` in
    /// between (the channel keeps only the latest value) is a new term.
    Leader {
        /// The Lease's `leaseTransitions` when this term began.
        epoch: u64,
    },
}

impl Leadership {
    /// The epoch when leading.
    pub const fn epoch(&self) -> Option<u64> {
        match self {
            Self::Follower => None,
            Self::Leader { epoch } => Some(*epoch),
        }
    }

    /// Whether this candidate leads.
    pub const fn is_leader(&self) -> bool {
        match self {
            Self::Follower => false,
            Self::Leader { .. } => true,
        }
    }
}

/// Why one attempt to acquire or renew did not finish.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The API server answered with an error (other than the 409/404 of a
    /// lost race, which is an outcome).
    #[error("{op} Lease {namespace}/{name}: {source}")]
    Api {
        /// The request.
        op: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer within `renew_every`.
    #[error("{op} Lease {namespace}/{name}: no answer within {after:?}")]
    Timeout {
        /// The request.
        op: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The bound.
        after: Duration,
    },
}

/// The Lease record as last read and when, on the local clock, it last
/// changed (client-go's observed record and observed time).
#[derive(Debug, Clone, PartialEq)]
struct Observation {
    record: LeaseSpec,
    since: Instant,
}

impl Observation {
    /// Folds a fresh read into the previous observation: an unchanged
    /// record keeps its `since`, so a holder that stopped renewing expires.
    fn update(previous: Option<Self>, record: LeaseSpec, now: Instant) -> Self {
        match previous {
            Some(prev) if prev.record == record => prev,
            Some(_) | None => Self { record, since: now },
        }
    }
}

/// The decision of one attempt, given what was read.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    /// No Lease: create it holding this record.
    Create(LeaseSpec),
    /// Replace the record read (its resourceVersion a precondition) with
    /// this one, held by us.
    Replace(LeaseSpec),
    /// Another candidate holds an unexpired Lease.
    HeldBy(String),
    /// The transition count would overflow: refuse rather than reuse an
    /// epoch.
    Exhausted,
}

/// The timing actually used: `renew_every` bounded so a leader gets at
/// least two tries before it must step down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    lease: Duration,
    renew: Duration,
    /// How long a leader may go without a successful renewal.
    step_down_after: Duration,
}

impl Timing {
    fn of(config: &LeaseConfig) -> Self {
        let lease = config.lease_duration.max(Duration::from_secs(1));
        let renew = if config.renew_every.is_zero() || config.renew_every.saturating_mul(2) > lease
        {
            lease / 3
        } else {
            config.renew_every
        };
        Self {
            lease,
            renew,
            step_down_after: lease.saturating_sub(renew),
        }
    }
}

/// `leaseDurationSeconds` for a duration: whole seconds rounded up, at
/// least one, so followers never wait less than the leader assumes.
fn lease_seconds(duration: Duration) -> i32 {
    let whole = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    i32::try_from(whole.max(1)).unwrap_or(i32::MAX)
}

/// Whether a record's holder is empty (released, or never held).
fn holder_of(record: &LeaseSpec) -> Option<&str> {
    record.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// The epoch a record stands for (a negative count, which only a foreign
/// writer could leave, reads as zero).
fn epoch_of(record: &LeaseSpec) -> u64 {
    u64::try_from(record.lease_transitions.unwrap_or(0)).unwrap_or(0)
}

/// Decides one attempt: `current` is the Lease as just read (`None`:
/// absent), `highest_seen` the largest transition count this candidate has
/// ever read, `now` the local clock and `wall` the time written to the
/// record (informational only, for humans and other tools).
fn decide(
    current: Option<&Observation>,
    highest_seen: i32,
    now: Instant,
    wall: jiff::Timestamp,
    config: &LeaseConfig,
) -> Decision {
    let fresh = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(lease_seconds(config.lease_duration)),
        lease_transitions: Some(transitions),
        acquire_time: Some(acquired.unwrap_or(MicroTime(wall))),
        renew_time: Some(MicroTime(wall)),
        ..LeaseSpec::default()
    };
    let Some(observed) = current else {
        // Creating is the transition from nobody to us.
        return match highest_seen.max(0).checked_add(1) {
            Some(transitions) => Decision::Create(fresh(transitions, None)),
            None => Decision::Exhausted,
        };
    };
    let record = &observed.record;
    let transitions = record.lease_transitions.unwrap_or(0).max(0);
    match holder_of(record) {
        // Still ours: renew (or re-acquire after an outage) in the same term.
        Some(holder) if holder == config.identity => {
            Decision::Replace(fresh(transitions, record.acquire_time.clone()))
        }
        Some(holder) if !expired(observed, now, config) => Decision::HeldBy(holder.to_owned()),
        // Released, never held, or its holder stopped renewing: a new term.
        Some(_) | None => match transitions.checked_add(1) {
            Some(next) => Decision::Replace(fresh(next, None)),
            None => Decision::Exhausted,
        },
    }
}

/// Whether the record has gone unchanged for its own lease duration (the
/// holder's, which after a release is one second), on our clock.
fn expired(observed: &Observation, now: Instant, config: &LeaseConfig) -> bool {
    let valid_for = observed
        .record
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(config.lease_duration, Duration::from_secs);
    observed
        .since
        .checked_add(valid_for)
        .is_none_or(|end| end <= now)
}

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// We hold the Lease in this epoch (acquired or renewed).
    Holding { epoch: u64 },
    /// Another candidate holds it and it has not expired.
    HeldBy(String),
    /// The Lease changed (or vanished) between our read and our write.
    LostRace,
    /// The transition count is exhausted; we will not take the Lease.
    Exhausted,
}

/// When this candidate last read the Lease successfully. A follower that
/// keeps reading it is a healthy standby, ready to take over; one that
/// cannot has lost the API server. Shared with the health endpoint.
#[derive(Debug, Clone, Default)]
pub struct LeaseContact(Arc<std::sync::Mutex<Option<Instant>>>);

impl LeaseContact {
    fn touch(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// How long ago the Lease was last read, `None` before the first read.
    pub fn since(&self) -> Option<Duration> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|at| at.elapsed())
    }
}

/// One candidate's memory between attempts.
struct Candidate {
    api: Api<Lease>,
    config: LeaseConfig,
    timing: Timing,
    observed: Option<Observation>,
    /// The largest transition count ever read: recreating a deleted Lease
    /// starts above it so this candidate never reuses an epoch.
    highest_seen: i32,
    contact: LeaseContact,
}

impl Candidate {
    /// Awaits `call` for at most `renew_every`.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, AttemptError> {
        tokio::time::timeout(self.timing.renew, call)
            .await
            .map_err(|_| AttemptError::Timeout {
                op,
                namespace: self.config.namespace.clone(),
                name: self.config.name.clone(),
                after: self.timing.renew,
            })
    }

    fn api_error(&self, op: &'static str, source: kube::Error) -> AttemptError {
        AttemptError::Api {
            op,
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// Reads the Lease and acquires or renews it when it may.
    async fn try_acquire_or_renew(&mut self) -> Result<Outcome, AttemptError> {
        let name = self.config.name.clone();
        let read = self
            .bounded("get", self.api.get_opt(&name))
            .await?
            .map_err(|e| self.api_error("get", e))?;
        self.contact.touch();
        let now = Instant::now();
        self.observed = read.as_ref().map(|lease| {
            let record = lease.spec.clone().unwrap_or_default();
            Observation::update(self.observed.take(), record, now)
        });
        if let Some(observed) = &self.observed {
            let transitions = observed.record.lease_transitions.unwrap_or(0);
            self.highest_seen = self.highest_seen.max(transitions);
        }
        let decision = decide(
            self.observed.as_ref(),
            self.highest_seen,
            now,
            jiff::Timestamp::now(),
            &self.config,
        );
        let written = match (decision, read) {
            (Decision::HeldBy(holder), _) => return Ok(Outcome::HeldBy(holder)),
            (Decision::Exhausted, _) => return Ok(Outcome::Exhausted),
            (Decision::Create(record), _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(record),
                };
                let pp = PostParams::default();
                self.bounded("create", self.api.create(&pp, &lease)).await?
            }
            (Decision::Replace(record), Some(mut lease)) => {
                // The metadata read, resourceVersion included, goes back
                // unchanged: the write succeeds only over what we decided on.
                lease.spec = Some(record);
                let pp = PostParams::default();
                self.bounded("replace", self.api.replace(&name, &pp, &lease))
                    .await?
            }
            // Unreachable by construction (Replace needs a record read);
            // read again next time rather than guess.
            (Decision::Replace(_), None) => return Ok(Outcome::LostRace),
        };
        match written {
            Ok(lease) => {
                let record = lease.spec.unwrap_or_default();
                let epoch = epoch_of(&record);
                self.observed = Some(Observation::update(
                    self.observed.take(),
                    record,
                    Instant::now(),
                ));
                Ok(Outcome::Holding { epoch })
            }
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                Ok(Outcome::LostRace)
            }
            Err(e) => Err(self.api_error("write", e)),
        }
    }
}

/// Where the loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not leading; trying every `renew_every`.
    Following,
    /// Leading in `epoch`; the last successful renewal started at
    /// `renewed_at`.
    Leading { epoch: u64, renewed_at: Instant },
}

impl State {
    const fn leadership(self) -> Leadership {
        match self {
            Self::Following => Leadership::Follower,
            Self::Leading { epoch, .. } => Leadership::Leader { epoch },
        }
    }
}

/// Publishes `leadership` if it differs from what the channel holds (even
/// when nobody listens yet: a later subscriber reads the current value).
fn publish(tx: &watch::Sender<Leadership>, config: &LeaseConfig, leadership: Leadership) {
    let changed = tx.send_if_modified(|current| {
        let changed = *current != leadership;
        *current = leadership;
        changed
    });
    if changed {
        tracing::info!(
            lease = %format_args!("{}/{}", config.namespace, config.name),
            identity = %config.identity,
            ?leadership,
            "leadership changed"
        );
    }
}

/// Sleeps until a leader must step down for want of renewals; never for a
/// follower.
async fn step_down_deadline(state: State, timing: Timing) {
    match state {
        State::Following => std::future::pending::<()>().await,
        State::Leading { renewed_at, .. } => {
            tokio::time::sleep_until(renewed_at + timing.step_down_after).await;
        }
    }
}

/// A leader's failed renewal is tried again after `renew_every` divided
/// by this.
const RETRIES_PER_RENEW: u32 = 4;

/// How many times in a row a lost race is retried at once (the Lease
/// changed under us: read it again now rather than after `renew_every`).
const RACE_RETRIES: u32 = 2;

/// Runs one candidate until `shutdown` resolves, publishing every change of
/// its [`Leadership`] on `tx`.
///
/// # Guarantees
///
/// - `Leader` is published only after a write naming us succeeded, and
///   `Follower` as soon as the Lease is seen held by someone else, or
///   renewals have failed for `lease_duration - renew_every` since the
///   start of the last successful one — before any other candidate can
///   judge the Lease expired.
/// - On shutdown `Follower` is published first, then the Lease is released
///   (see [`release`]) if it names us, so a successor takes over at once
///   instead of after `lease_duration`.
/// - API errors and timeouts are logged and retried; this never returns
///   early and never panics.
pub async fn run(
    client: kube::Client,
    config: LeaseConfig,
    tx: watch::Sender<Leadership>,
    shutdown: impl Future<Output = ()> + Send,
) {
    run_with_contact(client, config, tx, LeaseContact::default(), shutdown).await;
}

/// [`run`], recording each successful read of the Lease in `contact`.
pub async fn run_with_contact(
    client: kube::Client,
    config: LeaseConfig,
    tx: watch::Sender<Leadership>,
    contact: LeaseContact,
    shutdown: impl Future<Output = ()> + Send,
) {
    let timing = Timing::of(&config);
    if timing.renew != config.renew_every {
        tracing::warn!(
            lease_duration = ?config.lease_duration,
            renew_every = ?config.renew_every,
            using = ?timing.renew,
            "renew_every must be at most half the lease duration; using a third"
        );
    }
    let mut candidate = Candidate {
        api: Api::namespaced(client.clone(), &config.namespace),
        config: config.clone(),
        timing,
        observed: None,
        highest_seen: 0,
        contact,
    };
    let mut shutdown = pin!(shutdown);
    let mut state = State::Following;
    let mut races = 0_u32;
    publish(&tx, &config, state.leadership());
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            () = &mut shutdown => break,
            () = step_down_deadline(state, timing) => {
                state = step_down(state, &config, "renewals failed for too long");
                publish(&tx, &config, state.leadership());
                continue;
            }
            result = candidate.try_acquire_or_renew() => result,
        };
        let mut again_now = false;
        let failed = result.is_err();
        match result {
            Ok(Outcome::Holding { epoch }) => {
                state = State::Leading {
                    epoch,
                    renewed_at: started,
                };
                races = 0;
            }
            Ok(Outcome::HeldBy(holder)) => {
                tracing::debug!(%holder, "Lease held by another candidate");
                state = step_down(state, &config, "the Lease is held by another candidate");
                races = 0;
            }
            Ok(Outcome::LostRace) => {
                tracing::debug!("the Lease changed between read and write");
                races = races.saturating_add(1);
                again_now = races <= RACE_RETRIES;
            }
            Ok(Outcome::Exhausted) => {
                tracing::error!(
                    lease = %format_args!("{}/{}", config.namespace, config.name),
                    "leaseTransitions is at its maximum; not taking the Lease (delete it to reset)"
                );
                state = step_down(state, &config, "leaseTransitions exhausted");
            }
            Err(e) => {
                tracing::warn!(error = %e, leading = state.leadership().is_leader(), "Lease attempt failed");
            }
        }
        // The deadline is checked here too: a failed attempt may end after it.
        if let State::Leading { renewed_at, .. } = state
            && renewed_at.elapsed() >= timing.step_down_after
        {
            state = step_down(state, &config, "renewals failed for too long");
        }
        publish(&tx, &config, state.leadership());
        if again_now {
            continue;
        }
        // A leader whose renewal failed (an API server slow to answer, a
        // dropped connection) tries again sooner, as client-go's retry
        // period does: several tries fit before it must step down, so one
        // slow answer does not end the term.
        let pause = if failed && state.leadership().is_leader() {
            timing.renew / RETRIES_PER_RENEW
        } else {
            timing.renew
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = step_down_deadline(state, timing) => {
                state = step_down(state, &config, "renewals failed for too long");
                publish(&tx, &config, state.leadership());
            }
            () = tokio::time::sleep(pause) => {}
        }
    }
    // Stop acting before anyone else may start: publish, then release.
    publish(&tx, &config, Leadership::Follower);
    match tokio::time::timeout(timing.renew, release(client, &config)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not release the Lease; it expires instead"),
        Err(_) => tracing::warn!("releasing the Lease timed out; it expires instead"),
    }
}

/// Leaves the leading state, logging why.
fn step_down(state: State, config: &LeaseConfig, why: &str) -> State {
    match state {
        State::Following => State::Following,
        State::Leading { epoch, .. } => {
            tracing::warn!(
                lease = %format_args!("{}/{}", config.namespace, config.name),
                identity = %config.identity,
                epoch,
                "stepping down: {why}"
            );
            State::Following
        }
    }
}

/// The record that gives a Lease up: no holder, valid one second, same
/// transition count (client-go's release).
fn released(record: &LeaseSpec, wall: jiff::Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(String::new()),
        lease_duration_seconds: Some(1),
        lease_transitions: record.lease_transitions,
        acquire_time: Some(MicroTime(wall)),
        renew_time: Some(MicroTime(wall)),
        ..LeaseSpec::default()
    }
}

/// Gives the Lease up if it names `config.identity`, so the next candidate
/// acquires it at its next try instead of waiting for it to expire.
/// Stop acting as leader *before* calling this.
///
/// Does nothing when the Lease is absent or held by someone else. The write
/// carries the resourceVersion read, so it never clears another holder; if
/// the Lease changes in between it is read again (a few times).
///
/// # Errors
///
/// The API server's error, or the 409 Conflict of a Lease that kept
/// changing while still naming us.
pub async fn release(client: kube::Client, config: &LeaseConfig) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut attempts = 0_u32;
    loop {
        attempts = attempts.saturating_add(1);
        let Some(mut lease) = api.get_opt(&config.name).await? else {
            return Ok(());
        };
        let record = lease.spec.clone().unwrap_or_default();
        if holder_of(&record) != Some(config.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(released(&record, jiff::Timestamp::now()));
        match api
            .replace(&config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(
                    lease = %format_args!("{}/{}", config.namespace, config.name),
                    identity = %config.identity,
                    "released the Lease"
                );
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 && attempts < 3 => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LeaseConfig {
        LeaseConfig {
            lease_duration: Duration::from_secs(2),
            renew_every: Duration::from_millis(500),
            ..LeaseConfig::new("ns", "me")
        }
    }

    fn held(holder: &str, transitions: i32, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_transitions: Some(transitions),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    fn seen(record: LeaseSpec, since: Instant) -> Observation {
        Observation { record, since }
    }

    fn written(decision: &Decision) -> Option<(&str, i32)> {
        match decision {
            Decision::Create(r) | Decision::Replace(r) => Some((
                r.holder_identity.as_deref().unwrap_or(""),
                r.lease_transitions.unwrap_or(-1),
            )),
            Decision::HeldBy(_) | Decision::Exhausted => None,
        }
    }

    #[test]
    fn an_absent_lease_is_created_as_the_first_transition() {
        let now = Instant::now();
        let d = decide(None, 0, now, jiff::Timestamp::UNIX_EPOCH, &config());
        assert!(matches!(d, Decision::Create(_)));
        assert_eq!(written(&d), Some(("me", 1)));
        let Decision::Create(r) = d else { return };
        assert_eq!(r.lease_duration_seconds, Some(2));
    }

    #[test]
    fn a_recreated_lease_starts_above_every_count_seen() {
        let now = Instant::now();
        let d = decide(None, 7, now, jiff::Timestamp::UNIX_EPOCH, &config());
        assert_eq!(written(&d), Some(("me", 8)));
        let d = decide(None, i32::MAX, now, jiff::Timestamp::UNIX_EPOCH, &config());
        assert_eq!(d, Decision::Exhausted);
    }

    #[test]
    fn our_own_lease_is_renewed_in_the_same_term_even_unexpired() {
        let now = Instant::now();
        let mut record = held("me", 4, 2);
        record.acquire_time = Some(MicroTime(jiff::Timestamp::UNIX_EPOCH));
        let d = decide(
            Some(&seen(record, now)),
            4,
            now,
            jiff::Timestamp::now(),
            &config(),
        );
        assert_eq!(written(&d), Some(("me", 4)));
        let Decision::Replace(r) = d else { return };
        assert_eq!(
            r.acquire_time,
            Some(MicroTime(jiff::Timestamp::UNIX_EPOCH)),
            "a renewal keeps the acquire time"
        );
    }

    #[test]
    fn a_released_or_empty_lease_is_taken_in_a_new_term() {
        let now = Instant::now();
        for holder in [None, Some(String::new())] {
            let record = LeaseSpec {
                holder_identity: holder,
                lease_transitions: Some(3),
                lease_duration_seconds: Some(1),
                ..LeaseSpec::default()
            };
            let d = decide(
                Some(&seen(record, now)),
                3,
                now,
                jiff::Timestamp::UNIX_EPOCH,
                &config(),
            );
            assert_eq!(written(&d), Some(("me", 4)));
        }
    }

    #[test]
    fn another_holder_is_respected_until_its_record_went_unchanged_for_its_duration() {
        let since = Instant::now();
        let record = held("other", 2, 3);
        let at = |d: Duration| {
            decide(
                Some(&seen(record.clone(), since)),
                2,
                since + d,
                jiff::Timestamp::UNIX_EPOCH,
                &config(),
            )
        };
        assert_eq!(at(Duration::ZERO), Decision::HeldBy("other".into()));
        // The record's 3 s count, not our configured 2 s.
        assert_eq!(
            at(Duration::from_millis(2999)),
            Decision::HeldBy("other".into())
        );
        assert_eq!(written(&at(Duration::from_secs(3))), Some(("me", 3)));
    }

    #[test]
    fn a_record_without_duration_uses_ours() {
        let since = Instant::now();
        let record = LeaseSpec {
            holder_identity: Some("other".into()),
            ..LeaseSpec::default()
        };
        let obs = seen(record, since);
        let at = |d| {
            decide(
                Some(&obs),
                0,
                since + d,
                jiff::Timestamp::UNIX_EPOCH,
                &config(),
            )
        };
        assert_eq!(
            at(Duration::from_millis(1999)),
            Decision::HeldBy("other".into())
        );
        assert_eq!(written(&at(Duration::from_secs(2))), Some(("me", 1)));
    }

    #[test]
    fn taking_over_at_the_maximum_count_is_refused() {
        let since = Instant::now();
        let obs = seen(held("", i32::MAX, 1), since);
        let d = decide(
            Some(&obs),
            i32::MAX,
            since,
            jiff::Timestamp::UNIX_EPOCH,
            &config(),
        );
        assert_eq!(d, Decision::Exhausted);
    }

    #[test]
    fn an_unchanged_record_keeps_the_time_it_was_first_seen() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let first = Observation::update(None, held("other", 1, 2), t0);
        assert_eq!(first.since, t0);
        let same = Observation::update(Some(first.clone()), held("other", 1, 2), t1);
        assert_eq!(same.since, t0, "a holder that stopped renewing must expire");
        let renewed = LeaseSpec {
            renew_time: Some(MicroTime(jiff::Timestamp::UNIX_EPOCH)),
            ..held("other", 1, 2)
        };
        let changed = Observation::update(Some(first), renewed, t1);
        assert_eq!(changed.since, t1);
    }

    #[test]
    fn lease_seconds_round_up_and_never_reach_zero() {
        assert_eq!(lease_seconds(Duration::from_secs(15)), 15);
        assert_eq!(lease_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(lease_seconds(Duration::ZERO), 1);
        assert_eq!(lease_seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn timing_leaves_a_leader_several_tries_before_it_steps_down() {
        let t = Timing::of(&LeaseConfig::new("ns", "me"));
        assert_eq!(t.renew, Duration::from_secs(5));
        assert_eq!(t.step_down_after, Duration::from_secs(10));
        let bad = LeaseConfig {
            renew_every: Duration::from_secs(10),
            ..LeaseConfig::new("ns", "me")
        };
        let t = Timing::of(&bad);
        assert_eq!(t.renew, Duration::from_secs(5));
        let zero = LeaseConfig {
            renew_every: Duration::ZERO,
            ..config()
        };
        assert!(Timing::of(&zero).renew > Duration::ZERO);
    }

    #[test]
    fn a_release_clears_the_holder_and_keeps_the_count() {
        let r = released(&held("me", 5, 15), jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(holder_of(&r), None);
        assert_eq!(r.lease_transitions, Some(5));
        assert_eq!(r.lease_duration_seconds, Some(1));
    }

    #[test]
    fn leadership_accessors() {
        assert_eq!(Leadership::Follower.epoch(), None);
        assert!(!Leadership::Follower.is_leader());
        assert_eq!(Leadership::Leader { epoch: 3 }.epoch(), Some(3));
        assert!(Leadership::Leader { epoch: 3 }.is_leader());
    }
}
