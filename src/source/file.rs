//! Release files over HTTP(S): locking pins each file to a sha256 and a size (from the
//! manifest, from the release's checksum file, or, when allowed, from what was downloaded);
//! fetching streams it into the store, checked against that digest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::digest::Digest;
use crate::layout::Layout;
use crate::manifest::files::{FilePin, FileSpec, LockedFile, format_mode, parse_sha256};
use crate::source::http::{HttpError, HttpSource};

/// Largest checksum file read into memory.
const CHECKSUM_FILE_LIMIT: u64 = 4 << 20;

/// Why a file could not be locked or fetched; each names the URL and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Nothing pins the file and `--allow-unpinned` was not given.
    #[error(
        "{url} has neither sha256 nor checksums: add `sha256: <hex>` (what sha256sum prints) or `checksums: <URL of the release's checksum file>` to the entry, or pass --allow-unpinned to record the hash seen now"
    )]
    Unpinned {
        /// The file's URL.
        url: String,
    },
    /// The checksum file has no line for the file.
    #[error(
        "checksum file {checksums} has no line for {name:?} (looked for `<sha256>  {name}` or `<sha256> *{name}`; {name:?} is the last segment of {url}). Check that the URL names the file the checksum file lists, or pin `sha256:` in the manifest"
    )]
    MissingChecksum {
        /// The checksum file's URL.
        checksums: String,
        /// The name looked for.
        name: String,
        /// The file's URL.
        url: String,
    },
    /// The checksum file lists the name twice with different hashes.
    #[error(
        "checksum file {checksums} lists {name:?} with two different sha256 ({first} and {second}); pin `sha256:` in the manifest"
    )]
    ConflictingChecksums {
        /// The checksum file's URL.
        checksums: String,
        /// The name.
        name: String,
        /// One hash.
        first: String,
        /// Another.
        second: String,
    },
    /// The checksum file is not text.
    #[error(
        "{checksums} is not a checksum file (it is not UTF-8 text); `checksums:` takes the URL of a sha256sum-style file"
    )]
    NotText {
        /// The checksum file's URL.
        checksums: String,
    },
    /// The URL has no last segment to look up in the checksum file.
    #[error(
        "{url} has no file name at the end to look up in the checksum file {checksums}; pin `sha256:` in the manifest instead"
    )]
    NoNameInUrl {
        /// The file's URL.
        url: String,
        /// The checksum file's URL.
        checksums: String,
    },
    /// The download does not hash to its pin.
    #[error(
        "{url}: the download hashes to {actual} ({size} bytes) but {pin} says {expected}. The file changed upstream or was corrupted on the way: check the URL and the checksum"
    )]
    Mismatch {
        /// The file's URL.
        url: String,
        /// Where the expected hash came from.
        pin: String,
        /// The pinned digest.
        expected: Digest,
        /// What the download hashes to.
        actual: Digest,
        /// Its size.
        size: u64,
    },
    /// The download itself failed.
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// One line of a checksum file: a sha256 and the name it is for (empty for a bare hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumLine {
    /// The hash, lowercase hex.
    pub sha256: String,
    /// The name as the file writes it (`k3s`, `./dist/k3s`), or empty.
    pub name: String,
}

/// Reads the lines of a checksum file that say something: GNU `HASH  name` and `HASH *name`,
/// BSD `SHA256 (name) = HASH`, and a bare `HASH` (files such as `kubectl.sha256`).
pub fn parse_checksums(text: &str) -> Vec<ChecksumLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("SHA256 (")
            && let Some((name, hash)) = rest.rsplit_once(") = ")
            && let Some(d) = parse_sha256(hash.trim())
        {
            out.push(ChecksumLine {
                sha256: d.hex().to_string(),
                name: name.to_string(),
            });
            continue;
        }
        let Some(hash) = line.get(..64) else {
            continue;
        };
        let Some(digest) = parse_sha256(hash) else {
            continue;
        };
        let rest = &line[64..];
        let name = if rest.trim().is_empty() {
            String::new()
        } else if let Some(name) = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *")) {
            name.to_string()
        } else {
            continue;
        };
        out.push(ChecksumLine {
            sha256: digest.hex().to_string(),
            name,
        });
    }
    out
}

/// Why [`find_checksum`] found no single hash.
#[derive(Debug, PartialEq, Eq)]
pub enum ChecksumLookup {
    /// No line is for the name.
    Missing,
    /// Lines for the name disagree.
    Conflict(String, String),
}

/// The hash a checksum file gives `name`: its line by exact name, else the lines whose path
/// ends in `/name`, else the one bare hash of a single-hash file.
pub fn find_checksum(lines: &[ChecksumLine], name: &str) -> Result<Digest, ChecksumLookup> {
    let exact: Vec<&ChecksumLine> = lines
        .iter()
        .filter(|l| l.name.strip_prefix("./").unwrap_or(&l.name) == name)
        .collect();
    let candidates = if !exact.is_empty() {
        exact
    } else {
        let by_path: Vec<&ChecksumLine> = lines
            .iter()
            .filter(|l| l.name.rsplit('/').next() == Some(name))
            .collect();
        if by_path.is_empty() && lines.len() == 1 && lines[0].name.is_empty() {
            vec![&lines[0]]
        } else {
            by_path
        }
    };
    let Some(first) = candidates.first() else {
        return Err(ChecksumLookup::Missing);
    };
    if let Some(other) = candidates.iter().find(|l| l.sha256 != first.sha256) {
        return Err(ChecksumLookup::Conflict(
            first.sha256.clone(),
            other.sha256.clone(),
        ));
    }
    Ok(parse_sha256(&first.sha256).expect("checked when parsed"))
}

