//! `ferry build --cache s3://BUCKET/PREFIX`: the blob cache shared by builds, on a one-node
//! Ceph with RGW (tests/common/ceph.rs), upstream a real registry behind the fault proxy
//! (tests/common/faultproxy.rs), which counts the blob GETs per digest and slows them so that
//! concurrent builds really overlap.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::ceph::Ceph;
use common::faultproxy::{FaultProxy, Faults};
use common::ferry::{Env, ok};
use common::*;

/// The images of release A and release B at `addr`: alpine (two platforms), base and big in
/// both, web only in A, worker only in B.
fn releases(addr: &str) -> (Vec<String>, Vec<String>) {
    let alpine =
        format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}");
    let a = vec![
        alpine.clone(),
        format!("{addr}/app/base:1"),
        format!("{addr}/app/web:1"),
        format!("{addr}/app/big:1"),
    ];
    let b = vec![
        alpine,
        format!("{addr}/app/base:1"),
        format!("{addr}/app/worker:1"),
        format!("{addr}/app/big:1"),
    ];
    (a, b)
}

/// `ferry --s3-endpoint RGW --output json build MANIFEST -o OUT --key KEY --cache CACHE` with
/// the Ceph credentials, not started yet.
fn build_cmd(env: &Env, ceph: &Ceph, manifest: &Path, out: &Path, cache: &str) -> Command {
    let (key, _) = env.keys();
    let mut cmd = env.ferry();
    ceph.env(&mut cmd);
    // The endpoint from the flag, not the environment: the cache takes the same S3 options as
    // bundle locations.
    cmd.env_remove("AWS_ENDPOINT_URL")
        .args(["--s3-endpoint", ceph.endpoint()]);
    cmd.args(["--output", "json", "build"])
        .arg(manifest)
        .arg("-o")
        .arg(out)
        .arg("--key")
        .arg(key)
        .args(["--cache", cache])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The JSON summary of a finished build (panics with its output unless it succeeded).
fn summary(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "build failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn count(summary: &serde_json::Value, field: &str) -> u64 {
    summary["cache"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no cache.{field} in the summary:\n{summary:#}"))
}

/// `ferry verify` with the environment's public key.
fn verify(env: &Env, bundle: &Path) {
    let (_, public) = env.keys();
    ok(env
        .ferry()
        .arg("verify")
        .arg(bundle)
        .arg("--key")
        .arg(public));
    common::ferry::assert_blobs_match_names(bundle);
}

/// The blobs of a bundle's image manifests (configs and layers): what a build fetches as blobs.
fn image_blobs(bundle: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for name in common::ferry::blob_files(bundle) {
        let bytes = std::fs::read(bundle.join("blobs/sha256").join(&name)).unwrap();
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let is_image = doc["config"]["mediaType"]
            .as_str()
            .is_some_and(|m| m.contains("image.config") || m.contains("container.image"));
        if !is_image {
            continue;
        }
        let config = std::iter::once(&doc["config"]);
        for d in config.chain(doc["layers"].as_array().into_iter().flatten()) {
            out.insert(
                d["digest"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
            );
        }
    }
    out
}

/// The layers of a bundle's images (their configs are also fetched when the lock is made,
/// once per build).
fn layers(bundle: &Path) -> BTreeSet<String> {
    let configs: BTreeSet<String> = image_blobs(bundle)
        .into_keys()
        .filter(|d| {
            let path = bundle
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"));
            let bytes = std::fs::read(path).unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .is_ok_and(|v| v.get("rootfs").is_some())
        })
        .collect();
    image_blobs(bundle)
        .into_keys()
        .filter(|d| !configs.contains(d))
        .collect()
}

/// Every object under `PREFIX/blobs/sha256/` hashes to its name; returns their digests.
fn assert_cache_sound(ceph: &Ceph, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (key, _) in ceph.list(bucket, &format!("{prefix}/blobs/sha256/")) {
        let hex = key.rsplit('/').next().unwrap();
        let bytes = ceph.get(bucket, &key);
        assert_eq!(sha256_hex(&bytes), hex, "cache object {key}");
        out.insert(format!("sha256:{hex}"));
    }
    out
}

fn leases(ceph: &Ceph, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    ceph.list(bucket, &format!("{prefix}/leases/"))
}

/// The leases whose blob is not in the cache (a lease left beside a complete blob is ignored).
fn open_leases(ceph: &Ceph, bucket: &str, prefix: &str) -> BTreeSet<String> {
    leases(ceph, bucket, prefix)
        .into_iter()
        .map(|(key, _)| key.rsplit('/').next().unwrap().to_string())
        .filter(|hex| !ceph.exists(bucket, &format!("{prefix}/blobs/sha256/{hex}")))
        .collect()
}

/// Waits until `n` leases exist (or panics after `within`).
fn wait_for_leases(ceph: &Ceph, bucket: &str, prefix: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while leases(ceph, bucket, prefix).len() < n {
        assert!(
            Instant::now() < deadline,
            "no {n} leases under {bucket}/{prefix}/leases/ within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill(child: &Child, signal: libc::c_int) {
    // SAFETY: a plain syscall on the pid of a child this test started and has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill {} {signal}", child.id());
}

/// Two builds of overlapping releases, started together, each blob's GET slowed: every layer
/// is fetched from upstream once between them, the other build waits for it and takes it
/// from the cache, and both bundles verify.
#[test]
fn two_concurrent_builds_fetch_each_shared_blob_once() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("concurrent");
    let registry = Registry::start_plain();
    seed_registry(&registry);
    let proxy = FaultProxy::start(
        &registry.addr(),
        Faults {
            delay_blob_gets: Some(Duration::from_millis(1500)),
            drop_min_size: 4096,
            ..Default::default()
        },
    );
    let env = Env::new();
    let (a, b) = releases(proxy.addr());
    let (a, b) = (
        env.images_manifest("a.yaml", &a),
        env.images_manifest("b.yaml", &b),
    );
    let cache = format!("s3://{bucket}/cache");
    let (out_a, out_b) = (env.path().join("a"), env.path().join("b"));
    let child_a = build_cmd(&env, ceph, &a, &out_a, &cache).spawn().unwrap();
    let child_b = build_cmd(&env, ceph, &b, &out_b, &cache).spawn().unwrap();
    let (sa, sb) = (
        summary(&child_a.wait_with_output().unwrap()),
        summary(&child_b.wait_with_output().unwrap()),
    );
    verify(&env, &out_a);
    verify(&env, &out_b);

    let (blobs_a, blobs_b) = (image_blobs(&out_a), image_blobs(&out_b));
    let union: BTreeMap<_, _> = blobs_a.clone().into_iter().chain(blobs_b.clone()).collect();
    let shared: BTreeSet<_> = blobs_a
        .keys()
        .filter(|d| blobs_b.contains_key(*d))
        .collect();
    assert!(shared.len() >= 6, "the releases share blobs: {shared:?}");

    // Each build accounts for every blob it pulled, from upstream or from the cache.
    for (s, blobs) in [(&sa, &blobs_a), (&sb, &blobs_b)] {
        assert_eq!(
            count(s, "upstream_blobs") + count(s, "cache_blobs"),
            blobs.len() as u64,
            "{s:#}"
        );
        assert_eq!(
            count(s, "upstream_bytes") + count(s, "cache_bytes"),
            blobs.values().sum::<u64>(),
            "{s:#}"
        );
        assert_eq!(count(s, "rejected_blobs"), 0, "{s:#}");
    }
    // Between them, each blob came from upstream once.
    assert_eq!(
        count(&sa, "upstream_blobs") + count(&sb, "upstream_blobs"),
        union.len() as u64,
        "A:\n{sa:#}\nB:\n{sb:#}"
    );
    assert_eq!(
        count(&sa, "upstream_bytes") + count(&sb, "upstream_bytes"),
        union.values().sum::<u64>()
    );
    // They overlapped: one waited for the other's lease at least once.
    assert!(
        count(&sa, "waited_blobs") + count(&sb, "waited_blobs") > 0,
        "the builds did not overlap:\nA:\n{sa:#}\nB:\n{sb:#}"
    );
    // And the registry saw one GET per layer (configs are also read once per lock).
    let gets = proxy.blob_gets();
    let all_layers: BTreeSet<String> = layers(&out_a).union(&layers(&out_b)).cloned().collect();
    for layer in &all_layers {
        assert_eq!(gets.get(layer), Some(&1), "GETs of {layer}: {gets:?}");
    }
    // The cache holds exactly the blobs, each correct, and no lease is left.
    let cached = assert_cache_sound(ceph, &bucket, "cache");
    assert_eq!(cached, union.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(leases(ceph, &bucket, "cache"), vec![]);
    // A third build of A, into the bucket, text output: everything from the cache (streamed
    // through ferry and checked), the registry not asked.
    let before = proxy.blob_gets();
    let (key, public) = env.keys();
    let out = format!("s3://{bucket}/a2");
    let mut cmd = env.ferry();
    ceph.env(&mut cmd);
    let text = ok(cmd
        .arg("build")
        .arg(&a)
        .arg("-o")
        .arg(&out)
        .arg("--key")
        .arg(&key)
        .args(["--cache", &cache]));
    let mut cmd = env.ferry();
    ceph.env(&mut cmd);
    ok(cmd.arg("verify").arg(&out).arg("--key").arg(&public));
    let want = format!(
        "cache s3://{bucket}/cache: 0 blobs (0 B) fetched from upstream, {} blobs",
        blobs_a.len()
    );
    assert!(text.contains(&want), "{want}\nnot in:\n{text}");
    let after = proxy.blob_gets();
    for layer in &all_layers {
        assert_eq!(before.get(layer), after.get(layer), "{layer} fetched again");
    }
}

/// A build killed while it holds leases leaves them; the next build waits for them to expire,
/// takes them over, says so, and fetches the blobs; nothing is left behind.
#[test]
fn a_killed_builds_stale_lease_is_taken_over() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("stale");
    let registry = Registry::start_plain();
    seed_registry(&registry);
    let env = Env::new();
    let cache = format!("s3://{bucket}/cache");

    // The killed build: its blob GETs held long enough to kill it holding the leases.
    let slow = FaultProxy::start(
        &registry.addr(),
        Faults {
            delay_blob_gets: Some(Duration::from_secs(60)),
            drop_min_size: 4096,
            ..Default::default()
        },
    );
    let manifest = env.images_manifest("slow.yaml", &[format!("{}/app/big:1", slow.addr())]);
    let mut killed = build_cmd(&env, ceph, &manifest, &env.path().join("killed"), &cache)
        .env("FERRY_CACHE_LEASE_SECONDS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The two layers' GETs are held (the small config passes): two leases held.
    wait_for_leases(ceph, &bucket, "cache", 2, Duration::from_secs(120));
    killed.kill().unwrap();
    killed.wait().unwrap();
    let stale = open_leases(ceph, &bucket, "cache");
    assert!(stale.len() >= 2, "{stale:?}");
    let first = format!("cache/leases/{}", stale.first().unwrap());
    let lease: serde_json::Value = serde_json::from_slice(&ceph.get(&bucket, &first)).unwrap();
    assert_eq!(
        lease["pid"].as_u64(),
        Some(u64::from(killed.id())),
        "{lease}"
    );

    // The next build, through a proxy without delays.
    let fast = FaultProxy::start(&registry.addr(), Faults::default());
    let manifest = env.images_manifest("fast.yaml", &[format!("{}/app/big:1", fast.addr())]);
    let out = env.path().join("after");
    let started = Instant::now();
    let output = build_cmd(&env, ceph, &manifest, &out, &cache)
        .env("FERRY_CACHE_LEASE_SECONDS", "3")
        .output()
        .unwrap();
    let s = summary(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        count(&s, "taken_over_leases"),
        stale.len() as u64,
        "{s:#}\n{stderr}"
    );
    assert!(count(&s, "upstream_blobs") >= 2, "{s:#}");
    assert_eq!(
        count(&s, "upstream_blobs") + count(&s, "cache_blobs"),
        3,
        "{s:#}"
    );
    assert!(
        stderr.contains("took over the lease of")
            && stderr.contains(&format!("s3://{bucket}/cache/leases/")),
        "nothing names the lease taken over:\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the build waited {:?} for leases of 3 s",
        started.elapsed()
    );
    verify(&env, &out);
    assert_eq!(assert_cache_sound(ceph, &bucket, "cache").len(), 3);
    // Every lease of a missing blob was taken over and released; at most an expired one of
    // the killed build is left beside a blob it had completed (ignored).
    assert_eq!(open_leases(ceph, &bucket, "cache"), BTreeSet::new());
}

/// Cache objects changed in the bucket (same size, a byte flipped; and truncated) are named,
/// never completed in the output, and replaced from upstream; every other blob comes from the
/// cache without a GET upstream.
#[test]
fn a_tampered_cache_object_is_named_and_not_used() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("tampered");
    let registry = Registry::start_plain();
    seed_registry(&registry);
    let env = Env::new();
    let cache = format!("s3://{bucket}/cache");
    let images = [
        format!("{}/app/big:1", registry.addr()),
        format!("{}/app/web:1", registry.addr()),
    ];
    let manifest = env.images_manifest("r.yaml", &images);
    let first = env.path().join("first");
    let s = summary(
        &build_cmd(&env, ceph, &manifest, &first, &cache)
            .output()
            .unwrap(),
    );
    let blobs = image_blobs(&first);
    assert_eq!(count(&s, "upstream_blobs"), blobs.len() as u64, "{s:#}");

    // The largest layer: a byte flipped. Another layer: cut short.
    let mut by_size: Vec<(&String, &u64)> = blobs.iter().collect();
    by_size.sort_by_key(|(_, size)| std::cmp::Reverse(**size));
    let (flipped, cut) = (by_size[0].0.clone(), by_size[1].0.clone());
    let key = |digest: &str| {
        format!(
            "cache/blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        )
    };
    let mut bytes = ceph.get(&bucket, &key(&flipped));
    bytes[1000] ^= 0xff;
    ceph.put(&bucket, &key(&flipped), &bytes);
    let bytes = ceph.get(&bucket, &key(&cut));
    ceph.put(&bucket, &key(&cut), &bytes[..bytes.len() / 2]);

    // A second build, in another directory, through a counting proxy.
    let proxy = FaultProxy::start(&registry.addr(), Faults::default());
    let manifest = env.images_manifest(
        "r2.yaml",
        &images
            .iter()
            .map(|i| i.replace(&registry.addr(), proxy.addr()))
            .collect::<Vec<_>>(),
    );
    let second = env.path().join("second");
    let output = build_cmd(&env, ceph, &manifest, &second, &cache)
        .output()
        .unwrap();
    let s = summary(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for digest in [&flipped, &cut] {
        assert!(
            stderr.contains(&format!("s3://{bucket}/{}", key(digest))),
            "the changed cache object of {digest} is not named:\n{stderr}"
        );
    }
    assert!(stderr.contains("hashed to"), "{stderr}");
    assert_eq!(count(&s, "rejected_blobs"), 2, "{s:#}");
    assert_eq!(count(&s, "upstream_blobs"), 2, "{s:#}");
    assert_eq!(count(&s, "cache_blobs"), blobs.len() as u64 - 2, "{s:#}");
    // Only the two changed blobs went to the registry; the bundle and the cache are sound.
    let gets = proxy.blob_gets();
    for layer in layers(&second) {
        let want = usize::from(layer == flipped || layer == cut);
        assert_eq!(
            gets.get(&layer).copied().unwrap_or(0),
            want,
            "GETs of {layer}: {gets:?}"
        );
    }
    verify(&env, &second);
    assert_eq!(
        assert_cache_sound(ceph, &bucket, "cache").len(),
        blobs.len()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\"cache\""), "{text}");
}

/// The race leases leave: a build paused (SIGSTOP) past its lease's lifetime loses the lease
/// to another build, which fetches the same blobs; resumed, the first build finishes its own
/// download. Each blob is fetched twice, and that is all: both bundles verify and the cache
/// holds correct objects, whichever upload completed last.
#[test]
fn a_lease_lost_to_a_pause_costs_one_duplicate_download_and_nothing_else() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("race");
    let registry = Registry::start_plain();
    seed_registry(&registry);
    let env = Env::new();
    let cache = format!("s3://{bucket}/cache");

    let slow = FaultProxy::start(
        &registry.addr(),
        Faults {
            delay_blob_gets: Some(Duration::from_secs(3)),
            drop_min_size: 4096,
            ..Default::default()
        },
    );
    let manifest = env.images_manifest("slow.yaml", &[format!("{}/app/big:1", slow.addr())]);
    let out_paused = env.path().join("paused");
    let paused = build_cmd(&env, ceph, &manifest, &out_paused, &cache)
        .env("FERRY_CACHE_LEASE_SECONDS", "2")
        .spawn()
        .unwrap();
    // The two layers' GETs are held (the small config passes): two leases held.
    wait_for_leases(ceph, &bucket, "cache", 2, Duration::from_secs(120));
    kill(&paused, libc::SIGSTOP);
    let held = open_leases(ceph, &bucket, "cache").len() as u64;
    std::thread::sleep(Duration::from_millis(3500));

    let fast = FaultProxy::start(&registry.addr(), Faults::default());
    let manifest = env.images_manifest("fast.yaml", &[format!("{}/app/big:1", fast.addr())]);
    let out_other = env.path().join("other");
    let other = summary(
        &build_cmd(&env, ceph, &manifest, &out_other, &cache)
            .env("FERRY_CACHE_LEASE_SECONDS", "2")
            .output()
            .unwrap(),
    );
    assert_eq!(count(&other, "taken_over_leases"), held, "{other:#}");
    assert_eq!(count(&other, "upstream_blobs"), held, "{other:#}");

    kill(&paused, libc::SIGCONT);
    let first = summary(&paused.wait_with_output().unwrap());
    assert!(count(&first, "upstream_blobs") >= 2, "{first:#}");
    assert_eq!(
        count(&first, "upstream_blobs") + count(&first, "cache_blobs"),
        3,
        "{first:#}"
    );

    verify(&env, &out_paused);
    verify(&env, &out_other);
    assert_eq!(assert_cache_sound(ceph, &bucket, "cache").len(), 3);
    assert_eq!(leases(ceph, &bucket, "cache"), vec![]);
    let (a, b) = (slow.blob_gets(), fast.blob_gets());
    for layer in layers(&out_other) {
        assert_eq!(a.get(&layer), Some(&1), "{a:?}");
        assert_eq!(b.get(&layer), Some(&1), "{b:?}");
    }
}

/// Release files go through the cache as image blobs do: a second build of the release, its
/// web server gone, takes them from the cache (digest-checked) and verifies.
#[test]
fn release_files_come_from_the_cache_when_upstream_is_gone() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("files");
    let cache = format!("s3://{bucket}/cache");
    let env = Env::new();
    let up = env.path().join("upstream");
    std::fs::create_dir_all(&up).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let small = b"#!/bin/sh\nexit 0\n".to_vec();
    std::fs::write(up.join("k3s"), &big).unwrap();
    std::fs::write(up.join("install.sh"), &small).unwrap();
    let http = common::static_server::StaticServer::start(&up);
    let url = http.url();
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  files:\n    - url: {url}/k3s\n      sha256: {}\n    - url: {url}/install.sh\n      sha256: {}\n      mode: \"0755\"\n",
            sha256_hex(&big),
            sha256_hex(&small)
        ),
    );
    let first = summary(
        &build_cmd(&env, ceph, &manifest, &env.path().join("one"), &cache)
            .output()
            .unwrap(),
    );
    assert_eq!(count(&first, "upstream_blobs"), 2, "{first:#}");
    assert_cache_sound(ceph, &bucket, "cache");
    drop(http);
    let second = summary(
        &build_cmd(&env, ceph, &manifest, &env.path().join("two"), &cache)
            .output()
            .unwrap(),
    );
    assert_eq!(count(&second, "upstream_blobs"), 0, "{second:#}");
    assert_eq!(count(&second, "cache_blobs"), 2, "{second:#}");
    verify(&env, &env.path().join("two"));
}
