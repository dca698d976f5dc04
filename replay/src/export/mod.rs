//! `export`: the journal as JSONL (for tools; `--file` reads it back),
//! CSV (for spreadsheets) or one self-contained HTML report (for people).

pub mod csv;
pub mod html;

use std::io::Write;

use logbook_journal::codec::EVENT_FORMAT_VERSION;
use logbook_journal::{Envelope, JournalStore};

use crate::error::{ReplayError, Result};
use crate::jsonl::{self, Header, SnapshotLine};
use crate::source::{Flow, Input, Raw, Start, Visit};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One self-describing JSON object per line.
    Jsonl,
    /// One row per event, flattened.
    Csv,
    /// A self-contained report.
    Html,
}

impl std::str::FromStr for Format {
    type Err = ReplayError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "jsonl" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            "html" => Ok(Self::Html),
            other => Err(ReplayError::BadArgument(format!(
                "--format {other:?}: choose jsonl, csv or html"
            ))),
        }
    }
}

/// Writes JSONL as the scan goes.
pub struct JsonlExport<'w> {
    out: &'w mut dyn Write,
    exported_by: String,
    /// Events written.
    pub events: u64,
}

impl<'w> JsonlExport<'w> {
    /// An exporter writing to `out`, signing as `exported_by`.
    pub fn new(out: &'w mut dyn Write, exported_by: String) -> Self {
        Self {
            out,
            exported_by,
            events: 0,
        }
    }
}

impl Visit for JsonlExport<'_> {
    fn start(&mut self, start: &Start) -> Result<()> {
        let header = Header {
            logbook_export: jsonl::EXPORT_VERSION,
            stream: start.stream.clone(),
            cluster: start.cluster.clone(),
            source: start.place.clone(),
            first_seq: start.first_seq(),
            head_seq: start.head.seq,
            head_hash: start.head.hash,
            event_format: EVENT_FORMAT_VERSION,
            exported_by: self.exported_by.clone(),
        };
        jsonl::write_header(self.out, &header)?;
        if start.from_snapshot.is_some() {
            jsonl::write_snapshot(
                self.out,
                &SnapshotLine {
                    seq: start.base.last_seq,
                    hash: start.base.last_hash,
                    state: start.base.clone(),
                },
            )?;
        }
        Ok(())
    }

    fn event(&mut self, envelope: &Envelope, raw: Raw<'_>) -> Result<Flow> {
        jsonl::write_event(self.out, envelope, raw.version, raw.frame)?;
        self.events = self.events.saturating_add(1);
        Ok(Flow::Continue)
    }
}

/// Exports `input` as JSONL to `out`; returns the number of events.
///
/// # Errors
/// Scan and output errors.
pub async fn jsonl<S: JournalStore>(
    input: &Input<S>,
    out: &mut dyn Write,
    exported_by: String,
) -> Result<u64> {
    let mut export = JsonlExport::new(out, exported_by);
    input.scan(None, &mut export).await?;
    export.out.flush()?;
    Ok(export.events)
}
