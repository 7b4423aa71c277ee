//! `ferry pack`: a bundle directory into deterministic tar volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::plan::{
    LABEL_FILE, PLAN_FILE, Part, VolumeFileName, VolumeLabel, VolumePlan, chunk_path,
    volume_file_name,
};
use crate::archive::zstd_frames::FramedWriter;
use crate::archive::{ArchiveError, stick};
use crate::digest::{BackgroundHashWriter, Digest};
use crate::fsutil::{Access, TempFile};
use crate::layout::graph::walk;
use crate::layout::oci::{ANNOTATION_LOCK_DIGEST, Index, is_index, is_manifest};
use crate::layout::{Layout, SIGNATURE_FILE};

/// Blobs up to this size go into the table of contents with the manifests.
const SMALL_BLOB: u64 = 1 << 20;
/// A chunk is not started in less room than this; the volume is closed instead.
const MIN_CHUNK: u64 = 64 * 1024;
/// Tar block size.
const BLOCK: u64 = 512;

/// Where a small blob goes in the table of contents: 0 documents (and configs, found apart),
/// 1 what an importer reads to plan (apt's `Packages` stanzas and release files), 2 the rest.
fn toc_tier(media_type: &str) -> u8 {
    use crate::source::apt::{MEDIA_INRELEASE, MEDIA_PACKAGES, MEDIA_RELEASE, MEDIA_RELEASE_GPG};
    if is_index(media_type) || is_manifest(media_type) {
        0
    } else if [
        MEDIA_PACKAGES,
        MEDIA_INRELEASE,
        MEDIA_RELEASE,
        MEDIA_RELEASE_GPG,
    ]
    .contains(&media_type)
    {
        1
    } else {
        2
    }
}

/// How to pack.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Largest volume file, in bytes; None for one volume.
    pub volume_size: Option<u64>,
    /// Compress each volume with zstd.
    pub zstd: bool,
    /// A ferry binary to write beside the volumes as `ferry` and list in SHA256SUMS.
    pub ferry_binary: Option<PathBuf>,
    /// The release key that signs SHA256SUMS into SHA256SUMS.sig; None leaves it unsigned.
    pub signing_key: Option<std::sync::Arc<crate::sign::SigningKey>>,
}

/// One volume written.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// sha256 of the file.
    pub sha256: Digest,
}

/// What `pack` wrote.
#[derive(Debug, Serialize)]
pub struct PackReport {
    /// The volumes, in order.
    pub volumes: Vec<VolumeFile>,
    /// The SHA256SUMS file beside them.
    pub checksums: PathBuf,
    /// The ferry binary written beside them, if any.
    pub ferry_binary: Option<VolumeFile>,
    /// SHA256SUMS.sig, when SHA256SUMS was signed.
    pub checksums_signature: Option<PathBuf>,
    /// Fingerprint of the key that signed SHA256SUMS.
    pub signed_by: Option<String>,
    /// Blobs packed.
    pub blobs: usize,
    /// Blobs split into chunks.
    pub chunked_blobs: usize,
    /// Bytes of blob content packed.
    pub blob_bytes: u64,
    /// Bytes read from the bundle's store (blob files or S3 objects) to pack them: equal to
    /// `blob_bytes` when every blob was read once (pieces of a split blob are read twice:
    /// hashed for the table of contents, then written).
    pub bytes_read: u64,
}

/// A tar entry to write.
#[derive(Debug, Clone)]
enum Source {
    Bytes(Vec<u8>),
    Blob { digest: Digest, offset: u64 },
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    size: u64,
    source: Source,
}

