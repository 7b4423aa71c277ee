//! End-to-end: lock, build, sign, verify and inspect against real registries, checked with
//! skopeo, openssl and sha256sum.

mod common;

use std::path::Path;

use common::ferry::{Env, assert_blobs_match_names, blob_files, fails, json, ok};
use common::*;
use serde_json::Value;

/// A manifest naming images on `addr`, one line per image entry given.
fn manifest_text(entries: &[&str]) -> String {
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: test, version: \"1.0.0\"}\nspec:\n  platforms: [linux/amd64]\n  images:\n",
    );
    for e in entries {
        text.push_str("    - ");
        text.push_str(e);
        text.push('\n');
    }
    text
}

/// A manifest of alpine (amd64 and arm64), web and big on `addr`.
fn alpine_web_big(env: &Env, addr: &str) -> std::path::PathBuf {
    env.manifest(
        "release.yaml",
        &manifest_text(&[
            &format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
            &format!("{addr}/app/web:1"),
            &format!("{addr}/app/big:1"),
        ]),
    )
}

/// `ferry --output json build MANIFEST -o OUT`: its JSON result.
fn build_json(env: &Env, manifest: &Path, out: &Path) -> Value {
    json(
        env.ferry()
            .args(["--output", "json", "build"])
            .arg(manifest)
            .arg("-o")
            .arg(out),
    )
}

fn index_of(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap()
}

fn entry<'a>(index: &'a Value, reference: &str) -> &'a Value {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("no entry {reference} in {index:#}"))
}

