//! Delta bundles: the full signed index of a release, but only the blobs an earlier bundle
//! (the base) does not have. The index names the base and the omitted blobs, so verify,
//! inspect and import know what must already be on site.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layout::graph::walk;
use crate::layout::oci::{ANNOTATION_LOCK_DIGEST, Index};
use crate::layout::{INDEX_FILE, Layout, LayoutError};

/// Index annotation: digest of the base bundle's index.json.
pub const ANNOTATION_DELTA_BASE: &str = "dev.ferry.delta.base";
/// Index annotation: digest of the blob listing the omitted blobs.
pub const ANNOTATION_DELTA_OMITTED: &str = "dev.ferry.delta.omitted";

/// The list of blobs a delta leaves to its base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Omitted {
    /// Digest of the base bundle's index.json.
    pub base: Digest,
    /// The blobs left out, with their sizes.
    pub blobs: BTreeMap<Digest, u64>,
}

/// What an earlier bundle holds, for building a delta against it.
#[derive(Debug, Clone)]
pub struct Base {
    /// Digest of its index.json.
    pub index_digest: Digest,
    /// Every blob it carries (or, from a bare index.json, every blob reachable through
    /// documents the new bundle also has).
    pub blobs: BTreeSet<Digest>,
    /// Per git repository name, the objects its refs named in the base (a delta's bundle
    /// takes them as prerequisites).
    pub git: BTreeMap<String, Vec<String>>,
}

/// Reads a base that is a bare `index.json`, its documents looked up in `fallback` (the new
/// bundle, which holds every document it shares with the base).
pub fn read_base_index(path: &Path, fallback: &Layout) -> Result<Base, LayoutError> {
    let bytes = std::fs::read(path).map_err(|source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    base_of(path, bytes, fallback)
}

/// Reads a base that is an opened bundle (a directory or packed volumes).
pub fn read_base_layout(layout: &Layout) -> Result<Base, LayoutError> {
    let bytes = layout
        .read_index_bytes()?
        .ok_or_else(|| LayoutError::NotALayout {
            path: layout.root().to_path_buf(),
        })?;
    base_of(layout.root(), bytes, layout)
}

fn base_of(path: &Path, index_bytes: Vec<u8>, layout: &Layout) -> Result<Base, LayoutError> {
    let index: Index =
        serde_json::from_slice(&index_bytes).map_err(|e| LayoutError::BadDocument {
            what: "index",
            digest: Digest::of_bytes(&index_bytes),
            reason: format!("{}: {e}", path.join(INDEX_FILE).display()),
        })?;
    let mut blobs = BTreeSet::new();
    for entry in walk(layout, &index).entries {
        blobs.extend(entry.blobs.into_iter().map(|b| b.digest));
    }
    // A base that is itself a delta still stands for what its own base had.
    if let Some(omitted) = read_omitted(layout, &index)? {
        blobs.extend(omitted.blobs.into_keys());
    }
    if let Some(lock) = index.annotations.get(ANNOTATION_LOCK_DIGEST)
        && let Ok(d) = Digest::parse(lock)
    {
        blobs.insert(d);
    }
    let git = index
        .manifests
        .iter()
        .filter_map(crate::layout::git::base_objects)
        .collect();
    Ok(Base {
        index_digest: Digest::of_bytes(&index_bytes),
        blobs,
        git,
    })
}

/// The omitted-blob list of a delta bundle, None for a full bundle.
pub fn read_omitted(layout: &Layout, index: &Index) -> Result<Option<Omitted>, LayoutError> {
    let Some(digest) = index.annotations.get(ANNOTATION_DELTA_OMITTED) else {
        return Ok(None);
    };
    let digest = Digest::parse(digest).map_err(|e| LayoutError::BadDocument {
        what: "delta list",
        digest: Digest::of_bytes(b""),
        reason: e.to_string(),
    })?;
    let bytes = layout.read_document(&digest)?;
    let omitted = serde_json::from_slice(&bytes).map_err(|e| LayoutError::BadDocument {
        what: "delta list",
        digest: digest.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(omitted))
}

/// Whether a file on site holds exactly the blob (size first, then its hash): how a delta's
/// importer checks that a mirror already has what the delta left to its base.
pub fn file_holds(path: &Path, digest: &Digest, size: u64) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => {
            matches!(crate::digest::hash_file(path, |_| {}), Ok((d, _)) if &d == digest)
        }
        _ => false,
    }
}

/// The error text for a delta whose base is not on site; `missing` names each item.
pub fn missing_base_message(target: &Path, missing: &[String]) -> String {
    format!(
        "this delta bundle relies on {} item(s) of its base release that {} does not hold:\n  {}\nnothing was written. Import the base release into it first, or use a full bundle",
        missing.len(),
        target.display(),
        missing.join("\n  ")
    )
}
