//! Signatures, attestations and SBOMs made without ferry (cosign's format built with openssl,
//! OCI 1.1 artifacts with `subject`), carried by lock and build, checked against
//! `spec.verify`, pushed by `import registry` and served by `ferry serve`.

mod common;

use std::path::Path;

use common::ferry::{Env, fails, json, ok};
use common::fileserver::http_request;
use common::referrers::*;
use common::*;
use serde_json::{Value, json};

/// A manifest of one image with `referrers: all` and the `spec.verify` entries given.
fn manifest(env: &Env, image: &str, verify: &str) -> std::path::PathBuf {
    env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: '1'}}\nspec:\n{verify}  images:\n    - {{ref: {image}, referrers: all}}\n"
        ),
    )
}

fn verify_entry(key: &Path, pattern: &str) -> String {
    format!(
        "  verify:\n    - key: {}\n      repositories: ['{pattern}']\n",
        key.display()
    )
}

/// `skopeo inspect --raw` over plain HTTP.
fn skopeo_raw(client: &Registry, reference: &str) -> Vec<u8> {
    run(client
        .skopeo()
        .args(["inspect", "--raw", "--tls-verify=false", "--no-creds"])
        .arg(format!("docker://{reference}")))
    .stdout
}

/// Checks a cosign signature manifest served at `base` (`http://host/v2/<name>`) with openssl.
fn openssl_checks_signature(addr: &str, name: &str, manifest: &[u8], public: &Path, digest: &str) {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let layer = &m["layers"][0];
    let payload = http_request(
        addr,
        "GET",
        &format!("/v2/{name}/blobs/{}", layer["digest"].as_str().unwrap()),
        &[],
    );
    assert_eq!(payload.status, 200);
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    assert!(
        openssl_verify(public, &payload.body, signature),
        "openssl does not verify the payload from {addr}/{name}"
    );
    let claims: Value = serde_json::from_slice(&payload.body).unwrap();
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest
    );
}

/// `ferry sbom` prints the bundle's CycloneDX 1.6 SBOM: valid by CycloneDX's own validator, with
/// the image, its digest and the signature it carries; `--format spdx` the same as SPDX 2.3,
/// valid by spdx-tools, the signature and attestations related to their subject.
fn check_sbom(env: &Env, bundle: &Path, public: &Path, digest: &str, sig: &[u8], others: &[&[u8]]) {
    let spdx = common::sbom::spdx_checked(env, bundle, public);
    let image = common::sbom::spdx_package(&spdx, &digest[7..]);
    let image_id = image["SPDXID"].as_str().unwrap();
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(
        common::sbom::spdx_related(&spdx, "SPDXRef-Release", "CONTAINS"),
        [image_id]
    );
    for (bytes, role) in std::iter::once((sig, "signature"))
        .chain(others.iter().map(|b| (*b, "attestation or SBOM")))
    {
        let carried = common::sbom::spdx_package(&spdx, &digest_bytes(bytes)[7..]);
        let id = carried["SPDXID"].as_str().unwrap();
        assert_eq!(
            common::sbom::spdx_related(&spdx, id, "METAFILE_OF"),
            [image_id],
            "{spdx:#}"
        );
        assert!(
            carried["comment"].as_str().unwrap().starts_with(role),
            "{carried:#}"
        );
    }
    let sbom = common::sbom::checked(env, bundle, public);
    let image = &sbom["components"][0];
    assert_eq!(image["type"], "container");
    assert_eq!(image["hashes"][0]["content"], &digest[7..]);
    let carried: Vec<&Value> = image["components"].as_array().unwrap().iter().collect();
    assert_eq!(carried.len(), 3, "{image:#}");
    assert!(carried.iter().any(|c| {
        c["hashes"][0]["content"] == digest_bytes(sig)[7..]
            && c["properties"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "dev.ferry:signature")
    }));
}

