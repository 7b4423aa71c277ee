//! `/apt/`: the bundle's apt packages as a signed apt mirror, laid out exactly as
//! `ferry import apt` writes it (indexes rendered and signed at startup, `.deb` files streamed
//! from the bundle's blobs).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::serve::registry::blob_body;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::destination::apt::{self, KEYRING_FILE, MirrorError, SOURCES_FILE};
use crate::digest::Digest;
use crate::layout::Layout;
use crate::layout::graph::Entry;
use crate::openpgp::SiteKey;

/// The mirror served under `/apt/`.
#[derive(Debug)]
pub struct AptMirror {
    layout: Layout,
    files: BTreeMap<String, Vec<u8>>,
    pool: BTreeMap<String, (Digest, u64)>,
    suites: BTreeMap<String, std::collections::BTreeSet<String>>,
    keyring: Vec<u8>,
    /// Package entries listed.
    pub packages: usize,
}

impl AptMirror {
    /// Renders the mirror of the bundle's apt entries (none: `Ok(None)`).
    pub fn open(
        layout: &Layout,
        entries: &[Entry],
        key: &SiteKey,
        suite: Option<&str>,
    ) -> Result<Option<AptMirror>, MirrorError> {
        let contents = apt::from_bundle(layout, entries, suite)?;
        if contents.packages.is_empty() {
            return Ok(None);
        }
        let rendered = apt::render(&contents, key, crate::time::now_secs())?;
        let pool = contents
            .packages
            .iter()
            .map(|p| (p.pool_path.clone(), (p.digest.clone(), p.size)))
            .collect();
        Ok(Some(AptMirror {
            layout: layout.clone(),
            files: rendered.files,
            pool,
            suites: rendered.suites,
            keyring: key.public_binary()?,
            packages: contents.packages.len(),
        }))
    }

    /// Suite names served.
    pub fn suites(&self) -> impl Iterator<Item = &str> {
        self.suites.keys().map(String::as_str)
    }
}

/// The `/apt/` routes.
pub fn routes(mirror: Arc<AptMirror>) -> Router {
    Router::new()
        .route("/apt/{*path}", any(handle))
        .with_state(mirror)
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

async fn handle(
    State(mirror): State<Arc<AptMirror>>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    let head = match method {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "this apt mirror is read-only\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
    };
    let bytes_reply = |content_type: &'static str, bytes: Vec<u8>| {
        let length = bytes.len();
        let mut r = if head {
            StatusCode::OK.into_response()
        } else {
            (StatusCode::OK, bytes).into_response()
        };
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        r
    };
    if path == KEYRING_FILE {
        return bytes_reply("application/pgp-keys", mirror.keyring.clone());
    }
    if path == SOURCES_FILE {
        // Hosts reach the mirror the way this request did.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let text = apt::sources_file(&format!("http://{host}/apt"), &mirror.suites);
        return bytes_reply("text/plain; charset=utf-8", text.into_bytes());
    }
    if let Some(bytes) = mirror.files.get(&path) {
        let content_type = if path.ends_with(".gz") {
            "application/gzip"
        } else if path.ends_with(".xz") {
            "application/x-xz"
        } else {
            "text/plain; charset=utf-8"
        };
        return bytes_reply(content_type, bytes.clone());
    }
    let Some((digest, size)) = mirror.pool.get(&path) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let body = if head {
        Body::empty()
    } else {
        match blob_body(&mirror.layout, digest, 0, *size) {
            Ok(body) => body,
            Err(e) => {
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot read the bundle's file for {path}: {e}\n"),
                );
            }
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.debian.binary-package"),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(*size));
    r
}
