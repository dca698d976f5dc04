//! `logbook-bench restart`: how long an operator that just took the Lease
//! needs to rebuild every cluster's projection from ConfigMap journals and
//! decide once on each (issue 6: 100 clusters × 10,000 events, under 2 s).
//!
//! It owns the whole run: an in-process localkube, the seeding of N
//! streams with the life of a Replication cluster (bootstrap, probe rounds,
//! pod restarts, failovers, spec changes and rolls, written through
//! `StreamWriter` over [`ConfigMapStore`] in batches, with a snapshot every
//! `snapshot_every` events exactly as the operator takes them), and the
//! timed passes. Every pass starts from a fresh kube client and fresh store
//! objects, so nothing read by the seeding or an earlier pass is reused;
//! each loaded projection must equal the one the seeding folded, or the
//! run fails (a fast wrong load is no result). A pass loads every cluster
//! one way ([`LoadMode`]): snapshot plus tail over the store, as the
//! operator does; the same through [`ConfigMapStore::pin`], which reads
//! each head once; and from seq 1, the reference the snapshots save
//! against. The modes take turns, pass by pass.
//!
//! The API requests of a load are counted in a separate, untimed pass that
//! runs the same load on its own thread under a `tracing` dispatcher
//! catching kube-rs's per-request span, so the timed passes pay nothing
//! for the counting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use logbook::decide::decide;
use logbook::journal_store::ConfigMapStore;
use logbook::journal_store::layout::{self, HeadRecord};
use logbook_journal::reader::{self, ReadError};
use logbook_journal::snapshot::{self, SnapshotError};
use logbook_journal::writer::WriterError;
use logbook_journal::{ClusterState, Event, StreamId, StreamWriter, Timestamp};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

mod count;
pub(crate) mod life;
mod report;

use count::count_requests;
use life::Life;
pub use report::ModeSummary;

/// The namespace the journals are seeded in.
const NAMESPACE: &str = "logbook-restart-bench";
/// Largest seeding batch (sizes are drawn from 1..=this): the operator
/// group-commits a probe round or a decision's outcomes, rarely more.
const SEED_BATCH_MAX: u64 = 128;
/// Streams seeded at once.
const SEED_CONCURRENCY: usize = 8;

/// Why the bench could not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// localkube, the client or the run's own threads could not start.
    #[error("cannot start {what}: {detail}")]
    Setup {
        /// What was being started.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// A call the bench makes directly (namespace, head inspection) failed.
    #[error("{what}: {source}")]
    Kube {
        /// The call, with the object.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Appending a cluster's seed events failed.
    #[error("seeding cluster {cluster}: {source}")]
    Seed {
        /// The cluster's stream.
        cluster: String,
        /// The writer's error.
        #[source]
        source: Box<WriterError>,
    },
    /// Storing a seed snapshot failed.
    #[error("snapshot of cluster {cluster}: {source}")]
    Snapshot {
        /// The cluster's stream.
        cluster: String,
        /// The snapshot error.
        #[source]
        source: Box<SnapshotError>,
    },
    /// Loading a cluster's projection failed.
    #[error("loading cluster {cluster}: {source}")]
    Load {
        /// The cluster's stream.
        cluster: String,
        /// The reader's error.
        #[source]
        source: Box<ReadError>,
    },
    /// A loaded projection differs from the one the seeding folded.
    #[error("cluster {cluster}: the {mode} load differs from the seeded projection ({detail})")]
    Mismatch {
        /// The cluster's stream.
        cluster: String,
        /// Which load ([`LoadMode::name`]).
        mode: &'static str,
        /// Where it differs.
        detail: String,
    },
    /// A task of the bench panicked or was cancelled.
    #[error("a {what} task failed: {source}")]
    Task {
        /// Which kind of task.
        what: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

type Result<T, E = RestartError> = std::result::Result<T, E>;

/// What to seed and how to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    /// ValkeyClusters (one journal stream each).
    pub clusters: usize,
    /// Events per stream (exactly; `SnapshotTaken` events included).
    pub events: u64,
    /// Events between snapshots, as the operator's `SNAPSHOT_EVERY`.
    pub snapshot_every: u64,
    /// Timed passes of each load mode.
    pub repetitions: usize,
    /// Clusters loaded at once.
    pub concurrency: usize,
    /// Frame bytes at which the seeding seals a segment (the operator's
    /// `layout::DEFAULT_SEAL_BYTES`; smaller in tests, to read segments).
    pub seal_bytes: usize,
}

/// How a pass rebuilds each projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Latest snapshot plus the tail after it (`reader::load_state`) over
    /// the store: what the operator does on start.
    Snapshot,
    /// The same through [`ConfigMapStore::pin`]: the head read once per
    /// load.
    Pinned,
    /// Every event from seq 1 (`reader::load_state_from_start`) over the
    /// store: the reference the snapshot saves against.
    FromStart,
}

impl LoadMode {
    /// Every mode, in the report's order.
    pub const ALL: [LoadMode; 3] = [LoadMode::Snapshot, LoadMode::Pinned, LoadMode::FromStart];

    /// A short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            LoadMode::Snapshot => "snapshot + tail",
            LoadMode::Pinned => "snapshot + tail, head pinned",
            LoadMode::FromStart => "from seq 1",
        }
    }
}

