//! The git steps of `lock` and `build`: refs resolved upstream, repositories carried as
//! bundles (a delta's bundle holding only what its base lacks).

use anyhow::Context;

use crate::digest::Digest;
use crate::layout::Layout;
use crate::layout::delta::Base;
use crate::layout::git::{self, GitConfig};
use crate::layout::oci::Descriptor;
use crate::manifest::Manifest;
use crate::manifest::git::LockedGit;
use crate::manifest::lock::Lock;
use crate::progress::{Ui, human_bytes};

/// Locks `spec.git`: entries of `keep` still in step with the manifest are reused.
pub async fn lock(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
) -> anyhow::Result<Vec<LockedGit>> {
    let mut out = Vec::new();
    for spec in &manifest.spec.git {
        if let Some(l) = keep.and_then(|k| k.git.iter().find(|l| l.matches(spec))) {
            out.push(l.clone());
            continue;
        }
        ui.status(format!(
            "resolving the refs of git repository {}",
            spec.name
        ));
        let spec = spec.clone();
        let path = manifest.path.clone();
        let locked = tokio::task::spawn_blocking(move || {
            crate::source::git::lock(&spec).with_context(|| {
                format!(
                    "{}:{}:{}: cannot lock git repository {}",
                    path.display(),
                    spec.location.line,
                    spec.location.column,
                    spec.name
                )
            })
        })
        .await
        .context("locking a git repository stopped unexpectedly")??;
        out.push(locked);
    }
    Ok(out)
}

/// Carries every locked repository into the store; returns their index entries.
pub async fn build(
    ui: &Ui,
    layout: &Layout,
    lock: &Lock,
    base: Option<&Base>,
) -> anyhow::Result<Vec<Descriptor>> {
    let mut entries = Vec::new();
    for locked in &lock.git {
        let (locked, layout) = (locked.clone(), layout.clone());
        let base_objects: Vec<String> = base
            .and_then(|b| b.git.get(&locked.name))
            .cloned()
            .unwrap_or_default();
        let name = locked.name.clone();
        let (entry, size) =
            tokio::task::spawn_blocking(move || carry(&locked, &layout, &base_objects))
                .await
                .context("bundling a git repository stopped unexpectedly")?
                .with_context(|| format!("cannot carry git repository {name}"))?;
        ui.status(match size {
            Some(size) => format!("git repository {name}: bundle of {}", human_bytes(size)),
            None => format!("git repository {name}: no objects beyond the base release"),
        });
        entries.push(entry);
    }
    Ok(entries)
}

fn carry(
    locked: &LockedGit,
    layout: &Layout,
    base: &[String],
) -> anyhow::Result<(Descriptor, Option<u64>)> {
    let scratch =
        crate::fsutil::ScratchDir::new("git").context("cannot make a scratch directory")?;
    let repo = scratch.path().join(format!("{}.git", locked.name));
    crate::source::git::fetch(locked, &repo)?;
    let file = scratch.path().join(format!("{}.bundle", locked.name));
    let prerequisites = crate::source::git::bundle(locked, &repo, base, &file)?;
    let config = GitConfig {
        name: locked.name.clone(),
        url: locked.url.clone(),
        refs: locked.refs.clone(),
        head: locked.head.clone(),
        prerequisites: prerequisites.clone().unwrap_or_default(),
    };
    let blob = match prerequisites {
        Some(_) => {
            let mut writer = layout.unknown_blob_writer()?;
            let mut reader = std::fs::File::open(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = std::io::Read::read(&mut reader, &mut buf)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                if n == 0 {
                    break;
                }
                writer.write_all(&buf[..n])?;
            }
            let (digest, size): (Digest, u64) = writer.commit_digest()?;
            Some((digest, size))
        }
        None => None,
    };
    let entry = git::write(layout, &config, blob.as_ref().map(|(d, s)| (d, *s)))?;
    Ok((entry, blob.map(|(_, s)| s)))
}
