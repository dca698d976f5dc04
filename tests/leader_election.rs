//! Leader election (`logbook::leader`) against a real in-process localkube
//! over HTTP (or the real kube-apiserver over HTTPS, with
//! `LOGBOOK_E2E_CONTROL_PLANE=kubernetes`): the Lease is a real `coordination.k8s.io/v1` object with
//! resourceVersion preconditions, and an outage is a real TCP proxy that
//! stops forwarding (new connections hang, open ones are cut).
//!
//! Timing in every test: Lease valid 2 s, renewed every 500 ms, so a
//! follower takes an unrenewed Lease only 2 s after it last saw it change,
//! and a leader that cannot renew steps down after 1.5 s.
//!
//! Epochs: the first holder of a new Lease leads at epoch 1 (creating the
//! Lease counts as the first transition); each change of holder adds one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff;
use kube::api::{Api, PostParams};
use logbook::leader::{self, Leadership, LeaseConfig};
use logbook_localkube::{Config, LocalKube, RunningServer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const NS: &str = "default";
const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(500);
/// Scheduling and HTTP latency allowed on top of a protocol bound.
const SLACK: Duration = Duration::from_millis(400);

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: LEASE,
        renew_every: RENEW,
        ..LeaseConfig::new(NS, identity)
    }
}

/// The API server the candidates talk to: localkube in process, or (with
/// `LOGBOOK_E2E_CONTROL_PLANE=kubernetes`) the real kube-apiserver on etcd,
/// as its admin over HTTPS.
struct Server {
    addr: SocketAddr,
    base: kube::Config,
    _keep: Keep,
}

/// What keeps the server running while the test holds it.
#[allow(dead_code)]
enum Keep {
    Local(RunningServer),
    Kubernetes(logbook::local::kubernetes::ControlPlane, tempfile::TempDir),
}

async fn localkube() -> (Server, kube::Client) {
    let server = if std::env::var("LOGBOOK_E2E_CONTROL_PLANE").as_deref() == Ok("kubernetes") {
        let dir = tempfile::tempdir().unwrap();
        let cp = logbook::local::kubernetes::ControlPlane::start(dir.path(), "10.96.0.0/16", None)
            .await
            .unwrap_or_else(|e| panic!("the real control plane did not start: {e}"));
        let base = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&cp.admin).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        let authority = base.cluster_url.authority().unwrap().as_str().to_owned();
        Server {
            addr: authority.parse().unwrap(),
            base,
            _keep: Keep::Kubernetes(cp, dir),
        }
    } else {
        let local = LocalKube::start(Config::default()).await.unwrap();
        Server {
            addr: local.addr(),
            base: kube::Config::new(local.url().parse().unwrap()),
            _keep: Keep::Local(local),
        }
    };
    let client = client_at(&server, server.addr);
    (server, client)
}

