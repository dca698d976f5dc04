//! Maps the journal's time onto the chart: the scale, the columns a lane
//! is drawn on, and the axis ticks. No drawing here.
//!
//! A lane is drawn on a grid of [`COLUMNS`] columns rather than one bar
//! per change, so a journal of a million events still draws at most
//! `COLUMNS` bars per pod (and as many thin strips). A column shows the
//! state that lasted longest in it; a moment down that did not is drawn as
//! a thin red strip at the foot of the lane, so an outage stays visible
//! however long the journal.

use logbook_journal::Timestamp;

use super::SECOND_US;
use super::lanes::{LaneState, Segment};

/// Columns a lane is drawn on.
pub const COLUMNS: usize = 1000;

/// Maps times to fractions of the drawing's width and to columns.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// The first event's time.
    pub t0: i64,
    /// From the first event to the last, at least 1 µs.
    pub span: i64,
}

impl Scale {
    /// The scale from the first event to the last.
    pub fn new(first: Timestamp, last: Timestamp) -> Self {
        Self {
            t0: first.0,
            span: last.0.saturating_sub(first.0).max(1),
        }
    }

    /// Where `at` falls, from 0 (the first event) to 1 (the last).
    pub fn fraction(self, at: Timestamp) -> f64 {
        let f = at.0.saturating_sub(self.t0) as f64 / self.span as f64;
        f.clamp(0.0, 1.0)
    }

    /// The first microsecond of column `c` (the end of the journal for
    /// `c == COLUMNS`).
    pub fn start_of(self, c: usize) -> i64 {
        let c = i128::try_from(c).unwrap_or(i128::MAX);
        let offset = c.saturating_mul(i128::from(self.span)) / COLUMNS as i128;
        self.t0
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }

    /// The column `at` falls in.
    pub fn column(self, at: Timestamp) -> usize {
        let offset = i128::from(at.0.saturating_sub(self.t0));
        let column = offset.saturating_mul(COLUMNS as i128) / i128::from(self.span);
        usize::try_from(column.max(0))
            .unwrap_or(usize::MAX)
            .min(COLUMNS.saturating_sub(1))
    }
}

/// One column of a lane: how long each state lasted in it, and the first
/// segment of each state there (both indexed by [`LaneState::rank`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Column {
    time: [i64; LaneState::ALL.len()],
    segment: [Option<usize>; LaneState::ALL.len()],
}

impl Column {
    /// The state that lasted longest in the column (the more telling one
    /// on a tie), and its segment.
    fn dominant(&self) -> Option<(LaneState, usize)> {
        LaneState::ALL
            .iter()
            .zip(self.time.iter().zip(&self.segment))
            .filter_map(|(state, (time, segment))| segment.map(|k| (*time, *state, k)))
            .max_by_key(|(time, state, _)| (*time, state.rank()))
            .map(|(_, state, k)| (state, k))
    }
}

/// What column `c` shows.
pub fn dominant_at(cols: &[Column], c: usize) -> Option<(LaneState, usize)> {
    cols.get(c).and_then(Column::dominant)
}

/// When the pod was down in column `c` without that showing (the column
/// and its neighbours show another state): the down segment, drawn as a
/// thin strip so a moment down stays visible however long the journal.
pub fn brief_outage(cols: &[Column], c: usize) -> Option<(LaneState, usize)> {
    let down = cols
        .get(c)?
        .segment
        .get(LaneState::Down.rank())
        .copied()
        .flatten()?;
    let shows_down = |c: Option<usize>| {
        c.and_then(|c| dominant_at(cols, c))
            .is_some_and(|(state, _)| state == LaneState::Down)
    };
    if shows_down(Some(c)) || shows_down(c.checked_sub(1)) || shows_down(c.checked_add(1)) {
        return None;
    }
    Some((LaneState::Down, down))
}

/// Spreads a lane's segments over the columns.
pub fn columns(segments: &[Segment], scale: Scale) -> Vec<Column> {
    let mut cols: Vec<Column> = vec![Column::default(); COLUMNS];
    let end_of_journal = scale.t0.saturating_add(scale.span);
    for (k, s) in segments.iter().enumerate() {
        let start = s.at.0;
        // A segment lasts until the next one starts; the last to the end.
        // One that lasted no time at all still counts as a microsecond.
        let end = segments
            .get(k.saturating_add(1))
            .map_or(end_of_journal, |next| next.at.0)
            .max(start.saturating_add(1));
        let from = scale.column(s.at);
        let to = scale.column(Timestamp(end.saturating_sub(1))).max(from);
        let rank = s.state.rank();
        for (c, col) in cols
            .iter_mut()
            .enumerate()
            .take(to.saturating_add(1))
            .skip(from)
        {
            let lo = start.max(scale.start_of(c));
            let hi = end.min(scale.start_of(c.saturating_add(1)));
            let lasted = hi.saturating_sub(lo).max(1);
            if let Some(time) = col.time.get_mut(rank) {
                *time = time.saturating_add(lasted);
            }
            if let Some(segment) = col.segment.get_mut(rank) {
                segment.get_or_insert(k);
            }
        }
    }
    cols
}

