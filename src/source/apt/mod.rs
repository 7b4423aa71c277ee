//! apt sources: verify a distribution's signed `InRelease`, read its `Packages` indexes,
//! resolve a package request to exact versions (`ferry lock`), and carry the `.deb` files
//! with the upstream evidence into the bundle (`ferry build`).
//!
//! Trust runs as apt's does: the keyring verifies `InRelease` (only its signed text is read),
//! `InRelease` pins each `Packages` index by SHA256, and each `Packages` stanza pins its
//! `.deb` by size and SHA256, checked as the file streams into the store.

pub mod control;
pub mod release;
pub mod resolve;

/// The kind (`dev.ferry.kind`) of an apt source's artifact.
pub const KIND: &str = "apt";

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use futures_util::StreamExt;

use crate::digest::Digest;
use crate::layout::artifact::{
    ANNOTATION_TITLE, empty_config, index_entry, small_blob, write_manifest,
};
use crate::layout::oci::Descriptor;
use crate::layout::{Layout, LayoutError};
use crate::manifest::apt::{
    AptSpec, LockedApt, LockedAptRelease, LockedAptSource, LockedDeb, LockedFile, ManifestFile,
};
use crate::openpgp::{Keyring, PgpError};
use crate::progress::{Ui, human_bytes};
use crate::source::http::{HttpError, HttpSource};
use control::{ControlError, stanzas};
use release::Release;
use resolve::{Candidate, Installed, Options, ResolveError, Universe};

/// `artifactType` of an apt source's artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.ferry.apt.v1";
/// Media type of a `.deb` layer.
pub const MEDIA_DEB: &str = "application/vnd.debian.binary-package";
/// Media type of the verbatim `Packages` stanzas of what was taken (one suite, component and
/// architecture).
pub const MEDIA_PACKAGES: &str = "application/vnd.ferry.apt.packages.v1";
/// Media type of an upstream `InRelease`.
pub const MEDIA_INRELEASE: &str = "application/vnd.ferry.apt.inrelease.v1";
/// Media type of an upstream `Release` (suites without `InRelease`).
pub const MEDIA_RELEASE: &str = "application/vnd.ferry.apt.release.v1";
/// Media type of an upstream `Release.gpg`.
pub const MEDIA_RELEASE_GPG: &str = "application/vnd.ferry.apt.release-signature.v1";
/// Layer annotation: the suite.
pub const ANNOTATION_SUITE: &str = "dev.ferry.apt.suite";
/// Layer annotation: the component.
pub const ANNOTATION_COMPONENT: &str = "dev.ferry.apt.component";
/// Layer annotation: the architecture.
pub const ANNOTATION_ARCHITECTURE: &str = "dev.ferry.apt.architecture";
/// Layer annotation: the package name of a `.deb`.
pub const ANNOTATION_PACKAGE: &str = "dev.ferry.apt.package";
/// Layer annotation: the version of a `.deb`.
pub const ANNOTATION_VERSION: &str = "dev.ferry.apt.version";
/// Layer annotation: the upstream `Filename` of a `.deb`.
pub const ANNOTATION_FILENAME: &str = "dev.ferry.apt.filename";
/// Manifest annotation: the source's architectures, comma-separated.
pub const ANNOTATION_ARCHITECTURES: &str = "dev.ferry.apt.architectures";

/// Largest `InRelease` / `Release` read (Ubuntu's are under 1 MiB).
pub const RELEASE_LIMIT: u64 = 32 << 20;
/// Largest `Packages` index accepted, as downloaded and decompressed: it is read into memory.
/// Debian's and Ubuntu's largest (main and universe, amd64) are under 100 MiB.
pub const INDEX_LIMIT: u64 = 256 << 20;

