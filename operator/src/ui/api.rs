//! The UI's endpoints: the pages (one document; its script draws each
//! view), JSON for each view, the replay report, and server-sent events
//! (`live.rs`). Every object is read with the UI's client: under `logbook
//! ui` that is the user's, so a cluster the user may not read answers 403
//! with the API server's own message.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use logbook_crds::ValkeyCluster;
use logbook_journal::{ClusterState, JournalStore, StreamId};
use logbook_replay::Input;
use logbook_replay::state_at::Point;
use serde::{Deserialize, Serialize};

use super::auth::Viewer;
use super::journal::{self, Page};
use super::{Ui, assets, auth, live};
use crate::journal_store::AnyStore;
use crate::replay_decider::OperatorDecider;
use crate::resources::labels;

/// The UI's routes.
pub fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/clusters/{ns}/{name}", get(assets::index))
        .route("/clusters/{ns}/{name}/report", get(report))
        .route("/assets/ui.js", get(assets::script))
        .route("/assets/ui.css", get(assets::style))
        .route("/api/clusters", get(clusters))
        .route("/api/clusters/{ns}/{name}", get(cluster))
        .route("/api/clusters/{ns}/{name}/journal", get(journal_page))
        .route("/api/clusters/{ns}/{name}/failovers", get(failovers))
        .route("/api/clusters/{ns}/{name}/reshards", get(reshards))
        .route("/api/clusters/{ns}/{name}/audit", get(audit))
        .route("/api/clusters/{ns}/{name}/state", get(state))
        .route("/api/clusters/{ns}/{name}/live", get(live::cluster))
        .route("/api/live", get(live::clusters))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", get(auth::logout))
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            auth::guard,
        ))
        .with_state(ui)
}

/// A request the UI cannot answer, with the status it answers instead.
#[derive(Debug)]
pub struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    /// The status it answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A failed API read of `what`: the API server's refusal (403, 404)
    /// passed on with its message, anything else as 502.
    pub(super) fn kube(what: &str) -> impl FnOnce(kube::Error) -> Self + '_ {
        move |err| match &err {
            kube::Error::Api(status) => Self::new(
                StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_GATEWAY),
                format!("{what}: {}", status.message),
            ),
            _ => Self::new(StatusCode::BAD_GATEWAY, format!("{what}: {err}")),
        }
    }

    fn journal(err: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

type Answer<T> = Result<Json<T>, UiError>;

/// How many replays may run at once in this process: each folds a whole
/// journal on a thread of its own, and any reader may ask for one.
pub const MAX_REPLAYS: usize = 2;
static REPLAYS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_REPLAYS);

/// Runs `work` (a replay over a journal: its scan holds a visitor that is
/// not `Send`) on a blocking thread of the runtime, driven there to its
/// end; refused (429) while [`MAX_REPLAYS`] run already, so that readers
/// cannot pile whole-journal replays onto the operator.
async fn replayed<T, F, Fut>(work: F) -> Result<T, UiError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, UiError>>,
{
    let Ok(slot) = REPLAYS.try_acquire() else {
        return Err(UiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_REPLAYS} replays already run here: try again when one ends"),
        ));
    };
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        handle.block_on(work())
    })
    .await
    .map_err(|e| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the replay failed: {e}"),
        )
    })?
}

/// One ValkeyCluster as the list and the cluster page show it: its spec's
/// shape and its status (neither holds a secret: passwords are only named).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid: the stream of its journal.
    pub uid: String,
    /// Standalone, Replication, Sentinel or Cluster.
    pub topology: String,
    /// Data pods the spec asks for.
    pub wanted_pods: i32,
    /// Cluster: shards asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    /// The Valkey image.
    pub image: String,
    /// Whether TLS is on.
    pub tls: bool,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// When it was created.
    pub created: Option<String>,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// Its status, as the operator wrote it.
    pub status: Option<logbook_crds::ValkeyClusterStatus>,
}

