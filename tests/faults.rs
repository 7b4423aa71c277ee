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

/// `ferry build` of the images at `addr` into `out`; returns index.json with `addr` written as
/// `canonical` and without the lock's digest (so builds through different proxies compare
/// byte for byte), and stderr.
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
    let index = std::fs::read_to_string(bundle.join("index.json")).unwrap();
    // The lock and the release SBOM travel in the bundle and name the registry, so their
    // digests differ per address: compare the rest.
    let mut index: serde_json::Value =
        serde_json::from_str(&index.replace(addr, canonical)).unwrap();
    if let Some(annotations) = index["annotations"].as_object_mut() {
        annotations.remove("dev.ferry.lock.digest");
    }
    for entry in index["manifests"].as_array_mut().unwrap() {
        if entry["annotations"]["dev.ferry.kind"] == "sbom" {
            entry["digest"] = "SBOM (names the registry)".into();
        }
    }
    let index = serde_json::to_string_pretty(&index).unwrap();
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

/// Checks that the client waited at least `at_least` after each injected failure before it
/// asked again, and not much more than `at_most`.
fn assert_waited(name: &str, proxy: &FaultProxy, at_least: Duration, at_most: Duration) {
    let waits = proxy.waits_after_failures();
    assert!(!waits.is_empty(), "{name}: no failure was injected");
    for (line, waited) in waits {
        let waited = waited.unwrap_or_else(|| panic!("{name}: {line} was never asked again"));
        assert!(
            waited >= at_least && waited <= at_most,
            "{name}: {line} was asked again after {waited:?}, not within {at_least:?}..{at_most:?}"
        );
        eprintln!("{name}: {line} asked again after {waited:?}");
    }
}

/// The retry lines (warnings) of a run's stderr.
fn retry_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect()
}

#[test]
fn retry_after_is_waited_for_on_pulls_and_pushes() {
    let source = Registry::start_plain();
    let seeded = seed_registry(&source);
    let env = Env::new();
    let (_, public) = env.keys();
    let (want, _) = build(&env, &source.addr(), "SOURCE", "direct");
    let manifest_get = vec!["GET /v2/", "/manifests/"];
    let manifest_put = vec!["PUT /v2/", "/manifests/"];
    let pulls = [
        (
            "pull: 429 with Retry-After: 2 (seconds)",
            Faults {
                fail_matching: Some((manifest_get.clone(), 1)),
                fail_status: Some(429),
                retry_after: Some(2),
                ..Default::default()
            },
            "429 Too Many Requests",
        ),
        (
            "pull: 503 with Retry-After: an HTTP-date 3 s ahead",
            Faults {
                fail_matching: Some((manifest_get.clone(), 1)),
                retry_after_in: Some(Duration::from_secs(3)),
                ..Default::default()
            },
            "503 Service Unavailable",
        ),
    ];
    for (i, (name, faults, status)) in pulls.into_iter().enumerate() {
        let proxy = FaultProxy::start(&source.addr(), faults);
        let (got, stderr) = build(&env, proxy.addr(), "SOURCE", &format!("after{i}"));
        assert_eq!(
            got, want,
            "{name}: the bundle differs from a build without faults"
        );
        // The HTTP-date has whole seconds: up to 1 s less than 3 s.
        assert_waited(name, &proxy, Duration::from_secs(2), Duration::from_secs(6));
        let lines = retry_lines(&stderr);
        assert!(
            lines.iter().any(|l| l.contains(proxy.addr())
                && l.contains(status)
                && l.contains("(attempt 2 of 5), as its Retry-After asks")),
            "{name}: no line says what it retries and why:\n{stderr}"
        );
    }

    let mapped = source.addr().replace(':', "_");
    let pushes = [
        (
            "push: 429 with Retry-After: 2 (seconds)",
            Faults {
                fail_matching: Some((manifest_put.clone(), 1)),
                fail_status: Some(429),
                retry_after: Some(2),
                ..Default::default()
            },
        ),
        (
            "push: 503 with Retry-After: an HTTP-date 3 s ahead",
            Faults {
                fail_matching: Some((manifest_put.clone(), 1)),
                retry_after_in: Some(Duration::from_secs(3)),
                ..Default::default()
            },
        ),
    ];
    for (name, faults) in pushes {
        let target = Registry::start_plain();
        let proxy = FaultProxy::start(&target.addr(), faults);
        let out = run(env
            .ferry()
            .args(["import", "registry"])
            .arg(env.path().join("direct"))
            .arg("--to")
            .arg(format!("{}/platform", proxy.addr()))
            .arg("--key")
            .arg(&public));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_waited(name, &proxy, Duration::from_secs(2), Duration::from_secs(6));
        assert!(
            retry_lines(&stderr)
                .iter()
                .any(|l| l.contains("as its Retry-After asks")),
            "{name}: no line says it waits as asked:\n{stderr}"
        );
        for (repo, pushed) in [("app/web:1", &seeded.web), ("app/big:1", &seeded.big)] {
            let raw = skopeo_inspect_raw(&format!("platform/{mapped}/{repo}"), &target);
            assert_eq!(digest_bytes(&raw), pushed.digest(), "{name}: {repo}");
        }
    }

    // A wait longer than the cap is cut to it, and the line says so.
    let proxy = FaultProxy::start(
        &source.addr(),
        Faults {
            fail_matching: Some((manifest_get, 1)),
            fail_status: Some(429),
            retry_after: Some(3600),
            ..Default::default()
        },
    );
    let manifest = env.images_manifest("capped.yaml", &images(proxy.addr()));
    let out = run(env
        .ferry()
        .env("FERRY_MAX_RETRY_WAIT", "1")
        .arg("lock")
        .arg(&manifest));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_waited(
        "capped",
        &proxy,
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    assert!(
        stderr.contains("asked to wait 3600 s (Retry-After), cut to ferry's longest wait of 1 s"),
        "the cut is not said:\n{stderr}"
    );
}

/// A server that accepts connections and never says a word: returns its address; it stops
/// with the test process.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    addr
}

