//! Talking to OCI distribution registries: TLS and plain-HTTP choice, credentials, retries.
//! Shared by the registry source (pull) and the registry target (push).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::auth::{AuthError, Credentials};
use crate::digest::Digest;
use crate::layout::LayoutError;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Hosts that may be reached over plain HTTP after HTTPS fails.
    pub insecure: Vec<String>,
    /// Attempts per request before giving up.
    pub attempts: u32,
    /// First retry delay; doubles each time (a `Retry-After` on 429 and 503 overrides it).
    pub backoff: Duration,
    /// How long a registry may stay silent (connecting, before its answer, between reads).
    pub timeout: Duration,
}

impl RegistryOptions {
    /// Defaults for the given CA files and insecure hosts; attempts and timeout from
    /// `--retries` and `--timeout` ([`crate::retry::patience`]).
    pub fn new(ca_files: Vec<PathBuf>, insecure: Vec<String>) -> Self {
        let patience = crate::retry::patience();
        RegistryOptions {
            ca_files,
            insecure,
            attempts: patience.attempts,
            backoff: Duration::from_millis(250),
            timeout: patience.timeout,
        }
    }
}

/// Errors talking to a registry; each names the registry or reference and the next step.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made.
    #[error(
        "cannot reach registry {host}: {reason}. Check the host name and port, the network, and --ca-file / --insecure-registry"
    )]
    Unreachable {
        /// The registry.
        host: String,
        /// Why.
        reason: String,
    },
    /// Credentials missing or refused.
    #[error(
        "registry {host} refused access to {reference} (unauthorized). Log in with `ferry login {host}` or `docker login {host}`, or check the credentials in the auth file"
    )]
    Unauthorized {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
    },
    /// The reference does not exist.
    #[error(
        "{reference} was not found on {host}: {message}. Check the repository name and tag in the manifest"
    )]
    NotFound {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
        /// The registry's words.
        message: String,
    },
    /// The registry answered with an error, after retries where that makes sense.
    #[error("registry {host} failed for {reference}: {message}")]
    Failed {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
        /// What happened.
        message: String,
    },
    /// The registry stayed silent longer than the timeout, on every attempt.
    #[error(
        "registry {host} did not answer for {reference} within {timeout} (the timeout), {attempts} attempts: {message}. Check that the registry is up and reachable from here; if it is only slow, give it longer with --timeout SECONDS (or FERRY_TIMEOUT) and more attempts with --retries N"
    )]
    TimedOut {
        /// The registry.
        host: String,
        /// What was asked for.
        reference: String,
        /// The timeout, as text ("60 s").
        timeout: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// The content did not match its digest.
    #[error(
        "{reference}: the registry sent content for {expected} that hashes to {actual}. Nothing was stored; try again, and report it to the registry's operators if it persists"
    )]
    DigestMismatch {
        /// What was asked for.
        reference: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest received.
        actual: Digest,
    },
    /// A CA file could not be read.
    #[error("cannot read CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The auth file or a credential helper failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A configured client for a set of registry hosts.
pub struct Connection {
    auths: BTreeMap<String, RegistryAuth>,
    /// The options it was made with.
    pub options: RegistryOptions,
    /// Every request to a registry and its token service.
    http: reqwest::Client,
    plain_http: Vec<String>,
    /// Per host: how it wants requests authorized, from its answer to `GET /v2/`.
    challenges: tokio::sync::Mutex<BTreeMap<String, HostAuth>>,
    /// Multi-scope tokens by "host scope scope...", with when to stop using them.
    tokens: tokio::sync::Mutex<BTreeMap<String, (String, Instant)>>,
    /// Per host: the wait its latest 429 or 503 asked for (`Retry-After`), taken by the next
    /// retry of a request to it.
    retry_after: std::sync::Mutex<BTreeMap<String, Duration>>,
}

/// The largest token answer read into memory (tokens are a few KiB; a JWT with many claims
/// some tens).
pub const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// A registry's `WWW-Authenticate: Bearer realm=...,service=...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub(crate) realm: String,
    pub(crate) service: Option<String>,
}

/// How a registry wants requests authorized, from its answer to `GET /v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostAuth {
    /// 200: no credentials needed.
    Open,
    /// 401 without a bearer challenge: HTTP basic auth with the stored credentials.
    Basic,
    /// 401 with a bearer challenge: tokens from its realm.
    Bearer(BearerChallenge),
}

impl HostAuth {
    /// What a registry's answer says; `None` for an answer that is not a registry's own.
    fn from_answer(response: &reqwest::Response) -> Option<HostAuth> {
        match response.status() {
            reqwest::StatusCode::UNAUTHORIZED => Some(
                response
                    .headers()
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(parse_bearer_challenge)
                    .map_or(HostAuth::Basic, HostAuth::Bearer),
            ),
            status if status.is_success() => Some(HostAuth::Open),
            _ => None,
        }
    }
}

/// A registry's refusal as a client error, its body as the message (sorted by `classify`).
async fn status_error(response: reqwest::Response) -> OciDistributionError {
    let code = response.status().as_u16();
    let url = response.url().to_string();
    let message = response.text().await.unwrap_or_default();
    let message = if message.trim().is_empty() {
        format!("HTTP {code}")
    } else {
        message
    };
    OciDistributionError::ServerError { code, url, message }
}

