//! The Valkey Cluster part of `kubectl valkey status`: what stands in for
//! the one primary of a Replication cluster — shards served, slots owned
//! of 16384, and per shard its primary, its replicas (in sync or not) and
//! its slot ranges.
//!
//! A shard is named by its first slot, as in the metrics' `shard` label
//! (see `metrics/shards.rs`, which computes the summary shown here from
//! the journal's projection), so a line of `status` and a series of the
//! scrape name the same shard. Without the journal only the published
//! `status.shards` is shown. Output only; nothing here reads the API.

use std::io::Write;

use logbook_crds::ValkeyCluster;
use logbook_crds::v1alpha1::ShardStatus;
use logbook_journal::SlotRange;
use logbook_journal::cluster::{SLOTS, describe_slots};

use super::error::Result;
use super::format::table;
use crate::metrics::{ClusterSummary, ShardSummary};

/// How many primaries the list view names before it only counts.
const NAMED_PRIMARIES: usize = 3;

/// The list view's PRIMARY cell of a Cluster, from its published status:
/// `3 shards: shop-0,shop-1,shop-2`, or `-` before any shard exists.
pub fn primaries_cell(c: &ValkeyCluster) -> String {
    let shards = c.status.as_ref().map_or(&[][..], |s| &s.shards[..]);
    if shards.is_empty() {
        return "-".to_owned();
    }
    let names: Vec<&str> = shards
        .iter()
        .map(|s| s.primary.as_deref().unwrap_or("?"))
        .collect();
    let shown = names
        .iter()
        .take(NAMED_PRIMARIES)
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    let more = names.len().saturating_sub(NAMED_PRIMARIES);
    let unit = if names.len() == 1 { "shard" } else { "shards" };
    if more > 0 {
        format!("{} {unit}: {shown},+{more}", names.len())
    } else {
        format!("{} {unit}: {shown}", names.len())
    }
}

/// The header's `Shards:` line of a Cluster, from its published status.
pub fn header_line(c: &ValkeyCluster) -> String {
    let shards = c.status.as_ref().map_or(&[][..], |s| &s.shards[..]);
    let owned: i64 = shards
        .iter()
        .flat_map(|s| s.slots.iter())
        .map(|r| i64::from(r.end.saturating_sub(r.start)).saturating_add(1))
        .sum();
    format!(
        "{} of {} wanted, {owned} of {SLOTS} slots owned",
        shards.len(),
        c.spec.effective_shards()
    )
}

/// The header's `Reshard:` lines of a Cluster whose published status
/// has a reshard (none when the slots are where the spec wants them):
/// its phase, generation and shards, slots moved and remaining, jobs
/// under way, then its message (what moves, what fails and what to do).
pub fn reshard_lines(c: &ValkeyCluster) -> Vec<String> {
    let Some(r) = c.status.as_ref().and_then(|s| s.reshard.as_ref()) else {
        return Vec::new();
    };
    let phase = match r.phase.as_str() {
        "Failing" => "Failing (given up under this generation)".to_owned(),
        other => other.to_owned(),
    };
    let mut lines = vec![format!(
        "{phase}, generation {} ({} shards wanted): {} slots moved, {} remaining, {} migration(s) running",
        r.generation, r.shards, r.slots_moved, r.slots_remaining, r.migrations_running
    )];
    if !r.message.is_empty() {
        lines.push(r.message.clone());
    }
    lines
}

/// The shards as the journal's projection shows them: a summary line,
/// then one row per shard.
///
/// # Errors
/// Output errors.
pub fn write_summary(out: &mut dyn Write, summary: &ClusterSummary) -> Result<()> {
    let (replicas, in_sync) = summary.replicas();
    if summary.formed {
        writeln!(
            out,
            "\nShards, as last observed by the operator (named by their first slot): {}/{} served, {} of {SLOTS} slots owned, {in_sync} of {replicas} replicas in sync, cluster_state {}:",
            summary.served(),
            summary.shards_wanted,
            summary.slots_owned,
            if summary.state_ok { "ok" } else { "not ok" }
        )?;
    } else {
        writeln!(
            out,
            "\nShards, as last observed by the operator: forming, {} of {SLOTS} slots owned:",
            summary.slots_owned
        )?;
    }
    let rows: Vec<Vec<String>> = summary.shards.iter().map(summary_row).collect();
    table(
        out,
        &["  SHARD", "PRIMARY", "STATE", "SLOTS", "COUNT", "REPLICAS"],
        &rows,
    )?;
    Ok(())
}

