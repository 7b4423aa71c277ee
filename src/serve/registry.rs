//! The read-only OCI distribution API, answered from the bundle's files.
//!
//! Manifests are served byte for byte with the media type their descriptor names; nothing is
//! converted or re-serialised, so every digest a cluster pinned keeps working. Blob files are
//! streamed, never read into memory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::digest::Digest;
use crate::layout::Layout;
use crate::layout::blob_reader::blob_stream;
use crate::serve::catalog::{Catalog, Lookup, Repository};
use crate::serve::route::{self, ManifestRef, Route, RouteError};

/// The header every API response carries, so clients know they talk to a v2 registry.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
/// The header naming the digest of the content served.
pub const DIGEST_HEADER: &str = "docker-content-digest";

/// What the registry serves from: the layout and its repositories.
#[derive(Debug)]
pub struct Registry {
    layout: Layout,
    catalog: Catalog,
    /// Descriptors per referrers listing page when the client does not ask for `n`.
    referrers_page_size: usize,
}

impl Registry {
    /// A registry over `layout` serving `catalog`.
    pub fn new(layout: Layout, catalog: Catalog) -> Registry {
        Registry {
            layout,
            catalog,
            referrers_page_size: super::referrers::DEFAULT_PAGE_SIZE,
        }
    }

    /// Sets how many descriptors a referrers listing page holds when the client does not ask.
    pub fn set_referrers_page_size(&mut self, size: usize) {
        self.referrers_page_size = size.max(1);
    }

    /// The repositories served.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

/// An error in the distribution spec's form: `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: serde_json::Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    fn detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = detail;
        self
    }

    fn unsupported(method: &Method) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only: it serves a ferry bundle and accepts no changes",
        )
        .detail(json!({ "method": method.as_str() }))
    }

    fn name_unknown(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )
        .detail(json!({ "name": name }))
    }

    fn internal(message: String) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", message)
    }

    /// The response; a HEAD request gets the status and headers without the body.
    fn response(self, head: bool) -> Response {
        let mut body = json!({ "errors": [{ "code": self.code, "message": self.message }] });
        if !self.detail.is_null() {
            body["errors"][0]["detail"] = self.detail;
        }
        let bytes = body.to_string().into_bytes();
        let mut response = bytes_response(self.status, "application/json", bytes, head);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> ApiError {
        match e {
            RouteError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "UNSUPPORTED",
                "no such endpoint: this registry serves /v2/, /v2/_catalog, /v2/<name>/tags/list, /v2/<name>/manifests/<reference>, /v2/<name>/blobs/<digest> and /v2/<name>/referrers/<digest>",
            ),
            RouteError::NameInvalid(name) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "NAME_INVALID",
                "invalid repository name",
            )
            .detail(json!({ "name": name })),
            RouteError::DigestInvalid(reason) => {
                ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", reason)
            }
            // No manifest can have a tag outside the grammar: unknown, as the reference
            // registry answers (the spec's error table has no TAG_INVALID).
            RouteError::TagInvalid(tag) => ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown to registry",
            )
            .detail(json!({ "tag": tag })),
            RouteError::Absent {
                manifest: true,
                digest,
            } => ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown to registry",
            )
            .detail(json!({ "digest": digest })),
            RouteError::Absent {
                manifest: false,
                digest,
            } => ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                "blob unknown to registry",
            )
            .detail(json!({ "digest": digest })),
        }
    }
}

/// Answers every request under `/v2`.
pub async fn handle(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    // Only the head matters (GET and HEAD have no body), and it can be shared across awaits.
    let (request, _) = request.into_parts();
    let method = request.method.clone();
    let head = method == Method::HEAD;
    let mut response = if method != Method::GET && !head {
        ApiError::unsupported(&method).response(false)
    } else {
        match answer(&registry, &request, head).await {
            Ok(response) => response,
            Err(e) => e.response(head),
        }
    };
    response
        .headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    response
}

