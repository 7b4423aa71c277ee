//! Bundles on S3-compatible object storage: a one-node Ceph with RGW on loopback
//! (tests/common/ceph.rs), a bucket per test.

mod common;

use std::collections::HashMap;
use std::io::Read;

use common::ceph::{ACCESS_KEY, Ceph, SECRET_KEY};
use ferry::s3::{self, S3Config, S3Error, S3Location, S3Options, S3Store};

fn store(ceph: &Ceph, bucket: &str, prefix: &str, secret: &str) -> S3Store {
    let vars: HashMap<String, String> = [
        ("AWS_ENDPOINT_URL", ceph.endpoint()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("HOME", "/nonexistent"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = S3Config::resolve(&S3Options::default(), &vars).unwrap();
    let location = S3Location::parse(&format!("s3://{bucket}/{prefix}"))
        .unwrap()
        .unwrap();
    S3Store::with_config(location, config).unwrap()
}

/// Pseudo-random bytes (incompressible, reproducible).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The client's operations against RGW, each checked with an independent read by curl.
#[test]
fn client_operations_against_rgw() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("client");
    let st = store(ceph, &bucket, "rel/1", SECRET_KEY);

    // put / head / get / ranged get
    s3::wait(st.put("a.txt", b"hello".to_vec())).unwrap();
    assert_eq!(ceph.get(&bucket, "rel/1/a.txt"), b"hello");
    assert_eq!(s3::wait(st.head("a.txt")).unwrap(), Some(5));
    assert_eq!(s3::wait(st.head("none")).unwrap(), None);
    assert_eq!(s3::wait(st.get("a.txt")).unwrap().unwrap(), b"hello");
    assert_eq!(s3::wait(st.get("none")).unwrap(), None);
    assert_eq!(s3::wait(st.get_range("a.txt", 1, 4)).unwrap(), b"ell");

    // put-if-absent: 412 -> Exists, the object unchanged
    let e = s3::wait(st.put_if_absent("a.txt", b"other".to_vec())).unwrap_err();
    assert!(matches!(e, S3Error::Exists { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("s3://{bucket}/rel/1/a.txt")),
        "{e}"
    );
    assert_eq!(ceph.get(&bucket, "rel/1/a.txt"), b"hello");
    s3::wait(st.put_if_absent("b.txt", b"new".to_vec())).unwrap();
    assert_eq!(ceph.get(&bucket, "rel/1/b.txt"), b"new");

    // multipart: three parts and a bit, read back by the chunked reader and by curl
    let big = noise(3 * s3::PART_SIZE + 12345, 7);
    let mut w = st.writer("big.bin", Some(big.len() as u64));
    for chunk in big.chunks(100_000) {
        w.write_all(chunk).unwrap();
    }
    assert!(
        !ceph.exists(&bucket, "rel/1/big.bin"),
        "no object before complete"
    );
    assert_eq!(w.complete().unwrap(), big.len() as u64);
    assert_eq!(
        common::sha256_hex(&ceph.get(&bucket, "rel/1/big.bin")),
        common::sha256_hex(&big)
    );
    let mut back = Vec::new();
    st.reader("big.bin", 0, big.len() as u64)
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == big, "the chunked reader returns the object's bytes");
    let mut tail = Vec::new();
    let from = big.len() as u64 - 9_000_000;
    st.reader("big.bin", from, big.len() as u64)
        .read_to_end(&mut tail)
        .unwrap();
    assert!(tail == big[from as usize..]);

    // an aborted (or dropped) multipart upload leaves no object and no upload behind
    let mut w = st.writer("aborted.bin", None);
    w.write_all(&big[..2 * s3::PART_SIZE + 1]).unwrap();
    drop(w);
    let mut w = st.writer("aborted2.bin", None);
    w.write_all(&big[..s3::PART_SIZE + 1]).unwrap();
    w.abort();
    assert!(!ceph.exists(&bucket, "rel/1/aborted.bin"));
    assert!(!ceph.exists(&bucket, "rel/1/aborted2.bin"));
    assert_eq!(
        ceph.uploads_in_progress(&bucket, "rel/1/"),
        Vec::<String>::new()
    );

    // copy, list, delete
    s3::wait(st.copy("a.txt", "sub/c.txt")).unwrap();
    assert_eq!(ceph.get(&bucket, "rel/1/sub/c.txt"), b"hello");
    let names: Vec<(String, u64)> = s3::wait(st.list(""))
        .unwrap()
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a.txt".to_string(), 5),
            ("b.txt".to_string(), 3),
            ("big.bin".to_string(), big.len() as u64),
            ("sub/c.txt".to_string(), 5)
        ]
    );
    assert_eq!(s3::wait(st.list("sub")).unwrap().len(), 1);
    s3::wait(st.delete("sub/c.txt")).unwrap();
    s3::wait(st.delete("sub/c.txt")).unwrap();
    assert!(!ceph.exists(&bucket, "rel/1/sub/c.txt"));

    // a missing bucket is named, with the next step
    let e = s3::wait(store(ceph, "no-such-bucket-here", "", SECRET_KEY).put("x", vec![1]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-bucket-here") && e.contains("does not exist"),
        "{e}"
    );
}

/// Wrong credentials: the error names the access key id and where it came from, never the
/// secret.
#[test]
fn wrong_secret_is_named_without_the_secret() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("creds");
    let st = store(ceph, &bucket, "", "not-the-right-secret-42");
    for e in [
        s3::wait(st.put("x", vec![1])).unwrap_err(),
        s3::wait(st.head("x")).unwrap_err(),
        s3::wait(st.get("x")).unwrap_err(),
    ] {
        let text = format!("{e} {e:?}");
        assert!(matches!(e, S3Error::Denied(_)), "{text}");
        assert!(text.contains(ACCESS_KEY), "{text}");
        assert!(text.contains("AWS_ACCESS_KEY_ID"), "{text}");
        assert!(!text.contains("not-the-right-secret-42"), "{text}");
    }
    assert!(!format!("{st:?}").contains("not-the-right-secret-42"));
}

