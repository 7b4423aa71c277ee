//! Helm charts: HTTP chart repositories and OCI registries, resolved by Helm's version rules,
//! stored as Helm OCI artifacts exactly as `helm push` makes them.
//!
//! `lock` resolves each chart of the manifest: the version Helm would pick, the archive's
//! digest and size, the packed dependencies and the images the chart names. To learn those
//! it downloads the archive once (into a scratch directory, digest checked). `build` stores
//! each locked chart in the bundle:
//! - from an OCI registry: the upstream manifest, config and layers byte for byte;
//! - from an HTTP repository: the archive (checked against the lock's digest, which came
//!   from `index.yaml` when the index has one) plus the config and manifest `helm push` would
//!   make for it ([`artifact`]), whose digest the lock recorded.

pub mod archive;
pub mod artifact;
pub mod gojson;
pub mod images;
pub mod metadata;
pub mod render;
pub mod rendered;
pub mod repo;
pub mod values;
pub mod version;

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::sync::Arc;

use crate::digest::Digest;
use crate::layout::artifact::index_entry;
use crate::layout::oci::{Descriptor, Manifest as OciManifest, OCI_MANIFEST};
use crate::layout::{Layout, LayoutError};
use crate::manifest::helm_chart::bundle_reference;
use crate::manifest::lock::{ChartImage, ImagesFoundBy, LockedChart, LockedKubernetes};
use crate::manifest::reference::Reference;
use crate::manifest::{ChartSource, ChartSpec};
use crate::source::http::{HttpError, HttpSource};
use crate::source::registry::{RegistryError, RegistrySource};

use archive::{ArchiveError, ChartArchive};
use artifact::{CONFIG_MEDIA_TYPE, HelmArtifact, is_chart_layer};
use render::{Helm, RenderError, RenderSettings};
use version::{Constraint, Version};

/// The `dev.ferry.kind` of chart entries.
pub const KIND: &str = "chart";
/// Versions listed in a "no version satisfies" message.
const VERSIONS_SHOWN: usize = 20;

/// Errors resolving or fetching a chart; each names the chart and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// An HTTP download failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A registry call failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The repository's index.yaml could not be read.
    #[error(
        "{url} is not a valid Helm repository index: {reason}. Check the repo URL in the manifest"
    )]
    BadIndex {
        /// The index URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The repository has no chart of that name.
    #[error("{repo} has no chart named {name:?}{}. Check `name` in the manifest", others(available, *total))]
    NoSuchChart {
        /// The repository.
        repo: String,
        /// The chart asked for.
        name: String,
        /// Some charts it has.
        available: Vec<String>,
        /// How many charts it has.
        total: usize,
    },
    /// No version satisfies the constraint.
    #[error(
        "no version of {chart} satisfies {constraint:?}; available: {}. Change `version` in the manifest",
        shown(available)
    )]
    NoMatchingVersion {
        /// The chart.
        chart: String,
        /// The constraint.
        constraint: String,
        /// The versions there are, newest first.
        available: Vec<String>,
    },
    /// The index entry has no URL.
    #[error("{chart} {version}: index.yaml lists no download URL for it; the repository is broken")]
    NoUrl {
        /// The chart.
        chart: String,
        /// The version.
        version: String,
    },
    /// The index names a digest that is not a SHA-256.
    #[error(
        "{chart} {version}: index.yaml gives the digest {digest:?}, which is not a SHA-256; the repository is broken"
    )]
    BadDigest {
        /// The chart.
        chart: String,
        /// The version.
        version: String,
        /// What the index says.
        digest: String,
    },
    /// The archive could not be read.
    #[error("{chart}: {source}")]
    Archive {
        /// The chart (and version).
        chart: String,
        /// What is wrong.
        source: ArchiveError,
    },
    /// Something in an OCI registry that is not a Helm chart.
    #[error("{reference} is not a Helm chart: {reason}")]
    NotAChart {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The artifact built from the lock is not the one the lock recorded.
    #[error(
        "{chart}: the Helm manifest made from the archive hashes to {actual}, the lock says {expected}. The lock was made by another ferry version or edited: regenerate it with `ferry lock`"
    )]
    ManifestChanged {
        /// The chart.
        chart: String,
        /// Lock digest.
        expected: Digest,
        /// Built digest.
        actual: Digest,
    },
    /// The lock entry is incomplete.
    #[error(
        "the lock entry of chart {0} names neither a repository nor an oci:// reference; regenerate the lock with `ferry lock`"
    )]
    BadLock(String),
    /// Helm could not render the chart.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The chart's Chart.yaml `kubeVersion` excludes the cluster's version.
    #[error(
        "{chart}: its Chart.yaml requires Kubernetes {required:?}, but spec.kubernetes.version is {kube}: Helm refuses to install it there. Choose a chart version made for Kubernetes {kube}, or correct spec.kubernetes.version"
    )]
    KubeVersion {
        /// The chart and version.
        chart: String,
        /// Chart.yaml's `kubeVersion`.
        required: String,
        /// The cluster's version.
        kube: String,
    },
}

