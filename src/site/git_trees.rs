//! Git repositories and directory trees (issue 16) as destinations of a site import.
//!
//! Not yet fed by the one pass: each takes no blob in it ([`Destination::wanted`] is empty)
//! and, when it publishes, runs the per-target import (`ferry import git` / `ferry import
//! trees`), which reads its own blobs from the bundle, every digest checked. With packed
//! volumes that asks again for the volumes holding them; feeding them from the pass (a sink
//! per bundle / per tree file) is the next step.

use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::pass::{BlobSink, Destination};
use super::prepare::Prepared;
use super::report::TargetSummary;
use crate::digest::Digest;
use crate::layout::Layout;
use crate::progress::Ui;

fn detail<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The site's Git repositories (`spec.git`).
pub struct GitDestination {
    dir: std::path::PathBuf,
    layout: Layout,
    key: Option<crate::sign::VerifyingKey>,
    source: std::path::PathBuf,
}

impl GitDestination {
    /// The destination of `spec.git`.
    pub fn plan(p: &Prepared) -> anyhow::Result<Self> {
        let g = p.site.git.as_ref().expect("the site names git");
        Ok(GitDestination {
            dir: g.dir.clone(),
            layout: p.layout.clone(),
            key: p.key.clone(),
            source: p.source.clone(),
        })
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
        Vec::new()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        anyhow::bail!("internal: git wants no blob in the pass ({digest})")
    }
    fn publish<'a>(&'a self, ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        async move {
            let started = Instant::now();
            let r = crate::import::git::import(
                ui,
                &self.layout,
                self.key.as_ref(),
                &self.dir,
                false,
                &self.source,
            )?;
            let (items, changed, d) = match &r {
                Some(r) => {
                    let changed = r
                        .repositories
                        .iter()
                        .filter(|x| !x.changed.is_empty())
                        .count();
                    (r.repositories.len(), changed, detail(r))
                }
                None => (0, 0, serde_json::Value::Null),
            };
            Ok(TargetSummary {
                target: "git".into(),
                to: self.to(),
                items,
                written: changed,
                bytes: 0,
                skipped: items - changed,
                seconds: started.elapsed().as_secs_f64(),
                detail: d,
            })
        }
        .boxed()
    }
}

/// The site's directory trees (`spec.trees`).
pub struct TreesDestination {
    dir: std::path::PathBuf,
    owner: Option<(u32, u32)>,
    layout: Layout,
    key: Option<crate::sign::VerifyingKey>,
    source: std::path::PathBuf,
}

impl TreesDestination {
    /// The destination of `spec.trees`.
    pub fn plan(p: &Prepared) -> anyhow::Result<Self> {
        let t = p.site.trees.as_ref().expect("the site names trees");
        Ok(TreesDestination {
            dir: t.dir.clone(),
            owner: t.owner,
            layout: p.layout.clone(),
            key: p.key.clone(),
            source: p.source.clone(),
        })
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
        Vec::new()
    }
    fn sink(&self, digest: &Digest) -> anyhow::Result<Box<dyn BlobSink>> {
        anyhow::bail!("internal: trees want no blob in the pass ({digest})")
    }
    fn publish<'a>(&'a self, ui: &'a Ui) -> BoxFuture<'a, anyhow::Result<TargetSummary>> {
        async move {
            let started = Instant::now();
            let r = crate::import::trees::import(
                ui,
                &self.layout,
                self.key.as_ref(),
                &self.dir,
                self.owner,
                &self.source,
            )?;
            let (items, written, bytes, d) = match &r {
                Some(r) => {
                    let unchanged = r.trees.iter().filter(|x| x.outcome == "unchanged").count();
                    (
                        r.trees.len(),
                        r.trees.len() - unchanged,
                        r.trees.iter().map(|x| x.written).sum(),
                        detail(r),
                    )
                }
                None => (0, 0, 0, serde_json::Value::Null),
            };
            Ok(TargetSummary {
                target: "trees".into(),
                to: self.to(),
                items,
                written,
                bytes,
                skipped: items - written,
                seconds: started.elapsed().as_secs_f64(),
                detail: d,
            })
        }
        .boxed()
    }
}
