//! Which safe repairs apply to a damaged stream, and what each removes.
//!
//! Pure: [`plan`] takes the [`Facts`] that `diagnose` gathered and returns
//! data. It never reads a store nor applies anything (`repair.rs` does), so
//! every rule is tested here without one.
//!
//! The rules keep to what the journal can lose without lying: events after
//! the last good snapshot may be cut off (the operator re-observes the world
//! after a repair), events the snapshot covers may be dropped in favour of
//! the snapshot, a damaged snapshot may be refolded from intact events. A
//! frame written by a newer Logbook, or a head that disagrees with what is
//! stored beyond it, is never cut: a person decides.

use std::fmt;
use std::str::FromStr;

use logbook_journal::codec::CodecError;
use logbook_journal::{ChainHash, Head, ProblemKind};

/// A repair `logbook journal repair --apply` can perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairKind {
    /// Remove the last frame, which is partial or unreadable.
    TruncateTornTail,
    /// Remove every event from this seq to the head.
    TruncateFrom(u64),
    /// Drop every event the snapshot covers; the snapshot is the projection.
    RebuildFromSnapshot,
    /// Replace a damaged snapshot with one folded from the intact events.
    RewriteSnapshot,
}

impl fmt::Display for RepairKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncateTornTail => f.write_str("truncate-torn-tail"),
            Self::TruncateFrom(seq) => write!(f, "truncate-from:{seq}"),
            Self::RebuildFromSnapshot => f.write_str("rebuild-from-snapshot"),
            Self::RewriteSnapshot => f.write_str("rewrite-snapshot"),
        }
    }
}

impl FromStr for RepairKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "truncate-torn-tail" => Ok(Self::TruncateTornTail),
            "rebuild-from-snapshot" => Ok(Self::RebuildFromSnapshot),
            "rewrite-snapshot" => Ok(Self::RewriteSnapshot),
            other => {
                // The seq is part of the name so that a repair listed by a
                // dry run is refused when the journal has moved since.
                let seq = other
                    .strip_prefix("truncate-from:")
                    .or_else(|| other.strip_prefix("truncate-from="))
                    .ok_or_else(|| {
                        format!(
                            "unknown repair {other:?}: expected truncate-torn-tail, \
                             truncate-from:<seq>, rebuild-from-snapshot or rewrite-snapshot"
                        )
                    })?;
                seq.parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .map(Self::TruncateFrom)
                    .ok_or_else(|| format!("truncate-from needs a seq of at least 1, got {seq:?}"))
            }
        }
    }
}

/// The first thing wrong with a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `verify` found a problem at `seq`.
    Frame {
        /// The seq verify reported.
        seq: u64,
        /// Its kind.
        kind: ProblemKind,
        /// Verify's detail.
        detail: String,
    },
    /// The head record (the commit point) is missing or unreadable.
    HeadUnreadable {
        /// What is wrong with it.
        detail: String,
    },
    /// The snapshot record is unreadable (its frame may still be fine).
    SnapshotUnreadable {
        /// What is wrong with it.
        detail: String,
    },
}

/// Whether the events after the snapshot verify from its hash to the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Not looked at (not needed by the plan).
    Unchecked,
    /// Every event after the snapshot verifies and ends at the head.
    Clean,
    /// The first problem after the snapshot.
    Broken {
        /// Its seq.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
}

/// The stored snapshot, as far as it decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFacts {
    /// The seq it covers.
    pub seq: u64,
    /// Its chain hash (the `prev` of `seq + 1`).
    pub hash: ChainHash,
    /// Whether its frame decodes and agrees with its record.
    pub intact: bool,
    /// The events after it.
    pub tail: Tail,
}

