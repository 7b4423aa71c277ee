//! End-to-end: `ferry serve` answers containerd, skopeo and plain HTTP clients from a bundle,
//! digest for digest; over TLS; and refuses bundles it cannot vouch for.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::ferry::{Env, ok};
use common::served::Served;
use common::*;
use serde_json::Value;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A minimal HTTP/1.0 client, so the headers checked are exactly what the server sent.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    common::fileserver::http_request(addr, method, path, headers)
}

fn get(addr: &str, path: &str) -> HttpResponse {
    http(addr, "GET", path, &[])
}

fn json_body(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// Asserts an OCI error answer: status, `errors[0].code`, and no body for HEAD.
fn assert_error(response: &HttpResponse, status: u16, code: &str) {
    assert_eq!(
        response.status,
        status,
        "{:?} ({} bytes)",
        response.header("content-type"),
        response.body.len()
    );
    assert_eq!(
        response.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let body = json_body(response);
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    assert!(
        !body["errors"][0]["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
}

fn manifest_text(entries: &[String]) -> String {
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: serve-test, version: \"1.0.0\"}\nspec:\n  platforms: [linux/amd64]\n  images:\n",
    );
    for e in entries {
        text += &format!("    - {e}\n");
    }
    text
}

/// Builds a signed bundle of `entries`; returns its directory and the public key.
fn build(env: &Env, entries: &[String]) -> (PathBuf, PathBuf) {
    let (key, public) = env.keys();
    let manifest = env.manifest("release.yaml", &manifest_text(entries));
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .args(["-q", "build"])
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key));
    (bundle, public)
}

/// The digest of the bundle entry for `reference`, from index.json.
fn entry_digest(bundle: &Path, reference: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("no entry {reference}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A registry host as a repository path segment: `127.0.0.1:5000` -> `127.0.0.1_5000`.
fn mapped(host: &str) -> String {
    host.replace(':', "_")
}

/// `skopeo inspect --raw` through plain HTTP, isolated by `client`'s policy and auth files.
fn skopeo_raw(client: &Registry, reference: &str) -> Vec<u8> {
    run(client
        .skopeo()
        .args(["inspect", "--raw", "--tls-verify=false", "--no-creds"])
        .arg(format!("docker://{reference}")))
    .stdout
}

/// Pulls with `ctr` and returns the digest containerd recorded for the image.
fn ctr_pull(containerd: &Containerd, reference: &str, extra: &[&str]) -> String {
    run(containerd
        .ctr()
        .args(["images", "pull", "--platform", "linux/amd64"])
        .args(extra)
        .arg(reference));
    let out = run(containerd.ctr().args(["images", "ls"]));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&reference))
        .map(|cols| cols[2].to_string())
        .unwrap_or_else(|| panic!("{reference} not in `ctr images ls`:\n{listing}"))
}

#[test]
fn containerd_skopeo_and_http_clients_get_the_bundle_digest_for_digest() {
    let upstream = Registry::start_plain();
    let seeded = seed_registry(&upstream);
    let u = upstream.addr();
    push(
        &seeded.layout_dir,
        "alpine",
        &upstream,
        "library/alpine:single",
    );
    push(
        &seeded.layout_dir,
        "alpine",
        &upstream,
        "library/alpine:two",
    );
    // A second upstream with the same repository path: the short name `app/web` is ambiguous.
    let other = Registry::start_plain();
    let o = other.addr();
    push(&seeded.layout_dir, "web", &other, "app/web:1");
    let env = Env::new();
    let (bundle, public) = build(
        &env,
        &[
            format!(
                "{{ref: {u}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64, linux/arm/v7]}}"
            ),
            format!("{u}/library/alpine:single"),
            format!("{{ref: {u}/library/alpine:two, platforms: [linux/amd64, linux/arm64]}}"),
            seeded.alpine.by_digest(),
            format!("{u}/app/web:1"),
            format!("{u}/app/big:1"),
            format!("{o}/app/web:1"),
        ],
    );
    // Whatever is pulled from now on can only come from the bundle.
    upstream.stop();

    let served = Served::start(&env, &bundle, &["--key", public.to_str().unwrap()]);
    let s = served.addr.clone();
    served.wait_log("signature OK");
    let (mu, mo) = (mapped(&u), mapped(&o));
    let alpine = format!("{mu}/library/alpine");
    let amd64 = seeded.alpine.child("linux/amd64").manifest.clone();
    let two = entry_digest(&bundle, &format!("{u}/library/alpine:two"));

    // --- Plain HTTP: the API as the distribution spec says. ---
    let base = get(&s, "/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    let path = format!("/v2/{alpine}/manifests/3.20");
    let head = http(&s, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some(OCI_INDEX));
    assert_eq!(
        head.header("docker-content-digest"),
        Some(seeded.alpine.top.digest.as_str())
    );
    assert_eq!(
        head.header("content-length"),
        Some(seeded.alpine.top.size.to_string().as_str())
    );
    assert!(head.body.is_empty());
    let got = get(&s, &path);
    assert_eq!(digest_bytes(&got.body), seeded.alpine.top.digest);
    assert_eq!(got.header("content-type"), Some(OCI_INDEX));

    // A child manifest of the index, by digest; and the single-platform entry by tag.
    let child = get(&s, &format!("/v2/{alpine}/manifests/{}", amd64.digest));
    assert_eq!(child.status, 200);
    assert_eq!(child.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(digest_bytes(&child.body), amd64.digest);
    let single = get(&s, "/v2/library/alpine/manifests/single");
    assert_eq!(digest_bytes(&single.body), amd64.digest);

    // Blobs stream whole, by range (206), and refuse a range past the end (416).
    let layer = seeded.big_layer().clone();
    let big = format!("{mu}/app/big");
    let blob_path = format!("/v2/{big}/blobs/{}", layer.digest);
    let file = std::fs::read(bundle.join("blobs/sha256").join(layer.hex())).unwrap();
    let head = http(&s, "HEAD", &blob_path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(layer.size.to_string().as_str())
    );
    assert_eq!(
        head.header("docker-content-digest"),
        Some(layer.digest.as_str())
    );
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    let whole = get(&s, &blob_path);
    assert_eq!(whole.status, 200);
    assert_eq!(digest_bytes(&whole.body), layer.digest);
    let part = http(&s, "GET", &blob_path, &[("Range", "bytes=1000-1999")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000-1999/{}", layer.size).as_str())
    );
    assert_eq!(part.header("content-length"), Some("1000"));
    assert_eq!(part.body, &file[1000..2000]);
    let tail = http(&s, "GET", &blob_path, &[("Range", "bytes=-10")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &file[file.len() - 10..]);
    let past = http(
        &s,
        "GET",
        &blob_path,
        &[("Range", &format!("bytes={}-", layer.size))],
    );
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{}", layer.size).as_str())
    );

    // Tags, paginated, and the catalog.
    let tags = json_body(&get(&s, &format!("/v2/{alpine}/tags/list")));
    assert_eq!(tags["name"], alpine.as_str());
    assert_eq!(tags["tags"], serde_json::json!(["3.20", "single", "two"]));
    let page = get(&s, &format!("/v2/{alpine}/tags/list?n=2"));
    assert_eq!(
        json_body(&page)["tags"],
        serde_json::json!(["3.20", "single"])
    );
    let link = page.header("link").unwrap().to_string();
    assert!(
        link.contains("last=single") && link.contains("rel=\"next\""),
        "{link}"
    );
    let next = get(&s, &format!("/v2/{alpine}/tags/list?n=2&last=single"));
    assert_eq!(json_body(&next)["tags"], serde_json::json!(["two"]));
    assert!(next.header("link").is_none());
    let catalog = json_body(&get(&s, "/v2/_catalog"));
    let mut repositories = vec![
        format!("{mu}/app/big"),
        format!("{mu}/app/web"),
        alpine.clone(),
        format!("{mo}/app/web"),
    ];
    repositories.sort();
    assert_eq!(catalog["repositories"], serde_json::json!(repositories));

    // Errors in OCI form; digests of another repository are unknown here, as in a real registry.
    assert_error(&get(&s, "/v2/no/such/manifests/1"), 404, "NAME_UNKNOWN");
    assert_error(
        &get(&s, &format!("/v2/{alpine}/manifests/nope")),
        404,
        "MANIFEST_UNKNOWN",
    );
    let web = seeded.web.image();
    let web_only = web
        .layers
        .iter()
        .find(|l| !seeded.big.image().layers.contains(l))
        .unwrap();
    assert_error(
        &get(&s, &format!("/v2/{big}/blobs/{}", web_only.digest)),
        404,
        "BLOB_UNKNOWN",
    );
    assert_error(
        &get(&s, &format!("/v2/{big}/manifests/{}", web.manifest.digest)),
        404,
        "MANIFEST_UNKNOWN",
    );
    let missing = http(
        &s,
        "HEAD",
        &format!("/v2/{big}/manifests/{}", web.manifest.digest),
        &[],
    );
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty());
    // As distribution-spec's conformance suite expects: a name outside the tag grammar and a
    // well-formed sha512 digest are unknown (404), and every code is in the spec's table.
    assert_error(
        &get(&s, &format!("/v2/{big}/manifests/.INVALID_MANIFEST_NAME")),
        404,
        "MANIFEST_UNKNOWN",
    );
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    assert_error(
        &get(&s, &format!("/v2/{big}/manifests/{sha512}")),
        404,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &get(&s, &format!("/v2/{big}/blobs/{sha512}")),
        404,
        "BLOB_UNKNOWN",
    );
    assert_error(
        &get(&s, &format!("/v2/{big}/blobs/sha256:abc")),
        400,
        "DIGEST_INVALID",
    );
    assert_error(
        &get(&s, &format!("/v2/{alpine}/tags/list?n=x")),
        400,
        "UNSUPPORTED",
    );
    // The referrers API answers for bundles without referrers too: an empty index.
    let none = get(
        &s,
        &format!("/v2/{big}/referrers/{}", seeded.big.top.digest),
    );
    assert_eq!(none.status, 200);
    assert_eq!(json_body(&none)["manifests"], serde_json::json!([]));
    assert_eq!(
        get(&s, &format!("/v2/{mu}/app/web/blobs/{}", web_only.digest)).status,
        200
    );
    // `app/web` exists under two upstream hosts: the short name is refused, `ns` decides.
    let ambiguous = get(&s, "/v2/app/web/manifests/1");
    assert_error(&ambiguous, 404, "NAME_UNKNOWN");
    assert!(ambiguous.text().contains(&format!("{mo}/app/web")));
    let by_ns = get(&s, &format!("/v2/app/web/manifests/1?ns={o}"));
    assert_eq!(digest_bytes(&by_ns.body), seeded.web.top.digest);
    // Read-only: every write is refused with 405.
    for (method, path) in [
        ("PUT", format!("/v2/{mu}/app/web/manifests/1")),
        ("DELETE", format!("/v2/{mu}/app/web/manifests/1")),
        ("DELETE", format!("/v2/{big}/blobs/{}", layer.digest)),
        ("POST", format!("/v2/{big}/blobs/uploads/")),
        ("PATCH", format!("/v2/{big}/blobs/uploads/1")),
    ] {
        let refused = http(&s, method, &path, &[]);
        assert_error(&refused, 405, "UNSUPPORTED");
        assert_eq!(refused.header("allow"), Some("GET, HEAD"));
    }

    // --- skopeo: the exact bytes of each entry, then a copy into a real registry. ---
    for (reference, digest) in [
        (
            format!("{s}/{alpine}:3.20"),
            seeded.alpine.top.digest.clone(),
        ),
        (format!("{s}/{alpine}:two"), two.clone()),
        (
            format!("{s}/{alpine}@{}", seeded.alpine.top.digest),
            seeded.alpine.top.digest.clone(),
        ),
        (format!("{s}/{mu}/app/big:1"), seeded.big.top.digest.clone()),
    ] {
        assert_eq!(
            digest_bytes(&skopeo_raw(&other, &reference)),
            digest,
            "{reference}"
        );
    }
    run(other
        .skopeo()
        .args(["copy", "--all", "--preserve-digests", "--retry-times", "2"])
        .args(["--src-tls-verify=false", "--src-no-creds"])
        .args(other.skopeo_flags("dest-"))
        .arg(format!("docker://{s}/{alpine}:3.20"))
        .arg(format!("docker://{o}/copied/alpine:3.20")));
    assert_eq!(
        digest_bytes(&skopeo_raw(&other, &format!("{o}/copied/alpine:3.20"))),
        seeded.alpine.top.digest
    );

    // --- containerd, as K3s runs it: pulls and unpacks, digest for digest. ---
    let containerd = Containerd::start();
    let plain = ["--plain-http"];
    assert_eq!(
        ctr_pull(&containerd, &format!("{s}/{alpine}:3.20"), &plain),
        seeded.alpine.top.digest
    );
    assert_eq!(
        ctr_pull(&containerd, &format!("{s}/{alpine}:single"), &plain),
        amd64.digest
    );
    assert_eq!(
        ctr_pull(
            &containerd,
            &format!("{s}/{alpine}@{}", seeded.alpine.top.digest),
            &plain
        ),
        seeded.alpine.top.digest
    );
    assert_eq!(
        ctr_pull(&containerd, &format!("{s}/library/alpine:two"), &plain),
        two
    );
    // A mirror for the (stopped) upstream host, as K3s configures one without a rewrite:
    // containerd asks for `app/web` and names the upstream in `ns`.
    let hosts = env.path().join("hosts.d");
    std::fs::create_dir_all(hosts.join(&u)).unwrap();
    std::fs::write(
        hosts.join(&u).join("hosts.toml"),
        format!(
            "server = \"http://{u}\"\n[host.\"http://{s}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
    assert_eq!(
        ctr_pull(
            &containerd,
            &format!("{u}/app/web:1"),
            &["--hosts-dir", hosts.to_str().unwrap()]
        ),
        seeded.web.top.digest
    );
    let log = served.wait_log("/v2/app/web/manifests/1?ns=");

    // One log line per request: method, path, status, bytes, duration.
    let line = log
        .lines()
        .find(|l| l.contains(&format!("GET {blob_path} 200")))
        .unwrap_or_else(|| panic!("no log line for {blob_path}:\n{log}"));
    assert!(line.contains(&format!(" {} B ", layer.size)), "{line}");
    assert!(line.ends_with(" ms"), "{line}");

    // SIGTERM stops it cleanly.
    let (status, log) = served.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// Writes a test CA and a certificate for 127.0.0.1 signed by it; returns (ca, cert, key).
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = || {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(dir);
        cmd
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(openssl()
        .args(["req", "-x509", "-sha256", "-days", "2"])
        .args(ec)
        .args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=ferry serve test CA",
        ])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(openssl().args(["req", "-new", "-sha256"]).args(ec).args([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]));
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(openssl()
        .args(["x509", "-req", "-sha256", "-days", "2", "-in", "server.csr"])
        .args(["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"])
        .args(["-extfile", "server.ext", "-out", "server.crt"]));
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

#[test]
fn serves_https_with_a_certificate_from_a_private_ca() {
    let upstream = Registry::start_plain();
    let layout = standard_layout();
    let web = push(&layout.dir, "web", &upstream, "app/web:1");
    let u = upstream.addr();
    let env = Env::new();
    let (bundle, _) = build(&env, &[format!("{u}/app/web:1")]);
    let (ca, cert, key) = test_certificate(&env.path().join("tls"));
    let served = Served::start(
        &env,
        &bundle,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    served.wait_log("was not checked");
    let certs = env.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&ca, certs.join("ca.crt")).unwrap();
    let reference = format!("docker://{}/app/web:1", served.addr);
    let raw = run(upstream
        .skopeo()
        .args(["inspect", "--raw", "--no-creds"])
        .arg(format!("--cert-dir={}", certs.display()))
        .arg(&reference))
    .stdout;
    assert_eq!(digest_bytes(&raw), web.top.digest);
    // Without the CA the certificate is not trusted: it really is TLS with this certificate.
    let empty = env.path().join("no-certs");
    std::fs::create_dir_all(&empty).unwrap();
    let refused = run_unchecked(
        upstream
            .skopeo()
            .args(["inspect", "--raw", "--no-creds"])
            .arg(format!("--cert-dir={}", empty.display()))
            .arg(&reference),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Runs `ferry serve` expecting it to refuse to start; returns its standard error.
fn refuses(env: &Env, bundle: &Path, extra: &[&str]) -> String {
    let out = run_with(
        env.ferry()
            .arg("serve")
            .arg(bundle)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "ferry serve should refuse to start:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn refuses_a_tampered_index_or_a_bundle_with_missing_or_corrupt_content() {
    let upstream = Registry::start_plain();
    let layout = standard_layout();
    let web = push(&layout.dir, "web", &upstream, "app/web:1");
    let u = upstream.addr();
    let env = Env::new();
    let (bundle, public) = build(&env, &[format!("{u}/app/web:1")]);
    let key = ["--key", public.to_str().unwrap()];

    // A changed index.json no longer matches its signature.
    let index = bundle.join("index.json");
    let original = std::fs::read(&index).unwrap();
    std::fs::write(
        &index,
        String::from_utf8(original.clone())
            .unwrap()
            .replace("app/web:1", "app/web:2"),
    )
    .unwrap();
    let err = refuses(&env, &bundle, &key);
    assert!(err.contains("signature check failed"), "{err}");
    std::fs::write(&index, &original).unwrap();

    // The manifest is missing: named, with the entry that needs it.
    let manifest = bundle.join("blobs/sha256").join(web.image().manifest.hex());
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let err = refuses(&env, &bundle, &key);
    assert!(err.contains("cannot serve"), "{err}");
    assert!(
        err.contains(&format!(
            "manifest {} is missing",
            web.image().manifest.digest
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{u}/app/web:1")), "{err}");
    assert!(err.contains("ferry verify"), "{err}");

    // The manifest is corrupt.
    let mut corrupt = bytes.clone();
    corrupt[0] ^= 0x20;
    std::fs::write(&manifest, &corrupt).unwrap();
    let err = refuses(&env, &bundle, &[]);
    assert!(
        err.contains(&format!(
            "manifest {} is corrupt",
            web.image().manifest.digest
        )),
        "{err}"
    );
    std::fs::write(&manifest, &bytes).unwrap();

    // A layer is missing.
    let layer = &web.image().layers[0];
    std::fs::remove_file(bundle.join("blobs/sha256").join(layer.hex())).unwrap();
    let err = refuses(&env, &bundle, &key);
    assert!(
        err.contains(&format!("blob {} is missing", layer.digest)),
        "{err}"
    );

    // A file that holds no certificate.
    let public = public.to_str().unwrap();
    let err = refuses(&env, &bundle, &["--tls-cert", public, "--tls-key", public]);
    assert!(
        err.contains(&format!("cannot use {public} for TLS")),
        "{err}"
    );

    // Not a bundle at all.
    let err = refuses(&env, env.path(), &[]);
    assert!(err.contains("not a ferry bundle"), "{err}");
}
