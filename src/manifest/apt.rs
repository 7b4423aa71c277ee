//! `spec.apt` of the manifest and its part of the lock.
//!
//! ```yaml
//! spec:
//!   apt:
//!     sources:
//!       - url: http://archive.ubuntu.com/ubuntu
//!         suites: [jammy, jammy-updates, jammy-security]
//!         components: [main, universe]
//!         architectures: [amd64]
//!         keyring: keys/ubuntu-archive-keyring.gpg     # relative to the manifest
//!     packages: [curl, open-iscsi, "policycoreutils (>= 3.3)"]
//!     recommends: false
//!     exclude-installed: manifests/ubuntu-22.04-server.status   # optional
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{Location, ManifestError, Validator};
use crate::digest::Digest;
use crate::source::apt::control::{Relation, parse_relation};

/// `spec.apt`: apt sources and the packages to carry from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSpec {
    /// Where packages come from, in priority order for equal versions.
    pub sources: Vec<AptSource>,
    /// What to install on the hosts, as relations (`name`, `name (>= 1.2)`, `a | b`).
    pub packages: Vec<AptPackage>,
    /// Follow `Recommends` too.
    pub recommends: bool,
    /// A dpkg status file of the hosts' base system: what it has is not carried.
    pub exclude_installed: Option<ManifestFile>,
    /// Position of `apt:`.
    pub location: Location,
}

/// A file a manifest names, relative to the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// As written.
    pub written: String,
    /// Resolved against the manifest's directory.
    pub path: PathBuf,
    /// Position in the manifest.
    pub location: Location,
}

/// One apt repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// Base URL, without a trailing `/`.
    pub url: String,
    /// Suites (`dists/<suite>`).
    pub suites: Vec<String>,
    /// Components.
    pub components: Vec<String>,
    /// Architectures (besides `all`, which is always included).
    pub architectures: Vec<String>,
    /// The keyring its `InRelease` must be signed with.
    pub keyring: ManifestFile,
    /// Position of the entry.
    pub location: Location,
}

/// One requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptPackage {
    /// As written.
    pub text: String,
    /// Parsed.
    pub relation: Relation,
    /// Position in the manifest.
    pub location: Location,
}

/// The raw YAML shapes.
pub(super) mod raw {
    use serde::Deserialize;
    use serde_saphyr::Spanned;

    use super::super::raw::SpannedList;

    /// `spec.apt`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct Apt {
        pub sources: Option<Spanned<Vec<Spanned<Source>>>>,
        pub packages: Option<SpannedList>,
        pub recommends: Option<Spanned<bool>>,
        pub exclude_installed: Option<Spanned<String>>,
    }

    /// An entry of `spec.apt.sources`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Source {
        pub url: Option<Spanned<String>>,
        pub suites: Option<SpannedList>,
        pub components: Option<SpannedList>,
        pub architectures: Option<SpannedList>,
        pub keyring: Option<Spanned<String>>,
    }
}

