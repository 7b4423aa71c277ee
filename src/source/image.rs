//! Container images: resolving a manifest entry to digests, and collecting what a locked
//! image needs into the store.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::layout::Layout;
use crate::layout::oci::{
    DOCKER_CONFIG, Descriptor, Index, Manifest, OCI_CONFIG, is_index, is_manifest,
};
use crate::manifest::ImageSpec;
use crate::manifest::lock::{LockedImage, LockedManifest, Selection, platform_strings};
use crate::manifest::reference::Reference;
use crate::source::registry::{RegistryError, RegistrySource};

/// Docker's annotation naming the image an attestation manifest belongs to.
const ATTESTATION_FOR: &str = "vnd.docker.reference.digest";

/// Errors resolving or collecting an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A registry call failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// A requested platform is not in the image.
    #[error(
        "{reference} has no image for {platform}; it has {available}. Change `platforms` for this image in the manifest"
    )]
    MissingPlatform {
        /// The image.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// What the image offers.
        available: String,
    },
    /// A document could not be parsed.
    #[error("{reference}: {what} {digest} is not valid: {reason}")]
    BadDocument {
        /// The image.
        reference: String,
        /// Manifest, index or config.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// Something that is not a container image.
    #[error("{reference} is a {media_type}, not a container image or index")]
    NotAnImage {
        /// The reference.
        reference: String,
        /// What it is.
        media_type: String,
    },
    /// The lock no longer reproduces.
    #[error(
        "{reference}: the filtered index built from the lock hashes to {actual}, the lock says {expected}. Regenerate the lock with `ferry lock`"
    )]
    FilteredIndexChanged {
        /// The image.
        reference: String,
        /// Lock digest.
        expected: Digest,
        /// Built digest.
        actual: Digest,
    },
}

fn parse<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    reference: &str,
    what: &'static str,
    digest: &Digest,
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::BadDocument {
        reference: reference.to_string(),
        what,
        digest: digest.clone(),
        reason: e.to_string(),
    })
}

fn platform_label(descriptor: &Descriptor) -> String {
    descriptor
        .platform
        .as_ref()
        .map(|p| p.display())
        .unwrap_or_else(|| "unknown/unknown".to_string())
}

fn locked_manifest(descriptor: &Descriptor) -> LockedManifest {
    LockedManifest {
        platform: platform_label(descriptor),
        digest: descriptor.digest.clone(),
        media_type: descriptor.media_type.clone(),
        size: descriptor.size,
    }
}