// ---------------------------------------------------------------------------------------------
// Bundles on S3, end to end: the ferry binary against RGW.

use common::Registry;
use common::ferry::{Env, fails, json, ok};
use std::path::Path;
use std::process::Command;

fn images(addr: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{addr}/{n}")).collect()
}

/// `ferry` with the RGW's endpoint and keys in the environment.
fn ferry(env: &Env, ceph: &Ceph) -> Command {
    let mut cmd = env.ferry();
    ceph.env(&mut cmd);
    cmd
}

/// Checks a bundle in the bucket with curl alone: the layout's objects are there, every blob
/// object hashes to its name, nothing temporary or half-uploaded is left. Returns the blob
/// objects (key, size).
fn check_objects(ceph: &Ceph, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    let objects = ceph.list(bucket, &format!("{prefix}/"));
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    for name in ["oci-layout", "index.json", "index.json.sig"] {
        assert!(
            keys.contains(&format!("{prefix}/{name}").as_str()),
            "{name} in {keys:?}"
        );
    }
    let mut blobs = Vec::new();
    for (key, size) in &objects {
        if let Some(hex) = key.strip_prefix(&format!("{prefix}/blobs/sha256/")) {
            let bytes = ceph.get(bucket, key);
            assert_eq!(bytes.len() as u64, *size);
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
                    .any(|n| key == &format!("{prefix}/{n}")),
                "unexpected object {key}"
            );
        }
    }
    assert!(!blobs.is_empty());
    assert_eq!(ceph.uploads_in_progress(bucket, ""), Vec::<String>::new());
    blobs
}

