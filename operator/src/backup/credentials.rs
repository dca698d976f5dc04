//! A backup destination made usable: the bucket as journaled
//! ([`BackupTarget`]) plus its Secret's credentials and endpoint, read
//! from the API when a backup, a deletion or a restore needs them.
//!
//! The credentials live in memory only for the transfer; nothing here logs
//! or returns them in an error (errors name the Secret and the key).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use logbook_crds::v1alpha1::{
    ACCESS_KEY_ID_KEY, ENDPOINT_KEY, SECRET_ACCESS_KEY_KEY, SESSION_TOKEN_KEY,
};
use logbook_journal::BackupTarget;

use super::store::{S3Credentials, S3Target};

/// Why a destination's Secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The Secret does not exist.
    #[error(
        "Secret {namespace}/{name} (the backup destination's credentialsSecret) does not exist"
    )]
    Missing {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A key is missing or not text.
    #[error(
        "Secret {namespace}/{name} has no usable key {key}: it must hold {ACCESS_KEY_ID_KEY} and {SECRET_ACCESS_KEY_KEY} (and may hold {SESSION_TOKEN_KEY} and {ENDPOINT_KEY})"
    )]
    Key {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: &'static str,
    },
    /// The endpoint in the Secret is not an http(s) URL.
    #[error("Secret {namespace}/{name} key {ENDPOINT_KEY} is not an http:// or https:// URL")]
    Endpoint {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The API refused the read.
    #[error("reading Secret {namespace}/{name}: {source}")]
    Kube {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl CredentialsError {
    /// Whether trying again later may succeed (an API error).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Kube { .. })
    }
}

pub use logbook_core::backup_target::target_of;

/// Reads `target`'s Secret in `namespace`: the S3 target (the endpoint
/// from the spec, else the Secret's `endpoint`; path style as the spec
/// says, else whenever there is an endpoint) and the credentials.
///
/// # Errors
/// [`CredentialsError`], naming the Secret and key.
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    target: &BackupTarget,
) -> Result<(S3Target, S3Credentials), CredentialsError> {
    let name = target.secret.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|source| CredentialsError::Kube {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })?
        .ok_or_else(|| CredentialsError::Missing {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let text = |key: &'static str| -> Option<String> {
        let data = secret.data.as_ref()?;
        let value = data.get(key)?;
        String::from_utf8(value.0.clone())
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let required = |key: &'static str| {
        text(key).ok_or_else(|| CredentialsError::Key {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key,
        })
    };
    let credentials = S3Credentials {
        access_key_id: required(ACCESS_KEY_ID_KEY)?,
        secret_access_key: required(SECRET_ACCESS_KEY_KEY)?,
        session_token: text(SESSION_TOKEN_KEY),
    };
    let endpoint = match &target.endpoint {
        Some(e) => Some(e.clone()),
        None => match text(ENDPOINT_KEY) {
            Some(e) if e.starts_with("http://") || e.starts_with("https://") => Some(e),
            Some(_) => {
                return Err(CredentialsError::Endpoint {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                });
            }
            None => None,
        },
    };
    let s3 = S3Target {
        bucket: target.bucket.clone(),
        region: target.region.clone(),
        path_style: target.path_style.unwrap_or(endpoint.is_some()),
        endpoint,
    };
    Ok((s3, credentials))
}
