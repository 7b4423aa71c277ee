//! Release files as OCI artifacts: one ORAS-style manifest per file, written when building and
//! read back (and checked again) when importing or serving.
//!
//! ```json
//! {"artifactType":"application/vnd.ferry.file.v1",
//!  "config":{"mediaType":"application/vnd.oci.empty.v1+json", ...},
//!  "layers":[{"mediaType":"application/octet-stream","digest":"sha256:…","size":…,
//!             "annotations":{"dev.ferry.file.mode":"0755","org.opencontainers.image.title":"k3s"}}],
//!  "mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}
//! ```
//!
//! `oras pull` writes such a layer to a file named by its title, as for any ORAS artifact.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::layout::artifact::{self, ANNOTATION_TITLE};
use crate::layout::graph::Entry;
use crate::layout::oci::{Descriptor, Manifest};
use crate::layout::{Layout, LayoutError};
use crate::manifest::files::{DEFAULT_MODE, check_file_name, format_mode, parse_mode};

/// `dev.ferry.kind` of file entries.
pub const KIND: &str = "file";
/// `artifactType` of a file artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.ferry.file.v1";
/// Media type of the layer that holds the file's bytes, as they were downloaded.
pub const LAYER_MEDIA_TYPE: &str = "application/octet-stream";
/// Layer annotation with the file's permission bits (four octal digits).
pub const ANNOTATION_MODE: &str = "dev.ferry.file.mode";

/// A release file as the bundle holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Its name on site (checked: one safe path component).
    pub name: String,
    /// Permission bits (at most 0o777).
    pub mode: u32,
    /// The content blob.
    pub digest: Digest,
    /// The content's size.
    pub size: u64,
    /// Where it was downloaded from (the entry's reference).
    pub url: String,
}