/// Whether a host is on this machine (plain HTTP may be tried for it).
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Connection {
    /// Prepares access to `hosts`: trust roots, credentials, and HTTPS or plain HTTP per host.
    ///
    /// Plain HTTP is used only for loopback hosts and hosts named insecure, and only after
    /// HTTPS failed to connect, as Docker does.
    pub async fn connect(
        hosts: &BTreeSet<String>,
        options: RegistryOptions,
        credentials: impl Fn(&str) -> Result<Option<Credentials>, AuthError>,
    ) -> Result<Connection, RegistryError> {
        Self::connect_probed(hosts, options, credentials, BTreeMap::new()).await
    }

    /// As [`Connection::connect`], with hosts already probed (`GET /v2/` asked once per run):
    /// their answers are used, not asked for again.
    pub async fn connect_probed(
        hosts: &BTreeSet<String>,
        options: RegistryOptions,
        credentials: impl Fn(&str) -> Result<Option<Credentials>, AuthError>,
        probed: BTreeMap<String, Probe>,
    ) -> Result<Connection, RegistryError> {
        let certs = read_ca_files(&options.ca_files)?;
        let mut plain_http = Vec::new();
        // What the probes' `/v2/` answers said about authorization: not asked again.
        let mut challenges = BTreeMap::new();
        for host in hosts {
            let may_use_http = is_loopback(host) || options.insecure.iter().any(|h| h == host);
            if let Some(probe) = probed.get(host) {
                if probe.scheme == Scheme::Http && may_use_http {
                    plain_http.push(host.clone());
                }
                challenges.insert(host.clone(), probe.auth.clone());
            } else if may_use_http {
                let probe = probe_within(host, &certs, true, options.timeout)
                    .await
                    .map_err(|reason| RegistryError::Unreachable {
                        host: host.clone(),
                        reason,
                    })?;
                if probe.scheme == Scheme::Http {
                    plain_http.push(host.clone());
                }
                challenges.insert(host.clone(), probe.auth);
            }
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(options.timeout.min(Duration::from_secs(15)))
            .read_timeout(options.timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        for c in &certs {
            if let Ok(cert) = reqwest::Certificate::from_pem(&c.data) {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| RegistryError::Failed {
            host: hosts.iter().cloned().collect::<Vec<_>>().join(", "),
            reference: String::new(),
            message: format!("cannot set up the HTTP client: {e}"),
        })?;
        let mut auths = BTreeMap::new();
        for host in hosts {
            let auth = match credentials(host)? {
                Some(c) => RegistryAuth::Basic(c.username, c.password),
                None => RegistryAuth::Anonymous,
            };
            auths.insert(host.clone(), auth);
        }
        Ok(Connection {
            auths,
            options,
            http,
            plain_http,
            challenges: tokio::sync::Mutex::new(challenges),
            tokens: Default::default(),
            retry_after: Default::default(),
        })
    }

    /// Keeps the `Retry-After` of a 429 or 503 from `host` for the next retry.
    fn note_retry_after(&self, host: &str, response: &reqwest::Response) {
        if crate::retry::honours_retry_after(response.status().as_u16())
            && let Some(wait) = crate::retry::retry_after(response.headers())
        {
            self.retry_after
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(host.to_string(), wait);
        }
    }

    /// Says that a request to `host` for `what` failed (`reason`) and is tried again, and
    /// waits: what the registry's `Retry-After` asked (capped), else the doubling backoff.
    pub async fn wait_to_retry(&self, host: &str, what: &str, reason: &str, attempt: u32) {
        let asked = self
            .retry_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(host);
        // A reference names its registry already.
        let label = if what.starts_with(host) {
            what.to_string()
        } else {
            format!("{host}: {what}")
        };
        crate::retry::pause(
            &label,
            reason,
            attempt,
            self.options.attempts,
            self.options.backoff,
            asked,
        )
        .await;
    }

    /// The error after the last attempt at a request to `host` for `what` failed (`message`,
    /// as `classify` put it).
    pub fn gave_up(&self, host: &str, what: &str, message: String, attempts: u32) -> RegistryError {
        if let Some(reason) = message.strip_prefix("connect: ") {
            return RegistryError::Unreachable {
                host: host.to_string(),
                reason: reason.to_string(),
            };
        }
        if let Some(reason) = message.strip_prefix(TIMEOUT_PREFIX) {
            return RegistryError::TimedOut {
                host: host.to_string(),
                reference: what.to_string(),
                timeout: crate::retry::seconds_text(self.options.timeout),
                attempts,
                message: reason.to_string(),
            };
        }
        RegistryError::Failed {
            host: host.to_string(),
            reference: what.to_string(),
            message: format!("{message} (gave up after {attempts} attempts)"),
        }
    }

    /// "https://HOST", or "http://HOST" for a host that answered only plain HTTP. Docker Hub's
    /// API answers at index.docker.io, not docker.io.
    fn base_url(&self, host: &str) -> String {
        let scheme = if self.plain_http.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        let api = if host == "docker.io" {
            "index.docker.io"
        } else {
            host
        };
        format!("{scheme}://{api}")
    }

    /// How `host` wants requests authorized, from one `GET /v2/` per process (or the answer
    /// `connect` already had). (oci-client asked `/v2/` again before every request to a
    /// registry that needs no credentials.)
    async fn host_auth(&self, host: &str) -> Result<HostAuth, OciDistributionError> {
        let mut challenges = self.challenges.lock().await;
        if let Some(known) = challenges.get(host) {
            return Ok(known.clone());
        }
        let url = format!("{}/v2/", self.base_url(host));
        let response = self.http.get(&url).send().await?;
        self.note_retry_after(host, &response);
        let Some(known) = HostAuth::from_answer(&response) else {
            // Not the registry's own answer (a proxy's 503, say): ask again next time.
            return Err(OciDistributionError::ServerError {
                code: response.status().as_u16(),
                url,
                message: "/v2/ did not answer as a registry".to_string(),
            });
        };
        challenges.insert(host.to_string(), known.clone());
        Ok(known)
    }

    /// One bearer token for all of `scopes`, as Docker asks for a cross-repository mount (push
    /// on the target, pull on the source).
    /// `None` when the registry does not use bearer tokens.
    async fn scoped_token(
        &self,
        host: &str,
        scopes: &[String],
    ) -> Result<Option<String>, OciDistributionError> {
        let HostAuth::Bearer(challenge) = self.host_auth(host).await? else {
            return Ok(None);
        };
        let key = format!("{host} {}", scopes.join(" "));
        if let Some((token, until)) = self.tokens.lock().await.get(&key)
            && Instant::now() < *until
        {
            return Ok(Some(token.clone()));
        }
        let mut url = reqwest::Url::parse(&challenge.realm).map_err(|e| {
            OciDistributionError::GenericError(Some(format!(
                "token realm {:?}: {e}",
                challenge.realm
            )))
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        let mut request = self.http.get(url.clone());
        if let RegistryAuth::Basic(user, password) = self.auth(host) {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("the token service answered {status}");
            return Err(match status.as_u16() {
                401 | 403 => OciDistributionError::AuthenticationFailure(message),
                code => OciDistributionError::ServerError {
                    code,
                    url: challenge.realm.clone(),
                    message,
                },
            });
        }
        let body = match read_limited(response, MAX_TOKEN_ANSWER).await? {
            Limited::Body(body) => body,
            Limited::TooLarge(_) => {
                return Err(OciDistributionError::GenericError(Some(format!(
                    "the token service {} answered more than {} KiB, the limit for a token answer; check that the registry's realm is a token service",
                    challenge.realm,
                    MAX_TOKEN_ANSWER >> 10
                ))));
            }
        };
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            OciDistributionError::GenericError(Some(format!(
                "the token service's answer is not JSON: {e}"
            )))
        })?;
        let token = ["token", "access_token"]
            .iter()
            .filter_map(|k| answer[k].as_str())
            .find(|t| !t.is_empty())
            .ok_or_else(|| {
                OciDistributionError::GenericError(Some(
                    "the token service's answer holds no token".to_string(),
                ))
            })?
            .to_string();
        // 60 s when not said (the token spec's default); renewed a little before it runs out.
        let lifetime = answer["expires_in"].as_u64().unwrap_or(60).max(1);
        let until = Instant::now() + Duration::from_secs(lifetime - lifetime / 5);
        self.tokens.lock().await.insert(key, (token.clone(), until));
        Ok(Some(token))
    }

    /// Adds what `host` asks for to a request: nothing, basic credentials, or a bearer token
    /// for `scopes`. Never for a URL of another origin (an upload location may point
    /// elsewhere; credentials must not follow it, CVE-2020-15157).
    async fn authorize(
        &self,
        host: &str,
        scopes: &[String],
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, OciDistributionError> {
        let (client, built) = request.build_split();
        let built = built?;
        let same_origin = reqwest::Url::parse(&self.base_url(host))
            .is_ok_and(|base| base.origin() == built.url().origin());
        let request = reqwest::RequestBuilder::from_parts(client, built);
        if !same_origin {
            return Ok(request);
        }
        Ok(match self.host_auth(host).await? {
            HostAuth::Open => request,
            HostAuth::Basic => match self.auth(host) {
                RegistryAuth::Basic(user, password) => request.basic_auth(user, Some(password)),
                _ => request,
            },
            HostAuth::Bearer(_) => match self.scoped_token(host, scopes).await? {
                Some(token) => request.bearer_auth(token),
                None => request,
            },
        })
    }

    /// Sends a request made by `make` to `host` with the authorization it asks for. A host
    /// that answered `/v2/` without a challenge but refuses this request (401) is asked
    /// again the way its refusal says, once.
    async fn send(
        &self,
        host: &str,
        scopes: &[String],
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciDistributionError> {
        let response = self.authorize(host, scopes, make()).await?.send().await?;
        self.note_retry_after(host, &response);
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let learned = HostAuth::from_answer(&response);
        {
            let mut challenges = self.challenges.lock().await;
            match (challenges.get(host), learned) {
                (Some(HostAuth::Open), Some(learned)) if learned != HostAuth::Open => {
                    challenges.insert(host.to_string(), learned);
                }
                _ => return Ok(response),
            }
        }
        Ok(self.authorize(host, scopes, make()).await?.send().await?)
    }

    /// The scope ferry asks a token for on the push side: one token per repository serves
    /// its HEADs, uploads and manifests.
    fn push_scope(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull,push")]
    }

    /// Checks once, before anything is pushed, that `host` lets the credentials push into
    /// `repository` (with bearer tokens: that the token service accepts them).
    pub async fn check_push_access(
        &self,
        host: &str,
        repository: &str,
    ) -> Result<(), OciDistributionError> {
        self.authorize(
            host,
            &Self::push_scope(repository),
            self.http.get(self.base_url(host)),
        )
        .await
        .map(|_| ())
    }

    /// Whether `repository` on `host` holds blob `digest` (HEAD).
    pub async fn blob_exists(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, OciDistributionError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url(host));
        let response = self
            .send(host, &Self::push_scope(repository), || self.http.head(&url))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(response).await),
        }
    }

    /// The digest `repository:reference` names on `host`, `None` when it names nothing.
    pub async fn manifest_digest(
        &self,
        host: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, OciDistributionError> {
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(host)
        );
        let scopes = Self::push_scope(repository);
        let accept = crate::layout::oci::MANIFEST_MEDIA_TYPES.join(", ");
        let response = self
            .send(host, &scopes, || {
                self.http
                    .head(&url)
                    .header(reqwest::header::ACCEPT, &accept)
            })
            .await?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(status_error(response).await),
            _ => {}
        }
        if let Some(digest) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            return Ok(Some(digest.to_string()));
        }
        // No digest header: the digest of what a GET returns.
        let response = self
            .send(host, &scopes, || {
                self.http.get(&url).header(reqwest::header::ACCEPT, &accept)
            })
            .await?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s if !s.is_success() => Err(status_error(response).await),
            _ => Ok(Some(Digest::of_bytes(&response.bytes().await?).to_string())),
        }
    }

    /// Puts a manifest or index, byte for byte, at `repository:reference` on `host`; returns
    /// whether the registry acknowledged a `subject` (`OCI-Subject`: it has the referrers API).
    pub async fn put_manifest(
        &self,
        host: &str,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<bool, OciDistributionError> {
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(host)
        );
        let response = self
            .send(host, &Self::push_scope(repository), || {
                self.http
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })
            .await?;
        if response.status().is_success() {
            Ok(response.headers().contains_key("oci-subject"))
        } else {
            Err(status_error(response).await)
        }
    }

    /// Starts a blob upload into `repository` on `host`: the session's URL (`POST`).
    pub async fn start_upload(
        &self,
        host: &str,
        repository: &str,
    ) -> Result<reqwest::Url, OciDistributionError> {
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base_url(host));
        let response = self
            .send(host, &Self::push_scope(repository), || {
                self.http
                    .post(&start)
                    .header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return Err(status_error(response).await);
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(OciDistributionError::RegistryNoLocationError)?;
        reqwest::Url::parse(&start)
            .and_then(|u| u.join(location))
            .map_err(|e| OciDistributionError::UrlParseError(e.to_string()))
    }

    /// Finishes an upload session with the whole blob in one request (`PUT` with the digest).
    pub async fn finish_upload(
        &self,
        host: &str,
        repository: &str,
        mut session: reqwest::Url,
        digest: &Digest,
        size: u64,
        body: reqwest::Body,
    ) -> Result<(), OciDistributionError> {
        session
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let request = self
            .http
            .put(session)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let response = self
            .authorize(host, &Self::push_scope(repository), request)
            .await?
            .send()
            .await?;
        self.note_retry_after(host, &response);
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error(response).await)
        }
    }

    /// Sends one chunk of an upload (`PATCH` with `Content-Range: start-end`): the session's
    /// next URL.
    pub async fn patch_upload(
        &self,
        host: &str,
        repository: &str,
        session: &reqwest::Url,
        start: u64,
        bytes: axum::body::Bytes,
    ) -> Result<reqwest::Url, OciDistributionError> {
        let end = start + bytes.len() as u64 - 1;
        let response = self
            .send(host, &Self::push_scope(repository), || {
                self.http
                    .patch(session.clone())
                    .header(reqwest::header::CONTENT_LENGTH, bytes.len())
                    .header(reqwest::header::CONTENT_RANGE, format!("{start}-{end}"))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return Err(status_error(response).await);
        }
        next_session(session, &response)
    }

    /// Finishes an upload session with its last bytes (`PUT ?digest=`, the bytes possibly
    /// none).
    pub async fn put_upload(
        &self,
        host: &str,
        repository: &str,
        session: &reqwest::Url,
        digest: &Digest,
        bytes: axum::body::Bytes,
    ) -> Result<(), OciDistributionError> {
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let response = self
            .send(host, &Self::push_scope(repository), || {
                self.http
                    .put(url.clone())
                    .header(reqwest::header::CONTENT_LENGTH, bytes.len())
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error(response).await)
        }
    }

    /// Where an upload session stands (`GET` the session): the bytes the registry holds and
    /// the session's next URL; `None` when the registry no longer knows the session (or
    /// refuses it, as distribution does once a cut request left more bytes than it
    /// acknowledged).
    pub async fn upload_status(
        &self,
        host: &str,
        repository: &str,
        session: &reqwest::Url,
    ) -> Result<Option<(u64, reqwest::Url)>, OciDistributionError> {
        let response = self
            .send(host, &Self::push_scope(repository), || {
                self.http.get(session.clone())
            })
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::BAD_REQUEST {
            return Ok(None);
        }
        if status != reqwest::StatusCode::NO_CONTENT && !status.is_success() {
            return Err(status_error(response).await);
        }
        // `Range: 0-<last byte held>`; distribution says `0-0` for nothing held.
        let held = response
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().trim_start_matches("bytes=").split_once('-'))
            .and_then(|(_, end)| end.parse::<u64>().ok())
            .map_or(0, |end| if end == 0 { 0 } else { end + 1 });
        Ok(Some((held, next_session(session, &response)?)))
    }

    /// Mounts blob `digest` of repository `from` into `repository` on `host`; an error says
    /// why not (the caller uploads instead). With bearer tokens the mount needs one token for
    /// both repositories, which ferry asks for itself.
    pub async fn mount_blob(
        &self,
        host: &str,
        repository: &str,
        from: &str,
        digest: &Digest,
    ) -> Result<(), String> {
        let scopes = [
            format!("repository:{repository}:pull,push"),
            format!("repository:{from}:pull"),
        ];
        let mut url = reqwest::Url::parse(&format!(
            "{}/v2/{repository}/blobs/uploads/",
            self.base_url(host)
        ))
        .map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from);
        let response = self
            .send(host, &scopes, || {
                self.http
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await
            .map_err(|e| e.to_string())?;
        match response.status() {
            reqwest::StatusCode::CREATED => Ok(()),
            status => Err(format!("the registry answered {status}")),
        }
    }

    /// The credentials for a host (anonymous when none).
    pub fn auth(&self, host: &str) -> RegistryAuth {
        self.auths
            .get(host)
            .cloned()
            .unwrap_or(RegistryAuth::Anonymous)
    }

    /// Runs a request, retrying transient failures with exponential backoff.
    pub async fn retry<T, F, Fut>(
        &self,
        host: &str,
        what: &str,
        mut op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match classify(host, what, e) {
                    StreamFailure::Fatal(e) => return Err(e),
                    StreamFailure::Retry(message) if attempt >= self.options.attempts => {
                        return Err(self.gave_up(host, what, message, attempt));
                    }
                    StreamFailure::Retry(message) => {
                        self.wait_to_retry(host, what, &message, attempt).await;
                    }
                },
            }
        }
    }
}