fn entry_size(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// Packs `layout` into volumes named after `out` (`out.tar`, or `out.NNN.tar` with a volume size).
pub fn pack(
    layout: &Layout,
    out: &Path,
    options: &PackOptions,
    on_bytes: &dyn Fn(u64),
) -> Result<PackReport, ArchiveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    let index_bytes = layout
        .read_index_bytes()?
        .ok_or_else(|| ArchiveError::Damaged {
            volume: layout.root().display().to_string(),
            reason: "the bundle has no index.json".to_string(),
        })?;
    let index_digest = Digest::of_bytes(&index_bytes);
    let index: Index = serde_json::from_slice(&index_bytes).map_err(|e| ArchiveError::Damaged {
        volume: layout.root().join("index.json").display().to_string(),
        reason: e.to_string(),
    })?;
    let signature = layout.read_signature()?;
    let walked = walk(layout, &index);
    if let Some(broken) = walked.broken.into_iter().next() {
        return Err(broken.error.into());
    }

    // Table of contents first (documents and small blobs), then the large blobs.
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut seen = BTreeSet::new();
    let lock = index
        .annotations
        .get(ANNOTATION_LOCK_DIGEST)
        .and_then(|d| Digest::parse(d).ok());
    // Content in the order `import --site` fills the site (registry: images and charts; chart
    // repository; files; apt), so an import from one stick at a time needs each stick once.
    let rank = |kind: &str| match kind {
        crate::source::helm::KIND => 1,
        crate::layout::files::KIND => 2,
        crate::source::apt::KIND => 3,
        _ => 0,
    };
    let mut entries: Vec<&crate::layout::graph::Entry> = walked.entries.iter().collect();
    entries.sort_by_key(|e| rank(&e.kind));
    let descriptors = entries
        .into_iter()
        .flat_map(|e| {
            e.blobs
                .iter()
                .map(|b| (b.digest.clone(), b.media_type.clone()))
        })
        .chain(lock.map(|d| (d, String::new())));
    // Configs go with the manifests (reading an entry reads its config's platform).
    let configs: BTreeSet<Digest> = walked
        .entries
        .iter()
        .flat_map(|e| e.blobs.iter())
        .filter(|b| is_manifest(&b.media_type))
        .filter_map(|b| layout.read_document(&b.digest).ok())
        .filter_map(|bytes| serde_json::from_slice::<crate::layout::oci::Manifest>(&bytes).ok())
        .map(|m| m.config.digest)
        .collect();
    for (digest, media_type) in descriptors {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let path = layout.blob_path(&digest);
        let size = layout
            .blob_size(&digest)?
            .ok_or_else(|| io(&path)(io::ErrorKind::NotFound.into()))?;
        if is_index(&media_type) || is_manifest(&media_type) || size <= SMALL_BLOB {
            let tier = if configs.contains(&digest) {
                0
            } else {
                toc_tier(&media_type)
            };
            small.push((tier, digest, size));
        } else {
            large.push((digest, size));
        }
    }
    // The table of contents first: every manifest and index, then what an importer reads to
    // plan (apt's signed indexes), then the other small blobs, each tier in the order above.
    // So an import reads volume 1 to plan, and every later volume once, in order.
    small.sort_by_key(|(tier, _, _)| *tier);
    let small: Vec<(Digest, u64)> = small.into_iter().map(|(_, d, s)| (d, s)).collect();
    let blob_bytes: u64 = small.iter().chain(large.iter()).map(|b| b.1).sum();
    let blob_count = small.len() + large.len();

    let name = Some(VolumeFileName::pack_name(out))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "bundle".to_string());
    let dir = out.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    // What killed runs left beside the volumes goes (see crate::fsutil).
    crate::fsutil::prepare_dir(&dir).map_err(io(&dir))?;

    let head = |plan: Option<&VolumePlan>| -> Vec<Entry> {
        let mut entries = vec![
            Entry {
                path: "oci-layout".to_string(),
                size: crate::layout::OCI_LAYOUT_CONTENT.len() as u64,
                source: Source::Bytes(crate::layout::OCI_LAYOUT_CONTENT.as_bytes().to_vec()),
            },
            Entry {
                path: "index.json".to_string(),
                size: index_bytes.len() as u64,
                source: Source::Bytes(index_bytes.clone()),
            },
        ];
        if let Some(sig) = &signature {
            entries.push(Entry {
                path: SIGNATURE_FILE.to_string(),
                size: sig.len() as u64,
                source: Source::Bytes(sig.as_bytes().to_vec()),
            });
        }
        if let Some(plan) = plan {
            let bytes = serde_json::to_vec_pretty(plan).expect("plans serialise");
            entries.push(Entry {
                path: PLAN_FILE.to_string(),
                size: bytes.len() as u64,
                source: Source::Bytes(bytes),
            });
        }
        entries
    };
    let blob_entry = |digest: &Digest, size: u64| Entry {
        path: format!("blobs/sha256/{}", digest.hex()),
        size,
        source: Source::Blob {
            digest: digest.clone(),
            offset: 0,
        },
    };

    let mut chunked = 0;
    let volumes: Vec<Vec<Entry>> = match options.volume_size {
        None => {
            let mut entries = head(None);
            entries.extend(
                small
                    .iter()
                    .chain(large.iter())
                    .map(|(d, s)| blob_entry(d, *s)),
            );
            vec![entries]
        }
        Some(volume_size) => {
            // The plan lives in volume 1 and describes every volume: place the blobs with room
            // reserved for it, and grow the reservation until the written plan fits.
            let mut reserve = 4096 + 400 * blob_count as u64;
            loop {
                let label_len = |n: u32, count: u32| {
                    serde_json::to_vec_pretty(&VolumeLabel {
                        name: name.clone(),
                        index_digest: index_digest.clone(),
                        number: n,
                        count,
                    })
                    .expect("labels serialise")
                    .len() as u64
                        + 16
                };
                let head_size: u64 = head(None).iter().map(|e| entry_size(e.size)).sum();
                // zstd can grow incompressible data slightly (its bound is about n/256 plus
                // framing): keep that much room so a compressed volume never passes the limit.
                let margin = if options.zstd {
                    volume_size / 128 + 64 * 1024
                } else {
                    0
                };
                let capacity = volume_size.saturating_sub(2 * BLOCK + margin);
                let fixed_first = entry_size(label_len(1, 999)) + head_size + entry_size(reserve);
                if fixed_first + MIN_CHUNK > capacity {
                    return Err(ArchiveError::VolumeSize(format!(
                        "{volume_size} bytes (too small for the table of contents)"
                    )));
                }
                let mut placed: Vec<Vec<(Digest, Part, u64)>> = vec![Vec::new()];
                let mut used = fixed_first;
                let per_volume_fixed = entry_size(label_len(999, 999));
                for (digest, size) in small.iter().chain(large.iter()) {
                    let need = entry_size(*size);
                    if used + need > capacity && need <= capacity - per_volume_fixed {
                        placed.push(Vec::new());
                        used = per_volume_fixed;
                    }
                    if used + need <= capacity {
                        let volume = placed.len() as u32;
                        placed.last_mut().expect("one volume").push((
                            digest.clone(),
                            Part {
                                volume,
                                path: format!("blobs/sha256/{}", digest.hex()),
                                size: *size,
                                digest: digest.clone(),
                            },
                            0,
                        ));
                        used += need;
                        continue;
                    }
                    // Larger than a volume: chunks, filling what is left of each volume.
                    chunked += 1;
                    let mut offset = 0;
                    let mut index = 1;
                    while offset < *size {
                        let room = capacity.saturating_sub(used + BLOCK) / BLOCK * BLOCK;
                        if room < MIN_CHUNK {
                            placed.push(Vec::new());
                            used = per_volume_fixed;
                            continue;
                        }
                        let take = room.min(*size - offset);
                        let volume = placed.len() as u32;
                        placed.last_mut().expect("one volume").push((
                            digest.clone(),
                            Part {
                                volume,
                                path: chunk_path(digest, index),
                                size: take,
                                digest: digest.clone(), // set after hashing the range
                            },
                            offset,
                        ));
                        used += entry_size(take);
                        offset += take;
                        index += 1;
                    }
                }
                let count = placed.len() as u32;
                let mut blobs: BTreeMap<Digest, Vec<Part>> = BTreeMap::new();
                for (digest, part, offset) in placed.iter_mut().flatten() {
                    if part.path.starts_with("chunks/") {
                        part.digest = hash_range(layout, digest, *offset, part.size)?;
                    }
                    blobs.entry(digest.clone()).or_default().push(part.clone());
                }
                let plan = VolumePlan {
                    plan_version: 1,
                    name: name.clone(),
                    index_digest: index_digest.clone(),
                    volume_count: count,
                    blobs,
                };
                let plan_len = serde_json::to_vec_pretty(&plan)
                    .expect("plans serialise")
                    .len() as u64;
                if plan_len > reserve {
                    reserve = plan_len + 4096;
                    chunked = 0;
                    continue;
                }
                let mut volumes = Vec::new();
                for (i, parts) in placed.into_iter().enumerate() {
                    let number = i as u32 + 1;
                    let label = serde_json::to_vec_pretty(&VolumeLabel {
                        name: name.clone(),
                        index_digest: index_digest.clone(),
                        number,
                        count,
                    })
                    .expect("labels serialise");
                    let mut entries = vec![Entry {
                        path: LABEL_FILE.to_string(),
                        size: label.len() as u64,
                        source: Source::Bytes(label),
                    }];
                    if number == 1 {
                        entries.extend(head(Some(&plan)));
                    }
                    entries.extend(parts.into_iter().map(|(digest, part, offset)| Entry {
                        path: part.path,
                        size: part.size,
                        source: Source::Blob { digest, offset },
                    }));
                    volumes.push(entries);
                }
                break volumes;
            }
        }
    };

    let count = volumes.len();
    let mut written = Vec::new();
    for (i, entries) in volumes.into_iter().enumerate() {
        let file_name = if count == 1 && options.volume_size.is_none() {
            format!("{name}.tar{}", if options.zstd { ".zst" } else { "" })
        } else {
            volume_file_name(&name, i as u32 + 1, options.zstd)
        };
        let path = dir.join(&file_name);
        written.push(write_volume(
            layout,
            &path,
            &entries,
            options.zstd,
            on_bytes,
        )?);
    }
    let ferry_binary = match &options.ferry_binary {
        Some(source) => Some(stick::copy_binary(source, &dir)?),
        None => None,
    };
    let checksums = dir.join(stick::CHECKSUMS_FILE);
    write_checksums(
        &checksums,
        &written
            .iter()
            .chain(&ferry_binary)
            .cloned()
            .collect::<Vec<_>>(),
    )?;
    let key = options.signing_key.as_deref();
    let checksums_signature = stick::sign_checksums(&checksums, key)?;
    Ok(PackReport {
        volumes: written,
        checksums,
        ferry_binary,
        checksums_signature,
        signed_by: key.map(|k| k.public_key().fingerprint()),
        blobs: blob_count,
        chunked_blobs: chunked,
        blob_bytes,
        bytes_read: layout.bytes_read(),
    })
}