/// Errors of the apt source; each names the file, URL or package, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    /// The keyring named in the manifest cannot be used.
    #[error("{manifest}:{line}:{column}: cannot use keyring {path}: {reason}")]
    Keyring {
        /// The manifest.
        manifest: String,
        /// Line of `keyring:`.
        line: usize,
        /// Column.
        column: usize,
        /// The keyring file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A download failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A signature did not verify.
    #[error(
        "{0}. Nothing from this source is taken: check that the mirror is genuine and that the keyring is the distribution's"
    )]
    Signature(PgpError),
    /// A release file is unusable.
    #[error("{url}: {reason}")]
    Release {
        /// The release file's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An index does not match what `Release` says.
    #[error(
        "{url} does not match the signed Release: {reason}. The mirror may be in the middle of an update: try again later or use another mirror"
    )]
    IndexMismatch {
        /// The index URL.
        url: String,
        /// What differs.
        reason: String,
    },
    /// A document larger than ferry reads into memory.
    #[error(
        "{url}: {what} larger than {} MiB, the limit for {limit_name} (see Limits in the README); nothing from this source is taken. Check the source's URL and suite: a genuine mirror's are far smaller",
        limit >> 20
    )]
    Limit {
        /// The URL.
        url: String,
        /// What was larger ("it is", "decompressed, it is", "Release says it is").
        what: String,
        /// The limit, in bytes.
        limit: u64,
        /// What the limit is for ("an apt Packages index").
        limit_name: &'static str,
    },
    /// Control data that does not parse.
    #[error("{what}: {error}")]
    Control {
        /// The file or URL.
        what: String,
        /// The parse error.
        error: ControlError,
    },
    /// The request cannot be satisfied.
    #[error("{error}\n  (resolving for {architecture} over: {sources})")]
    Resolve {
        /// Why.
        error: ResolveError,
        /// The architecture.
        architecture: String,
        /// The suites searched.
        sources: String,
    },
    /// A local file (the status file) cannot be read.
    #[error("{what}: {reason}")]
    File {
        /// The file and where the manifest names it.
        what: String,
        /// Why.
        reason: String,
    },
    /// A package stanza lacks what ferry needs, or has an unsafe `Filename`.
    #[error("package {package} in {url}: {reason}")]
    Stanza {
        /// The package.
        package: String,
        /// The index it is in.
        url: String,
        /// Why.
        reason: String,
    },
    /// The lock's apt part is inconsistent.
    #[error("the lock file's apt part is inconsistent: {0}. Regenerate it with `ferry lock`")]
    Lock(String),
    /// A `.deb` download failed.
    #[error("cannot fetch {package} {version} ({url}): {error}")]
    Deb {
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// URL.
        url: String,
        /// Why.
        error: Box<HttpError>,
    },
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A keyring loaded from the file a manifest names.
fn load_keyring(manifest: &str, file: &ManifestFile) -> Result<(Keyring, Digest), AptError> {
    let err = |reason: String| AptError::Keyring {
        manifest: manifest.to_string(),
        line: file.location.line,
        column: file.location.column,
        path: file.path.clone(),
        reason,
    };
    let bytes = std::fs::read(&file.path).map_err(|e| err(e.to_string()))?;
    let keyring = Keyring::from_bytes(&bytes, &file.path.display().to_string())
        .map_err(|e| err(e.to_string()))?;
    Ok((keyring, Digest::of_bytes(&bytes)))
}

/// A `Filename` is used in a URL and, on import, as a file name: only plain relative paths.
pub fn check_filename(filename: &str) -> Result<(), String> {
    let ok = !filename.is_empty()
        && !filename.starts_with('/')
        && filename.ends_with(".deb")
        && filename.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'_' | b'-' | b'+' | b'~' | b'%')
                })
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "its Filename {filename:?} is not a plain relative path to a .deb; refusing it"
        ))
    }
}

/// A verified release of one suite.
struct FetchedRelease {
    locked: LockedAptRelease,
    release: Release,
    url: String,
}

