//! Rendering a chart with Helm itself (`helm template`), so that the images ferry looks for
//! are the ones the cluster will pull: templates, conditions, subchart overrides and
//! `.Capabilities` all as Helm applies them.
//!
//! The binary is the one `--helm` or `FERRY_HELM` names, else `helm` on PATH (Helm 3.8 or
//! later, or 4). Rendering is offline: the chart archive comes from the lock's scratch copy,
//! no repository is added and Helm's configuration, cache and data directories point into
//! that scratch directory, so nothing of the user's Helm setup (repositories, plugins) takes
//! part.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// The environment variable naming the helm binary.
pub const HELM_ENV: &str = "FERRY_HELM";
/// Longest a single `helm template` may take.
const RENDER_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest `helm version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Most output read from one `helm template` (kube-prometheus-stack with CRDs is ~10 MB).
const MAX_OUTPUT: u64 = 512 << 20;
/// Most of Helm's error output kept for a message.
const MAX_MESSAGE: usize = 4000;

/// Why Helm could not be used or refused a chart.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The binary named could not be run.
    #[error(
        "cannot run helm at {path} ({reason}); install Helm 3.8+ or 4, or point --helm / {HELM_ENV} at it"
    )]
    NotRunnable {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The binary is a Helm older than 3.8, or its version cannot be read.
    #[error(
        "{path} says its version is {version:?}; ferry renders charts with Helm 3.8 or later (or 4): install one and point --helm / {HELM_ENV} at it"
    )]
    Unsupported {
        /// The binary.
        path: PathBuf,
        /// What `helm version --short` printed.
        version: String,
    },
    /// Helm refused to render the chart.
    #[error(
        "Helm cannot render chart {chart}: {message}\nset the values it needs in the chart's `values:` (or `valuesFiles:`) in the manifest, the values the site installs it with"
    )]
    Refused {
        /// The chart and version.
        chart: String,
        /// Helm's message.
        message: String,
    },
    /// Helm did not finish in time.
    #[error("helm template of chart {chart} did not finish in {} s; it was stopped", RENDER_TIMEOUT.as_secs())]
    Timeout {
        /// The chart and version.
        chart: String,
    },
    /// Scratch files for the values could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A Helm binary that answered `helm version`.
#[derive(Debug, Clone)]
pub struct Helm {
    path: PathBuf,
    version: String,
    home: PathBuf,
}

/// What `helm template` is told about the release and the cluster.
#[derive(Debug, Clone)]
pub struct RenderSettings<'a> {
    /// Release name.
    pub release_name: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// `--kube-version`, `MAJOR.MINOR.PATCH`.
    pub kube_version: &'a str,
    /// `--api-versions`.
    pub api_versions: &'a [String],
}

/// Where the helm binary comes from: explicit (flag or environment), or the search of PATH.
pub fn choose(flag: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(path) = flag {
        return Some((path.to_path_buf(), true));
    }
    if let Some(path) = std::env::var_os(HELM_ENV).filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(path), true));
    }
    on_path("helm").map(|p| (p, false))
}

/// The first executable file called `name` in PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path: OsString = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Helm {
    /// Runs `helm version --short` and checks the version; `home` is a scratch directory for
    /// Helm's configuration, cache and data.
    pub async fn probe(path: &Path, home: &Path) -> Result<Helm, RenderError> {
        let not_runnable = |reason: String| RenderError::NotRunnable {
            path: path.to_path_buf(),
            reason,
        };
        let mut command = tokio::process::Command::new(path);
        command.args(["version", "--short"]);
        isolate(&mut command, home);
        let output = tokio::time::timeout(VERSION_TIMEOUT, command.output())
            .await
            .map_err(|_| not_runnable("`helm version` did not answer".to_string()))?
            .map_err(|e| not_runnable(e.to_string()))?;
        if !output.status.success() {
            return Err(not_runnable(format!(
                "`helm version --short` failed: {}",
                shorten(&String::from_utf8_lossy(&output.stderr))
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let version = parse_version(&text).ok_or_else(|| RenderError::Unsupported {
            path: path.to_path_buf(),
            version: text.clone(),
        })?;
        Ok(Helm {
            path: path.to_path_buf(),
            version,
            home: home.to_path_buf(),
        })
    }

    /// The version it reported (`v3.17.2`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renders a chart archive with the values documents given (in Helm's order); returns
    /// what `helm template` printed.
    pub async fn template(
        &self,
        chart: &str,
        archive: &Path,
        settings: &RenderSettings<'_>,
        values: &[&serde_json::Value],
    ) -> Result<String, RenderError> {
        let dir = tempfile::Builder::new()
            .prefix("render-")
            .tempdir_in(&self.home)
            .map_err(|source| RenderError::Io {
                path: self.home.clone(),
                source,
            })?;
        // Helm recognises a chart archive by its name: give the blob one.
        let tgz = dir.path().join("chart.tgz");
        if std::fs::hard_link(archive, &tgz).is_err() {
            std::fs::copy(archive, &tgz).map_err(|source| RenderError::Io {
                path: tgz.clone(),
                source,
            })?;
        }
        let mut command = tokio::process::Command::new(&self.path);
        command
            .arg("template")
            .arg(settings.release_name)
            .arg(&tgz)
            .args(["--namespace", settings.namespace])
            .args(["--kube-version", &format!("v{}", settings.kube_version)])
            .args(["--include-crds", "--skip-tests"]);
        for api in settings.api_versions {
            command.args(["--api-versions", api]);
        }
        for (i, doc) in values.iter().enumerate() {
            // JSON is YAML: the values go to Helm exactly as the lock records them.
            let file = dir.path().join(format!("values-{i}.json"));
            std::fs::write(&file, serde_json::to_vec(doc).unwrap_or_default()).map_err(
                |source| RenderError::Io {
                    path: file.clone(),
                    source,
                },
            )?;
            command.arg("--values").arg(&file);
        }
        isolate(&mut command, &self.home);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| RenderError::NotRunnable {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut stdout = child.stdout.take().expect("piped").take(MAX_OUTPUT);
        let mut stderr = child.stderr.take().expect("piped").take(1 << 20);
        let run = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            let status = child.wait().await;
            (a.and(b).and(status), out, err)
        };
        let (status, out, err) = tokio::time::timeout(RENDER_TIMEOUT, run)
            .await
            .map_err(|_| RenderError::Timeout {
                chart: chart.to_string(),
            })?;
        let status = status.map_err(|e| RenderError::NotRunnable {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if !status.success() {
            return Err(RenderError::Refused {
                chart: chart.to_string(),
                message: shorten(&String::from_utf8_lossy(&err)),
            });
        }
        String::from_utf8(out).map_err(|_| RenderError::Refused {
            chart: chart.to_string(),
            message: "helm template printed output that is not UTF-8".to_string(),
        })
    }
}

/// Points Helm's own directories into scratch space, and drops settings that would change
/// what renders (a namespace from the environment, debug output).
fn isolate(command: &mut tokio::process::Command, home: &Path) {
    command
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_DEBUG")
        .env_remove("HELM_KUBECONTEXT");
}

/// `v3.17.2` from `helm version --short` (`v3.17.2+g8f6ef95`), if at least 3.8.
fn parse_version(text: &str) -> Option<String> {
    let first = text.lines().next()?.trim();
    let version = first.split('+').next()?.trim();
    let bare = version.strip_prefix('v')?;
    let mut parts = bare.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    (major > 3 || (major == 3 && minor >= 8)).then(|| version.to_string())
}

/// Helm's message, without its `Error: ` prefix and cut to a readable size.
fn shorten(text: &str) -> String {
    let text = text.trim();
    let text = text.strip_prefix("Error: ").unwrap_or(text);
    if text.len() <= MAX_MESSAGE {
        text.to_string()
    } else {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    }
}

/// One document of `helm template` output and the template it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedDocument<'a> {
    /// The `# Source:` line's template path (`cert-manager/templates/deployment.yaml`).
    pub source: Option<&'a str>,
    /// The document's text.
    pub text: &'a str,
}

