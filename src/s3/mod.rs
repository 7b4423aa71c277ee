//! The S3 client: a bundle (or cache) on S3-compatible object storage, such as Ceph RGW,
//! MinIO or AWS S3.
//!
//! Built on the `object_store` crate (Apache Arrow's), not the AWS SDK: it has what a content
//! store needs (SigV4, multipart upload with abort, ranged GET, server-side copy, conditional
//! put with `If-None-Match: *`, path-style addressing for custom endpoints, retries with
//! backoff) on the reqwest 0.13 / rustls / aws-lc-rs stack ferry already builds, so it adds
//! little compile time on a small machine; `aws-sdk-s3` brings its own HTTP and credential
//! stack (smithy runtime, a second hyper client) and compiles several times longer. What
//! `object_store` lacks, AWS profiles (`AWS_PROFILE`, `~/.aws/credentials`, `~/.aws/config`),
//! is read here ([`config`]), so credentials resolve as the AWS CLI resolves them and errors
//! can say where the access key id came from.
//!
//! Every request runs on one runtime of this module's own ([`spawn`]): the async methods can
//! be awaited from any runtime, and the synchronous bridge ([`wait`], [`ObjectReader`],
//! [`ObjectWriter`]) serves the synchronous `Layout` from any thread, a tokio worker included,
//! without `block_on` inside a runtime. Secrets are never printed: [`config::Secret`] shows
//! `***`, and errors name the access key id and its source, never the secret.

pub mod config;
mod io;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

pub use config::{CredentialSource, S3Config, S3Location, S3Options, is_s3};
pub use io::{ObjectReader, ObjectWriter};

/// Errors of the S3 client; each names the object (`s3://bucket/key`) and the next step.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// Text that starts with `s3://` but is not a valid location.
    #[error("{location}: not a valid S3 location: {reason}; write s3://BUCKET/PREFIX")]
    BadLocation {
        /// The text given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Configuration (credentials, profile, endpoint, CA file) that cannot be used.
    #[error("S3 configuration: {0}")]
    Config(String),
    /// The store refused the credentials or the operation.
    #[error("{0}")]
    Denied(Box<Denied>),
    /// The object is not there.
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The bucket is not there.
    #[error(
        "bucket {bucket} does not exist at {endpoint}; create it (`aws s3 mb s3://{bucket}`) or fix the location"
    )]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
    },
    /// A conditional put found the object already there.
    #[error("s3://{bucket}/{key} already exists")]
    Exists {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// Any other failure of a request (after the client's retries).
    #[error(
        "s3://{bucket}/{key}: {operation} failed at {endpoint}: {detail}; check that the endpoint answers (`--s3-endpoint`, AWS_ENDPOINT_URL) and try again"
    )]
    Request {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What was tried.
        operation: &'static str,
        /// The endpoint.
        endpoint: String,
        /// The client's message.
        detail: String,
    },
    /// Data read from the store was not what was asked for.
    #[error("s3://{bucket}/{key}: {detail}")]
    Corrupt {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What was wrong.
        detail: String,
    },
}

/// A refusal: the object, the operation, and whose credentials (never the secret).
#[derive(Debug, thiserror::Error)]
#[error(
    "s3://{bucket}/{key}: {operation} refused ({detail}) for access key id {access_key_id} from {source_desc}; check that key id and its secret there, and that it may {operation} in bucket {bucket} at {endpoint}"
)]
pub struct Denied {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// What was tried (`read`, `write`, `list`, `delete`, `copy`).
    pub operation: &'static str,
    /// The access key id (never the secret).
    pub access_key_id: String,
    /// Where the credentials came from.
    pub source_desc: String,
    /// The endpoint.
    pub endpoint: String,
    /// The store's error code, when it sent one.
    pub detail: String,
}

impl S3Error {
    /// Whether the error says the object (or the bucket) is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::NotFound { .. })
    }
}

impl From<S3Error> for std::io::Error {
    fn from(e: S3Error) -> std::io::Error {
        let kind = match &e {
            S3Error::NotFound { .. } | S3Error::NoSuchBucket { .. } => std::io::ErrorKind::NotFound,
            S3Error::Denied(_) => std::io::ErrorKind::PermissionDenied,
            S3Error::Exists { .. } => std::io::ErrorKind::AlreadyExists,
            S3Error::Corrupt { .. } => std::io::ErrorKind::InvalidData,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

static DEFAULT_OPTIONS: OnceLock<S3Options> = OnceLock::new();

/// Sets the command line's S3 options (`--s3-endpoint`, `--s3-ca-file`) for every store the
/// process opens; the first call wins.
pub fn set_default_options(options: S3Options) {
    let _ = DEFAULT_OPTIONS.set(options);
}

/// The command line's S3 options (none when not set).
pub fn default_options() -> S3Options {
    DEFAULT_OPTIONS.get().cloned().unwrap_or_default()
}

/// The runtime every S3 request runs on: two worker threads, never shut down (a runtime may not
/// be dropped inside another's context, and connections stay pooled for the whole run).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ferry-s3")
            .enable_all()
            .build()
            .expect("the S3 runtime starts")
    })
}

