//! `ferry unpack`: volumes back into a bundle directory, every entry checked.
//!
//! Only the names `pack` writes are accepted (`oci-layout`, `index.json`, `index.json.sig`,
//! the plan and label, `blobs/sha256/<hex>`, `chunks/<hex>.NNN`), only as regular files, each
//! once; every blob is written through the store, so its digest is checked before it lands.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::ArchiveError;
use crate::archive::plan::{CHUNK_DIR, LABEL_FILE, PLAN_FILE, VolumeLabel, VolumePlan};
use crate::digest::{Digest, IO_BUFFER};
use crate::layout::{INDEX_FILE, Layout, LayoutError, SIGNATURE_FILE};

/// zstd frame magic, to read compressed volumes without being told.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What `unpack` did.
#[derive(Debug, Default, Serialize)]
pub struct UnpackReport {
    /// Volumes read.
    pub volumes: usize,
    /// Blobs written (or already present).
    pub blobs: usize,
    /// Blobs joined from chunks.
    pub joined_blobs: usize,
    /// Bytes of blob content.
    pub bytes: u64,
}

/// What a volume's entry is, by its name.
pub(crate) enum Name {
    OciLayout,
    Index,
    Signature,
    Plan,
    Label,
    Blob(Digest),
    Chunk(Digest, u32),
    Directory,
}

