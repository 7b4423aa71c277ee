//! Reading a blob wherever the bundle keeps it: a file under `blobs/sha256/`, or entries
//! inside packed tar volumes (a whole blob, or chunks across volumes).
//!
//! A blob is a list of extents (a file, an offset, a length). A reader that goes from the first
//! byte to the last hashes what it returns and fails at the end when the digest differs, so
//! every consumer that reads a blob whole gets its digest checked on the way.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, IO_BUFFER};

/// Where a packed bundle's blobs and table of contents live (implemented by the archive's
/// volume reader, so the store does not need to know tar).
pub trait PackedStore: Send + Sync + std::fmt::Debug {
    /// What to call the bundle in messages (the volume or directory given).
    fn describe(&self) -> String;
    /// The bytes of `index.json`.
    fn index_bytes(&self) -> &[u8];
    /// The signature beside the index, if the pack has one.
    fn signature(&self) -> Option<&str>;
    /// The pieces of a blob, in order, or None when the pack does not hold it.
    fn parts(&self, digest: &Digest) -> Option<Vec<PackedPart>>;
    /// Where a piece is now. May wait for the volume to be inserted, or fail naming the
    /// volumes that are missing.
    fn locate(&self, part: &PackedPart) -> io::Result<PackedLocation>;
    /// The volume and order key of a blob's first piece, to read blobs in volume order.
    fn order_key(&self, digest: &Digest) -> Option<(u32, u64)>;
    /// Numbers of the volumes that are not where they are looked for now.
    fn missing_volumes(&self) -> Vec<u32>;
    /// Checks the volumes given that are present now (label, entries) and fails naming those
    /// that are missing, unless ferry may wait for them: before any work, for the volumes a
    /// job needs (a volume with nothing left to do is not asked for).
    fn require_volumes(&self, numbers: &[u32]) -> io::Result<()>;
    /// Volumes indexed so far, each time a medium was inserted (a stick inserted again counts
    /// again).
    fn insertions(&self) -> u32;
    /// Volumes blob bytes were read from so far.
    fn volumes_read(&self) -> Vec<u32>;
}

/// One piece of a packed blob: an entry of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedPart {
    /// Volume number, from 1.
    pub volume: u32,
    /// The entry's path inside the volume.
    pub entry: String,
    /// Bytes.
    pub size: u64,
    /// Digest of the piece's bytes (the blob's own for a whole blob), to name the corrupt
    /// piece of a joined blob.
    pub digest: Digest,
}

/// Where a piece of a packed blob is in its volume file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedLocation {
    /// The volume file.
    pub path: PathBuf,
    /// Plain tar: offset of the piece's bytes. Compressed: offset of the zstd frame that
    /// holds the entry.
    pub offset: u64,
    /// Compressed volumes: decompressed bytes before the piece's data in its frame (the tar
    /// header).
    pub zstd_skip: Option<u64>,
}

/// A run of a blob's bytes.
#[derive(Debug, Clone)]
pub(crate) enum Extent {
    /// A whole file of the directory store.
    File { path: PathBuf, size: u64 },
    /// An entry of a packed volume.
    Packed {
        store: Arc<dyn PackedStore>,
        part: PackedPart,
    },
    /// A blob read (and checked) before, kept in memory.
    Memory(Arc<Vec<u8>>),
    /// An object of an S3 bundle, read by ranged GETs.
    Object {
        store: crate::s3::S3Store,
        name: String,
        size: u64,
    },
}

impl Extent {
    fn size(&self) -> u64 {
        match self {
            Extent::File { size, .. } => *size,
            Extent::Packed { part, .. } => part.size,
            Extent::Memory(bytes) => bytes.len() as u64,
            Extent::Object { size, .. } => *size,
        }
    }

    fn open_at(&self, within: u64) -> io::Result<(Box<dyn Read + Send>, PathBuf)> {
        let location = match self {
            Extent::File { path, .. } => PackedLocation {
                path: path.clone(),
                offset: 0,
                zstd_skip: None,
            },
            Extent::Packed { store, part } => store.locate(part)?,
            Extent::Memory(bytes) => {
                let mut cursor = io::Cursor::new(SharedBytes(bytes.clone()));
                cursor.set_position(within);
                return Ok((Box::new(cursor), PathBuf::from("memory")));
            }
            Extent::Object { store, name, size } => {
                let reader = store.reader(name, within, *size);
                return Ok((Box::new(reader), PathBuf::from(store.url(name))));
            }
        };
        let path = location.path;
        let mut file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        match location.zstd_skip {
            None => {
                if location.offset + within > 0 {
                    file.seek(SeekFrom::Start(location.offset + within))?;
                }
                Ok((Box::new(file), path))
            }
            Some(skip) => {
                // The entry's frame, decompressed from its start; what precedes the wanted
                // byte is decompressed and dropped.
                file.seek(SeekFrom::Start(location.offset))?;
                let mut decoder = zstd::stream::read::Decoder::new(file)?.single_frame();
                let dropped = io::copy(&mut (&mut decoder).take(skip + within), &mut io::sink())?;
                if dropped != skip + within {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: a compressed entry ends early", path.display()),
                    ));
                }
                Ok((Box::new(decoder), path))
            }
        }
    }
}

