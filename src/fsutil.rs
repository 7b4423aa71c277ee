//! How ferry writes files: the one place that decides their modes, and where their temporary
//! files live.
//!
//! Modes are those Unix tools give: a file is `0666 & ~umask` (0644 as usual), a file with a
//! declared mode (the files target's executables) that mode `& ~umask`, a directory
//! `0777 & ~umask`; only a [`Access::Secret`] (private keys, auth files, anything holding a
//! password) is `0600`, whatever the umask. Every writer gets its file from [`TempFile`] (or
//! renames a resumable partial through [`install`]), which sets the mode on the open file
//! right before the rename, so no caller sets a mode and nothing is left as a temporary file
//! made it (`tempfile` makes them 0600).
//!
//! Temporary files are named `.ferry-tmp-<random>` and sit beside their target (a rename is
//! atomic only within one file system). Each writer sweeps the directories it writes into when
//! it starts ([`prepare_dir`], [`sweep`], [`sweep_tree`]), so a rerun after a kill leaves no file
//! that is not part of the result. A writer holds an exclusive `flock` on its temporary file
//! from creation to rename, and the sweep removes only files whose lock it can take: the lock
//! dies with its process (even on `kill -9`), so a sweep never removes a file another ferry
//! run (two imports into one directory, say) is still writing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name prefix of every temporary file ferry makes; sweeps remove what carries it.
pub const TMP_PREFIX: &str = ".ferry-tmp-";

/// Test hook: `FERRY_FAULT_BEFORE_RENAME=<n>` kills the process (SIGKILL, as `kill -9` or a
/// power cut) right before its n-th rename of a finished file into place. The tests use it to
/// prove a rerun leaves no stray file; unset, it costs one atomic add per rename.
pub const FAULT_ENV: &str = "FERRY_FAULT_BEFORE_RENAME";

/// Who may read a file ferry writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Whoever the umask lets: `0666 & ~umask`.
    Public,
    /// Its owner only, whatever the umask: `0600` (private keys, auth files, passwords).
    Secret,
    /// A declared mode (a file of the files target), masked by the umask as `open(2)` does.
    Declared(u32),
}

impl Access {
    /// The permission bits a file written with this access gets.
    pub fn mode(self) -> u32 {
        match self {
            Access::Public => 0o666 & !umask(),
            Access::Secret => 0o600,
            Access::Declared(mode) => mode & 0o777 & !umask(),
        }
    }

    /// The mode a temporary file is created with (the kernel applies the umask): never more
    /// than its owner's until the rename for a secret.
    fn create_mode(self) -> u32 {
        match self {
            Access::Public => 0o666,
            Access::Secret => 0o600,
            Access::Declared(mode) => mode & 0o777,
        }
    }
}

/// The process's umask, read once: from `/proc/self/status` (no side effect), else by setting
/// and restoring it, which [`init`] does before any thread starts.
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        proc_umask().unwrap_or_else(|| {
            // SAFETY: umask(2) cannot fail; the old value is restored at once.
            unsafe {
                let old = libc::umask(0o022);
                libc::umask(old);
                old as u32
            }
        })
    })
}

/// Reads the umask before any thread starts (call it first thing in `main`).
pub fn init() {
    umask();
}

fn proc_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Creates `dir` and its parents (`0777 & ~umask`, as `mkdir -p`; every directory ferry makes
/// is made so, by `std::fs::create_dir_all`) and sweeps the temporary files a killed run left
/// in it.
pub fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    sweep(dir)
}

/// A file being written under a temporary name beside its target; it becomes the target
/// only through [`TempFile::commit`], and is removed when dropped uncommitted.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    path: TempPath,
}

/// The name of a temporary file; removed when dropped uncommitted.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    access: Access,
    armed: bool,
}

