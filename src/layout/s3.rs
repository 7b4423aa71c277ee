//! The layout's third backend: a bundle on S3-compatible object storage, object for file
//! (`oci-layout`, `index.json`, `index.json.sig`, `blobs/sha256/<hex>` under the prefix), so
//! `aws s3 cp --recursive` copies a bundle either way.
//!
//! Reads are ranged GETs ([`crate::s3::ObjectReader`]) behind the same [`super::BlobReader`]
//! that checks digests. Writes stream: a blob is uploaded as it is written (multipart past one
//! part, memory flat), hashed on the way, and completed only when its digest matches; a
//! mismatch aborts the upload, so no object appears. A blob of unknown digest is uploaded under
//! `.ferry-tmp/` and copied server-side to its name once hashed. The index is written after
//! every blob it names, so a reader never sees an index naming a missing blob.
//!
//! Multipart uploads a killed run left are not aborted by the next run: another build may share
//! the prefix and be uploading now, and S3 cannot tell whose an upload is. They hold no object
//! and are invisible to readers; a bucket lifecycle rule (`AbortIncompleteMultipartUpload`,
//! e.g. after 1 day) deletes their parts (README, "Bundles on S3").

use std::collections::HashMap;
use std::sync::Mutex;

use crate::digest::Digest;
use crate::s3::{self, S3Location, S3Store};

use super::LayoutError;

/// Prefix of the objects of blobs being uploaded before their digest is known.
pub(crate) const TMP_PREFIX: &str = ".ferry-tmp";

/// A bundle's bucket and prefix, with the sizes of its blob objects (listed once).
#[derive(Debug)]
pub struct S3Backend {
    pub(crate) store: S3Store,
    /// Blob objects by hex digest: listed at first need, kept current by this process's writes.
    sizes: Mutex<Option<HashMap<String, u64>>>,
}

impl S3Backend {
    pub(crate) fn open(location: S3Location) -> Result<S3Backend, LayoutError> {
        let store = S3Store::open(location, &s3::default_options())?;
        Ok(S3Backend {
            store,
            sizes: Mutex::new(None),
        })
    }

    pub(crate) fn blob_name(digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }

    fn with_sizes<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, u64>) -> T,
    ) -> Result<T, LayoutError> {
        let mut guard = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let listed = s3::wait(self.store.list("blobs/sha256"))?;
            *guard = Some(
                listed
                    .into_iter()
                    .filter_map(|o| {
                        let hex = o.name.strip_prefix("blobs/sha256/")?.to_string();
                        Some((hex, o.size))
                    })
                    .collect(),
            );
        }
        Ok(f(guard.as_mut().expect("listed above")))
    }

    /// A blob object's size, or None when there is none.
    pub(crate) fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, LayoutError> {
        self.with_sizes(|s| s.get(digest.hex()).copied())
    }

    /// Records a blob this process stored.
    pub(crate) fn note(&self, digest: &Digest, size: u64) {
        let _ = self.with_sizes(|s| s.insert(digest.hex().to_string(), size));
    }

    /// Deletes a blob object.
    pub(crate) fn remove(&self, digest: &Digest) -> Result<(), LayoutError> {
        s3::wait(self.store.delete(&Self::blob_name(digest)))?;
        self.with_sizes(|s| s.remove(digest.hex()))?;
        Ok(())
    }

    /// Bytes of every blob object.
    pub(crate) fn total(&self) -> u64 {
        self.with_sizes(|s| s.values().sum()).unwrap_or(0)
    }

    /// Reads a small object whole, or None when it is absent.
    pub(crate) fn get(&self, name: &str) -> Result<Option<Vec<u8>>, LayoutError> {
        Ok(s3::wait(self.store.get(name))?)
    }

    /// Writes a small object whole (one PUT: readers see the old object or the new).
    pub(crate) fn put(&self, name: &str, bytes: &[u8]) -> Result<(), LayoutError> {
        Ok(s3::wait(self.store.put(name, bytes.to_vec()))?)
    }

    /// Deletes an object (absent is fine).
    pub(crate) fn delete(&self, name: &str) -> Result<(), LayoutError> {
        Ok(s3::wait(self.store.delete(name))?)
    }

    /// A fresh name for an upload whose digest is not known yet.
    pub(crate) fn temp_name() -> String {
        use rand::Rng;
        format!(
            "{TMP_PREFIX}/{}-{:016x}",
            std::process::id(),
            rand::thread_rng().r#gen::<u64>()
        )
    }

    /// Moves a finished temporary upload to its blob name (server-side copy, then delete).
    pub(crate) fn promote(
        &self,
        temp: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(), LayoutError> {
        if self.blob_size(digest)? != Some(size) {
            s3::wait(self.store.copy(temp, &Self::blob_name(digest)))?;
        }
        self.delete(temp)?;
        self.note(digest, size);
        Ok(())
    }
}