/// sha256 of `size` bytes of a blob from `offset`.
fn hash_range(
    layout: &Layout,
    digest: &Digest,
    offset: u64,
    size: u64,
) -> Result<Digest, ArchiveError> {
    let path = layout.blob_path(digest);
    let err = |source| ArchiveError::Io {
        path: path.clone(),
        source,
    };
    let piece = open_piece(layout, digest, offset, size)?;
    let (hasher, n) = crate::digest::hash_reader(piece, |_| {}).map_err(err)?;
    if n != size {
        return Err(err(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Digest::from_hasher(hasher))
}

/// `size` bytes of a blob from `offset`, from whichever store the layout is (a blob file, an
/// S3 object by ranged GETs), counted in the layout's `bytes_read`. Not digest-checked here:
/// a directory's blob files are correct by the store's invariant, and every importer checks
/// each blob it reads from the volumes.
fn open_piece(
    layout: &Layout,
    digest: &Digest,
    offset: u64,
    size: u64,
) -> Result<io::Take<crate::layout::blob_reader::BlobReader>, ArchiveError> {
    let path = layout.blob_path(digest);
    let err = |source| ArchiveError::Io {
        path: path.clone(),
        source,
    };
    let mut reader = layout.open_blob_unchecked(digest)?;
    if offset > 0 {
        reader.seek(SeekFrom::Start(offset)).map_err(err)?;
    }
    Ok(reader.take(size))
}

/// Writes one volume through a temporary file; returns its checksum.
fn write_volume(
    layout: &Layout,
    path: &Path,
    entries: &[Entry],
    zstd: bool,
    on_bytes: &dyn Fn(u64),
) -> Result<VolumeFile, ArchiveError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ArchiveError::Io { path: p, source }
    };
    let (file, staged) = TempFile::beside(path, Access::Public)
        .map_err(io(path))?
        .into_parts();
    let tmp = staged.path().to_path_buf();
    // SHA256SUMS needs every volume's hash: compute it on a second thread while writing.
    // The data is flushed to disk in the background as it is written, so the fsync before
    // the rename (and before SHA256SUMS names the volume) only waits for the last part.
    let volume = BackgroundHashWriter::new(WritebackFile::new(file).map_err(io(&tmp))?);
    let finish_volume =
        |volume: BackgroundHashWriter<WritebackFile>| -> Result<VolumeFile, ArchiveError> {
            let (syncing, sha256, size) = volume.finish().map_err(io(&tmp))?;
            let file = syncing.finish().map_err(io(&tmp))?;
            staged.commit_deferred(file, path).map_err(io(path))?;
            Ok(VolumeFile {
                path: path.to_path_buf(),
                size,
                sha256,
            })
        };
    if zstd {
        // One frame per entry, so importers can read a blob without decompressing what is
        // before it.
        let framed = FramedWriter::new(volume).map_err(io(&tmp))?;
        let framed = write_entries(
            layout,
            framed,
            entries,
            on_bytes,
            &tmp,
            &mut FramedWriter::next_frame,
        )?;
        let volume = framed.finish().map_err(io(&tmp))?;
        finish_volume(volume)
    } else {
        let volume = write_entries(layout, volume, entries, on_bytes, &tmp, &mut |_| Ok(()))?;
        finish_volume(volume)
    }
}

