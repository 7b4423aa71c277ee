//! Directory trees (model stores) on site: `<dir>/<name>`, written atomically.
//!
//! A tree is assembled in `<dir>/.ferry-partial-<name>` (kept when a run stops, so the next
//! run resumes: a file there is complete and checked, or it is not there), every file's
//! digest checked as it is written, then renamed into place — swapped with the old tree in
//! one `renameat2(RENAME_EXCHANGE)` when there is one — so `<dir>/<name>` is always a whole
//! tree, the old or the new. With an owner, every file, directory and link is chowned before
//! the rename (NIM's cache is read as UID 1000, GID 2000).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::BackgroundHashWriter;
use crate::fsutil::{Access, TempFile};
use crate::layout::tree::{BundleTree, TreeFile};
use crate::layout::{Layout, LayoutError};
use crate::manifest::files::parse_mode;

/// Prefix of the directory a tree is assembled in.
pub const PARTIAL_PREFIX: &str = ".ferry-partial-";

/// Why a tree could not be written; the tree in place (if any) is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum TreeImportError {
    /// A file could not be written or read.
    #[error("tree {name}: {path}: {source}")]
    Io {
        /// The tree.
        name: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A blob could not be read from the bundle (missing, or its digest does not match).
    #[error("tree {name}: file {path}: {source}")]
    Layout {
        /// The tree.
        name: String,
        /// The file in the tree.
        path: String,
        /// The error.
        source: LayoutError,
    },
    /// A delta left files to its base that the site's tree does not have.
    #[error("tree {name}: {message}")]
    MissingBase {
        /// The tree.
        name: String,
        /// The whole message.
        message: String,
    },
    /// Changing owners failed (not root?).
    #[error(
        "tree {name}: cannot give {path} to {uid}:{gid}: {source}; --owner needs root (run with sudo), or leave it out"
    )]
    Chown {
        /// The tree.
        name: String,
        /// The path.
        path: PathBuf,
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// The error.
        source: std::io::Error,
    },
}

impl TreeImportError {
    /// The error of an I/O step on `path` while importing `name`, for `map_err`.
    fn io(name: &str, path: &Path) -> impl FnOnce(std::io::Error) -> TreeImportError + use<> {
        let (name, path) = (name.to_string(), path.to_path_buf());
        move |source| TreeImportError::Io { name, path, source }
    }
}

/// What happened to one tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreeReport {
    /// The tree's name.
    pub name: String,
    /// Where it is.
    pub path: String,
    /// Files in the tree.
    pub files: usize,
    /// Bytes of its files.
    pub size: u64,
    /// Bytes written now (0 when it was in place).
    pub written: u64,
    /// Files found complete in the partial directory of an earlier run.
    pub resumed: usize,
    /// `written` (new), `replaced`, or `unchanged`.
    pub outcome: &'static str,
}

/// Writes one tree of the bundle into `dir/<name>`; `on_bytes` sees the bytes written.
pub fn import_tree(
    layout: &Layout,
    tree: &BundleTree,
    dir: &Path,
    owner: Option<(u32, u32)>,
    on_bytes: &dyn Fn(u64),
) -> Result<TreeReport, TreeImportError> {
    let plan = plan_tree(layout, tree, dir)?;
    finish_tree(
        layout,
        tree,
        dir,
        owner,
        &plan,
        &BTreeSet::new(),
        0,
        on_bytes,
    )
}

/// What a tree needs on site, found before any of its bytes is read.
#[derive(Debug, Clone)]
pub struct TreePlan {
    /// `dir/<name>` holds the tree exactly already.
    pub in_place: bool,
    /// Files (by path) an earlier run left complete in the partial directory.
    pub resumed: BTreeSet<String>,
}

impl TreePlan {
    /// The files whose bytes must come from the bundle (delta files left to the base are
    /// copied from the tree in place).
    pub fn needed<'a>(&'a self, layout: &'a Layout, tree: &'a BundleTree) -> Vec<&'a TreeFile> {
        if self.in_place {
            return Vec::new();
        }
        tree.files
            .iter()
            .filter(|f| !self.resumed.contains(&f.path) && layout.has_blob(&f.digest))
            .collect()
    }
}

