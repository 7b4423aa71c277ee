//! Step 4 of a site import: the one pass. Every destination says which blobs it still needs;
//! one scheduler reads them in the order the volumes hold them (each volume once, in the
//! plan's order), checks each digest as the bytes stream, and hands the bytes to every
//! destination that needs them. A destination keeps a blob only once its digest has checked;
//! it publishes (manifests, index.yaml, SHA256SUMS, Release) only after the pass, so nothing
//! names a blob that did not check.
//!
//! Every destination (registry, charts, files, apt, git, trees) implements [`Destination`]:
//! its plan in its constructor, then [`Destination::wanted`], [`Destination::sink`] and
//! [`Destination::publish`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::digest::{Digest, IO_BUFFER};
use crate::layout::Layout;
use crate::progress::Ui;

use super::report::TargetSummary;

/// Where a destination puts one blob's bytes while the pass reads them.
pub trait BlobSink: Send {
    /// Takes the next bytes of the blob.
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()>;
    /// The blob's digest checked and every byte handed over: keep it. A sink dropped without
    /// a commit (the blob failed its check, or another sink failed) leaves nothing.
    fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

/// A destination of a site import, fed by the one pass.
pub trait Destination: Send + Sync {
    /// Its name in the site file and the summary: `registry`, `charts`, `files`, `apt`, ...
    fn name(&self) -> &'static str;
    /// Where it writes, for people.
    fn to(&self) -> String;
    /// The blobs whose bytes it still needs (its plan found the rest in place).
    fn wanted(&self) -> Vec<Digest>;
    /// A sink for one of the blobs it wants. Called on a blocking thread within the runtime.
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>>;
    /// After the pass (every blob it wants checked and kept): makes it whole and visible.
    fn publish<'a>(&'a self, ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>>;
    /// Bytes it will write on local disks, by the path they go under, given each wanted blob's
    /// size: checked against the free space before the pass starts. Remote destinations
    /// (a registry) write nothing here.
    fn disk_needs(&self, _sizes: &BTreeMap<Digest, u64>) -> Vec<(PathBuf, u64)> {
        Vec::new()
    }
}

/// What the pass read.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PassReport {
    /// Volumes bytes were read from (0 for a bundle directory).
    pub volumes_read: usize,
    /// Bytes read from the volumes (or blob files), documents included: each blob once.
    pub bytes_read: u64,
    /// Media inserted: volumes indexed, each time one was put in (0 for a directory).
    pub insertions: u32,
    /// Bytes of every blob the bundle holds, for comparison with `bytes_read`.
    pub bundle_bytes: u64,
    /// Blobs read in the pass (documents read before it not counted).
    pub blobs: usize,
}

/// Pack's limit for blobs of the table of contents (they sit in volume 1): small blobs no
/// destination takes (empty configs, the lock) are checked in the pass when their volume is
/// read anyway.
const SMALL_BLOB: u64 = 1 << 20;

/// A blob to read and the destinations (by position) it goes to.
type Work = (Digest, Vec<usize>);