#[test]
fn upstream_referrers_are_carried_checked_pushed_and_served_byte_for_byte() {
    let source = Registry::start_plain();
    let web = push(&standard_layout().dir, "web", &source, "app/web:1");
    let env = Env::new();
    let (upstream_key, upstream_pub) = openssl_key(&env.path().join("upstream"), "cosign");
    let digest = web.digest().to_string();
    let repository = format!("{}/app/web", source.addr());
    let sig = push_cosign_signature(
        &source,
        "app/web",
        &digest,
        &repository,
        &digest,
        &upstream_key,
    );
    let subject = web.top.descriptor();
    let attestation = push_artifact(&source, "app/web", &subject, "application/vnd.in-toto+json", br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1"}"#);
    let sbom = push_artifact(
        &source,
        "app/web",
        &subject,
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    );
    // docker-registry has no referrers API: the tag schema lists them, as oras writes it.
    push_tag_schema(&source, "app/web", &digest, &[&attestation, &sbom]);

    let image = format!("{}:1", repository);
    let path = manifest(
        &env,
        &image,
        &verify_entry(&upstream_pub, &format!("{}/app/*", source.addr())),
    );
    let lock = json(env.ferry().args(["--output", "json", "lock"]).arg(&path));
    let locked = &lock["images"][0];
    let referrers = locked["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 3, "{locked:#}");
    let by_digest = |bytes: &[u8]| {
        referrers
            .iter()
            .find(|r| r["digest"] == digest_bytes(bytes))
            .unwrap_or_else(|| panic!("{} not in {locked:#}", digest_bytes(bytes)))
            .clone()
    };
    assert_eq!(by_digest(&sig)["tag"], cosign_tag(&digest, "sig"));
    assert_eq!(by_digest(&sbom)["artifactType"], "application/spdx+json");
    assert_eq!(by_digest(&attestation)["subject"], digest);
    let lock_file: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("release.lock")).unwrap()).unwrap();
    assert_eq!(
        lock_file["images"][0]["verified"][0]["signature"],
        digest_bytes(&sig)
    );

    let bundle = env.build_signed(&path, "bundle");
    for bytes in [&sig, &attestation, &sbom] {
        assert_eq!(
            std::fs::read(bundle.join("blobs/sha256").join(&digest_bytes(bytes)[7..])).unwrap(),
            *bytes
        );
    }
    let (_, public) = env.keys();
    ok(env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public));
    check_sbom(
        &env,
        &bundle,
        &public,
        &digest,
        &sig,
        &[&attestation, &sbom],
    );
    let inspected = json(
        env.ferry()
            .args(["--output", "json", "inspect"])
            .arg(&bundle),
    );
    let kinds: Vec<&str> = inspected["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["image", "referrer", "referrer", "referrer", "sbom"],
        "{inspected:#}"
    );
    assert_eq!(inspected["entries"][1]["referrer"]["subject"], digest);

    // diff knows them; a delta on this bundle leaves their blobs to it.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("referrers: all", "referrers: none");
    let plain = env.build_signed(&env.manifest("plain.yaml", &text), "plain");
    let diff = json(
        env.ferry()
            .args(["--output", "json", "diff"])
            .arg(&plain)
            .arg(&bundle),
    );
    let added: Vec<&str> = diff["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["referrer"; 3], "{diff:#}");
    let delta = env.path().join("delta");
    ok(env
        .ferry()
        .arg("build")
        .arg(&path)
        .arg("-o")
        .arg(&delta)
        .arg("--since")
        .arg(&bundle));
    let payload = serde_json::from_slice::<Value>(&sig).unwrap()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!delta.join("blobs/sha256").join(&payload[7..]).exists());
    assert!(
        delta
            .join("blobs/sha256")
            .join(&digest_bytes(&sig)[7..])
            .exists()
    );

    // Import: the signature under the subject's mapped name, byte for byte; the OCI 1.1
    // referrers by digest and in the tag schema (docker-registry has no referrers API).
    let target = Registry::start_plain();
    let imported = json(
        env.ferry()
            .args(["--output", "json", "import", "registry"])
            .arg(&bundle)
            .args(["--to", &target.addr(), "--key"])
            .arg(&public),
    );
    assert_eq!(imported["referrers"], 3, "{imported:#}");
    let name = format!("{}/app/web", source.addr().replace(':', "_"));
    let at_site = skopeo_raw(
        &target,
        &format!("{}/{name}:{}", target.addr(), cosign_tag(&digest, "sig")),
    );
    assert_eq!(at_site, sig);
    openssl_checks_signature(&target.addr(), &name, &at_site, &upstream_pub, &digest);
    for bytes in [&attestation, &sbom] {
        let raw = skopeo_raw(
            &target,
            &format!("{}/{name}@{}", target.addr(), digest_bytes(bytes)),
        );
        assert_eq!(&raw, bytes);
    }
    let listing: Value = serde_json::from_slice(&skopeo_raw(
        &target,
        &format!("{}/{name}:{}", target.addr(), cosign_tag(&digest, "")),
    ))
    .unwrap();
    let mut listed: Vec<&str> = listing["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut want = vec![digest_bytes(&attestation), digest_bytes(&sbom)];
    want.sort();
    assert_eq!(listed, want);
    // An import cut off before the tag schema index was updated: the next one completes it.
    push_tag_schema(&target, &name, &digest, &[&attestation]);
    let again = json(
        env.ferry()
            .args(["--output", "json", "import", "registry"])
            .arg(&bundle)
            .args(["--to", &target.addr(), "--key"])
            .arg(&public),
    );
    assert_eq!(again["uploaded_blobs"], 0, "{again:#}");
    let listing: Value = serde_json::from_slice(&skopeo_raw(
        &target,
        &format!("{}/{name}:{}", target.addr(), cosign_tag(&digest, "")),
    ))
    .unwrap();
    assert_eq!(
        listing["manifests"].as_array().unwrap().len(),
        2,
        "{listing:#}"
    );

    // Serve: the cosign tag and the referrers API, with its artifactType filter.
    let served = common::served::Served::start(&env, &bundle, &["--key", public.to_str().unwrap()]);
    let sig_served = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/manifests/{}", cosign_tag(&digest, "sig")),
        &[],
    );
    assert_eq!(sig_served.status, 200);
    assert_eq!(sig_served.body, sig);
    openssl_checks_signature(
        &served.addr,
        &name,
        &sig_served.body,
        &upstream_pub,
        &digest,
    );
    let all = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/referrers/{digest}"),
        &[],
    );
    assert_eq!(all.status, 200);
    let all: Value = serde_json::from_slice(&all.body).unwrap();
    assert_eq!(all["manifests"].as_array().unwrap().len(), 2, "{all:#}");
    let filtered = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/referrers/{digest}?artifactType=application/spdx%2Bjson"),
        &[],
    );
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let filtered: Value = serde_json::from_slice(&filtered.body).unwrap();
    assert_eq!(
        filtered["manifests"],
        json!([{
            "mediaType": MT_MANIFEST, "digest": digest_bytes(&sbom), "size": sbom.len(),
            "artifactType": "application/spdx+json",
            "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
        }])
    );
    let served_sbom = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/manifests/{}", digest_bytes(&sbom)),
        &[],
    );
    assert_eq!(served_sbom.body, sbom);
}

