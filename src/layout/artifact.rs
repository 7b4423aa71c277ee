//! Writing OCI artifact manifests (files, charts, apt) and their index entries.
//!
//! Artifacts follow the OCI image spec's guidance for non-image content: an image manifest
//! with `artifactType`, the empty config descriptor unless the kind has its own config (Helm),
//! and one layer per file. Serialisation is canonical (sorted keys, compact), so the same
//! inputs give the same manifest digest.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::layout::oci::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_KIND, ANNOTATION_REF_NAME, Descriptor, OCI_MANIFEST,
};
use crate::layout::{Layout, LayoutError};

/// Media type of the empty config (`{}`).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content.
pub const EMPTY_CONTENT: &[u8] = b"{}";
/// Annotation naming a layer's file (as ORAS does).
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// Stores the empty config blob and returns its descriptor.
pub fn empty_config(layout: &Layout) -> Result<Descriptor, LayoutError> {
    let digest = Digest::of_bytes(EMPTY_CONTENT);
    layout.write_blob(&digest, EMPTY_CONTENT)?;
    Ok(Descriptor {
        media_type: EMPTY_MEDIA_TYPE.to_string(),
        digest,
        size: EMPTY_CONTENT.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
        artifact_type: None,
    })
}

/// Stores a small blob (a config, an index file) and returns its descriptor.
pub fn small_blob(
    layout: &Layout,
    media_type: &str,
    bytes: &[u8],
) -> Result<Descriptor, LayoutError> {
    let digest = Digest::of_bytes(bytes);
    layout.write_blob(&digest, bytes)?;
    Ok(Descriptor {
        media_type: media_type.to_string(),
        digest,
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
        artifact_type: None,
    })
}

/// Writes an artifact manifest and returns its descriptor (media type OCI manifest).
pub fn write_manifest(
    layout: &Layout,
    artifact_type: Option<&str>,
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<Descriptor, LayoutError> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    });
    if let Some(t) = artifact_type {
        manifest["artifactType"] = Value::String(t.to_string());
    }
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let bytes = canonical(&manifest);
    let digest = Digest::of_bytes(&bytes);
    layout.write_blob(&digest, &bytes)?;
    Ok(Descriptor {
        media_type: OCI_MANIFEST.to_string(),
        digest,
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
        artifact_type: artifact_type.map(str::to_string),
    })
}

/// The index.json entry for an artifact: kind and reference annotations added.
pub fn index_entry(manifest: &Descriptor, kind: &str, reference: &str) -> Descriptor {
    let mut entry = manifest.clone();
    entry
        .annotations
        .insert(ANNOTATION_KIND.to_string(), kind.to_string());
    entry
        .annotations
        .insert(ANNOTATION_REF_NAME.to_string(), reference.to_string());
    entry.annotations.insert(
        ANNOTATION_CONTAINERD_NAME.to_string(),
        reference.to_string(),
    );
    entry
}

/// Compact JSON with object keys sorted (serde_json's map keeps insertion order here).
fn canonical(value: &Value) -> Vec<u8> {
    fn sort(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(value)).expect("JSON values always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let config = empty_config(&layout).unwrap();
        let mut layer = small_blob(&layout, "application/octet-stream", b"k3s binary").unwrap();
        layer
            .annotations
            .insert(ANNOTATION_TITLE.to_string(), "k3s".to_string());
        let a = write_manifest(
            &layout,
            Some("application/vnd.ferry.file.v1"),
            &config,
            std::slice::from_ref(&layer),
            &BTreeMap::new(),
        )
        .unwrap();
        let b = write_manifest(
            &layout,
            Some("application/vnd.ferry.file.v1"),
            &config,
            &[layer],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(a.digest, b.digest);
        let text = String::from_utf8(layout.read_document(&a.digest).unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"artifactType":"application/vnd.ferry.file.v1","config":"#),
            "{text}"
        );
        let entry = index_entry(&a, "file", "https://example.com/k3s");
        assert_eq!(entry.annotations[ANNOTATION_KIND], "file");
    }
}
