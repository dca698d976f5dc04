//! HTML report (in progress).

use std::io::Write;

use logbook_journal::JournalStore;

use crate::audit::Decider;
use crate::error::{ReplayError, Result};
use crate::source::Input;

/// Writes the report of `input` to `out`.
///
/// # Errors
/// Not written yet.
pub async fn export<S: JournalStore>(
    input: &Input<S>,
    decider: &dyn Decider,
    out: &mut dyn Write,
) -> Result<()> {
    let _ = (input, decider, out);
    Err(ReplayError::BadArgument("html: not yet".to_owned()))
}
