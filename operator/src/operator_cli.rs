//! `logbook operator`: runs the operator against the ambient kubeconfig
//! (or `--kubeconfig`, or in-cluster config) until Ctrl-C or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli_error::{Error, Result};
use crate::journal_store::JournalBackend;
use crate::kube_client::client;
use crate::operator::{self, OperatorConfig};
use crate::signals::stop_signal;

/// `logbook operator` options.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The kubeconfig to use (default: `KUBECONFIG`, `~/.kube/config`, or
    /// the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: every namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where journals live: `configmap` (in each cluster's namespace; they
    /// survive the operator's pod), `sled` (a local directory) or `both`
    /// (ConfigMaps, plus a full local history in sled).
    #[arg(long, default_value = "configmap")]
    pub journal: JournalBackend,
    /// The local journal directory (`sled` and `both`).
    #[arg(long, default_value = ".logbook/journal")]
    pub journal_dir: PathBuf,
    /// The namespace of the leader-election Lease and of the operator's
    /// own journal (default: `$POD_NAMESPACE`, else `default`).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// The leader-election Lease's name.
    #[arg(long, default_value = crate::leader::DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// Seconds the Lease is valid without renewal.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_seconds: u64,
    /// Milliseconds between renewals (and acquisition attempts).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub renew_milliseconds: u64,
    /// Shortest interval between two journal writes of observations per
    /// cluster, in milliseconds (default: 1000 for ConfigMaps, 0 for sled).
    /// Decisions are always written at once.
    #[arg(long)]
    pub group_commit_milliseconds: Option<u64>,
    /// Serve `/healthz` (liveness, never waits on the API server) and
    /// `/readyz` (leading, and every journal trusted) here, e.g.
    /// `0.0.0.0:8081` (default: not served).
    #[arg(long)]
    pub health_addr: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at `/metrics` here, e.g. `0.0.0.0:8080`
    /// (default: not served; the same address as `--health-addr` serves
    /// both). See docs/metrics.md.
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Serve the web UI here, e.g. `0.0.0.0:8900` (default: not served;
    /// docs/ui.md). Read-only; each reader signs in with a bearer token.
    #[arg(long)]
    pub ui_addr: Option<std::net::SocketAddr>,
    /// Who may read the UI: `reviews` (whoever presents a token the API
    /// server knows, shown the ValkeyClusters it may `get`; the operator
    /// needs the ClusterRole system:auth-delegator) or `none` (anyone who
    /// reaches the address sees every cluster: only for an address no one
    /// else reaches).
    #[arg(long, value_enum, default_value = "reviews")]
    pub ui_auth: crate::ui::UiAuth,
    /// This instance's name in the journal (default: `$POD_NAME`, else the
    /// host name).
    #[arg(long)]
    pub instance: Option<String>,
    /// Serve the webhooks here (HTTPS), e.g. `0.0.0.0:9443`: the CRDs'
    /// conversion (`/convert`) and the validating webhook over the objects
    /// the operator makes (`/validate`, asked when a configuration names
    /// it) (default: not served; docs/operator.md, "The validating
    /// webhook"). With `--namespace`, stored objects are not migrated.
    #[arg(long)]
    pub webhook_addr: Option<std::net::SocketAddr>,
    /// The names the webhook's certificate covers, comma-separated: its
    /// Service's `<name>.<namespace>.svc`, or the address of a `url`
    /// client configuration.
    #[arg(long, value_delimiter = ',')]
    pub webhook_names: Vec<String>,
    /// The Secret, in the operator's namespace, holding the webhook's CA
    /// and certificate (made by the operator when absent).
    #[arg(long, default_value = "logbook-webhook-tls")]
    pub webhook_secret: String,
    /// The ValidatingWebhookConfiguration whose `caBundle` the operator
    /// fills with its CA (empty: left alone, e.g. for cert-manager's CA
    /// injector).
    #[arg(long, default_value = "")]
    pub webhook_configuration: String,
    /// The CustomResourceDefinitions whose conversion webhook's
    /// `caBundle` the operator fills with its CA, comma-separated (the
    /// ValkeyCluster CRD once it converts between v1alpha1 and v1beta1;
    /// default none).
    #[arg(long, value_delimiter = ',')]
    pub webhook_conversion_crds: Vec<String>,
    /// The operator's identity, whose changes the webhook lets through
    /// (default: `system:serviceaccount:$POD_NAMESPACE:$SERVICE_ACCOUNT`).
    #[arg(long)]
    pub webhook_operator_user: Option<String>,
}

/// This process's identity.
pub fn instance_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "logbook".to_owned())
}

/// Runs `logbook operator` until stopped.
///
/// # Errors
/// Configuration, journal or runtime errors.
pub fn run(args: OperatorArgs, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(crate::operator::THREAD_STACK_BYTES)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let lease_namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let mut config = OperatorConfig::new(
            args.journal,
            args.journal_dir.clone(),
            instance_name(args.instance.clone()),
            &lease_namespace,
        );
        config.namespace = args.namespace.clone();
        config.lease.name = args.lease_name.clone();
        config.lease.lease_duration = Duration::from_secs(args.lease_seconds);
        config.lease.renew_every = Duration::from_millis(args.renew_milliseconds);
        config.group_commit = args.group_commit_milliseconds.map(Duration::from_millis);
        config.health_addr = args.health_addr;
        config.metrics_addr = args.metrics_addr;
        config.ui_addr = args.ui_addr;
        config.ui_auth = args.ui_auth;
        if let Some(addr) = args.webhook_addr {
            let operator_user = args
                .webhook_operator_user
                .clone()
                .or_else(|| {
                    let sa = std::env::var("SERVICE_ACCOUNT").ok()?;
                    Some(format!("system:serviceaccount:{lease_namespace}:{sa}"))
                })
                .ok_or_else(|| {
                    Error::Usage(
                        "--webhook-addr needs --webhook-operator-user (or $SERVICE_ACCOUNT): the identity whose changes the webhook lets through".to_owned(),
                    )
                })?;
            if args.webhook_names.is_empty() {
                return Err(Error::Usage(
                    "--webhook-addr needs --webhook-names: the names its certificate covers".to_owned(),
                ));
            }
            config.webhook = Some(crate::webhook::WebhookConfig {
                addr,
                namespace: lease_namespace.clone(),
                secret: args.webhook_secret.clone(),
                names: args.webhook_names.clone(),
                configuration: (!args.webhook_configuration.is_empty())
                    .then(|| args.webhook_configuration.clone()),
                conversion_crds: args.webhook_conversion_crds.clone(),
                migrate: args.namespace.is_none(),
                operator_user,
                renew_every: crate::webhook::RENEW_EVERY,
            });
        }
        let journal = match args.journal {
            JournalBackend::ConfigMap => "ConfigMaps".to_owned(),
            other => format!("{other} at {}", args.journal_dir.display()),
        };
        writeln!(
            out,
            "logbook operator {}: watching {}, journal in {journal}, Lease {lease_namespace}/{}",
            config.instance,
            args.namespace.as_deref().unwrap_or("every namespace"),
            args.lease_name,
        )?;
        out.flush()?;
        operator::run(client, config, stop_signal())
            .await
            .map_err(|e| Error::Local(format!("operator: {e}")))
    })
}
