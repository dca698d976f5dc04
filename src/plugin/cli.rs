//! `kubectl valkey cli <name> [--pod POD] [-- ARGS...]`: `valkey-cli` in a
//! data pod (the primary unless `--pod`), run by `kubectl exec`, with the
//! credentials the pod already holds; interactive when no ARGS are given.
//!
//! No password is ever on a command line: not in the plugin's arguments
//! to kubectl, not in `valkey-cli`'s inside the pod. The Valkey container
//! has the password in its environment (`VALKEY_PASSWORD`, from the
//! password Secret); a `sh -c` script run in the pod hands it to
//! `valkey-cli` through `REDISCLI_AUTH`, which `valkey-cli` reads. The
//! plugin never reads the Secret. On a TLS cluster the script adds
//! `--tls` and the CA (and, when the cluster asks for client
//! certificates, the pod's own certificate and key) mounted in the pod.
//!
//! `kubectl` is the one on `PATH`, or the one `KUBECTL` names.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::Pod;
use logbook_crds::{Topology, ValkeyCluster};

use super::connect::{Flags, Kube};
use super::error::{PluginError, Result};
use crate::resources::{CONTAINER_NAME, PASSWORD_ENV, POD_IP_ENV, TLS_DIR, VALKEY_PORT};

/// What `cli` was asked for.
#[derive(Debug, Clone)]
pub struct CliArgs {
    /// The pod (default: the primary).
    pub pod: Option<String>,
    /// `valkey-cli`'s arguments (none: interactive).
    pub args: Vec<String>,
}

/// How `valkey-cli` reaches the server in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// TLS on the Valkey port.
    pub tls: bool,
    /// The server asks clients for a certificate.
    pub client_auth: bool,
    /// A Valkey Cluster: follow `MOVED`/`ASK` redirections (`-c`).
    pub cluster: bool,
}

impl Connection {
    /// How to reach a pod of `cluster`.
    #[must_use]
    pub fn of(cluster: &ValkeyCluster) -> Self {
        Self {
            tls: cluster.spec.tls.enabled,
            client_auth: cluster.spec.tls.enabled && cluster.spec.tls.client_auth,
            cluster: cluster.spec.topology == Topology::Cluster,
        }
    }
}

/// The script run in the pod by `sh -c`: `REDISCLI_AUTH` from the
/// container's password variable, `valkey-cli` (else a Redis image's
/// `redis-cli`) at the pod's own address, with TLS as `conn` says, and the
/// arguments after the script (`"$@"`).
#[must_use]
pub fn pod_script(conn: Connection) -> String {
    let mut flags = vec![
        "--no-auth-warning".to_owned(),
        "-h".to_owned(),
        format!("\"${{{POD_IP_ENV}:-127.0.0.1}}\""),
        "-p".to_owned(),
        VALKEY_PORT.to_string(),
    ];
    if conn.tls {
        flags.push("--tls".to_owned());
        flags.push(format!("--cacert {TLS_DIR}/ca.crt"));
        if conn.client_auth {
            flags.push(format!("--cert {TLS_DIR}/tls.crt --key {TLS_DIR}/tls.key"));
        }
    }
    if conn.cluster {
        flags.push("-c".to_owned());
    }
    format!(
        "[ -n \"${{{PASSWORD_ENV}:-}}\" ] && export REDISCLI_AUTH=\"${PASSWORD_ENV}\"\n\
         cli=valkey-cli\n\
         command -v valkey-cli >/dev/null 2>&1 || cli=redis-cli\n\
         exec \"$cli\" {} \"$@\"\n",
        flags.join(" ")
    )
}

/// kubectl's arguments: the connection flags, then `exec` into `pod`'s
/// Valkey container running [`pod_script`] with `args`. `-i` (and `-t`
/// when `tty`) for an interactive session (no `args`), or when standard
/// input is not a terminal (`echo PING | kubectl valkey cli demo`).
#[must_use]
pub fn kubectl_args(
    flags: &Flags,
    namespace: &str,
    pod: &str,
    conn: Connection,
    args: &[String],
    stdin_is_terminal: bool,
) -> Vec<String> {
    let mut argv = Vec::new();
    if let Some(path) = &flags.kubeconfig {
        argv.push("--kubeconfig".to_owned());
        argv.push(path.display().to_string());
    }
    if let Some(context) = &flags.context {
        argv.push("--context".to_owned());
        argv.push(context.clone());
    }
    argv.extend(["--namespace".to_owned(), namespace.to_owned()]);
    argv.push("exec".to_owned());
    if args.is_empty() || !stdin_is_terminal {
        argv.push("-i".to_owned());
    }
    if args.is_empty() && stdin_is_terminal {
        argv.push("-t".to_owned());
    }
    argv.extend([
        pod.to_owned(),
        "-c".to_owned(),
        CONTAINER_NAME.to_owned(),
        "--".to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        pod_script(conn),
        "valkey-cli".to_owned(),
    ]);
    argv.extend(args.iter().cloned());
    argv
}

