//! Git repositories and directory trees (issue 16) as destinations of a site import, fed by
//! the one pass like the others.
//!
//! - git: each repository's bundle blob (unless the site's repository holds every object its
//!   refs name already) is streamed into a file in `<dir>/.ferry-git-bundles`; after the
//!   pass, each repository fetches from its file and moves its refs in one transaction.
//! - trees: each file the tree's partial directory still lacks is streamed into place there
//!   (a blob used by several files goes to each); after the pass, links, modes and owner are
//!   set and the tree is swapped into place whole.
//!
//! Nothing is published (a ref moved, a tree swapped) before the pass has checked every blob.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::pass::{BlobSink, Destination};
use super::prepare::Prepared;
use super::report::TargetSummary;
use super::targets::Seen;
use crate::destination::trees::TreePlan;
use crate::digest::Digest;
use crate::fsutil::TempFile;
use crate::layout::Layout;
use crate::layout::git::BundleRepo;
use crate::layout::tree::BundleTree;
use crate::progress::Ui;

fn detail<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// git

/// The site's Git repositories (`spec.git`).
pub struct GitDestination {
    dir: PathBuf,
    source: PathBuf,
    repos: Vec<BundleRepo>,
    /// Where bundle files wait until they are fetched from.
    staging: PathBuf,
    /// Bundle blobs still needed, and the file each goes to.
    wanted: BTreeMap<Digest, PathBuf>,
    /// Bundle blobs whose file is whole: streamed and checked, or left by a killed run.
    received: Arc<Mutex<BTreeSet<Digest>>>,
}

/// The directory under `spec.git.dir` bundle files wait in (not a repository: those end in
/// `.git`).
pub const GIT_BUNDLES: &str = ".ferry-git-bundles";

impl GitDestination {
    /// The destination of `spec.git`: the bundle's repositories read (from the documents read
    /// before the pass) and, for each, whether the site holds its objects already.
    pub fn plan(p: &Prepared, seen: &Seen) -> anyhow::Result<Self> {
        let g = p.site.git.as_ref().expect("the site names git");
        let repos = p
            .entries
            .iter()
            .filter(|e| e.kind == crate::layout::git::KIND)
            .map(|e| crate::layout::git::read(&p.layout, e))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!(
                    "refusing the git repositories of {}; nothing was written",
                    p.source.display()
                )
            })?;
        crate::git_cli::run(None, &["--version"], None)?;
        // Bundle files wait in a partial directory beside the repositories until they are
        // fetched from: one a killed run left there whole is not read again.
        let staging = g.dir.join(GIT_BUNDLES);
        let mut wanted = BTreeMap::new();
        let mut staged = BTreeSet::new();
        for repo in &repos {
            let Some((digest, size)) = &repo.bundle else {
                continue;
            };
            if !p.layout.has_blob(digest) || crate::destination::git::objects_in_place(repo, &g.dir)
            {
                continue;
            }
            let file = staging.join(format!("{}.bundle", digest.hex()));
            if crate::layout::delta::file_holds(&file, digest, *size) {
                staged.insert(digest.clone());
            } else {
                wanted.insert(digest.clone(), file);
            }
        }
        if !wanted.is_empty() {
            crate::fsutil::prepare_dir(&staging)
                .and_then(|()| crate::fsutil::sweep(&staging))
                .with_context(|| format!("cannot write into {}", staging.display()))?;
        }
        *lock(&seen.git) = Some(repos.clone());
        Ok(GitDestination {
            dir: g.dir.clone(),
            source: p.source.clone(),
            repos,
            staging,
            wanted,
            received: Arc::new(Mutex::new(staged)),
        })
    }
}

/// A git bundle streamed into a scratch file; kept once its digest checked.
struct GitSink {
    file: TempFile,
    to: PathBuf,
    digest: Digest,
    received: Arc<Mutex<BTreeSet<Digest>>>,
}

impl BlobSink for GitSink {
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.to.display()))
    }
    fn commit(self: Box<Self>) -> anyhow::Result<()> {
        let GitSink {
            file,
            to,
            digest,
            received,
        } = *self;
        file.commit_deferred(&to)
            .with_context(|| format!("cannot write {}", to.display()))?;
        lock(&received).insert(digest);
        Ok(())
    }
}

