//! A full disk: `build`, `unpack` and `import files` write into a 1 MiB tmpfs while they need
//! about 3 MiB. Each must fail with an error naming the device's state and a path on it, leave
//! nothing corrupt (every blob file hashes to its name; every file under its final name is the
//! finished file), and, once the tmpfs is grown, the same command run again must finish with
//! the result of a run on a roomy disk and leave no temporary file. Needs root (mount); skipped
//! otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::ferry::{Env, ok};
use common::static_server::StaticServer;
use common::{run, run_unchecked, sha256_hex};

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Grows (or shrinks) the file system in place.
    fn resize(&self, size: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Every file under `dir` by relative path: its SHA-256 (signatures, which differ run to run,
/// as "signature"), directories left out.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let value = if rel.ends_with(".sig") {
                    "signature".to_string()
                } else {
                    sha256_hex(&std::fs::read(&p).unwrap())
                };
                out.insert(rel, value);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Whether a relative path names a temporary file.
fn temporary(path: &str) -> bool {
    path.split('/').any(|part| {
        part.starts_with(".ferry") || part.ends_with(".partial") || part.ends_with(".tmp")
    })
}

/// Runs `command(out)` into a full 1 MiB tmpfs, checks the failure and what it left, grows the
/// tmpfs and runs it again; the result must equal `command(reference)`'s on a roomy disk.
fn full_then_freed(what: &str, env: &Env, command: impl Fn(&Path) -> Command) {
    let reference = env
        .path()
        .join(format!("reference-{}", what.replace(' ', "-")));
    ok(&mut command(&reference));
    let want = tree(&reference);

    let fs = Tmpfs::mount("1m");
    let out_dir = fs.path().join("out");
    let out = run_unchecked(&mut command(&out_dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: on a full disk:\n{stderr}"
    );
    assert!(
        stderr.contains("No space left on device")
            && stderr.contains(&*fs.path().to_string_lossy()),
        "{what}: the error names neither the full device nor a path on it:\n{stderr}"
    );
    // Nothing corrupt: blobs hash to their names, files under final names are finished.
    for (path, hash) in tree(&out_dir) {
        if temporary(&path) {
            continue;
        }
        if let Some((_, hex)) = path.rsplit_once("blobs/sha256/") {
            assert_eq!(&hash, hex, "{what}: corrupt blob {path} on the full disk");
        }
        assert_eq!(
            Some(&hash),
            want.get(&path),
            "{what}: {path} is on the full disk under its final name but is not the finished file"
        );
    }

    fs.resize("64m");
    let out = run_unchecked(&mut command(&out_dir));
    assert!(
        out.status.success(),
        "{what}: the run after space was freed failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = tree(&out_dir);
    let left: Vec<&String> = got.keys().filter(|p| temporary(p)).collect();
    assert!(left.is_empty(), "{what}: temporary files left: {left:?}");
    assert_eq!(
        got, want,
        "{what}: the result differs from a run on a roomy disk"
    );
    eprintln!("{what}: failed clearly on a full disk, finished once space was freed");
}

#[test]
fn a_full_disk_fails_clearly_and_the_rerun_after_freeing_space_finishes() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let env = Env::new();
    let up = env.path().join("upstream");
    std::fs::create_dir_all(&up).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let small = b"#!/bin/sh\nexit 0\n".to_vec();
    std::fs::write(up.join("big"), &big).unwrap();
    std::fs::write(up.join("install.sh"), &small).unwrap();
    let http = StaticServer::start(&up);
    let url = http.url();
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  files:\n    - url: {url}/big\n      sha256: {}\n    - url: {url}/install.sh\n      sha256: {}\n      mode: \"0755\"\n",
            sha256_hex(&big),
            sha256_hex(&small)
        ),
    );
    let (key, public) = env.keys();
    let bundle = env.build_signed(&manifest, "bundle");
    let usb = env.path().join("usb");
    std::fs::write(env.path().join("ferry-binary"), b"stand-in").unwrap();
    ok(env
        .ferry()
        .arg("pack")
        .arg(&bundle)
        .arg("-o")
        .arg(usb.join("bundle"))
        .args(["--volume-size", "1M", "--ferry-binary"])
        .arg(env.path().join("ferry-binary")));
    let volumes: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&usb)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .collect();
        v.sort();
        v
    };

    full_then_freed("build", &env, |out| {
        let mut c = env.ferry();
        c.arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(out)
            .arg("--key")
            .arg(&key);
        c
    });
    full_then_freed("unpack", &env, |out| {
        let mut c = env.ferry();
        c.arg("unpack").args(&volumes).arg("-o").arg(out);
        c
    });
    full_then_freed("import files", &env, |out| {
        let mut c = env.ferry();
        c.args(["import", "files"])
            .arg(&bundle)
            .arg("--key")
            .arg(&public)
            .arg("--to")
            .arg(out);
        c
    });
}