impl TempFile {
    /// A new temporary file in the directory of `target`.
    pub fn beside(target: &Path, access: Access) -> io::Result<TempFile> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        TempFile::in_dir(dir, access)
    }

    /// A new temporary file in `dir` (which must be on the target's file system).
    pub fn in_dir(dir: &Path, access: Access) -> io::Result<TempFile> {
        for _ in 0..16 {
            let path = dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(access.create_mode())
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // A sweep that opened the new file before the lock may hold it (and remove it) or
            // have removed it: then the name no longer leads to this file, and another name is
            // taken. A file system without locks writes unguarded.
            if try_lock(&file).unwrap_or(true) && same_file(&file, &path) {
                return Ok(TempFile {
                    file,
                    path: TempPath {
                        path,
                        access,
                        armed: true,
                    },
                });
            }
        }
        Err(io::Error::other(format!(
            "cannot make a temporary file in {}",
            dir.display()
        )))
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The open file, for writing.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Splits the file from its name, for writers that move the file into a wrapper; the
    /// file keeps the lock while open, and [`TempPath::commit`] takes it back.
    pub fn into_parts(self) -> (File, TempPath) {
        (self.file, self.path)
    }

    /// Sets the mode, fsyncs and renames the file to `target`, then makes the rename durable.
    pub fn commit(self, target: &Path) -> io::Result<()> {
        self.path.commit(self.file, target)
    }

    /// As [`TempFile::commit`], leaving the directory's fsync to the caller (once for many
    /// files).
    pub fn commit_deferred(self, target: &Path) -> io::Result<()> {
        self.path.commit_deferred(self.file, target)
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl TempPath {
    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// As [`TempFile::commit`], for the file taken out by [`TempFile::into_parts`].
    pub fn commit(self, file: File, target: &Path) -> io::Result<()> {
        self.commit_deferred(file, target)?;
        sync_parent(target);
        Ok(())
    }

    /// As [`TempPath::commit`] without the directory's fsync.
    pub fn commit_deferred(mut self, file: File, target: &Path) -> io::Result<()> {
        install(&file, &self.path, target, self.access)?;
        self.armed = false;
        drop(file);
        Ok(())
    }

    /// Keeps the file under its temporary name when dropped (for partial files a later
    /// step renames itself); a sweep removes it once no open file holds it.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Puts a finished file in place: its mode set by `access`, its data fsynced, then renamed
/// from `from` to `to`. The caller keeps `file` open (and so its lock) until this returns.
pub fn install(file: &File, from: &Path, to: &Path, access: Access) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(access.mode()))?;
    file.sync_all()?;
    rename(from, to)
}

/// Renames `from` to `to`; every rename into place passes here (see [`FAULT_ENV`]).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fault_point();
    fs::rename(from, to)
}

fn fault_point() {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let at = AT.get_or_init(|| std::env::var(FAULT_ENV).ok()?.parse().ok());
    if let Some(n) = at
        && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        // SAFETY: sends a signal to this process; nothing is touched.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename, so readers see the
/// old or the new content; sweeps what a killed run left beside it first.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sweep(dir)?,
        _ => sweep(Path::new("."))?,
    }
    let mut tmp = TempFile::beside(path, access)?;
    tmp.write_all(bytes)?;
    tmp.commit(path)
}

/// Takes an exclusive lock on an open file without waiting: false when another open file
/// holds it, an error when the file system has no locks. A writer holds it on its partial file
/// until the rename, so sweeps leave the file alone.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this File owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(error)
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes the temporary files (`.ferry-tmp-*`) killed runs left in `dir` (not below it);
/// a missing directory has none.
pub fn sweep(dir: &Path) -> io::Result<()> {
    sweep_matching(dir, |name| name.starts_with(TMP_PREFIX), false)
}

/// As [`sweep`], in `dir` and every directory below it (symlinks are not followed).
pub fn sweep_tree(dir: &Path) -> io::Result<()> {
    sweep_matching(dir, |name| name.starts_with(TMP_PREFIX), true)
}

/// Removes every regular file in `dir` that `stale` accepts and no live process holds locked.
pub fn sweep_matching(dir: &Path, stale: impl Fn(&str) -> bool, deep: bool) -> io::Result<()> {
    sweep_in(dir, &stale, deep)
}

fn sweep_in(dir: &Path, stale: &dyn Fn(&str) -> bool, deep: bool) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() && deep {
            sweep_in(&path, stale, true)?;
        } else if kind.is_file() && entry.file_name().to_str().is_some_and(stale) {
            remove_if_unlocked(&path);
        }
    }
    Ok(())
}

/// Removes `path` if no open file holds its lock (its writer is gone). Best effort: a file
/// this user cannot open or remove is left to its owner's next run.
fn remove_if_unlocked(path: &Path) {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    else {
        return;
    };
    // Removed while locked, and only if the name still leads to the file locked: a writer
    // that renamed it into place meanwhile has taken the name away. Without locks (a file
    // system that has none) no writer could be told from a dead one: it goes.
    if try_lock(&file).unwrap_or(true) && same_file(&file, path) {
        let _ = fs::remove_file(path);
    }
}

