//! Git repositories on site: one bare repository per carried repository, `<dir>/<name>.git`,
//! filled from the bundle's git bundles with git itself.
//!
//! Objects arrive first (a `git fetch` from the bundle into a private namespace); refs move
//! only after every one of them is checked, all in one `git update-ref` transaction, and only
//! forward: a ref whose new commit does not contain the old one (a history rewritten
//! upstream) stops the import, naming the ref, unless `force`. A new repository is made in a
//! scratch directory and renamed into place when complete, so `<dir>/<name>.git` is either
//! absent or whole.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fsutil::ScratchDir;
use crate::git_cli::{self, GitError};
use crate::layout::git::BundleRepo;
use crate::layout::{Layout, LayoutError};

/// Namespace the bundle's refs are fetched into before they are checked.
const INCOMING: &str = "refs/ferry-incoming/";

/// Why a repository could not be imported; nothing of it changed.
#[derive(Debug, thiserror::Error)]
pub enum GitImportError {
    /// git failed.
    #[error("git repository {name} ({path}): {source}")]
    Git {
        /// The repository's name.
        name: String,
        /// Its directory.
        path: PathBuf,
        /// The error.
        source: GitError,
    },
    /// The bundle's blob could not be read.
    #[error("git repository {name}: {source}")]
    Layout {
        /// The repository's name.
        name: String,
        /// The error.
        source: LayoutError,
    },
    /// A file could not be written.
    #[error("git repository {name}: cannot write {path}: {source}")]
    Io {
        /// The repository's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A delta's bundle builds on commits the site does not have.
    #[error(
        "git repository {name}: this delta carries only objects newer than its base release, and {path} lacks {count} commit(s) it builds on ({first}…); nothing was changed. Import the base release's git repositories into {dir} first, or use a full bundle",
        dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    MissingBase {
        /// The repository's name.
        name: String,
        /// Its directory.
        path: PathBuf,
        /// How many prerequisites are missing.
        count: usize,
        /// The first of them.
        first: String,
    },
    /// Refs would move backwards or sideways.
    #[error(
        "git repository {name}: history was rewritten upstream; {} would not fast-forward:\n  {}\nnothing was changed. If the rewrite is intended, run again with --force",
        if refs.len() == 1 { "this ref" } else { "these refs" },
        refs.join("\n  ")
    )]
    Rewritten {
        /// The repository's name.
        name: String,
        /// Each ref, `refs/heads/main: <old> -> <new>`.
        refs: Vec<String>,
    },
}

impl GitImportError {
    /// The error of an I/O step on `path` while importing `name`, for `map_err`.
    fn io(name: &str, path: &Path) -> impl FnOnce(std::io::Error) -> GitImportError + use<> {
        let (name, path) = (name.to_string(), path.to_path_buf());
        move |source| GitImportError::Io { name, path, source }
    }
}

