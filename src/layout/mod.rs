//! The OCI image layout store: one directory, content-addressed blobs, one signed index.
//! The same layout may be read from packed volumes ([`blob_reader::PackedStore`]) or live as
//! objects under an S3 prefix ([`s3`]); what follows is the directory's side.
//!
//! Invariant: a file under `blobs/sha256/` always holds the bytes its name promises.
//! Blobs are written to a temporary file in the same directory tree, hashed while written,
//! fsynced, and renamed into place only when the digest matches. Files get their modes and
//! temporary names from [`crate::fsutil`]; opening a layout for writing sweeps what killed
//! runs left, and a finished run removes its scratch directory.

pub mod artifact;
pub mod blob_reader;
pub mod delta;
pub mod files;
pub mod git;
pub mod graph;
pub mod oci;
pub mod s3;
pub mod tree;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Sha256;

use crate::digest::{Digest, HashingWriter, IO_BUFFER, hash_reader};
use crate::fsutil::{self, Access, TempFile};
use crate::layout::blob_reader::{BlobReader, Extent, PackedStore, ReadCounter};

/// Content of the `oci-layout` file.
pub const OCI_LAYOUT_CONTENT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";
/// File name of the bundle's index.
pub const INDEX_FILE: &str = "index.json";
/// File name of the index signature (cosign blob signature, base64 DER).
pub const SIGNATURE_FILE: &str = "index.json.sig";
/// Directory for partial downloads; not part of the OCI layout, ignored by readers. Resumable
/// partials are named `<hex>.partial`; the others carry [`fsutil::TMP_PREFIX`].
const TMP_DIR: &str = ".ferry-tmp";
/// Largest manifest or index ferry reads into memory; registries cap manifests at 4 MiB.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Errors of the layout store.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Content did not hash to the digest it was stored under.
    #[error(
        "content for {expected} hashed to {actual} ({size} bytes); it was not stored. The source sent corrupt data: try again, and report it if it persists"
    )]
    DigestMismatch {
        /// The digest the content should have.
        expected: Digest,
        /// The digest it had.
        actual: Digest,
        /// Its size.
        size: u64,
    },
    /// Content had another size than its descriptor says.
    #[error("content for {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Size from the descriptor.
        expected: u64,
        /// Size seen.
        actual: u64,
    },
    /// The directory is not an OCI layout.
    #[error(
        "{path} is not a ferry bundle (no oci-layout file); give the directory `ferry build` wrote"
    )]
    NotALayout {
        /// The directory.
        path: PathBuf,
    },
    /// A blob is missing.
    #[error("blob {digest} is missing from {path}")]
    MissingBlob {
        /// The bundle.
        path: PathBuf,
        /// The blob.
        digest: Digest,
    },
    /// The bundle's object store failed (the error names the object and the next step).
    #[error(transparent)]
    S3(Box<crate::s3::S3Error>),
    /// A manifest or index could not be parsed.
    #[error("{what} {digest} is not valid JSON of the expected kind: {reason}")]
    BadDocument {
        /// What it should have been.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// The parse error.
        reason: String,
    },
    /// A document is larger than manifests may be.
    #[error("{digest} is {size} bytes, larger than any manifest may be (4 MiB)")]
    TooLarge {
        /// Its digest.
        digest: Digest,
        /// Its size.
        size: u64,
    },
}

impl From<crate::s3::S3Error> for LayoutError {
    fn from(e: crate::s3::S3Error) -> LayoutError {
        LayoutError::S3(Box::new(e))
    }
}

