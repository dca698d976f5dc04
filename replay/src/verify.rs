//! `verify`: every CRC, seq and chain link, and the head; the first broken
//! link (stream, seq, what differs), or one line with the head hash.

use std::io::Write;

use logbook_journal::{ChainHash, JournalStore, ProblemKind};
use serde::Serialize;

use crate::error::{ReplayError, Result};
use crate::source::{Flow, Input, Raw, Start, Visit};

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The seq of the offending event (or of the head / snapshot).
    pub seq: u64,
    /// What kind of problem.
    pub kind: String,
    /// What differs.
    pub detail: String,
}

/// The result of verifying one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The stream.
    pub stream: String,
    /// `namespace/name`, when known.
    pub cluster: Option<String>,
    /// Events that passed every check.
    pub events: u64,
    /// The head's seq.
    pub head_seq: u64,
    /// The head's hash.
    pub head_hash: ChainHash,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// Counts the events of a file that verify, keeping its header's start.
#[derive(Default)]
struct Counted {
    events: u64,
    start: Option<Start>,
}

impl Visit for Counted {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.start = Some(start.clone());
        Ok(())
    }

    fn event(&mut self, _: &logbook_journal::Envelope, _: Raw<'_>) -> Result<Flow> {
        self.events = self.events.saturating_add(1);
        Ok(Flow::Continue)
    }
}

const fn kind_name(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::BadCrc => "bad CRC",
        ProblemKind::BadLength => "bad length",
        ProblemKind::TornTail => "torn tail",
        ProblemKind::BadHashLink => "broken hash link",
        ProblemKind::Undecodable => "undecodable",
        ProblemKind::SeqGap => "seq gap",
        ProblemKind::HeadMismatch => "head mismatch",
        ProblemKind::BadSnapshot => "bad snapshot",
    }
}

/// Verifies `input`. A store is checked by the journal's own verifier
/// (frames, links, snapshot, head); a file by re-hashing every line.
///
/// # Errors
/// Unreadable input and store failures; damage is reported in [`Verified`].
pub async fn verify<S: JournalStore>(input: &Input<S>) -> Result<Verified> {
    match input {
        Input::Store {
            store,
            stream,
            cluster,
            place,
        } => {
            let report = logbook_journal::verify::verify(store, stream)
                .await
                .map_err(|source| ReplayError::Store {
                    place: place.clone(),
                    source: Box::new(source),
                })?;
            if report.head.seq == 0 && report.problem.is_none() {
                return Err(ReplayError::Unreadable {
                    place: place.clone(),
                    what: format!("stream {stream} has no events"),
                });
            }
            Ok(Verified {
                stream: stream.to_string(),
                cluster: cluster.clone(),
                events: report.events_checked,
                head_seq: report.head.seq,
                head_hash: report.head.hash,
                problem: report.problem.map(|p| Problem {
                    seq: p.seq,
                    kind: kind_name(p.kind).to_owned(),
                    detail: p.detail,
                }),
            })
        }
        Input::File(_) => {
            let mut counted = Counted::default();
            let scanned = input.scan(None, &mut counted).await;
            let Counted { events, start } = counted;
            let problem = match scanned {
                Ok(position) => start.as_ref().and_then(|s| {
                    if position.seq != s.head.seq {
                        Some(Problem {
                            seq: position.seq.saturating_add(1),
                            kind: "seq gap".to_owned(),
                            detail: format!(
                                "the header names head seq {} but the events end at seq {}",
                                s.head.seq, position.seq
                            ),
                        })
                    } else if position.hash != s.head.hash {
                        Some(Problem {
                            seq: position.seq,
                            kind: "broken hash link".to_owned(),
                            detail: format!(
                                "the header names head hash {} but the last event hashes to {}",
                                s.head.hash, position.hash
                            ),
                        })
                    } else {
                        None
                    }
                }),
                Err(ReplayError::BadLine {
                    seq, what, line, ..
                }) if start.is_some() => Some(Problem {
                    seq,
                    kind: "bad event line".to_owned(),
                    detail: format!("line {line}: {what}"),
                }),
                Err(e) => return Err(e),
            };
            let start = start.ok_or_else(|| ReplayError::Unreadable {
                place: input.place(),
                what: "no header".to_owned(),
            })?;
            Ok(Verified {
                stream: start.stream.to_string(),
                cluster: start.cluster,
                events,
                head_seq: start.head.seq,
                head_hash: start.head.hash,
                problem,
            })
        }
    }
}

/// Writes the result: one line when intact.
///
/// # Errors
/// Output errors.
pub fn write_text(out: &mut dyn Write, v: &Verified) -> std::io::Result<()> {
    let cluster = v
        .cluster
        .as_ref()
        .map(|c| format!(" (cluster {c})"))
        .unwrap_or_default();
    match &v.problem {
        None => writeln!(
            out,
            "OK stream {}{cluster}: {} events verified, head seq {} hash {}",
            v.stream, v.events, v.head_seq, v.head_hash
        ),
        Some(p) => writeln!(
            out,
            "BROKEN stream {}{cluster}: first broken link at seq {}: {}: {} ({} events before it verified)",
            v.stream, p.seq, p.kind, p.detail, v.events
        ),
    }
}