pub(crate) fn classify(
    volume: &str,
    path: &str,
    kind: tar::EntryType,
) -> Result<Name, ArchiveError> {
    let hostile = |reason: &str| ArchiveError::Hostile {
        volume: volume.to_string(),
        entry: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') {
        return Err(hostile("absolute path"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(hostile("path goes up with `..`"));
    }
    let trimmed = path.trim_start_matches("./");
    if kind.is_dir() {
        return match trimmed.trim_end_matches('/') {
            "" | "blobs" | "blobs/sha256" | CHUNK_DIR => Ok(Name::Directory),
            _ => Err(hostile("unexpected directory")),
        };
    }
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(hostile("links are never part of a bundle"));
    }
    if !(kind == tar::EntryType::Regular || kind == tar::EntryType::Continuous) {
        return Err(hostile(
            "only regular files are part of a bundle (devices, fifos and other types are refused)",
        ));
    }
    match trimmed {
        "oci-layout" => return Ok(Name::OciLayout),
        INDEX_FILE => return Ok(Name::Index),
        SIGNATURE_FILE => return Ok(Name::Signature),
        PLAN_FILE => return Ok(Name::Plan),
        LABEL_FILE => return Ok(Name::Label),
        _ => {}
    }
    if let Some(hex) = trimmed.strip_prefix("blobs/sha256/") {
        return Digest::parse(&format!("sha256:{hex}"))
            .map(Name::Blob)
            .map_err(|_| hostile("not a sha256 blob name"));
    }
    if let Some(rest) = trimmed.strip_prefix("chunks/")
        && let Some((hex, number)) = rest.split_once('.')
        && number.len() == 3
        && let Ok(n) = number.parse::<u32>()
        && let Ok(digest) = Digest::parse(&format!("sha256:{hex}"))
    {
        return Ok(Name::Chunk(digest, n));
    }
    Err(hostile("not a file ferry writes into a bundle"))
}

/// Opens a volume, decompressing zstd when the file starts with its magic.
fn open_volume(path: &Path) -> Result<Box<dyn Read>, ArchiveError> {
    let err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::with_capacity(IO_BUFFER, File::open(path).map_err(err)?);
    let head = io::BufRead::fill_buf(&mut file).map_err(err)?;
    if head.starts_with(&ZSTD_MAGIC) {
        Ok(Box::new(
            zstd::stream::read::Decoder::with_buffer(file).map_err(err)?,
        ))
    } else {
        Ok(Box::new(file))
    }
}

/// Restores a bundle directory from volumes given in any order.
pub fn unpack(
    volumes: &[PathBuf],
    out: &Path,
    on_bytes: &dyn Fn(u64),
) -> Result<UnpackReport, ArchiveError> {
    let layout = Layout::create(out)?;
    let staging = out.join(".ferry-tmp").join("chunks");
    fs::create_dir_all(&staging).map_err(|source| ArchiveError::Io {
        path: staging.clone(),
        source,
    })?;
    let mut report = UnpackReport::default();
    let mut index: Option<Vec<u8>> = None;
    let mut signature: Option<Vec<u8>> = None;
    let mut plan: Option<VolumePlan> = None;
    let mut labels: Vec<(String, VolumeLabel)> = Vec::new();
    let mut blobs_seen: BTreeSet<Digest> = BTreeSet::new();
    let mut singletons: BTreeSet<String> = BTreeSet::new();
    let mut chunks: BTreeMap<Digest, BTreeMap<u32, (PathBuf, String)>> = BTreeMap::new();

    for volume_path in volumes {
        let volume = volume_path.display().to_string();
        let damaged = |e: io::Error| ArchiveError::Damaged {
            volume: volume.clone(),
            reason: e.to_string(),
        };
        let mut archive = tar::Archive::new(open_volume(volume_path)?);
        let mut names = BTreeSet::new();
        for entry in archive.entries().map_err(damaged)? {
            let mut entry = entry.map_err(damaged)?;
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            // `./index.json` and `index.json` are one name.
            if !names.insert(path.trim_start_matches("./").to_string()) {
                return Err(ArchiveError::Hostile {
                    volume,
                    entry: path,
                    reason: "the same name twice in one volume".to_string(),
                });
            }
            let name = classify(&volume, &path, entry.header().entry_type())?;
            if matches!(name, Name::Index | Name::Signature | Name::Plan)
                && !singletons.insert(path.trim_start_matches("./").to_string())
            {
                return Err(ArchiveError::Hostile {
                    volume,
                    entry: path,
                    reason: "a second copy in another volume".to_string(),
                });
            }
            let small = |entry: &mut tar::Entry<_>| -> Result<Vec<u8>, ArchiveError> {
                if entry.size() > crate::layout::MAX_MANIFEST_SIZE {
                    return Err(ArchiveError::Hostile {
                        volume: volume.clone(),
                        entry: path.clone(),
                        reason: "far larger than such a file can be".to_string(),
                    });
                }
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).map_err(damaged)?;
                Ok(buf)
            };
            match name {
                Name::Directory => {}
                Name::OciLayout => {
                    small(&mut entry)?;
                }
                Name::Index => index = Some(small(&mut entry)?),
                Name::Signature => signature = Some(small(&mut entry)?),
                Name::Plan => {
                    let bytes = small(&mut entry)?;
                    plan = Some(serde_json::from_slice(&bytes).map_err(|e| {
                        ArchiveError::Damaged {
                            volume: volume.clone(),
                            reason: format!("{PLAN_FILE}: {e}"),
                        }
                    })?);
                }
                Name::Label => {
                    let bytes = small(&mut entry)?;
                    let label: VolumeLabel =
                        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Damaged {
                            volume: volume.clone(),
                            reason: format!("{LABEL_FILE}: {e}"),
                        })?;
                    if let Some((other, first)) = labels.first()
                        && first.index_digest != label.index_digest
                    {
                        return Err(ArchiveError::ForeignVolume {
                            volume: format!("{volume} (beside {other})"),
                            found: label.index_digest.to_string(),
                            expected: first.index_digest.to_string(),
                        });
                    }
                    labels.push((volume.clone(), label));
                }
                Name::Blob(digest) => {
                    if !blobs_seen.insert(digest.clone()) {
                        return Err(ArchiveError::Hostile {
                            volume,
                            entry: path,
                            reason: "the same blob twice".to_string(),
                        });
                    }
                    let size = entry.size();
                    if !layout.has_blob(&digest) {
                        let mut writer = layout.blob_writer(&digest)?;
                        writer.restart()?;
                        copy_into(&mut entry, &mut writer, on_bytes).map_err(damaged)?;
                        writer.commit().map_err(|e| corrupt(&volume, &path, e))?;
                    } else {
                        io::copy(&mut entry, &mut io::sink()).map_err(damaged)?;
                        on_bytes(size);
                    }
                    report.blobs += 1;
                    report.bytes += size;
                }
                Name::Chunk(digest, number) => {
                    let target = staging.join(format!("{}.{number:03}", digest.hex()));
                    let mut file = File::create(&target).map_err(|source| ArchiveError::Io {
                        path: target.clone(),
                        source,
                    })?;
                    let n = io::copy(&mut entry, &mut file).map_err(damaged)?;
                    on_bytes(n);
                    if chunks
                        .entry(digest)
                        .or_default()
                        .insert(number, (target, volume.clone()))
                        .is_some()
                    {
                        return Err(ArchiveError::Hostile {
                            volume,
                            entry: path,
                            reason: "the same chunk twice".to_string(),
                        });
                    }
                }
            }
        }
        report.volumes += 1;
    }

    let index = index.ok_or_else(|| ArchiveError::MissingVolumes {
        name: labels
            .first()
            .map(|(_, l)| l.name.clone())
            .unwrap_or_else(|| "the pack".to_string()),
        missing: "1 (it holds index.json)".to_string(),
        count: labels.first().map(|(_, l)| l.count).unwrap_or(1),
    })?;
    let index_digest = Digest::of_bytes(&index);
    if let Some(plan) = &plan {
        if plan.index_digest != index_digest {
            return Err(ArchiveError::ForeignVolume {
                volume: "volume 1".to_string(),
                found: index_digest.to_string(),
                expected: plan.index_digest.to_string(),
            });
        }
        for (volume, label) in &labels {
            if label.index_digest != index_digest {
                return Err(ArchiveError::ForeignVolume {
                    volume: volume.clone(),
                    found: label.index_digest.to_string(),
                    expected: index_digest.to_string(),
                });
            }
        }
        let present: BTreeSet<u32> = labels.iter().map(|(_, l)| l.number).collect();
        let missing: Vec<String> = (1..=plan.volume_count)
            .filter(|n| !present.contains(n))
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ArchiveError::MissingVolumes {
                name: plan.name.clone(),
                missing: missing.join(", "),
                count: plan.volume_count,
            });
        }
        // Join chunked blobs in plan order, each chunk checked against the plan first.
        for (digest, parts) in &plan.blobs {
            if parts.len() < 2 && !parts.iter().any(|p| p.path.starts_with("chunks/")) {
                continue;
            }
            let staged = chunks.remove(digest).unwrap_or_default();
            let mut writer = layout.blob_writer(digest)?;
            writer.restart()?;
            for (i, part) in parts.iter().enumerate() {
                let number = i as u32 + 1;
                let (path, volume) = staged.get(&number).ok_or_else(|| ArchiveError::Damaged {
                    volume: format!("volume {}", part.volume),
                    reason: format!("chunk {number} of {digest} is missing"),
                })?;
                let (actual, size) =
                    crate::digest::hash_file(path, |_| {}).map_err(|source| ArchiveError::Io {
                        path: path.clone(),
                        source,
                    })?;
                if actual != part.digest || size != part.size {
                    return Err(ArchiveError::Corrupt {
                        volume: volume.clone(),
                        what: format!("chunk {number} of {digest}"),
                        reason: format!("hashes to {actual}, the plan says {}", part.digest),
                    });
                }
                let mut file = File::open(path).map_err(|source| ArchiveError::Io {
                    path: path.clone(),
                    source,
                })?;
                copy_into(&mut file, &mut writer, &|_| {}).map_err(|source| ArchiveError::Io {
                    path: path.clone(),
                    source,
                })?;
                let _ = fs::remove_file(path);
            }
            writer
                .commit()
                .map_err(|e| corrupt("the joined chunks", &digest.to_string(), e))?;
            report.joined_blobs += 1;
            report.blobs += 1;
        }
        if let Some((digest, _)) = chunks.into_iter().next() {
            return Err(ArchiveError::Hostile {
                volume: "the volumes".to_string(),
                entry: format!("chunks/{}", digest.hex()),
                reason: "chunks the plan does not name".to_string(),
            });
        }
        for digest in plan.blobs.keys() {
            if !layout.has_blob(digest) {
                return Err(ArchiveError::Damaged {
                    volume: "the volumes".to_string(),
                    reason: format!("blob {digest} named by the plan is in none of them"),
                });
            }
        }
    } else if !chunks.is_empty() || !labels.is_empty() {
        return Err(ArchiveError::MissingVolumes {
            name: labels
                .first()
                .map(|(_, l)| l.name.clone())
                .unwrap_or_else(|| "the pack".to_string()),
            missing: "1 (it holds the plan)".to_string(),
            count: labels.first().map(|(_, l)| l.count).unwrap_or(0),
        });
    }
    // The index last, so a directory with index.json is a complete bundle.
    layout.write_index(&index)?;
    if let Some(sig) = signature {
        layout.write_signature(&String::from_utf8_lossy(&sig))?;
    }
    layout.clean_tmp()?;
    Ok(report)
}

fn corrupt(volume: &str, what: &str, error: LayoutError) -> ArchiveError {
    match error {
        LayoutError::DigestMismatch { actual, .. } => ArchiveError::Corrupt {
            volume: volume.to_string(),
            what: what.to_string(),
            reason: format!("content hashes to {actual}"),
        },
        other => other.into(),
    }
}

fn copy_into(
    reader: &mut dyn Read,
    writer: &mut crate::layout::BlobWriter,
    on_bytes: &dyn Fn(u64),
) -> io::Result<()> {
    let mut buf = vec![0u8; IO_BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer
            .write_all(&buf[..n])
            .map_err(|e| io::Error::other(e.to_string()))?;
        on_bytes(n as u64);
    }
}
