//! Smoke tests of the integration-test harness itself (tests/common): every registry kind, the image generator, containerd.

mod common;

use std::collections::BTreeSet;
use std::io::Read;

use common::*;
use serde_json::Value;

/// User and password for the auth-enabled registries (a colon in the password on purpose).
const USER: &str = "ferry";
const PASS: &str = "s3cret:pass";

/// Pushes the standard set and checks what the registry serves against the pushed digests.
fn check_seeded(reg: &Registry) -> SeededImages {
    let seeded = seed_registry(reg);

    for pushed in seeded.all() {
        let raw = skopeo_inspect_raw(&pushed.repo_tag(), reg);
        assert_eq!(
            digest_bytes(&raw),
            pushed.digest(),
            "skopeo inspect --raw {}",
            pushed.reference
        );
        let by_digest = skopeo_inspect_raw(&pushed.by_digest(), reg);
        assert_eq!(by_digest, raw, "by digest {}", pushed.by_digest());

        // Every config and layer blob is in the repository with the right size.
        for blob in pushed.content_blobs() {
            let head = reg.http(
                "HEAD",
                &format!("/v2/{}/blobs/{}", pushed.repo, blob.digest),
                reg.credentials(),
            );
            assert_eq!(head.status, 200, "HEAD {} in {}", blob.digest, pushed.repo);
            assert_eq!(
                head.header("Content-Length"),
                Some(blob.size.to_string().as_str()),
                "size of {} in {}",
                blob.digest,
                pushed.repo
            );
        }
    }

    // The multi-arch index: three children whose configs carry their platform.
    let alpine = &seeded.alpine;
    assert!(alpine.is_index());
    assert_eq!(
        alpine.platforms(),
        ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    );
    let index = reg.get(&format!("/v2/{}/manifests/{}", alpine.repo, alpine.tag));
    assert_eq!(index.status, 200);
    assert_eq!(index.header("Docker-Content-Digest"), Some(alpine.digest()));
    assert_eq!(index.header("Content-Type"), Some(MT_INDEX));
    for child in &alpine.images {
        let child_ref = format!("{}@{}", alpine.repo, child.manifest.digest);
        assert_eq!(
            digest_bytes(&skopeo_inspect_raw(&child_ref, reg)),
            child.manifest.digest
        );
        let config = reg.get(&format!(
            "/v2/{}/blobs/{}",
            alpine.repo, child.config.digest
        ));
        assert_eq!(config.status, 200);
        assert_eq!(digest_bytes(&config.body), child.config.digest);
        let config: Value = serde_json::from_slice(&config.body).expect("config is JSON");
        assert_eq!(
            Platform::from_json(&config).as_ref(),
            Some(&child.platform),
            "config platform of {child_ref}"
        );
    }
    let arm = alpine.child("linux/arm/v7");
    let arm_config =
        skopeo_inspect_config_raw(&format!("{}@{}", alpine.repo, arm.manifest.digest), reg);
    assert_eq!(digest_bytes(&arm_config), arm.config.digest);

    // web and worker are base plus their own layers; big has a layer of several MiB.
    let base_layers = &seeded.base.image().layers;
    for app in [&seeded.web, &seeded.worker] {
        let layers = &app.image().layers;
        assert!(layers.len() > base_layers.len());
        assert_eq!(
            &layers[..base_layers.len()],
            &base_layers[..],
            "{}",
            app.repo
        );
    }
    let biggest = seeded.big.image().layers.iter().map(|l| l.size).max();
    assert!(
        biggest.unwrap_or(0) > 7 * 1024 * 1024,
        "big layer: {biggest:?}"
    );

    seeded
}

/// Asserts `creds` are refused by skopeo and by a raw `/v2/` request.
fn assert_refused(reg: &Registry, creds: Option<(&str, &str)>) {
    let out = skopeo_inspect_raw_as("app/base:1", reg, creds);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "skopeo accepted {creds:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "unexpected skopeo error for {creds:?}: {stderr}"
    );
    let v2 = reg.http("GET", "/v2/", creds);
    assert_eq!(v2.status, 401, "/v2/ with {creds:?}");
    assert!(v2.header("WWW-Authenticate").is_some());
}

#[test]
fn plain_registry() {
    let reg = Registry::start_plain();
    assert!(reg.addr().starts_with("127.0.0.1:"));
    assert_eq!(reg.url(), format!("http://{}", reg.addr()));
    assert_eq!(reg.http("GET", "/v2/", None).status, 200);
    check_seeded(&reg);
    let catalog: Value = serde_json::from_slice(&reg.get("/v2/_catalog").body).unwrap();
    let repos: BTreeSet<&str> = catalog["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        repos,
        BTreeSet::from([
            "app/base",
            "app/big",
            "app/web",
            "app/worker",
            "library/alpine"
        ])
    );
}