/// Bytes writing `tree` into `dir` needs, estimated before anything is written or hashed:
/// none when `dir/<name>` has every file at its size already, else each file the partial
/// directory does not hold at its size (a file of another content is found by the import and
/// replaced; an estimate, the write itself still reports a full disk).
pub fn space_needed(dir: &Path, tree: &BundleTree) -> u64 {
    let size_at = |path: PathBuf| std::fs::symlink_metadata(path).ok().map(|m| m.len());
    let target = dir.join(&tree.config.name);
    if tree
        .files
        .iter()
        .all(|f| size_at(target.join(&f.path)) == Some(f.size))
    {
        return 0;
    }
    let partial = partial_dir(dir, tree);
    tree.files
        .iter()
        .filter(|f| size_at(partial.join(&f.path)) != Some(f.size))
        .map(|f| f.size)
        .sum()
}

/// The directory `tree` is assembled in under `dir`.
pub fn partial_dir(dir: &Path, tree: &BundleTree) -> PathBuf {
    dir.join(format!("{PARTIAL_PREFIX}{}", tree.config.name))
}

/// Plans one tree: in place already, or its partial directory made ready (directories
/// made, stale temporaries swept) with what an earlier run left there found. A delta whose
/// base files are not on site is refused here, before any read.
pub fn plan_tree(
    layout: &Layout,
    tree: &BundleTree,
    dir: &Path,
) -> Result<TreePlan, TreeImportError> {
    let name = tree.config.name.clone();
    let target = dir.join(&name);
    let partial = partial_dir(dir, tree);
    let io = |path: &Path| TreeImportError::io(&name, path);
    crate::fsutil::prepare_dir(dir).map_err(io(dir))?;
    if holds_exactly(&target, tree) {
        return Ok(TreePlan {
            in_place: true,
            resumed: BTreeSet::new(),
        });
    }

    // A delta's files left to the base must be in the tree in place.
    let mut missing = Vec::new();
    for f in tree.files.iter().filter(|f| !layout.has_blob(&f.digest)) {
        let there = target.join(&f.path);
        if !crate::layout::delta::file_holds(&there, &f.digest, f.size)
            && !crate::layout::delta::file_holds(&partial.join(&f.path), &f.digest, f.size)
        {
            missing.push(format!("{} ({})", there.display(), f.digest));
        }
    }
    if !missing.is_empty() {
        return Err(TreeImportError::MissingBase {
            name: name.clone(),
            message: crate::layout::delta::missing_base_message(&target, &missing),
        });
    }

    // The partial directory: directories first, so files can go in as they arrive.
    std::fs::create_dir_all(&partial).map_err(io(&partial))?;
    crate::fsutil::sweep_tree(&partial).map_err(io(&partial))?;
    for d in &tree.config.dirs {
        let path = partial.join(&d.path);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove_any(&path).map_err(io(&path))?;
                std::fs::create_dir(&path).map_err(io(&path))?;
            }
            Err(_) => std::fs::create_dir(&path).map_err(io(&path))?,
        }
        // Writable while files go in; the recorded mode is set at the end.
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
    }
    let resumed = tree
        .files
        .iter()
        .filter(|f| crate::layout::delta::file_holds(&partial.join(&f.path), &f.digest, f.size))
        .map(|f| f.path.clone())
        .collect();
    Ok(TreePlan {
        in_place: false,
        resumed,
    })
}

/// A new file of a tree in its partial directory, under a temporary name until
/// [`TempFile::commit_deferred`] to the returned path (whatever was at that path goes).
pub fn open_tree_file(
    dir: &Path,
    tree: &BundleTree,
    file: &TreeFile,
) -> Result<(TempFile, PathBuf), TreeImportError> {
    let name = &tree.config.name;
    let partial = partial_dir(dir, tree);
    let dest = partial.join(&file.path);
    let io = |path: &Path| TreeImportError::io(name, path);
    if std::fs::symlink_metadata(&dest).is_ok() {
        remove_any(&dest).map_err(io(&dest))?;
    }
    let parent = dest.parent().unwrap_or(&partial);
    let temp = TempFile::in_dir(parent, Access::Declared(file.mode)).map_err(io(parent))?;
    Ok((temp, dest))
}