impl Validator<'_> {
    fn invalid(&self, location: Location, message: String) -> ManifestError {
        ManifestError::Structure {
            path: self.path.to_owned(),
            location,
            message,
        }
    }

    fn file(&self, value: Spanned<String>) -> ManifestFile {
        let base = self.path.parent().unwrap_or(Path::new(""));
        ManifestFile {
            path: base.join(&value.value),
            location: self.loc(&value.referenced),
            written: value.value,
        }
    }

    /// Validates `spec.apt`.
    pub(super) fn apt(&self, apt: Spanned<raw::Apt>) -> Result<AptSpec, ManifestError> {
        let location = self.loc(&apt.referenced);
        let apt = apt.value;
        let sources = self.required(
            apt.sources,
            location,
            "apt.sources",
            "add the apt repositories, e.g. `sources: [{url: http://deb.debian.org/debian, suites: [bookworm], components: [main], keyring: debian-archive-keyring.gpg}]`".to_owned(),
        )?;
        if sources.value.is_empty() {
            return Err(self.invalid(
                self.loc(&sources.referenced),
                "apt.sources is empty; list at least one apt repository".into(),
            ));
        }
        let mut out_sources = Vec::new();
        let mut urls: HashMap<String, Location> = HashMap::new();
        for source in sources.value {
            let s = self.apt_source(source)?;
            if let Some(first) = urls.get(&s.url) {
                return Err(self.invalid(
                    s.location,
                    format!(
                        "apt source {} is already listed at line {}; merge the two entries",
                        s.url, first.line
                    ),
                ));
            }
            urls.insert(s.url.clone(), s.location);
            out_sources.push(s);
        }
        let packages = self.required(
            apt.packages,
            location,
            "apt.packages",
            "add the packages to carry, e.g. `packages: [curl]`".to_owned(),
        )?;
        if packages.value.is_empty() {
            return Err(self.invalid(
                self.loc(&packages.referenced),
                "apt.packages is empty; list at least one package".into(),
            ));
        }
        let mut out_packages: Vec<AptPackage> = Vec::new();
        for item in packages.value {
            let at = self.loc(&item.referenced);
            let relation = parse_relation(&item.value).map_err(|e| {
                self.invalid(
                    at,
                    format!(
                        "invalid apt package {:?}: {e}; write a name, optionally with a version constraint, e.g. \"policycoreutils (>= 3.3)\"",
                        item.value
                    ),
                )
            })?;
            let text = item.value.trim().to_string();
            if let Some(first) = out_packages.iter().find(|p| p.text == text) {
                return Err(self.invalid(
                    at,
                    format!(
                        "apt package {text:?} is already listed at line {}; remove one",
                        first.location.line
                    ),
                ));
            }
            out_packages.push(AptPackage {
                text,
                relation,
                location: at,
            });
        }
        Ok(AptSpec {
            sources: out_sources,
            packages: out_packages,
            recommends: apt.recommends.map(|r| r.value).unwrap_or(false),
            exclude_installed: apt.exclude_installed.map(|f| self.file(f)),
            location,
        })
    }

    fn apt_source(&self, source: Spanned<raw::Source>) -> Result<AptSource, ManifestError> {
        let location = self.loc(&source.referenced);
        let source = source.value;
        let url = self.required(
            source.url,
            location,
            "url",
            "add the repository's base URL, e.g. `url: http://archive.ubuntu.com/ubuntu`".into(),
        )?;
        let url_at = self.loc(&url.referenced);
        let trimmed = url.value.trim().trim_end_matches('/').to_string();
        let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
            && reqwest::Url::parse(&trimmed).is_ok_and(|u| {
                u.host_str().is_some() && u.query().is_none() && u.fragment().is_none()
            });
        if !ok {
            return Err(self.invalid(
                url_at,
                format!(
                    "invalid apt source url {:?}: use http:// or https:// with a host and no query, e.g. http://deb.debian.org/debian",
                    url.value
                ),
            ));
        }
        let names = |list: Option<super::raw::SpannedList>,
                     field: &'static str,
                     example: &str,
                     default: Option<&str>|
         -> Result<Vec<String>, ManifestError> {
            let Some(list) = list else {
                return match default {
                    Some(d) => Ok(vec![d.to_string()]),
                    None => Err(ManifestError::MissingField {
                        path: self.path.to_owned(),
                        location,
                        field: field.to_string(),
                        hint: format!("add e.g. `{field}: [{example}]`"),
                    }),
                };
            };
            if list.value.is_empty() {
                return Err(self.invalid(
                    self.loc(&list.referenced),
                    format!("{field} is empty; list at least one, e.g. [{example}]"),
                ));
            }
            let mut out: Vec<String> = Vec::new();
            for item in list.value {
                let at = self.loc(&item.referenced);
                if !valid_name(&item.value) || (field == "architectures" && item.value == "all") {
                    return Err(self.invalid(
                        at,
                        format!(
                            "invalid {} {:?}: use letters, digits, '.', '_', '-', '+', '~' (and '/' between parts){}",
                            field.trim_end_matches('s'),
                            item.value,
                            if field == "architectures" { "; `all` packages are always included" } else { "" }
                        ),
                    ));
                }
                if out.contains(&item.value) {
                    return Err(self.invalid(
                        at,
                        format!("{field} lists {:?} twice; remove one", item.value),
                    ));
                }
                out.push(item.value);
            }
            Ok(out)
        };
        let suites = names(source.suites, "suites", "bookworm, bookworm-updates", None)?;
        let components = names(source.components, "components", "main", None)?;
        let architectures = names(
            source.architectures,
            "architectures",
            "amd64",
            Some("amd64"),
        )?;
        let keyring = self.required(
            source.keyring,
            location,
            "keyring",
            "add the distribution's keyring, relative to the manifest, e.g. `keyring: keys/debian-archive-keyring.gpg` (ferry takes nothing unsigned)".into(),
        )?;
        Ok(AptSource {
            url: trimmed,
            suites,
            components,
            architectures,
            keyring: self.file(keyring),
            location,
        })
    }
}

