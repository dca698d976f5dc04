//! `state --at`: the projection as it was at a seq or a time — what the
//! operator believed then — as YAML; for a Valkey Cluster, followed by
//! what its node reports show (`valkey_cluster`: roles, slot map,
//! formation, unowned slots) and, while slots move, the reshard under
//! way: the migration jobs seen running, the moves in flight, slots
//! marked half-moved and moves failing in a row.

use std::io::Write;
use std::str::FromStr;

use logbook_journal::cluster::describe_slots;
use logbook_journal::projection::cluster::ClusterPart;
use logbook_journal::{ClusterState, Envelope, Intent, JournalStore, SlotRange, Timestamp};
use serde::Serialize;

use crate::cluster_facts::short;

use crate::error::{ReplayError, Result};
use crate::source::{Flow, Input, Raw, Start, Visit};

/// A point in a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Just after the event with this seq was folded.
    Seq(u64),
    /// After every event appended at or before this time.
    Time(Timestamp),
}

impl FromStr for Point {
    type Err = ReplayError;

    fn from_str(text: &str) -> Result<Self> {
        if let Ok(seq) = text.parse::<u64>() {
            return Ok(Self::Seq(seq));
        }
        Timestamp::parse(text).map(Self::Time).map_err(|e| {
            ReplayError::BadArgument(format!(
                "--at {text:?}: neither a seq nor an RFC 3339 time ({e})"
            ))
        })
    }
}

struct Fold {
    point: Point,
    state: ClusterState,
    first_at: Option<Timestamp>,
    start: Option<Start>,
}

impl Visit for Fold {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.state = start.base.clone();
        self.start = Some(start.clone());
        Ok(())
    }

    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        self.first_at.get_or_insert(e.at);
        let past = match self.point {
            Point::Seq(seq) => e.seq > seq,
            Point::Time(t) => e.at > t,
        };
        if past {
            return Ok(Flow::Stop);
        }
        self.state.apply(e);
        Ok(Flow::Continue)
    }
}

/// The projection of `input` at `point`, with the scan's start.
///
/// # Errors
/// [`ReplayError::BadArgument`] when the point is before what the
/// journal holds or beyond its head; scan errors.
pub async fn state_at<S: JournalStore>(
    input: &Input<S>,
    point: Point,
) -> Result<(ClusterState, Start)> {
    let until = match point {
        Point::Seq(seq) => Some(seq),
        Point::Time(_) => None,
    };
    let mut fold = Fold {
        point,
        state: ClusterState::new(),
        first_at: None,
        start: None,
    };
    input.scan(until, &mut fold).await?;
    let start = fold.start.ok_or_else(|| ReplayError::Unreadable {
        place: input.place(),
        what: "no events".to_owned(),
    })?;
    let base = start.base.last_seq;
    match point {
        Point::Seq(seq) if seq > start.head.seq => {
            return Err(ReplayError::BadArgument(format!(
                "--at {seq}: beyond the head of stream {} (seq {})",
                start.stream, start.head.seq
            )));
        }
        Point::Seq(seq) if seq < base || (seq == 0 && base == 0) => {
            return Err(ReplayError::BadArgument(format!(
                "--at {seq}: the journal of stream {} holds events from seq {} on{}",
                start.stream,
                start.first_seq(),
                start
                    .from_snapshot
                    .map(|s| format!(" (the snapshot at seq {s} covers what was compacted)"))
                    .unwrap_or_default()
            )));
        }
        Point::Time(t) if fold.state.last_seq == base && fold.first_at.is_some_and(|f| t < f) => {
            return Err(ReplayError::BadArgument(format!(
                "--at {t}: before the first event of stream {} ({})",
                start.stream,
                fold.first_at.unwrap_or_default()
            )));
        }
        Point::Seq(_) | Point::Time(_) => {}
    }
    Ok((fold.state, start))
}