impl Summary {
    /// The summary of `vkc`.
    #[must_use]
    pub fn of(vkc: &ValkeyCluster) -> Self {
        let spec = &vkc.spec;
        Self {
            namespace: vkc.metadata.namespace.clone().unwrap_or_default(),
            name: vkc.metadata.name.clone().unwrap_or_default(),
            uid: vkc.metadata.uid.clone().unwrap_or_default(),
            topology: format!("{:?}", spec.topology),
            wanted_pods: spec.effective_replicas(),
            shards: (spec.topology == logbook_crds::Topology::Cluster).then(|| {
                spec.shards
                    .unwrap_or(logbook_crds::v1alpha1::defaults::SHARDS)
            }),
            image: spec.image.clone(),
            tls: spec.tls.enabled,
            generation: vkc.metadata.generation,
            created: vkc
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string()),
            deleting: vkc.metadata.deletion_timestamp.is_some(),
            status: vkc.status.clone(),
        }
    }
}

/// The ValkeyClusters of `ui`'s namespace, or of every namespace.
pub(super) fn clusters_api(ui: &Ui) -> Api<ValkeyCluster> {
    match &ui.namespace {
        Some(ns) => Api::namespaced(ui.client.clone(), ns),
        None => Api::all(ui.client.clone()),
    }
}

/// Every ValkeyCluster the reader may see.
async fn clusters(
    State(ui): State<Arc<Ui>>,
    viewer: Option<Extension<Viewer>>,
) -> Answer<Vec<Summary>> {
    let list = clusters_api(&ui)
        .list(&ListParams::default())
        .await
        .map_err(UiError::kube("listing ValkeyClusters"))?;
    let mut out = Vec::with_capacity(list.items.len());
    for vkc in &list.items {
        if may_see(&ui, viewer.as_deref(), vkc).await? {
            out.push(Summary::of(vkc));
        }
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Json(out))
}

/// Whether the reader may see `vkc`: always when the UI reads with the
/// reader's own client (the API server already said), else when a review
/// says so.
pub(super) async fn may_see(
    ui: &Ui,
    viewer: Option<&Viewer>,
    vkc: &ValkeyCluster,
) -> Result<bool, UiError> {
    match (&ui.reviews, viewer) {
        (None, _) => Ok(true),
        (Some(reviews), Some(viewer)) => {
            let ns = vkc.metadata.namespace.as_deref().unwrap_or_default();
            let name = vkc.metadata.name.as_deref().unwrap_or_default();
            reviews.may_see(viewer, ns, name).await
        }
        // The guard lets no request without a reader through.
        (Some(_), None) => Ok(false),
    }
}

/// The cluster `ns/name`, read with the UI's client (the reader's right
/// to read it is checked here), refused outside the UI's namespace.
pub(super) async fn get_cluster(ui: &Ui, ns: &str, name: &str) -> Result<ValkeyCluster, UiError> {
    if ui.namespace.as_deref().is_some_and(|only| only != ns) {
        return Err(UiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "this UI shows namespace {} only",
                ui.namespace.as_deref().unwrap_or_default()
            ),
        ));
    }
    Api::<ValkeyCluster>::namespaced(ui.client.clone(), ns)
        .get(name)
        .await
        .map_err(UiError::kube(&format!("ValkeyCluster {ns}/{name}")))
}

/// One data pod: the API's view (ready, restarts) beside the journal's
/// (role, link, offset, reachability).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    /// Its name.
    pub name: String,
    /// Ready, as the kubelet says.
    pub ready: bool,
    /// Pending, Running, ...
    pub phase: Option<String>,
    /// Its Kubernetes node.
    pub node: Option<String>,
    /// Restarts of its Valkey container.
    pub restarts: i32,
    /// Its role label.
    pub role_label: Option<String>,
    /// The role it reported last (journal).
    pub role: Option<String>,
    /// The pod it replicates (journal).
    pub replicates: Option<String>,
    /// Its replication link (journal).
    pub link: Option<String>,
    /// Bytes behind its primary, when both offsets are known (journal).
    pub lag: Option<u64>,
    /// Whether the operator reaches it (journal).
    pub reachability: Option<String>,
    /// Being deleted.
    pub terminating: bool,
}

