//! CSV export: one row per event, flattened, RFC 4180 quoting.
//!
//! Columns: `seq,at,epoch,kind,pod,summary,cause,id,intent_ids,prev,hash,event_json`.
//! `event_json` is the event as in the JSONL export, so nothing is lost.

use std::io::Write;

use logbook_journal::{Envelope, Event, JournalStore};

use crate::describe;
use crate::error::Result;
use crate::source::{Flow, Input, Raw, Start, Visit};

/// The header row.
pub const COLUMNS: &str = "seq,at,epoch,kind,pod,summary,cause,id,intent_ids,prev,hash,event_json";

fn field(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    if text.contains([',', '"', '\n', '\r']) {
        out.write_all(b"\"")?;
        out.write_all(text.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(text.as_bytes())
    }
}

/// Writes CSV as the scan goes.
pub struct CsvExport<'w> {
    out: &'w mut dyn Write,
    /// Rows written.
    pub rows: u64,
}

impl<'w> CsvExport<'w> {
    /// An exporter writing to `out`.
    pub fn new(out: &'w mut dyn Write) -> Self {
        Self { out, rows: 0 }
    }
}

impl Visit for CsvExport<'_> {
    fn start(&mut self, _start: &Start) -> Result<()> {
        writeln!(self.out, "{COLUMNS}")?;
        Ok(())
    }

    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        let intents: Vec<String> = match &e.body {
            Event::Decided { intents } => intents.iter().map(|p| p.intent_id.to_string()).collect(),
            Event::IntentSucceeded { intent_id, .. }
            | Event::IntentFailed { intent_id, .. }
            | Event::IntentAbandoned { intent_id, .. } => vec![intent_id.to_string()],
            _ => Vec::new(),
        };
        let event_json = serde_json::to_string(&e.body).map_err(std::io::Error::other)?;
        write!(
            self.out,
            "{},{},{},{},",
            e.seq,
            e.at,
            e.epoch,
            e.body.kind()
        )?;
        field(self.out, describe::pod_of(&e.body).unwrap_or(""))?;
        self.out.write_all(b",")?;
        field(self.out, &describe::summary(&e.body))?;
        write!(
            self.out,
            ",{},{},{},{},{},",
            e.cause.map(|c| c.to_string()).unwrap_or_default(),
            e.id,
            intents.join(" "),
            e.prev,
            e.hash
        )?;
        field(self.out, &event_json)?;
        self.out.write_all(b"\n")?;
        self.rows = self.rows.saturating_add(1);
        Ok(Flow::Continue)
    }
}

/// Exports `input` as CSV to `out`; returns the number of rows.
///
/// # Errors
/// Scan and output errors.
pub async fn export<S: JournalStore>(input: &Input<S>, out: &mut dyn Write) -> Result<u64> {
    let mut export = CsvExport::new(out);
    input.scan(None, &mut export).await?;
    export.out.flush()?;
    Ok(export.rows)
}
