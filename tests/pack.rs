//! End-to-end: pack a bundle into tar volumes (one, several with chunks, zstd), check them
//! with GNU tar and sha256sum, unpack them in any order, and refuse damaged or hostile input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::ferry::{Env, fails, json, ok};
use common::fixture::SeededBundle;
use common::*;

fn built() -> SeededBundle {
    SeededBundle::build(|addr, _| {
        vec![
            format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
            format!("{addr}/app/web:1"),
            format!("{addr}/app/worker:1"),
            format!("{addr}/app/big:1"),
        ]
    })
}

/// Every file of a bundle (relative path, sha256), temporary files excluded.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["oci-layout", "index.json", "index.json.sig"] {
        out.push((name.to_string(), sha256_file(dir.join(name))));
    }
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        out.push((
            format!("blobs/sha256/{}", entry.file_name().to_string_lossy()),
            sha256_file(entry.path()),
        ));
    }
    out.sort();
    out
}

/// `ferry --output json unpack VOLUMES... -o OUT`.
fn unpack(env: &Env, volumes: &[impl AsRef<std::ffi::OsStr>], out: &Path) -> Command {
    let mut cmd = env.ferry();
    cmd.args(["--output", "json", "unpack"])
        .args(volumes)
        .arg("-o")
        .arg(out);
    cmd
}

/// `ferry pack BUNDLE --volume-size 3M` into `usb/NAME.NNN.tar`: the volumes.
fn pack_3m(p: &SeededBundle, bundle: &Path, name: &str) -> Vec<PathBuf> {
    let out = p.env.path().join("usb");
    ok(p.env
        .ferry()
        .arg("pack")
        .arg(bundle)
        .arg("-o")
        .arg(out.join(name))
        .args(["--volume-size", "3M"]));
    volumes_in(&out, &format!("{name}."))
}

/// `restored` holds exactly the files of the bundle, and `ferry verify` accepts it.
fn assert_restored(p: &SeededBundle, restored: &Path) {
    assert_eq!(listing(restored), listing(&p.bundle));
    ok(p.env
        .ferry()
        .arg("verify")
        .arg(restored)
        .arg("--key")
        .arg(&p.public));
}

fn volumes_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && (n.ends_with(".tar") || n.ends_with(".tar.zst"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn single_volume_is_the_layout_and_gnu_tar_restores_it() {
    let p = built();
    let out = p.env.path().join("usb");
    let report = json(
        p.env
            .ferry()
            .args(["--output", "json", "pack"])
            .arg(&p.bundle)
            .arg("-o")
            .arg(out.join("release")),
    );
    assert_eq!(report["volumes"].as_array().unwrap().len(), 1);
    let tar = out.join("release.tar");
    // Deterministic: the same bundle packs to the same bytes.
    let first = sha256_file(&tar);
    ok(p.env
        .ferry()
        .arg("pack")
        .arg(&p.bundle)
        .arg("-o")
        .arg(out.join("again")));
    assert_eq!(sha256_file(out.join("again.tar")), first);
    // Table of contents first.
    let names = String::from_utf8(run(Command::new("tar").arg("-tf").arg(&tar)).stdout).unwrap();
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(&names[..3], &["oci-layout", "index.json", "index.json.sig"]);
    let big = p.seeded.big_layer();
    assert_eq!(
        names.last().unwrap(),
        &format!("blobs/sha256/{}", big.hex())
    );
    // GNU tar gives back the same layout, and it verifies.
    let restored = p.env.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&restored));
    assert_restored(&p, &restored);
    run_with(
        Command::new("sha256sum")
            .arg("-c")
            .arg("SHA256SUMS")
            .current_dir(&out),
        None,
        std::time::Duration::from_secs(30),
    );
}

