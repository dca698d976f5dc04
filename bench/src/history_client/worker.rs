//! The loop of one logical client, the final read of every key, and what
//! the clients of a run share: the recorder, the clock, the source of
//! unique values and process ids, the counters.
//!
//! A client has one operation outstanding at a time. It records the
//! invocation just before sending and the completion as soon as the answer
//! is in, both read from the one [`Instant`] the run started at. An
//! operation that ended `Unknown` leaves its process behind, as in Jepsen:
//! the client goes on under a new process id (clients start as `0..N`;
//! new ids are handed out from `N` up), because the old call may still
//! take effect at any time. A stop is looked at between operations only:
//! an operation in flight ends by its own deadlines, so a stop never turns
//! an answer into an `Unknown`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logbook_history::{Function, Nanos, Outcome, RecordError, Recorder};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::session::Session;
use super::workload::{HotKeys, Rng, Values, next_function};

/// What every client of a run reads and writes.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) recorder: Mutex<Recorder>,
    epoch: Instant,
    values: Values,
    /// Operations claimed against `max_ops`.
    claimed: AtomicU64,
    /// The next unused process id.
    processes: AtomicU64,
    max_ops: Option<u64>,
    pub(crate) progress: Counters,
    /// The first completion the recorder refused: a bug here, not the
    /// database's; [`super::HistoryClient::stop`] reports it.
    pub(crate) refused: Mutex<Option<RecordError>>,
}

/// Live counts of a run's operations.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) invoked: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) fail: AtomicU64,
    pub(crate) unknown: AtomicU64,
}

impl Shared {
    /// The shared state of `clients` clients, processes `0..clients`.
    pub(crate) fn new(clients: u64, max_ops: Option<u64>) -> Shared {
        Shared {
            recorder: Mutex::new(Recorder::new()),
            epoch: Instant::now(),
            values: Values::new(),
            claimed: AtomicU64::new(0),
            processes: AtomicU64::new(clients),
            max_ops,
            progress: Counters::default(),
            refused: Mutex::new(None),
        }
    }

    /// Nanoseconds since the run started, on the clock of its history.
    pub(crate) fn now(&self) -> Nanos {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(Nanos::MAX)
    }

    /// A process id no one used yet.
    fn new_process(&self) -> u64 {
        self.processes.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether one more operation may start under `max_ops`.
    fn claim(&self) -> bool {
        match self.max_ops {
            None => true,
            Some(max) => self.claimed.fetch_add(1, Ordering::Relaxed) < max,
        }
    }
}

/// How every client of a run behaves.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) keys: HotKeys,
    pub(crate) read_fraction: f64,
    pub(crate) pace: Duration,
    pub(crate) backoff: Duration,
}

/// Runs client `client` until `stop` turns true (or its sender is gone),
/// the run's `max_ops` are used up, or there is nothing to do.
pub(crate) async fn run_client(
    client: u64,
    plan: Arc<Plan>,
    mut session: Session,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(plan.seed, client);
    let mut process = client;
    loop {
        if *stop.borrow() || !shared.claim() {
            break;
        }
        let Some(f) = next_function(&mut rng, &plan.keys, plan.read_fraction, &shared.values)
        else {
            break;
        };
        let outcome = perform(&shared, process, f, &mut session).await;
        if matches!(outcome, Ended::Unknown) {
            process = shared.new_process();
        }
        // Failing fast in a loop (no primary: every connect is refused at
        // once) would only fill the history; a client backs off a little.
        let pause = if matches!(outcome, Ended::Ok) {
            plan.pace
        } else {
            plan.pace.max(plan.backoff)
        };
        if !pause.is_zero() {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// How an operation ended, without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Ok,
    Fail,
    Unknown,
}

/// Invokes `f` as `process`, sends it, and records how it ended.
async fn perform(shared: &Shared, process: u64, f: Function, session: &mut Session) -> Ended {
    let id = {
        let mut recorder = shared.recorder.lock();
        // The time is read under the lock so ids follow invocation times.
        recorder.invoke(process, f.clone(), shared.now())
    };
    shared.progress.invoked.fetch_add(1, Ordering::Relaxed);
    let answer = session.execute(&f).await;
    let (ended, counter) = match &answer.outcome {
        Outcome::Ok(_) => (Ended::Ok, &shared.progress.ok),
        Outcome::Fail(_) => (Ended::Fail, &shared.progress.fail),
        Outcome::Unknown(_) => (Ended::Unknown, &shared.progress.unknown),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let recorded = {
        let mut recorder = shared.recorder.lock();
        let completed = recorder.complete(id, answer.outcome, shared.now());
        match answer.server {
            Some(server) => completed.and(recorder.served_by(id, &*server)),
            None => completed,
        }
    };
    if let Err(err) = recorded {
        shared.refused.lock().get_or_insert(err);
    }
    ended
}

/// Reads every key once, after every client stopped, under a process of
/// its own: each read begins after every acknowledgement of the run, so
/// the list checker can judge the loss of every acknowledged append, not
/// only of those some workload read happened to follow. A read that
/// fails or times out (a loaded machine, a failover just ended) is
/// recorded as such and tried again, [`FINAL_ATTEMPTS`] times at most,
/// [`FINAL_RETRY`] apart: a key left without a final read is a key whose
/// loss is not judged.
pub(crate) async fn read_every_key(keys: &HotKeys, mut session: Session, shared: &Shared) {
    let lists = keys
        .lists
        .iter()
        .map(|key| Function::ReadList { key: key.clone() });
    let registers = keys
        .registers
        .iter()
        .map(|key| Function::ReadRegister { key: key.clone() });
    let mut process = shared.new_process();
    for f in lists.chain(registers) {
        for attempt in 1..=FINAL_ATTEMPTS {
            match perform(shared, process, f.clone(), &mut session).await {
                Ended::Ok => break,
                Ended::Unknown => process = shared.new_process(),
                Ended::Fail => {}
            }
            if attempt < FINAL_ATTEMPTS {
                tokio::time::sleep(FINAL_RETRY).await;
            }
        }
    }
}

/// How many times a final read is tried.
const FINAL_ATTEMPTS: u32 = 5;

/// The pause before a final read is tried again.
const FINAL_RETRY: std::time::Duration = std::time::Duration::from_millis(200);