/// Splits `helm template` output into its documents.
pub fn documents(output: &str) -> Vec<RenderedDocument<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut source = None;
    let mut offset = 0;
    for line in output.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            push_document(&mut docs, &output[start..offset], source.take());
            start = offset + line.len();
        } else if let Some(path) = trimmed.strip_prefix("# Source: ")
            && source.is_none()
        {
            source = Some(path.trim());
        }
        offset += line.len();
    }
    push_document(&mut docs, &output[start..], source);
    docs
}

fn push_document<'a>(docs: &mut Vec<RenderedDocument<'a>>, text: &'a str, source: Option<&'a str>) {
    let has_content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if has_content {
        docs.push(RenderedDocument { source, text });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("v3.17.2+g8f6ef95\n").as_deref(),
            Some("v3.17.2")
        );
        assert_eq!(parse_version("v4.2.3").as_deref(), Some("v4.2.3"));
        assert_eq!(parse_version("v3.7.1+gabc"), None);
        assert_eq!(parse_version("version.BuildInfo{}"), None);
    }

    #[test]
    fn splits_documents() {
        let out = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n---\n# Source: c/templates/empty.yaml\n---\n# Source: c/templates/b.yaml\nkind: Pod\n";
        let docs = documents(out);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].source, Some("c/templates/a.yaml"));
        assert!(docs[0].text.contains("kind: ConfigMap"));
        assert_eq!(docs[1].source, Some("c/templates/b.yaml"));
        assert_eq!(documents("").len(), 0);
    }
}