/// Downloads release files: checksum files are fetched once per run.
pub struct FileSource {
    http: HttpSource,
    checksum_files: tokio::sync::Mutex<HashMap<String, Arc<Vec<ChecksumLine>>>>,
}

impl FileSource {
    /// A source trusting the system roots plus `ca_files`.
    pub fn new(ca_files: &[PathBuf]) -> Result<FileSource, HttpError> {
        Ok(FileSource {
            http: HttpSource::new(ca_files)?,
            checksum_files: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Pins one file: looks its hash up (manifest or checksum file), downloads it through a
    /// hasher to check that hash and learn the size, and returns its lock entry. An unpinned
    /// file is refused unless `allow_unpinned`, and then takes the hash seen.
    pub async fn lock(
        &self,
        spec: &FileSpec,
        allow_unpinned: bool,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<LockedFile, FileError> {
        let (expected, pin, checksums) = match &spec.pin {
            FilePin::Sha256(d) => (Some(d.clone()), "the manifest's sha256".to_string(), None),
            FilePin::Checksums(url) => {
                let digest = self.checksum_for(&spec.url, url).await?;
                (
                    Some(digest),
                    format!("checksum file {url}"),
                    Some(url.clone()),
                )
            }
            FilePin::Unpinned if allow_unpinned => (None, String::new(), None),
            FilePin::Unpinned => {
                return Err(FileError::Unpinned {
                    url: spec.url.clone(),
                });
            }
        };
        let (actual, size) = self.http.fetch_digest(&spec.url, on_bytes).await?;
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(FileError::Mismatch {
                url: spec.url.clone(),
                pin,
                expected,
                actual,
                size,
            });
        }
        Ok(LockedFile {
            url: spec.url.clone(),
            name: spec.name.clone(),
            mode: format_mode(spec.mode),
            size,
            sha256: actual.hex().to_string(),
            checksums,
            unpinned: matches!(spec.pin, FilePin::Unpinned),
        })
    }

    /// The hash the checksum file at `checksums` gives the last segment of `url`.
    async fn checksum_for(&self, url: &str, checksums: &str) -> Result<Digest, FileError> {
        let name = url::Url::parse(url)
            .ok()
            .and_then(|u| crate::manifest::files::url_file_name(&u))
            .ok_or_else(|| FileError::NoNameInUrl {
                url: url.to_string(),
                checksums: checksums.to_string(),
            })?;
        let lines = {
            let mut cache = self.checksum_files.lock().await;
            match cache.get(checksums) {
                Some(lines) => lines.clone(),
                None => {
                    let bytes = self
                        .http
                        .fetch_small(checksums, CHECKSUM_FILE_LIMIT)
                        .await?;
                    let text = String::from_utf8(bytes).map_err(|_| FileError::NotText {
                        checksums: checksums.to_string(),
                    })?;
                    let lines = Arc::new(parse_checksums(&text));
                    cache.insert(checksums.to_string(), lines.clone());
                    lines
                }
            }
        };
        find_checksum(&lines, &name).map_err(|e| match e {
            ChecksumLookup::Missing => FileError::MissingChecksum {
                checksums: checksums.to_string(),
                name: name.clone(),
                url: url.to_string(),
            },
            ChecksumLookup::Conflict(first, second) => FileError::ConflictingChecksums {
                checksums: checksums.to_string(),
                name: name.clone(),
                first,
                second,
            },
        })
    }

    /// Downloads a locked file into the store unless it is there; the digest and the size
    /// are checked as it streams, and a mismatch stores nothing. Returns the bytes downloaded.
    pub async fn fetch(
        &self,
        file: &LockedFile,
        layout: &Layout,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, FileError> {
        let digest = file.digest();
        if layout.has_blob(&digest) {
            return Ok(0);
        }
        let (_, size) = self
            .http
            .fetch_to_store(&file.url, Some(&digest), Some(file.size), layout, on_bytes)
            .await?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn digest(hex: &str) -> Digest {
        Digest::parse(&format!("sha256:{hex}")).unwrap()
    }

    #[test]
    fn gnu_and_bsd_forms() {
        let text = format!(
            "{A}  k3s\n{B} *k3s-airgap-images-amd64.tar.zst\r\n# comment\n\nSHA256 (helm.tar.gz) = {}\n{A}  ./dist/cilium\nnot a line\n{A}k3s\n",
            B.to_uppercase()
        );
        let lines = parse_checksums(&text);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(find_checksum(&lines, "k3s"), Ok(digest(A)));
        assert_eq!(
            find_checksum(&lines, "k3s-airgap-images-amd64.tar.zst"),
            Ok(digest(B))
        );
        assert_eq!(find_checksum(&lines, "helm.tar.gz"), Ok(digest(B)));
        assert_eq!(find_checksum(&lines, "cilium"), Ok(digest(A)));
        assert_eq!(
            find_checksum(&lines, "k3s-arm64"),
            Err(ChecksumLookup::Missing)
        );
        // A name is never matched by a prefix or a suffix of another.
        assert_eq!(find_checksum(&lines, "3s"), Err(ChecksumLookup::Missing));
    }

    #[test]
    fn bare_hash_and_conflicts() {
        let lines = parse_checksums(&format!("{A}\n"));
        assert_eq!(find_checksum(&lines, "kubectl"), Ok(digest(A)));
        let lines = parse_checksums(&format!("{A}  k3s\n{B}  k3s\n"));
        assert_eq!(
            find_checksum(&lines, "k3s"),
            Err(ChecksumLookup::Conflict(A.into(), B.into()))
        );
        let lines = parse_checksums(&format!("{A}  k3s\n{A}  ./k3s\n"));
        assert_eq!(find_checksum(&lines, "k3s"), Ok(digest(A)));
    }
}