impl Destination for GitDestination {
    fn name(&self) -> &'static str {
        "git"
    }
    fn to(&self) -> String {
        self.dir.display().to_string()
    }
    fn wanted(&self) -> Vec<Digest> {
        self.wanted.keys().cloned().collect()
    }
    fn disk_needs(&self, sizes: &BTreeMap<Digest, u64>) -> Vec<(PathBuf, u64)> {
        // The bundle file, then about as much again for the objects fetched from it.
        self.wanted
            .keys()
            .map(|d| (self.dir.clone(), 2 * sizes.get(d).copied().unwrap_or(0)))
            .collect()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        let to = self
            .wanted
            .get(digest)
            .with_context(|| format!("internal: git does not want {digest}"))?
            .clone();
        let dir = to.parent().expect("a staged file has a directory");
        let file = TempFile::in_dir(dir, crate::fsutil::Access::Public)
            .with_context(|| format!("cannot write into {}", dir.display()))?;
        Ok(Box::new(GitSink {
            file,
            to,
            digest: digest.clone(),
            received: self.received.clone(),
        }))
    }
    fn publish<'a>(&'a self, ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        async move {
            let started = Instant::now();
            let received = lock(&self.received).clone();
            let mut reports = Vec::new();
            for repo in &self.repos {
                ui.status(format!("git repository {}", repo.config.name));
                let file = repo.bundle.as_ref().and_then(|(d, _)| {
                    received
                        .contains(d)
                        .then(|| self.staging.join(format!("{}.bundle", d.hex())))
                });
                let report = crate::destination::git::import_repo_from(
                    repo,
                    &self.dir,
                    false,
                    file.as_deref(),
                )?;
                if let Some(file) = file {
                    let _ = std::fs::remove_file(file);
                }
                reports.push(report);
            }
            let _ = std::fs::remove_dir(&self.staging);
            let changed = reports.iter().filter(|r| !r.changed.is_empty()).count();
            let bytes = self
                .repos
                .iter()
                .filter_map(|r| r.bundle.as_ref())
                .filter(|(d, _)| self.wanted.contains_key(d))
                .map(|(_, size)| size)
                .sum();
            let items = reports.len();
            let result = crate::import::git::Imported {
                bundle: self.source.display().to_string(),
                dir: self.dir.display().to_string(),
                repositories: reports,
            };
            Ok(TargetSummary {
                target: "git".into(),
                to: self.to(),
                items,
                written: changed,
                bytes,
                skipped: items - changed,
                seconds: started.elapsed().as_secs_f64(),
                detail: detail(&result),
            })
        }
        .boxed()
    }
}

// ---------------------------------------------------------------------------------------
// trees

/// Where one blob goes in the trees: (tree, file path) pairs.
type TreeTargets = Vec<(usize, String)>;

/// The site's directory trees (`spec.trees`).
pub struct TreesDestination {
    dir: PathBuf,
    owner: Option<(u32, u32)>,
    layout: Layout,
    source: PathBuf,
    trees: Vec<BundleTree>,
    plans: Vec<TreePlan>,
    wanted: BTreeMap<Digest, TreeTargets>,
    /// Per tree: the files written by the pass, and their bytes.
    delivered: Arc<Mutex<Vec<Delivered>>>,
}

/// The files of one tree the pass wrote, and their bytes.
type Delivered = (BTreeSet<String>, u64);

impl TreesDestination {
    /// The destination of `spec.trees`: each tree in place already, or its partial directory
    /// made ready with the files an earlier run left there found.
    pub fn plan(p: &Prepared, seen: &Seen) -> anyhow::Result<Self> {
        let t = p.site.trees.as_ref().expect("the site names trees");
        let trees = p
            .entries
            .iter()
            .filter(|e| e.kind == crate::layout::tree::KIND)
            .map(|e| crate::layout::tree::read(&p.layout, e))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!(
                    "refusing the trees of {}; nothing was written",
                    p.source.display()
                )
            })?;
        let mut plans = Vec::new();
        let mut wanted: BTreeMap<Digest, TreeTargets> = BTreeMap::new();
        for (i, tree) in trees.iter().enumerate() {
            let plan = crate::destination::trees::plan_tree(&p.layout, tree, &t.dir)?;
            for f in plan.needed(&p.layout, tree) {
                wanted
                    .entry(f.digest.clone())
                    .or_default()
                    .push((i, f.path.clone()));
            }
            plans.push(plan);
        }
        *lock(&seen.trees) = Some(trees.clone());
        Ok(TreesDestination {
            dir: t.dir.clone(),
            owner: t.owner,
            layout: p.layout.clone(),
            source: p.source.clone(),
            delivered: Arc::new(Mutex::new(vec![(BTreeSet::new(), 0); trees.len()])),
            trees,
            plans,
            wanted,
        })
    }
}

