//! The cluster's archive task: while this instance leads and the `Archive`
//! intent is in force, one follower per shard reads the shard's
//! replication stream as a replica of one of its replicas (of the primary
//! when it has none) and ships it into the bucket (`backup::archiver`).
//!
//! Which pod each shard is read from is the core's choice
//! (`archive_sources`, from the projection); a follower whose shard moved
//! (a failover, a switchover, a reshard) is stopped, flushed, and
//! reconnected to the new source with its position: the chain goes on
//! without a gap when the source accepts it (`+CONTINUE`), and a new chain
//! begins when it cannot (`+FULLRESYNC`). Every chain begun, followed and
//! ended is journaled (`ArchiveChainStarted`, `ArchiveFollowed`,
//! `ArchiveChainEnded`); nothing is journaled or streamed by an instance
//! that does not lead. A new leader resumes the chains the journal shows
//! live from their last uploaded segment.
//!
//! The task holds the runtime's lock only to read the projection and to
//! journal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use logbook_journal::{ArchiveChain, BackupSource, BackupTarget, Event, SlotRange, Timestamp};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::runtime::ClusterRuntime;
use super::span::ClusterSpan;
use crate::backup::NodeAccess;
use crate::backup::archiver::{
    ChainMeta, ChainWriter, FollowEnd, FollowNote, FollowTarget, SourceInfo, follow,
};
use crate::backup::credentials;
use crate::backup::segment::chain_dir;
use crate::backup::store::BackupStore;
use crate::resources::valkey_addr;
use crate::valkey::{FOLLOW_IDLE_TIMEOUT, Timeouts};

/// How often the task compares the followers with the projection.
const TICK: Duration = Duration::from_secs(1);
/// How long a follower waits before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(2);
/// How long a follower whose source was lost or promoted waits for the
/// next assignment before it looks again: while it is away, the writes
/// it will read are stamped late (the archive's lag).
const RECHECK: Duration = Duration::from_millis(250);

/// Where one shard's stream is read from, as the projection says now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    source: String,
    primary: String,
    addr: SocketAddr,
    /// The primary's address, to fall back on when the source cannot
    /// continue the chain.
    primary_addr: Option<SocketAddr>,
    slots: Vec<[u16; 2]>,
}

/// A running follower.
struct Follower {
    /// The chain it writes, once known.
    chain: Arc<std::sync::Mutex<Option<String>>>,
    /// The slots it followed last (a Cluster's shard identity).
    slots: Vec<[u16; 2]>,
    assignment: watch::Sender<Option<Assignment>>,
    /// A reason asks it to flush, end its chain with it and stop (the
    /// archive was turned off, or its shard is gone).
    end: watch::Sender<Option<String>>,
    lag: Arc<std::sync::Mutex<Option<i64>>>,
    task: JoinHandle<()>,
}

/// What a follower reports for the journal.
#[derive(Debug)]
enum Note {
    Started(ArchiveChain),
    Followed {
        chain: String,
        source: String,
        primary: String,
        replid: String,
        offset: u64,
    },
    Ended {
        chain: String,
        end: u64,
        reason: String,
    },
}

/// The task: forever, every second, makes the followers match the
/// projection, and journals what they report.
pub async fn run(rt: Arc<Mutex<ClusterRuntime>>, log: ClusterSpan) {
    let (notes_tx, mut notes_rx) = mpsc::unbounded_channel::<Note>();
    let mut followers: Vec<Follower> = Vec::new();
    let mut ticker = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                reconcile(&rt, &mut followers, &notes_tx, &log)
                    .instrument(log.span())
                    .await;
            }
            Some(note) = notes_rx.recv() => {
                let mut notes = vec![note];
                while let Ok(more) = notes_rx.try_recv() {
                    notes.push(more);
                }
                journal(&rt, notes).instrument(log.span()).await;
            }
        }
    }
}

