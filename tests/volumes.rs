//! End-to-end: verify, inspect, import and serve a bundle straight from its packed volumes,
//! without unpacking; missing, foreign and damaged volumes are refused with clear errors.

mod common;

use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, json, ok};
use common::fixture::SeededBundle;
use common::*;

/// A signed bundle of several images and its volumes.
struct Packed {
    built: SeededBundle,
    usb: PathBuf,
    volumes: Vec<PathBuf>,
}

impl Packed {
    /// `ferry verify SOURCE --key cosign.pub`.
    fn verify(&self, source: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = self.env.ferry();
        cmd.arg("verify").arg(source).arg("--key").arg(&self.public);
        cmd
    }

    /// `ferry --output json verify SOURCE --key cosign.pub`.
    fn verify_json(&self, source: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = self.env.ferry();
        cmd.args(["--output", "json", "verify"])
            .arg(source)
            .arg("--key")
            .arg(&self.public);
        cmd
    }
}

impl std::ops::Deref for Packed {
    type Target = SeededBundle;
    fn deref(&self) -> &SeededBundle {
        &self.built
    }
}

/// A signed bundle of several images, packed into 3 MiB volumes (the big image's layer is
/// chunked across volumes).
fn packed() -> Packed {
    packed_with(&[])
}

fn packed_with(pack_flags: &[&str]) -> Packed {
    let built = SeededBundle::build(|addr, _| {
        vec![
            format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
            format!("{addr}/app/web:1"),
            format!("{addr}/app/worker:1"),
            format!("{addr}/app/big:1"),
        ]
    });
    let usb = built.env.path().join("usb");
    let report = json(
        built
            .env
            .ferry()
            .args(["--output", "json", "pack"])
            .arg(&built.bundle)
            .arg("-o")
            .arg(usb.join("release"))
            .args(["--volume-size", "3M"])
            .args(pack_flags),
    );
    assert!(report["chunked_blobs"].as_u64().unwrap() >= 1, "{report}");
    let volumes: Vec<PathBuf> = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v["path"].as_str().unwrap()))
        .collect();
    assert!(volumes.len() >= 3, "{volumes:?}");
    Packed {
        built,
        usb,
        volumes,
    }
}

fn inspect_digest(target: &Registry, reference: &str) -> String {
    digest_bytes(&skopeo_inspect_raw(reference, target))
}

#[test]
fn verify_inspect_and_import_straight_from_volumes() {
    let p = packed();
    // verify from the mount point, and from the last volume (it finds volume 1 beside it).
    let report = json(&mut p.verify_json(&p.usb));
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    let direct = json(&mut p.verify_json(&p.bundle));
    assert_eq!(report["bytes"], direct["bytes"]);
    assert_eq!(report["blobs"], direct["blobs"]);
    let inspected = json(
        p.env
            .ferry()
            .args(["--output", "json", "inspect"])
            .arg(p.volumes.last().unwrap()),
    );
    // Four images and the release SBOM.
    assert_eq!(
        inspected["entries"].as_array().unwrap().len(),
        5,
        "{inspected}"
    );

    let target = Registry::start_plain();
    let imported = json(
        p.env
            .ferry()
            .args(["--output", "json", "import", "registry"])
            .arg(&p.volumes[0])
            .arg("--to")
            .arg(target.addr())
            .arg("--key")
            .arg(&p.public),
    );
    assert!(
        imported["uploaded_blobs"].as_u64().unwrap() > 0,
        "{imported}"
    );
    // Every entry lands with the digest the bundle names (alpine's filtered index included).
    let m = p.mapped();
    // (The release SBOM is not an image: it stays in the bundle.)
    for entry in inspected["entries"].as_array().unwrap() {
        if entry["kind"] != "image" {
            continue;
        }
        let reference = entry["reference"].as_str().unwrap();
        let path = format!("{m}/{}", reference.split_once('/').unwrap().1);
        assert_eq!(
            inspect_digest(&target, &path),
            entry["digest"].as_str().unwrap(),
            "{path}"
        );
    }
    assert_eq!(
        inspect_digest(&target, &format!("{m}/app/big:1")),
        p.seeded.big.top.digest
    );
}

#[test]
fn missing_volumes_are_named_and_waited_for() {
    let p = packed();
    let away = p.env.path().join("away");
    std::fs::create_dir_all(&away).unwrap();
    let last = p.volumes.last().unwrap();
    let moved = away.join(last.file_name().unwrap());
    std::fs::rename(last, &moved).unwrap();
    let err = fails(&mut p.verify(&p.volumes[0]));
    let name = last.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains("volumes missing") && err.contains(&name),
        "{err}"
    );
    // inspect needs volume 1 only.
    ok(p.env.ferry().arg("inspect").arg(&p.volumes[0]));

    // --volumes-dir points at another place; --wait waits until the volume appears there.
    let child = p
        .verify(&p.volumes[0])
        .arg("--wait")
        .arg("--volumes-dir")
        .arg(&p.usb)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    std::fs::rename(&moved, last).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is needed") && stderr.contains(&name),
        "{stderr}"
    );
}