fn others(available: &[String], total: usize) -> String {
    if available.is_empty() {
        " (its index lists no charts)".to_string()
    } else if total > available.len() {
        format!(
            "; it has {} and {} more",
            available.join(", "),
            total - available.len()
        )
    } else {
        format!("; it has {}", available.join(", "))
    }
}

fn shown(versions: &[String]) -> String {
    if versions.is_empty() {
        return "none".to_string();
    }
    let mut s = versions
        .iter()
        .take(VERSIONS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if versions.len() > VERSIONS_SHOWN {
        s.push_str(&format!(" and {} older", versions.len() - VERSIONS_SHOWN));
    }
    s
}

/// Where charts come from: HTTP for repositories, a registry connection for `oci://`; and
/// the Helm that renders them, when there is one.
pub struct HelmSource {
    http: HttpSource,
    registry: RegistrySource,
    scratch: crate::fsutil::ScratchDir,
    helm_home: crate::fsutil::ScratchDir,
    helm: Option<Helm>,
    kubernetes: LockedKubernetes,
    /// Each repository's index, fetched and parsed once per run.
    indexes: tokio::sync::Mutex<HashMap<String, Arc<repo::ChartIndex>>>,
    /// The chart names each repository is asked for in this run (parsed in one pass).
    wanted: HashMap<String, Vec<String>>,
}

/// A resolved chart and what `lock` should tell about it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The lock entry.
    pub locked: LockedChart,
    /// Problems worth a warning (missing dependencies, unreadable values, odd archives).
    pub warnings: Vec<String>,
}

impl HelmSource {
    /// A source over `http` and `registry`, with a scratch directory for archives read while
    /// locking.
    pub fn new(http: HttpSource, registry: RegistrySource) -> Result<HelmSource, LayoutError> {
        // Scratch space a killed run leaves is removed by the next one (fsutil::ScratchDir).
        let scratch_dir = |purpose| {
            crate::fsutil::ScratchDir::new(purpose).map_err(|e| LayoutError::Io {
                path: std::env::temp_dir(),
                source: e,
            })
        };
        let scratch = scratch_dir("charts")?;
        let helm_home = scratch_dir("helm")?;
        Ok(HelmSource {
            http,
            registry,
            scratch,
            helm_home,
            helm: None,
            kubernetes: LockedKubernetes::of(&Default::default()),
            indexes: Default::default(),
            wanted: HashMap::new(),
        })
    }

    /// Renders charts with the Helm at `path` (checked now), for the cluster `kubernetes`.
    pub async fn use_helm(&mut self, path: &std::path::Path) -> Result<&Helm, RenderError> {
        let helm = Helm::probe(path, self.helm_home.path()).await?;
        Ok(self.helm.insert(helm))
    }

    /// The cluster charts are rendered for.
    pub fn set_kubernetes(&mut self, kubernetes: LockedKubernetes) {
        self.kubernetes = kubernetes;
    }

    /// Names the charts of each repository this run resolves, so that each index is fetched
    /// and parsed once for all of them.
    pub fn expect(&mut self, charts: &[&ChartSpec]) {
        for spec in charts {
            if let ChartSource::Repo(repo) = &spec.source {
                let names = self.wanted.entry(repo.clone()).or_default();
                if !names.contains(&spec.name) {
                    names.push(spec.name.clone());
                }
            }
        }
    }

    /// The Helm that renders, if any.
    pub fn helm(&self) -> Option<&Helm> {
        self.helm.as_ref()
    }

