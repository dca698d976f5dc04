//! Point-in-time restore from the continuous archive (`segment`): the
//! operator's plan (which chain of each shard holds time `T`, and proof
//! that its whole path from the base to `T` is in the bucket, intact) and
//! the init container's replay of it (the segments up to `T`, turned
//! into an append-only-file increment).
//!
//! Planning reads and checks everything before anything is created: a
//! restore that would stop half-way for a missing or damaged segment is
//! refused up front, naming the chain, the segment and what is wrong.
//! Fetching checks it all again (the bucket may have changed since), and
//! refuses an index whose used entries are not the ones verified
//! ([`index_digest`]).
//!
//! This module reads the bucket only; it writes nothing anywhere.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::segment::{
    AofCut, BASE_NAME, CHAIN_NAME, ChainEnd, ChainStart, Cut, END_NAME, IndexPage, SegmentEntry,
    SegmentError, aof_until, check_segment, finish_aof,
};
use super::store::{BackupStore, StoreError};
use super::transfer::verify_object;
use crate::resources::restore::PointInTimeFetch;

/// Hash slots of a Valkey Cluster.
pub const SLOTS: usize = 16384;

/// One shard's part of a point-in-time restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPitr {
    /// The chain's name and directory (ending in `/`).
    pub chain: String,
    /// See `chain`.
    pub chain_dir: String,
    /// The base RDB's key, size and SHA-256 (hex).
    pub base_key: String,
    /// See `base_key`.
    pub base_bytes: u64,
    /// See `base_key`.
    pub base_sha256: String,
    /// How many of the index's first entries are replayed (0: the base
    /// alone already is the dataset at `until_ms`).
    pub segments: u64,
    /// The offset after the last of them (the base's offset when none).
    pub end: u64,
    /// The time restored to (ms since the epoch).
    pub until_ms: i64,
    /// The shard's slots at `until_ms` (Cluster), as `[start, end]` pairs.
    pub slots: Vec<[u16; 2]>,
    /// [`index_digest`] of the entries replayed.
    pub digest: String,
}

impl ShardPitr {
    /// The init container's part of the plan.
    pub fn fetch(&self) -> PointInTimeFetch {
        PointInTimeFetch {
            chain_dir: self.chain_dir.clone(),
            until_ms: self.until_ms,
            segments: self.segments,
            end: self.end,
            digest: self.digest.clone(),
            slots: self.slots.clone(),
        }
    }
}

/// A verified point-in-time restore: one shard per chain chosen (one for
/// a Replication cluster; for a Cluster, ordered by their first slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitrPlan {
    /// The time restored to (ms since the epoch).
    pub until_ms: i64,
    /// The chains' topology (`Cluster`, `Replication`, ...).
    pub topology: String,
    /// The shards.
    pub shards: Vec<ShardPitr>,
}

/// A segment as a refusal names it: its name, offsets and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlace {
    /// Its object name.
    pub name: String,
    /// Its offsets.
    pub start: u64,
    /// See `start`.
    pub end: u64,
    /// When its first and last commands were received (ms).
    pub first_ms: i64,
    /// See `first_ms`.
    pub last_ms: i64,
}

impl SegmentPlace {
    fn boxed(entry: &SegmentEntry) -> Box<Self> {
        Box::new(SegmentPlace {
            name: entry.name.clone(),
            start: entry.start,
            end: entry.end,
            first_ms: entry.first_ms,
            last_ms: entry.last_ms,
        })
    }
}

impl fmt::Display for SegmentPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (offsets {}..{}, received {} .. {})",
            self.name,
            self.start,
            self.end,
            time(self.first_ms),
            time(self.last_ms)
        )
    }
}

/// `ms` as an RFC 3339 time with its milliseconds since the epoch.
pub fn time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => format!(
            "{} ({ms} ms)",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        None => format!("{ms} ms"),
    }
}