/// Runs `future` on the S3 runtime; the handle may be awaited from any runtime.
pub fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = runtime().spawn(future);
    async move {
        match handle.await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("S3 task cancelled: {e}"),
        }
    }
}

/// Runs `future` on the S3 runtime and waits for it on this thread: the synchronous bridge.
/// Callable from any thread, tokio workers included (it parks the thread on a channel rather
/// than entering a runtime), but never from a task of the S3 runtime itself.
pub fn wait<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    match rx.recv() {
        Ok(output) => output,
        Err(_) => {
            // The task ended without sending: it panicked; say so here.
            let joined = wait_join(task);
            panic!("S3 task failed: {joined}")
        }
    }
}

fn wait_join(task: tokio::task::JoinHandle<()>) -> String {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(match task.await {
            Ok(()) => "ended".to_string(),
            Err(e) => e.to_string(),
        });
    });
    rx.recv().unwrap_or_default()
}

/// An object's listing entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key, relative to the store's prefix.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A bucket and prefix with a client for them. Cheap to clone (shared client).
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: AmazonS3,
    location: S3Location,
    config: S3Config,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's Debug redacts the secret; the client's is not shown at all.
        f.debug_struct("S3Store")
            .field("location", &self.inner.location)
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Default size of a multipart upload's parts and of a ranged read's chunks.
pub const PART_SIZE: usize = 8 << 20;

impl S3Store {
    /// A store for `location`, configured from the environment and `options`.
    pub fn open(location: S3Location, options: &S3Options) -> Result<S3Store, S3Error> {
        S3Store::with_config(location, S3Config::from_env(options)?)
    }

    /// A store for `location` with a resolved configuration.
    pub fn with_config(location: S3Location, config: S3Config) -> Result<S3Store, S3Error> {
        // `--timeout` and `--retries`, as for registries: how long the store may stay silent
        // (connecting, before its answer, between two reads of a body) and how many times a
        // failed request is tried again.
        let patience = crate::retry::patience();
        let mut client_options = ClientOptions::new()
            .with_connect_timeout(patience.connect_timeout())
            .with_timeout_disabled()
            .with_read_timeout(patience.timeout);
        for ca in &config.ca_files {
            let pem = std::fs::read(ca)
                .map_err(|e| S3Error::Config(format!("--ca-file {}: {e}", ca.display())))?;
            let certificates = object_store::Certificate::from_pem_bundle(&pem).map_err(|e| {
                S3Error::Config(format!(
                    "--ca-file {}: not PEM certificates ({e}); give the CA certificate in PEM",
                    ca.display()
                ))
            })?;
            for certificate in certificates {
                client_options = client_options.with_root_certificate(certificate);
            }
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(&config.region)
            .with_client_options(client_options)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                max_retries: patience.attempts.saturating_sub(1) as usize,
                retry_timeout: Duration::from_secs(120).max(patience.timeout * patience.attempts),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            // Custom endpoints (RGW, MinIO) are addressed path-style: no wildcard DNS needed.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        match &config.credentials {
            Some(c) => {
                builder = builder
                    .with_access_key_id(&c.access_key_id)
                    .with_secret_access_key(c.secret_access_key.expose());
                if let Some(token) = &c.session_token {
                    builder = builder.with_token(token.expose());
                }
            }
            None => {
                // Web identity or container credentials: the client reads their variables.
                for (key, value) in std::env::vars().filter(|(k, _)| {
                    k.starts_with("AWS_WEB_IDENTITY")
                        || k.starts_with("AWS_ROLE")
                        || k.starts_with("AWS_CONTAINER")
                }) {
                    if let Ok(key) = key.to_ascii_lowercase().parse() {
                        builder = builder.with_config(key, value);
                    }
                }
            }
        }
        let client = builder.build().map_err(|e| {
            S3Error::Config(format!(
                "{location}: cannot set up the client: {}",
                redact(&e.to_string(), &config)
            ))
        })?;
        Ok(S3Store {
            inner: Arc::new(Inner {
                client,
                location,
                config,
            }),
        })
    }

    /// The bucket and prefix.
    pub fn location(&self) -> &S3Location {
        &self.inner.location
    }