#[test]
fn build_multi_arch_bundle_and_check_it_with_independent_tools() {
    let registry = Registry::start_plain();
    let seeded = seed_registry(&registry);
    let addr = registry.addr();
    push(
        &seeded.layout_dir,
        "alpine",
        &registry,
        "library/alpine:single",
    );
    push(
        &seeded.layout_dir,
        "alpine",
        &registry,
        "library/alpine:two",
    );
    let env = Env::new();
    let (key, public) = env.keys();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[
            &format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64, linux/arm/v7]}}"),
            &format!("{addr}/library/alpine:single"),
            &format!("{{ref: {addr}/library/alpine:two, platforms: [linux/amd64, linux/arm64]}}"),
            &seeded.alpine.by_digest(),
            &format!("{addr}/app/web:1"),
            &format!("{addr}/app/worker:1"),
            &format!("{addr}/app/big:1"),
        ]),
    );
    ok(env.ferry().arg("lock").arg(&manifest));
    let lock: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("release.lock")).unwrap()).unwrap();
    let selections: Vec<&str> = lock["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["selection"].as_str().unwrap())
        .collect();
    assert_eq!(
        selections,
        [
            "whole", "single", "filtered", "whole", "whole", "whole", "whole"
        ]
    );

    let bundle = env.path().join("bundle");
    let built = json(
        env.ferry()
            .args(["--output", "json", "build"])
            .arg(&manifest)
            .arg("-o")
            .arg(&bundle)
            .arg("--key")
            .arg(&key),
    );
    // Seven images and the release SBOM.
    assert_eq!(built["entries"], 8);
    assert!(built["signed_by"].as_str().unwrap().starts_with("sha256:"));

    // The entries point where DESIGN.md says.
    let index = index_of(&bundle);
    let whole = entry(&index, &format!("{addr}/library/alpine:3.20"));
    assert_eq!(whole["digest"], seeded.alpine.top.digest);
    let single = entry(&index, &format!("{addr}/library/alpine:single"));
    assert_eq!(
        single["digest"],
        seeded.alpine.child("linux/amd64").manifest.digest
    );
    assert_eq!(single["platform"]["architecture"], "amd64");
    let two = entry(&index, &format!("{addr}/library/alpine:two"));
    assert_ne!(two["digest"], seeded.alpine.top.digest);
    let filtered: Value = serde_json::from_slice(
        &std::fs::read(
            bundle.join("blobs/sha256").join(
                two["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    let kept: Vec<&str> = filtered["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["amd64", "arm64"]);
    let pinned = entry(&index, &seeded.alpine.by_digest());
    assert_eq!(pinned["digest"], seeded.alpine.top.digest);
    assert_eq!(
        pinned["annotations"]["io.containerd.image.name"],
        seeded.alpine.by_digest()
    );
    assert_eq!(pinned["annotations"]["dev.ferry.kind"], "image");

    // Shared layers are stored once: exactly the distinct blobs, plus the lock and the filtered index.
    let expected: std::collections::BTreeSet<String> =
        [&seeded.alpine, &seeded.web, &seeded.worker, &seeded.big]
            .iter()
            .flat_map(|p| p.all_blobs())
            .map(|b| b.hex().to_string())
            .collect();
    let files = blob_files(&bundle);
    for hex in &expected {
        assert!(files.contains(hex), "blob {hex} missing from the bundle");
    }
    // Plus the lock, the filtered index and the SBOM (its manifest, the empty config and the
    // CycloneDX and SPDX documents); nothing else, and no temporary files.
    assert_eq!(files.len(), expected.len() + 6, "{files:?}");
    assert!(!bundle.join(".ferry-tmp").exists());

    // ferry verify, then the same without ferry: openssl and sha256sum.
    let verified = json(
        env.ferry()
            .args(["--output", "json", "verify"])
            .arg(&bundle)
            .arg("--key")
            .arg(&public),
    );
    assert_eq!(verified["problems"].as_array().unwrap().len(), 0);
    let sig = std::fs::read_to_string(bundle.join("index.json.sig")).unwrap();
    let der =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sig.trim()).unwrap();
    std::fs::write(env.path().join("sig.der"), der).unwrap();
    run(std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(env.path().join("sig.der"))
        .arg(bundle.join("index.json")));
    let sums: String = files.iter().map(|h| format!("{h}  {h}\n")).collect();
    run_with(
        std::process::Command::new("sha256sum")
            .args(["--check", "--quiet", "--strict"])
            .current_dir(bundle.join("blobs/sha256")),
        Some(sums.as_bytes()),
        std::time::Duration::from_secs(60),
    );

    // skopeo reads every entry straight from the layout, digest for digest, and copies it out.
    for (reference, digest) in [
        (
            format!("{addr}/library/alpine:3.20"),
            seeded.alpine.top.digest.clone(),
        ),
        (format!("{addr}/app/big:1"), seeded.big.top.digest.clone()),
        (seeded.alpine.by_digest(), seeded.alpine.top.digest.clone()),
    ] {
        let raw = run(std::process::Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{reference}", bundle.display())))
        .stdout;
        assert_eq!(digest_bytes(&raw), digest, "skopeo inspect of {reference}");
    }
    let out_dir = env.path().join("copied");
    run(std::process::Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
        .arg(format!(
            "oci:{}:{addr}/library/alpine:two",
            bundle.display()
        ))
        .arg(format!("oci:{}:copy", out_dir.display())));
    assert!(out_dir.join("index.json").exists());

    // inspect: shared bytes between web and worker, totals.
    let inspected = json(
        env.ferry()
            .args(["--output", "json", "inspect"])
            .arg(&bundle),
    );
    let rows = inspected["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[7]["kind"], "sbom");
    let web = rows
        .iter()
        .find(|r| r["reference"] == format!("{addr}/app/web:1"))
        .unwrap();
    assert!(web["shared_size"].as_u64().unwrap() > 0);
    let alpine = rows
        .iter()
        .find(|r| r["reference"] == format!("{addr}/library/alpine:3.20"))
        .unwrap();
    assert_eq!(alpine["platforms"].as_array().unwrap().len(), 3);
    assert!(
        inspected["totals"]["unique_size"].as_u64() < inspected["totals"]["total_size"].as_u64()
    );
    let text = ok(env.ferry().arg("inspect").arg(&bundle));
    assert!(text.contains("app/big:1"), "{text}");
}

#[test]
fn same_lock_gives_same_index_and_rebuild_fetches_only_what_is_missing() {
    let registry = Registry::start_plain();
    let seeded = seed_registry(&registry);
    let addr = registry.addr();
    let env = Env::new();
    let manifest = alpine_web_big(&env, &addr);
    // No lock yet: build locks first.
    let a = env.path().join("a");
    let first = build_json(&env, &manifest, &a);
    assert!(env.path().join("release.lock").exists());
    assert!(first["fetched_blobs"].as_u64().unwrap() > 0);
    let b = env.path().join("b");
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&b)
        .arg("--locked"));
    assert_eq!(
        std::fs::read(a.join("index.json")).unwrap(),
        std::fs::read(b.join("index.json")).unwrap(),
        "same lock, same index.json bytes"
    );
    // Re-run into the same directory: nothing to fetch.
    let again = build_json(&env, &manifest, &a);
    assert_eq!(again["fetched_blobs"], 0);
    // Lose one layer: only it is fetched again.
    let big_layer = seeded.big_layer().clone();
    std::fs::remove_file(a.join("blobs/sha256").join(big_layer.hex())).unwrap();
    let repaired = build_json(&env, &manifest, &a);
    assert_eq!(repaired["fetched_blobs"], 1);
    assert_eq!(repaired["fetched_bytes"], big_layer.size);
    ok(env.ferry().arg("verify").arg(&a).arg("--no-signature"));
}

#[test]
fn verify_names_tampered_missing_and_foreign_signed_content() {
    let registry = Registry::start_plain();
    let seeded = seed_registry(&registry);
    let addr = registry.addr();
    let env = Env::new();
    let (key, public) = env.keys();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[
            &format!("{addr}/app/web:1"),
            &format!("{addr}/app/worker:1"),
        ]),
    );
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key));
    ok(env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public));

    // Without a key: refused unless --no-signature.
    let err = env.ferry().arg("verify").arg(&bundle).output().unwrap();
    assert_eq!(err.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&err.stderr).contains("--no-signature"));

    // A tampered shared layer: named, with both images that use it.
    let shared = seeded.base.image().layers[0].clone();
    let path = bundle.join("blobs/sha256").join(shared.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let stderr_and_out = env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(stderr_and_out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&stderr_and_out.stdout);
    assert!(stdout.contains(&shared.digest), "{stdout}");
    assert!(stdout.contains("corrupt"), "{stdout}");
    assert!(
        stdout.contains(&format!("{addr}/app/web:1"))
            && stdout.contains(&format!("{addr}/app/worker:1")),
        "{stdout}"
    );
    let report = env
        .ferry()
        .args(["--output", "json", "verify"])
        .arg(&bundle)
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["problems"][0]["problem"], "corrupt");
    assert_eq!(report["problems"][0]["digest"], shared.digest);

    // Rebuild repairs? No: a present blob is trusted by build, so remove it and rebuild.
    std::fs::remove_file(&path).unwrap();
    let err = fails(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
    assert!(err.contains("damaged"), "{err}");
    let out = env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--no-signature")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&shared.digest) && stdout.contains("missing"),
        "{stdout}"
    );
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key));
    ok(env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public));

    // A tampered index.json: the signature check fails before anything else.
    let index_path = bundle.join("index.json");
    let original = std::fs::read(&index_path).unwrap();
    let tampered = String::from_utf8(original.clone())
        .unwrap()
        .replace("app/web:1", "app/web:2");
    std::fs::write(&index_path, tampered).unwrap();
    let err = fails(
        env.ferry()
            .arg("verify")
            .arg(&bundle)
            .arg("--key")
            .arg(&public),
    );
    assert!(err.contains("signature"), "{err}");
    std::fs::write(&index_path, &original).unwrap();

    // Signed with another key.
    let other = Env::new();
    let (_, other_public) = other.keys();
    let err = fails(
        env.ferry()
            .arg("verify")
            .arg(&bundle)
            .arg("--key")
            .arg(&other_public),
    );
    assert!(err.contains("signature"), "{err}");

    // Not signed at all.
    std::fs::remove_file(bundle.join("index.json.sig")).unwrap();
    let err = fails(
        env.ferry()
            .arg("verify")
            .arg(&bundle)
            .arg("--key")
            .arg(&public),
    );
    assert!(err.contains("not signed"), "{err}");
    ok(env.ferry().arg("sign").arg(&bundle).arg("--key").arg(&key));
    ok(env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public));

    // A wrong password fails before any download.
    let err = fails(
        env.ferry()
            .env("FERRY_KEY_PASSWORD", "wrong")
            .arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(env.path().join("never"))
            .arg("--key")
            .arg(&key),
    );
    assert!(err.contains("password"), "{err}");
    assert!(!env.path().join("never").exists());
}

