//! Pushing a bundle's images into a registry (Harbor or any OCI distribution registry).
//!
//! Blobs first (skipped when present, mounted across repositories, uploaded otherwise), then
//! manifests byte for byte, children before the index that names them, so no tag ever points
//! at something incomplete.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use oci_client::errors::OciDistributionError;
use serde::Serialize;

use crate::auth;
use crate::digest::Digest;
use crate::distribution::{Connection, RegistryError, RegistryOptions};
use crate::layout::Layout;
use crate::layout::graph::Entry;
use crate::layout::oci::{is_index, is_manifest};
use crate::manifest::reference::Reference;
use crate::mapping::Target;

/// Called with the length of every chunk sent (progress); shared with the upload streams.
pub type ByteCounter = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// HEAD requests sent at once while surveying the target (cheap; uploads use `--jobs`).
const SURVEY_CONCURRENCY: usize = 16;

/// What the target already holds, from HEAD requests before anything is pushed.
#[derive(Debug, Default)]
pub struct Survey {
    /// Every blob (documents excluded): its size and the repositories that need it.
    pub blobs: BTreeMap<Digest, (u64, Vec<String>)>,
    /// The repositories that already hold each blob.
    pub present: BTreeMap<Digest, BTreeSet<String>>,
}

impl Survey {
    /// Blobs no repository of the target holds: these must be read from the bundle.
    pub fn to_upload(&self) -> Vec<(Digest, u64)> {
        self.blobs
            .iter()
            .filter(|(d, _)| !self.present.contains_key(*d))
            .map(|(d, (size, _))| (d.clone(), *size))
            .collect()
    }
}

/// One image of the bundle and where it goes.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// The upstream reference.
    pub reference: Reference,
    /// The target repository (without host).
    pub repository: String,
    /// The walked entry: documents and blobs.
    pub entry: Entry,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct PushReport {
    /// Blobs uploaded.
    pub uploaded_blobs: usize,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Blobs mounted from another repository of the target.
    pub mounted_blobs: usize,
    /// Blobs the target already had.
    pub skipped_blobs: usize,
    /// Bytes the target already had.
    pub skipped_bytes: u64,
    /// Manifests and indexes pushed.
    pub pushed_manifests: usize,
    /// Manifests and indexes (and tags) the target already had.
    pub skipped_manifests: usize,
}

/// A connection to the site registry.
pub struct RegistryTarget {
    connection: Connection,
    target: Target,
}

