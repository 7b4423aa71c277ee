//! End-to-end: directory trees (model stores) — a tree with nested directories, an empty
//! file, an executable, an empty directory, a link inside it and a 300 MiB file; lock, build,
//! pack over volumes smaller than the big file, `import trees` straight from the volumes
//! with an owner: every file hashes as upstream with its mode and owner. A killed import
//! resumes; a second import changes nothing; a changed tree replaces the old one whole; a
//! tree with a link out of it is refused at lock, naming the link.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, json, ok};
use common::*;

const BIG: u64 = 300 << 20;

/// Writes `len` bytes that do not compress and differ per MiB, quickly (a 1 MiB noise block
/// with the block number in front).
fn write_big(path: &Path, len: u64) {
    use std::io::Write;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let block: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    let mut n: u64 = 0;
    while left > 0 {
        let mut b = block.clone();
        b[..8].copy_from_slice(&n.to_le_bytes());
        let take = left.min(b.len() as u64) as usize;
        out.write_all(&b[..take]).unwrap();
        left -= take as u64;
        n += 1;
    }
}

/// The model store: what `download-to-cache` leaves, more or less.
fn make_tree(root: &Path) {
    let mkdir = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    mkdir("ngc/hub/models--nim--llama/blobs");
    mkdir("ngc/hub/models--nim--llama/snapshots/v1");
    mkdir("empty-dir");
    mkdir("tools");
    std::fs::write(
        root.join("ngc/hub/models--nim--llama/blobs/config"),
        b"{\"layers\": 32}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("ngc/hub/models--nim--llama/.gitattributes"),
        b"*.bin lfs\n",
    )
    .unwrap();
    std::fs::write(root.join("empty.txt"), b"").unwrap();
    std::fs::write(root.join("tools/run.sh"), b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(
        root.join("tools/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("ngc/hub/models--nim--llama/blobs/config"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    write_big(&root.join("ngc/hub/models--nim--llama/blobs/weights"), BIG);
    std::os::unix::fs::symlink(
        "../../blobs/weights",
        root.join("ngc/hub/models--nim--llama/snapshots/v1/model.safetensors"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/config",
        root.join("ngc/hub/models--nim--llama/snapshots/v1/config.json"),
    )
    .unwrap();
}

/// Every path below `root` (sorted): kind, mode, size and sha256 of files, target of links.
fn describe(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.is_symlink() {
                out.push(format!(
                    "link {rel} -> {}",
                    std::fs::read_link(&path).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("dir {rel} {:o}", m.mode() & 0o777));
                walk(root, &path, out);
            } else {
                out.push(format!(
                    "file {rel} {:o} {} {}",
                    m.mode() & 0o777,
                    m.len(),
                    sha256_file(&path)
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn owners(root: &Path) -> Vec<(u32, u32)> {
    let mut out = vec![];
    fn walk(dir: &Path, out: &mut Vec<(u32, u32)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            out.push((m.uid(), m.gid()));
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let m = std::fs::symlink_metadata(root).unwrap();
    out.push((m.uid(), m.gid()));
    walk(root, &mut out);
    out
}

fn manifest(env: &Env, tree: &str) -> PathBuf {
    env.manifest(
        "m.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  trees:\n    - path: {tree}\n      name: llama-8b\n"
        ),
    )
}

fn import(env: &Env, source: &Path, to: &Path, extra: &[&str]) -> std::process::Command {
    let (_, public) = env.keys();
    let mut cmd = env.ferry();
    cmd.args(["--output", "json", "import", "trees"])
        .arg(source)
        .arg("--to")
        .arg(to)
        .arg("--key")
        .arg(&public)
        .args(extra);
    cmd
}

#[test]
fn model_store_travels_over_volumes_with_owner_and_modes() {
    let env = Env::new();
    let upstream = env.path().join("models/llama");
    make_tree(&upstream);
    let m = manifest(&env, "models/llama");
    let bundle = env.build_signed(&m, "bundle");

    // Packed into volumes smaller than the big file: it is split.
    let usb = env.path().join("usb");
    let packed = json(
        env.ferry()
            .args(["--output", "json", "pack"])
            .arg(&bundle)
            .arg("-o")
            .arg(usb.join("release"))
            .args(["--volume-size", "128M"]),
    );
    assert!(packed["chunked_blobs"].as_u64().unwrap() >= 1, "{packed}");
    assert!(packed["volumes"].as_array().unwrap().len() >= 3, "{packed}");

    // A first import killed before its third rename leaves a partial tree, no tree.
    let site = env.path().join("site/models");
    let root = unsafe { libc::geteuid() } == 0;
    let owner: &[&str] = if root { &["--owner", "1000:2000"] } else { &[] };
    let killed = import(&env, &usb, &site, owner)
        .env("FERRY_FAULT_BEFORE_RENAME", "3")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    assert!(!site.join("llama-8b").exists());
    assert!(site.join(".ferry-partial-llama-8b").is_dir());

    let report = json(&mut import(&env, &usb, &site, owner));
    let t = &report["trees"][0];
    assert_eq!(t["outcome"], "written", "{report}");
    assert!(t["resumed"].as_u64().unwrap() >= 1, "{report}");
    assert!(!site.join(".ferry-partial-llama-8b").exists());
    let imported = site.join("llama-8b");
    assert_eq!(describe(&imported), describe(&upstream));
    if root {
        assert!(
            owners(&imported).iter().all(|o| *o == (1000, 2000)),
            "{:?}",
            owners(&imported)
        );
    } else {
        eprintln!("owner not checked: --owner needs root");
    }
    // A second import finds it in place.
    let again = json(&mut import(&env, &usb, &site, owner));
    assert_eq!(again["trees"][0]["outcome"], "unchanged", "{again}");
    assert_eq!(again["trees"][0]["written"], 0);

    // A changed tree (a file edited, one removed) replaces the old one whole.
    std::fs::write(upstream.join("tools/run.sh"), b"#!/bin/sh\necho v2\n").unwrap();
    std::fs::remove_file(upstream.join("empty.txt")).unwrap();
    ok(env.ferry().arg("lock").arg(&m));
    let b2 = env.build_signed(&m, "bundle2");
    let replaced = json(&mut import(&env, &b2, &site, owner));
    assert_eq!(replaced["trees"][0]["outcome"], "replaced", "{replaced}");
    assert_eq!(describe(&imported), describe(&upstream));
    assert!(
        !std::fs::read_dir(&site).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.'))
    );

    // A tree that changed after its lock is refused at build, naming the file.
    std::fs::write(upstream.join("tools/run.sh"), b"#!/bin/sh\necho v3\n").unwrap();
    let (key, _) = env.keys();
    let e = fails(
        env.ferry()
            .arg("build")
            .arg(&m)
            .arg("-o")
            .arg(env.path().join("bundle3"))
            .arg("--locked")
            .arg("--key")
            .arg(&key),
    );
    assert!(e.contains("run.sh") && e.contains("ferry lock"), "{e}");
}

#[test]
fn hostile_trees_are_refused_at_lock() {
    let env = Env::new();
    let tree = env.path().join("models/evil");
    std::fs::create_dir_all(tree.join("snapshots")).unwrap();
    std::fs::write(tree.join("ok.txt"), b"ok").unwrap();
    std::os::unix::fs::symlink("../../../etc/passwd", tree.join("snapshots/model")).unwrap();
    let m = manifest(&env, "models/evil");
    let e = fails(env.ferry().arg("lock").arg(&m));
    assert!(
        e.contains("snapshots/model") && e.contains("outside the tree"),
        "{e}"
    );

    std::fs::remove_file(tree.join("snapshots/model")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("snapshots/model")).unwrap();
    let e = fails(env.ferry().arg("lock").arg(&m));
    assert!(e.contains("snapshots/model"), "{e}");

    // A link inside is fine.
    std::fs::remove_file(tree.join("snapshots/model")).unwrap();
    std::os::unix::fs::symlink("../ok.txt", tree.join("snapshots/model")).unwrap();
    ok(env.ferry().arg("lock").arg(&m));

    let m = env.manifest(
        "missing.yaml",
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: t, version: \"1\"}\nspec:\n  trees:\n    - path: models/none\n",
    );
    let e = fails(env.ferry().arg("lock").arg(&m));
    assert!(
        e.contains("models/none") && e.contains("missing.yaml:6"),
        "{e}"
    );
}

#[test]
fn delta_leaves_unchanged_files_to_the_tree_on_site() {
    let env = Env::new();
    let upstream = env.path().join("models/small");
    std::fs::create_dir_all(upstream.join("blobs")).unwrap();
    write_big(&upstream.join("blobs/weights"), 3 << 20);
    std::fs::write(upstream.join("config.json"), b"{\"v\": 1}").unwrap();
    let m = manifest(&env, "models/small");
    let base = env.build_signed(&m, "base");

    std::fs::write(upstream.join("config.json"), b"{\"v\": 2}").unwrap();
    ok(env.ferry().arg("lock").arg(&m));
    let (key, _) = env.keys();
    let delta = env.path().join("delta");
    let built = json(
        env.ferry()
            .args(["--output", "json", "build"])
            .arg(&m)
            .arg("-o")
            .arg(&delta)
            .arg("--key")
            .arg(&key)
            .arg("--since")
            .arg(&base),
    );
    // The weights are left to the base: the delta is small.
    assert!(built["omitted_blobs"].as_u64().unwrap() >= 1, "{built}");
    let size: u64 = std::fs::read_dir(delta.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size < 1 << 20, "delta holds {size} bytes");

    // Without the base on site: refused, nothing written.
    let empty = env.path().join("empty");
    let e = fails(&mut import(&env, &delta, &empty, &[]));
    assert!(e.contains("blobs/weights") && e.contains("base"), "{e}");
    assert!(!empty.join("llama-8b").exists());

    // On top of the base: the new tree, whole.
    let site = env.path().join("site");
    json(&mut import(&env, &base, &site, &[]));
    let r = json(&mut import(&env, &delta, &site, &[]));
    assert_eq!(r["trees"][0]["outcome"], "replaced", "{r}");
    assert_eq!(describe(&site.join("llama-8b")), describe(&upstream));
}
