//! `ferry lock`, and the lock step `ferry build` runs when it needs one.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::{FileArgs, HelmArgs, LockArgs};
use crate::manifest::Manifest;
use crate::manifest::files::LockedFile;
use crate::manifest::lock::{
    LOCK_VERSION, Lock, LockedChart, LockedImage, LockedKubernetes, LockedRelease, default_path,
};
use crate::progress::Ui;
use crate::source::image;

/// Images resolved at once.
const RESOLVE_CONCURRENCY: usize = 8;

#[derive(Serialize)]
struct Locked<'a> {
    lock: String,
    images: &'a [LockedImage],
    #[serde(skip_serializing_if = "<[LockedFile]>::is_empty")]
    files: &'a [LockedFile],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    charts: &'a [LockedChart],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing_images: Vec<super::charts::MissingImage>,
}

/// Resolves the whole manifest anew and writes the lock.
pub async fn run(ui: &Ui, args: &LockArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| default_path(&args.manifest));
    let registries = super::Registries::for_manifest(&manifest, &args.registry);
    let lock = resolve_all(ui, &manifest, None, &registries, &args.files, &args.helm).await?;
    lock.save(&path)?;
    let missing_images = super::charts::missing_images(&manifest, &lock);
    ui.result(
        &Locked {
            lock: path.display().to_string(),
            images: &lock.images,
            files: &lock.files,
            charts: &lock.charts,
            missing_images,
        },
        || text_summary(&lock, &path),
    );
    Ok(())
}