    /// The resolved configuration (secrets redacted in Debug).
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    /// The full key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        self.inner.location.key(name)
    }

    /// `s3://bucket/key` of `name`, for messages.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.inner.location.bucket, self.key(name))
    }

    fn path(&self, name: &str) -> ObjectPath {
        ObjectPath::from_iter(self.key(name).split('/'))
    }

    /// Turns a client error into one naming the object and the next step.
    fn error(&self, operation: &'static str, name: &str, e: object_store::Error) -> S3Error {
        let bucket = self.inner.location.bucket.clone();
        let key = self.key(name);
        let config = &self.inner.config;
        let text = redact(&e.to_string(), config);
        let code = error_code(&text);
        match e {
            _ if code.as_deref() == Some("NoSuchBucket") => S3Error::NoSuchBucket {
                bucket,
                endpoint: config.describe_endpoint(),
            },
            object_store::Error::NotFound { .. } => S3Error::NotFound { bucket, key },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => S3Error::Exists { bucket, key },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => S3Error::Denied(Box::new(Denied {
                bucket,
                key,
                operation,
                access_key_id: config.access_key_id().to_string(),
                source_desc: config.source.to_string(),
                endpoint: config.describe_endpoint(),
                detail: code.unwrap_or_else(|| "HTTP 403".to_string()),
            })),
            _ => S3Error::Request {
                bucket,
                key,
                operation,
                endpoint: config.describe_endpoint(),
                detail: match timed_out(&e) {
                    true => {
                        let patience = crate::retry::patience();
                        format!(
                            "{text} (no answer within --timeout {} on each of {} attempts; raise --timeout or --retries for a slow store)",
                            patience.timeout_text(),
                            patience.attempts
                        )
                    }
                    false => text,
                },
            },
        }
    }

    /// The size of `name`, or None when there is no such object.
    pub fn head(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<u64>, S3Error>> + Send + 'static {
        let (this, name) = (self.clone(), name.to_string());
        spawn(async move {
            match this.inner.client.head(&this.path(&name)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(e @ object_store::Error::NotFound { .. }) if !no_such_bucket(&e) => Ok(None),
                Err(e) => Err(this.error("read", &name, e)),
            }
        })
    }

    /// Bytes `start..end` of `name` (one ranged GET).
    pub fn get_range(
        &self,
        name: &str,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, S3Error>> + Send + 'static {
        let (this, name) = (self.clone(), name.to_string());
        spawn(async move {
            let bytes = this
                .inner
                .client
                .get_range(&this.path(&name), start..end)
                .await
                .map_err(|e| this.error("read", &name, e))?;
            if bytes.len() as u64 != end - start {
                return Err(S3Error::Corrupt {
                    bucket: this.inner.location.bucket.clone(),
                    key: this.key(&name),
                    detail: format!(
                        "asked for bytes {start}..{end}, got {} bytes; the object changed or is shorter than expected",
                        bytes.len()
                    ),
                });
            }
            Ok(bytes.to_vec())
        })
    }

    /// The whole of `name`, or None when there is no such object (small objects: documents).
    pub fn get(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, S3Error>> + Send + 'static {
        let (this, name) = (self.clone(), name.to_string());
        spawn(async move {
            let result = match this.inner.client.get(&this.path(&name)).await {
                Ok(r) => r,
                Err(e @ object_store::Error::NotFound { .. }) if !no_such_bucket(&e) => {
                    return Ok(None);
                }
                Err(e) => return Err(this.error("read", &name, e)),
            };
            let mut stream = result.into_stream();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.map_err(|e| this.error("read", &name, e))?);
            }
            Ok(Some(bytes))
        })
    }

    /// Writes `name` whole (one PUT; atomic: readers see the old object or the new).
    pub fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), S3Error>> + Send + 'static {
        self.put_mode(name, bytes, PutMode::Overwrite)
    }

    /// Writes `name` only if there is no object under it (`If-None-Match: *`);
    /// [`S3Error::Exists`] when there is one. Two writers racing: exactly one wins.
    pub fn put_if_absent(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), S3Error>> + Send + 'static {
        self.put_mode(name, bytes, PutMode::Create)
    }

    fn put_mode(
        &self,
        name: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> impl Future<Output = Result<(), S3Error>> + Send + 'static {
        let (this, name) = (self.clone(), name.to_string());
        spawn(async move {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            this.inner
                .client
                .put_opts(&this.path(&name), PutPayload::from(bytes), options)
                .await
                .map(|_| ())
                .map_err(|e| this.error("write", &name, e))
        })
    }

    /// Copies `from` to `to` inside the bucket, server-side (no bytes through ferry).
    pub fn copy(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), S3Error>> + Send + 'static {
        let (this, from, to) = (self.clone(), from.to_string(), to.to_string());
        spawn(async move {
            this.inner
                .client
                .copy(&this.path(&from), &this.path(&to))
                .await
                .map_err(|e| this.error("copy", &from, e))
        })
    }

    /// Deletes `name` (no error when it is absent).
    pub fn delete(&self, name: &str) -> impl Future<Output = Result<(), S3Error>> + Send + 'static {
        let (this, name) = (self.clone(), name.to_string());
        spawn(async move {
            match this.inner.client.delete(&this.path(&name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(this.error("delete", &name, e)),
            }
        })
    }

    /// Every object under `name/` (or the whole prefix for ""), names relative to the store's
    /// prefix, sorted.
    pub fn list(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>, S3Error>> + Send + 'static {
        let (this, name) = (self.clone(), name.to_string());
        spawn(async move {
            let prefix = if name.is_empty() {
                this.inner.location.prefix.clone()
            } else {
                this.key(&name)
            };
            let prefix_path =
                (!prefix.is_empty()).then(|| ObjectPath::from_iter(prefix.split('/')));
            let strip = if this.inner.location.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", this.inner.location.prefix)
            };
            let mut stream = this.inner.client.list(prefix_path.as_ref());
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| this.error("list", &name, e))?;
                let key = meta.location.to_string();
                let name = key.strip_prefix(&strip).unwrap_or(&key).to_string();
                out.push(ObjectInfo {
                    name,
                    size: meta.size,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    /// A streaming writer of `name`: multipart for objects larger than one part, one PUT
    /// otherwise; the object appears only at [`ObjectWriter::complete`], and a writer dropped
    /// or failed before that aborts its upload (no object, no parts kept). `size_hint` (the
    /// expected size, when known) sizes the parts so that large objects stay within S3's
    /// 10,000 parts. Memory stays at about three parts whatever the size.
    pub fn writer(&self, name: &str, size_hint: Option<u64>) -> ObjectWriter {
        ObjectWriter::new(self.clone(), name, size_hint)
    }

    /// A reader of bytes `start..end` of `name` by ranged GETs of [`PART_SIZE`], the next one
    /// fetched while the current one is read.
    pub fn reader(&self, name: &str, start: u64, end: u64) -> ObjectReader {
        ObjectReader::new(self.clone(), name, start, end)
    }

    pub(crate) fn client(&self) -> &AmazonS3 {
        &self.inner.client
    }

    pub(crate) fn object_path(&self, name: &str) -> ObjectPath {
        self.path(name)
    }

    pub(crate) fn map_error(
        &self,
        operation: &'static str,
        name: &str,
        e: object_store::Error,
    ) -> S3Error {
        self.error(operation, name, e)
    }
}

/// Whether a 404 is the bucket's rather than the object's.
/// Whether a client error comes from a timeout (the store stayed silent): its cause chain
/// says so, as the top-level message does not.
fn timed_out(e: &object_store::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        // Not the retry summary's own "retry_timeout: 120s".
        let text = c
            .to_string()
            .to_ascii_lowercase()
            .replace("retry_timeout", "");
        if text.contains("timed out") || text.contains("timeout") {
            return true;
        }
        cause = c.source();
    }
    false
}

fn no_such_bucket(e: &object_store::Error) -> bool {
    error_code(&e.to_string()).as_deref() == Some("NoSuchBucket")
}

/// The S3 error code (`<Code>...</Code>`) in a client message, if any.
fn error_code(text: &str) -> Option<String> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_string())
}

