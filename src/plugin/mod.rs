//! `kubectl valkey`: the kubectl plugin (binary `kubectl-valkey`, found by
//! kubectl on `PATH`) for Logbook's ValkeyClusters — status from the
//! published status and the journal, switchover, failover, pause and
//! resume as requests the operator serves and journals, the replay tool on
//! a cluster's journal, recent decisions, and a support bundle.
//!
//! kubectl hands a plugin every argument after its name, so kubectl's
//! connection flags (`--kubeconfig`, `--context`, `-n/--namespace`) are
//! parsed here, anywhere on the line, with kubectl's defaults.
//!
//! - `connect`: the client and its calls; `error`: failures and exit
//!   codes; `journal`: the journal read with the replay crate;
//! - one file per command family: `status` (with `shards` for a Valkey
//!   Cluster), `requests`, `events`, `replay`, `report` (with `tar` for
//!   its archive), `backup`, `logs`, `cli` (valkey-cli through
//!   `kubectl exec`), `restart` (a roll the operator journals),
//!   `certificate` (a client certificate for mutual TLS); `format` for
//!   tables.
//!
//! It never prints a secret: it reads no Secret data, and the journal and
//! the published status hold none; `certificate` alone reads one, the
//! cluster's CA key, to sign with, and writes the new key to a 0600 file.

mod backup;
mod certificate;
mod cli;
mod connect;
mod defaults;
mod error;
mod events;
mod format;
mod journal;
mod logs;
mod replay;
mod report;
mod requests;
mod restart;
mod shards;
mod status;
mod tar;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use connect::{Flags, Kube};
pub use error::{
    EXIT_FAILED, EXIT_FORBIDDEN, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, PluginError, Result,
};
pub use requests::failover_prompt;

/// What the exit codes mean, for `--help`.
const EXIT_CODES: &str = "Exit codes:
  0  done
  1  failed: unknown cluster, refused request, --wait timed out, aborted at the prompt, API or journal error
  2  invalid arguments; also `failover` without --yes when standard input is not a terminal
  3  the Kubernetes API cannot be reached, or no usable kubeconfig
  4  forbidden (RBAC, 403) or unauthorized (401)
  replay: replay's own codes (0 clean, 1 findings, 2 unreadable journal)";