/// Overwrites bytes of a file in place.
fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn damaged_volumes_are_refused() {
    let p = packed();
    // A flipped byte inside a large blob: verify names the blob, import pushes nothing of it.
    let last = p.volumes.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    poke(last, len / 2, b"\xff\xfe\xfd\xfc");
    let err = fails(&mut p.verify(&p.usb));
    assert!(err.contains("damaged") || err.contains("corrupt"), "{err}");
    // The import reads it once, finds the digest wrong before the upload's last byte, and
    // stops at once (bad media is not retried like a network error).
    let target = Registry::start_plain();
    let err = fails(
        p.env
            .ferry()
            .args(["import", "registry"])
            .arg(&p.usb)
            .arg("--to")
            .arg(target.addr())
            .arg("--key")
            .arg(&p.public),
    );
    assert!(
        err.contains("cannot read the blob from the bundle") && err.contains("corrupt"),
        "{err}"
    );
    assert!(!err.contains("gave up after"), "{err}");

    // A truncated volume.
    let second = &p.volumes[1];
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(second)
        .unwrap();
    f.set_len(std::fs::metadata(second).unwrap().len() / 2)
        .unwrap();
    let out = p.verify(&p.usb).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("truncated"), "{said}");
    let _ = &p.seeded;
}

#[test]
fn import_from_volumes_killed_half_way_resumes_and_containerd_pulls() {
    use common::faultproxy::{FaultProxy, Faults};
    use std::time::Duration;
    let p = packed();
    let target = Registry::start_plain();
    let slow = FaultProxy::start(
        &target.addr(),
        Faults {
            delay: Some(Duration::from_millis(150)),
            ..Default::default()
        },
    );
    let import = |to: &str| {
        let mut cmd = p.env.ferry();
        cmd.args(["--output", "json", "import", "registry"])
            .arg(&p.usb)
            .arg("--to")
            .arg(to)
            .arg("--key")
            .arg(&p.public);
        cmd
    };
    let done_before = slow.kill_after_uploads(
        import(slow.addr()).args(["--jobs", "1"]),
        3,
        Duration::from_secs(60),
    );
    assert!(
        done_before >= 3,
        "the killed import uploaded {done_before} blobs"
    );

    let resumed = json(&mut import(&target.addr()));
    assert!(
        resumed["skipped_blobs"].as_u64().unwrap() > 0,
        "nothing was kept from the killed run: {resumed}"
    );
    let again = json(&mut import(&target.addr()));
    assert_eq!(again["uploaded_blobs"], 0, "{again}");

    // containerd, as K3s runs it, pulls and unpacks from the registry the volumes filled.
    let m = p.mapped();
    let containerd = Containerd::start();
    let reference = format!("{}/{m}/app/big:1", target.addr());
    run(containerd
        .ctr()
        .args([
            "images",
            "pull",
            "--plain-http",
            "--platform",
            "linux/amd64",
        ])
        .arg(&reference));
    let listing =
        String::from_utf8_lossy(&run(containerd.ctr().args(["images", "ls"])).stdout).into_owned();
    assert!(
        listing.contains(&reference) && listing.contains(&p.seeded.big.top.digest),
        "{listing}"
    );
    assert_eq!(
        inspect_digest(&target, &format!("{m}/app/big:1")),
        p.seeded.big.top.digest
    );
}