/// Completes a planned tree and puts it in place: the files neither resumed nor in
/// `delivered` (written by the caller, each digest checked) copied from the bundle (or, for a
/// delta, from the tree in place), then links, modes and owner, and the swap.
/// `delivered_bytes`: what the caller wrote, for the report.
#[allow(clippy::too_many_arguments)]
pub fn finish_tree(
    layout: &Layout,
    tree: &BundleTree,
    dir: &Path,
    owner: Option<(u32, u32)>,
    plan: &TreePlan,
    delivered: &BTreeSet<String>,
    delivered_bytes: u64,
    on_bytes: &dyn Fn(u64),
) -> Result<TreeReport, TreeImportError> {
    let name = tree.config.name.clone();
    let target = dir.join(&name);
    let partial = partial_dir(dir, tree);
    let io = |path: &Path| TreeImportError::io(&name, path);
    let report = |written, resumed, outcome| TreeReport {
        name: name.clone(),
        path: target.display().to_string(),
        files: tree.files.len(),
        size: tree.size(),
        written,
        resumed,
        outcome,
    };

    // Already in place exactly: only modes and owner are made right.
    if plan.in_place {
        apply_modes_and_owner(&name, &target, tree, owner)?;
        on_bytes(tree.size());
        return Ok(report(0, 0, "unchanged"));
    }

    let mut ordered: Vec<&TreeFile> = tree
        .files
        .iter()
        .filter(|f| !delivered.contains(&f.path))
        .collect();
    ordered.sort_by_key(|f| layout.blob_order_key(&f.digest));
    let (mut written, mut resumed) = (delivered_bytes, 0usize);
    let mut buf = vec![0u8; 1 << 20];
    for f in ordered {
        if plan.resumed.contains(&f.path) {
            resumed += 1;
            on_bytes(f.size);
            continue;
        }
        let (temp, dest) = open_tree_file(dir, tree, f)?;
        // Writing and hashing overlap (a model file is GBs).
        let mut out = BackgroundHashWriter::new(temp);
        let layout_err = |source| TreeImportError::Layout {
            name: name.clone(),
            path: f.path.clone(),
            source,
        };
        let mut copy = |reader: &mut dyn Read, from: &Path| -> Result<(), TreeImportError> {
            loop {
                let n = reader.read(&mut buf).map_err(io(from))?;
                if n == 0 {
                    return Ok(());
                }
                out.write_all(&buf[..n]).map_err(io(&dest))?;
                on_bytes(n as u64);
            }
        };
        if layout.has_blob(&f.digest) {
            // Hashed once, by the writer, and compared below.
            let mut reader = layout.open_blob_unchecked(&f.digest).map_err(layout_err)?;
            copy(&mut reader, Path::new(&format!("blob {}", f.digest)))?;
        } else {
            let from = target.join(&f.path);
            let mut reader = std::fs::File::open(&from).map_err(io(&from))?;
            copy(&mut reader, &from)?;
        }
        let (temp, digest, size) = out.finish().map_err(io(&dest))?;
        if digest != f.digest || size != f.size {
            return Err(TreeImportError::Layout {
                name: name.clone(),
                path: f.path.clone(),
                source: LayoutError::DigestMismatch {
                    expected: f.digest.clone(),
                    actual: digest,
                    size,
                },
            });
        }
        temp.commit_deferred(&dest).map_err(io(&dest))?;
        written += size;
    }
    for l in &tree.config.links {
        let path = partial.join(&l.path);
        if std::fs::symlink_metadata(&path).is_ok() {
            remove_any(&path).map_err(io(&path))?;
        }
        std::os::unix::fs::symlink(&l.target, &path).map_err(io(&path))?;
    }
    // Anything an earlier, different release left in the partial directory goes.
    remove_strays(&partial, tree).map_err(io(&partial))?;
    apply_modes_and_owner(&name, &partial, tree, owner)?;
    sync_tree(&partial);

    // Into place: swapped with the old tree in one step, or renamed when there is none.
    let outcome = if std::fs::symlink_metadata(&target).is_ok() {
        exchange(&partial, &target).map_err(io(&target))?;
        // `partial` now holds the old tree.
        make_removable(&partial);
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
        "replaced"
    } else {
        crate::fsutil::rename(&partial, &target).map_err(io(&target))?;
        "written"
    };
    crate::fsutil::sync_parent(&target);
    Ok(report(written, resumed, outcome))
}