/// A blob kept in memory, readable through a cursor.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Counts the bytes readers take from the bundle's storage (volumes or blob files), for the
/// summary's `bytes_read`; bytes served from memory are not counted.
pub type ReadCounter = Arc<std::sync::atomic::AtomicU64>;

/// Reads one blob, sequentially or with seeks; see the module documentation.
#[derive(Debug)]
pub struct BlobReader {
    digest: Digest,
    extents: Vec<Extent>,
    size: u64,
    position: u64,
    current: Option<Current>,
    /// Hash of bytes 0..position while reading straight through; None after a seek.
    hasher: Option<Sha256>,
    /// The digest check's outcome once made; a failure is repeated on every later read.
    checked: Option<Result<(), String>>,
    /// Told the bytes read from storage.
    counter: Option<ReadCounter>,
}

struct Current {
    file: Box<dyn Read + Send>,
    path: PathBuf,
    remaining: u64,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current")
            .field("path", &self.path)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl BlobReader {
    pub(crate) fn new(
        digest: Digest,
        extents: Vec<Extent>,
        verify: bool,
        counter: Option<ReadCounter>,
    ) -> BlobReader {
        let size = extents.iter().map(Extent::size).sum();
        let counter = counter.filter(|_| !matches!(extents.as_slice(), [Extent::Memory(_)]));
        BlobReader {
            counter,
            digest,
            extents,
            size,
            position: 0,
            current: None,
            hasher: verify.then(Sha256::new),
            checked: None,
        }
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    fn open_current(&mut self) -> io::Result<()> {
        let mut start = 0;
        for extent in &self.extents {
            let end = start + extent.size();
            if self.position < end {
                let within = self.position - start;
                let (file, path) = extent.open_at(within)?;
                self.current = Some(Current {
                    file,
                    path,
                    remaining: end - self.position,
                });
                return Ok(());
            }
            start = end;
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read past the end of blob {}", self.digest),
        ))
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.checked.is_none() {
            let outcome = self.check();
            self.checked = Some(outcome);
        }
        match self.checked.as_ref().expect("set above") {
            Ok(()) => Ok(()),
            Err(message) => Err(io::Error::new(io::ErrorKind::InvalidData, message.clone())),
        }
    }

    fn check(&mut self) -> Result<(), String> {
        if let Some(hasher) = self.hasher.take() {
            let actual = Digest::from_hasher(hasher);
            if actual != self.digest {
                let mut corrupt = self.corrupt_pieces().join(", ");
                if corrupt.is_empty() {
                    let places: Vec<String> = self
                        .extents
                        .iter()
                        .map(|e| match e {
                            Extent::File { path, .. } => path.display().to_string(),
                            Extent::Memory(_) => "memory".to_string(),
                            Extent::Object { store, name, .. } => {
                                format!("object {}", store.url(name))
                            }
                            Extent::Packed { store, part } => {
                                format!(
                                    "{} (volume {}, {})",
                                    store.describe(),
                                    part.volume,
                                    part.entry
                                )
                            }
                        })
                        .collect();
                    corrupt = format!("its content in {}", places.join(", "));
                }
                return Err(format!(
                    "blob {} does not match its digest: its content hashes to {actual}; {corrupt} is corrupt. Copy the bundle again from the source media (check volumes with `sha256sum -c SHA256SUMS`)",
                    self.digest,
                ));
            }
        }
        Ok(())
    }
}

impl BlobReader {
    /// After a joined blob failed its digest: the chunks that do not hash to the digest their
    /// plan gives, each read again (only from volumes present now: no medium is asked for
    /// again on the way to an error).
    fn corrupt_pieces(&self) -> Vec<String> {
        let count = self.extents.len();
        if count < 2 {
            return Vec::new();
        }
        let mut corrupt = Vec::new();
        for (i, extent) in self.extents.iter().enumerate() {
            let Extent::Packed { store, part } = extent else {
                continue;
            };
            if store.missing_volumes().contains(&part.volume) {
                continue;
            }
            let Ok((file, path)) = extent.open_at(0) else {
                continue;
            };
            let Ok((hasher, _)) = crate::digest::hash_reader(file.take(part.size), |_| {}) else {
                continue;
            };
            let actual = Digest::from_hasher(hasher);
            if actual != part.digest {
                corrupt.push(format!(
                    "chunk {} of {count} ({}, volume {}, {}, which hashes to {actual} where the plan says {})",
                    i + 1,
                    path.display(),
                    part.volume,
                    part.entry,
                    part.digest
                ));
            }
        }
        corrupt
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.position >= self.size {
            self.finish()?;
            return Ok(0);
        }
        if self.current.as_ref().is_none_or(|c| c.remaining == 0) {
            self.current = None;
            self.open_current()?;
        }
        let current = self.current.as_mut().expect("opened above");
        let want = buf
            .len()
            .min(current.remaining.min(usize::MAX as u64) as usize);
        let n = current.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends {} bytes early inside blob {}: the file is truncated. Copy it again from the source media",
                    current.path.display(),
                    current.remaining,
                    self.digest
                ),
            ));
        }
        current.remaining -= n as u64;
        self.position += n as u64;
        if let Some(counter) = &self.counter {
            counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        if self.position >= self.size {
            // Check now, so the last bytes are never handed over from a corrupt blob
            // without the error that goes with them.
            self.finish()?;
        }
        Ok(n)
    }
}

