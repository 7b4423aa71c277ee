//! Step 3 and 5 of a site import, per destination: its plan (what it holds already, what it
//! needs from the bundle, every conflict found before a byte is read), its sinks for the one
//! pass, and its publishing after the pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};

use super::pass::{BlobSink, Destination};
use super::prepare::Prepared;
use super::report::TargetSummary;
use crate::cli::{HarborArgs, RegistryArgs};
use crate::destination::chart_repo::{self, BundleChart};
use crate::destination::files::{FileSink, Placement};
use crate::destination::registry::{
    ByteCounter, ChunkFeed, Feed, PushCounters, PushPlan, RegistryTarget, Survey, UPLOAD_CHUNK,
};
use crate::digest::Digest;
use crate::fsutil::Access;
use crate::import::registry::{self as import_registry, HarborProject};
use crate::layout::Layout;
use crate::layout::files::{self, BundleFile};
use crate::progress::Ui;

/// What the import saw that the readiness check reuses (nothing read or parsed again).
#[derive(Default)]
pub struct Seen {
    /// The registry connection (probed once).
    pub registry: Mutex<Option<Arc<RegistryTarget>>>,
    /// The bundle's charts, with their Chart.yaml.
    pub charts: Mutex<Option<Vec<BundleChart>>>,
    /// The bundle's files.
    pub files: Mutex<Option<Vec<BundleFile>>>,
    /// The bundle's git repositories.
    pub git: Mutex<Option<Vec<crate::layout::git::BundleRepo>>>,
    /// The bundle's trees.
    pub trees: Mutex<Option<Vec<crate::layout::tree::BundleTree>>>,
}

fn detail<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Plans one destination the site names.
pub async fn plan(
    ui: &Ui,
    p: &Prepared,
    target: &str,
    jobs: usize,
    seen: &Arc<Seen>,
) -> anyhow::Result<Arc<dyn Destination>> {
    Ok(match target {
        "registry" => Arc::new(RegistryDestination::plan(ui, p, jobs, seen).await?),
        "charts" => Arc::new(ChartsDestination::plan(p, seen)?),
        "files" => Arc::new(FilesDestination::plan(ui, p, seen)?),
        "apt" => Arc::new(AptDestination::plan(ui, p)?),
        "git" => Arc::new(super::git_trees::GitDestination::plan(p, seen)?),
        "trees" => Arc::new(super::git_trees::TreesDestination::plan(p, seen)?),
        other => bail!("unknown target {other}"),
    })
}

/// Bytes kept in memory, for the layout (chart archives: read once, used by the chart
/// repository and the readiness check).
struct MemorySink {
    layout: Layout,
    digest: Digest,
    bytes: Vec<u8>,
}

impl BlobSink for MemorySink {
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
    fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.layout.keep(&self.digest, self.bytes);
        Ok(())
    }
}

/// Files renamed into place once the blob checked.
struct FilesSink(Vec<FileSink>);