/// Whether `root` holds exactly the tree: the same paths, kinds, link targets, sizes and
/// file digests.
fn holds_exactly(root: &Path, tree: &BundleTree) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let mut found = BTreeMap::new();
    if list(root, "", &mut found).is_err() {
        return false;
    }
    let expected = tree.files.len() + tree.config.dirs.len() + tree.config.links.len();
    if found.len() != expected {
        return false;
    }
    for d in &tree.config.dirs {
        if found.get(&d.path) != Some(&Found::Dir) {
            return false;
        }
    }
    for l in &tree.config.links {
        if found.get(&l.path) != Some(&Found::Link(l.target.clone())) {
            return false;
        }
    }
    for f in &tree.files {
        if found.get(&f.path) != Some(&Found::File(f.size)) {
            return false;
        }
    }
    tree.files
        .iter()
        .all(|f| crate::layout::delta::file_holds(&root.join(&f.path), &f.digest, f.size))
}

/// What differs between `root` and the tree (empty: the same paths, kinds, link targets
/// and file sizes), for the readiness check after an import that checked every file's
/// digest as it wrote it or found it in place; nothing is hashed again.
pub fn tree_problems(root: &Path, tree: &BundleTree) -> Vec<String> {
    let mut found = BTreeMap::new();
    if let Err(e) = list(root, "", &mut found) {
        return vec![format!("{}: {e}", root.display())];
    }
    let mut problems = Vec::new();
    let mut expected: BTreeMap<&str, Found> = BTreeMap::new();
    for d in &tree.config.dirs {
        expected.insert(&d.path, Found::Dir);
    }
    for l in &tree.config.links {
        expected.insert(&l.path, Found::Link(l.target.clone()));
    }
    for f in &tree.files {
        expected.insert(&f.path, Found::File(f.size));
    }
    for (path, want) in &expected {
        match found.get(*path) {
            Some(have) if have == want => {}
            Some(have) => problems.push(format!(
                "{} is {}, the bundle has {}",
                root.join(path).display(),
                have.describe(),
                want.describe()
            )),
            None => problems.push(format!("{}: missing", root.join(path).display())),
        }
    }
    for path in found.keys() {
        if !expected.contains_key(path.as_str()) {
            problems.push(format!(
                "{}: not in the bundle's tree",
                root.join(path).display()
            ));
        }
    }
    problems
}

#[derive(Debug, PartialEq, Eq)]
enum Found {
    Dir,
    File(u64),
    Link(String),
    Other,
}

impl Found {
    fn describe(&self) -> String {
        match self {
            Found::Dir => "a directory".into(),
            Found::File(size) => format!("a file of {size} bytes"),
            Found::Link(target) => format!("a link to {target}"),
            Found::Other => "neither a file, a directory nor a link".into(),
        }
    }
}

fn list(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Found>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(entry.path())?;
        let found = if meta.is_symlink() {
            Found::Link(
                std::fs::read_link(entry.path())?
                    .to_string_lossy()
                    .into_owned(),
            )
        } else if meta.is_dir() {
            list(&entry.path(), &rel, out)?;
            Found::Dir
        } else if meta.is_file() {
            Found::File(meta.len())
        } else {
            Found::Other
        };
        out.insert(rel, found);
    }
    Ok(())
}

