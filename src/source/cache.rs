//! The shared blob cache of `ferry build --cache s3://BUCKET/PREFIX`: runners building
//! different releases or variants, at the same time or one after the other, on one machine or
//! many, fetch each upstream blob once between them. Image blobs (layers, configs) and
//! release files go through it; manifests, charts and `.deb` packages do not.
//!
//! # Layout
//!
//! The cache is content-addressed exactly as a bundle on S3 is: `PREFIX/blobs/sha256/<hex>`,
//! and an object there is only ever a complete blob whose digest was checked before it was
//! completed (a multipart upload appears under its key only at completion). So a bundle's
//! prefix may itself serve as the cache. Beside the blobs, `PREFIX/leases/<hex>` holds the
//! lease of a blob being fetched (see below); nothing else is written.
//!
//! # Flow, per blob the build needs
//!
//! 1. In the output already: nothing (the build skips it before asking the cache).
//! 2. In the cache with the size the manifest gives: streamed from the cache into the output
//!    by ranged GETs, hashed on the way, and completed in the output only when the digest
//!    matches. Cache content is never trusted blindly: an object that does not hash to its
//!    name is named in a warning, not completed in the output, and replaced by the blob
//!    fetched from upstream (which is checked the same way).
//! 3. Missing: the build takes the blob's lease, fetches it from upstream into the output
//!    (digest-checked, resumable, as without a cache), uploads it to the cache (streamed,
//!    multipart, memory bounded by a few parts; completed only when what was read back from
//!    the output hashes to the digest), and releases the lease.
//!
//! # Leases
//!
//! A lease is a small JSON object, `leases/<hex>`: owner (host, pid, a random token), the
//! blob, and an expiry (Unix seconds). It is created with a conditional put,
//! `If-None-Match: *`: of two builds racing for it, the store lets exactly one create it and
//! answers the other `412 Precondition Failed` (RGW, MinIO and AWS S3 all do). The holder
//! rewrites it every third of its lifetime with a later expiry, conditionally on the ETag of
//! its own last write (`If-Match`), while the download runs. A build that finds a live lease
//! waits: it polls for the blob to appear in the cache (then takes it from there, and counts
//! it as waited for), or for the lease to go (its holder failed: it tries to take the lease
//! itself). A lease whose expiry has passed (its build was killed, or its machine lost) is
//! taken over with a conditional put on the ETag of the stale lease (`If-Match`), so of two
//! builds finding the same stale lease, one wins and the other goes back to waiting.
//!
//! The lifetime is 60 s (`FERRY_CACHE_LEASE_SECONDS` changes it); the runners' clocks must
//! agree to well within it, as NTP keeps them. A lease is only looked at when its blob is not
//! in the cache: one a killed build left beside a blob it had completed is ignored (and may be
//! deleted at any time, e.g. by a lifecycle rule on `PREFIX/leases/`).
//!
//! Ceph RGW 16.2 compares `If-Match` with the bare ETag rather than the quoted one RFC 9110
//! prescribes; a conditional replace refused in one spelling is tried in the other, and a
//! stale lease that still cannot be replaced conditionally is deleted and created anew.
//!
//! # The race that remains, and why it is harmless
//!
//! A holder stalled for longer than the lifetime (a paused VM, a partitioned runner) may find
//! its lease taken over; it notices at its next refresh, says so, and finishes its download
//! anyway. Then two builds fetch the same blob: one duplicate download. Both results are the
//! same bytes under the same digest, each checked against the digest before it is completed
//! in the output and in the cache, and an S3 object is replaced whole, never mixed: the cache
//! object is correct whichever upload completes last. The only cost is the duplicate's
//! bandwidth. The same holds without leases at all, which is why a lease is an optimisation
//! and never a condition of correctness.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layout::{Layout, LayoutError};
use crate::s3::{S3Error, S3Location, S3Options, S3Store};

/// Environment variable setting a lease's lifetime in seconds (default 60).
pub const LEASE_SECONDS_ENV: &str = "FERRY_CACHE_LEASE_SECONDS";
const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How often a waiting build looks for the blob or the lease again.
const POLL: Duration = Duration::from_millis(500);

/// Errors of the cache; each names the object and the next step.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The store refused or failed a request.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// Writing the output failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A cache object does not hold what its name promises.
    #[error(
        "{url} in the blob cache is not blob {digest}: it hashed to {actual} ({size} bytes). Someone changed the cache object; it was not used, and the blob is fetched from upstream instead"
    )]
    Tampered {
        /// The object.
        url: String,
        /// The digest its name promises.
        digest: Digest,
        /// The digest it had.
        actual: Digest,
        /// Its size.
        size: u64,
    },
    /// Reading a cache object or the output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was read.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A lease object's content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Lease {
    /// Who holds it: `host:pid:token`.
    owner: String,
    /// The host name of the holder.
    host: String,
    /// The holder's process id.
    pid: u32,
    /// The blob being fetched.
    digest: String,
    /// Unix seconds after which the lease is stale.
    expires: u64,
}

