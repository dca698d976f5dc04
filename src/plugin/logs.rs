//! `kubectl valkey logs <name> [--operator] [--since D] [--tail N] [-f]`:
//! the log lines of the cluster's pods, each prefixed with its pod's
//! name, through the API's `pods/log`; with `--operator`, the operator's
//! own lines about this cluster.
//!
//! The operator runs each cluster's work in a span carrying the cluster's
//! `namespace` and `name` (`operator/src/operator/span.rs`), and every
//! line it logs in that span carries both: as JSON fields
//! (`--log-format json`) or as `namespace=... name=...` after the message
//! (text). Those are the lines kept.

use std::io::Write;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use super::connect::Kube;
use super::error::{PluginError, Result};
use super::report::OPERATOR_SELECTOR;
use crate::resources::CONTAINER_NAME;

/// What `logs` was asked for.
#[derive(Debug, Clone)]
pub struct LogsArgs {
    /// The operator's lines about the cluster instead of its pods'.
    pub operator: bool,
    /// Where the operator runs (default: `logbook-system`, else any
    /// namespace where pods carry the operator's label).
    pub operator_namespace: Option<String>,
    /// Only lines newer than this.
    pub since: Option<Duration>,
    /// Only the last lines (of each pod; with `--operator`, of the lines
    /// about this cluster).
    pub tail: Option<i64>,
    /// Keep streaming new lines.
    pub follow: bool,
}

/// One pod to read: its namespace, name and container.
#[derive(Debug, Clone)]
struct Source {
    namespace: String,
    pod: String,
    container: Option<String>,
}

/// Runs `logs`.
///
/// # Errors
/// [`PluginError::ClusterNotFound`]; [`PluginError::Refused`] when there
/// is no pod to read; API errors.
pub async fn run(kube: &Kube, name: &str, args: &LogsArgs, out: &mut dyn Write) -> Result<()> {
    kube.cluster(name).await?;
    let sources = if args.operator {
        match &args.operator_namespace {
            Some(ns) => operator_pods(kube, Some(ns)).await?,
            None => match operator_pods(kube, Some(DEFAULT_OPERATOR_NAMESPACE)).await {
                Ok(found) => found,
                // Installed elsewhere: wherever its label is, if the
                // user may list pods across namespaces.
                Err(first) => match operator_pods(kube, None).await {
                    Ok(found) => found,
                    Err(_) => return Err(first),
                },
            },
        }
    } else {
        let pods = kube.data_pods(name).await?;
        if pods.is_empty() {
            return Err(PluginError::Refused(format!(
                "valkeycluster {name:?} has no pod running (hibernated, or not created yet): no log to show"
            )));
        }
        pods.iter()
            .map(|p| Source {
                namespace: kube.namespace.clone(),
                pod: p.metadata.name.clone().unwrap_or_default(),
                container: container_of(p),
            })
            .collect()
    };
    let filter = args.operator.then(|| Filter {
        namespace: kube.namespace.clone(),
        name: name.to_owned(),
    });
    if args.follow {
        follow(kube, &sources, args, filter.as_ref(), out).await
    } else {
        for source in &sources {
            let text = read(kube, source, args, filter.is_some()).await?;
            let mut lines: Vec<&str> = text
                .lines()
                .filter(|l| filter.as_ref().is_none_or(|f| f.keeps(l)))
                .collect();
            // With a filter the tail is of the lines kept.
            if filter.is_some()
                && let Some(n) = args.tail
            {
                let n = usize::try_from(n).unwrap_or(0);
                lines = lines.split_off(lines.len().saturating_sub(n));
            }
            for line in lines {
                writeln!(out, "[{}] {line}", source.pod)?;
            }
        }
        Ok(())
    }
}

/// The Valkey container of a data pod (the others are sidecars).
fn container_of(pod: &Pod) -> Option<String> {
    let names: Vec<String> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    if names.len() <= 1 {
        return None;
    }
    names
        .iter()
        .find(|n| n.as_str() == CONTAINER_NAME)
        .or_else(|| names.first())
        .cloned()
}

/// Where the Helm chart's instructions install the operator.
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "logbook-system";

/// The operator's pods, by their Helm chart label, in `namespace` (`None`:
/// in every namespace).
async fn operator_pods(kube: &Kube, namespace: Option<&str>) -> Result<Vec<Source>> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(kube.client.clone(), ns),
        None => Api::all(kube.client.clone()),
    };
    let shown = namespace.unwrap_or("(all)");
    let pods = api
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await
        .map_err(|e| {
            PluginError::from_kube(
                &super::error::Call {
                    verb: "list",
                    resource: "pods",
                    namespace: shown,
                    name: None,
                    url: &kube.url,
                },
                e,
            )
        })?
        .items;
    if pods.is_empty() {
        return Err(PluginError::Refused(format!(
            "no operator pod (labelled {OPERATOR_SELECTOR}) in {}: give the operator's namespace with --operator-namespace",
            namespace.map_or_else(
                || "any namespace".to_owned(),
                |ns| format!("namespace {ns:?}")
            )
        )));
    }
    let mut sources: Vec<Source> = pods
        .iter()
        .map(|p| Source {
            namespace: p
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| shown.to_owned()),
            pod: p.metadata.name.clone().unwrap_or_default(),
            container: None,
        })
        .collect();
    sources.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    Ok(sources)
}

