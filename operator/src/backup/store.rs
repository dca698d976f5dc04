//! The S3 bucket backups live in: one client (object_store's `AmazonS3`)
//! per target, the object operations the backup and restore paths need,
//! and the classification of failures into what a user can act on (the
//! endpoint cannot be reached, the credentials are refused, the bucket does
//! not exist, the object is not there).
//!
//! Large objects are written with a streaming multipart upload that holds
//! at most [`PART_SIZE`] buffered plus one part in flight, never the whole
//! object. This module must not choose keys or formats (the callers do)
//! and never formats a credential: the secret key and the session token
//! are redacted in `Debug` and appear in no error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::effects::{Class, Effects};

/// The size of each part of a multipart upload, and the size above which
/// an upload becomes multipart. S3 takes at most 10,000 parts, so an
/// object may reach 80 GiB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts uploading while the next one fills: with [`PART_SIZE`], at most
/// 16 MiB of an upload is held in memory.
const PARTS_IN_FLIGHT: usize = 1;

pub use logbook_core::backup_target::{S3Credentials, S3Target};

/// One object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
}

/// What a finished [`Upload`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReceipt {
    /// Bytes written.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of them.
    pub sha256: String,
}

/// Why an operation on the bucket failed. Every message names the bucket
/// and, where there is one, the key; none holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The target cannot make a client (a malformed endpoint URL).
    #[error("S3 bucket {bucket}: the target cannot be used: {detail}")]
    Config {
        /// The bucket.
        bucket: String,
        /// What object_store said of it.
        detail: String,
    },
    /// A key that is not a valid object path (an empty segment, `..`).
    #[error("S3 bucket {bucket}: {key:?} is not a valid object key: {detail}")]
    BadKey {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No object at the key.
    #[error("S3 bucket {bucket}: object {key} not found")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The server's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The bucket does not exist.
    #[error("S3 bucket {bucket} does not exist ({op} {key})")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The operation.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The server's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The credentials were refused: unknown key, bad signature, expired
    /// token.
    #[error("S3 bucket {bucket}: the credentials were refused ({code}) on {op} {key}")]
    CredentialsRefused {
        /// The bucket.
        bucket: String,
        /// The operation.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The server's error code (`InvalidAccessKeyId`, ...).
        code: String,
        /// The server's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The credentials are valid but not allowed the operation.
    #[error("S3 bucket {bucket}: access denied to {op} {key}")]
    AccessDenied {
        /// The bucket.
        bucket: String,
        /// The operation.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The server's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The endpoint did not answer (refused, unresolvable, timed out),
    /// after retries.
    #[error("S3 bucket {bucket}: cannot reach the endpoint {endpoint} ({op} {key}): {detail}")]
    Unreachable {
        /// The bucket.
        bucket: String,
        /// The endpoint tried.
        endpoint: String,
        /// The operation.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The innermost error's text.
        detail: String,
        /// The client's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A fault the effect gate injected (`crate::effects`; tests only).
    #[error("S3 bucket {bucket}: {op} {key} failed: {detail}")]
    Injected {
        /// The bucket.
        bucket: String,
        /// The operation.
        op: &'static str,
        /// The key.
        key: String,
        /// The injected fault, as the gate describes it.
        detail: String,
    },
    /// Any other failure.
    #[error("S3 bucket {bucket}: {op} {key} failed: {source}")]
    Failed {
        /// The bucket.
        bucket: String,
        /// The operation.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The client's error.
        #[source]
        source: Box<object_store::Error>,
    },
}

impl StoreError {
    /// Trying again unchanged may succeed: the endpoint was unreachable or
    /// the failure was not classified. A missing object or bucket, refused
    /// credentials, a denied access and a bad target or key need a change
    /// first.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. }
            | StoreError::Failed { .. }
            | StoreError::Injected { .. } => true,
            StoreError::Config { .. }
            | StoreError::BadKey { .. }
            | StoreError::NotFound { .. }
            | StoreError::NoSuchBucket { .. }
            | StoreError::CredentialsRefused { .. }
            | StoreError::AccessDenied { .. } => false,
        }
    }
}

/// The bucket and endpoint, for error messages.
#[derive(Debug)]
struct Place {
    bucket: String,
    endpoint: String,
}

impl Place {
    fn bad_key(&self, key: &str, err: &object_store::path::Error) -> StoreError {
        StoreError::BadKey {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            detail: err.to_string(),
        }
    }

    /// Runs `write`, the effect `op` on `key`, through the effect gate
    /// (`crate::effects`): recorded, and failed or lost when a plan says.
    async fn gated<T>(
        &self,
        effects: &Effects,
        op: &'static str,
        key: &str,
        write: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let injected = |fault: crate::effects::Injected| StoreError::Injected {
            bucket: self.bucket.clone(),
            op,
            key: key.to_owned(),
            detail: fault.to_string(),
        };
        let ticket = effects
            .before(Class::Effect, || format!("{op} s3://{}/{key}", self.bucket))
            .map_err(injected)?;
        let result = write.await;
        Effects::after(ticket).map_err(injected)?;
        result
    }

    /// Classifies a failure of `op` on `key`.
    fn error(&self, op: &'static str, key: &str, source: object_store::Error) -> StoreError {
        let bucket = self.bucket.clone();
        let key = key.to_owned();
        let text = chain_text(&source);
        let refused = REFUSED_CREDENTIALS
            .iter()
            .find(|code| text.contains(**code))
            .map(|code| (*code).to_owned())
            .or_else(|| {
                matches!(source, object_store::Error::Unauthenticated { .. })
                    .then(|| "401 Unauthorized".to_owned())
            });
        let not_found = matches!(source, object_store::Error::NotFound { .. });
        let denied = matches!(source, object_store::Error::PermissionDenied { .. });
        let unreachable = unreachable_detail(&source);
        let source = Box::new(source);
        if text.contains("NoSuchBucket") {
            StoreError::NoSuchBucket {
                bucket,
                op,
                key,
                source,
            }
        } else if let Some(code) = refused {
            StoreError::CredentialsRefused {
                bucket,
                op,
                key,
                code,
                source,
            }
        } else if not_found {
            StoreError::NotFound {
                bucket,
                key,
                source,
            }
        } else if denied {
            StoreError::AccessDenied {
                bucket,
                op,
                key,
                source,
            }
        } else if let Some(detail) = unreachable {
            StoreError::Unreachable {
                bucket,
                endpoint: self.endpoint.clone(),
                op,
                key,
                detail,
                source,
            }
        } else {
            StoreError::Failed {
                bucket,
                op,
                key,
                source,
            }
        }
    }
}

/// S3 error codes that mean the credentials themselves were refused (as
/// opposed to `AccessDenied`: valid credentials, no permission).
const REFUSED_CREDENTIALS: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
];

