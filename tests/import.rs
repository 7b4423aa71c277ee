//! End-to-end: import a bundle into real registries (auth, TLS, faults), check the result with
//! skopeo and containerd, and the K3s registries.yaml and login around it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::faultproxy::{FaultProxy, Faults};
use common::ferry::{Env, fails, json, ok};
use common::fixture::SeededBundle;
use common::*;
use serde_json::Value;

/// A signed bundle of the standard images from a plain source registry.
fn build_bundle() -> SeededBundle {
    SeededBundle::build(|addr, seeded| {
        vec![
            format!(
                "{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64, linux/arm/v7]}}"
            ),
            format!("{addr}/app/web:1"),
            format!("{addr}/app/worker:1"),
            format!("{addr}/app/big:1"),
            seeded.base.by_digest(),
        ]
    })
}

/// `ferry --output json import registry BUNDLE --to TO --key ...`.
fn import(b: &SeededBundle, to: &str) -> Command {
    let mut cmd = b.env.ferry();
    cmd.args(["--output", "json", "import", "registry"])
        .arg(&b.bundle)
        .arg("--to")
        .arg(to)
        .arg("--key")
        .arg(&b.public);
    cmd
}

fn inspect_digest(target: &Registry, reference: &str) -> String {
    digest_bytes(&skopeo_inspect_raw(reference, target))
}

#[test]
fn import_into_tls_registry_with_auth_then_again_uploads_nothing() {
    let b = build_bundle();
    let target = Registry::start(RegistryOptions {
        auth: Some(("site".into(), "site-pw".into())),
        tls: true,
        ..Default::default()
    });
    let to = format!("{}/platform", target.addr());
    let mut cmd = import(&b, &to);
    cmd.env("FERRY_REGISTRY_USERNAME", "site")
        .env("FERRY_REGISTRY_PASSWORD", "site-pw")
        .arg("--ca-file")
        .arg(target.ca_cert_path());
    let first = json(&mut cmd);
    assert!(first["uploaded_blobs"].as_u64().unwrap() > 0, "{first}");
    assert!(
        first["mounted_blobs"].as_u64().unwrap() > 0,
        "shared layers should be mounted: {first}"
    );
    let m = b.mapped();
    for (path, digest) in [
        (
            format!("platform/{m}/library/alpine:3.20"),
            b.seeded.alpine.top.digest.clone(),
        ),
        (
            format!("platform/{m}/app/web:1"),
            b.seeded.web.top.digest.clone(),
        ),
        (
            format!("platform/{m}/app/big:1"),
            b.seeded.big.top.digest.clone(),
        ),
        (
            format!("platform/{m}/app/base@{}", b.seeded.base.top.digest),
            b.seeded.base.top.digest.clone(),
        ),
        (
            format!(
                "platform/{m}/library/alpine@{}",
                b.seeded.alpine.child("linux/arm/v7").manifest.digest
            ),
            b.seeded
                .alpine
                .child("linux/arm/v7")
                .manifest
                .digest
                .clone(),
        ),
    ] {
        assert_eq!(inspect_digest(&target, &path), digest, "{path}");
    }
    // Again: nothing uploaded, and it says so.
    let mut cmd = import(&b, &to);
    cmd.env("FERRY_REGISTRY_USERNAME", "site")
        .env("FERRY_REGISTRY_PASSWORD", "site-pw")
        .arg("--ca-file")
        .arg(target.ca_cert_path());
    let second = json(&mut cmd);
    assert_eq!(second["uploaded_blobs"], 0, "{second}");
    assert_eq!(second["mounted_blobs"], 0, "{second}");
    assert_eq!(second["pushed_manifests"], 0, "{second}");
    let mut cmd = b.env.ferry();
    cmd.args(["import", "registry"])
        .arg(&b.bundle)
        .arg("--to")
        .arg(&to)
        .arg("--key")
        .arg(&b.public)
        .arg("--ca-file")
        .arg(target.ca_cert_path())
        .env("FERRY_REGISTRY_USERNAME", "site")
        .env("FERRY_REGISTRY_PASSWORD", "site-pw");
    let text = ok(&mut cmd);
    assert!(text.contains("nothing to upload"), "{text}");

    // Wrong credentials: a clear error naming the registry.
    let mut cmd = import(&b, &to);
    cmd.env("FERRY_REGISTRY_USERNAME", "site")
        .env("FERRY_REGISTRY_PASSWORD", "nope")
        .arg("--ca-file")
        .arg(target.ca_cert_path());
    let err = fails(&mut cmd);
    assert!(
        err.contains("unauthorized") && err.contains(&target.addr()),
        "{err}"
    );
    assert!(!err.contains("nope"));

    // containerd (the runtime inside K3s) pulls and unpacks from the target, digest for digest.
    let containerd = Containerd::start();
    let hosts = b.env.path().join("hosts.d").join(target.addr());
    std::fs::create_dir_all(&hosts).unwrap();
    std::fs::write(
        hosts.join("hosts.toml"),
        format!(
            "server = \"https://{addr}\"\n[host.\"https://{addr}\"]\n  ca = \"{ca}\"\n  capabilities = [\"pull\", \"resolve\"]\n",
            addr = target.addr(),
            ca = target.ca_cert_path().display()
        ),
    )
    .unwrap();
    for (path, digest) in [
        (
            format!("platform/{m}/library/alpine:3.20"),
            &b.seeded.alpine.top.digest,
        ),
        (
            format!("platform/{m}/app/worker:1"),
            &b.seeded.worker.top.digest,
        ),
    ] {
        let reference = format!("{}/{path}", target.addr());
        run(containerd
            .ctr()
            .args([
                "images",
                "pull",
                "--user",
                "site:site-pw",
                "--platform",
                "linux/amd64",
                "--hosts-dir",
            ])
            .arg(b.env.path().join("hosts.d"))
            .arg(&reference));
        let listed = run(containerd.ctr().args(["images", "ls"])).stdout;
        let listed = String::from_utf8_lossy(&listed);
        let line = listed
            .lines()
            .find(|l| l.starts_with(&reference))
            .unwrap_or_else(|| panic!("{reference} not in ctr images ls:\n{listed}"));
        assert!(line.contains(digest.as_str()), "{line}");
        // Unpacked: the snapshotter has the layers.
        run(containerd.ctr().args(["images", "check"]));
    }
}