#[test]
fn volumes_with_chunks_unpack_in_any_order() {
    let p = built();
    let out = p.env.path().join("usb");
    for zstd in [false, true] {
        let name = if zstd { "z" } else { "plain" };
        let mut cmd = p.env.ferry();
        cmd.args(["--output", "json", "pack"])
            .arg(&p.bundle)
            .arg("-o")
            .arg(out.join(name))
            .args(["--volume-size", "3M"]);
        if zstd {
            cmd.arg("--zstd");
        }
        let report = json(&mut cmd);
        assert!(report["chunked_blobs"].as_u64().unwrap() >= 1, "{report}");
        let volumes = volumes_in(&out, &format!("{name}."));
        assert!(volumes.len() >= 3, "{volumes:?}");
        for v in &volumes {
            assert!(std::fs::metadata(v).unwrap().len() <= 3 << 20);
            if !zstd {
                // Each volume is a standalone tar.
                run(Command::new("tar").arg("-tf").arg(v));
            }
        }
        run_with(
            Command::new("sha256sum")
                .arg("-c")
                .arg("SHA256SUMS")
                .current_dir(&out),
            None,
            std::time::Duration::from_secs(30),
        );
        let mut reversed = volumes.clone();
        reversed.reverse();
        let restored = p.env.path().join(format!("restored-{name}"));
        let unpacked = json(&mut unpack(&p.env, &reversed, &restored));
        assert!(unpacked["joined_blobs"].as_u64().unwrap() >= 1);
        assert_restored(&p, &restored);
    }
}

#[test]
fn damaged_foreign_and_missing_volumes_are_refused() {
    let p = built();
    let out = p.env.path().join("usb");
    let volumes = pack_3m(&p, &p.bundle, "r");
    let target = p.env.path().join("target");

    // A missing volume is named.
    let without_2: Vec<&PathBuf> = volumes
        .iter()
        .filter(|v| !v.ends_with("r.002.tar"))
        .collect();
    let err = fails(&mut unpack(&p.env, &without_2, &target));
    assert!(
        err.contains("volumes missing: 2 (r.002.tar; not among the volumes given"),
        "{err}"
    );
    // Nothing is written before every volume given is checked.
    assert!(!target.exists());

    // The same volume twice.
    let twice = [&volumes[..], &volumes[..1]].concat();
    let err = fails(&mut unpack(&p.env, &twice, &target));
    assert!(err.contains("are both volume 1"), "{err}");
    assert!(!target.exists());

    // A volume of another bundle.
    let other_bundle = p.env.path().join("other");
    ok(p.env
        .ferry()
        .arg("sign")
        .arg(&p.bundle)
        .arg("--key")
        .arg(p.env.path().join("keys/cosign.key")));
    p.copy_as_other_release(&other_bundle);
    pack_3m(&p, &other_bundle, "o");
    let mut mixed: Vec<PathBuf> = volumes.clone();
    mixed[1] = out.join("o.002.tar");
    let err = fails(&mut unpack(&p.env, &mixed, &p.env.path().join("t2")));
    assert!(err.contains("another bundle"), "{err}");

    // A truncated volume.
    let cut = p.env.path().join("cut.tar");
    let bytes = std::fs::read(&volumes[1]).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut truncated = volumes.clone();
    truncated[1] = cut;
    let err = fails(&mut unpack(&p.env, &truncated, &p.env.path().join("t3")));
    assert!(
        err.contains("damaged") || err.contains("does not match"),
        "{err}"
    );

    // A chunk with the wrong digest: flip a byte inside chunk data.
    let big = p.seeded.big_layer();
    let (volume, offset) = volumes
        .iter()
        .find_map(|v| chunk_offset(v, &big.hex()[..16]).map(|o| (v.clone(), o)))
        .expect("a chunk of the big layer");
    let bad = p.env.path().join("bad.tar");
    let swapped = with_flipped_byte(&volumes, &volume, offset + 100, &bad);
    let err = fails(&mut unpack(&p.env, &swapped, &p.env.path().join("t4")));
    assert!(
        err.contains("does not match") && err.contains("chunk"),
        "{err}"
    );
    // It names the corrupt chunk's volume file and entry.
    assert!(
        err.contains(&format!("{}, volume", bad.display())) && err.contains("chunks/"),
        "{err}"
    );
    assert!(!p.env.path().join("t4/index.json").exists());
}

