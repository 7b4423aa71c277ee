//! The chart part of `lock` and `build`, and the image check shared by `lock` and `check`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::HelmArgs;
use crate::layout::Layout;
use crate::layout::oci::Descriptor;
use crate::manifest::Manifest;
use crate::manifest::lock::{
    ChartImage, Found, ImagesFoundBy, Lock, LockedChart, LockedChartDependency, LockedKubernetes,
    PulledBy,
};
use crate::manifest::reference::Reference;
use crate::progress::Ui;
use crate::source::helm::{HelmSource, render};
use crate::source::http::HttpSource;

/// Connects to what the charts need: HTTP for repositories, registries for `oci://` charts.
async fn helm_source(registries: &super::Registries<'_>) -> anyhow::Result<HelmSource> {
    let http =
        HttpSource::new(&registries.args().ca_files).context("cannot prepare HTTP downloads")?;
    let source = registries.source().await?.clone();
    HelmSource::new(http, source).context("cannot create a scratch directory for charts")
}

/// The registry host of an `oci://` chart reference.
pub fn oci_host(reference: &str) -> &str {
    let path = reference.strip_prefix("oci://").unwrap_or(reference);
    path.split('/').next().unwrap_or(path)
}

/// Charts resolved (and rendered) at once.
const RESOLVE_CONCURRENCY: usize = 4;

/// Resolves the manifest's charts; entries of `keep` that still match are reused. Each chart
/// is rendered with Helm (`--helm`, `FERRY_HELM`, `helm` on PATH) to find its images; without
/// a Helm they are guessed from its values, and a warning names the charts. Returns the
/// charts and the version of the Helm that rendered them. Warnings (missing dependencies,
/// archives without a digest in the index, charts naming no image) go to the UI.
pub async fn resolve(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
    registries: &super::Registries<'_>,
    helm: &HelmArgs,
) -> anyhow::Result<(Vec<LockedChart>, Option<String>)> {
    if manifest.spec.charts.is_empty() {
        return Ok((Vec::new(), None));
    }
    let kubernetes = LockedKubernetes::of(&manifest.spec.kubernetes);
    let kube_same = keep.is_some_and(|lock| lock.kubernetes.as_ref() == Some(&kubernetes));
    let reused = |spec| {
        keep.filter(|_| kube_same)
            .and_then(|lock| lock.charts.iter().find(|c| c.matches(spec)))
    };
    let todo: Vec<_> = manifest
        .spec
        .charts
        .iter()
        .filter(|spec| reused(*spec).is_none())
        .collect();
    let mut helm_version = keep.and_then(|lock| lock.helm.clone());
    let source = if todo.is_empty() {
        None
    } else {
        let mut source = helm_source(registries).await?;
        source.expect(&todo);
        source.set_kubernetes(kubernetes.clone());
        if let Some((path, explicit)) = render::choose(helm.helm.as_deref()) {
            match source.use_helm(&path).await {
                Ok(found) => {
                    helm_version = Some(found.version().to_string());
                    ui.status(format!(
                        "rendering charts with {} ({}) for Kubernetes {}",
                        path.display(),
                        found.version(),
                        kubernetes.version
                    ));
                }
                // A Helm the user named must work; one merely found on PATH may not.
                Err(e) if explicit => return Err(e.into()),
                Err(e) => ui.warn(format!("{e}; the charts are not rendered")),
            }
        }
        if source.helm().is_none() {
            ui.warn(format!(
                "no Helm to render with (--helm, {} or helm on PATH): chart(s) {} were NOT rendered; their images are guessed from values.yaml files and may be incomplete or wrong. Install Helm 3.8+ or 4 and lock again",
                render::HELM_ENV,
                todo.iter().map(|s| s.key()).collect::<Vec<_>>().join(", ")
            ));
        }
        Some(source)
    };
    let bar = ui.items_bar(todo.len() as u64, "charts");
    let resolved: Vec<anyhow::Result<crate::source::helm::Resolved>> =
        futures_util::stream::iter(todo.iter())
            .map(|spec| {
                let (bar, source) = (&bar, source.as_ref());
                async move {
                    let source = source.context("internal: no chart source")?;
                    let resolved = source.resolve(spec).await.with_context(|| {
                        format!(
                            "{}:{}:{}: cannot resolve chart {} {}",
                            manifest.path.display(),
                            spec.location.line,
                            spec.location.column,
                            spec.key(),
                            spec.version
                        )
                    });
                    bar.inc(1);
                    resolved
                }
            })
            .buffered(RESOLVE_CONCURRENCY)
            .collect()
            .await;
    bar.finish_and_clear();
    let mut fresh = Vec::new();
    for r in resolved {
        let r = r?;
        for warning in &r.warnings {
            ui.warn(warning);
        }
        fresh.push(r.locked);
    }
    let mut fresh = fresh.into_iter();
    let mut charts = Vec::new();
    for spec in &manifest.spec.charts {
        match reused(spec) {
            Some(locked) => charts.push(locked.clone()),
            None => charts.push(fresh.next().context("internal: chart resolve count")?),
        }
    }
    if !charts
        .iter()
        .any(|c| c.images_found_by == ImagesFoundBy::Rendered)
    {
        helm_version = None;
    }
    Ok((charts, helm_version))
}

