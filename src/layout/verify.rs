//! Verification of a bundle: signature, presence of every referenced blob, every digest.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::digest::{Digest, hash_reader};
use crate::layout::graph::{Walk, walk};
use crate::layout::oci::{ANNOTATION_LOCK_DIGEST, Index};
use crate::layout::{Layout, LayoutError, SIGNATURE_FILE};
use crate::sign::{SignError, VerifyingKey};

/// Why a bundle could not be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The layout has no index.
    #[error(
        "{0} has no index.json: it is not a complete bundle (was `ferry build` interrupted? run it again)"
    )]
    NoIndex(String),
    /// The index is not valid JSON.
    #[error("index.json in {path} is not a valid OCI index: {reason}")]
    BadIndex {
        /// The bundle.
        path: String,
        /// The parse error.
        reason: String,
    },
    /// A key was given but the bundle has no signature.
    #[error(
        "{path} is not signed (no {SIGNATURE_FILE}); sign it with `ferry sign {path} --key cosign.key`"
    )]
    Unsigned {
        /// The bundle.
        path: String,
    },
    /// The signature does not verify.
    #[error("signature check failed for {path}/index.json with key {fingerprint}: {source}")]
    BadSignature {
        /// The bundle.
        path: String,
        /// The key used.
        fingerprint: String,
        /// The reason.
        source: SignError,
    },
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// What is wrong with one blob.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum BlobFault {
    /// Not in the bundle.
    #[error("missing")]
    Missing,
    /// Present but its bytes hash to another digest.
    #[error("corrupt: its content hashes to {actual}")]
    Corrupt {
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Present with a size other than its descriptor's.
    #[error("{actual} bytes, its descriptor says {expected}")]
    WrongSize {
        /// The descriptor's size.
        expected: u64,
        /// The file's size.
        actual: u64,
    },
    /// A document that could not be parsed.
    #[error("unreadable: {reason}")]
    Unreadable {
        /// Why.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot be read: {reason}")]
    Io {
        /// Why.
        reason: String,
    },
}

/// A blob with a fault and the entries that use it.
#[derive(Debug, Clone, Serialize)]
pub struct BlobProblem {
    /// The blob.
    pub digest: Digest,
    /// What is wrong.
    #[serde(flatten)]
    pub fault: BlobFault,
    /// References of the entries that need it.
    pub used_by: Vec<String>,
}

/// The outcome of verifying a bundle whose index could be read.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// For a delta bundle: the index digest of the bundle it builds on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_base: Option<Digest>,
    /// For a delta bundle: blobs left to the base (not in this bundle, not checked here).
    pub left_to_base: usize,
    /// Fingerprint of the key that verified the signature; None with `--no-signature`.
    pub signed_by: Option<String>,
    /// Entries in the index.
    pub entries: usize,
    /// Distinct blobs referenced.
    pub blobs: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Faults found, sorted by digest.
    pub problems: Vec<BlobProblem>,
}

impl VerifyReport {
    /// True when every blob is present and correct.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads and parses `index.json`, checking its signature when a key is given.
pub fn read_verified_index(
    layout: &Layout,
    key: Option<&VerifyingKey>,
) -> Result<(Vec<u8>, Index), VerifyError> {
    let path = layout.root().display().to_string();
    let bytes = layout
        .read_index_bytes()?
        .ok_or_else(|| VerifyError::NoIndex(path.clone()))?;
    if let Some(key) = key {
        let signature = layout
            .read_signature()?
            .ok_or_else(|| VerifyError::Unsigned { path: path.clone() })?;
        key.verify(&bytes, &signature)
            .map_err(|source| VerifyError::BadSignature {
                path: path.clone(),
                fingerprint: key.fingerprint(),
                source,
            })?;
    }
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| VerifyError::BadIndex {
        path,
        reason: e.to_string(),
    })?;
    Ok((bytes, index))
}