/// A blob's bytes as the registry sends them, from `start` on.
pub struct BlobBody {
    /// The offset of the first byte: the one asked for (206), or 0 when the registry ignored
    /// the range and sends the whole blob (200).
    pub start: u64,
    /// The response; read it with `chunk()`.
    pub response: reqwest::Response,
}

/// A body read into memory, or the sign that it was larger than allowed.
pub enum Limited {
    /// The whole body, exactly as sent.
    Body(Vec<u8>),
    /// Larger than the limit: its size when the registry said it, else `None`.
    TooLarge(Option<u64>),
}

/// The pull side: manifests, blobs and tag lists, with pull-scope tokens. Every request goes
/// through `send`, so `/v2/` is asked once per host and process.
impl Connection {
    /// The scope ferry asks a token for on the pull side.
    fn pull_scope(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull")]
    }

    /// Sends a pull request to `host` for `repository` and turns a refusal into an error.
    async fn send_pull(
        &self,
        host: &str,
        repository: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciDistributionError> {
        let response = self.send(host, &Self::pull_scope(repository), make).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(pull_error(response).await)
        }
    }

    /// Manifest or index `reference` (tag or digest) of `repository` on `host`, the bytes
    /// exactly as sent; no more than `limit` bytes are read.
    pub async fn get_manifest(
        &self,
        host: &str,
        repository: &str,
        reference: &str,
        limit: u64,
    ) -> Result<Limited, OciDistributionError> {
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(host)
        );
        let accept = crate::layout::oci::MANIFEST_MEDIA_TYPES.join(", ");
        let response = self
            .send_pull(host, repository, || {
                self.http.get(&url).header(reqwest::header::ACCEPT, &accept)
            })
            .await?;
        read_limited(response, limit).await
    }

    /// Blob `digest` of `repository` on `host` from byte `offset` on (a range request when
    /// `offset` is not 0). Redirects to blob storage are followed; reqwest drops the
    /// Authorization header when one leads to another host, port or scheme.
    pub async fn get_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobBody, OciDistributionError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url(host));
        let response = self
            .send_pull(host, repository, || {
                let request = self.http.get(&url);
                if offset > 0 {
                    request.header(reqwest::header::RANGE, format!("bytes={offset}-"))
                } else {
                    request
                }
            })
            .await?;
        let start = if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
            match content_range_start(&response) {
                Some(start) if start != offset => {
                    return Err(OciDistributionError::SpecViolationError(format!(
                        "asked for the blob from byte {offset}, the registry sent it from byte {start}"
                    )));
                }
                _ => offset,
            }
        } else {
            0
        };
        Ok(BlobBody { start, response })
    }

    /// One page of the tags of `repository` on `host`: at most `n` (the registry's choice when
    /// `None`), after `last`.
    pub async fn get_tags(
        &self,
        host: &str,
        repository: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Vec<String>, OciDistributionError> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/v2/{repository}/tags/list",
            self.base_url(host)
        ))
        .map_err(|e| OciDistributionError::UrlParseError(e.to_string()))?;
        if n.is_some() || last.is_some() {
            let mut query = url.query_pairs_mut();
            if let Some(n) = n {
                query.append_pair("n", &n.to_string());
            }
            if let Some(last) = last {
                query.append_pair("last", last);
            }
        }
        let response = self
            .send_pull(host, repository, || self.http.get(url.clone()))
            .await?;
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let body = response.bytes().await?;
        let tags: Tags = serde_json::from_slice(&body).map_err(|e| {
            OciDistributionError::GenericError(Some(format!("the tag list is not JSON: {e}")))
        })?;
        Ok(tags.tags.unwrap_or_default())
    }

    /// One page of the OCI 1.1 referrers listing of `digest` in `repository` on `host`
    /// (`GET /v2/<name>/referrers/<digest>`, at most `limit` bytes); `None` when the registry
    /// has no referrers API (it answers 404).
    pub async fn get_referrers(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
        artifact_type: Option<&str>,
        page: Option<&str>,
        limit: u64,
    ) -> Result<Option<ReferrersPage>, OciDistributionError> {
        let base = self.base_url(host);
        let mut url = match page {
            // A `Link` header's target: relative to the registry.
            Some(next) => reqwest::Url::parse(&base).and_then(|b| b.join(next)),
            None => reqwest::Url::parse(&format!("{base}/v2/{repository}/referrers/{digest}")),
        }
        .map_err(|e| OciDistributionError::UrlParseError(e.to_string()))?;
        if page.is_none()
            && let Some(t) = artifact_type
        {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let response = self
            .send(host, &Self::pull_scope(repository), || {
                self.http
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, crate::layout::oci::OCI_INDEX)
            })
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(pull_error(response).await);
        }
        let filtered = response
            .headers()
            .get_all("oci-filters-applied")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|f| f.trim() == "artifactType"));
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body = read_limited(response, limit).await?;
        Ok(Some(ReferrersPage {
            body,
            filtered,
            next,
        }))
    }

    /// Checks that the registry accepts the stored credentials for `host`.
    pub async fn check_login(&self, host: &str) -> Result<(), RegistryError> {
        // Any repository name works: the token service and the registry check the user.
        let what = format!("{host} (login)");
        self.retry(host, &what, || async {
            match self
                .get_tags(host, "ferry/login-check", Some(1), None)
                .await
            {
                Err(e @ OciDistributionError::UnauthorizedError { .. })
                | Err(e @ OciDistributionError::AuthenticationFailure(_))
                | Err(
                    e @ OciDistributionError::ServerError {
                        code: 401 | 403 | 429 | 500..,
                        ..
                    },
                )
                | Err(e @ OciDistributionError::RequestError(_)) => Err(e),
                // A missing repository (404) with accepted credentials is a success.
                _ => Ok(()),
            }
        })
        .await
    }
}

