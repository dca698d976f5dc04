//! `kubectl valkey replay <name> <verb> [args...]`: `logbook replay <verb>
//! --namespace <ns> --cluster <name>` through the plugin's client (so
//! `--context` and the kubeconfig apply), on the same code path
//! ([`crate::replay_cli::run_with_client`]); exit codes are replay's: 0
//! clean, 1 findings, 2 unreadable input.

use std::io::Write;

use clap::Parser;

use super::connect::Kube;
use super::error::{PluginError, Result};
use crate::replay_cli::ReplayCommand;

/// The replay verbs, parsed as `logbook replay` parses them.
#[derive(Debug, Parser)]
#[command(name = "kubectl valkey replay <name>", no_binary_name = false)]
struct Verb {
    #[command(subcommand)]
    command: ReplayCommand,
}

/// Flags the plugin sets itself: the journal is the named cluster's.
const SOURCE_FLAGS: [&str; 6] = [
    "--namespace",
    "--cluster",
    "--kubeconfig",
    "--dir",
    "--file",
    "--stream",
];

/// Parses `verb args...` into a replay command on the cluster's ConfigMap
/// journal in the namespace.
///
/// # Errors
/// [`PluginError::Usage`] for a source flag or an invalid verb; help and
/// version requests come back as [`ParsedVerb::Help`].
pub fn parse(name: &str, namespace: &str, verb: &str, args: &[String]) -> Result<ParsedVerb> {
    if let Some(flag) = args.iter().find(|a| {
        SOURCE_FLAGS
            .iter()
            .any(|f| a.as_str() == *f || a.starts_with(&format!("{f}=")))
    }) {
        return Err(PluginError::Usage(format!(
            "{flag}: `kubectl valkey replay` reads the ConfigMap journal of the cluster it names; use `logbook replay` for other sources"
        )));
    }
    let mut argv: Vec<String> = vec!["kubectl valkey replay".to_owned(), verb.to_owned()];
    argv.extend(args.iter().cloned());
    let asks_help = args.iter().any(|a| a == "--help" || a == "-h");
    if !asks_help {
        argv.extend([
            "--namespace".to_owned(),
            namespace.to_owned(),
            "--cluster".to_owned(),
            name.to_owned(),
        ]);
    }
    match Verb::try_parse_from(argv) {
        Ok(verb) => Ok(ParsedVerb::Run(verb.command)),
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Ok(ParsedVerb::Help(err.render().to_string()))
            }
            _ => Err(PluginError::Usage(
                err.render().to_string().trim_end().to_owned(),
            )),
        },
    }
}

/// A parsed replay verb, or the help it asked for.
#[derive(Debug)]
pub enum ParsedVerb {
    /// Run this.
    Run(ReplayCommand),
    /// Print this and exit 0.
    Help(String),
}

/// Runs the verb.
///
/// # Errors
/// [`PluginError::Replay`], whose exit code is replay's.
pub async fn run(kube: &Kube, parsed: ParsedVerb, out: &mut dyn Write) -> Result<()> {
    match parsed {
        ParsedVerb::Help(text) => {
            out.write_all(text.as_bytes())?;
            Ok(())
        }
        ParsedVerb::Run(command) => {
            crate::replay_cli::run_with_client(command, Some(kube.client.clone()), out).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_cluster_and_namespace_are_the_plugins() {
        let ParsedVerb::Run(ReplayCommand::Audit { source, json }) =
            parse("cache", "prod", "audit", &["--json".to_owned()]).unwrap()
        else {
            panic!("not an audit")
        };
        assert!(json);
        assert_eq!(source.namespace.as_deref(), Some("prod"));
        assert_eq!(source.cluster.as_deref(), Some("cache"));
        let err = parse(
            "cache",
            "prod",
            "audit",
            &["--file".to_owned(), "x".to_owned()],
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::Usage(_)), "{err}");
        assert!(matches!(
            parse("cache", "prod", "nonsense", &[]).unwrap_err(),
            PluginError::Usage(_)
        ));
        assert!(matches!(
            parse("cache", "prod", "audit", &["--help".to_owned()]).unwrap(),
            ParsedVerb::Help(_)
        ));
    }
}
