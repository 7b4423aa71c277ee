//! Referrers on a registry without the OCI 1.1 referrers API: the referrers tag schema.
//!
//! A registry that has the API says so when it takes a manifest with a `subject`
//! (`OCI-Subject` header) and lists it from then on. One that does not gets what the
//! distribution spec asks of clients instead: the tag `sha256-<hex of subject>` names an image
//! index whose entries are the subject's referrers, which ferry reads, extends and puts back.

use std::collections::BTreeMap;

use crate::distribution::{Connection, Limited, RegistryError};
use crate::layout::oci::{Descriptor, Index, Manifest, OCI_INDEX};
use crate::source::referrers::tag_for;

/// Adds the referrer `document` (its manifest `bytes`) to the tag schema index of its subject
/// in `repository`; a manifest without `subject` (a cosign `.sig` tag) needs nothing.
pub async fn link_by_tag(
    connection: &Connection,
    host: &str,
    repository: &str,
    document: &Descriptor,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let Some(manifest) = with_subject(bytes) else {
        return Ok(());
    };
    let subject = manifest.subject.as_ref().expect("with_subject");
    let tag = tag_for(&subject.digest, None);
    let what = format!("{host}/{repository}:{tag}");
    let existing = match connection
        .retry(host, &what, || {
            connection.get_manifest(host, repository, &tag, crate::layout::MAX_MANIFEST_SIZE)
        })
        .await
    {
        Ok(Limited::Body(body)) => serde_json::from_slice::<Index>(&body).ok(),
        Ok(Limited::TooLarge(_)) | Err(RegistryError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let mut index = existing.unwrap_or(Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_string()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
    });
    if index.manifests.iter().any(|d| d.digest == document.digest) {
        return Ok(());
    }
    index.manifests.push(Descriptor {
        media_type: document.media_type.clone(),
        digest: document.digest.clone(),
        size: document.size,
        platform: None,
        annotations: manifest.annotations.clone(),
        artifact_type: Some(
            manifest
                .artifact_type
                .clone()
                .unwrap_or_else(|| manifest.config.media_type.clone()),
        ),
    });
    let body = serde_json::to_vec(&index).expect("an index always serialises");
    connection
        .retry(host, &what, || {
            connection.put_manifest(host, repository, &tag, &body, OCI_INDEX)
        })
        .await?;
    Ok(())
}

/// For a referrer the target already had (a rerun, or an import cut off after its manifest
/// went out): makes sure it is listed for its subject, where the target has no referrers API.
pub async fn ensure_linked(
    connection: &Connection,
    host: &str,
    repository: &str,
    document: &Descriptor,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let Some(subject) = with_subject(bytes).and_then(|m| m.subject) else {
        return Ok(());
    };
    let what = format!("{host}/{repository}/referrers/{}", subject.digest);
    let api = connection
        .retry(host, &what, || {
            connection.get_referrers(
                host,
                repository,
                &subject.digest,
                None,
                None,
                crate::layout::MAX_MANIFEST_SIZE,
            )
        })
        .await?;
    if api.is_some() {
        return Ok(());
    }
    link_by_tag(connection, host, repository, document, bytes).await
}

/// The referrer manifest in `bytes` when it names a subject (a cosign `.sig` tag names none,
/// and needs no link).
fn with_subject(bytes: &[u8]) -> Option<Manifest> {
    serde_json::from_slice::<Manifest>(bytes)
        .ok()
        .filter(|m| m.subject.is_some())
}