/// Journals what the followers reported, while this instance leads.
async fn journal(rt: &Arc<Mutex<ClusterRuntime>>, notes: Vec<Note>) {
    let mut guard = rt.lock().await;
    if !guard.leading() {
        return;
    }
    let archive = &guard.state.backups.archive;
    let mut events = Vec::new();
    for note in notes {
        match note {
            Note::Started(chain) => events.push(Event::ArchiveChainStarted { chain }),
            Note::Followed {
                chain,
                source,
                primary,
                replid,
                offset,
            } => {
                // Journaled when the source, the primary or the history
                // changed: a reconnection to the same is no news.
                let same = archive.chains.get(&chain).is_some_and(|c| {
                    c.source() == source
                        && c.primary() == primary
                        && c.followed
                            .as_ref()
                            .map_or(c.start.replid == replid, |f| f.2 == replid)
                });
                if !same {
                    events.push(Event::ArchiveFollowed {
                        chain,
                        source,
                        primary,
                        replid,
                        offset,
                    });
                }
            }
            Note::Ended { chain, end, reason } => {
                if archive
                    .chains
                    .get(&chain)
                    .is_some_and(|c| c.ended.is_none())
                {
                    events.push(Event::ArchiveChainEnded { chain, end, reason });
                }
            }
        }
    }
    if events.is_empty() {
        return;
    }
    if let Err(err) = guard.record_now(events, None).await {
        tracing::warn!(%err, "cannot journal what the archive did");
        return;
    }
    if let Err(err) = guard.publish_status(None).await {
        tracing::warn!(%err, "publishing the status after the archive changed");
    }
}

/// What the projection asks of the followers now.
struct Wanted {
    target: BackupTarget,
    sources: Option<Vec<(Assignment, BackupSource)>>,
    live: Vec<(String, ArchiveChain)>,
    meta: ChainMeta,
    access: NodeAccess,
}

fn wanted(guard: &ClusterRuntime) -> Option<Wanted> {
    let state = &guard.state;
    let target = state.backups.archive.target.clone()?;
    let addr = |pod: &str| {
        state
            .pods
            .get(pod)
            .and_then(|p| p.ip.as_deref())
            .and_then(valkey_addr)
    };
    let sources = logbook_core::decide::archive_sources(state).map(|sources| {
        sources
            .into_iter()
            .filter_map(|s| {
                Some((
                    Assignment {
                        addr: addr(&s.pod)?,
                        primary_addr: addr(&s.primary),
                        source: s.pod.clone(),
                        primary: s.primary.clone(),
                        slots: pairs(&s.slots),
                    },
                    s,
                ))
            })
            .collect()
    });
    let live = state
        .backups
        .archive
        .live()
        .map(|(name, c)| (name.clone(), c.start.clone()))
        .collect();
    let topology = state
        .desired_spec()
        .and_then(Result::ok)
        .map(|s| s.topology.to_string())
        .unwrap_or_default();
    Some(Wanted {
        target,
        sources,
        live,
        meta: ChainMeta {
            namespace: guard.meta.namespace.clone(),
            cluster: guard.meta.name.clone(),
            uid: guard.meta.uid.clone(),
            topology,
        },
        access: guard.backup_access(),
    })
}

fn pairs(slots: &[SlotRange]) -> Vec<[u16; 2]> {
    slots.iter().map(|r| [r.start, r.end]).collect()
}

fn ranges(pairs: &[[u16; 2]]) -> Vec<SlotRange> {
    pairs
        .iter()
        .map(|[start, end]| SlotRange {
            start: *start,
            end: *end,
        })
        .collect()
}

/// Slots two sets share.
fn overlap(a: &[[u16; 2]], b: &[[u16; 2]]) -> u32 {
    let mut n = 0u32;
    for [s1, e1] in a {
        for [s2, e2] in b {
            let (lo, hi) = ((*s1).max(*s2), (*e1).min(*e2));
            if lo <= hi {
                n = n.saturating_add(u32::from(hi - lo) + 1);
            }
        }
    }
    n
}