/// Why a point-in-time restore cannot be planned or fetched. Every
/// message names the chain and, for a segment, its name, offsets and
/// times.
#[derive(Debug, thiserror::Error)]
pub enum PitrRefusal {
    /// The bucket could not be read (unreachable, refused, ...): retryable.
    #[error("archive {place}: {source}")]
    Store {
        /// The archive or chain being read.
        place: String,
        /// The bucket's failure.
        #[source]
        source: Box<StoreError>,
    },
    /// There is no chain under the archive directory.
    #[error("archive {archive_dir}: no chain (no <chain>/{CHAIN_NAME} under it)")]
    NoChains {
        /// The archive directory.
        archive_dir: String,
    },
    /// A chain's document (chain.json, an index page, end.json) is not
    /// one this build reads.
    #[error("chain {chain}: {object} does not read: {detail}")]
    Document {
        /// The chain.
        chain: String,
        /// The object.
        object: String,
        /// What is wrong.
        detail: String,
    },
    /// No chain covers the time.
    #[error("no chain covers {until}: the archive covers {covered}")]
    OutsideCoverage {
        /// The time asked for.
        until: String,
        /// Each chain's covered range.
        covered: String,
        /// The time is after every chain's coverage, and a chain is still
        /// being written: the archive may reach it (read again later). A
        /// time before the oldest base never will be.
        may_come: bool,
    },
    /// The chains covering the time do not hold every slot exactly once.
    #[error(
        "at {until} the chains covering it ({chains}) do not hold every slot exactly once: {detail}"
    )]
    Slots {
        /// The time asked for.
        until: String,
        /// The chains and their slots.
        chains: String,
        /// Slots missing, slots held twice.
        detail: String,
    },
    /// The base RDB is missing or not the one chain.json describes.
    #[error("chain {chain}: base {key}: {detail}")]
    Base {
        /// The chain.
        chain: String,
        /// The base's key.
        key: String,
        /// What is wrong (missing, size, SHA-256, not an RDB).
        detail: String,
    },
    /// A segment the restore needs is not in the bucket.
    #[error("chain {chain}: segment {segment} is missing from the bucket")]
    Missing {
        /// The chain.
        chain: String,
        /// The segment.
        segment: Box<SegmentPlace>,
    },
    /// A segment is not the size its index entry says.
    #[error("chain {chain}: segment {segment} is {found} bytes where the index says {expected}")]
    Size {
        /// The chain.
        chain: String,
        /// The segment.
        segment: Box<SegmentPlace>,
        /// The index's size.
        expected: u64,
        /// The object's.
        found: u64,
    },
    /// A segment's bytes are damaged (checksum, framing, range).
    #[error("chain {chain}: segment {segment} is damaged: {source}")]
    Corrupt {
        /// The chain.
        chain: String,
        /// The segment.
        segment: Box<SegmentPlace>,
        /// What is wrong.
        #[source]
        source: Box<SegmentError>,
    },
    /// A segment does not start where the one before it (or the base)
    /// ended: part of the stream is not archived.
    #[error(
        "chain {chain}: gap before segment {segment}: it starts at offset {found} where {expected} was due"
    )]
    Gap {
        /// The chain.
        chain: String,
        /// The segment.
        segment: Box<SegmentPlace>,
        /// The offset due.
        expected: u64,
        /// Its start.
        found: u64,
    },
    /// An index page is missing (pages are numbered from 0 without a
    /// gap).
    #[error(
        "chain {chain}: index page {found} where page {expected} was due (a page is missing or misnamed)"
    )]
    PageGap {
        /// The chain.
        chain: String,
        /// The page due.
        expected: usize,
        /// The page found.
        found: usize,
    },
    /// The index lists fewer entries than the plan replays.
    #[error("chain {chain}: the index lists {listed} segments, the plan replays {needed}")]
    IndexShort {
        /// The chain.
        chain: String,
        /// Entries listed.
        listed: usize,
        /// Entries planned.
        needed: u64,
    },
    /// The index's entries are not the ones verified when planning.
    #[error(
        "chain {chain}: the index's first {segments} entries changed after the restore was planned (digest {found}, planned {expected})"
    )]
    IndexChanged {
        /// The chain.
        chain: String,
        /// Entries replayed.
        segments: u64,
        /// The planned digest.
        expected: String,
        /// The index's now.
        found: String,
    },
}

