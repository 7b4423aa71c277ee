//! Pushing a bundle's images into a registry (Harbor or any OCI distribution registry).
//!
//! Tags first: an image whose tag already names its digest is complete (ferry pushes tags
//! last, and a registry accepts a manifest only when what it names is there), so a second
//! import asks one HEAD per image. For the others: blobs (skipped when present, mounted across
//! repositories, uploaded otherwise, each digest checked as it streams), then, once every blob
//! is placed, each image's manifests byte for byte, children before the index that names them,
//! so no tag ever points at something incomplete and a damaged bundle leaves no image behind.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures_util::{StreamExt, TryStreamExt};
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

/// HEAD requests sent at once while surveying the target, and images whose manifests are
/// pushed at once (small requests; uploads use `--jobs`).
const SURVEY_CONCURRENCY: usize = 16;

/// What the target already holds, from HEAD requests before anything is pushed.
#[derive(Debug, Default)]
pub struct Survey {
    /// Every blob (documents excluded) of the images still to push: its size and the
    /// repositories that need it.
    pub blobs: BTreeMap<Digest, (u64, Vec<String>)>,
    /// The repositories that already hold each blob.
    pub present: BTreeMap<Digest, BTreeSet<String>>,
    /// Plans (by position) whose tag or digest already names their entry: nothing to do.
    pub complete: BTreeSet<usize>,
    /// Blobs (per repository) and bytes of the complete plans, not asked about again.
    complete_blobs: (usize, u64),
    /// Manifests and indexes of the complete plans.
    complete_documents: usize,
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
    /// Set once the registry refused a chunk (`PATCH`): later blobs of this run go up in one
    /// streamed request each.
    chunks_refused: std::sync::atomic::AtomicBool,
    /// Where blobs read from the bundle by [`RegistryTarget::push`] larger than one chunk are
    /// spooled while they upload (none: a lost session reads the bundle again).
    spool: Option<crate::fsutil::ScratchDir>,
}

impl RegistryTarget {
    /// Spools blobs larger than one chunk, read from the bundle by [`RegistryTarget::push`],
    /// in a private scratch directory while they upload, so a session the registry loses is
    /// started again without reading the bundle (packed volumes are read once).
    pub fn spool_uploads(&mut self) -> std::io::Result<()> {
        self.spool = Some(crate::fsutil::ScratchDir::new("upload-spool")?);
        Ok(())
    }

    /// Connects to the target with credentials from the environment or the auth files.
    pub async fn connect(
        target: Target,
        options: RegistryOptions,
    ) -> Result<RegistryTarget, RegistryError> {
        let hosts = BTreeSet::from([target.host.clone()]);
        let connection = Connection::connect(&hosts, options, auth::lookup_target).await?;
        Ok(RegistryTarget {
            connection,
            target,
            chunks_refused: Default::default(),
            spool: None,
        })
    }

    /// As [`RegistryTarget::connect`] for a target probed already (once per run).
    pub async fn connect_probed(
        target: Target,
        options: RegistryOptions,
        probe: crate::distribution::Probe,
    ) -> Result<RegistryTarget, RegistryError> {
        let hosts = BTreeSet::from([target.host.clone()]);
        let probed = BTreeMap::from([(target.host.clone(), probe)]);
        let connection =
            Connection::connect_probed(&hosts, options, auth::lookup_target, probed).await?;
        Ok(RegistryTarget {
            connection,
            target,
            chunks_refused: Default::default(),
            spool: None,
        })
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
        match self
            .connection
            .manifest_digest(&self.target.host, repository, tag_or_digest)
            .await
        {
            Ok(Some(digest)) => Ok(digest),
            Ok(None) => Err("not found".to_string()),
            Err(e) => Err(crate::distribution::error_chain(&e)),
        }
    }