/// The pod to run in: `asked`, which must be a data pod of the cluster,
/// else its primary (a Cluster's first shard's).
///
/// # Errors
/// [`PluginError::Refused`] for a pod that is not one of the cluster's
/// data pods, or when no primary is known.
pub fn target(cluster: &ValkeyCluster, pods: &[Pod], asked: Option<&str>) -> Result<String> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    if let Some(asked) = asked {
        if names.iter().any(|n| n == asked) {
            return Ok(asked.to_owned());
        }
        return Err(PluginError::Refused(format!(
            "pod {asked:?} is not a data pod of valkeycluster {name:?} (its pods: {})",
            if names.is_empty() {
                "none running".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    let status = cluster.status.clone().unwrap_or_default();
    let primary = if cluster.spec.topology == Topology::Cluster {
        status.shards.iter().find_map(|s| s.primary.clone())
    } else {
        status.primary
    };
    match primary {
        Some(p) if names.contains(&p) => Ok(p),
        Some(p) => Err(PluginError::Refused(format!(
            "the primary of valkeycluster {name:?}, {p}, has no pod running now; name another with --pod"
        ))),
        None => Err(PluginError::Refused(format!(
            "valkeycluster {name:?} has no primary known yet; name a pod with --pod"
        ))),
    }
}

/// Runs `cli`: `kubectl exec` with this process's standard input and
/// output; kubectl's standard error is passed on and read for why exec
/// failed.
///
/// # Errors
/// [`PluginError::ClusterNotFound`]; [`PluginError::Refused`] for a bad
/// pod, an exec the API server refused, or `valkey-cli` failing;
/// [`PluginError::Forbidden`] when RBAC refuses `pods/exec`.
pub async fn run(
    kube: &Kube,
    flags: &Flags,
    name: &str,
    args: &CliArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    let pods = kube.data_pods(name).await?;
    let pod = target(&cluster, &pods, args.pod.as_deref())?;
    let argv = kubectl_args(
        flags,
        &kube.namespace,
        &pod,
        Connection::of(&cluster),
        &args.args,
        std::io::stdin().is_terminal(),
    );
    out.flush()?;
    let kubectl = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut child = Command::new(&kubectl)
        .args(&argv)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PluginError::Io {
            what: "cannot run kubectl (put it on PATH, or name it with KUBECTL)".to_owned(),
            path: kubectl.clone().into(),
            source,
        })?;
    // kubectl's own errors and the remote command's standard error, passed
    // on as they come; the last lines kept to tell why it failed.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut kept: Vec<String> = Vec::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                // kubectl's own failures are said once, in the plugin's
                // error; the command's standard error is passed on.
                if !kubectls_own(&line) {
                    eprintln!("{line}");
                }
                kept.push(line);
                if kept.len() > 20 {
                    kept.remove(0);
                }
            }
        }
        kept
    });
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .map_err(|e| PluginError::Refused(format!("waiting for kubectl: {e}")))?
        .map_err(|source| PluginError::Io {
            what: "waiting for kubectl".to_owned(),
            path: kubectl.into(),
            source,
        })?;
    let said = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(exec_failure(
        &kube.namespace,
        &kube.url,
        &pod,
        status.code(),
        &said,
    ))
}

/// Whether a line of kubectl's standard error is kubectl's own (an error
/// of the exec call, or the remote command's exit code), not the
/// command's.
fn kubectls_own(line: &str) -> bool {
    line.starts_with("error: ")
        || line.starts_with("Error from server")
        || line.starts_with("command terminated with exit code ")
}

