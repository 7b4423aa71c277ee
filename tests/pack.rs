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

/// The process's umask, from /proc (reading it with umask(2) would change it for a moment).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

/// `openssl dgst -sha256 -verify cosign.pub -signature <(base64 -d SHA256SUMS.sig) SHA256SUMS`
/// in `dir`, as README's "First day on site" says.
fn openssl_verify(dir: &Path, public: &Path) -> std::process::Output {
    run_unchecked(
        Command::new("bash")
            .arg("-c")
            .arg("openssl dgst -sha256 -verify \"$0\" -signature <(base64 -d SHA256SUMS.sig) SHA256SUMS")
            .arg(public)
            .current_dir(dir),
    )
}

/// `sha256sum -c SHA256SUMS` in `dir`.
fn sha256sum_check(dir: &Path) -> std::process::Output {
    run_unchecked(
        Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(dir),
    )
}

/// Flips the last byte of `path`.
fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn the_stick_carries_ferry_and_a_signed_sha256sums() {
    let p = built();
    let (private, public) = p.env.keys();
    let usb = p.env.path().join("usb");
    let report = json(
        p.env
            .ferry()
            .args(["--output", "json", "pack"])
            .arg(&p.bundle)
            .arg("-o")
            .arg(usb.join("release"))
            .args(["--volume-size", "3M", "--key"])
            .arg(&private),
    );
    // The running ferry, executable (0755 less the umask), beside the volumes.
    let binary = usb.join("ferry");
    assert_eq!(report["ferry_binary"]["path"], binary.to_str().unwrap());
    assert_eq!(
        sha256_file(&binary),
        sha256_file(env!("CARGO_BIN_EXE_ferry"))
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755 & !umask(), "{mode:o}");
    assert_eq!(
        report["checksums_signature"],
        usb.join("SHA256SUMS.sig").to_str().unwrap()
    );
    assert!(report["signed_by"].as_str().unwrap().starts_with("sha256:"));
    // SHA256SUMS: every volume and the binary.
    let sums = std::fs::read_to_string(usb.join("SHA256SUMS")).unwrap();
    let volumes = volumes_in(&usb, "release.");
    assert!(volumes.len() >= 3, "{volumes:?}");
    for v in &volumes {
        let name = v.file_name().unwrap().to_str().unwrap();
        assert!(
            sums.contains(&format!("{}  {name}\n", sha256_file(v))),
            "{sums}"
        );
    }
    assert!(
        sums.contains(&format!("{}  ferry\n", sha256_file(&binary))),
        "{sums}"
    );

    // On site: openssl checks the signature, sha256sum the files, then the stick's ferry runs.
    let out = openssl_verify(&usb, &public);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    let out = sha256sum_check(&usb);
    assert!(out.status.success(), "{out:?}");
    let version = run(Command::new(&binary).arg("--version")).stdout;
    assert_eq!(
        version,
        run(p.env.ferry().arg("--version")).stdout,
        "the stick's ferry is this ferry"
    );
    // The files beside the volumes are not taken for volumes.
    ok(Command::new(&binary)
        .env("NO_COLOR", "1")
        .arg("verify")
        .arg(&usb)
        .arg("--key")
        .arg(&public));

    // One byte of SHA256SUMS changed: the signature no longer verifies.
    let sums_path = usb.join("SHA256SUMS");
    let original = std::fs::read(&sums_path).unwrap();
    flip_last_byte(&sums_path);
    let out = openssl_verify(&usb, &public);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verification failure"),
        "{out:?}"
    );
    std::fs::write(&sums_path, &original).unwrap();
    assert!(openssl_verify(&usb, &public).status.success());

    // One byte of the binary changed: the signature still holds, sha256sum -c names the binary.
    let binary_bytes = std::fs::read(&binary).unwrap();
    flip_last_byte(&binary);
    assert!(openssl_verify(&usb, &public).status.success());
    let out = sha256sum_check(&usb);
    assert!(!out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ferry: FAILED"), "{text}");
    assert!(text.contains("release.001.tar: OK"), "{text}");
    std::fs::write(&binary, &binary_bytes).unwrap();

    // Another key: the signature does not verify with it.
    let other = Env::new();
    let (_, other_public) = other.keys();
    assert!(!openssl_verify(&usb, &other_public).status.success());

    // A wrong password fails before anything is written.
    let before = std::fs::read_dir(&usb).unwrap().count();
    let err = fails(
        p.env
            .ferry()
            .env("FERRY_KEY_PASSWORD", "wrong")
            .arg("pack")
            .arg(&p.bundle)
            .arg("-o")
            .arg(usb.join("again"))
            .arg("--key")
            .arg(&private),
    );
    assert!(err.contains("cosign.key"), "{err}");
    assert_eq!(std::fs::read_dir(&usb).unwrap().count(), before);

    // Without a key: SHA256SUMS is unsigned, pack says so, and the signature of the earlier
    // SHA256SUMS is removed rather than left stale. --ferry-binary carries another binary.
    let other_binary = p.env.path().join("ferry-arm64");
    std::fs::write(&other_binary, b"\x7fELF another build\n").unwrap();
    let out = run(p
        .env
        .ferry()
        .arg("pack")
        .arg(&p.bundle)
        .arg("-o")
        .arg(usb.join("release"))
        .args(["--volume-size", "3M", "--ferry-binary"])
        .arg(&other_binary));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SHA256SUMS is not signed") && stderr.contains("--key cosign.key"),
        "{stderr}"
    );
    assert!(!usb.join("SHA256SUMS.sig").exists());
    assert_eq!(std::fs::read(&binary).unwrap(), b"\x7fELF another build\n");
    assert!(sha256sum_check(&usb).status.success());
    let err = fails(
        p.env
            .ferry()
            .arg("pack")
            .arg(&p.bundle)
            .arg("-o")
            .arg(usb.join("release"))
            .arg("--ferry-binary")
            .arg(p.env.path().join("no-such-ferry")),
    );
    assert!(
        err.contains("no-such-ferry") && err.contains("--ferry-binary"),
        "{err}"
    );
}