/// Makes the followers match the projection: none unless this instance
/// leads with the archive on; one per shard otherwise, each told where
/// its shard is read from now.
async fn reconcile(
    rt: &Arc<Mutex<ClusterRuntime>>,
    followers: &mut Vec<Follower>,
    notes: &mpsc::UnboundedSender<Note>,
    log: &ClusterSpan,
) {
    let (leading, wanted) = {
        let guard = rt.lock().await;
        let lag = followers
            .iter()
            .filter_map(|f| f.lag.lock().ok().and_then(|l| *l))
            .max();
        guard.set_archive_lag(lag.map(|ms| ms as f64 / 1000.0));
        (guard.leading(), wanted(&guard))
    };
    followers.retain(|f| !f.task.is_finished());
    if !leading {
        // Another instance leads: it resumes the chains. Nothing is
        // ended here.
        for f in followers.drain(..) {
            f.task.abort();
        }
        return;
    }
    let Some(wanted) = wanted else {
        // The archive is off: every follower flushes and ends its chain.
        for f in followers.iter() {
            let _ = f.end.send(Some("the archive was turned off".to_owned()));
        }
        return;
    };
    // A live chain no follower writes (this instance took over): resume it.
    let written: Vec<String> = followers
        .iter()
        .filter_map(|f| f.chain.lock().ok().and_then(|c| c.clone()))
        .collect();
    for (name, chain) in &wanted.live {
        if !written.contains(name) {
            followers.push(spawn(
                &wanted,
                Some(name.clone()),
                &pairs(&chain.slots),
                notes,
                log,
            ));
        }
    }
    let Some(sources) = wanted.sources.clone() else {
        return;
    };
    // Match each shard to the follower that followed it: the single one
    // of a Replication, the one sharing most slots in a Cluster.
    let mut free: Vec<usize> = (0..followers.len()).collect();
    for (assignment, _) in &sources {
        let pick = free
            .iter()
            .copied()
            .max_by_key(|i| {
                followers
                    .get(*i)
                    .map_or(0, |f| overlap(&f.slots, &assignment.slots))
            })
            .filter(|i| {
                assignment.slots.is_empty()
                    || followers.get(*i).is_some_and(|f| {
                        f.slots.is_empty() || overlap(&f.slots, &assignment.slots) > 0
                    })
            });
        match pick {
            Some(i) => {
                free.retain(|j| *j != i);
                if let Some(f) = followers.get_mut(i) {
                    f.slots.clone_from(&assignment.slots);
                    f.assignment.send_if_modified(|a| {
                        let changed = a.as_ref() != Some(assignment);
                        if changed {
                            *a = Some(assignment.clone());
                        }
                        changed
                    });
                }
            }
            None => {
                let f = spawn(&wanted, None, &assignment.slots, notes, log);
                let _ = f.assignment.send(Some(assignment.clone()));
                followers.push(f);
            }
        }
    }
    // A follower with no shard left (its shard was removed): it ends.
    for i in free {
        if let Some(f) = followers.get(i) {
            let _ = f.end.send(Some(
                "its shard is gone (no primary owns its slots)".to_owned(),
            ));
        }
    }
}

/// Starts a follower: of a new chain (`resume` `None`) or of a live one.
fn spawn(
    wanted: &Wanted,
    resume: Option<String>,
    slots: &[[u16; 2]],
    notes: &mpsc::UnboundedSender<Note>,
    log: &ClusterSpan,
) -> Follower {
    let (assignment_tx, assignment_rx) = watch::channel(None);
    let (end_tx, end_rx) = watch::channel(None);
    let chain = Arc::new(std::sync::Mutex::new(resume.clone()));
    let lag = Arc::new(std::sync::Mutex::new(None));
    let task = tokio::spawn(
        follow_shard(
            wanted.target.clone(),
            wanted.meta.clone(),
            wanted.access.clone(),
            resume,
            assignment_rx,
            end_rx,
            chain.clone(),
            lag.clone(),
            notes.clone(),
        )
        .instrument(log.span()),
    );
    Follower {
        chain,
        slots: slots.to_vec(),
        assignment: assignment_tx,
        end: end_tx,
        lag,
        task,
    }
}

