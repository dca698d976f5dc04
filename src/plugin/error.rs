//! What can go wrong in `kubectl valkey`, each with the context a person
//! needs to act on it (which cluster, which verb on which resource, which
//! API server), and the exit code each maps to.
//!
//! API failures are classified once, in [`PluginError::from_kube`]: a 403
//! names the verb and resource that was forbidden (the user needs RBAC for
//! it), a connection failure names the API server's URL, anything else
//! keeps the server's own message.

use std::path::PathBuf;

/// Exit code: the command did what was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command failed (not found, refused, timed out, aborted,
/// an API or journal error).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the command line is invalid (also when a confirmation is
/// needed but standard input is not a terminal).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the Kubernetes API cannot be reached, or no usable
/// configuration was found.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the API server refused the credentials (401) or the
/// permission (403).
pub const EXIT_FORBIDDEN: u8 = 4;

/// A `kubectl valkey` failure.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The command line is invalid.
    #[error("{0}")]
    Usage(String),
    /// No usable Kubernetes configuration (kubeconfig unreadable, unknown
    /// context, no configuration at all).
    #[error("cannot load the Kubernetes configuration: {0}")]
    Config(String),
    /// The API server did not answer (connection refused, DNS, TLS,
    /// timeout).
    #[error("cannot reach the Kubernetes API at {url}: {detail}")]
    Unreachable {
        /// The API server's URL from the kubeconfig.
        url: String,
        /// The client's error chain.
        detail: String,
    },
    /// The API server refused the request for lack of permission (403).
    #[error(
        "forbidden: cannot {verb} {resource} in namespace {namespace:?}; you need RBAC permission to {verb} {resource} there (ask your cluster admin for a Role granting it); the API server said: {message}"
    )]
    Forbidden {
        /// The verb refused (`get`, `list`, `patch`, ...).
        verb: String,
        /// The resource (`valkeyclusters.valkey.logbook.dev`, `pods/log`, ...).
        resource: String,
        /// The namespace.
        namespace: String,
        /// The server's message.
        message: String,
    },
    /// The API server did not accept the credentials (401).
    #[error(
        "unauthorized: the Kubernetes API at {url} did not accept your credentials (check the kubeconfig's user); the API server said: {message}"
    )]
    Unauthorized {
        /// The API server's URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The ValkeyCluster does not exist.
    #[error("valkeycluster {name:?} not found in namespace {namespace:?}")]
    ClusterNotFound {
        /// The name asked for.
        name: String,
        /// The namespace looked in.
        namespace: String,
    },
    /// Any other API answer than success.
    #[error("{what}: the API server answered {code} {reason}: {message}")]
    Api {
        /// What was being done, with the object's name.
        what: String,
        /// HTTP status code.
        code: u16,
        /// The status reason (`Conflict`, `Invalid`, ...).
        reason: String,
        /// The server's message.
        message: String,
    },
    /// A client-side failure of an API call that is neither an answer nor
    /// a connection failure (a response that does not decode).
    #[error("{what}: {source}")]
    Client {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The request makes no sense for this cluster (a pod that is not one
    /// of its data pods, already the primary, a topology without replicas),
    /// or the operator refused it.
    #[error("{0}")]
    Refused(String),
    /// `--wait` ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// The person declined at the confirmation prompt.
    #[error("aborted: nothing was changed")]
    Aborted,
    /// The cluster's ConfigMap journal could not be read.
    #[error("the journal of valkeycluster {cluster}: {detail}")]
    Journal {
        /// `namespace/name`.
        cluster: String,
        /// What failed, with a hint.
        detail: String,
    },
    /// A local file or terminal operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: String,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Writing to standard output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// A `replay` verb failed; its exit code is replay's (1 findings, 2
    /// unreadable input).
    #[error(transparent)]
    Replay(#[from] crate::cli_error::Error),
}

/// `pub type Result` in the kube-runtime style.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

impl PluginError {
    /// The process exit code (see the `EXIT_*` constants).
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Config(_) | Self::Unreachable { .. } => EXIT_UNREACHABLE,
            Self::Forbidden { .. } | Self::Unauthorized { .. } => EXIT_FORBIDDEN,
            Self::Replay(e) => e.exit_code(),
            Self::ClusterNotFound { .. }
            | Self::Api { .. }
            | Self::Client { .. }
            | Self::Refused(_)
            | Self::Timeout(_)
            | Self::Aborted
            | Self::Journal { .. }
            | Self::Io { .. }
            | Self::Output(_) => EXIT_FAILED,
        }
    }

    /// Classifies a failed API call: `verb` on `resource` in `namespace`,
    /// against the API server at `url`; `what` names it for other errors.
    #[must_use]
    pub fn from_kube(call: &Call<'_>, err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => match status.code {
                403 => Self::Forbidden {
                    verb: call.verb.to_owned(),
                    resource: call.resource.to_owned(),
                    namespace: call.namespace.to_owned(),
                    message: status.message.clone(),
                },
                401 => Self::Unauthorized {
                    url: call.url.to_owned(),
                    message: status.message.clone(),
                },
                code => Self::Api {
                    what: call.what(),
                    code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                },
            },
            err @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => Self::Unreachable {
                url: call.url.to_owned(),
                detail: chain(&err),
            },
            source => Self::Client {
                what: call.what(),
                source,
            },
        }
    }
}

/// One API call, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The RBAC verb (`get`, `list`, `patch`).
    pub verb: &'a str,
    /// The RBAC resource (`pods`, `pods/log`, `valkeyclusters.valkey.logbook.dev`).
    pub resource: &'a str,
    /// The namespace.
    pub namespace: &'a str,
    /// The object's name, when the call is about one.
    pub name: Option<&'a str>,
    /// The API server's URL.
    pub url: &'a str,
}

impl Call<'_> {
    fn what(&self) -> String {
        match self.name {
            Some(name) => format!(
                "{} {} {name:?} in namespace {:?}",
                self.verb, self.resource, self.namespace
            ),
            None => format!(
                "{} {} in namespace {:?}",
                self.verb, self.resource, self.namespace
            ),
        }
    }
}

/// An error and its causes on one line.
#[must_use]
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their cause's message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn call() -> Call<'static> {
        Call {
            verb: "patch",
            resource: "valkeyclusters.valkey.logbook.dev",
            namespace: "prod",
            name: Some("cache"),
            url: "https://10.0.0.1:6443/",
        }
    }

    fn status(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.to_owned(),
            message: message.to_owned(),
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn a_403_names_the_verb_the_resource_and_rbac_and_keeps_the_servers_message() {
        let err = PluginError::from_kube(
            &call(),
            status(403, "Forbidden", "user \"bob\" cannot patch"),
        );
        let text = err.to_string();
        assert!(
            text.contains("cannot patch valkeyclusters.valkey.logbook.dev in namespace \"prod\""),
            "{text}"
        );
        assert!(text.contains("RBAC"), "{text}");
        assert!(text.contains("user \"bob\" cannot patch"), "{text}");
        assert_eq!(err.exit_code(), EXIT_FORBIDDEN);
    }

    #[test]
    fn other_answers_keep_code_reason_and_message() {
        let err =
            PluginError::from_kube(&call(), status(409, "Conflict", "the object was modified"));
        assert_eq!(
            err.to_string(),
            "patch valkeyclusters.valkey.logbook.dev \"cache\" in namespace \"prod\": the API server answered 409 Conflict: the object was modified"
        );
        assert_eq!(err.exit_code(), EXIT_FAILED);
    }
}
