//! Referrers of an image upstream: signatures, attestations and SBOMs.
//!
//! For each subject (the locked entry, each kept platform manifest) `lock` asks the OCI 1.1
//! referrers API (`GET /v2/<name>/referrers/<digest>`); on a registry without it, the
//! referrers tag schema (`<name>:sha256-<hex>`, an index of descriptors). cosign's own tags
//! (`sha256-<hex>.sig`, `.att`, `.sbom`) are looked at in every case, since cosign writes
//! them even where the API exists. What is found is recorded by digest in the lock; `build`
//! stores the manifests byte for byte and their blobs, linked to their subject.
//!
//! Listings are bounded: at most [`MAX_REFERRERS`] referrers per subject, each listing page
//! at most 4 MiB, at most [`MAX_PAGES`] pages, each referrer's blobs at most
//! [`MAX_REFERRER_BYTES`] in total. Past a bound, lock stops with an error instead of
//! fetching without end.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::distribution::Limited;
use crate::layout::Layout;
use crate::layout::oci::{Index, Manifest, is_index, is_manifest};
use crate::manifest::ReferrersMode;
use crate::manifest::lock::{LockedImage, LockedReferrer};
use crate::manifest::reference::Reference;
use crate::source::image::BlobJob;
use crate::source::registry::{FetchedManifest, RegistryError, RegistrySource};

/// Most referrers recorded per subject (all listings and cosign tags together).
pub const MAX_REFERRERS: usize = 64;
/// Most pages of one referrers listing followed.
pub const MAX_PAGES: usize = 8;
/// Most bytes of blobs (config and layers) one referrer may have.
pub const MAX_REFERRER_BYTES: u64 = 64 << 20;

/// cosign's signature artifact type (OCI 1.1 mode).
pub const COSIGN_SIGNATURE_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Artifact types that are signatures (`referrers: signatures` carries these).
pub const SIGNATURE_TYPES: &[&str] = &[
    COSIGN_SIGNATURE_TYPE,
    "application/vnd.cncf.notary.signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];
/// The kind (`dev.ferry.kind`) of referrer entries in a bundle.
pub const KIND: &str = "referrer";
/// Annotation of a referrer entry naming its subject's digest.
pub const ANNOTATION_SUBJECT: &str = "dev.ferry.referrer.subject";

/// Errors finding or collecting referrers; each names the image and the next step.
#[derive(Debug, thiserror::Error)]
pub enum ReferrerError {
    /// A registry call failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// A listing past the bounds.
    #[error(
        "{image}: the referrers of {subject} go past ferry's bound ({what}; at most {MAX_REFERRERS} referrers per manifest, {MAX_PAGES} listing pages of 4 MiB, {} MiB of blobs per referrer). Set `referrers: signatures` or `referrers: none` for this image in the manifest, or clean up its referrers upstream",
        MAX_REFERRER_BYTES >> 20
    )]
    Unbounded {
        /// The image.
        image: String,
        /// The subject whose referrers were listed.
        subject: Digest,
        /// What went past the bound.
        what: String,
    },
    /// A listed referrer that does not refer to the image.
    #[error(
        "{image}: referrer {referrer} is listed for {subject} but its subject is {found}; the registry's referrers listing or tag {tag} is wrong. Remove the stray referrer upstream, or set `referrers: none` for this image"
    )]
    SubjectMismatch {
        /// The image.
        image: String,
        /// The referrer manifest.
        referrer: Digest,
        /// The subject it was listed for.
        subject: Digest,
        /// What its `subject` field says.
        found: String,
        /// The listing it came from.
        tag: String,
    },
    /// A referrer that is not a manifest ferry can carry.
    #[error(
        "{image}: referrer {referrer} is not valid: {reason}. Remove it upstream, or set `referrers: none` for this image"
    )]
    Bad {
        /// The image.
        image: String,
        /// The referrer.
        referrer: String,
        /// Why.
        reason: String,
    },
}