async fn answer(registry: &Registry, request: &Parts, head: bool) -> Result<Response, ApiError> {
    let query = Query::parse(request.uri.query());
    match route::parse(request.uri.path())? {
        Route::Base => Ok(bytes_response(
            StatusCode::OK,
            "application/json",
            b"{}".to_vec(),
            head,
        )),
        Route::Catalog => {
            let (page, next) = paginate(registry.catalog.names(), &query)?;
            let body = json!({ "repositories": page });
            let mut response = json_response(&body, head);
            if let Some(last) = next {
                add_link(&mut response, "/v2/_catalog", &last, &query);
            }
            Ok(response)
        }
        Route::Tags { name } => {
            let repo = find(registry, name, &query)?;
            let (page, next) = paginate(repo.tags(), &query)?;
            let body = json!({ "name": name, "tags": page });
            let mut response = json_response(&body, head);
            if let Some(last) = next {
                add_link(
                    &mut response,
                    &format!("/v2/{name}/tags/list"),
                    &last,
                    &query,
                );
            }
            Ok(response)
        }
        Route::Manifest { name, reference } => {
            let repo = find(registry, name, &query)?;
            let unknown = |detail| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown to registry",
                )
                .detail(detail)
            };
            let (digest, media_type) = match &reference {
                ManifestRef::Tag(tag) => repo
                    .manifest_by_tag(tag)
                    .ok_or_else(|| unknown(json!({ "name": name, "tag": tag })))?,
                ManifestRef::Digest(digest) => repo
                    .manifest_by_digest(digest)
                    .map(|mt| (digest, mt))
                    .ok_or_else(|| unknown(json!({ "name": name, "digest": digest })))?,
            };
            serve_file(
                &registry.layout,
                digest,
                media_type,
                &request.headers,
                head,
                false,
            )
            .await
        }
        Route::Blob { name, digest } => {
            let repo = find(registry, name, &query)?;
            if !repo.has_blob(&digest) {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "BLOB_UNKNOWN",
                    "blob unknown to registry",
                )
                .detail(json!({ "name": name, "digest": digest })));
            }
            serve_file(
                &registry.layout,
                &digest,
                "application/octet-stream",
                &request.headers,
                head,
                true,
            )
            .await
        }
        Route::Referrers { name, digest } => {
            let repo = find(registry, name, &query)?;
            let size = match &query.n {
                None => registry.referrers_page_size,
                Some(n) => n.parse::<usize>().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "UNSUPPORTED",
                        "invalid number of results requested: n must be a number",
                    )
                    .detail(json!({ "n": n }))
                })?,
            };
            super::referrers::listing(
                &registry.layout,
                repo,
                &digest,
                query.artifact_type.as_deref(),
                super::referrers::Page {
                    size,
                    last: query.last.as_deref(),
                },
                head,
            )
            .map_err(ApiError::internal)
        }
        Route::Upload { name } => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "this registry is read-only: there are no uploads",
        )
        .detail(json!({ "name": name }))),
    }
}

/// The repository a request names, or the error that says why there is none.
fn find<'a>(registry: &'a Registry, name: &str, query: &Query) -> Result<&'a Repository, ApiError> {
    match registry.catalog.lookup(name, query.ns.as_deref()) {
        Lookup::Found(repo) => Ok(repo),
        Lookup::Unknown => Err(ApiError::name_unknown(name)),
        Lookup::Ambiguous(names) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name is ambiguous: several upstream registries have it; use the full name",
        )
        .detail(json!({ "name": name, "candidates": names }))),
    }
}

/// The query parameters the API uses.
#[derive(Debug, Default)]
struct Query {
    /// Page size.
    n: Option<String>,
    /// Last item of the previous page.
    last: Option<String>,
    /// Upstream registry a mirroring containerd is asking for.
    ns: Option<String>,
    /// The referrers listing's filter.
    artifact_type: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "n" => q.n = Some(value.into_owned()),
                "last" => q.last = Some(value.into_owned()),
                "ns" => q.ns = Some(value.into_owned()),
                "artifactType" => q.artifact_type = Some(value.into_owned()),
                _ => {}
            }
        }
        q
    }
}

/// A page of a sorted list: the items after `last`, at most `n` of them, and the last item
/// returned when more follow.
fn paginate<'a>(
    items: impl Iterator<Item = &'a str>,
    query: &Query,
) -> Result<(Vec<&'a str>, Option<String>), ApiError> {
    let limit = match &query.n {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                "invalid number of results requested: n must be a number",
            )
            .detail(json!({ "n": n }))
        })?),
    };
    let mut rest = items.filter(|item| query.last.as_deref().is_none_or(|last| *item > last));
    let page: Vec<&str> = match limit {
        Some(n) => rest.by_ref().take(n).collect(),
        None => rest.by_ref().collect(),
    };
    let more = limit.is_some_and(|n| n > 0) && rest.next().is_some();
    let next = more.then(|| page.last().map(|s| s.to_string())).flatten();
    Ok((page, next))
}

/// Adds the `Link: <...>; rel="next"` header that points at the next page.
fn add_link(response: &mut Response, path: &str, last: &str, query: &Query) {
    let mut params = form_urlencoded::Serializer::new(String::new());
    if let Some(n) = &query.n {
        params.append_pair("n", n);
    }
    params.append_pair("last", last);
    if let Ok(value) = HeaderValue::from_str(&format!("<{path}?{}>; rel=\"next\"", params.finish()))
    {
        response.headers_mut().insert(header::LINK, value);
    }
}

fn json_response(body: &serde_json::Value, head: bool) -> Response {
    bytes_response(
        StatusCode::OK,
        "application/json",
        body.to_string().into_bytes(),
        head,
    )
}

/// A response with a body in memory; HEAD keeps the length but sends no bytes.
pub(super) fn bytes_response(
    status: StatusCode,
    content_type: &str,
    bytes: Vec<u8>,
    head: bool,
) -> Response {
    let length = bytes.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// Which bytes of a blob a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// All of it (no Range header, or one this server ignores, as HTTP allows).
    Full,
    /// `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// A range that starts past the end.
    Unsatisfiable,
}

