//! Directory trees (model stores) as OCI artifacts: one manifest per tree, one layer per
//! regular file (its path in `org.opencontainers.image.title`, its mode in
//! `dev.ferry.tree.mode`), and a config listing the directories and symbolic links.
//!
//! ```json
//! {"artifactType":"application/vnd.ferry.tree.v1",
//!  "config":{"mediaType":"application/vnd.ferry.tree.config.v1+json", ...},
//!  "layers":[{"mediaType":"application/vnd.ferry.tree.file","digest":"sha256:…","size":…,
//!             "annotations":{"dev.ferry.tree.mode":"0644",
//!                            "org.opencontainers.image.title":"snapshots/x/config.json"}}]}
//! ```
//!
//! Large files are blobs like any other: `pack` splits them across volumes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layout::artifact::{self, ANNOTATION_TITLE};
use crate::layout::graph::Entry;
use crate::layout::oci::{Descriptor, Manifest};
use crate::layout::{Layout, LayoutError};
use crate::manifest::files::parse_mode;
use crate::manifest::trees::{
    LockedTree, LockedTreeDir, LockedTreeLink, check_tree_name, check_tree_path, link_stays_inside,
};

/// `dev.ferry.kind` of tree entries.
pub const KIND: &str = "tree";
/// `artifactType` of a tree artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.ferry.tree.v1";
/// Media type of the config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.ferry.tree.config.v1+json";
/// Media type of a file's layer (its bytes as they are).
pub const FILE_MEDIA_TYPE: &str = "application/vnd.ferry.tree.file";
/// Layer annotation: the file's permission bits.
pub const ANNOTATION_MODE: &str = "dev.ferry.tree.mode";

/// The config of a tree artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TreeConfig {
    /// The tree's name on site.
    pub name: String,
    /// Directories below the root (empty ones included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<LockedTreeDir>,
    /// Symbolic links (targets inside the tree).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LockedTreeLink>,
}

/// A regular file of a tree in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path inside the tree.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Content blob.
    pub digest: Digest,
    /// Size.
    pub size: u64,
}

/// A tree as the bundle holds it, every path checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleTree {
    /// Name, directories, links.
    pub config: TreeConfig,
    /// Regular files.
    pub files: Vec<TreeFile>,
}

impl BundleTree {
    /// Total bytes of its files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Why an index entry of kind `tree` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TreeArtifactError {
    /// The store failed.
    #[error("tree {reference}: {source}")]
    Layout {
        /// The entry's reference.
        reference: String,
        /// The error.
        source: LayoutError,
    },
    /// Not a usable ferry tree artifact (shape, or a path that would leave the tree).
    #[error(
        "tree {reference}: manifest {digest} is not a usable ferry tree artifact ({reason}); the bundle was not made by this ferry, or was altered"
    )]
    Invalid {
        /// The entry's reference.
        reference: String,
        /// The manifest.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
}

/// Writes the artifact of a locked tree (its file blobs already in the store) and returns its
/// index.json entry: a pure function of the lock.
pub fn write(layout: &Layout, tree: &LockedTree) -> Result<Descriptor, LayoutError> {
    let config = TreeConfig {
        name: tree.name.clone(),
        dirs: tree.dirs.clone(),
        links: tree.links.clone(),
    };
    let bytes = serde_json::to_vec(&config).expect("a tree config always serialises");
    let config_descriptor = artifact::small_blob(layout, CONFIG_MEDIA_TYPE, &bytes)?;
    let mut layers = Vec::with_capacity(tree.files.len());
    for file in &tree.files {
        let digest = file.digest().map_err(|reason| LayoutError::BadDocument {
            what: "tree lock",
            digest: Digest::of_bytes(b""),
            reason,
        })?;
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION_TITLE.to_string(), file.path.clone());
        annotations.insert(ANNOTATION_MODE.to_string(), file.mode.clone());
        layers.push(Descriptor {
            media_type: FILE_MEDIA_TYPE.to_string(),
            digest,
            size: file.size,
            platform: None,
            annotations,
            artifact_type: None,
        });
    }
    let manifest = artifact::write_manifest(
        layout,
        Some(ARTIFACT_TYPE),
        &config_descriptor,
        &layers,
        &BTreeMap::new(),
    )?;
    Ok(artifact::index_entry(&manifest, KIND, &tree.name))
}

