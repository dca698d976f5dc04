//! The one error type of the data-plane client, classified so observers can
//! tell a dead server from a slow one without reading messages.

use std::net::SocketAddr;

use super::ParseError;

/// Which stage of a call timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the TCP connection (and authenticating).
    Connect,
    /// Waiting for a command's reply.
    Command,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Command => "command",
        })
    }
}

/// Why a call to one Valkey server failed.
///
/// Every message names the server's address and never the password: the
/// password is only ever sent, never formatted (the client holds it as `credentials::Password`).
///
/// Classes: [`Refused`](Self::Refused) is death (act at once, after one
/// confirming probe); [`TimedOut`](Self::TimedOut) is slowness (act only when
/// repeated and corroborated); [`Io`](Self::Io) is retryable;
/// [`AuthFailed`](Self::AuthFailed), [`Rejected`](Self::Rejected),
/// [`Protocol`](Self::Protocol) and [`Malformed`](Self::Malformed) are
/// refusals that retrying unchanged will not fix.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connection was refused, or reset and then refused on reconnect:
    /// nothing listens at the address, so the process is gone.
    #[error("valkey {addr}: connection refused (process gone)")]
    Refused {
        /// The server's address.
        addr: SocketAddr,
    },
    /// No answer within the timeout. The server may only be busy (a long
    /// command, a fork): needs corroboration before it counts as a failure.
    #[error("valkey {addr}: {phase} timed out after {after_ms} ms")]
    TimedOut {
        /// The server's address.
        addr: SocketAddr,
        /// Whether connecting or a command timed out.
        phase: Phase,
        /// The timeout that elapsed, in milliseconds.
        after_ms: u128,
    },
    /// The server rejected our credentials, or demands some we did not send.
    #[error("valkey {addr}: authentication failed ({code})")]
    AuthFailed {
        /// The server's address.
        addr: SocketAddr,
        /// The server's error code (`WRONGPASS`, `NOAUTH`, ...), never the
        /// password.
        code: String,
    },
    /// The server answered a command with an error (e.g. `FAILOVER` to a
    /// server that is not its replica, `LOADING`).
    #[error("valkey {addr}: {command} rejected: {message}")]
    Rejected {
        /// The server's address.
        addr: SocketAddr,
        /// The command's name, without arguments.
        command: &'static str,
        /// The server's error text.
        message: String,
    },
    /// The reply had a type this client does not expect for the command.
    #[error("valkey {addr}: unexpected reply: {detail}")]
    Protocol {
        /// The server's address.
        addr: SocketAddr,
        /// What was expected and what came.
        detail: String,
    },
    /// A replication reply could not be parsed.
    #[error("valkey {addr}: malformed reply")]
    Malformed {
        /// The server's address.
        addr: SocketAddr,
        /// The field at fault.
        #[source]
        source: ParseError,
    },
    /// Any other I/O failure (connection dropped mid-command, unreachable
    /// network): retry.
    #[error("valkey {addr}: i/o error: {detail}")]
    Io {
        /// The server's address.
        addr: SocketAddr,
        /// The underlying error's text.
        detail: String,
    },
}

impl ProbeError {
    /// The process at the address is gone: act at once (after one
    /// confirming probe).
    pub fn is_death(&self) -> bool {
        matches!(self, ProbeError::Refused { .. })
    }

    /// The server may only be busy: act only on repeated, corroborated
    /// failures.
    pub fn is_slowness(&self) -> bool {
        matches!(self, ProbeError::TimedOut { .. })
    }

    /// The same call may succeed later without anything changing on our
    /// side.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProbeError::Refused { .. } | ProbeError::TimedOut { .. } | ProbeError::Io { .. } => {
                true
            }
            ProbeError::AuthFailed { .. }
            | ProbeError::Rejected { .. }
            | ProbeError::Protocol { .. }
            | ProbeError::Malformed { .. } => false,
        }
    }

    /// This error with `secret` replaced by `***` wherever its text holds
    /// it: a server or a client may echo a command's arguments (a refusal
    /// quoting `MIGRATE … AUTH2 user <password>`, a modifier it rejects),
    /// and what an error says reaches logs and the journal.
    #[must_use]
    pub fn redact(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |text: String| {
            if text.contains(secret) {
                text.replace(secret, "***")
            } else {
                text
            }
        };
        match self {
            ProbeError::Rejected {
                addr,
                command,
                message,
            } => ProbeError::Rejected {
                addr,
                command,
                message: scrub(message),
            },
            ProbeError::Protocol { addr, detail } => ProbeError::Protocol {
                addr,
                detail: scrub(detail),
            },
            ProbeError::Io { addr, detail } => ProbeError::Io {
                addr,
                detail: scrub(detail),
            },
            ProbeError::AuthFailed { addr, code } => ProbeError::AuthFailed {
                addr,
                code: scrub(code),
            },
            // No text of the server's or the client's in these.
            other @ (ProbeError::Refused { .. }
            | ProbeError::TimedOut { .. }
            | ProbeError::Malformed { .. }) => other,
        }
    }

    /// The address of the server the call went to.
    pub fn addr(&self) -> SocketAddr {
        match self {
            ProbeError::Refused { addr }
            | ProbeError::TimedOut { addr, .. }
            | ProbeError::AuthFailed { addr, .. }
            | ProbeError::Rejected { addr, .. }
            | ProbeError::Protocol { addr, .. }
            | ProbeError::Malformed { addr, .. }
            | ProbeError::Io { addr, .. } => *addr,
        }
    }
}
