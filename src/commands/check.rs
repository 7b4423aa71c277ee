//! `ferry check`: the images the release's charts would pull that the release does not carry.
//!
//! Without a lock (a manifest not yet locked on a connected machine) it checks the manifest
//! alone and says that the charts' images wait for the lock.
//!
//! It works offline from the lock: `lock` renders every chart with Helm (or, without one,
//! reads its values files and `artifacthub.io/images` annotation, and says so) and records
//! each image with where it is named, so the check needs neither the network, Helm nor a
//! bundle. The report is per chart: the images it needs (pulled by its workloads, deployed by
//! the operators it installs), how they were found, and those the release does not carry.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;

use super::charts::{ChartReport, MissingImage, report};
use crate::cli::CheckArgs;
use crate::manifest::Manifest;
use crate::manifest::lock::{Lock, default_path};
use crate::progress::Ui;

#[derive(Serialize)]
struct ManifestOnly {
    manifest: String,
    lock: Option<String>,
    images: usize,
    charts: usize,
    files: usize,
    apt_packages: usize,
    note: String,
}

#[derive(Serialize)]
struct Checked {
    manifest: String,
    lock: String,
    /// How many charts.
    charts: usize,
    /// Distinct images the charts need, summed over the charts.
    chart_images: usize,
    /// The Helm that rendered them (absent: none could run at lock time).
    helm: Option<String>,
    /// The Kubernetes version they were rendered for.
    kube_version: Option<String>,
    /// Charts that were not rendered: their images are a guess.
    not_rendered: Vec<String>,
    /// Per chart, in lock order.
    by_chart: Vec<ChartReport>,
    /// Every image needed and not carried, all charts together.
    missing: Vec<MissingImage>,
}

/// Runs `ferry check`; fails when a chart would pull an image the release does not carry.
pub fn run(ui: &Ui, args: &CheckArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let lock_path: PathBuf = args
        .lock
        .clone()
        .unwrap_or_else(|| default_path(&args.manifest));
    if !lock_path.exists() {
        if args.lock.is_some() {
            bail!("there is no lock file {}", lock_path.display());
        }
        let result = ManifestOnly {
            manifest: manifest.path.display().to_string(),
            lock: None,
            images: manifest.spec.images.len(),
            charts: manifest.spec.charts.len(),
            files: manifest.spec.files.len(),
            apt_packages: manifest.spec.apt.as_ref().map_or(0, |a| a.packages.len()),
            note: format!(
                "not locked yet: the images the charts pull are checked once `ferry lock {}` has run on a connected machine",
                args.manifest.display()
            ),
        };
        ui.result(&result, || {
            format!(
                "{}: valid ({} images, {} charts, {} files, {} apt packages)\n{}\n",
                result.manifest,
                result.images,
                result.charts,
                result.files,
                result.apt_packages,
                result.note
            )
        });
        return Ok(());
    }
    let lock = Lock::load(&lock_path)
        .with_context(|| format!("cannot read lock file {}", lock_path.display()))?;
    let diff = lock.differences(&manifest);
    if !diff.is_empty() {
        bail!(
            "{} is out of date with {}:\n  - {}\nrun `ferry lock {}` first",
            lock_path.display(),
            manifest.path.display(),
            diff.join("\n  - "),
            manifest.path.display()
        );
    }
    let by_chart = report(&manifest, &lock);
    let result = Checked {
        manifest: manifest.path.display().to_string(),
        lock: lock_path.display().to_string(),
        charts: lock.charts.len(),
        chart_images: by_chart.iter().map(|c| c.images).sum(),
        helm: lock.helm.clone(),
        kube_version: lock.kubernetes.as_ref().map(|k| k.version.clone()),
        not_rendered: by_chart
            .iter()
            .filter(|c| !c.rendered)
            .map(|c| c.chart.clone())
            .collect(),
        missing: by_chart.iter().flat_map(|c| c.missing.clone()).collect(),
        by_chart,
    };
    if !result.not_rendered.is_empty() {
        ui.warn(format!(
            "{} chart(s) were not rendered when {} was made (no Helm): {}. Their images are a guess from their values files; lock again where Helm 3.8+ or 4 runs (--helm, FERRY_HELM)",
            result.not_rendered.len(),
            lock_path.display(),
            result.not_rendered.join(", ")
        ));
    }
    ui.result(&result, || text(&result));
    if !result.missing.is_empty() {
        bail!(
            "{} image(s) the charts would pull are not in the release; add them to spec.images in {} (or change the chart values) and run `ferry lock` again",
            result.missing.len(),
            manifest.path.display()
        );
    }
    Ok(())
}

fn text(r: &Checked) -> String {
    let mut out = String::new();
    for c in &r.by_chart {
        let how = if c.rendered {
            format!(
                "rendered{}",
                r.helm
                    .as_deref()
                    .map(|h| format!(" with Helm {h}"))
                    .unwrap_or_default()
            )
        } else {
            "NOT rendered, guessed from values".to_string()
        };
        let split = if c.rendered {
            format!(
                " ({} pulled by workloads, {} deployed by operators)",
                c.workload_images, c.operator_images
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "chart {} ({how}): {} image(s){split}, {}\n",
            c.chart,
            c.images,
            match c.missing.len() {
                0 => "all carried".to_string(),
                n => format!("{n} not carried"),
            }
        ));
        if !c.missing.is_empty() {
            out.push_str(&format!(
                "  {} would pull images the release does not carry:\n",
                c.chart
            ));
        }
        for m in &c.missing {
            out.push_str(&format!("    {}  ({})\n", m.image, describe(m)));
        }
        if let Some(note) = &c.note {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    if r.missing.is_empty() {
        out.push_str(&format!(
            "{}: every image the {} chart(s) name ({} found) is in the release\n",
            r.manifest, r.charts, r.chart_images
        ));
    }
    out
}

/// `where; how found[, who pulls it][, and N more places]`.
fn describe(m: &MissingImage) -> String {
    use crate::manifest::lock::{Found, PulledBy};
    let mut out = m.from.clone();
    out.push_str(match m.found {
        Found::Rendered => "; rendered",
        Found::Values => "; from values",
        Found::Annotation => "; from the artifacthub.io/images annotation",
    });
    match m.pulled_by {
        Some(PulledBy::Workload) => out.push_str(", pulled by a workload"),
        Some(PulledBy::Operator) => out.push_str(", deployed by an operator"),
        None => {}
    }
    if m.also_named > 0 {
        out.push_str(&format!(", and {} more place(s)", m.also_named));
    }
    out
}

/// Warns about each missing image (during `lock`).
pub fn warn_missing(ui: &Ui, missing: &[MissingImage]) {
    for m in missing {
        ui.warn(format!(
            "chart {} would pull {} ({}), which the release does not carry: add it to spec.images",
            m.chart,
            m.image,
            describe(m)
        ));
    }
}