/// Every message of an error's chain, joined.
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(err) = next {
        text.push_str(": ");
        text.push_str(&err.to_string());
        next = err.source();
    }
    text
}

/// When the chain holds a connection failure or a timeout (no HTTP answer
/// at all), the innermost error's text.
fn unreachable_detail(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut unreachable = false;
    let mut innermost = err.to_string();
    while let Some(err) = next {
        if let Some(http) = err.downcast_ref::<object_store::client::HttpError>() {
            unreachable |= matches!(
                http.kind(),
                object_store::client::HttpErrorKind::Connect
                    | object_store::client::HttpErrorKind::Timeout
            );
        }
        innermost = err.to_string();
        next = err.source();
    }
    unreachable.then_some(innermost)
}

/// A bucket, with the operations backups and restores need.
#[derive(Debug, Clone)]
pub struct BackupStore {
    place: Arc<Place>,
    /// Requests with an overall timeout: everything but downloads.
    store: Arc<AmazonS3>,
    /// Downloads: no overall timeout (a large object takes long), a
    /// timeout on each read instead.
    reader: Arc<AmazonS3>,
    /// The effect gate its writes pass (unarmed but in tests).
    effects: Effects,
}

impl BackupStore {
    /// A client for `target`, signing with `credentials`. Plain HTTP is
    /// allowed only when the endpoint says `http://`.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the target cannot make a client.
    pub fn new(target: &S3Target, credentials: &S3Credentials) -> Result<Self, StoreError> {
        // reqwest is built without a TLS provider of its own: the operator
        // runs on ring. Installing fails only when one is already in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = target
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", target.region));
        let place = Arc::new(Place {
            bucket: target.bucket.clone(),
            endpoint,
        });
        let allow_http = target
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let base = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_secs(5));
        let build = |options: ClientOptions, retry_timeout: Duration| {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&target.bucket)
                .with_region(&target.region)
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key)
                .with_virtual_hosted_style_request(!target.path_style)
                .with_client_options(options)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig::default(),
                    max_retries: 5,
                    retry_timeout,
                });
            if let Some(token) = &credentials.session_token {
                builder = builder.with_token(token);
            }
            if let Some(endpoint) = &target.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            builder.build().map_err(|err| StoreError::Config {
                bucket: target.bucket.clone(),
                detail: err.to_string(),
            })
        };
        let store = build(
            base.clone().with_timeout(Duration::from_secs(120)),
            Duration::from_secs(120),
        )?;
        // A download's retries resume where the body broke off; their
        // budget runs from the start of the download, so it is long.
        let reader = build(
            base.with_timeout_disabled()
                .with_read_timeout(Duration::from_secs(60)),
            Duration::from_secs(3600),
        )?;
        Ok(BackupStore {
            place,
            store: Arc::new(store),
            reader: Arc::new(reader),
            effects: Effects::from_env(),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.place.bucket
    }

    fn path(&self, key: &str) -> Result<Path, StoreError> {
        Path::parse(key).map_err(|err| self.place.bad_key(key, &err))
    }

    /// Writes a small object (a manifest) in one request.
    ///
    /// # Errors
    /// Any [`StoreError`].
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let put = async {
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|err| self.place.error("PUT", key, err))
        };
        self.place.gated(&self.effects, "PUT", key, put).await
    }

    /// Reads a small object (a manifest) whole.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none; any other
    /// [`StoreError`].
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|err| self.place.error("GET", key, err))?;
        result
            .bytes()
            .await
            .map_err(|err| self.place.error("GET", key, err))
    }

    /// The object's metadata, `None` when there is none.
    ///
    /// # Errors
    /// Any [`StoreError`] but [`StoreError::NotFound`]. A missing bucket
    /// reads as a missing object here: a `HEAD` answer has no body to
    /// tell them apart.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(self.place.error("HEAD", key, err)),
        }
    }

    /// Every object under `prefix`, a directory given with its trailing
    /// `/`: `a/b/` lists `a/b/x` and `a/b/c/y`, never `a/b2/x`. `""` lists
    /// the whole bucket.
    ///
    /// # Errors
    /// Any [`StoreError`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let path = self.path(prefix)?;
        let prefix_path = (!path.as_ref().is_empty()).then_some(&path);
        self.store
            .list(prefix_path)
            .map_ok(info)
            .try_collect()
            .await
            .map_err(|err| self.place.error("LIST", prefix, err))
    }

    /// Deletes the object; deleting one that is not there succeeds.
    ///
    /// # Errors
    /// Any [`StoreError`].
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let delete = async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(self.place.error("DELETE", key, err)),
            }
        };
        self.place.gated(&self.effects, "DELETE", key, delete).await
    }

    /// Starts writing `key` piece by piece (see [`Upload`]). Nothing is
    /// visible under `key` before [`Upload::finish`].
    ///
    /// # Errors
    /// [`StoreError::BadKey`].
    pub async fn upload(&self, key: &str) -> Result<Upload, StoreError> {
        let path = self.path(key)?;
        Ok(Upload {
            place: self.place.clone(),
            effects: self.effects.clone(),
            store: self.store.clone(),
            key: key.to_owned(),
            path,
            state: UploadState::Buffer(Vec::new(), 0),
            bytes: 0,
            sha256: Sha256::new(),
        })
    }

    /// Starts reading `key` piece by piece (see [`Download`]).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none; any other
    /// [`StoreError`].
    pub async fn download(&self, key: &str) -> Result<Download, StoreError> {
        let path = self.path(key)?;
        let result = self
            .reader
            .get(&path)
            .await
            .map_err(|err| self.place.error("GET", key, err))?;
        Ok(Download {
            place: self.place.clone(),
            key: key.to_owned(),
            info: info(result.meta.clone()),
            stream: result.into_stream(),
        })
    }
}

