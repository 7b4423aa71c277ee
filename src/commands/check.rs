//! `ferry check`: the images the release's charts would pull that the release does not carry.
//!
//! Without a lock (a manifest not yet locked on a connected machine) it checks the manifest
//! alone and says that the charts' images wait for the lock.
//!
//! It works offline from the lock: `lock` reads every chart archive once and records the
//! images its values.yaml files and `artifacthub.io/images` annotation name (packed charts
//! included), so the check needs neither the network nor a bundle.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;

use super::charts::{MissingImage, missing_images};
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
    charts: usize,
    chart_images: usize,
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
    let missing = missing_images(&manifest, &lock);
    let result = Checked {
        manifest: manifest.path.display().to_string(),
        lock: lock_path.display().to_string(),
        charts: lock.charts.len(),
        chart_images: lock.charts.iter().map(|c| c.images.len()).sum(),
        missing,
    };
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
    let mut chart = "";
    for m in &r.missing {
        if m.chart != chart {
            chart = &m.chart;
            out.push_str(&format!(
                "chart {chart} would pull images the release does not carry:\n"
            ));
        }
        out.push_str(&format!("  {}  ({})\n", m.image, m.from));
    }
    if r.missing.is_empty() {
        out.push_str(&format!(
            "{}: every image the {} chart(s) name ({} found) is in the release\n",
            r.manifest, r.charts, r.chart_images
        ));
    }
    out
}

/// Warns about each missing image (during `lock`).
pub fn warn_missing(ui: &Ui, missing: &[MissingImage]) {
    for m in missing {
        ui.warn(format!(
            "chart {} would pull {} ({}), which the release does not carry: add it to spec.images",
            m.chart, m.image, m.from
        ));
    }
}
