//! Bundles on S3 under faults: the fault proxy (tests/common/faultproxy.rs) between ferry and
//! the real Ceph RGW (tests/common/ceph.rs), ferry pointed at the proxy with `--s3-endpoint`.
//! The proxy forwards the Host header unchanged, so SigV4 signatures (which cover it) stay
//! valid. Every case ends with the bucket checked straight from RGW with curl: each blob
//! object hashes to its name, no multipart upload is left in progress, `ferry verify` passes.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Registry;
use common::ceph::Ceph;
use common::faultproxy::{FaultProxy, Faults};
use common::ferry::{Env, fails, json, ok};

/// `ferry` with the RGW's keys in the environment, its endpoint `endpoint` (a proxy's).
fn ferry(env: &Env, ceph: &Ceph, endpoint: &str) -> Command {
    let mut cmd = env.ferry();
    ceph.env(&mut cmd);
    cmd.args(["--s3-endpoint", endpoint]);
    cmd
}

/// The proxy's URL.
fn url(proxy: &FaultProxy) -> String {
    format!("http://{}", proxy.addr())
}

/// RGW's "127.0.0.1:PORT".
fn rgw(ceph: &Ceph) -> String {
    ceph.endpoint().trim_start_matches("http://").to_string()
}

/// The bundle under `prefix`, read straight from RGW: the layout's objects are there, every
/// blob object hashes to its name, nothing else is there, no upload is in progress. Returns
/// the blob objects (key, size).
fn check_objects(ceph: &Ceph, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    let objects = ceph.list(bucket, &format!("{prefix}/"));
    let mut blobs = Vec::new();
    for name in ["oci-layout", "index.json", "index.json.sig"] {
        assert!(
            objects
                .iter()
                .any(|(k, _)| *k == format!("{prefix}/{name}")),
            "{name} in {objects:?}"
        );
    }
    for (key, size) in &objects {
        if let Some(hex) = key.strip_prefix(&format!("{prefix}/blobs/sha256/")) {
            let bytes = ceph.get(bucket, key);
            assert_eq!(bytes.len() as u64, *size, "{key}");
            assert_eq!(
                common::sha256_hex(&bytes),
                hex,
                "object {key} hashes to its name"
            );
            blobs.push((key.clone(), *size));
        } else {
            assert!(
                ["oci-layout", "index.json", "index.json.sig"]
                    .iter()
                    .any(|n| *key == format!("{prefix}/{n}")),
                "unexpected object {key}"
            );
        }
    }
    assert!(!blobs.is_empty());
    assert_eq!(ceph.uploads_in_progress(bucket, ""), Vec::<String>::new());
    blobs
}

fn images(addr: &str) -> Vec<String> {
    ["app/web:1", "app/base:1", "app/big:1"]
        .iter()
        .map(|n| format!("{addr}/{n}"))
        .collect()
}

/// `build -o s3://...` through 503s every Nth request (with and without `Retry-After`) and a
/// connection cut in the middle of a multipart part upload: each build succeeds, the bucket
/// holds exactly the bundle, no multipart upload is left, and `ferry verify` passes.
#[test]
fn build_to_s3_through_503s_and_a_cut_part_upload() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("faults-build");
    let source = Registry::start_plain();
    let seeded = common::seed_registry(&source);
    let env = Env::new();
    let (key, public) = env.keys();
    let manifest = env.images_manifest("r.yaml", &images(&source.addr()));
    let big = seeded.big_layer();
    let cases = [
        (
            "every-4th-503",
            Faults {
                fail_every: Some(4),
                ..Faults::default()
            },
        ),
        (
            "every-5th-503-retry-after",
            Faults {
                fail_every: Some(5),
                retry_after: Some(1),
                ..Faults::default()
            },
        ),
        (
            "cut-part-upload",
            Faults {
                drop_upload_after: Some(1 << 20),
                upload_drops: 1,
                ..Faults::default()
            },
        ),
    ];
    for (name, faults) in cases {
        let proxy = FaultProxy::start(&rgw(ceph), faults);
        let location = format!("s3://{bucket}/{name}");
        let started = Instant::now();
        let built = json(
            ferry(&env, ceph, &url(&proxy))
                .args(["--output", "json", "build"])
                .arg(&manifest)
                .args(["-o", &location, "--key"])
                .arg(&key),
        );
        let took = started.elapsed();
        assert_eq!(built["bundle"], location.as_str(), "{built}");
        assert!(proxy.injected() >= 1, "{name}: no fault was injected");
        eprintln!(
            "{name}: built in {:.1} s, {} requests, {} faults",
            took.as_secs_f64(),
            proxy.requests(),
            proxy.injected()
        );
        let waits: Vec<f64> = proxy
            .waits_after_failures()
            .iter()
            .filter_map(|(_, w)| w.map(|w| w.as_secs_f64()))
            .collect();
        eprintln!("{name}: waits before the retries (s): {waits:.2?}");
        let heads = proxy.request_heads();
        if name == "cut-part-upload" {
            // The cut hit a part of the big layer's multipart upload, and that part was sent
            // again (same upload, same part number).
            let parts: Vec<&str> = heads
                .iter()
                .filter_map(|h| h.lines().next())
                .filter(|l| l.starts_with("PUT ") && l.contains("partNumber="))
                .collect();
            let again: Vec<&&str> = parts
                .iter()
                .filter(|l| parts.iter().filter(|m| m == l).count() >= 2)
                .collect();
            assert!(
                again.iter().any(|l| l.contains(big.hex())),
                "a part of the big layer was sent again after the cut: {parts:?}"
            );
        }
        let blobs = check_objects(ceph, &bucket, name);
        assert!(blobs.contains(&(format!("{name}/blobs/sha256/{}", big.hex()), big.size)));
        let verified = json(
            ferry(&env, ceph, ceph.endpoint())
                .args(["--output", "json", "verify", &location, "--key"])
                .arg(&public),
        );
        assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
    }
}

