//! `ferry import trees`: verify the bundle, then write each of its directory trees (model
//! stores) into a directory, atomically and resumably.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::ImportTreesArgs;
use crate::destination::trees::{TreeReport, import_tree};
use crate::layout::Layout;
use crate::layout::graph::walk;
use crate::layout::tree::{self, BundleTree};
use crate::layout::verify::read_verified_index;
use crate::progress::Ui;

/// What `ferry import trees` did.
#[derive(Debug, Serialize)]
pub struct Imported {
    /// The bundle.
    pub bundle: String,
    /// The directory.
    pub dir: String,
    /// One entry per tree.
    pub trees: Vec<TreeReport>,
}

/// Parses `UID:GID` (numbers).
pub fn parse_owner(value: &str) -> anyhow::Result<(u32, u32)> {
    let parsed = value
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
    match parsed {
        Some(owner) => Ok(owner),
        None => {
            bail!("--owner {value:?}: give numeric UID:GID, e.g. --owner 1000:2000 (NIM's cache)")
        }
    }
}

/// The trees of a verified bundle, read and checked.
pub fn read_trees(
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
) -> anyhow::Result<Vec<BundleTree>> {
    let (_, index) = read_verified_index(layout, key)?;
    let walked = walk(layout, &index);
    Ok(walked
        .entries
        .iter()
        .filter(|e| e.kind == tree::KIND)
        .map(|e| tree::read(layout, e))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Writes every tree of a verified bundle into `to`; `None` when it has none.
pub fn import(
    ui: &Ui,
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
    to: &Path,
    owner: Option<(u32, u32)>,
    source: &Path,
) -> anyhow::Result<Option<Imported>> {
    let trees = read_trees(layout, key).with_context(|| {
        format!(
            "refusing the trees of {}; nothing was written",
            source.display()
        )
    })?;
    if trees.is_empty() {
        return Ok(None);
    }
    let needed: u64 = trees
        .iter()
        .map(|t| crate::destination::trees::space_needed(to, t))
        .sum();
    crate::fsutil::ensure_space(
        to,
        needed,
        &format!("the trees of {} in {}", source.display(), to.display()),
    )?;
    let total: u64 = trees.iter().map(BundleTree::size).sum();
    let bar = ui.bytes_bar(total, "write");
    let mut reports = Vec::new();
    for t in &trees {
        let report = import_tree(layout, t, to, owner, &|n| bar.inc(n)).with_context(|| {
            format!(
                "cannot write tree {} into {}; what was written is kept in {}/.ferry-partial-{}, run the same command again to resume",
                t.config.name,
                to.display(),
                to.display(),
                t.config.name
            )
        })?;
        reports.push(report);
    }
    bar.finish_and_clear();
    Ok(Some(Imported {
        bundle: source.display().to_string(),
        dir: to.display().to_string(),
        trees: reports,
    }))
}

/// `ferry import trees` whole: `--owner` checked, the bundle opened and verified, its trees
/// written; `None` when it holds none.
pub fn run(ui: &Ui, args: &ImportTreesArgs) -> anyhow::Result<Option<Imported>> {
    let owner = args.owner.as_deref().map(parse_owner).transpose()?;
    let (layout, key) = crate::bundle::open_verified(ui, &args.source, &args.volumes, &args.trust)?;
    import(ui, &layout, key.as_ref(), &args.to, owner, &args.source)
}
