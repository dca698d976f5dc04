//! ConfigMap journals (`logbook operator --journal configmap`) read from
//! the tests, and what a test needs to run the operator as a process of
//! its own on them: a kubeconfig for the local API server, and its log
//! lines kept with the harness's (so failure dumps show them).
//!
//! Readers here never write: the operator under test is the only writer,
//! and a ConfigMap journal may be read while it runs (the head is the
//! commit point; a reader sees whole batches or nothing).
#[allow(unused_imports)]
use super::*;

use logbook::journal_store::ConfigMapStore;
use logbook_journal::verify::VerifyReport;
use logbook_journal::{ChainHash, ClusterState, Envelope};

impl Env {
    /// Writes a kubeconfig for the local API server to `path` for an
    /// operator subprocess: it authenticates as the chart's ServiceAccount,
    /// under the chart's RBAC, as the in-process operators do.
    pub fn write_kubeconfig_to(&self, path: &Path) {
        self.write_kubeconfig_for(path, &self.operator_token);
    }

    /// A kubeconfig at `path` that authenticates with `token` (another
    /// user's: what that user may do, RBAC decides).
    pub fn write_kubeconfig_for(&self, path: &Path, token: &str) {
        let server = self.server.as_ref().expect("the local cluster runs");
        let written = match server.control_plane() {
            Some(cp) => cp
                .write_token_kubeconfig(path, token, &cp.ca_file())
                .map_err(|e| e.to_string()),
            None => server
                .local()
                .write_kubeconfig_with_token(path, token)
                .map_err(|e| e.to_string()),
        };
        written.unwrap_or_else(|e| panic!("writing a kubeconfig to {}: {e}", path.display()));
    }

    /// The local API server's address, `http://<ip>:<port>` (localkube
    /// only: the real control plane serves HTTPS).
    pub fn api_url(&self) -> String {
        match self.server.as_ref().expect("the local cluster runs") {
            Backend::Local(server) => server.url(),
            Backend::Kubernetes(_) | Backend::Containers(_) => {
                panic!("this test needs localkube's plain-HTTP API server")
            }
        }
    }

    /// [`Env::write_kubeconfig_to`], pointing at `server` (a proxy in front
    /// of the local API server, [`Env::api_url`]) instead.
    pub fn write_kubeconfig_via(&self, path: &Path, server: &str) {
        self.write_kubeconfig_to(path);
        let text = std::fs::read_to_string(path).unwrap();
        let url = self.api_url();
        assert!(text.contains(&url), "{url} not in the kubeconfig:\n{text}");
        std::fs::write(path, text.replace(&url, server)).unwrap();
    }

    /// The ConfigMap journal store of [`NS`], as an operator started with
    /// `--journal configmap` writes it.
    pub fn config_map_journal(&self) -> ConfigMapStore {
        ConfigMapStore::new(self.client.clone(), NS)
    }

    /// The projection folded from `stream`'s ConfigMap journal (snapshot
    /// plus tail, as an operator loads it).
    pub async fn cm_journal_state(&self, stream: &StreamId) -> ClusterState {
        logbook_journal::reader::load_state(&self.config_map_journal(), stream)
            .await
            .unwrap_or_else(|e| panic!("loading journal stream {stream} from ConfigMaps: {e}"))
            .state
    }

    /// Verifies `stream`'s ConfigMap journal (frames, chain, head,
    /// snapshot) and panics naming the problem if it is broken.
    ///
    /// The operator may be appending meanwhile: a batch whose frames are
    /// stored but whose head is not moved yet is not committed, and shows
    /// as "beyond the head" to a reader between the two writes. Such a
    /// reading is taken again (a torn tail a crash left stays, and fails).
    pub async fn cm_verify_journal(&self, stream: &StreamId) -> VerifyReport {
        let mut attempts = 0;
        let report = loop {
            let report = logbook_journal::verify::verify(&self.config_map_journal(), stream)
                .await
                .unwrap_or_else(|e| panic!("reading journal stream {stream} from ConfigMaps: {e}"));
            let in_commit = report.problem.as_ref().is_some_and(|p| {
                p.kind == logbook_journal::verify::ProblemKind::HeadMismatch
                    && p.detail.contains("beyond the head")
            });
            attempts += 1;
            if !in_commit || attempts >= 20 {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            report.is_ok(),
            "journal stream {stream} is broken: {:?}",
            report.problem
        );
        report
    }

    /// `stream`'s ConfigMap journal at rest, as every fault sweep checks
    /// it after a plan: no intent left in flight (waited for up to 20 s),
    /// the chain verifies ([`Env::cm_verify_journal`]) and `logbook
    /// replay audit` finds nothing. Err: the intents in flight, or the
    /// audit's report, for the caller to fail with beside its own dump.
    pub async fn cm_journal_at_rest(
        &self,
        stream: &StreamId,
    ) -> Result<logbook_replay::audit::AuditReport, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.cm_journal_state(stream).await;
            if state.in_flight.is_empty() {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("intents left in flight: {:?}", state.in_flight));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.cm_verify_journal(stream).await;
        self.cm_audit(stream)
            .await
            .map_err(|report| format!("the journal does not audit clean:\n{report}"))
    }

    /// A reader of `stream`'s ConfigMap journal that has read nothing yet.
    pub fn cm_journal_tail(&self, stream: &StreamId) -> JournalTail {
        JournalTail {
            store: self.config_map_journal(),
            stream: stream.clone(),
            events: Vec::new(),
        }
    }
}

/// Every event of one ConfigMap journal stream read so far, read on
/// incrementally (each catch-up reads only what was committed since,
/// checking the chain from the last event read).
pub struct JournalTail {
    store: ConfigMapStore,
    stream: StreamId,
    /// Every event read, from seq 1.
    pub events: Vec<Envelope>,
}

impl JournalTail {
    /// Reads what was committed since the last call; returns how many
    /// events were new.
    pub async fn catch_up(&mut self) -> usize {
        let head =
            self.store.head(&self.stream).await.unwrap_or_else(|e| {
                panic!("reading the head of journal stream {}: {e}", self.stream)
            });
        let (from, prev) = self
            .events
            .last()
            .map_or((1, ChainHash::GENESIS), |e| (e.seq + 1, e.hash));
        if head.seq < from {
            return 0;
        }
        let new = logbook_journal::reader::read_envelopes(
            &self.store,
            &self.stream,
            from,
            prev,
            head.seq,
        )
        .await
        .unwrap_or_else(|e| panic!("reading journal stream {}: {e}", self.stream));
        let count = new.len();
        self.events.extend(new);
        count
    }

    /// The stream read.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The seq of the last event read (0 before any).
    pub fn seq(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq)
    }

    /// The events read after `seq`.
    pub fn after(&self, seq: u64) -> &[Envelope] {
        let start = self.events.partition_point(|e| e.seq <= seq);
        &self.events[start..]
    }

    /// Reads on until an event after `seq` satisfies `found`, for at most
    /// `timeout`; returns it (`None`: none came).
    pub async fn wait_for(
        &mut self,
        seq: u64,
        timeout: Duration,
        found: impl Fn(&Envelope) -> bool,
    ) -> Option<Envelope> {
        let deadline = Instant::now() + timeout;
        loop {
            self.catch_up().await;
            if let Some(e) = self.after(seq).iter().find(|e| found(e)) {
                return Some(e.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Logs {
    /// Adds lines from outside the in-process operator (an operator
    /// subprocess's stderr), so that failure dumps show them.
    pub fn append(&self, text: &str) {
        self.push(text);
    }
}