/// Hex SHA-256 over `entries`, each as its JSON and a newline: what the
/// plan carries so that the init container replays the entries the
/// operator verified.
pub fn index_digest(entries: &[SegmentEntry]) -> String {
    let mut hash = Sha256::new();
    for e in entries {
        hash.update(serde_json::to_vec(e).unwrap_or_default());
        hash.update(b"\n");
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One chain as the bucket holds it.
#[derive(Debug, Clone)]
struct Chain {
    name: String,
    dir: String,
    start: ChainStart,
    entries: Vec<SegmentEntry>,
    end: Option<ChainEnd>,
}

impl Chain {
    /// The last time it covers.
    fn covered_until(&self) -> i64 {
        self.entries.last().map_or(self.start.base_at_ms, |e| {
            e.last_ms.max(self.start.base_at_ms)
        })
    }

    fn covers(&self, until_ms: i64) -> bool {
        self.start.base_at_ms <= until_ms && until_ms <= self.covered_until()
    }

    /// How many entries hold a record received at or before `until_ms`.
    fn needed(&self, until_ms: i64) -> usize {
        self.entries
            .iter()
            .take_while(|e| e.first_ms <= until_ms)
            .count()
    }

    fn slots_at(&self, until_ms: i64) -> Vec<[u16; 2]> {
        let needed = self.needed(until_ms);
        needed
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.slots.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.start.slots.clone())
    }

    fn coverage(&self) -> String {
        let ended = self
            .end
            .as_ref()
            .map(|e| format!(", ended: {}", e.reason))
            .unwrap_or_default();
        format!(
            "{}: {} to {}{ended}",
            self.name,
            time(self.start.base_at_ms),
            time(self.covered_until())
        )
    }
}

fn document<T: serde::de::DeserializeOwned>(
    chain: &str,
    object: &str,
    bytes: &[u8],
) -> Result<T, PitrRefusal> {
    serde_json::from_slice(bytes).map_err(|e| PitrRefusal::Document {
        chain: chain.to_owned(),
        object: object.to_owned(),
        detail: e.to_string(),
    })
}

async fn get(store: &BackupStore, place: &str, key: &str) -> Result<bytes::Bytes, PitrRefusal> {
    store
        .get_bytes(key)
        .await
        .map_err(|source| PitrRefusal::Store {
            place: place.to_owned(),
            source: Box::new(source),
        })
}

/// A chain's name from its directory (`.../<chain>/`).
fn chain_of(chain_dir: &str) -> String {
    chain_dir
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(chain_dir)
        .to_owned()
}

/// Reads a chain's index pages, in order, and checks they are numbered
/// 0, 1, ... without a gap. `names` are the object names in its
/// directory.
async fn read_index(
    store: &BackupStore,
    chain: &str,
    dir: &str,
    names: &[String],
) -> Result<Vec<SegmentEntry>, PitrRefusal> {
    let mut pages: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("index-") && n.ends_with(".json"))
        .collect();
    pages.sort();
    let mut entries = Vec::new();
    for (expected, name) in pages.into_iter().enumerate() {
        let bytes = get(store, chain, &format!("{dir}{name}")).await?;
        let page: IndexPage = document(chain, name, &bytes)?;
        if page.page != expected {
            return Err(PitrRefusal::PageGap {
                chain: chain.to_owned(),
                expected,
                found: page.page,
            });
        }
        entries.extend(page.segments);
    }
    Ok(entries)
}

/// The names of the objects directly in `dir`.
async fn names_in(store: &BackupStore, dir: &str) -> Result<Vec<String>, PitrRefusal> {
    let listed = store.list(dir).await.map_err(|source| PitrRefusal::Store {
        place: dir.to_owned(),
        source: Box::new(source),
    })?;
    Ok(listed
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(dir).map(str::to_owned))
        .filter(|n| !n.contains('/'))
        .collect())
}

