//! Content digests (`sha256:<hex>`) and hashing readers and writers.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Buffer size for hashing and copying files: large reads keep syscalls rare.
pub const IO_BUFFER: usize = 1 << 20;

/// A validated `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a string is not a digest this tool accepts.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest {value:?}: {reason}")]
pub struct DigestError {
    value: String,
    reason: &'static str,
}

impl Digest {
    /// Parses `sha256:<hex>`; other algorithms are refused because every blob path is sha256.
    pub fn parse(value: &str) -> Result<Digest, DigestError> {
        let err = |reason| DigestError {
            value: value.to_string(),
            reason,
        };
        let hex = value
            .strip_prefix("sha256:")
            .ok_or_else(|| err("only sha256 digests are supported"))?;
        if hex.len() != 64 {
            return Err(err("a sha256 digest has 64 hex characters"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err("a digest is lowercase hexadecimal"));
        }
        Ok(Digest(value.to_string()))
    }

    /// Digest of a byte slice.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// Digest from a finished hasher.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The hex part, which is also the blob's file name.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for messages: `sha256:0123456789ab`.
    pub fn short(&self) -> &str {
        &self.0[..19]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
    /// False: only counts (the bytes were checked by whoever read them).
    hashing: bool,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
            hashing: true,
        }
    }

    /// Wraps `inner`, counting without hashing: for bytes a checked reader hands over (each
    /// blob is hashed once); [`HashingWriter::finish`]'s digest is then meaningless.
    pub fn counting(inner: W) -> Self {
        HashingWriter {
            hashing: false,
            ..HashingWriter::new(inner)
        }
    }

    /// Continues from a hasher that has already seen `written` bytes (resumed downloads).
    pub fn resume(inner: W, hasher: Sha256, written: u64) -> Self {
        HashingWriter {
            inner,
            hasher,
            written,
            hashing: true,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer, for flushing or syncing.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Finishes hashing and returns the inner writer, the digest and the size.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.hashing {
            self.hasher.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A buffered writer that hashes on a second thread: writing (I/O) and hashing (CPU) overlap,
/// so writing a large file costs about the larger of the two, not their sum. The buffers go
/// back and forth between the two threads rather than being allocated for every chunk (fresh
/// memory costs a page fault per 4 KiB).
pub struct BackgroundHashWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Buffers the hashing thread is done with.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<(Sha256, u64)>>,
}

impl<W: Write> BackgroundHashWriter<W> {
    /// Wraps `inner`; at most a few buffers of [`IO_BUFFER`] bytes are in flight.
    pub fn new(inner: W) -> Self {
        const IN_FLIGHT: usize = 4;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (spare_tx, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let worker = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            for mut chunk in rx {
                hasher.update(&chunk);
                total += chunk.len() as u64;
                chunk.clear();
                // Dropped when the writer has enough spares already.
                let _ = spare_tx.try_send(chunk);
            }
            (hasher, total)
        });
        BackgroundHashWriter {
            inner,
            buf: Vec::with_capacity(IO_BUFFER),
            tx: Some(tx),
            spare,
            worker: Some(worker),
        }
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.inner.write_all(&self.buf)?;
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(IO_BUFFER));
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .as_ref()
            .expect("present until finish")
            .send(full)
            .map_err(|_| io::Error::other("the hashing thread stopped"))
    }

    /// Writes what is buffered and returns the inner writer, the digest and the size.
    pub fn finish(mut self) -> io::Result<(W, Digest, u64)> {
        self.flush_buffer()?;
        self.inner.flush()?;
        drop(self.tx.take());
        let (hasher, size) = self
            .worker
            .take()
            .expect("present until finish")
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        Ok((self.inner, Digest::from_hasher(hasher), size))
    }
}

impl<W: Write> Write for BackgroundHashWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = IO_BUFFER - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= IO_BUFFER {
            self.flush_buffer()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        self.inner.flush()
    }
}

/// Hashes everything `reader` yields; `on_progress` gets each chunk's length.
pub fn hash_reader(
    mut reader: impl Read,
    mut on_progress: impl FnMut(u64),
) -> io::Result<(Sha256, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; IO_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        on_progress(n as u64);
    }
    Ok((hasher, total))
}

/// Digest and size of a file.
pub fn hash_file(path: &Path, on_progress: impl FnMut(u64)) -> io::Result<(Digest, u64)> {
    let file = std::fs::File::open(path)?;
    let (hasher, size) = hash_reader(file, on_progress)?;
    Ok((Digest::from_hasher(hasher), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of_bytes(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha512:abcd").is_err());
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse(&d.as_str().to_uppercase()).is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
    }

    #[test]
    fn background_hash_writer_matches_of_bytes() {
        let data: Vec<u8> = (0..(3 * IO_BUFFER + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = BackgroundHashWriter::new(Vec::new());
        for chunk in data.chunks(7919) {
            w.write_all(chunk).unwrap();
        }
        let (out, digest, size) = w.finish().unwrap();
        assert_eq!(out, data);
        assert_eq!(size, data.len() as u64);
        assert_eq!(digest, Digest::of_bytes(&data));
    }

    #[test]
    fn hashing_writer_matches_of_bytes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, digest, size) = w.finish();
        assert_eq!(size, 11);
        assert_eq!(digest, Digest::of_bytes(&buf));
    }
}
