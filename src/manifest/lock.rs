//! The lock file: every reference of a manifest resolved to exact digests.
//!
//! Building from the same lock gives the same `index.json` bytes, so the lock records every
//! digest the bundle's index will name. It is JSON, written with sorted, stable output.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::manifest::files::LockedFile;
use crate::manifest::{ChartSource, ChartSpec, ImageSpec, Manifest, ReferrersMode};

/// Version of the lock format this build writes and reads.
pub const LOCK_VERSION: u32 = 1;

/// Errors reading or writing a lock file.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// I/O on the lock file.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The lock file is not a valid lock.
    #[error(
        "{path}:{line}:{column}: not a valid ferry lock file: {reason}. Regenerate it with `ferry lock`"
    )]
    Invalid {
        /// The lock file.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// Why.
        reason: String,
    },
    /// The lock was written by another lock format version.
    #[error(
        "{path} has lock version {found}; this ferry reads version {LOCK_VERSION}. Regenerate it with `ferry lock`"
    )]
    Version {
        /// The lock file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
}

/// A resolved release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lock {
    /// Format version, [`LOCK_VERSION`].
    pub lock_version: u32,
    /// Release name and version from the manifest.
    pub release: LockedRelease,
    /// Images in manifest order.
    pub images: Vec<LockedImage>,
    /// Release files in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<LockedFile>,
    /// Helm charts in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<LockedChart>,
    /// apt packages, resolved (absent when the manifest has no `spec.apt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apt: Option<super::apt::LockedApt>,
    /// The cluster the charts were rendered for (present when the release has charts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<LockedKubernetes>,
    /// `helm version` of the Helm that rendered the charts; absent when none could run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<String>,
    /// Git repositories in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git: Vec<super::git::LockedGit>,
    /// Directory trees in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<super::trees::LockedTree>,
}

/// The Kubernetes version and API versions `helm template` was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedKubernetes {
    /// `--kube-version`.
    pub version: String,
    /// `--api-versions`, in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
}

impl LockedKubernetes {
    /// The settings a manifest asks for.
    pub fn of(spec: &crate::manifest::KubernetesSpec) -> LockedKubernetes {
        LockedKubernetes {
            version: spec.version.clone(),
            api_versions: spec.api_versions.clone(),
        }
    }
}

/// One Helm chart, resolved: the exact version, its `.tgz` and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedChart {
    /// The chart's name.
    pub name: String,
    /// The version asked for in the manifest (exact or a Helm range).
    pub constraint: String,
    /// The version it resolved to.
    pub version: String,
    /// The HTTP chart repository (for charts from one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The URL the `.tgz` was downloaded from (for charts from an HTTP repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `oci://host/path/name` (for charts from an OCI registry).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<String>,
    /// The OCI tag the version was read from (for charts from an OCI registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Digest of the chart archive (`.tgz`).
    pub digest: Digest,
    /// Size of the chart archive.
    pub size: u64,
    /// Digest of the Helm OCI manifest: the bundle entry (for OCI charts, the upstream one).
    pub manifest: Digest,
    /// Size of that manifest.
    pub manifest_size: u64,
    /// Charts packed inside the archive (`charts/`), as their own Chart.yaml names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<LockedChartDependency>,
    /// The Helm release name the chart was rendered as.
    #[serde(default)]
    pub release_name: String,
    /// The namespace it was rendered for.
    #[serde(default)]
    pub namespace: String,
    /// The values the site installs it with, in the order Helm applies them (`valuesFiles`,
    /// then `values`); part of the lock so that it travels signed and a change shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ChartValues>,
    /// How `images` was found: by rendering the chart with Helm, or by reading its values
    /// (a guess, when no Helm could run).
    #[serde(default)]
    pub images_found_by: ImagesFoundBy,
    /// The images the chart would have pulled, and where each is named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ChartImage>,
}

/// One values document given to Helm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartValues {
    /// Where it came from: the `valuesFiles` path as written, or `values` (inline).
    pub source: String,
    /// The values.
    pub values: serde_json::Value,
}

/// How a chart's images were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImagesFoundBy {
    /// `helm template` rendered the chart and its objects were read.
    Rendered,
    /// No Helm could run: values.yaml files and annotations were read (a guess).
    #[default]
    Values,
}

/// A chart packed inside another chart's archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedChartDependency {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Charts packed inside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<LockedChartDependency>,
}

/// An image a chart would pull, and where the chart names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartImage {
    /// The normalized image reference.
    pub image: String,
    /// The file it was found in: a template as Helm names it (`cert-manager/templates/
    /// deployment.yaml`), a values file (`charts/redis/values.yaml`) or `Chart.yaml`.
    pub from: String,
    /// The rendered object that names it, `Kind/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field that names it: `spec.template.spec.containers[controller].image`, a values
    /// path (`master.image`), an annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// How it was found.
    #[serde(default)]
    pub found: Found,
    /// Who pulls it, for images found in rendered objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_by: Option<PulledBy>,
}