impl BlobSink for FilesSink {
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        for f in &mut self.0 {
            f.write(bytes)?;
        }
        Ok(())
    }
    fn commit(self: Box<Self>) -> anyhow::Result<()> {
        for f in self.0 {
            f.commit()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// registry

/// The registry (Harbor or any OCI registry): blobs streamed as the pass reads them,
/// manifests pushed after it.
pub struct RegistryDestination {
    to: String,
    layout: Layout,
    registry: Arc<RegistryTarget>,
    plans: Vec<PushPlan>,
    survey: Arc<Survey>,
    wanted: Vec<Digest>,
    counters: Arc<PushCounters>,
    options: import_registry::Options,
    projects: Vec<HarborProject>,
    started: Instant,
    handle: tokio::runtime::Handle,
    /// Where blobs larger than one chunk are spooled while they upload.
    spool: PathBuf,
}

/// The directory, under the site's output, that uploads are spooled in.
pub const SPOOL_DIR: &str = ".ferry-upload-spool";

impl RegistryDestination {
    async fn plan(ui: &Ui, p: &Prepared, jobs: usize, seen: &Seen) -> anyhow::Result<Self> {
        let started = Instant::now();
        let options = registry_options(p, jobs).expect("the site names a registry");
        let target = options.target.clone();
        let omitted: BTreeSet<Digest> = crate::layout::delta::read_omitted(&p.layout, &p.index)?
            .map(|o| o.blobs.into_keys().collect())
            .unwrap_or_default();
        let plans = import_registry::plans(&target, p.entries.clone())?;
        let projects = if options.harbor.harbor {
            import_registry::ensure_harbor_projects(
                ui,
                &options.harbor,
                &options.registry,
                &target,
                &plans,
            )
            .await?
        } else {
            Vec::new()
        };
        let registry_options = crate::distribution::RegistryOptions::from(&options.registry);
        let registry = match p.probe.clone() {
            Some(probe) => {
                RegistryTarget::connect_probed(target.clone(), registry_options, probe).await
            }
            None => RegistryTarget::connect(target.clone(), registry_options).await,
        }
        .with_context(|| format!("cannot prepare access to {}", target.host))?;
        let survey = registry.survey(&plans, &omitted).await.with_context(|| {
            format!("cannot check what {target} already holds; nothing was pushed")
        })?;
        let to_upload: Vec<(Digest, u64)> = survey
            .to_upload()
            .into_iter()
            .filter(|(d, _)| !omitted.contains(d))
            .collect();
        let (faults, _) = crate::layout::verify::check_sizes(&p.layout, to_upload.clone())?;
        if !faults.is_empty() {
            let faults: Vec<String> = faults
                .into_iter()
                .map(|(digest, fault)| format!("  {digest}: {fault}"))
                .collect();
            bail!(
                "{} blob(s) of {} are missing or cut short, so nothing was pushed:\n{}\nRun `ferry verify` for the entries that use them, and copy the bundle again",
                faults.len(),
                p.layout.root().display(),
                faults.join("\n")
            );
        }
        // Uploads larger than one chunk are spooled (removed as each completes; a killed
        // run's leftovers swept here).
        let spool = p.out.join(SPOOL_DIR);
        if to_upload
            .iter()
            .any(|(_, size)| *size > UPLOAD_CHUNK as u64)
        {
            crate::fsutil::prepare_dir(&spool)
                .and_then(|()| crate::fsutil::sweep(&spool))
                .with_context(|| format!("cannot prepare {}", spool.display()))?;
        } else if spool.is_dir() {
            let _ = crate::fsutil::sweep(&spool);
            let _ = std::fs::remove_dir(&spool);
        }
        let registry = Arc::new(registry);
        *seen.registry.lock().unwrap_or_else(|e| e.into_inner()) = Some(registry.clone());
        Ok(RegistryDestination {
            to: target.to_string(),
            layout: p.layout.clone(),
            counters: Arc::new(PushCounters::for_survey(&survey)),
            registry,
            plans,
            survey: Arc::new(survey),
            wanted: to_upload.into_iter().map(|(d, _)| d).collect(),
            options,
            projects,
            started,
            handle: tokio::runtime::Handle::current(),
            spool,
        })
    }
}

/// Bytes handed to a registry upload as the pass reads them, a chunk at a time
/// ([`ChunkFeed`]); a blob larger than one chunk is also spooled to local disk, so a session
/// the registry loses is started again without the bundle.
struct RegistrySink {
    tx: Option<tokio::sync::mpsc::Sender<Feed>>,
    chunk: Vec<u8>,
    spool: Option<(crate::fsutil::TempFile, PathBuf)>,
    task: Option<tokio::task::JoinHandle<Result<(), crate::distribution::RegistryError>>>,
    handle: tokio::runtime::Handle,
}

impl RegistrySink {
    fn hand(&mut self, item: Feed) {
        if let Some(tx) = &self.tx {
            // A closed channel: the upload ended early; its error comes with the commit.
            let _ = tx.blocking_send(item);
        }
    }
}

impl BlobSink for RegistrySink {
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if let Some((file, path)) = &mut self.spool {
            use std::io::Write;
            file.write_all(bytes)
                .with_context(|| format!("cannot spool the upload into {}", path.display()))?;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (UPLOAD_CHUNK - self.chunk.len()).min(rest.len());
            self.chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.chunk.len() == UPLOAD_CHUNK {
                let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(UPLOAD_CHUNK));
                self.hand(Feed::Chunk(full.into()));
            }
        }
        Ok(())
    }
    fn commit(mut self: Box<Self>) -> anyhow::Result<()> {
        let spool = match self.spool.take() {
            Some((file, path)) => {
                // Read back within this run only: no fsync.
                let (file, temp) = file.into_parts();
                drop((file, path));
                Some(temp)
            }
            None => None,
        };
        let last = std::mem::take(&mut self.chunk);
        self.hand(Feed::End {
            last: last.into(),
            spool,
        });
        self.tx = None;
        let task = self.task.take().expect("committed once");
        self.handle
            .block_on(task)
            .context("the upload stopped unexpectedly")??;
        Ok(())
    }
}

