//! A private containerd daemon per test (temp root, state and socket) driven with `ctr`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::util::{describe, run, run_unchecked, wait_for};

/// The containerd namespace the helpers use.
pub const NAMESPACE: &str = "ferry-test";

/// A running `containerd` with its own root/state/socket; stopped and removed on drop.
#[derive(Debug)]
pub struct Containerd {
    child: Child,
    dir: Option<TempDir>,
    root: PathBuf,
}

impl Containerd {
    /// Starts containerd (CRI plugin off) and waits until `ctr version` answers.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ferry-containerd-")
            .tempdir()
            .expect("cannot create containerd temp dir");
        let root = dir.path().to_path_buf();
        let q = |p: &str| {
            serde_json::to_string(&root.join(p).to_string_lossy()).expect("string serializes")
        };
        let config = format!(
            "version = 2
root = {root}
state = {state}
temp = {tmp}
disabled_plugins = [\"io.containerd.grpc.v1.cri\"]
[grpc]
  address = {sock}
[ttrpc]
  address = {ttrpc}
[plugins.\"io.containerd.internal.v1.opt\"]
  path = {opt}
",
            root = q("root"),
            state = q("state"),
            tmp = q("tmp"),
            sock = q("containerd.sock"),
            ttrpc = q("containerd.sock.ttrpc"),
            opt = q("opt"),
        );
        fs::create_dir_all(root.join("tmp")).expect("cannot create containerd tmp");
        fs::write(root.join("config.toml"), config).expect("cannot write config.toml");
        let log = File::create(root.join("containerd.log")).expect("cannot create log");
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(root.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot clone log handle"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {} (is it installed?): {e}", describe(&cmd)));
        let mut containerd = Containerd {
            child,
            dir: Some(dir),
            root,
        };
        let ready = wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
            if let Ok(Some(status)) = containerd.child.try_wait() {
                return Some(Err(format!("containerd exited ({status})")));
            }
            let ok = containerd.socket().exists()
                && run_unchecked(containerd.ctr().arg("version"))
                    .status
                    .success();
            ok.then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => containerd,
            Some(Err(why)) => panic!("{why}\n--- containerd log ---\n{}", containerd.log()),
            None => panic!(
                "containerd did not answer within 30s\n--- containerd log ---\n{}",
                containerd.log()
            ),
        }
    }

    /// The gRPC socket path.
    pub fn socket(&self) -> PathBuf {
        self.root.join("containerd.sock")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("containerd.log")).unwrap_or_default()
    }

    /// A `ctr` command bound to this daemon and the [`NAMESPACE`] namespace.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(["--namespace", NAMESPACE]);
        cmd
    }

    /// `ctr images import --all-platforms` of an OCI archive (a tar of a layout), naming images `base_name:REF`; returns stdout.
    pub fn import(&self, archive: &Path, base_name: &str) -> String {
        let out = run(self
            .ctr()
            .args([
                "images",
                "import",
                "--all-platforms",
                "--base-name",
                base_name,
            ])
            .arg(archive));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr images ls -q`: the image names.
    pub fn image_names(&self) -> Vec<String> {
        let out = run(self.ctr().args(["images", "ls", "-q"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops the daemon now (also done on drop).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// SIGTERM, then SIGKILL after 10 s; reaps the process.
    fn shutdown(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let exited = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
                matches!(self.child.try_wait(), Ok(Some(_))).then_some(())
            });
            if exited.is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(dir) = self.dir.take()
            && std::env::var_os(super::registry::KEEP_ENV).is_some()
        {
            eprintln!("keeping containerd dir {}", dir.keep().display());
        }
    }
}

/// Tars the OCI layout at `layout_dir` into `archive` (an OCI archive `ctr images import` accepts).
pub fn tar_layout(layout_dir: &Path, archive: &Path) {
    let file = File::create(archive)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", archive.display()));
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", layout_dir)
        .unwrap_or_else(|e| panic!("cannot tar {}: {e}", layout_dir.display()));
    builder.finish().expect("cannot finish layout tar");
}
