//! Running the `git` binary: ferry carries repositories with git itself (clone, bundle,
//! fetch from a bundle, upload-pack for serving) rather than a reimplementation, so a carried
//! repository is exactly what git made and git reads. See README ("Git repositories").
//!
//! Every call runs without a terminal prompt (`GIT_TERMINAL_PROMPT=0`), in the C locale, and
//! names the command and git's own message when it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// No `git` on PATH.
    #[error(
        "git is not installed (no `git` on PATH): ferry runs git to carry repositories; install it (apt-get install git) and run again"
    )]
    NotInstalled,
    /// The command ran and failed.
    #[error("`git {command}` failed ({status}): {stderr}")]
    Failed {
        /// The arguments.
        command: String,
        /// Exit status.
        status: String,
        /// What git said (trimmed).
        stderr: String,
    },
    /// The command could not be started or talked to.
    #[error("cannot run `git {command}`: {source}")]
    Io {
        /// The arguments.
        command: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The git binary to run: `$FERRY_GIT` when set, else `git` from PATH.
pub fn binary() -> PathBuf {
    std::env::var_os("FERRY_GIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("git"))
}

/// A git command in `dir` (the repository, `--git-dir`), environment prepared.
pub fn command(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new(binary());
    if let Some(dir) = dir {
        cmd.arg("--git-dir").arg(dir);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("GIT_ASKPASS", "true")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

/// Runs git with `args` (in `dir`), feeding `stdin`; returns its standard output.
pub fn run(dir: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Result<String, GitError> {
    let shown = args.join(" ");
    let mut cmd = command(dir);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            GitError::NotInstalled
        } else {
            GitError::Io {
                command: shown.clone(),
                source,
            }
        }
    })?;
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        let bytes = bytes.to_vec();
        // Written from a thread: git may fill its output pipe before reading all its input.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().map_err(|source| GitError::Io {
        command: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(GitError::Failed {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether the repository has the object `oid`.
pub fn has_object(dir: &Path, oid: &str) -> bool {
    run(Some(dir), &["cat-file", "-e", oid], None).is_ok()
}

/// The object a ref names in the repository, None when there is no such ref.
pub fn ref_target(dir: &Path, refname: &str) -> Result<Option<String>, GitError> {
    let out = run(
        Some(dir),
        &["for-each-ref", "--format=%(objectname)", refname],
        None,
    )?;
    Ok(out.lines().next().map(str::to_string))
}

/// `git init --bare` at `dir`.
pub fn init_bare(dir: &Path) -> Result<(), GitError> {
    let path = dir.to_string_lossy();
    run(None, &["init", "--bare", "-q", &path], None).map(|_| ())
}
