//! The apt mirror ferry writes on site (and `ferry serve` answers): `pool/` with the `.deb`
//! files, `dists/<suite>/<component>/binary-<arch>/Packages` (+ `.gz`, `.xz`, and by-hash
//! copies) from the bundle's verbatim stanzas with `Filename` rewritten, and `Release`,
//! `InRelease` and `Release.gpg` signed with the site key.
//!
//! `Date` is the newest upstream release date carried (never later than now, never earlier
//! than the mirror's previous `Date`), so it lies in the past even on hosts whose clock runs
//! behind; there is no `Valid-Until`, since site clocks drift and a mirror is not re-signed
//! daily.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::fsutil::{Access, TempFile};
use crate::layout::Layout;
use crate::layout::graph::Entry;
use crate::layout::oci::Manifest;
use crate::manifest::apt::plain_name;
use crate::openpgp::{PgpError, SiteKey};
use crate::source::apt::control::{parse_version, stanzas};
use crate::source::apt::release::{Release, format_date, parse_date};
use crate::source::apt::{
    ANNOTATION_ARCHITECTURE, ANNOTATION_ARCHITECTURES, ANNOTATION_COMPONENT, ANNOTATION_SUITE,
    ARTIFACT_TYPE, MEDIA_DEB, MEDIA_INRELEASE, MEDIA_PACKAGES, MEDIA_RELEASE,
};

/// Where hosts keep the mirror's keyring (`Signed-By`).
pub const HOST_KEYRING_PATH: &str = "/etc/apt/keyrings/ferry-apt.gpg";
/// File name of the keyring written beside the mirror.
pub const KEYRING_FILE: &str = "ferry-apt.gpg";
/// File name of the deb822 sources file written beside the mirror.
pub const SOURCES_FILE: &str = "ferry.sources";

/// Errors building or writing the mirror; each names the file or package.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The bundle's apt content is inconsistent (it verified, so it was built wrong).
    #[error("bundle entry {entry}: {reason}")]
    Bundle {
        /// The entry (source URL).
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The mirror directory holds something ferry cannot merge with.
    #[error("{path}: {reason}")]
    Existing {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two packages claim one pool file or one version with different content.
    #[error(
        "{what}: two different files for the same package version ({first} and {second}); remove the old one from the mirror or leave one source out"
    )]
    Conflict {
        /// Package and version.
        what: String,
        /// One SHA256.
        first: String,
        /// The other.
        second: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Pgp(#[from] PgpError),
    /// The bundle could not be read.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One package in one `Packages` list of the mirror.
#[derive(Debug, Clone)]
pub struct MirrorPackage {
    /// Target suite.
    pub suite: String,
    /// Component.
    pub component: String,
    /// The `binary-<arch>` list it is in.
    pub list_arch: String,
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Its own architecture (`all` or `list_arch`).
    pub architecture: String,
    /// Its stanza, with `Filename` rewritten to `pool_path`.
    pub stanza: String,
    /// Path of the `.deb` below the mirror root.
    pub pool_path: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// What the bundle (or an existing mirror) holds for the mirror.
#[derive(Debug, Default, Clone)]
pub struct Contents {
    /// Every package list entry.
    pub packages: Vec<MirrorPackage>,
    /// Suite to the architectures its lists have.
    pub architectures: BTreeMap<String, BTreeSet<String>>,
    /// Suite to its components.
    pub components: BTreeMap<String, BTreeSet<String>>,
    /// Upstream release dates (seconds since the epoch).
    pub dates: Vec<i64>,
}

/// Where a package's file goes: `pool/<component>/<prefix>/<package>/<file>`, as Debian lays
/// out its pool. Only the last part of the upstream `Filename` is used, and only when plain.
pub fn pool_path(component: &str, package: &str, filename: &str) -> Option<String> {
    let base = filename.rsplit('/').next()?;
    let plain = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'~' | b'%')
            })
    };
    if !plain(base)
        || !base.ends_with(".deb")
        || !plain(package)
        || !component.split('/').all(plain)
    {
        return None;
    }
    let prefix = if package.starts_with("lib") && package.len() > 3 {
        &package[..4]
    } else {
        &package[..1]
    };
    Some(format!("pool/{component}/{prefix}/{package}/{base}"))
}