fn info(meta: object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: meta.location.to_string(),
        size: meta.size,
        last_modified: meta.last_modified,
    }
}

/// Where an [`Upload`] is.
enum UploadState {
    /// Under [`PART_SIZE`] so far: held, to be sent with one `PUT`.
    Buffer(Vec<Bytes>, usize),
    /// A multipart upload under way, and how much of its current part is
    /// filled (the writer cuts parts at exact multiples of [`PART_SIZE`]).
    Multipart(WriteMultipart, usize),
    /// Finished or aborted.
    Closed,
}

/// An object being written: [`write`](Self::write) pieces, then
/// [`finish`](Self::finish) to make it visible or [`abort`](Self::abort)
/// to leave nothing. An upload dropped unfinished is aborted in the
/// background.
pub struct Upload {
    place: Arc<Place>,
    /// The gate its completion passes.
    effects: Effects,
    store: Arc<AmazonS3>,
    key: String,
    path: Path,
    state: UploadState,
    bytes: u64,
    sha256: Sha256,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("bucket", &self.place.bucket)
            .field("key", &self.key)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// The object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends `data`. Waits while a part is still uploading when this
    /// one would complete the next (bounded memory).
    ///
    /// # Errors
    /// Any [`StoreError`] of starting the multipart upload or of a part;
    /// the upload can then only be aborted.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.sha256.update(&data);
        self.bytes = self
            .bytes
            .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        let state = std::mem::replace(&mut self.state, UploadState::Closed);
        self.state = match state {
            UploadState::Buffer(mut parts, held) => {
                let held = held.saturating_add(data.len());
                parts.push(data);
                if held < PART_SIZE {
                    UploadState::Buffer(parts, held)
                } else {
                    let upload = self
                        .store
                        .put_multipart(&self.path)
                        .await
                        .map_err(|err| self.place.error("multipart PUT", &self.key, err))?;
                    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                    for part in parts {
                        writer.put(part);
                    }
                    UploadState::Multipart(writer, held % PART_SIZE)
                }
            }
            UploadState::Multipart(mut writer, before) => {
                let filled = before.saturating_add(data.len());
                if filled >= PART_SIZE {
                    // This piece completes a part: wait for the one before
                    // to be sent first, so memory stays bounded.
                    if let Err(err) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        self.state = UploadState::Multipart(writer, before);
                        return Err(self.place.error("multipart PUT", &self.key, err));
                    }
                }
                writer.put(data);
                UploadState::Multipart(writer, filled % PART_SIZE)
            }
            UploadState::Closed => {
                return Err(self.closed("write"));
            }
        };
        Ok(())
    }

    /// Completes the object: one `PUT` for a small one, the last part and
    /// the completion for a multipart one.
    ///
    /// # Errors
    /// Any [`StoreError`]; a failed multipart upload is aborted.
    pub async fn finish(mut self) -> Result<UploadReceipt, StoreError> {
        let state = std::mem::replace(&mut self.state, UploadState::Closed);
        if matches!(state, UploadState::Closed) {
            return Err(self.closed("finish"));
        }
        // The moment the object becomes visible: the effect.
        let complete = async {
            match state {
                UploadState::Buffer(parts, _) => {
                    self.store
                        .put(&self.path, parts.into_iter().collect::<PutPayload>())
                        .await
                        .map_err(|err| self.place.error("PUT", &self.key, err))?;
                }
                UploadState::Multipart(writer, _) => {
                    if let Err(err) = writer.finish().await {
                        // A completion the server carried out but whose
                        // answer was lost is retried by the client and then
                        // refused (`NoSuchUpload`), and the abort that
                        // follows is refused the same way: the object is
                        // there, whole. Only that case is taken as done, by
                        // the object's size.
                        let completed = matches!(err, object_store::Error::NotFound { .. })
                            && matches!(
                                self.store.head(&self.path).await,
                                Ok(meta) if meta.size == self.bytes
                            );
                        if !completed {
                            return Err(self.place.error("multipart completion", &self.key, err));
                        }
                        tracing::debug!(key = %self.key, "multipart completion answered NoSuchUpload; the object is there whole");
                    }
                }
                UploadState::Closed => {}
            }
            Ok(())
        };
        self.place
            .gated(&self.effects, "PUT", &self.key, complete)
            .await?;
        let sha256 = std::mem::take(&mut self.sha256).finalize();
        Ok(UploadReceipt {
            bytes: self.bytes,
            sha256: sha256.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// Gives up: nothing is left under the key (the parts uploaded so far
    /// are discarded).
    ///
    /// # Errors
    /// When the server does not take the abort; its parts then expire
    /// with the bucket's lifecycle rule for incomplete uploads.
    pub async fn abort(mut self) -> Result<(), StoreError> {
        match std::mem::replace(&mut self.state, UploadState::Closed) {
            UploadState::Multipart(writer, _) => writer
                .abort()
                .await
                .map_err(|err| self.place.error("multipart abort", &self.key, err)),
            UploadState::Buffer(..) | UploadState::Closed => Ok(()),
        }
    }

    fn closed(&self, op: &'static str) -> StoreError {
        StoreError::Failed {
            bucket: self.place.bucket.clone(),
            op,
            key: self.key.clone(),
            source: Box::new(object_store::Error::Generic {
                store: "S3",
                source: "the upload is already finished or aborted".into(),
            }),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let UploadState::Multipart(writer, _) =
            std::mem::replace(&mut self.state, UploadState::Closed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}

/// An object being read piece by piece.
pub struct Download {
    place: Arc<Place>,
    key: String,
    info: ObjectInfo,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("bucket", &self.place.bucket)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// The object's metadata, from the response's headers.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// The next piece, `None` at the end.
    ///
    /// # Errors
    /// Any [`StoreError`] (the connection broke beyond the retries).
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        self.stream
            .next()
            .await
            .transpose()
            .map_err(|err| self.place.error("GET", &self.key, err))
    }
}