/// How an image reference was found.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// In an object Helm rendered.
    Rendered,
    /// In a values file (no Helm could run).
    #[default]
    Values,
    /// In Chart.yaml's `artifacthub.io/images` annotation (no Helm could run).
    Annotation,
}

/// Who pulls an image found in rendered objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PulledBy {
    /// A container of a workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
    /// CronJob) names it: the cluster pulls it when the chart is installed.
    Workload,
    /// An operator will deploy it: a custom resource, a container argument or environment
    /// variable, or a ConfigMap names it.
    Operator,
}

impl ChartImage {
    /// Where it was found, for messages: `file: Kind/name field`.
    pub fn location(&self) -> String {
        let mut out = self.from.clone();
        let rest: Vec<&str> = [self.object.as_deref(), self.field.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !rest.is_empty() {
            out.push_str(": ");
            out.push_str(&rest.join(" "));
        }
        out
    }
}

impl LockedChart {
    /// The chart's identity, version aside (as [`ChartSpec::key`]).
    pub fn key(&self) -> String {
        match (&self.reference, &self.repo) {
            (Some(reference), _) => reference.clone(),
            (None, Some(repo)) => format!("{repo}/{}", self.name),
            (None, None) => self.name.clone(),
        }
    }

    /// Whether this entry still answers what the manifest asks for.
    pub fn matches(&self, spec: &ChartSpec) -> bool {
        let source_matches = match &spec.source {
            ChartSource::Repo(repo) => self.repo.as_deref() == Some(repo.as_str()),
            ChartSource::Oci(_) => self.reference.is_some(),
        };
        source_matches
            && self.key() == spec.key()
            && self.name == spec.name
            && self.constraint == spec.version
            && self.release_name == spec.release_name
            && self.namespace == spec.namespace
            && self.values == spec.values
    }

    /// Why this entry no longer answers the manifest's chart of the same key, for messages.
    pub fn difference(&self, spec: &ChartSpec) -> Option<String> {
        let key = spec.key();
        if self.constraint != spec.version {
            Some(format!(
                "chart {key} has version {:?} in the lock but {:?} in the manifest",
                self.constraint, spec.version
            ))
        } else if self.release_name != spec.release_name || self.namespace != spec.namespace {
            Some(format!(
                "chart {key} is rendered as release {:?} in namespace {:?} in the lock but {:?} in {:?} in the manifest",
                self.release_name, self.namespace, spec.release_name, spec.namespace
            ))
        } else if self.values != spec.values {
            let sources: Vec<&str> = spec.values.iter().map(|v| v.source.as_str()).collect();
            Some(format!(
                "chart {key}: its values ({}) differ from the ones in the lock",
                if sources.is_empty() {
                    "none now".to_string()
                } else {
                    sources.join(", ")
                }
            ))
        } else if !self.matches(spec) {
            Some(format!("chart {key} has another source in the lock"))
        } else {
            None
        }
    }
}

/// Release name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRelease {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.version`.
    pub version: String,
}

/// How the platform filter applied to what a reference resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The upstream document is kept byte for byte (a single manifest, an index whose every
    /// platform was selected, or an index pinned by digest).
    Whole,
    /// One platform of an index was selected: the entry is that platform's manifest.
    Single,
    /// Several but not all platforms: ferry writes a filtered index.
    Filtered,
}

/// One image, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedImage {
    /// The normalized reference, as in the manifest.
    pub reference: String,
    /// Platforms asked for.
    pub platforms: Vec<String>,
    /// What the reference resolved to upstream.
    pub resolved: Digest,
    /// Media type of what it resolved to.
    pub resolved_media_type: String,
    /// How the platform filter applied.
    pub selection: Selection,
    /// Digest of the bundle entry.
    pub digest: Digest,
    /// Media type of the bundle entry.
    pub media_type: String,
    /// Size of the bundle entry's document.
    pub size: u64,
    /// The image manifests the entry carries, one per platform.
    pub manifests: Vec<LockedManifest>,
    /// Which referrers were looked for (absent in locks that predate referrers: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_mode: Option<ReferrersMode>,
    /// Signatures, attestations and SBOMs of the entry and its platform manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<LockedReferrer>,
    /// The `spec.verify` keys whose signatures were checked at lock, and what they vouched for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<LockedVerification>,
}

