//! `journal-bench`: measures the journal on this machine and prints one
//! JSON object.
//!
//! ```text
//! cargo run --release -p logbook-journal --bin journal-bench -- --events 1000000 [--dir DIR] [--durable-samples 2000]
//! ```
//!
//! Measures batched appends into sled, flushed single appends, the fold
//! (read + decode + verify + apply), bytes per event, the raw fsync floor
//! of the disk, and rebuilding 100 projections from snapshot + tail.

use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logbook_journal::ready::now_or_never;
use logbook_journal::{
    ClusterState, Durability, Event, Intent, LinkStatus, NewEvent, PlannedIntent, PodPhase,
    Reachability, Reason, ReasonCode, ReplId, Role, SledStore, StreamId, StreamWriter, reader,
    snapshot,
};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn Error>>;

/// Runs a store future that completes immediately (sled).
fn run<T, E: Error + 'static>(future: impl Future<Output = Result<T, E>>) -> Res<T> {
    match now_or_never(future) {
        Some(result) => result.map_err(Into::into),
        None => Err("store future did not complete synchronously".into()),
    }
}

struct Args {
    events: u64,
    dir: Option<PathBuf>,
    durable_samples: usize,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        events: 1_000_000,
        dir: None,
        durable_samples: 2_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => args.events = value.parse()?,
            "--dir" => args.dir = Some(PathBuf::from(value)),
            "--durable-samples" => args.durable_samples = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

/// xorshift64*: deterministic, dependency-free event mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A realistic mix: mostly role / replication / reachability observations
/// of pods `demo-0..2`, some pod updates, decisions and outcomes.
fn realistic_event(rng: &mut Rng, offset: &mut u64) -> Event {
    let pod = format!("demo-{}", rng.below(3));
    *offset = offset.saturating_add(rng.below(50_000));
    match rng.below(100) {
        0..45 => Event::ReplicationObserved {
            pod,
            link: LinkStatus::Up,
            offset: *offset,
            replid: ReplId([0x5e; 20]),
        },
        45..75 => Event::NodeRoleObserved {
            pod,
            role: Role::Replica,
            primary: Some("demo-0".into()),
        },
        75..85 => Event::PodReachabilityObserved {
            pod,
            reachability: Reachability::Reachable,
        },
        85..90 => Event::PodObserved {
            pod,
            uid: "2f0c1a8e-6b1d-4c55-9a43-0e2a1c3b5d7f".into(),
            ip: Some("10.244.1.17".into()),
            phase: PodPhase::Running,
            ready: true,
            node: Some("node-a".into()),
            revision: Some("demo-6b8f9c7d5".into()),
        },
        90..95 => Event::Decided {
            intents: vec![PlannedIntent {
                intent_id: Uuid::now_v7(),
                intent: Intent::RepointReplica {
                    pod,
                    to: "demo-0".into(),
                },
                reason: Reason {
                    code: ReasonCode::ReplicaMisdirected,
                    detail: "follows demo-1".into(),
                },
            }],
        },
        _ => Event::IntentSucceeded {
            intent_id: Uuid::now_v7(),
            detail: "repointed".into(),
        },
    }
}

fn is_observation(event: &Event) -> bool {
    matches!(
        event,
        Event::ReplicationObserved { .. }
            | Event::NodeRoleObserved { .. }
            | Event::PodReachabilityObserved { .. }
    )
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((last as f64) * p).round() as usize;
    sorted
        .get(index.min(last))
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

#[allow(clippy::cast_precision_loss)]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The bench directory and whether to delete it afterwards.
fn bench_dir(args: &Args) -> Res<(bool, PathBuf)> {
    let (owned, dir) = match &args.dir {
        Some(dir) => (false, dir.clone()),
        None => (
            true,
            std::env::temp_dir().join(format!("journal-bench-{}", std::process::id())),
        ),
    };
    std::fs::create_dir_all(&dir)?;
    Ok((owned, dir))
}

struct AppendResult {
    events_per_s: f64,
    bytes: u64,
    observation_bytes: u64,
    observations: u64,
}

/// Batches of 256 into one stream, flushed per batch (the durable contract).
fn bench_append(store: &SledStore, stream: &StreamId, events: u64) -> Res<AppendResult> {
    let mut writer = run(StreamWriter::open(store.clone(), stream.clone(), 1))?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut offset = 1_000_000u64;
    let mut result = AppendResult {
        events_per_s: 0.0,
        bytes: 0,
        observation_bytes: 0,
        observations: 0,
    };
    let started = Instant::now();
    let mut done = 0u64;
    while done < events {
        let n = (events - done).min(256);
        let batch: Vec<NewEvent> = (0..n)
            .map(|_| NewEvent::now(realistic_event(&mut rng, &mut offset)))
            .collect();
        let (_, encoded) =
            logbook_journal::writer::encode_batch(stream, writer.head(), 1, batch.clone())?;
        for (event, frame) in batch.iter().zip(&encoded) {
            let len = u64::try_from(frame.frame.len())?;
            result.bytes += len;
            if is_observation(&event.body) {
                result.observation_bytes += len;
                result.observations += 1;
            }
        }
        run(writer.append(batch))?;
        done += n;
    }
    let elapsed = started.elapsed();
    // Encoding twice (once for the byte count) is not the writer's cost:
    // subtract nothing, but measure the append-only time separately below.
    result.events_per_s = per_second(events, elapsed);
    Ok(result)
}

/// The same loop without the byte accounting, for the headline number.
fn bench_append_pure(store: &SledStore, stream: &StreamId, events: u64) -> Res<f64> {
    let mut writer = run(StreamWriter::open(store.clone(), stream.clone(), 1))?;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut offset = 1_000_000u64;
    let started = Instant::now();
    let mut done = 0u64;
    while done < events {
        let n = (events - done).min(256);
        let batch: Vec<NewEvent> = (0..n)
            .map(|_| NewEvent::now(realistic_event(&mut rng, &mut offset)))
            .collect();
        run(writer.append(batch))?;
        done += n;
    }
    Ok(per_second(events, started.elapsed()))
}

fn bench_durable(store: &SledStore, samples: usize) -> Res<(Vec<Duration>, Vec<Vec<u8>>)> {
    let stream = StreamId::new("durable")?;
    let mut writer = run(StreamWriter::open(store.clone(), stream.clone(), 1))?;
    let mut rng = Rng(42);
    let mut offset = 0u64;
    let mut latencies = Vec::with_capacity(samples);
    let mut frames = Vec::with_capacity(samples);
    for _ in 0..samples {
        let event = NewEvent::now(realistic_event(&mut rng, &mut offset));
        let (_, encoded) =
            logbook_journal::writer::encode_batch(&stream, writer.head(), 1, vec![event.clone()])?;
        frames.extend(encoded.into_iter().map(|e| e.frame));
        let started = Instant::now();
        run(writer.append_one(event))?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    Ok((latencies, frames))
}

fn bench_raw_fsync(dir: &Path, frames: &[Vec<u8>]) -> Res<f64> {
    let path = dir.join("raw-fsync.log");
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let started = Instant::now();
    for frame in frames {
        file.write_all(frame)?;
        file.sync_data()?;
    }
    let rate = per_second(u64::try_from(frames.len())?, started.elapsed());
    drop(file);
    std::fs::remove_file(path)?;
    Ok(rate)
}

/// 100 streams × 10,000 events, snapshot 100 events before the end; time
/// to load every snapshot and fold every tail after reopening.
fn bench_rebuild(dir: &Path) -> Res<f64> {
    const STREAMS: u64 = 100;
    const EVENTS: u64 = 10_000;
    const TAIL: u64 = 100;
    let path = dir.join("rebuild");
    {
        let store = SledStore::open(&path, Durability::Background)?;
        let mut rng = Rng(7);
        let mut offset = 0u64;
        for s in 0..STREAMS {
            let stream = StreamId::new(format!("cluster-{s:03}"))?;
            let mut writer = run(StreamWriter::open(store.clone(), stream.clone(), 1))?;
            let mut state = ClusterState::new();
            let mut done = 0u64;
            while done < EVENTS {
                let n = (EVENTS - done).min(if done < EVENTS - TAIL {
                    (EVENTS - TAIL - done).min(256)
                } else {
                    256
                });
                let batch = (0..n)
                    .map(|_| NewEvent::now(realistic_event(&mut rng, &mut offset)))
                    .collect();
                for envelope in run(writer.append(batch))? {
                    state.apply(&envelope);
                }
                done += n;
                if done == EVENTS - TAIL {
                    run(snapshot::save(&store, &stream, &state))?;
                }
            }
        }
        store.flush()?;
    }
    let store = SledStore::open(&path, Durability::Background)?;
    let started = Instant::now();
    let mut folded = 0u64;
    for stream in run(logbook_journal::JournalStore::list_streams(&store))? {
        let loaded = run(reader::load_state(&store, &stream))?;
        folded += loaded.folded;
        if loaded.state.last_seq != EVENTS {
            return Err(format!(
                "{stream} rebuilt to {} instead of {EVENTS}",
                loaded.state.last_seq
            )
            .into());
        }
    }
    let elapsed = started.elapsed();
    if folded != STREAMS * TAIL {
        return Err(format!("folded {folded} tail events, expected {}", STREAMS * TAIL).into());
    }
    Ok(elapsed.as_secs_f64() * 1e3)
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let (owned, dir) = bench_dir(&args)?;

    let store = SledStore::open(dir.join("main"), Durability::Flush)?;
    let counted = StreamId::new("bench-counted")?;
    let bytes = bench_append(&store, &counted, args.events.min(200_000))?;
    let stream = StreamId::new("bench")?;
    let append_events_per_s = bench_append_pure(&store, &stream, args.events)?;
    // The same load without a flush per batch: shows what the flush costs.
    let lazy = SledStore::open(dir.join("lazy"), Durability::Background)?;
    let append_unflushed_events_per_s =
        bench_append_pure(&lazy, &stream, args.events.min(200_000))?;
    drop(lazy);

    let started = Instant::now();
    let state = run(reader::load_state_from_start(&store, &stream))?;
    let fold_elapsed = started.elapsed();
    if state.last_seq != args.events {
        return Err(format!("fold reached seq {} of {}", state.last_seq, args.events).into());
    }
    let fold_events_per_s = per_second(args.events, fold_elapsed);

    let (latencies, frames) = bench_durable(&store, args.durable_samples)?;
    let disk_bytes = store.size_on_disk()?;
    drop(store);
    let raw_fsync_appends_per_s = bench_raw_fsync(&dir, &frames)?;
    let rebuild_100x10k_ms = bench_rebuild(&dir)?;

    #[allow(clippy::cast_precision_loss)]
    let bytes_per_event = bytes.bytes as f64 / args.events.clamp(1, 200_000) as f64;
    #[allow(clippy::cast_precision_loss)]
    let bytes_per_observation_event =
        bytes.observation_bytes as f64 / bytes.observations.max(1) as f64;
    let total_events =
        args.events + args.events.min(200_000) + u64::try_from(args.durable_samples)?;
    #[allow(clippy::cast_precision_loss)]
    let sled_disk_bytes_per_event = disk_bytes as f64 / total_events.max(1) as f64;
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let out = serde_json::json!({
        "events": args.events,
        "append_events_per_s": append_events_per_s.round(),
        "append_batch_size": 256,
        "append_flushed_per_batch": true,
        "append_unflushed_events_per_s": append_unflushed_events_per_s.round(),
        "durable_append_p50_us": p50.round(),
        "durable_append_p99_us": p99.round(),
        "durable_samples": args.durable_samples,
        "fold_events_per_s": fold_events_per_s.round(),
        "bytes_per_event": (bytes_per_event * 10.0).round() / 10.0,
        "bytes_per_observation_event": (bytes_per_observation_event * 10.0).round() / 10.0,
        "sled_disk_bytes_per_event": sled_disk_bytes_per_event.round(),
        "raw_fsync_appends_per_s": raw_fsync_appends_per_s.round(),
        "rebuild_100x10k_ms": (rebuild_100x10k_ms * 10.0).round() / 10.0,
        "target_append_200k": append_events_per_s >= 200_000.0,
        "target_fold_1m": fold_events_per_s >= 1_000_000.0,
        "target_bytes_120": bytes_per_observation_event <= 120.0,
        "target_rebuild_1s": rebuild_100x10k_ms < 1000.0,
    });
    println!("{out}");
    if owned {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