/// The stanza with its `Filename` line replaced.
fn rewrite_filename(stanza: &str, filename: &str) -> String {
    let mut out = String::with_capacity(stanza.len());
    for (i, line) in stanza.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let name = line.split(':').next().unwrap_or("");
        if name.eq_ignore_ascii_case("Filename") {
            out.push_str("Filename: ");
            out.push_str(filename);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Reads the apt entries of a verified bundle. `suite` maps every upstream suite to one.
pub fn from_bundle(
    layout: &Layout,
    entries: &[Entry],
    suite: Option<&str>,
) -> Result<Contents, MirrorError> {
    let mut contents = Contents::default();
    for entry in entries
        .iter()
        .filter(|e| e.kind == crate::source::apt::KIND)
    {
        let bad = |reason: String| MirrorError::Bundle {
            entry: entry.reference.clone(),
            reason,
        };
        let bytes = layout
            .read_document(&entry.descriptor.digest)
            .map_err(|e| bad(e.to_string()))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not an artifact manifest: {e}")))?;
        if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
            return Err(bad(format!(
                "artifactType is {:?}, not {ARTIFACT_TYPE}",
                manifest.artifact_type
            )));
        }
        let manifest_annotations: BTreeMap<String, String> =
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("annotations").cloned())
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
        let source_archs: Vec<String> = manifest_annotations
            .get(ANNOTATION_ARCHITECTURES)
            .map(|a| {
                a.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let debs: BTreeMap<&Digest, u64> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == MEDIA_DEB)
            .map(|l| (&l.digest, l.size))
            .collect();
        for layer in &manifest.layers {
            let annotation = |name: &str| layer.annotations.get(name).map(String::as_str);
            let upstream_suite = annotation(ANNOTATION_SUITE).unwrap_or_default();
            let target_suite = suite.unwrap_or(upstream_suite).to_string();
            if layer.media_type == MEDIA_INRELEASE || layer.media_type == MEDIA_RELEASE {
                let text = read_blob_text(layout, &layer.digest).map_err(&bad)?;
                let body = if layer.media_type == MEDIA_INRELEASE {
                    crate::openpgp::cleartext_body(&text).unwrap_or_default()
                } else {
                    text
                };
                if let Some(date) = Release::parse(&body)
                    .ok()
                    .and_then(|r| r.date)
                    .and_then(|d| parse_date(&d))
                {
                    contents.dates.push(date);
                }
                continue;
            }
            if layer.media_type != MEDIA_PACKAGES {
                continue;
            }
            let component = annotation(ANNOTATION_COMPONENT)
                .unwrap_or_default()
                .to_string();
            let list_arch = annotation(ANNOTATION_ARCHITECTURE)
                .unwrap_or_default()
                .to_string();
            // Annotations become directory names: only plain names pass.
            if ![&target_suite, &component, &list_arch]
                .iter()
                .all(|n| plain_name(n))
            {
                return Err(bad(format!(
                    "Packages layer {} has no usable suite, component or architecture ({target_suite:?}, {component:?}, {list_arch:?})",
                    layer.digest
                )));
            }
            let text = read_blob_text(layout, &layer.digest).map_err(&bad)?;
            let parsed =
                stanzas(&text).map_err(|e| bad(format!("Packages layer {}: {e}", layer.digest)))?;
            let lists: Vec<String> = if list_arch == "all" {
                source_archs.clone()
            } else {
                vec![list_arch.clone()]
            };
            for stanza in parsed {
                let field = |name: &str| stanza.get(name).unwrap_or_default().to_string();
                let (package, version, architecture) =
                    (field("Package"), field("Version"), field("Architecture"));
                let sha = field("SHA256").to_ascii_lowercase();
                let digest = Digest::parse(&format!("sha256:{sha}"))
                    .map_err(|e| bad(format!("package {package} {version}: {e}")))?;
                let size: u64 = field("Size").parse().unwrap_or(u64::MAX);
                if debs.get(&digest) != Some(&size) {
                    return Err(bad(format!(
                        "package {package} {version}: its stanza names a .deb ({digest}, {size} bytes) that the entry does not carry"
                    )));
                }
                let pool =
                    pool_path(&component, &package, &field("Filename")).ok_or_else(|| {
                        bad(format!(
                            "package {package} {version}: unsafe Filename or name {:?}",
                            field("Filename")
                        ))
                    })?;
                let rewritten = rewrite_filename(stanza.text, &pool);
                let arch_lists: Vec<String> = if architecture == "all" {
                    lists.clone()
                } else {
                    vec![architecture.clone()]
                };
                for list in arch_lists {
                    contents
                        .architectures
                        .entry(target_suite.clone())
                        .or_default()
                        .insert(list.clone());
                    contents
                        .components
                        .entry(target_suite.clone())
                        .or_default()
                        .insert(component.clone());
                    contents.packages.push(MirrorPackage {
                        suite: target_suite.clone(),
                        component: component.clone(),
                        list_arch: list,
                        package: package.clone(),
                        version: version.clone(),
                        architecture: architecture.clone(),
                        stanza: rewritten.clone(),
                        pool_path: pool.clone(),
                        digest: digest.clone(),
                        size,
                    });
                }
            }
        }
    }
    Ok(contents)
}

fn read_blob_text(layout: &Layout, digest: &Digest) -> Result<String, String> {
    // Kept: a source's InRelease serves each of its lists, read from the bundle once.
    let bytes = layout
        .read_kept(digest)
        .map_err(|e| e.to_string())?
        .as_ref()
        .clone();
    String::from_utf8(bytes).map_err(|_| format!("blob {digest} is not UTF-8 text"))
}

/// Copies a blob (its digest checked on the way) to `to`, through a temporary file beside it.
fn copy_blob(layout: &Layout, digest: &Digest, to: &Path) -> Result<(), MirrorError> {
    let mut reader = layout.open_blob(digest)?;
    let mut tmp = TempFile::beside(to, Access::Public).map_err(io(to))?;
    std::io::copy(&mut reader, &mut tmp).map_err(io(to))?;
    tmp.commit_deferred(to).map_err(io(to))
}

/// Reads what an existing mirror directory holds (as ferry wrote it), to merge with.
pub fn from_directory(root: &Path) -> Result<Contents, MirrorError> {
    let mut contents = Contents::default();
    let dists = root.join("dists");
    let Ok(suites) = std::fs::read_dir(&dists) else {
        return Ok(contents);
    };
    for suite_dir in suites {
        let suite_dir = suite_dir.map_err(io(&dists))?.path();
        let suite = suite_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let release_path = suite_dir.join("Release");
        let Ok(release_text) = std::fs::read_to_string(&release_path) else {
            continue;
        };
        let existing = |reason: String| MirrorError::Existing {
            path: release_path.clone(),
            reason,
        };
        let release = Release::parse(&release_text).map_err(|e| existing(e.to_string()))?;
        if let Some(date) = release.date.as_deref().and_then(parse_date) {
            contents.dates.push(date);
        }
        for (path, _) in release
            .sha256
            .iter()
            .filter(|(p, _)| p.ends_with("/Packages") && !p.contains("/by-hash/"))
        {
            let mut parts = path.split('/');
            let (Some(component), Some(list), Some("Packages"), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(list_arch) = list.strip_prefix("binary-") else {
                continue;
            };
            let file = suite_dir.join(path);
            let text = std::fs::read_to_string(&file).map_err(io(&file))?;
            let parsed = stanzas(&text).map_err(|e| MirrorError::Existing {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            contents
                .architectures
                .entry(suite.clone())
                .or_default()
                .insert(list_arch.to_string());
            contents
                .components
                .entry(suite.clone())
                .or_default()
                .insert(component.to_string());
            for stanza in parsed {
                let field = |name: &str| stanza.get(name).unwrap_or_default().to_string();
                let bad = |reason: &str| MirrorError::Existing {
                    path: file.clone(),
                    reason: format!(
                        "package {} {}: {reason}",
                        field("Package"),
                        field("Version")
                    ),
                };
                let filename = field("Filename");
                if pool_path(component, &field("Package"), &filename).as_deref()
                    != Some(filename.as_str())
                {
                    return Err(bad(
                        "its Filename is not a pool path ferry writes; this directory was not written by ferry",
                    ));
                }
                let digest =
                    Digest::parse(&format!("sha256:{}", field("SHA256").to_ascii_lowercase()))
                        .map_err(|_| bad("no valid SHA256"))?;
                contents.packages.push(MirrorPackage {
                    suite: suite.clone(),
                    component: component.to_string(),
                    list_arch: list_arch.to_string(),
                    package: field("Package"),
                    version: field("Version"),
                    architecture: field("Architecture"),
                    stanza: stanza.text.to_string(),
                    pool_path: filename,
                    digest,
                    size: field("Size").parse().unwrap_or(0),
                });
            }
        }
    }
    Ok(contents)
}

/// Merges `new` into `old`: the same package version in the same list is kept once; the same
/// version with other content is a conflict.
pub fn merge(old: Contents, new: Contents) -> Result<Contents, MirrorError> {
    let mut out = Contents {
        dates: old.dates.into_iter().chain(new.dates).collect(),
        architectures: old.architectures,
        components: old.components,
        packages: Vec::new(),
    };
    for (suite, archs) in new.architectures {
        out.architectures.entry(suite).or_default().extend(archs);
    }
    for (suite, comps) in new.components {
        out.components.entry(suite).or_default().extend(comps);
    }
    let mut seen: BTreeMap<(String, String, String, String, String, String), usize> =
        BTreeMap::new();
    let mut pool: BTreeMap<String, Digest> = BTreeMap::new();
    for p in old.packages.into_iter().chain(new.packages) {
        if let Some(existing) = pool.get(&p.pool_path)
            && *existing != p.digest
        {
            return Err(MirrorError::Conflict {
                what: format!("{} {} ({})", p.package, p.version, p.pool_path),
                first: existing.to_string(),
                second: p.digest.to_string(),
            });
        }
        pool.insert(p.pool_path.clone(), p.digest.clone());
        let key = (
            p.suite.clone(),
            p.component.clone(),
            p.list_arch.clone(),
            p.package.clone(),
            p.version.clone(),
            p.architecture.clone(),
        );
        match seen.get(&key) {
            Some(&i) => {
                let kept: &MirrorPackage = &out.packages[i];
                if kept.digest != p.digest {
                    return Err(MirrorError::Conflict {
                        what: format!("{} {} ({})", p.package, p.version, p.architecture),
                        first: kept.digest.to_string(),
                        second: p.digest.to_string(),
                    });
                }
            }
            None => {
                seen.insert(key, out.packages.len());
                out.packages.push(p);
            }
        }
    }
    Ok(out)
}

/// The mirror's index files (everything but the pool), by path below the mirror root, and the
/// suites they hold.
pub struct Rendered {
    /// Path to content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Suite to components.
    pub suites: BTreeMap<String, BTreeSet<String>>,
}

fn compress_gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}

fn compress_xz(bytes: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// Renders `Packages` lists, `Release`, `InRelease` and `Release.gpg` for every suite.
pub fn render(contents: &Contents, key: &SiteKey, now: u64) -> Result<Rendered, MirrorError> {
    let newest = contents.dates.iter().copied().max().unwrap_or(now as i64);
    let date = format_date(newest.clamp(0, now as i64) as u64);
    let mut files = BTreeMap::new();
    let mut suites = BTreeMap::new();
    for (suite, archs) in &contents.architectures {
        let components = contents.components.get(suite).cloned().unwrap_or_default();
        let mut hashes: Vec<(String, Vec<u8>)> = Vec::new();
        for component in &components {
            for arch in archs {
                let mut list: Vec<&MirrorPackage> = contents
                    .packages
                    .iter()
                    .filter(|p| {
                        &p.suite == suite && &p.component == component && &p.list_arch == arch
                    })
                    .collect();
                list.sort_by(|a, b| {
                    a.package.cmp(&b.package).then_with(|| {
                        match (parse_version(&a.version), parse_version(&b.version)) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            _ => a.version.cmp(&b.version),
                        }
                    })
                });
                let mut text = list
                    .iter()
                    .map(|p| p.stanza.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n");
                if !text.is_empty() {
                    text.push('\n');
                }
                let plain = text.into_bytes();
                let dir = format!("{component}/binary-{arch}");
                for (name, bytes) in [
                    ("Packages", plain.clone()),
                    ("Packages.gz", compress_gz(&plain)),
                    ("Packages.xz", compress_xz(&plain)),
                ] {
                    let digest = Digest::of_bytes(&bytes);
                    files.insert(
                        format!("dists/{suite}/{dir}/by-hash/SHA256/{}", digest.hex()),
                        bytes.clone(),
                    );
                    hashes.push((format!("{dir}/{name}"), bytes));
                }
            }
        }
        let mut release = format!(
            "Origin: ferry\nLabel: ferry\nSuite: {suite}\nCodename: {suite}\nDate: {date}\nArchitectures: {}\nComponents: {}\nAcquire-By-Hash: yes\nDescription: packages carried by ferry, signed with the site key\nSHA256:\n",
            archs.iter().cloned().collect::<Vec<_>>().join(" "),
            components.iter().cloned().collect::<Vec<_>>().join(" "),
        );
        for (path, bytes) in &hashes {
            release.push_str(&format!(
                " {} {:>16} {path}\n",
                Digest::of_bytes(bytes).hex(),
                bytes.len()
            ));
        }
        for (path, bytes) in hashes {
            files.insert(format!("dists/{suite}/{path}"), bytes);
        }
        files.insert(
            format!("dists/{suite}/InRelease"),
            key.clearsign(&release)?.into_bytes(),
        );
        files.insert(
            format!("dists/{suite}/Release.gpg"),
            key.sign_detached(release.as_bytes())?.into_bytes(),
        );
        files.insert(format!("dists/{suite}/Release"), release.into_bytes());
        suites.insert(suite.clone(), components);
    }
    Ok(Rendered { files, suites })
}

/// The deb822 sources file hosts install, naming the keyring by its host path.
pub fn sources_file(url: &str, suites: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut components: BTreeSet<&str> = BTreeSet::new();
    for c in suites.values() {
        components.extend(c.iter().map(String::as_str));
    }
    format!(
        "# Written by ferry. Install with the keyring: cp {KEYRING_FILE} {HOST_KEYRING_PATH}\nTypes: deb\nURIs: {url}\nSuites: {}\nComponents: {}\nSigned-By: {HOST_KEYRING_PATH}\n",
        suites.keys().cloned().collect::<Vec<_>>().join(" "),
        components.into_iter().collect::<Vec<_>>().join(" "),
    )
}

/// What an import wrote.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct WriteReport {
    /// `.deb` files copied into the pool.
    pub copied: usize,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// `.deb` files already in the pool.
    pub present: usize,
    /// Packages listed in the mirror now.
    pub packages: usize,
}

/// Copies the pool files the new contents need from the bundle into `root`, checking any file
/// already there.
pub fn copy_pool(
    layout: &Layout,
    root: &Path,
    new: &Contents,
    report: &mut WriteReport,
) -> Result<(), MirrorError> {
    let mut done = BTreeSet::new();
    // In the order the media holds them (packed volumes: each stick once).
    let mut ordered: Vec<&MirrorPackage> = new.packages.iter().collect();
    ordered.sort_by_key(|p| layout.blob_order_key(&p.digest));
    for p in ordered {
        if !done.insert(&p.pool_path) {
            continue;
        }
        let target = root.join(&p.pool_path);
        if !layout.has_blob(&p.digest) {
            // A delta's package left to its base: the importer hashed it already
            // (`delta::file_holds`), before anything was written.
            report.present += 1;
            continue;
        }
        if target.is_file() {
            let (actual, _) = crate::digest::hash_file(&target, |_| {}).map_err(io(&target))?;
            if actual == p.digest {
                report.present += 1;
                continue;
            }
            return Err(MirrorError::Conflict {
                what: format!("{} {} ({})", p.package, p.version, target.display()),
                first: actual.to_string(),
                second: p.digest.to_string(),
            });
        }
        let dir = target.parent().expect("pool paths have a directory");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        copy_blob(layout, &p.digest, &target)?;
        report.copied += 1;
        report.copied_bytes += p.size;
    }
    Ok(())
}

/// Writes the rendered index files: by-hash copies first, then the lists, and the release
/// files last, so a client never reads a `Release` naming files not yet there.
pub fn write_indexes(root: &Path, rendered: &Rendered) -> Result<(), MirrorError> {
    let rank = |path: &str| {
        if path.contains("/by-hash/") {
            0
        } else if path.ends_with("Release") || path.ends_with("Release.gpg") {
            2
        } else {
            1
        }
    };
    let mut ordered: Vec<(&String, &Vec<u8>)> = rendered.files.iter().collect();
    ordered.sort_by_key(|(p, _)| rank(p));
    for (path, bytes) in ordered {
        let target = root.join(path);
        let dir = target.parent().expect("index paths have a directory");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        write_public(&target, bytes)?;
    }
    Ok(())
}

/// Writes a mirror file atomically. Mirror files are public: apt reads them as its
/// unprivileged `_apt` user, web servers as theirs.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), MirrorError> {
    crate::fsutil::write_atomic(path, bytes, Access::Public).map_err(io(path))
}

/// Creates the mirror directory and sweeps the temporary files killed runs left anywhere in
/// it (pool and indexes).
pub fn prepare(root: &Path) -> Result<(), MirrorError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    crate::fsutil::sweep_tree(root).map_err(io(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_paths_are_plain() {
        assert_eq!(
            pool_path(
                "main",
                "libcurl4",
                "pool/main/c/curl/libcurl4_7.88.1-10_amd64.deb"
            )
            .as_deref(),
            Some("pool/main/libc/libcurl4/libcurl4_7.88.1-10_amd64.deb")
        );
        assert_eq!(
            pool_path("main", "curl", "x/curl_1_amd64.deb").as_deref(),
            Some("pool/main/c/curl/curl_1_amd64.deb")
        );
        assert_eq!(pool_path("main", "curl", "../../etc/passwd"), None);
        assert_eq!(pool_path("main", "curl", "pool/.."), None);
        assert_eq!(pool_path("..", "curl", "curl_1.deb"), None);
        assert_eq!(pool_path("main", "../x", "curl_1.deb"), None);
        assert!(plain_name("bookworm-security") && plain_name("updates/main"));
        assert!(
            !plain_name("../etc") && !plain_name("") && !plain_name("a//b") && !plain_name("/abs")
        );
    }

    #[test]
    fn filename_is_rewritten_in_place() {
        let s = "Package: a\nFilename: pool/x/a_1.deb\nSize: 3";
        assert_eq!(
            rewrite_filename(s, "pool/main/a/a/a_1.deb"),
            "Package: a\nFilename: pool/main/a/a/a_1.deb\nSize: 3"
        );
    }
}