/// Reads what the destinations want, once, in the volumes' order; see the module text.
pub async fn run(
    ui: &Ui,
    layout: &Layout,
    destinations: &[Arc<dyn Destination>],
    used_by: &BTreeMap<Digest, Vec<String>>,
    sizes: &BTreeMap<Digest, u64>,
    jobs: usize,
) -> anyhow::Result<PassReport> {
    let mut wanted: BTreeMap<Digest, Vec<usize>> = BTreeMap::new();
    for (i, d) in destinations.iter().enumerate() {
        for digest in d.wanted() {
            let who = wanted.entry(digest).or_default();
            if !who.contains(&i) {
                who.push(i);
            }
        }
    }
    // The volumes with work, asked for in the plan's order; the others are not asked for.
    let mut volumes: BTreeSet<u32> = wanted.keys().flat_map(|d| layout.blob_volumes(d)).collect();
    if layout.is_packed() {
        volumes.insert(1);
    }
    let list: Vec<u32> = volumes.iter().copied().collect();
    layout
        .require_volumes(&list)
        .context("the volumes with blobs still to import are not all here; nothing was imported")?;
    // Small blobs no destination takes, in volumes read anyway: checked on the way too.
    for (digest, size) in sizes {
        if !wanted.contains_key(digest)
            && *size <= SMALL_BLOB
            && layout
                .blob_volumes(digest)
                .iter()
                .all(|v| volumes.contains(v))
            && !layout.is_kept(digest)
            && layout.has_blob(digest)
        {
            wanted.insert(digest.clone(), Vec::new());
        }
    }
    let total: u64 = wanted.keys().filter_map(|d| sizes.get(d)).sum();
    let bar = ui.bytes_bar(total, "import");
    // In the volumes' order; per volume, blobs wholly in it (several at once) before a blob
    // that goes on into the next volume (read last, alone), so no volume is asked for twice.
    let mut order: Vec<(Digest, Vec<usize>)> = wanted.into_iter().collect();
    order.sort_by_key(|(d, _)| layout.blob_order_key(d));
    let mut groups: BTreeMap<u32, (Vec<Work>, Vec<Work>)> = BTreeMap::new();
    for (digest, who) in order {
        let in_volumes = layout.blob_volumes(&digest);
        let first = in_volumes.first().copied().unwrap_or(0);
        let group = groups.entry(first).or_default();
        if in_volumes.iter().any(|v| *v != first) {
            group.1.push((digest, who));
        } else {
            group.0.push((digest, who));
        }
    }
    let mut blobs = 0;
    for (_, (whole, spanning)) in groups {
        blobs += whole.len() + spanning.len();
        futures_util::stream::iter(whole)
            .map(|(digest, who)| feed(layout, destinations, digest, who, used_by, &bar))
            .buffer_unordered(jobs.max(1))
            .try_collect::<()>()
            .await?;
        for (digest, who) in spanning {
            feed(layout, destinations, digest, who, used_by, &bar).await?;
        }
    }
    bar.finish_and_clear();
    Ok(PassReport {
        volumes_read: layout.volumes_read().len(),
        bytes_read: layout.bytes_read(),
        insertions: layout.insertions(),
        bundle_bytes: sizes.values().sum(),
        blobs,
    })
}

/// Reads one blob and hands its bytes to every destination in `who`.
async fn feed(
    layout: &Layout,
    destinations: &[Arc<dyn Destination>],
    digest: Digest,
    who: Vec<usize>,
    used_by: &BTreeMap<Digest, Vec<String>>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let layout = layout.clone();
    let targets: Vec<Arc<dyn Destination>> = who.iter().map(|i| destinations[*i].clone()).collect();
    let users = used_by.get(&digest).cloned().unwrap_or_default();
    let bar = bar.clone();
    let blob = digest.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sinks = Vec::with_capacity(targets.len());
        for t in &targets {
            let sink = t
                .sink(&blob)
                .with_context(|| format!("target {} ({}) cannot take {blob}", t.name(), t.to()))?;
            sinks.push((t.clone(), sink));
        }
        let mut reader = layout.open_blob(&blob)?;
        let mut buf = vec![0u8; IO_BUFFER];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let users = if users.is_empty() {
                        String::new()
                    } else {
                        format!(" (used by {})", users.join(", "))
                    };
                    anyhow::bail!("{e}{users}");
                }
            };
            for (t, sink) in &mut sinks {
                sink.write(&buf[..n]).with_context(|| {
                    format!("target {} ({}) failed writing {blob}", t.name(), t.to())
                })?;
            }
            bar.inc(n as u64);
        }
        for (t, sink) in sinks {
            let (name, to) = (t.name(), t.to());
            sink.commit()
                .with_context(|| format!("target {name} ({to}) failed keeping {blob}"))?;
        }
        Ok(())
    })
    .await
    .with_context(|| format!("the import stopped unexpectedly reading {digest}"))?
}