#[test]
fn htpasswd_registry() {
    let reg = Registry::start_htpasswd(USER, PASS);
    assert_eq!(reg.credentials(), Some((USER, PASS)));
    assert_eq!(reg.http("GET", "/v2/", Some((USER, PASS))).status, 200);
    check_seeded(&reg);
    assert_refused(&reg, Some((USER, "wrong")));
    assert_refused(&reg, Some(("nobody", PASS)));
    assert_refused(&reg, None);
}

#[test]
fn tls_registry() {
    let reg = Registry::start_tls();
    assert_eq!(reg.url(), format!("https://{}", reg.addr()));
    assert!(reg.ca_cert_path().is_file());
    check_seeded(&reg);

    // Without the test CA, verification fails.
    let mut cmd = reg.skopeo();
    cmd.args(["inspect", "--raw", "--no-creds"])
        .arg(format!("docker://{}", reg.reference("app/base:1")));
    let out = run_expect_failure(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certificate signed by unknown authority"),
        "{stderr}"
    );

    // The certificate names both 127.0.0.1 and localhost.
    let text = run(std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(reg.root().join("tls/server.crt")));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"),
        "{text}"
    );
}

#[test]
fn htpasswd_tls_registry() {
    let reg = Registry::start(RegistryOptions {
        auth: Some((USER.to_owned(), PASS.to_owned())),
        tls: true,
        ..Default::default()
    });
    check_seeded(&reg);
    assert_refused(&reg, Some((USER, "wrong")));
    assert_refused(&reg, None);
}

#[test]
fn registries_started_in_parallel_get_distinct_ports() {
    let registries: Vec<Registry> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(Registry::start_plain)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let addrs: BTreeSet<String> = registries.iter().map(Registry::addr).collect();
    assert_eq!(addrs.len(), registries.len(), "{addrs:?}");
    for reg in &registries {
        assert_eq!(reg.http("GET", "/v2/", None).status, 200, "{}", reg.addr());
    }
    let root = registries[0].root().to_path_buf();
    drop(registries);
    assert!(!root.exists(), "temp dir {} left behind", root.display());
}

