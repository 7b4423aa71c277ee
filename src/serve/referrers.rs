//! The OCI 1.1 referrers API of `ferry serve`: signatures, attestations and SBOMs the bundle
//! carries, listed for their subject.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::digest::Digest;
use crate::layout::Layout;
use crate::serve::catalog::Repository;
use crate::serve::registry::bytes_response;

/// How many descriptors a referrers listing page holds when the client does not ask (`n`):
/// the rest follows through `Link: <...>; rel="next"`, as the distribution spec allows.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Which page of a listing a request asks for.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// Descriptors per page.
    pub size: usize,
    /// The digest of the last descriptor of the previous page (`last`).
    pub last: Option<&'a str>,
}

/// The OCI 1.1 referrers listing of `subject`: an image index of the descriptors of the
/// manifests whose `subject` it is (their artifact type and annotations included), filtered
/// by `artifactType` when asked, in bundle order, `page.size` at a time (the `Link` header
/// names the next page: `?n=..&last=<digest>`, the filter kept). An unknown subject has an
/// empty listing, as the spec says.
pub fn listing(
    layout: &Layout,
    repo: &Repository,
    subject: &Digest,
    artifact_type: Option<&str>,
    page: Page<'_>,
    head: bool,
) -> Result<Response, String> {
    let matching: Vec<&crate::layout::oci::Descriptor> = repo
        .referrers(subject)
        .iter()
        .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
        .collect();
    // After `last`; a `last` that is not listed ends the listing (an empty page), so that no
    // cursor can lead a client round again.
    let start = match page.last {
        None => 0,
        Some(last) => matching
            .iter()
            .position(|d| d.digest.as_str() == last)
            .map_or(matching.len(), |i| i + 1),
    };
    let size = page.size.max(1);
    let rest = &matching[start.min(matching.len())..];
    let (this, more) = (&rest[..size.min(rest.len())], rest.len() > size);
    let mut manifests = Vec::new();
    for descriptor in this {
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
    if more && let Some(last) = this.last() {
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("n", &size.to_string());
        params.append_pair("last", last.digest.as_str());
        if let Some(t) = artifact_type {
            params.append_pair("artifactType", t);
        }
        let link = format!(
            "</v2/{}/referrers/{subject}?{}>; rel=\"next\"",
            repo.name,
            params.finish()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response
                .headers_mut()
                .insert(axum::http::header::LINK, value);
        }
    }
    Ok(response)
}
