//! Pulling from OCI distribution registries: manifests by tag or digest, blobs streamed to the store.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use oci_client::client::BlobResponse;
use oci_client::errors::OciDistributionError;

use crate::auth;
use crate::digest::Digest;
use crate::distribution::{Connection, StreamFailure, classify, to_oci};
pub use crate::distribution::{RegistryError, RegistryOptions};
use crate::layout::oci::{MANIFEST_MEDIA_TYPES, sniff_media_type};
use crate::layout::{BlobWriter, Layout, LayoutError, MAX_MANIFEST_SIZE};
use crate::manifest::reference::Reference;

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
    connection: Connection,
}

impl RegistrySource {
    /// Prepares access to `hosts` with credentials from the auth files.
    pub async fn connect(
        hosts: &BTreeSet<String>,
        options: RegistryOptions,
    ) -> Result<RegistrySource, RegistryError> {
        Ok(RegistrySource {
            connection: Connection::connect(hosts, options, auth::lookup, false).await?,
        })
    }

    /// Fetches a manifest or index by the reference's digest, else its tag; checks the digest.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let image = to_oci(reference);
        let host = reference.registry().to_string();
        let auth = self.connection.auth(&host);
        let what = reference.to_string();
        let (bytes, _) = self
            .connection
            .retry(&host, &what, || {
                self.connection
                    .client
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

    /// Every tag of a repository (following `last=` pages until the registry has no more).
    pub async fn list_tags(&self, repository: &Reference) -> Result<Vec<String>, RegistryError> {
        /// Enough pages for any real repository; a registry that never ends is cut off.
        const MAX_PAGES: usize = 1000;
        let image = to_oci(repository);
        let host = repository.registry().to_string();
        let auth = self.connection.auth(&host);
        let what = format!("{} (tag list)", repository.name());
        let mut tags: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .connection
                .retry(&host, &what, || {
                    self.connection
                        .client
                        .list_tags(&image, &auth, None, last.as_deref())
                })
                .await?;
            let new_last = page.tags.last().cloned();
            if page.tags.is_empty() || new_last == last {
                break;
            }
            tags.extend(page.tags);
            last = new_last;
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// The client reference, host and message name for a blob request, with the host's
    /// credentials registered (blob calls do not take them as an argument).
    async fn blob_request(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> (oci_client::Reference, String, String) {
        let image = to_oci(repository);
        let host = repository.registry().to_string();
        self.connection
            .client
            .store_auth_if_needed(image.resolve_registry(), &self.connection.auth(&host))
            .await;
        let what = format!("{}@{}", repository.name(), digest);
        (image, host, what)
    }

    /// Fetches a small blob (an image config) into memory, checking its digest.
    pub async fn fetch_small_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let (image, host, what) = self.blob_request(repository, digest).await;
        let buf = self
            .connection
            .retry(&host, &what, || async {
                let mut out = Vec::new();
                self.connection
                    .client
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
        let (image, host, what) = self.blob_request(repository, digest).await;
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
                Err(StreamFailure::Retry(message))
                    if attempt >= self.connection.options.attempts =>
                {
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
                    tokio::time::sleep(self.connection.backoff(attempt)).await;
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
        // Always ask with a range (from byte 0 on a fresh start): the registry then answers
        // 206 and oci-client skips its own digest check, which would hash every byte a second
        // time; the store's writer hashes everything and checks the digest at commit.
        let mut stream = match self
            .connection
            .client
            .pull_blob_stream_partial(image, digest.as_str(), offset, None)
            .await
            .map_err(classify)?
        {
            BlobResponse::Partial(s) => s,
            BlobResponse::Full(s) => {
                if offset > 0 {
                    // The server ignored the range: start over.
                    writer
                        .restart()
                        .map_err(|e| StreamFailure::Fatal(e.into()))?;
                }
                s
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
}