/// Fetches and verifies `dists/<suite>/InRelease`, or `Release` + `Release.gpg` when a
/// mirror has no `InRelease`.
async fn fetch_release(
    http: &HttpSource,
    keyring: &Keyring,
    base: &str,
    suite: &str,
) -> Result<FetchedRelease, AptError> {
    let dir = format!("{base}/dists/{suite}");
    let in_release_url = format!("{dir}/InRelease");
    let release_limit = |url: &str| {
        let url = url.to_string();
        move |e: HttpError| match e {
            HttpError::TooLarge { .. } => AptError::Limit {
                url: url.clone(),
                what: "it is".into(),
                limit: RELEASE_LIMIT,
                limit_name: "an apt InRelease / Release",
            },
            other => other.into(),
        }
    };
    let (locked, verified_text, url) = match http.fetch_small(&in_release_url, RELEASE_LIMIT).await
    {
        Ok(bytes) => {
            let verified = keyring
                .verify_cleartext(&bytes, &in_release_url, SystemTime::now())
                .map_err(AptError::Signature)?;
            let content = String::from_utf8(bytes).map_err(|_| AptError::Release {
                url: in_release_url.clone(),
                reason: "not UTF-8 text".into(),
            })?;
            (
                LockedAptRelease {
                    suite: suite.to_string(),
                    file: "InRelease".into(),
                    digest: Digest::of_bytes(content.as_bytes()),
                    date: None,
                    signed_by: verified.signer.clone(),
                    content,
                    signature: None,
                },
                verified.text,
                in_release_url,
            )
        }
        Err(HttpError::Status { status: 404, .. }) => {
            let release_url = format!("{dir}/Release");
            let data = http
                .fetch_small(&release_url, RELEASE_LIMIT)
                .await
                .map_err(release_limit(&release_url))?;
            let signature_url = format!("{release_url}.gpg");
            let signature = http
                .fetch_small(&signature_url, RELEASE_LIMIT)
                .await
                .map_err(release_limit(&signature_url))?;
            let verified = keyring
                .verify_detached(&data, &signature, &release_url, SystemTime::now())
                .map_err(AptError::Signature)?;
            (
                LockedAptRelease {
                    suite: suite.to_string(),
                    file: "Release".into(),
                    digest: Digest::of_bytes(&data),
                    date: None,
                    signed_by: verified.signer.clone(),
                    content: verified.text.clone(),
                    signature: Some(base64::engine::general_purpose::STANDARD.encode(&signature)),
                },
                verified.text,
                release_url,
            )
        }
        Err(e) => return Err(release_limit(&in_release_url)(e)),
    };
    let release = check_release(&verified_text, &url)?;
    let mut locked = locked;
    locked.date = release.date.clone();
    Ok(FetchedRelease {
        locked,
        release,
        url,
    })
}

