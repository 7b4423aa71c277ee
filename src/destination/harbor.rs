//! Harbor's REST API: the projects an import pushes into, created before the first push.
//!
//! Harbor refuses a push into a project that does not exist, and the project is the first path
//! segment of a repository, so the importer creates every project its mapping needs first.
//! Requests follow Harbor's published API description (Swagger 2.0, v2.16; a copy is in
//! `tests/specs/harbor/swagger.yaml`), and the tests check them against it with a validating mock.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::auth::Credentials;
use crate::distribution::error_chain;

/// Harbor's limit on the length of a project name.
pub const MAX_PROJECT_NAME_LEN: usize = 255;

/// Attempts per request unless [`HarborClient::with_retries`] says otherwise.
const DEFAULT_ATTEMPTS: u32 = 4;
/// First retry delay unless [`HarborClient::with_retries`] says otherwise; doubles each time.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// How much of an error body is kept: Harbor's error JSON is small, a proxy's HTML page is not.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Settings of the projects ferry creates (existing projects are left as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectSettings {
    /// Anyone may pull without logging in.
    pub public: bool,
    /// Harbor serves only images with a cosign signature.
    pub content_trust_cosign: bool,
}

/// What [`HarborClient::ensure_project`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectOutcome {
    /// ferry created the project.
    Created,
    /// The project was there already (or another importer created it at the same moment).
    Existed,
}

/// Errors talking to Harbor's API; each names Harbor, what was being done, and the next step.
#[derive(Debug, thiserror::Error)]
pub enum HarborError {
    /// A project name Harbor would refuse, caught before any request.
    #[error(
        "{name:?} is not a valid Harbor project name: {reason}. Harbor project names are lower-case letters and digits, separated by single '.', '_' or '-', at most 255 characters. The project is the first path segment of each target repository: change the target's path prefix (--to HOST/PREFIX) so that it starts with a valid name"
    )]
    InvalidProjectName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API base URL is unusable.
    #[error(
        "invalid Harbor API URL {api_base:?}: {reason}; give it as https://HOST[:PORT]/api/v2.0"
    )]
    InvalidApiBase {
        /// The URL as given (without any user information).
        api_base: String,
        /// Why.
        reason: String,
    },
    /// A CA file could not be read.
    #[error("cannot read CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for Harbor: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
    /// No answer from Harbor at all, after retries.
    #[error(
        "cannot reach Harbor at {api_base} while {action} (gave up after {}): {reason}. Check the URL (host, port, /api/v2.0), the network, that Harbor is running, and --ca-file if its certificate comes from a private CA",
        attempts_text(*attempts)
    )]
    Unreachable {
        /// The API base URL.
        api_base: String,
        /// What ferry was doing.
        action: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error.
        reason: String,
    },
    /// Harbor refused the credentials (401).
    #[error(
        "Harbor at {api_base} refused the credentials while {action}: HTTP {status}: {message}. Check the user name and password stored for {host} (log in with `ferry login {host}`)"
    )]
    Unauthorized {
        /// The API base URL.
        api_base: String,
        /// `host[:port]` to log in to.
        host: String,
        /// What ferry was doing.
        action: String,
        /// The HTTP status.
        status: u16,
        /// Harbor's own message.
        message: String,
    },
    /// The user may not do this (403).
    #[error(
        "Harbor at {api_base} forbade {action}: HTTP {status}: {message}. The Harbor user needs the right to create projects (a system administrator, if project creation is limited to administrators), or create project {project:?} in Harbor first"
    )]
    Forbidden {
        /// The API base URL.
        api_base: String,
        /// The project concerned.
        project: String,
        /// What ferry was doing.
        action: String,
        /// The HTTP status.
        status: u16,
        /// Harbor's own message.
        message: String,
    },
    /// Harbor failed (5xx) or kept asking to slow down (429), after retries.
    #[error(
        "Harbor at {api_base} failed while {action}: HTTP {status}: {message} (gave up after {}). Retry the import later; if it persists, check Harbor's health ({api_base}/health) and its core log",
        attempts_text(*attempts)
    )]
    Server {
        /// The API base URL.
        api_base: String,
        /// What ferry was doing.
        action: String,
        /// The HTTP status.
        status: u16,
        /// Harbor's own message.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Any other answer ferry cannot act on.
    #[error("Harbor at {api_base} answered HTTP {status} while {action}: {message}. {advice}")]
    Unexpected {
        /// The API base URL.
        api_base: String,
        /// What ferry was doing.
        action: String,
        /// The HTTP status.
        status: u16,
        /// Harbor's own message.
        message: String,
        /// What to do about it.
        advice: String,
    },
}

