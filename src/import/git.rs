//! `ferry import git`: verify the bundle, then write its Git repositories as bare
//! repositories into a directory, refs moving only forward.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::cli::ImportGitArgs;
use crate::destination::git::{RepoReport, import_repo};
use crate::layout::Layout;
use crate::layout::git::{self, BundleRepo};
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::progress::Ui;

/// What `ferry import git` did.
#[derive(Debug, Serialize)]
pub struct Imported {
    /// The bundle.
    pub bundle: String,
    /// The directory of repositories.
    pub dir: String,
    /// One entry per repository.
    pub repositories: Vec<RepoReport>,
}

/// The git repositories of a verified bundle, read and checked.
pub fn read_repos(
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
) -> anyhow::Result<Vec<BundleRepo>> {
    let (_, index) = read_verified_index(layout, key)?;
    let walked = walk(layout, &index);
    let repos = walked
        .entries
        .iter()
        .filter(|e| e.kind == git::KIND)
        .map(|e| git::read(layout, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(repos)
}

/// Writes every git repository of a verified bundle into `to`; `None` when it has none.
/// Each repository is imported whole or not at all; the first that fails stops the run
/// (those before it stay imported, and a rerun skips them).
pub fn import(
    ui: &Ui,
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
    to: &Path,
    force: bool,
    source: &Path,
) -> anyhow::Result<Option<Imported>> {
    let repos = read_repos(layout, key).with_context(|| {
        format!(
            "refusing the git repositories of {}; nothing was written",
            source.display()
        )
    })?;
    if repos.is_empty() {
        return Ok(None);
    }
    crate::git_cli::run(None, &["--version"], None)?;
    // A repository holding every object already needs no bundle copied out; the others need
    // their bundle file, then about as much again for the objects fetched from it.
    let in_place: Vec<bool> = repos
        .iter()
        .map(|r| crate::destination::git::objects_in_place(r, to))
        .collect();
    let needed: u64 = repos
        .iter()
        .zip(&in_place)
        .filter(|(_, in_place)| !**in_place)
        .filter_map(|(r, _)| r.bundle.as_ref().map(|(_, size)| 2 * size))
        .sum();
    crate::fsutil::ensure_space(
        to,
        needed,
        &format!(
            "the git repositories of {} in {}",
            source.display(),
            to.display()
        ),
    )?;
    let mut reports = Vec::new();
    for (repo, in_place) in repos.iter().zip(in_place) {
        ui.status(format!("git repository {}", repo.config.name));
        let report = if in_place {
            crate::destination::git::import_repo_from(repo, to, force, None)?
        } else {
            import_repo(layout, repo, to, force)?
        };
        reports.push(report);
    }
    Ok(Some(Imported {
        bundle: source.display().to_string(),
        dir: to.display().to_string(),
        repositories: reports,
    }))
}

/// `ferry import git` whole: the bundle opened and verified, its repositories written; `None`
/// when it holds none.
pub fn run(ui: &Ui, args: &ImportGitArgs) -> anyhow::Result<Option<Imported>> {
    let (layout, key) = crate::bundle::open_verified(ui, &args.source, &args.volumes, &args.trust)?;
    import(
        ui,
        &layout,
        key.as_ref(),
        &args.to,
        args.force,
        &args.source,
    )
}