#[test]
fn registry_with_basic_auth_needs_the_auth_file() {
    let registry = Registry::start_htpasswd("ferry", "s3cret-pw");
    seed_registry(&registry);
    let addr = registry.addr();
    let env = Env::new();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[&format!("{addr}/app/web:1")]),
    );
    let err = fails(env.ferry().arg("lock").arg(&manifest));
    assert!(err.contains("ferry login"), "{err}");
    env.login(&addr, "ferry", "wrong");
    let err = fails(env.ferry().arg("lock").arg(&manifest));
    assert!(err.contains("unauthorized") && err.contains(&addr), "{err}");
    assert!(!err.contains("wrong"), "the password leaked: {err}");
    env.login(&addr, "ferry", "s3cret-pw");
    let bundle = env.path().join("bundle");
    let out = env
        .ferry()
        .arg("-v")
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret-pw"));
    ok(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
}

#[test]
fn tls_registry_needs_its_ca() {
    let registry = Registry::start(RegistryOptions {
        auth: Some(("ferry".into(), "pw".into())),
        tls: true,
        ..Default::default()
    });
    seed_registry(&registry);
    let addr = registry.addr();
    let env = Env::new();
    env.login(&addr, "ferry", "pw");
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[&format!(
            "{{ref: {addr}/library/alpine:3.20, platforms: [linux/arm64]}}"
        )]),
    );
    // Without the CA, HTTPS fails and plain HTTP is not answered: a clear error.
    let err = fails(env.ferry().arg("lock").arg(&manifest));
    assert!(err.contains(&addr) && err.contains("--ca-file"), "{err}");
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--ca-file")
        .arg(registry.ca_cert_path()));
    let index = index_of(&bundle);
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "arm64");
    ok(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
}

