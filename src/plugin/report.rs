//! `kubectl valkey report <name> [-o file.tar.gz | dir]`: a support bundle
//! to attach to an issue — the ValkeyCluster (YAML), what the operator
//! owns for it (StatefulSets, Services, ConfigMaps), the pods' states with
//! their observed roles, `status` and `events` as the plugin prints them,
//! the journal as JSONL (the replay crate's export, which `logbook replay
//! --file` reads back), and the last lines of the operator's logs.
//!
//! Never a secret: Secrets are listed by name only, read with a
//! metadata-only list so their data never even reaches this process; the
//! journal and the ConfigMaps hold none by design. A part that cannot be
//! read (a 403, no operator pod found) becomes a note in the bundle
//! instead of failing it.

use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{Api, ListParams, LogParams};
use logbook_crds::ValkeyCluster;
use logbook_journal::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use super::connect::Kube;
use super::error::{PluginError, Result, chain};
use super::journal::{self, JournalView};
use crate::journal_store::layout::JOURNAL_LABEL;
use crate::replay_cli::{ReplayCommand, ReplaySource};

/// Where a bundle goes and what it includes.
#[derive(Debug, Clone)]
pub struct ReportArgs {
    /// `-o`: a `.tar.gz`/`.tgz` file, or a directory (created; must be
    /// empty if it exists). Default: `valkey-report-<name>-<time>.tar.gz`.
    pub output: Option<PathBuf>,
    /// Where the operator's pods run.
    pub operator_namespace: String,
    /// Lines of each operator pod's log.
    pub log_lines: i64,
}

/// The label the operator's pods carry (the Helm chart's
/// `app.kubernetes.io/name`).
pub const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=logbook";

/// The bundle's files, relative to its top directory.
type Files = Vec<(String, Vec<u8>)>;

/// Runs `report`.
///
/// # Errors
/// [`PluginError::ClusterNotFound`] and API errors reading the cluster
/// itself; errors writing the bundle. Other parts fail into notes.
pub async fn run(kube: &Kube, name: &str, args: &ReportArgs, out: &mut dyn Write) -> Result<()> {
    let now = Timestamp::now();
    let cluster = kube.cluster(name).await?;
    let stamp: String = now
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let top = format!("valkey-report-{name}-{stamp}Z");
    let mut files: Files = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    collect(kube, &cluster, name, args, now, &mut files, &mut notes).await?;
    files.push((
        "README.txt".to_owned(),
        readme(kube, name, now, args, &files, &notes).into_bytes(),
    ));
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{top}.tar.gz")));
    let mtime = u64::try_from(now.as_micros() / 1_000_000).unwrap_or(0);
    if is_archive(&output) {
        let named: Files = files
            .into_iter()
            .map(|(path, data)| (format!("{top}/{path}"), data))
            .collect();
        let file = std::fs::File::create(&output).map_err(io(&output, "cannot create"))?;
        super::tar::write_tar_gz(std::io::BufWriter::new(file), &named, mtime)
            .map_err(io(&output, "cannot write"))?;
    } else {
        write_dir(&output, &files)?;
    }
    writeln!(
        out,
        "support bundle for valkeycluster/{name} written to {}",
        output.display()
    )?;
    for note in &notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

fn is_archive(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.ends_with(".tar.gz") || text.ends_with(".tgz")
}

fn io<'a>(path: &'a Path, what: &'a str) -> impl Fn(std::io::Error) -> PluginError + 'a {
    move |source| PluginError::Io {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    }
}

fn write_dir(dir: &Path, files: &Files) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io(dir, "cannot read"))?
            .next()
            .is_some()
    {
        return Err(PluginError::Usage(format!(
            "-o {}: the directory exists and is not empty (give a new directory, or a file ending in .tar.gz)",
            dir.display()
        )));
    }
    for (path, data) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent, "cannot create"))?;
        }
        std::fs::write(&file, data).map_err(io(&file, "cannot write"))?;
    }
    Ok(())
}

fn yaml<T: Serialize>(value: &T) -> Vec<u8> {
    serde_yaml::to_string(value)
        .unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
        .into_bytes()
}

/// Drops what only clutters a bundle (managed fields).
fn tidy<K: Serialize>(objects: &[K]) -> Vec<Value> {
    objects
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .map(|mut v| {
            if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            v
        })
        .collect()
}

