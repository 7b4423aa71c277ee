//! The NVIDIA GPU operator's driver repository on site: the ConfigMap its
//! `driver.repoConfig.configMapName` names, so the driver container installs the OS packages
//! it needs (the kernel headers of the hosts' kernels) from the site's apt mirror.
//!
//! The operator mounts every key of that ConfigMap into the driver container's package
//! manager configuration directory (`/etc/apt/sources.list.d` on Ubuntu). The ConfigMap
//! holds an apt list naming the site mirror, and the mirror's keyring beside it
//! (`binaryData`), which the list names with `signed-by=` at its mounted path: the mirror
//! is re-signed with the site key, so nothing is installed unverified (no `trusted=yes`).

use std::path::Path;

use base64::Engine;

use crate::destination::apt::{KEYRING_FILE, SOURCES_FILE};

/// File name of the rendered ConfigMap in the site output.
pub const REPO_CONFIG_FILE: &str = "gpu-operator-repo-config.yaml";
/// The ConfigMap's name (`driver.repoConfig.configMapName`).
pub const CONFIG_MAP_NAME: &str = "ferry-apt-repo";
/// The namespace the GPU operator runs in (its Helm chart's default).
pub const NAMESPACE: &str = "gpu-operator";
/// Where the driver container sees the ConfigMap's files (Ubuntu's apt list directory).
pub const MOUNT_DIR: &str = "/etc/apt/sources.list.d";
/// The list file's key in the ConfigMap.
pub const LIST_KEY: &str = "ferry.list";

/// Why the ConfigMap cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RepoConfigError {
    /// A file of the mirror could not be read.
    #[error("cannot read {path}: {source}; run the apt import first")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The mirror's sources file lacks a field.
    #[error("{path} has no {field} line; it was not written by `ferry import apt`")]
    Sources {
        /// The file.
        path: std::path::PathBuf,
        /// The field.
        field: &'static str,
    },
}

/// The ConfigMap for the apt mirror in `apt_dir` (its `ferry.sources` and keyring, written by
/// `ferry import apt`). None when the mirror is only reachable as a local directory
/// (`file://`), which the driver container cannot read.
pub fn repo_config_map(apt_dir: &Path) -> Result<Option<String>, RepoConfigError> {
    let sources_path = apt_dir.join(SOURCES_FILE);
    let sources =
        std::fs::read_to_string(&sources_path).map_err(|source| RepoConfigError::Read {
            path: sources_path.clone(),
            source,
        })?;
    let keyring_path = apt_dir.join(KEYRING_FILE);
    let keyring = std::fs::read(&keyring_path).map_err(|source| RepoConfigError::Read {
        path: keyring_path.clone(),
        source,
    })?;
    let field = |name: &'static str| {
        sources
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(str::trim)
            .ok_or(RepoConfigError::Sources {
                path: sources_path.clone(),
                field: name,
            })
    };
    let url = field("URIs")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Ok(None);
    }
    let suites = field("Suites")?;
    let components = field("Components")?;
    let mut list = String::from("# The site's apt mirror, written by ferry\n");
    for suite in suites.split_whitespace() {
        list.push_str(&format!(
            "deb [signed-by={MOUNT_DIR}/{KEYRING_FILE}] {url} {suite} {components}\n"
        ));
    }
    let q = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let key = base64::engine::general_purpose::STANDARD.encode(&keyring);
    Ok(Some(format!(
        "# The GPU operator's driver repository, written by ferry: install the operator with\n#   --set driver.repoConfig.configMapName={CONFIG_MAP_NAME}\n# and apply this first (kubectl apply -f). The driver container then installs the kernel\n# headers of each host's kernel from {url}.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {CONFIG_MAP_NAME}\n  namespace: {NAMESPACE}\n  labels:\n    app.kubernetes.io/managed-by: ferry\ndata:\n  {LIST_KEY}: {}\nbinaryData:\n  {KEYRING_FILE}: {key}\n",
        q(&list)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_list_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SOURCES_FILE),
            "# x\nTypes: deb\nURIs: http://mirror.site.lan/apt\nSuites: jammy jammy-updates\nComponents: main\nSigned-By: /etc/apt/keyrings/ferry-apt.gpg\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(KEYRING_FILE), b"\x99\x01key").unwrap();
        let yaml = repo_config_map(dir.path()).unwrap().unwrap();
        assert!(yaml.contains("name: ferry-apt-repo"), "{yaml}");
        assert!(
            yaml.contains("deb [signed-by=/etc/apt/sources.list.d/ferry-apt.gpg] http://mirror.site.lan/apt jammy-updates main"),
            "{yaml}"
        );
        assert!(yaml.contains("ferry-apt.gpg: mQFrZXk="), "{yaml}");
        std::fs::write(
            dir.path().join(SOURCES_FILE),
            "URIs: file:///srv/apt\nSuites: a\nComponents: main\n",
        )
        .unwrap();
        assert!(repo_config_map(dir.path()).unwrap().is_none());
    }
}
