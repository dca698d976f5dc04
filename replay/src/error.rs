//! Errors of the replay tool. Every variant names where the journal is;
//! [`ReplayError::exit_code`] tells unreadable input (2) from the rest.

use logbook_journal::StoreError;
use logbook_journal::codec::CodecError;

/// Result of replay operations.
pub type Result<T, E = ReplayError> = std::result::Result<T, E>;

/// Why a replay verb could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The source is missing or is not a journal at all.
    #[error("{place}: {what}")]
    Unreadable {
        /// Where the journal was looked for.
        place: String,
        /// What is wrong with it.
        what: String,
    },
    /// The store failed (an API error, an unreadable sled record).
    #[error("{place}: {source}")]
    Store {
        /// Where the journal is.
        place: String,
        /// What the store reported.
        #[source]
        source: Box<StoreError>,
    },
    /// An event frame failed a check: the journal is damaged from `seq`.
    #[error(
        "{place}: stream {stream}: event at seq {seq} is damaged ({source}); `logbook replay verify` names the first broken link"
    )]
    Corrupt {
        /// Where the journal is.
        place: String,
        /// The stream.
        stream: String,
        /// The seq of the damaged event.
        seq: u64,
        /// The failed check.
        #[source]
        source: Box<CodecError>,
    },
    /// A line of an export file is not what the format says.
    #[error("{place}: line {line}: {what}")]
    BadLine {
        /// The file.
        place: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong, naming the seq when known.
        what: String,
        /// The seq the line should have held (the one a verify reports).
        seq: u64,
    },
    /// A command-line value is not acceptable.
    #[error("{0}")]
    BadArgument(String),
    /// Writing the output failed (a closed pipe, a full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl ReplayError {
    /// The process exit code for this error: 2 when the input could not be
    /// read as a journal (the audit's "unreadable input"), 1 otherwise.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Unreadable { .. }
            | Self::Store { .. }
            | Self::Corrupt { .. }
            | Self::BadLine { .. }
            | Self::BadArgument(_) => 2,
            Self::Output(_) => 1,
        }
    }
}