/// A lease as read: its content (None when unreadable) and its ETag.
type SeenLease = (Option<Lease>, Option<String>);

/// Counters of where the blobs went from, for the build summary.
#[derive(Debug, Default)]
struct Counters {
    upstream_blobs: AtomicU64,
    upstream_bytes: AtomicU64,
    cache_blobs: AtomicU64,
    cache_bytes: AtomicU64,
    waited_blobs: AtomicU64,
    waited_bytes: AtomicU64,
    rejected_blobs: AtomicU64,
    taken_over_leases: AtomicU64,
}

/// What the cache did in one build (the `cache` part of the build summary).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CacheReport {
    /// The cache location.
    pub location: String,
    /// Blobs fetched from upstream (and added to the cache) by this build.
    pub upstream_blobs: u64,
    /// Their bytes.
    pub upstream_bytes: u64,
    /// Blobs taken from the cache.
    pub cache_blobs: u64,
    /// Their bytes.
    pub cache_bytes: u64,
    /// Of those fetched or taken: blobs this build waited for while another build held
    /// their lease.
    pub waited_blobs: u64,
    /// Their bytes.
    pub waited_bytes: u64,
    /// Cache objects that did not hash to their name (not used; fetched from upstream).
    pub rejected_blobs: u64,
    /// Stale leases (of killed builds) taken over.
    pub taken_over_leases: u64,
}

/// The shared blob cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobCache {
    store: S3Store,
    owner: Arc<Lease>,
    lifetime: Duration,
    counters: Arc<Counters>,
}

/// How a blob was obtained.
enum Got {
    Upstream,
    Cache,
}

impl BlobCache {
    /// The cache at `location` (`s3://BUCKET/PREFIX`), its endpoint and credentials from the
    /// environment and `options`.
    pub fn open(location: &str, options: &S3Options) -> anyhow::Result<BlobCache> {
        let parsed = S3Location::parse(location)?.with_context(|| {
            format!(
                "--cache {location}: the blob cache is an S3 location; write s3://BUCKET/PREFIX"
            )
        })?;
        let store = S3Store::open(parsed, options)
            .with_context(|| format!("cannot open the blob cache {location}"))?;
        Ok(BlobCache::with_store(store, lease_lifetime()?))
    }

    /// The cache in `store`, with leases living `lifetime`.
    pub fn with_store(store: S3Store, lifetime: Duration) -> BlobCache {
        let host = host_name();
        let pid = std::process::id();
        let token: u64 = rand::random();
        BlobCache {
            store,
            owner: Arc::new(Lease {
                owner: format!("{host}:{pid}:{token:016x}"),
                host,
                pid,
                digest: String::new(),
                expires: 0,
            }),
            lifetime,
            counters: Arc::default(),
        }
    }

    /// `s3://bucket/prefix` of the cache.
    pub fn location(&self) -> String {
        let location = self.store.location();
        if location.prefix.is_empty() {
            format!("s3://{}", location.bucket)
        } else {
            format!("s3://{}/{}", location.bucket, location.prefix)
        }
    }

    /// What the cache did so far.
    pub fn report(&self) -> CacheReport {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheReport {
            location: self.location(),
            upstream_blobs: get(&c.upstream_blobs),
            upstream_bytes: get(&c.upstream_bytes),
            cache_blobs: get(&c.cache_blobs),
            cache_bytes: get(&c.cache_bytes),
            waited_blobs: get(&c.waited_blobs),
            waited_bytes: get(&c.waited_bytes),
            rejected_blobs: get(&c.rejected_blobs),
            taken_over_leases: get(&c.taken_over_leases),
        }
    }