#[test]
fn generator_is_deterministic_and_layers_are_real_tars() {
    let specs = |seed| {
        vec![
            ImageSpec::new(vec![
                LayerSpec::new(seed, 300_000),
                LayerSpec::random(seed + 1, 10),
            ])
            .platform(Platform::linux_amd64()),
            ImageSpec::new(vec![LayerSpec::new(seed + 2, 5000)]).platform(Platform::linux_arm_v7()),
        ]
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let set_a = OciLayout::create(a.path()).add_tagged_index("x", &specs(7));
    let set_b = OciLayout::create(b.path()).add_tagged_index("x", &specs(7));
    assert_eq!(set_a, set_b);
    assert_eq!(describe_layout_ref(a.path(), "x"), set_a);
    for blob in set_a.all_blobs() {
        let hex = blob.digest.strip_prefix("sha256:").unwrap();
        let path_a = a.path().join("blobs/sha256").join(hex);
        assert_eq!(digest_file(&path_a), blob.digest);
        assert_eq!(
            std::fs::read(&path_a).unwrap(),
            std::fs::read(b.path().join("blobs/sha256").join(hex)).unwrap()
        );
    }
    let other = tempfile::tempdir().unwrap();
    let set_c = OciLayout::create(other.path()).add_tagged_index("x", &specs(8));
    assert_ne!(
        set_a.digest(),
        set_c.digest(),
        "different seeds, different digests"
    );

    // Layers of the standard set: gzip'd tars whose uncompressed digest is the diff_id.
    let layout = standard_layout();
    for set in [&layout.alpine, &layout.base, &layout.big] {
        for image in &set.images {
            assert_eq!(image.layers.len(), image.diff_ids.len());
            for (layer, diff_id) in image.layers.iter().zip(&image.diff_ids) {
                assert_eq!(layer.media_type, MT_LAYER_GZIP);
                let gz = std::fs::read(layout.dir.join("blobs/sha256").join(layer.hex())).unwrap();
                let mut tar = Vec::new();
                flate2::read::GzDecoder::new(&gz[..])
                    .read_to_end(&mut tar)
                    .unwrap();
                assert_eq!(&digest_bytes(&tar), diff_id);
                let mut archive = tar::Archive::new(&tar[..]);
                let mut names = Vec::new();
                let mut distinct_bytes = BTreeSet::new();
                for entry in archive.entries().unwrap() {
                    let mut entry = entry.unwrap();
                    assert_eq!(entry.header().mtime().unwrap(), common::images::FIXED_MTIME);
                    names.push(entry.path().unwrap().to_string_lossy().into_owned());
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).unwrap();
                    distinct_bytes.extend(data.iter().take(4096).copied());
                }
                assert!(names.iter().any(|n| n.ends_with("/README")), "{names:?}");
                assert!(
                    names.iter().any(|n| n.ends_with("/data-000.bin")),
                    "{names:?}"
                );
                assert!(distinct_bytes.len() > 200, "content is not pseudo-random");
            }
            let config: Value = serde_json::from_slice(
                &std::fs::read(layout.dir.join("blobs/sha256").join(image.config.hex())).unwrap(),
            )
            .unwrap();
            assert_eq!(Platform::from_json(&config).as_ref(), Some(&image.platform));
            assert_eq!(
                config["rootfs"]["diff_ids"],
                serde_json::json!(image.diff_ids)
            );
            assert_eq!(config["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
        }
    }
}

#[test]
fn containerd_unpacks_generated_images() {
    let layout = standard_layout();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("layout.tar");
    tar_layout(&layout.dir, &archive);
    let containerd = Containerd::start();
    // Import unpacks the host platform of each image, checking every diff_id.
    let out = containerd.import(&archive, "ferry.test/img");
    for name in ["alpine", "base", "web", "worker", "big"] {
        assert!(
            out.contains(&format!("unpacking ferry.test/img:{name}")),
            "{out}"
        );
    }
    assert_eq!(containerd.image_names().len(), 5);
}

#[test]
fn token_registry() {
    let reg = Registry::start_token(USER, PASS);
    assert_eq!(reg.credentials(), Some((USER, PASS)));
    let server = reg.token_server().expect("token server");

    // Without a token: the Docker challenge naming the realm and service.
    let v2 = reg.http("GET", "/v2/", None);
    assert_eq!(v2.status, 401);
    let challenge = v2.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!("realm=\"{}\"", server.realm()))
            && challenge.contains("service=\"ferry-test-registry\""),
        "{challenge}"
    );
    assert_eq!(reg.http("GET", "/v2/", Some((USER, PASS))).status, 200);

    // skopeo pushes and reads through tokens; raw requests get theirs as a client would.
    let seeded = check_seeded(&reg);
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.status == 200
            && r.user.as_deref() == Some(USER)
            && r.granted
                .iter()
                .any(|g| g.name == "app/web" && g.actions.contains(&"push".to_owned()))),
        "no push token for app/web among {requests:#?}"
    );
    for r in &requests {
        assert_eq!(r.service.as_deref(), Some("ferry-test-registry"));
        for g in &r.granted {
            // Only what was asked for.
            assert!(
                r.scopes.iter().any(|s| {
                    s.starts_with(&format!("{}:{}:", g.kind, g.name))
                        && g.actions
                            .iter()
                            .all(|a| s.rsplit(':').next().unwrap().split(',').any(|x| x == a))
                }),
                "granted {g:?} for {:?}",
                r.scopes
            );
        }
    }
    assert_refused(&reg, Some((USER, "wrong")));
    assert_refused(&reg, Some(("nobody", PASS)));
    assert_refused(&reg, None);
    assert_eq!(
        server
            .request_token(Some((USER, "wrong")), &["repository:app/web:pull"])
            .map_err(|e| e.0),
        Err(401)
    );

    // A token is good for what it grants and nothing else.
    let manifest = format!("/v2/app/web/manifests/{}", seeded.web.digest());
    let web_pull = server.mint(&["repository:app/web:pull"]);
    assert_eq!(reg.http_bearer("GET", &manifest, &web_pull).status, 200);
    let other = reg.http_bearer("GET", "/v2/app/base/manifests/1", &web_pull);
    assert_eq!(other.status, 401);
    assert!(
        other
            .header("WWW-Authenticate")
            .is_some_and(|c| c.contains("insufficient_scope")
                && c.contains("scope=\"repository:app/base:pull\"")),
        "{:?}",
        other.headers
    );
    let nothing = server.mint(&["repository:app/web:delete"]);
    assert_eq!(reg.http_bearer("GET", &manifest, &nothing).status, 401);
    let mut forged = web_pull.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(reg.http_bearer("GET", &manifest, &forged).status, 401);

    // The signing key named by libtrust key ID instead of the certificate chain.
    server.use_kid(true);
    let by_kid = server.mint(&["repository:app/web:pull"]);
    assert!(by_kid.split('.').next().is_some_and(|h| {
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).unwrap(),
        )
        .unwrap();
        header["kid"] == server.kid() && header.get("x5c").is_none()
    }));
    assert_eq!(server.kid().split(':').count(), 12, "{}", server.kid());
    assert_eq!(reg.http_bearer("GET", &manifest, &by_kid).status, 200);
    assert_eq!(
        digest_bytes(&skopeo_inspect_raw("app/web:1", &reg)),
        seeded.web.digest()
    );
}