/// A refusal on the pull side as oci-client reported it: 401 as unauthorized, a 4xx with the
/// registry's error envelope as its codes, anything else with its body as the message.
/// The session URL an upload answer gives (`Location`, relative to the session), or the same
/// one when it gives none.
fn next_session(
    session: &reqwest::Url,
    response: &reqwest::Response,
) -> Result<reqwest::Url, OciDistributionError> {
    match response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(location) => session
            .join(location)
            .map_err(|e| OciDistributionError::UrlParseError(e.to_string())),
        None => Ok(session.clone()),
    }
}

async fn pull_error(response: reqwest::Response) -> OciDistributionError {
    let status = response.status();
    let url = response.url().to_string();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return OciDistributionError::UnauthorizedError { url };
    }
    if status.is_client_error() {
        let body = response.bytes().await.unwrap_or_default();
        return match serde_json::from_slice::<oci_client::errors::OciEnvelope>(&body) {
            Ok(envelope) => OciDistributionError::RegistryError { envelope, url },
            Err(_) => OciDistributionError::ServerError {
                code: status.as_u16(),
                url,
                message: String::from_utf8_lossy(&body).into_owned(),
            },
        };
    }
    status_error(response).await
}

/// A page of a referrers listing.
pub struct ReferrersPage {
    /// The image index of descriptors, as sent.
    pub body: Limited,
    /// Whether the registry applied the `artifactType` filter (`OCI-Filters-Applied`).
    pub filtered: bool,
    /// The next page (`Link: <...>; rel="next"`).
    pub next: Option<String>,
}