/// A client for one Harbor's API.
pub struct HarborClient {
    http: reqwest::Client,
    /// API base without trailing `/`, e.g. `https://harbor.site/api/v2.0`.
    base: String,
    /// `host[:port]` of the API, for `ferry login` advice.
    host: String,
    credentials: Option<Credentials>,
    attempts: u32,
    backoff: Duration,
}

impl std::fmt::Debug for HarborClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials' own Debug hides the password; the username alone is enough here.
        f.debug_struct("HarborClient")
            .field("base", &self.base)
            .field(
                "user",
                &self.credentials.as_ref().map(|c| c.username.as_str()),
            )
            .finish_non_exhaustive()
    }
}

/// An answer from Harbor, read far enough to decide what it means.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    attempts: u32,
}

/// The body of `POST /projects` (the spec's `ProjectReq`).
#[derive(Serialize)]
struct ProjectReq<'a> {
    project_name: &'a str,
    metadata: ProjectMetadata,
}

/// The spec's `ProjectMetadata`: Harbor keeps project metadata as strings, so booleans are
/// `"true"` / `"false"` here, and a JSON `true` is refused.
#[derive(Serialize)]
struct ProjectMetadata {
    public: &'static str,
    enable_content_trust_cosign: &'static str,
}

/// Harbor's error body: `{"errors":[{"code":"...","message":"..."}]}`.
#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn attempts_text(attempts: u32) -> String {
    if attempts == 1 {
        "1 attempt".to_string()
    } else {
        format!("{attempts} attempts")
    }
}

fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

impl HarborClient {
    /// A client for the API at `api_base` (e.g. `https://harbor.site/api/v2.0`), sending
    /// `credentials` with basic auth and trusting the PEM certificates in `ca_files` beside the
    /// system roots.
    pub fn new(
        api_base: &str,
        credentials: Option<Credentials>,
        ca_files: &[PathBuf],
    ) -> Result<Self, HarborError> {
        let (base, host) = parse_api_base(api_base)?;
        let mut roots = Vec::new();
        for path in ca_files {
            let data = std::fs::read(path).map_err(|e| HarborError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&data).map_err(|e| HarborError::CaFile {
                    path: path.clone(),
                    reason: format!("not a PEM certificate: {e}"),
                })?;
            if certs.is_empty() {
                return Err(HarborError::CaFile {
                    path: path.clone(),
                    reason: "no PEM certificate in it".to_string(),
                });
            }
            roots.extend(certs);
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            // reqwest is built without its `cookies` feature, so no cookie store exists: with a
            // session cookie Harbor would demand a CSRF token on every write.
            .default_headers(headers)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            // A redirected POST turns into a GET; better to say where Harbor points (see advice).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(crate::retry::patience().connect_timeout())
            .read_timeout(crate::retry::patience().timeout)
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| HarborError::Client {
                reason: error_chain(&e),
            })?;
        Ok(HarborClient {
            http,
            base,
            host,
            credentials,
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
        })
    }

    /// Sets the attempts per request (at least 1) and the first retry delay, which doubles.
    pub fn with_retries(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = first_backoff;
        self
    }

    /// The API base URL, without a trailing `/`.
    pub fn api_base(&self) -> &str {
        &self.base
    }

    /// Makes sure project `name` exists, creating it with `settings` if it does not.
    ///
    /// An existing project keeps its own settings: changing them is an administrator's call.
    pub async fn ensure_project(
        &self,
        name: &str,
        settings: &ProjectSettings,
    ) -> Result<ProjectOutcome, HarborError> {
        validate_project_name(name)?;

        let action = format!("checking whether project {name:?} exists");
        let mut url = self.url("/projects")?;
        url.query_pairs_mut().append_pair("project_name", name);
        let answer = self.send(&action, Method::HEAD, url, None).await?;
        match answer.status {
            s if s.is_success() => {
                tracing::debug!(project = name, "Harbor project exists");
                return Ok(ProjectOutcome::Existed);
            }
            StatusCode::NOT_FOUND => {}
            _ => return Err(self.status_error(name, &action, answer)),
        }

        let action = format!("creating project {name:?}");
        let body = serde_json::to_vec(&ProjectReq {
            project_name: name,
            metadata: ProjectMetadata {
                public: bool_str(settings.public),
                enable_content_trust_cosign: bool_str(settings.content_trust_cosign),
            },
        })
        .expect("a project request always serialises");
        let answer = self
            .send(&action, Method::POST, self.url("/projects")?, Some(body))
            .await?;
        match answer.status {
            s if s.is_success() => {
                tracing::info!(project = name, "created Harbor project");
                Ok(ProjectOutcome::Created)
            }
            // Another importer created it between our HEAD and POST, or our own earlier attempt
            // did and only the answer was lost: either way the project is there.
            StatusCode::CONFLICT => {
                tracing::debug!(project = name, "Harbor project was created concurrently");
                Ok(ProjectOutcome::Existed)
            }
            _ => Err(self.status_error(name, &action, answer)),
        }
    }