/// Reads a `Range` header against a blob of `total` bytes (RFC 9110, one range only).
pub fn parse_range(value: &str, total: u64) -> ByteRange {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return ByteRange::Full;
    };
    // Several ranges would need a multipart answer; ignoring the header is allowed.
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => ByteRange::Full,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if total == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial {
                start: total.saturating_sub(n),
                end: total - 1,
            },
        },
        (first, "") => match number(first) {
            None => ByteRange::Full,
            Some(start) if start >= total => ByteRange::Unsatisfiable,
            Some(start) => ByteRange::Partial {
                start,
                end: total - 1,
            },
        },
        (first, last) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= total {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial {
                        start,
                        end: end.min(total - 1),
                    }
                }
            }
            _ => ByteRange::Full,
        },
    }
}

/// A response body streaming `length` bytes of a blob from `start`, from a directory or from
/// packed volumes. Digests are not re-checked here: clients check what they pull, and
/// `ferry serve` checked at startup that every blob is there with its size.
pub(crate) fn blob_body(
    layout: &Layout,
    digest: &Digest,
    start: u64,
    length: u64,
) -> Result<Body, crate::layout::LayoutError> {
    let reader = layout.open_blob_unchecked(digest)?;
    Ok(Body::from_stream(blob_stream(reader, start, length)))
}

/// Streams a blob file, whole or a byte range of it (`ranges` only for the blob endpoint).
pub(crate) async fn serve_file(
    layout: &Layout,
    digest: &Digest,
    content_type: &str,
    request_headers: &HeaderMap,
    head: bool,
    ranges: bool,
) -> Result<Response, ApiError> {
    let total = match layout.blob_size(digest) {
        Ok(Some(size)) => size,
        // Checked at startup; gone now means someone removed it while serving.
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                "the bundle's file for this blob has disappeared",
            )
            .detail(json!({ "digest": digest })));
        }
        Err(e) => return Err(ApiError::internal(format!("cannot read {digest}: {e}"))),
    };
    let etag = format!("\"{digest}\"");
    let range = match request_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) if ranges => {
            // If-Range with another validator means "send it all": the client's copy is stale.
            let stale = request_headers
                .get(header::IF_RANGE)
                .is_some_and(|v| v.as_bytes() != etag.as_bytes());
            if stale {
                ByteRange::Full
            } else {
                parse_range(value, total)
            }
        }
        _ => ByteRange::Full,
    };
    let (status, start, length) = match range {
        ByteRange::Full => (StatusCode::OK, 0, total),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "UNSUPPORTED",
                "the requested range is not satisfiable",
            )
            .detail(json!({ "digest": digest, "size": total }))
            .response(head);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let body = if head {
        Body::empty()
    } else {
        blob_body(layout, digest, start, length)
            .map_err(|e| ApiError::internal(format!("cannot read {digest}: {e}")))?
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, content_type.to_string());
    set(header::CONTENT_LENGTH, length.to_string());
    set(header::ETAG, etag);
    set(
        header::HeaderName::from_static(DIGEST_HEADER),
        digest.to_string(),
    );
    if ranges {
        set(header::ACCEPT_RANGES, "bytes".to_string());
        // Content named by its digest never changes.
        set(
            header::CACHE_CONTROL,
            "max-age=31536000, immutable".to_string(),
        );
    }
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", start + length - 1),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(
            parse_range("bytes=90-200", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=10-", 100),
            Partial { start: 10, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-1000", 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        // Malformed or multi-range headers are ignored: the whole blob is sent.
        assert_eq!(parse_range("bytes=9-0", 100), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=a-b", 100), Full);
        assert_eq!(parse_range("bytes=+1-2", 100), Full);
        assert_eq!(parse_range("bytes=", 100), Full);
    }

    #[test]
    fn pages() {
        let names = ["a", "b", "c", "d"];
        let q = |n: Option<&str>, last: Option<&str>| Query {
            n: n.map(str::to_string),
            last: last.map(str::to_string),
            ns: None,
            artifact_type: None,
        };
        let page = |query: Query| paginate(names.iter().copied(), &query).unwrap();
        assert_eq!(page(q(None, None)), (names.to_vec(), None));
        assert_eq!(page(q(Some("2"), None)), (vec!["a", "b"], Some("b".into())));
        assert_eq!(page(q(Some("2"), Some("b"))), (vec!["c", "d"], None));
        assert_eq!(page(q(None, Some("c"))), (vec!["d"], None));
        assert_eq!(page(q(Some("10"), Some("a"))), (vec!["b", "c", "d"], None));
        assert_eq!(page(q(Some("0"), None)), (vec![], None));
        assert!(paginate(names.iter().copied(), &q(Some("-1"), None)).is_err());
        let parsed = Query::parse(Some("n=5&last=quay.io%2Fx&ns=docker.io&other=1"));
        assert_eq!(parsed.n.as_deref(), Some("5"));
        assert_eq!(parsed.last.as_deref(), Some("quay.io/x"));
        assert_eq!(parsed.ns.as_deref(), Some("docker.io"));
    }
}
