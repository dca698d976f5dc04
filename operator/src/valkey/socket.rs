//! Raw sockets to a server, for the connections that speak the protocol
//! themselves (the RDB stream) or not at all (a held connection), and the
//! TLS handshake every connection shares: one place for how a connection
//! is opened within a limit and how its failure is classified.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::timeout;

use super::tls::{Connector, certificate_fingerprint};
use logbook_core::replies::{Phase, ProbeError};

/// Anything a raw connection runs over: TCP or TLS.
pub(super) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A connection to `addr` opened within `limit`: over TLS with `tls`
/// (the handshake done), plain TCP otherwise, without Nagle's delay.
///
/// # Errors
/// [`ProbeError::TimedOut`] past `limit`; as [`connect_io_error`] and
/// [`tls_stream`] otherwise.
pub(super) async fn connect_within(
    addr: SocketAddr,
    tls: Option<&Connector>,
    limit: Duration,
) -> Result<Box<dyn Duplex>, ProbeError> {
    let timed_out = || ProbeError::TimedOut {
        addr,
        phase: Phase::Connect,
        after_ms: limit.as_millis(),
    };
    Ok(match tls {
        Some(tls) => Box::new(
            timeout(limit, tls_stream(addr, tls))
                .await
                .map_err(|_| timed_out())??
                .0,
        ),
        None => {
            let tcp = timeout(limit, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| timed_out())?
                .map_err(|err| connect_io_error(addr, &err))?;
            let _ = tcp.set_nodelay(true);
            Box::new(tcp)
        }
    })
}

/// A TLS stream to `addr` (the handshake done) and the fingerprint of the
/// certificate the server presented.
pub(super) async fn tls_stream(
    addr: SocketAddr,
    tls: &Connector,
) -> Result<
    (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        Option<String>,
    ),
    ProbeError,
> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|err| connect_io_error(addr, &err))?;
    let _ = tcp.set_nodelay(true);
    let stream = tls
        .connector
        .connect(tls.server_name.clone(), tcp)
        .await
        .map_err(|err| ProbeError::Io {
            addr,
            detail: format!("TLS handshake: {err}"),
        })?;
    let served = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| certificate_fingerprint(der));
    Ok((stream, served))
}

/// A socket's failure to connect: refused or reset is death (nothing
/// listens), anything else an I/O error.
pub(super) fn connect_io_error(addr: SocketAddr, err: &std::io::Error) -> ProbeError {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
            ProbeError::Refused { addr }
        }
        _ => ProbeError::Io {
            addr,
            detail: format!("connect: {err}"),
        },
    }
}