/// The S3 location a bundle path names (`s3://BUCKET/PREFIX`), if it names one.
pub fn s3_location(root: &Path) -> Result<Option<crate::s3::S3Location>, LayoutError> {
    match root.to_str() {
        Some(text) => Ok(crate::s3::S3Location::parse(text)?),
        None => Ok(None),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An OCI image layout: a directory, objects under an S3 prefix, or (read-only) the tar
/// volumes `ferry pack` wrote.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    /// Set when the layout is read straight from packed volumes.
    packed: Option<Arc<dyn PackedStore>>,
    /// Set when the layout is objects under an S3 prefix.
    s3: Option<Arc<s3::S3Backend>>,
    /// Bytes read from the volumes or blob files (shared by clones).
    read: ReadCounter,
    /// Blobs read whole once and kept (documents, chart archives): read again from memory.
    kept: Arc<std::sync::Mutex<std::collections::HashMap<Digest, Arc<Vec<u8>>>>>,
}

impl Layout {
    /// Opens `root` as a layout, creating the directory structure when it is missing, and
    /// removes the temporary files killed runs left (resumable partial blobs stay).
    pub fn create(root: &Path) -> Result<Layout, LayoutError> {
        if let Some(location) = s3_location(root)? {
            let layout = Layout::s3(location)?;
            let backend = layout.s3.as_ref().expect("s3 layout");
            if backend.get("oci-layout")?.is_none() {
                backend.put("oci-layout", OCI_LAYOUT_CONTENT.as_bytes())?;
            }
            return Ok(layout);
        }
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        for dir in [root.to_path_buf(), blobs, root.join(TMP_DIR)] {
            fsutil::sweep(&dir).map_err(io_err(&dir))?;
        }
        let layout_file = root.join("oci-layout");
        if !layout_file.exists() {
            write_atomic(&layout_file, OCI_LAYOUT_CONTENT.as_bytes())?;
        }
        Ok(Layout {
            root: root.to_path_buf(),
            packed: None,
            s3: None,
            read: Default::default(),
            kept: Default::default(),
        })
    }

    /// Opens an existing layout; refuses a directory without an `oci-layout` file.
    pub fn open(root: &Path) -> Result<Layout, LayoutError> {
        if let Some(location) = s3_location(root)? {
            let layout = Layout::s3(location)?;
            let backend = layout.s3.as_ref().expect("s3 layout");
            if backend.get("oci-layout")?.is_none() {
                return Err(LayoutError::NotALayout {
                    path: root.to_path_buf(),
                });
            }
            return Ok(layout);
        }
        if !root.join("oci-layout").is_file() {
            return Err(LayoutError::NotALayout {
                path: root.to_path_buf(),
            });
        }
        Ok(Layout {
            root: root.to_path_buf(),
            packed: None,
            s3: None,
            read: Default::default(),
            kept: Default::default(),
        })
    }

    /// A layout of objects under an S3 prefix (see [`s3`]).
    fn s3(location: crate::s3::S3Location) -> Result<Layout, LayoutError> {
        Ok(Layout {
            root: PathBuf::from(location.to_string()),
            packed: None,
            s3: Some(Arc::new(s3::S3Backend::open(location)?)),
            read: Default::default(),
            kept: Default::default(),
        })
    }

    /// Whether the layout is objects under an S3 prefix.
    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// Removes a blob (a directory's file or an S3 object; absent is fine).
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), LayoutError> {
        if let Some(backend) = &self.s3 {
            return backend.remove(digest);
        }
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Bytes of every blob stored (0 for packed volumes: unknown until the index is walked).
    pub fn stored_blob_bytes(&self) -> u64 {
        if let Some(backend) = &self.s3 {
            return backend.total();
        }
        if self.packed.is_some() {
            return 0;
        }
        fs::read_dir(self.root.join("blobs").join("sha256"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// A read-only layout over packed volumes; every write fails.
    pub fn packed(store: Arc<dyn PackedStore>) -> Layout {
        Layout {
            root: PathBuf::from(store.describe()),
            packed: Some(store),
            s3: None,
            read: Default::default(),
            kept: Default::default(),
        }
    }

    /// Whether the layout is read from packed volumes rather than a directory.
    pub fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// The layout's directory (for a packed layout: the volume or directory it was opened from).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob's file lives in a directory layout. Readers use [`Layout::open_blob`],
    /// which also reads packed and S3 layouts; this is for the writers (build, pack, unpack).
    /// For an S3 layout it is the object's `s3://` URL, for messages only.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        debug_assert!(self.packed.is_none(), "blob_path on a packed layout");
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Whether a blob is present (a present blob is a correct blob, by the store's invariant).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        match &self.packed {
            Some(store) => store.parts(digest).is_some(),
            None if self.s3.is_some() => self.blob_size(digest).ok().flatten().is_some(),
            None => self.blob_path(digest).is_file(),
        }
    }

    /// A blob's size, or None when the layout does not hold it.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, LayoutError> {
        match &self.packed {
            Some(store) => Ok(store.parts(digest).map(|p| p.iter().map(|p| p.size).sum())),
            None if self.s3.is_some() => self.s3.as_ref().expect("s3").blob_size(digest),
            None => {
                let path = self.blob_path(digest);
                match fs::metadata(&path) {
                    Ok(m) => Ok(Some(m.len())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err(&path)(e)),
                }
            }
        }
    }

    /// Opens a blob for reading; reading it through to the end checks its digest (the last
    /// read fails on a mismatch).
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader, LayoutError> {
        Ok(BlobReader::new(
            digest.clone(),
            self.extents(digest)?,
            true,
            Some(self.read.clone()),
        ))
    }

    /// Opens a blob without checking its digest: for readers that already checked it, or that
    /// read ranges (a registry client checks the digest of what it assembles).
    pub fn open_blob_unchecked(&self, digest: &Digest) -> Result<BlobReader, LayoutError> {
        Ok(BlobReader::new(
            digest.clone(),
            self.extents(digest)?,
            false,
            Some(self.read.clone()),
        ))
    }

    /// Packed volumes not present now (empty for a directory).
    pub fn missing_volumes(&self) -> Vec<u32> {
        self.packed
            .as_ref()
            .map(|s| s.missing_volumes())
            .unwrap_or_default()
    }

    /// A key that sorts blobs in the order the media holds them (volume, then position), so
    /// importing from several USB sticks asks for each stick once.
    pub fn blob_order_key(&self, digest: &Digest) -> (u32, u64) {
        self.packed
            .as_ref()
            .and_then(|s| s.order_key(digest))
            .unwrap_or((0, 0))
    }

    /// Bytes read from the bundle's volumes or blob files so far, by every clone of this
    /// layout (bytes kept in memory and read again are not counted).
    pub fn bytes_read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Volumes indexed so far, one per medium inserted (0 for a directory).
    pub fn insertions(&self) -> u32 {
        self.packed.as_ref().map_or(0, |s| s.insertions())
    }

    /// Volumes blob bytes were read from so far (empty for a directory).
    pub fn volumes_read(&self) -> Vec<u32> {
        self.packed
            .as_ref()
            .map(|s| s.volumes_read())
            .unwrap_or_default()
    }

    /// Checks that the volumes a job needs are here (or may be waited for), naming the
    /// missing ones; nothing for a directory.
    pub fn require_volumes(&self, numbers: &[u32]) -> Result<(), LayoutError> {
        match &self.packed {
            Some(store) => store.require_volumes(numbers).map_err(io_err(&self.root)),
            None => Ok(()),
        }
    }

    /// The volumes a blob's pieces are in (empty for a directory).
    pub fn blob_volumes(&self, digest: &Digest) -> Vec<u32> {
        self.packed
            .as_ref()
            .and_then(|s| s.parts(digest))
            .map(|parts| parts.iter().map(|p| p.volume).collect())
            .unwrap_or_default()
    }

    /// Reads a blob whole, checking its digest, and keeps it in memory: later reads of it
    /// (by [`Layout::open_blob`] and [`Layout::read_document`]) read no storage again. For
    /// small blobs several readers need (documents, chart archives).
    pub fn read_kept(&self, digest: &Digest) -> Result<Arc<Vec<u8>>, LayoutError> {
        if let Some(bytes) = self
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
        {
            return Ok(bytes.clone());
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut self.open_blob(digest)?, &mut bytes).map_err(|source| {
            if source.kind() == io::ErrorKind::InvalidData {
                LayoutError::DigestMismatch {
                    expected: digest.clone(),
                    actual: Digest::of_bytes(&bytes),
                    size: bytes.len() as u64,
                }
            } else {
                LayoutError::Io {
                    path: self.root.clone(),
                    source,
                }
            }
        })?;
        let bytes = Arc::new(bytes);
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), bytes.clone());
        Ok(bytes)
    }

    /// Whether a blob was read whole and kept in memory.
    pub fn is_kept(&self, digest: &Digest) -> bool {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(digest)
    }

    /// Keeps bytes a checked reader handed over (the site import's pass), so later readers
    /// of the blob read memory. The caller vouches that they hash to `digest`.
    pub fn keep(&self, digest: &Digest, bytes: Vec<u8>) {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), Arc::new(bytes));
    }

    fn extents(&self, digest: &Digest) -> Result<Vec<Extent>, LayoutError> {
        if let Some(bytes) = self
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
        {
            return Ok(vec![Extent::Memory(bytes.clone())]);
        }
        let missing = || LayoutError::MissingBlob {
            path: self.root.clone(),
            digest: digest.clone(),
        };
        match &self.packed {
            Some(store) => Ok(store
                .parts(digest)
                .ok_or_else(missing)?
                .into_iter()
                .map(|part| Extent::Packed {
                    store: store.clone(),
                    part,
                })
                .collect()),
            None if self.s3.is_some() => {
                let size = self.blob_size(digest)?.ok_or_else(missing)?;
                Ok(vec![Extent::Object {
                    store: self.s3.as_ref().expect("s3").store.clone(),
                    name: s3::S3Backend::blob_name(digest),
                    size,
                }])
            }
            None => {
                let size = self.blob_size(digest)?.ok_or_else(missing)?;
                Ok(vec![Extent::File {
                    path: self.blob_path(digest),
                    size,
                }])
            }
        }
    }

    /// Stores bytes under their digest, checking it first.
    pub fn write_blob(&self, expected: &Digest, bytes: &[u8]) -> Result<(), LayoutError> {
        let actual = Digest::of_bytes(bytes);
        if &actual != expected {
            return Err(LayoutError::DigestMismatch {
                expected: expected.clone(),
                actual,
                size: bytes.len() as u64,
            });
        }
        if self.has_blob(expected) {
            return Ok(());
        }
        if let Some(backend) = &self.s3 {
            backend.put(&s3::S3Backend::blob_name(expected), bytes)?;
            backend.note(expected, bytes.len() as u64);
            return Ok(());
        }
        write_file(&self.blob_path(expected), bytes)
    }

    /// Reads a small blob (a manifest, index or config) into memory, checking its digest.
    pub fn read_document(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        if let Some(bytes) = self
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
        {
            return Ok(bytes.as_ref().clone());
        }
        let size = self
            .blob_size(digest)?
            .ok_or_else(|| LayoutError::MissingBlob {
                path: self.root.clone(),
                digest: digest.clone(),
            })?;
        if size > MAX_MANIFEST_SIZE {
            return Err(LayoutError::TooLarge {
                digest: digest.clone(),
                size,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let read = io::Read::read_to_end(&mut self.open_blob_unchecked(digest)?, &mut bytes);
        read.map_err(|source| LayoutError::Io {
            path: self.root.clone(),
            source,
        })?;
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(LayoutError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size,
            });
        }
        // Kept: a document is read from the bundle once, whoever asks for it again (a
        // blob's content never changes under its digest).
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), Arc::new(bytes.clone()));
        Ok(bytes)
    }

    /// Starts writing a blob; resumes a partial download of the same digest if one is left.
    pub fn blob_writer(&self, digest: &Digest) -> Result<BlobWriter, LayoutError> {
        if self.s3.is_some() {
            return Ok(self.object_writer(Some(digest), false));
        }
        let (mut file, partial) = self.partial_file(digest, false)?;
        // Re-hash what an interrupted run left, so the final digest covers every byte.
        let (hasher, written) = hash_reader(&mut file, |_| {}).map_err(io_err(&partial))?;
        Ok(BlobWriter {
            writer: HashingWriter::resume(
                Sink::File(BufWriter::with_capacity(IO_BUFFER, file)),
                hasher,
                written,
            ),
            partial,
            expected: Some(digest.clone()),
            checked_by_reader: false,
            s3: None,
        })
    }

    /// Starts writing a blob from its first byte: what an interrupted run left is dropped
    /// unread (for sources read whole again anyway, such as packed volumes).
    pub fn fresh_blob_writer(&self, digest: &Digest) -> Result<BlobWriter, LayoutError> {
        if self.s3.is_some() {
            return Ok(self.object_writer(Some(digest), false));
        }
        let (file, partial) = self.partial_file(digest, true)?;
        Ok(BlobWriter {
            writer: HashingWriter::new(Sink::File(BufWriter::with_capacity(IO_BUFFER, file))),
            partial,
            expected: Some(digest.clone()),
            checked_by_reader: false,
            s3: None,
        })
    }

    /// The partial file of a blob, opened for appending (emptied first when `truncate`).
    fn partial_file(
        &self,
        digest: &Digest,
        truncate: bool,
    ) -> Result<(File, PathBuf), LayoutError> {
        let tmp_dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir).map_err(io_err(&tmp_dir))?;
        let partial = tmp_dir.join(format!("{}.partial", digest.hex()));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o666)
            .open(&partial)
            .map_err(io_err(&partial))?;
        // Held until the rename, so a concurrent run's `clean_tmp` leaves the file alone. Best
        // effort: two writers of one blob (not something ferry does) end in a digest mismatch.
        let _ = fsutil::try_lock(&file);
        if truncate {
            file.set_len(0).map_err(io_err(&partial))?;
        }
        Ok((file, partial))
    }

    /// Starts writing a blob from a reader that checks its digest itself (a packed volume's
    /// blob reader): the bytes are not hashed a second time, and the blob is stored under
    /// `digest` once the reader has passed its check. Only for checked readers.
    pub fn checked_blob_writer(&self, digest: &Digest) -> Result<BlobWriter, LayoutError> {
        if self.s3.is_some() {
            return Ok(self.object_writer(Some(digest), true));
        }
        let (file, partial) = self.partial_file(digest, true)?;
        Ok(BlobWriter {
            writer: HashingWriter::counting(Sink::File(BufWriter::with_capacity(IO_BUFFER, file))),
            partial,
            expected: Some(digest.clone()),
            checked_by_reader: true,
            s3: None,
        })
    }

    /// Starts writing a blob whose digest is not known in advance (an unpinned download);
    /// [`BlobWriter::commit`] stores it under the digest its bytes have.
    pub fn unknown_blob_writer(&self) -> Result<BlobWriter, LayoutError> {
        if self.s3.is_some() {
            return Ok(self.object_writer(None, false));
        }
        let tmp_dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir).map_err(io_err(&tmp_dir))?;
        let (file, partial) = TempFile::in_dir(&tmp_dir, Access::Public)
            .map_err(io_err(&tmp_dir))?
            .into_parts();
        // Kept on failure like the resumable partials; its name makes the next run sweep it.
        let partial = partial.keep();
        Ok(BlobWriter {
            writer: HashingWriter::new(Sink::File(BufWriter::with_capacity(IO_BUFFER, file))),
            partial,
            expected: None,
            checked_by_reader: false,
            s3: None,
        })
    }

    /// A blob writer uploading to the S3 layout: straight to the blob's object when the digest
    /// is known (the upload completes only once the digest matched), else to a temporary
    /// object copied to its name when hashed.
    fn object_writer(&self, digest: Option<&Digest>, checked: bool) -> BlobWriter {
        let backend = self.s3.as_ref().expect("s3 layout").clone();
        let name = match digest {
            Some(d) => s3::S3Backend::blob_name(d),
            None => s3::S3Backend::temp_name(),
        };
        let object = backend.store.writer(&name, None);
        let inner = Sink::Object(Box::new(object));
        BlobWriter {
            writer: if checked {
                HashingWriter::counting(inner)
            } else {
                HashingWriter::new(inner)
            },
            partial: PathBuf::from(backend.store.url(&name)),
            expected: digest.cloned(),
            checked_by_reader: checked,
            s3: Some((backend, name)),
        }
    }

    /// Removes the scratch directory at the end of a finished run: every partial file in it
    /// but those another live run holds (then the directory stays for that run).
    pub fn clean_tmp(&self) -> Result<(), LayoutError> {
        if self.s3.is_some() {
            // Temporary objects are deleted as their uploads end; nothing is left to sweep.
            return Ok(());
        }
        let tmp_dir = self.root.join(TMP_DIR);
        fsutil::sweep_matching(&tmp_dir, |_| true, false).map_err(io_err(&tmp_dir))?;
        match fs::remove_dir(&tmp_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
            Err(e) => Err(io_err(&tmp_dir)(e)),
        }
    }

    /// The bytes of `index.json`, if the layout has one.
    pub fn read_index_bytes(&self) -> Result<Option<Vec<u8>>, LayoutError> {
        if let Some(store) = &self.packed {
            return Ok(Some(store.index_bytes().to_vec()));
        }
        if let Some(backend) = &self.s3 {
            return backend.get(INDEX_FILE);
        }
        let path = self.root.join(INDEX_FILE);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Makes every blob's directory entry durable (one fsync of `blobs/sha256`).
    pub fn sync_blobs(&self) {
        if let Ok(dir) = File::open(self.root.join("blobs").join("sha256")) {
            let _ = dir.sync_all();
        }
    }

    /// Replaces `index.json` atomically; a signature of other bytes is removed, never left stale.
    /// The blobs' directory is synced first, so a durable index never names a lost blob.
    pub fn write_index(&self, bytes: &[u8]) -> Result<(), LayoutError> {
        if let Some(backend) = &self.s3 {
            // Every blob's upload completed before this call: the index comes last.
            if self.read_index_bytes()?.as_deref() == Some(bytes) {
                return Ok(());
            }
            backend.delete(SIGNATURE_FILE)?;
            return backend.put(INDEX_FILE, bytes);
        }
        self.sync_blobs();
        let path = self.root.join(INDEX_FILE);
        if self.read_index_bytes()?.as_deref() == Some(bytes) {
            return Ok(());
        }
        let sig = self.root.join(SIGNATURE_FILE);
        match fs::remove_file(&sig) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&sig)(e)),
        }
        write_atomic(&path, bytes)
    }

    /// Reads `index.json.sig`, if present.
    pub fn read_signature(&self) -> Result<Option<String>, LayoutError> {
        if let Some(store) = &self.packed {
            return Ok(store.signature().map(str::to_string));
        }
        if let Some(backend) = &self.s3 {
            return backend
                .get(SIGNATURE_FILE)?
                .map(|b| {
                    String::from_utf8(b).map_err(|e| {
                        io_err(&self.root)(io::Error::new(io::ErrorKind::InvalidData, e))
                    })
                })
                .transpose();
        }
        let path = self.root.join(SIGNATURE_FILE);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Writes `index.json.sig` atomically.
    pub fn write_signature(&self, signature_b64: &str) -> Result<(), LayoutError> {
        if let Some(backend) = &self.s3 {
            return backend.put(SIGNATURE_FILE, signature_b64.as_bytes());
        }
        write_atomic(&self.root.join(SIGNATURE_FILE), signature_b64.as_bytes())
    }
}

