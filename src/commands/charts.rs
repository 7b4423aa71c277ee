//! The chart part of `lock` and `build`, and the image check shared by `lock` and `check`.

use std::collections::BTreeSet;

use anyhow::Context;
use serde::Serialize;

use crate::layout::Layout;
use crate::layout::oci::Descriptor;
use crate::manifest::Manifest;
use crate::manifest::lock::{Lock, LockedChart, LockedChartDependency};
use crate::manifest::reference::Reference;
use crate::progress::Ui;
use crate::source::helm::HelmSource;
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

/// Resolves the manifest's charts; entries of `keep` that still match are reused. Warnings
/// (missing dependencies, archives without a digest in the index) go to the UI.
pub async fn resolve(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
    registries: &super::Registries<'_>,
) -> anyhow::Result<Vec<LockedChart>> {
    if manifest.spec.charts.is_empty() {
        return Ok(Vec::new());
    }
    let reused = |spec| keep.and_then(|lock| lock.charts.iter().find(|c| c.matches(spec)));
    let todo: Vec<_> = manifest
        .spec
        .charts
        .iter()
        .filter(|spec| reused(*spec).is_none())
        .collect();
    let source = if todo.is_empty() {
        None
    } else {
        Some(helm_source(registries).await?)
    };
    let bar = ui.items_bar(todo.len() as u64, "charts");
    let mut charts = Vec::new();
    for spec in &manifest.spec.charts {
        if let Some(locked) = reused(spec) {
            charts.push(locked.clone());
            continue;
        }
        let source = source.as_ref().context("internal: no chart source")?;
        bar.set_message(spec.key());
        let resolved = source.resolve(spec).await.with_context(|| {
            format!(
                "{}:{}:{}: cannot resolve chart {} {}",
                manifest.path.display(),
                spec.location.line,
                spec.location.column,
                spec.key(),
                spec.version
            )
        })?;
        for warning in &resolved.warnings {
            ui.warn(warning);
        }
        charts.push(resolved.locked);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(charts)
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
    /// Where the chart names it.
    pub from: String,
}

/// The images the locked charts name that neither the manifest's images nor their locked
/// digests cover.
///
/// An image named with a digest is carried when an image of the same repository resolved to
/// that digest (or the manifest pins it); one named by tag, when the manifest lists that
/// repository and tag.
pub fn missing_images(manifest: &Manifest, lock: &Lock) -> Vec<MissingImage> {
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
    let mut missing = Vec::new();
    for chart in &lock.charts {
        let mut seen = BTreeSet::new();
        for found in &chart.images {
            let Ok(reference) = Reference::parse(&found.image) else {
                continue;
            };
            let name = reference.name();
            let carried = match (reference.digest(), reference.tag()) {
                (Some(digest), _) => carried_digests.contains(&(name, digest.to_string())),
                (None, Some(tag)) => carried_tags.contains(&(name, tag.to_string())),
                (None, None) => false,
            };
            if !carried && seen.insert(found.image.clone()) {
                missing.push(MissingImage {
                    chart: format!("{} {}", chart.key(), chart.version),
                    image: found.image.clone(),
                    from: found.from.clone(),
                });
            }
        }
    }
    missing
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
            images: images
                .iter()
                .map(|i| ChartImage {
                    image: Reference::parse(i).unwrap().to_string(),
                    from: "values.yaml: image".into(),
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
