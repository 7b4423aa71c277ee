//! Release files in `ferry lock` and `ferry build`: the command-side glue around
//! [`crate::source::file`] (positions in messages, progress, concurrency).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::{Context, bail};
use futures_util::StreamExt;

use crate::cli::{FileArgs, RegistryArgs};
use crate::layout::Layout;
use crate::layout::oci::Descriptor;
use crate::manifest::files::{FilePin, FileSpec, LockedFile};
use crate::manifest::lock::Lock;
use crate::manifest::{Location, Manifest};
use crate::progress::{Ui, human_bytes};
use crate::source::file::{FileError, FileSource};

/// Files hashed at once while locking.
const LOCK_CONCURRENCY: usize = 4;

fn at(manifest: &Manifest, location: &Location) -> String {
    format!(
        "{}:{}:{}",
        manifest.path.display(),
        location.line,
        location.column
    )
}

/// Pins the manifest's files; entries of `keep` that still match are reused as they are.
/// Unpinned files are refused, before anything is downloaded, unless `--allow-unpinned`.
pub async fn lock(
    ui: &Ui,
    manifest: &Manifest,
    keep: Option<&Lock>,
    registry: &RegistryArgs,
    options: &FileArgs,
) -> anyhow::Result<Vec<LockedFile>> {
    let specs = &manifest.spec.files;
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let kept = |spec: &FileSpec| -> Option<LockedFile> {
        keep.and_then(|lock| lock.files.iter().find(|f| f.matches(spec)).cloned())
    };
    let todo: Vec<&FileSpec> = specs.iter().filter(|s| kept(s).is_none()).collect();
    if !options.allow_unpinned {
        let refused: Vec<String> = todo
            .iter()
            .filter(|s| s.pin == FilePin::Unpinned)
            .map(|s| {
                format!(
                    "{}: {}",
                    at(manifest, &s.location),
                    FileError::Unpinned { url: s.url.clone() }
                )
            })
            .collect();
        if !refused.is_empty() {
            bail!("{}", refused.join("\n"));
        }
    }
    for spec in &todo {
        if let FilePin::Checksums(url) = &spec.pin {
            warn_plain_http(ui, url);
        }
    }
    let source = FileSource::new(&registry.ca_files).context("cannot prepare HTTP downloads")?;
    let bar = ui.bytes_bar(0, "hash files");
    let results: Vec<anyhow::Result<LockedFile>> = futures_util::stream::iter(todo.iter())
        .map(|spec| {
            let (source, bar) = (&source, &bar);
            async move {
                let on_bytes = |n: u64| {
                    bar.inc_length(n);
                    bar.inc(n);
                };
                source
                    .lock(spec, options.allow_unpinned, &on_bytes)
                    .await
                    .with_context(|| {
                        format!(
                            "{}: cannot lock file {}",
                            at(manifest, &spec.location),
                            spec.name
                        )
                    })
            }
        })
        .buffered(LOCK_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut fresh = Vec::new();
    for r in results {
        fresh.push(r?);
    }
    let mut fresh = fresh.into_iter();
    let mut files = Vec::new();
    for spec in specs {
        match kept(spec) {
            Some(f) => files.push(f),
            None => {
                let f = fresh.next().context("internal: lock count")?;
                if f.unpinned {
                    ui.warn(format!(
                        "{}: {} is not pinned; the lock records the sha256 seen now ({}), so a later change upstream fails the build",
                        at(manifest, &spec.location),
                        f.url,
                        f.sha256
                    ));
                }
                files.push(f);
            }
        }
    }
    Ok(files)
}

/// A checksum file over plain HTTP is only as trustworthy as every network on the way.
fn warn_plain_http(ui: &Ui, url: &str) {
    let Ok(parsed) = url::Url::parse(url) else {
        return;
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if parsed.scheme() == "http" && !loopback {
        ui.warn(format!(
            "checksum file {url} comes over plain HTTP: anyone on the way can change it and the file together; prefer https://"
        ));
    }
}

/// Downloads every locked file into the store (those present are skipped; through the shared
/// blob cache when `--cache` gives one), writes their artifacts, and returns their index
/// entries in lock order.
pub async fn build(
    ui: &Ui,
    layout: &Layout,
    lock: &Lock,
    registry: &RegistryArgs,
    jobs: usize,
    cache: Option<&crate::source::cache::BlobCache>,
) -> anyhow::Result<Vec<Descriptor>> {
    if lock.files.is_empty() {
        return Ok(Vec::new());
    }
    let source = FileSource::new(&registry.ca_files).context("cannot prepare HTTP downloads")?;
    let missing: Vec<&LockedFile> = lock
        .files
        .iter()
        .filter(|f| !layout.has_blob(&f.digest()))
        .collect();
    let present = lock.files.len() - missing.len();
    let bar = ui.bytes_bar(missing.iter().map(|f| f.size).sum(), "files");
    let fetched = AtomicU64::new(0);
    let fetched_files = AtomicUsize::new(0);
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(missing.iter())
        .map(|file| {
            let (source, bar, fetched, fetched_files) = (&source, &bar, &fetched, &fetched_files);
            async move {
                let on_bytes = |n: u64| bar.inc(n);
                let upstream = || async { Ok(source.fetch(file, layout, &on_bytes).await?) };
                let n = match cache {
                    Some(cache) => {
                        cache
                            .fetch(&file.digest(), file.size, layout, &on_bytes, upstream)
                            .await
                    }
                    None => upstream().await,
                }
                .with_context(|| format!("release file {}", file.name))?;
                fetched.fetch_add(n, Ordering::Relaxed);
                fetched_files.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    if let Some(first) = results.into_iter().find_map(Result::err) {
        return Err(first.context(
            "the build stopped; what was downloaded is kept, run the same command again to resume",
        ));
    }
    ui.status(format!(
        "files: {} downloaded ({}), {present} already present",
        fetched_files.into_inner(),
        human_bytes(fetched.into_inner())
    ));
    for file in lock.files.iter().filter(|f| f.unpinned) {
        ui.warn(format!(
            "file {} is unpinned upstream: it was checked against the sha256 the lock recorded",
            file.url
        ));
    }
    lock.files
        .iter()
        .map(|f| {
            crate::layout::files::write(layout, &f.url, &f.name, f.mode_bits(), &f.digest(), f.size)
                .with_context(|| format!("cannot write the artifact of file {}", f.name))
        })
        .collect()
}