/// Writes the state as YAML, under a comment naming the point.
///
/// # Errors
/// Output errors; YAML encoding errors.
pub fn write_yaml(out: &mut dyn Write, state: &ClusterState, start: &Start) -> Result<()> {
    writeln!(
        out,
        "# projection of stream {}{} as of seq {} ({})",
        start.stream,
        start
            .cluster
            .as_ref()
            .map(|c| format!(" (cluster {c})"))
            .unwrap_or_default(),
        state.last_seq,
        state.last_at
    )?;
    let yaml = serde_yaml::to_string(state)
        .map_err(|e| ReplayError::BadArgument(format!("cannot render the state as YAML: {e}")))?;
    out.write_all(yaml.as_bytes())?;
    if !state.cluster.pods.is_empty() {
        let view = Derived {
            valkey_cluster: cluster_view(state),
        };
        let yaml = serde_yaml::to_string(&view).map_err(|e| {
            ReplayError::BadArgument(format!("cannot render the cluster view as YAML: {e}"))
        })?;
        writeln!(
            out,
            "# derived from the node reports above: each pod's role, and the slot map (a contested slot goes to the higher config epoch); while slots move, the jobs seen under way, the moves in flight, half-moved slots and moves failing"
        )?;
        out.write_all(yaml.as_bytes())?;
    }
    Ok(())
}

/// The extra top-level key of a Valkey Cluster's state.
#[derive(Serialize)]
struct Derived {
    valkey_cluster: ClusterView,
}

/// A Valkey Cluster as its node reports show it at the point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// Whether every slot has had an owner (from then on slots only move).
    pub formed: bool,
    /// Seq of the report with which it formed.
    pub formed_at: Option<u64>,
    /// Slots no node claims.
    pub unowned_slots: u32,
    /// Each pod's current node and role.
    pub pods: Vec<PodRole>,
    /// Ownership as runs of slots.
    pub slots: Vec<SlotOwner>,
    /// The reshard of the latest generation that decided a move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reshard: Option<ReshardView>,
    /// Atomic slot migration jobs last seen under way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<MigrationView>,
    /// `MoveSlots` and `SettleSlot` decided and not settled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moves_in_flight: Vec<String>,
    /// Slots nodes mark as half-moved (`pod: slot -> node`, `slot <- node`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub half_moved: Vec<String>,
    /// Moves between two nodes failing in a row since their last success
    /// or the last spec change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_moves: Vec<String>,
}

/// The reshard under way, as the projection counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReshardView {
    /// Its spec generation.
    pub generation: i64,
    /// Slots its first decision planned to move.
    pub planned: u32,
    /// Slots its succeeded moves carried.
    pub moved: u32,
    /// Seq of its first decision.
    pub started_seq: u64,
}

/// A migration job seen under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationView {
    /// The job's name's first 8 characters.
    pub job: String,
    /// `export` (listed by the source) or `import` (by the target).
    pub side: &'static str,
    /// The pod listing it.
    pub listed_by: String,
    /// `<source pod> -> <target pod>` (node ids where no pod is known).
    pub moves: String,
    /// Its slots.
    pub slots: String,
    /// Valkey's state when last listed.
    pub phase: String,
    /// When it was first seen under way.
    pub since: Timestamp,
    /// Bytes of the slots' writes still to send, when last listed.
    pub remaining_repl_size: u64,
}

/// One pod's node and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRole {
    /// Pod name.
    pub pod: String,
    /// Its node id's first 8 characters.
    pub node: String,
    /// `primary` or `replica`.
    pub role: &'static str,
    /// For a replica: the pod of its primary (`node <id>` when no pod
    /// is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
    /// For a primary: the slots it claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<String>,
    /// Its config epoch.
    pub config_epoch: u64,
}

/// A run of slots and their owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotOwner {
    /// `start-end`.
    pub slots: String,
    /// The owner's pod (`None`: unowned).
    pub pod: Option<String>,
    /// The owner's node id's first 8 characters.
    pub node: Option<String>,
}