/// Removes the secret and session token from a message, should a client ever echo them.
fn redact(text: &str, config: &S3Config) -> String {
    let mut text = text.to_string();
    if let Some(c) = &config.credentials {
        for secret in [Some(&c.secret_access_key), c.session_token.as_ref()]
            .into_iter()
            .flatten()
        {
            if !secret.expose().is_empty() {
                text = text.replace(secret.expose(), "***");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_redaction() {
        assert_eq!(
            error_code("body: <Error><Code>InvalidAccessKeyId</Code></Error>").as_deref(),
            Some("InvalidAccessKeyId")
        );
        assert_eq!(error_code("no xml"), None);
        let config = S3Config {
            endpoint: None,
            region: "us-east-1".into(),
            credentials: Some(config::StaticCredentials {
                access_key_id: "AK".into(),
                secret_access_key: config::Secret::new("topsecret"),
                session_token: None,
            }),
            source: CredentialSource::Environment,
            ca_files: vec![],
        };
        assert_eq!(redact("x topsecret y", &config), "x *** y");
    }

    #[test]
    fn wait_works_inside_a_runtime() {
        // The bridge parks the calling thread; called from a tokio worker it must not panic.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let n = rt.block_on(async { tokio::task::spawn(async { wait(async { 41 + 1 }) }).await });
        assert_eq!(n.unwrap(), 42);
    }
}