/// Read size for blob contents.
const READ_BUFFER: usize = 1 << 20;

/// Bytes of a volume handed to the kernel's writeback at a time.
const WRITEBACK_EVERY: u64 = 16 << 20;

/// A volume file whose data goes to disk while the tar is made instead of all at the end:
/// every [`WRITEBACK_EVERY`] bytes a second thread starts writeback of the range just written
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: no journal commit, no waiting), so the caller's
/// final `sync_all` (durability before the rename and before SHA256SUMS names the volume)
/// finds little left to write. Waiting for each range as well, or `fdatasync` every 32 MiB,
/// measured slower (more system time, and a slow mode under load).
///
/// Written through [`BackgroundHashWriter`], whose writes are whole 1 MiB buffers.
struct WritebackFile {
    file: File,
    written: u64,
    handed: u64,
    tx: Option<std::sync::mpsc::Sender<(u64, u64)>>,
    worker: Option<std::thread::JoinHandle<io::Result<()>>>,
}

/// `sync_file_range` on a range of `file`.
fn sync_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` lives; the call reads no memory.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl WritebackFile {
    fn new(file: File) -> io::Result<WritebackFile> {
        let syncer = file.try_clone()?;
        let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
        let worker = std::thread::spawn(move || {
            for (offset, len) in rx {
                sync_range(&syncer, offset, len, libc::SYNC_FILE_RANGE_WRITE)?;
            }
            Ok(())
        });
        Ok(WritebackFile {
            file,
            written: 0,
            handed: 0,
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Stops the background writeback (after the range in progress); returns the file.
    fn finish(mut self) -> io::Result<File> {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            worker
                .join()
                .map_err(|_| io::Error::other("the writeback thread panicked"))??;
        }
        Ok(self.file)
    }
}

impl Write for WritebackFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        self.written += n as u64;
        if self.written - self.handed >= WRITEBACK_EVERY {
            if let Some(tx) = &self.tx {
                // Disconnected: the thread failed, and its error comes out of `finish`.
                let _ = tx.send((self.handed, self.written - self.handed));
            }
            self.handed = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes the tar entries with fixed metadata (deterministic output) and the end marker;
/// `between` runs before every entry but the first and before the end marker.
fn write_entries<W: Write>(
    layout: &Layout,
    writer: W,
    entries: &[Entry],
    on_bytes: &dyn Fn(u64),
    volume: &Path,
    between: &mut dyn FnMut(&mut W) -> io::Result<()>,
) -> Result<W, ArchiveError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ArchiveError::Io { path: p, source }
    };
    let mut builder = tar::Builder::new(writer);
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            between(builder.get_mut()).map_err(io(volume))?;
        }
        let mut header = tar::Header::new_ustar();
        header.set_path(&entry.path).map_err(io(volume))?;
        header.set_size(entry.size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        match &entry.source {
            Source::Bytes(bytes) => builder
                .append(&header, bytes.as_slice())
                .map_err(io(volume))?,
            Source::Blob { digest, offset } => {
                let path = layout.blob_path(digest);
                let piece = open_piece(layout, digest, *offset, entry.size)?;
                // Large reads: `io::copy` reads 8 KiB at a time from a bare file.
                let reader = io::BufReader::with_capacity(
                    READ_BUFFER.min(entry.size.max(1) as usize),
                    piece,
                );
                builder.append(&header, reader).map_err(io(&path))?;
                on_bytes(entry.size);
            }
        }
    }
    between(builder.get_mut()).map_err(io(volume))?;
    builder.into_inner().map_err(io(volume))
}

/// Writes SHA256SUMS beside the volumes (and the ferry binary), keeping lines for other files
/// already there.
fn write_checksums(path: &Path, volumes: &[VolumeFile]) -> Result<(), ArchiveError> {
    let names: BTreeSet<String> = volumes
        .iter()
        .map(|v| {
            v.path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut lines: Vec<String> = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let name = l
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .trim_start_matches('*');
            !names.contains(name)
        })
        .map(str::to_string)
        .collect();
    for v in volumes {
        lines.push(format!(
            "{}  {}",
            v.sha256.hex(),
            v.path.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    crate::layout::write_atomic(path, text.as_bytes())?;
    Ok(())
}
