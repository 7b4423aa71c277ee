//! Release files on site: written into a directory under their names and modes, atomically,
//! with a `SHA256SUMS`; and the directory k3s-ansible's airgap role reads (`airgap_dir`).
//!
//! Every write goes to a temporary file in the target directory, is hashed while copied from
//! the bundle, fsynced, and renamed into place only when the hash is the one the bundle names;
//! so a file under its final name is always complete and correct. Modes and temporary names
//! come from [`crate::fsutil`]: a file gets its declared mode masked by the umask.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter, IO_BUFFER, hash_file};
use crate::fsutil::{self, Access, TempFile};
use crate::layout::Layout;
use crate::layout::files::BundleFile;
use crate::manifest::files::{SUMS_FILE, check_file_name};

/// Errors writing files into a directory.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The bundle's blob no longer hashes to its digest (it changed after verification).
    #[error(
        "the bundle's content for {name} hashes to {actual}, not {expected}: it changed after it was verified. Nothing was written for {name}; copy the bundle again"
    )]
    Corrupt {
        /// The file's name.
        name: String,
        /// The digest the bundle names.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Something that is not a regular file sits where the file goes.
    #[error("{path} exists and is not a file; move it away and import again")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A name is not a safe single path component (never expected: names are checked when
    /// read from the bundle; checked again here because this is where paths are made).
    #[error("refusing to write {name:?}: {reason}")]
    UnsafeName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Two files of the bundle would take the same name.
    #[error(
        "two files of the bundle would both be written as {name:?} ({first} and {second}); nothing was written"
    )]
    Conflict {
        /// The name.
        name: String,
        /// One source URL.
        first: String,
        /// The other.
        second: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PlaceError + '_ {
    move |source| PlaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file to write: what, under which name, with which mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The name in the target directory.
    pub name: String,
    /// Permission bits declared (the umask masks them, see [`Access::Declared`]).
    pub mode: u32,
    /// The bundle's file.
    pub file: BundleFile,
}

/// What [`place`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file was written.
    Written,
    /// A file with the right content was already there (its mode was corrected if needed).
    Skipped,
}

/// Every file under its own name and mode; two files with one name are refused.
pub fn plan(files: &[BundleFile]) -> Result<Vec<Placement>, PlaceError> {
    let mut by_name: BTreeMap<&str, &BundleFile> = BTreeMap::new();
    for file in files {
        if let Some(first) = by_name.insert(&file.name, file) {
            return Err(PlaceError::Conflict {
                name: file.name.clone(),
                first: first.url.clone(),
                second: file.url.clone(),
            });
        }
    }
    Ok(files
        .iter()
        .map(|f| Placement {
            name: f.name.clone(),
            mode: f.mode,
            file: f.clone(),
        })
        .collect())
}

/// Sweeps what killed runs left in `dir` (creating it if missing); call once before
/// [`place`]ing files into it.
pub fn prepare(dir: &Path) -> Result<(), PlaceError> {
    fsutil::prepare_dir(dir).map_err(io_err(dir))
}

/// Whether `dir` holds the placement already (a regular file with its content; its mode is
/// set right). A directory in its place, or an unsafe name, is an error: found before any
/// byte is written.
pub fn in_place(dir: &Path, placement: &Placement) -> Result<bool, PlaceError> {
    check_file_name(&placement.name).map_err(|reason| PlaceError::UnsafeName {
        name: placement.name.clone(),
        reason,
    })?;
    let target = dir.join(&placement.name);
    let file = &placement.file;
    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => return Err(PlaceError::NotAFile { path: target }),
        Ok(m) if m.is_file() && m.len() == file.size => {
            let (actual, _) = hash_file(&target, |_| {}).map_err(io_err(&target))?;
            if actual == file.digest {
                let mode = Access::Declared(placement.mode).mode();
                if m.permissions().mode() & 0o7777 != mode {
                    fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                        .map_err(io_err(&target))?;
                }
                return Ok(true);
            }
        }
        // Anything else (absent, another size, a symlink) is replaced by the rename,
        // which never follows a symlink.
        _ => {}
    }
    Ok(false)
}

/// A placement being written from bytes a checked reader hands over (the site import's one
/// pass): a temporary file in its directory, renamed into place by [`FileSink::commit`]
/// once the reader has checked the blob's digest; dropped, it leaves nothing.
pub struct FileSink {
    tmp: BufWriter<TempFile>,
    target: PathBuf,
}