/// One shard's follower: connects to its assigned source, follows until
/// the source changes, the connection breaks or it is told to end.
#[allow(clippy::too_many_arguments)]
async fn follow_shard(
    target: BackupTarget,
    meta: ChainMeta,
    access: NodeAccess,
    resume: Option<String>,
    mut assignment: watch::Receiver<Option<Assignment>>,
    mut end: watch::Receiver<Option<String>>,
    chain: Arc<std::sync::Mutex<Option<String>>>,
    lag: Arc<std::sync::Mutex<Option<i64>>>,
    notes: mpsc::UnboundedSender<Note>,
) {
    let store = loop {
        match credentials::resolve(&access.client, &meta.namespace, &target).await {
            Ok((s3, creds)) => match BackupStore::new(&s3, &creds) {
                Ok(store) => break store,
                Err(err) => tracing::warn!(%err, "the archive's bucket cannot be used"),
            },
            Err(err) => tracing::warn!(%err, "the archive's credentials cannot be read"),
        }
        tokio::time::sleep(RETRY).await;
    };
    let mut writer: Option<ChainWriter> = None;
    if let Some(name) = &resume {
        match ChainWriter::resume(&store, &chain_dir(&target.dir, name)).await {
            Ok(w) => writer = Some(w),
            Err(err) => {
                let _ = notes.send(Note::Ended {
                    chain: name.clone(),
                    end: 0,
                    reason: format!("could not be resumed after a change of leader: {err}"),
                });
                if let Ok(mut c) = chain.lock() {
                    *c = None;
                }
            }
        }
    }
    let identity = access.identity.clone();
    loop {
        let ending = end.borrow().clone();
        if let Some(reason) = ending {
            if let Some(w) = writer.take() {
                let name = w.chain().to_owned();
                match w.end(&reason).await {
                    Ok(done) => {
                        let _ = notes.send(Note::Ended {
                            chain: name,
                            end: done.end,
                            reason,
                        });
                    }
                    Err(err) => tracing::warn!(%err, chain = %name, "ending the archive chain"),
                }
            }
            return;
        }
        let current = assignment.borrow_and_update().clone();
        let Some(current) = current else {
            tokio::select! {
                _ = assignment.changed() => {}
                _ = end.changed() => {}
            }
            continue;
        };
        if current.source != current.primary && is_primary(&access, &current).await {
            // The replica it was to read from was promoted: reading from it
            // now would make the archive a replica of a primary, counted in
            // its `min-replicas-to-write` and `WAIT`. The next assignment
            // names one of its replicas.
            tokio::select! {
                _ = assignment.changed() => {}
                _ = end.changed() => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
            continue;
        }
        let mut current = current;
        if let Some(w) = &writer {
            let at = w.position().offset;
            if !catch_up(&access, current.addr, at).await
                && let Some(primary) = current.primary_addr.filter(|p| *p != current.addr)
                && serves(&access, primary, at).await
            {
                // The replica cannot continue the chain (its backlog begins
                // after the chain's position: it was itself resynchronised
                // from scratch): the primary can, and the chain is worth
                // more than keeping out of its replica count for a while.
                tracing::info!(source = %current.source, primary = %current.primary, "the archive continues from the primary: the replica's backlog does not reach its position");
                current.addr = primary;
                current.source.clone_from(&current.primary);
            }
        }
        let auth = identity
            .as_ref()
            .map(|(user, password)| (user.as_deref(), password));
        let follow_target = FollowTarget {
            addr: current.addr,
            auth,
            tls: access.tls.as_ref(),
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                command: Duration::from_secs(5),
            },
            idle: FOLLOW_IDLE_TIMEOUT,
            source: SourceInfo {
                pod: current.source.clone(),
                primary: current.primary.clone(),
                slots: current.slots.clone(),
            },
        };
        let mut watch_assignment = assignment.clone();
        let mut watch_end = end.clone();
        let stop = async move {
            tokio::select! {
                _ = watch_assignment.changed() => {}
                _ = watch_end.changed() => {}
            }
        };
        let lag_out = lag.clone();
        let (note_tx, mut note_rx) = mpsc::unbounded_channel::<FollowNote>();
        let forward = {
            let notes = notes.clone();
            let chain = chain.clone();
            let current = current.clone();
            let dir = target.dir.clone();
            tokio::spawn(async move {
                while let Some(note) = note_rx.recv().await {
                    forward_note(note, &notes, &chain, &current, &dir, &lag_out);
                }
            })
        };
        let report = follow(
            &store,
            &target.dir,
            &meta,
            &follow_target,
            &mut writer,
            stop,
            &note_tx,
        )
        .await;
        drop(note_tx);
        let _ = forward.await;
        match report.end {
            FollowEnd::Stopped => {}
            FollowEnd::SourceLost(err) => {
                tracing::info!(source = %current.source, %err, "the archive's source was lost; reconnecting");
                // Every moment away is lag: the writes made meanwhile are
                // stamped when they arrive.
                tokio::select! {
                    _ = assignment.changed() => {}
                    () = tokio::time::sleep(RECHECK) => {}
                }
            }
            FollowEnd::ArchiveFailed(err) => {
                tracing::warn!(source = %current.source, %err, "the archive chain failed; a new one begins");
                if let Ok(mut c) = chain.lock() {
                    *c = None;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// How long a follower waits for a new source to reach the chain's
/// position before asking it to continue anyway.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Waits (up to [`CATCH_UP`]) until the server at `addr` can continue a
/// chain at `at` (the bytes it holds): it has every byte of it (a replica a
/// moment behind would answer with a full resynchronisation, and the chain
/// would end for nothing) and its backlog still reaches back to it.
/// `false` when it never got there: it lacks writes the archive holds
/// (they were lost in a failover), or its backlog begins later.
async fn catch_up(access: &NodeAccess, addr: SocketAddr, at: u64) -> bool {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while tokio::time::Instant::now() < deadline {
        if serves(access, addr, at).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether the server at `addr` can continue a chain that holds `at`
/// bytes: `PSYNC` at `at + 1` is partial when the server's offset has
/// reached `at` and its backlog's first byte is not after `at + 1`.
async fn serves(access: &NodeAccess, addr: SocketAddr, at: u64) -> bool {
    let Ok(fields) = access.valkey.info_fields(addr, "replication").await else {
        return false;
    };
    let number = |k: &str| fields.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let offset = number("master_repl_offset").or_else(|| number("primary_repl_offset"));
    let first = number("repl_backlog_first_byte_offset");
    offset.is_some_and(|o| o >= at) && first.is_none_or(|f| f <= at.saturating_add(1))
}

/// Whether the assigned source answers as a primary.
async fn is_primary(access: &NodeAccess, current: &Assignment) -> bool {
    access
        .valkey
        .info_replication(current.addr)
        .await
        .is_ok_and(|info| info.role == logbook_core::replies::Role::Primary)
}

/// Turns what [`follow`] reported into journal notes.
fn forward_note(
    note: FollowNote,
    notes: &mpsc::UnboundedSender<Note>,
    chain: &Arc<std::sync::Mutex<Option<String>>>,
    current: &Assignment,
    dir: &str,
    lag: &Arc<std::sync::Mutex<Option<i64>>>,
) {
    match note {
        FollowNote::Started(start) => {
            let start = *start;
            if let Ok(mut c) = chain.lock() {
                *c = Some(start.chain.clone());
            }
            let _ = notes.send(Note::Started(ArchiveChain {
                chain: start.chain,
                dir: dir.to_owned(),
                source: start.source,
                primary: start.primary,
                replid: start.replid,
                offset: start.offset,
                base_at: Timestamp::EPOCH.plus_millis(start.base_at_ms),
                base_bytes: start.base_bytes,
                slots: ranges(&start.slots),
            }));
        }
        FollowNote::Continued {
            chain: name,
            replid,
            offset,
        } => {
            let _ = notes.send(Note::Followed {
                chain: name,
                source: current.source.clone(),
                primary: current.primary.clone(),
                replid,
                offset,
            });
        }
        FollowNote::Ended(done) => {
            let _ = notes.send(Note::Ended {
                chain: done.chain,
                end: done.end,
                reason: done.reason,
            });
        }
        FollowNote::Lag(ms) => {
            if let Ok(mut l) = lag.lock() {
                *l = ms;
            }
        }
    }
}