#[test]
fn lock_refuses_bad_signatures_stray_referrers_and_unbounded_listings_with_the_reason() {
    let source = Registry::start_plain();
    let dir = &standard_layout().dir;
    let base = push(dir, "base", &source, "app/base:1");
    let web = push(dir, "web", &source, "app/web:1");
    let env = Env::new();
    let (key, public) = openssl_key(&env.path().join("upstream"), "cosign");
    let (other_key, _) = openssl_key(&env.path().join("other"), "other");
    let policy = verify_entry(&public, &format!("{}/app/*", source.addr()));

    // Signed by another key.
    let base_repo = format!("{}/app/base", source.addr());
    push_cosign_signature(
        &source,
        "app/base",
        base.digest(),
        &base_repo,
        base.digest(),
        &other_key,
    );
    let e = fails(
        env.ferry()
            .arg("lock")
            .arg(manifest(&env, &format!("{base_repo}:1"), &policy)),
    );
    assert!(
        e.contains("is not signed as spec.verify requires")
            && e.contains("by another key")
            && e.contains(&public.display().to_string()),
        "{e}"
    );

    // Signed by the key, but the payload names another image's digest.
    let web_repo = format!("{}/app/web", source.addr());
    push_cosign_signature(
        &source,
        "app/web",
        web.digest(),
        &web_repo,
        base.digest(),
        &key,
    );
    let e = fails(
        env.ferry()
            .arg("lock")
            .arg(manifest(&env, &format!("{web_repo}:1"), &policy)),
    );
    assert!(
        e.contains(&format!(
            "names digest {}, not the locked {}",
            base.digest(),
            web.digest()
        )),
        "{e}"
    );

    // A good signature now, but a listed referrer whose subject is another image.
    push_cosign_signature(
        &source,
        "app/web",
        web.digest(),
        &web_repo,
        web.digest(),
        &key,
    );
    let stray = push_artifact(
        &source,
        "app/web",
        &base.top.descriptor(),
        "application/spdx+json",
        b"{}",
    );
    push_tag_schema(&source, "app/web", web.digest(), &[&stray]);
    let e = fails(
        env.ferry()
            .arg("lock")
            .arg(manifest(&env, &format!("{web_repo}:1"), &policy)),
    );
    assert!(
        e.contains(&format!(
            "referrer {} is listed for {} but its subject is {}",
            digest_bytes(&stray),
            web.digest(),
            base.digest()
        )),
        "{e}"
    );

    // A listing past the bound (65 entries).
    let sbom = push_artifact(
        &source,
        "app/web",
        &web.top.descriptor(),
        "application/spdx+json",
        b"{}",
    );
    let many: Vec<&[u8]> = std::iter::repeat_n(sbom.as_slice(), 65).collect();
    push_tag_schema(&source, "app/web", web.digest(), &many);
    let e = fails(
        env.ferry()
            .arg("lock")
            .arg(manifest(&env, &format!("{web_repo}:1"), &policy)),
    );
    assert!(
        e.contains("go past ferry's bound")
            && e.contains("lists 65 referrers")
            && e.contains("at most 64"),
        "{e}"
    );

    // With `referrers: signatures` the listing is not read (only signature types count), and
    // the signature is checked.
    let text = std::fs::read_to_string(env.path().join("release.yaml"))
        .unwrap()
        .replace("referrers: all", "referrers: signatures");
    let said = ok(env
        .ferry()
        .arg("lock")
        .arg(env.manifest("release.yaml", &text)));
    assert!(
        said.contains("+1 referrers (1 signatures)")
            && said.contains(&format!("signed: {}", public.display())),
        "{said}"
    );
    let lock: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("release.lock")).unwrap()).unwrap();
    assert_eq!(lock["images"][0]["referrers"].as_array().unwrap().len(), 1);

    // A key added to spec.verify makes the lock out of date; build checks it when it relocks.
    let unchecked = text.replace(&policy, "");
    ok(env
        .ferry()
        .arg("lock")
        .arg(env.manifest("release.yaml", &unchecked)));
    let path = env.manifest("release.yaml", &text);
    let bundle = env.path().join("bundle");
    let build = |locked: bool| {
        let mut cmd = env.ferry();
        cmd.arg("build").arg(&path).arg("-o").arg(&bundle);
        if locked {
            cmd.arg("--locked");
        }
        cmd
    };
    let e = fails(&mut build(true));
    assert!(
        e.contains(&format!("must be signed with {}", public.display())),
        "{e}"
    );
    ok(&mut build(false));
    let lock: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("release.lock")).unwrap()).unwrap();
    assert_eq!(
        lock["images"][0]["verified"].as_array().unwrap().len(),
        1,
        "{lock:#}"
    );
}