/// Why an index entry of kind `file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileArtifactError {
    /// The store failed (a missing or corrupt manifest).
    #[error("file {url}: {source}")]
    Layout {
        /// The entry's reference.
        url: String,
        /// The error.
        source: LayoutError,
    },
    /// The manifest is not a ferry file artifact.
    #[error(
        "file {url}: manifest {digest} is not a ferry file artifact ({reason}); the bundle was not made by this ferry, or was altered"
    )]
    NotAFile {
        /// The entry's reference.
        url: String,
        /// The manifest.
        digest: Digest,
        /// What is wrong with it.
        reason: String,
    },
    /// The file's name would leave the target directory or is otherwise unsafe.
    #[error("file {url}: refusing the name {name:?} the bundle gives it: {reason}")]
    UnsafeName {
        /// The entry's reference.
        url: String,
        /// The name in the bundle.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The mode annotation is not a plain permission.
    #[error("file {url}: refusing the mode the bundle gives it: {reason}")]
    BadMode {
        /// The entry's reference.
        url: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Writes the artifact manifest of a downloaded file (its blob already in the store) and
/// returns its index.json entry. A pure function of its arguments, so the same lock gives the
/// same index bytes.
pub fn write(
    layout: &Layout,
    url: &str,
    name: &str,
    mode: u32,
    digest: &Digest,
    size: u64,
) -> Result<Descriptor, LayoutError> {
    let config = artifact::empty_config(layout)?;
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_TITLE.to_string(), name.to_string());
    annotations.insert(ANNOTATION_MODE.to_string(), format_mode(mode));
    let layer = Descriptor {
        media_type: LAYER_MEDIA_TYPE.to_string(),
        digest: digest.clone(),
        size,
        platform: None,
        annotations,
        artifact_type: None,
    };
    let manifest = artifact::write_manifest(
        layout,
        Some(ARTIFACT_TYPE),
        &config,
        &[layer],
        &BTreeMap::new(),
    )?;
    Ok(artifact::index_entry(&manifest, KIND, url))
}

/// Reads a `file` entry's artifact back, checking its shape, its name and its mode again:
/// the index comes from the bundle, and nothing from it touches a file system unchecked.
pub fn read(layout: &Layout, entry: &Entry) -> Result<BundleFile, FileArtifactError> {
    let url = entry.reference.clone();
    let digest = entry.descriptor.digest.clone();
    let not_a_file = |reason: String| FileArtifactError::NotAFile {
        url: url.clone(),
        digest: digest.clone(),
        reason,
    };
    let bytes = layout
        .read_document(&digest)
        .map_err(|source| FileArtifactError::Layout {
            url: url.clone(),
            source,
        })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| not_a_file(e.to_string()))?;
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(not_a_file(format!(
            "artifactType {:?}, expected {ARTIFACT_TYPE:?}",
            manifest.artifact_type.as_deref().unwrap_or("")
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_a_file(format!(
            "{} layers, expected one",
            manifest.layers.len()
        )));
    };
    let Some(name) = layer.annotations.get(ANNOTATION_TITLE) else {
        return Err(not_a_file(format!("its layer has no {ANNOTATION_TITLE}")));
    };
    check_file_name(name).map_err(|reason| FileArtifactError::UnsafeName {
        url: url.clone(),
        name: name.clone(),
        reason,
    })?;
    let mode = match layer.annotations.get(ANNOTATION_MODE) {
        Some(value) => parse_mode(value).map_err(|reason| FileArtifactError::BadMode {
            url: url.clone(),
            reason,
        })?,
        None => DEFAULT_MODE,
    };
    Ok(BundleFile {
        name: name.clone(),
        mode,
        digest: layer.digest.clone(),
        size: layer.size,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::graph::walk;
    use crate::layout::oci::Index;

    fn entry_of(layout: &Layout, descriptor: Descriptor) -> Entry {
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![descriptor],
            annotations: BTreeMap::new(),
        };
        walk(layout, &index).entries.remove(0)
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let bytes = b"#!/bin/sh\necho k3s\n";
        let digest = Digest::of_bytes(bytes);
        layout.write_blob(&digest, bytes).unwrap();
        let url = "https://example.com/v1.31.4%2Bk3s1/k3s";
        let a = write(&layout, url, "k3s", 0o755, &digest, bytes.len() as u64).unwrap();
        let b = write(&layout, url, "k3s", 0o755, &digest, bytes.len() as u64).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.artifact_type.as_deref(), Some(ARTIFACT_TYPE));
        assert_eq!(a.annotations["dev.ferry.kind"], "file");
        assert_eq!(a.annotations["org.opencontainers.image.ref.name"], url);
        let file = read(&layout, &entry_of(&layout, a)).unwrap();
        assert_eq!(
            file,
            BundleFile {
                name: "k3s".into(),
                mode: 0o755,
                digest,
                size: bytes.len() as u64,
                url: url.into(),
            }
        );
    }

    #[test]
    fn hostile_names_and_modes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let digest = Digest::of_bytes(b"x");
        layout.write_blob(&digest, b"x").unwrap();
        for name in ["../x", "/etc/x", "..", ""] {
            let d = write(&layout, "https://x/y", name, 0o644, &digest, 1).unwrap();
            let e = read(&layout, &entry_of(&layout, d)).unwrap_err();
            assert!(matches!(e, FileArtifactError::UnsafeName { .. }), "{e}");
        }
        let config = artifact::empty_config(&layout).unwrap();
        let mut layer = artifact::small_blob(&layout, LAYER_MEDIA_TYPE, b"x").unwrap();
        layer
            .annotations
            .insert(ANNOTATION_TITLE.into(), "ok".into());
        layer
            .annotations
            .insert(ANNOTATION_MODE.into(), "4755".into());
        let m = artifact::write_manifest(
            &layout,
            Some(ARTIFACT_TYPE),
            &config,
            std::slice::from_ref(&layer),
            &BTreeMap::new(),
        )
        .unwrap();
        let e = read(&layout, &entry_of(&layout, m)).unwrap_err();
        assert!(matches!(e, FileArtifactError::BadMode { .. }), "{e}");
        let m = artifact::write_manifest(
            &layout,
            Some("application/vnd.other"),
            &config,
            &[layer],
            &BTreeMap::new(),
        )
        .unwrap();
        let e = read(&layout, &entry_of(&layout, m)).unwrap_err();
        assert!(e.to_string().contains("not a ferry file artifact"), "{e}");
    }
}
