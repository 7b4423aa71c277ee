//! The apt steps of `ferry lock` and `ferry build`.

use anyhow::Context;

use crate::cli::RegistryArgs;
use crate::layout::Layout;
use crate::layout::oci::Descriptor;
use crate::manifest::Manifest;
use crate::manifest::apt::{LockedApt, differences};
use crate::manifest::lock::Lock;
use crate::progress::Ui;
use crate::source::apt;
use crate::source::http::HttpSource;

/// The apt part of a new lock: kept from `keep` when it still answers the manifest, else
/// resolved anew.
pub async fn lock_apt(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
    registry: &RegistryArgs,
) -> anyhow::Result<Option<LockedApt>> {
    let Some(spec) = &manifest.spec.apt else {
        return Ok(None);
    };
    if let Some(kept) = keep.and_then(|l| l.apt.as_ref())
        && differences(Some(kept), Some(spec)).is_empty()
    {
        return Ok(Some(kept.clone()));
    }
    let http = HttpSource::new(&registry.ca_files)?;
    let locked = apt::lock(ui, &manifest.path.display().to_string(), spec, &http)
        .await
        .with_context(|| {
            format!(
                "{}:{}:{}: cannot resolve the apt packages",
                manifest.path.display(),
                spec.location.line,
                spec.location.column
            )
        })?;
    Ok(Some(locked))
}

/// Fetches the locked `.deb` files and writes the apt artifacts; returns their index entries.
pub async fn build_apt(
    ui: &Ui,
    layout: &Layout,
    manifest: &Manifest,
    lock: &Lock,
    registry: &RegistryArgs,
    jobs: usize,
) -> anyhow::Result<Vec<Descriptor>> {
    let (Some(spec), Some(locked)) = (&manifest.spec.apt, &lock.apt) else {
        return Ok(Vec::new());
    };
    let http = HttpSource::new(&registry.ca_files)?;
    let (entries, stats) = apt::build(
        ui,
        layout,
        &manifest.path.display().to_string(),
        spec,
        locked,
        &http,
        jobs,
    )
    .await
    .context(
        "the apt part of the build stopped; packages already downloaded are kept, run the same command again to resume",
    )?;
    ui.status(format!(
        "apt: {} packages in {} source(s), {} downloaded now",
        stats.debs,
        entries.len(),
        stats.fetched
    ));
    Ok(entries)
}