/// The volumes with `volume` replaced by a copy at `bad` that has the byte at `offset` flipped.
fn with_flipped_byte(volumes: &[PathBuf], volume: &Path, offset: u64, bad: &Path) -> Vec<PathBuf> {
    let mut bytes = std::fs::read(volume).unwrap();
    bytes[offset as usize] ^= 0xff;
    std::fs::write(bad, bytes).unwrap();
    volumes
        .iter()
        .map(|v| {
            if v == volume {
                bad.to_path_buf()
            } else {
                v.clone()
            }
        })
        .collect()
}

/// Offset of the data of the first chunk entry whose name contains `needle`.
fn chunk_offset(volume: &Path, needle: &str) -> Option<u64> {
    let mut archive = tar::Archive::new(std::fs::File::open(volume).unwrap());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.starts_with("chunks/") && path.contains(needle) {
            return Some(entry.raw_file_position());
        }
    }
    None
}

/// A tar with one entry whose header is written raw, so hostile names get through (a blob
/// comes after a table of contents, so that the blob itself is what is refused).
fn hostile_tar(path: &Path, name: &str, kind: tar::EntryType, body: &[u8]) {
    let mut header = tar::Header::new_ustar();
    {
        let raw = header.as_old_mut();
        raw.name = [0; 100];
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    header.set_size(body.len() as u64);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    if kind.is_symlink() || kind.is_hard_link() {
        header.set_link_name("/etc/passwd").unwrap();
    }
    header.set_cksum();
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    if name.starts_with("blobs/sha256/0") {
        append(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        append(&mut builder, "index.json", b"{}");
    }
    builder.append(&header, body).unwrap();
    if name == "index.json" {
        // A duplicate name.
        builder.append(&header, body).unwrap();
    }
    builder.finish().unwrap();
}

fn append(builder: &mut tar::Builder<std::fs::File>, name: &str, body: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, body).unwrap();
}

#[test]
fn hostile_entries_are_refused_and_nothing_is_written_outside() {
    let env = Env::new();
    let cases = [
        ("../evil", tar::EntryType::Regular, "`..`"),
        ("/tmp/ferry-evil-abs", tar::EntryType::Regular, "absolute"),
        ("blobs/sha256/link", tar::EntryType::Symlink, "links"),
        ("blobs/sha256/hard", tar::EntryType::Link, "links"),
        (
            "blobs/sha256/dev",
            tar::EntryType::Char,
            "only regular files",
        ),
        ("index.json", tar::EntryType::Regular, "twice"),
        (
            "etc/passwd",
            tar::EntryType::Regular,
            "not a file ferry writes",
        ),
        (
            "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000",
            tar::EntryType::Regular,
            "does not match",
        ),
        (
            "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            tar::EntryType::Regular,
            "no index.json",
        ),
    ];
    for (i, (name, kind, expected)) in cases.iter().enumerate() {
        let tar = env.path().join(format!("hostile-{i}.tar"));
        hostile_tar(&tar, name, *kind, b"{}");
        let out = env.path().join(format!("out-{i}"));
        let err = fails(&mut unpack(&env, &[&tar], &out));
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!env.path().join("evil").exists());
        assert!(!Path::new("/tmp/ferry-evil-abs").exists());
        assert!(!out.join("etc").exists() && !out.join("index.json").exists());
    }
}