fn text_summary(lock: &Lock, path: &Path) -> String {
    let mut out = String::new();
    for image in &lock.images {
        let mut extra = String::new();
        if !image.referrers.is_empty() {
            let signatures = image
                .referrers
                .iter()
                .filter(|r| crate::source::referrers::is_signature(r))
                .count();
            extra.push_str(&format!(
                "  +{} referrers ({signatures} signatures)",
                image.referrers.len()
            ));
        }
        for v in &image.verified {
            extra.push_str(&format!("  signed: {} ({})", v.key, v.fingerprint));
        }
        out.push_str(&format!(
            "{}  {}  {}{extra}\n",
            image.reference,
            image.digest,
            image
                .manifests
                .iter()
                .map(|m| m.platform.as_str())
                .filter(|p| *p != "unknown/unknown")
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    for repo in &lock.git {
        out.push_str(&format!(
            "git {}  {}  {} refs\n",
            repo.name,
            repo.url,
            repo.refs.len()
        ));
    }
    for tree in &lock.trees {
        out.push_str(&format!(
            "tree {}  {}  {} files, {}\n",
            tree.name,
            tree.path,
            tree.files.len(),
            crate::progress::human_bytes(tree.size())
        ));
    }
    for file in &lock.files {
        out.push_str(&format!(
            "{}  sha256:{}  {}  {} ({})\n",
            file.name,
            file.sha256,
            file.mode,
            crate::progress::human_bytes(file.size),
            file.pin_source()
        ));
    }
    let files = match lock.files.len() {
        0 => String::new(),
        n => format!(" and {n} files"),
    };
    out.push_str(&super::charts::summary(lock));
    if let Some(apt) = &lock.apt {
        for source in &apt.sources {
            out.push_str(&format!(
                "{}  {} apt packages\n",
                source.url,
                source.packages.len()
            ));
        }
    }
    out.push_str(&format!(
        "locked {} images{}{files} into {}\n",
        lock.images.len(),
        match lock.charts.len() {
            0 => String::new(),
            n => format!(" and {n} chart{}", if n == 1 { "" } else { "s" }),
        },
        path.display()
    ));
    out
}

/// Resolves the manifest's images; entries of `keep` that still match are reused as they are.
pub async fn resolve_all(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
    registries: &super::Registries<'_>,
    files: &FileArgs,
    helm: &HelmArgs,
) -> anyhow::Result<Lock> {
    // A kept entry is reused when it still answers the manifest, checks included.
    let reusable = |l: &LockedImage, spec: &crate::manifest::ImageSpec| {
        l.matches(spec) && l.unverified_keys(spec, &manifest.spec.verify).is_empty()
    };
    let todo: Vec<_> = manifest
        .spec
        .images
        .iter()
        .filter(|spec| !keep.is_some_and(|lock| lock.images.iter().any(|l| reusable(l, spec))))
        .collect();
    let source = if todo.is_empty() {
        None
    } else {
        Some(registries.source().await?)
    };
    let policies = crate::source::signatures::load(&manifest.spec.verify)?;
    let policies = &policies;
    let bar = ui.items_bar(todo.len() as u64, "resolve");
    let resolved: Vec<anyhow::Result<LockedImage>> = futures_util::stream::iter(todo.iter())
        .map(|spec| {
            let bar = &bar;
            async move {
                let source = source.context("internal: no registry source")?;
                let at = || {
                    format!(
                        "{}:{}:{}: cannot resolve image {}",
                        manifest.path.display(),
                        spec.location.line,
                        spec.location.column,
                        spec.reference
                    )
                };
                let r = match image::resolve(source, spec).await.with_context(at) {
                    Ok(locked) => lock_referrers(source, spec, locked, policies)
                        .await
                        .with_context(at),
                    Err(e) => Err(e),
                };
                bar.inc(1);
                r
            }
        })
        .buffered(RESOLVE_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut fresh = Vec::new();
    for r in resolved {
        fresh.push(r?);
    }
    let (charts, helm_version) =
        super::charts::resolve(ui, manifest, keep, registries, helm).await?;
    let mut fresh = fresh.into_iter();
    let mut images = Vec::new();
    for spec in &manifest.spec.images {
        let reused = keep.and_then(|lock| lock.images.iter().find(|l| reusable(l, spec)));
        match reused {
            Some(l) => images.push(l.clone()),
            None => images.push(fresh.next().context("internal: resolve count")?),
        }
    }
    let registry = registries.args();
    let files = super::files::lock(ui, manifest, keep, registry, files).await?;
    let apt = super::apt::lock_apt(ui, manifest, keep, registry).await?;
    let git = super::git::lock(ui, manifest, keep).await?;
    let trees = super::trees::lock(ui, manifest, keep).await?;
    let lock = Lock {
        lock_version: LOCK_VERSION,
        release: LockedRelease {
            name: manifest.metadata.name.clone(),
            version: manifest.metadata.version.clone(),
        },
        images,
        files,
        charts,
        apt,
        kubernetes: (!manifest.spec.charts.is_empty())
            .then(|| LockedKubernetes::of(&manifest.spec.kubernetes)),
        helm: helm_version,
        git,
        trees,
    };
    super::check::warn_missing(ui, &super::charts::missing_images(manifest, &lock));
    Ok(lock)
}

/// Finds the referrers of a resolved image (what `referrers:` asks for) and checks it
/// against the `spec.verify` policies that cover it.
async fn lock_referrers(
    source: &crate::source::registry::RegistrySource,
    spec: &crate::manifest::ImageSpec,
    mut locked: LockedImage,
    policies: &[crate::source::signatures::LoadedPolicy],
) -> anyhow::Result<LockedImage> {
    use crate::manifest::ReferrersMode;
    use crate::source::referrers;
    let repository = spec.reference.name();
    let covered = policies
        .iter()
        .any(|p| p.policy.covers(&repository).is_some());
    // A policy needs the signatures even where none are carried.
    let mode = match spec.referrers {
        ReferrersMode::None if covered => ReferrersMode::Signatures,
        mode => mode,
    };
    let carried = referrers::subjects(&locked);
    let mut subjects = carried.clone();
    if !subjects.contains(&locked.resolved) {
        subjects.push(locked.resolved.clone());
    }
    let mut found = Vec::new();
    for subject in &subjects {
        found.extend(referrers::discover(source, &spec.reference, subject, mode).await?);
    }
    let signed = [locked.digest.clone(), locked.resolved.clone()];
    locked.verified =
        crate::source::signatures::check(source, policies, &spec.reference, &signed, &found)
            .await?;
    locked.referrer_mode = Some(spec.referrers);
    if spec.referrers != ReferrersMode::None {
        // Referrers of an upstream index the bundle does not carry (a platform was picked)
        // have no subject on site.
        let mut seen = std::collections::BTreeSet::new();
        locked.referrers = found
            .into_iter()
            .filter(|f| carried.contains(&f.locked.subject))
            .filter(|f| seen.insert(f.locked.digest.clone()))
            .map(|f| f.locked)
            .collect();
    }
    Ok(locked)
}

/// The lock `build` uses: the existing one when in step with the manifest, else an updated one
/// (refused with `--locked`). Returns the lock and its path.
pub async fn lock_for_build(
    ui: &Ui,
    manifest: &Manifest,
    path: Option<PathBuf>,
    locked: bool,
    registries: &super::Registries<'_>,
    files: &FileArgs,
    helm: &HelmArgs,
) -> anyhow::Result<(Lock, PathBuf)> {
    let path = path.unwrap_or_else(|| default_path(&manifest.path));
    let existing = if path.exists() {
        Some(Lock::load(&path)?)
    } else {
        None
    };
    match (&existing, locked) {
        (None, true) => bail!(
            "--locked was given but there is no lock file {}; run `ferry lock {}` first",
            path.display(),
            manifest.path.display()
        ),
        (Some(lock), true) => {
            let diff = lock.differences(manifest);
            if !diff.is_empty() {
                bail!(
                    "--locked was given but {} is out of date with {}:\n  - {}\nrun `ferry lock {}` to update it",
                    path.display(),
                    manifest.path.display(),
                    diff.join("\n  - "),
                    manifest.path.display()
                );
            }
            Ok((lock.clone(), path))
        }
        (Some(lock), false) if lock.differences(manifest).is_empty() => Ok((lock.clone(), path)),
        (existing, false) => {
            ui.status(match existing {
                None => format!("no lock file yet: locking {}", manifest.path.display()),
                Some(_) => format!(
                    "{} is out of date with the manifest: updating it",
                    path.display()
                ),
            });
            let lock =
                resolve_all(ui, manifest, existing.as_ref(), registries, files, helm).await?;
            lock.save(&path)
                .with_context(|| format!("cannot write lock file {}", path.display()))?;
            Ok((lock, path))
        }
    }
}