    /// Turns on cosign content trust for an existing project (`PUT /projects/{name}/metadatas/
    /// enable_content_trust_cosign`): Harbor then serves only its images that have a cosign
    /// signature.
    pub async fn enable_content_trust_cosign(&self, name: &str) -> Result<(), HarborError> {
        validate_project_name(name)?;
        let action = format!("turning on cosign content trust for project {name:?}");
        let url = self.url(&format!(
            "/projects/{name}/metadatas/enable_content_trust_cosign"
        ))?;
        let body = br#"{"enable_content_trust_cosign":"true"}"#.to_vec();
        let answer = self
            .send_with(&action, Method::PUT, url, Some(body), true)
            .await?;
        if answer.status.is_success() {
            tracing::info!(project = name, "Harbor project: cosign content trust on");
            Ok(())
        } else {
            Err(self.status_error(name, &action, answer))
        }
    }

    /// Makes sure every project in `names` exists; checks all names before the first request.
    pub async fn ensure_projects(
        &self,
        names: &BTreeSet<String>,
        settings: &ProjectSettings,
    ) -> Result<Vec<(String, ProjectOutcome)>, HarborError> {
        // A bad name found half-way would leave some projects created and the import refused.
        for name in names {
            validate_project_name(name)?;
        }
        let mut outcomes = Vec::with_capacity(names.len());
        for name in names {
            let outcome = self.ensure_project(name, settings).await?;
            outcomes.push((name.clone(), outcome));
        }
        Ok(outcomes)
    }

    fn url(&self, path: &str) -> Result<Url, HarborError> {
        Url::parse(&format!("{}{path}", self.base)).map_err(|e| HarborError::InvalidApiBase {
            api_base: self.base.clone(),
            reason: e.to_string(),
        })
    }

    /// Sends a request, retrying dropped connections, 429 and 5xx with exponential backoff.
    ///
    /// Retrying the POST is safe: if an earlier attempt did create the project, the retry gets
    /// 409, which counts as success.
    async fn send(
        &self,
        action: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, HarborError> {
        self.send_with(action, method, url, body, false).await
    }

    /// [`Self::send`]; `by_name` says that a `{project_name_or_id}` in the path is a name
    /// (`X-Is-Resource-Name: true`), so that a project named `123` is not taken for an id.
    async fn send_with(
        &self,
        action: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        by_name: bool,
    ) -> Result<Answer, HarborError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), url.clone());
            if by_name {
                request = request.header("X-Is-Resource-Name", "true");
            }
            if let Some(c) = &self.credentials {
                // Every request carries the credentials: there is no session to fall back on.
                request = request.basic_auth(&c.username, Some(&c.password));
            }
            if let Some(body) = &body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let what = format!("Harbor: {action}");
            match request.send().await {
                Err(e) => {
                    // reqwest's messages carry the URL, never the Authorization header.
                    let reason = error_chain(&e);
                    if attempt >= self.attempts {
                        return Err(HarborError::Unreachable {
                            api_base: self.base.clone(),
                            action: action.to_string(),
                            attempts: attempt,
                            reason,
                        });
                    }
                    crate::retry::pause(&what, &reason, attempt, self.attempts, self.backoff, None)
                        .await;
                }
                Ok(response) => {
                    let status = response.status();
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || attempt >= self.attempts {
                        let headers = response.headers().clone();
                        let body = if status.is_success() {
                            Vec::new()
                        } else {
                            read_limited(response).await
                        };
                        return Ok(Answer {
                            status,
                            headers,
                            body,
                            attempts: attempt,
                        });
                    }
                    let asked = crate::retry::honours_retry_after(status.as_u16())
                        .then(|| crate::retry::retry_after(response.headers()))
                        .flatten();
                    crate::retry::pause(
                        &what,
                        &format!("HTTP {status}"),
                        attempt,
                        self.attempts,
                        self.backoff,
                        asked,
                    )
                    .await;
                }
            }
        }
    }

    /// Turns an answer ferry cannot go on with into an error that says what to do.
    fn status_error(&self, project: &str, action: &str, answer: Answer) -> HarborError {
        let status = answer.status;
        let message = harbor_message(&answer);
        let (api_base, action) = (self.base.clone(), action.to_string());
        match status {
            StatusCode::UNAUTHORIZED => HarborError::Unauthorized {
                api_base,
                host: self.host.clone(),
                action,
                status: status.as_u16(),
                message,
            },
            StatusCode::FORBIDDEN => HarborError::Forbidden {
                api_base,
                project: project.to_string(),
                action,
                status: status.as_u16(),
                message,
            },
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => HarborError::Server {
                api_base,
                action,
                status: status.as_u16(),
                message,
                attempts: answer.attempts,
            },
            s => {
                let advice = if s.is_redirection() {
                    match answer.headers.get(LOCATION).and_then(|v| v.to_str().ok()) {
                        Some(to) => format!(
                            "Harbor redirects to {to}: give the API URL as Harbor's own address (https://HOST/api/v2.0)"
                        ),
                        None => "give the API URL as Harbor's own address (https://HOST/api/v2.0)"
                            .to_string(),
                    }
                } else if s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED {
                    format!(
                        "Is {} Harbor's API (https://HOST/api/v2.0)? Check the API URL",
                        self.base
                    )
                } else {
                    "Harbor refused a request ferry made by its API description; check that Harbor is version 2 or later, and report this message if it is".to_string()
                };
                HarborError::Unexpected {
                    api_base,
                    action,
                    status: status.as_u16(),
                    message,
                    advice,
                }
            }
        }
    }
}