/// A referrer found upstream, with its manifest.
#[derive(Debug, Clone)]
pub struct Found {
    /// What the lock records.
    pub locked: LockedReferrer,
    /// The manifest's bytes.
    pub bytes: Vec<u8>,
    /// The manifest, parsed.
    pub manifest: Manifest,
}

impl Found {
    /// Whether this is a signature (a cosign `.sig` tag or a signature artifact type).
    pub fn is_signature(&self) -> bool {
        is_signature(&self.locked)
    }
}

/// Whether a locked referrer is a signature.
pub fn is_signature(referrer: &LockedReferrer) -> bool {
    referrer.tag.as_deref().is_some_and(|t| t.ends_with(".sig"))
        || referrer
            .artifact_type
            .as_deref()
            .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
}

/// cosign's tag for `digest` with `suffix` (`sig`, `att`, `sbom`): `sha256-<hex>.<suffix>`;
/// without a suffix, the referrers tag schema's tag.
pub fn tag_for(digest: &Digest, suffix: Option<&str>) -> String {
    let base = digest.as_str().replacen(':', "-", 1);
    match suffix {
        Some(s) => format!("{base}.{s}"),
        None => base,
    }
}

fn with_tag(repository: &Reference, tag: &str) -> Reference {
    format!("{}:{tag}", repository.name())
        .parse()
        .expect("a repository name and a cosign tag make a reference")
}

/// The referrers of `subject` in `repository` that `mode` asks for.
pub async fn discover(
    source: &RegistrySource,
    repository: &Reference,
    subject: &Digest,
    mode: ReferrersMode,
) -> Result<Vec<Found>, ReferrerError> {
    if mode == ReferrersMode::None {
        return Ok(Vec::new());
    }
    let image = repository.to_string();
    let unbounded = |what: String| ReferrerError::Unbounded {
        image: image.clone(),
        subject: subject.clone(),
        what,
    };
    let mut found: Vec<Found> = Vec::new();
    let mut seen: BTreeSet<Digest> = BTreeSet::new();

    // cosign's tags first: a referrer found both ways keeps its tag.
    let suffixes: &[&str] = match mode {
        ReferrersMode::All => &["sig", "att", "sbom"],
        _ => &["sig"],
    };
    for suffix in suffixes {
        let tag = tag_for(subject, Some(suffix));
        let Some(fetched) = optional(source.fetch_manifest(&with_tag(repository, &tag)).await)?
        else {
            continue;
        };
        if seen.insert(fetched.digest.clone()) {
            found.push(checked(&image, fetched, subject, Some(tag), None)?);
        }
    }

    // Then the referrers API, else the tag schema.
    let descriptors = listing(source, repository, subject, mode, &unbounded).await?;
    for d in descriptors {
        if mode == ReferrersMode::Signatures
            && !d
                .artifact_type
                .as_deref()
                .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
        {
            continue;
        }
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        if found.len() >= MAX_REFERRERS {
            return Err(unbounded(format!("more than {MAX_REFERRERS} referrers")));
        }
        let fetched = source
            .fetch_manifest(&repository.with_digest(d.digest.as_str()))
            .await?;
        let listed = format!("{}/referrers listing", repository.name());
        found.push(checked(&image, fetched, subject, None, Some(listed))?);
    }
    Ok(found)
}