/// Names of scratch directories in the system's temporary directory.
const SCRATCH_PREFIX: &str = "ferry-scratch-";

/// A private scratch directory in the system's temporary directory (`$TMPDIR`), removed when
/// dropped. A lock file beside it (`NAME.lock`), held while it lives, lets the next run remove
/// the directory of a run that was killed, and never one another run still uses.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    lock: PathBuf,
    _held: File,
}

impl ScratchDir {
    /// A new scratch directory named after `purpose`; first removes those killed runs left.
    pub fn new(purpose: &str) -> io::Result<ScratchDir> {
        ScratchDir::new_in(&std::env::temp_dir(), purpose)
    }

    /// As [`ScratchDir::new`], in `tmp`.
    pub fn new_in(tmp: &Path, purpose: &str) -> io::Result<ScratchDir> {
        let tmp = tmp.to_path_buf();
        sweep_scratch(&tmp);
        for _ in 0..16 {
            let name = format!("{SCRATCH_PREFIX}{purpose}-{:016x}", rand::random::<u64>());
            let lock = tmp.join(format!("{name}.lock"));
            let held = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(&lock)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            if !(try_lock(&held).unwrap_or(true) && same_file(&held, &lock)) {
                continue;
            }
            let path = tmp.join(&name);
            std::fs::DirBuilder::new().mode(0o700).create(&path)?;
            return Ok(ScratchDir {
                path,
                lock,
                _held: held,
            });
        }
        Err(io::Error::other(format!(
            "cannot make a scratch directory in {}",
            tmp.display()
        )))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
        let _ = fs::remove_file(&self.lock);
    }
}

/// Removes the scratch directories of killed runs: those whose lock no process holds, and
/// those left without a lock file.
fn sweep_scratch(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.starts_with(SCRATCH_PREFIX) {
            continue;
        }
        let path = entry.path();
        if let Some(dir_name) = name.strip_suffix(".lock") {
            let Ok(file) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&path)
            else {
                continue;
            };
            if try_lock(&file).unwrap_or(false) && same_file(&file, &path) {
                let _ = fs::remove_dir_all(tmp.join(dir_name));
                let _ = fs::remove_file(&path);
            }
        } else if entry.file_type().is_ok_and(|t| t.is_dir())
            && !tmp.join(format!("{name}.lock")).exists()
        {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Makes a rename durable; failure only weakens durability, so it is not an error.
pub fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dirs_of_killed_runs_are_removed_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A killed run: its lock file unlocked, its directory with content.
        let dead = tmp.path().join("ferry-scratch-charts-0000000000000001");
        fs::create_dir_all(dead.join("blobs")).unwrap();
        fs::write(dead.join("blobs/x"), b"x").unwrap();
        fs::write(
            tmp.path()
                .join("ferry-scratch-charts-0000000000000001.lock"),
            b"",
        )
        .unwrap();
        // A directory whose lock file is gone, and someone else's file.
        fs::create_dir(tmp.path().join("ferry-scratch-helm-0000000000000002")).unwrap();
        fs::write(tmp.path().join("other"), b"keep").unwrap();
        let live = ScratchDir::new_in(tmp.path(), "helm").unwrap();
        assert!(!dead.exists());
        assert!(
            !tmp.path()
                .join("ferry-scratch-charts-0000000000000001.lock")
                .exists()
        );
        assert!(
            !tmp.path()
                .join("ferry-scratch-helm-0000000000000002")
                .exists()
        );
        assert!(tmp.path().join("other").exists());
        // A second run leaves the live one alone.
        let second = ScratchDir::new_in(tmp.path(), "charts").unwrap();
        assert!(live.path().is_dir());
        assert_eq!(
            fs::metadata(live.path()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let (a, b) = (live.path().to_path_buf(), second.path().to_path_buf());
        drop(live);
        drop(second);
        assert!(!a.exists() && !b.exists());
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["other"]);
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn modes_follow_the_umask_and_secrets_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let mask = umask();
        let public = dir.path().join("public");
        let secret = dir.path().join("secret");
        let exec = dir.path().join("exec");
        write_atomic(&public, b"p", Access::Public).unwrap();
        write_atomic(&secret, b"s", Access::Secret).unwrap();
        write_atomic(&exec, b"x", Access::Declared(0o755)).unwrap();
        assert_eq!(mode(&public), 0o666 & !mask);
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(mode(&exec), 0o755 & !mask);
        assert_eq!(fs::read(&public).unwrap(), b"p");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 3, "no temporary file is left");
    }

    #[test]
    fn sweep_removes_what_dead_writers_left_and_spares_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let live = TempFile::beside(&dir.path().join("a"), Access::Public).unwrap();
        let dead = dir.path().join(format!("{TMP_PREFIX}0123"));
        fs::write(&dead, b"left by a killed run").unwrap();
        let other = dir.path().join("keep");
        fs::write(&other, b"not ours").unwrap();
        sweep(dir.path()).unwrap();
        assert!(live.path().exists(), "a file being written is spared");
        assert!(!dead.exists(), "an unlocked leftover is removed");
        assert!(other.exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(
            !path.exists(),
            "an uncommitted temporary file is removed when dropped"
        );
    }

    #[test]
    fn a_committed_file_is_never_swept_and_a_tree_sweep_goes_deep() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        fs::create_dir_all(&deep).unwrap();
        let stray = deep.join(format!("{TMP_PREFIX}x"));
        fs::write(&stray, b"").unwrap();
        let mut tmp = TempFile::beside(&deep.join("f"), Access::Public).unwrap();
        tmp.write_all(b"f").unwrap();
        tmp.commit(&deep.join("f")).unwrap();
        sweep_tree(dir.path()).unwrap();
        assert!(!stray.exists());
        assert_eq!(fs::read(deep.join("f")).unwrap(), b"f");
    }
}

