//! Connections for the harness: `host:port` parsing, connecting with a
//! deadline and authenticating, and one command with a deadline.
//!
//! The redis crate's own timeouts are disabled and every await is wrapped
//! in `tokio::time::timeout`, as in `logbook::valkey`, so a frozen server
//! (SIGSTOP: the kernel still accepts connections) cannot hang the harness.

use std::time::Duration;

use logbook::valkey::Password;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ConnectionAddr, FromRedisValue};
use tokio::time::timeout;

use super::BenchError;

/// Splits `host:port` (or `[v6]:port`) into host and port.
///
/// # Errors
///
/// [`BenchError::BadAddress`] when there is no port or it is not a number.
pub fn split_addr(addr: &str) -> Result<(String, u16), BenchError> {
    let bad = || BenchError::BadAddress {
        addr: addr.to_owned(),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok((host.to_owned(), port))
}

/// `host:port` as the harness writes addresses everywhere, so addresses
/// from Sentinel, `ROLE` and the caller compare equal.
pub(crate) fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The host prefixes whose servers the harness reaches over TLS (see
/// [`speak_tls_to`]).
static TLS_HOSTS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// While held, every connection the harness opens (and those the tests
/// open with [`client`]) to a host starting with its prefix speaks TLS:
/// the pods of a cluster with `spec.tls` serve no plaintext port.
/// Dropping it ends that.
#[must_use = "the hosts speak TLS only while this is held"]
#[derive(Debug)]
pub struct TlsHosts {
    prefix: String,
}

impl Drop for TlsHosts {
    fn drop(&mut self) {
        let mut hosts = TLS_HOSTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = hosts.iter().position(|p| *p == self.prefix) {
            hosts.swap_remove(i);
        }
    }
}

/// Connections to hosts starting with `prefix` (a pod network's
/// `198.18.3.`, say) speak TLS while the returned guard is held. The
/// harness checks what the servers hold, not who they are: the server's
/// certificate is not verified (tests/operator_tls.rs does that, with
/// `redis-cli` and `openssl s_client`).
pub fn speak_tls_to(prefix: impl Into<String>) -> TlsHosts {
    let prefix = prefix.into();
    TLS_HOSTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(prefix.clone());
    TlsHosts { prefix }
}

/// Whether the harness speaks TLS to `host` ([`speak_tls_to`]): for the
/// tests' own clients (`redis-cli --tls`).
pub fn speaks_tls(host: &str) -> bool {
    TLS_HOSTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|prefix| host.starts_with(prefix.as_str()))
}

/// A client for `host:port`: over TLS when [`speak_tls_to`] names the
/// host, plaintext otherwise.
///
/// # Errors
///
/// The redis crate's, for an address it cannot use.
pub fn client(host: &str, port: u16) -> redis::RedisResult<Client> {
    let tls = speaks_tls(host);
    let host = host.to_owned();
    Client::open(if tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: true,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    })
}

/// Opens a connection to `addr` and sends `AUTH` when there is a password,
/// all within `limit`.
pub(crate) async fn connect(
    addr: &str,
    password: Option<&Password>,
    limit: Duration,
) -> Result<MultiplexedConnection, BenchError> {
    let (host, port) = split_addr(addr)?;
    let failed = |source| BenchError::Valkey {
        addr: addr.to_owned(),
        command: "connect",
        source,
    };
    let client = client(&host, port).map_err(failed)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    let timed_out = || BenchError::TimedOut {
        what: format!("a connection to {addr}"),
        after_ms: limit.as_millis(),
        detail: String::new(),
    };
    let deadline = tokio::time::Instant::now() + limit;
    let mut connection = tokio::time::timeout_at(
        deadline,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(failed)?;
    if let Some(password) = password {
        let mut auth = redis::cmd("AUTH");
        auth.arg(password.expose());
        // Only the error is kept, never the command: it holds the secret.
        tokio::time::timeout_at(deadline, auth.query_async::<()>(&mut connection))
            .await
            .map_err(|_| timed_out())?
            .map_err(|source| BenchError::Valkey {
                addr: addr.to_owned(),
                command: "AUTH",
                source,
            })?;
    }
    Ok(connection)
}

/// Sends `cmd` and decodes its reply within `limit`.
pub(crate) async fn query<T: FromRedisValue>(
    connection: &mut MultiplexedConnection,
    cmd: &Cmd,
    addr: &str,
    command: &'static str,
    limit: Duration,
) -> Result<T, BenchError> {
    timeout(limit, cmd.query_async::<T>(connection))
        .await
        .map_err(|_| BenchError::TimedOut {
            what: format!("{command} on {addr}"),
            after_ms: limit.as_millis(),
            detail: String::new(),
        })?
        .map_err(|source| BenchError::Valkey {
            addr: addr.to_owned(),
            command,
            source,
        })
}

/// Connects and sends one command: for the harness's occasional checks.
pub(crate) async fn query_once<T: FromRedisValue>(
    addr: &str,
    password: Option<&Password>,
    cmd: &Cmd,
    command: &'static str,
    limit: Duration,
) -> Result<T, BenchError> {
    let mut connection = connect(addr, password, limit).await?;
    query(&mut connection, cmd, addr, command, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        assert_eq!(
            split_addr("127.0.0.1:6379").ok(),
            Some(("127.0.0.1".to_owned(), 6379))
        );
        assert_eq!(
            split_addr("[::1]:7000").ok(),
            Some(("::1".to_owned(), 7000))
        );
        assert_eq!(join_addr("::1", 7000), "[::1]:7000");
        assert_eq!(join_addr("valkey-0.svc", 6379), "valkey-0.svc:6379");
        assert!(split_addr("localhost").is_err());
        assert!(split_addr(":6379").is_err());
        assert!(split_addr("host:port").is_err());
    }
}
