//! Git repositories as OCI artifacts: one manifest per repository, its config naming the refs
//! carried, its one layer a `git bundle` (none when a delta has no new objects).
//!
//! ```json
//! {"artifactType":"application/vnd.ferry.git.v1",
//!  "config":{"mediaType":"application/vnd.ferry.git.config.v1+json", ...},
//!  "layers":[{"mediaType":"application/vnd.ferry.git.bundle","digest":"sha256:…","size":…,
//!             "annotations":{"org.opencontainers.image.title":"gitops.bundle"}}], ...}
//! ```
//!
//! The config lists every ref and the object it names, the branch HEAD names, and the
//! bundle's prerequisites: the commits of the base release a delta's bundle builds on. The
//! index entry carries the refs' objects too (`dev.ferry.git.objects`), so a later delta can
//! be built against a bare `index.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layout::artifact::{self, ANNOTATION_TITLE};
use crate::layout::graph::Entry;
use crate::layout::oci::{Descriptor, Manifest};
use crate::layout::{Layout, LayoutError};
use crate::manifest::git::{check_oid, check_ref_name, check_repo_name};

/// `dev.ferry.kind` of git entries.
pub const KIND: &str = "git";
/// `artifactType` of a git artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.ferry.git.v1";
/// Media type of the config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.ferry.git.config.v1+json";
/// Media type of the layer: what `git bundle create` wrote.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.ferry.git.bundle";
/// Index-entry annotation: the repository's name.
pub const ANNOTATION_NAME: &str = "dev.ferry.git.name";
/// Index-entry annotation: the objects the refs name, space separated (for later deltas).
pub const ANNOTATION_OBJECTS: &str = "dev.ferry.git.objects";

/// The config of a git artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitConfig {
    /// The repository's name on site.
    pub name: String,
    /// Where it came from.
    pub url: String,
    /// Every carried ref and the object it names.
    pub refs: BTreeMap<String, String>,
    /// The branch HEAD names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Commits the bundle needs on site already (a delta's base); empty for a full bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<String>,
}

/// A git repository as the bundle holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRepo {
    /// Refs, head, prerequisites.
    pub config: GitConfig,
    /// The bundle blob and its size; None when the delta carries no new objects.
    pub bundle: Option<(Digest, u64)>,
}

/// Why an index entry of kind `git` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GitArtifactError {
    /// The store failed.
    #[error("git repository {reference}: {source}")]
    Layout {
        /// The entry's reference.
        reference: String,
        /// The error.
        source: LayoutError,
    },
    /// Not a ferry git artifact, or a name, ref or object id that is refused.
    #[error(
        "git repository {reference}: manifest {digest} is not a usable ferry git artifact ({reason}); the bundle was not made by this ferry, or was altered"
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

/// Writes the artifact of a repository (the bundle blob, if any, already in the store) and
/// returns its index.json entry.
pub fn write(
    layout: &Layout,
    config: &GitConfig,
    bundle: Option<(&Digest, u64)>,
) -> Result<Descriptor, LayoutError> {
    let bytes = serde_json::to_vec(config).expect("a git config always serialises");
    let config_descriptor = artifact::small_blob(layout, CONFIG_MEDIA_TYPE, &bytes)?;
    let layers: Vec<Descriptor> = bundle
        .map(|(digest, size)| {
            let mut annotations = BTreeMap::new();
            annotations.insert(
                ANNOTATION_TITLE.to_string(),
                format!("{}.bundle", config.name),
            );
            Descriptor {
                media_type: BUNDLE_MEDIA_TYPE.to_string(),
                digest: digest.clone(),
                size,
                platform: None,
                annotations,
                artifact_type: None,
            }
        })
        .into_iter()
        .collect();
    let manifest = artifact::write_manifest(
        layout,
        Some(ARTIFACT_TYPE),
        &config_descriptor,
        &layers,
        &BTreeMap::new(),
    )?;
    let mut entry = artifact::index_entry(&manifest, KIND, &config.url);
    let mut objects: Vec<&str> = config.refs.values().map(String::as_str).collect();
    objects.sort_unstable();
    objects.dedup();
    entry
        .annotations
        .insert(ANNOTATION_OBJECTS.to_string(), objects.join(" "));
    entry
        .annotations
        .insert(ANNOTATION_NAME.to_string(), config.name.clone());
    Ok(entry)
}