    /// Checks the credentials once, then asks the registry (HEAD, many at once) which plans'
    /// tags already name their entries (complete: nothing more is asked about them), then
    /// which repositories hold the other plans' blobs. For a delta, refuses when a blob left
    /// to the base is in none of the repositories that need it.
    pub async fn survey(
        &self,
        plans: &[PushPlan],
        omitted: &BTreeSet<Digest>,
    ) -> Result<Survey, RegistryError> {
        let host = self.target.host.clone();
        // Credentials first, once: with bearer tokens a refused password would otherwise be
        // tried again by every request (and may lock the account in LDAP).
        if let Some(plan) = plans.first() {
            let what = format!("{host}/{} (push)", plan.repository);
            self.connection
                .retry(&host, &what, || {
                    self.connection.check_push_access(&host, &plan.repository)
                })
                .await?;
        }
        // Tags first, all at once: a plan whose tag (or digest) already names its entry is
        // complete, since ferry pushes it last and a registry refuses a manifest whose
        // content is missing. Its blobs need no HEAD and no hashing.
        let answers: Vec<Result<Option<usize>, RegistryError>> =
            futures_util::stream::iter(plans.iter().enumerate())
                .map(|(i, plan)| async move {
                    let digest = plan.entry.descriptor.digest.to_string();
                    let reference = plan.reference.tag().map_or(digest.clone(), str::to_string);
                    let what = format!("{}/{}:{}", self.target.host, plan.repository, reference);
                    let current = self
                        .connection
                        .retry(&self.target.host, &what, || {
                            self.connection.manifest_digest(
                                &self.target.host,
                                &plan.repository,
                                &reference,
                            )
                        })
                        .await?;
                    Ok((current.as_deref() == Some(digest.as_str())).then_some(i))
                })
                .buffer_unordered(SURVEY_CONCURRENCY)
                .collect()
                .await;
        let mut complete = BTreeSet::new();
        for answer in answers {
            complete.extend(answer?);
        }
        // Every (blob, repositories that need it), documents excluded; apart, what the
        // complete plans hold.
        let mut blobs: BTreeMap<Digest, (u64, Vec<String>)> = BTreeMap::new();
        let mut held: BTreeMap<(&Digest, &String), u64> = BTreeMap::new();
        let mut complete_documents = 0;
        for (i, plan) in plans.iter().enumerate() {
            for blob in &plan.entry.blobs {
                let document = is_index(&blob.media_type) || is_manifest(&blob.media_type);
                if complete.contains(&i) {
                    if document {
                        complete_documents += 1;
                    } else {
                        held.insert((&blob.digest, &plan.repository), blob.size);
                    }
                    continue;
                }
                if document {
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
        // The repositories of complete plans hold every blob of theirs: no HEAD for those,
        // and they are where the unfinished plans mount shared blobs from.
        let mut present: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
        for (digest, repository) in held.keys() {
            if blobs.contains_key(*digest) {
                present
                    .entry((*digest).clone())
                    .or_default()
                    .insert((*repository).clone());
            }
        }
        // A blob a complete plan holds in a repository that an unfinished plan needs too is
        // counted with the unfinished plan's blobs.
        held.retain(|(digest, repository), _| {
            !blobs
                .get(*digest)
                .is_some_and(|(_, repos)| repos.contains(repository))
        });
        let complete_blobs = (held.len(), held.values().sum());
        let pairs: Vec<(&Digest, &String)> = blobs
            .iter()
            .flat_map(|(d, (_, repos))| repos.iter().map(move |r| (d, r)))
            .filter(|(d, r)| !present.get(*d).is_some_and(|p| p.contains(*r)))
            .collect();
        let answers: Vec<Result<Option<(Digest, String)>, RegistryError>> =
            futures_util::stream::iter(pairs)
                .map(|(digest, repository)| async move {
                    let what = format!("{}/{}@{}", self.target.host, repository, digest);
                    let exists = self
                        .connection
                        .retry(&self.target.host, &what, || {
                            self.connection
                                .blob_exists(&self.target.host, repository, digest)
                        })
                        .await?;
                    Ok(exists.then(|| (digest.clone(), repository.clone())))
                })
                .buffer_unordered(SURVEY_CONCURRENCY)
                .collect()
                .await;
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
        Ok(Survey {
            blobs,
            present,
            complete,
            complete_blobs,
            complete_documents,
        })
    }

    /// Pushes every planned image after a survey: mounts what another repository holds,
    /// uploads the rest, then pushes the images' manifests. `on_bytes` counts uploaded bytes.
    pub async fn push(
        &self,
        layout: &Layout,
        plans: &[PushPlan],
        survey: &Survey,
        jobs: usize,
        on_bytes: &ByteCounter,
    ) -> Result<PushReport, RegistryError> {
        let counters = PushCounters::for_survey(survey);
        // Largest blobs first: the longest uploads start at once instead of ending the
        // import alone on one connection.
        let mut order: Vec<(&Digest, u64)> = survey
            .blobs
            .iter()
            .map(|(digest, (size, _))| (digest, *size))
            .collect();
        order.sort_by_key(|(_, size)| Reverse(*size));
        if layout.is_packed() {
            // From USB sticks the media's order comes first: each volume is needed once.
            order.sort_by_key(|(digest, _)| layout.blob_order_key(digest));
        }
        let counters = &counters;
        // Every blob first: an upload the bundle fails (a corrupt copy) must leave no image
        // behind, so no manifest goes out before the last upload has passed its digest check.
        futures_util::stream::iter(order)
            .map(|(digest, _)| self.place_blob(layout, survey, digest, counters, on_bytes, None))
            .buffer_unordered(jobs.max(1))
            .try_collect::<()>()
            .await?;
        self.push_manifests(layout, plans, survey, jobs, counters)
            .await?;
        Ok(counters.report())
    }

    /// After every blob is placed: each unfinished image's manifests, many images at once
    /// (small requests); referrers after every subject, one at a time (a registry without
    /// the referrers API keeps their list in one tag per subject, which each of them updates).
    pub async fn push_manifests(
        &self,
        layout: &Layout,
        plans: &[PushPlan],
        survey: &Survey,
        jobs: usize,
        counters: &PushCounters,
    ) -> Result<(), RegistryError> {
        let unfinished: Vec<usize> = (0..plans.len())
            .filter(|i| !survey.complete.contains(i))
            .collect();
        let (referrers, subjects): (Vec<usize>, Vec<usize>) = unfinished
            .into_iter()
            .partition(|i| plans[*i].entry.kind == crate::source::referrers::KIND);
        futures_util::stream::iter(subjects)
            .map(|i| self.push_documents(layout, &plans[i], counters))
            .buffer_unordered(SURVEY_CONCURRENCY.max(jobs))
            .try_collect::<()>()
            .await?;
        for i in referrers {
            self.push_documents(layout, &plans[i], counters).await?;
        }
        // Referrers the target already had: listed for their subject too (an import cut off
        // between a referrer and its tag schema index finishes here).
        for plan in plans.iter().enumerate().filter_map(|(i, p)| {
            (survey.complete.contains(&i) && p.entry.kind == crate::source::referrers::KIND)
                .then_some(p)
        }) {
            if plan.reference.tag().is_some() {
                continue;
            }
            let bytes = layout
                .read_document(&plan.entry.descriptor.digest)
                .map_err(RegistryError::Layout)?;
            super::referrers::ensure_linked(
                &self.connection,
                &self.target.host,
                &plan.repository,
                &plan.entry.descriptor,
                &bytes,
            )
            .await?;
        }
        Ok(())
    }

    /// Makes one blob of the survey present in every repository that needs it: skipped where
    /// it is, mounted from a repository that holds it, else uploaded: from `first` when given
    /// (bytes handed over as they are read, by the site import's one pass), else read from
    /// the layout (and again for a retry).
    pub async fn place_blob(
        &self,
        layout: &Layout,
        survey: &Survey,
        digest: &Digest,
        counters: &PushCounters,
        on_bytes: &ByteCounter,
        first: Option<ChunkFeed>,
    ) -> Result<(), RegistryError> {
        let Some((size, repositories)) = survey.blobs.get(digest) else {
            return Ok(());
        };
        let size = *size;
        let present = survey.present.get(digest);
        let mut first = first;
        let mut holder: Option<String> = present.and_then(|p| p.iter().next().cloned());
        for repository in repositories {
            if present.is_some_and(|p| p.contains(repository)) {
                counters.skipped(size);
                continue;
            }
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
            self.upload(
                layout,
                repository,
                digest,
                size,
                &what,
                on_bytes,
                first.take(),
            )
            .await?;
            counters.uploaded(size);
            holder = Some(repository.clone());
        }
        Ok(())
    }

    /// Sends a blob to the registry. Handed chunks (`first`, the site pass) go up as they
    /// arrive and resume where the session stands after a failure (see [`ChunkFeed`]);
    /// otherwise, or when the registry lost the session and no spooled copy is left, the
    /// blob is streamed from the layout, retried from the start on transient failures.
    #[allow(clippy::too_many_arguments)]
    async fn upload(
        &self,
        layout: &Layout,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
        on_bytes: &ByteCounter,
        first: Option<ChunkFeed>,
    ) -> Result<(), RegistryError> {
        let failed = |message: String| RegistryError::Failed {
            host: self.target.host.clone(),
            reference: what.to_string(),
            message,
        };
        // Blobs not fed by the site pass are read from the bundle the same way: chunk by
        // chunk, spooled, resumed.
        let first = match first {
            Some(feed) => Some(feed),
            None => Some(ChunkFeed::from_bundle(
                layout,
                digest,
                size,
                self.spool.as_ref().map(|d| d.path().to_path_buf()),
                on_bytes.clone(),
            )?),
        };
        if let Some(feed) = first {
            let mut feed = feed;
            let mut restarts = 0;
            loop {
                let (message, spool) = match self
                    .upload_chunked(repository, digest, size, what, feed)
                    .await
                {
                    Ok(()) => return Ok(()),
                    Err(Chunked::Fatal(e)) => return Err(e),
                    Err(Chunked::Lost { message, spool }) => (message, spool),
                };
                // The last request may have completed the blob after all.
                if let Ok(true) = self
                    .connection
                    .blob_exists(&self.target.host, repository, digest)
                    .await
                {
                    return Ok(());
                }
                restarts += 1;
                match spool {
                    Some(spool) if restarts < self.connection.options.attempts => {
                        tracing::warn!(
                            "{what}: {message}; the registry lost the upload session, so the blob is sent again from its copy spooled at {} (the bundle is not read again)",
                            spool.path().display()
                        );
                        feed = ChunkFeed::from_spool(spool, size);
                    }
                    _ => {
                        tracing::warn!(
                            "{what}: {message}; the registry lost the upload session and no copy is left, so the blob is read again from the bundle"
                        );
                        break;
                    }
                }
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Packed volumes are read once, their digest checked on the way (a mismatch
            // fails the upload before its last byte). A directory's blobs are not hashed
            // twice: the registry checks each digest as it receives the blob.
            let read_error: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
            let body = {
                let reader = if layout.is_packed() {
                    layout.open_blob(digest)?
                } else {
                    layout.open_blob_unchecked(digest)?
                };
                let progress = on_bytes.clone();
                // A read error of the bundle itself (corrupt or truncated media) is not a
                // network failure: it is reported at once, not retried.
                let seen = read_error.clone();
                let stream = crate::layout::blob_reader::blob_stream(reader, 0, size)
                    .inspect_ok(move |chunk| progress(chunk.len() as u64))
                    .inspect_err(move |e| {
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    });
                reqwest::Body::wrap_stream(stream)
            };
            // The session start is retried on its own: a refused POST sent no data.
            let session = self
                .connection
                .retry(&self.target.host, what, || {
                    self.connection.start_upload(&self.target.host, repository)
                })
                .await?;
            let result = self
                .connection
                .finish_upload(&self.target.host, repository, session, digest, size, body)
                .await;
            if let Some(message) = read_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(failed(format!(
                    "cannot read the blob from the bundle: {message}; no image was pushed"
                )));
            }
            let Err(error) = result else {
                return Ok(());
            };
            let message = if is_digest_invalid(&error) {
                // The registry hashed other bytes than the digest names: whose are they?
                if !layout.is_packed()
                    && let Err(fault) = check_bundle_copy(layout, digest).await
                {
                    return Err(failed(format!(
                        "the bundle's copy of this blob is corrupt ({fault}); the target refused it and no image was pushed"
                    )));
                }
                // The bundle's copy is sound: the bytes changed on the way.
                "the target received other bytes than were sent (DIGEST_INVALID)".to_string()
            } else {
                match crate::distribution::classify(&self.target.host, what, error) {
                    crate::distribution::StreamFailure::Fatal(e) => return Err(e),
                    crate::distribution::StreamFailure::Retry(message) => message,
                }
            };
            if attempt >= self.connection.options.attempts {
                return Err(self.connection.gave_up(
                    &self.target.host,
                    what,
                    format!("{message}; run the same command again to resume"),
                    attempt,
                ));
            }
            self.connection
                .wait_to_retry(&self.target.host, what, &message, attempt)
                .await;
        }
    }

    /// Pushes an unfinished entry's manifests and indexes, deepest first, then the tag. No
    /// HEAD first: the survey found the tag missing or elsewhere, and putting a manifest the
    /// registry holds costs no more than asking for it.
    async fn push_documents(
        &self,
        layout: &Layout,
        plan: &PushPlan,
        counters: &PushCounters,
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
            let what = format!("{}/{}:{}", self.target.host, plan.repository, tag_or_digest);
            let bytes = layout
                .read_document(&document.digest)
                .map_err(RegistryError::Layout)?;
            let acknowledged = self
                .connection
                .retry(&self.target.host, &what, || {
                    self.connection.put_manifest(
                        &self.target.host,
                        &plan.repository,
                        &tag_or_digest,
                        &bytes,
                        &document.media_type,
                    )
                })
                .await?;
            counters.pushed_manifests.fetch_add(1, Ordering::Relaxed);
            if top && plan.entry.kind == crate::source::referrers::KIND && !acknowledged {
                super::referrers::link_by_tag(
                    &self.connection,
                    &self.target.host,
                    &plan.repository,
                    document,
                    &bytes,
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Bytes of one `PATCH` of a chunked upload: what an upload fed by the site pass holds in
/// memory per chunk (the one being filled, the one waiting, the one being sent).
pub const UPLOAD_CHUNK: usize = 8 << 20;

/// What the site pass hands a registry upload, in order.
pub enum Feed {
    /// The next [`UPLOAD_CHUNK`] bytes.
    Chunk(axum::body::Bytes),
    /// Every byte handed over and the blob's digest checked: the bytes after the last full
    /// chunk, and (for a blob larger than one chunk) its copy spooled on local disk, removed
    /// when dropped.
    End {
        /// The last bytes (possibly none).
        last: axum::body::Bytes,
        /// The spooled copy.
        spool: Option<crate::fsutil::TempPath>,
    },
}

/// A blob handed over chunk by chunk as it is read (OCI chunked upload: `POST`, a `PATCH`
/// per chunk with its `Content-Range`, `PUT ?digest=` with the rest). Only the chunk being
/// sent is held: after a failed request the session is asked where it stands (`GET`, its
/// `Range`) and the chunk goes on from there. A session the registry lost (distribution
/// drops one whose request was cut mid-body) is started again from the first chunk when
/// that is the one held, else from the spooled copy; the bundle is read again only when
/// neither is left, and the log says so. A feed closed before [`Feed::End`] (the blob failed
/// its check) completes nothing.
pub struct ChunkFeed(
    tokio::sync::mpsc::Receiver<Feed>,
    /// Why the feed stopped early, when its reader knows.
    std::sync::Arc<std::sync::Mutex<Option<String>>>,
);

impl ChunkFeed {
    /// The feed and its sending end (a small queue: memory stays flat).
    pub fn channel() -> (tokio::sync::mpsc::Sender<Feed>, ChunkFeed) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (tx, ChunkFeed(rx, Default::default()))
    }

    /// Why the feed stopped before its end, if its reader said.
    fn stopped(&self) -> Option<String> {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A feed reading blob `digest` (`size` bytes) from the bundle, chunk by chunk (packed
    /// volumes check its digest on the way, and the feed ends only if it matched); a blob
    /// larger than one chunk is also spooled into `spool`, when given and writable.
    fn from_bundle(
        layout: &Layout,
        digest: &Digest,
        size: u64,
        spool: Option<std::path::PathBuf>,
        on_bytes: ByteCounter,
    ) -> Result<ChunkFeed, RegistryError> {
        use std::io::{Read, Write};
        let mut reader = if layout.is_packed() {
            layout.open_blob(digest)?
        } else {
            layout.open_blob_unchecked(digest)?
        };
        let (tx, feed) = ChunkFeed::channel();
        let error = feed.1.clone();
        let mut spool = spool
            .filter(|_| size > UPLOAD_CHUNK as u64)
            .and_then(|dir| {
                crate::fsutil::TempFile::in_dir(&dir, crate::fsutil::Access::Secret)
                    .map_err(|e| {
                        tracing::debug!("no spool for the upload in {}: {e}", dir.display())
                    })
                    .ok()
            });
        tokio::task::spawn_blocking(move || {
            let failed = |message: String| {
                *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
            };
            let mut left = size;
            loop {
                let take = left.min(UPLOAD_CHUNK as u64) as usize;
                let mut chunk = vec![0u8; take];
                if let Err(e) = reader.read_exact(&mut chunk) {
                    return failed(format!("cannot read the blob from the bundle: {e}"));
                }
                left -= take as u64;
                on_bytes(take as u64);
                if let Some(file) = &mut spool
                    && let Err(e) = file.write_all(&chunk)
                {
                    // Only a convenience: without it a lost session reads the bundle again.
                    tracing::debug!("spooling the upload stopped: {e}");
                    spool = None;
                }
                if take < UPLOAD_CHUNK || left == 0 {
                    // The end: a packed volume's reader checks the digest at its last byte.
                    if let Err(e) = reader.read(&mut [0u8; 1]) {
                        return failed(format!("cannot read the blob from the bundle: {e}"));
                    }
                    let spool = spool.map(|f| f.into_parts().1);
                    let _ = tx.blocking_send(Feed::End {
                        last: chunk.into(),
                        spool,
                    });
                    return;
                }
                if tx.blocking_send(Feed::Chunk(chunk.into())).is_err() {
                    return;
                }
            }
        });
        Ok(feed)
    }

    /// A feed reading a spooled copy of `size` bytes, chunk by chunk.
    fn from_spool(spool: crate::fsutil::TempPath, size: u64) -> ChunkFeed {
        use tokio::io::AsyncReadExt;
        let (tx, feed) = ChunkFeed::channel();
        tokio::spawn(async move {
            let Ok(mut file) = tokio::fs::File::open(spool.path()).await else {
                return; // closed without End: the upload says the copy is gone
            };
            let mut left = size;
            while left > UPLOAD_CHUNK as u64 {
                let mut chunk = vec![0u8; UPLOAD_CHUNK];
                if file.read_exact(&mut chunk).await.is_err()
                    || tx.send(Feed::Chunk(chunk.into())).await.is_err()
                {
                    return;
                }
                left -= UPLOAD_CHUNK as u64;
            }
            let mut last = vec![0u8; left as usize];
            if file.read_exact(&mut last).await.is_err() {
                return;
            }
            let _ = tx
                .send(Feed::End {
                    last: last.into(),
                    spool: Some(spool),
                })
                .await;
        });
        feed
    }
}

/// How a chunked upload ended when it did not complete.
enum Chunked {
    /// Final: the error to report.
    Fatal(RegistryError),
    /// The registry lost the session past the first chunk: start again from the spooled
    /// copy, if any.
    Lost {
        message: String,
        spool: Option<crate::fsutil::TempPath>,
    },
}

impl RegistryTarget {
    /// Uploads a fed blob into `repository`; see [`ChunkFeed`].
    async fn upload_chunked(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
        mut feed: ChunkFeed,
    ) -> Result<(), Chunked> {
        let host = &self.target.host;
        let mut session = self
            .connection
            .retry(host, what, || {
                self.connection.start_upload(host, repository)
            })
            .await
            .map_err(Chunked::Fatal)?;
        let mut offset = 0u64;
        loop {
            let (bytes, spool, last) = match feed.0.recv().await {
                Some(Feed::Chunk(bytes)) => (bytes, None, false),
                Some(Feed::End { last, spool }) => (last, spool, true),
                None => return Err(Chunked::Fatal(not_handed_over(host, what, feed.stopped()))),
            };
            if !last && offset == 0 && self.chunks_refused.load(Ordering::Relaxed) {
                return self
                    .upload_streamed(repository, digest, size, what, session, bytes, feed)
                    .await;
            }
            let finish = last.then_some(digest);
            match self
                .send_part(repository, what, &mut session, offset, &bytes, finish)
                .await
            {
                Ok(()) if last => return Ok(()),
                Ok(()) => offset += bytes.len() as u64,
                Err(PartFailure::Refused(message)) => {
                    if !self.chunks_refused.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "{host} refuses chunked uploads ({message}); every blob larger than {} MiB goes up in one streamed request instead (a cut one starts again from its spooled copy)",
                            UPLOAD_CHUNK >> 20
                        );
                    }
                    // A session that took a refused PATCH may be spent: a new one.
                    let session = self
                        .connection
                        .retry(host, what, || {
                            self.connection.start_upload(host, repository)
                        })
                        .await
                        .map_err(Chunked::Fatal)?;
                    return self
                        .upload_streamed(repository, digest, size, what, session, bytes, feed)
                        .await;
                }
                Err(PartFailure::Fatal(e)) => return Err(Chunked::Fatal(e)),
                Err(PartFailure::Lost(message)) => {
                    // The rest still streams in; the spooled copy comes with the end.
                    let spool = if last {
                        spool
                    } else {
                        loop {
                            match feed.0.recv().await {
                                Some(Feed::Chunk(_)) => continue,
                                Some(Feed::End { spool, .. }) => break spool,
                                None => break None,
                            }
                        }
                    };
                    return Err(Chunked::Lost { message, spool });
                }
            }
        }
    }

    /// Uploads a fed blob in one request (`PUT ?digest=` on `session`), its body streamed:
    /// `held` (the first chunk), then the rest of the feed as it comes; memory stays flat.
    /// For registries that refuse chunks. A failed request starts again from the spooled
    /// copy (the feed's end hands it over), else the bundle.
    #[allow(clippy::too_many_arguments)]
    async fn upload_streamed(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
        session: reqwest::Url,
        held: axum::body::Bytes,
        feed: ChunkFeed,
    ) -> Result<(), Chunked> {
        type Slot = std::sync::Arc<std::sync::Mutex<Option<Option<crate::fsutil::TempPath>>>>;
        let host = &self.target.host;
        // The feed's end, once streamed: `Some(spool)`.
        let ended: Slot = Default::default();
        let seen = ended.clone();
        let stopped = feed.1.clone();
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(feed.0));
        let body_rx = rx.clone();
        let stream = futures_util::stream::unfold((Some(held), false), move |(held, done)| {
            let (seen, rx) = (seen.clone(), body_rx.clone());
            async move {
                if let Some(bytes) = held {
                    return Some((Ok(bytes), (None, false)));
                }
                if done {
                    return None;
                }
                match rx.lock().await.recv().await {
                    Some(Feed::Chunk(bytes)) => Some((Ok(bytes), (None, false))),
                    Some(Feed::End { last, spool }) => {
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(spool);
                        Some((Ok(last), (None, true)))
                    }
                    None => Some((
                        Err(std::io::Error::other("the blob was not handed over whole")),
                        (None, true),
                    )),
                }
            }
        });
        let result = self
            .connection
            .finish_upload(
                host,
                repository,
                session,
                digest,
                size,
                reqwest::Body::wrap_stream(stream),
            )
            .await;
        if result.is_ok() {
            return Ok(());
        }
        let end = ended.lock().unwrap_or_else(|p| p.into_inner()).take();
        let spool = match end {
            Some(spool) => spool,
            None => {
                // The request broke off mid-body: the rest still streams in, the spooled
                // copy with its end (none if the blob failed its check).
                let mut rx = rx.lock().await;
                loop {
                    match rx.recv().await {
                        Some(Feed::Chunk(_)) => continue,
                        Some(Feed::End { spool, .. }) => break spool,
                        None => {
                            let why = stopped.lock().unwrap_or_else(|p| p.into_inner()).clone();
                            return Err(Chunked::Fatal(not_handed_over(host, what, why)));
                        }
                    }
                }
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(error) if is_digest_invalid(&error) => Err(Chunked::Lost {
                message: "the target received other bytes than were sent (DIGEST_INVALID)".into(),
                spool,
            }),
            Err(error) => match crate::distribution::classify(host, what, error) {
                crate::distribution::StreamFailure::Fatal(e) => Err(Chunked::Fatal(e)),
                crate::distribution::StreamFailure::Retry(message) => {
                    Err(Chunked::Lost { message, spool })
                }
            },
        }
    }

    /// Sends `bytes` at `start` of the upload (`PATCH`), or the last bytes with the digest
    /// (`PUT`, `finish`), resuming where the session stands after a failure.
    async fn send_part(
        &self,
        repository: &str,
        what: &str,
        session: &mut reqwest::Url,
        start: u64,
        bytes: &axum::body::Bytes,
        finish: Option<&Digest>,
    ) -> Result<(), PartFailure> {
        let host = &self.target.host;
        let connection = &self.connection;
        let mut from = 0usize;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let part = bytes.slice(from..);
            let result = match finish {
                None if part.is_empty() => return Ok(()),
                None => connection
                    .patch_upload(host, repository, session, start + from as u64, part)
                    .await
                    .map(|next| *session = next),
                Some(digest) => {
                    connection
                        .put_upload(host, repository, session, digest, part)
                        .await
                }
            };
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if finish.is_none()
                && start == 0
                && from == 0
                && attempt == 1
                && let Some(message) = chunks_refusal(&error)
            {
                return Err(PartFailure::Refused(message));
            }
            if finish.is_some() && is_digest_invalid(&error) {
                return Err(PartFailure::Lost(
                    "the target received other bytes than were sent (DIGEST_INVALID)".into(),
                ));
            }
            let message = match crate::distribution::classify(host, what, error) {
                crate::distribution::StreamFailure::Fatal(e) => return Err(PartFailure::Fatal(e)),
                crate::distribution::StreamFailure::Retry(message) => message,
            };
            if attempt >= connection.options.attempts {
                return Err(PartFailure::Fatal(connection.gave_up(
                    host,
                    what,
                    format!("{message}; run the same command again to resume"),
                    attempt,
                )));
            }
            connection
                .wait_to_retry(host, what, &message, attempt)
                .await;
            // Where does the session stand?
            let status = connection
                .retry(host, what, || {
                    connection.upload_status(host, repository, session)
                })
                .await;
            let end = start + bytes.len() as u64;
            match status {
                Ok(Some((held, next))) if held >= start && held <= end => {
                    *session = next;
                    from = (held - start) as usize;
                    tracing::warn!(
                        "{what}: the registry holds {held} bytes of the upload; going on from there"
                    );
                }
                _ if start == 0 => {
                    // Nothing before these bytes was acknowledged: a new session, these
                    // bytes again from memory.
                    *session = connection
                        .retry(host, what, || connection.start_upload(host, repository))
                        .await
                        .map_err(PartFailure::Fatal)?;
                    from = 0;
                    tracing::warn!(
                        "{what}: the registry lost the upload session; starting a new one"
                    );
                }
                Ok(_) | Err(_) => {
                    return Err(PartFailure::Lost(format!(
                        "{message}, and the registry no longer resumes the upload session at byte {start}"
                    )));
                }
            }
        }
    }
}

/// How one request of a chunked upload failed.
enum PartFailure {
    Fatal(RegistryError),
    Lost(String),
    /// The registry does not take chunks (its answer to the first `PATCH`).
    Refused(String),
}

/// Whether the answer to an upload's first `PATCH` means the registry does not take chunked
/// uploads (405, 404, 400, 501, or an error naming them unsupported): what it said.
fn chunks_refusal(error: &oci_client::errors::OciDistributionError) -> Option<String> {
    let oci_client::errors::OciDistributionError::ServerError { code, message, .. } = error else {
        return None;
    };
    let unsupported = message.to_ascii_uppercase().contains("UNSUPPORTED");
    (matches!(code, 400 | 404 | 405 | 501) || unsupported)
        .then(|| format!("PATCH answered {code}: {}", message.trim()))
}

/// The error of a feed closed before its end.
fn not_handed_over(host: &str, what: &str, why: Option<String>) -> RegistryError {
    RegistryError::Failed {
        host: host.to_string(),
        reference: what.to_string(),
        message: match why {
            Some(why) => format!("{why}; no image was pushed"),
            None => "the blob was not handed over whole (it failed its check, or the read stopped); nothing was completed".into(),
        },
    }
}

/// What a push did so far, counted as it goes (shared by concurrent uploads).
#[derive(Default)]
pub struct PushCounters {
    uploaded_blobs: AtomicUsize,
    uploaded_bytes: AtomicU64,
    mounted: AtomicUsize,
    skipped_blobs: AtomicUsize,
    skipped_bytes: AtomicU64,
    pushed_manifests: AtomicUsize,
    skipped_manifests: AtomicUsize,
}

impl PushCounters {
    /// Counters that start with what the survey found complete.
    pub fn for_survey(survey: &Survey) -> PushCounters {
        let counters = PushCounters::default();
        let (blobs, bytes) = survey.complete_blobs;
        counters.skipped_blobs.fetch_add(blobs, Ordering::Relaxed);
        counters.skipped_bytes.fetch_add(bytes, Ordering::Relaxed);
        counters
            .skipped_manifests
            .fetch_add(survey.complete_documents, Ordering::Relaxed);
        counters
    }

    fn uploaded(&self, size: u64) {
        self.uploaded_blobs.fetch_add(1, Ordering::Relaxed);
        self.uploaded_bytes.fetch_add(size, Ordering::Relaxed);
    }
    fn skipped(&self, size: u64) {
        self.skipped_blobs.fetch_add(1, Ordering::Relaxed);
        self.skipped_bytes.fetch_add(size, Ordering::Relaxed);
    }
    /// The counts now.
    pub fn report(&self) -> PushReport {
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

/// Whether a registry refused an upload because the bytes do not hash to the digest given.
fn is_digest_invalid(error: &oci_client::errors::OciDistributionError) -> bool {
    matches!(
        error,
        oci_client::errors::OciDistributionError::ServerError { code: 400, message, .. }
            if message.contains("DIGEST_INVALID")
    )
}

/// Hashes the bundle's copy of a blob (after the target refused its digest): the fault found,
/// if any.
async fn check_bundle_copy(layout: &Layout, digest: &Digest) -> Result<(), String> {
    let layout = layout.clone();
    let digest = digest.clone();
    tokio::task::spawn_blocking(move || {
        let mut reader = layout.open_blob(&digest).map_err(|e| e.to_string())?;
        std::io::copy(&mut reader, &mut std::io::sink())
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}
