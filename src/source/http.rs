//! Plain HTTP(S) downloads (release files, chart archives and repository indexes, apt
//! indexes and packages): streamed into the store with the digest checked, retried on
//! transient failures.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;

use crate::digest::Digest;
use crate::distribution::error_chain;
use crate::layout::{BlobWriter, Layout, LayoutError};

/// Errors of an HTTP download; each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection, or it broke, after retries.
    #[error(
        "cannot download {url}: {reason}. Check the URL and the network (and --ca-file for a private CA)"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server stayed silent longer than the timeout, on every attempt.
    #[error(
        "cannot download {url}: the server sent nothing for {timeout} (the timeout), {attempts} attempts. Check that the server is up and reachable from here; if it is only slow, give it longer with --timeout SECONDS (or FERRY_TIMEOUT) and more attempts with --retries N"
    )]
    TimedOut {
        /// The URL.
        url: String,
        /// The timeout, as text ("60 s").
        timeout: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The server answered with an error status.
    #[error("cannot download {url}: the server answered HTTP {status}{hint}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// What to do.
        hint: &'static str,
    },
    /// The content did not match the digest it was pinned to.
    #[error(
        "{url}: the download hashes to {actual} ({size} bytes) but {expected} was expected; nothing was stored. The file changed upstream or was corrupted on the way: check the pinned checksum"
    )]
    DigestMismatch {
        /// The URL.
        url: String,
        /// The pinned digest.
        expected: Digest,
        /// What arrived.
        actual: Digest,
        /// Its size.
        size: u64,
    },
    /// The content had another size than promised.
    #[error(
        "{url}: received {actual} bytes where {expected} were expected, so the content hashes to something else than pinned; nothing was stored. The file changed upstream: check the pinned checksum, or lock again"
    )]
    SizeMismatch {
        /// The URL.
        url: String,
        /// Promised size.
        expected: u64,
        /// Received size.
        actual: u64,
    },
    /// A small document was larger than allowed.
    #[error("{url}: larger than {limit} bytes, refusing to read it into memory")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A CA file could not be used.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// An HTTP client for downloads, with retries.
#[derive(Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
}

enum Attempt {
    /// Worth another try: why, the server's `Retry-After` (on 429 and 503), and whether the
    /// server stayed silent past the timeout.
    Retry {
        reason: String,
        asked: Option<Duration>,
        timed_out: bool,
    },
    Fatal(HttpError),
}

impl Attempt {
    /// A transient failure of the transfer itself.
    fn broken(e: &reqwest::Error) -> Attempt {
        Attempt::Retry {
            reason: error_chain(e),
            asked: None,
            timed_out: e.is_timeout(),
        }
    }

    /// Another transient failure.
    fn retry(reason: String) -> Attempt {
        Attempt::Retry {
            reason,
            asked: None,
            timed_out: false,
        }
    }
}