    /// Puts blob `digest` of `size` bytes into `layout`: from the cache when it has it, else
    /// from `upstream` (which stores it in `layout` and returns its size) under the blob's
    /// lease, then into the cache. `on_bytes` sees the bytes copied from the cache (upstream
    /// reports its own). Returns the blob's size.
    pub async fn fetch<F, Fut>(
        &self,
        digest: &Digest,
        size: u64,
        layout: &Layout,
        on_bytes: &(dyn Fn(u64) + Sync),
        upstream: F,
    ) -> anyhow::Result<u64>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<u64>>,
    {
        let (mut waited, mut rejected) = (false, false);
        let mut upstream = Some(upstream);
        let got = loop {
            if layout.has_blob(digest) {
                return Ok(size);
            }
            let cached = self.store.head(&blob_name(digest)).await?;
            if let Some(other) = cached.filter(|s| *s != size && !rejected) {
                rejected = true;
                tracing::warn!(
                    "{} in the blob cache has {other} bytes, blob {digest} has {size}: someone changed the cache object; it is not used, and the blob is fetched from upstream and written over it",
                    self.store.url(&blob_name(digest))
                );
                self.counters.rejected_blobs.fetch_add(1, Ordering::Relaxed);
            }
            if cached == Some(size) {
                match self.copy_into(digest, size, layout, on_bytes).await {
                    Ok(()) => break Got::Cache,
                    Err(e @ CacheError::Tampered { .. }) => {
                        tracing::warn!("{e}");
                        self.counters.rejected_blobs.fetch_add(1, Ordering::Relaxed);
                        // Fetched from upstream and written over the bad object, lease or not:
                        // waiting for another build would only find the same bad object.
                        let fetch = upstream.take().expect("upstream is used once");
                        self.fetch_upstream(digest, size, layout, fetch).await?;
                        break Got::Upstream;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            match self.acquire(digest).await? {
                Some(lease) => {
                    let fetch = upstream.take().expect("upstream is used once");
                    let result = self.fetch_upstream(digest, size, layout, fetch).await;
                    lease.release().await;
                    result?;
                    break Got::Upstream;
                }
                None => {
                    waited = true;
                    tokio::time::sleep(POLL).await;
                }
            }
        };
        let c = &self.counters;
        match got {
            Got::Upstream => {
                c.upstream_blobs.fetch_add(1, Ordering::Relaxed);
                c.upstream_bytes.fetch_add(size, Ordering::Relaxed);
            }
            Got::Cache => {
                c.cache_blobs.fetch_add(1, Ordering::Relaxed);
                c.cache_bytes.fetch_add(size, Ordering::Relaxed);
            }
        }
        if waited {
            c.waited_blobs.fetch_add(1, Ordering::Relaxed);
            c.waited_bytes.fetch_add(size, Ordering::Relaxed);
        }
        Ok(size)
    }

    /// Fetches from upstream into the output, then uploads the output's blob to the cache.
    async fn fetch_upstream<F, Fut>(
        &self,
        digest: &Digest,
        size: u64,
        layout: &Layout,
        upstream: F,
    ) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<u64>>,
    {
        upstream().await?;
        let (this, digest2, layout) = (self.clone(), digest.clone(), layout.clone());
        tokio::task::spawn_blocking(move || this.upload(&digest2, size, &layout))
            .await
            .context("the cache upload stopped")?
            .with_context(|| {
                format!(
                    "blob {digest} is in the bundle, but could not be added to the blob cache {}",
                    self.location()
                )
            })?;
        Ok(())
    }

    /// Streams the output's blob into the cache; the object is completed only when what was
    /// read hashes to `digest`.
    fn upload(&self, digest: &Digest, size: u64, layout: &Layout) -> Result<(), CacheError> {
        let name = blob_name(digest);
        let mut reader = layout.open_blob_unchecked(digest)?;
        let mut writer = self.store.writer(&name, Some(size));
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut buf = vec![0u8; 1 << 20];
        let what = || format!("{} in {}", digest, layout.root().display());
        loop {
            let n = reader.read(&mut buf).map_err(|source| CacheError::Io {
                what: what(),
                source,
            })?;
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut hasher, &buf[..n]);
            writer.write_all(&buf[..n])?;
        }
        let actual = Digest::from_hasher(hasher);
        if &actual != digest || writer.written() != size {
            // Dropped unfinished: the upload is aborted, no object appears.
            writer.abort();
            return Err(CacheError::Io {
                what: what(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("it hashed to {actual} on its way to the cache; run `ferry verify`"),
                ),
            });
        }
        writer.complete()?;
        Ok(())
    }

    /// Streams a cache object into the output, completing it there only if it hashes to its
    /// name.
    async fn copy_into(
        &self,
        digest: &Digest,
        size: u64,
        layout: &Layout,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(), CacheError> {
        let (this, digest, layout) = (self.clone(), digest.clone(), layout.clone());
        let copied = Arc::new(AtomicU64::new(0));
        let progress = copied.clone();
        let task = tokio::task::spawn_blocking(move || {
            let name = blob_name(&digest);
            let mut reader = this.store.reader(&name, 0, size);
            let mut writer = layout.fresh_blob_writer(&digest)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buf).map_err(|source| CacheError::Io {
                    what: this.store.url(&name),
                    source,
                })?;
                if n == 0 {
                    break;
                }
                writer.write_all(&buf[..n])?;
                progress.fetch_add(n as u64, Ordering::Relaxed);
            }
            match writer.commit() {
                Ok(_) => Ok(()),
                Err(LayoutError::DigestMismatch { actual, size, .. }) => {
                    Err(CacheError::Tampered {
                        url: this.store.url(&name),
                        digest,
                        actual,
                        size,
                    })
                }
                Err(e) => Err(e.into()),
            }
        });
        // Progress from here, as the copy goes.
        let mut task = std::pin::pin!(task);
        let mut reported = 0;
        let result = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let now = copied.load(Ordering::Relaxed);
            on_bytes(now - reported);
            reported = now;
        };
        on_bytes(copied.load(Ordering::Relaxed) - reported);
        result.map_err(|e| CacheError::Io {
            what: "the copy from the cache".to_string(),
            source: std::io::Error::other(e),
        })?
    }