/// Operate Logbook's ValkeyClusters: see them at a glance, back them up,
/// restart, switch over, reach their servers and logs, and read what the
/// operator decided and why from its journal.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-valkey",
    bin_name = "kubectl valkey",
    version,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then
    /// the in-cluster service account).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--wait` and `--timeout`.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait until status.primary changes (or the operator refuses).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits: `90s`, `2m`, `500ms`, or seconds.
    #[arg(long, default_value = "120s", value_parser = parse_duration, requires = "wait")]
    pub timeout: Duration,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One cluster at a glance, or one line per cluster of the namespace.
    ///
    /// Without a name: every ValkeyCluster of the namespace. With one: its
    /// topology, phase, versions, conditions, each pod's role, replication
    /// offset and lag as last observed by the operator (from the journal),
    /// the last failover and why, what the operator is doing, backups, the
    /// certificate's expiry, its ValkeyUsers and the journal head; for a
    /// Valkey Cluster, its shards (primary, replicas in sync or not, slots)
    /// and slots owned of 16384.
    Status {
        /// The ValkeyCluster.
        name: Option<String>,
    },
    /// Take a backup now, to the cluster's spec.backup.destination.
    ///
    /// Creates a ValkeyBackup and prints its name; with --wait, waits for
    /// it and prints its size, duration and location.
    Backup {
        /// The ValkeyCluster.
        name: String,
        /// Wait until the backup completes or fails.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits: `90s`, `10m`, or seconds.
        #[arg(long, default_value = "10m", value_parser = parse_duration, requires = "wait")]
        timeout: Duration,
    },
    /// The log lines of the cluster's pods, or the operator's about it.
    ///
    /// Each line prefixed with its pod; with --operator, the operator's
    /// own lines carrying this cluster's namespace and name.
    Logs {
        /// The ValkeyCluster.
        name: String,
        /// The operator's lines about this cluster, from its pods
        /// (labelled app.kubernetes.io/name=logbook).
        #[arg(long)]
        operator: bool,
        /// The namespace the operator runs in (default: logbook-system,
        /// else wherever pods carry its label).
        #[arg(long, value_name = "NAMESPACE")]
        operator_namespace: Option<String>,
        /// Only lines newer than this: `90s`, `10m`, `1h`.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        since: Option<Duration>,
        /// Only the last N lines of each pod (with --operator: of the
        /// lines about this cluster).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
        tail: Option<i64>,
        /// Keep printing new lines as they come.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// valkey-cli on the primary (or --pod), through `kubectl exec`.
    ///
    /// With the credentials the pod holds (never on a command line);
    /// interactive without ARGS, e.g. `kubectl valkey cli cache -- GET k`.
    Cli {
        /// The ValkeyCluster.
        name: String,
        /// The data pod (default: the primary).
        #[arg(long, value_name = "POD")]
        pod: Option<String>,
        /// valkey-cli's arguments, after `--`.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Move the primary role to an in-sync replica, losing no acknowledged write.
    ///
    /// Ask for a planned switchover: the primary role moves to an in-sync
    /// replica with no acknowledged write lost (annotation
    /// valkey.logbook.dev/switchover-to).
    Switchover {
        /// The ValkeyCluster.
        name: String,
        /// The pod to promote (default: `auto`, the operator chooses).
        #[arg(long, value_name = "POD")]
        to: Option<String>,
        /// Waiting.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Fail over now, even from a healthy primary (asks first).
    ///
    /// Ask the operator to fail over now, even from a healthy primary:
    /// fence it, promote the replica with the most of its data, repoint the
    /// others (annotation valkey.logbook.dev/failover-requested). Writes not
    /// yet replicated can be lost: asks for confirmation unless --yes.
    Failover {
        /// The ValkeyCluster.
        name: String,
        /// Do not ask for confirmation (needed when standard input is not
        /// a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Waiting.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Restart every pod once, as the operator rolls any change.
    ///
    /// Replicas first, the primary last after a hand-over to an in-sync
    /// replica (a Cluster shard by shard), never two at once; journaled
    /// (annotation valkey.logbook.dev/restart-requested). The same
    /// request again does nothing.
    Restart {
        /// The ValkeyCluster.
        name: String,
        /// Wait until every pod restarted and the cluster is Ready.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits: `5m`, `90s`, or seconds.
        #[arg(long, default_value = "10m", value_parser = parse_duration, requires = "wait")]
        timeout: Duration,
    },
    /// Write a mutual-TLS client certificate and key for a ValkeyUser.
    ///
    /// Signed by the cluster's own CA (the operator's, Secret
    /// <name>-tls-ca), CN = the ACL user; the cluster needs spec.tls
    /// enabled with clientAuth. The user still signs in with AUTH.
    Certificate {
        /// The ValkeyCluster.
        name: String,
        /// The ValkeyUser (its object name) whose ACL user it is for.
        #[arg(long, value_name = "VALKEYUSER")]
        user: String,
        /// Where to write `<user>.crt`, `<user>.key` (mode 0600) and
        /// `ca.crt`; existing files are never overwritten.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out_dir: PathBuf,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = certificate::DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// Stop the operator changing the cluster; it still observes and journals.
    ///
    /// Set spec.paused: the operator observes and journals, and changes
    /// nothing (not even a failover) until resumed.
    Pause {
        /// The ValkeyCluster.
        name: String,
    },
    /// Clear spec.paused: the operator acts on the cluster again.
    Resume {
        /// The ValkeyCluster.
        name: String,
    },
    /// Put the cluster to sleep: no pod runs, the data is kept.
    ///
    /// Set spec.hibernated: every acknowledged write is made durable,
    /// then no pod runs (volumes, Services and Secrets kept) until `wake`.
    Hibernate {
        /// The ValkeyCluster.
        name: String,
    },
    /// Wake a hibernated cluster, with the same primary.
    ///
    /// Clear spec.hibernated: the pods come back as they were (the same
    /// primary; a Cluster's node ids and slots).
    Wake {
        /// The ValkeyCluster.
        name: String,
    },
    /// Move the primaries back to their preferred pods.
    ///
    /// Ask for the primaries to move back to their preferred pods now
    /// (a Replication's `<name>-0`, a Cluster shard's first pod), by
    /// planned hand-overs, whatever spec.placement (annotation
    /// valkey.logbook.dev/rebalance-requested).
    Rebalance {
        /// The ValkeyCluster.
        name: String,
    },
    /// Promote a standby: it stops following its source and takes writes.
    ///
    /// Promote a standby: remove spec.replicateFrom. Its primary stops
    /// following the source and takes writes; the operator journals how
    /// far behind the source it was (`kubectl valkey status` shows it).
    Promote {
        /// The ValkeyCluster.
        name: String,
    },
    /// Release the cluster to run it by hand.
    ///
    /// Unbind the cluster to run it by hand: remove the ownership
    /// annotation valkey.logbook.dev/cr from its StatefulSet. The operator
    /// releases its other objects and decides nothing until `bind`; pods
    /// and data stay as they are.
    Unbind {
        /// The ValkeyCluster.
        name: String,
    },
    /// Give an unbound cluster back to the operator.
    ///
    /// Give the cluster back to the operator: put the ownership annotation
    /// back on its StatefulSet. It takes the cluster over as it now is.
    Bind {
        /// The ValkeyCluster.
        name: String,
    },
    /// Run a replay verb on the cluster's journal.
    ///
    /// Run a replay verb (verify, timeline, failovers, reshards, state,
    /// audit, export) on the cluster's ConfigMap journal, e.g.
    /// `kubectl valkey replay cache audit`.
    Replay {
        /// The ValkeyCluster (or a deleted one whose journal was kept).
        name: String,
        /// The verb.
        verb: String,
        /// The verb's arguments (`--json`, `--at 120`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The operator's recent decisions, from the journal.
    ///
    /// The operator's recent decisions from the journal: each intent, its
    /// reason and its outcome (Kubernetes Events expire; the journal
    /// keeps them).
    Events {
        /// The ValkeyCluster.
        name: String,
        /// How many decisions.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The cluster's spec as its defaults give it, field by field.
    ///
    /// The cluster's spec as its defaults give it: each field the
    /// operator's valkey-operator-defaults, its namespace's, its plan or
    /// its own spec set, and which; a plan or defaults that cannot be
    /// used, and a change of the defaults waiting for its turn.
    Defaults {
        /// The ValkeyCluster.
        name: String,
        /// The namespace the operator runs in (its valkey-operator-defaults
        /// reaches every cluster).
        #[arg(long, default_value = "logbook-system", value_name = "NAMESPACE")]
        operator_namespace: String,
    },
    /// Write a support bundle (never Secret data).
    ///
    /// Write a support bundle: the cluster, its objects, pod states,
    /// status, decisions, the journal (JSONL) and the operator's last log
    /// lines. Never Secret data.
    Report {
        /// The ValkeyCluster.
        name: String,
        /// A `.tar.gz`/`.tgz` file, or a directory to create (default:
        /// `valkey-report-<name>-<time>.tar.gz`).
        #[arg(short = 'o', long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// The namespace the operator runs in (its pods' logs).
        #[arg(long, default_value = "logbook-system", value_name = "NAMESPACE")]
        operator_namespace: String,
        /// Lines of each operator pod's log.
        #[arg(long, default_value_t = 500)]
        log_lines: i64,
    },
}

/// `90s`, `2m`, `500ms`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (text.get(..i).unwrap_or(""), text.get(i..).unwrap_or("")),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 2m, 500ms)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        other => Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h)")),
    }
}

/// Pulls kubectl's connection flags out of a replay verb's arguments
/// (after the verb everything is the verb's, so clap does not see them).
fn take_flags(args: Vec<String>, cli: &mut Cli) -> Result<Vec<String>> {
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let slot = match key.as_str() {
            "-n" | "--namespace" => 0,
            "--context" => 1,
            "--kubeconfig" => 2,
            _ => {
                rest.push(arg);
                continue;
            }
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| PluginError::Usage(format!("{key} needs a value")))?,
        };
        match slot {
            0 => cli.namespace = Some(value),
            1 => cli.context = Some(value),
            _ => cli.kubeconfig = Some(PathBuf::from(value)),
        }
    }
    Ok(rest)
}

/// Runs a parsed command line, writing its output to `out`.
///
/// # Errors
/// [`PluginError`]; [`PluginError::exit_code`] is the process's exit code.
pub async fn run(mut cli: Cli, out: &mut dyn Write) -> Result<()> {
    // A replay verb's arguments may carry kubectl's flags too.
    let replay = match &mut cli.command {
        Command::Replay { args, .. } => Some(std::mem::take(args)),
        _ => None,
    };
    let replay_args = match replay {
        Some(args) => Some(take_flags(args, &mut cli)?),
        None => None,
    };
    let flags = Flags {
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.context.clone(),
        namespace: cli.namespace.clone(),
    };
    let kube = Kube::connect(&flags).await?;
    match cli.command {
        Command::Status { name } => status::run(&kube, name.as_deref(), out).await,
        Command::Backup {
            name,
            wait,
            timeout,
        } => backup::run(&kube, &name, wait.then_some(timeout), out).await,
        Command::Logs {
            name,
            operator,
            operator_namespace,
            since,
            tail,
            follow,
        } => {
            let args = logs::LogsArgs {
                operator,
                operator_namespace,
                since,
                tail,
                follow,
            };
            logs::run(&kube, &name, &args, out).await
        }
        Command::Cli { name, pod, args } => {
            cli::run(&kube, &flags, &name, &cli::CliArgs { pod, args }, out).await
        }
        Command::Defaults {
            name,
            operator_namespace,
        } => defaults::run(&kube, &name, &operator_namespace, out).await,
        Command::Switchover { name, to, wait } => {
            let wait = requests::Wait {
                wait: wait.wait,
                timeout: wait.timeout,
            };
            requests::switchover(&kube, &name, to.as_deref(), wait, out).await
        }
        Command::Failover { name, yes, wait } => {
            let wait = requests::Wait {
                wait: wait.wait,
                timeout: wait.timeout,
            };
            requests::failover(&kube, &name, yes, wait, out).await
        }
        Command::Restart {
            name,
            wait,
            timeout,
        } => {
            let wait = requests::Wait { wait, timeout };
            restart::run(&kube, &name, wait, out).await
        }
        Command::Certificate {
            name,
            user,
            out_dir,
            days,
        } => {
            let args = certificate::CertificateArgs {
                user,
                out_dir,
                days,
            };
            certificate::run(&kube, &name, &args, out).await
        }
        Command::Pause { name } => requests::set_paused(&kube, &name, true, out).await,
        Command::Resume { name } => requests::set_paused(&kube, &name, false, out).await,
        Command::Hibernate { name } => requests::set_hibernated(&kube, &name, true, out).await,
        Command::Wake { name } => requests::set_hibernated(&kube, &name, false, out).await,
        Command::Promote { name } => requests::promote(&kube, &name, out).await,
        Command::Rebalance { name } => requests::rebalance(&kube, &name, out).await,
        Command::Unbind { name } => requests::set_bound(&kube, &name, false, out).await,
        Command::Bind { name } => requests::set_bound(&kube, &name, true, out).await,
        Command::Replay { name, verb, .. } => {
            let args = replay_args.unwrap_or_default();
            let parsed = replay::parse(&name, &kube.namespace, &verb, &args)?;
            replay::run(&kube, parsed, out).await
        }
        Command::Events { name, limit } => events::run(&kube, &name, limit, out).await,
        Command::Report {
            name,
            output,
            operator_namespace,
            log_lines,
        } => {
            let args = report::ReportArgs {
                output,
                operator_namespace,
                log_lines,
            };
            report::run(&kube, &name, &args, out).await
        }
    }
}

/// The `kubectl-valkey` process: parses `std::env::args`, runs, prints
/// the error (with its causes) on standard error and exits with its code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version exit 0; invalid usage exits 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(run(cli, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = stdout.flush();
            eprintln!("error: {}", error::chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn durations_read_like_kubectls() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn kubectls_flags_are_read_anywhere_even_after_a_replay_verb() {
        let mut cli = Cli::try_parse_from([
            "kubectl-valkey",
            "replay",
            "cache",
            "audit",
            "--json",
            "-n",
            "prod",
            "--context=east",
        ])
        .unwrap();
        let Command::Replay { args, .. } = &mut cli.command else {
            panic!("not replay")
        };
        let args = std::mem::take(args);
        let rest = take_flags(args, &mut cli).unwrap();
        assert_eq!(rest, vec!["--json".to_owned()]);
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        assert_eq!(cli.context.as_deref(), Some("east"));

        let cli = Cli::try_parse_from(["kubectl-valkey", "status", "--namespace", "prod", "cache"])
            .unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        assert!(matches!(cli.command, Command::Status { name: Some(n) } if n == "cache"));
    }

    #[test]
    fn the_prompt_says_what_is_lost_and_the_safer_way() {
        let prompt = failover_prompt("cache", Some("cache-0"));
        assert!(prompt.contains("LOST"), "{prompt}");
        assert!(
            prompt.contains("kubectl valkey switchover cache"),
            "{prompt}"
        );
        assert!(prompt.ends_with("[y/N] "), "{prompt}");
    }
}
