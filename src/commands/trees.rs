//! The tree steps of `lock` and `build`: directories walked and hashed, then carried file by
//! file into the store.

use anyhow::Context;

use crate::layout::Layout;
use crate::layout::oci::Descriptor;
use crate::manifest::Manifest;
use crate::manifest::lock::Lock;
use crate::manifest::trees::LockedTree;
use crate::progress::{Ui, human_bytes};

/// Locks `spec.trees`: entries of `keep` still in step with the manifest are reused.
pub async fn lock(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
) -> anyhow::Result<Vec<LockedTree>> {
    let mut out = Vec::new();
    for spec in &manifest.spec.trees {
        if let Some(l) = keep.and_then(|k| k.trees.iter().find(|l| l.matches(spec))) {
            out.push(l.clone());
            continue;
        }
        ui.status(format!(
            "hashing tree {} ({})",
            spec.name,
            spec.dir.display()
        ));
        let bar = ui.bytes_bar(0, "hash");
        let spec = spec.clone();
        let path = manifest.path.clone();
        let locked = tokio::task::spawn_blocking(move || {
            crate::source::tree::lock(&spec, &|n| bar.inc(n)).with_context(|| {
                format!(
                    "{}:{}:{}: cannot lock tree {}",
                    path.display(),
                    spec.location.line,
                    spec.location.column,
                    spec.name
                )
            })
        })
        .await
        .context("locking a tree stopped unexpectedly")??;
        ui.status(format!(
            "tree {}: {} files, {}",
            locked.name,
            locked.files.len(),
            human_bytes(locked.size())
        ));
        out.push(locked);
    }
    Ok(out)
}

/// Carries every locked tree into the store; returns their index entries.
pub async fn build(
    ui: &Ui,
    manifest: &Manifest,
    layout: &Layout,
    lock: &Lock,
) -> anyhow::Result<Vec<Descriptor>> {
    let mut entries = Vec::new();
    for locked in &lock.trees {
        let Some(spec) = manifest.spec.trees.iter().find(|s| s.name == locked.name) else {
            anyhow::bail!(
                "tree {} is in the lock but not in the manifest; run `ferry lock`",
                locked.name
            );
        };
        let bar = ui.bytes_bar(locked.size(), "tree");
        let (locked, layout, dir) = (locked.clone(), layout.clone(), spec.dir.clone());
        let name = locked.name.clone();
        let entry = tokio::task::spawn_blocking(move || {
            crate::source::tree::fetch(&locked, &dir, &layout, &|n| bar.inc(n))?;
            anyhow::Ok(crate::layout::tree::write(&layout, &locked)?)
        })
        .await
        .context("carrying a tree stopped unexpectedly")?
        .with_context(|| format!("cannot carry tree {name}"))?;
        entries.push(entry);
    }
    Ok(entries)
}