/// Suite, component and architecture names end up in paths: keep them plain and short.
fn valid_name(name: &str) -> bool {
    name.len() <= 100 && plain_name(name)
}

/// A suite, component or architecture name fit for a path: plain parts, `/` between them.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'~')
                })
        })
}

/// The apt part of a lock: the request it answers and, per source, the verified release
/// files and the exact packages taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedApt {
    /// The requested packages, as written in the manifest.
    pub packages: Vec<String>,
    /// Whether `Recommends` were followed.
    pub recommends: bool,
    /// The status file of installed packages, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_installed: Option<LockedFile>,
    /// One entry per source, in manifest order.
    pub sources: Vec<LockedAptSource>,
}

/// A local file the lock depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedFile {
    /// As written in the manifest.
    pub path: String,
    /// Its content's digest.
    pub digest: Digest,
}

/// One apt source, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedAptSource {
    /// Base URL.
    pub url: String,
    /// Suites.
    pub suites: Vec<String>,
    /// Components.
    pub components: Vec<String>,
    /// Architectures.
    pub architectures: Vec<String>,
    /// The keyring that verified the releases.
    pub keyring: LockedFile,
    /// The signed release file of each suite, byte for byte.
    pub releases: Vec<LockedAptRelease>,
    /// Every package taken from this source.
    pub packages: Vec<LockedDeb>,
}

/// A suite's signed release file as fetched and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedAptRelease {
    /// The suite.
    pub suite: String,
    /// `InRelease`, or `Release` (then `signature` holds `Release.gpg`).
    pub file: String,
    /// Digest of `content`.
    pub digest: Digest,
    /// The release's `Date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Fingerprint of the key whose signature verified.
    pub signed_by: String,
    /// The file's content.
    pub content: String,
    /// `Release.gpg`, base64, when the suite has no `InRelease`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// One `.deb`, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedDeb {
    /// Package name.
    pub package: String,
    /// Exact version.
    pub version: String,
    /// Architecture (`all` or one of the source's).
    pub architecture: String,
    /// Size in bytes, from `Packages`.
    pub size: u64,
    /// SHA256 (hex), from `Packages`.
    pub sha256: String,
    /// Suite it was taken from.
    pub suite: String,
    /// Component it was taken from.
    pub component: String,
    /// `Filename`: its path below the source URL.
    pub filename: String,
    /// Its `Packages` stanza, byte for byte.
    pub stanza: String,
}

/// The digest of a local file, for the lock; `None` when it cannot be read.
pub fn file_digest(path: &Path) -> Option<Digest> {
    std::fs::read(path).ok().map(|b| Digest::of_bytes(&b))
}