/// The cluster page's data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// What the list shows.
    pub summary: Summary,
    /// Its data pods.
    pub pods: Vec<PodRow>,
    /// Cluster: the shards and slots as the nodes report them (journal).
    pub valkey_cluster: Option<logbook_replay::state_at::ClusterView>,
    /// Decisions under way (journal).
    pub in_flight: Vec<String>,
    /// The journal's head seq.
    pub head: u64,
    /// Where the journal is read from.
    pub journal: String,
    /// The journal could not be read: why (the rest still shows).
    pub journal_error: Option<String>,
    /// TLS: the certificate as the operator last read it, and what each
    /// pod serves (journal).
    pub certificate: Option<CertificateView>,
    /// The cluster's ValkeyUsers and where each stands.
    pub users: Vec<UserRow>,
    /// The ValkeyUsers could not be read: why.
    pub users_error: Option<String>,
}

/// A TLS cluster's certificate, as the journal last recorded it:
/// fingerprints and dates, never a certificate or key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// Its Secret.
    pub secret: String,
    /// Who issues it: `internal`, `cert-manager`, `secret`.
    pub source: String,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: Option<String>,
    /// When it expires (RFC 3339), when the operator issued it.
    pub not_after: Option<String>,
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
    /// Data pods seen serving another certificate than the Secret's.
    pub stale_pods: Vec<String>,
    /// Data pods seen serving the Secret's certificate.
    pub current_pods: Vec<String>,
}

/// One ValkeyUser of the cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRow {
    /// The object's name.
    pub name: String,
    /// The ACL user name in force.
    pub username: Option<String>,
    /// Pending, Ready, Failed, Removing.
    pub phase: Option<String>,
    /// `applied/total` nodes.
    pub nodes: Option<String>,
    /// What is wrong, when not Ready.
    pub message: Option<String>,
}

/// The projection at the head of `uid`'s journal.
async fn projection(store: &AnyStore, uid: &str, place: String) -> Result<ClusterState, String> {
    let stream = StreamId::new(uid).map_err(|e| e.to_string())?;
    let head = store.head(&stream).await.map_err(|e| e.to_string())?;
    if head.seq == 0 {
        return Ok(ClusterState::default());
    }
    let input = Input::Store {
        store: store.clone(),
        stream,
        cluster: None,
        place,
    };
    logbook_replay::state_at::state_at(&input, Point::Seq(head.seq))
        .await
        .map(|(state, _)| state)
        .map_err(|e| e.to_string())
}

