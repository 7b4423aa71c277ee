//! `spec.git`: Git repositories the platform deploys from (ArgoCD) or bootstraps with
//! (Ansible), carried as git bundles.
//!
//! ```yaml
//! spec:
//!   git:
//!     - url: https://github.com/example/platform-gitops.git
//!       refs: [main, v1.4.0]          # branches or tags; default: every branch and tag
//!       name: gitops                  # default: the URL's last segment without .git
//! ```
//!
//! `lock` resolves every ref to the object it names (a commit, or an annotated tag).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{Location, ManifestError, Validator};

/// One repository to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSpec {
    /// The repository's URL, as written.
    pub url: String,
    /// Branches and tags to carry, as written (`main`, `v1.0`, `refs/heads/x`); empty: all.
    pub refs: Vec<String>,
    /// The repository's name on site (`<dir>/<name>.git`, `/git/<name>.git`).
    pub name: String,
    /// Position of the URL in the manifest.
    pub location: Location,
}

/// An entry of `spec.git` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGit {
    url: Option<Spanned<String>>,
    refs: Option<Spanned<Vec<Spanned<String>>>>,
    name: Option<Spanned<String>>,
}

/// Checks a repository name: one path component of letters, digits, `.`, `_` and `-`, not
/// starting with `.` or `-` (it becomes a directory name and a URL path).
pub fn check_repo_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 100 {
        return Err("it is longer than 100 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("it starts with '.' or '-'");
    }
    if name.ends_with(".git") {
        return Err("it ends in .git, which ferry adds itself");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Checks a full ref name as git would store it (`refs/heads/main`, `refs/tags/v1`): no path
/// tricks, nothing git's check-ref-format refuses that could touch a file system.
pub fn check_ref_name(name: &str) -> Result<(), &'static str> {
    if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
        return Err("only branches (refs/heads/) and tags (refs/tags/) are carried");
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c.starts_with('.') || c.ends_with(".lock"))
    {
        return Err("a component is empty, starts with '.' or ends in .lock");
    }
    if name.contains("..")
        || name.contains("@{")
        || name.ends_with('.')
        || name
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c))
    {
        return Err("it has characters git does not allow in a ref name");
    }
    Ok(())
}

/// Checks an object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn check_oid(oid: &str) -> bool {
    matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a repository URL: http(s), git, ssh or file, with no credentials (the URL travels
/// in the lock and the bundle).
pub fn parse_git_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https" | "git" | "ssh" | "file") {
        return Err(format!(
            "scheme {:?} is not supported; use https://, http://, git://, ssh:// or file://",
            url.scheme()
        ));
    }
    if url.password().is_some() || (url.scheme() != "ssh" && !url.username().is_empty()) {
        return Err(
            "it carries credentials, which would travel in the lock and the bundle; remove them (git's credential helpers still apply)"
                .to_string(),
        );
    }
    Ok(url)
}

/// The default name of a repository: the URL's last path segment without `.git`.
pub fn default_name(url: &url::Url) -> Option<String> {
    let last = url.path_segments()?.rfind(|s| !s.is_empty())?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    check_repo_name(name).ok().map(|()| name.to_string())
}