/// The target of a `Link: <url>; rel="next"` header.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// The first byte a 206 answer holds, from its `Content-Range: bytes START-END/SIZE`.
fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?
        .trim()
        .strip_prefix("bytes ")?
        .split_once('-')?
        .0
        .trim()
        .parse()
        .ok()
}

/// Reads a response body into memory, stopping as soon as it grows past `limit`.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Limited, OciDistributionError> {
    if let Some(size) = response.content_length()
        && size > limit
    {
        return Ok(Limited::TooLarge(Some(size)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Ok(Limited::TooLarge(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Limited::Body(body))
}

/// How `classify` starts the message of a request the registry left unanswered past the
/// timeout (the final error says which timeout).
pub const TIMEOUT_PREFIX: &str = "no answer within the timeout: ";

/// A failed request: worth another attempt, or final.
pub enum StreamFailure {
    /// Transient: retry.
    Retry(String),
    /// Final.
    Fatal(RegistryError),
}

/// Sorts a client error into transient (retry) or final, with a message for people.
pub fn classify(host: &str, what: &str, error: OciDistributionError) -> StreamFailure {
    let fatal = |message: String| {
        StreamFailure::Fatal(RegistryError::Failed {
            host: host.to_string(),
            reference: what.to_string(),
            message,
        })
    };
    match error {
        OciDistributionError::RequestError(e) if e.status().is_some() => {
            // A status turned into an error by reqwest (e.g. blob HEAD): sort it by code.
            let code = e.status().map(|s| s.as_u16()).unwrap_or_default();
            classify(
                host,
                what,
                OciDistributionError::ServerError {
                    code,
                    url: String::new(),
                    message: format!("HTTP {code}"),
                },
            )
        }
        OciDistributionError::RequestError(e) => {
            if e.is_timeout() {
                StreamFailure::Retry(format!("{TIMEOUT_PREFIX}{}", error_chain(&e)))
            } else if e.is_connect() {
                StreamFailure::Retry(format!("connect: {}", error_chain(&e)))
            } else {
                StreamFailure::Retry(error_chain(&e))
            }
        }
        OciDistributionError::IoError(e) => StreamFailure::Retry(e.to_string()),
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => StreamFailure::Fatal(RegistryError::Unauthorized {
                host: host.to_string(),
                reference: what.to_string(),
            }),
            404 => StreamFailure::Fatal(RegistryError::NotFound {
                host: host.to_string(),
                reference: what.to_string(),
                message: trim(&message),
            }),
            408 | 429 | 500..=599 => {
                let reason = reqwest::StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let message = trim(&message);
                StreamFailure::Retry(if message.is_empty() || message == format!("HTTP {code}") {
                    format!("{code} {reason}")
                } else {
                    format!("{code} {reason}: {message}")
                })
            }
            _ => fatal(format!("HTTP {code}: {}", trim(&message))),
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            StreamFailure::Fatal(RegistryError::Unauthorized {
                host: host.to_string(),
                reference: what.to_string(),
            })
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let message = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                StreamFailure::Retry(message)
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                StreamFailure::Fatal(RegistryError::Unauthorized {
                    host: host.to_string(),
                    reference: what.to_string(),
                })
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                StreamFailure::Fatal(RegistryError::NotFound {
                    host: host.to_string(),
                    reference: what.to_string(),
                    message,
                })
            } else {
                fatal(message)
            }
        }
        other => fatal(other.to_string()),
    }
}

fn trim(message: &str) -> String {
    let m = message.trim();
    if m.len() > 300 {
        {
            let mut end = 300;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &m[..end])
        }
    } else {
        m.to_string()
    }
}

