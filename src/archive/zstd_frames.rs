//! Compressed volumes that can still be read in place: every tar entry is its own zstd frame.
//!
//! Concatenated frames decompress to the concatenation of their contents, so
//! `zstd -dc NAME.001.tar.zst | tar -x` reads the volume as plain tar. Because each entry
//! starts a frame, a reader that knows where the frame starts can decompress one blob without
//! the bytes before it; [`frames`] finds the frames by walking their block headers, without
//! decompressing anything.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// zstd level for volumes: fast, and most layers are compressed already.
const LEVEL: i32 = 3;
const FRAME_MAGIC: u32 = 0xFD2F_B528;

/// A writer that compresses into a new zstd frame each time [`FramedWriter::next_frame`] is
/// called.
pub struct FramedWriter<W: Write> {
    encoder: Option<zstd::stream::write::Encoder<'static, W>>,
}

impl<W: Write> FramedWriter<W> {
    /// Starts the first frame.
    pub fn new(inner: W) -> io::Result<Self> {
        Ok(FramedWriter {
            encoder: Some(zstd::stream::write::Encoder::new(inner, LEVEL)?),
        })
    }

    /// Ends the current frame and starts the next.
    pub fn next_frame(&mut self) -> io::Result<()> {
        let inner = self.encoder.take().expect("an encoder").finish()?;
        self.encoder = Some(zstd::stream::write::Encoder::new(inner, LEVEL)?);
        Ok(())
    }

    /// Ends the last frame and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.encoder.take().expect("an encoder").finish()
    }
}

impl<W: Write> Write for FramedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder.as_mut().expect("an encoder").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.as_mut().expect("an encoder").flush()
    }
}

/// A frame of a zstd file: where it starts and how many compressed bytes it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of its first byte in the file.
    pub offset: u64,
    /// Compressed length, header to checksum.
    pub length: u64,
    /// Whether it is a skippable frame (no content).
    pub skippable: bool,
}

fn read_exact_at<R: Read + Seek>(r: &mut R, at: u64, buf: &mut [u8]) -> io::Result<()> {
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "a zstd frame ends past the end of the file (at byte {at}): it is truncated"
                ),
            )
        } else {
            e
        }
    })
}

/// Finds every frame of a zstd file of `len` bytes by reading only frame and block headers.
pub fn frames<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<Vec<Frame>> {
    let bad = |at: u64, what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a valid zstd frame at byte {at}: {what}"),
        )
    };
    let truncated = |start: u64| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the zstd frame at byte {start} ends past the end of the file: it is truncated"
            ),
        )
    };
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < len {
        let start = at;
        let mut magic = [0u8; 4];
        read_exact_at(r, at, &mut magic)?;
        let magic = u32::from_le_bytes(magic);
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let mut size = [0u8; 4];
            read_exact_at(r, at + 4, &mut size)?;
            let length = 8 + u64::from(u32::from_le_bytes(size));
            if at + length > len {
                return Err(truncated(start));
            }
            out.push(Frame {
                offset: start,
                length,
                skippable: true,
            });
            at += length;
            continue;
        }
        if magic != FRAME_MAGIC {
            return Err(bad(at, "bad magic number"));
        }
        let mut descriptor = [0u8; 1];
        read_exact_at(r, at + 4, &mut descriptor)?;
        let d = descriptor[0];
        let fcs_flag = d >> 6;
        let single_segment = d & 0x20 != 0;
        let checksum = d & 0x04 != 0;
        if d & 0x08 != 0 {
            return Err(bad(at, "reserved bit set"));
        }
        let dict_len = [0u64, 1, 2, 4][usize::from(d & 0x03)];
        let fcs_len = match fcs_flag {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let window_len = if single_segment { 0 } else { 1 };
        at += 5 + window_len + dict_len + fcs_len;
        loop {
            let mut header = [0u8; 3];
            read_exact_at(r, at, &mut header)?;
            let h = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
            let last = h & 1 != 0;
            let kind = (h >> 1) & 3;
            let size = u64::from(h >> 3);
            let content = match kind {
                0 | 2 => size,
                1 => 1,
                _ => return Err(bad(at, "reserved block type")),
            };
            at += 3 + content;
            if last {
                break;
            }
        }
        if checksum {
            at += 4;
        }
        if at > len {
            return Err(truncated(start));
        }
        out.push(Frame {
            offset: start,
            length: at - start,
            skippable: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_and_each_decompresses_alone() {
        let mut writer = FramedWriter::new(Vec::new()).unwrap();
        let parts: Vec<Vec<u8>> = vec![
            b"first".to_vec(),
            (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect(),
            vec![0u8; 1024],
        ];
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                writer.next_frame().unwrap();
            }
            writer.write_all(p).unwrap();
        }
        let bytes = writer.finish().unwrap();
        let found = frames(&mut io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(found.len(), 3);
        for (frame, part) in found.iter().zip(&parts) {
            let slice = &bytes[frame.offset as usize..(frame.offset + frame.length) as usize];
            assert_eq!(&zstd::decode_all(slice).unwrap(), part);
        }
        // The whole file is one stream to zstd.
        assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), parts.concat());
        // Cut short: named as truncated.
        let cut = &bytes[..bytes.len() - 10];
        let err = frames(&mut io::Cursor::new(cut), cut.len() as u64).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
