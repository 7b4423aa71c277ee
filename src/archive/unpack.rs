//! `ferry unpack`: volumes back into a bundle directory, every entry checked.
//!
//! The volumes given are opened as a [`VolumeSet`], the reader `verify`, `import` and `serve`
//! use: the same name rules (only the names `pack` writes, only regular files, each once),
//! labels and plan checks, all made before anything is written. Every blob is then read with
//! the layout's blob reader (chunks joined across volumes, the digest checked on the way, once)
//! and written through the store's blob writer (temporary file, fsync, rename), one blob
//! at a time, streamed. Blobs already in the directory are kept, so a re-run after an
//! interruption goes on where it stopped; `index.json` and its signature come last, so a
//! directory with an index is a complete bundle.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::archive::ArchiveError;
use crate::archive::plan::is_chunk_path;
use crate::archive::volumes::VolumeSet;
use crate::digest::IO_BUFFER;
use crate::layout::Layout;
use crate::layout::blob_reader::{PackedPart, PackedStore};

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

/// Restores a bundle directory from volumes given in any order. `on_total` is told the bytes
/// of blob content once the volumes are checked; `on_bytes` as they are copied.
pub fn unpack(
    volumes: &[PathBuf],
    out: &Path,
    on_total: &dyn Fn(u64),
    on_bytes: &dyn Fn(u64),
) -> Result<UnpackReport, ArchiveError> {
    let set = Arc::new(VolumeSet::open_files(volumes)?);
    set.require_all()?;
    let mut blobs: Vec<_> = set.blobs().collect();
    let source = Layout::packed(set.clone());
    // In the order the media holds them: each volume is read front to back.
    blobs.sort_by_key(|(digest, _)| source.blob_order_key(digest));
    on_total(blobs.iter().map(|(_, parts)| size_of(parts)).sum());

    let layout = Layout::create(out)?;
    let mut report = UnpackReport {
        volumes: volumes.len(),
        ..UnpackReport::default()
    };
    let mut buf = vec![0u8; IO_BUFFER];
    for (digest, parts) in blobs {
        let size = size_of(parts);
        if layout.has_blob(digest) {
            // Written by an earlier run: present means correct (the store's invariant).
            on_bytes(size);
        } else {
            let read_error = |source| ArchiveError::Read {
                digest: digest.clone(),
                source,
            };
            // The reader checks the digest (naming the volume and chunk of a corrupt one),
            // and fails before its last byte: the writer need not hash it again.
            let mut reader = source.open_blob(digest)?;
            let mut writer = layout.checked_blob_writer(digest)?;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(read_error(e)),
                };
                writer.write_all(&buf[..n])?;
                on_bytes(n as u64);
            }
            writer.commit()?;
        }
        report.blobs += 1;
        report.bytes += size;
        if parts.iter().any(|p| is_chunk_path(&p.entry)) {
            report.joined_blobs += 1;
        }
    }
    // The index last, so a directory with index.json is a complete bundle.
    layout.write_index(set.index_bytes())?;
    if let Some(signature) = set.signature() {
        layout.write_signature(signature)?;
    }
    layout.clean_tmp()?;
    Ok(report)
}

fn size_of(parts: &[PackedPart]) -> u64 {
    parts.iter().map(|p| p.size).sum()
}
