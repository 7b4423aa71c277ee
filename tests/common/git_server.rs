//! Git for the tests: `git` with a fixed identity and no user configuration, repositories the
//! tests make, and `git daemon` on a loopback port as the upstream server.
//!
//! ```text
//! let server = GitServer::start();
//! let upstream = server.create("platform");        // bare repo served as git://…/platform.git
//! let work = Work::clone_of(&server, "platform");   // a working clone, push with work.push()
//! work.commit("a.txt", "one"); work.push(&["main"]);
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// `git ARGS` in `dir`, isolated from the user's configuration, with a fixed identity.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR");
    cmd
}

/// Runs git in `dir`, requires success, returns stdout trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every branch and tag of a repository and the object it names, one `OID REF` line each.
pub fn refs(repo: &Path) -> String {
    git(
        repo,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads/",
            "refs/tags/",
        ],
    )
}

/// `git daemon` serving the bare repositories of a temporary directory; killed on drop.
pub struct GitServer {
    base: TempDir,
    port: u16,
    child: Child,
}

impl GitServer {
    /// Starts on a free loopback port (retrying when the port is taken meanwhile).
    pub fn start() -> GitServer {
        let base = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = super::util::free_port();
            let mut child = git_cmd(base.path())
                .args([
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--informative-errors",
                ])
                .arg(format!("--base-path={}", base.path().display()))
                .arg(format!("--port={port}"))
                .arg("--listen=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn git daemon");
            let up =
                super::util::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
                    if let Ok(Some(_)) = child.try_wait() {
                        return Some(false);
                    }
                    std::net::TcpStream::connect(("127.0.0.1", port))
                        .ok()
                        .map(|_| true)
                });
            if up == Some(true) {
                return GitServer { base, port, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("git daemon did not start");
    }

    /// Makes an empty bare repository `NAME.git` and returns its path.
    pub fn create(&self, name: &str) -> PathBuf {
        let path = self.base.path().join(format!("{name}.git"));
        git(
            self.base.path(),
            &["init", "-q", "--bare", "-b", "main", path.to_str().unwrap()],
        );
        path
    }

    /// The repository's URL.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }

    /// The bare repository's path.
    pub fn path(&self, name: &str) -> PathBuf {
        self.base.path().join(format!("{name}.git"))
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A working repository whose `origin` is a bare repository of the server.
pub struct Work {
    dir: TempDir,
}

impl Work {
    /// A new working repository pushing to `upstream` (a bare repository path).
    pub fn new(upstream: &Path) -> Work {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(
            dir.path(),
            &["remote", "add", "origin", upstream.to_str().unwrap()],
        );
        Work { dir }
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `file` with `content` and commits it; returns the commit.
    pub fn commit(&self, file: &str, content: &str) -> String {
        let path = self.path().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "-m", &format!("{file}: {content}")],
        );
        git(self.path(), &["rev-parse", "HEAD"])
    }

    /// Runs git here.
    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// Pushes every branch and tag, forcing (a rewrite upstream is what some tests want).
    pub fn push_all(&self) {
        git(self.path(), &["push", "-q", "--force", "origin", "--all"]);
        git(self.path(), &["push", "-q", "--force", "origin", "--tags"]);
    }
}