impl Drop for RegistrySink {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Not committed: the blob failed its check (or another destination failed). The
            // feed closes without its end, so the registry never completes the upload.
            self.tx = None;
            task.abort();
        }
    }
}

impl Destination for RegistryDestination {
    fn name(&self) -> &'static str {
        "registry"
    }
    fn to(&self) -> String {
        self.to.clone()
    }
    fn wanted(&self) -> Vec<Digest> {
        self.wanted.clone()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        let (tx, feed) = ChunkFeed::channel();
        let size = self.survey.blobs.get(digest).map_or(0, |(size, _)| *size);
        let spool = if size > UPLOAD_CHUNK as u64 {
            let file = crate::fsutil::TempFile::in_dir(&self.spool, Access::Secret).with_context(
                || format!("cannot spool the upload into {}", self.spool.display()),
            )?;
            Some((file, self.spool.clone()))
        } else {
            None
        };
        let (registry, layout, survey, counters) = (
            self.registry.clone(),
            self.layout.clone(),
            self.survey.clone(),
            self.counters.clone(),
        );
        let digest = digest.clone();
        let task = self.handle.spawn(async move {
            let on_bytes: ByteCounter = Arc::new(|_| {});
            registry
                .place_blob(&layout, &survey, &digest, &counters, &on_bytes, Some(feed))
                .await
        });
        Ok(Box::new(RegistrySink {
            tx: Some(tx),
            chunk: Vec::with_capacity(UPLOAD_CHUNK.min(size as usize)),
            spool,
            task: Some(task),
            handle: self.handle.clone(),
        }))
    }
    fn disk_needs(&self, sizes: &BTreeMap<Digest, u64>) -> Vec<(PathBuf, u64)> {
        // Blobs larger than one chunk are spooled while they upload: at most `jobs` at once.
        let mut spooled: Vec<u64> = self
            .wanted
            .iter()
            .filter_map(|d| sizes.get(d).copied())
            .filter(|size| *size > UPLOAD_CHUNK as u64)
            .collect();
        spooled.sort_unstable_by(|a, b| b.cmp(a));
        let at_once: u64 = spooled.iter().take(self.options.jobs.max(1)).sum();
        if at_once == 0 {
            Vec::new()
        } else {
            vec![(self.spool.clone(), at_once)]
        }
    }
    fn publish<'a>(&'a self, ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        async move {
            let wanted: BTreeSet<&Digest> = self.wanted.iter().collect();
            let on_bytes: ByteCounter = Arc::new(|_| {});
            // Blobs another repository of the target holds: mounted (no bytes read).
            let others: Vec<Digest> = self
                .survey
                .blobs
                .keys()
                .filter(|d| !wanted.contains(d))
                .cloned()
                .collect();
            let on_bytes = &on_bytes;
            futures_util::stream::iter(others)
                .map(|d| async move {
                    self.registry
                        .place_blob(
                            &self.layout,
                            &self.survey,
                            &d,
                            &self.counters,
                            on_bytes,
                            None,
                        )
                        .await
                })
                .buffer_unordered(self.options.jobs.max(1))
                .try_collect::<()>()
                .await?;
            let _ = std::fs::remove_dir(&self.spool);
            self.registry
                .push_manifests(
                    &self.layout,
                    &self.plans,
                    &self.survey,
                    self.options.jobs,
                    &self.counters,
                )
                .await?;
            if self.options.harbor.harbor {
                import_registry::content_trust_for_existing(
                    ui,
                    &self.options.harbor,
                    &self.options.registry,
                    &self.options.target,
                    &self.plans,
                    &self.projects,
                )
                .await?;
            }
            let push = self.counters.report();
            let count = |kind: &str| self.plans.iter().filter(|p| p.entry.kind == kind).count();
            let result = import_registry::Imported {
                target: self.to.clone(),
                projects: self
                    .projects
                    .iter()
                    .map(|p| HarborProject {
                        name: p.name.clone(),
                        created: p.created,
                    })
                    .collect(),
                images: count("image"),
                referrers: count(crate::source::referrers::KIND),
                charts: count(crate::source::helm::KIND),
                verified_blobs: push.uploaded_blobs,
                bytes_read: 0,
                seconds: self.started.elapsed().as_secs_f64(),
                push,
            };
            let push = &result.push;
            Ok(TargetSummary {
                target: "registry".into(),
                to: self.to.clone(),
                items: result.images + result.charts,
                written: push.uploaded_blobs + push.mounted_blobs + push.pushed_manifests,
                bytes: push.uploaded_bytes,
                skipped: push.skipped_blobs + push.skipped_manifests,
                seconds: 0.0,
                detail: detail(&result),
            })
        }
        .boxed()
    }
}