#[test]
fn foreign_volumes_wrong_keys_and_hostile_entries_are_refused_in_place() {
    let p = packed();
    // A table of contents signed by another key: refused before any blob is read.
    let other = Env::new();
    let (_, other_public) = other.keys();
    let err = fails(
        p.env
            .ferry()
            .args(["import", "registry"])
            .arg(&p.usb)
            .arg("--to")
            .arg("127.0.0.1:9")
            .arg("--key")
            .arg(&other_public),
    );
    assert!(err.contains("signature"), "{err}");

    // A volume of another bundle under the same name: the same bundle with another index.
    let other_bundle = p.env.path().join("other");
    p.copy_as_other_release(&other_bundle);
    let elsewhere = p.env.path().join("elsewhere");
    ok(p.env
        .ferry()
        .arg("pack")
        .arg(&other_bundle)
        .arg("-o")
        .arg(elsewhere.join("release"))
        .args(["--volume-size", "3M"]));
    let second = p.volumes[1].file_name().unwrap();
    std::fs::copy(elsewhere.join(second), &p.volumes[1]).unwrap();
    let err = fails(&mut p.verify(&p.volumes[0]));
    assert!(err.contains("another bundle"), "{err}");

    // Hostile entries in a single-volume pack given as SOURCE.
    for (i, name) in ["../evil", "/tmp/ferry-evil-abs", "etc/passwd"]
        .iter()
        .enumerate()
    {
        let tar = p.env.path().join(format!("hostile-{i}.tar"));
        let mut header = tar::Header::new_ustar();
        {
            let raw = header.as_old_mut();
            raw.name = [0; 100];
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        let mut builder = tar::Builder::new(std::fs::File::create(&tar).unwrap());
        builder.append(&header, &b"{}"[..]).unwrap();
        builder.finish().unwrap();
        let err = fails(p.env.ferry().arg("inspect").arg(&tar));
        assert!(err.contains("refusing entry"), "{name}: {err}");
    }
    assert!(!p.env.path().join("evil").exists());
}

#[test]
fn serve_straight_from_volumes() {
    let p = packed();
    let served =
        common::served::Served::start(&p.env, &p.usb, &["--key", p.public.to_str().unwrap()]);
    let s = &served.addr;
    let m = p.mapped();
    // skopeo copies the chunked image out of the served volumes, digest for digest.
    let out = p.env.path().join("copied");
    run(std::process::Command::new("skopeo")
        .args([
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-no-creds",
        ])
        .arg(format!("docker://{s}/{m}/app/big:1"))
        .arg(format!("oci:{}:big", out.display())));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"].as_str().unwrap(),
        p.seeded.big.top.digest
    );
    // containerd pulls and unpacks from it, as K3s would before Harbor runs.
    let containerd = Containerd::start();
    let reference = format!("{s}/{m}/app/web:1");
    run(containerd
        .ctr()
        .args([
            "images",
            "pull",
            "--plain-http",
            "--platform",
            "linux/amd64",
        ])
        .arg(&reference));
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn compressed_volumes_are_read_in_place() {
    let p = packed_with(&["--zstd"]);
    assert!(
        p.volumes
            .iter()
            .all(|v| v.to_string_lossy().ends_with(".tar.zst")),
        "{:?}",
        p.volumes
    );
    let report = json(&mut p.verify_json(&p.usb));
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    let target = Registry::start_plain();
    json(
        p.env
            .ferry()
            .args(["--output", "json", "import", "registry"])
            .arg(p.volumes.last().unwrap())
            .arg("--to")
            .arg(target.addr())
            .arg("--key")
            .arg(&p.public),
    );
    let m = p.mapped();
    assert_eq!(
        inspect_digest(&target, &format!("{m}/app/big:1")),
        p.seeded.big.top.digest
    );
    // A frame cut short is named.
    let last = p.volumes.last().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(std::fs::metadata(last).unwrap().len() - 100)
        .unwrap();
    let err = fails(&mut p.verify(&p.usb));
    assert!(err.contains("truncated"), "{err}");
}

/// Rewrites a plain tar volume with one more entry at its end.
fn with_extra_entry(volume: &Path, name: &str, body: &[u8]) {
    let original = std::fs::read(volume).unwrap();
    let mut builder = tar::Builder::new(std::fs::File::create(volume).unwrap());
    let mut archive = tar::Archive::new(&original[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        builder.append(&header, &mut entry).unwrap();
    }
    let mut header = tar::Header::new_ustar();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, name, body).unwrap();
    builder.finish().unwrap();
}

/// The first entry of a tar volume whose name starts with `prefix`, and its bytes.
fn first_entry(volume: &Path, prefix: &str) -> (String, Vec<u8>) {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(volume).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return (name, bytes);
        }
    }
    panic!("no {prefix} in {}", volume.display());
}

#[test]
fn entries_the_plan_does_not_put_in_a_volume_are_refused_by_every_reader() {
    let p = packed();
    let second = &p.volumes[1];
    let original = std::fs::read(second).unwrap();
    let index = std::fs::read(p.bundle.join("index.json")).unwrap();
    let (blob, blob_bytes) = first_entry(&p.volumes[0], "blobs/sha256/");
    let cases = [
        ("index.json", index, "a second copy in another volume"),
        (
            blob.as_str(),
            blob_bytes,
            "the plan does not put it in this volume",
        ),
    ];
    for (i, (name, body, expected)) in cases.iter().enumerate() {
        std::fs::write(second, &original).unwrap();
        with_extra_entry(second, name, body);
        // Read in place...
        let err = fails(&mut p.verify(&p.usb));
        assert!(
            err.contains(expected) && err.contains(name),
            "{name}: {err}"
        );
        // ... and unpacked.
        let out = p.env.path().join(format!("out-{i}"));
        let err = fails(
            p.env
                .ferry()
                .arg("unpack")
                .args(&p.volumes)
                .arg("-o")
                .arg(&out),
        );
        assert!(
            err.contains(expected) && err.contains(name),
            "{name}: {err}"
        );
        assert!(!out.exists());
    }
    std::fs::write(second, &original).unwrap();
    ok(&mut p.verify(&p.usb));
}