/// A blob being written; it lands in the store only through [`BlobWriter::commit`].
pub struct BlobWriter {
    // Network chunks are small (~16 KiB); a large buffer keeps write syscalls rare.
    writer: HashingWriter<Sink>,
    partial: PathBuf,
    /// The digest the content must have; None when it is learned from the content.
    expected: Option<Digest>,
    /// The reader checked the digest: the content was not hashed here.
    checked_by_reader: bool,
    /// S3 layouts: the backend and the object being uploaded (`partial` is its URL).
    s3: Option<(Arc<s3::S3Backend>, String)>,
}

/// Where a blob writer's bytes go: a partial file, or an upload to the object store.
enum Sink {
    File(BufWriter<File>),
    Object(Box<crate::s3::ObjectWriter>),
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(bytes),
            Sink::Object(o) => o.write(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => f.write_all(bytes),
            Sink::Object(o) => Ok(o.write_all(bytes)?),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Object(_) => Ok(()),
        }
    }
}

impl Sink {
    fn file(&mut self) -> &mut BufWriter<File> {
        match self {
            Sink::File(f) => f,
            Sink::Object(_) => unreachable!("a file sink"),
        }
    }
}

impl BlobWriter {
    /// Bytes already in the partial file (from this run or an interrupted one).
    pub fn written(&self) -> u64 {
        self.writer.written()
    }

