//! Directory trees on the connected side: `lock` walks the tree (files hashed, directories
//! and links recorded, links leaving the tree refused), `build` streams each file into the
//! store, checked against the lock.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::layout::{Layout, LayoutError};
use crate::manifest::files::format_mode;
use crate::manifest::trees::{
    LockedTree, LockedTreeDir, LockedTreeFile, LockedTreeLink, TreeSpec, check_tree_path,
    link_stays_inside,
};

/// Why a tree could not be locked or carried; each names the tree and the file.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A file or directory could not be read.
    #[error("tree {name}: cannot read {path}: {source}")]
    Io {
        /// The tree.
        name: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A symbolic link points outside the tree.
    #[error(
        "tree {name}: the symbolic link {link} points to {target:?}, outside the tree; a tree is carried alone, so the link would dangle on site. Replace the link by the file it points to, or carry the directory it points into"
    )]
    LinkOutside {
        /// The tree.
        name: String,
        /// The link's path.
        link: PathBuf,
        /// Its target.
        target: String,
    },
    /// Something that is not a file, directory or link.
    #[error("tree {name}: {path} is a {kind}, which is not carried; remove it from the tree")]
    Special {
        /// The tree.
        name: String,
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A name that cannot be carried.
    #[error("tree {name}: cannot carry {path}: {reason}")]
    BadName {
        /// The tree.
        name: String,
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The tree's root is not a directory.
    #[error("tree {name}: {path} is not a directory; `path:` names the directory to carry")]
    NotADirectory {
        /// The tree.
        name: String,
        /// The path.
        path: PathBuf,
    },
    /// A file differs from the lock.
    #[error(
        "tree {name}: {path} changed since it was locked ({what}); run `ferry lock` again to take the tree as it is now"
    )]
    Changed {
        /// The tree.
        name: String,
        /// The file.
        path: PathBuf,
        /// How.
        what: String,
    },
    /// The store failed.
    #[error("tree {name}: {source}")]
    Layout {
        /// The tree.
        name: String,
        /// The error.
        source: LayoutError,
    },
}

/// Walks a tree and hashes every file; `on_bytes` sees the bytes hashed.
pub fn lock(spec: &TreeSpec, on_bytes: &dyn Fn(u64)) -> Result<LockedTree, TreeError> {
    let name = &spec.name;
    let meta = std::fs::metadata(&spec.dir).map_err(|source| TreeError::Io {
        name: name.clone(),
        path: spec.dir.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(TreeError::NotADirectory {
            name: name.clone(),
            path: spec.dir.clone(),
        });
    }
    let mut tree = LockedTree {
        name: name.clone(),
        path: spec.path.clone(),
        files: Vec::new(),
        dirs: Vec::new(),
        links: Vec::new(),
    };
    walk(name, &spec.dir, "", &mut tree, on_bytes)?;
    tree.files.sort_by(|a, b| a.path.cmp(&b.path));
    tree.dirs.sort_by(|a, b| a.path.cmp(&b.path));
    tree.links.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(tree)
}

fn walk(
    name: &str,
    dir: &Path,
    prefix: &str,
    tree: &mut LockedTree,
    on_bytes: &dyn Fn(u64),
) -> Result<(), TreeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        let name = name.to_string();
        move |source| TreeError::Io {
            name: name.clone(),
            path: path.clone(),
            source,
        }
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(TreeError::BadName {
                name: name.to_string(),
                path,
                reason: "the name is not UTF-8".into(),
            });
        };
        let rel = if prefix.is_empty() {
            file_name
        } else {
            format!("{prefix}/{file_name}")
        };
        check_tree_path(&rel).map_err(|reason| TreeError::BadName {
            name: name.to_string(),
            path: path.clone(),
            reason: reason.into(),
        })?;
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(io(&path))?;
            let target = target
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| TreeError::BadName {
                    name: name.to_string(),
                    path: path.clone(),
                    reason: "the link's target is not UTF-8".into(),
                })?;
            if !link_stays_inside(&rel, &target) {
                return Err(TreeError::LinkOutside {
                    name: name.to_string(),
                    link: path,
                    target,
                });
            }
            tree.links.push(LockedTreeLink { path: rel, target });
        } else if kind.is_dir() {
            tree.dirs.push(LockedTreeDir {
                path: rel.clone(),
                mode: format_mode(meta.mode() & 0o777),
            });
            walk(name, &path, &rel, tree, on_bytes)?;
        } else if kind.is_file() {
            let (digest, size) = crate::digest::hash_file(&path, on_bytes).map_err(io(&path))?;
            tree.files.push(LockedTreeFile {
                path: rel,
                mode: format_mode(meta.mode() & 0o777),
                size,
                sha256: digest.hex().to_string(),
            });
        } else {
            let kind = if kind.is_fifo() {
                "named pipe"
            } else if kind.is_socket() {
                "socket"
            } else {
                "device file"
            };
            return Err(TreeError::Special {
                name: name.to_string(),
                path,
                kind,
            });
        }
    }
    Ok(())
}

