//! Walks a bundle's index down to every blob, entry by entry.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::layout::oci::{
    ANNOTATION_KIND, ANNOTATION_REF_NAME, Descriptor, Index, Manifest, is_index, is_manifest,
};
use crate::layout::{Layout, LayoutError};

/// One entry of the bundle's index and everything it references.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `dev.ferry.kind` (`image` when absent, as for layouts written by other tools).
    pub kind: String,
    /// The full upstream reference, from the ref-name annotation.
    pub reference: String,
    /// The index descriptor of the entry.
    pub descriptor: Descriptor,
    /// Platforms the entry carries (`os/arch[/variant]`), when known.
    pub platforms: Vec<String>,
    /// Every blob the entry needs, documents first, each once.
    pub blobs: Vec<Descriptor>,
}

impl Entry {
    /// Total bytes of the entry's blobs.
    pub fn size(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// A document (manifest or index) that could not be read while walking.
#[derive(Debug)]
pub struct BrokenDocument {
    /// Reference of the entry that needs it.
    pub reference: String,
    /// What went wrong.
    pub error: LayoutError,
}

/// The result of walking a bundle's index.
#[derive(Debug, Default)]
pub struct Walk {
    /// Entries in index order.
    pub entries: Vec<Entry>,
    /// Documents that were missing, corrupt or unreadable.
    pub broken: Vec<BrokenDocument>,
    /// Digests of documents that were read and checked during the walk.
    pub checked_documents: BTreeSet<Digest>,
}

/// Walks every entry of `index` through the layout's documents.
pub fn walk(layout: &Layout, index: &Index) -> Walk {
    let mut walk = Walk::default();
    for descriptor in &index.manifests {
        let reference = descriptor
            .annotations
            .get(ANNOTATION_REF_NAME)
            .cloned()
            .unwrap_or_else(|| descriptor.digest.to_string());
        let kind = descriptor
            .annotations
            .get(ANNOTATION_KIND)
            .cloned()
            .unwrap_or_else(|| "image".to_string());
        let mut entry = Entry {
            kind,
            reference,
            descriptor: descriptor.clone(),
            platforms: Vec::new(),
            blobs: Vec::new(),
        };
        let mut seen = BTreeSet::new();
        visit(layout, descriptor, &mut entry, &mut seen, &mut walk, 0);
        walk.entries.push(entry);
    }
    walk
}

fn visit(
    layout: &Layout,
    descriptor: &Descriptor,
    entry: &mut Entry,
    seen: &mut BTreeSet<Digest>,
    walk: &mut Walk,
    depth: usize,
) {
    if !seen.insert(descriptor.digest.clone()) {
        return;
    }
    entry.blobs.push(descriptor.clone());
    let media_type = descriptor.media_type.as_str();
    if !(is_index(media_type) || is_manifest(media_type)) || depth > 4 {
        return;
    }
    let bytes = match layout.read_document(&descriptor.digest) {
        Ok(b) => b,
        Err(error) => {
            walk.broken.push(BrokenDocument {
                reference: entry.reference.clone(),
                error,
            });
            return;
        }
    };
    walk.checked_documents.insert(descriptor.digest.clone());
    let bad = |reason: serde_json::Error| LayoutError::BadDocument {
        what: if is_index(media_type) {
            "index"
        } else {
            "manifest"
        },
        digest: descriptor.digest.clone(),
        reason: reason.to_string(),
    };
    if is_index(media_type) {
        match serde_json::from_slice::<Index>(&bytes) {
            Ok(index) => {
                for child in &index.manifests {
                    if let Some(p) = &child.platform
                        && !p.is_unknown()
                    {
                        entry.platforms.push(p.display());
                    }
                    visit(layout, child, entry, seen, walk, depth + 1);
                }
            }
            Err(e) => walk.broken.push(BrokenDocument {
                reference: entry.reference.clone(),
                error: bad(e),
            }),
        }
    } else {
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(manifest) => {
                if depth == 0 {
                    if let Some(p) = &descriptor.platform {
                        entry.platforms.push(p.display());
                    } else if let Some(p) = config_platform(layout, &manifest) {
                        entry.platforms.push(p);
                    }
                }
                for blob in manifest.blobs() {
                    if seen.insert(blob.digest.clone()) {
                        entry.blobs.push(blob.clone());
                    }
                }
            }
            Err(e) => walk.broken.push(BrokenDocument {
                reference: entry.reference.clone(),
                error: bad(e),
            }),
        }
    }
}

/// The platform an image config states, for single-manifest entries.
fn config_platform(layout: &Layout, manifest: &Manifest) -> Option<String> {
    if manifest.config.size > crate::layout::MAX_MANIFEST_SIZE {
        return None;
    }
    let bytes = layout.read_document(&manifest.config.digest).ok()?;
    let config: crate::layout::oci::ImageConfigPlatform = serde_json::from_slice(&bytes).ok()?;
    if config.os.is_empty() || config.architecture.is_empty() {
        return None;
    }
    Some(match config.variant {
        Some(v) => format!("{}/{}/{}", config.os, config.architecture, v),
        None => format!("{}/{}", config.os, config.architecture),
    })
}