async fn collect(
    kube: &Kube,
    cluster: &ValkeyCluster,
    name: &str,
    args: &ReportArgs,
    now: Timestamp,
    files: &mut Files,
    notes: &mut Vec<String>,
) -> Result<()> {
    files.push((
        "cluster.yaml".to_owned(),
        yaml(&tidy(std::slice::from_ref(cluster)).first()),
    ));
    let mut status = Vec::new();
    match super::status::write_detail(kube, name, now, &mut status).await {
        Ok(()) => files.push(("status.txt".to_owned(), status)),
        Err(err) => notes.push(format!("status.txt: {err}")),
    }
    let journal = journal::read(kube, cluster).await;
    match &journal {
        Ok(view) => {
            let mut events = Vec::new();
            super::events::write(&mut events, view, 200, now)?;
            files.push(("events.txt".to_owned(), events));
        }
        Err(err) => notes.push(format!("events.txt: {err}")),
    }
    let pods = kube.data_pods(name).await;
    match &pods {
        Ok(pods) => files.push((
            "pods.yaml".to_owned(),
            yaml(&pod_states(pods, journal.as_ref().ok())),
        )),
        Err(err) => notes.push(format!("pods.yaml: {err}")),
    }
    part::<StatefulSet>(
        kube,
        name,
        "statefulsets.apps",
        "statefulsets.yaml",
        files,
        notes,
    )
    .await;
    part::<Service>(kube, name, "services", "services.yaml", files, notes).await;
    part::<ConfigMap>(kube, name, "configmaps", "configmaps.yaml", files, notes).await;
    files.push((
        "secrets.txt".to_owned(),
        secrets(kube, cluster, name).await.into_bytes(),
    ));
    match journal_jsonl(kube, name).await {
        Ok(jsonl) => files.push(("journal.jsonl".to_owned(), jsonl)),
        Err(err) => notes.push(format!("journal.jsonl: {err}")),
    }
    files.push((
        "journal-configmaps.txt".to_owned(),
        journal_objects(kube, cluster).await.into_bytes(),
    ));
    operator_logs(kube, args, files, notes).await;
    Ok(())
}

/// One kind of owned object, as YAML, or a note.
async fn part<K>(
    kube: &Kube,
    name: &str,
    resource: &str,
    file: &str,
    files: &mut Files,
    notes: &mut Vec<String>,
) where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    match kube.owned::<K>(name, resource).await {
        Ok(items) => files.push((file.to_owned(), yaml(&tidy(&items)))),
        Err(err) => notes.push(format!("{file}: {err}")),
    }
}

/// Each pod's phase, conditions, restarts, role label and (from the
/// journal) observed role.
fn pod_states(pods: &[Pod], journal: Option<&JournalView>) -> Vec<Value> {
    pods.iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let status = p.status.clone().unwrap_or_default();
            let observed = journal.and_then(|j| j.state.pods.get(&name));
            json!({
                "name": name,
                "phase": status.phase,
                "podIP": status.pod_ip,
                "deleting": p.metadata.deletion_timestamp.is_some(),
                "roleLabel": p.metadata.labels.as_ref().and_then(|l| l.get(crate::resources::labels::ROLE)),
                "conditions": status.conditions.unwrap_or_default().iter().map(|c| json!({
                    "type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
                })).collect::<Vec<_>>(),
                "containers": status.container_statuses.unwrap_or_default().iter().map(|c| json!({
                    "name": c.name, "ready": c.ready, "restarts": c.restart_count,
                })).collect::<Vec<_>>(),
                "observedByOperator": observed.map(|v| json!({
                    "role": v.role.map(|r| format!("{r:?}")),
                    "follows": v.replicates,
                    "offset": v.offset,
                    "probe": v.reachability.map(|r| format!("{r:?}")),
                    "lastSeen": v.last_seen.to_string(),
                })),
            })
        })
        .collect()
}

/// Secret names only: labelled with the cluster, and the password Secret
/// the spec names. Listed by metadata, so no data is fetched.
async fn secrets(kube: &Kube, cluster: &ValkeyCluster, name: &str) -> String {
    let mut text = String::from(
        "# Secrets of the cluster, by name only: their data is never read into this bundle.\n",
    );
    let api: Api<Secret> = kube.api();
    let params = ListParams::default().labels(&crate::resources::labels::selector_string(name));
    match api.list_metadata(&params).await {
        Ok(list) => {
            for s in list.items {
                text.push_str(&format!("{}\n", s.metadata.name.unwrap_or_default()));
            }
        }
        Err(err) => {
            let err = PluginError::from_kube(&kube.call("list", "secrets", None), err);
            text.push_str(&format!("# cannot list them: {err}\n"));
        }
    }
    if let Some(secret) = cluster.spec.auth.effective_password_secret(name) {
        text.push_str(&format!(
            "{} (password Secret named by the spec, key {})\n",
            secret.name, secret.key
        ));
    }
    text
}

