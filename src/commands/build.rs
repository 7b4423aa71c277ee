//! `ferry build`: everything in the lock into an OCI layout, then index.json, then the signature.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::BuildArgs;
use crate::digest::Digest;
use crate::layout::Layout;
use crate::layout::delta::{
    ANNOTATION_DELTA_BASE, ANNOTATION_DELTA_OMITTED, Omitted, read_base_index, read_base_layout,
};
use crate::layout::oci::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_KIND, ANNOTATION_LOCK_DIGEST, ANNOTATION_REF_NAME,
    ANNOTATION_RELEASE_NAME, ANNOTATION_RELEASE_VERSION, Descriptor, Index, OCI_INDEX, OciPlatform,
};
use crate::manifest::Manifest;
use crate::manifest::lock::{Lock, Selection};
use crate::progress::{Ui, human_bytes};
use crate::source::image::{self, BlobJob};
use crate::source::referrers::{
    ANNOTATION_SUBJECT as ANNOTATION_REFERRER_SUBJECT, KIND as REFERRER_KIND,
};

#[derive(Serialize)]
struct Built {
    bundle: String,
    lock: String,
    index_digest: Digest,
    entries: usize,
    blobs: usize,
    omitted_blobs: usize,
    fetched_blobs: usize,
    fetched_bytes: u64,
    present_blobs: usize,
    present_bytes: u64,
    signed_by: Option<String>,
    /// What the shared blob cache (`--cache`) did, when one is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<crate::source::cache::CacheReport>,
}