/// Every chain under `archive_dir`.
async fn read_chains(store: &BackupStore, archive_dir: &str) -> Result<Vec<Chain>, PitrRefusal> {
    let listed = store
        .list(archive_dir)
        .await
        .map_err(|source| PitrRefusal::Store {
            place: archive_dir.to_owned(),
            source: Box::new(source),
        })?;
    let mut by_chain: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in listed {
        if let Some((chain, name)) = object
            .key
            .strip_prefix(archive_dir)
            .and_then(|rest| rest.split_once('/'))
            && !name.contains('/')
        {
            by_chain
                .entry(chain.to_owned())
                .or_default()
                .push(name.to_owned());
        }
    }
    let mut chains = Vec::new();
    for (name, objects) in by_chain {
        if !objects.iter().any(|o| o == CHAIN_NAME) {
            continue;
        }
        let dir = super::segment::chain_dir(archive_dir, &name);
        let start: ChainStart = document(
            &name,
            CHAIN_NAME,
            &get(store, &name, &format!("{dir}{CHAIN_NAME}")).await?,
        )?;
        if start.format != super::segment::ARCHIVE_FORMAT {
            return Err(PitrRefusal::Document {
                chain: name,
                object: CHAIN_NAME.to_owned(),
                detail: format!(
                    "archive format {} (this build reads {})",
                    start.format,
                    super::segment::ARCHIVE_FORMAT
                ),
            });
        }
        let entries = read_index(store, &name, &dir, &objects).await?;
        let end = if objects.iter().any(|o| o == END_NAME) {
            Some(document(
                &name,
                END_NAME,
                &get(store, &name, &format!("{dir}{END_NAME}")).await?,
            )?)
        } else {
            None
        };
        chains.push(Chain {
            name,
            dir,
            start,
            entries,
            end,
        });
    }
    Ok(chains)
}

/// Checks that `entries` follow each other from `base_offset` without a
/// gap.
fn check_contiguous(
    chain: &str,
    base_offset: u64,
    entries: &[SegmentEntry],
) -> Result<(), PitrRefusal> {
    let mut due = base_offset;
    for e in entries {
        if e.start != due {
            return Err(PitrRefusal::Gap {
                chain: chain.to_owned(),
                segment: SegmentPlace::boxed(e),
                expected: due,
                found: e.start,
            });
        }
        due = e.end;
    }
    Ok(())
}

/// Reads segment `entry` of `chain_dir` and checks it against its entry.
///
/// # Errors
/// [`PitrRefusal::Missing`], [`PitrRefusal::Size`],
/// [`PitrRefusal::Corrupt`], or [`PitrRefusal::Store`].
pub async fn read_segment(
    store: &BackupStore,
    chain_dir: &str,
    entry: &SegmentEntry,
) -> Result<Vec<super::segment::Record>, PitrRefusal> {
    let chain = chain_of(chain_dir);
    let bytes = match store.get_bytes(&format!("{chain_dir}{}", entry.name)).await {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) => {
            return Err(PitrRefusal::Missing {
                chain,
                segment: SegmentPlace::boxed(entry),
            });
        }
        Err(source) => {
            return Err(PitrRefusal::Store {
                place: chain,
                source: Box::new(source),
            });
        }
    };
    let found = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if found != entry.bytes {
        return Err(PitrRefusal::Size {
            chain,
            segment: SegmentPlace::boxed(entry),
            expected: entry.bytes,
            found,
        });
    }
    check_segment(entry, &bytes).map_err(|source| PitrRefusal::Corrupt {
        chain,
        segment: SegmentPlace::boxed(entry),
        source: Box::new(source),
    })
}

/// Formats slot ranges as `0-99, 200-300`.
fn ranges(slots: &[[u16; 2]]) -> String {
    let parts: Vec<String> = slots.iter().map(|[a, b]| format!("{a}-{b}")).collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The runs of slots whose count satisfies `pick`.
fn runs(counts: &[u8], pick: impl Fn(u8) -> bool) -> Vec<[u16; 2]> {
    let mut out: Vec<[u16; 2]> = Vec::new();
    for (slot, &n) in counts.iter().enumerate() {
        let Ok(slot) = u16::try_from(slot) else {
            break;
        };
        if !pick(n) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last[1].checked_add(1) == Some(slot) => last[1] = slot,
            _ => out.push([slot, slot]),
        }
    }
    out
}