/// `pack s3://...` and `serve s3://...` through blob GETs cut in the middle and stalled: the
/// ranged reader tries again, pack's volume verifies, and skopeo pulls the image with the
/// bundle's digest through the server.
#[test]
fn pack_and_serve_from_s3_through_cut_and_stalled_gets() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("faults-read");
    let source = Registry::start_plain();
    let seeded = common::seed_registry(&source);
    let addr = source.addr();
    let env = Env::new();
    let (key, public) = env.keys();
    let manifest = env.images_manifest("r.yaml", &images(&addr));
    let location = format!("s3://{bucket}/r1");
    ok(ferry(&env, ceph, ceph.endpoint())
        .arg("build")
        .arg(&manifest)
        .args(["-o", &location, "--key"])
        .arg(&key));
    check_objects(ceph, &bucket, "r1");
    let cut = Faults {
        drop_blob_after: Some(512 * 1024),
        drops: 2,
        drop_min_size: 1 << 20,
        ..Faults::default()
    };
    let stalled = Faults {
        stall_blob_after: Some(512 * 1024),
        stalls: 2,
        drop_min_size: 1 << 20,
        ..Faults::default()
    };

    for (name, faults) in [("cut", cut.clone()), ("stalled", stalled.clone())] {
        let proxy = FaultProxy::start(&rgw(ceph), faults);
        let usb = env.path().join(format!("usb-{name}"));
        std::fs::create_dir_all(&usb).unwrap();
        let started = Instant::now();
        let packed = json(
            ferry(&env, ceph, &url(&proxy))
                .args([
                    "--timeout",
                    "2",
                    "--output",
                    "json",
                    "pack",
                    &location,
                    "-o",
                ])
                .arg(usb.join("r1"))
                .args(["--volume-size", "fat32"]),
        );
        let took = started.elapsed();
        assert!(proxy.injected() >= 2, "{name}: {} faults", proxy.injected());
        eprintln!(
            "pack through {name} GETs: {:.1} s, {} requests, {} faults",
            took.as_secs_f64(),
            proxy.requests(),
            proxy.injected()
        );
        assert_eq!(packed["bytes_read"], packed["blob_bytes"], "{packed}");
        let volume = std::fs::read_dir(&usb)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "tar"))
            .expect("a volume");
        let verified = json(
            env.ferry()
                .args(["--output", "json", "verify"])
                .arg(&volume)
                .arg("--key")
                .arg(&public),
        );
        assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
    }

    // serve from the bucket through the proxy; skopeo pulls every layer through the server.
    ceph.write_profile(&env.path().join("home"));
    let mapped = addr.replace(':', "_");
    for (name, faults) in [("cut", cut), ("stalled", stalled)] {
        let proxy = FaultProxy::start(&rgw(ceph), faults);
        let served = common::served::Served::start(
            &env,
            Path::new(&location),
            &[
                "--key",
                public.to_str().unwrap(),
                "--s3-endpoint",
                &url(&proxy),
                "--timeout",
                "2",
            ],
        );
        served.wait_log("signature OK");
        let out = env.path().join(format!("pulled-{name}"));
        let status = source
            .skopeo()
            .args(["copy", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{mapped}/app/big:1", served.addr))
            .arg(format!("dir:{}", out.display()))
            .status()
            .unwrap();
        assert!(
            status.success(),
            "skopeo copy through {name}: {}",
            served.log()
        );
        let raw = std::fs::read(out.join("manifest.json")).unwrap();
        assert_eq!(common::digest_bytes(&raw), seeded.big.set.top.digest);
        let big = seeded.big_layer();
        let layer = std::fs::read(out.join(big.hex())).unwrap();
        assert_eq!(common::sha256_hex(&layer), big.hex());
        assert!(
            proxy.injected() >= 2,
            "serve through {name}: {} faults",
            proxy.injected()
        );
        eprintln!(
            "serve through {name} GETs: {} requests, {} faults",
            proxy.requests(),
            proxy.injected()
        );
    }
}

/// An endpoint that takes connections and never answers: with `--timeout 1 --retries 1` the
/// command fails within seconds, naming the object and what to raise.
#[test]
fn a_silent_endpoint_fails_fast_naming_the_object() {
    let ceph = Ceph::shared();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let env = Env::new();
    let (_, public) = env.keys();
    let started = Instant::now();
    let text = fails(
        ferry(&env, ceph, &endpoint)
            .args(["--timeout", "1", "--retries", "1", "verify"])
            .arg("s3://silent-bucket/rel/1")
            .arg("--key")
            .arg(&public),
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}: {text}");
    assert!(text.contains("s3://silent-bucket/rel/1/"), "{text}");
    assert!(text.contains("--timeout"), "{text}");
    eprintln!("silent endpoint: failed in {:.1} s", took.as_secs_f64());
}