impl FileSink {
    /// Starts writing `placement` into `dir`.
    pub fn new(dir: &Path, placement: &Placement) -> Result<FileSink, PlaceError> {
        FileSink::at(&dir.join(&placement.name), Access::Declared(placement.mode))
    }

    /// Starts writing `target` (its directory exists), with `access`.
    pub fn at(target: &Path, access: Access) -> Result<FileSink, PlaceError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        let tmp = TempFile::in_dir(dir, access).map_err(io_err(dir))?;
        Ok(FileSink {
            tmp: BufWriter::with_capacity(IO_BUFFER, tmp),
            target: target.to_path_buf(),
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), PlaceError> {
        self.tmp.write_all(bytes).map_err(io_err(&self.target))
    }

    /// The blob checked: renames the file into place.
    pub fn commit(self) -> Result<(), PlaceError> {
        let target = self.target;
        let tmp = self
            .tmp
            .into_inner()
            .map_err(|e| io_err(&target)(e.into_error()))?;
        tmp.commit(&target).map_err(io_err(&target))
    }
}

/// Writes one file into `dir` unless a regular file with the right content is there.
pub fn place(layout: &Layout, dir: &Path, placement: &Placement) -> Result<Outcome, PlaceError> {
    if in_place(dir, placement)? {
        return Ok(Outcome::Skipped);
    }
    let target = dir.join(&placement.name);
    let file = &placement.file;

    // Checked while copied (below), so the reader need not check it too.
    let source = layout
        .open_blob_unchecked(&file.digest)
        .map_err(|e| io_err(&target)(io::Error::other(e.to_string())))?;
    let mut tmp = TempFile::in_dir(dir, Access::Declared(placement.mode)).map_err(io_err(dir))?;
    let mut writer = HashingWriter::new(BufWriter::with_capacity(IO_BUFFER, tmp.file_mut()));
    io::copy(
        &mut BufReader::with_capacity(IO_BUFFER, source),
        &mut writer,
    )
    .map_err(io_err(&target))?;
    let (buffered, actual, _) = writer.finish();
    buffered
        .into_inner()
        .map_err(|e| io_err(&target)(e.into_error()))?
        .flush()
        .map_err(io_err(&target))?;
    if actual != file.digest {
        // Dropping the temporary file removes it.
        return Err(PlaceError::Corrupt {
            name: placement.name.clone(),
            expected: file.digest.clone(),
            actual,
        });
    }
    tmp.commit(&target).map_err(io_err(&target))?;
    Ok(Outcome::Written)
}

/// Writes `dir/SHA256SUMS` (`sha256sum -c` reads it): a line per file written now, plus the
/// lines of an earlier SHA256SUMS for other files that are still in the directory.
pub fn write_sums(dir: &Path, placements: &[Placement]) -> Result<PathBuf, PlaceError> {
    let path = dir.join(SUMS_FILE);
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    match fs::read_to_string(&path) {
        Ok(text) => {
            for line in text.lines() {
                let Some((hex, name)) = line.split_once("  ").or_else(|| line.split_once(" *"))
                else {
                    continue;
                };
                let kept = hex.len() == 64
                    && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    && check_file_name(name).is_ok()
                    && fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file());
                if kept {
                    lines.insert(name.to_string(), hex.to_string());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    for p in placements {
        lines.insert(p.name.clone(), p.file.digest.hex().to_string());
    }
    let text: String = lines
        .iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect();
    fsutil::write_atomic(&path, text.as_bytes(), Access::Public).map_err(io_err(&path))?;
    Ok(path)
}

/// Why the bundle's files cannot make a K3s airgap layout.
#[derive(Debug, thiserror::Error)]
pub enum K3sLayoutError {
    /// Pieces are missing; one line each.
    #[error(
        "the bundle lacks what k3s-ansible's airgap_dir needs:\n{}\nadd them to spec.files, build the bundle again and import it; nothing was written",
        .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n")
    )]
    Missing(Vec<String>),
    /// Two bundle files would take one name.
    #[error(transparent)]
    Conflict(PlaceError),
}

/// The files of a K3s airgap layout, and notes on bundle files it passed over.
#[derive(Debug, Clone)]
pub struct K3sLayout {
    /// What goes into the airgap directory.
    pub placements: Vec<Placement>,
    /// Architectures laid out.
    pub arches: Vec<String>,
    /// Files that could have been used but were not (a second image archive for one arch).
    pub notes: Vec<String>,
}

/// What a bundle file is to the airgap role, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum K3sPart {
    /// The install script (get.k3s.io).
    Script,
    /// The K3s binary of an architecture (the role's names: amd64, arm64, arm).
    Binary(String),
    /// The airgap images of an architecture; the rank orders compression formats.
    Images(String, u8),
    /// An SELinux RPM the role installs on RedHat and Suse.
    Rpm,
}

/// The role's architecture name for a K3s release's one.
fn arch(name: &str) -> Option<&'static str> {
    match name {
        "amd64" => Some("amd64"),
        "arm64" => Some("arm64"),
        "arm" | "armhf" => Some("arm"),
        "s390x" => Some("s390x"),
        "riscv64" => Some("riscv64"),
        _ => None,
    }
}