/// An upstream referrer of an image: a signature, attestation, SBOM or other artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedReferrer {
    /// The manifest it refers to: the entry or one of its platform manifests.
    pub subject: Digest,
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type (`artifactType`, else the config's media type), for OCI 1.1 referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The cosign tag it was found under (`sha256-<hex>.sig`, `.att`, `.sbom`); absent for
    /// referrers linked by their `subject` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A signature that satisfied a `spec.verify` policy at lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedVerification {
    /// The key file as the manifest names it.
    pub key: String,
    /// The key's fingerprint (`sha256:` of its SubjectPublicKeyInfo).
    pub fingerprint: String,
    /// The signature manifest that holds the valid signature.
    pub signature: Digest,
}

/// One platform's image manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedManifest {
    /// `os/arch[/variant]`, or `unknown/unknown` for attestations kept with a whole index.
    pub platform: String,
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

impl LockedImage {
    /// Whether this entry still answers what the manifest asks for.
    pub fn matches(&self, spec: &ImageSpec) -> bool {
        self.reference == spec.reference.to_string()
            && self.platforms == platform_strings(spec)
            && self.referrer_mode.unwrap_or(ReferrersMode::None) == spec.referrers
    }

    /// The `spec.verify` keys (as written) that cover this image and that the lock has no
    /// check by.
    pub fn unverified_keys<'a>(
        &self,
        spec: &ImageSpec,
        policies: &'a [crate::manifest::VerifyPolicy],
    ) -> Vec<&'a str> {
        let repository = spec.reference.name();
        policies
            .iter()
            .filter(|p| p.covers(&repository).is_some())
            .filter(|p| !self.verified.iter().any(|v| v.key == p.key.written))
            .map(|p| p.key.written.as_str())
            .collect()
    }

    /// The upstream repository (`host/path`, no tag or digest).
    pub fn repository(&self) -> String {
        match self.reference.parse::<crate::manifest::Reference>() {
            Ok(r) => r.name(),
            Err(_) => self.reference.clone(),
        }
    }

    /// The reference a referrer entry of the bundle carries: the cosign tag it was found
    /// under, else its digest, in the image's repository.
    pub fn referrer_reference(&self, referrer: &LockedReferrer) -> String {
        match &referrer.tag {
            Some(tag) => format!("{}:{tag}", self.repository()),
            None => format!("{}@{}", self.repository(), referrer.digest),
        }
    }
}

/// The platform list of an image spec as the lock writes it.
pub fn platform_strings(spec: &ImageSpec) -> Vec<String> {
    spec.platforms.iter().map(|p| p.to_string()).collect()
}

/// Where the lock of a manifest lives by default: beside it, extension `.lock`.
pub fn default_path(manifest: &Path) -> PathBuf {
    manifest.with_extension("lock")
}

impl Lock {
    /// Reads and validates a lock file.
    pub fn load(path: &Path) -> Result<Lock, LockError> {
        let bytes = std::fs::read(path).map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Lock::parse(&bytes, path)
    }

    /// Parses lock bytes; `path` is for messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Lock, LockError> {
        let lock: Lock = serde_json::from_slice(bytes).map_err(|e| LockError::Invalid {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        if lock.lock_version != LOCK_VERSION {
            return Err(LockError::Version {
                path: path.to_path_buf(),
                found: lock.lock_version,
            });
        }
        Ok(lock)
    }

    /// The canonical bytes of this lock: pretty JSON and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a lock always serialises");
        out.push(b'\n');
        out
    }

