//! Registry credentials from the Docker/Podman auth files and credential helpers.
//!
//! Credentials never come from the command line and are never printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token; never logged.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

/// Errors reading an auth file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file is not valid JSON of the expected shape.
    #[error("auth file {path}: {reason}; fix or remove it")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} failed for {host}: {reason}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// The registry.
        host: String,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The auth files to consult, in order: Podman's `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`,
/// Podman's runtime file, then `~/.docker/config.json`.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        files.push(Path::new(&dir).join("config.json"));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(Path::new(&dir).join("containers").join("auth.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(Path::new(&home).join(".docker").join("config.json"));
    }
    files
}

/// The file `ferry login` writes: the first of [`auth_files`] that is set, else `~/.docker/config.json`.
pub fn login_file() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Path::new(&dir).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".docker").join("config.json")
}

/// Keys under which an auth file may hold a registry's entry.
fn keys_for(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
        keys.push("https://index.docker.io/v1/".to_string());
        keys.push("index.docker.io".to_string());
        keys.push("docker.io".to_string());
    }
    keys
}

/// Looks up credentials for `host` in the auth files, then their credential helpers.
pub fn lookup(host: &str) -> Result<Option<Credentials>, AuthError> {
    lookup_in(&auth_files(), host)
}

/// Looks up credentials for `host` in the given files, first hit wins.
pub fn lookup_in(files: &[PathBuf], host: &str) -> Result<Option<Credentials>, AuthError> {
    for path in files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(_) => continue,
        };
        let mut file: AuthFile = serde_json::from_str(&text).map_err(|e| AuthError::BadFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Docker writes `"credsStore": ""` to mean none.
        file.creds_store = file.creds_store.filter(|s| !s.is_empty());
        for key in keys_for(host) {
            if let Some(helper) = file.cred_helpers.get(&key) {
                return run_helper(helper, host);
            }
        }
        for key in keys_for(host) {
            if let Some(entry) = file.auths.get(&key) {
                if let Some(creds) = decode_entry(entry, path)? {
                    return Ok(Some(creds));
                }
                if let Some(store) = &file.creds_store {
                    return run_helper(store, host);
                }
            }
        }
        if let Some(store) = &file.creds_store
            && let Ok(Some(creds)) = run_helper(store, host)
        {
            return Ok(Some(creds));
        }
    }
    Ok(None)
}

/// Every credential the `auths` of an auth file's text hold (credential helpers are not run),
/// as [`lookup_in`] parses and decodes them.
pub(crate) fn decode_file(text: &str, path: &Path) -> Result<Vec<Credentials>, AuthError> {
    let file: AuthFile = serde_json::from_str(text).map_err(|e| AuthError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for entry in file.auths.values() {
        out.extend(decode_entry(entry, path)?);
    }
    Ok(out)
}

fn decode_entry(entry: &AuthEntry, path: &Path) -> Result<Option<Credentials>, AuthError> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    if let Some(auth) = &entry.auth
        && !auth.is_empty()
    {
        let bad = |reason: &str| AuthError::BadFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let raw = STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("an \"auth\" value is not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| bad("an \"auth\" value is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad("an \"auth\" value is not base64 of user:password"))?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    if let Some(token) = &entry.identitytoken {
        // Docker's convention for identity tokens: the user name is "<token>".
        return Ok(Some(Credentials {
            username: "<token>".to_string(),
            password: token.clone(),
        }));
    }
    Ok(None)
}

fn run_helper(helper: &str, host: &str) -> Result<Option<Credentials>, AuthError> {
    let err = |reason: String| AuthError::Helper {
        helper: helper.to_string(),
        host: host.to_string(),
        reason,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        // Helpers answer "credentials not found" with a failure: that is no credentials.
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|e| err(e.to_string()))?;
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

/// Credentials for a site registry: `FERRY_REGISTRY_USERNAME` / `FERRY_REGISTRY_PASSWORD` when
/// set, else the auth files.
pub fn lookup_target(host: &str) -> Result<Option<Credentials>, AuthError> {
    if let (Ok(username), Ok(password)) = (
        std::env::var("FERRY_REGISTRY_USERNAME"),
        std::env::var("FERRY_REGISTRY_PASSWORD"),
    ) {
        return Ok(Some(Credentials { username, password }));
    }
    lookup(host)
}

/// Stores credentials for `host` in `path` as `docker login` does, keeping everything else in
/// the file; the file is written atomically and readable by its owner only.
pub fn store(path: &Path, host: &str, credentials: &Credentials) -> Result<(), AuthError> {
    let bad = |reason: String| AuthError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut doc: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        }
        Ok(_) => serde_json::json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(bad(e.to_string())),
    };
    let root = doc
        .as_object_mut()
        .ok_or_else(|| bad("the top level is not a JSON object".to_string()))?;
    let auths = root
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or_else(|| bad("\"auths\" is not a JSON object".to_string()))?;
    let encoded = STANDARD.encode(format!("{}:{}", credentials.username, credentials.password));
    auths.insert(host.to_string(), serde_json::json!({ "auth": encoded }));
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| bad(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    }
    write_private(path, &text).map_err(|e| bad(e.to_string()))
}

/// Writes an auth file (it holds passwords): mode 0600, through a temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fsutil::write_atomic(path, bytes, crate::fsutil::Access::Secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auth_and_plain_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = STANDARD.encode("alice:s3cret:with:colons");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        )
        .unwrap();
        let files = vec![path];
        let c = lookup_in(&files, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3cret:with:colons");
        let d = lookup_in(&files, "docker.io").unwrap().unwrap();
        assert_eq!(d.username, "bob");
        assert!(lookup_in(&files, "quay.io").unwrap().is_none());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn store_keeps_other_entries_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"credsStore":""}"#,
        )
        .unwrap();
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store(&path, "reg.local:5000", &creds).unwrap();
        let files = vec![path.clone()];
        assert_eq!(lookup_in(&files, "reg.local:5000").unwrap(), Some(creds));
        assert_eq!(lookup_in(&files, "other:1").unwrap().unwrap().username, "x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bad_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = lookup_in(std::slice::from_ref(&path), "x").unwrap_err();
        assert!(err.to_string().contains("config.json"));
    }
}
