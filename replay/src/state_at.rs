//! `state --at`: the projection as it was at a seq or a time — what the
//! operator believed then — as YAML.

use std::io::Write;
use std::str::FromStr;

use logbook_journal::{ClusterState, Envelope, JournalStore, Timestamp};

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
    Ok(())
}
