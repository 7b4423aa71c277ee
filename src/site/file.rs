//! The site file: where one air-gapped site keeps its targets and its install step.
//!
//! ```yaml
//! apiVersion: ferry.dev/v1
//! kind: Site
//! metadata: {name: plant-a}
//! spec:
//!   registry: {host: harbor.plant-a.lan/platform, caFile: ca.crt}
//!   apt: {dir: /srv/mirror/apt, signingKey: apt-key.asc}
//!   charts: {dir: /srv/mirror/charts}
//!   files: {dir: /srv/mirror/files, k3sAirgapDir: /srv/airgap}
//!   git: {dir: /srv/git, baseUrl: http://mirror.plant-a.lan/git}
//!   trees: {dir: /srv/nim-cache, owner: "1000:2000"}
//!   install: {command: ["./run.sh", "site.yml"], workdir: ansible}
//! ```
//!
//! Loading checks the schema (unknown fields and wrong shapes are errors naming
//! `FILE:LINE:COLUMN`); [`preflight`] then checks the site itself (key files load, target
//! directories can be written, the registry answers), all before any work starts.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use crate::manifest::{Location, closest, innermost};
use crate::mapping::Target;

/// The only `kind` a site file may have.
pub const KIND: &str = "Site";

/// Default output directory name, beside the site file.
pub const DEFAULT_OUTPUT: &str = "ferry-site";

/// A validated site file. Paths are resolved against the site file's directory.
#[derive(Debug, Clone)]
pub struct Site {
    /// The file it was read from.
    pub path: PathBuf,
    /// `metadata.name`.
    pub name: String,
    /// The site registry.
    pub registry: Option<RegistrySite>,
    /// The apt mirror.
    pub apt: Option<AptSite>,
    /// The chart repository.
    pub charts: Option<ChartsSite>,
    /// The files tree.
    pub files: Option<FilesSite>,
    /// The Git repositories.
    pub git: Option<GitSite>,
    /// The directory trees (model stores).
    pub trees: Option<TreesSite>,
    /// The install step.
    pub install: Option<InstallSite>,
    /// Where rendered configuration goes.
    pub output: PathBuf,
}

/// `spec.registry`.
#[derive(Debug, Clone)]
pub struct RegistrySite {
    /// `HOST[:PORT][/PREFIX]`, parsed.
    pub target: Target,
    /// CA certificate for the registry.
    pub ca_file: Option<PathBuf>,
    /// Plain HTTP allowed.
    pub insecure: bool,
    /// Render `system-default-registry` into the K3s server config.
    pub system_default_registry: bool,
    /// Harbor projects to create first.
    pub harbor: Option<HarborSite>,
}

/// `spec.registry.harbor`.
#[derive(Debug, Clone, Default)]
pub struct HarborSite {
    /// API base URL.
    pub api: Option<String>,
    /// New projects public.
    pub public: bool,
    /// Cosign content trust on new projects.
    pub content_trust_cosign: bool,
}

/// `spec.apt`.
#[derive(Debug, Clone)]
pub struct AptSite {
    /// The mirror directory.
    pub dir: PathBuf,
    /// The site's apt signing key (secret, armored).
    pub signing_key: PathBuf,
    /// One suite for everything.
    pub suite: Option<String>,
    /// The URL hosts use.
    pub url: Option<String>,
}

/// `spec.charts`.
#[derive(Debug, Clone)]
pub struct ChartsSite {
    /// The chart repository directory.
    pub dir: PathBuf,
    /// The URL it is served under.
    pub base_url: Option<String>,
}

/// `spec.files`.
#[derive(Debug, Clone)]
pub struct FilesSite {
    /// The files directory.
    pub dir: PathBuf,
    /// k3s-ansible's `airgap_dir`.
    pub k3s_airgap_dir: Option<PathBuf>,
}

/// `spec.git`.
#[derive(Debug, Clone)]
pub struct GitSite {
    /// The directory of bare repositories.
    pub dir: PathBuf,
    /// The URL they are served under (`<baseUrl>/<name>.git`), for ArgoCD.
    pub base_url: Option<String>,
}

/// `spec.trees`.
#[derive(Debug, Clone)]
pub struct TreesSite {
    /// The directory the trees go into.
    pub dir: PathBuf,
    /// Numeric owner of every file (`UID:GID`).
    pub owner: Option<(u32, u32)>,
}