/// The repository name and ref objects an index entry of a base release names (for deltas).
pub fn base_objects(descriptor: &Descriptor) -> Option<(String, Vec<String>)> {
    if descriptor
        .annotations
        .get(crate::layout::oci::ANNOTATION_KIND)?
        != KIND
    {
        return None;
    }
    let name = descriptor.annotations.get(ANNOTATION_NAME)?.clone();
    let objects = descriptor
        .annotations
        .get(ANNOTATION_OBJECTS)?
        .split(' ')
        .filter(|o| check_oid(o))
        .map(str::to_string)
        .collect();
    Some((name, objects))
}

/// Reads a `git` entry's artifact back, checking its shape, name, refs and object ids.
pub fn read(layout: &Layout, entry: &Entry) -> Result<BundleRepo, GitArtifactError> {
    let reference = entry.reference.clone();
    let digest = entry.descriptor.digest.clone();
    let invalid = |reason: String| GitArtifactError::Invalid {
        reference: reference.clone(),
        digest: digest.clone(),
        reason,
    };
    let layout_error = |source| GitArtifactError::Layout {
        reference: reference.clone(),
        source,
    };
    let bytes = layout.read_document(&digest).map_err(layout_error)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(invalid(format!(
            "artifactType {:?}, expected {ARTIFACT_TYPE:?}",
            manifest.artifact_type.as_deref().unwrap_or("")
        )));
    }
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(invalid(format!(
            "config media type {:?}",
            manifest.config.media_type
        )));
    }
    let config_bytes = layout
        .read_document(&manifest.config.digest)
        .map_err(layout_error)?;
    let config: GitConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("config: {e}")))?;
    check_repo_name(&config.name)
        .map_err(|r| invalid(format!("repository name {:?}: {r}", config.name)))?;
    for (name, oid) in &config.refs {
        check_ref_name(name).map_err(|r| invalid(format!("ref {name:?}: {r}")))?;
        if !check_oid(oid) {
            return Err(invalid(format!(
                "ref {name} names {oid:?}, not an object id"
            )));
        }
    }
    if let Some(head) = &config.head
        && !config.refs.contains_key(head)
    {
        return Err(invalid(format!("HEAD names {head}, which is not carried")));
    }
    if let Some(p) = config.prerequisites.iter().find(|p| !check_oid(p)) {
        return Err(invalid(format!("prerequisite {p:?} is not an object id")));
    }
    let bundle = match manifest.layers.as_slice() {
        [] => None,
        [layer] if layer.media_type == BUNDLE_MEDIA_TYPE => {
            Some((layer.digest.clone(), layer.size))
        }
        [layer] => return Err(invalid(format!("layer media type {:?}", layer.media_type))),
        more => return Err(invalid(format!("{} layers, expected one", more.len()))),
    };
    Ok(BundleRepo { config, bundle })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::graph::walk;
    use crate::layout::oci::Index;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let bytes = b"# v2 git bundle\n";
        let digest = Digest::of_bytes(bytes);
        layout.write_blob(&digest, bytes).unwrap();
        let config = GitConfig {
            name: "gitops".into(),
            url: "https://example.com/gitops.git".into(),
            refs: [("refs/heads/main".to_string(), "a".repeat(40))].into(),
            head: Some("refs/heads/main".into()),
            prerequisites: vec![],
        };
        let d = write(&layout, &config, Some((&digest, bytes.len() as u64))).unwrap();
        assert_eq!(
            base_objects(&d),
            Some(("gitops".to_string(), vec!["a".repeat(40)]))
        );
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![d],
            annotations: BTreeMap::new(),
        };
        let entry = walk(&layout, &index).entries.remove(0);
        let repo = read(&layout, &entry).unwrap();
        assert_eq!(repo.config, config);
        assert_eq!(repo.bundle, Some((digest, bytes.len() as u64)));

        let mut bad = config.clone();
        bad.refs.insert("refs/heads/../../x".into(), "b".repeat(40));
        let d = write(&layout, &bad, None).unwrap();
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![d],
            annotations: BTreeMap::new(),
        };
        let entry = walk(&layout, &index).entries.remove(0);
        assert!(read(&layout, &entry).is_err());
    }
}