impl RegistryTarget {
    /// Connects to the target with credentials from the environment or the auth files.
    pub async fn connect(
        target: Target,
        options: RegistryOptions,
    ) -> Result<RegistryTarget, RegistryError> {
        let hosts = BTreeSet::from([target.host.clone()]);
        let connection = Connection::connect(&hosts, options, auth::lookup_target, true).await?;
        Ok(RegistryTarget { connection, target })
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The digest the target serves for `repository` at a tag or digest (a HEAD request, as a
    /// pull starts), or why it serves none.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag_or_digest: &str,
    ) -> Result<String, String> {
        let image = self.image(repository, tag_or_digest);
        let auth = self.connection.auth(&self.target.host);
        self.connection
            .client
            .fetch_manifest_digest(&image, &auth)
            .await
            .map_err(|e| e.to_string())
    }

    fn image(&self, repository: &str, tag_or_digest: &str) -> oci_client::Reference {
        if tag_or_digest.starts_with("sha256:") {
            oci_client::Reference::with_digest(
                self.target.host.clone(),
                repository.to_string(),
                tag_or_digest.to_string(),
            )
        } else {
            oci_client::Reference::with_tag(
                self.target.host.clone(),
                repository.to_string(),
                tag_or_digest.to_string(),
            )
        }
    }

    /// Checks the credentials once, then asks the registry (HEAD, many at once) which
    /// repositories already hold which blobs. For a delta, refuses when a blob left to the
    /// base is in none of the repositories that need it.
    pub async fn survey(
        &self,
        plans: &[PushPlan],
        omitted: &BTreeSet<Digest>,
    ) -> Result<Survey, RegistryError> {
        let host = self.target.host.clone();
        let auth = self.connection.auth(&host);
        self.connection
            .client
            .store_auth_if_needed(&host, &auth)
            .await;
        // Credentials first, once: with bearer tokens a refused password would otherwise be
        // tried again by every blob's first request (and may lock the account in LDAP).
        if let Some(plan) = plans.first() {
            let image = self.image(&plan.repository, "latest");
            let what = format!("{host}/{} (push)", plan.repository);
            self.connection
                .retry(&host, &what, || {
                    self.connection
                        .client
                        .auth(&image, &auth, oci_client::RegistryOperation::Push)
                })
                .await?;
        }
        // Every (blob, repositories that need it), documents excluded.
        let mut blobs: BTreeMap<Digest, (u64, Vec<String>)> = BTreeMap::new();
        for plan in plans {
            for blob in &plan.entry.blobs {
                if is_index(&blob.media_type) || is_manifest(&blob.media_type) {
                    continue;
                }
                let slot = blobs
                    .entry(blob.digest.clone())
                    .or_insert((blob.size, Vec::new()));
                if !slot.1.contains(&plan.repository) {
                    slot.1.push(plan.repository.clone());
                }
            }
        }
        let pairs: Vec<(&Digest, &String)> = blobs
            .iter()
            .flat_map(|(d, (_, repos))| repos.iter().map(move |r| (d, r)))
            .collect();
        let answers: Vec<Result<Option<(Digest, String)>, RegistryError>> =
            futures_util::stream::iter(pairs)
                .map(|(digest, repository)| async move {
                    let image = self.image(repository, digest.as_str());
                    let what = format!("{}/{}@{}", self.target.host, repository, digest);
                    let exists = self
                        .connection
                        .retry(&self.target.host, &what, || {
                            self.connection.client.blob_exists(&image, digest.as_str())
                        })
                        .await?;
                    Ok(exists.then(|| (digest.clone(), repository.clone())))
                })
                .buffer_unordered(SURVEY_CONCURRENCY)
                .collect()
                .await;
        let mut present: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
        for answer in answers {
            if let Some((digest, repository)) = answer? {
                present.entry(digest).or_default().insert(repository);
            }
        }
        let missing: Vec<String> = blobs
            .iter()
            .filter(|(d, _)| omitted.contains(*d) && !present.contains_key(*d))
            .map(|(d, (_, repos))| format!("{d} (for {})", repos.join(", ")))
            .collect();
        if !missing.is_empty() {
            return Err(RegistryError::Failed {
                host: self.target.host.clone(),
                reference: String::new(),
                message: format!(
                    "this delta bundle relies on {} blob(s) of its base release that {} does not hold, e.g. {}; nothing was pushed. Import the base release first, or use a full bundle",
                    missing.len(),
                    self.target,
                    missing[0]
                ),
            });
        }
        Ok(Survey { blobs, present })
    }

    /// Pushes every planned image after a survey: mounts what another repository holds,
    /// uploads the rest, then the manifests. `on_bytes` counts uploaded bytes.
    pub async fn push(
        &self,
        layout: &Layout,
        plans: &[PushPlan],
        survey: &Survey,
        jobs: usize,
        on_bytes: &ByteCounter,
    ) -> Result<PushReport, RegistryError> {
        let counters = Counters::default();
        let results: Vec<Result<(), RegistryError>> =
            futures_util::stream::iter(survey.blobs.iter())
                .map(|(digest, (size, repositories))| {
                    let present = survey.present.get(digest);
                    self.place_blob(
                        layout,
                        digest,
                        *size,
                        repositories,
                        present,
                        &counters,
                        on_bytes,
                    )
                })
                .buffer_unordered(jobs.max(1))
                .collect()
                .await;
        for r in results {
            r?;
        }
        // Manifests: entries in parallel, each one's documents deepest first.
        let results: Vec<Result<(), RegistryError>> = futures_util::stream::iter(plans.iter())
            .map(|plan| self.push_documents(layout, plan, &counters))
            .buffer_unordered(SURVEY_CONCURRENCY.max(jobs))
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(counters.report())
    }

    /// Makes one blob present in every repository that needs it.
    #[allow(clippy::too_many_arguments)]
    async fn place_blob(
        &self,
        layout: &Layout,
        digest: &Digest,
        size: u64,
        repositories: &[String],
        present: Option<&BTreeSet<String>>,
        counters: &Counters,
        on_bytes: &ByteCounter,
    ) -> Result<(), RegistryError> {
        let mut holder: Option<String> = present.and_then(|p| p.iter().next().cloned());
        for repository in repositories {
            if present.is_some_and(|p| p.contains(repository)) {
                counters.skipped(size);
                continue;
            }
            let image = self.image(repository, digest.as_str());
            let what = format!("{}/{}@{}", self.target.host, repository, digest);
            if let Some(source) = &holder {
                match self
                    .connection
                    .mount_blob(&self.target.host, repository, source, digest)
                    .await
                {
                    Ok(()) => {
                        counters.mounted.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // Registries may refuse to mount (policy, another storage): upload instead.
                    Err(e) => tracing::debug!(blob = %what, "mount refused ({e}); uploading"),
                }
            }
            if !layout.has_blob(digest) {
                return Err(RegistryError::Failed {
                    host: self.target.host.clone(),
                    reference: what,
                    message: "the blob is left to the base release and could not be mounted from where the target has it".to_string(),
                });
            }
            self.upload(layout, &image, digest, size, &what, on_bytes)
                .await?;
            counters.uploaded(size);
            holder = Some(repository.clone());
        }
        Ok(())
    }

    /// Streams a blob file to the registry, retrying from the start on transient failures.
    async fn upload(
        &self,
        layout: &Layout,
        image: &oci_client::Reference,
        digest: &Digest,
        size: u64,
        what: &str,
        on_bytes: &ByteCounter,
    ) -> Result<(), RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A directory's blobs were hashed before the first push; packed volumes are read
            // once, their digest checked on the way (a mismatch fails the upload before its
            // last byte, and the registry checks the digest too).
            let reader = if layout.is_packed() {
                layout.open_blob(digest)?
            } else {
                layout.open_blob_unchecked(digest)?
            };
            let progress = on_bytes.clone();
            let stream = crate::layout::blob_reader::blob_stream(reader, 0, size)
                .inspect_ok(move |chunk| progress(chunk.len() as u64))
                .map_err(OciDistributionError::IoError);
            let result = self
                .connection
                .client
                .push_blob_stream(image, stream, digest.as_str(), Some(size))
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => match crate::distribution::classify(&self.target.host, what, e) {
                    crate::distribution::StreamFailure::Fatal(e) => return Err(e),
                    crate::distribution::StreamFailure::Retry(message)
                        if attempt >= self.connection.options.attempts =>
                    {
                        return Err(RegistryError::Failed {
                            host: self.target.host.clone(),
                            reference: what.to_string(),
                            message: format!(
                                "{message} (gave up after {attempt} attempts; run the same command again to resume)"
                            ),
                        });
                    }
                    crate::distribution::StreamFailure::Retry(message) => {
                        tracing::warn!(blob = what, attempt, "{message}; retrying");
                        tokio::time::sleep(self.connection.backoff(attempt)).await;
                    }
                },
            }
        }
    }

    /// Pushes an entry's manifests and indexes, deepest first, then the tag.
    async fn push_documents(
        &self,
        layout: &Layout,
        plan: &PushPlan,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        let documents: Vec<_> = plan
            .entry
            .blobs
            .iter()
            .filter(|b| is_index(&b.media_type) || is_manifest(&b.media_type))
            .collect();
        // The walk lists parents before children: reversed, children come first.
        for (i, document) in documents.iter().enumerate().rev() {
            let top = i == 0;
            let tag_or_digest = match (top, plan.reference.tag()) {
                (true, Some(tag)) => tag.to_string(),
                _ => document.digest.to_string(),
            };
            let image = self.image(&plan.repository, &tag_or_digest);
            let what = format!("{}/{}:{}", self.target.host, plan.repository, tag_or_digest);
            let auth = self.connection.auth(&self.target.host);
            let current = self
                .connection
                .client
                .fetch_manifest_digest(&image, &auth)
                .await
                .ok();
            if current.as_deref() == Some(document.digest.as_str()) {
                counters.skipped_manifests.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let bytes = layout
                .read_document(&document.digest)
                .map_err(RegistryError::Layout)?;
            let content_type = reqwest::header::HeaderValue::from_str(&document.media_type)
                .map_err(|e| RegistryError::Failed {
                    host: self.target.host.clone(),
                    reference: what.clone(),
                    message: format!("media type {:?}: {e}", document.media_type),
                })?;
            self.connection
                .retry(&self.target.host, &what, || {
                    self.connection.client.push_manifest_raw(
                        &image,
                        bytes.clone(),
                        content_type.clone(),
                    )
                })
                .await?;
            counters.pushed_manifests.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    uploaded_blobs: AtomicUsize,
    uploaded_bytes: AtomicU64,
    mounted: AtomicUsize,
    skipped_blobs: AtomicUsize,
    skipped_bytes: AtomicU64,
    pushed_manifests: AtomicUsize,
    skipped_manifests: AtomicUsize,
}

impl Counters {
    fn uploaded(&self, size: u64) {
        self.uploaded_blobs.fetch_add(1, Ordering::Relaxed);
        self.uploaded_bytes.fetch_add(size, Ordering::Relaxed);
    }
    fn skipped(&self, size: u64) {
        self.skipped_blobs.fetch_add(1, Ordering::Relaxed);
        self.skipped_bytes.fetch_add(size, Ordering::Relaxed);
    }
    fn report(&self) -> PushReport {
        PushReport {
            uploaded_blobs: self.uploaded_blobs.load(Ordering::Relaxed),
            uploaded_bytes: self.uploaded_bytes.load(Ordering::Relaxed),
            mounted_blobs: self.mounted.load(Ordering::Relaxed),
            skipped_blobs: self.skipped_blobs.load(Ordering::Relaxed),
            skipped_bytes: self.skipped_bytes.load(Ordering::Relaxed),
            pushed_manifests: self.pushed_manifests.load(Ordering::Relaxed),
            skipped_manifests: self.skipped_manifests.load(Ordering::Relaxed),
        }
    }
}