/// One cluster in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterLoad {
    /// Load (all reads, decoding, folding) of its projection.
    pub load: Duration,
    /// The one `decide` on it.
    pub decide: Duration,
    /// Events folded after the snapshot (all of them from seq 1).
    pub folded: u64,
    /// Intents `decide` asked for.
    pub decisions: usize,
}

/// One timed pass over every cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// From the fresh client's creation to the last cluster decided.
    pub total: Duration,
    /// CPU time the whole process (client and localkube) used meanwhile,
    /// when `/proc/self/stat` tells it.
    pub cpu: Option<Duration>,
    /// Per cluster, in stream order.
    pub clusters: Vec<ClusterLoad>,
}

/// Requests one untimed load pass sent, by kind of object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCount {
    /// GETs of head ConfigMaps.
    pub head_gets: u64,
    /// GETs of snapshot ConfigMaps.
    pub snapshot_gets: u64,
    /// GETs of sealed segments.
    pub segment_gets: u64,
    /// Any other request (a load should send none).
    pub other: u64,
}

impl RequestCount {
    /// Every ConfigMap GET.
    pub fn gets(&self) -> u64 {
        self.head_gets
            .saturating_add(self.snapshot_gets)
            .saturating_add(self.segment_gets)
    }
}

/// What the seeding wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedStats {
    /// Wall time of the seeding.
    pub elapsed: Duration,
    /// Appends (head compare-and-swaps) over all streams.
    pub appends: u64,
    /// Snapshots stored over all streams.
    pub snapshots: u64,
    /// Sealed segments the heads name, over all streams.
    pub segments: u64,
    /// Frame bytes of all events (before base64).
    pub frame_bytes: u64,
    /// Frame bytes still in the heads' open segments.
    pub open_bytes: u64,
}

/// The passes of one load mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeRuns {
    /// The mode.
    pub mode: LoadMode,
    /// Its timed passes.
    pub passes: Vec<Pass>,
    /// The requests of one (untimed) pass.
    pub requests: RequestCount,
}

/// Every figure of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartReport {
    /// The configuration measured.
    pub config: RestartConfig,
    /// The seeding.
    pub seed: SeedStats,
    /// One entry per mode, in [`LoadMode::ALL`] order.
    pub modes: Vec<ModeRuns>,
}