/// A volume made by hand: the table of contents and one blob.
fn hand_made_tar(path: &Path) -> String {
    let blob = b"hello, air gap";
    let digest = digest_bytes(blob);
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    append(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    append(&mut builder, "index.json", b"{}");
    append(
        &mut builder,
        &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
        blob,
    );
    builder.finish().unwrap();
    digest
}

#[test]
fn a_volume_compressed_as_one_stream_is_refused_with_what_to_do() {
    let env = Env::new();
    let tar = env.path().join("hand.tar");
    let digest = hand_made_tar(&tar);
    // `zstd` over the whole tar, not one frame per entry as `ferry pack --zstd` writes.
    run(Command::new("zstd").arg("-q").arg(&tar));
    let out = env.path().join("out");
    let err = fails(&mut unpack(&env, &[env.path().join("hand.tar.zst")], &out));
    assert!(
        err.contains("one zstd stream") && err.contains("zstd -d"),
        "{err}"
    );
    assert!(!out.exists());
    // The plain tar unpacks.
    let report = json(&mut unpack(&env, &[&tar], &out));
    assert_eq!(report["blobs"], 1, "{report}");
    assert_eq!(
        sha256_file(
            out.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        ),
        digest.trim_start_matches("sha256:")
    );
    assert!(out.join("index.json").is_file() && !out.join(".ferry-tmp").exists());
}

/// The plan in volume 1.
fn plan_of(volume: &Path) -> serde_json::Value {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(volume).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "ferry-volumes.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return serde_json::from_str(&text).unwrap();
        }
    }
    panic!("no plan in {}", volume.display());
}

/// Inode of every blob file of a directory, by name.
fn inodes(dir: &Path) -> std::collections::BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().ino(),
            )
        })
        .collect()
}

#[test]
fn a_blob_across_three_volumes_unpacks_and_a_rerun_resumes() {
    let p = built();
    let volumes = pack_3m(&p, &p.bundle, "r");
    let big = p.seeded.big_layer();
    let plan = plan_of(&volumes[0]);
    let parts = plan["blobs"][&big.digest].as_array().unwrap();
    let spanned: std::collections::BTreeSet<u64> = parts
        .iter()
        .map(|p| p["volume"].as_u64().unwrap())
        .collect();
    assert!(spanned.len() >= 3, "{parts:?}");

    // A run that fails on a flipped byte in the big layer's last chunk: the blobs before it
    // are written, no index.
    let last = parts.last().unwrap();
    let volume = &volumes[last["volume"].as_u64().unwrap() as usize - 1];
    let entry = last["path"].as_str().unwrap();
    let offset = chunk_offset(volume, entry.trim_start_matches("chunks/")).unwrap();
    let bad_dir = p.env.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join(volume.file_name().unwrap());
    let swapped = with_flipped_byte(&volumes, volume, offset + 10, &bad);
    let restored = p.env.path().join("restored");
    let err = fails(&mut unpack(&p.env, &swapped, &restored));
    assert!(err.contains(entry) && err.contains("corrupt"), "{err}");
    assert!(!restored.join("index.json").exists());
    assert!(!restored.join("blobs/sha256").join(big.hex()).exists());
    let before = inodes(&restored);
    assert!(!before.is_empty());

    // What a kill half-way through the big layer leaves: a partial file of it.
    std::fs::create_dir_all(restored.join(".ferry-tmp")).unwrap();
    std::fs::write(
        restored
            .join(".ferry-tmp")
            .join(format!("{}.partial", big.hex())),
        vec![0xab; 100_000],
    )
    .unwrap();

    // The re-run, volumes in another order: what was written stays, the rest is added.
    let mut shuffled = volumes.clone();
    shuffled.rotate_left(2);
    let report = json(&mut unpack(&p.env, &shuffled, &restored));
    assert!(report["joined_blobs"].as_u64().unwrap() >= 1, "{report}");
    let after = inodes(&restored);
    for (name, inode) in &before {
        assert_eq!(after.get(name), Some(inode), "{name} was written again");
    }
    assert!(!restored.join(".ferry-tmp").exists());
    let blob_bytes: u64 = std::fs::read_dir(p.bundle.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(report["bytes"].as_u64().unwrap(), blob_bytes, "{report}");
    assert_eq!(report["blobs"].as_u64().unwrap() as usize, after.len());
    assert_restored(&p, &restored);
}