/// Parses a verified release text and refuses an expired one, as apt does.
fn check_release(text: &str, url: &str) -> Result<Release, AptError> {
    let release = Release::parse(text).map_err(|e| AptError::Release {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(until) = &release.valid_until
        && let Some(t) = release::parse_date(until)
        && t < crate::time::now_secs() as i64
    {
        return Err(AptError::Release {
            url: url.to_string(),
            reason: format!(
                "the release expired on {until} (Valid-Until): the mirror is stale; use an up-to-date mirror"
            ),
        });
    }
    Ok(release)
}

/// A decompressed `Packages` index and where it came from.
struct IndexText {
    source: usize,
    suite: String,
    component: String,
    architecture: String,
    url: String,
    text: String,
}

/// Fetches one `Packages` index (xz, gz or plain, whichever `Release` lists first), checks it
/// against the signed hash and decompresses it.
async fn fetch_index(
    http: &HttpSource,
    release: &FetchedRelease,
    base: &str,
    suite: &str,
    path_stem: &str,
) -> Result<Option<(String, String)>, AptError> {
    for (suffix, kind) in [(".xz", "xz"), (".gz", "gz"), ("", "plain")] {
        let path = format!("{path_stem}{suffix}");
        let Some(entry) = release.release.sha256.get(&path) else {
            continue;
        };
        let url = format!("{base}/dists/{suite}/{path}");
        if entry.size > INDEX_LIMIT {
            return Err(AptError::Limit {
                url,
                what: format!("the signed Release says it has {} bytes,", entry.size),
                limit: INDEX_LIMIT,
                limit_name: "an apt Packages index",
            });
        }
        let bytes = http
            .fetch_small(&url, entry.size.max(1))
            .await
            .map_err(|e| match e {
                HttpError::TooLarge { .. } => AptError::IndexMismatch {
                    url: url.clone(),
                    reason: format!("it is larger than the {} bytes Release states", entry.size),
                },
                other => other.into(),
            })?;
        let actual = Digest::of_bytes(&bytes).hex().to_string();
        if bytes.len() as u64 != entry.size || actual != entry.sha256 {
            return Err(AptError::IndexMismatch {
                url,
                reason: format!(
                    "it has {} bytes and SHA256 {actual}, Release says {} bytes and {}",
                    bytes.len(),
                    entry.size,
                    entry.sha256
                ),
            });
        }
        let text = decompress(&bytes, kind).map_err(|reason| match reason {
            Decompress::TooLarge => AptError::Limit {
                url: url.clone(),
                what: "decompressed, it is".into(),
                limit: INDEX_LIMIT,
                limit_name: "an apt Packages index",
            },
            Decompress::Failed(reason) => AptError::IndexMismatch {
                url: url.clone(),
                reason: format!("cannot decompress it: {reason}"),
            },
        })?;
        return Ok(Some((url, text)));
    }
    Ok(None)
}

/// Why an index could not be decompressed.
enum Decompress {
    /// It grows past [`INDEX_LIMIT`].
    TooLarge,
    /// Not valid xz/gzip, or not text.
    Failed(String),
}

/// Decompresses an index, reading no more than [`INDEX_LIMIT`] bytes of it (a small archive
/// may unpack to gigabytes).
fn decompress(bytes: &[u8], kind: &str) -> Result<String, Decompress> {
    let mut out = Vec::new();
    let result = match kind {
        "xz" => liblzma::read::XzDecoder::new(bytes)
            .take(INDEX_LIMIT + 1)
            .read_to_end(&mut out),
        "gz" => flate2::read::GzDecoder::new(bytes)
            .take(INDEX_LIMIT + 1)
            .read_to_end(&mut out),
        _ => {
            out.extend_from_slice(bytes);
            Ok(out.len())
        }
    };
    result.map_err(|e| Decompress::Failed(e.to_string()))?;
    if out.len() as u64 > INDEX_LIMIT {
        return Err(Decompress::TooLarge);
    }
    String::from_utf8(out).map_err(|_| Decompress::Failed("the index is not UTF-8 text".into()))
}

/// Resolves the manifest's apt request: verifies every suite's release, reads the indexes,
/// and picks every package with its exact version. `manifest` names the file in messages.
pub async fn lock(
    ui: &Ui,
    manifest: &str,
    spec: &AptSpec,
    http: &HttpSource,
) -> Result<LockedApt, AptError> {
    let installed = match &spec.exclude_installed {
        None => (Installed::default(), None),
        Some(file) => {
            let what = format!(
                "{manifest}:{}:{}: exclude-installed file {}",
                file.location.line,
                file.location.column,
                file.path.display()
            );
            let text = std::fs::read_to_string(&file.path).map_err(|e| AptError::File {
                what: what.clone(),
                reason: e.to_string(),
            })?;
            let installed = Installed::parse(&text).map_err(|e| AptError::File {
                what,
                reason: format!("not a dpkg status file: {e}"),
            })?;
            ui.status(format!(
                "apt: {} packages count as installed ({})",
                installed.len(),
                file.written
            ));
            (
                installed,
                Some(LockedFile {
                    path: file.written.clone(),
                    digest: Digest::of_bytes(text.as_bytes()),
                }),
            )
        }
    };
    let mut sources: Vec<LockedAptSource> = Vec::new();
    let mut indexes: Vec<IndexText> = Vec::new();
    for (number, source) in spec.sources.iter().enumerate() {
        let (keyring, keyring_digest) = load_keyring(manifest, &source.keyring)?;
        let mut releases = Vec::new();
        for suite in &source.suites {
            let fetched = fetch_release(http, &keyring, &source.url, suite).await?;
            ui.status(format!(
                "apt: {} verified (signed by {})",
                fetched.url, fetched.locked.signed_by
            ));
            let mut architectures: Vec<&str> =
                source.architectures.iter().map(String::as_str).collect();
            if !fetched.release.all_in_every_architecture
                && fetched.release.architectures.iter().any(|a| a == "all")
            {
                architectures.push("all");
            }
            for component in &source.components {
                for arch in &architectures {
                    let stem = format!("{component}/binary-{arch}/Packages");
                    match fetch_index(http, &fetched, &source.url, suite, &stem).await? {
                        Some((url, text)) => indexes.push(IndexText {
                            source: number,
                            suite: suite.clone(),
                            component: component.clone(),
                            architecture: arch.to_string(),
                            url,
                            text,
                        }),
                        None if *arch == "all" => {}
                        None => {
                            return Err(AptError::Release {
                                url: fetched.url.clone(),
                                reason: format!(
                                    "it lists no {stem} (.xz, .gz or plain): check the component and architecture in the manifest (the suite has components {} and architectures {})",
                                    fetched.release.components.join(" "),
                                    fetched.release.architectures.join(" ")
                                ),
                            });
                        }
                    }
                }
            }
            releases.push(fetched.locked);
        }
        sources.push(LockedAptSource {
            url: source.url.clone(),
            suites: source.suites.clone(),
            components: source.components.clone(),
            architectures: source.architectures.clone(),
            keyring: LockedFile {
                path: source.keyring.written.clone(),
                digest: keyring_digest,
            },
            releases,
            packages: Vec::new(),
        });
    }

    let parsed: Vec<Vec<control::Stanza<'_>>> = indexes
        .iter()
        .map(|index| {
            stanzas(&index.text).map_err(|error| AptError::Control {
                what: index.url.clone(),
                error,
            })
        })
        .collect::<Result<_, _>>()?;
    let requests: Vec<(String, control::Relation)> = spec
        .packages
        .iter()
        .map(|p| (p.text.clone(), p.relation.clone()))
        .collect();
    let mut architectures: BTreeSet<&str> = BTreeSet::new();
    for s in &spec.sources {
        architectures.extend(s.architectures.iter().map(String::as_str));
    }
    let mut taken: BTreeSet<(usize, usize)> = BTreeSet::new();
    for arch in &architectures {
        let mut universe = Universe::default();
        for (i, index) in indexes.iter().enumerate() {
            if index.architecture != *arch && index.architecture != "all" {
                continue;
            }
            for (j, stanza) in parsed[i].iter().enumerate() {
                match stanza.get("Architecture") {
                    Some(a) if a == *arch || a == "all" => {}
                    _ => continue,
                }
                let candidate =
                    Candidate::from_fields(|n| stanza.get(n), (i, j)).map_err(|error| {
                        AptError::Control {
                            what: format!("{} (stanza at line {})", index.url, stanza.line),
                            error,
                        }
                    })?;
                universe.add(candidate);
            }
        }
        let options = Options {
            architecture: arch.to_string(),
            recommends: spec.recommends,
        };
        let resolution =
            resolve::resolve(&universe, &installed.0, &requests, &options).map_err(|error| {
                AptError::Resolve {
                    error,
                    architecture: arch.to_string(),
                    sources: spec
                        .sources
                        .iter()
                        .map(|s| format!("{} [{}]", s.url, s.suites.join(" ")))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
        for note in &resolution.notes {
            ui.status(format!("apt ({arch}): {note}"));
        }
        taken.extend(resolution.chosen.iter().map(|&c| universe.get(c).origin));
    }

    for (i, j) in taken {
        let index = &indexes[i];
        let stanza = &parsed[i][j];
        let package = stanza.get("Package").unwrap_or("?").to_string();
        let bad = |reason: String| AptError::Stanza {
            package: package.clone(),
            url: index.url.clone(),
            reason,
        };
        let filename = stanza
            .get("Filename")
            .ok_or_else(|| bad("its stanza has no Filename".into()))?;
        check_filename(filename).map_err(&bad)?;
        let size: u64 = stanza
            .get("Size")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("its stanza has no valid Size".into()))?;
        let sha256 = stanza
            .get("SHA256")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                bad(
                    "its stanza has no valid SHA256 (ferry does not trust MD5 or SHA1 alone)"
                        .into(),
                )
            })?;
        sources[index.source].packages.push(LockedDeb {
            package: package.clone(),
            version: stanza.get("Version").unwrap_or_default().to_string(),
            architecture: stanza.get("Architecture").unwrap_or_default().to_string(),
            size,
            sha256: sha256.to_ascii_lowercase(),
            suite: index.suite.clone(),
            component: index.component.clone(),
            filename: filename.to_string(),
            stanza: stanza.text.to_string(),
        });
    }
    for s in &mut sources {
        s.packages.sort_by(|a, b| {
            (&a.package, &a.architecture, &a.version, &a.suite).cmp(&(
                &b.package,
                &b.architecture,
                &b.version,
                &b.suite,
            ))
        });
        // The same .deb in two suites (or components) is carried once.
        s.packages
            .dedup_by(|a, b| a.filename == b.filename && a.sha256 == b.sha256);
    }
    let count: usize = sources.iter().map(|s| s.packages.len()).sum();
    let bytes: u64 = sources
        .iter()
        .flat_map(|s| s.packages.iter())
        .map(|p| p.size)
        .sum();
    ui.status(format!(
        "apt: {} packages requested, {count} packages ({}) to carry",
        spec.packages.len(),
        human_bytes(bytes)
    ));
    Ok(LockedApt {
        packages: spec.packages.iter().map(|p| p.text.clone()).collect(),
        recommends: spec.recommends,
        exclude_installed: installed.1,
        sources,
    })
}

/// Checks a locked release against the keyring again and returns its verified text.
fn reverify(
    keyring: &Keyring,
    source: &LockedAptSource,
    release: &LockedAptRelease,
) -> Result<(), AptError> {
    let url = format!("{}/dists/{}/{}", source.url, release.suite, release.file);
    if Digest::of_bytes(release.content.as_bytes()) != release.digest {
        return Err(AptError::Lock(format!(
            "the content of {url} does not match its digest"
        )));
    }
    match &release.signature {
        None => keyring
            .verify_cleartext(release.content.as_bytes(), &url, SystemTime::now())
            .map(|_| ()),
        Some(signature) => {
            let signature = base64::engine::general_purpose::STANDARD
                .decode(signature)
                .map_err(|e| {
                    AptError::Lock(format!("the signature of {url} is not base64: {e}"))
                })?;
            keyring
                .verify_detached(
                    release.content.as_bytes(),
                    &signature,
                    &url,
                    SystemTime::now(),
                )
                .map(|_| ())
        }
    }
    .map_err(AptError::Signature)
}

/// Checks that a locked package's stanza says what the lock says.
fn check_locked_deb(deb: &LockedDeb) -> Result<Digest, AptError> {
    let bad =
        |what: &str| AptError::Lock(format!("package {} {}: {what}", deb.package, deb.version));
    let parsed =
        stanzas(&deb.stanza).map_err(|e| bad(&format!("its stanza does not parse: {e}")))?;
    let [stanza] = &parsed[..] else {
        return Err(bad("its stanza is not one stanza"));
    };
    let fields = [
        ("Package", deb.package.clone()),
        ("Version", deb.version.clone()),
        ("Architecture", deb.architecture.clone()),
        ("Filename", deb.filename.clone()),
        ("Size", deb.size.to_string()),
        ("SHA256", deb.sha256.clone()),
    ];
    for (name, value) in fields {
        if stanza.get(name).map(str::to_ascii_lowercase) != Some(value.to_ascii_lowercase()) {
            return Err(bad(&format!("its stanza's {name} differs from the lock")));
        }
    }
    check_filename(&deb.filename).map_err(|e| bad(&e))?;
    Digest::parse(&format!("sha256:{}", deb.sha256)).map_err(|e| bad(&e.to_string()))
}

/// What `build` did for apt.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuildStats {
    /// `.deb` files in the bundle.
    pub debs: usize,
    /// Of those, downloaded now.
    pub fetched: usize,
    /// Bytes downloaded.
    pub fetched_bytes: u64,
}

/// Fetches every locked `.deb` into the store (size and SHA256 checked as it streams in) and
/// writes one artifact per source; returns their index entries.
pub async fn build(
    ui: &Ui,
    layout: &Layout,
    manifest: &str,
    spec: &AptSpec,
    locked: &LockedApt,
    http: &HttpSource,
    jobs: usize,
) -> Result<(Vec<Descriptor>, BuildStats), AptError> {
    let mut stats = BuildStats::default();
    // Check everything before the first download.
    let mut plans = Vec::new();
    for source in &locked.sources {
        let manifest_source = spec
            .sources
            .iter()
            .find(|s| s.url == source.url)
            .ok_or_else(|| {
                AptError::Lock(format!("source {} is not in the manifest", source.url))
            })?;
        let (keyring, _) = load_keyring(manifest, &manifest_source.keyring)?;
        for release in &source.releases {
            reverify(&keyring, source, release)?;
        }
        for deb in &source.packages {
            let digest = check_locked_deb(deb)?;
            plans.push((source, deb, digest));
        }
    }
    let missing: Vec<_> = plans
        .iter()
        .filter(|(_, _, digest)| !layout.has_blob(digest))
        .collect();
    let missing_bytes: u64 = missing.iter().map(|(_, d, _)| d.size).sum();
    if !missing.is_empty() {
        ui.status(format!(
            "apt: fetching {} packages ({})",
            missing.len(),
            human_bytes(missing_bytes)
        ));
    }
    let bar = Arc::new(ui.bytes_bar(missing_bytes, "apt"));
    let results: Vec<Result<u64, AptError>> = futures_util::stream::iter(missing.iter())
        .map(|(source, deb, digest)| {
            let bar = bar.clone();
            async move {
                let url = format!("{}/{}", source.url, deb.filename);
                let on_bytes = |n: u64| bar.inc(n);
                http.fetch_to_store(&url, Some(digest), Some(deb.size), layout, &on_bytes)
                    .await
                    .map(|(_, n)| n)
                    .map_err(|error| AptError::Deb {
                        package: deb.package.clone(),
                        version: deb.version.clone(),
                        url,
                        error: Box::new(error),
                    })
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    for r in results {
        stats.fetched_bytes += r?;
        stats.fetched += 1;
    }
    stats.debs = plans.len();

    let mut entries = Vec::new();
    for source in &locked.sources {
        let descriptor = write_artifact(layout, source)?;
        entries.push(index_entry(&descriptor, KIND, &source.url));
    }
    Ok((entries, stats))
}

fn annotated(mut d: Descriptor, pairs: &[(&str, &str)]) -> Descriptor {
    for (k, v) in pairs {
        d.annotations.insert((*k).to_string(), (*v).to_string());
    }
    d
}

/// The artifact of one source: its release files, the stanzas taken (one layer per suite,
/// component and architecture) and the `.deb` files, in a fixed order.
fn write_artifact(layout: &Layout, source: &LockedAptSource) -> Result<Descriptor, AptError> {
    let config = empty_config(layout)?;
    let mut layers = Vec::new();
    for release in &source.releases {
        let title = format!("dists/{}/{}", release.suite, release.file);
        let media = if release.signature.is_some() {
            MEDIA_RELEASE
        } else {
            MEDIA_INRELEASE
        };
        let d = small_blob(layout, media, release.content.as_bytes())?;
        layers.push(annotated(
            d,
            &[
                (ANNOTATION_TITLE, &title),
                (ANNOTATION_SUITE, &release.suite),
            ],
        ));
        if let Some(signature) = &release.signature {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(signature)
                .map_err(|e| AptError::Lock(e.to_string()))?;
            let d = small_blob(layout, MEDIA_RELEASE_GPG, &bytes)?;
            layers.push(annotated(
                d,
                &[
                    (ANNOTATION_TITLE, &format!("{title}.gpg")),
                    (ANNOTATION_SUITE, &release.suite),
                ],
            ));
        }
    }
    let mut lists: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for deb in &source.packages {
        lists
            .entry((&deb.suite, &deb.component, &deb.architecture))
            .or_default()
            .push(&deb.stanza);
    }
    for ((suite, component, arch), list) in &lists {
        let mut text = list.join("\n\n");
        text.push('\n');
        let d = small_blob(layout, MEDIA_PACKAGES, text.as_bytes())?;
        layers.push(annotated(
            d,
            &[
                (
                    ANNOTATION_TITLE,
                    &format!("dists/{suite}/{component}/binary-{arch}/Packages"),
                ),
                (ANNOTATION_SUITE, suite),
                (ANNOTATION_COMPONENT, component),
                (ANNOTATION_ARCHITECTURE, arch),
            ],
        ));
    }
    for deb in &source.packages {
        let digest = Digest::parse(&format!("sha256:{}", deb.sha256))
            .map_err(|e| AptError::Lock(e.to_string()))?;
        let title = deb.filename.rsplit('/').next().unwrap_or(&deb.filename);
        let d = Descriptor {
            media_type: MEDIA_DEB.to_string(),
            digest,
            size: deb.size,
            platform: None,
            annotations: BTreeMap::new(),
            artifact_type: None,
        };
        layers.push(annotated(
            d,
            &[
                (ANNOTATION_TITLE, title),
                (ANNOTATION_PACKAGE, &deb.package),
                (ANNOTATION_VERSION, &deb.version),
                (ANNOTATION_ARCHITECTURE, &deb.architecture),
                (ANNOTATION_SUITE, &deb.suite),
                (ANNOTATION_COMPONENT, &deb.component),
                (ANNOTATION_FILENAME, &deb.filename),
            ],
        ));
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_ARCHITECTURES.to_string(),
        source.architectures.join(","),
    );
    Ok(write_manifest(
        layout,
        Some(ARTIFACT_TYPE),
        &config,
        &layers,
        &annotations,
    )?)
}