async fn cluster(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
) -> Answer<Detail> {
    let vkc = get_cluster(&ui, &ns, &name).await?;
    let summary = Summary::of(&vkc);
    let pods: Api<Pod> = Api::namespaced(ui.client.clone(), &ns);
    let listed = pods
        .list(&ListParams::default().labels(&labels::selector_string(&name)))
        .await
        .map_err(UiError::kube(&format!("the pods of {ns}/{name}")))?;
    let store = ui.journals.store(&ns);
    let (uid, place) = (summary.uid.clone(), ui.journals.describe().to_owned());
    let projected =
        replayed(move || async move { Ok(projection(&store, &uid, place).await) }).await?;
    let (state, journal_error) = match projected {
        Ok(state) => (state, None),
        Err(e) => (ClusterState::default(), Some(e)),
    };
    let mut rows: Vec<PodRow> = listed
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::COMPONENT))
                .is_none_or(|c| c != labels::COMPONENT_SENTINEL)
        })
        .map(|p| pod_row(p, &state))
        .collect();
    rows.sort_by_key(|a| natural(&a.name));
    let valkey_cluster =
        (summary.topology == "Cluster").then(|| logbook_replay::state_at::cluster_view(&state));
    let in_flight = state
        .in_flight
        .values()
        .map(|i| logbook_replay::describe::planned(&i.planned))
        .collect();
    let certificate = summary.tls.then(|| certificate_view(&state)).flatten();
    let (users, users_error) = match users_of(&ui, &ns, &name).await {
        Ok(users) => (users, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Ok(Json(Detail {
        summary,
        pods: rows,
        valkey_cluster,
        in_flight,
        head: state.last_seq,
        journal: ui.journals.describe().to_owned(),
        journal_error,
        certificate,
        users,
        users_error,
    }))
}

fn certificate_view(state: &ClusterState) -> Option<CertificateView> {
    let tls = &state.tls;
    let cert = tls.certificate.as_ref()?;
    let wanted = tls.wanted();
    let (mut current_pods, mut stale_pods) = (Vec::new(), Vec::new());
    for pod in tls.served.keys() {
        if wanted.is_some() && tls.serves(pod) == wanted {
            current_pods.push(pod.clone());
        } else {
            stale_pods.push(pod.clone());
        }
    }
    Some(CertificateView {
        secret: cert.secret.clone(),
        source: cert.source.clone(),
        fingerprint: cert.fingerprint.clone(),
        not_after: cert.not_after.map(|t| t.to_string()),
        problem: cert.problem.clone(),
        stale_pods,
        current_pods,
    })
}

/// The ValkeyUsers of `ns/name`, read with the UI's client.
async fn users_of(ui: &Ui, ns: &str, name: &str) -> Result<Vec<UserRow>, String> {
    let listed = Api::<logbook_crds::ValkeyUser>::namespaced(ui.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| UiError::kube("cannot read the ValkeyUsers")(e).message)?;
    let mut rows: Vec<UserRow> = listed
        .items
        .into_iter()
        .filter(|u| u.spec.cluster == name)
        .map(|u| {
            let status = u.status.unwrap_or_default();
            UserRow {
                name: u.metadata.name.unwrap_or_default(),
                username: status.username,
                phase: status.phase.map(|p| format!("{p:?}")),
                nodes: status.nodes,
                message: status.message,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// `demo-10` after `demo-9`.
fn natural(name: &str) -> (String, u64) {
    match name.rsplit_once('-') {
        Some((base, n)) => (base.to_owned(), n.parse().unwrap_or(u64::MAX)),
        None => (name.to_owned(), 0),
    }
}

fn pod_row(p: &Pod, state: &ClusterState) -> PodRow {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.name == crate::resources::CONTAINER_NAME)
        })
        .map_or(0, |c| c.restart_count);
    let view = state.pods.get(&name);
    let primary_offset = view
        .and_then(|v| v.replicates.as_ref())
        .and_then(|p| state.pods.get(p))
        .and_then(|p| p.offset);
    PodRow {
        ready,
        phase: status.and_then(|s| s.phase.clone()),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        restarts,
        role_label: p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::ROLE))
            .cloned(),
        role: view.and_then(|v| v.role).map(|r| format!("{r:?}")),
        replicates: view.and_then(|v| v.replicates.clone()),
        link: view.and_then(|v| v.link).map(|l| format!("{l:?}")),
        lag: match (primary_offset, view.and_then(|v| v.offset)) {
            (Some(p), Some(r)) => Some(p.saturating_sub(r)),
            _ => None,
        },
        reachability: view.and_then(|v| v.reachability).map(|r| format!("{r:?}")),
        terminating: p.metadata.deletion_timestamp.is_some(),
        name,
    }
}

/// `?before=<seq>&limit=<n>`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<u64>,
    limit: Option<u64>,
}

