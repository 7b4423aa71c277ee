//! Pulling from OCI distribution registries: manifests by tag or digest, blobs streamed to the store.

use std::collections::BTreeSet;
use std::sync::Arc;

use oci_client::errors::OciDistributionError;

use crate::auth;
use crate::digest::Digest;
use crate::distribution::{Connection, Limited, StreamFailure, classify, read_limited};
pub use crate::distribution::{RegistryError, RegistryOptions};
use crate::layout::oci::sniff_media_type;
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

/// A connection to the registries a manifest or lock names; clones share it (and what it
/// learned about each host).
#[derive(Clone)]
pub struct RegistrySource {
    connection: Arc<Connection>,
}

impl RegistrySource {
    /// Prepares access to `hosts` with credentials from the auth files.
    pub async fn connect(
        hosts: &BTreeSet<String>,
        options: RegistryOptions,
    ) -> Result<RegistrySource, RegistryError> {
        Ok(RegistrySource {
            connection: Arc::new(Connection::connect(hosts, options, auth::lookup).await?),
        })
    }

    /// Fetches a manifest or index by the reference's digest, else its tag; checks the digest.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let host = reference.registry().to_string();
        let what = reference.to_string();
        // The digest wins over the tag, as in Docker.
        let tag_or_digest = reference.digest().or(reference.tag()).unwrap_or("latest");
        let fetched = self
            .connection
            .retry(&host, &what, || {
                self.connection.get_manifest(
                    &host,
                    reference.repository(),
                    tag_or_digest,
                    MAX_MANIFEST_SIZE,
                )
            })
            .await?;
        let bytes = match fetched {
            Limited::Body(bytes) => bytes,
            Limited::TooLarge(size) => {
                return Err(RegistryError::Failed {
                    host,
                    reference: what,
                    message: match size {
                        Some(size) => format!("manifest of {size} bytes is larger than 4 MiB"),
                        None => "manifest is larger than 4 MiB".to_string(),
                    },
                });
            }
        };
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
            bytes,
            digest,
            media_type,
        })
    }

    /// One page of the referrers listing of `subject` (OCI 1.1 referrers API); `None` when
    /// the registry has no such API.
    pub async fn referrers_page(
        &self,
        repository: &Reference,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Option<&str>,
    ) -> Result<Option<crate::distribution::ReferrersPage>, RegistryError> {
        let host = repository.registry().to_string();
        let what = format!("{}/referrers/{subject}", repository.name());
        self.connection
            .retry(&host, &what, || {
                self.connection.get_referrers(
                    &host,
                    repository.repository(),
                    subject,
                    artifact_type,
                    page,
                    MAX_MANIFEST_SIZE,
                )
            })
            .await
    }

    /// Every tag of a repository (following `last=` pages until the registry has no more).
    pub async fn list_tags(&self, repository: &Reference) -> Result<Vec<String>, RegistryError> {
        /// Enough pages for any real repository; a registry that never ends is cut off.
        const MAX_PAGES: usize = 1000;
        let host = repository.registry().to_string();
        let what = format!("{} (tag list)", repository.name());
        let mut tags: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .connection
                .retry(&host, &what, || {
                    self.connection
                        .get_tags(&host, repository.repository(), None, last.as_deref())
                })
                .await?;
            let new_last = page.last().cloned();
            if page.is_empty() || new_last == last {
                break;
            }
            tags.extend(page);
            last = new_last;
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Fetches a small blob (an image config, at most 4 MiB) into memory, checking its digest.
    pub async fn fetch_small_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let host = repository.registry().to_string();
        let what = format!("{}@{}", repository.name(), digest);
        let fetched = self
            .connection
            .retry(&host, &what, || async {
                let blob = self
                    .connection
                    .get_blob(&host, repository.repository(), digest, 0)
                    .await?;
                read_limited(blob.response, MAX_MANIFEST_SIZE).await
            })
            .await?;
        let Limited::Body(buf) = fetched else {
            return Err(RegistryError::Failed {
                host,
                reference: what,
                message: "the blob is larger than 4 MiB".to_string(),
            });
        };
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
        let host = repository.registry().to_string();
        let what = format!("{}@{}", repository.name(), digest);
        let mut writer = layout.blob_writer(digest)?;
        on_bytes(writer.written());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = writer.written();
            match self
                .stream_blob_once(repository, digest, size, &mut writer, on_bytes)
                .await
            {
                Ok(()) => break,
                Err(StreamFailure::Fatal(e)) => return Err(e),
                // A dropped connection after new bytes is progress, not a failed attempt: a
                // long download over a poor link goes on as long as each try gets further.
                Err(StreamFailure::Retry(message)) if writer.written() > before => {
                    tracing::warn!(blob = %what, "{message}; resuming");
                    attempt = 0;
                }
                Err(StreamFailure::Retry(message))
                    if attempt >= self.connection.options.attempts =>
                {
                    return Err(self.connection.gave_up(
                        &host,
                        &what,
                        format!("{message}; run the same command again to resume"),
                        attempt,
                    ));
                }
                Err(StreamFailure::Retry(message)) => {
                    self.connection
                        .wait_to_retry(&host, &what, &message, attempt)
                        .await;
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
        repository: &Reference,
        digest: &Digest,
        size: u64,
        writer: &mut BlobWriter,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StreamFailure> {
        let offset = writer.written();
        if offset >= size && size > 0 {
            return Ok(());
        }
        let host = repository.registry();
        let what = format!("{}@{}", repository.repository(), digest);
        let classify = |e: OciDistributionError| classify(host, &what, e);
        // A range request when resuming; the store's writer hashes every byte and checks the
        // digest at commit.
        let mut blob = self
            .connection
            .get_blob(host, repository.repository(), digest, offset)
            .await
            .map_err(classify)?;
        if blob.start != offset {
            // The registry ignored the range and sends the whole blob: start over.
            writer
                .restart()
                .map_err(|e| StreamFailure::Fatal(e.into()))?;
        }
        while let Some(chunk) = blob.response.chunk().await.transpose() {
            let chunk = chunk.map_err(|e| {
                if e.is_timeout() {
                    StreamFailure::Retry(format!(
                        "{}the registry stopped sending {what} after {} of {size} bytes",
                        crate::distribution::TIMEOUT_PREFIX,
                        writer.written()
                    ))
                } else {
                    StreamFailure::Retry(format!("connection dropped while reading {what}: {e}"))
                }
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