/// `spec.install`.
#[derive(Debug, Clone)]
pub struct InstallSite {
    /// argv.
    pub command: Vec<String>,
    /// Working directory.
    pub workdir: Option<PathBuf>,
}

/// A site file that cannot be used; the message starts with `FILE[:LINE:COLUMN]:`.
#[derive(Debug)]
pub struct SiteError {
    /// The site file.
    pub path: PathBuf,
    /// Where in it, when known.
    pub location: Option<Location>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(l) if l.line > 0 => write!(f, "{}:{l}: {}", self.path.display(), self.message),
            _ => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for SiteError {}

mod raw {
    use serde::Deserialize;
    use serde_saphyr::Spanned;

    type S<T> = Option<Spanned<T>>;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Document {
        pub api_version: S<String>,
        pub kind: S<String>,
        pub metadata: S<Metadata>,
        pub spec: S<Spec>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Metadata {
        pub name: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Spec {
        pub registry: S<Registry>,
        pub apt: S<Apt>,
        pub charts: S<Charts>,
        pub files: S<Files>,
        pub git: S<Git>,
        pub trees: S<Trees>,
        pub install: S<Install>,
        pub output: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Registry {
        pub host: S<String>,
        pub ca_file: S<String>,
        pub insecure: Option<bool>,
        pub system_default_registry: Option<bool>,
        pub harbor: S<Harbor>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Harbor {
        pub api: S<String>,
        pub public: Option<bool>,
        pub content_trust_cosign: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Apt {
        pub dir: S<String>,
        pub signing_key: S<String>,
        pub suite: S<String>,
        pub url: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Charts {
        pub dir: S<String>,
        pub base_url: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Files {
        pub dir: S<String>,
        pub k3s_airgap_dir: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Git {
        pub dir: S<String>,
        pub base_url: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Trees {
        pub dir: S<String>,
        pub owner: S<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Install {
        pub command: S<Vec<String>>,
        pub workdir: S<String>,
    }
}

struct Loader<'a> {
    path: &'a Path,
    base: PathBuf,
}

impl Loader<'_> {
    fn err(&self, location: Option<Location>, message: impl Into<String>) -> SiteError {
        SiteError {
            path: self.path.to_path_buf(),
            location,
            message: message.into(),
        }
    }

    fn at<T>(&self, s: &Spanned<T>) -> Option<Location> {
        Some(Location::from_yaml(&s.referenced))
    }

    fn required<T>(
        &self,
        value: Option<Spanned<T>>,
        parent: Option<Location>,
        field: &str,
        hint: &str,
    ) -> Result<Spanned<T>, SiteError> {
        value.ok_or_else(|| self.err(parent, format!("{field} is missing; {hint}")))
    }

    /// A path as written, resolved against the site file's directory.
    fn path_of(&self, value: &Spanned<String>, field: &str) -> Result<PathBuf, SiteError> {
        if value.value.trim().is_empty() {
            return Err(self.err(self.at(value), format!("{field} is empty; give a path")));
        }
        Ok(self.base.join(&value.value))
    }

    fn url_of(&self, value: &Spanned<String>, field: &str) -> Result<String, SiteError> {
        crate::destination::absolute_http_url(&value.value).ok_or_else(|| {
            self.err(
                self.at(value),
                format!(
                    "{field} {:?} is not an absolute http(s) URL, e.g. http://mirror.site.lan/charts",
                    value.value
                ),
            )
        })
    }

    fn yaml_error(&self, error: &serde_saphyr::Error) -> SiteError {
        let location = error.location().map(|l| Location::from_yaml(&l));
        match innermost(error) {
            serde_saphyr::Error::SerdeUnknownField {
                field, expected, ..
            } => {
                let hint = match closest(field, expected) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => "remove it".to_string(),
                };
                self.err(
                    location,
                    format!(
                        "unknown field \"{field}\"; {hint} (allowed here: {})",
                        expected.join(", ")
                    ),
                )
            }
            other => {
                use serde_saphyr::MessageFormatter;
                self.err(
                    location,
                    serde_saphyr::UserMessageFormatter
                        .format_message(other)
                        .into_owned(),
                )
            }
        }
    }
}

impl Site {
    /// Reads and checks the site file's schema (no file system or network checks).
    pub fn load(path: &Path) -> Result<Site, SiteError> {
        let text = std::fs::read_to_string(path).map_err(|e| SiteError {
            path: path.to_path_buf(),
            location: None,
            message: format!("cannot read site file: {e}"),
        })?;
        Site::parse(&text, path)
    }

    /// Checks site file `text`; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Site, SiteError> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let l = Loader { path, base };
        let mut options = serde_saphyr::Options::default();
        options.with_snippet = false;
        // Comments are not read; buffering them fails on long comment blocks.
        options.emit_comments = false;
        let document: Spanned<raw::Document> =
            serde_saphyr::from_str_with_options(text, options).map_err(|e| l.yaml_error(&e))?;
        let root = l.at(&document);
        let document = document.value;
        let api = l.required(
            document.api_version,
            Some(Location { line: 1, column: 1 }),
            "apiVersion",
            "add `apiVersion: ferry.dev/v1` at the top",
        )?;
        if api.value != crate::manifest::API_VERSION {
            return Err(l.err(
                l.at(&api),
                format!(
                    "unsupported apiVersion {:?}; this ferry reads only \"{}\"",
                    api.value,
                    crate::manifest::API_VERSION
                ),
            ));
        }
        let kind = l.required(document.kind, root, "kind", "add `kind: Site`")?;
        if kind.value != KIND {
            return Err(l.err(
                l.at(&kind),
                format!(
                    "unsupported kind {:?}; a site file has kind \"{KIND}\"",
                    kind.value
                ),
            ));
        }
        let metadata = l.required(
            document.metadata,
            root,
            "metadata",
            "add `metadata: {name: <site name>}`",
        )?;
        let metadata_at = l.at(&metadata);
        let name = l.required(
            metadata.value.name,
            metadata_at,
            "metadata.name",
            "add the site's name",
        )?;
        if name.value.is_empty()
            || name.value.len() > 63
            || !name.value.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(l.err(
                l.at(&name),
                format!(
                    "invalid metadata.name {:?}: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit",
                    name.value
                ),
            ));
        }
        let spec = l.required(
            document.spec,
            root,
            "spec",
            "add `spec:` with at least one of registry, apt, charts, files",
        )?;
        let spec_at = l.at(&spec);
        let spec = spec.value;

        let registry = match spec.registry {
            None => None,
            Some(r) => {
                let at = l.at(&r);
                let r = r.value;
                let host = l.required(
                    r.host,
                    at,
                    "spec.registry.host",
                    "add `host: HOST[:PORT][/PREFIX]`",
                )?;
                let target = Target::parse(&host.value)
                    .map_err(|e| l.err(l.at(&host), format!("spec.registry.host: {e}")))?;
                let ca_file = r
                    .ca_file
                    .as_ref()
                    .map(|c| l.path_of(c, "spec.registry.caFile"))
                    .transpose()?;
                let harbor = match r.harbor {
                    None => None,
                    Some(h) => {
                        let h = h.value;
                        let api = h
                            .api
                            .as_ref()
                            .map(|a| l.url_of(a, "spec.registry.harbor.api"))
                            .transpose()?;
                        Some(HarborSite {
                            api,
                            public: h.public.unwrap_or(false),
                            content_trust_cosign: h.content_trust_cosign.unwrap_or(false),
                        })
                    }
                };
                Some(RegistrySite {
                    target,
                    ca_file,
                    insecure: r.insecure.unwrap_or(false),
                    system_default_registry: r.system_default_registry.unwrap_or(false),
                    harbor,
                })
            }
        };
        let apt = match spec.apt {
            None => None,
            Some(a) => {
                let at = l.at(&a);
                let a = a.value;
                let dir = l.required(a.dir, at, "spec.apt.dir", "add the mirror directory")?;
                let key = l.required(
                    a.signing_key,
                    at,
                    "spec.apt.signingKey",
                    "add the site's apt key (`ferry key generate --apt` writes ferry-apt-secret.asc)",
                )?;
                if let Some(s) = &a.suite {
                    crate::import::apt::check_suite(Some(&s.value))
                        .map_err(|e| l.err(l.at(s), format!("spec.apt.suite: {e}")))?;
                }
                let url = match &a.url {
                    Some(u) => Some(l.url_of(u, "spec.apt.url")?),
                    None => None,
                };
                Some(AptSite {
                    dir: l.path_of(&dir, "spec.apt.dir")?,
                    signing_key: l.path_of(&key, "spec.apt.signingKey")?,
                    suite: a.suite.map(|s| s.value),
                    url,
                })
            }
        };
        let charts = match spec.charts {
            None => None,
            Some(c) => {
                let at = l.at(&c);
                let c = c.value;
                let dir = l.required(
                    c.dir,
                    at,
                    "spec.charts.dir",
                    "add the chart repository directory",
                )?;
                let base_url = match &c.base_url {
                    Some(u) => Some(l.url_of(u, "spec.charts.baseUrl")?),
                    None => None,
                };
                Some(ChartsSite {
                    dir: l.path_of(&dir, "spec.charts.dir")?,
                    base_url,
                })
            }
        };
        let files = match spec.files {
            None => None,
            Some(f) => {
                let at = l.at(&f);
                let f = f.value;
                let dir = l.required(f.dir, at, "spec.files.dir", "add the files directory")?;
                Some(FilesSite {
                    dir: l.path_of(&dir, "spec.files.dir")?,
                    k3s_airgap_dir: f
                        .k3s_airgap_dir
                        .as_ref()
                        .map(|d| l.path_of(d, "spec.files.k3sAirgapDir"))
                        .transpose()?,
                })
            }
        };
        let git = match spec.git {
            None => None,
            Some(g) => {
                let at = l.at(&g);
                let g = g.value;
                let dir = l.required(
                    g.dir,
                    at,
                    "spec.git.dir",
                    "add the directory of bare repositories",
                )?;
                let base_url = match &g.base_url {
                    Some(u) => Some(l.url_of(u, "spec.git.baseUrl")?),
                    None => None,
                };
                Some(GitSite {
                    dir: l.path_of(&dir, "spec.git.dir")?,
                    base_url,
                })
            }
        };
        let trees = match spec.trees {
            None => None,
            Some(t) => {
                let at = l.at(&t);
                let t = t.value;
                let dir = l.required(t.dir, at, "spec.trees.dir", "add the trees' directory")?;
                let owner = match &t.owner {
                    Some(o) => Some(
                        crate::import::trees::parse_owner(&o.value)
                            .map_err(|e| l.err(l.at(o), format!("spec.trees.owner: {e}")))?,
                    ),
                    None => None,
                };
                Some(TreesSite {
                    dir: l.path_of(&dir, "spec.trees.dir")?,
                    owner,
                })
            }
        };
        let install = match spec.install {
            None => None,
            Some(i) => {
                let at = l.at(&i);
                let i = i.value;
                let command = l.required(
                    i.command,
                    at,
                    "spec.install.command",
                    "add the command as a list, e.g. [\"./run.sh\", \"site.yml\"]",
                )?;
                if command.value.is_empty() || command.value[0].is_empty() {
                    return Err(l.err(
                        l.at(&command),
                        "spec.install.command is empty; give the program and its arguments as a list",
                    ));
                }
                Some(InstallSite {
                    command: command.value,
                    workdir: i
                        .workdir
                        .as_ref()
                        .map(|w| l.path_of(w, "spec.install.workdir"))
                        .transpose()?,
                })
            }
        };
        if registry.is_none()
            && apt.is_none()
            && charts.is_none()
            && files.is_none()
            && git.is_none()
            && trees.is_none()
        {
            return Err(l.err(
                spec_at,
                "the site names no target; add at least one of spec.registry, spec.apt, spec.charts, spec.files, spec.git, spec.trees",
            ));
        }
        let output = match &spec.output {
            Some(o) => l.path_of(o, "spec.output")?,
            None => l.base.join(DEFAULT_OUTPUT),
        };
        Ok(Site {
            path: path.to_path_buf(),
            name: name.value,
            registry,
            apt,
            charts,
            files,
            git,
            trees,
            install,
            output,
        })
    }

    /// Every target directory the import writes into, with the field that names it (the
    /// output directory apart: `--out` may replace it).
    pub fn directories(&self) -> Vec<(&'static str, &Path)> {
        let mut dirs = Vec::new();
        if let Some(c) = &self.charts {
            dirs.push(("spec.charts.dir", c.dir.as_path()));
        }
        if let Some(f) = &self.files {
            dirs.push(("spec.files.dir", f.dir.as_path()));
            if let Some(a) = &f.k3s_airgap_dir {
                dirs.push(("spec.files.k3sAirgapDir", a.as_path()));
            }
        }
        if let Some(a) = &self.apt {
            dirs.push(("spec.apt.dir", a.dir.as_path()));
        }
        if let Some(g) = &self.git {
            dirs.push(("spec.git.dir", g.dir.as_path()));
        }
        if let Some(t) = &self.trees {
            dirs.push(("spec.trees.dir", t.dir.as_path()));
        }
        dirs
    }
}

/// Whether `dir` can be written, or created and then written, without touching anything:
/// the nearest existing ancestor must be a directory this process may write into.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let mut probe = dir;
    loop {
        match std::fs::metadata(probe) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory", probe.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match probe.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe = p,
                _ => return Err(format!("no existing parent directory of {}", dir.display())),
            },
            Err(e) => return Err(format!("cannot look at {}: {e}", probe.display())),
        }
    }
    if writable(probe) {
        Ok(())
    } else if probe == dir {
        Err(format!(
            "{} is not writable by this user; fix its permissions or run as a user who may write there",
            dir.display()
        ))
    } else {
        Err(format!(
            "{} does not exist and {} is not writable by this user, so it cannot be created",
            dir.display(),
            probe.display()
        ))
    }
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n  registry:\n    host: harbor.plant-a.lan:443/platform\n    caFile: ca.crt\n    systemDefaultRegistry: true\n    harbor: {public: true}\n  apt:\n    dir: /srv/mirror/apt\n    signingKey: apt-key.asc\n    suite: ferry\n  charts:\n    dir: charts\n    baseUrl: http://mirror.plant-a.lan/charts/\n  files:\n    dir: /srv/files\n    k3sAirgapDir: /srv/airgap\n  install:\n    command: [\"./run.sh\", \"site.yml\"]\n    workdir: ansible\n";

    #[test]
    fn reads_every_field_and_resolves_paths() {
        let site = Site::parse(GOOD, Path::new("/etc/ferry/site.yaml")).unwrap();
        assert_eq!(site.name, "plant-a");
        let r = site.registry.unwrap();
        assert_eq!(r.target.host, "harbor.plant-a.lan:443");
        assert_eq!(r.target.prefix, "platform");
        assert_eq!(r.ca_file.unwrap(), Path::new("/etc/ferry/ca.crt"));
        assert!(r.system_default_registry && r.harbor.unwrap().public);
        assert_eq!(
            site.apt.unwrap().signing_key,
            Path::new("/etc/ferry/apt-key.asc")
        );
        let c = site.charts.unwrap();
        assert_eq!(c.dir, Path::new("/etc/ferry/charts"));
        assert_eq!(c.base_url.unwrap(), "http://mirror.plant-a.lan/charts");
        assert_eq!(
            site.install.unwrap().workdir.unwrap(),
            Path::new("/etc/ferry/ansible")
        );
        assert_eq!(site.output, Path::new("/etc/ferry/ferry-site"));
    }

    #[test]
    fn unknown_field_names_its_position() {
        let text = GOOD.replace("    suite: ferry\n", "    suite: ferry\n    sute: x\n");
        let e = Site::parse(&text, Path::new("site.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("site.yaml:15:5: unknown field \"sute\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"suite\""), "{e}");
    }

    #[test]
    fn wrong_values_are_named() {
        let e = Site::parse(
            &GOOD.replace("harbor.plant-a.lan:443/platform", "har bor"),
            Path::new("s.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("s.yaml:7:11: spec.registry.host"), "{e}");
        let e = Site::parse(
            &GOOD.replace("kind: Site", "kind: Release"),
            Path::new("s.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("s.yaml:2:7: unsupported kind"), "{e}");
        let e = Site::parse(
            "apiVersion: ferry.dev/v1\nkind: Site\nmetadata: {name: a}\nspec: {output: x}\n",
            Path::new("s.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("names no target"), "{e}");
    }
}