/// Whether two sets of slot ranges share a slot.
fn overlap(a: &[[u16; 2]], b: &[[u16; 2]]) -> bool {
    a.iter()
        .any(|[a0, a1]| b.iter().any(|[b0, b1]| a0 <= b1 && b0 <= a1))
}

/// Checks that `chosen` hold every slot exactly once at `until_ms`.
fn check_slots(chosen: &[(&Chain, Vec<[u16; 2]>)], until_ms: i64) -> Result<(), PitrRefusal> {
    let mut counts = vec![0u8; SLOTS];
    for (_, slots) in chosen {
        for [a, b] in slots {
            for slot in *a..=*b {
                if let Some(n) = counts.get_mut(usize::from(slot)) {
                    *n = n.saturating_add(1);
                }
            }
        }
    }
    let missing = runs(&counts, |n| n == 0);
    let twice = runs(&counts, |n| n > 1);
    if missing.is_empty() && twice.is_empty() {
        return Ok(());
    }
    let chains: Vec<String> = chosen
        .iter()
        .map(|(c, s)| format!("{} holds {}", c.name, ranges(s)))
        .collect();
    let mut detail = Vec::new();
    if !missing.is_empty() {
        detail.push(format!("no chain holds slots {}", ranges(&missing)));
    }
    if !twice.is_empty() {
        detail.push(format!("slots {} are held more than once", ranges(&twice)));
    }
    Err(PitrRefusal::Slots {
        until: time(until_ms),
        chains: chains.join("; "),
        detail: detail.join("; "),
    })
}

/// Plans a restore of the archive under `archive_dir` to `until_ms`:
/// picks the chains that cover it (one for a Replication cluster, one per
/// shard for a Cluster) and verifies each one's whole path from its base
/// to `until_ms`.
///
/// # Guarantees
/// Reads only. When it returns a plan, every object the restore needs
/// was in the bucket and matched its size and SHA-256 (the base also as
/// an RDB), the segments follow each other from the base without a gap,
/// and (Cluster) the chains hold every slot exactly once at `until_ms`.
///
/// # Errors
/// A [`PitrRefusal`] naming the chain, the segment and what is wrong.
pub async fn plan_point_in_time(
    store: &BackupStore,
    archive_dir: &str,
    until_ms: i64,
) -> Result<PitrPlan, PitrRefusal> {
    let chains = read_chains(store, archive_dir).await?;
    if chains.is_empty() {
        return Err(PitrRefusal::NoChains {
            archive_dir: archive_dir.to_owned(),
        });
    }
    let mut covering: Vec<&Chain> = chains.iter().filter(|c| c.covers(until_ms)).collect();
    // The freshest base first: of two chains of one shard, the later one.
    covering.sort_by(|a, b| (b.start.base_at_ms, &b.name).cmp(&(a.start.base_at_ms, &a.name)));
    let Some(first) = covering.first() else {
        let covered: Vec<String> = chains.iter().map(Chain::coverage).collect();
        let may_come = chains
            .iter()
            .any(|c| c.end.is_none() && c.start.base_at_ms <= until_ms);
        return Err(PitrRefusal::OutsideCoverage {
            until: time(until_ms),
            covered: covered.join("; "),
            may_come,
        });
    };
    let topology = first.start.topology.clone();
    // A live chain that began by then and has not reached the time yet (a
    // shard whose follower reconnects after a failover, a segment not
    // closed yet): its shard is not covered, but will be. Read again.
    let behind: Vec<String> = chains
        .iter()
        .filter(|c| {
            c.end.is_none()
                && c.start.base_at_ms <= until_ms
                && c.covered_until() < until_ms
                && !covering.iter().any(|k| k.name == c.name)
        })
        .map(Chain::coverage)
        .collect();
    if topology == "Cluster" && !behind.is_empty() {
        return Err(PitrRefusal::OutsideCoverage {
            until: time(until_ms),
            covered: format!("not yet, by {}", behind.join("; ")),
            may_come: true,
        });
    }
    let mut chosen: Vec<(&Chain, Vec<[u16; 2]>)> = Vec::new();
    if topology == "Cluster" {
        for chain in covering {
            let slots = chain.slots_at(until_ms);
            // A shard whose chain ended and restarted: its history goes
            // on in the fresher chain, already taken, that holds its
            // slots now. Two chains that both go on holding a slot are
            // refused below.
            let superseded = chain.end.is_some() && chosen.iter().any(|(_, s)| overlap(s, &slots));
            if !superseded {
                chosen.push((chain, slots));
            }
        }
        chosen.sort_by_key(|(_, s)| s.first().map(|r| r[0]));
        check_slots(&chosen, until_ms)?;
    } else {
        chosen.push((first, first.slots_at(until_ms)));
    }
    // The cheap checks of every chain before any download.
    for (chain, _) in &chosen {
        let needed = chain.entries.get(..chain.needed(until_ms)).unwrap_or(&[]);
        check_contiguous(&chain.name, chain.start.offset, needed)?;
    }
    let mut shards = Vec::new();
    for (chain, slots) in chosen {
        let base_key = format!("{}{BASE_NAME}", chain.dir);
        verify_object(
            store,
            &base_key,
            chain.start.base_bytes,
            &chain.start.base_sha256,
        )
        .await
        .map_err(|e| PitrRefusal::Base {
            chain: chain.name.clone(),
            key: base_key.clone(),
            detail: e.to_string(),
        })?;
        let needed = chain.entries.get(..chain.needed(until_ms)).unwrap_or(&[]);
        for entry in needed {
            read_segment(store, &chain.dir, entry).await?;
        }
        shards.push(ShardPitr {
            chain: chain.name.clone(),
            chain_dir: chain.dir.clone(),
            base_key,
            base_bytes: chain.start.base_bytes,
            base_sha256: chain.start.base_sha256.clone(),
            segments: u64::try_from(needed.len()).unwrap_or(u64::MAX),
            end: needed.last().map_or(chain.start.offset, |e| e.end),
            until_ms,
            slots,
            digest: index_digest(needed),
        });
    }
    Ok(PitrPlan {
        until_ms,
        topology,
        shards,
    })
}