/// Everything the plan needs to know about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The head as stored ([`Head::EMPTY`] when unreadable).
    pub head: Head,
    /// The first stored seq (after compaction), if any frame is stored.
    pub floor: Option<u64>,
    /// The first problem; `None` when the stream verifies.
    pub problem: Option<Problem>,
    /// The stored snapshot, if any.
    pub snapshot: Option<SnapshotFacts>,
    /// The verified seq and hash just before the problem's seq: the head a
    /// truncation restores.
    pub anchor: Option<Head>,
    /// How the frame at the problem's seq fails its own checks (`None`: it
    /// passes them, or is not stored).
    pub frame_error: Option<CodecError>,
    /// Whether every event from seq 1 verifies and ends at the head
    /// (checked only when the snapshot is damaged).
    pub intact_from_genesis: bool,
}

/// One applicable repair and the events it removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The repair.
    pub kind: RepairKind,
    /// The seqs it removes from the journal (`None`: it removes none).
    pub removes: Option<(u64, u64)>,
    /// The head seq afterwards.
    pub head_after: u64,
    /// Damage the repair leaves for a later one, if any.
    pub leaves: Option<String>,
}

/// What can be done about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The stream verifies: nothing to do.
    Clean,
    /// These repairs apply (any one of them; they are alternatives).
    Repairs(Vec<Repair>),
    /// No safe repair applies, for this reason.
    Nothing(String),
}

/// The safe repairs for a stream with `facts`.
#[must_use]
pub fn plan(facts: &Facts) -> Plan {
    match &facts.problem {
        None => Plan::Clean,
        Some(Problem::HeadUnreadable { detail }) => Plan::Nothing(format!(
            "the head record is unreadable ({detail}); it is the commit point that names \
             every frame of the journal, so no frame can be trusted without it"
        )),
        Some(Problem::SnapshotUnreadable { .. }) => snapshot_plan(facts),
        Some(Problem::Frame { seq, kind, .. }) => frame_plan(facts, *seq, *kind),
    }
}

/// The snapshot itself is damaged: it can only be refolded from events
/// that reach back to seq 1.
fn snapshot_plan(facts: &Facts) -> Plan {
    if facts.intact_from_genesis {
        return Plan::Repairs(vec![Repair {
            kind: RepairKind::RewriteSnapshot,
            removes: None,
            head_after: facts.head.seq,
            leaves: None,
        }]);
    }
    Plan::Nothing(
        "the snapshot is damaged and the events do not verify from seq 1 without it \
         (compacted or damaged too), so nothing intact can rebuild the projection"
            .to_owned(),
    )
}

fn frame_plan(facts: &Facts, seq: u64, kind: ProblemKind) -> Plan {
    let head = facts.head.seq;
    if let Some(CodecError::UnsupportedVersion(version)) = facts.frame_error {
        return Plan::Nothing(format!(
            "seq {seq} is in format version {version}, newer than this build reads: \
             it is probably a valid event; run a newer logbook instead of cutting it"
        ));
    }
    match kind {
        ProblemKind::BadSnapshot => return snapshot_plan(facts),
        ProblemKind::HeadMismatch => {
            return Plan::Nothing(format!(
                "events are stored beyond the head at seq {head}: the head (the commit \
                 point) and the stored frames disagree, and no repair moves a head forward"
            ));
        }
        ProblemKind::BadCrc
        | ProblemKind::BadLength
        | ProblemKind::TornTail
        | ProblemKind::BadHashLink
        | ProblemKind::Undecodable
        | ProblemKind::SeqGap => {}
    }
    if let Some(snapshot) = &facts.snapshot
        && snapshot.intact
        && seq <= snapshot.seq
    {
        return rebuild_plan(facts, snapshot);
    }
    let Some(anchor) = facts.anchor.filter(|a| a.seq.saturating_add(1) == seq) else {
        return Plan::Nothing(format!(
            "seq {} is neither stored and verified nor covered by the snapshot, so no \
             head can be restored before seq {seq}",
            seq.saturating_sub(1)
        ));
    };
    if seq > head {
        return Plan::Nothing(format!(
            "the problem at seq {seq} lies beyond the head at seq {head}"
        ));
    }
    let kind = if seq == head && facts.frame_error.as_ref().is_some_and(is_torn) {
        RepairKind::TruncateTornTail
    } else {
        RepairKind::TruncateFrom(seq)
    };
    Plan::Repairs(vec![Repair {
        kind,
        removes: Some((seq, head)),
        head_after: anchor.seq,
        leaves: None,
    }])
}