/// An error and its causes, since reqwest hides the useful part (refused, TLS) in the chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The Bearer challenge among a `WWW-Authenticate` header's, if any: `Bearer realm="...",service="..."`.
pub(crate) fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let header = header.trim_start();
    let (scheme, mut rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (mut realm, mut service) = (None, None);
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let value;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => text.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => text.push(c),
                }
            }
            value = text;
            rest = &quoted[end..];
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_string();
            rest = &after[end..];
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(BearerChallenge {
        realm: realm?,
        service,
    })
}

/// The scheme a registry answered `/v2/` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// It answered over HTTPS.
    Https,
    /// Only plain HTTP (allowed for loopback or insecure hosts).
    Http,
}

impl Scheme {
    /// `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// How a registry answered `GET /v2/`.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The scheme it answered on.
    pub scheme: Scheme,
    /// How it wants requests authorized.
    auth: HostAuth,
}

/// Reads CA certificates (PEM) to trust beside the system roots, checking each.
pub fn read_ca_files(paths: &[PathBuf]) -> Result<Vec<Certificate>, RegistryError> {
    let mut certs = Vec::new();
    for path in paths {
        let data = std::fs::read(path).map_err(|e| RegistryError::CaFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        reqwest::Certificate::from_pem(&data).map_err(|e| RegistryError::CaFile {
            path: path.clone(),
            reason: format!("not a PEM certificate: {e}"),
        })?;
        certs.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    Ok(certs)
}

/// Asks `host`'s `/v2/` over HTTPS and then, when `plain_http_allowed` (loopback or insecure
/// hosts, as Docker does), over plain HTTP. Only a registry's own answer (200, or 401 asking for
/// credentials) counts: a TLS server answering plain HTTP with 400 means HTTPS is right and its
/// certificate is the issue. 5xx and 429 answers are asked again a few times. The error says
/// what each scheme answered.
pub async fn probe(
    host: &str,
    certs: &[Certificate],
    plain_http_allowed: bool,
) -> Result<Probe, String> {
    probe_within(
        host,
        certs,
        plain_http_allowed,
        crate::retry::patience().timeout,
    )
    .await
}

/// [`probe`], each question given at most `timeout` (and 15 s).
async fn probe_within(
    host: &str,
    certs: &[Certificate],
    plain_http_allowed: bool,
    timeout: Duration,
) -> Result<Probe, String> {
    let timeout = timeout.min(Duration::from_secs(15));
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout);
    for c in certs {
        if let Ok(cert) = reqwest::Certificate::from_pem(&c.data) {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let ask = |scheme: Scheme| {
        let client = &client;
        async move {
            let url = format!("{}://{host}/v2/", scheme.as_str());
            let mut answer = client.get(&url).send().await;
            for attempt in 1..4u32 {
                match &answer {
                    Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                        let asked = crate::retry::honours_retry_after(r.status().as_u16())
                            .then(|| crate::retry::retry_after(r.headers()))
                            .flatten();
                        crate::retry::pause(
                            &url,
                            &format!("HTTP {}", r.status()),
                            attempt,
                            4,
                            Duration::from_millis(250),
                            asked,
                        )
                        .await;
                        answer = client.get(&url).send().await;
                    }
                    _ => break,
                }
            }
            match answer {
                Ok(r) => match HostAuth::from_answer(&r) {
                    Some(auth) => Ok(Probe { scheme, auth }),
                    None => Err(format!("{url} answered {}", r.status())),
                },
                Err(e) if e.is_timeout() => Err(format!(
                    "{url}: no answer within {} (raise --timeout if the registry is only slow)",
                    crate::retry::seconds_text(timeout)
                )),
                Err(e) => Err(format!("{url}: {}", error_chain(&e))),
            }
        }
    };
    let https = match ask(Scheme::Https).await {
        Ok(probe) => return Ok(probe),
        Err(e) => e,
    };
    if !plain_http_allowed {
        return Err(https);
    }
    ask(Scheme::Http)
        .await
        .map_err(|http| format!("{https}; {http}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn referrers_next_page_link() {
        assert_eq!(
            super::next_link(r#"</v2/a/referrers/sha256:x?n=2&last=y>; rel="next""#).as_deref(),
            Some("/v2/a/referrers/sha256:x?n=2&last=y")
        );
        assert_eq!(super::next_link(r#"<https://r/x>; rel="prev""#), None);
    }

    use super::{BearerChallenge, is_loopback, parse_bearer_challenge};

    #[test]
    fn bearer_challenges() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#
            ),
            Some(BearerChallenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            parse_bearer_challenge(
                r#"bearer service="a \"b\", c", realm=http://127.0.0.1:1/token"#
            ),
            Some(BearerChallenge {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some(r#"a "b", c"#.into()),
            })
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="harbor""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.local:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}

#[cfg(test)]
mod redirect_tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use super::{Connection, RegistryOptions};
    use crate::auth::Credentials;
    use crate::digest::Digest;

    const BLOB: &[u8] = b"0123456789 a blob kept in blob storage";

    /// A one-request-per-connection HTTP server on 127.0.0.1; `answer` gets the request head
    /// (lowercased) and returns the response. TLS handshakes (the HTTPS probe) are hung up on.
    /// Returns the address and the heads seen.
    fn serve(answer: fn(&str) -> Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some(head) = read_head(&mut stream) {
                    seen.lock().unwrap().push(head.clone());
                    let _ = stream.write_all(&answer(&head));
                }
            }
        });
        (addr, heads)
    }

    fn read_head(stream: &mut TcpStream) -> Option<String> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).ok()?;
            if head.is_empty() && byte[0] == 0x16 {
                return None;
            }
            head.push(byte[0]);
        }
        Some(String::from_utf8_lossy(&head).to_ascii_lowercase())
    }

    fn response(status: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
        for h in headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// Blob storage: honours a range on /ranged, ignores it on /whole.
    fn storage(head: &str) -> Vec<u8> {
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("range: bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        match range {
            Some(start) if head.starts_with("get /ranged") => response(
                "206 Partial Content",
                &[format!(
                    "content-range: bytes {start}-{}/{}",
                    BLOB.len() - 1,
                    BLOB.len()
                )],
                &BLOB[start..],
            ),
            _ => response("200 OK", &[], BLOB),
        }
    }

    #[tokio::test]
    async fn blob_redirects_to_another_host_carry_no_credentials() {
        let (storage_addr, storage_heads) = serve(storage);
        // Another host name and port than the registry's; its answer (a plain fn) finds it here.
        STORAGE
            .set(storage_addr.replace("127.0.0.1", "localhost"))
            .unwrap();
        let (registry, registry_heads) = serve(|head| {
            if !head.contains("authorization: basic ") {
                return response(
                    "401 Unauthorized",
                    &["www-authenticate: Basic realm=\"test\"".to_string()],
                    b"",
                );
            }
            let storage = STORAGE.get().unwrap();
            let to = if head.contains("/v2/ranged/") {
                "ranged"
            } else {
                "whole"
            };
            if head.starts_with("get /v2/ ") {
                return response("200 OK", &[], b"{}");
            }
            response(
                "307 Temporary Redirect",
                &[format!("location: http://{storage}/{to}?sig=1")],
                b"",
            )
        });
        let digest = Digest::of_bytes(BLOB);
        let connection = Connection::connect(
            &[registry.clone()].into(),
            RegistryOptions::new(Vec::new(), Vec::new()),
            |_| {
                Ok(Some(Credentials {
                    username: "user".into(),
                    password: "pw".into(),
                }))
            },
        )
        .await
        .unwrap();

        let whole = connection
            .get_blob(&registry, "whole", &digest, 0)
            .await
            .unwrap();
        assert_eq!(whole.start, 0);
        assert_eq!(&whole.response.bytes().await.unwrap()[..], BLOB);

        let resumed = connection
            .get_blob(&registry, "ranged", &digest, 10)
            .await
            .unwrap();
        assert_eq!(resumed.start, 10);
        assert_eq!(&resumed.response.bytes().await.unwrap()[..], &BLOB[10..]);

        // Storage that ignores the range: the whole blob, from byte 0.
        let ignored = connection
            .get_blob(&registry, "whole", &digest, 10)
            .await
            .unwrap();
        assert_eq!(ignored.start, 0);
        assert_eq!(&ignored.response.bytes().await.unwrap()[..], BLOB);

        let registry_heads = registry_heads.lock().unwrap().clone();
        let blob_gets: Vec<&String> = registry_heads
            .iter()
            .filter(|h| h.contains("/blobs/"))
            .collect();
        assert_eq!(blob_gets.len(), 3, "{registry_heads:#?}");
        assert!(
            blob_gets
                .iter()
                .all(|h| h.contains("authorization: basic ")),
            "{registry_heads:#?}"
        );
        let storage_heads = storage_heads.lock().unwrap().clone();
        assert_eq!(storage_heads.len(), 3, "{storage_heads:#?}");
        assert!(
            storage_heads.iter().all(|h| !h.contains("authorization")),
            "credentials followed the redirect: {storage_heads:#?}"
        );
        assert!(
            storage_heads[1].contains("range: bytes=10-"),
            "{storage_heads:#?}"
        );
        assert!(!storage_heads[0].contains("range:"), "{storage_heads:#?}");
    }

    static STORAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
}
