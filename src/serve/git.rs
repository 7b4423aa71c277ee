//! Git's smart HTTP protocol, read-only, at `/git/<name>.git`: `git clone` and `git fetch`
//! work against `ferry serve` as against any Git server.
//!
//! The protocol is git's own `git http-backend` (CGI) run per request over a directory of
//! bare repositories: the bundle's repositories imported into a scratch directory when
//! serving starts, or a directory `ferry import git` wrote (`--git-dir`). Only the two
//! upload-pack endpoints are routed (`info/refs?service=git-upload-pack` and
//! `git-upload-pack`); pushes and the dumb protocol answer 403 / 404.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::fsutil::ScratchDir;
use crate::manifest::git::check_repo_name;

/// The repositories served.
#[derive(Debug)]
pub struct GitRoot {
    root: PathBuf,
    names: BTreeSet<String>,
    _scratch: Option<ScratchDir>,
}

impl GitRoot {
    /// Serves the bare repositories (`<name>.git`) of `dir`.
    pub fn from_dir(dir: &Path) -> std::io::Result<GitRoot> {
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".git")) else {
                continue;
            };
            if check_repo_name(name).is_ok() && entry.path().join("HEAD").is_file() {
                names.insert(name.to_string());
            }
        }
        Ok(GitRoot {
            root: dir.to_path_buf(),
            names,
            _scratch: None,
        })
    }

    /// Serves the repositories imported into `scratch` (kept as long as the server runs).
    pub fn from_scratch(scratch: ScratchDir) -> std::io::Result<GitRoot> {
        let mut root = GitRoot::from_dir(scratch.path())?;
        root._scratch = Some(scratch);
        Ok(root)
    }

    /// The names served.
    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// Whether nothing is served.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The `/git/` routes.
pub fn routes(root: Arc<GitRoot>) -> Router {
    Router::new()
        .route("/git/{repo}/info/refs", any(info_refs))
        .route("/git/{repo}/git-upload-pack", any(upload_pack))
        .route("/git/{repo}/git-receive-pack", any(receive_pack))
        .with_state(root)
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, text).into_response()
}

/// The repository a URL segment names, if served.
fn repo_name(root: &GitRoot, segment: &str) -> Result<String, Box<Response>> {
    let name = segment.strip_suffix(".git").unwrap_or(segment);
    if check_repo_name(name).is_err() || !root.names.contains(name) {
        return Err(Box::new(plain(
            StatusCode::NOT_FOUND,
            format!(
                "no git repository {segment:?} here; served: {}\n",
                root.names
                    .iter()
                    .map(|n| format!("/git/{n}.git"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )));
    }
    Ok(name.to_string())
}

async fn receive_pack() -> Response {
    plain(
        StatusCode::FORBIDDEN,
        "ferry serves git repositories read-only: clone and fetch only\n".to_string(),
    )
}

async fn info_refs(
    State(root): State<Arc<GitRoot>>,
    UrlPath(repo): UrlPath<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let name = match repo_name(&root, &repo) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
    }
    let query = query.unwrap_or_default();
    if query != "service=git-upload-pack" {
        return plain(
            StatusCode::FORBIDDEN,
            "ferry serves git's smart protocol for clone and fetch only (service=git-upload-pack)\n"
                .into(),
        );
    }
    backend(
        &root,
        &name,
        "info/refs",
        "GET",
        &query,
        &headers,
        Body::empty(),
    )
    .await
}

async fn upload_pack(
    State(root): State<Arc<GitRoot>>,
    UrlPath(repo): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let name = match repo_name(&root, &repo) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    if method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into());
    }
    backend(&root, &name, "git-upload-pack", "POST", "", &headers, body).await
}

/// Runs `git http-backend` for one request and streams its answer.
async fn backend(
    root: &GitRoot,
    name: &str,
    rest: &str,
    method: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut cmd = tokio::process::Command::new(crate::git_cli::binary());
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &root.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{name}.git/{rest}"))
        .env("REQUEST_METHOD", method)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        // Served read-only whoever owns the directory (it was written by `import git`).
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .env("GIT_CONFIG_KEY_1", "http.receivepack")
        .env("GIT_CONFIG_VALUE_1", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(v) = header("content-type") {
        cmd.env("CONTENT_TYPE", v);
    }
    if let Some(v) = header("content-length") {
        cmd.env("CONTENT_LENGTH", v);
    }
    if let Some(v) = header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", v);
    }
    if let Some(v) = header("git-protocol") {
        cmd.env("GIT_PROTOCOL", v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot run git http-backend: {e}; is git installed?\n"),
            );
        }
    };
    let mut stdin = child.stdin.take().expect("piped");
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    let mut stderr = child.stderr.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::new(stdout);
    // CGI headers, up to the empty line.
    let mut status = StatusCode::OK;
    let mut out_headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) => {
                let mut text = String::new();
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("git http-backend answered nothing: {}\n", text.trim()),
                );
            }
            Ok(_) => {}
            Err(e) => {
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("git http-backend: {e}\n"),
                );
            }
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if key.eq_ignore_ascii_case("status") {
            if let Some(code) = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                status = code;
            }
        } else if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(key.trim()),
            HeaderValue::from_str(value),
        ) {
            out_headers.append(k, v);
        }
    }
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut sink).await;
        let _ = child.wait().await;
    });
    let stream = tokio_util::io::ReaderStream::new(reader);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    out_headers.remove(header::CONTENT_LENGTH);
    response.headers_mut().extend(out_headers);
    response
}