impl Seek for BlobReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target != self.position {
            // Only a straight read from byte 0 can be checked against the digest.
            self.hasher = None;
            self.current = None;
            self.position = target;
        }
        Ok(self.position)
    }
}

/// Streams `length` bytes of a blob from `start` on a blocking thread, for async consumers
/// (uploads, the registry server). Items are at most [`IO_BUFFER`] bytes.
pub fn blob_stream(
    mut reader: BlobReader,
    start: u64,
    length: u64,
) -> impl futures_util::Stream<Item = io::Result<axum::body::Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<axum::body::Bytes>>(STREAM_AHEAD);
    tokio::task::spawn_blocking(move || {
        if start > 0
            && let Err(e) = reader.seek(SeekFrom::Start(start))
        {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let pool = BufferPool::default();
        let mut left = length;
        while left > 0 {
            let want = IO_BUFFER.min(left as usize);
            let mut buffer = pool.take();
            let mut filled = 0;
            while filled < want {
                match reader.read(&mut buffer[filled..want]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                let _ = tx.blocking_send(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("blob {} ended early", reader.digest()),
                )));
                return;
            }
            left -= filled as u64;
            let chunk = axum::body::Bytes::from_owner(PooledChunk {
                buffer: Some(buffer),
                len: filled,
                pool: pool.clone(),
            });
            if tx.blocking_send(Ok(chunk)).is_err() {
                return; // the consumer went away
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Chunks a stream reads ahead of its consumer.
const STREAM_AHEAD: usize = 4;

/// The buffers of one stream, reused once the consumer drops a chunk: a fresh 1 MiB buffer
/// per chunk costs page faults and zeroing on every megabyte (a tenth of an upload's CPU).
#[derive(Clone, Default)]
struct BufferPool(Arc<std::sync::Mutex<Vec<Box<[u8]>>>>);

impl BufferPool {
    /// A free buffer of [`IO_BUFFER`] bytes, zeroed only when new.
    fn take(&self) -> Box<[u8]> {
        let free = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        free.unwrap_or_else(|| vec![0u8; IO_BUFFER].into_boxed_slice())
    }

    /// Keeps a buffer for the next chunk; more than the stream can hold at once are dropped.
    fn give_back(&self, buffer: Box<[u8]>) {
        let mut free = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < STREAM_AHEAD + 2 {
            free.push(buffer);
        }
    }
}

/// A filled buffer lent to the consumer as `Bytes`; it returns to its pool when dropped.
struct PooledChunk {
    buffer: Option<Box<[u8]>>,
    len: usize,
    pool: BufferPool,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_deref().map_or(&[], |b| &b[..self.len])
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give_back(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom};

    use crate::digest::Digest;
    use crate::layout::Layout;

    #[test]
    fn whole_reads_are_checked_ranges_are_not_and_truncation_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let digest = Digest::of_bytes(&bytes);
        layout.write_blob(&digest, &bytes).unwrap();
        let mut whole = Vec::new();
        layout
            .open_blob(&digest)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, bytes);

        // Corrupt one byte: a whole read fails (and keeps failing), a range read does not.
        let path = layout.blob_path(&digest);
        let mut corrupt = bytes.clone();
        corrupt[5000] ^= 1;
        std::fs::write(&path, &corrupt).unwrap();
        let mut reader = layout.open_blob(&digest).unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(reader.read(&mut [0u8; 16]).is_err());
        let mut ranged = layout.open_blob(&digest).unwrap();
        ranged.seek(SeekFrom::Start(10)).unwrap();
        let mut tail = Vec::new();
        ranged.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, corrupt[10..]);

        // Truncated after the size was taken: the reader names the file.
        let mut reader = layout.open_blob(&digest).unwrap();
        std::fs::write(&path, &bytes[..1000]).unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