fn rebuild_plan(facts: &Facts, snapshot: &SnapshotFacts) -> Plan {
    if snapshot.seq > facts.head.seq {
        return Plan::Nothing(format!(
            "the snapshot claims seq {} beyond the head at seq {}",
            snapshot.seq, facts.head.seq
        ));
    }
    let leaves = match &snapshot.tail {
        Tail::Unchecked | Tail::Clean => None,
        Tail::Broken { seq, detail } => Some(format!(
            "seq {seq} after the snapshot is damaged too ({detail}): run repair again \
             afterwards"
        )),
    };
    let first = facts.floor.unwrap_or(1).min(snapshot.seq);
    Plan::Repairs(vec![Repair {
        kind: RepairKind::RebuildFromSnapshot,
        removes: (snapshot.seq > 0).then_some((first, snapshot.seq)),
        head_after: facts.head.seq,
        leaves,
    }])
}

/// Whether a last frame failing with `err` is a write that never completed
/// (what `verify::repair_torn_tail` agrees to remove).
const fn is_torn(err: &CodecError) -> bool {
    match err {
        CodecError::Truncated { .. }
        | CodecError::TooLong { .. }
        | CodecError::BadCrc { .. }
        | CodecError::Undecodable(_) => true,
        CodecError::TrailingBytes { .. }
        | CodecError::UnsupportedVersion(_)
        | CodecError::Encode(_)
        | CodecError::SeqMismatch { .. }
        | CodecError::HashMismatch { .. } => false,
    }
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

    fn head(seq: u64) -> Head {
        Head {
            seq,
            hash: ChainHash([seq as u8; 32]),
        }
    }

    /// A 50-event stream with a problem at `seq` and the anchor before it.
    fn damaged(seq: u64, kind: ProblemKind, frame_error: Option<CodecError>) -> Facts {
        Facts {
            head: head(50),
            floor: Some(1),
            problem: Some(Problem::Frame {
                seq,
                kind,
                detail: "damage".into(),
            }),
            snapshot: None,
            anchor: Some(head(seq - 1)),
            frame_error,
            intact_from_genesis: false,
        }
    }

    fn snapshot_at(seq: u64, intact: bool, tail: Tail) -> Option<SnapshotFacts> {
        Some(SnapshotFacts {
            seq,
            hash: ChainHash([9; 32]),
            intact,
            tail,
        })
    }

    fn crc() -> Option<CodecError> {
        Some(CodecError::BadCrc {
            stored: 1,
            computed: 2,
        })
    }

    #[test]
    fn repair_names_round_trip() {
        for kind in [
            RepairKind::TruncateTornTail,
            RepairKind::TruncateFrom(42),
            RepairKind::RebuildFromSnapshot,
            RepairKind::RewriteSnapshot,
        ] {
            assert_eq!(kind.to_string().parse::<RepairKind>(), Ok(kind));
        }
        assert_eq!("truncate-from=7".parse(), Ok(RepairKind::TruncateFrom(7)));
        assert!("truncate-from".parse::<RepairKind>().is_err());
        assert!("truncate-from:0".parse::<RepairKind>().is_err());
        assert!("drop-everything".parse::<RepairKind>().is_err());
    }

    #[test]
    fn a_clean_stream_needs_nothing() {
        let mut facts = damaged(5, ProblemKind::BadCrc, None);
        facts.problem = None;
        assert_eq!(plan(&facts), Plan::Clean);
    }

    #[test]
    fn a_torn_last_frame_is_truncated_alone() {
        let facts = damaged(
            50,
            ProblemKind::TornTail,
            Some(CodecError::Truncated {
                needed: 100,
                available: 40,
            }),
        );
        assert_eq!(
            plan(&facts),
            Plan::Repairs(vec![Repair {
                kind: RepairKind::TruncateTornTail,
                removes: Some((50, 50)),
                head_after: 49,
                leaves: None,
            }])
        );
    }

    #[test]
    fn a_complete_last_frame_that_breaks_the_chain_is_not_a_torn_tail() {
        let facts = damaged(
            50,
            ProblemKind::BadHashLink,
            Some(CodecError::HashMismatch {
                stored: ChainHash([1; 32]),
                computed: ChainHash([2; 32]),
            }),
        );
        let Plan::Repairs(repairs) = plan(&facts) else {
            panic!("{:?}", plan(&facts));
        };
        assert_eq!(repairs[0].kind, RepairKind::TruncateFrom(50));
    }

    #[test]
    fn damage_after_the_snapshot_truncates_from_it_to_the_head() {
        let mut facts = damaged(42, ProblemKind::BadCrc, crc());
        facts.snapshot = snapshot_at(40, true, Tail::Unchecked);
        assert_eq!(
            plan(&facts),
            Plan::Repairs(vec![Repair {
                kind: RepairKind::TruncateFrom(42),
                removes: Some((42, 50)),
                head_after: 41,
                leaves: None,
            }])
        );
    }

    #[test]
    fn damage_the_snapshot_covers_rebuilds_from_it() {
        let mut facts = damaged(12, ProblemKind::BadCrc, crc());
        facts.snapshot = snapshot_at(40, true, Tail::Clean);
        assert_eq!(
            plan(&facts),
            Plan::Repairs(vec![Repair {
                kind: RepairKind::RebuildFromSnapshot,
                removes: Some((1, 40)),
                head_after: 50,
                leaves: None,
            }])
        );
        facts.snapshot = snapshot_at(
            40,
            true,
            Tail::Broken {
                seq: 45,
                detail: "bad crc".into(),
            },
        );
        let Plan::Repairs(repairs) = plan(&facts) else {
            panic!();
        };
        assert!(repairs[0].leaves.as_ref().unwrap().contains("seq 45"));
    }

    #[test]
    fn a_damaged_snapshot_is_rewritten_only_from_intact_events() {
        let mut facts = damaged(40, ProblemKind::BadSnapshot, None);
        facts.snapshot = snapshot_at(40, false, Tail::Unchecked);
        assert!(matches!(plan(&facts), Plan::Nothing(_)));
        facts.intact_from_genesis = true;
        assert_eq!(
            plan(&facts),
            Plan::Repairs(vec![Repair {
                kind: RepairKind::RewriteSnapshot,
                removes: None,
                head_after: 50,
                leaves: None,
            }])
        );
        facts.problem = Some(Problem::SnapshotUnreadable {
            detail: "no seq".into(),
        });
        assert!(matches!(plan(&facts), Plan::Repairs(_)));
    }

    #[test]
    fn an_unreadable_head_or_a_newer_format_or_a_head_behind_the_frames_is_left_to_a_person() {
        let mut facts = damaged(50, ProblemKind::BadCrc, crc());
        facts.problem = Some(Problem::HeadUnreadable {
            detail: "head has no \"seq\"".into(),
        });
        assert!(matches!(plan(&facts), Plan::Nothing(why) if why.contains("commit point")));
        let facts = damaged(
            50,
            ProblemKind::Undecodable,
            Some(CodecError::UnsupportedVersion(9)),
        );
        assert!(matches!(plan(&facts), Plan::Nothing(why) if why.contains("newer")));
        let facts = damaged(51, ProblemKind::HeadMismatch, None);
        assert!(matches!(plan(&facts), Plan::Nothing(_)));
    }

    #[test]
    fn without_a_verified_predecessor_nothing_can_be_truncated() {
        let mut facts = damaged(30, ProblemKind::SeqGap, None);
        facts.anchor = None;
        assert!(matches!(plan(&facts), Plan::Nothing(_)));
    }

    #[test]
    fn a_lost_first_event_truncates_to_an_empty_stream() {
        let mut facts = damaged(1, ProblemKind::BadCrc, crc());
        facts.anchor = Some(Head::EMPTY);
        let Plan::Repairs(repairs) = plan(&facts) else {
            panic!();
        };
        assert_eq!(repairs[0].removes, Some((1, 50)));
        assert_eq!(repairs[0].head_after, 0);
    }
}
