//! Packing a bundle into tar volumes for USB media, and unpacking them.
//!
//! A pack is plain tar (ustar, deterministic: same bundle, same bytes), table of contents
//! first: `oci-layout`, `index.json`, `index.json.sig`, the volume plan (multi-volume packs),
//! then the manifests, configs and other small blobs, then the large blobs. A single-volume
//! pack is exactly the bundle directory, so `tar -xf` restores it. With a volume size, every
//! volume is a standalone tar of whole blobs; a blob larger than a volume is split into
//! numbered chunks (`chunks/<hex>.NNN`). Volume 1 holds the plan: which blob, or which chunk
//! of it, is in which volume.

pub mod pack;
pub mod plan;
pub mod stick;
pub mod unpack;
pub mod volumes;
pub mod zstd_frames;

/// Errors reading or writing volumes; each names the volume or entry and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A tar entry that ferry never writes and will not read.
    #[error(
        "{volume}: refusing entry {entry:?}: {reason}. This volume was not written by `ferry pack` or was tampered with; do not use it"
    )]
    Hostile {
        /// The volume.
        volume: String,
        /// The entry's path.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A volume that belongs to another bundle or pack.
    #[error(
        "{volume} belongs to another bundle (index {found}, this pack is {expected}); keep each release's volumes apart"
    )]
    ForeignVolume {
        /// The volume.
        volume: String,
        /// Its bundle's index digest.
        found: String,
        /// The pack's index digest.
        expected: String,
    },
    /// Volumes missing from what was given.
    #[error(
        "volumes missing: {missing} of {name} ({count} volumes in all). Insert the media that holds them, or copy them beside the others, and run the same command again"
    )]
    MissingVolumes {
        /// The pack's name.
        name: String,
        /// Numbers of the missing volumes.
        missing: String,
        /// How many volumes the pack has.
        count: u32,
    },
    /// A volume ended early or is not a valid tar.
    #[error(
        "{volume} is damaged: {reason}. Copy it again from the source media (check it with `sha256sum -c SHA256SUMS`)"
    )]
    Damaged {
        /// The volume.
        volume: String,
        /// What was wrong.
        reason: String,
    },
    /// Two of the volume files given are the same volume.
    #[error(
        "{first} and {second} are both volume {number} of the pack; give each volume once (and keep each release's volumes apart)"
    )]
    SameVolume {
        /// The volume number their labels carry.
        number: u32,
        /// One file.
        first: std::path::PathBuf,
        /// The other.
        second: std::path::PathBuf,
    },
    /// A blob could not be read whole from the volumes (the source names the volume).
    #[error("cannot read blob {digest} from the volumes")]
    Read {
        /// The blob.
        digest: crate::digest::Digest,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A directory holding volumes of several packs.
    #[error(
        "{dir} holds volumes of several packs ({names}); give the path of one volume file instead of the directory"
    )]
    Ambiguous {
        /// The directory.
        dir: std::path::PathBuf,
        /// The packs' names.
        names: String,
    },
    /// A directory with neither a bundle nor volumes.
    #[error(
        "{dir} is not a ferry bundle: it has no oci-layout file and no packed volumes (NAME.tar, NAME.001.tar, ...); give the bundle directory or the media's mount point, or add --wait to wait for the media"
    )]
    NoVolumes {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// A bad `--volume-size`.
    #[error(
        "invalid volume size {0:?}: give bytes with an optional K, M, G or T suffix (powers of 1024), e.g. 4G or 4000M, or `fat32` (4 GiB - 1)"
    )]
    VolumeSize(String),
    /// A volume size below the smallest a volume can be.
    #[error(
        "volume size {0:?} is too small: a volume holds at least 64K (its table of contents and some data); give --volume-size 64K or more"
    )]
    VolumeTooSmall(String),
    /// The ferry binary to carry beside the volumes cannot be read.
    #[error(
        "cannot copy the ferry binary {path} beside the volumes: {reason}; give a readable ferry binary with --ferry-binary PATH"
    )]
    Binary {
        /// The binary.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// SHA256SUMS could not be signed.
    #[error("cannot sign {path}: {reason}; check the key given with --key (cosign.key)")]
    Sign {
        /// The signature file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
}

/// Parses a volume size: `4G`, `4000M`, `512K`, `123456`, or `fat32` (4 GiB - 1 byte).
pub fn parse_volume_size(value: &str) -> Result<u64, ArchiveError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("fat32") {
        return Ok((4u64 << 30) - 1);
    }
    let (digits, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&v[..i], v[i..].trim_end_matches(['i', 'B', 'b'])),
        None => (v, ""),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| ArchiveError::VolumeSize(value.to_string()))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(ArchiveError::VolumeSize(value.to_string())),
    };
    let size = number
        .checked_shl(shift)
        .filter(|s| s >> shift == number)
        .ok_or_else(|| ArchiveError::VolumeSize(value.to_string()))?;
    // Room for the table of contents and at least some data in every volume.
    if size < 64 * 1024 {
        return Err(ArchiveError::VolumeTooSmall(value.to_string()));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::parse_volume_size;

    #[test]
    fn volume_sizes() {
        assert_eq!(parse_volume_size("fat32").unwrap(), 4_294_967_295);
        assert_eq!(parse_volume_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_volume_size("4000M").unwrap(), 4000 << 20);
        assert_eq!(parse_volume_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_volume_size("65536").unwrap(), 65536);
        assert!(parse_volume_size("4X").is_err());
        assert!(parse_volume_size("").is_err());
        // Found while making the fuzz seeds: "2K" was called invalid, as if its form were wrong.
        let small = parse_volume_size("2K").unwrap_err().to_string();
        assert!(
            small.contains("too small") && small.contains("64K"),
            "{small}"
        );
        assert!(parse_volume_size("99999999999T").is_err());
    }
}