fn params(source: &Source, args: &LogsArgs, filtered: bool, follow: bool) -> LogParams {
    LogParams {
        container: source.container.clone(),
        follow,
        since_seconds: args
            .since
            .map(|d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)),
        // The operator's lines are filtered here: the tail is taken after.
        tail_lines: if filtered { None } else { args.tail },
        ..LogParams::default()
    }
}

fn call_error(kube: &Kube, source: &Source, e: kube::Error) -> PluginError {
    PluginError::from_kube(
        &super::error::Call {
            verb: "get",
            resource: "pods/log",
            namespace: &source.namespace,
            name: Some(&source.pod),
            url: &kube.url,
        },
        e,
    )
}

async fn read(kube: &Kube, source: &Source, args: &LogsArgs, filtered: bool) -> Result<String> {
    let api: Api<Pod> = Api::namespaced(kube.client.clone(), &source.namespace);
    api.logs(&source.pod, &params(source, args, filtered, false))
        .await
        .map_err(|e| call_error(kube, source, e))
}

/// Streams every source at once, each line as it comes, until every
/// stream ends (a pod deleted; the user's Ctrl-C ends the process).
async fn follow(
    kube: &Kube,
    sources: &[Source],
    args: &LogsArgs,
    filter: Option<&Filter>,
    out: &mut dyn Write,
) -> Result<()> {
    let mut streams = Vec::new();
    for source in sources {
        let api: Api<Pod> = Api::namespaced(kube.client.clone(), &source.namespace);
        let reader = api
            .log_stream(&source.pod, &params(source, args, filter.is_some(), true))
            .await
            .map_err(|e| call_error(kube, source, e))?;
        let pod = source.pod.clone();
        streams.push(reader.lines().map(move |line| (pod.clone(), line)).boxed());
    }
    let mut all = futures::stream::select_all(streams);
    while let Some((pod, line)) = all.next().await {
        let line = line.map_err(|e| {
            PluginError::Refused(format!("the log stream of pod {pod:?} broke: {e}"))
        })?;
        if filter.is_none_or(|f| f.keeps(&line)) {
            writeln!(out, "[{pod}] {line}")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Keeps the operator's lines about one cluster.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The cluster's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Filter {
    /// Whether `line` (JSON or text) is about this cluster: it carries its
    /// `namespace` and `name` fields.
    #[must_use]
    pub fn keeps(&self, line: &str) -> bool {
        let trimmed = line.trim();
        if trimmed.starts_with('{') {
            let Ok(object) = serde_json::from_str::<serde_json::Value>(trimmed) else {
                return false;
            };
            return object.get("namespace").and_then(|v| v.as_str()) == Some(&self.namespace)
                && object.get("name").and_then(|v| v.as_str()) == Some(&self.name);
        }
        let namespace = format!("namespace={}", self.namespace);
        let name = format!("name={}", self.name);
        let mut has_namespace = false;
        let mut has_name = false;
        for token in trimmed.split_whitespace() {
            has_namespace |= token == namespace;
            has_name |= token == name;
        }
        has_namespace && has_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Filter {
        Filter {
            namespace: "default".to_owned(),
            name: "demo".to_owned(),
        }
    }

    #[test]
    fn json_lines_are_kept_by_their_namespace_and_name_fields() {
        let f = demo();
        assert!(f.keeps(
            r#"{"timestamp":"t","level":"INFO","target":"logbook","message":"decided","namespace":"default","name":"demo","seq":7}"#
        ));
        assert!(!f.keeps(
            r#"{"timestamp":"t","level":"INFO","target":"logbook","message":"decided","namespace":"default","name":"demo2"}"#
        ));
        assert!(!f.keeps(
            r#"{"timestamp":"t","level":"INFO","target":"logbook","message":"decided","namespace":"prod","name":"demo"}"#
        ));
        assert!(!f.keeps(r#"{"message":"leader elected"}"#));
        assert!(!f.keeps("{not json"));
    }

    #[test]
    fn text_lines_are_kept_by_their_key_value_fields() {
        let f = demo();
        assert!(f.keeps(
            "2026-11-30T17:00:00Z  INFO logbook::operator: decided name=demo namespace=default seq=7"
        ));
        assert!(!f.keeps(
            "2026-11-30T17:00:00Z  INFO logbook::operator: decided name=demo2 namespace=default"
        ));
        assert!(!f.keeps("2026-11-30T17:00:00Z  INFO logbook: the operator started"));
    }

    #[test]
    fn the_valkey_container_is_chosen_beside_a_sidecar() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-0"},
            "spec": {"containers": [{"name": "exporter"}, {"name": "valkey"}]}
        }))
        .unwrap_or_default();
        assert_eq!(container_of(&pod).as_deref(), Some("valkey"));
        let single: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-0"},
            "spec": {"containers": [{"name": "valkey"}]}
        }))
        .unwrap_or_default();
        assert_eq!(container_of(&single), None);
    }
}