/// A client of `server` through `addr` (the server's own, or a proxy's).
fn client_at(server: &Server, addr: SocketAddr) -> kube::Client {
    let mut config = server.base.clone();
    let scheme = config.cluster_url.scheme_str().unwrap_or("http").to_owned();
    config.cluster_url = format!("{scheme}://{addr}").parse().unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn read_lease(client: &kube::Client) -> Lease {
    Api::<Lease>::namespaced(client.clone(), NS)
        .get(leader::DEFAULT_LEASE_NAME)
        .await
        .unwrap()
}

/// (holder, leaseTransitions, leaseDurationSeconds) of the Lease.
async fn lease_state(client: &kube::Client) -> (String, i32, i32) {
    let spec = read_lease(client).await.spec.unwrap();
    (
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or(-1),
        spec.lease_duration_seconds.unwrap_or(-1),
    )
}

type History = Arc<Mutex<Vec<(Instant, Leadership)>>>;

/// One candidate running `leader::run` on its own task, with every value
/// its channel took recorded with the time it was seen.
struct Candidate {
    identity: String,
    rx: watch::Receiver<Leadership>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    history: History,
}

impl Candidate {
    fn start(client: &kube::Client, identity: &str) -> Self {
        let (tx, rx) = watch::channel(Leadership::Follower);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(leader::run(
            client.clone(),
            config(identity),
            tx,
            async move {
                let _ = stopped.await;
            },
        ));
        let history: History = Arc::new(Mutex::new(vec![(Instant::now(), Leadership::Follower)]));
        let mut seen = rx.clone();
        let record = history.clone();
        tokio::spawn(async move {
            while seen.changed().await.is_ok() {
                let value = *seen.borrow_and_update();
                record.lock().unwrap().push((Instant::now(), value));
            }
        });
        Self {
            identity: identity.to_owned(),
            rx,
            stop: Some(stop),
            task,
            history,
        }
    }

    fn now(&self) -> Leadership {
        *self.rx.borrow()
    }

    fn history(&self) -> Vec<(Instant, Leadership)> {
        self.history.lock().unwrap().clone()
    }

    /// Every leading value the channel took, in order.
    fn terms(&self) -> Vec<Leadership> {
        let mut terms: Vec<Leadership> = self
            .history()
            .into_iter()
            .map(|(_, l)| l)
            .filter(Leadership::is_leader)
            .collect();
        terms.dedup();
        terms
    }

    /// Waits up to `within` for a value matching `want`; the time it was
    /// first seen.
    async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        want: impl Fn(&Leadership) -> bool,
    ) -> (Leadership, Instant) {
        let found = tokio::time::timeout(within, self.rx.wait_for(|l| want(l)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|value| *value);
        let at = Instant::now();
        match found {
            Some(value) => (value, at),
            None => panic!(
                "{}: not {what} within {within:?}; history {:?}",
                self.identity,
                self.history()
            ),
        }
    }

    /// Resolves the shutdown future and waits for `run` to return.
    async fn stop(mut self) -> Instant {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("run returns after shutdown")
            .unwrap();
        Instant::now()
    }

    /// Drops the task mid-flight, like a killed process: nothing released.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The intervals during which `c` led, from its history (the last one open
/// until `end`).
fn leading_intervals(c: &Candidate, end: Instant) -> Vec<(Instant, Instant)> {
    let mut intervals = Vec::new();
    let mut since = None;
    for (at, l) in c.history() {
        match (l.is_leader(), since) {
            (true, None) => since = Some(at),
            (false, Some(s)) => {
                intervals.push((s, at));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        intervals.push((s, end));
    }
    intervals
}

/// No two candidates' leading intervals overlap.
fn assert_never_two_leaders(candidates: &[&Candidate]) {
    let end = Instant::now();
    for (i, a) in candidates.iter().enumerate() {
        for b in candidates.iter().skip(i + 1) {
            for (s1, e1) in leading_intervals(a, end) {
                for (s2, e2) in leading_intervals(b, end) {
                    assert!(
                        e1 <= s2 || e2 <= s1,
                        "{} and {} led at the same time: {:?} vs {:?}",
                        a.identity,
                        b.identity,
                        a.history(),
                        b.history()
                    );
                }
            }
        }
    }
}

/// A TCP proxy to the API server that can be cut: while blocked, open
/// connections are closed and new ones are accepted but never answered
/// (requests hang until the caller's timeout), as in a network partition.
struct Proxy {
    addr: SocketAddr,
    blocked: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (blocked, state) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = state.clone();
                tokio::spawn(async move {
                    if *state.borrow_and_update() {
                        // Hold the connection silently until the partition
                        // heals, then close it.
                        let _ = state.wait_for(|b| !*b).await.map(|_| ());
                        return;
                    }
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = async { state.wait_for(|b| *b).await.is_ok() } => {}
                    }
                });
            }
        });
        Self {
            addr,
            blocked,
            task,
        }
    }

    fn cut(&self) {
        self.blocked.send_replace(true);
    }

    fn heal(&self) {
        self.blocked.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_candidate_creates_the_lease_and_leads_at_epoch_1() {
    let (_server, client) = localkube().await;
    let mut a = Candidate::start(&client, "a");

    let (leading, _) = a.wait_for("leader", LEASE, Leadership::is_leader).await;
    assert_eq!(leading, Leadership::Leader { epoch: 1 });
    assert_eq!(lease_state(&client).await, ("a".to_owned(), 1, 2));

    // Renewals move renewTime and keep the term.
    let first = read_lease(&client).await.spec.unwrap().renew_time.unwrap();
    tokio::time::sleep(RENEW * 3).await;
    let later = read_lease(&client).await.spec.unwrap().renew_time.unwrap();
    assert!(
        later > first,
        "renewTime did not move: {first:?} then {later:?}"
    );
    assert_eq!(lease_state(&client).await, ("a".to_owned(), 1, 2));
    assert_eq!(a.now(), Leadership::Leader { epoch: 1 });
    assert_eq!(a.terms(), vec![Leadership::Leader { epoch: 1 }]);

    // Shutting down releases: no holder, valid one second, count kept.
    let history = a.history.clone();
    a.stop().await;
    assert_eq!(lease_state(&client).await, (String::new(), 1, 1));
    let last = history.lock().unwrap().last().copied().unwrap().1;
    assert_eq!(last, Leadership::Follower);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_candidates_elect_exactly_one() {
    let (_server, client) = localkube().await;
    let candidates: Vec<Candidate> = ["a", "b", "c"]
        .iter()
        .map(|id| Candidate::start(&client, id))
        .collect();

    // Sample all channels for longer than a Lease lasts: if a follower ever
    // took a renewed Lease, it would show here.
    let deadline = Instant::now() + LEASE + RENEW * 3;
    let mut most = 0;
    while Instant::now() < deadline {
        let leaders = candidates.iter().filter(|c| c.now().is_leader()).count();
        most = most.max(leaders);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(most, 1, "never exactly one leader at once");
    let refs: Vec<&Candidate> = candidates.iter().collect();
    assert_never_two_leaders(&refs);

    let leaders: Vec<&Candidate> = candidates.iter().filter(|c| c.now().is_leader()).collect();
    assert_eq!(leaders.len(), 1);
    let winner = leaders[0];
    assert_eq!(winner.terms(), vec![Leadership::Leader { epoch: 1 }]);
    for c in &candidates {
        if c.identity != winner.identity {
            assert!(
                c.terms().is_empty(),
                "{} led: {:?}",
                c.identity,
                c.history()
            );
        }
    }
    assert_eq!(lease_state(&client).await, (winner.identity.clone(), 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_that_shuts_down_hands_over_within_a_renew_period() {
    let (_server, client) = localkube().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for("leader", LEASE, Leadership::is_leader).await;
    let mut b = Candidate::start(&client, "b");
    tokio::time::sleep(LEASE + RENEW).await;
    assert!(
        b.terms().is_empty(),
        "b led while a renewed: {:?}",
        b.history()
    );
    assert_eq!(a.now(), Leadership::Leader { epoch: 1 });

    let a_history = a.history.clone();
    let stopped = a.stop().await;
    let (leading, at) = b
        .wait_for("leader", RENEW + SLACK, Leadership::is_leader)
        .await;
    assert_eq!(leading, Leadership::Leader { epoch: 2 });
    // Well before an unreleased Lease could have expired.
    assert!(
        at.duration_since(stopped) < LEASE / 2,
        "took {:?}",
        at - stopped
    );
    assert_eq!(lease_state(&client).await, ("b".to_owned(), 2, 2));

    let a_stepped_down = a_history
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(_, l)| !l.is_leader())
        .map(|(t, _)| *t)
        .unwrap();
    assert!(a_stepped_down < at, "b led before a published Follower");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_lease_is_taken_steps_down_within_a_renew_period() {
    let (_server, client) = localkube().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for("leader", LEASE, Leadership::is_leader).await;

    // What an administrator (or another tool) might do: write another
    // holder over the Lease, as a new term.
    let leases = Api::<Lease>::namespaced(client.clone(), NS);
    let mut lease = read_lease(&client).await;
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.lease_transitions = Some(2);
    spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
    // Retry on a 409 from a renewal landing between our read and write.
    let taken = loop {
        match leases
            .replace(leader::DEFAULT_LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => break Instant::now(),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let spec = lease.spec.take();
                lease = read_lease(&client).await;
                lease.spec = spec;
            }
            Err(e) => panic!("{e}"),
        }
    };

    let (_, demoted) = a
        .wait_for("follower", RENEW + SLACK, |l| !l.is_leader())
        .await;
    assert!(demoted.duration_since(taken) <= RENEW + SLACK);

    // The intruder never renews: a takes the Lease back once it has gone
    // unchanged for its 2 s, in a new term above the intruder's.
    tokio::time::sleep((LEASE - RENEW).saturating_sub(demoted.duration_since(taken))).await;
    assert!(
        !a.now().is_leader(),
        "a took an unexpired Lease: {:?}",
        a.history()
    );
    let (leading, _) = a
        .wait_for("leader again", LEASE + RENEW + SLACK, Leadership::is_leader)
        .await;
    assert_eq!(leading, Leadership::Leader { epoch: 3 });
    assert_eq!(lease_state(&client).await, ("a".to_owned(), 3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_candidate_reacquires_its_own_lease_in_the_same_epoch() {
    let (_server, client) = localkube().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for("leader", LEASE, Leadership::is_leader).await;
    let b = Candidate::start(&client, "b");
    tokio::time::sleep(RENEW * 2).await;

    // Killed without releasing: the Lease still names "a".
    a.crash().await;
    assert_eq!(lease_state(&client).await.0, "a");
    let restarted = Instant::now();
    let mut a2 = Candidate::start(&client, "a");
    let (leading, at) = a2
        .wait_for("leader", RENEW + SLACK, Leadership::is_leader)
        .await;
    assert_eq!(leading, Leadership::Leader { epoch: 1 });
    assert!(
        at.duration_since(restarted) < LEASE / 2,
        "waited for expiry"
    );

    // It keeps renewing; b, which saw the Lease change all along, never
    // gets it.
    tokio::time::sleep(LEASE + RENEW).await;
    assert_eq!(a2.now(), Leadership::Leader { epoch: 1 });
    assert!(b.terms().is_empty(), "b led: {:?}", b.history());
    assert_eq!(lease_state(&client).await, ("a".to_owned(), 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_the_api_steps_down_before_anyone_takes_over() {
    let (server, client) = localkube().await;
    let proxy = Proxy::start(server.addr).await;
    let mut a = Candidate::start(&client_at(&server, proxy.addr), "a");
    a.wait_for("leader", LEASE, Leadership::is_leader).await;
    let mut b = Candidate::start(&client, "b");
    tokio::time::sleep(RENEW * 2).await;
    assert!(b.terms().is_empty());

    proxy.cut();
    let cut = Instant::now();
    let (_, demoted) = a.wait_for("follower", LEASE, |l| !l.is_leader()).await;
    // At most lease - renew after its last successful renewal (which
    // started before the cut), so before the Lease can expire for b.
    let took = demoted.duration_since(cut);
    assert!(took < LEASE, "stepped down {took:?} after the cut");

    let (leading, took_over) = b
        .wait_for("leader", LEASE + RENEW + SLACK, Leadership::is_leader)
        .await;
    assert_eq!(leading, Leadership::Leader { epoch: 2 });
    assert!(demoted < took_over);
    assert_never_two_leaders(&[&a, &b]);

    // Back on the network, a sees b's Lease and stays a follower.
    proxy.heal();
    tokio::time::sleep(LEASE + RENEW).await;
    assert_eq!(a.terms(), vec![Leadership::Leader { epoch: 1 }]);
    assert!(!a.now().is_leader());
    assert_eq!(b.now(), Leadership::Leader { epoch: 2 });
    assert_eq!(lease_state(&client).await, ("b".to_owned(), 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_back_from_an_outage_nobody_used_keeps_its_epoch() {
    let (server, client) = localkube().await;
    let proxy = Proxy::start(server.addr).await;
    let mut a = Candidate::start(&client_at(&server, proxy.addr), "a");
    a.wait_for("leader", LEASE, Leadership::is_leader).await;

    proxy.cut();
    a.wait_for("follower", LEASE, |l| !l.is_leader()).await;
    // Out for longer than the Lease lasts; nobody else wants it.
    tokio::time::sleep(LEASE).await;
    proxy.heal();
    let (leading, _) = a
        .wait_for("leader again", RENEW * 2 + SLACK, Leadership::is_leader)
        .await;
    assert_eq!(leading, Leadership::Leader { epoch: 1 });
    assert_eq!(
        a.terms(),
        vec![Leadership::Leader { epoch: 1 }],
        "history {:?}",
        a.history()
    );
    assert_eq!(lease_state(&client).await, ("a".to_owned(), 1, 2));
}
