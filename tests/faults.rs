//! Registries that misbehave, between ferry and a real registry (tests/common/faultproxy.rs):
//! 500 and 429 answers with and without `Retry-After`, stalled requests, connections dropped
//! in the middle of a blob. `build` (pulling) and `import registry` (pushing) must finish with
//! exactly the result of a run without faults, and say that they retry.

mod common;

use std::time::Duration;

use common::faultproxy::{FaultProxy, Faults};
use common::ferry::Env;
use common::*;

/// The images the release holds, for a registry at `addr`.
fn images(addr: &str) -> Vec<String> {
    vec![
        format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
        format!("{addr}/app/web:1"),
        format!("{addr}/app/big:1"),
    ]
}

/// `ferry build` of the images at `addr` into `out`; returns the image entries of index.json
/// with `addr` written as `canonical` (so builds through different proxies compare byte for
/// byte), and stderr.
fn build(env: &Env, addr: &str, canonical: &str, out: &str) -> (String, String) {
    let manifest = env.images_manifest(&format!("{out}.yaml"), &images(addr));
    let (key, _) = env.keys();
    let bundle = env.path().join(out);
    let output = run(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key));
    common::ferry::assert_blobs_match_names(&bundle);
    // The image entries of index.json: the lock and the SBOM travel in the bundle and name the
    // registry, so their digests differ per address.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    let images: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["dev.ferry.kind"] == "image")
        .collect();
    assert_eq!(images.len(), 3, "{index:#}");
    let index = serde_json::to_string_pretty(&images)
        .unwrap()
        .replace(addr, canonical);
    (index, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The faults each case injects, and what the stderr must say.
fn cases() -> Vec<(&'static str, Faults)> {
    vec![
        (
            "500 on every 3rd request",
            Faults {
                fail_every: Some(3),
                fail_status: Some(500),
                ..Default::default()
            },
        ),
        (
            "429 with Retry-After: 1 on every 4th request",
            Faults {
                fail_every: Some(4),
                fail_status: Some(429),
                retry_after: Some(1),
                ..Default::default()
            },
        ),
        (
            "503 without Retry-After on every 4th request, two blobs dropped half-way",
            Faults {
                fail_every: Some(4),
                drop_blob_after: Some(1 << 20),
                drops: 2,
                drop_min_size: 1 << 20,
                ..Default::default()
            },
        ),
        (
            "every 4th request stalled for 1 s",
            Faults {
                stall_every: Some((4, Duration::from_secs(1))),
                ..Default::default()
            },
        ),
    ]
}

#[test]
fn build_through_failing_and_stalling_registries_gives_the_same_bundle() {
    let source = Registry::start_plain();
    seed_registry(&source);
    let env = Env::new();
    let (want, _) = build(&env, &source.addr(), "SOURCE", "direct");
    for (i, (name, faults)) in cases().into_iter().enumerate() {
        let retries = faults.fail_every.is_some() || faults.drops > 0;
        let proxy = FaultProxy::start(&source.addr(), faults);
        let (got, stderr) = build(&env, proxy.addr(), "SOURCE", &format!("faulty{i}"));
        assert!(proxy.injected() > 0, "{name}: no fault was injected");
        assert_eq!(
            got, want,
            "{name}: the bundle differs from a build without faults"
        );
        if retries {
            assert!(
                stderr.contains("retrying"),
                "{name}: nothing says it retries:\n{stderr}"
            );
        }
        eprintln!(
            "{name}: {} requests, {} faults, bundle identical",
            proxy.requests(),
            proxy.injected()
        );
    }
}

#[test]
fn import_through_failing_and_stalling_registries_pushes_every_manifest() {
    let source = Registry::start_plain();
    let seeded = seed_registry(&source);
    let env = Env::new();
    let (_, public) = env.keys();
    build(&env, &source.addr(), &source.addr(), "bundle");
    let mapped = source.addr().replace(':', "_");
    for (name, faults) in cases() {
        let target = Registry::start_plain();
        let retries = faults.fail_every.is_some();
        let proxy = FaultProxy::start(&target.addr(), faults);
        let out = run(env
            .ferry()
            .args(["import", "registry"])
            .arg(env.path().join("bundle"))
            .arg("--to")
            .arg(format!("{}/platform", proxy.addr()))
            .arg("--key")
            .arg(&public));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(proxy.injected() > 0, "{name}: no fault was injected");
        if retries {
            assert!(
                stderr.contains("retrying"),
                "{name}: nothing says it retries:\n{stderr}"
            );
        }
        for (repo, pushed) in [("app/web:1", &seeded.web), ("app/big:1", &seeded.big)] {
            let raw = skopeo_inspect_raw(&format!("platform/{mapped}/{repo}"), &target);
            assert_eq!(digest_bytes(&raw), pushed.digest(), "{name}: {repo}");
        }
        eprintln!(
            "{name}: {} requests, {} faults, every manifest pushed",
            proxy.requests(),
            proxy.injected()
        );
    }
}
