//! Registries that misbehave, between ferry and a real registry (tests/common/faultproxy.rs):
//! 500 and 429 answers with and without `Retry-After`, stalled requests, connections dropped
//! in the middle of a blob. `build` (pulling) and `import registry` (pushing) must finish with
//! exactly the result of a run without faults, and say that they retry; `Retry-After`
//! (seconds or an HTTP-date) must be waited for, within its cap. A registry that never answers,
//! or stalls in the middle of a blob, must end with an error naming it and the timeout. And
//! the other way round: skopeo pulling from `ferry serve` through the proxy, with connections
//! cut and stalled; the server must keep serving, resume ranges, and hold nothing open after.

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

/// Copies `reference` (through plain HTTP) with skopeo into a `dir:` directory, retrying as
/// skopeo does; returns the directory.
fn skopeo_copy(client: &Registry, reference: &str, dir: &std::path::Path) {
    run(client
        .skopeo()
        .args([
            "copy",
            "--retry-times",
            "3",
            "--src-tls-verify=false",
            "--src-no-creds",
        ])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", dir.display())));
}

/// Checks a skopeo `dir:` copy: the manifest has `digest`, every blob file hashes to its name.
fn assert_copied(what: &str, dir: &std::path::Path, digest: &str) {
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(digest_bytes(&manifest), digest, "{what}: manifest");
    let mut blobs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(sha256_hex(&bytes), name, "{what}: blob {name}");
            blobs += 1;
        }
    }
    assert!(blobs >= 2, "{what}: only {blobs} blobs copied");
}