/// Resolves an image entry of the manifest: tag to digest, platform filter applied.
pub async fn resolve(source: &RegistrySource, spec: &ImageSpec) -> Result<LockedImage, ImageError> {
    let reference = spec.reference.to_string();
    let fetched = source.fetch_manifest(&spec.reference).await?;
    let base = LockedImage {
        reference: reference.clone(),
        platforms: platform_strings(spec),
        resolved: fetched.digest.clone(),
        resolved_media_type: fetched.media_type.clone(),
        selection: Selection::Whole,
        digest: fetched.digest.clone(),
        media_type: fetched.media_type.clone(),
        size: fetched.bytes.len() as u64,
        manifests: Vec::new(),
        referrer_mode: None,
        referrers: Vec::new(),
        verified: Vec::new(),
    };
    if is_manifest(&fetched.media_type) {
        let manifest: Manifest = parse(&fetched.bytes, &reference, "manifest", &fetched.digest)?;
        let platform = image_platform(source, &spec.reference, &manifest).await?;
        if let Some(p) = &platform {
            for wanted in &spec.platforms {
                if !wanted.matches(&p.os, &p.architecture, p.variant.as_deref()) {
                    return Err(ImageError::MissingPlatform {
                        reference,
                        platform: wanted.to_string(),
                        available: format!("only {} (a single-platform image)", p.display()),
                    });
                }
            }
        }
        return Ok(LockedImage {
            manifests: vec![LockedManifest {
                platform: platform
                    .map(|p| p.display())
                    .unwrap_or_else(|| "unknown/unknown".to_string()),
                digest: fetched.digest.clone(),
                media_type: fetched.media_type.clone(),
                size: fetched.bytes.len() as u64,
            }],
            ..base
        });
    }
    if !is_index(&fetched.media_type) {
        return Err(ImageError::NotAnImage {
            reference,
            media_type: fetched.media_type,
        });
    }
    let index: Index = parse(&fetched.bytes, &reference, "index", &fetched.digest)?;
    // Pinned by index digest: the cluster will ask for exactly that index, keep all of it.
    if spec.reference.digest().is_some() {
        return Ok(LockedImage {
            manifests: index.manifests.iter().map(locked_manifest).collect(),
            ..base
        });
    }
    let runnable: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| !p.is_unknown()))
        .collect();
    let mut selected: Vec<&Descriptor> = Vec::new();
    for wanted in &spec.platforms {
        let found = runnable.iter().find(|d| {
            let p = d.platform.as_ref().expect("filtered above");
            wanted.matches(&p.os, &p.architecture, p.variant.as_deref())
        });
        match found {
            Some(d) if !selected.iter().any(|s| s.digest == d.digest) => selected.push(d),
            Some(_) => {}
            None => {
                return Err(ImageError::MissingPlatform {
                    reference,
                    platform: wanted.to_string(),
                    available: runnable
                        .iter()
                        .map(|d| platform_label(d))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    let keep: BTreeSet<&Digest> = selected.iter().map(|d| &d.digest).collect();
    if runnable.iter().all(|d| keep.contains(&d.digest)) {
        return Ok(LockedImage {
            manifests: index.manifests.iter().map(locked_manifest).collect(),
            ..base
        });
    }
    if let [only] = selected.as_slice() {
        return Ok(LockedImage {
            selection: Selection::Single,
            digest: only.digest.clone(),
            media_type: only.media_type.clone(),
            size: only.size,
            manifests: vec![locked_manifest(only)],
            ..base
        });
    }
    let (bytes, kept) = filtered_index(&fetched.bytes, &index, &keep, &reference, &fetched.digest)?;
    Ok(LockedImage {
        selection: Selection::Filtered,
        digest: Digest::of_bytes(&bytes),
        media_type: fetched.media_type.clone(),
        size: bytes.len() as u64,
        manifests: kept.iter().map(|d| locked_manifest(d)).collect(),
        ..base
    })
}

/// Writes an index holding only the selected platforms (and their attestations).
///
/// Works on the upstream JSON as a value so every other field survives; the output is
/// compact JSON, a pure function of the upstream bytes and the selection.
fn filtered_index<'a>(
    upstream: &[u8],
    index: &'a Index,
    keep: &BTreeSet<&Digest>,
    reference: &str,
    digest: &Digest,
) -> Result<(Vec<u8>, Vec<&'a Descriptor>), ImageError> {
    let wanted = |d: &Descriptor| {
        keep.contains(&d.digest)
            || d.annotations
                .get(ATTESTATION_FOR)
                .and_then(|a| Digest::parse(a).ok())
                .is_some_and(|a| keep.contains(&a))
    };
    let kept: Vec<&Descriptor> = index.manifests.iter().filter(|d| wanted(d)).collect();
    let mut value: serde_json::Value = parse(upstream, reference, "index", digest)?;
    if let Some(list) = value.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|entry| {
            serde_json::from_value::<Descriptor>(entry.clone()).is_ok_and(|d| wanted(&d))
        });
    }
    let bytes = serde_json::to_vec(&value).expect("a JSON value always serialises");
    Ok((bytes, kept))
}

/// The platform an image's config states, when the config is an image config.
async fn image_platform(
    source: &RegistrySource,
    reference: &Reference,
    manifest: &Manifest,
) -> Result<Option<crate::layout::oci::OciPlatform>, ImageError> {
    let media_type = manifest.config.media_type.as_str();
    if media_type != OCI_CONFIG && media_type != DOCKER_CONFIG {
        return Ok(None);
    }
    if manifest.config.size > crate::layout::MAX_MANIFEST_SIZE {
        return Ok(None);
    }
    let bytes = source
        .fetch_small_blob(reference, &manifest.config.digest)
        .await?;
    let config: crate::layout::oci::ImageConfigPlatform = parse(
        &bytes,
        &reference.to_string(),
        "config",
        &manifest.config.digest,
    )?;
    Ok(Some(crate::layout::oci::OciPlatform {
        os: config.os,
        architecture: config.architecture,
        variant: config.variant,
    }))
}

/// A blob to fetch, with a repository that has it.
#[derive(Debug, Clone)]
pub struct BlobJob {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// A repository to fetch it from.
    pub repository: Reference,
}

/// Stores the documents of a locked image (fetching those the store lacks) and returns the
/// blobs its manifests name.
pub async fn collect(
    source: &RegistrySource,
    layout: &Layout,
    locked: &LockedImage,
) -> Result<Vec<BlobJob>, ImageError> {
    let reference: Reference =
        locked
            .reference
            .parse()
            .map_err(|e: crate::manifest::reference::ReferenceError| {
                ImageError::Registry(RegistryError::Failed {
                    host: String::new(),
                    reference: locked.reference.clone(),
                    message: e.to_string(),
                })
            })?;
    // The entry document itself.
    match locked.selection {
        Selection::Whole | Selection::Single => {
            document(source, layout, &reference, &locked.digest).await?;
        }
        Selection::Filtered => {
            if !layout.has_blob(&locked.digest) {
                let upstream = source
                    .fetch_manifest(&reference.with_digest(locked.resolved.as_str()))
                    .await?;
                let index: Index = parse(
                    &upstream.bytes,
                    &locked.reference,
                    "index",
                    &upstream.digest,
                )?;
                let keep: BTreeSet<&Digest> = locked.manifests.iter().map(|m| &m.digest).collect();
                let (bytes, _) = filtered_index(
                    &upstream.bytes,
                    &index,
                    &keep,
                    &locked.reference,
                    &upstream.digest,
                )?;
                let actual = Digest::of_bytes(&bytes);
                if actual != locked.digest {
                    return Err(ImageError::FilteredIndexChanged {
                        reference: locked.reference.clone(),
                        expected: locked.digest.clone(),
                        actual,
                    });
                }
                layout.write_blob(&actual, &bytes)?;
            }
        }
    }
    let mut jobs = Vec::new();
    for child in &locked.manifests {
        let bytes = document(source, layout, &reference, &child.digest).await?;
        if !is_manifest(&child.media_type) {
            continue;
        }
        let manifest: Manifest = parse(&bytes, &locked.reference, "manifest", &child.digest)?;
        for blob in manifest.blobs() {
            jobs.push(BlobJob {
                digest: blob.digest.clone(),
                size: blob.size,
                repository: reference.clone(),
            });
        }
    }
    Ok(jobs)
}

/// A manifest or index from the store, or fetched by digest and stored.
async fn document(
    source: &RegistrySource,
    layout: &Layout,
    reference: &Reference,
    digest: &Digest,
) -> Result<Vec<u8>, ImageError> {
    if layout.has_blob(digest) {
        return Ok(layout.read_document(digest)?);
    }
    let fetched = source
        .fetch_manifest(&reference.with_digest(digest.as_str()))
        .await?;
    layout.write_blob(&fetched.digest, &fetched.bytes)?;
    Ok(fetched.bytes)
}
