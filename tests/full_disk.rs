//! A full disk: `build`, `unpack`, `import files`, `import trees`, `import git` and
//! `import --site` write into a 1 MiB tmpfs while they need 2 to 3 MiB, and must say so
//! before writing (the space needed, the space free, the path); `import apt` writes into a
//! tmpfs with only 8 KiB left, which its own estimate fits but its indexes do not, and must
//! name the path, the full device and the space free. Each must leave nothing corrupt (every
//! blob file hashes to its name; every file under its final name is the finished file), and,
//! once space is freed, the same command run again must finish with the result of a run on a
//! roomy disk and leave no temporary file. Needs root (mount); skipped otherwise.

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
/// as "signature"; the path of `dir` in a text file as "OUT"), directories left out; empty
/// when `dir` does not exist.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let value = if rel.ends_with(".sig") {
                    "signature".to_string()
                } else if rel.ends_with(".yaml") {
                    // A chart repository index and Helm's repositories file say when they
                    // were written.
                    let text = std::fs::read_to_string(&p)
                        .unwrap()
                        .replace(&*base.to_string_lossy(), "OUT");
                    let kept: Vec<&str> = text
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("generated:"))
                        .collect();
                    sha256_hex(kept.join("\n").as_bytes())
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    match String::from_utf8(bytes) {
                        Ok(text) => {
                            sha256_hex(text.replace(&*base.to_string_lossy(), "OUT").as_bytes())
                        }
                        Err(e) => sha256_hex(e.as_bytes()),
                    }
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

/// How a full disk shows.
enum Full {
    /// The tmpfs is 1 MiB, less than the command needs: it says so before writing.
    TooSmall,
    /// The tmpfs is 1 MiB with all but `.0` bytes taken by another file: the command's own
    /// estimate fits, its writes do not (ENOSPC).
    AlmostFull(u64),
}