#[test]
fn lock_follows_paged_referrer_listings_and_the_page_cap_stops_a_long_chain() {
    // Upstream: an image with nine attestations (OCI 1.1 artifacts with `subject`), listed by
    // the tag schema; carried into a bundle that ferry serve then lists through its referrers
    // API a page at a time.
    let source = Registry::start_plain();
    let web = push(&standard_layout().dir, "web", &source, "app/web:1");
    let env = Env::new();
    let digest = web.digest().to_string();
    let subject = web.top.descriptor();
    let artifacts: Vec<Vec<u8>> = (0..9)
        .map(|i| {
            push_artifact(
                &source,
                "app/web",
                &subject,
                "application/vnd.in-toto+json",
                format!(r#"{{"_type":"https://in-toto.io/Statement/v1","n":{i}}}"#).as_bytes(),
            )
        })
        .collect();
    let listed: Vec<&[u8]> = artifacts.iter().map(Vec::as_slice).collect();
    push_tag_schema(&source, "app/web", &digest, &listed);
    let path = manifest(&env, &format!("{}/app/web:1", source.addr()), "");
    ok(env.ferry().arg("lock").arg(&path));
    let bundle = env.build_signed(&path, "bundle");
    let (_, public) = env.keys();
    let name = format!("{}/app/web", source.addr().replace(':', "_"));
    let mut want: Vec<String> = artifacts.iter().map(|a| digest_bytes(a)).collect();
    want.sort();

    // ferry serve, two descriptors a page; a proxy in front records what lock asks.
    let served = common::served::Served::start(
        &env,
        &bundle,
        &[
            "--key",
            public.to_str().unwrap(),
            "--referrers-page-size",
            "2",
        ],
    );
    let first = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/referrers/{digest}"),
        &[],
    );
    assert_eq!(first.status, 200);
    let page: Value = serde_json::from_slice(&first.body).unwrap();
    let on_page = page["manifests"].as_array().unwrap();
    assert_eq!(on_page.len(), 2, "{page:#}");
    assert_eq!(
        first.header("link"),
        Some(
            format!(
                "</v2/{name}/referrers/{digest}?n=2&last={}>; rel=\"next\"",
                on_page[1]["digest"].as_str().unwrap().replace(':', "%3A")
            )
            .as_str()
        )
    );
    // A client's own `n`, with the artifactType filter kept in the next page's link.
    let filtered = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/referrers/{digest}?artifactType=application/vnd.in-toto%2Bjson&n=4"),
        &[],
    );
    let page: Value = serde_json::from_slice(&filtered.body).unwrap();
    assert_eq!(page["manifests"].as_array().unwrap().len(), 4, "{page:#}");
    let link = filtered.header("link").unwrap();
    assert!(
        link.contains("?n=4&last=")
            && link.ends_with("&artifactType=application%2Fvnd.in-toto%2Bjson>; rel=\"next\""),
        "{link}"
    );
    // A cursor that is not in the listing ends it: no way round again.
    let stale = http_request(
        &served.addr,
        "GET",
        &format!("/v2/{name}/referrers/{digest}?last={}", web.digest()),
        &[],
    );
    let page: Value = serde_json::from_slice(&stale.body).unwrap();
    assert_eq!(page["manifests"], json!([]), "{page:#}");
    assert_eq!(stale.header("link"), None);
    let proxy =
        common::faultproxy::FaultProxy::start(&served.addr, common::faultproxy::Faults::default());
    let again = env.manifest(
        "again.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: again, version: '1'}}\nspec:\n  images:\n    - {{ref: '{}/{name}:1', referrers: all}}\n",
            proxy.addr()
        ),
    );
    let lock = json(env.ferry().args(["--output", "json", "lock"]).arg(&again));
    let mut carried: Vec<String> = lock["images"][0]["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect();
    carried.sort();
    assert_eq!(carried, want, "{lock:#}");
    let pages: Vec<String> = proxy
        .request_heads()
        .into_iter()
        .filter(|h| h.starts_with(&format!("GET /v2/{name}/referrers/")))
        .collect();
    assert_eq!(pages.len(), 5, "{pages:#?}");
    assert_eq!(
        pages
            .iter()
            .filter(|h| h.contains("last=sha256%3A"))
            .count(),
        4,
        "{pages:#?}"
    );

    // One descriptor a page: nine pages, past the cap of eight; lock stops with the reason.
    let tight = common::served::Served::start(&env, &bundle, &["--referrers-page-size", "1"]);
    let capped = env.manifest(
        "capped.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: capped, version: '1'}}\nspec:\n  images:\n    - {{ref: '{}/{name}:1', referrers: all}}\n",
            tight.addr
        ),
    );
    let e = fails(env.ferry().arg("lock").arg(&capped));
    assert!(
        e.contains("go past ferry's bound")
            && e.contains("more than 8 listing pages")
            && e.contains("referrers: signatures"),
        "{e}"
    );
    assert!(!env.path().join("capped.lock").exists());
}