/// What happened to one ref.
#[derive(Debug, Clone, Serialize)]
pub struct RefChange {
    /// The full ref name.
    pub name: String,
    /// The object before, None when the ref is new.
    pub old: Option<String>,
    /// The object now.
    pub new: String,
    /// Moved although not a fast-forward (`--force`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// One repository imported.
#[derive(Debug, Clone, Serialize)]
pub struct RepoReport {
    /// The repository's name.
    pub name: String,
    /// Its directory.
    pub path: String,
    /// Made now.
    pub created: bool,
    /// Refs that moved or were made.
    pub changed: Vec<RefChange>,
    /// Refs already where the bundle puts them.
    pub unchanged: usize,
    /// Refs the directory has that the release does not carry (kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_refs: Vec<String>,
}

/// Imports one repository of the bundle into `dir` (`dir/<name>.git`): its bundle blob copied
/// out of the bundle (its digest checked on the way), then [`import_repo_from`].
pub fn import_repo(
    layout: &Layout,
    repo: &BundleRepo,
    dir: &Path,
    force: bool,
) -> Result<RepoReport, GitImportError> {
    let name = repo.config.name.clone();
    let io = |path: &Path| GitImportError::io(&name, path);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let scratch = ScratchDir::new_in(dir, "git").map_err(io(dir))?;
    let mut file = None;
    if let Some((digest, _)) = &repo.bundle {
        let path = scratch.path().join(format!("{name}.bundle"));
        let mut reader = layout
            .open_blob(digest)
            .map_err(|source| GitImportError::Layout {
                name: name.clone(),
                source,
            })?;
        let mut out = std::fs::File::create(&path).map_err(io(&path))?;
        std::io::copy(&mut reader, &mut out).map_err(io(&path))?;
        out.flush().map_err(io(&path))?;
        file = Some(path);
    }
    let report = import_repo_from(repo, dir, force, file.as_deref());
    drop(scratch);
    report
}

/// Whether `dir/<name>.git` holds every object the repository's refs name already, so its
/// bundle need not be read (the refs may still have to move).
pub fn objects_in_place(repo: &BundleRepo, dir: &Path) -> bool {
    let target = dir.join(format!("{}.git", repo.config.name));
    target.join("HEAD").is_file()
        && repo
            .config
            .refs
            .values()
            .all(|oid| git_cli::has_object(&target, oid))
}

/// What differs between `dir/<name>.git` and the refs the bundle carries (empty: every ref
/// is there and names the bundle's object), for the readiness check.
pub fn ref_problems(repo: &BundleRepo, dir: &Path) -> Vec<String> {
    let target = dir.join(format!("{}.git", repo.config.name));
    let current = match current_refs(&target) {
        Ok(c) => c,
        Err(e) => return vec![format!("{}: {e}", target.display())],
    };
    let mut problems = Vec::new();
    for (name, oid) in &repo.config.refs {
        match current.get(name) {
            Some(have) if have == oid => {}
            Some(have) => problems.push(format!(
                "{}: {name} is {have}, the bundle has {oid}",
                target.display()
            )),
            None => problems.push(format!(
                "{}: {name} is missing (the bundle has {oid})",
                target.display()
            )),
        }
    }
    problems
}

/// Imports one repository into `dir` (`dir/<name>.git`) from its bundle file, already copied
/// out of the bundle with its digest checked (None: the release carries no new objects for
/// it, or [`objects_in_place`]).
pub fn import_repo_from(
    repo: &BundleRepo,
    dir: &Path,
    force: bool,
    bundle_file: Option<&Path>,
) -> Result<RepoReport, GitImportError> {
    let name = repo.config.name.clone();
    let target = dir.join(format!("{name}.git"));
    let io = |path: &Path| GitImportError::io(&name, path);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let scratch = ScratchDir::new_in(dir, "git").map_err(io(dir))?;
    let created = !target.join("HEAD").exists();
    let work = if created {
        let work = scratch.path().join(format!("{name}.git"));
        git_cli::init_bare(&work).map_err(|source| GitImportError::Git {
            name: name.clone(),
            path: target.clone(),
            source,
        })?;
        work
    } else {
        target.clone()
    };
    let git_err = |source| GitImportError::Git {
        name: name.clone(),
        path: target.clone(),
        source,
    };

    // Objects: `git bundle verify` (prerequisites present), then a fetch into the private
    // namespace.
    if let Some(file) = bundle_file {
        let missing: Vec<&String> = repo
            .config
            .prerequisites
            .iter()
            .filter(|p| !git_cli::has_object(&work, p))
            .collect();
        if let Some(first) = missing.first() {
            return Err(GitImportError::MissingBase {
                name,
                path: target,
                count: missing.len(),
                first: (*first).clone(),
            });
        }
        let path = file.to_string_lossy().into_owned();
        git_cli::run(Some(&work), &["bundle", "verify", "-q", &path], None).map_err(git_err)?;
        let refspec = format!("+refs/*:{INCOMING}*");
        git_cli::run(
            Some(&work),
            &[
                "fetch",
                "-q",
                "--no-tags",
                "--no-write-fetch-head",
                &path,
                &refspec,
            ],
            None,
        )
        .map_err(git_err)?;
    }
    let cleanup = |work: &Path| {
        let refs = git_cli::run(
            Some(work),
            &["for-each-ref", "--format=delete %(refname)", INCOMING],
            None,
        )
        .unwrap_or_default();
        if !refs.is_empty() {
            let _ = git_cli::run(
                Some(work),
                &["update-ref", "--stdin"],
                Some(refs.as_bytes()),
            );
        }
    };

    // Every ref's object must be there now (a delta leaves to its base what it already had).
    let mut missing = Vec::new();
    for (refname, oid) in &repo.config.refs {
        if !git_cli::has_object(&work, oid) {
            missing.push(format!("{refname} ({oid})"));
        }
    }
    if !missing.is_empty() {
        cleanup(&work);
        return Err(GitImportError::MissingBase {
            name,
            path: target,
            count: missing.len(),
            first: missing[0].clone(),
        });
    }

    // Which refs move, and whether each move is a fast-forward.
    let current = current_refs(&work).map_err(git_err)?;
    let mut changes = Vec::new();
    let mut rewritten = Vec::new();
    let mut unchanged = 0;
    for (refname, new) in &repo.config.refs {
        match current.get(refname) {
            Some(old) if old == new => unchanged += 1,
            Some(old) => {
                let forward = refname.starts_with("refs/heads/")
                    && git_cli::run(
                        Some(&work),
                        &["merge-base", "--is-ancestor", old, new],
                        None,
                    )
                    .is_ok();
                if !forward {
                    rewritten.push(format!("{refname}: {old} -> {new}"));
                }
                changes.push(RefChange {
                    name: refname.clone(),
                    old: Some(old.clone()),
                    new: new.clone(),
                    forced: !forward,
                });
            }
            None => changes.push(RefChange {
                name: refname.clone(),
                old: None,
                new: new.clone(),
                forced: false,
            }),
        }
    }
    if !rewritten.is_empty() && !force {
        cleanup(&work);
        return Err(GitImportError::Rewritten {
            name,
            refs: rewritten,
        });
    }
    // One transaction: every ref moves, or none (each checked against its old value).
    let zero = "0".repeat(repo.config.refs.values().next().map_or(40, String::len));
    let mut updates = String::new();
    for c in &changes {
        updates.push_str(&format!(
            "update {} {} {}\n",
            c.name,
            c.new,
            c.old.as_deref().unwrap_or(&zero)
        ));
    }
    if !updates.is_empty() {
        git_cli::run(
            Some(&work),
            &["update-ref", "--stdin"],
            Some(updates.as_bytes()),
        )
        .map_err(git_err)?;
    }
    cleanup(&work);
    if let Some(head) = &repo.config.head {
        git_cli::run(Some(&work), &["symbolic-ref", "HEAD", head], None).map_err(git_err)?;
    }
    let extra_refs = current
        .keys()
        .filter(|r| !repo.config.refs.contains_key(*r))
        .cloned()
        .collect();
    if created {
        crate::fsutil::rename(&work, &target).map_err(io(&target))?;
    }
    drop(scratch);
    Ok(RepoReport {
        name: name.clone(),
        path: target.display().to_string(),
        created,
        changed: changes,
        unchanged,
        extra_refs,
    })
}

/// The branches and tags of a repository and the objects they name.
fn current_refs(repo: &Path) -> Result<BTreeMap<String, String>, GitError> {
    let out = git_cli::run(
        Some(repo),
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads/",
            "refs/tags/",
        ],
        None,
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(o, r)| (r.to_string(), o.to_string()))
        .collect())
}

/// File name of the ArgoCD repository Secrets a site import renders.
pub const ARGOCD_REPOSITORIES: &str = "argocd-repositories.yaml";

/// ArgoCD repository Secrets (`argocd.argoproj.io/secret-type: repository`), one per
/// repository, each pointing at `<base_url>/<name>.git`: `kubectl apply -f` makes the site's
/// copies known to ArgoCD. Values are written as JSON strings, which YAML reads as they are.
pub fn argocd_repository_secrets(site: &str, base_url: &str, names: &[String]) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let mut out = format!(
        "# ArgoCD repository Secrets for site {site}, written by ferry: the Git repositories\n# `ferry import git` wrote, as served under {base_url}. Apply with kubectl apply -f.\n"
    );
    for name in names {
        let url = format!("{}/{name}.git", base_url.trim_end_matches('/'));
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: repository\n  annotations:\n    managed-by: ferry\nstringData:\n  type: git\n  name: {}\n  url: {}\n",
            q(&format!("ferry-repo-{}", name.to_ascii_lowercase().replace(['_', '.'], "-"))),
            q(name),
            q(&url)
        ));
    }
    out
}
