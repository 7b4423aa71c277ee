//! Pulling from OCI distribution registries: manifests by tag or digest, blobs streamed to the store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{
    BlobResponse, Certificate, CertificateEncoding, ClientConfig, ClientProtocol,
};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::auth::{self, AuthError};
use crate::digest::Digest;
use crate::layout::oci::{MANIFEST_MEDIA_TYPES, sniff_media_type};
use crate::layout::{BlobWriter, Layout, LayoutError, MAX_MANIFEST_SIZE};
use crate::manifest::reference::Reference;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Hosts that may be reached over plain HTTP after HTTPS fails.
    pub insecure: Vec<String>,
    /// Attempts per request before giving up.
    pub attempts: u32,
    /// First retry delay; doubles each time.
    pub backoff: Duration,
}

impl RegistryOptions {
    /// Defaults for the given CA files and insecure hosts.
    pub fn new(ca_files: Vec<PathBuf>, insecure: Vec<String>) -> Self {
        RegistryOptions {
            ca_files,
            insecure,
            attempts: 5,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Errors talking to a registry; each names the registry or reference and the next step.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made.
    #[error(
        "cannot reach registry {host}: {reason}. Check the host name and port, the network, and --ca-file / --insecure-registry"
    )]
    Unreachable {
        /// The registry.
        host: String,
        /// Why.
        reason: String,
    },
    /// Credentials missing or refused.
    #[error(
        "registry {host} refused access to {reference} (unauthorized). Log in with `ferry login {host}` or `docker login {host}`, or check the credentials in the auth file"
    )]
    Unauthorized {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
    },
    /// The reference does not exist.
    #[error(
        "{reference} was not found on {host}: {message}. Check the repository name and tag in the manifest"
    )]
    NotFound {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
        /// The registry's words.
        message: String,
    },
    /// The registry answered with an error, after retries where that makes sense.
    #[error("registry {host} failed for {reference}: {message}")]
    Failed {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
        /// What happened.
        message: String,
    },
    /// The content did not match its digest.
    #[error(
        "{reference}: the registry sent content for {expected} that hashes to {actual}. Nothing was stored; try again, and report it to the registry's operators if it persists"
    )]
    DigestMismatch {
        /// What was asked for.
        reference: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest received.
        actual: Digest,
    },
    /// A CA file could not be read.
    #[error("cannot read CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The auth file or a credential helper failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A manifest or index fetched from a registry.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes the registry sent.
    pub bytes: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// The media type (from the document, or the response).
    pub media_type: String,
}

