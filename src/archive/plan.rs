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

/// A volume file's name, parsed: `NAME.NNN.tar` (volume NNN of a multi-volume pack) or
/// `NAME.tar` (a pack without a volume size), each also with `.zst`. The one parser of volume
/// file names: pack names its output with it, the reader finds volumes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFileName {
    /// The pack's name.
    pub name: String,
    /// The volume's number; None for the one file of a pack without a volume size.
    pub number: Option<u32>,
    /// Compressed (`.tar.zst`).
    pub zstd: bool,
}

impl VolumeFileName {
    /// Parses a file name (no directory); None when it does not end in `.tar` or `.tar.zst`.
    pub fn parse(file: &str) -> Option<VolumeFileName> {
        let (stem, zstd) = match file.strip_suffix(".tar.zst") {
            Some(stem) => (stem, true),
            None => (file.strip_suffix(".tar")?, false),
        };
        let (name, number) = match stem.rsplit_once('.') {
            Some((name, n)) if n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
                (name, n.parse().ok())
            }
            _ => (stem, None),
        };
        Some(VolumeFileName {
            name: name.to_string(),
            number,
            zstd,
        })
    }

    /// The pack name a path stands for: a volume file's pack name, else the file name
    /// itself (`pack -o OUT`).
    pub fn pack_name(path: &std::path::Path) -> String {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        VolumeFileName::parse(&file).map_or(file, |v| v.name)
    }
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

#[cfg(test)]
mod tests {
    use super::{VolumeFileName, volume_file_name};

    #[test]
    fn volume_file_names_parse_back() {
        for (name, number, zstd) in [("p-2026.11.0", 7, false), ("b", 1, true)] {
            let file = volume_file_name(name, number, zstd);
            assert_eq!(
                VolumeFileName::parse(&file),
                Some(VolumeFileName {
                    name: name.into(),
                    number: Some(number),
                    zstd
                })
            );
        }
        let single = VolumeFileName::parse("bundle.tar").unwrap();
        assert_eq!((single.name.as_str(), single.number), ("bundle", None));
        assert_eq!(VolumeFileName::parse("a.12.tar").unwrap().name, "a.12");
        assert_eq!(VolumeFileName::parse("SHA256SUMS"), None);
        assert_eq!(VolumeFileName::parse("ferry"), None);
        assert_eq!(
            VolumeFileName::pack_name(std::path::Path::new("/m/out.tar.zst")),
            "out"
        );
        assert_eq!(
            VolumeFileName::pack_name(std::path::Path::new("/m/out")),
            "out"
        );
    }
}