/// Build to s3, verify and inspect there, pack the volumes straight from the bucket (each
/// object read once) and import them, serve from the bucket with containerd pulling, and a
/// delta built `--since` the bucket.
#[test]
fn build_to_s3_then_verify_pack_import_serve_and_delta() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("e2e");
    let source = Registry::start_plain();
    let seeded = common::seed_registry(&source);
    let addr = source.addr();
    let env = Env::new();
    let (key, public) = env.keys();
    let manifest = env.images_manifest(
        "r.yaml",
        &images(&addr, &["app/web:1", "app/base:1", "app/big:1"]),
    );
    let location = format!("s3://{bucket}/releases/r1");
    let built = json(
        ferry(&env, ceph)
            .args(["--output", "json", "build"])
            .arg(&manifest)
            .args(["-o", &location, "--key"])
            .arg(&key),
    );
    assert_eq!(built["bundle"], location.as_str(), "{built}");
    let blobs = check_objects(ceph, &bucket, "releases/r1");
    let big = seeded.big_layer();
    assert!(blobs.contains(&(format!("releases/r1/blobs/sha256/{}", big.hex()), big.size)));

    // ferry's own checks read the bucket.
    let verified = json(
        ferry(&env, ceph)
            .args(["--output", "json", "verify", &location, "--key"])
            .arg(&public),
    );
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
    assert_eq!(
        verified["blobs"].as_u64().unwrap(),
        blobs.len() as u64,
        "{verified}"
    );
    let text = ok(ferry(&env, ceph).args(["inspect", &location]));
    assert!(text.contains("app/big:1"), "{text}");

    // pack straight from the bucket: every object read once.
    let usb = env.path().join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    let packed = json(
        ferry(&env, ceph)
            .args(["--output", "json", "pack", &location, "-o"])
            .arg(usb.join("r1"))
            .args(["--volume-size", "fat32"]),
    );
    assert_eq!(packed["bytes_read"], packed["blob_bytes"], "{packed}");
    let total: u64 = blobs.iter().map(|b| b.1).sum();
    assert_eq!(packed["blob_bytes"].as_u64().unwrap(), total, "{packed}");
    let volume = std::fs::read_dir(&usb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tar"))
        .expect("a volume");
    let target = Registry::start_plain();
    ok(ferry(&env, ceph)
        .args(["import", "registry"])
        .arg(&volume)
        .arg("--to")
        .arg(target.addr())
        .arg("--key")
        .arg(&public));
    let mapped = addr.replace(':', "_");
    let raw = common::skopeo_inspect_raw(&format!("{mapped}/app/big:1"), &target);
    assert_eq!(common::digest_bytes(&raw), seeded.big.set.top.digest);

    // import --site reads the bucket as it reads a directory.
    let site_registry = Registry::start_plain();
    let site = env.path().join("site.yaml");
    std::fs::write(
        &site,
        format!(
            "apiVersion: ferry.dev/v1\nkind: Site\nmetadata: {{name: s3-site}}\nspec:\n  registry:\n    host: {}/platform\n",
            site_registry.addr()
        ),
    )
    .unwrap();
    ok(ferry(&env, ceph)
        .args(["import", &location, "--site"])
        .arg(&site)
        .arg("--key")
        .arg(&public));
    let raw = common::skopeo_inspect_raw(&format!("platform/{mapped}/app/big:1"), &site_registry);
    assert_eq!(common::digest_bytes(&raw), seeded.big.set.top.digest);

    // serve from the bucket; containerd pulls (blobs by ranged GETs behind the server).
    env_profile_serve(&env, ceph, &location, &public, &seeded, &addr);

    // a delta since the bucket's release leaves the shared blobs out.
    let next = env.images_manifest("r2.yaml", &images(&addr, &["app/web:1", "app/worker:1"]));
    let location2 = format!("s3://{bucket}/releases/r2");
    let delta = json(
        ferry(&env, ceph)
            .args(["--output", "json", "build"])
            .arg(&next)
            .args(["-o", &location2, "--since", &location, "--key"])
            .arg(&key),
    );
    assert!(delta["omitted_blobs"].as_u64().unwrap() >= 2, "{delta}");
    for layer in &seeded.base.image().layers {
        assert!(!ceph.exists(
            &bucket,
            &format!("releases/r2/blobs/sha256/{}", layer.hex())
        ));
    }
    let verified = json(
        ferry(&env, ceph)
            .args(["--output", "json", "verify", &location2, "--key"])
            .arg(&public),
    );
    assert!(
        verified["left_to_base"].as_u64().unwrap() >= 2,
        "{verified}"
    );

    // diff, sbom and sign read (and sign writes) the bucket too.
    let diff = json(ferry(&env, ceph).args(["--output", "json", "diff", &location, &location2]));
    assert_eq!(diff["unchanged"], 1, "{diff}");
    let sbom = ok(ferry(&env, ceph)
        .args(["sbom", &location, "--key"])
        .arg(&public));
    assert!(
        sbom.contains("CycloneDX"),
        "{}",
        &sbom[..sbom.len().min(300)]
    );
    let before = ceph.get(&bucket, "releases/r2/index.json.sig");
    let other = Env::new();
    let (other_key, other_public) = other.keys();
    ok(ferry(&env, ceph)
        .args(["sign", &location2, "--key"])
        .arg(&other_key));
    assert_ne!(ceph.get(&bucket, "releases/r2/index.json.sig"), before);
    ok(ferry(&env, ceph)
        .args(["verify", &location2, "--key"])
        .arg(&other_public));
}