/// What [`replay_until`] built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The append-only-file increment.
    pub aof: Vec<u8>,
    /// What it holds and what was left out.
    pub cut: Cut,
    /// Segments read.
    pub segments: u64,
}

/// Re-reads the index of `fetch`'s chain, checks its used entries are the
/// planned ones, reads and checks each segment, and builds the
/// append-only-file increment of every command received by
/// `fetch.until_ms`.
///
/// # Errors
/// [`PitrRefusal::IndexChanged`] or [`PitrRefusal::IndexShort`] when the
/// index is not the one planned; any refusal of a segment.
pub async fn replay_until(
    store: &BackupStore,
    fetch: &PointInTimeFetch,
) -> Result<Replayed, PitrRefusal> {
    let chain = chain_of(&fetch.chain_dir);
    let names = names_in(store, &fetch.chain_dir).await?;
    let entries = read_index(store, &chain, &fetch.chain_dir, &names).await?;
    let needed = usize::try_from(fetch.segments)
        .ok()
        .and_then(|n| entries.get(..n))
        .ok_or_else(|| PitrRefusal::IndexShort {
            chain: chain.clone(),
            listed: entries.len(),
            needed: fetch.segments,
        })?;
    let found = index_digest(needed);
    if found != fetch.digest {
        return Err(PitrRefusal::IndexChanged {
            chain,
            segments: fetch.segments,
            expected: fetch.digest.clone(),
            found,
        });
    }
    let mut cut = AofCut::default();
    // Nothing taken yet: the dataset is the base's, at its offset.
    cut.cut.end = needed.first().map_or(fetch.end, |e| e.start);
    let mut aof = Vec::new();
    for entry in needed {
        let records = read_segment(store, &fetch.chain_dir, entry).await?;
        aof_until(&records, fetch.until_ms, &mut cut, &mut aof);
    }
    let cut = finish_aof(cut, &mut aof);
    Ok(Replayed {
        aof,
        cut,
        segments: fetch.segments,
    })
}

#[cfg(test)]
#[path = "pitr_tests.rs"]
mod tests;
