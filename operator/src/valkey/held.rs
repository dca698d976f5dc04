//! A connection held open to a server, idle and unauthenticated, to learn
//! the moment its process goes away: a killed process's sockets are closed
//! by its kernel at once, so the held connection reads its end of file
//! within a round trip, where a probe every interval would see it only at
//! its next round. It sends nothing and asks nothing (a server never
//! writes to a client that asked nothing), so it is no load and needs no
//! credentials; it is a hint to probe now, never itself a verdict.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::socket::{Duplex, connect_within};
use super::tls::Connector;
use logbook_core::replies::ProbeError;

/// An open connection to a server (plain or TLS, as its probes).
pub struct Held {
    addr: SocketAddr,
    stream: Box<dyn Duplex>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Held {
    /// Opens one to `addr` (with a TLS handshake when `tls` is given)
    /// within `connect_timeout`.
    ///
    /// # Errors
    /// [`ProbeError::Refused`] when nothing listens, [`ProbeError::TimedOut`]
    /// past the timeout, [`ProbeError::Io`] otherwise.
    pub(super) async fn open(
        addr: SocketAddr,
        tls: Option<&Connector>,
        connect_timeout: Duration,
    ) -> Result<Self, ProbeError> {
        let stream = connect_within(addr, tls, connect_timeout).await?;
        Ok(Self { addr, stream })
    }

    /// The server it is open to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns once the connection is closed (end of file or an error):
    /// the process exited, or the server closed it (an idle `timeout`).
    /// Anything the server sends meanwhile is read and dropped.
    pub async fn closed(mut self) {
        let mut buf = [0_u8; 256];
        while let Ok(n) = self.stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    }
}
