//! The volume plan (in volume 1) and the volume label (in every volume of a multi-volume pack).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Path of the plan inside volume 1.
pub const PLAN_FILE: &str = "ferry-volumes.json";
/// Path of the label inside every volume.
pub const LABEL_FILE: &str = "ferry-volume.json";
/// Directory of blob chunks inside volumes.
pub const CHUNK_DIR: &str = "chunks";

/// Which blob, or which chunk of it, is in which volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumePlan {
    /// Format version (1).
    pub plan_version: u32,
    /// The pack's name (volume files are `<name>.NNN.tar[.zst]`).
    pub name: String,
    /// Digest of the bundle's index.json: the identity every volume carries.
    pub index_digest: Digest,
    /// Number of volumes.
    pub volume_count: u32,
    /// Every blob's parts, in order.
    pub blobs: BTreeMap<Digest, Vec<Part>>,
}

/// One piece of a blob: the whole blob, or a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Part {
    /// Volume number, from 1.
    pub volume: u32,
    /// Path inside the volume.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Digest of the part's bytes (the blob's own digest for a whole blob).
    pub digest: Digest,
}

/// What every volume of a multi-volume pack says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeLabel {
    /// The pack's name.
    pub name: String,
    /// Digest of the bundle's index.json.
    pub index_digest: Digest,
    /// This volume's number, from 1.
    pub number: u32,
    /// Number of volumes.
    pub count: u32,
}

/// The file name of volume `number`.
pub fn volume_file_name(name: &str, number: u32, zstd: bool) -> String {
    format!("{name}.{number:03}.tar{}", if zstd { ".zst" } else { "" })
}

/// Whether a path inside a volume is a chunk's.
pub fn is_chunk_path(path: &str) -> bool {
    path.strip_prefix(CHUNK_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The path of chunk `index` (from 1) of a blob.
pub fn chunk_path(digest: &Digest, index: u32) -> String {
    format!("{CHUNK_DIR}/{}.{index:03}", digest.hex())
}