/// Verifies the signature (when a key is given), then every referenced blob, hashing in parallel.
///
/// `on_bytes` is called from worker threads with the number of bytes just hashed.
pub fn verify(
    layout: &Layout,
    key: Option<&VerifyingKey>,
    threads: usize,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport, VerifyError> {
    verify_with(layout, key, Some((threads, on_bytes)))
}

/// As [`verify`], but blobs other than manifests and configs are only checked for presence
/// and size, not hashed: for importers that read each blob once, checking its digest on
/// the way (reading packed volumes twice from USB media would double the import's time).
pub fn verify_structure(
    layout: &Layout,
    key: Option<&VerifyingKey>,
) -> Result<VerifyReport, VerifyError> {
    verify_with(layout, key, None)
}

fn verify_with(
    layout: &Layout,
    key: Option<&VerifyingKey>,
    hashing: Option<(usize, &(dyn Fn(u64) + Sync))>,
) -> Result<VerifyReport, VerifyError> {
    let (_, index) = read_verified_index(layout, key)?;
    let Walk {
        entries,
        broken,
        checked_documents,
    } = walk(layout, &index);

    // Every referenced blob, its expected size, and who uses it.
    let mut blobs: BTreeMap<Digest, (u64, Vec<String>)> = BTreeMap::new();
    for entry in &entries {
        for blob in &entry.blobs {
            let slot = blobs
                .entry(blob.digest.clone())
                .or_insert((blob.size, Vec::new()));
            if !slot.1.contains(&entry.reference) {
                slot.1.push(entry.reference.clone());
            }
        }
    }
    if let Some(lock) = index.annotations.get(ANNOTATION_LOCK_DIGEST) {
        let digest = Digest::parse(lock).map_err(|e| VerifyError::BadIndex {
            path: layout.root().display().to_string(),
            reason: format!("annotation {ANNOTATION_LOCK_DIGEST}: {e}"),
        })?;
        let size = layout.blob_size(&digest)?.unwrap_or(0);
        blobs
            .entry(digest)
            .or_insert((size, Vec::new()))
            .1
            .push("lock file".to_string());
    }

    // A delta's omitted blobs are on site already (in its base): absent here is expected.
    let omitted = crate::layout::delta::read_omitted(layout, &index)?;
    let mut left_to_base = 0;
    if let Some(omitted) = &omitted {
        for digest in omitted.blobs.keys() {
            if blobs.contains_key(digest) && !layout.has_blob(digest) {
                blobs.remove(digest);
                left_to_base += 1;
            }
        }
    }

    let mut problems: BTreeMap<Digest, BlobFault> = BTreeMap::new();
    for doc in broken {
        let (digest, fault) = match doc.error {
            LayoutError::MissingBlob { digest, .. } => (digest, BlobFault::Missing),
            LayoutError::DigestMismatch {
                expected, actual, ..
            } => (expected, BlobFault::Corrupt { actual }),
            LayoutError::BadDocument { digest, reason, .. } => {
                (digest, BlobFault::Unreadable { reason })
            }
            LayoutError::TooLarge { digest, size } => (
                digest,
                BlobFault::Unreadable {
                    reason: format!("{size} bytes, too large for a manifest"),
                },
            ),
            other => return Err(other.into()),
        };
        problems.insert(digest, fault);
    }

    // Hash the rest, largest first so the threads finish together.
    let work: Vec<(Digest, u64)> = blobs
        .iter()
        .filter(|(d, _)| !checked_documents.contains(*d) && !problems.contains_key(*d))
        .map(|(d, (size, _))| (d.clone(), *size))
        .collect();
    let (found, hashed) = match hashing {
        Some((threads, on_bytes)) => hash_blobs(layout, work, threads, on_bytes),
        None => check_sizes(layout, work)?,
    };
    problems.extend(found);

    let checked_bytes: u64 = checked_documents
        .iter()
        .filter_map(|d| blobs.get(d).map(|b| b.0))
        .sum();
    Ok(VerifyReport {
        delta_base: omitted.map(|o| o.base),
        left_to_base,
        signed_by: key.map(|k| k.fingerprint()),
        entries: entries.len(),
        blobs: blobs.len(),
        bytes: hashed + checked_bytes,
        problems: problems
            .into_iter()
            .map(|(digest, fault)| BlobProblem {
                used_by: blobs.get(&digest).map(|b| b.1.clone()).unwrap_or_default(),
                digest,
                fault,
            })
            .collect(),
    })
}

/// Checks that blobs are present with the expected sizes, without reading them: the faults
/// found and the bytes of the blobs present.
pub fn check_sizes(
    layout: &Layout,
    work: Vec<(Digest, u64)>,
) -> Result<(Vec<(Digest, BlobFault)>, u64), VerifyError> {
    let mut found = Vec::new();
    let mut present = 0;
    for (digest, expected) in work {
        match layout.blob_size(&digest)? {
            None => found.push((digest, BlobFault::Missing)),
            Some(actual) if actual != expected => {
                found.push((digest, BlobFault::WrongSize { expected, actual }))
            }
            Some(actual) => present += actual,
        }
    }
    Ok((found, present))
}

/// Hashes blobs in parallel, largest first so the threads finish together; returns the
/// faults found and the bytes of the blobs that are correct.
pub fn hash_blobs(
    layout: &Layout,
    mut work: Vec<(Digest, u64)>,
    threads: usize,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> (Vec<(Digest, BlobFault)>, u64) {
    if layout.is_packed() {
        // From USB sticks, the media's order: each volume is needed once.
        work.sort_by_key(|w| layout.blob_order_key(&w.0));
    } else {
        work.sort_by_key(|w| std::cmp::Reverse(w.1));
    }
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let hashed = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(work.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((digest, expected_size)) = work.get(i) else {
                        break;
                    };
                    if let Some(fault) = check_blob(layout, digest, *expected_size, on_bytes) {
                        found.lock().unwrap().push((digest.clone(), fault));
                    } else {
                        hashed.fetch_add(*expected_size, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (found.into_inner().unwrap(), hashed.into_inner())
}

fn check_blob(
    layout: &Layout,
    digest: &Digest,
    expected_size: u64,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Option<BlobFault> {
    let reader = match layout.open_blob_unchecked(digest) {
        Ok(r) => r,
        Err(LayoutError::MissingBlob { .. }) => return Some(BlobFault::Missing),
        Err(e) => {
            return Some(BlobFault::Io {
                reason: e.to_string(),
            });
        }
    };
    let size = reader.size();
    match hash_reader(reader, on_bytes).map(|(h, n)| (Digest::from_hasher(h), n)) {
        Ok((actual, _)) if &actual != digest => Some(BlobFault::Corrupt { actual }),
        Ok(_) if size != expected_size => Some(BlobFault::WrongSize {
            expected: expected_size,
            actual: size,
        }),
        Ok(_) => None,
        Err(e) => Some(BlobFault::Io {
            reason: e.to_string(),
        }),
    }
}