#[test]
fn serve_keeps_serving_through_dropped_and_stalled_client_connections() {
    let source = Registry::start_plain();
    let seeded = seed_registry(&source);
    let env = Env::new();
    let (_, public) = env.keys();
    build(&env, &source.addr(), &source.addr(), "bundle");
    let bundle = env.path().join("bundle");
    let served = common::served::Served::start(&env, &bundle, &["--key", public.to_str().unwrap()]);
    served.wait_log("signature OK");
    let big = format!("{}/app/big", source.addr().replace(':', "_"));
    let client = Registry::start_plain();
    // The server's own descriptors (bundle files, listener, runtime), before any client.
    let fds_before = served.open_fds();

    // Big blobs cut after 256 KiB three times, and every 5th request held for 1 s. skopeo
    // 1.9 gives up on a cut blob (it does not resume): pull again until it gets through.
    let proxy = FaultProxy::start(
        &served.addr,
        Faults {
            drop_blob_after: Some(256 << 10),
            drops: 3,
            drop_min_size: 1 << 20,
            stall_every: Some((5, Duration::from_secs(1))),
            ..Default::default()
        },
    );
    let mut failed = 0;
    let dir = loop {
        let dir = env.path().join(format!("through-faults-{failed}"));
        let out = run_unchecked(
            client
                .skopeo()
                .args(["copy", "--src-tls-verify=false", "--src-no-creds"])
                .arg(format!("docker://{}/{big}:1", proxy.addr()))
                .arg(format!("dir:{}", dir.display())),
        );
        if out.status.success() {
            break dir;
        }
        failed += 1;
        assert!(
            failed <= 3,
            "skopeo failed more often than connections were cut:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert_copied("skopeo through faults", &dir, seeded.big.digest());
    eprintln!(
        "serve: {} requests through the proxy, {} faults, {failed} pulls cut before one got through",
        proxy.requests(),
        proxy.injected()
    );
    // The next pull through the same proxy (cuts used up, stalls still on) goes through.
    let dir = env.path().join("through-stalls");
    skopeo_copy(&client, &format!("{}/{big}:1", proxy.addr()), &dir);
    assert_copied("skopeo through stalls", &dir, seeded.big.digest());

    // A download cut half-way, resumed with a range as a resuming client does: the two parts
    // make the blob.
    let layer = seeded.big_layer().digest.clone();
    let path = format!("/v2/{big}/blobs/{layer}");
    let cutter = FaultProxy::start(
        &served.addr,
        Faults {
            drop_blob_after: Some(300_000),
            drops: 1,
            drop_min_size: 1 << 20,
            ..Default::default()
        },
    );
    let cut = common::fileserver::http_request(cutter.addr(), "GET", &path, &[]);
    assert_eq!(cut.status, 200);
    let size = seeded.big_layer().size as usize;
    assert!(cut.body.len() < size, "the download was not cut");
    let from = cut.body.len();
    let rest = common::fileserver::http_request(
        cutter.addr(),
        "GET",
        &path,
        &[("Range", &format!("bytes={from}-"))],
    );
    assert_eq!(rest.status, 206);
    assert_eq!(
        rest.header("content-range"),
        Some(format!("bytes {from}-{}/{size}", size - 1).as_str())
    );
    let mut whole = cut.body.clone();
    whole.extend_from_slice(&rest.body);
    assert_eq!(format!("sha256:{}", sha256_hex(&whole)), layer);
    drop(cutter);

    // containerd, as a node pulls: blobs cut mid-body twice, every 4th request held. ctr keeps
    // what it fetched as an ingest and resumes it with a Range request on the next pull; the
    // image it ends with has the bundle's digest.
    let containerd = common::containerd::Containerd::start();
    let node_proxy = FaultProxy::start(
        &served.addr,
        Faults {
            drop_blob_after: Some(400_000),
            drops: 2,
            drop_min_size: 1 << 20,
            stall_every: Some((4, Duration::from_secs(1))),
            ..Default::default()
        },
    );
    let reference = format!("{}/{big}:1", node_proxy.addr());
    let mut cut_pulls = 0;
    loop {
        let out = run_unchecked(
            containerd
                .ctr()
                .args([
                    "images",
                    "pull",
                    "--plain-http",
                    "--platform",
                    "linux/amd64",
                ])
                .arg(&reference),
        );
        if out.status.success() {
            break;
        }
        cut_pulls += 1;
        assert!(
            cut_pulls <= 2,
            "ctr failed more often than connections were cut:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listing =
        String::from_utf8_lossy(&run(containerd.ctr().args(["images", "ls"])).stdout).into_owned();
    let pulled = listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&reference.as_str()))
        .map(|cols| cols[2].to_string())
        .unwrap_or_else(|| panic!("{reference} not in `ctr images ls`:\n{listing}"));
    assert_eq!(pulled, seeded.big.digest(), "ctr through faults");
    let resumed = node_proxy
        .request_heads()
        .iter()
        .filter(|h| h.starts_with("GET ") && h.to_ascii_lowercase().contains("\nrange: bytes="))
        .count();
    eprintln!(
        "serve: ctr through faults: {} requests, {} faults, {cut_pulls} pulls cut, {resumed} ranged resumes",
        node_proxy.requests(),
        node_proxy.injected()
    );
    assert!(
        node_proxy.injected() >= 2,
        "no blob was cut on the way to ctr"
    );
    assert!(
        resumed >= 2,
        "ctr did not resume the two cut blobs with ranges ({resumed} ranged requests)"
    );
    drop(node_proxy);
    containerd.stop();

    // The server kept serving: a clean pull straight from it, and nothing left open.
    let dir = env.path().join("direct");
    skopeo_copy(&client, &format!("{}/{big}:1", served.addr), &dir);
    assert_copied("skopeo direct", &dir, seeded.big.digest());
    drop(proxy);
    let fds = common::util::wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        let now = served.open_fds();
        (now <= fds_before).then_some(now)
    });
    assert!(
        fds.is_some(),
        "ferry serve holds {} descriptors after the clients left, {fds_before} before",
        served.open_fds()
    );
    let log = served.log();
    assert!(!log.contains("panicked"), "{log}");
}