#[test]
fn dead_registry_and_missing_things_fail_clearly() {
    let env = Env::new();
    let port = free_port();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[&format!("127.0.0.1:{port}/app/web:1")]),
    );
    let bundle = env.path().join("bundle");
    let err = fails(
        env.ferry()
            .arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(&bundle),
    );
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot reach"),
        "{err}"
    );

    let registry = Registry::start_plain();
    seed_registry(&registry);
    let addr = registry.addr();
    let manifest = env.manifest(
        "missing.yaml",
        &manifest_text(&[&format!("{addr}/app/nothing:1")]),
    );
    let err = fails(env.ferry().arg("lock").arg(&manifest));
    assert!(
        err.contains("app/nothing:1") && err.contains("not found"),
        "{err}"
    );
    assert!(
        err.contains("missing.yaml:7:"),
        "error should point at the manifest line: {err}"
    );

    let manifest = env.manifest(
        "platform.yaml",
        &manifest_text(&[&format!(
            "{{ref: {addr}/library/alpine:3.20, platforms: [linux/s390x]}}"
        )]),
    );
    let err = fails(env.ferry().arg("lock").arg(&manifest));
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );

    // --locked with no lock, then with a stale lock.
    let manifest = env.manifest(
        "locked.yaml",
        &manifest_text(&[&format!("{addr}/app/web:1")]),
    );
    let err = fails(
        env.ferry()
            .arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(&bundle)
            .arg("--locked"),
    );
    assert!(err.contains("ferry lock"), "{err}");
    ok(env.ferry().arg("lock").arg(&manifest));
    let manifest = env.manifest(
        "locked.yaml",
        &manifest_text(&[
            &format!("{addr}/app/web:1"),
            &format!("{addr}/app/worker:1"),
        ]),
    );
    let err = fails(
        env.ferry()
            .arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(&bundle)
            .arg("--locked"),
    );
    assert!(
        err.contains("out of date") && err.contains("app/worker:1"),
        "{err}"
    );

    // A typo in the manifest: file, line and column.
    let typo = env.manifest(
        "typo.yaml",
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: t, version: \"1\"}\nspec:\n  imagess: []\n",
    );
    let err = fails(env.ferry().arg("lock").arg(&typo));
    assert!(err.contains("typo.yaml:5:"), "{err}");
    assert!(err.contains("imagess"), "{err}");
    if bundle.exists() {
        assert_blobs_match_names(&bundle);
    }
}