#[test]
fn import_into_the_harbor_path_pushes_what_harbor_takes_as_accessories() {
    // What Harbor needs to list a referrer as an accessory of an image: a cosign signature
    // under `sha256-<hex>.sig` in the image's own repository (Harbor's `signature.cosign`,
    // which its cosign content trust counts), or a manifest whose `subject` names the image's
    // digest in that repository (Harbor 2.8+'s referrers support). Harbor itself is not here:
    // its API is Prism's mock of Harbor's description, the OCI side docker-registry.
    let source = Registry::start_plain();
    let web = push(&standard_layout().dir, "web", &source, "app/web:1");
    let env = Env::new();
    let (key, _) = openssl_key(&env.path().join("upstream"), "cosign");
    let digest = web.digest().to_string();
    let repository = format!("{}/app/web", source.addr());
    let sig = push_cosign_signature(&source, "app/web", &digest, &repository, &digest, &key);
    let subject = web.top.descriptor();
    let attestation = push_artifact(
        &source,
        "app/web",
        &subject,
        "application/vnd.in-toto+json",
        br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
    );
    push_tag_schema(&source, "app/web", &digest, &[&attestation]);
    let path = manifest(&env, &format!("{repository}:1"), "");
    ok(env.ferry().arg("lock").arg(&path));
    let bundle = env.build_signed(&path, "bundle");
    let (_, public) = env.keys();

    let target = Registry::start_plain();
    let prism = common::prism::Prism::start_harbor();
    let report = json(
        env.ferry()
            .args(["--output", "json", "import", "registry"])
            .arg(&bundle)
            .args(["--to", &format!("{}/platform", target.addr()), "--key"])
            .arg(&public)
            .args(["--harbor", "--harbor-content-trust-cosign", "--harbor-api"])
            .arg(prism.api_base())
            .env("FERRY_REGISTRY_USERNAME", "admin")
            .env("FERRY_REGISTRY_PASSWORD", "Harbor12345"),
    );
    assert_eq!(report["referrers"], 2, "{report:#}");
    // The Harbor calls (the project exists: Prism's HEAD answers 200; then cosign content
    // trust on, since the one image of the project is signed) keep to Harbor's API.
    prism.assert_no_request_violations();
    assert_eq!(
        prism.requests(),
        [
            "head /api/v2.0/projects",
            "put /api/v2.0/projects/platform/metadatas/enable_content_trust_cosign"
        ]
    );

    let name = format!("platform/{}/app/web", source.addr().replace(':', "_"));
    let image = skopeo_raw(&target, &format!("{}/{name}:1", target.addr()));
    assert_eq!(digest_bytes(&image), digest);
    // The signature: cosign's tag of the image's digest, in the image's repository.
    let at_site = skopeo_raw(
        &target,
        &format!("{}/{name}:{}", target.addr(), cosign_tag(&digest, "sig")),
    );
    assert_eq!(at_site, sig);
    // The attestation: by digest in the same repository, its `subject` the image as pushed.
    let pushed = skopeo_raw(
        &target,
        &format!("{}/{name}@{}", target.addr(), digest_bytes(&attestation)),
    );
    assert_eq!(pushed, attestation);
    let pushed: Value = serde_json::from_slice(&pushed).unwrap();
    assert_eq!(pushed["subject"]["digest"], digest);
    assert_eq!(pushed["subject"]["size"], image.len());
    assert_eq!(
        pushed["subject"]["mediaType"],
        serde_json::from_slice::<Value>(&image).unwrap()["mediaType"]
    );
}