/// The registry import's options for the site.
pub fn registry_options(p: &Prepared, jobs: usize) -> Option<import_registry::Options> {
    let r = p.site.registry.as_ref()?;
    Some(import_registry::Options {
        target: r.target.clone(),
        harbor: match &r.harbor {
            None => HarborArgs::default(),
            Some(h) => HarborArgs {
                harbor: true,
                harbor_api: h.api.clone(),
                harbor_public: h.public,
                harbor_content_trust_cosign: h.content_trust_cosign,
            },
        },
        jobs,
        registry: RegistryArgs {
            ca_files: r.ca_file.iter().cloned().collect(),
            insecure_registries: if r.insecure {
                vec![r.target.host.clone()]
            } else {
                Vec::new()
            },
        },
        blobs_verified: true,
    })
}

// ---------------------------------------------------------------------------------------
// charts

/// The chart repository: archives kept in memory as the pass reads them (charts are
/// small), written with the index after it.
pub struct ChartsDestination {
    dir: PathBuf,
    base_url: Option<String>,
    layout: Layout,
    entries: Vec<crate::layout::graph::Entry>,
    wanted: Vec<Digest>,
    seen: Arc<Seen>,
}

impl ChartsDestination {
    fn plan(p: &Prepared, seen: &Arc<Seen>) -> anyhow::Result<Self> {
        let c = p.site.charts.as_ref().expect("the site names charts");
        let needed = chart_repo::archives_needed(&p.layout, &p.entries, &c.dir)?;
        Ok(ChartsDestination {
            dir: c.dir.clone(),
            base_url: c.base_url.clone(),
            layout: p.layout.clone(),
            entries: p.entries.clone(),
            wanted: needed.into_iter().map(|d| d.digest).collect(),
            seen: seen.clone(),
        })
    }
}

impl Destination for ChartsDestination {
    fn name(&self) -> &'static str {
        "charts"
    }
    fn to(&self) -> String {
        self.dir.display().to_string()
    }
    fn wanted(&self) -> Vec<Digest> {
        self.wanted.clone()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        Ok(Box::new(MemorySink {
            layout: self.layout.clone(),
            digest: digest.clone(),
            bytes: Vec::new(),
        }))
    }
    fn publish<'a>(&'a self, _ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        async move {
            let started = Instant::now();
            let (layout, entries, dir, base_url) = (
                self.layout.clone(),
                self.entries.clone(),
                self.dir.clone(),
                self.base_url.clone(),
            );
            let generated = crate::time::now_rfc3339();
            let (charts, report) = tokio::task::spawn_blocking(move || {
                let mut missing = Vec::new();
                let charts =
                    chart_repo::bundle_charts_over(&layout, &entries, Some(&dir), &mut missing)?;
                if !missing.is_empty() {
                    return Err(chart_repo::ChartRepoError::MissingBase {
                        message: crate::layout::delta::missing_base_message(&dir, &missing),
                    });
                }
                let report =
                    chart_repo::import(&layout, &charts, &dir, base_url.as_deref(), &generated)?;
                Ok::<_, chart_repo::ChartRepoError>((charts, report))
            })
            .await
            .context("the import stopped unexpectedly")?
            .with_context(|| {
                format!(
                    "cannot import the charts into {}; archives already written stay, the index was not changed",
                    self.dir.display()
                )
            })?;
            let bytes = report
                .written
                .iter()
                .filter_map(|name| std::fs::metadata(self.dir.join(name)).ok())
                .map(|m| m.len())
                .sum();
            let result = crate::import::charts::Imported {
                target: self.dir.display().to_string(),
                charts: charts.len(),
                report,
                seconds: started.elapsed().as_secs_f64(),
            };
            *self.seen.charts.lock().unwrap_or_else(|e| e.into_inner()) = Some(charts);
            Ok(TargetSummary {
                target: "charts".into(),
                to: self.to(),
                items: result.charts,
                written: result.report.written.len(),
                bytes,
                skipped: result.report.present.len(),
                seconds: 0.0,
                detail: detail(&result),
            })
        }
        .boxed()
    }
}