/// Removes from the partial directory what the tree does not have (deepest first).
fn remove_strays(partial: &Path, tree: &BundleTree) -> std::io::Result<()> {
    let mut found = BTreeMap::new();
    list(partial, "", &mut found)?;
    let keep: std::collections::BTreeSet<&str> = tree
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(tree.config.dirs.iter().map(|d| d.path.as_str()))
        .chain(tree.config.links.iter().map(|l| l.path.as_str()))
        .collect();
    for (path, _) in found.iter().rev() {
        if !keep.contains(path.as_str()) {
            let p = partial.join(path);
            if std::fs::symlink_metadata(&p).is_ok() {
                remove_any(&p)?;
            }
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        make_removable(path);
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Gives the owner write access to every directory below `root` (a tree with read-only
/// directories could not be removed otherwise).
fn make_removable(root: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(
        root,
        std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700),
    );
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            make_removable(&e.path());
        }
    }
}

/// Sets file and directory modes as carried (masked by the umask, as every file ferry
/// writes) and, with an owner, chowns everything (links themselves, not their targets).
fn apply_modes_and_owner(
    name: &str,
    root: &Path,
    tree: &BundleTree,
    owner: Option<(u32, u32)>,
) -> Result<(), TreeImportError> {
    let io = |path: &Path| TreeImportError::io(name, path);
    let umask = crate::fsutil::umask();
    for f in &tree.files {
        let path = root.join(&f.path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode & !umask))
            .map_err(io(&path))?;
    }
    if let Some((uid, gid)) = owner {
        let chown = |path: &Path| {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|source| {
                TreeImportError::Chown {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    uid,
                    gid,
                    source,
                }
            })
        };
        chown(root)?;
        for path in tree
            .files
            .iter()
            .map(|f| &f.path)
            .chain(tree.config.dirs.iter().map(|d| &d.path))
            .chain(tree.config.links.iter().map(|l| &l.path))
        {
            chown(&root.join(path))?;
        }
    }
    // Directories last, deepest first: a read-only directory is set after what is in it.
    let mut dirs: Vec<_> = tree.config.dirs.iter().collect();
    dirs.sort_by(|a, b| b.path.cmp(&a.path));
    for d in dirs {
        let mode = parse_mode(&d.mode).unwrap_or(0o755);
        let path = root.join(&d.path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !umask))
            .map_err(io(&path))?;
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o777 & !umask))
        .map_err(io(root))?;
    Ok(())
}

/// Makes the directory entries of a finished tree durable (files were fsynced when written).
fn sync_tree(root: &Path) {
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                sync_tree(&e.path());
            }
        }
    }
    if let Ok(d) = std::fs::File::open(root) {
        let _ = d.sync_all();
    }
}

/// Swaps two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths; renameat2 does not keep them.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    // A file system without RENAME_EXCHANGE: the old tree moves aside first.
    let aside = a.with_extension("old");
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::tree::TreeConfig;
    use crate::manifest::trees::{LockedTreeDir, LockedTreeLink};

    #[test]
    fn tree_problems_name_each_difference() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"four").unwrap();
        std::os::unix::fs::symlink("d/f", root.join("l")).unwrap();
        let tree = BundleTree {
            config: TreeConfig {
                name: "t".into(),
                dirs: vec![LockedTreeDir {
                    path: "d".into(),
                    mode: "0755".into(),
                }],
                links: vec![LockedTreeLink {
                    path: "l".into(),
                    target: "d/f".into(),
                }],
            },
            files: vec![TreeFile {
                path: "d/f".into(),
                mode: 0o644,
                digest: crate::digest::Digest::of_bytes(b"four"),
                size: 4,
            }],
        };
        assert_eq!(tree_problems(&root, &tree), Vec::<String>::new());
        std::fs::write(root.join("d/f"), b"five!").unwrap();
        std::fs::write(root.join("extra"), b"").unwrap();
        std::fs::remove_file(root.join("l")).unwrap();
        let problems = tree_problems(&root, &tree);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].ends_with("d/f is a file of 5 bytes, the bundle has a file of 4 bytes"),
            "{problems:?}"
        );
        assert!(problems[1].ends_with("/l: missing"), "{problems:?}");
        assert!(
            problems[2].ends_with("/extra: not in the bundle's tree"),
            "{problems:?}"
        );
    }
}