    /// Writes the lock atomically.
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        crate::layout::write_atomic(path, &self.to_bytes()).map_err(|e| LockError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// What differs between this lock and the manifest, for messages; empty when in step.
    pub fn differences(&self, manifest: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        if self.release.name != manifest.metadata.name
            || self.release.version != manifest.metadata.version
        {
            out.push(format!(
                "release is {} {} in the lock but {} {} in the manifest",
                self.release.name,
                self.release.version,
                manifest.metadata.name,
                manifest.metadata.version
            ));
        }
        for spec in &manifest.spec.images {
            let reference = spec.reference.to_string();
            match self.images.iter().find(|i| i.reference == reference) {
                None => out.push(format!("image {reference} is not in the lock")),
                Some(locked) if locked.platforms != platform_strings(spec) => out.push(format!(
                    "image {reference} has platforms {} in the lock but {} in the manifest",
                    locked.platforms.join(","),
                    platform_strings(spec).join(",")
                )),
                Some(locked) if !locked.matches(spec) => out.push(format!(
                    "image {reference} carries referrers {} in the lock but {} in the manifest",
                    locked.referrer_mode.unwrap_or(ReferrersMode::None).as_str(),
                    spec.referrers.as_str()
                )),
                Some(locked) => {
                    for key in locked.unverified_keys(spec, &manifest.spec.verify) {
                        out.push(format!(
                            "image {reference} must be signed with {key} (spec.verify) and the lock has no such check"
                        ));
                    }
                }
            }
        }
        for spec in &manifest.spec.charts {
            let key = spec.key();
            match self.charts.iter().find(|c| c.key() == key) {
                None => out.push(format!("chart {key} is not in the lock")),
                Some(locked) => out.extend(locked.difference(spec)),
            }
        }
        if !manifest.spec.charts.is_empty() {
            let wanted = LockedKubernetes::of(&manifest.spec.kubernetes);
            match &self.kubernetes {
                Some(k) if *k == wanted => {}
                Some(k) => out.push(format!(
                    "the charts were rendered for Kubernetes {}{} in the lock but the manifest says {}{}",
                    k.version,
                    api_list(&k.api_versions),
                    wanted.version,
                    api_list(&wanted.api_versions)
                )),
                None => out.push(
                    "the lock does not say which Kubernetes the charts were rendered for (it predates rendering)"
                        .to_string(),
                ),
            }
        }
        for locked in &self.charts {
            if !manifest.spec.charts.iter().any(|s| s.key() == locked.key()) {
                out.push(format!(
                    "chart {} is in the lock but no longer in the manifest",
                    locked.key()
                ));
            }
        }
        for locked in &self.images {
            if !manifest
                .spec
                .images
                .iter()
                .any(|s| s.reference.to_string() == locked.reference)
            {
                out.push(format!(
                    "image {} is in the lock but no longer in the manifest",
                    locked.reference
                ));
            }
        }
        out.extend(crate::manifest::files::lock_differences(
            &self.files,
            &manifest.spec.files,
        ));
        out.extend(super::apt::differences(
            self.apt.as_ref(),
            manifest.spec.apt.as_ref(),
        ));
        out.extend(super::git::lock_differences(&self.git, &manifest.spec.git));
        out.extend(super::trees::lock_differences(
            &self.trees,
            &manifest.spec.trees,
        ));
        out
    }
}

fn api_list(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" (API versions {})", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(charts: &str) -> Manifest {
        Manifest::parse(
            &format!(
                "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: r, version: '1'}}\nspec:\n  charts:\n{charts}"
            ),
            Path::new("m.yaml"),
        )
        .unwrap()
    }

    fn locked(spec: &ChartSpec) -> LockedChart {
        let (repo, reference) = match &spec.source {
            ChartSource::Repo(r) => (Some(r.clone()), None),
            ChartSource::Oci(_) => (None, Some(spec.key())),
        };
        LockedChart {
            name: spec.name.clone(),
            constraint: spec.version.clone(),
            version: "1.16.5".into(),
            repo,
            url: None,
            reference,
            tag: None,
            digest: Digest::of_bytes(b"tgz"),
            size: 3,
            manifest: Digest::of_bytes(b"m"),
            manifest_size: 1,
            dependencies: vec![],
            release_name: spec.release_name.clone(),
            namespace: spec.namespace.clone(),
            values: spec.values.clone(),
            images_found_by: ImagesFoundBy::Rendered,
            images: vec![],
        }
    }

    #[test]
    fn chart_differences() {
        let m = manifest(
            "    - {name: cilium, repo: https://helm.cilium.io, version: ~1.16}\n    - {ref: oci://ghcr.io/x/redis, version: 1.0.0}\n",
        );
        let lock = Lock {
            lock_version: LOCK_VERSION,
            release: LockedRelease {
                name: "r".into(),
                version: "1".into(),
            },
            images: vec![],
            files: vec![],
            apt: None,
            kubernetes: Some(LockedKubernetes::of(&m.spec.kubernetes)),
            helm: Some("v3.17.0".into()),
            git: vec![],
            trees: vec![],
            charts: m.spec.charts.iter().map(locked).collect(),
        };
        assert!(lock.differences(&m).is_empty());
        // The JSON round-trips, and a lock without charts has no `charts` field.
        let back = Lock::parse(&lock.to_bytes(), Path::new("l")).unwrap();
        assert_eq!(back, lock);
        let empty = Lock {
            charts: vec![],
            ..lock.clone()
        };
        assert!(
            !String::from_utf8(empty.to_bytes())
                .unwrap()
                .contains("charts")
        );

        let changed = manifest(
            "    - {name: cilium, repo: https://helm.cilium.io, version: ~1.17}\n    - {name: hubble, repo: https://helm.cilium.io, version: 1.0.0}\n",
        );
        assert_eq!(
            lock.differences(&changed),
            [
                "chart https://helm.cilium.io/cilium has version \"~1.16\" in the lock but \"~1.17\" in the manifest",
                "chart https://helm.cilium.io/hubble is not in the lock",
                "chart oci://ghcr.io/x/redis is in the lock but no longer in the manifest",
            ]
        );
    }
}