/// Seeds, measures and reports.
///
/// # Errors
/// When localkube cannot start, seeding fails, a load fails or a loaded
/// projection differs from the seeded one.
pub async fn run_restart(
    config: RestartConfig,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<RestartReport> {
    let server = logbook_localkube::LocalKube::start(logbook_localkube::Config::default())
        .await
        .map_err(|e| setup("localkube")(e.to_string()))?;
    let url = server.url();
    progress(&format!(
        "seeding {} clusters x {} events (snapshot every {}) ...",
        config.clusters, config.events, config.snapshot_every
    ));
    let (streams, expected, seed) = seed_all(&url, &config).await?;
    progress(&format!(
        "seeded in {:.1} s: {} appends, {} snapshots, {} segments",
        seed.elapsed.as_secs_f64(),
        seed.appends,
        seed.snapshots,
        seed.segments
    ));
    let targets = Arc::new(Targets {
        url,
        streams,
        expected,
    });
    let mut modes: Vec<ModeRuns> = LoadMode::ALL
        .iter()
        .map(|&mode| ModeRuns {
            mode,
            passes: Vec::new(),
            requests: RequestCount::default(),
        })
        .collect();
    // Modes take turns, so a slow spell of the machine hits them alike.
    for run in 0..config.repetitions {
        for runs in &mut modes {
            let pass = load_pass(&targets, runs.mode, config.concurrency).await?;
            progress(&format!(
                "  run {}: {} {} ms",
                run.saturating_add(1),
                runs.mode.name(),
                pass.total.as_millis()
            ));
            runs.passes.push(pass);
        }
    }
    for runs in &mut modes {
        runs.requests = count_requests(&targets, runs.mode, config.concurrency)?;
    }
    server.shutdown().await;
    Ok(RestartReport {
        config,
        seed,
        modes,
    })
}

fn setup(what: &'static str) -> impl FnOnce(String) -> RestartError {
    move |detail| RestartError::Setup { what, detail }
}

fn fresh_client(url: &str) -> Result<kube::Client> {
    let uri = url
        .parse::<http::Uri>()
        .map_err(|e| setup("a client")(e.to_string()))?;
    kube::Client::try_from(kube::Config::new(uri)).map_err(|e| setup("a client")(e.to_string()))
}

/// The clusters of a seeded run and the projections their loads must give.
struct Targets {
    url: String,
    streams: Vec<StreamId>,
    expected: Vec<ClusterState>,
}

async fn seed_all(
    url: &str,
    config: &RestartConfig,
) -> Result<(Vec<StreamId>, Vec<ClusterState>, SeedStats)> {
    let started = Instant::now();
    let client = fresh_client(url)?;
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|source| RestartError::Kube {
            what: format!("create namespace {NAMESPACE}"),
            source,
        })?;
    let store = ConfigMapStore::new(client.clone(), NAMESPACE).with_seal_bytes(config.seal_bytes);
    let permits = Arc::new(Semaphore::new(SEED_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for index in 0..config.clusters {
        let permit = Arc::clone(&permits).acquire_owned().await;
        let (store, config) = (store.clone(), *config);
        tasks.spawn(async move {
            let seeded = seed_one(&store, index, &config).await;
            drop(permit);
            seeded.map(|s| (index, s))
        });
    }
    let mut seeded = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (index, one) = done.map_err(|source| RestartError::Task {
            what: "seeding",
            source,
        })??;
        seeded.insert(index, one);
    }
    let mut stats = SeedStats::default();
    let (mut streams, mut expected) = (Vec::new(), Vec::new());
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    for (_, one) in seeded {
        stats.appends = stats.appends.saturating_add(one.appends);
        stats.snapshots = stats.snapshots.saturating_add(one.snapshots);
        stats.frame_bytes = stats.frame_bytes.saturating_add(one.frame_bytes);
        let name = layout::head_name(&one.stream);
        let head = api.get(&name).await.map_err(|source| RestartError::Kube {
            what: format!("get {name}"),
            source,
        })?;
        if let Ok(record) = HeadRecord::from_config_map(&head) {
            stats.segments = stats
                .segments
                .saturating_add(u64::try_from(record.segments.len()).unwrap_or(u64::MAX));
            stats.open_bytes = stats
                .open_bytes
                .saturating_add(u64::try_from(record.open_bytes()).unwrap_or(u64::MAX));
        }
        streams.push(one.stream);
        expected.push(one.state);
    }
    stats.elapsed = started.elapsed();
    Ok((streams, expected, stats))
}

struct Seeded {
    stream: StreamId,
    state: ClusterState,
    appends: u64,
    snapshots: u64,
    frame_bytes: u64,
}

/// Writes one cluster's life as the operator would: batches appended
/// through a `StreamWriter`, folded into the projection, and a snapshot
/// (then its `SnapshotTaken`) once `snapshot_every` events passed since the
/// last one.
async fn seed_one(store: &ConfigMapStore, index: usize, config: &RestartConfig) -> Result<Seeded> {
    let stream = StreamId::new(
        Uuid::from_u128(0x0b0e_0000_0000_4000_8000_0000_0000_0000 | index as u128).to_string(),
    )
    .map_err(|e| setup("a stream id")(e.to_string()))?;
    let cluster = stream.to_string();
    let seed_err = |source| RestartError::Seed {
        cluster: cluster.clone(),
        source: Box::new(source),
    };
    let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
        .await
        .map_err(seed_err)?;
    let span_us = i64::try_from(config.events)
        .unwrap_or(i64::MAX)
        .saturating_mul(200_000);
    let mut life = Life::new(index, Timestamp::now().0.saturating_sub(span_us));
    let mut state = ClusterState::new();
    let mut out = Seeded {
        stream: stream.clone(),
        state: ClusterState::new(),
        appends: 0,
        snapshots: 0,
        frame_bytes: 0,
    };
    while state.last_seq < config.events {
        let room = config.events.saturating_sub(state.last_seq);
        let n = life.batch_size(SEED_BATCH_MAX).min(room);
        let batch = (0..n).map(|_| life.next()).collect();
        for envelope in writer.append(batch).await.map_err(seed_err)? {
            out.frame_bytes = out.frame_bytes.saturating_add(frame_len(&envelope));
            state.apply(&envelope);
        }
        out.appends = out.appends.saturating_add(1);
        let covered = state.last_snapshot.map_or(0, |(seq, _)| seq);
        // The SnapshotTaken must fit in the stream's length.
        if state.last_seq.saturating_sub(covered) >= config.snapshot_every
            && state.last_seq < config.events
        {
            snapshot::save(store, &stream, &state)
                .await
                .map_err(|source| RestartError::Snapshot {
                    cluster: cluster.clone(),
                    source: Box::new(source),
                })?;
            let (seq, hash) = (state.last_seq, state.last_hash);
            let taken = life.stamp(Event::SnapshotTaken { seq, hash });
            for envelope in writer.append(vec![taken]).await.map_err(seed_err)? {
                out.frame_bytes = out.frame_bytes.saturating_add(frame_len(&envelope));
                state.apply(&envelope);
            }
            out.appends = out.appends.saturating_add(1);
            out.snapshots = out.snapshots.saturating_add(1);
        }
    }
    out.state = state;
    Ok(out)
}

/// The stored size of an appended event (encoded again: the writer keeps
/// only the envelopes).
fn frame_len(envelope: &logbook_journal::Envelope) -> u64 {
    logbook_journal::codec::encode_event(envelope)
        .map_or(0, |e| u64::try_from(e.frame.len()).unwrap_or(u64::MAX))
}

/// One timed pass: a fresh client and store, every cluster loaded (at most
/// `concurrency` at once, each in its own task, as the operator's
/// per-cluster runtimes would) and decided once.
async fn load_pass(targets: &Arc<Targets>, mode: LoadMode, concurrency: usize) -> Result<Pass> {
    let (started, cpu_before) = (Instant::now(), process_cpu());
    let store = ConfigMapStore::new(fresh_client(&targets.url)?, NAMESPACE);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for index in 0..targets.streams.len() {
        // Taken before the spawn, so a cluster's time excludes its wait.
        let permit = Arc::clone(&permits).acquire_owned().await;
        let (store, targets) = (store.clone(), Arc::clone(targets));
        tasks.spawn(async move {
            let loaded = load_one(&store, &targets, index, mode).await;
            drop(permit);
            loaded.map(|l| (index, l))
        });
    }
    let mut clusters = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (index, one) = done.map_err(|source| RestartError::Task {
            what: "load",
            source,
        })??;
        clusters.insert(index, one);
    }
    let total = started.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Pass {
        total,
        cpu,
        clusters: clusters.into_values().collect(),
    })
}