/// The cluster view of `state`.
#[must_use]
pub fn cluster_view(state: &ClusterState) -> ClusterView {
    let c = &state.cluster;
    let pods = c
        .pods
        .iter()
        .filter_map(|(pod, id)| {
            let report = &c.nodes.get(id)?.report;
            Some(PodRole {
                pod: pod.clone(),
                node: short(id).to_owned(),
                role: if report.is_primary() {
                    "primary"
                } else {
                    "replica"
                },
                of: report.primary_id.as_deref().map(|p| {
                    c.pod_of(p)
                        .map_or_else(|| format!("node {}", short(p)), str::to_owned)
                }),
                claims: report.is_primary().then(|| describe_slots(&report.slots)),
                config_epoch: report.config_epoch,
            })
        })
        .collect();
    let mut slots: Vec<SlotOwner> = Vec::new();
    let mut last: Option<(SlotRange, Option<&str>)> = None;
    for (slot, owner) in (0u16..).zip(c.slot_owners()) {
        match &mut last {
            Some((range, o)) if *o == owner => range.end = slot,
            _ => {
                slots.extend(last.take().map(|(r, o)| owner_run(c, r, o)));
                last = Some((
                    SlotRange {
                        start: slot,
                        end: slot,
                    },
                    owner,
                ));
            }
        }
    }
    slots.extend(last.map(|(r, o)| owner_run(c, r, o)));
    let reshard = &state.reshard;
    let pod_or_node = |id: &str| {
        c.pod_of(id)
            .map_or_else(|| format!("node {}", short(id)), str::to_owned)
    };
    ClusterView {
        formed: c.formed_at.is_some(),
        formed_at: c.formed_at,
        unowned_slots: c.unassigned(),
        pods,
        slots,
        reshard: reshard.run.as_ref().map(|r| ReshardView {
            generation: r.generation,
            planned: r.planned,
            moved: r.moved,
            started_seq: r.started_seq,
        }),
        migrations: reshard
            .migrations
            .values()
            .map(|m| MigrationView {
                job: short(&m.job.name).to_owned(),
                side: m.job.side.name(),
                listed_by: m.pod.clone(),
                moves: format!(
                    "{} -> {}",
                    pod_or_node(&m.job.source),
                    pod_or_node(&m.job.target)
                ),
                slots: describe_slots(&m.job.slots),
                phase: m.job.phase.name().to_owned(),
                since: m.since,
                remaining_repl_size: m.job.remaining_repl_size,
            })
            .collect(),
        moves_in_flight: state
            .in_flight
            .values()
            .filter(|f| {
                matches!(
                    f.planned.intent,
                    Intent::MoveSlots { .. } | Intent::SettleSlot { .. }
                )
            })
            .map(|f| {
                format!(
                    "{} (decided at seq {})",
                    f.planned.intent.describe(),
                    f.decided_seq
                )
            })
            .collect(),
        half_moved: reshard
            .slot_states
            .iter()
            .flat_map(|(pod, s)| {
                let migrating = s.migrating.iter().map(move |m| {
                    format!("{pod}: {} migrating -> {}", m.slot, pod_or_node(&m.node_id))
                });
                let importing = s.importing.iter().map(move |m| {
                    format!("{pod}: {} importing <- {}", m.slot, pod_or_node(&m.node_id))
                });
                migrating.chain(importing).collect::<Vec<_>>()
            })
            .collect(),
        failing_moves: reshard
            .failures
            .iter()
            .map(|(key, f)| {
                let (from, to) = key.split_once('>').unwrap_or((key.as_str(), ""));
                format!(
                    "{} -> {}: {} failure(s) in a row, the last {} alike: {}",
                    pod_or_node(from),
                    pod_or_node(to),
                    f.count,
                    f.same_error,
                    f.last_error
                )
            })
            .collect(),
    }
}

fn owner_run(c: &ClusterPart, range: SlotRange, owner: Option<&str>) -> SlotOwner {
    SlotOwner {
        slots: describe_slots(&[range]),
        pod: owner.and_then(|id| c.pod_of(id)).map(str::to_owned),
        node: owner.map(|id| short(id).to_owned()),
    }
}