// ---------------------------------------------------------------------------------------
// files

/// The files directory and the K3s airgap directory: each file written to a temporary name
/// as the pass reads it, renamed into place once its digest checked; SHA256SUMS after.
pub struct FilesDestination {
    dirs: Vec<(PathBuf, Vec<Placement>)>,
    /// Per blob, where it goes (directory, placement).
    needed: BTreeMap<Digest, Vec<(PathBuf, Placement)>>,
    arches: Vec<String>,
    bundle: String,
    to: String,
}

impl FilesDestination {
    fn plan(ui: &Ui, p: &Prepared, seen: &Seen) -> anyhow::Result<Self> {
        use crate::destination::files::{in_place, k3s_airgap, plan, prepare};
        let f = p.site.files.as_ref().expect("the site names files");
        let bundle_files: Vec<BundleFile> = p
            .entries
            .iter()
            .filter(|e| e.kind == files::KIND)
            .map(|e| files::read(&p.layout, e))
            .collect::<Result<_, _>>()
            .with_context(|| {
                format!(
                    "refusing the files of {}; nothing was written",
                    p.source.display()
                )
            })?;
        let placements = plan(&bundle_files).context("nothing was written")?;
        let mut dirs = vec![(f.dir.clone(), placements)];
        let mut arches = Vec::new();
        if let Some(dir) = &f.k3s_airgap_dir {
            let k3s = k3s_airgap(&bundle_files).with_context(|| {
                format!(
                    "cannot lay out {} for k3s-ansible's airgap_dir",
                    dir.display()
                )
            })?;
            for note in &k3s.notes {
                ui.warn(note);
            }
            arches = k3s.arches;
            dirs.push((dir.clone(), k3s.placements));
        }
        *seen.files.lock().unwrap_or_else(|e| e.into_inner()) = Some(bundle_files);
        // A delta's files left to its base must already be in place, in every directory.
        let mut missing = Vec::new();
        for (dir, list) in &dirs {
            for pl in list.iter().filter(|pl| !p.layout.has_blob(&pl.file.digest)) {
                let path = dir.join(&pl.name);
                if !crate::layout::delta::file_holds(&path, &pl.file.digest, pl.file.size) {
                    missing.push(format!("{} ({})", path.display(), pl.file.digest));
                }
            }
        }
        if !missing.is_empty() {
            bail!(crate::layout::delta::missing_base_message(&f.dir, &missing));
        }
        let mut needed: BTreeMap<Digest, Vec<(PathBuf, Placement)>> = BTreeMap::new();
        for (dir, list) in &dirs {
            prepare(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for pl in list.iter().filter(|pl| p.layout.has_blob(&pl.file.digest)) {
                let there = in_place(dir, pl)
                    .with_context(|| format!("cannot write {} into {}", pl.name, dir.display()))?;
                if !there {
                    needed
                        .entry(pl.file.digest.clone())
                        .or_default()
                        .push((dir.clone(), pl.clone()));
                }
            }
        }
        Ok(FilesDestination {
            dirs,
            needed,
            arches,
            bundle: p.source.display().to_string(),
            to: p.destination("files").unwrap_or_default(),
        })
    }
}

impl Destination for FilesDestination {
    fn name(&self) -> &'static str {
        "files"
    }
    fn to(&self) -> String {
        self.to.clone()
    }
    fn wanted(&self) -> Vec<Digest> {
        self.needed.keys().cloned().collect()
    }
    fn disk_needs(&self, sizes: &BTreeMap<Digest, u64>) -> Vec<(PathBuf, u64)> {
        self.needed
            .iter()
            .flat_map(|(digest, to)| {
                let size = sizes.get(digest).copied().unwrap_or(0);
                to.iter().map(move |(dir, _)| (dir.clone(), size))
            })
            .collect()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        let sinks = self
            .needed
            .get(digest)
            .into_iter()
            .flatten()
            .map(|(dir, pl)| FileSink::new(dir, pl))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(FilesSink(sinks)))
    }
    fn publish<'a>(&'a self, ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        use crate::destination::files::{foreign_archives, write_sums};
        use crate::import::files::{DirReport, Imported, Row};
        async move {
            let written: BTreeSet<(PathBuf, String)> = self
                .needed
                .values()
                .flatten()
                .map(|(dir, pl)| (dir.clone(), pl.name.clone()))
                .collect();
            let mut reports = Vec::new();
            for (i, (dir, placements)) in self.dirs.iter().enumerate() {
                let sums = write_sums(dir, placements)
                    .with_context(|| format!("cannot write the SHA256SUMS of {}", dir.display()))?;
                if i > 0 {
                    for name in foreign_archives(dir, placements) {
                        ui.warn(format!(
                            "{} also holds {name}, which the airgap role copies to every node as an image archive; remove it if it does not belong to this release",
                            dir.display()
                        ));
                    }
                }
                let rows: Vec<Row> = placements
                    .iter()
                    .map(|pl| Row {
                        name: pl.name.clone(),
                        from: (pl.name != pl.file.name).then(|| pl.file.name.clone()),
                        size: pl.file.size,
                        sha256: pl.file.digest.hex().to_string(),
                        mode: crate::manifest::files::format_mode(pl.mode),
                        written: written.contains(&(dir.clone(), pl.name.clone())),
                    })
                    .collect();
                let count = rows.iter().filter(|r| r.written).count();
                reports.push(DirReport {
                    dir: dir.display().to_string(),
                    skipped: rows.len() - count,
                    written: count,
                    files: rows,
                    sums: sums.display().to_string(),
                });
            }
            let mut reports = reports.into_iter();
            let result = Imported {
                bundle: self.bundle.clone(),
                to: reports.next().expect("the files directory"),
                k3s_airgap_dir: reports.next(),
                k3s_arches: self.arches.clone(),
            };
            let dirs: Vec<&DirReport> = std::iter::once(&result.to)
                .chain(result.k3s_airgap_dir.iter())
                .collect();
            Ok(TargetSummary {
                target: "files".into(),
                to: self.to.clone(),
                items: result.to.files.len(),
                written: dirs.iter().map(|d| d.written).sum(),
                bytes: dirs
                    .iter()
                    .flat_map(|d| d.files.iter())
                    .filter(|f| f.written)
                    .map(|f| f.size)
                    .sum(),
                skipped: dirs.iter().map(|d| d.skipped).sum(),
                seconds: 0.0,
                detail: detail(&result),
            })
        }
        .boxed()
    }
}

