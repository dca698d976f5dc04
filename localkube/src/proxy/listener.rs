//! One proxied Service port: accepts on the ClusterIP and splices each
//! connection to the first endpoint that accepts it. Dropping the
//! listener stops accepting and ends the connections it forwarded.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::backends::Backends;

/// How long one endpoint gets to accept before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound Service port.
pub struct Listener {
    /// Where its connections go.
    pub backends: Backends,
    task: JoinHandle<()>,
}

impl Listener {
    /// Binds `addr` and starts forwarding to `backends`.
    ///
    /// # Errors
    /// The bind error.
    pub async fn bind(addr: SocketAddr, backends: Backends) -> std::io::Result<Self> {
        let socket = TcpListener::bind(addr).await?;
        let task = tokio::spawn(accept(socket, backends.clone()));
        Ok(Self { backends, task })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Aborting drops the JoinSet of connections, which aborts them.
        self.task.abort();
    }
}

async fn accept(socket: TcpListener, backends: Backends) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = socket.accept() => match r {
                Ok((client, _)) => {
                    conns.spawn(splice(client, backends.order()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "localkube proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn splice(mut client: TcpStream, order: Vec<SocketAddr>) {
    let _ = client.set_nodelay(true);
    for target in order {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(%target, error = %e, "localkube proxy: endpoint refused"),
            Err(_) => tracing::debug!(%target, "localkube proxy: endpoint timed out"),
        }
    }
    // No endpoint: the client sees the connection closed, as with
    // kube-proxy's reject rule for a Service without endpoints.
}