/// Bytes free for unprivileged writes on the file system holding `path` (or its nearest
/// existing ancestor, for a directory not made yet), and that directory; `None` when it cannot
/// be told (statvfs failed).
pub fn free_space(path: &Path) -> Option<(u64, PathBuf)> {
    let mut dir = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    while !dir.is_dir() {
        dir = dir.parent()?.to_path_buf();
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a valid pointer to a statvfs struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((s.f_bavail as u64 * s.f_frsize as u64, dir))
}

/// Not enough room for a write whose size is known before it starts.
#[derive(Debug, thiserror::Error)]
#[error(
    "not enough space for {what}: it needs {}, {} free on the file system of {} ({}). Free at least {} there (or write somewhere else) and run the same command again; what is already written is kept",
    human(*needed), human(*free), dir.display(), path.display(), human(needed - free)
)]
pub struct NoSpace {
    /// What was to be written.
    pub what: String,
    /// Where it goes.
    pub path: PathBuf,
    /// The existing directory the free space was measured at.
    pub dir: PathBuf,
    /// Bytes needed.
    pub needed: u64,
    /// Bytes free.
    pub free: u64,
}

/// Checks, before writing `needed` bytes of `what` under `path`, that its file system has
/// room; a file system that cannot tell is trusted.
pub fn ensure_space(path: &Path, needed: u64, what: &str) -> Result<(), NoSpace> {
    if needed == 0 {
        return Ok(());
    }
    let Some((free, dir)) = free_space(path) else {
        return Ok(());
    };
    if needed <= free {
        return Ok(());
    }
    Err(NoSpace {
        what: what.to_string(),
        path: path.to_path_buf(),
        dir,
        needed,
        free,
    })
}

/// For an error caused by a full disk (ENOSPC, EDQUOT), a line saying how much is free on the
/// file system of the first path the message names, and what to do; `None` for other errors.
pub fn explain_full_disk(error: &anyhow::Error) -> Option<String> {
    let full = error.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|c| c == libc::ENOSPC || c == libc::EDQUOT)
    }) || format!("{error:#}").contains("No space left on device");
    if !full {
        return None;
    }
    let text = format!("{error:#}");
    let path = text
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',' || c == '(' || c == ')')
        .find(|w| w.starts_with('/') && w.len() > 1)
        .map(PathBuf::from);
    let place = path.as_deref().and_then(free_space).map(|(free, dir)| {
        format!(
            "{} free on the file system of {}",
            human(free),
            dir.display()
        )
    });
    Some(match place {
        Some(place) => format!(
            "the disk is full ({place}): free space there (or write somewhere else) and run the same command again; what is already written is kept"
        ),
        None => "the disk is full: free space (or write somewhere else) and run the same command again; what is already written is kept".to_string(),
    })
}

/// Bytes with a binary unit, as the errors say them ("512 MiB", "12.5 KiB").
fn human(bytes: u64) -> String {
    crate::progress::human_bytes(bytes)
}

/// The total size of the files under `dir` (0 when it does not exist).
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