/// Reads a `tree` entry back, checking every path, mode and link again.
pub fn read(layout: &Layout, entry: &Entry) -> Result<BundleTree, TreeArtifactError> {
    let reference = entry.reference.clone();
    let digest = entry.descriptor.digest.clone();
    let invalid = |reason: String| TreeArtifactError::Invalid {
        reference: reference.clone(),
        digest: digest.clone(),
        reason,
    };
    let layout_error = |source| TreeArtifactError::Layout {
        reference: reference.clone(),
        source,
    };
    let bytes = layout.read_document(&digest).map_err(layout_error)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE)
        || manifest.config.media_type != CONFIG_MEDIA_TYPE
    {
        return Err(invalid(format!(
            "artifactType {:?}, config {:?}",
            manifest.artifact_type.as_deref().unwrap_or(""),
            manifest.config.media_type
        )));
    }
    let config_bytes = layout
        .read_document(&manifest.config.digest)
        .map_err(layout_error)?;
    let config: TreeConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("config: {e}")))?;
    check_tree_name(&config.name)
        .map_err(|r| invalid(format!("tree name {:?}: {r}", config.name)))?;
    let mut seen = BTreeSet::new();
    let mut claim = |path: &str| -> Result<(), TreeArtifactError> {
        check_tree_path(path).map_err(|r| invalid(format!("path {path:?}: {r}")))?;
        if !seen.insert(path.to_string()) {
            return Err(invalid(format!("path {path:?} is listed twice")));
        }
        Ok(())
    };
    for dir in &config.dirs {
        claim(&dir.path)?;
        parse_mode(&dir.mode).map_err(|r| invalid(format!("directory {}: {r}", dir.path)))?;
    }
    for link in &config.links {
        claim(&link.path)?;
        if !link_stays_inside(&link.path, &link.target) {
            return Err(invalid(format!(
                "link {} points to {:?}, outside the tree",
                link.path, link.target
            )));
        }
    }
    let mut files = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        if layer.media_type != FILE_MEDIA_TYPE {
            return Err(invalid(format!("layer media type {:?}", layer.media_type)));
        }
        let Some(path) = layer.annotations.get(ANNOTATION_TITLE) else {
            return Err(invalid(format!("a layer has no {ANNOTATION_TITLE}")));
        };
        claim(path)?;
        let mode = match layer.annotations.get(ANNOTATION_MODE) {
            Some(m) => parse_mode(m).map_err(|r| invalid(format!("file {path}: {r}")))?,
            None => crate::manifest::files::DEFAULT_MODE,
        };
        files.push(TreeFile {
            path: path.clone(),
            mode,
            digest: layer.digest.clone(),
            size: layer.size,
        });
    }
    // Every parent of a file or link must be a directory of the tree, never a file or link.
    let dirs: BTreeSet<&str> = config.dirs.iter().map(|d| d.path.as_str()).collect();
    for path in files
        .iter()
        .map(|f| f.path.as_str())
        .chain(config.links.iter().map(|l| l.path.as_str()))
        .chain(config.dirs.iter().map(|d| d.path.as_str()))
    {
        let mut parent = path;
        while let Some((p, _)) = parent.rsplit_once('/') {
            if !dirs.contains(p) {
                return Err(invalid(format!(
                    "{path} is below {p}, which is not a directory of the tree"
                )));
            }
            parent = p;
        }
    }
    Ok(BundleTree { config, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::graph::walk;
    use crate::layout::oci::Index;
    use crate::manifest::trees::LockedTreeFile;

    fn entry(layout: &Layout, d: Descriptor) -> Entry {
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![d],
            annotations: BTreeMap::new(),
        };
        walk(layout, &index).entries.remove(0)
    }

    #[test]
    fn write_then_read_and_hostile_paths() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let digest = Digest::of_bytes(b"x");
        layout.write_blob(&digest, b"x").unwrap();
        let mut tree = LockedTree {
            name: "m".into(),
            path: "models/m".into(),
            files: vec![LockedTreeFile {
                path: "a/b/w.bin".into(),
                mode: "0755".into(),
                size: 1,
                sha256: digest.hex().into(),
            }],
            dirs: vec![
                LockedTreeDir {
                    path: "a".into(),
                    mode: "0755".into(),
                },
                LockedTreeDir {
                    path: "a/b".into(),
                    mode: "0750".into(),
                },
            ],
            links: vec![LockedTreeLink {
                path: "a/l".into(),
                target: "b/w.bin".into(),
            }],
        };
        let d = write(&layout, &tree).unwrap();
        let back = read(&layout, &entry(&layout, d)).unwrap();
        assert_eq!(back.files[0].mode, 0o755);
        assert_eq!(back.config.links.len(), 1);

        for bad in ["../x", "/etc/x", "a/../../x"] {
            tree.files[0].path = bad.into();
            let d = write(&layout, &tree).unwrap();
            assert!(read(&layout, &entry(&layout, d)).is_err(), "{bad}");
        }
        tree.files[0].path = "c/x".into();
        let d = write(&layout, &tree).unwrap();
        assert!(
            read(&layout, &entry(&layout, d)).is_err(),
            "parent not a dir"
        );
        tree.files[0].path = "a/b/w.bin".into();
        tree.links[0].target = "../../etc/passwd".into();
        let d = write(&layout, &tree).unwrap();
        assert!(read(&layout, &entry(&layout, d)).is_err(), "link outside");
    }
}
