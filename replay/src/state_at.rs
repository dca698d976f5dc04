//! `state --at`: the projection as it was at a seq or a time — what the
//! operator believed then — as YAML; for a Valkey Cluster, followed by
//! what its node reports show (`valkey_cluster`: roles, slot map,
//! formation, unowned slots).

use std::io::Write;
use std::str::FromStr;

use logbook_journal::cluster::describe_slots;
use logbook_journal::projection::cluster::ClusterPart;
use logbook_journal::{ClusterState, Envelope, JournalStore, SlotRange, Timestamp};
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
            "# derived from the node reports above: each pod's role, and the slot map (a contested slot goes to the higher config epoch)"
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
    ClusterView {
        formed: c.formed_at.is_some(),
        formed_at: c.formed_at,
        unowned_slots: c.unassigned(),
        pods,
        slots,
    }
}

fn owner_run(c: &ClusterPart, range: SlotRange, owner: Option<&str>) -> SlotOwner {
    SlotOwner {
        slots: describe_slots(&[range]),
        pod: owner.and_then(|id| c.pod_of(id)).map(str::to_owned),
        node: owner.map(|id| short(id).to_owned()),
    }
}