// ---------------------------------------------------------------------------------------
// apt

/// The apt mirror: pool files written as the pass reads them (renamed once checked); the
/// merged, signed indexes after it.
pub struct AptDestination {
    root: PathBuf,
    merged: crate::destination::apt::Contents,
    kept: usize,
    needed: BTreeMap<Digest, Vec<PathBuf>>,
    report: crate::destination::apt::WriteReport,
    key: Arc<crate::openpgp::SiteKey>,
    url: Option<String>,
    started: Instant,
}

impl AptDestination {
    fn plan(ui: &Ui, p: &Prepared) -> anyhow::Result<Self> {
        use crate::destination::apt;
        let started = Instant::now();
        let a = p.site.apt.as_ref().expect("the site names apt");
        let key = p.apt_key.clone().expect("loaded when the site was checked");
        let new = apt::from_bundle(&p.layout, &p.entries, a.suite.as_deref())
            .with_context(|| format!("cannot read the apt packages of {}", p.source.display()))?;
        let root = &a.dir;
        let missing: Vec<String> = new
            .packages
            .iter()
            .filter(|pk| !p.layout.has_blob(&pk.digest))
            .filter(|pk| {
                !crate::layout::delta::file_holds(&root.join(&pk.pool_path), &pk.digest, pk.size)
            })
            .map(|pk| format!("{} {} ({})", pk.package, pk.version, pk.pool_path))
            .collect();
        if !missing.is_empty() {
            bail!(crate::layout::delta::missing_base_message(root, &missing));
        }
        apt::prepare(root)
            .with_context(|| format!("cannot create mirror directory {}", root.display()))?;
        let old = apt::from_directory(root)
            .with_context(|| format!("cannot merge with what {} holds", root.display()))?;
        let kept = old.packages.len();
        let merged = apt::merge(old, new.clone())
            .with_context(|| format!("cannot merge the bundle into {}", root.display()))?;
        let mut report = apt::WriteReport::default();
        let mut needed: BTreeMap<Digest, Vec<PathBuf>> = BTreeMap::new();
        let mut done = BTreeSet::new();
        for pk in &new.packages {
            if !done.insert(&pk.pool_path) {
                continue;
            }
            let target = root.join(&pk.pool_path);
            if !p.layout.has_blob(&pk.digest) {
                report.present += 1; // a delta's, hashed above
                continue;
            }
            if target.is_file() {
                let (actual, _) = crate::digest::hash_file(&target, |_| {})
                    .with_context(|| format!("cannot read {}", target.display()))?;
                if actual == pk.digest {
                    report.present += 1;
                    continue;
                }
                bail!(
                    "{} {} ({}) is already in the mirror with digest {actual}, the bundle has {}; nothing was written",
                    pk.package,
                    pk.version,
                    target.display(),
                    pk.digest
                );
            }
            report.copied += 1;
            report.copied_bytes += pk.size;
            needed.entry(pk.digest.clone()).or_default().push(target);
        }
        if kept > 0 {
            ui.status(format!(
                "merged with the {kept} package entries {} already held",
                root.display()
            ));
        }
        Ok(AptDestination {
            root: root.clone(),
            merged,
            kept,
            needed,
            report,
            key,
            url: a.url.clone(),
            started,
        })
    }
}