/// `ferry serve s3://...` with credentials from `~/.aws` (no variables), containerd pulling.
fn env_profile_serve(
    env: &Env,
    ceph: &Ceph,
    location: &str,
    public: &Path,
    seeded: &common::SeededImages,
    upstream: &str,
) {
    ceph.write_profile(&env.path().join("home"));
    let served = common::served::Served::start(
        env,
        Path::new(location),
        &["--key", public.to_str().unwrap()],
    );
    served.wait_log("signature OK");
    let containerd = common::Containerd::start();
    let mapped = upstream.replace(':', "_");
    let reference = format!("{}/{mapped}/app/big:1", served.addr);
    run_ok(containerd.ctr().args([
        "images",
        "pull",
        "--plain-http",
        "--platform",
        "linux/amd64",
        &reference,
    ]));
    let listing =
        String::from_utf8(run_ok(containerd.ctr().args(["images", "ls"])).stdout).unwrap();
    assert!(listing.contains(&seeded.big.set.top.digest), "{listing}");
    // A ranged read of a layer, as a resuming client asks.
    let big = seeded.big_layer();
    let response = common::fileserver::http_request(
        &served.addr,
        "GET",
        &format!("/v2/{mapped}/app/big/blobs/{}", big.digest),
        &[("Range", "bytes=100-199")],
    );
    assert_eq!(response.status, 206, "{:?}", response.headers);
    assert_eq!(response.body.len(), 100);
}

fn run_ok(cmd: &mut Command) -> std::process::Output {
    common::run(cmd)
}

/// Blob objects (relative key, size) under a prefix, as curl lists them.
fn blob_objects(ceph: &Ceph, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    ceph.list(bucket, &format!("{prefix}/blobs/sha256/"))
        .into_iter()
        .map(|(k, s)| (k[prefix.len() + 1..].to_string(), s))
        .collect()
}

