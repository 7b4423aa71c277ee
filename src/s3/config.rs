//! Where an S3 bundle lives (`s3://BUCKET/PREFIX`) and how to reach it: endpoint, region and
//! credentials, resolved the way the AWS CLI and SDKs resolve them.
//!
//! Credentials, first found wins: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+
//! `AWS_SESSION_TOKEN`) from the environment; the profile `AWS_PROFILE` (else `default`) in the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), then in
//! the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`, sections `[profile NAME]` and
//! `[default]`); a web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`) or the
//! container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`).
//! Region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`.
//! Endpoint: `--s3-endpoint`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's
//! `endpoint_url`, else AWS. A custom endpoint (Ceph RGW, MinIO) is addressed path-style.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::S3Error;

/// `s3://BUCKET/PREFIX`: a bucket and a key prefix (no leading or trailing `/`; may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix the bundle's objects are under, without a trailing `/` ("" for the
    /// bucket's root).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX]`; `Ok(None)` when `text` is not an `s3://` location (a
    /// local path), an error naming the text when it is one but malformed.
    pub fn parse(text: &str) -> Result<Option<S3Location>, S3Error> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(None);
        };
        let bad = |reason: &str| S3Error::BadLocation {
            location: text.to_string(),
            reason: reason.to_string(),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.len() < 3 || bucket.len() > 63 {
            return Err(bad("a bucket name has 3 to 63 characters"));
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            || !bucket.as_bytes()[0].is_ascii_alphanumeric()
            || !bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
        {
            return Err(bad(
                "a bucket name is lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        for segment in prefix.split('/').filter(|_| !prefix.is_empty()) {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(bad("the prefix has an empty, `.` or `..` segment"));
            }
            if segment.chars().any(|c| c.is_control() || c == '\\') {
                return Err(bad("the prefix has a control character or backslash"));
            }
        }
        Ok(Some(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }

    /// The key of `name` (a path relative to the bundle, such as `blobs/sha256/<hex>`).
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The location of a sub-prefix (for example a cache under the bundle's prefix).
    pub fn join(&self, name: &str) -> S3Location {
        S3Location {
            bucket: self.bucket.clone(),
            prefix: self.key(name.trim_matches('/')),
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Whether `text` names an S3 location rather than a local path.
pub fn is_s3(text: &str) -> bool {
    text.starts_with("s3://")
}

/// A secret that never prints (Debug and Display show `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the signer only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the credentials came from, to name in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile of a shared credentials or config file.
    File {
        /// The file.
        path: PathBuf,
        /// The profile.
        profile: String,
    },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` (assumed role), resolved by the client.
    WebIdentity,
    /// The container credentials endpoint, resolved by the client.
    Container,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Environment => {
                f.write_str("the environment, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
            }
            CredentialSource::File { path, profile } => {
                write!(f, "profile [{profile}] of {}", path.display())
            }
            CredentialSource::WebIdentity => f.write_str("AWS_WEB_IDENTITY_TOKEN_FILE"),
            CredentialSource::Container => {
                f.write_str("the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_*)")
            }
        }
    }
}

/// Static credentials: an access key id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id (not secret: named in errors).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// A session token, for temporary credentials.
    pub session_token: Option<Secret>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// What the command line adds to the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `--s3-endpoint URL`: overrides the environment's and profile's endpoint.
    pub endpoint: Option<String>,
    /// `--ca-file FILE` (PEM, one or more certificates): trusted besides the system's roots.
    pub ca_files: Vec<PathBuf>,
}

/// Everything needed to reach the store, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The endpoint URL, or None for AWS itself.
    pub endpoint: Option<String>,
    /// The region named in signatures.
    pub region: String,
    /// Static credentials, or None when the client resolves them (web identity, container).
    pub credentials: Option<StaticCredentials>,
    /// Where the credentials came from.
    pub source: CredentialSource,
    /// Extra trusted roots.
    pub ca_files: Vec<PathBuf>,
}

impl S3Config {
    /// Resolves the configuration from the process environment and the files it names.
    pub fn from_env(options: &S3Options) -> Result<S3Config, S3Error> {
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_") || k == "HOME")
            .collect();
        S3Config::resolve(options, &vars)
    }

    /// As [`S3Config::from_env`] with the environment given (tests).
    pub fn resolve(
        options: &S3Options,
        vars: &HashMap<String, String>,
    ) -> Result<S3Config, S3Error> {
        let var = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
        let home = var("HOME").map(PathBuf::from);
        let aws_file = |env: &str, name: &str| {
            var(env)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let explicit_profile = var("AWS_PROFILE");
        let profile = explicit_profile
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let credentials_file = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_file = aws_file("AWS_CONFIG_FILE", "config");
        let from_credentials = match &credentials_file {
            Some(path) => read_profile(path, &profile, false)?,
            None => None,
        };
        let from_config = match &config_file {
            Some(path) => read_profile(path, &profile, true)?,
            None => None,
        };
        if explicit_profile.is_some() && from_credentials.is_none() && from_config.is_none() {
            return Err(S3Error::Config(format!(
                "AWS_PROFILE={profile}: no [{profile}] in {} nor [profile {profile}] in {}; add the profile or unset AWS_PROFILE",
                show(&credentials_file),
                show(&config_file)
            )));
        }
        let setting = |key: &str| {
            from_config
                .as_ref()
                .and_then(|p| p.get(key).cloned())
                .or_else(|| from_credentials.as_ref().and_then(|p| p.get(key).cloned()))
        };
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| setting("region"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = options
            .endpoint
            .clone()
            .or_else(|| var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| setting("endpoint_url"));
        if let Some(endpoint) = &endpoint {
            let parsed = url::Url::parse(endpoint).map_err(|e| {
                S3Error::Config(format!(
                    "endpoint {endpoint:?} is not a URL ({e}); write it as http://HOST:PORT or https://HOST"
                ))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(S3Error::Config(format!(
                    "endpoint {endpoint:?} is not http:// or https://"
                )));
            }
        }

        let static_from = |p: &HashMap<String, String>| {
            let id = p.get("aws_access_key_id")?;
            let secret = p.get("aws_secret_access_key")?;
            Some(StaticCredentials {
                access_key_id: id.clone(),
                secret_access_key: Secret::new(secret.clone()),
                session_token: p.get("aws_session_token").cloned().map(Secret::new),
            })
        };
        let (credentials, source) = if let (Some(id), Some(secret)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            let credentials = StaticCredentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
            };
            (Some(credentials), CredentialSource::Environment)
        } else if let Some(c) = from_credentials.as_ref().and_then(static_from) {
            let path = credentials_file.clone().unwrap_or_default();
            (Some(c), CredentialSource::File { path, profile })
        } else if let Some(c) = from_config.as_ref().and_then(static_from) {
            let path = config_file.clone().unwrap_or_default();
            (Some(c), CredentialSource::File { path, profile })
        } else if var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
            (None, CredentialSource::WebIdentity)
        } else if var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        {
            (None, CredentialSource::Container)
        } else {
            return Err(S3Error::Config(format!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in {} or {}",
                show(&credentials_file),
                show(&config_file)
            )));
        };
        for ca in &options.ca_files {
            if !ca.is_file() {
                return Err(S3Error::Config(format!(
                    "--ca-file {}: no such file; give a PEM file of the CA that signed the endpoint's certificate",
                    ca.display()
                )));
            }
        }
        Ok(S3Config {
            endpoint,
            region,
            credentials,
            source,
            ca_files: options.ca_files.clone(),
        })
    }

    /// The access key id in use, for messages ("" when the client resolves it).
    pub fn access_key_id(&self) -> &str {
        self.credentials
            .as_ref()
            .map_or("", |c| c.access_key_id.as_str())
    }

    /// What to call the endpoint in messages.
    pub fn describe_endpoint(&self) -> String {
        match &self.endpoint {
            Some(url) => url.clone(),
            None => format!("AWS S3 ({})", self.region),
        }
    }
}

fn show(path: &Option<PathBuf>) -> String {
    path.as_ref().map_or_else(
        || "~/.aws (HOME unset)".to_string(),
        |p| p.display().to_string(),
    )
}

/// The settings of one profile of an AWS ini file, or None when the file or profile is absent.
/// `config` selects the config file's naming (`[profile NAME]`, `[default]`).
fn read_profile(
    path: &Path,
    profile: &str,
    config: bool,
) -> Result<Option<HashMap<String, String>>, S3Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(S3Error::Config(format!(
                "{}: {e}; make it readable or point AWS_SHARED_CREDENTIALS_FILE/AWS_CONFIG_FILE elsewhere",
                path.display()
            )));
        }
    };
    Ok(parse_profile(&text, profile, config))
}

/// Parses the ini text of an AWS credentials or config file for one profile. Nested service
/// settings (indented lines under `s3 =`) are skipped.
pub fn parse_profile(text: &str, profile: &str, config: bool) -> Option<HashMap<String, String>> {
    let wanted = |section: &str| {
        let section = section.trim();
        if config {
            section == format!("profile {profile}")
                || (profile == "default" && section == "default")
                || section
                    .strip_prefix("profile")
                    .is_some_and(|s| s.trim() == profile)
        } else {
            section == profile
        }
    };
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(section) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            inside = wanted(section);
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if !inside || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            let value = value.trim();
            if !value.is_empty() {
                found
                    .get_or_insert_with(HashMap::new)
                    .insert(key.trim().to_ascii_lowercase(), value.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l = S3Location::parse("s3://rel-bucket/a/b/").unwrap().unwrap();
        assert_eq!(l.bucket, "rel-bucket");
        assert_eq!(l.prefix, "a/b");
        assert_eq!(l.key("index.json"), "a/b/index.json");
        assert_eq!(l.to_string(), "s3://rel-bucket/a/b");
        let root = S3Location::parse("s3://bkt").unwrap().unwrap();
        assert_eq!(root.key("oci-layout"), "oci-layout");
        assert_eq!(root.to_string(), "s3://bkt");
        assert!(S3Location::parse("/tmp/x").unwrap().is_none());
        for bad in [
            "s3://",
            "s3://A_B/x",
            "s3://ab",
            "s3://bkt/a//b",
            "s3://bkt/../x",
        ] {
            let e = S3Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_wins_and_secret_never_prints() {
        let c = S3Config::resolve(
            &S3Options::default(),
            &vars(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("AWS_DEFAULT_REGION", "eu-west-3"),
                ("HOME", "/nonexistent"),
            ]),
        )
        .unwrap();
        assert_eq!(c.access_key_id(), "AKID");
        assert_eq!(c.source, CredentialSource::Environment);
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn profiles_from_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\n[ceph]\naws_access_key_id=CEPHID\naws_secret_access_key = cephsecret\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = us-west-2\n[profile ceph]\nregion = default\nendpoint_url = https://rgw.example:8443\ns3 =\n  addressing_style = path\n[profile only-config]\naws_access_key_id = CFGID\naws_secret_access_key = cfgsecret\n",
        )
        .unwrap();
        let base = [
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut v = vars(&base);
            v.extend(vars(extra));
            S3Config::resolve(&S3Options::default(), &v)
        };
        let c = with(&[]).unwrap();
        assert_eq!((c.access_key_id(), c.region.as_str()), ("DEF", "us-west-2"));
        let c = with(&[("AWS_PROFILE", "ceph")]).unwrap();
        assert_eq!(c.access_key_id(), "CEPHID");
        assert_eq!(c.endpoint.as_deref(), Some("https://rgw.example:8443"));
        assert_eq!(c.region, "default");
        assert_eq!(
            c.source,
            CredentialSource::File {
                path: creds.clone(),
                profile: "ceph".into()
            }
        );
        let c = with(&[("AWS_PROFILE", "only-config")]).unwrap();
        assert_eq!(c.access_key_id(), "CFGID");
        let flag = S3Options {
            endpoint: Some("http://127.0.0.1:1".into()),
            ca_files: vec![],
        };
        let mut v = vars(&base);
        v.insert("AWS_PROFILE".into(), "ceph".into());
        let c = S3Config::resolve(&flag, &v).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        let e = with(&[("AWS_PROFILE", "nope")]).unwrap_err().to_string();
        assert!(e.contains("AWS_PROFILE=nope"), "{e}");
        let none = S3Config::resolve(&S3Options::default(), &vars(&[("HOME", "/nonexistent")]))
            .unwrap_err()
            .to_string();
        assert!(none.contains("AWS_ACCESS_KEY_ID"), "{none}");
    }
}
