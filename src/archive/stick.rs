//! What `ferry pack` writes beside the volumes for the people on site: the ferry binary itself
//! (`ferry`), `SHA256SUMS` over the volumes and the binary, and `SHA256SUMS.sig`, the release
//! key's signature of `SHA256SUMS` in cosign's blob format (as `index.json.sig`). So on site,
//! with no cargo and no internet, staff check the stick with openssl and `sha256sum -c`, then
//! run the `ferry` on it.
//!
//! None of these names ends in `.tar` or `.tar.zst`, so nothing that reads volumes from a
//! directory takes them for volumes.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::archive::ArchiveError;
use crate::archive::pack::VolumeFile;
use crate::digest::Digest;
use crate::sign::SigningKey;

/// The file name of the ferry binary beside the volumes.
pub const BINARY_FILE: &str = "ferry";
/// The file name of the checksums beside the volumes.
pub const CHECKSUMS_FILE: &str = "SHA256SUMS";
/// The file name of the checksums' signature beside the volumes.
pub const CHECKSUMS_SIGNATURE_FILE: &str = "SHA256SUMS.sig";

/// Where the running ferry binary can be read: `/proc/self/exe` on Linux, which still opens
/// when the file was replaced or removed since the process started; else `current_exe`.
pub fn running_binary() -> io::Result<PathBuf> {
    let proc = Path::new("/proc/self/exe");
    if proc.exists() {
        return Ok(proc.to_path_buf());
    }
    std::env::current_exe()
}

/// Copies the ferry binary `source` into `dir` as [`BINARY_FILE`], executable (mode 0755 less
/// the umask), through a temporary file renamed into place; returns its name, size and sha256.
pub fn copy_binary(source: &Path, dir: &Path) -> Result<VolumeFile, ArchiveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    let mut input = File::open(source).map_err(|e| ArchiveError::Binary {
        path: source.to_path_buf(),
        reason: e.to_string(),
    })?;
    let meta = input.metadata().map_err(io(source))?;
    if !meta.is_file() {
        return Err(ArchiveError::Binary {
            path: source.to_path_buf(),
            reason: "it is not a file".to_string(),
        });
    }
    let target = dir.join(BINARY_FILE);
    // Through the one writer: an executable's mode less the umask, a temporary name the
    // next run sweeps.
    let mut tmp = crate::fsutil::TempFile::beside(&target, crate::fsutil::Access::Declared(0o755))
        .map_err(io(dir))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(source)(e)),
        };
        hasher.update(&buf[..n]);
        let at = tmp.path().to_path_buf();
        tmp.write_all(&buf[..n]).map_err(io(&at))?;
        size += n as u64;
    }
    tmp.commit(&target).map_err(io(&target))?;
    let sha256 = Digest::from_hasher(hasher);
    Ok(VolumeFile {
        path: target,
        size,
        sha256,
    })
}

/// Signs the checksums file `checksums` into [`CHECKSUMS_SIGNATURE_FILE`] beside it with
/// `key`; without a key, removes a signature left from an earlier pack (it would no longer
/// match) and returns None.
pub fn sign_checksums(
    checksums: &Path,
    key: Option<&SigningKey>,
) -> Result<Option<PathBuf>, ArchiveError> {
    let signature = checksums.with_file_name(CHECKSUMS_SIGNATURE_FILE);
    let Some(key) = key else {
        return match fs::remove_file(&signature) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArchiveError::Io {
                path: signature,
                source: e,
            }),
        };
    };
    let bytes = fs::read(checksums).map_err(|source| ArchiveError::Io {
        path: checksums.to_path_buf(),
        source,
    })?;
    let b64 = key.sign(&bytes).map_err(|e| ArchiveError::Sign {
        path: signature.clone(),
        reason: e.to_string(),
    })?;
    crate::layout::write_atomic(&signature, b64.as_bytes())?;
    Ok(Some(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_binary_is_copied_executable_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"#!/bin/sh\necho hi\n").unwrap();
        let out = dir.path().join("usb");
        fs::create_dir(&out).unwrap();
        let copied = copy_binary(&source, &out).unwrap();
        assert_eq!(copied.path, out.join("ferry"));
        assert_eq!(copied.size, 18);
        assert_eq!(copied.sha256, Digest::of_bytes(b"#!/bin/sh\necho hi\n"));
        let mode = fs::metadata(&copied.path).unwrap().permissions().mode() & 0o777;
        // 0755 less the umask: executable by its owner whatever the umask, never writable
        // by others.
        assert_eq!(mode & 0o700, 0o700, "{mode:o}");
        assert_eq!(mode & 0o022, 0, "{mode:o}");
        // Nothing else was left in the directory.
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1);

        let missing = copy_binary(&dir.path().join("nope"), &out).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        assert!(missing.to_string().contains("--ferry-binary"), "{missing}");
    }

    #[test]
    fn a_stale_signature_is_removed_without_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let sums = dir.path().join(CHECKSUMS_FILE);
        fs::write(&sums, "x  a.tar\n").unwrap();
        fs::write(dir.path().join(CHECKSUMS_SIGNATURE_FILE), "old").unwrap();
        assert_eq!(sign_checksums(&sums, None).unwrap(), None);
        assert!(!dir.path().join(CHECKSUMS_SIGNATURE_FILE).exists());
        assert_eq!(sign_checksums(&sums, None).unwrap(), None);
    }
}