/// What differs between the lock's apt part and the manifest's, for messages.
pub fn differences(locked: Option<&LockedApt>, spec: Option<&AptSpec>) -> Vec<String> {
    let (locked, spec) = match (locked, spec) {
        (None, None) => return Vec::new(),
        (None, Some(_)) => return vec!["apt packages are not in the lock".into()],
        (Some(_), None) => {
            return vec!["apt packages are in the lock but no longer in the manifest".into()];
        }
        (Some(l), Some(s)) => (l, s),
    };
    let mut out = Vec::new();
    let wanted: Vec<String> = spec.packages.iter().map(|p| p.text.clone()).collect();
    if locked.packages != wanted {
        out.push(format!(
            "apt packages are [{}] in the lock but [{}] in the manifest",
            locked.packages.join(", "),
            wanted.join(", ")
        ));
    }
    if locked.recommends != spec.recommends {
        out.push(format!(
            "apt recommends is {} in the lock but {} in the manifest",
            locked.recommends, spec.recommends
        ));
    }
    match (&locked.exclude_installed, &spec.exclude_installed) {
        (None, None) => {}
        (Some(l), Some(s)) if l.path == s.written => {
            if file_digest(&s.path).as_ref() != Some(&l.digest) {
                out.push(format!(
                    "apt exclude-installed file {} changed since the lock",
                    s.written
                ));
            }
        }
        _ => out.push("apt exclude-installed differs between the lock and the manifest".into()),
    }
    if locked.sources.len() != spec.sources.len() {
        out.push("apt sources differ between the lock and the manifest".into());
        return out;
    }
    for (l, s) in locked.sources.iter().zip(&spec.sources) {
        if l.url != s.url
            || l.suites != s.suites
            || l.components != s.components
            || l.architectures != s.architectures
        {
            out.push(format!(
                "apt source {} has other suites, components or architectures in the lock",
                s.url
            ));
        } else if l.keyring.path != s.keyring.written
            || file_digest(&s.keyring.path).as_ref() != Some(&l.keyring.digest)
        {
            out.push(format!(
                "the keyring of apt source {} ({}) changed since the lock",
                s.url, s.keyring.written
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::Manifest;

    const HEAD: &str = "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: p, version: \"1\"}\nspec:\n  apt:\n";

    fn parse(apt: &str) -> Result<Manifest, String> {
        Manifest::parse(&format!("{HEAD}{apt}"), Path::new("m/platform.yaml"))
            .map_err(|e| e.to_string())
    }

    const SOURCE: &str = "    sources:\n      - url: http://deb.debian.org/debian/\n        suites: [bookworm, bookworm-updates]\n        components: [main]\n        keyring: keys/debian.gpg\n";

    #[test]
    fn parses_sources_and_packages() {
        let m = parse(&format!(
            "{SOURCE}    packages: [curl, \"policycoreutils (>= 3.3)\", \"a | b\"]\n    recommends: true\n    exclude-installed: base.status\n"
        ))
        .unwrap();
        let apt = m.spec.apt.unwrap();
        let s = &apt.sources[0];
        assert_eq!(s.url, "http://deb.debian.org/debian");
        assert_eq!(s.architectures, ["amd64"]);
        assert_eq!(s.keyring.path, Path::new("m/keys/debian.gpg"));
        assert_eq!(
            (s.keyring.location.line, s.keyring.location.column),
            (10, 18)
        );
        assert_eq!(
            apt.packages[1].relation.to_string(),
            "policycoreutils (>= 3.3)"
        );
        assert_eq!(apt.packages[2].relation.alternatives.len(), 2);
        assert!(apt.recommends);
        assert_eq!(
            apt.exclude_installed.unwrap().path,
            Path::new("m/base.status")
        );
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse("    packages: [curl]\n").unwrap_err();
        assert!(
            e.starts_with("m/platform.yaml:6:5: apt.sources is missing"),
            "{e}"
        );
        let e = parse(&format!("{SOURCE}    packages: [curl, \"bad (=> 1)\"]\n")).unwrap_err();
        assert!(
            e.starts_with("m/platform.yaml:11:22: invalid apt package \"bad (=> 1)\""),
            "{e}"
        );
        let e = parse(&format!("{SOURCE}    packages: [curl, curl]\n")).unwrap_err();
        assert!(
            e.contains("11:22: apt package \"curl\" is already listed"),
            "{e}"
        );
        let e = parse(&SOURCE.replace("http://deb.debian.org/debian/", "ftp://x")).unwrap_err();
        assert!(
            e.starts_with("m/platform.yaml:7:14: invalid apt source url \"ftp://x\""),
            "{e}"
        );
        let e = parse(&SOURCE.replace("        keyring: keys/debian.gpg\n", "")).unwrap_err();
        assert!(e.contains("7:9: keyring is missing"), "{e}");
        let e = parse(&SOURCE.replace("[main]", "[../main]")).unwrap_err();
        assert!(e.contains("9:22: invalid component \"../main\""), "{e}");
        let e = parse(&format!(
            "{SOURCE}        architectures: [all]\n    packages: [x]\n"
        ))
        .unwrap_err();
        assert!(e.contains("`all` packages are always included"), "{e}");
        let e = parse(&format!("{SOURCE}        keyrings: x\n    packages: [x]\n")).unwrap_err();
        assert!(e.contains("unknown field \"keyrings\""), "{e}");
        let e = parse(&format!("{SOURCE}    packages: []\n")).unwrap_err();
        assert!(e.contains("apt.packages is empty"), "{e}");
    }
}