impl HttpSource {
    /// A client trusting the system roots plus `ca_files`.
    pub fn new(ca_files: &[PathBuf]) -> Result<HttpSource, HttpError> {
        let patience = crate::retry::patience();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(patience.connect_timeout())
            .read_timeout(patience.timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        for path in ca_files {
            let pem = std::fs::read(path).map_err(|e| HttpError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| HttpError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(|e| HttpError::Unreachable {
            url: String::new(),
            reason: error_chain(&e),
        })?;
        Ok(HttpSource {
            client,
            attempts: patience.attempts,
            backoff: Duration::from_millis(250),
            timeout: patience.timeout,
        })
    }

    /// Sets the retry policy (tests use short delays).
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, Attempt> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| Attempt::broken(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let code = status.as_u16();
        if code == 429 || code == 408 || status.is_server_error() {
            return Err(Attempt::Retry {
                reason: format!("HTTP {status}"),
                asked: crate::retry::honours_retry_after(code)
                    .then(|| crate::retry::retry_after(response.headers()))
                    .flatten(),
                timed_out: false,
            });
        }
        Err(Attempt::Fatal(HttpError::Status {
            url: url.to_string(),
            status: code,
            hint: match code {
                404 => ": not found (check the URL and version in the manifest)",
                401 | 403 => ": access denied",
                _ => "",
            },
        }))
    }

    async fn with_retry<T, F, Fut>(&self, url: &str, mut op: F) -> Result<T, HttpError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry {
                    timed_out: true, ..
                }) if attempt >= self.attempts => {
                    return Err(HttpError::TimedOut {
                        url: url.to_string(),
                        timeout: crate::retry::seconds_text(self.timeout),
                        attempts: attempt,
                    });
                }
                Err(Attempt::Retry { reason, .. }) if attempt >= self.attempts => {
                    return Err(HttpError::Unreachable {
                        url: url.to_string(),
                        reason: format!("{reason} (gave up after {attempt} attempts)"),
                    });
                }
                Err(Attempt::Retry { reason, asked, .. }) => {
                    crate::retry::pause(url, &reason, attempt, self.attempts, self.backoff, asked)
                        .await;
                }
            }
        }
    }

    /// Fetches a small document (an index, a checksum file) into memory, at most `limit` bytes.
    pub async fn fetch_small(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        self.with_retry(url, || async {
            let response = self.get(url).await?;
            if response.content_length().is_some_and(|n| n > limit) {
                return Err(Attempt::Fatal(HttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                }));
            }
            let mut body = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Attempt::broken(&e))?;
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(Attempt::Fatal(HttpError::TooLarge {
                        url: url.to_string(),
                        limit,
                    }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
        .await
    }

    /// Streams a download through a hasher without storing it (the lock learns a file's digest
    /// and size this way); returns both.
    pub async fn fetch_digest(
        &self,
        url: &str,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(Digest, u64), HttpError> {
        use sha2::Digest as _;
        self.with_retry(url, || async {
            let response = self.get(url).await?;
            let promised = response.content_length();
            let mut hasher = sha2::Sha256::new();
            let mut size = 0u64;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Attempt::broken(&e))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                on_bytes(chunk.len() as u64);
            }
            if let Some(promised) = promised
                && promised != size
            {
                return Err(Attempt::retry(format!(
                    "the download ended after {size} of {promised} bytes"
                )));
            }
            Ok((Digest::from_hasher(hasher), size))
        })
        .await
    }

    /// Streams a download into the store. With `expected` the digest is checked (and a
    /// present blob is not downloaded again); without it the blob is stored under the digest
    /// its bytes have (unpinned files). `size`, when known, is checked too.
    pub async fn fetch_to_store(
        &self,
        url: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
        layout: &Layout,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(Digest, u64), HttpError> {
        if let Some(digest) = expected
            && let Some(present) = layout.blob_size(digest).ok().flatten()
            && size.is_none_or(|s| s == present)
        {
            return Ok((digest.clone(), present));
        }
        let result = self
            .with_retry(url, || async {
                let mut writer = match expected {
                    Some(d) => layout.blob_writer(d),
                    None => layout.unknown_blob_writer(),
                }
                .map_err(|e| Attempt::Fatal(e.into()))?;
                // Downloads restart from byte 0: plain HTTP servers do not all honour ranges.
                writer.restart().map_err(|e| Attempt::Fatal(e.into()))?;
                let response = self.get(url).await?;
                stream_into(response, &mut writer, url, size, on_bytes).await?;
                Ok(writer)
            })
            .await?;
        match result.commit_digest() {
            Ok(done) => Ok(done),
            Err(LayoutError::DigestMismatch {
                expected,
                actual,
                size,
            }) => Err(HttpError::DigestMismatch {
                url: url.to_string(),
                expected,
                actual,
                size,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

async fn stream_into(
    response: reqwest::Response,
    writer: &mut BlobWriter,
    url: &str,
    size: Option<u64>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(), Attempt> {
    let announced = response.content_length();
    let start = writer.written();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Attempt::broken(&e))?;
        if let Some(limit) = size
            && writer.written() + chunk.len() as u64 > limit
        {
            return Err(Attempt::Fatal(HttpError::SizeMismatch {
                url: url.to_string(),
                expected: limit,
                actual: writer.written() + chunk.len() as u64,
            }));
        }
        writer
            .write_all(&chunk)
            .map_err(|e| Attempt::Fatal(e.into()))?;
        on_bytes(chunk.len() as u64);
    }
    // A whole response of another size is other content (changed upstream), not a broken
    // connection: let the digest check at commit say so instead of retrying.
    let complete = announced.is_some_and(|n| writer.written() - start == n);
    if let Some(expected) = size
        && writer.written() != expected
        && !complete
    {
        return Err(Attempt::retry(format!(
            "the download ended after {} of {expected} bytes",
            writer.written()
        )));
    }
    Ok(())
}