/// Checks `name` against Harbor's rule `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, at most 255 characters.
pub fn validate_project_name(name: &str) -> Result<(), HarborError> {
    let bad = |reason: String| {
        Err(HarborError::InvalidProjectName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty".to_string());
    }
    let len = name.chars().count();
    if len > MAX_PROJECT_NAME_LEN {
        return bad(format!(
            "it is {len} characters long, more than {MAX_PROJECT_NAME_LEN}"
        ));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return bad("it has upper-case letters; use lower case".to_string());
    }
    let is_sep = |c: char| matches!(c, '.' | '_' | '-');
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || is_sep(c)))
    {
        return bad(format!("it contains {c:?}, which Harbor does not allow"));
    }
    let (first, last) = (name.chars().next(), name.chars().last());
    if let Some(c) = first.filter(|&c| is_sep(c)) {
        return bad(format!("it starts with {c:?}"));
    }
    if let Some(c) = last.filter(|&c| is_sep(c)) {
        return bad(format!("it ends with {c:?}"));
    }
    let chars: Vec<char> = name.chars().collect();
    if let Some(pair) = chars.windows(2).find(|w| is_sep(w[0]) && is_sep(w[1])) {
        return bad(format!(
            "it has two separators in a row ({:?})",
            pair.iter().collect::<String>()
        ));
    }
    Ok(())
}

/// Parses and normalises the API base; returns it without trailing `/` and its `host[:port]`.
fn parse_api_base(api_base: &str) -> Result<(String, String), HarborError> {
    // Whatever is wrong, the URL may hold user:password@: errors show it without.
    let invalid = |reason: &str| HarborError::InvalidApiBase {
        api_base: strip_userinfo_text(api_base.trim()),
        reason: reason.to_string(),
    };
    let url = Url::parse(api_base.trim()).map_err(|e| invalid(&format!("not a URL ({e})")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("the scheme must be https or http"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it holds user information; credentials belong in the auth file (`ferry login HOST`), never in a URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "it has a query or fragment; give only scheme, host, port and path",
        ));
    }
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(invalid("it has no host")),
    };
    let base = url.as_str().trim_end_matches('/').to_string();
    Ok((base, host))
}

/// Drops the user information (anything between `://`, or the start, and the last `@`).
fn strip_userinfo_text(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &text[..s + 3], &text[at + 1..]),
        (None, Some(at)) => text[at + 1..].to_string(),
        _ => text.to_string(),
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a body; a failed read leaves what arrived.
async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// Harbor's own words from an error answer: its `errors` array, else the body's text, else the
/// status's reason; plus Harbor's request ID, which finds the request in Harbor's log.
fn harbor_message(answer: &Answer) -> String {
    let mut message = message_from_body(&answer.body).unwrap_or_else(|| {
        answer
            .status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    });
    if let Some(id) = answer
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        message.push_str(&format!(" (Harbor request ID {id})"));
    }
    message
}