fn classify(name: &str) -> Option<K3sPart> {
    if name == "install.sh" || name == "k3s-install.sh" {
        return Some(K3sPart::Script);
    }
    if name == "k3s" {
        return Some(K3sPart::Binary("amd64".into()));
    }
    if let Some(rest) = name.strip_prefix("k3s-airgap-images-") {
        for (ext, rank) in [(".tar.zst", 0), (".tar.gz", 1), (".tar", 2)] {
            if let Some(a) = rest.strip_suffix(ext).and_then(arch) {
                return Some(K3sPart::Images(a.into(), rank));
            }
        }
        return None;
    }
    if let Some(a) = name.strip_prefix("k3s-").and_then(arch) {
        return Some(K3sPart::Binary(a.into()));
    }
    let rpm = name.ends_with(".rpm")
        && ["k3s-selinux", "selinux-policy", "container-selinux"]
            .iter()
            .any(|p| name.starts_with(p));
    rpm.then_some(K3sPart::Rpm)
}

/// The name the role looks for: `k3s` for amd64 (the K3s release's own name, which the role
/// also falls back to), `k3s-<arch>` for the others.
fn binary_name(arch: &str) -> String {
    if arch == "amd64" {
        "k3s".into()
    } else {
        format!("k3s-{arch}")
    }
}

/// Maps the bundle's files onto what k3s-ansible's airgap role reads from `airgap_dir`:
/// `k3s-install.sh`, `k3s-<arch>` or `k3s`, and the `*.tar.zst|.tar.gz|.tar` image archives it
/// copies to every node (plus any K3s SELinux RPMs). Every architecture with a binary needs its
/// images and the other way round; what is missing is named.
pub fn k3s_airgap(files: &[BundleFile]) -> Result<K3sLayout, K3sLayoutError> {
    let mut script: Option<&BundleFile> = None;
    let mut binaries: BTreeMap<String, &BundleFile> = BTreeMap::new();
    let mut images: BTreeMap<String, Vec<(u8, &BundleFile)>> = BTreeMap::new();
    let mut rpms: Vec<&BundleFile> = Vec::new();
    let conflict = |name: &str, a: &BundleFile, b: &BundleFile| {
        K3sLayoutError::Conflict(PlaceError::Conflict {
            name: name.to_string(),
            first: a.url.clone(),
            second: b.url.clone(),
        })
    };
    for file in files {
        match classify(&file.name) {
            Some(K3sPart::Script) => match script {
                Some(first) if first.digest != file.digest => {
                    return Err(conflict("k3s-install.sh", first, file));
                }
                _ => script = Some(file),
            },
            Some(K3sPart::Binary(a)) => match binaries.get(&a) {
                Some(first) if first.digest != file.digest => {
                    return Err(conflict(&binary_name(&a), first, file));
                }
                _ => {
                    binaries.insert(a, file);
                }
            },
            Some(K3sPart::Images(a, rank)) => images.entry(a).or_default().push((rank, file)),
            Some(K3sPart::Rpm) => rpms.push(file),
            None => {}
        }
    }

    let mut missing = Vec::new();
    if script.is_none() {
        missing.push(
            "k3s-install.sh: carry https://get.k3s.io/ as a file named install.sh or k3s-install.sh (without it the airgap role tries to download it from get.k3s.io)"
                .to_string(),
        );
    }
    if binaries.is_empty() {
        missing.push(
            "a K3s binary: k3s (amd64), k3s-arm64 or k3s-armhf from the K3s release".to_string(),
        );
    }
    if images.is_empty() {
        missing.push(
            "the K3s airgap images: k3s-airgap-images-<arch>.tar.zst from the K3s release"
                .to_string(),
        );
    }
    let arches: BTreeSet<String> = binaries.keys().chain(images.keys()).cloned().collect();
    for a in &arches {
        match (binaries.get(a), images.get(a)) {
            (Some(b), None) if !images.is_empty() => missing.push(format!(
                "k3s-airgap-images-{a}.tar.zst: the images for the {a} binary {}",
                b.name
            )),
            (None, Some(i)) if !binaries.is_empty() => missing.push(format!(
                "{}: the {a} K3s binary for {}",
                binary_name(a),
                i[0].1.name
            )),
            _ => {}
        }
    }
    if !missing.is_empty() {
        return Err(K3sLayoutError::Missing(missing));
    }

    let mut placements = Vec::new();
    let mut notes = Vec::new();
    let executable = |name: String, file: &BundleFile| Placement {
        name,
        mode: 0o755,
        file: file.clone(),
    };
    if let Some(s) = script {
        placements.push(executable("k3s-install.sh".into(), s));
    }
    for (a, b) in &binaries {
        placements.push(executable(binary_name(a), b));
    }
    for (a, mut archives) in images {
        archives.sort_by_key(|(rank, f)| (*rank, f.name.clone()));
        let (_, chosen) = archives[0];
        for (_, other) in &archives[1..] {
            notes.push(format!(
                "{} is not laid out: {} already holds the {a} images, and the airgap role would copy both to every node",
                other.name, chosen.name
            ));
        }
        placements.push(Placement {
            name: chosen.name.clone(),
            mode: 0o644,
            file: chosen.clone(),
        });
    }
    for r in rpms {
        placements.push(Placement {
            name: r.name.clone(),
            mode: 0o644,
            file: r.clone(),
        });
    }
    Ok(K3sLayout {
        placements,
        arches: arches.into_iter().collect(),
        notes,
    })
}