impl Destination for AptDestination {
    fn name(&self) -> &'static str {
        "apt"
    }
    fn to(&self) -> String {
        self.root.display().to_string()
    }
    fn wanted(&self) -> Vec<Digest> {
        self.needed.keys().cloned().collect()
    }
    fn disk_needs(&self, sizes: &BTreeMap<Digest, u64>) -> Vec<(PathBuf, u64)> {
        self.needed
            .iter()
            .flat_map(|(digest, to)| {
                let size = sizes.get(digest).copied().unwrap_or(0);
                to.iter().map(move |path| (path.clone(), size))
            })
            .collect()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        let mut sinks = Vec::new();
        for target in self.needed.get(digest).into_iter().flatten() {
            let dir = target.parent().expect("pool paths have a directory");
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            sinks.push(FileSink::at(target, Access::Public)?);
        }
        Ok(Box::new(FilesSink(sinks)))
    }
    fn publish<'a>(&'a self, _ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        use crate::destination::apt::{self, KEYRING_FILE, SOURCES_FILE};
        async move {
            let root = &self.root;
            let rendered = apt::render(&self.merged, &self.key, crate::time::now_secs())?;
            apt::write_indexes(root, &rendered)
                .with_context(|| format!("cannot write the indexes of {}", root.display()))?;
            let mut report = self.report.clone();
            report.packages = self.merged.packages.len();
            let absolute = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
            let url = self
                .url
                .clone()
                .unwrap_or_else(|| format!("file://{}", absolute.display()));
            let keyring = root.join(KEYRING_FILE);
            apt::write_public(&keyring, &self.key.public_binary()?)?;
            let sources = root.join(SOURCES_FILE);
            apt::write_public(
                &sources,
                apt::sources_file(&url, &rendered.suites).as_bytes(),
            )?;
            let _ = self.kept;
            let result = crate::import::apt::Imported {
                mirror: root.display().to_string(),
                suites: rendered.suites.keys().cloned().collect(),
                report,
                sources_file: sources.display().to_string(),
                keyring: keyring.display().to_string(),
                fingerprint: self.key.fingerprint(),
                seconds: self.started.elapsed().as_secs_f64(),
            };
            Ok(TargetSummary {
                target: "apt".into(),
                to: self.to(),
                items: result.report.packages,
                written: result.report.copied,
                bytes: result.report.copied_bytes,
                skipped: result.report.present,
                seconds: 0.0,
                detail: detail(&result),
            })
        }
        .boxed()
    }
}
