//! The per-shard cluster probe: one independent writer per shard, so the
//! write gap measured on a shard is that shard's own.
//!
//! Each writer is a [`cluster_writer`](super::cluster_writer) probe of its
//! own (its own [`ClusterClient`](super::cluster_client::ClusterClient),
//! connections and slot map, following `MOVED`/`ASK` and refreshing its
//! map on errors) whose keys all carry one hash tag, chosen from the slot
//! map read at start to fall in that shard's slots: shard `i` writes
//! `{<tag>}:<prefix>:<n>`, acknowledged once `WAIT 1 1000` returns at
//! least 1. A single sequential client writing to every shard in turn
//! (the probe before this one) let one shard's stall — `WAIT` held for its
//! second on a primary handing over — delay the next write of every
//! other shard, so each shard's gap showed the slowest shard's; here a
//! stall stays on its shard.
//!
//! After a fault, a shard's [`Recovery`] is read from its writer's log:
//! the first write its new primary accepted and the first it
//! acknowledged, each as time since the fault.

use std::time::{Duration, Instant};

use logbook::valkey::Password;

use super::BenchError;
use super::cluster_client::{missing_in_cluster, slot_map};
use super::cluster_writer::{ClusterProbeConfig, start_cluster_probe};
use super::slots::{in_ranges, key_slot};
use super::writer::{WriteLog, WriteProbe};

/// Candidate tags tried per shard: a shard of a single slot needs about
/// 16384 on average; a million makes missing one practically impossible.
const MAX_TAG_TRIES: u32 = 1 << 20;

/// The hash tag of shard `shard`'s keys: the first `shard<shard>-<n>`
/// whose slot is in `ranges`. `None` when the ranges hold no slot (or,
/// practically never, no candidate hashed into them).
pub fn hash_tag_in(ranges: &[(u16, u16)], shard: usize) -> Option<String> {
    (0..MAX_TAG_TRIES)
        .map(|n| format!("shard{shard}-{n}"))
        .find(|tag| in_ranges(ranges, key_slot(tag.as_bytes())))
}

/// One shard's writer.
pub struct ShardWriter {
    /// The shard's primary (`host:port`) when the probe started.
    pub primary: String,
    /// The shard's slots then.
    pub ranges: Vec<(u16, u16)>,
    /// The hash tag every key of this writer carries.
    pub tag: String,
    probe: WriteProbe,
}

impl ShardWriter {
    /// A copy of this writer's log so far.
    pub fn snapshot(&self) -> WriteLog {
        self.probe.snapshot()
    }

    /// How many of its writes were acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.probe.acked_count()
    }
}

/// One shard's writes, once the probe stopped.
#[derive(Debug, Clone)]
pub struct ShardLog {
    /// The shard's primary when the probe started.
    pub primary: String,
    /// Its slots then.
    pub ranges: Vec<(u16, u16)>,
    /// Every attempt of its writer; the prefix includes the hash tag.
    pub log: WriteLog,
}

/// A writer per shard of the cluster the seeds belong to.
pub struct ShardProbe {
    writers: Vec<ShardWriter>,
}

impl ShardProbe {
    /// Reads the slot map from `config.seeds`, then starts one writer per
    /// primary with `config`'s settings, its prefix prepended with the
    /// shard's hash tag. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`BenchError::Protocol`] when no seed answers with a slot map, or a
    /// primary's slots take no tag.
    pub async fn start(config: ClusterProbeConfig) -> Result<ShardProbe, BenchError> {
        let map = slot_map(&config.seeds, config.password.as_ref()).await?;
        let mut writers = Vec::new();
        for (index, primary) in map.primaries().iter().enumerate() {
            let ranges = map.ranges_of(primary);
            let tag = hash_tag_in(&ranges, index).ok_or_else(|| BenchError::Protocol {
                addr: primary.to_string(),
                command: "CLUSTER SLOTS",
                detail: format!("no hash tag falls in its slots {ranges:?}"),
            })?;
            let mut one = config.clone();
            one.prefix = format!("{{{tag}}}:{}", config.prefix);
            writers.push(ShardWriter {
                primary: primary.to_string(),
                ranges,
                tag,
                probe: start_cluster_probe(one),
            });
        }
        Ok(ShardProbe { writers })
    }