/// Why `kubectl exec` failed, from its exit code and its last lines.
#[must_use]
pub fn exec_failure(
    namespace: &str,
    url: &str,
    pod: &str,
    code: Option<i32>,
    said: &[String],
) -> PluginError {
    // The command ran and failed: kubectl says with what code.
    if let Some(remote) = said
        .iter()
        .rev()
        .find_map(|l| l.split("command terminated with exit code ").nth(1))
    {
        return PluginError::Refused(format!(
            "valkey-cli in pod {pod} exited with code {}",
            remote.trim()
        ));
    }
    let last = said
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("kubectl exited with code {}", code.unwrap_or(-1)));
    let lower = last.to_lowercase();
    if lower.contains("forbidden") {
        return PluginError::Forbidden {
            verb: "create".to_owned(),
            resource: "pods/exec".to_owned(),
            namespace: namespace.to_owned(),
            message: last,
        };
    }
    PluginError::Refused(format!(
        "the API server at {url} refused exec into pod {pod}: {last} (`kubectl valkey cli` runs `kubectl exec`: it needs an API server and kubelet that serve pods/exec, which localkube does not)"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn plain() -> Connection {
        Connection {
            tls: false,
            client_auth: false,
            cluster: false,
        }
    }

    #[test]
    fn the_password_goes_by_rediscli_auth_from_the_pods_environment() {
        let script = pod_script(plain());
        assert!(
            script.contains("export REDISCLI_AUTH=\"$VALKEY_PASSWORD\""),
            "{script}"
        );
        assert!(
            script.contains(
                "exec \"$cli\" --no-auth-warning -h \"${POD_IP:-127.0.0.1}\" -p 6379 \"$@\""
            ),
            "{script}"
        );
        assert!(
            !script.contains("--tls") && !script.contains(" -c "),
            "{script}"
        );
        assert!(!script.contains(" -a "), "{script}");
    }

    #[test]
    fn tls_and_cluster_add_their_flags() {
        let script = pod_script(Connection {
            tls: true,
            client_auth: true,
            cluster: true,
        });
        assert!(
            script.contains(
                "--tls --cacert /etc/valkey-tls/ca.crt --cert /etc/valkey-tls/tls.crt --key /etc/valkey-tls/tls.key -c \"$@\""
            ),
            "{script}"
        );
        let server_only = pod_script(Connection {
            tls: true,
            client_auth: false,
            cluster: false,
        });
        assert!(
            server_only.contains("--tls --cacert /etc/valkey-tls/ca.crt \"$@\""),
            "{server_only}"
        );
    }

    #[test]
    fn kubectl_gets_the_connection_flags_the_pod_and_the_arguments() {
        let flags = Flags {
            kubeconfig: Some("/k/config".into()),
            context: Some("east".to_owned()),
            namespace: None,
        };
        let args = vec!["SET".to_owned(), "k".to_owned(), "v".to_owned()];
        let argv = kubectl_args(&flags, "prod", "cache-1", plain(), &args, true);
        assert_eq!(
            argv[..7],
            [
                "--kubeconfig",
                "/k/config",
                "--context",
                "east",
                "--namespace",
                "prod",
                "exec"
            ]
        );
        assert_eq!(argv[7..13], ["cache-1", "-c", "valkey", "--", "sh", "-c"]);
        assert_eq!(argv[14..], ["valkey-cli", "SET", "k", "v"]);
        // Interactive: -i -t on a terminal, -i alone on a pipe.
        let shell = kubectl_args(&Flags::default(), "prod", "cache-1", plain(), &[], true);
        assert_eq!(shell[2..5], ["exec", "-i", "-t"]);
        let piped = kubectl_args(&Flags::default(), "prod", "cache-1", plain(), &[], false);
        assert_eq!(piped[2..5], ["exec", "-i", "cache-1"]);
    }

    #[test]
    fn no_secret_variable_is_expanded_outside_the_pod() {
        // The script is one argument, single-quoted by nothing: kubectl
        // hands it to the pod as is, so `$VALKEY_PASSWORD` is only ever
        // expanded by the pod's shell.
        let argv = kubectl_args(&Flags::default(), "ns", "p-0", plain(), &[], false);
        let script = argv.iter().find(|a| a.contains("REDISCLI_AUTH")).unwrap();
        assert!(script.contains("$VALKEY_PASSWORD"));
        assert_eq!(argv.iter().filter(|a| a.contains("PASSWORD")).count(), 1);
    }

    #[test]
    fn the_arguments_after_the_double_dash_are_valkey_clis() {
        use clap::Parser;
        let cli = super::super::Cli::try_parse_from([
            "kubectl-valkey",
            "cli",
            "cache",
            "-n",
            "prod",
            "--pod",
            "cache-2",
            "--",
            "SET",
            "-n",
            "--pod",
        ])
        .unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        let super::super::Command::Cli { name, pod, args } = cli.command else {
            panic!("not cli")
        };
        assert_eq!(name, "cache");
        assert_eq!(pod.as_deref(), Some("cache-2"));
        assert_eq!(args, ["SET", "-n", "--pod"]);
        // Without `--`, a stray word is refused, not taken for valkey-cli.
        assert!(
            super::super::Cli::try_parse_from(["kubectl-valkey", "cli", "cache", "GET"]).is_err()
        );
    }

    #[test]
    fn exec_failures_are_told_apart() {
        let refused = exec_failure(
            "default",
            "http://127.0.0.1:1/",
            "demo-0",
            Some(1),
            &[
                "error: unable to upgrade connection: localkube does not support pods/exec"
                    .to_owned(),
            ],
        );
        let text = refused.to_string();
        assert!(text.contains("refused exec into pod demo-0"), "{text}");
        assert!(
            text.contains("localkube does not support pods/exec"),
            "{text}"
        );
        assert_eq!(refused.exit_code(), super::super::error::EXIT_FAILED);
        let forbidden = exec_failure(
            "default",
            "u",
            "demo-0",
            Some(1),
            &["Error from server (Forbidden): pods \"demo-0\" is forbidden: cannot create resource \"pods/exec\"".to_owned()],
        );
        assert_eq!(forbidden.exit_code(), super::super::error::EXIT_FORBIDDEN);
        let remote = exec_failure(
            "default",
            "u",
            "demo-0",
            Some(1),
            &["command terminated with exit code 1".to_owned()],
        );
        assert_eq!(
            remote.to_string(),
            "valkey-cli in pod demo-0 exited with code 1"
        );
    }
}
