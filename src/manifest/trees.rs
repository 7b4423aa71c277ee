//! `spec.trees`: directories prepared on the connected side (a NIM model store made with
//! `create-model-store` or `download-to-cache`, a Hugging Face snapshot), carried file by
//! file with paths and modes.
//!
//! ```yaml
//! spec:
//!   trees:
//!     - path: models/llama-3.1-8b-instruct    # relative to the manifest, or absolute
//!       name: llama-3.1-8b-instruct           # default: the path's last component
//! ```
//!
//! `lock` records every file's path, mode, size and sha256, every directory and every
//! symbolic link (only links that stay inside the tree are carried).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{Location, ManifestError, Validator};
use crate::digest::Digest;

/// One directory tree to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSpec {
    /// The directory as written in the manifest.
    pub path: String,
    /// The directory resolved against the manifest's directory.
    pub dir: PathBuf,
    /// Its name on site (`<dir>/<name>`).
    pub name: String,
    /// Position of the path in the manifest.
    pub location: Location,
}

/// An entry of `spec.trees` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTree {
    path: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
}

/// Checks a tree's name: one path component of letters, digits, `.`, `_` and `-`.
pub fn check_tree_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 200 {
        return Err("it is longer than 200 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("it starts with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Checks a path inside a tree (`a/b/c`, `/`-separated): relative, no `.` or `..` or empty
/// component, no control characters. Paths come back from the bundle on import and are
/// checked there again before they touch a file system.
pub fn check_tree_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("it is empty");
    }
    if path.starts_with('/') {
        return Err("it is absolute");
    }
    if path.len() > 4096 {
        return Err("it is longer than 4096 bytes");
    }
    if path.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    for c in path.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Err("a component is empty, '.' or '..'");
        }
        if c.len() > 255 {
            return Err("a component is longer than 255 bytes");
        }
    }
    Ok(())
}

/// Whether a symbolic link at `link` (a tree path) with `target` stays inside the tree:
/// relative, and never above the tree's root once resolved lexically.
pub fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.chars().any(char::is_control) {
        return false;
    }
    let mut depth: Vec<&str> = link.split('/').collect();
    depth.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            other => depth.push(other),
        }
    }
    true
}

impl Validator<'_> {
    /// Validates `spec.trees`.
    pub(super) fn trees(
        &self,
        entries: Vec<Spanned<RawTree>>,
    ) -> Result<Vec<TreeSpec>, ManifestError> {
        let mut out = Vec::with_capacity(entries.len());
        let mut names: HashMap<String, Location> = HashMap::new();
        let base = self
            .path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        for entry in entries {
            let at = self.loc(&entry.referenced);
            let raw = entry.value;
            let path_value = self.required(
                raw.path,
                at,
                "path",
                "add the directory to carry, e.g. `path: models/llama-3.1-8b-instruct` (relative to the manifest)"
                    .to_owned(),
            )?;
            let location = self.loc(&path_value.referenced);
            let written = path_value.value.trim().to_owned();
            if written.is_empty() {
                return Err(self.tree_error(location, "the path is empty".into()));
            }
            let dir = base.join(&written);
            let (name, name_location) = match raw.name {
                Some(n) => (n.value.clone(), self.loc(&n.referenced)),
                None => (
                    dir.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_string(),
                    location,
                ),
            };
            check_tree_name(&name).map_err(|reason| {
                self.tree_error(
                    name_location,
                    format!(
                        "invalid tree name {name:?}: {reason}; give `name:` such as `name: llama-3.1-8b-instruct`"
                    ),
                )
            })?;
            if let Some(first) = names.get(&name) {
                return Err(self.tree_error(
                    name_location,
                    format!(
                        "duplicate tree name {name:?}, first used at line {}; give one of them another `name:`",
                        first.line
                    ),
                ));
            }
            names.insert(name.clone(), name_location);
            out.push(TreeSpec {
                path: written,
                dir,
                name,
                location,
            });
        }
        Ok(out)
    }

    fn tree_error(&self, location: Location, message: String) -> ManifestError {
        ManifestError::InvalidTree {
            path: self.path.to_owned(),
            location,
            message,
        }
    }
}

/// A regular file of a locked tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedTreeFile {
    /// Path inside the tree, `/`-separated.
    pub path: String,
    /// Permission bits, four octal digits.
    pub mode: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256, 64 lowercase hex digits.
    pub sha256: String,
}

impl LockedTreeFile {
    /// The content digest.
    pub fn digest(&self) -> Result<Digest, String> {
        Digest::parse(&format!("sha256:{}", self.sha256)).map_err(|e| e.to_string())
    }
}

/// A directory of a locked tree (so empty ones travel too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedTreeDir {
    /// Path inside the tree.
    pub path: String,
    /// Permission bits, four octal digits.
    pub mode: String,
}

/// A symbolic link of a locked tree (its target stays inside the tree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedTreeLink {
    /// Path inside the tree.
    pub path: String,
    /// The link's target, as `readlink` gives it.
    pub target: String,
}

/// One tree, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedTree {
    /// Its name on site.
    pub name: String,
    /// The directory, as in the manifest.
    pub path: String,
    /// Every regular file, sorted by path.
    pub files: Vec<LockedTreeFile>,
    /// Every directory below the root, sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<LockedTreeDir>,
    /// Every symbolic link, sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LockedTreeLink>,
}

impl LockedTree {
    /// Total bytes of the tree's files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether this entry still answers the manifest's entry.
    pub fn matches(&self, spec: &TreeSpec) -> bool {
        self.name == spec.name && self.path == spec.path
    }
}

/// What differs between the locked trees and the manifest's.
pub fn lock_differences(locked: &[LockedTree], specs: &[TreeSpec]) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs {
        match locked.iter().find(|l| l.name == spec.name) {
            None => out.push(format!("tree {} is not in the lock", spec.name)),
            Some(l) if !l.matches(spec) => out.push(format!(
                "tree {} is {} in the lock but {} in the manifest",
                spec.name, l.path, spec.path
            )),
            Some(_) => {}
        }
    }
    for l in locked {
        if !specs.iter().any(|s| s.name == l.name) {
            out.push(format!(
                "tree {} is in the lock but no longer in the manifest",
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
    fn paths_and_links() {
        assert!(check_tree_path("a/b/c.safetensors").is_ok());
        assert!(check_tree_path(".gitattributes").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a/.", "a\nb"] {
            assert!(check_tree_path(bad).is_err(), "{bad:?}");
        }
        assert!(link_stays_inside("a/b/link", "../c"));
        assert!(link_stays_inside("a/link", "../c"));
        assert!(link_stays_inside("snapshots/x/model", "../../blobs/abc"));
        assert!(!link_stays_inside("link", "../x"));
        assert!(!link_stays_inside("a/link", "../../x"));
        assert!(!link_stays_inside("a/link", "/etc/passwd"));
        assert!(check_tree_name("llama-3.1-8b").is_ok());
        assert!(check_tree_name("../x").is_err());
    }
}