/// kill -9 in the middle of a build to s3: what is in the bucket is correct (every blob object
/// hashes to its name, no index yet); the next run reuses the uploaded blobs, says how many,
/// and ends as a build that was never interrupted. A blob that arrives corrupt is never
/// completed: its upload is aborted and no object appears.
#[test]
fn killed_build_resumes_from_the_uploaded_blobs_and_a_bad_digest_leaves_no_object() {
    use common::faultproxy::{FaultProxy, Faults};
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::time::{Duration, Instant};

    let ceph = Ceph::shared();
    let bucket = ceph.bucket("kill");
    let source = Registry::start_plain();
    let seeded = common::seed_registry(&source);
    let big = seeded.big_layer().clone();
    let big_key = format!("blobs/sha256/{}", big.hex());
    // A slow link, so the build can be caught in the middle.
    let proxy = FaultProxy::start(
        &source.addr(),
        Faults {
            delay: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    );
    let env = Env::new();
    let (key, public) = env.keys();
    let names = [
        "app/web:1",
        "app/worker:1",
        "app/big:1",
        "library/alpine:3.20",
    ];
    let manifest = env.images_manifest("k.yaml", &images(proxy.addr(), &names));
    let lock = env.path().join("k.lock");
    // The lock first (resolving tags), so both runs and the reference build fetch the same.
    ok(ferry(&env, ceph)
        .args(["lock"])
        .arg(&manifest)
        .arg("-o")
        .arg(&lock));
    let location = format!("s3://{bucket}/k");
    let build = |out: &str| {
        let mut cmd = ferry(&env, ceph);
        cmd.arg("build")
            .arg(&manifest)
            .args(["--locked", "--lock"])
            .arg(&lock)
            .args(["-o", out, "--key"])
            .arg(&key);
        cmd
    };
    let mut child = build(&location)
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let seen = loop {
        let blobs = blob_objects(ceph, &bucket, "k");
        if blobs.iter().any(|(k, _)| k == &big_key) && !ceph.exists(&bucket, "k/index.json") {
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break blobs;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build finished before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    // What the killed run left: correct blobs, and no index naming anything.
    let left = blob_objects(ceph, &bucket, "k");
    assert!(left.len() >= seen.len());
    for (key, _) in &left {
        let bytes = ceph.get(&bucket, &format!("k/{key}"));
        assert!(
            key.ends_with(&common::sha256_hex(&bytes)),
            "{key} after the kill"
        );
    }
    assert!(!ceph.exists(&bucket, "k/index.json"));

    // The second run reuses them and says so; the big layer is not fetched again.
    let big_gets = || {
        proxy
            .request_heads()
            .iter()
            .filter(|h| h.starts_with("GET ") && h.contains(&big.digest))
            .count()
    };
    let before = big_gets();
    assert!(before >= 1);
    let out = build(&location).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let reused = stderr
        .lines()
        .find(|l| l.contains("already in") && l.contains(&location))
        .unwrap_or_else(|| panic!("no reuse line:\n{stderr}"));
    let count: usize = reused
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap();
    assert!(count >= 1, "{reused}");
    assert_eq!(
        big_gets(),
        before,
        "the uploaded big layer was fetched again"
    );

    // The same blobs as an uninterrupted build (to another prefix).
    ok(&mut build(&format!("s3://{bucket}/clean")));
    check_objects(ceph, &bucket, "k");
    assert_eq!(
        blob_objects(ceph, &bucket, "k"),
        blob_objects(ceph, &bucket, "clean")
    );
    assert_eq!(
        ceph.get(&bucket, "k/index.json"),
        ceph.get(&bucket, "clean/index.json")
    );
    ok(ferry(&env, ceph)
        .args(["verify", &location, "--key"])
        .arg(&public));

    // A blob corrupted on the way: its upload is never completed.
    let corrupting = FaultProxy::start(
        &source.addr(),
        Faults {
            corrupt_blobs: 1,
            drop_min_size: 100_000,
            ..Default::default()
        },
    );
    let big = env.images_manifest("c.yaml", &images(corrupting.addr(), &["app/big:1"]));
    let out = ferry(&env, ceph)
        .arg("build")
        .arg(&big)
        .args(["-o", &format!("s3://{bucket}/corrupt"), "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(corrupting.injected(), 1);
    // Whether the run retried or stopped, every object there hashes to its name.
    for (key, _) in blob_objects(ceph, &bucket, "corrupt") {
        let bytes = ceph.get(&bucket, &format!("corrupt/{key}"));
        assert!(
            key.ends_with(&common::sha256_hex(&bytes)),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        ceph.uploads_in_progress(&bucket, "corrupt/"),
        Vec::<String>::new()
    );
}

/// Wrong credentials: a clear error naming the access key id and where it came from, exit
/// non-zero, and the secret nowhere in the output.
#[test]
fn wrong_credentials_are_named_and_the_secret_never_printed() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("badcreds");
    let env = Env::new();
    let secret = "wrong-secret-do-not-print-7";
    let location = format!("s3://{bucket}/x");
    let mut verify = ferry(&env, ceph);
    verify
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args(["verify", &location, "--no-signature"]);
    let out = verify.output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(ACCESS_KEY) && all.contains("AWS_ACCESS_KEY_ID"),
        "{all}"
    );
    assert!(all.contains(&location), "{all}");
    assert!(!all.contains(secret), "{all}");

    // From a profile: the error names the profile and its file.
    let home = env.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        format!("[rgw]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let mut cmd = env.ferry();
    cmd.env("AWS_PROFILE", "rgw")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["inspect", &location, "--s3-endpoint", ceph.endpoint()]);
    let err = fails(&mut cmd);
    assert!(
        err.contains("profile [rgw]") && err.contains(".aws/credentials"),
        "{err}"
    );
    assert!(!err.contains(secret), "{err}");
}

/// A blob changed in the bucket: verify names it and its key; import refuses it and publishes
/// nothing.
#[test]
fn a_blob_tampered_in_the_bucket_is_named_and_not_imported() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("tamper");
    let source = Registry::start_plain();
    let seeded = common::seed_registry(&source);
    let env = Env::new();
    let (key, public) = env.keys();
    let manifest = env.images_manifest("t.yaml", &images(&source.addr(), &["app/big:1"]));
    let location = format!("s3://{bucket}/t");
    ok(ferry(&env, ceph)
        .arg("build")
        .arg(&manifest)
        .args(["-o", &location, "--key"])
        .arg(&key));
    let big = seeded.big_layer();
    let object = format!("t/blobs/sha256/{}", big.hex());
    let mut bytes = ceph.get(&bucket, &object);
    bytes[1000] ^= 0xff;
    ceph.put(&bucket, &object, &bytes);

    let out = ferry(&env, ceph)
        .args(["verify", &location, "--key"])
        .arg(&public)
        .output()
        .unwrap();
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&big.digest), "{err}");
    assert!(err.contains(&format!("s3://{bucket}/{object}")), "{err}");

    let target = Registry::start_plain();
    fails(
        ferry(&env, ceph)
            .args(["import", "registry", &location, "--to"])
            .arg(target.addr())
            .arg("--key")
            .arg(&public),
    );
    let mapped = source.addr().replace(':', "_");
    let manifest = target.get(&format!("/v2/{mapped}/app/big/manifests/1"));
    assert_eq!(manifest.status, 404, "the image was not published");
}

/// Release files (the HTTP source's writer, multipart for a file larger than a part) into s3,
/// then `import files` from the bucket.
#[test]
fn release_files_stream_into_s3_and_import_from_it() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("files");
    let server = common::fileserver::FileServer::start();
    let tool = noise(s3::PART_SIZE * 2 + 4321, 11);
    server.put("/releases/v1/tool", tool.clone());
    let env = Env::new();
    let manifest = env.manifest(
        "f.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: f, version: \"1\"}}\nspec:\n  files:\n    - url: {}\n      sha256: {}\n      mode: \"0755\"\n",
            server.url("/releases/v1/tool"),
            common::sha256_hex(&tool)
        ),
    );
    let location = format!("s3://{bucket}/f");
    ok(ferry(&env, ceph)
        .arg("build")
        .arg(&manifest)
        .args(["-o", &location]));
    assert_eq!(
        ceph.get(
            &bucket,
            &format!("f/blobs/sha256/{}", common::sha256_hex(&tool))
        ),
        tool
    );
    let out = env.path().join("site-files");
    ok(ferry(&env, ceph)
        .args(["import", "files", &location, "--no-signature", "--to"])
        .arg(&out));
    let placed: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "tool"))
        .collect();
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert!(std::fs::read(&placed[0]).unwrap() == tool);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
