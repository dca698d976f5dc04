//! Death watch: one idle connection held open to every data pod
//! ([`crate::valkey::Held`]) so that a process that dies wakes the prober
//! at once, instead of at its next round up to a probe interval later.
//! The round it wakes probes as any other (a refusal is confirmed by a
//! second probe, a restarted process answers fenced): the closed
//! connection is a reason to look now, never a verdict, so it is not
//! journaled, and a connection the server closed for another reason (an
//! idle `timeout`, a restart) only costs one early round.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::pod_tasks::PodTasks;
use crate::valkey::ValkeyClient;

/// How long opening a held connection may take.
const CONNECT: Duration = Duration::from_secs(1);
/// After a held connection closed, how soon it is opened again (the
/// process restarted in place answers within milliseconds).
const REOPEN: Duration = Duration::from_millis(20);
/// After an attempt failed (nothing listens: the pod is starting or gone),
/// or a held connection closed sooner than [`SHORT_LIVED`] (a server that
/// turns connections away, at `maxclients` or in protected mode), how long
/// until the next: it bounds the early rounds such a server causes.
const RETRY: Duration = Duration::from_millis(500);
/// A held connection that closed sooner than this after it opened is
/// opened again only after [`RETRY`].
const SHORT_LIVED: Duration = Duration::from_secs(1);

/// The held connections of one cluster's data pods and the wake-up they
/// share.
#[derive(Debug, Default)]
pub(super) struct DeathWatch {
    held: PodTasks,
    wake: Arc<Notify>,
}

impl DeathWatch {
    /// Notified whenever a held connection closes.
    pub(super) fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One held connection per pod with an address; those of pods gone or
    /// moved are dropped. `client` gives the TLS settings.
    pub(super) fn sync(&mut self, pods: &[(String, Option<SocketAddr>)], client: &ValkeyClient) {
        let wake = &self.wake;
        self.held.sync(pods, |_, addr| {
            tokio::spawn(watch(addr, client.clone(), wake.clone()))
        });
    }

    /// Drops every held connection (this instance stopped leading).
    pub(super) fn clear(&mut self) {
        self.held.clear();
    }

    /// How many pods are watched.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }
}

/// Holds a connection to `addr` open, wakes `wake` each time it closes,
/// and opens it again, until aborted.
async fn watch(addr: SocketAddr, client: ValkeyClient, wake: Arc<Notify>) {
    loop {
        match client.hold_open(addr, CONNECT).await {
            Ok(held) => {
                let opened = tokio::time::Instant::now();
                held.closed().await;
                wake.notify_one();
                let pause = if opened.elapsed() < SHORT_LIVED {
                    RETRY
                } else {
                    REOPEN
                };
                tokio::time::sleep(pause).await;
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::valkey::Timeouts;

    /// A listener standing in for a server: the held connection is
    /// protocol-free, so accepting and then dropping a socket is what a
    /// process's death looks like to it.
    #[tokio::test]
    async fn a_closed_connection_wakes_the_prober_and_is_opened_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = ValkeyClient::new(Timeouts::default(), None);
        let mut deaths = DeathWatch::default();
        let wake = deaths.wake();
        deaths.sync(&[("p-0".into(), Some(addr)), ("p-1".into(), None)], &client);
        assert_eq!(deaths.len(), 1, "a pod without an address is not watched");
        let (first, _) = listener.accept().await.unwrap();
        // Open and idle: no wake-up.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), wake.notified())
                .await
                .is_err(),
            "woken while the connection stood open"
        );
        drop(first);
        tokio::time::timeout(Duration::from_secs(2), wake.notified())
            .await
            .expect("no wake-up when the connection closed");
        // It is opened again (after RETRY: that one lived under a second).
        let again = tokio::time::timeout(Duration::from_secs(3), listener.accept()).await;
        assert!(again.is_ok(), "not opened again");
        // A pod that moved to another address is watched there instead.
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        deaths.sync(
            &[("p-0".into(), Some(other.local_addr().unwrap()))],
            &client,
        );
        assert_eq!(deaths.len(), 1);
        tokio::time::timeout(Duration::from_secs(2), other.accept())
            .await
            .expect("the new address is not watched")
            .unwrap();
        deaths.clear();
        assert_eq!(deaths.len(), 0);
    }
}