#[test]
fn build_survives_503s_and_dropped_connections() {
    let registry = Registry::start_plain();
    let seeded = seed_registry(&registry);
    let proxy = common::faultproxy::FaultProxy::start(
        &registry.addr(),
        common::faultproxy::Faults {
            fail_every: Some(4),
            drop_blob_after: Some(1 << 20),
            drops: 2,
            drop_min_size: 1 << 20,
            ..Default::default()
        },
    );
    let addr = proxy.addr().to_string();
    let env = Env::new();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[
            &format!("{addr}/app/big:1"),
            &format!("{addr}/app/web:1"),
            &format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
        ]),
    );
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle));
    assert!(
        proxy.injected() >= 3,
        "only {} faults injected",
        proxy.injected()
    );
    // A dropped blob resumes from where it stopped.
    assert!(
        proxy
            .request_heads()
            .iter()
            .any(|h| h.contains("/blobs/") && h.contains("range: bytes=")),
        "{:#?}",
        proxy.request_heads()
    );
    ok(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
    assert_blobs_match_names(&bundle);
    let big = seeded.big_layer();
    assert!(bundle.join("blobs/sha256").join(big.hex()).exists());
}

#[test]
fn corrupt_download_is_refused_and_never_stored() {
    let registry = Registry::start_plain();
    let seeded = seed_registry(&registry);
    let proxy = common::faultproxy::FaultProxy::start(
        &registry.addr(),
        common::faultproxy::Faults {
            corrupt_blobs: 1,
            drop_min_size: 1 << 20,
            ..Default::default()
        },
    );
    let addr = proxy.addr().to_string();
    let env = Env::new();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[&format!("{addr}/app/big:1")]),
    );
    let bundle = env.path().join("bundle");
    let err = fails(
        env.ferry()
            .arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(&bundle),
    );
    let big = seeded.big_layer();
    assert!(
        err.contains(&big.digest) && err.contains("hashes to"),
        "{err}"
    );
    assert_eq!(proxy.injected(), 1);
    assert!(!bundle.join("blobs/sha256").join(big.hex()).exists());
    assert!(!bundle.join("index.json").exists());
    assert_blobs_match_names(&bundle);
    // The next run gets clean bytes and completes.
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle));
    ok(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
}

#[test]
fn a_build_asks_v2_once_per_registry() {
    use common::faultproxy::{FaultProxy, Faults};
    let registry = Registry::start_plain();
    seed_registry(&registry);
    let proxy = FaultProxy::start(&registry.addr(), Faults::default());
    let addr = proxy.addr().to_string();
    let env = Env::new();
    let manifest = alpine_web_big(&env, &addr);
    let bundle = env.path().join("bundle");
    // No lock yet: build locks first, then fetches.
    let built = build_json(&env, &manifest, &bundle);
    let heads = proxy.request_heads();
    let probes = heads.iter().filter(|h| h.starts_with("GET /v2/ ")).count();
    let manifests = heads.iter().filter(|h| h.contains("/manifests/")).count();
    let blobs = heads.iter().filter(|h| h.contains("/blobs/")).count();
    // `referrers: signatures` (the default) asks each manifest's referrers listing.
    let referrers = heads.iter().filter(|h| h.contains("/referrers/")).count();
    eprintln!(
        "build: {} requests: {probes} GET /v2/, {manifests} manifest GETs, {blobs} blob GETs, {referrers} referrers listings",
        heads.len()
    );
    // The registry answers /v2/ without a challenge: asked once, not before every request.
    assert_eq!(probes, 1, "{heads:#?}");
    assert_eq!(
        probes + manifests + blobs + referrers,
        heads.len(),
        "{heads:#?}"
    );
    assert!(heads.iter().all(|h| h.starts_with("GET ")), "{heads:#?}");
    // At most two GETs per fetched blob (a config may be read once more for its platform).
    assert!(
        blobs as u64 <= built["fetched_blobs"].as_u64().unwrap() * 2,
        "{built} {heads:#?}"
    );
    ok(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
}