/// Stores every locked chart in the bundle; returns their index entries, in lock order.
pub async fn build(
    ui: &Ui,
    lock: &Lock,
    layout: &Layout,
    registries: &super::Registries<'_>,
) -> anyhow::Result<Vec<Descriptor>> {
    if lock.charts.is_empty() {
        return Ok(Vec::new());
    }
    let source = helm_source(registries).await?;
    let bar = ui.items_bar(lock.charts.len() as u64, "charts");
    let mut entries = Vec::new();
    for chart in &lock.charts {
        bar.set_message(format!("{} {}", chart.key(), chart.version));
        let entry = source.build(layout, chart).await.with_context(|| {
            format!(
                "cannot pull chart {} {}; run the same command again to resume",
                chart.key(),
                chart.version
            )
        })?;
        entries.push(entry);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(entries)
}

/// Text lines for `lock`'s summary: each chart, its source, and what it packs.
pub fn summary(lock: &Lock) -> String {
    fn deps(out: &mut String, list: &[LockedChartDependency], depth: usize) {
        for d in list {
            out.push_str(&format!(
                "{}packs {} {}\n",
                "  ".repeat(depth + 1),
                d.name,
                d.version
            ));
            deps(out, &d.dependencies, depth + 1);
        }
    }
    let mut out = String::new();
    for c in &lock.charts {
        let from = match (&c.url, &c.reference, &c.tag) {
            (Some(url), _, _) => url.clone(),
            (None, Some(reference), Some(tag)) => format!("{reference}:{tag}@{}", c.manifest),
            _ => c.key(),
        };
        out.push_str(&format!(
            "chart {} {} ({}) {}  from {from}\n",
            c.key(),
            c.version,
            c.constraint,
            c.digest
        ));
        deps(&mut out, &c.dependencies, 0);
    }
    out
}

/// An image a chart would pull that the release does not carry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissingImage {
    /// The chart: `<key> <version>`.
    pub chart: String,
    /// The image, normalized.
    pub image: String,
    /// Where the chart names it (the first place): `file: Kind/name field`.
    pub from: String,
    /// How it was found: `rendered`, `values` or `annotation`.
    pub found: Found,
    /// Who pulls it (rendered charts): `workload` or `operator`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulled_by: Option<PulledBy>,
    /// How many other places name it.
    #[serde(skip_serializing_if = "is_zero")]
    pub also_named: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What `check` says about one chart.
#[derive(Debug, Clone, Serialize)]
pub struct ChartReport {
    /// The chart: `<key> <version>`.
    pub chart: String,
    /// Whether Helm rendered it at lock time (else its images are a guess from its values).
    pub rendered: bool,
    /// Distinct images it needs.
    pub images: usize,
    /// Of those, the ones its workloads pull.
    pub workload_images: usize,
    /// Of those, the ones an operator it installs will deploy (custom resources, container
    /// arguments and environment, ConfigMaps).
    pub operator_images: usize,
    /// The ones the release does not carry.
    pub missing: Vec<MissingImage>,
    /// What to know about the result (not rendered, no image found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The images each locked chart needs and which of them neither the manifest's images nor
/// their locked digests cover.
///
/// An image named with a digest is carried when an image of the same repository resolved to
/// that digest (or the manifest pins it); one named by tag, when the manifest lists that
/// repository and tag.
pub fn report(manifest: &Manifest, lock: &Lock) -> Vec<ChartReport> {
    let mut carried_tags: BTreeSet<(String, String)> = BTreeSet::new();
    let mut carried_digests: BTreeSet<(String, String)> = BTreeSet::new();
    for spec in &manifest.spec.images {
        let name = spec.reference.name();
        if let Some(tag) = spec.reference.tag() {
            carried_tags.insert((name.clone(), tag.to_string()));
        }
        if let Some(digest) = spec.reference.digest() {
            carried_digests.insert((name.clone(), digest.to_string()));
        }
    }
    for image in &lock.images {
        let Ok(reference) = Reference::parse(&image.reference) else {
            continue;
        };
        let name = reference.name();
        for digest in std::iter::once(&image.resolved)
            .chain(std::iter::once(&image.digest))
            .chain(image.manifests.iter().map(|m| &m.digest))
        {
            carried_digests.insert((name.clone(), digest.to_string()));
        }
    }
    let mut reports = Vec::new();
    for chart in &lock.charts {
        let label = format!("{} {}", chart.key(), chart.version);
        // Each image once, at the first place that names it; workload before operator.
        let mut first: BTreeMap<&str, (&ChartImage, usize)> = BTreeMap::new();
        let mut ordered: Vec<&ChartImage> = chart.images.iter().collect();
        ordered.sort_by_key(|i| (i.pulled_by, i.found));
        for found in ordered {
            first
                .entry(found.image.as_str())
                .and_modify(|(_, n)| *n += 1)
                .or_insert((found, 0));
        }
        let mut missing = Vec::new();
        let (mut workload, mut operator) = (0, 0);
        for (image, (found, others)) in &first {
            match found.pulled_by {
                Some(PulledBy::Workload) => workload += 1,
                Some(PulledBy::Operator) => operator += 1,
                None => {}
            }
            let Ok(reference) = Reference::parse(image) else {
                continue;
            };
            let name = reference.name();
            let carried = match (reference.digest(), reference.tag()) {
                (Some(digest), _) => carried_digests.contains(&(name, digest.to_string())),
                (None, Some(tag)) => carried_tags.contains(&(name, tag.to_string())),
                (None, None) => false,
            };
            if !carried {
                missing.push(MissingImage {
                    chart: label.clone(),
                    image: image.to_string(),
                    from: found.location(),
                    found: found.found,
                    pulled_by: found.pulled_by,
                    also_named: *others,
                });
            }
        }
        let rendered = chart.images_found_by == ImagesFoundBy::Rendered;
        let note = if !rendered {
            Some(
                "not rendered when locked (no Helm): its images were guessed from its values files and may be incomplete or wrong; lock again with Helm (--helm, FERRY_HELM)"
                    .to_string(),
            )
        } else if first.is_empty() {
            Some("Helm rendered no object that names an image".to_string())
        } else {
            None
        };
        reports.push(ChartReport {
            chart: label,
            rendered,
            images: first.len(),
            workload_images: workload,
            operator_images: operator,
            missing,
            note,
        });
    }
    reports
}

/// The images the locked charts need that the release does not carry, in chart order.
pub fn missing_images(manifest: &Manifest, lock: &Lock) -> Vec<MissingImage> {
    report(manifest, lock)
        .into_iter()
        .flat_map(|r| r.missing)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::manifest::lock::{ChartImage, LockedRelease};
    use std::path::Path;

    fn chart(images: &[&str]) -> LockedChart {
        LockedChart {
            name: "app".into(),
            constraint: "1.0.0".into(),
            version: "1.0.0".into(),
            repo: Some("https://charts.example.com".into()),
            url: Some("https://charts.example.com/app-1.0.0.tgz".into()),
            reference: None,
            tag: None,
            digest: Digest::of_bytes(b"tgz"),
            size: 3,
            manifest: Digest::of_bytes(b"m"),
            manifest_size: 1,
            dependencies: vec![],
            release_name: "app".into(),
            namespace: "default".into(),
            values: vec![],
            images_found_by: ImagesFoundBy::Values,
            images: images
                .iter()
                .map(|i| ChartImage {
                    image: Reference::parse(i).unwrap().to_string(),
                    from: "values.yaml".into(),
                    object: None,
                    field: Some("image".into()),
                    found: Found::Values,
                    pulled_by: None,
                })
                .collect(),
        }
    }

    #[test]
    fn images_carried_by_tag_or_digest() {
        let d = Digest::of_bytes(b"x");
        let manifest = Manifest::parse(
            &format!(
                "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: r, version: '1'}}\nspec:\n  images:\n    - quay.io/cilium/cilium:v1.16.5\n    - redis:7.4\n    - ghcr.io/x/pinned@{d}\n"
            ),
            Path::new("m.yaml"),
        )
        .unwrap();
        let lock = Lock {
            lock_version: 1,
            release: LockedRelease {
                name: "r".into(),
                version: "1".into(),
            },
            images: vec![],
            files: vec![],
            apt: None,
            kubernetes: None,
            helm: None,
            git: vec![],
            trees: vec![],
            charts: vec![chart(&[
                "quay.io/cilium/cilium:v1.16.5",
                "docker.io/library/redis:7.4",
                "redis:7.2",
                &format!("ghcr.io/x/pinned:1.0@{d}"),
                &format!(
                    "quay.io/cilium/cilium:v1.16.5@{}",
                    Digest::of_bytes(b"other")
                ),
            ])],
        };
        let missing: Vec<String> = missing_images(&manifest, &lock)
            .into_iter()
            .map(|m| m.image)
            .collect();
        assert_eq!(
            missing,
            [
                "docker.io/library/redis:7.2".to_string(),
                format!(
                    "quay.io/cilium/cilium:v1.16.5@{}",
                    Digest::of_bytes(b"other")
                ),
            ]
        );
    }
}
