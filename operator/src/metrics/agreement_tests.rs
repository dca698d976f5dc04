//! The metrics and `logbook replay failovers` count the same failovers, of
//! the same kinds, on every golden journal (recorded from real end-to-end
//! runs: replay/tests/golden/): both call the journal's one classifier
//! (`logbook_journal::failover`), and this holds them to it where they
//! fold the rest themselves (the last primary, outcomes, what counts as
//! observed).

use logbook_journal::{ClusterState, Envelope, FailoverKind, MemoryStore};
use logbook_replay::failovers::Failovers;
use logbook_replay::source::{Flow, Input, Raw, Start, Visit};

use super::counted_failovers;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../replay/tests/golden");

/// A journal as read: the state before its first event, and its events.
#[derive(Default)]
struct Read {
    base: ClusterState,
    events: Vec<Envelope>,
}

impl Visit for Read {
    fn start(&mut self, start: &Start) -> logbook_replay::Result<()> {
        self.base = start.base.clone();
        Ok(())
    }

    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> logbook_replay::Result<Flow> {
        self.events.push(e.clone());
        Ok(Flow::Continue)
    }
}

/// Every golden journal, by file name.
fn goldens() -> Result<Vec<(String, Read)>, String> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(GOLDEN)
        .map_err(|e| format!("{GOLDEN}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for path in names {
        let name = path.display().to_string();
        let read = match path.extension().and_then(|x| x.to_str()) {
            Some("frames") => {
                let bytes = std::fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
                Read {
                    base: ClusterState::default(),
                    events: logbook_replay::frames::envelopes(&bytes)?,
                }
            }
            Some("jsonl") => {
                let mut read = Read::default();
                futures::executor::block_on(
                    Input::<MemoryStore>::File(path.clone()).scan(None, &mut read),
                )
                .map_err(|e| format!("{name}: {e}"))?;
                read
            }
            _ => continue,
        };
        out.push((name, read));
    }
    Ok(out)
}

#[test]
fn the_metrics_and_replay_count_every_golden_failover_alike() -> Result<(), String> {
    let goldens = goldens()?;
    let mut seen = std::collections::BTreeSet::new();
    for (name, read) in &goldens {
        let mut metrics = counted_failovers(&read.base, &read.events);
        let mut replay = Failovers::of_events(&read.base, &read.events).counted();
        metrics.sort();
        replay.sort();
        if metrics != replay {
            return Err(format!(
                "{name}: the metrics count {metrics:?}, replay {replay:?}"
            ));
        }
        seen.extend(metrics);
    }
    // The goldens hold an automatic failover, a switchover and a shard's
    // coordinated failover: a test that compared nothing would pass.
    let want = [FailoverKind::Automatic, FailoverKind::Planned];
    if goldens.len() < 4 || !want.iter().all(|k| seen.contains(k)) {
        return Err(format!(
            "the goldens ({}) should hold {want:?}; counted {seen:?}",
            goldens.len()
        ));
    }
    Ok(())
}