/// Runs `ferry build`.
pub async fn run(ui: &Ui, args: &BuildArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    // Decrypt the key first: a wrong password should fail before an hour of downloads.
    let key = match &args.key {
        Some(path) => Some(super::load_signing_key(path)?),
        None => None,
    };
    // One connection for lock, images and charts: each registry is asked `/v2/` once.
    let registries = super::Registries::for_manifest(&manifest, &args.registry);
    let (lock, lock_path) = super::lock::lock_for_build(
        ui,
        &manifest,
        args.lock.clone(),
        args.locked,
        &registries,
        &args.files,
        &args.helm,
    )
    .await?;
    let layout = Layout::create(&args.out)
        .with_context(|| format!("cannot create bundle directory {}", args.out.display()))?;

    let lock_bytes = lock.to_bytes();
    let lock_digest = Digest::of_bytes(&lock_bytes);
    layout.write_blob(&lock_digest, &lock_bytes)?;

    let source = registries.source().await?;
    let cache = match &args.cache {
        Some(location) => Some(crate::source::cache::BlobCache::open(
            location,
            &crate::s3::default_options(),
        )?),
        None => None,
    };

    // Documents first (small), then every distinct blob they name.
    let bar = ui.items_bar(lock.images.len() as u64, "manifests");
    let mut jobs: BTreeMap<Digest, BlobJob> = BTreeMap::new();
    for locked in &lock.images {
        bar.set_message(locked.reference.clone());
        let found = image::collect(source, &layout, locked)
            .await
            .with_context(|| format!("cannot pull {}", locked.reference))?;
        let referred = crate::source::referrers::collect(source, &layout, locked)
            .await
            .with_context(|| format!("cannot pull the referrers of {}", locked.reference))?;
        for job in found.into_iter().chain(referred) {
            jobs.entry(job.digest.clone()).or_insert(job);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    // A delta leaves out what the base bundle already carries to site.
    let base = match &args.since {
        Some(path) => Some(
            if path.extension().is_some_and(|e| e == "json") && !path.is_dir() {
                read_base_index(path, &layout)
            } else {
                // A directory, or the base's packed volumes (only volume 1 is read).
                let base = super::open_bundle(path, &Default::default(), ui, false)?;
                read_base_layout(&base)
            }
            .with_context(|| format!("cannot read the base bundle {}", path.display()))?,
        ),
        None => None,
    };
    let mut omitted: BTreeMap<Digest, u64> = match &base {
        Some(base) => jobs
            .values()
            .filter(|j| base.blobs.contains(&j.digest))
            .map(|j| (j.digest.clone(), j.size))
            .collect(),
        None => BTreeMap::new(),
    };
    let (present, missing): (Vec<&BlobJob>, Vec<&BlobJob>) = jobs
        .values()
        .filter(|j| !omitted.contains_key(&j.digest))
        // Present with its descriptor's size (an S3 object another tool wrote short is not).
        .partition(|j| layout.blob_size(&j.digest).ok().flatten() == Some(j.size));
    // Largest first: a big layer started last would leave the other connections idle.
    let mut missing = missing;
    missing.sort_by_key(|j| std::cmp::Reverse(j.size));
    let present_bytes: u64 = present.iter().map(|j| j.size).sum();
    let missing_bytes: u64 = missing.iter().map(|j| j.size).sum();
    if !present.is_empty() {
        ui.status(format!(
            "{} blobs ({}) already in {}, skipped",
            present.len(),
            human_bytes(present_bytes),
            args.out.display()
        ));
    }
    if !missing.is_empty() {
        ui.status(format!(
            "pulling {} blobs ({})",
            missing.len(),
            human_bytes(missing_bytes)
        ));
    }
    // Disk space is checked for a directory; an object store has no free space to ask.
    if !layout.is_s3() {
        // Everything the lock gives a size for and the bundle lacks: image blobs, release
        // files, .deb packages (charts and indexes are small). What earlier runs downloaded
        // part of is kept and resumed.
        let files: u64 = lock
            .files
            .iter()
            .filter(|f| !layout.has_blob(&f.digest()))
            .map(|f| f.size)
            .sum();
        let debs: u64 = lock
            .apt
            .iter()
            .flat_map(|a| &a.sources)
            .flat_map(|s| &s.packages)
            .filter(|d| {
                Digest::parse(&format!("sha256:{}", d.sha256))
                    .map_or(true, |digest| !layout.has_blob(&digest))
            })
            .map(|d| d.size)
            .sum();
        let partial = crate::fsutil::tree_size(&args.out.join(".ferry-tmp"));
        crate::fsutil::ensure_space(
            &args.out,
            (missing_bytes + files + debs).saturating_sub(partial),
            &format!("the bundle {}", args.out.display()),
        )
        .context("the build stopped before downloading; nothing was pulled")?;
    }
    let bar = Arc::new(ui.bytes_bar(missing_bytes, "pull"));
    let fetched = AtomicU64::new(0);
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(missing.iter())
        .map(|job| {
            let (layout, bar, fetched, cache) = (&layout, bar.clone(), &fetched, &cache);
            async move {
                let on_bytes = |n: u64| {
                    bar.inc(n);
                };
                let upstream = || async {
                    Ok(source
                        .fetch_blob(&job.repository, &job.digest, job.size, layout, &on_bytes)
                        .await?)
                };
                let n = match cache {
                    Some(cache) => {
                        cache
                            .fetch(&job.digest, job.size, layout, &on_bytes, upstream)
                            .await
                    }
                    None => upstream().await,
                }
                .with_context(|| {
                    format!(
                        "cannot pull blob {} of {}",
                        job.digest,
                        job.repository.name()
                    )
                })?;
                fetched.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
        })
        .buffer_unordered(args.jobs as usize)
        .collect()
        .await;
    bar.finish_and_clear();
    let failures: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    if let Some(first) = failures.into_iter().next() {
        return Err(first.context(
            "the build stopped; blobs already downloaded are kept, run the same command again to resume",
        ));
    }

    // Other kinds of content (charts, files, apt) add their entries here, after the images,
    // each from its own source module: `extra.extend(source::<kind>::build(...).await?)`.
    let mut extra: Vec<Descriptor> = Vec::new();
    extra.extend(
        super::files::build(
            ui,
            &layout,
            &lock,
            &args.registry,
            args.jobs as usize,
            cache.as_ref(),
        )
        .await?,
    );
    extra.extend(super::charts::build(ui, &lock, &layout, &registries).await?);
    extra.extend(
        super::apt::build_apt(
            ui,
            &layout,
            &manifest,
            &lock,
            &args.registry,
            args.jobs as usize,
        )
        .await?,
    );

    extra.extend(super::git::build(ui, &layout, &lock, base.as_ref()).await?);
    extra.extend(super::trees::build(ui, &manifest, &layout, &lock).await?);

    // The bill of materials last: a pure function of the lock, as the index is.
    extra.push(crate::sbom::write(&layout, &lock, &lock_digest)?);

    let mut delta_annotations = BTreeMap::new();
    if let Some(base) = &base {
        // Charts, files and apt packages are fetched by their own sources; what the base
        // already carries is dropped from this bundle here: the content layers that a site's
        // targets can find again (a file, a chart archive, a .deb), never the documents or
        // the apt indexes an import reads.
        let content = [
            crate::layout::files::LAYER_MEDIA_TYPE,
            crate::source::helm::artifact::CHART_LAYER_MEDIA_TYPE,
            crate::source::helm::artifact::LEGACY_CHART_LAYER_MEDIA_TYPE,
            crate::source::apt::MEDIA_DEB,
            crate::layout::tree::FILE_MEDIA_TYPE,
        ];
        for descriptor in &extra {
            let bytes = layout.read_document(&descriptor.digest)?;
            let manifest: crate::layout::oci::Manifest = serde_json::from_slice(&bytes)
                .with_context(|| format!("artifact manifest {}", descriptor.digest))?;
            for layer in manifest.layers {
                if base.blobs.contains(&layer.digest)
                    && content.contains(&layer.media_type.as_str())
                {
                    layout.remove_blob(&layer.digest).with_context(|| {
                        format!(
                            "cannot remove {}",
                            layout.blob_path(&layer.digest).display()
                        )
                    })?;
                    omitted.insert(layer.digest, layer.size);
                }
            }
        }
        let list = Omitted {
            base: base.index_digest.clone(),
            blobs: omitted.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&list)?;
        let digest = Digest::of_bytes(&bytes);
        layout.write_blob(&digest, &bytes)?;
        delta_annotations.insert(
            ANNOTATION_DELTA_BASE.to_string(),
            base.index_digest.to_string(),
        );
        delta_annotations.insert(ANNOTATION_DELTA_OMITTED.to_string(), digest.to_string());
        ui.status(format!(
            "delta of {}: {} blobs ({}) left to the base",
            base.index_digest,
            omitted.len(),
            human_bytes(omitted.values().sum())
        ));
    }

    let index_bytes = index_json(&lock, &lock_digest, &extra, &delta_annotations)?;
    let index_digest = Digest::of_bytes(&index_bytes);
    layout.write_index(&index_bytes)?;
    layout.clean_tmp()?;
    let signed_by = match &key {
        Some(key) => Some(super::sign::sign_built(&layout, key)?),
        None => None,
    };

    let result = Built {
        bundle: args.out.display().to_string(),
        lock: lock_path.display().to_string(),
        index_digest,
        entries: lock.images.len()
            + lock.images.iter().map(|i| i.referrers.len()).sum::<usize>()
            + extra.len(),
        blobs: jobs.len(),
        omitted_blobs: omitted.len(),
        fetched_blobs: missing.len(),
        fetched_bytes: fetched.into_inner(),
        present_blobs: present.len(),
        present_bytes,
        signed_by,
        cache: cache.as_ref().map(|c| c.report()),
    };
    ui.result(&result, || {
        let mut t = format!(
            "built {}: {} entries, {} blobs ({} pulled, {} already present)\nindex.json {}\n",
            result.bundle,
            result.entries,
            result.blobs,
            human_bytes(result.fetched_bytes),
            human_bytes(result.present_bytes),
            result.index_digest
        );
        if let Some(c) = &result.cache {
            t.push_str(&format!(
                "cache {}: {} blobs ({}) fetched from upstream, {} blobs ({}) taken from the cache, {} blobs ({}) waited for another build's lease\n",
                c.location,
                c.upstream_blobs,
                human_bytes(c.upstream_bytes),
                c.cache_blobs,
                human_bytes(c.cache_bytes),
                c.waited_blobs,
                human_bytes(c.waited_bytes),
            ));
            if c.rejected_blobs > 0 {
                t.push_str(&format!(
                    "cache: {} objects did not match their digest and were replaced from upstream\n",
                    c.rejected_blobs
                ));
            }
        }
        match &result.signed_by {
            Some(f) => t.push_str(&format!("signed with key {f}\n")),
            None => t.push_str("not signed: pass --key cosign.key, or run `ferry sign`\n"),
        }
        t
    });
    Ok(())
}

/// The bundle's index.json: a pure function of the lock (and the entries of the other kinds,
/// themselves pure functions of the lock), so the same lock gives the same bytes.
pub fn index_json(
    lock: &Lock,
    lock_digest: &Digest,
    extra: &[Descriptor],
    extra_annotations: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let mut manifests = Vec::new();
    let mut seen = BTreeSet::new();
    for image in &lock.images {
        if !seen.insert(&image.reference) {
            continue;
        }
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION_KIND.to_string(), "image".to_string());
        annotations.insert(ANNOTATION_REF_NAME.to_string(), image.reference.clone());
        annotations.insert(
            ANNOTATION_CONTAINERD_NAME.to_string(),
            image.reference.clone(),
        );
        let platform = match (image.selection, image.manifests.as_slice()) {
            (Selection::Single, [m]) => parse_platform(&m.platform),
            (Selection::Whole, [m]) if m.digest == image.digest => parse_platform(&m.platform),
            _ => None,
        };
        manifests.push(Descriptor {
            media_type: image.media_type.clone(),
            digest: image.digest.clone(),
            size: image.size,
            platform,
            annotations,
            artifact_type: None,
        });
    }
    // Referrers after every image: an importer pushes them after their subjects.
    let mut seen_referrers = BTreeSet::new();
    for image in &lock.images {
        for referrer in &image.referrers {
            if !seen_referrers.insert((image.repository(), &referrer.digest)) {
                continue;
            }
            let reference = image.referrer_reference(referrer);
            let mut annotations = BTreeMap::new();
            annotations.insert(ANNOTATION_KIND.to_string(), REFERRER_KIND.to_string());
            annotations.insert(ANNOTATION_REF_NAME.to_string(), reference.clone());
            annotations.insert(ANNOTATION_CONTAINERD_NAME.to_string(), reference);
            annotations.insert(
                ANNOTATION_REFERRER_SUBJECT.to_string(),
                referrer.subject.to_string(),
            );
            manifests.push(Descriptor {
                media_type: referrer.media_type.clone(),
                digest: referrer.digest.clone(),
                size: referrer.size,
                platform: None,
                annotations,
                artifact_type: referrer.artifact_type.clone(),
            });
        }
    }
    manifests.extend(extra.iter().cloned());
    let mut annotations = BTreeMap::new();
    annotations.extend(extra_annotations.clone());
    annotations.insert(ANNOTATION_LOCK_DIGEST.to_string(), lock_digest.to_string());
    annotations.insert(
        ANNOTATION_RELEASE_NAME.to_string(),
        lock.release.name.clone(),
    );
    annotations.insert(
        ANNOTATION_RELEASE_VERSION.to_string(),
        lock.release.version.clone(),
    );
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_string()),
        manifests,
        annotations,
    };
    let mut bytes = serde_json::to_vec_pretty(&index)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn parse_platform(label: &str) -> Option<OciPlatform> {
    let mut parts = label.split('/');
    let os = parts.next()?.to_string();
    let architecture = parts.next()?.to_string();
    let variant = parts.next().map(str::to_string);
    let p = OciPlatform {
        os,
        architecture,
        variant,
    };
    (!p.is_unknown()).then_some(p)
}