    /// A repository's index, fetched once.
    async fn index(&self, repo: &str, name: &str) -> Result<Arc<repo::ChartIndex>, ChartError> {
        let mut cache = self.indexes.lock().await;
        if let Some(index) = cache.get(repo)
            && (index.entries(name).is_some()
                || self
                    .wanted
                    .get(repo)
                    .is_some_and(|n| n.iter().any(|n| n == name)))
        {
            return Ok(index.clone());
        }
        let url = repo::index_url(repo);
        let bytes = self.http.fetch_small(&url, repo::MAX_INDEX_SIZE).await?;
        let mut names = self.wanted.get(repo).cloned().unwrap_or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        let index = tokio::task::spawn_blocking(move || repo::parse_index(&bytes, &names))
            .await
            .map_err(|e| ChartError::BadIndex {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .map_err(|reason| ChartError::BadIndex {
                url: url.clone(),
                reason,
            })?;
        let index = Arc::new(index);
        cache.insert(repo.to_string(), index.clone());
        Ok(index)
    }

    /// Refuses a chart whose `kubeVersion` excludes the cluster, as `helm install` would.
    fn check_kube_version(
        &self,
        chart: &str,
        archive: &ChartArchive,
        warnings: &mut Vec<String>,
    ) -> Result<(), ChartError> {
        let required = archive.metadata.kube_version.trim();
        if required.is_empty() {
            return Ok(());
        }
        let kube = &self.kubernetes.version;
        let (Ok(constraint), Ok(version)) = (Constraint::parse(required), Version::parse(kube))
        else {
            warnings.push(format!(
                "{chart}: its Chart.yaml kubeVersion {required:?} cannot be read; whether it installs on Kubernetes {kube} is not checked"
            ));
            return Ok(());
        };
        if constraint.matches(&version) {
            Ok(())
        } else {
            Err(ChartError::KubeVersion {
                chart: chart.to_string(),
                required: required.to_string(),
                kube: kube.clone(),
            })
        }
    }

    /// The images of a chart: rendered by Helm when there is one, else read from its values
    /// (a guess, said so in a warning).
    async fn images(
        &self,
        spec: &ChartSpec,
        chart: &str,
        archive: &ChartArchive,
        path: &std::path::Path,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<ChartImage>, ImagesFoundBy), ChartError> {
        self.check_kube_version(chart, archive, warnings)?;
        let Some(helm) = &self.helm else {
            for problem in &archive.unreadable_values {
                warnings.push(format!(
                    "{chart}: cannot read {problem}; its images are not checked"
                ));
            }
            if archive.images.is_empty() {
                warnings.push(format!(
                    "{chart}: no image found in its values or annotations, and it was not rendered: its images are unknown. Run lock where Helm is installed (--helm, FERRY_HELM)"
                ));
            }
            return Ok((archive.images.clone(), ImagesFoundBy::Values));
        };
        let settings = RenderSettings {
            release_name: &spec.release_name,
            namespace: &spec.namespace,
            kube_version: &self.kubernetes.version,
            api_versions: &self.kubernetes.api_versions,
        };
        let values: Vec<&serde_json::Value> = spec.values.iter().map(|v| &v.values).collect();
        let output = helm.template(chart, path, &settings, &values).await?;
        let found = tokio::task::spawn_blocking(move || rendered::scan(&output))
            .await
            .map_err(|e| RenderError::Refused {
                chart: chart.to_string(),
                message: format!("reading the rendered objects failed: {e}"),
            })?;
        for problem in &found.unreadable {
            warnings.push(format!(
                "{chart}: Helm rendered a document that is not valid YAML ({problem}); its images are not checked"
            ));
        }
        if found.images.is_empty() {
            warnings.push(format!(
                "{chart}: Helm rendered {} object(s) naming no image{}; check its values if it should run something",
                found.objects,
                if found.objects == 0 { " (nothing at all)" } else { "" }
            ));
        }
        Ok((found.images.into_iter().collect(), ImagesFoundBy::Rendered))
    }

    fn scratch_layout(&self) -> Result<Layout, LayoutError> {
        Layout::create(self.scratch.path())
    }

    /// Resolves a chart of the manifest to an exact version and archive.
    pub async fn resolve(&self, spec: &ChartSpec) -> Result<Resolved, ChartError> {
        let constraint =
            Constraint::parse(&spec.version).map_err(|e| ChartError::NoMatchingVersion {
                chart: spec.key(),
                constraint: format!("{} ({e})", spec.version),
                available: Vec::new(),
            })?;
        match &spec.source {
            ChartSource::Repo(repo) => self.resolve_http(spec, repo, &constraint).await,
            ChartSource::Oci(reference) => self.resolve_oci(spec, reference, &constraint).await,
        }
    }

    async fn resolve_http(
        &self,
        spec: &ChartSpec,
        repo: &str,
        constraint: &Constraint,
    ) -> Result<Resolved, ChartError> {
        let url = repo::index_url(repo);
        let index = self.index(repo, &spec.name).await?;
        let entries = index
            .entries(&spec.name)
            .ok_or_else(|| ChartError::NoSuchChart {
                repo: repo.to_string(),
                name: spec.name.clone(),
                available: index.other_names.clone(),
                total: index.chart_count,
            })?;
        let versions: Vec<&str> = entries.iter().map(|e| e.version.0.as_str()).collect();
        let chosen = version::select(&versions, constraint).ok_or_else(|| {
            ChartError::NoMatchingVersion {
                chart: spec.key(),
                constraint: spec.version.clone(),
                available: newest_first(versions.iter().copied()),
            }
        })?;
        let entry = &entries[chosen];
        let version = entry.version.0.clone();
        let chart = format!("{} {version}", spec.key());
        let first_url = entry.urls.first().ok_or_else(|| ChartError::NoUrl {
            chart: spec.key(),
            version: version.clone(),
        })?;
        let chart_url =
            repo::resolve_url(repo, first_url).map_err(|reason| ChartError::BadIndex {
                url: url.clone(),
                reason,
            })?;
        let pinned = match entry
            .digest
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            None => None,
            Some(d) => {
                let text = if d.starts_with("sha256:") {
                    d.to_string()
                } else {
                    format!("sha256:{d}")
                };
                Some(Digest::parse(&text.to_ascii_lowercase()).map_err(|_| {
                    ChartError::BadDigest {
                        chart: spec.key(),
                        version: version.clone(),
                        digest: d.to_string(),
                    }
                })?)
            }
        };
        let scratch = self.scratch_layout()?;
        let (digest, size) = self
            .http
            .fetch_to_store(&chart_url, pinned.as_ref(), None, &scratch, &|_| {})
            .await?;
        let archive = read_archive(&scratch, &digest, &chart)?;
        let mut warnings = archive_warnings(&chart, &archive);
        let (images, images_found_by) = self
            .images(
                spec,
                &chart,
                &archive,
                &scratch.blob_path(&digest),
                &mut warnings,
            )
            .await?;
        if pinned.is_none() {
            warnings.push(format!(
                "{chart}: index.yaml gives no digest for it; locked the archive as downloaded ({digest})"
            ));
        }
        if archive.metadata.version != version || archive.metadata.name != spec.name {
            warnings.push(format!(
                "{chart}: the archive's Chart.yaml says {} {}, not {} {version}",
                archive.metadata.name, archive.metadata.version, spec.name
            ));
        }
        let artifact = HelmArtifact::new(&archive.metadata, &digest, size, &created(&archive));
        Ok(Resolved {
            locked: LockedChart {
                name: spec.name.clone(),
                constraint: spec.version.clone(),
                version,
                repo: Some(repo.to_string()),
                url: Some(chart_url),
                reference: None,
                tag: None,
                digest,
                size,
                manifest: artifact.manifest_digest(),
                manifest_size: artifact.manifest.len() as u64,
                dependencies: archive.dependencies,
                release_name: spec.release_name.clone(),
                namespace: spec.namespace.clone(),
                values: spec.values.clone(),
                images_found_by,
                images,
            },
            warnings,
        })
    }

    async fn resolve_oci(
        &self,
        spec: &ChartSpec,
        reference: &str,
        constraint: &Constraint,
    ) -> Result<Resolved, ChartError> {
        let repository = Reference::parse(reference).map_err(|e| ChartError::NotAChart {
            reference: spec.key(),
            reason: e.to_string(),
        })?;
        // An exact version is fetched by its tag; a range needs the tag list (as Helm does).
        let exact_tag = constraint
            .is_exact()
            .then(|| spec.version.replace('+', "_"));
        let fetched = match exact_tag {
            Some(tag) => match self.fetch_tag(&repository, &tag).await {
                Ok(f) => Some((spec.version.clone(), tag, f)),
                Err(RegistryError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let (version, tag, fetched) = match fetched {
            Some(found) => found,
            None => {
                let tags = self.registry.list_tags(&repository).await?;
                // Helm reads OCI tags as strict semantic versions, `_` standing for `+`.
                let versions: Vec<String> = tags
                    .iter()
                    .map(|t| t.replace('_', "+"))
                    .filter(|v| Version::parse_strict(v).is_ok())
                    .collect();
                let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
                let chosen = version::select(&refs, constraint).ok_or_else(|| {
                    ChartError::NoMatchingVersion {
                        chart: spec.key(),
                        constraint: spec.version.clone(),
                        available: newest_first(refs.iter().copied()),
                    }
                })?;
                let version = versions[chosen].clone();
                let tag = version.replace('+', "_");
                let fetched = self.fetch_tag(&repository, &tag).await?;
                (version, tag, fetched)
            }
        };
        let chart = format!("{} {version}", spec.key());
        let (manifest, bytes, manifest_digest) = fetched;
        let layer = chart_layer(&manifest, &format!("{}:{tag}", spec.key()))?;
        let scratch = self.scratch_layout()?;
        self.registry
            .fetch_blob(&repository, &layer.digest, layer.size, &scratch, &|_| {})
            .await?;
        let archive = read_archive(&scratch, &layer.digest, &chart)?;
        let mut warnings = archive_warnings(&chart, &archive);
        let (images, images_found_by) = self
            .images(
                spec,
                &chart,
                &archive,
                &scratch.blob_path(&layer.digest),
                &mut warnings,
            )
            .await?;
        if archive.metadata.version != version || archive.metadata.name != spec.name {
            warnings.push(format!(
                "{chart}: the archive's Chart.yaml says {} {}, not {} {version}",
                archive.metadata.name, archive.metadata.version, spec.name
            ));
        }
        Ok(Resolved {
            locked: LockedChart {
                name: spec.name.clone(),
                constraint: spec.version.clone(),
                version,
                repo: None,
                url: None,
                reference: Some(spec.key()),
                tag: Some(tag),
                digest: layer.digest.clone(),
                size: layer.size,
                manifest: manifest_digest,
                manifest_size: bytes.len() as u64,
                dependencies: archive.dependencies,
                release_name: spec.release_name.clone(),
                namespace: spec.namespace.clone(),
                values: spec.values.clone(),
                images_found_by,
                images,
            },
            warnings,
        })
    }

    /// A chart manifest by tag: parsed, checked to be a Helm chart.
    async fn fetch_tag(
        &self,
        repository: &Reference,
        tag: &str,
    ) -> Result<(OciManifest, Vec<u8>, Digest), RegistryError> {
        let reference = Reference::parse(&format!("{}:{tag}", repository.name())).map_err(|e| {
            RegistryError::Failed {
                host: repository.registry().to_string(),
                reference: format!("{}:{tag}", repository.name()),
                message: e.to_string(),
            }
        })?;
        let fetched = self.registry.fetch_manifest(&reference).await?;
        let manifest: OciManifest =
            serde_json::from_slice(&fetched.bytes).map_err(|e| RegistryError::Failed {
                host: repository.registry().to_string(),
                reference: reference.to_string(),
                message: format!("not an OCI manifest ({e}); a Helm chart is one"),
            })?;
        Ok((manifest, fetched.bytes, fetched.digest))
    }

    /// Stores a locked chart in the bundle and returns its index entry.
    pub async fn build(
        &self,
        layout: &Layout,
        locked: &LockedChart,
    ) -> Result<Descriptor, ChartError> {
        let chart = format!("{} {}", locked.key(), locked.version);
        match (&locked.reference, &locked.url) {
            (Some(key), _) => {
                let path = key.strip_prefix("oci://").unwrap_or(key);
                let repository = Reference::parse(path).map_err(|e| ChartError::NotAChart {
                    reference: key.clone(),
                    reason: e.to_string(),
                })?;
                let pinned = repository.with_digest(locked.manifest.as_str());
                let bytes = if layout.has_blob(&locked.manifest) {
                    layout.read_document(&locked.manifest)?
                } else {
                    let fetched = self.registry.fetch_manifest(&pinned).await?;
                    layout.write_blob(&fetched.digest, &fetched.bytes)?;
                    fetched.bytes
                };
                let manifest: OciManifest =
                    serde_json::from_slice(&bytes).map_err(|e| ChartError::NotAChart {
                        reference: pinned.to_string(),
                        reason: e.to_string(),
                    })?;
                chart_layer(&manifest, &pinned.to_string())?;
                for blob in manifest.blobs() {
                    if !layout.has_blob(&blob.digest) {
                        self.registry
                            .fetch_blob(&repository, &blob.digest, blob.size, layout, &|_| {})
                            .await?;
                    }
                }
            }
            (None, Some(url)) => {
                self.http
                    .fetch_to_store(
                        url,
                        Some(&locked.digest),
                        Some(locked.size),
                        layout,
                        &|_| {},
                    )
                    .await?;
                let archive = read_archive(layout, &locked.digest, &chart)?;
                let artifact = HelmArtifact::new(
                    &archive.metadata,
                    &locked.digest,
                    locked.size,
                    &created(&archive),
                );
                let actual = artifact.manifest_digest();
                if actual != locked.manifest {
                    return Err(ChartError::ManifestChanged {
                        chart,
                        expected: locked.manifest.clone(),
                        actual,
                    });
                }
                layout.write_blob(&Digest::of_bytes(&artifact.config), &artifact.config)?;
                layout.write_blob(&actual, &artifact.manifest)?;
            }
            (None, None) => return Err(ChartError::BadLock(locked.name.clone())),
        }
        Ok(entry(locked))
    }
}

/// The index.json entry of a locked chart: a pure function of the lock.
pub fn entry(locked: &LockedChart) -> Descriptor {
    let descriptor = Descriptor {
        media_type: OCI_MANIFEST.to_string(),
        digest: locked.manifest.clone(),
        size: locked.manifest_size,
        platform: None,
        annotations: BTreeMap::new(),
        artifact_type: None,
    };
    index_entry(
        &descriptor,
        KIND,
        &bundle_reference(&locked.key(), &locked.version),
    )
}

/// The chart layer of a Helm manifest, after checking the config says Helm chart.
pub fn chart_layer<'a>(
    manifest: &'a OciManifest,
    reference: &str,
) -> Result<&'a Descriptor, ChartError> {
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(ChartError::NotAChart {
            reference: reference.to_string(),
            reason: format!(
                "its config has media type {}, not {CONFIG_MEDIA_TYPE}",
                manifest.config.media_type
            ),
        });
    }
    let mut layers = manifest
        .layers
        .iter()
        .filter(|l| is_chart_layer(&l.media_type));
    match (layers.next(), layers.next()) {
        (Some(layer), None) => Ok(layer),
        (None, _) => Err(ChartError::NotAChart {
            reference: reference.to_string(),
            reason: "it has no chart archive layer".to_string(),
        }),
        (Some(_), Some(_)) => Err(ChartError::NotAChart {
            reference: reference.to_string(),
            reason: "it has more than one chart archive layer".to_string(),
        }),
    }
}

/// Reads a stored archive.
pub fn read_archive(
    layout: &Layout,
    digest: &Digest,
    chart: &str,
) -> Result<ChartArchive, ChartError> {
    // Through the layout, so an archive in an S3 bundle reads as one in a directory.
    let file = layout.open_blob(digest)?;
    archive::read(BufReader::new(file)).map_err(|source| ChartError::Archive {
        chart: chart.to_string(),
        source,
    })
}

/// The `created` annotation for an archive from an HTTP repository.
fn created(archive: &ChartArchive) -> String {
    crate::time::rfc3339(archive.packaged_at.unwrap_or(0))
}

fn archive_warnings(chart: &str, archive: &ChartArchive) -> Vec<String> {
    let mut out = Vec::new();
    if !archive.missing_dependencies.is_empty() {
        out.push(format!(
            "{chart}: Chart.yaml declares {} but the archive does not carry {}; `helm install` will refuse the chart (the chart must be packaged after `helm dependency build`)",
            archive.missing_dependencies.join(", "),
            if archive.missing_dependencies.len() == 1 { "it" } else { "them" }
        ));
    }
    out
}

fn newest_first<'a>(versions: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut list: Vec<String> = versions.map(str::to_string).collect();
    version::sort_descending(&mut list);
    list.dedup();
    list
}