/// The message shown for a Harbor error body: its `errors`, else its text on one line.
pub(crate) fn message_from_body(body: &[u8]) -> Option<String> {
    if let Ok(parsed) = serde_json::from_slice::<ErrorsBody>(body) {
        let parts: Vec<String> = parsed
            .errors
            .iter()
            .filter_map(|e| match (&e.code, &e.message) {
                (Some(code), Some(msg)) => Some(format!("{code}: {msg}")),
                (None, Some(msg)) => Some(msg.clone()),
                (Some(code), None) => Some(code.clone()),
                (None, None) => None,
            })
            .collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    // Not Harbor's JSON (a proxy's page, say): its text on one line, shortened.
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    const MAX_CHARS: usize = 300;
    Some(if text.chars().count() > MAX_CHARS {
        format!("{}…", text.chars().take(MAX_CHARS).collect::<String>())
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_harbor_project_names() {
        for name in [
            "quay.io",
            "docker.io",
            "localhost_5000",
            "registry.k8s.io",
            "a",
            "0",
            "a-b_c.d",
            "platform",
            &"a".repeat(255),
        ] {
            validate_project_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn refuses_names_harbor_refuses_and_says_why() {
        for (name, why) in [
            ("", "empty"),
            ("Quay.io", "upper-case"),
            ("quay.io:443", "':'"),
            ("a/b", "'/'"),
            ("-a", "starts with '-'"),
            ("a.", "ends with '.'"),
            ("a..b", "two separators in a row (\"..\")"),
            ("a._b", "two separators"),
            ("ä", "'ä'"),
            (&"a".repeat(256), "256 characters"),
        ] {
            let err = validate_project_name(name).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("{name:?}")), "{text}");
            assert!(text.contains(why), "{name}: {text}");
            assert!(text.contains("--to HOST/PREFIX"), "{text}");
        }
    }

    #[test]
    fn api_base_is_normalised_and_never_echoes_credentials() {
        let (base, host) = parse_api_base("https://harbor.site:8443/api/v2.0/").unwrap();
        assert_eq!(base, "https://harbor.site:8443/api/v2.0");
        assert_eq!(host, "harbor.site:8443");
        let (_, host) = parse_api_base("https://harbor.site/api/v2.0").unwrap();
        assert_eq!(host, "harbor.site");

        let err = parse_api_base("https://admin:s3cret@harbor.site/api/v2.0").unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("admin"),
            "{text}"
        );
        assert!(text.contains("auth file"), "{text}");
        for bad in [
            "admin:s3cret@harbor site",
            "admin:s3cret@harbor.site/api/v2.0",
        ] {
            let err = parse_api_base(bad).unwrap_err();
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        assert!(parse_api_base("ftp://harbor.site/api/v2.0").is_err());
        assert!(parse_api_base("https://harbor.site/api/v2.0?x=1").is_err());
    }

    #[test]
    fn harbor_error_body_becomes_the_message() {
        let body = br#"{"errors":[{"code":"FORBIDDEN","message":"Only system admin can create project"}]}"#;
        assert_eq!(
            message_from_body(body).unwrap(),
            "FORBIDDEN: Only system admin can create project"
        );
        assert_eq!(
            message_from_body(b"<html>\n <body>Bad   Gateway</body></html>").unwrap(),
            "<html> <body>Bad Gateway</body></html>"
        );
        assert!(message_from_body(b"").is_none());
        assert!(message_from_body(&vec![b'x'; 1000]).unwrap().ends_with('…'));
    }

    #[test]
    fn project_request_matches_the_spec() {
        let body = serde_json::to_string(&ProjectReq {
            project_name: "quay.io",
            metadata: ProjectMetadata {
                public: bool_str(false),
                enable_content_trust_cosign: bool_str(true),
            },
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"project_name":"quay.io","metadata":{"public":"false","enable_content_trust_cosign":"true"}}"#
        );
    }

    #[test]
    fn unreadable_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = HarborClient::new("https://h/api/v2.0", None, std::slice::from_ref(&missing))
            .unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err =
            HarborClient::new("https://h/api/v2.0", None, std::slice::from_ref(&junk)).unwrap_err();
        assert!(err.to_string().contains("junk.pem"), "{err}");
    }

    #[test]
    fn debug_hides_the_password() {
        let client = HarborClient::new(
            "https://h/api/v2.0",
            Some(Credentials {
                username: "admin".into(),
                password: "s3cret".into(),
            }),
            &[],
        )
        .unwrap();
        let text = format!("{client:?}");
        assert!(text.contains("admin") && !text.contains("s3cret"), "{text}");
    }
}