async fn journal_page(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Answer<Page> {
    let vkc = get_cluster(&ui, &ns, &name).await?;
    let stream = stream_of(&vkc)?;
    let store = ui.journals.store(&ns);
    journal::page(&store, &stream, q.before, q.limit.unwrap_or(100))
        .await
        .map(Json)
        .map_err(UiError::journal)
}

/// The stream of `vkc`'s journal (its uid).
pub(super) fn stream_of(vkc: &ValkeyCluster) -> Result<StreamId, UiError> {
    let uid = vkc.metadata.uid.clone().unwrap_or_default();
    StreamId::new(uid).map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The input of `ns/name`'s journal, for the replay verbs.
async fn input(ui: &Ui, ns: &str, name: &str) -> Result<Input<AnyStore>, UiError> {
    let vkc = get_cluster(ui, ns, name).await?;
    Ok(Input::Store {
        store: ui.journals.store(ns),
        stream: stream_of(&vkc)?,
        cluster: Some(name.to_owned()),
        place: ui.journals.describe().to_owned(),
    })
}

/// A replay verb's answer: its JSON rows and its text.
#[derive(Debug, Serialize)]
pub struct Told {
    /// The verb's `--json` output.
    pub rows: serde_json::Value,
    /// Its text output.
    pub text: String,
}

fn text(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String, UiError> {
    let mut out = Vec::new();
    write(&mut out).map_err(UiError::journal)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn json(value: &impl Serialize) -> Result<serde_json::Value, UiError> {
    serde_json::to_value(value).map_err(UiError::journal)
}

async fn failovers(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
) -> Answer<Told> {
    let input = input(&ui, &ns, &name).await?;
    replayed(move || async move {
        let mut failovers = logbook_replay::failovers::Failovers::new();
        input
            .scan(None, &mut failovers)
            .await
            .map_err(UiError::journal)?;
        Ok(Json(Told {
            rows: json(&failovers.rows())?,
            text: text(|out| logbook_replay::failovers::write_report(out, &failovers))?,
        }))
    })
    .await
}

async fn reshards(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
) -> Answer<Told> {
    use logbook_replay::Decider;
    let input = input(&ui, &ns, &name).await?;
    replayed(move || async move {
        let mut reshards =
            logbook_replay::reshards::Reshards::with_given_up(OperatorDecider.reshard_given_up());
        input
            .scan(None, &mut reshards)
            .await
            .map_err(UiError::journal)?;
        Ok(Json(Told {
            rows: json(&reshards.rows())?,
            text: text(|out| logbook_replay::reshards::write_text(out, &reshards))?,
        }))
    })
    .await
}

/// The audit's answer.
#[derive(Debug, Serialize)]
pub struct Audited {
    /// No finding.
    pub clean: bool,
    /// `replay audit`'s text: each finding and the rule that failed.
    pub text: String,
    /// Its `--json`.
    pub report: serde_json::Value,
}

async fn audit(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
) -> Answer<Audited> {
    let input = input(&ui, &ns, &name).await?;
    replayed(move || async move {
        let report = logbook_replay::audit::audit(&input, &OperatorDecider)
            .await
            .map_err(UiError::journal)?;
        Ok(Json(Audited {
            clean: report.is_clean(),
            text: text(|out| logbook_replay::audit::write_text(out, &report))?,
            report: json(&report)?,
        }))
    })
    .await
}

/// `?at=<seq or RFC 3339 time>`.
#[derive(Debug, Deserialize)]
pub struct AtQuery {
    at: String,
}

async fn state(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<AtQuery>,
) -> Answer<BTreeMap<&'static str, serde_json::Value>> {
    let point: Point = q.at.parse().map_err(|e: logbook_replay::ReplayError| {
        UiError::new(StatusCode::BAD_REQUEST, e.to_string())
    })?;
    let input = input(&ui, &ns, &name).await?;
    replayed(move || async move {
        let (state, start) = logbook_replay::state_at::state_at(&input, point)
            .await
            .map_err(|e| UiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        let yaml = text(|out| {
            logbook_replay::state_at::write_yaml(out, &state, &start).map_err(std::io::Error::other)
        })?;
        let mut out = BTreeMap::new();
        out.insert("seq", serde_json::Value::from(state.last_seq));
        out.insert("at", serde_json::Value::from(state.last_at.to_string()));
        out.insert("text", serde_json::Value::from(yaml));
        Ok(Json(out))
    })
    .await
}

/// `replay export --format html` of the cluster's journal: the failovers,
/// reshards and decisions drawn, and the audit.
async fn report(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let input = input(&ui, &ns, &name).await?;
    let out = replayed(move || async move {
        let mut out = Vec::new();
        logbook_replay::export::html::export(&input, &OperatorDecider, &mut out)
            .await
            .map_err(UiError::journal)?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], out).into_response())
}

#[cfg(test)]
mod replay_limit_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Past [`MAX_REPLAYS`] at once, a replay is refused at once (429),
    /// not queued; once one ends, the next runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replays_past_the_limit_are_refused_until_one_ends() {
        let mut running = Vec::new();
        let mut ends = Vec::new();
        for _ in 0..MAX_REPLAYS {
            let (end, ended) = tokio::sync::oneshot::channel::<()>();
            let (started, start) = tokio::sync::oneshot::channel::<()>();
            ends.push(end);
            running.push(tokio::spawn(replayed(move || async move {
                let _ = started.send(());
                let _ = ended.await;
                Ok(())
            })));
            start.await.unwrap();
        }
        let refused = replayed(|| async { Ok(()) }).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        for end in ends {
            end.send(()).unwrap();
        }
        for r in running {
            r.await.unwrap().unwrap();
        }
        replayed(|| async { Ok(()) }).await.unwrap();
    }
}