/// A connection to the registries a manifest or lock names.
pub struct RegistrySource {
    client: oci_client::Client,
    auths: BTreeMap<String, RegistryAuth>,
    options: RegistryOptions,
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RegistrySource {
    /// Prepares access to `hosts`: trust roots, credentials, and HTTPS or plain HTTP per host.
    ///
    /// Plain HTTP is used only for loopback hosts and hosts named insecure, and only after
    /// HTTPS failed to connect, as Docker does.
    pub async fn connect(
        hosts: &BTreeSet<String>,
        options: RegistryOptions,
    ) -> Result<RegistrySource, RegistryError> {
        let mut certs = Vec::new();
        for path in &options.ca_files {
            let data = std::fs::read(path).map_err(|e| RegistryError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            reqwest::Certificate::from_pem(&data).map_err(|e| RegistryError::CaFile {
                path: path.clone(),
                reason: format!("not a PEM certificate: {e}"),
            })?;
            certs.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let mut plain_http = Vec::new();
        for host in hosts {
            let may_use_http = is_loopback(host) || options.insecure.iter().any(|h| h == host);
            if may_use_http && probe_scheme(host, &certs).await? == "http" {
                plain_http.push(host.clone());
            }
        }
        let mut auths = BTreeMap::new();
        for host in hosts {
            let auth = match auth::lookup(host)? {
                Some(c) => RegistryAuth::Basic(c.username, c.password),
                None => RegistryAuth::Anonymous,
            };
            auths.insert(host.clone(), auth);
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain_http),
            extra_root_certificates: certs,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("ferry/", env!("CARGO_PKG_VERSION")),
            platform_resolver: None,
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| RegistryError::Failed {
            host: hosts.iter().cloned().collect::<Vec<_>>().join(", "),
            reference: String::new(),
            message: format!("cannot set up the HTTP client: {e}"),
        })?;
        Ok(RegistrySource {
            client,
            auths,
            options,
        })
    }

    fn auth(&self, host: &str) -> RegistryAuth {
        self.auths
            .get(host)
            .cloned()
            .unwrap_or(RegistryAuth::Anonymous)
    }

    /// Fetches a manifest or index by the reference's digest, else its tag; checks the digest.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let image = to_oci(reference);
        let host = reference.registry().to_string();
        let auth = self.auth(&host);
        let what = reference.to_string();
        let (bytes, _) = self
            .retry(&host, &what, || {
                self.client
                    .pull_manifest_raw(&image, &auth, MANIFEST_MEDIA_TYPES)
            })
            .await?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::Failed {
                host,
                reference: what,
                message: format!("manifest of {} bytes is larger than 4 MiB", bytes.len()),
            });
        }
        let digest = Digest::of_bytes(&bytes);
        if let Some(expected) = reference.digest()
            && expected != digest.as_str()
        {
            return Err(RegistryError::DigestMismatch {
                reference: what,
                expected: Digest::parse(expected).map_err(|e| RegistryError::Failed {
                    host: host.clone(),
                    reference: reference.to_string(),
                    message: e.to_string(),
                })?,
                actual: digest,
            });
        }
        let media_type = sniff_media_type(&bytes).ok_or_else(|| RegistryError::Failed {
            host: host.clone(),
            reference: what.clone(),
            message: "the manifest is neither an OCI/Docker schema 2 manifest nor an index (Docker schema 1 images are not supported: rebuild or re-push the image)".to_string(),
        })?;
        Ok(FetchedManifest {
            bytes: bytes.to_vec(),
            digest,
            media_type,
        })
    }

    /// Fetches a small blob (an image config) into memory, checking its digest.
    pub async fn fetch_small_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let image = to_oci(repository);
        let host = repository.registry().to_string();
        let what = format!("{}@{}", repository.name(), digest);
        self.client
            .store_auth_if_needed(image.resolve_registry(), &self.auth(&host))
            .await;
        let buf = self
            .retry(&host, &what, || async {
                let mut out = Vec::new();
                self.client
                    .pull_blob(&image, digest.as_str(), &mut out)
                    .await?;
                Ok(out)
            })
            .await?;
        let actual = Digest::of_bytes(&buf);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                reference: what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(buf)
    }

    /// Streams a blob into the store, resuming from a partial file and after dropped connections.
    ///
    /// `on_bytes` is called with every chunk's length; returns the blob's size.
    pub async fn fetch_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        layout: &Layout,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, RegistryError> {
        let image = to_oci(repository);
        let host = repository.registry().to_string();
        let what = format!("{}@{}", repository.name(), digest);
        self.client
            .store_auth_if_needed(image.resolve_registry(), &self.auth(&host))
            .await;
        let mut writer = layout.blob_writer(digest)?;
        on_bytes(writer.written());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .stream_blob_once(&image, digest, size, &mut writer, on_bytes)
                .await
            {
                Ok(()) => break,
                Err(StreamFailure::Fatal(e)) => return Err(e),
                Err(StreamFailure::Retry(message)) if attempt >= self.options.attempts => {
                    return Err(RegistryError::Failed {
                        host,
                        reference: what,
                        message: format!(
                            "{message} (gave up after {attempt} attempts; run the same command again to resume)"
                        ),
                    });
                }
                Err(StreamFailure::Retry(message)) => {
                    tracing::warn!(blob = %what, attempt, "{message}; retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
        }
        match writer.commit() {
            Ok(n) => Ok(n),
            Err(LayoutError::DigestMismatch {
                expected, actual, ..
            }) => Err(RegistryError::DigestMismatch {
                reference: what,
                expected,
                actual,
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn stream_blob_once(
        &self,
        image: &oci_client::Reference,
        digest: &Digest,
        size: u64,
        writer: &mut BlobWriter,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StreamFailure> {
        let offset = writer.written();
        if offset >= size && size > 0 {
            return Ok(());
        }
        let host = image.registry().to_string();
        let what = format!("{}@{}", image.repository(), digest);
        let classify = |e: OciDistributionError| classify(&host, &what, e);
        let mut stream = if offset == 0 {
            self.client
                .pull_blob_stream(image, digest.as_str())
                .await
                .map_err(classify)?
        } else {
            match self
                .client
                .pull_blob_stream_partial(image, digest.as_str(), offset, None)
                .await
                .map_err(classify)?
            {
                BlobResponse::Partial(s) => s,
                BlobResponse::Full(s) => {
                    // The server ignored the range: start over.
                    writer
                        .restart()
                        .map_err(|e| StreamFailure::Fatal(e.into()))?;
                    s
                }
            }
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                StreamFailure::Retry(format!("connection dropped while reading {what}: {e}"))
            })?;
            if writer.written() + chunk.len() as u64 > size {
                writer
                    .restart()
                    .map_err(|e| StreamFailure::Fatal(e.into()))?;
                return Err(StreamFailure::Retry(format!(
                    "{what}: the registry sent more than the {size} bytes the manifest promises"
                )));
            }
            writer
                .write_all(&chunk)
                .map_err(|e| StreamFailure::Fatal(e.into()))?;
            on_bytes(chunk.len() as u64);
        }
        if writer.written() != size {
            return Err(StreamFailure::Retry(format!(
                "{what}: the stream ended after {} of {size} bytes",
                writer.written()
            )));
        }
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.options.backoff * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
    }

    /// Runs a request, retrying transient failures with exponential backoff.
    async fn retry<T, F, Fut>(&self, host: &str, what: &str, mut op: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match classify(host, what, e) {
                    StreamFailure::Fatal(e) => return Err(e),
                    StreamFailure::Retry(message) if attempt >= self.options.attempts => {
                        return Err(if message.starts_with("connect:") {
                            RegistryError::Unreachable {
                                host: host.to_string(),
                                reason: message.trim_start_matches("connect: ").to_string(),
                            }
                        } else {
                            RegistryError::Failed {
                                host: host.to_string(),
                                reference: what.to_string(),
                                message: format!("{message} (gave up after {attempt} attempts)"),
                            }
                        });
                    }
                    StreamFailure::Retry(message) => {
                        tracing::warn!(reference = what, attempt, "{message}; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                },
            }
        }
    }
}

enum StreamFailure {
    Retry(String),
    Fatal(RegistryError),
}

/// Sorts a client error into transient (retry) or final, with a message for people.
fn classify(host: &str, what: &str, error: OciDistributionError) -> StreamFailure {
    let fatal = |message: String| {
        StreamFailure::Fatal(RegistryError::Failed {
            host: host.to_string(),
            reference: what.to_string(),
            message,
        })
    };
    match error {
        OciDistributionError::RequestError(e) => {
            if e.is_connect() {
                StreamFailure::Retry(format!("connect: {}", error_chain(&e)))
            } else {
                StreamFailure::Retry(error_chain(&e))
            }
        }
        OciDistributionError::IoError(e) => StreamFailure::Retry(e.to_string()),
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => StreamFailure::Fatal(RegistryError::Unauthorized {
                host: host.to_string(),
                reference: what.to_string(),
            }),
            404 => StreamFailure::Fatal(RegistryError::NotFound {
                host: host.to_string(),
                reference: what.to_string(),
                message: trim(&message),
            }),
            408 | 429 | 500..=599 => {
                StreamFailure::Retry(format!("HTTP {code}: {}", trim(&message)))
            }
            _ => fatal(format!("HTTP {code}: {}", trim(&message))),
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            StreamFailure::Fatal(RegistryError::Unauthorized {
                host: host.to_string(),
                reference: what.to_string(),
            })
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let message = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                StreamFailure::Retry(message)
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                StreamFailure::Fatal(RegistryError::Unauthorized {
                    host: host.to_string(),
                    reference: what.to_string(),
                })
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                StreamFailure::Fatal(RegistryError::NotFound {
                    host: host.to_string(),
                    reference: what.to_string(),
                    message,
                })
            } else {
                fatal(message)
            }
        }
        other => fatal(other.to_string()),
    }
}

fn trim(message: &str) -> String {
    let m = message.trim();
    if m.len() > 300 {
        {
            let mut end = 300;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &m[..end])
        }
    } else {
        m.to_string()
    }
}

/// An error and its causes, since reqwest hides the useful part (refused, TLS) in the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Decides between HTTPS and plain HTTP for a loopback or insecure host.
async fn probe_scheme(host: &str, certs: &[Certificate]) -> Result<&'static str, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15));
    for c in certs {
        if let Ok(cert) = reqwest::Certificate::from_pem(&c.data) {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| RegistryError::Unreachable {
        host: host.to_string(),
        reason: e.to_string(),
    })?;
    let https_error = match client.get(format!("https://{host}/v2/")).send().await {
        Ok(_) => return Ok("https"),
        Err(e) => error_chain(&e),
    };
    // Only a registry's own answer to /v2/ (200, or 401 asking for credentials) counts: a TLS
    // server answering plain HTTP with 400 means HTTPS is right and its certificate is the issue.
    let mut answer = client.get(format!("http://{host}/v2/")).send().await;
    for attempt in 1..4u32 {
        match &answer {
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                tokio::time::sleep(Duration::from_millis(250) * attempt).await;
                answer = client.get(format!("http://{host}/v2/")).send().await;
            }
            _ => break,
        }
    }
    match answer {
        Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::UNAUTHORIZED => {
            Ok("http")
        }
        Ok(r) => Err(RegistryError::Unreachable {
            host: host.to_string(),
            reason: format!(
                "HTTPS: {https_error}; plain HTTP answered {} (not a registry over HTTP)",
                r.status()
            ),
        }),
        Err(e) => Err(RegistryError::Unreachable {
            host: host.to_string(),
            reason: format!("HTTPS: {https_error}; HTTP: {}", error_chain(&e)),
        }),
    }
}

/// The oci-client form of a reference; the digest wins over the tag, as in Docker.
pub fn to_oci(reference: &Reference) -> oci_client::Reference {
    match (reference.tag(), reference.digest()) {
        (_, Some(d)) => oci_client::Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            d.to_string(),
        ),
        (Some(t), None) => oci_client::Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            t.to_string(),
        ),
        (None, None) => oci_client::Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            "latest".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.local:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
