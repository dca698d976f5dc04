//! `logbook replay ...`: the replay tool on a sled directory, a cluster's
//! ConfigMap journal in a live cluster (read with get and list only) or a
//! JSONL export file. The verbs live in the `logbook-replay` crate; this
//! module opens the source, picks the stream and passes `decide` in.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use logbook_journal::{JournalStore, StreamId, Timestamp};
use logbook_replay::export::Format;
use logbook_replay::state_at::Point;
use logbook_replay::timeline::{Filter, Timeline};
use logbook_replay::{Decider, Input, ReplayError};

use crate::cli_error::{Error, Result};
use crate::journal_source::{Journal, SourceArgs};
use crate::journal_store::{AnyStore, ConfigMapStore};
use crate::replay_decider::{OperatorDecider, build};

/// Which journal a replay verb reads.
#[derive(Debug, Clone, Args)]
pub struct ReplaySource {
    /// A local sled journal directory (`logbook local` keeps one at
    /// `.logbook/journal`).
    #[arg(long, conflicts_with_all = ["namespace", "file"])]
    pub dir: Option<PathBuf>,
    /// The namespace of the cluster whose ConfigMap journal to read.
    #[arg(long, requires = "cluster_or_stream", conflicts_with = "file")]
    pub namespace: Option<String>,
    /// The kubeconfig to use with `--namespace` (default: `KUBECONFIG`,
    /// `~/.kube/config`, or the in-cluster service account).
    #[arg(long, requires = "namespace")]
    pub kubeconfig: Option<PathBuf>,
    /// The ValkeyCluster (live, or deleted with its journal retained).
    #[arg(long, requires = "namespace", group = "cluster_or_stream")]
    pub cluster: Option<String>,
    /// The stream (a cluster's uid, or `operator`); needed with `--dir`
    /// when it holds several clusters' streams.
    #[arg(long, group = "cluster_or_stream", conflicts_with = "file")]
    pub stream: Option<String>,
    /// A JSONL export (`logbook replay export --format jsonl`).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// `logbook replay` verbs.
#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Check every CRC and hash link: the first broken link, or one OK
    /// line with the head hash.
    Verify {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
    },
    /// One line per event with the cause chain (observation -> decision ->
    /// outcome).
    Timeline {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
        /// Only events at or after this RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        since: Option<Timestamp>,
        /// Only events at or before this RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        until: Option<Timestamp>,
        /// Only these event kinds (comma-separated catalog names).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Keep reading: print events as they are appended.
        #[arg(long)]
        follow: bool,
        /// How often `--follow` looks for new events, in milliseconds.
        #[arg(long, default_value_t = 500, requires = "follow")]
        poll_ms: u64,
    },
    /// One record per failover: automatic, planned, requested or observed.
    Failovers {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A Valkey Cluster's reshards: one record per spec generation's
    /// reshard with each slot migration under it, then the slots settled
    /// and the migration jobs no decision names.
    Reshards {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The projection at a seq or an RFC 3339 time, as YAML.
    State {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
        /// A seq, or an RFC 3339 time.
        #[arg(long)]
        at: String,
    },
    /// Recompute every decision, check the invariants and the chain. Exit
    /// 0 clean, 1 findings, 2 unreadable input.
    Audit {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The journal as JSONL, CSV or a self-contained HTML report.
    Export {
        /// The journal.
        #[command(flatten)]
        source: ReplaySource,
        /// `jsonl`, `csv` or `html`.
        #[arg(long)]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn parse_time(text: &str) -> std::result::Result<Timestamp, String> {
    Timestamp::parse(text)
}

/// An opened source: a store and the one stream, or a file.
// One per command: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Opened {
    Store {
        journal: Journal,
        stream: StreamId,
        cluster: Option<String>,
    },
    File(PathBuf),
}

impl ReplaySource {
    fn journal_args(&self) -> SourceArgs {
        SourceArgs {
            dir: self.dir.clone(),
            namespace: self.namespace.clone(),
            kubeconfig: self.kubeconfig.clone(),
            cluster: self.cluster.clone(),
        }
    }

    /// Opens the source; a ConfigMap journal through `client` when one is
    /// given (`kubectl valkey replay`: the user's kubeconfig, context and
    /// flags), else through `--kubeconfig` or the inferred configuration.
    async fn open(&self, client: Option<&kube::Client>) -> Result<Opened> {
        if let Some(file) = &self.file {
            if !file.is_file() {
                return Err(ReplayError::Unreadable {
                    place: format!("export file {}", file.display()),
                    what: "no such file".to_owned(),
                }
                .into());
            }
            return Ok(Opened::File(file.clone()));
        }
        if self.dir.is_none() && self.namespace.is_none() {
            return Err(ReplayError::BadArgument(
                "name the journal: --dir <sled dir>, --namespace <ns> --cluster <name>, or --file <export.jsonl>"
                    .to_owned(),
            )
            .into());
        }
        let journal = match (client, &self.namespace) {
            (Some(client), Some(namespace)) => Journal::ConfigMaps {
                namespace: namespace.clone(),
                kubeconfig: None,
                client: client.clone(),
                store: ConfigMapStore::new(client.clone(), namespace),
            },
            _ => Journal::open(&self.journal_args())
                .await
                .map_err(unreadable)?,
        };
        let (stream, cluster) = match (&journal, &self.stream) {
            (Journal::Sled { .. }, Some(stream)) => (parse_stream(stream)?, None),
            (Journal::Sled { .. }, None) => (only_cluster_stream(&journal).await?, None),
            (Journal::ConfigMaps { namespace, .. }, _) => {
                let info = journal
                    .resolve(self.cluster.as_deref(), self.stream.as_deref())
                    .await
                    .map_err(unreadable)?;
                let cluster = info.cluster.map(|name| format!("{namespace}/{name}"));
                (info.stream, cluster)
            }
        };
        Ok(Opened::Store {
            journal,
            stream,
            cluster,
        })
    }
}

/// A journal that cannot be opened is unreadable input (exit 2).
fn unreadable(err: Error) -> Error {
    match err {
        Error::Replay(_) => err,
        other => Error::Replay(ReplayError::Unreadable {
            place: "journal".to_owned(),
            what: other.to_string(),
        }),
    }
}

fn parse_stream(text: &str) -> Result<StreamId> {
    StreamId::new(text)
        .map_err(|e| ReplayError::BadArgument(format!("--stream {text:?}: {e}")).into())
}

/// The one cluster stream of a sled journal, when there is exactly one.
async fn only_cluster_stream(journal: &Journal) -> Result<StreamId> {
    let streams = journal
        .store()
        .list_streams()
        .await
        .map_err(|e| unreadable(journal.store_error(e)))?;
    let clusters: Vec<&StreamId> = streams
        .iter()
        .filter(|s| s.as_str() != StreamId::OPERATOR)
        .collect();
    match clusters.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(ReplayError::BadArgument(format!(
            "{}: choose a stream with --stream; streams: {}",
            journal.place(),
            if streams.is_empty() {
                "none".to_owned()
            } else {
                streams
                    .iter()
                    .map(StreamId::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
        .into()),
    }
}

/// Runs one `logbook replay` verb.
///
/// # Errors
/// [`Error::Replay`] (exit 2 for unreadable input), [`Error::AuditFindings`]
/// and [`Error::ReplayBroken`] (exit 1, after the report is printed).
pub fn run(cmd: ReplayCommand, out: &mut dyn Write) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    rt.block_on(run_with_client(cmd, None, out))
}

/// [`run`] inside a runtime, reading a ConfigMap journal through `client`
/// when one is given (`kubectl valkey replay` builds it from kubectl's
/// flags); exit codes as [`run`]'s.
///
/// # Errors
/// As [`run`].
pub async fn run_with_client(
    cmd: ReplayCommand,
    client: Option<kube::Client>,
    out: &mut dyn Write,
) -> Result<()> {
    let source = match &cmd {
        ReplayCommand::Verify { source }
        | ReplayCommand::Timeline { source, .. }
        | ReplayCommand::Failovers { source, .. }
        | ReplayCommand::Reshards { source, .. }
        | ReplayCommand::State { source, .. }
        | ReplayCommand::Audit { source, .. }
        | ReplayCommand::Export { source, .. } => source.clone(),
    };
    match source.open(client.as_ref()).await? {
        Opened::File(path) => {
            run_on(
                &cmd,
                &Input::<AnyStore>::File(path),
                None::<&Input<AnyStore>>,
                out,
            )
            .await
        }
        Opened::Store {
            journal,
            stream,
            cluster,
        } => {
            let place = journal.place();
            let store = journal.store();
            // One-shot verbs read a ConfigMap journal at one commit
            // point; `--follow` reads the head again at every look.
            let pinned = match store.config_maps() {
                Some(config_maps) => Some(
                    config_maps
                        .pin(&stream)
                        .await
                        .map_err(|e| unreadable(journal.store_error(e)))?,
                ),
                None => None,
            };
            let live = Input::Store {
                store,
                stream: stream.clone(),
                cluster: cluster.clone(),
                place: place.clone(),
            };
            match pinned {
                Some(pinned) => {
                    let input = Input::Store {
                        store: pinned,
                        stream,
                        cluster,
                        place,
                    };
                    run_on(&cmd, &input, Some(&live), out).await
                }
                None => run_on(&cmd, &live, Some(&live), out).await,
            }
        }
    }
}

async fn run_on<S: JournalStore, L: JournalStore>(
    cmd: &ReplayCommand,
    input: &Input<S>,
    live: Option<&Input<L>>,
    out: &mut dyn Write,
) -> Result<()> {
    match cmd {
        ReplayCommand::Verify { .. } => {
            let verified = logbook_replay::verify::verify(input).await?;
            logbook_replay::verify::write_text(out, &verified)?;
            match verified.problem {
                None => Ok(()),
                Some(p) => Err(Error::ReplayBroken {
                    stream: verified.stream,
                    seq: p.seq,
                }),
            }
        }
        ReplayCommand::Timeline {
            since,
            until,
            kinds,
            follow,
            poll_ms,
            ..
        } => {
            let filter = Filter {
                since: *since,
                until: *until,
                ..Filter::default()
            }
            .with_kinds(kinds.iter().cloned())?;
            let mut timeline = Timeline::new(out, filter);
            if !follow {
                input.scan(None, &mut timeline).await?;
                return Ok(());
            }
            match (live, input) {
                (Some(live), _) => {
                    let position = live.scan(None, &mut timeline).await?;
                    live.follow(
                        position,
                        Duration::from_millis(*poll_ms),
                        &mut timeline,
                        tokio::time::sleep,
                    )
                    .await?;
                }
                (None, file) => {
                    let position = file.scan(None, &mut timeline).await?;
                    file.follow(
                        position,
                        Duration::from_millis(*poll_ms),
                        &mut timeline,
                        tokio::time::sleep,
                    )
                    .await?;
                }
            }
            Ok(())
        }
        ReplayCommand::Failovers { json, .. } => {
            let mut failovers = logbook_replay::failovers::Failovers::new();
            input.scan(None, &mut failovers).await?;
            if *json {
                write_json(out, &failovers.rows())
            } else {
                logbook_replay::failovers::write_report(out, &failovers)?;
                Ok(())
            }
        }
        ReplayCommand::Reshards { json, .. } => {
            // A failing reshard is given up when this build's status
            // would say so.
            let mut reshards = logbook_replay::reshards::Reshards::with_given_up(
                OperatorDecider.reshard_given_up(),
            );
            input.scan(None, &mut reshards).await?;
            if *json {
                write_json(out, &reshards.rows())
            } else {
                logbook_replay::reshards::write_text(out, &reshards)?;
                Ok(())
            }
        }
        ReplayCommand::State { at, .. } => {
            let point: Point = at.parse()?;
            let (state, start) = logbook_replay::state_at::state_at(input, point).await?;
            logbook_replay::state_at::write_yaml(out, &state, &start)?;
            Ok(())
        }
        ReplayCommand::Audit { json, .. } => {
            let report = logbook_replay::audit::audit(input, &OperatorDecider).await?;
            if *json {
                write_json(out, &report)?;
            } else {
                logbook_replay::audit::write_text(out, &report)?;
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(Error::AuditFindings {
                    findings: report.findings.len(),
                })
            }
        }
        ReplayCommand::Export { format, output, .. } => {
            let format: Format = format.parse()?;
            let mut file;
            let mut buffered;
            let sink: &mut dyn Write = match output {
                Some(path) => {
                    file = std::io::BufWriter::with_capacity(
                        1 << 20,
                        std::fs::File::create(path).map_err(|e| {
                            ReplayError::BadArgument(format!(
                                "--output {}: cannot create it: {e}",
                                path.display()
                            ))
                        })?,
                    );
                    &mut file
                }
                None => {
                    buffered = std::io::BufWriter::with_capacity(1 << 20, out);
                    &mut buffered
                }
            };
            match format {
                Format::Jsonl => {
                    logbook_replay::export::jsonl(input, sink, build()).await?;
                }
                Format::Csv => {
                    logbook_replay::export::csv::export(input, sink).await?;
                }
                Format::Html => {
                    logbook_replay::export::html::export(input, &OperatorDecider, sink).await?;
                }
            }
            sink.flush()?;
            Ok(())
        }
    }
}

fn write_json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(())
}