    /// Discards what was written so far (the source restarted from byte 0).
    pub fn restart(&mut self) -> Result<(), LayoutError> {
        if let Some((backend, name)) = &self.s3 {
            // A new upload from byte 0; the old one is aborted as it is dropped.
            let fresh = Sink::Object(Box::new(backend.store.writer(name, None)));
            self.writer = if self.checked_by_reader {
                HashingWriter::counting(fresh)
            } else {
                HashingWriter::new(fresh)
            };
            return Ok(());
        }
        let buffered = self.writer.get_mut().file();
        buffered.flush().map_err(io_err(&self.partial))?;
        buffered
            .get_mut()
            .set_len(0)
            .map_err(io_err(&self.partial))?;
        // The same open file (appending, so writes start at 0 again): it keeps the lock.
        let file = buffered
            .get_ref()
            .try_clone()
            .map_err(io_err(&self.partial))?;
        self.writer = HashingWriter::resume(
            Sink::File(BufWriter::with_capacity(IO_BUFFER, file)),
            Sha256::default(),
            0,
        );
        Ok(())
    }

    /// Appends bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), LayoutError> {
        self.writer.write_all(bytes).map_err(io_err(&self.partial))
    }

    /// Checks the digest, fsyncs and renames into place. A mismatch deletes the partial file.
    pub fn commit(self) -> Result<u64, LayoutError> {
        self.commit_digest().map(|(_, size)| size)
    }

    /// As [`BlobWriter::commit`], returning the digest the blob is stored under.
    pub fn commit_digest(self) -> Result<(Digest, u64), LayoutError> {
        let root = self
            .partial
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let (sink, hashed, size) = self.writer.finish();
        let actual = match (&self.expected, self.checked_by_reader) {
            (Some(expected), true) => expected.clone(),
            _ => hashed,
        };
        let buffered = match sink {
            Sink::File(f) => f,
            Sink::Object(object) => {
                let (backend, name) = self.s3.expect("an S3 blob writer");
                let known = self.expected.is_some();
                if let Some(expected) = self.expected
                    && actual != expected
                {
                    // Aborted before completion: no object appears under the digest.
                    object.abort();
                    return Err(LayoutError::DigestMismatch {
                        expected,
                        actual,
                        size,
                    });
                }
                object.complete()?;
                if !known {
                    backend.promote(&name, &actual, size)?;
                } else {
                    backend.note(&actual, size);
                }
                return Ok((actual, size));
            }
        };
        let file = buffered.into_inner().map_err(|e| LayoutError::Io {
            path: self.partial.clone(),
            source: e.into_error(),
        })?;
        if let Some(expected) = self.expected
            && actual != expected
        {
            drop(file);
            let _ = fs::remove_file(&self.partial);
            return Err(LayoutError::DigestMismatch {
                expected,
                actual,
                size,
            });
        }
        let target = root.join("blobs").join("sha256").join(actual.hex());
        fsutil::install(&file, &self.partial, &target, Access::Public).map_err(io_err(&target))?;
        drop(file);
        // The directory entry is made durable once, by `sync_blobs`, before index.json is
        // written: a directory fsync per blob costs more than the blob's own write.
        Ok((actual, size))
    }
}

/// Writes a public file by temp file + fsync + rename (see [`fsutil::write_atomic`]), so
/// readers see the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    fsutil::write_atomic(path, bytes, Access::Public).map_err(io_err(path))
}

/// As [`write_atomic`] for a blob: no sweep of the (large) blob directory per write, and the
/// rename is made durable later, once for all blobs, by [`Layout::sync_blobs`].
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let mut tmp = TempFile::beside(path, Access::Public).map_err(io_err(path))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    tmp.commit_deferred(path).map_err(io_err(path))
}
