//! The synchronous bridge for streams: a reader by ranged GETs and a multipart writer, both
//! with memory bounded by a few parts whatever the object's size.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};

use super::{PART_SIZE, S3Error, S3Store, runtime, wait};

/// Parts uploading at once, besides the one being filled.
const MAX_IN_FLIGHT: usize = 2;
/// S3 allows 10,000 parts; part sizes are chosen to stay well under.
const MAX_PARTS: u64 = 9_000;
/// How long a dropped writer waits for its upload's abort.
const ABORT_WAIT: Duration = Duration::from_secs(30);

/// Reads a byte range of an object sequentially (see [`S3Store::reader`]).
pub struct ObjectReader {
    store: S3Store,
    name: String,
    /// End of the range.
    end: u64,
    /// Where the next chunk to request starts.
    requested: u64,
    current: Vec<u8>,
    offset: usize,
    next: Option<Receiver<Result<Vec<u8>, S3Error>>>,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("object", &self.store.url(&self.name))
            .field("requested", &self.requested)
            .field("end", &self.end)
            .finish()
    }
}

impl ObjectReader {
    pub(super) fn new(store: S3Store, name: &str, start: u64, end: u64) -> ObjectReader {
        ObjectReader {
            store,
            name: name.to_string(),
            end,
            requested: start,
            current: Vec::new(),
            offset: 0,
            next: None,
        }
    }

    /// Requests the next chunk, if any is left, without waiting for it.
    fn prefetch(&mut self) {
        if self.next.is_some() || self.requested >= self.end {
            return;
        }
        let start = self.requested;
        let end = (start + PART_SIZE as u64).min(self.end);
        self.requested = end;
        let request = self.store.get_range(&self.name, start, end);
        let (tx, rx) = sync_channel(1);
        runtime().spawn(async move {
            let _ = tx.send(request.await);
        });
        self.next = Some(rx);
    }
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.current.len() {
            self.prefetch();
            let Some(next) = self.next.take() else {
                return Ok(0);
            };
            let chunk = next.recv().map_err(|_| {
                io::Error::other(format!(
                    "{}: the read was cancelled",
                    self.store.url(&self.name)
                ))
            })??;
            self.current = chunk;
            self.offset = 0;
            // The following chunk travels while this one is consumed.
            self.prefetch();
        }
        let n = out.len().min(self.current.len() - self.offset);
        out[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

type PartResult = Result<(), object_store::Error>;

/// A streaming upload of one object (see [`S3Store::writer`]).
pub struct ObjectWriter {
    store: S3Store,
    name: String,
    part_size: usize,
    buffer: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    in_flight: VecDeque<Receiver<PartResult>>,
    written: u64,
    done: bool,
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("object", &self.store.url(&self.name))
            .field("written", &self.written)
            .field("multipart", &self.upload.is_some())
            .finish()
    }
}

impl ObjectWriter {
    pub(super) fn new(store: S3Store, name: &str, size_hint: Option<u64>) -> ObjectWriter {
        let part_size = match size_hint {
            Some(size) if size / MAX_PARTS > PART_SIZE as u64 => {
                (size / MAX_PARTS + 1).next_multiple_of(1 << 20) as usize
            }
            _ => PART_SIZE,
        };
        ObjectWriter {
            store,
            name: name.to_string(),
            part_size,
            buffer: Vec::new(),
            upload: None,
            in_flight: VecDeque::new(),
            written: 0,
            done: false,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends bytes; full parts are uploaded as they fill, at most a few at once.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), S3Error> {
        while !bytes.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(self.part_size);
            }
            let n = bytes.len().min(self.part_size - self.buffer.len());
            self.buffer.extend_from_slice(&bytes[..n]);
            self.written += n as u64;
            bytes = &bytes[n..];
            if self.buffer.len() == self.part_size {
                let part = std::mem::take(&mut self.buffer);
                self.send_part(part)?;
            }
        }
        Ok(())
    }

    fn send_part(&mut self, part: Vec<u8>) -> Result<(), S3Error> {
        if self.upload.is_none() {
            let (store, name) = (self.store.clone(), self.name.clone());
            let upload = wait(async move {
                store
                    .client()
                    .put_multipart(&store.object_path(&name))
                    .await
                    .map_err(|e| store.map_error("write", &name, e))
            })?;
            self.upload = Some(upload);
        }
        let upload = self.upload.as_mut().expect("started above");
        let request = upload.put_part(PutPayload::from(part));
        let (tx, rx) = sync_channel(1);
        runtime().spawn(async move {
            let _ = tx.send(request.await);
        });
        self.in_flight.push_back(rx);
        while self.in_flight.len() > MAX_IN_FLIGHT {
            self.wait_oldest()?;
        }
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), S3Error> {
        let Some(rx) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let outcome = rx.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic {
                store: "S3",
                source: "the part upload was cancelled".into(),
            })
        });
        outcome.map_err(|e| self.store.map_error("write", &self.name, e))
    }

    /// Finishes the object: it appears under its key now, whole. Returns its size. On failure
    /// the upload is aborted.
    pub fn complete(mut self) -> Result<u64, S3Error> {
        let result = self.finish();
        if result.is_err() {
            self.abort_now();
        }
        self.done = true;
        result
    }

    fn finish(&mut self) -> Result<u64, S3Error> {
        if self.upload.is_none() {
            let bytes = std::mem::take(&mut self.buffer);
            wait(self.store.put(&self.name, bytes))?;
            return Ok(self.written);
        }
        if !self.buffer.is_empty() {
            let part = std::mem::take(&mut self.buffer);
            self.send_part(part)?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        let mut upload = self.upload.take().expect("multipart");
        let (store, name) = (self.store.clone(), self.name.clone());
        let (upload, outcome) = wait(async move {
            let outcome = upload.complete().await;
            (upload, outcome)
        });
        match outcome {
            Ok(_) => Ok(self.written),
            Err(e) => {
                self.upload = Some(upload);
                Err(store.map_error("write", &name, e))
            }
        }
    }

    /// Gives the object up: no object appears, and the parts uploaded so far are deleted.
    pub fn abort(mut self) {
        self.abort_now();
        self.done = true;
    }

    fn abort_now(&mut self) {
        self.buffer = Vec::new();
        // Parts still travelling are let finish (or fail) first: an abort before them could
        // leave them stored under an upload nobody completes.
        while !self.in_flight.is_empty() {
            let _ = self.wait_oldest();
        }
        if let Some(mut upload) = self.upload.take() {
            let (tx, rx) = sync_channel(1);
            runtime().spawn(async move {
                let _ = tx.send(upload.abort().await);
            });
            match rx.recv_timeout(ABORT_WAIT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(
                    "{}: aborting the unfinished upload failed ({}); a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes its parts",
                    self.store.url(&self.name),
                    e
                ),
                Err(_) => tracing::warn!(
                    "{}: aborting the unfinished upload timed out; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes its parts",
                    self.store.url(&self.name)
                ),
            }
        }
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if !self.done {
            self.abort_now();
        }
    }
}
