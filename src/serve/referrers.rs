//! The OCI 1.1 referrers API of `ferry serve`: signatures, attestations and SBOMs the bundle
//! carries, listed for their subject.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::digest::Digest;
use crate::layout::Layout;
use crate::serve::catalog::Repository;
use crate::serve::registry::bytes_response;

/// The OCI 1.1 referrers listing of `subject`: an image index of the descriptors of the
/// manifests whose `subject` it is (their artifact type and annotations included), filtered
/// by `artifactType` when asked. An unknown subject has an empty listing, as the spec says.
pub fn listing(
    layout: &Layout,
    repo: &Repository,
    subject: &Digest,
    artifact_type: Option<&str>,
    head: bool,
) -> Result<Response, String> {
    let mut manifests = Vec::new();
    for descriptor in repo.referrers(subject) {
        if artifact_type.is_some_and(|t| descriptor.artifact_type.as_deref() != Some(t)) {
            continue;
        }
        let bytes = layout
            .read_document(&descriptor.digest)
            .map_err(|e| e.to_string())?;
        let annotations = serde_json::from_slice::<crate::layout::oci::Manifest>(&bytes)
            .map(|m| m.annotations)
            .unwrap_or_default();
        let mut entry = json!({
            "mediaType": descriptor.media_type,
            "digest": descriptor.digest,
            "size": descriptor.size,
        });
        if let Some(t) = &descriptor.artifact_type {
            entry["artifactType"] = json!(t);
        }
        if !annotations.is_empty() {
            entry["annotations"] = json!(annotations);
        }
        manifests.push(entry);
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": crate::layout::oci::OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = bytes_response(
        StatusCode::OK,
        crate::layout::oci::OCI_INDEX,
        body.to_string().into_bytes(),
        head,
    );
    if artifact_type.is_some() {
        response.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
