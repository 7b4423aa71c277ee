//! Git repositories upstream: `lock` asks the server which object each ref names (`git
//! ls-remote`), `build` fetches exactly those refs into a scratch repository and writes them
//! as a `git bundle` (a delta's bundle with the base's commits as prerequisites, so it holds
//! only the objects the base lacks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::git_cli::{self, GitError};
use crate::manifest::git::{GitSpec, LockedGit, check_oid, check_ref_name};

/// Why a repository could not be locked or bundled.
#[derive(Debug, thiserror::Error)]
pub enum GitSourceError {
    /// git failed.
    #[error("git repository {name} ({url}): {source}")]
    Git {
        /// The repository's name.
        name: String,
        /// Its URL.
        url: String,
        /// The error.
        source: GitError,
    },
    /// A ref the manifest asks for is not upstream.
    #[error(
        "git repository {name}: {url} has no branch or tag {wanted:?} (it has: {available}); fix `refs:` in the manifest"
    )]
    NoSuchRef {
        /// The repository's name.
        name: String,
        /// Its URL.
        url: String,
        /// The ref asked for.
        wanted: String,
        /// Some of what is there.
        available: String,
    },
    /// A short name is both a branch and a tag.
    #[error(
        "git repository {name}: {wanted:?} is both a branch and a tag at {url}; write refs/heads/{wanted} or refs/tags/{wanted} in `refs:`"
    )]
    Ambiguous {
        /// The repository's name.
        name: String,
        /// Its URL.
        url: String,
        /// The ref asked for.
        wanted: String,
    },
    /// The repository has no branches or tags to carry.
    #[error("git repository {name}: {url} has no branches or tags to carry")]
    Empty {
        /// The repository's name.
        name: String,
        /// Its URL.
        url: String,
    },
    /// A ref moved upstream and the locked object cannot be fetched any more.
    #[error(
        "git repository {name}: {refname} is {locked} in the lock, but {url} no longer has that object (the ref now names {now}); run `ferry lock` again to take the new state"
    )]
    Moved {
        /// The repository's name.
        name: String,
        /// Its URL.
        url: String,
        /// The ref.
        refname: String,
        /// The locked object.
        locked: String,
        /// What the ref names now.
        now: String,
    },
}

/// Resolves a manifest entry: every ref it asks for (all branches and tags when it names
/// none) to the object upstream says it names.
pub fn lock(spec: &GitSpec) -> Result<LockedGit, GitSourceError> {
    let git_err = |source| GitSourceError::Git {
        name: spec.name.clone(),
        url: spec.url.clone(),
        source,
    };
    let out = git_cli::run(None, &["ls-remote", "--symref", &spec.url], None).map_err(git_err)?;
    let mut upstream: BTreeMap<String, String> = BTreeMap::new();
    let mut symref_head = None;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("ref: ") {
            if let Some((target, "HEAD")) = rest.split_once('\t') {
                symref_head = Some(target.to_string());
            }
            continue;
        }
        let Some((oid, name)) = line.split_once('\t') else {
            continue;
        };
        if check_oid(oid) && check_ref_name(name).is_ok() {
            upstream.insert(name.to_string(), oid.to_string());
        }
    }
    let refs: BTreeMap<String, String> = if spec.refs.is_empty() {
        upstream.clone()
    } else {
        let mut refs = BTreeMap::new();
        for wanted in &spec.refs {
            let candidates: Vec<String> = if wanted.starts_with("refs/") {
                vec![wanted.clone()]
            } else {
                vec![
                    format!("refs/heads/{wanted}"),
                    format!("refs/tags/{wanted}"),
                ]
            };
            let found: Vec<&String> = candidates
                .iter()
                .filter(|c| upstream.contains_key(*c))
                .collect();
            match found.as_slice() {
                [one] => {
                    refs.insert((*one).clone(), upstream[*one].clone());
                }
                [] => {
                    let mut available: Vec<String> = upstream
                        .keys()
                        .take(12)
                        .map(|r| {
                            r.trim_start_matches("refs/heads/")
                                .trim_start_matches("refs/tags/")
                                .to_string()
                        })
                        .collect();
                    if upstream.len() > 12 {
                        available.push("…".into());
                    }
                    return Err(GitSourceError::NoSuchRef {
                        name: spec.name.clone(),
                        url: spec.url.clone(),
                        wanted: wanted.clone(),
                        available: if available.is_empty() {
                            "nothing".into()
                        } else {
                            available.join(", ")
                        },
                    });
                }
                _ => {
                    return Err(GitSourceError::Ambiguous {
                        name: spec.name.clone(),
                        url: spec.url.clone(),
                        wanted: wanted.clone(),
                    });
                }
            }
        }
        refs
    };
    if refs.is_empty() {
        return Err(GitSourceError::Empty {
            name: spec.name.clone(),
            url: spec.url.clone(),
        });
    }
    let head = symref_head.filter(|h| refs.contains_key(h)).or_else(|| {
        ["refs/heads/main", "refs/heads/master"]
            .into_iter()
            .find(|h| refs.contains_key(*h))
            .map(str::to_string)
            .or_else(|| refs.keys().find(|r| r.starts_with("refs/heads/")).cloned())
    });
    Ok(LockedGit {
        name: spec.name.clone(),
        url: spec.url.clone(),
        wanted: spec.refs.clone(),
        refs,
        head,
    })
}