/// The descriptors listed for `subject`: the referrers API's, else the tag schema index's.
async fn listing(
    source: &RegistrySource,
    repository: &Reference,
    subject: &Digest,
    mode: ReferrersMode,
    unbounded: &impl Fn(String) -> ReferrerError,
) -> Result<Vec<crate::layout::oci::Descriptor>, ReferrerError> {
    // With `signatures`, one filtered listing per signature type keeps attestations (many,
    // and large) from counting against the bound.
    let filters: Vec<Option<&str>> = match mode {
        ReferrersMode::Signatures => SIGNATURE_TYPES.iter().map(|t| Some(*t)).collect(),
        _ => vec![None],
    };
    let mut out = Vec::new();
    for filter in filters {
        let mut page: Option<String> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(unbounded(format!("more than {MAX_PAGES} listing pages")));
            }
            let Some(answer) = source
                .referrers_page(repository, subject, filter, page.as_deref())
                .await?
            else {
                // No referrers API: the tag schema (an index at `sha256-<hex>`).
                return tag_schema(source, repository, subject, mode, unbounded).await;
            };
            let Limited::Body(body) = answer.body else {
                return Err(unbounded("a listing page larger than 4 MiB".to_string()));
            };
            let index: Index = serde_json::from_slice(&body).map_err(|e| ReferrerError::Bad {
                image: repository.to_string(),
                referrer: format!("listing of {subject}"),
                reason: format!("the referrers listing is not an image index: {e}"),
            })?;
            out.extend(index.manifests.into_iter().filter(|d| {
                !answer.filtered || filter.is_none() || d.artifact_type.as_deref() == filter
            }));
            if out.len() > MAX_REFERRERS {
                return Err(unbounded(format!("more than {MAX_REFERRERS} referrers")));
            }
            match answer.next {
                Some(next) => page = Some(next),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The referrers tag schema: `<name>:sha256-<hex>` is an index of the referrers' descriptors.
async fn tag_schema(
    source: &RegistrySource,
    repository: &Reference,
    subject: &Digest,
    mode: ReferrersMode,
    unbounded: &impl Fn(String) -> ReferrerError,
) -> Result<Vec<crate::layout::oci::Descriptor>, ReferrerError> {
    let tag = tag_for(subject, None);
    let fetched = match source.fetch_manifest(&with_tag(repository, &tag)).await {
        Ok(f) => f,
        Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
        Err(RegistryError::Failed { message, .. }) if message.contains("larger than 4 MiB") => {
            return Err(unbounded(format!("tag {tag} holds more than 4 MiB")));
        }
        Err(e) => return Err(e.into()),
    };
    if !is_index(&fetched.media_type) {
        return Ok(Vec::new());
    }
    let index: Index = serde_json::from_slice(&fetched.bytes).map_err(|e| ReferrerError::Bad {
        image: repository.to_string(),
        referrer: format!("{}:{tag}", repository.name()),
        reason: e.to_string(),
    })?;
    // Only what is carried counts against the bound (the index itself is at most 4 MiB).
    let wanted: Vec<_> = index
        .manifests
        .into_iter()
        .filter(|d| {
            mode == ReferrersMode::All
                || d.artifact_type
                    .as_deref()
                    .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
        })
        .collect();
    if wanted.len() > MAX_REFERRERS {
        return Err(unbounded(format!(
            "tag {tag} lists {} referrers",
            wanted.len()
        )));
    }
    Ok(wanted)
}

/// `Ok(None)` for a reference that is not there.
fn optional(
    r: Result<FetchedManifest, RegistryError>,
) -> Result<Option<FetchedManifest>, ReferrerError> {
    match r {
        Ok(f) => Ok(Some(f)),
        Err(RegistryError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks a fetched referrer: a manifest, within the bounds, and (when it came from a listing)
/// whose `subject` is the subject it was listed for.
fn checked(
    image: &str,
    fetched: FetchedManifest,
    subject: &Digest,
    tag: Option<String>,
    listed: Option<String>,
) -> Result<Found, ReferrerError> {
    let bad = |reason: String| ReferrerError::Bad {
        image: image.to_string(),
        referrer: fetched.digest.to_string(),
        reason,
    };
    if !is_manifest(&fetched.media_type) {
        return Err(bad(format!(
            "it is a {}, not an image or artifact manifest",
            fetched.media_type
        )));
    }
    let manifest: Manifest =
        serde_json::from_slice(&fetched.bytes).map_err(|e| bad(e.to_string()))?;
    if let Some(listed) = &listed {
        let found = manifest.subject.as_ref().map(|s| &s.digest);
        if found != Some(subject) {
            return Err(ReferrerError::SubjectMismatch {
                image: image.to_string(),
                referrer: fetched.digest.clone(),
                subject: subject.clone(),
                found: found.map_or("missing".to_string(), |d| d.to_string()),
                tag: listed.clone(),
            });
        }
    }
    let bytes: u64 = manifest.blobs().map(|b| b.size).sum();
    if bytes > MAX_REFERRER_BYTES {
        return Err(ReferrerError::Unbounded {
            image: image.to_string(),
            subject: subject.clone(),
            what: format!("referrer {} has {bytes} bytes of blobs", fetched.digest),
        });
    }
    let artifact_type = match &tag {
        Some(_) => None,
        None => manifest
            .artifact_type
            .clone()
            .or_else(|| Some(manifest.config.media_type.clone())),
    };
    Ok(Found {
        locked: LockedReferrer {
            subject: subject.clone(),
            digest: fetched.digest,
            media_type: fetched.media_type,
            size: fetched.bytes.len() as u64,
            artifact_type,
            tag,
        },
        bytes: fetched.bytes,
        manifest,
    })
}

/// The manifests whose referrers are carried: the entry and its platform manifests.
pub fn subjects(locked: &LockedImage) -> Vec<Digest> {
    let mut out = vec![locked.digest.clone()];
    for m in &locked.manifests {
        if !out.contains(&m.digest) {
            out.push(m.digest.clone());
        }
    }
    out
}

/// Stores the referrer manifests of a locked image and returns the blobs they name.
pub async fn collect(
    source: &RegistrySource,
    layout: &Layout,
    locked: &LockedImage,
) -> Result<Vec<BlobJob>, ReferrerError> {
    if locked.referrers.is_empty() {
        return Ok(Vec::new());
    }
    let repository: Reference =
        locked
            .repository()
            .parse()
            .map_err(
                |e: crate::manifest::reference::ReferenceError| ReferrerError::Bad {
                    image: locked.reference.clone(),
                    referrer: String::new(),
                    reason: e.to_string(),
                },
            )?;
    let mut jobs = Vec::new();
    for referrer in &locked.referrers {
        let bytes = if layout.has_blob(&referrer.digest) {
            layout.read_document(&referrer.digest)?
        } else {
            let fetched = source
                .fetch_manifest(&repository.with_digest(referrer.digest.as_str()))
                .await?;
            layout.write_blob(&fetched.digest, &fetched.bytes)?;
            fetched.bytes
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ReferrerError::Bad {
                image: locked.reference.clone(),
                referrer: referrer.digest.to_string(),
                reason: e.to_string(),
            })?;
        for blob in manifest.blobs() {
            jobs.push(BlobJob {
                digest: blob.digest.clone(),
                size: blob.size,
                repository: repository.clone(),
            });
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags() {
        let d = Digest::of_bytes(b"x");
        let hex = d.as_str().strip_prefix("sha256:").unwrap().to_string();
        assert_eq!(tag_for(&d, Some("sig")), format!("sha256-{hex}.sig"));
        assert_eq!(tag_for(&d, None), format!("sha256-{hex}"));
    }

    #[test]
    fn a_referrer_for_another_subject_is_refused() {
        let subject = Digest::of_bytes(b"image");
        let other = Digest::of_bytes(b"other");
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{e}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{other}","size":1}}}}"#,
            e = Digest::of_bytes(b"{}")
        )
        .into_bytes();
        let fetched = FetchedManifest {
            digest: Digest::of_bytes(&bytes),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            bytes,
        };
        let e = checked(
            "r/x:1",
            fetched.clone(),
            &subject,
            None,
            Some("listing".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("its subject is") && e.contains(other.as_str()),
            "{e}"
        );
        let ok = checked("r/x:1", fetched, &other, None, Some("listing".into())).unwrap();
        assert_eq!(
            ok.locked.artifact_type.as_deref(),
            Some("application/spdx+json")
        );
    }
}