#[test]
fn a_registry_that_never_answers_fails_after_the_timeout() {
    let env = Env::new();
    let addr = silent_server();
    let manifest = env.images_manifest("silent.yaml", &[format!("{addr}/app/web:1")]);
    let started = std::time::Instant::now();
    let out = run_unchecked(
        env.ferry()
            .args(["--timeout", "1", "--retries", "1", "lock"])
            .arg(&manifest),
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // HTTPS, then plain HTTP (a loopback registry), 1 s each.
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{stderr}");
    for part in [addr.as_str(), "no answer within 1 s", "--timeout"] {
        assert!(stderr.contains(part), "{part:?} not in:\n{stderr}");
    }
    eprintln!("silent registry: failed after {took:?}: {stderr}");
}

#[test]
fn a_registry_that_stalls_mid_blob_fails_after_the_timeout() {
    let source = Registry::start_plain();
    seed_registry(&source);
    let env = Env::new();
    let proxy = FaultProxy::start(
        &source.addr(),
        Faults {
            stall_blob_after: Some(4096),
            drop_min_size: 1 << 20,
            ..Default::default()
        },
    );
    let manifest = env.images_manifest("stalls.yaml", &[format!("{}/app/big:1", proxy.addr())]);
    let bundle = env.path().join("stalled");
    let started = std::time::Instant::now();
    // The timeout from the environment this time.
    let out = run_unchecked(
        env.ferry()
            .env("FERRY_TIMEOUT", "2")
            .env("FERRY_RETRIES", "1")
            .arg("build")
            .arg(&manifest)
            .arg("-o")
            .arg(&bundle),
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(proxy.injected() > 0, "no blob was stalled:\n{stderr}");
    // The stall after 4 KiB counts as progress, so the blob gets 2 attempts after it: at
    // most 3 silences of 2 s and the waits between.
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{stderr}");
    for part in [
        proxy.addr(),
        "did not answer",
        "within 2 s (the timeout)",
        "--timeout SECONDS",
        "run the same command again to resume",
    ] {
        assert!(stderr.contains(part), "{part:?} not in:\n{stderr}");
    }
    common::ferry::assert_blobs_match_names(&bundle);
    eprintln!("stalling registry: failed after {took:?}");
}