fn summary_row(shard: &ShardSummary) -> Vec<String> {
    let state = if shard.retired {
        "primary lost"
    } else if shard.served {
        "served"
    } else {
        "not answering"
    };
    let replicas = if shard.replicas.is_empty() {
        "none".to_owned()
    } else {
        shard
            .replicas
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    r.pod,
                    if r.in_sync { "in sync" } else { "not in sync" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        format!("  {}", shard.label()),
        shard.primary.clone(),
        state.to_owned(),
        describe_slots(&shard.slots),
        shard.slot_count.to_string(),
        replicas,
    ]
}

/// The shards as the published status shows them (when the journal
/// cannot be read): primary, replicas and slots, no health.
///
/// # Errors
/// Output errors.
pub fn write_published(out: &mut dyn Write, shards: &[ShardStatus]) -> Result<()> {
    writeln!(
        out,
        "\nShards, as the published status shows them (named by their first slot):"
    )?;
    let rows: Vec<Vec<String>> = shards
        .iter()
        .map(|s| {
            let ranges: Vec<SlotRange> = s
                .slots
                .iter()
                .filter_map(|r| {
                    Some(SlotRange {
                        start: u16::try_from(r.start).ok()?,
                        end: u16::try_from(r.end).ok()?,
                    })
                })
                .collect();
            vec![
                format!(
                    "  {}",
                    ranges
                        .first()
                        .map_or_else(|| "-".to_owned(), |r| r.start.to_string())
                ),
                s.primary.clone().unwrap_or_else(|| "-".to_owned()),
                describe_slots(&ranges),
                logbook_journal::cluster::slot_count(&ranges).to_string(),
                if s.replicas.is_empty() {
                    "none".to_owned()
                } else {
                    s.replicas.join(", ")
                },
            ]
        })
        .collect();
    table(
        out,
        &["  SHARD", "PRIMARY", "SLOTS", "COUNT", "REPLICAS"],
        &rows,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use logbook_crds::v1alpha1::{SlotRange as CrdRange, ValkeyClusterStatus};
    use logbook_crds::{Topology, ValkeyClusterSpec};
    use logbook_journal::{LinkStatus, Reachability};

    use super::*;
    use crate::metrics::fixture::Fixture;
    use crate::metrics::summarize_cluster;

    fn rendered(f: &Fixture) -> String {
        let summary = summarize_cluster(&f.state).unwrap();
        let mut out = Vec::new();
        write_summary(&mut out, &summary).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn row<'a>(text: &'a str, shard: &str) -> &'a str {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{shard} ")))
            .unwrap_or_else(|| panic!("no row for shard {shard}:\n{text}"))
    }

    #[test]
    fn a_formed_cluster_shows_each_shard_by_its_first_slot() {
        let text = rendered(&Fixture::formed());
        assert!(
            text.contains(
                "3/3 served, 16384 of 16384 slots owned, 3 of 3 replicas in sync, cluster_state ok"
            ),
            "{text}"
        );
        assert_eq!(
            row(&text, "0").split_whitespace().collect::<Vec<_>>(),
            [
                "0", "shop-0", "served", "0-5461", "5462", "shop-3", "(in", "sync)"
            ]
        );
        assert!(row(&text, "5462").contains("shop-1"), "{text}");
        assert!(row(&text, "5462").contains("5462-10922"), "{text}");
        assert!(row(&text, "10923").contains("10923-16383"), "{text}");
        assert!(row(&text, "10923").contains("shop-5 (in sync)"), "{text}");
    }

    #[test]
    fn a_dead_primary_and_a_broken_link_show() {
        let mut f = Fixture::formed();
        f.reach(1, Reachability::Refused);
        f.link(5, LinkStatus::Down);
        let text = rendered(&f);
        assert!(text.contains("2/3 served"), "{text}");
        assert!(text.contains("2 of 3 replicas in sync"), "{text}");
        assert!(row(&text, "5462").contains("not answering"), "{text}");
        // shop-4 follows the unreachable shop-1: its link is up, it is in sync.
        assert!(row(&text, "5462").contains("shop-4 (in sync)"), "{text}");
        assert!(
            row(&text, "10923").contains("shop-5 (not in sync)"),
            "{text}"
        );
    }

    #[test]
    fn a_forming_cluster_says_so() {
        let mut f = Fixture::cluster();
        f.primary(0, 0, vec![SlotRange { start: 0, end: 99 }], 1);
        let text = rendered(&f);
        assert!(text.contains("forming, 100 of 16384 slots owned"), "{text}");
        assert!(row(&text, "0").contains("0-99"), "{text}");
    }

    fn published(shards: usize) -> ValkeyCluster {
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
        spec.shards = Some(i32::try_from(shards).unwrap());
        let mut c = ValkeyCluster::new("shop", spec);
        let per = 16_384 / i32::try_from(shards.max(1)).unwrap();
        c.status = Some(ValkeyClusterStatus {
            shards: (0..shards)
                .map(|i| {
                    let i32_i = i32::try_from(i).unwrap();
                    ShardStatus {
                        index: i32_i,
                        name: format!("shard-{i}"),
                        primary: Some(format!("shop-{i}")),
                        replicas: vec![format!("shop-{}", i + shards)],
                        slots: vec![CrdRange {
                            start: i32_i * per,
                            end: i32_i * per + per - 1,
                        }],
                    }
                })
                .collect(),
            ..ValkeyClusterStatus::default()
        });
        c
    }

    #[test]
    fn the_list_names_the_primaries_of_a_few_shards_and_counts_many() {
        assert_eq!(primaries_cell(&published(2)), "2 shards: shop-0,shop-1");
        assert_eq!(
            primaries_cell(&published(5)),
            "5 shards: shop-0,shop-1,shop-2,+2"
        );
        assert_eq!(primaries_cell(&published(0)), "-");
        assert_eq!(
            header_line(&published(2)),
            "2 of 2 wanted, 16384 of 16384 slots owned"
        );
    }

    #[test]
    fn a_reshard_in_the_status_is_shown_and_none_says_nothing() {
        assert!(reshard_lines(&published(2)).is_empty());
        let mut c = published(2);
        if let Some(s) = c.status.as_mut() {
            s.reshard = Some(logbook_crds::v1alpha1::ReshardStatus {
                phase: "Failing".to_owned(),
                generation: 3,
                shards: 3,
                slots_moved: 2730,
                slots_remaining: 2731,
                migrations_running: 0,
                message: "reshard stopped: moving slots from shop-1 to shop-2 failed 5 times in a row with: ERR; fix the cause and change the spec".to_owned(),
            });
        }
        assert_eq!(
            reshard_lines(&c),
            vec![
                "Failing (given up under this generation), generation 3 (3 shards wanted): 2730 slots moved, 2731 remaining, 0 migration(s) running".to_owned(),
                "reshard stopped: moving slots from shop-1 to shop-2 failed 5 times in a row with: ERR; fix the cause and change the spec".to_owned(),
            ]
        );
    }

    #[test]
    fn the_published_shards_stand_in_for_an_unreadable_journal() {
        let c = published(2);
        let mut out = Vec::new();
        write_published(&mut out, &c.status.unwrap().shards).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(row(&text, "0").contains("shop-0"), "{text}");
        assert!(row(&text, "8192").contains("8192-16383"), "{text}");
        assert!(row(&text, "8192").contains("shop-3"), "{text}");
    }
}