/// A run of columns showing one state: (first column, last column, state,
/// the segment it starts with).
pub type Run = (usize, usize, LaneState, usize);

/// Runs of the state `pick` chooses in each column.
pub fn runs(
    cols: &[Column],
    pick: impl Fn(&[Column], usize) -> Option<(LaneState, usize)>,
) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for c in 0..cols.len() {
        let Some((state, k)) = pick(cols, c) else {
            continue;
        };
        match runs.last_mut() {
            Some(run) if run.1.saturating_add(1) == c && run.2 == state => run.1 = c,
            _ => runs.push((c, c, state, k)),
        }
    }
    runs
}

/// Tick step in microseconds for a span: about six to ten ticks.
pub fn tick_step(span: i64) -> i64 {
    const STEPS: [i64; 27] = [
        1_000,
        2_000,
        5_000,
        10_000,
        20_000,
        50_000,
        100_000,
        200_000,
        500_000,
        SECOND_US,
        2 * SECOND_US,
        5 * SECOND_US,
        10 * SECOND_US,
        15 * SECOND_US,
        30 * SECOND_US,
        60 * SECOND_US,
        120 * SECOND_US,
        300 * SECOND_US,
        600 * SECOND_US,
        900 * SECOND_US,
        1_800 * SECOND_US,
        3_600 * SECOND_US,
        7_200 * SECOND_US,
        10_800 * SECOND_US,
        21_600 * SECOND_US,
        43_200 * SECOND_US,
        86_400 * SECOND_US,
    ];
    STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 8)
        .unwrap_or_else(|| (span / 8 / (86_400 * SECOND_US)).saturating_add(1) * 86_400 * SECOND_US)
}

/// A tick's label, as precise as the step needs.
pub fn tick_label(at: Timestamp, step: i64) -> String {
    let format = if step < SECOND_US {
        "%H:%M:%S%.3f"
    } else if step < 86_400 * SECOND_US {
        "%H:%M:%S"
    } else {
        "%Y-%m-%d"
    };
    at.to_datetime()
        .map_or_else(|| at.to_string(), |t| t.format(format).to_string())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    fn seg(seq: u64, at: i64, state: LaneState) -> Segment {
        Segment {
            seq,
            at: Timestamp(at),
            state,
        }
    }

    #[test]
    fn a_blip_shorter_than_a_column_stays_visible() {
        let scale = Scale::new(Timestamp(0), Timestamp(1_000_000_000));
        let lane = [
            seg(1, 0, LaneState::Primary),
            seg(2, 500_000_000, LaneState::Down),
            seg(3, 500_000_001, LaneState::Primary),
        ];
        let cols = columns(&lane, scale);
        let main = runs(&cols, dominant_at);
        assert_eq!(main.len(), 1, "{main:?}");
        assert_eq!(
            (main[0].0, main[0].1, main[0].2),
            (0, COLUMNS - 1, LaneState::Primary),
            "the primary runs to the end"
        );
        let strips = runs(&cols, brief_outage);
        assert_eq!(strips.len(), 1, "{strips:?}");
        assert_eq!(strips[0].2, LaneState::Down);
        assert_eq!(strips[0].0, strips[0].1, "one column wide");
        assert_eq!(strips[0].3, 1, "from the down segment");
    }

    #[test]
    fn a_column_shows_the_state_that_lasted_longest() {
        // Columns of 1 ms: down for 0.95 ms of column 500 fills it; its
        // last 10 µs in column 501 need no strip beside it.
        let scale = Scale::new(Timestamp(0), Timestamp(1_000_000));
        let lane = [
            seg(1, 0, LaneState::Replica),
            seg(2, 500_050, LaneState::Down),
            seg(3, 501_010, LaneState::Replica),
        ];
        let cols = columns(&lane, scale);
        assert_eq!(cols[500].dominant().unwrap().0, LaneState::Down);
        assert!(brief_outage(&cols, 500).is_none());
        assert!(
            brief_outage(&cols, 501).is_none(),
            "beside a column that shows it"
        );
        assert_eq!(cols[499].dominant().unwrap().0, LaneState::Replica);
        assert_eq!(runs(&cols, dominant_at).len(), 3);
    }

    #[test]
    fn a_million_changes_draw_at_most_one_bar_per_column() {
        let scale = Scale::new(Timestamp(0), Timestamp(1_000_000));
        let lane: Vec<Segment> = (0..1_000_000)
            .map(|i| {
                let state = if i % 2 == 0 {
                    LaneState::Primary
                } else {
                    LaneState::Replica
                };
                seg(i as u64, i, state)
            })
            .collect();
        let cols = columns(&lane, scale);
        assert!(runs(&cols, dominant_at).len() <= COLUMNS);
        assert!(runs(&cols, brief_outage).len() <= COLUMNS);
    }

    #[test]
    fn ticks_are_few() {
        for span in [
            1,
            999,
            2_500_000,
            3_600 * SECOND_US,
            40 * 86_400 * SECOND_US,
        ] {
            let step = tick_step(span);
            assert!(span / step <= 8, "span {span} step {step}");
        }
    }
}