    /// Every writer, in slot order of their shards at start.
    pub fn writers(&self) -> &[ShardWriter] {
        &self.writers
    }

    /// The writer of the shard `primary` served at start.
    pub fn of(&self, primary: &str) -> Option<&ShardWriter> {
        self.writers.iter().find(|w| w.primary == primary)
    }

    /// Waits until the writer of `primary`'s shard has `count`
    /// acknowledged writes: its window then has a start.
    ///
    /// # Errors
    /// [`BenchError::TimedOut`] after 20 s, with its last attempt;
    /// [`BenchError::Protocol`] when no writer has that primary.
    pub async fn warm_up(&self, primary: &str, count: usize) -> Result<(), BenchError> {
        let writer = self.of(primary).ok_or_else(|| BenchError::Protocol {
            addr: primary.to_owned(),
            command: "CLUSTER SLOTS",
            detail: "no shard writer for this primary".to_owned(),
        })?;
        let limit = Duration::from_secs(20);
        let started = Instant::now();
        while writer.acked_count() < count {
            if started.elapsed() > limit {
                let log = writer.snapshot();
                return Err(BenchError::TimedOut {
                    what: format!("{count} acknowledged writes to {primary}'s slots"),
                    after_ms: limit.as_millis(),
                    detail: format!(
                        "\n  {} acknowledged of {} attempts; last: {:?}",
                        log.acked_keys().len(),
                        log.attempts.len(),
                        log.attempts.last()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops every writer after its attempt in flight; their logs.
    pub async fn stop(self) -> Vec<ShardLog> {
        let mut logs = Vec::with_capacity(self.writers.len());
        for writer in self.writers {
            logs.push(ShardLog {
                primary: writer.primary,
                ranges: writer.ranges,
                log: writer.probe.stop().await,
            });
        }
        logs
    }
}

/// How a shard came back after a fault, by its own writer's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// From the fault to the reply of the first write, started after it,
    /// that the shard's new primary accepted (`SET` answered `OK`).
    pub accepted: Option<Duration>,
    /// From the fault to the end of the first write, started after it,
    /// that the new primary acknowledged (`WAIT 1` returned at least 1).
    pub acknowledged: Option<Duration>,
}

/// The [`Recovery`] of the shard whose writes are in `log` after a fault
/// at `fault`, when `new_primary` (`host:port`) serves its slots now.
///
/// Only writes on `new_primary` end the gap: the old primary may take a
/// few writes after a deletion while it hands over, and a process
/// restarted in place may accept writes it will lose; neither is the
/// shard served again.
pub fn recovery(log: &WriteLog, fault: Instant, new_primary: &str) -> Recovery {
    let on_new =
        |a: &&super::writer::Attempt| a.started > fault && a.server.as_deref() == Some(new_primary);
    let accepted = log
        .attempts
        .iter()
        .filter(on_new)
        .find(|a| a.succeeded())
        .map(|a| a.replied.saturating_duration_since(fault));
    let acknowledged = log
        .attempts
        .iter()
        .filter(on_new)
        .find(|a| a.acked)
        .map(|a| a.ended.saturating_duration_since(fault));
    Recovery {
        accepted,
        acknowledged,
    }
}

/// The acknowledged writes of every shard's log missing from the cluster,
/// each read from its slot's owner; returns (missing, acknowledged).
///
/// # Errors
/// As [`missing_in_cluster`].
pub async fn lost_writes(
    logs: &[ShardLog],
    seeds: &[String],
    password: Option<&Password>,
) -> Result<(usize, usize), BenchError> {
    let (mut missing, mut acked) = (0usize, 0usize);
    for shard in logs {
        let keys = shard.log.acked_keys();
        acked = acked.saturating_add(keys.len());
        let gone = missing_in_cluster(seeds, password, &shard.log.prefix, &keys).await?;
        missing = missing.saturating_add(gone.len());
    }
    Ok((missing, acked))
}

/// The longest gap between successful writes of the shards other than
/// `victim` (their primary at start), from `fault` to the end of their
/// logs: what the fault cost the shards it did not hit.
pub fn others_gap(logs: &[ShardLog], victim: &str, fault: Instant) -> Option<Duration> {
    logs.iter()
        .filter(|s| s.primary != victim)
        .filter_map(|s| s.log.longest_gap_from(fault))
        .max()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::writer::{Attempt, Failure, Outcome};

    #[test]
    fn a_shard_tag_hashes_into_its_slots() {
        for (shard, ranges) in [
            (0, vec![(0, 5460)]),
            (1, vec![(5461, 10922)]),
            (2, vec![(10923, 16383)]),
            (3, vec![(100, 100)]),
            (4, vec![(7, 7), (16000, 16001)]),
        ] {
            let tag = hash_tag_in(&ranges, shard).unwrap_or_default();
            assert!(tag.starts_with(&format!("shard{shard}-")), "{tag}");
            // The key's hashed part is the tag, so every key of the
            // writer is in the shard.
            for n in [0, 1, 999] {
                let key = format!("{{{tag}}}:bench:cluster:{n}");
                assert!(in_ranges(&ranges, key_slot(key.as_bytes())), "{key}");
            }
        }
        assert_eq!(hash_tag_in(&[], 0), None);
    }

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn attempt(base: Instant, ms: u64, server: &str, ok: bool, acked: bool) -> Attempt {
        Attempt {
            key: ms,
            started: at(base, ms),
            replied: at(base, ms + 1),
            // A write acknowledged late: WAIT held it.
            ended: at(base, ms + if acked { 300 } else { 2 }),
            server: Some(Arc::from(server)),
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Failed(Failure::Io)
            },
            acked,
        }
    }

    #[test]
    fn only_the_new_primary_ends_the_gap() {
        let base = Instant::now();
        let log = WriteLog {
            prefix: "{t}:p".to_owned(),
            attempts: vec![
                attempt(base, 0, "old:1", true, true),
                // The fault is at 10: the old primary still takes one,
                // acknowledged, while it hands over.
                attempt(base, 20, "old:1", true, true),
                attempt(base, 40, "old:1", false, false),
                // Accepted by the new primary but not acknowledged yet.
                attempt(base, 900, "new:2", true, false),
                attempt(base, 1500, "new:2", true, true),
                attempt(base, 1900, "new:2", true, true),
            ],
        };
        let r = recovery(&log, at(base, 10), "new:2");
        assert_eq!(r.accepted, Some(Duration::from_millis(891)));
        assert_eq!(r.acknowledged, Some(Duration::from_millis(1790)));
        // No write on a node that never served the shard.
        assert_eq!(recovery(&log, at(base, 10), "other:3"), Recovery::default());
        // Nothing after the end.
        assert_eq!(recovery(&log, at(base, 5000), "new:2"), Recovery::default());
    }

    #[test]
    fn the_other_shards_gap_leaves_the_victim_out() {
        let base = Instant::now();
        let shard = |primary: &str, ms: &[u64]| ShardLog {
            primary: primary.to_owned(),
            ranges: Vec::new(),
            log: WriteLog {
                prefix: "p".to_owned(),
                attempts: ms
                    .iter()
                    .map(|m| attempt(base, *m, primary, true, true))
                    .collect(),
            },
        };
        let logs = [
            shard("victim:1", &[0, 5000]),
            shard("a:1", &[0, 10, 20, 130, 140]),
            shard("b:1", &[0, 10, 60]),
        ];
        assert_eq!(
            others_gap(&logs, "victim:1", at(base, 5)),
            Some(Duration::from_millis(110))
        );
        assert_eq!(
            others_gap(&logs, "a:1", at(base, 5)),
            Some(Duration::from_millis(5000))
        );
    }
}