/// Bytes read from a tree's file at a time.
const CHUNK: usize = 1 << 20;

/// A thread that hashes the chunks sent to it, in order, and returns their digest once the
/// sender is dropped. Four chunks in flight bound the memory.
fn hash_aside() -> (
    std::sync::mpsc::SyncSender<std::sync::Arc<Vec<u8>>>,
    std::thread::JoinHandle<Digest>,
) {
    use sha2::Digest as _;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<u8>>>(4);
    let handle = std::thread::spawn(move || {
        let mut hasher = sha2::Sha256::new();
        for chunk in rx {
            hasher.update(&chunk[..]);
        }
        Digest::from_hasher(hasher)
    });
    (tx, handle)
}

/// Streams every file of a locked tree into the store unless it is there; each is checked
/// against the lock's size and digest as it streams. Links are checked again (a tree
/// changed since its lock is refused). Returns the bytes read.
pub fn fetch(
    locked: &LockedTree,
    dir: &Path,
    layout: &Layout,
    on_bytes: &dyn Fn(u64),
) -> Result<u64, TreeError> {
    let name = &locked.name;
    for link in &locked.links {
        let path = dir.join(&link.path);
        let target = std::fs::read_link(&path).map_err(|source| TreeError::Io {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        if target.to_str() != Some(link.target.as_str()) {
            return Err(TreeError::Changed {
                name: name.clone(),
                path,
                what: format!("the link now points to {}", target.display()),
            });
        }
    }
    let mut read = 0;
    for file in &locked.files {
        let path = dir.join(&file.path);
        let digest = file.digest().map_err(|reason| TreeError::BadName {
            name: name.clone(),
            path: path.clone(),
            reason,
        })?;
        if layout.has_blob(&digest) {
            on_bytes(file.size);
            continue;
        }
        let io = |source| TreeError::Io {
            name: name.clone(),
            path: path.clone(),
            source,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io)?;
        if !meta.is_file() || meta.len() != file.size {
            return Err(TreeError::Changed {
                name: name.clone(),
                path,
                what: format!(
                    "{} bytes in the lock, {} now",
                    file.size,
                    if meta.is_file() {
                        meta.len().to_string()
                    } else {
                        "not a file".into()
                    }
                ),
            });
        }
        let layout_err = |source| TreeError::Layout {
            name: name.clone(),
            source,
        };
        // The bytes are hashed on a second thread while this one writes them, so a large
        // file goes at the disk's speed rather than disk time plus hash time.
        let mut writer = layout.checked_blob_writer(&digest).map_err(layout_err)?;
        let mut input = std::fs::File::open(&path).map_err(io)?;
        let (chunks, hashed) = hash_aside();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = input.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            let buf = std::sync::Arc::new(buf);
            // A closed channel means the hasher is gone; its join below says why.
            let _ = chunks.send(buf.clone());
            writer.write_all(&buf).map_err(layout_err)?;
            on_bytes(n as u64);
            read += n as u64;
        }
        drop(chunks);
        let actual = hashed.join().expect("the hashing thread does not panic");
        if actual != digest {
            // Emptied, so nothing of a changed file stays behind as a partial blob.
            writer.restart().map_err(layout_err)?;
            return Err(TreeError::Changed {
                name: name.clone(),
                path,
                what: format!("its content hashes to {actual} now"),
            });
        }
        writer.commit().map_err(layout_err)?;
    }
    Ok(read)
}