#[test]
fn unverified_bundle_is_never_pushed() {
    let b = build_bundle();
    let target = Registry::start_plain();
    // Tamper with a layer: the registry refuses its digest, ferry hashes its own copy, names
    // the blob as corrupt and pushes no image (blobs uploaded before it stay, harmless: each
    // passed the registry's digest check).
    let layer = &b.seeded.big.image().layers[0];
    let path = b.bundle.join("blobs/sha256").join(layer.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = fails(&mut import(&b, &target.addr()));
    assert!(
        err.contains(&layer.digest)
            && err.contains("corrupt")
            && err.contains("no image was pushed"),
        "{err}"
    );
    assert_no_manifests(&target);
    // Cut short: refused before the first upload, naming the blob and both sizes.
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, &bytes).unwrap();
    let err = fails(&mut import(&b, &target.addr()));
    assert!(
        err.contains(&layer.digest) && err.contains("nothing was pushed"),
        "{err}"
    );
    assert_no_manifests(&target);
    // Another key: refused too.
    let other = Env::new();
    let (_, other_public) = other.keys();
    let mut cmd = b.env.ferry();
    cmd.args(["import", "registry"])
        .arg(&b.bundle)
        .arg("--to")
        .arg(target.addr())
        .arg("--key")
        .arg(other_public);
    let err = fails(&mut cmd);
    assert!(err.contains("signature"), "{err}");
    // No key at all: a usage error.
    let out = b
        .env
        .ferry()
        .args(["import", "registry"])
        .arg(&b.bundle)
        .arg("--to")
        .arg(target.addr())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Fails when the registry's storage holds any manifest (tag or digest) of any repository.
fn assert_no_manifests(target: &Registry) {
    let found: Vec<_> = walkdir(&target.storage_dir())
        .into_iter()
        .filter(|p| p.ends_with("_manifests"))
        .collect();
    assert!(found.is_empty(), "manifests were pushed: {found:?}");
}

/// Every path below `root`.
fn walkdir(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn bytes_changed_on_the_way_are_sent_again() {
    let b = build_bundle();
    let target = Registry::start_plain();
    // The proxy flips the first byte of one upload: the registry refuses the digest, ferry
    // finds its own copy sound and sends the blob again.
    let proxy = FaultProxy::start(
        &target.addr(),
        Faults {
            corrupt_uploads: 1,
            drop_min_size: 1024,
            ..Default::default()
        },
    );
    let out = b
        .env
        .ferry()
        .args(["import", "registry"])
        .arg(&b.bundle)
        .arg("--to")
        .arg(proxy.addr())
        .arg("--key")
        .arg(&b.public)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(proxy.injected(), 1);
    assert!(stderr.contains("other bytes than were sent"), "{stderr}");
    let m = b.mapped();
    assert_eq!(
        inspect_digest(&target, &format!("{m}/app/big:1")),
        b.seeded.big.top.digest
    );
}

#[test]
fn import_survives_faults_and_a_killed_run_finishes_on_the_next() {
    let b = build_bundle();
    let target = Registry::start_plain();
    // Every 7th request refused: with oci-client's `/v2/` probe before every request gone,
    // each refusal now hits a real request (every 5th used to land on a probe half the time).
    let proxy = FaultProxy::start(
        &target.addr(),
        Faults {
            fail_every: Some(7),
            drop_upload_after: Some(512 * 1024),
            upload_drops: 2,
            ..Default::default()
        },
    );
    let report = json(&mut import(&b, proxy.addr()));
    assert!(
        proxy.injected() >= 3,
        "only {} faults injected",
        proxy.injected()
    );
    assert!(report["uploaded_blobs"].as_u64().unwrap() > 0);
    // The content behind the proxy is complete and exact.
    let m = b.mapped();
    assert_eq!(
        inspect_digest(&target, &format!("{m}/app/big:1")),
        b.seeded.big.top.digest
    );

    // A slow link, killed half-way; the next run finishes and skips what is there.
    let target2 = Registry::start_plain();
    let slow = FaultProxy::start(
        &target2.addr(),
        Faults {
            delay: Some(Duration::from_millis(150)),
            ..Default::default()
        },
    );
    // Killed once a few blobs are uploaded (the survey's HEAD requests come first).
    slow.kill_after_uploads(
        import(&b, slow.addr()).args(["--jobs", "1"]),
        4,
        Duration::from_secs(30),
    );
    let resumed = json(&mut import(&b, &target2.addr()));
    assert!(
        resumed["skipped_blobs"].as_u64().unwrap() > 0,
        "nothing was kept from the killed run: {resumed}"
    );
    for (path, digest) in [
        (
            format!("{m}/library/alpine:3.20"),
            &b.seeded.alpine.top.digest,
        ),
        (format!("{m}/app/big:1"), &b.seeded.big.top.digest),
        (format!("{m}/app/worker:1"), &b.seeded.worker.top.digest),
    ] {
        assert_eq!(&inspect_digest(&target2, &path), digest, "{path}");
    }
}

#[test]
fn registries_config_and_login() {
    let b = build_bundle();
    let text = ok(b
        .env
        .ferry()
        .arg("registries-config")
        .arg("--to")
        .arg("harbor.site.local/platform")
        .arg("--ca-file")
        .arg("/etc/ssl/certs/site-ca.pem")
        .arg(&b.bundle));
    let yaml: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mirror = &yaml["mirrors"][&b.source.addr()];
    assert_eq!(mirror["endpoint"][0], "https://harbor.site.local");
    assert_eq!(
        mirror["rewrite"]["^(.*)$"],
        format!("platform/{}/$1", b.mapped())
    );
    assert_eq!(
        yaml["configs"]["harbor.site.local"]["tls"]["ca_file"],
        "/etc/ssl/certs/site-ca.pem"
    );

    // login: password on standard input, written to the auth file, checked with --verify.
    let target = Registry::start_htpasswd("site", "pw-123");
    let login = |password: &str| {
        let mut cmd = b.env.ferry();
        cmd.args(["login", "--verify", "-u", "site"])
            .arg(target.addr());
        run_with(
            &mut cmd,
            Some(format!("{password}\n").as_bytes()),
            Duration::from_secs(60),
        )
    };
    let out = {
        let mut cmd = b.env.ferry();
        cmd.args(["login", "--verify", "-u", "site"])
            .arg(target.addr())
            .stdin(std::process::Stdio::piped());
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"wrong\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new(&b.env.path().join("home/.docker/config.json")).exists());
    login("pw-123");
    let config = std::fs::read_to_string(b.env.path().join("home/.docker/config.json")).unwrap();
    assert!(config.contains(&target.addr()) && !config.contains("pw-123"));
    // The saved credentials are used by import.
    let report = json(&mut import(&b, &target.addr()));
    assert!(report["uploaded_blobs"].as_u64().unwrap() > 0);
}

#[test]
fn harbor_projects_are_created_before_the_push() {
    use common::faultproxy::AddHeader;
    use common::prism::Prism;
    let b = build_bundle();
    let target = Registry::start_plain();
    let prism = Prism::start_harbor();
    // Harbor answers "no such project" to HEAD, so ferry must create it with a POST.
    let proxy = FaultProxy::start(
        &prism.addr(),
        Faults {
            add_request_headers: vec![AddHeader::on("HEAD", "Prefer", "code=404")],
            ..Default::default()
        },
    );
    let mut cmd = import(&b, &format!("{}/platform", target.addr()));
    cmd.args(["--harbor", "--harbor-public", "--harbor-api"])
        .arg(prism.api_base_via(proxy.addr()))
        .env("FERRY_REGISTRY_USERNAME", "admin")
        .env("FERRY_REGISTRY_PASSWORD", "Harbor12345");
    let report = json(&mut cmd);
    assert_eq!(report["projects"][0]["name"], "platform", "{report}");
    assert_eq!(report["projects"][0]["created"], true, "{report}");
    prism.assert_no_request_violations();
    let heads = proxy.request_heads();
    let post = heads
        .iter()
        .find(|h| h.starts_with("POST /api/v2.0/projects"))
        .unwrap_or_else(|| panic!("no project was created: {heads:?}"));
    assert!(
        post.to_ascii_lowercase().contains("authorization: basic"),
        "{post}"
    );
    // The images went to the registry after the project existed.
    assert_eq!(
        inspect_digest(&target, &format!("platform/{}/app/web:1", b.mapped())),
        b.seeded.web.top.digest
    );

    // Harbor refusing the project (500) stops the import before any push.
    let empty = Registry::start_plain();
    let failing = FaultProxy::start(
        &prism.addr(),
        Faults {
            add_request_headers: vec![
                AddHeader::on("HEAD", "Prefer", "code=404"),
                AddHeader::on("POST", "Prefer", "code=500"),
            ],
            ..Default::default()
        },
    );
    let mut cmd = import(&b, &empty.addr());
    cmd.args(["--harbor", "--harbor-api"])
        .arg(prism.api_base_via(failing.addr()))
        .env("FERRY_REGISTRY_USERNAME", "admin")
        .env("FERRY_REGISTRY_PASSWORD", "Harbor12345");
    let err = fails(&mut cmd);
    assert!(err.contains("nothing was pushed"), "{err}");
    assert!(!err.contains("Harbor12345"));
    let catalog = empty.get("/v2/_catalog").text();
    assert!(catalog.contains("\"repositories\":[]"), "{catalog}");
}

#[test]
fn a_second_import_asks_one_head_per_image_and_v2_once() {
    let b = build_bundle();
    let target = Registry::start_plain();
    let probes = |p: &FaultProxy| {
        p.request_heads()
            .iter()
            .filter(|h| h.starts_with("GET /v2/ "))
            .count()
    };
    // First import: the registry answers /v2/ without a challenge, so it is asked once, not
    // before every request (oci-client's habit).
    let first_proxy = FaultProxy::start(&target.addr(), Faults::default());
    let first = json(&mut import(&b, first_proxy.addr()));
    assert!(first["uploaded_blobs"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(
        probes(&first_proxy),
        1,
        "{:#?}",
        first_proxy.request_heads()
    );

    // Again: every tag already names its image, so one HEAD per image and nothing else, no
    // blob hashed.
    let proxy = FaultProxy::start(&target.addr(), Faults::default());
    let second = json(&mut import(&b, proxy.addr()));
    assert_eq!(second["uploaded_blobs"], 0, "{second}");
    assert_eq!(second["pushed_manifests"], 0, "{second}");
    assert_eq!(second["verified_blobs"], 0, "{second}");
    assert!(second["skipped_blobs"].as_u64().unwrap() > 0, "{second}");
    let heads = proxy.request_heads();
    assert_eq!(probes(&proxy), 1, "{heads:#?}");
    let others: Vec<&String> = heads
        .iter()
        .filter(|h| !h.starts_with("GET /v2/ "))
        .collect();
    assert!(
        others
            .iter()
            .all(|h| h.starts_with("HEAD ") && h.contains("/manifests/")),
        "{others:#?}"
    );
    assert_eq!(
        others.len() as u64,
        second["images"].as_u64().unwrap(),
        "{others:#?}"
    );
}

#[test]
fn harbor_projects_through_a_site_file() {
    use common::faultproxy::AddHeader;
    use common::prism::Prism;
    let b = build_bundle();
    let target = Registry::start_plain();
    let prism = Prism::start_harbor();
    let proxy = FaultProxy::start(
        &prism.addr(),
        Faults {
            add_request_headers: vec![AddHeader::on("HEAD", "Prefer", "code=404")],
            ..Default::default()
        },
    );
    let site = b.env.manifest(
        "site.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Site\nmetadata: {{name: plant-a}}\nspec:\n  registry:\n    host: {}/platform\n    systemDefaultRegistry: true\n    harbor:\n      api: {}\n      public: true\n      contentTrustCosign: true\n  output: site-config\n",
            target.addr(),
            prism.api_base_via(proxy.addr())
        ),
    );
    let report = json(
        b.env
            .ferry()
            .args(["--output", "json", "import"])
            .arg(&b.bundle)
            .arg("--site")
            .arg(&site)
            .arg("--key")
            .arg(&b.public)
            .env("FERRY_REGISTRY_USERNAME", "admin")
            .env("FERRY_REGISTRY_PASSWORD", "Harbor12345"),
    );
    assert_eq!(report["targets"][0]["target"], "registry", "{report}");
    prism.assert_no_request_violations();
    let heads = proxy.request_heads();
    let post = heads
        .iter()
        .find(|h| h.starts_with("POST /api/v2.0/projects"))
        .unwrap_or_else(|| panic!("no project was created: {heads:?}"));
    assert!(
        post.to_ascii_lowercase().contains("authorization: basic"),
        "{post}"
    );
    assert_eq!(
        inspect_digest(&target, &format!("platform/{}/app/web:1", b.mapped())),
        b.seeded.web.top.digest
    );
    // K3s pulls its own images from the site registry: system-default-registry is rendered.
    let vars = std::fs::read_to_string(b.env.path().join("site-config/ansible-vars.yaml")).unwrap();
    assert!(
        vars.contains(&format!("system-default-registry: {}", target.addr())),
        "{vars}"
    );
}