impl Validator<'_> {
    /// Validates `spec.git`.
    pub(super) fn git(&self, entries: Vec<Spanned<RawGit>>) -> Result<Vec<GitSpec>, ManifestError> {
        let mut out = Vec::with_capacity(entries.len());
        let mut names: HashMap<String, Location> = HashMap::new();
        for entry in entries {
            let at = self.loc(&entry.referenced);
            let raw = entry.value;
            let url_value = self.required(
                raw.url,
                at,
                "url",
                "add the repository's URL, e.g. `url: https://github.com/example/gitops.git`"
                    .to_owned(),
            )?;
            let location = self.loc(&url_value.referenced);
            let written = url_value.value.trim().to_owned();
            let url = parse_git_url(&written).map_err(|reason| {
                self.git_error(location, format!("invalid git url {written:?}: {reason}"))
            })?;
            let (name, name_location) = match raw.name {
                Some(name) => {
                    let l = self.loc(&name.referenced);
                    check_repo_name(&name.value).map_err(|reason| {
                        self.git_error(
                            l,
                            format!(
                                "invalid name {:?}: {reason}; give a plain name such as `name: gitops`",
                                name.value
                            ),
                        )
                    })?;
                    (name.value, l)
                }
                None => match default_name(&url) {
                    Some(n) => (n, location),
                    None => {
                        return Err(self.git_error(
                            location,
                            "the URL's last segment cannot be the repository's name; add `name:`"
                                .to_owned(),
                        ));
                    }
                },
            };
            if let Some(first) = names.get(&name) {
                return Err(self.git_error(
                    name_location,
                    format!(
                        "duplicate repository name {name:?}, first used at line {}; give one of them another `name:`",
                        first.line
                    ),
                ));
            }
            names.insert(name.clone(), name_location);
            let mut refs = Vec::new();
            for r in raw.refs.map(|r| r.value).unwrap_or_default() {
                let value = r.value.trim().to_owned();
                let full = if value.starts_with("refs/") {
                    value.clone()
                } else {
                    format!("refs/heads/{value}")
                };
                if let Err(reason) = check_ref_name(&full) {
                    return Err(self.git_error(
                        self.loc(&r.referenced),
                        format!("invalid ref {value:?}: {reason}; give a branch or tag name such as `main` or `v1.0.0`"),
                    ));
                }
                if !refs.contains(&value) {
                    refs.push(value);
                }
            }
            out.push(GitSpec {
                url: written,
                refs,
                name,
                location,
            });
        }
        Ok(out)
    }

    fn git_error(&self, location: Location, message: String) -> ManifestError {
        ManifestError::InvalidGit {
            path: self.path.to_owned(),
            location,
            message,
        }
    }
}

/// One repository, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedGit {
    /// Its name on site.
    pub name: String,
    /// The URL, as in the manifest.
    pub url: String,
    /// The refs as the manifest asks for them (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wanted: Vec<String>,
    /// Every carried ref (full name) and the object it names.
    pub refs: BTreeMap<String, String>,
    /// The branch upstream's HEAD names, when it is carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

impl LockedGit {
    /// Whether this entry still answers the manifest's entry.
    pub fn matches(&self, spec: &GitSpec) -> bool {
        self.name == spec.name && self.url == spec.url && self.wanted == spec.refs
    }
}

/// What differs between the locked repositories and the manifest's.
pub fn lock_differences(locked: &[LockedGit], specs: &[GitSpec]) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs {
        match locked.iter().find(|l| l.name == spec.name) {
            None => out.push(format!("git repository {} is not in the lock", spec.name)),
            Some(l) if !l.matches(spec) => out.push(format!(
                "git repository {} is {} refs [{}] in the lock but {} refs [{}] in the manifest",
                spec.name,
                l.url,
                l.wanted.join(", "),
                spec.url,
                spec.refs.join(", ")
            )),
            Some(_) => {}
        }
    }
    for l in locked {
        if !specs.iter().any(|s| s.name == l.name) {
            out.push(format!(
                "git repository {} is in the lock but no longer in the manifest",
                l.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refs_urls() {
        assert!(check_repo_name("gitops").is_ok());
        for bad in ["", "../x", "a/b", ".x", "x.git", "a b"] {
            assert!(check_repo_name(bad).is_err(), "{bad}");
        }
        assert!(check_ref_name("refs/heads/main").is_ok());
        assert!(check_ref_name("refs/tags/v1.0.0").is_ok());
        for bad in [
            "HEAD",
            "refs/heads/../x",
            "refs/heads/a..b",
            "refs/heads/.x",
            "refs/heads/",
            "refs/pull/1/head",
            "refs/heads/a b",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad}");
        }
        assert!(parse_git_url("https://user:pw@x/y.git").is_err());
        assert!(parse_git_url("ftp://x/y.git").is_err());
        let u = parse_git_url("git://127.0.0.1:9418/platform.git").unwrap();
        assert_eq!(default_name(&u).as_deref(), Some("platform"));
        assert!(check_oid(&"a".repeat(40)));
        assert!(!check_oid("HEAD"));
    }
}
