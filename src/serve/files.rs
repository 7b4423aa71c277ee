//! `/files/`: the bundle's release files over plain HTTP, by name, as `import files` would
//! write them: a listing (`/files/`, one name per line), each file streamed with its length
//! and byte ranges, and a `SHA256SUMS` to check what was downloaded.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::layout::Layout;
use crate::layout::files::{self, BundleFile};
use crate::layout::graph::Entry;
use crate::manifest::files::SUMS_FILE;
use crate::serve::registry::{ByteRange, blob_body, parse_range};

/// The files a bundle serves, by name.
#[derive(Debug)]
pub struct FileTree {
    layout: Layout,
    files: BTreeMap<String, BundleFile>,
}

impl FileTree {
    /// Reads every `file` entry's artifact (names and modes checked again); entries that
    /// cannot be served are left out with a note.
    pub fn build(layout: &Layout, entries: &[Entry]) -> (FileTree, Vec<String>) {
        let mut tree = FileTree {
            layout: layout.clone(),
            files: BTreeMap::new(),
        };
        let mut notes = Vec::new();
        for entry in entries.iter().filter(|e| e.kind == files::KIND) {
            match files::read(layout, entry) {
                Ok(file) => {
                    if let Some(first) = tree.files.get(&file.name) {
                        notes.push(format!(
                            "file {} is not served under /files/: {} already has the name {:?}",
                            file.url, first.url, file.name
                        ));
                    } else {
                        tree.files.insert(file.name.clone(), file);
                    }
                }
                Err(e) => notes.push(format!("not served under /files/: {e}")),
            }
        }
        (tree, notes)
    }

    /// How many files are served.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn sums(&self) -> String {
        self.files
            .values()
            .map(|f| format!("{}  {}\n", f.digest.hex(), f.name))
            .collect()
    }
}

/// The `/files` routes, with their own state.
pub fn router(tree: Arc<FileTree>) -> Router {
    Router::new()
        .route("/files", any(listing))
        .route("/files/", any(listing))
        .route("/files/{name}", any(file))
        .with_state(tree)
}

fn text_response(status: StatusCode, body: String, head: bool) -> Response {
    let length = body.len();
    let mut response = (
        status,
        if head {
            Body::empty()
        } else {
            Body::from(body)
        },
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn read_only(method: &Method) -> Option<Response> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut response = text_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "read-only: /files/ serves a ferry bundle's files and accepts no changes\n".to_string(),
        false,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(response)
}

/// `/files/`: one name per line, then `SHA256SUMS`.
async fn listing(State(tree): State<Arc<FileTree>>, method: Method) -> Response {
    if let Some(refused) = read_only(&method) {
        return refused;
    }
    let mut body: String = tree.files.keys().map(|n| format!("{n}\n")).collect();
    if !tree.files.is_empty() {
        body.push_str(SUMS_FILE);
        body.push('\n');
    }
    text_response(StatusCode::OK, body, method == Method::HEAD)
}

/// `/files/<name>`: the file, whole or a byte range, streamed from its blob.
async fn file(
    State(tree): State<Arc<FileTree>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = read_only(&method) {
        return refused;
    }
    let head = method == Method::HEAD;
    if name == SUMS_FILE && !tree.files.is_empty() {
        return text_response(StatusCode::OK, tree.sums(), head);
    }
    let Some(file) = tree.files.get(&name) else {
        return text_response(
            StatusCode::NOT_FOUND,
            format!("no file {name:?} in this bundle; GET /files/ lists them\n"),
            head,
        );
    };
    let total = file.size;
    let etag = format!("\"{}\"", file.digest);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        // If-Range with another validator means "send it all": the client's copy is stale.
        Some(_)
            if headers
                .get(header::IF_RANGE)
                .is_some_and(|v| v.as_bytes() != etag.as_bytes()) =>
        {
            ByteRange::Full
        }
        Some(value) => parse_range(value, total),
        None => ByteRange::Full,
    };
    let (status, start, length) = match range {
        ByteRange::Full => (StatusCode::OK, 0, total),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            let mut response = text_response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the requested range is not satisfiable\n".to_string(),
                head,
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return response;
        }
    };
    let body = if head {
        Body::empty()
    } else {
        match blob_body(&tree.layout, &file.digest, start, length) {
            Ok(body) => body,
            Err(e) => {
                return text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the bundle's content for {name}: {e}\n"),
                    head,
                );
            }
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, "application/octet-stream".to_string());
    set(header::CONTENT_LENGTH, length.to_string());
    set(header::ETAG, etag);
    set(header::ACCEPT_RANGES, "bytes".to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", start + length - 1),
        );
    }
    response
}
