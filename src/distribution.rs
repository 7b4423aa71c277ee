//! Talking to OCI distribution registries: TLS and plain-HTTP choice, credentials, retries.
//! Shared by the registry source (pull) and the registry target (push).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::auth::{AuthError, Credentials};
use crate::digest::Digest;
use crate::layout::LayoutError;
use crate::manifest::reference::Reference;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Hosts that may be reached over plain HTTP after HTTPS fails.
    pub insecure: Vec<String>,
    /// Attempts per request before giving up.
    pub attempts: u32,
    /// First retry delay; doubles each time.
    pub backoff: Duration,
}

impl RegistryOptions {
    /// Defaults for the given CA files and insecure hosts.
    pub fn new(ca_files: Vec<PathBuf>, insecure: Vec<String>) -> Self {
        RegistryOptions {
            ca_files,
            insecure,
            attempts: 5,
            backoff: Duration::from_millis(250),
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
    /// The oci-client client.
    pub client: oci_client::Client,
    auths: BTreeMap<String, RegistryAuth>,
    /// The options it was made with.
    pub options: RegistryOptions,
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
        monolithic_push: bool,
    ) -> Result<Connection, RegistryError> {
        let mut certs = Vec::new();
        for path in &options.ca_files {
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
        let mut plain_http = Vec::new();
        for host in hosts {
            let may_use_http = is_loopback(host) || options.insecure.iter().any(|h| h == host);
            if may_use_http && probe_scheme(host, &certs).await? == "http" {
                plain_http.push(host.clone());
            }
        }
        let mut auths = BTreeMap::new();
        for host in hosts {
            let auth = match credentials(host)? {
                Some(c) => RegistryAuth::Basic(c.username, c.password),
                None => RegistryAuth::Anonymous,
            };
            auths.insert(host.clone(), auth);
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain_http),
            extra_root_certificates: certs,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("ferry/", env!("CARGO_PKG_VERSION")),
            platform_resolver: None,
            use_monolithic_push: monolithic_push,
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| RegistryError::Failed {
            host: hosts.iter().cloned().collect::<Vec<_>>().join(", "),
            reference: String::new(),
            message: format!("cannot set up the HTTP client: {e}"),
        })?;
        Ok(Connection {
            client,
            auths,
            options,
        })
    }

    /// Checks that the registry accepts the stored credentials for `host`.
    pub async fn check_login(&self, host: &str) -> Result<(), RegistryError> {
        // Any repository name works for the token request; the registry checks the user.
        let probe = oci_client::Reference::with_tag(
            host.to_string(),
            "ferry/login-check".to_string(),
            "latest".to_string(),
        );
        let auth = self.auth(host);
        let what = format!("{host} (login)");
        self.retry(host, &what, || {
            self.client
                .auth(&probe, &auth, oci_client::RegistryOperation::Pull)
        })
        .await?;
        // With basic auth the challenge alone proves nothing: ask /v2/ with the credentials.
        self.retry(host, &what, || async {
            match self.client.list_tags(&probe, &auth, Some(1), None).await {
                Err(e @ OciDistributionError::UnauthorizedError { .. })
                | Err(e @ OciDistributionError::AuthenticationFailure(_))
                | Err(
                    e @ OciDistributionError::ServerError {
                        code: 401 | 403, ..
                    },
                )
                | Err(e @ OciDistributionError::RequestError(_)) => Err(e),
                Err(
                    e @ OciDistributionError::ServerError {
                        code: 429 | 500.., ..
                    },
                ) => Err(e),
                // A missing repository (404) with accepted credentials is a success.
                _ => Ok(()),
            }
        })
        .await
    }

    /// The credentials for a host (anonymous when none).
    pub fn auth(&self, host: &str) -> RegistryAuth {
        self.auths
            .get(host)
            .cloned()
            .unwrap_or(RegistryAuth::Anonymous)
    }

    /// Delay before retry number `attempt`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.options.backoff * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
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
                        return Err(if message.starts_with("connect:") {
                            RegistryError::Unreachable {
                                host: host.to_string(),
                                reason: message.trim_start_matches("connect: ").to_string(),
                            }
                        } else {
                            RegistryError::Failed {
                                host: host.to_string(),
                                reference: what.to_string(),
                                message: format!("{message} (gave up after {attempt} attempts)"),
                            }
                        });
                    }
                    StreamFailure::Retry(message) => {
                        tracing::warn!(reference = what, attempt, "{message}; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                },
            }
        }
    }
}

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
            if e.is_connect() {
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
                StreamFailure::Retry(format!("HTTP {code}: {}", trim(&message)))
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

/// Decides between HTTPS and plain HTTP for a loopback or insecure host.
async fn probe_scheme(host: &str, certs: &[Certificate]) -> Result<&'static str, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15));
    for c in certs {
        if let Ok(cert) = reqwest::Certificate::from_pem(&c.data) {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| RegistryError::Unreachable {
        host: host.to_string(),
        reason: e.to_string(),
    })?;
    let https_error = match client.get(format!("https://{host}/v2/")).send().await {
        Ok(_) => return Ok("https"),
        Err(e) => error_chain(&e),
    };
    // Only a registry's own answer to /v2/ (200, or 401 asking for credentials) counts: a TLS
    // server answering plain HTTP with 400 means HTTPS is right and its certificate is the issue.
    let mut answer = client.get(format!("http://{host}/v2/")).send().await;
    for attempt in 1..4u32 {
        match &answer {
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                tokio::time::sleep(Duration::from_millis(250) * attempt).await;
                answer = client.get(format!("http://{host}/v2/")).send().await;
            }
            _ => break,
        }
    }
    match answer {
        Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::UNAUTHORIZED => {
            Ok("http")
        }
        Ok(r) => Err(RegistryError::Unreachable {
            host: host.to_string(),
            reason: format!(
                "HTTPS: {https_error}; plain HTTP answered {} (not a registry over HTTP)",
                r.status()
            ),
        }),
        Err(e) => Err(RegistryError::Unreachable {
            host: host.to_string(),
            reason: format!("HTTPS: {https_error}; HTTP: {}", error_chain(&e)),
        }),
    }
}

/// The oci-client form of a reference; the digest wins over the tag, as in Docker.
pub fn to_oci(reference: &Reference) -> oci_client::Reference {
    match (reference.tag(), reference.digest()) {
        (_, Some(d)) => oci_client::Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            d.to_string(),
        ),
        (Some(t), None) => oci_client::Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            t.to_string(),
        ),
        (None, None) => oci_client::Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            "latest".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

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