/// Image archives in an airgap directory that this layout did not write: the role copies
/// every `*.tar`, `*.tar.gz` and `*.tar.zst` there to every node.
pub fn foreign_archives(dir: &Path, placements: &[Placement]) -> Vec<String> {
    let ours: BTreeSet<&str> = placements.iter().map(|p| p.name.as_str()).collect();
    let mut found: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| {
                    (n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tar.zst"))
                        && !ours.contains(n.as_str())
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &[u8]) -> BundleFile {
        BundleFile {
            name: name.into(),
            mode: 0o644,
            digest: Digest::of_bytes(content),
            size: content.len() as u64,
            url: format!("https://example.com/{name}"),
        }
    }

    fn names(layout: &K3sLayout) -> Vec<(&str, u32)> {
        layout
            .placements
            .iter()
            .map(|p| (p.name.as_str(), p.mode))
            .collect()
    }

    #[test]
    fn k3s_release_names_map_onto_the_role() {
        let files = [
            file("install.sh", b"script"),
            file("k3s", b"amd64"),
            file("k3s-armhf", b"arm"),
            file("k3s-airgap-images-amd64.tar.zst", b"i1"),
            file("k3s-airgap-images-amd64.tar.gz", b"i2"),
            file("k3s-airgap-images-arm.tar.gz", b"i3"),
            file("k3s-selinux-1.6-1.el9.noarch.rpm", b"rpm"),
            file("cilium-linux-amd64.tar.gz", b"other"),
        ];
        let layout = k3s_airgap(&files).unwrap();
        assert_eq!(
            names(&layout),
            [
                ("k3s-install.sh", 0o755),
                ("k3s", 0o755),
                ("k3s-arm", 0o755),
                ("k3s-airgap-images-amd64.tar.zst", 0o644),
                ("k3s-airgap-images-arm.tar.gz", 0o644),
                ("k3s-selinux-1.6-1.el9.noarch.rpm", 0o644),
            ]
        );
        assert_eq!(layout.arches, ["amd64", "arm"]);
        assert_eq!(layout.notes.len(), 1, "{:?}", layout.notes);
        assert!(layout.notes[0].starts_with("k3s-airgap-images-amd64.tar.gz is not laid out"));
    }

    #[test]
    fn missing_pieces_are_named() {
        let e = k3s_airgap(&[file("k3s-arm64", b"b")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("  - k3s-install.sh: carry https://get.k3s.io/"),
            "{e}"
        );
        assert!(
            e.contains("  - the K3s airgap images: k3s-airgap-images-<arch>.tar.zst"),
            "{e}"
        );
        let e = k3s_airgap(&[
            file("k3s-install.sh", b"s"),
            file("k3s", b"b"),
            file("k3s-arm64", b"c"),
            file("k3s-airgap-images-amd64.tar.zst", b"i"),
            file("k3s-airgap-images-s390x.tar.zst", b"j"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "  - k3s-airgap-images-arm64.tar.zst: the images for the arm64 binary k3s-arm64"
            ),
            "{e}"
        );
        assert!(
            e.contains("  - k3s-s390x: the s390x K3s binary for k3s-airgap-images-s390x.tar.zst"),
            "{e}"
        );
        assert!(!e.contains("install.sh:"), "{e}");
        let e = k3s_airgap(&[file("install.sh", b"s"), file("k3s-install.sh", b"t")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("both be written as \"k3s-install.sh\""), "{e}");
    }

    #[test]
    fn place_writes_atomically_and_skips_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("bundle")).unwrap();
        let content = b"#!/bin/sh\n";
        let f = file("run.sh", content);
        layout.write_blob(&f.digest, content).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let p = Placement {
            name: "run.sh".into(),
            mode: 0o750,
            file: f.clone(),
        };
        assert_eq!(place(&layout, &out, &p).unwrap(), Outcome::Written);
        let m = fs::metadata(out.join("run.sh")).unwrap();
        assert_eq!(
            m.permissions().mode() & 0o777,
            0o750 & !crate::fsutil::umask()
        );
        assert_eq!(fs::read(out.join("run.sh")).unwrap(), content);
        // Right content: skipped, and a changed mode is put back.
        fs::set_permissions(out.join("run.sh"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(place(&layout, &out, &p).unwrap(), Outcome::Skipped);
        let m = fs::metadata(out.join("run.sh")).unwrap();
        assert_eq!(
            m.permissions().mode() & 0o777,
            0o750 & !crate::fsutil::umask()
        );
        // Same size, other content: written again.
        fs::write(out.join("run.sh"), b"#!/bin/XX\n").unwrap();
        assert_eq!(place(&layout, &out, &p).unwrap(), Outcome::Written);
        assert_eq!(fs::read(out.join("run.sh")).unwrap(), content);
        // A symlink in the way is replaced, not followed.
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"keep").unwrap();
        fs::remove_file(out.join("run.sh")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("run.sh")).unwrap();
        assert_eq!(place(&layout, &out, &p).unwrap(), Outcome::Written);
        assert_eq!(fs::read(&elsewhere).unwrap(), b"keep");
        assert!(fs::symlink_metadata(out.join("run.sh")).unwrap().is_file());
        // A blob that changed after verification: nothing is written, no temporary is left.
        let bad = Placement {
            name: "bad".into(),
            mode: 0o644,
            file: BundleFile {
                digest: Digest::of_bytes(b"other"),
                ..f.clone()
            },
        };
        fs::copy(
            layout.blob_path(&f.digest),
            layout.blob_path(&bad.file.digest),
        )
        .unwrap();
        let e = place(&layout, &out, &bad).unwrap_err();
        assert!(matches!(e, PlaceError::Corrupt { .. }), "{e}");
        let mut left: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["run.sh"]);
        // Hostile names are refused here too.
        let hostile = Placement {
            name: "../x".into(),
            ..p.clone()
        };
        assert!(matches!(
            place(&layout, &out, &hostile),
            Err(PlaceError::UnsafeName { .. })
        ));
    }

    #[test]
    fn sums_keep_other_files_still_there() {
        let dir = tempfile::tempdir().unwrap();
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        fs::write(dir.path().join("old"), b"x").unwrap();
        fs::write(
            dir.path().join(SUMS_FILE),
            format!("{a}  old\n{b}  gone\n{b}  ../evil\n"),
        )
        .unwrap();
        let f = file("new", b"n");
        let path = write_sums(
            dir.path(),
            &[Placement {
                name: "new".into(),
                mode: 0o644,
                file: f.clone(),
            }],
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}  new\n{a}  old\n", f.digest.hex())
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o666 & !crate::fsutil::umask()
        );
    }
}