/// User plus system CPU time of this process so far: fields 14 and 15 of
/// `/proc/self/stat`, in clock ticks of 10 ms (Linux's `USER_HZ`).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        user.saturating_add(system).saturating_mul(10),
    ))
}

async fn load_one(
    store: &ConfigMapStore,
    targets: &Targets,
    index: usize,
    mode: LoadMode,
) -> Result<ClusterLoad> {
    let (Some(stream), Some(expected)) = (targets.streams.get(index), targets.expected.get(index))
    else {
        return Err(setup("a load")(format!("no cluster {index}")));
    };
    let started = Instant::now();
    let loaded = match mode {
        LoadMode::Pinned => match store.pin(stream).await {
            Ok(view) => reader::load_state(&view, stream)
                .await
                .map(|l| (l.state, l.folded)),
            Err(e) => Err(ReadError::Store(e)),
        },
        LoadMode::Snapshot => reader::load_state(store, stream)
            .await
            .map(|l| (l.state, l.folded)),
        LoadMode::FromStart => reader::load_state_from_start(store, stream).await.map(|s| {
            let folded = s.last_seq;
            (s, folded)
        }),
    };
    let (state, folded) = loaded.map_err(|source| RestartError::Load {
        cluster: stream.to_string(),
        source: Box::new(source),
    })?;
    let load = started.elapsed();
    let decided = Instant::now();
    let policy = state.policy.clone().unwrap_or_default();
    let decisions = decide(&state, state.last_at, &policy).len();
    let decide_time = decided.elapsed();
    if &state != expected {
        return Err(RestartError::Mismatch {
            cluster: stream.to_string(),
            mode: mode.name(),
            detail: format!(
                "seq {} hash {} against seq {} hash {}",
                state.last_seq, state.last_hash, expected.last_seq, expected.last_hash
            ),
        });
    }
    Ok(ClusterLoad {
        load,
        decide: decide_time,
        folded,
        decisions,
    })
}