/// Runs `command(out)` into a full tmpfs, checks the failure and what it left, frees space
/// and runs it again; the result must equal `command(reference)`'s on a roomy disk.
fn full_then_freed(what: &str, env: &Env, full: Full, command: impl Fn(&Path) -> Command) {
    let reference = env
        .path()
        .join(format!("reference-{}", what.replace(' ', "-")));
    ok(&mut command(&reference));
    let want = tree(&reference);

    let fs = Tmpfs::mount("1m");
    let out_dir = fs.path().join("out");
    let mut cmd = command(&out_dir);
    let filler = fs.path().join("filler");
    if let Full::AlmostFull(leave) = full {
        let free = free_bytes(fs.path());
        std::fs::write(&filler, vec![0u8; (free - leave) as usize]).unwrap();
    }
    let out = run_unchecked(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: on a full disk:\n{stderr}"
    );
    let fs_path = fs.path().to_string_lossy();
    let said = match full {
        // The space needed and the space free, before anything was written.
        Full::TooSmall => stderr.contains("not enough space for") && stderr.contains(" needs "),
        // The system's word, with how much is free there.
        Full::AlmostFull(_) => stderr.contains("No space left on device"),
    };
    assert!(
        said && stderr.contains(&format!("free on the file system of {fs_path}"))
            && stderr.contains(&*fs_path),
        "{what}: the error does not say the device is full, with a path on it and the space free:\n{stderr}"
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

    let _ = std::fs::remove_file(&filler);
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
    let differ: Vec<(&String, Option<&String>, Option<&String>)> = got
        .keys()
        .chain(want.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| (k, got.get(k), want.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: the result differs from a run on a roomy disk (path, got, want): {differ:#?}"
    );
    eprintln!("{what}: failed clearly on a full disk, finished once space was freed:\n{stderr}");
}

/// Bytes free on the file system of `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a valid pointer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
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
    // A model-like tree beside the manifest: the 3 MB file and a small one.
    let model = env.path().join("models/small");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("weights.bin"), &big).unwrap();
    std::fs::write(model.join("config.json"), b"{}\n").unwrap();
    let http = StaticServer::start(&up);
    let url = http.url();
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  files:\n    - url: {url}/big\n      sha256: {}\n    - url: {url}/install.sh\n      sha256: {}\n      mode: \"0755\"\n  trees:\n    - path: models/small\n",
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

    full_then_freed("build", &env, Full::TooSmall, |out| {
        let mut c = env.ferry();
        c.arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(out)
            .arg("--key")
            .arg(&key);
        c
    });
    full_then_freed("unpack", &env, Full::TooSmall, |out| {
        let mut c = env.ferry();
        c.arg("unpack").args(&volumes).arg("-o").arg(out);
        c
    });
    full_then_freed("import files", &env, Full::TooSmall, |out| {
        let mut c = env.ferry();
        c.args(["import", "files"])
            .arg(&bundle)
            .arg("--key")
            .arg(&public)
            .arg("--to")
            .arg(out);
        c
    });
    // Refused up front: the trees' estimate (their files by size) is exact, so no write
    // starts that cannot finish.
    full_then_freed("import trees", &env, Full::TooSmall, |out| {
        let mut c = env.ferry();
        c.args(["import", "trees"])
            .arg(&bundle)
            .arg("--key")
            .arg(&public)
            .arg("--to")
            .arg(out);
        c
    });
}

#[test]
fn apt_and_site_imports_on_a_full_disk_fail_clearly_and_resume() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let env = Env::new();
    let k3s: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (_http, lines) = common::upstream::serve_release(&env, &k3s);
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n{lines}"
        ),
    );
    let (_, public) = env.keys();
    let bundle = env.build_signed(&manifest, "bundle");
    let keys = env.path().join("keys");
    ok(env
        .ferry()
        .args(["key", "generate", "--apt", "--output-dir"])
        .arg(&keys));
    let signing_key = keys.join("ferry-apt-secret.asc");

    // The packages are small: the mirror's own files (indexes, InRelease) meet the full disk.
    full_then_freed("import apt", &env, Full::AlmostFull(8 << 10), |out| {
        let mut c = env.ferry();
        c.args(["import", "apt"])
            .arg(&bundle)
            .arg("--key")
            .arg(&public)
            .arg("--to")
            .arg(out)
            .arg("--signing-key")
            .arg(&signing_key)
            .args(["--suite", "ferry", "--url", "http://mirror.plant-a.lan/apt"]);
        c
    });
    // The site's files (3 MB) do not fit in 1 MiB.
    full_then_freed("import --site", &env, Full::TooSmall, |out| {
        std::fs::create_dir_all(out).unwrap();
        let site = out.join("site.yaml");
        std::fs::write(
            &site,
            format!(
                "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n  apt:\n    dir: mirror/apt\n    signingKey: {}\n    suite: ferry\n    url: http://mirror.plant-a.lan/apt\n  charts:\n    dir: mirror/charts\n    baseUrl: http://mirror.plant-a.lan/charts\n  files:\n    dir: mirror/files\n    k3sAirgapDir: airgap\n",
                signing_key.display()
            ),
        )
        .unwrap();
        let mut c = env.ferry();
        c.arg("import")
            .arg(&bundle)
            .arg("--site")
            .arg(&site)
            .arg("--key")
            .arg(&public);
        c
    });
}

#[test]
fn import_git_on_a_too_small_disk_is_refused_before_writing() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    use common::git_server::{GitServer, Work};
    let env = Env::new();
    let server = GitServer::start();
    let upstream = server.create("platform");
    let work = Work::new(&upstream);
    // 4 MB of hex digits (about 2 MB packed): the bundle and its objects need more
    // than the 1 MiB tmpfs.
    let noise: String = (0..4_000_000u32)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761).rotate_left(i % 13);
            char::from_digit(x >> 28, 16).unwrap()
        })
        .collect();
    std::fs::write(work.path().join("blob.txt"), &noise).unwrap();
    work.git(&["add", "-A"]);
    work.git(&["commit", "-q", "-m", "noise"]);
    work.push_all();
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  git:\n    - url: {}\n",
            server.url("platform")
        ),
    );
    let (_, public) = env.keys();
    let bundle = env.build_signed(&manifest, "bundle");
    full_then_freed("import git", &env, Full::TooSmall, |out| {
        let mut c = env.ferry();
        c.args(["import", "git"])
            .arg(&bundle)
            .arg("--key")
            .arg(&public)
            .arg("--to")
            .arg(out);
        c
    });
}