/// Fetches the locked refs into the bare repository `repo` (made if missing) and points each
/// at its locked object; an object upstream no longer has is an error naming the ref.
pub fn fetch(locked: &LockedGit, repo: &Path) -> Result<(), GitSourceError> {
    let git_err = |source| GitSourceError::Git {
        name: locked.name.clone(),
        url: locked.url.clone(),
        source,
    };
    if !repo.join("HEAD").exists() {
        git_cli::init_bare(repo).map_err(git_err)?;
    }
    let missing: Vec<&String> = locked
        .refs
        .values()
        .filter(|oid| !git_cli::has_object(repo, oid))
        .collect();
    if !missing.is_empty() {
        let mut args: Vec<String> = ["fetch", "-q", "--no-tags", "--no-write-fetch-head"]
            .into_iter()
            .map(str::to_string)
            .collect();
        args.push(locked.url.clone());
        args.extend(
            locked
                .refs
                .keys()
                .map(|r| format!("+{r}:refs/ferry-upstream/{}", r.trim_start_matches("refs/"))),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git_cli::run(Some(repo), &args, None).map_err(git_err)?;
    }
    for (refname, oid) in &locked.refs {
        if !git_cli::has_object(repo, oid) {
            // Moved upstream: the locked object may still be fetchable by id.
            let _ = git_cli::run(
                Some(repo),
                &[
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--no-write-fetch-head",
                    &locked.url,
                    oid,
                ],
                None,
            );
        }
        if !git_cli::has_object(repo, oid) {
            let now = git_cli::ref_target(
                repo,
                &format!(
                    "refs/ferry-upstream/{}",
                    refname.trim_start_matches("refs/")
                ),
            )
            .ok()
            .flatten()
            .unwrap_or_else(|| "nothing".into());
            return Err(GitSourceError::Moved {
                name: locked.name.clone(),
                url: locked.url.clone(),
                refname: refname.clone(),
                locked: oid.clone(),
                now,
            });
        }
    }
    let mut updates = String::new();
    for (refname, oid) in &locked.refs {
        updates.push_str(&format!("update {refname} {oid}\n"));
    }
    git_cli::run(
        Some(repo),
        &["update-ref", "--stdin"],
        Some(updates.as_bytes()),
    )
    .map_err(git_err)?;
    Ok(())
}

/// Writes the bundle of the locked refs to `out`, leaving out what `base` (commits of the
/// base release) already holds. Refs whose objects the base has may be left out of the
/// bundle by git; the artifact's config names every ref, and import checks each object is
/// there. Returns the prerequisites written into the bundle, or None
/// when the base already has every object (no bundle is written then).
pub fn bundle(
    locked: &LockedGit,
    repo: &Path,
    base: &[String],
    out: &Path,
) -> Result<Option<Vec<String>>, GitSourceError> {
    let git_err = |source| GitSourceError::Git {
        name: locked.name.clone(),
        url: locked.url.clone(),
        source,
    };
    // Base objects this repository does not know (a rewritten history) cannot be excluded.
    let mut base_commits = BTreeSet::new();
    for oid in base {
        // Excluded as they are (an annotated tag the base has stays out too), if they
        // lead to a commit here.
        if git_cli::run(
            Some(repo),
            &["rev-parse", "-q", "--verify", &format!("{oid}^{{commit}}")],
            None,
        )
        .is_ok()
        {
            base_commits.insert(oid.clone());
        }
    }
    let mut revs = String::new();
    for refname in locked.refs.keys() {
        revs.push_str(refname);
        revs.push('\n');
    }
    for commit in &base_commits {
        revs.push_str(&format!("^{commit}\n"));
    }
    if !base_commits.is_empty() {
        let mut args = vec!["rev-list", "--objects"];
        let refs: Vec<&str> = locked.refs.keys().map(String::as_str).collect();
        args.extend(refs);
        args.push("--not");
        let commits: Vec<&str> = base_commits.iter().map(String::as_str).collect();
        args.extend(commits);
        let out = git_cli::run(Some(repo), &args, None).map_err(git_err)?;
        if out.trim().is_empty() {
            return Ok(None);
        }
    }
    let path = out.to_string_lossy();
    git_cli::run(
        Some(repo),
        &[
            "-c",
            "pack.threads=1",
            "bundle",
            "create",
            "-q",
            &path,
            "--stdin",
        ],
        Some(revs.as_bytes()),
    )
    .map_err(git_err)?;
    // `git bundle verify`: the file is a bundle and this repository has its prerequisites.
    git_cli::run(Some(repo), &["bundle", "verify", "-q", &path], None).map_err(git_err)?;
    let prerequisites = bundle_prerequisites(out).map_err(|source| {
        git_err(GitError::Io {
            command: format!("bundle create {path}"),
            source,
        })
    })?;
    Ok(Some(prerequisites))
}

/// The prerequisite commits a bundle file's header names (`-<oid> ...` lines).
pub fn bundle_prerequisites(path: &Path) -> std::io::Result<Vec<String>> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || line == b"\n" {
            break;
        }
        if let Some(rest) = line.strip_prefix(b"-") {
            let text = String::from_utf8_lossy(rest);
            if let Some(oid) = text.split_whitespace().next()
                && check_oid(oid)
            {
                out.push(oid.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