/// One blob streamed into every tree file that holds it; each renamed into place once the
/// digest checked.
struct TreesSink {
    files: Vec<(TempFile, PathBuf, usize, String)>,
    size: u64,
    delivered: Arc<Mutex<Vec<Delivered>>>,
}

impl BlobSink for TreesSink {
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        for (file, dest, _, _) in &mut self.files {
            file.write_all(bytes)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        self.size += bytes.len() as u64;
        Ok(())
    }
    fn commit(self: Box<Self>) -> anyhow::Result<()> {
        let TreesSink {
            files,
            size,
            delivered,
        } = *self;
        for (file, dest, tree, path) in files {
            file.commit_deferred(&dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
            let mut d = lock(&delivered);
            d[tree].0.insert(path);
            d[tree].1 += size;
        }
        Ok(())
    }
}

impl Destination for TreesDestination {
    fn name(&self) -> &'static str {
        "trees"
    }
    fn to(&self) -> String {
        self.dir.display().to_string()
    }
    fn wanted(&self) -> Vec<Digest> {
        self.wanted.keys().cloned().collect()
    }
    fn disk_needs(&self, sizes: &BTreeMap<Digest, u64>) -> Vec<(PathBuf, u64)> {
        self.wanted
            .iter()
            .map(|(d, to)| {
                let size = sizes.get(d).copied().unwrap_or(0);
                (self.dir.clone(), size * to.len() as u64)
            })
            .collect()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        let mut files = Vec::new();
        for (i, path) in self.wanted.get(digest).into_iter().flatten() {
            let tree = &self.trees[*i];
            let file = tree
                .files
                .iter()
                .find(|f| &f.path == path)
                .expect("planned from the tree");
            let (temp, dest) = crate::destination::trees::open_tree_file(&self.dir, tree, file)?;
            files.push((temp, dest, *i, path.clone()));
        }
        Ok(Box::new(TreesSink {
            files,
            size: 0,
            delivered: self.delivered.clone(),
        }))
    }
    fn publish<'a>(&'a self, _ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        async move {
            let started = Instant::now();
            let delivered = lock(&self.delivered).clone();
            let mut reports = Vec::new();
            for ((tree, plan), (files, bytes)) in self.trees.iter().zip(&self.plans).zip(delivered)
            {
                let report = crate::destination::trees::finish_tree(
                    &self.layout,
                    tree,
                    &self.dir,
                    self.owner,
                    plan,
                    &files,
                    bytes,
                    &|_| {},
                )
                .with_context(|| partial_note(&self.dir, &tree.config.name))?;
                reports.push(report);
            }
            let unchanged = reports.iter().filter(|x| x.outcome == "unchanged").count();
            let items = reports.len();
            let bytes = reports.iter().map(|x| x.written).sum();
            let result = crate::import::trees::Imported {
                bundle: self.source.display().to_string(),
                dir: self.dir.display().to_string(),
                trees: reports,
            };
            Ok(TargetSummary {
                target: "trees".into(),
                to: self.to(),
                items,
                written: items - unchanged,
                bytes,
                skipped: unchanged,
                seconds: started.elapsed().as_secs_f64(),
                detail: detail(&result),
            })
        }
        .boxed()
    }
}

fn partial_note(dir: &Path, name: &str) -> String {
    format!(
        "cannot write tree {name} into {}; what was written is kept in {}/{}{name}, run the same command again to resume",
        dir.display(),
        dir.display(),
        crate::destination::trees::PARTIAL_PREFIX,
    )
}