/// The journal as JSONL, through the replay crate's export.
async fn journal_jsonl(kube: &Kube, name: &str) -> std::result::Result<Vec<u8>, String> {
    let command = ReplayCommand::Export {
        source: ReplaySource {
            dir: None,
            namespace: Some(kube.namespace.clone()),
            kubeconfig: None,
            cluster: Some(name.to_owned()),
            stream: None,
            file: None,
        },
        format: "jsonl".to_owned(),
        output: None,
    };
    let mut out = Vec::new();
    crate::replay_cli::run_with_client(command, Some(kube.client.clone()), &mut out)
        .await
        .map_err(|e| chain(&e))?;
    Ok(out)
}

/// The names of the journal's ConfigMaps (their frames are in
/// `journal.jsonl`).
async fn journal_objects(kube: &Kube, cluster: &ValkeyCluster) -> String {
    let uid = cluster.metadata.uid.clone().unwrap_or_default();
    let api: Api<ConfigMap> = kube.api();
    let params = ListParams::default().labels(&format!("{JOURNAL_LABEL}={uid}"));
    match api.list_metadata(&params).await {
        Ok(list) => list
            .items
            .into_iter()
            .map(|c| format!("{}\n", c.metadata.name.unwrap_or_default()))
            .collect(),
        Err(err) => format!(
            "# cannot list them: {}\n",
            PluginError::from_kube(&kube.call("list", "configmaps", None), err)
        ),
    }
}

/// The last lines of each operator pod's log, or a note saying why not.
async fn operator_logs(kube: &Kube, args: &ReportArgs, files: &mut Files, notes: &mut Vec<String>) {
    let ns = args.operator_namespace.as_str();
    let api: Api<Pod> = Api::namespaced(kube.client.clone(), ns);
    let call = |verb, resource| super::error::Call {
        verb,
        resource,
        namespace: ns,
        name: None,
        url: &kube.url,
    };
    let pods = match api
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await
    {
        Ok(list) => list.items,
        Err(err) => {
            let note = format!(
                "operator logs: {}",
                PluginError::from_kube(&call("list", "pods"), err)
            );
            files.push((
                "operator-logs/NOTE.txt".to_owned(),
                format!("{note}\n").into_bytes(),
            ));
            notes.push(note);
            return;
        }
    };
    if pods.is_empty() {
        let note = format!(
            "operator logs: no pod labelled {OPERATOR_SELECTOR} in namespace {ns:?} (give the operator's namespace with --operator-namespace)"
        );
        files.push((
            "operator-logs/NOTE.txt".to_owned(),
            format!("{note}\n").into_bytes(),
        ));
        notes.push(note);
        return;
    }
    let params = LogParams {
        tail_lines: Some(args.log_lines),
        ..LogParams::default()
    };
    for pod in pods {
        let pod_name = pod.metadata.name.unwrap_or_default();
        match api.logs(&pod_name, &params).await {
            Ok(text) => files.push((format!("operator-logs/{pod_name}.log"), text.into_bytes())),
            Err(err) => {
                let note = format!(
                    "operator logs of {pod_name}: {}",
                    PluginError::from_kube(&call("get", "pods/log"), err)
                );
                files.push((
                    format!("operator-logs/{pod_name}.NOTE.txt"),
                    format!("{note}\n").into_bytes(),
                ));
                notes.push(note);
            }
        }
    }
}

fn readme(
    kube: &Kube,
    name: &str,
    now: Timestamp,
    args: &ReportArgs,
    files: &Files,
    notes: &[String],
) -> String {
    let mut text = format!(
        "Support bundle for valkeycluster {name} in namespace {}\n\
         made at {now} by kubectl-valkey {} against {}\n\n\
         No Secret data is included: Secrets are listed by name only (secrets.txt).\n\
         The journal (journal.jsonl) can be replayed offline:\n  \
         logbook replay audit --file journal.jsonl\n  \
         logbook replay timeline --file journal.jsonl\n\
         Operator logs: the last {} lines of each pod labelled {OPERATOR_SELECTOR} in namespace {}.\n\nFiles:\n",
        kube.namespace,
        env!("CARGO_PKG_VERSION"),
        kube.url,
        args.log_lines,
        args.operator_namespace,
    );
    for (path, data) in files {
        text.push_str(&format!("  {path} ({} bytes)\n", data.len()));
    }
    if !notes.is_empty() {
        text.push_str("\nNot included:\n");
        for note in notes {
            text.push_str(&format!("  {note}\n"));
        }
    }
    text
}