    /// Takes the blob's lease: Some when this build holds it now (kept alive until released),
    /// None when another build holds a live one.
    async fn acquire(&self, digest: &Digest) -> Result<Option<HeldLease>, CacheError> {
        let name = lease_name(digest);
        let lease = self.new_lease(digest);
        match self.put_lease(&name, &lease, PutMode::Create).await {
            Ok(e_tag) => return Ok(Some(self.hold(name, lease, e_tag))),
            Err(S3Error::Exists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let Some((current, e_tag)) = self.get_lease(&name).await? else {
            // Released between the two requests: try again at once.
            return Box::pin(self.acquire(digest)).await;
        };
        let live = current
            .as_ref()
            .is_some_and(|l| l.expires > unix_now() && l.owner != self.owner.owner);
        if live {
            return Ok(None);
        }
        // Stale (or unreadable): take it over, conditionally on the ETag seen.
        let taken = match self.update_lease(&name, &lease, e_tag.clone()).await {
            Err(S3Error::Exists { .. }) => {
                // Refused: another build took it over first, or the store does not compare
                // ETags as it should. If the same stale lease is still there, the latter:
                // replace it by a delete and a create (two builds doing this at once may both
                // win: a duplicate download, harmless, see the module's doc).
                match self.get_lease(&name).await? {
                    Some((_, now)) if now == e_tag => {
                        self.store.delete(&name).await?;
                        self.put_lease(&name, &lease, PutMode::Create).await
                    }
                    _ => Err(S3Error::Exists {
                        bucket: self.store.location().bucket.clone(),
                        key: self.store.key(&name),
                    }),
                }
            }
            other => other,
        };
        match taken {
            Ok(e_tag) => {
                let previous = current.map_or_else(
                    || "an unreadable lease".to_string(),
                    |l| format!("the lease of {} (expired at {})", l.owner, l.expires),
                );
                tracing::warn!(
                    "{}: took over {previous} for blob {digest}; its build stopped without releasing it",
                    self.store.url(&name)
                );
                self.counters
                    .taken_over_leases
                    .fetch_add(1, Ordering::Relaxed);
                Ok(Some(self.hold(name, lease, e_tag)))
            }
            // Another build took it over first, or it was released: look again later.
            Err(S3Error::Exists { .. } | S3Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn new_lease(&self, digest: &Digest) -> Lease {
        Lease {
            digest: digest.to_string(),
            expires: unix_now() + self.lifetime.as_secs().max(1),
            ..(*self.owner).clone()
        }
    }

    /// Writes a lease; returns the ETag of what was written.
    fn put_lease(
        &self,
        name: &str,
        lease: &Lease,
        mode: PutMode,
    ) -> impl Future<Output = Result<Option<String>, S3Error>> + Send + 'static {
        let (store, name) = (self.store.clone(), name.to_string());
        let bytes = serde_json::to_vec(lease).expect("a lease serialises");
        crate::s3::spawn(async move {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            store
                .client()
                .put_opts(&store.object_path(&name), PutPayload::from(bytes), options)
                .await
                .map(|r| r.e_tag)
                .map_err(|e| store.map_error("write", &name, e))
        })
    }

    /// Replaces a lease only if its ETag is still `e_tag` (`If-Match`); [`S3Error::Exists`]
    /// when it is not. RFC 9110 quotes ETags, and AWS S3 and MinIO take `If-Match` either way,
    /// but Ceph RGW (16.2) compares it with the bare value: a refusal of one spelling is tried
    /// once more with the other. Returns the new ETag.
    async fn update_lease(
        &self,
        name: &str,
        lease: &Lease,
        e_tag: Option<String>,
    ) -> Result<Option<String>, S3Error> {
        let update = |e_tag: Option<String>| {
            self.put_lease(
                name,
                lease,
                PutMode::Update(UpdateVersion {
                    e_tag,
                    version: None,
                }),
            )
        };
        match update(e_tag.clone()).await {
            Err(S3Error::Exists { .. }) if e_tag.is_some() => {
                let e_tag = e_tag.expect("checked");
                let other = match e_tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Some(bare) => bare.to_string(),
                    None => format!("\"{e_tag}\""),
                };
                update(Some(other)).await
            }
            other => other,
        }
    }

    /// Reads a lease and its ETag; None when there is none. An unreadable lease is `Some(None, _)`.
    fn get_lease(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<SeenLease>, S3Error>> + Send + 'static {
        let (store, name) = (self.store.clone(), name.to_string());
        crate::s3::spawn(async move {
            let result = match store
                .client()
                .get_opts(&store.object_path(&name), GetOptions::default())
                .await
            {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(store.map_error("read", &name, e)),
            };
            let e_tag = result.meta.e_tag.clone();
            let bytes = result
                .bytes()
                .await
                .map_err(|e| store.map_error("read", &name, e))?;
            Ok(Some((serde_json::from_slice(&bytes).ok(), e_tag)))
        })
    }

    /// Keeps a lease alive, rewriting it every third of its lifetime, until released.
    fn hold(&self, name: String, lease: Lease, e_tag: Option<String>) -> HeldLease {
        let this = self.clone();
        let (refresh_name, refresh_lease) = (name.clone(), lease.clone());
        let (task, abort) = futures_util::future::abortable(async move {
            let mut e_tag = e_tag;
            let mut lease = refresh_lease;
            loop {
                tokio::time::sleep(this.lifetime / 3).await;
                lease.expires = unix_now() + this.lifetime.as_secs().max(1);
                match this
                    .update_lease(&refresh_name, &lease, e_tag.clone())
                    .await
                {
                    Ok(tag) => e_tag = tag,
                    Err(S3Error::Exists { .. } | S3Error::NotFound { .. }) => {
                        tracing::warn!(
                            "{}: another build took over this build's lease of blob {}; both fetch it (the same bytes, checked by digest; only bandwidth is lost)",
                            this.store.url(&refresh_name),
                            lease.digest
                        );
                        return;
                    }
                    Err(e) => tracing::warn!("cannot renew the cache lease: {e}"),
                }
            }
        });
        // Runs on the S3 runtime until aborted; the join handle is not needed.
        drop(crate::s3::spawn(task));
        HeldLease {
            cache: self.clone(),
            name,
            abort,
        }
    }
}

/// A lease this build holds, renewed in the background until [`HeldLease::release`].
struct HeldLease {
    cache: BlobCache,
    name: String,
    abort: futures_util::future::AbortHandle,
}

impl HeldLease {
    /// Stops renewing and deletes the lease if it is still this build's.
    async fn release(self) {
        self.abort.abort();
        let cache = &self.cache;
        match cache.get_lease(&self.name).await {
            Ok(Some((Some(lease), _))) if lease.owner == cache.owner.owner => {
                if let Err(e) = cache.store.delete(&self.name).await {
                    tracing::warn!("cannot release the cache lease: {e}; it expires by itself");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot release the cache lease: {e}; it expires by itself"),
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        // A build failing or interrupted stops renewing at once; the lease then expires.
        self.abort.abort();
    }
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn lease_name(digest: &Digest) -> String {
    format!("leases/{}", digest.hex())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lease_lifetime() -> anyhow::Result<Duration> {
    match std::env::var(LEASE_SECONDS_ENV) {
        Ok(text) => {
            let seconds: u64 = text
                .trim()
                .parse()
                .ok()
                .filter(|s| *s >= 1)
                .with_context(|| {
                    format!(
                        "{LEASE_SECONDS_ENV}={text}: not a whole number of seconds (at least 1)"
                    )
                })?;
            Ok(Duration::from_secs(seconds))
        }
        Err(_) => Ok(DEFAULT_LEASE),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lease_json() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(blob_name(&d), format!("blobs/sha256/{}", d.hex()));
        assert_eq!(lease_name(&d), format!("leases/{}", d.hex()));
        let lease = Lease {
            owner: "h:1:00".into(),
            host: "h".into(),
            pid: 1,
            digest: d.to_string(),
            expires: 5,
        };
        let text = serde_json::to_string(&lease).unwrap();
        assert_eq!(serde_json::from_str::<Lease>(&text).unwrap(), lease);
    }
}
